#!/bin/sh
# samail bounce with the fixtures of tests/data/bounces: each classified
# (hard/soft/not a bounce, status code, which declarer), the database
# effect asserted, soft bounces reaching the limit, hostile input.
. "$(dirname "$0")/lib.sh"
write_config <<CONF
[bounce]
soft_limit = 3
soft_days = 30
CONF
expect_exit 0 "init" -- sam init
# Declarers 1..8 in the order the fixtures' Message-IDs name them.
for a in taro@example.co.jp hanako@example.org jiro@example.com saburo@example.net \
	shiro@contoso.example goro@example.ne.jp rokuro@example.jp sachiko@example.ne.jp; do
	sam subscriber add --email $a --org "株式会社テスト" >/dev/null
done
sam subscriber add --email other@example.jp --org "株式会社ほか" >/dev/null
expect_exit 0 "newsletter build (January)" -- sam --now=2026-02-01T00:00:00Z newsletter build --period 2026-01
# The fixtures carry instance 5a17c0de: use this database's.
MID=$(sam --now=2026-02-01T00:00:00Z newsletter preview --period 2026-01 --email taro@example.co.jp |
	sed -n 's/^Message-I[Dd]: <\(newsletter-2026-01\.1\.[A-Za-z0-9_-]\{12\}\.[0-9a-f]*@[^>]*\)>.*/\1/p')
INST=$(printf '%s' "$MID" | sed 's/.*\.\([0-9a-f]*\)@.*/\1/')
check "this database's instance id, and a 12-character tag in the Message-ID" -- test ${#INST} = 8
# The fixtures carry our Message-IDs untagged with instance 5a17c0de:
# write them as this database makes them (its key, its instance).
mkdir -p "$T/b"
for f in "$DATA"/bounces/*.eml "$DATA"/bounces/*.bin; do
	$PY "$SRCDIR/tests/tools/tag-mids.py" "$T/unsubscribe.key" "$INST" < "$f" > "$T/b/$(basename "$f")"
done
check "tag-mids.py makes the same Message-ID as samail" -- \
	eval 'printf "newsletter-2026-01.1.5a17c0de@example.jp" | $PY "$SRCDIR/tests/tools/tag-mids.py" "$T/unsubscribe.key" "$INST" | grep -qxF "$MID"'


# field JSON KEY: a value from `--json bounce` output
field() { $PY -c "import json,sys; v=json.load(open('$T/out'))[0]; print(v.get('$1'))"; }
status_of() { sam --json subscriber show "$1" | $PY -c 'import json,sys; print(json.load(sys.stdin)[0]["status"])'; }

# Not bounces: exit 0, a log line, nothing changes.
before=$(db_digest)
for f in vacation-ja.eml vacation-en.eml normal.eml success-dsn.eml read-receipt.eml garbage.bin; do
	expect_exit 0 "$f: exit 0" -- sam --json bounce "$T/b/$f"
	check "$f: not a bounce" -- test "$(field bounce)" = none
	check "$f: a log line says so" -- grep -q "not a bounce" "$T/err"
done
expect_exit 0 "empty input: exit 0" -- sam bounce /dev/null
# Bounces about nobody of ours, and a forged one.
for f in not-ours.eml forged-mid.eml; do
	expect_exit 0 "$f: exit 0" -- sam --json bounce "$T/b/$f"
	check "$f: a hard bounce, but no declarer" -- test "$(field bounce) $(field declarer)" = "hard None"
	check "$f: logged without addresses" -- eval 'grep -q "not about one of our declarers" "$T/err" &&
		! grep -q -e stranger@ -e attacker@ -e taro@ "$T/err"'
done
check "nothing changed so far" -- test "$(db_digest)" = "$before"

# Hard bounces: each marks its declarer bounced at once.
n=0
while read -r f email id code format; do
	n=$((n + 1))
	expect_exit 0 "$f: exit 0" -- sam --now=2026-02-02T01:00:00Z --json bounce "$T/b/$f"
	check "$f: hard $code ($format) for declarer $id by Message-ID" -- \
		test "$(field bounce) $(field status) $(field declarer) $(field found_by)" = "hard $code $id message-id"
	check "$f: recipient and format" -- eval '$PY -c "
import json; v=json.load(open(\"$T/out\"))[0]
assert v[\"format\"]==\"$format\" and v[\"recipients\"][0][\"address\"]==\"$email\", v"'
	check "$f: $email is bounced" -- test "$(status_of "$email")" = bounced
	check "$f: a log line says so (also under --json/-q: a status change)" -- \
		grep -q "warning: declarer $id marked bounced: hard bounce $code" "$T/err"
done <<EOF
postfix-hard.eml taro@example.co.jp 1 5.1.1 dsn
exim-dsn.eml hanako@example.org 2 5.1.1 dsn
qmail.eml jiro@example.com 3 5.1.1 qmail
gmail-text.eml saburo@example.net 4 5.1.1 gmail
exchange-ndr.eml shiro@contoso.example 5 5.1.10 dsn
exim-text.eml goro@example.ne.jp 6 5.0.0 exim
jp-isp-text.eml sachiko@example.ne.jp 8 5.1.1 sendmail
EOF
check "bounce rows: 7 hard, with status and Message-ID" -- \
	test "$(sqlite3 "$T/samail.db" "SELECT count(*) FROM bounce WHERE kind = 'hard' AND status LIKE '5.%' AND message_id LIKE 'newsletter-2026-01.%'")" = 7
check "bounced addresses are listed by status" -- \
	test "$(sam subscriber list --status bounced | wc -l)" = 7
check "their queued mail is cancelled, the others' is not" -- \
	test "$(sqlite3 "$T/samail.db" "SELECT group_concat(state || ':' || n) FROM (SELECT state, count(*) n FROM outbox GROUP BY state ORDER BY state)")" = "cancelled:7,queued:2"
check "suppressed" -- \
	test "$(sqlite3 "$T/samail.db" "SELECT count(*) FROM suppression WHERE reason = 'bounced'")" = 7

# Policy bounces for other (9): the receiver refused the sending set-up (a
# block list, DMARC), not the address.  Recorded, reported with what to
# check, and the declarer stays active: nothing suppressed or cancelled.
before_q=$(sqlite3 "$T/samail.db" "SELECT group_concat(state || ':' || n) FROM (SELECT state, count(*) n FROM outbox GROUP BY state ORDER BY state)")
while read -r f code advice; do
	expect_exit 0 "$f: exit 0" -- sam --now=2026-02-02T02:00:00Z --json bounce "$T/b/$f"
	check "$f: policy $code for declarer 9 by Message-ID, not marked" -- \
		test "$(field bounce) $(field status) $(field declarer) $(field found_by) $(field marked_bounced)" = "policy $code 9 message-id False"
	check "$f: the advice names what to check ($advice)" -- eval 'field advice | grep -q "$advice"'
	check "$f: other@example.jp stays active" -- test "$(status_of other@example.jp)" = active
	check "$f: a warning in the log (also under -q and syslog)" -- \
		grep -q "warning: policy bounce $code for declarer 9: .*stays active.*$advice" "$T/err"
done <<EOF
postfix-blocklist.eml 5.7.1 block list
gmail-dmarc.eml 5.7.26 SPF
EOF
expect_exit 0 "a policy bounce, text output" -- sam --now=2026-02-03T02:00:00Z bounce "$T/b/postfix-blocklist.eml"
check "  ... one line: recorded, stays active, what to check" -- \
	grep -q "^policy bounce 5.7.1 for declarer 9 (found by Message-ID): recorded; the address stays active: .*block list" "$T/out"
check "  ... three policy rows, nothing more suppressed, no mail cancelled" -- eval '
	[ "$(sqlite3 "$T/samail.db" "SELECT count(*) FROM bounce WHERE kind = '"'policy'"' AND subscriber_id = 9 AND verified")" = 3 ] &&
	[ "$(sqlite3 "$T/samail.db" "SELECT count(*) FROM suppression")" = 7 ] &&
	[ "$(sqlite3 "$T/samail.db" "SELECT group_concat(state || '"':'"' || n) FROM (SELECT state, count(*) n FROM outbox GROUP BY state ORDER BY state)")" = "$before_q" ]'
expect_exit 0 "status shows the policy bounces" -- sam --now=2026-02-10T00:00:00Z status
check "  ... counted apart" -- grep -q "bounce reports received this month: 7 permanent, 0 temporary, 3 policy" "$T/out"
check "  ... the last one, with what to check" -- eval 'tr -s " \n" "  " < "$T/out" | grep -q "policy bounces: receivers refused the sending set-up, not the addresses (nobody was marked bounced); the last, 2026-02-03 11:00 JST, 5.7.1: 554 5.7.1 Service unavailable.*block list"'
expect_exit 0 "status --json" -- sam --now=2026-02-10T00:00:00Z --json status
check "  ... bounce_reports_policy and the last one" -- $PY -c "
import json; a=[r for r in json.load(open('$T/out')) if r['type']=='address_counts'][0]
assert a['bounce_reports_policy']==3 and a['last_policy_bounce']['status']=='5.7.1', a
assert 'block list' in a['last_policy_bounce']['advice'], a"
# A full mailbox reported as 5.2.2 is temporary: soft, counted.
expect_exit 0 "mailbox full (552 5.2.2)" -- sam --now=2026-02-02T03:00:00Z --json bounce "$T/b/exim-mailbox-full.eml"
check "  ... soft 5.2.2, 1 soft bounce, not marked" -- \
	test "$(field bounce) $(field status) $(field soft_count) $(field marked_bounced)" = "soft 5.2.2 1 False"
check "  ... still active" -- test "$(status_of other@example.jp)" = active

# Soft bounces for rokuro (7): a delay warning twice (one message), the
# reminder that gave up on a full mailbox, then a third message.
expect_exit 0 "delay warning (stdin, as an MTA pipes it)" -- \
	sh -c "'$SAMAIL' -c '$T/samail.conf' --now=2026-02-02T04:14:40Z --json bounce < '$T/b/postfix-delayed.eml'"
check "  ... soft 4.4.1 for declarer 7, 1 soft bounce" -- \
	test "$(field bounce) $(field status) $(field declarer) $(field soft_count) $(field marked_bounced)" = "soft 4.4.1 7 1 False"
expect_exit 0 "the same message's next warning" -- sam --now=2026-02-02T08:14:40Z --json bounce "$T/b/postfix-delayed.eml"
check "  ... still 1 (one message)" -- test "$(field soft_count)" = 1
expect_exit 0 "mailbox full, another message" -- sam --now=2026-02-20T01:00:05Z --json bounce "$T/b/postfix-mailbox-full.eml"
check "  ... soft 4.2.2, found by address (no such reminder here): recorded, not counted" -- \
	test "$(field status) $(field soft_count) $(field found_by)" = "4.2.2 1 address"
check "  ... still active" -- test "$(status_of rokuro@example.jp)" = active
# December's and February's newsletters went to declarer 7 too: bounces
# for them are ours (tied by the tagged Message-ID).
sam --now=2026-03-01T00:00:00Z newsletter build --period 2026-02 >/dev/null
sam --now=2026-03-01T00:00:00Z newsletter build --period 2025-12 >/dev/null
for c in 2026-02 2025-12; do
	sed "s/newsletter-2026-01\.7\./newsletter-$c.7./" "$DATA/bounces/postfix-delayed.eml" |
		$PY "$SRCDIR/tests/tools/tag-mids.py" "$T/unsubscribe.key" "$INST" > "$T/b/soft-$c.eml"
done
expect_exit 0 "a second message within 30 days" -- sam --now=2026-02-24T00:00:00Z --json bounce "$T/b/soft-2026-02.eml"
check "  ... 2 of 3, still active" -- eval '[ "$(field soft_count)" = 2 ] && [ "$(status_of rokuro@example.jp)" = active ]'
expect_exit 0 "a third message within 30 days" -- sam --now=2026-02-25T00:00:00Z bounce "$T/b/soft-2025-12.eml"
check "  ... marks it bounced" -- grep -q "soft bounce 4.4.1 for declarer 7 .*marked bounced" "$T/out"
check "  ... bounced" -- test "$(status_of rokuro@example.jp)" = bounced

# A forged bounce: our Message-ID format without the tag (whoever writes
# it has no key), naming a declarer's address.  Recorded, status kept.
printf 'From: MAILER-DAEMON@attacker.example\nTo: news@example.jp\nSubject: Undelivered Mail Returned to Sender\nIn-Reply-To: <newsletter-2026-01.9.%s@example.jp>\n\nI'"'"'m sorry to have to inform you that your message could not be\ndelivered to one or more recipients.\n\n<other@example.jp>: host mx.example.org said: 550 5.1.1 user unknown\n' "$INST" > "$T/forged.eml"
expect_exit 0 "a forged bounce (untagged Message-ID)" -- sam --json bounce "$T/forged.eml"
check "  ... is not acted on: other stays active" -- test "$(status_of other@example.jp)" = active

# A bounce for an address already bounced: recorded, nothing else.
expect_exit 0 "a second hard bounce for taro" -- sam bounce "$T/b/postfix-hard.eml"
check "  ... recorded as already bounced" -- grep -q "recorded (already bounced)" "$T/out"
# --dry-run stores nothing.
sed -e 's/taro@example.co.jp/other@example.jp/g' -e 's/newsletter-2026-01\.1\./newsletter-2026-01.9./' \
	"$DATA/bounces/postfix-hard.eml" |
	$PY "$SRCDIR/tests/tools/tag-mids.py" "$T/unsubscribe.key" "$INST" > "$T/b/other.eml"
before=$(db_digest)
expect_exit 0 "--dry-run" -- sam bounce --dry-run "$T/b/other.eml"
check "  ... says what it would do" -- grep -q "dry run, nothing stored: hard bounce 5.1.1 for declarer 9 .*marked bounced" "$T/out"
check "  ... and changes nothing" -- test "$(db_digest)" = "$before"

# An admin reactivates.
expect_exit 0 "reactivate taro" -- sam subscriber update taro@example.co.jp --status active
check "  ... active" -- test "$(status_of taro@example.co.jp)" = active

# Hostile or broken input.
head -c 11000000 /dev/zero | tr '\0' 'x' > "$T/huge"
expect_exit 65 "over 10 MB: 65" -- sam bounce "$T/huge"
expect_exit 65 "over 10 MB on stdin: 65" -- sh -c "'$SAMAIL' -c '$T/samail.conf' bounce < '$T/huge'"
expect_exit 66 "missing file: 66" -- sam bounce "$T/nonexistent.eml"
expect_exit 64 "two files: usage" -- sam bounce a b
n=0
for f in "$T"/b/*.eml; do
	n=$((n + 1))
	head -c 700 "$f" > "$T/cut.eml"
	expect_exit 0 "cut-off $(basename "$f"): exit 0" -- sam bounce --dry-run "$T/cut.eml"
done

# A busy database: 75, so the MTA keeps the bounce and retries.
sed "s|^path = $T/samail.db|path = $T/samail.db\nbusy_timeout = 200|" "$T/samail.conf" > "$T/busy.conf"
(echo "BEGIN IMMEDIATE; UPDATE meta SET value = value;"; sleep 3; echo "COMMIT;") | sqlite3 "$T/samail.db" &
LOCKER=$!
sleep 0.5
expect_exit 75 "database busy: 75" -- "$SAMAIL" -c "$T/busy.conf" bounce "$T/b/other.eml"
wait $LOCKER
expect_exit 75 "database missing: 75 too (an MTA drops a bounce on 66)" -- \
	"$SAMAIL" -c "$T/samail.conf" --db "$T/no-such.db" bounce "$DATA/bounces/postfix-hard.eml"
# A new samail installed and 'samail init' not run yet: the database's
# schema is older.  The bounce is kept for a retry, not dropped (78).
cp "$T/samail.db" "$T/old.db"
sqlite3 "$T/old.db" "PRAGMA user_version = $(( $(sqlite3 "$T/samail.db" 'PRAGMA user_version') - 1 ))"
expect_exit 75 "database not migrated yet: 75 (kept for a retry)" -- \
	"$SAMAIL" -c "$T/samail.conf" --db "$T/old.db" bounce "$DATA/bounces/postfix-hard.eml"
"$SAMAIL" -c "$T/samail.conf" --db "$T/old.db" bounce "$DATA/bounces/postfix-hard.eml" 2>"$T/old.err"
check "the line says the bounce is kept and what to run" -- \
	grep -q "bounce kept for a retry.*samail init" "$T/old.err"
# The database opens, but the bounce cannot be acted on: here the
# unsubscribe key (which checks the VERP address) is gone; a full disk or
# a failing database is the same.  Postfix drops a bounce on any other
# code than 75 (78 is "5.3.5"): it must be kept.
printf '[unsubscribe]\nsecret_file = %s\n' "$T/no-such.key" | cat "$T/samail.conf" - > "$T/nokey.conf"
expect_exit 75 "unsubscribe key missing: 75 (kept for a retry), not 78" -- \
	env -u SAMAIL_UNSUBSCRIBE_SECRET "$SAMAIL" -c "$T/nokey.conf" bounce "$DATA/bounces/postfix-hard.eml"
env -u SAMAIL_UNSUBSCRIBE_SECRET "$SAMAIL" -c "$T/nokey.conf" bounce "$DATA/bounces/postfix-hard.eml" 2>"$T/nokey.err"
check "the line says the bounce is kept and why" -- \
	grep -q "bounce kept for a retry.*no unsubscribe key" "$T/nokey.err"
finish
