/*
 * outbox — the ledger of messages to send: one row per (campaign,
 * declarer, item), holding what is needed to render the identical message
 * again (the declarer's side, frozen at queue time; the campaign holds the
 * rest).
 *
 * States: queued -> inflight -> sent
 *                           \-> deferred (retried after next_try) -> ... -> failed
 *                           \-> failed
 *         queued|deferred|held -> cancelled (declarer left)
 * A row is marked inflight and committed before its message is handed to
 * the transport, and sent only after the transport accepted it: a crash
 * in between leaves it inflight, and outbox_recover() puts it back (the
 * re-send carries the same Message-ID) or holds it for review.
 */
#ifndef SAMAIL_OUTBOX_H
#define SAMAIL_OUTBOX_H

#include <time.h>

struct db;
struct err;

struct outbox_row {
	long long	 id;
	long long	 campaign_id;
	long long	 subscriber_id;	/* 0 if the declarer was purged */
	char		*item;		/* "" for one message per declarer */
	char		*rcpt;
	char		*data;		/* JSON */
	int		 attempts;	/* including the one now claimed */
	char		*queued_at;
};

void	 outbox_row_release(struct outbox_row *);

/*
 * Queue one message.  Returns 1 if queued, 0 if that (campaign, declarer,
 * item) is queued already (any state), or -ERR_*.
 */
int	 outbox_queue(struct db *, long long campaign_id,
	    long long subscriber_id, const char *item, const char *rcpt,
	    const char *data, time_t now, struct err *);

/* The last_error of a message held after a crash (resend_in_flight =
 * no): it may have been handed over; a cancelled one keeps it. */
#define OUTBOX_HELD_ERROR	"interrupted while in flight; held for " \
	"review (resend_in_flight = no)"

/*
 * Queue again a message that was cancelled before it was ever handed
 * over (its declarer unsubscribed, bounced or was removed, and is active
 * again): state queued, rcpt and data as given, attempts 0, same
 * Message-ID.  Not one that was held (OUTBOX_HELD_ERROR) when it was
 * cancelled: that one may have been delivered, and the admin chose to
 * review such messages.  1 if so, 0 if there is no such cancelled
 * message, -ERR_*.
 */
int	 outbox_requeue(struct db *, long long campaign_id,
	    long long subscriber_id, const char *item, const char *rcpt,
	    const char *data, time_t now, struct err *);

/*
 * After a crash: rows left inflight go back to queued (resend) or to held
 * (resend == 0: an admin reviews them with `samail status`).  Returns the
 * number of rows found.
 */
int	 outbox_recover(struct db *, int resend, struct err *);

/*
 * Claim the next message due (queued, or deferred with next_try <= now),
 * oldest first, and mark it inflight with attempts + 1.  The caller
 * commits before handing the message over.  Returns 1 with *row filled
 * (release with outbox_row_release()), 0 if nothing is due.
 */
int	 outbox_claim(struct db *, time_t now, struct outbox_row *, struct err *);

/* The row of (campaign, declarer, item): 1 with *row filled (release
 * with outbox_row_release()), 0 if there is none. */
int	 outbox_get(struct db *, long long campaign_id, long long subscriber_id,
	    const char *item, struct outbox_row *, struct err *);

/* Outcomes.  relay_id: the relay's queue id, may be NULL.  A failed
 * row's sent_at records when it was given up. */
int	 outbox_sent(struct db *, long long id, const char *relay,
	    const char *relay_id, time_t now, struct err *);
int	 outbox_defer(struct db *, long long id, const char *why,
	    time_t next_try, struct err *);
int	 outbox_fail(struct db *, long long id, const char *why, time_t now,
	    struct err *);
/* Not to be sent (the declarer left). */
int	 outbox_cancel(struct db *, long long id, const char *why,
	    struct err *);
/* Back to queued without counting an attempt (never handed over). */
int	 outbox_unclaim(struct db *, long long id, time_t now, struct err *);

/* Messages a later send will try (queued or deferred); -1 on error. */
long long outbox_waiting(struct db *);
/* Those of them due at now (what a send at now would take); -1 on error. */
long long outbox_due(struct db *, time_t now);

/*
 * When to try a deferred message again: base * 2^(attempts-1), at most
 * 12 hours; 0 if it should be given up (attempts >= max_attempts or
 * queued longer than max_age ago).
 */
time_t	 outbox_next_try(time_t now, int attempts, const char *queued_at,
	    long base, int max_attempts, long max_age);

/* Cancel the queued, deferred and held messages of a declarer. */
int	 outbox_cancel_subscriber(struct db *, long long subscriber_id,
	    struct err *);

#endif
