/* httpd: the per-client rate limiter (the server itself is driven over
 * HTTP by tests/integration/0610-serve.sh). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "httpd.h"

static const unsigned char ip_a[4] = { 192, 0, 2, 1 };
static const unsigned char ip_b[4] = { 192, 0, 2, 2 };

static void
test_bucket(void **state)
{
	struct ratelimit *rl = ratelimit_new(3, 60);	/* 3 at once, 1/s */

	(void)state;
	/* The burst goes through, the next request waits a second. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(ratelimit_take(rl, ip_a, 4, 1000), 0);
	assert_int_equal(ratelimit_take(rl, ip_a, 4, 1000), 1);
	/* Refused requests cost nothing: half a second later it still
	 * needs the other half. */
	assert_int_equal(ratelimit_take(rl, ip_a, 4, 1500), 1);
	assert_int_equal(ratelimit_take(rl, ip_a, 4, 2000), 0);
	assert_int_equal(ratelimit_take(rl, ip_a, 4, 2000), 1);
	/* Another client has its own bucket. */
	assert_int_equal(ratelimit_take(rl, ip_b, 4, 2000), 0);
	/* Long idle: back to the burst, never more. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(ratelimit_take(rl, ip_a, 4, 3600000), 0);
	assert_int_equal(ratelimit_take(rl, ip_a, 4, 3600000), 1);
	/* A clock that goes back does not refill. */
	assert_int_equal(ratelimit_take(rl, ip_a, 4, 10), 1);
	ratelimit_free(rl);
}

static void
test_slow_rate(void **state)
{
	struct ratelimit *rl = ratelimit_new(1, 2);	/* 1 at once, 2/min */

	(void)state;
	assert_int_equal(ratelimit_take(rl, ip_a, 4, 0), 0);
	assert_int_equal(ratelimit_take(rl, ip_a, 4, 0), 30);
	assert_int_equal(ratelimit_take(rl, ip_a, 4, 29000), 1);
	assert_int_equal(ratelimit_take(rl, ip_a, 4, 30000), 0);
	ratelimit_free(rl);
}

/* Many clients: the table stays bounded, a busy client is not forgotten
 * by a crowd of one-off clients that all still have tokens left. */
static void
test_many_clients(void **state)
{
	struct ratelimit *rl = ratelimit_new(2, 60);
	unsigned char ip[4] = { 10, 0, 0, 0 };

	(void)state;
	assert_int_equal(ratelimit_take(rl, ip_a, 4, 0), 0);
	assert_int_equal(ratelimit_take(rl, ip_a, 4, 0), 0);
	assert_int_equal(ratelimit_take(rl, ip_a, 4, 0), 1);
	for (unsigned i = 0; i < 100000; i++) {
		ip[1] = (unsigned char)(i >> 16);
		ip[2] = (unsigned char)(i >> 8);
		ip[3] = (unsigned char)i;
		assert_int_equal(ratelimit_take(rl, ip, 4, 0), 0);
	}
	/* When a set is full the bucket with the most tokens is reused:
	 * each new client kept one token of two, ip_a none, so a crowd of
	 * new addresses cannot wipe out ip_a's empty bucket. */
	assert_int_equal(ratelimit_take(rl, ip_a, 4, 0), 1);
	ratelimit_free(rl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket),
		cmocka_unit_test(test_slow_rate),
		cmocka_unit_test(test_many_clients),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
