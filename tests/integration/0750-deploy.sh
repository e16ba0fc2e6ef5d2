#!/bin/sh
# What a sysadmin meets deploying samail: the defaults samail.conf(5)
# states are the code's; `make install` puts the units, the cron file
# and the binary where they name each other; a cron run under -q prints
# nothing when all went well and ends with the step lines when it logged
# a warning; a database the running user cannot write is one clear line
# (exit 73), and so is a directory closed to it; a read-only file system
# is said as such (exit 74); a new install whose feeds were never reached
# does not mail an empty newsletter.
. "$(dirname "$0")/lib.sh"
$PY -c 'import aiosmtpd' 2>/dev/null || { echo "python3-aiosmtpd missing (make deps)"; exit 77; }
command -v sqlite3 >/dev/null || { echo "no sqlite3"; exit 77; }

# 1. The defaults the manual states.
check "samail.conf(5) states the defaults lib/config.c sets" -- \
	$PY "$SRCDIR/tests/tools/man-defaults.py" "$SRCDIR/lib/config.c" "$SRCDIR/docs/samail.conf.5"

# 2. make install, into a DESTDIR, of the binary under test (-o: make
# installs it as it is, never rebuilds it).
B=$(dirname "$SAMAIL")
R=$T/root
make -s -C "$SRCDIR" BUILD="$B" -o "$B/samail" DESTDIR="$R" PREFIX=/usr/local \
	install > install.out 2>&1
check "make install DESTDIR=... PREFIX=/usr/local" -- test -x "$R/usr/local/bin/samail"
for u in samail-daily.service samail-monthly.service samail-daily.timer samail-monthly.timer; do
	check "  ... $u in /usr/local/lib/systemd/system" -- test -f "$R/usr/local/lib/systemd/system/$u"
done
check "  ... every unit's ExecStart is the installed binary" -- eval '
	for s in "$R"/usr/local/lib/systemd/system/*.service; do
		x=$(sed -n "s/^ExecStart=\([^ ]*\) .*/\1/p" "$s")
		[ "$x" = /usr/local/bin/samail ] && [ -x "$R$x" ] || exit 1; done'
check "  ... the cron file as an example, naming the installed binary" -- eval '
	f=$R/usr/local/share/doc/samail/examples/samail.cron
	[ -f "$f" ] && grep -q " /usr/local/bin/samail -q run daily$" "$f" &&
	[ -z "$(grep -o "/[a-z/]*bin/samail" "$f" | grep -v "^/usr/local/bin/samail$")" ]'
check "  ... the man pages, which man -l renders" -- eval '
	MANWIDTH=80 man -l "$R/usr/local/share/man/man5/samail.conf.5" >/dev/null 2>&1 &&
	MANWIDTH=80 man -l "$R/usr/local/share/man/man1/samail.1" >/dev/null 2>&1'
check "  ... the templates and the feed data" -- eval '
	[ -f "$R/usr/local/share/samail/feeds/products.conf" ] &&
	[ -d "$R/usr/local/share/samail/templates/ja" ]'
# PREFIX=/usr: the units name /usr/bin/samail and go where systemd looks
# for a distribution's units (a dry run).
make -n -C "$SRCDIR" BUILD="$B" -o "$B/samail" DESTDIR="$R" PREFIX=/usr install \
	> install-usr.out 2>&1
check "make install PREFIX=/usr: units name /usr/bin/samail, in /usr/lib/systemd/system" -- eval '
	grep -q "s|/usr/local/bin/samail|/usr/bin/samail|g" install-usr.out &&
	grep -q "d=$R/usr/lib/systemd/system" install-usr.out'
R2=$T/root-usr
make -s -C "$SRCDIR" BUILD="$B" -o "$B/samail" DESTDIR="$R2" PREFIX=/usr \
	install > install-usr2.out 2>&1
check "  ... and the man pages name /usr's paths, none /usr/local's" -- eval '
	grep -q "/usr/share/samail/templates/" "$R2/usr/share/man/man1/samail.1" &&
	grep -q "/usr/bin/samail \\\\-q run daily" "$R2/usr/share/man/man1/samail.1" &&
	grep -q "/usr/share/doc/samail/examples/samail.conf.example" "$R2/usr/share/man/man5/samail.conf.5" &&
	! grep -q /usr/local "$R2/usr/share/man/man1/samail.1" "$R2/usr/share/man/man5/samail.conf.5"'

# 3. A cron run: no environment to speak of, -q.
write_config </dev/null
sam init >/dev/null 2>&1
sam feed add "$SRCDIR/feeds/samples/jvn.rdf" --name jvn >/dev/null
sam subscriber add --email ok1@example.jp --org 株式会社一 --products windows >/dev/null
cron() { env -i PATH=/usr/bin:/bin HOME=/nonexistent LANG=C "$SAMAIL" -q -c "$T/samail.conf" "$@"; }
expect_exit 0 "a cron run that goes well" -- cron --now 2026-11-01T00:00:00Z run monthly
check "  ... prints nothing at all (cron mails nothing)" -- eval '[ ! -s "$T/out" ] && [ ! -s "$T/err" ]'
check "  ... and did its work" -- test "$(ls "$T/mail/new" | wc -l)" = 1
# The first relay refuses connections, the second takes the mail: the
# run is a success, with warnings.  cron mails them: the mail must end
# with what each step did, as every other one.
start_smtpd relay
closed=$(free_port)
sed -i "s|^transport = .*|transport = smtp://127.0.0.1:$closed smtp://127.0.0.1:$SMTPD_PORT|" samail.conf
cat >> samail.conf <<CONF
[smtp]
tls_verify = no
CONF
sam subscriber add --email remind1@example.jp --org 株式会社星 --star 1 --declared 2026-05-08 >/dev/null
expect_exit 0 "a cron run that fails over to the second relay" -- cron --now 2026-11-01T01:00:00Z run daily
check "  ... logs the refused relay as a warning" -- grep -q " warning send: smtp: relay " err
check "  ... and ends with the step lines" -- eval \
	'grep -q "^samail run daily, 2026-11-01 10:00 JST: ok after" out &&
	 tail -n 1 out | grep -q "^  send: 1 sent via smtp://"'

# 4. A database the running user cannot write.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
	chmod 755 "$T"
	chmod 644 samail.conf
	as_nobody() { setpriv --reuid nobody --regid "$(id -g nobody)" --clear-groups \
		env -i PATH=/usr/bin:/bin HOME=/nonexistent LANG=C "$SAMAIL" -q -c "$T/samail.conf" "$@"; }
	expect_exit 73 "a run as a user who cannot write the database" -- as_nobody --now 2026-11-02T00:00:00Z run daily
	check "  ... one line: who cannot write what, and the two ways out" -- eval \
		'[ "$(wc -l < "$T/err")" = 1 ] &&
		 grep -q "user nobody cannot write it; .*sudo -u root samail .*chown nobody: .$T/samail.db. .$T/samail.db-wal." "$T/err"'
	expect_exit 73 "status as that user: the same line" -- as_nobody status
	check "  ... not SQLite's 'readonly database'" -- eval '! grep -q readonly "$T/err"'
	# The state directory closed to the user (0750, another owner): the
	# database is there, not "does not exist; run samail init".
	mkdir -m 750 closed
	cp samail.db closed/
	sed "s|^path = .*|path = $T/closed/samail.db|" samail.conf > closed.conf
	chmod 644 closed.conf
	expect_exit 73 "a run as a user who cannot enter the database's directory" -- \
		setpriv --reuid nobody --regid "$(id -g nobody)" --clear-groups \
		env -i PATH=/usr/bin:/bin "$SAMAIL" -q -c "$T/closed.conf" --now 2026-11-02T00:00:00Z run daily
	check "  ... one line: the directory closed to whom, and the ways out" -- eval \
		'[ "$(wc -l < "$T/err")" = 1 ] && ! grep -q "does not exist" "$T/err" &&
		 grep -q "database .$T/closed/samail.db.: user nobody cannot reach it (the directory .$T/closed. is closed to nobody: permission denied); run samail as root (sudo -u root samail ...), or let nobody in" "$T/err"'
	# A relative database path from a current directory closed to the
	# user (sudo -u samail from root's home): that directory is named,
	# not the path's first component, which is not there at all.
	mkdir -m 700 home
	expect_exit 73 "a relative database path from a current directory closed to the user" -- \
		sh -c 'cd home && exec setpriv --reuid nobody --regid "$(id -g nobody)" --clear-groups \
		env -i PATH=/usr/bin:/bin "$1" -q -c "$2" --db var/samail.db status' sh "$SAMAIL" "$T/samail.conf"
	check "  ... one line naming the current directory and the ways out" -- eval \
		'[ "$(wc -l < "$T/err")" = 1 ] && grep -q "database .var/samail.db.: user nobody cannot reach it (the path is relative to the current directory .$T/home., which is closed to nobody: permission denied); run samail from the directory the path starts in, or give the database.s full path" "$T/err"'
	# root's `samail send` by hand (sudo) in the service user's state
	# directory creates the maildir (or the mbox) there: it is that
	# user's, or every later run of theirs fails on it.
	mkdir -m 755 svc
	chown nobody svc
	sed -e "s|^path = .*|path = $T/svc/samail.db|" -e "s|^transport = .*|transport = maildir:$T/svc/mail|" \
		samail.conf > svc.conf
	sed "s|^transport = .*|transport = mbox:$T/svc/box/mbox|" svc.conf > svcbox.conf
	chmod 644 svc.conf svcbox.conf
	as_svc() { setpriv --reuid nobody --regid "$(id -g nobody)" --clear-groups \
		env -i PATH=/usr/bin:/bin "$SAMAIL" -q -c "$@"; }
	as_svc "$T/svc.conf" init > /dev/null 2>&1
	"$SAMAIL" -c svc.conf subscriber add --email svc1@example.jp --org 株式会社一 > /dev/null
	"$SAMAIL" -c svc.conf --now 2026-11-01T00:00:00Z newsletter build --period 2026-10 > /dev/null 2>&1
	"$SAMAIL" -c svcbox.conf --now 2026-11-01T00:00:00Z send > /dev/null 2>&1
	"$SAMAIL" -c svc.conf --now 2026-11-01T00:00:00Z send > /dev/null 2>&1
	requeue() { sqlite3 svc/samail.db "UPDATE outbox SET state = 'queued'"; }
	requeue
	expect_exit 0 "after root's send made the maildir, the service user's send delivers there" -- \
		as_svc "$T/svc.conf" --now 2026-11-02T00:00:00Z send
	check "  ... the maildir is the service user's" -- \
		test "$(stat -c %U svc/mail svc/mail/new svc/mail/tmp | sort -u)" = nobody
	requeue
	expect_exit 0 "  ... and so is the mbox root made" -- \
		as_svc "$T/svcbox.conf" --now 2026-11-02T00:00:00Z send
	check "  ... which has both messages" -- test "$(grep -c '^From ' svc/box/mbox)" = 2
	# Not a file of root's that the directory's owner hard-linked in
	# as the mbox (fs.protected_hardlinks = 0 lets any user link one):
	# root's send must not hand it over to them.
	mkdir svc/hl
	chown nobody svc/hl
	echo 'root:secret' > rootfile
	chmod 600 rootfile
	ln rootfile svc/hl/mbox
	sed "s|^transport = .*|transport = mbox:$T/svc/hl/mbox|" svc.conf > svchl.conf
	requeue
	"$SAMAIL" -c svchl.conf --now 2026-11-02T00:00:00Z send > /dev/null 2>&1
	check "  ... a root file hard-linked as the mbox stays root's" -- \
		test "$(stat -c %U rootfile)" = root
	# The user's own database, mode 0444 (restored from read-only
	# media): chmod is the way out, not running as another user.
	chmod 444 svc/samail.db
	expect_exit 73 "a database read-only to its owner" -- as_svc "$T/svc.conf" status
	check "  ... one line that says so and how to fix it" -- eval \
		'[ "$(wc -l < "$T/err")" = 1 ] && grep -q "^samail status: database .$T/svc/samail.db. is read-only to its owner nobody (mode 0444); make it writable: chmod u+w .$T/svc/samail.db.$" "$T/err"'
	chmod 640 svc/samail.db
	chmod 555 svc
	expect_exit 73 "  ... and a directory read-only to its owner" -- as_svc "$T/svc.conf" status
	check "  ... one line that says so and how to fix it" -- eval \
		'[ "$(wc -l < "$T/err")" = 1 ] && grep -q "^samail status: database .$T/svc/samail.db.: its directory .$T/svc. is read-only to its owner nobody (mode 0555), and samail writes the -wal/-shm files and the run lock there; make it writable: chmod u+w .$T/svc.$" "$T/err"'
	chmod 755 svc
	chmod 600 samail.conf
	expect_exit 78 "a config file the user cannot read: exit 78" -- as_nobody status
	check "  ... naming it" -- grep -q "cannot open config '$T/samail.conf': Permission denied" err
	chmod 700 "$T"
else
	echo "# not root, or no setpriv/nobody: the other-user checks skipped"
fi

# 4b. The database's file system read-only (the kernel remounts one so
# after disk errors): said as such, exit 74, not "unable to open".
if mkdir ro && mount -t tmpfs -o size=4m tmpfs ro 2>/dev/null; then
	at_exit "umount '$T/ro' 2>/dev/null"
	cp samail.db ro/ && mount -o remount,ro ro
	sed "s|^path = .*|path = $T/ro/samail.db|" samail.conf > ro.conf
	expect_exit 74 "a run on a read-only file system" -- \
		"$SAMAIL" -q -c "$T/ro.conf" --now 2026-11-02T00:00:00Z run daily
	check "  ... one line that says so and what to check" -- eval \
		'[ "$(wc -l < "$T/err")" = 1 ] && grep -q "database .$T/ro/samail.db. is on a read-only file system, so no run can record anything; remount it read-write (mount -o remount,rw), but if the kernel made it read-only after disk errors, check the disk first (dmesg)$" "$T/err"'
	expect_exit 74 "status there: the same" -- "$SAMAIL" -c "$T/ro.conf" status
	umount ro
else
	echo "# cannot mount a tmpfs here: the read-only file system not checked"
fi

# 5. A new install whose feeds were never reached, three weeks into the
# month: no empty newsletter for every declarer.
mkdir fresh
cat > fresh/samail.conf <<CONF
[database]
path = $T/fresh/samail.db
[mail]
transport = maildir:$T/fresh/mail
[feeds]
seed = $T/fresh/feeds.conf
CONF
: > fresh/feeds.conf
F() { "$SAMAIL" -c "$T/fresh/samail.conf" "$@"; }
F init >/dev/null 2>&1
F feed add "http://127.0.0.1:$closed/jvn.rdf" --name jvn >/dev/null
F subscriber add --email a@example.jp --org 株式会社新 >/dev/null
expect_exit 69 "the first run of a new install, feeds unreachable, on the 20th" -- \
	F -q --now 2026-11-20T00:00:00Z run daily
check "  ... postpones last month's newsletter and says why" -- \
	grep -q "^  newsletter: newsletter-2026-10 postponed: no advisory is stored yet" out
check "  ... sends nothing" -- eval '[ ! -d fresh/mail/new ] || [ -z "$(ls fresh/mail/new)" ]'
finish
