/*
 * httpd — the one-click unsubscribe endpoint.  See httpd.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "buf.h"
#include "config.h"
#include "db.h"
#include "err.h"
#include "httpd.h"
#include "log.h"
#include "render.h"
#include "token.h"
#include "unsub.h"
#include "xalloc.h"

#define PAGE_MAX	(256 * 1024)	/* one rendered page */
#define DRAIN_MAX	(64 * 1024)	/* over-long body read to answer 413 */

/* --- rate limit ------------------------------------------------------- */

#define RL_SETS		1024
#define RL_WAYS		4
#define RL_KEYMAX	16

struct rl_entry {
	unsigned char	 key[RL_KEYMAX];
	size_t		 keylen;	/* 0: free */
	double		 tokens;
	long long	 last_ms;
};

struct ratelimit {
	pthread_mutex_t	 mu;
	double		 burst;
	double		 per_ms;	/* tokens added per millisecond */
	uint64_t	 seed;		/* so nobody can aim at one set */
	struct rl_entry	 e[RL_SETS][RL_WAYS];
};

struct ratelimit *
ratelimit_new(unsigned burst, unsigned per_min)
{
	struct ratelimit *rl = xcalloc(1, sizeof(*rl));

	pthread_mutex_init(&rl->mu, NULL);
	rl->burst = burst > 0 ? burst : 1;
	rl->per_ms = (per_min > 0 ? per_min : 1) / 60000.0;
	if (getrandom(&rl->seed, sizeof(rl->seed), 0) != sizeof(rl->seed))
		rl->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL;
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->mu);
	free(rl);
}

static double
refilled(const struct ratelimit *rl, const struct rl_entry *en,
    long long now_ms)
{
	double t = en->tokens;

	if (now_ms > en->last_ms)
		t += (double)(now_ms - en->last_ms) * rl->per_ms;
	return t > rl->burst ? rl->burst : t;
}

unsigned
ratelimit_take(struct ratelimit *rl, const void *key, size_t keylen,
    long long now_ms)
{
	const unsigned char *k = key;
	struct rl_entry *set, *en = NULL;
	uint64_t h = 1469598103934665603ULL ^ rl->seed;
	double best = -1, t;
	unsigned wait = 0;

	if (keylen > RL_KEYMAX)
		keylen = RL_KEYMAX;
	for (size_t i = 0; i < keylen; i++)	/* FNV-1a */
		h = (h ^ k[i]) * 1099511628211ULL;
	pthread_mutex_lock(&rl->mu);
	set = rl->e[h % RL_SETS];
	for (int w = 0; w < RL_WAYS; w++)
		if (set[w].keylen == keylen &&
		    memcmp(set[w].key, k, keylen) == 0)
			en = &set[w];
	if (en == NULL) {
		/* A free way, else the one with the most tokens back: a
		 * bucket that has refilled carries no state worth keeping. */
		for (int w = 0; w < RL_WAYS; w++) {
			t = set[w].keylen == 0 ? rl->burst + 1 :
			    refilled(rl, &set[w], now_ms);
			if (t > best) {
				best = t;
				en = &set[w];
			}
		}
		memcpy(en->key, k, keylen);
		en->keylen = keylen;
		en->tokens = rl->burst;
		en->last_ms = now_ms;
	}
	en->tokens = refilled(rl, en, now_ms);
	if (now_ms > en->last_ms)
		en->last_ms = now_ms;
	if (en->tokens >= 1.0)
		en->tokens -= 1.0;
	else
		wait = (unsigned)ceil((1.0 - en->tokens) / rl->per_ms / 1000.0);
	pthread_mutex_unlock(&rl->mu);
	return wait;
}

/* --- server ----------------------------------------------------------- */

struct httpd {
	struct httpd_opts	 o;
	struct MHD_Daemon	*d;
	int			 fd;		/* the listening socket */
	struct render		*pages;
	struct ratelimit	*rl;
	char			*csp;
	char			 addr[80];
	atomic_int		 unhealthy;	/* the last /healthz failed */
};

enum route { R_NONE, R_UNSUB, R_HEALTH };

struct req {
	enum route		 route;
	int			 answered;	/* a response is queued */
	int			 post;
	size_t			 body_len;
	int			 too_big;	/* body_len went over max_body */
	int			 one_click;	/* List-Unsubscribe=One-Click seen */
	char			 luv[16];	/* that key's value, as it comes */
	size_t			 luv_len;
	int			 luv_bad;	/* too long, or given twice */
	struct MHD_PostProcessor *pp;
};

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
security_headers(const struct httpd *h, struct MHD_Response *rs)
{
	/* The pages are personal (they act on one declarer): never cached,
	 * never leaking the token in a Referer, never framed. */
	MHD_add_response_header(rs, "Cache-Control", "no-store");
	MHD_add_response_header(rs, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(rs, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(rs, "X-Frame-Options", "DENY");
	MHD_add_response_header(rs, "X-Robots-Tag", "noindex, nofollow");
	MHD_add_response_header(rs, "Content-Security-Policy", h->csp);
}

/* Queue a response with body (malloc'd, taken over). */
static enum MHD_Result
respond(const struct httpd *h, struct MHD_Connection *c, struct req *r,
    unsigned status, const char *type, char *body, size_t len,
    const char *hname, const char *hvalue)
{
	struct MHD_Response *rs;
	enum MHD_Result ret;

	rs = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (rs == NULL) {
		free(body);
		return MHD_NO;
	}
	security_headers(h, rs);
	MHD_add_response_header(rs, "Content-Type", type);
	if (hname != NULL)
		MHD_add_response_header(rs, hname, hvalue);
	ret = MHD_queue_response(c, status, rs);
	MHD_destroy_response(rs);
	if (r != NULL)
		r->answered = 1;
	log_debug("answered %u", status);
	return ret;
}

static enum MHD_Result
respond_text(const struct httpd *h, struct MHD_Connection *c, struct req *r,
    unsigned status, const char *text, const char *hname, const char *hvalue)
{
	return respond(h, c, r, status, "text/plain; charset=utf-8",
	    xstrdup(text), strlen(text), hname, hvalue);
}

enum page_state { P_CONFIRM, P_DONE, P_ALREADY, P_INVALID, P_FAILED };

/* The page context of docs/templates.md ("Unsubscribe pages"). */
static json_t *
page_context(const struct httpd *h, const char *locale, const char *token,
    enum page_state ps)
{
	json_t *ctx = json_object(), *sender;
	struct buf url = BUF_INIT(0);

	if (token != NULL) {
		buf_addf(&url, "%s%s", h->o.cfg->unsub_base_url, token);
		json_object_set_new(ctx, "action_url", json_string(buf_str(&url)));
		buf_release(&url);
	} else
		json_object_set_new(ctx, "action_url", json_string(""));
	json_object_set_new(ctx, "list_name", json_string(h->o.cfg->list_name));
	sender = json_object_get(render_content(h->pages, locale), "sender");
	json_object_set(ctx, "sender", sender != NULL ? sender : json_object());
	json_object_set_new(ctx, "done", json_boolean(ps == P_DONE));
	json_object_set_new(ctx, "already", json_boolean(ps == P_ALREADY));
	json_object_set_new(ctx, "invalid", json_boolean(ps == P_INVALID));
	json_object_set_new(ctx, "failed", json_boolean(ps == P_FAILED));
	return ctx;
}

static enum MHD_Result
respond_page(const struct httpd *h, struct MHD_Connection *c, struct req *r,
    unsigned status, const char *locale, const char *token,
    enum page_state ps)
{
	struct buf out = BUF_INIT(PAGE_MAX);
	struct err e = ERR_INIT;
	json_t *ctx = page_context(h, locale, token, ps);
	size_t len;
	char *body;
	int rc;

	rc = render_text(h->pages, locale, ps == P_CONFIRM ? "unsubscribe.html" :
	    "unsubscribed.html", ctx, 1, 0, &out, &e);
	json_decref(ctx);
	if (rc < 0) {
		buf_release(&out);
		log_warnx("cannot render the %s page: %s", locale, e.msg);
		return respond_text(h, c, r, 500, "internal error\n", NULL,
		    NULL);
	}
	body = buf_detach(&out, &len);
	return respond(h, c, r, status, "text/html; charset=utf-8", body, len,
	    status == 503 ? "Retry-After" : NULL, "120");
}

/* --- the client's address, for the rate limit -------------------------- */

struct xff {
	char	last[128];
};

static enum MHD_Result
xff_each(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct xff *x = cls;
	const char *p;

	(void)kind;
	if (strcasecmp(key, "X-Forwarded-For") != 0 || value == NULL)
		return MHD_YES;
	/* The last entry is the one our proxy appended; anything before
	 * it came from the client and proves nothing. */
	p = strrchr(value, ',');
	p = p != NULL ? p + 1 : value;
	while (*p == ' ' || *p == '\t')
		p++;
	snprintf(x->last, sizeof(x->last), "%s", p);
	x->last[strcspn(x->last, " \t")] = '\0';
	/* Some proxies (Azure Application Gateway, IIS ARR) append the
	 * client's port: "203.0.113.5:51234", "[2001:db8::1]:443".  The
	 * address is what counts; left as it is, no such entry would parse
	 * and every client would share the proxy's one bucket. */
	if (x->last[0] == '[') {
		char *close = strchr(x->last, ']');

		if (close != NULL) {
			*close = '\0';
			memmove(x->last, x->last + 1, strlen(x->last + 1) + 1);
		}
	} else {
		char *colon = strchr(x->last, ':');

		if (colon != NULL && strchr(colon + 1, ':') == NULL)
			*colon = '\0';
	}
	return MHD_YES;
}

static int
is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
		    (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
		    in6->sin6_addr.s6_addr[12] == 127);
	}
	return 0;
}

/* The rate-limit key: 4 bytes of IPv4, or the /64 of IPv6. */
static size_t
client_key(struct MHD_Connection *c, unsigned char *key)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;
	struct xff x;
	unsigned char a6[16];

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || (sa = ci->client_addr) == NULL)
		return 0;
	if (is_loopback(sa)) {
		x.last[0] = '\0';
		MHD_get_connection_values(c, MHD_HEADER_KIND, xff_each, &x);
		if (x.last[0] != '\0') {
			if (inet_pton(AF_INET, x.last, key) == 1)
				return 4;
			if (inet_pton(AF_INET6, x.last, a6) == 1) {
				/* ::ffff:a.b.c.d from a dual-stack proxy is
				 * that IPv4 client, not one shared /64. */
				if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)
				    (void *)a6)) {
					memcpy(key, a6 + 12, 4);
					return 4;
				}
				memcpy(key, a6, 8);
				return 8;
			}
		}
	}
	if (sa->sa_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)(const void *)sa)->
		    sin_addr, 4);
		return 4;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(key, a->s6_addr + 12, 4);
			return 4;
		}
		memcpy(key, a->s6_addr, 8);
		return 8;
	}
	return 0;
}

/* --- requests ---------------------------------------------------------- */

static enum MHD_Result
post_each(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *filename, const char *content_type,
    const char *transfer_encoding, const char *data, uint64_t off,
    size_t size)
{
	struct req *r = cls;

	(void)kind;
	(void)filename;
	(void)content_type;
	(void)transfer_encoding;
	/* RFC 8058 3.1: the body is this key and value.  libmicrohttpd
	 * hands a value over in pieces when the body arrives in several
	 * reads (off: where this piece goes): put them together. */
	if (key == NULL || strcmp(key, "List-Unsubscribe") != 0)
		return MHD_YES;
	if (off != r->luv_len || size > sizeof(r->luv) - r->luv_len)
		r->luv_bad = 1;
	else {
		memcpy(r->luv + r->luv_len, data, size);
		r->luv_len += size;
	}
	r->one_click = !r->luv_bad && r->luv_len == 9 &&
	    memcmp(r->luv, "One-Click", 9) == 0;
	return MHD_YES;
}

/* The declarer's locale for a verified id, and whether they are already
 * unsubscribed (already may be NULL); "ja" and not already if the
 * database cannot say (a page in Japanese is better than none). */
static void
locale_of(const struct httpd *h, int64_t id, char *locale, int *already)
{
	struct db *db = NULL;
	struct err e = ERR_INIT;

	snprintf(locale, 3, "ja");
	if (already != NULL)
		*already = 0;
	if (db_open(&db, h->o.cfg->db_path, 0, h->o.busy_ms, &e) < 0 ||
	    unsub_locale(db, id, locale, already, &e) < 0)
		log_warnx("cannot read declarer %lld's locale: %s",
		    (long long)id, e.msg);
	db_close(db);
}

/*
 * The path after /u/ is the token and nothing else.  unsub_check() cuts a
 * token out of whatever an admin pastes (a link, "unsubscribe TOKEN"), so
 * /u/a/b/../TOKEN or /u/x=TOKEN would verify too, and the page would
 * echo that whole path as its form's action; here (token_is_bare()), and
 * in answer_post(), it is refused like a token that does not verify.
 */
static enum MHD_Result
answer_get(const struct httpd *h, struct MHD_Connection *c, struct req *r,
    const char *token)
{
	struct err e = ERR_INIT;
	int64_t id = 0;
	char locale[3];
	int already, rc;

	if (!token_is_bare(token))
		return respond_page(h, c, r, 400, "ja", NULL, P_INVALID);
	if ((rc = unsub_check(h->o.cfg, token, time(NULL), &id, &e)) < 0) {
		if (rc != -ERR_INVAL) {
			log_warnx("%s", e.msg);
			return respond_page(h, c, r, 503, "ja", NULL, P_FAILED);
		}
		return respond_page(h, c, r, 400, "ja", NULL, P_INVALID);
	}
	/* Already unsubscribed (by a mail client's one-click, the button,
	 * an admin): say so, rather than ask to stop what has stopped. */
	locale_of(h, id, locale, &already);
	return respond_page(h, c, r, 200, locale, token,
	    already ? P_ALREADY : P_CONFIRM);
}

static enum MHD_Result
answer_post(const struct httpd *h, struct MHD_Connection *c, struct req *r,
    const char *token)
{
	struct db *db = NULL;
	struct err e = ERR_INIT;
	int64_t id = 0;
	char locale[3] = "ja";
	enum MHD_Result ret;
	int rc;

	if (!token_is_bare(token))
		return respond_page(h, c, r, 400, "ja", NULL, P_INVALID);
	if ((rc = unsub_check(h->o.cfg, token, time(NULL), &id, &e)) < 0) {
		if (rc != -ERR_INVAL) {
			log_warnx("%s", e.msg);
			return respond_page(h, c, r, 503, "ja", NULL, P_FAILED);
		}
		return respond_page(h, c, r, 400, "ja", NULL, P_INVALID);
	}
	if (!r->one_click) {
		/* Not our form nor an RFC 8058 client: change nothing, and
		 * offer the button that does it right. */
		locale_of(h, id, locale, NULL);
		return respond_page(h, c, r, 400, locale, token, P_CONFIRM);
	}
	/* Durable before the page says it is done: the reader will not
	 * click again. */
	if ((rc = db_open(&db, h->o.cfg->db_path, 0, h->o.busy_ms, &e)) < 0 ||
	    (rc = db_durable(db, &e)) < 0 ||
	    (rc = unsub_apply(db, id, "one-click POST", time(NULL), NULL,
	    &e)) < 0) {
		log_warnx("unsubscribe of declarer %lld failed: %s",
		    (long long)id, e.msg);
		ret = respond_page(h, c, r, 503, "ja", NULL, P_FAILED);
		db_close(db);
		return ret;
	}
	if (rc == UNSUB_DONE)
		log_info("declarer %lld unsubscribed (one-click POST)",
		    (long long)id);
	else
		log_info("declarer %lld was already unsubscribed",
		    (long long)id);
	if (unsub_locale(db, id, locale, NULL, &e) < 0)
		snprintf(locale, sizeof(locale), "ja");
	db_close(db);
	return respond_page(h, c, r, 200, locale, token,
	    rc == UNSUB_DONE ? P_DONE : P_ALREADY);
}

struct framing {
	int	lengths;	/* Content-Length headers */
	int	chunked;	/* a Transfer-Encoding header */
};

static enum MHD_Result
framing_each(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct framing *fr = cls;

	(void)kind;
	(void)value;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		fr->lengths++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
		fr->chunked = 1;
	return MHD_YES;
}

/*
 * /healthz: ok when a click could be stored now, that is when the database
 * opens with the schema this samail knows.  A serve left running across an
 * upgrade's 'samail init' (the schema newer than it knows), a database
 * gone or unreadable: 503, with the reason logged when it starts (not on
 * every probe) and not told to whoever asks.
 */
static enum MHD_Result
answer_health(struct httpd *h, struct MHD_Connection *c, struct req *r)
{
	struct db *db = NULL;
	struct err e = ERR_INIT;
	int rc = db_open(&db, h->o.cfg->db_path, 0, h->o.busy_ms, &e);

	db_close(db);
	if (rc < 0) {
		if (!atomic_exchange(&h->unhealthy, 1))
			log_warnx("health check failed: %s", e.msg);
		return respond_text(h, c, r, 503, "not ok: unsubscribes cannot "
		    "be stored; see the log of samail serve\n", NULL, NULL);
	}
	if (atomic_exchange(&h->unhealthy, 0))
		log_info("health check: the database is usable again");
	return respond_text(h, c, r, 200, "ok\n", NULL, NULL);
}

/* The first call for a request: route, check limits, maybe answer. */
static enum MHD_Result
first_call(struct httpd *h, struct MHD_Connection *c, struct req *r,
    const char *url, const char *method)
{
	int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	unsigned char key[RL_KEYMAX];
	const char *cl, *ct;
	size_t keylen;
	unsigned wait;
	char secs[16];

	r->post = strcmp(method, "POST") == 0;
	if (strlen(url) > h->o.max_url)
		return respond_text(h, c, r, 414, "URI too long\n", NULL, NULL);
	if (strcmp(url, "/healthz") == 0)
		r->route = R_HEALTH;
	else if (strncmp(url, "/u/", 3) == 0)
		r->route = R_UNSUB;
	/* Everything but the health check counts against the client: a
	 * scanner walking paths is limited like one trying tokens. */
	if (r->route != R_HEALTH) {
		keylen = client_key(c, key);
		if ((wait = ratelimit_take(h->rl, key, keylen, mono_ms())) > 0) {
			snprintf(secs, sizeof(secs), "%u", wait);
			log_debug("rate limit: request refused for %us", wait);
			return respond_text(h, c, r, 429, "too many requests; "
			    "try again later\n", "Retry-After", secs);
		}
	}
	if (r->route == R_NONE)
		return respond_text(h, c, r, 404, "not found\n", NULL, NULL);
	if (r->route == R_HEALTH) {
		if (!get)
			return respond_text(h, c, r, 405, "method not allowed\n",
			    "Allow", "GET, HEAD");
		return MHD_YES;
	}
	if (!get && !r->post)
		return respond_text(h, c, r, 405, "method not allowed\n",
		    "Allow", "GET, HEAD, POST");
	/*
	 * Content-Length said twice, or with Transfer-Encoding: which one
	 * frames the body is ambiguous (RFC 9112 6.1, 6.3), and a proxy in
	 * front may have read the other one (request smuggling).
	 * libmicrohttpd takes one silently; refused here.
	 */
	{
		struct framing fr = { 0, 0 };

		MHD_get_connection_values(c, MHD_HEADER_KIND, framing_each,
		    &fr);
		if (fr.lengths > 1 || (fr.lengths > 0 && fr.chunked))
			return respond_text(h, c, r, 400, "bad request: the "
			    "body's length is given twice\n", "Connection",
			    "close");
	}
	/* Answered in the next call, once the request is complete: a
	 * response queued now would close the connection (keep-alive lost). */
	if (get)
		return MHD_YES;
	/* A declared length over the cap is refused before any is read. */
	cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl != NULL && strtoull(cl, NULL, 10) > h->o.max_body)
		return respond_text(h, c, r, 413, "request body too large\n",
		    NULL, NULL);
	/* libmicrohttpd's post processor reads both encodings RFC 8058
	 * allows; any other type gets no processor, so no one-click. */
	ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_CONTENT_TYPE);
	if (ct != NULL)
		r->pp = MHD_create_post_processor(c, 1024, post_each, r);
	return MHD_YES;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct httpd *h = cls;
	struct req *r = *con_cls;

	(void)version;
	if (r == NULL) {
		r = xcalloc(1, sizeof(*r));
		*con_cls = r;
		return first_call(h, c, r, url, method);
	}
	if (r->answered) {
		/* Answered early (413, 429, ...): drop the rest. */
		*upload_size = 0;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		/* A response cannot be queued while upload data is being
		 * handed over: an over-long body (chunked, so no
		 * Content-Length said so) is read and dropped up to a limit
		 * and answered 413 at its end; past the limit the
		 * connection is closed. */
		size_t size = *upload_size;

		r->body_len += size;
		*upload_size = 0;
		if (r->body_len > h->o.max_body) {
			r->too_big = 1;
			if (r->pp != NULL) {
				MHD_destroy_post_processor(r->pp);
				r->pp = NULL;
			}
			return r->body_len > DRAIN_MAX ? MHD_NO : MHD_YES;
		}
		if (r->pp != NULL &&
		    MHD_post_process(r->pp, upload, size) != MHD_YES) {
			MHD_destroy_post_processor(r->pp);
			r->pp = NULL;
		}
		return MHD_YES;
	}
	if (r->too_big)
		return respond_text(h, c, r, 413, "request body too large\n",
		    NULL, NULL);
	if (r->pp != NULL) {
		MHD_destroy_post_processor(r->pp);
		r->pp = NULL;
	}
	if (r->route == R_HEALTH)
		return answer_health(h, c, r);
	if (!r->post)
		return answer_get(h, c, r, url + 3);
	return answer_post(h, c, r, url + 3);
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (r == NULL)
		return;
	if (r->pp != NULL)
		MHD_destroy_post_processor(r->pp);
	free(r);
	*con_cls = NULL;
}

static void __attribute__((format(printf, 2, 0)))
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* "Error processing request (HTTP response code is 413 ('<html>
	 * ...</html>')). Closing connection.": the page it sent is no
	 * news in a log; the line keeps the code. */
	{
		char *page = strstr(msg, " ('<html>"), *end;

		if (page != NULL && (end = strstr(page, "</html>')")) != NULL)
			memmove(page, end + 9, strlen(end + 9) + 1);
		else if (page != NULL)
			strcpy(page, ")");	/* cut by msg's size */
	}
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_warnx("libmicrohttpd: %s", msg);
}

/* --- start and stop ---------------------------------------------------- */

/* Split "host:port" or "[v6]:port"; the port is 0 (any free one) to
 * 65535. */
static int
split_listen(const char *spec, char *host, size_t hostlen, char *port,
    size_t portlen, struct err *e)
{
	const char *colon;
	size_t n;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (close == NULL || close[1] != ':')
			goto bad;
		n = (size_t)(close - spec - 1);
		colon = close + 1;
		if (n == 0 || n >= hostlen)
			goto bad;
		memcpy(host, spec + 1, n);
	} else {
		if ((colon = strrchr(spec, ':')) == NULL)
			goto bad;
		n = (size_t)(colon - spec);
		if (n == 0 || n >= hostlen)
			goto bad;
		memcpy(host, spec, n);
	}
	host[n] = '\0';
	n = strlen(colon + 1);
	if (n == 0 || n > 5 || n >= portlen ||
	    strspn(colon + 1, "0123456789") != n || atol(colon + 1) > 65535)
		goto bad;
	memcpy(port, colon + 1, n + 1);
	return 0;
bad:
	return err_set(e, ERR_CONFIG, "listen address '%s' is not HOST:PORT "
	    "or [IPV6]:PORT with a port from 0 to 65535", spec);
}

int
httpd_check_listen(const char *spec, struct err *e)
{
	char host[256], port[16];

	return split_listen(spec, host, sizeof(host), port, sizeof(port), e);
}

/* "host:port" or "[v6]:port" into a bound, listening socket. */
static int
listen_on(const char *spec, int *fdp, char *shown, size_t shownlen,
    struct err *e)
{
	struct addrinfo hints, *res = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[256], port[16], num[INET6_ADDRSTRLEN];
	int fd = -1, one = 1, rc;

	if ((rc = split_listen(spec, host, sizeof(host), port, sizeof(port),
	    e)) < 0)
		return rc;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0)
		return err_set(e, ERR_CONFIG, "[unsubscribe] listen '%s': %s",
		    spec, gai_strerror(rc));
	if ((fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC,
	    res->ai_protocol)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    listen(fd, 128) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		rc = err_set(e, ERR_IO, "cannot listen on '%s': %s", spec,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return rc;
	}
	freeaddrinfo(res);
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, num, sizeof(num));
		snprintf(shown, shownlen, "[%s]:%u", num, ntohs(s6->sin6_port));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, num, sizeof(num));
		snprintf(shown, shownlen, "%s:%u", num, ntohs(s4->sin_port));
	}
	*fdp = fd;
	return 0;
}

/* form-action gets the origin of base_url: the form posts there, which
 * is this same page only when the page was reached through base_url. */
static char *
make_csp(const char *base_url)
{
	const char *p = strstr(base_url, "://");
	struct buf b = BUF_INIT(0);
	size_t n;

	buf_addstr(&b, "default-src 'none'; style-src 'unsafe-inline'; "
	    "img-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
	    "form-action 'self'");
	if (p != NULL) {
		n = (size_t)(p + 3 - base_url) + strcspn(p + 3, "/?#");
		/* Only characters an origin has: nothing that could end the
		 * directive or the header. */
		if (strspn(base_url, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:/[]") >= n) {
			buf_addch(&b, ' ');
			buf_add(&b, base_url, n);
		}
	}
	return buf_detach(&b, NULL);
}

/* Render both pages in both locales strictly, with every name set, so a
 * template typo stops `serve` at start rather than showing a blank. */
static int
probe_pages(const struct httpd *h, struct err *e)
{
	static const char *const locs[] = { "ja", "en" };
	static const char *const names[] = { "unsubscribe.html",
	    "unsubscribed.html" };
	struct buf out = BUF_INIT(PAGE_MAX);
	int rc = 0;

	for (size_t l = 0; l < 2 && rc == 0; l++)
		for (size_t n = 0; n < 2 && rc == 0; n++) {
			json_t *ctx = page_context(h, locs[l],
			    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", P_DONE);

			buf_reset(&out);
			rc = render_text(h->pages, locs[l], names[n], ctx, 1, 1,
			    &out, e);
			json_decref(ctx);
		}
	buf_release(&out);
	return rc;
}

int
httpd_start(struct httpd **out, const struct httpd_opts *o, struct err *e)
{
	static const char *const pages[] = { "unsubscribe.html",
	    "unsubscribed.html", NULL };
	struct httpd *h = xcalloc(1, sizeof(*h));
	json_t *snap = NULL;
	int64_t id;
	int rc;

	*out = NULL;
	h->o = *o;
	h->fd = -1;
	if (h->o.max_conns == 0)
		h->o.max_conns = 256;
	if (h->o.max_conns_per_ip == 0)
		h->o.max_conns_per_ip = 32;
	if (h->o.timeout_s == 0)
		h->o.timeout_s = 15;
	if (h->o.max_body == 0)
		h->o.max_body = 1024;
	if (h->o.max_url == 0)
		h->o.max_url = 512;
	if (h->o.rate_burst == 0)
		h->o.rate_burst = 60;
	if (h->o.rate_per_min == 0)
		h->o.rate_per_min = 60;

	/* The keys must be readable now: better to fail at start than to
	 * answer every click with 503.  A token of ours cannot be "AAA...". */
	rc = unsub_check(h->o.cfg, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	    time(NULL), &id, e);
	if (rc != -ERR_INVAL)
		goto fail;
	err_clear(e);
	/* The database must be there (`samail init`); it is opened again
	 * per request. */
	{
		struct db *db = NULL;

		if ((rc = db_open(&db, h->o.cfg->db_path, 0, h->o.busy_ms,
		    e)) < 0)
			goto fail;
		db_close(db);
	}
	if ((rc = render_snapshot(h->o.cfg->templates_dir, &snap, e)) < 0 ||
	    (rc = render_new(&h->pages, snap, NULL, pages, e)) < 0 ||
	    (rc = probe_pages(h, e)) < 0)
		goto fail;
	h->csp = make_csp(h->o.cfg->unsub_base_url);
	h->rl = ratelimit_new(h->o.rate_burst, h->o.rate_per_min);
	if ((rc = listen_on(h->o.listen, &h->fd, h->addr, sizeof(h->addr),
	    e)) < 0)
		goto fail;
	/*
	 * Listening on loopback means a reverse proxy in front (the
	 * documented set-up): every connection then comes from the proxy's
	 * address, so a per-address limit would be one limit for everyone.
	 * The rate limit still goes by the X-Forwarded-For client.
	 */
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		if (getsockname(h->fd, (struct sockaddr *)&ss, &sl) == 0 &&
		    is_loopback((struct sockaddr *)&ss))
			h->o.max_conns_per_ip = h->o.max_conns;
	}
	/*
	 * A thread per connection: a POST waiting for the database holds up
	 * only its own client.  With a pool of a few threads, each serving
	 * many connections, a few clicks waiting out a busy database stalled
	 * every other request (the GET pages, /healthz), and connections
	 * that waited longer than timeout_s were closed without an answer.
	 */
	h->d = MHD_start_daemon(MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG | MHD_USE_ITC, 0,
	    NULL, NULL, handle, h,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
	    MHD_OPTION_LISTEN_SOCKET, h->fd,
	    MHD_OPTION_CONNECTION_LIMIT, h->o.max_conns,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, h->o.max_conns_per_ip,
	    MHD_OPTION_CONNECTION_TIMEOUT, h->o.timeout_s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
	    MHD_OPTION_END);
	if (h->d == NULL) {
		rc = err_set(e, ERR_IO, "cannot start the HTTP server on '%s'",
		    h->addr);
		goto fail;
	}
	json_decref(snap);
	*out = h;
	return 0;
fail:
	json_decref(snap);
	httpd_stop(h);
	return rc;
}

const char *
httpd_address(const struct httpd *h)
{
	return h->addr;
}

void
httpd_stop(struct httpd *h)
{
	int fd;

	if (h == NULL)
		return;
	if (h->d != NULL) {
		/* Stop accepting first; the connections in progress end when
		 * the daemon stops. */
		fd = MHD_quiesce_daemon(h->d);
		MHD_stop_daemon(h->d);
		if (fd >= 0)
			close(fd);
	} else if (h->fd >= 0)
		close(h->fd);
	render_free(h->pages);
	ratelimit_free(h->rl);
	free(h->csp);
	free(h);
}
