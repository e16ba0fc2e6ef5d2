/*
 * test_feed — every fixture in tests/data/feeds/ parses to what its
 * README says, or fails as it says; hostile documents are refused without
 * touching the files they point at.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "date.h"
#include "buf.h"
#include "err.h"
#include "feed.h"
#include "text.h"
#include "xalloc.h"

struct items {
	struct feed_item **v;
	size_t		   n;
	size_t		   stop_after;	/* abort the parse after this many */
};

static int
collect(const struct feed_item *it, void *arg)
{
	struct items *l = arg;

	if (l->stop_after != 0 && l->n == l->stop_after)
		return -ERR_DB;
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = feed_item_dup(it);
	return 0;
}

static void
items_free(struct items *l)
{
	for (size_t i = 0; i < l->n; i++)
		feed_item_free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static char *
fixture(const char *name)
{
	const char *src = getenv("SAMAIL_SRCDIR");

	return xasprintf("%s/tests/data/feeds/%s", src ? src : ".", name);
}

/* Parse a fixture file through feed_parse_fd, as the fetcher does. */
static int
parse_file(const char *name, struct items *l, struct feed_info *info,
    struct err *e)
{
	char *path = fixture(name);
	struct feed_opts o = { "https://example.jp/feed.rdf" };
	int fd, rc;

	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	rc = feed_parse_fd(fd, &o, collect, l, info, e);
	close(fd);
	free(path);
	return rc;
}

static int
parse_str(const char *doc, const char *base, struct items *l, struct err *e)
{
	struct feed_opts o = { base };
	struct feed_info info;
	int rc;

	rc = feed_parse_mem(doc, strlen(doc), &o, collect, l, &info, e);
	feed_info_release(&info);
	return rc;
}

static void
assert_date(time_t t, const char *want)
{
	char got[32];

	if (want == NULL) {
		assert_int_equal(t, 0);
		return;
	}
	date_format_timestamp(t, got);
	assert_string_equal(got, want);
}

/* "a,b,c" from a list, for compact assertions. */
static char *
joined(const struct strlist *l)
{
	size_t len = 1;
	char *s;

	for (size_t i = 0; i < l->n; i++)
		len += strlen(l->v[i]) + 1;
	s = xcalloc(1, len);
	for (size_t i = 0; i < l->n; i++) {
		if (i > 0)
			strcat(s, ",");
		strcat(s, l->v[i]);
	}
	return s;
}

static void
assert_cves(const struct feed_item *it, const char *want)
{
	char *got = joined(&it->cves);

	assert_string_equal(got, want);
	free(got);
}

static const struct feed_item *
by_ident(const struct items *l, const char *ident)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i]->ident, ident) == 0)
			return l->v[i];
	fail_msg("no item %s", ident);
	return NULL;
}

/* Every item of every feed keeps the boundary promises of feed.h. */
static void
assert_clean(const struct items *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct feed_item *it = l->v[i];
		const char *s[] = { it->id, it->ident, it->title, it->link,
		    it->summary, it->cvss_version, it->cvss_vector,
		    it->severity };

		for (size_t j = 0; j < sizeof(s) / sizeof(s[0]); j++) {
			assert_true(text_utf8_valid(s[j], strlen(s[j])));
			assert_false(text_has_control(s[j]));
		}
		assert_true(*it->id != '\0');
		assert_true(strlen(it->title) <= FEED_MAX_TITLE);
		assert_true(strlen(it->summary) <= FEED_MAX_SUMMARY);
		assert_true(*it->link == '\0' ||
		    strncmp(it->link, "http://", 7) == 0 ||
		    strncmp(it->link, "https://", 8) == 0);
		for (size_t j = 1; j < it->cves.n; j++)
			assert_true(strcmp(it->cves.v[j - 1], it->cves.v[j]) < 0);
	}
}

static void
test_ipa_alert(void **state)
{
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;
	const struct feed_item *it;

	(void)state;
	assert_int_equal(parse_file("ipa-alert.rdf", &l, &info, &e), 15);
	assert_int_equal(info.format, FEED_RSS1);
	assert_string_equal(info.title,
	    "IPAセキュリティセンター:重要なセキュリティ情報");
	assert_int_equal(l.n, 15);
	it = l.v[0];
	assert_string_equal(it->title,
	    "Oracle Java の脆弱性対策について(CVE-2024-21235等)");
	assert_string_equal(it->link,
	    "https://www.ipa.go.jp/security/security-alert/2024/1016-jre.html");
	assert_string_equal(it->id, it->link);
	assert_date(it->published, "2024-10-16T03:00:00Z");
	assert_cves(it, "CVE-2024-21235");
	it = l.v[14];
	assert_string_equal(it->title,
	    "Microsoft 製品の脆弱性対策について(2024年2月)");
	assert_date(it->published, "2024-02-14T03:00:00Z");
	for (size_t i = 0; i < l.n; i++) {
		const char *want = i == 0 ? "CVE-2024-21235" :
		    i == 5 ? "CVE-2024-21147" : i == 7 ? "CVE-2024-4577" :
		    i == 10 ? "CVE-2023-41993" : i == 11 ? "CVE-2024-3400" : "";

		assert_cves(l.v[i], want);
		assert_string_equal(l.v[i]->summary, "");
		assert_true(l.v[i]->cvss < 0);
		assert_int_equal(l.v[i]->cpes.n, 0);
		assert_string_equal(l.v[i]->ident, "");
	}
	assert_clean(&l);
	feed_info_release(&info);
	items_free(&l);
}

static void
test_jvn(void **state)
{
	static const char *const nocve[] = { "JVN#50380251", "JVNTA#97580209" };
	static const char *const nocvss[] = { "JVNVU#90671953",
	    "JVNVU#95382417", "JVN#50380251", "JVNTA#97580209" };
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;
	struct strlist all = { 0 };
	const struct feed_item *it;

	(void)state;
	assert_int_equal(parse_file("jvn.rdf", &l, &info, &e), 20);
	it = l.v[0];
	assert_string_equal(it->ident, "JVN#41385617");
	assert_string_equal(it->title, "a-blog cms における複数の脆弱性");
	assert_string_equal(it->link, "https://jvn.jp/jp/JVN41385617/");
	assert_string_equal(it->id, "https://jvn.jp/jp/JVN41385617/");
	assert_date(it->published, "2024-10-16T05:00:00Z");
	assert_cves(it, "CVE-2024-47619,CVE-2024-47620");
	assert_true(it->cvss == 6.1);
	assert_string_equal(it->cvss_version, "3.0");
	assert_string_equal(it->severity, "Medium");
	assert_string_equal(it->cvss_vector,
	    "CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N");
	assert_int_equal(it->cpes.n, 1);
	assert_string_equal(it->cpes.v[0], "cpe:/a:a-blogcms:a-blog_cms");
	assert_string_equal(it->summary, "アップルップル株式会社が提供する "
	    "a-blog cms には、複数の脆弱性が存在します。");

	for (size_t i = 0; i < l.n; i++)
		for (size_t j = 0; j < l.v[i]->cves.n; j++)
			if (!strlist_has(&all, l.v[i]->cves.v[j]))
				strlist_add(&all, l.v[i]->cves.v[j]);
	assert_int_equal(all.n, 32);
	strlist_release(&all);
	for (size_t i = 0; i < 2; i++)
		assert_int_equal(by_ident(&l, nocve[i])->cves.n, 0);
	for (size_t i = 0; i < 4; i++) {
		it = by_ident(&l, nocvss[i]);
		assert_true(it->cvss < 0);
		assert_string_equal(it->severity, "");
	}
	/* Two sec:cvss (v2 and v3): v3 wins. */
	it = by_ident(&l, "JVN#13215493");
	assert_true(it->cvss == 8.8);
	assert_string_equal(it->cvss_version, "3.0");
	assert_string_equal(it->severity, "High");
	it = by_ident(&l, "JVNVU#97136265");
	assert_date(it->updated, "2024-10-11T00:30:00Z");
	assert_true(it->updated != it->published);
	assert_true(by_ident(&l, "JVNVU#93250330")->updated !=
	    by_ident(&l, "JVNVU#93250330")->published);
	assert_true(by_ident(&l, "JVNVU#99019410")->updated !=
	    by_ident(&l, "JVNVU#99019410")->published);
	assert_true(by_ident(&l, "JVNTA#97580209")->updated !=
	    by_ident(&l, "JVNTA#97580209")->published);
	assert_true(by_ident(&l, "JVN#41385617")->updated ==
	    by_ident(&l, "JVN#41385617")->published);
	assert_true(strncmp(l.v[18]->title, "Veeam Backup & Replication "
	    "における", strlen("Veeam Backup & Replication における")) == 0);
	assert_clean(&l);
	feed_info_release(&info);
	items_free(&l);
}

static void
test_jvndb_new(void **state)
{
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;
	const struct feed_item *it;

	(void)state;
	/* sec: under http://jvn.jp/rss/mod_sec/ (no 3.0/), dates without
	 * seconds, references with leading newlines. */
	assert_int_equal(parse_file("jvndb-new.rdf", &l, &info, &e), 4);
	it = l.v[0];
	assert_string_equal(it->ident, "JVNDB-2023-028579");
	assert_string_equal(it->title, "Contiki-NG における再帰制御に関する脆弱性");
	assert_string_equal(it->link, "https://jvndb.jvn.jp/ja/contents/2023/"
	    "JVNDB-2023-028579.html");
	assert_date(it->published, "2025-04-11T14:52:00Z");
	assert_cves(it, "CVE-2023-29001");
	assert_true(it->cvss == 7.5);
	assert_string_equal(it->severity, "High");
	assert_string_equal(it->cvss_version, "3.0");
	assert_int_equal(it->cpes.n, 1);
	assert_string_equal(it->cpes.v[0], "cpe:/o:contiki-ng:contiki-ng");
	/* The CPE text starts with a newline and spaces in the source. */
	assert_string_equal(l.v[1]->cpes.v[0], "cpe:/a:lg:simple_editor");
	assert_true(l.v[2]->cvss == 9.8);
	assert_string_equal(l.v[2]->severity, "Critical");
	for (size_t i = 0; i < l.n; i++)
		for (size_t j = 0; j < l.v[i]->cves.n; j++)
			assert_true(strncmp(l.v[i]->cves.v[j], "CVE-", 4) == 0);
	assert_clean(&l);
	feed_info_release(&info);
	items_free(&l);
}

static void
test_myjvn_overview(void **state)
{
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(parse_file("myjvn-getVulnOverviewList.xml", &l,
	    &info, &e), 2);
	assert_string_equal(l.v[0]->ident, "JVNDB-2025-002953");
	assert_string_equal(l.v[0]->title, "WordPress 用 Sunshine Photo Cart "
	    "における信頼できないデータのデシリアライゼーションに関する脆弱性");
	assert_date(l.v[0]->published, "2025-04-04T05:45:58Z");
	assert_cves(l.v[0], "CVE-2025-31084");
	assert_true(l.v[0]->cvss == 9.8);
	assert_string_equal(l.v[0]->severity, "Critical");
	assert_string_equal(l.v[0]->cvss_version, "3.0");
	assert_string_equal(l.v[1]->ident, "JVNDB-2025-002884");
	assert_cves(l.v[1], "CVE-2025-23120");
	assert_true(l.v[1]->cvss < 0);
	assert_int_equal(l.v[1]->cpes.n, 2);
	/* Status: more pages exist. */
	assert_int_equal(info.myjvn, 1);
	assert_int_equal(info.myjvn_total, 6);
	assert_int_equal(info.myjvn_returned, 2);
	assert_int_equal(info.myjvn_first, 1);
	assert_clean(&l);
	feed_info_release(&info);
	items_free(&l);
}

static void
test_myjvn_alert_atom(void **state)
{
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(parse_file("myjvn-getAlertList.xml", &l, &info, &e), 2);
	assert_int_equal(info.format, FEED_ATOM);
	assert_string_equal(l.v[0]->title, "MyJVN APIに関するセキュリティ情報");
	assert_string_equal(l.v[0]->id, "MYJVN-ALT-2025-0000");
	assert_string_equal(l.v[0]->link, "https://www.ipa.go.jp/security/");
	assert_date(l.v[0]->published, "2025-04-04T05:45:58Z");
	assert_date(l.v[0]->updated, "2025-04-25T22:36:21Z");
	/* The sub-items' titles and ids are not the entry's. */
	assert_string_equal(l.v[0]->ident, "");
	assert_string_equal(l.v[0]->summary, "更新に関する連絡です。");
	assert_string_equal(l.v[1]->title,
	    "WordPress に関するソフトウェア更新情報 (2025年2月12日 公開)");
	assert_string_equal(l.v[1]->id, "MYJVN-ALT-2025-0011");
	assert_string_equal(l.v[1]->link, "");	/* only a sec:link inside */
	assert_date(l.v[1]->published, "2025-02-12T01:58:02Z");
	assert_int_equal(l.v[1]->cpes.n, 1);
	assert_string_equal(l.v[1]->cpes.v[0], "cpe:/a:wordpress:wordpress");
	assert_clean(&l);
	feed_info_release(&info);
	items_free(&l);
}

static void
test_rss2(void **state)
{
	static const char *const cves[8] = {
		"CVE-2024-21235", "CVE-2024-43572,CVE-2024-43573",
		"CVE-2024-23113", "",
		"CVE-2024-47076,CVE-2024-47175,CVE-2024-47176,CVE-2024-47177",
		"", "CVE-2024-29847", "",
	};
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(parse_file("security-news-rss2.xml", &l, &info, &e), 8);
	assert_int_equal(info.format, FEED_RSS2);
	assert_string_equal(l.v[0]->title,
	    "「Oracle Java」に5件の脆弱性 - アップデートで修正");
	assert_string_equal(l.v[0]->link,
	    "https://news.example.jp/2024/10/16/101203/");
	assert_string_equal(l.v[0]->id, "https://news.example.jp/?p=101203");
	assert_date(l.v[0]->published, "2024-10-16T06:30:00Z");
	/* The description's "[&#8230;]" link text is decoded, tags gone. */
	assert_non_null(strstr(l.v[0]->summary, "修正している。 […]"));
	assert_null(strchr(l.v[0]->summary, '<'));
	for (size_t i = 0; i < 8; i++)
		assert_cves(l.v[i], cves[i]);
	/* Not in date order: item 3 is newer than item 2. */
	assert_true(l.v[2]->published > l.v[1]->published);
	assert_clean(&l);
	feed_info_release(&info);
	items_free(&l);
}

static void
test_atom(void **state)
{
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(parse_file("vendor-advisories.atom", &l, &info, &e), 5);
	assert_string_equal(l.v[0]->title, "EX-SA-2024-0017: Authentication "
	    "bypass in ExampleOS SSL-VPN (CVE-2024-48001)");
	assert_string_equal(l.v[0]->link,
	    "https://psirt.example.com/advisories/EX-SA-2024-0017");
	assert_string_equal(l.v[0]->id,
	    "tag:psirt.example.com,2024:EX-SA-2024-0017");
	assert_date(l.v[0]->published, "2024-10-15T17:00:00Z");
	assert_date(l.v[0]->updated, "2024-10-15T17:05:31Z");
	assert_cves(l.v[0], "CVE-2024-48001");
	assert_date(l.v[1]->published, "2024-10-08T00:00:00Z");
	assert_cves(l.v[1], "CVE-2024-47911,CVE-2024-47912");
	assert_string_equal(l.v[2]->title, "EX-SA-2024-0015: Path traversal in "
	    "Example\xe2\x80\x99s File Share Gateway");
	assert_date(l.v[2]->published, "2024-09-24T18:00:00Z");
	assert_cves(l.v[2], "CVE-2024-45520");
	assert_string_equal(l.v[3]->link,
	    "https://psirt.example.com/advisories/EX-SA-2024-0014");
	assert_cves(l.v[3], "CVE-2024-6387");
	assert_date(l.v[4]->published, "2024-06-11T12:00:00Z");
	assert_date(l.v[4]->updated, "2024-06-11T12:00:00Z");
	assert_cves(l.v[4], "");
	assert_clean(&l);
	feed_info_release(&info);
	items_free(&l);
}

static void
test_empty_channel(void **state)
{
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(parse_file("edge-empty-channel.rdf", &l, &info, &e), 0);
	assert_int_equal(l.n, 0);
	assert_int_equal(info.format, FEED_RSS1);
	feed_info_release(&info);
}

static void
test_missing_link(void **state)
{
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(parse_file("edge-missing-link.rdf", &l, &info, &e), 3);
	assert_string_equal(l.v[0]->link,
	    "https://www.ipa.go.jp/security/security-alert/2024/1009-ms.html");
	assert_string_equal(l.v[1]->link,
	    "https://www.ipa.go.jp/security/security-alert/2024/0911-ms.html");
	assert_string_equal(l.v[2]->link,
	    "https://www.ipa.go.jp/security/security-alert/2024/0814-ms.html");
	feed_info_release(&info);
	items_free(&l);

	assert_int_equal(parse_file("edge-missing-link.xml", &l, &info, &e), 4);
	assert_string_equal(l.v[0]->link,
	    "https://www.example.co.jp/security/2024/rx200-124.html");
	assert_string_equal(l.v[1]->link,
	    "https://www.example.co.jp/security/2024/nx10.html");
	assert_string_equal(l.v[2]->link, "");
	assert_string_equal(l.v[3]->link, "");	/* not mined from the text */
	assert_cves(l.v[0], "CVE-2024-47911");
	assert_cves(l.v[3], "CVE-2024-45841");
	assert_date(l.v[0]->published, "2024-10-08T01:00:00Z");
	assert_date(l.v[1]->published, "2024-09-30T06:00:00Z");
	assert_date(l.v[2]->published, "2024-09-27T00:00:00Z");
	assert_date(l.v[3]->published, "2024-09-26T00:00:00Z");
	/* No guid, no link: still a stable id, from the content. */
	assert_string_equal(l.v[2]->id, "notice-2024-12");
	assert_true(strncmp(l.v[3]->id, "sha256:", 7) == 0);
	assert_clean(&l);
	feed_info_release(&info);
	items_free(&l);
}

static void
test_cdata_html(void **state)
{
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(parse_file("edge-cdata-html.xml", &l, &info, &e), 4);
	assert_string_equal(l.v[0]->title,
	    "【緊急】「Example VPN」の脆弱性 & 回避策");
	assert_string_equal(l.v[1]->title, "alert(1)Apache Tomcat の脆弱性");
	assert_string_equal(l.v[2]->title, "CDATA with ]]> inside");
	assert_string_equal(l.v[3]->title,
	    "\xf0\x9f\x9a\xa8 【注意喚起】 フィッシング メールに注意");
	assert_string_equal(l.v[0]->summary, "CVE-2024-48001 の詳細。alert('x')");
	assert_string_equal(l.v[2]->summary, "a ]]> b");
	assert_cves(l.v[0], "CVE-2024-48001");
	assert_cves(l.v[1], "CVE-2024-38286");
	for (size_t i = 0; i < l.n; i++) {
		assert_null(strchr(l.v[i]->title, '<'));
		assert_null(strstr(l.v[i]->summary, "<script"));
	}
	assert_clean(&l);
	feed_info_release(&info);
	items_free(&l);
}

static void
test_dates_fixture(void **state)
{
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(parse_file("edge-dates.xml", &l, &info, &e), 15);
	for (size_t i = 0; i < 15; i++) {
		int d = (int)i + 1;
		const char *want = d == 8 ? "2024-10-08T15:00:00Z" :
		    d == 11 || d == 12 || d == 13 ? NULL :
		    "2024-10-09T03:00:00Z";

		assert_date(l.v[i]->published, want);
	}
	feed_info_release(&info);
	items_free(&l);
}

/* Text that only looks like markup stays; CVE ids and CPEs are found
 * everywhere, also past what the summary keeps. */
static void
test_text_cves_cpes(void **state)
{
	struct items l = { 0 };
	struct err e = ERR_INIT;
	struct buf doc = BUF_INIT(0);
	const struct feed_item *a, *b, *c, *d;

	(void)state;
	buf_addstr(&doc, "<?xml version=\"1.0\"?>\n<rss version=\"2.0\" "
	    "xmlns:content=\"http://purl.org/rss/1.0/modules/content/\">"
	    "<channel><title>t</title>"
	    "<item><guid>a</guid><title><![CDATA[Ivanti Connect Secure の脆弱性 "
	    "<CVE-2025-0282>]]></title><description><![CDATA[<p>Set "
	    "<AllowOverride None> in <b>httpd.conf</b></p>]]></description></item>"
	    "<item><guid>b</guid><title>月例</title><description><![CDATA[<p>");
	for (int i = 0; i < 60; i++)
		buf_addstr(&doc, "マイクロソフトから、セキュリティ更新プログラムが公開されました。");
	buf_addstr(&doc, "</p><p>対象: CVE-2025-26600, CVE-2025-26629</p>]]>"
	    "</description></item>"
	    "<item><guid>c</guid><title>WordPress</title><description>抜粋"
	    "</description><content:encoded><![CDATA[<p>抜粋の続き "
	    "CVE-2025-1111</p>]]></content:encoded></item>"
	    "</channel></rss>");
	assert_int_equal(parse_str(buf_str(&doc), NULL, &l, &e), 3);
	assert_int_equal(l.n, 3);
	a = l.v[0];
	b = l.v[1];
	c = l.v[2];
	assert_string_equal(a->title, "Ivanti Connect Secure の脆弱性 <CVE-2025-0282>");
	assert_string_equal(a->summary, "Set <AllowOverride None> in httpd.conf");
	assert_int_equal(a->cves.n, 1);
	assert_string_equal(a->cves.v[0], "CVE-2025-0282");
	assert_int_equal(b->cves.n, 2);
	assert_string_equal(b->cves.v[1], "CVE-2025-26629");
	assert_non_null(strstr(b->summary, "CVE-2025-26629"));
	assert_string_equal(c->summary, "抜粋の続き CVE-2025-1111");
	assert_int_equal(c->cves.n, 1);
	items_free(&l);
	memset(&l, 0, sizeof(l));

	/* Atom type="text" is plain text; JVN's sec:cpe-item names a CPE. */
	buf_reset(&doc);
	buf_addstr(&doc, "<feed xmlns=\"http://www.w3.org/2005/Atom\" "
	    "xmlns:sec=\"http://jvn.jp/rss/mod_sec/\"><title>t</title>"
	    "<entry><id>urn:x:1</id><title type=\"text\">Ivanti &lt;CVE-2025-0282&gt; "
	    "exploited</title><summary>a &lt;b&gt; b</summary>"
	    "<content type=\"text/html\">&lt;p&gt;the &lt;b&gt;html&lt;/b&gt; content&lt;/p&gt;</content>"
	    "<sec:cpe-item name=\"cpe:/a:openssl:openssl\"><sec:title>OpenSSL"
	    "</sec:title></sec:cpe-item></entry></feed>");
	assert_int_equal(parse_str(buf_str(&doc), NULL, &l, &e), 1);
	assert_int_equal(l.n, 1);
	d = l.v[0];
	assert_string_equal(d->title, "Ivanti <CVE-2025-0282> exploited");
	/* type="text/html" (a MIME type, RFC 4287 4.1.3) is HTML: stripped;
	 * the longer content is the summary. */
	assert_string_equal(d->summary, "the html content");
	assert_int_equal(d->cves.n, 1);
	assert_int_equal(d->cpes.n, 1);
	assert_string_equal(d->cpes.v[0], "cpe:/a:openssl:openssl");
	items_free(&l);
	buf_release(&doc);
}

static void
test_parse_date(void **state)
{
	static const struct { const char *in, *out; } t[] = {
		{ "Wed, 09 Oct 2024 12:00:00 +0900", "2024-10-09T03:00:00Z" },
		{ "Wed, 09 Oct 99 12:00:00 +0000", "1999-10-09T12:00:00Z" },
		{ "9 oct 2024 3:00 GMT", "2024-10-09T03:00:00Z" },
		{ "Wed, 09 Oct 2024 12:00:00", "2024-10-09T03:00:00Z" },
		{ "Tue, 08 Oct 2024 20:00:00 PDT", "2024-10-09T03:00:00Z" },
		{ "Wed, 09 Oct 2024 12:00:00 +09:00", "2024-10-09T03:00:00Z" },
		{ "2024-10-09", "2024-10-08T15:00:00Z" },
		{ "2024/10/09 12:00", "2024-10-09T03:00:00Z" },
		{ "2024-10-09 12:00:00", "2024-10-09T03:00:00Z" },
		{ "2024-10-09T12:00:00", "2024-10-09T03:00:00Z" },
		{ "2024-10-09T03:00:00.5Z", "2024-10-09T03:00:00Z" },
		{ "2024-10-08T23:00:00-04:00", "2024-10-09T03:00:00Z" },
		{ "2024-10-09T12:00:00+0900", "2024-10-09T03:00:00Z" },
		{ " 2024-10-09T12:00+09:00\n ", "2024-10-09T03:00:00Z" },
		{ "2016-12-31T23:59:60Z", "2016-12-31T23:59:59Z" },
		{ "Tue, 1 Apr 2025 10:00:00 +0900 (JST)", "2025-04-01T01:00:00Z" },
		{ "Tue, 1 Apr 2025 10:00:00 GMT+0900", "2025-04-01T01:00:00Z" },
		{ "Tue, 1 Apr 2025 10:00:00 GMT+09:00", "2025-04-01T01:00:00Z" },
		/* An offset and its name, as a word or a comment. */
		{ "Mon, 01 Apr 2024 09:00:00 +0900 JST", "2024-04-01T00:00:00Z" },
		{ "Mon, 01 Apr 2024 09:00:00 +0900 (JST)", "2024-04-01T00:00:00Z" },
		{ "Mon, 01 Apr 2024 09:00:00 -0000 UTC", "2024-04-01T09:00:00Z" },
		/* Java's Date.toString(), C's asctime (no zone: Japan). */
		{ "Mon Apr 01 09:00:00 JST 2024", "2024-04-01T00:00:00Z" },
		{ "Mon Apr 01 09:00:00 CEST 2024", "2024-04-01T07:00:00Z" },
		{ "Mon Apr  1 09:00:00 2024", "2024-04-01T00:00:00Z" },
		/* RFC 850 */
		{ "Monday, 01-Apr-24 09:00:00 GMT", "2024-04-01T09:00:00Z" },
		{ "Sunday, 31-Mar-2024 20:00:00 PDT", "2024-04-01T03:00:00Z" },
		/* Named zones. */
		{ "Mon, 01 Apr 2024 09:00:00 UT", "2024-04-01T09:00:00Z" },
		{ "Mon, 01 Apr 2024 09:00:00 UTC", "2024-04-01T09:00:00Z" },
		{ "Mon, 01 Apr 2024 09:00:00 Z", "2024-04-01T09:00:00Z" },
		{ "Mon, 01 Apr 2024 09:00:00 CET", "2024-04-01T08:00:00Z" },
		{ "Mon, 01 Apr 2024 09:00:00 CEST", "2024-04-01T07:00:00Z" },
		{ "Mon, 01 Apr 2024 09:00:00 BST", "2024-04-01T08:00:00Z" },
		{ "Mon, 01 Apr 2024 09:00:00 EST", "2024-04-01T14:00:00Z" },
		{ "Mon, 01 Apr 2024 09:00:00 MDT", "2024-04-01T15:00:00Z" },
		{ "Mon, 01 Apr 2024 09:00:00 cst", "2024-04-01T15:00:00Z" },
		{ "Mon, 01 Apr 2024 09:00:00 KST", "2024-04-01T00:00:00Z" },
		{ "Mon, 01 Apr 2024 09:00:00 HKT", "2024-04-01T01:00:00Z" },
		{ "Mon, 01 Apr 2024 09:00:00 SGT", "2024-04-01T01:00:00Z" },
		{ "Mon, 01 Apr 2024 09:00:00 AEST", "2024-03-31T23:00:00Z" },
		{ "Mon, 01 Apr 2024 09:00:00 ACST", "2024-03-31T23:30:00Z" },
		{ "Mon, 01 Apr 2024 09:00:00 NZDT", "2024-03-31T20:00:00Z" },
		/* Japanese sites' ISO-ish dates: Japan time. */
		{ "2024-4-1 9:00", "2024-04-01T00:00:00Z" },
		{ "2024/04/01 09:00", "2024-04-01T00:00:00Z" },
		{ "2024/4/1", "2024-03-31T15:00:00Z" },
		{ "2024-04-01 09:00:00 JST", "2024-04-01T00:00:00Z" },
		{ "2024-04-01T09:00:00 +0900", "2024-04-01T00:00:00Z" },
		/* Still no date. */
		{ "Mon, 01 Apr 2024 09:00:00 IST", NULL },	/* which IST? */
		{ "Mon, 01 Apr 2024 09:00:00 +0900 yesterday", NULL },
		{ "Mon, 01 Apr 2024 09:00:00 +0900 JST 2024", NULL },
		{ "Mon Apr 01 09:00:00 XYZ 2024", NULL },
		{ "Mon Apr 01 09:00:00 JST", NULL },
		{ "Mon Apr 01 2024", NULL },
		{ "01-Apr 2024 09:00 GMT", NULL },
		{ "2024-04-01 9", NULL },
		{ "2024-04-01T09:00:00Zulu", NULL },
		{ "Tue, 1 Apr 2025 10:00:00 +0900 (unclosed", NULL },
		{ "Tue, 1 Apr 2025 10:00:00 JST+0900", NULL },
		{ "", NULL }, { "   ", NULL }, { "yesterday", NULL },
		{ "2024-02-30", NULL }, { "2024-10-09T24:00:00Z", NULL },
		{ "Thu, 10 Oct 2024 25:61:00 +0900", NULL },
		{ "2024年10月9日 12時00分", NULL },
		{ "Wed, 09 Oct 2024 12:00:00 XYZ", NULL },
		{ "2024-10-09T12:00:00+25:00", NULL },
		{ "2024-10-09T12:00:00Z trailing", NULL },
		{ "1969-12-31T23:59:59Z", NULL },
		{ "Wed, 09 Foo 2024 12:00:00 GMT", NULL },
		{ "09 Oct 202 12:00 GMT", NULL },
	};
	time_t tt;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int rc = feed_parse_date(t[i].in, &tt);

		if (t[i].out == NULL) {
			if (rc != -1)
				fail_msg("'%s' parsed", t[i].in);
			continue;
		}
		if (rc != 0)
			fail_msg("'%s' did not parse", t[i].in);
		assert_date(tt, t[i].out);
	}
	assert_int_equal(feed_parse_date(NULL, &tt), -1);
}

/* The CSS of a <style> element (WordPress blocks, page builders) is not
 * summary text; a <script>'s text stays, as plain text. */
static void
test_style_dropped(void **state)
{
	struct items l = { 0 };
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(parse_str("<rss version=\"2.0\"><channel><title>t"
	    "</title>"
	    "<item><guid>a</guid><title>a</title><description><![CDATA["
	    "<style type=\"text/css\">p{color:red}.wp-block{margin:0}</style>"
	    "<p>本文です。</p>]]></description></item>"
	    "<item><guid>b</guid><title>b</title><description>"
	    "&lt;p&gt;前&lt;/p&gt;&lt;STYLE&gt;#x { display: none }&lt;/STYLE&gt;"
	    "&lt;p&gt;後&lt;/p&gt;</description></item>"
	    "<item><guid>c</guid><title><![CDATA[c<style>h1{}</style>d]]></title>"
	    "<description><![CDATA[<div><style>a{}</style>x "
	    "<script>alert('y')</script> z</div>]]></description></item>"
	    "</channel></rss>", NULL, &l, &e), 3);
	assert_string_equal(l.v[0]->summary, "本文です。");
	assert_string_equal(l.v[1]->summary, "前 後");
	assert_string_equal(l.v[2]->title, "cd");
	assert_string_equal(l.v[2]->summary, "x alert('y') z");
	items_free(&l);
}

static void
test_encodings(void **state)
{
	struct items a = { 0 }, b = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(parse_file("edge-shift_jis.rdf", &a, &info, &e), 3);
	feed_info_release(&info);
	assert_int_equal(parse_file("edge-euc-jp.rdf", &b, &info, &e), 3);
	feed_info_release(&info);
	assert_string_equal(a.v[0]->title, "業務用複合機「ソフト表示」シリーズに"
	    "おける認証不備の脆弱性について");
	assert_string_equal(a.v[0]->link,
	    "https://www.example.co.jp/security/2024/1010.html");
	assert_date(a.v[0]->published, "2024-10-10T01:00:00Z");
	assert_cves(a.v[0], "CVE-2024-45520");
	assert_string_equal(a.v[1]->title,
	    "予約管理システム「能登」における SQL インジェクションの脆弱性");
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(a.v[i]->title, b.v[i]->title);
		assert_string_equal(a.v[i]->link, b.v[i]->link);
		assert_string_equal(a.v[i]->summary, b.v[i]->summary);
		assert_int_equal(a.v[i]->published, b.v[i]->published);
	}
	assert_clean(&a);
	items_free(&a);
	items_free(&b);
}

/* What Japanese servers that say Shift_JIS really send is CP932: NEC
 * extensions (①) must decode, and 0x7E in a URL must stay '~'. */
static void
test_cp932(void **state)
{
	static const char doc[] =
	    "<?xml version=\"1.0\" encoding=\"Shift_JIS\"?>\n"
	    "<rss version=\"2.0\"><channel><item>"
	    "<title>\x87\x40 \x83\x5c\x83\x74\x83\x67</title>"
	    "<link>https://example.jp/~user/a.html</link>"
	    "</item></channel></rss>";
	struct items l = { 0 };
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(parse_str(doc, NULL, &l, &e), 1);
	assert_string_equal(l.v[0]->title, "① ソフト");
	assert_string_equal(l.v[0]->link, "https://example.jp/~user/a.html");
	items_free(&l);
}

static void
test_duplicates(void **state)
{
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;

	(void)state;
	/* The parser reports what is there; the store dedups by id. */
	assert_int_equal(parse_file("edge-duplicates.rdf", &l, &info, &e), 6);
	assert_string_equal(l.v[0]->id, "https://jvn.jp/jp/JVN41385617/");
	assert_string_equal(l.v[1]->id, "https://jvn.jp/jp/JVN41385617/");
	assert_string_equal(l.v[2]->id, "https://jvn.jp/vu/JVNVU99019410/");
	assert_date(l.v[2]->updated, "2024-09-27T08:00:00Z");
	assert_string_equal(l.v[3]->id,
	    "https://jvn.jp/vu/JVNVU99019410/index.html");
	assert_string_equal(l.v[3]->title, "CUPS における複数の脆弱性（更新）");
	assert_date(l.v[3]->updated, "2024-10-01T01:00:00Z");
	assert_cves(l.v[3], "CVE-2024-47176,CVE-2024-47177");
	assert_string_equal(l.v[4]->id, "https://jvn.jp/jp/JVN59212396/");
	assert_cves(l.v[4], "CVE-2024-46897");
	assert_string_equal(l.v[5]->id, "http://jvn.jp/jp/JVN59212396/");
	assert_cves(l.v[5], "");
	assert_string_equal(l.v[5]->ident, "JVN#59212396");
	feed_info_release(&info);
	items_free(&l);
}

static void
test_truncated(void **state)
{
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(parse_file("edge-truncated.rdf", &l, &info, &e),
	    -ERR_PARSE);
	assert_non_null(strstr(e.msg, "line"));
	feed_info_release(&info);
	items_free(&l);
}

/* Run gen-large.sh into a temporary directory; returns the path. */
static char *
generate(const char *args, const char *name)
{
	char *dir = xstrdup("/tmp/samail-feed-XXXXXX"), *path, *cmd, *gen;

	assert_non_null(mkdtemp(dir));
	path = xasprintf("%s/%s", dir, name);
	gen = fixture("gen-large.sh");
	cmd = xasprintf("sh '%s' %s '%s' >/dev/null", gen, args, path);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(gen);
	free(dir);
	return path;
}

static void
remove_generated(char *path)
{
	char *slash = strrchr(path, '/');

	unlink(path);
	*slash = '\0';
	rmdir(path);
	free(path);
}

static void
test_large(void **state)
{
	char *path = generate("", "large.rdf");
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;
	struct feed_opts o = { NULL };
	int fd = open(path, O_RDONLY);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(feed_parse_fd(fd, &o, collect, &l, &info, &e), 5600);
	close(fd);
	assert_string_equal(l.v[0]->title,
	    "サンプル製品000001 における複数の脆弱性 (CVE-2024-10001)");
	assert_string_equal(l.v[0]->link,
	    "https://large.example.jp/advisories/000001");
	assert_date(l.v[0]->published, "2024-09-01T16:01:00Z");
	assert_cves(l.v[5599], "CVE-2024-15600");
	assert_date(l.v[5599]->published, "2024-08-31T23:20:00Z");
	feed_info_release(&info);
	items_free(&l);
	remove_generated(path);
}

static void
test_huge_text(void **state)
{
	char *path = generate("--huge-text", "huge.rdf");
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;
	struct feed_opts o = { NULL };
	int fd = open(path, O_RDONLY);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(feed_parse_fd(fd, &o, collect, &l, &info, &e),
	    -ERR_TOOBIG);
	assert_int_equal(l.n, 0);
	close(fd);
	feed_info_release(&info);
	remove_generated(path);
}

/*
 * Parse doc with an inotify watch on secret: the parse must deliver
 * nothing containing the secret and never open the file; with msg_part,
 * it must also fail with a message containing it.
 */
static void
assert_refused_without_opening(const char *doc, const char *secret_path,
    const char *secret, const char *msg_part)
{
	struct items l = { 0 };
	struct err e = ERR_INIT;
	char ev[4096];
	int in, wd, rc;
	ssize_t n;

	in = inotify_init1(IN_NONBLOCK);
	assert_true(in >= 0);
	wd = inotify_add_watch(in, secret_path, IN_OPEN | IN_ACCESS);
	assert_true(wd >= 0);
	rc = parse_str(doc, "https://evil.example/feed", &l, &e);
	if (msg_part != NULL) {
		assert_true(rc < 0);
		if (strstr(e.msg, msg_part) == NULL)
			fail_msg("message '%s' lacks '%s'", e.msg, msg_part);
	}
	for (size_t i = 0; i < l.n; i++) {
		assert_null(strstr(l.v[i]->title, secret));
		assert_null(strstr(l.v[i]->summary, secret));
	}
	n = read(in, ev, sizeof(ev));
	assert_true(n < 0 && errno == EAGAIN);	/* no event: never opened */
	close(in);
	items_free(&l);
}

static void
test_xxe(void **state)
{
	char *xxe = fixture("edge-xxe.xml"), *doc;
	FILE *fp = fopen(xxe, "r");
	char buf[4096];
	size_t n;

	(void)state;
	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	assert_refused_without_opening(buf, "/etc/passwd", "root:", "'xxe'");
	free(xxe);

	/* The same with a secret of our own, and the other ways in:
	 * parameter entities, an external DTD subset, a DTD declaring an
	 * entity in an included parameter entity. */
	{
		char dir[] = "/tmp/samail-xxe-XXXXXX", *secret, *dtd;
		static const char body[] =
		    "<rss version=\"2.0\"><channel><item><title>t &x;</title>"
		    "</item></channel></rss>";

		assert_non_null(mkdtemp(dir));
		secret = xasprintf("%s/secret", dir);
		dtd = xasprintf("%s/x.dtd", dir);
		fp = fopen(secret, "w");
		fputs("SECRET-7f3a", fp);
		fclose(fp);
		fp = fopen(dtd, "w");
		fprintf(fp, "<!ENTITY x SYSTEM \"file://%s\">", secret);
		fclose(fp);

		doc = xasprintf("<?xml version=\"1.0\"?><!DOCTYPE rss [<!ENTITY "
		    "%% p SYSTEM \"file://%s\"> %%p;]>%s", secret, body);
		assert_refused_without_opening(doc, secret, "SECRET", "'p'");
		free(doc);
		/* An external subset is not loaded; the undeclared &x; is
		 * skipped, as XML allows a non-validating parser to. */
		doc = xasprintf("<?xml version=\"1.0\"?><!DOCTYPE rss SYSTEM "
		    "\"file://%s\">%s", dtd, body);
		assert_refused_without_opening(doc, dtd, "SECRET", NULL);
		free(doc);
		doc = xasprintf("<?xml version=\"1.0\"?><!DOCTYPE rss [<!ENTITY "
		    "%% d SYSTEM \"file://%s\"> %%d;]>%s", dtd, body);
		assert_refused_without_opening(doc, dtd, "SECRET", "entity");
		free(doc);
		doc = xasprintf("<?xml version=\"1.0\"?><!DOCTYPE rss [<!ENTITY "
		    "x SYSTEM \"file://%s\">]>%s", secret, body);
		assert_refused_without_opening(doc, secret, "SECRET", "'x'");
		free(doc);
		unlink(secret);
		unlink(dtd);
		rmdir(dir);
		free(secret);
		free(dtd);
	}
}

static void
test_billion_laughs(void **state)
{
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(parse_file("edge-billion-laughs.rdf", &l, &info, &e),
	    -ERR_PARSE);
	assert_non_null(strstr(e.msg, "entity"));
	assert_int_equal(l.n, 0);
	feed_info_release(&info);
}

/* A DOCTYPE with no entities (old RSS 0.91 feeds) is fine: the external
 * DTD is not loaded. */
static void
test_doctype_without_entities(void **state)
{
	static const char doc[] =
	    "<?xml version=\"1.0\"?>\n<!DOCTYPE rss PUBLIC \"-//Netscape "
	    "Communications//DTD RSS 0.91//EN\" "
	    "\"http://my.netscape.com/publish/formats/rss-0.91.dtd\">\n"
	    "<rss version=\"0.91\"><channel><title>c</title><item>"
	    "<title>old &amp; fine</title><link>https://a.example/1</link>"
	    "</item></channel></rss>";
	struct items l = { 0 };
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(parse_str(doc, NULL, &l, &e), 1);
	assert_string_equal(l.v[0]->title, "old & fine");
	items_free(&l);
}

static void
test_not_a_feed(void **state)
{
	struct items l = { 0 };
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(parse_str("<html><body>503</body></html>", NULL, &l,
	    &e), -ERR_PARSE);
	assert_non_null(strstr(e.msg, "not an RSS or Atom feed"));
	assert_int_equal(parse_str("", NULL, &l, &e), -ERR_PARSE);
	assert_int_equal(parse_str("<rss version=\"2.0\"><channel><item>"
	    "<title>x</title></item></channel>", NULL, &l, &e), -ERR_PARSE);
	/* Undeclared entity: no DTD to define it, so not well-formed. */
	assert_int_equal(parse_str("<rss><channel><item><title>&nbsp;</title>"
	    "</item></channel></rss>", NULL, &l, &e), -ERR_PARSE);
	/* Invalid UTF-8 in a document that says UTF-8. */
	assert_int_equal(parse_str("<rss><channel><item><title>\xff\xfe</title>"
	    "</item></channel></rss>", NULL, &l, &e), -ERR_PARSE);
	items_free(&l);
}

/*
 * Blank lines before the XML declaration (a WordPress theme or plugin that
 * prints a newline first): read, from memory and from a file, and the
 * declaration's encoding still wins over the server's charset.  Without
 * the skip: "XML declaration allowed only at the start of the document",
 * every run.  Anything else before it is still refused.
 */
static void
test_blanks_before_decl(void **state)
{
	static const char doc[] = "\r\n\n \t<?xml version=\"1.0\" "
	    "encoding=\"Shift_JIS\"?>\n<rss version=\"2.0\"><channel>"
	    "<title>t</title><item><title>\x90\xc6\x8e\xe3\x90\xab</title>"
	    "<link>https://example.jp/1</link></item></channel></rss>\n";
	struct feed_opts o = { NULL, "UTF-8" };
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;
	char path[256];
	const char *tmp = getenv("TMPDIR");
	int fd;

	(void)state;
	assert_int_equal(feed_parse_mem(doc, sizeof(doc) - 1, &o, collect, &l,
	    &info, &e), 1);
	feed_info_release(&info);
	assert_string_equal(l.v[0]->title, "脆弱性");
	assert_string_equal(l.v[0]->link, "https://example.jp/1");

	snprintf(path, sizeof(path), "%s/samail-feed.XXXXXX",
	    tmp != NULL && *tmp ? tmp : "/tmp");
	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(write(fd, doc, sizeof(doc) - 1), (ssize_t)sizeof(doc) - 1);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(feed_parse_fd(fd, &o, collect, &l, &info, &e), 1);
	feed_info_release(&info);
	close(fd);
	unlink(path);
	assert_string_equal(l.v[1]->title, "脆弱性");

	/* Only white space is skipped, and only before a declaration. */
	assert_int_equal(parse_str("\n<!-- x --><?xml version=\"1.0\"?>"
	    "<rss version=\"2.0\"><channel></channel></rss>", NULL, &l, &e),
	    -ERR_PARSE);
	assert_int_equal(parse_str("\nx<?xml version=\"1.0\"?>"
	    "<rss version=\"2.0\"><channel></channel></rss>", NULL, &l, &e),
	    -ERR_PARSE);
	assert_int_equal(parse_str("\n\n<rss version=\"2.0\"><channel><item>"
	    "<title>no declaration</title></item></channel></rss>", NULL, &l,
	    &e), 1);
	items_free(&l);
}

/* Parse doc from a temporary file (the path fetch uses: pread ahead). */
static int
parse_fd_str(const char *doc, size_t len, const struct feed_opts *o,
    struct items *l, struct err *e)
{
	struct feed_info info;
	char path[256];
	const char *tmp = getenv("TMPDIR");
	int fd, rc;

	snprintf(path, sizeof(path), "%s/samail-feed.XXXXXX",
	    tmp != NULL && *tmp ? tmp : "/tmp");
	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(write(fd, doc, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	rc = feed_parse_fd(fd, o, collect, l, &info, e);
	feed_info_release(&info);
	close(fd);
	unlink(path);
	return rc;
}

/*
 * The server's charset against the document's own declaration.  The
 * declaration wins (servers label every file with their default), except
 * when the document is not in the encoding it declares and is in the
 * server's: a template's encoding="UTF-8" in front of a body the site
 * sends in Shift_JIS, served as charset=Shift_JIS, failed with 65.
 */
static void
test_server_charset(void **state)
{
	static const char sjis_body[] =
	    "<rss version=\"2.0\"><channel><title>t</title><item>"
	    "<title>\x87\x40 \x83\x5c\x83\x74\x83\x67</title>"
	    "<link>https://example.jp/~user/a.html</link>"
	    "</item></channel></rss>";
	struct feed_opts sjis = { NULL, "Shift_JIS" }, utf8 = { NULL, "UTF-8" },
	    latin1 = { NULL, "ISO-8859-1" };
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;
	struct buf b;
	char *doc;

	(void)state;
	/* Declared UTF-8, really Shift_JIS, and the server says so. */
	doc = xasprintf("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n%s",
	    sjis_body);
	assert_int_equal(feed_parse_mem(doc, strlen(doc), &sjis, collect, &l,
	    &info, &e), 1);
	feed_info_release(&info);
	assert_string_equal(l.v[0]->title, "① ソフト");
	assert_string_equal(l.v[0]->link, "https://example.jp/~user/a.html");
	/* Without the server's word it is what it is: not UTF-8. */
	assert_int_equal(parse_str(doc, NULL, &l, &e), -ERR_PARSE);
	assert_non_null(strstr(e.msg, "UTF-8"));
	free(doc);
	items_free(&l);

	/* Declared Shift_JIS, served as UTF-8 (a server-wide default):
	 * the declaration is right. */
	doc = xasprintf("<?xml version=\"1.0\" encoding=\"Shift_JIS\"?>\n%s",
	    sjis_body);
	assert_int_equal(feed_parse_mem(doc, strlen(doc), &utf8, collect, &l,
	    &info, &e), 1);
	feed_info_release(&info);
	assert_string_equal(l.v[0]->title, "① ソフト");
	free(doc);
	items_free(&l);

	/* A UTF-8 feed with one bad byte, served as ISO-8859-1, which
	 * reads any bytes: refused, not stored as mojibake. */
	doc = xstrdup("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version="
	    "\"2.0\"><channel><title>t</title><item><title>脆弱性 \xff"
	    "</title><link>https://example.jp/1</link></item></channel></rss>");
	assert_int_equal(feed_parse_mem(doc, strlen(doc), &latin1, collect, &l,
	    &info, &e), -ERR_PARSE);
	feed_info_release(&info);
	assert_int_equal(l.n, 0);
	free(doc);

	/* From a file, with a two-byte character across each block the
	 * check reads (16 KB): both alignments. */
	for (int pad = 0; pad < 2; pad++) {
		buf_init(&b, 0);
		buf_addf(&b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
		    "<rss version=\"2.0\"><channel><title>t</title><item>"
		    "<title>%s\x83\x5c</title><description>", pad ? " " : "");
		for (int i = 0; i < 20000; i++)
			buf_add(&b, "\x83\x5c", 2);
		buf_addf(&b, "</description><link>https://example.jp/1</link>"
		    "</item></channel></rss>");
		assert_int_equal(parse_fd_str(buf_str(&b), b.len, &sjis, &l,
		    &e), 1);
		assert_string_equal(l.v[l.n - 1]->title, "ソ");
		assert_true(strncmp(l.v[l.n - 1]->summary, "ソソソ", 9) == 0);
		buf_release(&b);
	}
	items_free(&l);
}

static void
test_callback_stops(void **state)
{
	struct items l = { 0 };
	struct feed_info info;
	struct err e = ERR_INIT;

	(void)state;
	l.stop_after = 2;
	assert_int_equal(parse_file("jvn.rdf", &l, &info, &e), -ERR_DB);
	assert_int_equal(l.n, 2);
	feed_info_release(&info);
	items_free(&l);
}

static void
test_myjvn_error(void **state)
{
	static const char doc[] =
	    "<rdf:RDF xmlns=\"http://purl.org/rss/1.0/\" xmlns:rdf=\"http://www"
	    ".w3.org/1999/02/22-rdf-syntax-ns#\" xmlns:status=\"http://jvndb."
	    "jvn.jp/myjvn/Status\"><channel/><status:Status retCd=\"1\" "
	    "errCd=\"E201\" errMsg=\"bad &#10;parameter\"/></rdf:RDF>";
	struct items l = { 0 };
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(parse_str(doc, NULL, &l, &e), -ERR_PARSE);
	assert_non_null(strstr(e.msg, "E201"));
	assert_non_null(strstr(e.msg, "bad parameter"));
}

/* The boundary checks on hand-made hostile items. */
static void
test_field_validation(void **state)
{
	struct items l = { 0 };
	struct err e = ERR_INIT;
	char *doc, *big;

	(void)state;
	/* CR/LF, C0/C1 controls and bidi overrides never survive; a
	 * javascript: link becomes ""; '&' in attributes is decoded once. */
	assert_int_equal(parse_str(
	    "<rss version=\"2.0\"><channel><item>"
	    "<title>Bad&#13;&#10;Bcc: victim@example.com\x7f\xc2\x9b"
	    "&#x202e;txt.exe</title>"
	    "<link>javascript:alert(1)</link>"
	    "<guid isPermaLink=\"true\">javascript:alert(2)</guid>"
	    "<description>a&#9;b\n\nc</description>"
	    "</item><item><title>rel</title><link>../x?a=1&amp;b=2</link>"
	    "</item><item><title>t</title><link> https://ok.example/ä b </link>"
	    "</item></channel></rss>", "https://base.example/dir/feed.xml",
	    &l, &e), 3);
	assert_string_equal(l.v[0]->title,
	    "Bad Bcc: victim@example.comtxt.exe");
	assert_string_equal(l.v[0]->link, "");
	assert_string_equal(l.v[0]->summary, "a b c");
	assert_string_equal(l.v[1]->link, "https://base.example/x?a=1&b=2");
	assert_string_equal(l.v[2]->link, "https://ok.example/%C3%A4%20b");
	assert_clean(&l);
	items_free(&l);

	/* Relative links with non-ASCII bytes or a space (a Japanese path)
	 * are encoded and resolved too, as absolute ones are: libxml2
	 * refused them as they were, and the link was lost (""). */
	assert_int_equal(parse_str("<rss version=\"2.0\"><channel><item>"
	    "<title>ja</title><link>/お知らせ/1.html</link></item><item>"
	    "<title>sp</title><link>a b.html?q=x y</link></item>"
	    "</channel></rss>", "https://base.example/dir/feed.xml", &l, &e), 2);
	assert_string_equal(l.v[0]->link,
	    "https://base.example/%E3%81%8A%E7%9F%A5%E3%82%89%E3%81%9B/1.html");
	assert_string_equal(l.v[0]->id, l.v[0]->link);
	assert_string_equal(l.v[1]->link,
	    "https://base.example/dir/a%20b.html?q=x%20y");
	assert_clean(&l);
	items_free(&l);

	/* Relative links with no base become "". */
	assert_int_equal(parse_str("<rss><channel><item><title>r</title>"
	    "<link>/x</link></item></channel></rss>", NULL, &l, &e), 1);
	assert_string_equal(l.v[0]->link, "");
	items_free(&l);

	/* Atom xml:base, nested and relative to the document URL. */
	assert_int_equal(parse_str(
	    "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:base=\"/adv/\">"
	    "<entry xml:base=\"2024/\"><id>urn:x</id><title>x</title>"
	    "<link rel=\"related\" href=\"https://other.example/\"/>"
	    "<link rel=\"alternate\" href=\"a1.html\"/></entry>"
	    "<entry><id>urn:y</id><title>y</title>"
	    "<link href=\"file:///etc/passwd\"/></entry>"
	    "</feed>", "https://psirt.example.com/feed.atom", &l, &e), 2);
	assert_string_equal(l.v[0]->link,
	    "https://psirt.example.com/adv/2024/a1.html");
	assert_string_equal(l.v[1]->link, "");
	items_free(&l);

	/* Atom type="xhtml": the markup's text, blocks apart. */
	assert_int_equal(parse_str(
	    "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry><id>x</id>"
	    "<title type=\"xhtml\"><div xmlns=\"http://www.w3.org/1999/xhtml\">"
	    "A <b>bold</b> title</div></title><summary type=\"xhtml\"><div "
	    "xmlns=\"http://www.w3.org/1999/xhtml\"><p>one</p><p>two</p></div>"
	    "</summary></entry></feed>", NULL, &l, &e), 1);
	assert_string_equal(l.v[0]->title, "A bold title");
	assert_string_equal(l.v[0]->summary, "one two");
	items_free(&l);

	/* Length caps: a 100 kB title is cut to FEED_MAX_TITLE at a
	 * character boundary and marked with "…". */
	big = xmalloc(100000 * 3 + 1);
	for (size_t i = 0; i < 100000; i++)
		memcpy(big + 3 * i, "\xe3\x81\x82", 3);	/* あ */
	big[300000] = '\0';
	doc = xasprintf("<rss><channel><item><title>%s</title><description>"
	    "%s</description><link>https://x.example/%s</link><guid>%s</guid>"
	    "</item></channel></rss>", big, big, big, big);
	assert_int_equal(parse_str(doc, NULL, &l, &e), 1);
	assert_true(strlen(l.v[0]->title) <= FEED_MAX_TITLE);
	assert_true(strlen(l.v[0]->title) > FEED_MAX_TITLE - 6);
	assert_non_null(strstr(l.v[0]->title, "…"));
	assert_true(strlen(l.v[0]->summary) <= FEED_MAX_SUMMARY);
	assert_string_equal(l.v[0]->link, "");
	assert_true(strncmp(l.v[0]->id, "sha256:", 7) == 0);
	assert_clean(&l);
	items_free(&l);
	free(doc);
	free(big);

	/* CVE ids: only well-formed, upper-case ones; CWE and JVN ids from
	 * sec:references are not CVEs; a bad score is no score. */
	assert_int_equal(parse_str(
	    "<rdf:RDF xmlns=\"http://purl.org/rss/1.0/\" xmlns:rdf=\"http://www"
	    ".w3.org/1999/02/22-rdf-syntax-ns#\" xmlns:sec=\"https://jvn.jp/rss"
	    "/mod_sec/3.0/\"><item rdf:about=\"https://jvn.example/1\">"
	    "<title>cve-2024-1111 CVE-2024-123 CVE-2024-99999 CVE-2024-99999"
	    "</title><sec:references source=\"CVE\" id=\"CVE-2024-0001x\"/>"
	    "<sec:references source=\"NVD\" id=\" CVE-2023-0002 \"/>"
	    "<sec:references source=\"JVN\" id=\"JVNVU#1\"/>"
	    "<sec:references id=\"CWE-79\"/>"
	    "<sec:cvss version=\"3.1\" score=\"11\" severity=\"High\"/>"
	    "<sec:cvss version=\"2.0\" score=\"5.0\"/>"
	    "<sec:cpe>not-a-cpe</sec:cpe><sec:cpe>cpe:/a:x:y</sec:cpe>"
	    "<sec:cpe>cpe:/a:x:y</sec:cpe></item></rdf:RDF>", NULL, &l, &e), 1);
	assert_cves(l.v[0], "CVE-2023-0002,CVE-2024-99999");
	assert_true(l.v[0]->cvss == 5.0);
	assert_string_equal(l.v[0]->cvss_version, "2.0");
	assert_string_equal(l.v[0]->severity, "Medium");
	assert_int_equal(l.v[0]->cpes.n, 1);
	items_free(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipa_alert),
		cmocka_unit_test(test_jvn),
		cmocka_unit_test(test_jvndb_new),
		cmocka_unit_test(test_myjvn_overview),
		cmocka_unit_test(test_myjvn_alert_atom),
		cmocka_unit_test(test_rss2),
		cmocka_unit_test(test_atom),
		cmocka_unit_test(test_empty_channel),
		cmocka_unit_test(test_missing_link),
		cmocka_unit_test(test_cdata_html),
		cmocka_unit_test(test_dates_fixture),
		cmocka_unit_test(test_parse_date),
		cmocka_unit_test(test_text_cves_cpes),
		cmocka_unit_test(test_style_dropped),
		cmocka_unit_test(test_encodings),
		cmocka_unit_test(test_cp932),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_huge_text),
		cmocka_unit_test(test_xxe),
		cmocka_unit_test(test_billion_laughs),
		cmocka_unit_test(test_doctype_without_entities),
		cmocka_unit_test(test_not_a_feed),
		cmocka_unit_test(test_blanks_before_decl),
		cmocka_unit_test(test_server_charset),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_myjvn_error),
		cmocka_unit_test(test_field_validation),
	};

	feed_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
