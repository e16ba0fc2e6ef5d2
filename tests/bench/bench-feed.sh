#!/bin/sh
# tests/bench/bench-feed.sh [SAMAIL] — parse AND store a generated ~50 MB
# RSS 1.0 feed with `samail feed fetch`, next to `xmllint --noout --stream`
# on the same file.  Prints MB/s and peak RSS for both; exits 1 if samail
# misses the targets (within 3x xmllint's time, peak RSS under 64 MB).
#
# The feed comes from tests/data/feeds/gen-large.sh with 55,000 items
# (~50 MB); samail reads it as a local file with [feeds] max_size raised.
# Environment: BENCH_ITEMS (default 55000), BENCH_DIR (a temp dir).
set -eu
cd "$(dirname "$0")/../.."
SAMAIL=${1:-${SAMAIL:-build/samail}}
SAMAIL=$(cd "$(dirname "$SAMAIL")" && pwd)/$(basename "$SAMAIL")
items=${BENCH_ITEMS:-55000}
for tool in xmllint /usr/bin/time awk; do
	command -v "$tool" >/dev/null || { echo "bench-feed: $tool missing (make deps)" >&2; exit 77; }
done
[ -x "$SAMAIL" ] || { echo "bench-feed: no $SAMAIL; run make" >&2; exit 1; }
dir=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/samail-bench-feed.XXXXXX")}
trap 'rm -rf "$dir"' EXIT
feed=$dir/large.rdf
sh tests/data/feeds/gen-large.sh "$feed" "$items" >/dev/null
bytes=$(wc -c < "$feed")
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')

# Best of three for time (the machine may be busy), peak of those runs.
measure() {	# measure OUT-PREFIX command...
	pfx=$1; shift
	best=""; peak=0
	for i in 1 2 3; do
		[ -n "${SETUP:-}" ] && eval "$SETUP"
		/usr/bin/time -f "%e %M" -o "$dir/time" "$@" >"$dir/out" 2>"$dir/err" || {
			echo "bench-feed: '$*' failed:" >&2; cat "$dir/err" >&2; exit 1; }
		read -r s kb < "$dir/time"
		best=$(awk -v a="$best" -v b="$s" 'BEGIN { print (a == "" || b < a) ? b : a }')
		[ "$kb" -gt "$peak" ] && peak=$kb
	done
	eval "${pfx}_s=$best ${pfx}_kb=$peak"
}

measure xl xmllint --noout --stream "$feed"

# The parser alone, built against the library next to the binary.
lib=$(dirname "$SAMAIL")/libsamail.a
parse_s=""
if [ -f "$lib" ] && ${CC:-cc} -O2 -D_GNU_SOURCE -Ilib tests/bench/feed-parse.c \
    "$lib" $(pkg-config --libs libcurl libxml-2.0 sqlite3 libical gmime-3.0 inih \
    libmicrohttpd libcrypto jansson libidn2) -lcsv -lpthread -lm -o "$dir/feed-parse" 2>"$dir/cc.err"; then
	measure pa "$dir/feed-parse" "$feed"
	parse_s=$pa_s
else
	echo "bench-feed: tests/bench/feed-parse.c did not build (the parse-only line is left out):" >&2
	head -3 "$dir/cc.err" >&2
fi

cat > "$dir/samail.conf" <<CONF
[database]
path = $dir/samail.db
[feeds]
allow_local_files = yes
max_size = 64M
seed = $dir/seed.conf
[paths]
data = $PWD
CONF
: > "$dir/seed.conf"
# Each run stores into a fresh database: the first fetch of a feed
# (every item new, tagged, inserted) is the expensive case.
SETUP="rm -f '$dir'/samail.db*; '$SAMAIL' -q -c '$dir/samail.conf' init && '$SAMAIL' -q -c '$dir/samail.conf' feed add '$feed' --name large"
measure sa "$SAMAIL" -c "$dir/samail.conf" feed fetch large
SETUP=""
stored=$(grep -o '[0-9]* items, [0-9]* new' "$dir/out" || true)

ratio=$(awk -v a="$sa_s" -v b="$xl_s" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
row() { awk -v n="$1" -v s="$2" -v kb="$3" -v mb="$mb" 'BEGIN {
	printf "  %-34s %6.2f s %8.1f MB/s %8.1f MB peak RSS\n", n, s, (s > 0 ? mb / s : 0), kb / 1024 }'; }
echo "bench-feed: ${mb} MB RSS 1.0 feed, $items items"
row "xmllint --noout --stream" "$xl_s" "$xl_kb"
[ -n "$parse_s" ] && row "lib/feed parse only" "$pa_s" "$pa_kb"
row "samail feed fetch (parse+tag+store)" "$sa_s" "$sa_kb"
echo "  samail: $stored; time ${ratio}x xmllint (target <= 3x), peak $(( sa_kb / 1024 )) MB (target < 64 MB)"
fail=0
awk -v r="$ratio" 'BEGIN { exit !(r <= 3.0) }' || { echo "  MISSED the time target (load average: $(cut -d' ' -f1-3 /proc/loadavg))"; fail=1; }
[ "$sa_kb" -lt 65536 ] || { echo "  MISSED the memory target"; fail=1; }
[ "$fail" = 0 ] && echo "  targets met"
[ "${BENCH_STRICT:-0}" = 1 ] && exit $fail
exit 0
