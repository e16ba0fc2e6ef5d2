/*
 * test_tag — product tagging with the shipped dictionary
 * (feeds/products.conf) over real-looking titles and the fixtures.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "feed.h"
#include "products.h"
#include "tag.h"
#include "xalloc.h"

struct fix {
	struct products	 p;
	struct tagger	*t;
};

static int
setup(void **state)
{
	const char *src = getenv("SAMAIL_SRCDIR");
	char *path = xasprintf("%s/feeds/products.conf", src ? src : ".");
	struct fix *f = xcalloc(1, sizeof(*f));
	struct err e = ERR_INIT;

	if (products_load(&f->p, path, &e) != 0) {
		fprintf(stderr, "%s\n", e.msg);
		free(path);
		return -1;
	}
	free(path);
	f->t = tag_new(&f->p);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fix *f = *state;

	tag_free(f->t);
	products_release(&f->p);
	free(f);
	return 0;
}

/* Tags of (title, summary, "cpe,cpe"), joined with ','. */
static char *
tags(const struct fix *f, const char *title, const char *summary,
    const char *cpes)
{
	struct strlist c = { 0 }, out = { 0 };
	char *s;

	tag_split(cpes, &c);
	tag_match(f->t, title, summary, &c, &out);
	s = tag_join(&out);
	strlist_release(&c);
	strlist_release(&out);
	return s;
}

#define assert_tags(f, title, summary, cpes, want) do {			\
	char *got_ = tags(f, title, summary, cpes);			\
	if (strcmp(got_, want) != 0)					\
		fail_msg("'%s': got '%s', want '%s'", title, got_, want); \
	free(got_);							\
} while (0)

static void
test_titles(void **state)
{
	const struct fix *f = *state;

	/* IPA's alert titles. */
	assert_tags(f, "Microsoft 製品の脆弱性対策について(2024年10月)", NULL,
	    NULL, "office,windows");
	assert_tags(f, "Oracle Java の脆弱性対策について(CVE-2024-21235等)",
	    NULL, NULL, "java");
	assert_tags(f, "PHPの脆弱性（CVE-2024-4577）を狙う攻撃について", NULL,
	    NULL, "php");
	assert_tags(f, "Windows 10のサポート終了に伴う注意喚起", NULL, NULL,
	    "windows");
	assert_tags(f, "Palo Alto Networks 製 PAN-OS の脆弱性対策について"
	    "(CVE-2024-3400)", NULL, NULL, "paloalto");
	/* JVN's. */
	assert_tags(f, "Fortinet製FortiOSにおける境界外書き込みの脆弱性", NULL,
	    NULL, "fortios");
	assert_tags(f, "WordPress 用プラグイン Forminator における複数の脆弱性",
	    NULL, NULL, "wordpress");
	assert_tags(f, "WordPress 用 Sunshine Photo Cart における信頼できない"
	    "データのデシリアライゼーションに関する脆弱性", NULL, NULL,
	    "wordpress");
	assert_tags(f, "Adobe Acrobat および Reader における複数の脆弱性"
	    "（APSB24-70）", NULL, NULL, "acrobat");
	assert_tags(f, "Ivanti Endpoint Manager における複数の脆弱性", NULL,
	    NULL, "ivanti");
	assert_tags(f, "複数のアイ・オー・データ製ルータにおける OS コマンド"
	    "インジェクションの脆弱性", NULL, NULL, "iodata");
	assert_tags(f, "Apache Tomcat の脆弱性", NULL, NULL, "tomcat");
	/* In the summary only. */
	assert_tags(f, "月例セキュリティ更新", "Google Chrome と Mozilla "
	    "Firefox の脆弱性", NULL, "chrome,firefox");
}

/* Word boundaries for ASCII keywords, and what Japanese text needs. */
static void
test_boundaries(void **state)
{
	const struct fix *f = *state;

	assert_tags(f, "AMI 製 BIOS における脆弱性", NULL, NULL, "");
	assert_tags(f, "PHPMailer における脆弱性", NULL, NULL, "");
	assert_tags(f, "CakePHP における脆弱性", NULL, NULL, "");
	assert_tags(f, "JavaScript ライブラリにおける脆弱性", NULL, NULL, "");
	assert_tags(f, "サイボウズ Office における複数の脆弱性", NULL, NULL, "");
	assert_tags(f, "Chromebook の脆弱性", NULL, NULL, "");
	assert_tags(f, "php 8.3 released", NULL, NULL, "php");
	assert_tags(f, "PHP-FPM の脆弱性", NULL, NULL, "php");
	assert_tags(f, "iOS/iPadOS 18.1 の脆弱性", NULL, NULL, "ios");
	/* Full-width letters, as Japanese writers type them. */
	assert_tags(f, "ＷｏｒｄＰｒｅｓｓ プラグインの脆弱性", NULL, NULL,
	    "wordpress");
	/* A keyword may not span title and summary. */
	assert_tags(f, "… Microsoft", "Edge を更新", NULL, "");
}

/* exclude vetoes the keyword found inside the excluded phrase only. */
static void
test_exclude(void **state)
{
	const struct fix *f = *state;

	assert_tags(f, "Cisco IOS XE Software の Web UI における脆弱性", NULL,
	    NULL, "cisco");
	assert_tags(f, "Zoom Workplace for Windows における脆弱性", NULL, NULL,
	    "zoom");
	assert_tags(f, "Windows Server Update Services の脆弱性", NULL, NULL,
	    "");
	/* Windows named elsewhere still counts. */
	assert_tags(f, "Windows Server Update Services と Windows 11 の脆弱性",
	    NULL, NULL, "windows");
	assert_tags(f, "Cisco IOS と Apple iOS の脆弱性", NULL, NULL,
	    "cisco,ios");
	/* A CPE is never vetoed. */
	assert_tags(f, "Zoom for Windows", NULL, "cpe:/o:microsoft:windows_11",
	    "windows,zoom");
}

static void
test_cpes(void **state)
{
	const struct fix *f = *state;

	assert_tags(f, "x", NULL, "cpe:/o:microsoft:windows_10", "windows");
	assert_tags(f, "x", NULL, "cpe:/o:Microsoft:Windows_Server_2022",
	    "windows");
	assert_tags(f, "x", NULL,
	    "cpe:2.3:a:google:chrome:130.0:*:*:*:*:*:*:*", "chrome");
	assert_tags(f, "x", NULL, "cpe:/a:wordpress:wordpress", "wordpress");
	assert_tags(f, "x", NULL, "cpe:/a:apache:tomcat", "tomcat");
	assert_tags(f, "x", NULL, "cpe:/a:apache:http_server:2.4.62", "apache");
	assert_tags(f, "x", NULL, "cpe:/h:cisco:rv340,cpe:/o:fortinet:fortios",
	    "cisco,fortios");
	assert_tags(f, "x", NULL, "cpe:/a:a-blogcms:a-blog_cms", "");
	assert_tags(f, "x", NULL, "not-a-cpe,cpe:/a", "");
	/* 2.3 escapes: "\:" is inside the product. */
	assert_tags(f, "x", NULL, "cpe:2.3:a:zoom:workplace\\:desktop:*", "zoom");
}

static void
test_keeps_and_sorts(void **state)
{
	const struct fix *f = *state;
	struct strlist out = { 0 };
	char *s;

	(void)state;
	strlist_add(&out, "zoom");
	tag_match(f->t, "OpenSSL と Zoom", NULL, NULL, &out);
	s = tag_join(&out);
	assert_string_equal(s, "openssl,zoom");
	free(s);
	strlist_release(&out);
	tag_split(",a,,b,", &out);
	assert_int_equal(out.n, 2);
	strlist_release(&out);
}

struct tagged {
	const struct fix *f;
	struct strlist	  all[32];
	char		 *ident[32];
	size_t		  n;
};

static int
tag_item_cb(const struct feed_item *it, void *arg)
{
	struct tagged *t = arg;

	if (t->n < 32) {
		memset(&t->all[t->n], 0, sizeof(t->all[t->n]));
		tag_match(t->f->t, it->title, it->summary, &it->cpes,
		    &t->all[t->n]);
		t->ident[t->n++] = xstrdup(*it->ident ? it->ident : it->title);
	}
	return 0;
}

static char *
fixture_tags(const struct fix *f, const char *name, const char *key)
{
	const char *src = getenv("SAMAIL_SRCDIR");
	char *path = xasprintf("%s/tests/data/feeds/%s", src ? src : ".", name);
	struct tagged t = { .f = f };
	struct err e = ERR_INIT;
	struct feed_info info;
	char *found = NULL;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_true(feed_parse_fd(fd, NULL, tag_item_cb, &t, &info, &e) >= 0);
	close(fd);
	feed_info_release(&info);
	for (size_t i = 0; i < t.n; i++) {
		if (found == NULL && strcmp(t.ident[i], key) == 0)
			found = tag_join(&t.all[i]);
		strlist_release(&t.all[i]);
		free(t.ident[i]);
	}
	free(path);
	if (found == NULL)
		fail_msg("no item '%s' in %s", key, name);
	return found;
}

#define assert_fixture(f, file, key, want) do {				\
	char *got_ = fixture_tags(f, file, key);			\
	if (strcmp(got_, want) != 0)					\
		fail_msg("%s '%s': got '%s', want '%s'", file, key,	\
		    got_, want);					\
	free(got_);							\
} while (0)

static void
test_fixtures(void **state)
{
	const struct fix *f = *state;

	assert_fixture(f, "jvn.rdf", "JVNVU#97136265", "office,windows");
	assert_fixture(f, "jvn.rdf", "JVNVU#93250330", "fortios");
	assert_fixture(f, "jvn.rdf", "JVN#13215493", "iodata");
	assert_fixture(f, "jvn.rdf", "JVN#41385617", "");
	assert_fixture(f, "ipa-alert.rdf",
	    "Oracle Java の脆弱性対策について(CVE-2024-21235等)", "java");
	assert_fixture(f, "security-news-rss2.xml",
	    "「FortiOS」の脆弱性、悪用を確認 - 米CISAが注意喚起", "fortios");
	assert_fixture(f, "security-news-rss2.xml",
	    "「サイボウズ Office」に複数の脆弱性 - 最新版で修正", "");
	assert_fixture(f, "myjvn-getAlertList.xml",
	    "WordPress に関するソフトウェア更新情報 (2025年2月12日 公開)",
	    "wordpress");
	assert_fixture(f, "myjvn-getVulnOverviewList.xml", "JVNDB-2025-002953",
	    "wordpress");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_titles),
		cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_exclude),
		cmocka_unit_test(test_cpes),
		cmocka_unit_test(test_keeps_and_sorts),
		cmocka_unit_test(test_fixtures),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
