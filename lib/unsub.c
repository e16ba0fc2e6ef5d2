/*
 * unsub — verify an unsubscribe token and unsubscribe.  See unsub.h.
 */
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "campaign.h"
#include "config.h"
#include "date.h"
#include "db.h"
#include "err.h"
#include "log.h"
#include "subscriber.h"
#include "token.h"
#include "unsub.h"

/* Longest thing we look at: a pasted URL with the token at its end. */
#define INPUT_MAX	2048

int
unsub_check(const struct config *cfg, const char *token, time_t now,
    int64_t *id, struct err *e)
{
	struct campaign_keys keys;
	char list_id[256], tok[TOKEN_LEN + 1];
	const char *p, *end;
	size_t n;
	int rc;

	/* Cut what an admin pastes down to the token: a link
	 * ("<https://example.jp/u/TOKEN>"), the mailto form
	 * ("mailto:...?subject=unsubscribe%20TOKEN") or the subject of such
	 * a mail ("unsubscribe TOKEN").  Only the shape changes here;
	 * token_verify() decides, and anything that is not exactly a token
	 * fails there. */
	n = token != NULL ? strnlen(token, INPUT_MAX + 1) : 0;
	if (n == 0 || n > INPUT_MAX)
		goto bad;
	end = token + n;
	while (end > token && (end[-1] == '>' || end[-1] == '/' ||
	    end[-1] == ' ' || end[-1] == '\n' || end[-1] == '\r'))
		end--;
	p = end;
	while (p > token && p[-1] != '/' && p[-1] != '<' && p[-1] != ' ' &&
	    p[-1] != '=' && !(p - token >= 3 && memcmp(p - 3, "%20", 3) == 0))
		p--;
	if ((size_t)(end - p) != TOKEN_LEN)
		goto bad;
	memcpy(tok, p, TOKEN_LEN);
	tok[TOKEN_LEN] = '\0';

	if ((rc = campaign_keys_load(cfg, now, &keys, e)) < 0)
		return rc;
	campaign_list_id(cfg, list_id);
	rc = token_verify(&keys.k, tok, list_id, id, e);
	campaign_keys_release(&keys);
	if (rc == 1)
		log_debug("token of declarer %lld was made with the previous "
		    "key", (long long)*id);
	return rc < 0 ? rc : 0;
bad:
	/* The same words as token_verify(): no reason is given away. */
	return err_set(e, ERR_INVAL, "unsubscribe token: not valid for this "
	    "list (mistyped, cut short, or not issued by us)");
}

/* The declarer's address and status; 0 if found, 1 if not (purged). */
static int
lookup(struct db *db, int64_t id, char *email, char *status, char *locale,
    struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, "SELECT email, status, locale FROM subscriber "
	    "WHERE id = ?", e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (email != NULL)
			snprintf(email, ADDR_MAX + 1, "%s",
			    sqlite3_column_text(st, 0));
		if (status != NULL)
			snprintf(status, 16, "%s", sqlite3_column_text(st, 1));
		if (locale != NULL)
			snprintf(locale, 3, "%s", sqlite3_column_text(st, 2));
		rc = 0;
	} else if (rc == SQLITE_DONE)
		rc = 1;
	else
		rc = db_error(db, e, "read declarer");
	sqlite3_reset(st);
	return rc;
}

int
unsub_apply(struct db *db, int64_t id, const char *how, time_t now,
    char *email, struct err *e)
{
	char addr[ADDR_MAX + 1] = "", status[16] = "", reason[128];
	int rc;

	if (email != NULL)
		email[0] = '\0';
	/* BEGIN IMMEDIATE: wait for a writer here (busy timeout), not
	 * halfway; the transaction itself is a few rows long. */
	if ((rc = db_begin(db, e)) < 0)
		return rc;
	if ((rc = lookup(db, id, addr, status, NULL, e)) < 0)
		goto fail;
	if (rc == 1) {
		/* A token we issued for a declarer since purged: the purge
		 * kept a suppression record, so there is nothing to do. */
		db_rollback(db);
		return UNSUB_ALREADY;
	}
	if (email != NULL)
		snprintf(email, ADDR_MAX + 1, "%s", addr);
	if (strcmp(status, "unsubscribed") == 0 ||
	    strcmp(status, "removed") == 0) {
		db_rollback(db);
		return UNSUB_ALREADY;
	}
	snprintf(reason, sizeof(reason), "unsubscribed (%s)", how);
	if ((rc = sub_set_status(db, addr, "unsubscribed", reason, now, e)) < 0)
		goto fail;
	if ((rc = db_commit(db, e)) < 0)
		return rc;
	return UNSUB_DONE;
fail:
	db_rollback(db);
	return rc;
}

int
unsub_locale(struct db *db, int64_t id, char *locale, int *already,
    struct err *e)
{
	char status[16] = "";
	int rc;

	snprintf(locale, 3, "ja");
	if (already != NULL)
		*already = 0;
	if ((rc = lookup(db, id, NULL, status, locale, e)) < 0)
		return rc;
	if (strcmp(locale, "en") != 0)
		snprintf(locale, 3, "ja");
	/* As unsub_apply() decides: purged (rc 1), unsubscribed, removed. */
	if (already != NULL)
		*already = rc == 1 || strcmp(status, "unsubscribed") == 0 ||
		    strcmp(status, "removed") == 0;
	return 0;
}

time_t
unsub_month_start(time_t now)
{
	int y, m, d;

	date_civil(date_jst_day(now), &y, &m, &d);
	return date_jst_time(date_days(y, m, 1), 0, 0);
}

int
unsub_stats(struct db *db, time_t since, struct unsub_stats *s,
    struct err *e)
{
	sqlite3_stmt *st;
	char ts[21];
	int rc = 0;

	memset(s, 0, sizeof(*s));
	date_format_timestamp(since, ts);
	/* Timestamps are all 'YYYY-MM-DDTHH:MM:SSZ': text order is time
	 * order. */
	if ((st = db_prepare(db, "SELECT "
	    "(SELECT count(*) FROM subscriber WHERE status = 'unsubscribed'),"
	    "(SELECT count(*) FROM subscriber WHERE status = 'bounced'),"
	    "(SELECT count(*) FROM subscriber WHERE status = 'unsubscribed' "
	    "  AND status_changed >= ?1),"
	    "(SELECT count(*) FROM subscriber WHERE status = 'bounced' "
	    "  AND status_changed >= ?1),"
	    "(SELECT count(*) FROM bounce WHERE kind = 'hard' AND received >= ?1),"
	    "(SELECT count(*) FROM bounce WHERE kind = 'soft' AND received >= ?1)",
	    e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_text(st, 1, ts, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		s->unsubscribed = (long)sqlite3_column_int64(st, 0);
		s->bounced = (long)sqlite3_column_int64(st, 1);
		s->unsubscribed_since = (long)sqlite3_column_int64(st, 2);
		s->bounced_since = (long)sqlite3_column_int64(st, 3);
		s->hard_since = (long)sqlite3_column_int64(st, 4);
		s->soft_since = (long)sqlite3_column_int64(st, 5);
	} else
		rc = db_error(db, e, "count unsubscribes and bounces");
	sqlite3_finalize(st);
	return rc;
}
