#!/bin/sh
# The admin's levers on the queue: held messages released, failed ones
# retried (not for bounced addresses), and a relay that will not relay
# for us stops the run with a configuration error instead of failing the
# whole campaign.
. "$(dirname "$0")/lib.sh"
$PY -c 'import aiosmtpd' 2>/dev/null || { echo "python3-aiosmtpd missing (make deps)"; exit 77; }
start_smtpd main
write_config <<CONF
[smtp]
max_connections = 1
resend_in_flight = no
CONF
sed -i "s|^transport = .*|transport = smtp://127.0.0.1:$SMTPD_PORT|" samail.conf
sam init >/dev/null 2>&1
seed_advisories
for who in ok1 ok2 ok3 gone1; do
	sam subscriber add --email "$who@example.jp" --org "株式会社$who" >/dev/null
done
sam --now 2026-11-01T00:00:00Z newsletter build --period 2026-10 >/dev/null
state() { sqlite3 "$T/samail.db" "SELECT state FROM outbox WHERE rcpt = '$1@example.jp'"; }

# A crash left ok1 in flight; resend_in_flight = no holds it.
sqlite3 samail.db "UPDATE outbox SET state = 'inflight', attempts = 1 WHERE rcpt = 'ok1@example.jp'"
expect_exit 0 "send after a crash, resend_in_flight = no" -- sam --now 2026-11-01T00:05:00Z send
check "  ... ok1 held, the others sent" -- eval '[ "$(state ok1)" = held ] && [ "$(state ok2)" = sent ]'
check "  ... the summary says held" -- grep -q "held for review" "$T/out"
expect_exit 0 "send --release-held" -- sam --now 2026-11-01T00:06:00Z send --release-held
check "  ... released and sent, with its Message-ID" -- eval \
	'grep -q "released 1 held message" "$T/out" && [ "$(state ok1)" = sent ] && smtpd_messages main | grep -q "^ok1@example.jp <newsletter-2026-10\."'

# Failed messages: retried for active declarers only.
sqlite3 samail.db "UPDATE outbox SET state = 'failed', last_error = '554 relay misconfigured' WHERE rcpt IN ('ok2@example.jp', 'gone1@example.jp')"
sam subscriber update gone1@example.jp --status bounced >/dev/null
n0=$(smtpd_messages main | grep -c "^ok2@")
expect_exit 0 "send --retry-failed --campaign newsletter-2026-10" -- \
	sam --now 2026-11-01T00:07:00Z send --retry-failed --campaign newsletter-2026-10
check "  ... ok2 sent again, gone1 (bounced) stays failed" -- eval \
	'[ "$(state ok2)" = sent ] && [ "$(state gone1)" = failed ] && [ "$(smtpd_messages main | grep -c "^ok2@")" = $((n0 + 1)) ]'
expect_exit 65 "--campaign of a campaign that does not exist" -- sam send --retry-failed --campaign newsletter-1999-01
expect_exit 64 "--campaign alone" -- sam send --campaign newsletter-2026-10

# A relay that refuses to relay for us (554 5.7.1 Relay access denied).
sam subscriber add --email rcpt5xx1@example.jp --org 株式会社拒否 >/dev/null
sam subscriber add --email ok4@example.jp --org 株式会社四 >/dev/null
sam --now 2026-11-01T00:00:00Z newsletter build --period 2026-10 >/dev/null
expect_exit 78 "a relay that does not relay for us" -- sam --now 2026-11-01T00:08:00Z send
check "  ... says so, and what to check" -- grep -q "does not relay for us" "$T/err"
check "  ... the message goes back to the queue, not failed" -- eval '[ "$(state rcpt5xx1)" = queued ]'

# The same refusal in Exim's default words, without an enhanced status
# code: a bare 550 that must not mark anybody bounced.
sam subscriber remove rcpt5xx1@example.jp >/dev/null
sam subscriber add --email exim550a@example.jp --org 株式会社エグジム >/dev/null
sam --now 2026-11-01T00:00:00Z newsletter build --period 2026-10 >/dev/null
expect_exit 78 "550 relay not permitted (no enhanced code)" -- sam --now 2026-11-01T00:09:00Z send
check "  ... says the relay does not relay for us" -- grep -q "does not relay for us" "$T/err"
check "  ... nobody bounced, the message queued again" -- eval \
	'[ "$(state exim550a)" = queued ] && [ "$(sqlite3 samail.db "select count(*) from subscriber where status = '"'"'bounced'"'"' and email like '"'"'exim%'"'"'")" = 0 ]'
sam subscriber remove exim550a@example.jp >/dev/null

# A relay whose SIZE limit one message is over: that message fails, the
# others still go.
sam subscriber add --email big1@example.jp --org "株式会社$(printf '大%.0s' $(seq 1 150))" --name "$(printf '長%.0s' $(seq 1 40))" >/dev/null
sam subscriber add --email small1@example.jp --org 株式会社小 >/dev/null
sam --now 2026-11-01T00:00:00Z newsletter build --period 2026-10 >/dev/null 2>&1
sam --now 2026-11-01T00:00:00Z newsletter preview --email big1@example.jp --out big.eml 2>/dev/null
sam --now 2026-11-01T00:00:00Z newsletter preview --email small1@example.jp --out small.eml 2>/dev/null
limit=$(( ($(wc -c < big.eml) + $(wc -c < small.eml)) / 2 ))
echo "# message sizes: big $(wc -c < big.eml), small $(wc -c < small.eml), relay limit $limit"
start_smtpd small --size-limit $limit
sed -i "s|^transport = .*|transport = smtp://127.0.0.1:$SMTPD_PORT|" "$T/samail.conf"
expect_exit 0 "a message over the relay's SIZE" -- sam --now 2026-11-01T00:10:00Z send
check "  ... fails alone, with the relay's 552" -- eval \
	'[ "$(state big1)" = failed ] && sqlite3 samail.db "select last_error from outbox where rcpt='"'"'big1@example.jp'"'"'" | grep -q "^552"'
check "  ... the others are sent" -- eval '[ "$(state small1)" = sent ] && smtpd_messages small | grep -q "^small1@example.jp "'
check "  ... and the address stays active" -- eval '[ "$(sqlite3 samail.db "select status from subscriber where email='"'"'big1@example.jp'"'"'")" = active ]'
finish
