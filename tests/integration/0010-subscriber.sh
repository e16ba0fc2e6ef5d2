#!/bin/sh
# Declarer management through the CLI: add, duplicate, update, remove,
# purge, invalid input refused with 65 and an unchanged database.
. "$(dirname "$0")/lib.sh"
write_config </dev/null
expect_exit 0 "init" -- sam init
expect_exit 0 "init again is safe" -- sam init
check "the unsubscribe key: private, whole, no temporary file beside it" -- eval \
	'[ "$(stat -c %a "$T/unsubscribe.key")" = 600 ] && [ "$(wc -c < "$T/unsubscribe.key")" = 65 ] &&
	 [ -z "$(ls "$T" | grep "^unsubscribe\.key\.")" ]'
: > "$T/unsubscribe.key"
expect_exit 0 "init over an empty key (an older samail's, cut short): a new one" -- sam init
check "  ... whole, and said" -- eval \
	'[ "$(wc -c < "$T/unsubscribe.key")" = 65 ] && grep -q "was empty (its creation was cut short): making a new one" "$T/err"'
sqlite3 "$T/other.db" "CREATE TABLE accounts (x)"
expect_exit 78 "init on another application's SQLite file is refused" -- sam --db "$T/other.db" init
check "  ... and adds nothing to it" -- test "$(sqlite3 "$T/other.db" .tables)" = accounts
sed "s|^seed = .*|seed = $T/no-such-feeds.conf|; s|^path = .*|path = $T/fresh.db|" "$T/samail.conf" > "$T/noseed.conf"
expect_exit 66 "init whose feed list is missing fails" -- "$SAMAIL" -c "$T/noseed.conf" init
check "  ... and leaves no half-set-up database" -- test ! -e "$T/fresh.db"
expect_exit 64 "--db with an empty name" -- "$SAMAIL" --db= init
expect_exit 0 "add a declarer" -- sam subscriber add --email Info@Example.CO.JP \
	--org "株式会社テスト" --name "山田 太郎" --star 2 --declared 2025/4/1 \
	--products "windows、office" --employees 12 --locale ja
check "domain stored lower-cased, local part kept" -- \
	eval 'sam --json subscriber list | grep -q "\"email\":\"Info@example.co.jp\""'
expect_exit 65 "same address again (domain case differs) is a duplicate" -- \
	sam subscriber add --email Info@example.co.jp --org x
expect_exit 0 "update" -- sam subscriber update Info@example.co.jp --org "株式会社テスト2" \
	--assessed 2026-01-10 --score 70
check "update stored" -- eval 'sam --json subscriber show Info@example.co.jp | grep -q "テスト2"'
check "json has SPEC fields" -- eval 'sam --json subscriber list | /usr/bin/python3 -c "
import json,sys
d=json.load(sys.stdin)[0]
want={\"email\",\"org\",\"name\",\"star\",\"declared\",\"assessed\",\"products\",\"industry\",\"employees\",\"locale\",\"status\"}
assert set(d)==want, set(d)^want
assert d[\"products\"]==[\"office\",\"windows\"] and d[\"star\"]==2 and d[\"assessed\"]==\"2026-01-10\" and d[\"employees\"]==12
"'
expect_exit 65 "update of an unknown address" -- sam subscriber update nobody@example.jp --org x
# A Japanese domain: kept in the ASCII form SMTP and DNS use.
expect_exit 0 "add with an internationalised domain" -- sam subscriber add --email 'info@例え.jp' --org 例え
check "  ... stored as its xn-- form" -- eval 'sam --json subscriber show info@xn--r8jz45g.jp | grep -q "\"email\":\"info@xn--r8jz45g.jp\""'
expect_exit 65 "  ... the same domain in full-width letters is the same address" -- \
	sam subscriber add --email 'info@例え．ｊｐ' --org x
expect_exit 0 "  ... found by its Unicode form" -- sam subscriber remove --purge 'info@例え.jp'

before=$(db_digest)
n=0
# Invalid addresses: each refused with 65, nothing stored.
for a in "" "plain" "a b@example.jp" "a@@example.jp" "a@b@example.jp" "@example.jp" \
	"a@" "a@example" "a@.example.jp" "a@example..jp" ".a@example.jp" "a.@example.jp" \
	"a..b@example.jp" "a@-example.jp" "a@example-.jp" "a@exa_mple.jp" "<a@example.jp>" \
	"a@example.jp>" "\"a b\"@example.jp" "a@[192.0.2.1]" "ａ@example.jp" "a＠example.jp" \
	"担当@例え.jp" "a@例え 語.jp" "a@☃.example.jp" "a(b)@example.jp" "a,b@example.jp" \
	"$(printf 'a@example.jp\r\nBcc: x@example.jp')" "$(printf 'a\n@example.jp')" \
	"$(printf 'a\t@example.jp')" "$(printf 'a@example.jp\033')" \
	"$(head -c 65 /dev/zero | tr '\0' a)@example.jp" \
	"a@$(head -c 250 /dev/zero | tr '\0' a).jp"; do
	n=$((n + 1))
	expect_exit 65 "invalid address #$n refused" -- sam subscriber add --email "$a" --org "株式会社X"
done
# Invalid names and other fields.
for args in "--org=" "--org=$(printf 'A\r\nBcc: x@example.jp')" "--org=$(printf 'A\nB')" \
	"--org=$(printf 'A\tB')" "--org=$(printf 'A\033B')" "--name=$(printf 'Yamada\r\nX-Evil: 1')" \
	"--name=$(printf 'a\302\205b')" "--org=$(head -c 300 /dev/zero | tr '\0' x)" \
	"--industry=$(printf 'x\ny')" "--star=3" "--star=★★★" "--declared=2025-02-30" \
	"--declared=2025/13/01" "--declared=tomorrow" "--assessed=2099-01-01" \
	"--products=windows,nosuchproduct" "--employees=-3" "--employees=many" \
	"--locale=fr" "--org=$(printf '\377\376bad utf8')"; do
	n=$((n + 1))
	expect_exit 65 "invalid field #$n refused ($(printf '%s' "$args" | cut -c1-24 | tr -d '\r\n\t\033'))" -- \
		sam subscriber add --email ok$n@example.jp --org "株式会社X" "$args"
done
check "database unchanged after $n refusals" -- test "$(db_digest)" = "$before"

expect_exit 64 "missing --org is a usage error" -- sam subscriber add --email x@example.jp
expect_exit 64 "unknown option" -- sam subscriber add --email x@example.jp --org x --bogus
expect_exit 64 "unknown subcommand" -- sam subscriber frobnicate

# Remove keeps a suppression record; a re-import does not re-subscribe.
expect_exit 0 "remove" -- sam subscriber remove Info@example.co.jp
check "removed declarer listed as removed" -- eval 'sam subscriber list --status removed | grep -q Info@example.co.jp'
check "no active declarers left" -- eval '[ -z "$(sam subscriber list --status active)" ]'
printf 'email,org\nInfo@example.co.jp,株式会社テスト\n' > re.csv
expect_exit 0 "re-import of a removed address" -- sam subscriber import re.csv
check "it stays removed" -- eval 'sam --json subscriber list | grep -q "\"status\":\"removed\""'
expect_exit 65 "add of a removed address is refused" -- sam subscriber add --email Info@example.co.jp --org x

# Purge erases personal data, keeps only a hash.
expect_exit 0 "purge" -- sam subscriber remove --purge Info@example.co.jp
check "no trace of the address or the org in the database" -- eval \
	'! sqlite3 "$T/samail.db" .dump | grep -qi -e "info@example" -e "テスト" -e "山田"'
expect_exit 0 "re-import after purge" -- sam subscriber import re.csv
check "the purged address is suppressed, not re-added" -- eval \
	'grep -q "1 suppressed" "$T/out" && [ -z "$(sam subscriber list)" ]'
expect_exit 0 "explicit re-subscribe" -- sam subscriber add --email info@example.co.jp --org x --resubscribe
expect_exit 0 "reactivate-able via update --status" -- sam subscriber update info@example.co.jp --status unsubscribed
expect_exit 0 "reactivate" -- sam subscriber update info@example.co.jp --status active
check "active again" -- eval 'sam --json subscriber list --status active | grep -q info@example.co.jp'
finish
