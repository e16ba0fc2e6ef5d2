#!/bin/sh
# Relay failures met in the field, driven through the scripted relay
# (tests/tools/relay.py): a send stopped by a signal, a relay whose own
# mail system fails, a relay that stops answering.  Asserted at the
# relay's side, in the store, in the exit code and the one error line.
. "$(dirname "$0")/lib.sh"
NOW=2026-11-01T00:00:00Z
write_config <<CONF
[smtp]
max_connections = 8
retry_base = 10m
max_attempts = 3
timeout = 2
CONF

use_relays() { sed -i "s|^transport = .*|transport = $*|" "$T/samail.conf"; }
q() { sqlite3 "$T/samail.db" "$1"; }
count() { q "SELECT count(*) FROM outbox WHERE $1"; }
taken() { $PY -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["event"] == "msg": print(r["rcpt"], r["how"], r["message_id"], r["conn"])' "$T/$1.log"; }

# --- SIGTERM / SIGINT in the middle of a send ------------------------------
# 8 connections, 120 a minute: a signal after ~1.5 s leaves most queued.
start_relay sig
use_relays "smtp://127.0.0.1:$RELAY_PORT"
sed -i 's/^max_connections = .*/max_connections = 8\nrate_per_minute = 120/' "$T/samail.conf"
queue_newsletters $(seq -f s%g 1 20)
for sig in TERM INT; do
	"$SAMAIL" -c "$T/samail.conf" --now $NOW send >"$T/out" 2>"$T/err" &
	pid=$!
	sleep 1.5
	kill -$sig $pid
	wait $pid
	got=$?
	check "SIG$sig during a send: exit 75, not 0 (exit $got)" -- test "$got" = 75
	check "  ... one line saying it was stopped and what is left" -- eval \
		'[ "$(wc -l < "$T/err")" = 1 ] && grep -q "stopped by SIG$sig: [0-9]* messages left queued for the next .samail send." "$T/err"'
	check "  ... nothing left in flight: each sent or queued untried" -- eval \
		'[ "$(count "state NOT IN ('"'"'sent'"'"', '"'"'queued'"'"') OR (state = '"'"'queued'"'"' AND attempts > 0)")" = 0 ]'
done
sed -i '/^rate_per_minute/d' "$T/samail.conf"
expect_exit 0 "the next send finishes the job" -- sam --now $NOW send
check "  ... all 20 sent, each once" -- eval \
	'[ "$(count "state = '"'"'sent'"'"'")" = 20 ] && [ "$(taken sig | wc -l)" = 20 ] && [ -z "$(taken sig | cut -d" " -f1 | sort | uniq -d)" ]'

finish
