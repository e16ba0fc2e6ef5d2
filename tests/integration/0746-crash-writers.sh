#!/bin/sh
# Crash safety of the commands that write, other than send and run (0041,
# 0745): subscriber import, feed fetch, newsletter build, remind build,
# bounce, unsubscribe, subscriber remove --purge and init, each killed with
# SIGKILL at random moments.  After each kill the database is whole
# (integrity and foreign keys), status works and the lock is free; the
# re-run exits 0 and leaves exactly what an uninterrupted run leaves (a
# digest of every table but the run log).  Then, with strace: init killed
# while it writes the unsubscribe key leaves no copy of the key behind,
# and an import whose commit finds the disk full names the file and says
# that nothing of it was stored.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || { echo "no sqlite3"; exit 77; }
NOW=2026-11-01T00:00:00Z
write_config <<CONF
[bounce]
soft_limit = 3
CONF
sam init >/dev/null 2>&1
# A fixed instance id, so that every copy builds the same Message-IDs.
q "INSERT OR REPLACE INTO meta (key, value) VALUES ('instance', '5a17c0de')"
$PY "$SRCDIR/tests/bench/gen-declarers.py" 6000 d.csv
$PY "$SRCDIR/tests/bench/gen-advisories.py" 3000 2026-10 "$T/oct.rdf"
$PY "$SRCDIR/tests/bench/gen-advisories.py" 3000 2026-11 "$T/nov.rdf"
cp samail.db empty.db

# The digest of a store: every table but the run log and the rowid
# counters (an upsert that finds its row still takes a number).
digest() {
	sqlite3 "$1" "SELECT name FROM sqlite_master WHERE type = 'table' AND
	    name NOT IN ('run', 'sqlite_sequence') ORDER BY name" |
	while read -r t; do
		echo "== $t"
		sqlite3 "$1" "SELECT * FROM \"$t\" ORDER BY 1"
	done | sha256sum | cut -c1-16
}
ms_now() { date +%s%N | cut -c1-13; }
seed=$$
kills=0

# crash BASE NAME ARGS...: in a copy of store BASE, run `samail ARGS` once
# whole (twice: the digests after one and two runs), then kill it at a
# random moment of its run time, check the store, run it again and
# compare.
crash() {
	base=$1 name=$2; shift 2
	rm -f "$T"/samail.db*; cp "$base" samail.db
	t0=$(ms_now); sam "$@" >/dev/null 2>&1; t1=$(ms_now)
	one=$(digest samail.db); sam "$@" >/dev/null 2>&1; two=$(digest samail.db)
	rm -f "$T"/samail.db*; cp "$base" samail.db
	seed=$(( (seed * 1103515245 + 12345) % 2147483648 ))
	ms=$(( 1 + seed % (t1 - t0 + 1) ))
	"$SAMAIL" -c "$T/samail.conf" "$@" >/dev/null 2>&1 &
	pid=$!
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	[ $? -eq 137 ] && kills=$((kills + 1))
	integ=$(sqlite3 samail.db "PRAGMA integrity_check; PRAGMA foreign_key_check")
	lock=free
	[ ! -e samail.db.lock ] || ! command -v flock >/dev/null ||
	    flock -n samail.db.lock true || lock=held
	sam --now $NOW status >/dev/null 2>"$T/status.err"; st=$?
	sam "$@" >"$T/out" 2>"$T/err"; rc=$?
	got=$(digest samail.db)
	echo "# $name: killed at $ms of $((t1 - t0)) ms: integrity '$integ', lock $lock, status exit $st, re-run exit $rc"
	if [ "$integ" = ok ] && [ $lock = free ] && [ $st = 0 ] && [ $rc = 0 ] &&
	    { [ "$got" = "$one" ] || [ "$got" = "$two" ]; }; then
		ok "$name killed at $ms ms: store whole, the re-run finishes the job"
	else
		not_ok "$name killed at $ms ms: digest $got, want $one or $two"
		sed 's/^/#   /' "$T/status.err" "$T/err" | head -5
	fi
}

for i in 1 2 3; do crash empty.db import --now $NOW subscriber import d.csv; done
sam --now $NOW subscriber import d.csv >/dev/null
sam feed add "file://$T/oct.rdf" --name oct >/dev/null
cp samail.db subs.db
for i in 1 2; do crash subs.db "feed fetch" --now $NOW feed fetch; done
sam --now $NOW feed fetch >/dev/null
# The feed changes: November's items replace October's.
cp "$T/nov.rdf" "$T/oct.rdf"
cp samail.db fetched.db
for i in 1 2; do crash fetched.db "feed fetch (changed)" --now $NOW feed fetch; done
for i in 1 2; do crash fetched.db "newsletter build" --now $NOW newsletter build --period 2026-10; done
for i in 1 2 3; do crash fetched.db "remind build" --now $NOW remind build; done

# The short ones, on a store with mail sent.
sam --now $NOW newsletter build --period 2026-10 >/dev/null
sam --now $NOW send --limit 50 >/dev/null 2>&1
cp samail.db sent.db
mid=$(q "SELECT o.id FROM outbox o WHERE o.state = 'sent' LIMIT 1")
token=$(q "SELECT json_extract(data, '$.token') FROM outbox WHERE id = $mid")
email=$(q "SELECT rcpt FROM outbox WHERE id = $mid")
msgid=$(grep -h -m1 '^Message-I[Dd]:' $(grep -l "^To: .*$email" "$T"/mail/new/* | head -1) | sed 's/^[^<]*<\(.*\)>.*/\1/')
cat > dsn.eml <<EOF
From: MAILER-DAEMON@example.jp
To: bounces@example.jp
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b"

--b
Content-Type: text/plain

The mail could not be delivered.
--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.jp

Final-Recipient: rfc822; $email
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 user unknown

--b
Content-Type: text/rfc822-headers

Message-ID: <$msgid>
To: $email

--b--
EOF
crash sent.db bounce --now $NOW bounce dsn.eml
check "  ... the DSN is a hard bounce for $email" -- test "$(q "SELECT status FROM subscriber WHERE email = '$email'")" = bounced
crash sent.db unsubscribe --now $NOW unsubscribe "$token"
crash sent.db "remove --purge" --now $NOW subscriber remove "$email" --purge
echo "# $kills kills"

# What an outsider does once is on disk before we answer (a power cut
# must not undo it): an unsubscribe, a bounce the MTA deletes once we exit
# 0.  With another connection open (a cron send running), closing does
# not checkpoint, so only synchronous=FULL syncs the WAL at the commit.
synced() {
	rm -f "$T"/samail.db*; cp sent.db samail.db
	# The other connection writes first: a new WAL's header is synced
	# whatever the setting, the commit's frames only by FULL.
	{ echo "INSERT INTO meta (key, value) VALUES ('t', 't'); DELETE FROM meta WHERE key = 't';"
	  sleep 3; } | sqlite3 samail.db >/dev/null &
	reader=$!
	sleep 0.5
	# (LeakSanitizer cannot run under ptrace.)
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
	    strace -f -qq -y -o "$T/sync.trace" -e trace=fsync,fdatasync \
		"$SAMAIL" -c "$T/samail.conf" --now $NOW "$@" >/dev/null 2>&1
	rc=$?
	wait $reader
	[ $rc = 0 ] && grep -q "samail\.db-wal>" "$T/sync.trace"
}
if command -v strace >/dev/null && strace -f -qq -o /dev/null true 2>/dev/null; then
	check "unsubscribe: the WAL synced before exit 0, another connection open" -- synced unsubscribe "$token"
	check "bounce: the WAL synced before exit 0, another connection open" -- synced bounce dsn.eml
else
	echo "# no strace (or no ptrace here): the sync checks skipped"
fi

# init of a new database, killed at random moments.
rm -f "$T"/samail.db* "$T"/unsubscribe.key*
t0=$(ms_now); sam --now $NOW init >/dev/null 2>&1; t1=$(ms_now)
fresh=$(digest samail.db)
for i in 1 2 3; do
	rm -f "$T"/samail.db* "$T"/unsubscribe.key*
	seed=$(( (seed * 1103515245 + 12345) % 2147483648 ))
	ms=$(( 1 + seed % (t1 - t0 + 1) ))
	"$SAMAIL" -c "$T/samail.conf" --now $NOW init >/dev/null 2>&1 &
	pid=$!
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
	expect_exit 0 "init killed at $ms ms: the next init finishes" -- sam --now $NOW init
	check "  ... the same store as an init not killed, and a key" -- eval \
	    '[ "$(digest samail.db)" = "$fresh" ] && [ "$(wc -c < unsubscribe.key)" = 65 ]'
done

if ! command -v strace >/dev/null || ! strace -f -qq -o /dev/null true 2>/dev/null; then
	echo "# no strace (or no ptrace here): the key and commit checks skipped"
	finish
fi
# LeakSanitizer cannot run under ptrace: an ASan build checks no leaks here.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
export ASAN_OPTIONS
# init killed after the key was written, before it has its name: nothing
# of it is left, neither empty nor a copy under another name.
rm -f "$T"/samail.db* "$T"/unsubscribe.key*
strace -f -qq -o /dev/null -e trace=fsync -e inject=fsync:signal=KILL:when=1 \
	"$SAMAIL" -c "$T/samail.conf" init >/dev/null 2>&1
check "init killed while it writes the key: no file of it left" -- \
	test -z "$(ls "$T" | grep '^unsubscribe\.key')"
expect_exit 0 "the next init makes the key" -- sam init
check "  ... one key file, whole, private" -- eval \
	'[ "$(ls "$T" | grep "^unsubscribe\.key")" = unsubscribe.key ] &&
	 [ "$(wc -c < unsubscribe.key)" = 65 ] && [ "$(stat -c %a unsubscribe.key)" = 600 ]'

# The disk fills up at the commit of an import (every write to the -wal
# fails): the file is named, and stdout says nothing was stored.
head -n 6 d.csv > five.csv
strace -f -qq -o /dev/null -P "$T/samail.db-wal" -e trace=pwrite64 \
	-e inject=pwrite64:error=ENOSPC "$SAMAIL" -c "$T/samail.conf" \
	--now $NOW subscriber import five.csv >"$T/out" 2>"$T/err"
rc=$?
check "import whose commit finds the disk full: exit 74" -- test $rc = 74
check "  ... one line naming the file, the commit and what to do" -- eval \
	'grep -c "" "$T/err" | grep -qx 1 &&
	 grep -q "^samail subscriber import: five.csv: commit: database .*: the disk is full; nothing of this change was kept: free space" "$T/err"'
check "  ... stdout: nothing stored of five.csv's 5 rows" -- \
	grep -q "^nothing stored: five.csv (UTF-8): 5 rows: 5 added" "$T/out"
check "  ... and nothing is" -- test "$(q "SELECT count(*) FROM subscriber")" = 0
expect_exit 0 "with room again the import stores them" -- sam --now $NOW subscriber import five.csv

finish
