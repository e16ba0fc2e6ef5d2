/*
 * samail serve [--listen ADDR] — the one-click unsubscribe endpoint.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "cmd.h"
#include "httpd.h"
#include "log.h"

static const char serve_usage[] =
"samail serve [--listen HOST:PORT]\n"
"\n"
"Answer one-click unsubscribes (RFC 8058) over HTTP until SIGTERM or\n"
"SIGINT.  Meant to sit behind the organisation's web server, which\n"
"terminates TLS and forwards [unsubscribe] base_url to /u/ here.\n"
"\n"
"  --listen HOST:PORT  where to listen (default: [unsubscribe] listen,\n"
"                      127.0.0.1:8025); [::1]:PORT for IPv6\n"
"\n"
"  GET  /u/TOKEN   the confirmation page, or 'already unsubscribed'\n"
"                  (changes nothing)\n"
"  POST /u/TOKEN   with List-Unsubscribe=One-Click: unsubscribe\n"
"  GET  /healthz   \"ok\" (200), or 503 when the database cannot be used\n"
"                  (gone, or migrated by a newer samail: restart serve)\n"
"\n"
"Per client address (the last X-Forwarded-For entry when the peer is\n"
"loopback): 60 requests at once, then 60 a minute; bodies up to 1 KB.";

int
cmd_serve(struct ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct httpd_opts o;
	struct httpd *h = NULL;
	sigset_t set;
	int ch, rc, sig = 0;

	memset(&o, 0, sizeof(o));
	o.cfg = ctx->cfg;
	o.listen = ctx->cfg->listen;
	o.busy_ms = ctx->cfg->db_busy_timeout;
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			if (httpd_check_listen(optarg, &ctx->err) < 0)
				return cmd_usage_error(ctx, serve_usage, "--listen: "
				    "%s", ctx->err.msg);
			o.listen = optarg;
			break;
		case 'h':
			puts(serve_usage);
			return EX_OK;
		default:
			return cmd_usage_error(ctx, serve_usage, "option '%s' is "
			    "unknown here or needs a value", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cmd_usage_error(ctx, serve_usage, "unexpected '%s'",
		    argv[optind]);
	/* A long-running daemon: every line gets a time stamp. */
	log_init(ctx->verbosity, LOG_F_STAMP |
	    (ctx->cfg->log_syslog ? LOG_F_SYSLOG : 0));
	/* Block the stop signals before any thread exists, so every worker
	 * inherits the mask and only sigwait() below receives them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((rc = httpd_start(&h, &o, &ctx->err)) < 0)
		return cmd_fail(ctx, rc);
	log_info("listening on %s", httpd_address(h));
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			/* Keys are read per request; templates only at start. */
			log_info("SIGHUP: unsubscribe keys are re-read on every "
			    "request; restart to load edited templates");
			continue;
		}
		break;
	}
	log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	httpd_stop(h);
	return EX_OK;
}
