#!/bin/sh
# samail send through real SMTP servers on loopback: every outcome asserted
# at the server's side and in the store; relay down, failover, TLS, AUTH.
. "$(dirname "$0")/lib.sh"
$PY -c 'import aiosmtpd' 2>/dev/null || { echo "python3-aiosmtpd missing (make deps)"; exit 77; }
start_smtpd main
P1=$SMTPD_PORT
write_config <<CONF
[smtp]
max_connections = 2
retry_base = 10m
max_attempts = 3
CONF
sed -i "s|^transport = .*|transport = smtp://127.0.0.1:$P1|" samail.conf
sam init >/dev/null 2>&1
seed_advisories
for who in ok1 ok2 ok3 ok4 ok5 nouser1 bare550x rcpt4xx1 data4xx1 data5xx1 dropmid1 multiline1; do
	sam subscriber add --email "$who@example.jp" --org "株式会社$who" --products windows,fortios >/dev/null
done
NOW=2026-11-01T00:00:00Z
sam --now $NOW newsletter build --period 2026-10 >/dev/null
state() { sqlite3 "$T/samail.db" "SELECT state FROM outbox WHERE rcpt = '$1@example.jp'"; }
status() { sqlite3 "$T/samail.db" "SELECT status FROM subscriber WHERE email = '$1@example.jp'"; }

sam --now $NOW newsletter preview --email ok1@example.jp --out "$T/ok1.eml" 2>/dev/null
expect_exit 75 "send: some deferred -> exit 75" -- sam --now 2026-11-01T00:01:00Z send
smtpd_messages main > got.txt
check "server received the 6 accepted messages, each once, one recipient each" -- eval \
	'[ "$(cut -d" " -f1 got.txt | sort | tr "\n" " ")" = "dropmid1@example.jp multiline1@example.jp ok1@example.jp ok2@example.jp ok3@example.jp ok4@example.jp ok5@example.jp " ] || \
	 [ "$(cut -d" " -f1 got.txt | sort | tr "\n" " ")" = "multiline1@example.jp ok1@example.jp ok2@example.jp ok3@example.jp ok4@example.jp ok5@example.jp " ]'
check "the envelope sender is the configured bounce address" -- eval \
	'$PY -c "import json,sys; sys.exit(0 if all(json.loads(l)[\"mail_from\"]==\"news@example.jp\" for l in open(\"main.log\") if \"\\\"msg\\\"\" in l) else 1)"'
check "the message received is byte-identical to the preview (same Message-ID, same bytes)" -- $PY - "$T/main.log" "$T/ok1.eml" <<'PY'
import base64, json, sys
want = open(sys.argv[2], "rb").read()
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("event") == "msg" and r["rcpt_tos"] == ["ok1@example.jp"]:
        got = base64.b64decode(r["data_b64"])
        sys.exit(0 if got.replace(b"\r\n", b"\n") == want.replace(b"\r\n", b"\n") else 1)
sys.exit(1)
PY
check "2xx: sent, with the relay's queue id recorded" -- eval \
	'[ "$(state ok1)" = sent ] && sqlite3 "$T/samail.db" "select relay_id from outbox where rcpt='"'"'ok1@example.jp'"'"'" | grep -q "^[0-9A-F]\{10\}$"'
check "multi-line 250: sent, queue id parsed" -- eval '[ "$(state multiline1)" = sent ]'
check "550 5.1.1 at RCPT: failed, and the address marked bounced" -- eval '[ "$(state nouser1)" = failed ] && [ "$(status nouser1)" = bounced ]'
check "bare 550 at RCPT: failed, bounced" -- eval '[ "$(state bare550x)" = failed ] && [ "$(status bare550x)" = bounced ]'
check "554 5.7.1 at end of data: failed, address stays active" -- eval '[ "$(state data5xx1)" = failed ] && [ "$(status data5xx1)" = active ]'
check "450 at RCPT: deferred" -- eval '[ "$(state rcpt4xx1)" = deferred ]'
check "451 at end of data: deferred" -- eval '[ "$(state data4xx1)" = deferred ]'
check "connection dropped mid-DATA: deferred" -- eval '[ "$(state dropmid1)" = deferred ]'
check "the failure reason is recorded" -- eval 'sqlite3 "$T/samail.db" "select last_error from outbox where rcpt='"'"'nouser1@example.jp'"'"'" | grep -q "550 5.1.1"'
check "bounced addresses are suppressed" -- eval '[ "$(sqlite3 "$T/samail.db" "select count(*) from suppression where reason = '"'"'bounced'"'"'")" = 2 ]'

expect_exit 0 "send again at once: deferred ones are not due yet" -- sam --now 2026-11-01T00:02:00Z send
check "  ... nothing new reached the server" -- test "$(smtpd_messages main | wc -l)" = "$(wc -l < got.txt)"
expect_exit 75 "20 minutes later the deferred ones are retried (and defer again)" -- sam --now 2026-11-01T00:21:00Z send
check "  ... attempts counted" -- eval '[ "$(sqlite3 "$T/samail.db" "select attempts from outbox where rcpt='"'"'rcpt4xx1@example.jp'"'"'")" = 2 ]'
expect_exit 0 "after max_attempts they fail for good" -- sam --now 2026-11-02T00:00:00Z send
check "  ... failed, reason says so" -- eval '[ "$(state rcpt4xx1)" = failed ] && sqlite3 "$T/samail.db" "select last_error from outbox where rcpt='"'"'rcpt4xx1@example.jp'"'"'" | grep -q "gave up after 3 attempts"'

# The relay down: everything untried stays queued, exit 69.
for who in late1 late2 late3; do
	sam subscriber add --email "$who@example.jp" --org "株式会社$who" >/dev/null
done
sam --now $NOW newsletter build --period 2026-10 >/dev/null
stop_smtpd main
expect_exit 69 "relay down: exit 69" -- sam --now 2026-11-02T01:00:00Z send
check "  ... the error names the relay" -- grep -q "127.0.0.1:$P1" "$T/err"
check "  ... untried messages stay queued, no attempt counted" -- eval \
	'[ "$(sqlite3 "$T/samail.db" "select count(*) from outbox where state='"'"'queued'"'"' and attempts=0 and rcpt like '"'"'late%'"'"'")" = 3 ]'

# Failover: the first relay refuses connections, the second takes them.
start_smtpd backup
P2=$SMTPD_PORT
sed -i "s|^transport = .*|transport = smtp://127.0.0.1:$P1 smtp://127.0.0.1:$P2|" samail.conf
expect_exit 0 "failover to the second relay" -- sam --now 2026-11-02T01:05:00Z send
check "  ... the backup received the 3 messages" -- test "$(smtpd_messages backup | wc -l)" = 3
check "  ... the relay recorded is the backup" -- eval \
	'sqlite3 "$T/samail.db" "select relay from outbox where rcpt='"'"'late1@example.jp'"'"'" | grep -q ":$P2"'

# STARTTLS required of a relay that does not offer it: a set-up error.
sam subscriber add --email notls1@example.jp --org 平文 >/dev/null
sam --now $NOW newsletter build --period 2026-10 >/dev/null
echo "starttls = required" >> samail.conf
expect_exit 78 "starttls = required, the relay offers none: exit 78" -- sam --now 2026-11-02T01:30:00Z send
check "  ... saying what to change" -- grep -q "does not offer STARTTLS" "$T/err"
check "  ... the message still queued" -- eval '[ "$(state notls1)" = queued ]'
sed -i '/^starttls = required$/d' samail.conf
sam subscriber remove notls1@example.jp >/dev/null

# TLS (STARTTLS required, verified against the test CA) and AUTH.
sh "$SRCDIR/tests/tools/mkcerts.sh" "$T/pki" >/dev/null 2>&1
start_smtpd tls --starttls --require-starttls --cert "$T/pki/server.pem" --key "$T/pki/server.key" --auth user1:s3cret-pass
P3=$SMTPD_PORT
printf 's3cret-pass\n' > pw; chmod 600 pw
sed -i "s|^transport = .*|transport = smtp://127.0.0.1:$P3|" samail.conf
cat >> samail.conf <<CONF
starttls = required
ca_file = $T/pki/other-ca.pem
username = user1
password_file = $T/pw
CONF
sam subscriber add --email tls1@example.jp --org TLS >/dev/null
sam --now $NOW newsletter build --period 2026-10 >/dev/null
expect_exit 69 "a certificate from the wrong CA is refused (nothing sent)" -- sam --now 2026-11-02T02:00:00Z send
check "  ... nothing reached the server" -- test "$(smtpd_messages tls | wc -l)" = 0
sed -i "s|other-ca.pem|ca.pem|" samail.conf
chmod 644 pw
expect_exit 78 "a password file readable by others is refused" -- sam --now 2026-11-02T02:00:00Z send
check "  ... saying how to fix it" -- grep -q "chmod 600" "$T/err"
chmod 600 pw
expect_exit 0 "STARTTLS + AUTH with the right CA" -- sam --now 2026-11-02T02:00:00Z send
check "  ... received over TLS, authenticated as user1" -- eval \
	'grep "\"msg\"" tls.log | $PY -c "import json,sys; r=[json.loads(l) for l in sys.stdin]; sys.exit(0 if len(r)==1 and r[0][\"tls\"] and r[0][\"auth\"]==\"user1\" else 1)"'
check "the password is in no argument, log line or database row" -- eval \
	'! grep -rq "s3cret-pass" "$T/out" "$T/err" && ! sqlite3 "$T/samail.db" .dump | grep -q s3cret-pass'

# SMTPS (TLS from the first byte, port 465 style), verified, with AUTH.
start_smtpd smtps --smtps --cert "$T/pki/server.pem" --key "$T/pki/server.key" --auth user1:s3cret-pass
sed -i "s|^transport = .*|transport = smtps://127.0.0.1:$SMTPD_PORT|" samail.conf
sam subscriber add --email tls2@example.jp --org TLS2 >/dev/null
sam --now $NOW newsletter build --period 2026-10 >/dev/null
expect_exit 0 "smtps:// with the right CA and AUTH" -- sam --now 2026-11-02T03:00:00Z send
check "  ... received over TLS, authenticated as user1" -- eval \
	'grep "\"msg\"" smtps.log | $PY -c "import json,sys; r=[json.loads(l) for l in sys.stdin]; sys.exit(0 if len(r)==1 and r[0][\"tls\"] and r[0][\"auth\"]==\"user1\" else 1)"'
sed -i "s|/ca.pem|/other-ca.pem|" samail.conf
sam subscriber add --email tls3@example.jp --org TLS3 >/dev/null
sam --now $NOW newsletter build --period 2026-10 >/dev/null
expect_exit 69 "smtps:// with a certificate from the wrong CA: refused" -- sam --now 2026-11-02T03:30:00Z send
check "  ... saying the certificate did not verify" -- grep -q "certificate did not verify" "$T/err"
check "  ... nothing more reached the server" -- test "$(grep -c '"msg"' smtps.log)" = 1
finish
