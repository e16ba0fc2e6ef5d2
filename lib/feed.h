/*
 * feed — a streaming, hardened parser for advisory feeds.
 *
 * Reads RSS 1.0/RDF (IPA, JVN and JVN iPedia with the `sec:` module under
 * any http(s)://jvn.jp/rss/mod_sec/ namespace URI, MyJVN API responses),
 * RSS 2.0 and Atom 1.0, and hands each item to a callback as a normalised,
 * validated record, one at a time: memory does not grow with the size of
 * the document.
 *
 * Everything in a struct feed_item has been checked here, at the boundary,
 * so later modules can trust it:
 *   - text is valid UTF-8 with no control characters (C0, DEL, C1, bidi
 *     overrides); title and summary are one line (no CR/LF can reach a
 *     mail header), HTML stripped, entities decoded once, white space
 *     collapsed, each capped at FEED_MAX_* bytes;
 *   - links are absolute http(s) URLs of printable ASCII, else "";
 *   - CVE ids match ^CVE-[0-9]{4}-[0-9]{4,}$, sorted and unique;
 *   - dates are UTC time_t, 0 when the feed gave none that parses (a bad
 *     date never drops an item).
 *
 * Hostile input: no network, no external entities, no DTD loading, no
 * recover mode; a document whose DTD declares any entity is refused before
 * the entity can be used (XXE, billion laughs); a text node over
 * FEED_MAX_NODE bytes is refused like libxml2's own limit.  A document that
 * fails part-way has already delivered the items before the failure: the
 * caller stores inside a transaction and rolls back on error.
 */
#ifndef SAMAIL_FEED_H
#define SAMAIL_FEED_H

#include <stddef.h>
#include <time.h>

#include "products.h"		/* struct strlist */

struct err;

/* Caps, in bytes, on what one item may carry (longer text is cut at a
 * character boundary and ends in "…"; longer links and ids are dropped or
 * replaced, see feed.c). */
#define FEED_MAX_TITLE		1024
#define FEED_MAX_SUMMARY	16384	/* all of it is tagged; mail shows
					 * the first NL_SUMMARY_CHARS */
#define FEED_MAX_LINK		2048
#define FEED_MAX_ID		1024
#define FEED_MAX_IDENT		64
#define FEED_MAX_CPE		256
#define FEED_MAX_LIST		256	/* CVE ids or CPEs per item */
/* A single text node longer than this makes the document invalid
 * (libxml2's XML_MAX_TEXT_LENGTH, which its SAX interface does not apply). */
#define FEED_MAX_NODE		10000000

enum feed_format {
	FEED_UNKNOWN = 0,
	FEED_RSS1,		/* RSS 1.0 / RDF, incl. JVNRSS and MyJVN */
	FEED_RSS2,		/* RSS 0.91-2.0 */
	FEED_ATOM,		/* Atom 1.0, incl. MyJVN getAlertList */
};

struct feed_item {
	char		*id;		/* stable: guid, rdf:about, atom:id, else
					 * link, else "sha256:" of title+date */
	char		*ident;		/* JVN's own id (sec:identifier, or
					 * dc:identifier): "JVN#41385617"; "" */
	char		*title;		/* one line; may be "" */
	char		*link;		/* absolute http(s) URL, or "" */
	char		*summary;	/* one line of plain text, or "" */
	time_t		 published;	/* UTC; 0 = unknown */
	time_t		 updated;	/* UTC; = published when not given */
	struct strlist	 cves;		/* sorted, unique */
	double		 cvss;		/* base score 0.0-10.0; < 0 = none */
	char		*cvss_version;	/* "3.1", "3.0", "2.0", or "" */
	char		*cvss_vector;	/* "CVSS:3.0/AV:N/..." or "" */
	char		*severity;	/* "Critical", "High", "Medium", "Low",
					 * "None", or "" */
	struct strlist	 cpes;		/* "cpe:/a:vendor:product" (2.2) or
					 * "cpe:2.3:..." as given; unique */
};

/* What the document said about itself. */
struct feed_info {
	enum feed_format format;
	char		*title;		/* channel/feed title, cleaned; or NULL */
	size_t		 items;		/* items delivered */
	/* MyJVN API status (status:Status), when present: */
	int		 myjvn;		/* 1 if the document carried one */
	long		 myjvn_total;	/* totalRes */
	long		 myjvn_first;	/* firstRes */
	long		 myjvn_returned; /* totalResRet */
};

/* Called once per item, in document order.  The item and its strings
 * belong to the parser and are valid only during the call.  Return 0 to go
 * on, or -ERR_* (having filled your own struct err) to stop the parse,
 * which then returns that value. */
typedef int	(*feed_item_fn)(const struct feed_item *item, void *arg);

struct feed_opts {
	/* The document's URL (after redirects): relative links and xml:base
	 * resolve against it.  NULL: relative links become "". */
	const char	*base_url;
	/* The HTTP Content-Type's charset (RFC 7303), or NULL: used when the
	 * document names no encoding itself (no BOM, no encoding in its XML
	 * declaration); a declaration, even one the server contradicts,
	 * wins, as feeds that declare theirs are right far more often;
	 * unless the document is not valid in the encoding it declares and
	 * is in the server's (a multi-byte one: a single-byte charset takes
	 * any bytes, which proves nothing). */
	const char	*http_charset;
};

/*
 * Process-wide set-up, done once (pthread_once) and also implied by every
 * parse: initialises libxml2, installs an external entity loader that
 * refuses whatever a feed parse asks for (and any load with no parser
 * context), and maps the Japanese encoding names that feeds declare to the
 * supersets their servers really send (Shift_JIS -> CP932, EUC-JP ->
 * EUC-JP-MS: see docs/violations.md).  main() may call it early; calling
 * it again does nothing.
 */
void	 feed_init(void);

/*
 * Parse the document read from fd (from its current offset to EOF; the
 * caller keeps and closes fd) or held in mem[0..len), calling fn for each
 * item.  info (may be NULL) is filled; release it with feed_info_release().
 * Returns the number of items delivered (>= 0), or:
 *   -ERR_PARSE	 not well-formed, truncated, not a feed, DTD with entities,
 *		 a MyJVN error status; the message names the line
 *   -ERR_TOOBIG a text node over FEED_MAX_NODE
 *   -ERR_IO	 reading fd failed
 *   or whatever fn returned.
 */
int	 feed_parse_fd(int fd, const struct feed_opts *opts, feed_item_fn fn,
	    void *arg, struct feed_info *info, struct err *e);
int	 feed_parse_mem(const char *mem, size_t len, const struct feed_opts *opts,
	    feed_item_fn fn, void *arg, struct feed_info *info, struct err *e);

void	 feed_info_release(struct feed_info *info);

/* Deep copy of an item (for callers that keep items past the callback),
 * in one allocation: free with feed_item_free(), and change no pointer in
 * it. */
struct feed_item *feed_item_dup(const struct feed_item *item);
void	 feed_item_free(struct feed_item *item);

/*
 * Parse a feed date: ISO 8601 / RFC 3339 (with or without seconds,
 * fractions, or time; 'T' or space; '/' for '-'; one-digit month, day and
 * hour), RFC 822/2822 (weekday optional and not checked, 2- or 4-digit
 * year, seconds optional), RFC 850 (01-Apr-24), asctime and Java's
 * Date.toString() (Mon Apr 01 09:00:00 JST 2024).  Zones: +hhmm (a name
 * or a comment after it ignored), GMT+hhmm, and the names in feed.c's
 * table (RFC 822's, JST, KST, CET, AEST, ...).  A date or time without a
 * zone is Japan time.  0 and *t set, or -1 when s is not a date we can
 * trust (an unknown or ambiguous zone name among them).
 */
int	 feed_parse_date(const char *s, time_t *t);

/* "RSS 1.0", "RSS 2.0", "Atom", "unknown". */
const char *feed_format_name(enum feed_format f);

#endif
