/*
 * tag — match advisories against the product dictionary.  See tag.h for
 * the rules.
 *
 * The dictionary is compiled once (keywords lower-cased, boundary flags
 * worked out) because retagging and bench-sized feeds run every rule over
 * every advisory.
 */
#include <fnmatch.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "products.h"
#include "tag.h"
#include "text.h"
#include "xalloc.h"

struct phrase {
	char	*s;		/* lower-cased ASCII, as in the folded text */
	size_t	 len;
	int	 bound_start;	/* starts with an ASCII letter or digit */
	int	 bound_end;
};

/*
 * Which byte pairs occur in the text being tagged: a phrase can only be
 * there if all its byte pairs are.  Checking that first skips the search
 * for almost every keyword of almost every advisory (a 50 MB feed runs
 * ~100 keywords over 55,000 advisories).  4,096 bits, the pairs hashed:
 * the set is cleared for every advisory, and all 65,536 pairs made that
 * 8 KB, a quarter of the tagging time; a collision only lets strstr()
 * look.
 */
#define PAIR_BITS	4096

struct pairs {
	uint64_t bits[PAIR_BITS / 64];
};

static unsigned
pair_hash(unsigned char a, unsigned char b)
{
	return ((unsigned)a * 131u + b) & (PAIR_BITS - 1);
}

/* A UTF-8 continuation byte. */
static int
is_cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

static void
pairs_set(struct pairs *p, unsigned char a, unsigned char b)
{
	unsigned v = pair_hash(a, b);

	p->bits[v >> 6] |= (uint64_t)1 << (v & 63);
}

static int
pairs_maybe(const struct pairs *p, const struct phrase *ph)
{
	const unsigned char *s = (const unsigned char *)ph->s;

	for (size_t i = 0; i + 1 < ph->len; i++) {
		unsigned v;

		if (is_cont(s[i + 1]))
			continue;	/* not kept: see fold_text() */
		v = pair_hash(s[i], s[i + 1]);

		if (!(p->bits[v >> 6] & ((uint64_t)1 << (v & 63))))
			return 0;
	}
	return 1;
}

struct rule {
	char		*tag;
	char	       **cpe;	/* lower-cased patterns */
	size_t		 ncpe;
	struct phrase	*kw;
	size_t		 nkw;
	struct phrase	*ex;
	size_t		 nex;
};

struct tagger {
	struct rule	*v;
	size_t		 n;
};

static int
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* The form both sides are compared in: full-width ASCII folded, ASCII
 * lower-cased.  Caller frees. */
static char *
fold(const char *s)
{
	return text_ascii_lower(text_fold_fullwidth(xstrdup(s)));
}

/*
 * fold() of the n bytes at r, written at *wp, and the byte pairs of the
 * result into p (prev: the byte written before, if *wp is past start).
 * A character of several bytes is copied whole, its continuation bytes
 * (0x80-0xbf) with it, and no pair ending in a continuation byte is kept:
 * a pair inside a character tells little that the pair before it does
 * not, and a Japanese text (3 bytes a character) then costs a pair a
 * character, not one a byte.  pairs_maybe() skips the same pairs.
 */
static void
fold_part(const unsigned char *r, size_t n, unsigned char **wp,
    const unsigned char *start, struct pairs *p)
{
	const unsigned char *end = r + n;
	unsigned char *w = *wp, c;
	unsigned cp;

	while (r < end) {
		c = *r++;
		if (c >= 0x80) {
			if (c == 0xef && end - r >= 2 &&
			    (r[0] == 0xbc || r[0] == 0xbd) &&
			    (cp = 0xff00 | ((r[0] & 0x03u) << 6) |
			    (r[1] & 0x3fu), cp >= 0xff01 && cp <= 0xff5e)) {
				c = (unsigned char)(cp - 0xff01 + 0x21);
				r += 2;
			} else if (c == 0xe3 && end - r >= 2 && r[0] == 0x80 &&
			    r[1] == 0x80) {
				c = ' ';
				r += 2;
			} else {
				/* Any other byte is kept; a lead byte with the
				 * continuation bytes after it. */
				if (!is_cont(c) && w != start)
					pairs_set(p, w[-1], c);
				*w++ = c;
				while (r < end && is_cont(*r))
					*w++ = *r++;
				continue;
			}
		}
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (w != start)
			pairs_set(p, w[-1], c);
		*w++ = c;
	}
	*wp = w;
}

/*
 * fold() of title + "\n" + summary into a new string (caller frees), and
 * the byte pairs of the result into p, in one pass: this runs over every
 * advisory stored.  The newline keeps a keyword from spanning the two.
 */
static char *
fold_text(const char *title, const char *summary, struct pairs *p)
{
	size_t tl = title ? strlen(title) : 0, sl = summary ? strlen(summary) : 0;
	unsigned char *out = xmalloc(tl + sl + 2), *w = out;

	memset(p->bits, 0, sizeof(p->bits));
	fold_part((const unsigned char *)(title ? title : ""), tl, &w, out, p);
	if (w != out)
		pairs_set(p, w[-1], '\n');
	*w++ = '\n';
	fold_part((const unsigned char *)(summary ? summary : ""), sl, &w, out,
	    p);
	*w = '\0';
	return (char *)out;
}

static void
compile_phrases(const struct strlist *l, struct phrase **out, size_t *n)
{
	*out = xcalloc(l->n ? l->n : 1, sizeof(**out));
	*n = 0;
	for (size_t i = 0; i < l->n; i++) {
		struct phrase *p = &(*out)[*n];

		p->s = fold(l->v[i]);
		p->len = strlen(p->s);
		if (p->len == 0) {
			free(p->s);
			continue;
		}
		p->bound_start = is_alnum((unsigned char)p->s[0]);
		p->bound_end = is_alnum((unsigned char)p->s[p->len - 1]);
		(*n)++;
	}
}

struct tagger *
tag_new(const struct products *p)
{
	struct tagger *t = xcalloc(1, sizeof(*t));

	t->v = xcalloc(p->n ? p->n : 1, sizeof(*t->v));
	t->n = p->n;
	for (size_t i = 0; i < p->n; i++) {
		struct rule *r = &t->v[i];

		r->tag = xstrdup(p->v[i].tag);
		r->cpe = xcalloc(p->v[i].cpe.n ? p->v[i].cpe.n : 1,
		    sizeof(*r->cpe));
		for (size_t j = 0; j < p->v[i].cpe.n; j++)
			r->cpe[r->ncpe++] = fold(p->v[i].cpe.v[j]);
		compile_phrases(&p->v[i].keywords, &r->kw, &r->nkw);
		compile_phrases(&p->v[i].exclude, &r->ex, &r->nex);
	}
	return t;
}

void
tag_free(struct tagger *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++) {
		struct rule *r = &t->v[i];

		free(r->tag);
		for (size_t j = 0; j < r->ncpe; j++)
			free(r->cpe[j]);
		free(r->cpe);
		for (size_t j = 0; j < r->nkw; j++)
			free(r->kw[j].s);
		free(r->kw);
		for (size_t j = 0; j < r->nex; j++)
			free(r->ex[j].s);
		free(r->ex);
	}
	free(t->v);
	free(t);
}

/* 1 if the phrase at text+off stands on its own, as tag.h defines. */
static int
bounded(const char *text, size_t off, const struct phrase *p)
{
	if (p->bound_start && off > 0 &&
	    is_alnum((unsigned char)text[off - 1]))
		return 0;
	if (p->bound_end && is_alnum((unsigned char)text[off + p->len]))
		return 0;
	return 1;
}

/* 1 if [off, off+len) overlaps an occurrence of one of r's exclusions. */
static int
excluded(const struct rule *r, const char *text, size_t off, size_t len)
{
	for (size_t i = 0; i < r->nex; i++) {
		const struct phrase *x = &r->ex[i];
		const char *h = text;

		while ((h = strstr(h, x->s)) != NULL) {
			size_t xo = (size_t)(h - text);

			if (bounded(text, xo, x) && xo < off + len &&
			    off < xo + x->len)
				return 1;
			h++;
		}
	}
	return 0;
}

static int
keyword_hit(const struct rule *r, const char *text, const struct pairs *pp)
{
	for (size_t i = 0; i < r->nkw; i++) {
		const struct phrase *k = &r->kw[i];
		const char *h = text;

		if (!pairs_maybe(pp, k))
			continue;
		while ((h = strstr(h, k->s)) != NULL) {
			size_t off = (size_t)(h - text);

			if (bounded(text, off, k) &&
			    (r->nex == 0 || !excluded(r, text, off, k->len)))
				return 1;
			h++;
		}
	}
	return 0;
}

/*
 * "vendor:product" of a CPE, lower-cased, into out (size n); 0 or -1.
 * 2.2: cpe:/part:vendor:product[:...]; 2.3: cpe:2.3:part:vendor:product:...
 * (in 2.3 a ':' escaped as "\:" belongs to the field).
 */
static int
cpe_vendor_product(const char *cpe, char *out, size_t n)
{
	const char *p;
	size_t o = 0;
	int field = 0;

	if (strncmp(cpe, "cpe:/", 5) == 0)
		p = cpe + 5;
	else if (strncmp(cpe, "cpe:2.3:", 8) == 0)
		p = cpe + 8;
	else
		return -1;
	/* Skip the part (a, o, h). */
	while (*p != '\0' && *p != ':')
		p++;
	if (*p++ != ':')
		return -1;
	for (; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0') {
			p++;
		} else if (*p == ':') {
			if (++field == 2)
				break;
		}
		if (o + 1 >= n)
			return -1;
		out[o++] = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
	}
	out[o] = '\0';
	return field >= 1 ? 0 : -1;
}

static int
cpe_hit(const struct rule *r, const char *const *vp, size_t n)
{
	for (size_t i = 0; i < r->ncpe; i++)
		for (size_t j = 0; j < n; j++)
			if (fnmatch(r->cpe[i], vp[j], 0) == 0)
				return 1;
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
tag_match(const struct tagger *t, const char *title, const char *summary,
    const struct strlist *cpes, struct strlist *out)
{
	struct pairs pairs, *pp = &pairs;	/* 512 bytes: on the stack */
	char **vp = NULL, one[512];
	size_t nvp = 0;
	char *text;
	int added = 0;

	text = fold_text(title, summary, pp);

	if (cpes != NULL && cpes->n > 0) {
		vp = xcalloc(cpes->n, sizeof(*vp));
		for (size_t i = 0; i < cpes->n; i++)
			if (cpe_vendor_product(cpes->v[i], one, sizeof(one)) == 0)
				vp[nvp++] = xstrdup(one);
	}
	for (size_t i = 0; i < t->n; i++) {
		const struct rule *r = &t->v[i];

		if (strlist_has(out, r->tag))
			continue;
		if ((nvp > 0 && cpe_hit(r, (const char *const *)vp, nvp)) ||
		    keyword_hit(r, text, pp)) {
			strlist_add(out, r->tag);
			added = 1;
		}
	}
	if (added && out->n > 1)
		qsort(out->v, out->n, sizeof(*out->v), cmp_str);
	for (size_t i = 0; i < nvp; i++)
		free(vp[i]);
	free(vp);
	free(text);
}

char *
tag_join(const struct strlist *l)
{
	struct buf b = BUF_INIT(0);

	for (size_t i = 0; i < l->n; i++) {
		if (i > 0)
			buf_addch(&b, ',');
		buf_addstr(&b, l->v[i]);
	}
	return buf_detach(&b, NULL);
}

void
tag_split(const char *csv, struct strlist *out)
{
	const char *p = csv, *comma;

	if (csv == NULL)
		return;
	for (;;) {
		comma = strchr(p, ',');
		if (comma == NULL)
			comma = p + strlen(p);
		if (comma > p) {
			char *s = xstrndup(p, (size_t)(comma - p));

			strlist_add(out, s);
			free(s);
		}
		if (*comma == '\0')
			break;
		p = comma + 1;
	}
}
