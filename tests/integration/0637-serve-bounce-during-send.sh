#!/bin/sh
# `samail serve` and `samail bounce` while a long send runs (1200
# messages, 6 connections, held to 150 a second): one-click POSTs and GET
# pages from many clients at once, and hard, soft and policy bounces piped
# in one after the other.  Every request is answered (no 5xx, no dropped
# connection), every accepted unsubscribe and bounce is stored, an address
# stopped mid-send gets no message begun after that, nothing goes twice,
# the send never fails "busy", and a checkpoint reaches the end of the WAL.
# Then the database write-locked for longer than serve's busy timeout:
# clicks get 503 with Retry-After after that timeout, and meanwhile the
# pages and /healthz still answer at once (a click waiting for the
# database held up the other requests, and connections that waited past
# the 15 s idle timeout were closed unanswered); bounces exit 75.
. "$(dirname "$0")/lib.sh"
$PY -c 'import aiosmtpd' 2>/dev/null || { echo "python3-aiosmtpd missing (make deps)"; exit 77; }
command -v curl >/dev/null || { echo "curl missing"; exit 77; }
start_smtpd main
PORT=$(free_port)
write_config <<CONF
[smtp]
max_connections = 6
rate_per_minute = 9000
[unsubscribe]
base_url = http://127.0.0.1:$PORT/u/
listen = 127.0.0.1:$PORT
CONF
use_relays "smtp://127.0.0.1:$SMTPD_PORT"
N=1200
sam init >/dev/null 2>&1
seed_advisories
{ echo email,org; i=1; while [ $i -le $N ]; do echo "d$i@example.jp,株式会社$i"; i=$((i + 1)); done; } > "$T/d.csv"
sam subscriber import "$T/d.csv" >/dev/null
sam --now 2026-11-01T00:00:00Z newsletter build --period 2026-10 >/dev/null 2>&1
check "$N messages queued" -- test "$(count "state = 'queued'")" = $N
INST=$(q "SELECT value FROM meta WHERE key = 'instance'")
LID=security-action.example.jp

# Clicks: POST for every 7th declarer (50 of them twice), GET for every
# 5th; bounces: hard for every 11th, two soft for every 29th, a policy
# one for every 31st, in a shuffled order, with this database's tagged
# Message-IDs.
$PY - "$N" "$DATA/bounces" "$T/b" "$T/unsubscribe.key" "$INST" > "$T/jobs" <<'PY'
import base64, hashlib, hmac, os, random, re, struct, sys
n, src, out, instance = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[5]
key = open(sys.argv[4], "rb").read().rstrip(b"\r\n")
random.seed(637)
posts = [i for i in range(1, n + 1) if i % 7 == 0]
jobs = [("POST", i) for i in posts + posts[:50]] + [("GET", i) for i in range(5, n + 1, 5)]
random.shuffle(jobs)
for m, i in jobs:
    print(m, i)
def mid(i):	# as tests/tools/tag-mids.py writes it
    raw = bytes([1]) + struct.pack(">q", i)
    mac = hmac.new(key, b"samail-unsub\0" + raw + b"mid:newsletter-2026-10:", hashlib.sha256).digest()[:24]
    return "newsletter-2026-10.%d.%s.%s@example.jp" % (i, base64.urlsafe_b64encode(raw + mac).decode()[12:24], instance)
os.mkdir(out)
fix = {"hard": "postfix-hard.eml", "soft": "postfix-mailbox-full.eml", "policy": "postfix-blocklist.eml"}
todo = [("hard", i) for i in range(11, n + 1, 11)] + [("soft", i) for i in range(29, n + 1, 29)] * 2 + \
    [("policy", i) for i in range(31, n + 1, 31)]
random.shuffle(todo)
for k, (kind, i) in enumerate(todo):
    d = open(os.path.join(src, fix[kind]), "rb").read().decode("latin-1")
    d = re.sub(r"<(newsletter|reminder)-[^>]*\.5a17c0de@example\.jp>", "<%s>" % mid(i), d)
    for a in ("taro@example.co.jp", "rokuro@example.jp", "other@example.jp"):
        d = d.replace(a, "d%d@example.jp" % i)
    open(os.path.join(out, "%04d.%s.%d.eml" % (k, kind, i)), "wb").write(d.encode("latin-1"))
PY

"$SAMAIL" -c "$T/samail.conf" serve >"$T/serve.out" 2>"$T/serve.log" &
SPID=$!
at_exit "kill $SPID 2>/dev/null"
i=0
until curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done

sam --now 2026-11-01T00:01:00Z send >"$T/send.out" 2>"$T/send.err" &
SEND=$!
sleep 0.5
$PY "$SRCDIR/tests/tools/clicks.py" --threads 8 --pace 0.05 $PORT "$T/unsubscribe.key" $LID "$T/http" < "$T/jobs" &
CLICKS=$!
( for f in "$T"/b/*.eml; do
	t0=$(date +%s.%N)
	"$SAMAIL" -c "$T/samail.conf" --now 2026-11-01T00:05:00Z bounce "$f" >/dev/null 2>>"$T/bounce.err"
	echo "$(basename "$f") $? $t0 $(date +%s.%N)"
  done > "$T/bounces" ) &
BOUNCES=$!
( while kill -0 $SEND 2>/dev/null; do
	sqlite3 -cmd ".timeout 5000" "$T/samail.db" "PRAGMA wal_checkpoint(PASSIVE)"; sleep 0.3
  done > "$T/ckpt" ) &
CKPT=$!
wait $CLICKS
wait $BOUNCES
wait $SEND
rc=$?
wait $CKPT
check "the send finished (exit $rc): $(tr '\n' ' ' < "$T/send.err" | cut -c1-300)" -- test $rc -eq 0
check "  ... and waited for the writers rather than saying 'busy'" -- eval '! grep -qi busy "$T/send.err"'
# The clicks and bounces overlapped the send.
check "clicks and bounces ran while messages were being sent" -- $PY - "$T" <<'PY'
import json, sys
T = sys.argv[1]
msgs = [json.loads(l)["t"] for l in open(T + "/main.log") if '"msg"' in l]
clicks = [json.loads(l)["t1"] for l in open(T + "/http")]
bounces = [float(l.split()[3]) for l in open(T + "/bounces")]
lo, hi = min(msgs), max(msgs)
inside = lambda ts: sum(lo <= t <= hi for t in ts)
print("# %d messages over %.1f s; %d of %d clicks, %d of %d bounces within" %
      (len(msgs), hi - lo, inside(clicks), len(clicks), inside(bounces), len(bounces)))
sys.exit(0 if inside(clicks) > len(clicks) / 2 and inside(bounces) > 20 else 1)
PY
# A GET shows the confirmation, or "already" for a declarer whose POST
# (ids divisible by 7) came first.
check "every click answered: POST 200 done/already, GET 200 confirmation (or already)" -- $PY - "$T" <<'PY'
import collections, json, sys
rs = [json.loads(l) for l in open(sys.argv[1] + "/http")]
c = collections.Counter((r["m"], r["code"], r.get("page")) for r in rs)
print("# " + ", ".join("%s %s %s: %d" % (k + (v,)) for k, v in sorted(c.items(), key=str)))
ok = lambda r: ("done", "already") if r["m"] == "POST" else \
    ("confirm", "already") if r["id"] % 7 == 0 else ("confirm",)
bad = [r for r in rs if not (r["code"] == 200 and r["page"] in ok(r))]
for r in bad[:5]:
    print("#   ", r)
sys.exit(1 if bad or len(rs) != 171 + 50 + 240 else 0)
PY
check "every bounce exit 0 (none kept back for busy)" -- \
	test "$(awk '$2 != 0' "$T/bounces" | wc -l) $(wc -l < "$T/bounces")" = "0 $((109 + 41 * 2 + 38))"
check "every accepted click stored: the 171 POSTed are unsubscribed" -- \
	test "$(q "SELECT count(*) FROM subscriber WHERE status = 'unsubscribed' AND id % 7 = 0") $(q "SELECT count(*) FROM subscriber WHERE status = 'unsubscribed'")" = "171 171"
check "every bounce stored: 109 hard, 82 soft, 38 policy rows" -- \
	test "$(q "SELECT group_concat(kind || ':' || n) FROM (SELECT kind, count(*) n FROM bounce GROUP BY kind ORDER BY kind)")" = "hard:109,policy:38,soft:82"
check "hard-bounced ones marked bounced (unsubscribed ones keep that)" -- \
	test "$(q "SELECT count(*) FROM subscriber WHERE status = 'bounced'")" = $((109 - 15))
smtpd_messages main > "$T/msgs"
check "nothing sent twice ($(wc -l < "$T/msgs") messages)" -- \
	test "$(cut -d' ' -f1 "$T/msgs" | sort | uniq -d | wc -l)" = 0
check "every message sent or cancelled; the sent ones are the server's" -- \
	test "$(count "state = 'sent'") $(count "state = 'cancelled'") $(wc -l < "$T/msgs")" = "$(wc -l < "$T/msgs") $((N - $(wc -l < "$T/msgs"))) $(wc -l < "$T/msgs")"
check "no message begun after its address was unsubscribed or hard-bounced" -- $PY - "$T" <<'PY'
import json, sys
T = sys.argv[1]
got = {}
for l in open(T + "/main.log"):
    r = json.loads(l)
    if r.get("event") == "msg":
        got[r["rcpt_tos"][0]] = r["t"]
stop = {}
for l in open(T + "/http"):
    r = json.loads(l)
    if r["m"] == "POST" and r.get("page") == "done":
        stop[r["id"]] = r["t1"]
for l in open(T + "/bounces"):
    f, rc, t0, t1 = l.split()
    _, kind, sid, _ = f.split(".")
    if kind == "hard" and rc == "0":
        stop[int(sid)] = min(stop.get(int(sid), 1e18), float(t1))
# One message per connection may be in flight (claimed before): it ends
# within a moment; none may start after.
late = [(i, got["d%d@example.jp" % i] - t) for i, t in stop.items()
        if got.get("d%d@example.jp" % i, 0) > t + 1.0]
print("# %d stopped mid-send; %d got their message before, %d never, late: %s" % (
    len(stop), sum(("d%d@example.jp" % i) in got for i in stop),
    sum(("d%d@example.jp" % i) not in got for i in stop), late[:5]))
sys.exit(1 if late else 0)
PY
check "a checkpoint reached the end of the WAL during the send: $(sort -u "$T/ckpt" | tr '\n' ' ' | cut -c1-120)" -- \
	awk -F'|' '$2 == $3 { ok = 1 } END { exit !ok }' "$T/ckpt"
check "serve logged no failure" -- eval '! grep -e warning -e error "$T/serve.log"'

# The database write-locked for 4 s, beyond a busy timeout of 1 s.
SPORT=$(free_port)
sed -e "s|^listen = .*|listen = 127.0.0.1:$SPORT|" -e "/^\[database\]/a busy_timeout = 1000" \
	"$T/samail.conf" > "$T/short.conf"
"$SAMAIL" -c "$T/short.conf" serve >/dev/null 2>"$T/serve2.log" &
SPID2=$!
at_exit "kill $SPID2 2>/dev/null"
i=0
until curl -s -o /dev/null "http://127.0.0.1:$SPORT/healthz" || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
before=$(db_digest)
(echo "BEGIN IMMEDIATE; UPDATE meta SET value = value;"; sleep 4; echo "COMMIT;") | sqlite3 "$T/samail.db" &
LOCKER=$!
sleep 0.3
# 16 clicks on declarers still active, all at once.
for i in 1 2 3 4 6 8 9 12 16 18 19 22 23 24 26 27; do echo "POST $i"; done > "$T/jobs2"
$PY "$SRCDIR/tests/tools/clicks.py" --threads 16 $SPORT "$T/unsubscribe.key" $LID "$T/http2" < "$T/jobs2" &
CLICKS=$!
"$SAMAIL" -c "$T/short.conf" bounce "$T/b/$(ls "$T/b" | grep '\.hard\.' | head -1)" >/dev/null 2>"$T/bounce2.err" &
BOUNCE=$!
sleep 0.5
for i in 1 2 3; do echo "GET $i"; done | \
	$PY "$SRCDIR/tests/tools/clicks.py" --threads 3 $SPORT "$T/unsubscribe.key" $LID "$T/http3"
hz=$(curl -s -m 10 -o /dev/null -w '%{http_code} %{time_total}' "http://127.0.0.1:$SPORT/healthz")
wait $BOUNCE
brc=$?
wait $CLICKS
wait $LOCKER
check "database locked: /healthz answers at once ($hz)" -- \
	eval 'test "${hz% *}" = 200 && awk "BEGIN { exit !(${hz#* } < 0.5) }"'
check "  ... the confirmation pages too" -- $PY - "$T/http3" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
print("# " + ", ".join("%s %.2f s" % (r["code"], r["t1"] - r["t0"]) for r in rs))
sys.exit(0 if len(rs) == 3 and all(r["code"] == 200 and r["page"] == "confirm" and r["t1"] - r["t0"] < 0.5 for r in rs) else 1)
PY
check "  ... each click: 503 with Retry-After, the 'try later' page, after about the busy timeout" -- $PY - "$T/http2" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
print("# " + ", ".join("%s %s %.1f s" % (r["code"], r.get("page"), r["t1"] - r["t0"]) for r in rs[:16]))
sys.exit(0 if len(rs) == 16 and all(r["code"] == 503 and r["page"] == "failed" and r["retry"]
          and 0.9 < r["t1"] - r["t0"] < 2.5 for r in rs) else 1)
PY
check "  ... a bounce meanwhile: exit 75, kept for the MTA to retry (exit $brc)" -- \
	eval 'test $brc = 75 && grep -q "is busy" "$T/bounce2.err"'
check "  ... and nothing changed" -- test "$(db_digest)" = "$before"
finish
