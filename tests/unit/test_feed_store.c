/*
 * test_feed_store — lib/advisory against a real SQLite file: seeding,
 * the feed list, storing documents (new / unchanged / changed), a failing
 * document storing nothing, listing with filters, JSON, retagging.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "advisory.h"
#include "date.h"
#include "db.h"
#include "err.h"
#include "feed.h"
#include "products.h"
#include "tag.h"
#include "xalloc.h"

struct fix {
	char		 dir[64];
	struct db	*db;
	struct products	 p;
	struct tagger	*t;
	const char	*src;
};

static time_t
ts(const char *s)
{
	time_t t;

	assert_int_equal(date_parse_timestamp(s, &t, NULL), 0);
	return t;
}

static int
setup(void **state)
{
	struct fix *f = xcalloc(1, sizeof(*f));
	struct err e = ERR_INIT;
	char *path;

	f->src = getenv("SAMAIL_SRCDIR") ? getenv("SAMAIL_SRCDIR") : ".";
	strcpy(f->dir, "/tmp/samail-store-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	path = xasprintf("%s/samail.db", f->dir);
	if (db_open(&f->db, path, DB_CREATE, 5000, &e) < 0 ||
	    db_migrate(f->db, &e) < 0) {
		fprintf(stderr, "%s\n", e.msg);
		return -1;
	}
	free(path);
	path = xasprintf("%s/feeds/products.conf", f->src);
	if (products_load(&f->p, path, &e) < 0) {
		fprintf(stderr, "%s\n", e.msg);
		return -1;
	}
	free(path);
	f->t = tag_new(&f->p);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;
	char *cmd = xasprintf("rm -rf '%s'", f->dir);

	db_close(f->db);
	tag_free(f->t);
	products_release(&f->p);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", f->dir);
	free(cmd);
	free(f);
	return 0;
}

static long
count(struct db *db, const char *sql)
{
	sqlite3_stmt *st = db_prepare(db, sql, NULL);
	long n;

	assert_non_null(st);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static char *
text(struct db *db, const char *sql)
{
	sqlite3_stmt *st = db_prepare(db, sql, NULL);
	char *s;

	assert_non_null(st);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	s = db_column_dup(st, 0);
	sqlite3_finalize(st);
	return s;
}

static long long
add_feed(struct fix *f, const char *name, const char *url)
{
	struct advisory_feed af;
	struct err e = ERR_INIT;
	long long id;

	assert_int_equal(db_begin(f->db, &e), 0);
	assert_int_equal(advisory_feed_add(f->db, name, url, 0,
	    ts("2026-11-01T00:00:00Z"), &e), 0);
	assert_int_equal(db_commit(f->db, &e), 0);
	assert_int_equal(advisory_feed_get(f->db, name, &af, &e), 0);
	id = af.id;
	advisory_feed_release(&af);
	return id;
}

/* Store a document given as a string, in its own transaction. */
static int
store_str(struct fix *f, long long feed, const char *doc, const char *now,
    struct advisory_stats *st, struct err *e)
{
	char path[128];
	int fd, rc;

	snprintf(path, sizeof(path), "%s/doc.xml", f->dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, doc, strlen(doc)), (ssize_t)strlen(doc));
	lseek(fd, 0, SEEK_SET);
	assert_int_equal(db_begin(f->db, e), 0);
	rc = advisory_store_doc(f->db, feed, fd, NULL, NULL, f->t, ts(now), st, e);
	close(fd);
	if (rc >= 0)
		assert_int_equal(db_commit(f->db, e), 0);
	else
		db_rollback(f->db);
	return rc;
}

static int
store_fixture(struct fix *f, long long feed, const char *name,
    const char *now, struct advisory_stats *st, struct err *e)
{
	char *path = xasprintf("%s/tests/data/feeds/%s", f->src, name);
	int fd = open(path, O_RDONLY), rc;

	assert_true(fd >= 0);
	assert_int_equal(db_begin(f->db, e), 0);
	rc = advisory_store_doc(f->db, feed, fd, NULL, NULL, f->t, ts(now), st, e);
	close(fd);
	free(path);
	if (rc >= 0)
		assert_int_equal(db_commit(f->db, e), 0);
	else
		db_rollback(f->db);
	return rc;
}

static void
test_seed(void **state)
{
	struct fix *f = *state;
	struct err e = ERR_INIT;
	char *path = xasprintf("%s/feeds/feeds.conf", f->src), *seed, *url;
	FILE *fp;

	assert_int_equal(db_begin(f->db, &e), 0);
	assert_true(advisory_seed_feeds(f->db, path, ts("2026-11-01T00:00:00Z"),
	    &e) >= 2);
	/* Again: nothing new, nothing duplicated. */
	assert_int_equal(advisory_seed_feeds(f->db, path,
	    ts("2026-11-01T00:00:00Z"), &e), 0);
	assert_int_equal(db_commit(f->db, &e), 0);
	free(path);
	url = text(f->db, "SELECT url FROM feed WHERE name = 'ipa-alert'");
	assert_string_equal(url, "https://www.ipa.go.jp/security/alert-rss.rdf");
	free(url);
	assert_int_equal(count(f->db, "SELECT alert FROM feed WHERE name = "
	    "'ipa-alert'"), 1);
	url = text(f->db, "SELECT url FROM feed WHERE name = 'jvn'");
	assert_string_equal(url, "https://jvn.jp/rss/jvn.rdf");
	free(url);

	/* A seed file of local samples: relative paths become absolute. */
	seed = xasprintf("%s/seed.conf", f->dir);
	fp = fopen(seed, "w");
	fputs("[sample]\nurl = samples/jvn.rdf\n", fp);
	fclose(fp);
	assert_int_equal(db_begin(f->db, &e), 0);
	assert_int_equal(advisory_seed_feeds(f->db, seed, 0, &e), 1);
	assert_int_equal(db_commit(f->db, &e), 0);
	url = text(f->db, "SELECT url FROM feed WHERE name = 'sample'");
	assert_true(url[0] == '/');
	assert_non_null(strstr(url, "/samples/jvn.rdf"));
	free(url);

	/* Mistakes name the file and line. */
	fp = fopen(seed, "w");
	fputs("[ok]\nurl = https://a.example/x\n[bad]\nurll = https://b/\n", fp);
	fclose(fp);
	assert_int_equal(db_begin(f->db, &e), 0);
	assert_int_equal(advisory_seed_feeds(f->db, seed, 0, &e), -ERR_CONFIG);
	db_rollback(f->db);
	assert_non_null(strstr(e.msg, "seed.conf:4"));
	fp = fopen(seed, "w");
	fputs("[ftp]\nurl = ftp://a.example/x\n", fp);
	fclose(fp);
	assert_int_equal(db_begin(f->db, &e), 0);
	assert_int_equal(advisory_seed_feeds(f->db, seed, 0, &e), -ERR_CONFIG);
	db_rollback(f->db);
	unlink(seed);
	assert_int_equal(advisory_seed_feeds(f->db, seed, 0, &e), -ERR_NOINPUT);
	free(seed);
}

static void
test_feed_list(void **state)
{
	struct fix *f = *state;
	struct err e = ERR_INIT;
	struct advisory_feed af;
	json_t *j;
	char *s;

	add_feed(f, "list-a", "https://a.example/feed.rdf");
	assert_int_equal(db_begin(f->db, &e), 0);
	assert_int_equal(advisory_feed_add(f->db, "list-a", "https://x/", 0, 0,
	    &e), -ERR_EXISTS);
	assert_int_equal(advisory_feed_add(f->db, "bad name", "https://x/", 0,
	    0, &e), -ERR_INVAL);
	assert_int_equal(advisory_feed_add(f->db, "-x", "https://x/", 0, 0, &e),
	    -ERR_INVAL);
	assert_int_equal(advisory_feed_remove(f->db, "nosuch", &e),
	    -ERR_NOTFOUND);
	db_rollback(f->db);
	assert_int_equal(advisory_feed_get(f->db, "list-a", &af, &e), 0);
	s = advisory_feed_json(&af);
	j = json_loads(s, 0, NULL);
	assert_non_null(j);
	/* Exactly SPEC's fields. */
	assert_int_equal(json_object_size(j), 7);
	assert_string_equal(json_string_value(json_object_get(j, "name")),
	    "list-a");
	assert_true(json_is_null(json_object_get(j, "last_fetch")));
	assert_true(json_is_null(json_object_get(j, "last_status")));
	assert_int_equal(json_integer_value(json_object_get(j, "items")), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "failures")), 0);
	assert_true(json_is_null(json_object_get(j, "last_error")));
	assert_non_null(json_object_get(j, "url"));
	json_decref(j);
	free(s);
	advisory_feed_release(&af);
}

static void
test_store_new_unchanged_changed(void **state)
{
	struct fix *f = *state;
	struct advisory_stats st;
	struct err e = ERR_INIT;
	long long id = add_feed(f, "jvn-test", "https://jvn.jp/rss/jvn.rdf");
	char *sql, *s;
	static const char doc1[] =
	    "<rss version=\"2.0\"><channel><item><guid>g1</guid>"
	    "<title>Oracle Java の脆弱性</title><link>https://x.example/1</link>"
	    "<pubDate>Wed, 09 Oct 2024 12:00:00 +0900</pubDate></item>"
	    "<item><guid>g2</guid><title>two</title></item></channel></rss>";
	static const char doc2[] =
	    "<rss version=\"2.0\"><channel><item><guid>g1</guid>"
	    "<title>Oracle Java と WordPress の脆弱性 (CVE-2024-0001)</title>"
	    "<link>https://x.example/1</link>"
	    "<pubDate>Wed, 09 Oct 2024 12:00:00 +0900</pubDate></item>"
	    "<item><guid>g2</guid><title>two</title></item></channel></rss>";

	(void)state;
	assert_int_equal(store_fixture(f, id, "jvn.rdf", "2026-11-01T00:00:00Z",
	    &st, &e), 20);
	assert_int_equal(st.added, 20);
	sql = xasprintf("SELECT count(*) FROM advisory WHERE feed_id = %lld", id);
	assert_int_equal(count(f->db, sql), 20);
	/* Tags stored with the advisory. */
	s = text(f->db, "SELECT products FROM advisory WHERE ident = "
	    "'JVNVU#97136265'");
	assert_string_equal(s, "office,windows");
	free(s);
	s = text(f->db, "SELECT cves FROM advisory WHERE ident = 'JVN#41385617'");
	assert_string_equal(s, "CVE-2024-47619,CVE-2024-47620");
	free(s);

	/* The same document again: nothing new, only last_seen moves. */
	assert_int_equal(store_fixture(f, id, "jvn.rdf", "2026-11-02T00:00:00Z",
	    &st, &e), 20);
	assert_int_equal(st.added, 0);
	assert_int_equal(st.unchanged, 20);
	assert_int_equal(st.changed, 0);
	assert_int_equal(count(f->db, sql), 20);
	assert_int_equal(count(f->db, "SELECT count(*) FROM advisory WHERE "
	    "last_seen = '2026-11-02T00:00:00Z' AND first_seen = "
	    "'2026-11-01T00:00:00Z'"), 20);
	assert_int_equal(count(f->db, "SELECT count(*) FROM advisory_change"), 0);
	free(sql);

	/* A changed item: updated, re-tagged, its change recorded. */
	assert_int_equal(store_str(f, id, doc1, "2026-11-03T00:00:00Z", &st, &e),
	    2);
	assert_int_equal(st.added, 2);
	assert_int_equal(store_str(f, id, doc2, "2026-11-04T00:00:00Z", &st, &e),
	    2);
	assert_int_equal(st.changed, 1);
	assert_int_equal(st.unchanged, 1);
	s = text(f->db, "SELECT fields FROM advisory_change c JOIN advisory a "
	    "ON a.id = c.advisory_id WHERE a.guid = 'g1'");
	assert_string_equal(s, "title,cves");
	free(s);
	s = text(f->db, "SELECT products FROM advisory WHERE guid = 'g1'");
	assert_string_equal(s, "java,wordpress");
	free(s);
	s = text(f->db, "SELECT first_seen FROM advisory WHERE guid = 'g1'");
	assert_string_equal(s, "2026-11-03T00:00:00Z");
	free(s);
}

static void
test_duplicates(void **state)
{
	struct fix *f = *state;
	struct advisory_stats st;
	struct err e = ERR_INIT;
	long long id = add_feed(f, "dups", "https://jvn.jp/rss/jvn.rdf");
	char *sql;

	(void)state;
	assert_int_equal(store_fixture(f, id, "edge-duplicates.rdf",
	    "2026-11-01T00:00:00Z", &st, &e), 6);
	sql = xasprintf("SELECT count(*) FROM advisory WHERE feed_id = %lld", id);
	assert_int_equal(count(f->db, sql), 5);
	free(sql);
	assert_int_equal(st.added, 5);
	assert_int_equal(st.duplicates, 1);
	assert_int_equal(st.unchanged, 0);
}

/* The same id twice in one document with different content: the first
 * wins, and fetching it again records no change back and forth. */
static void
test_duplicate_id_differs(void **state)
{
	struct fix *f = *state;
	struct advisory_stats st;
	struct err e = ERR_INIT;
	long long id = add_feed(f, "flappy", "https://a.example/feed");
	static const char doc[] =
	    "<rss version=\"2.0\"><channel>"
	    "<item><guid>same</guid><title>first</title></item>"
	    "<item><guid>same</guid><title>second</title></item>"
	    "</channel></rss>";
	char *s;

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(store_str(f, id, doc, "2026-11-01T00:00:00Z",
		    &st, &e), 2);
		assert_int_equal(st.duplicates, 1);
		assert_int_equal(st.changed, 0);
	}
	s = text(f->db, "SELECT title FROM advisory WHERE guid = 'same'");
	assert_string_equal(s, "first");
	free(s);
	assert_int_equal(count(f->db, "SELECT count(*) FROM advisory_change c "
	    "JOIN advisory a ON a.id = c.advisory_id WHERE a.guid = 'same'"), 0);
}

/* A guid every item repeats (a WordPress plugin writes
 * <guid isPermaLink="false">0</guid> on each): the items are told apart
 * by their links, each under its own record whatever its place in the
 * feed, fetch after fetch; the exact same item twice still collapses. */
static void
test_shared_guid(void **state)
{
	struct fix *f = *state;
	struct advisory_stats st;
	struct err e = ERR_INIT;
	long long id = add_feed(f, "wp0", "https://wp.example/feed");
#define WP_ITEM(n) "<item><guid isPermaLink=\"false\">0</guid><title>post " \
	#n "</title><link>https://wp.example/" #n "/</link></item>"
	static const char doc1[] = "<rss version=\"2.0\"><channel>"
	    WP_ITEM(3) WP_ITEM(2) WP_ITEM(1) "</channel></rss>";
	static const char doc2[] = "<rss version=\"2.0\"><channel>"
	    WP_ITEM(4) WP_ITEM(3) WP_ITEM(2) WP_ITEM(1) WP_ITEM(1)
	    "</channel></rss>";
	static const char doc3[] = "<rss version=\"2.0\"><channel>"
	    "<item><guid isPermaLink=\"false\">0</guid><title>post 4 (edited)"
	    "</title><link>https://wp.example/4/</link></item>"
	    WP_ITEM(3) WP_ITEM(2) WP_ITEM(1) "</channel></rss>";
#undef WP_ITEM
	char *sql = xasprintf("SELECT count(*) FROM advisory WHERE feed_id = "
	    "%lld", id), *s;

	(void)state;
	assert_int_equal(store_str(f, id, doc1, "2026-11-01T00:00:00Z", &st,
	    &e), 3);
	assert_int_equal(st.added, 3);
	assert_int_equal(st.duplicates, 0);
	assert_int_equal(count(f->db, sql), 3);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(store_str(f, id, doc1, "2026-11-02T00:00:00Z",
		    &st, &e), 3);
		assert_int_equal(st.added, 0);
		assert_int_equal(st.changed, 0);
		assert_int_equal(st.unchanged, 3);
	}
	/* A new post on top: one added, none changed, the last duplicate
	 * (same guid, same link) collapses. */
	assert_int_equal(store_str(f, id, doc2, "2026-11-03T00:00:00Z", &st,
	    &e), 5);
	assert_int_equal(st.added, 1);
	assert_int_equal(st.changed, 0);
	assert_int_equal(st.unchanged, 3);
	assert_int_equal(st.duplicates, 1);
	assert_int_equal(count(f->db, sql), 4);
	assert_int_equal(count(f->db, "SELECT count(*) FROM advisory WHERE "
	    "link LIKE 'https://wp.example/%' AND guid = link AND "
	    "title = 'post ' || substr(link, 20, 1)"), 4);
	assert_int_equal(count(f->db, "SELECT count(*) FROM advisory_change c "
	    "JOIN advisory a ON a.id = c.advisory_id WHERE a.link LIKE "
	    "'https://wp.example/%'"), 0);
	s = text(f->db, "SELECT first_seen FROM advisory WHERE "
	    "guid = 'https://wp.example/3/'");
	assert_string_equal(s, "2026-11-01T00:00:00Z");
	free(s);
	/* The top post edited: a change of its own record. */
	assert_int_equal(store_str(f, id, doc3, "2026-11-04T00:00:00Z", &st,
	    &e), 4);
	assert_int_equal(st.added, 0);
	assert_int_equal(st.changed, 1);
	assert_int_equal(st.unchanged, 3);
	assert_int_equal(count(f->db, sql), 4);
	s = text(f->db, "SELECT a.title || '|' || c.fields FROM advisory a "
	    "JOIN advisory_change c ON c.advisory_id = a.id WHERE "
	    "a.guid = 'https://wp.example/4/'");
	assert_string_equal(s, "post 4 (edited)|title");
	free(s);
	free(sql);
}

/* An item whose id is its own link, and a later one repeating that id
 * with another link: the first is already under its link and stays;
 * the second gets its own record (merging the first into itself deleted
 * it). */
static void
test_shared_guid_is_first_link(void **state)
{
	struct fix *f = *state;
	struct advisory_stats st;
	struct err e = ERR_INIT;
	long long id = add_feed(f, "self", "https://self.example/feed");
	static const char doc[] = "<rss version=\"2.0\"><channel>"
	    "<item><guid>https://self.example/news/</guid><title>first</title>"
	    "<link>https://self.example/news/</link></item>"
	    "<item><guid>https://self.example/news/</guid><title>second"
	    "</title><link>https://self.example/news/2</link></item>"
	    "</channel></rss>";
	char *sql = xasprintf("SELECT count(*) FROM advisory WHERE feed_id = "
	    "%lld", id), *s;

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(store_str(f, id, doc, i ?
		    "2026-11-02T00:00:00Z" : "2026-11-01T00:00:00Z", &st, &e),
		    2);
		assert_int_equal(count(f->db, sql), 2);
		assert_int_equal(st.added, i ? 0 : 2);
		assert_int_equal(st.changed, 0);
		assert_int_equal(st.unchanged, i ? 2 : 0);
		assert_int_equal(st.duplicates, 0);
	}
	s = text(f->db, "SELECT group_concat(title, '|') FROM (SELECT title "
	    "FROM advisory WHERE link LIKE 'https://self.example/%' "
	    "ORDER BY title)");
	assert_string_equal(s, "first|second");
	free(s);
	assert_int_equal(count(f->db, "SELECT count(*) FROM advisory_change c "
	    "JOIN advisory a ON a.id = c.advisory_id WHERE a.link LIKE "
	    "'https://self.example/%'"), 0);
	free(sql);
}

/* An item stored under its link (its id is the link), and later in the
 * same document the same link under an id items share: the first wins,
 * as for a repeated id, and a refetch changes nothing (the second was
 * merged over the first, and each fetch wrote the first back: two
 * recorded changes per fetch of an unchanged feed). */
static void
test_shared_guid_link_seen(void **state)
{
	struct fix *f = *state;
	struct advisory_stats st;
	struct err e = ERR_INIT;
	long long id = add_feed(f, "seen", "https://seen.example/feed");
	static const char doc[] = "<rss version=\"2.0\"><channel>"
	    "<item><guid>https://seen.example/1</guid><title>x</title>"
	    "<link>https://seen.example/1</link></item>"
	    "<item><guid isPermaLink=\"false\">0</guid><title>a</title>"
	    "<link>https://seen.example/1</link></item>"
	    "<item><guid isPermaLink=\"false\">0</guid><title>b</title>"
	    "<link>https://seen.example/2</link></item>"
	    "</channel></rss>";
	char *s;

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(store_str(f, id, doc, i ?
		    "2026-11-02T00:00:00Z" : "2026-11-01T00:00:00Z", &st, &e),
		    3);
		assert_int_equal(st.added, i ? 0 : 2);
		assert_int_equal(st.changed, 0);
		assert_int_equal(st.unchanged, i ? 2 : 0);
		assert_int_equal(st.duplicates, 1);
	}
	s = text(f->db, "SELECT group_concat(guid || '=' || title, ' ') FROM "
	    "(SELECT guid, title FROM advisory WHERE link LIKE "
	    "'https://seen.example/%' ORDER BY guid)");
	assert_string_equal(s, "https://seen.example/1=x "
	    "https://seen.example/2=b");
	free(s);
	assert_int_equal(count(f->db, "SELECT count(*) FROM advisory_change c "
	    "JOIN advisory a ON a.id = c.advisory_id WHERE a.link LIKE "
	    "'https://seen.example/%'"), 0);
}

/* A document that fails part-way stores nothing; the feed row records
 * the failure, and keeps its validators for a full fetch next time. */
static void
test_fetch_failure_stores_nothing(void **state)
{
	struct fix *f = *state;
	struct fetch_opts fo = { .allow_local = 1 };
	struct advisory_fetch_opts o = { &fo, NULL, 0 };
	struct advisory_stats st;
	struct advisory_feed af;
	struct err e = ERR_INIT;
	char *bad = xasprintf("%s/tests/data/feeds/edge-truncated.rdf", f->src);
	char *good = xasprintf("%s/tests/data/feeds/ipa-alert.rdf", f->src);
	char *sql;
	long long id;

	o.tagger = f->t;
	o.now = ts("2026-11-05T00:00:00Z");
	id = add_feed(f, "trunc", bad);
	sql = xasprintf("SELECT count(*) FROM advisory WHERE feed_id = %lld", id);
	assert_int_equal(advisory_feed_get(f->db, "trunc", &af, &e), 0);
	assert_int_equal(advisory_fetch(f->db, &af, &o, &st, &e), -ERR_PARSE);
	advisory_feed_release(&af);
	assert_int_equal(count(f->db, sql), 0);
	assert_int_equal(advisory_feed_get(f->db, "trunc", &af, &e), 0);
	assert_int_equal(af.failures, 1);
	assert_non_null(af.last_error);
	assert_non_null(strstr(af.last_error, "line"));
	assert_string_equal(af.last_fetch, "2026-11-05T00:00:00Z");
	assert_null(af.last_success);
	assert_int_equal(advisory_fetch(f->db, &af, &o, &st, &e), -ERR_PARSE);
	advisory_feed_release(&af);
	assert_int_equal(advisory_feed_get(f->db, "trunc", &af, &e), 0);
	assert_int_equal(af.failures, 2);
	advisory_feed_release(&af);

	/* Fixed: stored, failures back to 0, error cleared. */
	assert_int_equal(db_begin(f->db, &e), 0);
	sqlite3_stmt *u = db_prepare(f->db, "UPDATE feed SET url = ?1 WHERE "
	    "name = 'trunc'", &e);
	sqlite3_bind_text(u, 1, good, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(u), SQLITE_DONE);
	sqlite3_finalize(u);
	assert_int_equal(db_commit(f->db, &e), 0);
	assert_int_equal(advisory_feed_get(f->db, "trunc", &af, &e), 0);
	assert_int_equal(advisory_fetch(f->db, &af, &o, &st, &e), 0);
	advisory_feed_release(&af);
	assert_int_equal(st.added, 15);
	assert_int_equal(count(f->db, sql), 15);
	assert_int_equal(advisory_feed_get(f->db, "trunc", &af, &e), 0);
	assert_int_equal(af.failures, 0);
	assert_null(af.last_error);
	assert_int_equal(af.items, 15);
	assert_int_equal(af.last_status, 200);
	advisory_feed_release(&af);

	/* Removing the feed removes its advisories. */
	assert_int_equal(db_begin(f->db, &e), 0);
	assert_int_equal(advisory_feed_remove(f->db, "trunc", &e), 0);
	assert_int_equal(db_commit(f->db, &e), 0);
	assert_int_equal(count(f->db, sql), 0);
	free(sql);
	free(bad);
	free(good);
}

struct collected {
	int	 n;
	char	*first_json;
	char	*titles[64];
};

static int
collect(const struct advisory *a, void *arg)
{
	struct collected *c = arg;

	if (c->n == 0)
		c->first_json = advisory_json(a);
	if (c->n < 64)
		c->titles[c->n] = xstrdup(a->title);
	c->n++;
	return 0;
}

static void
collected_free(struct collected *c)
{
	for (int i = 0; i < c->n && i < 64; i++)
		free(c->titles[i]);
	free(c->first_json);
	memset(c, 0, sizeof(*c));
}

static void
test_list_filters_json(void **state)
{
	struct fix *f = *state;
	struct advisory_stats st;
	struct err e = ERR_INIT;
	struct advisory_filter flt = { NULL, NULL, NULL, "ipa-list" };
	struct collected c = { 0 };
	long long id = add_feed(f, "ipa-list", "https://www.ipa.go.jp/x.rdf");
	json_t *j, *v;

	(void)state;
	assert_int_equal(store_fixture(f, id, "ipa-alert.rdf",
	    "2026-11-01T00:00:00Z", &st, &e), 15);
	assert_int_equal(advisory_each(f->db, &flt, collect, &c, &e), 0);
	assert_int_equal(c.n, 15);
	/* Newest first. */
	assert_string_equal(c.titles[0],
	    "Oracle Java の脆弱性対策について(CVE-2024-21235等)");
	j = json_loads(c.first_json, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 11);
	assert_string_equal(json_string_value(json_object_get(j, "id")),
	    "https://www.ipa.go.jp/security/security-alert/2024/1016-jre.html");
	assert_string_equal(json_string_value(json_object_get(j, "feed")),
	    "ipa-list");
	assert_string_equal(json_string_value(json_object_get(j, "published")),
	    "2024-10-16T03:00:00Z");
	v = json_object_get(j, "cves");
	assert_true(json_is_array(v));
	assert_string_equal(json_string_value(json_array_get(v, 0)),
	    "CVE-2024-21235");
	v = json_object_get(j, "products");
	assert_string_equal(json_string_value(json_array_get(v, 0)), "java");
	assert_true(json_is_null(json_object_get(j, "cvss")));
	assert_true(json_is_null(json_object_get(j, "severity")));
	assert_non_null(json_object_get(j, "link"));
	assert_non_null(json_object_get(j, "updated"));
	assert_non_null(json_object_get(j, "summary"));
	assert_non_null(json_object_get(j, "title"));
	json_decref(j);
	collected_free(&c);

	/* --since: published on or after; --product. */
	flt.since = "2024-10-01T00:00:00Z";
	assert_int_equal(advisory_each(f->db, &flt, collect, &c, &e), 0);
	assert_int_equal(c.n, 3);
	collected_free(&c);
	flt.since = NULL;
	flt.product = "java";
	assert_int_equal(advisory_each(f->db, &flt, collect, &c, &e), 0);
	assert_int_equal(c.n, 3);
	collected_free(&c);
	flt.product = "windows";
	assert_int_equal(advisory_each(f->db, &flt, collect, &c, &e), 0);
	assert_int_equal(c.n, 10);	/* 9 monthly MS alerts + Windows 10 EoS */
	collected_free(&c);
	flt.product = "php";
	flt.until = "2024-07-01T00:00:00Z";
	assert_int_equal(advisory_each(f->db, &flt, collect, &c, &e), 0);
	assert_int_equal(c.n, 0);	/* the PHP alert is from July 5 */
	collected_free(&c);

	/* CVSS as a number with one decimal. */
	{
		struct advisory a = { 0 };
		char *s;

		a.guid = "g";
		a.feed = "f";
		a.title = "t";
		a.cvss = 9.8;
		a.severity = "Critical";
		s = advisory_json(&a);
		assert_non_null(strstr(s, "\"cvss\":9.8,"));
		assert_non_null(strstr(s, "\"link\":null"));
		free(s);
	}
}

static void
test_retag(void **state)
{
	struct fix *f = *state;
	struct products p = { 0 };
	struct tagger *t;
	struct err e = ERR_INIT;
	char *path = xasprintf("%s/dict.conf", f->dir), *s;
	FILE *fp;
	int n;

	(void)state;
	/* A dictionary where only "cups" exists. */
	fp = fopen(path, "w");
	fputs("[cups]\nja = CUPS\nen = CUPS\nkeyword = CUPS\n", fp);
	fclose(fp);
	assert_int_equal(products_load(&p, path, &e), 0);
	t = tag_new(&p);
	assert_int_equal(db_begin(f->db, &e), 0);
	n = advisory_retag(f->db, t, &e);
	assert_true(n > 0);
	assert_int_equal(db_commit(f->db, &e), 0);
	s = text(f->db, "SELECT products FROM advisory WHERE ident = "
	    "'JVNVU#99019410' LIMIT 1");
	assert_string_equal(s, "cups");
	free(s);
	assert_int_equal(count(f->db, "SELECT count(*) FROM advisory WHERE "
	    "products NOT IN ('', 'cups')"), 0);
	/* Again: nothing changes. */
	assert_int_equal(db_begin(f->db, &e), 0);
	assert_int_equal(advisory_retag(f->db, t, &e), 0);
	assert_int_equal(db_commit(f->db, &e), 0);
	/* Back to the shipped dictionary. */
	assert_int_equal(db_begin(f->db, &e), 0);
	assert_true(advisory_retag(f->db, f->t, &e) > 0);
	assert_int_equal(db_commit(f->db, &e), 0);
	s = text(f->db, "SELECT products FROM advisory WHERE ident = "
	    "'JVNVU#97136265' LIMIT 1");
	assert_string_equal(s, "office,windows");
	free(s);
	tag_free(t);
	products_release(&p);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed),
		cmocka_unit_test(test_feed_list),
		cmocka_unit_test(test_store_new_unchanged_changed),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_shared_guid),
		cmocka_unit_test(test_shared_guid_is_first_link),
		cmocka_unit_test(test_shared_guid_link_seen),
		cmocka_unit_test(test_duplicate_id_differs),
		cmocka_unit_test(test_fetch_failure_stores_nothing),
		cmocka_unit_test(test_list_filters_json),
		cmocka_unit_test(test_retag),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
