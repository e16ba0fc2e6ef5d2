#!/bin/sh
# smtp-bench.sh [MESSAGES] [BODY_BYTES] [ROUNDS] — samail's SMTP engine next to
# Postfix's smtp-source, both sending to smtp-sink on loopback, with 1 and
# 8 connections, each connection reused for many messages (smtp-source -d).
# Prints messages/s, CPU per message and the ratio, each the median of
# ROUNDS (default 3) runs taken in turn (a loaded 2-core box is noisy).  Needs `make` first
# (links build/libsamail.a) and postfix installed (smtp-sink, smtp-source).
set -eu
cd "$(dirname "$0")/../.."
N=${1:-20000}
SIZE=${2:-20480}
ROUNDS=${3:-3}
BUILD=${BUILD:-build}
SINK=/usr/sbin/smtp-sink
SOURCE=/usr/sbin/smtp-source
for t in $SINK $SOURCE /usr/bin/time; do
	[ -x "$t" ] || { echo "smtp-bench: $t missing (apt-get install postfix time)" >&2; exit 77; }
done
[ -f "$BUILD/libsamail.a" ] || { echo "smtp-bench: run make first" >&2; exit 1; }

tmp=$(mktemp -d)
sinkpid=
cleanup() { [ -n "$sinkpid" ] && kill "$sinkpid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

${CC:-cc} -O2 -std=c17 -D_GNU_SOURCE -Ilib -o "$tmp/smtp-bench" \
	tests/bench/smtp-bench.c "$BUILD/libsamail.a" \
	$(pkg-config --libs libcurl) -lpthread

# A free loopback port for the sink.
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
user=$(id -un)
[ "$user" = root ] && user=nobody
$SINK -u "$user" 127.0.0.1:"$port" 1000 &
sinkpid=$!
sleep 0.5

# smtp-source: messages/s and CPU per message from /usr/bin/time.
source_run() {
	/usr/bin/time -f '%e %U %S' -o "$tmp/time" \
		$SOURCE -d -s "$1" -m "$N" -l "$SIZE" -M bench.example.org \
		-f bench@example.org -t user@example.com 127.0.0.1:"$port"
	awk -v n="$N" '{ printf "%.0f %.0f %.2f\n", n / $1, ($2 + $3) * 1e6 / n, $1 }' "$tmp/time"
}

samail_run() {
	"$tmp/smtp-bench" "smtp://127.0.0.1:$port" "$N" "$1" "$SIZE" |
		sed -n 's/.*wall \([0-9.]*\) s rate \([0-9]*\) msg\/s .*(\([0-9]*\) us\/msg).*/\2 \3 \1/p'
}

# median of column $1 over the lines in file $2
median() { sort -n -k"$1" "$2" | awk -v c="$1" '{ v[NR] = $c } END { print v[int((NR + 1) / 2)] }'; }

printf '%-6s %-12s %10s %12s %8s %7s\n' conns sender msg/s cpu_us/msg wall_s ratio
for c in 1 8; do
	: > "$tmp/src"; : > "$tmp/sam"
	r=0
	while [ $r -lt "$ROUNDS" ]; do
		source_run $c >> "$tmp/src"
		samail_run $c >> "$tmp/sam"
		r=$((r + 1))
	done
	sr=$(median 1 "$tmp/src"); sc=$(median 2 "$tmp/src"); sw=$(median 3 "$tmp/src")
	mr=$(median 1 "$tmp/sam"); mc=$(median 2 "$tmp/sam"); mw=$(median 3 "$tmp/sam")
	printf '%-6s %-12s %10s %12s %8s\n' "$c" smtp-source "$sr" "$sc" "$sw"
	printf '%-6s %-12s %10s %12s %8s %7s\n' "$c" samail "$mr" "$mc" "$mw" \
		"$(awk -v a="$mr" -v b="$sr" 'BEGIN { printf "%.2fx", a / b }')"
done
