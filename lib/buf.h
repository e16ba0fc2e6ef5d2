/*
 * buf — a growable byte buffer with a hard cap.
 *
 * Everything that builds text (HTTP bodies, rendered templates, MIME
 * messages) uses it; the cap is how untrusted input stays bounded.  A
 * failed append leaves the buffer as it was: the caller still owns it.
 * The data is always NUL-terminated once anything was appended.
 */
#ifndef SAMAIL_BUF_H
#define SAMAIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char	*data;	/* NULL until the first append; use buf_str() */
	size_t	 len;
	size_t	 cap;
	size_t	 max;	/* appends past this fail with -ERR_TOOBIG; 0 = no cap */
};

#define BUF_INIT(max)	{ NULL, 0, 0, (max) }

void	 buf_init(struct buf *, size_t max);
/* 0, or -ERR_TOOBIG when the cap would be exceeded. */
int	 buf_add(struct buf *, const void *, size_t);
int	 buf_addstr(struct buf *, const char *);
int	 buf_addch(struct buf *, int);
int	 buf_addf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
int	 buf_vaddf(struct buf *, const char *, va_list)
	    __attribute__((format(printf, 2, 0)));
/* Room for n more bytes: where they go, to be written and then counted
 * with buf_commit(b, count <= n); NULL past the cap. */
char	*buf_space(struct buf *, size_t n);
void	 buf_commit(struct buf *, size_t n);
/* The contents as a C string; never NULL. */
const char *buf_str(const struct buf *);
/* Hand the contents to the caller (caller frees); the buffer is reset. */
char	*buf_detach(struct buf *, size_t *lenp);
/* Shorten to len bytes (len <= b->len). */
void	 buf_truncate(struct buf *, size_t len);
/* Empty the buffer, keeping the allocation. */
void	 buf_reset(struct buf *);
/* Free the contents; the buffer is reusable after. */
void	 buf_release(struct buf *);

#endif
