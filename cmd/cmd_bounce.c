/*
 * samail bounce [--dry-run] [FILE]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <jansson.h>

#include "bounce.h"
#include "buf.h"
#include "campaign.h"
#include "cmd.h"
#include "log.h"
#include "xalloc.h"

static const char bounce_usage[] =
"samail bounce [--dry-run] [--recipient ADDR] [FILE]\n"
"\n"
"Read one returned message (a DSN or a common non-standard bounce) from\n"
"FILE or standard input, so an MTA can pipe to it, and act on it: a\n"
"permanent failure of the address (no such user, 5.1.x) marks the\n"
"declarer's address bounced at once; temporary ones (4.x.x, a full\n"
"mailbox) are counted, and [bounce] soft_limit of them within soft_days\n"
"mark it bounced.  A refusal of the sending set-up (a block list,\n"
"SPF/DKIM/DMARC, spam; mostly 5.7.x) is a policy bounce: recorded and\n"
"reported with what to check, and the address stays active.\n"
"The declarer is found by the VERP return address the bounce came to\n"
"([mail] verp = yes), else by the original Message-ID; one that only the\n"
"failed address ties to a declarer is recorded, but changes no status\n"
"and is not counted (anybody can write an address).  Anything that is\n"
"not a bounce, or not about one of our declarers, is ignored (exit 0).\n"
"\n"
"  --dry-run          say what would be done; change nothing\n"
"  --recipient ADDR   the envelope recipient the MTA delivered the bounce\n"
"                     to (Postfix pipe: ${original_recipient}), for VERP\n"
"\n"
"Exit 0 done or ignored, 65 input over 10 MB, 66 FILE missing, 75 the\n"
"database is busy, missing, not migrated yet or not readable, or anything\n"
"else kept a bounce from being acted on (the MTA keeps the bounce and\n"
"retries later).";

/* The whole input, up to the cap (+1 byte to notice more). */
static int
read_all(struct ctx *ctx, const char *path, struct buf *in)
{
	FILE *fp = stdin;
	char chunk[65536];
	size_t n;
	int rc = 0;

	if (path != NULL && strcmp(path, "-") != 0 &&
	    (fp = fopen(path, "rb")) == NULL)
		return err_set(&ctx->err, errno == ENOENT ? ERR_NOINPUT : ERR_IO,
		    "cannot open '%s': %s", path, strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		if (buf_add(in, chunk, n) < 0) {
			rc = err_set(&ctx->err, ERR_TOOBIG, "'%s' is over %ld "
			    "MB: not a bounce we read",
			    path ? path : "standard input",
			    BOUNCE_MAX_INPUT / (1024 * 1024));
			break;
		}
	if (rc == 0 && ferror(fp))
		rc = err_set(&ctx->err, ERR_IO, "read '%s': %s",
		    path ? path : "standard input", strerror(errno));
	if (fp != stdin)
		fclose(fp);
	return rc;
}

static void
print_json(const struct bounce_report *r, const struct bounce_result *res,
    int parsed)
{
	json_t *a = json_array(), *o = json_object(), *rc = json_array();
	char *s;

	json_object_set_new(o, "bounce", json_string(parsed ?
	    bounce_kind_name(r->kind) : "none"));
	if (!parsed)
		json_object_set_new(o, "why", json_string(r->why));
	else {
		json_object_set_new(o, "format", json_string(r->format));
		for (size_t i = 0; i < r->nrcpts; i++) {
			json_t *x = json_object();

			json_object_set_new(x, "address", r->rcpts[i].addr[0] ?
			    json_string(r->rcpts[i].addr) : json_null());
			json_object_set_new(x, "kind", json_string(
			    bounce_kind_name(r->rcpts[i].kind)));
			json_object_set_new(x, "status",
			    json_string(r->rcpts[i].status));
			json_object_set_new(x, "diagnostic",
			    json_string(r->rcpts[i].diag));
			json_array_append_new(rc, x);
		}
		json_object_set_new(o, "message_id", r->nmids > 0 ?
		    json_string(r->mids[0]) : json_null());
	}
	json_object_set_new(o, "recipients", rc);
	if (res != NULL && res->declarer > 0) {
		json_object_set_new(o, "declarer", json_integer(res->declarer));
		json_object_set_new(o, "email", json_string(res->email));
		json_object_set_new(o, "status", json_string(res->status));
		json_object_set_new(o, "found_by", json_string(
		    res->by_message_id ? "message-id" : "address"));
		json_object_set_new(o, "status_before",
		    json_string(res->status_before));
		json_object_set_new(o, "marked_bounced",
		    json_boolean(res->marked));
		json_object_set_new(o, "soft_count",
		    json_integer(res->soft_count));
		if (res->kind == BOUNCE_POLICY)
			json_object_set_new(o, "advice", json_string(
			    bounce_policy_hint(res->status, res->diag)));
	} else
		json_object_set_new(o, "declarer", json_null());
	json_array_append_new(a, o);
	s = json_dumps(a, JSON_COMPACT | JSON_ENSURE_ASCII);
	puts(s);
	free(s);
	json_decref(a);
}

int
cmd_bounce(struct ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "recipient", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct buf in = BUF_INIT((size_t)BOUNCE_MAX_INPUT);
	struct bounce_report *r = NULL;
	struct bounce_result res;
	struct bounce_opts bo;
	const char *path = NULL, *recipient = NULL;
	struct campaign_keys keys;
	char list_id[256];
	char instance[9];
	int ch, rc, dry = 0, parsed = 0;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			dry = 1;
			break;
		case 'r':
			recipient = optarg;
			break;
		case 'h':
			puts(bounce_usage);
			return EX_OK;
		default:
			return cmd_usage_error(ctx, bounce_usage, "option '%s' is "
			    "unknown here or needs a value", argv[optind - 1]);
		}
	}
	if (argc - optind > 1)
		return cmd_usage_error(ctx, bounce_usage, "give one file (or "
		    "none for standard input)");
	if (optind < argc)
		path = argv[optind];
	memset(&res, 0, sizeof(res));
	memset(&keys, 0, sizeof(keys));
	r = xcalloc(1, sizeof(*r));
	if ((rc = read_all(ctx, path, &in)) < 0 ||
	    (rc = bounce_parse(buf_str(&in), in.len, r, &ctx->err)) < 0)
		goto out;
	parsed = 1;
	if (rc == 0) {
		log_info("not a bounce (%s); ignored", r->why);
		if (ctx->json)
			print_json(r, NULL, 0);
		rc = 0;
		goto out;
	}
	/* Durable before exit 0, after which the MTA deletes the bounce. */
	if ((rc = cmd_db(ctx, 0)) < 0 || (rc = db_durable(ctx->db,
	    &ctx->err)) < 0) {
		/* An MTA takes any other failure for "drop it": a database
		 * that is missing, not migrated yet (a new samail installed,
		 * 'samail init' not run), or not ours to open is a set-up
		 * problem to fix, and the bounce must come again. */
		err_prefix(&ctx->err, "bounce kept for a retry");
		ctx->err.code = ERR_TEMP;
		rc = -ERR_TEMP;
		goto out;
	}
	if ((rc = campaign_instance(ctx->db, instance, &ctx->err)) < 0)
		goto out;
	memset(&bo, 0, sizeof(bo));
	bo.instance = instance;
	bo.soft_limit = ctx->cfg->soft_limit;
	bo.soft_days = ctx->cfg->soft_days;
	bo.dry_run = dry;
	if ((rc = campaign_keys_load(ctx->cfg, ctx->now, &keys,
	    &ctx->err)) < 0)
		goto out;
	campaign_list_id(ctx->cfg, list_id);
	bo.keys = &keys.k;
	bo.verp = ctx->cfg->verp;
	bo.list_id = list_id;
	bo.envelope_from = ctx->cfg->envelope_from;
	bo.recipient = recipient;
	if ((rc = bounce_apply(ctx->db, &bo, r, ctx->now, &res,
	    &ctx->err)) < 0)
		goto out;
	if (ctx->json)
		print_json(r, &res, 1);
	if (res.declarer == 0) {
		/* No address: a bounce for someone else is no business of
		 * ours, and the log must not collect strangers' addresses. */
		log_info("%s bounce (%s, %s) is not about one of our "
		    "declarers; ignored", bounce_kind_name(r->kind), r->format,
		    r->nrcpts > 0 && r->rcpts[0].status[0] ?
		    r->rcpts[0].status : "no status");
	} else {
		/* A log line for what changes or counts (also under -q and
		 * with log = syslog, where an MTA's pipe leaves no stdout). */
		if (!dry && res.marked)	/* a status change: a warning */
			log_warnx("declarer %lld marked bounced: %s bounce %s "
			    "(found by %s)", res.declarer,
			    bounce_kind_name(res.kind), res.status[0] ?
			    res.status : "(no status)", res.by_verp ?
			    "VERP address" : "Message-ID");
		else if (!dry && !res.unverified &&
		    res.kind == BOUNCE_POLICY)	/* the set-up: a warning */
			log_warnx("policy bounce %s for declarer %lld: the "
			    "receiver refused the sending set-up, not the "
			    "address (it stays active); %s", res.status[0] ?
			    res.status : "(no status)", res.declarer,
			    bounce_policy_hint(res.status, res.diag));
		else if (!dry && !res.unverified)
			log_info("%s bounce %s for declarer %lld recorded",
			    bounce_kind_name(res.kind), res.status[0] ?
			    res.status : "(no status)", res.declarer);
	}
	if (res.declarer != 0 && !ctx->json && ctx->verbosity >= 0) {
		printf("%s%s bounce %s for declarer %lld (found by %s): ",
		    dry ? "dry run, nothing stored: " : "",
		    bounce_kind_name(res.kind), res.status[0] ? res.status :
		    "(no status)", res.declarer, res.by_verp ? "VERP address" :
		    res.by_message_id ? "Message-ID" : "address");
		if (res.kind == BOUNCE_POLICY)	/* never acted on */
			printf("recorded; the address stays active: the "
			    "receiver refused the sending set-up, not the "
			    "address; %s\n", bounce_policy_hint(res.status,
			    res.diag));
		else if (res.unverified)
			printf("recorded, status unchanged: only the failed "
			    "address names the declarer, and anybody can write "
			    "that (bounces with our Message-ID, or [mail] verp, "
			    "are acted on)\n");
		else if (res.marked)
			printf("marked bounced\n");
		else if (strcmp(res.status_before, "active") != 0)
			printf("recorded (already %s)\n", res.status_before);
		else
			printf("recorded (%d of %d soft bounces within %d "
			    "days)\n", res.soft_count, bo.soft_limit,
			    bo.soft_days);
	}
	rc = 0;
out:
	/*
	 * A bounce read and understood that could not be acted on (the key
	 * unreadable, the disk full, the database failing) must come again:
	 * Postfix takes every exit code but 75 (and 71) for "drop it" and
	 * returns the bounce to the null sender, that is nowhere.
	 */
	if (rc < 0 && parsed && ctx->err.code != ERR_TEMP &&
	    ctx->err.code != ERR_LOCKED) {
		err_prefix(&ctx->err, "bounce kept for a retry");
		ctx->err.code = ERR_TEMP;
		rc = -ERR_TEMP;
	}
	campaign_keys_release(&keys);
	free(r);
	buf_release(&in);
	return rc < 0 ? cmd_fail(ctx, rc) : EX_OK;
}
