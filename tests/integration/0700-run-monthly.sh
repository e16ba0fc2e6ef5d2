#!/bin/sh
# samail run monthly on the built-in defaults (what `make demo` does): only
# the offline sample feeds are configured; the database and the maildir are
# the defaults under var/.  Then run again: nothing twice; -q is silent on
# success; status shows the runs.
. "$(dirname "$0")/lib.sh"
[ -x "$PY" ] || { echo "no $PY"; exit 77; }
command -v sqlite3 >/dev/null || { echo "no sqlite3"; exit 77; }

mkdir var
cat > var/demo.conf <<CONF
[feeds]
allow_local_files = yes
seed = $SRCDIR/feeds/samples/feeds.conf
CONF
S() { "$SAMAIL" -c var/demo.conf "$@"; }
NOW=2026-11-01T00:00:00Z	# 09:00 JST on Nov 1: October's newsletter is due

expect_exit 0 "init on the defaults" -- S init
check "the database is the default var/samail.db" -- test -f var/samail.db
expect_exit 0 "import the sample declarers (CP932)" -- \
	S subscriber import "$SRCDIR/docs/examples/declarers-sample-cp932.csv"
n=$(sqlite3 var/samail.db "SELECT count(*) FROM subscriber WHERE status = 'active'")
expect_exit 0 "run monthly" -- S --now $NOW run monthly
cp out run1.out; cp err run1.err
check "the last lines say per step what happened" -- eval \
	'tail -n 4 run1.out | grep -q "^  fetch: 2 of 2 feeds ok, 26 new advisories$" &&
	 tail -n 4 run1.out | grep -q "^  remind: [0-9]* reminders\{0,1\} queued$" &&
	 tail -n 4 run1.out | grep -q "^  newsletter: newsletter-2026-10 built: $n queued" &&
	 tail -n 4 run1.out | grep -q "^  send: [0-9]* sent via maildir:var/mail$"'
check "the first line gives the run, its clock and the outcome" -- \
	grep -q "^samail run monthly, 2026-11-01 09:00 JST: ok after [0-9]* s$" run1.out
check "log lines: ISO time, pid, level, step" -- eval \
	'grep -Eq "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z samail\[[0-9]+\] info fetch: feed '"'"'jvn'"'"': 16 items, 16 new, 0 changed$" run1.err &&
	 grep -Eq "^[0-9T:Z-]+ samail\[[0-9]+\] info run monthly: run 1 \(monthly\) started" run1.err &&
	 grep -Eq "^[0-9T:Z-]+ samail\[[0-9]+\] info send: done in [0-9.]+ s, exit 0: " run1.err'
nl=$(find var/mail/new -type f | xargs grep -il "^Message-ID: <newsletter-2026-10\." | wc -l)
check "one newsletter per active declarer in the default maildir ($nl of $n)" -- test "$nl" = "$n"
rem=$(sqlite3 var/samail.db "SELECT count(*) FROM outbox o JOIN campaign c ON c.id = o.campaign_id WHERE c.kind = 'reminder' AND o.state = 'sent'")
all=$(find var/mail/new -type f | wc -l)
check "the reminders went too ($rem), nothing else ($all files)" -- test "$all" = $((n + rem))
check "every message parses strictly (newsletters and reminders)" -- eval '
	ok=1; for f in var/mail/new/*; do
		if grep -iq "^Message-ID: <reminder-" "$f"; then
			set -- --attachment-type "text/calendar; method=PUBLISH; charset=UTF-8"
		else set --; fi
		$PY "$SRCDIR/tests/tools/checkmail.py" --lf "$@" "$f" || { echo "# $f"; ok=0; }
	done; [ $ok = 1 ]'
check "the run is recorded: monthly, exit 0, the step lines" -- eval \
	'[ "$(sqlite3 var/samail.db "SELECT kind, exit_code, finished IS NOT NULL FROM run")" = "monthly|0|1" ] &&
	 sqlite3 var/samail.db "SELECT summary FROM run" | grep -q "^newsletter: newsletter-2026-10 built"'

# Again, later the same day: nothing is built or sent twice.
expect_exit 0 "run monthly again" -- S --now 2026-11-01T01:00:00Z run monthly
check "  ... says the newsletter was built already" -- \
	grep -q "^  newsletter: newsletter-2026-10 was built on 2026-11-01 09:00 JST; nothing to do$" out
check "  ... sends nothing" -- grep -q "^  send: nothing to send$" out
check "  ... the maildir is unchanged" -- test "$(find var/mail/new -type f | wc -l)" = "$all"
check "  ... and no message was queued twice" -- test \
	"$(sqlite3 var/samail.db "SELECT count(*) FROM outbox")" = "$all"

# -q: a run where nothing needs attention prints nothing at all.
expect_exit 0 "run daily -q the next day" -- S -q --now 2026-11-01T18:30:00Z run daily
check "  ... prints nothing (cron mails nothing)" -- eval '[ ! -s out ] && [ ! -s err ]'

# status, text and JSON.
expect_exit 0 "status" -- S --now 2026-11-01T19:00:00Z status
check "  ... the last run of each kind" -- eval \
	'grep -q "^  daily    2026-11-02 03:30 JST  ok, [0-9]* s$" out &&
	 grep -q "^  monthly  2026-11-01 10:00 JST  ok, [0-9]* s$" out'
check "  ... the queue per campaign" -- eval \
	'grep -A1 "^  newsletter-2026-10 (created 2026-11-01 09:00 JST)$" out |
	 grep -q "^    queued 0, inflight 0, sent $n, deferred 0, failed 0$"'
check "  ... no failing feeds" -- grep -q "^  none (of 2 feeds)$" out
check "  ... and the daily run not taken for stale" -- eval '! grep -q "NO DAILY RUN" out'
# Cron that stopped starting the job mails nobody: status says so.
expect_exit 0 "status three days on, no daily run since" -- S --now 2026-11-04T19:00:00Z status
check "  ... says the daily runs stopped, and what to check" -- \
	grep -q "^             NO DAILY RUN SINCE, for 3 days: check that cron or the timer still$" out
expect_exit 0 "status --json" -- S --now 2026-11-01T19:00:00Z --json status
check "  ... one array of typed records, UTC times with Z" -- $PY - "$T/out" "$n" <<'PY'
import json, re, sys
recs = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
assert isinstance(recs, list) and all(isinstance(r, dict) and "type" in r for r in recs)
runs = {r["kind"]: r for r in recs if r["type"] == "run"}
assert set(runs) == {"daily", "monthly"}, runs
assert runs["monthly"]["exit_code"] == 0 and runs["monthly"]["state"] == "finished"
assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", runs["daily"]["started"])
assert runs["daily"]["summary"][0].startswith("fetch: 2 of 2 feeds ok")
nl = [r for r in recs if r["type"] == "campaign" and r["name"] == "newsletter-2026-10"][0]
assert nl["sent"] == n and nl["queued"] == 0 and nl["total"] == n, nl
assert nl["top_reasons"] == []
PY
# [run] log = syslog: the lines still go to standard error too.
printf '[run]\nlog = syslog\n' >> var/demo.conf
expect_exit 0 "run daily with log = syslog" -- S --now 2026-11-02T18:30:00Z run daily
check "  ... standard error still has the time-stamped lines" -- \
	grep -Eq "^[0-9T:Z-]+ samail\[[0-9]+\] info run daily: run [0-9]+ \(daily\) finished: exit 0" err
expect_exit 64 "run with no kind: usage" -- S run
expect_exit 64 "run weekly: usage" -- S run weekly
check "  ... the message says what is expected" -- grep -q "'weekly' is not daily or monthly" err
expect_exit 0 "run --help" -- S run --help
finish
