#include <string.h>

#include "buf.h"
#include "err.h"
#include "text.h"
#include "wrap.h"

/*
 * Marks drawn on or joined to the character before them, never alone:
 * combining accents (an NFD "é"), the combining kana sound marks (NFD
 * text from a Mac writes パ as ハ + U+309A), zero-width joiners and
 * spaces, variation selectors.  No width, and no line starts with one.
 */
int
wrap_joins(unsigned c)
{
	return (c >= 0x300 && c <= 0x36f) || (c >= 0x1ab0 && c <= 0x1aff) ||
	    (c >= 0x1dc0 && c <= 0x1dff) || (c >= 0x200b && c <= 0x200d) ||
	    (c >= 0x20d0 && c <= 0x20ff) || c == 0x3099 || c == 0x309a ||
	    (c >= 0xfe00 && c <= 0xfe0f) || (c >= 0xfe20 && c <= 0xfe2f) ||
	    (c >= 0xe0100 && c <= 0xe01ef);
}

/* East Asian Width W, F and the ambiguous (A) characters that Japanese
 * terminals and mail clients draw wide. */
int
wrap_width(unsigned c)
{
	static const unsigned wide[][2] = {
		{ 0x1100, 0x115f }, { 0x2010, 0x2010 }, { 0x2013, 0x2016 },
		{ 0x2018, 0x2019 }, { 0x201c, 0x201d }, { 0x2020, 0x2022 },
		{ 0x2024, 0x2027 }, { 0x2030, 0x2030 }, { 0x2032, 0x2033 },
		{ 0x2035, 0x2035 }, { 0x203b, 0x203b }, { 0x2103, 0x2103 },
		{ 0x2116, 0x2116 }, { 0x2121, 0x2122 }, { 0x2160, 0x217f },
		{ 0x2190, 0x21ff }, { 0x2200, 0x22ff }, { 0x2460, 0x24ff },
		{ 0x2500, 0x257f }, { 0x25a0, 0x25ff }, { 0x2600, 0x26ff },
		{ 0x2e80, 0x303e }, { 0x3041, 0x33ff }, { 0x3400, 0x4dbf },
		{ 0x4e00, 0x9fff }, { 0xa000, 0xa4cf }, { 0xac00, 0xd7a3 },
		{ 0xf900, 0xfaff }, { 0xfe30, 0xfe4f }, { 0xff00, 0xff60 },
		{ 0xffe0, 0xffe6 }, { 0x1f300, 0x1f64f }, { 0x1f900, 0x1f9ff },
		{ 0x20000, 0x3fffd },
	};
	static const unsigned ambiguous[] = {
		0xa7, 0xa8, 0xb0, 0xb1, 0xb4, 0xb6, 0xd7, 0xf7,
	};

	if (c < 0x20 || (c >= 0x7f && c < 0xa0))
		return 0;
	if (c < 0xa7)
		return 1;
	if (wrap_joins(c))
		return 0;
	/* The common case in Japanese text, before the table walk. */
	if ((c >= 0x3041 && c <= 0x33ff) || (c >= 0x4e00 && c <= 0x9fff) ||
	    (c >= 0xff01 && c <= 0xff60))
		return 2;
	for (size_t i = 0; i < sizeof(ambiguous) / sizeof(ambiguous[0]); i++)
		if (c == ambiguous[i])
			return 2;
	if ((c >= 0x391 && c <= 0x3c9) || (c >= 0x401 && c <= 0x451))
		return 2;	/* Greek and Cyrillic: ambiguous, wide in JIS fonts */
	for (size_t i = 0; i < sizeof(wide) / sizeof(wide[0]); i++)
		if (c >= wide[i][0] && c <= wide[i][1])
			return 2;
	return 1;
}

int
wrap_char(const char *s, size_t n, size_t *len)
{
	unsigned cp;

	*len = text_utf8_decode(s, n, &cp);
	return wrap_width(cp);
}

static size_t
str_width(const char *s, size_t n)
{
	size_t w = 0, k;
	unsigned cp;

	for (size_t i = 0; i < n; i += k) {
		k = text_utf8_decode(s + i, n - i, &cp);
		w += (size_t)wrap_width(cp);
	}
	return w;
}

/* Closing marks that must not start a line. */
static int
no_start(unsigned c)
{
	/* 、。，．・：；？！ー）」』】〕〉》”’ small kana 々〻‐〜～ */
	static const unsigned set[] = {
		0x3001, 0x3002, 0xff0c, 0xff0e, 0x30fb, 0xff1a, 0xff1b, 0xff1f,
		0xff01, 0x30fc, 0xff09, 0x300d, 0x300f, 0x3011, 0x3015, 0x3009,
		0x300b, 0x201d, 0x2019, 0x3041, 0x3043, 0x3045, 0x3047, 0x3049,
		0x3063, 0x3083, 0x3085, 0x3087, 0x308e, 0x30a1, 0x30a3, 0x30a5,
		0x30a7, 0x30a9, 0x30c3, 0x30e3, 0x30e5, 0x30e7, 0x30ee, 0x30f5,
		0x30f6, 0x3005, 0x303b, 0x2010, 0x301c, 0xff5e,
	};

	if (c < 0x80)
		return c && strchr("),.:;!?]}%", (int)c) != NULL;
	if (c < 0x2010)
		return 0;
	/* Half-width ｡｣､･ ｧｨｩｪｫｬｭｮｯ ｰ (JIS X 0201 katakana) */
	if (c == 0xff61 || (c >= 0xff63 && c <= 0xff65) ||
	    (c >= 0xff67 && c <= 0xff70))
		return 1;
	for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
		if (set[i] == c)
			return 1;
	return 0;
}

/* Opening marks that must not end a line. */
static int
no_end(unsigned c)
{
	static const unsigned set[] = { 0xff08, 0x300c, 0x300e, 0x3010, 0x3014,
	    0x3008, 0x300a, 0x201c, 0x2018, 0xff62, '(', '[', '{' };

	for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
		if (set[i] == c)
			return 1;
	return 0;
}

static int
is_word_byte(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || (c != 0 && strchr("_./@%+=:&?#~'-", c));
}

/* The bytes of the marks at s that join the character before them
 * (wrap_joins()), and the half-width sound marks ﾞ ﾟ after ｶ etc. */
static size_t
joined(const char *s, size_t n)
{
	size_t i = 0, k;
	unsigned cp;

	while (i < n) {
		k = text_utf8_decode(s + i, n - i, &cp);
		if (!wrap_joins(cp) && cp != 0xff9e && cp != 0xff9f)
			break;
		i += k;
	}
	return i;
}

size_t
wrap_url(const char *s, size_t n)
{
	size_t i;

	if (n >= 8 && strncmp(s, "https://", 8) == 0)
		i = 8;
	else if (n >= 7 && (strncmp(s, "http://", 7) == 0 ||
	    strncmp(s, "mailto:", 7) == 0))
		i = 7;
	else
		return 0;
	/* RFC 3986 allows no other byte in a URL; mail clients end a
	 * link at the first one, a Japanese character often. */
	while (i < n && (unsigned char)s[i] > 0x20 &&
	    (unsigned char)s[i] < 0x7f && strchr("<>\"{}|\\^`", s[i]) == NULL)
		i++;
	return i;
}

/*
 * The next token at s: a URL, an ASCII word, a run of white space, or one
 * character; a word or character with the marks that join it.
 */
static size_t
token(const char *s, size_t n)
{
	size_t i = 0;
	unsigned cp;

	if ((s[0] == 'h' || s[0] == 'm') && (i = wrap_url(s, n)) > 0)
		return i;
	if (is_word_byte((unsigned char)s[0])) {
		while (i < n && is_word_byte((unsigned char)s[i]))
			i++;
		return i + joined(s + i, n - i);
	}
	if (s[0] == ' ' || s[0] == '\t') {
		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		return i;
	}
	i = text_utf8_decode(s, n, &cp);
	return i + joined(s + i, n - i);
}

/* Leading blanks plus a list marker: the hanging indent. */
static size_t
marker(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && s[i] == ' ')
		i++;
	if (n - i >= 3 && memcmp(s + i, "・", 3) == 0)
		return i + 3;
	if (n - i >= 4 && memcmp(s + i, "□ ", 4) == 0)
		return i + 4;
	if (n - i >= 2 && memcmp(s + i, "- ", 2) == 0)
		return i + 2;
	if (n - i >= 4 && memcmp(s + i, "[ ] ", 4) == 0)
		return i + 4;
	if (i < n && s[i] >= '0' && s[i] <= '9') {
		size_t j = i;

		while (j < n && s[j] >= '0' && s[j] <= '9')
			j++;
		if (n - j >= 2 && s[j] == '.' && s[j + 1] == ' ')
			return j + 2;
	}
	return i;
}

static int
wrap_line(const char *s, size_t n, int cols, struct buf *out)
{
	struct buf cur = BUF_INIT(0);
	size_t hang, pos = 0, curw = 0, k;
	int rc = 0, first = 1, has_text = 0;	/* cur holds more than blanks */
	unsigned cp;

	/* No character is wider than its UTF-8 bytes: a line of at most
	 * cols bytes fits without measuring it. */
	if (n <= (size_t)cols || str_width(s, n) <= (size_t)cols)
		return buf_add(out, s, n) < 0 || buf_addch(out, '\n') < 0 ?
		    -ERR_TOOBIG : 0;
	hang = str_width(s, marker(s, n));
	if (hang > (size_t)cols / 2)
		hang = 0;
	while (pos < n) {
		size_t tl = token(s + pos, n - pos), tw = str_width(s + pos, tl);
		int space = s[pos] == ' ' || s[pos] == '\t';

		text_utf8_decode(s + pos, n - pos, &cp);
		if (has_text && curw + tw > (size_t)cols && !space) {
			if (no_start(cp)) {
				/* Hang the closing mark (burasage). */
				buf_add(&cur, s + pos, tl);
				curw += tw;
				has_text = 1;
				pos += tl;
				continue;
			}
			/* Carry opening marks over to the next line. */
			size_t cut = cur.len, carry_from;

			for (;;) {
				size_t b = cut;
				unsigned c2;

				while (b > 0 && ((unsigned char)cur.data[b - 1] & 0xc0) == 0x80)
					b--;
				if (b == 0)
					break;
				b--;
				text_utf8_decode(cur.data + b, cut - b, &c2);
				if (!no_end(c2) || b == 0)
					break;
				cut = b;
			}
			carry_from = cut;
			k = carry_from;
			while (k > 0 && cur.data[k - 1] == ' ')
				k--;
			rc |= buf_add(out, cur.data, k);
			rc |= buf_addch(out, '\n');
			{
				struct buf next = BUF_INIT(0);

				for (size_t h = 0; h < hang; h++)
					buf_addch(&next, ' ');
				buf_add(&next, cur.data + carry_from,
				    cur.len - carry_from);
				buf_release(&cur);
				cur = next;
			}
			curw = str_width(cur.data ? cur.data : "", cur.len);
			has_text = cur.len > hang;
			first = 0;
		}
		if (space && !has_text && !first) {
			pos += tl;	/* no blanks at the start of a continuation */
			continue;
		}
		buf_add(&cur, s + pos, tl);
		curw += tw;
		has_text |= !space;
		pos += tl;
	}
	k = cur.len;
	while (k > 0 && cur.data[k - 1] == ' ')
		k--;
	if (k > 0) {
		rc |= buf_add(out, cur.data, k);
		rc |= buf_addch(out, '\n');
	}
	buf_release(&cur);
	return rc < 0 ? -ERR_TOOBIG : 0;
}

int
wrap_text(const char *text, size_t len, int cols, struct buf *out)
{
	const char *p = text, *end = text + len;
	int rc;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n == 0) {
			if (nl != NULL && buf_addch(out, '\n') < 0)
				return -ERR_TOOBIG;
		} else if ((rc = wrap_line(p, n, cols, out)) < 0)
			return rc;
		if (nl == NULL) {
			/* No final newline in the input: none in the output. */
			if (out->len > 0 && out->data[out->len - 1] == '\n' && n > 0)
				buf_truncate(out, out->len - 1);
			break;
		}
		p = nl + 1;
	}
	return 0;
}
