/*
 * skelcache — the render skeletons of a campaign's send.  See skelcache.h.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "skelcache.h"
#include "xalloc.h"

struct skelcache_ref {
	char			*key;
	struct render_skel	*k;
	size_t			 size;	/* bytes the skeleton holds */
	unsigned		 refs;
	int			 gone;	/* out of the cache, freed at refs 0 */
};

/* Oldest first; at most max entries and SKELCACHE_BYTES of skeletons
 * (a campaign's templates may render parts of up to 2 MB). */
#define SKELCACHE_BYTES	(32 * 1024 * 1024)

struct skelcache {
	pthread_mutex_t		 mu;
	struct skelcache_ref	**v;
	size_t			 max, n, bytes;
};

static void
entry_free(struct skelcache_ref *r)
{
	render_skel_free(r->k);
	free(r->key);
	free(r);
}

struct skelcache *
skelcache_new(size_t max)
{
	struct skelcache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->mu, NULL);
	c->max = max > 0 ? max : 1;
	c->v = xcalloc(c->max, sizeof(*c->v));
	return c;
}

void
skelcache_free(struct skelcache *c)
{
	if (c == NULL)
		return;
	/* Every reference is back by now: the senders have stopped. */
	for (size_t i = 0; i < c->n; i++)
		entry_free(c->v[i]);
	free(c->v);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static struct skelcache_ref *
find(struct skelcache *c, const char *key)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->v[i]->key, key) == 0)
			return c->v[i];
	return NULL;
}

struct skelcache_ref *
skelcache_get(struct skelcache *c, const char *key)
{
	struct skelcache_ref *r;

	pthread_mutex_lock(&c->mu);
	if ((r = find(c, key)) != NULL)
		r->refs++;
	pthread_mutex_unlock(&c->mu);
	return r;
}

/* Take the oldest entry out, with s->mu held; it is freed now or by
 * its last user.  Returns it when it is to be freed now. */
static struct skelcache_ref *
evict_oldest(struct skelcache *c)
{
	struct skelcache_ref *old = c->v[0];

	memmove(c->v, c->v + 1, (c->n - 1) * sizeof(*c->v));
	c->n--;
	c->bytes -= old->size;
	old->gone = 1;
	return old->refs == 0 ? old : NULL;
}

struct skelcache_ref *
skelcache_put(struct skelcache *c, const char *key, struct render_skel *k)
{
	struct skelcache_ref *r, *drop[2] = { NULL, NULL };

	pthread_mutex_lock(&c->mu);
	if ((r = find(c, key)) != NULL) {
		r->refs++;
		pthread_mutex_unlock(&c->mu);
		render_skel_free(k);
		return r;
	}
	r = xcalloc(1, sizeof(*r));
	r->key = xstrdup(key);
	r->k = k;
	r->size = render_skel_size(k) + strlen(key);
	r->refs = 1;
	if (c->n == c->max)
		drop[0] = evict_oldest(c);
	/* One more to make room in bytes, at most: a skeleton bigger than
	 * the budget stays alone, and the cache holds a few at worst. */
	if (c->n > 0 && c->bytes + r->size > SKELCACHE_BYTES)
		drop[1] = evict_oldest(c);
	c->v[c->n++] = r;
	c->bytes += r->size;
	pthread_mutex_unlock(&c->mu);
	for (int i = 0; i < 2; i++)
		if (drop[i] != NULL)
			entry_free(drop[i]);
	return r;
}

void
skelcache_release(struct skelcache *c, struct skelcache_ref *r)
{
	int drop;

	if (r == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	drop = --r->refs == 0 && r->gone;
	pthread_mutex_unlock(&c->mu);
	if (drop)
		entry_free(r);
}

int
skelcache_message(struct skelcache *c, const char *key,
    struct render_skel *(*make)(void *arg), void *arg,
    const struct render_env *env, const struct render_mail *m,
    const char *const *values, size_t n, struct buf *out, struct err *e)
{
	struct skelcache_ref *ref;
	int rc = 1;

	if ((ref = skelcache_get(c, key)) == NULL)
		ref = skelcache_put(c, key, make(arg));
	if (ref->k != NULL)
		rc = render_skel_message(ref->k, env, m, values, n, out, e);
	skelcache_release(c, ref);
	return rc;
}
