#!/bin/sh
# A full disk: the database on a 1.5 MB tmpfs.  Every command that runs out
# of space says so in one line with what to do, exits 74, and keeps nothing
# of its change: the store stays consistent and the next run, once there is
# room, finishes the job.  Needs root (mount); skipped elsewhere.
. "$(dirname "$0")/lib.sh"
FULL=$T/full
mkdir -p "$FULL"
mount -t tmpfs -o size=1500k tmpfs "$FULL" 2>/dev/null ||
	{ echo "# cannot mount a tmpfs here (not root, or no CAP_SYS_ADMIN)"; exit 77; }
at_exit "umount '$FULL' 2>/dev/null"
write_config <<CONF
[database]
path = $FULL/samail.db
CONF
sam -q init >/dev/null 2>&1
$PY "$SRCDIR/tests/bench/gen-declarers.py" 20000 "$T/big.csv" >/dev/null
head -n 301 "$T/big.csv" > "$T/small.csv"
n() { sqlite3 "$FULL/samail.db" "SELECT count(*) FROM subscriber"; }

expect_exit 74 "importing 20,000 declarers onto a full disk: exit 74" -- sam subscriber import "$T/big.csv"
check "  ... one line naming the row, the database and what to do" -- eval \
	'grep -c "" "$T/err" | grep -qx 1 &&
	 grep -q "big.csv:[0-9]*: add declarer: database .$FULL/samail.db.: the disk is full; nothing of this change was kept: free space" "$T/err"'
check "  ... and nothing of the import was kept" -- test "$(n)" = 0
check "  ... the store is consistent" -- test "$(sqlite3 "$FULL/samail.db" "PRAGMA integrity_check")" = ok

expect_exit 0 "a smaller import still fits" -- sam subscriber import "$T/small.csv"
check "  ... 300 declarers stored" -- test "$(n)" = 300

# Fill the rest, then the monthly run.
dd if=/dev/zero of="$FULL/filler" bs=4k count=1000 2>/dev/null
expect_exit 74 "run monthly with no space left: exit 74" -- sam -q --now 2026-11-01T00:00:00Z run monthly
check "  ... one line: the disk is full, and what to do" -- eval \
	'grep -c "" "$T/err" | grep -qx 1 &&
	 grep -q "the disk is full; nothing of this change was kept: free space on the file system" "$T/err"'
check "  ... no mail went out" -- test ! -d "$T/mail/new" -o -z "$(ls "$T/mail/new" 2>/dev/null)"

rm -f "$FULL/filler"
check "with room again: the store is consistent, the declarers all there" -- eval \
	'[ "$(sqlite3 "$FULL/samail.db" "PRAGMA integrity_check")" = ok ] && [ "$(n)" = 300 ]'
expect_exit 0 "the next run does the job" -- sam -q --now 2026-11-01T00:00:00Z run monthly
check "  ... every queued message is in the maildir, once" -- eval \
	'q=$(sqlite3 "$FULL/samail.db" "SELECT count(*) FROM outbox WHERE state = '"'"'sent'"'"'") &&
	 [ "$q" -ge 300 ] && [ "$(ls "$T/mail/new" | wc -l)" = "$q" ] &&
	 [ "$(sqlite3 "$FULL/samail.db" "SELECT count(*) FROM outbox WHERE state <> '"'"'sent'"'"'")" = 0 ]'
finish
