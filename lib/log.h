/*
 * log — one line per event, to stderr and optionally syslog.
 *
 * Under cron, quiet on success: with verbosity -1 (-q) only warnings and
 * errors are written to stderr, so a clean run prints nothing and cron
 * mails nothing.  Syslog (LOG_F_SYSLOG) gets every event from info up at
 * any verbosity: it is the record of what the quiet runs did.
 * The verbosity, the destination and the current step are the only
 * module-level state besides the config; they are set from main().
 */
#ifndef SAMAIL_LOG_H
#define SAMAIL_LOG_H

#define LOG_F_SYSLOG	0x01	/* also send every line to syslog (LOG_MAIL) */
#define LOG_F_STAMP	0x02	/* prefix stderr lines with an ISO 8601 UTC time */

/* verbosity: -1 quiet, 0 normal, 1 verbose, 2 debug. */
void	 log_init(int verbosity, int flags);
int	 log_verbosity(void);
/* Name of the step now running ("fetch", "send", ...); NULL for none. */
void	 log_step(const char *step);

void	 log_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
/* Like log_warnx, with ": strerror(errno)" appended. */
void	 log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
/* How many warnings and errors have been logged (to any destination). */
long	 log_problems(void);

#endif
