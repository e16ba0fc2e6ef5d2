/*
 * samail run daily|monthly — the cron entry.
 *
 * Under the run lock: fetch every feed, queue the reminders due, build the
 * newsletter when it is due and not built (lib/runs.h has the schedule and
 * its catch-up rule), send what is queued.  Every step runs whatever
 * happened to the ones before it (a feed that is down must not stop the
 * reminders or the mail), the exit status is the worst of the steps', and
 * the run ends with one line per step in words meant for an admin reading
 * cron's mail.  With -q a run where nothing needs attention prints
 * nothing.  Each run is recorded in table run for `samail status`.
 */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "advisory.h"
#include "buf.h"
#include "campaign.h"
#include "cmd.h"
#include "date.h"
#include "fetch.h"
#include "log.h"
#include "newsletter.h"
#include "outbox.h"
#include "runs.h"
#include "sender.h"
#include "tag.h"
#include "xalloc.h"

static const char run_usage[] =
"samail run [--accept-clock] daily|monthly\n"
"\n"
"The cron entry.  Under the run lock (one run per database; a second one\n"
"waits up to [run] lock_timeout, then exits 75 naming the holder):\n"
"  1. fetch    every feed\n"
"  2. remind   queue the self-diagnosis reminders due today\n"
"  3. newsletter  build last month's newsletter when it is due ([newsletter]\n"
"              day and hour, Japan time) and not built yet: a monthly run\n"
"              that did not happen is caught up by the next daily run, once;\n"
"              a month no run built in its time (the machine was off until\n"
"              the month after) is not sent late, but each run warns of it\n"
"              until it is built by hand or skipped ('samail newsletter')\n"
"  4. send     deliver what is queued (new, and deferred messages now due)\n"
"daily and monthly do the same steps; a monthly run that comes before the\n"
"newsletter is due says so.  Every step runs even when an earlier one\n"
"failed; the exit status is the worst of them, and the last lines say what\n"
"each step did.  With -q nothing is printed unless something needs\n"
"attention.  Each run is recorded; see 'samail status'.\n"
"Without --now, a machine clock before 2025 or more than a day before the\n"
"last run's is taken for wrong (NTP not synced, a dead RTC battery): the\n"
"run does nothing and exits 75.  --accept-clock: this clock is right (the\n"
"last run's was wrong).";

enum { STEP_FETCH, STEP_REMIND, STEP_NEWSLETTER, STEP_SEND, NSTEPS };

static const char *const step_names[NSTEPS] = {
	"fetch", "remind", "newsletter", "send",
};

struct step {
	int		 exit;		/* sysexits */
	int		 notable;	/* worth printing under -q */
	double		 secs;
	struct buf	 line;		/* what happened, for the admin */
};

struct run {
	struct ctx	*ctx;
	const char	*kind;
	int		 monthly;
	time_t		 now0;		/* the run's clock at start */
	double		 t0;		/* mono() at start */
	struct step	 steps[NSTEPS];
};

static atomic_int stop_flag;

static void
on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop_flag, 1);
}

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The run's clock: its start (--now, or the machine's clock then) plus
 * the time the run has taken, by the monotonic clock: an NTP step during
 * a run moves neither the schedule's view of it nor its length. */
static time_t
run_clock(const struct run *r)
{
	return r->now0 + (time_t)(mono() - r->t0);
}

/* Whole seconds the run has taken. */
static long
run_secs(const struct run *r)
{
	return (long)(mono() - r->t0);
}

static void
say(struct step *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
say(struct step *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(&s->line, fmt, ap);
	va_end(ap);
}

static long
count(struct db *db, const char *sql)
{
	sqlite3_stmt *st = db_prepare(db, sql, NULL);
	long n = -1;

	if (st != NULL && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* --- fetch ------------------------------------------------------------ */

struct fetchrun {
	struct ctx		*ctx;
	struct advisory_fetch_opts o;
	struct step		*s;
	long			 feeds, ok, added, changed;
	int			 all_retried;
	struct buf		 failed;
};

static int
fetch_feed(const struct advisory_feed *f, void *arg)
{
	struct fetchrun *fr = arg;
	struct advisory_stats st;
	struct err e = ERR_INIT;
	char why[256], note[512];
	int rc, retried;

	if (atomic_load(&stop_flag))
		return 1;
	fr->feeds++;
	memset(&st, 0, sizeof(st));
	rc = advisory_fetch(fr->ctx->db, f, &fr->o, &st, &e);
	if (rc == 0) {
		fr->ok++;
		fr->added += (long)st.added;
		fr->changed += (long)st.changed;
		if (st.not_modified)
			log_info("feed '%s': not modified", f->name);
		else if (!st.gone)
			log_info("feed '%s': %zu items, %zu new, %zu changed",
			    f->name, st.items, st.added, st.changed);
		if (advisory_notice(f->name, &st, note, sizeof(note)))
			log_warnx("%s", note);
		return 0;
	}
	log_error("feed '%s': %s", f->name, e.msg);
	fr->s->exit = err_worst(fr->s->exit, err_exitcode(rc));
	runs_feed_reason(e.code, st.status, e.msg, why, sizeof(why), &retried);
	buf_addf(&fr->failed, "%s'%s' %s", fr->failed.len ? "; " : "",
	    f->name, why);
	if (!retried)
		fr->all_retried = 0;
	/* A database that is busy or broken fails every feed alike. */
	return e.code == ERR_DB || e.code == ERR_LOCKED || e.code == ERR_IO;
}

static void
step_fetch(struct run *r, struct step *s)
{
	struct ctx *ctx = r->ctx;
	struct fetch_opts fo;
	struct fetchrun fr;
	struct err e = ERR_INIT;
	int rc;

	memset(&fr, 0, sizeof(fr));
	buf_init(&fr.failed, 0);
	if ((rc = cmd_products(ctx)) < 0) {
		log_error("%s", ctx->err.msg);
		s->exit = err_exitcode(rc);
		say(s, "no feed fetched: the product dictionary cannot be "
		    "read (see the error above)");
		return;
	}
	fetch_init();
	memset(&fo, 0, sizeof(fo));
	fo.connect_timeout = ctx->cfg->feed_connect_timeout;
	fo.timeout = ctx->cfg->feed_timeout;
	fo.max_bytes = (size_t)ctx->cfg->feed_max_size;
	fo.allow_local = ctx->cfg->allow_local_files;
	fr.ctx = ctx;
	fr.s = s;
	fr.o.fetch = &fo;
	fr.o.tagger = tag_new(&ctx->products);
	fr.o.now = run_clock(r);
	fr.all_retried = 1;
	rc = advisory_feed_each(ctx->db, fetch_feed, &fr, &e);
	tag_free((struct tagger *)fr.o.tagger);
	if (rc < 0) {
		log_error("%s", e.msg);
		s->exit = err_worst(s->exit, err_exitcode(rc));
	}
	if (fr.feeds == 0 && rc >= 0) {
		say(s, "no feeds to fetch; add one with 'samail feed add URL "
		    "--name NAME'");
		s->notable = 1;
	} else {
		say(s, "%ld of %ld feed%s ok", fr.ok, fr.feeds,
		    fr.feeds == 1 ? "" : "s");
		if (fr.added > 0 || fr.changed > 0)
			say(s, ", %ld new advisor%s", fr.added,
			    fr.added == 1 ? "y" : "ies");
		if (fr.changed > 0)
			say(s, ", %ld updated", fr.changed);
		if (fr.failed.len > 0) {
			say(s, "; %s", buf_str(&fr.failed));
			if (fr.all_retried)
				say(s, " — retried next run");
		}
		if (rc < 0)
			say(s, "; stopped: %s", e.msg);
	}
	buf_release(&fr.failed);
}

/* --- remind ----------------------------------------------------------- */

static const char reminder_count_sql[] =
    "SELECT count(*) FROM outbox WHERE campaign_id IN "
    "(SELECT id FROM campaign WHERE kind = 'reminder')";

static void
step_remind(struct run *r, struct step *s)
{
	struct ctx *ctx = r->ctx;
	char *argv[] = { (char *)"remind", (char *)"build", NULL };
	long before, after;
	int verbosity = ctx->verbosity, rc;
	const char *name = ctx->cmdname;

	before = count(ctx->db, reminder_count_sql);
	/* Through the command, as an admin would run it; its own summary
	 * line is replaced by this step's (errors are still logged). */
	ctx->verbosity = -1;
	ctx->now = run_clock(r);
	err_clear(&ctx->err);
	rc = cmd_remind(ctx, 2, argv);
	ctx->verbosity = verbosity;
	ctx->cmdname = name;
	log_step(step_names[STEP_REMIND]);
	db_rollback(ctx->db);
	after = count(ctx->db, reminder_count_sql);
	s->exit = rc;
	if (rc != EX_OK) {
		say(s, "no reminders queued: failed with exit %d (%s), see the "
		    "error above; the next run tries again", rc,
		    runs_exit_meaning(rc));
		return;
	}
	if (before >= 0 && after >= before)
		say(s, "%ld reminder%s queued", after - before,
		    after - before == 1 ? "" : "s");
	else
		say(s, "done");
}

/* --- newsletter ------------------------------------------------------- */

/* Feeds that have not been fetched since the period ended: the
 * newsletter misses what they published at the end of it. */
static void
stale_feeds(struct db *db, time_t period_end, struct step *s)
{
	sqlite3_stmt *st;
	char ts[21];
	int n = 0;

	date_format_timestamp(period_end, ts);
	st = db_prepare(db, "SELECT name, coalesce(last_success, 'never') FROM "
	    "feed WHERE last_success IS NULL OR last_success < ? ORDER BY name",
	    NULL);
	if (st == NULL)
		return;
	sqlite3_bind_text(st, 1, ts, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		say(s, "%s'%s' (last fetched %s)", n++ ? ", " : "; note: "
		    "not fetched since the month ended, so the newsletter may "
		    "miss advisories from ", (const char *)sqlite3_column_text(
		    st, 0), (const char *)sqlite3_column_text(st, 1));
		s->notable = 1;
	}
	sqlite3_finalize(st);
}

static void
newsletter_due(struct run *r, struct step *s)
{
	struct ctx *ctx = r->ctx;
	struct runs_schedule sched;
	struct campaign_keys keys;
	struct newsletter_opts o;
	struct newsletter_stats st;
	struct err e = ERR_INIT;
	char name[32], when[24], built[21], list_id[256];
	time_t now = run_clock(r), t;
	int action, rc;

	action = runs_newsletter_action(ctx->db, now, ctx->cfg->nl_day,
	    ctx->cfg->nl_hour, &sched, built, &e);
	newsletter_campaign_name(sched.year, sched.month, name);
	if (action < 0) {
		log_error("%s", e.msg);
		s->exit = err_exitcode(action);
		say(s, "%s: cannot tell whether it is built: %s", name, e.msg);
		return;
	}
	if (action == RUNS_NL_BUILT) {
		if (date_parse_timestamp(built, &t, NULL) == 0)
			runs_format_jst(t, when);
		else
			snprintf(when, sizeof(when), "%s", built);
		say(s, "%s was built on %s; nothing to do", name, when);
		log_info("%s built already (%s)", name, when);
		return;
	}
	if (action == RUNS_NL_SKIPPED) {
		if (date_parse_timestamp(built, &t, NULL) == 0)
			runs_format_jst(t, when);
		else
			snprintf(when, sizeof(when), "%s", built);
		say(s, "%s was skipped (samail newsletter skip) on %s; nothing "
		    "to do", name, when);
		log_info("%s skipped by an admin (%s)", name, when);
		return;
	}
	if (action == RUNS_NL_WAIT) {
		runs_format_jst(sched.due, when);
		say(s, "%s is not due until %s", name, when);
		if (r->monthly) {
			say(s, " ([newsletter] day and hour); this monthly run "
			    "came early, so check that its cron entry or timer "
			    "matches them — the first daily run after that "
			    "builds it");
			s->notable = 1;
			log_warnx("%s is not due until %s: the monthly run came "
			    "early", name, when);
		}
		return;
	}

	/*
	 * A campaign is built once: built while every feed is down, it would
	 * tell every declarer "nothing for your products" for good.  Wait for
	 * a fetch after the month ended — a week at most, then build with
	 * what there is and say so.  With nothing stored at all (a new
	 * install whose feeds were never reached: a firewall, a proxy) there
	 * is nothing to build with, so wait however long that takes: the
	 * first daily run must not mail every declarer an empty newsletter.
	 */
	{
		int y = sched.year, m = sched.month + 1, total = 0, fresh = 0;
		long stored = -1;
		sqlite3_stmt *q;
		char end[21];

		if (m == 13) {
			m = 1;
			y++;
		}
		date_format_timestamp(date_jst_time(date_days(y, m, 1), 0, 0), end);
		q = db_prepare(ctx->db, "SELECT count(*), count(CASE WHEN "
		    "last_success >= ? THEN 1 END) FROM feed", NULL);
		if (q != NULL) {
			sqlite3_bind_text(q, 1, end, -1, SQLITE_STATIC);
			if (sqlite3_step(q) == SQLITE_ROW) {
				total = sqlite3_column_int(q, 0);
				fresh = sqlite3_column_int(q, 1);
			}
			sqlite3_finalize(q);
		}
		if (total > 0 && fresh == 0)
			stored = count(ctx->db, "SELECT count(*) FROM advisory");
		if (total > 0 && fresh == 0 && stored == 0) {
			say(s, "%s postponed: no advisory is stored yet (no "
			    "feed fetch has brought any), so it would list none; check "
			    "that this machine reaches the feeds ('samail feed "
			    "fetch'); the next run after a good fetch builds it",
			    name);
			s->notable = 1;
			s->exit = EX_TEMPFAIL;
			log_warnx("%s postponed: no advisory stored yet", name);
			return;
		}
		if (total > 0 && fresh == 0 && now < sched.due + 7 * 86400) {
			say(s, "%s postponed: no feed has been fetched since the "
			    "month ended, and a newsletter built now would miss "
			    "its advisories; the next run after a good fetch "
			    "builds it", name);
			s->notable = 1;
			s->exit = EX_TEMPFAIL;
			log_warnx("%s postponed: no feed fetched since the month "
			    "ended", name);
			return;
		}
		if (total > 0 && fresh == 0)
			log_warnx("%s: no feed fetched for a week past its date; "
			    "building it with the advisories stored so far", name);
	}
	memset(&keys, 0, sizeof(keys));
	if ((rc = cmd_products(ctx)) < 0 ||
	    (rc = campaign_keys_load(ctx->cfg, now, &keys, &ctx->err)) < 0 ||
	    (rc = cmd_begin(ctx)) < 0)
		goto fail;
	campaign_list_id(ctx->cfg, list_id);
	memset(&o, 0, sizeof(o));
	o.cfg = ctx->cfg;
	o.year = sched.year;
	o.month = sched.month;
	o.templates_dir = ctx->cfg->templates_dir;
	o.max_advisories = ctx->cfg->nl_max_advisories;
	o.max_alerts = ctx->cfg->nl_max_alerts;
	o.dict = &ctx->products;
	o.keys = &keys.k;
	o.list_id = list_id;
	if ((rc = newsletter_build(ctx->db, &o, now, &st, &ctx->err)) < 0) {
		db_rollback(ctx->db);
		goto fail;
	}
	if ((rc = cmd_commit(ctx)) < 0)
		goto fail;
	campaign_keys_release(&keys);
	log_info("%s built: %zu advisor%s (%zu IPA alert%s), %zu queued, %zu "
	    "suppressed", name, st.advisories, st.advisories == 1 ? "y" :
	    "ies", st.alerts, st.alerts == 1 ? "" : "s", st.queued,
	    st.suppressed);
	say(s, "%s built%s: %zu queued (%zu with advisories for their "
	    "products), %zu advisor%s", name, r->monthly ? "" :
	    " (caught up: the monthly run had not built it)", st.queued,
	    st.matched, st.advisories, st.advisories == 1 ? "y" : "ies");
	{
		int y = sched.year, m = sched.month + 1;

		if (m == 13) {
			m = 1;
			y++;
		}
		stale_feeds(ctx->db, date_jst_time(date_days(y, m, 1), 0, 0), s);
	}
	return;
fail:
	campaign_keys_release(&keys);
	log_error("%s", ctx->err.msg);
	s->exit = err_exitcode(rc);
	say(s, "%s NOT built: %s — fix it; the next run tries again", name,
	    ctx->err.msg);
	err_clear(&ctx->err);
}

/*
 * A month whose newsletter no run built in its time (the machine was off,
 * or the runs then could not build it): the runs never send it late by
 * themselves, so say it, with what to do, until an admin builds it by
 * hand or skips it (lib/runs.h).  Not an error: this run did its work.
 */
static int
missed_note(const struct runs_missed *mi, void *arg)
{
	struct step *s = arg;
	char name[32], why[640], advice[160];

	newsletter_campaign_name(mi->year, mi->month, name);
	runs_missed_reason(mi, why, sizeof(why));
	runs_missed_advice(mi, advice, sizeof(advice));
	say(s, "%s%s was NEVER BUILT (%s): %s", s->line.len ? "; " : "", name,
	    why, advice);
	log_warnx("%s was never built (%s): %s", name, why, advice);
	s->notable = 1;
	return 0;
}

static void
step_newsletter(struct run *r, struct step *s)
{
	struct ctx *ctx = r->ctx;
	struct err e = ERR_INIT;

	newsletter_due(r, s);
	db_rollback(ctx->db);
	if (runs_missed(ctx->db, run_clock(r), ctx->cfg->nl_day,
	    ctx->cfg->nl_hour, missed_note, s, &e) < 0)
		log_warnx("cannot tell whether an earlier newsletter was "
		    "missed: %s", e.msg);
}

/* --- send ------------------------------------------------------------- */

static void
step_send(struct run *r, struct step *s)
{
	struct ctx *ctx = r->ctx;
	struct sender_opts so = { 0, &stop_flag };
	struct sender_stats st;
	struct err e = ERR_INIT;
	long long left, due;
	int rc;

	rc = sender_run(ctx->db, ctx->cfg, run_clock(r), &so, &st, &e);
	left = outbox_waiting(ctx->db);
	s->exit = err_exitcode(rc);
	if (rc < 0 && (rc != -ERR_TEMP || st.stopped))
		log_error("%s", e.msg);
	if (rc == -ERR_NET) {
		say(s, "nothing more could be handed over: %s — %lld message%s "
		    "stay queued for the next run", e.msg, left,
		    left == 1 ? "" : "s");
		if (st.sent > 0)
			say(s, " (%zu were sent before)", st.sent);
		return;
	}
	/* Stopped by a signal with mail due left (before it took any,
	 * maybe): not done, 75, as the steps a signal skips. */
	due = rc == 0 && atomic_load(&stop_flag) ?
	    outbox_due(ctx->db, run_clock(r)) : 0;
	if (st.sent + st.deferred + st.failed + st.cancelled + st.unsent == 0 &&
	    rc == 0 && due == 0) {
		say(s, "nothing to send");
		if (left > 0)
			say(s, " now (%lld deferred, retried later)", left);
		return;
	}
	say(s, "%zu sent via %s", st.sent, ctx->cfg->transport);
	if (st.deferred > 0) {
		say(s, ", %zu deferred (the relay said try later; retried by "
		    "the next runs)", st.deferred);
		s->notable = 1;
	}
	if (st.failed > 0) {
		say(s, ", %zu failed", st.failed);
		if (st.bounced > 0)
			say(s, " (%zu bounced: the address%s marked, no more "
			    "mail to %s)", st.bounced, st.bounced == 1 ? " is" :
			    "es are", st.bounced == 1 ? "it" : "them");
		say(s, "; see 'samail status' for the reasons");
		s->notable = 1;
	}
	if (st.cancelled > 0)
		say(s, ", %zu cancelled (declarers no longer active)",
		    st.cancelled);
	/* A quota the admin set: the rest go on the next runs. */
	if (st.capped > 0)
		say(s, "; [smtp] max_per_run (%lu) reached, %lld left for the "
		    "next runs", st.capped, left);
	if (st.recovered > 0) {
		/* As 'samail send' says it: re-sent, or held until an admin
		 * releases them (resend_in_flight = no). */
		if (st.held > 0)
			say(s, "; %zu were in flight when an earlier run "
			    "stopped: held for review (resend_in_flight = no), "
			    "check the relay's log, then 'samail send "
			    "--release-held'", st.held);
		else
			say(s, "; %zu were in flight when an earlier run "
			    "stopped: queued again, same Message-ID",
			    st.recovered);
		s->notable = 1;
	}
	/* A relay holding us off (75) stops the run too: say why. */
	if (rc < 0 && (rc != -ERR_TEMP || st.stopped))
		say(s, "; stopped: %s", e.msg);
	else if (due != 0) {	/* -1: unknown, maybe */
		if (due > 0)
			say(s, "; stopped by a signal, %lld left for the next "
			    "run", due);
		else
			say(s, "; stopped by a signal, messages may be left "
			    "for the next run");
		s->exit = err_worst(s->exit, EX_TEMPFAIL);
	}
}

/* --- the run ---------------------------------------------------------- */

static void
run_steps(struct run *r)
{
	static void (*const fn[NSTEPS])(struct run *, struct step *) = {
		step_fetch, step_remind, step_newsletter, step_send,
	};
	struct ctx *ctx = r->ctx;

	for (int i = 0; i < NSTEPS; i++) {
		struct step *s = &r->steps[i];
		double t0;

		if (atomic_load(&stop_flag)) {
			say(s, "not run: stopped by a signal");
			s->exit = EX_TEMPFAIL;
			continue;
		}
		log_step(step_names[i]);
		t0 = mono();
		ctx->now = run_clock(r);
		fn[i](r, s);
		/* Whatever a step left open is not the next step's. */
		db_rollback(ctx->db);
		err_clear(&ctx->err);
		s->secs = mono() - t0;
		if (s->exit != EX_OK)
			s->notable = 1;
		log_info("done in %.2f s, exit %d: %s", s->secs, s->exit,
		    buf_str(&s->line));
		fflush(stdout);
	}
	log_step(ctx->cmdname);
}

int
cmd_run(struct ctx *ctx, int argc, char **argv)
{
	static char name[32];
	struct run r;
	struct sigaction sa;
	struct buf summary = BUF_INIT(0);
	long long id;
	long problems;
	int worst = EX_OK, notable = 0, rc, accept_clock = 0;
	char start[24], last[21];

	if (argc >= 2 && cmd_is_help(argv[1])) {
		puts(run_usage);
		return EX_OK;
	}
	/* --accept-clock before or after daily|monthly. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--accept-clock") == 0) {
			accept_clock = 1;
			memmove(&argv[i], &argv[i + 1],
			    (size_t)(argc - i) * sizeof(*argv));
			argc--;
			i--;
		}
	if (argc != 2 || (strcmp(argv[1], "daily") != 0 &&
	    strcmp(argv[1], "monthly") != 0))
		return cmd_usage_error(ctx, run_usage, argc < 2 ? "daily or "
		    "monthly?" : argc > 2 ? "unexpected '%s'" : "'%s' is not "
		    "daily or monthly", argv[argc > 2 ? 2 : 1]);
	memset(&r, 0, sizeof(r));
	r.ctx = ctx;
	r.kind = argv[1];
	r.monthly = strcmp(r.kind, "monthly") == 0;
	r.now0 = ctx->now;
	r.t0 = mono();
	for (int i = 0; i < NSTEPS; i++)
		buf_init(&r.steps[i].line, 0);
	snprintf(name, sizeof(name), "run %s", r.kind);
	ctx->cmdname = name;
	/* Under cron every line is an event: when, how bad, which step. */
	log_init(ctx->verbosity, LOG_F_STAMP |
	    (ctx->cfg->log_syslog ? LOG_F_SYSLOG : 0));
	log_step(name);
	/* Any warning from here on (syslog unreachable, the first one)
	 * makes the step lines worth printing under -q. */
	problems = log_problems();

	if ((rc = cmd_db(ctx, 0)) < 0)
		return cmd_fail(ctx, rc);
	if ((rc = cmd_lock(ctx)) < 0) {
		struct err e = ERR_INIT;
		char *why = xasprintf("not run: %s", ctx->err.msg);

		rc = cmd_fail(ctx, rc);
		if (runs_record(ctx->db, r.kind, r.now0, run_clock(&r), rc, why,
		    &e) < 0)
			log_warnx("%s", e.msg);
		free(why);
		return rc;
	}
	runs_format_jst(r.now0, start);
	/* A clock that went back (a dead RTC battery before NTP synced, a
	 * clock set by hand) would build and mail a newsletter of the wrong
	 * month: with no --now, refuse it.  Under the lock, so the mark
	 * moves with the runs. */
	if (!ctx->now_given && (rc = runs_clock(ctx->db, r.now0, accept_clock,
	    last, &ctx->err)) != 0) {
		struct err e = ERR_INIT;
		char *why;
		time_t t;

		if (rc < 0)
			return cmd_fail(ctx, rc);
		if (last[0] != '\0' && date_parse_timestamp(last, &t, NULL) == 0)
			runs_format_jst(t, last);
		why = xasprintf(RUNS_CLOCK_REFUSED "%s, %s%s: "
		    "a clock that went back (NTP not synced yet, a dead RTC "
		    "battery) would build and send the wrong month's mail, so "
		    "nothing was done; fix the clock (timedatectl, chronyc "
		    "tracking) and the next run goes on%s%s", start, last[0] ?
		    "more than a day before the last run's, " : "before 2025",
		    last, last[0] ? ", or, if it is right and that run's was "
		    "wrong: samail run --accept-clock " : "", last[0] ? r.kind :
		    "");
		log_error("%s", why + 9);
		if (runs_record(ctx->db, r.kind, r.now0, r.now0, EX_TEMPFAIL,
		    why, &e) < 0)
			log_warnx("%s", e.msg);
		free(why);
		return EX_TEMPFAIL;
	}
	if ((id = runs_start(ctx->db, r.kind, r.now0, &ctx->err)) < 0)
		return cmd_fail(ctx, (int)id);
	log_info("run %lld (%s) started, pid %ld, clock %s", id, r.kind,
	    (long)getpid(), start);

	/* SIGTERM (systemd stopping the unit), SIGINT: finish the message
	 * in hand, skip the steps not begun, record the run. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	run_steps(&r);

	for (int i = 0; i < NSTEPS; i++) {
		worst = err_worst(worst, r.steps[i].exit);
		notable |= r.steps[i].notable;
		buf_addf(&summary, "%s%s: %s", i ? "\n" : "", step_names[i],
		    buf_str(&r.steps[i].line));
	}
	if (runs_finish(ctx->db, id, run_clock(&r), worst, buf_str(&summary),
	    &ctx->err) < 0) {
		log_error("%s", ctx->err.msg);
		worst = err_worst(worst, EX_IOERR);
	}
	/* A warning went to stderr, so cron mails this run anyway: let the
	 * mail end with what each step did, as every other one does. */
	if (log_problems() > problems)
		notable = 1;
	log_info("run %lld (%s) finished: exit %d (%s) after %ld s", id,
	    r.kind, worst, runs_exit_meaning(worst), run_secs(&r));
	if (ctx->verbosity >= 0 || worst != EX_OK || notable) {
		fflush(stderr);
		if (worst == EX_OK)
			printf("samail run %s, %s: ok after %ld s\n", r.kind,
			    start, run_secs(&r));
		else
			printf("samail run %s, %s: exit %d (%s) after %ld s\n",
			    r.kind, start, worst, runs_exit_meaning(worst),
			    run_secs(&r));
		for (int i = 0; i < NSTEPS; i++)
			printf("  %s: %s\n", step_names[i],
			    buf_str(&r.steps[i].line));
	}
	for (int i = 0; i < NSTEPS; i++)
		buf_release(&r.steps[i].line);
	buf_release(&summary);
	return worst;
}
