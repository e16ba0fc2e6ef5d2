/*
 * libFuzzer target for the declarer CSV import: csv_import() (encoding
 * and separator detection, libcsv, the header's column names) and every
 * field's check in sub_set_field() (addresses with IDN, dates, stars,
 * products, employees, locale, status) on any bytes, against an
 * in-memory database made by the project's own migrations.  Each input
 * is imported inside a transaction that is rolled back, so the database
 * never grows.  `tests/fuzz/run.sh SECONDS` (make fuzz) builds and runs
 * it with the CSV fixtures as seeds and csv.dict.
 *
 * The input's length picks the options (so a seed file is imported as
 * it is): encoding auto, UTF-8 or CP932; skip_invalid or not.  Two
 * declarers are stored before (one of them is also in the input seeds),
 * and one address is on the suppression list.
 *
 * Besides crashes, leaks and undefined behaviour the target checks what
 * callers rely on: the result is 0, -ERR_INVAL or -ERR_PARSE (never a
 * database or internal error); the error and every reported line is one
 * line without control characters (they are printed on the admin's
 * terminal) and valid UTF-8 but for a cut last character; the counts add
 * up; and every declarer stored holds only what the checks let through
 * (an address that addr_check() returns unchanged, clean one-line text,
 * known product tags).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "csvimport.h"
#include "db.h"
#include "err.h"
#include "log.h"
#include "products.h"
#include "subscriber.h"
#include "text.h"

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct db *db;
static struct products dict;
static char path[4096];
static const time_t now = 1770000000;	/* 2026-02-02 */

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct err e = ERR_INIT;
	const char *tmp = getenv("TMPDIR");
	char hash[65];
	int fd;

	(void)argc;
	(void)argv;
	log_init(-1, 0);
	snprintf(path, sizeof(path), "%s/fuzz_csv.XXXXXX",
	    tmp != NULL && *tmp ? tmp : "/tmp");
	if ((fd = mkstemp(path)) < 0) {
		perror(path);
		abort();
	}
	close(fd);
	sub_email_hash("gone@example.jp", hash);
	if (products_load(&dict, "feeds/products.conf", &e) < 0 ||
	    db_open(&db, ":memory:", DB_CREATE, 100, &e) < 0 ||
	    db_migrate(db, &e) < 0 ||
	    db_exec(db, "INSERT INTO subscriber (id, email, org, created, "
	    "updated) VALUES (1, 'taro@example.co.jp', 'A', 'x', 'x'), "
	    "(2, 'hanako@example.org', 'B', 'x', 'x')", &e) < 0) {
		fprintf(stderr, "fuzz_csv: %s\n", e.msg);
		abort();
	}
	{
		sqlite3_stmt *st = db_prepare(db, "INSERT INTO suppression "
		    "(hash, reason, created) VALUES (?, 'removed', 'x')", &e);

		if (st == NULL)
			abort();
		sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			abort();
		sqlite3_finalize(st);
	}
	return 0;
}

static void
check_line(const char *s)
{
	if (getenv("FUZZ_CSV_SHOW") != NULL)
		fprintf(stderr, "fuzz_csv: line: %s\n", s);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			abort();	/* a control character to the terminal */
	if (!text_utf8_valid(s, strlen(s)) || text_has_control(s))
		abort();
}

static void
report(const char *line, void *arg)
{
	(*(size_t *)arg)++;
	check_line(line);
}

static const char *
col(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);

	return v != NULL ? (const char *)v : "";
}

/* What the import stored passed the checks. */
static void
check_stored(void)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT email, org, "
	    "coalesce(name, ''), coalesce(industry, ''), products, locale, "
	    "status FROM subscriber", NULL);
	char norm[ADDR_MAX + 1];

	if (st == NULL)
		abort();
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *email = col(st, 0), *prod = col(st, 4);

		if (addr_check(email, norm, NULL) < 0 || strcmp(norm, email) != 0)
			abort();
		for (int i = 1; i <= 3; i++)
			if (!text_utf8_valid(col(st, i), strlen(col(st, i))) ||
			    text_has_control(col(st, i)))
				abort();
		if (col(st, 1)[0] == '\0')
			abort();	/* org is required */
		/* products: known tags, comma-separated */
		if (*prod != '\0') {
			char *copy = strdup(prod), *save = NULL;

			for (char *t = strtok_r(copy, ",", &save); t != NULL;
			    t = strtok_r(NULL, ",", &save))
				if (products_tag(&dict, t) == NULL)
					abort();
			free(copy);
		}
	}
	sqlite3_finalize(st);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum csv_encoding encs[] = { CSV_ENC_AUTO, CSV_ENC_UTF8,
	    CSV_ENC_CP932 };
	struct csv_import_opts o = { encs[size % 3], (size / 3) % 2, 5 };
	struct csv_import_stats st;
	struct err e = ERR_INIT;
	size_t nreports = 0;
	FILE *fp;
	int rc;

	if ((fp = fopen(path, "wb")) == NULL ||
	    fwrite(data, 1, size, fp) != size || fclose(fp) != 0)
		abort();
	if (db_begin(db, &e) < 0)
		abort();
	rc = csv_import(db, path, &dict, now, &o, &st, report, &nreports, &e);
	if (rc != 0 && rc != -ERR_INVAL && rc != -ERR_PARSE) {
		fprintf(stderr, "fuzz_csv: unexpected %d: %s\n", rc, e.msg);
		abort();
	}
	if (rc < 0) {
		if (e.code != -rc || e.msg[0] == '\0')
			abort();
		check_line(e.msg);
	}
	/* Every data row has one outcome (a fatal error stops early). */
	if ((rc == 0 || (rc == -ERR_INVAL && st.rejected > 0)) &&
	    st.rows != st.added + st.updated + st.unchanged + st.suppressed +
	    st.rejected)
		abort();
	if (rc == 0 && st.rejected > 0 && !o.skip_invalid)
		abort();
	/* A rejected row is reported (up to max_listed, then a count). */
	if (st.rejected > 0 && nreports == 0)
		abort();
	if (rc == 0 || o.skip_invalid)
		check_stored();
	db_rollback(db);
	return 0;
}
