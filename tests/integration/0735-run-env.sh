#!/bin/sh
# What the machine around a run may be: its time zone (TZ unset, UTC,
# Asia/Tokyo, another, a bad one), its locale (cron's LANG=C, an EUC-JP
# one), cron's bare environment, and `[run] log = syslog` where no syslog
# daemon listens (a container).  The schedule is Japan time whatever TZ
# says, the run's lines and the mail are the same bytes everywhere, and
# no log line is lost without a word.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || { echo "no sqlite3"; exit 77; }

write_config </dev/null
sam init >/dev/null 2>&1
sam feed add "$SRCDIR/feeds/samples/jvn.rdf" --name jvn >/dev/null
sam subscriber add --email a@example.jp --org 株式会社テスト --products windows \
	--star 1 --declared 2025-11-05 >/dev/null
sam subscriber add --email b@example.jp --org 有限会社サンプル --locale en >/dev/null
cp samail.db base.db

# One machine setting per line: an environment for env -i.
cat > envs <<'ENVS'
PATH=/usr/bin:/bin
PATH=/usr/bin:/bin TZ=UTC LANG=C
PATH=/usr/bin:/bin TZ=Asia/Tokyo LANG=ja_JP.UTF-8 LC_ALL=ja_JP.UTF-8
PATH=/usr/bin:/bin TZ=America/Los_Angeles LANG=C.UTF-8
PATH=/usr/bin:/bin TZ=Pacific/Kiritimati LANG=ja_JP.eucJP LC_ALL=ja_JP.eucJP
PATH=/usr/bin:/bin TZ=Nowhere/Bogus LANG=POSIX HOME=/nonexistent
PATH=/usr/bin:/bin TZ=JST-9 LC_ALL=C
ENVS
i=0
while read -r vars; do
	i=$((i + 1))
	rm -rf mail samail.db-wal samail.db-shm; cp base.db samail.db
	# 08:30 JST on Nov 1 (still Oct 31 in UTC and in Los Angeles): not
	# due; 09:00 JST: due, whatever the machine's zone says.
	env -i $vars "$SAMAIL" -c "$T/samail.conf" --now 2026-10-31T23:30:00Z run monthly > run1.$i 2>/dev/null
	echo "exit $?" >> run1.$i
	env -i $vars "$SAMAIL" -q -c "$T/samail.conf" --now 2026-11-01T00:00:00Z run monthly > run2.$i 2>err.$i
	echo "exit $?" >> run2.$i
	env -i $vars "$SAMAIL" -c "$T/samail.conf" --now 2026-11-01T00:10:00Z status > status.$i 2>&1
	# (how long a run took may differ)
	sed -i -e 's/ after [0-9]* s$/ after N s/' -e 's/  ok, [0-9]* s$/  ok, N s/' run1.$i run2.$i status.$i
	# (the boundaries and a Message-ID's last part are random)
	cat mail/new/* 2>/dev/null | sed -E -e 's/(=_[a-z]+_)[0-9a-f]+/\1X/g' \
		-e 's/^(Message-I[Dd]: <[^>]*\.)[0-9a-f]+@/\1X@/' > mail.$i
done < envs
check "under the first environment the monthly run is early at 08:30 JST" -- \
	grep -q "^  newsletter: newsletter-2026-10 is not due until 2026-11-01 09:00 JST" run1.1
check "  ... -q at 09:00 JST: builds and sends it, silent, exit 0" -- eval \
	'[ "$(cat run2.1)" = "exit 0" ] && [ ! -s err.1 ] && [ "$(grep -c "^Message-I[Dd]: <newsletter-2026-10\." mail.1)" = 2 ]'
check "  ... the mail has a Japanese subject and a JST Date" -- eval \
	'grep -q "^Date: Sun, 01 Nov 2026 09:00:00 +0900$" mail.1 &&
	 grep -q "^Subject: =?UTF-8?" mail.1'
check "  ... status shows Japanese names whole" -- grep -q "株式会社テスト\|newsletter-2026-10" status.1
for j in $(seq 2 "$i"); do
	v=$(sed -n "${j}p" envs)
	check "$v: the same lines, status and mail, byte for byte" -- eval \
		"cmp -s run1.1 run1.$j && cmp -s run2.1 run2.$j && cmp -s status.1 status.$j && cmp -s mail.1 mail.$j"
	check "  ... and no complaint" -- test ! -s err.$j
done

# [run] log = syslog with no syslog daemon: glibc's syslog() drops the
# lines without a word.  Without /dev/log here (a container), or hidden
# in a mount namespace of our own.
nosyslog=
if [ ! -e /dev/log ]; then
	nosyslog() { "$@"; }; nosyslog=1
elif [ "$(id -u)" = 0 ] && unshare -m sh -c 'mount --bind /dev/null /dev/log' 2>/dev/null; then
	nosyslog() { unshare -m sh -c 'mount --bind /dev/null /dev/log && exec "$@"' sh "$@"; }; nosyslog=1
fi
if [ -n "$nosyslog" ]; then
	printf '[run]\nlog = syslog\n' >> samail.conf
	expect_exit 0 "-q run, log = syslog, syslog unreachable" -- \
		nosyslog "$SAMAIL" -q -c "$T/samail.conf" --now 2026-11-02T21:30:00Z run daily
	check "  ... says once that syslog cannot be reached, and what to do" -- eval \
		'[ "$(grep -c "syslog cannot be reached" err)" = 1 ] &&
		 grep -Eq "^[0-9T:Z-]+ samail\[[0-9]+\] warning run daily: \[run\] log = syslog, but syslog cannot be reached \(/dev/log: .*\): these lines go to standard error only, and with -q only the warnings and errors; start a syslog daemon \(rsyslog, systemd-journald\), or set \[run\] log = stderr$" err'
	check "  ... and, as for any warning under -q, ends with the step lines" -- eval \
		'grep -q "^samail run daily, 2026-11-03 06:30 JST: ok after" out && tail -n 1 out | grep -q "^  send: "'
	# samail bounce, run by the MTA: unattended too.
	printf 'From: a@example.jp\nSubject: hello\n\nhi\n' > plain.eml
	expect_exit 0 "samail bounce, same config" -- nosyslog "$SAMAIL" -c "$T/samail.conf" bounce plain.eml
	check "  ... says it too" -- grep -q "^samail bounce: warning: \[run\] log = syslog, but syslog cannot be reached" err
	expect_exit 0 "a command that logs nothing" -- nosyslog "$SAMAIL" -c "$T/samail.conf" subscriber list
	check "  ... has nothing to lose and says nothing" -- test ! -s err
	sed -i '/^\[run\]/,$d' samail.conf
else
	echo "# /dev/log exists and cannot be hidden here: the syslog check skipped"
fi
finish
