/* Text wrapping for plain-text parts: widths, kinsoku, URLs, hanging indent. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "wrap.h"

/* Width of one output line in columns. */
static int
cols(const char *s, size_t n)
{
	int w = 0;

	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		unsigned cp;
		size_t k;

		if (c < 0x80) {
			cp = c;
			k = 1;
		} else if (c < 0xe0) {
			cp = ((c & 0x1fu) << 6) | (s[i + 1] & 0x3fu);
			k = 2;
		} else if (c < 0xf0) {
			cp = ((c & 0x0fu) << 12) | ((s[i + 1] & 0x3fu) << 6) |
			    (s[i + 2] & 0x3fu);
			k = 3;
		} else {
			cp = 0x20000;
			k = 4;
		}
		w += wrap_width(cp);
		i += k;
	}
	return w;
}

/* Wrap in, check every line is within max columns unless it is one
 * unbreakable token; returns the output (static). */
static const char *
wrap(const char *in, int width)
{
	static struct buf out = BUF_INIT(0);

	buf_release(&out);
	assert_int_equal(wrap_text(in, strlen(in), width, &out), 0);
	return buf_str(&out);
}

static void
test_widths(void **state)
{
	(void)state;
	assert_int_equal(wrap_width('a'), 1);
	assert_int_equal(wrap_width(0x3042), 2);	/* あ */
	assert_int_equal(wrap_width(0x6f22), 2);	/* 漢 */
	assert_int_equal(wrap_width(0xff21), 2);	/* Ａ */
	assert_int_equal(wrap_width(0x2605), 2);	/* ★ (ambiguous) */
	assert_int_equal(wrap_width(0x25a1), 2);	/* □ */
	assert_int_equal(wrap_width(0xff71), 1);	/* ｱ halfwidth katakana */
}

/* wrap_char(): one code point's columns and bytes, as samail status
 * measures its lines. */
static void
test_char(void **state)
{
	size_t len = 0;

	(void)state;
	assert_int_equal(wrap_char("a", 1, &len), 1);
	assert_int_equal(len, 1);
	assert_int_equal(wrap_char("漢字", 6, &len), 2);
	assert_int_equal(len, 3);
	assert_int_equal(wrap_char("ｱ", 3, &len), 1);
	assert_int_equal(len, 3);
	/* A sequence cut short and a stray byte: one byte at a time. */
	(void)wrap_char("\xe6\x97", 2, &len);
	assert_int_equal(len, 1);
	(void)wrap_char("\x80x", 2, &len);
	assert_int_equal(len, 1);
}

static void
test_short_and_empty(void **state)
{
	(void)state;
	assert_string_equal(wrap("短い行です。\n\nshort line\n", 76),
	    "短い行です。\n\nshort line\n");
	assert_string_equal(wrap("no newline at the end", 76),
	    "no newline at the end");
}

static void
test_japanese_paragraph(void **state)
{
	const char *in = "攻撃の手口は次々に変わります。よくある手口を知っておくことが、"
	    "だまされないための一番の備えです。取引先や宅配業者、銀行などを装った"
	    "メールやSMSで偽のサイトに誘導し、パスワードやカード情報を入力させる"
	    "「フィッシング」がよく使われています。\n";
	const char *out = wrap(in, 76), *p = out;
	size_t total = 0;

	(void)state;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = (size_t)(nl - p);

		/* A hung closing mark may add two columns. */
		assert_true(cols(p, n) <= 78);
		/* kinsoku: no line starts with 、 。 or 」 */
		assert_false(strncmp(p, "、", 3) == 0 || strncmp(p, "。", 3) == 0 ||
		    strncmp(p, "」", 3) == 0);
		/* and none ends with 「 */
		assert_false(n >= 3 && strncmp(nl - 3, "「", 3) == 0);
		total += n;
		p = nl + 1;
	}
	/* Nothing lost or added but the line breaks. */
	assert_int_equal(total + 0, strlen(in) - 1);
	assert_true(strchr(out, '\n') != out + strlen(out) - 1);	/* it did wrap */
}

static void
test_url_kept_whole(void **state)
{
	const char *url = "https://www.ipa.go.jp/security/security-alert/2026/"
	    "1015-ms-very-long-path-that-does-not-fit-on-one-line.html";
	char in[512];
	const char *out;

	(void)state;
	snprintf(in, sizeof(in), "詳しくは次のページをご覧ください。%s を開いて"
	    "ください。\n", url);
	out = wrap(in, 40);
	assert_non_null(strstr(out, url));
	snprintf(in, sizeof(in), "see the words of this sentence go: "
	    "internationalization is one word\n");
	out = wrap(in, 20);
	assert_non_null(strstr(out, "internationalization"));
	assert_null(strstr(out, " \n"));	/* no trailing blanks */

	/* A URL followed by Japanese with no blank between (JVN writes
	 * "詳細はhttps://...を参照してください。"): the URL ends where a
	 * mail client ends the link, at the first byte no URL holds, and
	 * the sentence after it is wrapped; it was all one token, a line
	 * of 190 columns. */
	url = "https://msrc.microsoft.com/update-guide/vulnerability/"
	    "CVE-2026-21001";
	snprintf(in, sizeof(in), "  Microsoft Windows には権限昇格の脆弱性が"
	    "あります。詳細は%sを参照してください。この脆弱性を悪用されると、"
	    "遠隔の第三者によって任意のコードを実行される可能性があります。\n",
	    url);
	out = wrap(in, 76);
	assert_non_null(strstr(out, url));
	for (const char *p = out, *nl; (nl = strchr(p, '\n')) != NULL;
	    p = nl + 1)
		assert_true(cols(p, (size_t)(nl - p)) <= 78);
	assert_int_equal(wrap_url(url, strlen(url)), strlen(url));
	assert_int_equal(wrap_url("https://jvn.jp/を", 19), 15);
	assert_int_equal(wrap_url("<https://jvn.jp/>", 17), 0);
	assert_int_equal(wrap_url("https://jvn.jp/>", 16), 15);
	assert_int_equal(wrap_url("http:/x", 7), 0);
}

static void
test_hanging_indent(void **state)
{
	const char *out;

	(void)state;
	out = wrap("□ IPA「情報セキュリティ10大脅威」に目を通し、社内の朝礼や会議で"
	    "偽メールや偽の警告画面の例を共有しましょう。\n", 40);
	/* The continuation starts under the text after "□ ". */
	assert_non_null(strstr(out, "\n   "));
	out = wrap("  1. Install the updates that your operating system offers as "
	    "soon as they appear, and restart.\n", 30);
	assert_non_null(strstr(out, "\n     "));
}

/* Text in decomposed form (NFD, as macOS writes it: パ is ハ + U+309A)
 * and other joining marks: no width of their own, never split from the
 * character they belong to. */
static void
test_joining_marks(void **state)
{
	/* "パスワードをバックアップしてください。" in NFD, four times. */
	static const char nfd[] = "\xe3\x83\x8f\xe3\x82\x9a\xe3\x82\xb9"
	    "\xe3\x83\xaf\xe3\x83\xbc\xe3\x83\x88\xe3\x82\x99\xe3\x82\x92"
	    "\xe3\x83\x8f\xe3\x82\x99\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xa2"
	    "\xe3\x83\x83\xe3\x83\x95\xe3\x82\x9a\xe3\x81\x97\xe3\x81\xa6"
	    "\xe3\x81\x8f\xe3\x81\x9f\xe3\x82\x99\xe3\x81\x95\xe3\x81\x84"
	    "\xe3\x80\x82";
	char in[1024] = "";
	const char *out, *p;

	(void)state;
	assert_int_equal(wrap_width(0x309a), 0);
	assert_int_equal(wrap_width(0x301), 0);
	assert_int_equal(wrap_width(0x200d), 0);
	for (int i = 0; i < 4; i++)
		strcat(in, nfd);
	for (int width = 10; width <= 76; width++) {
		out = wrap(in, width);
		for (p = out; (p = strchr(p, '\n')) != NULL; p++) {
			/* U+3099/U+309A: e3 82 99/9a */
			assert_false(p[1] != '\0' && strncmp(p + 1, "\xe3\x82\x99", 3) == 0);
			assert_false(p[1] != '\0' && strncmp(p + 1, "\xe3\x82\x9a", 3) == 0);
		}
	}
	/* 19 characters of 2 columns each, 4 times: two lines of 38 at 76. */
	out = wrap(in, 76);
	p = strchr(out, '\n');
	assert_non_null(p);
	assert_int_equal(cols(out, (size_t)(p - out)), 76);
	/* "cafe" + U+0301 before a break: the accent stays with its e. */
	out = wrap("aaaaaaaaa cafe\xcc\x81 bbb", 14);
	assert_string_equal(out, "aaaaaaaaa cafe\xcc\x81\nbbb");
}

/* Half-width katakana (JIS X 0201, from old systems and some vendors'
 * titles): one column each, and its closing marks and small kana
 * (｡ ､ ｣ ｯ ｰ) never start a line, its ｢ never ends one, at any width. */
static void
test_halfwidth_kinsoku(void **state)
{
	const char *in = "ｿﾌﾄｳｪｱ｢ｾｷｭﾘﾃｨ｣ｱｯﾌﾟﾃﾞｰﾄ､ｻｰﾊﾞｰ｡ﾊﾟｯﾁｦﾃｷﾖｳｼﾃｸﾀﾞｻｲ｡"
	    "ｿﾌﾄｳｪｱ｢ｾｷｭﾘﾃｨ｣ｱｯﾌﾟﾃﾞｰﾄ､ｻｰﾊﾞｰ｡ﾊﾟｯﾁｦﾃｷﾖｳｼﾃｸﾀﾞｻｲ｡\n";
	static const char *const no_start[] = { "｡", "､", "｣", "ｯ", "ｰ",
	    "ｪ", "ｭ", "ﾞ", "ﾟ" };

	(void)state;
	assert_int_equal(wrap_width(0xff71), 1);
	for (int width = 8; width <= 40; width++) {
		const char *out = wrap(in, width), *p = out, *nl;

		for (; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
			for (size_t k = 0; k < sizeof(no_start) /
			    sizeof(no_start[0]); k++)
				assert_false(strncmp(p, no_start[k], 3) == 0);
			assert_false(nl - p >= 3 && strncmp(nl - 3, "｢", 3) == 0);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_widths),
		cmocka_unit_test(test_char),
		cmocka_unit_test(test_short_and_empty),
		cmocka_unit_test(test_japanese_paragraph),
		cmocka_unit_test(test_url_kept_whole),
		cmocka_unit_test(test_hanging_indent),
		cmocka_unit_test(test_joining_marks),
		cmocka_unit_test(test_halfwidth_kinsoku),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
