#!/bin/sh
# samail serve driven with curl on loopback: one-click POST (RFC 8058),
# GET changes nothing, bad tokens get 400 and change nothing, limits,
# 404/405, rate limit, security headers, clean stop; after unsubscribing
# the next newsletter build does not queue the address.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || { echo "curl missing"; exit 77; }
PORT=$(free_port)
BASE=http://127.0.0.1:$PORT
write_config <<CONF
[database]
busy_timeout = 300
[unsubscribe]
base_url = $BASE/u/
listen = 127.0.0.1:$PORT
CONF
NOW=--now=2026-02-03T00:00:00Z
expect_exit 0 "init" -- sam init
sam subscriber add --email a@example.jp --org "株式会社A" >/dev/null
sam subscriber add --email b@example.jp --org "B Ltd" --locale en >/dev/null
sam subscriber add --email c@example.jp --org "株式会社C" >/dev/null
expect_exit 0 "newsletter build (January)" -- sam $NOW newsletter build --period 2026-01

# The token of a declarer, from the List-Unsubscribe header of the message
# they get.  $1 email, $2 config (default ours).
token_of() {
	"$SAMAIL" -c "${2:-$T/samail.conf}" $NOW newsletter preview --period 2026-01 \
		--email "$1" | $PY -c '
import email, re, sys
m = email.message_from_bytes(sys.stdin.buffer.read())
v = re.sub(r"\s+", "", m["List-Unsubscribe"])
print(re.search(r"<https?://[^>]*/u/([^>]*)>", v).group(1))'
}
TA=$(token_of a@example.jp)
TB=$(token_of b@example.jp)
TC=$(token_of c@example.jp)
check "tokens from List-Unsubscribe (44 characters)" -- \
	test ${#TA} = 44 -a ${#TB} = 44 -a ${#TC} = 44 -a "$TA" != "$TB"
# A token for another list: the same key file, the same declarer id (1),
# another List-Id (a second list run from the same directory).
other_list
TOTHER=$(token_of a@example.jp "$T/other.conf")
check "other list's token differs" -- test ${#TOTHER} = 44 -a "$TOTHER" != "$TA"

"$SAMAIL" -c "$T/samail.conf" serve >"$T/serve.out" 2>"$T/serve.log" &
SPID=$!
at_exit "kill $SPID 2>/dev/null"
i=0
until curl -s -o /dev/null "$BASE/healthz" || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
check "serve listens on the configured address" -- grep -q "listening on 127.0.0.1:$PORT" "$T/serve.log"

# req NAME curl-args...: body in $T/NAME.body, headers in $T/NAME.hdr, code printed
req() {
	n=$1; shift
	curl -s -o "$T/$n.body" -D "$T/$n.hdr" -w '%{http_code}' "$@"
}
hdr() { grep -i "^$2:" "$T/$1.hdr" | cut -d: -f2- | tr -d '\r' | sed 's/^ //'; }

check "/healthz 200 ok" -- test "$(req health "$BASE/healthz")" = 200 -a "$(cat "$T/health.body")" = ok

before=$(db_digest)
check "GET shows the page (200)" -- test "$(req get "$BASE/u/$TA")" = 200
check "GET page: Japanese confirmation with a button that POSTs one-click" -- \
	eval 'grep -q "配信停止の確認" "$T/get.body" &&
	grep -q "<form method=\"post\" action=\"$BASE/u/$TA\"" "$T/get.body" &&
	grep -q "name=\"List-Unsubscribe\" value=\"One-Click\"" "$T/get.body" &&
	grep -q "lang=\"en\"" "$T/get.body"'
check "GET page names no address or organisation" -- \
	eval '! grep -q -e "a@example.jp" -e "株式会社A" "$T/get.body"'
check "Cache-Control: no-store" -- test "$(hdr get Cache-Control)" = no-store
check "Referrer-Policy: no-referrer" -- test "$(hdr get Referrer-Policy)" = no-referrer
check "X-Content-Type-Options: nosniff" -- test "$(hdr get X-Content-Type-Options)" = nosniff
check "Content-Security-Policy: nothing but inline style and the form" -- \
	eval 'hdr get Content-Security-Policy | grep -q "default-src '"'none'"'" &&
	hdr get Content-Security-Policy | grep -q "form-action '"'self'"' $BASE"'
check "text/html; charset=utf-8" -- eval 'hdr get Content-Type | grep -qi "text/html; charset=utf-8"'
check "GET for an English declarer: English page with a Japanese line" -- \
	eval 'test "$(req getb "$BASE/u/$TB")" = 200 && grep -q "Confirm unsubscribe" "$T/getb.body" &&
	grep -q "lang=\"ja\"" "$T/getb.body"'
check "HEAD 200, no body" -- \
	test "$(curl -s -I -o /dev/null -w '%{http_code} %{size_download}' "$BASE/u/$TA")" = "200 0"
check "GET and HEAD changed nothing" -- test "$(db_digest)" = "$before"

# Bad tokens: 400, the same generic page whatever is wrong, no change.
FORGED=$(printf '%s' "$TA" | sed 's/^\(.\{20\}\)./\1x/')
[ "$FORGED" = "$TA" ] && FORGED=$(printf '%s' "$TA" | sed 's/^\(.\{20\}\)./\1y/')
TRUNC=$(printf '%s' "$TA" | cut -c1-40)
n=0
for t in "$FORGED" "$TRUNC" "$TOTHER" "${TA}A" "x"; do
	n=$((n + 1))
	check "bad token #$n: POST one-click gets 400" -- \
		test "$(req bad$n -X POST -d List-Unsubscribe=One-Click "$BASE/u/$t")" = 400
	check "bad token #$n: GET gets 400" -- test "$(req badget$n "$BASE/u/$t")" = 400
done
check "400 page: Japanese 'invalid' page" -- grep -q "このリンクは使用できません" "$T/bad1.body"
check "  ... saying to paste the whole link into the address bar" -- \
	grep -q "続きの部分も含めてすべてコピーし、ブラウザーのアドレス欄に貼り付けて開いてください" "$T/bad1.body"
check "400 pages identical for forged, truncated and other-list tokens" -- \
	eval 'cmp -s "$T/bad1.body" "$T/bad2.body" && cmp -s "$T/bad1.body" "$T/bad3.body" &&
	cmp -s "$T/bad1.body" "$T/badget1.body"'
check "bad tokens changed nothing" -- test "$(db_digest)" = "$before"
# The path is /u/TOKEN and nothing else: a valid token with something
# before or after it (which unsub_check() would cut out of a pasted link)
# is refused like a bad one, not shown with a form posting to that path
# (fuzz_httpd: /u/../../etc/passwd/%2e%2e/TOKEN got 200).
n=0
for p in "a/b/../$TA" "%2e%2e/$TA" "x=$TA" "x%20$TA" "$TA/"; do
	n=$((n + 1))
	check "junk around the token #$n (/u/$p): GET 400" -- \
		test "$(req junk$n --path-as-is "$BASE/u/$p")" = 400
done
check "junk around the token: POST one-click 400" -- \
	test "$(req junkp --path-as-is -X POST -d List-Unsubscribe=One-Click "$BASE/u/a/../$TC")" = 400
check "  ... the generic 'invalid' page, no form" -- \
	eval 'grep -q "このリンクは使用できません" "$T/junk1.body" && ! grep -q "<form" "$T/junk1.body"'
check "junk around the token changed nothing" -- test "$(db_digest)" = "$before"

# POST without the one-click body: nothing changes, the button is offered.
check "POST without List-Unsubscribe=One-Click: 400 with the confirmation" -- \
	eval 'test "$(req nobody -X POST -d foo=bar "$BASE/u/$TC")" = 400 &&
	grep -q "配信停止の確認" "$T/nobody.body"'
check "POST with a JSON body: 400, nothing changes" -- \
	test "$(req json -X POST -H 'Content-Type: application/json' -d '{"List-Unsubscribe":"One-Click"}' "$BASE/u/$TC")" = 400
check "still nothing changed" -- test "$(db_digest)" = "$before"

# Size limits.
head -c 4000 /dev/zero | tr '\0' a > "$T/big"
check "oversized body refused (413)" -- \
	test "$(req big -X POST --data-binary @"$T/big" "$BASE/u/$TC")" = 413
check "oversized chunked body refused (413)" -- \
	test "$(req bigc -X POST -H 'Transfer-Encoding: chunked' --data-binary @"$T/big" "$BASE/u/$TC")" = 413
head -c 200000 /dev/zero | tr '\0' a > "$T/huge"
curl -s -o /dev/null -X POST -H 'Transfer-Encoding: chunked' --data-binary @"$T/huge" "$BASE/u/$TC"
check "a huge chunked body is cut off; the server goes on" -- test "$(req alive "$BASE/healthz")" = 200
check "URL over the cap refused (414)" -- \
	test "$(req long "$BASE/u/$(head -c 700 /dev/zero | tr '\0' A)")" = 414
check "limits changed nothing" -- test "$(db_digest)" = "$before"

# A cron run holding the write lock: 503 with the "failed" page and
# Retry-After once the busy timeout (300 ms here) is over; nothing changed.
(echo "BEGIN IMMEDIATE; UPDATE meta SET value = value;"; sleep 3; echo "COMMIT;") | sqlite3 "$T/samail.db" &
LOCKER=$!
sleep 0.5
check "database busy: 503" -- test "$(req busy -X POST -d List-Unsubscribe=One-Click "$BASE/u/$TC")" = 503
check "  ... 'try later' page with Retry-After" -- \
	eval 'grep -q "ただいま手続きができません" "$T/busy.body" && test -n "$(hdr busy Retry-After)"'
check "  ... GET still shows the confirmation meanwhile" -- test "$(req busyget "$BASE/u/$TC")" = 200
wait $LOCKER
check "  ... and c is still active" -- eval 'sam subscriber list --status active | grep -q "^c@example.jp"'


# Other paths and methods.
for p in / /u /u- /admin /healthz/x /U/$TA; do
	check "GET $p is 404" -- test "$(req nf "$BASE$p")" = 404
done
check "PUT /u/TOKEN is 405 with Allow" -- \
	eval 'test "$(req m1 -X PUT -d x "$BASE/u/$TA")" = 405 && hdr m1 Allow | grep -q POST'
check "DELETE /u/TOKEN is 405" -- test "$(req m2 -X DELETE "$BASE/u/$TA")" = 405
check "POST /healthz is 405" -- test "$(req m3 -X POST -d x "$BASE/healthz")" = 405

# One-click (x-www-form-urlencoded, as RFC 8058 clients send it).
check "one-click POST: 200" -- \
	test "$(req post -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
		--data-raw List-Unsubscribe=One-Click "$BASE/u/$TA")" = 200
check "one-click POST: 'unsubscribed' page" -- grep -q "配信を停止しました" "$T/post.body"
check "one-click POST: no-store" -- test "$(hdr post Cache-Control)" = no-store
check "declarer is unsubscribed" -- eval 'sam subscriber list --status unsubscribed | grep -q "^a@example.jp"'
check "their queued mail is cancelled" -- \
	test "$(sqlite3 "$T/samail.db" "SELECT state FROM outbox o JOIN subscriber s ON s.id = o.subscriber_id WHERE s.email = 'a@example.jp'")" = cancelled
check "suppression record kept" -- \
	test "$(sqlite3 "$T/samail.db" "SELECT count(*) FROM suppression WHERE reason = 'unsubscribed'")" = 1
check "second POST: 200 'already'" -- \
	eval 'test "$(req post2 -X POST -d List-Unsubscribe=One-Click "$BASE/u/$TA")" = 200 &&
	grep -q "配信はすでに停止されています" "$T/post2.body"'
# The link clicked again (after a mail client's one-click, say): the page
# says it is done instead of asking to stop what has stopped.
check "GET after unsubscribing: 200 'already', no button" -- \
	eval 'test "$(req get2 "$BASE/u/$TA")" = 200 &&
	grep -q "配信はすでに停止されています" "$T/get2.body" && ! grep -q "<form" "$T/get2.body" &&
	grep -q "あらためてお手続きいただく必要はありません" "$T/get2.body"'
# multipart/form-data, the other encoding RFC 8058 allows; English page.
check "one-click POST as multipart/form-data: 200, English page" -- \
	eval 'test "$(req postb -X POST -F List-Unsubscribe=One-Click "$BASE/u/$TB")" = 200 &&
	grep -q "You have been unsubscribed" "$T/postb.body"'
check "b is unsubscribed, c untouched" -- \
	eval 'sam subscriber list --status unsubscribed | grep -q "^b@example.jp" &&
	sam subscriber list --status active | grep -q "^c@example.jp"'
check "one log line per unsubscribe, with the declarer id and no address" -- \
	eval 'test "$(grep -c "unsubscribed (one-click POST)" "$T/serve.log")" = 2 &&
	grep -q "declarer 1 unsubscribed" "$T/serve.log" && ! grep -q "@" "$T/serve.log"'

# The next month: a and b are not queued, c and a new declarer are.
sam subscriber add --email d@example.jp --org "株式会社D" >/dev/null
expect_exit 0 "newsletter build (February)" -- sam --now=2026-03-03T00:00:00Z newsletter build --period 2026-02
check "February queues c and d, not a or b" -- \
	test "$(sqlite3 "$T/samail.db" "SELECT group_concat(o.rcpt, ' ') FROM outbox o JOIN campaign c ON c.id = o.campaign_id WHERE c.name = 'newsletter-2026-02' ORDER BY o.rcpt")" = "c@example.jp d@example.jp"

# A one-click body that arrives in two reads (a streaming proxy, a slow
# client): the value is put together, and c is unsubscribed.
check "one-click POST whose value is split across two reads: 200, c unsubscribed" -- $PY - "$PORT" "$TC" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(("POST /u/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
           "Content-Length: 26\r\nConnection: close\r\n\r\nList-Unsubscribe=One-" % sys.argv[2]).encode())
time.sleep(0.3)
s.sendall(b"Click")
out = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    out += d
sys.exit(0 if out.startswith(b"HTTP/1.1 200") and "配信を停止しました" in out.decode("utf-8", "replace") else 1)
PY
check "  ... c is unsubscribed" -- eval 'sam subscriber list --status unsubscribed | grep -q "^c@example.jp"'

# Rate limit: per client; behind a proxy on loopback the last
# X-Forwarded-For entry is the client.
codes=""
for i in $(seq 1 70); do
	codes="$codes $(curl -s -o /dev/null -w '%{http_code}' -H 'X-Forwarded-For: 203.0.113.1, 198.51.100.7' "$BASE/u/x")"
done
check "rate limit: the first 60 requests pass" -- \
	test "$(echo $codes | tr ' ' '\n' | head -60 | sort -u)" = 400
check "rate limit: then 429" -- test "$(echo $codes | tr ' ' '\n' | tail -1)" = 429
check "429 carries Retry-After" -- \
	eval 'test "$(req rl -H "X-Forwarded-For: 198.51.100.7" "$BASE/u/x")" = 429 && test -n "$(hdr rl Retry-After)"'
check "a forged first X-Forwarded-For entry does not escape the limit" -- \
	test "$(req rl2 -H 'X-Forwarded-For: 192.0.2.99, 198.51.100.7' "$BASE/u/x")" = 429
check "another client is not limited" -- \
	test "$(req rl3 -H 'X-Forwarded-For: 198.51.100.8' "$BASE/u/x")" = 400
check "the same client as an IPv4-mapped address (dual-stack proxy) is limited" -- \
	test "$(req rl5 -H 'X-Forwarded-For: ::ffff:198.51.100.7' "$BASE/u/x")" = 429
check "  ... another IPv4-mapped client is not" -- \
	test "$(req rl6 -H 'X-Forwarded-For: ::ffff:198.51.100.9' "$BASE/u/x")" = 400
# Proxies that append the client's port (Azure Application Gateway, IIS
# ARR): the address is the client; unparsed, every such client shared
# the proxy's own (loopback) bucket, and one busy client locked out all.
codes=""
for i in $(seq 1 61); do
	codes="$codes $(curl -s -o /dev/null -w '%{http_code}' -H "X-Forwarded-For: 192.0.2.50:$((40000 + i))" "$BASE/u/x")"
done
check "X-Forwarded-For with a port: the same client on other ports is limited" -- \
	test "$(echo $codes | tr ' ' '\n' | tail -1)" = 429
check "  ... another client behind that proxy is not" -- \
	test "$(req rl7 -H 'X-Forwarded-For: 192.0.2.51:40001' "$BASE/u/x")" = 400
check "  ... nor an IPv6 client as [addr]:port" -- \
	test "$(req rl8 -H 'X-Forwarded-For: [2001:db8::51]:443' "$BASE/u/x")" = 400
check "  ... while the limited one is, also without its port" -- \
	test "$(req rl9 -H 'X-Forwarded-For: 192.0.2.50' "$BASE/u/x")" = 429
check "/healthz is not limited" -- \
	test "$(req rl4 -H 'X-Forwarded-For: 198.51.100.7' "$BASE/healthz")" = 200

# A serve left running across an upgrade's 'samail init' (the schema is
# newer than it knows) cannot store a click: /healthz says so (503), once
# in the log, and ok again once the database is usable.
V=$(sqlite3 "$T/samail.db" 'PRAGMA user_version')
sqlite3 "$T/samail.db" "PRAGMA user_version = $((V + 1))"
check "/healthz 503 when the schema is newer than serve knows" -- \
	test "$(req h503 "$BASE/healthz")" = 503
check "  ... the body tells no detail, the log tells why, once" -- eval \
	'grep -q "^not ok" "$T/h503.body" && ! grep -q samail.db "$T/h503.body" &&
	test "$(req h503b "$BASE/healthz")" = 503 &&
	test "$(grep -c "health check failed:.*newer than this samail" "$T/serve.log")" = 1'
sqlite3 "$T/samail.db" "PRAGMA user_version = $V"
check "  ... and 200 ok again when it is usable" -- eval \
	'test "$(req h200 "$BASE/healthz")" = 200 && grep -q "usable again" "$T/serve.log"'

expect_exit 74 "a second serve on the same port: cannot listen" -- sam serve
check "  ... and says why" -- grep -q "Address already in use" "$T/err"
expect_exit 64 "a --listen that is not HOST:PORT" -- sam serve --listen nonsense
expect_exit 64 "a --listen port above 65535" -- sam serve --listen 127.0.0.1:99999
check "  ... and says why" -- grep -q "port from 0 to 65535" "$T/err"
sed "s/^listen = .*/listen = 127.0.0.1:70000/" "$T/samail.conf" > "$T/badlisten.conf"
expect_exit 78 "a configured listen port above 65535" -- "$SAMAIL" -c "$T/badlisten.conf" serve
check "  ... names the setting's value" -- grep -q "127.0.0.1:70000" "$T/err"

kill -TERM $SPID
i=0
while kill -0 $SPID 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
check "SIGTERM stops serve" -- eval '! kill -0 $SPID 2>/dev/null'
wait $SPID
check "  ... with exit 0" -- test $? = 0
check "  ... and a log line" -- grep -q "SIGTERM: stopping" "$T/serve.log"
finish
