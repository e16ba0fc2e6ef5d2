/*
 * The CLI's shared state and helpers.  cmd/ is thin: it parses arguments,
 * calls lib/, prints results to stdout and one-line errors to stderr, and
 * maps outcomes to sysexits(3) codes.
 */
#ifndef SAMAIL_CMD_H
#define SAMAIL_CMD_H

#include <stdio.h>
#include <time.h>

#include "config.h"
#include "db.h"
#include "err.h"
#include "lock.h"
#include "products.h"

struct ctx {
	struct config	*cfg;		/* loaded before any command runs */
	struct db	*db;		/* NULL until cmd_db() */
	struct products	 products;	/* empty until cmd_products() */
	int		 products_loaded;
	time_t		 now;		/* --now, else the real clock */
	int		 now_given;
	int		 json;		/* --json */
	int		 verbosity;	/* -1 quiet, 0, 1 verbose, 2 debug */
	const char	*cmdname;	/* for messages: "subscriber add" */
	char		 cmdbuf[64];	/* cmdname's storage for a subcommand */
	struct lock	 lock;		/* see cmd_lock() */
	int		 locked;
	struct err	 err;
};

/* Open the database (once).  create: for `init` (create and migrate). */
int	 cmd_db(struct ctx *, int create);
/* Load the product dictionary (once). */
int	 cmd_products(struct ctx *);
/* Print ctx->err (or a generic line) as "samail CMD: message" and return
 * the exit code for rc. */
int	 cmd_fail(struct ctx *, int rc);
/* Print "samail CMD: message" + a usage hint; returns EX_USAGE. */
int	 cmd_usage_error(struct ctx *, const char *usage, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* Hold the run lock (once per process): send and run take it, so no two
 * senders recover each other's in-flight messages. */
int	 cmd_lock(struct ctx *);
/* Begin/commit the command's one transaction. */
int	 cmd_begin(struct ctx *);
int	 cmd_commit(struct ctx *);
/* 1 if argv[i] is -h or --help. */
int	 cmd_is_help(const char *);

/* A subcommand of a command group ("subscriber add"). */
struct subcmd {
	const char	*name;
	int		(*fn)(struct ctx *, int, char **);
};

/*
 * Run the subcommand argv[1] of group from table (n entries): names the
 * command "GROUP SUB" in messages and logs, prints usage for none or
 * --help, refuses an unknown one.  Returns its exit code.
 */
int	 cmd_dispatch(struct ctx *, const char *group, const char *usage,
	    const struct subcmd *table, size_t n, int argc, char **argv);

/* The commands (cmd_<group>.c).  Each returns a sysexits code. */
int	 cmd_init(struct ctx *, int, char **);
int	 cmd_subscriber(struct ctx *, int, char **);
int	 cmd_feed(struct ctx *, int, char **);
int	 cmd_advisory(struct ctx *, int, char **);
int	 cmd_newsletter(struct ctx *, int, char **);
int	 cmd_remind(struct ctx *, int, char **);
int	 cmd_send(struct ctx *, int, char **);
int	 cmd_run(struct ctx *, int, char **);
int	 cmd_status(struct ctx *, int, char **);
int	 cmd_unsubscribe(struct ctx *, int, char **);
int	 cmd_serve(struct ctx *, int, char **);
int	 cmd_bounce(struct ctx *, int, char **);

/* Hooks other modules provide (weak defaults in cmd/stubs.c). */
int	 cmd_init_feeds(struct ctx *);	/* seed feeds at init */

#endif
