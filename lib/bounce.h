/*
 * bounce — read one returned message (a bounce) and apply the bounce
 * rules to the declarer it is about.
 *
 * bounce_parse() reads any bytes (untrusted: whatever an MTA pipes to
 * `samail bounce`) with GMime and says whether they are a bounce:
 *
 *  - an RFC 3464 DSN (multipart/report; report-type=delivery-status): per
 *    recipient Final-Recipient, Original-Recipient, Action, Status and
 *    Diagnostic-Code; the original Message-ID from the returned message
 *    (message/rfc822) or its headers (text/rfc822-headers);
 *  - the common non-standard bounces, by their text: qmail, Exim's plain
 *    text (and X-Failed-Recipients), Postfix's and sendmail's text,
 *    Gmail's, Exchange's: the failed addresses and SMTP/enhanced codes in
 *    the report before the returned message, the Message-ID in the
 *    returned message;
 *  - anything else (an auto-reply, an ordinary message, a read receipt, a
 *    DSN that reports only deliveries, garbage) is not a bounce.
 *
 * Each failed recipient gets a kind (bounce_classify(), the rule in
 * full there and in docs/unsubscribe-and-bounces.md):
 *
 *  - hard: the address does not exist or is disabled (5.1.x, "user
 *    unknown", "ユーザが存在しません", ...);
 *  - soft: temporary (4.x.x, "delayed"), a full mailbox (5.2.2), routing
 *    and system trouble at the receiver (5.3.x, 5.4.x);
 *  - policy: the receiver refused the mail for who sent it or what it
 *    is, not for the address: block lists, reputation, SPF/DKIM/DMARC,
 *    spam, our sender address, relaying (5.7.x, 4.7.x and such words).
 *    Not the declarer's fault, and a block-list entry of the relay's IP
 *    refuses every declarer at a provider at once: it never changes a
 *    declarer's status and does not count towards soft_limit.
 *
 * Where the Status field is only "X.0.0" the more precise code in the
 * diagnostic is used (Exim writes 5.0.0 with "550 5.1.1 ..." after it).
 *
 * bounce_apply() finds the declarer: by the VERP return address the bounce
 * was sent to, when [mail] verp is on and its token verifies (trusted on
 * its own); else by the original Message-ID when its HMAC tag verifies
 * and it
 * is one of ours (campaign_parse_message_id() with this database's
 * instance, and that campaign really queued mail for that declarer), else
 * by a failed recipient address that is one of our declarers.  Our
 * Message-IDs are not secret, so a Message-ID match also needs the
 * declarer's address among the failed recipients when the report names
 * any (Original-Recipient counts: forwarding keeps it); that stops
 * a forged bounce from disabling declarers by guessing ids.  Then:
 *
 *  - hard: the address is marked bounced at once (status 'bounced', a
 *    suppression record, queued mail cancelled) and a bounce row kind
 *    'hard' is kept;
 *  - soft: a bounce row kind 'soft' is kept; when soft_limit soft bounces
 *    of distinct messages arrived within soft_days (delay warnings and
 *    the final failure of one message count once), the address is marked
 *    bounced;
 *  - policy: a bounce row kind 'policy' is kept, nothing else changes;
 *    the admin sees it (`samail bounce`, `samail status`) with
 *    bounce_policy_hint()'s advice.
 *
 * Only active declarers change status: an unsubscribed or removed one
 * keeps it (the bounce is still recorded).  An admin reactivates with
 * `samail subscriber update E --status active`.
 *
 * GMime must be initialised (msg_global_init()) before bounce_parse().
 */
#ifndef SAMAIL_BOUNCE_H
#define SAMAIL_BOUNCE_H

#include <stddef.h>
#include <time.h>

#include "addr.h"

struct db;
struct err;

#define BOUNCE_MAX_INPUT	(10L * 1024 * 1024)	/* bytes read at most */
#define BOUNCE_MAX_RCPTS	16
#define BOUNCE_MAX_MIDS		8
#define BOUNCE_DIAG_MAX		300	/* bytes of diagnostic kept */
#define BOUNCE_MID_MAX		255

/* In the order of what a report as a whole is (the worst recipient). */
enum bounce_kind {
	BOUNCE_NONE = 0,
	BOUNCE_SOFT = 1,
	BOUNCE_POLICY = 2,
	BOUNCE_HARD = 3
};

struct bounce_rcpt {
	char		 addr[ADDR_MAX + 1];	/* failed address, checked; "" */
	char		 orig[ADDR_MAX + 1];	/* Original-Recipient; "" */
	char		 action[16];		/* failed, delayed; "" (text) */
	char		 status[16];		/* "5.1.1"; "" if unknown */
	char		 diag[BOUNCE_DIAG_MAX + 1];	/* one line, UTF-8 */
	enum bounce_kind kind;
};

struct bounce_report {
	enum bounce_kind kind;		/* the worst of the recipients */
	char		 format[16];	/* dsn, postfix, exim, qmail, gmail,
					 * exchange, sendmail, text */
	char		 why[80];	/* not a bounce: why not */
	struct bounce_rcpt rcpts[BOUNCE_MAX_RCPTS];
	size_t		 nrcpts;	/* failed (hard or soft) recipients */
	char		 mids[BOUNCE_MAX_MIDS][BOUNCE_MID_MAX + 1];
	size_t		 nmids;		/* candidate original Message-IDs,
					 * without <>, most likely first */
	char		 to[4][ADDR_MAX + 1];	/* where the bounce was sent:
					 * Delivered-To, X-Original-To,
					 * Envelope-To, To (for VERP) */
	size_t		 nto;
};

/*
 * Parse one message of len bytes.  Returns 1 for a bounce (report filled,
 * kind HARD, SOFT or POLICY, at least one recipient or Message-ID), 0 when it is
 * not a bounce (report->why says what it is), -ERR_TOOBIG over
 * BOUNCE_MAX_INPUT.  Never fails otherwise, whatever the bytes.
 */
int	 bounce_parse(const void *data, size_t len, struct bounce_report *,
	    struct err *);

/* "hard", "soft", "policy" or "none". */
const char *bounce_kind_name(enum bounce_kind);

/*
 * The kind of one failed recipient.  action: the DSN's Action ("failed",
 * "delayed"; "" for a text bounce), status: its enhanced code ("5.7.1";
 * "" if none), text: what the receiving server replied (the
 * Diagnostic-Code, or the paragraph of a text bounce), ctx: what the
 * reporting MTA said about the same recipient (its paragraph in the
 * human-readable part: "(in reply to MAIL FROM command)"), or NULL; both
 * need not be terminated.  BOUNCE_NONE for a delivery (relayed, expanded,
 * 2.x.x).
 */
enum bounce_kind bounce_classify(const char *action, const char *status,
	    const char *text, size_t n, const char *ctx, size_t cn);

/*
 * For a policy bounce: one line saying what to check, chosen by the
 * status and the diagnostic (block list, SPF/DKIM/DMARC, reverse DNS,
 * the envelope sender, relaying, rate, size, content).  Static text.
 */
const char *bounce_policy_hint(const char *status, const char *diag);

/*
 * The policy bounces recorded at or after since (a timestamp): their
 * count, and the last one's received time (21 bytes), status (16) and
 * diagnostic (BOUNCE_DIAG_MAX + 1), "" when there is none.  0 or -ERR_DB.
 */
struct bounce_policy_summary {
	long	 count;
	char	 received[21];
	char	 status[16];
	char	 diag[BOUNCE_DIAG_MAX + 1];
};

int	 bounce_policy_since(struct db *, const char *since,
	    struct bounce_policy_summary *, struct err *);

struct token_keys;

struct bounce_opts {
	const char	*instance;	/* campaign_instance() of this db */
	int		 soft_limit;	/* [bounce] soft_limit */
	int		 soft_days;	/* [bounce] soft_days */
	int		 dry_run;	/* roll back instead of committing */
	/* The unsubscribe keys: they verify the tag in our Message-IDs and,
	 * with verp, the token in a VERP return address.  A bounce found
	 * only by a failed address is recorded but marks nobody. */
	const struct token_keys *keys;
	int		 verp;		/* [mail] verp */
	const char	*list_id;	/* bare List-Id */
	const char	*envelope_from;
	const char	*recipient;	/* the MTA's envelope recipient, if given */
};

struct bounce_result {
	long long	 declarer;	/* 0: none of ours */
	char		 email[ADDR_MAX + 1];
	char		 status_before[16];	/* the declarer's status */
	enum bounce_kind kind;		/* what was recorded */
	char		 status[16];	/* its code, "" if unknown */
	char		 diag[BOUNCE_DIAG_MAX + 1];	/* its diagnostic */
	int		 by_message_id;	/* found by Message-ID (else address) */
	int		 by_verp;	/* found by the VERP return address */
	int		 unverified;	/* found by address only: recorded,
					 * no status changed */
	int		 marked;	/* this bounce marked the address bounced */
	int		 soft_count;	/* soft bounces within soft_days, this
					 * one included */
};

/*
 * Apply a parsed bounce (bounce_parse() returned 1) in a transaction of
 * its own (call it outside one).  0 with res filled (res->declarer 0 when
 * the bounce is about nobody of ours: nothing is stored), or -ERR_LOCKED
 * (database busy: the MTA should retry), -ERR_DB, -ERR_IO.
 */
int	 bounce_apply(struct db *, const struct bounce_opts *,
	    const struct bounce_report *, time_t now, struct bounce_result *,
	    struct err *);

#endif
