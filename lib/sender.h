/*
 * sender — drain the outbox through the configured transport: a maildir
 * or mbox (local), or SMTP relays (lib/smtp).
 *
 * For every message: claim the outbox row and commit it in flight, render
 * the message from its campaign, hand it over, and record the outcome
 * (sent with the relay's queue id; deferred with backoff; failed; the
 * address bounced on a 5.1.x).  On start, rows left in flight by a crash
 * are re-sent with the same Message-ID (or held, resend_in_flight = no);
 * a maildir knows whether they arrived and never delivers twice.
 */
#ifndef SAMAIL_SENDER_H
#define SAMAIL_SENDER_H

#include <stdatomic.h>
#include <stddef.h>
#include <time.h>

struct config;
struct db;
struct err;

struct sender_stats {
	size_t	recovered;	/* in flight after a crash */
	size_t	held;		/* of those, held (resend_in_flight = no) */
	size_t	sent;
	size_t	deferred;
	size_t	failed;
	size_t	bounced;	/* of the failed: 5.1.x, address marked */
	size_t	cancelled;	/* declarer no longer active */
	size_t	unsent;		/* claimed but never handed over */
	int	stopped;	/* the run stopped early (the error says why),
				   as opposed to ending with some deferred */
	unsigned long capped;	/* the limit that ended the run with
				   messages still due ([smtp] max_per_run or
				   --limit), or 0 */
};

struct sender_opts {
	unsigned long	 limit;		/* messages this run; 0: all (the
					   smaller of it and [smtp]
					   max_per_run counts) */
	const atomic_int *stop;		/* set to stop after the current one */
};

/*
 * Send what is due.  The clock: now (the --now of the run; backoff and
 * timestamps use it).  Returns 0 when everything handed over was
 * accepted, -ERR_TEMP if some messages were deferred (75), -ERR_NET if
 * the relays were down (69; the untried messages stay queued), other
 * -ERR_* for local failures.
 */
int	 sender_run(struct db *, const struct config *, time_t now,
	    const struct sender_opts *, struct sender_stats *, struct err *);

/*
 * The meta key set while the relay refuses our messages for what they
 * are (spam, DMARC): "TIMESTAMP RELAY: REPLY" of the refusal that stopped
 * a run; the next runs stop at the first such refusal.  Removed once a
 * message goes through.
 */
#define SENDER_META_REFUSED	"send.content_refused"

#endif
