/*
 * wrap — wrap the text part of a mail for reading in a terminal or a
 * plain-text mail client.
 *
 * Lines longer than `cols` columns are broken, counting East Asian wide,
 * fullwidth and ambiguous characters as two columns; URLs and ASCII words
 * are never broken (a long one stands on its own line); kinsoku shori: a
 * closing mark (、。」） ...) never starts a line — it hangs at the end of
 * the previous one — and an opening mark (「（ ...) never ends one;
 * continuation lines are indented under the line's leading blanks and
 * list marker (・, □, "1. ", "- ", "[ ] ").  Line ends are LF.
 */
#ifndef SAMAIL_WRAP_H
#define SAMAIL_WRAP_H

#include <stddef.h>

#include "buf.h"

/* Columns a UTF-8 code point takes in a terminal (1 or 2; 0 for controls
 * and for the marks wrap_joins() names). */
int	 wrap_width(unsigned cp);
/* 1 for a mark that joins the character before it (combining accents and
 * kana sound marks, ZWJ, zero-width space, variation selectors): no line
 * starts with one. */
int	 wrap_joins(unsigned cp);
/* The columns the code point at s[0..n) takes, its length in *len (1 for
 * a stray byte); n > 0. */
int	 wrap_char(const char *s, size_t n, size_t *len);
/* The length of the URL (http://, https://, mailto:) at s[0..n): up to
 * the first byte that RFC 3986 does not allow in one (white space, a
 * non-ASCII character, <>"{}|\^`); 0 when s starts no URL.  Never
 * broken by wrap_text(). */
size_t	 wrap_url(const char *s, size_t n);
/* Append text[0..len) wrapped at cols to out.  0 or -ERR_TOOBIG. */
int	 wrap_text(const char *text, size_t len, int cols, struct buf *out);

#endif
