/*
 * advisory — feeds and advisories in the database.  See advisory.h.
 */
#include <errno.h>
#include <ini.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "advisory.h"
#include "buf.h"
#include "date.h"
#include "db.h"
#include "err.h"
#include "feed.h"
#include "fetch.h"
#include "tag.h"
#include "text.h"
#include "xalloc.h"

/* ---------------------------------------------------------------------
 * Feeds
 */

#define FEED_COLS "id, name, url, alert, etag, last_modified, last_fetch, " \
	"last_success, last_status, items, failures, last_error"

void
advisory_feed_release(struct advisory_feed *f)
{
	if (f == NULL)
		return;
	free(f->name);
	free(f->url);
	free(f->etag);
	free(f->last_modified);
	free(f->last_fetch);
	free(f->last_success);
	free(f->last_error);
	memset(f, 0, sizeof(*f));
}

static void
feed_from_row(sqlite3_stmt *st, struct advisory_feed *f)
{
	memset(f, 0, sizeof(*f));
	f->id = sqlite3_column_int64(st, 0);
	f->name = db_column_dup(st, 1);
	f->url = db_column_dup(st, 2);
	f->alert = sqlite3_column_int(st, 3);
	f->etag = db_column_dup(st, 4);
	f->last_modified = db_column_dup(st, 5);
	f->last_fetch = db_column_dup(st, 6);
	f->last_success = db_column_dup(st, 7);
	f->last_status = sqlite3_column_int(st, 8);
	f->items = sqlite3_column_int(st, 9);
	f->failures = sqlite3_column_int(st, 10);
	f->last_error = db_column_dup(st, 11);
}

int
advisory_feed_name_check(const char *name, struct err *e)
{
	size_t n = strlen(name);

	if (n == 0 || n > ADVISORY_MAX_FEED_NAME)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') ||
		    (i > 0 && (c == '.' || c == '_' || c == '-'))))
			goto bad;
	}
	return 0;
bad:
	return err_set(e, ERR_INVAL, "feed name '%.80s' must be 1-%d letters, "
	    "digits, '.', '_' or '-', starting with a letter or digit", name,
	    ADVISORY_MAX_FEED_NAME);
}

int
advisory_feed_add(struct db *db, const char *name, const char *url,
    int alert, time_t now, struct err *e)
{
	static const char sql[] = "INSERT INTO feed (name, url, alert, created) "
	    "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING";
	sqlite3_stmt *st;
	char ts[32];
	int rc;

	if ((rc = advisory_feed_name_check(name, e)) < 0)
		return rc;
	date_format_timestamp(now, ts);
	if ((st = db_stmt(db, sql, e)) == NULL)
		return -e->code;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, url, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, alert != 0);
	sqlite3_bind_text(st, 4, ts, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_error(db, e, "add feed");
	if (sqlite3_changes(db->h) == 0)
		return err_set(e, ERR_EXISTS, "a feed named '%s' already exists; "
		    "remove it first or pick another name", name);
	return 0;
}

int
advisory_feed_remove(struct db *db, const char *name, struct err *e)
{
	sqlite3_stmt *st;

	/* advisory and advisory_change rows go with it (ON DELETE CASCADE). */
	if ((st = db_stmt(db, "DELETE FROM feed WHERE name = ?1", e)) == NULL)
		return -e->code;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_error(db, e, "remove feed");
	if (sqlite3_changes(db->h) == 0)
		return err_set(e, ERR_NOTFOUND, "no feed named '%s'; see 'samail "
		    "feed list'", name);
	return 0;
}

int
advisory_feed_get(struct db *db, const char *name, struct advisory_feed *f,
    struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	memset(f, 0, sizeof(*f));
	if ((st = db_stmt(db, "SELECT " FEED_COLS " FROM feed WHERE name = ?1",
	    e)) == NULL)
		return -e->code;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		feed_from_row(st, f);
		sqlite3_reset(st);
		return 0;
	}
	if (rc != SQLITE_DONE)
		return db_error(db, e, "read feed");
	return err_set(e, ERR_NOTFOUND, "no feed named '%s'; see 'samail feed "
	    "list'", name);
}

int
advisory_feed_each(struct db *db,
    int (*fn)(const struct advisory_feed *, void *), void *arg, struct err *e)
{
	sqlite3_stmt *st;
	struct advisory_feed *v = NULL;
	size_t n = 0;
	int rc = 0, step;

	/*
	 * Read the list first and finish the statement before calling fn:
	 * fn stores each feed in a transaction of its own, and the rollback
	 * of one broken feed would abort a SELECT still running here — and
	 * with it every feed after the broken one.
	 */
	if ((st = db_prepare(db, "SELECT " FEED_COLS " FROM feed ORDER BY name",
	    e)) == NULL)
		return -e->code;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		v = xreallocarray(v, n + 1, sizeof(*v));
		feed_from_row(st, &v[n++]);
	}
	if (step != SQLITE_DONE)
		rc = db_error(db, e, "list feeds");
	sqlite3_finalize(st);
	for (size_t i = 0; i < n; i++) {
		if (rc == 0)
			rc = fn(&v[i], arg);
		advisory_feed_release(&v[i]);
	}
	free(v);
	return rc;
}

static json_t *
jstr(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

char *
advisory_feed_json(const struct advisory_feed *f)
{
	json_t *o = json_object();
	char *out;

	json_object_set_new(o, "name", json_string(f->name));
	json_object_set_new(o, "url", json_string(f->url));
	json_object_set_new(o, "last_fetch", jstr(f->last_fetch));
	json_object_set_new(o, "last_status", f->last_status > 0 ?
	    json_integer(f->last_status) : json_null());
	json_object_set_new(o, "items", json_integer(f->items));
	json_object_set_new(o, "failures", json_integer(f->failures));
	json_object_set_new(o, "last_error", jstr(f->last_error));
	out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return out;
}

/* --- seeding ----------------------------------------------------------- */

struct seed {
	char	*name;
	char	*url;
	int	 alert;
	int	 line;
};

struct seedctx {
	struct seed	*v;
	size_t		 n;
	struct err	*e;
	int		 failed;
};

static int
seed_handler(void *arg, const char *section, const char *key,
    const char *value)
{
	struct seedctx *c = arg;
	struct seed *s;

	if (c->failed)
		return 0;
	if (c->n == 0 || strcmp(c->v[c->n - 1].name, section) != 0) {
		for (size_t i = 0; i < c->n; i++)
			if (strcmp(c->v[i].name, section) == 0) {
				err_set(c->e, ERR_CONFIG, "feed '%s' is listed "
				    "twice", section);
				goto fail;
			}
		if (advisory_feed_name_check(section, c->e) < 0) {
			c->e->code = ERR_CONFIG;
			goto fail;
		}
		c->v = xreallocarray(c->v, c->n + 1, sizeof(*c->v));
		memset(&c->v[c->n], 0, sizeof(c->v[c->n]));
		c->v[c->n++].name = xstrdup(section);
	}
	s = &c->v[c->n - 1];
	if (strcmp(key, "url") == 0) {
		free(s->url);
		s->url = xstrdup(value);
	} else if (strcmp(key, "alert") == 0) {
		if (strcasecmp(value, "yes") == 0 || strcmp(value, "1") == 0 ||
		    strcasecmp(value, "true") == 0)
			s->alert = 1;
		else if (strcasecmp(value, "no") == 0 || strcmp(value, "0") == 0 ||
		    strcasecmp(value, "false") == 0)
			s->alert = 0;
		else {
			err_set(c->e, ERR_CONFIG, "feed '%s': alert must be "
			    "yes or no, not '%s'", section, value);
			goto fail;
		}
	} else if (strcmp(key, "title") != 0) {
		/* title: a comment for humans, kept for readability. */
		err_set(c->e, ERR_CONFIG, "feed '%s': unknown key '%s' (known: "
		    "url, alert, title)", section, key);
		goto fail;
	}
	return 1;
fail:
	c->failed = 1;
	return 0;
}

/* url as stored: a relative local path is made absolute against dir. */
static char *
seed_url(const char *url, const char *dir)
{
	if (strncasecmp(url, "http://", 7) == 0 ||
	    strncasecmp(url, "https://", 8) == 0 || fetch_is_local(url) ||
	    strchr(url, ':') != NULL)
		return xstrdup(url);
	return xasprintf("%s/%s", dir, url);
}

int
advisory_seed_feeds(struct db *db, const char *path, time_t now,
    struct err *e)
{
	struct seedctx c = { NULL, 0, e, 0 };
	struct fetch_opts fo = { .allow_local = 1 };
	char *copy, dir[PATH_MAX], *url;
	FILE *fp;
	int line, rc = 0, added = 0;

	if ((fp = fopen(path, "r")) == NULL)
		return err_set(e, ERR_NOINPUT, "cannot open the feed list '%s': "
		    "%s (set [feeds] seed)", path, strerror(errno));
	line = ini_parse_file(fp, seed_handler, &c);
	fclose(fp);
	if (line != 0) {
		if (!c.failed)
			err_set(e, ERR_CONFIG, "syntax error");
		err_prefix(e, "%s:%d", path, line);
		rc = -ERR_CONFIG;
		goto out;
	}
	copy = xstrdup(path);
	if (realpath(dirname(copy), dir) == NULL)
		snprintf(dir, sizeof(dir), "%s", ".");
	free(copy);
	for (size_t i = 0; i < c.n; i++) {
		if (c.v[i].url == NULL) {
			rc = err_set(e, ERR_CONFIG, "%s: feed '%s' has no url",
			    path, c.v[i].name);
			goto out;
		}
		url = seed_url(c.v[i].url, dir);
		/* Syntax only: whether local files may be fetched is the
		 * config's business at fetch time. */
		if ((rc = fetch_check_url(url, &fo, e)) < 0) {
			free(url);
			err_prefix(e, "%s: feed '%s'", path, c.v[i].name);
			rc = -ERR_CONFIG;
			e->code = ERR_CONFIG;
			goto out;
		}
		rc = advisory_feed_add(db, c.v[i].name, url, c.v[i].alert, now, e);
		free(url);
		if (rc == -ERR_EXISTS)
			rc = 0;		/* kept as the admin left it */
		else if (rc < 0)
			goto out;
		else
			added++;
	}
	rc = added;
out:
	for (size_t i = 0; i < c.n; i++) {
		free(c.v[i].name);
		free(c.v[i].url);
	}
	free(c.v);
	return rc;
}

/* ---------------------------------------------------------------------
 * Storing a document
 */

struct store {
	struct db		*db;
	long long		 feed_id;
	const struct tagger	*tagger;
	char			 now[32];
	struct advisory_stats	*stats;
	struct err		*e;
	struct buf		 changed;
	EVP_MD_CTX		*mdctx;
	EVP_MD			*md;
	long long		 start_rowid;	/* rows above: new in this doc */
	int			 any_shared;	/* temp.advisory_shared not empty */
};

/* What the content hash and the change report are made of. */
enum { C_IDENT, C_TITLE, C_LINK, C_SUMMARY, C_PUBLISHED, C_UPDATED, C_CVES,
	C_CVSS, C_CVSS_VERSION, C_CVSS_VECTOR, C_SEVERITY, C_CPES, C__N };

static const char *const col_name[C__N] = {
	"ident", "title", "link", "summary", "published", "updated", "cves",
	"cvss", "cvss_version", "cvss_vector", "severity", "cpes",
};

/* "" -> NULL: optional columns hold NULL, not empty strings. */
static const char *
opt(const char *s)
{
	return s != NULL && *s != '\0' ? s : NULL;
}

/* The content hash (hex SHA-256) of the fields v (len[i] bytes each), with
 * a context and digest fetched once per document: OpenSSL 3 looks the
 * algorithm up again on every EVP_sha256() init otherwise, which a 50 MB
 * feed notices. */
static void
content_hash(EVP_MD_CTX *c, const EVP_MD *md, const char *const *v,
    const size_t *len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;

	if (EVP_DigestInit_ex2(c, md, NULL) != 1) {
		fprintf(stderr, "samail: sha256 failed\n");
		abort();
	}
	for (int i = 0; i < C__N; i++) {
		/* The separator cannot occur in validated text (a control
		 * character), so different fields never hash alike. */
		if (v[i] != NULL)
			EVP_DigestUpdate(c, v[i], len[i]);
		EVP_DigestUpdate(c, "\x1f", 1);
	}
	EVP_DigestFinal_ex(c, d, &dlen);
	for (unsigned i = 0; i < 32 && i < dlen; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[64] = '\0';
}

/* Bind field v (len bytes, NULL as NULL) for one sqlite3_step(): the
 * length is known, and the text outlives the step, so SQLite neither
 * measures nor copies it. */
static void
bind_field(sqlite3_stmt *st, int idx, const char *v, size_t len)
{
	if (v == NULL)
		sqlite3_bind_null(st, idx);
	else
		sqlite3_bind_text(st, idx, v, (int)len, SQLITE_STATIC);
}

static int
same(const unsigned char *a, const char *b)
{
	const char *x = a != NULL ? (const char *)a : "";

	return strcmp(x, b != NULL ? b : "") == 0;
}

/* Run a statement with ?1 = a, ?2 = b, ?3 = c (those it has): 0 or
 * -ERR_DB. */
static int
run_ids(struct store *s, const char *sql, long long a, long long b,
    const char *c)
{
	sqlite3_stmt *st = db_stmt(s->db, sql, s->e);

	if (st == NULL)
		return -s->e->code;
	sqlite3_bind_int64(st, 1, a);
	sqlite3_bind_int64(st, 2, b);
	if (c != NULL)
		sqlite3_bind_text(st, 3, c, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_error(s->db, s->e, "store advisory");
	return 0;
}

/*
 * Row r (this document's first item under a shared id) becomes row e,
 * the one stored under its link: e takes r's content (a change recorded
 * when it differs, as a fetch would), r goes.  Returns 1 if e changed, 0
 * if not, or -ERR_DB.
 */
static int
merge_row(struct store *s, long long r, long long e)
{
	static const char cols[] =
	    "SELECT id, hash, ident, title, link, summary, published, updated, "
	    "cves, cvss, cvss_version, cvss_vector, severity, cpes "
	    "FROM advisory WHERE id = ?1 OR id = ?2";
	sqlite3_stmt *st = db_prepare(s->db, cols, s->e);
	char *v[2][C__N + 1] = { { 0 } };
	int rc = 0, changed;

	if (st == NULL)
		return -s->e->code;
	sqlite3_bind_int64(st, 1, r);
	sqlite3_bind_int64(st, 2, e);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int w = sqlite3_column_int64(st, 0) == r ? 0 : 1;

		for (int i = 0; i <= C__N; i++) {
			const unsigned char *t = sqlite3_column_text(st, 1 + i);

			free(v[w][i]);
			v[w][i] = xstrdup(t != NULL ? (const char *)t : "");
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		rc = db_error(s->db, s->e, "read advisory");
		goto out;
	}
	changed = v[0][0] == NULL || v[1][0] == NULL ||
	    strcmp(v[0][0], v[1][0]) != 0;
	if ((rc = run_ids(s, "INSERT OR IGNORE INTO temp.advisory_seen (id) "
	    "VALUES (?1)", e, 0, NULL)) < 0)
		goto out;
	if (!changed)
		rc = run_ids(s, "UPDATE advisory SET last_seen = ?3 WHERE "
		    "id = ?1", e, 0, s->now);
	else {
		buf_reset(&s->changed);
		for (int i = 0; i < C__N && v[0][0] && v[1][0]; i++)
			if (strcmp(v[0][1 + i], v[1][1 + i]) != 0)
				buf_addf(&s->changed, "%s%s", s->changed.len ?
				    "," : "", col_name[i]);
		if ((rc = run_ids(s, "UPDATE advisory SET (ident, title, link, "
		    "summary, published, updated, cves, cvss, cvss_version, "
		    "cvss_vector, severity, cpes, products, hash, last_seen) = "
		    "(SELECT ident, title, link, summary, published, updated, "
		    "cves, cvss, cvss_version, cvss_vector, severity, cpes, "
		    "products, hash, ?3 FROM advisory WHERE id = ?2) "
		    "WHERE id = ?1", e, r, s->now)) < 0)
			goto out;
		if ((st = db_stmt(s->db, "INSERT INTO advisory_change "
		    "(advisory_id, changed, fields) VALUES (?1, ?2, ?3)",
		    s->e)) == NULL) {
			rc = -s->e->code;
			goto out;
		}
		sqlite3_bind_int64(st, 1, e);
		sqlite3_bind_text(st, 2, s->now, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, s->changed.len ? buf_str(&s->changed) :
		    "hash", -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE) {
			rc = db_error(s->db, s->e, "record advisory change");
			goto out;
		}
		rc = 0;
	}
	if (rc == 0 && (rc = run_ids(s, "DELETE FROM advisory WHERE id = ?1",
	    r, 0, NULL)) == 0)
		rc = changed;
out:
	for (int w = 0; w < 2; w++)
		for (int i = 0; i <= C__N; i++)
			free(v[w][i]);
	return rc;
}

/* Has this document stored row id already (made it, or seen it)?  1, 0
 * or -ERR_DB. */
static int
touched(struct store *s, long long id)
{
	sqlite3_stmt *st;
	int rc;

	if (id > s->start_rowid)
		return 1;
	if ((st = db_stmt(s->db, "SELECT 1 FROM temp.advisory_seen WHERE "
	    "id = ?1", s->e)) == NULL)
		return -s->e->code;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(s->db, s->e, "read advisory");
	return rc == SQLITE_ROW;
}

static int store_one(struct store *, const struct feed_item *, const char *);

/*
 * An id that two items of this document carry with different links (a
 * broken WordPress plugin writes <guid isPermaLink="false">0</guid> on
 * every item) identifies neither: each is stored under its link, also
 * the first (row r, stored under the id before the second came), so
 * that an item keeps its record whatever its place in the feed.  The id
 * is noted: later items with it go straight to their links.
 */
static int
store_shared(struct store *s, const struct feed_item *it, const char *products,
    long long r, const char *first_link)
{
	struct feed_item alt = *it;
	sqlite3_stmt *st;
	long long e = 0;
	int rc;

	if ((st = db_stmt(s->db, "INSERT OR IGNORE INTO temp.advisory_shared "
	    "(guid) VALUES (?1)", s->e)) == NULL)
		return -s->e->code;
	sqlite3_bind_text(st, 1, it->id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_error(s->db, s->e, "note advisory");
	s->any_shared = 1;

	/* The first item, to its link. */
	if ((st = db_stmt(s->db, "SELECT id FROM advisory WHERE feed_id = ?1 "
	    "AND guid = ?2", s->e)) == NULL)
		return -s->e->code;
	sqlite3_bind_int64(st, 1, s->feed_id);
	sqlite3_bind_text(st, 2, first_link, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		e = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(s->db, s->e, "read advisory");
	if (e == 0) {
		if ((rc = run_ids(s, "UPDATE advisory SET guid = ?3 WHERE "
		    "id = ?1", r, 0, first_link)) < 0)
			return rc;
	} else if (e != r && r > s->start_rowid &&
	    (rc = touched(s, e)) != 0) {
		/* Under its link, an earlier item of this document is
		 * stored already: it wins, as for an id repeated in one
		 * document (merged, this one overwrote it, and a refetch
		 * wrote the earlier back: two changes every fetch). */
		if (rc < 0)
			return rc;
		if ((rc = run_ids(s, "DELETE FROM advisory WHERE id = ?1",
		    r, 0, NULL)) < 0)
			return rc;
		s->stats->added--;
		s->stats->duplicates++;
	} else if (e != r) {
		/* Known under its link (an earlier fetch): the row this
		 * document made for it goes, and it counts as seen again.
		 * (e == r: the first item's id is its link, so it is under
		 * its link already; merged into itself it was deleted.) */
		if ((rc = merge_row(s, r, e)) < 0)
			return rc;
		if (r > s->start_rowid) {
			s->stats->added--;
			if (rc)
				s->stats->changed++;
			else
				s->stats->unchanged++;
		}
	}

	/* This item, to its link. */
	alt.id = it->link;
	return store_one(s, &alt, products);
}

/* Is id one that items of this document share (store_shared)? */
static int
is_shared(struct store *s, const char *id)
{
	sqlite3_stmt *st;
	int rc;

	if (!s->any_shared)
		return 0;
	if ((st = db_stmt(s->db, "SELECT 1 FROM temp.advisory_shared WHERE "
	    "guid = ?1", s->e)) == NULL)
		return -s->e->code;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(s->db, s->e, "read advisory");
	return rc == SQLITE_ROW;
}

/* Store one parsed item with its product tags ("a,b"), in the caller's
 * transaction. */
static int
store_one(struct store *s, const struct feed_item *it, const char *products)
{
	static const char ins[] =
	    "INSERT INTO advisory (feed_id, guid, ident, title, link, summary, "
	    "published, updated, cves, cvss, cvss_version, cvss_vector, "
	    "severity, cpes, products, hash, first_seen, last_seen) VALUES "
	    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
	    "?16, ?17, ?17) ON CONFLICT (feed_id, guid) DO NOTHING";
	static const char sel[] =
	    "SELECT id, hash, ident, title, link, summary, published, updated, "
	    "cves, cvss, cvss_version, cvss_vector, severity, cpes "
	    "FROM advisory WHERE feed_id = ?1 AND guid = ?2";
	static const char seen[] =
	    "UPDATE advisory SET last_seen = ?2 WHERE id = ?1";
	static const char upd[] =
	    "UPDATE advisory SET ident = ?2, title = ?3, link = ?4, summary = ?5,"
	    " published = ?6, updated = ?7, cves = ?8, cvss = ?9, "
	    "cvss_version = ?10, cvss_vector = ?11, severity = ?12, cpes = ?13,"
	    " products = ?14, hash = ?15, last_seen = ?16 WHERE id = ?1";
	static const char chg[] =
	    "INSERT INTO advisory_change (advisory_id, changed, fields) "
	    "VALUES (?1, ?2, ?3)";
	struct db *db = s->db;
	sqlite3_stmt *st, *known = NULL;
	const char *v[C__N];
	size_t len[C__N];
	char pub[32], upd_ts[32], cvss[16], hash[65];
	char *cves, *cpes;
	long long id;
	int rc = 0, dup = 0;

	/* An id items of this document share: the link identifies. */
	if (*it->link != '\0' && strcmp(it->id, it->link) != 0 &&
	    (rc = is_shared(s, it->id)) != 0) {
		struct feed_item alt = *it;

		if (rc < 0)
			return rc;
		alt.id = it->link;
		return store_one(s, &alt, products);
	}

	cves = tag_join(&it->cves);
	cpes = tag_join(&it->cpes);
	if (it->published != 0)
		date_format_timestamp(it->published, pub);
	if (it->updated != 0)
		date_format_timestamp(it->updated, upd_ts);
	if (it->cvss >= 0)
		snprintf(cvss, sizeof(cvss), "%.1f", it->cvss);
	v[C_IDENT] = opt(it->ident);
	v[C_TITLE] = it->title;
	v[C_LINK] = opt(it->link);
	v[C_SUMMARY] = opt(it->summary);
	v[C_PUBLISHED] = it->published ? pub : NULL;
	v[C_UPDATED] = it->updated ? upd_ts : NULL;
	v[C_CVES] = cves;
	v[C_CVSS] = it->cvss >= 0 ? cvss : NULL;
	v[C_CVSS_VERSION] = opt(it->cvss_version);
	v[C_CVSS_VECTOR] = opt(it->cvss_vector);
	v[C_SEVERITY] = opt(it->severity);
	v[C_CPES] = cpes;
	for (int i = 0; i < C__N; i++)
		len[i] = v[i] != NULL ? strlen(v[i]) : 0;
	content_hash(s->mdctx, s->md, v, len, hash);

	/* Insert first: in the common first fetch that is one statement. */
	if ((st = db_stmt(db, ins, s->e)) == NULL)
		goto dberr;
	sqlite3_bind_int64(st, 1, s->feed_id);
	sqlite3_bind_text(st, 2, it->id, -1, SQLITE_STATIC);
	for (int i = 0; i < C__N; i++) {
		if (i == C_CVSS && it->cvss >= 0)
			sqlite3_bind_double(st, 3 + i, it->cvss);
		else
			bind_field(st, 3 + i, v[i], len[i]);
	}
	sqlite3_bind_text(st, 15, products, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 16, hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 17, s->now, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_error(db, s->e, "store advisory");
		goto out;
	}
	if (sqlite3_changes(db->h) > 0) {
		s->stats->added++;
		goto out;
	}

	/* Known: unchanged, or changed. */
	if ((st = known = db_stmt(db, sel, s->e)) == NULL)
		goto dberr;
	sqlite3_bind_int64(st, 1, s->feed_id);
	sqlite3_bind_text(st, 2, it->id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = db_error(db, s->e, "read advisory");
		goto out;
	}
	id = sqlite3_column_int64(st, 0);
	/*
	 * The same id twice in one document: the first occurrence wins.
	 * Otherwise a feed that repeats an item with other content would
	 * "change" it back and forth on every fetch.  A row inserted by this
	 * document has a rowid above start_rowid; an older row is noted in
	 * a temporary table the first time this document touches it.
	 */
	if (id > s->start_rowid)
		dup = 1;
	else {
		sqlite3_stmt *mark = db_stmt(db, "INSERT OR IGNORE INTO "
		    "temp.advisory_seen (id) VALUES (?1)", s->e);

		if (mark == NULL)
			goto dberr;
		sqlite3_bind_int64(mark, 1, id);
		if (sqlite3_step(mark) != SQLITE_DONE) {
			rc = db_error(db, s->e, "note advisory");
			goto out;
		}
		dup = sqlite3_changes(db->h) == 0;
	}
	if (dup) {
		const unsigned char *l = sqlite3_column_text(known, 4);

		/* Another item under the same id: the same one (its link
		 * too) collapses; one with another link is another item. */
		if (l != NULL && *l != '\0' && *it->link != '\0' &&
		    strcmp((const char *)l, it->link) != 0 &&
		    strcmp(it->id, it->link) != 0) {
			char *first = xstrdup((const char *)l);

			sqlite3_reset(known);
			known = NULL;
			rc = store_shared(s, it, products, id, first);
			free(first);
			goto out;
		}
		s->stats->duplicates++;
		goto out;
	}
	if (same(sqlite3_column_text(st, 1), hash)) {
		s->stats->unchanged++;
		if ((st = db_stmt(db, seen, s->e)) == NULL)
			goto dberr;
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, s->now, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = db_error(db, s->e, "update advisory");
		goto out;
	}
	buf_reset(&s->changed);
	for (int i = 0; i < C__N; i++) {
		int differs;

		if (i == C_CVSS)
			differs = sqlite3_column_type(st, 2 + i) == SQLITE_NULL ?
			    it->cvss >= 0 : (it->cvss < 0 || fabs(
			    sqlite3_column_double(st, 2 + i) - it->cvss) > 1e-9);
		else
			differs = !same(sqlite3_column_text(st, 2 + i), v[i]);
		if (differs)
			buf_addf(&s->changed, "%s%s", s->changed.len ? "," : "",
			    col_name[i]);
	}
	s->stats->changed++;
	if ((st = db_stmt(db, upd, s->e)) == NULL)
		goto dberr;
	sqlite3_bind_int64(st, 1, id);
	for (int i = 0; i < C__N; i++) {
		if (i == C_CVSS && it->cvss >= 0)
			sqlite3_bind_double(st, 2 + i, it->cvss);
		else
			bind_field(st, 2 + i, v[i], len[i]);
	}
	sqlite3_bind_text(st, 14, products, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 15, hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 16, s->now, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_error(db, s->e, "update advisory");
		goto out;
	}
	if ((st = db_stmt(db, chg, s->e)) == NULL)
		goto dberr;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, s->now, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, s->changed.len ? buf_str(&s->changed) : "hash",
	    -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(db, s->e, "record advisory change");
	goto out;
dberr:
	rc = -s->e->code;
out:
	/* A cached SELECT left on its row keeps a read snapshot open past
	 * COMMIT: the WAL cannot be checkpointed behind it, and the next
	 * BEGIN IMMEDIATE on this connection fails at once (SQLITE_BUSY,
	 * no busy timeout) if another process committed meanwhile. */
	if (known != NULL)
		sqlite3_reset(known);
	free(cves);
	free(cpes);
	return rc;
}

/* The product tags of an item, joined; caller frees. */
static char *
item_tags(const struct tagger *t, const struct feed_item *it)
{
	struct strlist tags = { 0 };
	char *s;

	if (t != NULL)
		tag_match(t, it->title, it->summary, &it->cpes, &tags);
	s = tag_join(&tags);
	strlist_release(&tags);
	return s;
}

/* The single-threaded path: parse callback that stores directly. */
static int
store_item(const struct feed_item *it, void *arg)
{
	struct store *s = arg;
	char *products = item_tags(s->tagger, it);
	int rc = store_one(s, it, products);

	free(products);
	return rc;
}

/*
 * A big document is parsed and tagged on a worker thread while this
 * thread stores: libxml2 and SQLite then work at the same time, which
 * roughly halves the time a 50 MB feed takes (make bench).  The worker
 * owns the libxml2 parse; this thread owns the database connection.  A
 * bounded ring hands items over, so memory stays flat.
 */
#define PIPE_N	256
/* The store, waiting on an empty ring, is woken when this many items are
 * in it (or the parse is over): woken for the first, it took that one
 * item and waited again, a sleep and a wake-up (two context switches)
 * per item or two whenever it kept up, which it mostly does. */
#define PIPE_WAKE 32

struct pipe {
	pthread_mutex_t	 mu;
	pthread_cond_t	 can_put, can_get;
	struct feed_item *item[PIPE_N];
	char		*tags[PIPE_N];
	size_t		 head, n;
	int		 done;		/* the parse has finished */
	int		 stop;		/* storing failed: parse no further */
	int		 parse_rc;
	struct err	 perr;		/* the parse's error */
	/* the worker's inputs */
	int		 fd;
	struct feed_opts fo;
	const struct tagger *tagger;
	struct feed_info info;
};

static int
pipe_put(const struct feed_item *it, void *arg)
{
	struct pipe *p = arg;
	struct feed_item *copy = feed_item_dup(it);
	char *tags = item_tags(p->tagger, it);

	pthread_mutex_lock(&p->mu);
	while (p->n == PIPE_N && !p->stop)
		pthread_cond_wait(&p->can_put, &p->mu);
	if (p->stop) {
		pthread_mutex_unlock(&p->mu);
		feed_item_free(copy);
		free(tags);
		/* The store's error is the one reported; this only stops. */
		return err_set(&p->perr, ERR_SOFTWARE, "stopped");
	}
	p->item[(p->head + p->n) % PIPE_N] = copy;
	p->tags[(p->head + p->n) % PIPE_N] = tags;
	/* Wake the store only when it may be waiting and has a batch to
	 * take: a wake-up per item costs more than the item. */
	if (++p->n == PIPE_WAKE)
		pthread_cond_signal(&p->can_get);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

static void *
pipe_parse(void *arg)
{
	struct pipe *p = arg;
	int rc = feed_parse_fd(p->fd, &p->fo, pipe_put, p, &p->info, &p->perr);

	pthread_mutex_lock(&p->mu);
	p->parse_rc = rc;
	p->done = 1;
	pthread_cond_signal(&p->can_get);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Store what the worker parses; returns the parse's result or the first
 * store error. */
static int
store_pipelined(struct store *s, struct pipe *p, pthread_t th)
{
	struct feed_item *it[PIPE_N];
	char *tags[PIPE_N];
	size_t n;
	int rc = 0, last = 0;

	while (!last) {
		/* Take everything there is in one go. */
		pthread_mutex_lock(&p->mu);
		while (p->n == 0 && !p->done)
			pthread_cond_wait(&p->can_get, &p->mu);
		n = p->n;
		for (size_t i = 0; i < n; i++) {
			it[i] = p->item[(p->head + i) % PIPE_N];
			tags[i] = p->tags[(p->head + i) % PIPE_N];
		}
		p->head = (p->head + n) % PIPE_N;
		p->n = 0;
		last = p->done;
		if (rc < 0)
			p->stop = 1;
		pthread_cond_signal(&p->can_put);
		pthread_mutex_unlock(&p->mu);
		for (size_t i = 0; i < n; i++) {
			if (rc == 0 && (rc = store_one(s, it[i], tags[i])) < 0) {
				pthread_mutex_lock(&p->mu);
				p->stop = 1;
				pthread_cond_signal(&p->can_put);
				pthread_mutex_unlock(&p->mu);
			}
			feed_item_free(it[i]);
			free(tags[i]);
		}
	}
	pthread_join(th, NULL);
	if (rc < 0)
		return rc;
	if (p->parse_rc < 0)
		*s->e = p->perr;
	return p->parse_rc;
}

/*
 * advisory_store_doc(), one document of several that count as one (the
 * pages of a MyJVN query): *start is -1 for the first, and keeps what "new
 * in this document" means for the others (duplicate ids across pages).
 */
static int
store_doc(struct db *db, long long feed_id, int fd, const char *base_url,
    const char *http_charset, const struct tagger *t, time_t now,
    struct advisory_stats *stats, long long *start, struct err *e)
{
	struct advisory_stats local;
	struct store s;
	struct feed_opts fo = { base_url, http_charset };
	struct feed_info info;
	struct pipe *p;
	pthread_t th;
	int rc;

	if (stats == NULL)
		stats = &local;
	stats->items = stats->added = stats->changed = stats->unchanged = 0;
	stats->duplicates = 0;
	stats->myjvn_total = stats->myjvn_first = stats->myjvn_returned = 0;
	stats->myjvn_pages = 0;
	memset(&s, 0, sizeof(s));
	s.db = db;
	s.feed_id = feed_id;
	s.tagger = t;
	s.stats = stats;
	s.e = e;
	buf_init(&s.changed, 0);
	date_format_timestamp(now, s.now);
	/* What "new in this document" means for duplicate ids (store_one). */
	if (*start >= 0) {
		s.start_rowid = *start;
		s.any_shared = 1;	/* perhaps, from an earlier page */
	} else {
		sqlite3_stmt *mx;

		if ((rc = db_exec(db, "CREATE TEMP TABLE IF NOT EXISTS "
		    "advisory_seen (id INTEGER PRIMARY KEY); DELETE FROM "
		    "temp.advisory_seen; CREATE TEMP TABLE IF NOT EXISTS "
		    "advisory_shared (guid TEXT PRIMARY KEY); DELETE FROM "
		    "temp.advisory_shared", e)) < 0)
			return rc;
		if ((mx = db_stmt(db, "SELECT max(id) FROM advisory", e)) == NULL)
			return -e->code;
		if (sqlite3_step(mx) != SQLITE_ROW)
			return db_error(db, e, "read advisories");
		s.start_rowid = *start = sqlite3_column_int64(mx, 0);
		sqlite3_reset(mx);
	}
	if ((s.mdctx = EVP_MD_CTX_new()) == NULL ||
	    (s.md = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL) {
		EVP_MD_CTX_free(s.mdctx);
		return err_set(e, ERR_SOFTWARE, "OpenSSL has no SHA-256");
	}
	p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->can_put, NULL);
	pthread_cond_init(&p->can_get, NULL);
	p->fd = fd;
	p->fo = fo;
	p->tagger = t;
	if (pthread_create(&th, NULL, pipe_parse, p) == 0) {
		rc = store_pipelined(&s, p, th);
		info = p->info;
	} else		/* no thread: the same work, one step after the other */
		rc = feed_parse_fd(fd, &fo, store_item, &s, &info, e);
	pthread_cond_destroy(&p->can_get);
	pthread_cond_destroy(&p->can_put);
	pthread_mutex_destroy(&p->mu);
	free(p);
	EVP_MD_free(s.md);
	EVP_MD_CTX_free(s.mdctx);
	if (rc >= 0) {
		stats->items = (size_t)rc;
		stats->myjvn_total = info.myjvn ? info.myjvn_total : 0;
		stats->myjvn_first = info.myjvn ? info.myjvn_first : 0;
		stats->myjvn_returned = info.myjvn ? info.myjvn_returned : 0;
	}
	feed_info_release(&info);
	buf_release(&s.changed);
	return rc;
}

int
advisory_store_doc(struct db *db, long long feed_id, int fd,
    const char *base_url, const char *http_charset, const struct tagger *t,
    time_t now, struct advisory_stats *stats, struct err *e)
{
	long long start = -1;

	return store_doc(db, feed_id, fd, base_url, http_charset, t, now,
	    stats, &start, e);
}

/* ---------------------------------------------------------------------
 * Fetching a feed
 */

/* 1 if the feed is still there with its URL, 0 if not, or -ERR_DB. */
static int
feed_unchanged(struct db *db, const struct advisory_feed *f, struct err *e)
{
	sqlite3_stmt *st = db_stmt(db, "SELECT url = ?2 FROM feed WHERE id = ?1",
	    e);
	int rc;

	if (st == NULL)
		return -ERR_DB;
	sqlite3_bind_int64(st, 1, f->id);
	sqlite3_bind_text(st, 2, f->url, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	rc = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : rc == SQLITE_DONE ?
	    0 : db_error(db, e, "read feed");
	sqlite3_reset(st);
	return rc;
}

static int
feed_ok(struct db *db, const struct advisory_feed *f, const char *now,
    long status, long items, const char *etag, const char *lastmod,
    int not_modified, struct err *e)
{
	static const char ok[] =
	    "UPDATE feed SET last_fetch = ?2, last_success = ?2, "
	    "last_status = ?3, items = ?4, failures = 0, last_error = NULL, "
	    "etag = ?5, last_modified = ?6 WHERE id = ?1";
	static const char same304[] =
	    "UPDATE feed SET last_fetch = ?2, last_success = ?2, "
	    "last_status = ?3, failures = 0, last_error = NULL, "
	    "etag = COALESCE(?5, etag), last_modified = COALESCE(?6, "
	    "last_modified) WHERE id = ?1";
	sqlite3_stmt *st;

	if ((st = db_stmt(db, not_modified ? same304 : ok, e)) == NULL)
		return -e->code;
	sqlite3_bind_int64(st, 1, f->id);
	sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, status);
	sqlite3_bind_int64(st, 4, items);
	db_bind_text(st, 5, etag);
	db_bind_text(st, 6, lastmod);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_error(db, e, "update feed");
	return 0;
}

/* Record a failure in its own transaction; e (the cause) is kept. */
static int
feed_failed(struct db *db, const struct advisory_feed *f, const char *now,
    long status, const struct err *cause, struct err *e)
{
	static const char sql[] =
	    "UPDATE feed SET last_fetch = ?2, last_status = ?3, "
	    "failures = failures + 1, last_error = ?4 WHERE id = ?1";
	sqlite3_stmt *st;
	int rc;

	if ((rc = db_begin(db, e)) < 0)
		return rc;
	if ((st = db_stmt(db, sql, e)) == NULL) {
		db_rollback(db);
		return -e->code;
	}
	sqlite3_bind_int64(st, 1, f->id);
	sqlite3_bind_text(st, 2, now, -1, SQLITE_STATIC);
	if (status > 0)
		sqlite3_bind_int64(st, 3, status);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_text(st, 4, cause->msg, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_error(db, e, "record feed failure");
		db_rollback(db);
		return rc;
	}
	return db_commit(db, e);
}

/*
 * MyJVN API paging.  A query returns at most maxCountItem results (50 for
 * getVulnOverviewList) and says how many it has (status:Status totalRes,
 * firstRes, totalResRet); the rest come with startItem.  advisory_fetch()
 * fetches them with no transaction open, then stores them with the first
 * in one: all of them or, when one fails, none.
 */
#define MYJVN_MAX_PAGES	100

/* url with its startItem parameter (if any) replaced by start; NULL with
 * e set if url is not one libcurl can take apart. */
static char *
page_url(const char *url, long start, struct err *e)
{
	CURLU *u = curl_url();
	char *q = NULL, *full = NULL, *out = NULL, *tok, *save = NULL;
	struct buf nq = BUF_INIT(0);

	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
		err_set(e, ERR_INVAL, "cannot page the MyJVN query '%s': not a "
		    "URL", url);
		goto out;
	}
	/* The query as it is, less any startItem, plus ours. */
	if (curl_url_get(u, CURLUPART_QUERY, &q, 0) == CURLUE_OK)
		for (tok = strtok_r(q, "&", &save); tok != NULL;
		    tok = strtok_r(NULL, "&", &save))
			if (strncasecmp(tok, "startItem=", 10) != 0 &&
			    strcasecmp(tok, "startItem") != 0)
				buf_addf(&nq, "%s&", tok);
	buf_addf(&nq, "startItem=%ld", start);
	if (curl_url_set(u, CURLUPART_QUERY, buf_str(&nq), 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
		err_set(e, ERR_INVAL, "cannot page the MyJVN query '%s'", url);
		goto out;
	}
	out = xstrdup(full);
out:
	curl_free(q);
	curl_free(full);
	buf_release(&nq);
	curl_url_cleanup(u);
	return out;
}

static int
skip_item(const struct feed_item *it, void *arg)
{
	(void)it;
	(void)arg;
	return 0;
}

/* The pages of a MyJVN query after the first, fetched before anything is
 * stored (no network inside the transaction). */
struct pages {
	struct fetch_result	*v;
	size_t			 n;
	int			 unpaged;	/* a page came that was not asked */
	long			 next;		/* ... for this startItem */
	long			 status;	/* HTTP status of a page that failed */
};

static void
pages_release(struct pages *pg)
{
	for (size_t i = 0; i < pg->n; i++)
		fetch_result_release(&pg->v[i]);
	free(pg->v);
	memset(pg, 0, sizeof(*pg));
}

/*
 * Fetch the pages that follow the first (r, whose status stats holds),
 * checking each is the page asked for (its status:Status firstRes): a
 * server that answers every startItem with the first page, or with
 * anything else, ends the paging with what came before.  0, or the
 * fetch or parse error of a page.
 */
static int
fetch_pages(const struct fetch_result *r, const struct advisory_fetch_opts *o,
    const struct advisory_stats *stats, struct pages *pg, struct err *e)
{
	long first = stats->myjvn_first > 0 ? stats->myjvn_first : 1;
	long got = stats->myjvn_returned;

	memset(pg, 0, sizeof(*pg));
	while (got > 0 && first + got - 1 < stats->myjvn_total &&
	    pg->n + 1 < MYJVN_MAX_PAGES) {
		struct feed_opts fo;
		struct feed_info info;
		struct fetch_result pr;
		char *url;
		int rc;

		pg->next = first + got;
		/* From where the first page came (after its redirects). */
		if ((url = page_url(r->effective_url, pg->next, e)) == NULL)
			return -ERR_INVAL;
		rc = fetch_url(url, o->fetch, NULL, &pr, e);
		free(url);
		if (rc >= 0 && pr.body == NULL)
			rc = err_set(e, ERR_NET, "no document (HTTP %ld)",
			    pr.status);
		memset(&info, 0, sizeof(info));
		if (rc >= 0) {
			fo.base_url = pr.effective_url;
			fo.http_charset = pr.charset;
			rc = feed_parse_fd(fileno(pr.body), &fo, skip_item, NULL,
			    &info, e);
			if (lseek(fileno(pr.body), 0, SEEK_SET) < 0 && rc >= 0)
				rc = err_set(e, ERR_IO, "cannot reread a page: "
				    "%s", strerror(errno));
		}
		if (rc < 0) {
			pg->status = pr.status;
			feed_info_release(&info);
			fetch_result_release(&pr);
			return err_prefix(e, "MyJVN page %zu (startItem=%ld)",
			    pg->n + 2, pg->next);
		}
		if (!info.myjvn || info.myjvn_first != pg->next ||
		    info.myjvn_returned <= 0) {
			pg->unpaged = 1;
			feed_info_release(&info);
			fetch_result_release(&pr);
			break;
		}
		pg->v = xreallocarray(pg->v, pg->n + 1, sizeof(*pg->v));
		pg->v[pg->n++] = pr;
		first = pg->next;
		got = info.myjvn_returned;
		feed_info_release(&info);
	}
	return 0;
}

/* Store the pages after the first, adding to stats. */
static int
store_pages(struct db *db, const struct advisory_feed *f,
    const struct advisory_fetch_opts *o, const struct pages *pg,
    long long *start, struct advisory_stats *stats, struct err *e)
{
	stats->myjvn_per_page = stats->myjvn_returned;
	stats->myjvn_pages = 1;
	stats->myjvn_unpaged = pg->unpaged;
	for (size_t i = 0; i < pg->n; i++) {
		const struct fetch_result *pr = &pg->v[i];
		struct advisory_stats ps;
		int rc;

		if ((rc = store_doc(db, f->id, fileno(pr->body),
		    pr->effective_url, pr->charset, o->tagger, o->now, &ps,
		    start, e)) < 0)
			return err_prefix(e, "MyJVN page %zu", i + 2);
		stats->myjvn_pages++;
		stats->items += ps.items;
		stats->added += ps.added;
		stats->changed += ps.changed;
		stats->unchanged += ps.unchanged;
		stats->duplicates += ps.duplicates;
		stats->bytes += pr->bytes;
		stats->myjvn_returned += ps.myjvn_returned;
	}
	return 0;
}

static int
incomplete(const struct advisory_stats *st, char *buf, size_t n)
{
	long first = st->myjvn_first > 0 ? st->myjvn_first : 1;

	if (st->not_modified || st->myjvn_returned <= 0 ||
	    first + st->myjvn_returned - 1 >= st->myjvn_total)
		return 0;
	if (st->myjvn_pages == 0)	/* a local file: no pages to ask for */
		snprintf(buf, n, "the MyJVN answer says its query has %ld "
		    "results and holds %ld; give the query's https:// URL so "
		    "that samail fetches the other pages", st->myjvn_total,
		    st->myjvn_returned);
	else if ((st->myjvn_unpaged || st->myjvn_pages < MYJVN_MAX_PAGES) &&
	    first == 1)
		snprintf(buf, n, "the MyJVN query has %ld results but the "
		    "server sent only %ld: it did not answer startItem=%ld with "
		    "the next page", st->myjvn_total, st->myjvn_returned,
		    first + st->myjvn_returned);
	else if (st->myjvn_unpaged || st->myjvn_pages < MYJVN_MAX_PAGES)
		snprintf(buf, n, "the MyJVN query has %ld results; from "
		    "startItem=%ld the server sent only %ld: it did not answer "
		    "startItem=%ld with the next page", st->myjvn_total, first,
		    st->myjvn_returned, first + st->myjvn_returned);
	else
		snprintf(buf, n, "the MyJVN query has %ld results, more than "
		    "%d pages of %ld bring (%ld); narrow it (e.g. "
		    "rangeDatePublished) or ask for 50 a page "
		    "(maxCountItem=50)", st->myjvn_total, MYJVN_MAX_PAGES,
		    st->myjvn_per_page, st->myjvn_returned);
	return 1;
}

int
advisory_notice(const char *name, const struct advisory_stats *st,
    char *buf, size_t n)
{
	char why[256];

	if (st->gone)
		snprintf(buf, n, "feed '%s' was removed or changed while its "
		    "pages were fetched: nothing of this fetch was stored", name);
	else if (incomplete(st, why, sizeof(why)))
		snprintf(buf, n, "feed '%s': %s", name, why);
	else
		return 0;
	return 1;
}

int
advisory_fetch(struct db *db, const struct advisory_feed *f,
    const struct advisory_fetch_opts *o, struct advisory_stats *stats,
    struct err *e)
{
	struct fetch_cond cond = { f->etag, f->last_modified };
	struct advisory_stats local;
	struct fetch_result r;
	struct pages pg = { NULL, 0, 0, 0, 0 };
	struct err dberr = ERR_INIT;
	char now[32];
	int rc, frc, paged = 0;

	if (stats == NULL)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	date_format_timestamp(o->now, now);

	rc = fetch_url(f->url, o->fetch, &cond, &r, e);
	stats->status = r.status;
	stats->bytes = r.bytes;
	if (rc < 0)
		goto failed;
	if ((rc = db_begin(db, e)) < 0)
		goto out;	/* busy: nothing to record either */
	if (r.not_modified) {
		stats->not_modified = 1;
		rc = feed_ok(db, f, now, r.status, f->items, r.etag,
		    r.last_modified, 1, e);
	} else {
		rc = advisory_store_doc(db, f->id, fileno(r.body),
		    r.effective_url, r.charset, o->tagger, o->now, stats, e);
		/*
		 * A MyJVN query with more pages: they are fetched with no
		 * transaction open (a write lock held over the network would
		 * hold up every other writer), then the whole query is
		 * stored again in one.
		 */
		if (rc >= 0 && !r.local && stats->myjvn_returned > 0 &&
		    (stats->myjvn_first > 0 ? stats->myjvn_first : 1) +
		    stats->myjvn_returned - 1 < stats->myjvn_total) {
			struct advisory_stats first = *stats;
			long long start = -1;

			db_rollback(db);
			stats->added = stats->changed = stats->unchanged = 0;
			if ((rc = fetch_pages(&r, o, &first, &pg, e)) < 0) {
				/* The feed row records the failing page's. */
				stats->status = r.status = pg.status;
				goto failed;
			}
			if ((rc = db_begin(db, e)) < 0)
				goto out;
			/* Removed (or pointed elsewhere) by an admin while the
			 * pages came: nothing of it is to be stored. */
			if ((rc = feed_unchanged(db, f, e)) <= 0) {
				db_rollback(db);
				if (rc == 0) {
					memset(stats, 0, sizeof(*stats));
					stats->gone = 1;
				}
				goto out;
			}
			if (lseek(fileno(r.body), 0, SEEK_SET) < 0)
				rc = err_set(e, ERR_IO, "cannot reread the "
				    "document: %s", strerror(errno));
			else
				rc = store_doc(db, f->id, fileno(r.body),
				    r.effective_url, r.charset, o->tagger,
				    o->now, stats, &start, e);
			if (rc >= 0)
				rc = store_pages(db, f, o, &pg, &start, stats,
				    e);
			paged = 1;
		} else if (rc >= 0 && !r.local && stats->myjvn_total > 0)
			stats->myjvn_pages = 1;
		/* A paged query keeps no validators: a 304 for its first
		 * page says nothing of the others. */
		if (rc >= 0)
			rc = feed_ok(db, f, now, r.status, (long)stats->items,
			    r.local || paged ? NULL : r.etag, r.local || paged ?
			    NULL : r.last_modified, 0, e);
	}
	if (rc >= 0)
		rc = db_commit(db, e);
	if (rc >= 0) {
		rc = 0;
		goto out;
	}
	db_rollback(db);
	/* Whatever stored before the failure is gone with the rollback;
	 * the counters must not claim otherwise. */
	stats->added = stats->changed = stats->unchanged = 0;
	if (e->code == ERR_DB || e->code == ERR_LOCKED || e->code == ERR_IO)
		goto out;
failed:
	if ((frc = feed_failed(db, f, now, r.status, e, &dberr)) < 0) {
		*e = dberr;
		rc = frc;
	}
out:
	pages_release(&pg);
	fetch_result_release(&r);
	return rc;
}

/* ---------------------------------------------------------------------
 * Listing and retagging
 */

int
advisory_each(struct db *db, const struct advisory_filter *flt,
    int (*fn)(const struct advisory *, void *), void *arg, struct err *e)
{
	static const char sql[] =
	    "SELECT a.id, f.name, a.guid, a.ident, a.title, a.link, a.summary, "
	    "a.published, a.updated, a.cves, a.cvss, a.cvss_version, "
	    "a.cvss_vector, a.severity, a.cpes, a.products, a.first_seen, "
	    "a.last_seen, f.alert "
	    "FROM advisory a JOIN feed f ON f.id = a.feed_id "
	    "WHERE (?1 IS NULL OR COALESCE(a.published, a.first_seen) >= ?1) "
	    "AND (?2 IS NULL OR COALESCE(a.published, a.first_seen) < ?2) "
	    "AND (?3 IS NULL OR instr(',' || a.products || ',', "
	    "',' || ?3 || ',') > 0) "
	    "AND (?4 IS NULL OR f.name = ?4) "
	    "ORDER BY COALESCE(a.published, a.first_seen) DESC, a.id DESC";
	sqlite3_stmt *st;
	struct advisory a;
	int rc = 0, step;

	if ((st = db_prepare(db, sql, e)) == NULL)
		return -e->code;
	if (flt != NULL) {
		db_bind_text(st, 1, flt->since);
		db_bind_text(st, 2, flt->until);
		db_bind_text(st, 3, flt->product);
		db_bind_text(st, 4, flt->feed);
	}
#define COL(i)	((const char *)sqlite3_column_text(st, (i)))
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&a, 0, sizeof(a));
		a.rowid = sqlite3_column_int64(st, 0);
		a.feed = COL(1);
		a.guid = COL(2);
		a.ident = COL(3);
		a.title = COL(4);
		a.link = COL(5);
		a.summary = COL(6);
		a.published = COL(7);
		a.updated = COL(8);
		a.cves = COL(9);
		a.cvss = sqlite3_column_type(st, 10) == SQLITE_NULL ? -1.0 :
		    sqlite3_column_double(st, 10);
		a.cvss_version = COL(11);
		a.cvss_vector = COL(12);
		a.severity = COL(13);
		a.cpes = COL(14);
		a.products = COL(15);
		a.first_seen = COL(16);
		a.last_seen = COL(17);
		a.alert = sqlite3_column_int(st, 18);
		if ((rc = fn(&a, arg)) != 0)
			break;
	}
#undef COL
	if (rc == 0 && step != SQLITE_DONE)
		rc = db_error(db, e, "list advisories");
	sqlite3_finalize(st);
	return rc;
}

static json_t *
json_list(const char *csv)
{
	json_t *a = json_array();
	struct strlist l = { 0 };

	tag_split(csv, &l);
	for (size_t i = 0; i < l.n; i++)
		json_array_append_new(a, json_string(l.v[i]));
	strlist_release(&l);
	return a;
}

char *
advisory_json(const struct advisory *a)
{
	json_t *o = json_object();
	char *out;

	json_object_set_new(o, "id", json_string(a->guid));
	json_object_set_new(o, "feed", json_string(a->feed));
	json_object_set_new(o, "title", json_string(a->title ? a->title : ""));
	json_object_set_new(o, "link", jstr(a->link));
	json_object_set_new(o, "published", jstr(a->published));
	json_object_set_new(o, "updated", jstr(a->updated));
	json_object_set_new(o, "summary", json_string(a->summary ?
	    a->summary : ""));
	json_object_set_new(o, "cves", json_list(a->cves));
	/* One decimal, as CVSS scores are published; a JSON number. */
	json_object_set_new(o, "cvss", a->cvss >= 0 ?
	    json_real(round(a->cvss * 10) / 10) : json_null());
	json_object_set_new(o, "severity", jstr(a->severity));
	json_object_set_new(o, "products", json_list(a->products));
	out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER |
	    JSON_REAL_PRECISION(3));
	json_decref(o);
	return out;
}

int
advisory_retag(struct db *db, const struct tagger *t, struct err *e)
{
	struct change {
		long long	 id;
		char		*products;
	} *ch = NULL;
	size_t nch = 0;
	sqlite3_stmt *st;
	int rc = 0, step;

	if ((st = db_prepare(db, "SELECT id, title, summary, cpes, products "
	    "FROM advisory", e)) == NULL)
		return -e->code;
	/* Collect first: updating rows while stepping over the same table
	 * may visit them again. */
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct strlist cpes = { 0 }, tags = { 0 };
		char *p;

		tag_split((const char *)sqlite3_column_text(st, 3), &cpes);
		tag_match(t, (const char *)sqlite3_column_text(st, 1),
		    (const char *)sqlite3_column_text(st, 2), &cpes, &tags);
		p = tag_join(&tags);
		if (!same(sqlite3_column_text(st, 4), p)) {
			ch = xreallocarray(ch, nch + 1, sizeof(*ch));
			ch[nch].id = sqlite3_column_int64(st, 0);
			ch[nch++].products = p;
		} else
			free(p);
		strlist_release(&cpes);
		strlist_release(&tags);
	}
	if (step != SQLITE_DONE)
		rc = db_error(db, e, "read advisories");
	sqlite3_finalize(st);
	for (size_t i = 0; rc == 0 && i < nch; i++) {
		if ((st = db_stmt(db, "UPDATE advisory SET products = ?2 "
		    "WHERE id = ?1", e)) == NULL) {
			rc = -e->code;
			break;
		}
		sqlite3_bind_int64(st, 1, ch[i].id);
		sqlite3_bind_text(st, 2, ch[i].products, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = db_error(db, e, "retag advisory");
	}
	for (size_t i = 0; i < nch; i++)
		free(ch[i].products);
	free(ch);
	return rc < 0 ? rc : (int)nch;
}
