/* csvimport: what the import says about a file (the reproducers that
 * tests/fuzz/fuzz_csv found), against an in-memory database. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "csvimport.h"
#include "db.h"
#include "err.h"
#include "products.h"
#include "text.h"
#include "xalloc.h"

#define NOW	1770000000	/* 2026-02-02 */

struct fx {
	struct db	*db;
	struct products	 dict;
	char		 path[256];
	struct buf	 said;	/* every reported line, each ending in \n */
};

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	struct err e = ERR_INIT;
	const char *tmp = getenv("TMPDIR");
	int fd;

	snprintf(f->path, sizeof(f->path), "%s/samail-csv.XXXXXX",
	    tmp != NULL && *tmp ? tmp : "/tmp");
	assert_true((fd = mkstemp(f->path)) >= 0);
	close(fd);
	buf_init(&f->said, 0);
	if (products_load(&f->dict, "feeds/products.conf", &e) < 0 ||
	    db_open(&f->db, ":memory:", DB_CREATE, 100, &e) < 0 ||
	    db_migrate(f->db, &e) < 0)
		fail_msg("%s", e.msg);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	db_close(f->db);
	products_release(&f->dict);
	unlink(f->path);
	buf_release(&f->said);
	free(f);
	return 0;
}

static void
said(const char *line, void *arg)
{
	struct buf *b = arg;

	buf_addstr(b, line);
	buf_addch(b, '\n');
}

/* Import text (n bytes) and return the result; the lines in f->said. */
static int
import(struct fx *f, const char *text, size_t n, struct csv_import_stats *st,
    struct err *e)
{
	FILE *fp = fopen(f->path, "wb");
	struct csv_import_opts o = { CSV_ENC_AUTO, 0, 100 };
	int rc;

	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, n, fp), n);
	fclose(fp);
	buf_reset(&f->said);
	assert_int_equal(db_begin(f->db, e), 0);
	rc = csv_import(f->db, f->path, &f->dict, NOW, &o, st, said, &f->said,
	    e);
	db_rollback(f->db);
	return rc;
}

/* Every line is one line of valid UTF-8 with no control character: it
 * goes to the admin's terminal. */
static void
assert_clean(const struct buf *b)
{
	char *copy = xstrdup(buf_str(b)), *save = NULL;

	for (char *l = strtok_r(copy, "\n", &save); l != NULL;
	    l = strtok_r(NULL, "\n", &save)) {
		if (!text_utf8_valid(l, strlen(l)) || text_has_control(l))
			fail_msg("not clean: %s", l);
	}
	free(copy);
}

/* An unknown column named by a long Japanese text: quoted cut at a
 * character boundary, not in the middle of one (fuzz_csv: "%.200s"). */
static void
test_long_header_cut(void **state)
{
	struct fx *f = *state;
	struct csv_import_stats st;
	struct err e = ERR_INIT;
	struct buf csv = BUF_INIT(0);

	buf_addstr(&csv, "email,org,x");
	for (int i = 0; i < 100; i++)
		buf_addstr(&csv, "備考");	/* 3 bytes each: 1 + 600 */
	buf_addstr(&csv, "\na@example.jp,A,\n");
	assert_int_equal(import(f, buf_str(&csv), csv.len, &st, &e), 0);
	assert_non_null(strstr(buf_str(&f->said), "column 3 'x備考"));
	assert_non_null(strstr(buf_str(&f->said), "...' is not a declarer"));
	assert_clean(&f->said);
	buf_release(&csv);
}

/* Control characters in a header cell or a status cell are not echoed:
 * ESC (a terminal escape), U+202E (reverses what follows), U+0085. */
static void
test_controls_not_echoed(void **state)
{
	static const char csv[] = "email,org,\xe2\x80\xae" "evil\x1b[2J,status\n"
	    "a@example.jp,A,,\x1b]0;owned\x07\xc2\x85\xe2\x80\xae" "x\n";
	struct fx *f = *state;
	struct csv_import_stats st;
	struct err e = ERR_INIT;

	assert_int_equal(import(f, csv, sizeof(csv) - 1, &st, &e), -ERR_INVAL);
	assert_int_equal(st.rejected, 1);
	assert_non_null(strstr(buf_str(&f->said), "column 3 '?evil?[2J'"));
	assert_non_null(strstr(buf_str(&f->said),
	    "status: '?]0;owned???x' is not active"));
	assert_clean(&f->said);
}

/* A products cell may hold line breaks (one product per line), but no
 * other control character: an unknown item is quoted back, and U+0085
 * (C1 NEL) or U+202E went to the terminal with it (fuzz_csv). */
static void
test_products_controls(void **state)
{
	static const char csv[] = "email,org,products\n"
	    "a@example.jp,A,\"windows\r\noffice\"\n"	/* lines 2-3 */
	    "b@example.jp,B,Microsoft Of\xc2\x85" "ce\n"
	    "c@example.jp,C,\xe2\x80\xae" "swodniw\n";
	struct fx *f = *state;
	struct csv_import_stats st;
	struct err e = ERR_INIT;

	assert_int_equal(import(f, csv, sizeof(csv) - 1, &st, &e), -ERR_INVAL);
	assert_int_equal(st.rows, 3);
	assert_int_equal(st.rejected, 2);
	assert_non_null(strstr(buf_str(&f->said), ":4: products contains a "
	    "control character"));
	assert_non_null(strstr(buf_str(&f->said), ":5: products contains a "
	    "control character"));
	assert_clean(&f->said);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_long_header_cut, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_controls_not_echoed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_products_controls, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
