/*
 * fuzz_ical — ical_check() on arbitrary bytes: calendar data from outside
 * must be refused or accepted without a crash, a leak or a hang.
 */
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ical.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err e = ERR_INIT;

	(void)ical_check((const char *)data, size, 0, &e);
	return 0;
}
