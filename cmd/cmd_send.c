/*
 * samail send [--limit N]
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "cmd.h"
#include "log.h"
#include "sender.h"

static const char send_usage[] =
"samail send [--limit N]\n"
"\n"
"Deliver what is queued (new, and deferred messages that are due) through\n"
"the configured transport.  Exit 0 when all went, 75 when some were\n"
"deferred (a later send retries them), 69 when the relays are down.";

static atomic_int stop_flag;

static void
on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop_flag, 1);
}

int
cmd_send(struct ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "limit", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sender_opts so = { 0, &stop_flag };
	struct sender_stats st;
	struct sigaction sa;
	int ch, rc;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'l': {
			char *end;
			long v;

			errno = 0;
			v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || v <= 0 ||
			    errno != 0)
				return cmd_usage_error(ctx, send_usage, "--limit "
				    "must be a positive number, not '%s'", optarg);
			so.limit = (unsigned long)v;
			break;
		}
		case 'h':
			puts(send_usage);
			return EX_OK;
		default:
			return cmd_usage_error(ctx, send_usage, "option '%s' is "
			    "unknown here or needs a value", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cmd_usage_error(ctx, send_usage, "unexpected '%s'",
		    argv[optind]);
	if ((rc = cmd_db(ctx, 0)) < 0 || (rc = cmd_lock(ctx)) < 0)
		return cmd_fail(ctx, rc);
	/* SIGTERM/SIGINT: finish the message in hand, then stop cleanly. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = sender_run(ctx->db, ctx->cfg, ctx->now, &so, &st, &ctx->err);
	if (ctx->verbosity >= 0 || rc < 0)
		printf("sent %zu, deferred %zu, failed %zu (%zu bounced), "
		    "cancelled %zu, not handed over %zu%s via %s\n", st.sent,
		    st.deferred, st.failed, st.bounced, st.cancelled, st.unsent,
		    st.recovered ? " (incl. re-sent after a crash)" : "",
		    ctx->cfg->transport);
	if (rc < 0)
		return cmd_fail(ctx, rc);
	return EX_OK;
}
