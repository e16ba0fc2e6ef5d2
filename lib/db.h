/*
 * db — the SQLite store: open, migrate, transactions, small helpers.
 *
 * One database file in WAL mode with foreign keys on and a busy timeout.
 * The schema is a list of numbered migrations (schema.c) tracked by
 * PRAGMA user_version.  Every command's change is one transaction:
 * db_begin() ... db_commit(), or db_rollback() on any error.
 */
#ifndef SAMAIL_DB_H
#define SAMAIL_DB_H

#include <sqlite3.h>
#include <time.h>

struct err;

struct db_cached {
	const char	*key;	/* the caller's pointer: looked at first */
	char		*sql;
	sqlite3_stmt	*st;
};

struct db {
	sqlite3	*h;
	char	*path;
	int	 in_tx;
	struct db_cached *cache;	/* see db_stmt(); never evicted */
	size_t	 ncache, capcache;
};

#define DB_CREATE	0x01	/* create the file (and its directory) if missing */
#define DB_READONLY	0x02

/*
 * Open the database at path.  Without DB_CREATE a missing file is
 * -ERR_NOINPUT ("run 'samail init'").  A database whose schema is older
 * than this samail's is refused with -ERR_CONFIG unless DB_CREATE is given
 * (only `samail init` migrates); a newer one always.  Close with db_close().
 */
int	 db_open(struct db **out, const char *path, int flags, long busy_ms,
	    struct err *e);
void	 db_close(struct db *);

/* Apply the missing migrations, each in its own transaction.  Returns the
 * number applied (>= 0) or -ERR_DB. */
int	 db_migrate(struct db *, struct err *);
int	 db_version(struct db *);

/* BEGIN IMMEDIATE: take the write lock now, so a busy database waits for
 * the busy timeout here rather than failing halfway. */
int	 db_begin(struct db *, struct err *);
int	 db_commit(struct db *, struct err *);
/* Roll back if a transaction is open; safe to call at any time. */
void	 db_rollback(struct db *);

int	 db_exec(struct db *, const char *sql, struct err *);
/* Every commit of this connection on disk before it returns
 * (synchronous=FULL): for what an outsider does once and does not redo,
 * an unsubscribe click, a bounce the MTA deletes once we exit 0.  0 or
 * -ERR_DB. */
int	 db_durable(struct db *, struct err *);
/* Prepare; NULL with -ERR_DB in e on failure.  Finalize with
 * sqlite3_finalize(). */
sqlite3_stmt *db_prepare(struct db *, const char *sql, struct err *);
/*
 * A prepared statement from the connection's cache (prepared once, reset
 * and with its bindings cleared on every call): for statements run once
 * per row of a large batch.  Owned by db: do not finalize; it is reset on
 * the next db_stmt() of the same SQL, and lives until db_close() (the
 * cache keeps every statement it was asked for: callers hold one while
 * asking for others, and the SQL is the program's, a few dozen texts).
 * NULL with -ERR_DB in e on failure.
 */
sqlite3_stmt *db_stmt(struct db *, const char *sql, struct err *);

/*
 * Run one statement (cached, see db_stmt) with ?1 bound to id and ?2..?4
 * to a, b, c (NULL binds NULL).  Returns the number of rows changed, or
 * -ERR_*.
 */
int	 db_run(struct db *, const char *sql, long long id, const char *a,
	    const char *b, const char *c, struct err *);

/* Record a failed step/bind as -ERR_DB with sqlite's message. */
int	 db_error(struct db *, struct err *, const char *what);

/* meta table: a value, or NULL (caller frees); set replaces. */
char	*db_meta_get(struct db *, const char *key);
int	 db_meta_set(struct db *, const char *key, const char *value,
	    struct err *);

/* Bind a text value, or NULL when s is NULL. */
int	 db_bind_text(sqlite3_stmt *, int idx, const char *s);
/* A column as a freshly allocated string, or NULL; caller frees. */
char	*db_column_dup(sqlite3_stmt *, int col);

#endif
