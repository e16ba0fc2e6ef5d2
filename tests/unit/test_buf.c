#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "buf.h"
#include "err.h"

static void
test_buf_cap(void **state)
{
	struct buf b = BUF_INIT(4);

	(void)state;
	assert_int_equal(buf_add(&b, "abcd", 4), 0);
	assert_int_equal(buf_add(&b, "e", 1), -ERR_TOOBIG);
	assert_int_equal(b.len, 4);
	assert_string_equal(buf_str(&b), "abcd");
	buf_release(&b);
}

static void
test_buf_addf_grows(void **state)
{
	struct buf b = BUF_INIT(0);

	(void)state;
	assert_string_equal(buf_str(&b), "");
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_addf(&b, "%04d,", i), 0);
	assert_int_equal(b.len, 5000);
	assert_memory_equal(b.data + 4995, "0999,", 5);
	buf_truncate(&b, 4);
	assert_string_equal(buf_str(&b), "0000");
	buf_release(&b);
}

/* buf_addf() formats into the room there is first: what does not fit,
 * in the allocation or under the cap, is not appended. */
static void
test_buf_addf_room(void **state)
{
	struct buf b = BUF_INIT(70), c = BUF_INIT(0);

	(void)state;
	assert_int_equal(buf_addf(&b, "%s", "ab"), 0);	/* room for 63 */
	assert_int_equal(buf_addf(&b, "%070d", 1), -ERR_TOOBIG);
	assert_int_equal(b.len, 2);
	assert_string_equal(buf_str(&b), "ab");
	assert_int_equal(buf_addf(&b, "%061d", 7), 0);	/* fills it */
	assert_int_equal(b.len, 63);
	assert_int_equal(b.data[62], '7');
	assert_int_equal(b.data[63], '\0');
	assert_int_equal(buf_addf(&b, "%d", 1234567), 0);	/* grows */
	assert_int_equal(b.len, 70);
	assert_memory_equal(b.data + 63, "1234567", 8);
	assert_int_equal(buf_addf(&b, "x"), -ERR_TOOBIG);
	assert_int_equal(b.len, 70);
	for (int i = 0; i < 100; i++)
		assert_int_equal(buf_addf(&c, "%s%d", "n", i), 0);
	assert_int_equal(c.len, 10 * 2 + 90 * 3);
	assert_memory_equal(c.data + c.len - 3, "n99", 4);
	buf_release(&b);
	buf_release(&c);
}

static void
test_err_exitcodes(void **state)
{
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(err_set(&e, ERR_INVAL, "bad %s\nline", "x"), -ERR_INVAL);
	assert_string_equal(e.msg, "bad x line");
	assert_int_equal(err_exitcode(-ERR_INVAL), 65);
	assert_int_equal(err_exitcode(-ERR_NET), 69);
	assert_int_equal(err_exitcode(-ERR_TEMP), 75);
	assert_int_equal(err_exitcode(-ERR_CONFIG), 78);
	assert_int_equal(err_exitcode(0), 0);
	assert_int_equal(err_worst(75, 69), 69);
	assert_int_equal(err_worst(0, 75), 75);
	assert_int_equal(err_worst(65, 69), 69);
	err_prefix(&e, "file.csv:%d", 3);
	assert_string_equal(e.msg, "file.csv:3: bad x line");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_buf_addf_grows),
		cmocka_unit_test(test_buf_addf_room),
		cmocka_unit_test(test_err_exitcodes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
