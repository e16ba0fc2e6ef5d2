#!/bin/sh
# The monthly newsletter: build once, queue once, skip who must be skipped,
# refuse a broken template, and send mail that strict parsers, SpamAssassin
# and a browser accept.
. "$(dirname "$0")/lib.sh"
write_config </dev/null
OUT=$SRCDIR/build/test-output/newsletter
rm -rf "$OUT"; mkdir -p "$OUT"
sam init >/dev/null 2>&1
sam subscriber import "$SRCDIR/docs/examples/declarers-sample-cp932.csv" >/dev/null
NOW="--now 2026-11-01T00:00:00Z"

# Advisories of October 2026 (Japan time) and one of September.
sqlite3 "$T/samail.db" <<'SQL'
INSERT INTO feed (id, name, url, alert, created) VALUES
 (101, 't-ipa-alert', 'https://www.ipa.go.jp/security/alert-rss.rdf', 1, 'x'),
 (102, 't-jvn', 'https://jvn.jp/rss/jvn.rdf', 0, 'x');
INSERT INTO advisory (feed_id, guid, ident, title, link, summary, published, cvss, severity, cves, products, hash, first_seen, last_seen) VALUES
 (101, 'a1', NULL, 'Microsoft 製品の脆弱性対策について(2026年10月)', 'https://www.ipa.go.jp/security/security-alert/2026/1015-ms.html', '', '2026-10-15T01:00:00Z', NULL, NULL, '', 'office,windows', 'h', 'x', 'x'),
 (102, 'j1', 'JVNVU#1', 'FortiOS における認証回避の脆弱性', 'https://jvn.jp/vu/JVNVU00000001/', 'Fortinet が提供する FortiOS には認証回避の脆弱性があります。', '2026-10-10T01:00:00Z', 9.8, 'Critical', 'CVE-2026-11111,CVE-2026-11112', 'fortios', 'h', 'x', 'x'),
 (102, 'j1b', 'JVNVU#1', 'FortiOS における認証回避の脆弱性（更新） & <script>', 'https://jvn.jp/vu/JVNVU00000001/index.html', '', '2026-10-11T01:00:00Z', 9.8, 'Critical', 'CVE-2026-11111', 'fortios', 'h', 'x', 'x'),
 (101, 'a2', NULL, 'Oracle Java の脆弱性対策について', 'https://www.ipa.go.jp/security/security-alert/2026/1022-jre.html', '', '2026-10-22T01:00:00Z', NULL, NULL, '', 'java', 'h', 'x', 'x'),
 (102, 'j2', 'JVNVU#2', 'Exchange Server の脆弱性', 'https://jvn.jp/vu/JVNVU00000002/', 'Microsoft Exchange Server には権限昇格の脆弱性があります。この脆弱性を悪用されると、遠隔の第三者によって任意のコードを実行される可能性があります。この脆弱性を悪用されると、遠隔の第三者によって任意のコードを実行される可能性があります。この脆弱性を悪用されると、遠隔の第三者によって任意のコードを実行される可能性があります。この脆弱性を悪用されると、遠隔の第三者によって任意のコードを実行される可能性があります。この脆弱性を悪用されると、遠隔の第三者によって任意のコードを実行される可能性があります。この脆弱性を悪用されると、遠隔の第三者によって任意のコードを実行される可能性があります。この脆弱性を悪用されると、遠隔の第三者によって任意のコードを実行される可能性があります。この脆弱性を悪用されると、遠隔の第三者によって任意のコードを実行される可能性があります。末尾の一文。', '2026-10-31T14:59:59Z', 7.5, 'High', 'CVE-2026-2000', 'exchange,office', 'h', 'x', 'x'),
 (102, 'j3', 'JVNVU#3', '11月の脆弱性（対象外: 日本時間で11月）', 'https://jvn.jp/vu/JVNVU00000003/', '', '2026-10-31T15:00:00Z', 5.0, 'Medium', '', 'windows', 'h', 'x', 'x'),
 (101, 'a3', NULL, 'Microsoft Exchange Server の脆弱性対策について(CVE-2026-2000)', 'https://www.ipa.go.jp/security/security-alert/2026/1031-exchange.html', '', '2026-10-30T01:00:00Z', NULL, NULL, 'CVE-2026-2000', 'exchange', 'h', 'x', 'x'),
 (102, 'j6', 'JVNVU#6', 'Cisco IOS XE における脆弱性', 'https://jvn.jp/vu/JVNVU00000006/', '', '2026-10-20T01:00:00Z', 6.1, 'Medium', 'CVE-2026-6001', 'cisco', 'h', 'x', 'x'),
 (102, 'j7', 'JVNVU#7', 'Cisco IOS XE における脆弱性', 'https://jvn.jp/vu/JVNVU00000007/', '', '2026-10-21T01:00:00Z', 5.3, 'Medium', 'CVE-2026-7001', 'cisco', 'h', 'x', 'x'),
 (102, 'j4', 'JVNVU#4', '9月の脆弱性', 'https://jvn.jp/vu/JVNVU00000004/', '', '2026-09-10T01:00:00Z', 5.0, 'Medium', '', 'windows', 'h', 'x', 'x');
SQL
queued() { sqlite3 "$T/samail.db" "SELECT count(*) FROM outbox o JOIN campaign c ON c.id = o.campaign_id WHERE c.name = '$1'"; }

expect_exit 65 "a period in the future is refused" -- sam $NOW newsletter build --period 2026-12
expect_exit 64 "a malformed period is a usage error" -- sam $NOW newsletter build --period 2026/10
expect_exit 0 "--dry-run" -- sam $NOW newsletter build --period 2026-10 --dry-run
check "  ... counts 30 and stores nothing" -- eval 'grep -q "30 queued" "$T/out" && [ "$(queued newsletter-2026-10)" = 0 ] && [ "$(sqlite3 "$T/samail.db" "select count(*) from campaign")" = 0 ]'
expect_exit 0 "build" -- sam $NOW newsletter build --period 2026-10
check "  ... 6 advisories (the JVN update and IPA's alert on the same CVE merged, 1 Nov JST left out, two JVN items with one title kept apart)" -- grep -q "6 advisories (3 IPA alerts)" "$T/out"
check "  ... 30 queued" -- test "$(queued newsletter-2026-10)" = 30
expect_exit 0 "build again" -- sam $NOW newsletter build --period 2026-10
check "  ... queues nothing twice" -- eval 'grep -q " 0 queued" "$T/out" && [ "$(queued newsletter-2026-10)" = 30 ]'
sam subscriber add --email new@example.co.jp --org 新規株式会社 --products windows >/dev/null
sam subscriber update info02@example.jp --status unsubscribed >/dev/null
expect_exit 0 "build after adding a declarer" -- sam $NOW newsletter build --period 2026-10
check "  ... queues only the new one" -- eval 'grep -q " 1 queued" "$T/out" && [ "$(queued newsletter-2026-10)" = 31 ]'
check "  ... the unsubscribed one's queued message was cancelled" -- eval \
	'[ "$(sqlite3 "$T/samail.db" "select state from outbox where rcpt = '"'"'info02@example.jp'"'"'")" = cancelled ]'
expect_exit 0 "September's campaign" -- sam $NOW newsletter build --period 2026-09
check "  ... skips the unsubscribed declarer" -- eval '[ "$(queued newsletter-2026-09)" = 30 ] && \
	[ "$(sqlite3 "$T/samail.db" "select count(*) from outbox o join campaign c on c.id=o.campaign_id where c.name='"'"'newsletter-2026-09'"'"' and rcpt='"'"'info02@example.jp'"'"'")" = 0 ]'

# A broken template: exit 65 naming file:line:col, nothing queued.
cp -R "$SRCDIR/templates" "$T/tpl"
printf '{{#advisories}}\n{{title}\n' >> "$T/tpl/ja/newsletter.txt.mustache"
printf '[paths]\ntemplates = %s/tpl\n' "$T" >> "$T/samail.conf"
before=$(db_digest)
expect_exit 65 "a broken template" -- sam $NOW newsletter build --period 2026-08
check "  ... names file:line:col" -- grep -q "tpl/ja/newsletter.txt.mustache:[0-9]*:[0-9]*: " "$T/err"
check "  ... nothing stored" -- test "$(db_digest)" = "$before"
cp "$SRCDIR/templates/ja/newsletter.txt.mustache" "$T/tpl/ja/"
printf '{{orgg}}\n' >> "$T/tpl/ja/newsletter.txt.mustache"
expect_exit 65 "a misspelt name in a template" -- sam $NOW newsletter build --period 2026-08
check "  ... is caught before anything is queued" -- eval 'grep -q "'"'"'orgg'"'"' is not defined" "$T/err" && [ "$(db_digest)" = "$before" ]'
sed -i '/^\[paths\]/,$d' "$T/samail.conf"

# The unsubscribed-after-build declarer is not sent to.
sam subscriber update info03@example.co.jp --status unsubscribed >/dev/null
expect_exit 0 "send to the maildir" -- sam --now 2026-11-01T00:10:00Z send
n=$(ls "$T/mail/new" | wc -l)
# 31 + 30 queued, less info02 (unsubscribed before) and info03 (after).
check "  ... 58 messages delivered ($n)" -- test "$n" = 58
check "  ... none to the declarers who unsubscribed" -- eval '! grep -l "^To:.*info0[23]@" "$T"/mail/new/* >/dev/null'
expect_exit 0 "send again" -- sam send
check "  ... sends nothing twice" -- test "$(ls "$T/mail/new" | wc -l)" = 58

# Every message through Python's strict parser.
$PY - "$T/mail/new" "$OUT" <<'PY' >"$T/py.out" 2>&1
import email, email.policy, os, sys, re
d, out = sys.argv[1], sys.argv[2]
ids, bad, empty_month = set(), [], 0
for f in sorted(os.listdir(d)):
    raw = open(os.path.join(d, f), "rb").read()
    m = email.message_from_bytes(raw, policy=email.policy.default)
    subj = str(m["subject"])
    if not re.match(r"^(2026年(10|9)月のセキュリティ情報（|Security news for (October|September) 2026 \()", subj): bad.append((f, "subject", subj))
    if m.get_content_type() != "multipart/alternative": bad.append((f, "type", m.get_content_type()))
    parts = [p.get_content_type() for p in m.iter_parts()]
    if parts != ["text/plain", "text/html"]: bad.append((f, "parts", parts))
    for p in m.iter_parts():
        if p.get_content_charset() != "utf-8": bad.append((f, "charset", p.get_content_charset()))
    if max(len(l) for l in raw.split(b"\n")) > 998: bad.append((f, "line > 998"))
    mid = m["message-id"]; ids.add(mid)
    lu = str(m["list-unsubscribe"])
    if not re.search(r"<https://[^>]+/u/[A-Za-z0-9_-]{44}>", lu) or "<mailto:" not in lu: bad.append((f, "list-unsubscribe", lu))
    if str(m["list-unsubscribe-post"]) != "List-Unsubscribe=One-Click": bad.append((f, "one-click"))
    if "SECURITY ACTION" not in str(m["from"]) or "news@example.jp" not in str(m["from"]): bad.append((f, "from", str(m["from"])))
    if not m["date"] or not m["list-id"]: bad.append((f, "date/list-id"))
    text = m.get_body(("plain",)).get_content()
    html = m.get_body(("html",)).get_content()
    if "<script" in html.lower(): bad.append((f, "script in html"))
    to = str(m["to"])
    if "info01@example.or.jp" in to and "2026年10月" in subj:
        open(os.path.join(out, "info01.eml"), "wb").write(raw)
        open(os.path.join(out, "info01.html"), "w").write(html)
        if "FortiOS における認証回避の脆弱性（更新） & <script>" not in text: bad.append((f, "the newest version of JVNVU#1, raw in text"))
        if "&lt;script&gt;" not in html: bad.append((f, "escaped title in html"))
        if text.count("FortiOS における認証回避の脆弱性") != 1: bad.append((f, "JVNVU#1 twice"))
        if "JVNVU00000006" not in text or "JVNVU00000007" not in text: bad.append((f, "two JVN advisories with the same title merged"))
        if "CVE-2026-11112" not in text: bad.append((f, "the merged JVNVU#1 lacks a CVE id only its first version had"))
        if "Exchange Server の脆弱性" not in text: bad.append((f, "last minute of October JST missing"))
        flat = re.sub(r"\s", "", text)
        if "MicrosoftExchangeServerには権限昇格の脆弱性があります。" not in flat or "末尾の一文" in flat: bad.append((f, "a long summary is shown in part"))
        # JVN's entry and IPA's alert on the same CVE: one item, in IPA's
        # words and link, with JVN's severity and summary.
        if "1031-exchange.html" not in text or "JVNVU00000002" in text: bad.append((f, "the merged Exchange item is not IPA's"))
        if text.count("Exchange Server の脆弱性") != 1: bad.append((f, "the Exchange advisory listed twice"))
        if "11月の脆弱性" in text: bad.append((f, "November (JST) advisory listed"))
        if "Oracle Java" not in text: bad.append((f, "unmatched IPA alert not listed"))
        # Dates as Japanese text writes them, in the text and the HTML.
        if "公開日：2026年10月11日（情報源：JVN）" not in text or "公開日：2026年10月30日" not in html or "公開日：2026-" in text + html: bad.append((f, "publication dates not in Japanese form"))
        if "Oracle Java の脆弱性対策について（2026年10月22日）" not in text: bad.append((f, "an alert's date not in Japanese form"))
    if "trade@example.com" in to or "new@example.co.jp" in to:
        pass
    if "info07@example.or.jp" in to and "2026年10月" in subj:
        # office only: JVN tagged the Exchange advisory office too; the
        # merged item (shown as IPA's alert, tagged exchange) still reaches them
        k = text.find("Microsoft Exchange Server の脆弱性対策について")
        if k < 0 or "対象のご利用製品" not in text[k:k + 200]: bad.append((f, "a merged advisory lost the tags of the copy not shown"))
    if "info07@example.or.jp" in to and "2026年9月" in subj:
        # office only: nothing matched in September, and the mail says so
        empty_month += 1
        if "ご登録の製品に関するものはありませんでした" not in re.sub(r"\s", "", text) or "2026年9月" not in text: bad.append((f, "empty month message", text[:400]))
if empty_month != 1: bad.append(("no empty-month mail for info07", empty_month))
if len(ids) != 58: bad.append(("ids", len(ids)))
for b in bad: print("BAD", *b)
sys.exit(1 if bad else 0)
PY
check "all 58 parse strictly with Python's email (policy=default): structure, charset, lines, headers, unique Message-IDs" -- \
	eval '[ ! -s "$T/py.out" ] || { cat "$T/py.out"; false; }'
# A declarer whose message was cancelled unsent (info03 unsubscribed
# after the build) and who is active again: a rebuild queues it again,
# under the same Message-ID, and it goes once; info02, still
# unsubscribed, stays cancelled.
mid03=$(sqlite3 "$T/samail.db" "SELECT o.id FROM outbox o JOIN campaign c ON c.id = o.campaign_id WHERE c.name = 'newsletter-2026-10' AND o.rcpt = 'info03@example.co.jp'")
sam subscriber update info03@example.co.jp --status active >/dev/null
expect_exit 0 "rebuild after a declarer is active again" -- sam $NOW newsletter build --period 2026-10
check "  ... queues the cancelled one again, nobody else" -- eval \
	'grep -q " 1 queued" "$T/out" && [ "$(sqlite3 "$T/samail.db" "SELECT o.id || o.state FROM outbox o JOIN campaign c ON c.id = o.campaign_id WHERE c.name = '"'"'newsletter-2026-10'"'"' AND o.subscriber_id = (SELECT id FROM subscriber WHERE email = '"'"'info03@example.co.jp'"'"')")" = "${mid03}queued" ] && [ "$(sqlite3 "$T/samail.db" "SELECT group_concat(o.state) FROM outbox o JOIN subscriber s ON s.id = o.subscriber_id WHERE s.email = '"'"'info02@example.jp'"'"'")" = cancelled ]'
expect_exit 0 "  ... send" -- sam --now 2026-11-02T00:10:00Z send
check "  ... info03 gets October's newsletter once" -- eval \
	'[ "$(grep -l "^To:.*info03@" "$T"/mail/new/* | wc -l)" = 1 ] && [ "$(ls "$T/mail/new" | wc -l)" = 59 ]'
expect_exit 0 "  ... build again" -- sam $NOW newsletter build --period 2026-10
check "  ... queues nothing" -- grep -q " 0 queued" "$T/out"
# One held after a crash (resend_in_flight = no: it may have gone out),
# then cancelled as its declarer unsubscribed: when they are active
# again a rebuild leaves it to the admin, as the held one was.
sqlite3 "$T/samail.db" "UPDATE outbox SET state = 'held', last_error = 'interrupted while in flight; held for review (resend_in_flight = no)' WHERE rcpt = 'info01@example.or.jp' AND campaign_id = (SELECT id FROM campaign WHERE name = 'newsletter-2026-10')"
sam subscriber update info01@example.or.jp --status unsubscribed >/dev/null
sam subscriber update info01@example.or.jp --status active >/dev/null
expect_exit 0 "rebuild after a declarer whose held message was cancelled is active again" -- sam $NOW newsletter build --period 2026-10
check "  ... does not queue it again" -- eval \
	'grep -q " 0 queued" "$T/out" && [ "$(sqlite3 "$T/samail.db" "SELECT o.state FROM outbox o JOIN campaign c ON c.id = o.campaign_id WHERE c.name = '"'"'newsletter-2026-10'"'"' AND o.rcpt = '"'"'info01@example.or.jp'"'"'")" = cancelled ]'
check "checkmail.py accepts a message" -- $PY "$SRCDIR/tests/tools/checkmail.py" --lf --to-addr info01@example.or.jp "$OUT/info01.eml"
check "checkhtml.py accepts its HTML part" -- $PY "$SRCDIR/tests/tools/checkhtml.py" "$OUT/info01.html"
if command -v spamassassin >/dev/null; then
	score=$(spamassassin -L -t < "$OUT/info01.eml" 2>/dev/null | sed -n 's/^X-Spam-Status: [A-Za-z]*, score=\([-0-9.]*\).*/\1/p')
	echo "# SpamAssassin score: $score"
	check "SpamAssassin scores it at most 1.0 ($score)" -- $PY -c "import sys; sys.exit(0 if float('$score') <= 1.0 else 1)"
else
	not_ok "spamassassin is missing (make deps installs it)"
fi
if [ -x /usr/bin/chromium ]; then
	check "Chromium renders the HTML part at phone and desktop widths" -- \
		eval 'bash "$SRCDIR/tests/tools/screenshot.sh" "$OUT/info01.html" "$OUT" newsletter >/dev/null 2>&1 && \
		[ -s "$OUT/newsletter-375.png" ] && [ -s "$OUT/newsletter-1024.png" ]'
	echo "# screenshots: $OUT/newsletter-375.png $OUT/newsletter-1024.png"
else
	not_ok "chromium is missing (make deps installs it)"
fi

expect_exit 0 "preview writes exactly one declarer's message" -- sam $NOW newsletter preview --email info05@example.co.jp --out "$T/p.eml"
check "  ... it parses, and nothing was stored" -- eval '$PY "$SRCDIR/tests/tools/checkmail.py" --to-addr info05@example.co.jp "$T/p.eml" && [ "$(queued newsletter-2026-10)" = 31 ]'
expect_exit 65 "preview of an unsubscribed declarer" -- sam $NOW newsletter preview --email info02@example.jp
cp "$T/samail.conf" "$T/samail.conf.keep"
printf '[mail]\nmessage_id_domain = changed.example\n' >> "$T/samail.conf"
expect_exit 0 "preview again after message_id_domain changed" -- sam $NOW newsletter preview --email info05@example.co.jp --out "$T/p2.eml"
check "  ... the queued message keeps its Message-ID (a resend stays recognisable)" -- eval \
	'[ "$(grep -i "^Message-ID:" "$T/p.eml")" = "$(grep -i "^Message-ID:" "$T/p2.eml")" ] && ! grep -qi "^Message-ID:.*changed.example" "$T/p2.eml"'
cp "$T/samail.conf.keep" "$T/samail.conf"
sam subscriber add --email english@example.com --org "Acme Ltd" --locale en >/dev/null
printf '[mail]\nfrom_name_en = SECURITY ACTION Office\n' >> "$T/samail.conf"
sam $NOW newsletter preview --email english@example.com --out "$T/en.eml" 2>/dev/null
sam $NOW newsletter preview --email info05@example.co.jp --out "$T/ja.eml" 2>/dev/null
check "from_name_en: English declarers see it, Japanese ones the from name" -- $PY - "$T/en.eml" "$T/ja.eml" <<'PY'
import email, email.policy, sys
en, ja = (email.message_from_binary_file(open(f, "rb"), policy=email.policy.default) for f in sys.argv[1:3])
sys.exit(0 if en["from"].addresses[0].display_name == "SECURITY ACTION Office" and
         "事務局" in ja["from"].addresses[0].display_name and
         en["from"].addresses[0].addr_spec == ja["from"].addresses[0].addr_spec else 1)
PY
cp "$T/samail.conf.keep" "$T/samail.conf"
sam subscriber add --email longname@example.jp --org "株式会社$(printf '長%.0s' $(seq 1 190))" >/dev/null
expect_exit 0 "an organisation name of 194 characters still gets its mail" -- sam $NOW newsletter preview --email longname@example.jp --out "$T/long.eml"
check "  ... the To name cut to fit, the message valid" -- eval '$PY "$SRCDIR/tests/tools/checkmail.py" --to-addr longname@example.jp "$T/long.eml" && \
	$PY -c "import email,email.policy,sys; m=email.message_from_binary_file(open(sys.argv[1],\"rb\"),policy=email.policy.default); n=m[\"to\"].addresses[0].display_name; sys.exit(0 if n.startswith(\"株式会社長\") and n.endswith(\"…\") else 1)" "$T/long.eml"'

# The 5か条 item of the month goes on by one each month across the years
# (2026-10: the 24,321st month, item 2) and is frozen in the campaign; one
# built before that (no rule_month) keeps what its first messages had:
# item (month - 1) % 5 + 1, 5 for October.
rule_of() { $PY -c 'import email, email.policy, re, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
r = re.search("第([0-9])条「", m.get_body(("plain",)).get_content())
print(r.group(1) if r else "none")' "$1"; }
sam $NOW newsletter preview --email info05@example.co.jp --out "$T/r1.eml" 2>/dev/null
check "the 5か条 item of 2026-10 is the 2nd, kept in the campaign" -- eval \
	'[ "$(rule_of "$T/r1.eml")" = 2 ] && [ "$(sqlite3 "$T/samail.db" "SELECT json_extract(content, '"'"'\$.rule_month'"'"') FROM campaign WHERE name = '"'"'newsletter-2026-10'"'"'")" = 24321 ]'
sqlite3 "$T/samail.db" "UPDATE campaign SET content = json_remove(content, '\$.rule_month') WHERE name = 'newsletter-2026-10'"
sam $NOW newsletter preview --email info05@example.co.jp --out "$T/r2.eml" 2>/dev/null
check "  ... a campaign built before keeps the item it had (5th)" -- test "$(rule_of "$T/r2.eml")" = 5
finish
