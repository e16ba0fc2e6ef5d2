#include <glib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "text.h"
#include "xalloc.h"

/*
 * The length (2 to 4) of the well-formed multi-byte UTF-8 sequence at p
 * (*p >= 0x80), 0 if it is not one.
 */
static inline size_t
utf8_seq(const unsigned char *p, const unsigned char *end)
{
	if (*p >= 0xe0 && *p <= 0xef) {
		/* Japanese: three bytes; no overlong form (E0 80-9F), no
		 * surrogate (ED A0-BF). */
		if (end - p < 3 || (p[1] & 0xc0) != 0x80 ||
		    (p[2] & 0xc0) != 0x80 || (*p == 0xe0 && p[1] < 0xa0) ||
		    (*p == 0xed && p[1] >= 0xa0))
			return 0;
		return 3;
	}
	if (*p >= 0xc2 && *p <= 0xdf)
		return end - p < 2 || (p[1] & 0xc0) != 0x80 ? 0 : 2;
	/* Not overlong (F0 80-8F), not past U+10FFFF (F4 90-). */
	if (*p >= 0xf0 && *p <= 0xf4 && end - p >= 4 && (p[1] & 0xc0) == 0x80 &&
	    (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 &&
	    !(*p == 0xf0 && p[1] < 0x90) && !(*p == 0xf4 && p[1] >= 0x90))
		return 4;
	return 0;
}

int
text_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	size_t k;

	while (p < end) {
		if (*p < 0x80) {
			uint64_t w;

			/* Runs of ASCII (HTML markup) eight bytes at a time. */
			while (end - p >= 8 && (memcpy(&w, p, 8),
			    (w & 0x8080808080808080ULL) == 0))
				p += 8;
			while (p < end && *p < 0x80)
				p++;
			continue;
		}
		if ((k = utf8_seq(p, end)) == 0)
			return 0;
		p += k;
	}
	return 1;
}

/* A byte of w is zero: the classic "haszero" bit trick. */
#define HAS_ZERO(w)	(((w) - 0x0101010101010101ULL) & ~(w) & \
			    0x8080808080808080ULL)

int
text_scan(const char *s, size_t n, struct text_scan *out)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	size_t eight = 0, k;
	int cr = 0;

	out->nul = 0;
	while (p < end) {
		if (*p < 0x80) {
			uint64_t w;

			/* ASCII eight bytes at a time, looking for NUL and CR
			 * on the way (the line ends of a template are LF). */
			while (end - p >= 8 && (memcpy(&w, p, 8),
			    (w & 0x8080808080808080ULL) == 0)) {
				if (HAS_ZERO(w) != 0)
					goto nul;
				if (!cr && HAS_ZERO(w ^ 0x0d0d0d0d0d0d0d0dULL) != 0)
					cr = 1;
				p += 8;
			}
			for (; p < end && *p < 0x80; p++) {
				if (*p == '\0')
					goto nul;
				if (*p == '\r')
					cr = 1;
			}
			continue;
		}
		if ((k = utf8_seq(p, end)) == 0)
			goto bad;
		p += k;
		eight += k;
	}
	out->eight = eight;
	out->cr = cr;
	return 1;
nul:
	out->nul = 1;
bad:
	out->eight = eight;
	out->cr = cr;
	return 0;
}

size_t
text_utf8_len(const char *s)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

int
text_has_control(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return 1;
		/* C1 controls are U+0080..U+009F: 0xC2 0x80..0x9F in UTF-8. */
		if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return 1;
		/*
		 * U+2028/2029 (line and paragraph separators: a line break
		 * to some readers) and the bidi controls U+202A..202E and
		 * U+2066..2069 (they reorder what a reader sees, so a name
		 * can be made to look like another): E2 80 A8..AE, E2 81
		 * A6..A9.  The mail builder refuses them in headers; refusing
		 * them at the door keeps one bad row from failing later.
		 */
		if (*p == 0xe2 && p[1] == 0x80 && p[2] >= 0xa8 && p[2] <= 0xae)
			return 1;
		if (*p == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)
			return 1;
	}
	return 0;
}

static int
is_space_at(const char *s, size_t *len)
{
	const unsigned char *u = (const unsigned char *)s;

	if (*u == ' ' || *u == '\t' || *u == '\r' || *u == '\n') {
		*len = 1;
		return 1;
	}
	/* U+3000; a NUL stops the comparison. */
	if (*u == 0xe3 && u[1] == 0x80 && u[2] == 0x80) {
		*len = 3;
		return 1;
	}
	/* U+00A0, the no-break space of text copied from a web page. */
	if (*u == 0xc2 && u[1] == 0xa0) {
		*len = 2;
		return 1;
	}
	return 0;
}

char *
text_trim(char *s)
{
	size_t n, skip = 0, len, end;

	while (s[skip] != '\0' && is_space_at(s + skip, &n))
		skip += n;
	if (skip > 0)
		memmove(s, s + skip, strlen(s + skip) + 1);
	len = strlen(s);
	for (;;) {
		unsigned char c;

		end = len;
		if (end == 0)
			break;
		c = (unsigned char)s[end - 1];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			len = end - 1;
		else if (c < 0x80)
			break;
		else if (end >= 3 && memcmp(s + end - 3, "\xe3\x80\x80", 3) == 0)
			len = end - 3;
		else if (end >= 2 && memcmp(s + end - 2, "\xc2\xa0", 2) == 0)
			len = end - 2;
		else
			break;
		s[len] = '\0';
	}
	return s;
}

int
text_is_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 0;
	return 1;
}

char *
text_ascii_lower(char *s)
{
	for (char *p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

int
text_ieq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

char *
text_fold_fullwidth(char *s)
{
	unsigned char *r = (unsigned char *)s, *w = r;
	unsigned cp;

	while (*r != '\0') {
		/* U+FF01..U+FF5E: EF BC 81..EF BC BF, EF BD 80..EF BD 9E */
		if (r[0] == 0xef && (r[1] == 0xbc || r[1] == 0xbd) && r[2] != 0) {
			cp = 0xff00 | ((r[1] & 0x03u) << 6) | (r[2] & 0x3fu);
			if (cp >= 0xff01 && cp <= 0xff5e) {
				*w++ = (unsigned char)(cp - 0xff01 + 0x21);
				r += 3;
				continue;
			}
		}
		if (r[0] == 0xe3 && r[1] == 0x80 && r[2] == 0x80) {
			*w++ = ' ';
			r += 3;
			continue;
		}
		*w++ = *r++;
	}
	*w = '\0';
	return s;
}

static int
halfwidth_kana(const unsigned char *p)
{
	return p[0] == 0xef && ((p[1] == 0xbd && p[2] >= 0xa1 && p[2] <= 0xbf) ||
	    (p[1] == 0xbe && p[2] >= 0x80 && p[2] <= 0x9f));
}

char *
text_widen_kana(const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *q;
	struct buf b = BUF_INIT(0);
	gchar *n;

	while (*p != '\0') {
		if (!halfwidth_kana(p)) {
			buf_addch(&b, (char)*p++);
			continue;
		}
		for (q = p; halfwidth_kana(q); q += 3)
			;
		/* NFKC on the run only: it also composes ｶﾞ into ガ, and
		 * leaves ① or ㈱ elsewhere in the name as they are. */
		n = g_utf8_normalize((const gchar *)p, q - p, G_NORMALIZE_NFKC);
		if (n != NULL)
			buf_addstr(&b, n);
		else
			buf_add(&b, p, (size_t)(q - p));
		g_free(n);
		p = q;
	}
	return buf_detach(&b, NULL);
}

char *
text_match_key(const char *s)
{
	char *f = text_fold_fullwidth(xstrdup(s)), *r, *w;

	for (r = w = f; *r != '\0'; r++)
		if (*r != ' ' && *r != '\t')
			*w++ = (char)((*r >= 'A' && *r <= 'Z') ? *r + 32 : *r);
	*w = '\0';
	return f;
}

size_t
text_utf8_decode(const char *s, size_t n, unsigned *cp)
{
	const unsigned char *p = (const unsigned char *)s;

	if (p[0] < 0x80 || n < 2) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xe0 && p[0] < 0xf0 && n >= 3) {
		*cp = ((p[0] & 0x0fu) << 12) | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu);
		return 3;
	}
	if (p[0] >= 0xf0 && n >= 4) {
		*cp = ((p[0] & 0x07u) << 18) | ((p[1] & 0x3fu) << 12) |
		    ((p[2] & 0x3fu) << 6) | (p[3] & 0x3fu);
		return 4;
	}
	if (p[0] >= 0xc0 && p[0] < 0xe0) {
		*cp = ((p[0] & 0x1fu) << 6) | (p[1] & 0x3fu);
		return 2;
	}
	*cp = p[0];
	return 1;
}
