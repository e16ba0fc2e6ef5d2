#!/bin/sh
# Newsletters made from skeletons (one rendering per variant, the
# declarer's strings filled in) are the bytes of newsletters rendered
# whole, for awkward names and for templates that use those strings in
# every way Mustache allows.  lib.sh sets SAMAIL_CHECK_SKELETONS: send
# renders every message both ways and stops with exit 70 on a difference.
. "$(dirname "$0")/lib.sh"
write_config </dev/null
sam init >/dev/null 2>&1
$PY "$SRCDIR/tests/bench/gen-declarers.py" 300 decl.csv
sam subscriber import decl.csv >/dev/null 2>&1
i=0
for org in 'A&B <Co> "Q" '"'"'x' \
    '株式会社サンプル商事ホールディングス情報システム部門セキュリティ対策推進室とても長い名前の組織で折り返しが必要になる' \
    'X' 'Org=?utf-8?q?x?=' 'http://evil.example/' '『括弧』「開き' 'Ωmega—Ltd'; do
	for name in '' 'Taro' 'O'"'"'Brien & <Sons>' \
	    '山田　太郎（やまだ　たろう）様宛て長い長い長い長い長い長い長い長い長い長い長い長い'; do
		i=$((i + 1))
		if [ -n "$name" ]; then
			loc=ja; [ $((i % 2)) = 0 ] && loc=en
			sam subscriber add --email "v$i@example.jp" --org "$org" \
			    --name "$name" --products windows,office --locale $loc
		else
			sam subscriber add --email "v$i@example.jp" --org "$org" \
			    --products windows --star 2
		fi >/dev/null 2>&1 || echo "# could not add v$i"
	done
done
seed_advisories
cp -R "$SRCDIR/templates" "$T/tpl"
for l in ja en; do
	printf '\n{{#name}}Name: {{name}} / {{{name}}} / {{org}}{{/name}}{{^name}}no name: {{org}}{{/name}}\n{{#advisories}}  * {{title}} ({{products}}) for {{org}}\n{{/advisories}}\n    {{> _x}}\nlast line {{unsubscribe_mailto}} {{org}}' \
	    >> "$T/tpl/$l/newsletter.txt.mustache"
	printf '{{org}} in an indented partial, long enough to be wrapped when the name is long: {{products}}\nsecond {{name}}\n' \
	    > "$T/tpl/$l/_x.mustache"
	printf '<p title="{{org}}">{{{org}}}{{#advisories}}<i>{{products}}</i>{{/advisories}}{{&name}}</p>\n' \
	    >> "$T/tpl/$l/newsletter.html.mustache"
done
printf '[paths]\ntemplates = %s/tpl\n' "$T" >> "$T/samail.conf"
total=$(sqlite3 "$T/samail.db" "SELECT count(*) FROM subscriber WHERE status = 'active'")

expect_exit 0 "newsletter build with templates using the strings every way" -- \
    sam --now 2026-11-01T00:00:00Z newsletter build --period 2026-10
expect_exit 0 "send: every message made from a skeleton equals its whole rendering" -- \
    sam --now 2026-11-01T00:10:00Z send
check "  ... all $total delivered" -- \
    [ "$(ls "$T/mail/new" | wc -l)" = "$total" ]

# A text whose last line is blanks only, with no final newline, after a
# line with the organisation: wrap_text() drops the line break before
# it; such a newsletter is rendered whole, not failed.
for l in ja en; do
	printf 'Dear {{org}}\n%90s' '' >> "$T/tpl/$l/newsletter.txt.mustache"
done
expect_exit 0 "a blank last line: newsletter build" -- \
    sam --now 2026-11-01T00:00:00Z newsletter build --period 2026-09
expect_exit 0 "  ... send" -- sam --now 2026-11-01T00:20:00Z send
check "  ... all delivered again" -- \
    [ "$(ls "$T/mail/new" | wc -l)" = "$((total * 2))" ]
check "  ... none failed" -- \
    [ "$(sqlite3 "$T/samail.db" "SELECT count(*) FROM outbox WHERE state <> 'sent'")" = 0 ]
finish
