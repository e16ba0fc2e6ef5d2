/*
 * smtp — see smtp.h.
 *
 * One worker thread per connection, each with its own easy handle, so
 * libcurl keeps one connection per worker open across messages (a new
 * connection per message halves the throughput).  The multi interface
 * would put every connection on one thread; on a two-core machine that
 * thread cannot keep up with the relay (measured: 0.47x smtp-source with
 * the multi interface, 0.83x with one easy handle per thread).
 *
 * libcurl does not hand out SMTP reply text.  The debug callback sees every
 * command we send (CURLINFO_HEADER_OUT) and every reply line
 * (CURLINFO_HEADER_IN); from those we know which command the last reply
 * answered, which is what decides the outcome.  What libcurl 7.88.1
 * returns, checked against tests/tools/smtpd.py (SAMAIL_TEST_DEBUG=1):
 *   RCPT refused		55 CURLE_SEND_ERROR ("RCPT failed: 550")
 *   DATA command refused	55 CURLE_SEND_ERROR ("DATA failed: 554")
 *   final reply not 250	8 CURLE_WEIRD_SERVER_REPLY, no error text;
 *				the connection stays open and in step
 *   dropped mid-DATA		55 CURLE_SEND_ERROR ("Send failure: Broken
 *				pipe"), no reply after the 354
 *   dropped before the reply	56 CURLE_RECV_ERROR
 *   no reply to end of data	28 CURLE_OPERATION_TIMEDOUT ("server
 *				response timeout")
 *   AUTH refused		67 CURLE_LOGIN_DENIED
 * So the CURLcode alone cannot tell a 4xx from a 5xx, nor at which step:
 * the captured reply does.  After an error before the end of data
 * libcurl closes the connection ("SMTP done with bad status"), so the
 * next message on the handle starts a fresh one: the handle stays usable
 * without our help.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "log.h"
#include "smtp.h"
#include "xalloc.h"

#define DEF_CONNECT_TIMEOUT_MS	30000L
#define DEF_TIMEOUT_MS		300000L

/* The timeouts in force: the option's, or the default for 0. */
static long
timeout_ms(const struct smtp_opts *o)
{
	return o->timeout_ms > 0 ? o->timeout_ms : DEF_TIMEOUT_MS;
}

static long
connect_timeout_ms(const struct smtp_opts *o)
{
	return o->connect_timeout_ms > 0 ? o->connect_timeout_ms :
	    DEF_CONNECT_TIMEOUT_MS;
}
#define BUSY_RETRIES		3	/* tries while the relay says "busy" */
#define BUSY_BACKOFF_MS		250	/* doubled each try */
#define RELAY_ERR_MAX		768	/* why a relay could not be used: its
					   reply, libcurl's error and advice */

/* A reply being put together from its lines. */
struct reply {
	int	 code;
	char	 status[16];
	char	 text[SMTP_TEXT_MAX];
	size_t	 len;
};

/* The set-up command last sent (phase SMTP_PHASE_CONNECT). */
enum setup_cmd { CMD_NONE = 0, CMD_EHLO, CMD_STARTTLS, CMD_AUTH };

/* What one transfer (one message) saw on the wire. */
struct xfer {
	enum smtp_phase phase;	/* of the last command sent */
	enum setup_cmd cmd;	/* before MAIL FROM: which one */
	int	 ehlo;		/* an EHLO/HELO was answered on this transfer */
	int	 auth_ext;	/* ... and its reply offered AUTH: */
	char	 mechs[128];	/*     these mechanisms */
	int	 auth_odd;	/* ... only as "AUTH=" or "auth": unused */
	int	 noauth;	/* a username, and MAIL FROM sent without AUTH */
	int	 mail_sent;	/* MAIL FROM went out: setup was done */
	int	 quit;		/* QUIT sent: replies are not ours until the
				   next command */
	int	 quit_blind;	/* ... after a command that got no reply */
	int	 in_auth;	/* AUTH dialogue: keep lines out of the log */
	int	 open;		/* cur holds part of a multi-line reply */
	struct reply cur;
	int	 answered;	/* last holds the reply to the last command */
	enum smtp_phase last_phase;
	struct reply last;
};

struct run;

struct worker {
	struct run	*run;
	CURL		*h;
	pthread_t	 tid;
	int		 relay;		/* relay of the current transfer */
	int		 conn_relay;	/* relay of our open connection, -1 */
	int		 fresh;		/* the last transfer failed: new connection */
	int		 retired;
	int		 probe;		/* relay whose first connection this
					   worker is setting up, -1 */
	int		 back;		/* relay whose streak ended that this
					   worker is trying once more, -1 */
	struct xfer	 x;
	const char	*rd;		/* read callback: what is left to send */
	size_t		 rdleft;
	const struct smtp_job *job;	/* the job being sent */
	size_t		 dots;		/* dots libcurl may double in it */
	int		 end_ok;	/* job->before_end() said yes */
	int		 end_refused;	/* ... said no: the transfer dropped */
	char		 errbuf[CURL_ERROR_SIZE];
};

/* Shared by the workers of one smtp_run(). */
struct run {
	const struct smtp_opts *o;
	smtp_next_fn	*next;
	smtp_done_fn	*done;
	void		*arg;
	char		*urls[SMTP_MAX_RELAYS];
	atomic_int	 cur;		/* relay in use now */
	atomic_int	 live[SMTP_MAX_RELAYS];	/* workers connected to it */
	atomic_int	 down;		/* every relay refused: stop */
	atomic_int	 abort;		/* next_cb failed: stop */
	atomic_ulong	 taken;		/* jobs taken, for max_messages */
	pthread_mutex_t	 mu;		/* guards what follows */
	int64_t		 next_slot;	/* rate cap: next hand-over, ns */
	int		 rc;		/* first fatal error */
	struct err	 err;
	char		 relay_err[SMTP_MAX_RELAYS][RELAY_ERR_MAX];
	int		 relay_kind[SMTP_MAX_RELAYS];	/* FAIL_*, 0: not tried */
	atomic_int	 noauth_warned;	/* "offers no AUTH" said once */
	/*
	 * The first connection to each relay goes alone, at the start and
	 * on a failover alike: the other workers wait until the relay has
	 * taken its MAIL FROM (a 2xx: greeting, TLS, login and envelope
	 * sender went through), or that try is over (see probe_begin()).
	 * A wrong password or a relay that refuses us (a 4xx rate limit or
	 * a 5xx at MAIL FROM too) then costs one login or connection, not
	 * one per worker: Microsoft 365 and fail2ban lock an account, or
	 * block a host, after a few failed logins.
	 */
	atomic_int	 relay_ok[SMTP_MAX_RELAYS];	/* took a MAIL FROM */
	int		 probing[SMTP_MAX_RELAYS];	/* under mu */
	unsigned	 nfailed[SMTP_MAX_RELAYS];	/* under mu: relay_failed() */
	unsigned	 probe_nf[SMTP_MAX_RELAYS];	/* under mu: nfailed when
							   the try began */
	pthread_cond_t	 probe_cv;	/* with mu */
	/*
	 * Streaks and failures in time, for note_reply(), all under mu:
	 * failing[r] is the epoch of relay r's last failed connection
	 * (relay_failed(); 0 once it took a MAIL FROM again: atomic, for a
	 * look without mu), streak_from[r] the epoch when its current silent
	 * or held-off streak began.
	 */
	int		 silent[SMTP_MAX_RELAYS];	/* no reply, in a row */
	int		 held[SMTP_MAX_RELAYS];		/* held off, in a row */
	unsigned	 epoch;
	atomic_uint	 failing[SMTP_MAX_RELAYS];
	unsigned	 streak_from[SMTP_MAX_RELAYS];
	int		 back[SMTP_MAX_RELAYS];	/* under mu: BACK_* */
	atomic_int	 any_ended;	/* a streak has ended a relay (sticky):
					 * back_begin() needs mu only then */
};

/* A relay whose streak ended, gone back to (back_begin()): */
enum { BACK_NONE = 0, BACK_TRYING, BACK_FAILED };

/*
 * A relay that took the session and then stopped answering (a timeout or
 * a dropped connection with no reply) SILENT_SWITCH times in a row hands
 * over to the next relay, as one that refuses connections does.  Any
 * reply from it starts the count again.  The caller stops the run when
 * no relay is left to take over (sender.c).
 */
#define SILENT_SWITCH	3

/*
 * Likewise a relay that holds us off after it took the session: a 421,
 * a temporary refusal of this host, its own mail system failing (4.3.x)
 * for HELD_SWITCH messages in a row with none sent between (see
 * smtp_held_off()).  When no relay is left to take over, the result says
 * so (smtp_result.last_relay) and the caller stops the run.
 */
#define HELD_SWITCH	3

/*
 * Has relay's streak (silent, or holding us off) ended it: it handed over
 * to another relay, or none was left to take over.  When the one that
 * took over fails too, one worker goes back to it, not each (see
 * back_begin()).  A message it takes ends a held-off streak, any reply a
 * silent one, and any reply but one that goes on with it the try back.
 * mu held.
 */
static int
streak_ended(const struct run *run, int relay)
{
	return run->silent[relay] >= SILENT_SWITCH ||
	    run->held[relay] >= HELD_SWITCH;
}

/*
 * Could relay take over from one whose streak began at epoch since: its
 * streak has not ended it, and its connections have not failed since
 * (one that failed before may be back: it gets one more try).  mu held.
 */
static int
usable(struct run *run, int relay, unsigned since)
{
	unsigned f = atomic_load(&run->failing[relay]);

	return !streak_ended(run, relay) && (f == 0 || f <= since);
}

/* Count r's streaks for relay, hand over to the next usable relay when
 * one reaches its length, and set r->last_relay when none is usable.
 * back: r is a try back at relay after its streak ended. */
static void
note_reply(struct run *run, int relay, struct smtp_result *r, int back)
{
	int n = (int)run->o->nrelays, cur = relay, next, len = 0, max;
	int *streak = NULL, switched;
	const char *why;

	r->last_relay = 1;
	if (n < 2 || relay < 0 || relay >= n || relay >= SMTP_MAX_RELAYS)
		return;		/* one relay: no other to take over */
	/* Under mu: a streak's start and the look at the others are one
	 * step, as relay_failed() and a relay's return are. */
	pthread_mutex_lock(&run->mu);
	if (r->outcome == SMTP_SENT)
		run->held[relay] = 0;
	if (r->code > 0) {
		run->silent[relay] = 0;
		if (smtp_held_off(r))
			streak = &run->held[relay];
		why = "is refusing our mail for now";
		max = HELD_SWITCH;
	} else {
		if (r->outcome == SMTP_TEMPFAIL)
			streak = &run->silent[relay];
		why = "stopped answering";
		max = SILENT_SWITCH;
	}
	if (streak != NULL && (len = ++*streak) == 1)
		run->streak_from[relay] = run->epoch;
	if (len >= max)
		atomic_store(&run->any_ended, 1);
	/* A try back (back_begin()) answered as usual: its streak is
	 * over, whatever the reply was. */
	if (back && streak == NULL)
		run->held[relay] = run->silent[relay] = 0;
	for (next = (relay + 1) % n; next != relay; next = (next + 1) % n)
		if (usable(run, next, run->streak_from[relay]))
			break;
	/* The hand-over in the same step: no worker that finished a
	 * message after the streak's last starts another at relay. */
	switched = next != relay && len >= max &&
	    atomic_compare_exchange_strong(&run->cur, &cur, next);
	pthread_mutex_unlock(&run->mu);
	if (next == relay)
		return;
	r->last_relay = 0;
	if (switched)
		log_warnx("smtp: relay '%s' %s (%d messages in a row %s); "
		    "switching to relay '%s'", run->o->relays[relay], why,
		    len, r->code > 0 ? "deferred" : "got no reply",
		    run->o->relays[next]);
}

const char *
smtp_outcome_name(enum smtp_outcome o)
{
	switch (o) {
	case SMTP_SENT:		 return "sent";
	case SMTP_TEMPFAIL:	 return "tempfail";
	case SMTP_PERMFAIL:	 return "permfail";
	case SMTP_BAD_RECIPIENT: return "bad-recipient";
	case SMTP_RELAY_DOWN:	 return "relay-down";
	case SMTP_UNSENT:	 return "unsent";
	}
	return "unknown";
}

/* ---- input checks ------------------------------------------------------ */

int
smtp_addr_check(const char *addr, struct err *e)
{
	const char *at = NULL;
	size_t n;

	if (addr == NULL || *addr == '\0')
		return err_set(e, ERR_INVAL, "empty envelope address");
	n = strlen(addr);
	if (n > SMTP_ADDR_MAX)
		return err_set(e, ERR_INVAL, "envelope address longer than %d bytes",
		    SMTP_ADDR_MAX);
	for (const char *p = addr; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		/*
		 * CR/LF would end the RCPT line and start a command of the
		 * recipient's choosing; a space would start ESMTP parameters
		 * (NOTIFY=, ORCPT=); <> would close the path early.  Non-ASCII
		 * needs SMTPUTF8, which we do not negotiate: the address
		 * must be stored in ASCII (punycode domain).
		 */
		if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>')
			return err_set(e, ERR_INVAL,
			    "envelope address '%.*s' has a forbidden character "
			    "(0x%02x) at byte %zu", (int)(n > 80 ? 80 : n), addr,
			    c, (size_t)(p - addr));
		if (c == '@') {
			if (at != NULL)
				return err_set(e, ERR_INVAL,
				    "envelope address '%s' has more than one '@'",
				    addr);
			at = p;
		}
	}
	if (at == NULL || at == addr || at[1] == '\0')
		return err_set(e, ERR_INVAL,
		    "envelope address '%s' is not local@domain", addr);
	return 0;
}

/*
 * Lines must end in CRLF.  libcurl dot-stuffs only after CRLF, so with a
 * bare LF a line "." could end the data early at a relay that accepts LF
 * alone (SMTP smuggling); bare LF is also refused outright by recent
 * Postfix.  Catching it here turns a bug upstream into one clear failure.
 */
static int
msg_check(const char *d, size_t len, size_t *dots, struct err *e)
{
	const char *end, *p;

	*dots = 0;
	if (d == NULL || len == 0)
		return err_set(e, ERR_INVAL, "empty message");
	end = d + len;
	/* memchr, not a byte loop: this runs over every byte we send. */
	if ((p = memchr(d, '\0', len)) != NULL)
		return err_set(e, ERR_INVAL, "message has a NUL byte at offset "
		    "%zu", (size_t)(p - d));
	/* And the dots libcurl may double, at most: one that starts the
	 * data or a line (see perform()). */
	*dots = d[0] == '.';
	for (p = d; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++) {
		if (p == d || p[-1] != '\r')
			return err_set(e, ERR_INVAL, "message has a bare LF at "
			    "offset %zu", (size_t)(p - d));
		if (p + 1 < end && p[1] == '.')
			++*dots;
	}
	for (p = d; (p = memchr(p, '\r', (size_t)(end - p))) != NULL; p++)
		if (p + 1 == end || p[1] != '\n')
			return err_set(e, ERR_INVAL, "message has a bare CR at "
			    "offset %zu", (size_t)(p - d));
	return 0;
}

/* An EHLO name: a host name or an address literal, nothing else. */
static int
helo_check(const char *h, struct err *e)
{
	size_t n = strlen(h);

	if (n == 0 || n > 255)
		return err_set(e, ERR_CONFIG, "EHLO name must have 1..255 bytes");
	for (const char *p = h; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && strchr(".-[]:", *p) == NULL)
			return err_set(e, ERR_CONFIG,
			    "EHLO name '%s' may hold letters, digits, '.', '-' "
			    "or an [address literal] only", h);
	return 0;
}

/* ---- reply text -------------------------------------------------------- */

/*
 * Append relay text to a one-line, printable-ASCII, capped string: it ends
 * up in logs and the database, so no control characters (a CR/LF there
 * could forge log lines) and no bytes that are not UTF-8.
 */
static void
text_add(char *dst, size_t *len, size_t cap, const char *s, size_t n)
{
	for (size_t i = 0; i < n && *len + 1 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			c = ' ';
		else if (c >= 0x80)
			c = '?';
		if (c == ' ' && (*len == 0 || dst[*len - 1] == ' '))
			continue;
		dst[(*len)++] = (char)c;
	}
	while (*len > 0 && dst[*len - 1] == ' ')
		(*len)--;
	dst[*len] = '\0';
}

/* Length of an enhanced status code "c.sss.ddd" at s, 0 if none. */
static size_t
status_len(const char *s, size_t n, int cls)
{
	size_t i = 0, d;

	if (n < 5 || s[0] != '0' + cls || s[1] != '.')
		return 0;
	i = 2;
	for (int part = 0; part < 2; part++) {
		for (d = 0; i < n && isdigit((unsigned char)s[i]) && d < 3; i++)
			d++;
		if (d == 0)
			return 0;
		if (part == 0) {
			if (i >= n || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < n && s[i] != ' ' && s[i] != '\r' && s[i] != '\n')
		return 0;
	return i;
}

/* One reply line from the relay: "250-..." or "250 ...". */
static void
reply_line(struct xfer *x, const char *s, size_t n)
{
	int code;
	char sep;
	size_t sl;

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	if (n < 3 || !isdigit((unsigned char)s[0]) ||
	    !isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2]))
		return;
	code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	sep = n > 3 ? s[3] : ' ';
	s += n > 3 ? 4 : 3;
	n -= n > 3 ? 4 : 3;
	if (!x->open) {
		memset(&x->cur, 0, sizeof(x->cur));
		x->cur.code = code;
		x->open = 1;
	}
	if ((sl = status_len(s, n, code / 100)) > 0) {
		if (x->cur.status[0] == '\0' && sl < sizeof(x->cur.status)) {
			memcpy(x->cur.status, s, sl);
			x->cur.status[sl] = '\0';
		}
		s += sl;
		n -= sl;
	}
	/* The lines joined with a space: text_add() trims a trailing one,
	 * so it goes in only before more text (a line that had no status
	 * code left none of its own: "450-Mailbox busy,", "450 try
	 * again later"). */
	if (x->cur.len > 0 && n > 0 && x->cur.len + 1 < sizeof(x->cur.text))
		x->cur.text[x->cur.len++] = ' ';
	text_add(x->cur.text, &x->cur.len, sizeof(x->cur.text), s, n);
	if (sep == '-')
		return;
	x->open = 0;
	if (x->phase == SMTP_PHASE_DATA && x->cur.code == 354) {
		/* Go ahead: the next reply is the one to the end of data. */
		x->phase = SMTP_PHASE_CONTENT;
		x->answered = 0;
		return;
	}
	x->last = x->cur;
	x->last_phase = x->phase;
	x->answered = 1;
}

static int
starts(const char *s, size_t n, const char *word)
{
	size_t w = strlen(word);

	return n >= w && strncasecmp(s, word, w) == 0;
}

/* A line of the reply to EHLO: note the AUTH mechanisms it offers. */
static void
ehlo_line(struct xfer *x, const char *s, size_t n)
{
	size_t len;

	if (n < 4 || strncmp(s, "250", 3) != 0)
		return;
	x->ehlo = 1;
	s += 4;
	n -= 4;
	if (x->auth_ext || !starts(s, n, "AUTH") || n < 5 ||
	    (s[4] != ' ' && s[4] != '='))
		return;
	/* libcurl logs in only after a line "AUTH PLAIN LOGIN", so
	 * written: the old "AUTH=PLAIN" and other cases it passes over,
	 * and sends without a login (noted, to say so). */
	if (memcmp(s, "AUTH ", 5) != 0) {
		x->auth_odd = 1;
		return;
	}
	x->auth_ext = 1;
	len = 0;
	text_add(x->mechs, &len, sizeof(x->mechs), s + 5, n - 5);
}

/* This worker's first try of a relay is over: let the others go (see
 * struct run and probe_begin()).  Never called with run->mu held. */
static void
probe_end(struct worker *w)
{
	struct run *run = w->run;

	if (w->probe < 0)
		return;
	pthread_mutex_lock(&run->mu);
	run->probing[w->probe] = 0;
	w->probe = -1;
	pthread_cond_broadcast(&run->probe_cv);
	pthread_mutex_unlock(&run->mu);
}

/* A command we sent (one line). */
static void
command(struct worker *w, const char *s, size_t n)
{
	struct xfer *x = &w->x;
	struct run *run = w->run;

	if (starts(s, n, "QUIT")) {
		/*
		 * libcurl closing a connection: after a failure (keep the
		 * reply that failed) or an old one being pruned.  Its 221
		 * is not ours; the next command is.
		 */
		x->quit = 1;
		x->quit_blind = !x->answered;
		return;
	}
	x->quit = 0;
	x->answered = 0;
	x->open = 0;
	if (starts(s, n, "MAIL ")) {
		x->phase = SMTP_PHASE_MAIL;
		x->mail_sent = 1;
		x->in_auth = 0;
		/* libcurl skips AUTH when the relay does not offer it and
		 * goes on (see send_job()). */
		x->noauth = run->o->username != NULL && x->ehlo &&
		    !x->auth_ext;
		/* The connection is set up: count it for its relay. */
		if (w->conn_relay != w->relay) {
			if (w->conn_relay >= 0)
				atomic_fetch_sub(&run->live[w->conn_relay], 1);
			w->conn_relay = w->relay;
			atomic_fetch_add(&run->live[w->relay], 1);
		}
	} else if (starts(s, n, "RCPT "))
		x->phase = SMTP_PHASE_RCPT;
	else if (starts(s, n, "DATA"))
		x->phase = SMTP_PHASE_DATA;
	else if (!x->mail_sent) {
		x->phase = SMTP_PHASE_CONNECT;
		if (starts(s, n, "AUTH")) {
			x->in_auth = 1;
			x->cmd = CMD_AUTH;
		} else if (starts(s, n, "EHLO") || starts(s, n, "HELO")) {
			x->in_auth = 0;
			x->cmd = CMD_EHLO;
			x->auth_ext = x->auth_odd = 0;
			x->mechs[0] = '\0';
		} else if (starts(s, n, "STARTTLS")) {
			x->in_auth = 0;
			x->cmd = CMD_STARTTLS;
		}
	}
}

static int
debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *p)
{
	struct worker *w = p;

	(void)h;
	switch (type) {
	case CURLINFO_HEADER_OUT:
		command(w, data, size);
		if (log_verbosity() >= 2) {
			int n = (int)(size > 200 ? 200 : size);

			while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r'))
				n--;
			/* AUTH lines carry the credentials. */
			log_debug("smtp %s > %.*s", w->run->urls[w->relay],
			    w->x.in_auth ? 4 : n, w->x.in_auth ? "AUTH" : data);
		}
		break;
	case CURLINFO_HEADER_IN:
		if (w->x.quit)
			break;
		if (log_verbosity() >= 2) {
			char line[SMTP_TEXT_MAX];
			size_t len = 0;

			text_add(line, &len, sizeof(line), data, size);
			log_debug("smtp %s < %s", w->run->urls[w->relay], line);
		}
		if (w->x.cmd == CMD_EHLO && !w->x.mail_sent)
			ehlo_line(&w->x, data, size);
		reply_line(&w->x, data, size);
		/* Our MAIL FROM taken: the relay is usable, and the others
		 * may connect to it too (struct run). */
		if (w->x.phase == SMTP_PHASE_MAIL && w->x.answered &&
		    w->x.last.code / 100 == 2) {
			struct run *run = w->run;

			if (!atomic_load(&run->relay_ok[w->relay])) {
				atomic_store(&run->relay_ok[w->relay], 1);
				probe_end(w);
			}
			/* Back after a failure: it may take over again,
			 * and a new outage is told again. */
			if (atomic_load(&run->failing[w->relay])) {
				pthread_mutex_lock(&run->mu);
				atomic_store(&run->failing[w->relay], 0);
				run->relay_err[w->relay][0] = '\0';
				pthread_mutex_unlock(&run->mu);
			}
		}
		break;
	default:
		break;
	}
	return 0;
}

/*
 * libcurl closes a connection after a failure with QUIT and waits for the
 * 221, up to the whole per-reply timeout again.  After a command that got
 * no reply (a timeout) the relay will not answer that either: each stalled
 * message would cost twice [smtp] timeout.  libcurl calls this while it
 * waits (at least once a second): end the wait, and the connection.
 */
static int
progress_cb(void *p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
    curl_off_t ulnow)
{
	const struct worker *w = p;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return w->x.quit && w->x.quit_blind;
}

/* ---- queue id ---------------------------------------------------------- */

static int
idchar(int c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '@';
}

/* Copy the id token at s; 0 if there is none or it does not fit. */
static int
take_token(const char *s, char *out, size_t outsz)
{
	size_t n = 0;

	while (idchar((unsigned char)s[n]))
		n++;
	while (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n >= outsz)
		return 0;
	memcpy(out, s, n);
	out[n] = '\0';
	return 1;
}

static const char *
find_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (const char *p = hay; *p != '\0'; p++)
		if (strncasecmp(p, needle, n) == 0)
			return p;
	return NULL;
}

void
smtp_queue_id(const char *text, char *out, size_t outsz)
{
	const char *p, *q;
	size_t n;

	if (outsz == 0)
		return;
	out[0] = '\0';
	if (text == NULL)
		return;
	/* Postfix, SendGrid, many others: "Ok: queued as 4Xyz" */
	if ((p = find_ci(text, "queued as ")) != NULL &&
	    take_token(p + 10, out, outsz))
		return;
	/* Microsoft: "<msgid> [InternalId=123, Hostname=...] Queued mail" */
	if ((p = find_ci(text, "InternalId=")) != NULL &&
	    take_token(p + 11, out, outsz))
		return;
	/* Exim: "OK id=1abc23-000456-AB" */
	for (p = text; (p = find_ci(p, "id=")) != NULL; p += 3)
		if ((p == text || p[-1] == ' ') && take_token(p + 3, out, outsz))
			return;
	/* Gmail: "OK  1700000000 x17si1234567pgl.53 - gsmtp" */
	n = strlen(text);
	if (n > 8 && strcasecmp(text + n - 8, " - gsmtp") == 0) {
		q = text + n - 8;
		for (p = q; p > text && p[-1] != ' '; p--)
			;
		if (p < q && (size_t)(q - p) < outsz) {
			memcpy(out, p, (size_t)(q - p));
			out[q - p] = '\0';
			return;
		}
	}
	/* Sendmail: "u1234567 Message accepted for delivery" */
	if ((p = find_ci(text, " Message accepted for delivery")) != NULL) {
		for (q = p; q > text && q[-1] != ' '; q--)
			;
		if (take_token(q, out, outsz) && strlen(out) == (size_t)(p - q))
			return;
		out[0] = '\0';
	}
	/* Amazon SES: "Ok 0100018a...-000000" */
	if (strncasecmp(text, "Ok ", 3) == 0 && strchr(text + 3, ' ') == NULL &&
	    strlen(text + 3) >= 8 && take_token(text + 3, out, outsz) &&
	    strlen(out) == strlen(text + 3))
		return;
	out[0] = '\0';
}

/* ---- outcome ----------------------------------------------------------- */

static void
result_text(struct smtp_result *r, const char *s)
{
	size_t len = 0;

	text_add(r->text, &len, sizeof(r->text), s, strlen(s));
}

/* 5.1.x says the address is wrong, except 5.1.7/5.1.8 (the sender's). */
static int
bad_mailbox(const char *status)
{
	return strncmp(status, "5.1.", 4) == 0 &&
	    strcmp(status, "5.1.7") != 0 && strcmp(status, "5.1.8") != 0;
}

/* 1 if text holds one of the phrases, case ignored. */
static int
has_any(const char *text, const char *const *phrases)
{
	for (; *phrases != NULL; phrases++)
		if (strcasestr(text, *phrases) != NULL)
			return 1;
	return 0;
}

/* Where the first of the phrases begins in text, case ignored; NULL if
 * none is there. */
static const char *
first_of(const char *text, const char *const *phrases)
{
	const char *first = NULL, *p;

	for (; *phrases != NULL; phrases++)
		if ((p = strcasestr(text, *phrases)) != NULL &&
		    (first == NULL || p < first))
			first = p;
	return first;
}

/*
 * 1 if the reply says what it says of the recipient before the words at
 * p: Postfix's "<...>: Recipient address rejected: undeliverable
 * address: host mx.example.com[192.0.2.1] said: 554 5.7.1 ...: Relay
 * access denied" (reject_unverified_recipient quoting the recipient's own
 * server), as opposed to the words coming first and quoting something
 * about a recipient (Exim's sender callout: "Verification failed for
 * <bounces@...> ... Response: 550 5.1.1 <bounces@...>: Recipient address
 * rejected: User unknown ... Sender verify failed").
 */
static int
recipient_first(const char *text, const char *p)
{
	const char *r = strcasestr(text, "recipient address");

	return r != NULL && r < p;
}

/* What relays without enhanced status codes (Exim's default, older
 * servers) say of an address that does not exist. */
static int
unknown_user_text(const char *text)
{
	static const char *const phrases[] = {
		"user unknown", "unknown user", "no such user", "no such mailbox",
		"no such recipient", "mailbox unavailable", "mailbox not found",
		"mailbox does not exist", "does not exist", "doesn't exist",
		"unknown recipient", "recipient unknown", "invalid recipient",
		"invalid mailbox", "no mailbox", "unrouteable address",
		"unknown local part", "account disabled", "mailbox disabled",
		/* Yahoo: "554 delivery error: dd This user doesn't have a
		 * yahoo.com account" */
		"user doesn't have a", "user does not have a",
		NULL,
	};

	return has_any(text, phrases);
}

int
smtp_refuses_relay(const char *text, int strict)
{
	static const char *const phrases[] = {
		"relay", "not permitted", "administrative prohibition",
		"authentication required", "authentication is required",
		"must authenticate", "sender not authenticated", NULL,
	};
	/* Only what says relaying itself was denied: a deferral's text
	 * may name a host called "relay" or say "not permitted" of other
	 * things. */
	static const char *const denied[] = {
		"relay access denied", "relaying denied", "relay denied",
		"relay not permitted", "relaying not permitted",
		"relaying not allowed", "not permitted to relay",
		"unable to relay", "do not relay", "does not relay", NULL,
	};

	const char *p = first_of(text, strict ? denied : phrases);

	/* Not the relay's own words when they only quote what the
	 * recipient's server said ("Recipient address rejected:
	 * undeliverable address: host ... said: 554 5.7.1 ...: Relay access
	 * denied"): that domain's trouble. */
	return p != NULL && !recipient_first(text, p) &&
	    !unknown_user_text(text);
}

int
smtp_refuses_sender(const char *status, const char *text)
{
	/*
	 * Postfix checks the sender at RCPT TO by default (smtpd_delay_reject):
	 * "550 5.1.0 <bounces@...>: Sender address rejected: User unknown in
	 * local recipient table", "450 4.1.8 ...: Sender address rejected:
	 * Domain not found"; Exim's sender verification ("550-Verification
	 * failed for <...>", "550 Sender verify failed"); Sendmail's "Domain
	 * of sender address ... does not exist".  Every message gets it.
	 */
	static const char *const phrases[] = {
		"sender address", "sender domain", "sender verif", NULL,
	};
	/* Exim's first lines of a failed sender verification (smtp_in.c),
	 * whatever the callout's response quoted after them. */
	static const char *const exim[] = {
		"verification failed for <",
		"callback setup failed while verifying <",
		"postmaster verification failed while checking <", NULL,
	};
	const char *p;

	/* RFC 3463: x.1.7 bad sender's mailbox syntax, x.1.8 bad sender's
	 * system address. */
	if (status[0] != '\0' && (strcmp(status + 1, ".1.7") == 0 ||
	    strcmp(status + 1, ".1.8") == 0))
		return 1;
	for (size_t i = 0; exim[i] != NULL; i++)
		if (strncasecmp(text, exim[i], strlen(exim[i])) == 0)
			return 1;
	/* Not when the words only quote what a recipient's server said
	 * ("Recipient address rejected: ... said: ... Sender address
	 * rejected"): then it is about that recipient. */
	return (p = first_of(text, phrases)) != NULL &&
	    !recipient_first(text, p);
}

int
smtp_wants_auth(int code, const char *status, const char *text)
{
	static const char *const phrases[] = {
		"authentication required", "authentication is required",
		"must authenticate", "not authenticated", "authenticate first",
		"auth required", "please authenticate", "starttls", NULL,
	};

	/* 530 is "authentication required" (RFC 4954); 5.7.57 is what
	 * Microsoft 365 says on a submission port without AUTH. */
	return code == 530 || strcmp(status, "5.7.57") == 0 ||
	    has_any(text, phrases);
}

int
smtp_refuses_host(const char *text, int strict)
{
	/*
	 * A DNS block list (Postfix's reject_rbl_client: "Client host
	 * [192.0.2.1] blocked using zen.spamhaus.org"), a provider's own
	 * list (Microsoft's "S3150", Gmail's "unusual rate of unsolicited
	 * mail") or a sender reputation verdict: the same for every
	 * message from this host.
	 */
	static const char *const phrases[] = {
		"client host", "blocked using", "spamhaus", "spamcop",
		"unsolicited mail originating from your ip", "s3140", "s3150",
		NULL,
	};
	/* Words that also come in a refusal of one recipient ("sender is
	 * on the recipient's blacklist"): about us only when nothing but
	 * the host can be meant (MAIL FROM), or in a streak. */
	static const char *const loose[] = {
		"block list", "blocklist", "blacklist", "reputation", NULL,
	};

	return has_any(text, phrases) || (!strict && has_any(text, loose));
}

/*
 * A limit on what this host sends, not on the recipient: Postfix's anvil
 * ("450 4.7.1 Error: too many recipients from [192.0.2.1]" at RCPT, "too
 * much mail from"), Amazon SES ("454 Throttling failure: Maximum sending
 * rate exceeded.", "Daily message quota exceeded."), a submission quota.
 * Exchange Online throttling a sending IP ("451 4.7.500 Server busy.
 * Please try again later from [192.0.2.1]. (S77714)"), a server saying
 * it is busy (4.4.5: Sendmail's "452 4.4.5 Insufficient disk space; try
 * again later"), too many recipients (4.5.3: with one a message, a limit
 * of the session or of this host, not of the message).
 * It says so to every message until its window is over.  Not a
 * recipient's (4.2.x: "4.2.2 Quota exceeded" of a mailbox, Gmail's "4.2.1
 * ... receiving mail at a rate").
 */
static int
throttled(const struct smtp_result *r)
{
	static const char *const phrases[] = {
		"too many recipients from", "too much mail from",
		"too many messages from", "too many requests from",
		"throttling failure", "sending rate exceeded",
		"sending quota", "submission quota", "message quota exceeded",
		"server busy", "server is busy",
		NULL,
	};

	return strcmp(r->status, "4.4.5") == 0 ||
	    strcmp(r->status, "4.5.3") == 0 ||
	    (strncmp(r->status, "4.2.", 4) != 0 && has_any(r->text, phrases));
}

int
smtp_quota_used_up(const char *text)
{
	/*
	 * A provider's sending quota for our account, said permanently
	 * although it resets the next day: Microsoft 365's "554 5.2.0
	 * STOREDRV.Submission.Exception:SubmissionQuotaExceededException"
	 * (and its "RecipientRateLimitExceeded"), Gmail and Google
	 * Workspace's "550 5.4.5 Daily user sending limit exceeded" / "Daily
	 * sending quota exceeded".  Not a recipient's mailbox quota ("552
	 * 5.2.2 Quota exceeded"): only words about sending.
	 */
	static const char *const phrases[] = {
		"submissionquotaexceeded", "recipientratelimitexceeded",
		"sending quota", "sending limit", "daily message quota",
		"message submission rate", NULL,
	};

	return has_any(text, phrases);
}

int
smtp_held_off(const struct smtp_result *r)
{
	if (r->outcome != SMTP_TEMPFAIL || r->code / 100 != 4)
		return 0;
	if (r->code == 421)
		return 1;
	/*
	 * Greylisting (postgrey, "Client host rejected: Greylisted" when it
	 * runs for the client; milter-greylist, "Greylisting in action")
	 * defers each new message once, and takes it when it comes again:
	 * every message gets it, and that is no reason to stop (3 a run
	 * would get through).
	 */
	if (strcasestr(r->text, "greylist") != NULL ||
	    strcasestr(r->text, "graylist") != NULL)
		return 0;
	/* 4.3.4 "message too big for system" is that message's own. */
	return (strncmp(r->status, "4.3.", 4) == 0 &&
	    strcmp(r->status, "4.3.4") != 0) ||
	    smtp_refuses_host(r->text, 0) || throttled(r) ||
	    smtp_refuses_sender(r->status, r->text);
}

/*
 * Decide a message's fate from the last reply to the last command we
 * sent.  Only called once MAIL FROM went out.
 */
static void
classify(const struct worker *w, CURLcode cc, struct smtp_result *r)
{
	const struct xfer *x = &w->x;

	r->phase = x->phase;
	r->relay = w->relay;
	if (x->answered) {
		r->code = x->last.code;
		memcpy(r->status, x->last.status, sizeof(r->status));
		memcpy(r->text, x->last.text, sizeof(r->text));
	}
	/*
	 * The relay's 250 to the end of data is what makes a message sent,
	 * whatever libcurl did afterwards: reporting it otherwise would send
	 * it twice.
	 */
	if (x->phase == SMTP_PHASE_CONTENT && x->answered && r->code == 250) {
		r->outcome = SMTP_SENT;
		smtp_queue_id(r->text, r->queue_id, sizeof(r->queue_id));
		return;
	}
	if (cc == CURLE_OK) {
		/* libcurl saw the end of data accepted; trust its code. */
		long code = 0;

		curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &code);
		r->outcome = SMTP_SENT;
		r->code = (int)code;
		return;
	}
	if (!x->answered || r->code < 400) {
		/* Connection lost or timed out before the relay answered. */
		r->outcome = SMTP_TEMPFAIL;
		r->code = x->answered ? r->code : 0;
		if (!x->answered) {
			char why[SMTP_TEXT_MAX];
			const char *ce = w->errbuf[0] != '\0' ? w->errbuf :
			    curl_easy_strerror(cc);

			r->status[0] = '\0';
			/*
			 * The data went out whole and no reply came: the relay
			 * may have queued it.  Say so, so that an admin who
			 * finds it twice knows why (RFC 5321 4.1.1.4: a retry
			 * is right; it carries the same Message-ID).
			 */
			if (x->phase == SMTP_PHASE_CONTENT && w->rdleft == 0 &&
			    cc != CURLE_SEND_ERROR) {
				snprintf(why, sizeof(why), "no reply to the end "
				    "of the data (%s): the relay may have taken "
				    "it; it is sent again with the same "
				    "Message-ID", ce);
				ce = why;
			}
			result_text(r, ce);
		}
		return;
	}
	if (r->code < 500) {
		r->outcome = SMTP_TEMPFAIL;
		return;
	}
	r->outcome = SMTP_PERMFAIL;
	/* About our envelope sender, not the recipient (Postfix's "550
	 * 5.1.0 <bounces@...>: Sender address rejected: User unknown"). */
	if (smtp_refuses_sender(r->status, r->text))
		return;
	if ((x->phase == SMTP_PHASE_RCPT || x->phase == SMTP_PHASE_CONTENT) &&
	    bad_mailbox(r->status))
		r->outcome = SMTP_BAD_RECIPIENT;
	else if (x->phase == SMTP_PHASE_RCPT && r->code >= 550 &&
	    r->code <= 554 && r->status[0] == '\0' &&
	    unknown_user_text(r->text))
		/* No enhanced code: only the words say the address is dead
		 * ("550 relay not permitted" must not bounce anybody). */
		r->outcome = SMTP_BAD_RECIPIENT;
}

/* ---- rate cap ---------------------------------------------------------- */

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
stopping(struct run *run)
{
	return atomic_load(&run->down) || atomic_load(&run->abort) ||
	    (run->o->stop != NULL && atomic_load(run->o->stop));
}

/* Sleep ms, waking early (returning 1) when the run is stopping. */
static int
nap(struct run *run, int64_t ns)
{
	int64_t end = now_ns() + ns, left;
	struct timespec ts;

	while ((left = end - now_ns()) > 0) {
		if (stopping(run))
			return 1;
		if (left > 100000000)
			left = 100000000;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left;
		nanosleep(&ts, NULL);
	}
	return stopping(run);
}

/*
 * Wait for this hand-over's slot.  Slots are spaced 60/rate seconds apart
 * across all workers and never accumulate (a slow stretch earns no burst),
 * so no 60-second window holds more than rate_per_minute hand-overs.
 * Returns 1 if the run stopped while waiting (the slot is simply lost).
 */
static int
rate_wait(struct run *run)
{
	int64_t interval, slot, now;

	if (run->o->rate_per_minute == 0)
		return 0;
	interval = (int64_t)60 * 1000000000 / run->o->rate_per_minute;
	pthread_mutex_lock(&run->mu);
	now = now_ns();
	slot = run->next_slot > now ? run->next_slot : now;
	run->next_slot = slot + interval;
	pthread_mutex_unlock(&run->mu);
	return slot > now ? nap(run, slot - now) : stopping(run);
}

/* ---- one message ------------------------------------------------------- */

/* The bytes held back until job->before_end() has said yes. */
#define END_HELD	2

static size_t
read_cb(char *buf, size_t size, size_t nitems, void *p)
{
	struct worker *w = p;
	size_t n = size * nitems;

	if (w->job->before_end != NULL && !w->end_ok) {
		if (w->rdleft > END_HELD) {
			/* All but the last bytes now; libcurl sends them and
			 * comes back for the rest (it cannot end the data
			 * before: see perform()). */
			if (n > w->rdleft - END_HELD)
				n = w->rdleft - END_HELD;
			memcpy(buf, w->rd, n);
			w->rd += n;
			w->rdleft -= n;
			return n;
		}
		if (w->job->before_end(w->job) < 0) {
			w->end_refused = 1;
			return CURL_READFUNC_ABORT;
		}
		w->end_ok = 1;
	}
	if (n > w->rdleft)
		n = w->rdleft;
	memcpy(buf, w->rd, n);
	w->rd += n;
	w->rdleft -= n;
	return n;
}

static CURLcode
perform(struct worker *w, int relay, const struct smtp_job *job)
{
	struct curl_slist *rcpt = NULL;
	CURLcode cc;

	memset(&w->x, 0, sizeof(w->x));
	w->x.phase = SMTP_PHASE_CONNECT;
	w->errbuf[0] = '\0';
	w->relay = relay;
	w->rd = job->data;
	w->rdleft = job->len;
	w->job = job;
	w->end_ok = w->end_refused = 0;
	if ((rcpt = curl_slist_append(NULL, job->rcpt)) == NULL)
		return CURLE_OUT_OF_MEMORY;
	if ((cc = curl_easy_setopt(w->h, CURLOPT_URL, w->run->urls[relay])) ||
	    (cc = curl_easy_setopt(w->h, CURLOPT_MAIL_FROM,
	    job->mail_from != NULL ? job->mail_from :
	    w->run->o->envelope_from)) ||
	    (cc = curl_easy_setopt(w->h, CURLOPT_MAIL_RCPT, rcpt)) ||
	    /*
	     * The size counts the dots libcurl may double (msg_check()):
	     * libcurl 7.x ends the data as soon as the bytes it wrote, its
	     * doubled dots among them, equal this size, and with the bare
	     * length that can come before the last bytes were read (a cut
	     * message; and with before_end(), a message ended before it was
	     * asked).  Counted so, the size is reached at the very end or,
	     * if libcurl doubled fewer, never (the data ends when read_cb()
	     * has nothing left).  SIZE= in MAIL FROM is this, a few bytes
	     * over RFC 1870's count at most.
	     */
	    (cc = curl_easy_setopt(w->h, CURLOPT_INFILESIZE_LARGE,
	    (curl_off_t)(job->len + w->dots))))
		goto out;
	/* After a failure (a timeout, a reply out of step) the connection
	 * may still be cached: never trust it with another message. */
	if ((cc = curl_easy_setopt(w->h, CURLOPT_FRESH_CONNECT,
	    w->fresh ? 1L : 0L)))
		goto out;
	cc = curl_easy_perform(w->h);
	w->fresh = cc != CURLE_OK;
	/*
	 * No reply to the end of the data: libcurl keeps the connection
	 * cached, and the next transfer or curl_easy_cleanup() would close
	 * it with a QUIT and wait for the 221 a whole timeout.  The relay
	 * will not answer: cut the connection, so the QUIT fails at once.
	 */
	if (cc != CURLE_OK && !w->x.answered) {
		curl_socket_t fd = CURL_SOCKET_BAD;

		if (curl_easy_getinfo(w->h, CURLINFO_ACTIVESOCKET, &fd) ==
		    CURLE_OK && fd != CURL_SOCKET_BAD)
			shutdown(fd, SHUT_RDWR);
	}
	if (log_verbosity() >= 2)
		log_debug("smtp %s: curl result %d (%s)", w->run->urls[relay],
		    (int)cc, w->errbuf[0] != '\0' ? w->errbuf : "ok");
out:
	curl_easy_setopt(w->h, CURLOPT_MAIL_RCPT, NULL);
	curl_slist_free_all(rcpt);
	/* On any error libcurl closed the connection. */
	if (cc != CURLE_OK && w->conn_relay >= 0) {
		atomic_fetch_sub(&w->run->live[w->conn_relay], 1);
		w->conn_relay = -1;
	}
	return cc;
}

/* The host of a relay URL, as libcurl reads it (an IPv6 address without
 * its brackets); "" if it has none. */
static void
url_host(const char *url, char *out, size_t n)
{
	CURLU *u = curl_url();
	char *host = NULL;
	size_t len;

	out[0] = '\0';
	if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		len = strlen(host);
		if (len >= 2 && host[0] == '[' && host[len - 1] == ']')
			snprintf(out, n, "%.*s", (int)(len - 2), host + 1);
		else
			snprintf(out, n, "%s", host);
	}
	curl_free(host);
	curl_url_cleanup(u);
}

/*
 * Why a relay could not be used, for the summary (smtp_run): FAIL_CONNECT
 * it is down or refuses us (69), FAIL_TLS its TLS cannot be trusted or
 * spoken (69: the relay's side to fix, or ca_file), FAIL_SETUP our
 * set-up does not fit it (78: login, mechanisms, STARTTLS required),
 * FAIL_HELD_MAIL / FAIL_HELD a 4xx to MAIL FROM / to STARTTLS or AUTH
 * (75: it is up and holding us off for now); a 4xx to MAIL FROM about our
 * envelope sender (Sendmail's "451 4.1.8 Domain of sender address ...
 * does not resolve") is FAIL_HELD_SENDER, one saying its mail system is
 * failing (4.3.x: Postfix's "452 4.3.1 Insufficient system storage")
 * FAIL_HELD_SYSTEM: not a rate limit either.
 */
enum fail_kind {
	FAIL_NONE = 0, FAIL_CONNECT, FAIL_TLS, FAIL_SETUP, FAIL_HELD_MAIL,
	FAIL_HELD_SENDER, FAIL_HELD_SYSTEM, FAIL_HELD,
};

/* The relay's error in words that say what went wrong and what to do;
 * returns its kind.  The caller makes it one printable line (it quotes
 * the relay's reply and libcurl's error). */
static enum fail_kind
why_failed(const struct worker *w, CURLcode cc, char *why, size_t sz)
{
	const struct xfer *x = &w->x;
	const struct smtp_opts *o = w->run->o;
	const char *user = o->username != NULL ? o->username : "";
	char reply[SMTP_TEXT_MAX], host[256], ce[CURL_ERROR_SIZE];
	int code = x->answered ? x->last.code : 0;
	size_t n;

	snprintf(ce, sizeof(ce), "%s", w->errbuf[0] != '\0' ? w->errbuf :
	    curl_easy_strerror(cc));
	for (n = strlen(ce); n > 0 && (ce[n - 1] == ' ' || ce[n - 1] == '\n'); )
		ce[--n] = '\0';

	reply[0] = '\0';
	if (code >= 400)
		snprintf(reply, sizeof(reply), "%d %s%s%s", code,
		    x->last.status, x->last.status[0] ? " " : "", x->last.text);
	if (code >= 400 && x->phase == SMTP_PHASE_CONNECT &&
	    x->cmd == CMD_STARTTLS) {
		/* Postfix's "454 4.7.0 TLS not available due to temporary
		 * reason": its certificate or key file is unreadable. */
		snprintf(why, sz, "%s STARTTLS (%s), and TLS is required "
		    "(starttls = required, or a username): nothing was sent "
		    "in clear%s", code < 500 ? "cannot do" : "refused", reply,
		    code < 500 ? "" : "; the relay's TLS set-up needs fixing");
		return code < 500 ? FAIL_HELD : FAIL_TLS;
	}
	if (code >= 400 && x->phase == SMTP_PHASE_CONNECT &&
	    x->cmd == CMD_AUTH) {
		/* "454 4.7.0 Temporary authentication failure" (its SASL
		 * back end is down) is for later; 535 5.7.8, 534 5.7.9
		 * ("application-specific password required") are ours. */
		if (code < 500) {
			snprintf(why, sz, "cannot log in as '%s' for now (%s)",
			    user, reply);
			return FAIL_HELD;
		}
		snprintf(why, sz, "refused the login of '%s' (%s): check "
		    "[smtp] username and the password in %s", user, reply,
		    o->password_source != NULL ? o->password_source :
		    "the configuration");
		return FAIL_SETUP;
	}
	switch (cc) {
	case CURLE_LOGIN_DENIED:
	case CURLE_AUTH_ERROR:
		/* No reply to refuse us: libcurl found no mechanism to use. */
		if (x->auth_ext)
			snprintf(why, sz, "offers no AUTH mechanism samail can "
			    "use to log in as '%s' (it offers %s; samail uses "
			    "PLAIN or LOGIN, over TLS): use the relay's port "
			    "for password logins (submission, 587)", user,
			    x->mechs[0] ? x->mechs : "none");
		else
			snprintf(why, sz, "cannot log in as '%s' (%s)", user, ce);
		return FAIL_SETUP;
	case CURLE_USE_SSL_FAILED:
		snprintf(why, sz, "does not offer STARTTLS, which [smtp] "
		    "starttls = required (or a username) insists on: use the "
		    "provider's submission port, or smtps:// (%s)", ce);
		return FAIL_SETUP;
	case CURLE_SSL_CACERT_BADFILE:
		if (o->cafile != NULL)
			snprintf(why, sz, "cannot use [smtp] ca_file '%s' (%s)",
			    o->cafile, ce);
		else
			snprintf(why, sz, "cannot read this system's CA "
			    "certificates (%s): install the ca-certificates "
			    "package, or name the relay's CA with [smtp] ca_file",
			    ce);
		return FAIL_SETUP;
	case CURLE_PEER_FAILED_VERIFICATION:
		if (strcasestr(ce, "expired") != NULL)
			snprintf(why, sz, "its TLS certificate has expired (%s): "
			    "the relay's operator must renew it", ce);
		else if (strcasestr(ce, "not yet valid") != NULL)
			snprintf(why, sz, "its TLS certificate is not valid yet "
			    "(%s): check this machine's clock", ce);
		else if (strcasestr(ce, "subject name") != NULL ||
		    strcasestr(ce, "does not match") != NULL ||
		    strcasestr(ce, "hostname mismatch") != NULL) {
			url_host(w->run->urls[w->relay], host, sizeof(host));
			snprintf(why, sz, "its TLS certificate does not match "
			    "the host name '%s' (%s): name the relay in [mail] "
			    "transport by a name its certificate holds", host,
			    ce);
		} else
			snprintf(why, sz, "its TLS certificate did not verify "
			    "(%s): name its CA with [smtp] ca_file, or check "
			    "the host name", ce);
		return FAIL_TLS;
	case CURLE_SSL_CONNECT_ERROR:
		if (strcasestr(ce, "protocol version") != NULL ||
		    strcasestr(ce, "unsupported protocol") != NULL ||
		    strcasestr(ce, "no protocols available") != NULL)
			snprintf(why, sz, "it offers no TLS version samail "
			    "accepts (%s): samail needs TLS 1.2 or later, which "
			    "the relay's operator must enable", ce);
		else if (strstr(ce, "SSL_ERROR_SYSCALL") != NULL ||
		    strcasestr(ce, "unexpected eof") != NULL)
			snprintf(why, sz, "the connection was lost in the TLS "
			    "handshake (%s)", ce);
		/* smtps:// to a port that greets in clear ("220 ..."):
		 * OpenSSL reads the greeting as a TLS record. */
		else if (strncmp(w->run->urls[w->relay], "smtps:", 6) == 0 &&
		    (strcasestr(ce, "wrong version number") != NULL ||
		    strcasestr(ce, "packet length too long") != NULL ||
		    strcasestr(ce, "unexpected tls packet") != NULL))
			snprintf(why, sz, "no TLS at the start of the connection "
			    "(%s): this port speaks plain SMTP: name it smtp:// "
			    "(STARTTLS), or name the relay's smtps:// port (465)",
			    ce);
		else
			snprintf(why, sz, "the TLS handshake failed (%s)", ce);
		return FAIL_TLS;
	case CURLE_COULDNT_RESOLVE_HOST:
		url_host(w->run->urls[w->relay], host, sizeof(host));
		snprintf(why, sz, "its host name '%s' does not resolve: check "
		    "the name in [mail] transport and this machine's DNS", host);
		return FAIL_CONNECT;
	case CURLE_COULDNT_CONNECT: {
		long oserr = 0;

		/* libcurl 7.88 says "Couldn't connect to server" whatever
		 * the cause; the system's error says which. */
		curl_easy_getinfo(w->h, CURLINFO_OS_ERRNO, &oserr);
		if (oserr == ECONNREFUSED)
			snprintf(why, sz, "connection refused: nothing listens "
			    "there; check that the relay is running and that "
			    "[mail] transport names its host and port");
		else
			snprintf(why, sz, "cannot connect (%s): check that the "
			    "relay is up and reachable from this host, and "
			    "[mail] transport", oserr != 0 ?
			    strerror((int)oserr) : ce);
		return FAIL_CONNECT;
	}
	case CURLE_OPERATION_TIMEDOUT:
		/*
		 * No greeting: a relay hung, or (an admin's mistake) smtp://
		 * naming a port that speaks TLS from the first byte (465): it
		 * waits for our TLS hello, we for its greeting.
		 */
		if (x->phase == SMTP_PHASE_CONNECT && x->cmd == CMD_NONE &&
		    !x->answered &&
		    strncmp(w->run->urls[w->relay], "smtp:", 5) == 0) {
			/* libcurl waits for the greeting (and the rest of the
			 * set-up) no longer than the connect timeout either:
			 * name the limit that ran out. */
			snprintf(why, sz, "sent no greeting within [smtp] %s "
			    "(%s): if this port speaks TLS from the start (465), "
			    "name it smtps://; else the relay is hung",
			    connect_timeout_ms(o) < timeout_ms(o) ?
			    "connect_timeout" : "timeout", ce);
			return FAIL_CONNECT;
		}
		break;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
		/*
		 * Closed with no reply during the set-up: a limit on
		 * connections from this host (Postfix's anvil, tcpwrappers,
		 * a firewall), or a relay going down.  libcurl's words
		 * ("response reading failed (errno: 115)") say nothing.
		 */
		if (x->phase == SMTP_PHASE_CONNECT && !x->answered) {
			snprintf(why, sz, "closed the connection %s: it may "
			    "limit connections from this host, or be going down "
			    "(see its log)", x->cmd == CMD_EHLO ? "after our "
			    "EHLO" : x->cmd == CMD_STARTTLS ? "after our "
			    "STARTTLS" : x->cmd == CMD_AUTH ? "during the login" :
			    "before its greeting");
			return FAIL_CONNECT;
		}
		break;
	default:
		break;
	}
	/* A 5xx greeting naming a block list: what RCPT would say. */
	if (code >= 500 && x->phase == SMTP_PHASE_CONNECT &&
	    x->cmd == CMD_NONE && smtp_refuses_host(x->last.text, 0))
		snprintf(why, sz, "%s: it refuses mail from this host (a block "
		    "list or its reputation): have the listing removed, or "
		    "send through another relay", reply);
	else
		snprintf(why, sz, "%s", reply[0] != '\0' ? reply : ce);
	if (x->phase != SMTP_PHASE_MAIL || code / 100 != 4)
		return FAIL_CONNECT;
	if (smtp_refuses_sender(x->last.status, x->last.text))
		return FAIL_HELD_SENDER;
	if (strncmp(x->last.status, "4.3.", 4) == 0 &&
	    strcmp(x->last.status, "4.3.4") != 0)
		return FAIL_HELD_SYSTEM;
	return FAIL_HELD_MAIL;
}

/* The relay did not take a connection: remember why, for the summary. */
static void
relay_failed(struct worker *w, int relay, CURLcode cc)
{
	struct run *run = w->run;
	char why[RELAY_ERR_MAX], text[RELAY_ERR_MAX];
	enum fail_kind kind;
	size_t len = 0;
	int said;

	kind = why_failed(w, cc, why, sizeof(why));
	text_add(text, &len, sizeof(text), why, strlen(why));
	pthread_mutex_lock(&run->mu);
	/* Each worker that finds it so would say it again: once is enough. */
	said = strcmp(run->relay_err[relay], text) == 0;
	memcpy(run->relay_err[relay], text, sizeof(text));
	run->relay_kind[relay] = (int)kind;
	run->nfailed[relay]++;
	atomic_store(&run->failing[relay], ++run->epoch);
	pthread_mutex_unlock(&run->mu);
	/*
	 * With one relay, the run's error says it all (one line); with
	 * several, this tells why the next one takes over.  Past the
	 * greeting it took the connection but not our mail (a stall or a
	 * 4xx at MAIL FROM).
	 */
	if (run->o->nrelays > 1 && !said)
		log_warnx("smtp: relay '%s' %s: %s", run->o->relays[relay],
		    kind != FAIL_CONNECT ? "cannot be used" :
		    w->x.phase >= SMTP_PHASE_MAIL ? "took the connection but "
		    "not our mail" : cc == CURLE_COULDNT_CONNECT ||
		    cc == CURLE_COULDNT_RESOLVE_HOST ? "cannot be reached" :
		    /* No reply: it did not refuse, it went quiet or away. */
		    w->x.answered ? "refused the connection" : "cannot be used",
		    text);
}

/*
 * Send one job, failing over between relays while no relay has taken the
 * message.  Fills r.
 */
/*
 * Before connecting to relay: 0 go (its connection is open, it has taken
 * a MAIL FROM this run, or this worker is the one to try it first),
 * 1 skip it (another worker's first try failed while we waited: for a
 * login or TLS refused ours would fail the same way, and a relay down or
 * holding us off need not be tried by every worker in turn), 2 the run is
 * stopping.  A first try lasts until the relay takes a MAIL FROM
 * (debug_cb()), its worker moves to another relay, or stops (then the
 * run is stopping when that was a refusal: a 530 at MAIL FROM, every
 * relay down).
 */
static int
probe_begin(struct worker *w, int relay)
{
	struct run *run = w->run;
	unsigned failed;
	int rc = 0, waited = 0;

	/* The relay it tried first failed: its try is over, whether the
	 * next relay needs a try or has taken a MAIL FROM already. */
	if (w->probe != relay)
		probe_end(w);
	if (w->conn_relay == relay || w->probe == relay ||
	    atomic_load(&run->relay_ok[relay]))
		return 0;
	pthread_mutex_lock(&run->mu);
	/* Failures count from the start of the try we wait for: its worker
	 * may have failed it already and not moved on yet (rate_wait()). */
	failed = run->probing[relay] ? run->probe_nf[relay] :
	    run->nfailed[relay];
	while (run->probing[relay] && !atomic_load(&run->relay_ok[relay]) &&
	    !stopping(run)) {
		waited = 1;
		pthread_cond_wait(&run->probe_cv, &run->mu);
	}
	if (atomic_load(&run->relay_ok[relay]))
		rc = 0;
	else if (stopping(run))
		rc = 2;
	else if (waited && run->nfailed[relay] != failed)
		rc = 1;
	else {
		run->probing[relay] = 1;
		run->probe_nf[relay] = run->nfailed[relay];
		w->probe = relay;
	}
	pthread_mutex_unlock(&run->mu);
	return rc;
}

/*
 * Before sending to a relay whose streak ended (streak_ended()): 0 go,
 * 1 skip it, 2 the run is stopping, 3 look at the run's relay again.
 * One worker goes back to it with one message, the others wait for what
 * that gets: when the relay that took
 * over fails too, each worker going back would lose one more message to
 * it (a deferral, or a whole timeout) before the run stops.  Should the
 * relay answer it as usual (note_reply() ends its streak) every worker
 * goes; if not, none goes back to it again while its streak stands (and
 * the caller stops the run: last_relay).  Any other relay: 0.
 */
static int
back_begin(struct worker *w, int relay)
{
	struct run *run = w->run;
	int rc = 0;

	/* No streak has ended any relay (always so with one relay): no
	 * lock taken for each message. */
	if (!atomic_load(&run->any_ended))
		return 0;
	pthread_mutex_lock(&run->mu);
	while (streak_ended(run, relay) && run->back[relay] == BACK_TRYING &&
	    w->back != relay && !stopping(run))
		pthread_cond_wait(&run->probe_cv, &run->mu);
	if (!streak_ended(run, relay) || w->back == relay)
		rc = 0;
	else if (stopping(run))
		rc = 2;
	else if (run->back[relay] == BACK_FAILED)
		rc = 1;
	else if (atomic_load(&run->cur) != relay)
		/* The relay was read before its streak handed over to
		 * another, which has not failed: that one, not a try back
		 * (made now, it would be over before the one that took
		 * over fails, and nobody could go back then: 69, not 75). */
		rc = 3;
	else {
		run->back[relay] = BACK_TRYING;
		w->back = relay;
	}
	pthread_mutex_unlock(&run->mu);
	return rc;
}

/* This worker was to go back to a relay but did not (the message went
 * back to the top of send_job() and the run's relay had changed): the
 * try is free again for whoever comes next.  mu not held. */
static void
back_release(struct worker *w)
{
	struct run *run = w->run;

	if (w->back < 0)
		return;
	pthread_mutex_lock(&run->mu);
	if (run->back[w->back] == BACK_TRYING)
		run->back[w->back] = BACK_NONE;
	w->back = -1;
	pthread_cond_broadcast(&run->probe_cv);
	pthread_mutex_unlock(&run->mu);
}

/* This worker's try back is over (its result counted by note_reply(),
 * or the connection failed): let the others see how it went. */
static void
back_end(struct worker *w)
{
	struct run *run = w->run;

	if (w->back < 0)
		return;
	pthread_mutex_lock(&run->mu);
	run->back[w->back] = streak_ended(run, w->back) ? BACK_FAILED :
	    BACK_NONE;
	w->back = -1;
	pthread_cond_broadcast(&run->probe_cv);
	pthread_mutex_unlock(&run->mu);
}

static void
send_job(struct worker *w, const struct smtp_job *job, struct smtp_result *r)
{
	struct run *run = w->run;
	const struct smtp_opts *o = run->o;
	struct err e = ERR_INIT;
	uint32_t tried = 0;
	int busy = 0, retried = 0, relay, c, n = (int)o->nrelays;
	long newconns;
	CURLcode cc;

	memset(r, 0, sizeof(*r));
	r->relay = -1;
	if (smtp_addr_check(job->rcpt, &e) < 0 ||
	    (job->mail_from != NULL && smtp_addr_check(job->mail_from, &e) < 0) ||
	    msg_check(job->data, job->len, &w->dots, &e) < 0) {
		/* Refused at the boundary: the relay never sees it. */
		r->outcome = SMTP_PERMFAIL;
		result_text(r, e.msg);
		return;
	}
	for (;;) {
		if (rate_wait(run)) {
			r->outcome = atomic_load(&run->down) ?
			    SMTP_RELAY_DOWN : SMTP_UNSENT;
			result_text(r, "run stopped before the message was sent");
			return;
		}
		relay = atomic_load(&run->cur);
		if (tried & (1u << relay)) {
			/* The next relay not tried for this message, and not
			 * one whose streak ended and was tried once more in
			 * vain (back_begin()). */
			pthread_mutex_lock(&run->mu);
			for (c = 1; c < n; c++) {
				int next = (relay + c) % n;

				if (!(tried & (1u << next)) &&
				    (!streak_ended(run, next) ||
				    run->back[next] != BACK_FAILED))
					break;
			}
			pthread_mutex_unlock(&run->mu);
			if (c == n) {
				r->outcome = SMTP_RELAY_DOWN;
				return;	/* r->text holds the last error */
			}
			c = (relay + c) % n;
			if (atomic_compare_exchange_strong(&run->cur, &relay, c))
				log_warnx("smtp: switching to relay '%s'",
				    o->relays[c]);
			relay = c;
		}
		/* A try back not made: release it, or the others would wait
		 * on it for ever (and back_end() count it as failed). */
		if (w->back >= 0 && w->back != relay)
			back_release(w);
		c = probe_begin(w, relay);
		if (c == 0)
			c = back_begin(w, relay);
		switch (c) {
		case 1:
			tried |= 1u << relay;
			continue;
		case 3:
			continue;
		case 2:
			r->outcome = atomic_load(&run->down) ?
			    SMTP_RELAY_DOWN : SMTP_UNSENT;
			result_text(r, "run stopped before the message was sent");
			return;
		default:
			break;
		}
		cc = perform(w, relay, job);
		if (w->end_refused) {
			/* Dropped before the end of data: not handed over,
			 * and the caller stops the run. */
			back_release(w);
			memset(r, 0, sizeof(*r));
			r->outcome = SMTP_UNSENT;
			r->relay = relay;
			result_text(r, "not handed over: the sender could not "
			    "go on before the end of data");
			return;
		}
		if (cc == CURLE_OK || w->x.mail_sent) {
			newconns = 0;
			curl_easy_getinfo(w->h, CURLINFO_NUM_CONNECTS, &newconns);
			/*
			 * A reused connection the relay had closed while idle,
			 * or a relay saying 421 "closing" before it got the
			 * data: the message was not handed over, so one more
			 * go on a fresh connection costs nothing and saves a
			 * pointless deferral.
			 */
			if (cc != CURLE_OK && !retried && newconns == 0 &&
			    w->x.phase != SMTP_PHASE_CONTENT &&
			    (!w->x.answered || w->x.last.code == 421)) {
				retried = 1;
				continue;
			}
			/*
			 * MAIL FROM unanswered (a relay that greets, then
			 * hangs), or refused with 421 or any 4xx ("rate limit
			 * exceeded", "insufficient system storage"), on a
			 * fresh connection or on a reused one after the retry
			 * above: nothing about this message, every one would
			 * get the same.  Deferring each would cost every
			 * message of the campaign an attempt and, for a hung
			 * relay, a whole timeout: treat it as a connection the
			 * relay did not take (back off, reconnect, fail over;
			 * when no relay takes our mail, exit 69, or 75 when
			 * each answered MAIL FROM with a 4xx).
			 */
			if (cc == CURLE_OK || w->x.phase != SMTP_PHASE_MAIL ||
			    (w->x.answered && w->x.last.code / 100 != 4)) {
				classify(w, cc, r);
				note_reply(run, relay, r, w->back == relay);
				/*
				 * A username that went unused because the relay
				 * offers no AUTH, and it took our MAIL FROM: say
				 * so once.  (When it wants a login after all, its
				 * refusal is the run's error and says what to
				 * check.)
				 */
				if (w->x.noauth && (r->outcome == SMTP_SENT ||
				    r->phase > SMTP_PHASE_MAIL) &&
				    !atomic_exchange(&run->noauth_warned, 1))
					log_warnx("smtp: relay '%s' offers %s: "
					    "sending without logging in as '%s'",
					    o->relays[relay], w->x.auth_odd ?
					    "AUTH only as 'AUTH=' or in lower "
					    "case, which libcurl does not use" :
					    "no AUTH", o->username);
				return;
			}
		}
		/*
		 * The connection was not set up; the message is untried.
		 * Record what the relay said, for RELAY_DOWN.
		 */
		memset(r, 0, sizeof(*r));
		r->outcome = SMTP_RELAY_DOWN;
		r->phase = SMTP_PHASE_CONNECT;
		r->relay = relay;
		if (w->x.answered) {
			r->code = w->x.last.code;
			memcpy(r->status, w->x.last.status, sizeof(r->status));
		}
		result_text(r, w->errbuf[0] != '\0' ? w->errbuf :
		    curl_easy_strerror(cc));
		if (stopping(run)) {
			if (!atomic_load(&run->down))
				r->outcome = SMTP_UNSENT;
			return;
		}
		/*
		 * A 4xx greeting, or a refusal while other workers are
		 * connected to the same relay: the relay is up but busy or
		 * limits connections per client.  Back off and try again;
		 * if others still get through, this worker retires rather
		 * than drive the run to another relay.  Not a 4xx to AUTH
		 * ("454 4.7.0 Temporary authentication failure", "421 too
		 * many failed logins"): each try would be one more login
		 * failed, and those lock accounts.
		 */
		if (((w->x.answered && w->x.last.code / 100 == 4) ||
		    atomic_load(&run->live[relay]) > 0) &&
		    !(w->x.cmd == CMD_AUTH && !w->x.mail_sent)) {
			if (busy < BUSY_RETRIES) {
				nap(run, (int64_t)(BUSY_BACKOFF_MS << busy) *
				    1000000);
				busy++;
				continue;
			}
			if (atomic_load(&run->live[relay]) > 0) {
				log_info("smtp: relay '%s' refuses more "
				    "connections; running with fewer", o->relays[relay]);
				r->outcome = SMTP_UNSENT;
				w->retired = 1;
				return;
			}
		}
		relay_failed(w, relay, cc);
		back_end(w);
		tried |= 1u << relay;
		busy = 0;
	}
}

/* ---- workers ----------------------------------------------------------- */

static void
fatal(struct run *run, int rc, const char *msg)
{
	pthread_mutex_lock(&run->mu);
	if (run->rc == 0) {
		run->rc = rc;
		err_set(&run->err, -rc, "%s", msg);
	}
	pthread_mutex_unlock(&run->mu);
	atomic_store(&run->abort, 1);
}

/* Take one from the max_messages allowance; 0 when it is used up. */
static int
take_quota(struct run *run)
{
	unsigned long n = atomic_load(&run->taken);

	if (run->o->max_messages == 0)
		return 1;
	do {
		if (n >= run->o->max_messages)
			return 0;
	} while (!atomic_compare_exchange_weak(&run->taken, &n, n + 1));
	return 1;
}

static void *
worker_main(void *p)
{
	struct worker *w = p;
	struct run *run = w->run;
	struct smtp_job job;
	struct smtp_result res;
	int rc;

	while (!stopping(run) && take_quota(run)) {
		memset(&job, 0, sizeof(job));
		rc = run->next(&job, run->arg);
		if (rc == SMTP_NEXT_NONE)
			break;
		if (rc < 0) {
			fatal(run, rc, "the caller stopped the run");
			break;
		}
		if (rc != SMTP_NEXT_JOB) {
			fatal(run, -ERR_SOFTWARE, "next_cb returned an unknown value");
			break;
		}
		send_job(w, &job, &res);
		/* The caller hears of a try back before the others waiting
		 * on it do: should it stop the run (the relay holds us off
		 * still, and no other can take over: 75), that is why the
		 * run stops, not the waiters' "no relay left" (69). */
		run->done(&job, &res, run->arg);
		/* A try back at a relay whose streak ended is over: the
		 * others go there too, or skip it (note_reply() was told). */
		back_end(w);
		if (res.outcome == SMTP_RELAY_DOWN) {
			atomic_store(&run->down, 1);
			break;
		}
		if (w->retired)
			break;
	}
	/* A first try ends with its worker at the latest: the others see
	 * the run stopping (a 530 at MAIL FROM stops it: next_cb fails), or
	 * one of them tries next. */
	probe_end(w);
	/*
	 * Close our connection now, not when the run ends: a relay that
	 * limits connections per client gets the slot back for a worker
	 * still busy, and live[] stops counting a connection nobody uses.
	 */
	curl_easy_cleanup(w->h);
	w->h = NULL;
	if (w->conn_relay >= 0) {
		atomic_fetch_sub(&run->live[w->conn_relay], 1);
		w->conn_relay = -1;
	}
	return NULL;
}

/* Check one relay URL and make the one we use (EHLO name as its path). */
static int
relay_url(const char *relay, const char *helo, char **out, struct err *e)
{
	CURLU *u = NULL;
	char *scheme = NULL, *host = NULL, *path = NULL, *url = NULL;
	char *extra = NULL;
	int rc = -ERR_CONFIG;

	if ((u = curl_url()) == NULL)
		return err_set(e, ERR_SOFTWARE, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, relay, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		err_set(e, ERR_CONFIG, "relay '%s' is not a URL like "
		    "smtp://host:port", relay);
		goto out;
	}
	if (strcmp(scheme, "smtp") != 0 && strcmp(scheme, "smtps") != 0) {
		err_set(e, ERR_CONFIG, "relay '%s': only smtp:// and smtps:// "
		    "are allowed", relay);
		goto out;
	}
	/* Credentials come from a 0600 file, never from a URL in a config. */
	if (curl_url_get(u, CURLUPART_USER, &extra, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_OPTIONS, &extra, 0) == CURLUE_OK) {
		err_set(e, ERR_CONFIG, "relay '%s': no user name in the URL; "
		    "use the credentials file", relay);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_QUERY, &extra, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &extra, 0) == CURLUE_OK ||
	    (curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK &&
	    strcmp(path, "/") != 0 && strcmp(path, "") != 0)) {
		err_set(e, ERR_CONFIG, "relay '%s': nothing may follow "
		    "host:port", relay);
		goto out;
	}
	if (helo != NULL) {
		char *p = xasprintf("/%s", helo);

		if (curl_url_set(u, CURLUPART_PATH, p, 0) != CURLUE_OK) {
			free(p);
			err_set(e, ERR_CONFIG, "bad EHLO name '%s'", helo);
			goto out;
		}
		free(p);
	}
	if (curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
		err_set(e, ERR_CONFIG, "relay '%s': cannot use this URL", relay);
		goto out;
	}
	*out = xstrdup(url);
	rc = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(path);
	curl_free(extra);
	curl_free(url);
	curl_url_cleanup(u);
	return rc;
}

/* Options that stay the same for every message of a worker. */
static int
handle_setup(struct worker *w, struct err *e)
{
	const struct smtp_opts *o = w->run->o;
	long usessl = CURLUSESSL_TRY, per_reply;
	CURL *h = w->h;

	/* A password never goes in clear, whatever starttls says. */
	if (o->starttls == SMTP_STARTTLS_REQUIRED || o->username != NULL)
		usessl = CURLUSESSL_ALL;
	else if (o->starttls == SMTP_STARTTLS_NEVER)
		usessl = CURLUSESSL_NONE;
	/*
	 * The timeout is for each reply (the greeting, each command, the
	 * end of data: SERVER_RESPONSE_TIMEOUT) and for the data going out
	 * (no byte moving for that long: LOW_SPEED); a message as a whole
	 * gets ten times that, so a slow but live relay is not cut off.
	 */
	per_reply = timeout_ms(o) / 1000;
	if (per_reply < 1)
		per_reply = 1;
	if (curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps") ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) ||
	    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L) ||
	    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb) ||
	    curl_easy_setopt(h, CURLOPT_READDATA, w) ||
	    curl_easy_setopt(h, CURLOPT_MAIL_FROM, o->envelope_from) ||
	    curl_easy_setopt(h, CURLOPT_USE_SSL, usessl) ||
	    curl_easy_setopt(h, CURLOPT_SSLVERSION,
	    (long)CURL_SSLVERSION_TLSv1_2) ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L) ||
	    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, o->insecure ? 0L : 2L) ||
	    (o->cafile != NULL &&
	    curl_easy_setopt(h, CURLOPT_CAINFO, o->cafile)) ||
	    (o->username != NULL &&
	    (curl_easy_setopt(h, CURLOPT_USERNAME, o->username) ||
	    curl_easy_setopt(h, CURLOPT_PASSWORD,
	    o->password != NULL ? o->password : "") ||
	    /* What a password can do.  libcurl prefers GSSAPI, NTLM and
	     * CRAM-MD5 when offered ("AUTH GSSAPI NTLM LOGIN" on Exchange)
	     * and fails there; over TLS PLAIN and LOGIN are safe, and
	     * every submission server has one (Postfix's FAQ advice:
	     * smtp_sasl_mechanism_filter = plain, login). */
	    curl_easy_setopt(h, CURLOPT_LOGIN_OPTIONS,
	    "AUTH=PLAIN;AUTH=LOGIN"))) ||
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
	    connect_timeout_ms(o)) ||
	    curl_easy_setopt(h, CURLOPT_SERVER_RESPONSE_TIMEOUT, per_reply) ||
	    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L) ||
	    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, per_reply) ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10 * timeout_ms(o)) ||
	    curl_easy_setopt(h, CURLOPT_MAXCONNECTS, 1L) ||
	    /*
	     * No proxy, whatever the environment says: libcurl takes
	     * all_proxy (and smtp_proxy) for SMTP too and tunnels the
	     * session through it with CONNECT, which an HTTP proxy refuses
	     * or, worse, makes the relay see the proxy's address.  Those
	     * variables reach cron from /etc/environment (pam_env), so a
	     * run could fail where the admin's test send went through.
	     */
	    curl_easy_setopt(h, CURLOPT_PROXY, "") ||
	    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, w->errbuf) ||
	    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress_cb) ||
	    curl_easy_setopt(h, CURLOPT_XFERINFODATA, w) ||
	    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L) ||
	    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, debug_cb) ||
	    curl_easy_setopt(h, CURLOPT_DEBUGDATA, w) ||
	    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L))
		return err_set(e, ERR_CONFIG, "this libcurl cannot do SMTP "
		    "with TLS as configured");
	return 0;
}

static int
opts_check(const struct smtp_opts *o, struct err *e)
{
	if (o->relays == NULL || o->nrelays == 0)
		return err_set(e, ERR_CONFIG, "no SMTP relay configured");
	if (o->nrelays > SMTP_MAX_RELAYS)
		return err_set(e, ERR_CONFIG, "more than %d relays configured",
		    SMTP_MAX_RELAYS);
	if (o->max_connections < 0 || o->max_connections > SMTP_MAX_CONNECTIONS)
		return err_set(e, ERR_CONFIG, "max_connections must be 1..%d",
		    SMTP_MAX_CONNECTIONS);
	if (smtp_addr_check(o->envelope_from, e) < 0)
		return err_prefix(e, "envelope sender"), -ERR_CONFIG;
	if (o->helo != NULL && helo_check(o->helo, e) < 0)
		return -ERR_CONFIG;
	/* Else every connection would fail and the run would look like 69. */
	if (o->cafile != NULL && access(o->cafile, R_OK) != 0)
		return err_set(e, ERR_CONFIG, "CA file '%s': %s", o->cafile,
		    strerror(errno));
	return 0;
}

int
smtp_run(const struct smtp_opts *o, smtp_next_fn *next_cb,
    smtp_done_fn *done_cb, void *arg, struct err *e)
{
	struct run *run = NULL;
	struct worker *w = NULL;
	int nw, started = 0, rc;
	char sum[1024];
	size_t sn;

	if ((rc = opts_check(o, e)) < 0) {
		if (e != NULL)
			e->code = ERR_CONFIG;
		return -ERR_CONFIG;
	}
	run = xcalloc(1, sizeof(*run));
	run->o = o;
	run->next = next_cb;
	run->done = done_cb;
	run->arg = arg;
	pthread_mutex_init(&run->mu, NULL);
	pthread_cond_init(&run->probe_cv, NULL);
	for (size_t i = 0; i < o->nrelays; i++)
		if ((rc = relay_url(o->relays[i], o->helo, &run->urls[i], e)) < 0)
			goto out;
	nw = o->max_connections > 0 ? o->max_connections : 1;
	if (o->max_messages > 0 && o->max_messages < (unsigned long)nw)
		nw = (int)o->max_messages;
	w = xcalloc((size_t)nw, sizeof(*w));
	for (int i = 0; i < nw; i++) {
		w[i].run = run;
		w[i].probe = -1;
		w[i].back = -1;
		w[i].conn_relay = -1;
		if ((w[i].h = curl_easy_init()) == NULL) {
			rc = err_set(e, ERR_SOFTWARE, "curl_easy_init failed");
			goto out;
		}
		if ((rc = handle_setup(&w[i], e)) < 0)
			goto out;
	}
	for (started = 0; started < nw; started++)
		if ((rc = pthread_create(&w[started].tid, NULL, worker_main,
		    &w[started])) != 0) {
			fatal(run, -ERR_SOFTWARE, "cannot start a worker thread");
			log_error("smtp: pthread_create: %s", strerror(rc));
			break;
		}
	for (int i = 0; i < started; i++)
		pthread_join(w[i].tid, NULL);
	if (run->rc != 0) {
		rc = run->rc;
		if (e != NULL)
			*e = run->err;
	} else if (atomic_load(&run->down)) {
		/* Every relay refused: name each with its error. */
		int n[FAIL_HELD + 1] = { 0 }, nfail = 0, nmail;

		for (size_t i = 0; i < o->nrelays; i++)
			if (run->relay_kind[i] > FAIL_NONE &&
			    run->relay_kind[i] <= FAIL_HELD) {
				n[run->relay_kind[i]]++;
				nfail++;
			}
		nmail = n[FAIL_HELD_MAIL] + n[FAIL_HELD_SENDER] +
		    n[FAIL_HELD_SYSTEM];
		sn = 0;
		sum[0] = '\0';
		for (size_t i = 0; i < o->nrelays; i++) {
			int k = snprintf(sum + sn, sizeof(sum) - sn,
			    "%s'%s': %s", i ? "; " : "", o->relays[i],
			    run->relay_err[i][0] ? run->relay_err[i] :
			    "not tried");

			if (k < 0 || (size_t)k >= sizeof(sum) - sn)
				break;
			sn += (size_t)k;
		}
		if (n[FAIL_SETUP] > 0)
			/* Ours to fix, whatever the other relays did: the
			 * login, the mechanisms, STARTTLS required. */
			rc = err_set(e, ERR_CONFIG, "no SMTP relay could be "
			    "used: %s", sum);
		/*
		 * Every relay greeted us and then answered MAIL FROM with a
		 * 4xx: Postfix's smtpd_client_message_rate_limit ("450 4.7.1
		 * Error: too much mail from 192.0.2.1"), a provider's hourly
		 * quota.  The relay is up and holding us off; "no relay
		 * accepted a connection" (69, "start Postfix") would send
		 * the admin after the wrong thing.
		 */
		else if (nfail > 0 && nmail == nfail)
			rc = err_set(e, ERR_TEMP, "the SMTP relay is refusing our "
			    "mail for now (a 4xx to MAIL FROM%s): %s; the rest "
			    "stay queued for the next run (if it goes on, %s)",
			    n[FAIL_HELD_SENDER] == nfail ? ", about our envelope "
			    "sender" : n[FAIL_HELD_SYSTEM] == nfail ? ", its mail "
			    "system failing" : n[FAIL_HELD_MAIL] == nfail ? ": a "
			    "rate limit or quota" : "", sum,
			    n[FAIL_HELD_SENDER] == nfail ? "check [mail] "
			    "envelope_from: its domain must resolve, and the "
			    "relay must know the address" :
			    n[FAIL_HELD_SYSTEM] == nfail ? "the relay's operator "
			    "must fix its mail system" : "see the relay's limits "
			    "and [smtp] rate_per_minute");
		/* A 4xx to STARTTLS or AUTH: up, and saying "later" (Postfix
		 * defers the mail when TLS is required). */
		else if (nfail > 0 && nmail + n[FAIL_HELD] == nfail)
			rc = err_set(e, ERR_TEMP, "the SMTP relay is refusing our "
			    "mail for now: %s; the rest stay queued for the next "
			    "run (if it goes on, ask the relay's operator)", sum);
		else if (n[FAIL_CONNECT] == nfail)
			rc = err_set(e, ERR_NET, "no SMTP relay accepted a "
			    "connection: %s", sum);
		else
			rc = err_set(e, ERR_NET, "no SMTP relay could be used: "
			    "%s", sum);
	} else
		rc = 0;
out:
	if (w != NULL)
		for (int i = 0; i < nw; i++)
			curl_easy_cleanup(w[i].h);
	free(w);
	for (size_t i = 0; i < SMTP_MAX_RELAYS; i++)
		free(run->urls[i]);
	pthread_cond_destroy(&run->probe_cv);
	pthread_mutex_destroy(&run->mu);
	free(run);
	return rc;
}
