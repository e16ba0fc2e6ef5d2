/*
 * xalloc — allocators that never return NULL.
 *
 * A batch job has nothing better to do on out-of-memory than to stop: the
 * SQLite transactions make dying mid-run safe.  These print one line and
 * exit with EX_OSERR (71).
 */
#ifndef SAMAIL_XALLOC_H
#define SAMAIL_XALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
void	*xreallocarray(void *, size_t, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
/* Caller frees. */
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

#endif
