/*
 * sender — drain the outbox through the transport (see sender.h).
 *
 * Durability.  No message can be delivered before the commit that claimed
 * it (and recorded the worker's last result) is on disk, so a power loss
 * cannot undo a claim or a "sent".  Over SMTP the commits run with
 * synchronous=NORMAL (SQLite writes the WAL frames, no fsync) and the
 * workers sync the WAL file themselves, outside the database lock (see
 * wal_sync()): one fdatasync() covers every commit written before it, and
 * the next transaction need not wait for it.  smtp.c asks for that sync
 * just before the last bytes of a message's data (before_end()), so it
 * runs while MAIL, RCPT, DATA and the body travel, not before them: the
 * relay cannot deliver a message whose data has not ended.
 * The local stores keep synchronous=FULL.  To keep that at about one fsync per message, results are
 * not committed on their own: a worker's result waits in `pending` and
 * goes into the transaction of the next claim (any worker's), so a
 * delivered message whose result is not yet committed exists at most once
 * per connection at any moment — the one duplicate per connection the
 * guarantee allows after a crash, and it carries its Message-ID.
 *
 * Locking.  s->mu guards the database connection, the counters and the
 * campaign cache; s->pmu the pending results, s->qmu the queue of claim
 * requests (see claim_next()).  Rendering and the SMTP dialogue run
 * outside them, in the workers.
 */
#include <ctype.h>
#include <unistd.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "buf.h"
#include "campaign.h"
#include "config.h"
#include "date.h"
#include "db.h"
#include "err.h"
#include "log.h"
#include "mailstore.h"
#include "msg.h"
#include "outbox.h"
#include "sender.h"
#include "smtp.h"
#include "subscriber.h"
#include "verp.h"
#include "xalloc.h"

#define MAX_MESSAGE	(8 * 1024 * 1024)
#define LOCAL_BATCH	256

/* A result waiting to be committed with the next claim. */
struct pending {
	struct outbox_row	 row;		/* owned */
	int			 outcome;	/* SMTP_* */
	const char		*relay;		/* borrowed from the config */
	char			*relay_id;
	char			*why;
	int			 bounced;	/* 5.1.x: mark the address */
	struct pending		*next;
};

struct claim_req;

struct sender {
	struct db		*db;
	const struct config	*cfg;
	const struct sender_opts *opts;
	struct sender_stats	*st;
	struct campaign_env	 env;
	char			 instance[9];
	struct campaign_keys	 keys;		/* [mail] verp: the tokens' key */
	char			 list_id[256];
	time_t			 now;		/* the run's clock at start */
	time_t			 t0;		/* real time at start */
	pthread_mutex_t		 qmu;		/* claims: the queue of requests */
	pthread_mutex_t		 pmu;		/* pending, npending */
	int			 walfd;		/* the WAL, synced by wal_sync(); -1 */
	_Atomic unsigned long long committed;	/* commits written so far */
	pthread_mutex_t		 smu;		/* the WAL sync: */
	pthread_cond_t		 scv;
	unsigned long long	 synced;	/*   commits known on disk */
	int			 syncing;	/*   a thread is in fdatasync() */
	int			 sync_errno;	/*   it failed: errno */
	struct claim_req	*claims;
	pthread_mutex_t		 mu;		/* everything below, and db */
	struct campaign_run	**runs;
	size_t			 nruns;
	struct pending		*pending;	/* under pmu */
	size_t			 npending;
	unsigned long		 taken;
	unsigned long		 limit;		/* messages this run; 0: all */
	int			 limit_hit;	/* claim_tx() stopped at it */
	pthread_mutex_t		 kmu;		/* the three streaks: */
	int			 refused;	/*   policy refusals in a row */
	int			 refused_run;	/*   all of them this run */
	int			 refused_before; /* the last run stopped so */
	int			 refused_stop;	/* this one did: why below */
	char			 refused_why[SMTP_TEXT_MAX + 320];
	int			 lost[SMTP_MAX_RELAYS];	/* no reply, in a row */
	int			 held[SMTP_MAX_RELAYS];	/* 4xx about us,
							   in a row */
	int			 fatal;		/* -ERR_* that stops the run */
	atomic_int		 stopping;	/* a streak stopped the run */
	struct err		 ferr;
};

/* The run's clock: --now plus the time the run has taken. */
static time_t
clock_now(const struct sender *s)
{
	return s->now + (time(NULL) - s->t0);
}

static void
set_fatal(struct sender *s, int rc, const struct err *e)
{
	if (!s->fatal) {
		s->fatal = rc;
		s->ferr = *e;
	}
}

static struct campaign_run *
get_campaign(struct sender *s, long long id, struct err *e)
{
	struct campaign_run *c;

	for (size_t i = 0; i < s->nruns; i++)
		if (s->runs[i]->id == id)
			return s->runs[i];
	if (campaign_load(s->db, id, &s->env, &c, e) < 0)
		return NULL;
	s->runs = xreallocarray(s->runs, s->nruns + 1, sizeof(*s->runs));
	s->runs[s->nruns++] = c;
	return c;
}

/*
 * BEGIN IMMEDIATE, waiting out a busy database (another samail writing a
 * big import or build) for up to [run] lock_timeout beyond SQLite's own
 * busy timeout: a delivered message must get recorded, not re-sent.
 */
static int
begin(struct sender *s, struct err *e)
{
	time_t until = time(NULL) + s->cfg->lock_timeout;
	struct timespec pause = { 0, 200 * 1000 * 1000 };
	int rc;

	while ((rc = db_begin(s->db, e)) == -ERR_LOCKED && time(NULL) < until)
		nanosleep(&pause, NULL);
	return rc;
}

static int
commit(struct sender *s, struct err *e)
{
	int rc;

	if ((rc = db_commit(s->db, e)) < 0)
		db_rollback(s->db);
	return rc;
}

/*
 * Is the declarer still one we may mail?  They may have unsubscribed,
 * bounced or been removed after the campaign was built.  1 yes, 0 no,
 * -ERR_* on a database error (never read as "no": that would cancel).
 */
static int
still_active(struct sender *s, long long subscriber_id, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if (subscriber_id <= 0)
		return 0;
	if ((st = db_stmt(s->db, "SELECT status = 'active' FROM subscriber "
	    "WHERE id = ?", e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_int64(st, 1, subscriber_id);
	rc = sqlite3_step(st);
	rc = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : rc == SQLITE_DONE ?
	    0 : db_error(s->db, e, "read declarer");
	sqlite3_reset(st);
	return rc;
}

/*
 * Claim the next message inside the caller's transaction: 1 with the row,
 * 0 when nothing is due (or the limit or a stop is reached), or -ERR_*.
 * A row whose declarer is no longer active is cancelled on the way.
 */
static int
claim_tx(struct sender *s, struct outbox_row *row, struct err *e)
{
	int rc;

	for (;;) {
		if (s->limit && s->taken >= s->limit) {
			s->limit_hit = 1;
			return 0;
		}
		if (s->opts->stop != NULL && atomic_load(s->opts->stop))
			return 0;
		if ((rc = outbox_claim(s->db, clock_now(s), row, e)) <= 0)
			return rc;
		if ((rc = still_active(s, row->subscriber_id, e)) < 0)
			return rc;
		if (rc == 0) {
			if ((rc = outbox_cancel(s->db, row->id, "the declarer "
			    "is no longer active", e)) < 0)
				return rc;
			s->st->cancelled++;
			continue;
		}
		s->taken++;
		return 1;
	}
}

/* A 5.1.x: the address is bounced, if the declarer still exists and is
 * active (an unsubscribed or removed one keeps that status). */
static int
mark_bounced(struct sender *s, const struct outbox_row *row, const char *why,
    time_t now, struct err *e)
{
	sqlite3_stmt *st;
	char ts[21];
	int rc;

	if ((rc = still_active(s, row->subscriber_id, e)) <= 0)
		return rc;
	date_format_timestamp(now, ts);
	if ((st = db_stmt(s->db, "INSERT INTO bounce (subscriber_id, received, "
	    "kind, status, diagnostic) VALUES (?, ?, 'hard', ?, ?)", e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_int64(st, 1, row->subscriber_id);
	sqlite3_bind_text(st, 2, ts, -1, SQLITE_STATIC);
	sqlite3_bind_null(st, 3);
	sqlite3_bind_text(st, 4, why, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 :
	    db_error(s->db, e, "record bounce");
	sqlite3_reset(st);
	if (rc == 0 && (rc = sub_set_status(s->db, row->rcpt, "bounced", why,
	    now, e)) > 0)
		rc = 0;
	return rc == 0 ? 1 : rc;
}

/*
 * Record one result inside the caller's transaction.  Returns the counter
 * it belongs to (SMTP_SENT, SMTP_TEMPFAIL for deferred, SMTP_PERMFAIL for
 * failed, SMTP_BAD_RECIPIENT for failed and bounced, SMTP_UNSENT), or
 * -ERR_*.  Counters are bumped by the caller once the commit held.
 */
static int
record_tx(struct sender *s, const struct pending *p, struct err *e)
{
	const struct outbox_row *row = &p->row;
	time_t now = clock_now(s), next;
	const char *why = p->why != NULL ? p->why : "";
	int rc;

	switch (p->outcome) {
	case SMTP_SENT:
		rc = outbox_sent(s->db, row->id, p->relay, p->relay_id, now, e);
		return rc < 0 ? rc : SMTP_SENT;
	case SMTP_TEMPFAIL:
		next = outbox_next_try(now, row->attempts, row->queued_at,
		    s->cfg->retry_base, s->cfg->max_attempts, s->cfg->max_age);
		if (next == 0) {
			char *msg = xasprintf("gave up after %d attempts: %s",
			    row->attempts, why);

			rc = outbox_fail(s->db, row->id, msg, now, e);
			free(msg);
			return rc < 0 ? rc : SMTP_PERMFAIL;
		}
		rc = outbox_defer(s->db, row->id, why, next, e);
		return rc < 0 ? rc : SMTP_TEMPFAIL;
	case SMTP_PERMFAIL:
	case SMTP_BAD_RECIPIENT:
		if ((rc = outbox_fail(s->db, row->id, why, now, e)) < 0)
			return rc;
		if (p->bounced && (rc = mark_bounced(s, row, why, now, e)) < 0)
			return rc;
		return p->bounced && rc == 1 ? SMTP_BAD_RECIPIENT : SMTP_PERMFAIL;
	default:	/* never handed over: back to the queue, untried */
		rc = outbox_unclaim(s->db, row->id, now, e);
		return rc < 0 ? rc : SMTP_UNSENT;
	}
}

static void
count_and_log(struct sender *s, const struct pending *p, int kind)
{
	const char *why = p->why != NULL ? p->why : "";

	switch (kind) {
	case SMTP_SENT:
		s->st->sent++;
		break;
	case SMTP_TEMPFAIL:
		s->st->deferred++;
		log_info("message to '%s' deferred: %s", p->row.rcpt, why);
		break;
	case SMTP_BAD_RECIPIENT:
		s->st->bounced++;
		/* FALLTHROUGH */
	case SMTP_PERMFAIL:
		s->st->failed++;
		log_warnx("message to '%s' failed: %s", p->row.rcpt, why);
		break;
	default:
		s->st->unsent++;
		break;
	}
}

static void
pending_free(struct pending *p)
{
	outbox_row_release(&p->row);
	free(p->relay_id);
	free(p->why);
	free(p);
}

/* Take the pending results out (to record them), or put them back first
 * (the transaction failed): under s->pmu, as workers add to them. */
static struct pending *
take_pending(struct sender *s, size_t *n)
{
	struct pending *list;

	pthread_mutex_lock(&s->pmu);
	list = s->pending;
	*n = s->npending;
	s->pending = NULL;
	s->npending = 0;
	pthread_mutex_unlock(&s->pmu);
	return list;
}

static void
put_back_pending(struct sender *s, struct pending *list, size_t n)
{
	struct pending **tail = &list;

	if (list == NULL)
		return;
	pthread_mutex_lock(&s->pmu);
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = s->pending;
	s->pending = list;
	s->npending += n;
	pthread_mutex_unlock(&s->pmu);
}

/*
 * Record the results of list in the caller's transaction (kinds[] filled);
 * once the commit holds, finish_pending() counts and frees them.
 */
static int
record_pending_tx(struct sender *s, struct pending *list, int *kinds,
    struct err *e)
{
	size_t i = 0;
	int rc;

	for (struct pending *p = list; p != NULL; p = p->next, i++) {
		if ((rc = record_tx(s, p, e)) < 0)
			return rc;
		kinds[i] = rc;
	}
	return 0;
}

static void
finish_pending(struct sender *s, struct pending *list, const int *kinds)
{
	struct pending *p, *next;
	size_t i = 0;

	for (p = list; p != NULL; p = next, i++) {
		next = p->next;
		count_and_log(s, p, kinds[i]);
		pending_free(p);
	}
}

/*
 * Make every commit up to seq durable: 0, or -ERR_IO when the WAL cannot
 * be synced (then nothing more may be handed over).  Threads that come
 * while a sync runs wait for it, and one of them syncs again if theirs was
 * written after it began.
 */
static int
wal_sync(struct sender *s, unsigned long long seq, struct err *e)
{
	unsigned long long target;
	int rc = 0, r;

	if (s->walfd < 0)
		return 0;	/* synchronous=FULL: on disk already */
	pthread_mutex_lock(&s->smu);
	while (s->synced < seq && s->sync_errno == 0) {
		if (s->syncing) {
			pthread_cond_wait(&s->scv, &s->smu);
			continue;
		}
		s->syncing = 1;
		/* Every commit counted so far has written its frames. */
		target = atomic_load(&s->committed);
		pthread_mutex_unlock(&s->smu);
		r = fdatasync(s->walfd);
		pthread_mutex_lock(&s->smu);
		s->syncing = 0;
		if (r < 0)
			s->sync_errno = errno;
		else if (target > s->synced)
			s->synced = target;
		pthread_cond_broadcast(&s->scv);
	}
	if (s->sync_errno != 0)
		rc = err_set(e, ERR_IO, "cannot sync the database's journal to "
		    "disk: %s; the messages in flight are sent again by the "
		    "next run", strerror(s->sync_errno));
	pthread_mutex_unlock(&s->smu);
	return rc;
}

/*
 * Over SMTP: commits without fsync, the WAL synced by wal_sync().  Left
 * at synchronous=FULL (every commit syncs itself) when the WAL file cannot
 * be opened.
 */
static void
wal_open(struct sender *s)
{
	const char *wal = sqlite3_filename_wal(sqlite3_db_filename(
	    s->db->h, "main"));

	if (wal == NULL || *wal == '\0' ||
	    (s->walfd = open(wal, O_RDONLY | O_CLOEXEC)) < 0) {
		s->walfd = -1;
		return;
	}
	if (db_exec(s->db, "PRAGMA synchronous=NORMAL", NULL) < 0) {
		close(s->walfd);
		s->walfd = -1;
	}
}

/*
 * Group commit.  A worker that wants its next message queues a request
 * and takes s->mu; whoever gets it first serves every request queued by
 * then in one transaction (results recorded, one message claimed for
 * each), so with eight connections one fsync serves several messages.
 * The guarantee holds as with a transaction each: a worker's result went
 * into `pending` before it queued its request, so the transaction that
 * gives it its next message has recorded its last one.
 */
struct claim_req {
	struct outbox_row	*row;
	int			 rc;
	int			 done;
	unsigned long long	 seq;	/* the commit that served it */
	struct claim_req	*next;
};

/*
 * The hand-over point, with s->mu held: one committed transaction that
 * records the pending results and claims one message (in flight before
 * anything leaves) for each request of batch (may be NULL: only record).
 * 0 with each request's rc set (1 claimed, 0 nothing due), or -ERR_*
 * (rolled back; the results stay pending).
 */
static int
claim_batch(struct sender *s, struct claim_req *batch, struct err *e)
{
	size_t n;
	struct pending *list = take_pending(s, &n);
	int *kinds = xcalloc(n + 1, sizeof(*kinds));
	struct claim_req *r;
	int rc;

	if ((rc = begin(s, e)) < 0)
		goto out;
	/* Once nothing is due, the requests after get nothing (rc 0). */
	if ((rc = record_pending_tx(s, list, kinds, e)) == 0)
		for (r = batch; r != NULL && rc == 0; r = r->next)
			if ((r->rc = claim_tx(s, r->row, e)) <= 0) {
				rc = r->rc;
				break;
			}
	if (rc < 0) {
		db_rollback(s->db);
		goto out;
	}
	if ((rc = commit(s, e)) < 0)
		goto out;
	atomic_fetch_add(&s->committed, 1);
	finish_pending(s, list, kinds);
	list = NULL;
out:
	put_back_pending(s, list, n);
	free(kinds);
	return rc;
}


/*
 * The next message for this worker: 1 with row, 0 when none, -ERR_*.
 * *seq is the commit that claimed it: wal_sync() it before the end of the
 * message's data (before_end()).
 */
static int
claim_next(struct sender *s, struct outbox_row *row, unsigned long long *seq,
    struct err *e)
{
	struct claim_req me = { row, 0, 0, 0, NULL }, *batch = NULL, *r, *next;
	int rc;

	pthread_mutex_lock(&s->qmu);
	me.next = s->claims;
	s->claims = &me;
	pthread_mutex_unlock(&s->qmu);
	pthread_mutex_lock(&s->mu);
	if (!me.done) {
		/* Serve the queue, oldest first. */
		pthread_mutex_lock(&s->qmu);
		for (r = s->claims; r != NULL; r = next) {
			next = r->next;
			r->next = batch;
			batch = r;
		}
		s->claims = NULL;
		pthread_mutex_unlock(&s->qmu);
		rc = s->fatal ? 0 : claim_batch(s, batch, e);
		if (rc < 0)
			set_fatal(s, rc, e);
		/* The others read theirs once they hold s->mu. */
		for (r = batch; r != NULL; r = next) {
			next = r->next;
			if (rc != 0 || s->fatal)
				r->rc = rc < 0 ? rc : 0;
			r->seq = atomic_load(&s->committed);
			r->done = 1;
		}
	}
	rc = me.rc;
	if (rc < 0 && e->code == 0)
		*e = s->ferr;
	/* Stopped: say so, so that smtp_run stops the other workers too
	 * (those waiting for a relay's first connection among them). */
	if (rc == 0 && s->fatal) {
		rc = s->fatal;
		*e = s->ferr;
	}
	pthread_mutex_unlock(&s->mu);
	*seq = me.seq;
	return rc;
}

static void
add_pending(struct sender *s, struct outbox_row *row, int outcome,
    const char *relay, const char *relay_id, const char *why, int bounced)
{
	struct pending *p = xcalloc(1, sizeof(*p)), **tail;

	p->row = *row;			/* takes the row's strings */
	memset(row, 0, sizeof(*row));
	p->outcome = outcome;
	p->relay = relay;
	p->relay_id = relay_id != NULL ? xstrdup(relay_id) : NULL;
	p->why = why != NULL ? xstrdup(why) : NULL;
	p->bounced = bounced;
	pthread_mutex_lock(&s->pmu);
	tail = &s->pending;
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = p;
	s->npending++;
	pthread_mutex_unlock(&s->pmu);
}

/* Render outside the lock once the campaign is loaded (under it). */
static int
render(struct sender *s, const struct outbox_row *row, struct buf *out,
    struct err *e)
{
	struct campaign_run *c;

	pthread_mutex_lock(&s->mu);
	c = get_campaign(s, row->campaign_id, e);
	pthread_mutex_unlock(&s->mu);
	if (c == NULL)
		return e->code ? -e->code : -ERR_DB;
	return campaign_render(c, row, out, e);
}

/* --- SMTP ------------------------------------------------------------- */

struct job {
	struct outbox_row	 row;
	struct buf		 msg;
	char			 mail_from[ADDR_MAX + 1];	/* VERP */
	struct sender		*s;
	unsigned long long	 seq;	/* the commit that claimed it */
};

/*
 * The claim on disk before the message can be delivered (see the top of
 * this file): smtp.c asks just before the end of the data, so the sync
 * runs while the envelope and the body travel.  If it cannot be made,
 * the message is dropped mid-data (the relay discards what it got), the
 * run stops, and the row goes back to the queue, or stays in flight if
 * even that cannot be written: either way the next run sends it.
 */
static int
before_end(const struct smtp_job *job)
{
	struct job *j = job->ctx;
	struct err e = ERR_INIT;
	int rc;

	if ((rc = wal_sync(j->s, j->seq, &e)) < 0) {
		pthread_mutex_lock(&j->s->mu);
		set_fatal(j->s, rc, &e);
		pthread_mutex_unlock(&j->s->mu);
	}
	return rc;
}

static int
smtp_next(struct smtp_job *job, void *arg)
{
	struct sender *s = arg;
	struct job *j = xcalloc(1, sizeof(*j));
	struct err e = ERR_INIT;
	unsigned long long seq = 0;
	int rc;

	buf_init(&j->msg, MAX_MESSAGE);
	for (;;) {
		rc = claim_next(s, &j->row, &seq, &e);
		if (rc <= 0) {
			outbox_row_release(&j->row);
			buf_release(&j->msg);
			free(j);
			return rc < 0 ? rc : SMTP_NEXT_NONE;
		}
		buf_reset(&j->msg);
		if ((rc = render(s, &j->row, &j->msg, &e)) == 0)
			break;
		if (rc == -ERR_SOFTWARE) {
			/* A bug of ours, not this message's: back to the
			 * queue untried, and the run stops (exit 70). */
			add_pending(s, &j->row, SMTP_UNSENT, NULL, NULL, NULL, 0);
			pthread_mutex_lock(&s->mu);
			set_fatal(s, rc, &e);
			pthread_mutex_unlock(&s->mu);
			buf_release(&j->msg);
			free(j);
			return rc;
		}
		/* A message that cannot be built is failed, named, and the
		 * run goes on with the others. */
		log_warnx("cannot build the message to '%s' (outbox %lld): %s",
		    j->row.rcpt, j->row.id, e.msg);
		add_pending(s, &j->row, SMTP_PERMFAIL, NULL, NULL, e.msg, 0);
		err_clear(&e);
	}
	job->rcpt = j->row.rcpt;
	job->data = j->msg.data;
	job->len = j->msg.len;
	job->ctx = j;
	job->mail_from = NULL;
	j->s = s;
	j->seq = seq;
	job->before_end = s->walfd >= 0 ? before_end : NULL;
	/* The declarer's own return path: a bounce names its declarer. */
	if (s->cfg->verp && j->row.subscriber_id > 0 &&
	    verp_address(&s->keys.k, s->list_id, s->cfg->envelope_from,
	    j->row.subscriber_id, j->mail_from, &e) == 0)
		job->mail_from = j->mail_from;
	return SMTP_NEXT_JOB;
}

/*
 * A refusal that is about us, not this recipient: every message would get
 * the same.  Stopping beats failing the whole campaign.  Returns what to
 * tell the admin, *code the ERR_* the run stops with; NULL if the refusal
 * is this message's own.
 */
static const char *
refuses_us(const struct sender *s, const struct smtp_result *res, int *code)
{
	static const char relay_denied[] = "does not relay for us (it needs "
	    "this host in its permitted networks, or AUTH: see [smtp] "
	    "username)";

	*code = ERR_CONFIG;
	/* Postfix's default for a host outside mynetworks without AUTH
	 * (defer_unauth_destination): "454 4.7.1 <...>: Relay access
	 * denied", temporary only to give its admin time.  Every message
	 * gets it: deferring them would spend the campaign's attempts. */
	if (res->outcome == SMTP_TEMPFAIL && res->phase == SMTP_PHASE_RCPT &&
	    res->code / 100 == 4 && smtp_refuses_relay(res->text, 1))
		return relay_denied;
	if (res->outcome != SMTP_PERMFAIL || res->phase < SMTP_PHASE_MAIL)
		return NULL;
	/* A sending quota used up: failing the rest of the campaign one by
	 * one would lose it; they wait, untried, for the next run (75). */
	if (smtp_quota_used_up(res->text)) {
		*code = ERR_TEMP;
		return "says this account's sending quota is used up for now; "
		    "the rest stay queued for the next run (set [smtp] "
		    "max_per_run below the provider's daily quota, and "
		    "rate_per_minute to its rate)";
	}
	/* 530 "Authentication required" at MAIL (a submission port, and
	 * no [smtp] username): a set-up error, not 300,000 failures.  At
	 * RCPT only the codes: the words also come about one recipient
	 * (Microsoft 365's "550 5.7.133 ...SenderNotAuthenticatedForGroup;
	 * authentication required": a group that takes no outside mail). */
	if ((res->phase == SMTP_PHASE_MAIL &&
	    smtp_wants_auth(res->code, res->status, res->text)) ||
	    (res->phase == SMTP_PHASE_RCPT && (res->code == 530 ||
	    strcmp(res->status, "5.7.57") == 0))) {
		if (strcasestr(res->text, "starttls") != NULL)
			return "requires TLS first: set [smtp] starttls = "
			    "required, or use smtps:// or the provider's "
			    "submission port";
		if (s->cfg->smtp_user == NULL)
			return "requires authentication: set [smtp] username "
			    "and password_file (or $SAMAIL_SMTP_PASSWORD)";
		return "requires authentication although [smtp] username is "
		    "set: check that this port offers AUTH, as a line 'AUTH "
		    "PLAIN LOGIN' in its EHLO reply (the submission port 587 "
		    "does; libcurl passes over the old 'AUTH=' form), and "
		    "that the account may send as [mail] envelope_from";
	}
	if (smtp_refuses_host(res->text, res->phase != SMTP_PHASE_MAIL)) {
		*code = ERR_NET;
		return "refuses mail from this host (a block list or its "
		    "reputation): have the listing removed, or send through "
		    "another relay";
	}
	/* 552 / 5.3.4 at MAIL: this message is over the relay's SIZE; it
	 * fails alone, the others go. */
	if ((res->phase == SMTP_PHASE_MAIL && res->code != 552 &&
	    strncmp(res->status, "5.3.4", 5) != 0) ||
	    /* At RCPT too: Postfix checks the sender there by default. */
	    (res->phase == SMTP_PHASE_RCPT &&
	    smtp_refuses_sender(res->status, res->text)))
		return "refused the envelope sender; check [mail] envelope_from";
	/* Microsoft 365's 5.7.133-136 say "authentication required" of a
	 * group that takes no outside mail: that recipient's, not ours. */
	if (res->phase == SMTP_PHASE_RCPT && smtp_refuses_relay(res->text, 0) &&
	    strncmp(res->status, "5.7.13", 6) != 0)
		return relay_denied;
	return NULL;
}

/*
 * A 5xx that is about what we send, not where: 5.7.x (policy: spam,
 * DMARC, "message rejected"), 5.6.x (content), or any 5xx to the end of
 * the data without a mailbox or size code.  One such refusal is that
 * message's (failed, address kept); REFUSED_STREAK of them in a row with
 * nothing sent between is the relay refusing our mail, and the run stops
 * before it fails the whole campaign.
 */
#define REFUSED_STREAK	3

static int
policy_refusal(const struct smtp_result *res)
{
	const char *st = res->status;

	/* Only the reply to the data: what we send is known there, and a
	 * 5.7.x at RCPT is mostly about that recipient (an access list, a
	 * group that takes no outside mail). */
	if (res->outcome != SMTP_PERMFAIL || res->phase != SMTP_PHASE_CONTENT)
		return 0;
	if (strncmp(st, "5.7.", 4) == 0 || strncmp(st, "5.6.", 4) == 0)
		return 1;
	return res->code != 552 &&
	    strncmp(st, "5.1.", 4) != 0 && strncmp(st, "5.2.", 4) != 0 &&
	    strncmp(st, "5.3.4", 5) != 0;
}

/* Likewise for no reply at all (a timeout, a dropped connection) once
 * the session was set up: a relay that stopped answering would otherwise
 * cost every message of the campaign a timeout and an attempt.  Counted
 * per relay: the engine hands over to the next relay after as many (see
 * smtp.c), and the run stops once no relay is left to take over (every
 * one silent, or the others down or holding us off: last_relay). */
#define LOST_STREAK	3

/* Why no other relay takes over (smtp_result.last_relay). */
#define OTHERS_OUT	"each is down, silent or refusing our mail too"

/* 1 if every configured relay's streak (s->lost or s->held) is that
 * long (kmu held). */
static int
every_relay(const struct sender *s, const int *streak, int len)
{
	for (size_t i = 0; i < s->cfg->nrelays && i < SMTP_MAX_RELAYS; i++)
		if (streak[i] < len)
			return 0;
	return 1;
}

/*
 * And for a 4xx that is about us or the relay, not the recipient: 421
 * (the relay is closing the session: "too busy", Gmail's 4.7.28 rate
 * limit), a temporary refusal of this host ("450 4.7.1 Client host
 * rejected: cannot find your hostname"), or the relay's own mail system
 * failing (4.3.x: "451 4.3.0 Temporary lookup failure", "queue file write
 * error"): smtp_held_off().  Every message would be deferred and lose an
 * attempt.  Counted per relay, as LOST_STREAK: the engine hands over to
 * the next relay after as many in a row, and once no relay is left to
 * take over the run stops (exit 75), the rest waiting, untried, for the
 * next.
 */
#define HELD_OFF_STREAK	3


static void
smtp_done(const struct smtp_job *job, const struct smtp_result *res, void *arg)
{
	struct sender *s = arg;
	struct job *j = job->ctx;
	struct err e = ERR_INIT;
	char why[SMTP_TEXT_MAX + 64];
	const char *relay = res->relay >= 0 &&
	    (size_t)res->relay < s->cfg->nrelays ? s->cfg->relays[res->relay] :
	    NULL, *us;
	int code = 0, stop = 0;

	if (res->code > 0)
		snprintf(why, sizeof(why), "%d%s%s %s", res->code,
		    res->status[0] ? " " : "", res->status, res->text);
	else
		snprintf(why, sizeof(why), "%s", res->text);
	if ((us = refuses_us(s, res, &code)) != NULL)
		err_set(&e, code, "relay '%s' %s: %s", relay ? relay : "?",
		    us, why);
	/* The streaks: their own lock, not s->mu, which a commit holds (a
	 * worker reports here while another commits). */
	pthread_mutex_lock(&s->kmu);
	if (res->relay >= 0 && res->relay < SMTP_MAX_RELAYS && res->code > 0)
		s->lost[res->relay] = 0;	/* it answers */
	if (res->outcome == SMTP_SENT) {
		s->refused = 0;
		if (res->relay >= 0 && res->relay < SMTP_MAX_RELAYS)
			s->held[res->relay] = 0;
	}
	else if (us == NULL && policy_refusal(res)) {
		s->refused_run++;
		if (++s->refused == REFUSED_STREAK) {
			if (s->refused_before && s->refused_run == 1)
				err_set(&e, ERR_NET, "relay '%s' refused our "
				    "message for what it is, not where it goes "
				    "(%s), as it did in the last run; the run "
				    "stopped at once, the rest stay queued: fix "
				    "the cause (the content, SPF/DKIM/DMARC of "
				    "[mail] from, this host's reputation), then "
				    "'samail send --retry-failed' sends the failed "
				    "ones again", relay ? relay : "?", why);
			else
				err_set(&e, ERR_NET, "relay '%s' refused %d "
				    "messages in a row for what they are, not "
				    "where they go (%s); the run stopped, the rest "
				    "stay queued: fix the cause (the content, "
				    "SPF/DKIM/DMARC of [mail] from, this host's "
				    "reputation), then 'samail send --retry-failed' "
				    "sends the failed ones again",
				    relay ? relay : "?", REFUSED_STREAK, why);
			s->refused_stop = 1;
			snprintf(s->refused_why, sizeof(s->refused_why),
			    "%s: %s", relay ? relay : "?", why);
		}
		if (s->refused >= REFUSED_STREAK || atomic_load(&s->stopping))
			stop = 1;
	} else if (res->outcome == SMTP_TEMPFAIL && res->code == 0 &&
	    res->relay >= 0 && res->relay < SMTP_MAX_RELAYS &&
	    ++s->lost[res->relay] >= LOST_STREAK &&
	    (every_relay(s, s->lost, LOST_STREAK) || res->last_relay) &&
	    !atomic_load(&s->stopping)) {
		if (s->cfg->nrelays > 1 && every_relay(s, s->lost, LOST_STREAK))
			err_set(&e, ERR_NET, "every relay stopped answering: "
			    "%d messages in a row got no reply from each; the "
			    "run stopped, the rest stay queued (see [smtp] "
			    "timeout)", LOST_STREAK);
		else if (s->cfg->nrelays > 1)
			err_set(&e, ERR_NET, "relay '%s' stopped answering (%d "
			    "messages in a row got no reply) and no other "
			    "relay can take over (%s); the run stopped, the "
			    "rest stay queued (see [smtp] timeout)",
			    relay ? relay : "?", LOST_STREAK, OTHERS_OUT);
		else
			err_set(&e, ERR_NET, "relay '%s' stopped answering: %d "
			    "messages in a row got no reply; the run stopped, "
			    "the rest stay queued (see [smtp] timeout)",
			    relay ? relay : "?", LOST_STREAK);
	}
	else if (smtp_held_off(res) && res->relay >= 0 &&
	    res->relay < SMTP_MAX_RELAYS &&
	    ++s->held[res->relay] >= HELD_OFF_STREAK &&
	    (every_relay(s, s->held, HELD_OFF_STREAK) || res->last_relay) &&
	    !atomic_load(&s->stopping)) {
		/* A 4.3.x is the relay's own trouble, not a limit of ours. */
		const char *fix = strncmp(res->status, "4.3.", 4) == 0 ?
		    "the relay's operator must fix its mail system" :
		    smtp_refuses_sender(res->status, res->text) ?
		    "check [mail] envelope_from: its domain must resolve, "
		    "and the relay must know the address" :
		    "see the relay's limits and [smtp] rate_per_minute";

		if (s->cfg->nrelays > 1 &&
		    every_relay(s, s->held, HELD_OFF_STREAK))
			err_set(&e, ERR_TEMP, "every relay is refusing our "
			    "mail for now (the last, '%s': %s): %d messages "
			    "in a row deferred by each; the run stopped, the "
			    "rest stay queued for the next run (if it goes "
			    "on, %s)", relay ? relay : "?", why,
			    HELD_OFF_STREAK, fix);
		else if (s->cfg->nrelays > 1)
			err_set(&e, ERR_TEMP, "relay '%s' is refusing our "
			    "mail for now (%s): %d messages in a row deferred, "
			    "and no other relay can take over (%s); the run "
			    "stopped, the rest stay queued for the next run "
			    "(if it goes on, %s)", relay ? relay : "?", why,
			    HELD_OFF_STREAK, OTHERS_OUT, fix);
		else
			err_set(&e, ERR_TEMP, "relay '%s' is refusing our "
			    "mail for now (%s): %d messages in a row "
			    "deferred; the run stopped, the rest stay queued "
			    "for the next run (if it goes on, %s)",
			    relay ? relay : "?", why, HELD_OFF_STREAK, fix);
	}
	if (e.code != 0)
		atomic_store(&s->stopping, 1);
	pthread_mutex_unlock(&s->kmu);
	if (e.code != 0) {
		pthread_mutex_lock(&s->mu);
		set_fatal(s, -e.code, &e);
		pthread_mutex_unlock(&s->mu);
	}
	/* Not under s->mu: a worker adds its result while another commits,
	 * and then queues for the next commit (claim_next()). */
	if (us != NULL || stop)
		/* Back to the queue untried. */
		add_pending(s, &j->row, SMTP_UNSENT, NULL, NULL, NULL, 0);
	else
		add_pending(s, &j->row, (int)res->outcome, relay,
		    res->queue_id[0] ? res->queue_id : NULL, why,
		    res->outcome == SMTP_BAD_RECIPIENT);
	outbox_row_release(&j->row);
	buf_release(&j->msg);
	free(j);
}

static int
run_smtp(struct sender *s, struct err *e)
{
	struct smtp_opts o;
	char *password = NULL, *source = NULL;
	const char *pwf = s->cfg->smtp_password_file;
	int rc;

	memset(&o, 0, sizeof(o));
	o.relays = (const char *const *)s->cfg->relays;
	o.nrelays = s->cfg->nrelays;
	o.starttls = s->cfg->starttls == STARTTLS_REQUIRED ?
	    SMTP_STARTTLS_REQUIRED : s->cfg->starttls == STARTTLS_NEVER ?
	    SMTP_STARTTLS_NEVER : SMTP_STARTTLS_AUTO;
	o.insecure = !s->cfg->tls_verify;
	o.cafile = s->cfg->ca_file;
	o.username = s->cfg->smtp_user;
	if (o.username != NULL) {
		if ((rc = config_secret(pwf, "SAMAIL_SMTP_PASSWORD",
		    &password, NULL, e)) < 0) {
			if (rc != -ERR_NOINPUT)
				return rc;
			/* A path named and missing is a typo or a file
			 * not made yet, not "no password_file". */
			if (pwf != NULL)
				return err_set(e, ERR_CONFIG, "[smtp] "
				    "password_file '%s' does not exist (and "
				    "$SAMAIL_SMTP_PASSWORD is not set): create "
				    "it with the password of '%s' (chmod 600), or "
				    "fix the path", pwf, o.username);
			return err_set(e, ERR_CONFIG, "[smtp] username '%s' is "
			    "set but there is no password: name password_file "
			    "or set $SAMAIL_SMTP_PASSWORD", o.username);
		}
		o.password = password;
		source = rc == 1 ? xstrdup("$SAMAIL_SMTP_PASSWORD") :
		    xasprintf("'%s' ([smtp] password_file)", pwf);
		o.password_source = source;
	}
	o.envelope_from = s->cfg->envelope_from;
	o.helo = s->cfg->helo;
	o.max_connections = s->cfg->max_connections;
	o.rate_per_minute = (unsigned)s->cfg->rate_per_minute;
	o.max_messages = 0;	/* the limit is counted in claim_tx() */
	o.connect_timeout_ms = s->cfg->smtp_connect_timeout * 1000;
	o.timeout_ms = s->cfg->smtp_timeout * 1000;
	o.stop = s->opts->stop;
	/* smtp_run says what to fix when a relay cannot be used (the
	 * login, STARTTLS, the certificate) and gives the exit code. */
	rc = smtp_run(&o, smtp_next, smtp_done, s, e);
	free(source);
	if (password != NULL) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	return rc;
}

/* --- maildir / mbox --------------------------------------------------- */

static void
store_key(const struct outbox_row *row, char *out, size_t n)
{
	time_t q = 0;

	date_parse_timestamp(row->queued_at, &q, NULL);
	snprintf(out, n, "%lld.S%lld", (long long)q, row->id);
}

/*
 * Local delivery in batches: claim up to LOCAL_BATCH rows (committed in
 * flight), write each message into the maildir, make them durable with
 * one syncfs(), then record them in the transaction that claims the next
 * batch.  A crash anywhere leaves the batch in flight, and the next run
 * asks the maildir which arrived (mailstore_has): nothing is lost or
 * delivered twice.  An mbox cannot tell what arrived, so it goes one
 * message at a time.
 */
static int
run_local(struct sender *s, struct err *e)
{
	struct mailstore *ms = NULL;
	struct campaign_run *c;
	struct outbox_row *rows;
	struct claim_req *reqs;
	struct buf msg = BUF_INIT(MAX_MESSAGE);
	char key[64], where[600];
	size_t n, batch, done;
	int rc = 0, stop = 0;
	struct err me = ERR_INIT;

	if ((rc = mailstore_open(&ms, s->cfg->transport, e)) < 0)
		return rc;
	batch = mailstore_can_check(ms) ? LOCAL_BATCH : 1;
	rows = xcalloc(batch, sizeof(*rows));
	reqs = xcalloc(batch, sizeof(*reqs));
	snprintf(where, sizeof(where), "%s", s->cfg->transport);
	while (!stop) {
		/* Record the last batch and claim the next, in one commit. */
		for (n = 0; n < batch; n++)
			reqs[n] = (struct claim_req){ &rows[n], 0, 0, 0,
			    n + 1 < batch ? &reqs[n + 1] : NULL };
		if ((rc = claim_batch(s, reqs, e)) < 0)
			break;
		for (n = 0; n < batch && reqs[n].rc == 1; n++)
			;
		if (n == 0)
			break;

		for (done = 0; done < n; done++) {
			struct outbox_row *row = &rows[done];

			store_key(row, key, sizeof(key));
			/* In flight at a crash: the maildir knows if it came. */
			if (row->attempts > 1 && mailstore_has(ms, key)) {
				add_pending(s, row, SMTP_SENT, where, key, NULL, 0);
				continue;
			}
			buf_reset(&msg);
			if ((c = get_campaign(s, row->campaign_id, &me)) == NULL ||
			    campaign_render(c, row, &msg, &me) < 0) {
				if (me.code == ERR_SOFTWARE) {
					/* A bug of ours: the batch goes back
					 * untried and the run stops. */
					*e = me;
					rc = -me.code;
					stop = 1;
					break;
				}
				/* This one is failed and named; the rest go. */
				log_warnx("cannot build the message to '%s' "
				    "(outbox %lld): %s", row->rcpt, row->id,
				    me.msg);
				add_pending(s, row, SMTP_PERMFAIL, NULL, NULL,
				    me.msg, 0);
				err_clear(&me);
				continue;
			}
			if (mailstore_deliver(ms, key, msg.data, msg.len,
			    clock_now(s), &me) < 0) {
				/* The store is broken (disk full...): this and
				 * the rest of the batch go back untried. */
				*e = me;
				rc = -me.code;
				stop = 1;
				break;
			}
			add_pending(s, row, SMTP_SENT, where, key, NULL, 0);
		}
		for (; done < n; done++)
			add_pending(s, &rows[done], SMTP_UNSENT, NULL, NULL,
			    NULL, 0);
		if (mailstore_sync(ms, &me) < 0) {
			/* Not durable: nothing of this batch counts as sent.
			 * Deferred (an attempt counted), so the next try asks
			 * the maildir before delivering again. */
			for (struct pending *p = s->pending; p; p = p->next)
				if (p->outcome == SMTP_SENT) {
					p->outcome = SMTP_TEMPFAIL;
					free(p->why);
					p->why = xstrdup(me.msg);
				}
			if (rc == 0) {
				*e = me;
				rc = -me.code;
			}
			stop = 1;
		}
	}
	/* What the last batch did, recorded even when the run stops. */
	if (s->npending > 0) {
		struct err e2 = ERR_INIT;
		int rc2 = claim_batch(s, NULL, &e2);

		if (rc2 < 0 && rc == 0) {
			*e = e2;
			rc = rc2;
		}
	}
	for (size_t i = 0; i < batch; i++)
		outbox_row_release(&rows[i]);
	free(rows);
	free(reqs);
	buf_release(&msg);
	mailstore_close(ms);
	return rc;
}

/*
 * A relay that refuses our messages for what they are (spam, DMARC)
 * refuses them run after run until the admin fixes the cause: after a
 * run stopped for that, the next one stops at the first such refusal
 * (that message stays queued) instead of failing REFUSED_STREAK - 1 more.
 * Remembered in the meta table until a message goes through.
 */
static void
refused_load(struct sender *s)
{
	char *v = db_meta_get(s->db, SENDER_META_REFUSED);

	if (v == NULL)
		return;
	s->refused_before = 1;
	s->refused = REFUSED_STREAK - 1;
	log_info("the last run stopped because the relay refused our "
	    "messages for what they are (%s); this one stops at the first "
	    "such refusal", v);
	free(v);
}

static void
refused_save(struct sender *s)
{
	struct err e = ERR_INIT;
	char ts[21], *v;

	if (s->refused_stop) {
		date_format_timestamp(clock_now(s), ts);
		v = xasprintf("%s %s", ts, s->refused_why);
		if (db_meta_set(s->db, SENDER_META_REFUSED, v, &e) < 0)
			log_warnx("%s", e.msg);
		free(v);
	} else if (s->refused_before && s->st->sent > 0 &&
	    db_run(s->db, "DELETE FROM meta WHERE key = ?2", 0,
	    SENDER_META_REFUSED, NULL, NULL, &e) < 0)
		log_warnx("%s", e.msg);
}

int
sender_run(struct db *db, const struct config *cfg, time_t now,
    const struct sender_opts *opts, struct sender_stats *st, struct err *e)
{
	struct sender s;
	int rc, local;

	memset(st, 0, sizeof(*st));
	memset(&s, 0, sizeof(s));
	s.db = db;
	s.cfg = cfg;
	s.opts = opts;
	s.st = st;
	s.now = now;
	s.t0 = time(NULL);
	pthread_mutex_init(&s.mu, NULL);
	pthread_mutex_init(&s.qmu, NULL);
	pthread_mutex_init(&s.pmu, NULL);
	pthread_mutex_init(&s.smu, NULL);
	pthread_mutex_init(&s.kmu, NULL);
	pthread_cond_init(&s.scv, NULL);
	s.walfd = -1;
	local = cfg->nrelays == 0;
	/* --limit, or [smtp] max_per_run (a provider's daily quota): the
	 * smaller one when both are set. */
	s.limit = opts->limit;
	if (cfg->max_per_run > 0 && (s.limit == 0 ||
	    (unsigned long)cfg->max_per_run < s.limit))
		s.limit = (unsigned long)cfg->max_per_run;

	/* Every commit of the send on disk when it returns (see above). */
	if ((rc = db_exec(db, "PRAGMA synchronous=FULL", e)) < 0)
		goto out;
	if ((rc = begin(&s, e)) < 0)
		goto out;
	if ((rc = campaign_instance(db, s.instance, e)) < 0 ||
	    (rc = outbox_recover(db, cfg->resend_in_flight || local, e)) < 0) {
		db_rollback(db);
		goto out;
	}
	st->recovered = (size_t)rc;
	st->held = cfg->resend_in_flight || local ? 0 : st->recovered;
	if ((rc = commit(&s, e)) < 0)
		goto out;
	if (st->recovered > 0)
		log_warnx("%zu message%s in flight when an earlier run "
		    "stopped; %s", st->recovered, st->recovered == 1 ? " was" :
		    "s were", st->held == 0 ? "sending them again with the same "
		    "Message-ID" : "held for review (resend_in_flight = no): "
		    "see 'samail status', release with 'samail send "
		    "--release-held'");
	/* The key tags Message-IDs (and VERP return paths). */
	if ((rc = campaign_keys_load(cfg, now, &s.keys, e)) < 0)
		goto out;
	campaign_list_id(cfg, s.list_id);
	if (cfg->verp && !local) {
		char probe[ADDR_MAX + 1];

		/* A local part too long for the tag is a configuration error
		 * now, not a silent fallback per message. */
		if ((rc = verp_address(&s.keys.k, s.list_id, cfg->envelope_from,
		    1, probe, e)) < 0)
			goto out;
	}
	s.env.cfg = cfg;
	s.env.instance = s.instance;
	s.env.keys = &s.keys.k;
	s.env.msg_flags = local ? MSG_F_LF : 0;

	if (!local) {
		wal_open(&s);
		refused_load(&s);
	}
	rc = local ? run_local(&s, e) : run_smtp(&s, e);
	if (!local)
		refused_save(&s);
	/* Results of the last messages of each connection. */
	if (!local && s.npending > 0) {
		struct err e2 = ERR_INIT;
		int rc2 = claim_batch(&s, NULL, &e2);

		if (rc2 == 0)
			rc2 = wal_sync(&s, atomic_load(&s.committed), &e2);
		if (rc2 < 0)
			set_fatal(&s, rc2, &e2);
	}
	if (s.npending > 0) {
		log_error("%zu delivered or failed message%s could not be "
		    "recorded (the database stayed busy); they are left in "
		    "flight and the next run sends them again",
		    s.npending, s.npending == 1 ? "" : "s");
	}
	/* The first cause, not "the caller stopped the run". */
	if (s.fatal) {
		*e = s.ferr;
		rc = s.fatal;
		st->stopped = 1;
	}
	/* Stopped at the limit with mail still due: the callers say so. */
	if (s.limit_hit && outbox_due(db, clock_now(&s)) > 0)
		st->capped = s.limit;
	if (rc == 0 && st->deferred > 0)
		rc = err_set(e, ERR_TEMP, "%zu message%s deferred; a later "
		    "'samail send' retries them", st->deferred,
		    st->deferred == 1 ? "" : "s");
out:
	for (struct pending *p = s.pending, *next; p != NULL; p = next) {
		next = p->next;
		pending_free(p);
	}
	for (size_t i = 0; i < s.nruns; i++)
		campaign_run_free(s.runs[i]);
	free(s.runs);
	campaign_keys_release(&s.keys);
	db_exec(db, "PRAGMA synchronous=NORMAL", NULL);
	if (s.walfd >= 0)
		close(s.walfd);
	pthread_mutex_destroy(&s.smu);
	pthread_cond_destroy(&s.scv);
	pthread_mutex_destroy(&s.mu);
	pthread_mutex_destroy(&s.qmu);
	pthread_mutex_destroy(&s.pmu);
	pthread_mutex_destroy(&s.kmu);
	return rc;
}
