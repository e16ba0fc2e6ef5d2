#!/bin/sh
# Crash safety of `samail run`: kill -9 at random moments (fetch, remind,
# newsletter build, send) and run again, until a run finishes.  After each
# kill the database is whole, at most one message per connection is in
# flight, the newsletter is queued for all or none, status says the run
# died and the lock does not stop the next run.  At the end, at the
# server: every active declarer got the month's newsletter, one Message-ID
# each, duplicates at most one per kill per connection and identical; one
# campaign per period; reminders once.  Then a daily run catching up a
# missed monthly one, killed during its send with resend_in_flight = no:
# the next run says the messages in flight are held, not that they went.
. "$(dirname "$0")/lib.sh"
$PY -c 'import aiosmtpd' 2>/dev/null || { echo "python3-aiosmtpd missing (make deps)"; exit 77; }
command -v sqlite3 >/dev/null || { echo "no sqlite3"; exit 77; }
CONNS=4
N=800
start_smtpd sink
write_config <<CONF
[feeds]
seed = $SRCDIR/feeds/samples/feeds.conf
[smtp]
max_connections = $CONNS
CONF
sed -i "s|^transport = .*|transport = smtp://127.0.0.1:$SMTPD_PORT|" samail.conf
sam init >/dev/null 2>&1
$PY "$SRCDIR/tests/bench/gen-declarers.py" $N d.csv
sam subscriber import d.csv >/dev/null

# kill_runs KIND NOW MAX: kill -9 `run KIND` at random moments, up to MAX
# times, each run started again after the last kill; sets kills.
kills=0
seed=$$
kill_runs() {
	i=0
	while [ $i -lt "$3" ]; do
		"$SAMAIL" -c "$T/samail.conf" -q --now "$2" run "$1" >/dev/null 2>&1 &
		pid=$!
		seed=$(( (seed * 1103515245 + 12345) % 2147483648 ))
		# The first kills early (fetch, remind, build), then anywhere.
		if [ $i -lt 4 ]; then ms=$(( 5 + seed % 80 )); else ms=$(( 20 + seed % 400 )); fi
		sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
		kill -9 $pid 2>/dev/null
		wait $pid 2>/dev/null
		if [ $? -ne 137 ]; then
			echo "# run $1 finished before kill $((i + 1))"
			return
		fi
		i=$((i + 1)); kills=$((kills + 1))
		integ=$(q "PRAGMA integrity_check")
		inflight=$(q "SELECT count(*) FROM outbox WHERE state = 'inflight'")
		nl=$(q "SELECT count(*) FROM outbox o JOIN campaign c ON c.id = o.campaign_id WHERE c.kind = 'newsletter' AND c.name = 'newsletter-$4'")
		state=$(sam --json --now "$2" status 2>/dev/null | $PY -c '
import json, sys
runs = [r for r in json.load(sys.stdin) if r["type"] == "run" and r["kind"] == sys.argv[1]]
print(runs[0]["state"] if runs else "none")' "$1")
		echo "# kill $kills at $ms ms ($1): integrity $integ, $inflight in flight, $nl newsletters queued, status: $state"
		[ "$integ" = ok ] && [ "$inflight" -le $CONNS ] &&
		    { [ "$nl" = 0 ] || [ "$nl" = "$active" ]; } &&
		    { [ "$state" = died ] || [ "$state" = none ]; } ||
		    not_ok "kill $kills: integrity $integ, $inflight in flight, $nl of $active newsletters queued, status '$state'"
	done
}

active=$(q "SELECT count(*) FROM subscriber WHERE status = 'active'")
kill_runs monthly 2026-11-01T00:00:00Z 12 2026-10
expect_exit 0 "after $kills kills a monthly run finishes the job (the lock is free)" -- \
	sam --now 2026-11-01T00:00:00Z run monthly
check "  ... nothing left in flight or queued" -- test \
	"$(q "SELECT count(*) FROM outbox WHERE state IN ('inflight', 'queued')")" = 0
check "  ... one October campaign, one row per declarer" -- test \
	"$(q "SELECT count(*), sum((SELECT count(*) FROM outbox o WHERE o.campaign_id = c.id)) FROM campaign c WHERE kind = 'newsletter'")" = "1|$active"
check "  ... status: the last monthly run finished" -- eval \
	'sam --json --now 2026-11-01T01:00:00Z status | $PY -c "
import json, sys
assert [r[\"state\"] for r in json.load(sys.stdin) if r[\"type\"] == \"run\"] == [\"finished\"]"'
check "  ... the killed runs are recorded as interrupted" -- test \
	"$(q "SELECT count(*) FROM run WHERE finished IS NULL AND summary NOT LIKE 'interrupted:%'")" = 0

# December: no monthly run; the daily run of Dec 2 catches it up, killed
# during its send, with in-flight messages held for review.
sed -i '/^\[smtp\]/a resend_in_flight = no' samail.conf
"$SAMAIL" -c "$T/samail.conf" -q --now 2026-12-01T18:30:00Z run daily >/dev/null 2>&1 &
pid=$!
i=0
while [ "$(q "SELECT count(*) FROM outbox o JOIN campaign c ON c.id = o.campaign_id WHERE c.name = 'newsletter-2026-11' AND o.state = 'sent'")" -lt 20 ] &&
    kill -0 $pid 2>/dev/null && [ $i -lt 600 ]; do
	sleep 0.02; i=$((i + 1))
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
[ $? -eq 137 ] && kills=$((kills + 1))
held=$(q "SELECT count(*) FROM outbox WHERE state = 'inflight'")
echo "# killed the catch-up run during its send: $held in flight"
expect_exit 0 "the next daily run finishes" -- sam --now 2026-12-01T19:00:00Z run daily
check "  ... says the in-flight messages are held, not sent ($held)" -- eval \
	'[ "$held" = 0 ] || grep -q "^  send: .*; $held were in flight when an earlier run stopped: held for review (resend_in_flight = no), check the relay.s log, then .samail send --release-held.$" out'
check "  ... the run record says so too" -- eval \
	'[ "$held" = 0 ] || q "SELECT summary FROM run ORDER BY id DESC LIMIT 1" | grep -q "held for review"'
expect_exit 0 "release the held messages" -- sam --now 2026-12-01T19:10:00Z send --release-held
check "November's newsletter built once, by the daily run" -- test \
	"$(q "SELECT count(*) FROM campaign WHERE name = 'newsletter-2026-11'")" = 1
check "nothing left in flight, queued or held" -- test \
	"$(q "SELECT count(*) FROM outbox WHERE state IN ('inflight', 'queued', 'held')")" = 0

# At the server.
q "SELECT rcpt || ' ' || c.name FROM outbox o JOIN campaign c ON c.id = o.campaign_id WHERE o.state = 'sent'" > want.txt
$PY - "$T/sink.log" want.txt "$kills" "$CONNS" <<'PY' > verdict.txt
import base64, collections, email, email.policy, json, sys
log, want, kills, conns = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
got = collections.defaultdict(list)
camp = collections.defaultdict(set)
for line in open(log):
    r = json.loads(line)
    if r.get("event") != "msg":
        continue
    raw = base64.b64decode(r["data_b64"])
    mid = email.message_from_bytes(raw, policy=email.policy.default)["message-id"]
    got[(r["rcpt_tos"][0], mid)].append(raw)
    camp[(r["rcpt_tos"][0], mid.strip("<").split(".")[0])].add(mid)
want = collections.Counter(tuple(l.split()) for l in open(want))
dups = sum(len(v) - 1 for v in got.values())
differ = [k for k, v in got.items() if len(set(v)) != 1]
# One distinct Message-ID per message the store says it sent: a declarer
# with two different newsletters of a period would show here.
wrong = [k for k in set(want) | set(camp) if want[k] != len(camp.get(k, ()))]
print("sent in the store", sum(want.values()), "; received", len(got), "distinct;",
      "duplicates", dups, "of at most", kills * conns, "; differing", differ[:3],
      "; store and server disagree on", wrong[:3])
ok = not differ and not wrong and dups <= kills * conns
sys.exit(0 if ok else 1)
PY
rc=$?
sed 's/^/# /' verdict.txt
check "each message sent once, duplicates within one per kill per connection, identical" -- test $rc = 0
check "every active declarer got October's and November's newsletter" -- test \
	"$(grep -c ' newsletter-2026-1[01]$' want.txt)" = $((2 * active))
finish
