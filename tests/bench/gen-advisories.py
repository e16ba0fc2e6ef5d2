#!/usr/bin/python3
"""Write an RSS 1.0 (JVN-style) feed of N advisories for one month.

usage: gen-advisories.py N YYYY-MM OUT.rdf
Titles name real product families in the proportions JVN and IPA publish
them, so samail's product tagging does its real work on them.
"""
import random, sys
from xml.sax.saxutils import escape

n, period, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
y, m = map(int, period.split("-"))
rnd = random.Random(2026)
products = [
    ("Microsoft Windows", 14), ("Microsoft Office", 6), ("Microsoft Edge", 5),
    ("Google Chrome", 8), ("Mozilla Firefox", 5), ("Adobe Acrobat Reader", 4),
    ("Oracle Java SE", 3), ("WordPress 用プラグイン", 12), ("PHP", 3),
    ("Apache HTTP Server", 2), ("OpenSSL", 2), ("FortiOS", 4), ("Ivanti Connect Secure", 2),
    ("VMware ESXi", 3), ("Android", 4), ("iOS および iPadOS", 4), ("macOS", 3),
    ("Cisco IOS XE", 3), ("Zoom Workplace", 2), ("Microsoft Exchange Server", 2),
    ("ヤマハ製ルーター", 2), ("BUFFALO 製無線 LAN ルーター", 3),
    ("複数の産業用制御システム製品", 8), ("サンプル業務アプリケーション", 10),
]
weights = [w for _, w in products]
kinds = ["クロスサイトスクリプティングの脆弱性", "OS コマンドインジェクションの脆弱性",
         "認証回避の脆弱性", "複数の脆弱性", "SQL インジェクションの脆弱性",
         "境界外書き込みの脆弱性", "情報漏えいの脆弱性"]
sev = [("Critical", 9.8), ("High", 8.8), ("High", 7.5), ("Medium", 6.1), ("Medium", 5.3), ("Low", 3.1)]
items = []
for i in range(n):
    p = rnd.choices(products, weights)[0][0]
    k = rnd.choice(kinds)
    s, score = rnd.choice(sev)
    day = rnd.randint(1, 28)
    ident = "JVNVU#%08d" % (90000000 + i)
    url = "https://jvn.jp/vu/JVNVU%08d/" % (90000000 + i)
    cve = "CVE-%d-%05d" % (y, 10000 + i)
    items.append((url, ident, "%s における%s" % (p, k),
                  "%s には、%sが存在します。遠隔の第三者によって、任意のコードを実行される可能性があります。" % (p, k),
                  "%04d-%02d-%02dT10:%02d:00+09:00" % (y, m, day, i % 60), s, score, cve))
with open(out, "w", encoding="utf-8") as f:
    f.write('<?xml version="1.0" encoding="UTF-8"?>\n<rdf:RDF xmlns="http://purl.org/rss/1.0/" '
            'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:dcterms="http://purl.org/dc/terms/" xmlns:sec="http://jvn.jp/rss/mod_sec/3.0/">\n'
            '<channel rdf:about="https://jvn.jp/rss/jvn.rdf"><title>JVN (bench)</title>'
            '<link>https://jvn.jp/</link><description>bench</description><items><rdf:Seq>\n')
    for it in items:
        f.write('<rdf:li rdf:resource="%s"/>\n' % it[0])
    f.write('</rdf:Seq></items></channel>\n')
    for url, ident, title, desc, date, s, score, cve in items:
        f.write('<item rdf:about="%s"><title>%s</title><link>%s</link><description>%s</description>'
                '<sec:identifier>%s</sec:identifier><sec:references source="CVE" id="%s">https://www.cve.org/CVERecord?id=%s</sec:references>'
                '<sec:cvss score="%.1f" severity="%s" vector="CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" version="3.0" type="Base"/>'
                '<dc:date>%s</dc:date><dcterms:issued>%s</dcterms:issued><dcterms:modified>%s</dcterms:modified></item>\n'
                % (url, escape(title), url, escape(desc), ident, cve, cve, score, s, date, date, date))
    f.write('</rdf:RDF>\n')
