/*
 * smtp — the SMTP sending engine: libcurl, worker threads, reused
 * connections, a shared rate cap, relay failover, one outcome per message.
 *
 * No database and no config reading here: the caller fills struct
 * smtp_opts and hands messages over through two callbacks.
 *
 *   next_cb(job, arg)          a worker asks for the next message.  This is
 *                              the hand-over point: the caller claims an
 *                              outbox row and marks it in flight inside it.
 *   done_cb(job, result, arg)  the outcome of that message; called exactly
 *                              once for every job next_cb handed out.
 *
 * THREADS: with max_connections > 1, next_cb and done_cb are called from
 * several worker threads at the same time.  The caller must make them
 * thread-safe (e.g. one mutex around its database work; render messages
 * outside it so the workers do not queue behind each other).
 *
 * Crash safety is shared: the engine hands a message to the relay only
 * after next_cb returned it (so it is marked in flight) and reports SENT
 * only after the relay's 250 to the end of data.  A connection lost after
 * the data went out is TEMPFAIL: the relay may or may not have the message
 * (the "one in flight per connection" duplicate the spec allows).
 *
 * Requires curl_global_init() to have been called (main() does it), and
 * SIGPIPE ignored: the handles use CURLOPT_NOSIGNAL (threads), so libcurl
 * does not ignore it for us around TLS writes to a relay that went away.
 */
#ifndef SAMAIL_SMTP_H
#define SAMAIL_SMTP_H

#include <stdatomic.h>
#include <stddef.h>

#include "err.h"

#define SMTP_MAX_RELAYS		16
#define SMTP_MAX_CONNECTIONS	64
#define SMTP_TEXT_MAX		256	/* reply text kept, bytes incl. NUL */
#define SMTP_QUEUE_ID_MAX	64
#define SMTP_ADDR_MAX		254	/* RFC 5321 path limit less the <> */

enum smtp_starttls {
	SMTP_STARTTLS_AUTO = 0,	/* use STARTTLS when the relay offers it */
	SMTP_STARTTLS_REQUIRED,	/* refuse a smtp:// relay without STARTTLS */
	SMTP_STARTTLS_NEVER,	/* never ask (unless AUTH: then required) */
};

struct smtp_opts {
	/*
	 * Relay URLs, smtp://host[:port] or smtps://host[:port], no path,
	 * no credentials.  relays[0] is the primary; when a relay refuses
	 * connections, cannot be reached or fails TLS/AUTH, the next one
	 * takes over for the rest of the run.
	 */
	const char *const *relays;
	size_t		 nrelays;		/* 1..SMTP_MAX_RELAYS */
	enum smtp_starttls starttls;
	/*
	 * Certificates are verified (CA bundle of the system, or cafile).
	 * insecure = 1 turns verification off for the whole relay set: the
	 * config must say so explicitly.
	 */
	int		 insecure;
	const char	*cafile;		/* NULL: system bundle */
	/*
	 * AUTH credentials, read by the caller from a 0600 file or the
	 * environment; NULL username = no AUTH.  With a username, smtp://
	 * relays must do STARTTLS whatever starttls says: a password never
	 * goes over a plain connection.  The login uses PLAIN or LOGIN
	 * only (a password is all we have; libcurl would otherwise pick
	 * GSSAPI, NTLM or CRAM-MD5 first when a relay offers them).
	 */
	const char	*username;
	const char	*password;
	const char	*password_source;	/* for messages: where the
						   password came from; NULL */
	const char	*envelope_from;		/* MAIL FROM (bounce address) */
	const char	*helo;			/* EHLO name; NULL: host name */
	int		 max_connections;	/* worker threads; 0 counts as 1 */
	unsigned	 rate_per_minute;	/* 0 = unlimited */
	unsigned long	 max_messages;		/* jobs taken per run; 0 = all */
	long		 connect_timeout_ms;	/* to the end of EHLO/AUTH; 0: 30 s */
	long		 timeout_ms;		/* each reply, and the data not
						 * moving; 0: 300 s */
	/*
	 * Optional: set to non-zero (e.g. from a SIGTERM handler) to stop.
	 * Workers finish the message they hold and take no new one.
	 */
	const atomic_int *stop;
};

/* One message.  next_cb fills it; the engine only reads it. */
struct smtp_job {
	const char	*rcpt;	/* envelope recipient, bare addr-spec */
	/*
	 * The message exactly as it is to be delivered, CRLF line endings
	 * (dot-stuffing is libcurl's job).  A bare CR or LF or a NUL is
	 * refused: a relay may read "\n.\n" as the end of the data.
	 * It should end in CRLF; if not, the relay gets one added.
	 */
	const char	*data;
	size_t		 len;
	void		*ctx;	/* the caller's (outbox row, ...) */
	const char	*mail_from;	/* this message's envelope sender (VERP);
					   NULL: opts->envelope_from */
	/*
	 * NULL, or called once the relay has taken all of the data but its
	 * last 2 bytes, before them and the end of data: the message cannot
	 * be delivered before it returns.  The caller makes its claim of
	 * the message durable there, while the envelope and the body travel
	 * (sender.c).  Less than 0: the transfer is dropped mid-data (the
	 * relay discards what it got) and the job is SMTP_UNSENT.
	 */
	int		(*before_end)(const struct smtp_job *);
};
/* rcpt, data and ctx must stay valid until done_cb for the job returns. */

enum smtp_outcome {
	SMTP_SENT = 0,		/* 250 to the end of data */
	SMTP_TEMPFAIL,		/* 4xx, or connection lost/timed out after MAIL */
	SMTP_PERMFAIL,		/* 5xx, or refused at the boundary (code 0) */
	SMTP_BAD_RECIPIENT,	/* 5.1.x (or a bare 550 at RCPT): no such user */
	SMTP_RELAY_DOWN,	/* no relay took a connection: not handed over */
	SMTP_UNSENT,		/* not handed over (run stopped, or the relay
				   limits connections and this worker retired) */
};
/*
 * RELAY_DOWN and UNSENT mean the message never reached a relay: put it
 * back untried.  TEMPFAIL: defer with backoff.  PERMFAIL: failed.
 * BAD_RECIPIENT: failed, and the address bounced.
 */

enum smtp_phase {
	SMTP_PHASE_NONE = 0,	/* refused before any network I/O */
	SMTP_PHASE_CONNECT,	/* connect, greeting, EHLO, STARTTLS, AUTH */
	SMTP_PHASE_MAIL,	/* MAIL FROM */
	SMTP_PHASE_RCPT,	/* RCPT TO */
	SMTP_PHASE_DATA,	/* the DATA command */
	SMTP_PHASE_CONTENT,	/* message sent, waiting for the final reply */
};

struct smtp_result {
	enum smtp_outcome outcome;
	enum smtp_phase	 phase;		/* where the transaction ended */
	int		 code;		/* SMTP reply code; 0 = no reply */
	char		 status[16];	/* enhanced status "5.1.1", or "" */
	/*
	 * The relay's reply (lines joined, code and enhanced status
	 * stripped) or libcurl's error: one line, printable ASCII, trimmed,
	 * capped — safe for logs and the database.
	 */
	char		 text[SMTP_TEXT_MAX];
	char		 queue_id[SMTP_QUEUE_ID_MAX];	/* from the final 250; or "" */
	int		 relay;		/* index into opts->relays; -1 none */
	/*
	 * 1 when no other relay could take over from this one now: there
	 * is none, or each has stopped answering, holds us off, or refused
	 * its last connection (see note_reply()).  The caller's streaks
	 * stop the run on it.
	 */
	int		 last_relay;
};

#define SMTP_NEXT_JOB	0	/* next_cb filled the job */
#define SMTP_NEXT_NONE	1	/* nothing left: this worker stops */
/* A negative -ERR_* from next_cb stops the whole run; smtp_run returns it. */
typedef int	smtp_next_fn(struct smtp_job *job, void *arg);
typedef void	smtp_done_fn(const struct smtp_job *job,
		    const struct smtp_result *res, void *arg);

/*
 * Send messages until next_cb has none left, max_messages were taken,
 * *opts->stop is set, next_cb fails, or every relay is down.  Blocks until
 * every worker has finished; every job handed out got its done_cb.
 *
 * Returns 0 (whatever the per-message outcomes were), or
 *   -ERR_CONFIG	bad options (URL, addresses, CA file); nothing sent;
 *			or no relay could be used and for at least one it
 *			was our set-up: the login refused (5xx to AUTH), no
 *			AUTH mechanism we use, STARTTLS required and not
 *			offered, a CA file libcurl cannot read
 *   -ERR_NET		every relay refused (a job was reported RELAY_DOWN):
 *			down, a 4xx/5xx greeting, its TLS certificate or
 *			handshake failed; the message names each relay and
 *			its error, and what to do
 *   -ERR_TEMP		likewise, but every relay took the connection and
 *			answered MAIL FROM (a rate limit), STARTTLS or AUTH
 *			with a 4xx
 *   -ERR_*		what next_cb returned to stop the run
 */
int	 smtp_run(const struct smtp_opts *opts, smtp_next_fn *next_cb,
	    smtp_done_fn *done_cb, void *arg, struct err *e);

/*
 * Check an envelope address (bare addr-spec, no <>): ASCII, 1..254 bytes,
 * one '@' with something on both sides, no space, control character, '<'
 * or '>' — so nothing a relay could read as a second command or a
 * parameter can reach the SMTP dialogue.  0 or -ERR_INVAL.
 */
int	 smtp_addr_check(const char *addr, struct err *e);

/*
 * Find the relay's queue id in the text of a final 250 reply (as in
 * smtp_result.text: code and enhanced status stripped).  Knows Postfix
 * ("Ok: queued as 4Xyz"), Exim ("OK id=1abc-..."), Sendmail ("u1234
 * Message accepted for delivery"), Gmail ("OK  1700000000 x17si - gsmtp"),
 * Microsoft ("... [InternalId=123, ...] Queued mail for delivery") and
 * "Ok <id>" (Amazon SES).  Writes "" when none is found.
 */
void	 smtp_queue_id(const char *text, char *out, size_t outsz);

/* "sent", "tempfail", ... for logs. */
const char *smtp_outcome_name(enum smtp_outcome);

/* 1 if a refusal's text says the relay does not relay for us (as
 * opposed to an unknown recipient, or a recipient's server quoted after
 * "Recipient address rejected").  strict: only words that say so
 * outright ("Relay access denied"), for a deferral. */
int	 smtp_refuses_relay(const char *text, int strict);

/* 1 if a refusal says our account's sending quota is used up (Microsoft
 * 365's SubmissionQuotaExceededException, Gmail's "Daily user sending
 * limit exceeded"): a 5xx, but every message would get it until the
 * provider's window resets. */
int	 smtp_quota_used_up(const char *text);

/* 1 if a refusal (or deferral) is about our envelope sender, not the
 * recipient, wherever it comes (Postfix checks the sender at RCPT TO):
 * x.1.7 or x.1.8, Exim's "Verification failed for <...>", or words such
 * as "Sender address rejected" or "Sender verify failed" (unless a
 * "Recipient address" comes before them: they quote what a recipient's
 * server said of us). */
int	 smtp_refuses_sender(const char *status, const char *text);

/* 1 if a refusal says we must authenticate (or use TLS) first: a 530,
 * 5.7.57, or words to that effect. */
int	 smtp_wants_auth(int code, const char *status, const char *text);

/* 1 if a refusal's text says the relay refuses this host (a DNS block
 * list, a reputation verdict), whatever the recipient.  strict: only
 * wording that cannot be about one recipient (for a reply to RCPT TO or
 * to the data). */
int	 smtp_refuses_host(const char *text, int strict);

/* 1 if a deferral is about the relay or us, not the recipient: a 421
 * (closing the session), a temporary refusal of this host, or a 4.3.x
 * but 4.3.4 (the relay's own mail system: "451 4.3.0 Temporary lookup
 * failure", "queue file write error", "452 4.3.1 Insufficient system
 * storage"), or of our envelope sender (smtp_refuses_sender()).
 * Every message would get the same. */
int	 smtp_held_off(const struct smtp_result *r);

#endif
