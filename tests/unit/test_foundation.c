/* Unit tests for the foundation modules: addr, date, text, config, db,
 * subscriber. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "date.h"
#include "db.h"
#include "err.h"
#include "products.h"
#include "schema.h"
#include "subscriber.h"
#include "text.h"

#include <glib.h>

static void
test_addr(void **state)
{
	static const struct { const char *in, *out; } good[] = {
		{ "a@example.jp", "a@example.jp" },
		{ "Foo.Bar+tag@Example.CO.JP", "Foo.Bar+tag@example.co.jp" },
		{ "o'neil@example.com", "o'neil@example.com" },
		{ "x-y_z@mail-1.example.jp", "x-y_z@mail-1.example.jp" },
		{ "a@xn--eckwd4c7c.xn--zckzah", "a@xn--eckwd4c7c.xn--zckzah" },
		/* Internationalised domains: their ASCII form (UTS #46). */
		{ "info@日本.jp", "info@xn--wgv71a.jp" },
		{ "Info@例え.テスト", "Info@xn--r8jz45g.xn--zckzah" },
		{ "a@ＥＸＡＭＰＬＥ．ｊｐ", "a@example.jp" },
		{ "a@ﾃｽﾄ.jp", "a@xn--zckzah.jp" },
	};
	static const char *const bad[] = {
		"", "a", "a@b", "a b@c.jp", "a@@c.jp", "@c.jp", "a@", ".a@c.jp",
		"a.@c.jp", "a..b@c.jp", "a@c..jp", "a@-c.jp", "a@c-.jp",
		"a@c_d.jp", "<a@c.jp>", "\"a\"@c.jp", "a@[1.2.3.4]", "a\r\n@c.jp",
		"a@c.jp\n", "ａ@c.jp", "a＠c.jp", "a\t@c.jp", "担当@c.jp",
		"a@日本 語.jp", "a@☃.jp", "a@-日本.jp", "a@日本", "a@日本_語.jp",
		"a@\xff.jp",
		/* Text after the address, a full-width letter in the TLD. */
		"info@example.co.jp様", "info@example.co.jpです",
		"a@example.comａ", "a@日本.jpー", "a@例え。ｊp",
	};
	/* What a sheet's email cell holds besides an address: refused,
	 * saying what it is (they were "contains a space", "not a valid
	 * internationalised domain name", an invisible character quoted). */
	static const struct {
		const char	*in;
		const char	*msg;
	} more[] = {
		{ "a@x.jp; b@x.jp", "holds more than one address" },
		{ "a@x.jp、b@x.jp", "holds more than one address" },
		{ "a@x.jp,b@x.jp", "holds more than one address" },
		{ "a@x.jp b@x.jp", "holds more than one address" },
		{ "a@x.jp／b＠x.jp", "holds more than one address" },
		{ "山田 <taro@example.jp>", "a name with an address; write only the address (taro@example.jp)" },
		{ "\"Taro\" <taro@example.jp>", "write only the address (taro@example.jp)" },
		{ "mailto:taro@example.jp", "a link; write only the address (taro@example.jp)" },
		{ "MAILTO:taro@example.jp", "a link" },
		{ "taro@example.jp.", "ends with a dot" },
		{ "taro@example.jp\u200b", "invisible character (U+200B) at character 16" },
		{ "ta\u2060ro@example.jp", "invisible character (U+2060)" },
	};
	char out[ADDR_MAX + 1];
	struct err e = ERR_INIT;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(addr_check(good[i].in, out, &e), 0);
		assert_string_equal(out, good[i].out);
	}
	for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
		assert_int_equal(addr_check(more[i].in, out, &e), -ERR_INVAL);
		if (strstr(e.msg, more[i].msg) == NULL)
			fail_msg("'%s': %s", more[i].in, e.msg);
	}
	/* The no-break space of a web page around it is trimmed, as blanks
	 * are; two addresses on two lines of one cell are named as such. */
	{
		struct subscriber s;

		sub_init(&s);
		assert_int_equal(sub_set_field(&s, SUB_EMAIL,
		    "\u00a0taro@example.jp\u00a0", NULL, 0, &e), 0);
		assert_string_equal(s.email, "taro@example.jp");
		assert_int_equal(sub_set_field(&s, SUB_EMAIL,
		    "a@x.jp\nb@x.jp", NULL, 0, &e), -ERR_INVAL);
		assert_non_null(strstr(e.msg, "more than one address (one per line)"));
		sub_release(&s);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (addr_check(bad[i], out, &e) != -ERR_INVAL)
			fail_msg("accepted '%s'", bad[i]);
		/* The message must never carry a raw line break. */
		assert_null(strchr(e.msg, '\n'));
		assert_null(strchr(e.msg, '\r'));
	}
}

static void
test_mailbox(void **state)
{
	char *name, *addr;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(addr_parse_mailbox("事務局 <News@Example.JP>", &name,
	    &addr, &e), 0);
	assert_string_equal(name, "事務局");
	assert_string_equal(addr, "News@example.jp");
	free(name);
	free(addr);
	assert_int_equal(addr_parse_mailbox("\"A, B\" <a@example.jp>", &name,
	    &addr, &e), 0);
	assert_string_equal(name, "A, B");
	free(name);
	free(addr);
	assert_int_equal(addr_parse_mailbox("x\r\nBcc: y <a@example.jp>",
	    &name, &addr, &e), -ERR_INVAL);
	assert_int_equal(addr_parse_mailbox("a <b>", &name, &addr, &e),
	    -ERR_INVAL);
}

static void
test_dates(void **state)
{
	struct { const char *from; int months; const char *want; } add[] = {
		{ "2024-01-31", 1, "2024-02-29" },	/* leap year */
		{ "2023-01-31", 1, "2023-02-28" },
		{ "2024-02-29", 12, "2025-02-28" },
		{ "2024-08-31", 6, "2025-02-28" },
		{ "2024-03-31", -1, "2024-02-29" },
		{ "2024-12-15", 1, "2025-01-15" },
		{ "2000-02-29", 48, "2004-02-29" },
		{ "2100-01-31", 1, "2100-02-28" },	/* not a leap year */
	};
	char buf[32];
	long d;
	time_t t;
	int y, m;

	(void)state;
	for (size_t i = 0; i < sizeof(add) / sizeof(add[0]); i++) {
		assert_int_equal(date_parse(add[i].from, &d, NULL), 0);
		date_format(date_add_months(d, add[i].months), buf);
		assert_string_equal(buf, add[i].want);
	}
	assert_int_equal(date_parse("2024/4/1", &d, NULL), 0);
	date_format(d, buf);
	assert_string_equal(buf, "2024-04-01");
	assert_int_equal(date_parse("2024-02-30", &d, NULL), -ERR_INVAL);
	assert_int_equal(date_parse("2024-4/1", &d, NULL), -ERR_INVAL);
	assert_int_equal(date_parse("20240401", &d, NULL), -ERR_INVAL);
	assert_int_equal(date_parse("2024-04-01x", &d, NULL), -ERR_INVAL);

	assert_int_equal(date_parse_timestamp("2026-11-01T00:00:00Z", &t, NULL), 0);
	date_format_timestamp(t, buf);
	assert_string_equal(buf, "2026-11-01T00:00:00Z");
	/* 2026-10-31T15:00Z is already November 1st in Japan. */
	assert_int_equal(date_parse_timestamp("2026-10-31T15:00:00Z", &t, NULL), 0);
	date_format(date_jst_day(t), buf);
	assert_string_equal(buf, "2026-11-01");
	assert_int_equal(date_parse_timestamp("2026-11-01T09:00:00+09:00", &t,
	    NULL), 0);
	date_format_timestamp(t, buf);
	assert_string_equal(buf, "2026-11-01T00:00:00Z");
	date_format_timestamp(date_jst_time(date_days(2026, 11, 1), 9, 0), buf);
	assert_string_equal(buf, "2026-11-01T00:00:00Z");
	assert_int_equal(date_parse_timestamp("2026-11-01", &t, NULL), -ERR_INVAL);
	assert_int_equal(date_parse_period("2026-10", &y, &m, NULL), 0);
	assert_int_equal(y * 100 + m, 202610);
	assert_int_equal(date_parse_period("2026-13", &y, &m, NULL), -ERR_INVAL);
}

static void
test_text(void **state)
{
	char s[64];

	(void)state;
	assert_true(text_utf8_valid("日本語", strlen("日本語")));
	assert_false(text_utf8_valid("\xc0\xaf", 2));		/* overlong */
	assert_false(text_utf8_valid("\xed\xa0\x80", 3));	/* surrogate */
	assert_false(text_utf8_valid("\xe6\x97", 2));		/* truncated */
	assert_true(text_has_control("a\rb"));
	assert_true(text_has_control("a\xc2\x85"));		/* NEL (C1) */
	assert_false(text_has_control("株式会社"));
	strcpy(s, "\xe3\x80\x80 ＡＢＣ１２３ \t");
	text_fold_fullwidth(s);
	text_trim(s);
	assert_string_equal(s, "ABC123");
}

static char *
write_file(const char *content, mode_t mode)
{
	char *path = strdup("/tmp/samail-unit-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	fchmod(fd, mode);
	close(fd);
	return path;
}

#define X10	"xxxxxxxxxx"
#define X187	X10 X10 X10 X10 X10 X10 X10 X10 X10 X10 X10 X10 X10 X10 \
		X10 X10 X10 X10 "xxxxxxx"

static void
test_config(void **state)
{
	struct config *c;
	struct err e = ERR_INIT;
	char *p, *secret;
	size_t n;

	(void)state;
	unsetenv("SAMAIL_CONFIG");
	p = write_file("[database]\npath = /tmp/x.db\n[mail]\n"
	    "from = 事務局 <news@example.jp>\ntransport = smtp://a:25 smtps://b:465\n"
	    "[smtp]\nmax_age = 2d\nstarttls = required\n"
	    "[remind]\noffsets = 7, 30, 0\n", 0644);
	assert_int_equal(config_load(&c, p, NULL, &e), 0);
	assert_string_equal(c->db_path, "/tmp/x.db");
	assert_string_equal(c->from_name, "事務局");
	assert_string_equal(c->envelope_from, "news@example.jp");
	assert_int_equal(c->nrelays, 2);
	assert_string_equal(c->relays[1], "smtps://b:465");
	assert_int_equal(c->max_age, 2 * 86400);
	assert_int_equal(c->starttls, STARTTLS_REQUIRED);
	assert_int_equal(c->rm_offsets[0], 30);
	assert_int_equal(c->rm_offsets[2], 0);
	assert_string_equal(c->list_id, "<security-action.example.jp>");
	config_free(c);
	unlink(p);
	free(p);

	/* An unknown key names file:line. */
	p = write_file("[mail]\nfrom = a@example.jp\n[smtp]\nmax_conections = 3\n", 0644);
	assert_int_equal(config_load(&c, p, NULL, &e), -ERR_CONFIG);
	assert_non_null(strstr(e.msg, ":4: unknown key 'max_conections' in [smtp]; did you mean 'max_connections'?"));
	unlink(p);
	free(p);
	/* ... and says what was probably meant: a key in the wrong
	 * section, a section misspelt or in capitals. */
	{
		static const struct { const char *text, *says; } near[] = {
			{ "[mail]\nrate_per_minute = 10\n", ":2: unknown key "
			    "'rate_per_minute' in [mail]: it belongs in [smtp];" },
			{ "[mail]\ntimeout = 10\n", ":2: unknown key 'timeout' "
			    "in [mail]: it belongs in [smtp] or [feeds];" },
			{ "[smpt]\ntimeout = 10\n", ":2: unknown section [smpt]; "
			    "did you mean [smtp]?" },
			{ "[SMTP]\ntimeout = 10\n", ":2: unknown section [SMTP]; "
			    "did you mean [smtp]?" },
			{ "[relay]\ntimeout = 10\n", ":2: unknown section "
			    "[relay]; 'timeout' is a key of [smtp] or [feeds];" },
			{ "[relay]\nhost = x\n", ":2: unknown section [relay]; "
			    "see samail.conf(5)" },
			{ "[smtp]\nfoo = 1\n", ":2: unknown key 'foo' in [smtp]; "
			    "see samail.conf(5)" },
		};

		for (size_t i = 0; i < sizeof(near) / sizeof(near[0]); i++) {
			p = write_file(near[i].text, 0644);
			assert_int_equal(config_load(&c, p, NULL, &e),
			    -ERR_CONFIG);
			if (strstr(e.msg, near[i].says) == NULL)
				fail_msg("%s: got '%s'", near[i].text, e.msg);
			unlink(p);
			free(p);
		}
	}
	p = write_file("[smtp]\nmax_connections = lots\n", 0644);
	assert_int_equal(config_load(&c, p, NULL, &e), -ERR_CONFIG);
	assert_non_null(strstr(e.msg, ":2: [smtp] max_connections must be a number"));
	unlink(p);
	free(p);
	/* A key set twice, or an indented line (inih reads it as more of
	 * the key above), an empty value: refused with file:line. */
	p = write_file("[mail]\nlist_name = Foo\n   message_id_domain = bar.example\n", 0644);
	assert_int_equal(config_load(&c, p, NULL, &e), -ERR_CONFIG);
	assert_non_null(strstr(e.msg, ":3: [mail] list_name is set twice"));
	unlink(p);
	free(p);
	p = write_file("[database]\npath =\n", 0644);
	assert_int_equal(config_load(&c, p, NULL, &e), -ERR_CONFIG);
	assert_non_null(strstr(e.msg, ":2: [database] path is empty"));
	unlink(p);
	free(p);
	/* from_name_en before from (a double free once). */
	p = write_file("[mail]\nfrom_name_en = Office\nfrom = A <a@example.org>\n", 0644);
	assert_int_equal(config_load(&c, p, NULL, &e), 0);
	assert_string_equal(c->from_name_en, "Office");
	config_free(c);
	unlink(p);
	free(p);
	assert_int_equal(config_load(&c, "/tmp", NULL, &e), -ERR_CONFIG);
	assert_non_null(strstr(e.msg, "is not a file"));
	p = write_file("[remind]\noffsets =\n", 0644);
	assert_int_equal(config_load(&c, p, NULL, &e), -ERR_CONFIG);
	assert_non_null(strstr(e.msg, "offsets is empty"));
	unlink(p);
	free(p);
	/* old_secret_until that is not a date: refused (it was ignored,
	 * which retired the old key at once and broke every link sent). */
	{
		static const char *const untils[] = { "31.12.2099",
		    "2099-12-31T00:00:00Z", "next year", "2099-02-30" };

		for (size_t i = 0; i < sizeof(untils) / sizeof(untils[0]); i++) {
			char text[160];

			snprintf(text, sizeof(text), "[unsubscribe]\n"
			    "old_secret_file = /tmp/old.key\n"
			    "old_secret_until = %s\n", untils[i]);
			p = write_file(text, 0644);
			assert_int_equal(config_load(&c, p, NULL, &e),
			    -ERR_CONFIG);
			if (strstr(e.msg, ":3: [unsubscribe] old_secret_until "
			    "must be a date YYYY-MM-DD") == NULL)
				fail_msg("%s: got '%s'", untils[i], e.msg);
			unlink(p);
			free(p);
		}
		p = write_file("[unsubscribe]\nold_secret_file = /tmp/old.key\n"
		    "old_secret_until = 2099/12/31\n", 0644);
		assert_int_equal(config_load(&c, p, NULL, &e), 0);
		config_free(c);
		unlink(p);
		free(p);
	}
	/* An unsubscribe base without its final '/' gets it (the token
	 * is appended: ".../uTOKEN" would reach nothing); one ending in
	 * '/', or with a query, is taken as it is. */
	{
		static const char *const bases[][2] = {
			{ "https://www.example.jp/u", "https://www.example.jp/u/" },
			{ "https://www.example.jp/sa/u/", "https://www.example.jp/sa/u/" },
			{ "https://www.example.jp", "https://www.example.jp/" },
			{ "https://www.example.jp/u?t=", "https://www.example.jp/u?t=" },
		};

		for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
			char text[128];

			snprintf(text, sizeof(text),
			    "[unsubscribe]\nbase_url = %s\n", bases[i][0]);
			p = write_file(text, 0644);
			assert_int_equal(config_load(&c, p, NULL, &e), 0);
			assert_string_equal(c->unsub_base_url, bases[i][1]);
			config_free(c);
			unlink(p);
			free(p);
		}
		p = write_file("[unsubscribe]\nbase_url = https://www.example.jp/u#x\n",
		    0644);
		assert_int_equal(config_load(&c, p, NULL, &e), -ERR_CONFIG);
		assert_non_null(strstr(e.msg, "contains '#'"));
		unlink(p);
		free(p);
	}
	/* Overdue reminders that would run into the next cycle. */
	p = write_file("[remind]\ninterval = 6\noverdue_repeats = 6\n", 0644);
	assert_int_equal(config_load(&c, p, NULL, &e), -ERR_CONFIG);
	assert_non_null(strstr(e.msg, "run into the next"));
	unlink(p);
	free(p);
	assert_int_equal(config_load(&c, "/nonexistent/samail.conf", NULL, &e),
	    -ERR_CONFIG);

	/* Secrets: a file readable by others is refused. */
	p = write_file("s3cret\n", 0644);
	assert_int_equal(config_secret(p, NULL, &secret, &n, &e), -ERR_CONFIG);
	assert_non_null(strstr(e.msg, "chmod 600"));
	chmod(p, 0600);
	assert_int_equal(config_secret(p, NULL, &secret, &n, &e), 0);
	assert_string_equal(secret, "s3cret");
	assert_int_equal(n, 6);
	free(secret);
	unlink(p);
	free(p);
	setenv("SAMAIL_TEST_SECRET", "fromenv", 1);
	/* 1: it came from the environment, not from a file. */
	assert_int_equal(config_secret("/nonexistent", "SAMAIL_TEST_SECRET",
	    &secret, &n, &e), 1);
	assert_string_equal(secret, "fromenv");
	free(secret);
	assert_int_equal(config_parse_duration("15m"), 900);
	assert_int_equal(config_parse_duration("x"), -1);
	assert_int_equal(config_parse_size("20M"), 20L * 1024 * 1024);
}

/* Config files that fuzz_config found mishandled: lines longer than
 * inih's buffer (cut, the rest read as a line of its own), a NUL byte
 * (the rest of the line dropped unseen), control characters in a key's
 * name (echoed to the terminal). */
static void
test_config_fuzzed(void **state)
{
	static const struct {
		const char	*text;
		size_t		 len;
		const char	*want;	/* in the message; NULL: loads */
	} cases[] = {
#define C(s, w)	{ s, sizeof(s) - 1, w }
		/* 199 bytes, the most a line may have, LF or CR LF */
		C("[mail]\nlist_name = " X187 "\n", NULL),
		C("[mail]\nlist_name = " X187 "\r\n", NULL),
		C("[mail]\nlist_name = " X187, NULL),
		/* saved by Windows Notepad: a UTF-8 BOM, CR LF */
		C("\xef\xbb\xbf[mail]\r\nlist_name = " X187 "\r\n", NULL),
		C("\xef\xbb\xbf; samail\r\n[mail]\r\nlist_name = " X187, NULL),
		/* 200: was read as 199 and a line 3 "x" (a syntax error on
		 * a line the file does not have) */
		C("[mail]\nlist_name = " X187 "x\n", ":2: the line is longer "
		    "than the 199 bytes"),
		/* was cut silently: list_name "xx...x", "#y" a comment */
		C("[mail]\nlist_name = " X187 "#y\n", ":2: the line is longer"),
		/* was loaded as "ab" */
		C("[mail]\nlist_name = ab\0cd\n", ":2: a NUL byte"),
		C("[mail]\nlist\x1b[2J_name = x\n", ":2: a section or key name "
		    "that is not clean UTF-8 text"),
		C("[mail\xe2\x80\xae]\nx = 1\n", ":2: a section or key name"),
		C("[mail]\nlist_name\xff = x\n", ":2: a section or key name"),
#undef C
	};
	char path[] = "/tmp/samail-unit-XXXXXX";

	(void)state;
	unsetenv("SAMAIL_CONFIG");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config *c = NULL;
		struct err e = ERR_INIT;
		int fd, rc;

		strcpy(path, "/tmp/samail-unit-XXXXXX");
		assert_true((fd = mkstemp(path)) >= 0);
		assert_int_equal(write(fd, cases[i].text, cases[i].len),
		    (ssize_t)cases[i].len);
		close(fd);
		rc = config_load(&c, path, NULL, &e);
		unlink(path);
		if (cases[i].want == NULL) {
			if (rc != 0)
				fail_msg("case %zu: %s", i, e.msg);
			assert_int_equal(strlen(c->list_name), 187);
			config_free(c);
			continue;
		}
		if (rc != -ERR_CONFIG || strstr(e.msg, cases[i].want) == NULL)
			fail_msg("case %zu: %d '%s'", i, rc, rc == 0 ?
			    c->list_name : e.msg);
		assert_true(text_utf8_valid(e.msg, strlen(e.msg)));
		assert_false(text_has_control(e.msg));
	}
}

/* What declarers write in a CSV's products column finds its product. */
static void
test_products_find(void **state)
{
	static const struct { const char *in, *tag; } cases[] = {
		{ "windows", "windows" }, { "WINDOWS", "windows" },
		{ "Windows 11", "windows" }, { "ｗｉｎｄｏｗｓ　１１", "windows" },
		{ "Windows Server 2019", "windows" }, { "Excel", "office" },
		{ "Microsoft 365", "office" }, { "Office2019", "office" },
		{ "Adobe Acrobat", "acrobat" }, { "Adobe Reader", "acrobat" },
		{ "PHP 8.2", "php" }, { "Java 8", "java" }, { "iPhone", "ios" },
		{ "Google  Chrome", "chrome" }, { "Mozilla Firefox", "firefox" },
		{ "Cisco 製品", "cisco" }, { "バッファロー", "buffalo" },
		{ "RTX1210", "yamaha" },
		/* nothing but a version, or nothing known: no product */
		{ "365", NULL }, { "11", NULL }, { "Windows.", NULL },
		{ "PHPMailer", NULL }, { "", NULL }, { "　", NULL },
	};
	struct products dict;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(products_load(&dict, "feeds/products.conf", &e), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct product *p = products_find(&dict, cases[i].in);

		if (cases[i].tag == NULL && p != NULL)
			fail_msg("'%s' found '%s'", cases[i].in, p->tag);
		if (cases[i].tag != NULL && (p == NULL ||
		    strcmp(p->tag, cases[i].tag) != 0))
			fail_msg("'%s': want %s, got %s", cases[i].in,
			    cases[i].tag, p != NULL ? p->tag : "none");
	}
	products_release(&dict);
}

/* A name two products share is refused when the dictionary loads. */
static void
test_products_ambiguous(void **state)
{
	char path[] = "/tmp/samail-products.XXXXXX";
	struct products dict;
	struct err e = ERR_INIT;
	int fd = mkstemp(path);
	static const char conf[] = "[a]\nja = A\nen = A\nalias = Shared\n"
	    "[b]\nja = B\nen = B\nalias = ｓｈａｒｅｄ\n";

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, conf, sizeof(conf) - 1), (ssize_t)sizeof(conf) - 1);
	close(fd);
	assert_int_equal(products_load(&dict, path, &e), -ERR_CONFIG);
	assert_non_null(strstr(e.msg, "names both product 'a' and product 'b'"));
	unlink(path);
}

/*
 * A statement from db_stmt() stays usable while its holder asks for any
 * number of others (store_one() holds one over several): the cache held
 * 48 and finalized the oldest, so a long run's 49th statement freed one
 * in use (ASan: heap-use-after-free).  The same SQL at another address
 * (a buffer) is the same statement.
 */
static void
test_stmt_cache_keeps(void **state)
{
	struct db *db;
	struct err e = ERR_INIT;
	sqlite3_stmt *held, *again;
	char sql[200][32], copy[32];

	(void)state;
	assert_int_equal(db_open(&db, ":memory:", DB_CREATE, 1000, &e), 0);
	held = db_stmt(db, "SELECT 1", &e);
	assert_non_null(held);
	assert_int_equal(sqlite3_step(held), SQLITE_ROW);
	for (int i = 0; i < 200; i++) {
		snprintf(sql[i], sizeof(sql[i]), "SELECT %d", i + 2);
		assert_non_null(db_stmt(db, sql[i], &e));
	}
	assert_int_equal(sqlite3_column_int(held, 0), 1);
	assert_int_equal(sqlite3_step(held), SQLITE_DONE);
	snprintf(copy, sizeof(copy), "SELECT %d", 1);
	again = db_stmt(db, copy, &e);
	assert_ptr_equal(again, held);
	assert_int_equal(sqlite3_step(again), SQLITE_ROW);
	assert_ptr_equal(db_stmt(db, sql[150], &e), db_stmt(db, "SELECT 152",
	    &e));
	db_close(db);
}

/* Migration 5 drops from stored declarers the honorifics import now drops
 * (sub_set_field), by the same rule. */
static void
test_migrate_honorifics(void **state)
{
	static const char *const names[][2] = {
		{ "山田 太郎 様", "山田 太郎" }, { "山田太郎様", "山田太郎" },
		{ "佐藤\xe3\x80\x80花子\xe3\x80\x80さま", "佐藤\xe3\x80\x80花子" },
		{ "ご担当者 殿", "ご担当者" }, { "鵜殿", "鵜殿" },
		{ "田中様子", "田中様子" }, { "様", "様" }, { " 様", " 様" },
	}, *const orgs[][2] = {
		{ "株式会社サンプル 御中", "株式会社サンプル" },
		{ "株式会社サンプル御中", "株式会社サンプル" },
		{ "御中", "御中" }, { "中央御中央", "中央御中央" },
	};
	struct db *db;
	struct err e = ERR_INIT;
	sqlite3_stmt *st;
	char sql[512];

	(void)state;
	assert_int_equal(db_open(&db, ":memory:", DB_CREATE, 1000, &e), 0);
	for (size_t v = 1; v <= 4; v++)
		assert_int_equal(db_exec(db, schema_migration(v), &e), 0);
	assert_int_equal(db_exec(db, "PRAGMA user_version = 4", &e), 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO subscriber (email, org, "
		    "name, created, updated) VALUES ('n%zu@example.jp', 'X', "
		    "'%s', 'x', 'x')", i, names[i][0]);
		assert_int_equal(db_exec(db, sql, &e), 0);
	}
	for (size_t i = 0; i < sizeof(orgs) / sizeof(orgs[0]); i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO subscriber (email, org, "
		    "created, updated) VALUES ('o%zu@example.jp', '%s', 'x', "
		    "'x')", i, orgs[i][0]);
		assert_int_equal(db_exec(db, sql, &e), 0);
	}
	assert_int_equal(db_migrate(db, &e), 1);
	assert_int_equal(db_version(db), (int)schema_count());
	st = db_prepare(db, "SELECT email, coalesce(name, org) FROM subscriber "
	    "ORDER BY id", &e);
	assert_non_null(st);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) +
	    sizeof(orgs) / sizeof(orgs[0]); i++) {
		size_t k = i < sizeof(names) / sizeof(names[0]) ? i :
		    i - sizeof(names) / sizeof(names[0]);

		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal((const char *)sqlite3_column_text(st, 1),
		    i < sizeof(names) / sizeof(names[0]) ? names[k][1] :
		    orgs[k][1]);
	}
	sqlite3_finalize(st);
	db_close(db);
}

static void
test_subscriber_store(void **state)
{
	struct db *db;
	struct products dict;
	struct subscriber s, got;
	struct err e = ERR_INIT;
	enum sub_outcome out;
	time_t now = 1790000000;

	(void)state;
	assert_int_equal(products_load(&dict, "feeds/products.conf", &e), 0);
	assert_int_equal(db_open(&db, ":memory:", DB_CREATE, 1000, &e), 0);
	assert_true(db_migrate(db, &e) >= 1);

	sub_init(&s);
	assert_int_equal(sub_set_field(&s, SUB_EMAIL, "A@Example.JP", &dict, now, &e), 0);
	assert_int_equal(sub_set_field(&s, SUB_ORG, " 株式会社A　", &dict, now, &e), 0);
	assert_int_equal(sub_set_field(&s, SUB_PRODUCTS, "Google Chrome、windows;WINDOWS", &dict, now, &e), 0);
	assert_string_equal(s.org, "株式会社A");
	/* Half-width katakana (old systems' exports) is stored full-width. */
	assert_int_equal(sub_set_field(&s, SUB_NAME, "ｶﾌﾞｼｷｶﾞｲｼｬ ﾃｽﾄ･ｻﾝ ①", &dict, now, &e), 0);
	assert_string_equal(s.name, "カブシキガイシャ テスト・サン ①");
	/* The honorific a sheet carries goes: the mail adds 様 itself. */
	{
		static const char *const names[][2] = {
			{ "山田 太郎 様", "山田 太郎" }, { "山田太郎様", "山田太郎" },
			{ "佐藤\xe3\x80\x80花子\xe3\x80\x80さま", "佐藤\xe3\x80\x80花子" },
			{ "ご担当者 殿", "ご担当者" }, { "鵜殿", "鵜殿" },
			{ "田中様子", "田中様子" }, { "様", "様" },
		};

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			assert_int_equal(sub_set_field(&s, SUB_NAME, names[i][0],
			    &dict, now, &e), 0);
			assert_string_equal(s.name, names[i][1]);
		}
	}
	/* And an organisation's 御中: the mail writes ご担当者様 below it. */
	{
		static const char *const orgs[][2] = {
			{ "株式会社サンプル 御中", "株式会社サンプル" },
			{ "株式会社サンプル御中", "株式会社サンプル" },
			{ "株式会社サンプル\xe3\x80\x80御中", "株式会社サンプル" },
			{ "御中", "御中" },
		};
		char *keep = strdup(s.org);

		assert_non_null(keep);
		for (size_t i = 0; i < sizeof(orgs) / sizeof(orgs[0]); i++) {
			assert_int_equal(sub_set_field(&s, SUB_ORG, orgs[i][0],
			    &dict, now, &e), 0);
			assert_string_equal(s.org, orgs[i][1]);
		}
		assert_int_equal(sub_set_field(&s, SUB_ORG, keep, &dict, now,
		    &e), 0);
		free(keep);
	}
	assert_string_equal(s.products, "chrome,windows");
	assert_int_equal(sub_set_field(&s, SUB_PRODUCTS, "Windows 10/11、Excel", &dict, now, &e), 0);
	assert_string_equal(s.products, "office,windows");
	/* The full-width slash a Japanese IME types, as the full-width comma
	 * and semicolon: "Windows／Office" was an unknown product. */
	assert_int_equal(sub_set_field(&s, SUB_PRODUCTS, "Windows／Chrome", &dict, now, &e), 0);
	assert_string_equal(s.products, "chrome,windows");
	assert_int_equal(sub_set_field(&s, SUB_PRODUCTS, "Windows 10／11", &dict, now, &e), 0);
	assert_string_equal(s.products, "windows");
	/* "Win11", "Win10/11": how declarers shorten it (unknown before). */
	assert_int_equal(sub_set_field(&s, SUB_PRODUCTS, "Win11、Office2019", &dict, now, &e), 0);
	assert_string_equal(s.products, "office,windows");
	assert_int_equal(sub_set_field(&s, SUB_PRODUCTS, "Win10/11", &dict, now, &e), 0);
	assert_string_equal(s.products, "windows");
	assert_int_equal(sub_set_field(&s, SUB_PRODUCTS, "特になし", &dict, now, &e), 0);
	assert_string_equal(s.products, "");
	assert_int_equal(sub_set_field(&s, SUB_PRODUCTS, "11", &dict, now, &e), -ERR_INVAL);
	assert_int_equal(sub_set_field(&s, SUB_PRODUCTS, "Google Chrome、windows;WINDOWS", &dict, now, &e), 0);
	assert_int_equal(sub_set_field(&s, SUB_STAR, "★★", &dict, now, &e), 0);
	assert_int_equal(s.star, 2);
	{
		long want;

		assert_int_equal(date_parse("2024-04-01", &want, &e), 0);
		assert_int_equal(sub_set_field(&s, SUB_DECLARED, "令和6年4月1日（月）", &dict, now, &e), 0);
		assert_int_equal(s.declared, want);
		assert_int_equal(sub_set_field(&s, SUB_DECLARED, "令和元年5月1日", &dict, now, &e), 0);
		assert_int_equal(sub_set_field(&s, SUB_DECLARED, "2024年4月1日(月) 0:00", &dict, now, &e), 0);
		assert_int_equal(s.declared, want);
		assert_int_equal(sub_set_field(&s, SUB_DECLARED, "令和x年4月1日", &dict, now, &e), -ERR_INVAL);
		assert_non_null(strstr(e.msg, "'令和x年4月1日'"));
		/* Excel's 和暦 formats write "R6.4.1" (ge.m.d), "令6.4.1"
		 * (gge.m.d) and "令和6.4.1" (ggge.m.d) into the CSV; they
		 * were "not a date". */
		{
			static const char *const wareki[] = { "R6.4.1",
			    "R06.04.01", "r6/4/1", "Ｒ６．４．１", "令6.4.1",
			    "令和6.4.1", "令和6/4/1", "R6.4.1 0:00", "2024.4.1" };

			for (size_t i = 0; i < sizeof(wareki) / sizeof(wareki[0]); i++) {
				s.declared = SUB_NODATE;
				if (sub_set_field(&s, SUB_DECLARED, wareki[i], &dict, now, &e) != 0)
					fail_msg("'%s': %s", wareki[i], e.msg);
				assert_int_equal(s.declared, want);
			}
			assert_int_equal(sub_set_field(&s, SUB_DECLARED, "H31.4.30", &dict, now, &e), 0);
			assert_int_equal(sub_set_field(&s, SUB_ASSESSED, "平成31年4月30日", &dict, now, &e), 0);
			assert_int_equal(s.declared, s.assessed);
			assert_int_equal(sub_set_field(&s, SUB_DECLARED, "H6.4", &dict, now, &e), -ERR_INVAL);
			assert_int_equal(sub_set_field(&s, SUB_DECLARED, "X6.4.1", &dict, now, &e), -ERR_INVAL);
			/* A date cell formatted as a number: said so. */
			assert_int_equal(sub_set_field(&s, SUB_DECLARED, "45383", &dict, now, &e), -ERR_INVAL);
			assert_non_null(strstr(e.msg, "Excel date serial number"));
		}
	}
	assert_int_equal(sub_set_field(&s, SUB_DECLARED, "2024年4月1日", &dict, now, &e), 0);
	assert_int_equal(sub_set_field(&s, SUB_EMPLOYEES, "１，２００人", &dict, now, &e), 0);
	assert_int_equal(s.employees, 1200);
	assert_int_equal(sub_set_field(&s, SUB_ORG, "A\nB", &dict, now, &e), -ERR_INVAL);
	assert_int_equal(sub_add(db, &s, 0, now, &e), 0);
	assert_int_equal(sub_add(db, &s, 0, now, &e), -ERR_EXISTS);

	assert_int_equal(sub_upsert(db, &s, now, 1, &out, &e), 0);
	assert_int_equal(out, SUB_UNCHANGED);
	sub_release(&s);
	sub_init(&s);
	sub_set_field(&s, SUB_EMAIL, "A@example.jp", &dict, now, &e);
	sub_set_field(&s, SUB_ORG, "株式会社A", &dict, now, &e);
	sub_set_field(&s, SUB_LOCALE, "English", &dict, now, &e);
	assert_int_equal(sub_upsert(db, &s, now, 1, &out, &e), 0);
	assert_int_equal(out, SUB_UPDATED);

	sub_init(&got);
	assert_int_equal(sub_get(db, "A@example.jp", &got, &e), 0);
	assert_string_equal(got.locale, "en");
	assert_string_equal(got.products, "chrome,windows");	/* kept */
	assert_int_equal(got.star, 2);
	sub_release(&got);

	assert_int_equal(sub_remove(db, "A@example.jp", 1, now, &e), 0);
	assert_int_equal(sub_get(db, "A@example.jp", &got, &e), -ERR_NOTFOUND);
	assert_int_equal(sub_suppressed(db, "a@EXAMPLE.jp", NULL, &e), 1);
	assert_int_equal(sub_upsert(db, &s, now, 1, &out, &e), 0);
	assert_int_equal(out, SUB_SUPPRESSED);
	sub_release(&s);
	sub_release(&got);
	db_close(db);
	products_release(&dict);
}

/* text_utf8_valid() says what GLib's validator says, on random bytes
 * near UTF-8: every lead byte, truncations, overlongs, surrogates, the end
 * of Unicode, ASCII runs across the 8-byte fast path. */
static void
test_utf8_valid_like_glib(void **state)
{
	static const unsigned char pick[] = { 0x41, 0x7f, 0x80, 0x8f, 0x90,
	    0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe3, 0xed, 0xee,
	    0xef, 0xf0, 0xf3, 0xf4, 0xf5, 0xff, 0x20, 0x61 };
	unsigned seed = 7;
	unsigned char b[24];

	(void)state;
	for (int i = 0; i < 300000; i++) {
		size_t n;

		seed = seed * 1103515245u + 12345u;
		n = (seed >> 16) % sizeof(b);
		for (size_t k = 0; k < n; k++) {
			seed = seed * 1103515245u + 12345u;
			b[k] = (seed >> 20) % 3 == 0 ? 0x61 :
			    pick[(seed >> 16) % sizeof(pick)];
		}
		if (text_utf8_valid((const char *)b, n) !=
		    (g_utf8_validate((const char *)b, (gssize)n, NULL) ? 1 : 0))
			fail_msg("case %d (%zu bytes) differs from GLib", i, n);
	}
}

/* text_scan() agrees with GLib's validator (which refuses NUL too) and
 * counts the 8-bit bytes and finds CR as a byte loop does, on random
 * bytes near UTF-8 with NUL and CR among them, across the fast path. */
static void
test_text_scan(void **state)
{
	static const unsigned char pick[] = { 0x41, 0x00, 0x0d, 0x0a, 0x80,
	    0xbf, 0xc2, 0xdf, 0xe0, 0xe3, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0x20 };
	unsigned seed = 11;
	unsigned char b[40];
	int valid = 0;

	(void)state;
	for (int i = 0; i < 300000; i++) {
		struct text_scan sc;
		size_t n, eight = 0;
		int ok, cr;

		seed = seed * 1103515245u + 12345u;
		n = (seed >> 16) % sizeof(b);
		for (size_t k = 0; k < n; k++) {
			seed = seed * 1103515245u + 12345u;
			b[k] = (seed >> 20) % 4 != 0 ? 0x61 :
			    pick[(seed >> 16) % sizeof(pick)];
			eight += b[k] >= 0x80;
		}
		cr = memchr(b, '\r', n) != NULL;
		ok = text_scan((const char *)b, n, &sc);
		if (ok != (g_utf8_validate((const char *)b, (gssize)n, NULL) ?
		    1 : 0))
			fail_msg("case %d (%zu bytes): valid %d, GLib differs",
			    i, n, ok);
		if (ok && (sc.eight != eight || sc.cr != cr || sc.nul))
			fail_msg("case %d: %zu 8-bit bytes, cr %d, nul %d; "
			    "expected %zu, %d, 0", i, sc.eight, sc.cr, sc.nul,
			    eight, cr);
		if (!ok && memchr(b, '\0', n) != NULL &&
		    text_utf8_valid((const char *)b, n) && !sc.nul)
			fail_msg("case %d: a NUL not reported", i);
		valid += ok;
	}
	assert_true(valid > 10000);
}

/* A message cut by its buffer ends at a whole character, whatever the
 * offset of the cut (1, 2 or 3 bytes into a character), in err_set()
 * and err_prefix() alike. */
static void
test_err_cut_utf8(void **state)
{
	char long_ja[1200 * 3 + 1] = "";
	struct err e = ERR_INIT;

	(void)state;
	for (int i = 0; i < 1200; i++)
		strcat(long_ja, "あ");
	for (int lead = 0; lead < 3; lead++) {
		err_set(&e, ERR_INVAL, "%.*s%s", lead, "xyz", long_ja);
		assert_true(strlen(e.msg) >= sizeof(e.msg) - 4);
		assert_true(text_utf8_valid(e.msg, strlen(e.msg)));
		err_set(&e, ERR_INVAL, "%s", long_ja);
		err_prefix(&e, "%.*s%s", lead, "xyz", long_ja);
		assert_true(strlen(e.msg) >= sizeof(e.msg) - 4);
		assert_true(text_utf8_valid(e.msg, strlen(e.msg)));
		err_set(&e, ERR_INVAL, "%.*s%.99s", lead, "xyz", long_ja);
		err_prefix(&e, "cut");
		assert_true(text_utf8_valid(e.msg, strlen(e.msg)));
		assert_int_equal(strlen(e.msg), 5 + lead + 99);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_cut_utf8),
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_mailbox),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_utf8_valid_like_glib),
		cmocka_unit_test(test_text_scan),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_config_fuzzed),
		cmocka_unit_test(test_products_find),
		cmocka_unit_test(test_products_ambiguous),
		cmocka_unit_test(test_stmt_cache_keeps),
		cmocka_unit_test(test_migrate_honorifics),
		cmocka_unit_test(test_subscriber_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
