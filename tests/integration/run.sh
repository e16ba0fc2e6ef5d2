#!/bin/sh
# Run every tests/integration/NNNN-*.sh against $SAMAIL; TAP-like summary.
# A script exits 0 (pass), 77 (skipped: a tool is missing) or anything else.
cd "$(dirname "$0")" || exit 1
: "${SAMAIL:?set SAMAIL to the samail binary}"
export SAMAIL
pass=0 fail=0 skip=0 failed=""
for t in [0-9][0-9][0-9][0-9]-*.sh; do
	[ -f "$t" ] || continue
	start=$(date +%s)
	./"$t" >"/tmp/samail-it-$$.log" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	case $rc in
	0) pass=$((pass + 1)); echo "ok - $t (${secs}s)" ;;
	77) skip=$((skip + 1)); echo "ok - $t # SKIP $(tail -n 1 /tmp/samail-it-$$.log)" ;;
	*) fail=$((fail + 1)); failed="$failed $t"; echo "not ok - $t (exit $rc, ${secs}s)"
	   sed 's/^/#   /' "/tmp/samail-it-$$.log" | tail -n 60 ;;
	esac
done
rm -f "/tmp/samail-it-$$.log"
echo "# integration: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] || { echo "# failed:$failed"; exit 1; }
