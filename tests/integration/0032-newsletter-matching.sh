#!/bin/sh
# Newsletter matching beyond the shipped data: a product dictionary an
# admin has grown ([feeds] products).
. "$(dirname "$0")/lib.sh"
cp "$SRCDIR/feeds/products.conf" "$T/products.conf"
# 43 more products: the dictionary holds 70, more than 64.
$PY -c '
for i in range(28, 71):
    print("[extra%02d]\nja = 追加製品%02d\nen = Extra %02d\nkeyword = ExtraProd%02d\n" % (i, i, i, i))
' >> "$T/products.conf"
write_config <<CONF
[feeds]
products = $T/products.conf
CONF
sam init >/dev/null 2>&1
NOW="--now 2026-11-01T00:00:00Z"
q "INSERT INTO feed (id, name, url, alert, created) VALUES
 (102, 't-jvn', 'https://jvn.jp/rss/jvn.rdf', 0, 'x');
INSERT INTO advisory (feed_id, guid, title, link, summary, published, products, hash, first_seen, last_seen) VALUES
 (102, 'e40', 'ExtraProd40 の脆弱性', 'https://jvn.jp/vu/40/', '', '2026-10-15T01:00:00Z', 'extra40', 'h', 'x', 'x'),
 (102, 'e70', 'ExtraProd70 の脆弱性', 'https://jvn.jp/vu/70/', '', '2026-10-16T01:00:00Z', 'extra70', 'h', 'x', 'x');"
sam subscriber add --email p40@example.jp --org 四十株式会社 --products extra40 >/dev/null
sam subscriber add --email p70@example.jp --org 七十株式会社 --products 'Extra 70' >/dev/null

expect_exit 0 "build with a dictionary of 70 products" -- sam $NOW newsletter build --period 2026-10
check "  ... both declarers have an advisory for their product" -- grep -q "2 queued (2 with advisories for their products)" "$T/out"
expect_exit 0 "preview for the 70th product's declarer" -- sam $NOW newsletter preview --period 2026-10 --email p70@example.jp --out "$T/p70.eml"
check "  ... lists its advisory" -- $PY - "$T/p70.eml" <<'PY'
import email, email.policy, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
text = m.get_body(("plain",)).get_content()
sys.exit(0 if "ExtraProd70 の脆弱性" in text and "1件" in m["subject"] else 1)
PY
finish
