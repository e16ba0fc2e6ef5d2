/*
 * csvimport — declarers from a CSV file (libcsv, iconv), and back out.
 *
 * Import streams: the file is read in blocks, converted to UTF-8 (CP932,
 * Excel's default in Japan, is detected or named; UTF-16 with a BOM is
 * detected), parsed by libcsv and
 * stored row by row in the caller's transaction, so memory stays flat in
 * the row count.  The header row names the columns (English or Japanese,
 * any order); email and org are required.
 */
#ifndef SAMAIL_CSVIMPORT_H
#define SAMAIL_CSVIMPORT_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

struct db;
struct err;
struct products;
struct sub_filter;

/* UTF-16 is only detected, by its BOM (Excel's "Unicode テキスト"). */
enum csv_encoding { CSV_ENC_AUTO, CSV_ENC_UTF8, CSV_ENC_CP932, CSV_ENC_UTF16 };

struct csv_import_opts {
	enum csv_encoding encoding;
	int		  skip_invalid;	/* store good rows, list bad ones */
	size_t		  max_listed;	/* bad rows listed at most (0: 100) */
};

struct csv_import_stats {
	size_t	rows;		/* data rows read */
	size_t	added, updated, unchanged, suppressed, rejected;
	enum csv_encoding encoding;	/* what the file was read as */
	char	separator;	/* ',', or '\t' or ';' (detected) */
};

/*
 * Import path into db inside the caller's transaction.  Each bad row is
 * reported through report() as "FILE:LINE: field: problem" (up to
 * max_listed, then one line with the count of the rest).  Returns 0 if
 * every row was good (or skip_invalid), -ERR_INVAL if a row was bad (the
 * caller rolls back: nothing is stored), -ERR_PARSE for a file that is
 * not CSV or not in a known encoding, -ERR_NOINPUT if it cannot be read.
 */
int	 csv_import(struct db *, const char *path, const struct products *,
	    time_t now, const struct csv_import_opts *,
	    struct csv_import_stats *, void (*report)(const char *, void *),
	    void *arg, struct err *);

struct csv_export_opts {
	enum csv_encoding encoding;	/* UTF-8 (default) or CP932 */
	int		  bom;		/* UTF-8 BOM, for Excel */
	int		  japanese;	/* Japanese column names */
};

/* Write the declarers matching f as CSV that csv_import reads back
 * unchanged.  Returns the number of rows written or -ERR_*. */
long	 csv_export(struct db *, FILE *out, const struct sub_filter *f,
	    const struct csv_export_opts *, struct err *);

const char *csv_encoding_name(enum csv_encoding);

#endif
