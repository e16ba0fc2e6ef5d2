#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h"
#include "err.h"
#include "schema.h"
#include "xalloc.h"

/* mkdir -p for the directory that will hold path. */
static int
make_parent(const char *path, struct err *e)
{
	char *dir = xstrdup(path), *p;
	int rc = 0;

	if ((p = strrchr(dir, '/')) == NULL || p == dir)
		goto out;
	*p = '\0';
	for (p = dir + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
				rc = err_set(e, ERR_CANTCREAT, "cannot create "
				    "directory '%s': %s", dir, strerror(errno));
				goto out;
			}
			*p = c;
			if (c == '\0')
				break;
		}
	}
out:
	free(dir);
	return rc;
}

int
db_error(struct db *db, struct err *e, const char *what)
{
	int code = sqlite3_errcode(db->h);

	if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
		return err_set(e, ERR_LOCKED, "%s: database '%s' is busy (%s): "
		    "another process (samail, sqlite3, a backup) is writing to "
		    "it; try again later", what, db->path,
		    sqlite3_errmsg(db->h));
	/* Nothing of the transaction is kept: say so, and what to do.  A
	 * disk that is full when the -wal/-shm files are made is an I/O
	 * error to SQLite; the OS's errno tells them apart. */
	if (code == SQLITE_FULL || (code == SQLITE_IOERR &&
	    (sqlite3_system_errno(db->h) == ENOSPC ||
	    sqlite3_system_errno(db->h) == EDQUOT)))
		return err_set(e, ERR_IO, "%s: database '%s': the disk is "
		    "full; nothing of this change was kept: free space on the "
		    "file system that holds it (df -h), then run the command "
		    "again", what, db->path);
	if (code == SQLITE_IOERR)
		return err_set(e, ERR_IO, "%s: database '%s': %s%s%s", what,
		    db->path, sqlite3_errmsg(db->h),
		    sqlite3_system_errno(db->h) != 0 ? ": " : "",
		    sqlite3_system_errno(db->h) != 0 ?
		    strerror(sqlite3_system_errno(db->h)) : "");
	return err_set(e, ERR_DB, "%s: database '%s': %s", what, db->path,
	    sqlite3_errmsg(db->h));
}

int
db_durable(struct db *db, struct err *e)
{
	/* In WAL mode NORMAL syncs only at checkpoints: a power cut soon
	 * after a commit could undo it. */
	return db_exec(db, "PRAGMA synchronous=FULL", e);
}

int
db_exec(struct db *db, const char *sql, struct err *e)
{
	char *msg = NULL;

	if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int rc = db_error(db, e, "sql");

		sqlite3_free(msg);
		return rc;
	}
	return 0;
}

sqlite3_stmt *
db_prepare(struct db *db, const char *sql, struct err *e)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
		db_error(db, e, "prepare");
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

sqlite3_stmt *
db_stmt(struct db *db, const char *sql, struct err *e)
{
	sqlite3_stmt *st = NULL;
	struct db_cached *c = NULL;

	/* The SQL is mostly a literal: its address finds it at once. */
	for (size_t i = 0; i < db->ncache && c == NULL; i++)
		if (db->cache[i].key == sql && strcmp(db->cache[i].sql, sql) == 0)
			c = &db->cache[i];
	for (size_t i = 0; i < db->ncache && c == NULL; i++)
		if (strcmp(db->cache[i].sql, sql) == 0) {
			c = &db->cache[i];
			c->key = sql;
		}
	if (c != NULL) {
		sqlite3_reset(c->st);
		sqlite3_clear_bindings(c->st);
		return c->st;
	}
	if (sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
	    NULL) != SQLITE_OK) {
		db_error(db, e, "prepare");
		sqlite3_finalize(st);
		return NULL;
	}
	if (db->ncache == db->capcache) {
		db->capcache = db->capcache ? 2 * db->capcache : 64;
		db->cache = xreallocarray(db->cache, db->capcache,
		    sizeof(*db->cache));
	}
	c = &db->cache[db->ncache++];
	c->key = sql;
	c->sql = xstrdup(sql);
	c->st = st;
	return st;
}

int
db_version(struct db *db)
{
	sqlite3_stmt *st = NULL;
	int v = -1;

	if (sqlite3_prepare_v2(db->h, "PRAGMA user_version", -1, &st, NULL)
	    == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

int
db_open(struct db **out, const char *path, int flags, long busy_ms,
    struct err *e)
{
	struct db *db;
	int oflags, rc, v;
	struct stat st;

	*out = NULL;
	if (!(flags & DB_CREATE) && stat(path, &st) < 0)
		return err_set(e, ERR_NOINPUT, "database '%s' does not exist; "
		    "run 'samail init' first (or name another with --db)", path);
	if ((flags & DB_CREATE) && (rc = make_parent(path, e)) < 0)
		return rc;

	db = xcalloc(1, sizeof(*db));
	db->path = xstrdup(path);
	oflags = (flags & DB_READONLY) ? SQLITE_OPEN_READONLY :
	    SQLITE_OPEN_READWRITE | ((flags & DB_CREATE) ? SQLITE_OPEN_CREATE : 0);
	if (sqlite3_open_v2(path, &db->h, oflags | SQLITE_OPEN_NOMUTEX, NULL)
	    != SQLITE_OK) {
		rc = err_set(e, (flags & DB_CREATE) ? ERR_CANTCREAT : ERR_IO,
		    "cannot open database '%s': %s", path,
		    db->h ? sqlite3_errmsg(db->h) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(db->h, 0);
	sqlite3_busy_timeout(db->h, (int)busy_ms);
	/*
	 * WAL: readers (status, list) never block the cron job's writer.
	 * synchronous=NORMAL is crash-safe in WAL mode (a process killed at
	 * any instruction loses nothing that was committed); the send path
	 * raises it to FULL where power loss matters (see outbox).
	 */
	if (!(flags & DB_READONLY) &&
	    (rc = db_exec(db, "PRAGMA journal_mode=WAL", e)) < 0)
		goto fail;
	if ((rc = db_exec(db, "PRAGMA foreign_keys=ON;"
	    "PRAGMA synchronous=NORMAL;", e)) < 0)
		goto fail;
	v = db_version(db);
	if (v < 0) {
		rc = db_error(db, e, "read schema version");
		goto fail;
	}
	if ((size_t)v > schema_count()) {
		rc = err_set(e, ERR_CONFIG, "database '%s' has schema version "
		    "%d, newer than this samail knows (%zu); use a newer "
		    "samail", path, v, schema_count());
		goto fail;
	}
	if ((size_t)v < schema_count() && !(flags & DB_CREATE)) {
		rc = err_set(e, ERR_CONFIG, "database '%s' has schema version "
		    "%d, this samail needs %zu; run 'samail init' to migrate it",
		    path, v, schema_count());
		goto fail;
	}
	*out = db;
	return 0;
fail:
	db_close(db);
	return rc;
}

void
db_close(struct db *db)
{
	if (db == NULL)
		return;
	db_rollback(db);
	for (size_t i = 0; i < db->ncache; i++) {
		free(db->cache[i].sql);
		sqlite3_finalize(db->cache[i].st);
	}
	free(db->cache);
	sqlite3_close_v2(db->h);
	free(db->path);
	free(db);
}

/* A migration may edit the stored schema in place (schema.c, 2): one
 * more schema_version makes every connection read it again. */
static int
bump_schema_version(struct db *db, struct err *e)
{
	sqlite3_stmt *st = NULL;
	char pragma[64];
	long long v = -1;

	if (sqlite3_prepare_v2(db->h, "PRAGMA schema_version", -1, &st, NULL)
	    == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (v < 0)
		return db_error(db, e, "read schema_version");
	snprintf(pragma, sizeof(pragma), "PRAGMA schema_version=%lld", v + 1);
	return db_exec(db, pragma, e);
}

int
db_migrate(struct db *db, struct err *e)
{
	int v = db_version(db), applied = 0, rc;
	char pragma[64];

	for (size_t next = (size_t)v + 1; next <= schema_count(); next++) {
		if ((rc = db_begin(db, e)) < 0)
			return rc;
		/* Re-read under the write lock: a concurrent init may have
		 * migrated already. */
		if ((size_t)db_version(db) >= next) {
			db_rollback(db);
			continue;
		}
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%zu", next);
		if ((rc = db_exec(db, schema_migration(next), e)) < 0 ||
		    (rc = bump_schema_version(db, e)) < 0 ||
		    (rc = db_exec(db, pragma, e)) < 0 ||
		    (rc = db_commit(db, e)) < 0) {
			db_rollback(db);
			return err_prefix(e, "migration %zu", next);
		}
		applied++;
	}
	return applied;
}

/* BEGIN and COMMIT from the statement cache: parsed once, not for each
 * of the sender's transactions. */
static int
db_step_cached(struct db *db, const char *sql, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, sql, e)) == NULL)
		return -ERR_DB;
	/* "commit" names the step that failed (a full disk, most often);
	 * a BEGIN fails when the database is busy. */
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_error(db, e,
	    strcmp(sql, "COMMIT") == 0 ? "commit" : "begin");
	sqlite3_reset(st);
	return rc;
}

int
db_begin(struct db *db, struct err *e)
{
	int rc;

	if ((rc = db_step_cached(db, "BEGIN IMMEDIATE", e)) == 0)
		db->in_tx = 1;
	return rc;
}

int
db_commit(struct db *db, struct err *e)
{
	int rc;

	if ((rc = db_step_cached(db, "COMMIT", e)) == 0)
		db->in_tx = 0;
	return rc;
}

void
db_rollback(struct db *db)
{
	if (db->h != NULL && !sqlite3_get_autocommit(db->h))
		sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	db->in_tx = 0;
}

int
db_bind_text(sqlite3_stmt *st, int idx, const char *s)
{
	if (s == NULL)
		return sqlite3_bind_null(st, idx);
	return sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
}

char *
db_column_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *t;

	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return NULL;
	t = sqlite3_column_text(st, col);
	return t != NULL ? xstrdup((const char *)t) : NULL;
}

char *
db_meta_get(struct db *db, const char *key)
{
	sqlite3_stmt *st;
	char *v = NULL;

	st = db_prepare(db, "SELECT value FROM meta WHERE key = ?", NULL);
	if (st == NULL)
		return NULL;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = db_column_dup(st, 0);
	sqlite3_finalize(st);
	return v;
}

int
db_meta_set(struct db *db, const char *key, const char *value, struct err *e)
{
	sqlite3_stmt *st;
	int rc = 0;

	st = db_prepare(db, "INSERT INTO meta (key, value) VALUES (?, ?) "
	    "ON CONFLICT (key) DO UPDATE SET value = excluded.value", e);
	if (st == NULL)
		return -ERR_DB;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	db_bind_text(st, 2, value);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(db, e, "meta");
	sqlite3_finalize(st);
	return rc;
}

int
db_run(struct db *db, const char *sql, long long id, const char *a,
    const char *b, const char *c, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, sql, e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_int64(st, 1, id);
	db_bind_text(st, 2, a);
	db_bind_text(st, 3, b);
	db_bind_text(st, 4, c);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(db, e, "update");
	else
		rc = sqlite3_changes(db->h);
	sqlite3_reset(st);
	return rc;
}
