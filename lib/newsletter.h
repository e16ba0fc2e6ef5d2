/*
 * newsletter — a month's campaign: which advisories it reports, and one
 * queued message per eligible declarer.
 *
 * The period is the month whose advisories are reported, in Japan time.
 * The campaign is created once, with a frozen snapshot of its content
 * (the period's advisories, the templates and content data); building it
 * again only queues declarers not queued yet (added since), so running it
 * twice queues nothing twice.  Unsubscribed, bounced, removed and
 * suppressed addresses are never queued.
 */
#ifndef SAMAIL_NEWSLETTER_H
#define SAMAIL_NEWSLETTER_H

#include <stddef.h>
#include <time.h>

struct db;
struct err;
struct products;
struct token_keys;

struct config;

struct newsletter_opts {
	const struct config	*cfg;
	int			 year, month;	/* the period */
	const char		*templates_dir;
	int			 max_advisories;	/* listed per mail */
	int			 max_alerts;
	const struct products	*dict;
	const struct token_keys	*keys;		/* unsubscribe tokens */
	const char		*list_id;
	const char		*only_email;	/* queue only this one (NULL: all) */
};

struct newsletter_stats {
	long long	campaign_id;
	int		created;	/* 1 if this build created the campaign */
	size_t		advisories;	/* in the snapshot */
	size_t		alerts;		/* of them, from the alert feed */
	size_t		queued;		/* messages queued now */
	size_t		already;	/* declarers queued by an earlier build */
	size_t		suppressed;	/* active but on the suppression list */
	size_t		matched;	/* of the queued, those with >= 1 advisory */
};

/*
 * Create the campaign for the period if it does not exist and queue its
 * messages, inside the caller's transaction (roll back for a dry run).
 * -ERR_PARSE for a template error (file:line:col), -ERR_INVAL for a
 * period in the future.
 */
int	 newsletter_build(struct db *, const struct newsletter_opts *,
	    time_t now, struct newsletter_stats *, struct err *);

/* "newsletter-2026-10" into out (32 bytes). */
void	 newsletter_campaign_name(int year, int month, char *out);

/* The index of a period's five_rules item among n; n 0: the count of
 * months it is taken from (see newsletter.c). */
size_t	 newsletter_rule_index(int year, int month, size_t n);

#endif
