/* bounce: every fixture classified; the bounce rules against a database. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "buf.h"
#include "campaign.h"
#include "token.h"
#include "date.h"
#include "db.h"
#include "err.h"
#include "msg.h"
#include "xalloc.h"

#define DIR		"tests/data/bounces/"
#define INSTANCE	"5a17c0de"

static char *
slurp(const char *name, size_t *lenp)
{
	char path[256];
	FILE *fp;
	char *data;
	long n;

	snprintf(path, sizeof(path), DIR "%s", name);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	data = xmalloc((size_t)n + 1);
	assert_int_equal(fread(data, 1, (size_t)n, fp), (size_t)n);
	data[n] = '\0';
	fclose(fp);
	*lenp = (size_t)n;
	return data;
}

/* A fixture with every occurrence of from replaced by to. */
static char *
edited(const char *name, const char *from, const char *to, size_t *lenp)
{
	size_t n;
	char *src = slurp(name, &n), *p;
	struct buf b = BUF_INIT(0);
	const char *s = src;

	while ((p = strstr(s, from)) != NULL) {
		buf_add(&b, s, (size_t)(p - s));
		buf_addstr(&b, to);
		s = p + strlen(from);
	}
	buf_addstr(&b, s);
	free(src);
	return buf_detach(&b, lenp);
}

struct expect {
	const char	*file;
	int		 rc;		/* 1 bounce, 0 not */
	const char	*kind;
	const char	*format;
	const char	*status;
	const char	*addr;		/* first recipient, "" for none */
	const char	*mid;		/* first Message-ID candidate */
};

static const struct expect cases[] = {
	{ "postfix-hard.eml", 1, "hard", "dsn", "5.1.1", "taro@example.co.jp",
	  "newsletter-2026-01.1." INSTANCE "@example.jp" },
	{ "postfix-delayed.eml", 1, "soft", "dsn", "4.4.1", "rokuro@example.jp",
	  "newsletter-2026-01.7." INSTANCE "@example.jp" },
	{ "postfix-mailbox-full.eml", 1, "soft", "dsn", "4.2.2",
	  "rokuro@example.jp",
	  "reminder-2026-02-15.7.reassess-2026-03-01-14." INSTANCE "@example.jp" },
	{ "exim-dsn.eml", 1, "hard", "dsn", "5.1.1", "hanako@example.org",
	  "newsletter-2026-01.2." INSTANCE "@example.jp" },
	{ "exchange-ndr.eml", 1, "hard", "dsn", "5.1.10",
	  "shiro@contoso.example",
	  "newsletter-2026-01.5." INSTANCE "@example.jp" },
	{ "exim-text.eml", 1, "hard", "exim", "5.0.0", "goro@example.ne.jp",
	  "newsletter-2026-01.6." INSTANCE "@example.jp" },
	{ "qmail.eml", 1, "hard", "qmail", "5.1.1", "jiro@example.com",
	  "newsletter-2026-01.3." INSTANCE "@example.jp" },
	{ "gmail-text.eml", 1, "hard", "gmail", "5.1.1", "saburo@example.net",
	  "newsletter-2026-01.4." INSTANCE "@example.jp" },
	{ "jp-isp-text.eml", 1, "hard", "sendmail", "5.1.1",
	  "sachiko@example.ne.jp",
	  "newsletter-2026-01.8." INSTANCE "@example.jp" },
	{ "not-ours.eml", 1, "hard", "dsn", "5.1.1",
	  "stranger@elsewhere.example", "CAF00d1e+abc@mail.gmail.com" },
	{ "forged-mid.eml", 1, "hard", "dsn", "5.1.1", "attacker@evil.example",
	  "newsletter-2026-01.1." INSTANCE "@example.jp" },
	{ "success-dsn.eml", 0, "none", NULL, NULL, NULL, NULL },
	{ "read-receipt.eml", 0, "none", NULL, NULL, NULL, NULL },
	{ "vacation-ja.eml", 0, "none", NULL, NULL, NULL, NULL },
	{ "vacation-en.eml", 0, "none", NULL, NULL, NULL, NULL },
	{ "normal.eml", 0, "none", NULL, NULL, NULL, NULL },
	{ "garbage.bin", 0, "none", NULL, NULL, NULL, NULL },
};

static void
test_classify(void **state)
{
	struct bounce_report *r = xmalloc(sizeof(*r));
	struct err e = ERR_INIT;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct expect *x = &cases[i];
		size_t n;
		char *data = slurp(x->file, &n);
		int rc = bounce_parse(data, n, r, &e);

		print_message("%s\n", x->file);
		assert_int_equal(rc, x->rc);
		assert_string_equal(bounce_kind_name(r->kind), x->kind);
		if (rc == 0) {
			/* Not a bounce: it says what it is, and names nobody. */
			assert_true(r->why[0] != '\0');
			assert_int_equal(r->nrcpts, 0);
		} else {
			assert_string_equal(r->format, x->format);
			assert_true(r->nrcpts >= 1);
			assert_string_equal(r->rcpts[0].status, x->status);
			assert_string_equal(r->rcpts[0].addr, x->addr);
			assert_true(r->nmids >= 1);
			assert_string_equal(r->mids[0], x->mid);
		}
		free(data);
	}
	free(r);
}

/* Details a user would check in a report: the diagnostic is one clean
 * line, the Japanese text was converted, the bounce's own Message-ID is
 * never taken for the original. */
static void
test_details(void **state)
{
	struct bounce_report *r = xmalloc(sizeof(*r));
	struct err e = ERR_INIT;
	size_t n;
	char *data;

	(void)state;
	data = slurp("postfix-hard.eml", &n);
	assert_int_equal(bounce_parse(data, n, r, &e), 1);
	assert_string_equal(r->rcpts[0].diag, "550 5.1.1 <taro@example.co.jp>: "
	    "Recipient address rejected: User unknown in virtual mailbox table");
	assert_string_equal(r->rcpts[0].orig, "taro@example.co.jp");
	assert_string_equal(r->rcpts[0].action, "failed");
	for (size_t i = 0; i < r->nmids; i++)
		assert_null(strstr(r->mids[i], "4Yx2c31Kq9z9sWm"));
	free(data);

	data = slurp("exchange-ndr.eml", &n);
	assert_int_equal(bounce_parse(data, n, r, &e), 1);
	assert_int_equal(r->nrcpts, 1);
	assert_int_equal(r->nmids, 1);	/* headers part and In-Reply-To agree */
	free(data);

	data = slurp("jp-isp-text.eml", &n);
	assert_int_equal(bounce_parse(data, n, r, &e), 1);
	assert_int_equal(r->nrcpts, 1);	/* bounces@example.jp is not one */
	assert_non_null(strstr(r->rcpts[0].diag, "User unknown"));
	free(data);

	/* A plain-text bounce quoting a big message (over the 512 KB kept
	 * for scanning): its facts are up front, and they are found. */
	{
		char *q = slurp("qmail.eml", &n), *big;
		size_t extra = 8000 * 77;

		big = xmalloc(n + extra + 1);
		memcpy(big, q, n);
		for (size_t i = 0; i < 8000; i++)
			memcpy(big + n + i * 77, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n", 77);
		big[n + extra] = '\0';
		assert_int_equal(bounce_parse(big, n + extra, r, &e), 1);
		assert_string_equal(r->rcpts[0].status, "5.1.1");
		assert_string_equal(r->rcpts[0].addr, "jiro@example.com");
		free(big);
		free(q);
	}

	/* multipart/report without its report-type, a delivery-status part
	 * inside: a DSN all the same. */
	data = edited("postfix-hard.eml", "report-type=delivery-status", "x-none=1",
	    &n);
	assert_int_equal(bounce_parse(data, n, r, &e), 1);
	assert_string_equal(r->rcpts[0].status, "5.1.1");
	free(data);

	/* A Postfix text bounce without the report part still parses. */
	data = edited("postfix-hard.eml", "multipart/report", "multipart/mixed",
	    &n);
	assert_int_equal(bounce_parse(data, n, r, &e), 1);
	free(data);
	free(r);
}

static void
test_hostile(void **state)
{
	struct bounce_report *r = xmalloc(sizeof(*r));
	struct err e = ERR_INIT;
	char *big;

	(void)state;
	/* Over the cap: refused before a byte is parsed. */
	big = xcalloc(1, (size_t)BOUNCE_MAX_INPUT + 1);
	assert_int_equal(bounce_parse(big, (size_t)BOUNCE_MAX_INPUT + 1, r, &e),
	    -ERR_TOOBIG);
	assert_int_equal(e.code, ERR_TOOBIG);
	free(big);
	assert_int_equal(bounce_parse("", 0, r, &e), 0);
	/* Every prefix of every fixture: a cut-off message never crashes,
	 * and what it finds is well-formed. */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n;
		char *data = slurp(cases[i].file, &n);

		for (size_t k = 0; k <= n; k += 61) {
			int rc = bounce_parse(data, k, r, &e);

			assert_true(rc == 0 || rc == 1);
			assert_true(r->nrcpts <= BOUNCE_MAX_RCPTS);
			for (size_t j = 0; j < r->nrcpts; j++) {
				assert_null(strchr(r->rcpts[j].diag, '\n'));
				assert_true(r->rcpts[j].status[0] == '\0' ||
				    r->rcpts[j].status[0] == '4' ||
				    r->rcpts[j].status[0] == '5');
			}
		}
		free(data);
	}
	free(r);
}

/* --- the rules ------------------------------------------------------- */

static struct db *
fresh(void)
{
	static const char *const who[] = { "taro@example.co.jp",
	    "hanako@example.org", "jiro@example.com", "saburo@example.net",
	    "shiro@contoso.example", "goro@example.ne.jp", "rokuro@example.jp",
	    "sachiko@example.ne.jp" };
	struct db *db;
	struct err e = ERR_INIT;
	sqlite3_stmt *st;

	assert_int_equal(db_open(&db, ":memory:", DB_CREATE, 1000, &e), 0);
	assert_true(db_migrate(db, &e) >= 1);
	assert_int_equal(db_meta_set(db, "instance", INSTANCE, &e), 0);
	assert_int_equal(db_exec(db, "INSERT INTO campaign (id, kind, name, "
	    "created) VALUES (1, 'newsletter', 'newsletter-2026-01', 'x'), "
	    "(2, 'reminder', 'reminder-2026-02-15', 'x'), "
	    "(3, 'newsletter', 'newsletter-2026-02', 'x')", &e), 0);
	st = db_prepare(db, "INSERT INTO subscriber (id, email, org, created, "
	    "updated) VALUES (?, ?, 'X', 'x', 'x')", &e);
	for (int i = 0; i < 8; i++) {
		sqlite3_bind_int(st, 1, i + 1);
		sqlite3_bind_text(st, 2, who[i], -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	/* Every declarer got January's newsletter; 7 a reminder and
	 * February's newsletter too, which 1 has still queued. */
	assert_int_equal(db_exec(db, "INSERT INTO outbox (campaign_id, "
	    "subscriber_id, rcpt, state, queued_at) SELECT 1, id, email, "
	    "'sent', 'x' FROM subscriber;"
	    "INSERT INTO outbox (campaign_id, subscriber_id, item, rcpt, state, "
	    "queued_at) VALUES (2, 7, 'reassess-2026-03-01-14', "
	    "'rokuro@example.jp', 'sent', 'x'), (3, 7, '', 'rokuro@example.jp', "
	    "'sent', 'x'), (3, 1, '', 'taro@example.co.jp', 'queued', 'x')",
	    &e), 0);
	return db;
}

static long long
count(struct db *db, const char *sql)
{
	sqlite3_stmt *st = db_prepare(db, sql, NULL);
	long long n = -1;

	assert_non_null(st);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static const char *
status_of(struct db *db, int id)
{
	static char buf[32];
	sqlite3_stmt *st = db_prepare(db, "SELECT status FROM subscriber "
	    "WHERE id = ?", NULL);

	sqlite3_bind_int(st, 1, id);
	buf[0] = '\0';
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(buf, sizeof(buf), "%s", sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return buf;
}

static const unsigned char testkey[] = "0123456789abcdef0123456789abcdef";
static const struct token_keys keys = { testkey, 32, NULL, 0 };
static const struct bounce_opts opts = { INSTANCE, 3, 30, 0, &keys, 0,
    "news.example.jp", "news@example.jp", NULL };

/*
 * The fixtures carry our Message-IDs without the HMAC tag that samail
 * adds (they do not know the key): put it in, as the real message had it.
 * Caller frees.
 */
static char *
tag_mids(const char *data, size_t n, size_t *outlen)
{
	static const char suffix[] = "." INSTANCE "@example.jp";
	struct buf out = BUF_INIT(0);
	const char *p = data, *end = data + n, *hit;

	while ((hit = memmem(p, (size_t)(end - p), suffix, sizeof(suffix) - 1))
	    != NULL) {
		const char *start = hit;
		char id[256], name[64], *dot, *item;
		long long sid;

		while (start > p && (isalnum((unsigned char)start[-1]) ||
		    start[-1] == '.' || start[-1] == '-'))
			start--;
		buf_add(&out, p, (size_t)(start - p));
		snprintf(id, sizeof(id), "%.*s", (int)(hit - start), start);
		dot = strchr(id, '.');
		if (dot == NULL) {
			buf_add(&out, start, (size_t)(hit - start) + sizeof(suffix) - 1);
		} else {
			snprintf(name, sizeof(name), "%.*s", (int)(dot - id), id);
			sid = strtoll(dot + 1, &item, 10);
			campaign_message_id(&out, name, sid, *item == '.' ?
			    item + 1 : NULL, INSTANCE, "example.jp", &keys);
		}
		p = hit + sizeof(suffix) - 1;
	}
	buf_add(&out, p, (size_t)(end - p));
	return buf_detach(&out, outlen);
}

/* Parse text (its Message-IDs tagged, see tag_mids) and apply it. */
static void
apply_text(struct db *db, const char *data, size_t n, time_t now,
    struct bounce_result *res)
{
	struct bounce_report *r = xmalloc(sizeof(*r));
	struct err e = ERR_INIT;
	size_t tn;
	char *tagged = tag_mids(data, n, &tn);

	assert_int_equal(bounce_parse(tagged, tn, r, &e), 1);
	assert_int_equal(bounce_apply(db, &opts, r, now, res, &e), 0);
	free(tagged);
	free(r);
}

/* The same, without tagging: what a forger who lacks the key can do. */
static void
apply_raw(struct db *db, const char *name, time_t now,
    struct bounce_result *res)
{
	struct bounce_report *r = xmalloc(sizeof(*r));
	struct err e = ERR_INIT;
	size_t n;
	char *data = slurp(name, &n);

	assert_int_equal(bounce_parse(data, n, r, &e), 1);
	assert_int_equal(bounce_apply(db, &opts, r, now, res, &e), 0);
	free(data);
	free(r);
}

static void
apply_file(struct db *db, const char *name, time_t now,
    struct bounce_result *res)
{
	size_t n;
	char *data = slurp(name, &n);

	apply_text(db, data, n, now, res);
	free(data);
}

static time_t
at(const char *ts)
{
	time_t t;

	assert_int_equal(date_parse_timestamp(ts, &t, NULL), 0);
	return t;
}

static void
test_hard_each_fixture(void **state)
{
	static const struct { const char *file; int id; const char *st; }
	    hard[] = {
		{ "postfix-hard.eml", 1, "5.1.1" },
		{ "exim-dsn.eml", 2, "5.1.1" },
		{ "qmail.eml", 3, "5.1.1" },
		{ "gmail-text.eml", 4, "5.1.1" },
		{ "exchange-ndr.eml", 5, "5.1.10" },
		{ "exim-text.eml", 6, "5.0.0" },
		{ "jp-isp-text.eml", 8, "5.1.1" },
	};
	struct db *db = fresh();
	struct bounce_result res;

	(void)state;
	for (size_t i = 0; i < sizeof(hard) / sizeof(hard[0]); i++) {
		print_message("%s\n", hard[i].file);
		apply_file(db, hard[i].file, at("2026-02-02T01:00:00Z"), &res);
		assert_int_equal(res.declarer, hard[i].id);
		assert_true(res.by_message_id);
		assert_int_equal(res.kind, BOUNCE_HARD);
		assert_string_equal(res.status, hard[i].st);
		assert_true(res.marked);
		assert_string_equal(status_of(db, hard[i].id), "bounced");
	}
	assert_string_equal(status_of(db, 7), "active");
	assert_int_equal(count(db, "SELECT count(*) FROM bounce WHERE "
	    "kind = 'hard'"), 7);
	assert_int_equal(count(db, "SELECT count(*) FROM bounce WHERE "
	    "subscriber_id = 1 AND status = '5.1.1' AND message_id LIKE "
	    "'newsletter-2026-01.1.____________." INSTANCE "@example.jp' AND "
	    "diagnostic "
	    "LIKE '550 5.1.1 %User unknown%'"), 1);
	/* Suppressed, and February's queued message to 1 is cancelled. */
	assert_int_equal(count(db, "SELECT count(*) FROM suppression WHERE "
	    "reason = 'bounced'"), 7);
	assert_int_equal(count(db, "SELECT count(*) FROM outbox WHERE "
	    "subscriber_id = 1 AND campaign_id = 3 AND state = 'cancelled'"), 1);
	/* A second bounce for a bounced address is recorded, changes
	 * nothing else. */
	apply_file(db, "postfix-hard.eml", at("2026-02-03T01:00:00Z"), &res);
	assert_int_equal(res.declarer, 1);
	assert_false(res.marked);
	assert_string_equal(res.status_before, "bounced");
	db_close(db);
}

static void
test_soft_limit(void **state)
{
	struct db *db = fresh();
	struct bounce_result res;
	size_t n;
	char *third;

	(void)state;
	/* A delay warning: one soft bounce. */
	apply_file(db, "postfix-delayed.eml", at("2026-02-02T04:14:40Z"), &res);
	assert_int_equal(res.declarer, 7);
	assert_int_equal(res.kind, BOUNCE_SOFT);
	assert_string_equal(res.status, "4.4.1");
	assert_int_equal(res.soft_count, 1);
	assert_false(res.marked);
	/* The same message's next warning is the same soft bounce. */
	apply_file(db, "postfix-delayed.eml", at("2026-02-02T08:14:40Z"), &res);
	assert_int_equal(res.soft_count, 1);
	/* Another message (the reminder) gave up on a full mailbox: 2. */
	apply_file(db, "postfix-mailbox-full.eml", at("2026-02-20T01:00:05Z"),
	    &res);
	assert_int_equal(res.soft_count, 2);
	assert_false(res.marked);
	assert_string_equal(status_of(db, 7), "active");
	/* A third message within 30 days reaches soft_limit 3. */
	third = edited("postfix-delayed.eml", "newsletter-2026-01.7.",
	    "newsletter-2026-02.7.", &n);
	apply_text(db, third, n, at("2026-02-25T00:00:00Z"), &res);
	assert_int_equal(res.soft_count, 3);
	assert_true(res.marked);
	assert_string_equal(status_of(db, 7), "bounced");
	assert_int_equal(count(db, "SELECT count(*) FROM bounce WHERE "
	    "subscriber_id = 7 AND kind = 'soft'"), 4);
	assert_int_equal(count(db, "SELECT count(*) FROM subscriber WHERE id = 7 "
	    "AND status_reason LIKE '3 soft bounces within 30 days%'"), 1);
	free(third);
	db_close(db);
}

static void
test_soft_window(void **state)
{
	struct db *db = fresh();
	struct bounce_result res;
	size_t n;
	char *third;

	(void)state;
	apply_file(db, "postfix-delayed.eml", at("2026-02-02T04:14:40Z"), &res);
	apply_file(db, "postfix-mailbox-full.eml", at("2026-02-20T01:00:05Z"),
	    &res);
	/* 40 days after the first: only two within the last 30 days. */
	third = edited("postfix-delayed.eml", "newsletter-2026-01.7.",
	    "newsletter-2026-02.7.", &n);
	apply_text(db, third, n, at("2026-03-14T00:00:00Z"), &res);
	assert_int_equal(res.soft_count, 2);
	assert_false(res.marked);
	assert_string_equal(status_of(db, 7), "active");
	free(third);
	db_close(db);
}

static void
test_not_ours(void **state)
{
	struct db *db = fresh();
	struct bounce_result res;
	size_t n;
	char *anon;

	(void)state;
	apply_file(db, "not-ours.eml", at("2026-02-03T02:00:00Z"), &res);
	assert_int_equal(res.declarer, 0);
	/* Our Message-ID for declarer 1, but another recipient: a forgery
	 * (or a forward) is not trusted. */
	apply_file(db, "forged-mid.eml", at("2026-02-03T03:00:00Z"), &res);
	assert_int_equal(res.declarer, 0);
	/* A report that names nobody, with our Message-ID for a declarer
	 * that campaign never mailed (ids are guessable). */
	anon = edited("qmail.eml", "<jiro@example.com>:", "<>:", &n);
	{
		char *p = strstr(anon, "newsletter-2026-01.3.");

		assert_non_null(p);
		memcpy(p, "newsletter-2026-02.3.", 21);
	}
	apply_text(db, anon, strlen(anon), at("2026-02-03T04:00:00Z"), &res);
	assert_int_equal(res.declarer, 0);
	assert_int_equal(count(db, "SELECT count(*) FROM bounce"), 0);
	assert_int_equal(count(db, "SELECT count(*) FROM subscriber WHERE "
	    "status <> 'active'"), 0);
	/* The same with the Message-ID of mail 3 really got: believed. */
	memcpy(strstr(anon, "newsletter-2026-02.3."), "newsletter-2026-01.3.",
	    21);
	apply_text(db, anon, strlen(anon), at("2026-02-03T04:00:00Z"), &res);
	assert_int_equal(res.declarer, 3);
	assert_true(res.by_message_id);
	free(anon);
	/* Our Message-ID without its tag (a forger does not have the key):
	 * only the failed address names declarer 1, and that is recorded
	 * but marks nobody. */
	apply_raw(db, "postfix-hard.eml", at("2026-02-03T05:00:00Z"), &res);
	assert_int_equal(res.declarer, 1);
	assert_false(res.by_message_id);
	assert_true(res.unverified);
	assert_false(res.marked);
	assert_string_equal(status_of(db, 1), "active");
	db_close(db);
}

static void
test_by_address(void **state)
{
	struct db *db = fresh();
	struct bounce_result res;
	size_t n;
	char *data;

	(void)state;
	/* qmail's bounce without the returned message: the address says
	 * who, whatever case the remote MTA used. */
	data = edited("qmail.eml", "Message-Id: <newsletter-2026-01.3.",
	    "X-Was: <", &n);
	{
		char *p = strstr(data, "<jiro@example.com>:");

		assert_non_null(p);
		memcpy(p + 1, "JIRO", 4);
	}
	apply_text(db, data, n, at("2026-02-02T01:00:00Z"), &res);
	assert_int_equal(res.declarer, 3);
	assert_false(res.by_message_id);
	/* Anybody can write a bounce that names an address: recorded, but
	 * the status stays (only our tagged Message-ID or VERP are proof). */
	assert_true(res.unverified);
	assert_false(res.marked);
	assert_string_equal(status_of(db, 3), "active");
	assert_int_equal(count(db, "SELECT count(*) FROM bounce WHERE "
	    "subscriber_id = 3"), 1);
	free(data);
	db_close(db);
}

static void
test_unsubscribed_stays(void **state)
{
	struct db *db = fresh();
	struct bounce_result res;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(db_exec(db, "UPDATE subscriber SET status = "
	    "'unsubscribed' WHERE id = 2", &e), 0);
	apply_file(db, "exim-dsn.eml", at("2026-02-02T01:00:00Z"), &res);
	assert_int_equal(res.declarer, 2);
	assert_false(res.marked);
	assert_string_equal(res.status_before, "unsubscribed");
	assert_string_equal(status_of(db, 2), "unsubscribed");
	assert_int_equal(count(db, "SELECT count(*) FROM bounce WHERE "
	    "subscriber_id = 2"), 1);
	db_close(db);
}

static void
test_dry_run(void **state)
{
	struct db *db = fresh();
	struct bounce_report *r = xmalloc(sizeof(*r));
	struct bounce_result res;
	struct bounce_opts o = opts;
	struct err e = ERR_INIT;
	size_t n, raw;
	char *plain = slurp("postfix-hard.eml", &raw);
	char *data = tag_mids(plain, raw, &n);

	(void)state;
	free(plain);
	o.dry_run = 1;
	assert_int_equal(bounce_parse(data, n, r, &e), 1);
	assert_int_equal(bounce_apply(db, &o, r, at("2026-02-02T01:00:00Z"),
	    &res, &e), 0);
	assert_int_equal(res.declarer, 1);
	assert_true(res.marked);	/* what would happen */
	assert_string_equal(status_of(db, 1), "active");
	assert_int_equal(count(db, "SELECT count(*) FROM bounce"), 0);
	free(data);
	free(r);
	db_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_details),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_hard_each_fixture),
		cmocka_unit_test(test_soft_limit),
		cmocka_unit_test(test_soft_window),
		cmocka_unit_test(test_not_ours),
		cmocka_unit_test(test_by_address),
		cmocka_unit_test(test_unsubscribed_stays),
		cmocka_unit_test(test_dry_run),
	};
	int rc;

	msg_global_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	msg_global_shutdown();
	return rc;
}
