/*
 * remind — self-diagnosis (自社診断) reminders: when they are due, and the
 * daily campaign that queues them, each with an .ics for the calendar.
 *
 * The rules (all dates are calendar days in Japan; months are added with
 * date_add_months(), so Jan 31 + 1 month is Feb 28 or 29):
 *
 *  - The cycle's anchor and kind:
 *      a self-diagnosis on record (any star)  -> "reassess" from that date;
 *      ★ without one, declared date known     -> "stepup" from the declared
 *                                                date (the ★ -> ★★ nudge);
 *      ★★ without one, declared date known    -> "reassess" from the declared
 *                                                date: declaring ★★ requires
 *                                                a self-diagnosis, so that
 *                                                is when the last one was;
 *      no date at all                         -> no reminders (nothing to
 *                                                count from; counted in the
 *                                                build's summary).
 *  - Due dates: reassess anchor + interval months; stepup anchor + stepup
 *    months.  A cycle that ends without a new self-diagnosis being
 *    recorded is followed by the next one interval months later (anchor
 *    + interval x k, or + stepup + interval x (k-1)): SECURITY ACTION asks
 *    for no report, so most declarers never record one, and they should
 *    still be reminded every year.  The current cycle is the first whose
 *    last reminder moment + catch_up_days has not passed.
 *  - Moments of a cycle: due - offset for each configured offset (30, 7,
 *    0), then due + 1, 2, ... overdue_repeats months; a moment on or
 *    before the anchor is dropped.  Each is identified by (due, offset in
 *    days; negative when overdue) and handled at most once.
 *  - On a build day: a moment in the future waits; one that passed more
 *    than catch_up_days ago is recorded as skipped (too late); of those
 *    within catch_up_days, the latest is queued and the older ones are
 *    recorded as skipped (superseded: one mail saying where things stand
 *    now, not two about the same date in one run).  A moment earlier than
 *    one already handled is superseded too.
 *  - A change of cycle (new self-diagnosis, star change, dates edited,
 *    dates cleared) cancels the unsent reminders of every other cycle; a
 *    reminder queued for a cycle cancels its cycle's older unsent ones.
 *    This is decided by comparing with the current cycle, so it holds
 *    however the data changed (update, import, SQL).
 *  - What a mail says is where things stand on the day it is queued:
 *    days_before / days_overdue count from that day, so a reminder caught
 *    up late never claims a number of days that is no longer true.
 *  - The .ics: one event per (declarer, due date), UID stable and free
 *    of personal data, SEQUENCE = reminders of that event queued before
 *    (0, 1, 2 ...); a 30-minute slot at [remind] hour:minute on the due
 *    date, or, once the due date has passed, on the next weekday after
 *    the day the reminder is queued (a past date is useless in a
 *    calendar).  Holidays are not known; only Saturday and Sunday are
 *    avoided.
 *
 * Only active declarers get reminders, never a suppressed address.
 */
#ifndef SAMAIL_REMIND_H
#define SAMAIL_REMIND_H

#include <stddef.h>
#include <time.h>

struct config;
struct db;
struct err;
struct token_keys;

enum remind_kind { REMIND_NONE = 0, REMIND_REASSESS, REMIND_STEPUP };

/* Where a reminder falls, counted from the day it is queued. */
enum remind_pos { REMIND_BEFORE = 0, REMIND_ON_THE_DAY, REMIND_OVERDUE };

#define REMIND_MAX_OFFSETS	8
#define REMIND_MAX_OVERDUE	12
#define REMIND_MAX_MOMENTS	(REMIND_MAX_OFFSETS + REMIND_MAX_OVERDUE)

/* The [remind] settings the rules use. */
struct remind_rules {
	int	 interval;			/* months between self-diagnoses */
	int	 stepup;			/* months from ★ declaration */
	int	 offsets[REMIND_MAX_OFFSETS];	/* days before the due date */
	size_t	 noffsets;
	int	 overdue_repeats;		/* monthly reminders after it */
	int	 catch_up;			/* days a moment may be late */
};

/* Fill rules from the configuration. */
void	 remind_rules_from_config(const struct config *,
	    struct remind_rules *);

struct remind_cycle {
	enum remind_kind kind;
	long		 anchor;	/* day counted from */
	long		 due;		/* day number */
	int		 n;		/* 1 for the first cycle from anchor */
};

/*
 * The cycle that applies on day today for a declarer with this star
 * (1, 2) and dates (day numbers or SUB_NODATE).  Returns 1 with *c
 * filled, or 0 (c->kind REMIND_NONE) when there is no date to count from.
 */
int	 remind_cycle(const struct remind_rules *, int star, long declared,
	    long assessed, long today, struct remind_cycle *c);

struct remind_moment {
	long	 day;		/* when the reminder is meant to go */
	int	 offset;	/* due - day: days before, < 0 overdue */
};

/* The moments of cycle c, earliest first, into out (REMIND_MAX_MOMENTS);
 * returns how many. */
size_t	 remind_moments(const struct remind_rules *,
	    const struct remind_cycle *c, struct remind_moment *out);

enum remind_action {
	REMIND_WAIT = 0,	/* in the future */
	REMIND_DONE,		/* handled on an earlier day */
	REMIND_QUEUE,		/* send now */
	REMIND_SKIP_LATE,	/* passed more than catch_up days ago */
	REMIND_SKIP_SUPERSEDED,	/* a later moment is (or was) sent instead */
};

/*
 * What to do on day today with each of the n moments m (earliest first);
 * done[i] is non-zero for the moments handled on an earlier day (any
 * outcome).  At most one moment gets REMIND_QUEUE.
 */
void	 remind_plan(const struct remind_rules *,
	    const struct remind_moment *m, size_t n, const int *done,
	    long today, enum remind_action *out);

/* Position of a reminder for due queued on day today; *days gets the
 * days before (>= 0) or overdue (> 0). */
enum remind_pos remind_position(long due, long today, int *days);

/* Day of the calendar slot: the due date, or the next weekday after
 * today once the due date has passed. */
long	 remind_slot_day(long due, long today);

/* "2026年12月1日（火）" (ja) or "Tuesday, 1 December 2026" (en) into
 * out (64 bytes). */
void	 remind_date_label(long day, const char *locale, char *out);

/* "reminder-2026-10-15" into out (32 bytes). */
void	 remind_campaign_name(long day, char *out);

struct remind_opts {
	const struct config	*cfg;
	struct remind_rules	 rules;
	const char		*templates_dir;
	const struct token_keys	*keys;		/* unsubscribe tokens */
	const char		*list_id;	/* "news.example.jp" */
};

struct remind_stats {
	long long	campaign_id;	/* 0 when nothing was queued */
	int		created;	/* 1 if this build created the campaign */
	size_t		declarers;	/* active declarers looked at */
	size_t		nodate;		/* of them, without a date (no cycle) */
	size_t		queued[3][3];	/* [kind][pos] queued now */
	size_t		queued_total;
	size_t		cancelled;	/* unsent, of a cycle that ended or
					 * superseded by a newer reminder */
	size_t		late;		/* skipped: more than catch_up late */
	size_t		superseded;	/* skipped: a later one went instead */
	size_t		suppressed;	/* due, but the address is suppressed */
};

/*
 * Queue the reminders due on now's day (Japan), inside the caller's
 * transaction (roll back for a dry run).  The day's campaign
 * "reminder-YYYY-MM-DD" is created when the first reminder is queued,
 * with a frozen snapshot of the templates; the templates are checked
 * strictly before anything is written.  -ERR_PARSE for a template error
 * (file:line:col), -ERR_DB, -ERR_NOINPUT (templates missing).
 */
int	 remind_build(struct db *, const struct remind_opts *, time_t now,
	    struct remind_stats *, struct err *);

#endif
