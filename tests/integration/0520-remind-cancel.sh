#!/bin/sh
# A new self-diagnosis ends the cycle at once: the queued reminder is
# cancelled by the update itself, so a send before the next remind build
# does not deliver it.
. "$(dirname "$0")/lib.sh"
write_config </dev/null
sam init >/dev/null 2>&1
sam subscriber add --email s1@example.jp --org 株式会社一 --star 1 --declared 2026-01-15 >/dev/null
sam subscriber add --email s2@example.jp --org 株式会社二 --star 1 --declared 2026-01-15 >/dev/null
expect_exit 0 "remind build 30 days before the step-up date" -- sam --now 2026-06-15T00:00:00Z remind build
check "  ... two reminders queued" -- test "$(sqlite3 "$T/samail.db" "select count(*) from outbox where state='queued'")" = 2
expect_exit 0 "s1 records a self-diagnosis" -- sam --now 2026-06-16T00:00:00Z subscriber update s1@example.jp --assessed 2026-06-16 --score 80
check "  ... its queued reminder is cancelled at once" -- eval \
	'[ "$(sqlite3 "$T/samail.db" "select state from outbox where rcpt='"'"'s1@example.jp'"'"'")" = cancelled ]'
expect_exit 0 "s2 changes only its industry" -- sam subscriber update s2@example.jp --industry 小売業
check "  ... its reminder stays queued" -- eval \
	'[ "$(sqlite3 "$T/samail.db" "select state from outbox where rcpt='"'"'s2@example.jp'"'"'")" = queued ]'
expect_exit 0 "send" -- sam --now 2026-06-16T00:10:00Z send
check "  ... only s2's reminder went" -- eval '[ "$(ls "$T/mail/new" | wc -l)" = 1 ] && grep -q "^To:.*s2@example.jp" "$T"/mail/new/*'
finish
