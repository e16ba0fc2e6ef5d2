/*
 * status — the read-only queries behind `samail status`: the last runs,
 * the queue per campaign with its top failure reasons, failing feeds, the
 * addresses that left this month, and the reminders coming up.
 *
 * Every function reads only (no transaction is held between calls) and
 * calls fn once per record; the strings in a record are valid during the
 * call only.  fn's first nonzero return stops the walk and is returned.
 * Timestamps are 'YYYY-MM-DDTHH:MM:SSZ' (UTC) as stored.
 */
#ifndef SAMAIL_STATUS_H
#define SAMAIL_STATUS_H

#include <stddef.h>
#include <time.h>

struct db;
struct err;

/* --- runs ------------------------------------------------------------- */

struct status_run {
	long long	 id;
	const char	*kind;		/* daily, monthly */
	const char	*started;
	const char	*finished;	/* NULL: running, or interrupted */
	int		 exit_code;	/* -1: none (not finished) */
	const char	*summary;	/* the step lines, '\n' between; may be NULL */
	int		 interrupted;	/* the process died before the end */
	const char	*last_ok;	/* start of the last run of this kind
					 * that exited 0; NULL if none */
};

/* The newest run of each kind, by kind name. */
int	 status_runs(struct db *, int (*fn)(const struct status_run *, void *),
	    void *arg, struct err *);

/* --- the queue -------------------------------------------------------- */

enum status_state {
	ST_QUEUED, ST_INFLIGHT, ST_SENT, ST_DEFERRED, ST_FAILED, ST_HELD,
	ST_CANCELLED, ST__N
};

/* "queued", "inflight", ... (the outbox's state names). */
const char *status_state_name(enum status_state);

#define STATUS_MAX_REASONS	3

struct status_reason {
	enum status_state state;	/* failed, deferred or held */
	long		 count;
	char		 text[160];	/* runs_reason_key() of the reasons */
};

struct status_campaign {
	long long	 id;
	const char	*name;
	const char	*kind;		/* newsletter, reminder */
	const char	*created;
	long		 count[ST__N];
	long		 total;
	struct status_reason reasons[STATUS_MAX_REASONS];	/* most first */
	size_t		 nreasons;
};

/*
 * The campaigns created at or after since (a timestamp; NULL: all) or
 * with messages still to go (queued, in flight, deferred, held), newest
 * first, each with its counts per state and its top failure reasons.
 */
int	 status_campaigns(struct db *, const char *since,
	    int (*fn)(const struct status_campaign *, void *), void *arg,
	    struct err *);

/* --- feeds ------------------------------------------------------------ */

struct status_feed {
	const char	*name;
	const char	*url;
	long		 failures;	/* consecutive */
	const char	*last_success;	/* NULL: never */
	const char	*last_fetch;
	long		 last_status;	/* HTTP; 0 none */
	const char	*last_error;
};

/*
 * The feeds whose last fetch failed and whose last success (or, never
 * having succeeded, whose creation) is older than before (a timestamp).
 * *nfeeds (may be NULL) gets the number of feeds there are.
 */
int	 status_failing_feeds(struct db *, const char *before,
	    int (*fn)(const struct status_feed *, void *), void *arg,
	    long *nfeeds, struct err *);

/* --- addresses -------------------------------------------------------- */

struct status_address {
	const char	*email;
	const char	*status;	/* bounced, unsubscribed */
	const char	*changed;
	const char	*reason;	/* may be NULL */
};

/* Declarers who bounced or unsubscribed at or after since, oldest first. */
int	 status_left(struct db *, const char *since,
	    int (*fn)(const struct status_address *, void *), void *arg,
	    struct err *);

/* --- reminders -------------------------------------------------------- */

struct status_reminder {
	const char	*email;
	const char	*kind;		/* reassess, stepup */
	const char	*due;		/* the self-diagnosis due date, YYYY-MM-DD */
	int		 offset;	/* days before due; < 0 overdue */
	const char	*queued;	/* when it was queued */
	const char	*state;		/* the outbox state */
};

struct remind_rules;

#define STATUS_MAX_DAYS	31

/* Reminders the rules will queue on each of the next days. */
struct status_forecast {
	long	 first;				/* day number of day[0] */
	int	 ndays;
	long	 reassess[STATUS_MAX_DAYS];
	long	 stepup[STATUS_MAX_DAYS];
	long	 declarers;			/* active declarers looked at */
};

/*
 * Count, for each day after today (a day number, Japan time) up to ndays
 * (at most STATUS_MAX_DAYS), the active declarers for whom the reminder
 * rules (lib/remind.h) put a reminder moment on that day.  A forecast: a
 * new self-diagnosis recorded meanwhile changes it, and suppressed
 * addresses are counted though they will get nothing.
 */
int	 status_forecast(struct db *, const struct remind_rules *, long today,
	    int ndays, struct status_forecast *, struct err *);

/* Reminders queued and not delivered yet (queued, in flight, deferred,
 * held), oldest first. */
int	 status_reminders_pending(struct db *,
	    int (*fn)(const struct status_reminder *, void *), void *arg,
	    struct err *);

#endif
