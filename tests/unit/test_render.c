/* Render skeletons: the message filled from a skeleton is the one rendered
 * whole (render.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "msg.h"
#include "newsletter.h"
#include "render.h"

/* Holes: org (0), name (1), url (2), note (3). */
#define TXT \
	"{{org}} 御中\n{{#name}}{{name}} 様\n{{/name}}{{^name}}ご担当者様\n{{/name}}\n" \
	"いつもお世話になっております。今月のお知らせです。これは長い段落で、七十六桁を" \
	"超えるので折り返されます。句読点、括弧「」の禁則も確かめます。\n" \
	"{{#items}}・{{title}}：{{note}}\n{{/items}}" \
	"配信停止：{{url}}\n最後の行は改行なし：{{org}}"
#define HTML \
	"<p>{{org}} 御中</p>{{#name}}<p>{{name}} 様</p>{{/name}}" \
	"<ul>{{#items}}<li title=\"{{note}}\">{{{note}}}</li>{{/items}}</ul>" \
	"<a href=\"{{url}}\">{{url}}</a>"

/* A renderer whose newsletter templates (ja and en alike) are these. */
static struct render *
make_render_files(const char *subject, const char *txt, const char *html)
{
	json_t *snap = json_object(), *loc, *files;
	struct render *r = NULL;
	struct err e = ERR_INIT;
	const char *locs[] = { "ja", "en" };

	json_object_set_new(snap, "dir", json_string("test"));
	for (int i = 0; i < 2; i++) {
		loc = json_object();
		files = json_object();
		json_object_set_new(files, "newsletter.subject",
		    json_string(subject));
		json_object_set_new(files, "newsletter.txt", json_string(txt));
		json_object_set_new(files, "newsletter.html", json_string(html));
		json_object_set_new(loc, "files", files);
		json_object_set_new(loc, "content", json_object());
		json_object_set_new(snap, locs[i], loc);
	}
	if (render_new(&r, snap, "newsletter", NULL, &e) < 0)
		fail_msg("render_new: %s", e.msg);
	json_decref(snap);
	return r;
}

static struct render *
make_render(const char *subject)
{
	return make_render_files(subject, TXT, HTML);
}

static json_t *
data(const char *org, const char *name, const char *url, const char *note)
{
	json_t *d = json_object(), *items = json_array();

	json_object_set_new(d, "org", json_string(org));
	if (name != NULL)
		json_object_set_new(d, "name", json_string(name));
	json_object_set_new(d, "url", json_string(url));
	for (int i = 0; i < 2; i++)
		json_array_append_new(items, json_pack("{s:s, s:s}", "title",
		    i ? "二つ目" : "一つ目", "note", note));
	json_object_set_new(d, "items", items);
	return d;
}

static void
mail(struct render_mail *m, json_t *ctx, const char *url)
{
	memset(m, 0, sizeof(*m));
	m->locale = "ja";
	m->ctx = ctx;
	m->to_name = "山田 太郎";
	m->to_addr = "taro@example.jp";
	m->message_id = "nl.1.abc@example.jp";
	m->date = 1767225600;
	m->unsub_url = url;
}

/*
 * The message rendered whole from real, and from the skeleton of holed
 * filled with vals: the same bytes, or the test fails naming what.
 * Takes real and holed.
 */
static void
assert_skel_same(const struct render *r, const struct render_env *env,
    json_t *real, json_t *holed, const char *url, const char *const *vals,
    size_t nvals, const char *what)
{
	struct buf whole = BUF_INIT(0), filled = BUF_INIT(0);
	struct render_skel *k = NULL;
	struct render_mail m;
	struct err e = ERR_INIT;

	mail(&m, real, url);
	if (render_message(r, env, &m, &whole, &e) != 0)
		fail_msg("render_message: %s", e.msg);
	mail(&m, holed, url);
	assert_int_equal(render_skel_new(r, &m, &k, &e), 0);
	mail(&m, NULL, url);
	if (render_skel_message(k, env, &m, vals, nvals, &filled, &e) != 0)
		fail_msg("render_skel_message: %s", e.msg);
	if (whole.len != filled.len ||
	    memcmp(whole.data, filled.data, whole.len) != 0)
		fail_msg("%s: the filled skeleton differs:\n%s\n----\n%s", what,
		    buf_str(&whole), buf_str(&filled));
	render_skel_free(k);
	buf_release(&whole);
	buf_release(&filled);
	json_decref(real);
	json_decref(holed);
}

static void
test_skeleton_is_whole_rendering(void **state)
{
	static const char *const orgs[] = { "株式会社サンプル", "A&B <Co> \"Q\" 'x'",
	    "とても長い名前の組織で折り返しが必要になるかどうかを確かめるための"
	    "株式会社サンプル商事ホールディングス情報システム部門" };
	static const char *const names[] = { NULL, "山田 太郎", "O'Brien & <Sons>" };
	static const char *const notes[] = { "a < b", "「注意」、重要。",
	    "https://example.jp/very/long/url/that/should/not/be/broken/when/wrapping/the/text/part/at/all" };
	struct render_env env = { "事務局", "news@example.jp", NULL,
	    "news.example.jp", "SECURITY ACTION 通信", 0, NULL };
	struct render *r = make_render("{{#name}}様向け{{/name}}今月のお知らせ");
	char mark[4][RENDER_HOLE_LEN];
	int n = 0;

	(void)state;
	for (unsigned i = 0; i < 4; i++)
		render_hole(i, mark[i]);
	for (size_t o = 0; o < 3; o++)
	for (size_t a = 0; a < 3; a++)
	for (size_t t = 0; t < 3; t++) {
		const char *url = "https://example.jp/u/AQAAAAAAAAAB";
		json_t *real = data(orgs[o], names[a], url, notes[t]);
		json_t *holed = data(mark[0], names[a] ? mark[1] : NULL,
		    mark[2], mark[3]);
		const char *vals[4] = { orgs[o], names[a], url, notes[t] };
		char what[64];

		snprintf(what, sizeof(what), "org %zu name %zu note %zu", o, a,
		    t);
		assert_skel_same(r, &env, real, holed, url, vals, 4, what);
		n++;
	}
	assert_int_equal(n, 27);
	render_free(r);
}

/* A hole in the subject: no skeleton (the caller renders whole). */
static void
test_hole_in_subject(void **state)
{
	struct render *r = make_render("{{org}} 様へのお知らせ");
	struct render_skel *k = NULL;
	struct render_mail m;
	struct err e = ERR_INIT;
	char mark[RENDER_HOLE_LEN];
	json_t *d;

	(void)state;
	render_hole(0, mark);
	d = data(mark, NULL, "https://example.jp/u/x", "n");
	mail(&m, d, "https://example.jp/u/x");
	assert_int_equal(render_skel_new(r, &m, &k, &e), 1);
	assert_null(k);
	json_decref(d);
	render_free(r);
}

/* A last line of blanks only, with no final newline, after a line with a
 * hole: wrap_text() drops the line break before it, which a skeleton
 * cannot do, so the text is rendered whole (no skeleton). */
static void
test_blank_last_line(void **state)
{
	struct render *r;
	struct render_skel *k = NULL;
	struct render_mail m;
	struct err e = ERR_INIT;
	char mark[RENDER_HOLE_LEN], txt[200];
	json_t *d;

	(void)state;
	snprintf(txt, sizeof(txt), "Dear {{org}}\n%90s", "");
	r = make_render_files("S", txt, "<p>{{org}}</p>");
	render_hole(0, mark);
	d = json_pack("{s:s}", "org", mark);
	mail(&m, d, "https://example.jp/u/x");
	assert_int_equal(render_skel_new(r, &m, &k, &e), 1);
	assert_null(k);
	json_decref(d);
	render_free(r);
}

/*
 * A skeleton hands its parts to msg with their scan, summed from its
 * literals and the values (render.c, struct part): the values' 8-bit
 * bytes and CRs count as if the part were scanned whole.  A mostly ASCII
 * template whose holes' values make the parts base64 or not, or hold a
 * CR, must come out as rendered whole.
 */
static void
test_skeleton_scan_counts_values(void **state)
{
	static const char *const orgs[] = { "Sample Co.", "株式会社サンプル",
	    "株式会社サンプル商事ホールディングス情報システム部門", "A\rB",
	    "混在 mixed\r\n行" };
	struct render_env env = { "Office", "news@example.jp", NULL,
	    "news.example.jp", NULL, 0, NULL };
	struct render *r;
	char mark[RENDER_HOLE_LEN];

	(void)state;
	r = make_render_files("News",
	    "Dear {{org}},\nthe news of the month, in plain ASCII "
	    "but for one word: 今月.\n{{org}}\n",
	    "<p>Dear {{org}},</p><p>The news (今月).</p>{{{org}}}");
	render_hole(0, mark);
	for (size_t o = 0; o < sizeof(orgs) / sizeof(orgs[0]); o++) {
		const char *url = "https://example.jp/u/AQAAAAAAAAAB";
		json_t *real = json_pack("{s:s}", "org", orgs[o]);
		json_t *holed = json_pack("{s:s}", "org", mark);
		const char *vals[1] = { orgs[o] };
		char what[32];

		snprintf(what, sizeof(what), "org %zu", o);
		assert_skel_same(r, &env, real, holed, url, vals, 1, what);
	}
	render_free(r);
}

/* The five_rules item goes on by one every month, across the new year
 * too, so that each of 5 comes 12 times in 60 months. */
static void
test_rule_rotation(void **state)
{
	int count[5] = { 0 };
	size_t prev = newsletter_rule_index(2025, 12, 5), i;

	(void)state;
	for (int y = 2026; y < 2031; y++)
		for (int m = 1; m <= 12; m++) {
			i = newsletter_rule_index(y, m, 5);
			assert_int_equal(i, (prev + 1) % 5);
			count[i]++;
			prev = i;
		}
	for (i = 0; i < 5; i++)
		assert_int_equal(count[i], 12);
	assert_int_equal(newsletter_rule_index(2026, 11, 0), 2026 * 12 + 10);
	assert_int_equal(newsletter_rule_index(2026, 11, 1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_skeleton_is_whole_rendering),
		cmocka_unit_test(test_hole_in_subject),
		cmocka_unit_test(test_blank_last_line),
		cmocka_unit_test(test_skeleton_scan_counts_values),
		cmocka_unit_test(test_rule_rotation),
	};
	int rc;

	msg_global_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	msg_global_shutdown();
	return rc;
}
