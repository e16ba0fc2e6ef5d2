/*
 * advisory — the feed list and the advisories pulled from it.
 *
 * Feeds: rows of table feed, named by the admin; seeded once from
 * feeds/feeds.conf by `samail init`.
 *
 * Advisories: stored by (feed, stable id).  An item seen for the first
 * time is inserted and tagged; seen again unchanged, only last_seen moves;
 * changed (any of ident, title, link, summary, dates, CVEs, CVSS, CPEs),
 * it is updated, re-tagged and an advisory_change row names the fields
 * that changed.  An id that occurs twice in one document is stored as its
 * first occurrence.
 *
 * Fetching a feed (advisory_fetch) is: download (no transaction held),
 * then one transaction that stores every item and the feed's new state,
 * rolled back as a whole on any error (a feed that fails half-way stores
 * nothing), then, on failure, a second small transaction that records the
 * failure on the feed row (consecutive failures, last error, status).  A
 * 304 changes nothing but the feed's fetch time and status.  The new
 * ETag/Last-Modified are kept only when the document was stored, so a
 * document that failed is fetched in full again next time.
 *
 * Timestamps in the database are 'YYYY-MM-DDTHH:MM:SSZ' (UTC).
 */
#ifndef SAMAIL_ADVISORY_H
#define SAMAIL_ADVISORY_H

#include <stddef.h>
#include <time.h>

#include "fetch.h"

struct db;
struct err;
struct tagger;

#define ADVISORY_MAX_FEED_NAME	64

struct advisory_feed {
	long long	 id;
	char		*name;
	char		*url;
	int		 alert;		/* IPA 重要なセキュリティ情報 */
	char		*etag;		/* NULL if none */
	char		*last_modified;
	char		*last_fetch;	/* NULL: never fetched */
	char		*last_success;
	long		 last_status;	/* HTTP status; 0: none yet */
	long		 items;		/* items in the last stored document */
	long		 failures;	/* consecutive failed fetches */
	char		*last_error;	/* NULL after a success */
};

void	 advisory_feed_release(struct advisory_feed *f);

/* 0 if name is 1-64 of [A-Za-z0-9._-] starting with a letter or digit,
 * else -ERR_INVAL. */
int	 advisory_feed_name_check(const char *name, struct err *e);

/* Add a feed.  The URL must already have passed fetch_check_url().
 * 0, -ERR_EXISTS (name taken), -ERR_INVAL, -ERR_DB. */
int	 advisory_feed_add(struct db *db, const char *name, const char *url,
	    int alert, time_t now, struct err *e);
/* Remove a feed and its advisories.  0, -ERR_NOTFOUND, -ERR_DB. */
int	 advisory_feed_remove(struct db *db, const char *name, struct err *e);
/* Fill f (release with advisory_feed_release).  0, -ERR_NOTFOUND. */
int	 advisory_feed_get(struct db *db, const char *name,
	    struct advisory_feed *f, struct err *e);
/* Call fn for every feed in name order; stops at fn's first nonzero
 * return, which is returned.  -ERR_DB on a database error. */
int	 advisory_feed_each(struct db *db,
	    int (*fn)(const struct advisory_feed *, void *), void *arg,
	    struct err *e);
/* The feed as one JSON object (SPEC: name, url, last_fetch, last_status,
 * items, failures, last_error); caller frees. */
char	*advisory_feed_json(const struct advisory_feed *f);

/*
 * Add the feeds listed in path (INI: one [name] section per feed with
 * `url` and optional `alert = yes`) that are not there yet; a local path
 * in `url` that is relative is taken relative to path's directory.  Runs
 * in the caller's transaction.  The number added, or -ERR_NOINPUT,
 * -ERR_CONFIG (file:line), -ERR_DB.
 */
int	 advisory_seed_feeds(struct db *db, const char *path, time_t now,
	    struct err *e);

struct advisory_stats {
	size_t		 items;		/* in the document */
	size_t		 added, changed, unchanged;
	size_t		 duplicates;	/* an id seen again in the same
					 * document: the first one counts */
	int		 not_modified;	/* 304 */
	long		 status;
	size_t		 bytes;
	long		 myjvn_total;	/* MyJVN: results the query has */
	long		 myjvn_first;	/* ... the first one returned */
	long		 myjvn_returned; /* ... and how many (all pages) */
	int		 myjvn_pages;	/* pages fetched (advisory_fetch) */
	long		 myjvn_per_page; /* ... the first page's count */
	int		 myjvn_unpaged;	/* ... a page came not as asked */
	int		 gone;		/* removed while its pages came:
					   nothing stored (advisory_fetch) */
};

/*
 * What a fetch that went through (advisory_fetch() 0) has to tell the
 * admin of feed name: removed while its pages came (nothing stored), or
 * a MyJVN query with more results than were fetched (more than
 * MYJVN_MAX_PAGES pages, or a server that does not page).  1 with the
 * warning's line in buf, else 0.
 */
int	 advisory_notice(const char *name, const struct advisory_stats *st,
	    char *buf, size_t n);

struct advisory_fetch_opts {
	const struct fetch_opts	*fetch;
	const struct tagger	*tagger;	/* NULL: no product tags */
	time_t			 now;
};

/*
 * Fetch, parse, tag and store one feed as described above; stats (may be
 * NULL) says what happened.  0, or the fetch or parse error (-ERR_NET,
 * -ERR_PARSE, -ERR_TOOBIG, ...) with e naming the cause, after the failure
 * was recorded on the feed row; -ERR_DB if even that failed.
 */
int	 advisory_fetch(struct db *db, const struct advisory_feed *f,
	    const struct advisory_fetch_opts *o, struct advisory_stats *stats,
	    struct err *e);

/*
 * Parse the document on fd and store its items for feed_id, inside the
 * caller's transaction (advisory_fetch's building block; the caller rolls
 * back on error).  base_url resolves relative links; http_charset (or
 * NULL) is the server's charset for a document that names none.  The
 * number of items, or a parse or database error.
 */
int	 advisory_store_doc(struct db *db, long long feed_id, int fd,
	    const char *base_url, const char *http_charset,
	    const struct tagger *t, time_t now, struct advisory_stats *stats,
	    struct err *e);

struct advisory {
	long long	 rowid;
	const char	*feed;		/* feed name */
	const char	*guid;		/* the stable id */
	const char	*ident;		/* JVN#..., or NULL */
	const char	*title;
	const char	*link;		/* NULL if none */
	const char	*summary;
	const char	*published;	/* timestamps, or NULL */
	const char	*updated;
	const char	*cves;		/* "CVE-..,CVE-.." or "" */
	double		 cvss;		/* < 0: none */
	const char	*cvss_version;	/* NULL if none */
	const char	*cvss_vector;
	const char	*severity;
	const char	*cpes;		/* comma-separated */
	const char	*products;	/* comma-separated tags, sorted */
	const char	*first_seen;
	const char	*last_seen;
	int		 alert;		/* from the IPA alert feed */
};

struct advisory_filter {
	const char	*since;		/* timestamp: published (or first seen
					 * when undated) >= since; NULL: all */
	const char	*until;		/* ... < until; NULL: no bound */
	const char	*product;	/* a tag; NULL: any */
	const char	*feed;		/* a feed name; NULL: any */
};

/* Call fn for each advisory matching filter (may be NULL), newest first
 * (by published, else first seen).  The strings are valid during the call
 * only.  Stops at fn's first nonzero return, which is returned. */
int	 advisory_each(struct db *db, const struct advisory_filter *filter,
	    int (*fn)(const struct advisory *, void *), void *arg,
	    struct err *e);
/* One JSON object (SPEC: id, feed, title, link, published, updated,
 * summary, cves, cvss, severity, products); caller frees. */
char	*advisory_json(const struct advisory *a);

/* Recompute every advisory's product tags with t, in the caller's
 * transaction.  The number whose tags changed, or -ERR_DB. */
int	 advisory_retag(struct db *db, const struct tagger *t, struct err *e);

#endif
