/*
 * libFuzzer target for the feed parser: any bytes in, and the parser must
 * either fail cleanly or deliver items that keep feed.h's promises (valid
 * UTF-8, no control characters, http(s) links, sorted CVE ids).  Built and
 * run by tests/fuzz/run.sh; seeds come from tests/data/feeds/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "feed.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check(const char *s, size_t max)
{
	if (s == NULL || !text_utf8_valid(s, strlen(s)) || text_has_control(s) ||
	    (max != 0 && strlen(s) > max))
		abort();
}

static int
item(const struct feed_item *it, void *arg)
{
	(void)arg;
	check(it->id, 0);
	check(it->ident, FEED_MAX_IDENT);
	check(it->title, FEED_MAX_TITLE);
	check(it->summary, FEED_MAX_SUMMARY);
	check(it->link, FEED_MAX_LINK);
	check(it->cvss_version, 0);
	check(it->cvss_vector, 0);
	check(it->severity, 0);
	if (*it->id == '\0')
		abort();
	if (*it->link != '\0' && strncmp(it->link, "http://", 7) != 0 &&
	    strncmp(it->link, "https://", 8) != 0 &&
	    strncasecmp(it->link, "http", 4) != 0)
		abort();
	for (size_t i = 0; i < it->cves.n; i++) {
		if (strncmp(it->cves.v[i], "CVE-", 4) != 0)
			abort();
		if (i > 0 && strcmp(it->cves.v[i - 1], it->cves.v[i]) >= 0)
			abort();
	}
	for (size_t i = 0; i < it->cpes.n; i++)
		check(it->cpes.v[i], FEED_MAX_CPE);
	if (it->cvss > 10.0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct feed_opts o = { "https://fuzz.example/dir/feed.xml" };
	struct feed_info info;
	struct err e = ERR_INIT;
	char buf[64];
	time_t t;

	feed_parse_mem((const char *)data, size, &o, item, NULL, &info, &e);
	feed_info_release(&info);
	/* The date parser on its own, on the input's first line. */
	if (size < sizeof(buf)) {
		memcpy(buf, data, size);
		buf[size] = '\0';
		feed_parse_date(buf, &t);
	}
	return 0;
}
