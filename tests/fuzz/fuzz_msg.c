/*
 * fuzz_msg — msg_build() with arbitrary header text.  The input is split
 * at NUL bytes into Subject, From and To display names, the List-Id name,
 * an extra header value and an attachment file name.  Whatever they hold,
 * msg_build() either refuses with -ERR_INVAL or writes a message whose
 * bytes are 7-bit, whose lines all end in CRLF and are <= 998 octets, whose
 * header section holds only the headers it writes (no injected one), and
 * whose Subject and To name read back as given through GMime.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "buf.h"
#include "err.h"
#include "msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const allowed[] = {
	"From:", "To:", "Subject:", "Date:", "Message-Id:", "List-Id:",
	"List-Unsubscribe:", "List-Unsubscribe-Post:", "X-Campaign:",
	"MIME-Version:", "Content-Type:",
};

static void
check_headers(const struct buf *b)
{
	const char *p = b->data, *nl;
	size_t i;

	for (; (nl = strstr(p, "\r\n")) != NULL && nl != p; p = nl + 2) {
		if (*p == ' ' || *p == '\t')
			continue;
		for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
			if (strncmp(p, allowed[i], strlen(allowed[i])) == 0)
				break;
		if (i == sizeof(allowed) / sizeof(allowed[0]))
			abort();	/* a header msg_build did not write */
	}
}

static void
check_round_trip(const struct buf *b, const char *subject, const char *to)
{
	GMimeStream *st = g_mime_stream_mem_new_with_buffer(b->data, b->len);
	GMimeParser *p = g_mime_parser_new_with_stream(st);
	GMimeMessage *m = g_mime_parser_construct_message(p, NULL);
	InternetAddressList *al;
	char *want, *got;

	if (m == NULL)
		abort();
	/* Parsers trim the blanks at both ends of plain header text (not
	 * inside an encoded-word): those are not compared. */
	want = g_strstrip(g_strdup(subject));
	got = g_strstrip(g_strdup(g_mime_message_get_subject(m)));
	if (strcmp(got, want) != 0)
		abort();
	g_free(want);
	g_free(got);
	al = g_mime_message_get_to(m);
	if (internet_address_list_length(al) != 1)
		abort();
	want = g_strstrip(g_strdup(to));
	got = g_strstrip(g_strdup(internet_address_get_name(
	    internet_address_list_get_address(al, 0))));
	if (*want != '\0' && strcmp(got, want) != 0)
		abort();
	g_free(want);
	g_free(got);
	g_object_unref(m);
	g_object_unref(p);
	g_object_unref(st);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	const char *f[6] = { "s", "", "", "", "v", "a.ics" };
	struct msg_header h = { "X-Campaign", NULL };
	struct msg_attachment a = { "BEGIN:VCALENDAR\r\n", 17, NULL,
	    "text/calendar; method=PUBLISH; charset=UTF-8" };
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	char *copy, *p;
	int n = 0, rc;

	if (!init) {
		msg_global_init();
		init = 1;
	}
	copy = malloc(size + 1);
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (p = copy; n < 6 && p <= copy + size; p += strlen(p) + 1)
		f[n++] = p;
	h.value = f[4];
	a.filename = f[5];
	{
		struct msg_spec s = {
			.from = { f[1], "news@samail.example.jp" },
			.to = { f[2], "taro@example.jp" },
			.subject = f[0],
			.date = 1710464400,
			.message_id = "fuzz.1@samail.example.jp",
			.list_id = "news.samail.example.jp",
			.list_name = f[3],
			.unsub_url = "https://samail.example.jp/u/x",
			.unsub_mailto = "unsub@samail.example.jp",
			.one_click = 1,
			.text = "本文\n", .text_len = strlen("本文\n"),
			.html = "<p>本文</p>\n",
			.html_len = strlen("<p>本文</p>\n"),
			.attachment = &a,
			.headers = &h, .nheaders = 1,
		};

		rc = msg_build(&s, &b, &e);
		if (rc != 0 && rc != -ERR_INVAL)
			abort();
		if (rc == 0) {
			for (size_t i = 0; i < b.len; i++) {
				unsigned char c = (unsigned char)b.data[i];

				if (c >= 0x80 || (c == '\n' && (i == 0 ||
				    b.data[i - 1] != '\r')) || (c == '\r' &&
				    (i + 1 == b.len || b.data[i + 1] != '\n')))
					abort();
			}
			for (size_t i = 0, start = 0; i < b.len; i++)
				if (b.data[i] == '\n') {
					if (i - start > 999)
						abort();
					start = i + 1;
				}
			check_headers(&b);
			check_round_trip(&b, f[0], f[2]);
		}
	}
	buf_release(&b);
	free(copy);
	return 0;
}
