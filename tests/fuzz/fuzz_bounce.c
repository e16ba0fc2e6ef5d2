/*
 * libFuzzer target for lib/bounce: bounce_parse() on any bytes, and
 * bounce_apply() of what it finds against a small database (dry run, so
 * the database never grows).  `tests/fuzz/run.sh SECONDS` (make fuzz)
 * builds and runs it with the bounce fixtures as seeds and bounce.dict;
 * by hand:
 *
 *   P="gmime-3.0 sqlite3 jansson libcrypto libcurl libxml-2.0 libical \
 *       inih libmicrohttpd libidn2"
 *   clang -g -O1 -std=c17 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
 *       -DSAMAIL_VERSION='"fuzz"' -DSAMAIL_DATADIR='"."' \
 *       -DSAMAIL_SYSCONFDIR='"."' -Ilib $(pkg-config --cflags $P) \
 *       tests/fuzz/fuzz_bounce.c lib/[a-z]*.c $(pkg-config --libs $P) \
 *       -lcsv -lpthread -lm -o build/fuzz_bounce
 *   mkdir -p build/fuzz-bounce-corpus
 *   build/fuzz_bounce -dict=tests/fuzz/bounce.dict -max_len=65536 \
 *       -max_total_time=300 build/fuzz-bounce-corpus tests/data/bounces
 *
 * Besides crashes, leaks and undefined behaviour the target checks what
 * callers rely on: 0 or 1 (never an error below the size cap); a bounce
 * has a kind and 1..BOUNCE_MAX_RCPTS recipients, every status is empty or
 * a 4.x.x/5.x.x code, every diagnostic one line of valid UTF-8, every
 * Message-ID free of brackets and blanks; a non-bounce says why and names
 * nobody; parsing twice gives the same answer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"
#include "db.h"
#include "err.h"
#include "log.h"
#include "msg.h"
#include "text.h"

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct db *db;
static struct bounce_report r1, r2;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct err e = ERR_INIT;

	(void)argc;
	(void)argv;
	log_init(-1, 0);	/* the "not trusted" notes are expected here */
	msg_global_init();
	if (db_open(&db, ":memory:", DB_CREATE, 100, &e) < 0 ||
	    db_migrate(db, &e) < 0 ||
	    db_exec(db, "INSERT INTO subscriber (id, email, org, created, "
	    "updated) VALUES (1, 'taro@example.co.jp', 'A', 'x', 'x'), "
	    "(2, 'hanako@example.org', 'B', 'x', 'x');"
	    "INSERT INTO campaign (id, kind, name, created) VALUES "
	    "(1, 'newsletter', 'newsletter-2026-01', 'x');"
	    "INSERT INTO outbox (campaign_id, subscriber_id, rcpt, queued_at) "
	    "VALUES (1, 1, 'taro@example.co.jp', 'x'), "
	    "(1, 2, 'hanako@example.org', 'x')", &e) < 0) {
		fprintf(stderr, "fuzz_bounce: %s\n", e.msg);
		abort();
	}
	return 0;
}

static void
check(const struct bounce_report *r, int rc)
{
	if (rc == 0) {
		if (r->why[0] == '\0' || r->nrcpts != 0 || r->nmids != 0 ||
		    r->kind != BOUNCE_NONE)
			abort();
		return;
	}
	if (rc != 1 || r->kind == BOUNCE_NONE || r->nrcpts == 0 ||
	    r->nrcpts > BOUNCE_MAX_RCPTS || r->nmids > BOUNCE_MAX_MIDS)
		abort();
	for (size_t i = 0; i < r->nrcpts; i++) {
		const struct bounce_rcpt *c = &r->rcpts[i];

		if (c->kind == BOUNCE_NONE || c->kind > r->kind)
			abort();
		if (c->status[0] != '\0' && c->status[0] != '4' &&
		    c->status[0] != '5')
			abort();
		if (!text_utf8_valid(c->diag, strlen(c->diag)) ||
		    text_has_control(c->diag) ||
		    strlen(c->diag) > BOUNCE_DIAG_MAX)
			abort();
		if (strchr(c->addr, '@') == NULL && c->addr[0] != '\0')
			abort();
	}
	for (size_t i = 0; i < r->nmids; i++)
		if (strpbrk(r->mids[i], "<> \t\r\n") != NULL ||
		    strchr(r->mids[i], '@') == NULL)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bounce_opts o = { "5a17c0de", 3, 30, 1 };
	struct bounce_result res;
	struct err e = ERR_INIT;
	int a, b;

	a = bounce_parse(data, size, &r1, &e);
	check(&r1, a);
	b = bounce_parse(data, size, &r2, &e);
	if (a != b || memcmp(&r1, &r2, sizeof(r1)) != 0)
		abort();
	if (a == 1) {
		if (bounce_apply(db, &o, &r1, 1770000000, &res, &e) < 0 ||
		    db->in_tx)
			abort();
		if (res.declarer != 0 && res.declarer != 1 &&
		    res.declarer != 2)
			abort();
	}
	return 0;
}
