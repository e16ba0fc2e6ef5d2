#!/bin/sh
# Writers in other processes while a long send runs (16 messages the
# server answers slowly): `subscriber add`, `subscriber remove`,
# `unsubscribe` and `send` itself must wait out each other's write
# transactions (busy timeout), never fail with "database is busy" at
# once, and leave every change whole; an outside checkpoint must reach
# the end of the WAL now and then (no process pins an old snapshot).
. "$(dirname "$0")/lib.sh"
$PY -c 'import aiosmtpd' 2>/dev/null || { echo "python3-aiosmtpd missing (make deps)"; exit 77; }
start_smtpd main
write_config <<CONF
[smtp]
max_connections = 1
CONF
use_relays "smtp://127.0.0.1:$SMTPD_PORT"
NOW=2026-11-01T00:00:00Z
set --
i=0
while [ $i -lt 16 ]; do set -- "$@" "slow$i"; i=$((i + 1)); done
queue_newsletters "$@" u1 u2 u3 u4
# Unsubscribe tokens of u1..u4, from the queued messages.
for u in u1 u2 u3 u4; do
	sam --now $NOW newsletter preview --period 2026-10 --email $u@example.jp |
		sed -n 's|^List-Unsubscribe: <[^>]*/u/\([^>]*\)>.*|\1|p' > "$T/tok.$u"
done
check "tokens found" -- test -s "$T/tok.u4"

sam --now 2026-11-01T00:01:00Z send >"$T/send.out" 2>"$T/send.err" &
SEND=$!
sleep 1
fails=0
n=0
while kill -0 $SEND 2>/dev/null && [ $n -lt 40 ]; do
	n=$((n + 1))
	sam subscriber add --email "new$n@example.jp" --org "株式会社$n" >/dev/null 2>"$T/err.add.$n" ||
		{ fails=$((fails + 1)); echo "# subscriber add $n: $(cat "$T/err.add.$n")"; }
	if [ $n -le 4 ]; then
		sam --now $NOW unsubscribe "$(cat "$T/tok.u$n")" >/dev/null 2>"$T/err.uns.$n" ||
			{ fails=$((fails + 1)); echo "# unsubscribe $n: $(cat "$T/err.uns.$n")"; }
	fi
	sam subscriber remove "new$n@example.jp" >/dev/null 2>"$T/err.rm.$n" ||
		{ fails=$((fails + 1)); echo "# subscriber remove $n: $(cat "$T/err.rm.$n")"; }
	# No reader of send's keeps an old snapshot: a checkpoint gets
	# through to the end of the WAL now and then.
	sqlite3 -cmd ".timeout 5000" "$T/samail.db" "PRAGMA wal_checkpoint(PASSIVE)" >> "$T/ckpt"
done
wait $SEND
rc=$?
check "the send finished (exit $rc): $(tr '\n' ' ' < "$T/send.err" | cut -c1-300)" -- test $rc -eq 0
check "no concurrent command failed ($fails failures in $n rounds)" -- test $fails -eq 0
check "a checkpoint reached the end of the WAL during the send: $(tr '\n' ' ' < "$T/ckpt" | cut -c1-200)" -- \
	awk -F'|' '$2 == $3 { ok = 1 } END { exit !ok }' "$T/ckpt"
check "the 16 slow ones were sent once each" -- \
	test "$(smtpd_messages main | grep -c '^slow')" = 16
check "unsubscribed ones: status kept" -- \
	test "$(q "SELECT count(*) FROM subscriber WHERE email LIKE 'u_@example.jp' AND status = 'unsubscribed'")" = 4
finish
