#!/bin/sh
# The reminders in status: the forecast from the [remind] rules says, for
# each of the next 7 days, how many reminders the daily runs will queue;
# daily runs over those days queue exactly that many, and each declarer's
# reminders are in the maildir once.
. "$(dirname "$0")/lib.sh"
[ -x "$PY" ] || { echo "no $PY"; exit 77; }
command -v sqlite3 >/dev/null || { echo "no sqlite3"; exit 77; }

write_config </dev/null
sam init >/dev/null 2>&1
$PY "$SRCDIR/tests/bench/gen-declarers.py" 600 decl.csv
expect_exit 0 "import 600 generated declarers" -- sam subscriber import decl.csv

# The first run catches up whatever was due before; from then on each
# day's run queues that day's reminders.
expect_exit 0 "daily, 2026-11-10" -- sam --now 2026-11-09T18:30:00Z run daily
expect_exit 0 "status --json the same day" -- sam --json --now 2026-11-09T19:00:00Z status
cp out status.json
$PY - status.json > forecast.txt <<'PY'
import json, sys
for r in json.load(open(sys.argv[1])):
    if r["type"] == "reminder_due":
        print(r["date"], r["reassess"] + r["stepup"])
PY
check "the forecast names some days in the next week" -- test -s forecast.txt
total=0
for day in 11 12 13 14 15 16 17; do
	sam --now "2026-11-$((day - 1))T18:30:00Z" run daily > day.out 2>&1
	got=$(sed -n 's/^  remind: \([0-9]*\) reminders\{0,1\} queued$/\1/p' day.out)
	want=$(awk -v d="2026-11-$day" '$1 == d { print $2 }' forecast.txt)
	want=${want:-0}
	total=$((total + got))
	check "2026-11-$day: the run queued $got, the forecast said $want" -- test "$got" = "$want"
done
check "some reminders went out that week ($total)" -- test "$total" -gt 0
dups=$(grep -ih "^Message-ID: <reminder-" mail/new/* | sort | uniq -d | wc -l)
check "no reminder twice in the maildir" -- test "$dups" = 0
expect_exit 0 "status text" -- sam --now 2026-11-17T00:00:00Z status
check "  ... the forecast section" -- \
	grep -q "^Reminders due in the next 7 days (from the \[remind\] rules, 600 active declarers)$" out
check "  ... nothing queued and unsent" -- eval \
	'sed -n "/^Reminders queued, not sent yet/,\$p" out | grep -q "^  none$"'
finish
