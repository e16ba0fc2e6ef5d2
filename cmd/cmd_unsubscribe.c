/*
 * samail unsubscribe TOKEN|URL
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <jansson.h>

#include "addr.h"
#include "cmd.h"
#include "unsub.h"

static const char unsub_usage[] =
"samail unsubscribe TOKEN|URL\n"
"\n"
"Unsubscribe the declarer an unsubscribe token names: the last part of\n"
"the https link in the List-Unsubscribe header (the whole link works too).\n"
"Their queued mail is cancelled and the address is kept on the suppression\n"
"list.  Exit 0 when done or already unsubscribed, 65 for a token that is\n"
"not valid for this list.";

int
cmd_unsubscribe(struct ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char email[ADDR_MAX + 1];
	int64_t id = 0;
	int ch, rc;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'h':
			puts(unsub_usage);
			return EX_OK;
		default:
			return cmd_usage_error(ctx, unsub_usage, "option '%s' is "
			    "unknown here or needs a value", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return cmd_usage_error(ctx, unsub_usage, optind < argc ?
		    "give one token" : "the token is missing");
	/* The token first: nothing is looked up for one that is not ours. */
	if ((rc = unsub_check(ctx->cfg, argv[optind], ctx->now, &id,
	    &ctx->err)) < 0)
		return cmd_fail(ctx, rc);
	if ((rc = cmd_db(ctx, 0)) < 0 ||
	    (rc = db_durable(ctx->db, &ctx->err)) < 0 ||
	    (rc = unsub_apply(ctx->db, id, "samail unsubscribe", ctx->now,
	    email, &ctx->err)) < 0)
		return cmd_fail(ctx, rc);
	if (ctx->json) {
		json_t *a = json_array(), *o = json_object();
		char *s;

		json_object_set_new(o, "declarer", json_integer(id));
		json_object_set_new(o, "email", email[0] ? json_string(email) :
		    json_null());
		json_object_set_new(o, "result", json_string(rc == UNSUB_DONE ?
		    "unsubscribed" : "already"));
		json_array_append_new(a, o);
		s = json_dumps(a, JSON_COMPACT);
		puts(s);
		free(s);
		json_decref(a);
	} else if (ctx->verbosity >= 0) {
		if (email[0] == '\0')
			printf("declarer %lld no longer exists (purged); its "
			    "address stays suppressed\n", (long long)id);
		else if (rc == UNSUB_DONE)
			printf("unsubscribed %s (declarer %lld); queued mail "
			    "cancelled\n", email, (long long)id);
		else
			printf("%s (declarer %lld) was already unsubscribed\n",
			    email, (long long)id);
	}
	return EX_OK;
}
