/*
 * httpd — the one-click unsubscribe endpoint (RFC 8058), on libmicrohttpd.
 *
 * Meant to sit behind the organisation's web server (which terminates TLS
 * and forwards /u/ to us).  It answers:
 *
 *	GET|HEAD /u/TOKEN	the confirmation page (unsubscribe.html) in
 *				the declarer's locale, with a button that
 *				POSTs; changes nothing (link scanners
 *				prefetch GETs)
 *	POST /u/TOKEN		body List-Unsubscribe=One-Click
 *				(x-www-form-urlencoded or multipart/form-
 *				data): unsubscribes at once, 200 with
 *				unsubscribed.html (done or already); without
 *				that body 400 with the confirmation page
 *	GET|HEAD /healthz	200 "ok"
 *
 * A token that does not verify (forged, cut short, another list's), or a
 * path that is not exactly /u/TOKEN, gets 400 with the generic "invalid"
 * page in Japanese, the same whatever the reason; a temporary database failure 503 with the "failed" page.  Every
 * other path is 404, every other method 405.
 *
 * Limits: URL length (414), request body (413, checked against
 * Content-Length before reading and again while reading), per-client rate
 * (429 with Retry-After: a token bucket per client address: burst
 * requests at once, then rate_per_min a minute; IPv6 clients by their
 * /64), total and per-address connection counts, an idle timeout, and
 * libmicrohttpd's per-connection memory pool (bounds the headers).  The
 * client address is the peer's; when the peer is a loopback address (the
 * proxy in front of us) the last X-Forwarded-For entry is used instead,
 * the one that proxy appended.
 *
 * Every page is sent with Cache-Control: no-store, Referrer-Policy:
 * no-referrer, X-Content-Type-Options: nosniff, X-Frame-Options: DENY and
 * a Content-Security-Policy that allows nothing but inline styles and the
 * form's POST to this same endpoint.
 *
 * The database is opened per request (a read for GET, one short write
 * transaction for POST, each waiting at most busy_ms for a cron run's
 * writer), so the server never holds a lock between requests.  The
 * unsubscribe keys are read per request too: a rotated key takes effect
 * without a restart, and the previous key stops verifying on its end date.
 * The templates are compiled once at start.
 */
#ifndef SAMAIL_HTTPD_H
#define SAMAIL_HTTPD_H

#include <stddef.h>

struct config;
struct err;
struct httpd;

struct httpd_opts {
	const struct config *cfg;	/* db path, keys, list, base_url,
					 * templates; borrowed until stop */
	const char	*listen;	/* "127.0.0.1:8025", "[::1]:8025",
					 * "localhost:0" (0: any free port) */
	long		 busy_ms;	/* database busy timeout per request */
	unsigned	 max_conns;	/* 0: 256 */
	unsigned	 max_conns_per_ip; /* 0: 32 */
	unsigned	 timeout_s;	/* idle connection timeout; 0: 15 */
	size_t		 max_body;	/* 0: 1024 bytes */
	size_t		 max_url;	/* 0: 512 bytes */
	unsigned	 rate_burst;	/* 0: 60 requests */
	unsigned	 rate_per_min;	/* 0: 60 a minute */
};

/* Whether spec is "HOST:PORT" or "[IPV6]:PORT" (port 0-65535); 0 or
 * -ERR_CONFIG naming it. */
int	 httpd_check_listen(const char *spec, struct err *e);

/*
 * Compile the pages and start listening (a thread per connection).
 * -ERR_CONFIG (bad listen address, keys unreadable), -ERR_NOINPUT /
 * -ERR_PARSE (templates), -ERR_IO (cannot bind: address in use).
 * Stop with httpd_stop().
 */
int	 httpd_start(struct httpd **, const struct httpd_opts *, struct err *);

/* The address actually bound, e.g. "127.0.0.1:8025" (for the log). */
const char *httpd_address(const struct httpd *);

/* Stop accepting, finish the requests in progress, free everything. */
void	 httpd_stop(struct httpd *);

/*
 * The rate limiter on its own (used by httpd; exposed for tests).  Keys
 * are opaque byte strings (an address); now_ms a monotonic clock.
 * Returns 0 when a request may go ahead, else the seconds to wait (> 0).
 * Thread-safe.  A fixed-size table: when it is full, the entry that has
 * refilled the most is reused (a refilled bucket holds no state).
 */
struct ratelimit;
struct ratelimit *ratelimit_new(unsigned burst, unsigned per_min);
unsigned ratelimit_take(struct ratelimit *, const void *key, size_t keylen,
	    long long now_ms);
void	 ratelimit_free(struct ratelimit *);

#endif
