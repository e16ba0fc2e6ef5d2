/*
 * tag — which products of the dictionary an advisory touches.
 *
 * An advisory gets a product's tag when either
 *   - one of its CPEs matches one of the product's `cpe` patterns: the
 *     pattern is "vendor:product" with '*' globs, compared without regard
 *     to case with the CPE's vendor and product (CPE 2.2 "cpe:/a:v:p:..."
 *     or 2.3 "cpe:2.3:a:v:p:..."); or
 *   - one of the product's `keyword`s occurs in the title or summary and
 *     that occurrence is not inside an occurrence of one of the product's
 *     `exclude` phrases.  `exclude` never vetoes a CPE match.
 *
 * Keyword matching: case-insensitive for ASCII letters; full-width ASCII
 * in the advisory (ＷｉｎｄｏｗＳ) counts as ASCII; an ASCII letter or digit
 * at either end of a keyword must not touch another ASCII letter or digit
 * in the text.  So "iOS" does not match "BIOS", "PHP" does not match
 * "PHPMailer" or "CakePHP", "Java" does not match "JavaScript", but "PHP"
 * matches "PHPの脆弱性" and "FortiOS" matches "Fortinet製FortiOS": Japanese
 * text has no spaces, so a non-ASCII neighbour is a boundary.  Keywords
 * that end in a non-ASCII character ("Microsoft 製品") are plain
 * substrings at that end.
 *
 * Inputs are trusted: they come from lib/feed (already validated) or from
 * the database it filled.
 */
#ifndef SAMAIL_TAG_H
#define SAMAIL_TAG_H

#include "products.h"

struct tagger;

/* Compile the dictionary's rules; keeps no pointer into p.  Free with
 * tag_free(). */
struct tagger *tag_new(const struct products *p);
void	 tag_free(struct tagger *t);

/*
 * Add to out the tags of the products the advisory touches.  title and
 * summary may be NULL; cpes may be NULL.  out stays sorted and unique
 * (tags already in it are kept).
 */
void	 tag_match(const struct tagger *t, const char *title,
	    const char *summary, const struct strlist *cpes,
	    struct strlist *out);

/* "a,b,c" from a list; "" when empty.  Caller frees. */
char	*tag_join(const struct strlist *l);
/* Append the non-empty comma-separated elements of csv to out. */
void	 tag_split(const char *csv, struct strlist *out);

#endif
