#!/bin/sh
# tests/bench/bench-send.sh [SAMAIL] — `samail send` delivering 20,000 queued
# newsletter messages to Postfix's smtp-sink on loopback with 1 and with 8
# connections, next to Postfix's own smtp-source sending messages of the
# same size with the same number of sessions.  Prints messages/s, the ratio
# (target at 8 connections: >= 0.7x smtp-source) and the client's CPU per
# message.  samail's figure is the whole product path: claim and commit in
# flight, render the message, hand it over, record the outcome.
# It runs three times: reminders (about 23 KB on average as the sink
# counts them, an .ics attached: the issue's "about 20 KB"), a newsletter
# with few advisories (about 31 KB, the smallest our newsletter gets) and a
# full one (60 advisories, about 57 KB, what declarers really get).
# Environment: BENCH_MESSAGES (default 20000), BENCH_RUNS (what to run:
# "reminder" and newsletters' advisory counts, default "reminder 5 60"),
# BENCH_DIR.
set -eu
cd "$(dirname "$0")/../.."
SAMAIL=${1:-${SAMAIL:-build/samail}}
n=${BENCH_MESSAGES:-20000}
runs=${BENCH_RUNS:-reminder 5 60}
SINK=/usr/sbin/smtp-sink
SOURCE=/usr/sbin/smtp-source
for t in $SINK $SOURCE /usr/bin/time; do
	[ -x "$t" ] || { echo "bench-send: $t missing (make deps)" >&2; exit 77; }
done
dir=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/samail-bench-send.XXXXXX")}
sinkpid=
trap '[ -n "$sinkpid" ] && kill $sinkpid 2>/dev/null; rm -rf "$dir"' EXIT
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
user=$(id -un); [ "$user" = root ] && user=nobody
$SINK -u "$user" 127.0.0.1:"$port" 1000 &
sinkpid=$!

cat > "$dir/c.conf" <<CONF
[database]
path = $dir/s.db
[mail]
from = samail ベンチ <news@example.jp>
transport = smtp://127.0.0.1:$port
[feeds]
allow_local_files = yes
seed = $dir/feeds.conf
[smtp]
max_connections = 1
CONF
: > "$dir/feeds.conf"
S="$SAMAIL -q -c $dir/c.conf"
/usr/bin/python3 tests/bench/gen-declarers.py "$n" "$dir/d.csv"

prepare() {	# reminder | ADVISORIES: a fresh store with n messages queued
	rm -f "$dir"/s.db*
	$S init
	if [ "$1" = reminder ]; then
		# Every declarer last assessed on 2025-12-01: the self-diagnosis
		# is due on 2026-12-01, its 30-days-before reminder on 2026-11-01.
		/usr/bin/python3 -c 'import csv, sys
r = csv.reader(open(sys.argv[1], encoding="utf-8"))
w = csv.writer(open(sys.argv[2], "w", newline="", encoding="utf-8"), lineterminator="\r\n")
h = next(r); w.writerow(h); a = h.index("assessed")
for row in r:
    row[a] = "2025-12-01"; w.writerow(row)' "$dir/d.csv" "$dir/r.csv"
		$S subscriber import "$dir/r.csv"
		$S --now 2026-11-01T00:00:00Z remind build
		return
	fi
	$S subscriber import "$dir/d.csv"
	/usr/bin/python3 tests/bench/gen-advisories.py "$1" 2026-10 "$dir/adv.rdf"
	$S feed add "$dir/adv.rdf" --name bench-jvn
	$S feed fetch
	$S --now 2026-11-01T00:00:00Z newsletter build --period 2026-10
}

# The sink's own CPU time (clock ticks): smtp-sink is one process, and
# what it spends on each message bounds both clients.  What it read
# (rchar) gives the size of what samail really sent: the messages differ
# per declarer (their products' advisories), so one preview is not it.
hz=$(getconf CLK_TCK)
sink_ticks() { awk '{ print $14 + $15 }' /proc/$sinkpid/stat; }
sink_rchar() { sed -n 's/^rchar: //p' /proc/$sinkpid/io; }

samail_run() {	# connections
	sed -i "s/^max_connections = .*/max_connections = $1/" "$dir/c.conf"
	sqlite3 "$dir/s.db" "UPDATE outbox SET state = 'queued', attempts = 0, next_try = NULL, sent_at = NULL"
	k0=$(sink_ticks) r0=$(sink_rchar)
	/usr/bin/time -f '%e %U %S %M' -o "$dir/t" $S --now 2026-11-01T00:00:00Z send
	k1=$(sink_ticks) r1=$(sink_rchar)
	sent=$(sqlite3 "$dir/s.db" "SELECT count(*) FROM outbox WHERE state = 'sent'")
	[ "$sent" = "$n" ] || { echo "bench-send: only $sent of $n sent" >&2; exit 1; }
	# The average message, less about 60 bytes of envelope commands (an
	# estimate, as in bench-run: the two clients' envelopes differ a little).
	awk -v n="$n" -v k=$((k1 - k0)) -v hz="$hz" -v b=$((r1 - r0)) '{
	    printf "%.0f %.0f %.1f %.0f %d\n", n / $1, ($2 + $3) * 1e6 / n,
	    $4 / 1024, k * 1e6 / hz / n, b / n - 60 }' "$dir/t"
}
source_run() {
	k0=$(sink_ticks) r0=$(sink_rchar)
	/usr/bin/time -f '%e %U %S' -o "$dir/t" $SOURCE -d -s "$1" -m "$n" -l "$size" \
		-M bench.example.org -f bench@example.org -t user@example.com 127.0.0.1:"$port"
	k1=$(sink_ticks) r1=$(sink_rchar)
	awk -v n="$n" -v k=$((k1 - k0)) -v hz="$hz" -v b=$((r1 - r0)) '{
	    printf "%.0f %.0f %.0f %d\n", n / $1, ($2 + $3) * 1e6 / n,
	    k * 1e6 / hz / n, b / n - 60 }' "$dir/t"
}
for a in $runs; do
	prepare "$a"
	case $a in
	reminder) what="reminder messages (an .ics attached)" ;;
	*) what="newsletter messages ($a advisories)" ;;
	esac
	printf '\nsamail send: %d %s to smtp-sink, vs smtp-source\n' "$n" "$what"
	printf '%-6s %14s %12s %11s %14s %12s %11s %7s %9s\n' conns samail_msg/s \
	    cpu_us/msg sink_us/msg source_msg/s cpu_us/msg sink_us/msg ratio peak_MB
	for c in 1 8; do
		read -r sm su smb sk size <<EOF2
$(samail_run $c)
EOF2
		read -r pm pu pk psize <<EOF2
$(source_run $c)
EOF2
		awk -v c="$c" -v sm="$sm" -v su="$su" -v pm="$pm" -v pu="$pu" \
		    -v mb="$smb" -v sk="$sk" -v pk="$pk" 'BEGIN { printf \
		    "%-6s %14d %12d %11d %14d %12d %11d %6.2fx %9.1f\n", c, sm, su, sk,
		    pm, pu, pk, sm / pm, mb }'
	done
	echo "(the sink read $size bytes a message from samail, $psize from smtp-source)"
done
echo "target: >= 0.70x smtp-source at 8 connections"
echo "(cpu_us/msg: the client's CPU time per message; sink_us/msg: smtp-sink's,"
echo " one process sharing the 2 cores, with the loopback TCP work the kernel"
echo " charges to it, for the same messages from that client)"
