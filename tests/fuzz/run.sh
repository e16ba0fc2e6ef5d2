#!/bin/sh
# Build every tests/fuzz/fuzz_*.c with libFuzzer + ASan + UBSan (clang)
# against the library sources, and run each for $1 seconds (default 120)
# from its corpus in build/fuzz/corpus/<name>, seeded from tests/data.
# Exit non-zero if a target crashes; the reproducer is left in build/fuzz/.
set -eu
secs=${1:-120}
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/build/fuzz
mkdir -p "$out"
cd "$top"
pkgs="libcurl libxml-2.0 sqlite3 libical gmime-3.0 inih libmicrohttpd libcrypto jansson"
cflags="-std=c17 -D_GNU_SOURCE -g -O1 -Ilib $(pkg-config --cflags $pkgs)"
libs="$(pkg-config --libs $pkgs) -lcsv -lpthread -lm"
san="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
fail=0
for src in tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	echo "fuzz: building $name"
	# shellcheck disable=SC2086
	clang $cflags $san -o "$out/$name" "$src" lib/*.c $libs
	corpus=$out/corpus/$name
	mkdir -p "$corpus"
	case $name in
	fuzz_ical) cp tests/data/msg/*.ics "$corpus"/ 2>/dev/null || true ;;
	fuzz_msg) printf '%s\0%s\0%s\0%s\0%s\0%s' \
		"【SECURITY ACTION 通信】2024年3月号 今月の脆弱性情報" \
		"SECURITY ACTION 事務局" "山田 太郎 (総務部)" "通信" \
		"2024年3月号" "自社診断リマインダー.ics" > "$corpus/seed-ja"
		printf 'Monthly "news", =?x?= a_b\0Yamada, Taro\0O'"'"'Brien\0L\0v\0a.ics' \
		    > "$corpus/seed-en" ;;
	esac
	echo "fuzz: running $name for ${secs}s"
	if ! (cd "$out" && "./$name" -max_total_time="$secs" \
	    -max_len=65536 -timeout=10 -print_final_stats=1 "$corpus" \
	    > "$out/$name.log" 2>&1); then
		echo "fuzz: $name FAILED, see $out/$name.log" >&2
		fail=1
	else
		grep -E '^stat::number_of_executed_units' "$out/$name.log" || true
	fi
done
exit $fail
