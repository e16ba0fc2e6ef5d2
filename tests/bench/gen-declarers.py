#!/usr/bin/python3
"""Generate N realistic declarer rows as CSV (UTF-8, English headers).

usage: gen-declarers.py N OUT.csv [--cp932]
Product mixes follow what small offices run: most have Windows and Office,
a browser or two, some a web site (WordPress/PHP), a VPN box, phones.
"""
import random, sys, csv

def main():
    n = int(sys.argv[1]); out = sys.argv[2]; cp932 = "--cp932" in sys.argv
    rnd = random.Random(20261126)
    kinds = ["株式会社", "有限会社", "合同会社", "医療法人", "税理士法人", "一般社団法人"]
    stems = ["山田", "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "中村", "小林", "加藤",
             "さくら", "あおば", "ひかり", "みなと", "北斗", "大和", "東邦", "丸井", "青葉", "若葉"]
    tails = ["製作所", "商店", "工業", "システム", "不動産", "建設", "食品", "印刷", "物産", "設計",
             "クリニック", "薬局", "会計事務所", "デザイン", "運輸", "観光", "電機", "技研"]
    given = ["太郎", "花子", "一郎", "美咲", "健", "さくら", "翔", "由美", "大輔", "愛"]
    inds = ["製造業", "小売業", "サービス業", "医療・福祉", "建設業", "情報通信業", "士業", "宿泊業", "運輸業", "不動産業"]
    base = ["windows", "office"]
    extra = [("chrome", .6), ("edge", .4), ("firefox", .1), ("acrobat", .5), ("java", .1),
             ("wordpress", .15), ("php", .08), ("apache", .05), ("openssl", .03), ("fortios", .12),
             ("ivanti", .02), ("vmware", .03), ("android", .3), ("ios", .35), ("macos", .1),
             ("cisco", .04), ("zoom", .3), ("exchange", .05), ("yamaha", .08), ("buffalo", .1)]
    with open(out, "w", newline="", encoding="cp932" if cp932 else "utf-8") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(["email", "org", "name", "star", "declared", "assessed", "products",
                    "industry", "employees", "locale"])
        for i in range(n):
            star = 2 if rnd.random() < .25 else 1
            y = rnd.choice([2019, 2020, 2021, 2022, 2023, 2024, 2025])
            declared = "%d-%02d-%02d" % (y, rnd.randint(1, 12), rnd.randint(1, 28))
            assessed = ""
            if star == 2 or rnd.random() < .2:
                assessed = "%d-%02d-%02d" % (rnd.choice([2024, 2025, 2026]), rnd.randint(1, 10), rnd.randint(1, 28))
            prods = [p for p in base if rnd.random() < .9] + [p for p, q in extra if rnd.random() < q]
            org = rnd.choice(kinds) + rnd.choice(stems) + rnd.choice(tails)
            w.writerow(["user%06d@d%04d.example.jp" % (i, i % 9973), org,
                        rnd.choice(stems) + " " + rnd.choice(given), star, declared, assessed,
                        ";".join(prods), rnd.choice(inds), rnd.choice([2, 3, 5, 8, 12, 20, 35, 60]),
                        "en" if rnd.random() < .02 else "ja"])

main()
