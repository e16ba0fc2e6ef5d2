#include <stdlib.h>
#include <string.h>

#include "date.h"
#include "db.h"
#include "err.h"
#include "outbox.h"
#include "xalloc.h"

void
outbox_row_release(struct outbox_row *r)
{
	free(r->item);
	free(r->rcpt);
	free(r->data);
	free(r->queued_at);
	memset(r, 0, sizeof(*r));
}

/* Run sql with ?1..?6 bound to a message's campaign, declarer, item,
 * recipient, data and the time: 1 if it changed a row, 0 if not. */
static int
queue_run(struct db *db, const char *sql, long long campaign_id,
    long long subscriber_id, const char *item, const char *rcpt,
    const char *data, time_t now, const char *what, struct err *e)
{
	sqlite3_stmt *st;
	char ts[21];
	int rc;

	date_format_timestamp(now, ts);
	if ((st = db_stmt(db, sql, e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_int64(st, 1, campaign_id);
	sqlite3_bind_int64(st, 2, subscriber_id);
	sqlite3_bind_text(st, 3, item, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, rcpt, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, data, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, ts, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(db, e, what);
	else
		rc = sqlite3_changes(db->h) > 0;
	sqlite3_reset(st);
	return rc;
}

int
outbox_queue(struct db *db, long long campaign_id, long long subscriber_id,
    const char *item, const char *rcpt, const char *data, time_t now,
    struct err *e)
{
	return queue_run(db, "INSERT INTO outbox (campaign_id, subscriber_id, "
	    "item, rcpt, data, queued_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
	    "ON CONFLICT (campaign_id, subscriber_id, item) DO NOTHING",
	    campaign_id, subscriber_id, item, rcpt, data, now,
	    "queue message", e);
}

int
outbox_requeue(struct db *db, long long campaign_id, long long subscriber_id,
    const char *item, const char *rcpt, const char *data, time_t now,
    struct err *e)
{
	return queue_run(db, "UPDATE outbox SET state = 'queued', rcpt = ?4, "
	    "data = ?5, queued_at = ?6, attempts = 0, next_try = NULL, "
	    "last_error = NULL, sent_at = NULL, relay = NULL, relay_id = NULL "
	    "WHERE campaign_id = ?1 AND subscriber_id = ?2 AND item = ?3 AND "
	    "state = 'cancelled' AND coalesce(last_error, '') != '"
	    OUTBOX_HELD_ERROR "'", campaign_id, subscriber_id, item, rcpt,
	    data, now, "queue message again", e);
}

int
outbox_recover(struct db *db, int resend, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, resend ?
	    "UPDATE outbox SET state = 'queued', last_error = "
	    "'interrupted while in flight; re-sent with the same Message-ID' "
	    "WHERE state = 'inflight'" :
	    "UPDATE outbox SET state = 'held', last_error = "
	    "'" OUTBOX_HELD_ERROR "' WHERE state = 'inflight'", e)) == NULL)
		return -ERR_DB;
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(db, e, "recover in-flight messages");
	else
		rc = sqlite3_changes(db->h);
	sqlite3_reset(st);
	return rc;
}

#define ROW_COLS	"id, campaign_id, subscriber_id, item, rcpt, data, " \
		"attempts, queued_at"

/* A row from a statement that selected ROW_COLS. */
static void
from_stmt(sqlite3_stmt *st, struct outbox_row *row)
{
	outbox_row_release(row);
	row->id = sqlite3_column_int64(st, 0);
	row->campaign_id = sqlite3_column_int64(st, 1);
	row->subscriber_id = sqlite3_column_int64(st, 2);
	row->item = db_column_dup(st, 3);
	row->rcpt = db_column_dup(st, 4);
	row->data = db_column_dup(st, 5);
	row->attempts = sqlite3_column_int(st, 6);
	row->queued_at = db_column_dup(st, 7);
	if (row->item == NULL)
		row->item = xstrdup("");
}

int
outbox_get(struct db *db, long long campaign_id, long long subscriber_id,
    const char *item, struct outbox_row *row, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, "SELECT " ROW_COLS " FROM outbox WHERE "
	    "campaign_id = ? AND subscriber_id = ? AND item = ?", e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_int64(st, 1, campaign_id);
	sqlite3_bind_int64(st, 2, subscriber_id);
	sqlite3_bind_text(st, 3, item, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		from_stmt(st, row);
		rc = 1;
	} else
		rc = rc == SQLITE_DONE ? 0 : db_error(db, e, "read outbox");
	sqlite3_reset(st);
	return rc;
}

int
outbox_claim(struct db *db, time_t now, struct outbox_row *row,
    struct err *e)
{
	/* Queued rows first (their next_try is NULL, so the index gives
	 * them in id order), then deferred ones that are due. */
	static const char q_queued[] =
	    "SELECT " ROW_COLS " FROM outbox WHERE state = 'queued' AND "
	    "next_try IS NULL ORDER BY id LIMIT 1";
	static const char q_deferred[] =
	    "SELECT " ROW_COLS " FROM outbox WHERE state = 'deferred' AND "
	    "next_try <= ? ORDER BY next_try, id LIMIT 1";
	sqlite3_stmt *st;
	char ts[21];
	int rc, pass;

	date_format_timestamp(now, ts);
	for (pass = 0; pass < 2; pass++) {
		if ((st = db_stmt(db, pass == 0 ? q_queued : q_deferred, e)) == NULL)
			return -ERR_DB;
		if (pass == 1)
			sqlite3_bind_text(st, 1, ts, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			break;
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return db_error(db, e, "claim message");
	}
	if (pass == 2)
		return 0;
	from_stmt(st, row);
	row->attempts++;	/* the attempt being claimed */
	sqlite3_reset(st);
	if ((rc = db_run(db, "UPDATE outbox SET state = 'inflight', attempts = "
	    "attempts + 1, next_try = NULL WHERE id = ?1", row->id, NULL, NULL,
	    NULL, e)) < 0)
		return rc;
	return 1;
}

int
outbox_sent(struct db *db, long long id, const char *relay,
    const char *relay_id, time_t now, struct err *e)
{
	char ts[21];
	int rc;

	date_format_timestamp(now, ts);
	rc = db_run(db, "UPDATE outbox SET state = 'sent', sent_at = ?2, "
	    "relay = ?3, relay_id = ?4, next_try = NULL, last_error = NULL "
	    "WHERE id = ?1", id, ts, relay, relay_id, e);
	return rc < 0 ? rc : 0;
}

int
outbox_defer(struct db *db, long long id, const char *why, time_t next_try,
    struct err *e)
{
	char ts[21];
	int rc;

	date_format_timestamp(next_try, ts);
	rc = db_run(db, "UPDATE outbox SET state = 'deferred', next_try = ?2, "
	    "last_error = ?3 WHERE id = ?1", id, ts, why, NULL, e);
	return rc < 0 ? rc : 0;
}

int
outbox_fail(struct db *db, long long id, const char *why, time_t now,
    struct err *e)
{
	char ts[21];
	int rc;

	date_format_timestamp(now, ts);
	rc = db_run(db, "UPDATE outbox SET state = 'failed', next_try = NULL, "
	    "last_error = ?2, sent_at = ?3 WHERE id = ?1", id, why, ts, NULL, e);
	return rc < 0 ? rc : 0;
}

int
outbox_unclaim(struct db *db, long long id, time_t now, struct err *e)
{
	char ts[21];
	int rc;

	/* Never handed over: the attempt does not count, and a message that
	 * was deferred before stays due at once. */
	date_format_timestamp(now, ts);
	rc = db_run(db, "UPDATE outbox SET attempts = attempts - 1, "
	    "state = CASE WHEN attempts > 1 THEN 'deferred' ELSE 'queued' END, "
	    "next_try = CASE WHEN attempts > 1 THEN ?2 ELSE NULL END "
	    "WHERE id = ?1 AND state = 'inflight'", id, ts, NULL, NULL, e);
	return rc < 0 ? rc : 0;
}

time_t
outbox_next_try(time_t now, int attempts, const char *queued_at, long base,
    int max_attempts, long max_age)
{
	time_t queued, delay;

	if (attempts >= max_attempts)
		return 0;
	if (queued_at != NULL &&
	    date_parse_timestamp(queued_at, &queued, NULL) == 0 &&
	    now - queued >= max_age)
		return 0;
	delay = base;
	for (int i = 1; i < attempts && delay < 12 * 3600; i++)
		delay *= 2;
	if (delay > 12 * 3600)
		delay = 12 * 3600;
	return now + delay;
}

int
outbox_cancel_subscriber(struct db *db, long long subscriber_id,
    struct err *e)
{
	int rc = db_run(db, "UPDATE outbox SET state = 'cancelled' WHERE "
	    "subscriber_id = ?1 AND state IN ('queued', 'deferred', 'held')",
	    subscriber_id, NULL, NULL, NULL, e);

	return rc;
}

int
outbox_cancel(struct db *db, long long id, const char *why, struct err *e)
{
	int rc = db_run(db, "UPDATE outbox SET state = 'cancelled', "
	    "last_error = ?2 WHERE id = ?1", id, why, NULL, NULL, e);

	return rc < 0 ? rc : 0;
}

long long
outbox_due(struct db *db, time_t now)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT count(*) FROM outbox WHERE "
	    "(state = 'queued' AND next_try IS NULL) OR (state = 'deferred' "
	    "AND next_try <= ?)", NULL);
	long long n = -1;
	char ts[21];

	date_format_timestamp(now, ts);
	if (st != NULL) {
		sqlite3_bind_text(st, 1, ts, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return n;
}

long long
outbox_waiting(struct db *db)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT count(*) FROM outbox WHERE "
	    "state IN ('queued', 'deferred')", NULL);
	long long n = -1;

	if (st != NULL && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}
