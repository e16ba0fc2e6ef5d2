#!/bin/sh
# samail send through a real Postfix on loopback, the relay most admins
# use: a private, throw-away instance under $T (its own config, queue and
# data directories, smtpd on 127.0.0.1 only, mail for one domain delivered
# into maildirs under $T, nothing relayed anywhere).  Every outcome is
# asserted at Postfix's side (its log, its queue, the delivered files) and
# in the store.  Needs root (Postfix's master runs as root) and postfix.
. "$(dirname "$0")/lib.sh"
PF_BIN=$(command -v postfix 2>/dev/null || echo /usr/sbin/postfix)
PF_SBIN=$(dirname "$PF_BIN")
[ -x "$PF_BIN" ] && [ -x "$PF_SBIN/postconf" ] || { echo "postfix not installed (make deps)"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "postfix needs root to run an instance"; exit 77; }
id postfix >/dev/null 2>&1 && getent group postdrop >/dev/null 2>&1 || { echo "no postfix user or postdrop group"; exit 77; }
sqlite3 -version >/dev/null 2>&1 || { echo "sqlite3 missing (make deps)"; exit 77; }

D=kaisha.example		# the one domain this Postfix takes mail for
NOW=2026-11-01T00:00:00Z
PF=$T/pf
# Postfix's daemons drop to the postfix user (and virtual(8) to the
# mailbox owner): they must get through $T to the maildirs.
chmod 711 "$T"
mkdir -p "$PF/etc" "$PF/queue" "$PF/data" "$PF/mail"
chown postfix:postfix "$PF/data" "$PF/mail"

write_config <<CONF
[smtp]
max_connections = 1
retry_base = 10m
max_attempts = 3
timeout = 20
CONF
sam init >/dev/null 2>&1
seed_advisories
state() { q "SELECT state FROM outbox WHERE rcpt = '$1@$D'"; }
status() { q "SELECT status FROM subscriber WHERE email = '$1@$D'"; }
add() { for who in "$@"; do sam subscriber add --email "$who@$D" --org "株式会社$who" >/dev/null; done; }
# Every subscriber the test mails: Postfix knows these and no others.
known=""
known() { known="$known $*"; }
build() { sam --now $NOW newsletter build --period 2026-10 >/dev/null 2>&1; }
use_port() { sed -i "s|^transport = .*|transport = smtp://127.0.0.1:$1|" "$T/samail.conf"; }
set_smtp() { sed -i "s|^$1 = .*|$1 = $2|" "$T/samail.conf"; }

# --- messages made first: the size limit is set from their sizes ------------
# Size: three small ones and one (products) larger; the listener's
# message_size_limit falls between them.
add size1 size2 size3
sam subscriber add --email "sizebig@$D" --org 株式会社sizebig --products windows,fortios >/dev/null
known size1 size2 size3 sizebig
build
for who in size1 size2 size3 sizebig; do
	sam --now $NOW newsletter preview --email "$who@$D" --out "$T/$who.eml" >/dev/null 2>&1
done
small=0
for who in size1 size2 size3; do
	n=$(wc -c < "$T/$who.eml"); [ "$n" -gt "$small" ] && small=$n
done
big=$(wc -c < "$T/sizebig.eml")
[ "$big" -gt $((small + 200)) ] || { echo "# the large message ($big) is not larger than the others ($small)"; exit 1; }
SIZE_LIMIT=$(( (small + big) / 2 ))

# --- the Postfix instance -------------------------------------------------
for v in P_MAIN P_LONG P_SIZE P_CONN P_RATE P_TLS; do eval "$v=$(free_port)"; done
sh "$SRCDIR/tests/tools/mkcerts.sh" "$T/pki" >/dev/null 2>&1 || { echo "# mkcerts failed"; exit 1; }
known ok01 ok02 ok03 ok04 ok05 ok06 ok07 ok08
known mc01 mc02 mc03 mc04 mc05 mc06 mc07 mc08 mc09 mc10 mc11 mc12
known rfok1 rfok2 deferme okrelay
known cl01 cl02 cl03 cl04 cl05 cl06 cl07 cl08
known tls1 tls2
known rl1 rl2 rl3 rl4 rl5
for who in $known; do echo "$who@$D $who/"; done > "$PF/etc/mailboxes"
# 450 for one address (a policy map, not the recipient table).
echo "deferme@$D 450 4.2.1 Mailbox busy, try later" > "$PF/etc/rcpt_access"
cat > "$PF/etc/main.cf" <<CF
compatibility_level = 3.6
config_directory = $PF/etc
queue_directory = $PF/queue
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = samail-pf
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = mx.$D
mydomain = $D
myorigin = $D
mydestination = $D
# This host is not in mynetworks: mail for other domains is refused
# (554 5.7.1 Relay access denied), not deferred (the default 454).
mynetworks = 192.0.2.1/32
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access texthash:$PF/etc/rcpt_access
# Unknown users: "User unknown in local recipient table".
local_recipient_maps = texthash:$PF/etc/mailboxes
alias_maps =
alias_database =
# The domain's users are delivered into maildirs under $PF/mail.
local_transport = virtual
virtual_mailbox_base = $PF/mail
virtual_mailbox_maps = texthash:$PF/etc/mailboxes
virtual_uid_maps = static:$(id -u postfix)
virtual_gid_maps = static:$(id -g postfix)
virtual_minimum_uid = 1
# Nothing leaves: a message for anywhere else bounces here.
default_transport = error:this test instance delivers nowhere else
relay_transport = error:this test instance delivers nowhere else
# Loopback is in the default exceptions (\$mynetworks): not here.
smtpd_client_event_limit_exceptions =
biff = no
CF
# One listener per behaviour (master.cf -o), each with its own log name:
# main (short queue ids), long queue ids, a size limit, a connection
# limit, TLS required.
cat > "$PF/etc/master.cf" <<CF
127.0.0.1:$P_MAIN inet n - n - - smtpd -o syslog_name=samail-pf/main
127.0.0.1:$P_LONG inet n - n - - smtpd -o syslog_name=samail-pf/long
  -o cleanup_service_name=cleanuplong
127.0.0.1:$P_SIZE inet n - n - - smtpd -o syslog_name=samail-pf/size
  -o message_size_limit=$SIZE_LIMIT
# (conn: each RCPT takes a second, so that the two connections allowed
# are still busy when samail's other workers give up asking.)
127.0.0.1:$P_CONN inet n - n - - smtpd -o syslog_name=samail-pf/conn
  -o smtpd_client_connection_count_limit=2
  -o smtpd_recipient_restrictions=sleep,1
127.0.0.1:$P_RATE inet n - n - - smtpd -o syslog_name=samail-pf/rate
  -o smtpd_client_message_rate_limit=3
127.0.0.1:$P_TLS inet n - n - - smtpd -o syslog_name=samail-pf/tls
  -o smtpd_tls_security_level=encrypt -o smtpd_tls_loglevel=1
  -o smtpd_tls_chain_files=$T/pki/server.key,$T/pki/server.pem
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
cleanuplong unix n      -       n       -       0       cleanup
  -o enable_long_queue_ids=yes
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CF
# Stop our instance (by its config directory) and wait for its master to go.
pf_stop() {
	[ "$("$PF_SBIN/postconf" -c "$PF/etc" -h queue_directory 2>/dev/null)" = "$PF/queue" ] || return
	"$PF_BIN" -c "$PF/etc" stop >/dev/null 2>&1
	pid=$(tr -dc 0-9 < "$PF/queue/pid/master.pid" 2>/dev/null)
	i=0
	while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
}
# Never let a command meant for this instance reach the system's Postfix:
# a main.cf that did not get written would mean the default queue.
[ "$("$PF_SBIN/postconf" -c "$PF/etc" -h queue_directory 2>/dev/null)" = "$PF/queue" ] &&
    [ "$("$PF_SBIN/postconf" -c "$PF/etc" -h data_directory 2>/dev/null)" = "$PF/data" ] ||
	{ echo "# $PF/etc/main.cf is not this test's"; exit 1; }
at_exit pf_stop
if ! "$PF_BIN" -c "$PF/etc" start >"$T/pf-start.out" 2>&1; then
	cat "$T/pf-start.out"
	echo "postfix would not start here"
	exit 77
fi
i=0
until $PY -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$P_MAIN" 2>/dev/null; do
	i=$((i + 1)); [ $i -lt 50 ] || { echo "# postfix did not listen"; cat "$PF/maillog"; exit 1; }
	sleep 0.1
done

# The Postfix log from line $1 on, once the queue is empty and every
# message has gone to its mailbox (postlogd writes a little later).
mark() { wc -l < "$PF/maillog"; }
settle() {
	i=0
	while [ $i -lt 100 ]; do
		[ -z "$("$PF_SBIN/postqueue" -c "$PF/etc" -j 2>/dev/null)" ] &&
		    [ "$(grep -c ': removed$' "$PF/maillog")" = "$(grep -c ': message-id=' "$PF/maillog")" ] && break
		sleep 0.1; i=$((i + 1))
	done
	sleep 0.2
}
since() { tail -n +"$(($1 + 1))" "$PF/maillog"; }
# Deliveries logged since line $1: "RCPT QUEUE-ID MESSAGE-ID" per line.
deliveries() {
	since "$1" | $PY -c '
import re, sys
mid, out = {}, []
for l in sys.stdin:
    m = re.search(r": (\w+): message-id=(\S+)", l)
    if m: mid[m.group(1)] = m.group(2)
    m = re.search(r"/virtual\[\d+\]: (\w+): to=<([^>]+)>.*status=sent", l)
    if m: out.append((m.group(2), m.group(1)))
for rcpt, qid in out: print(rcpt, qid, mid.get(qid, "-"))'
}
# For each recipient of the phase: outbox sent, relay_id = the queue id
# Postfix logged delivering to it, that queue id's message-id = the one in
# the delivered file, delivered exactly once.  Prints what differs.
verify_phase() {
	from=$1; shift
	deliveries "$from" > "$T/dl"
	for who in "$@"; do
		n=$(grep -c "^$who@$D " "$T/dl")
		[ "$n" = 1 ] || { echo "# $who delivered $n times"; continue; }
		set -- $(grep "^$who@$D " "$T/dl")
		qid=$2 logmid=$3
		row=$(q "SELECT state || ' ' || coalesce(relay_id, '-') FROM outbox WHERE rcpt = '$who@$D'")
		[ "$row" = "sent $qid" ] || echo "# $who: outbox '$row', Postfix queue id $qid"
		files=$(find "$PF/mail/$who" -type f -path '*/new/*' | wc -l)
		[ "$files" = 1 ] || echo "# $who: $files files in the maildir"
		fmid=$(grep -m1 -i '^message-id:' "$PF/mail/$who"/new/* | sed 's/^[^:]*: *//' | tr -d '\r')
		[ "$fmid" = "$logmid" ] || echo "# $who: file Message-ID $fmid, Postfix logged $logmid for $qid"
	done
}
verified() {
	out=$(verify_phase "$@")
	[ -z "$out" ] && return 0
	echo "$out"
	return 1
}
count() { since "$1" | grep -c "$2"; }

# --- 552 5.3.4 at MAIL (SIZE) for the one message over the limit -----------
use_port "$P_SIZE"
m=$(mark)
expect_exit 0 "size limit ($SIZE_LIMIT bytes; messages $small and $big)" -- sam --now 2026-11-01T00:01:00Z send
settle
check "  ... the large message failed, at MAIL, with Postfix's 552 5.3.4" -- eval \
	'[ "$(state sizebig)" = failed ] && q "SELECT last_error FROM outbox WHERE rcpt = '"'sizebig@$D'"'" | grep -q "^552 5.3.4 Message size exceeds fixed limit"'
check "  ... Postfix refused it at MAIL FROM, for its SIZE" -- eval 'since $m | grep -q "reject: MAIL from localhost\[127.0.0.1\]: 552 5.3.4 Message size exceeds fixed limit; from=<news@example.jp> proto=ESMTP"'
check "  ... the address stays active (not bounced)" -- test "$(status sizebig)" = active
check "  ... the others sent and delivered once each, relay_id = Postfix's queue id" -- verified $m size1 size2 size3
check "  ... nothing delivered for the large one" -- test ! -e "$PF/mail/sizebig"

# --- max_connections 1, short queue ids -------------------------------------
add ok01 ok02 ok03 ok04 ok05 ok06 ok07 ok08
build
use_port "$P_MAIN"
m=$(mark)
expect_exit 0 "max_connections 1: 8 newsletters" -- sam --now 2026-11-01T00:02:00Z send
settle
check "  ... each delivered once; outbox sent with relay_id = Postfix's queue id for that Message-ID" -- verified $m ok01 ok02 ok03 ok04 ok05 ok06 ok07 ok08
check "  ... short queue ids (hex)" -- eval \
	'[ "$(q "SELECT count(*) FROM outbox WHERE rcpt LIKE '"'ok0%'"' AND relay_id GLOB '"'[0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F][0-9A-F]*'"'")" = 8 ]'
check "  ... one connection for the 8 (Postfix: 1 connect, 1 disconnect)" -- eval \
	'[ "$(count $m "samail-pf/main/smtpd.*: connect from")" = 1 ] && [ "$(count $m "samail-pf/main/smtpd.*: disconnect from")" = 1 ]'
check "  ... which said QUIT and carried 8 transactions" -- eval \
	'since $m | grep "disconnect from" | grep -q " mail=8 rcpt=8 data=8 .*quit=1"'

# --- max_connections 4, long queue ids --------------------------------------
add mc01 mc02 mc03 mc04 mc05 mc06 mc07 mc08 mc09 mc10 mc11 mc12
build
use_port "$P_LONG"
set_smtp max_connections 4
m=$(mark)
expect_exit 0 "max_connections 4: 12 newsletters, Postfix with enable_long_queue_ids" -- sam --now 2026-11-01T00:03:00Z send
settle
check "  ... each delivered once; relay_id = Postfix's (long) queue id" -- verified $m mc01 mc02 mc03 mc04 mc05 mc06 mc07 mc08 mc09 mc10 mc11 mc12
check "  ... the ids are long ones (…z…)" -- eval \
	'[ "$(q "SELECT count(*) FROM outbox WHERE rcpt LIKE '"'mc%'"' AND length(relay_id) >= 12 AND relay_id GLOB '"'*z*'"'")" = 12 ]'
nc=$(count $m "samail-pf/long/smtpd.*: connect from")
check "  ... connections reused: $nc connects for 12 messages (at most 4)" -- eval '[ "$nc" -ge 1 ] && [ "$nc" -le 4 ]'

# --- refusals in Postfix's own words -----------------------------------------
add rfok1 nouser1 deferme rfok2
build
use_port "$P_MAIN"
set_smtp max_connections 1
m=$(mark)
expect_exit 75 "unknown user and a 450 from an access map (exit 75: one deferred)" -- sam --now 2026-11-01T00:04:00Z send
settle
check "  ... Postfix said 550 5.1.1 User unknown in local recipient table" -- eval \
	'since $m | grep -q "550 5.1.1 <nouser1@$D>: Recipient address rejected: User unknown in local recipient table"'
check "  ... unknown user: failed, the declarer bounced and suppressed" -- eval \
	'[ "$(state nouser1)" = failed ] && [ "$(status nouser1)" = bounced ] && [ "$(q "SELECT count(*) FROM suppression WHERE reason = '"'bounced'"'")" = 1 ]'
check "  ... 450 4.2.1 from check_recipient_access: deferred, address active" -- eval \
	'[ "$(state deferme)" = deferred ] && [ "$(status deferme)" = active ] && q "SELECT last_error FROM outbox WHERE rcpt = '"'deferme@$D'"'" | grep -q "^450 4.2.1 .*Mailbox busy"'
check "  ... the others sent, each once" -- verified $m rfok1 rfok2
# libcurl closes the connection after any refusal (lib/smtp.c): each
# refused recipient costs a new connection, nothing more.
nc=$(count $m "samail-pf/main/smtpd.*: connect from")
check "  ... 4 messages, 2 refusals: $nc connections (at most 3)" -- eval '[ "$nc" -le 3 ]'

# A recipient in another domain: Postfix does not relay for us.
sam subscriber add --email outsider@other.example --org 他社 >/dev/null
add okrelay
build
nfailed=$(q "SELECT count(*) FROM outbox WHERE state = 'failed'")
m=$(mark)
expect_exit 78 "554 5.7.1 Relay access denied: the run stops, a set-up error" -- sam --now 2026-11-01T00:05:00Z send
settle
check "  ... Postfix said 554 5.7.1 Relay access denied" -- eval 'since $m | grep -q "554 5.7.1 <outsider@other.example>: Relay access denied"'
check "  ... samail says it does not relay for us" -- grep -q "does not relay for us" "$T/err"
check "  ... nothing failed; the outsider's message queued, untried" -- eval \
	'[ "$(q "SELECT count(*) FROM outbox WHERE state = '"'failed'"'")" = "$nfailed" ] && [ "$(q "SELECT state || attempts FROM outbox WHERE rcpt = '"'outsider@other.example'"'")" = queued0 ]'
check "  ... the outsider is not bounced" -- eval '[ "$(q "SELECT status FROM subscriber WHERE email = '"'outsider@other.example'"'")" = active ]'
check "  ... nothing left Postfix for another domain" -- eval '! grep "to=<outsider@other.example>" "$PF/maillog" | grep -qv "NOQUEUE: reject: RCPT"'
sam subscriber remove outsider@other.example >/dev/null 2>&1
q "UPDATE outbox SET state = 'cancelled' WHERE rcpt = 'outsider@other.example'"
expect_exit 0 "  ... with the outsider gone, the rest goes" -- sam --now 2026-11-01T00:06:00Z send
settle
check "  ... okrelay sent once" -- verified $m okrelay

# --- smtpd_client_connection_count_limit = 2, max_connections 4 --------------
add cl01 cl02 cl03 cl04 cl05 cl06 cl07 cl08
build
use_port "$P_CONN"
set_smtp max_connections 4
m=$(mark)
expect_exit 0 "Postfix allows 2 connections, samail asks for 4: all 8 delivered" -- sam -v --now 2026-11-01T00:07:00Z send
settle
check "  ... Postfix turned the extra connections away (421 too many connections)" -- eval \
	'since $m | grep -q "warning: Connection concurrency limit exceeded: 3 from localhost\[127.0.0.1\]"'
check "  ... each delivered once, relay_id = Postfix's queue id" -- verified $m cl01 cl02 cl03 cl04 cl05 cl06 cl07 cl08
check "  ... nothing deferred, failed or left queued" -- eval \
	'[ "$(q "SELECT count(*) FROM outbox WHERE rcpt LIKE '"'cl%'"' AND state != '"'sent'"'")" = 0 ]'
check "  ... samail ran with fewer connections (its log says so)" -- grep -q "relay 'smtp://127.0.0.1:$P_CONN' refuses more connections; running with fewer" "$T/err"
check "  ... and reported no error" -- eval '! grep -qiE "error|warning" "$T/err"'
cp "$T/err" "$T/conn.err"

# --- smtpd_client_message_rate_limit = 3 -------------------------------------
add rl1 rl2 rl3 rl4 rl5
build
use_port "$P_RATE"
set_smtp max_connections 1
m=$(mark)
expect_exit 75 "Postfix's message rate limit (3): exit 75, the relay holds us off" -- sam --now 2026-11-01T00:07:30Z send
settle
check "  ... Postfix said 450 4.7.1 too much mail at MAIL FROM" -- eval \
	'since $m | grep -q "samail-pf/rate/smtpd.*warning: Message delivery request rate limit exceeded: 4 from localhost"'
check "  ... samail says the relay refuses our mail for now, with Postfix's words" -- \
	grep -q "is refusing our mail for now .*450 4.7.1 Error: too much mail from 127.0.0.1" "$T/err"
check "  ... not that no relay accepted a connection" -- eval '! grep -q "no SMTP relay accepted a connection" "$T/err"'
check "  ... 3 sent, each once" -- verified $m rl1 rl2 rl3
check "  ... the other 2 queued, untried" -- eval \
	'[ "$(q "SELECT count(*) FROM outbox WHERE rcpt LIKE '"'rl%'"' AND state = '"'queued'"' AND attempts = 0")" = 2 ]'

# --- STARTTLS required, the test CA --------------------------------------------
add tls1 tls2
build
use_port "$P_TLS"
set_smtp max_connections 1
cat >> samail.conf <<CONF
starttls = required
ca_file = $T/pki/ca.pem
CONF
m=$(mark)
expect_exit 0 "STARTTLS required, Postfix's certificate verified against the test CA" -- sam --now 2026-11-01T00:08:00Z send
settle
check "  ... over TLS (Postfix logged the TLS connection)" -- eval 'since $m | grep -q "samail-pf/tls/smtpd.*Anonymous TLS connection established from localhost"'
check "  ... each delivered once" -- verified $m tls1 tls2

check "Postfix's queue is empty at the end" -- eval '[ -z "$("$PF_SBIN/postqueue" -c "$PF/etc" -j)" ]'
check "Postfix logged no error or panic" -- eval '! grep -E "(fatal|panic|error):" "$PF/maillog" | grep -v "Error: too many connections"'
finish
