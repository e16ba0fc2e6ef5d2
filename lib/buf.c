#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "xalloc.h"

void
buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

/* Make room for n more bytes plus the terminating NUL. */
static int
grow(struct buf *b, size_t n)
{
	size_t want, ncap;

	if (n > (size_t)-1 - b->len - 1)
		return -ERR_TOOBIG;
	want = b->len + n;
	if (b->max != 0 && want > b->max)
		return -ERR_TOOBIG;
	if (want + 1 <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 64;
	while (ncap < want + 1)
		ncap = ncap > ((size_t)-1) / 2 ? want + 1 : ncap * 2;
	b->data = xrealloc(b->data, ncap);
	b->cap = ncap;
	return 0;
}

int
buf_add(struct buf *b, const void *p, size_t n)
{
	int rc;

	if ((rc = grow(b, n)) < 0)
		return rc;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

char *
buf_space(struct buf *b, size_t n)
{
	if (grow(b, n) < 0)
		return NULL;
	return b->data + b->len;
}

void
buf_commit(struct buf *b, size_t n)
{
	b->len += n;
	b->data[b->len] = '\0';
}

int
buf_addstr(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int
buf_addch(struct buf *b, int c)
{
	char ch = (char)c;

	return buf_add(b, &ch, 1);
}

int
buf_vaddf(struct buf *b, const char *fmt, va_list ap)
{
	size_t room = b->cap - b->len;	/* with the NUL's byte */
	va_list cp;
	int n, rc;

	/*
	 * Format straight into the room there is: one vsnprintf() when it
	 * fits, as it mostly does, and a second one after growing when not.
	 * What did not fit is not content: the NUL is put back.
	 */
	va_copy(cp, ap);
	n = vsnprintf(b->data != NULL ? b->data + b->len : NULL,
	    b->data != NULL ? room : 0, fmt, cp);
	va_end(cp);
	if (n >= 0 && (size_t)n < room && (b->max == 0 ||
	    b->len + (size_t)n <= b->max)) {
		b->len += (size_t)n;
		return 0;
	}
	if (b->data != NULL)
		b->data[b->len] = '\0';
	if (n < 0)
		return -ERR_SOFTWARE;
	if ((rc = grow(b, (size_t)n)) < 0)
		return rc;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int
buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = buf_vaddf(b, fmt, ap);
	va_end(ap);
	return rc;
}

const char *
buf_str(const struct buf *b)
{
	return b->data != NULL ? b->data : "";
}

char *
buf_detach(struct buf *b, size_t *lenp)
{
	char *p = b->data != NULL ? b->data : xstrdup("");

	if (lenp != NULL)
		*lenp = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void
buf_truncate(struct buf *b, size_t len)
{
	if (b->data != NULL && len < b->len) {
		b->len = len;
		b->data[len] = '\0';
	}
}

void
buf_reset(struct buf *b)
{
	buf_truncate(b, 0);
}

void
buf_release(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
