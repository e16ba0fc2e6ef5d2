/*
 * config — the INI configuration (inih) in one read-only struct.
 *
 * Where it comes from: -c FILE, else $SAMAIL_CONFIG, else ./samail.conf if
 * present, else SYSCONFDIR/samail.conf if present; with none, the built-in
 * defaults work (SQLite under var/, mail to the maildir var/mail).  Unknown
 * sections and keys are errors naming file:line, so a typo never silently
 * leaves a default in place.  config.c is the only file that knows key
 * names and defaults; docs/samail.conf.5 lists them all.
 *
 * Secrets (SMTP password, unsubscribe key) are never in this file: it names
 * a secret file, which must not be readable by group or others, or they
 * come from the environment (see config_secret()).
 */
#ifndef SAMAIL_CONFIG_H
#define SAMAIL_CONFIG_H

#include <stddef.h>

struct err;

enum starttls_mode { STARTTLS_AUTO, STARTTLS_REQUIRED, STARTTLS_NEVER };

struct config {
	char	*file;			/* the file read, NULL for defaults */
	int	 check_skeletons;	/* $SAMAIL_CHECK_SKELETONS set (tests) */

	/* [database] */
	char	*db_path;		/* path; var/samail.db */
	long	 db_busy_timeout;	/* busy_timeout, ms; 10000 */

	/* [paths] */
	char	*templates_dir;		/* templates; auto */
	char	*data_dir;		/* data (feeds.conf, products.conf); auto */

	/* [mail] */
	char	*from;			/* from: "Name <addr>" */
	char	*from_name;		/*   its display name (may be "") */
	char	*from_addr;		/*   its address */
	char	*from_name_en;		/* from_name_en: for en; NULL */
	char	*envelope_from;		/* envelope_from; from_addr */
	char	*reply_to;		/* reply_to; NULL */
	char	*transport;		/* transport: URL list; maildir:var/mail */
	char	**relays;		/*   smtp(s):// URLs split from transport */
	size_t	 nrelays;
	char	*list_id;		/* list_id; "<security-action.DOMAIN>" */
	char	*list_name;		/* list_name; SECURITY ACTION */
	char	*message_id_domain;	/* message_id_domain; domain of from */
	int	 verp;			/* verp; no (per-declarer envelope sender) */

	/* [smtp] */
	enum starttls_mode starttls;	/* starttls = auto|required|no */
	int	 tls_verify;		/* tls_verify; yes */
	char	*ca_file;		/* ca_file; NULL (system store) */
	char	*smtp_user;		/* username; NULL */
	char	*smtp_password_file;	/* password_file; env SAMAIL_SMTP_PASSWORD */
	int	 max_connections;	/* max_connections; 4 */
	int	 rate_per_minute;	/* rate_per_minute; 0 = no cap */
	int	 max_per_run;		/* max_per_run; 0 = no cap */
	int	 max_attempts;		/* max_attempts; 10 */
	long	 max_age;		/* max_age, seconds; 3d */
	long	 retry_base;		/* retry_base, seconds; 5m (doubles) */
	long	 smtp_timeout;		/* timeout, seconds; 60 */
	long	 smtp_connect_timeout;	/* connect_timeout, seconds; 15 */
	int	 resend_in_flight;	/* resend_in_flight; yes */
	char	*helo;			/* helo; NULL (libcurl's default) */

	/* [feeds] */
	int	 allow_local_files;	/* allow_local_files; no */
	long	 feed_max_size;		/* max_size, bytes; 20M */
	long	 feed_timeout;		/* timeout, seconds; 60 */
	long	 feed_connect_timeout;	/* connect_timeout, seconds; 15 */
	char	*feeds_file;		/* seed; DATA/feeds.conf */
	char	*products_file;		/* products; DATA/products.conf */

	/* [unsubscribe] */
	char	*unsub_base_url;	/* base_url; https://DOMAIN/u/ */
	char	*unsub_mailto;		/* mailto; unsubscribe@DOMAIN */
	char	*unsub_secret_file;	/* secret_file; DBDIR/unsubscribe.key */
	char	*unsub_old_secret_file;	/* old_secret_file; NULL */
	char	*unsub_old_until;	/* old_secret_until; NULL (YYYY-MM-DD) */
	char	*listen;		/* listen; 127.0.0.1:8025 */

	/* [newsletter] */
	int	 nl_day;		/* day of month; 1 */
	int	 nl_hour;		/* hour (Japan time); 9 */
	int	 nl_max_advisories;	/* max_advisories per mail; 10 */
	int	 nl_max_alerts;		/* max_alerts (IPA list); 10 */

	/* [remind] */
	int	 rm_interval;		/* interval, months; 12 */
	int	 rm_stepup;		/* stepup, months; 6 */
	int	 rm_offsets[8];		/* offsets, days; 30,7,0 */
	size_t	 rm_noffsets;
	int	 rm_overdue;		/* overdue_repeats; 3 */
	int	 rm_catch_up;		/* catch_up_days; 14 */
	int	 rm_hour;		/* hour of the .ics slot; 10 */
	int	 rm_minute;		/* minute; 0 */
	char	*rm_url;		/* assessment_url (自社診断) */

	/* [run] */
	long	 lock_timeout;		/* lock_timeout, seconds; 60 */
	int	 log_syslog;		/* log = stderr|syslog */

	/* [bounce] */
	int	 soft_limit;		/* soft_limit; 3 */
	int	 soft_days;		/* soft_days; 30 */
};

/*
 * Load the configuration.  path: the -c argument or NULL.  db_override:
 * the --db argument or NULL.  0, or -ERR_CONFIG / -ERR_NOINPUT with the
 * file and line.  Release with config_free().
 */
int	 config_load(struct config **out, const char *path,
	    const char *db_override, struct err *e);
/* Defaults only (for tests). */
struct config *config_defaults(void);
void	 config_free(struct config *);

/*
 * Read a secret: from the file named (which must be a regular file not
 * readable or writable by group or others, since it holds a password or
 * key), else from the environment variable env, else -ERR_NOINPUT.
 * *out is NUL-terminated with any trailing newline removed; caller frees.
 * Returns 0 (from the file) or 1 (from env); -ERR_CONFIG for an insecure
 * file.
 */
int	 config_secret(const char *file, const char *env, char **out,
	    size_t *lenp, struct err *e);

/* Parse "90", "90s", "15m", "2h", "3d" into seconds; -1 if invalid. */
long	 config_parse_duration(const char *s);
/* Parse "20971520", "512K", "20M", "1G" into bytes; -1 if invalid. */
long	 config_parse_size(const char *s);

#endif
