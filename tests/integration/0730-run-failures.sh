#!/bin/sh
# When things break at 3 a.m.: a feed that is down, a relay that is down,
# a relay that defers and refuses, a broken template.  Each gives the
# documented exit status, the other steps still run, and the last lines
# say in plain words what happened and what happens next; status shows
# the failing feed, the failure reasons and the address that bounced.
. "$(dirname "$0")/lib.sh"
$PY -c 'import aiosmtpd' 2>/dev/null || { echo "python3-aiosmtpd missing (make deps)"; exit 77; }
command -v sqlite3 >/dev/null || { echo "no sqlite3"; exit 77; }

mkdir www
cp "$SRCDIR/feeds/samples/jvn.rdf" www/
$PY "$SRCDIR/tests/tools/httpd.py" --root www --port 0 --port-file port --log http.log &
httpd=$!
at_exit "kill $httpd 2>/dev/null"
i=0
while [ ! -s port ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -s port ] || { echo "httpd did not start"; exit 1; }
U=http://127.0.0.1:$(cat port)
cp -R "$SRCDIR/templates" tpl
write_config <<CONF
[paths]
templates = $T/tpl
[smtp]
retry_base = 1h
CONF
sam init >/dev/null 2>&1
sam feed add "$U/jvn.rdf" --name jvn >/dev/null
sam feed add "$U/status/503" --name down >/dev/null
# One ★ declarer whose step-up reminder falls on Nov 1 (due Nov 8, 7 days
# before), and others for the newsletter.
sam subscriber add --email remind1@example.jp --org 株式会社星 --star 1 --declared 2026-05-08 >/dev/null
for who in ok1 ok2 ok3; do
	sam subscriber add --email "$who@example.jp" --org "株式会社$who" --products windows >/dev/null
done

# 1. A feed is down: 69; the reminder and the newsletter still go out.
expect_exit 69 "a down feed: exit 69" -- sam -q --now 2026-11-01T00:00:00Z run monthly
check "  ... the last lines say which feed, why, and what happens next" -- \
	grep -q "^  fetch: 1 of 2 feeds ok, 16 new advisories; 'down' unreachable (HTTP 503) — retried next run$" out
check "  ... the reminder still went out" -- grep -q "^  remind: 1 reminder queued$" out
check "  ... the newsletter still went out" -- grep -q "^  newsletter: newsletter-2026-10 built: 4 queued" out
check "  ... it notes the feed not fetched since the month ended" -- \
	grep -q "note: not fetched since the month ended, so the newsletter may miss advisories from 'down' (last fetched never)" out
check "  ... and mail was sent" -- grep -q "^  send: 5 sent via maildir:" out
check "  ... the first line gives the exit status in words" -- \
	grep -q "^samail run monthly, 2026-11-01 09:00 JST: exit 69 (relay or feed unavailable)" out
check "  ... the error line names the feed and the URL" -- \
	grep -q "error fetch: feed 'down': '$U/status/503': HTTP 503; will retry next run" err
check "  ... -q hides the info lines" -- eval '! grep -q " info " err'
check "  ... 5 messages in the maildir" -- test "$(ls mail/new | wc -l)" = 5

# 2. The relay is down: 69; the messages stay queued; fetch still ran.
P=$(free_port)
sed -i "s|^transport = .*|transport = smtp://127.0.0.1:$P|" samail.conf
sam subscriber add --email new1@example.jp --org 株式会社新 >/dev/null
sam subscriber add --email new2@example.jp --org 株式会社新二 >/dev/null
sam --now 2026-11-02T00:00:00Z newsletter build --period 2026-10 >/dev/null
sqlite3 samail.db "UPDATE feed SET url = '$U/jvn.rdf' WHERE name = 'down'"
expect_exit 69 "the relay is down: exit 69" -- sam --now 2026-11-02T00:00:00Z run daily
check "  ... the send line names the relay and says the mail waits" -- \
	grep -Eq "^  send: nothing more could be handed over: no SMTP relay accepted a connection: 'smtp://127.0.0.1:$P': .* — 2 messages stay queued for the next run$" out
check "  ... the other steps ran" -- eval \
	'grep -q "^  fetch: 2 of 2 feeds ok" out && grep -q "^  newsletter: newsletter-2026-10 was built on" out'
check "  ... nothing counted as an attempt" -- test \
	"$(sqlite3 samail.db "SELECT count(*) FROM outbox WHERE state = 'queued' AND attempts = 0")" = 2

# 3. The relay is back, but defers one address and refuses another: 75.
start_smtpd relay
sed -i "s|^transport = .*|transport = smtp://127.0.0.1:$SMTPD_PORT|" samail.conf
sam subscriber add --email rcpt4xx1@example.jp --org 株式会社延 >/dev/null
sam subscriber add --email nouser1@example.jp --org 株式会社無 >/dev/null
sam --now 2026-11-03T00:00:00Z newsletter build --period 2026-10 >/dev/null
expect_exit 75 "some deliveries deferred: exit 75" -- sam -q --now 2026-11-03T00:00:00Z run daily
check "  ... the send line counts them and says what happens" -- \
	grep -q "^  send: 2 sent via smtp://127.0.0.1:$SMTPD_PORT, 1 deferred (the relay said try later; retried by the next runs), 1 failed (1 bounced: the address is marked, no more mail to it); see 'samail status' for the reasons$" out
check "  ... the server got the 2 (new1, new2)" -- test "$(smtpd_messages relay | wc -l)" = 2

# 4. status: the feed failing for more than a day, the reasons, the bounce.
sqlite3 samail.db "UPDATE feed SET url = '$U/status/503' WHERE name = 'down'"
sam --now 2026-11-04T00:00:00Z run daily >/dev/null 2>&1
sam --now 2026-11-05T12:00:00Z run daily >/dev/null 2>&1
expect_exit 0 "status" -- sam --now 2026-11-05T13:00:00Z status
check "  ... the feed failing for more than a day, with its last error" -- eval \
	'grep -q "^  down         2 failed fetches in a row; last ok: 2026-11-03 09:00 JST$" out &&
	 grep -q "last error: .*HTTP 503" out'
check "  ... the last daily run and its outcome" -- \
	grep -q "^  daily    2026-11-05 21:00 JST  exit 69 (relay or feed unavailable)" out
check "  ... that no daily run has ended ok yet (the last ones: 69, 75, 69...)" -- \
	grep -q "^             no daily run has ended ok yet$" out
check "  ... the bounced address this month" -- eval \
	'grep -q "^Addresses that left this month (2026-11): 1 bounced, 0 unsubscribed$" out &&
	 grep -q "^  bounced      nouser1@example.jp" out'
check "  ... the top failure reasons of the campaign" -- eval \
	'grep -Eq "^      failed 1× 550 5\.1\.1" out && grep -Eq "^      deferred 1× 450 4\.7\.1" out'
sam --now 2026-11-05T13:00:00Z subscriber update ok3@example.jp --status unsubscribed >/dev/null
expect_exit 0 "status --json" -- sam --json --now 2026-11-05T13:00:00Z status
check "  ... typed records for the feed, the addresses, the campaign reasons" -- $PY - "$T/out" <<'PY'
import json, sys
recs = json.load(open(sys.argv[1]))
feeds = [r for r in recs if r["type"] == "feed"]
assert [f["name"] for f in feeds] == ["down"], feeds
assert feeds[0]["last_status"] == 503 and feeds[0]["failures"] == 2
addrs = {r["email"]: r["status"] for r in recs if r["type"] == "address"}
assert addrs == {"nouser1@example.jp": "bounced", "ok3@example.jp": "unsubscribed"}, addrs
nl = [r for r in recs if r["type"] == "campaign" and r["name"] == "newsletter-2026-10"][0]
assert nl["sent"] == 6 and nl["failed"] == 1 and nl["deferred"] == 1, nl
reasons = {(x["state"], x["count"], x["reason"][:9]) for x in nl["top_reasons"]}
assert reasons == {("failed", 1, "550 5.1.1"), ("deferred", 1, "450 4.7.1")}, reasons
PY

# 5. A broken template: the newsletter is not built (65); the rest runs.
sqlite3 samail.db "UPDATE feed SET url = '$U/jvn.rdf' WHERE name = 'down'"
printf '{{#unclosed}}\n' >> tpl/ja/newsletter.txt.mustache
expect_exit 65 "a broken template: exit 65" -- sam --now 2026-12-01T00:00:00Z run monthly
check "  ... the line names the file and says what to do" -- \
	grep -Eq "^  newsletter: newsletter-2026-11 NOT built: .*newsletter.txt.mustache:[0-9]+:[0-9]+: .* — fix it; the next run tries again$" out
check "  ... fetch, remind and send still ran" -- eval \
	'grep -q "^  fetch: 2 of 2 feeds ok" out && grep -q "^  remind: " out && grep -q "^  send: " out'
check "  ... nothing queued for it" -- test \
	"$(sqlite3 samail.db "SELECT count(*) FROM campaign WHERE name = 'newsletter-2026-11'")" = 0
cp "$SRCDIR/templates/ja/newsletter.txt.mustache" tpl/ja/
expect_exit 75 "fixed: the next daily run builds it (75: the greylisting address defers again)" -- \
	sam --now 2026-12-02T00:00:00Z run daily
check "  ... once" -- grep -q "^  newsletter: newsletter-2026-11 built (caught up" out

# 6. The database held by another process (sqlite3, a backup) longer than
# [database] busy_timeout: a temporary failure (75), not an I/O error
# (74): cron's next run simply tries again.
sed 's|^\[database\]$|[database]\nbusy_timeout = 300|' samail.conf > busy.conf
rm -f held
{ printf 'BEGIN IMMEDIATE;\nDELETE FROM run;\n.shell touch held\n'; sleep 4
  printf 'ROLLBACK;\n'; } | sqlite3 samail.db &
holder=$!
i=0
while [ ! -e held ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
expect_exit 75 "a database held busy by another process: exit 75" -- \
	"$SAMAIL" -c busy.conf -q --now 2026-12-03T00:00:00Z run daily
check "  ... the error names the database and says to try again" -- \
	grep -q "database '$T/samail.db' is busy .*: another process (samail, sqlite3, a backup) is writing to it; try again later" err
wait $holder
expect_exit 75 "released: the next run runs (75: the greylisting address defers again)" -- \
	sam --now 2026-12-03T00:10:00Z run daily
check "  ... and is recorded" -- test \
	"$(sqlite3 samail.db "SELECT started FROM run ORDER BY id DESC LIMIT 1")" = 2026-12-03T00:10:00Z

# 7. No database, and a broken config: the usual exit statuses.
expect_exit 66 "no database: 66" -- "$SAMAIL" --db "$T/none/samail.db" run daily
check "  ... says to run init" -- grep -q "samail init" err
printf '[run]\nlock_timeout = soon\n' > bad.conf
expect_exit 78 "a bad [run] lock_timeout: 78" -- "$SAMAIL" -c bad.conf run daily
printf '[run]\nlog = journal\n' > bad.conf
expect_exit 78 "a bad [run] log: 78" -- "$SAMAIL" -c bad.conf run daily
finish
