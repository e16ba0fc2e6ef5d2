#!/bin/sh
# samail send against relays whose TLS or AUTH goes wrong the ways real
# ones do: a refused login, no AUTH or only mechanisms we cannot use, a
# certificate for another name or expired, TLS 1.1 at most, STARTTLS
# answered 454, the connection cut in the handshake, the password from the
# environment or missing.  Each is asserted at the relay (tests/tools/
# relay.py: what reached it, over TLS or not), on stderr (one line saying
# what is wrong and what to do) and in the store (everything still queued,
# untried; nobody failed or bounced because of our relay).
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null 2>&1 || { echo "openssl missing (make deps)"; exit 77; }
command -v sqlite3 >/dev/null 2>&1 || { echo "sqlite3 missing (make deps)"; exit 77; }
$PY -c 'import ssl, asyncio.sslproto' 2>/dev/null || { echo "python3 without ssl"; exit 77; }
NOW=2026-11-01T00:00:00Z
sh "$SRCDIR/tests/tools/mkcerts.sh" "$T/pki" >/dev/null 2>&1
[ -s "$T/pki/expired.pem" ] && [ -s "$T/pki/wronghost.pem" ] ||
	{ echo "# mkcerts.sh failed"; exit 1; }
KEY="--key $T/pki/server.key"
CERT="--cert $T/pki/server.pem $KEY"
# A submission port: STARTTLS first, AUTH only once it is on.
SUBMISSION="--ext STARTTLS,ENHANCEDSTATUSCODES,PIPELINING"
printf 's3cret-pass\n' > "$T/pw"; chmod 600 "$T/pw"

# cfg TRANSPORT [smtp line...]: the config, [smtp] made of these lines.
cfg() {
	tr=$1; shift
	printf '%s\n' "[mail]" "transport = $tr" "[smtp]" "max_connections = 1" \
		"retry_base = 10m" "max_attempts = 3" "timeout = 2" \
		"connect_timeout = 2" "ca_file = $T/pki/ca.pem" "$@" | write_config
}
setup() { queue_newsletters "$@"; }
# All N messages still queued and untried, nobody failed or bounced.
kept() {
	[ "$(q "SELECT count(*) FROM outbox WHERE state = 'queued' AND attempts = 0")" = "$1" ] &&
	[ "$(q "SELECT count(*) FROM outbox")" = "$1" ] &&
	[ "$(q "SELECT count(*) FROM subscriber WHERE status <> 'active'")" = 0 ] &&
	[ "$(q "SELECT count(*) FROM suppression")" = 0 ]
}
one_line() { [ "$(wc -l < "$T/err")" = 1 ]; }
# What the relay logged: events of a kind (JSON lines), commands (verbs).
ev() { grep "\"event\": \"$2\"" "$T/$1.log"; }
cmds() { $PY -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["event"] == "cmd": print(r["line"].split(":")[0].split(" ")[0])' "$T/$1.log"; }
# The relay got no message, and no MAIL FROM (nothing went out, in clear
# or not).
got_nothing() { ! ev "$1" msg >/dev/null && ! cmds "$1" | grep -qx MAIL; }
# Messages received: "RCPT TLS-VERSION AUTH-USER" per line.
taken() { $PY -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["event"] == "msg": print(r["rcpt"], r["tls"], r["auth"])' "$T/$1.log"; }
no_secret() { ! grep -q "s3cret-pass" "$T/err" "$T/out" && ! sqlite3 "$T/samail.db" .dump | grep -q s3cret-pass; }

# --- 1. the wrong password ----------------------------------------------
start_relay badpw $SUBMISSION --tls-ext "AUTH PLAIN LOGIN,ENHANCEDSTATUSCODES" $CERT \
	'*:auth=535 5.7.8 Authentication credentials invalid'
cfg "smtp://127.0.0.1:$RELAY_PORT" "starttls = required" "username = user1" "password_file = $T/pw"
setup p1 p2 p3
expect_exit 78 "AUTH answered 535 5.7.8: exit 78 (configuration)" -- sam --now $NOW send
check "  ... one line naming the relay, the user, the reply and password_file" -- eval \
	'one_line && grep -q "smtp://127.0.0.1:$RELAY_PORT" "$T/err" && grep -q "refused the login of '"'user1'"'" "$T/err" &&
	 grep -q "535 5.7.8 Authentication credentials invalid" "$T/err" && grep -q "check \[smtp\] username and the password in '"'$T/pw'"' (\[smtp\] password_file)" "$T/err"'
check "  ... the password in no message and no row" -- no_secret
check "  ... one login tried, over TLS; no MAIL FROM, no message" -- eval \
	'[ "$(ev badpw auth | wc -l)" = 1 ] && ev badpw tls >/dev/null && got_nothing badpw'
check "  ... all 3 still queued, untried; nobody bounced" -- kept 3
# With 4 connections the others wait for the first to log in: a wrong
# password costs one failed login per run, not four (account lockouts).
n0=$(ev badpw auth | wc -l)
sed -i 's/^max_connections = 1$/max_connections = 4/' "$T/samail.conf"
expect_exit 78 "  ... with 4 connections: exit 78 again" -- sam --now $NOW send
check "  ... and one more login tried, not one per connection" -- \
	test "$(ev badpw auth | wc -l)" = $((n0 + 1))
check "  ... all 3 still queued, untried" -- kept 3
# A failover too: the first relay is down, the backup refuses the login;
# the workers that move to it wait for the first one's login.
BADPW=$RELAY_PORT
n0=$(ev badpw auth | wc -l)
sed -i "s|^transport = .*|transport = smtp://127.0.0.1:$(free_port) smtp://127.0.0.1:$BADPW|" "$T/samail.conf"
expect_exit 78 "  ... the first relay down, the backup refuses the login: exit 78" -- sam --now $NOW send
check "  ... one login tried at the backup, with 4 connections" -- \
	test "$(ev badpw auth | wc -l)" = $((n0 + 1))
check "  ... all 3 still queued, untried" -- kept 3
# The relay refusing the login first, a good one second, and
# rate_per_minute spacing the workers out: those that come while the
# first worker waits for its next slot, its login refused, follow it to
# the second relay; they do not log in at the first again.
start_relay authok $SUBMISSION --tls-ext "AUTH PLAIN LOGIN,ENHANCEDSTATUSCODES" $CERT \
	--auth user1:s3cret-pass
n0=$(ev badpw auth | wc -l)
cfg "smtp://127.0.0.1:$BADPW smtp://127.0.0.1:$RELAY_PORT" "starttls = required" \
	"username = user1" "password_file = $T/pw" "rate_per_minute = 120"
sed -i 's/^max_connections = 1$/max_connections = 4/' "$T/samail.conf"
setup r1 r2 r3 r4 r5 r6
expect_exit 0 "  ... first of two relays, rate_per_minute = 120, 4 connections: all sent by the second" -- sam --now $NOW send
check "  ... one login tried at the first, not one more per late worker" -- \
	test "$(ev badpw auth | wc -l)" = $((n0 + 1))
check "  ... all 6 taken by the second, logged in over TLS" -- \
	test "$(taken authok | grep -c " TLSv1.[23] user1$")" = 6

# Gmail's "454 4.7.0 Too many login attempts", a SASL back end down: later.
start_relay authlater $SUBMISSION --tls-ext "AUTH PLAIN LOGIN" $CERT \
	'*:auth=454 4.7.0 Temporary authentication failure'
cfg "smtp://127.0.0.1:$RELAY_PORT" "username = user1" "password_file = $T/pw"
setup t1 t2
expect_exit 75 "AUTH answered 454 4.7.0: exit 75 (temporary)" -- sam --now $NOW send
check "  ... one line: cannot log in for now, the rest stay queued" -- eval \
	'one_line && grep -q "cannot log in as '"'user1'"' for now (454 4.7.0 Temporary authentication failure)" "$T/err" && grep -q "stay queued" "$T/err"'
check "  ... nothing sent, both still queued, untried" -- eval 'got_nothing authlater && kept 2'
check "  ... one login tried, not retried (each would be one more failed login)" -- \
	test "$(ev authlater auth | wc -l)" = 1

# --- 2. a username, and the relay offers no AUTH after STARTTLS ------------
start_relay noauth $SUBMISSION --tls-ext "ENHANCEDSTATUSCODES" $CERT \
	'*:mail=530 5.7.0 Authentication required'
cfg "smtp://127.0.0.1:$RELAY_PORT" "username = user1" "password_file = $T/pw"
setup n1 n2 n3
expect_exit 78 "no AUTH offered, and MAIL FROM answered 530: exit 78" -- sam --now $NOW send
check "  ... one line: it requires authentication, check that this port offers AUTH" -- eval \
	'one_line && grep -q "requires authentication although \[smtp\] username is set: check that this port offers AUTH" "$T/err"'
check "  ... no AUTH, no message; all queued, untried" -- eval \
	'! cmds noauth | grep -qx AUTH && ! ev noauth msg >/dev/null && kept 3'
# With 4 connections the others wait until the relay takes a MAIL FROM:
# this refusal costs one connection, not four.
n0=$(ev noauth connect | wc -l)
sed -i 's/^max_connections = 1$/max_connections = 4/' "$T/samail.conf"
expect_exit 78 "  ... with 4 connections: exit 78 again" -- sam --now $NOW send
check "  ... over one more connection, not one per worker" -- \
	test "$(ev noauth connect | wc -l)" = $((n0 + 1))
check "  ... all 3 still queued, untried" -- kept 3
# A relay that takes our mail without a login (it trusts this host).
start_relay noauthok $SUBMISSION --tls-ext "ENHANCEDSTATUSCODES" $CERT
cfg "smtp://127.0.0.1:$RELAY_PORT" "username = user1" "password_file = $T/pw"
setup m1 m2 m3
expect_exit 0 "no AUTH offered, and the relay takes our mail anyway: sent" -- sam --now $NOW send
check "  ... over TLS, without a login" -- eval \
	'[ "$(taken noauthok | cut -d" " -f2- | sort -u)" = "TLSv1.3 None" ] && [ "$(taken noauthok | wc -l)" = 3 ]'
check "  ... one warning (not one per message) that the username went unused" -- eval \
	'one_line && grep -q "offers no AUTH: sending without logging in as '"'user1'"'" "$T/err"'
# AUTH offered only in the old "AUTH=" form, which libcurl passes over:
# no login, and the warning says why.
start_relay authodd $SUBMISSION --tls-ext "AUTH=PLAIN LOGIN,ENHANCEDSTATUSCODES" $CERT
cfg "smtp://127.0.0.1:$RELAY_PORT" "username = user1" "password_file = $T/pw"
setup o1 o2
expect_exit 0 "AUTH offered only as 'AUTH=PLAIN LOGIN', the relay takes our mail: sent" -- sam --now $NOW send
check "  ... without a login" -- eval \
	'! cmds authodd | grep -qx AUTH && [ "$(taken authodd | wc -l)" = 2 ]'
check "  ... one warning: AUTH only as 'AUTH=', which libcurl does not use" -- eval \
	'one_line && grep -q "offers AUTH only as '"'AUTH='"' or in lower case, which libcurl does not use: sending without logging in as '"'user1'"'" "$T/err"'

# --- 3. AUTH mechanisms: none we can use; ours among others -------------
start_relay mechs $SUBMISSION --tls-ext "AUTH GSSAPI XOAUTH2" $CERT --auth user1:s3cret-pass
cfg "smtp://127.0.0.1:$RELAY_PORT" "username = user1" "password_file = $T/pw"
setup g1 g2
expect_exit 78 "AUTH GSSAPI XOAUTH2 only: exit 78" -- sam --now $NOW send
check "  ... one line: no mechanism samail can use, naming what it offers" -- eval \
	'one_line && grep -q "offers no AUTH mechanism samail can use to log in as '"'user1'"' (it offers GSSAPI XOAUTH2; samail uses PLAIN or LOGIN" "$T/err"'
check "  ... no AUTH tried, nothing sent; all queued, untried" -- eval \
	'! cmds mechs | grep -qx AUTH && got_nothing mechs && kept 2'
# Exchange's submission port; and CRAM-MD5 first (not what a password
# store can always do): the password goes by LOGIN, or PLAIN.
for case in "exchange:AUTH GSSAPI NTLM LOGIN:LOGIN" "cram:AUTH CRAM-MD5 DIGEST-MD5 PLAIN LOGIN XOAUTH2:PLAIN"; do
	name=${case%%:*} rest=${case#*:}; ext=${rest%:*} mech=${rest##*:}
	start_relay "$name" $SUBMISSION --tls-ext "$ext" $CERT --auth user1:s3cret-pass
	cfg "smtp://127.0.0.1:$RELAY_PORT" "username = user1" "password_file = $T/pw"
	setup x1 x2
	expect_exit 0 "'$ext': sent" -- sam --now $NOW send
	check "  ... logged in with $mech, once, over TLS" -- eval \
		'[ "$(ev $name auth | $PY -c "import json,sys; print(\" \".join(json.loads(l)[\"mech\"] + str(json.loads(l)[\"ok\"]) for l in sys.stdin))")" = "${mech}True" ] &&
		 [ "$(taken $name | sort -u | cut -d" " -f2- | uniq)" = "TLSv1.3 user1" ]'
done

# --- 4. a certificate for another host name -----------------------------
start_relay wrongname --ext STARTTLS --cert "$T/pki/wronghost.pem" $KEY
cfg "smtp://127.0.0.1:$RELAY_PORT" "starttls = required"
setup w1 w2
expect_exit 69 "a certificate for mail.example.net only: refused, exit 69" -- sam --now $NOW send
check "  ... one line: the certificate does not match the host name, what to do" -- eval \
	'one_line && grep -q "its TLS certificate does not match the host name '"'127.0.0.1'"'" "$T/err" && grep -q "name the relay in \[mail\] transport by a name its certificate holds" "$T/err"'
check "  ... nothing sent; all queued, untried" -- eval 'got_nothing wrongname && kept 2'
cfg "smtp://127.0.0.1:$RELAY_PORT"
setup w3 w4
expect_exit 69 "  ... the same with starttls = auto: no falling back to plain text" -- sam --now $NOW send
check "  ... nothing sent; all queued, untried" -- eval 'got_nothing wrongname && kept 2'

# A ca_file that holds no certificate: ours to fix, not the relay's.
echo "not a certificate" > "$T/bad-ca.pem"
cfg "smtp://127.0.0.1:$RELAY_PORT" "starttls = required"
sed -i "s|^ca_file = .*|ca_file = $T/bad-ca.pem|" "$T/samail.conf"
setup w5
expect_exit 78 "a ca_file that holds no certificate: exit 78" -- sam --now $NOW send
check "  ... one line naming it; nothing sent; queued" -- eval \
	'one_line && grep -q "cannot use \[smtp\] ca_file '"'$T/bad-ca.pem'"'" "$T/err" && got_nothing wrongname && kept 1'

# --- 5. an expired certificate (from the right CA) ------------------------
start_relay expired --ext STARTTLS --cert "$T/pki/expired.pem" $KEY
PEXP=$RELAY_PORT
cfg "smtp://127.0.0.1:$PEXP" "starttls = required"
setup e1 e2
expect_exit 69 "an expired certificate: refused, exit 69" -- sam --now $NOW send
check "  ... one line: it has expired, the relay's operator must renew it" -- eval \
	'one_line && grep -q "its TLS certificate has expired (SSL certificate problem: certificate has expired): the relay'"'"'s operator must renew it" "$T/err"'
check "  ... nothing sent; all queued, untried" -- eval 'got_nothing expired && kept 2'
# With a second relay, it takes over.
start_relay backup --ext STARTTLS $CERT
cfg "smtp://127.0.0.1:$PEXP smtp://127.0.0.1:$RELAY_PORT" "starttls = required"
expect_exit 0 "  ... a second relay takes over" -- sam --now $NOW send
check "  ... both sent over TLS by it; the warning names the first relay's certificate" -- eval \
	'[ "$(taken backup | wc -l)" = 2 ] && grep -q "relay '"'smtp://127.0.0.1:$PEXP'"' cannot be used: its TLS certificate has expired" "$T/err"'

# --- 6. a relay that speaks TLS 1.1 at most --------------------------------
for v in TLSv1_1 TLSv1; do
	start_relay "old$v" --ext STARTTLS $CERT --tls-max $v
	cfg "smtp://127.0.0.1:$RELAY_PORT" "starttls = required"
	setup o1 o2
	expect_exit 69 "a relay with $v at most: refused, exit 69" -- sam --now $NOW send
	check "  ... one line: no TLS version samail accepts, it needs 1.2 or later" -- eval \
		'one_line && grep -q "it offers no TLS version samail accepts (.*protocol version): samail needs TLS 1.2 or later" "$T/err"'
	check "  ... the handshake failed at the relay too; nothing sent; all queued" -- eval \
		'ev old$v tls-error >/dev/null && got_nothing old$v && kept 2'
done

# --- 7. STARTTLS answered 454 (Postfix without its key file) ---------------
start_relay tls454 --ext STARTTLS $CERT '*:starttls=454 4.7.0 TLS not available due to temporary reason'
cfg "smtp://127.0.0.1:$RELAY_PORT" "starttls = required"
setup s1 s2
expect_exit 75 "STARTTLS answered 454, starttls = required: exit 75, deferred as a whole like Postfix" -- sam --now $NOW send
check "  ... one line: cannot do STARTTLS for now, nothing in clear, the rest stay queued" -- eval \
	'one_line && grep -q "cannot do STARTTLS (454 4.7.0 TLS not available due to temporary reason), and TLS is required" "$T/err" &&
	 grep -q "nothing was sent in clear" "$T/err" && grep -q "stay queued for the next run" "$T/err"'
check "  ... no MAIL FROM in clear; all queued, untried (no attempt counted)" -- eval 'got_nothing tls454 && kept 2'
cfg "smtp://127.0.0.1:$RELAY_PORT" "username = user1" "password_file = $T/pw"
setup s3 s4
expect_exit 75 "  ... the same with a username (TLS implied): exit 75" -- sam --now $NOW send
check "  ... the password never went in clear: no AUTH, no MAIL FROM" -- eval \
	'! cmds tls454 | grep -qx AUTH && got_nothing tls454 && kept 2'
# starttls = auto: what libcurl (CURLUSESSL_TRY) and Postfix's "may" do.
cfg "smtp://127.0.0.1:$RELAY_PORT"
setup s5 s6
expect_exit 0 "  ... starttls = auto: sent in plain text after the 454" -- sam --now $NOW send
check "  ... both received, without TLS" -- eval '[ "$(taken tls454 | sort | tr "\n" " ")" = "s5@example.jp None None s6@example.jp None None " ]'

# --- 8. where the password comes from ------------------------------------
start_relay pwsrc $SUBMISSION --tls-ext "AUTH PLAIN LOGIN" $CERT --auth user1:s3cret-pass
cfg "smtp://127.0.0.1:$RELAY_PORT" "username = user1"
setup v1 v2
expect_exit 0 "the password from \$SAMAIL_SMTP_PASSWORD, no password_file: sent" -- \
	env SAMAIL_SMTP_PASSWORD=s3cret-pass "$SAMAIL" -c "$T/samail.conf" --now $NOW send
check "  ... authenticated as user1, over TLS" -- eval \
	'[ "$(taken pwsrc | cut -d" " -f2- | sort -u)" = "TLSv1.3 user1" ] && [ "$(taken pwsrc | wc -l)" = 2 ]'
setup v3
expect_exit 78 "  ... a wrong one: exit 78, naming \$SAMAIL_SMTP_PASSWORD" -- \
	env SAMAIL_SMTP_PASSWORD=wrong-pass "$SAMAIL" -c "$T/samail.conf" --now $NOW send
check "  ... one line: refused the login, check the password in \$SAMAIL_SMTP_PASSWORD" -- eval \
	'one_line && grep -q "refused the login of '"'user1'"' (535 5.7.8 .*): check \[smtp\] username and the password in \$SAMAIL_SMTP_PASSWORD$" "$T/err" && ! grep -q wrong-pass "$T/err" && kept 1'
conns=$(ev pwsrc connect | wc -l)
cfg "smtp://127.0.0.1:$RELAY_PORT" "username = user1" "password_file = $T/no-such-file"
setup v4
expect_exit 78 "password_file names a missing file: exit 78" -- sam --now $NOW send
check "  ... one line: that file does not exist, create it or fix the path" -- eval \
	'one_line && grep -q "password_file '"'$T/no-such-file'"' does not exist (and \$SAMAIL_SMTP_PASSWORD is not set): create it" "$T/err"'
check "  ... the relay was not even contacted; queued, untried" -- eval '[ "$(ev pwsrc connect | wc -l)" = "$conns" ] && kept 1'
cfg "smtp://127.0.0.1:$RELAY_PORT" "username = user1"
expect_exit 78 "a username and no password at all: exit 78" -- sam --now $NOW send
check "  ... one line: name password_file or set \$SAMAIL_SMTP_PASSWORD" -- eval \
	'one_line && grep -q "username '"'user1'"' is set but there is no password: name password_file or set \$SAMAIL_SMTP_PASSWORD" "$T/err"'
check "  ... the relay was not contacted; queued, untried" -- eval '[ "$(ev pwsrc connect | wc -l)" = "$conns" ] && kept 1'

# --- 9. the connection cut in the middle of the TLS handshake ---------------
start_relay cut --ext STARTTLS $CERT '*:tls=drop'
cfg "smtp://127.0.0.1:$RELAY_PORT" "starttls = required"
setup c1 c2
t0=$(date +%s)
expect_exit 69 "the relay drops the connection in the TLS handshake: exit 69" -- sam --now $NOW send
check "  ... at once, not after a timeout ($(( $(date +%s) - t0 ))s)" -- test $(( $(date +%s) - t0 )) -le 2
check "  ... one line: the connection was lost in the TLS handshake" -- eval \
	'one_line && grep -q "the connection was lost in the TLS handshake" "$T/err"'
check "  ... nothing sent; all queued, untried" -- eval 'got_nothing cut && kept 2'
finish
