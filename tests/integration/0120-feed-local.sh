#!/bin/sh
# Local feed files: refused unless [feeds] allow_local_files says so; the
# offline samples (feeds/samples/) seed and fetch for the demo's period.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || { echo "no sqlite3"; exit 77; }

cat > "$T/samail.conf" <<CONF
[database]
path = $T/samail.db
[mail]
from = SECURITY ACTION 事務局 <news@example.jp>
transport = maildir:$T/mail
[feeds]
seed = $T/empty.conf
CONF
: > empty.conf
expect_exit 0 "init (no local files allowed)" -- sam init
expect_exit 65 "a local path is refused" -- sam feed add "$DATA/feeds/jvn.rdf" --name j
check "the message says which key allows it" -- grep -q "allow_local_files" err
expect_exit 65 "a file:// URL is refused" -- sam feed add "file://$DATA/feeds/jvn.rdf" --name j
expect_exit 65 "ftp is refused" -- sam feed add "ftp://127.0.0.1/jvn.rdf" --name j
expect_exit 65 "a javascript: URL is refused" -- sam feed add "javascript:alert(1)" --name j
check "nothing added" -- test "$(sqlite3 samail.db 'SELECT count(*) FROM feed')" = 0
# A feed added while allowed stays refused once the config forbids it.
sqlite3 samail.db "INSERT INTO feed (name, url, created) VALUES ('sneaky', '$DATA/feeds/jvn.rdf', '2026-11-01T00:00:00Z')"
expect_exit 65 "fetching a local feed without permission fails" -- sam feed fetch sneaky
check "nothing stored from it" -- test "$(sqlite3 samail.db 'SELECT count(*) FROM advisory')" = 0
sqlite3 samail.db "DELETE FROM feed"

# Allowed: absolute paths, file:// URLs, and relative paths made absolute.
sed -i 's/^\[feeds\]$/[feeds]\nallow_local_files = yes/' samail.conf
expect_exit 0 "absolute path allowed" -- sam feed add "$DATA/feeds/jvn.rdf" --name jvn
expect_exit 0 "file:// URL allowed" -- sam feed add "file://$DATA/feeds/ipa-alert.rdf" --name ipa --alert
cp "$DATA/feeds/security-news-rss2.xml" news.xml
expect_exit 0 "relative path allowed" -- sam feed add news.xml --name news
check "stored absolute" -- test "$(sqlite3 samail.db "SELECT url FROM feed WHERE name = 'news'")" = "$T/news.xml"
expect_exit 0 "fetch local feeds" -- sam feed fetch
check "43 advisories" -- test "$(sqlite3 samail.db 'SELECT count(*) FROM advisory')" = 43
rm news.xml
expect_exit 66 "a local feed that disappeared: 66" -- sam feed fetch news
check "and names it" -- grep -q "feed 'news'.*cannot open" err
expect_exit 0 "add a directory" -- sam feed add "$T" --name dir
expect_exit 65 "a directory is not a feed" -- sam feed fetch dir

# The demo: seed the offline samples, fetch, October 2026 has advisories.
rm -f samail.db*
cat > samail.conf <<CONF
[database]
path = $T/samail.db
[mail]
from = SECURITY ACTION 事務局 <news@example.jp>
transport = maildir:$T/mail
[feeds]
allow_local_files = yes
seed = $SRCDIR/feeds/samples/feeds.conf
CONF
expect_exit 0 "init seeds the samples" -- sam init
check "both sample feeds, ipa-alert as the alert feed" -- \
	test "$(sqlite3 samail.db "SELECT group_concat(name || ':' || alert) FROM (SELECT * FROM feed ORDER BY name)")" = "ipa-alert:1,jvn:0"
expect_exit 0 "fetch the samples" -- sam --now 2026-11-01T00:00:00Z feed fetch
sam --json advisory list --since 2026-10-01 > adv.json
check "October 2026 touches the common products" -- $PY - "$T/adv.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
octo = [x for x in a if "2026-09-30T15:00:00Z" <= x["published"] < "2026-10-31T15:00:00Z"]
tags = set(t for x in octo for t in x["products"])
need = {"windows", "office", "chrome", "acrobat", "java", "wordpress", "fortios", "ivanti", "ios", "macos", "openssl"}
assert need <= tags, need - tags
assert len(octo) >= 15, len(octo)
assert all(x["link"].startswith("https://") for x in a)
PY
expect_exit 0 "advisory list --product windows" -- sam advisory list --product Windows --since 2026-10-01
check "Microsoft's October and November items, nothing else" -- \
	test "$(wc -l < out)" = 4 -a "$(grep -vc Microsoft out)" = 0

finish
