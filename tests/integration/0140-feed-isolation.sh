#!/bin/sh
# One broken feed never stops the others, whatever its place in the list:
# a malformed feed that sorts first, one that is missing, and good ones.
. "$(dirname "$0")/lib.sh"
write_config </dev/null
sam init >/dev/null 2>&1
printf '<?xml version="1.0"?><rss version="2.0"><channel><title>x\033</title><item><title>a</title></item></channel></rss>\n' > broken.xml
printf '<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"><channel rdf:about="x"><title>t' > truncated.rdf
sam feed add "$T/broken.xml" --name aaa-broken >/dev/null
sam feed add "$T/truncated.rdf" --name aab-truncated >/dev/null
sam feed add "$DATA/feeds/jvn.rdf" --name zz-jvn >/dev/null
sam feed add "$DATA/feeds/ipa-alert.rdf" --name zz-ipa >/dev/null
expect_exit 65 "fetch: malformed feeds give 65" -- sam feed fetch
check "  ... each broken feed named in one line" -- eval 'grep -q "aaa-broken" "$T/err" && grep -q "aab-truncated" "$T/err"'
check "  ... the good feeds after them were stored" -- eval \
	'[ "$(sqlite3 "$T/samail.db" "select count(*) from advisory a join feed f on f.id=a.feed_id where f.name='"'"'zz-jvn'"'"'")" = 20 ] && \
	 [ "$(sqlite3 "$T/samail.db" "select count(*) from advisory a join feed f on f.id=a.feed_id where f.name='"'"'zz-ipa'"'"'")" = 15 ]'
check "  ... nothing stored from the broken ones, their failures counted" -- eval \
	'[ "$(sqlite3 "$T/samail.db" "select sum(failures) from feed where name like '"'"'aa%'"'"'")" = 2 ] && \
	 [ "$(sqlite3 "$T/samail.db" "select count(*) from advisory a join feed f on f.id=a.feed_id where f.name like '"'"'aa%'"'"'")" = 0 ]'
finish
