#!/bin/sh
# make demo: the monthly job on the built-in defaults, from the source tree.
# Everything lands under var/ (database, mail); nothing leaves the machine.
# The only setting beyond the defaults is the feed list: the offline sample
# feeds in feeds/samples/ instead of IPA's and JVN's real ones, and --now
# puts the run on 1 November 2026, 09:00 Japan time, when the samples'
# October newsletter is due.
set -e
SAMAIL=${1:-build/samail}
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
NOW=2026-11-01T00:00:00Z
say() { printf '\n== %s\n' "$*"; }

mkdir -p var
if [ -e var/samail.db ] || [ -e var/mail ]; then
	say "starting afresh: removing the previous var/samail.db and var/mail"
	rm -rf var/samail.db var/samail.db-wal var/samail.db-shm \
		var/samail.db.lock var/unsubscribe.key var/mail
fi
cat > var/demo.conf <<'CONF'
; Written by `make demo`: the built-in defaults (database var/samail.db,
; mail into the maildir var/mail) plus the offline sample feeds.  Paths
; here are relative to this file.
[feeds]
allow_local_files = yes
seed = ../feeds/samples/feeds.conf
CONF
S() { "$SAMAIL" -c var/demo.conf "$@"; }

say "samail init: create var/samail.db, seed the (sample) feeds"
S init

say "import the bundled sample declarers (CP932 CSV, as Excel saves it)"
S subscriber import docs/examples/declarers-sample-cp932.csv

say "the declarers"
S subscriber list

say "samail run monthly, as cron would on 1 November 2026 at 09:00 Japan time"
S --now $NOW run monthly

say "samail status"
S --now $NOW status

say "the first messages (recipient, subject, attachment)"
$PY tests/tools/list-mail.py var/mail 2>/dev/null | head -n 12

n=$(find var/mail/new -type f | wc -l)
say "the mail: $n messages in the maildir var/mail/ (nothing was sent anywhere)"
cat <<EOF
Each file in var/mail/new/ is one message as the declarer would receive it.

  List them (recipient and subject, decoded):
    $PY tests/tools/list-mail.py var/mail
  Read them in a mail client:
    mutt -f var/mail            (apt-get install mutt)
  Open one as it is:
    less var/mail/new/\$(ls var/mail/new | head -n 1)
  One declarer's newsletter as an .eml file (opens in Thunderbird, Outlook):
    $SAMAIL -c var/demo.conf --now $NOW newsletter preview --period 2026-10 \\
        --email info01@example.or.jp --out newsletter.eml

To go on from here with the same settings:
    export SAMAIL_CONFIG=\$PWD/var/demo.conf
    $SAMAIL status
EOF

