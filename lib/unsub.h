/*
 * unsub — turn an unsubscribe token into an unsubscribed declarer; shared
 * by `samail unsubscribe TOKEN` and `samail serve`.
 *
 * A token is untrusted input (a URL path, a command line).  unsub_check()
 * verifies it with token_verify() before anything else: its shape first,
 * then the MAC in constant time, and only a token we issued for this list
 * yields a declarer id.  No database lookup is ever driven by a token that
 * does not verify, and the message for a bad token is the same whatever
 * the reason, so it tells nobody whether an address exists.
 *
 * Unsubscribing sets the declarer's status to 'unsubscribed' with a
 * suppression record and cancels their queued mail (sub_set_status()), in
 * one transaction.  Doing it twice is harmless: the second time says so.
 */
#ifndef SAMAIL_UNSUB_H
#define SAMAIL_UNSUB_H

#include <stdint.h>
#include <time.h>

struct config;
struct db;
struct err;

/*
 * Verify token for this config's list (List-Id) with the keys from
 * campaign_keys_load() (current key, then the previous one until its end
 * date at now).  What an admin pastes is accepted too: the https link
 * (its last path segment is the token), the mailto link
 * ("...?subject=unsubscribe%20TOKEN") or that mail's subject
 * ("unsubscribe TOKEN").
 * 0 with *id set; -ERR_INVAL for any token that is not ours for this list
 * (one message for every reason); -ERR_CONFIG when the keys cannot be
 * read.
 */
int	 unsub_check(const struct config *, const char *token, time_t now,
	    int64_t *id, struct err *);

enum unsub_outcome {
	UNSUB_DONE = 1,		/* this call unsubscribed the declarer */
	UNSUB_ALREADY = 0,	/* already unsubscribed, removed or purged */
};

/*
 * Unsubscribe declarer id (from unsub_check()) in a transaction of its
 * own (call it outside one).  how: a few words for the status reason
 * ("one-click", "web form", "admin").  email (ADDR_MAX + 1 bytes, may be
 * NULL) receives the address, "" if the declarer was purged.  A bounced
 * declarer becomes unsubscribed (their own wish outlives a reactivated
 * bounce); a removed or purged one is left as it is.
 * Returns UNSUB_DONE or UNSUB_ALREADY, or -ERR_LOCKED (database busy:
 * try again later), -ERR_DB, -ERR_IO.
 */
int	 unsub_apply(struct db *, int64_t id, const char *how, time_t now,
	    char *email, struct err *);

/*
 * The declarer's locale ("ja" or "en") into locale (3 bytes); "ja" when
 * there is no such declarer.  *already (may be NULL) is set when
 * unsub_apply() would change nothing (unsubscribed, removed or purged):
 * the confirmation page then says so instead of offering the button.
 * A read, never blocked by a writer (WAL).  0 or -ERR_DB.
 */
int	 unsub_locale(struct db *, int64_t id, char *locale, int *already,
	    struct err *);

/*
 * Counts for `samail status`: how many declarers are unsubscribed or
 * bounced now, how many became so at or after since (e.g. the start of
 * this month, unsub_month_start()), and the bounce reports recorded since.
 */
struct unsub_stats {
	long	unsubscribed;		/* status now */
	long	bounced;
	long	unsubscribed_since;	/* status changed to it at/after since */
	long	bounced_since;
	long	hard_since;		/* bounce rows received at/after since */
	long	soft_since;
};

int	 unsub_stats(struct db *, time_t since, struct unsub_stats *,
	    struct err *);

/* The first instant of now's month in Japan time (00:00 JST on the 1st). */
time_t	 unsub_month_start(time_t now);

#endif
