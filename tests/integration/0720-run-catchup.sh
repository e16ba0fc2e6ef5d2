#!/bin/sh
# The newsletter schedule: a monthly run that did not happen is caught up
# by the next daily run, exactly once; later runs (daily or monthly) never
# build it again, nor queue it for declarers added since; a monthly run
# that comes early says so; each declarer gets each newsletter once.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || { echo "no sqlite3"; exit 77; }

write_config </dev/null
sam init >/dev/null 2>&1
sam feed add "$SRCDIR/feeds/samples/ipa-alert.rdf" --name ipa --alert >/dev/null
sam feed add "$SRCDIR/feeds/samples/jvn.rdf" --name jvn >/dev/null
for i in 1 2 3 4 5; do
	sam subscriber add --email "user$i@example.jp" --org "株式会社$i" --products windows,office >/dev/null
done
queued() { sqlite3 samail.db "SELECT count(*) FROM outbox o JOIN campaign c ON c.id = o.campaign_id WHERE c.name = '$1'"; }
delivered() { grep -il "^Message-ID: <$1\." mail/new/* 2>/dev/null | wc -l; }

# Daily at 03:30 JST = 18:30 UTC the day before.
expect_exit 0 "daily, Nov 1 03:30 JST: before the newsletter is due" -- \
	sam --now 2026-10-31T18:30:00Z run daily
check "  ... says when it is due" -- \
	grep -q "^  newsletter: newsletter-2026-10 is not due until 2026-11-01 09:00 JST$" out
check "  ... and builds nothing" -- test "$(queued newsletter-2026-10)" = 0
expect_exit 0 "daily -q before it is due prints nothing" -- \
	sam -q --now 2026-10-31T18:40:00Z run daily
check "  ... (not due is normal for a daily run)" -- eval '[ ! -s out ] && [ ! -s err ]'

# The monthly run of Nov 1 09:00 JST never happens (machine off); the
# daily run of Nov 2 does not happen either.
expect_exit 0 "daily, Nov 3 03:30 JST: catches up the missed monthly run" -- \
	sam --now 2026-11-02T18:30:00Z run daily
check "  ... says it caught up" -- \
	grep -q "^  newsletter: newsletter-2026-10 built (caught up: the monthly run had not built it): 5 queued" out
check "  ... and sent it" -- grep -q "^  send: 5 sent via maildir:" out
check "  ... one per declarer" -- test "$(delivered newsletter-2026-10)" = 5

expect_exit 0 "daily, Nov 4: nothing again" -- sam --now 2026-11-03T18:30:00Z run daily
check "  ... built already, on the day it was caught up" -- \
	grep -q "^  newsletter: newsletter-2026-10 was built on 2026-11-03 03:30 JST; nothing to do$" out
sam subscriber add --email late@example.jp --org 株式会社遅 >/dev/null
expect_exit 0 "daily, Nov 5, after a declarer was added" -- sam --now 2026-11-04T18:30:00Z run daily
check "  ... the newcomer does not get last month's newsletter" -- test "$(queued newsletter-2026-10)" = 5
expect_exit 0 "monthly run at last (Nov 5 09:00, by hand)" -- sam --now 2026-11-05T00:00:00Z run monthly
check "  ... builds nothing either" -- eval \
	'grep -q "^  newsletter: newsletter-2026-10 was built on" out && [ "$(queued newsletter-2026-10)" = 5 ]'
check "still one October newsletter per declarer" -- test "$(delivered newsletter-2026-10)" = 5

# December: the monthly run comes an hour early (its timer and the config
# disagree): it says so, even under -q, and builds nothing.
expect_exit 0 "monthly -q, Dec 1 08:00 JST: early" -- sam -q --now 2026-11-30T23:00:00Z run monthly
check "  ... prints the run's lines though quiet" -- \
	grep -q "^  newsletter: newsletter-2026-11 is not due until 2026-12-01 09:00 JST (\[newsletter\] day and hour); this monthly run came early" out
check "  ... with a warning in the log" -- grep -q " warning newsletter: newsletter-2026-11 is not due" err
check "  ... nothing built" -- test "$(queued newsletter-2026-11)" = 0
expect_exit 0 "monthly -q, Dec 1 09:00 JST: on time, silent" -- sam -q --now 2026-12-01T00:00:00Z run monthly
check "  ... prints nothing" -- eval '[ ! -s out ] && [ ! -s err ]'
check "  ... November's newsletter for all 6 declarers" -- test "$(delivered newsletter-2026-11)" = 6
expect_exit 0 "daily, Dec 2" -- sam --now 2026-12-01T18:30:00Z run daily
check "  ... nothing twice" -- eval \
	'[ "$(delivered newsletter-2026-11)" = 6 ] && [ "$(queued newsletter-2026-11)" = 6 ] && [ "$(find mail/new -type f | wc -l)" = 11 ]'

# [newsletter] day = 5, hour = 7: the daily run of the 5th at 03:30 is too
# early; the one of the 6th builds it.
cat >> samail.conf <<CONF
[newsletter]
day = 5
hour = 7
CONF
expect_exit 0 "day = 5: daily Jan 5 03:30 JST" -- sam --now 2027-01-04T18:30:00Z run daily
check "  ... not due until Jan 5 07:00" -- grep -q "newsletter-2026-12 is not due until 2027-01-05 07:00 JST" out
expect_exit 0 "day = 5: daily Jan 6 03:30 JST" -- sam --now 2027-01-05T18:30:00Z run daily
check "  ... builds December's" -- grep -q "^  newsletter: newsletter-2026-12 built (caught up" out
finish
