/* skelcache: bounded, the oldest out first, an entry in use outlives its
 * eviction (ASan would see a use after free). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>

#include "skelcache.h"

static struct render_skel *
none(void *arg)
{
	(*(int *)arg)++;
	return NULL;	/* "render whole": an entry all the same */
}

static void
test_bounded_oldest_first(void **state)
{
	struct skelcache *c = skelcache_new(2);
	struct skelcache_ref *a, *held;
	char key[16];

	(void)state;
	held = skelcache_put(c, "k0", NULL);	/* kept in use */
	for (int i = 1; i <= 2; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		skelcache_release(c, skelcache_put(c, key, NULL));
	}
	/* k0 went out (the oldest) but is still ours to release. */
	assert_null(skelcache_get(c, "k0"));
	a = skelcache_get(c, "k1");
	assert_non_null(a);
	skelcache_release(c, a);
	a = skelcache_get(c, "k2");
	assert_non_null(a);
	skelcache_release(c, a);
	skelcache_release(c, held);		/* freed now */
	/* The same key put twice: one entry. */
	a = skelcache_put(c, "k2", NULL);
	assert_ptr_equal(a, skelcache_get(c, "k2"));
	skelcache_release(c, a);
	skelcache_release(c, a);
	skelcache_free(c);
}

static void
test_message_makes_once(void **state)
{
	struct skelcache *c = skelcache_new(4);
	int made = 0;

	(void)state;
	/* No skeleton for the key: 1 (render whole), made once. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(skelcache_message(c, "k", none, &made, NULL,
		    NULL, NULL, 0, NULL, NULL), 1);
	assert_int_equal(made, 1);
	skelcache_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounded_oldest_first),
		cmocka_unit_test(test_message_makes_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
