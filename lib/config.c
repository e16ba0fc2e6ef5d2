#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "date.h"
#include "err.h"
#include "text.h"
#include "xalloc.h"

enum ktype { K_STR, K_INT, K_BOOL, K_DURATION, K_SIZE, K_PATH, K_SPECIAL };

struct key {
	const char	*section;
	const char	*name;
	enum ktype	 type;
	size_t		 off;
	long		 min, max;	/* K_INT, K_DURATION, K_SIZE */
};

#define O(f)	offsetof(struct config, f)

static const struct key keys[] = {
	{ "database", "path", K_PATH, O(db_path), 0, 0 },
	{ "database", "busy_timeout", K_INT, O(db_busy_timeout), 0, 3600000 },
	{ "paths", "templates", K_PATH, O(templates_dir), 0, 0 },
	{ "paths", "data", K_PATH, O(data_dir), 0, 0 },
	{ "mail", "from", K_SPECIAL, O(from), 0, 0 },
	{ "mail", "from_name_en", K_STR, O(from_name_en), 0, 0 },
	{ "mail", "envelope_from", K_SPECIAL, O(envelope_from), 0, 0 },
	{ "mail", "reply_to", K_SPECIAL, O(reply_to), 0, 0 },
	{ "mail", "transport", K_SPECIAL, O(transport), 0, 0 },
	{ "mail", "list_id", K_STR, O(list_id), 0, 0 },
	{ "mail", "list_name", K_STR, O(list_name), 0, 0 },
	{ "mail", "message_id_domain", K_STR, O(message_id_domain), 0, 0 },
	{ "mail", "verp", K_BOOL, O(verp), 0, 0 },
	{ "smtp", "starttls", K_SPECIAL, O(starttls), 0, 0 },
	{ "smtp", "tls_verify", K_BOOL, O(tls_verify), 0, 0 },
	{ "smtp", "ca_file", K_PATH, O(ca_file), 0, 0 },
	{ "smtp", "username", K_STR, O(smtp_user), 0, 0 },
	{ "smtp", "password_file", K_PATH, O(smtp_password_file), 0, 0 },
	{ "smtp", "max_connections", K_INT, O(max_connections), 1, 64 },
	{ "smtp", "rate_per_minute", K_INT, O(rate_per_minute), 0, 1000000 },
	{ "smtp", "max_per_run", K_INT, O(max_per_run), 0, 100000000 },
	{ "smtp", "max_attempts", K_INT, O(max_attempts), 1, 1000 },
	{ "smtp", "max_age", K_DURATION, O(max_age), 60, 90L * 86400 },
	{ "smtp", "retry_base", K_DURATION, O(retry_base), 1, 86400 },
	{ "smtp", "timeout", K_DURATION, O(smtp_timeout), 1, 3600 },
	{ "smtp", "connect_timeout", K_DURATION, O(smtp_connect_timeout), 1, 600 },
	{ "smtp", "resend_in_flight", K_BOOL, O(resend_in_flight), 0, 0 },
	{ "smtp", "helo", K_STR, O(helo), 0, 0 },
	{ "feeds", "allow_local_files", K_BOOL, O(allow_local_files), 0, 0 },
	{ "feeds", "max_size", K_SIZE, O(feed_max_size), 1024, 1L << 30 },
	{ "feeds", "timeout", K_DURATION, O(feed_timeout), 1, 3600 },
	{ "feeds", "connect_timeout", K_DURATION, O(feed_connect_timeout), 1, 600 },
	{ "feeds", "seed", K_PATH, O(feeds_file), 0, 0 },
	{ "feeds", "products", K_PATH, O(products_file), 0, 0 },
	{ "unsubscribe", "base_url", K_STR, O(unsub_base_url), 0, 0 },
	{ "unsubscribe", "mailto", K_SPECIAL, O(unsub_mailto), 0, 0 },
	{ "unsubscribe", "secret_file", K_PATH, O(unsub_secret_file), 0, 0 },
	{ "unsubscribe", "old_secret_file", K_PATH, O(unsub_old_secret_file), 0, 0 },
	{ "unsubscribe", "old_secret_until", K_STR, O(unsub_old_until), 0, 0 },
	{ "unsubscribe", "listen", K_STR, O(listen), 0, 0 },
	{ "newsletter", "day", K_INT, O(nl_day), 1, 28 },
	{ "newsletter", "hour", K_INT, O(nl_hour), 0, 23 },
	{ "newsletter", "max_advisories", K_INT, O(nl_max_advisories), 1, 200 },
	{ "newsletter", "max_alerts", K_INT, O(nl_max_alerts), 0, 100 },
	{ "remind", "interval", K_INT, O(rm_interval), 1, 60 },
	{ "remind", "stepup", K_INT, O(rm_stepup), 1, 60 },
	{ "remind", "offsets", K_SPECIAL, O(rm_offsets), 0, 0 },
	{ "remind", "overdue_repeats", K_INT, O(rm_overdue), 0, 12 },
	{ "remind", "catch_up_days", K_INT, O(rm_catch_up), 0, 365 },
	{ "remind", "hour", K_INT, O(rm_hour), 0, 23 },
	{ "remind", "minute", K_INT, O(rm_minute), 0, 59 },
	{ "remind", "assessment_url", K_STR, O(rm_url), 0, 0 },
	{ "run", "lock_timeout", K_DURATION, O(lock_timeout), 0, 86400 },
	{ "run", "log", K_SPECIAL, O(log_syslog), 0, 0 },
	{ "bounce", "soft_limit", K_INT, O(soft_limit), 1, 100 },
	{ "bounce", "soft_days", K_INT, O(soft_days), 1, 365 },
};

#define NKEYS	(sizeof(keys) / sizeof(keys[0]))
_Static_assert(NKEYS <= 128, "loadctx.seen is too small");

long
config_parse_duration(const char *s)
{
	char *end;
	long v, mult = 1;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || errno != 0 || v < 0)
		return -1;
	if (*end != '\0') {
		switch (*end) {
		case 's': mult = 1; break;
		case 'm': mult = 60; break;
		case 'h': mult = 3600; break;
		case 'd': mult = 86400; break;
		default: return -1;
		}
		if (end[1] != '\0')
			return -1;
	}
	if (v > LONG_MAX / mult)
		return -1;
	return v * mult;
}

long
config_parse_size(const char *s)
{
	char *end;
	long v, mult = 1;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || errno != 0 || v < 0)
		return -1;
	if (*end != '\0') {
		switch (*end) {
		case 'k': case 'K': mult = 1024; break;
		case 'm': case 'M': mult = 1024L * 1024; break;
		case 'g': case 'G': mult = 1024L * 1024 * 1024; break;
		default: return -1;
		}
		if (end[1] != '\0' && !(end[1] == 'B' && end[2] == '\0'))
			return -1;
	}
	if (v > LONG_MAX / mult)
		return -1;
	return v * mult;
}

static int
parse_bool(const char *s, int *out)
{
	if (text_ieq(s, "yes") || text_ieq(s, "true") || text_ieq(s, "on") ||
	    strcmp(s, "1") == 0)
		*out = 1;
	else if (text_ieq(s, "no") || text_ieq(s, "false") ||
	    text_ieq(s, "off") || strcmp(s, "0") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

struct loadctx {
	struct config	*c;
	struct err	*e;
	char		*dir;		/* the config file's directory */
	int		 failed;
	unsigned char	 seen[128];	/* keys[i] set already in this file */
};

/* Relative paths in a config file are relative to the file's directory,
 * so cron (which runs in /) and an admin's shell agree. */
static char *
resolve(const struct loadctx *lc, const char *v)
{
	if (v[0] == '/' || lc->dir == NULL)
		return xstrdup(v);
	return xasprintf("%s/%s", lc->dir, v);
}

static int
set_transport(struct loadctx *lc, const char *v)
{
	struct config *c = lc->c;
	char *copy, *tok, *save = NULL;

	for (size_t i = 0; i < c->nrelays; i++)
		free(c->relays[i]);
	free(c->relays);
	c->relays = NULL;
	c->nrelays = 0;

	if (strncmp(v, "maildir:", 8) == 0 || strncmp(v, "mbox:", 5) == 0) {
		const char *path = strchr(v, ':') + 1;
		char *r;

		if (*path == '\0')
			return err_set(lc->e, ERR_CONFIG, "transport '%s' names "
			    "no path", v);
		r = resolve(lc, path);
		free(c->transport);
		c->transport = xasprintf("%.*s%s", (int)(path - v), v, r);
		free(r);
		return 0;
	}
	copy = xstrdup(v);
	for (tok = strtok_r(copy, " ,\t", &save); tok != NULL;
	    tok = strtok_r(NULL, " ,\t", &save)) {
		if ((strncmp(tok, "smtp://", 7) != 0 &&
		    strncmp(tok, "smtps://", 8) != 0) ||
		    tok[strlen(tok) - 1] == ':' || tok[strlen(tok) - 1] == '/' ||
		    strchr(tok + 8, '/') != NULL) {
			err_set(lc->e, ERR_CONFIG, "transport '%s' is not "
			    "smtp://HOST:PORT, smtps://HOST:PORT, maildir:PATH "
			    "or mbox:PATH", tok);
			free(copy);
			return -ERR_CONFIG;
		}
		c->relays = xreallocarray(c->relays, c->nrelays + 1,
		    sizeof(*c->relays));
		c->relays[c->nrelays++] = xstrdup(tok);
	}
	free(copy);
	if (c->nrelays == 0)
		return err_set(lc->e, ERR_CONFIG, "transport is empty");
	free(c->transport);
	c->transport = xstrdup(v);
	return 0;
}

static int
set_special(struct loadctx *lc, const struct key *k, const char *v)
{
	struct config *c = lc->c;
	char *name = NULL, *a = NULL;
	char norm[ADDR_MAX + 1];

	if (k->off == O(transport))
		return set_transport(lc, v);
	if (k->off == O(from)) {
		if (addr_parse_mailbox(v, &name, &a, lc->e) < 0)
			return err_prefix(lc->e, "from");
		free(c->from);
		free(c->from_name);
		free(c->from_addr);
		c->from = xstrdup(v);
		c->from_name = name;
		c->from_addr = a;
		return 0;
	}
	if (k->off == O(envelope_from) || k->off == O(reply_to) ||
	    k->off == O(unsub_mailto)) {
		char **dst = (char **)((char *)c + k->off);

		if (addr_check(v, norm, lc->e) < 0)
			return err_prefix(lc->e, "%s", k->name);
		free(*dst);
		*dst = xstrdup(norm);
		return 0;
	}
	if (k->off == O(starttls)) {
		if (text_ieq(v, "auto") || text_ieq(v, "yes") ||
		    text_ieq(v, "opportunistic"))
			c->starttls = STARTTLS_AUTO;
		else if (text_ieq(v, "required"))
			c->starttls = STARTTLS_REQUIRED;
		else if (text_ieq(v, "no") || text_ieq(v, "never"))
			c->starttls = STARTTLS_NEVER;
		else
			return err_set(lc->e, ERR_CONFIG, "starttls must be "
			    "auto, required or no, not '%s'", v);
		return 0;
	}
	if (k->off == O(log_syslog)) {
		if (text_ieq(v, "syslog"))
			c->log_syslog = 1;
		else if (text_ieq(v, "stderr"))
			c->log_syslog = 0;
		else
			return err_set(lc->e, ERR_CONFIG, "log must be stderr "
			    "or syslog, not '%s'", v);
		return 0;
	}
	if (k->off == O(rm_offsets)) {
		char *copy = xstrdup(v), *tok, *save = NULL, *end;
		size_t n = 0;

		for (tok = strtok_r(copy, " ,", &save); tok != NULL;
		    tok = strtok_r(NULL, " ,", &save)) {
			long d = strtol(tok, &end, 10);

			if (*end != '\0' || d < 0 || d > 365 ||
			    n == sizeof(c->rm_offsets) / sizeof(c->rm_offsets[0])) {
				free(copy);
				return err_set(lc->e, ERR_CONFIG, "offsets must be "
				    "up to 8 day counts 0-365, e.g. 30,7,0");
			}
			c->rm_offsets[n++] = (int)d;
		}
		free(copy);
		if (n == 0)
			return err_set(lc->e, ERR_CONFIG, "offsets is empty; "
			    "give day counts such as 30,7,0 (0: on the day)");
		/* Largest first: the order reminders come in. */
		for (size_t i = 0; i < n; i++)
			for (size_t j = i + 1; j < n; j++)
				if (c->rm_offsets[j] > c->rm_offsets[i]) {
					int t = c->rm_offsets[i];

					c->rm_offsets[i] = c->rm_offsets[j];
					c->rm_offsets[j] = t;
				}
		c->rm_noffsets = n;
		return 0;
	}
	return err_set(lc->e, ERR_SOFTWARE, "no handler for '%s'", k->name);
}

/* Edits (insert, delete, change a letter; case aside) from a to b, for
 * names of up to 31 bytes; more than that counts as far apart. */
static int
edits(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int row[32], prev, t;

	if (la > 31 || lb > 31)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			t = row[j];
			row[j] = tolower((unsigned char)a[i - 1]) ==
			    tolower((unsigned char)b[j - 1]) ? prev :
			    1 + (prev < row[j - 1] ? (prev < row[j] ? prev :
			    row[j]) : (row[j - 1] < row[j] ? row[j - 1] :
			    row[j]));
			prev = t;
		}
	}
	return row[lb];
}

/*
 * An unknown section or key, with what was probably meant: a known
 * section or key one or two letters away, or the section(s) a key of
 * that name belongs in ("[mail] rate_per_minute" is [smtp]'s).
 */
static void
unknown_key(struct err *e, const char *section, const char *name)
{
	const char *near_sec = NULL, *near_key = NULL;
	char homes[64] = "";
	int known_section = 0, best_sec = 3, best_key = 3, d;
	size_t n = 0;

	for (size_t i = 0; i < NKEYS; i++) {
		if (strcmp(keys[i].section, section) == 0)
			known_section = 1;
		if (strcmp(keys[i].name, name) == 0 && n < sizeof(homes) - 24) {
			n += (size_t)snprintf(homes + n, sizeof(homes) - n,
			    "%s[%s]", n > 0 ? " or " : "", keys[i].section);
		}
		if ((d = edits(section, keys[i].section)) < best_sec) {
			best_sec = d;
			near_sec = keys[i].section;
		}
	}
	for (size_t i = 0; i < NKEYS && known_section; i++)
		if (strcmp(keys[i].section, section) == 0 &&
		    (d = edits(name, keys[i].name)) < best_key) {
			best_key = d;
			near_key = keys[i].name;
		}
	if (!known_section && near_sec != NULL)
		err_set(e, ERR_CONFIG, "unknown section [%s]; did you mean "
		    "[%s]? see samail.conf(5)", section, near_sec);
	else if (!known_section && n > 0)
		err_set(e, ERR_CONFIG, "unknown section [%s]; '%s' is a key "
		    "of %s; see samail.conf(5)", section, name, homes);
	else if (!known_section)
		err_set(e, ERR_CONFIG, "unknown section [%s]; see "
		    "samail.conf(5)", section);
	else if (n > 0)
		err_set(e, ERR_CONFIG, "unknown key '%s' in [%s]: it belongs "
		    "in %s; see samail.conf(5)", name, section, homes);
	else if (near_key != NULL)
		err_set(e, ERR_CONFIG, "unknown key '%s' in [%s]; did you mean "
		    "'%s'? see samail.conf(5)", name, section, near_key);
	else
		err_set(e, ERR_CONFIG, "unknown key '%s' in [%s]; see "
		    "samail.conf(5)", name, section);
}

static int
handler(void *arg, const char *section, const char *name, const char *value)
{
	struct loadctx *lc = arg;
	const struct key *k = NULL;
	char *p;
	long v;
	int b;

	if (lc->failed)
		return 0;
	/* The names are quoted in the messages below: no terminal escapes. */
	if (!text_utf8_valid(section, strlen(section)) ||
	    text_has_control(section) || !text_utf8_valid(name, strlen(name)) ||
	    text_has_control(name)) {
		err_set(lc->e, ERR_CONFIG, "a section or key name that is not "
		    "clean UTF-8 text; see samail.conf(5)");
		goto fail;
	}
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, section) == 0 &&
		    strcmp(keys[i].name, name) == 0) {
			k = &keys[i];
			break;
		}
	if (k == NULL) {
		unknown_key(lc->e, section, name);
		goto fail;
	}
	/* Said twice: a typo, or (inih reads an indented line as more of
	 * the key before it) a line that was meant to be a key of its own.
	 * Either way the first value must not win or lose silently. */
	if (lc->seen[k - keys]) {
		err_set(lc->e, ERR_CONFIG, "[%s] %s is set twice (an indented "
		    "line continues the key above it: do not indent keys)",
		    section, name);
		goto fail;
	}
	lc->seen[k - keys] = 1;
	if (*value == '\0' && k->type != K_SPECIAL) {
		err_set(lc->e, ERR_CONFIG, "[%s] %s is empty; give a value, or "
		    "remove the line for the default", section, name);
		goto fail;
	}
	if (!text_utf8_valid(value, strlen(value)) || text_has_control(value)) {
		err_set(lc->e, ERR_CONFIG, "[%s] %s: not clean UTF-8 text",
		    section, name);
		goto fail;
	}
	p = (char *)lc->c + k->off;
	switch (k->type) {
	case K_STR:
		/* The old key's last day: one that does not parse would
		 * silently retire the old key at once, and every link
		 * already sent would stop working. */
		if (k->off == O(unsub_old_until) &&
		    date_parse(value, &v, NULL) < 0) {
			err_set(lc->e, ERR_CONFIG, "[%s] %s must be a date "
			    "YYYY-MM-DD (the old key's last day, Japan time), "
			    "not '%s'", section, name, value);
			goto fail;
		}
		free(*(char **)p);
		*(char **)p = xstrdup(value);	/* not empty: checked above */
		break;
	case K_PATH:
		free(*(char **)p);
		*(char **)p = resolve(lc, value);
		break;
	case K_BOOL:
		if (parse_bool(value, &b) < 0) {
			err_set(lc->e, ERR_CONFIG, "[%s] %s must be yes or no, "
			    "not '%s'", section, name, value);
			goto fail;
		}
		*(int *)p = b;
		break;
	case K_INT:
	case K_DURATION:
	case K_SIZE:
		if (k->type == K_INT) {
			char *end;

			errno = 0;
			v = strtol(value, &end, 10);
			if (end == value || *end != '\0' || errno != 0)
				v = LONG_MIN;
		} else if (k->type == K_DURATION)
			v = config_parse_duration(value);
		else
			v = config_parse_size(value);
		if (v < k->min || v > k->max) {
			err_set(lc->e, ERR_CONFIG, "[%s] %s must be %s between "
			    "%ld and %ld, not '%s'", section, name,
			    k->type == K_DURATION ? "a duration (s, m, h, d)" :
			    k->type == K_SIZE ? "a size (K, M, G)" : "a number",
			    k->min, k->max, value);
			goto fail;
		}
		if (k->off == O(db_busy_timeout) || k->type != K_INT)
			*(long *)p = v;
		else
			*(int *)p = (int)v;
		break;
	case K_SPECIAL:
		if (set_special(lc, k, value) < 0)
			goto fail;
		break;
	}
	return 1;
fail:
	lc->failed = 1;
	return 0;
}

/*
 * inih reads a line in pieces of its buffer's size (200 bytes): a longer
 * line would be cut, and its rest read as a line of its own (a value
 * silently cut short, or an error naming a line the file does not have);
 * and a NUL would end the line unseen.  Either stops the reading instead,
 * and config_load() names the line.
 */
struct reader {
	FILE	*fp;
	int	 line;
	int	 bad;		/* the line that was too long or held a NUL */
	int	 nul;
	int	 max;		/* bytes a line may have */
};

static char *
read_line(char *str, int num, void *arg)
{
	struct reader *r = arg;
	size_t n = 0;
	int ch = EOF;

	if (r->bad)
		return NULL;
	r->max = num - 1;
	while (n + 1 < (size_t)num && (ch = getc(r->fp)) != EOF) {
		str[n++] = (char)ch;
		if (ch == '\n')
			break;
	}
	if (n == 0)
		return NULL;
	str[n] = '\0';
	r->line++;
	if (memchr(str, '\0', n) != NULL) {
		r->bad = r->line;
		r->nul = 1;
		return NULL;
	}
	/* Full: fine if the line ends here (CR LF, LF or the file's end). */
	if (n + 1 == (size_t)num && ch != '\n') {
		if ((ch = getc(r->fp)) == '\r')
			ch = getc(r->fp);
		if (ch != EOF && ch != '\n') {
			r->bad = r->line;
			return NULL;
		}
	}
	return str;
}

/*
 * The data directory when none is configured: the source tree the binary
 * was built in (build/samail, build/test/samail), so `make demo` and the
 * tests work without installing; else the installed SAMAIL_DATADIR.
 */
static char *
default_datadir(void)
{
	char exe[PATH_MAX], probe[PATH_MAX + 64];
	ssize_t n;
	char *slash;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		for (int up = 0; up < 3; up++) {
			if ((slash = strrchr(exe, '/')) == NULL)
				break;
			*slash = '\0';
			snprintf(probe, sizeof(probe), "%s/feeds/products.conf", exe);
			if (access(probe, R_OK) == 0) {
				snprintf(probe, sizeof(probe), "%s/templates", exe);
				if (access(probe, R_OK) == 0)
					return xstrdup(exe);
			}
		}
	}
	return xstrdup(SAMAIL_DATADIR);
}

struct config *
config_defaults(void)
{
	struct config *c = xcalloc(1, sizeof(*c));

	c->db_path = xstrdup("var/samail.db");
	c->db_busy_timeout = 10000;
	/* Not "SECURITY ACTION 事務局": that is IPA's own office. */
	c->from = xstrdup("（運営団体名）セキュリティ通信 <security-action@example.jp>");
	c->transport = xstrdup("maildir:var/mail");
	c->list_name = xstrdup("SECURITY ACTION");
	c->starttls = STARTTLS_AUTO;
	c->tls_verify = 1;
	c->max_connections = 4;
	c->rate_per_minute = 0;
	c->max_per_run = 0;
	c->max_attempts = 10;
	c->max_age = 3 * 86400;
	c->retry_base = 300;
	c->smtp_timeout = 60;
	c->smtp_connect_timeout = 15;
	c->resend_in_flight = 1;
	c->feed_max_size = 20L * 1024 * 1024;
	c->feed_timeout = 60;
	c->feed_connect_timeout = 15;
	c->listen = xstrdup("127.0.0.1:8025");
	c->nl_day = 1;
	c->nl_hour = 9;
	c->nl_max_advisories = 10;
	c->nl_max_alerts = 10;
	c->rm_interval = 12;
	c->rm_stepup = 6;
	c->rm_offsets[0] = 30;
	c->rm_offsets[1] = 7;
	c->rm_offsets[2] = 0;
	c->rm_noffsets = 3;
	c->rm_overdue = 3;
	c->rm_catch_up = 14;
	c->rm_hour = 10;
	c->rm_minute = 0;
	c->rm_url = xstrdup("https://www.ipa.go.jp/security/guide/sme/5minutes.html");
	c->lock_timeout = 60;
	c->log_syslog = 0;
	c->soft_limit = 3;
	c->soft_days = 30;
	return c;
}

/* Fill in what defaults to other settings, and check the combination. */
static int
finish(struct config *c, struct err *e)
{
	char *name = NULL, *a = NULL, *dbdir, *slash;
	const char *domain;
	size_t ulen;

	if (c->from_addr == NULL) {
		if (addr_parse_mailbox(c->from, &name, &a, e) < 0)
			return err_prefix(e, "from");
		c->from_name = name;
		c->from_addr = a;
	}
	domain = addr_domain(c->from_addr);
	if (c->envelope_from == NULL)
		c->envelope_from = xstrdup(c->from_addr);
	if (c->list_id == NULL)
		c->list_id = xasprintf("<security-action.%s>", domain);
	if (c->message_id_domain == NULL)
		c->message_id_domain = xstrdup(domain);
	if (c->unsub_mailto == NULL)
		c->unsub_mailto = xasprintf("unsubscribe@%s", domain);
	/* The public https address of the organisation's web server, which
	 * passes /u/ to `samail serve` (see the admin guide). */
	if (c->unsub_base_url == NULL)
		c->unsub_base_url = xasprintf("https://%s/u/", domain);
	/* One cycle's reminders (the last overdue one, sent up to
	 * catch_up_days late) must end before the next cycle's first:
	 * months counted short (28 days) for the interval, long (31) for
	 * the overdue repeats. */
	{
		int first = 0;

		for (size_t i = 0; i < c->rm_noffsets; i++)
			if (c->rm_offsets[i] > first)
				first = c->rm_offsets[i];
		if (c->rm_overdue * 31 + c->rm_catch_up >=
		    c->rm_interval * 28 - first)
			return err_set(e, ERR_CONFIG, "[remind] interval = %d "
			    "month%s is too short for overdue_repeats = %d, "
			    "catch_up_days = %d and offsets up to %d days: one "
			    "cycle's reminders would run into the next; lower "
			    "overdue_repeats, catch_up_days or the largest offset, "
			    "or raise interval", c->rm_interval,
			    c->rm_interval == 1 ? "" : "s", c->rm_overdue,
			    c->rm_catch_up, first);
	}
	if (c->from_name_en != NULL && (text_has_control(c->from_name_en) ||
	    !text_utf8_valid(c->from_name_en, strlen(c->from_name_en)) ||
	    strlen(c->from_name_en) > 200 || strpbrk(c->from_name_en, "<>") != NULL))
		return err_set(e, ERR_CONFIG, "from_name_en must be one line of "
		    "text without < >, at most 200 bytes");
	if (text_has_control(c->list_id) || c->list_id[0] != '<' ||
	    c->list_id[strlen(c->list_id) - 1] != '>' ||
	    strchr(c->list_id, ' ') != NULL)
		return err_set(e, ERR_CONFIG, "list_id must look like "
		    "<news.example.jp>, not '%s'", c->list_id);
	/* The link carries a token that unsubscribes: https, but for a
	 * server on this machine (tests, a local try-out). */
	if (strncmp(c->unsub_base_url, "https://", 8) != 0 &&
	    strncmp(c->unsub_base_url, "http://localhost", 16) != 0 &&
	    strncmp(c->unsub_base_url, "http://127.", 11) != 0 &&
	    strncmp(c->unsub_base_url, "http://[::1]", 12) != 0)
		return err_set(e, ERR_CONFIG, "[unsubscribe] base_url must be "
		    "an https:// URL, not '%s'", c->unsub_base_url);
	if (strchr(c->unsub_base_url, ' ') != NULL)
		return err_set(e, ERR_CONFIG, "[unsubscribe] base_url contains "
		    "a space");
	/* A browser keeps what follows '#' to itself: the token would
	 * never reach the server. */
	if (strchr(c->unsub_base_url, '#') != NULL)
		return err_set(e, ERR_CONFIG, "[unsubscribe] base_url contains "
		    "'#': the token appended after it would never reach the web "
		    "server; name the page without a fragment");
	/* The token is appended to it: one that does not end in '/' gets
	 * it, so "https://www.example.jp/u" gives ".../u/TOKEN" (forwarded
	 * to serve's /u/TOKEN), not ".../uTOKEN"; but one with a query
	 * ("...?t=") is taken as it is. */
	ulen = strlen(c->unsub_base_url);
	if (c->unsub_base_url[ulen - 1] != '/' &&
	    strchr(c->unsub_base_url, '?') == NULL) {
		char *v = xasprintf("%s/", c->unsub_base_url);

		free(c->unsub_base_url);
		c->unsub_base_url = v;
	}
	if (c->data_dir == NULL)
		c->data_dir = default_datadir();
	if (c->templates_dir == NULL)
		c->templates_dir = xasprintf("%s/templates", c->data_dir);
	if (c->feeds_file == NULL)
		c->feeds_file = xasprintf("%s/feeds/feeds.conf", c->data_dir);
	if (c->products_file == NULL)
		c->products_file = xasprintf("%s/feeds/products.conf", c->data_dir);
	if (c->unsub_secret_file == NULL) {
		dbdir = xstrdup(c->db_path);
		slash = strrchr(dbdir, '/');
		if (slash != NULL) {
			*slash = '\0';
			c->unsub_secret_file = xasprintf("%s/unsubscribe.key",
			    *dbdir ? dbdir : "/");
		} else
			c->unsub_secret_file = xstrdup("unsubscribe.key");
		free(dbdir);
	}
	if (c->relays == NULL && strncmp(c->transport, "maildir:", 8) != 0 &&
	    strncmp(c->transport, "mbox:", 5) != 0)
		return err_set(e, ERR_CONFIG, "transport '%s' is not usable",
		    c->transport);
	return 0;
}

int
config_load(struct config **out, const char *path, const char *db_override,
    struct err *e)
{
	struct config *c = config_defaults();
	struct loadctx lc = { c, e, NULL, 0 };
	struct reader rd = { NULL, 0, 0, 0, 0 };
	const char *env;
	char *slash;
	FILE *fp = NULL;
	int line, rc = 0;

	*out = NULL;
	/* For the tests: render every message made from a skeleton whole
	 * too and compare (render_check()). */
	c->check_skeletons = getenv("SAMAIL_CHECK_SKELETONS") != NULL;
	if (path == NULL && (env = getenv("SAMAIL_CONFIG")) != NULL && *env)
		path = env;
	if (path != NULL) {
		struct stat st;

		if ((fp = fopen(path, "r")) == NULL) {
			rc = err_set(e, ERR_CONFIG, "cannot open config '%s': %s",
			    path, strerror(errno));
			goto out;
		}
		/* fopen() opens a directory, and inih reads it as empty. */
		if (fstat(fileno(fp), &st) == 0 && !S_ISREG(st.st_mode)) {
			rc = err_set(e, ERR_CONFIG, "config '%s' is not a file",
			    path);
			goto out;
		}
	} else if ((fp = fopen("samail.conf", "r")) != NULL)
		path = "samail.conf";
	else if ((fp = fopen(SAMAIL_SYSCONFDIR "/samail.conf", "r")) != NULL)
		path = SAMAIL_SYSCONFDIR "/samail.conf";

	if (fp != NULL) {
		c->file = xstrdup(path);
		lc.dir = xstrdup(path);
		if ((slash = strrchr(lc.dir, '/')) != NULL)
			*slash = '\0';
		else {
			free(lc.dir);
			lc.dir = NULL;
		}
		rd.fp = fp;
		line = ini_parse_stream(read_line, &rd, handler, &lc);
		if (line == 0 && rd.bad) {
			if (rd.nul)
				rc = err_set(e, ERR_CONFIG, "%s:%d: a NUL byte; "
				    "is this a text file?", path, rd.bad);
			else
				rc = err_set(e, ERR_CONFIG, "%s:%d: the line is "
				    "longer than the %d bytes a line may have",
				    path, rd.bad, rd.max);
			goto out;
		}
		if (line != 0) {
			if (!lc.failed)
				err_set(e, ERR_CONFIG, "syntax error (want "
				    "[section] and key = value lines)");
			err_prefix(e, "%s:%d", path, line);
			rc = -ERR_CONFIG;
			goto out;
		}
	}
	if (db_override != NULL) {
		free(c->db_path);
		c->db_path = xstrdup(db_override);
	}
	if ((rc = finish(c, e)) < 0) {
		if (c->file != NULL)
			err_prefix(e, "%s", c->file);
		rc = -ERR_CONFIG;
		goto out;
	}
	*out = c;
	c = NULL;
out:
	if (fp != NULL)
		fclose(fp);
	free(lc.dir);
	config_free(c);
	return rc;
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < NKEYS; i++)
		if (keys[i].type == K_STR || keys[i].type == K_PATH)
			free(*(char **)((char *)c + keys[i].off));
	for (size_t i = 0; i < c->nrelays; i++)
		free(c->relays[i]);
	free(c->relays);
	free(c->file);
	free(c->from);
	free(c->from_name);
	free(c->from_addr);
	free(c->envelope_from);
	free(c->reply_to);
	free(c->transport);
	free(c->unsub_mailto);
	free(c);
}

int
config_secret(const char *file, const char *env, char **out, size_t *lenp,
    struct err *e)
{
	struct stat st;
	const char *v;
	char *data;
	FILE *fp;
	size_t n;

	*out = NULL;
	if (file != NULL && access(file, F_OK) == 0) {
		if ((fp = fopen(file, "r")) == NULL)
			return err_set(e, ERR_CONFIG, "cannot read secret file "
			    "'%s': %s", file, strerror(errno));
		if (fstat(fileno(fp), &st) < 0 || !S_ISREG(st.st_mode)) {
			fclose(fp);
			return err_set(e, ERR_CONFIG, "secret file '%s' is not "
			    "a regular file", file);
		}
		/* A secret readable by others is no secret (msmtp does the same). */
		if (st.st_mode & (S_IRWXG | S_IRWXO)) {
			fclose(fp);
			return err_set(e, ERR_CONFIG, "secret file '%s' is "
			    "readable by group or others; run: chmod 600 '%s'",
			    file, file);
		}
		if (st.st_size > 4096) {
			fclose(fp);
			return err_set(e, ERR_CONFIG, "secret file '%s' is over "
			    "4 KB; it should hold one secret", file);
		}
		data = xmalloc((size_t)st.st_size + 1);
		n = fread(data, 1, (size_t)st.st_size, fp);
		fclose(fp);
		data[n] = '\0';
		while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r'))
			data[--n] = '\0';
		if (n == 0) {
			free(data);
			return err_set(e, ERR_CONFIG, "secret file '%s' is empty",
			    file);
		}
		*out = data;
		if (lenp != NULL)
			*lenp = n;
		return 0;
	}
	if (env != NULL && (v = getenv(env)) != NULL && *v != '\0') {
		*out = xstrdup(v);
		if (lenp != NULL)
			*lenp = strlen(v);
		return 1;
	}
	return err_set(e, ERR_NOINPUT, "no secret: neither '%s' nor $%s exists",
	    file ? file : "(no file configured)", env ? env : "-");
}
