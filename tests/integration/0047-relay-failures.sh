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

taken() { $PY -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["event"] == "msg": print(r["rcpt"], r["how"], r["message_id"], r["conn"])' "$T/$1.log"; }
# The commands the relay got, by verb.
cmds() { $PY -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["event"] == "cmd": print(r["line"].split(":")[0].split(" ")[0])' "$T/$1.log"; }

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

# --- the relay's own mail system fails (4.3.x) -------------------------------
# Postfix with its lookup table down ("451 4.3.0 Temporary lookup
# failure" at RCPT) or its queue disk full ("451 4.3.0 Error: queue file
# write error" at the end of data) says it of every recipient: a streak
# stops the run (75) before every message of the campaign loses an
# attempt, the rest untried.
sed -i 's/^max_connections = .*/max_connections = 1/' "$T/samail.conf"
for case in "rcpt:451 4.3.0 <x@example.jp>: Temporary lookup failure" \
    "end:451 4.3.0 Error: queue file write error" \
    "end:452 4.3.1 Insufficient system storage"; do
	step=${case%%:*} reply=${case#*:}
	start_relay "sys$step" "*:$step=$reply"
	use_relays "smtp://127.0.0.1:$RELAY_PORT"
	queue_newsletters $(seq -f y%g 1 8)
	expect_exit 75 "'${reply%%:*}' at $step for every message: exit 75" -- sam --now $NOW send
	check "  ... 3 deferred, 5 untried for the next run" -- eval \
		'[ "$(count "state = '"'"'deferred'"'"' AND attempts = 1")" = 3 ] && [ "$(count "state = '"'"'queued'"'"' AND attempts = 0")" = 5 ]'
	check "  ... one error line: the relay refuses our mail for now, its operator must fix it" -- eval \
		'[ "$(grep -vc "deferred: " "$T/err")" = 1 ] && grep -q "is refusing our mail for now (${reply%%:*}.*the relay.s operator must fix its mail system" "$T/err"'
done
# One recipient's 4.3.x among messages that go is only that one's.
start_relay one "odd:rcpt=451 4.3.0 <odd1@example.jp>: Temporary lookup failure"
use_relays "smtp://127.0.0.1:$RELAY_PORT"
queue_newsletters odd1 ok1 odd2 ok2 odd3 ok3 odd4 ok4
expect_exit 75 "a 4.3.x for some recipients, others sent between: the run goes on" -- sam --now $NOW send
check "  ... 4 deferred, 4 sent" -- eval \
	'[ "$(count "state = '"'"'deferred'"'"'")" = 4 ] && [ "$(count "state = '"'"'sent'"'"'")" = 4 ]'

# --- a relay holding us off after the session began; a second one is fine ----
# A 421 at RCPT (Gmail's 4.7.28 rate limit), a 4.3.x at the end of data:
# after 3 in a row the next relay takes over, as for a relay that refuses
# connections, instead of the run stopping with the backup never tried.
sed -i 's/^max_connections = .*/max_connections = 4/' "$T/samail.conf"
for case in "rcpt:421 4.7.28 Our system has detected an unusual rate of mail, try again later" \
    "end:451 4.3.0 Error: queue file write error"; do
	step=${case%%:*} reply=${case#*:}
	start_relay held$step "*:$step=$reply"
	PH=$RELAY_PORT
	start_relay backup$step
	use_relays "smtp://127.0.0.1:$PH smtp://127.0.0.1:$RELAY_PORT"
	queue_newsletters $(seq -f h%g 1 30)
	expect_exit 75 "'${reply%% *}' at $step from the first relay, a second one: exit 75 (some deferred)" -- sam --now $NOW send
	check "  ... saying it switched to the second relay" -- \
		grep -q "is refusing our mail for now (3 messages in a row deferred); switching to relay 'smtp://127.0.0.1:$RELAY_PORT'" "$T/err"
	check "  ... the rest sent through it, each once; at most one deferred per connection beyond the 3" -- eval \
		'n=$(count "state = '"'"'sent'"'"'"); [ "$n" -ge 23 ] && [ "$(taken backup$step | wc -l)" = "$n" ] && [ "$(count "state = '"'"'deferred'"'"'")" = $((30 - n)) ]'
done
# Both hold us off: the run stops once every relay has, exit 75.
start_relay held2 "*:rcpt=450 4.7.1 Client host rejected: cannot find your hostname"
use_relays "smtp://127.0.0.1:$PH smtp://127.0.0.1:$RELAY_PORT"
queue_newsletters $(seq -f b%g 1 30)
expect_exit 75 "two relays, each holding us off: exit 75" -- sam --now $NOW send
check "  ... saying every relay refuses our mail for now" -- grep -q "every relay is refusing our mail for now" "$T/err"
check "  ... most untried, nobody failed" -- eval \
	'[ "$(count "state = '"'"'queued'"'"' AND attempts = 0")" -ge 10 ] && [ "$(count "state = '"'"'failed'"'"'")" = 0 ]'

# One relay holding us off, the other down or silent: no relay is left to
# take over, so the run stops as with one relay, the rest untried, instead
# of deferring the whole campaign at the first (each message an attempt).
stopped_with() {	# deferred untried what
	check "  ... $3" -- eval '[ "$(count "state = '"'"'deferred'"'"' AND attempts = 1")" = '"$1"' ] &&
	    [ "$(count "state = '"'"'queued'"'"' AND attempts = 0")" = '"$2"' ]'
}
sed -i 's/^max_connections = .*/max_connections = 1/' "$T/samail.conf"
start_relay rl "*:rcpt=421 4.7.28 Our system has detected an unusual rate of mail, try again later"
PH=$RELAY_PORT
use_relays "smtp://127.0.0.1:$PH smtp://127.0.0.1:$(free_port)"
queue_newsletters $(seq -f m%g 1 30)
expect_exit 75 "the first relay holding us off, the second down: exit 75" -- sam --now $NOW send
stopped_with 4 26 "the run stopped: 3 deferred (a 4th after the second relay failed), the other 26 untried"
check "  ... saying no other relay can take over" -- \
	grep -q "relay 'smtp://127.0.0.1:$PH' is refusing our mail for now (421 4.7.28 .*): 3 messages in a row deferred, and no other relay can take over (each is down, silent or refusing our mail too)" "$T/err"
start_relay mute "*:end=stall"
PM=$RELAY_PORT
use_relays "smtp://127.0.0.1:$PH smtp://127.0.0.1:$PM"
queue_newsletters $(seq -f n%g 1 20)
expect_exit 69 "the first holding us off, the second silent at the end of data: exit 69" -- sam --now $NOW send
stopped_with 6 14 "3 deferred at each, the other 14 untried"
check "  ... saying the second stopped answering and none can take over" -- \
	grep -q "relay 'smtp://127.0.0.1:$PM' stopped answering (3 messages in a row got no reply) and no other relay can take over" "$T/err"
start_relay hostrej "*:rcpt=450 4.7.1 Client host rejected: cannot find your hostname"
use_relays "smtp://127.0.0.1:$PM smtp://127.0.0.1:$RELAY_PORT"
queue_newsletters $(seq -f p%g 1 20)
expect_exit 75 "the first silent, the second holding us off: exit 75" -- sam --now $NOW send
stopped_with 6 14 "3 deferred at each, the other 14 untried"
# The same with 8 connections: the first relay ends its streak and hands
# over to the second, which drops each connection (after a second: the
# messages in flight at the first are over by then).  Each worker went
# back to the first then, one more message lost to it per connection
# (11-17 deferred in all, each a timeout when it is silent): now one
# worker goes back with one message while the others wait, and the run
# stops when that one gets the same.
sed -i 's/^max_connections = .*/max_connections = 8/' "$T/samail.conf"
# Connections the first relay took once the second had dropped its first.
after() { $PY - "$T/$1.log" "$T/$2.log" <<'PY'
import json, sys
ev = [[json.loads(l) for l in open(f)] for f in sys.argv[1:3]]
t0 = min(r["t"] for r in ev[1] if r["event"] == "connect") + 0.5
print(sum(1 for r in ev[0] if r["event"] == "connect" and r["t"] > t0))
PY
}
for case in "held:rcpt=421 4.7.28 Our system has detected an unusual rate of mail, try again later:75" \
    "mute:end=stall:69"; do
	how=${case%%:*} rule=${case#*:}; want=${rule##*:}; rule=${rule%:*}
	start_relay "${how}8" "*:$rule"
	P8=$RELAY_PORT
	start_relay "drops$how" --greeting drop --delay 1
	use_relays "smtp://127.0.0.1:$P8 smtp://127.0.0.1:$RELAY_PORT"
	queue_newsletters $(seq -f e%g 1 40)
	expect_exit $want "8 connections, the first relay ${how} ('${rule%%=*}'), the second dropping connections: exit $want" -- sam --now $NOW send
	n=$(after "${how}8" "drops$how")
	check "  ... one worker went back to the first once the second failed, not each: $n connections there after" -- test "$n" -le 1
	tries=$(cmds "${how}8" | grep -c "^$( [ $how = held ] && echo RCPT || echo DATA)")
	check "  ... $tries messages tried there (at most 3 + 7 in flight + 1), each deferred once; the other $((40 - tries)) untried" -- eval \
		'[ "$tries" -le 11 ] && [ "$(count "state = '"'"'deferred'"'"' AND attempts = 1")" = "$tries" ] && [ "$(count "state = '"'"'queued'"'"' AND attempts = 0")" = $((40 - tries)) ]'
	if [ $how = held ]; then
		check "  ... the last line: the first refuses our mail for now and no other relay can take over" -- \
			eval 'tail -n 1 "$T/err" | grep -q "relay .smtp://127.0.0.1:$P8. is refusing our mail for now (421 4.7.28 .*): 3 messages in a row deferred, and no other relay can take over"'
	else
		check "  ... the last line: the first stopped answering and no other relay can take over" -- \
			eval 'tail -n 1 "$T/err" | grep -q "relay .smtp://127.0.0.1:$P8. stopped answering (3 messages in a row got no reply) and no other relay can take over"'
	fi
done
sed -i 's/^max_connections = .*/max_connections = 1/' "$T/samail.conf"

# --- no reply: the configured timeout, not twice it --------------------------
# After a timeout libcurl closes the connection with a QUIT and would wait
# for its 221 as long again (at once for a command, at the next transfer
# or at the end for the data); a relay that did not answer the last
# command will not answer that either.
sed -i 's/^max_connections = .*/max_connections = 1/; s/^timeout = .*/timeout = 4/' "$T/samail.conf"
for step in rcpt end; do
	start_relay "mute$step" "*:$step=stall"
	use_relays "smtp://127.0.0.1:$RELAY_PORT"
	queue_newsletters z1
	t0=$(date +%s.%N)
	expect_exit 75 "no reply at $step (timeout = 4): deferred, exit 75" -- sam --now $NOW send
	secs=$($PY -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)")
	check "  ... after the timeout and at most a second or two more, not two timeouts (${secs}s)" -- \
		$PY -c "import sys; sys.exit(0 if float(sys.argv[1]) < 7 else 1)" "$secs"
	check "  ... deferred, one attempt" -- test "$(count "state = 'deferred' AND attempts = 1")" = 1
done
check "  ... saying a message with no reply to its data may have arrived" -- eval \
	'q "SELECT last_error FROM outbox" | grep -q "may have taken it"'
sed -i 's/^timeout = .*/timeout = 2/' "$T/samail.conf"

# --- relays that cannot be reached: one line, in words, saying what to do ----
P1=$(free_port)
P2=$(free_port)
use_relays "smtp://127.0.0.1:$P1 smtp://127.0.0.1:$P2"
queue_newsletters c1 c2 c3
expect_exit 69 "connection refused by both relays: exit 69" -- sam --now $NOW send
check "  ... the error names each relay: connection refused, check [mail] transport (not libcurl's words)" -- eval \
	'grep -q "^samail send: no SMTP relay accepted a connection: .smtp://127.0.0.1:$P1.: connection refused: nothing listens there; check that the relay is running and that \[mail\] transport names its host and port; .smtp://127.0.0.1:$P2.: connection refused" "$T/err" && ! grep -q "Couldn.t connect" "$T/err"'
check "  ... nothing attempted counted: all queued, untried" -- \
	test "$(count "state = 'queued' AND attempts = 0")" = 3
use_relays "smtp://relay.invalid:25"
expect_exit 69 "a relay whose host name does not resolve: exit 69" -- sam --now $NOW send
check "  ... one line saying so and where to fix it" -- eval \
	'[ "$(wc -l < "$T/err")" = 1 ] && grep -q "its host name .relay.invalid. does not resolve: check the name in \[mail\] transport" "$T/err"'
start_relay listed --greeting '554 5.7.1 relay.test: Client host [127.0.0.1] blocked using zen.spamhaus.org'
use_relays "smtp://127.0.0.1:$RELAY_PORT"
expect_exit 69 "a 554 greeting naming a block list: exit 69" -- sam --now $NOW send
check "  ... the relay's words, and what to do" -- eval \
	'[ "$(wc -l < "$T/err")" = 1 ] && grep -q "blocked using zen.spamhaus.org: it refuses mail from this host (a block list or its reputation): have the listing removed, or send through another relay" "$T/err"'

# The first relay killed in the middle of a run, 8 connections: the
# second takes over; each worker finds the first gone, one line says so.
start_relay dies
PD=$RELAY_PORT DPID=$SERVER_PID
start_relay takes
use_relays "smtp://127.0.0.1:$PD smtp://127.0.0.1:$RELAY_PORT"
sed -i 's/^max_connections = .*/max_connections = 8\nrate_per_minute = 240/' "$T/samail.conf"
queue_newsletters $(seq -f k%g 1 24)
"$SAMAIL" -c "$T/samail.conf" --now $NOW send >"$T/out" 2>"$T/err" &
pid=$!
sleep 2
kill -9 $DPID
wait $pid
got=$?
sed -i '/^rate_per_minute/d' "$T/samail.conf"
check "the first relay killed mid-run: exit 0 or 75 (exit $got)" -- eval '[ $got = 0 ] || [ $got = 75 ]'
check "  ... the second took over: every message sent or deferred, none failed" -- eval \
	'[ "$(count "state NOT IN ('"'"'sent'"'"', '"'"'deferred'"'"')")" = 0 ] && [ "$(taken takes | wc -l)" -gt 0 ]'
check "  ... no message at both relays beyond one per connection, each sent once" -- eval \
	'[ "$( (taken dies; taken takes) | cut -d" " -f1 | sort | uniq -d | wc -l)" -le 8 ] && [ "$(count "state = '"'"'sent'"'"'")" = "$( (taken dies; taken takes) | cut -d" " -f1 | sort -u | wc -l)" ]'
check "  ... one line says the first cannot be reached, not one per connection" -- \
	test "$(grep -c "relay 'smtp://127.0.0.1:$PD' cannot be reached: connection refused" "$T/err")" = 1

finish
