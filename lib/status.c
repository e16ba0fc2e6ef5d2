#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "date.h"
#include "err.h"
#include "remind.h"
#include "runs.h"
#include "status.h"
#include "subscriber.h"
#include "xalloc.h"

static const char *
col(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

/* Step through st calling each(st) per row; finalizes st. */
static int
walk(struct db *db, sqlite3_stmt *st, int (*each)(sqlite3_stmt *, void *),
    void *arg, struct err *e)
{
	int rc, stop = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((stop = each(st, arg)) != 0)
			break;
	if (stop == 0 && rc != SQLITE_DONE)
		stop = db_error(db, e, "read status");
	sqlite3_finalize(st);
	return stop;
}

/* --- runs ------------------------------------------------------------- */

struct runs_walk {
	int	(*fn)(const struct status_run *, void *);
	void	 *arg;
};

static int
each_run(sqlite3_stmt *st, void *arg)
{
	struct runs_walk *w = arg;
	struct status_run r;

	memset(&r, 0, sizeof(r));
	r.id = sqlite3_column_int64(st, 0);
	r.kind = col(st, 1);
	r.started = col(st, 2);
	r.finished = col(st, 3);
	r.exit_code = sqlite3_column_type(st, 4) == SQLITE_NULL ? -1 :
	    sqlite3_column_int(st, 4);
	r.summary = col(st, 5);
	r.interrupted = r.finished == NULL && r.summary != NULL &&
	    strcmp(r.summary, RUNS_INTERRUPTED) == 0;
	r.last_ok = col(st, 6);
	return w->fn(&r, w->arg);
}

int
status_runs(struct db *db, int (*fn)(const struct status_run *, void *),
    void *arg, struct err *e)
{
	struct runs_walk w = { fn, arg };
	sqlite3_stmt *st;

	st = db_prepare(db, "SELECT r.id, r.kind, r.started, r.finished, "
	    "r.exit_code, r.summary, (SELECT max(started) FROM run ok WHERE "
	    "ok.kind = r.kind AND ok.exit_code = 0) FROM run r WHERE r.id IN "
	    "(SELECT max(id) FROM run GROUP BY kind) ORDER BY r.kind", e);
	if (st == NULL)
		return -ERR_DB;
	return walk(db, st, each_run, &w, e);
}

/* --- the queue -------------------------------------------------------- */

static const char *const state_names[ST__N] = {
	"queued", "inflight", "sent", "deferred", "failed", "held", "cancelled",
};

const char *
status_state_name(enum status_state s)
{
	return s < ST__N ? state_names[s] : "?";
}

static int
state_index(const char *s)
{
	for (int i = 0; i < ST__N; i++)
		if (s != NULL && strcmp(s, state_names[i]) == 0)
			return i;
	return -1;
}

/* Distinct reasons counted for one campaign; bounded so that a campaign
 * with a thousand different replies costs a thousand-entry scan at most. */
#define MAX_KEYS	256

struct tally {
	struct status_reason	*v;
	size_t			 n;
	long			 other;	/* beyond MAX_KEYS */
};

static void
tally_add(struct tally *t, enum status_state state, const char *reason)
{
	char key[sizeof(t->v[0].text)];

	runs_reason_key(reason, key, sizeof(key));
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].state == state && strcmp(t->v[i].text, key) == 0) {
			t->v[i].count++;
			return;
		}
	if (t->n == MAX_KEYS) {
		t->other++;
		return;
	}
	t->v[t->n].state = state;
	t->v[t->n].count = 1;
	memcpy(t->v[t->n].text, key, sizeof(key));
	t->n++;
}

static int
by_count(const void *a, const void *b)
{
	const struct status_reason *x = a, *y = b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	if (x->state != y->state)
		return x->state < y->state ? 1 : -1;	/* failed before deferred */
	return strcmp(x->text, y->text);
}

static int
campaign_fill(struct db *db, struct status_campaign *c, struct err *e)
{
	struct tally t = { NULL, 0, 0 };
	sqlite3_stmt *st;
	int rc, i;

	st = db_prepare(db, "SELECT state, count(*) FROM outbox WHERE "
	    "campaign_id = ? GROUP BY state", e);
	if (st == NULL)
		return -ERR_DB;
	sqlite3_bind_int64(st, 1, c->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if ((i = state_index(col(st, 0))) >= 0) {
			c->count[i] = sqlite3_column_int64(st, 1);
			c->total += c->count[i];
		}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_error(db, e, "count the queue");
	if (c->count[ST_FAILED] + c->count[ST_DEFERRED] + c->count[ST_HELD] == 0)
		return 0;

	st = db_prepare(db, "SELECT state, coalesce(last_error, 'no reason "
	    "recorded') FROM outbox WHERE campaign_id = ? AND state IN "
	    "('failed', 'deferred', 'held')", e);
	if (st == NULL)
		return -ERR_DB;
	sqlite3_bind_int64(st, 1, c->id);
	t.v = xcalloc(MAX_KEYS, sizeof(*t.v));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		tally_add(&t, (enum status_state)state_index(col(st, 0)),
		    col(st, 1));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(t.v);
		return db_error(db, e, "read failure reasons");
	}
	if (t.n > 1)
		qsort(t.v, t.n, sizeof(*t.v), by_count);
	for (size_t k = 0; k < t.n && k < STATUS_MAX_REASONS; k++)
		c->reasons[c->nreasons++] = t.v[k];
	free(t.v);
	return 0;
}

int
status_campaigns(struct db *db, const char *since,
    int (*fn)(const struct status_campaign *, void *), void *arg,
    struct err *e)
{
	struct status_campaign c;
	sqlite3_stmt *st;
	int rc, stop = 0;

	/* Old campaigns with nothing left to send are history: counting
	 * their hundreds of thousands of rows on every status is not worth
	 * it.  Those with work left are found through outbox_state. */
	st = db_prepare(db, "SELECT id, name, kind, created FROM campaign "
	    "WHERE ?1 IS NULL OR created >= ?1 OR id IN (SELECT campaign_id "
	    "FROM outbox WHERE state IN ('queued', 'inflight', 'deferred', "
	    "'held')) ORDER BY created DESC, id DESC", e);
	if (st == NULL)
		return -ERR_DB;
	db_bind_text(st, 1, since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&c, 0, sizeof(c));
		c.id = sqlite3_column_int64(st, 0);
		c.name = col(st, 1);
		c.kind = col(st, 2);
		c.created = col(st, 3);
		if ((stop = campaign_fill(db, &c, e)) < 0 ||
		    (stop = fn(&c, arg)) != 0)
			break;
	}
	if (stop == 0 && rc != SQLITE_DONE)
		stop = db_error(db, e, "read campaigns");
	sqlite3_finalize(st);
	return stop;
}

/* --- feeds ------------------------------------------------------------ */

struct feeds_walk {
	int	(*fn)(const struct status_feed *, void *);
	void	 *arg;
};

static int
each_feed(sqlite3_stmt *st, void *arg)
{
	struct feeds_walk *w = arg;
	struct status_feed f;

	memset(&f, 0, sizeof(f));
	f.name = col(st, 0);
	f.url = col(st, 1);
	f.failures = sqlite3_column_int64(st, 2);
	f.last_success = col(st, 3);
	f.last_fetch = col(st, 4);
	f.last_status = sqlite3_column_int64(st, 5);
	f.last_error = col(st, 6);
	return w->fn(&f, w->arg);
}

int
status_failing_feeds(struct db *db, const char *before,
    int (*fn)(const struct status_feed *, void *), void *arg, long *nfeeds,
    struct err *e)
{
	struct feeds_walk w = { fn, arg };
	sqlite3_stmt *st;

	if (nfeeds != NULL) {
		if ((st = db_prepare(db, "SELECT count(*) FROM feed", e)) == NULL)
			return -ERR_DB;
		*nfeeds = sqlite3_step(st) == SQLITE_ROW ?
		    sqlite3_column_int64(st, 0) : 0;
		sqlite3_finalize(st);
	}
	st = db_prepare(db, "SELECT name, url, failures, last_success, "
	    "last_fetch, last_status, last_error FROM feed WHERE failures > 0 "
	    "AND coalesce(last_success, created) < ? ORDER BY name", e);
	if (st == NULL)
		return -ERR_DB;
	sqlite3_bind_text(st, 1, before, -1, SQLITE_TRANSIENT);
	return walk(db, st, each_feed, &w, e);
}

/* --- addresses -------------------------------------------------------- */

struct addr_walk {
	int	(*fn)(const struct status_address *, void *);
	void	 *arg;
};

static int
each_addr(sqlite3_stmt *st, void *arg)
{
	struct addr_walk *w = arg;
	struct status_address a;

	a.email = col(st, 0);
	a.status = col(st, 1);
	a.changed = col(st, 2);
	a.reason = col(st, 3);
	return w->fn(&a, w->arg);
}

int
status_left(struct db *db, const char *since,
    int (*fn)(const struct status_address *, void *), void *arg,
    struct err *e)
{
	struct addr_walk w = { fn, arg };
	sqlite3_stmt *st;

	st = db_prepare(db, "SELECT email, status, status_changed, "
	    "status_reason FROM subscriber WHERE status IN ('bounced', "
	    "'unsubscribed') AND status_changed >= ? ORDER BY status_changed, "
	    "email", e);
	if (st == NULL)
		return -ERR_DB;
	sqlite3_bind_text(st, 1, since, -1, SQLITE_TRANSIENT);
	return walk(db, st, each_addr, &w, e);
}

/* --- reminders -------------------------------------------------------- */

struct rem_walk {
	int	(*fn)(const struct status_reminder *, void *);
	void	 *arg;
};

static int
each_rem(sqlite3_stmt *st, void *arg)
{
	struct rem_walk *w = arg;
	struct status_reminder r;

	r.email = col(st, 0);
	r.kind = col(st, 1);
	r.due = col(st, 2);
	r.offset = sqlite3_column_int(st, 3);
	r.queued = col(st, 4);
	r.state = col(st, 5);
	return w->fn(&r, w->arg);
}

int
status_reminders_pending(struct db *db,
    int (*fn)(const struct status_reminder *, void *), void *arg,
    struct err *e)
{
	struct rem_walk w = { fn, arg };
	sqlite3_stmt *st;

	st = db_prepare(db, "SELECT o.rcpt, r.kind, r.due, r.offset_days, "
	    "o.queued_at, o.state FROM reminder r JOIN outbox o ON o.id = "
	    "r.outbox_id WHERE r.state = 'queued' AND o.state IN ('queued', "
	    "'inflight', 'deferred', 'held') ORDER BY o.queued_at, o.id", e);
	if (st == NULL)
		return -ERR_DB;
	return walk(db, st, each_rem, &w, e);
}

static long
day_or_none(sqlite3_stmt *st, int i)
{
	const char *s = col(st, i);
	long d;

	if (s == NULL || *s == '\0' || date_parse(s, &d, NULL) < 0)
		return SUB_NODATE;
	return d;
}

int
status_forecast(struct db *db, const struct remind_rules *rules, long today,
    int ndays, struct status_forecast *f, struct err *e)
{
	struct remind_moment m[REMIND_MAX_MOMENTS];
	struct remind_cycle c;
	sqlite3_stmt *st;
	long declared, assessed;
	size_t n;
	int rc, star;

	memset(f, 0, sizeof(*f));
	if (ndays > STATUS_MAX_DAYS)
		ndays = STATUS_MAX_DAYS;
	f->first = today + 1;
	f->ndays = ndays;
	st = db_prepare(db, "SELECT star, declared, assessed FROM subscriber "
	    "WHERE status = 'active'", e);
	if (st == NULL)
		return -ERR_DB;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		star = sqlite3_column_int(st, 0);
		declared = day_or_none(st, 1);
		assessed = day_or_none(st, 2);
		f->declarers++;
		/* The cycle can change between two days (the old one ends
		 * catch_up days after its last moment): ask for each day,
		 * and count a moment on the day it falls. */
		for (int i = 0; i < ndays; i++) {
			long day = f->first + i;

			if (!remind_cycle(rules, star, declared, assessed, day, &c))
				break;
			n = remind_moments(rules, &c, m);
			for (size_t k = 0; k < n; k++)
				if (m[k].day == day) {
					if (c.kind == REMIND_STEPUP)
						f->stepup[i]++;
					else
						f->reassess[i]++;
					break;
				}
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_error(db, e, "read declarers");
	return 0;
}
