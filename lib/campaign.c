#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>

#include "campaign.h"
#include "config.h"
#include "date.h"
#include "db.h"
#include "err.h"
#include "outbox.h"
#include "render.h"
#include "xalloc.h"

long long
campaign_find(struct db *db, const char *name, json_t **content,
    struct err *e)
{
	sqlite3_stmt *st;
	long long id = 0;
	json_error_t jerr;
	int rc;

	if (content != NULL)
		*content = NULL;
	if ((st = db_stmt(db, "SELECT id, content FROM campaign WHERE name = ?",
	    e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		id = sqlite3_column_int64(st, 0);
		if (content != NULL) {
			*content = json_loads((const char *)
			    sqlite3_column_text(st, 1), 0, &jerr);
			if (*content == NULL)
				id = err_set(e, ERR_DB, "campaign '%s': stored "
				    "content is not JSON: %s", name, jerr.text);
		}
	} else if (rc != SQLITE_DONE)
		id = db_error(db, e, "read campaign");
	sqlite3_reset(st);
	return id;
}

long long
campaign_create(struct db *db, const char *kind, const char *name,
    const char *period, json_t *content, time_t now, struct err *e)
{
	sqlite3_stmt *st;
	char ts[21], *text;
	long long id;

	date_format_timestamp(now, ts);
	text = json_dumps(content, JSON_COMPACT);
	if ((st = db_stmt(db, "INSERT INTO campaign (kind, name, period, "
	    "created, content) VALUES (?, ?, ?, ?, ?)", e)) == NULL) {
		free(text);
		return -ERR_DB;
	}
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	db_bind_text(st, 3, period);
	sqlite3_bind_text(st, 4, ts, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, text, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		id = db_error(db, e, "create campaign");
	else
		id = sqlite3_last_insert_rowid(db->h);
	sqlite3_reset(st);
	free(text);
	return id;
}

int
campaign_load(struct db *db, long long id, const struct campaign_env *env,
    struct campaign_run **out, struct err *e)
{
	struct campaign_run *c;
	sqlite3_stmt *st;
	json_error_t jerr;
	int rc;

	*out = NULL;
	if ((st = db_stmt(db, "SELECT name, kind, content FROM campaign "
	    "WHERE id = ?", e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_int64(st, 1, id);
	if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? err_set(e, ERR_NOTFOUND,
		    "campaign %lld does not exist", id) :
		    db_error(db, e, "read campaign");
	}
	c = xcalloc(1, sizeof(*c));
	c->id = id;
	c->env = env;
	snprintf(c->name, sizeof(c->name), "%s", sqlite3_column_text(st, 0));
	snprintf(c->kind, sizeof(c->kind), "%s", sqlite3_column_text(st, 1));
	c->content = json_loads((const char *)sqlite3_column_text(st, 2), 0,
	    &jerr);
	sqlite3_reset(st);
	if (c->content == NULL) {
		rc = err_set(e, ERR_DB, "campaign '%s': stored content is not "
		    "JSON: %s", c->name, jerr.text);
		goto fail;
	}
	if (strcmp(c->kind, "newsletter") == 0)
		rc = newsletter_prepare(c, e);
	else if (strcmp(c->kind, "reminder") == 0)
		rc = remind_prepare(c, e);
	else
		rc = err_set(e, ERR_DB, "campaign '%s' has unknown kind '%s'",
		    c->name, c->kind);
	if (rc < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	campaign_run_free(c);
	return rc;
}

void
campaign_run_free(struct campaign_run *c)
{
	if (c == NULL)
		return;
	if (c->state != NULL) {
		if (strcmp(c->kind, "newsletter") == 0)
			newsletter_release(c);
		else if (strcmp(c->kind, "reminder") == 0)
			remind_release(c);
	}
	render_free(c->render);
	json_decref(c->content);
	free(c);
}

int
campaign_render(const struct campaign_run *c, const struct outbox_row *row,
    struct buf *out, struct err *e)
{
	if (strcmp(c->kind, "newsletter") == 0)
		return newsletter_render_row(c, row, out, e);
	return remind_render_row(c, row, out, e);
}

/* item as it appears in a Message-ID: only what a dot-atom allows. */
static void
add_item(struct buf *out, const char *item)
{
	for (const char *p = item; *p; p++)
		buf_addch(out, (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' ? *p : '-');
}

/*
 * The tag that proves a Message-ID is ours: 12 base64url characters (72
 * bits) of an HMAC, keyed with the unsubscribe secret, over the campaign,
 * the declarer and the item.  which: 0 the current key, 1 the previous.
 * Returns 0, or -1 when there is no such key.
 */
static int
mid_tag(const struct token_keys *k, int which, const char *name,
    long long id, const char *item, char *out)
{
	struct token_keys one = { which ? k->prev : k->cur,
	    which ? k->prev_len : k->cur_len, NULL, 0 };
	struct buf ctx = BUF_INIT(255);
	char tok[TOKEN_LEN + 1];
	int rc;

	if (one.cur == NULL)
		return -1;
	buf_addf(&ctx, "mid:%s:", name);
	add_item(&ctx, item != NULL ? item : "");
	/* token_make's MAC covers the id and this context; its last 32
	 * characters are the MAC. */
	rc = token_make(&one, id, buf_str(&ctx), tok, NULL);
	buf_release(&ctx);
	if (rc < 0)
		return -1;
	memcpy(out, tok + 12, 12);
	out[12] = '\0';
	return 0;
}

const char *
campaign_mid_domain(const struct campaign_run *c)
{
	const char *d = json_string_value(json_object_get(c->content,
	    "message_id_domain"));

	return d != NULL && *d != '\0' ? d : c->env->cfg->message_id_domain;
}

void
campaign_message_id(struct buf *out, const char *name,
    long long subscriber_id, const char *item, const char *instance,
    const char *domain, const struct token_keys *keys)
{
	char tag[13];

	buf_addf(out, "%s.%lld", name, subscriber_id);
	if (item != NULL && *item != '\0') {
		buf_addch(out, '.');
		add_item(out, item);
	}
	if (keys != NULL && mid_tag(keys, 0, name, subscriber_id, item, tag) == 0)
		buf_addf(out, ".%s", tag);
	buf_addf(out, ".%s@%s", instance, domain);
}

int
campaign_parse_message_id(const char *mid, const char *instance,
    const struct token_keys *keys, char *name, long long *subscriber_id)
{
	char buf[512], *at, *p, *dot, *end, *tag = NULL, want[13];
	const char *item;
	size_t n;
	int ok = 0;

	while (*mid == ' ' || *mid == '\t' || *mid == '<')
		mid++;
	snprintf(buf, sizeof(buf), "%s", mid);
	buf[strcspn(buf, ">\r\n ")] = '\0';
	if ((at = strrchr(buf, '@')) == NULL)
		return -ERR_INVAL;
	*at = '\0';
	/* NAME.ID[.ITEM][.TAG].INSTANCE: the instance is last, the tag
	 * before it, the id follows the name (names hold '-' but no '.'). */
	if ((p = strrchr(buf, '.')) == NULL || strcmp(p + 1, instance) != 0)
		return -ERR_INVAL;
	*p = '\0';
	if (keys != NULL) {
		if ((p = strrchr(buf, '.')) == NULL || strlen(p + 1) != 12)
			return -ERR_INVAL;
		tag = p + 1;
		*p = '\0';
	}
	if ((dot = strchr(buf, '.')) == NULL)
		return -ERR_INVAL;
	n = (size_t)(dot - buf);
	if (n == 0 || n >= 64)
		return -ERR_INVAL;
	*subscriber_id = strtoll(dot + 1, &end, 10);
	if (end == dot + 1 || (*end != '\0' && *end != '.') || *subscriber_id <= 0)
		return -ERR_INVAL;
	memcpy(name, buf, n);
	name[n] = '\0';
	if (keys == NULL)
		return 0;
	/* Our Message-IDs are seen by every recipient; only the tag makes
	 * one impossible to forge for another declarer. */
	item = *end == '.' ? end + 1 : "";
	for (int which = 0; which < 2; which++)
		if (mid_tag(keys, which, name, *subscriber_id, item, want) == 0 &&
		    CRYPTO_memcmp(want, tag, 12) == 0)
			ok = 1;
	return ok ? 0 : -ERR_INVAL;
}

int
campaign_instance(struct db *db, char *out, struct err *e)
{
	char *v = db_meta_get(db, "instance");
	unsigned char r[4];
	int rc = 0;

	if (v != NULL && strlen(v) == 8) {
		memcpy(out, v, 9);
		free(v);
		return 0;
	}
	free(v);
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return err_set(e, ERR_IO, "no random bytes for the instance id");
	snprintf(out, 9, "%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
	rc = db_meta_set(db, "instance", out, e);
	return rc;
}

int
campaign_keys_load(const struct config *cfg, time_t now,
    struct campaign_keys *k, struct err *e)
{
	size_t n;
	int rc;

	memset(k, 0, sizeof(*k));
	if ((rc = config_secret(cfg->unsub_secret_file,
	    "SAMAIL_UNSUBSCRIBE_SECRET", &k->cur, &n, e)) < 0) {
		if (rc == -ERR_NOINPUT)
			err_set(e, ERR_CONFIG, "no unsubscribe key: '%s' is "
			    "missing and $SAMAIL_UNSUBSCRIBE_SECRET is not set; "
			    "run 'samail init' to create one",
			    cfg->unsub_secret_file);
		return -ERR_CONFIG;
	}
	if (n < TOKEN_KEY_MIN) {
		campaign_keys_release(k);
		return err_set(e, ERR_CONFIG, "the unsubscribe key is %zu bytes; "
		    "it must be at least %d (e.g. 64 hex digits)", n,
		    TOKEN_KEY_MIN);
	}
	k->k.cur = (const unsigned char *)k->cur;
	k->k.cur_len = n;
	/* The previous key verifies until its end date (none: for ever). */
	if (cfg->unsub_old_secret_file != NULL) {
		long until;

		if (cfg->unsub_old_until == NULL ||
		    (date_parse(cfg->unsub_old_until, &until, NULL) == 0 &&
		    date_jst_day(now) <= until)) {
			if ((rc = config_secret(cfg->unsub_old_secret_file, NULL,
			    &k->prev, &n, e)) < 0) {
				campaign_keys_release(k);
				return -ERR_CONFIG;
			}
			k->k.prev = (const unsigned char *)k->prev;
			k->k.prev_len = n;
		}
	}
	return 0;
}

void
campaign_keys_release(struct campaign_keys *k)
{
	if (k->cur != NULL)
		explicit_bzero(k->cur, strlen(k->cur));
	if (k->prev != NULL)
		explicit_bzero(k->prev, strlen(k->prev));
	free(k->cur);
	free(k->prev);
	memset(k, 0, sizeof(*k));
}

void
campaign_list_id(const struct config *cfg, char *out)
{
	const char *s = cfg->list_id;

	if (*s == '<')
		s++;
	snprintf(out, 256, "%.*s", (int)strcspn(s, ">"), s);
}
