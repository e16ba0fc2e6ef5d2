#!/bin/sh
# A month whose newsletter no run built: the machine was off from before
# the newsletter was due until the month after (or the monthly run was
# killed and no run came after it that month).  The runs build only the
# newest month by themselves, so a stale newsletter is never mailed weeks
# late unasked; but every run and `samail status` say plainly that it was
# never built and how to build or skip it, until an admin does either.
. "$(dirname "$0")/lib.sh"
[ -x "$PY" ] || { echo "no $PY"; exit 77; }
command -v sqlite3 >/dev/null || { echo "no sqlite3"; exit 77; }

write_config </dev/null
sam init >/dev/null 2>&1
sam feed add "$SRCDIR/feeds/samples/jvn.rdf" --name jvn >/dev/null
for i in 1 2 3; do
	sam subscriber add --email "user$i@example.jp" --org "株式会社$i" --products windows >/dev/null
done
built() { sqlite3 samail.db "SELECT count(*) FROM campaign WHERE name = 'newsletter-$1'"; }
json_ok() { $PY -m json.tool out >/dev/null; }

# Installed on Oct 30: the first run catches up September's newsletter
# (still the newest one due) and says nothing about the months before.
expect_exit 0 "daily, Oct 30 06:30 JST, the first run" -- sam -q --now 2026-10-29T21:30:00Z run daily
check "  ... builds September's and says nothing about earlier months" -- eval \
	'[ "$(built 2026-09)" = 1 ] && ! grep -q "never built" out err'

# The machine is off from Oct 31 to Dec 2: no run at all in November.
expect_exit 0 "daily -q, Dec 3 06:30 JST, after a month off" -- \
	sam -q --now 2026-12-02T21:30:00Z run daily
check "  ... builds November's (the newest), not October's" -- eval \
	'[ "$(built 2026-11)" = 1 ] && [ "$(built 2026-10)" = 0 ]'
check "  ... says under -q that October's was never built, when, and what to do" -- grep -q \
	"^  newsletter: newsletter-2026-11 built (caught up: the monthly run had not built it): 3 queued.*; newsletter-2026-10 was NEVER BUILT (no run between 2026-10-30 06:30 JST and 2026-12-03 06:30 JST): build it with 'samail newsletter build --period 2026-10' if it is still wanted, or drop it with 'samail newsletter skip --period 2026-10'$" out
check "  ... as a warning in the log" -- \
	grep -q " warning newsletter: newsletter-2026-10 was never built (no run between" err
check "  ... the run is still a success (exit 0): the steps did their work" -- \
	grep -q "^samail run daily, 2026-12-03 06:30 JST: ok after" out
expect_exit 0 "status the same morning" -- sam --now 2026-12-02T22:00:00Z status
check "  ... says it too" -- eval \
	'grep -q "^Newsletters never built$" out &&
	 grep -A6 "^Newsletters never built$" out | tr -s " \n" "  " | grep -q "newsletter-2026-10 (due 2026-11-01 09:00 JST): no run between 2026-10-30 06:30 JST and 2026-12-03 06:30 JST; build it with .samail newsletter build --period 2026-10. if it is still wanted, or drop it with .samail newsletter skip --period 2026-10."'
expect_exit 0 "status --json the same morning" -- sam --json --now 2026-12-02T22:00:00Z status
check "  ... valid JSON with a newsletter_missed record" -- eval 'json_ok && $PY - out <<PY
import json, sys
r = [x for x in json.load(open(sys.argv[1])) if x["type"] == "newsletter_missed"]
assert r == [{"type": "newsletter_missed", "period": "2026-10", "campaign": "newsletter-2026-10",
  "due": "2026-11-01T00:00:00Z", "until": "2026-11-30T15:00:00Z", "runs_in_window": 0,
  "last_run_before": "2026-10-29T21:30:00Z", "first_run_after": "2026-12-02T21:30:00Z",
  "last_run_in_window": None}], r
PY'
expect_exit 0 "daily -q, Dec 4: still says it (not handled yet)" -- \
	sam -q --now 2026-12-03T21:30:00Z run daily
check "  ... once more" -- grep -q "newsletter-2026-10 was NEVER BUILT" out
expect_exit 0 "the admin builds it by hand" -- sam --now 2026-12-04T01:00:00Z newsletter build --period 2026-10
expect_exit 0 "daily -q, Dec 5: nothing more to say" -- sam -q --now 2026-12-04T21:30:00Z run daily
check "  ... prints nothing (the built newsletter was sent)" -- eval '[ ! -s out ] && [ ! -s err ]'
expect_exit 0 "status: no newsletter missing" -- sam --now 2026-12-04T22:00:00Z status
check "  ... the section is gone" -- eval '! grep -q "never built" out'

# December: runs until Dec 31; the monthly run of Jan 1 09:00 is killed
# before its newsletter step (its row is left unfinished), and the
# machine stays off until Feb 2.
expect_exit 0 "daily, Dec 31" -- sam -q --now 2026-12-30T21:30:00Z run daily
sqlite3 samail.db "INSERT INTO run (kind, started) VALUES ('monthly', '2027-01-01T00:00:00Z')"
expect_exit 0 "daily -q, Feb 2 06:30 JST" -- sam -q --now 2027-02-01T21:30:00Z run daily
check "  ... December's: the one run in its time was interrupted" -- grep -q \
	"; newsletter-2026-12 was NEVER BUILT (the 1 run between 2027-01-01 09:00 JST and 2027-02-01 00:00 JST did not build it: it was interrupted): build it with 'samail newsletter build --period 2026-12' if it is still wanted, or drop it with 'samail newsletter skip --period 2026-12'$" out
expect_exit 65 "skip a month that was built: refused" -- sam --now 2027-02-01T23:00:00Z newsletter skip --period 2027-01
check "  ... saying so" -- grep -q "newsletter-2027-01 was built on 2027-02-02 06:30 JST: there is nothing to skip" err
expect_exit 0 "the admin drops December's" -- sam --now 2027-02-01T23:00:00Z newsletter skip --period 2026-12
check "  ... says so" -- grep -q "^newsletter-2026-12 skipped: no run builds it, and no run or status mentions it again$" out
expect_exit 0 "  ... again: already skipped" -- sam --now 2027-02-01T23:10:00Z newsletter skip --period 2026-12
expect_exit 0 "daily -q, Feb 3: nothing more to say" -- sam -q --now 2027-02-02T21:30:00Z run daily
check "  ... prints nothing" -- eval '[ ! -s out ] && [ ! -s err ]'
check "  ... and December's is still not built" -- test "$(built 2026-12)" = 0
expect_exit 0 "status --json: no newsletter missing" -- sam --json --now 2027-02-02T22:00:00Z status
check "  ... valid, no newsletter_missed record" -- eval 'json_ok && ! grep -q newsletter_missed out'

# Skipped ahead of time: the run that would build it says it was skipped.
expect_exit 0 "skip February's before it is due" -- sam --now 2027-02-20T00:00:00Z newsletter skip --period 2027-02
expect_exit 0 "monthly, Mar 1 09:00 JST" -- sam --now 2027-03-01T00:00:00Z run monthly
check "  ... builds nothing, says it was skipped" -- eval \
	'[ "$(built 2027-02)" = 0 ] && grep -q "^  newsletter: newsletter-2027-02 was skipped (samail newsletter skip) on 2027-02-20 09:00 JST; nothing to do$" out'
finish
