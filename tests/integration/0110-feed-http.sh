#!/bin/sh
# Feeds over HTTP from a loopback server this test starts: first fetch,
# conditional GET (304 stores nothing), gzip, a changed item, redirects
# (file:// refused), an over-size body, a server that never answers, 500,
# hostile XML, and one broken feed among good ones.
. "$(dirname "$0")/lib.sh"
[ -x "$PY" ] || { echo "no $PY"; exit 77; }
command -v sqlite3 >/dev/null || { echo "no sqlite3"; exit 77; }

mkdir www
cp "$DATA"/feeds/*.rdf "$DATA"/feeds/*.xml "$DATA"/feeds/*.atom www/
$PY "$SRCDIR/tests/tools/httpd.py" --root www --port 0 --port-file port \
	--log http.log &
httpd=$!
at_exit "kill $httpd 2>/dev/null"
i=0
while [ ! -s port ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -s port ] || { echo "httpd did not start"; exit 1; }
P=$(cat port)
U=http://127.0.0.1:$P

cat > seed.conf <<SEED
[ipa]
url = $U/ipa-alert.rdf
alert = yes
[jvn]
url = $U/jvn.rdf
SEED
write_config <<CONF
[feeds]
seed = $T/seed.conf
timeout = 3
connect_timeout = 2
max_size = 1M
CONF

adv_count() { sqlite3 samail.db "SELECT count(*) FROM advisory a JOIN feed f ON f.id = a.feed_id WHERE f.name = '$1'"; }
adv_digest() { sqlite3 samail.db "SELECT * FROM advisory ORDER BY id; SELECT * FROM advisory_change ORDER BY id" | sha256sum; }
feed_field() { sqlite3 samail.db "SELECT $2 FROM feed WHERE name = '$1'"; }

expect_exit 0 "init seeds the feeds from [feeds] seed" -- sam init
check "two feeds seeded, ipa marked as the alert feed" -- \
	test "$(sqlite3 samail.db "SELECT group_concat(name || ':' || alert) FROM (SELECT * FROM feed ORDER BY name)")" = "ipa:1,jvn:0"

expect_exit 0 "first fetch" -- sam feed fetch
check "35 advisories stored" -- test "$(sqlite3 samail.db 'SELECT count(*) FROM advisory')" = 35
check "fetch reports new items" -- grep -q "jvn: 20 items, 20 new, 0 changed" out
check "User-Agent names samail and its version" -- grep -q '"User-Agent": "samail/[0-9.]* (+' http.log
check "compressed transfer offered" -- grep -q '"Accept-Encoding": "[^"]*gzip' http.log
check "ETag and Last-Modified kept" -- test -n "$(feed_field jvn etag)" -a -n "$(feed_field jvn last_modified)"
check "feed list --json: status 200, items, no failures" -- eval 'sam feed list --json | $PY -c "
import json,sys
d={f[\"name\"]:f for f in json.load(sys.stdin)}
assert set(d[\"jvn\"])=={\"name\",\"url\",\"last_fetch\",\"last_status\",\"items\",\"failures\",\"last_error\"}, d
assert d[\"jvn\"][\"last_status\"]==200 and d[\"jvn\"][\"items\"]==20 and d[\"jvn\"][\"failures\"]==0 and d[\"jvn\"][\"last_error\"] is None
assert d[\"ipa\"][\"items\"]==15
"'

before=$(adv_digest)
: > http.log
expect_exit 0 "second fetch" -- sam --now 2026-11-02T00:00:00Z feed fetch
check "second fetch: 304 for both" -- test "$(grep -c 'not modified' out)" = 2
check "conditional request sent" -- grep -q '"If-None-Match"' http.log
check "a 304 stores nothing" -- test "$(adv_digest)" = "$before"
check "a 304 records the fetch time and status" -- \
	test "$(feed_field jvn "last_status || ' ' || last_fetch")" = "304 2026-11-02T00:00:00Z"

# The publisher corrects a title: one advisory changes, its change is kept.
sed -i 's|<title>a-blog cms における複数の脆弱性</title>|<title>a-blog cms における複数の脆弱性（更新）</title>|' www/jvn.rdf
expect_exit 0 "fetch after the feed changed" -- sam feed fetch jvn
check "one changed, nothing new" -- grep -q "jvn: 20 items, 0 new, 1 changed" out
check "still 20 advisories for jvn" -- test "$(adv_count jvn)" = 20
check "the change names the field" -- \
	test "$(sqlite3 samail.db 'SELECT fields FROM advisory_change')" = "title"

expect_exit 0 "a gzip-encoded feed" -- sam feed add "$U/security-news-rss2.xml?gzip=1" --name news
expect_exit 0 "fetch it" -- sam feed fetch news
check "8 items from the compressed feed" -- test "$(adv_count news)" = 8

# Unreachable: exit 69, one line naming the feed, nothing stored, counted.
expect_exit 0 "add a feed redirecting to file://" -- sam feed add "$U/redirect?to=file:///etc/passwd" --name redir
expect_exit 69 "redirect to file:// refused" -- sam feed fetch redir
check "error names the feed and the refused target" -- \
	grep -q "feed 'redir'.*file:///etc/passwd.*not http or https" err
check "one stderr line" -- test "$(wc -l < err)" = 1
check "nothing stored, no passwd anywhere" -- \
	test "$(adv_count redir)" = 0 -a -z "$(sqlite3 samail.db .dump | grep 'root:')"
expect_exit 69 "again: consecutive failures counted" -- sam feed fetch redir
check "failures = 2, last error kept" -- \
	test "$(feed_field redir failures)" = 2 -a -n "$(feed_field redir last_error)"

expect_exit 0 "add a server that never answers" -- sam feed add "$U/stall" --name stall
start=$(date +%s)
expect_exit 69 "stalled server times out" -- sam feed fetch stall
check "within the configured timeout (3 s) plus slack" -- test $(( $(date +%s) - start )) -le 15
check "timeout message" -- grep -q "feed 'stall'.*no complete answer within 3 s" err

expect_exit 0 "add a failing server" -- sam feed add "$U/status/500" --name five
expect_exit 69 "HTTP 500 is unreachable" -- sam feed fetch five
check "status recorded" -- test "$(feed_field five last_status)" = 500
check "message names the status and what happens next" -- grep -q "HTTP 500.*retry next run" err

# Malformed or too big: exit 65.
expect_exit 0 "add an over-size feed" -- sam feed add "$U/big?bytes=3000000&nolength=1" --name big
expect_exit 65 "body over [feeds] max_size aborted" -- sam feed fetch big
check "message says so" -- grep -q "feed 'big'.*larger than the 1048576-byte limit" err
check "  ... naming the URL once, not twice" -- test "$(grep -o '/big?bytes=' err | wc -l)" = 1
expect_exit 0 "add XXE" -- sam feed add "$U/edge-xxe.xml" --name xxe
expect_exit 65 "XXE refused" -- sam feed fetch xxe
check "XXE message" -- grep -q "feed 'xxe'.*entity 'xxe'" err
expect_exit 0 "add billion laughs" -- sam feed add "$U/edge-billion-laughs.rdf" --name lol
expect_exit 65 "billion laughs refused" -- sam feed fetch lol
check "nothing from hostile feeds stored" -- test "$(adv_count xxe)$(adv_count lol)" = 00

# One broken feed among good ones: the good ones are stored.
sqlite3 samail.db "DELETE FROM advisory"
sqlite3 samail.db "UPDATE feed SET etag = NULL, last_modified = NULL"
expect_exit 0 "add a truncated feed" -- sam feed add "$U/edge-truncated.rdf" --name broken
expect_exit 65 "good + broken: exit 65" -- sam feed fetch ipa broken jvn
check "the good feeds are stored" -- test "$(adv_count ipa)/$(adv_count jvn)" = 15/20
check "the broken one stored nothing" -- test "$(adv_count broken)" = 0
check "one error line, naming the broken feed and the line" -- \
	test "$(wc -l < err)" = 1 -a -n "$(grep "feed 'broken'.*line" err)"
expect_exit 69 "malformed + unreachable: 69 wins" -- sam feed fetch broken five
check "two error lines, one per feed" -- test "$(wc -l < err)" = 2
expect_exit 65 "an unknown name fetches nothing" -- sam feed fetch ipa nosuch
check "names the unknown feed" -- grep -q "no feed named 'nosuch'" err

# The server's charset (RFC 7303) for a document that names none; a
# document that declares its encoding keeps it whatever the server says.
printf '<rss version="2.0"><channel><title>t</title><item><guid>sj1</guid><title>シフトJISの題名</title><link>https://e.example/1</link></item></channel></rss>\n' |
	iconv -f UTF-8 -t SHIFT_JIS > www/sjis-nodecl.xml
printf '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel><title>t</title><item><guid>u1</guid><title>宣言はUTF-8</title><link>https://e.example/2</link></item></channel></rss>\n' > www/utf8-decl.xml
sam feed add "$U/sjis-nodecl.xml?ctype=text/xml;%20charset=Shift_JIS" --name sjis >/dev/null
sam feed add "$U/sjis-nodecl.xml?ctype=text/xml" --name nocharset >/dev/null
sam feed add "$U/utf8-decl.xml?ctype=text/xml;%20charset=ISO-8859-1" --name declared >/dev/null
expect_exit 0 "a Shift_JIS feed without an XML declaration, served with charset=Shift_JIS" -- sam feed fetch sjis declared
check "  ... its title decoded" -- eval 'sam --json advisory list --feed sjis | grep -q "シフトJISの題名"'
check "  ... a declared encoding wins over the server's" -- eval 'sam --json advisory list --feed declared | grep -q "宣言はUTF-8"'
expect_exit 65 "  ... the same file without the charset is not UTF-8" -- sam feed fetch nocharset
# A template's encoding="UTF-8" in front of a body the site sends in
# Shift_JIS, served as charset=Shift_JIS: the bytes say the server is right.
{ printf '<?xml version="1.0" encoding="UTF-8"?>\n'; cat www/sjis-nodecl.xml; } > www/sjis-declutf8.xml
sam feed add "$U/sjis-declutf8.xml?ctype=application/rss%2Bxml;%20charset=Shift_JIS" --name wrongdecl >/dev/null
expect_exit 0 "  ... a Shift_JIS body declared UTF-8, served with charset=Shift_JIS" -- sam feed fetch wrongdecl
check "  ... its title decoded" -- eval 'sam --json advisory list --feed wrongdecl | grep -q "シフトJISの題名"'

# MyJVN API paging: a query's results come 50 a page; samail asks for the
# next pages with startItem, and stores them all or none.
sam feed add "$U/myjvn?method=getVulnOverviewList&feed=hnd&total=120&maxCountItem=50&rangeDatePublished=m" --name myjvn >/dev/null
expect_exit 0 "a MyJVN query with 120 results, 50 a page" -- sam feed fetch myjvn
check "  ... all 120 stored" -- test "$(adv_count myjvn)" = 120
check "  ... counted as one fetch" -- grep -q "myjvn: 120 items, 120 new, 0 changed" out
check "  ... the next pages asked with startItem 51 and 101, the query kept" -- eval \
	'test "$(grep -o "/myjvn?[^\"]*" http.log | grep -c "method=getVulnOverviewList&feed=hnd&total=120&maxCountItem=50&rangeDatePublished=m")" = 3 &&
	 grep -q "rangeDatePublished=m&startItem=51\"" http.log && grep -q "rangeDatePublished=m&startItem=101\"" http.log'
check "  ... no warning" -- test ! -s err
check "  ... the feed row counts 120 items" -- test "$(feed_field myjvn items)" = 120
sam feed add "$U/myjvn?total=120&startItem=1&fail=51" --name myjvnfail >/dev/null
expect_exit 69 "a MyJVN query whose second page answers 500" -- sam feed fetch myjvnfail
check "  ... nothing of it stored: the pages go in together" -- test "$(adv_count myjvnfail)" = 0
check "  ... the feed records the failing page's status (500), not the first's" -- \
	test "$(feed_field myjvnfail last_status)" = 500
check "  ... one line naming the page" -- eval 'test "$(wc -l < err)" = 1 &&
	grep -q "feed .myjvnfail.*MyJVN page 2 (startItem=51).*HTTP 500" err'
check "  ... startItem replaced, not added twice" -- grep -q '"/myjvn?total=120&fail=51&startItem=51"' http.log
sam feed add "$U/redirect?to=$U/myjvn%3Ftotal%3D120%26maxCountItem%3D50" --name myjvnredir >/dev/null
expect_exit 0 "a MyJVN query behind a redirect" -- sam feed fetch myjvnredir
check "  ... its pages asked where the redirect led: 120 stored" -- test "$(adv_count myjvnredir)" = 120
sam feed add "$U/myjvn?total=120&startItem=51" --name myjvnfrom51 >/dev/null
expect_exit 0 "a MyJVN query that starts at its 51st result" -- sam feed fetch myjvnfrom51
check "  ... the 70 from there stored, and no warning" -- eval \
	'[ "$(adv_count myjvnfrom51)" = 70 ] && [ ! -s err ]'
sam feed add "$U/myjvn?total=120&bogus=1" --name myjvnbogus >/dev/null
expect_exit 0 "a MyJVN query whose next page is some other feed" -- sam feed fetch myjvnbogus
check "  ... only the query's own 50 stored, as counted" -- eval \
	'[ "$(adv_count myjvnbogus)" = 50 ] && [ "$(feed_field myjvnbogus items)" = 50 ] && grep -q "myjvnbogus: 50 items, 50 new" out'
check "  ... a warning that the rest is missing" -- \
	grep -q "feed 'myjvnbogus': the MyJVN query has 120 results but the server sent only 50: it did not answer startItem=51 with the next page" err
# The pages come over the network with no transaction open: an admin's
# change goes through while they are fetched.
sam feed add "$U/myjvn?total=120&slow=2" --name myjvnslow >/dev/null
sam feed fetch myjvnslow >slow.out 2>slow.err &
fpid=$!
sleep 1
t0=$(date +%s)
expect_exit 0 "an admin adds a declarer while a MyJVN query's pages are fetched" -- \
	sam subscriber add --email paging@example.jp --org 株式会社ページ
check "  ... at once, not after the fetch ($(( $(date +%s) - t0 )) s)" -- test $(( $(date +%s) - t0 )) -le 1
wait $fpid
check "  ... and the query stored whole" -- test "$(adv_count myjvnslow)" = 120
# Removed by an admin while its pages come: nothing stored for it, no
# database error, and the feeds after it are fetched.
sam feed add "$U/myjvn?total=120&slow=2&rm=1" --name myjvnrm >/dev/null
sam feed fetch myjvnrm ipa >rm.out 2>rm.err &
fpid=$!
sleep 1
sam feed remove myjvnrm >/dev/null
wait $fpid
rmrc=$?
check "a MyJVN feed removed while its pages are fetched: exit 0 ($rmrc)" -- test $rmrc = 0
check "  ... a warning, nothing stored for it, the next feed fetched" -- eval \
	'grep -q "feed .myjvnrm. was removed or changed while its pages were fetched: nothing of this fetch was stored" rm.err &&
	 [ "$(sqlite3 samail.db "SELECT count(*) FROM advisory WHERE feed_id NOT IN (SELECT id FROM feed)")" = 0 ] &&
	 grep -q "^ipa: " rm.out && ! grep -qi "error" rm.err'
# A feed stored again (its items known, one changed), then a slow MyJVN
# query while another process commits: the query's transaction waits
# for the lock as any other, and is not refused at once for a read
# snapshot the first feed's store left open (a cached SELECT not reset).
sed -i '0,/<title>/s/<title>/<title>(updated) /' www/jvn.rdf
sam feed add "$U/myjvn?total=60&slow=2&q=snap" --name zz-snap >/dev/null
sam feed fetch jvn zz-snap >snap.out 2>snap.err &
fpid=$!
sleep 1
sam subscriber add --email snapshot@example.jp --org 株式会社スナップ >/dev/null 2>&1
wait $fpid
snaprc=$?
check "a feed stored again, then a slow one while another process commits: exit 0 ($snaprc)" -- test $snaprc = 0
check "  ... both stored, no 'busy'" -- eval \
	'grep -q "^jvn: " snap.out && [ "$(adv_count zz-snap)" = 60 ] && ! grep -qi "busy" snap.err'
# MyJVN's own example (totalRes 6, totalResRet 2) as a plain file: the
# server answers every startItem with the same first page.
sam feed add "$U/myjvn-getVulnOverviewList.xml" --name myjvnfile >/dev/null
expect_exit 0 "a MyJVN answer from a server that does not page" -- sam feed fetch myjvnfile
check "  ... its 2 items stored" -- test "$(adv_count myjvnfile)" = 2
check "  ... counted once" -- grep -q "myjvnfile: 2 items, 2 new" out
check "  ... a warning that the rest is missing" -- grep -q "feed 'myjvnfile': the MyJVN query has 6 results but the server sent only 2" err

finish
