/*
 * samail remind build [--dry-run]
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "campaign.h"
#include "cmd.h"
#include "date.h"
#include "log.h"
#include "remind.h"

static const char rm_usage[] =
"samail remind build [--dry-run]\n"
"\n"
"  build   queue the self-diagnosis reminders due today (Japan time, the\n"
"          --now clock), in the day's campaign reminder-YYYY-MM-DD; a day\n"
"          missed is caught up, up to [remind] catch_up_days late; the\n"
"          unsent reminders of a cycle that ended (new self-diagnosis, star\n"
"          or dates changed) are cancelled.  Safe to run again: nothing is\n"
"          queued twice.  --dry-run: report, store nothing.\n"
"\n"
"Except with --dry-run it takes the run lock: while a run holds it, it\n"
"waits up to [run] lock_timeout, then exits 75 naming the holder.";

static void
print_summary(const char *name, const struct remind_stats *st, int dry)
{
	static const char *const kinds[] = { "", "reassess", "stepup" };
	static const char *const pos[] = { "before", "on the day", "overdue" };
	int any = 0;

	printf("%s%s: %zu queued", dry ? "dry run, nothing stored: " : "",
	    name, st->queued_total);
	for (int k = 1; k <= 2; k++) {
		size_t sum = st->queued[k][0] + st->queued[k][1] +
		    st->queued[k][2];

		if (sum == 0)
			continue;
		printf("%s%s:", any++ ? "; " : " (", kinds[k]);
		for (int p = 0, first = 1; p < 3; p++)
			if (st->queued[k][p] > 0) {
				printf("%s %zu %s", first ? "" : ",",
				    st->queued[k][p], pos[p]);
				first = 0;
			}
	}
	printf("%s; %zu cancelled, %zu skipped as too late, %zu superseded, "
	    "%zu suppressed; %zu active declarers, %zu without a date\n",
	    any ? ")" : "", st->cancelled, st->late, st->superseded,
	    st->suppressed, st->declarers, st->nodate);
}

static int
do_build(struct ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct campaign_keys keys;
	struct remind_opts o;
	struct remind_stats st;
	char list_id[256], name[32];
	int ch, rc, dry = 0;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			dry = 1;
			break;
		case 'h':
			puts(rm_usage);
			return EX_OK;
		default:
			return cmd_usage_error(ctx, rm_usage, "option '%s' is "
			    "unknown here", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cmd_usage_error(ctx, rm_usage, "unexpected '%s'",
		    argv[optind]);
	memset(&keys, 0, sizeof(keys));
	if ((rc = cmd_db(ctx, 0)) < 0 || (!dry && (rc = cmd_lock(ctx)) < 0) ||
	    (rc = campaign_keys_load(ctx->cfg, ctx->now, &keys, &ctx->err)) < 0 ||
	    (rc = cmd_begin(ctx)) < 0)
		goto fail;
	campaign_list_id(ctx->cfg, list_id);
	memset(&o, 0, sizeof(o));
	o.cfg = ctx->cfg;
	remind_rules_from_config(ctx->cfg, &o.rules);
	o.templates_dir = ctx->cfg->templates_dir;
	o.keys = &keys.k;
	o.list_id = list_id;
	if ((rc = remind_build(ctx->db, &o, ctx->now, &st, &ctx->err)) < 0) {
		db_rollback(ctx->db);
		goto fail;
	}
	if (dry)
		db_rollback(ctx->db);
	else if ((rc = cmd_commit(ctx)) < 0)
		goto fail;
	campaign_keys_release(&keys);
	remind_campaign_name(date_jst_day(ctx->now), name);
	if (ctx->verbosity >= 0)
		print_summary(name, &st, dry);
	return EX_OK;
fail:
	campaign_keys_release(&keys);
	return cmd_fail(ctx, rc);
}

int
cmd_remind(struct ctx *ctx, int argc, char **argv)
{
	static const struct subcmd sub[] = {
		{ "build", do_build },
	};

	return cmd_dispatch(ctx, "remind", rm_usage, sub, sizeof(sub) / sizeof(sub[0]),
	    argc, argv);
}
