#!/bin/sh
# Newsletter matching and content beyond the shipped data: a product
# dictionary an admin has grown ([feeds] products); advisory texts as
# feeds write them.
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
# Summaries with URLs, as JVN and vendors write them (September 2026).
# The first is cut at 300 characters, which fall inside its URL; the
# second runs on into Japanese with no blank after the URL.
cut_url='https://www.jpcert.or.jp/at/2026/at260099.html?utm_source=rss&utm_medium=feed&utm_campaign=at260099-very-long-tracking-parameters'
run_url='https://msrc.microsoft.com/update-guide/vulnerability/CVE-2026-21001'
long_ja=$($PY -c 'print("この脆弱性を悪用されると、遠隔の第三者によって任意のコードを実行される可能性があります" * 5)')
q "INSERT INTO advisory (feed_id, guid, title, link, summary, published, products, hash, first_seen, last_seen) VALUES
 (102, 'u1', 'URL の途中で切れる要約', 'https://jvn.jp/vu/u1/', '${long_ja}、詳しくは $cut_url を参照してください。', '2026-09-15T01:00:00Z', 'windows', 'h', 'x', 'x'),
 (102, 'u2', 'URL の直後に文が続く要約', 'https://jvn.jp/vu/u2/', 'Microsoft Windows には権限昇格の脆弱性があります。詳細は${run_url}を参照してください。この脆弱性を悪用されると、遠隔の第三者によって任意のコードを実行される可能性があります。', '2026-09-16T01:00:00Z', 'windows', 'h', 'x', 'x');"
sam subscriber add --email win@example.jp --org 窓株式会社 --products windows >/dev/null
expect_exit 0 "preview: summaries holding URLs" -- sam $NOW newsletter preview --period 2026-09 --email win@example.jp --out "$T/win.eml"
check "  ... a URL is shown whole or not at all (none cut at 300 characters), and the text after one wraps" -- \
    $PY - "$T/win.eml" "$cut_url" "$run_url" <<'PY'
import email, email.policy, html, re, sys, unicodedata
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
cut_url, run_url = sys.argv[2:4]
known = ("https://jvn.jp/", "https://www.ipa.go.jp/", "https://example.jp/", "https://www.example.jp/")
bad = []
for part in ("plain", "html"):
    body = html.unescape(m.get_body((part,)).get_content())
    for u in re.findall(r"https?://[!#-;=?-~]+", body):
        if u not in (cut_url, run_url) and not u.startswith(known):
            bad.append((part, "broken URL", u))
    if run_url not in body:
        bad.append((part, "URL missing", run_url))
for l in m.get_body(("plain",)).get_content().split("\n"):
    w = sum(2 if unicodedata.east_asian_width(c) in "WFA" else 1 for c in l)
    if w > 80 and not re.fullmatch(r"\s*(https?|mailto):\S+\s*", l):
        bad.append(("line of %d columns" % w, l))
for b in bad:
    print("#", *b)
sys.exit(1 if bad else 0)
PY
# English summaries (a feed an admin added): cut after a sentence, or
# else not inside a word.
q "INSERT INTO advisory (feed_id, guid, title, link, summary, published, products, hash, first_seen, last_seen) VALUES
 (102, 'e1', 'Cisco IOS XE Software Web UI Privilege Escalation Vulnerability', 'https://sec.cloudapps.cisco.com/security/center/content/CiscoSecurityAdvisory/cisco-sa-iosxe-webui-privesc-j22SaA4z', 'A vulnerability in the web UI feature of Cisco IOS XE Software could allow an unauthenticated, remote attacker to create an account on an affected system with privilege level 15 access. The attacker can then use that account to gain control of the affected system. For steps to close the attack vector for this vulnerability, see the Recommendations section of this advisory.', '2026-09-20T01:00:00Z', 'cisco', 'h', 'x', 'x'),
 (102, 'e2', 'Cisco ASA Software VPN Web Server Denial of Service Vulnerability', 'https://sec.cloudapps.cisco.com/security/center/content/CiscoSecurityAdvisory/cisco-sa-asaftd-webvpn', 'A vulnerability in the VPN web server of Cisco Adaptive Security Appliance Software and Cisco Firepower Threat Defense Software could allow an unauthenticated remote attacker to cause an affected device to reload unexpectedly resulting in a denial of service condition on the device because of improper validation of user supplied input in HTTP requests sent to the affected device', '2026-09-21T01:00:00Z', 'cisco', 'h', 'x', 'x');"
sam subscriber add --email cisco@example.jp --org 'シスコ利用株式会社' --products cisco >/dev/null
expect_exit 0 "preview: long English summaries" -- sam $NOW newsletter preview --period 2026-09 --email cisco@example.jp --out "$T/cisco.eml"
check "  ... one cut after its sentence, one after a whole word" -- \
    $PY - "$T/cisco.eml" "$(q "SELECT summary FROM advisory WHERE guid = 'e2'")" <<'PY'
import email, email.policy, re, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
text = re.sub(r"\s+", " ", m.get_body(("plain",)).get_content())
e2 = re.search(r" (\S+)… https://sec\.cloudapps\.cisco\.com/\S+-webvpn ", text)
ok = "to gain control of the affected system. https://sec.cloudapps" in text and \
    "For steps" not in text and e2 is not None and e2.group(1) in sys.argv[2].split()
if not ok:
    print("#", text[text.find("[", text.find("Cisco")) - 10:][:1200])
sys.exit(0 if ok else 1)
PY

# An advisory naming many CVE ids (a vendor's roll-up): the first five
# are listed, the rest counted; one naming five lists them all.
q "INSERT INTO advisory (feed_id, guid, title, link, summary, published, products, cves, hash, first_seen, last_seen) VALUES
 (102, 'c12', 'Oracle Java SE の複数の脆弱性', 'https://jvn.jp/vu/c12/', '', '2026-08-10T01:00:00Z', 'windows', '$(seq -f CVE-2026-210%02g -s, 1 12)', 'h', 'x', 'x'),
 (102, 'c5', 'Windows の複数の脆弱性', 'https://jvn.jp/vu/c5/', '', '2026-08-11T01:00:00Z', 'windows', '$(seq -f CVE-2026-220%02g -s, 1 5)', 'h', 'x', 'x');"
expect_exit 0 "preview: advisories naming 12 and 5 CVE ids" -- sam $NOW newsletter preview --period 2026-08 --email win@example.jp --out "$T/cve.eml"
check "  ... 12: the first five and ほか7件 in both parts; 5: all five, nothing more" -- \
    $PY - "$T/cve.eml" <<'PY'
import email, email.policy, html, re, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
ok = True
for part in ("plain", "html"):
    body = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]*>", "", m.get_body((part,)).get_content())))
    ok = ok and "CVE：CVE-2026-21001, CVE-2026-21002, CVE-2026-21003, CVE-2026-21004, CVE-2026-21005 ほか7件" in body \
        and "CVE-2026-21006" not in body \
        and re.search(r"CVE：CVE-2026-22001, CVE-2026-22002, CVE-2026-22003, CVE-2026-22004, CVE-2026-22005(?! ほか)", body) is not None
    if not ok:
        print("#", part, body[body.find("Oracle"):][:600])
sys.exit(0 if ok else 1)
PY

# An English declarer with one advisory more than max_advisories.
printf '[newsletter]\nmax_advisories = 1\n' >> "$T/samail.conf"
sam subscriber add --email en@example.com --org 'Acme Ltd' --products windows --locale en >/dev/null
expect_exit 0 "preview in English, one advisory over max_advisories" -- sam $NOW newsletter preview --period 2026-09 --email en@example.com --out "$T/en.eml"
check "  ... lists one and counts the other in English ('There are 1 more.' before)" -- \
    $PY - "$T/en.eml" <<'PY'
import email, email.policy, re, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
ok = "(advisories for your software: 2)" in m["subject"]
for part in ("plain", "html"):
    body = re.sub(r"\s+", " ", re.sub(r"<[^>]*>", "", m.get_body((part,)).get_content()))
    ok = ok and "Advisories not listed here: 1." in body and "There are 1 more" not in body
sys.exit(0 if ok else 1)
PY
finish
