#!/bin/sh
# make bench: every tests/bench/bench-*.sh, then the SMTP engine alone
# (smtp-bench.sh).  Each prints its figures next to its peer or target.
#
#   tests/bench/run.sh [NAME...]    only bench-NAME.sh (or smtp-bench)
#
# SAMAIL names the binary (make bench sets it).  A benchmark that misses a
# tool exits 77 and is reported as skipped; one that fails is reported and
# the others still run; the exit status is 1 if any failed.
cd "$(dirname "$0")/../.." || exit 1
SAMAIL=${SAMAIL:-$PWD/build/samail}
export SAMAIL
[ -x "$SAMAIL" ] || { echo "bench: no $SAMAIL; run make first" >&2; exit 1; }

if [ $# -gt 0 ]; then
	list=""
	for n in "$@"; do
		case $n in
		smtp|smtp-bench) list="$list tests/bench/smtp-bench.sh" ;;
		*) list="$list tests/bench/bench-$n.sh" ;;
		esac
	done
else
	list="$(ls tests/bench/bench-*.sh) tests/bench/smtp-bench.sh"
fi

failed="" skipped=""
for b in $list; do
	[ -f "$b" ] || { echo "bench: no $b" >&2; failed="$failed $b"; continue; }
	printf '\n=== %s (%s)\n' "${b##*/}" "$(date -u +%H:%M:%SZ)"
	start=$(date +%s)
	case $b in
	*/smtp-bench.sh) BUILD=$(dirname "$SAMAIL") sh "$b" ;;
	*) sh "$b" "$SAMAIL" ;;
	esac
	rc=$?
	case $rc in
	0) echo "--- ${b##*/}: done in $(( $(date +%s) - start )) s" ;;
	77) skipped="$skipped ${b##*/}"; echo "--- ${b##*/}: skipped" ;;
	*) failed="$failed ${b##*/}"; echo "--- ${b##*/}: FAILED (exit $rc)" ;;
	esac
done
echo
[ -n "$skipped" ] && echo "bench: skipped:$skipped"
[ -z "$failed" ] || { echo "bench: failed:$failed"; exit 1; }
echo "bench: all ran"
