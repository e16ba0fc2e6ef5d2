#!/bin/sh
# tests/bench/bench-newsletter.sh [SAMAIL] — build and send to a maildir a
# newsletter campaign for 300,000 declarers with realistic product mixes
# and 200 advisories (fetched and tagged from a generated JVN-style feed).
# Prints declarers/s for build and for send, database growth per declarer
# and peak memory, at a tenth and at the full count (target: flat in the
# declarer count and under 100 MB).
# Environment: BENCH_DECLARERS (default 300000), BENCH_DIR (a temp dir;
# the maildir needs about 15 GB at 300,000).
set -eu
cd "$(dirname "$0")/../.."
SAMAIL=${1:-${SAMAIL:-build/samail}}
n=${BENCH_DECLARERS:-300000}
dir=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/samail-bench-nl.XXXXXX")}
trap 'rm -rf "$dir"' EXIT
NOW=2026-11-01T00:00:00Z

run() {	# run COUNT -> sets B_S B_KB S_S S_KB GROWTH SIZE
	count=$1
	rm -rf "$dir/w"; mkdir -p "$dir/w"
	cat > "$dir/w/c.conf" <<CONF
[database]
path = $dir/w/s.db
[mail]
from = SECURITY ACTION 事務局 <news@example.jp>
transport = maildir:$dir/w/mail
[feeds]
allow_local_files = yes
seed = $dir/w/feeds.conf
CONF
	: > "$dir/w/feeds.conf"
	S="$SAMAIL -q -c $dir/w/c.conf"
	$S init
	/usr/bin/python3 tests/bench/gen-declarers.py "$count" "$dir/w/d.csv"
	$S subscriber import "$dir/w/d.csv"
	/usr/bin/python3 tests/bench/gen-advisories.py 200 2026-10 "$dir/w/adv.rdf"
	$S feed add "$dir/w/adv.rdf" --name bench-jvn
	$S feed fetch
	sqlite3 "$dir/w/s.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
	before=$(stat -c %s "$dir/w/s.db")
	/usr/bin/time -f "%e %M" -o "$dir/t" $S --now $NOW newsletter build --period 2026-10
	read -r B_S B_KB < "$dir/t"
	sqlite3 "$dir/w/s.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
	after=$(stat -c %s "$dir/w/s.db")
	GROWTH=$(( (after - before) / count ))
	/usr/bin/time -f "%e %M" -o "$dir/t" $S --now $NOW send
	read -r S_S S_KB < "$dir/t"
	got=$(ls "$dir/w/mail/new" | wc -l)
	[ "$got" = "$count" ] || { echo "bench-newsletter: $got messages in the maildir, want $count" >&2; exit 1; }
	SIZE=$(du -sk "$dir/w/mail" | cut -f1)
}

run $((n / 10))
sb=$B_S skb=$B_KB ss=$S_S sskb=$S_KB sg=$GROWTH
run "$n"
awk -v n="$n" -v m="$((n / 10))" -v bs="$B_S" -v bkb="$B_KB" -v ss="$S_S" \
    -v skb="$S_KB" -v g="$GROWTH" -v size="$SIZE" -v sb="$sb" -v sbk="$skb" \
    -v sss="$ss" -v sskb="$sskb" -v sg="$sg" 'BEGIN {
	printf "newsletter for %d declarers, 200 advisories, to a maildir\n", n
	printf "  build: %7.2f s  %8.0f declarers/s  peak %5.1f MB   (at %d: %.0f/s, %.1f MB)\n", bs, n / bs, bkb / 1024, m, m / sb, sbk / 1024
	printf "  send : %7.2f s  %8.0f messages/s   peak %5.1f MB   (at %d: %.0f/s, %.1f MB)\n", ss, n / ss, skb / 1024, m, m / sss, sskb / 1024
	printf "  database growth per declarer: %d bytes (at %d: %d bytes; target <= 1 KB)\n", g, m, sg
	printf "  mail written: %.1f GB, %.1f KB per message\n", size / 1048576, size / n
	printf "  targets: memory flat in the declarer count and under 100 MB\n"
}'
