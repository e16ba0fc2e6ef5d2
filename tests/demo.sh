#!/bin/sh
# make demo: the monthly job on the built-in defaults, from the source tree.
# Everything lands under var/ (database, mail); nothing leaves the machine.
set -e
SAMAIL=${1:-build/samail}
cd "$(dirname "$0")/.."
say() { printf '\n== %s\n' "$*"; }

say "samail init: create var/samail.db"
"$SAMAIL" init

say "import the bundled sample declarers (CP932 CSV, as Excel saves it)"
"$SAMAIL" subscriber import docs/examples/declarers-sample-cp932.csv

say "the declarers"
"$SAMAIL" subscriber list
