/*
 * fetch — HTTP(S) with libcurl's easy interface; local files with open(2).
 * See fetch.h.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <idn2.h>

#include "err.h"
#include "fetch.h"
#include "text.h"
#include "xalloc.h"

#define DEFAULT_CONNECT_TIMEOUT	10
#define DEFAULT_TIMEOUT		60
#define MAX_VALIDATOR		512	/* ETag / Last-Modified we keep */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void
init_once_fn(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void
fetch_init(void)
{
	pthread_once(&init_once, init_once_fn);
}

int
fetch_is_local(const char *url)
{
	return url[0] == '/' || strncasecmp(url, "file:", 5) == 0;
}

/* The local path a file: URL or an absolute path names; caller frees.
 * NULL if it names none (a host other than localhost, a relative path). */
static char *
local_path(const char *url)
{
	CURLU *u;
	char *host = NULL, *path = NULL, *out = NULL;

	if (url[0] == '/')
		return xstrdup(url);
	if ((u = curl_url()) == NULL)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) ==
	    CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) ==
	    CURLUE_OK && path[0] == '/' && strlen(path) == strcspn(path, "\n\r")) {
		curl_url_get(u, CURLUPART_HOST, &host, 0);
		if (host == NULL || *host == '\0' ||
		    strcasecmp(host, "localhost") == 0)
			out = xstrdup(path);
	}
	curl_free(host);
	curl_free(path);
	curl_url_cleanup(u);
	return out;
}

/* The charset parameter of a Content-Type ("text/xml; charset=Shift_JIS"),
 * if it is a plausible encoding name; malloc'd, or NULL. */
static char *
content_charset(const char *ct)
{
	const char *p;
	size_t n;

	if (ct == NULL || (p = strcasestr(ct, "charset=")) == NULL)
		return NULL;
	p += 8;
	if (*p == '"')
		p++;
	n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-:");
	if (n == 0 || n > 40)
		return NULL;
	return xstrndup(p, n);
}

/*
 * url with an internationalised host name ("https://例え.jp/feed.rdf") in
 * its ASCII form (xn--...), as DNS and TLS need it; a copy of url when the
 * host is ASCII already.  u is url parsed, host its host.  libcurl
 * converts such a host only in a UTF-8 locale, which cron does not give
 * us.  NULL with e set if the host is no valid IDN.
 */
static char *
ascii_url(const char *url, CURLU *u, const char *host, struct err *e)
{
	char *ace = NULL, *full = NULL, *out = NULL;
	int rc;

	if (text_is_ascii(host, strlen(host)))
		return xstrdup(url);
	if ((rc = idn2_to_ascii_8z(host, &ace, IDN2_NFC_INPUT |
	    IDN2_NONTRANSITIONAL)) != IDN2_OK)
		err_set(e, ERR_INVAL, "feed URL '%.200s': the host name is not "
		    "a valid internationalised domain name (%s); check its "
		    "spelling", url, idn2_strerror(rc));
	else if (curl_url_set(u, CURLUPART_HOST, ace, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK)
		err_set(e, ERR_INVAL, "feed URL '%.200s': the host name '%s' "
		    "is not usable", url, ace);
	else
		out = xstrdup(full);
	idn2_free(ace);
	curl_free(full);
	return out;
}

/*
 * fetch_check_url(), and the URL to give libcurl into *ascii (may be
 * NULL): its host in ASCII form; NULL for a local file.
 */
static int
check_url(const char *url, const struct fetch_opts *o, char **ascii,
    struct err *e)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL, *path, *user = NULL, *out = NULL;
	int rc = 0;

	if (ascii != NULL)
		*ascii = NULL;
	if (*url == '\0' || strlen(url) > FETCH_MAX_URL)
		return err_set(e, ERR_INVAL, "feed URL must be 1 to %d bytes",
		    FETCH_MAX_URL);
	for (const unsigned char *p = (const unsigned char *)url; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return err_set(e, ERR_INVAL, "feed URL '%.200s' "
			    "contains white space or control characters", url);
	if (fetch_is_local(url)) {
		if (o == NULL || !o->allow_local)
			return err_set(e, ERR_INVAL, "feed URL '%.200s' names a "
			    "local file; set [feeds] allow_local_files = yes to "
			    "allow that", url);
		if ((path = local_path(url)) == NULL)
			return err_set(e, ERR_INVAL, "'%.200s' is not an "
			    "absolute local path or file:/// URL", url);
		free(path);
		return 0;
	}
	if ((u = curl_url()) == NULL)
		return err_set(e, ERR_SOFTWARE, "out of memory in libcurl");
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) !=
	    CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		rc = err_set(e, ERR_INVAL, "'%.200s' is not a URL", url);
	else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
		rc = err_set(e, ERR_INVAL, "feed URL '%.200s': only http and "
		    "https are fetched", url);
	else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK)
		/* Not echoed: it holds a password, and would be shown by
		 * feed list, in logs and in cron's mail. */
		rc = err_set(e, ERR_INVAL, "a feed URL with a user name or "
		    "password in it is refused (it would be shown in 'feed "
		    "list' and in logs); advisory feeds are public, give the "
		    "URL without them");
	else if ((out = ascii_url(url, u, host, e)) == NULL)
		rc = -e->code;
	if (ascii != NULL && rc == 0)
		*ascii = out;
	else
		free(out);
	curl_free(user);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

int
fetch_check_url(const char *url, const struct fetch_opts *o, struct err *e)
{
	return check_url(url, o, NULL, e);
}

/* --- the download ------------------------------------------------------ */

struct xfer {
	FILE		*out;
	size_t		 bytes;
	size_t		 max;
	long		 code;		/* status of the response now coming */
	int		 skipped;	/* an error response's body not read */
	int		 toobig;
	int		 ioerr;
	char		*etag;
	char		*last_modified;
	char		*location;	/* the last response's Location */
};

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;

	/* An error response's body (404, 503) is not the feed: never
	 * stored, nor held against the cap; its status is the answer. */
	if (x->code < 200 || x->code > 299) {
		x->skipped = 1;
		return 0;
	}
	/* The cap applies to what we store, after decompression: a server
	 * may send no Content-Length, a wrong one, or a gzip bomb. */
	if (len > x->max - x->bytes) {
		x->toobig = 1;
		return 0;
	}
	if (fwrite(data, 1, len, x->out) != len) {
		x->ioerr = errno ? errno : EIO;
		return 0;
	}
	x->bytes += len;
	return len;
}

/* A header value we may store and send back later: trimmed, printable,
 * bounded; NULL otherwise (a CR/LF in it would split our request). */
static char *
validator(const char *v, size_t n)
{
	char *s;

	while (n > 0 && (*v == ' ' || *v == '\t'))
		v++, n--;
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' ||
	    v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n == 0 || n > MAX_VALIDATOR)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] >= 0x7f)
			return NULL;
	s = xstrndup(v, n);
	return s;
}

static size_t
on_header(char *data, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;

	/* Each response (one per redirect) starts with its status line:
	 * keep only the final response's validators. */
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		const char *sp = memchr(data, ' ', len);

		free(x->etag);
		free(x->last_modified);
		free(x->location);
		x->etag = x->last_modified = x->location = NULL;
		x->code = sp != NULL && (size_t)(sp - data) + 4 <= len &&
		    isdigit((unsigned char)sp[1]) &&
		    isdigit((unsigned char)sp[2]) &&
		    isdigit((unsigned char)sp[3]) ? strtol(sp + 1, NULL, 10) :
		    0;
	} else if (len > 15 && strncasecmp(data, "Content-Length:", 15) == 0 &&
	    x->code >= 200 && x->code <= 299) {
		/*
		 * An honest length over the cap: stop before the body.  Our
		 * check, not CURLOPT_MAXFILESIZE: libcurl 7.88 applies that
		 * to every response's Content-Length, a redirect's (whose
		 * body it skips) and an error page's among them.
		 */
		const char *v = data + 15;

		while (v < data + len && (*v == ' ' || *v == '\t'))
			v++;
		errno = 0;
		if (v < data + len && isdigit((unsigned char)*v) &&
		    (strtoull(v, NULL, 10) > x->max || errno == ERANGE)) {
			x->toobig = 1;
			return 0;
		}
	} else if (len > 5 && strncasecmp(data, "ETag:", 5) == 0) {
		free(x->etag);
		x->etag = validator(data + 5, len - 5);
	} else if (len > 14 && strncasecmp(data, "Last-Modified:", 14) == 0) {
		free(x->last_modified);
		x->last_modified = validator(data + 14, len - 14);
	} else if (len > 9 && strncasecmp(data, "Location:", 9) == 0) {
		free(x->location);
		x->location = validator(data + 9, len - 9);
	}
	return len;
}

static int
fetch_local(const char *url, const struct fetch_opts *o, size_t max,
    struct fetch_result *r, struct err *e)
{
	struct stat sb;
	char *path;
	int fd, flags;

	if ((path = local_path(url)) == NULL)
		return err_set(e, ERR_INVAL, "'%.200s' is not an absolute "
		    "local path or file:/// URL", url);
	(void)o;
	/* O_NONBLOCK so that a FIFO cannot hang the run; checked below. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		int saved = errno;

		err_set(e, saved == ENOENT ? ERR_NOINPUT : ERR_IO,
		    "cannot open '%s': %s", path, strerror(saved));
		free(path);
		return -e->code;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		err_set(e, ERR_INVAL, "'%s' is not a regular file", path);
		free(path);
		return -ERR_INVAL;
	}
	if ((size_t)sb.st_size > max) {
		close(fd);
		err_set(e, ERR_TOOBIG, "'%s' is %lld bytes, over the %zu-byte "
		    "limit", path, (long long)sb.st_size, max);
		free(path);
		return -ERR_TOOBIG;
	}
	if ((flags = fcntl(fd, F_GETFL)) != -1)
		fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	if ((r->body = fdopen(fd, "r")) == NULL) {
		close(fd);
		err_set(e, ERR_IO, "'%s': %s", path, strerror(errno));
		free(path);
		return -ERR_IO;
	}
	r->status = 200;
	r->local = 1;
	r->bytes = (size_t)sb.st_size;
	r->effective_url = path;
	return 0;
}

/* Map a failed transfer to our classes and a message that says what to
 * do.  url is what the admin configured. */
static int
curl_failure(CURLcode cc, const char *url, const char *errbuf,
    const struct xfer *x, long timeout, size_t max, struct err *e)
{
	const char *detail = *errbuf ? errbuf : curl_easy_strerror(cc);

	if (x->toobig || cc == CURLE_FILESIZE_EXCEEDED)
		return err_set(e, ERR_TOOBIG, "'%s': the document is larger than "
		    "the %zu-byte limit; download aborted", url, max);
	if (x->ioerr)
		return err_set(e, ERR_IO, "'%s': cannot write the temporary "
		    "file: %s", url, strerror(x->ioerr));
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		return err_set(e, ERR_NET, "'%s': no complete answer within "
		    "%ld s (%s); will retry next run", url, timeout, detail);
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return err_set(e, ERR_NET, "'%s': cannot resolve the host name "
		    "(%s); check the URL and DNS", url, detail);
	case CURLE_COULDNT_CONNECT:
		return err_set(e, ERR_NET, "'%s': cannot connect (%s); will "
		    "retry next run", url, detail);
	case CURLE_UNSUPPORTED_PROTOCOL:
		/* libcurl gives no CURLINFO_REDIRECT_URL when it follows
		 * redirects itself: the refused target is the Location the
		 * last response named. */
		return err_set(e, ERR_NET, "'%s': redirected to '%.200s', which "
		    "is not http or https; refused (%s)", url,
		    x->location ? x->location : "?", detail);
	case CURLE_TOO_MANY_REDIRECTS:
		return err_set(e, ERR_NET, "'%s': more than %d redirects; "
		    "check the URL", url, FETCH_MAX_REDIRS);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		return err_set(e, ERR_NET, "'%s': TLS failed (%s); the server's "
		    "certificate must verify", url, detail);
	case CURLE_SSL_CONNECT_ERROR:
		/* No certificate seen yet: a port that does not speak TLS,
		 * no protocol version or cipher in common. */
		return err_set(e, ERR_NET, "'%s': TLS handshake failed (%s); "
		    "check that the server speaks https on that port, with a "
		    "TLS version and cipher this system allows", url,
		    detail);
	case CURLE_BAD_CONTENT_ENCODING:
		return err_set(e, ERR_PARSE, "'%s': the compressed body is "
		    "corrupt (%s)", url, detail);
	default:
		return err_set(e, ERR_NET, "'%s': %s; will retry next run",
		    url, detail);
	}
}

int
fetch_url(const char *url, const struct fetch_opts *o,
    const struct fetch_cond *cond, struct fetch_result *r, struct err *e)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	struct xfer x;
	CURL *c = NULL;
	CURLcode cc;
	char *h, *eff = NULL, *ascii;
	long connect_timeout, timeout, status = 0;
	size_t max;
	int rc;

	memset(r, 0, sizeof(*r));
	memset(&x, 0, sizeof(x));
	connect_timeout = o && o->connect_timeout > 0 ? o->connect_timeout :
	    DEFAULT_CONNECT_TIMEOUT;
	timeout = o && o->timeout > 0 ? o->timeout : DEFAULT_TIMEOUT;
	max = o && o->max_bytes > 0 ? o->max_bytes : FETCH_DEFAULT_MAX;

	if ((rc = check_url(url, o, &ascii, e)) < 0)
		return rc;
	if (fetch_is_local(url))
		return fetch_local(url, o, max, r, e);

	fetch_init();
	/* Anonymous: gone when closed or when we die. */
	if ((x.out = tmpfile()) == NULL) {
		free(ascii);
		return err_set(e, ERR_IO, "cannot create a temporary file: %s",
		    strerror(errno));
	}
	x.max = max;
	if ((c = curl_easy_init()) == NULL) {
		rc = err_set(e, ERR_SOFTWARE, "cannot initialise libcurl");
		goto out;
	}
	if (cond != NULL && cond->etag != NULL && *cond->etag != '\0' &&
	    (h = validator(cond->etag, strlen(cond->etag))) != NULL) {
		char *line = xasprintf("If-None-Match: %s", h);

		hdrs = curl_slist_append(hdrs, line);
		free(line);
		free(h);
	}
	if (cond != NULL && cond->last_modified != NULL &&
	    *cond->last_modified != '\0' && (h = validator(cond->last_modified,
	    strlen(cond->last_modified))) != NULL) {
		char *line = xasprintf("If-Modified-Since: %s", h);

		hdrs = curl_slist_append(hdrs, line);
		free(line);
		free(h);
	}

	curl_easy_setopt(c, CURLOPT_URL, ascii);
	/* http and https only, and the same after every redirect: a feed
	 * must never be able to redirect us to file://, ftp:// or gopher. */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)FETCH_MAX_REDIRS);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, connect_timeout);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (o != NULL && o->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
	curl_easy_setopt(c, CURLOPT_USERAGENT, o && o->user_agent ?
	    o->user_agent : FETCH_USER_AGENT);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);

	cc = curl_easy_perform(c);
	/* on_body() stopped at an error response's body: the status says
	 * what went wrong (below). */
	if (cc == CURLE_WRITE_ERROR && x.skipped)
		cc = CURLE_OK;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff);
	r->status = status;
	r->effective_url = xstrdup(eff != NULL ? eff : url);
	{
		char *ct = NULL;

		curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
		r->charset = content_charset(ct);
	}
	if (cc != CURLE_OK) {
		rc = curl_failure(cc, url, errbuf, &x, timeout, max, e);
		goto out;
	}
	if (status == 304) {
		r->not_modified = 1;
		/* A 304 may repeat or update the validators; keep the old
		 * ones when it does not. */
		r->etag = x.etag ? x.etag : (cond && cond->etag && *cond->etag ?
		    xstrdup(cond->etag) : NULL);
		r->last_modified = x.last_modified ? x.last_modified :
		    (cond && cond->last_modified && *cond->last_modified ?
		    xstrdup(cond->last_modified) : NULL);
		x.etag = x.last_modified = NULL;
		rc = 0;
		goto out;
	}
	if (status < 200 || status > 299) {
		rc = err_set(e, ERR_NET, "'%s': HTTP %ld%s", url, status,
		    status == 404 || status == 410 ? "; the feed is gone, "
		    "check its URL" : status == 401 || status == 403 ?
		    "; access refused" : "; will retry next run");
		goto out;
	}
	if (fflush(x.out) != 0 || fseek(x.out, 0, SEEK_SET) != 0) {
		rc = err_set(e, ERR_IO, "temporary file: %s", strerror(errno));
		goto out;
	}
	r->body = x.out;
	x.out = NULL;
	r->bytes = x.bytes;
	r->etag = x.etag;
	r->last_modified = x.last_modified;
	x.etag = x.last_modified = NULL;
	rc = 0;
out:
	free(ascii);
	free(x.location);
	if (x.out != NULL)
		fclose(x.out);
	free(x.etag);
	free(x.last_modified);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return rc;
}

void
fetch_result_release(struct fetch_result *r)
{
	if (r == NULL)
		return;
	if (r->body != NULL)
		fclose(r->body);
	free(r->etag);
	free(r->last_modified);
	free(r->effective_url);
	free(r->charset);
	memset(r, 0, sizeof(*r));
}
