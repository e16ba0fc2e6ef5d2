#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "token.h"

#define LIST	"newsletter.samail.example.jp"

static const unsigned char key_a[] = "0123456789abcdef0123456789abcdef";
static const unsigned char key_b[] = "fedcba9876543210fedcba9876543210";
static const struct token_keys keys_a = { key_a, 32, NULL, 0 };
static const struct token_keys keys_b = { key_b, 32, NULL, 0 };
/* b is the new key, a the one it replaced. */
static const struct token_keys keys_rot = { key_b, 32, key_a, 32 };

/*
 * Known answers, computed independently with Python's hmac/hashlib:
 * base64url(0x01 || be64(id) || HMAC-SHA256(key, "samail-unsub\0" ||
 * 0x01 || be64(id) || list)[:24]).  Tokens already in mailboxes must keep
 * verifying, so the format may not drift.
 */
static void
test_known_answer(void **state)
{
	char tok[TOKEN_LEN + 1];
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(token_make(&keys_a, 42, LIST, tok, &e), 0);
	assert_string_equal(tok, "AQAAAAAAAAAqnulL05mShhJZM7L4yCz2GUl4ky8ApIu-");
	assert_int_equal(token_make(&keys_a, INT64_MAX, LIST, tok, &e), 0);
	assert_string_equal(tok, "AX__________zF7M-PIJiY8AXoAezE27iLx6ntEarz-w");
}

/*
 * token.c keeps each thread's HMAC context keyed: the known answers must
 * hold in any order of keys (one of the same length differing in its last
 * byte, one longer than it caches), and in another thread.
 */
static const char *
make42(const unsigned char *key, size_t len)
{
	static char tok[TOKEN_LEN + 1];
	struct token_keys k = { key, len, NULL, 0 };
	struct err e = ERR_INIT;

	return token_make(&k, 42, LIST, tok, &e) == 0 ? tok : "(failed)";
}

static void *
thread_make(void *arg)
{
	(void)arg;
	return (void *)(strcmp(make42(key_a, 32),
	    "AQAAAAAAAAAqnulL05mShhJZM7L4yCz2GUl4ky8ApIu-") == 0 ? "ok" : "bad");
}

static void
test_known_answer_any_order(void **state)
{
	unsigned char longkey[300], near[32];
	pthread_t t;
	void *res;

	(void)state;
	for (size_t i = 0; i < sizeof(longkey); i++)
		longkey[i] = (unsigned char)i;
	memcpy(near, key_a, 32);
	near[31] = 'X';
	for (int round = 0; round < 3; round++) {
		assert_string_equal(make42(key_a, 32),
		    "AQAAAAAAAAAqnulL05mShhJZM7L4yCz2GUl4ky8ApIu-");
		assert_string_equal(make42(key_a, 32),
		    "AQAAAAAAAAAqnulL05mShhJZM7L4yCz2GUl4ky8ApIu-");
		assert_string_equal(make42(key_b, 32),
		    "AQAAAAAAAAAqPF4wY-sUvZ79Oo0wiUNQps9KMsu3McKf");
		assert_string_equal(make42(near, 32),
		    "AQAAAAAAAAAq6mJFpd59LRuZ6w0UxbW9yflPz07EHrRe");
		assert_string_equal(make42(longkey, sizeof(longkey)),
		    "AQAAAAAAAAAqU1YwuGwTGAhtopUQzUdKeE2u81usscGW");
	}
	assert_int_equal(pthread_create(&t, NULL, thread_make, NULL), 0);
	assert_int_equal(pthread_join(t, &res), 0);
	assert_string_equal((const char *)res, "ok");
}

static void
test_round_trip(void **state)
{
	char tok[TOKEN_LEN + 1], again[TOKEN_LEN + 1];
	struct err e = ERR_INIT;
	int64_t ids[] = { 1, 42, 300000, INT64_MAX };
	int64_t id;

	(void)state;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		assert_int_equal(token_make(&keys_a, ids[i], LIST, tok, &e), 0);
		assert_int_equal(strlen(tok), TOKEN_LEN);
		assert_int_equal(strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789-_"), TOKEN_LEN);
		id = -1;
		assert_int_equal(token_verify(&keys_a, tok, LIST, &id, &e), 0);
		assert_true(id == ids[i]);
		/* Stable: the same declarer gets the same token every month. */
		assert_int_equal(token_make(&keys_a, ids[i], LIST, again, &e),
		    0);
		assert_string_equal(tok, again);
	}
}

static void
test_other_list_fails(void **state)
{
	char tok[TOKEN_LEN + 1];
	struct err e = ERR_INIT;
	int64_t id = -1;

	(void)state;
	assert_int_equal(token_make(&keys_a, 42, LIST, tok, &e), 0);
	assert_int_equal(token_verify(&keys_a, tok, "remind.samail.example.jp",
	    &id, &e), -ERR_INVAL);
	assert_true(id == -1);
	assert_non_null(strstr(e.msg, "not valid"));
	/* The message never quotes the token back. */
	assert_null(strstr(e.msg, tok));
}

static void
test_wrong_key_fails(void **state)
{
	char tok[TOKEN_LEN + 1];
	struct err e = ERR_INIT;
	int64_t id = -1;

	(void)state;
	assert_int_equal(token_make(&keys_a, 42, LIST, tok, &e), 0);
	assert_int_equal(token_verify(&keys_b, tok, LIST, &id, &e),
	    -ERR_INVAL);
	assert_true(id == -1);
}

/* Every single-character change, at every position, is refused. */
static void
test_forged_fails(void **state)
{
	static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	char tok[TOKEN_LEN + 1], forged[TOKEN_LEN + 1];
	struct err e = ERR_INIT;
	int64_t id;

	(void)state;
	assert_int_equal(token_make(&keys_a, 42, LIST, tok, &e), 0);
	for (int pos = 0; pos < TOKEN_LEN; pos++) {
		for (const char *c = alpha; *c != '\0'; c++) {
			if (*c == tok[pos])
				continue;
			memcpy(forged, tok, sizeof(forged));
			forged[pos] = *c;
			id = -1;
			assert_int_equal(token_verify(&keys_a, forged, LIST,
			    &id, &e), -ERR_INVAL);
			assert_true(id == -1);
		}
	}
}

static void
test_malformed_fails(void **state)
{
	char tok[TOKEN_LEN + 1], bad[TOKEN_LEN + 8];
	struct err e = ERR_INIT;
	const char *subst[] = { "+", "/", "=", " ", "%", "\n", "\xe3" };
	int64_t id = -1;

	(void)state;
	assert_int_equal(token_make(&keys_a, 42, LIST, tok, &e), 0);
	/* Truncated, by one and by half. */
	memcpy(bad, tok, TOKEN_LEN - 1);
	bad[TOKEN_LEN - 1] = '\0';
	assert_int_equal(token_verify(&keys_a, bad, LIST, &id, &e),
	    -ERR_INVAL);
	bad[TOKEN_LEN / 2] = '\0';
	assert_int_equal(token_verify(&keys_a, bad, LIST, &id, &e),
	    -ERR_INVAL);
	/* Extended: a valid token plus anything is not a valid token. */
	snprintf(bad, sizeof(bad), "%sA", tok);
	assert_int_equal(token_verify(&keys_a, bad, LIST, &id, &e),
	    -ERR_INVAL);
	snprintf(bad, sizeof(bad), "%s=", tok);
	assert_int_equal(token_verify(&keys_a, bad, LIST, &id, &e),
	    -ERR_INVAL);
	assert_int_equal(token_verify(&keys_a, "", LIST, &id, &e), -ERR_INVAL);
	assert_int_equal(token_verify(&keys_a, NULL, LIST, &id, &e),
	    -ERR_INVAL);
	/* Characters outside base64url, including standard base64's. */
	for (size_t i = 0; i < sizeof(subst) / sizeof(subst[0]); i++) {
		memcpy(bad, tok, sizeof(tok));
		bad[10] = subst[i][0];
		assert_int_equal(token_verify(&keys_a, bad, LIST, &id, &e),
		    -ERR_INVAL);
	}
	assert_true(id == -1);
}

/*
 * A token of an unknown version is refused even with a correct MAC over
 * that version (computed with Python, as for test_known_answer).
 */
static void
test_unknown_version_fails(void **state)
{
	struct err e = ERR_INIT;
	int64_t id = -1;

	(void)state;
	assert_int_equal(token_verify(&keys_a,
	    "AgAAAAAAAAAqt5oDk3fuySZTajaQcKlLI_rbLSM0xg-3", LIST, &id, &e),
	    -ERR_INVAL);
	assert_true(id == -1);
}

static void
test_key_rotation(void **state)
{
	char old_tok[TOKEN_LEN + 1], new_tok[TOKEN_LEN + 1];
	struct err e = ERR_INIT;
	int64_t id = -1;

	(void)state;
	assert_int_equal(token_make(&keys_a, 7, LIST, old_tok, &e), 0);
	/* Made with the new key: tokens change when the key does. */
	assert_int_equal(token_make(&keys_rot, 7, LIST, new_tok, &e), 0);
	assert_string_not_equal(old_tok, new_tok);
	/* An old token still works during the rotation, and says so. */
	assert_int_equal(token_verify(&keys_rot, old_tok, LIST, &id, &e), 1);
	assert_true(id == 7);
	id = -1;
	assert_int_equal(token_verify(&keys_rot, new_tok, LIST, &id, &e), 0);
	assert_true(id == 7);
	/* Once the old key is dropped, its tokens are dead. */
	id = -1;
	assert_int_equal(token_verify(&keys_b, old_tok, LIST, &id, &e),
	    -ERR_INVAL);
	assert_true(id == -1);
	/* The previous key never signs. */
	assert_int_equal(token_make(&keys_rot, 7, LIST, new_tok, &e), 0);
	assert_int_equal(token_verify(&keys_a, new_tok, LIST, &id, &e),
	    -ERR_INVAL);
}

static void
test_bad_arguments(void **state)
{
	static const unsigned char shortkey[] = "tooshort";
	struct token_keys k_short = { shortkey, 8, NULL, 0 };
	struct token_keys k_prev_short = { key_a, 32, shortkey, 8 };
	char tok[TOKEN_LEN + 1];
	struct err e = ERR_INIT;
	int64_t id;

	(void)state;
	assert_int_equal(token_make(&k_short, 1, LIST, tok, &e), -ERR_CONFIG);
	assert_non_null(strstr(e.msg, "secret"));
	assert_int_equal(token_verify(&k_prev_short, "x", LIST, &id, &e),
	    -ERR_CONFIG);
	assert_int_equal(token_make(&keys_a, 0, LIST, tok, &e), -ERR_INVAL);
	assert_int_equal(token_make(&keys_a, -5, LIST, tok, &e), -ERR_INVAL);
	assert_int_equal(token_make(&keys_a, 1, "", tok, &e), -ERR_INVAL);
	assert_int_equal(token_make(&keys_a, 1, "a\r\nb", tok, &e),
	    -ERR_INVAL);
}

/* The shape alone: TOKEN_LEN base64url characters, nothing around. */
static void
test_is_bare(void **state)
{
	char tok[TOKEN_LEN + 1], longer[TOKEN_LEN + 2];
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(token_make(&keys_a, 42, LIST, tok, &e), 0);
	assert_true(token_is_bare(tok));
	assert_true(token_is_bare("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	snprintf(longer, sizeof(longer), "%s/", tok);
	assert_false(token_is_bare(longer));
	assert_false(token_is_bare(tok + 1));
	assert_false(token_is_bare("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+"));
	assert_false(token_is_bare("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="));
	assert_false(token_is_bare(""));
	assert_false(token_is_bare(NULL));
}

static void
test_addr_hash(void **state)
{
	char h[TOKEN_HASH_LEN + 1], h2[TOKEN_HASH_LEN + 1];
	struct err e = ERR_INIT;

	(void)state;
	/* sha256("taro.yamada@sample-shoji.example.jp"), from Python. */
	assert_int_equal(token_addr_hash("taro.yamada@sample-shoji.example.jp",
	    h, &e), 0);
	assert_string_equal(h,
	    "0044855f410034fcee0f36ced8094a70706ebb37e0be4b92a3cf03458c4625e3");
	/* Case and surrounding blanks do not make a new person. */
	assert_int_equal(token_addr_hash(" Taro.Yamada@Sample-Shoji.EXAMPLE.jp\t",
	    h2, &e), 0);
	assert_string_equal(h, h2);
	assert_int_equal(token_addr_hash("hanako@sample-shoji.example.jp", h2,
	    &e), 0);
	assert_string_not_equal(h, h2);
	assert_int_equal(token_addr_hash("", h, &e), -ERR_INVAL);
	assert_int_equal(token_addr_hash("   ", h, &e), -ERR_INVAL);
	assert_int_equal(token_addr_hash("no-at-sign", h, &e), -ERR_INVAL);
	assert_int_equal(token_addr_hash("a@b\r\nBcc: x@y", h, &e),
	    -ERR_INVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_known_answer_any_order),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_other_list_fails),
		cmocka_unit_test(test_wrong_key_fails),
		cmocka_unit_test(test_forged_fails),
		cmocka_unit_test(test_malformed_fails),
		cmocka_unit_test(test_unknown_version_fails),
		cmocka_unit_test(test_key_rotation),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_is_bare),
		cmocka_unit_test(test_addr_hash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
