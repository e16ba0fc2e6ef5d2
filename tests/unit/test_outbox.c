/* outbox state machine, backoff, Message-IDs, maildir store. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "campaign.h"
#include "db.h"
#include "err.h"
#include "mailstore.h"
#include "outbox.h"
#include "token.h"

static struct db *
fresh(void)
{
	struct db *db;
	struct err e = ERR_INIT;

	assert_int_equal(db_open(&db, ":memory:", DB_CREATE, 1000, &e), 0);
	assert_true(db_migrate(db, &e) >= 1);
	assert_int_equal(db_exec(db, "INSERT INTO subscriber (id, email, org, "
	    "created, updated) VALUES (1, 'a@example.jp', 'A', 'x', 'x'), "
	    "(2, 'b@example.jp', 'B', 'x', 'x');"
	    "INSERT INTO campaign (id, kind, name, created) VALUES "
	    "(1, 'newsletter', 'newsletter-2026-10', 'x')", &e), 0);
	return db;
}

static const char *
state_of(struct db *db, long long id)
{
	static char buf[32];
	sqlite3_stmt *st = db_prepare(db, "SELECT state FROM outbox WHERE id = ?",
	    NULL);

	sqlite3_bind_int64(st, 1, id);
	buf[0] = '\0';
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(buf, sizeof(buf), "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return buf;
}

static void
test_queue_once(void **state)
{
	struct db *db = fresh();
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(outbox_queue(db, 1, 1, "", "a@example.jp", "{}", 100, &e), 1);
	assert_int_equal(outbox_queue(db, 1, 1, "", "a@example.jp", "{}", 100, &e), 0);
	assert_int_equal(outbox_queue(db, 1, 1, "x", "a@example.jp", "{}", 100, &e), 1);
	db_close(db);
}

static void
test_claim_cycle(void **state)
{
	struct db *db = fresh();
	struct err e = ERR_INIT;
	struct outbox_row r;
	long long first;

	(void)state;
	memset(&r, 0, sizeof(r));
	outbox_queue(db, 1, 1, "", "a@example.jp", "{}", 1000, &e);
	outbox_queue(db, 1, 2, "", "b@example.jp", "{}", 1000, &e);
	assert_int_equal(outbox_claim(db, 2000, &r, &e), 1);
	first = r.id;
	assert_string_equal(r.rcpt, "a@example.jp");
	assert_int_equal(r.attempts, 1);
	assert_string_equal(state_of(db, first), "inflight");
	/* A temporary failure: deferred, not due before next_try. */
	assert_int_equal(outbox_defer(db, first, "451 try later", 2600, &e), 0);
	assert_int_equal(outbox_claim(db, 2000, &r, &e), 1);
	assert_string_equal(r.rcpt, "b@example.jp");
	assert_int_equal(outbox_sent(db, r.id, "smtp://x", "ABC", 2001, &e), 0);
	assert_int_equal(outbox_claim(db, 2500, &r, &e), 0);	/* not due */
	assert_int_equal(outbox_claim(db, 2600, &r, &e), 1);	/* due */
	assert_int_equal(r.id, first);
	assert_int_equal(r.attempts, 2);
	/* A crash now: recover puts it back, the attempt counted. */
	assert_int_equal(outbox_recover(db, 1, &e), 1);
	assert_string_equal(state_of(db, first), "queued");
	assert_int_equal(outbox_claim(db, 2600, &r, &e), 1);
	assert_int_equal(r.attempts, 3);
	/* Never handed over: unclaim does not count the attempt. */
	assert_int_equal(outbox_unclaim(db, r.id, 2700, &e), 0);
	assert_int_equal(outbox_claim(db, 2700, &r, &e), 1);
	assert_int_equal(r.attempts, 3);
	assert_int_equal(outbox_recover(db, 0, &e), 1);
	assert_string_equal(state_of(db, first), "held");
	assert_int_equal(outbox_claim(db, 9999, &r, &e), 0);
	outbox_row_release(&r);
	db_close(db);
}

static void
test_backoff(void **state)
{
	(void)state;
	assert_int_equal(outbox_next_try(1000, 1, NULL, 300, 10, 86400), 1300);
	assert_int_equal(outbox_next_try(1000, 2, NULL, 300, 10, 86400), 1600);
	assert_int_equal(outbox_next_try(1000, 4, NULL, 300, 10, 86400), 3400);
	assert_int_equal(outbox_next_try(1000, 9, NULL, 300, 10, 864000), 1000 + 12 * 3600);
	assert_int_equal(outbox_next_try(1000, 10, NULL, 300, 10, 86400), 0);
	/* Queued more than max_age ago: give up. */
	assert_int_equal(outbox_next_try(200000, 1, "1970-01-01T00:00:00Z", 300,
	    10, 86400), 0);
}

static void
test_message_id(void **state)
{
	static const unsigned char key1[] = "0123456789abcdef0123456789abcdef",
	    key2[] = "fedcba9876543210fedcba9876543210";
	struct token_keys k = { key1, 32, NULL, 0 }, rotated = { key2, 32,
	    key1, 32 }, other = { key2, 32, NULL, 0 };
	struct buf b = BUF_INIT(0);
	char name[64], forged[256], *p;
	long long id;

	(void)state;
	/* Without keys (tests only): the plain form. */
	campaign_message_id(&b, "newsletter-2026-10", 42, NULL, "0a1b2c3d",
	    "example.jp", NULL);
	assert_string_equal(buf_str(&b), "newsletter-2026-10.42.0a1b2c3d@example.jp");
	assert_int_equal(campaign_parse_message_id("<newsletter-2026-10.42."
	    "0a1b2c3d@example.jp>", "0a1b2c3d", NULL, name, &id), 0);
	assert_string_equal(name, "newsletter-2026-10");
	assert_int_equal(id, 42);

	/* With keys: a 12-character tag before the instance, verified. */
	buf_reset(&b);
	campaign_message_id(&b, "reminder-2026-11-26", 7, "2027-01-01:30",
	    "0a1b2c3d", "example.jp", &k);
	assert_int_equal(strncmp(buf_str(&b), "reminder-2026-11-26.7.2027-01-01-30.",
	    36), 0);
	assert_int_equal(strlen(buf_str(&b)), strlen("reminder-2026-11-26.7."
	    "2027-01-01-30.") + 12 + strlen(".0a1b2c3d@example.jp"));
	assert_int_equal(campaign_parse_message_id(buf_str(&b), "0a1b2c3d", &k,
	    name, &id), 0);
	assert_int_equal(id, 7);
	assert_string_equal(name, "reminder-2026-11-26");
	/* After a key rotation the previous key still verifies it. */
	assert_int_equal(campaign_parse_message_id(buf_str(&b), "0a1b2c3d",
	    &rotated, name, &id), 0);
	/* Another key, another declarer's id, a changed tag: refused. */
	assert_int_equal(campaign_parse_message_id(buf_str(&b), "0a1b2c3d",
	    &other, name, &id), -ERR_INVAL);
	snprintf(forged, sizeof(forged), "%s", buf_str(&b));
	p = strstr(forged, ".7.");
	p[1] = '8';
	assert_int_equal(campaign_parse_message_id(forged, "0a1b2c3d", &k,
	    name, &id), -ERR_INVAL);
	snprintf(forged, sizeof(forged), "%s", buf_str(&b));
	p = strstr(forged, ".0a1b2c3d@") - 1;
	*p = *p == 'A' ? 'B' : 'A';
	assert_int_equal(campaign_parse_message_id(forged, "0a1b2c3d", &k,
	    name, &id), -ERR_INVAL);
	/* The untagged form is not accepted when keys are given. */
	assert_int_equal(campaign_parse_message_id("<newsletter-2026-10.42."
	    "0a1b2c3d@example.jp>", "0a1b2c3d", &k, name, &id), -ERR_INVAL);
	assert_int_equal(campaign_parse_message_id("<x.1.ffffffff@example.jp>",
	    "0a1b2c3d", NULL, name, &id), -ERR_INVAL);	/* another instance */
	assert_int_equal(campaign_parse_message_id("<garbage@example.jp>",
	    "0a1b2c3d", NULL, name, &id), -ERR_INVAL);
	buf_release(&b);
}

static void
test_maildir(void **state)
{
	char dir[] = "/tmp/samail-md-XXXXXX", spec[128], path[256];
	struct mailstore *m;
	struct err e = ERR_INIT;
	const char msg[] = "Subject: x\r\n\r\nFrom here\r\nbody\r\n";
	FILE *fp;
	char got[128];
	size_t n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(spec, sizeof(spec), "maildir:%s/md", dir);
	assert_int_equal(mailstore_open(&m, spec, &e), 0);
	assert_int_equal(mailstore_has(m, "1.S1"), 0);
	assert_int_equal(mailstore_deliver(m, "1.S1", msg, sizeof(msg) - 1, 0, &e), 0);
	assert_int_equal(mailstore_has(m, "1.S1"), 1);
	assert_int_equal(mailstore_deliver(m, "../x", msg, 3, 0, &e), -ERR_SOFTWARE);
	mailstore_close(m);
	/* LF line endings in a local store. */
	snprintf(path, sizeof(path), "%s/md/new", dir);
	{
		DIR *d = opendir(path);
		struct dirent *de;

		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				snprintf(path, sizeof(path), "%s/md/new/%s", dir,
				    de->d_name);
		closedir(d);
	}
	fp = fopen(path, "rb");
	n = fread(got, 1, sizeof(got), fp);
	fclose(fp);
	assert_int_equal(n, strlen("Subject: x\n\nFrom here\nbody\n"));
	assert_memory_equal(got, "Subject: x\n\nFrom here\nbody\n", n);
	/* mbox quotes From lines. */
	snprintf(spec, sizeof(spec), "mbox:%s/box", dir);
	assert_int_equal(mailstore_open(&m, spec, &e), 0);
	assert_int_equal(mailstore_deliver(m, "k", msg, sizeof(msg) - 1, 0, &e), 0);
	mailstore_close(m);
	snprintf(path, sizeof(path), "%s/box", dir);
	fp = fopen(path, "rb");
	n = fread(got, 1, sizeof(got) - 1, fp);
	fclose(fp);
	got[n] = '\0';
	assert_non_null(strstr(got, "\n>From here\n"));
	assert_int_equal(strncmp(got, "From MAILER-DAEMON ", 19), 0);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue_once),
		cmocka_unit_test(test_claim_cycle),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_message_id),
		cmocka_unit_test(test_maildir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
