#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sysexits.h>
#include <unistd.h>

#include "date.h"
#include "db.h"
#include "err.h"
#include "lock.h"
#include "newsletter.h"
#include "runs.h"
#include "xalloc.h"

/* --- the newsletter schedule ------------------------------------------ */

void
runs_schedule(time_t now, int day, int hour, struct runs_schedule *s)
{
	int y, m, d;

	date_civil(date_jst_day(now), &y, &m, &d);
	s->due = date_jst_time(date_days(y, m, day), hour, 0);
	if (--m == 0) {
		m = 12;
		y--;
	}
	s->year = y;
	s->month = m;
}

/* The meta key that records a skipped period. */
static void
skip_key(int y, int m, char out[40])
{
	char name[32];

	newsletter_campaign_name(y, m, name);
	snprintf(out, 40, "skip %s", name);
}

int
runs_newsletter_action(struct db *db, time_t now, int day, int hour,
    struct runs_schedule *s, char *built_at, struct err *e)
{
	sqlite3_stmt *st;
	char name[32], *skipped;
	int rc, action = RUNS_NL_BUILD;

	runs_schedule(now, day, hour, s);
	if (built_at != NULL)
		built_at[0] = '\0';
	newsletter_campaign_name(s->year, s->month, name);
	/* Built already counts before due: an admin may have built it by
	 * hand early, and no run should then say "not due". */
	if ((st = db_prepare(db, "SELECT created FROM campaign WHERE name = ?",
	    e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		action = RUNS_NL_BUILT;
		if (built_at != NULL)
			snprintf(built_at, 21, "%s",
			    (const char *)sqlite3_column_text(st, 0));
	} else if (rc != SQLITE_DONE)
		action = db_error(db, e, "read campaign");
	else if ((skipped = runs_skipped(db, s->year, s->month)) != NULL) {
		action = RUNS_NL_SKIPPED;
		if (built_at != NULL)
			snprintf(built_at, 21, "%s", skipped);
		free(skipped);
	} else if (now < s->due)
		action = RUNS_NL_WAIT;
	sqlite3_finalize(st);
	return action;
}

/* --- missed periods --------------------------------------------------- */

/* The first instant of month m (may be 13, 14: of the next year), Japan
 * time. */
static time_t
month_start(int y, int m)
{
	while (m > 12) {
		m -= 12;
		y++;
	}
	return date_jst_time(date_days(y, m, 1), 0, 0);
}

void
runs_window(int y, int m, int day, int hour, time_t *open, time_t *close)
{
	int ny = y, nm = m + 1;

	if (nm == 13) {
		nm = 1;
		ny++;
	}
	*open = date_jst_time(date_days(ny, nm, day), hour, 0);
	*close = month_start(y, m + 2);
}

char *
runs_skipped(struct db *db, int y, int m)
{
	char key[40];

	skip_key(y, m, key);
	return db_meta_get(db, key);
}

int
runs_skip(struct db *db, int y, int m, time_t now, struct err *e)
{
	char key[40], ts[21];

	skip_key(y, m, key);
	date_format_timestamp(now, ts);
	return db_meta_set(db, key, ts, e);
}

/* The runs that ran: not those refused for their clock, whose recorded
 * times are that wrong clock's (a 2001 one would make every month since
 * look missed).  RUNS_CLOCK_REFUSED, as an SQL LIKE pattern. */
#define RAN	"coalesce(summary, '') NOT LIKE 'not run: the machine''s " \
		"clock says %'"

/* One text column of the first row of sql with ?1, ?2 bound to a and b
 * (unbound when NULL), into out (21 bytes; "" none). */
static int
first_text(struct db *db, const char *sql, const char *a, const char *b,
    char out[21], struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	out[0] = '\0';
	if ((st = db_prepare(db, sql, e)) == NULL)
		return -ERR_DB;
	if (a != NULL)
		sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
	if (b != NULL)
		sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		snprintf(out, 21, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 :
	    db_error(db, e, "read runs");
}

/* The runs in [open, close): how many, and what the last one said. */
static int
window_runs(struct db *db, const char *open, const char *close,
    struct runs_missed *mi, struct err *e)
{
	sqlite3_stmt *st;
	const char *sum, *p, *nl;
	int rc;

	if ((st = db_prepare(db, "SELECT count(*) OVER (), started, finished, "
	    "summary FROM run WHERE started >= ?1 AND started < ?2 AND " RAN
	    " ORDER BY "
	    "started DESC, id DESC LIMIT 1", e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_text(st, 1, open, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, close, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		mi->runs_in_window = sqlite3_column_int64(st, 0);
		snprintf(mi->last_in_window, sizeof(mi->last_in_window), "%s",
		    (const char *)sqlite3_column_text(st, 1));
		mi->last_died = sqlite3_column_type(st, 2) == SQLITE_NULL;
		sum = (const char *)sqlite3_column_text(st, 3);
		if (!mi->last_died && sum != NULL) {
			/* Its newsletter line, else its first ("not run: the
			 * lock ..."). */
			for (p = sum; *p != '\0'; p = *nl ? nl + 1 : nl) {
				nl = p + strcspn(p, "\n");
				if (strncmp(p, "newsletter: ", 12) == 0) {
					sum = p + 12;
					break;
				}
			}
			snprintf(mi->last_said, sizeof(mi->last_said), "%.*s",
			    (int)strcspn(sum, "\n"), sum);
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 :
	    db_error(db, e, "read runs");
}

#define MISSED_MONTHS	12

int
runs_missed(struct db *db, time_t now, int day, int hour,
    int (*fn)(const struct runs_missed *, void *), void *arg, struct err *e)
{
	struct runs_missed mi;
	sqlite3_stmt *st;
	char first[21], open[21], close[21], name[32], *skipped;
	int y, m, d, rc, built;

	if ((rc = first_text(db, "SELECT min(started) FROM run WHERE " RAN, NULL,
	    NULL, first, e)) < 0)
		return rc;
	if (first[0] == '\0')
		return 0;		/* no run yet: nothing was missed */
	/* Two months back is the newest period whose window has ended
	 * (the month before's is open, or not due yet): the 12 up to it. */
	date_civil(date_jst_day(now), &y, &m, &d);
	m -= MISSED_MONTHS + 2;
	while (m < 1) {
		m += 12;
		y--;
	}
	for (int i = 0; i <= MISSED_MONTHS; i++) {
		if (++m == 13) {
			m = 1;
			y++;
		}
		memset(&mi, 0, sizeof(mi));
		mi.year = y;
		mi.month = m;
		runs_window(y, m, day, hour, &mi.open, &mi.close);
		if (mi.close > now)
			break;
		date_format_timestamp(mi.open, open);
		date_format_timestamp(mi.close, close);
		/* Before samail ran at all: not missed. */
		if (strcmp(first, close) >= 0)
			continue;
		newsletter_campaign_name(y, m, name);
		if ((st = db_prepare(db, "SELECT count(*) FROM campaign WHERE "
		    "name = ?", e)) == NULL)
			return -ERR_DB;
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		built = rc == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
		sqlite3_finalize(st);
		if (rc != SQLITE_ROW)
			return db_error(db, e, "read campaign");
		if (built)
			continue;
		if ((skipped = runs_skipped(db, y, m)) != NULL) {
			free(skipped);
			continue;
		}
		if ((rc = first_text(db, "SELECT max(started) FROM run WHERE "
		    "started < ?1 AND " RAN, open, NULL, mi.last_before, e)) < 0 ||
		    (rc = first_text(db, "SELECT min(started) FROM run WHERE "
		    "started >= ?1 AND " RAN, close, NULL, mi.first_after, e)) < 0 ||
		    (rc = window_runs(db, open, close, &mi, e)) < 0)
			return rc;
		if ((rc = fn(&mi, arg)) != 0)
			return rc;
	}
	return 0;
}

void
runs_missed_reason(const struct runs_missed *mi, char *out, size_t size)
{
	char a[24], b[24];
	time_t t;

	if (mi->runs_in_window > 0) {
		runs_format_jst(mi->open, a);
		runs_format_jst(mi->close, b);
		snprintf(out, size, "the %ld run%s between %s and %s did not "
		    "build it%s%s", mi->runs_in_window, mi->runs_in_window == 1 ?
		    "" : "s", a, b, mi->last_died ? ": " : "",
		    mi->last_died ? (mi->runs_in_window == 1 ? "it was "
		    "interrupted" : "the last one was interrupted") : "");
		if (!mi->last_died && mi->last_said[0] != '\0') {
			size_t n = strlen(out);

			if (n < size)
				snprintf(out + n, size - n, "; the last one said: "
				    "%s", mi->last_said);
		}
		return;
	}
	if (date_parse_timestamp(mi->last_before, &t, NULL) == 0)
		runs_format_jst(t, a);
	else
		snprintf(a, sizeof(a), "%s", mi->last_before);
	if (mi->first_after[0] == '\0') {
		snprintf(out, size, "no run since %s", a);
		return;
	}
	if (date_parse_timestamp(mi->first_after, &t, NULL) == 0)
		runs_format_jst(t, b);
	else
		snprintf(b, sizeof(b), "%s", mi->first_after);
	snprintf(out, size, "no run between %s and %s", a, b);
}

void
runs_missed_advice(const struct runs_missed *mi, char *out, size_t size)
{
	snprintf(out, size, "build it with 'samail newsletter build --period "
	    "%04d-%02d' if it is still wanted, or drop it with 'samail "
	    "newsletter skip --period %04d-%02d'", mi->year % 10000, mi->month,
	    mi->year % 10000, mi->month);
}

void
runs_format_jst(time_t t, char *out)
{
	int y, m, d;
	long secs = (long)((t + DATE_JST_OFFSET) % 86400);

	if (secs < 0)
		secs += 86400;
	date_civil(date_jst_day(t), &y, &m, &d);
	snprintf(out, 21, "%04d-%02d-%02d %02ld:%02ld JST", y % 10000, m, d,
	    secs / 3600, secs / 60 % 60);
}

/* --- the record of runs ----------------------------------------------- */

long long
runs_start(struct db *db, const char *kind, time_t started, struct err *e)
{
	sqlite3_stmt *st = NULL;
	char ts[21];
	long long id;
	int rc;

	date_format_timestamp(started, ts);
	/* A database held busy by another process is -ERR_LOCKED (75, try
	 * again), not an I/O error. */
	if ((rc = db_begin(db, e)) < 0)
		return rc;
	/* finished and exit_code stay NULL on those: an end and an exit
	 * status that never happened are not invented. */
	rc = -ERR_DB;
	if ((st = db_prepare(db, "UPDATE run SET summary = ? WHERE finished "
	    "IS NULL AND summary IS NULL", e)) == NULL)
		goto fail;
	sqlite3_bind_text(st, 1, RUNS_INTERRUPTED, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_error(db, e, "mark interrupted runs");
		goto fail;
	}
	sqlite3_finalize(st);
	if ((st = db_prepare(db, "INSERT INTO run (kind, started) VALUES (?, ?)",
	    e)) == NULL)
		goto fail;
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ts, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_error(db, e, "record the run");
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	id = sqlite3_last_insert_rowid(db->h);
	if ((rc = db_commit(db, e)) < 0) {
		db_rollback(db);
		return rc;
	}
	return id;
fail:
	sqlite3_finalize(st);
	db_rollback(db);
	return rc;
}

int
runs_finish(struct db *db, long long id, time_t finished, int exit_code,
    const char *summary, struct err *e)
{
	sqlite3_stmt *st;
	char ts[21];
	int rc = 0;

	date_format_timestamp(finished, ts);
	if ((rc = db_begin(db, e)) < 0)
		return rc;
	if ((st = db_prepare(db, "UPDATE run SET finished = ?, exit_code = ?, "
	    "summary = ? WHERE id = ?", e)) == NULL) {
		db_rollback(db);
		return -ERR_DB;
	}
	sqlite3_bind_text(st, 1, ts, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, exit_code);
	db_bind_text(st, 3, summary);
	sqlite3_bind_int64(st, 4, id);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(db, e, "record the end of the run");
	sqlite3_finalize(st);
	if (rc < 0) {
		db_rollback(db);
		return rc;
	}
	return db_commit(db, e);
}

int
runs_record(struct db *db, const char *kind, time_t started, time_t finished,
    int exit_code, const char *summary, struct err *e)
{
	sqlite3_stmt *st;
	char ts1[21], ts2[21];
	int rc = 0;

	date_format_timestamp(started, ts1);
	date_format_timestamp(finished, ts2);
	if ((rc = db_begin(db, e)) < 0)
		return rc;
	if ((st = db_prepare(db, "INSERT INTO run (kind, started, finished, "
	    "exit_code, summary) VALUES (?, ?, ?, ?, ?)", e)) == NULL) {
		db_rollback(db);
		return -ERR_DB;
	}
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ts1, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, ts2, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, exit_code);
	db_bind_text(st, 5, summary);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(db, e, "record the run");
	sqlite3_finalize(st);
	if (rc < 0) {
		db_rollback(db);
		return rc;
	}
	return db_commit(db, e);
}

int
runs_clock(struct db *db, time_t now, int accept, char *last, struct err *e)
{
	time_t floor, mark = 0;
	char ts[21], *v;
	int rc;

	last[0] = '\0';
	if (date_parse_timestamp(RUNS_CLOCK_FLOOR, &floor, NULL) == 0 &&
	    now < floor)
		return 1;		/* no samail ran then: never right */
	if ((rc = db_begin(db, e)) < 0)
		return rc;
	if ((v = db_meta_get(db, RUNS_META_CLOCK)) != NULL &&
	    date_parse_timestamp(v, &mark, NULL) < 0)
		mark = 0;
	if (v != NULL && mark != 0 && now < mark - RUNS_CLOCK_SLACK &&
	    !accept) {
		snprintf(last, 21, "%s", v);
		free(v);
		db_rollback(db);
		return 1;
	}
	free(v);
	if (now > mark || accept) {
		date_format_timestamp(now, ts);
		if ((rc = db_meta_set(db, RUNS_META_CLOCK, ts, e)) < 0) {
			db_rollback(db);
			return rc;
		}
	}
	if ((rc = db_commit(db, e)) < 0) {
		db_rollback(db);
		return rc;
	}
	return 0;
}

int
runs_lock_holder(const char *db_path, char *holder, size_t size,
    struct err *e)
{
	char *path = lock_file_path(db_path);
	ssize_t n;
	int fd, held = 0;

	if (size > 0)
		holder[0] = '\0';
	/* Read-only: status may be run by an admin who cannot write the
	 * state directory, and must never create or change the file. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		int rc = errno == ENOENT ? 0 : err_set(e, ERR_IO, "cannot read "
		    "the lock file '%s': %s", path, strerror(errno));

		free(path);
		return rc;
	}
	if (flock(fd, LOCK_SH | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			held = 1;
			if (size > 1) {
				n = pread(fd, holder, size - 1, 0);
				holder[n > 0 ? n : 0] = '\0';
				holder[strcspn(holder, "\n")] = '\0';
			}
		} else
			held = err_set(e, ERR_IO, "lock '%s': %s", path,
			    strerror(errno));
	} else
		flock(fd, LOCK_UN);
	close(fd);
	free(path);
	return held;
}

/* --- words for the admin ---------------------------------------------- */

void
runs_feed_reason(int code, long http_status, const char *msg, char *out,
    size_t size, int *retried)
{
	int again = 1;

	if (code < 0)
		code = -code;
	msg = msg != NULL ? msg : "";
	/* The messages come from lib/fetch.c and lib/advisory.c; the full
	 * one is logged above the summary, this is its gist. */
	switch (code) {
	case ERR_NET:
		if (http_status >= 400) {
			if (http_status == 404 || http_status == 410) {
				snprintf(out, size, "gone (HTTP %ld): check its "
				    "URL with 'samail feed list'", http_status);
				again = 0;
			} else if (http_status == 401 || http_status == 403) {
				snprintf(out, size, "refused access (HTTP %ld)",
				    http_status);
				again = 0;
			} else
				snprintf(out, size, "unreachable (HTTP %ld)",
				    http_status);
		} else if (strstr(msg, "no complete answer") != NULL)
			snprintf(out, size, "unreachable (no answer in time)");
		else if (strstr(msg, "resolve") != NULL) {
			snprintf(out, size, "unreachable (host name not found)");
			again = 0;
		} else if (strstr(msg, "cannot connect") != NULL)
			snprintf(out, size, "unreachable (cannot connect)");
		else if (strstr(msg, "TLS") != NULL)
			snprintf(out, size, "unreachable (TLS failed)");
		else if (strstr(msg, "redirect") != NULL) {
			snprintf(out, size, "refused (bad redirect)");
			again = 0;
		} else
			snprintf(out, size, "unreachable");
		break;
	case ERR_PARSE:
		snprintf(out, size, "malformed, nothing stored");
		break;
	case ERR_TOOBIG:
		snprintf(out, size, "too big, nothing stored (see [feeds] "
		    "max_size)");
		again = 0;
		break;
	case ERR_NOINPUT:
		snprintf(out, size, "its local file is missing");
		again = 0;
		break;
	case ERR_INVAL:
		snprintf(out, size, "refused (%s)", err_name(code));
		again = 0;
		break;
	case ERR_LOCKED:
		/* Another process kept the database busy beyond
		 * [database] busy_timeout: what was fetched is not kept. */
		snprintf(out, size, "not stored (the database was busy)");
		break;
	case ERR_DB:
	case ERR_IO:
		snprintf(out, size, "not stored (database error: see the "
		    "message above)");
		again = 0;
		break;
	default:
		snprintf(out, size, "failed (%s error)", err_name(code));
		break;
	}
	if (retried != NULL)
		*retried = again;
}

const char *
runs_exit_meaning(int exit_code)
{
	switch (exit_code) {
	case EX_OK:		return "ok";
	case EX_USAGE:		return "usage error";
	case EX_DATAERR:	return "bad input data";
	case EX_NOINPUT:	return "input missing";
	case EX_UNAVAILABLE:	return "relay or feed unavailable";
	case EX_SOFTWARE:	return "internal error";
	case EX_OSERR:		return "out of memory or OS error";
	case EX_CANTCREAT:	return "cannot create a file";
	case EX_IOERR:		return "I/O or database error";
	case EX_TEMPFAIL:	return "temporary failure, retried later";
	case EX_PROTOCOL:	return "a peer broke the protocol";
	case EX_CONFIG:		return "configuration error";
	default:		return "unexpected exit status";
	}
}

void
runs_reason_key(const char *reason, char *out, size_t size)
{
	const char *p = reason, *q;
	size_t n = 0;
	int space = 0;

	if (size == 0)
		return;
	/* "gave up after 3 attempts: 451 ..." counts with the other 451s. */
	if (strncmp(p, "gave up after ", 14) == 0 &&
	    (q = strstr(p, "attempts: ")) != NULL)
		p = q + 10;
	while (*p != '\0' && n + 1 < size) {
		/* An address in brackets, with the ':' that may follow it
		 * ("<user@example.jp>: Recipient address rejected"). */
		if (*p == '<' && (q = strchr(p, '>')) != NULL) {
			p = q + 1 + (q[1] == ':');
			space = 1;
			continue;
		}
		/* A word with an @ is an address (user@example.jp:). */
		q = p + strcspn(p, " \t");
		if (memchr(p, '@', (size_t)(q - p)) != NULL) {
			p = q;
			space = 1;
			continue;
		}
		if (*p == ' ' || *p == '\t') {
			space = 1;
			p++;
			continue;
		}
		if (space && n > 0) {
			if (n + 2 >= size)
				break;
			out[n++] = ' ';
		}
		space = 0;
		/* Copy the word, whole UTF-8 sequences only. */
		while (p < q && n + 1 < size) {
			size_t len = 1;
			unsigned char c = (unsigned char)*p;

			if (c >= 0xf0)
				len = 4;
			else if (c >= 0xe0)
				len = 3;
			else if (c >= 0xc0)
				len = 2;
			if (n + len >= size || (size_t)(q - p) < len)
				goto done;
			memcpy(out + n, p, len);
			n += len;
			p += len;
		}
	}
done:
	/* Trailing punctuation left by a removed address ("rejected: "). */
	while (n > 0 && (out[n - 1] == ':' || out[n - 1] == ' '))
		n--;
	out[n] = '\0';
}
