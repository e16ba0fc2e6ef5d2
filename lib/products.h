/*
 * products — the product dictionary (feeds/products.conf).
 *
 * Each product has a tag (what declarers list and advisories are tagged
 * with), display names in Japanese and English, and the rules that tag an
 * advisory: CPE vendor:product patterns and title/summary keywords.
 *
 * File format: INI, one section per tag; keys `ja`, `en` (required),
 * `alias`, `cpe`, `keyword`, `exclude` (each repeatable, and each may hold
 * a comma-separated list).  Unknown keys are errors with their line
 * number.
 */
#ifndef SAMAIL_PRODUCTS_H
#define SAMAIL_PRODUCTS_H

#include <stddef.h>

struct err;

struct strlist {
	char	**v;
	size_t	  n;
};

struct product {
	char		*tag;		/* [a-z0-9-], <= 32 bytes */
	char		*name_ja;
	char		*name_en;
	struct strlist	 alias;		/* more names a declarer may write */
	struct strlist	 keys;		/* tag, names, aliases: match form */
	struct strlist	 cpe;		/* "vendor:product", '*' globs */
	struct strlist	 keywords;	/* matched in title and summary */
	struct strlist	 exclude;	/* a match of these vetoes the keywords */
};

struct products {
	struct product	*v;
	size_t		 n;
};

/* Load the dictionary at path into p (zeroed first).  0, -ERR_NOINPUT,
 * -ERR_CONFIG (with file:line).  Release with products_release(). */
int	 products_load(struct products *p, const char *path, struct err *e);
void	 products_release(struct products *p);

/*
 * The product a declarer means by s: its tag, Japanese or English name or
 * an alias, compared case-insensitively, with full-width letters and
 * digits as ASCII and blanks ignored ("ｗｉｎｄｏｗｓ", "Google  Chrome");
 * failing that, the same with a trailing version number dropped
 * ("Windows 11", "PHP 8.2", "Office2019").  NULL if none.
 */
const struct product *products_find(const struct products *p, const char *s);
/* Only the tag itself ("windows", "Windows"): the quick first check of
 * products_find().  NULL if s is no tag. */
const struct product *products_tag(const struct products *p, const char *s);

/* "windows, office, ..." — every tag, for error messages; caller frees. */
char	*products_tags(const struct products *p);

void	 strlist_add(struct strlist *l, const char *s);
int	 strlist_has(const struct strlist *l, const char *s);
void	 strlist_release(struct strlist *l);

#endif
