/*
 * feed-parse FILE — parse a feed with lib/feed and count its items; for
 * tests/bench/bench-feed.sh, to show the parser on its own next to
 * xmllint and to `samail feed fetch` (parse + tag + store).
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "err.h"
#include "feed.h"

int	main(int, char **);

static int
count(const struct feed_item *it, void *arg)
{
	(void)it;
	(*(long *)arg)++;
	return 0;
}

int
main(int argc, char **argv)
{
	struct err e = ERR_INIT;
	struct feed_info info;
	long n = 0;
	int fd, rc;

	if (argc != 2 || (fd = open(argv[1], O_RDONLY)) < 0) {
		fprintf(stderr, "usage: feed-parse FILE\n");
		return 64;
	}
	rc = feed_parse_fd(fd, NULL, count, &n, &info, &e);
	feed_info_release(&info);
	close(fd);
	if (rc < 0) {
		fprintf(stderr, "feed-parse: %s\n", e.msg);
		return 65;
	}
	printf("%ld items\n", n);
	return 0;
}
