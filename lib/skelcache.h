/*
 * skelcache — the render skeletons of a campaign's send, by key.
 *
 * A bounded, thread-safe cache: sender threads look up the skeleton of a
 * declarer's key, fill it, and let go of it.  When the cache is full (in
 * entries, or past 32 MB of skeletons) the oldest entry gives way; it is
 * freed once the last thread using it lets go.  The outbox is queued in
 * an order that puts declarers with the same key next to each other
 * (newsletter.c), so a few dozen entries serve a whole campaign.
 */
#ifndef SAMAIL_SKELCACHE_H
#define SAMAIL_SKELCACHE_H

#include <stddef.h>

struct render_skel;
struct skelcache;
struct skelcache_ref;

/* A cache of at most max skeletons; skelcache_free() it (and the
 * skeletons) once no thread uses it. */
struct skelcache *skelcache_new(size_t max);
void	 skelcache_free(struct skelcache *);

/* The entry for key with a reference, or NULL if there is none. */
struct skelcache_ref *skelcache_get(struct skelcache *, const char *key);
/* Add k for key (k NULL: this key has no skeleton); the cache owns k.
 * Returns the entry kept, with a reference: another thread's if it put
 * the same key first (then k is freed). */
struct skelcache_ref *skelcache_put(struct skelcache *, const char *key,
	    struct render_skel *k);
void	 skelcache_release(struct skelcache *, struct skelcache_ref *);

struct err;
struct render_env;
struct render_mail;
struct buf;

/*
 * The message m from the skeleton of key, made with make(arg) on first
 * use (make returns NULL when this key has no skeleton), filled with the
 * n hole values.  0, 1 when the message must be rendered whole, -ERR_*.
 */
int	 skelcache_message(struct skelcache *, const char *key,
	    struct render_skel *(*make)(void *arg), void *arg,
	    const struct render_env *, const struct render_mail *m,
	    const char *const *values, size_t n, struct buf *out, struct err *);

#endif
