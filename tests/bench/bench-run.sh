#!/bin/sh
# tests/bench/bench-run.sh [SAMAIL] — the whole monthly job: `samail run
# monthly` for 300,000 generated declarers (realistic product mixes and
# dates), 200 advisories served over HTTP from loopback (tests/tools/
# httpd.py), mail to Postfix's smtp-sink with 8 connections.  Prints the
# time of each step (fetch, remind, newsletter, send), the whole run,
# messages/s and peak memory (/usr/bin/time %M), at a tenth of the
# declarers and at the full count, next to the targets: the whole run
# within 90 s on a 2-core machine, memory flat in the declarer count and
# under 100 MB.  Then the peer: Postfix's smtp-source sending as many
# messages of the run's average size (what the sink read) to the same sink
# with 8 sessions, the floor that sink puts under any sender.
# Reports misses; exits 1 on a miss only with BENCH_STRICT=1.
# Environment: BENCH_DECLARERS (default 300000), BENCH_DIR (a temp dir).
set -eu
cd "$(dirname "$0")/../.."
SRC=$PWD
SAMAIL=${1:-${SAMAIL:-build/samail}}
SAMAIL=$(cd "$(dirname "$SAMAIL")" && pwd)/$(basename "$SAMAIL")
n=${BENCH_DECLARERS:-300000}
PY=/usr/bin/python3
SINK=/usr/sbin/smtp-sink
NOW=2026-11-01T00:00:00Z
for t in $SINK /usr/bin/time sqlite3; do
	command -v "$t" >/dev/null || { echo "bench-run: $t missing (make deps)" >&2; exit 77; }
done
$PY -c 1 2>/dev/null || { echo "bench-run: $PY missing" >&2; exit 77; }
dir=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/samail-bench-run.XXXXXX")}
pids=""
trap 'for p in $pids; do kill $p 2>/dev/null; done; rm -rf "$dir"' EXIT
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The relay: smtp-sink accepting everything, up to 1000 sessions.
sport=$(free_port)
user=$(id -un); [ "$user" = root ] && user=nobody
$SINK -u "$user" 127.0.0.1:"$sport" 1000 &
sinkpid=$!
pids="$pids $sinkpid"
# The feed: 200 advisories of October 2026, over HTTP.
mkdir -p "$dir/www"
$PY tests/bench/gen-advisories.py 200 2026-10 "$dir/www/jvn.rdf"
$PY tests/tools/httpd.py --root "$dir/www" --port 0 --port-file "$dir/hport" \
	--log /dev/null &
pids="$pids $!"
i=0
while [ ! -s "$dir/hport" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
hport=$(cat "$dir/hport")

# run COUNT: set up a fresh database of COUNT declarers, run the monthly
# job, and leave its figures in R_* variables.
run() {
	count=$1 w=$dir/w
	rm -rf "$w"; mkdir -p "$w"
	cat > "$w/c.conf" <<CONF
[database]
path = $w/s.db
[mail]
from = SECURITY ACTION 事務局 <news@example.jp>
transport = smtp://127.0.0.1:$sport
[smtp]
max_connections = 8
[feeds]
seed = $w/feeds.conf
CONF
	printf '[bench-jvn]\nurl = http://127.0.0.1:%s/jvn.rdf\n' "$hport" > "$w/feeds.conf"
	S="$SAMAIL -c $w/c.conf"
	$S -q init
	$PY tests/bench/gen-declarers.py "$count" "$w/d.csv"
	/usr/bin/time -f "%e" -o "$w/t.import" $S -q subscriber import "$w/d.csv"
	R_IMPORT=$(cat "$w/t.import")
	sqlite3 "$w/s.db" "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
	sync
	# What the sink reads (the messages and the commands) and the CPU it
	# spends: the peer below sends the same bytes.
	rchar0=$(sed -n 's/^rchar: //p' /proc/$sinkpid/io)
	ticks0=$(awk '{ print $14 + $15 }' /proc/$sinkpid/stat)
	/usr/bin/time -f "%e %M %U %S" -o "$w/t.run" \
		$S --now $NOW run monthly > "$w/run.out" 2> "$w/run.err" || {
		rc=$?
		# 75 (some deferred) would still be a run; anything else is not.
		[ $rc = 75 ] || { echo "bench-run: samail run monthly exited $rc:" >&2;
			tail -n 20 "$w/run.err" "$w/run.out" >&2; exit 1; }
	}
	read -r R_WALL R_KB R_USER R_SYS < "$w/t.run"
	R_BYTES=$(( $(sed -n 's/^rchar: //p' /proc/$sinkpid/io) - rchar0 ))
	R_SINKCPU=$(( $(awk '{ print $14 + $15 }' /proc/$sinkpid/stat) - ticks0 ))
	for step in fetch remind newsletter send; do
		v=$(sed -n "s/.* info $step: done in \([0-9.]*\) s, exit.*/\1/p" "$w/run.err")
		eval "R_$step=\${v:-?}"
	done
	R_SENT=$(sqlite3 "$w/s.db" "SELECT count(*) FROM outbox WHERE state = 'sent'")
	R_NL=$(sqlite3 "$w/s.db" "SELECT count(*) FROM outbox o JOIN campaign c ON c.id = o.campaign_id WHERE c.kind = 'newsletter'")
	R_RM=$(sqlite3 "$w/s.db" "SELECT count(*) FROM outbox o JOIN campaign c ON c.id = o.campaign_id WHERE c.kind = 'reminder'")
	R_ADV=$(sqlite3 "$w/s.db" "SELECT count(*) FROM advisory")
	R_QUEUED=$(sqlite3 "$w/s.db" "SELECT count(*) FROM outbox")
	[ "$R_SENT" = "$R_QUEUED" ] || { echo "bench-run: $R_SENT of $R_QUEUED sent" >&2; sed -n '/^samail run/,$p' "$w/run.out" >&2; exit 1; }
	[ "$R_NL" = "$count" ] || { echo "bench-run: $R_NL newsletters for $count declarers" >&2; exit 1; }
	R_SUMMARY=$(sed -n '/^samail run/,$p' "$w/run.out")
}

small=$((n / 10))
run "$small"
s_wall=$R_WALL s_kb=$R_KB s_sent=$R_SENT s_send=$R_send
run "$n"

echo "samail run monthly: $n declarers, $R_ADV advisories over HTTP, smtp-sink with 8 connections"
echo "$R_SUMMARY" | sed 's/^/  | /'
awk -v n="$n" -v m="$small" -v wall="$R_WALL" -v kb="$R_KB" -v u="$R_USER" \
    -v sy="$R_SYS" -v f="$R_fetch" -v r="$R_remind" -v nl="$R_newsletter" \
    -v sd="$R_send" -v sent="$R_SENT" -v nls="$R_NL" -v rms="$R_RM" \
    -v imp="$R_IMPORT" -v swall="$s_wall" -v skb="$s_kb" -v ssent="$s_sent" \
    -v ssend="$s_send" 'BEGIN {
	printf "  %-34s %8s\n", "step", "seconds"
	printf "  %-34s %8.2f\n", "fetch (200 advisories, HTTP)", f
	printf "  %-34s %8.2f\n", "remind (" rms " reminders queued)", r
	printf "  %-34s %8.2f\n", "newsletter (" nls " queued)", nl
	printf "  %-34s %8.2f   %.0f messages/s\n", "send (" sent " messages)", sd, sent / sd
	printf "  %-34s %8.2f   %.0f messages/s end to end; CPU %.1f s user + %.1f s sys\n", "whole run", wall, sent / wall, u, sy
	printf "  peak memory: %.1f MB at %d declarers, %.1f MB at %d (ratio %.2f)\n", kb / 1024, n, skb / 1024, m, kb / skb
	printf "  at %d: whole run %.2f s, send %.0f messages/s\n", m, swall, ssent / ssend
	printf "  (setup, not in the run: importing the CSV took %.1f s)\n", imp
}'
# The peer: Postfix's smtp-source, which does nothing but send, pushing the
# same number of messages of the same average size into the same sink
# with the same 8 sessions.  Its time is what the sink alone allows.
size=$((R_BYTES / R_SENT - 60))	# less the envelope commands
/usr/bin/time -f '%e %U %S' -o "$dir/t.source" /usr/sbin/smtp-source -d -s 8 \
	-m "$R_SENT" -l "$size" -M bench.example.org -f bench@example.org \
	-t user@example.com 127.0.0.1:"$sport"
awk -v sd="$R_send" -v sent="$R_SENT" -v size="$size" -v hz="$(getconf CLK_TCK)" \
    -v sk="$R_SINKCPU" '{
	printf "  peer: smtp-source sending %d messages of %d bytes (the run'"'"'s average) to\n", sent, size
	printf "        the same sink, 8 sessions: %.2f s (%.0f messages/s); samail'"'"'s send step\n", $1, sent / $1
	printf "        took %.2f s (%.2fx its speed); smtp-sink spent %.0f us of CPU per message of ours\n", sd, $1 / sd, sk * 1e6 / hz / sent
}' "$dir/t.source"
fail=0
awk -v w="$R_WALL" 'BEGIN { exit !(w <= 90) }' && echo "  time target (<= 90 s): met" ||
	{ echo "  time target (<= 90 s): MISSED ($R_WALL s; load average $(cut -d' ' -f1-3 /proc/loadavg))"; fail=1; }
[ "$R_KB" -lt 102400 ] && echo "  memory target (< 100 MB): met" ||
	{ echo "  memory target (< 100 MB): MISSED"; fail=1; }
# Flat: ten times the declarers may not cost more than half as much memory
# again (the rest is libraries, caches and the 8 connections).
awk -v a="$R_KB" -v b="$s_kb" 'BEGIN { exit !(a <= 1.5 * b) }' &&
	echo "  memory flat in the declarer count (<= 1.5x at 10x the declarers): met" ||
	{ echo "  memory flat in the declarer count: MISSED"; fail=1; }
[ "${BENCH_STRICT:-0}" = 1 ] && exit $fail
exit 0
