/*
 * fetch — get a feed document over HTTP(S) with libcurl, or from a local
 * file when the configuration explicitly allows it.
 *
 * Remote: http and https only, also after redirects (at most
 * FETCH_MAX_REDIRS); TLS verification on; conditional GET (ETag /
 * Last-Modified; a 304 is "unchanged"); compressed transfer; connect and
 * total timeouts; a body cap enforced while downloading, on the
 * decompressed bytes (servers lie about Content-Length, and gzip bombs).
 * An internationalised host name is sent in its ASCII (xn--) form,
 * whatever the locale.
 * The body goes to an anonymous temporary file, not memory, so that the
 * streaming parser reads it with constant memory.
 *
 * Local: "file:///abs/path" or "/abs/path", only with allow_local set;
 * read directly with open(2), never through curl, so that no remote feed
 * (or redirect) can ever lead to a local file.
 *
 * Errors are classed for the exit status: -ERR_NET (unreachable: DNS,
 * refused, timeout, TLS, HTTP 4xx/5xx, too many redirects, a redirect to a
 * scheme other than http/https) -> 69; -ERR_TOOBIG (body over the cap)
 * and -ERR_PARSE (a broken compressed encoding) -> 65; -ERR_INVAL (the URL
 * itself is unusable) -> 65; -ERR_NOINPUT (local file missing) -> 66;
 * -ERR_IO (temporary file) -> 74.
 */
#ifndef SAMAIL_FETCH_H
#define SAMAIL_FETCH_H

#include <stddef.h>
#include <stdio.h>

struct err;

#define FETCH_MAX_REDIRS	5
#define FETCH_MAX_URL		2048
#define FETCH_DEFAULT_MAX	(20 * 1024 * 1024)

struct fetch_opts {
	long		 connect_timeout;	/* seconds; 0 = 10 */
	long		 timeout;		/* whole transfer; 0 = 60 */
	size_t		 max_bytes;		/* body cap; 0 = 20 MB */
	int		 allow_local;		/* [feeds] allow_local_files */
	const char	*user_agent;		/* NULL = FETCH_USER_AGENT */
	const char	*ca_file;		/* NULL = system store */
};

/* What the previous fetch of this feed returned (for conditional GET). */
struct fetch_cond {
	const char	*etag;			/* NULL or "" = none */
	const char	*last_modified;
};

struct fetch_result {
	long		 status;	/* HTTP status; 200 for a local file */
	int		 not_modified;	/* 1 on 304: body is NULL */
	FILE		*body;		/* the document, rewound; NULL on 304 */
	size_t		 bytes;		/* of the (decompressed) body */
	char		*etag;		/* validators to send next time; */
	char		*last_modified;	/* NULL when the server sent none */
	char		*effective_url;	/* after redirects (or the path) */
	int		 local;		/* 1 if read from a local file */
	char		*charset;	/* Content-Type's charset, checked; NULL */
};

/* "samail/VERSION (+URL)": names samail and a contact for feed admins. */
#ifndef SAMAIL_URL
#define SAMAIL_URL	"https://github.com/samail/samail"
#endif
#define FETCH_USER_AGENT "samail/" SAMAIL_VERSION " (+" SAMAIL_URL ")"

/*
 * Once per process, before any thread starts: curl_global_init().  main()
 * calls it; fetch_url() calls it too (idempotent, via pthread_once).
 */
void	 fetch_init(void);

/*
 * Fetch url into r (zeroed first).  cond may be NULL.  0 on success,
 * including 304 (r->not_modified); -ERR_* as above with a one-line message
 * naming the URL and, where it helps, what to do.  Whatever the result,
 * release r with fetch_result_release().
 */
int	 fetch_url(const char *url, const struct fetch_opts *opts,
	    const struct fetch_cond *cond, struct fetch_result *r,
	    struct err *e);
void	 fetch_result_release(struct fetch_result *r);

/* 1 if url names a local file ("file:///..." or "/..."), else 0. */
int	 fetch_is_local(const char *url);
/* 0 if url is acceptable as a feed URL under opts (http/https, or local
 * when allowed), else -ERR_INVAL with a message. */
int	 fetch_check_url(const char *url, const struct fetch_opts *opts,
	    struct err *e);

#endif
