#include <csv.h>
#include <errno.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "csvimport.h"
#include "date.h"
#include "db.h"
#include "err.h"
#include "subscriber.h"
#include "text.h"
#include "xalloc.h"

#define BLOCK		65536
#define MAX_FIELD	(64 * 1024)	/* a cell larger than this is not a declarer */
/* Columns a row may have: exports from other systems (a CRM, a sales
 * list) carry a hundred or more of their own besides ours. */
#define MAX_COLS	1024
/* A row larger than this is not a declarer (theirs are a few hundred
 * bytes): its cells are not kept, so that memory stays small whatever a
 * file holds (1024 cells of MAX_FIELD would be 64 MB). */
#define MAX_ROW		(1024 * 1024)
/* A cell buffer larger than this is freed after its row (on_row()). */
#define CELL_KEEP	4096
#define COL_STATUS	1000	/* the optional status column */

const char *
csv_encoding_name(enum csv_encoding enc)
{
	switch (enc) {
	case CSV_ENC_UTF8:	return "UTF-8";
	case CSV_ENC_CP932:	return "CP932";
	case CSV_ENC_UTF16:	return "UTF-16";
	default:		return "auto";
	}
}

/* libcsv grows its field buffer without bound; a runaway field (a stray
 * quote swallowing the rest of the file) stops here instead. */
static void *
capped_realloc(void *p, size_t n)
{
	if (n > MAX_FIELD + 1024)
		return NULL;
	return realloc(p, n);
}

struct row {
	struct buf	 cells[MAX_COLS];
	size_t		 n;
	int		 overflow;	/* more than MAX_COLS cells */
	int		 nul;		/* a cell held a NUL byte */
	size_t		 bytes;		/* in the cells so far */
	int		 toolong;	/* over MAX_ROW: cells not kept */
	size_t		 newlines;	/* line breaks inside quoted cells */
};

struct importer {
	struct db			*db;
	const char			*path;
	const struct products		*dict;
	time_t				 now;
	const struct csv_import_opts	*opts;
	struct csv_import_stats		*st;
	void				(*report)(const char *, void *);
	void				*arg;
	struct err			*e;

	struct row	 row;
	size_t		 line;		/* first line of the row being read */
	int		 prev_term;	/* terminator of the previous record */
	int		 col[MAX_COLS];	/* column -> field, -1 unknown */
	size_t		 ncols;
	int		 header_done;
	int		 fatal;		/* -ERR_* that stops the import */
	int		 rowbad;	/* the current row had a problem */
	int		 any_suppressed;	/* the suppression list is not empty */
	size_t		 utf8_badline;	/* detected CP932: where UTF-8 failed */
	long long	 last_id;	/* declarer ids above it: added by this file */
	struct run {			/* rows added: ids id0.. on lines line0.. */
		long long	 id0;
		size_t		 line0, n;
	}		*runs;
	size_t		 nruns;
	size_t		 listed;
	size_t		 unlisted;
};

/* A problem on a line, listed up to max_listed, then counted. */
static void
vlisted(struct importer *im, size_t line, const char *fmt, va_list ap)
{
	char msg[1200], full[1400];

	if (im->listed >= (im->opts->max_listed ? im->opts->max_listed : 100)) {
		im->unlisted++;
		return;
	}
	im->listed++;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	snprintf(full, sizeof(full), "%s:%zu: %s", im->path, line, msg);
	if (im->report != NULL)
		im->report(full, im->arg);
}

/* The row is rejected. */
static void
bad(struct importer *im, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
bad(struct importer *im, size_t line, const char *fmt, ...)
{
	va_list ap;

	im->rowbad = 1;
	va_start(ap, fmt);
	vlisted(im, line, fmt, ap);
	va_end(ap);
}

/* The row is stored, but the admin should look at it. */
static void
warn(struct importer *im, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
warn(struct importer *im, size_t line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlisted(im, line, fmt, ap);
	va_end(ap);
}

/*
 * Private-use characters in a valid UTF-8 cell: CP932's user-defined
 * characters (外字, 0xF040..0xF9FC) decode to U+E000..U+E757, and another
 * system's may come as any of U+E000..U+F8FF or planes 15-16.  Their
 * shape lives only in the font of the PC that made them: mail clients
 * show a blank or a box.  Returns how many; *first and *pos (1-based, in
 * characters) say which is the first.
 */
static size_t
private_use(const char *v, unsigned *first, size_t *pos)
{
	size_t n = 0, ch = 0, left, len;
	const unsigned char *u;
	unsigned cp;

	/* Their lead bytes (U+E000-U+F8FF: EE, EF; planes 15-16: F3, F4)
	 * first: most cells have none, and are not decoded. */
	for (u = (const unsigned char *)v; *u != '\0'; u++)
		if (*u == 0xee || *u == 0xef || *u == 0xf3 || *u == 0xf4)
			break;
	if (*u == '\0')
		return 0;
	for (left = strlen(v); left > 0; v += len, left -= len) {
		len = text_utf8_decode(v, left, &cp);
		ch++;
		if (((cp >= 0xe000 && cp <= 0xf8ff) || cp >= 0xf0000) &&
		    n++ == 0) {
			*first = cp;
			*pos = ch;
		}
	}
	return n;
}

#define SHOWN_MAX	(200 + 4)

/*
 * A cell as a message may quote it: the admin's terminal shows it, so
 * every control character (C0, DEL, C1, the line separators, the bidi
 * controls that reorder what is shown) becomes '?', and a long cell is
 * cut at a character boundary, "..." marking the cut.  out: SHOWN_MAX
 * bytes.  Returns out.
 */
static const char *
shown(const char *v, char *out)
{
	const unsigned char *p = (const unsigned char *)v;
	size_t o = 0;

	while (*p != '\0') {
		size_t k = text_utf8_seq(*p);
		char one[5] = { 0 };

		if (strnlen((const char *)p, k) < k ||
		    !text_utf8_valid((const char *)p, k))
			k = 1;
		memcpy(one, p, k);
		if (o + k > SHOWN_MAX - 4) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if ((k == 1 && *p >= 0x80) || text_has_control(one))
			out[o++] = '?';
		else {
			memcpy(out + o, p, k);
			o += k;
		}
		p += k;
	}
	out[o] = '\0';
	return out;
}

static void
on_field(void *s, size_t len, void *arg)
{
	struct importer *im = arg;
	struct row *r = &im->row;

	for (size_t i = 0; i < len; i++) {
		if (((char *)s)[i] == '\n')
			r->newlines++;
		/* A NUL would silently cut the cell short in everything
		 * after: refuse the row instead. */
		if (((char *)s)[i] == '\0')
			r->nul = 1;
	}
	if (r->n == MAX_COLS) {
		r->overflow = 1;
		return;
	}
	r->bytes += len;
	if (r->bytes > MAX_ROW)
		r->toolong = 1;
	buf_reset(&r->cells[r->n]);
	if (!r->toolong)
		buf_add(&r->cells[r->n], s != NULL ? s : "", s != NULL ? len : 0);
	if (s == NULL || len == 0)
		buf_addstr(&r->cells[r->n], "");
	r->n++;
}

#define IGNORED_SHOWN	5	/* ignored columns a warning names */

/*
 * One warning for the columns that are not declarer fields (a
 * spreadsheet's 備考, a CRM export's hundred of its own): one line, the
 * count and the first few names, in case one of them is a typo.
 */
static void
ignored_columns(struct importer *im, const size_t *idx, char names[][SHOWN_MAX],
    size_t n)
{
	static const char known[] = "(known: email, org, name, star, declared, "
	    "assessed, products, industry, employees, locale, status)";
	struct buf msg = BUF_INIT(0);

	if (n == 0 || im->report == NULL)
		return;
	if (n == 1)
		buf_addf(&msg, "%s:%zu: column %zu '%s' is not a declarer field "
		    "and is ignored %s", im->path, im->line, idx[0] + 1,
		    names[0], known);
	else {
		buf_addf(&msg, "%s:%zu: %zu columns are not declarer fields and "
		    "are ignored:", im->path, im->line, n);
		for (size_t i = 0; i < n && i < IGNORED_SHOWN; i++)
			buf_addf(&msg, "%s %zu '%s'", i ? "," : "", idx[i] + 1,
			    names[i]);
		if (n > IGNORED_SHOWN)
			buf_addf(&msg, " and %zu more", n - IGNORED_SHOWN);
		buf_addf(&msg, " %s", known);
	}
	im->report(buf_str(&msg), im->arg);
	buf_release(&msg);
}

static void
header(struct importer *im)
{
	struct row *r = &im->row;
	int seen[SUB_NFIELDS] = { 0 }, seen_status = 0;
	size_t nignored = 0, idx[IGNORED_SHOWN];
	char names[IGNORED_SHOWN][SHOWN_MAX];

	im->header_done = 1;
	im->ncols = r->n;
	if (r->toolong) {
		im->fatal = err_set(im->e, ERR_INVAL, "%s:%zu: the header row "
		    "is over %d KB; is this the declarers' CSV file?",
		    im->path, im->line, MAX_ROW / 1024);
		return;
	}
	if (r->overflow) {
		im->fatal = err_set(im->e, ERR_INVAL, "%s:%zu: the header row "
		    "has more than %d columns; delete the columns samail does "
		    "not need", im->path, im->line, MAX_COLS);
		return;
	}
	for (size_t i = 0; i < r->n; i++) {
		char *h = text_widen_kana(buf_str(&r->cells[i]));
		int f;

		/* A UTF-8 BOM that survived into the first cell. */
		if (i == 0 && strncmp(h, "\xef\xbb\xbf", 3) == 0)
			memmove(h, h + 3, strlen(h + 3) + 1);
		text_trim(h);
		f = sub_field_lookup(h);
		if (f < 0 && (text_ieq(h, "status") || strcmp(h, "状態") == 0 ||
		    strcmp(h, "ステータス") == 0)) {
			if (seen_status++) {
				im->fatal = err_set(im->e, ERR_INVAL, "%s:%zu: "
				    "column 'status' appears twice", im->path,
				    im->line);
				free(h);
				goto out;
			}
			im->col[i] = COL_STATUS;
		} else if (f < 0) {
			/* Spreadsheets carry their own columns (備考, No.):
			 * ignored, and said so (once), in case of a typo. */
			im->col[i] = -1;
			if (*h != '\0') {
				if (nignored < IGNORED_SHOWN) {
					idx[nignored] = i;
					shown(h, names[nignored]);
				}
				nignored++;
			}
		} else if (seen[f]++) {
			im->fatal = err_set(im->e, ERR_INVAL, "%s:%zu: column "
			    "'%s' appears twice", im->path, im->line,
			    sub_field_name(f));
			free(h);
			goto out;
		} else
			im->col[i] = f;
		free(h);
	}
	if (!seen[SUB_EMAIL] || !seen[SUB_ORG])
		im->fatal = err_set(im->e, ERR_INVAL, "%s:%zu: the header row "
		    "must name at least the columns email and org (メールアドレス, "
		    "事業者名); is the first line the header?", im->path, im->line);
out:
	ignored_columns(im, idx, names, nignored);
}

/* A status cell: NULL if not one; "" (empty) reads as active. */
static const char *
import_status(const char *v)
{
	static const char *const map[][2] = {
		{ "", "active" }, { "active", "active" }, { "有効", "active" },
		{ "unsubscribed", "unsubscribed" }, { "配信停止", "unsubscribed" },
		{ "bounced", "bounced" }, { "不達", "bounced" },
		{ "removed", "removed" }, { "削除", "removed" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (text_ieq(v, map[i][0]))
			return map[i][1];
	return NULL;
}

/* Remember that declarer id was added from line: consecutive rows
 * extend one run, so a clean file needs a single one. */
static void
added_run(struct importer *im, long long id, size_t line)
{
	struct run *r = im->nruns ? &im->runs[im->nruns - 1] : NULL;

	if (r != NULL && id == r->id0 + (long long)r->n &&
	    line == r->line0 + r->n) {
		r->n++;
		return;
	}
	im->runs = xreallocarray(im->runs, im->nruns + 1, sizeof(*im->runs));
	im->runs[im->nruns++] = (struct run){ id, line, 1 };
}

/* The line a declarer added by this file came from (0: not known). */
static size_t
added_line(const struct importer *im, long long id)
{
	size_t lo = 0, hi = im->nruns;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct run *r = &im->runs[mid];

		if (id < r->id0)
			hi = mid;
		else if (id >= r->id0 + (long long)r->n)
			lo = mid + 1;
		else
			return r->line0 + (size_t)(id - r->id0);
	}
	return 0;
}

static void
data_row(struct importer *im)
{
	struct row *r = &im->row;
	struct subscriber s;
	struct err e = ERR_INIT;
	enum sub_outcome out;
	int known = 0;		/* the address is stored (before this file) */
	const char *status;
	int rowbad = 0, rc;

	im->st->rows++;
	if (r->nul) {
		bad(im, im->line, "a cell holds a NUL byte; is this really a "
		    "text CSV file?");
		return;
	}
	if (r->toolong) {
		bad(im, im->line, "the row is over %d KB, where a declarer's "
		    "is a few hundred bytes; is a quote missing its pair?",
		    MAX_ROW / 1024);
		return;
	}
	if (r->overflow || r->n > im->ncols) {
		/* Extra empty cells (Excel pads rows) are harmless. */
		int extra = r->overflow;

		for (size_t i = im->ncols; i < r->n; i++)
			if (buf_str(&r->cells[i])[0] != '\0')
				extra = 1;
		if (extra) {
			bad(im, im->line, "row has %s cells than the header's "
			    "%zu; is a comma missing its quotes?",
			    "more", im->ncols);
			return;
		}
	}
	sub_init(&s);
	status = NULL;
	for (size_t i = 0; i < im->ncols; i++) {
		const char *v = i < r->n ? buf_str(&r->cells[i]) : "";

		/* Export writes '=... for a cell that a spreadsheet would run
		 * as a formula; read it back as it was. */
		if (v[0] == '\'' && v[1] != '\0' && strchr("=+-@", v[1]) != NULL)
			v++;
		if (im->col[i] == COL_STATUS) {
			if ((status = import_status(v)) == NULL) {
				char cell[SHOWN_MAX];

				bad(im, im->line, "status: '%s' is not active, "
				    "unsubscribed, bounced or removed",
				    shown(v, cell));
				rowbad = 1;
			}
			continue;
		}
		if (im->col[i] < 0)
			continue;
		if (sub_set_field(&s, im->col[i], v, im->dict, im->now, &e) < 0) {
			bad(im, im->line, "%s", e.msg);
			rowbad = 1;
		} else {
			unsigned cp = 0;
			size_t pos = 0, n = private_use(v, &cp, &pos);
			char cell[SHOWN_MAX];

			if (n > 0)
				warn(im, im->line, "%s: '%s' has %zu "
				    "user-defined character%s (外字: U+%04X at "
				    "character %zu%s) that mail clients show as "
				    "a blank or a box; stored as it is: write the "
				    "standard character in the sheet and import "
				    "again", sub_field_name(im->col[i]),
				    shown(v, cell), n, n == 1 ? "" : "s", cp, pos,
				    n == 1 ? "" : ", the first");
		}
	}
	if (rowbad)
		goto out;
	if (s.email[0] == '\0' || s.org == NULL) {
		bad(im, im->line, "%s: required, but empty",
		    s.email[0] == '\0' ? "email" : "org");
		goto out;
	}
	/*
	 * The same address twice in one file is a mistake to fix, not a
	 * silent last-one-wins.  A new address (most rows of a first import)
	 * is added at once; a second row with it then finds a declarer
	 * added by this file, and the runs say on which line.  A row for a
	 * declarer stored before, or a suppressed address, goes through
	 * import_seen.
	 */
	if (!im->any_suppressed ||
	    (rc = sub_suppressed(im->db, s.email, NULL, &e)) == 0) {
		long long id;

		if ((rc = sub_insert_new(im->db, &s, im->now, &e)) < 0) {
			im->fatal = err_set(im->e, e.code, "%s:%zu: %s",
			    im->path, im->line, e.msg);
			goto out;
		}
		if (rc == 1) {
			added_run(im, s.id, im->line);
			out = SUB_ADDED;
			goto stored;
		}
		if ((id = sub_id(im->db, s.email, &e)) < 0) {
			im->fatal = err_set(im->e, ERR_DB, "%s", e.msg);
			goto out;
		}
		if (id > im->last_id) {
			bad(im, im->line, "email: '%s' is already on line %zu",
			    s.email, added_line(im, id));
			goto out;
		}
		known = id > 0;
	} else if (rc < 0) {
		im->fatal = err_set(im->e, ERR_DB, "%s", e.msg);
		goto out;
	}
	{
		static const char sql[] =
		    "INSERT INTO temp.import_seen (email, line) VALUES (?, ?)";
		sqlite3_stmt *st = db_stmt(im->db, sql, &e);

		if (st == NULL) {
			im->fatal = err_set(im->e, ERR_DB, "%s", e.msg);
			goto out;
		}
		sqlite3_bind_text(st, 1, s.email, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)im->line);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_CONSTRAINT) {
			sqlite3_stmt *q = db_prepare(im->db, "SELECT line FROM "
			    "temp.import_seen WHERE email = ?", NULL);
			long long first = 0;

			if (q != NULL) {
				sqlite3_bind_text(q, 1, s.email, -1, SQLITE_STATIC);
				if (sqlite3_step(q) == SQLITE_ROW)
					first = sqlite3_column_int64(q, 0);
				sqlite3_finalize(q);
			}
			bad(im, im->line, "email: '%s' is already on line %lld",
			    s.email, first);
			goto out;
		} else if (rc != SQLITE_DONE) {
			im->fatal = db_error(im->db, im->e, "import");
			goto out;
		}
	}
	/* Stored before (known == 1: its insert just failed), or on the
	 * suppression list (only refreshed if stored). */
	if ((known ? sub_refresh(im->db, &s, im->now, &out, &e) :
	    sub_upsert(im->db, &s, im->now, im->any_suppressed, &out,
	    &e)) < 0) {
		im->fatal = err_set(im->e, e.code, "%s:%zu: %s", im->path,
		    im->line, e.msg);
		goto out;
	}
stored:
	/* A status other than active carries over (moving declarers to a
	 * new server keeps their wish); a file never re-activates anyone. */
	if (status != NULL && strcmp(status, "active") != 0 &&
	    out != SUB_SUPPRESSED) {
		rc = sub_set_status(im->db, s.email, status, "set by import",
		    im->now, &e);
		if (rc < 0) {
			im->fatal = err_set(im->e, e.code, "%s:%zu: %s", im->path,
			    im->line, e.msg);
			goto out;
		}
		if (rc > 0 && out == SUB_UNCHANGED)
			out = SUB_UPDATED;
	}
	switch (out) {
	case SUB_ADDED:		im->st->added++; break;
	case SUB_UPDATED:	im->st->updated++; break;
	case SUB_UNCHANGED:	im->st->unchanged++; break;
	case SUB_SUPPRESSED:	im->st->suppressed++; break;
	}
out:
	sub_release(&s);
}

static void
on_row(int term, void *arg)
{
	struct importer *im = arg;
	struct row *r = &im->row;
	size_t lines = 1 + r->newlines;

	if (im->fatal)
		goto next;
	if (r->n == 0) {
		/* With CSV_REPALL_NL every line ending is a record: the LF of
		 * a CRLF is not a line of its own. */
		if (term == '\n' && im->prev_term == '\r')
			lines = 0;
		goto next;
	}
	/* A row of empty cells (",,,," from Excel) is a blank line. */
	{
		int empty = !r->toolong;

		for (size_t i = 0; i < r->n && empty; i++)
			if (buf_str(&r->cells[i])[0] != '\0')
				empty = 0;
		if (empty)
			goto next;
	}
	if (!im->header_done)
		header(im);
	else {
		im->rowbad = 0;
		data_row(im);
		if (im->rowbad)
			im->st->rejected++;
	}
next:
	im->prev_term = term;
	im->line += lines;
	/* A cell's buffer keeps its size from row to row: large ones go, or
	 * rows under MAX_ROW, each with large cells in other columns, would
	 * leave every column's buffer at MAX_FIELD (64 MB) for the rest of
	 * the import. */
	for (size_t i = 0; i < r->n; i++)
		if (r->cells[i].cap > CELL_KEEP) {
			buf_release(&r->cells[i]);
			buf_init(&r->cells[i], MAX_FIELD);
		}
	r->n = 0;
	r->overflow = 0;
	r->nul = 0;
	r->bytes = 0;
	r->toolong = 0;
	r->newlines = 0;
}

static size_t
count_nl(const char *s, size_t n)
{
	const char *p = s, *end = s + n;
	size_t c = 0;

	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		c++;
		p++;
	}
	return c;
}

/* How many whole lines of s[0..n) come before the first one that is not
 * valid UTF-8. */
static size_t
lines_before_bad_utf8(const char *s, size_t n)
{
	const char *p = s, *end = s + n, *nl;
	size_t lines = 0;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!text_utf8_valid(p, (size_t)((nl != NULL ? nl : end) - p)))
			break;
		if (nl == NULL)
			break;
		lines++;
		p = nl + 1;
	}
	return lines;
}

/* Is the whole file valid UTF-8?  Returns 1/0, and the line of the first
 * bad byte. */
static int
file_is_utf8(FILE *fp, size_t *badline)
{
	unsigned char blk[BLOCK + 4];
	size_t carry = 0, n, line = 1;
	int ok = 1;

	while (ok && (n = fread(blk + carry, 1, BLOCK, fp)) > 0) {
		size_t len = carry + n, cut = len;

		/* Keep an incomplete sequence at the end for the next block. */
		for (size_t k = 1; k <= 3 && k <= len; k++) {
			unsigned char c = blk[len - k];

			if ((c & 0xc0) == 0x80)
				continue;
			if (text_utf8_seq(c) > k)
				cut = len - k;
			break;
		}
		if (!feof(fp) || cut != len) {
			if (!text_utf8_valid((char *)blk, cut))
				ok = 0;
		} else if (!text_utf8_valid((char *)blk, len))
			ok = 0;
		if (ok)
			line += count_nl((char *)blk, cut);
		else
			line += lines_before_bad_utf8((char *)blk, len);
		memmove(blk, blk + cut, len - cut);
		carry = len - cut;
	}
	if (ok && carry > 0 && !text_utf8_valid((char *)blk, carry))
		ok = 0;
	*badline = line;
	rewind(fp);
	return ok;
}

/* Convert a CP932 (or UTF-16) block to UTF-8, keeping an incomplete
 * trailing character for the next call.  -1 on an invalid byte. */
static int
iconv_block(iconv_t cd, char *in, size_t *inlen, struct buf *out)
{
	char tmp[BLOCK * 2], *ip = in, *op;
	size_t il = *inlen, ol;

	while (il > 0) {
		op = tmp;
		ol = sizeof(tmp);
		if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1) {
			if (errno == E2BIG) {
				buf_add(out, tmp, (size_t)(op - tmp));
				continue;
			}
			if (errno == EINVAL) {	/* incomplete: wait for more */
				buf_add(out, tmp, (size_t)(op - tmp));
				break;
			}
			buf_add(out, tmp, (size_t)(op - tmp));
			return -1;
		}
		buf_add(out, tmp, (size_t)(op - tmp));
	}
	memmove(in, ip, il);
	*inlen = il;
	return 0;
}

/*
 * The separator, from the first line holding one: a comma, or a tab or a
 * semicolon when the line has none (Excel's "テキスト (タブ区切り)", and
 * its CSV in locales whose decimal mark is a comma).  The header needs two
 * columns (email, org), so its line always holds the file's separator.
 */
static unsigned char
separator(const char *p, size_t n)
{
	const char *end = p + n, *nl;

	for (; p < end; p = nl + 1) {
		size_t len;

		nl = memchr(p, '\n', (size_t)(end - p));
		len = (size_t)((nl != NULL ? nl : end) - p);
		if (memchr(p, ',', len) != NULL)
			return ',';
		if (memchr(p, '\t', len) != NULL)
			return '\t';
		if (memchr(p, ';', len) != NULL)
			return ';';
		if (nl == NULL)
			break;
	}
	return ',';
}

static int
detect(struct importer *im, FILE *fp, enum csv_encoding *enc)
{
	unsigned char head[4] = { 0 };
	size_t n, badline;

	n = fread(head, 1, sizeof(head), fp);
	rewind(fp);
	/* A workbook renamed .csv, or picked instead of its CSV: a ZIP
	 * (.xlsx, .ods, .numbers) or an OLE2 file (.xls). */
	if (n == 4 && (memcmp(head, "PK\3\4", 4) == 0 ||
	    memcmp(head, "\xd0\xcf\x11\xe0", 4) == 0))
		return err_set(im->e, ERR_PARSE, "%s is a spreadsheet workbook "
		    "(.xlsx or .xls), not a CSV file; open it in Excel and save "
		    "it as \"CSV UTF-8\" or \"CSV\"", im->path);
	/* Excel's "Unicode テキスト" (tab-separated): its BOM says so,
	 * whatever --encoding said. */
	if (n >= 2 && ((head[0] == 0xff && head[1] == 0xfe) ||
	    (head[0] == 0xfe && head[1] == 0xff))) {
		*enc = CSV_ENC_UTF16;
		return 0;
	}
	if (*enc != CSV_ENC_AUTO)
		return 0;
	if (n >= 3 && memcmp(head, "\xef\xbb\xbf", 3) == 0) {
		*enc = CSV_ENC_UTF8;
		return 0;
	}
	if (file_is_utf8(fp, &badline)) {
		*enc = CSV_ENC_UTF8;
		return 0;
	}
	im->utf8_badline = badline;
	/* Not UTF-8: Excel in Japan saves CP932 (Shift_JIS with the
	 * Microsoft extensions); the conversion below tells if it is. */
	*enc = CSV_ENC_CP932;
	return 0;
}

int
csv_import(struct db *db, const char *path, const struct products *dict,
    time_t now, const struct csv_import_opts *opts,
    struct csv_import_stats *st, void (*report)(const char *, void *),
    void *arg, struct err *e)
{
	struct importer im;
	struct csv_parser p;
	FILE *fp = NULL;
	iconv_t cd = (iconv_t)-1;
	char raw[BLOCK + 8];
	size_t carry = 0, n, inlen, nl_seen = 0;
	struct buf utf = BUF_INIT(0);
	enum csv_encoding enc = opts->encoding;
	int rc = 0, csv_ready = 0, first = 1;

	memset(st, 0, sizeof(*st));
	memset(&im, 0, sizeof(im));
	im.db = db;
	im.path = path;
	im.dict = dict;
	im.now = now;
	im.opts = opts;
	im.st = st;
	im.report = report;
	im.arg = arg;
	im.e = e;
	im.line = 1;
	for (size_t i = 0; i < MAX_COLS; i++)
		buf_init(&im.row.cells[i], MAX_FIELD);

	if ((fp = fopen(path, "rb")) == NULL) {
		rc = err_set(e, ERR_NOINPUT, "cannot open '%s': %s", path,
		    strerror(errno));
		goto out;
	}
	if ((rc = detect(&im, fp, &enc)) < 0)
		goto out;
	st->encoding = enc;
	st->separator = ',';
	if ((enc == CSV_ENC_CP932 || enc == CSV_ENC_UTF16) &&
	    (cd = iconv_open("UTF-8", enc == CSV_ENC_CP932 ? "CP932" :
	    "UTF-16")) == (iconv_t)-1) {
		rc = err_set(e, ERR_SOFTWARE, "iconv cannot convert %s: %s",
		    csv_encoding_name(enc), strerror(errno));
		goto out;
	}
	if ((rc = db_exec(db, "CREATE TEMP TABLE IF NOT EXISTS import_seen "
	    "(email TEXT PRIMARY KEY COLLATE NOCASE, line INTEGER) WITHOUT ROWID;"
	    "DELETE FROM temp.import_seen", e)) < 0)
		goto out;

	if ((rc = sub_any_suppressed(db, e)) < 0)
		goto out;
	im.any_suppressed = rc;
	if ((im.last_id = sub_last_id(db, e)) < 0) {
		rc = (int)im.last_id;
		goto out;
	}
	rc = 0;
	csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_REPALL_NL |
	    CSV_APPEND_NULL);
	csv_set_realloc_func(&p, capped_realloc);
	csv_ready = 1;
	while ((n = fread(raw + carry, 1, BLOCK, fp)) > 0 || carry > 0) {
		const char *data;
		size_t len;

		if (n == 0 && carry > 0) {
			/* UTF-16 is known by its BOM, which --encoding does
			 * not override: the file was cut short. */
			if (enc == CSV_ENC_UTF16)
				rc = err_set(e, ERR_PARSE, "%s: ends in the "
				    "middle of a UTF-16 character (the file is "
				    "cut short?); save it again from Excel",
				    path);
			else
				rc = err_set(e, ERR_PARSE, "%s: ends in the "
				    "middle of a %s character; is the encoding "
				    "right? (--encoding)", path,
				    csv_encoding_name(enc));
			goto out;
		}
		inlen = carry + n;
		if (cd != (iconv_t)-1) {
			buf_reset(&utf);
			if (iconv_block(cd, raw, &inlen, &utf) < 0) {
				/* utf holds what converted before the bad byte */
				size_t bad = nl_seen + 1 +
				    count_nl(utf.data, utf.len);

				if (enc == CSV_ENC_UTF16)
					rc = err_set(e, ERR_PARSE, "%s:%zu: not "
					    "valid UTF-16; save the file again "
					    "from Excel", path, bad);
				else if (im.utf8_badline == 0)
					rc = err_set(e, ERR_PARSE, "%s:%zu: not "
					    "valid CP932 (Shift_JIS); is it "
					    "another encoding? (--encoding)",
					    path, bad);
				else	/* report the encoding that got further */
					rc = err_set(e, ERR_PARSE, "%s:%zu: "
					    "neither UTF-8 (line %zu is not) nor "
					    "CP932 (line %zu is not); save the "
					    "file as \"CSV UTF-8\" or name its "
					    "encoding with --encoding", path,
					    bad > im.utf8_badline ? bad :
					    im.utf8_badline, im.utf8_badline, bad);
				goto out;
			}
			carry = inlen;
			data = buf_str(&utf);
			len = utf.len;
		} else {
			data = raw;
			len = inlen;
			carry = 0;
			if (!text_utf8_valid(data, len)) {
				/* Hold back an incomplete trailing sequence. */
				size_t cut = len;

				while (cut > 0 && len - cut < 3 &&
				    ((unsigned char)data[cut - 1] & 0xc0) == 0x80)
					cut--;
				if (cut > 0 && (unsigned char)data[cut - 1] >= 0xc0)
					cut--;
				if (!text_utf8_valid(data, cut) || feof(fp)) {
					rc = err_set(e, ERR_PARSE, "%s:%zu: not "
					    "valid UTF-8; if it came from Excel, "
					    "try --encoding cp932", path, nl_seen +
					    1 + lines_before_bad_utf8(data,
					    text_utf8_valid(data, cut) ? len :
					    cut));
					goto out;
				}
				carry = len - cut;
				len = cut;
			}
		}
		if (first && len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
			data += 3;
			len -= 3;
		}
		if (first) {
			st->separator = (char)separator(data, len);
			csv_set_delim(&p, (unsigned char)st->separator);
		}
		first = 0;
		if (csv_parse(&p, data, len, on_field, on_row, &im) != len) {
			rc = err_set(e, ERR_PARSE, "%s:%zu: %s; a field with a "
			    "comma, quote or line break must be in double "
			    "quotes, and a quote inside it doubled (\"\")", path,
			    im.line, csv_error(&p) == CSV_ENOMEM ?
			    "a field is larger than 64 KB" : "malformed CSV");
			goto out;
		}
		nl_seen += count_nl(data, len);
		/* After the BOM data is raw + 3: the rest starts at data + len. */
		if (carry > 0 && cd == (iconv_t)-1)
			memmove(raw, data + len, carry);
		if (im.fatal) {
			rc = im.fatal;
			goto out;
		}
	}
	if (ferror(fp)) {
		rc = err_set(e, ERR_IO, "read '%s': %s", path, strerror(errno));
		goto out;
	}
	if (csv_fini(&p, on_field, on_row, &im) != 0) {
		rc = err_set(e, ERR_PARSE, "%s:%zu: a quoted field is never "
		    "closed (a \" without its partner)", path, im.line);
		goto out;
	}
	if (im.fatal) {
		rc = im.fatal;
		goto out;
	}
	if (!im.header_done) {
		rc = err_set(e, ERR_PARSE, "%s is empty: want a header row and "
		    "one row per declarer", path);
		goto out;
	}
	if (im.unlisted > 0 && report != NULL) {
		char more[128];

		snprintf(more, sizeof(more), "%s: ... and %zu more problems "
		    "not listed", path, im.unlisted);
		report(more, arg);
	}
	if (st->rejected > 0 && !opts->skip_invalid)
		rc = err_set(e, ERR_INVAL, "%s: %zu bad row%s; nothing was "
		    "stored (fix them, or use --skip-invalid to store the good "
		    "rows)", path, st->rejected, st->rejected == 1 ? "" : "s");
out:
	if (csv_ready)
		csv_free(&p);
	if (cd != (iconv_t)-1)
		iconv_close(cd);
	if (fp != NULL)
		fclose(fp);
	buf_release(&utf);
	free(im.runs);
	for (size_t i = 0; i < MAX_COLS; i++)
		buf_release(&im.row.cells[i]);
	return rc;
}

/* --- export --- */

struct exporter {
	FILE				*out;
	const struct csv_export_opts	*opts;
	iconv_t				 cd;
	long				 rows;
	struct buf			 line;
	struct err			*e;
	int				 rc;
};

static void
cell(struct buf *b, const char *v, int last)
{
	/*
	 * A cell starting with = + - @ is run as a formula when the file is
	 * opened in Excel (CSV injection: an org name could be a formula
	 * that fetches a URL).  A leading ' makes it text there; import
	 * takes it off again, so a value that itself starts with ' and one
	 * of those gets one more.
	 */
	if (v != NULL && v[0] != '\0' && (strchr("=+-@", v[0]) != NULL ||
	    (v[0] == '\'' && v[1] != '\0' && strchr("=+-@", v[1]) != NULL))) {
		buf_addstr(b, "\"'");
		for (; *v != '\0'; v++) {
			if (*v == '"')
				buf_addch(b, '"');
			buf_addch(b, *v);
		}
		buf_addstr(b, last ? "\"\r\n" : "\",");
		return;
	}
	/* Quote only when needed; "" inside. */
	if (v != NULL && strpbrk(v, ",\"\r\n") != NULL) {
		buf_addch(b, '"');
		for (; *v != '\0'; v++) {
			if (*v == '"')
				buf_addch(b, '"');
			buf_addch(b, *v);
		}
		buf_addch(b, '"');
	} else if (v != NULL)
		buf_addstr(b, v);
	buf_addstr(b, last ? "\r\n" : ",");
}

static int
emit(struct exporter *x)
{
	if (x->opts->encoding == CSV_ENC_CP932) {
		char *ip = x->line.data, tmp[8192], *op;
		size_t il = x->line.len, ol;

		while (il > 0) {
			op = tmp;
			ol = sizeof(tmp);
			if (iconv(x->cd, &ip, &il, &op, &ol) == (size_t)-1 &&
			    errno != E2BIG)
				return err_set(x->e, ERR_INVAL, "row %ld has a "
				    "character CP932 cannot hold; export as "
				    "UTF-8 instead", x->rows + 1);
			fwrite(tmp, 1, (size_t)(op - tmp), x->out);
		}
	} else
		fwrite(x->line.data, 1, x->line.len, x->out);
	buf_reset(&x->line);
	return ferror(x->out) ? err_set(x->e, ERR_IO, "write: %s",
	    strerror(errno)) : 0;
}

static int
export_one(const struct subscriber *s, void *arg)
{
	struct exporter *x = arg;
	char d1[11] = "", d2[11] = "", star[2], emp[24] = "";

	snprintf(star, sizeof(star), "%d", s->star);
	if (s->declared != SUB_NODATE)
		date_format(s->declared, d1);
	if (s->assessed != SUB_NODATE)
		date_format(s->assessed, d2);
	if (s->employees >= 0)
		snprintf(emp, sizeof(emp), "%ld", s->employees);
	cell(&x->line, s->email, 0);
	cell(&x->line, s->org, 0);
	cell(&x->line, s->name, 0);
	cell(&x->line, star, 0);
	cell(&x->line, d1, 0);
	cell(&x->line, d2, 0);
	/* ';' inside one field: a spreadsheet keeps it in its cell. */
	{
		char *p = xstrdup(s->products);

		for (char *q = p; *q; q++)
			if (*q == ',')
				*q = ';';
		cell(&x->line, p, 0);
		free(p);
	}
	cell(&x->line, s->industry, 0);
	cell(&x->line, emp, 0);
	cell(&x->line, s->locale, 0);
	cell(&x->line, s->status, 1);
	if ((x->rc = emit(x)) < 0)
		return x->rc;
	x->rows++;
	return 0;
}

long
csv_export(struct db *db, FILE *out, const struct sub_filter *f,
    const struct csv_export_opts *opts, struct err *e)
{
	struct exporter x = { out, opts, (iconv_t)-1, 0, BUF_INIT(0), e, 0 };
	int rc;

	if (opts->encoding == CSV_ENC_CP932 &&
	    (x.cd = iconv_open("CP932", "UTF-8")) == (iconv_t)-1)
		return err_set(e, ERR_SOFTWARE, "iconv cannot convert to "
		    "CP932: %s", strerror(errno));
	if (opts->bom && opts->encoding != CSV_ENC_CP932)
		fputs("\xef\xbb\xbf", out);
	for (int i = 0; i < SUB_NFIELDS; i++)
		cell(&x.line, opts->japanese ? sub_field_name_ja(i) :
		    sub_field_name(i), 0);
	cell(&x.line, opts->japanese ? "状態" : "status", 1);
	if ((rc = emit(&x)) == 0)
		rc = sub_each(db, f, export_one, &x, e);
	if (x.cd != (iconv_t)-1)
		iconv_close(x.cd);
	buf_release(&x.line);
	return rc < 0 ? rc : x.rows;
}
