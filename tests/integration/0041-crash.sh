#!/bin/sh
# Crash safety: 2,000 queued messages, `samail send` killed with SIGKILL at
# ten random moments and restarted each time.  At the server: every message
# at least once; duplicates at most one per kill per connection, each with
# its original Message-ID and bytes.
. "$(dirname "$0")/lib.sh"
$PY -c 'import aiosmtpd' 2>/dev/null || { echo "python3-aiosmtpd missing (make deps)"; exit 77; }
CONNS=4
KILLS=10
start_smtpd sink
write_config <<CONF
[smtp]
max_connections = $CONNS
CONF
sed -i "s|^transport = .*|transport = smtp://127.0.0.1:$SMTPD_PORT|" samail.conf
sam init >/dev/null 2>&1
seed_advisories
$PY "$SRCDIR/tests/bench/gen-declarers.py" 2000 d.csv
sam subscriber import d.csv >/dev/null
sam --now 2026-11-01T00:00:00Z newsletter build --period 2026-10 >/dev/null
total=$(sqlite3 "$T/samail.db" "select count(*) from outbox")
check "2000 messages queued" -- test "$total" = 2000

kills=0
seed=$$
while [ $kills -lt $KILLS ]; do
	"$SAMAIL" -c "$T/samail.conf" -q --now 2026-11-01T00:05:00Z send >/dev/null 2>&1 &
	pid=$!
	# A random moment: 20 to 300 ms into the run.
	seed=$(( (seed * 1103515245 + 12345) % 2147483648 ))
	ms=$(( 20 + seed % 280 ))
	sleep "$(printf '0.%03d' $ms)"
	if kill -0 $pid 2>/dev/null; then
		kill -9 $pid
		wait $pid 2>/dev/null
		kills=$((kills + 1))
		inflight=$(sqlite3 "$T/samail.db" "select count(*) from outbox where state='inflight'")
		echo "# kill $kills at ${ms} ms: $inflight in flight, $(sqlite3 "$T/samail.db" "select count(*) from outbox where state='sent'") sent"
		check "kill $kills: at most one message in flight per connection ($inflight)" -- test "$inflight" -le $CONNS
	else
		wait $pid
		echo "# the run finished before the kill"
		break
	fi
done
expect_exit 0 "a last run finishes the job" -- sam --now 2026-11-01T00:06:00Z send
check "the store says all 2000 sent" -- test "$(sqlite3 "$T/samail.db" "select count(*) from outbox where state='sent'")" = 2000

$PY - "$T/sink.log" "$total" "$kills" "$CONNS" <<'PY' > verdict.txt
import base64, collections, email, email.policy, json, sys
log, total, kills, conns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
by_rcpt = collections.defaultdict(list)
for line in open(log):
    r = json.loads(line)
    if r.get("event") != "msg":
        continue
    raw = base64.b64decode(r["data_b64"])
    m = email.message_from_bytes(raw, policy=email.policy.default)
    by_rcpt[r["rcpt_tos"][0]].append((m["message-id"], raw))
dups = sum(len(v) - 1 for v in by_rcpt.values())
bad = [k for k, v in by_rcpt.items() if len({x[0] for x in v}) != 1 or len({x[1] for x in v}) != 1]
print("received", len(by_rcpt), "distinct of", total, "; duplicates", dups, "; limit", kills * conns)
print("differing duplicates:", bad[:5])
ok = len(by_rcpt) == total and dups <= kills * conns and not bad
sys.exit(0 if ok else 1)
PY
rc=$?
sed 's/^/# /' verdict.txt
check "every message arrived, duplicates within one per kill per connection, each identical to its original" -- test $rc = 0
finish
