#include <errno.h>
#include <fcntl.h>
#include <paths.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int	 verbosity;
static int	 logflags;
static const char *curstep;
/* Warnings and errors written so far (the SMTP workers log too). */
static atomic_long nproblems;
/* Syslog's socket could not be reached (errno), and whether that was
 * said: glibc's syslog() drops lines without a word when /dev/log is
 * missing (a container with no syslog daemon). */
static int	 syslog_errno;
static atomic_int syslog_told;

/* Can a line reach the syslog daemon?  0, or the errno of the connect. */
static int
syslog_probe(void)
{
	struct sockaddr_un sa;
	int fd, err = 0;
	static const int types[] = { SOCK_DGRAM, SOCK_STREAM };

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", _PATH_LOG);
	/* As glibc's syslog(): a datagram socket, else a stream one. */
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if ((fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0)) < 0)
			return errno;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(fd);
			return 0;
		}
		if (i == 0)
			err = errno;
		close(fd);
	}
	return err;
}

void
log_init(int v, int flags)
{
	int was = logflags & LOG_F_SYSLOG;

	verbosity = v;
	logflags = flags;
	if ((flags & LOG_F_SYSLOG) && !was) {
		openlog("samail", LOG_PID | LOG_NDELAY, LOG_MAIL);
		syslog_errno = syslog_probe();
	}
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

static void	 vlog(int, const char *, const char *, va_list, int, int);

static void
tell(int prio, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
tell(int prio, const char *level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(prio, level, fmt, ap, 0, 1);
	va_end(ap);
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
	if (!(logflags & LOG_F_SYSLOG))
		return;
	if (syslog_errno != 0) {
		/* Once, on standard error (so even under -q): a record that
		 * silently goes nowhere is worse than none. */
		if (atomic_exchange(&syslog_told, 1) == 0)
			tell(LOG_WARNING, "warning", "[run] log = syslog, but "
			    "syslog cannot be reached (%s: %s%s): these lines "
			    "go to standard error only, and with -q only the "
			    "warnings and errors; start a syslog daemon (rsyslog, "
			    "systemd-journald), or set [run] log = stderr",
			    _PATH_LOG, strerror(syslog_errno), syslog_errno ==
			    ENOENT ? ", no syslog daemon on this machine or in "
			    "this container" : "");
		/* syslog() tries again each time: a daemon that comes up
		 * later gets the rest. */
	}
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
