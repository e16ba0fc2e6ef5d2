#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	pthread_mutex_t		 mu;		/* database and the fields below */
	struct campaign_run	**runs;
	size_t			 nruns;
	unsigned long		 taken;
	int			 fatal;		/* -ERR_* that stops the run */
	struct err		 ferr;
};

/* The run's clock: --now plus the time the run has taken. */
static time_t
clock_now(const struct sender *s)
{
	return s->now + (time(NULL) - s->t0);
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

/* Is the declarer still one we may mail?  (They may have unsubscribed
 * after the campaign was built.) */
static int
still_active(struct sender *s, long long subscriber_id)
{
	sqlite3_stmt *st;
	int ok = 0;

	if (subscriber_id <= 0)
		return 0;
	st = db_stmt(s->db, "SELECT status = 'active' FROM subscriber "
	    "WHERE id = ?", NULL);
	if (st == NULL)
		return 0;
	sqlite3_bind_int64(st, 1, subscriber_id);
	if (sqlite3_step(st) == SQLITE_ROW)
		ok = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	return ok;
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
		if (s->opts->limit && s->taken >= s->opts->limit)
			return 0;
		if (s->opts->stop != NULL && atomic_load(s->opts->stop))
			return 0;
		if ((rc = outbox_claim(s->db, clock_now(s), row, e)) <= 0)
			return rc;
		if (!still_active(s, row->subscriber_id)) {
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

/*
 * Claim the next message in one committed transaction: the hand-over
 * point — it is in flight before anything leaves.  Called with s->mu held.
 */
static int
claim(struct sender *s, struct outbox_row *row, struct err *e)
{
	int rc;

	if ((rc = db_begin(s->db, e)) < 0)
		return rc;
	if ((rc = claim_tx(s, row, e)) < 0) {
		db_rollback(s->db);
		return rc;
	}
	if (db_commit(s->db, e) < 0)
		return -ERR_DB;
	return rc;
}

/* Render outside the lock if the campaign is loaded; loading it takes
 * the lock. */
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

/* Record a result inside the caller's transaction (s->mu held). */
static int
record_tx(struct sender *s, const struct outbox_row *row, int outcome,
    const char *relay, const char *relay_id, const char *why, int bounced,
    struct err *e)
{
	time_t now = clock_now(s), next;
	int rc;

	switch (outcome) {
	case SMTP_SENT:
		rc = outbox_sent(s->db, row->id, relay, relay_id, now, e);
		s->st->sent++;
		break;
	case SMTP_TEMPFAIL:
		next = outbox_next_try(now, row->attempts, row->queued_at,
		    s->cfg->retry_base, s->cfg->max_attempts, s->cfg->max_age);
		if (next == 0) {
			char *msg = xasprintf("gave up after %d attempts: %s",
			    row->attempts, why);

			rc = outbox_fail(s->db, row->id, msg, now, e);
			log_warnx("message to '%s' failed: %s", row->rcpt, msg);
			free(msg);
			s->st->failed++;
		} else {
			char ts[21];

			rc = outbox_defer(s->db, row->id, why, next, e);
			date_format_timestamp(next, ts);
			log_info("message to '%s' deferred until %s: %s",
			    row->rcpt, ts, why);
			s->st->deferred++;
		}
		break;
	case SMTP_PERMFAIL:
	case SMTP_BAD_RECIPIENT:
		rc = outbox_fail(s->db, row->id, why, now, e);
		log_warnx("message to '%s' refused: %s", row->rcpt, why);
		s->st->failed++;
		if (rc == 0 && bounced && row->subscriber_id > 0) {
			sqlite3_stmt *st;
			char ts[21];

			s->st->bounced++;
			date_format_timestamp(now, ts);
			st = db_stmt(s->db, "INSERT INTO bounce (subscriber_id, "
			    "received, kind, status, diagnostic) VALUES "
			    "(?, ?, 'hard', ?, ?)", e);
			if (st == NULL)
				rc = -ERR_DB;
			else {
				sqlite3_bind_int64(st, 1, row->subscriber_id);
				sqlite3_bind_text(st, 2, ts, -1, SQLITE_STATIC);
				sqlite3_bind_null(st, 3);
				sqlite3_bind_text(st, 4, why, -1, SQLITE_STATIC);
				if (sqlite3_step(st) != SQLITE_DONE)
					rc = db_error(s->db, e, "record bounce");
				sqlite3_reset(st);
			}
			if (rc == 0)
				rc = sub_set_status(s->db, row->rcpt, "bounced",
				    why, now, e);
			if (rc > 0)
				rc = 0;
		}
		break;
	default:	/* never handed over: back to the queue, untried */
		rc = outbox_unclaim(s->db, row->id, now, e);
		s->st->unsent++;
		break;
	}
	return rc;
}

/* Record a result in its own transaction (s->mu held). */
static int
record(struct sender *s, const struct outbox_row *row, int outcome,
    const char *relay, const char *relay_id, const char *why, int bounced,
    struct err *e)
{
	int rc;

	if ((rc = db_begin(s->db, e)) < 0)
		return rc;
	if ((rc = record_tx(s, row, outcome, relay, relay_id, why, bounced,
	    e)) < 0) {
		db_rollback(s->db);
		return rc;
	}
	return db_commit(s->db, e);
}

/* --- SMTP ------------------------------------------------------------- */

struct job {
	struct outbox_row	 row;
	struct buf		 msg;
	char			 mail_from[ADDR_MAX + 1];	/* VERP */
};

static int
smtp_next(struct smtp_job *job, void *arg)
{
	struct sender *s = arg;
	struct job *j = xcalloc(1, sizeof(*j));
	struct err e = ERR_INIT;
	int rc;

	buf_init(&j->msg, MAX_MESSAGE);
	for (;;) {
		pthread_mutex_lock(&s->mu);
		rc = s->fatal ? 0 : claim(s, &j->row, &e);
		if (rc < 0 && !s->fatal) {
			s->fatal = rc;
			s->ferr = e;
		}
		pthread_mutex_unlock(&s->mu);
		if (rc <= 0) {
			outbox_row_release(&j->row);
			buf_release(&j->msg);
			free(j);
			return rc < 0 ? rc : SMTP_NEXT_NONE;
		}
		buf_reset(&j->msg);
		if ((rc = render(s, &j->row, &j->msg, &e)) == 0)
			break;
		/* A message that cannot be rendered is failed, named, and
		 * the run goes on with the others. */
		log_warnx("cannot build the message to '%s' (outbox %lld): %s",
		    j->row.rcpt, j->row.id, e.msg);
		pthread_mutex_lock(&s->mu);
		record(s, &j->row, SMTP_PERMFAIL, NULL, NULL, e.msg, 0, &e);
		pthread_mutex_unlock(&s->mu);
	}
	job->rcpt = j->row.rcpt;
	job->data = j->msg.data;
	job->len = j->msg.len;
	job->ctx = j;
	job->mail_from = NULL;
	/* The declarer's own return path: a bounce names its declarer. */
	if (s->cfg->verp && j->row.subscriber_id > 0 &&
	    verp_address(&s->keys.k, s->list_id, s->cfg->envelope_from,
	    j->row.subscriber_id, j->mail_from, &e) == 0)
		job->mail_from = j->mail_from;
	return SMTP_NEXT_JOB;
}

static void
smtp_done(const struct smtp_job *job, const struct smtp_result *res, void *arg)
{
	struct sender *s = arg;
	struct job *j = job->ctx;
	struct err e = ERR_INIT;
	char why[SMTP_TEXT_MAX + 64];
	const char *relay = res->relay >= 0 &&
	    (size_t)res->relay < s->cfg->nrelays ? s->cfg->relays[res->relay] : NULL;

	if (res->code > 0)
		snprintf(why, sizeof(why), "%d%s%s %s", res->code,
		    res->status[0] ? " " : "", res->status, res->text);
	else
		snprintf(why, sizeof(why), "%s", res->text);
	pthread_mutex_lock(&s->mu);
	/* A 5xx to MAIL FROM is about our envelope sender, not this
	 * recipient: failing every message for it would be wrong.  Put the
	 * message back and stop the run with a configuration error. */
	if (res->outcome == SMTP_PERMFAIL && res->phase == SMTP_PHASE_MAIL) {
		record(s, &j->row, SMTP_UNSENT, NULL, NULL, NULL, 0, &e);
		if (!s->fatal) {
			s->fatal = -ERR_CONFIG;
			err_set(&s->ferr, ERR_CONFIG, "relay '%s' refused the "
			    "envelope sender '%s': %s; check [mail] envelope_from",
			    relay ? relay : "?", s->cfg->envelope_from, why);
		}
		pthread_mutex_unlock(&s->mu);
		goto out;
	}
	if (record(s, &j->row, (int)res->outcome, relay,
	    res->queue_id[0] ? res->queue_id : NULL, why,
	    res->outcome == SMTP_BAD_RECIPIENT, &e) < 0 && !s->fatal) {
		s->fatal = -e.code;
		s->ferr = e;
	}
	pthread_mutex_unlock(&s->mu);
out:
	outbox_row_release(&j->row);
	buf_release(&j->msg);
	free(j);
}

static int
run_smtp(struct sender *s, struct err *e)
{
	struct smtp_opts o;
	char *password = NULL;
	int rc;

	memset(&o, 0, sizeof(o));
	o.relays = (const char *const *)s->cfg->relays;
	o.nrelays = s->cfg->nrelays;
	o.starttls = s->cfg->starttls == STARTTLS_REQUIRED ?
	    SMTP_STARTTLS_REQUIRED : SMTP_STARTTLS_AUTO;
	o.insecure = !s->cfg->tls_verify;
	o.cafile = s->cfg->ca_file;
	o.username = s->cfg->smtp_user;
	if (o.username != NULL) {
		if ((rc = config_secret(s->cfg->smtp_password_file,
		    "SAMAIL_SMTP_PASSWORD", &password, NULL, e)) < 0)
			return rc == -ERR_NOINPUT ? err_set(e, ERR_CONFIG,
			    "[smtp] username is set but there is no password: "
			    "name password_file or set $SAMAIL_SMTP_PASSWORD") : rc;
		o.password = password;
	}
	o.envelope_from = s->cfg->envelope_from;
	o.helo = s->cfg->helo;
	o.max_connections = s->cfg->max_connections;
	o.rate_per_minute = (unsigned)s->cfg->rate_per_minute;
	o.max_messages = 0;	/* the limit is counted in claim() */
	o.connect_timeout_ms = s->cfg->smtp_connect_timeout * 1000;
	o.timeout_ms = s->cfg->smtp_timeout * 1000;
	o.stop = s->opts->stop;
	rc = smtp_run(&o, smtp_next, smtp_done, s, e);
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

#define LOCAL_BATCH	256

/*
 * Local delivery in batches: claim up to LOCAL_BATCH rows (committed in
 * flight), write each message into the maildir, make them durable with
 * one syncfs(), then record them all sent in one transaction.  A crash
 * anywhere leaves the batch in flight, and the next run asks the maildir
 * which arrived (mailstore_has): nothing is lost or delivered twice, at a
 * fraction of the cost of two commits and two fsyncs per message.  An
 * mbox cannot tell what arrived, so it goes one message at a time.
 */
static int
run_local(struct sender *s, struct err *e)
{
	struct mailstore *ms = NULL;
	struct campaign_run *c;
	struct outbox_row *rows;
	int *outcome;
	struct buf msg = BUF_INIT(MAX_MESSAGE);
	char key[64], where[600], **why;
	size_t n, batch;
	int rc;

	if ((rc = mailstore_open(&ms, s->cfg->transport, e)) < 0)
		return rc;
	batch = mailstore_can_check(ms) ? LOCAL_BATCH : 1;
	rows = xcalloc(batch, sizeof(*rows));
	outcome = xcalloc(batch, sizeof(*outcome));
	why = xcalloc(batch, sizeof(*why));
	snprintf(where, sizeof(where), "%s", s->cfg->transport);
	for (;;) {
		if ((rc = db_begin(s->db, e)) < 0)
			break;
		for (n = 0; n < batch; n++)
			if ((rc = claim_tx(s, &rows[n], e)) <= 0)
				break;
		if (rc < 0) {
			db_rollback(s->db);
			break;
		}
		if ((rc = db_commit(s->db, e)) < 0 || n == 0)
			break;

		for (size_t i = 0; i < n; i++) {
			free(why[i]);
			why[i] = NULL;
			outcome[i] = SMTP_UNSENT;
		}
		for (size_t i = 0; i < n; i++) {
			struct outbox_row *row = &rows[i];

			store_key(row, key, sizeof(key));
			/* In flight at a crash: the maildir knows if it came. */
			if (row->attempts > 1 && mailstore_has(ms, key)) {
				outcome[i] = SMTP_SENT;
				continue;
			}
			buf_reset(&msg);
			if ((c = get_campaign(s, row->campaign_id, e)) == NULL ||
			    (rc = campaign_render(c, row, &msg, e)) < 0) {
				log_warnx("cannot build the message to '%s' "
				    "(outbox %lld): %s", row->rcpt, row->id, e->msg);
				outcome[i] = SMTP_PERMFAIL;
				why[i] = xstrdup(e->msg);
				err_clear(e);
				continue;
			}
			if ((rc = mailstore_deliver(ms, key, msg.data, msg.len,
			    clock_now(s), e)) < 0)
				break;	/* disk full...: the rest stays untried */
			outcome[i] = SMTP_SENT;
		}
		if (mailstore_sync(ms, e) < 0) {
			/* Not durable: nothing of this batch counts as sent.
			 * Deferred (an attempt counted), so the next try asks
			 * the maildir before delivering again. */
			for (size_t i = 0; i < n; i++)
				if (outcome[i] == SMTP_SENT) {
					outcome[i] = SMTP_TEMPFAIL;
					why[i] = xstrdup(e->msg);
				}
			if (rc == 0)
				rc = -e->code;
		}
		{
			struct err e2 = ERR_INIT;
			int rc2;

			if ((rc2 = db_begin(s->db, &e2)) == 0) {
				for (size_t i = 0; i < n && rc2 == 0; i++) {
					store_key(&rows[i], key, sizeof(key));
					rc2 = record_tx(s, &rows[i], outcome[i],
					    where, outcome[i] == SMTP_SENT ? key :
					    NULL, why[i], 0, &e2);
				}
				if (rc2 == 0)
					rc2 = db_commit(s->db, &e2);
				else
					db_rollback(s->db);
			}
			if (rc2 < 0 && rc == 0) {
				*e = e2;
				rc = rc2;
			}
		}
		if (rc < 0)
			break;
	}
	for (size_t i = 0; i < batch; i++) {
		outbox_row_release(&rows[i]);
		free(why[i]);
	}
	free(rows);
	free(outcome);
	free(why);
	buf_release(&msg);
	mailstore_close(ms);
	return rc;
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
	local = cfg->nrelays == 0;

	if ((rc = db_begin(db, e)) < 0)
		goto out;
	if ((rc = campaign_instance(db, s.instance, e)) < 0 ||
	    (rc = outbox_recover(db, cfg->resend_in_flight || local, e)) < 0) {
		db_rollback(db);
		goto out;
	}
	st->recovered = (size_t)rc;
	if ((rc = db_commit(db, e)) < 0)
		goto out;
	if (st->recovered > 0)
		log_warnx("%zu message%s were in flight when an earlier run "
		    "stopped; %s", st->recovered, st->recovered == 1 ? "" : "s",
		    cfg->resend_in_flight || local ? "sending them again with "
		    "the same Message-ID" : "held for review (resend_in_flight "
		    "= no): see 'samail status'");
	if (cfg->verp && !local) {
		if ((rc = campaign_keys_load(cfg, now, &s.keys, e)) < 0)
			goto out;
		campaign_list_id(cfg, s.list_id);
		/* A local part too long for the tag is a configuration error
		 * now, not a silent fallback per message. */
		{
			char probe[ADDR_MAX + 1];

			if ((rc = verp_address(&s.keys.k, s.list_id,
			    cfg->envelope_from, 1, probe, e)) < 0)
				goto out;
		}
	}
	s.env.cfg = cfg;
	s.env.instance = s.instance;
	s.env.msg_flags = local ? MSG_F_LF : 0;

	rc = local ? run_local(&s, e) : run_smtp(&s, e);
	if (rc == 0 && s.fatal) {
		*e = s.ferr;
		rc = s.fatal;
	}
	if (rc == 0 && st->deferred > 0)
		rc = err_set(e, ERR_TEMP, "%zu message%s deferred; a later "
		    "'samail send' retries them", st->deferred,
		    st->deferred == 1 ? "" : "s");
out:
	for (size_t i = 0; i < s.nruns; i++)
		campaign_run_free(s.runs[i]);
	free(s.runs);
	campaign_keys_release(&s.keys);
	pthread_mutex_destroy(&s.mu);
	return rc;
}
