#!/bin/sh
# Run each cmocka unit-test binary; fail if any fails.
# Unit tests find fixtures through SAMAIL_SRCDIR (the source tree's root).
SAMAIL_SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
export SAMAIL_SRCDIR
fail=0
for t in "$@"; do
	if "$t"; then :; else echo "FAIL: $t" >&2; fail=1; fi
done
exit $fail
