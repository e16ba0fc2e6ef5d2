/*
 * samail — SECURITY ACTION declarers' mail: the command table and the
 * global options.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <libxml/parser.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "cmd.h"
#include "date.h"
#include "log.h"
#include "msg.h"
#include "xalloc.h"

struct command {
	const char	*name;
	int		(*fn)(struct ctx *, int, char **);
	const char	*summary;
};

static const struct command commands[] = {
	{ "init", cmd_init, "create or migrate the database (safe to repeat)" },
	{ "subscriber", cmd_subscriber, "add, import, list, show, update, remove, export declarers" },
	{ "feed", cmd_feed, "add, list, remove and fetch advisory feeds" },
	{ "advisory", cmd_advisory, "list advisories and their product tags; retag" },
	{ "newsletter", cmd_newsletter, "build a month's newsletter campaign; preview one message; skip a month" },
	{ "remind", cmd_remind, "queue the self-diagnosis reminders that are due" },
	{ "send", cmd_send, "deliver queued mail through the configured transport" },
	{ "run", cmd_run, "the cron entry: run daily|monthly under a lock" },
	{ "status", cmd_status, "queue counts, last runs, feed health, failures" },
	{ "unsubscribe", cmd_unsubscribe, "unsubscribe the declarer a token names" },
	{ "serve", cmd_serve, "the one-click unsubscribe HTTP endpoint" },
	{ "bounce", cmd_bounce, "read a bounce (DSN) from a file or stdin and act on it" },
};

#define NCOMMANDS	(sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: samail [-c FILE] [--db PATH] [-q|-v] [--json] [--now TIME] COMMAND [ARGS]\n"
	    "\n"
	    "Mail for SECURITY ACTION declarers: security advisories from IPA and\n"
	    "JVN, a monthly newsletter and self-diagnosis reminders.\n"
	    "\n"
	    "Global options (before the command):\n"
	    "  -c, --config FILE  configuration file (else $SAMAIL_CONFIG, ./samail.conf,\n"
	    "                     " SAMAIL_SYSCONFDIR "/samail.conf; built-in defaults if none)\n"
	    "      --db PATH      database file (overrides [database] path)\n"
	    "  -q, --quiet        print nothing on success (for cron)\n"
	    "  -v, --verbose      more detail; twice for debugging\n"
	    "      --json         machine-readable output where a command prints records\n"
	    "      --now TIME     the clock for this run, YYYY-MM-DDTHH:MM:SSZ\n"
	    "  -h, --help         this help; 'samail COMMAND --help' for a command\n"
	    "  -V, --version      print the version\n"
	    "\n"
	    "Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(fp, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(fp,
	    "\n"
	    "Exit status: 0 done, 64 usage, 65 bad input data, 66 input missing,\n"
	    "69 relay or feed unavailable, 70 internal error, 73/74 cannot create/IO\n"
	    "error, 75 temporary failure (retry later), 78 configuration error.\n"
	    "See samail(1) and samail.conf(5).\n");
}

int
cmd_is_help(const char *s)
{
	return strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0;
}

int
cmd_fail(struct ctx *ctx, int rc)
{
	if (rc >= 0)
		return EX_OK;
	if (ctx->err.msg[0] != '\0')
		log_error("%s", ctx->err.msg);
	else
		log_error("failed (%s)", err_name(-rc));
	return err_exitcode(rc);
}

int
cmd_usage_error(struct ctx *ctx, const char *use, const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One line, as every error: what is wrong, and where to read more. */
	(void)use;
	fprintf(stderr, "samail %s: %s (see 'samail %.*s --help')\n",
	    ctx->cmdname, msg, (int)strcspn(ctx->cmdname, " "), ctx->cmdname);
	return EX_USAGE;
}

/*
 * Every command opens the database for writing (WAL mode needs the -shm
 * file even to read), and the run lock lives beside it.  Run as a user
 * who cannot write the file or its directory (root's cron line instead
 * of samail's, a state directory left owned by root), SQLite would only
 * say "attempt to write a readonly database" halfway through: say who
 * cannot write what, and how to fix it, before anything starts.
 */
/*
 * The database cannot even be looked at: a directory on its way that the
 * running user may not enter (a state directory of mode 0750 owned by
 * another user).  Not "does not exist; run samail init": it does.
 */
static int
db_unreachable(struct ctx *ctx, const char *path)
{
	struct stat st;
	struct passwd *me, *owner;
	char *dir, *p, uname[64], oname[64];
	int rc;

	me = getpwuid(geteuid());
	snprintf(uname, sizeof(uname), "%s", me ? me->pw_name : "?");
	/* A relative path starts in the current directory: when that is
	 * the one closed (sudo -u samail from root's home), name it, not
	 * the path's first component. */
	if (*path != '/' && access(".", X_OK) < 0 && errno == EACCES) {
		char *cwd = getcwd(NULL, 0);

		rc = err_set(&ctx->err, ERR_CANTCREAT, "database '%s': user "
		    "%s cannot reach it (the path is relative to the current "
		    "directory '%s', which is closed to %s: permission "
		    "denied); run samail from the directory the path starts "
		    "in, or give the database's full path ([database] path, "
		    "or --db)", path, uname, cwd != NULL ? cwd : ".", uname);
		free(cwd);
		return rc;
	}
	dir = xstrdup(path);
	/* The first directory from the top that cannot be entered. */
	for (p = dir + (*dir == '/'); (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (access(dir, X_OK) < 0 && errno == EACCES)
			break;
		*p = '/';
	}
	if (p == NULL)
		snprintf(dir, strlen(dir) + 1, "%s", ".");
	if (stat(dir, &st) == 0 && (owner = getpwuid(st.st_uid)) != NULL)
		snprintf(oname, sizeof(oname), "%s", owner->pw_name);
	else
		snprintf(oname, sizeof(oname), "its owner");
	rc = err_set(&ctx->err, ERR_CANTCREAT, "database '%s': user %s cannot "
	    "reach it (the directory '%s' is closed to %s: permission "
	    "denied); run samail as %s (sudo -u %s samail ...), or let %s "
	    "in (chgrp or chmod g+x on '%s')", path, uname, dir, uname, oname,
	    oname, uname, dir);
	free(dir);
	return rc;
}

static int
db_writable(struct ctx *ctx, const char *path)
{
	struct stat st, wst;
	struct passwd *me, *owner;
	char *dir, *slash, uname[64], oname[64];
	const char *what = NULL;
	int rc = 0, mine;

	if (stat(path, &st) < 0) {
		if (errno == EACCES)
			return db_unreachable(ctx, path);
		if (errno != ENOENT)
			return err_set(&ctx->err, ERR_IO, "database '%s': %s",
			    path, strerror(errno));
		return 0;		/* db_open() says it does not exist */
	}
	if (access(path, W_OK) < 0 && errno == EROFS)
		return err_set(&ctx->err, ERR_IO, "database '%s' is on a "
		    "read-only file system, so no run can record anything; "
		    "remount it read-write (mount -o remount,rw), but if the "
		    "kernel made it read-only after disk errors, check the disk "
		    "first (dmesg)", path);
	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL)
		slash[slash == dir] = '\0';
	else {
		free(dir);
		dir = xstrdup(".");
	}
	if (access(path, R_OK | W_OK) < 0 && errno == EACCES)
		what = path;
	else if (access(dir, W_OK | X_OK) < 0 && errno == EACCES)
		what = dir;
	if (what != NULL) {
		me = getpwuid(geteuid());
		snprintf(uname, sizeof(uname), "%s", me ? me->pw_name : "?");
		owner = getpwuid(st.st_uid);
		if (owner != NULL)
			snprintf(oname, sizeof(oname), "%s", owner->pw_name);
		else
			snprintf(oname, sizeof(oname), "%ld", (long)st.st_uid);
		/* Its own file or directory, read-only (a backup restored
		 * from read-only media): no other user to run samail as. */
		mine = stat(what, &wst) == 0 && wst.st_uid == geteuid();
		if (mine && what == path)
			rc = err_set(&ctx->err, ERR_CANTCREAT, "database '%s' "
			    "is read-only to its owner %s (mode %04o); make it "
			    "writable: chmod u+w '%s'", path, uname,
			    (unsigned)(wst.st_mode & 07777), path);
		else if (mine)
			rc = err_set(&ctx->err, ERR_CANTCREAT, "database '%s': "
			    "its directory '%s' is read-only to its owner %s "
			    "(mode %04o), and samail writes the -wal/-shm files "
			    "and the run lock there; make it writable: chmod u+w "
			    "'%s'", path, dir, uname,
			    (unsigned)(wst.st_mode & 07777), dir);
		/* Never "chown -R" a directory we do not know to be ours
		 * (the database may sit in /var/lib or a home directory). */
		else if (what == dir)
			rc = err_set(&ctx->err, ERR_CANTCREAT, "database '%s': "
			    "user %s cannot write the directory '%s' (samail "
			    "writes the database's -wal/-shm files and the run "
			    "lock beside it); run samail as its owner (sudo -u "
			    "%s samail ...), or give the database a directory "
			    "of its own that %s can write (install -d -o %s "
			    "-m 750 DIR, then [database] path)", path, uname,
			    dir, oname, uname, uname);
		else
			rc = err_set(&ctx->err, ERR_CANTCREAT, "database '%s': "
			    "user %s cannot write it; run samail as its owner "
			    "(sudo -u %s samail ...), or, if %s is to run it: "
			    "chown %s: '%s' '%s-wal' '%s-shm' '%s.lock' (those "
			    "that exist)", path, uname, oname, uname, uname,
			    path, path, path, path);
	}
	free(dir);
	return rc;
}

int
cmd_db(struct ctx *ctx, int create)
{
	int rc;

	if (ctx->db != NULL)
		return 0;
	if ((rc = db_writable(ctx, ctx->cfg->db_path)) < 0)
		return rc;
	rc = db_open(&ctx->db, ctx->cfg->db_path, create ? DB_CREATE : 0,
	    ctx->cfg->db_busy_timeout, &ctx->err);
	return rc;
}

int
cmd_products(struct ctx *ctx)
{
	int rc;

	if (ctx->products_loaded)
		return 0;
	if ((rc = products_load(&ctx->products, ctx->cfg->products_file,
	    &ctx->err)) < 0)
		return rc;
	ctx->products_loaded = 1;
	return 0;
}

int
cmd_dispatch(struct ctx *ctx, const char *group, const char *usage,
    const struct subcmd *table, size_t n, int argc, char **argv)
{
	if (argc < 2 || cmd_is_help(argv[1])) {
		/* Asked for: stdout, 0; a subcommand missing: stderr, 64. */
		fprintf(argc < 2 ? stderr : stdout, "usage: %s\n", usage);
		return argc < 2 ? EX_USAGE : EX_OK;
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(argv[1], table[i].name) == 0) {
			snprintf(ctx->cmdbuf, sizeof(ctx->cmdbuf), "%s %s", group,
			    table[i].name);
			ctx->cmdname = ctx->cmdbuf;
			log_step(ctx->cmdname);
			return table[i].fn(ctx, argc - 1, argv + 1);
		}
	return cmd_usage_error(ctx, usage, "'%s' is not a %s command", argv[1],
	    group);
}

int
cmd_lock(struct ctx *ctx)
{
	int rc;

	if (ctx->locked)
		return 0;
	if ((rc = lock_take(&ctx->lock, ctx->cfg->db_path,
	    ctx->cfg->lock_timeout, ctx->cmdname, &ctx->err)) < 0)
		return rc;
	ctx->locked = 1;
	return 0;
}

int
cmd_begin(struct ctx *ctx)
{
	return db_begin(ctx->db, &ctx->err);
}

int
cmd_commit(struct ctx *ctx)
{
	return db_commit(ctx->db, &ctx->err);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "db", required_argument, NULL, 'D' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
		{ "now", required_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctx ctx;
	const char *config_path = NULL, *db_path = NULL, *now_arg = NULL;
	const struct command *cmd = NULL;
	char cmdname[64];
	int ch, rc;

	memset(&ctx, 0, sizeof(ctx));
	/* The database and the mail hold personal data: nothing samail
	 * creates is readable by others. */
	umask(027);
	/* No global allocation statistics: they cost a mutex per malloc. */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+c:qvhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': config_path = optarg; break;
		case 'D':
			/* SQLite takes "" for a throwaway database. */
			if (*optarg == '\0' || strpbrk(optarg, "\r\n") != NULL) {
				fprintf(stderr, "samail: --db needs a file name "
				    "(not empty, on one line)\n");
				return EX_USAGE;
			}
			db_path = optarg;
			break;
		case 'q': ctx.verbosity = -1; break;
		case 'v': ctx.verbosity = ctx.verbosity < 0 ? 1 : ctx.verbosity + 1; break;
		case 'j': ctx.json = 1; break;
		case 'N': now_arg = optarg; break;
		case 'h': usage(stdout); return EX_OK;
		case 'V': printf("samail %s\n", SAMAIL_VERSION); return EX_OK;
		default:
			/* -D and -N are the internal letters of --db and
			 * --now: name the option as it was written. */
			if (optopt == 'D' || optopt == 'N')
				fprintf(stderr, "samail: option '--%s' needs a "
				    "value\n", optopt == 'D' ? "db" : "now");
			else if (optopt != 0)
				fprintf(stderr, "samail: option '-%c' is unknown "
				    "or needs a value\n", optopt);
			else
				fprintf(stderr, "samail: option '%s' is unknown "
				    "or needs a value\n", argv[optind - 1]);
			fprintf(stderr, "Try 'samail --help'.\n");
			return EX_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		usage(stderr);
		return EX_USAGE;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(argv[0], commands[i].name) == 0)
			cmd = &commands[i];
	if (cmd == NULL) {
		fprintf(stderr, "samail: '%s' is not a command; see 'samail "
		    "--help'\n", argv[0]);
		return EX_USAGE;
	}
	/* A global option after the command is a common slip: say where it
	 * goes instead of "unknown option". */
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		static const char *const globals[] = { "--now", "--db",
		    "--config", "-c", "-q", "--quiet", "-v", "--verbose", NULL };

		for (size_t g = 0; globals[g] != NULL; g++) {
			size_t n = strlen(globals[g]);

			if (strncmp(argv[i], globals[g], n) == 0 &&
			    (argv[i][n] == '\0' || argv[i][n] == '=')) {
				fprintf(stderr, "samail: %s is a global option: "
				    "put it before the command (samail %s ... "
				    "%s ...)\n", globals[g], globals[g], cmd->name);
				return EX_USAGE;
			}
		}
	}
	snprintf(cmdname, sizeof(cmdname), "%s", cmd->name);
	ctx.cmdname = cmdname;
	log_init(ctx.verbosity, 0);
	log_step(ctx.cmdname);

	if (now_arg != NULL) {
		if (date_parse_timestamp(now_arg, &ctx.now, &ctx.err) < 0) {
			fprintf(stderr, "samail: --now: %s\n", ctx.err.msg);
			return EX_USAGE;
		}
		ctx.now_given = 1;
	} else
		ctx.now = time(NULL);

	if ((rc = config_load(&ctx.cfg, config_path, db_path, &ctx.err)) < 0) {
		fprintf(stderr, "samail: %s\n", ctx.err.msg);
		return err_exitcode(rc);
	}
	if (ctx.cfg->log_syslog)
		log_init(ctx.verbosity, LOG_F_SYSLOG);

	curl_global_init(CURL_GLOBAL_DEFAULT);
	xmlInitParser();
	msg_global_init();

	ctx.lock.fd = -1;
	rc = cmd->fn(&ctx, argc, argv);
	if (ctx.locked)
		lock_release(&ctx.lock);

	if (ctx.db != NULL)
		db_close(ctx.db);
	if (ctx.products_loaded)
		products_release(&ctx.products);
	config_free(ctx.cfg);
	msg_global_shutdown();
	xmlCleanupParser();
	curl_global_cleanup();
	/* git's run_builtin(): a full disk or closed pipe on stdout is an
	 * error, not a silent success. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("samail: stdout");
		return EX_IOERR;
	}
	return rc;
}
