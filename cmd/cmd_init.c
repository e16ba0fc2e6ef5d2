/*
 * samail init — create or migrate the database; seed the feeds; make the
 * unsubscribe key if there is none.  Safe to run again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "cmd.h"
#include "log.h"
#include "xalloc.h"

static const char init_usage[] = "samail init";

/* A fresh random key, so unsubscribe links work on the built-in defaults;
 * an admin who names secret_file gets theirs kept as it is. */
static int
make_key(struct ctx *ctx)
{
	const char *path = ctx->cfg->unsub_secret_file;
	unsigned char raw[32];
	char hex[65], *tmp, *dir, *slash;
	struct stat sb;
	int fd, rc, ok, saved;

	if (getenv("SAMAIL_UNSUBSCRIBE_SECRET"))
		return 0;
	/* Empty: left by an older samail cut short while creating it.
	 * No link can have been made with it (every command refuses it):
	 * a new one replaces it. */
	if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 0 &&
	    unlink(path) == 0)
		log_warnx("the unsubscribe key '%s' was empty (its creation "
		    "was cut short): making a new one", path);
	if (access(path, F_OK) == 0) {
		/* There already: it must be usable (private, long enough),
		 * or every later command would fail on it. */
		char *secret = NULL;
		size_t n = 0;

		rc = config_secret(path, NULL, &secret, &n, &ctx->err);
		if (secret != NULL) {
			explicit_bzero(secret, n);
			free(secret);
		}
		if (rc == 0 && n < 32)
			rc = err_set(&ctx->err, ERR_CONFIG, "the unsubscribe key "
			    "'%s' is shorter than 32 bytes; make one with "
			    "'openssl rand -hex 32'", path);
		return rc;
	}
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return err_set(&ctx->err, ERR_IO, "no random bytes for the "
		    "unsubscribe key: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	/*
	 * Written whole in a file with no name (O_TMPFILE), then linked to
	 * its own: a kill at any moment leaves the key complete or absent,
	 * never empty (which the next init would refuse) nor a copy of it
	 * under another name, and the link fails rather than replace a key
	 * another init made meanwhile.  A file system without O_TMPFILE
	 * gets a named temporary file, which a kill can leave behind.
	 */
	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else {
		free(dir);
		dir = xstrdup(".");
	}
	tmp = NULL;
	if ((fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600)) < 0 &&
	    (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		tmp = xasprintf("%s.XXXXXX", path);
		fd = mkostemp(tmp, O_CLOEXEC);
	}
	if (fd < 0) {
		rc = err_set(&ctx->err, ERR_CANTCREAT, "cannot create the "
		    "unsubscribe key '%s': %s", path, strerror(errno));
		free(tmp);
		free(dir);
		return rc;
	}
	ok = write(fd, hex, 64) == 64 && write(fd, "\n", 1) == 1 &&
	    fsync(fd) == 0;
	saved = errno;
	if (ok && tmp == NULL) {
		char self[64];

		snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
		if (linkat(AT_FDCWD, self, AT_FDCWD, path,
		    AT_SYMLINK_FOLLOW) < 0) {
			ok = 0;
			saved = errno;
		}
	}
	if (close(fd) < 0 && ok) {
		ok = 0;
		saved = errno;
	}
	if (ok && tmp != NULL && link(tmp, path) < 0) {
		ok = 0;
		saved = errno;
	}
	if (tmp != NULL)
		unlink(tmp);
	free(tmp);
	if (!ok) {
		free(dir);
		if (saved == EEXIST)	/* another init's: check it */
			return make_key(ctx);
		return err_set(&ctx->err, saved == EACCES ? ERR_CANTCREAT :
		    ERR_IO, "cannot create the unsubscribe key '%s': %s", path,
		    strerror(saved));
	}
	/* Its name on disk too: links made with it must outlive a power
	 * loss. */
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(dir);
	log_info("created the unsubscribe key '%s' (keep it secret; back it "
	    "up with the database)", path);
	return 0;
}


/* An existing SQLite file of another application (tables, and no samail
 * schema version): refuse rather than add our tables to it. */
static int
not_ours(struct ctx *ctx)
{
	sqlite3_stmt *st;
	int tables = 0;

	if (db_version(ctx->db) != 0)
		return 0;
	st = db_prepare(ctx->db, "SELECT count(*) FROM sqlite_master WHERE "
	    "type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'", NULL);
	if (st != NULL && sqlite3_step(st) == SQLITE_ROW)
		tables = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (tables > 0)
		return err_set(&ctx->err, ERR_CONFIG, "'%s' is another "
		    "application's SQLite database (%d table%s, no samail "
		    "schema); name another file with [database] path or --db",
		    ctx->cfg->db_path, tables, tables == 1 ? "" : "s");
	return 0;
}

static void
remove_db(struct ctx *ctx)
{
	char *p;

	db_close(ctx->db);
	ctx->db = NULL;
	unlink(ctx->cfg->db_path);
	p = xasprintf("%s-wal", ctx->cfg->db_path);
	unlink(p);
	free(p);
	p = xasprintf("%s-shm", ctx->cfg->db_path);
	unlink(p);
	free(p);
}

int
cmd_init(struct ctx *ctx, int argc, char **argv)
{
	int created;
	char *seeded = NULL;
	int rc, applied;

	if (argc > 1) {
		if (cmd_is_help(argv[1])) {
			printf("usage: %s\n\nCreate the database (and its "
			    "directory) or apply missing migrations, seed the\n"
			    "feed list from feeds.conf the first time, and make "
			    "the unsubscribe key if\nnone is configured.  Safe "
			    "to run again.\n", init_usage);
			return EX_OK;
		}
		return cmd_usage_error(ctx, init_usage, "unexpected '%s'",
		    argv[1]);
	}
	created = access(ctx->cfg->db_path, F_OK) != 0;
	if ((rc = cmd_db(ctx, 1)) < 0)
		return cmd_fail(ctx, rc);
	if ((rc = not_ours(ctx)) < 0)
		return cmd_fail(ctx, rc);
	if ((applied = db_migrate(ctx->db, &ctx->err)) < 0) {
		if (created)
			remove_db(ctx);
		return cmd_fail(ctx, applied);
	}
	/* Seed once: an admin who removes a seeded feed keeps it removed. */
	if ((rc = cmd_begin(ctx)) < 0)
		return cmd_fail(ctx, rc);
	seeded = db_meta_get(ctx->db, "feeds_seeded");
	if (seeded == NULL) {
		if ((rc = cmd_init_feeds(ctx)) < 0 ||
		    (rc = db_meta_set(ctx->db, "feeds_seeded", "1",
		    &ctx->err)) < 0) {
			db_rollback(ctx->db);
			/* A database this run created goes again: a failed
			 * init leaves nothing half set up behind. */
			if (created)
				remove_db(ctx);
			return cmd_fail(ctx, rc);
		}
	}
	free(seeded);
	if ((rc = cmd_commit(ctx)) < 0)
		return cmd_fail(ctx, rc);
	if ((rc = make_key(ctx)) < 0)
		return cmd_fail(ctx, rc);
	if (ctx->verbosity >= 0)
		printf("database '%s' is at schema version %d (%d migration%s "
		    "applied)\n", ctx->cfg->db_path, db_version(ctx->db),
		    applied, applied == 1 ? "" : "s");
	return EX_OK;
}
