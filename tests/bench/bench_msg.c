/*
 * bench_msg — microseconds per msg_build() for a ~20 KB Japanese
 * text + HTML newsletter, the monthly run's per-declarer cost.
 *
 * Not wired into the Makefile (tests/bench/run.sh is the lead's); build
 * after `make` with:
 *
 *   cc -std=c17 -O2 -Ilib $(pkg-config --cflags gmime-3.0) \
 *      -o build/bench_msg tests/bench/bench_msg.c build/libsamail.a \
 *      $(pkg-config --libs gmime-3.0 libical libcrypto)
 *   build/bench_msg [N]
 *
 * Each message gets its own Message-ID (so its own boundaries) and
 * recipient, as in a real run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

#include "buf.h"
#include "err.h"
#include "msg.h"

static char *
grow_to(const char *path, size_t want, size_t *lenp)
{
	gchar *one = NULL;
	gsize n = 0;
	struct buf b = BUF_INIT(0);

	if (!g_file_get_contents(path, &one, &n, NULL)) {
		fprintf(stderr, "bench_msg: cannot read %s (run from the "
		    "source root)\n", path);
		exit(1);
	}
	while (b.len < want)
		buf_add(&b, one, n);
	g_free(one);
	return buf_detach(&b, lenp);
}

int
main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 20000;
	size_t text_len, html_len, total = 0;
	char *text, *html, id[64], to[64];
	struct buf out = BUF_INIT(0);
	struct err e = ERR_INIT;
	struct timespec t0, t1;
	double us;

	msg_global_init();
	text = grow_to("tests/data/msg/newsletter-ja.txt", 8000, &text_len);
	html = grow_to("tests/data/msg/newsletter-ja.html", 11000, &html_len);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++) {
		struct msg_spec s = {
			.from = { "SECURITY ACTION 通信 事務局",
			    "news@samail.example.jp" },
			.to = { "山田 太郎", to },
			.subject = "【SECURITY ACTION 通信】2024年3月号 今月確認"
			    "したい脆弱性情報と5か条のおさらい",
			.date = 1710464400,
			.message_id = id,
			.list_id = "newsletter.samail.example.jp",
			.list_name = "SECURITY ACTION 通信",
			.unsub_url = "https://samail.example.jp/unsubscribe/"
			    "AQAAAAAAAAAqnulL05mShhJZM7L4yCz2GUl4ky8ApIu-",
			.unsub_mailto = "unsubscribe@samail.example.jp",
			.one_click = 1,
			.text = text, .text_len = text_len,
			.html = html, .html_len = html_len,
		};

		snprintf(id, sizeof(id), "newsletter-2024-03.%d@samail.example.jp",
		    i);
		snprintf(to, sizeof(to), "user%d@example.co.jp", i);
		buf_reset(&out);
		if (msg_build(&s, &out, &e) != 0) {
			fprintf(stderr, "bench_msg: %s\n", e.msg);
			return 1;
		}
		total += out.len;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
	    (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3 / n;
	printf("msg_build: %d messages, input %zu B text + %zu B HTML, "
	    "output %zu B each: %.1f us/message (%.0f messages/s)\n", n,
	    text_len, html_len, total / (size_t)n, us, 1e6 / us);
	buf_release(&out);
	free(text);
	free(html);
	msg_global_shutdown();
	return 0;
}
