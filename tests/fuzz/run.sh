#!/bin/sh
# tests/fuzz/run.sh SECONDS — build every tests/fuzz/fuzz_*.c as a
# libFuzzer target (clang, ASan + UBSan) and fuzz each for SECONDS.
#
# Each target links the library sources (lib/*.c) compiled with the same
# instrumentation.  Seeds: tests/fuzz/corpus/<target>/ if present, plus
# the feed fixtures for fuzz_feed*, the bounce fixtures for fuzz_bounce,
# docs/examples/*.csv for fuzz_csv, docs/samail.conf.example for
# fuzz_config; dictionary: tests/fuzz/<x>.dict for
# fuzz_<x>.c if present.  Targets run from the source root (fuzz_csv
# reads feeds/products.conf, fuzz_httpd serves templates/) and keep
# their scratch files under $TMPDIR.  New corpus entries go to
# build/fuzz/corpus/<target>/ (not committed); crashes to
# build/fuzz/crashes/<target>/ and make the script fail.
set -u
secs=${1:-60}
cd "$(dirname "$0")/../.." || exit 1
CC=${FUZZ_CC:-clang}
command -v "$CC" >/dev/null || { echo "fuzz: $CC not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
out=build/fuzz
mkdir -p "$out/obj"
PKGS="libcurl libxml-2.0 sqlite3 libical gmime-3.0 inih libmicrohttpd libcrypto jansson libidn2"
CFLAGS="-g -O1 -std=c17 -D_GNU_SOURCE -DSAMAIL_VERSION=\"fuzz\" -DSAMAIL_DATADIR=\".\" -DSAMAIL_SYSCONFDIR=\".\" -Ilib $(pkg-config --cflags $PKGS) -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
LIBS="$(pkg-config --libs $PKGS) -lcsv -lpthread -lm"

# The library, instrumented, once.
objs=""
for src in lib/*.c; do
	obj=$out/obj/$(basename "$src" .c).o
	if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$0" -nt "$obj" ]; then
		$CC $CFLAGS -c "$src" -o "$obj" || exit 1
	fi
	objs="$objs $obj"
done

fail=0
for t in tests/fuzz/fuzz_*.c; do
	[ -f "$t" ] || continue
	name=$(basename "$t" .c)
	bin=$out/$name
	$CC $CFLAGS -fsanitize=fuzzer "$t" $objs -o "$bin" $LIBS || exit 1
	corpus=$out/corpus/$name
	crashes=$out/crashes/$name
	mkdir -p "$corpus" "$crashes"
	seeds=""
	[ -d "tests/fuzz/corpus/$name" ] && seeds="tests/fuzz/corpus/$name"
	case $name in
	fuzz_feed*)
		# The fixtures, small enough to mutate (not the generator).
		for f in tests/data/feeds/*.rdf tests/data/feeds/*.xml \
		    tests/data/feeds/*.atom feeds/samples/*.rdf; do
			[ -f "$f" ] && cp -n "$f" "$corpus/" 2>/dev/null
		done ;;
	fuzz_ical) cp tests/data/msg/*.ics "$corpus"/ 2>/dev/null || true ;;
	fuzz_bounce) cp tests/data/bounces/*.eml "$corpus"/ 2>/dev/null || true ;;
	fuzz_csv) cp docs/examples/*.csv "$corpus"/ 2>/dev/null || true ;;
	fuzz_config) cp docs/samail.conf.example "$corpus"/ 2>/dev/null || true ;;
	fuzz_msg) printf '%s\0%s\0%s\0%s\0%s\0%s' \
		"【SECURITY ACTION 通信】2024年3月号 今月の脆弱性情報" \
		"SECURITY ACTION 事務局" "山田 太郎 (総務部)" "通信" \
		"2024年3月号" "自社診断リマインダー.ics" > "$corpus/seed-ja"
		printf 'Monthly "news", =?x?= a_b\0Yamada, Taro\0O'"'"'Brien\0L\0v\0a.ics' \
		    > "$corpus/seed-en" ;;
	esac
	# A dictionary, if the target has one: fuzz_feed -> feed.dict.
	dict=tests/fuzz/${name#fuzz_}.dict
	[ -f "$dict" ] || dict=""
	echo "fuzz: $name for ${secs}s"
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
	"$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 \
	    -rss_limit_mb=1024 -print_final_stats=1 \
	    -artifact_prefix="$crashes/" ${dict:+-dict=$dict} \
	    "$corpus" $seeds > "$out/$name.log" 2>&1
	rc=$?
	tail -n 12 "$out/$name.log" | grep -E "stat::|Done|ERROR|SUMMARY" | sed "s/^/fuzz: $name: /"
	if [ $rc -ne 0 ]; then
		echo "fuzz: $name FAILED (exit $rc); see $out/$name.log and $crashes/" >&2
		fail=1
	fi
done
exit $fail
