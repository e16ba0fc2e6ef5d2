/*
 * samail newsletter build|preview|skip
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "campaign.h"
#include "cmd.h"
#include "date.h"
#include "log.h"
#include "newsletter.h"
#include "outbox.h"
#include "runs.h"
#include "subscriber.h"
#include "token.h"
#include "xalloc.h"

static const char nl_usage[] =
"samail newsletter COMMAND ...\n"
"\n"
"  build [--period YYYY-MM] [--dry-run]\n"
"      create the campaign for that month's advisories (Japan time; default:\n"
"      last month) and queue one message per active declarer not queued\n"
"      yet; running it again queues only declarers added since (and\n"
"      those active again whose message was cancelled unsent)\n"
"  preview --email E [--period YYYY-MM] [--out FILE.eml]\n"
"      write exactly the message that declarer gets (nothing is stored)\n"
"  skip --period YYYY-MM\n"
"      drop that month's newsletter: no run builds it, and a month the\n"
"      runs missed (see 'samail status') is no longer reported\n"
"\n"
"build (except with --dry-run) and skip take the run lock: while a run\n"
"holds it, they wait up to [run] lock_timeout, then exit 75 naming the\n"
"holder.";

enum { O_PERIOD = 1, O_DRY, O_EMAIL, O_OUT, O_HELP };

static const struct option opts[] = {
	{ "period", required_argument, NULL, O_PERIOD },
	{ "dry-run", no_argument, NULL, O_DRY },
	{ "email", required_argument, NULL, O_EMAIL },
	{ "out", required_argument, NULL, O_OUT },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

/* The month before now's month, in Japan. */
static void
last_month(time_t now, int *y, int *m)
{
	int d;

	date_civil(date_jst_day(now), y, m, &d);
	if (--*m == 0) {
		*m = 12;
		--*y;
	}
}

struct args {
	int		 year, month;
	int		 dry_run;
	const char	*email;
	const char	*out;
};

static int
parse(struct ctx *ctx, int argc, char **argv, struct args *a, int preview)
{
	int ch;

	memset(a, 0, sizeof(*a));
	last_month(ctx->now, &a->year, &a->month);
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case O_PERIOD:
			if (date_parse_period(optarg, &a->year, &a->month,
			    &ctx->err) < 0)
				return cmd_usage_error(ctx, nl_usage, "--period: %s",
				    ctx->err.msg);
			break;
		case O_DRY:
			if (preview)
				goto bad;
			a->dry_run = 1;
			break;
		case O_EMAIL:
			if (!preview)
				goto bad;
			a->email = optarg;
			break;
		case O_OUT:
			if (!preview)
				goto bad;
			a->out = optarg;
			break;
		case O_HELP:
			puts(nl_usage);
			return -1;
		default:
			goto bad;
		}
	}
	if (optind < argc)
		return cmd_usage_error(ctx, nl_usage, "unexpected '%s'",
		    argv[optind]);
	if (preview && a->email == NULL)
		return cmd_usage_error(ctx, nl_usage, "preview needs --email");
	return 0;
bad:
	return cmd_usage_error(ctx, nl_usage, "option '%s' is unknown here or "
	    "needs a value", argv[optind - 1]);
}

static int
do_skip(struct ctx *ctx, int argc, char **argv)
{
	struct args a;
	sqlite3_stmt *st;
	char name[32], when[24], *old;
	time_t t;
	int rc, period = 0;

	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], "--period", 8) == 0 &&
		    (argv[i][8] == '\0' || argv[i][8] == '='))
			period = 1;
	if ((rc = parse(ctx, argc, argv, &a, 0)) != 0)
		return rc < 0 ? EX_OK : rc;
	/* Dropping a month is not done by default. */
	if (!period || a.dry_run)
		return cmd_usage_error(ctx, nl_usage, period ? "skip has no "
		    "--dry-run" : "skip needs --period YYYY-MM");
	newsletter_campaign_name(a.year, a.month, name);
	/* Under the run lock: a monthly run between "not skipped, build
	 * it" and its build would send the month being skipped. */
	if ((rc = cmd_db(ctx, 0)) < 0 || (rc = cmd_lock(ctx)) < 0 ||
	    (rc = cmd_begin(ctx)) < 0)
		return cmd_fail(ctx, rc);
	if ((st = db_prepare(ctx->db, "SELECT created FROM campaign WHERE "
	    "name = ?", &ctx->err)) == NULL) {
		rc = -ERR_DB;
		goto fail;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *c = (const char *)sqlite3_column_text(st, 0);

		if (date_parse_timestamp(c, &t, NULL) == 0)
			runs_format_jst(t, when);
		else
			snprintf(when, sizeof(when), "%s", c);
		sqlite3_finalize(st);
		rc = err_set(&ctx->err, ERR_INVAL, "%s was built on %s: there "
		    "is nothing to skip (its messages are in the queue; see "
		    "'samail status')", name, when);
		goto fail;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		rc = db_error(ctx->db, &ctx->err, "read campaign");
		goto fail;
	}
	if ((old = runs_skipped(ctx->db, a.year, a.month)) != NULL) {
		db_rollback(ctx->db);
		if (date_parse_timestamp(old, &t, NULL) == 0)
			runs_format_jst(t, when);
		else
			snprintf(when, sizeof(when), "%s", old);
		free(old);
		if (ctx->verbosity >= 0)
			printf("%s was skipped already, on %s\n", name, when);
		return EX_OK;
	}
	if ((rc = runs_skip(ctx->db, a.year, a.month, ctx->now,
	    &ctx->err)) < 0 || (rc = cmd_commit(ctx)) < 0)
		goto fail;
	if (ctx->verbosity >= 0)
		printf("%s skipped: no run builds it, and no run or status "
		    "mentions it again\n", name);
	return EX_OK;
fail:
	db_rollback(ctx->db);
	return cmd_fail(ctx, rc);
}

static int
setup(struct ctx *ctx, struct campaign_keys *keys, char *list_id)
{
	int rc;

	if ((rc = cmd_products(ctx)) < 0 || (rc = cmd_db(ctx, 0)) < 0 ||
	    (rc = campaign_keys_load(ctx->cfg, ctx->now, keys, &ctx->err)) < 0)
		return rc;
	campaign_list_id(ctx->cfg, list_id);
	return 0;
}

static void
fill_opts(struct ctx *ctx, const struct args *a, struct campaign_keys *keys,
    const char *list_id, struct newsletter_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->cfg = ctx->cfg;
	o->year = a->year;
	o->month = a->month;
	o->templates_dir = ctx->cfg->templates_dir;
	o->max_advisories = ctx->cfg->nl_max_advisories;
	o->max_alerts = ctx->cfg->nl_max_alerts;
	o->dict = &ctx->products;
	o->keys = &keys->k;
	o->list_id = list_id;
}

static int
do_build(struct ctx *ctx, int argc, char **argv)
{
	struct args a;
	struct campaign_keys keys;
	struct newsletter_opts o;
	struct newsletter_stats st;
	char list_id[256];
	int rc;

	if ((rc = parse(ctx, argc, argv, &a, 0)) != 0)
		return rc < 0 ? EX_OK : rc;
	memset(&keys, 0, sizeof(keys));
	/* Under the run lock: a cron run deciding whether to build the
	 * same month waits, or this one does (75 naming the holder). */
	if ((rc = setup(ctx, &keys, list_id)) < 0 ||
	    (!a.dry_run && (rc = cmd_lock(ctx)) < 0) ||
	    (rc = cmd_begin(ctx)) < 0)
		goto fail;
	fill_opts(ctx, &a, &keys, list_id, &o);
	if ((rc = newsletter_build(ctx->db, &o, ctx->now, &st, &ctx->err)) < 0) {
		db_rollback(ctx->db);
		goto fail;
	}
	if (a.dry_run)
		db_rollback(ctx->db);
	else if ((rc = cmd_commit(ctx)) < 0)
		goto fail;
	campaign_keys_release(&keys);
	if (ctx->verbosity >= 0)
		printf("%snewsletter-%04d-%02d: %s; %zu advisor%s (%zu IPA "
		    "alert%s); %zu queued (%zu with advisories for their "
		    "products), %zu queued before, %zu suppressed\n",
		    a.dry_run ? "dry run, nothing stored: " : "", a.year,
		    a.month, st.created ? "campaign created" :
		    "campaign exists", st.advisories, st.advisories == 1 ?
		    "y" : "ies", st.alerts, st.alerts == 1 ? "" : "s",
		    st.queued, st.matched, st.already, st.suppressed);
	return EX_OK;
fail:
	campaign_keys_release(&keys);
	return cmd_fail(ctx, rc);
}

static int
do_preview(struct ctx *ctx, int argc, char **argv)
{
	struct args a;
	struct campaign_keys keys;
	struct newsletter_opts o;
	struct newsletter_stats st;
	struct campaign_env env;
	struct campaign_run *run = NULL;
	struct outbox_row row;
	struct subscriber s;
	struct buf msg = BUF_INIT(0);
	char list_id[256], email[ADDR_MAX + 1], instance[9];
	FILE *fp;
	int rc;

	memset(&row, 0, sizeof(row));
	sub_init(&s);
	if ((rc = parse(ctx, argc, argv, &a, 1)) != 0)
		return rc < 0 ? EX_OK : rc;
	if (addr_check(a.email, email, &ctx->err) < 0)
		return cmd_fail(ctx, -ERR_INVAL);
	memset(&keys, 0, sizeof(keys));
	if ((rc = setup(ctx, &keys, list_id)) < 0 || (rc = cmd_begin(ctx)) < 0)
		goto out;
	if ((rc = sub_get(ctx->db, email, &s, &ctx->err)) < 0)
		goto out;
	if (strcmp(s.status, "active") != 0) {
		rc = err_set(&ctx->err, ERR_INVAL, "'%s' is %s: it gets no "
		    "newsletter", email, s.status);
		goto out;
	}
	/* Build as the real thing would, for this one declarer, render the
	 * row, and roll everything back: a preview stores nothing. */
	fill_opts(ctx, &a, &keys, list_id, &o);
	o.only_email = email;
	if ((rc = newsletter_build(ctx->db, &o, ctx->now, &st, &ctx->err)) < 0 ||
	    (rc = campaign_instance(ctx->db, instance, &ctx->err)) < 0)
		goto out;
	if ((rc = outbox_get(ctx->db, st.campaign_id, s.id, "", &row,
	    &ctx->err)) < 0)
		goto out;
	if (row.id == 0) {
		rc = err_set(&ctx->err, ERR_INVAL, "'%s' is not queued for "
		    "newsletter-%04d-%02d and could not be", email, a.year,
		    a.month);
		goto out;
	}
	memset(&env, 0, sizeof(env));
	env.cfg = ctx->cfg;
	env.instance = instance;
	env.keys = &keys.k;
	if ((rc = campaign_load(ctx->db, st.campaign_id, &env, &run,
	    &ctx->err)) < 0 ||
	    (rc = campaign_render(run, &row, &msg, &ctx->err)) < 0)
		goto out;
	if (a.out != NULL) {
		int fd = open(a.out, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
		    O_CLOEXEC, 0600);

		if (fd < 0 || (fp = fdopen(fd, "wb")) == NULL) {
			if (fd >= 0)
				close(fd);
			rc = err_set(&ctx->err, ERR_CANTCREAT, "cannot create "
			    "'%s': %m", a.out);
			goto out;
		}
		if (fwrite(msg.data, 1, msg.len, fp) != msg.len ||
		    fclose(fp) != 0) {
			rc = err_set(&ctx->err, ERR_IO, "write '%s': %m", a.out);
			goto out;
		}
		if (ctx->verbosity >= 0)
			fprintf(stderr, "samail newsletter preview: wrote '%s' "
			    "(%zu bytes)\n", a.out, msg.len);
	} else
		fwrite(msg.data, 1, msg.len, stdout);
	rc = 0;
out:
	if (ctx->db != NULL)
		db_rollback(ctx->db);
	campaign_run_free(run);
	campaign_keys_release(&keys);
	outbox_row_release(&row);
	sub_release(&s);
	buf_release(&msg);
	return rc < 0 ? cmd_fail(ctx, rc) : EX_OK;
}

int
cmd_newsletter(struct ctx *ctx, int argc, char **argv)
{
	static const struct subcmd sub[] = {
		{ "build", do_build }, { "preview", do_preview },
		{ "skip", do_skip },
	};

	return cmd_dispatch(ctx, "newsletter", nl_usage, sub, sizeof(sub) / sizeof(sub[0]),
	    argc, argv);
}
