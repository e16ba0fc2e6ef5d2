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
	unsigned		 refs;
	int			 gone;	/* out of the cache, freed at refs 0 */
};

struct skelcache {
	pthread_mutex_t		 mu;
	struct skelcache_ref	**v;
	size_t			 max, n, next;	/* next: the oldest */
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

struct skelcache_ref *
skelcache_put(struct skelcache *c, const char *key, struct render_skel *k)
{
	struct skelcache_ref *r, *old = NULL;

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
	r->refs = 1;
	if (c->n < c->max)
		c->v[c->n++] = r;
	else {
		old = c->v[c->next];
		c->v[c->next] = r;
		c->next = (c->next + 1) % c->max;
		old->gone = 1;
		if (old->refs > 0)
			old = NULL;	/* its last user frees it */
	}
	pthread_mutex_unlock(&c->mu);
	if (old != NULL)
		entry_free(old);
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
