#!/bin/sh
# tests/bench/bench-import.sh [SAMAIL] — import a generated 300,000-row
# declarer CSV with `samail subscriber import`, next to the time sqlite3's
# own `.import` takes for the same file into a plain table.  Prints rows/s,
# the ratio (target: within 3x of .import) and peak memory at 30,000 and
# 300,000 rows (target: flat in the row count).
# Environment: BENCH_ROWS (default 300000), BENCH_DIR (a temp dir).
set -eu
cd "$(dirname "$0")/../.."
SAMAIL=${1:-${SAMAIL:-build/samail}}
rows=${BENCH_ROWS:-300000}
small=$((rows / 10))
dir=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/samail-bench-import.XXXXXX")}
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 tests/bench/gen-declarers.py "$rows" "$dir/big.csv"
/usr/bin/python3 tests/bench/gen-declarers.py "$small" "$dir/small.csv"
printf '[database]\npath = %s/s.db\n[feeds]\nseed = %s/none.conf\n' "$dir" "$dir" > "$dir/c.conf"
: > "$dir/none.conf"

best() {	# best TIMEFILE-VAR command... : best elapsed of 3, peak RSS, user CPU
	b=""; peak=0; user=""
	for i in 1 2 3; do
		eval "$SETUP"
		/usr/bin/time -f "%e %M %U" -o "$dir/t" "$@" >"$dir/out" 2>"$dir/err" || {
			echo "bench-import: '$*' failed:" >&2; cat "$dir/err" >&2; exit 1; }
		read -r s kb u < "$dir/t"
		if [ -z "$b" ] || awk -v a="$s" -v b="$b" 'BEGIN { exit !(a < b) }'; then b=$s; user=$u; fi
		[ "$kb" -gt "$peak" ] && peak=$kb
	done
	R_S=$b R_KB=$peak R_U=$user
}

SETUP='rm -f "$dir/plain.db"'
best sqlite3 "$dir/plain.db" -cmd ".mode csv" ".import $dir/big.csv plain"
peer_s=$R_S peer_u=$R_U
SETUP='rm -f "$dir"/s.db*; "$SAMAIL" -q -c "$dir/c.conf" init'
best "$SAMAIL" -q -c "$dir/c.conf" subscriber import "$dir/small.csv"
small_s=$R_S small_kb=$R_KB
best "$SAMAIL" -q -c "$dir/c.conf" subscriber import "$dir/big.csv"
big_s=$R_S big_kb=$R_KB big_u=$R_U
SETUP=':'
best "$SAMAIL" -q -c "$dir/c.conf" subscriber import "$dir/big.csv"
again_s=$R_S

awk -v rows="$rows" -v small="$small" -v ps="$peer_s" -v pu="$peer_u" \
    -v bs="$big_s" -v bu="$big_u" -v bkb="$big_kb" -v ss="$small_s" \
    -v skb="$small_kb" -v as="$again_s" 'BEGIN {
	printf "import %d declarers (CSV, %s)\n", rows, "UTF-8"
	printf "  sqlite3 .import, plain table : %6.2f s  %8.0f rows/s  (user %.2f s)\n", ps, rows / ps, pu
	printf "  samail subscriber import     : %6.2f s  %8.0f rows/s  (user %.2f s)  %.1fx .import (target <= 3x)\n", bs, rows / bs, bu, bs / ps
	printf "  samail re-import (unchanged) : %6.2f s  %8.0f rows/s\n", as, rows / as
	printf "  peak memory: %d rows %.1f MB, %d rows %.1f MB (target: flat)\n", small, skb / 1024, rows, bkb / 1024
}'
