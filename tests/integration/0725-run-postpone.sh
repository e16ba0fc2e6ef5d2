#!/bin/sh
# When no feed could be fetched since the month ended, the monthly run
# postpones the newsletter instead of telling every declarer "nothing for
# your products" for good; the next run after a good fetch builds it.
. "$(dirname "$0")/lib.sh"
write_config </dev/null
sam init >/dev/null 2>&1
port=$(free_port)
sam feed add "http://127.0.0.1:$port/jvn.rdf" --name jvn >/dev/null
for i in 1 2 3; do
	sam subscriber add --email "user$i@example.jp" --org "株式会社$i" --products windows >/dev/null
done
queued() { sqlite3 samail.db "SELECT count(*) FROM outbox o JOIN campaign c ON c.id = o.campaign_id WHERE c.name = '$1'"; }
expect_exit 69 "monthly run with every feed down" -- sam --now 2026-11-01T00:00:00Z run monthly
check "  ... the newsletter is postponed, not built" -- eval \
	'grep -q "newsletter-2026-10 postponed: no " "$T/out" && [ "$(queued newsletter-2026-10)" = 0 ]'
# The feed comes back (a local copy here).
sqlite3 samail.db "UPDATE feed SET url = '$SRCDIR/feeds/samples/jvn.rdf' WHERE name = 'jvn'"
expect_exit 0 "the next daily run" -- sam --now 2026-11-01T18:30:00Z run daily
check "  ... fetches, then builds the newsletter with its advisories" -- eval \
	'[ "$(queued newsletter-2026-10)" = 3 ] && grep -q "newsletter-2026-10 built (caught up" "$T/out"'
check "  ... and the messages name October's advisories" -- eval \
	'[ "$(sqlite3 samail.db "SELECT count(*) FROM outbox WHERE data LIKE '"'"'%\"match\":[%'"'"' AND data NOT LIKE '"'"'%\"match\":[]%'"'"'")" = 3 ]'
finish
