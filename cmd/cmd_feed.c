/*
 * samail feed add|list|remove|fetch, and the feed seeding `samail init`
 * runs (cmd_init_feeds).
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "advisory.h"
#include "cmd.h"
#include "fetch.h"
#include "log.h"
#include "tag.h"
#include "xalloc.h"

static const char feed_usage[] =
"samail feed COMMAND ...\n"
"\n"
"  add URL --name NAME [--alert]   add an RSS/Atom feed (http or https; a local\n"
"                                  file only with [feeds] allow_local_files)\n"
"  list [--json]                   each feed's last fetch, HTTP status, items,\n"
"                                  consecutive failures and last error\n"
"  remove NAME                     remove a feed and the advisories it brought\n"
"  fetch [NAME...]                 fetch all feeds, or the named ones; each is\n"
"                                  stored in one transaction, independently\n"
"\n"
"--alert marks the feed whose items are IPA's 重要なセキュリティ情報.\n"
"Exit status of fetch: 0 all fetched, 69 a feed was unreachable, 65 a feed\n"
"was malformed or too big (69 wins when both happen).";

enum { O_NAME = 1, O_ALERT, O_JSON, O_HELP };

/* The cmd_init hook: seed the feed list the first time. */
int
cmd_init_feeds(struct ctx *ctx)
{
	int n = advisory_seed_feeds(ctx->db, ctx->cfg->feeds_file, ctx->now,
	    &ctx->err);

	if (n > 0 && ctx->verbosity >= 0)
		printf("seeded %d feed%s from '%s'\n", n, n == 1 ? "" : "s",
		    ctx->cfg->feeds_file);
	return n < 0 ? n : 0;
}

static void
fetch_opts_from(const struct ctx *ctx, struct fetch_opts *fo)
{
	memset(fo, 0, sizeof(*fo));
	fo->connect_timeout = ctx->cfg->feed_connect_timeout;
	fo->timeout = ctx->cfg->feed_timeout;
	fo->max_bytes = (size_t)ctx->cfg->feed_max_size;
	fo->allow_local = ctx->cfg->allow_local_files;
}

static int
bad_option(struct ctx *ctx, int argc, char **argv)
{
	const char *arg = optind - 1 < argc ? argv[optind - 1] : "?";

	return cmd_usage_error(ctx, feed_usage, "option '%s' is unknown here "
	    "or needs a value", arg);
}

static int
do_add(struct ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, O_NAME },
		{ "alert", no_argument, NULL, O_ALERT },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct fetch_opts fo;
	const char *name = NULL;
	char *url = NULL, abs[PATH_MAX];
	int ch, alert = 0, rc;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case O_NAME: name = optarg; break;
		case O_ALERT: alert = 1; break;
		case O_HELP: puts(feed_usage); return EX_OK;
		default: return bad_option(ctx, argc, argv);
		}
	}
	if (optind >= argc)
		return cmd_usage_error(ctx, feed_usage, "which URL?");
	if (optind + 1 < argc)
		return cmd_usage_error(ctx, feed_usage, "unexpected '%s'",
		    argv[optind + 1]);
	if (name == NULL)
		return cmd_usage_error(ctx, feed_usage, "--name is required");
	if (advisory_feed_name_check(name, &ctx->err) < 0)
		return cmd_fail(ctx, -ERR_INVAL);
	fetch_opts_from(ctx, &fo);
	/* A relative path to a sample file is what an admin types; stored
	 * absolute so that cron's working directory does not matter. */
	if (fo.allow_local && strchr(argv[optind], ':') == NULL &&
	    argv[optind][0] != '/' && access(argv[optind], R_OK) == 0 &&
	    realpath(argv[optind], abs) != NULL)
		url = xstrdup(abs);
	else
		url = xstrdup(argv[optind]);
	if ((rc = fetch_check_url(url, &fo, &ctx->err)) < 0)
		goto fail;
	if ((rc = cmd_db(ctx, 0)) < 0 || (rc = cmd_begin(ctx)) < 0)
		goto fail;
	if ((rc = advisory_feed_add(ctx->db, name, url, alert, ctx->now,
	    &ctx->err)) < 0 || (rc = cmd_commit(ctx)) < 0) {
		db_rollback(ctx->db);
		goto fail;
	}
	if (ctx->verbosity >= 0)
		printf("added feed '%s' (%s)%s\n", name, url, alert ?
		    " as the alert feed" : "");
	free(url);
	return EX_OK;
fail:
	free(url);
	return cmd_fail(ctx, rc);
}

struct listctx {
	int	json;
	int	n;
};

static int
print_feed(const struct advisory_feed *f, void *arg)
{
	struct listctx *l = arg;
	char *j, status[16];

	if (l->json) {
		j = advisory_feed_json(f);
		printf("%s%s", l->n++ ? ",\n" : "\n", j);
		free(j);
		return 0;
	}
	if (l->n++ == 0)
		printf("NAME\tLAST FETCH\tSTATUS\tITEMS\tFAILURES\tURL\n");
	if (f->last_status > 0)
		snprintf(status, sizeof(status), "%ld", f->last_status);
	printf("%s%s\t%s\t%s\t%ld\t%ld\t%s\n", f->name, f->alert ?
	    " (alert)" : "", f->last_fetch ? f->last_fetch : "never",
	    f->last_status > 0 ? status : "-", f->items, f->failures, f->url);
	if (f->last_error != NULL)
		printf("\tlast error: %s\n", f->last_error);
	return 0;
}

static int
do_list(struct ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct listctx l = { 0, 0 };
	int ch, rc;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case O_JSON: ctx->json = 1; break;
		case O_HELP: puts(feed_usage); return EX_OK;
		default: return bad_option(ctx, argc, argv);
		}
	}
	if (optind < argc)
		return cmd_usage_error(ctx, feed_usage, "unexpected '%s'",
		    argv[optind]);
	if ((rc = cmd_db(ctx, 0)) < 0)
		return cmd_fail(ctx, rc);
	l.json = ctx->json;
	if (l.json)
		fputs("[", stdout);
	rc = advisory_feed_each(ctx->db, print_feed, &l, &ctx->err);
	if (l.json)
		fputs(l.n ? "\n]\n" : "]\n", stdout);
	else if (rc == 0 && l.n == 0 && ctx->verbosity >= 0)
		fprintf(stderr, "samail feed list: no feeds; add one with "
		    "'samail feed add URL --name NAME'\n");
	return cmd_fail(ctx, rc);
}

static int
do_remove(struct ctx *ctx, int argc, char **argv)
{
	int rc;

	if (argc >= 2 && cmd_is_help(argv[1])) {
		puts(feed_usage);
		return EX_OK;
	}
	if (argc != 2)
		return cmd_usage_error(ctx, feed_usage, argc < 2 ? "which feed?"
		    : "give one feed name");
	if ((rc = cmd_db(ctx, 0)) < 0 || (rc = cmd_begin(ctx)) < 0)
		return cmd_fail(ctx, rc);
	if ((rc = advisory_feed_remove(ctx->db, argv[1], &ctx->err)) < 0 ||
	    (rc = cmd_commit(ctx)) < 0) {
		db_rollback(ctx->db);
		return cmd_fail(ctx, rc);
	}
	if (ctx->verbosity >= 0)
		printf("removed feed '%s' and its advisories\n", argv[1]);
	return EX_OK;
}

struct fetchctx {
	struct ctx		*ctx;
	struct advisory_fetch_opts o;
	int			 worst;		/* sysexits */
	int			 n;
};

static int
fetch_one(const struct advisory_feed *f, void *arg)
{
	struct fetchctx *fc = arg;
	struct ctx *ctx = fc->ctx;
	struct advisory_stats st;
	struct err e = ERR_INIT;
	char note[512];
	int rc;

	fc->n++;
	rc = advisory_fetch(ctx->db, f, &fc->o, &st, &e);
	if (rc < 0) {
		const char *hint = "";

		if (e.code == ERR_PARSE)
			hint = "; nothing from it was stored; it is retried "
			    "next run (tell its publisher if it stays broken)";
		else if (e.code == ERR_TOOBIG)
			hint = "; nothing stored (raise [feeds] max_size if "
			    "the feed is really this big)";
		/* Fetch errors name the URL already (a body over the cap, a
		 * corrupt compressed body): not twice on the line. */
		if (e.code == ERR_NET || e.code == ERR_NOINPUT ||
		    strstr(e.msg, f->url) != NULL)
			log_error("feed '%s': %s%s", f->name, e.msg, hint);
		else
			log_error("feed '%s' (%s): %s%s", f->name, f->url,
			    e.msg, hint);
		fc->worst = err_worst(fc->worst, err_exitcode(rc));
		/* A database that is busy or broken fails every feed alike:
		 * stop rather than repeat the same error. */
		return e.code == ERR_DB || e.code == ERR_LOCKED ||
		    e.code == ERR_IO ? 1 : 0;
	}
	if (ctx->verbosity >= 0 && !st.gone) {
		if (st.not_modified)
			printf("%s: not modified\n", f->name);
		else
			printf("%s: %zu item%s, %zu new, %zu changed\n", f->name,
			    st.items, st.items == 1 ? "" : "s", st.added,
			    st.changed);
	}
	if (advisory_notice(f->name, &st, note, sizeof(note)))
		log_warnx("%s", note);
	return 0;
}

static int
do_fetch(struct ctx *ctx, int argc, char **argv)
{
	struct fetchctx fc;
	struct fetch_opts fo;
	struct tagger *t = NULL;
	int rc;

	if (argc >= 2 && cmd_is_help(argv[1])) {
		puts(feed_usage);
		return EX_OK;
	}
	for (int i = 1; i < argc; i++)
		if (argv[i][0] == '-')
			return cmd_usage_error(ctx, feed_usage, "option '%s' is "
			    "unknown here", argv[i]);
	if ((rc = cmd_db(ctx, 0)) < 0 || (rc = cmd_products(ctx)) < 0)
		return cmd_fail(ctx, rc);
	fetch_init();
	fetch_opts_from(ctx, &fo);
	t = tag_new(&ctx->products);
	memset(&fc, 0, sizeof(fc));
	fc.ctx = ctx;
	fc.o.fetch = &fo;
	fc.o.tagger = t;
	fc.o.now = ctx->now;
	fc.worst = EX_OK;

	if (argc == 1) {
		rc = advisory_feed_each(ctx->db, fetch_one, &fc, &ctx->err);
		if (rc < 0)
			fc.worst = err_worst(fc.worst, cmd_fail(ctx, rc));
		else if (fc.n == 0 && ctx->verbosity >= 0)
			fprintf(stderr, "samail feed fetch: no feeds; add one "
			    "with 'samail feed add URL --name NAME'\n");
	} else {
		struct advisory_feed *fs = xcalloc((size_t)argc, sizeof(*fs));

		/* Every name first: a typo fetches nothing. */
		for (int i = 1; i < argc && rc == 0; i++)
			rc = advisory_feed_get(ctx->db, argv[i], &fs[i],
			    &ctx->err);
		if (rc < 0)
			fc.worst = cmd_fail(ctx, rc);
		else
			for (int i = 1; i < argc; i++)
				if (fetch_one(&fs[i], &fc) != 0)
					break;
		for (int i = 1; i < argc; i++)
			advisory_feed_release(&fs[i]);
		free(fs);
	}
	tag_free(t);
	return fc.worst;
}

int
cmd_feed(struct ctx *ctx, int argc, char **argv)
{
	static const struct subcmd sub[] = {
		{ "add", do_add }, { "list", do_list }, { "remove", do_remove },
		{ "fetch", do_fetch },
	};

	return cmd_dispatch(ctx, "feed", feed_usage, sub, sizeof(sub) / sizeof(sub[0]),
	    argc, argv);
}
