#!/bin/sh
# One run at a time per database: a second run waits for the first or,
# after [run] lock_timeout, exits 75 naming the holder's PID and start
# time; nothing is sent twice either way.  A run killed with SIGKILL never
# blocks the next, and is shown as interrupted.  SIGTERM stops a run
# cleanly: the steps not begun are skipped and the run is recorded.
. "$(dirname "$0")/lib.sh"
$PY -c 'import aiosmtpd' 2>/dev/null || { echo "python3-aiosmtpd missing (make deps)"; exit 77; }
command -v sqlite3 >/dev/null || { echo "no sqlite3"; exit 77; }

# A feed server whose /stall never answers: a run holds the lock for the
# feed timeout (4 s) while it waits for it.
mkdir www
cp "$SRCDIR/feeds/samples/jvn.rdf" www/
$PY "$SRCDIR/tests/tools/httpd.py" --root www --port 0 --port-file port --log http.log &
httpd=$!
at_exit "kill $httpd 2>/dev/null"
i=0
while [ ! -s port ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -s port ] || { echo "httpd did not start"; exit 1; }
U=http://127.0.0.1:$(cat port)
start_smtpd relay
write_config <<CONF
[feeds]
timeout = 4
[run]
lock_timeout = 30
CONF
sed -i "s|^transport = .*|transport = smtp://127.0.0.1:$SMTPD_PORT|" samail.conf
sed 's/^lock_timeout = 30$/lock_timeout = 1/' samail.conf > impatient.conf
sam init >/dev/null 2>&1
sam feed add "$U/jvn.rdf" --name jvn >/dev/null
sam feed add "$U/stall" --name slow >/dev/null
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
	sam subscriber add --email "user$i@example.jp" --org "株式会社$i" --products windows >/dev/null
done
NOW=2026-11-01T00:00:00Z

# Wait until a run holds the lock (its PID is in the lock file).
wait_lock() {
	i=0
	while ! grep -q "^pid $1," samail.db.lock 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1; i=$((i + 1)); done
	grep -q "^pid $1," samail.db.lock
}

# 1. A second run that cannot wait long enough: 75, naming the holder.
"$SAMAIL" -c samail.conf --now $NOW run monthly > a.out 2> a.err &
a=$!
check "the first run holds the lock" -- wait_lock $a
expect_exit 75 "a second run gives up after lock_timeout: exit 75" -- \
	"$SAMAIL" -c impatient.conf --now $NOW run daily
check "  ... naming the holder's PID and start time" -- \
	grep -Eq "another samail is running on this database \(pid $a, started [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z, samail run monthly\); waited 1 s" err
check "  ... as a time-stamped error line (printed under -q too)" -- \
	grep -Eq "^[0-9T:Z-]+ samail\[[0-9]+\] error run daily: another samail" err
check "  ... and leaves the holder's line in the lock file" -- grep -q "^pid $a," samail.db.lock
wait $a
check "the first run ends normally" -- grep -q "^  send: 12 sent via smtp://" a.out
check "the refused run is recorded with exit 75" -- test \
	"$(sqlite3 samail.db "SELECT exit_code FROM run WHERE kind = 'daily'")" = 75

# 1b. What queues mail by hand waits for a run too: a skip between a
# monthly run's "build it" and its build would leave the month skipped
# and sent.  A dry run stores nothing and does not wait.  (The holder
# waits 10 s for the stalled feed.)
sed 's/^timeout = 4$/timeout = 10/' samail.conf > slow.conf
"$SAMAIL" -c slow.conf --now $NOW run daily > /dev/null 2>&1 &
a=$!
check "a run holds the lock" -- wait_lock $a
expect_exit 75 "newsletter skip meanwhile: exit 75" -- \
	"$SAMAIL" -c impatient.conf --now $NOW newsletter skip --period 2026-09
check "  ... naming the holder" -- \
	grep -q "another samail is running on this database (pid $a, started .*, samail run daily); waited 1 s" err
check "  ... and skipped nothing" -- test \
	"$(sqlite3 samail.db "SELECT count(*) FROM meta WHERE key LIKE 'skip %'")" = 0
expect_exit 75 "newsletter build meanwhile: exit 75" -- \
	"$SAMAIL" -c impatient.conf --now $NOW newsletter build --period 2026-09
expect_exit 75 "remind build meanwhile: exit 75" -- \
	"$SAMAIL" -c impatient.conf --now $NOW remind build
expect_exit 0 "newsletter build --dry-run does not wait" -- \
	"$SAMAIL" -c impatient.conf --now $NOW newsletter build --period 2026-09 --dry-run
check "  ... and the run held the lock all along" -- kill -0 $a
wait $a

# 2. Two runs at once, the second patient: it waits, then finds nothing
# left to do.  The server gets every message exactly once.
for i in 13 14 15; do
	sam subscriber add --email "user$i@example.jp" --org "株式会社$i" >/dev/null
done
"$SAMAIL" -c samail.conf --now 2026-12-01T00:00:00Z run monthly > b.out 2> b.err &
b=$!
wait_lock $b
start=$(date +%s)
expect_exit 69 "a second, patient run waits for the first (then exit 69: the stalled feed)" -- \
	sam --now 2026-12-01T00:00:00Z run daily
waited=$(( $(date +%s) - start ))
wait $b
check "  ... it waited for the lock (${waited} s)" -- test "$waited" -ge 3
check "  ... and said so when it began to, naming the holder" -- \
	grep -q " info run daily: waiting up to 30 s (\[run\] lock_timeout) for another samail on this database (pid $b, started [0-9T:Z-]*, samail run monthly)$" err
check "  ... and found the newsletter built already" -- \
	grep -q "^  newsletter: newsletter-2026-11 was built on" out
check "  ... and nothing to send" -- grep -q "^  send: nothing to send$" out
smtpd_messages relay > got.txt
check "the server got 12 + 15 messages" -- test "$(wc -l < got.txt)" = 27
check "  ... no Message-ID twice" -- test "$(cut -d' ' -f2 got.txt | sort -u | wc -l)" = 27
check "  ... one newsletter-2026-11 per declarer" -- test \
	"$(grep -c newsletter-2026-11 got.txt)" = 15

# 3. SIGKILL: the lock goes with the process; the next run starts at once.
"$SAMAIL" -c samail.conf --now 2026-12-02T00:00:00Z run daily > /dev/null 2>&1 &
c=$!
wait_lock $c
# ... and until the run has recorded its start (it does so right after
# taking the lock): killed before that, it never began.
i=0
while [ "$(sqlite3 samail.db "SELECT count(*) FROM run WHERE finished IS NULL")" != 1 ] && [ $i -lt 100 ]; do
	sleep 0.1; i=$((i + 1)); done
kill -9 $c
wait $c 2>/dev/null
start=$(date +%s)
expect_exit 69 "after a SIGKILLed run the next one runs (exit 69 for the stalled feed, not 75)" -- \
	"$SAMAIL" -c impatient.conf --now 2026-12-02T00:10:00Z run daily
check "  ... without waiting for the dead run" -- test $(( $(date +%s) - start )) -le 8
check "  ... and the killed run is recorded as interrupted" -- eval \
	'[ "$(sqlite3 samail.db "SELECT count(*) FROM run WHERE finished IS NULL AND summary LIKE '"'"'interrupted:%'"'"'")" = 1 ]'
expect_exit 0 "status" -- sam --now 2026-12-02T00:20:00Z status
check "  ... shows the last daily run, not the killed one" -- \
	grep -q "^  daily    2026-12-02 09:10 JST  exit 69 (relay or feed unavailable)" out

# 4. A run killed now leaves its row unfinished: status says so.
"$SAMAIL" -c samail.conf --now 2026-12-03T00:00:00Z run daily > /dev/null 2>&1 &
d=$!
wait_lock $d
expect_exit 0 "status while a run holds the lock" -- sam --now 2026-12-03T00:00:01Z status
check "  ... shows it running, with its PID" -- \
	grep -q "^  daily    2026-12-03 09:00 JST  running now (pid $d, started " out
kill -9 $d
wait $d 2>/dev/null
expect_exit 0 "status after it was killed" -- sam --now 2026-12-03T00:00:02Z status
check "  ... says it did not finish" -- grep -q "DID NOT FINISH" out

# 5. SIGTERM (systemd stopping the unit): the step in hand ends, the
# others are skipped (75), the run is recorded.  The exit status is the
# worst outcome: here the stalled feed's 69.
"$SAMAIL" -c samail.conf --now 2026-12-04T00:00:00Z run daily > e.out 2> e.err &
e=$!
wait_lock $e
kill -TERM $e
wait $e
rc=$?
check "SIGTERM: exit 69, the worst of the stalled feed's 69 and the skipped steps' 75 ($rc)" -- test "$rc" = 69
check "  ... the steps not begun say so" -- eval \
	'grep -q "^  remind: not run: stopped by a signal$" e.out &&
	 grep -q "^  send: not run: stopped by a signal$" e.out'
check "  ... and the run is recorded as finished with it" -- test \
	"$(sqlite3 samail.db "SELECT exit_code FROM run ORDER BY id DESC LIMIT 1")" = 69
expect_exit 0 "status after it" -- sam --now 2026-12-04T00:01:00Z status
check "  ... no run holds the lock" -- eval '! grep -q "holds the run lock" out'
# 6. The database reached through a symlink (a deploy that points
# /var/lib/samail/samail.db at a bigger disk): one database, one lock,
# whichever name a run is given.
ln -s samail.db alias.db
"$SAMAIL" -c samail.conf --db alias.db --now 2026-12-05T00:00:00Z run daily > f.out 2> f.err &
f=$!
i=0
while ! grep -q "^pid $f," samail.db.lock 2>/dev/null && [ $i -lt 100 ]; do
	sleep 0.1; i=$((i + 1)); done
check "a run through a symlink holds the lock beside the real file" -- grep -q "^pid $f," samail.db.lock
check "  ... and makes no second lock file for the other name" -- test ! -e alias.db.lock
expect_exit 75 "  ... a run through the real name waits for it, then exits 75" -- \
	"$SAMAIL" -c impatient.conf --now 2026-12-05T00:00:00Z run daily
check "  ... naming the holder" -- grep -q "another samail is running on this database (pid $f, started " err
expect_exit 0 "  ... status through the real name sees it running" -- sam --now 2026-12-05T00:00:01Z status
check "  ... with its PID" -- grep -q "^  a samail holds the run lock now: pid $f, started " out
expect_exit 0 "  ... status --json too" -- sam --json --now 2026-12-05T00:00:01Z status
check "  ... as a lock record with the holder's PID and start" -- $PY - "$T/out" "$f" <<'PY'
import json, re, sys
recs = json.load(open(sys.argv[1]))
locks = [r for r in recs if r["type"] == "lock"]
assert len(locks) == 1 and locks[0]["pid"] == int(sys.argv[2]), recs
assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", locks[0]["started"]), locks
PY
wait $f
# 7. A lock file this user cannot write (root restored a backup, or ran
# an old samail by hand): 73, and the line says whose it must be.
mkdir u
sqlite3 samail.db ".backup u/samail.db"
cp unsubscribe.key u/ 2>/dev/null
: > u/samail.db.lock
as=""
if [ "$(id -u)" = 0 ]; then
	# root writes anything: run as nobody, who owns all but the lock.
	chmod 755 "$T"
	chown -R nobody u
	chown root u/samail.db.lock
	chmod 644 u/samail.db.lock
	if command -v setpriv >/dev/null && setpriv --reuid=nobody \
	    --regid="$(id -g nobody)" --clear-groups test -r "$T/samail.conf"; then
		as="setpriv --reuid=nobody --regid=$(id -g nobody) --clear-groups"
		who=nobody
	else
		who=""
	fi
else
	chmod 444 u/samail.db.lock
	who=$(id -un)
fi
if [ -n "$who" ]; then
	expect_exit 73 "a lock file $who cannot write: exit 73" -- \
		$as "$SAMAIL" -c samail.conf --db "$T/u/samail.db" -q run daily
	check "  ... the line names the file, the user and the fix" -- \
		grep -q "cannot open the lock file '.*/u/samail.db.lock': Permission denied: user $who cannot write it; run samail as the user who owns the database, or, if $who is to run it: chown $who: '.*/u/samail.db.lock'" err
else
	ok "# SKIP a lock file nobody cannot write (no setpriv, or nobody cannot reach $T)"
fi
chmod 700 "$T"
# 8. A run that died, then an admin's 'samail send' holding the lock (a
# relay that never greets): status must not take the send for the run.
# The lock line names the command; the refused run's message does too.
"$SAMAIL" -c samail.conf --now 2026-12-06T00:00:00Z run daily > /dev/null 2>&1 &
g=$!
wait_lock $g
i=0
while [ "$(sqlite3 samail.db "SELECT count(*) FROM run WHERE finished IS NULL AND summary IS NULL")" != 1 ] && [ $i -lt 100 ]; do
	sleep 0.1; i=$((i + 1)); done
kill -9 $g
wait $g 2>/dev/null
sam subscriber add --email user16@example.jp --org 株式会社16 >/dev/null
sam --now 2027-01-01T00:00:00Z newsletter build --period 2026-12 >/dev/null 2>&1
sed "s|^transport = .*|transport = smtp://127.0.0.1:$(cat port)|" samail.conf > stall.conf
printf '[smtp]\ntimeout = 5\nconnect_timeout = 5\n' >> stall.conf
"$SAMAIL" -c stall.conf --now 2027-01-01T00:00:00Z send > h.out 2> h.err &
h=$!
wait_lock $h
check "an admin's send holds the lock, and its line says so" -- grep -q "^pid $h, started [0-9T:Z-]*, samail send$" samail.db.lock
expect_exit 75 "  ... a run meanwhile exits 75" -- \
	"$SAMAIL" -c impatient.conf --now 2027-01-01T00:00:00Z run monthly
check "  ... naming the send as the holder" -- \
	grep -q "another samail is running on this database (pid $h, started [0-9T:Z-]*, samail send); waited 1 s" err
expect_exit 0 "  ... status" -- sam --now 2027-01-01T00:00:01Z status
check "  ... shows the killed daily run as not finished, not as running" -- eval \
	'grep -q "^  daily    2026-12-06 09:00 JST  DID NOT FINISH" out && ! grep -q "running now" out'
check "  ... and who holds the lock" -- \
	grep -q "^  a samail holds the run lock now: pid $h, started .*, samail send$" out
expect_exit 0 "  ... status --json" -- sam --json --now 2027-01-01T00:00:01Z status
check "  ... the run died; the lock is the send's" -- $PY - "$T/out" "$h" <<'PY'
import json, sys
recs = json.load(open(sys.argv[1]))
daily = [r for r in recs if r["type"] == "run" and r["kind"] == "daily"]
assert daily[0]["state"] == "died", daily
lock = [r for r in recs if r["type"] == "lock"]
assert lock[0]["pid"] == int(sys.argv[2]) and lock[0]["command"] == "send", lock
PY
wait $h
# 9. The lock file deleted under a live run (an admin taking it for a
# stale one): a run that was waiting on the old file must not start
# when the old holder ends, beside a run that locked the new file.
sed 's/^timeout = 4$/timeout = 12/' samail.conf > long.conf
"$SAMAIL" -c samail.conf --now 2027-01-02T00:00:00Z run daily > /dev/null 2>&1 &
a=$!
wait_lock $a
"$SAMAIL" -c samail.conf --now 2027-01-02T00:00:00Z run daily > w.out 2> w.err &
w=$!
sleep 1
rm samail.db.lock
"$SAMAIL" -c long.conf --now 2027-01-02T00:00:00Z run daily > /dev/null 2>&1 &
b=$!
wait_lock $b
wait $a
sleep 2
check "a run that waited on a deleted lock file does not start beside the new holder" -- eval \
	'kill -0 $b && ! grep -q "started, pid $w" w.err'
wait $b
wait $w
check "  ... it runs once that holder is done" -- grep -q "started, pid $w" w.err
finish
