#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmime/gmime.h>
#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "msg.h"

/* Generated messages go next to the test binary: <build>/tests/out/. */
static char outdir[4096];

#define SUBJECT	"【SECURITY ACTION 通信】2024年3月号 今月確認したい脆弱性情報と5か条のおさらい"
#define FROM_NAME	"SECURITY ACTION 通信 事務局"
#define FROM_ADDR	"news@samail.example.jp"
#define TO_NAME		"山田 太郎"
#define TO_ADDR		"taro.yamada@sample-shoji.example.jp"
#define MSGID		"newsletter-2024-03.42@samail.example.jp"
#define LIST_ID		"newsletter.samail.example.jp"
#define UNSUB_URL	"https://samail.example.jp/unsubscribe/AQAAAAAAAAAqVJ3yq8M0f3m0S2mB2rQ9fV6w1a7K"
#define UNSUB_MAILTO	"unsubscribe@samail.example.jp"
#define DATE		1710464400	/* 2024-03-15 10:00 +0900 */
#define ICS_NAME	"情報セキュリティ自社診断リマインダー.ics"
#define ICS_TYPE	"text/calendar; method=PUBLISH; charset=UTF-8"

static char *text_ja, *html_ja, *ics;
static size_t text_ja_len, html_ja_len, ics_len;

static const struct msg_header feedback[] = {
	{ "Feedback-ID", "2024-03:newsletter:samail" },
};

/* The newsletter of tests/data/msg/newsletter-ja.eml. */
static struct msg_spec
newsletter(void)
{
	struct msg_spec s = {
		.from = { FROM_NAME, FROM_ADDR },
		.to = { TO_NAME, TO_ADDR },
		.subject = SUBJECT,
		.date = DATE,
		.message_id = MSGID,
		.list_id = LIST_ID,
		.list_name = "SECURITY ACTION 通信",
		.unsub_url = UNSUB_URL,
		.unsub_mailto = UNSUB_MAILTO,
		.one_click = 1,
		.text = text_ja, .text_len = text_ja_len,
		.html = html_ja, .html_len = html_ja_len,
		.headers = feedback, .nheaders = 1,
	};

	return s;
}

static const struct msg_attachment *
reminder_ics(void)
{
	static struct msg_attachment a;

	a.data = ics;
	a.len = ics_len;
	a.filename = ICS_NAME;
	a.content_type = ICS_TYPE;
	return &a;
}

static char *
slurp(const char *path, size_t *lenp)
{
	gchar *data = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &data, &len, NULL))
		fail_msg("cannot read %s", path);
	*lenp = len;
	return data;
}

static void
write_out(const char *name, const struct buf *b, char *path, size_t pathsz)
{
	snprintf(path, pathsz, "%s/%s", outdir, name);
	assert_true(g_file_set_contents(path, b->data, (gssize)b->len, NULL));
}

/*
 * Run checkmail.py on path with expectations from a JSON sidecar; quiet hides
 * the report of a run that is meant to fail.
 */
static int
run_checkmail(const char *path, json_t *expect, int quiet)
{
	char jpath[4200], cmd[8600];

	snprintf(jpath, sizeof(jpath), "%s.json", path);
	assert_int_equal(json_dump_file(expect, jpath, JSON_INDENT(1)), 0);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/tools/checkmail.py "
	    "'%s' --expect '%s'%s", path, jpath, quiet ? " >/dev/null" : "");
	return system(cmd);
}

static json_t *
newsletter_expect(void)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s,"
	    " s:[s]}",
	    "subject", SUBJECT, "from_name", FROM_NAME, "from_addr", FROM_ADDR,
	    "to_name", TO_NAME, "to_addr", TO_ADDR, "message_id", MSGID,
	    "date", DATE, "list_id", LIST_ID,
	    "text_file", "tests/data/msg/newsletter-ja.txt",
	    "html_file", "tests/data/msg/newsletter-ja.html",
	    "header", "Feedback-ID=2024-03:newsletter:samail");
}

/* The reminder attachment, as checkmail.py should find it. */
static void
expect_ics(json_t *x)
{
	json_object_set_new(x, "attachment_type", json_string(ICS_TYPE));
	json_object_set_new(x, "attachment_filename", json_string(ICS_NAME));
	json_object_set_new(x, "attachment_file",
	    json_string("tests/data/msg/reminder.ics"));
}

static GMimeMessage *
parse(const struct buf *b)
{
	GMimeStream *st = g_mime_stream_mem_new_with_buffer(b->data, b->len);
	GMimeParser *p = g_mime_parser_new_with_stream(st);
	GMimeMessage *m = g_mime_parser_construct_message(p, NULL);

	assert_non_null(m);
	g_object_unref(p);
	g_object_unref(st);
	return m;
}

static size_t
longest_line(const struct buf *b)
{
	size_t max = 0, start = 0;

	for (size_t i = 0; i < b->len; i++)
		if (b->data[i] == '\n') {
			if (i - start > max)
				max = i - start;
			start = i + 1;
		}
	return max;
}

/*
 * The header section keeps RFC 2047's limits: every encoded-word at most
 * 75 characters and every line holding one at most 76; no "B" word
 * directly followed by another "B" word ends in base64 padding (decoders
 * that join adjacent payloads, GMime among them, would lose the rest);
 * and no folded line is white space only (RFC 5322 3.2.2).
 */
static void
assert_header_limits(const struct buf *b)
{
	const char *end = strstr(buf_str(b), "\r\n\r\n");
	const char *p = b->data, *nl, *w, *we;
	int prev_padded_b = 0;

	assert_non_null(end);
	for (; p < end; p = nl + 2) {
		nl = strstr(p, "\r\n");
		if (strspn(p, " \t") == (size_t)(nl - p))
			fail_msg("a header line holds only white space");
		if (memmem(p, (size_t)(nl - p), "=?", 2) != NULL &&
		    nl - p > 76)
			fail_msg("a line with an encoded-word has %d characters: "
			    "%.*s", (int)(nl - p), (int)(nl - p), p);
		if (*p != ' ' && *p != '\t')
			prev_padded_b = 0;	/* a new header */
		for (w = p; (w = memmem(w, (size_t)(nl - w), "=?UTF-8?", 8)) !=
		    NULL; w = we) {
			we = memmem(w + 10, (size_t)(nl - w - 10), "?=", 2);
			assert_non_null(we);
			we += 2;
			if (we - w > 75)
				fail_msg("an encoded-word of %d characters",
				    (int)(we - w));
			if (w[8] == 'B' && prev_padded_b)
				fail_msg("a padded B word before another: %.*s",
				    (int)(nl - p), p);
			prev_padded_b = w[8] == 'B' && we[-3] == '=';
		}
	}
}

static int
skip_without_python(void)
{
	return access("/usr/bin/python3", X_OK) != 0;
}

/* --- the sample messages ---------------------------------------------- */

static void
test_newsletter(void **state)
{
	struct msg_spec s = newsletter();
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	char path[4200], *want;
	size_t len;
	json_t *x;

	(void)state;
	assert_int_equal(msg_build(&s, &b, &e), 0);
	assert_header_limits(&b);
	write_out("newsletter-ja.eml", &b, path, sizeof(path));
	/* The SpamAssassin sample is exactly this output. */
	want = slurp("tests/data/msg/newsletter-ja.eml", &len);
	if (b.len != len || memcmp(b.data, want, len) != 0)
		fail_msg("msg_build output differs from tests/data/msg/"
		    "newsletter-ja.eml; if the change is meant, copy %s over "
		    "it and re-run SpamAssassin on it", path);
	g_free(want);
	if (skip_without_python())
		skip();
	x = newsletter_expect();
	assert_int_equal(run_checkmail(path, x, 0), 0);
	/* The checker can fail: a wrong expectation is reported. */
	json_object_set_new(x, "to_name", json_string("山田 花子"));
	assert_int_not_equal(run_checkmail(path, x, 1), 0);
	json_decref(x);
	buf_release(&b);
}

static void
test_reminder_with_ics(void **state)
{
	struct msg_spec s = newsletter();
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	char path[4200];
	json_t *x;

	(void)state;
	s.attachment = reminder_ics();
	s.subject = "【SECURITY ACTION】自社診断の再実施のご案内";
	s.message_id = "remind-2024-03-15.42@samail.example.jp";
	assert_int_equal(msg_build(&s, &b, &e), 0);
	write_out("reminder-ja.eml", &b, path, sizeof(path));
	if (skip_without_python())
		skip();
	x = newsletter_expect();
	json_object_set_new(x, "subject", json_string(s.subject));
	json_object_set_new(x, "message_id", json_string(s.message_id));
	expect_ics(x);
	assert_int_equal(run_checkmail(path, x, 0), 0);
	json_object_set_new(x, "attachment_filename", json_string("x.ics"));
	assert_int_not_equal(run_checkmail(path, x, 1), 0);
	json_decref(x);
	buf_release(&b);
}

/* Text only, text + attachment, and LF line ends. */
static void
test_variants(void **state)
{
	struct msg_spec s = newsletter();
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	char path[4200];
	json_t *x;

	(void)state;
	s.html = NULL;
	assert_int_equal(msg_build(&s, &b, &e), 0);
	assert_non_null(strstr(buf_str(&b), "\r\nContent-Type: text/plain; "
	    "charset=UTF-8\r\n"));
	assert_null(strstr(buf_str(&b), "multipart"));
	write_out("text-only.eml", &b, path, sizeof(path));
	x = newsletter_expect();
	json_object_set_new(x, "no_html", json_true());
	if (!skip_without_python())
		assert_int_equal(run_checkmail(path, x, 0), 0);

	buf_reset(&b);
	s.attachment = reminder_ics();
	assert_int_equal(msg_build(&s, &b, &e), 0);
	write_out("text-ics.eml", &b, path, sizeof(path));
	expect_ics(x);
	if (!skip_without_python())
		assert_int_equal(run_checkmail(path, x, 0), 0);

	buf_reset(&b);
	s.html = html_ja;
	s.flags = MSG_F_LF;
	assert_int_equal(msg_build(&s, &b, &e), 0);
	assert_null(memchr(b.data, '\r', b.len));
	write_out("lf.eml", &b, path, sizeof(path));
	json_object_del(x, "no_html");
	json_object_set_new(x, "lf", json_true());
	if (!skip_without_python())
		assert_int_equal(run_checkmail(path, x, 0), 0);
	json_decref(x);
	buf_release(&b);
}

/* --- determinism ------------------------------------------------------- */

static void
test_deterministic(void **state)
{
	struct msg_spec s = newsletter();
	struct buf a = BUF_INIT(0), b = BUF_INIT(0);
	struct err e = ERR_INIT;
	GMimeMessage *m;
	GMimeMultipart *mp;
	char *bound_a;

	(void)state;
	s.attachment = reminder_ics();
	assert_int_equal(msg_build(&s, &a, &e), 0);
	for (int i = 0; i < 3; i++) {
		buf_reset(&b);
		assert_int_equal(msg_build(&s, &b, &e), 0);
		assert_int_equal(a.len, b.len);
		assert_memory_equal(a.data, b.data, a.len);
	}
	/* Boundaries come from the Message-ID: another one, another set. */
	m = parse(&a);
	mp = (GMimeMultipart *)g_mime_message_get_mime_part(m);
	assert_true(GMIME_IS_MULTIPART(mp));
	bound_a = g_strdup(g_mime_multipart_get_boundary(mp));
	assert_true(strncmp(bound_a, "=_", 2) == 0);
	g_object_unref(m);
	s.message_id = "newsletter-2024-03.43@samail.example.jp";
	buf_reset(&b);
	assert_int_equal(msg_build(&s, &b, &e), 0);
	m = parse(&b);
	mp = (GMimeMultipart *)g_mime_message_get_mime_part(m);
	assert_string_not_equal(bound_a, g_mime_multipart_get_boundary(mp));
	g_object_unref(m);
	g_free(bound_a);
	buf_release(&a);
	buf_release(&b);
}

/* --- RFC 2047 ---------------------------------------------------------- */

/* Subjects and display names read back, through GMime's own parser. */
static void
test_rfc2047_round_trip(void **state)
{
	static const char *const texts[] = {
		SUBJECT,
		"Monthly security newsletter, March 2024",
		"情報セキュリティ5か条その1「OSやソフトウェアは常に最新の状態に"
		    "しよう！」をもう一度確認しましょう。今月の脆弱性情報もあわせて"
		    "お知らせします",
		"two  spaces  inside, and a tab-free line",
		"quotes \"and\" (parens), commas; <angles> and \\backslash",
		"=?UTF-8?B?44GC?= looks encoded but is not",
		"絵文字🔒と𠮷野家と①②③",
		"ｶﾀｶﾅ半角と全角ＡＢＣ",
		"a_b=c?d",
	};
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	InternetAddressList *al;
	InternetAddress *ia;
	GMimeMessage *m;

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct msg_spec s = newsletter();

		s.subject = texts[i];
		s.to.name = strlen(texts[i]) <= MSG_NAME_MAX ? texts[i] : "x";
		buf_reset(&b);
		if (msg_build(&s, &b, &e) != 0)
			fail_msg("'%s': %s", texts[i], e.msg);
		assert_header_limits(&b);
		/* 7-bit headers: every non-ASCII byte went into RFC 2047. */
		for (size_t j = 0; j < b.len; j++)
			assert_true((unsigned char)b.data[j] < 0x80);
		m = parse(&b);
		assert_string_equal(g_mime_message_get_subject(m), texts[i]);
		al = g_mime_message_get_to(m);
		assert_int_equal(internet_address_list_length(al), 1);
		ia = internet_address_list_get_address(al, 0);
		assert_string_equal(internet_address_get_name(ia), s.to.name);
		assert_string_equal(internet_address_mailbox_get_addr(
		    (InternetAddressMailbox *)ia), TO_ADDR);
		g_object_unref(m);
	}
	buf_release(&b);
}

/* List-Id and a non-ASCII extra header read back too. */
static void
test_list_and_extra_headers(void **state)
{
	static const struct msg_header extra[] = {
		{ "Feedback-ID", "111111111111111111111111111111:"
		    "2222222222222222222222222222222222222222:newsletter:samail" },
		{ "X-Campaign", "2024年3月号 ニュースレター" },
		{ "Auto-Submitted", "auto-generated" },
	};
	struct msg_spec s = newsletter();
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	GMimeMessage *m;

	(void)state;
	s.headers = extra;
	s.nheaders = 3;
	s.reply_to.name = "SECURITY ACTION 事務局 窓口";
	s.reply_to.addr = "support@samail.example.jp";
	assert_int_equal(msg_build(&s, &b, &e), 0);
	/* An ASCII value stays as given, in one piece. */
	assert_non_null(strstr(buf_str(&b), "\r\nFeedback-ID: 1111111111111"
	    "11111111111111111:2222222222222222222222222222222222222222:"
	    "newsletter:samail\r\n"));
	assert_non_null(strstr(buf_str(&b),
	    "\r\nAuto-Submitted: auto-generated\r\n"));
	assert_non_null(strstr(buf_str(&b), "\r\nList-Unsubscribe: <"
	    UNSUB_URL ">,\r\n <mailto:" UNSUB_MAILTO
	    "?subject=unsubscribe>\r\n"));
	assert_non_null(strstr(buf_str(&b),
	    "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
	m = parse(&b);
	assert_string_equal(g_mime_object_get_header((GMimeObject *)m,
	    "X-Campaign"), "2024年3月号 ニュースレター");
	assert_string_equal(g_mime_object_get_header((GMimeObject *)m,
	    "List-Id"), "SECURITY ACTION 通信 <" LIST_ID ">");
	assert_string_equal(internet_address_get_name(
	    internet_address_list_get_address(g_mime_message_get_reply_to(m),
	    0)), "SECURITY ACTION 事務局 窓口");
	g_object_unref(m);
	buf_release(&b);
}

/* --- header injection -------------------------------------------------- */

enum field {
	F_FROM_NAME, F_FROM_ADDR, F_TO_NAME, F_TO_ADDR, F_REPLY_NAME,
	F_REPLY_ADDR, F_SUBJECT, F_MSGID, F_LIST_ID, F_LIST_NAME,
	F_UNSUB_URL, F_UNSUB_MAILTO, F_ATT_NAME, F_ATT_TYPE, F_HDR_NAME,
	F_HDR_VALUE, F__N
};

static const struct {
	const char	*name;		/* what the error must mention */
	const char	*prefix, *suffix;	/* a valid value around the bad bytes */
} fields[F__N] = {
	[F_FROM_NAME]	= { "From", "事務局", "Bcc: evil@example.com" },
	[F_FROM_ADDR]	= { "From", "news", "@samail.example.jp" },
	[F_TO_NAME]	= { "To", "山田", "Bcc: evil@example.com" },
	[F_TO_ADDR]	= { "To", "taro", "@example.jp" },
	[F_REPLY_NAME]	= { "Reply-To", "窓口", "Bcc: evil@example.com" },
	[F_REPLY_ADDR]	= { "Reply-To", "help", "@example.jp" },
	[F_SUBJECT]	= { "Subject", "件名", "Bcc: evil@example.com" },
	[F_MSGID]	= { "Message-ID", "n.42", "@samail.example.jp" },
	[F_LIST_ID]	= { "List-Id", "news", ".samail.example.jp" },
	[F_LIST_NAME]	= { "List-Id", "通信", "Bcc: evil@example.com" },
	[F_UNSUB_URL]	= { "List-Unsubscribe", "https://x.example.jp/u/",
			    "AQAAAAAAAAAq" },
	[F_UNSUB_MAILTO] = { "List-Unsubscribe", "unsub", "@example.jp" },
	[F_ATT_NAME]	= { "attachment filename", "自社診断", ".ics" },
	[F_ATT_TYPE]	= { "attachment", "text/calendar; method=PUBLISH",
			    "; charset=UTF-8" },
	[F_HDR_NAME]	= { "extra header", "X-Cam", "paign" },
	[F_HDR_VALUE]	= { "X-Campaign", "2024-03", "Bcc: evil@example.com" },
};

static void
set_field(struct msg_spec *s, struct msg_header *h, struct msg_attachment *a,
    enum field f, const char *v)
{
	switch (f) {
	case F_FROM_NAME:	s->from.name = v; break;
	case F_FROM_ADDR:	s->from.addr = v; break;
	case F_TO_NAME:		s->to.name = v; break;
	case F_TO_ADDR:		s->to.addr = v; break;
	case F_REPLY_NAME:	s->reply_to.name = v; break;
	case F_REPLY_ADDR:	s->reply_to.addr = v; break;
	case F_SUBJECT:		s->subject = v; break;
	case F_MSGID:		s->message_id = v; break;
	case F_LIST_ID:		s->list_id = v; break;
	case F_LIST_NAME:	s->list_name = v; break;
	case F_UNSUB_URL:	s->unsub_url = v; break;
	case F_UNSUB_MAILTO:	s->unsub_mailto = v; break;
	case F_ATT_NAME:	a->filename = v; break;
	case F_ATT_TYPE:	a->content_type = v; break;
	case F_HDR_NAME:	h->name = v; break;
	case F_HDR_VALUE:	h->value = v; break;
	default:		fail();
	}
}

/*
 * CR, LF, CRLF with a header after it, TAB, other C0 controls, DEL, C1
 * (NEL), U+2028 and a bidi override, in every field that becomes a header:
 * each is refused with -ERR_INVAL naming the header, and the output buffer
 * is left as it was.
 */
static void
test_header_injection(void **state)
{
	static const char *const bad[] = {
		"\r", "\n", "\r\n", "\r\nBcc: evil@example.com\r\n", "\n\n",
		"\t", "\x01", "\x1b[31m", "\x7f", "\xc2\x85", "\xe2\x80\xa8",
		"\xe2\x80\xae",
	};
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	char value[512];

	(void)state;
	for (int f = 0; f < F__N; f++) {
		/* Each field is valid as prefix+suffix: the test is fair. */
		struct msg_spec s = newsletter();
		struct msg_header h = { "X-Campaign", "2024-03" };
		struct msg_attachment a = *reminder_ics();

		s.headers = &h;
		s.nheaders = 1;
		s.attachment = &a;
		s.reply_to.addr = "help@example.jp";
		snprintf(value, sizeof(value), "%s%s", fields[f].prefix,
		    fields[f].suffix);
		set_field(&s, &h, &a, (enum field)f, value);
		buf_reset(&b);
		if (msg_build(&s, &b, &e) != 0)
			fail_msg("field %d (%s) refused a valid value '%s': %s",
			    f, fields[f].name, value, e.msg);

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			snprintf(value, sizeof(value), "%s%s%s",
			    fields[f].prefix, bad[i], fields[f].suffix);
			set_field(&s, &h, &a, (enum field)f, value);
			buf_reset(&b);
			buf_addstr(&b, "untouched");
			err_clear(&e);
			if (msg_build(&s, &b, &e) != -ERR_INVAL)
				fail_msg("field %d (%s) accepted bad value %zu",
				    f, fields[f].name, i);
			if (strstr(e.msg, fields[f].name) == NULL)
				fail_msg("field %d: error '%s' does not name "
				    "'%s'", f, e.msg, fields[f].name);
			assert_string_equal(buf_str(&b), "untouched");
			/* The error message is one line too. */
			assert_null(strpbrk(e.msg, "\r\n"));
		}
	}
	buf_release(&b);
}

/* A NUL can reach a body (it has a length): refused in both. */
static void
test_body_nul_and_utf8(void **state)
{
	struct msg_spec s = newsletter();
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;

	(void)state;
	s.text = "本文\0続き";
	s.text_len = 13;
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	assert_non_null(strstr(e.msg, "text body"));
	s = newsletter();
	s.html = "<p>\0</p>";
	s.html_len = 8;
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	assert_non_null(strstr(e.msg, "HTML body"));
	s = newsletter();
	s.text = "bad \xe3\x81 utf-8";
	s.text_len = strlen(s.text);
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	assert_non_null(strstr(e.msg, "UTF-8"));
	s = newsletter();
	s.subject = "bad \xff subject";
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	assert_non_null(strstr(e.msg, "Subject"));
	assert_int_equal(b.len, 0);
	buf_release(&b);
}

/* --- field syntax ------------------------------------------------------ */

static void
test_addresses(void **state)
{
	static const char *const good[] = {
		"a@b.jp", "first.last+tag@sub.example.co.jp", "user@localhost",
		"o'brien@example.ie", "x_y-z=1@a-b.example",
	};
	static const char *const bad[] = {
		"", "no-at-sign", "a@@b.jp", "a@b@c.jp", "a b@c.jp",
		"<a@b.jp>", "a@b.jp>", "\"q\"@b.jp", ".a@b.jp", "a.@b.jp",
		"a..b@c.jp", "a@-b.jp", "a@b-.jp", "a@b..jp", "a@.b.jp",
		"a@b.jp.", "a@", "@b.jp", "a@b_c.jp", "a,b@c.jp", "a@b,c.jp",
		"山田@example.jp", "a@例え.jp", "a@[127.0.0.1]",
		"a(comment)@b.jp", "a:b@c.jp", "a;b@c.jp", "a\\b@c.jp",
	};
	struct err e = ERR_INIT;
	char local[80], longaddr[300];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (msg_check_addr("To", good[i], &e) != 0)
			fail_msg("'%s' refused: %s", good[i], e.msg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err_clear(&e);
		if (msg_check_addr("To", bad[i], &e) != -ERR_INVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_non_null(strstr(e.msg, "To"));
	}
	assert_int_equal(msg_check_addr("To", NULL, &e), -ERR_INVAL);
	/* 64 octets of local part is the limit, 65 is over. */
	memset(local, 'a', 64);
	snprintf(longaddr, sizeof(longaddr), "%.64s@b.jp", local);
	assert_int_equal(msg_check_addr("To", longaddr, &e), 0);
	snprintf(longaddr, sizeof(longaddr), "%.64sa@b.jp", local);
	assert_int_equal(msg_check_addr("To", longaddr, &e), -ERR_INVAL);
	/* 254 in all is the limit. */
	snprintf(longaddr, sizeof(longaddr), "a@%.63s.%.63s.%.63s.%.60s",
	    local, local, local, local);
	assert_int_equal(strlen(longaddr), 254);
	assert_int_equal(msg_check_addr("To", longaddr, &e), 0);
	snprintf(longaddr, sizeof(longaddr), "ab@%.63s.%.63s.%.63s.%.60s",
	    local, local, local, local);
	assert_int_equal(msg_check_addr("To", longaddr, &e), -ERR_INVAL);
	/* A label of 64 is over. */
	snprintf(longaddr, sizeof(longaddr), "a@%.64s.jp", local);
	assert_int_equal(msg_check_addr("To", longaddr, &e), -ERR_INVAL);
}

static void
test_urls(void **state)
{
	static const char *const good[] = {
		UNSUB_URL, "http://127.0.0.1:8080/u/abc_-", "HTTPS://EXAMPLE.JP",
		"https://[::1]:8443/u?t=a%2Cb&x=1#frag",
	};
	static const char *const bad[] = {
		"", "ftp://example.jp/", "javascript:alert(1)", "https://",
		"https:///path", "https://user@evil.example/", "https://a b.jp/",
		"https://a.jp/x y", "https://a.jp/<x>", "https://a.jp/x,y",
		"https://a.jp/%zz", "https://a.jp/%4", "https://a.jp/\"q\"",
		"https://a.jp/\\", "https://a.jp/日本", "mailto:x@y.jp",
		"//a.jp/x",
	};
	struct err e = ERR_INIT;
	char url[1000];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (msg_check_url("List-Unsubscribe", good[i], &e) != 0)
			fail_msg("'%s' refused: %s", good[i], e.msg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (msg_check_url("List-Unsubscribe", bad[i], &e) !=
		    -ERR_INVAL)
			fail_msg("'%s' accepted", bad[i]);
	memset(url, 'a', sizeof(url));
	memcpy(url, "https://a.jp/", 13);
	url[MSG_VALUE_MAX] = '\0';
	assert_int_equal(msg_check_url("x", url, &e), 0);
	url[MSG_VALUE_MAX] = 'a';
	url[MSG_VALUE_MAX + 1] = '\0';
	assert_int_equal(msg_check_url("x", url, &e), -ERR_INVAL);
}

static void
test_message_id_and_list_id(void **state)
{
	static const char *const bad_ids[] = {
		"<x@y.jp>", "x", "x@", "@y.jp", "x y@z.jp", "x@y@z.jp",
		"x@[1.2.3.4]", ".x@y.jp", "x@y..jp", "x\"@y.jp", "",
	};
	static const char *const bad_lists[] = {
		"nodot", "<news.example.jp>", "news example.jp", ".news.jp",
		"news..jp", "news@example.jp,", "ニュース.example.jp",
	};
	struct msg_spec s;
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	char id[300];

	(void)state;
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		s = newsletter();
		s.message_id = bad_ids[i];
		if (msg_build(&s, &b, &e) != -ERR_INVAL ||
		    strstr(e.msg, "Message-ID") == NULL)
			fail_msg("Message-ID '%s' accepted (%s)", bad_ids[i],
			    e.msg);
	}
	s = newsletter();
	s.message_id = NULL;
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	memset(id, 'a', sizeof(id));
	memcpy(id + 240, "@example.jp", 12);
	s.message_id = id;
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	for (size_t i = 0; i < sizeof(bad_lists) / sizeof(bad_lists[0]);
	    i++) {
		s = newsletter();
		s.list_id = bad_lists[i];
		if (msg_build(&s, &b, &e) != -ERR_INVAL ||
		    strstr(e.msg, "List-Id") == NULL)
			fail_msg("List-Id '%s' accepted (%s)", bad_lists[i],
			    e.msg);
	}
	/* A list name without a list id has nowhere to go. */
	s = newsletter();
	s.list_id = NULL;
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	assert_int_equal(b.len, 0);
	buf_release(&b);
}

static void
test_extra_header_names(void **state)
{
	static const char *const refused[] = {
		"From", "to", "CC", "Bcc", "Subject", "Date", "Message-ID",
		"MIME-Version", "Content-Type", "content-transfer-encoding",
		"List-Unsubscribe", "List-Unsubscribe-Post", "List-Id",
		"Reply-To", "Sender", "Return-Path", "Received",
		"Resent-To", "References", "In-Reply-To",
		"X Campaign", "X:Campaign", "", "X_Campaign", "X-キャンペーン",
	};
	struct msg_spec s = newsletter();
	struct msg_header h = { NULL, "v" };
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;

	(void)state;
	s.headers = &h;
	s.nheaders = 1;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		h.name = refused[i];
		if (msg_build(&s, &b, &e) != -ERR_INVAL)
			fail_msg("extra header '%s' accepted", refused[i]);
	}
	h.name = "X-Campaign";
	h.value = NULL;
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	h.value = "ok";
	assert_int_equal(msg_build(&s, &b, &e), 0);
	buf_release(&b);
}

static void
test_unsubscribe_headers(void **state)
{
	struct msg_spec s = newsletter();
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;

	(void)state;
	/* RFC 8058: One-Click without an HTTPS URI is meaningless. */
	s.unsub_url = NULL;
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	assert_non_null(strstr(e.msg, "List-Unsubscribe-Post"));
	s.one_click = 0;
	assert_int_equal(msg_build(&s, &b, &e), 0);
	assert_non_null(strstr(buf_str(&b), "\r\nList-Unsubscribe: <mailto:"
	    UNSUB_MAILTO "?subject=unsubscribe>\r\n"));
	assert_null(strstr(buf_str(&b), "List-Unsubscribe-Post"));
	/* Not bulk: no list headers at all. */
	s = newsletter();
	s.unsub_url = s.unsub_mailto = s.list_id = s.list_name = NULL;
	s.one_click = 0;
	buf_reset(&b);
	assert_int_equal(msg_build(&s, &b, &e), 0);
	assert_null(strstr(buf_str(&b), "List-"));
	buf_release(&b);
}

static void
test_attachment_checks(void **state)
{
	static const char *const bad_types[] = {
		"", "calendar", "text/", "/calendar", "text/calendar/x",
		"text calendar", "text/calendar method=PUBLISH",
	};
	struct msg_spec s = newsletter();
	struct msg_attachment a = *reminder_ics();
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;

	(void)state;
	s.attachment = &a;
	for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]);
	    i++) {
		a.content_type = bad_types[i];
		if (msg_build(&s, &b, &e) != -ERR_INVAL)
			fail_msg("content type '%s' accepted", bad_types[i]);
	}
	a = *reminder_ics();
	a.filename = "../../.bashrc";
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	a.filename = "..\\evil.ics";
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	a.filename = "";
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	a.filename = "reminder.ics";
	a.data = NULL;
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	assert_int_equal(b.len, 0);
	buf_release(&b);
}

static void
test_required_fields(void **state)
{
	struct msg_spec s;
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;

	(void)state;
	s = newsletter(); s.from.addr = NULL;
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	s = newsletter(); s.to.addr = NULL;
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	s = newsletter(); s.subject = NULL;
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	s = newsletter(); s.subject = "";
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	s = newsletter(); s.text = NULL;
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	s = newsletter(); s.date = 0;
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	assert_non_null(strstr(e.msg, "Date"));
	s = newsletter(); s.reply_to.name = "名前だけ";
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	assert_non_null(strstr(e.msg, "Reply-To"));
	assert_int_equal(b.len, 0);
	buf_release(&b);
}

/* --- encodings and line length ----------------------------------------- */

static const char *
part_encoding(GMimeMessage *m, int idx)
{
	GMimeObject *body = g_mime_message_get_mime_part(m);
	GMimeObject *part = GMIME_IS_MULTIPART(body) ?
	    g_mime_multipart_get_part((GMimeMultipart *)body, idx) : body;

	return g_mime_content_encoding_to_string(
	    g_mime_part_get_content_encoding((GMimePart *)part));
}

static void
test_encoding_choice(void **state)
{
	static const char english[] = "Dear customer,\n\nThis month's "
	    "advisories: update Windows and Acrobat.\n--=_alt_fake\n"
	    "=_mix_ boundary look-alikes stay inside the part.\n";
	/* What a reader gets back: the same text in canonical CRLF form. */
	static const char english_crlf[] = "Dear customer,\r\n\r\nThis "
	    "month's advisories: update Windows and Acrobat.\r\n"
	    "--=_alt_fake\r\n=_mix_ boundary look-alikes stay inside the "
	    "part.\r\n";
	static const char html_en[] = "<p>Update Windows.</p>\n";
	struct msg_spec s = newsletter();
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	GMimeMessage *m;
	GMimeMultipart *alt;
	GMimeDataWrapper *w;
	GMimeStream *st;
	GByteArray *ba;

	(void)state;
	assert_int_equal(msg_build(&s, &b, &e), 0);
	m = parse(&b);
	/* Japanese: base64 (a third the size of quoted-printable). */
	assert_string_equal(part_encoding(m, 0), "base64");
	assert_string_equal(part_encoding(m, 1), "base64");
	g_object_unref(m);

	s.text = english;
	s.text_len = strlen(english);
	s.html = html_en;
	s.html_len = strlen(html_en);
	buf_reset(&b);
	assert_int_equal(msg_build(&s, &b, &e), 0);
	m = parse(&b);
	/* Mostly ASCII: quoted-printable, never 7bit. */
	assert_string_equal(part_encoding(m, 0), "quoted-printable");
	assert_string_equal(part_encoding(m, 1), "quoted-printable");
	/* Boundary look-alikes in the text did not split the part. */
	alt = (GMimeMultipart *)g_mime_message_get_mime_part(m);
	assert_int_equal(g_mime_multipart_get_count(alt), 2);
	w = g_mime_part_get_content((GMimePart *)
	    g_mime_multipart_get_part(alt, 0));
	st = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(w, st);
	ba = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)st);
	assert_int_equal(ba->len, strlen(english_crlf));
	assert_memory_equal(ba->data, english_crlf, ba->len);
	g_object_unref(st);
	g_object_unref(m);
	buf_release(&b);
}

/*
 * The skeleton path picks the transfer encoding from the count of 8-bit
 * bytes that its one pass over a body makes; GMime's msg_build() asks
 * g_mime_utils_best_encoding().  Around the switch (a sixth of the bytes
 * 8-bit) the two give the same bytes, with 2- and 3-byte characters, CR
 * line ends and bodies of every length.
 */
static void
test_encoding_switch_like_gmime(void **state)
{
	static const char *const chars[] = { "\xc3\xa9", "\xe6\x97\xa5" };
	struct buf a = BUF_INIT(0), b = BUF_INIT(0), body = BUF_INIT(0);
	struct err e = ERR_INIT;
	struct msg_cache *mc = msg_cache_new();
	int cases = 0, qp = 0, b64 = 0;

	(void)state;
	for (size_t len = 6; len <= 400; len += len < 60 ? 1 : 7)
		for (int w = 0; w < 2; w++) {
			size_t cl = strlen(chars[w]);
			long mid = (long)((double)len * 0.17 / (double)cl);

			for (long k = mid - 2; k <= mid + 2; k++) {
				struct msg_spec s = newsletter();

				if (k < 0 || (size_t)k * cl > len)
					continue;
				buf_reset(&body);
				for (long i = 0; i < k; i++)
					buf_addstr(&body, chars[w]);
				while (body.len < len)
					buf_addch(&body, body.len % 23 == 5 ?
					    (k % 2 ? '\r' : '\n') : 'a');
				s.nheaders = 0;
				s.text = body.data;
				s.text_len = body.len;
				s.html = body.data;
				s.html_len = body.len;
				buf_reset(&a);
				buf_reset(&b);
				if (msg_build(&s, &a, &e) != 0 ||
				    msg_build_cached(mc, &s, &b, &e) != 0)
					fail_msg("%zu bytes, %ld characters: %s",
					    len, k, e.msg);
				if (a.len != b.len ||
				    memcmp(a.data, b.data, a.len) != 0)
					fail_msg("%zu bytes with %ld %zu-byte "
					    "characters: the encodings differ",
					    len, k, cl);
				if (strstr(buf_str(&a), "quoted-printable"))
					qp++;
				else
					b64++;
				cases++;
			}
		}
	/* Both sides of the switch were seen. */
	assert_true(cases > 500 && qp > 100 && b64 > 100);
	msg_cache_free(mc);
	buf_release(&a);
	buf_release(&b);
	buf_release(&body);
}

/* Bodies with CRLF, LF or CR read back in canonical CRLF form. */
static void
test_body_line_breaks(void **state)
{
	static const char mixed[] = "一行目\r\n二行目\n三行目\r四行目";
	static const char canon[] = "一行目\r\n二行目\r\n三行目\r\n四行目";
	struct msg_spec s = newsletter();
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	GMimeMessage *m;
	GMimeDataWrapper *w;
	GMimeStream *st;
	GByteArray *ba;

	(void)state;
	s.text = mixed;
	s.text_len = strlen(mixed);
	s.html = NULL;
	assert_int_equal(msg_build(&s, &b, &e), 0);
	m = parse(&b);
	w = g_mime_part_get_content((GMimePart *)
	    g_mime_message_get_mime_part(m));
	st = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(w, st);
	ba = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)st);
	assert_int_equal(ba->len, strlen(canon));
	assert_memory_equal(ba->data, canon, ba->len);
	g_object_unref(st);
	g_object_unref(m);
	buf_release(&b);
}

/*
 * Worst cases for the 998-octet limit: a 60 KB one-line HTML body (ASCII
 * and Japanese), the longest subject and display name, the longest URL,
 * the longest ASCII extra header value, a long non-ASCII one.
 */
static void
test_line_limits(void **state)
{
	struct buf html = BUF_INIT(0), text = BUF_INIT(0), b = BUF_INIT(0);
	struct buf subj = BUF_INIT(0), name = BUF_INIT(0), val = BUF_INIT(0);
	struct buf url = BUF_INIT(0), jval = BUF_INIT(0);
	struct msg_header h[2];
	struct msg_spec s = newsletter();
	struct err e = ERR_INIT;
	char path[4200];

	(void)state;
	for (int i = 0; i < 3000; i++)
		buf_addstr(&html, "<td style=\"color:#222\">x</td>");
	for (int i = 0; i < 1000; i++)
		buf_addstr(&text, "長い行");
	while (subj.len + 3 <= MSG_VALUE_MAX)
		buf_addstr(&subj, "脆");
	while (name.len + 3 <= MSG_NAME_MAX)
		buf_addstr(&name, "名");
	buf_addstr(&url, "https://samail.example.jp/u/");
	while (url.len < MSG_VALUE_MAX)
		buf_addch(&url, 'A');
	while (val.len < MSG_VALUE_MAX)
		buf_addch(&val, 'v');
	while (jval.len + 3 <= MSG_VALUE_MAX)
		buf_addstr(&jval, "値");
	h[0].name = "X-Long";
	h[0].value = buf_str(&val);
	/* A name of 76 leaves no room for a word on the first line. */
	h[1].name = "X-Long-Ja-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	assert_int_equal(strlen(h[1].name), 76);
	h[1].value = buf_str(&jval);
	s.headers = h;
	s.nheaders = 2;
	s.html = html.data;
	s.html_len = html.len;
	s.text = text.data;
	s.text_len = text.len;
	s.subject = buf_str(&subj);
	s.from.name = s.to.name = s.list_name = buf_str(&name);
	s.unsub_url = buf_str(&url);
	assert_int_equal(msg_build(&s, &b, &e), 0);
	assert_in_range(longest_line(&b), 1, 998 + 1);	/* + the CR */
	assert_header_limits(&b);
	/* The URL is whole and on a line of its own. */
	assert_non_null(strstr(buf_str(&b), "\r\nList-Unsubscribe: <"));
	assert_non_null(strstr(buf_str(&b), buf_str(&url)));
	write_out("long-lines.eml", &b, path, sizeof(path));
	if (!skip_without_python()) {
		json_t *x = json_pack("{s:s, s:s}", "subject",
		    buf_str(&subj), "to_name", buf_str(&name));

		assert_int_equal(run_checkmail(path, x, 0), 0);
		json_decref(x);
	}
	/* One byte more than a cap is refused. */
	buf_addstr(&subj, "ab");
	s.subject = buf_str(&subj);
	assert_int_equal(msg_build(&s, &b, &e), -ERR_INVAL);
	assert_non_null(strstr(e.msg, "Subject"));
	buf_release(&html);
	buf_release(&text);
	buf_release(&b);
	buf_release(&subj);
	buf_release(&name);
	buf_release(&val);
	buf_release(&url);
	buf_release(&jval);
}

static void
test_output_cap(void **state)
{
	struct msg_spec s = newsletter();
	struct buf b = BUF_INIT(4096);
	struct err e = ERR_INIT;

	(void)state;
	buf_addstr(&b, "kept");
	assert_int_equal(msg_build(&s, &b, &e), -ERR_TOOBIG);
	assert_string_equal(buf_str(&b), "kept");
	buf_release(&b);
	/* Appends: what was in the buffer is left alone. */
	b.max = 0;
	buf_addstr(&b, "kept");
	assert_int_equal(msg_build(&s, &b, &e), 0);
	assert_true(strncmp(b.data, "keptFrom: ", 10) == 0);
	buf_release(&b);
}

static void
test_date(void **state)
{
	struct msg_spec s = newsletter();
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;

	(void)state;
	/* 2024-12-31T15:30:00Z is already New Year's Day in Japan. */
	s.date = 1735659000;
	assert_int_equal(msg_build(&s, &b, &e), 0);
	assert_non_null(strstr(buf_str(&b),
	    "\r\nDate: Wed, 01 Jan 2025 00:30:00 +0900\r\n"));
	buf_release(&b);
}

static unsigned
rnd(unsigned *seed, unsigned n)
{
	*seed = *seed * 1103515245u + 12345u;
	return (*seed >> 8) % n;
}

/*
 * The skeleton path (msg_build_cached) writes the same bytes as GMime
 * (msg_build) for messages of every shape: To names that fold or
 * not, ASCII and Japanese subjects, Message-IDs up to the limit, every
 * List-Unsubscribe form, quoted-printable and base64 bodies with every
 * kind of line break, attachments, LF and CRLF output.  Each shape's first
 * message makes its skeleton, the others fill it.
 */
static void
test_skeleton_matches_gmime(void **state)
{
	static const char *const names[] = { NULL, "", "Taro", "Yamada \"T\" Taro",
	    TO_NAME, "株式会社サンプル商事 情報システム部 セキュリティ対策推進室 "
	    "山田太郎様宛て（ご担当者様）長い組織名" };
	static const char *const addrs[] = { TO_ADDR, "a@b.jp",
	    "very.long.local.part.of.an.address.for.testing.folding.rules"
	    "@sub.domain.of.a.rather.long.example.co.jp" };
	static const char *const subjects[] = { SUBJECT, "Monthly security news",
	    "A long ASCII subject that goes on and on past the seventy-eight "
	    "column limit so that it has to be folded at a space somewhere",
	    "=?not encoded?= 半角ｶﾅ" };
	static const char *const texts[] = { "Hello,\nplain ASCII text.\n",
	    "こんにちは。\r\n日本語の本文です。\rCR だけの行\n最後に改行なし",
	    "", "abc=", "trailing space \nand a long line " "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx=yy\n" };
	char mid[300], url[1000];
	struct buf a = BUF_INIT(0), b = BUF_INIT(0);
	struct err e = ERR_INIT;
	struct msg_attachment att = { "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
	    32, ICS_NAME, ICS_TYPE };
	unsigned seed = 12345;
	size_t filled = 0;
	struct msg_cache *mc = msg_cache_new();

	(void)state;
	for (int i = 0; i < 3000; i++) {
		struct msg_spec s;
#define R(n)	rnd(&seed, (n))
		memset(&s, 0, sizeof(s));
		s.from.name = R(2) ? FROM_NAME : NULL;
		s.from.addr = FROM_ADDR;
		if (R(4) == 0)
			s.reply_to.addr = "help@samail.example.jp";
		s.to.name = names[R(6)];
		s.to.addr = addrs[R(3)];
		s.subject = subjects[R(4)];
		s.date = DATE + (time_t)R(100000000);
		if (R(3) == 0)
			s.date = (time_t)253402300799 - 9 * 3600;
		snprintf(mid, sizeof(mid), "newsletter-2026-10.%u.x%.*s@samail.example.jp",
		    R(1000000), (int)R(200),
		    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghij"
		    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghij"
		    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghij"
		    "abcdefghijklmnopqrstuvwxyz");
		s.message_id = mid;
		if (R(3)) {
			s.list_id = LIST_ID;
			s.list_name = R(2) ? "SECURITY ACTION 通信" : NULL;
		}
		switch (R(4)) {
		case 0:
			break;
		case 1:
			memset(url, 'a', 800);
			url[800] = '\0';
			snprintf(mid + 260, 40, "%u", R(1000));
			{
				char tail[801];

				snprintf(tail, sizeof(tail), "%.*s", (int)R(800), url);
				snprintf(url, sizeof(url), "%s%s%s", UNSUB_URL,
				    mid + 260, tail);
			}
			s.unsub_url = url;
			s.one_click = R(2);
			break;
		case 2:
			s.unsub_mailto = UNSUB_MAILTO;
			s.unsub_token = R(2) ? "AQAAAAAAAAAqVJ3yq8M0f3m0S2mB2rQ9" : NULL;
			break;
		default:
			snprintf(url, sizeof(url), "%s%u", UNSUB_URL, R(1000));
			s.unsub_url = url;
			s.unsub_mailto = UNSUB_MAILTO;
			s.unsub_token = "AQAAAAAAAAAqVJ3yq8M0f3m0S2mB2rQ9";
			s.one_click = 1;
			break;
		}
		if (R(3) == 0) {
			s.text = text_ja;
			s.text_len = text_ja_len;
		} else {
			s.text = texts[R(5)];
			s.text_len = strlen(s.text);
		}
		if (R(3)) {
			s.html = R(2) ? html_ja : texts[R(5)];
			s.html_len = s.html == html_ja ? html_ja_len : strlen(s.html);
		}
		if (R(3) == 0) {
			att.data = R(2) ? ics : "";
			att.len = att.data == ics ? ics_len : 0;
			s.attachment = &att;
		}
		s.flags = R(2) ? MSG_F_LF : 0;
#undef R
		buf_reset(&a);
		buf_reset(&b);
		if (msg_build(&s, &a, &e) != 0 ||
		    msg_build_cached(mc, &s, &b, &e) != 0)
			fail_msg("message %d: %s", i, e.msg);
		if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) {
			char pa[4300], pb[4300];

			write_out("skeleton-gmime.eml", &a, pa, sizeof(pa));
			write_out("skeleton-filled.eml", &b, pb, sizeof(pb));
			fail_msg("message %d: the skeleton's bytes differ from "
			    "GMime's: diff %s %s", i, pa, pb);
		}
		if (msg_cache_count(mc) >= 32) {
			filled += msg_cache_count(mc);
			msg_cache_free(mc);
			mc = msg_cache_new();
		}
	}
	filled += msg_cache_count(mc);
	/* Not a comparison of GMime with itself: skeletons were made. */
	assert_true(filled > 100);
	msg_cache_free(mc);
	buf_release(&a);
	buf_release(&b);
}

/*
 * Base64 bodies and attachments of every length up to a few lines, so
 * that every way a last line and its padding can end comes out of the
 * skeleton's encoder (add_base64: OpenSSL's EVP_EncodeBlock) as it comes
 * out of GMime's, with LF and CRLF.
 */
static void
test_skeleton_base64_lengths(void **state)
{
	struct buf a = BUF_INIT(0), b = BUF_INIT(0), text = BUF_INIT(0);
	struct err e = ERR_INIT;
	struct msg_attachment att = { NULL, 0, ICS_NAME, ICS_TYPE };
	struct msg_cache *mc = msg_cache_new();
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 600; i++) {
		struct msg_spec s = newsletter();

		/* An ASCII lead of 0-2 bytes, then Japanese cut at a character
		 * boundary: every length mod 3 and mod 57. */
		buf_reset(&text);
		buf_add(&text, "ab", (size_t)(i % 3));
		while (n < text_ja_len && (text_ja[n] & 0xc0) == 0x80)
			n++;
		buf_add(&text, text_ja, n);
		n = (n + 1) % 900;
		s.nheaders = 0;
		s.text = buf_str(&text);
		s.text_len = text.len;
		s.html = i % 2 ? NULL : s.text;
		s.html_len = text.len;
		att.data = ics;
		att.len = (size_t)i % (ics_len + 1);
		s.attachment = s.html == NULL || i % 4 == 0 ? &att : NULL;
		s.flags = i % 5 < 2 ? MSG_F_LF : 0;
		buf_reset(&a);
		buf_reset(&b);
		if (msg_build(&s, &a, &e) != 0 ||
		    msg_build_cached(mc, &s, &b, &e) != 0)
			fail_msg("message %d: %s", i, e.msg);
		if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
			fail_msg("message %d (text %zu bytes, attachment %zu): "
			    "the skeleton's bytes differ from GMime's", i,
			    text.len, att.len);
	}
	assert_true(msg_cache_count(mc) > 0);
	msg_cache_free(mc);
	buf_release(&a);
	buf_release(&b);
	buf_release(&text);
}

static int
setup(void **state)
{
	(void)state;
	msg_global_init();
	text_ja = slurp("tests/data/msg/newsletter-ja.txt", &text_ja_len);
	html_ja = slurp("tests/data/msg/newsletter-ja.html", &html_ja_len);
	ics = slurp("tests/data/msg/reminder.ics", &ics_len);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	g_free(text_ja);
	g_free(html_ja);
	g_free(ics);
	msg_global_shutdown();
	return 0;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_newsletter),
		cmocka_unit_test(test_reminder_with_ics),
		cmocka_unit_test(test_variants),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_rfc2047_round_trip),
		cmocka_unit_test(test_list_and_extra_headers),
		cmocka_unit_test(test_header_injection),
		cmocka_unit_test(test_body_nul_and_utf8),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_urls),
		cmocka_unit_test(test_message_id_and_list_id),
		cmocka_unit_test(test_extra_header_names),
		cmocka_unit_test(test_unsubscribe_headers),
		cmocka_unit_test(test_attachment_checks),
		cmocka_unit_test(test_required_fields),
		cmocka_unit_test(test_encoding_choice),
		cmocka_unit_test(test_encoding_switch_like_gmime),
		cmocka_unit_test(test_body_line_breaks),
		cmocka_unit_test(test_line_limits),
		cmocka_unit_test(test_output_cap),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_skeleton_matches_gmime),
		cmocka_unit_test(test_skeleton_base64_lengths),
	};
	char *self;

	(void)argc;
	self = g_strdup(argv[0]);
	snprintf(outdir, sizeof(outdir), "%s/out", dirname(self));
	g_free(self);
	mkdir(outdir, 0755);
	return cmocka_run_group_tests(tests, setup, teardown);
}
