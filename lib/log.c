#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int	 verbosity;
static int	 logflags;
static const char *curstep;
/* Warnings and errors written so far (the SMTP workers log too). */
static atomic_long nproblems;

void
log_init(int v, int flags)
{
	verbosity = v;
	logflags = flags;
	if (flags & LOG_F_SYSLOG)
		openlog("samail", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

int
log_verbosity(void)
{
	return verbosity;
}

void
log_step(const char *step)
{
	curstep = step;
}

static void
vlog(int prio, const char *level, const char *fmt, va_list ap, int errnum,
    int tostderr)
{
	char msg[2048], stamp[32];
	size_t n;
	time_t t;
	struct tm tm;

	if (prio <= LOG_WARNING)
		atomic_fetch_add(&nproblems, 1);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	if (errnum != 0)
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(errnum));
	/* One event, one line: messages may quote outside input. */
	for (char *p = msg; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';

	if (tostderr && (logflags & LOG_F_STAMP)) {
		t = time(NULL);
		gmtime_r(&t, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
		fprintf(stderr, "%s samail[%ld] %s%s%s: %s\n", stamp,
		    (long)getpid(), level, curstep ? " " : "",
		    curstep ? curstep : "", msg);
	} else if (tostderr) {
		/* Interactive form: "samail feed fetch: warning: ..." */
		fprintf(stderr, "samail%s%s: %s%s%s\n",
		    curstep ? " " : "", curstep ? curstep : "",
		    prio == LOG_WARNING ? level : "",
		    prio == LOG_WARNING ? ": " : "", msg);
	}
	if (logflags & LOG_F_SYSLOG)
		syslog(prio, "%s%s%s: %s", level, curstep ? " " : "",
		    curstep ? curstep : "", msg);
}

/*
 * -q and -v choose what reaches standard error, which cron mails; syslog
 * is the record, and gets every event from info up whatever the
 * verbosity (debug only with -vv): a quiet run that went well still
 * leaves its lines in the log.
 */
#define DEFINE_LOG(name, prio, level, minv, useerr)			\
void									\
name(const char *fmt, ...)						\
{									\
	va_list ap;							\
	int saved = errno, tostderr = verbosity >= (minv);		\
									\
	if (!tostderr && (!(logflags & LOG_F_SYSLOG) ||			\
	    (prio) == LOG_DEBUG))					\
		return;							\
	va_start(ap, fmt);						\
	vlog((prio), (level), fmt, ap, (useerr) ? saved : 0, tostderr);	\
	va_end(ap);							\
	errno = saved;							\
}

DEFINE_LOG(log_error, LOG_ERR, "error", -1, 0)
DEFINE_LOG(log_warnx, LOG_WARNING, "warning", -1, 0)
DEFINE_LOG(log_warn, LOG_WARNING, "warning", -1, 1)
DEFINE_LOG(log_info, LOG_INFO, "info", 0, 0)
DEFINE_LOG(log_debug, LOG_DEBUG, "debug", 2, 0)

long
log_problems(void)
{
	return atomic_load(&nproblems);
}
