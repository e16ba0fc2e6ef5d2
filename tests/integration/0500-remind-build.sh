#!/bin/sh
# samail remind build: usage, dry run, summary, once per day, a template
# error (65, file:line:col, nothing stored), a bad assessment_url (78), and
# the messages it makes checked with checkmail.py, checkhtml.py, checkics.py.
. "$(dirname "$0")/lib.sh"
write_config <<CONF
[unsubscribe]
base_url = https://news.example.jp/u/
CONF
sam init >/dev/null 2>&1
N=--now=2025-12-16T01:00:00Z		# 10:00 in Japan

# ★ declared 2025-07-15: step-up due 2026-01-15, 30 days before today.
sam $N subscriber add --email a@example.jp --org 山田工務店 --name "山田 一郎" \
	--star 1 --declared 2025-07-15 >/dev/null
# ★★, self-diagnosis 2024-12-16: due today.  English.
sam $N subscriber add --email b@example.jp --org "Example & <Sons>" --star 2 \
	--declared 2024-01-10 --assessed 2024-12-16 --locale en >/dev/null
# ★★ declared 2024-11-16, no self-diagnosis: due 2025-11-16, a month overdue.
sam $N subscriber add --email c@example.jp --org 株式会社さくら --star 2 \
	--declared 2024-11-16 >/dev/null
# No date at all, and one unsubscribed: nothing for them.
sam $N subscriber add --email d@example.jp --org 日付なし >/dev/null
sam $N subscriber add --email e@example.jp --org 配信停止 --star 2 \
	--assessed 2024-12-16 >/dev/null
sam $N subscriber update e@example.jp --status unsubscribed >/dev/null

expect_exit 64 "remind without a command" -- sam remind
expect_exit 64 "an unknown remind command" -- sam remind frob
expect_exit 64 "an unknown option" -- sam remind build --frob
expect_exit 64 "a stray argument" -- sam remind build extra
expect_exit 0 "remind build --help" -- sam remind build --help
check "  ... says what it does" -- grep -q "catch_up_days" "$T/out"

before=$(db_digest)
expect_exit 0 "dry run" -- sam $N remind build --dry-run
check "  ... reports what it would queue" -- grep -q \
	"^dry run, nothing stored: reminder-2025-12-16: 3 queued (reassess: 1 on the day, 1 overdue; stepup: 1 before)" "$T/out"
check "  ... and stores nothing" -- test "$(db_digest)" = "$before"

expect_exit 0 "build" -- sam $N remind build
# b's 30-day moment passed 30 days ago (too late), its 7-day one is
# superseded by today's; c's three before the due date are too late.
check "  ... summary: queued per kind and position, skipped, declarers without a date" -- grep -q \
	"^reminder-2025-12-16: 3 queued (reassess: 1 on the day, 1 overdue; stepup: 1 before); 0 cancelled, 4 skipped as too late, 1 superseded, 0 suppressed; 4 active declarers, 1 without a date" "$T/out"
check "  ... one campaign of kind reminder for the day" -- test \
	"$(sqlite3 samail.db "SELECT kind, name, count(*) FROM campaign")" = "reminder|reminder-2025-12-16|1"
check "  ... items DUE:OFFSET" -- test "$(sqlite3 samail.db \
	"SELECT group_concat(item, ' ') FROM (SELECT item FROM outbox ORDER BY subscriber_id)")" = \
	"2026-01-15:30 2025-12-16:0 2025-11-16:-30"
expect_exit 0 "build again the same day" -- sam -q $N remind build
check "  ... -q prints nothing" -- test ! -s "$T/out"
check "  ... and nothing is queued twice" -- test "$(sqlite3 samail.db "SELECT count(*) FROM outbox")" = 3

expect_exit 0 "send" -- sam $N send
check "  ... three messages in the maildir" -- test "$(ls mail/new | wc -l)" = 3

# Split each message into its parts for the checkers.
$PY - <<'PY'
import email, email.policy, glob, json
for path in glob.glob("mail/new/*"):
    m = email.message_from_binary_file(open(path, "rb"), policy=email.policy.default)
    who = m["to"].addresses[0].username
    open(who + ".eml", "wb").write(open(path, "rb").read())
    for p in m.walk():
        t = p.get_content_type()
        if t == "text/html":
            open(who + ".html", "w", encoding="utf-8").write(p.get_content())
        elif t == "text/plain":
            open(who + ".txt", "w", encoding="utf-8").write(p.get_content())
        elif t == "text/calendar":
            open(who + ".ics", "wb").write(p.get_payload(decode=True))
PY
inst=$(sqlite3 samail.db "SELECT value FROM meta WHERE key = 'instance'")
aid=$(sqlite3 samail.db "SELECT id FROM subscriber WHERE email = 'a@example.jp'")
# The Message-ID with its HMAC tag, computed independently of samail.
mid=$(printf 'reminder-2025-12-16.%s.2026-01-15-30.5a17c0de@example.jp' "$aid" |
	$PY "$SRCDIR/tests/tools/tag-mids.py" "$T/unsubscribe.key" "$inst")
expect_exit 0 "checkmail: ja step-up reminder 30 days before" -- $PY "$SRCDIR/tests/tools/checkmail.py" a.eml --lf \
	--subject "二つ星に向けた自社診断のご案内 目安日：2026年1月15日（木）" \
	--from-name "SECURITY ACTION 事務局" --from-addr news@example.jp \
	--to-name "山田 一郎" --to-addr a@example.jp \
	--message-id "$mid" \
	--date "$(date -d 2025-12-16T01:00:00Z +%s)" --list-id security-action.example.jp \
	--attachment-type "text/calendar; method=PUBLISH; charset=UTF-8" \
	--attachment-filename "自社診断-2026-01-15.ics" --attachment-file a.ics
expect_exit 0 "checkmail: en reminder on the day" -- $PY "$SRCDIR/tests/tools/checkmail.py" b.eml --lf \
	--subject "Today is the suggested date for your security self-assessment" \
	--to-name "Example & <Sons>" --to-addr b@example.jp \
	--attachment-type "text/calendar; method=PUBLISH; charset=UTF-8" \
	--attachment-filename "self-assessment-2025-12-16.ics" --attachment-file b.ics
expect_exit 0 "checkmail: ja overdue reminder" -- $PY "$SRCDIR/tests/tools/checkmail.py" c.eml --lf \
	--subject "情報セキュリティ自社診断の見直しはお済みですか 目安日：2025年11月16日（日）" \
	--to-name 株式会社さくら --attachment-filename "自社診断-2025-11-16.ics"
expect_exit 0 "checkhtml: the three HTML parts" -- $PY "$SRCDIR/tests/tools/checkhtml.py" a.html b.html c.html
expect_exit 0 "checkics: the step-up event on its due date" -- $PY "$SRCDIR/tests/tools/checkics.py" a.ics \
	--uid "reminder-$aid-20260115.$inst@example.jp" --sequence 0 --dtstart 20260115T100000 \
	--duration 30 --alarm-before 1440 --url https://www.ipa.go.jp/security/guide/sme/5minutes.html \
	--summary "情報セキュリティ自社診断・二つ星に向けて（SECURITY ACTION）" \
	--organizer mailto:news@example.jp --organizer-name "SECURITY ACTION 事務局"
expect_exit 0 "checkics: the overdue event on the next weekday (Wed 12-17)" -- \
	$PY "$SRCDIR/tests/tools/checkics.py" c.ics --sequence 0 --dtstart 20251217T100000
check "  ... and the mail names that day" -- grep -q "2025年12月17日（水） 10:00から30分" c.txt
# The event's own text: an overdue one is not on its due date, so it does
# not call its day the suggested one; one on its due date does.
desc() { $PY -c 'import icalendar, sys; print(icalendar.Calendar.from_ical(open(sys.argv[1], "rb").read()).walk("VEVENT")[0]["DESCRIPTION"])' "$1"; }
check "  ... the moved event says its due date has passed" -- eval \
	'desc c.ics | grep -q "^情報セキュリティ自社診断の見直しの目安日（2025年11月16日（日））を過ぎています。" && ! desc c.ics | grep -q "目安の日です"'
check "  ... the event on its due date says it is that day" -- eval \
	'desc b.ics | grep -q "^The suggested date to redo your information security self-assessment.$" && desc a.ics | grep -q "^二つ星（★★）に向けて、情報セキュリティ自社診断を行う目安の日です。$"'
check "the text: days left, the day, days overdue" -- eval \
	'grep -q "あと30日です" a.txt && grep -q "That is today." b.txt && grep -q "目安日から30日が過ぎています" c.txt'
# The alarm is the day before (issue 6); for a slot on the day the mail
# goes out (b: on its due date) that has passed, and the mail does not
# promise it.
trig() { $PY -c 'import icalendar, sys; print(icalendar.Calendar.from_ical(open(sys.argv[1], "rb").read()).walk("VALARM")[0]["TRIGGER"].to_ical().decode())' "$1"; }
check "the alarm the day before; promised by the mail only where it is still ahead (a, c; not b, on the day)" -- eval \
	'[ "$(trig a.ics)" = -P1D ] && [ "$(trig b.ics)" = -P1D ] && [ "$(trig c.ics)" = -P1D ] && ! grep -q "day before" b.txt b.html && tr "\n" " " < b.txt | grep -q "to your calendar\. " && grep -q "^前日に通知が出るよう" a.txt && grep -q "^前日に通知が出るよう" c.txt && grep -q "登録でき、前日に通知が出るよう設定してあります。" a.html'
check "the HTML escapes the organisation" -- grep -q "Example &amp; &lt;Sons&gt;" b.html
check "the last self-diagnosis as English writes a date" -- \
	grep -q "Your last self-assessment: 16 December 2024" b.txt

# A template error: 65 with file:line:col, and nothing stored.
cp -R "$SRCDIR/templates" tpl
sed -i 's/{{due_label}}/{{due_lable}}/' tpl/ja/reminder.html.mustache
cp samail.conf bad.conf
printf '[paths]\ntemplates = %s/tpl\n' "$T" >> bad.conf
before=$(db_digest)
expect_exit 65 "a misspelt name in a template" -- "$SAMAIL" -c bad.conf --now 2026-01-08T01:00:00Z remind build
check "  ... names file:line:col" -- grep -q "tpl/ja/reminder.html.mustache:[0-9]*:[0-9]*: .*due_lable" "$T/err"
check "  ... nothing stored" -- test "$(db_digest)" = "$before"
cp -R "$SRCDIR/templates/." tpl/
printf '{{#kind_stepup}}\n' >> tpl/en/reminder.ics-description.mustache
expect_exit 65 "an unclosed section in the .ics description" -- "$SAMAIL" -c bad.conf --now 2026-01-08T01:00:00Z remind build
check "  ... names the file" -- grep -q "tpl/en/reminder.ics-description.mustache:" "$T/err"
check "  ... nothing stored" -- test "$(db_digest)" = "$before"

# assessment_url goes into the .ics and mail: refused unless http(s).
cp samail.conf url.conf
printf '[remind]\nassessment_url = javascript:alert(1)\n' >> url.conf
expect_exit 78 "a bad [remind] assessment_url" -- "$SAMAIL" -c url.conf --now 2026-01-08T01:00:00Z remind build
check "  ... names the key" -- grep -q "assessment_url" "$T/err"
check "  ... nothing stored" -- test "$(db_digest)" = "$before"

# The next reminders; the unsubscribed declarer still gets nothing.
expect_exit 0 "a week later" -- sam --now 2026-01-08T01:00:00Z remind build
check "  ... the 7-day step-up reminder" -- grep -q "^reminder-2026-01-08: 1 queued (stepup: 1 before)" "$T/out"
check "  ... never for the unsubscribed declarer" -- test \
	"$(sqlite3 samail.db "SELECT count(*) FROM outbox o JOIN subscriber s ON s.id = o.subscriber_id WHERE s.email = 'e@example.jp'")" = 0
finish
