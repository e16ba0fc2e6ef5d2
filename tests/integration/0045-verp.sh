#!/bin/sh
# VERP: with [mail] verp = yes every message leaves with its declarer's own
# return path, and a bounce delivered to it names the declarer, with a
# token nobody can forge.
. "$(dirname "$0")/lib.sh"
$PY -c 'import aiosmtpd' 2>/dev/null || { echo "python3-aiosmtpd missing (make deps)"; exit 77; }
start_smtpd main
write_config <<CONF
[smtp]
max_connections = 2
CONF
sed -i "s|^transport = .*|transport = smtp://127.0.0.1:$SMTPD_PORT|; s|^from = .*|from = SECURITY ACTION 事務局 <news@example.jp>\nenvelope_from = bounces@example.jp\nverp = yes|" samail.conf
sam init >/dev/null 2>&1
seed_advisories
for who in taro hanako jiro; do
	sam subscriber add --email "$who@example.co.jp" --org "株式会社$who" --products windows >/dev/null
done
sam --now 2026-11-01T00:00:00Z newsletter build --period 2026-10 >/dev/null
expect_exit 0 "send with VERP" -- sam --now 2026-11-01T00:01:00Z send
$PY - "$T/main.log" > froms.txt <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r.get("event") == "msg":
        print(r["rcpt_tos"][0], r["mail_from"])
PY
check "each message has its own return path bounces+TOKEN@example.jp" -- eval \
	'[ "$(grep -c " bounces+[A-Za-z0-9_-]\{44\}@example.jp$" froms.txt)" = 3 ] && [ "$(cut -d" " -f2 froms.txt | sort -u | wc -l)" = 3 ]'
verp=$(grep '^taro@' froms.txt | cut -d' ' -f2)

# A bounce that only the return address identifies: the failed recipient
# is a forwarding target, the returned message is not attached.
sed -e "s|bounces@example.jp|$verp|g" -e 's|taro@example.co.jp|someone@forward.example.net|g' \
	-e 's|Message-I[Dd]: <[^>]*@example.jp>|Message-ID: <unknown@example.net>|' \
	"$DATA/bounces/postfix-hard.eml" > verp-bounce.eml
expect_exit 0 "samail bounce reads it" -- sam --now 2026-11-02T00:00:00Z bounce verp-bounce.eml
check "  ... found by the VERP address, declarer marked bounced" -- eval \
	'grep -q "found by VERP address" "$T/out" && [ "$(sqlite3 "$T/samail.db" "select status from subscriber where email='"'"'taro@example.co.jp'"'"'")" = bounced ]'
# The MTA's envelope recipient, given on the command line.
sed -e 's|taro@example.co.jp|someone@forward.example.net|g' -e 's|Message-I[Dd]: <[^>]*@example.jp>|Message-ID: <unknown@example.net>|' \
	"$DATA/bounces/postfix-hard.eml" > plain-bounce.eml
verp2=$(grep '^hanako@' froms.txt | cut -d' ' -f2)
expect_exit 0 "--recipient names the VERP address" -- sam bounce --recipient "$verp2" plain-bounce.eml
check "  ... hanako marked bounced" -- eval \
	'[ "$(sqlite3 "$T/samail.db" "select status from subscriber where email='"'"'hanako@example.co.jp'"'"'")" = bounced ]'
# A forged return address: a changed token character.
forged=$(grep '^jiro@' froms.txt | cut -d' ' -f2 | $PY -c 'import sys; a=sys.stdin.read().strip(); i=a.index("+")+5; print(a[:i] + ("A" if a[i] != "A" else "B") + a[i+1:])')
expect_exit 0 "a forged VERP address" -- sam bounce --recipient "$forged" plain-bounce.eml
check "  ... is not trusted: jiro stays active" -- eval \
	'[ "$(sqlite3 "$T/samail.db" "select status from subscriber where email='"'"'jiro@example.co.jp'"'"'")" = active ]'
sed -i 's|^verp = yes|verp = no|' samail.conf
expect_exit 0 "without verp, the same file" -- sam bounce --recipient "$(grep '^jiro@' froms.txt | cut -d' ' -f2)" plain-bounce.eml
check "  ... changes nothing (VERP not in use)" -- eval \
	'[ "$(sqlite3 "$T/samail.db" "select status from subscriber where email='"'"'jiro@example.co.jp'"'"'")" = active ]'
finish
