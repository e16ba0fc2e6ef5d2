#!/bin/sh
# samail unsubscribe TOKEN from the CLI: done, already, bad tokens refused
# with 65 and one generic line, nothing changed; an admin reactivates.
. "$(dirname "$0")/lib.sh"
write_config </dev/null
NOW=--now=2026-02-03T00:00:00Z
expect_exit 0 "init" -- sam init
sam subscriber add --email a@example.jp --org "株式会社A" >/dev/null
sam subscriber add --email b@example.jp --org "株式会社B" >/dev/null
sam subscriber add --email c@example.jp --org "株式会社C" >/dev/null
expect_exit 0 "newsletter build" -- sam $NOW newsletter build --period 2026-01

# The https link of the List-Unsubscribe header of what the declarer gets.
link_of() {
	sam $NOW newsletter preview --period 2026-01 --email "$1" | $PY -c '
import email, re, sys
m = email.message_from_bytes(sys.stdin.buffer.read())
v = re.sub(r"\s+", "", m["List-Unsubscribe"])
print(re.search(r"<(https?://[^>]*/u/[^>]*)>", v).group(1))'
}
LA=$(link_of a@example.jp)
LB=$(link_of b@example.jp)
TA=${LA##*/}
TB=${LB##*/}
TC=$(link_of c@example.jp); TC=${TC##*/}
check "tokens from the List-Unsubscribe links" -- test ${#TA} = 44 -a ${#TB} = 44

before=$(db_digest)
FORGED=$(printf '%s' "$TA" | sed 's/^\(.\{30\}\)./\1Q/')
[ "$FORGED" = "$TA" ] && FORGED=$(printf '%s' "$TA" | sed 's/^\(.\{30\}\)./\1R/')
n=0
for t in "$FORGED" "$(printf '%s' "$TA" | cut -c1-43)" "${TA}x" "" "not-a-token" \
	"$(printf '%s' "$TB" | cut -c1-12)$(printf '%s' "$TA" | cut -c13-)"; do
	n=$((n + 1))
	expect_exit 65 "bad token #$n refused" -- sam unsubscribe "$t"
	cp "$T/err" "$T/err$n"
	check "bad token #$n: one line, names no address" -- \
		eval 'test "$(wc -l < "$T/err$n")" = 1 && ! grep -q "@" "$T/err$n"'
done
check "the same message for every bad token" -- \
	eval 'cmp -s "$T/err1" "$T/err2" && cmp -s "$T/err1" "$T/err3" && cmp -s "$T/err1" "$T/err6"'
check "bad tokens changed nothing" -- test "$(db_digest)" = "$before"
expect_exit 64 "no token is a usage error" -- sam unsubscribe
expect_exit 64 "two tokens is a usage error" -- sam unsubscribe "$TA" "$TB"

expect_exit 0 "unsubscribe with a token" -- sam $NOW unsubscribe "$TA"
check "  ... says who" -- grep -q "unsubscribed a@example.jp" "$T/out"
check "  ... status unsubscribed" -- eval 'sam subscriber list --status unsubscribed | grep -q "^a@example.jp"'
check "  ... queued mail cancelled" -- \
	test "$(sqlite3 "$T/samail.db" "SELECT state FROM outbox WHERE rcpt = 'a@example.jp'")" = cancelled
check "  ... b untouched" -- \
	test "$(sqlite3 "$T/samail.db" "SELECT state FROM outbox WHERE rcpt = 'b@example.jp'")" = queued
expect_exit 0 "again: fine" -- sam unsubscribe "$TA"
check "  ... says it was already" -- grep -q "already unsubscribed" "$T/out"
expect_exit 0 "the whole link works too (--json)" -- sam --json unsubscribe "<$LB>"
check "  ... JSON result" -- eval '$PY -c "
import json,sys
d=json.load(open(\"$T/out\"))
assert d==[{\"declarer\":2,\"email\":\"b@example.jp\",\"result\":\"unsubscribed\"}], d"'

# The mailto form of the header, and the subject of such a mail.
MC=$(sam $NOW newsletter preview --period 2026-01 --email c@example.jp | $PY -c '
import email, re, sys
m = email.message_from_bytes(sys.stdin.buffer.read())
v = re.sub(r"\s+", "", m["List-Unsubscribe"])
print(re.search(r"<(mailto:[^>]*)>", v).group(1))')
check "the mailto link carries the token" -- eval 'case "$MC" in *"%20$TC") true;; *) false;; esac'
expect_exit 0 "the mailto link works" -- sam unsubscribe "$MC"
check "  ... c unsubscribed" -- eval 'sam subscriber list --status unsubscribed | grep -q "^c@example.jp"'
expect_exit 0 "the subject of a mailto request works too" -- sam unsubscribe "unsubscribe $TC"
check "  ... already" -- grep -q "already unsubscribed" "$T/out"
expect_exit 0 "reactivate c" -- sam subscriber update c@example.jp --status active

# Busy database: 75, so a mail-driven caller retries.
(echo "BEGIN IMMEDIATE; UPDATE meta SET value = value;"; sleep 3; echo "COMMIT;") | sqlite3 "$T/samail.db" &
LOCKER=$!
sleep 0.5
sed "s|^path = $T/samail.db|path = $T/samail.db\nbusy_timeout = 200|" "$T/samail.conf" > "$T/busy.conf"
expect_exit 75 "database busy: exit 75" -- "$SAMAIL" -c "$T/busy.conf" unsubscribe "$TC"
wait $LOCKER
check "  ... and c is still active" -- eval 'sam subscriber list --status active | grep -q "^c@example.jp"'

# An admin reactivates; the next build queues the address again.
expect_exit 0 "reactivate" -- sam subscriber update a@example.jp --status active
HA=$(printf a@example.jp | sha256sum | cut -c1-64)
check "  ... suppression lifted for a, kept for b" -- \
	test "$(sqlite3 "$T/samail.db" "SELECT count(*), sum(hash = '$HA') FROM suppression")" = "1|0"
expect_exit 0 "February build" -- sam --now=2026-03-03T00:00:00Z newsletter build --period 2026-02
check "  ... queues a again" -- \
	test "$(sqlite3 "$T/samail.db" "SELECT count(*) FROM outbox o JOIN campaign c ON c.id = o.campaign_id WHERE c.name = 'newsletter-2026-02' AND o.rcpt = 'a@example.jp'")" = 1
finish
