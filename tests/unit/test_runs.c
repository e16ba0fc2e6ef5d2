/* runs: the newsletter schedule and its catch-up rule, the record of
 * runs, the lock probe, the admin's words; status: the queries. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "date.h"
#include "db.h"
#include "err.h"
#include "lock.h"
#include "runs.h"
#include "status.h"

static time_t
ts(const char *s)
{
	time_t t;

	assert_int_equal(date_parse_timestamp(s, &t, NULL), 0);
	return t;
}

static struct db *
fresh(void)
{
	struct db *db;
	struct err e = ERR_INIT;

	assert_int_equal(db_open(&db, ":memory:", DB_CREATE, 1000, &e), 0);
	assert_true(db_migrate(db, &e) >= 1);
	return db;
}

/* --- the schedule ----------------------------------------------------- */

static void
test_schedule_table(void **state)
{
	static const struct {
		const char	*now;
		int		 day, hour;
		int		 year, month;
		const char	*due;
	} cases[] = {
		/* 09:00 JST on the 1st is 00:00 UTC. */
		{ "2026-11-01T00:00:00Z", 1, 9, 2026, 10, "2026-11-01T00:00:00Z" },
		/* 23:59 UTC on Oct 31 is already Nov 1 in Japan. */
		{ "2026-10-31T15:00:00Z", 1, 9, 2026, 10, "2026-11-01T00:00:00Z" },
		{ "2026-10-31T14:59:59Z", 1, 9, 2026, 9, "2026-10-01T00:00:00Z" },
		/* January: the period is December of the year before. */
		{ "2027-01-15T03:00:00Z", 1, 9, 2026, 12, "2027-01-01T00:00:00Z" },
		/* Day 28, hour 0: midnight JST is 15:00 UTC the day before. */
		{ "2026-02-20T00:00:00Z", 28, 0, 2026, 1, "2026-02-27T15:00:00Z" },
		{ "2026-03-05T00:00:00Z", 5, 23, 2026, 2, "2026-03-05T14:00:00Z" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct runs_schedule s;
		char due[21];

		runs_schedule(ts(cases[i].now), cases[i].day, cases[i].hour, &s);
		date_format_timestamp(s.due, due);
		if (s.year != cases[i].year || s.month != cases[i].month ||
		    strcmp(due, cases[i].due) != 0)
			fail_msg("case %zu (%s): got %04d-%02d due %s, want "
			    "%04d-%02d due %s", i, cases[i].now, s.year, s.month,
			    due, cases[i].year, cases[i].month, cases[i].due);
	}
}

static void
add_campaign(struct db *db, const char *name, const char *created)
{
	struct err e = ERR_INIT;
	sqlite3_stmt *st = db_prepare(db, "INSERT INTO campaign (kind, name, "
	    "period, created) VALUES ('newsletter', ?, '', ?)", &e);

	assert_non_null(st);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, created, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

/* The catch-up rule over a month of runs, some missed: the newsletter is
 * built by the first run at or after the moment, and by no other. */
static void
test_catch_up_once(void **state)
{
	struct db *db = fresh();
	struct err e = ERR_INIT;
	struct runs_schedule s;
	char built[21];
	int builds = 0;

	(void)state;
	/* Daily at 03:30 JST (18:30 UTC the day before); the monthly run of
	 * Nov 1 09:00 JST did not happen; the machine was also off Nov 2. */
	static const char *const runs[] = {
		"2026-10-30T18:30:00Z",		/* Oct 31 03:30 JST */
		"2026-10-31T18:30:00Z",		/* Nov 1 03:30 JST: before 09:00 */
		/* (Nov 1 09:00 monthly missed; Nov 2 daily missed) */
		"2026-11-02T18:30:00Z",		/* Nov 3 03:30 JST: builds */
		"2026-11-03T18:30:00Z",
		"2026-11-04T18:30:00Z",
		"2026-11-30T18:30:00Z",		/* Dec 1 03:30: not yet Dec's */
	};
	static const int want[] = {
		RUNS_NL_BUILT,	/* September's, built in October (below) */
		RUNS_NL_WAIT, RUNS_NL_BUILD, RUNS_NL_BUILT, RUNS_NL_BUILT,
		RUNS_NL_WAIT,
	};

	add_campaign(db, "newsletter-2026-09", "2026-10-01T00:00:00Z");
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		int a = runs_newsletter_action(db, ts(runs[i]), 1, 9, &s, built,
		    &e);

		if (a != want[i])
			fail_msg("run %zu at %s: action %d, want %d", i, runs[i],
			    a, want[i]);
		if (a == RUNS_NL_BUILD) {
			builds++;
			assert_int_equal(s.year, 2026);
			assert_int_equal(s.month, 10);
			add_campaign(db, "newsletter-2026-10", runs[i]);
		}
		if (a == RUNS_NL_BUILT && i >= 3)
			assert_string_equal(built, "2026-11-02T18:30:00Z");
	}
	assert_int_equal(builds, 1);
	db_close(db);
}

/* A month the machine was off entirely: only the newest period is built,
 * never the stale one. */
static void
test_no_stale_period(void **state)
{
	struct db *db = fresh();
	struct err e = ERR_INIT;
	struct runs_schedule s;

	(void)state;
	assert_int_equal(runs_newsletter_action(db, ts("2026-12-03T00:00:00Z"),
	    1, 9, &s, NULL, &e), RUNS_NL_BUILD);
	assert_int_equal(s.year, 2026);
	assert_int_equal(s.month, 11);
	/* Built early by hand: no run says "not due" nor builds it again. */
	add_campaign(db, "newsletter-2026-12", "2027-01-01T00:00:00Z");
	assert_int_equal(runs_newsletter_action(db, ts("2026-12-31T20:00:00Z"),
	    1, 9, &s, NULL, &e), RUNS_NL_BUILT);
	db_close(db);
}

static void
add_run(struct db *db, const char *started, int finished)
{
	struct err e = ERR_INIT;
	sqlite3_stmt *st = db_prepare(db, "INSERT INTO run (kind, started, "
	    "finished, exit_code, summary) VALUES ('daily', ?1, CASE WHEN ?2 "
	    "THEN ?1 END, CASE WHEN ?2 THEN 0 END, CASE WHEN ?2 THEN 'fetch: "
	    "ok\nnewsletter: newsletter-2026-10 NOT built: x' END)", &e);

	assert_non_null(st);
	sqlite3_bind_text(st, 1, started, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, finished);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

struct missed_seen {
	int		 n;
	char		 periods[16][8];
	struct runs_missed last;
};

static int
collect_missed(const struct runs_missed *mi, void *arg)
{
	struct missed_seen *s = arg;

	if (s->n < 16)
		snprintf(s->periods[s->n], 8, "%04d-%02d", mi->year % 10000,
		    mi->month);
	s->n++;
	s->last = *mi;
	return 0;
}

/* The windows: from the due moment to the start of the month after. */
static void
test_window(void **state)
{
	time_t open, close;
	char a[21], b[21];

	(void)state;
	runs_window(2026, 12, 28, 0, &open, &close);
	date_format_timestamp(open, a);
	date_format_timestamp(close, b);
	assert_string_equal(a, "2027-01-27T15:00:00Z");	/* Jan 28 00:00 JST */
	assert_string_equal(b, "2027-01-31T15:00:00Z");	/* Feb 1 00:00 JST */
	runs_window(2026, 11, 1, 9, &open, &close);
	date_format_timestamp(open, a);
	date_format_timestamp(close, b);
	assert_string_equal(a, "2026-12-01T00:00:00Z");
	assert_string_equal(b, "2026-12-31T15:00:00Z");
}

/* Missed periods: those whose window ended unbuilt after samail began to
 * run, not built, not skipped; the reasons in words. */
static void
test_missed(void **state)
{
	struct db *db = fresh();
	struct err e = ERR_INIT;
	struct missed_seen s;
	char why[640];

	(void)state;
	memset(&s, 0, sizeof(s));
	/* No run at all: nothing is missed. */
	assert_int_equal(runs_missed(db, ts("2027-03-01T00:00:00Z"), 1, 9,
	    collect_missed, &s, &e), 0);
	assert_int_equal(s.n, 0);
	/* First run Oct 30; then off until Dec 3. */
	add_run(db, "2026-10-29T21:30:00Z", 1);
	add_campaign(db, "newsletter-2026-09", "2026-10-29T21:30:00Z");
	/* Dec 1 08:00 JST: October's window ended at Dec 1 00:00. */
	assert_int_equal(runs_missed(db, ts("2026-11-30T23:00:00Z"), 1, 9,
	    collect_missed, &s, &e), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.periods[0], "2026-10");
	runs_missed_reason(&s.last, why, sizeof(why));
	assert_string_equal(why, "no run since 2026-10-30 06:30 JST");
	/* Nov 30 23:59 JST: not yet. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(runs_missed(db, ts("2026-11-30T14:59:59Z"), 1, 9,
	    collect_missed, &s, &e), 0);
	assert_int_equal(s.n, 0);
	add_run(db, "2026-12-02T21:30:00Z", 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(runs_missed(db, ts("2026-12-02T21:30:00Z"), 1, 9,
	    collect_missed, &s, &e), 0);
	assert_int_equal(s.n, 1);
	runs_missed_reason(&s.last, why, sizeof(why));
	assert_string_equal(why, "no run between 2026-10-30 06:30 JST and "
	    "2026-12-03 06:30 JST");
	runs_missed_advice(&s.last, why, sizeof(why));
	assert_string_equal(why, "build it with 'samail newsletter build "
	    "--period 2026-10' if it is still wanted, or drop it with 'samail "
	    "newsletter skip --period 2026-10'");
	/* Skipped: no longer missed; nor is a period built by hand. */
	assert_int_equal(runs_skip(db, 2026, 10, ts("2026-12-03T00:00:00Z"),
	    &e), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(runs_missed(db, ts("2026-12-02T21:30:00Z"), 1, 9,
	    collect_missed, &s, &e), 0);
	assert_int_equal(s.n, 0);
	/* Two runs in November's window that could not build it, the last
	 * finished; then March: November, December, January missed (with
	 * day 28, January's window is Feb 28 to Mar 1). */
	add_run(db, "2026-12-10T21:30:00Z", 1);
	add_run(db, "2026-12-11T21:30:00Z", 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(runs_missed(db, ts("2027-03-01T00:00:00Z"), 28, 0,
	    collect_missed, &s, &e), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.periods[0], "2026-11");
	assert_string_equal(s.periods[1], "2026-12");
	assert_string_equal(s.periods[2], "2027-01");
	runs_missed_reason(&s.last, why, sizeof(why));
	assert_string_equal(why, "no run since 2026-12-12 06:30 JST");
	memset(&s, 0, sizeof(s));
	assert_int_equal(runs_missed(db, ts("2027-03-01T00:00:00Z"), 1, 9,
	    collect_missed, &s, &e), 0);
	assert_string_equal(s.periods[0], "2026-11");
	/* November alone: the three runs in its window (Dec 3, 11, 12). */
	{
		struct missed_seen one;

		memset(&one, 0, sizeof(one));
		assert_int_equal(runs_missed(db, ts("2027-01-01T00:00:00Z"), 1,
		    9, collect_missed, &one, &e), 0);
		assert_int_equal(one.n, 1);
		assert_int_equal(one.last.runs_in_window, 3);
		runs_missed_reason(&one.last, why, sizeof(why));
		assert_string_equal(why, "the 3 runs between 2026-12-01 09:00 "
		    "JST and 2027-01-01 00:00 JST did not build it; the last "
		    "one said: newsletter-2026-10 NOT built: x");
	}
	/* Only the last 12 months are looked at. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(runs_missed(db, ts("2028-06-15T00:00:00Z"), 1, 9,
	    collect_missed, &s, &e), 0);
	assert_int_equal(s.n, 12);
	assert_string_equal(s.periods[0], "2027-05");
	assert_string_equal(s.periods[11], "2028-04");
	db_close(db);
}

/* A run refused for its clock (a dead RTC battery: 2001) is recorded at
 * that clock; it does not make the months before samail was installed
 * "missed", nor count as a run in a window it never ran in. */
static void
test_missed_clock_refused(void **state)
{
	struct db *db = fresh();
	struct err e = ERR_INIT;
	struct missed_seen s;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(runs_record(db, "monthly", ts("2001-12-01T00:00:00Z"),
	    ts("2001-12-01T00:00:00Z"), 75, RUNS_CLOCK_REFUSED "2001-12-01 "
	    "09:00 JST, before 2025: ...", &e), 0);
	/* Installed on Nov 27 2026: its first real run builds October's. */
	add_run(db, "2026-11-27T03:00:00Z", 1);
	add_campaign(db, "newsletter-2026-10", "2026-11-27T03:00:00Z");
	assert_int_equal(runs_missed(db, ts("2026-11-27T04:00:00Z"), 1, 9,
	    collect_missed, &s, &e), 0);
	assert_int_equal(s.n, 0);
	/* Two days back, in November's window: not a run in it. */
	assert_int_equal(runs_record(db, "daily", ts("2026-12-29T21:30:00Z"),
	    ts("2026-12-29T21:30:00Z"), 75, RUNS_CLOCK_REFUSED "2026-12-30 "
	    "06:30 JST, more than a day before ...", &e), 0);
	assert_int_equal(runs_missed(db, ts("2027-01-01T00:00:00Z"), 1, 9,
	    collect_missed, &s, &e), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.periods[0], "2026-11");
	assert_int_equal(s.last.runs_in_window, 0);
	db_close(db);
}

static void
test_format_jst(void **state)
{
	char out[24];

	(void)state;
	runs_format_jst(ts("2026-10-31T15:30:00Z"), out);
	assert_string_equal(out, "2026-11-01 00:30 JST");
	runs_format_jst(ts("2026-11-01T00:00:00Z"), out);
	assert_string_equal(out, "2026-11-01 09:00 JST");
}

/* --- the record of runs ----------------------------------------------- */

struct seen {
	int		 n;
	char		 kind[4][16];
	int		 exit[4];
	int		 interrupted[4];
	int		 finished[4];
	char		 last_ok[4][24];
	char		 summary[4][256];
};

static int
collect_run(const struct status_run *r, void *arg)
{
	struct seen *s = arg;

	if (s->n == 4)
		return 1;
	snprintf(s->kind[s->n], sizeof(s->kind[0]), "%s", r->kind);
	s->exit[s->n] = r->exit_code;
	s->interrupted[s->n] = r->interrupted;
	s->finished[s->n] = r->finished != NULL;
	snprintf(s->last_ok[s->n], sizeof(s->last_ok[0]), "%s",
	    r->last_ok ? r->last_ok : "");
	snprintf(s->summary[s->n], sizeof(s->summary[0]), "%s",
	    r->summary ? r->summary : "");
	s->n++;
	return 0;
}

static void
test_record_runs(void **state)
{
	struct db *db = fresh();
	struct err e = ERR_INIT;
	struct seen s;
	long long a, b, c;

	(void)state;
	a = runs_start(db, "daily", ts("2026-11-01T18:30:00Z"), &e);
	assert_true(a > 0);
	assert_int_equal(runs_finish(db, a, ts("2026-11-01T18:31:00Z"), 0,
	    "fetch: 2 of 2 feeds ok", &e), 0);
	/* A daily run that dies: no finish. */
	b = runs_start(db, "daily", ts("2026-11-02T18:30:00Z"), &e);
	assert_true(b > a);
	memset(&s, 0, sizeof(s));
	assert_int_equal(status_runs(db, collect_run, &s, &e), 0);
	assert_int_equal(s.n, 1);
	assert_false(s.finished[0]);
	assert_false(s.interrupted[0]);	/* running, as far as the row says */
	assert_int_equal(s.exit[0], -1);

	/* The next run (it holds the lock) marks it interrupted. */
	c = runs_start(db, "monthly", ts("2026-11-03T00:00:00Z"), &e);
	assert_true(c > b);
	assert_int_equal(runs_finish(db, c, ts("2026-11-03T00:02:00Z"), 69,
	    "send: relay down", &e), 0);
	assert_int_equal(runs_record(db, "monthly", ts("2026-11-03T00:01:00Z"),
	    ts("2026-11-03T00:02:00Z"), EX_TEMPFAIL, "not run: locked", &e), 0);

	memset(&s, 0, sizeof(s));
	assert_int_equal(status_runs(db, collect_run, &s, &e), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.kind[0], "daily");
	assert_true(s.interrupted[0]);
	assert_false(s.finished[0]);
	assert_int_equal(s.exit[0], -1);
	assert_string_equal(s.last_ok[0], "2026-11-01T18:30:00Z");
	assert_string_equal(s.kind[1], "monthly");
	assert_int_equal(s.exit[1], EX_TEMPFAIL);
	assert_string_equal(s.summary[1], "not run: locked");
	assert_string_equal(s.last_ok[1], "");
	db_close(db);
}

/* --- the lock probe --------------------------------------------------- */

static void
test_lock_holder(void **state)
{
	char dir[] = "/tmp/samail-test-runs.XXXXXX", path[128], lockp[160];
	char holder[128];
	struct lock l = { -1, NULL };
	struct err e = ERR_INIT;
	int p[2];
	pid_t pid;
	char c;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/samail.db", dir);
	snprintf(lockp, sizeof(lockp), "%s.lock", path);
	/* No lock file: nobody runs, and the probe creates nothing. */
	assert_int_equal(runs_lock_holder(path, holder, sizeof(holder), &e), 0);
	assert_int_equal(access(lockp, F_OK), -1);

	/* Held by another process (flock locks are per open file, so a
	 * child holds it for real). */
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct lock cl = { -1, NULL };

		if (lock_take(&cl, path, 0, "run daily", NULL) < 0)
			_exit(1);
		(void)!write(p[1], "x", 1);
		pause();
		_exit(0);
	}
	assert_int_equal(read(p[0], &c, 1), 1);
	assert_int_equal(runs_lock_holder(path, holder, sizeof(holder), &e), 1);
	assert_non_null(strstr(holder, "pid "));
	assert_non_null(strstr(holder, "started "));
	assert_non_null(strstr(holder, "Z, samail run daily"));
	/* ... so taking it fails at once with the holder named. */
	assert_int_equal(lock_take(&l, path, 0, "send", &e), -ERR_LOCKED);
	assert_non_null(strstr(e.msg, holder));

	/* SIGKILL: the kernel drops the lock, nothing is stale. */
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	assert_int_equal(runs_lock_holder(path, holder, sizeof(holder), &e), 0);
	assert_int_equal(lock_take(&l, path, 0, NULL, &e), 0);
	lock_release(&l);
	close(p[0]);
	close(p[1]);
	unlink(lockp);
	rmdir(dir);
}

/* --- words ------------------------------------------------------------ */

static void
test_feed_reason(void **state)
{
	char out[160];
	int again;

	(void)state;
	runs_feed_reason(ERR_NET, 503, "'https://jvn.jp/rss/jvn.rdf': HTTP 503; "
	    "will retry next run", out, sizeof(out), &again);
	assert_string_equal(out, "unreachable (HTTP 503)");
	assert_true(again);
	runs_feed_reason(-ERR_NET, 404, "", out, sizeof(out), &again);
	assert_non_null(strstr(out, "gone (HTTP 404)"));
	assert_false(again);
	runs_feed_reason(ERR_NET, 0, "'http://127.0.0.1:9/': cannot connect "
	    "(Connection refused); will retry next run", out, sizeof(out),
	    &again);
	assert_string_equal(out, "unreachable (cannot connect)");
	assert_true(again);
	runs_feed_reason(ERR_NET, 0, "'x': no complete answer within 60 s "
	    "(timeout); will retry next run", out, sizeof(out), NULL);
	assert_string_equal(out, "unreachable (no answer in time)");
	runs_feed_reason(ERR_PARSE, 200, "line 3: bad XML", out, sizeof(out),
	    &again);
	assert_string_equal(out, "malformed, nothing stored");
	assert_true(again);
	runs_feed_reason(ERR_TOOBIG, 200, "", out, sizeof(out), &again);
	assert_false(again);
	/* The database, not the feed: said in words, not "locked error". */
	runs_feed_reason(-ERR_LOCKED, 200, "sql: database 'x' is busy", out,
	    sizeof(out), &again);
	assert_string_equal(out, "not stored (the database was busy)");
	assert_true(again);
	runs_feed_reason(ERR_DB, 200, "", out, sizeof(out), &again);
	assert_string_equal(out, "not stored (database error: see the message "
	    "above)");
	assert_false(again);
	/* Short buffers are cut, never overrun. */
	runs_feed_reason(ERR_NET, 503, "", out, 8, NULL);
	assert_int_equal(strlen(out), 7);
}

static void
test_reason_key(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "550 5.1.1 <user1@example.jp>: Recipient address rejected: "
		  "User unknown", "550 5.1.1 Recipient address rejected: User "
		  "unknown" },
		{ "gave up after 3 attempts: 450 4.2.0 user2@example.jp: "
		  "mailbox busy", "450 4.2.0 mailbox busy" },
		{ "451   4.3.0    try   later  ", "451 4.3.0 try later" },
		{ "no SMTP relay accepted", "no SMTP relay accepted" },
		{ "554 5.7.1 <a@b>", "554 5.7.1" },
		{ "", "" },
	};
	char out[160];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		runs_reason_key(cases[i].in, out, sizeof(out));
		if (strcmp(out, cases[i].want) != 0)
			fail_msg("case %zu: '%s' -> '%s', want '%s'", i,
			    cases[i].in, out, cases[i].want);
	}
	/* Two recipients' replies become one key. */
	{
		char a[160], b[160];

		runs_reason_key("550 5.1.1 <x@example.jp>: unknown", a, sizeof(a));
		runs_reason_key("550 5.1.1 <yy@example.org>: unknown", b, sizeof(b));
		assert_string_equal(a, b);
	}
	/* Cut at a character boundary: 日本 is 6 bytes; 5 do not fit it. */
	runs_reason_key("日本語", out, 6);
	assert_string_equal(out, "日");
	runs_reason_key("日本語", out, 7);
	assert_string_equal(out, "日本");
}

static void
test_exit_meaning(void **state)
{
	(void)state;
	assert_string_equal(runs_exit_meaning(69), "relay or feed unavailable");
	assert_string_equal(runs_exit_meaning(75),
	    "temporary failure, retried later");
	assert_string_equal(runs_exit_meaning(0), "ok");
	assert_string_equal(runs_exit_meaning(12), "unexpected exit status");
}

/* --- status queries --------------------------------------------------- */

struct camps {
	int	n;
	char	name[4][32];
	long	count[4][ST__N];
	struct status_reason reasons[4][STATUS_MAX_REASONS];
	size_t	nreasons[4];
};

static int
collect_campaign(const struct status_campaign *c, void *arg)
{
	struct camps *s = arg;

	snprintf(s->name[s->n], sizeof(s->name[0]), "%s", c->name);
	memcpy(s->count[s->n], c->count, sizeof(c->count));
	memcpy(s->reasons[s->n], c->reasons, sizeof(c->reasons));
	s->nreasons[s->n] = c->nreasons;
	s->n++;
	return 0;
}

static void
test_campaign_counts(void **state)
{
	struct db *db = fresh();
	struct err e = ERR_INIT;
	struct camps s;

	(void)state;
	assert_int_equal(db_exec(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION "
	    "ALL SELECT i + 1 FROM n WHERE i < 9) INSERT INTO subscriber (id, "
	    "email, org, created, updated) SELECT i, 's' || i || '@x.jp', 'S', "
	    "'x', 'x' FROM n", &e), 0);
	assert_int_equal(db_exec(db,
	    "INSERT INTO campaign (id, kind, name, created) VALUES "
	    " (1, 'newsletter', 'newsletter-2026-08', '2026-09-01T00:00:00Z'),"
	    " (2, 'newsletter', 'newsletter-2026-09', '2026-10-01T00:00:00Z'),"
	    " (3, 'reminder', 'reminder-2026-10-20', '2026-10-20T00:00:00Z');"
	    "INSERT INTO outbox (campaign_id, subscriber_id, rcpt, state, "
	    " queued_at, last_error) VALUES"
	    " (1, 1, 'a@x.jp', 'sent', 'x', NULL),"
	    " (2, 1, 'a@x.jp', 'sent', 'x', NULL),"
	    " (2, 2, 'b@x.jp', 'failed', 'x', '550 5.1.1 <b@x.jp>: unknown'),"
	    " (2, 3, 'c@x.jp', 'failed', 'x', '550 5.1.1 <c@x.jp>: unknown'),"
	    " (2, 4, 'd@x.jp', 'failed', 'x', '554 5.7.1 spam'),"
	    " (2, 5, 'e@x.jp', 'deferred', 'x', '451 4.3.0 later'),"
	    " (2, 6, 'f@x.jp', 'cancelled', 'x', 'the declarer is no longer active'),"
	    " (3, 1, 'a@x.jp', 'queued', 'x', NULL),"
	    " (3, 2, 'b@x.jp', 'inflight', 'x', NULL);", &e), 0);

	/* Recent (since Oct 1) or with work left: 09 and the reminder, not 08. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(status_campaigns(db, "2026-10-01T00:00:00Z",
	    collect_campaign, &s, &e), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.name[0], "reminder-2026-10-20");
	assert_int_equal(s.count[0][ST_QUEUED], 1);
	assert_int_equal(s.count[0][ST_INFLIGHT], 1);
	assert_string_equal(s.name[1], "newsletter-2026-09");
	assert_int_equal(s.count[1][ST_SENT], 1);
	assert_int_equal(s.count[1][ST_FAILED], 3);
	assert_int_equal(s.count[1][ST_DEFERRED], 1);
	assert_int_equal(s.count[1][ST_CANCELLED], 1);
	/* Top reasons: the two 5.1.1s as one, then the others. */
	assert_int_equal(s.nreasons[1], 3);
	assert_int_equal(s.reasons[1][0].count, 2);
	assert_int_equal(s.reasons[1][0].state, ST_FAILED);
	assert_string_equal(s.reasons[1][0].text, "550 5.1.1 unknown");
	assert_int_equal(s.reasons[1][1].count, 1);
	assert_string_equal(s.reasons[1][1].text, "554 5.7.1 spam");
	assert_int_equal(s.reasons[1][2].state, ST_DEFERRED);

	/* An old campaign with work left is shown; --all shows every one. */
	assert_int_equal(db_exec(db, "INSERT INTO outbox (campaign_id, "
	    "subscriber_id, rcpt, state, queued_at) VALUES (1, 9, 'z@x.jp', "
	    "'held', 'x')", &e), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(status_campaigns(db, "2026-10-01T00:00:00Z",
	    collect_campaign, &s, &e), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.name[2], "newsletter-2026-08");
	assert_int_equal(s.count[2][ST_HELD], 1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(status_campaigns(db, NULL, collect_campaign, &s, &e), 0);
	assert_int_equal(s.n, 3);
	db_close(db);
}

static int
count_cb(const void *r, void *arg)
{
	(void)r;
	(*(int *)arg)++;
	return 0;
}

static int
feed_cb(const struct status_feed *f, void *arg)
{
	assert_string_equal(f->name, "down");
	return count_cb(f, arg);
}

static int
addr_cb(const struct status_address *a, void *arg)
{
	assert_true(strcmp(a->email, "b@x.jp") == 0 ||
	    strcmp(a->email, "u@x.jp") == 0);
	return count_cb(a, arg);
}

static int
rem_cb(const struct status_reminder *r, void *arg)
{
	assert_string_equal(r->email, "a@x.jp");
	assert_string_equal(r->due, "2026-12-01");
	assert_int_equal(r->offset, 30);
	return count_cb(r, arg);
}

static void
test_feeds_addresses_reminders(void **state)
{
	struct db *db = fresh();
	struct err e = ERR_INIT;
	long nfeeds = 0;
	int n;

	(void)state;
	assert_int_equal(db_exec(db,
	    "INSERT INTO feed (name, url, failures, last_success, created) VALUES"
	    " ('ok', 'http://a/', 0, '2026-11-02T00:00:00Z', 'x'),"
	    " ('down', 'http://b/', 5, '2026-10-30T00:00:00Z', 'x'),"
	    " ('blip', 'http://c/', 1, '2026-11-01T20:00:00Z', 'x');"
	    "INSERT INTO subscriber (id, email, org, status, status_changed, "
	    " created, updated) VALUES"
	    " (1, 'a@x.jp', 'A', 'active', NULL, 'x', 'x'),"
	    " (2, 'b@x.jp', 'B', 'bounced', '2026-11-01T00:00:00Z', 'x', 'x'),"
	    " (3, 'u@x.jp', 'U', 'unsubscribed', '2026-11-02T00:00:00Z', 'x', 'x'),"
	    " (4, 'o@x.jp', 'O', 'bounced', '2026-10-20T00:00:00Z', 'x', 'x');"
	    "INSERT INTO campaign (id, kind, name, created) VALUES "
	    " (1, 'reminder', 'reminder-2026-11-01', 'x');"
	    "INSERT INTO outbox (id, campaign_id, subscriber_id, rcpt, state, "
	    " queued_at) VALUES (1, 1, 1, 'a@x.jp', 'deferred', 'x'),"
	    " (2, 1, 4, 'o@x.jp', 'sent', 'x');"
	    "INSERT INTO reminder (subscriber_id, kind, due, offset_days, "
	    " outbox_id, created) VALUES (1, 'reassess', '2026-12-01', 30, 1, "
	    " 'x'), (4, 'reassess', '2026-12-01', 30, 2, 'x');", &e), 0);
	n = 0;
	/* Failing for more than a day at Nov 2 12:00: 'down' only. */
	assert_int_equal(status_failing_feeds(db, "2026-11-01T12:00:00Z",
	    feed_cb, &n, &nfeeds, &e), 0);
	assert_int_equal(n, 1);
	assert_int_equal(nfeeds, 3);
	n = 0;
	assert_int_equal(status_left(db, "2026-10-31T15:00:00Z", addr_cb, &n,
	    &e), 0);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(status_reminders_pending(db, rem_cb, &n, &e), 0);
	assert_int_equal(n, 1);
	db_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schedule_table),
		cmocka_unit_test(test_catch_up_once),
		cmocka_unit_test(test_no_stale_period),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_missed),
		cmocka_unit_test(test_missed_clock_refused),
		cmocka_unit_test(test_format_jst),
		cmocka_unit_test(test_record_runs),
		cmocka_unit_test(test_lock_holder),
		cmocka_unit_test(test_feed_reason),
		cmocka_unit_test(test_reason_key),
		cmocka_unit_test(test_exit_meaning),
		cmocka_unit_test(test_campaign_counts),
		cmocka_unit_test(test_feeds_addresses_reminders),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
