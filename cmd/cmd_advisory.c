/*
 * samail advisory list|retag
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "advisory.h"
#include "cmd.h"
#include "date.h"
#include "log.h"
#include "tag.h"
#include "xalloc.h"

static const char adv_usage[] =
"samail advisory COMMAND ...\n"
"\n"
"  list [--since DATE] [--product TAG] [--feed NAME] [--json]\n"
"        the advisories pulled, newest first, with their product tags;\n"
"        --since takes YYYY-MM-DD (from 00:00 Japan time that day) or\n"
"        YYYY-MM-DDTHH:MM:SSZ and compares the published date (the date\n"
"        first seen, for an advisory without one)\n"
"  retag the product tags of every advisory again, after the product\n"
"        dictionary (products.conf) changed";

enum { O_SINCE = 1, O_PRODUCT, O_FEED, O_JSON, O_HELP };

struct listctx {
	int	json;
	int	n;
};

static int
print_advisory(const struct advisory *a, void *arg)
{
	struct listctx *l = arg;
	char day[11] = "-", *j;
	time_t t;

	if (l->json) {
		j = advisory_json(a);
		printf("%s%s", l->n++ ? ",\n" : "\n", j);
		free(j);
		return 0;
	}
	l->n++;
	/* The day in Japan, as the newsletter counts months. */
	if (a->published != NULL &&
	    date_parse_timestamp(a->published, &t, NULL) == 0)
		date_format(date_jst_day(t), day);
	printf("%s\t%s\t%s\t%s\t%s\n", day, a->feed,
	    a->products && *a->products ? a->products : "-", a->title,
	    a->link ? a->link : "-");
	return 0;
}

static int
do_list(struct ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, O_SINCE },
		{ "product", required_argument, NULL, O_PRODUCT },
		{ "feed", required_argument, NULL, O_FEED },
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct advisory_filter f = { NULL, NULL, NULL, NULL };
	struct listctx l = { 0, 0 };
	const struct product *p;
	char since[32];
	long days;
	time_t t;
	int ch, rc;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case O_SINCE:
			if (date_parse(optarg, &days, NULL) == 0)
				t = date_jst_time(days, 0, 0);
			else if (date_parse_timestamp(optarg, &t, NULL) < 0)
				return cmd_usage_error(ctx, adv_usage, "--since "
				    "takes YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, "
				    "not '%s'", optarg);
			date_format_timestamp(t, since);
			f.since = since;
			break;
		case O_PRODUCT:
			if ((rc = cmd_products(ctx)) < 0)
				return cmd_fail(ctx, rc);
			if ((p = products_find(&ctx->products, optarg)) == NULL) {
				char *known = products_tags(&ctx->products);

				rc = cmd_usage_error(ctx, adv_usage, "unknown "
				    "product '%s'; known tags: %s", optarg, known);
				free(known);
				return rc;
			}
			f.product = p->tag;
			break;
		case O_FEED:
			f.feed = optarg;
			break;
		case O_JSON:
			ctx->json = 1;
			break;
		case O_HELP:
			puts(adv_usage);
			return EX_OK;
		default:
			return cmd_usage_error(ctx, adv_usage, "option '%s' is "
			    "unknown here or needs a value",
			    optind - 1 < argc ? argv[optind - 1] : "?");
		}
	}
	if (optind < argc)
		return cmd_usage_error(ctx, adv_usage, "unexpected '%s'",
		    argv[optind]);
	if ((rc = cmd_db(ctx, 0)) < 0)
		return cmd_fail(ctx, rc);
	l.json = ctx->json;
	if (l.json)
		fputs("[", stdout);
	rc = advisory_each(ctx->db, &f, print_advisory, &l, &ctx->err);
	if (l.json)
		fputs(l.n ? "\n]\n" : "]\n", stdout);
	return cmd_fail(ctx, rc);
}

static int
do_retag(struct ctx *ctx, int argc, char **argv)
{
	struct tagger *t;
	int rc, n;

	if (argc >= 2 && cmd_is_help(argv[1])) {
		puts(adv_usage);
		return EX_OK;
	}
	if (argc > 1)
		return cmd_usage_error(ctx, adv_usage, "unexpected '%s'",
		    argv[1]);
	if ((rc = cmd_db(ctx, 0)) < 0 || (rc = cmd_products(ctx)) < 0 ||
	    (rc = cmd_begin(ctx)) < 0)
		return cmd_fail(ctx, rc);
	t = tag_new(&ctx->products);
	n = advisory_retag(ctx->db, t, &ctx->err);
	tag_free(t);
	if (n < 0 || (rc = cmd_commit(ctx)) < 0) {
		db_rollback(ctx->db);
		return cmd_fail(ctx, n < 0 ? n : rc);
	}
	if (ctx->verbosity >= 0)
		printf("retagged: %d advisor%s changed tags\n", n,
		    n == 1 ? "y" : "ies");
	return EX_OK;
}

int
cmd_advisory(struct ctx *ctx, int argc, char **argv)
{
	static const struct subcmd sub[] = {
		{ "list", do_list }, { "retag", do_retag },
	};

	return cmd_dispatch(ctx, "advisory", adv_usage, sub, sizeof(sub) / sizeof(sub[0]),
	    argc, argv);
}
