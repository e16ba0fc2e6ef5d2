#!/bin/sh
# samail serve against hostile raw requests over a socket (what
# tests/fuzz/fuzz_httpd found, and what it cannot do: slow clients, many
# connections): huge headers and URLs, absurd or doubled Content-Length,
# bad chunks and percent-encoding, non-UTF-8 bytes, odd methods, path
# traversal, another list's token.  Each gets its status code, the server
# stays up with bounded memory, the database is untouched, and the log
# has short lines (no HTML pages in it).
. "$(dirname "$0")/lib.sh"
PORT=$(free_port)
write_config <<CONF
[unsubscribe]
base_url = http://127.0.0.1:$PORT/u/
listen = 127.0.0.1:$PORT
CONF
NOW=--now=2026-02-03T00:00:00Z
sam init >/dev/null 2>&1
sam subscriber add --email a@example.jp --org A >/dev/null
sam $NOW newsletter build --period 2026-01 >/dev/null
# Another list, the same key file and declarer id.
other_list
token_of() {
	"$SAMAIL" -c "$1" $NOW newsletter preview --period 2026-01 \
		--email a@example.jp | $PY -c '
import email, re, sys
m = email.message_from_bytes(sys.stdin.buffer.read())
v = re.sub(r"\s+", "", m["List-Unsubscribe"])
print(re.search(r"<https?://[^>]*/u/([^>]*)>", v).group(1))'
}
TA=$(token_of "$T/samail.conf")
TO=$(token_of "$T/other.conf")
check "tokens for both lists" -- test ${#TA} = 44 -a ${#TO} = 44

"$SAMAIL" -c "$T/samail.conf" serve >"$T/serve.out" 2>"$T/serve.log" &
SPID=$!
at_exit "kill $SPID 2>/dev/null"
i=0
until curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
before=$(db_digest)

# Each case: name, expected status ("closed": no answer), request bytes.
$PY - "$PORT" "$TA" "$TO" "$SPID" > "$T/probe.out" <<'PY'
import select, socket, sys, time
port, ta, to, pid = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3].encode(), int(sys.argv[4])
form = b"Content-Type: application/x-www-form-urlencoded\r\n"
body = b"List-Unsubscribe=One-Click"
def rss():
    for l in open("/proc/%d/status" % pid):
        if l.startswith("VmRSS"):
            return int(l.split()[1])
def raw(data):
    s = socket.create_connection(("127.0.0.1", port))
    try:
        s.sendall(data)
        # Our end is closed once the answer starts (or after 0.3 s
        # without one): libmicrohttpd (epoll) sometimes misses an end of
        # input that came with the request and waits for its idle
        # timeout (15 s) instead.
        select.select([s], [], [], 0.3)
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    s.settimeout(20)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except OSError:
        pass
    s.close()
    return out.split(b"\r\n")[0].split(b" ")[1].decode() if out.startswith(b"HTTP/1.") else "closed"
post = lambda path, hdrs=b"": b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n" + form + hdrs
cases = [
 ("huge header", "431", b"GET /u/x HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 100000 + b"\r\n\r\n"),
 ("3000 headers", "431", b"GET /u/x HTTP/1.1\r\nHost: x\r\n" + b"X-B: b\r\n" * 3000 + b"\r\n"),
 ("huge URL", "414", b"GET /u/" + b"A" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("Content-Length 10^23", "413", post(b"/u/" + ta, b"Content-Length: 99999999999999999999999\r\n\r\n") + body),
 ("Content-Length 2^64", "413", post(b"/u/" + ta, b"Content-Length: 18446744073709551616\r\n\r\n") + body),
 ("Content-Length -1", "400", post(b"/u/" + ta, b"Content-Length: -1\r\n\r\n") + body),
 ("Content-Length twice", "400", post(b"/u/" + ta, b"Content-Length: 26\r\nContent-Length: 5\r\n\r\n") + body),
 ("Content-Length twice, equal", "400", post(b"/u/" + ta, b"Content-Length: 26\r\nContent-Length: 26\r\n\r\n") + body),
 ("Content-Length and chunked", "400", post(b"/u/" + ta, b"Content-Length: 26\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\n") + body + b"\r\n0\r\n\r\n"),
 ("body shorter than its length", "closed", post(b"/u/" + ta, b"Content-Length: 100\r\n\r\n") + body),
 ("bad chunk size", "400", post(b"/u/" + ta, b"Transfer-Encoding: chunked\r\n\r\nzz\r\n") + body + b"\r\n0\r\n\r\n"),
 ("bad percent-encoding", "400", b"GET /u/%zz%c3%28% HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("non-UTF-8 path", "400", b"GET /u/\xff\xfe\xc0\xaf HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("non-UTF-8 headers", "400", b"GET /u/x HTTP/1.1\r\nHost: \xff\xfe\r\nX-Forwarded-For: \xff\r\n\r\n"),
 ("HEAD", "200", b"HEAD /u/" + ta + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("PUT", "405", b"PUT /u/" + ta + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 26\r\n\r\n" + body),
 ("OPTIONS", "405", b"OPTIONS /u/" + ta + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("OPTIONS *", "404", b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("TRACE", "405", b"TRACE /u/" + ta + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("unknown method", "405", b"BREW /u/" + ta + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("traversal under /u/", "400", b"GET /u/../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("traversal from /", "404", b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("traversal to a token", "400", post(b"/u/%2e%2e/" + ta, b"Content-Length: 26\r\n\r\n") + body),
 ("another list's token", "400", post(b"/u/" + to, b"Content-Length: 26\r\n\r\n") + body),
 ("HTTP/0.9", "400", b"GET /u/x\r\n\r\n"),
 ("HTTP/2 preface", "505", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
 ("HTTP/1.1 without Host", "400", b"GET /u/x HTTP/1.1\r\n\r\n"),
 ("absolute URI elsewhere", "404", b"GET http://evil.example/u/" + ta + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
 ("binary junk", "400", bytes(range(256)) * 8),
]
r0 = rss()
for name, want, data in cases:
    got = raw(data)
    print("%s %s: %s (want %s)" % ("ok" if got == want else "BAD", name, got, want))
# Slow clients: 40 connections trickling headers; the server still answers.
slow = []
for i in range(40):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /u/x HTTP/1.1\r\nHost: x\r\n")
    slow.append(s)
for k in range(3):
    for s in slow:
        try:
            s.sendall(b"X-Slow: 1\r\n")
        except OSError:
            pass
    time.sleep(0.3)
got = raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
print("%s healthz among slow clients: %s" % ("ok" if got == "200" else "BAD", got))
for s in slow:
    s.close()
# The barrage 10 times more: memory does not grow with it.
r1 = rss()
for i in range(10):
    for name, want, data in cases[:14]:
        raw(data)
r2 = rss()
print("%s memory: %d kB after one round, %d kB after 10 more" % ("ok" if r2 - r1 < 20000 else "BAD", r1, r2))
PY
sed 's/^/# /' "$T/probe.out"
check "every hostile request got its status (or the connection closed)" -- \
	eval '! grep -q "^BAD" "$T/probe.out" && test "$(grep -c "^ok" "$T/probe.out")" = 31'
check "the server is still up" -- eval 'kill -0 $SPID && curl -s "http://127.0.0.1:$PORT/healthz" | grep -q ok'
check "nothing written to the database" -- test "$(db_digest)" = "$before"
check "the log has no HTML page in it" -- eval '! grep -qi "<html" "$T/serve.log"'
check "  ... and short lines" -- eval 'test "$(awk "length > 300" "$T/serve.log" | wc -l)" = 0'
check "  ... and says what libmicrohttpd refused" -- \
	grep -q "HTTP response code is 431)" "$T/serve.log"
kill -TERM $SPID
wait $SPID
check "SIGTERM: exit 0" -- test $? = 0
finish
