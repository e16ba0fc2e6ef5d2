/*
 * samail subscriber add|import|list|show|update|remove|export
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cmd.h"
#include "csvimport.h"
#include "date.h"
#include "log.h"
#include "subscriber.h"
#include "text.h"
#include "xalloc.h"

static const char sub_usage[] =
"samail subscriber COMMAND ...\n"
"\n"
"  add --email E --org NAME [--name CONTACT] [--star 1|2] [--declared DATE]\n"
"      [--assessed DATE] [--products TAG,TAG] [--industry X] [--employees N]\n"
"      [--locale ja|en] [--resubscribe]\n"
"  import FILE.csv [--encoding auto|utf-8|cp932] [--dry-run] [--skip-invalid]\n"
"  list [--status S] [--star 1|2] [--product TAG] [--json]\n"
"  show EMAIL [--json]\n"
"  update EMAIL [--org NAME] [--name C] [--star N] [--declared D] [--assessed D\n"
"      [--score 0-100]] [--products T,T] [--industry X] [--employees N]\n"
"      [--locale ja|en] [--status active|unsubscribed|bounced|removed]\n"
"  remove EMAIL [--purge]\n"
"  export [--out FILE] [--encoding utf-8|cp932] [--bom] [--japanese]\n"
"      [--status S] [--star N] [--product TAG]\n"
"\n"
"Dates are YYYY-MM-DD or YYYY/MM/DD (also 2024年4月1日, 令和6年4月1日, R6.4.1).\n"
"Products are tags from the product dictionary (see 'samail advisory list'\n"
"or feeds/products.conf) or its product names and aliases (\"Windows 11\",\n"
"\"Excel\"), separated by ',' ';' '/' '、' or line breaks; なし means none.\n"
"A status other than active stops all bulk mail.";

/* Option ids for the field options: the sub_field value + 1000. */
#define FOPT(f)	(1000 + (f))

enum {
	O_RESUB = 1, O_SCORE, O_STATUS, O_PURGE, O_ENC, O_DRY, O_SKIP, O_JSON,
	O_STAR_F, O_PRODUCT_F, O_OUT, O_BOM, O_JA, O_HELP,
};

static const struct option field_opts[] = {
	{ "email", required_argument, NULL, FOPT(SUB_EMAIL) },
	{ "org", required_argument, NULL, FOPT(SUB_ORG) },
	{ "name", required_argument, NULL, FOPT(SUB_NAME) },
	{ "star", required_argument, NULL, FOPT(SUB_STAR) },
	{ "declared", required_argument, NULL, FOPT(SUB_DECLARED) },
	{ "assessed", required_argument, NULL, FOPT(SUB_ASSESSED) },
	{ "products", required_argument, NULL, FOPT(SUB_PRODUCTS) },
	{ "industry", required_argument, NULL, FOPT(SUB_INDUSTRY) },
	{ "employees", required_argument, NULL, FOPT(SUB_EMPLOYEES) },
	{ "locale", required_argument, NULL, FOPT(SUB_LOCALE) },
	{ "resubscribe", no_argument, NULL, O_RESUB },
	{ "score", required_argument, NULL, O_SCORE },
	{ "status", required_argument, NULL, O_STATUS },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

static int
bad_option(struct ctx *ctx, int argc, char **argv)
{
	const char *arg = optind - 1 < argc ? argv[optind - 1] : "?";

	return cmd_usage_error(ctx, "samail subscriber --help",
	    "option '%s' is unknown here or needs a value", arg);
}

/* Parse field options into s; score and status for update.  Returns 0,
 * or an exit code. */
static int
parse_fields(struct ctx *ctx, int argc, char **argv, struct subscriber *s,
    int *resub, int *score, const char **status, int allow_email)
{
	int ch, rc;

	optind = 0;	/* 0: glibc re-initialises (permutation) */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", field_opts, NULL)) != -1) {
		if (ch >= FOPT(0) && ch < FOPT(SUB_NFIELDS)) {
			enum sub_field f = (enum sub_field)(ch - FOPT(0));

			if (f == SUB_EMAIL && !allow_email)
				return cmd_usage_error(ctx, sub_usage, "the "
				    "address is given as the argument, not "
				    "with --email");
			if ((rc = cmd_products(ctx)) < 0)
				return cmd_fail(ctx, rc);
			if (sub_set_field(s, f, optarg, &ctx->products,
			    ctx->now, &ctx->err) < 0)
				return cmd_fail(ctx, -ERR_INVAL);
			continue;
		}
		switch (ch) {
		case O_RESUB:
			if (resub == NULL)
				return bad_option(ctx, argc, argv);
			*resub = 1;
			break;
		case O_SCORE: {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (score == NULL)
				return bad_option(ctx, argc, argv);
			if (*optarg == '\0' || *end != '\0' || v < 0 || v > 100)
				return cmd_usage_error(ctx, sub_usage, "--score "
				    "must be a number from 0 to 100, not '%s'",
				    optarg);
			*score = (int)v;
			break;
		}
		case O_STATUS:
			if (status == NULL)
				return bad_option(ctx, argc, argv);
			*status = optarg;
			break;
		case O_HELP:
			puts(sub_usage);
			return -1;
		default:
			return bad_option(ctx, argc, argv);
		}
	}
	return 0;
}

static int
print_text(const struct subscriber *s, void *arg)
{
	(void)arg;
	printf("%s\t%s\t%s\t%s\t%s\n", s->email, s->org, s->star == 2 ?
	    "★★" : "★", s->status, *s->products ? s->products : "-");
	return 0;
}

struct jsonlist {
	int	n;
};

static int
print_json(const struct subscriber *s, void *arg)
{
	struct jsonlist *jl = arg;
	char *j = sub_to_json(s);

	printf("%s%s", jl->n++ ? ",\n" : "\n", j);
	free(j);
	return 0;
}

static int
parse_filter(struct ctx *ctx, int argc, char **argv, struct sub_filter *f,
    const char **out, struct csv_export_opts *xo)
{
	static const struct option opts[] = {
		{ "status", required_argument, NULL, O_STATUS },
		{ "star", required_argument, NULL, O_STAR_F },
		{ "product", required_argument, NULL, O_PRODUCT_F },
		{ "json", no_argument, NULL, O_JSON },
		{ "out", required_argument, NULL, O_OUT },
		{ "encoding", required_argument, NULL, O_ENC },
		{ "bom", no_argument, NULL, O_BOM },
		{ "japanese", no_argument, NULL, O_JA },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int ch, rc;

	optind = 0;	/* 0: glibc re-initialises (permutation) */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case O_STATUS:
			if (strcmp(optarg, "active") && strcmp(optarg, "unsubscribed")
			    && strcmp(optarg, "bounced") && strcmp(optarg, "removed"))
				return cmd_usage_error(ctx, sub_usage, "--status "
				    "must be active, unsubscribed, bounced or "
				    "removed, not '%s'", optarg);
			f->status = optarg;
			break;
		case O_STAR_F:
			if (strcmp(optarg, "1") && strcmp(optarg, "2"))
				return cmd_usage_error(ctx, sub_usage, "--star "
				    "must be 1 or 2");
			f->star = optarg[0] - '0';
			break;
		case O_PRODUCT_F: {
			const struct product *p;

			if ((rc = cmd_products(ctx)) < 0)
				return cmd_fail(ctx, rc);
			if ((p = products_find(&ctx->products, optarg)) == NULL) {
				char *known = products_tags(&ctx->products);

				rc = cmd_usage_error(ctx, sub_usage, "unknown "
				    "product '%s'; known tags: %s", optarg, known);
				free(known);
				return rc;
			}
			f->product = p->tag;
			break;
		}
		case O_JSON:
			ctx->json = 1;
			break;
		case O_OUT:
		case O_ENC:
		case O_BOM:
		case O_JA:
			if (xo == NULL)
				return bad_option(ctx, argc, argv);
			if (ch == O_OUT)
				*out = optarg;
			else if (ch == O_BOM)
				xo->bom = 1;
			else if (ch == O_JA)
				xo->japanese = 1;
			else if (text_ieq(optarg, "utf-8") || text_ieq(optarg, "utf8"))
				xo->encoding = CSV_ENC_UTF8;
			else if (text_ieq(optarg, "cp932") ||
			    text_ieq(optarg, "shift_jis") || text_ieq(optarg, "sjis"))
				xo->encoding = CSV_ENC_CP932;
			else
				return cmd_usage_error(ctx, sub_usage,
				    "--encoding must be utf-8 or cp932");
			break;
		case O_HELP:
			puts(sub_usage);
			return -1;
		default:
			return bad_option(ctx, argc, argv);
		}
	}
	if (optind < argc)
		return cmd_usage_error(ctx, sub_usage, "unexpected '%s'",
		    argv[optind]);
	return 0;
}

static int
do_list(struct ctx *ctx, int argc, char **argv)
{
	struct sub_filter f = { NULL, 0, NULL };
	struct jsonlist jl = { 0 };
	int rc;

	if ((rc = parse_filter(ctx, argc, argv, &f, NULL, NULL)) != 0)
		return rc < 0 ? EX_OK : rc;
	if ((rc = cmd_db(ctx, 0)) < 0)
		return cmd_fail(ctx, rc);
	if (ctx->json)
		fputs("[", stdout);
	rc = sub_each(ctx->db, &f, ctx->json ? print_json : print_text, &jl,
	    &ctx->err);
	if (ctx->json)
		fputs(jl.n ? "\n]\n" : "]\n", stdout);
	return cmd_fail(ctx, rc);
}

static int
do_export(struct ctx *ctx, int argc, char **argv)
{
	struct sub_filter f = { NULL, 0, NULL };
	struct csv_export_opts xo = { CSV_ENC_UTF8, 0, 0 };
	const char *out = NULL;
	char *tmp = NULL;
	FILE *fp = stdout;
	long n;
	int rc;

	if ((rc = parse_filter(ctx, argc, argv, &f, &out, &xo)) != 0)
		return rc < 0 ? EX_OK : rc;
	if (xo.bom && xo.encoding == CSV_ENC_CP932)
		return cmd_usage_error(ctx, sub_usage, "--bom is for UTF-8; a "
		    "CP932 file has none");
	if ((rc = cmd_db(ctx, 0)) < 0)
		return cmd_fail(ctx, rc);
	if (out != NULL) {
		/* Write beside and rename: an interrupted export never leaves
		 * a half file under the real name. */
		/* Personal data: a private file (0600) created anew, never
		 * through a symlink someone left in the directory. */
		int fd;

		tmp = xasprintf("%s.tmp", out);
		(void)unlink(tmp);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (fd < 0 || (fp = fdopen(fd, "w")) == NULL) {
			if (fd >= 0)
				close(fd);
			err_set(&ctx->err, ERR_CANTCREAT, "cannot create '%s': "
			    "%m", tmp);
			free(tmp);
			return cmd_fail(ctx, -ERR_CANTCREAT);
		}
	}
	n = csv_export(ctx->db, fp, &f, &xo, &ctx->err);
	if (out != NULL) {
		if (fclose(fp) != 0 && n >= 0)
			n = err_set(&ctx->err, ERR_IO, "write '%s': %m", tmp);
		if (n >= 0 && rename(tmp, out) < 0)
			n = err_set(&ctx->err, ERR_IO, "rename to '%s': %m", out);
		if (n < 0)
			unlink(tmp);
		free(tmp);
	}
	if (n < 0)
		return cmd_fail(ctx, (int)n);
	if (out != NULL && ctx->verbosity >= 0)
		fprintf(stderr, "samail subscriber export: %ld declarer%s "
		    "written to '%s'\n", n, n == 1 ? "" : "s", out);
	return EX_OK;
}

static int
do_add(struct ctx *ctx, int argc, char **argv)
{
	struct subscriber s;
	int rc, resub = 0;

	sub_init(&s);
	if ((rc = parse_fields(ctx, argc, argv, &s, &resub, NULL, NULL, 1)) != 0)
		goto out;
	if (optind < argc) {
		rc = cmd_usage_error(ctx, sub_usage, "unexpected '%s' (give "
		    "the address with --email)", argv[optind]);
		goto out;
	}
	if (s.email[0] == '\0' || s.org == NULL) {
		rc = cmd_usage_error(ctx, sub_usage, "--email and --org are "
		    "required");
		goto out;
	}
	if ((rc = cmd_db(ctx, 0)) < 0 || (rc = cmd_begin(ctx)) < 0 ||
	    (rc = sub_add(ctx->db, &s, resub, ctx->now, &ctx->err)) < 0 ||
	    (rc = cmd_commit(ctx)) < 0) {
		rc = cmd_fail(ctx, rc);
		goto out;
	}
	if (ctx->verbosity >= 0)
		printf("added %s (%s)\n", s.email, s.org);
	rc = EX_OK;
out:
	sub_release(&s);
	return rc < 0 ? EX_OK : rc;
}

/* The address argument of show/update/remove, checked like any input. */
static int
arg_email(struct ctx *ctx, int argc, char **argv, char *email)
{
	if (optind >= argc)
		return cmd_usage_error(ctx, sub_usage, "which declarer? give "
		    "the address");
	if (optind + 1 < argc)
		return cmd_usage_error(ctx, sub_usage, "unexpected '%s'",
		    argv[optind + 1]);
	if (addr_check(argv[optind], email, &ctx->err) < 0)
		return cmd_fail(ctx, -ERR_INVAL);
	return 0;
}

static int
do_update(struct ctx *ctx, int argc, char **argv)
{
	struct subscriber s;
	const char *status = NULL;
	int rc, score = -1, changed = 0;

	sub_init(&s);
	if ((rc = parse_fields(ctx, argc, argv, &s, NULL, &score, &status, 0))
	    != 0)
		goto out;
	if ((rc = arg_email(ctx, argc, argv, s.email)) != 0)
		goto out;
	if (s.set == 0 && status == NULL && score < 0) {
		rc = cmd_usage_error(ctx, sub_usage, "nothing to update: give "
		    "at least one field option");
		goto out;
	}
	if (score >= 0 && !(s.set & (1u << SUB_ASSESSED))) {
		rc = cmd_usage_error(ctx, sub_usage, "--score goes with "
		    "--assessed DATE (the self-diagnosis it scores)");
		goto out;
	}
	if ((rc = cmd_db(ctx, 0)) < 0 || (rc = cmd_begin(ctx)) < 0)
		goto fail;
	if ((rc = sub_update(ctx->db, &s, score, ctx->now, &ctx->err)) < 0)
		goto fail;
	changed = rc;
	if (status != NULL) {
		if ((rc = sub_set_status(ctx->db, s.email, status,
		    "set by admin", ctx->now, &ctx->err)) < 0)
			goto fail;
		changed |= rc;
	}
	if ((rc = cmd_commit(ctx)) < 0)
		goto fail;
	if (ctx->verbosity >= 0)
		printf("%s %s\n", changed ? "updated" : "unchanged", s.email);
	rc = EX_OK;
	goto out;
fail:
	rc = cmd_fail(ctx, rc);
out:
	sub_release(&s);
	return rc < 0 ? EX_OK : rc;
}

static int
do_remove(struct ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "purge", no_argument, NULL, O_PURGE },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	char email[ADDR_MAX + 1];
	int ch, rc, purge = 0;

	optind = 0;	/* 0: glibc re-initialises (permutation) */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == O_PURGE)
			purge = 1;
		else if (ch == O_HELP) {
			puts(sub_usage);
			return EX_OK;
		} else
			return bad_option(ctx, argc, argv);
	}
	if ((rc = arg_email(ctx, argc, argv, email)) != 0)
		return rc;
	if ((rc = cmd_db(ctx, 0)) < 0 || (rc = cmd_begin(ctx)) < 0 ||
	    (rc = sub_remove(ctx->db, email, purge, ctx->now, &ctx->err)) < 0 ||
	    (rc = cmd_commit(ctx)) < 0)
		return cmd_fail(ctx, rc);
	if (ctx->verbosity >= 0)
		printf("%s %s%s\n", purge ? "purged" : "removed", email, purge ?
		    " (personal data erased; the address stays suppressed)" :
		    " (kept on the suppression list)");
	return EX_OK;
}

static int
do_show(struct ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct subscriber s;
	char email[ADDR_MAX + 1], d[11];
	sqlite3_stmt *st;
	int ch, rc;

	optind = 0;	/* 0: glibc re-initialises (permutation) */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == O_JSON)
			ctx->json = 1;
		else if (ch == O_HELP) {
			puts(sub_usage);
			return EX_OK;
		} else
			return bad_option(ctx, argc, argv);
	}
	if ((rc = arg_email(ctx, argc, argv, email)) != 0)
		return rc;
	if ((rc = cmd_db(ctx, 0)) < 0)
		return cmd_fail(ctx, rc);
	sub_init(&s);
	if ((rc = sub_get(ctx->db, email, &s, &ctx->err)) < 0) {
		sub_release(&s);
		return cmd_fail(ctx, rc);
	}
	if (ctx->json) {
		char *j = sub_to_json(&s);

		printf("[%s]\n", j);
		free(j);
		sub_release(&s);
		return EX_OK;
	}
	printf("email:      %s\n", s.email);
	printf("org:        %s\n", s.org);
	printf("name:       %s\n", s.name ? s.name : "");
	printf("star:       %d\n", s.star);
	if (s.declared != SUB_NODATE)
		date_format(s.declared, d);
	printf("declared:   %s\n", s.declared != SUB_NODATE ? d : "");
	if (s.assessed != SUB_NODATE)
		date_format(s.assessed, d);
	printf("assessed:   %s\n", s.assessed != SUB_NODATE ? d : "");
	printf("products:   %s\n", s.products);
	printf("industry:   %s\n", s.industry ? s.industry : "");
	if (s.employees >= 0)
		printf("employees:  %ld\n", s.employees);
	else
		printf("employees:  \n");
	printf("locale:     %s\n", s.locale);
	printf("status:     %s\n", s.status);
	printf("created:    %s\n", s.created);
	printf("updated:    %s\n", s.updated);
	st = db_prepare(ctx->db, "SELECT assessed, score FROM assessment "
	    "WHERE subscriber_id = ? ORDER BY assessed, id", &ctx->err);
	if (st != NULL) {
		sqlite3_bind_int64(st, 1, s.id);
		while (sqlite3_step(st) == SQLITE_ROW) {
			if (sqlite3_column_type(st, 1) == SQLITE_NULL)
				printf("diagnosis:  %s\n", sqlite3_column_text(st, 0));
			else
				printf("diagnosis:  %s score %d\n",
				    sqlite3_column_text(st, 0),
				    sqlite3_column_int(st, 1));
		}
		sqlite3_finalize(st);
	}
	sub_release(&s);
	return EX_OK;
}

static void
report_line(const char *line, void *arg)
{
	(void)arg;
	fprintf(stderr, "%s\n", line);
}

static int
do_import(struct ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "encoding", required_argument, NULL, O_ENC },
		{ "dry-run", no_argument, NULL, O_DRY },
		{ "skip-invalid", no_argument, NULL, O_SKIP },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct csv_import_opts o = { CSV_ENC_AUTO, 0, 100 };
	struct csv_import_stats st;
	const char *path;
	int ch, rc, dry = 0;

	optind = 0;	/* 0: glibc re-initialises (permutation) */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case O_ENC:
			if (text_ieq(optarg, "auto"))
				o.encoding = CSV_ENC_AUTO;
			else if (text_ieq(optarg, "utf-8") || text_ieq(optarg, "utf8"))
				o.encoding = CSV_ENC_UTF8;
			else if (text_ieq(optarg, "cp932") ||
			    text_ieq(optarg, "shift_jis") ||
			    text_ieq(optarg, "sjis") ||
			    text_ieq(optarg, "windows-31j"))
				o.encoding = CSV_ENC_CP932;
			else
				return cmd_usage_error(ctx, sub_usage, "--encoding "
				    "must be auto, utf-8 or cp932, not '%s'",
				    optarg);
			break;
		case O_DRY:
			dry = 1;
			break;
		case O_SKIP:
			o.skip_invalid = 1;
			break;
		case O_HELP:
			puts(sub_usage);
			return EX_OK;
		default:
			return bad_option(ctx, argc, argv);
		}
	}
	/* GNU style: options may also follow the file name. */
	if (optind >= argc)
		return cmd_usage_error(ctx, sub_usage, "which file? give the "
		    "CSV file to import");
	if (optind + 1 < argc)
		return cmd_usage_error(ctx, sub_usage, "unexpected '%s'",
		    argv[optind + 1]);
	path = argv[optind];
	if ((rc = cmd_products(ctx)) < 0 || (rc = cmd_db(ctx, 0)) < 0 ||
	    (rc = cmd_begin(ctx)) < 0)
		return cmd_fail(ctx, rc);
	rc = csv_import(ctx->db, path, &ctx->products, ctx->now, &o, &st,
	    report_line, NULL, &ctx->err);
	if (rc < 0 || dry)
		db_rollback(ctx->db);
	else if ((rc = cmd_commit(ctx)) < 0) {
		/* Every row was read, and the commit failed (a disk that
		 * fills up at the end): as for a failure at a row, the file
		 * is named and the summary says nothing was stored. */
		db_rollback(ctx->db);
		err_prefix(&ctx->err, "%s", path);
	}
	if (rc < 0 && st.rows == 0 && st.rejected == 0)
		return cmd_fail(ctx, rc);
	if (ctx->verbosity >= 0 || rc < 0)
		printf("%s%s (%s%s): %zu row%s: %zu added, %zu updated, "
		    "%zu unchanged, %zu suppressed, %zu rejected\n",
		    dry ? "dry run, nothing stored: " : rc < 0 ?
		    "nothing stored: " : "", path,
		    csv_encoding_name(st.encoding), st.separator == '\t' ?
		    ", tab-separated" : st.separator == ';' ?
		    ", semicolon-separated" : "", st.rows,
		    st.rows == 1 ? "" : "s", st.added, st.updated,
		    st.unchanged, st.suppressed, st.rejected);
	if (rc < 0)
		return cmd_fail(ctx, rc);
	/* Rows were rejected: 65 whether the good ones were stored
	 * (--skip-invalid) or not, so a dry run predicts the real one. */
	if (st.rejected > 0)
		return EX_DATAERR;
	return EX_OK;
}

int
cmd_subscriber(struct ctx *ctx, int argc, char **argv)
{
	static const struct subcmd sub[] = {
		{ "add", do_add }, { "import", do_import }, { "list", do_list },
		{ "show", do_show }, { "update", do_update },
		{ "remove", do_remove }, { "export", do_export },
	};

	return cmd_dispatch(ctx, "subscriber", sub_usage, sub, sizeof(sub) / sizeof(sub[0]),
	    argc, argv);
}
