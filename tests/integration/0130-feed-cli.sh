#!/bin/sh
# The feed and advisory commands: usage errors, names, JSON shapes,
# remove, retag after the product dictionary changes.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || { echo "no sqlite3"; exit 77; }

cp "$SRCDIR/feeds/products.conf" products.conf
: > empty.conf
write_config <<CONF
[feeds]
seed = $T/empty.conf
products = $T/products.conf
CONF
expect_exit 0 "init" -- sam init
expect_exit 0 "feed --help" -- sam feed --help
expect_exit 0 "advisory --help" -- sam advisory --help
expect_exit 64 "feed without a command" -- sam feed
expect_exit 64 "unknown feed command" -- sam feed frobnicate
expect_exit 64 "feed add without --name" -- sam feed add https://jvn.jp/rss/jvn.rdf
expect_exit 64 "feed add without a URL" -- sam feed add --name x
expect_exit 64 "feed add with an unknown option" -- sam feed add https://a.example/ --name x --bogus
expect_exit 65 "a feed name with a space" -- sam feed add https://a.example/ --name "a b"
expect_exit 65 "a feed name with CR/LF" -- sam feed add https://a.example/ --name "$(printf 'a\r\nb')"
expect_exit 65 "a URL with CR/LF" -- sam feed add "$(printf 'https://a.example/\r\nHost: x')" --name a
expect_exit 65 "a URL with a password in it" -- sam feed add https://user:s3cret@a.example/feed --name a
check "  ... is refused without echoing it" -- eval '! grep -q s3cret "$T/err" "$T/out"'
expect_exit 0 "feed list with no feeds" -- sam feed list --json
check "an empty JSON array" -- test "$(tr -d '\n' < out)" = "[]"

expect_exit 0 "add jvn" -- sam feed add "$DATA/feeds/jvn.rdf" --name jvn
expect_exit 65 "the same name again" -- sam feed add "$DATA/feeds/ipa-alert.rdf" --name jvn
check "says it exists" -- grep -q "already exists" err
expect_exit 0 "add ipa" -- sam feed add "$DATA/feeds/ipa-alert.rdf" --name ipa --alert
expect_exit 0 "fetch" -- sam -q feed fetch
check "-q: nothing on stdout" -- test ! -s out
expect_exit 0 "advisory list --json" -- sam --json advisory list
check "SPEC's fields, types" -- $PY - "$T/out" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
assert len(a) == 35, len(a)
want = {"id", "feed", "title", "link", "published", "updated", "summary", "cves", "cvss", "severity", "products"}
for x in a:
    assert set(x) == want, set(x) ^ want
    assert isinstance(x["cves"], list) and isinstance(x["products"], list)
    assert x["cvss"] is None or isinstance(x["cvss"], (int, float))
    assert x["published"] is None or (len(x["published"]) == 20 and x["published"].endswith("Z"))
j = [x for x in a if x["id"] == "https://jvn.jp/jp/JVN13215493/"][0]
assert j["cvss"] == 8.8 and j["severity"] == "High" and j["products"] == ["iodata"], j
assert [x["published"] for x in a] == sorted([x["published"] for x in a], reverse=True)
PY
expect_exit 0 "--product takes a display name too" -- sam advisory list --product "Oracle Java (JRE)"
check "three Java advisories" -- test "$(wc -l < out)" = 3
expect_exit 64 "unknown product" -- sam advisory list --product nosuch
expect_exit 64 "bad --since" -- sam advisory list --since yesterday
expect_exit 0 "--since a timestamp" -- sam advisory list --since 2024-10-15T00:00:00Z
check "four since then" -- test "$(wc -l < out)" = 4

# The dictionary changes: CUPS becomes a product; retag applies it.
cat >> products.conf <<'DICT'

[cups]
ja = CUPS
en = CUPS
cpe = openprinting:cups*
keyword = CUPS
DICT
expect_exit 0 "retag" -- sam advisory retag
check "one advisory changed tags" -- grep -q "retagged: 1 advisory changed" out
expect_exit 0 "list by the new tag" -- sam advisory list --product cups
check "the CUPS advisory" -- grep -q "CUPS における複数の脆弱性" out
expect_exit 0 "retag again changes nothing" -- sam advisory retag
check "zero" -- grep -q "retagged: 0" out

expect_exit 0 "remove a feed" -- sam feed remove jvn
check "its advisories went with it" -- test "$(sqlite3 samail.db 'SELECT count(*) FROM advisory')" = 15
expect_exit 65 "remove it again" -- sam feed remove jvn
check "says there is none" -- grep -q "no feed named 'jvn'" err
expect_exit 64 "remove without a name" -- sam feed remove

finish
