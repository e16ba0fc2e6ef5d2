#!/bin/sh
# The man pages against the code: every key lib/config.c knows is in
# samail.conf(5) under its section, with a default; every command, sub-
# command and option that `samail --help` and `samail CMD --help` print is
# in samail(1), and so is every exit status; both pages render with groff
# -ww and man -l without a warning.  Also: the cron file and the systemd
# units say what the admin guide promises.
. "$(dirname "$0")/lib.sh"
command -v groff >/dev/null || { echo "groff missing (make deps)"; exit 77; }
MAN1=$SRCDIR/docs/samail.1
MAN5=$SRCDIR/docs/samail.conf.5

# roff source without font changes and with plain hyphens, for matching.
plain() { sed -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/\\&//g' -e 's/\\(em/--/g' "$1"; }
plain "$MAN1" > man1.txt
plain "$MAN5" > man5.txt

# --- samail.conf(5) against lib/config.c ---------------------------------
sed -n 's/^[[:space:]]*{ "\([a-z_]*\)", "\([a-z_]*\)", K_.*/\1 \2/p' \
	"$SRCDIR/lib/config.c" > keys.txt
check "lib/config.c has keys to check ($(wc -l < keys.txt))" -- test "$(wc -l < keys.txt)" -gt 40
missing=""
while read -r sec key; do
	# The key's entry: a line "key = ..." after ".SS [sec]" and before
	# the next .SS, with a "Default" before the next entry.
	awk -v s="[$sec]" -v k="$key" '
		/^\.SS / { insec = ($2 == s); next }
		insec && index($0, k " = ") == 1 { found = 1; indef = 1; next }
		indef && /^\.TP/ { indef = 0 }
		indef && /Default/ { ok = 1 }
		END { exit !(found && ok) }' man5.txt || missing="$missing [$sec] $key"
done < keys.txt
check "samail.conf(5) documents every key with its default${missing:+ (missing:$missing)}" -- test -z "$missing"
extra=""
awk '/^\.SH/ { s = "" } /^\.SS \[/ { s = $2; next } /^[a-z_]+ = / && s != "" { print s, $1 }' man5.txt |
	tr -d '[]' > documented.txt
while read -r sec key; do
	grep -qx "$sec $key" keys.txt || extra="$extra [$sec] $key"
done < documented.txt
check "samail.conf(5) documents no key the code does not know${extra:+ (extra:$extra)}" -- test -z "$extra"

# --- samail(1) against --help ---------------------------------------------
"$SAMAIL" --help > help.txt
cmds=$(sed -n '/^Commands:/,/^$/s/^  \([a-z]*\) .*/\1/p' help.txt)
check "samail --help lists commands" -- test -n "$cmds"
missing=""
for o in $(grep -o -- '--[a-z][a-z-]*' help.txt | sort -u) -c -q -v -h -V; do
	grep -q -- "$o" man1.txt || missing="$missing $o"
done
check "samail(1) has every global option${missing:+ (missing:$missing)}" -- test -z "$missing"
missing=""
for c in $cmds; do
	grep -q "^\.SS $c\$" man1.txt || { missing="$missing $c"; continue; }
	"$SAMAIL" "$c" --help > "help-$c.txt" 2>&1
	# Subcommands: "  word ..." lines of the command's help.
	for s in $(sed -n 's/^  \([a-z][a-z]*\)\( .*\)\{0,1\}$/\1/p' "help-$c.txt"); do
		grep -q "samail $c $s" man1.txt || missing="$missing '$c $s'"
	done
	for o in $(grep -o -- '--[a-z][a-z-]*' "help-$c.txt" | sort -u); do
		# The option in this command's section of the page.
		awk -v c="$c" -v o="$o" '/^\.SS / { insec = ($2 == c); next }
			insec && index($0, o) { f = 1 } END { exit !f }' man1.txt ||
			missing="$missing '$c $o'"
	done
done
check "samail(1) has every command, subcommand and option${missing:+ (missing:$missing)}" -- test -z "$missing"
missing=""
for x in $(sed -n '/^Exit status:/,/^See/p' help.txt | grep -o '[0-9][0-9]' | sort -u) 0; do
	awk -v x="$x" '/^\.SH EXIT STATUS/ { e = 1; next } /^\.SH/ { e = 0 }
		e && prev ~ /^\.TP/ && $0 == ".B " x { f = 1 } { prev = $0 } END { exit !f }' man1.txt ||
		missing="$missing $x"
done
check "samail(1) explains every exit status --help names${missing:+ (missing:$missing)}" -- test -z "$missing"
missing=""
for v in SAMAIL_CONFIG SAMAIL_SMTP_PASSWORD SAMAIL_UNSUBSCRIBE_SECRET SAMAIL_CHECK_SKELETONS; do
	sed -n '/^\.SH ENVIRONMENT/,/^\.SH/p' man1.txt | grep -q "^\.B $v\$" || missing="$missing $v"
done
check "samail(1) ENVIRONMENT names the variables${missing:+ (missing:$missing)}" -- test -z "$missing"
check "... and the code reads no other SAMAIL_ variable" -- eval \
	'[ -z "$(grep -rhoE "\"SAMAIL_[A-Z_]+\"" "$SRCDIR/lib" "$SRCDIR/cmd" | tr -d \" | sort -u | grep -vxE "SAMAIL_(CONFIG|SMTP_PASSWORD|UNSUBSCRIBE_SECRET|CHECK_SKELETONS|VERSION|DATADIR|SYSCONFDIR)")" ]'

# --- rendering --------------------------------------------------------------
for page in "$MAN1" "$MAN5"; do
	n=$(basename "$page")
	groff -ww -man -Tutf8 "$page" > /dev/null 2> groff.err
	check "$n: groff -ww -man -Tutf8 renders it without a warning" -- test ! -s groff.err
	[ -s groff.err ] && sed 's/^/#   /' groff.err
	check "$n: the source is ASCII (non-ASCII text as \\[uXXXX])" -- eval \
		'! LC_ALL=C grep -q "[^[:print:][:space:]]" "$page"'
	if command -v man >/dev/null; then
		MANWIDTH=80 man --warnings -l "$page" > man.out 2> man.err
		check "$n: man -l renders it without a warning" -- eval '[ ! -s man.err ] && [ -s man.out ]'
		[ -s man.err ] && sed 's/^/#   /' man.err
	fi
done

# --- the example configuration ---------------------------------------------
EX=$SRCDIR/docs/samail.conf.example
"$SAMAIL" --db "$T/ex.db" init >/dev/null 2>&1
expect_exit 0 "samail.conf.example loads as it is" -- "$SAMAIL" -c "$EX" --db "$T/ex.db" status
# With every commented-out key switched on too: all are known keys.
sed 's/^;\([a-z_]* = \)/\1/' "$EX" > ex-all.conf
expect_exit 0 "samail.conf.example loads with every commented key on" -- \
	"$SAMAIL" -c ex-all.conf --db "$T/ex.db" status

# --- the cron file and the units ---------------------------------------------
C=$SRCDIR/cron
check "samail.cron: daily and monthly entries, as user samail, quiet" -- eval \
	'grep -Eq "^[0-9]+ +[0-9]+ +\* +\* +\* +samail +/usr/local/bin/samail -q run daily$" "$C/samail.cron" &&
	 grep -Eq "^[0-9]+ +[0-9]+ +1 +\* +\* +samail +/usr/local/bin/samail -q run monthly$" "$C/samail.cron" &&
	 grep -q "^CRON_TZ=Asia/Tokyo$" "$C/samail.cron"'
check "samail.cron: the monthly hour is [newsletter] hour's default (9)" -- \
	grep -Eq "^0 +9 +1 " "$C/samail.cron"
for u in daily monthly; do
	s=$C/samail-$u.service
	check "samail-$u.service: dedicated user, state directory, sandbox" -- eval '
		for k in "User=samail" "StateDirectory=samail" "WorkingDirectory=/var/lib/samail" \
		    "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" \
		    "PrivateDevices=yes" "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" \
		    "SystemCallFilter=@system-service" "Type=oneshot" \
		    "ExecStart=/usr/local/bin/samail run '$u'"; do
			grep -qx "$k" "'"$s"'" || { echo "# no $k"; exit 1; }; done'
	check "samail-$u.timer: Japan time, persistent" -- eval \
		'grep -Eq "^OnCalendar=.* Asia/Tokyo$" "$C/samail-$u.timer" && grep -qx "Persistent=true" "$C/samail-$u.timer"'
done
# After the machine was off, both timers catch up at boot; the monthly
# run is ordered after the daily one, which a random delay of the
# daily catch-up (Persistent= is subject to it) would turn around.
check "samail-monthly.service runs after samail-daily.service" -- \
	grep -qx "After=samail-daily.service" "$C/samail-monthly.service"
check "  ... and the daily timer has no random delay to undo that" -- eval \
	'! grep -q "^RandomizedDelaySec=" "$C/samail-daily.timer"'
if command -v systemd-analyze >/dev/null; then
	mkdir units
	for f in "$C"/samail-*; do
		sed "s|/usr/local/bin/samail|$SAMAIL|" "$f" > "units/${f##*/}"
	done
	# Documentation= names man pages that are not installed here: only
	# the unit files' own syntax and settings are checked.
	(cd units && systemd-analyze verify --man=no ./samail-daily.service ./samail-daily.timer \
		./samail-monthly.service ./samail-monthly.timer) > sa.out 2>&1
	check "systemd-analyze verify accepts the units" -- eval \
		'! grep -v -e "^$" -e "Failed to connect to bus" -e "not been booted with systemd" sa.out | grep -q .'
	sed 's/^/#   /' sa.out | head -10
fi
finish
