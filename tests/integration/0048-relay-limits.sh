#!/bin/sh
# More of what real relays do, driven through the scripted relay
# (tests/tools/relay.py): greylisting, a relay's rate limits that are not
# a 421, a relay reached over IPv6, the wrong TLS mode for a port, a
# relay that drops the connection during the set-up.  Asserted at the
# relay's side, in the store, in the exit code and the last line.
. "$(dirname "$0")/lib.sh"
NOW=2026-11-01T00:00:00Z
write_config <<CONF
[smtp]
max_connections = 1
retry_base = 10m
max_attempts = 3
timeout = 2
CONF

# Recipients the relay was asked for (RCPT TO), and messages it took.
rcpts() { $PY -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["event"] == "cmd" and r["line"].upper().startswith("RCPT"): print(r["line"])' "$T/$1.log" | wc -l; }
taken() { $PY -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["event"] == "msg": print(r["rcpt"], r["message_id"])' "$T/$1.log"; }

# --- greylisting: every new message deferred once, then taken ----------
# postgrey run for the client ("Client host rejected: Greylisted") or for
# the recipient, milter-greylist: each message is deferred once and taken
# when it comes again after the delay.  Not the relay holding us off:
# stopping after 3 would let 3 through a run; every message is tried and
# deferred, and the next run sends them all.
for reply in "450 4.7.1 <g@example.jp>: Client host rejected: Greylisted, see http://postgrey.schweikert.ch/help/example.jp.html" \
    "451 4.7.1 Greylisting in action, please come back in 00:05:00"; do
	nr=$((${nr:-0} + 1))
	start_relay grey$nr "*:rcpt=$reply"
	PG=$RELAY_PORT
	use_relays "smtp://127.0.0.1:$PG"
	queue_newsletters $(seq -f g%g 1 6)
	expect_exit 75 "'${reply%%,*}' for every recipient: exit 75" -- sam --now $NOW send
	check "  ... each of the 6 tried once and deferred, none left untried" -- eval \
		'[ "$(rcpts grey$nr)" = 6 ] && [ "$(count "state = '"'"'deferred'"'"' AND attempts = 1")" = 6 ]'
	check "  ... the last line says 6 deferred, not that the relay refuses our mail" -- eval \
		'tail -n 1 "$T/err" | grep -q "6 messages deferred; a later .samail send. retries them" && ! grep -q "refusing our mail" "$T/err"'
done
start_relay passed
use_relays "smtp://127.0.0.1:$RELAY_PORT"
expect_exit 0 "the greylisting delay over: the next send sends all 6" -- sam --now 2026-11-01T00:15:00Z send
check "  ... each once, with the Message-ID it had" -- eval \
	'[ "$(taken passed | wc -l)" = 6 ] && [ "$(count "state = '"'"'sent'"'"' AND attempts = 2")" = 6 ]'

# --- a relay's rate limit that is not a 421 ------------------------------
# Postfix's smtpd_client_recipient_rate_limit ("450 4.7.1 Error: too many
# recipients from [192.0.2.1]" at RCPT) and Amazon SES's "454 Throttling
# failure: Maximum sending rate exceeded." (at the end of the data) and
# Exchange Online's throttling of a sending IP ("451 4.7.500 Server busy.
# Please try again later from [192.0.2.1]") and a "452 4.5.3 Too many
# recipients" to a message that has one (a limit of the session or of
# this host) say
# it to every message until the limit's window is over: sending on would
# defer the whole campaign, each message an attempt.  3 in a row stop the
# run (75), the rest untried, the line pointing at rate_per_minute.
for case in "rcpt=450 4.7.1 Error: too many recipients from [127.0.0.1]" \
    "end=454 Throttling failure: Maximum sending rate exceeded." \
    "end=454 Throttling failure: Daily message quota exceeded." \
    "rcpt=451 4.7.500 Server busy. Please try again later from [127.0.0.1]. (S77714)" \
    "rcpt=452 4.5.3 Error: too many recipients"; do
	nr=$((nr + 1))
	start_relay limit$nr "*:$case"
	use_relays "smtp://127.0.0.1:$RELAY_PORT"
	queue_newsletters $(seq -f r%g 1 8)
	expect_exit 75 "'${case#*=}' at ${case%%=*} for every message: exit 75" -- sam --now $NOW send
	check "  ... 3 tried and deferred, 5 untried for the next run" -- eval \
		'[ "$(rcpts limit$nr)" = 3 ] && [ "$(count "state = '"'"'deferred'"'"' AND attempts = 1")" = 3 ] && [ "$(count "state = '"'"'queued'"'"' AND attempts = 0")" = 5 ]'
	check "  ... the last line: refusing our mail for now, see [smtp] rate_per_minute" -- eval \
		'tail -n 1 "$T/err" > last && grep -qF "is refusing our mail for now (${case#*=}): 3 messages in a row deferred; the run stopped" last && grep -q "see the relay.s limits and \[smtp\] rate_per_minute" last'
done
# A recipient's own rate (Gmail's 4.2.1) or full mailbox ("4.2.2 quota
# exceeded") is that recipient's: four in a row stop nothing.
start_relay rcptrate \
	"busy:rcpt=450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered" \
	"full:rcpt=452 4.2.2 <full1@example.jp>: Recipient address rejected: Quota exceeded"
use_relays "smtp://127.0.0.1:$RELAY_PORT"
queue_newsletters busy1 full1 busy2 full2 ok1
expect_exit 75 "a recipient's own rate or quota, four in a row: the run goes on" -- sam --now $NOW send
check "  ... 4 deferred, the last one sent" -- eval \
	'[ "$(count "state = '"'"'deferred'"'"'")" = 4 ] && [ "$(count "state = '"'"'sent'"'"'")" = 1 ]'

# --- where the relay is: IPv6, and the TLS a port speaks ------------------
# A relay named by its IPv6 address: sent; nothing there: the same words
# as for IPv4.
start_relay v6 --listen ::1
use_relays "smtp://[::1]:$RELAY_PORT"
queue_newsletters v1 v2
expect_exit 0 "a relay at smtp://[::1]:port: exit 0" -- sam --now $NOW send
check "  ... both sent, over IPv6" -- eval '[ "$(taken v6 | wc -l)" = 2 ] && [ "$(count "state = '"'"'sent'"'"'")" = 2 ]'
P6=$($PY -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0)); print(s.getsockname()[1])')
use_relays "smtp://[::1]:$P6"
queue_newsletters v3
expect_exit 69 "nothing listening at smtp://[::1]:port: exit 69" -- sam --now $NOW send
check "  ... one line: connection refused, check [mail] transport" -- eval \
	'[ "$(wc -l < "$T/err")" = 1 ] && grep -qF "smtp://[::1]:$P6'"'"': connection refused: nothing listens there" "$T/err"'

# The port and the scheme do not go together, the admin's mistake: smtp://
# names a port that speaks TLS from the first byte (465: the relay waits
# for our TLS hello, we wait for its greeting), smtps:// one that speaks
# plain SMTP (25, 587: STARTTLS).  Each line says which to use.
sh "$SRCDIR/tests/tools/mkcerts.sh" "$T/pki" >/dev/null 2>&1 && [ -s "$T/pki/server.pem" ] ||
	{ echo "# mkcerts.sh failed"; exit 1; }
echo "ca_file = $T/pki/ca.pem" >> "$T/samail.conf"
start_relay wrapped --tls-wrap --cert "$T/pki/server.pem" --key "$T/pki/server.key"
PW=$RELAY_PORT
use_relays "smtps://127.0.0.1:$PW"
queue_newsletters w1
expect_exit 0 "smtps:// to a port that speaks TLS at once: sent" -- sam --now $NOW send
use_relays "smtp://127.0.0.1:$PW"
queue_newsletters w2
expect_exit 69 "smtp:// to that port: exit 69, within the timeout" -- sam --now $NOW send
check "  ... one line: no greeting; if the port speaks TLS from the start, smtps://" -- eval \
	'[ "$(wc -l < "$T/err")" = 1 ] && grep -q "sent no greeting within \[smtp\] timeout.*if this port speaks TLS from the start (465), name it smtps://" "$T/err"'
check "  ... nothing counted: queued, untried" -- test "$(count "state = 'queued' AND attempts = 0")" = 1
# libcurl waits for the greeting no longer than connect_timeout either:
# when that is the shorter one, the line names it, not [smtp] timeout.
sed -i 's/^timeout = 2$/timeout = 30\nconnect_timeout = 1/' "$T/samail.conf"
expect_exit 69 "  ... with connect_timeout shorter than timeout: exit 69" -- sam --now $NOW send
check "  ... the line names [smtp] connect_timeout, the limit that ran out" -- eval \
	'[ "$(wc -l < "$T/err")" = 1 ] && grep -q "sent no greeting within \[smtp\] connect_timeout (" "$T/err"'
sed -i 's/^timeout = 30$/timeout = 2/; /^connect_timeout = 1$/d' "$T/samail.conf"
start_relay plain
use_relays "smtps://127.0.0.1:$RELAY_PORT"
expect_exit 69 "smtps:// to a port that speaks plain SMTP: exit 69" -- sam --now $NOW send
check "  ... one line: the port speaks plain SMTP, name it smtp:// (STARTTLS)" -- eval \
	'[ "$(wc -l < "$T/err")" = 1 ] && grep -q "this port speaks plain SMTP: name it smtp:// (STARTTLS)" "$T/err"'

# --- a relay that closes the connection during the set-up ----------------
# Right after it accepts (a connection limit, tcpwrappers, a relay going
# down) or after our EHLO: the line says when, not "response reading
# failed (errno: 115)".
for case in "greeting:--greeting drop:before its greeting" "ehlo:--ehlo drop:after our EHLO"; do
	step=${case%%:*} opt=${case#*:}; when=${opt#*:}; opt=${opt%%:*}
	start_relay "closes$step" $opt
	use_relays "smtp://127.0.0.1:$RELAY_PORT"
	expect_exit 69 "a relay that closes the connection $when: exit 69" -- sam --now $NOW send
	check "  ... one line saying it closed the connection $when" -- eval \
		'[ "$(wc -l < "$T/err")" = 1 ] && grep -q "closed the connection $when" "$T/err" && ! grep -q "errno: 115" "$T/err"'
done
# With a second relay, that one takes over; the warning does not say the
# first refused anything.
PC=$RELAY_PORT
start_relay second
use_relays "smtp://127.0.0.1:$PC smtp://127.0.0.1:$RELAY_PORT"
expect_exit 0 "the first relay closes the connection after EHLO, a second one: sent through it" -- sam --now $NOW send
check "  ... one warning: the first cannot be used, it closed the connection after our EHLO" -- eval \
	'[ "$(taken second | wc -l)" = 1 ] && grep -q "warning: smtp: relay .smtp://127.0.0.1:$PC. cannot be used: closed the connection after our EHLO" "$T/err"'

# --- fewer connections allowed than [smtp] max_connections ---------------
# Postfix's anvil (smtpd_client_connection_count_limit) greets the
# connections over its limit with 421 and closes them: the relay is up,
# the connections it takes carry the run; no failover, nothing deferred.
start_relay anvil --max-conns 3
PA=$RELAY_PORT
start_relay spare
use_relays "smtp://127.0.0.1:$PA smtp://127.0.0.1:$RELAY_PORT"
sed -i 's/^max_connections = .*/max_connections = 8/' "$T/samail.conf"
queue_newsletters $(seq -f n%g 1 60)
expect_exit 0 "a relay taking 3 connections at a time, 8 configured: exit 0" -- sam --now $NOW send
check "  ... all 60 sent through it, each once; none to the second relay" -- eval \
	'[ "$(taken anvil | cut -d" " -f1 | sort -u | wc -l)" = 60 ] && [ "$(taken anvil | wc -l)" = 60 ] && [ "$(taken spare | wc -l)" = 0 ] && [ "$(count "state = '"'"'sent'"'"' AND attempts = 1")" = 60 ]'


# --- a cap on each run: [smtp] max_per_run, send --limit --------------
# A provider's daily quota: each send (or run) hands over at most that
# many, the rest stay queued, untried, and the next one goes on; --limit
# lowers it for one send, never raises it.
start_relay quota
use_relays "smtp://127.0.0.1:$RELAY_PORT"
sed -i 's/^max_connections = .*/max_connections = 4\nmax_per_run = 7/' "$T/samail.conf"
queue_newsletters $(seq -f q%g 1 17)
expect_exit 0 "max_per_run = 7, 17 queued, 4 connections: exit 0" -- sam --now $NOW send
check "  ... the relay took 7; 10 wait untried; the output names the cap" -- eval \
	'[ "$(taken quota | wc -l)" = 7 ] && [ "$(count "rcpt LIKE '"'"'q%'"'"' AND state = '"'"'queued'"'"' AND attempts = 0")" = 10 ] && grep -q "limit of 7 messages this run (\[smtp\] max_per_run)" "$T/out"'
expect_exit 0 "send --limit 100 with max_per_run = 7: exit 0" -- sam --now $NOW send --limit 100
check "  ... the smaller counts: 7 more" -- eval '[ "$(taken quota | wc -l)" = 14 ]'
expect_exit 0 "send --limit 2: exit 0" -- sam --now $NOW send --limit 2
check "  ... 2 more, said as --limit's" -- eval \
	'[ "$(taken quota | wc -l)" = 16 ] && grep -q "limit of 2 messages this run (--limit)" "$T/out"'
# (The test feeds' hosts do not resolve: the fetch makes it 69.)
expect_exit 69 "run daily goes on with the last one" -- sam --now $NOW run daily
check "  ... all 17 taken, each once; the send step ends 0, nothing said of a cap" -- eval \
	'grep -q "send: 1 sent via" "$T/out" && [ "$(taken quota | cut -d" " -f1 | sort -u | wc -l)" = 17 ] && [ "$(taken quota | wc -l)" = 17 ] && ! grep -q max_per_run "$T/out"'
sed -i 's/^max_per_run = .*/max_per_run = 0/' "$T/samail.conf"
queue_newsletters $(seq -f r%g 1 5)
sed -i 's/^max_per_run = .*/max_per_run = 3/' "$T/samail.conf"
expect_exit 69 "run daily with max_per_run = 3, 5 queued" -- sam --now $NOW run daily
check "  ... 3 taken; the send line says the cap was reached, 2 left" -- eval \
	'[ "$(taken quota | wc -l)" = 20 ] && grep -q "send: 3 sent via .*; \[smtp\] max_per_run (3) reached, 2 left for the next runs$" "$T/out"'

finish
