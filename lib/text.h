/*
 * text — small checks and edits on UTF-8 text from outside.
 */
#ifndef SAMAIL_TEXT_H
#define SAMAIL_TEXT_H

#include <stddef.h>

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, no surrogates). */
int	 text_utf8_valid(const char *s, size_t n);
/*
 * One pass over a body: 1 if s[0..n) is well-formed UTF-8 without NUL,
 * and what a MIME writer wants to know about it: how many bytes are
 * 8-bit (>= 0x80) and whether there is a CR.  0 (the counts partial) if
 * not valid or there is a NUL.
 */
struct text_scan {
	size_t	eight;		/* bytes >= 0x80 */
	int	cr;		/* holds a CR */
	int	nul;		/* holds a NUL (then 0 is returned) */
};
int	 text_scan(const char *s, size_t n, struct text_scan *out);
/* Number of code points in a valid UTF-8 string. */
size_t	 text_utf8_len(const char *s);
/* Bytes of the UTF-8 sequence a lead byte starts: 2, 3 or 4; 1 for ASCII
 * and for a byte that cannot lead (a continuation). */
static inline size_t
text_utf8_seq(unsigned char lead)
{
	return lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
}
/* Decode the UTF-8 code point at s (n bytes left) into *cp; returns its
 * length, 1 for a stray byte or a sequence cut short (*cp is that byte). */
size_t	 text_utf8_decode(const char *s, size_t n, unsigned *cp);
/*
 * 1 if s holds a control character: C0 (incl. CR, LF, TAB), DEL, C1
 * (U+0080..U+009F), the line and paragraph separators U+2028/2029 or a
 * bidi control (U+202A..202E, U+2066..2069).  Such characters must never
 * reach a mail header.
 */
int	 text_has_control(const char *s);
/*
 * Trim white space at both ends in place: ASCII space/tab/CR/LF and the
 * ideographic space U+3000 (Japanese IMEs type it).  Returns s.
 */
char	*text_trim(char *s);
/* 1 if s[0..n) is all ASCII (no byte >= 0x80). */
int	 text_is_ascii(const char *s, size_t n);
/* Lower-case ASCII letters in place; returns s. */
char	*text_ascii_lower(char *s);
/* Case-insensitive (ASCII) equality. */
int	 text_ieq(const char *a, const char *b);
/*
 * Replace full-width ASCII (U+FF01..U+FF5E) by ASCII and U+3000 by a space,
 * in place (the result is never longer).  Excel users type ２０２４／４／１.
 */
char	*text_fold_fullwidth(char *s);

/* A copy of s with half-width katakana (U+FF61..U+FF9F, old systems'
 * ｶﾌﾞｼｷｶﾞｲｼｬ) written full-width (カブシキガイシャ, sound marks
 * composed); the rest unchanged.  Caller frees. */
char	*text_widen_kana(const char *s);

/* A copy of s in the form names are compared in: full-width ASCII folded,
 * ASCII lower-cased, blanks (ASCII and ideographic) dropped ("Google
 * Chrome" = "ｇｏｏｇｌｅｃｈｒｏｍｅ").  Caller frees. */
char	*text_match_key(const char *s);

#endif
