/*
 * samail status [--json] [--all]
 */
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "bounce.h"
#include "buf.h"
#include "cmd.h"
#include "date.h"
#include "log.h"
#include "newsletter.h"
#include "remind.h"
#include "runs.h"
#include "sender.h"
#include "status.h"
#include "unsub.h"
#include "wrap.h"
#include "xalloc.h"

static const char status_usage[] =
"samail status [--json] [--all]\n"
"\n"
"What an admin checks in the morning:\n"
"  - the last run of each kind (daily, monthly), its exit status and what\n"
"    each step did; a run in progress or one that died; no daily run\n"
"    for more than two days (cron or the timer stopped starting it)\n"
"  - the newsletters of the last 12 months that no run built in their time\n"
"    (machine off), until built by hand or skipped\n"
"  - the queue per campaign: queued, in flight, sent, deferred, failed,\n"
"    held, cancelled, with the top failure reasons (campaigns of the last\n"
"    35 days and those with messages still to go; --all: every campaign)\n"
"  - feeds failing for more than a day\n"
"  - addresses that bounced or unsubscribed this month (Japan time), and\n"
"    policy bounces: receivers refusing the sending set-up (block list,\n"
"    SPF/DKIM/DMARC), the last one with what to check\n"
"  - the reminders due in the next days, and those queued but not sent\n"
"Times are shown in Japan time; --json gives one array of records, each\n"
"with a \"type\" (run, lock, newsletter_missed, campaign, content_refused,\n"
"feed, address_counts, address, reminder_due, reminder), times in UTC.";

#define RECENT_DAYS	35
#define SHOW_ADDRESSES	20
#define SHOW_REMINDERS	10
#define FORECAST_DAYS	7

struct out {
	struct ctx	*ctx;
	json_t		*arr;		/* --json: the records */
	const char	*lock_holder;	/* NULL: no run holds the lock */
	long		 n;
};

/* A length of valid UTF-8 at p (1 to 4), or 0. */
static size_t
utf8_len(const unsigned char *p)
{
	size_t n, i;
	unsigned c = p[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	/* No overlong forms, surrogates or code points past U+10FFFF. */
	if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0) ||
	    (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))
		return 0;
	return n;
}

/*
 * A JSON string of s, or null.  What is stored may quote the outside (a
 * relay's reply, a feed's error, a bounce's reason) in bytes that are not
 * UTF-8: json_string() refuses those, and the key would silently be
 * missing; each such byte becomes U+FFFD instead.
 */
static json_t *
jstr(const char *s)
{
	json_t *j;
	struct buf b = BUF_INIT(0);
	size_t n;

	if (s == NULL)
		return json_null();
	if ((j = json_string(s)) != NULL)
		return j;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0';
	    p += n) {
		if ((n = utf8_len(p)) == 0) {
			buf_addf(&b, "\xef\xbf\xbd");
			n = 1;
		} else
			buf_addf(&b, "%.*s", (int)n, (const char *)p);
	}
	j = json_string(buf_str(&b));
	buf_release(&b);
	return j != NULL ? j : json_string("");
}

/* A stored UTC timestamp as "2026-11-01 09:00 JST", or as stored. */
static const char *
jst(const char *ts, char *out)
{
	time_t t;

	if (ts == NULL)
		return "-";
	if (date_parse_timestamp(ts, &t, NULL) < 0)
		return ts;
	runs_format_jst(t, out);
	return out;
}

static long
secs_between(const char *a, const char *b)
{
	time_t ta, tb;

	if (a == NULL || b == NULL || date_parse_timestamp(a, &ta, NULL) < 0 ||
	    date_parse_timestamp(b, &tb, NULL) < 0)
		return -1;
	return (long)(tb - ta);
}

static void
duration(long s, char *out, size_t n)
{
	if (s < 0)
		snprintf(out, n, "?");
	else if (s < 120)
		snprintf(out, n, "%ld s", s);
	else if (s < 7200)
		snprintf(out, n, "%ld min %ld s", s / 60, s % 60);
	else
		snprintf(out, n, "%ld h %ld min", s / 3600, s / 60 % 60);
}

/*
 * The human form is read in a terminal and in cron's mail: lines of at
 * most 80 columns.  wrapf() prints one formatted line (its own leading
 * blanks included), broken at blanks into lines of at most WIDTH columns,
 * the continuations indented by cont.  A CJK character takes two
 * columns; a word longer than a line (a URL) is left whole.
 */
#define WIDTH	80

static void
wrapf(int cont, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
wrapf(int cont, const char *fmt, ...)
{
	va_list ap;
	char *line, *p, *brk, *start, *end;
	int col, len;
	size_t n;

	va_start(ap, fmt);
	if ((len = vasprintf(&line, fmt, ap)) < 0)
		line = NULL;
	va_end(ap);
	if (line == NULL)
		return;
	end = line + len;
	start = line;
	col = 0;
	for (;;) {
		/* Past the indentation, the last blank that fits. */
		brk = NULL;
		p = start;
		while (*p == ' ') {
			p++;
			col++;
		}
		for (; *p != '\0'; p += n) {
			/* Columns as the mail's text part counts them. */
			int w = wrap_char(p, (size_t)(end - p), &n);

			/* Past a word longer than the line, its end. */
			if (*p == ' ' && (col <= WIDTH || brk == NULL))
				brk = p;
			col += w;
			if (col > WIDTH && brk != NULL)
				break;
		}
		if (*p == '\0' || brk == NULL) {
			printf("%s\n", start);
			break;
		}
		printf("%.*s\n%*s", (int)(brk - start), start, cont, "");
		start = brk;
		while (*start == ' ')
			start++;
		col = cont;
	}
	free(line);
}

/* The command that holds the lock ("run daily", "send"), from the lock
 * line's ", samail CMD"; NULL when the line does not say (an older
 * samail wrote it). */
static const char *
holder_cmd(const char *holder)
{
	const char *p = strstr(holder, ", samail ");

	return p != NULL && p[9] != '\0' ? p + 9 : NULL;
}

/* The lock's pid and start ("pid N, started 2026-11-26T19:53:02Z"):
 * 1, or 0 when the line does not say them. */
static int
holder_parse(const char *holder, long *pid, char ts[21], time_t *when)
{
	return sscanf(holder, "pid %ld, started %20s", pid, ts) == 2 &&
	    date_parse_timestamp(ts, when, NULL) == 0;
}

/* The lock's "pid N, started 2026-11-26T19:53:02Z, samail send" as "pid
 * N, started 04:53 JST, samail send" (the date too when it is not
 * today's). */
static void
holder_jst(const char *holder, time_t now, char *out, size_t size)
{
	char ts[21], t[24], today[24];
	const char *cmd = holder_cmd(holder);
	long pid;
	time_t when;

	if (!holder_parse(holder, &pid, ts, &when)) {
		snprintf(out, size, "%s", *holder ? holder : "holder unknown");
		return;
	}
	runs_format_jst(when, t);
	runs_format_jst(now, today);
	snprintf(out, size, "pid %ld, started %s%s%s", pid,
	    strncmp(t, today, 10) == 0 ? t + 11 : t, cmd ? ", samail " : "",
	    cmd ? cmd : "");
}

/* --- runs ------------------------------------------------------------- */

/* A daily run older than this: the runs have stopped (two days, so that
 * a run late by some hours is not taken for one that never came). */
#define STALE_DAILY	(2 * 86400L)

static const char *
run_state(const struct status_run *r, const struct out *o)
{
	if (r->finished != NULL)
		return "finished";
	if (r->interrupted)
		return "interrupted";
	/* The lock held by 'samail send' (an admin's) is not this run's:
	 * the run died all the same. */
	if (o->lock_holder != NULL) {
		const char *cmd = holder_cmd(o->lock_holder);

		if (cmd == NULL || strncmp(cmd, "run ", 4) == 0)
			return "running";
	}
	return "died";
}

static int
print_run(const struct status_run *r, void *arg)
{
	struct out *o = arg;
	const char *state = run_state(r, o);
	char t1[24], t2[24], d[32];

	if (o->arr != NULL) {
		json_t *j = json_object(), *lines = json_array();
		char *copy, *line, *save = NULL;

		json_object_set_new(j, "type", json_string("run"));
		json_object_set_new(j, "kind", json_string(r->kind));
		json_object_set_new(j, "state", json_string(state));
		json_object_set_new(j, "started", jstr(r->started));
		json_object_set_new(j, "finished", jstr(r->finished));
		json_object_set_new(j, "exit_code", r->exit_code >= 0 ?
		    json_integer(r->exit_code) : json_null());
		if (r->summary != NULL && !r->interrupted) {
			copy = xstrdup(r->summary);
			for (line = strtok_r(copy, "\n", &save); line != NULL;
			    line = strtok_r(NULL, "\n", &save))
				json_array_append_new(lines, jstr(line));
			free(copy);
		}
		json_object_set_new(j, "summary", lines);
		json_object_set_new(j, "last_ok", jstr(r->last_ok));
		json_array_append_new(o->arr, j);
		return 0;
	}
	if (o->n++ == 0)
		printf("Runs\n");
	printf("  %-8s %s  ", r->kind, jst(r->started, t1));
	if (strcmp(state, "finished") == 0) {
		duration(secs_between(r->started, r->finished), d, sizeof(d));
		if (r->exit_code == 0)
			printf("ok, %s\n", d);
		else
			printf("exit %d (%s), %s\n", r->exit_code,
			    runs_exit_meaning(r->exit_code), d);
	} else if (strcmp(state, "running") == 0) {
		char h[64];

		holder_jst(o->lock_holder, o->ctx->now, h, sizeof(h));
		printf("running now (%s)\n", h);
	} else if (strcmp(state, "interrupted") == 0) {
		printf("INTERRUPTED\n");
		wrapf(13, "             the process ended without finishing "
		    "(killed, or the machine stopped); the next run went on "
		    "from where it stopped");
	} else {
		printf("DID NOT FINISH\n");
		wrapf(13, "             the process is gone (killed, or the "
		    "machine stopped); the next run records it as interrupted "
		    "and goes on from where it stopped");
	}
	if (r->summary != NULL && !r->interrupted) {
		const char *p = r->summary, *nl;

		for (; *p != '\0'; p = *nl ? nl + 1 : nl) {
			nl = p + strcspn(p, "\n");
			wrapf(15, "             %.*s", (int)(nl - p), p);
		}
	}
	if (r->exit_code != 0 && r->last_ok != NULL)
		printf("             last run that ended ok: %s\n",
		    jst(r->last_ok, t2));
	else if (r->exit_code != 0)
		printf("             no %s run has ended ok yet\n", r->kind);
	/* Cron that stopped running the job (the user's account expired,
	 * a cron file with a dot in its name) mails nobody: say it here. */
	if (strcmp(r->kind, "daily") == 0 && strcmp(state, "running") != 0) {
		time_t started;

		if (date_parse_timestamp(r->started, &started, NULL) == 0 &&
		    o->ctx->now - started > STALE_DAILY)
			wrapf(15, "             NO DAILY RUN SINCE, for %ld days: "
			    "check that cron or the timer still starts it "
			    "(systemctl list-timers 'samail*', or the cron "
			    "log: grep CRON /var/log/syslog)",
			    (long)((o->ctx->now - started) / 86400));
	}
	return 0;
}

/* --- newsletters no run built ---------------------------------------- */

static int
print_missed(const struct runs_missed *mi, void *arg)
{
	struct out *o = arg;
	char name[32], period[8], why[640], advice[160], due[24];

	newsletter_campaign_name(mi->year, mi->month, name);
	if (o->arr != NULL) {
		json_t *j = json_object();
		char ts[21];

		snprintf(period, sizeof(period), "%04d-%02d", mi->year % 10000,
		    mi->month);
		json_object_set_new(j, "type", json_string("newsletter_missed"));
		json_object_set_new(j, "period", json_string(period));
		json_object_set_new(j, "campaign", json_string(name));
		date_format_timestamp(mi->open, ts);
		json_object_set_new(j, "due", json_string(ts));
		date_format_timestamp(mi->close, ts);
		json_object_set_new(j, "until", json_string(ts));
		json_object_set_new(j, "runs_in_window",
		    json_integer(mi->runs_in_window));
		json_object_set_new(j, "last_run_before", jstr(
		    mi->last_before[0] ? mi->last_before : NULL));
		json_object_set_new(j, "first_run_after", jstr(
		    mi->first_after[0] ? mi->first_after : NULL));
		json_object_set_new(j, "last_run_in_window", jstr(
		    mi->last_in_window[0] ? mi->last_in_window : NULL));
		json_array_append_new(o->arr, j);
		return 0;
	}
	if (o->n++ == 0)
		printf("\nNewsletters never built\n");
	runs_missed_reason(mi, why, sizeof(why));
	runs_missed_advice(mi, advice, sizeof(advice));
	runs_format_jst(mi->open, due);
	wrapf(4, "  %s (due %s): %s; %s", name, due, why, advice);
	return 0;
}

/* --- the queue -------------------------------------------------------- */

static int
print_campaign(const struct status_campaign *c, void *arg)
{
	struct out *o = arg;
	char t[24];

	if (o->arr != NULL) {
		json_t *j = json_object(), *rs = json_array();

		json_object_set_new(j, "type", json_string("campaign"));
		json_object_set_new(j, "name", json_string(c->name));
		json_object_set_new(j, "kind", json_string(c->kind));
		json_object_set_new(j, "created", jstr(c->created));
		for (int i = 0; i < ST__N; i++)
			json_object_set_new(j, status_state_name(i),
			    json_integer(c->count[i]));
		json_object_set_new(j, "total", json_integer(c->total));
		for (size_t i = 0; i < c->nreasons; i++) {
			json_t *r = json_object();

			json_object_set_new(r, "state", json_string(
			    status_state_name(c->reasons[i].state)));
			json_object_set_new(r, "count",
			    json_integer(c->reasons[i].count));
			json_object_set_new(r, "reason",
			    jstr(c->reasons[i].text));
			json_array_append_new(rs, r);
		}
		json_object_set_new(j, "top_reasons", rs);
		json_array_append_new(o->arr, j);
		return 0;
	}
	if (o->n++ == 0)
		printf("\nQueue per campaign\n");
	printf("  %s (created %s)\n", c->name, jst(c->created, t));
	{
		/* The states that always matter, then the others that are
		 * not zero: one line that fits even at 300,000. */
		static const int always[] = { ST_QUEUED, ST_INFLIGHT, ST_SENT,
		    ST_DEFERRED, ST_FAILED };
		struct buf b = BUF_INIT(0);

		for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
			buf_addf(&b, "%s%s %ld", i ? ", " : "",
			    status_state_name(always[i]), c->count[always[i]]);
		if (c->count[ST_HELD] > 0)
			buf_addf(&b, ", held %ld", c->count[ST_HELD]);
		if (c->count[ST_CANCELLED] > 0)
			buf_addf(&b, ", cancelled %ld", c->count[ST_CANCELLED]);
		wrapf(6, "    %s", buf_str(&b));
		buf_release(&b);
	}
	for (size_t i = 0; i < c->nreasons; i++)
		wrapf(8, "      %s %ld× %s", status_state_name(
		    c->reasons[i].state), c->reasons[i].count,
		    c->reasons[i].text);
	/* What to do about the ones that did not go. */
	if (c->count[ST_HELD] > 0)
		wrapf(6, "    held: in flight when a run stopped (resend_in_flight "
		    "= no); check the relay's log, then: samail send "
		    "--release-held --campaign %s", c->name);
	if (c->count[ST_FAILED] > 0)
		wrapf(6, "    failed: once the cause is fixed, queue them again: "
		    "samail send --retry-failed --campaign %s", c->name);
	return 0;
}

/* --- feeds ------------------------------------------------------------ */

static int
print_feed(const struct status_feed *f, void *arg)
{
	struct out *o = arg;
	char t[24];

	if (o->arr != NULL) {
		json_t *j = json_object();

		json_object_set_new(j, "type", json_string("feed"));
		json_object_set_new(j, "name", json_string(f->name));
		json_object_set_new(j, "url", json_string(f->url));
		json_object_set_new(j, "failures", json_integer(f->failures));
		json_object_set_new(j, "last_success", jstr(f->last_success));
		json_object_set_new(j, "last_fetch", jstr(f->last_fetch));
		json_object_set_new(j, "last_status", f->last_status > 0 ?
		    json_integer(f->last_status) : json_null());
		json_object_set_new(j, "last_error", jstr(f->last_error));
		json_array_append_new(o->arr, j);
		return 0;
	}
	o->n++;
	wrapf(15, "  %-12s %ld failed fetch%s in a row; last ok: %s", f->name,
	    f->failures, f->failures == 1 ? "" : "es", f->last_success ?
	    jst(f->last_success, t) : "never");
	if (f->last_error != NULL)
		wrapf(15, "  %-12s last error: %s", "", f->last_error);
	return 0;
}

/* --- addresses -------------------------------------------------------- */

static int
print_address(const struct status_address *a, void *arg)
{
	struct out *o = arg;
	char t[24];

	if (o->arr != NULL) {
		json_t *j = json_object();

		json_object_set_new(j, "type", json_string("address"));
		json_object_set_new(j, "email", json_string(a->email));
		json_object_set_new(j, "status", json_string(a->status));
		json_object_set_new(j, "changed", jstr(a->changed));
		json_object_set_new(j, "reason", jstr(a->reason));
		json_array_append_new(o->arr, j);
		return 0;
	}
	if (o->n++ < SHOW_ADDRESSES)
		wrapf(15, "  %-12s %-32s %s%s%s", a->status, a->email,
		    jst(a->changed, t), a->reason ? "  " : "",
		    a->reason ? a->reason : "");
	return 0;
}

/* --- reminders -------------------------------------------------------- */

static int
print_reminder(const struct status_reminder *r, void *arg)
{
	struct out *o = arg;
	char t[24], when[48];

	if (o->arr != NULL) {
		json_t *j = json_object();

		json_object_set_new(j, "type", json_string("reminder"));
		json_object_set_new(j, "email", json_string(r->email));
		json_object_set_new(j, "kind", json_string(r->kind));
		json_object_set_new(j, "due", json_string(r->due));
		json_object_set_new(j, "offset_days", json_integer(r->offset));
		json_object_set_new(j, "queued", jstr(r->queued));
		json_object_set_new(j, "state", json_string(r->state));
		json_array_append_new(o->arr, j);
		return 0;
	}
	if (r->offset > 0)
		snprintf(when, sizeof(when), "%d days before", r->offset);
	else if (r->offset == 0)
		snprintf(when, sizeof(when), "on the day");
	else
		snprintf(when, sizeof(when), "%d days overdue", -r->offset);
	if (o->n++ < SHOW_REMINDERS)
		wrapf(6, "  %s: %s due %s (%s), queued %s, %s", r->email,
		    r->kind, r->due, when, jst(r->queued, t), r->state);
	return 0;
}

static void
print_forecast(struct out *o, const struct status_forecast *f)
{
	char day[11];
	int any = 0;

	if (o->arr == NULL)
		printf("\nReminders due in the next %d days (from the [remind] "
		    "rules, %ld active declarers)\n", f->ndays, f->declarers);
	for (int i = 0; i < f->ndays; i++) {
		if (f->reassess[i] + f->stepup[i] == 0)
			continue;
		date_format(f->first + i, day);
		any = 1;
		if (o->arr != NULL) {
			json_t *j = json_object();

			json_object_set_new(j, "type", json_string("reminder_due"));
			json_object_set_new(j, "date", json_string(day));
			json_object_set_new(j, "reassess",
			    json_integer(f->reassess[i]));
			json_object_set_new(j, "stepup",
			    json_integer(f->stepup[i]));
			json_array_append_new(o->arr, j);
		} else
			printf("  %s  %ld reassess, %ld step-up\n", day,
			    f->reassess[i], f->stepup[i]);
	}
	if (!any && o->arr == NULL)
		printf("  none\n");
}

/* --- the command ------------------------------------------------------ */

int
cmd_status(struct ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct out o;
	struct unsub_stats us;
	struct bounce_policy_summary pol;
	struct remind_rules rules;
	struct status_forecast fc;
	struct err e = ERR_INIT;
	char holder[128], since[21], month_start[21], before[21];
	char *refused;
	long nfeeds = 0;
	int ch, all = 0, rc, y, m, d;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'j': ctx->json = 1; break;
		case 'a': all = 1; break;
		case 'h': puts(status_usage); return EX_OK;
		default:
			return cmd_usage_error(ctx, status_usage, "option '%s' "
			    "is unknown here", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cmd_usage_error(ctx, status_usage, "unexpected '%s'",
		    argv[optind]);
	if ((rc = cmd_db(ctx, 0)) < 0)
		return cmd_fail(ctx, rc);

	memset(&o, 0, sizeof(o));
	o.ctx = ctx;
	if (ctx->json)
		o.arr = json_array();
	if ((rc = runs_lock_holder(ctx->cfg->db_path, holder, sizeof(holder),
	    &e)) < 0)
		log_warnx("%s", e.msg);
	o.lock_holder = rc == 1 ? holder : NULL;

	date_format_timestamp(ctx->now - RECENT_DAYS * 86400L, since);
	date_format_timestamp(ctx->now - 86400, before);
	date_civil(date_jst_day(ctx->now), &y, &m, &d);
	date_format_timestamp(date_jst_time(date_days(y, m, 1), 0, 0),
	    month_start);

	/* Runs. */
	if ((rc = status_runs(ctx->db, print_run, &o, &ctx->err)) < 0)
		goto fail;
	if (o.arr == NULL && o.n == 0)
		printf("Runs\n  none yet: 'samail run daily' records each run "
		    "here\n");
	if (o.arr == NULL && o.lock_holder != NULL) {
		char h[64];

		holder_jst(holder, ctx->now, h, sizeof(h));
		printf("  a samail holds the run lock now: %s\n", h);
	} else if (o.lock_holder != NULL) {
		/* As the text says it: a run (or `samail send`) holds the
		 * lock now, whatever run row is the newest. */
		json_t *j = json_object();
		char ts[21];
		long pid;
		time_t when;

		json_object_set_new(j, "type", json_string("lock"));
		if (holder_parse(holder, &pid, ts, &when)) {
			json_object_set_new(j, "pid", json_integer(pid));
			json_object_set_new(j, "started", json_string(ts));
		} else {
			json_object_set_new(j, "pid", json_null());
			json_object_set_new(j, "started", json_null());
		}
		json_object_set_new(j, "command", jstr(holder_cmd(holder)));
		json_array_append_new(o.arr, j);
	}

	/* Newsletters the runs missed (lib/runs.h): only when there are. */
	o.n = 0;
	if ((rc = runs_missed(ctx->db, ctx->now, ctx->cfg->nl_day,
	    ctx->cfg->nl_hour, print_missed, &o, &ctx->err)) < 0)
		goto fail;

	/* The queue. */
	o.n = 0;
	if ((rc = status_campaigns(ctx->db, all ? NULL : since, print_campaign,
	    &o, &ctx->err)) < 0)
		goto fail;
	if (o.arr == NULL && o.n == 0)
		printf("\nQueue per campaign\n  no campaigns%s\n", all ? "" :
		    " in the last 35 days and nothing left to send");
	/* A relay refusing our content: every run stops at once (sender.h). */
	if ((refused = db_meta_get(ctx->db, SENDER_META_REFUSED)) != NULL) {
		if (o.arr == NULL)
			wrapf(4, "  the relay refuses our messages for what they "
			    "are (%s): each run stops at the first such refusal "
			    "until one goes through; fix the content or SPF/DKIM/"
			    "DMARC of [mail] from, then 'samail send "
			    "--retry-failed'", refused);
		else {
			json_t *j = json_object();

			json_object_set_new(j, "type",
			    json_string("content_refused"));
			json_object_set_new(j, "detail", jstr(refused));
			json_array_append_new(o.arr, j);
		}
		free(refused);
	}

	/* Feeds. */
	o.n = 0;
	if (o.arr == NULL)
		printf("\nFeeds failing for more than a day\n");
	if ((rc = status_failing_feeds(ctx->db, before, print_feed, &o, &nfeeds,
	    &ctx->err)) < 0)
		goto fail;
	if (o.arr == NULL && o.n == 0)
		printf("  none (of %ld feed%s)\n", nfeeds, nfeeds == 1 ? "" : "s");
	else if (o.arr == NULL)
		wrapf(4, "  a feed whose URL changed (HTTP 404 or 410): samail "
		    "feed remove NAME, then samail feed add URL --name NAME");

	/* Addresses: the counts (lib/unsub), then who. */
	o.n = 0;
	if ((rc = unsub_stats(ctx->db, unsub_month_start(ctx->now), &us,
	    &ctx->err)) < 0)
		goto fail;
	/* Policy bounces: the receivers refusing our sending set-up (block
	 * list, SPF/DKIM/DMARC), which marks nobody (lib/bounce.h). */
	{
		char ts[21];

		date_format_timestamp(unsub_month_start(ctx->now), ts);
		if ((rc = bounce_policy_since(ctx->db, ts, &pol,
		    &ctx->err)) < 0)
			goto fail;
	}
	if (o.arr == NULL) {
		char when[64];

		printf("\nAddresses that left this month (%04d-%02d): %ld "
		    "bounced, %ld unsubscribed\n", y, m, us.bounced_since,
		    us.unsubscribed_since);
		wrapf(4, "  bounce reports received this month: %ld permanent, %ld "
		    "temporary, %ld policy; in all now: %ld bounced, %ld "
		    "unsubscribed", us.hard_since, us.soft_since, pol.count,
		    us.bounced, us.unsubscribed);
		if (pol.count > 0)
			wrapf(4, "  policy bounces: receivers refused the sending "
			    "set-up, not the addresses (nobody was marked "
			    "bounced); the last, %s, %s: %s; %s",
			    jst(pol.received, when), pol.status, pol.diag,
			    bounce_policy_hint(pol.status, pol.diag));
	} else {
		json_t *j = json_object();
		char month[8];

		snprintf(month, sizeof(month), "%04d-%02d", y % 10000, m);
		json_object_set_new(j, "type", json_string("address_counts"));
		json_object_set_new(j, "month", json_string(month));
		json_object_set_new(j, "bounced_this_month",
		    json_integer(us.bounced_since));
		json_object_set_new(j, "unsubscribed_this_month",
		    json_integer(us.unsubscribed_since));
		json_object_set_new(j, "bounce_reports_permanent",
		    json_integer(us.hard_since));
		json_object_set_new(j, "bounce_reports_temporary",
		    json_integer(us.soft_since));
		json_object_set_new(j, "bounce_reports_policy",
		    json_integer(pol.count));
		if (pol.count > 0) {
			json_t *l = json_object();

			json_object_set_new(l, "received",
			    json_string(pol.received));
			json_object_set_new(l, "status", json_string(pol.status));
			json_object_set_new(l, "diagnostic",
			    json_string(pol.diag));
			json_object_set_new(l, "advice", json_string(
			    bounce_policy_hint(pol.status, pol.diag)));
			json_object_set_new(j, "last_policy_bounce", l);
		}
		json_object_set_new(j, "bounced", json_integer(us.bounced));
		json_object_set_new(j, "unsubscribed",
		    json_integer(us.unsubscribed));
		json_array_append_new(o.arr, j);
	}
	if ((rc = status_left(ctx->db, month_start, print_address, &o,
	    &ctx->err)) < 0)
		goto fail;
	if (o.arr == NULL && o.n > SHOW_ADDRESSES)
		printf("  ... and %ld more: samail subscriber list --status "
		    "bounced (or unsubscribed)\n", o.n - SHOW_ADDRESSES);

	/* Reminders: what the rules will queue, then what is queued. */
	remind_rules_from_config(ctx->cfg, &rules);
	if ((rc = status_forecast(ctx->db, &rules, date_jst_day(ctx->now),
	    FORECAST_DAYS, &fc, &ctx->err)) < 0)
		goto fail;
	print_forecast(&o, &fc);
	o.n = 0;
	if (o.arr == NULL)
		printf("\nReminders queued, not sent yet\n");
	if ((rc = status_reminders_pending(ctx->db, print_reminder, &o,
	    &ctx->err)) < 0)
		goto fail;
	if (o.arr == NULL) {
		if (o.n == 0)
			printf("  none\n");
		else if (o.n > SHOW_REMINDERS)
			printf("  ... and %ld more (%ld in all)\n",
			    o.n - SHOW_REMINDERS, o.n);
	}

	if (o.arr != NULL) {
		char *s = json_dumps(o.arr, JSON_INDENT(1) |
		    JSON_PRESERVE_ORDER);

		puts(s);
		free(s);
		json_decref(o.arr);
	}
	return EX_OK;
fail:
	if (o.arr != NULL)
		json_decref(o.arr);
	return cmd_fail(ctx, rc);
}
