/*
 * runs — what `samail run` needs besides the steps themselves: the record
 * of runs (table run), the newsletter schedule with its catch-up rule, and
 * the short admin-facing words for a step's outcome.
 *
 * The schedule.  The newsletter of month M (the period: M's advisories,
 * Japan time) is due from [newsletter] day at [newsletter] hour, Japan
 * time, of month M+1.  A run (daily or monthly) at or after that moment
 * builds it if its campaign does not exist yet; once the campaign exists,
 * no run builds it again.  So a monthly run that did not happen (machine
 * off, cron missed) is caught up by the next daily run, exactly once, and
 * a monthly run started before the moment builds nothing and says when.
 * Only the newest period is ever built: a run in December does not build
 * October's newsletter that November never built (it would be stale).
 * So the period's window, the time in which the runs build it by
 * themselves, is from its due moment to the start of the month after
 * (for October: from November's [newsletter] day and hour to December 1,
 * 00:00 Japan time).  A period whose window ended with its newsletter not
 * built (no run in it, or none that could build it) is "missed": every
 * run and `samail status` say so, until an admin builds it by hand or
 * skips it (runs_skip(): meta key "skip newsletter-YYYY-MM", the time of
 * the skip).  A skipped period is not built by the runs either.
 *
 * Runs.  A run inserts its row when it starts, after it holds the run lock
 * (so only one row is ever unfinished at a time), and completes it when it
 * ends.  A row left unfinished was a run that died (SIGKILL, power loss):
 * the next run marks it interrupted (summary RUNS_INTERRUPTED; finished
 * and exit_code stay NULL: an end that never happened is not invented).
 *
 * Timestamps in table run are 'YYYY-MM-DDTHH:MM:SSZ' (UTC), on the run's
 * clock (--now plus the time the run took).
 */
#ifndef SAMAIL_RUNS_H
#define SAMAIL_RUNS_H

#include <stddef.h>
#include <time.h>

struct db;
struct err;

/* --- the newsletter schedule ------------------------------------------ */

struct runs_schedule {
	int	 year, month;	/* the period due this month: last month */
	time_t	 due;		/* day/hour of this month, Japan time */
};

/*
 * The period whose newsletter falls due in now's month (Japan time) and
 * the moment it falls due.  day 1..28, hour 0..23 (the config's limits;
 * trusted).
 */
void	 runs_schedule(time_t now, int day, int hour, struct runs_schedule *);

enum runs_nl_action {
	RUNS_NL_WAIT,		/* not due yet */
	RUNS_NL_BUILD,		/* due and not built: build it now */
	RUNS_NL_BUILT,		/* built already (by an earlier run, or by hand) */
	RUNS_NL_SKIPPED,	/* an admin skipped it (samail newsletter skip) */
};

/*
 * Decide for the run at now: *s gets the schedule, *built_at (may be
 * NULL; 21 bytes) the campaign's creation time when it exists, or the
 * time of the skip (RUNS_NL_SKIPPED).  RUNS_NL_* or -ERR_DB.
 */
int	 runs_newsletter_action(struct db *, time_t now, int day, int hour,
	    struct runs_schedule *s, char *built_at, struct err *);

/* The window of period y-m: from its due moment (*open) to the start of
 * the month after the one it is due in (*close), Japan time. */
void	 runs_window(int y, int m, int day, int hour, time_t *open,
	    time_t *close);

/* Mark period y-m skipped at now (in the caller's transaction).
 * 0 or -ERR_DB. */
int	 runs_skip(struct db *, int y, int m, time_t now, struct err *);
/* When period y-m was skipped (a timestamp; caller frees), or NULL. */
char	*runs_skipped(struct db *, int y, int m);

/* A period whose window ended without its newsletter. */
struct runs_missed {
	int	 year, month;
	time_t	 open, close;		/* its window */
	char	 last_before[21];	/* the last run that started before
					 * the window; "" none */
	char	 first_after[21];	/* the first run at or after its end */
	long	 runs_in_window;
	char	 last_in_window[21];	/* the last of those; "" none */
	int	 last_died;		/* it never finished (killed) */
	char	 last_said[400];	/* its newsletter line, or its first
					 * ("not run: ..."); "" none */
};

/*
 * The missed periods of the last 12 months at now, oldest first: those
 * whose window ended at or before now, with no campaign and not skipped,
 * and with a run recorded before the window ended (so not the months
 * before samail was installed).  fn's first nonzero return stops the
 * walk and is returned; -ERR_DB.  The record is valid during the call.
 */
int	 runs_missed(struct db *, time_t now, int day, int hour,
	    int (*fn)(const struct runs_missed *, void *), void *arg,
	    struct err *);

/*
 * Why a missed period was not built, in words: "no run between A and B"
 * (no run in its window), "the 2 runs between A and B did not build it;
 * the last said: ...", "... it was interrupted"; and what to do:
 * "build it with 'samail newsletter build --period 2026-10' if it is
 * still wanted, or drop it with 'samail newsletter skip --period
 * 2026-10'".  Into out (size bytes).
 */
void	 runs_missed_reason(const struct runs_missed *, char *out,
	    size_t size);
void	 runs_missed_advice(const struct runs_missed *, char *out,
	    size_t size);

/* "2026-11-01 09:00 JST" into out (at least 21 bytes). */
void	 runs_format_jst(time_t t, char *out);

/* --- the record of runs ----------------------------------------------- */

/*
 * Record that a run of kind ("daily", "monthly") starts at started: first
 * mark every unfinished row as interrupted (the caller holds the run lock,
 * so their runs are dead), then insert the new row, in one transaction.
 * Returns the new row's id (> 0) or -ERR_DB.
 */
long long runs_start(struct db *, const char *kind, time_t started,
	    struct err *);

/* Complete row id: finished time, exit status (sysexits), summary (the
 * step lines).  0 or -ERR_DB. */
int	 runs_finish(struct db *, long long id, time_t finished, int exit_code,
	    const char *summary, struct err *);

/* Record in one go a run that could not start (the lock was busy).
 * 0 or -ERR_DB. */
int	 runs_record(struct db *, const char *kind, time_t started,
	    time_t finished, int exit_code, const char *summary, struct err *);

/*
 * The machine's clock, for a run that uses it (no --now): before
 * RUNS_CLOCK_FLOOR, or more than RUNS_CLOCK_SLACK seconds before the
 * latest clock a run started at (meta RUNS_META_CLOCK), it is wrong (a
 * dead RTC battery before NTP synced, a clock set back by hand): 1, with
 * that latest clock in last (21 bytes; "" for the floor), and nothing
 * changed.  Else (or with accept, past the floor: an admin says this
 * clock is right) the mark becomes now when later, and 0.  -ERR_DB.
 */
#define RUNS_CLOCK_FLOOR	"2025-01-01T00:00:00Z"
#define RUNS_CLOCK_SLACK	86400
#define RUNS_META_CLOCK		"run clock"
/* The summary of a run refused for its clock begins so; its row's times
 * are that wrong clock's. */
#define RUNS_CLOCK_REFUSED	"not run: the machine's clock says "
int	 runs_clock(struct db *, time_t now, int accept, char *last,
	    struct err *);

/* The summary the next run writes into a row it finds unfinished. */
#define RUNS_INTERRUPTED \
	"interrupted: the process ended without finishing (killed, or the " \
	"machine stopped); the next run picked up where it stopped"

/*
 * Is the run lock of the database at db_path held by a live process?
 * A read-only probe (opens the lock file read-only, never creates it):
 * 1 with the holder's "pid N, started T, samail CMD" in holder (may be
 * ""; without ", samail CMD" from an older samail), 0 if not,
 * -ERR_IO if the file cannot be read.
 */
int	 runs_lock_holder(const char *db_path, char *holder, size_t size,
	    struct err *);

/* --- words for the admin ---------------------------------------------- */

/*
 * What went wrong with a feed, in a few words for a summary line, from
 * the error class (ERR_*), the HTTP status (0: none) and the message:
 * "unreachable (HTTP 503)", "unreachable (no answer in time)",
 * "malformed", ...  Into out (size bytes).  *retried (may be NULL) is 1 if
 * the next run simply tries again, 0 if the admin must act.
 */
void	 runs_feed_reason(int code, long http_status, const char *msg,
	    char *out, size_t size, int *retried);

/* The meaning of a sysexits status for an admin: "relay or feed
 * unavailable"... */
const char *runs_exit_meaning(int exit_code);

/*
 * A failure reason cut down to what is common between recipients, for
 * counting the top reasons: addresses (<...> and anything with an @)
 * removed, "gave up after N attempts: " dropped, spaces collapsed, at
 * most size - 1 bytes (cut at a UTF-8 boundary).
 */
void	 runs_reason_key(const char *reason, char *out, size_t size);

#endif
