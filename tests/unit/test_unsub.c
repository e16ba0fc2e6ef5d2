/* unsub: token checks with the configured keys, unsubscribing, counts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "campaign.h"
#include "config.h"
#include "date.h"
#include "db.h"
#include "err.h"
#include "token.h"
#include "unsub.h"
#include "xalloc.h"

struct fx {
	char		 dir[64];
	struct config	*cfg;
	struct db	*db;
};

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	chmod(path, mode);
}

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	struct err e = ERR_INIT;
	char path[128], conf[1024];

	snprintf(f->dir, sizeof(f->dir), "/tmp/samail-unsub.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/key", f->dir);
	write_file(path, "0123456789abcdef0123456789abcdef0123456789abcdef\n",
	    0600);
	snprintf(path, sizeof(path), "%s/old.key", f->dir);
	write_file(path, "ffffffffffffffffffffffffffffffffffffffffffffffff\n",
	    0600);
	snprintf(conf, sizeof(conf),
	    "[database]\npath = %s/samail.db\n"
	    "[mail]\nfrom = SECURITY ACTION <news@example.jp>\n"
	    "list_id = <news.example.jp>\n"
	    "[unsubscribe]\nsecret_file = %s/key\n"
	    "old_secret_file = %s/old.key\nold_secret_until = 2026-03-31\n",
	    f->dir, f->dir, f->dir);
	snprintf(path, sizeof(path), "%s/samail.conf", f->dir);
	write_file(path, conf, 0644);
	assert_int_equal(config_load(&f->cfg, path, NULL, &e), 0);
	assert_int_equal(db_open(&f->db, f->cfg->db_path, DB_CREATE, 1000, &e),
	    0);
	assert_true(db_migrate(f->db, &e) >= 1);
	assert_int_equal(db_exec(f->db, "INSERT INTO subscriber (id, email, org, "
	    "locale, status, created, updated) VALUES "
	    "(1, 'a@example.jp', 'A', 'ja', 'active', 'x', 'x'),"
	    "(2, 'b@example.jp', 'B', 'en', 'active', 'x', 'x'),"
	    "(3, 'c@example.jp', 'C', 'ja', 'removed', 'x', 'x'),"
	    "(4, 'd@example.jp', 'D', 'ja', 'bounced', 'x', 'x');"
	    "INSERT INTO campaign (id, kind, name, created) VALUES "
	    "(1, 'newsletter', 'newsletter-2026-01', 'x');"
	    "INSERT INTO outbox (campaign_id, subscriber_id, item, rcpt, state, "
	    "queued_at) VALUES (1, 1, '', 'a@example.jp', 'queued', 'x'),"
	    "(1, 1, 'r', 'a@example.jp', 'deferred', 'x'),"
	    "(1, 1, 's', 'a@example.jp', 'sent', 'x'),"
	    "(1, 2, '', 'b@example.jp', 'queued', 'x')", &e), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	db_close(f->db);
	config_free(f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static time_t
at(const char *ts)
{
	time_t t;

	assert_int_equal(date_parse_timestamp(ts, &t, NULL), 0);
	return t;
}

/* A token made with the key file's bytes for list. */
static void
make(const char *key, int64_t id, const char *list, char *out)
{
	struct token_keys k = { (const unsigned char *)key, strlen(key), NULL,
	    0 };

	assert_int_equal(token_make(&k, id, list, out, NULL), 0);
}

#define KEY	"0123456789abcdef0123456789abcdef0123456789abcdef"
#define OLDKEY	"ffffffffffffffffffffffffffffffffffffffffffffffff"

static void
test_check(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT, first = ERR_INIT;
	char tok[TOKEN_LEN + 1], bad[TOKEN_LEN + 8], url[200];
	const time_t now = at("2026-02-10T00:00:00Z");
	int64_t id;

	make(KEY, 42, "news.example.jp", tok);
	id = 0;
	assert_int_equal(unsub_check(f->cfg, tok, now, &id, &e), 0);
	assert_true(id == 42);
	/* The link as pasted from a mail, or from a List-Unsubscribe
	 * header, works too. */
	snprintf(url, sizeof(url), "https://example.jp/u/%s", tok);
	assert_int_equal(unsub_check(f->cfg, url, now, &id, &e), 0);
	snprintf(url, sizeof(url), "<https://example.jp/u/%s>", tok);
	assert_int_equal(unsub_check(f->cfg, url, now, &id, &e), 0);
	snprintf(url, sizeof(url), "<mailto:unsubscribe@example.jp?subject="
	    "unsubscribe%%20%s>", tok);
	assert_int_equal(unsub_check(f->cfg, url, now, &id, &e), 0);
	snprintf(url, sizeof(url), "unsubscribe %s\n", tok);
	assert_int_equal(unsub_check(f->cfg, url, now, &id, &e), 0);
	/* ...but nothing glued to the token. */
	snprintf(url, sizeof(url), "unsubscribe%s", tok);
	assert_int_equal(unsub_check(f->cfg, url, now, &id, &e), -ERR_INVAL);
	/* The previous key verifies until its end date, not after. */
	make(OLDKEY, 43, "news.example.jp", tok);
	assert_int_equal(unsub_check(f->cfg, tok, now, &id, &e), 0);
	assert_true(id == 43);
	assert_int_equal(unsub_check(f->cfg, tok, at("2026-04-01T00:00:00Z"),
	    &id, &e), -ERR_INVAL);

	/* Everything else is refused with one and the same message. */
	make(KEY, 42, "news.example.jp", tok);
	snprintf(bad, sizeof(bad), "%.*s", TOKEN_LEN - 1, tok);	/* cut */
	assert_int_equal(unsub_check(f->cfg, bad, now, &id, &first), -ERR_INVAL);
	assert_null(strstr(first.msg, bad));
	{
		const char *others[8];
		char flip[TOKEN_LEN + 1], other[TOKEN_LEN + 1],
		    wrongkey[TOKEN_LEN + 1], longer[TOKEN_LEN + 2];

		snprintf(flip, sizeof(flip), "%s", tok);
		flip[20] = flip[20] == 'A' ? 'B' : 'A';
		make(KEY, 42, "other.example.jp", other);
		make("an entirely different 32-byte key!", 42,
		    "news.example.jp", wrongkey);
		snprintf(longer, sizeof(longer), "%sA", tok);
		others[0] = flip;
		others[1] = other;
		others[2] = wrongkey;
		others[3] = longer;
		others[4] = "";
		others[5] = "../../etc/passwd";
		others[6] = "AQAAAAAAAAAq%00ulL05mShhJZM7L4yCz2GUl4ky8ApIu";
		others[7] = NULL;
		for (int i = 0; others[i] != NULL; i++) {
			err_clear(&e);
			id = 0;
			assert_int_equal(unsub_check(f->cfg, others[i], now, &id,
			    &e), -ERR_INVAL);
			assert_true(id == 0);
			assert_string_equal(e.msg, first.msg);
		}
	}
	assert_int_equal(unsub_check(f->cfg, NULL, now, &id, &e), -ERR_INVAL);
}

static long long
count(struct db *db, const char *sql)
{
	sqlite3_stmt *st = db_prepare(db, sql, NULL);
	long long n = -1;

	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void
test_apply(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	char email[ADDR_MAX + 1];
	const time_t now = at("2026-02-10T00:00:00Z");

	assert_int_equal(unsub_apply(f->db, 1, "test", now, email, &e),
	    UNSUB_DONE);
	assert_string_equal(email, "a@example.jp");
	assert_int_equal(count(f->db, "SELECT count(*) FROM subscriber WHERE "
	    "id = 1 AND status = 'unsubscribed' AND status_reason = "
	    "'unsubscribed (test)' AND status_changed = '2026-02-10T00:00:00Z'"),
	    1);
	assert_int_equal(count(f->db, "SELECT count(*) FROM suppression WHERE "
	    "reason = 'unsubscribed'"), 1);
	/* Queued and deferred mail cancelled; what was sent stays sent;
	 * the other declarer's mail is untouched. */
	assert_int_equal(count(f->db, "SELECT count(*) FROM outbox WHERE "
	    "subscriber_id = 1 AND state = 'cancelled'"), 2);
	assert_int_equal(count(f->db, "SELECT count(*) FROM outbox WHERE "
	    "subscriber_id = 1 AND state = 'sent'"), 1);
	assert_int_equal(count(f->db, "SELECT count(*) FROM outbox WHERE "
	    "subscriber_id = 2 AND state = 'queued'"), 1);
	/* Twice is fine and says so. */
	assert_int_equal(unsub_apply(f->db, 1, "test", now, email, &e),
	    UNSUB_ALREADY);
	/* Removed: left as it is.  Purged (no row): nothing to do. */
	assert_int_equal(unsub_apply(f->db, 3, "test", now, NULL, &e),
	    UNSUB_ALREADY);
	assert_int_equal(count(f->db, "SELECT count(*) FROM subscriber WHERE "
	    "id = 3 AND status = 'removed'"), 1);
	assert_int_equal(unsub_apply(f->db, 99, "test", now, email, &e),
	    UNSUB_ALREADY);
	assert_string_equal(email, "");
	/* Bounced, then asked to stop: their wish is recorded. */
	assert_int_equal(unsub_apply(f->db, 4, "test", now, NULL, &e),
	    UNSUB_DONE);
	assert_int_equal(count(f->db, "SELECT count(*) FROM subscriber WHERE "
	    "id = 4 AND status = 'unsubscribed'"), 1);
	assert_int_equal(f->db->in_tx, 0);
}

/* Another process writing: a short wait, then -ERR_LOCKED (the HTTP
 * endpoint answers 503), and nothing changed. */
static void
test_busy(void **state)
{
	struct fx *f = *state;
	struct db *other = NULL;
	struct err e = ERR_INIT;

	assert_int_equal(db_open(&other, f->cfg->db_path, 0, 50, &e), 0);
	assert_int_equal(db_begin(f->db, &e), 0);
	assert_int_equal(unsub_apply(other, 2, "test",
	    at("2026-02-10T00:00:00Z"), NULL, &e), -ERR_LOCKED);
	assert_int_equal(e.code, ERR_LOCKED);
	db_rollback(f->db);
	assert_int_equal(count(f->db, "SELECT count(*) FROM subscriber WHERE "
	    "id = 2 AND status = 'active'"), 1);
	db_close(other);
}

static void
test_locale_and_stats(void **state)
{
	struct fx *f = *state;
	struct err e = ERR_INIT;
	struct unsub_stats st;
	char loc[3];
	time_t now = at("2026-02-10T00:00:00Z");
	int already;

	assert_int_equal(unsub_locale(f->db, 2, loc, &already, &e), 0);
	assert_string_equal(loc, "en");
	assert_false(already);
	assert_int_equal(unsub_locale(f->db, 1, loc, NULL, &e), 0);
	assert_string_equal(loc, "ja");
	assert_int_equal(unsub_locale(f->db, 99, loc, &already, &e), 0);
	assert_string_equal(loc, "ja");
	/* Already: exactly when unsub_apply() would change nothing
	 * (purged, removed, unsubscribed; a bounced one can still
	 * unsubscribe). */
	assert_true(already);
	assert_int_equal(unsub_locale(f->db, 3, loc, &already, &e), 0);
	assert_true(already);
	assert_int_equal(unsub_locale(f->db, 4, loc, &already, &e), 0);
	assert_false(already);

	/* February in Japan starts at 2026-01-31T15:00:00Z. */
	assert_true(unsub_month_start(at("2026-02-10T00:00:00Z")) ==
	    at("2026-01-31T15:00:00Z"));
	assert_true(unsub_month_start(at("2026-01-31T15:00:00Z")) ==
	    at("2026-01-31T15:00:00Z"));
	assert_true(unsub_month_start(at("2026-01-31T14:59:59Z")) ==
	    at("2025-12-31T15:00:00Z"));

	assert_int_equal(unsub_apply(f->db, 1, "test", now, NULL, &e),
	    UNSUB_DONE);
	assert_int_equal(unsub_apply(f->db, 2, "test",
	    at("2026-01-20T00:00:00Z"), NULL, &e), UNSUB_DONE);
	assert_int_equal(db_exec(f->db, "INSERT INTO bounce (subscriber_id, "
	    "received, kind) VALUES (4, '2026-02-01T00:00:00Z', 'hard'), "
	    "(4, '2026-01-01T00:00:00Z', 'soft'), "
	    "(4, '2026-02-05T00:00:00Z', 'soft')", &e), 0);
	assert_int_equal(db_exec(f->db, "UPDATE subscriber SET status_changed = "
	    "'2026-02-01T00:00:00Z' WHERE id = 4", &e), 0);
	assert_int_equal(unsub_stats(f->db, unsub_month_start(now), &st, &e), 0);
	assert_int_equal(st.unsubscribed, 2);
	assert_int_equal(st.unsubscribed_since, 1);
	assert_int_equal(st.bounced, 1);
	assert_int_equal(st.bounced_since, 1);
	assert_int_equal(st.hard_since, 1);
	assert_int_equal(st.soft_since, 1);
	assert_int_equal(unsub_locale(f->db, 1, loc, &already, &e), 0);
	assert_true(already);	/* unsubscribed just above */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locale_and_stats, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
