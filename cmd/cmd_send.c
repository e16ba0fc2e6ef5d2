/*
 * samail send [--limit N] [--release-held] [--retry-failed] [--campaign NAME]
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
#include "db.h"
#include "log.h"
#include "outbox.h"
#include "sender.h"

static const char send_usage[] =
"samail send [--limit N] [--release-held] [--retry-failed] [--campaign NAME]\n"
"\n"
"Deliver what is queued (new, and deferred messages that are due) through\n"
"the configured transport.  Exit 0 when all went (or the per-run cap\n"
"stopped it), 75 when some were deferred, the relay holds us off or our\n"
"sending quota is used up, or a signal stopped the send (a later send\n"
"goes on), 69 when the relays are down or refuse our mail, 78 when a\n"
"relay refuses the set-up (sender, login, relaying): see samail(1).\n"
"\n"
"  --limit N         hand over at most N messages in this run (the\n"
"                    smaller of it and [smtp] max_per_run counts)\n"
"  --release-held    first queue again the messages held after a crash\n"
"                    (resend_in_flight = no) once you have checked them\n"
"  --retry-failed    first queue again the failed messages of declarers\n"
"                    still active (after fixing the relay set-up, say)\n"
"  --campaign NAME   only those of one campaign (newsletter-2026-10...)";

static atomic_int stop_flag;

static void
on_signal(int sig)
{
	atomic_store(&stop_flag, sig);
}

/*
 * Put held and/or failed messages back in the queue, in one transaction.
 * A failed message goes back only while its declarer is active (a
 * bounced or unsubscribed address stays failed), with its attempts reset.
 */
static int
requeue(struct ctx *ctx, int release, int retry, const char *campaign)
{
	sqlite3_stmt *st;
	int rc, held = 0, failed = 0;

	if ((rc = cmd_begin(ctx)) < 0)
		return cmd_fail(ctx, rc);
	if (campaign != NULL) {
		if ((st = db_prepare(ctx->db, "SELECT 1 FROM campaign WHERE "
		    "name = ?", &ctx->err)) == NULL)
			goto fail;
		sqlite3_bind_text(st, 1, campaign, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_ROW) {
			db_rollback(ctx->db);
			err_set(&ctx->err, ERR_NOTFOUND, "no campaign '%s'; 'samail "
			    "status' lists them", campaign);
			return cmd_fail(ctx, -ERR_NOTFOUND);
		}
	}
	if (release && (held = db_run(ctx->db, "UPDATE outbox SET state = "
	    "'queued', next_try = NULL, last_error = 'released by the admin' "
	    "WHERE state = 'held' AND (?2 IS NULL OR campaign_id = (SELECT id "
	    "FROM campaign WHERE name = ?2)) AND ?1 = ?1", 0, campaign, NULL,
	    NULL, &ctx->err)) < 0)
		goto fail;
	if (retry && (failed = db_run(ctx->db, "UPDATE outbox SET state = "
	    "'queued', attempts = 0, next_try = NULL, last_error = 'retried "
	    "by the admin' WHERE state = 'failed' AND (?2 IS NULL OR "
	    "campaign_id = (SELECT id FROM campaign WHERE name = ?2)) AND "
	    "subscriber_id IN (SELECT id FROM subscriber WHERE status = "
	    "'active') AND ?1 = ?1", 0, campaign, NULL, NULL, &ctx->err)) < 0)
		goto fail;
	if ((rc = cmd_commit(ctx)) < 0)
		return cmd_fail(ctx, rc);
	if (ctx->verbosity >= 0 && release)
		printf("released %d held message%s\n", held, held == 1 ? "" : "s");
	if (ctx->verbosity >= 0 && retry)
		printf("queued %d failed message%s again\n", failed,
		    failed == 1 ? "" : "s");
	return 0;
fail:
	db_rollback(ctx->db);
	return cmd_fail(ctx, -ERR_DB);
}

int
cmd_send(struct ctx *ctx, int argc, char **argv)
{
	long long left, due;
	static const struct option opts[] = {
		{ "limit", required_argument, NULL, 'l' },
		{ "release-held", no_argument, NULL, 'H' },
		{ "retry-failed", no_argument, NULL, 'F' },
		{ "campaign", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *campaign = NULL;
	int release = 0, retry = 0;
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
		case 'H':
			release = 1;
			break;
		case 'F':
			retry = 1;
			break;
		case 'c':
			campaign = optarg;
			break;
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
	if (campaign != NULL && !release && !retry)
		return cmd_usage_error(ctx, send_usage, "--campaign goes with "
		    "--release-held or --retry-failed");
	if ((release || retry) && (rc = requeue(ctx, release, retry,
	    campaign)) != 0)
		return rc;
	/* SIGTERM/SIGINT: finish the message in hand, then stop cleanly. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = sender_run(ctx->db, ctx->cfg, ctx->now, &so, &st, &ctx->err);
	/* What is left for a later send, counted in the store: a message
	 * taken back after a failed connection may have been claimed again
	 * by another worker, so st.unsent counts attempts, not messages. */
	left = outbox_waiting(ctx->db);
	if (ctx->verbosity >= 0 || rc < 0)
		printf("sent %zu, deferred %zu, failed %zu (%zu bounced), "
		    "cancelled %zu, still queued %lld%s via %s\n", st.sent,
		    st.deferred, st.failed, st.bounced, st.cancelled, left,
		    st.held ? " (in flight at a crash: held for review)" :
		    st.recovered ? " (in flight at a crash: sent again)" : "",
		    ctx->cfg->transport);
	if (st.capped > 0 && (ctx->verbosity >= 0 || rc < 0))
		printf("stopped at the limit of %lu message%s this run (%s); "
		    "the rest wait for the next send\n", st.capped,
		    st.capped == 1 ? "" : "s", so.limit == st.capped ?
		    "--limit" : "[smtp] max_per_run");
	/* Stopped by a signal with mail left that was due: not done (75),
	 * say so (deferred messages not yet due are no one's to send). */
	if (rc == 0 && atomic_load(&stop_flag) &&
	    (due = outbox_due(ctx->db, ctx->now)) != 0) {
		const char *sig = atomic_load(&stop_flag) == SIGINT ?
		    "SIGINT" : "SIGTERM";

		if (due < 0)	/* unknown: say it may be so */
			rc = err_set(&ctx->err, ERR_TEMP, "stopped by %s: "
			    "messages may be left queued for the next 'samail "
			    "send'", sig);
		else
			rc = err_set(&ctx->err, ERR_TEMP, "stopped by %s: %lld "
			    "message%s left queued for the next 'samail send'",
			    sig, due, due == 1 ? "" : "s");
	}
	if (rc < 0)
		return cmd_fail(ctx, rc);
	return EX_OK;
}
