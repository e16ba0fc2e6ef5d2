#!/bin/sh
# A machine clock that went back between runs: set back by hand, or a
# dead RTC battery before NTP synced (1970, 2001).  A run on such a clock
# would build and mail the newsletter of a month long gone; with no --now
# it does nothing, exits 75 and says why (status too); --accept-clock
# says the clock is right after all.  --now (an admin replaying a day) is
# never refused.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || { echo "no sqlite3"; exit 77; }

write_config </dev/null
sam init >/dev/null 2>&1
sam feed add "$SRCDIR/feeds/samples/jvn.rdf" --name jvn >/dev/null
sam subscriber add --email a@example.jp --org 株式会社テスト --products windows >/dev/null
campaigns() { sqlite3 samail.db "SELECT count(*) FROM campaign"; }
mark() { sqlite3 samail.db "SELECT value FROM meta WHERE key = 'run clock'"; }

expect_exit 0 "a run on the machine's clock" -- sam -q run daily
check "  ... records its clock" -- test -n "$(mark)"
n=$(campaigns)
# The last run's clock was two days ahead of this one: this clock went
# back.
ahead=$($PY -c 'import datetime as d; print((d.datetime.now(d.timezone.utc) + d.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"))')
sqlite3 samail.db "UPDATE meta SET value = '$ahead' WHERE key = 'run clock'"
expect_exit 75 "-q, the clock two days behind the last run's" -- sam -q run daily
check "  ... one line: what is wrong, and both ways out" -- eval \
	'[ "$(wc -l < err)" = 1 ] && grep -q " error run daily: the machine'"'"'s clock says .* JST, more than a day before the last run'"'"'s, .* JST: a clock that went back (NTP not synced yet, a dead RTC battery) would build and send the wrong month'"'"'s mail, so nothing was done; fix the clock (timedatectl, chronyc tracking) and the next run goes on, or, if it is right and that run'"'"'s was wrong: samail run --accept-clock daily$" err'
check "  ... did nothing" -- eval '[ "$(campaigns)" = "$n" ] && [ "$(mark)" = "$ahead" ]'
expect_exit 0 "status" -- sam status
check "  ... shows the run refused" -- eval \
	'tr -s " \n" "  " < out | grep -q "exit 75 (temporary failure, retried later), 0 s not run: the machine.s clock says"'

expect_exit 0 "a run with --now (an admin's replay) is not refused" -- \
	sam -q --now 2026-11-01T00:00:00Z run monthly
expect_exit 0 "run --accept-clock daily" -- sam -q run --accept-clock daily
check "  ... takes this clock as the mark" -- eval '[ "$(mark)" != "$ahead" ]'
sqlite3 samail.db "UPDATE meta SET value = '$ahead' WHERE key = 'run clock'"
expect_exit 0 "run daily --accept-clock (the option after the kind) too" -- \
	sam -q run daily --accept-clock
check "  ... takes this clock as the mark" -- eval '[ "$(mark)" != "$ahead" ]'
expect_exit 64 "run daily --accept-clok: a usage error" -- sam -q run daily --accept-clok
expect_exit 0 "the next run" -- sam -q run daily

# A dead RTC battery: the clock says 2001 (an LD_PRELOAD shim plays it).
if command -v cc >/dev/null; then
	cat > fake.c <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
static long off(void) { const char *s = getenv("FAKE_OFFSET"); return s ? atol(s) : 0; }
int clock_gettime(clockid_t c, struct timespec *ts) {
	static int (*real)(clockid_t, struct timespec *);
	int r;
	if (!real) real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	r = real(c, ts);
	if (r == 0 && (c == CLOCK_REALTIME || c == CLOCK_REALTIME_COARSE)) ts->tv_sec += off();
	return r;
}
time_t time(time_t *t) { struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts); if (t) *t = ts.tv_sec; return ts.tv_sec; }
int gettimeofday(struct timeval *tv, void *tz) { struct timespec ts; (void)tz; clock_gettime(CLOCK_REALTIME, &ts); tv->tv_sec = ts.tv_sec; tv->tv_usec = ts.tv_nsec / 1000; return 0; }
C
	cc -shared -fPIC -o fake.so fake.c -ldl
	# 2001-12-01 00:00 UTC, 09:00 JST: November 2001's newsletter due.
	off=$((1007164800 - $(date +%s)))
	at2001() { env LD_PRELOAD="$T/fake.so" FAKE_OFFSET=$off ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" "$@"; }
	check "the shim plays 2001" -- eval '[ "$(at2001 date -u +%Y)" = 2001 ]'
	rm -f mail/new/*
	expect_exit 75 "-q run monthly on a 2001 clock, a fresh mark" -- at2001 "$SAMAIL" -q -c "$T/samail.conf" run --accept-clock monthly
	expect_exit 75 "-q run monthly on a 2001 clock" -- at2001 "$SAMAIL" -q -c "$T/samail.conf" run monthly
	check "  ... says the clock is before 2025" -- grep -q "the machine's clock says 2001-12-01 09:.. JST, before 2025: a clock that went back" err
	check "  ... builds no newsletter-2001-11, mails nothing" -- eval \
		'[ "$(sqlite3 samail.db "SELECT count(*) FROM campaign WHERE name = '"'"'newsletter-2001-11'"'"'")" = 0 ] && [ -z "$(ls mail/new)" ]'
	# NTP synced: the refused runs' 2001 clock is not when samail began
	# to run, so the months before it was installed are not "missed".
	expect_exit 0 "-q run daily once the clock is right" -- sam -q run daily
	check "  ... warns of no newsletter never built" -- eval \
		'! grep -q "NEVER BUILT" out && ! grep -q "never built" err'
	expect_exit 0 "status" -- sam status
	check "  ... lists no newsletter never built" -- eval '! grep -q "never built" out'
else
	echo "# no cc: the 2001 clock not played"
fi
finish
