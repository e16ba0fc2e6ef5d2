/*
 * err — error codes, a caller-owned message buffer, and the single mapping
 * from error codes to sysexits(3) exit statuses.
 *
 * Functions in lib/ return 0 on success and -ERR_* on failure, and describe
 * the failure in a struct err the caller passes in (may be NULL).  The
 * lowest layer that knows the cause writes the message; callers prefix
 * context with err_prefix() only when it helps.
 */
#ifndef SAMAIL_ERR_H
#define SAMAIL_ERR_H

enum {
	ERR_IO = 1,	/* local file or OS error			-> 74 */
	ERR_NET,	/* feed or relay unreachable			-> 69 */
	ERR_PROTO,	/* peer broke the protocol			-> 76 */
	ERR_PARSE,	/* malformed feed, template, CSV		-> 65 */
	ERR_INVAL,	/* input rejected at the boundary		-> 65 */
	ERR_TOOBIG,	/* input over a configured size limit		-> 65 */
	ERR_DB,		/* SQLite error					-> 74 */
	ERR_CONFIG,	/* unusable configuration			-> 78 */
	ERR_TEMP,	/* temporary failure, retry later (SMTP 4xx)	-> 75 */
	ERR_PERM,	/* permanent remote failure (SMTP 5xx)		-> 65 */
	ERR_USAGE,	/* bad command line				-> 64 */
	ERR_NOINPUT,	/* input file missing or unreadable		-> 66 */
	ERR_CANTCREAT,	/* cannot create an output file			-> 73 */
	ERR_NOTFOUND,	/* named record does not exist			-> 65 */
	ERR_EXISTS,	/* record already exists			-> 65 */
	ERR_LOCKED,	/* another run holds the lock			-> 75 */
	ERR_SOFTWARE,	/* internal error				-> 70 */
	ERR__MAX
};

struct err {
	int	code;		/* last ERR_* set, 0 if none */
	char	msg[1024];	/* one line, no trailing newline */
};

#define ERR_INIT	{ 0, "" }

/* Record an error in e (may be NULL) and return -code. */
int	 err_set(struct err *e, int code, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/* Put "prefix: " in front of the message already in e; returns -e->code. */
int	 err_prefix(struct err *e, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* Forget any recorded error. */
void	 err_clear(struct err *e);

/* Map a return value (0 or -ERR_*) to a sysexits(3) status. */
int	 err_exitcode(int rc);

/*
 * Of two sysexits statuses, the one that matters more to the admin: a
 * batch run reports the worst outcome of its independent steps.
 * Order: 0 < 75 < 65 < 66 < 69 < 76 < 74 < 73 < 78 < 64 < 70.
 */
int	 err_worst(int a, int b);

/* A short name for an ERR_* code ("io", "net", ...). */
const char *err_name(int code);

#endif
