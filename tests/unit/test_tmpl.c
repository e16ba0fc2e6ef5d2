/*
 * Unit tests for lib/tmpl: the official Mustache spec, then what the spec
 * does not cover and samail relies on (error positions, escaping modes,
 * strict mode, recursion limits, reuse of one parsed template, caps,
 * threads, partials from a directory).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "tmpl.h"

/* --- helpers ------------------------------------------------------------ */

static const char *
srcdir(void)
{
	const char *d = getenv("SAMAIL_SRCDIR");

	return d != NULL && *d != '\0' ? d : ".";
}

/* Loader over a JSON object {name: source}; counts its calls. */
struct jsonparts {
	json_t	*obj;
	int	 calls;
};

static int
json_load_partial(void *arg, const char *name, struct buf *src,
    struct buf *label, struct err *e)
{
	struct jsonparts *jp = arg;
	json_t *v = jp->obj != NULL ? json_object_get(jp->obj, name) : NULL;

	(void)label;
	jp->calls++;
	if (!json_is_string(v))
		return err_set(e, ERR_NOTFOUND, "no partial '%s'", name);
	return buf_add(src, json_string_value(v), json_string_length(v));
}

/*
 * Parse src with partials given as JSON text (may be NULL), render data
 * (JSON text) and return the output (caller frees) or NULL with e set.
 */
static char *
render_str(const char *src, const char *partials, const char *data,
    const struct tmpl_opts *base, struct err *e)
{
	struct jsonparts jp = { NULL, 0 };
	struct tmpl_opts o;
	struct tmpl *t = NULL;
	struct buf out = BUF_INIT(0);
	json_t *ctx = NULL;
	char *res = NULL;

	memset(&o, 0, sizeof(o));
	if (base != NULL)
		o = *base;
	if (partials != NULL) {
		jp.obj = json_loads(partials, 0, NULL);
		assert_non_null(jp.obj);
		o.load = json_load_partial;
		o.load_arg = &jp;
	}
	if (data != NULL) {
		ctx = json_loads(data, JSON_DECODE_ANY, NULL);
		assert_non_null(ctx);
	}
	if (tmpl_parse(&t, src, strlen(src), "t.txt", &o, e) < 0)
		goto out;
	if (tmpl_render(t, ctx, &o, &out, e) < 0)
		goto out;
	res = buf_detach(&out, NULL);
out:
	buf_release(&out);
	tmpl_free(t);
	json_decref(ctx);
	json_decref(jp.obj);
	return res;
}

static void
assert_renders(const char *src, const char *data, const struct tmpl_opts *o,
    const char *want)
{
	struct err e = ERR_INIT;
	char *got = render_str(src, NULL, data, o, &e);

	if (got == NULL)
		fail_msg("'%s': unexpected error: %s", src, e.msg);
	assert_string_equal(got, want);
	free(got);
}

/* Parsing or rendering src must fail with code and exactly msg. */
static void
assert_fails(const char *src, const char *partials, const char *data,
    const struct tmpl_opts *o, int code, const char *msg)
{
	struct err e = ERR_INIT;
	char *got = render_str(src, partials, data, o, &e);

	if (got != NULL)
		fail_msg("'%s' rendered as '%s', expected: %s", src, got, msg);
	assert_int_equal(e.code, code);
	assert_string_equal(e.msg, msg);
}

/* --- the Mustache spec --------------------------------------------------- */

/* Run every test of one spec file; returns the number of failures. */
static int
run_spec_file(const char *file, int *ntests)
{
	char path[4096];
	json_error_t jerr;
	json_t *root, *tests, *tc;
	size_t i;
	int fails = 0;

	snprintf(path, sizeof(path), "%s/tests/data/mustache-spec/%s",
	    srcdir(), file);
	root = json_load_file(path, 0, &jerr);
	if (root == NULL)
		fail_msg("%s: %s (line %d)", path, jerr.text, jerr.line);
	tests = json_object_get(root, "tests");
	assert_true(json_is_array(tests));
	assert_true(json_array_size(tests) > 0);

	json_array_foreach(tests, i, tc) {
		const char *name = json_string_value(
		    json_object_get(tc, "name"));
		json_t *tsrc = json_object_get(tc, "template");
		json_t *want = json_object_get(tc, "expected");
		struct jsonparts jp = { json_object_get(tc, "partials"), 0 };
		struct tmpl_opts o = { .escape = TMPL_ESCAPE_HTML,
		    .load = json_load_partial, .load_arg = &jp };
		struct err e = ERR_INIT;
		struct buf out = BUF_INIT(0), again = BUF_INIT(0);
		struct tmpl *t = NULL;

		(*ntests)++;
		if (tmpl_parse(&t, json_string_value(tsrc),
		    json_string_length(tsrc), name, &o, &e) < 0 ||
		    tmpl_render(t, json_object_get(tc, "data"), &o, &out,
		    &e) < 0) {
			fprintf(stderr, "FAIL %s: %s: error: %s\n", file, name,
			    e.msg);
			fails++;
		} else if (out.len != json_string_length(want) ||
		    memcmp(buf_str(&out), json_string_value(want),
		    out.len) != 0) {
			fprintf(stderr, "FAIL %s: %s:\n  expected: '%s'\n"
			    "  got:      '%s'\n", file, name,
			    json_string_value(want), buf_str(&out));
			fails++;
		} else if (tmpl_render(t, json_object_get(tc, "data"), &o,
		    &again, &e) < 0 || strcmp(buf_str(&again),
		    buf_str(&out)) != 0) {
			/* A second render of the same parse must agree. */
			fprintf(stderr, "FAIL %s: %s: second render differs\n",
			    file, name);
			fails++;
		}
		buf_release(&out);
		buf_release(&again);
		tmpl_free(t);
	}
	json_decref(root);
	return fails;
}

static void
test_spec(void **state)
{
	static const char *const files[] = {
		"comments.json", "delimiters.json", "interpolation.json",
		"inverted.json", "partials.json", "sections.json",
	};
	int fails = 0, n = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		fails += run_spec_file(files[i], &n);
	fprintf(stderr, "mustache spec: %d of %d tests passed\n", n - fails,
	    n);
	assert_int_equal(fails, 0);
	assert_true(n >= 136);	/* the six files at spec commit 9cb20c3d */
}

/* --- errors and their positions ------------------------------------------ */

static void
test_error_unclosed_tags(void **state)
{
	(void)state;
	assert_fails("Hello {{name", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:7: tag is never closed (expected '}}')");
	assert_fails("a\n  {{{name}}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:2:3: tag is never closed (expected '}}}')");
	/* A missing '}}' must be pinned on its own tag, not on a later
	 * tag whose '}}' happens to close it. */
	assert_fails("Dear {{name,\nyour id is {{id}}.", NULL, NULL, NULL,
	    ERR_PARSE, "t.txt:1:6: tag is never closed (expected '}}')");
	assert_fails("{{=<% %>=}}\nx <%name", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:2:3: tag is never closed (expected '%>')");
	assert_fails("x {{! comment", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:3: tag is never closed (expected '}}')");
	assert_fails("{{", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:1: tag is never closed (expected '}}')");
}

static void
test_error_sections(void **state)
{
	(void)state;
	/* The example from the design brief: an outer close while an inner
	 * section is still open. */
	assert_fails("{{#items}}\n{{#advisories}}\n  <li>{{title}}</li>\n"
	    "      {{/items}}\n", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:4:7: section 'advisories' is never closed (opened at "
	    "line 2)");
	assert_fails("{{#a}}x{{/b}}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:8: '{{/b}}' does not match the open section 'a' "
	    "(opened at line 1)");
	assert_fails("x\n {{/a}}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:2:2: '{{/a}}' closes a section that was never opened");
	assert_fails("line1\n  {{^items}}\nx\n", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:2:3: section 'items' is never closed (the template ends "
	    "at line 3)");
	/* Custom delimiters show up in the message as written. */
	assert_fails("{{=<% %>=}}<%#a%>x<%/b%>", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:19: '<%/b%>' does not match the open section 'a' "
	    "(opened at line 1)");
}

static void
test_error_nesting_limit(void **state)
{
	struct buf src = BUF_INIT(0);
	struct tmpl *t = NULL;
	struct err e = ERR_INIT;
	char want[128];

	(void)state;
	for (int i = 0; i < TMPL_MAX_NESTING; i++)
		buf_addstr(&src, "{{#a}}");
	for (int i = 0; i < TMPL_MAX_NESTING; i++)
		buf_addstr(&src, "{{/a}}");
	assert_int_equal(tmpl_parse(&t, src.data, src.len, "deep", NULL, &e),
	    0);
	tmpl_free(t);

	buf_reset(&src);
	for (int i = 0; i <= TMPL_MAX_NESTING; i++)
		buf_addstr(&src, "{{#a}}");
	assert_int_equal(tmpl_parse(&t, src.data, src.len, "deep", NULL, &e),
	    -ERR_PARSE);
	assert_null(t);
	snprintf(want, sizeof(want), "deep:1:%d: sections nested deeper "
	    "than %d", TMPL_MAX_NESTING * 6 + 1, TMPL_MAX_NESTING);
	assert_string_equal(e.msg, want);
	buf_release(&src);
}

static void
test_error_delimiters(void **state)
{
	(void)state;
	assert_fails("ok\n{{=<%%>=}}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:2:1: bad set-delimiter tag: expected two delimiters "
	    "separated by a space, as in '{{=<% %>=}}'");
	assert_fails("{{= <% =}}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:1: bad set-delimiter tag: expected two delimiters "
	    "separated by a space, as in '{{=<% %>=}}'");
	assert_fails("{{=<% %> x=}}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:1: bad set-delimiter tag: expected two delimiters "
	    "separated by a space, as in '{{=<% %>=}}'");
	assert_fails("{{=<= =>=}}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:1: bad set-delimiter tag: a delimiter must not contain "
	    "'='");
	/* No closing '=' before the delimiter. */
	assert_fails("a {{=<% %>}}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:3: tag is never closed (expected '=}}')");
}

static void
test_error_names(void **state)
{
	(void)state;
	assert_fails("a {{ }}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:3: variable tag has no name");
	assert_fails("{{{}}}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:1: variable tag has no name");
	assert_fails("\n\n{{# }}{{/}}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:3:1: section tag has no name");
	assert_fails("{{^}}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:1: section tag has no name");
	assert_fails("{{#a}}{{/ }}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:7: closing tag has no name");
	assert_fails("x{{>}}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:2: partial tag has no name");
	assert_fails("{{org name}}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:1: variable name 'org name' contains whitespace");
	assert_fails("{{org..name}}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:1: variable name 'org..name' has an empty part "
	    "(stray '.')");
	assert_fails("{{#a.}}{{/a.}}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:1: section name 'a.' has an empty part (stray '.')");
	assert_fails("{{<base}}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:1: '{{<' (template inheritance) is not supported");
}

static void
test_error_columns_count_characters(void **state)
{
	(void)state;
	/* Admins count columns in characters, as their editor does. */
	assert_fails("件名：{{#x}}", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:4: section 'x' is never closed (the template ends at "
	    "line 1)");
	assert_fails("\t{{x", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:1:2: tag is never closed (expected '}}')");
}

static void
test_error_utf8(void **state)
{
	(void)state;
	/* "日本" then a Shift_JIS byte pair: a template saved in CP932. */
	assert_fails("ok\n日本\x93\xfa", NULL, NULL, NULL, ERR_PARSE,
	    "t.txt:2:3: not valid UTF-8 (byte 0x93); save the template as "
	    "UTF-8");
	assert_fails("\xc0\xaf", NULL, NULL, NULL, ERR_PARSE,	/* overlong */
	    "t.txt:1:1: not valid UTF-8 (byte 0xC0); save the template as "
	    "UTF-8");
	assert_fails("\xed\xa0\x80", NULL, NULL, NULL, ERR_PARSE, /* D800 */
	    "t.txt:1:1: not valid UTF-8 (byte 0xED); save the template as "
	    "UTF-8");
	assert_fails("abc\xe6\x97", NULL, NULL, NULL, ERR_PARSE, /* cut */
	    "t.txt:1:4: not valid UTF-8 (byte 0xE6); save the template as "
	    "UTF-8");
	assert_renders("\xf0\x9f\x93\xa7 {{x}}", "{\"x\":\"\xe2\x9c\x93\"}",
	    NULL, "\xf0\x9f\x93\xa7 \xe2\x9c\x93");
}

static void
test_error_partials(void **state)
{
	struct tmpl_opts strict = { .strict = 1 };

	(void)state;
	/* Strict: a missing partial is a parse error at its tag. */
	assert_fails("head\n  {{>footr}}\n", "{\"footer\":\"f\"}", NULL,
	    &strict, ERR_PARSE, "t.txt:2:3: partial 'footr' not found");
	/* Not strict, the spec's rule: it renders as nothing. */
	assert_renders("[{{>nope}}]", NULL, NULL, "[]");
	/* An error inside a partial names the partial, and its own line. */
	assert_fails("a{{>footer}}b", "{\"footer\":\"ok\\n  {{#x}}\"}", NULL,
	    NULL, ERR_PARSE, "footer:2:3: section 'x' is never closed (the "
	    "template ends at line 2)");
	/* ... also one that only a nested, conditional include reaches. */
	assert_fails("{{#never}}{{>a}}{{/never}}",
	    "{\"a\":\"{{>b}}\",\"b\":\"x {{y\"}", NULL, NULL, ERR_PARSE,
	    "b:1:3: tag is never closed (expected '}}')");
}

static int
failing_loader(void *arg, const char *name, struct buf *src,
    struct buf *label, struct err *e)
{
	(void)arg;
	(void)src;
	(void)label;
	return err_set(e, ERR_IO, "cannot read 'p/%s.mustache': Permission "
	    "denied", name);
}

static void
test_error_loader(void **state)
{
	struct tmpl_opts o = { .load = failing_loader };
	struct tmpl *t = NULL;
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(tmpl_parse(&t, "x\n{{>head}}", 11, "main.html", &o,
	    &e), -ERR_IO);
	assert_null(t);
	assert_string_equal(e.msg, "main.html:2:1: partial 'head': cannot "
	    "read 'p/head.mustache': Permission denied");
	/* No struct err: still fails cleanly. */
	assert_int_equal(tmpl_parse(&t, "{{x", 3, "n", NULL, NULL),
	    -ERR_PARSE);
	assert_null(t);
}

/* --- escaping ------------------------------------------------------------ */

static void
test_escape_modes(void **state)
{
	const char *data = "{\"x\":\"<a href=\\\"u?a=1&b=2\\\">O'Reilly</a>\"}";
	struct tmpl_opts html = { .escape = TMPL_ESCAPE_HTML };
	struct tmpl_opts none = { .escape = TMPL_ESCAPE_NONE };

	(void)state;
	assert_renders("{{x}}|{{{x}}}|{{&x}}", data, &html,
	    "&lt;a href=&quot;u?a=1&amp;b=2&quot;&gt;O&#39;Reilly&lt;/a&gt;|"
	    "<a href=\"u?a=1&b=2\">O'Reilly</a>|"
	    "<a href=\"u?a=1&b=2\">O'Reilly</a>");
	assert_renders("{{x}}|{{{x}}}|{{&x}}", data, &none,
	    "<a href=\"u?a=1&b=2\">O'Reilly</a>|"
	    "<a href=\"u?a=1&b=2\">O'Reilly</a>|"
	    "<a href=\"u?a=1&b=2\">O'Reilly</a>");
	/* NULL options: HTML escaping, the safe default. */
	assert_renders("{{x}}", "{\"x\":\"&\"}", NULL, "&amp;");
	/* Template text itself is never escaped. */
	assert_renders("<p>&amp; {{x}}</p>", "{\"x\":\"\xe6\x97\xa5\"}", &html,
	    "<p>&amp; \xe6\x97\xa5</p>");
}

/* --- values -------------------------------------------------------------- */

static void
test_values(void **state)
{
	(void)state;
	assert_renders("{{a}} {{b}} {{c}} {{d}} {{e}} {{f}} {{g}} {{h}}",
	    "{\"a\":1.210,\"b\":3.0,\"c\":100000.0,\"d\":-42,"
	    "\"e\":9007199254740993,\"f\":0.1,\"g\":1e21,\"h\":1e-7}", NULL,
	    "1.21 3 100000 -42 9007199254740993 0.1 1e+21 1e-07");
	assert_renders("{{t}} {{f}} [{{n}}] [{{o}}] [{{l}}]",
	    "{\"t\":true,\"f\":false,\"n\":null,\"o\":{},\"l\":[1]}", NULL,
	    "true false [] [] []");
	/* Truthiness as documented: "" and 0 are truthy. */
	assert_renders("{{#s}}S{{/s}}{{#z}}Z{{/z}}{{^n}}N{{/n}}{{^f}}F{{/f}}"
	    "{{^l}}L{{/l}}{{^m}}M{{/m}}",
	    "{\"s\":\"\",\"z\":0,\"n\":null,\"f\":false,\"l\":[]}", NULL,
	    "SZNFLM");
	/* A scalar root and a list root. */
	assert_renders("{{.}}!", "\"hi\"", NULL, "hi!");
	assert_renders("{{#.}}<{{n}}>{{/.}}", "[{\"n\":1},{\"n\":2}]", NULL,
	    "<1><2>");
	assert_renders("[{{x}}]", NULL, NULL, "[]");
}

static void
test_context_stack(void **state)
{
	(void)state;
	/* Outer names stay visible; inner ones shadow them. */
	assert_renders("{{#list}}{{name}}@{{org}};{{/list}}",
	    "{\"org\":\"ACME\",\"list\":[{\"name\":\"a\"},"
	    "{\"name\":\"b\",\"org\":\"X\"}]}", NULL, "a@ACME;b@X;");
	/* Dotted names: first part through the stack, rest no fallback. */
	assert_renders("{{#a}}[{{b.c}}]{{/a}}",
	    "{\"a\":{\"b\":{}},\"b\":{\"c\":\"ERR\"}}", NULL, "[]");
	assert_renders("{{sub.org.name}}",
	    "{\"sub\":{\"org\":{\"name\":\"\xe6\xa0\xaa\"}}}", NULL,
	    "\xe6\xa0\xaa");
	/* A scalar on the stack is skipped when looking up names. */
	assert_renders("{{#l}}{{.}}{{x}};{{/l}}", "{\"x\":\"!\",\"l\":[1,\"s\"]}",
	    NULL, "1!;s!;");
}

/* --- strict mode --------------------------------------------------------- */

static void
test_strict(void **state)
{
	struct tmpl_opts strict = { .strict = 1, .escape = TMPL_ESCAPE_NONE };
	const char *data = "{\"org\":\"ACME\",\"contact\":{\"name\":\"Sato\"},"
	    "\"opt\":null,\"list\":[1,2]}";

	(void)state;
	assert_renders("{{org}} {{contact.name}} [{{opt}}]", data, &strict,
	    "ACME Sato []");
	assert_fails("Dear {{contact.name}},\n{{orgg}} ...", NULL, data,
	    &strict, ERR_PARSE, "t.txt:2:1: 'orgg' is not defined");
	assert_fails("{{contact.nmae}}", NULL, data, &strict, ERR_PARSE,
	    "t.txt:1:1: 'contact.nmae' is not defined");
	assert_fails("x {{{contact}}}", NULL, data, &strict, ERR_PARSE,
	    "t.txt:1:3: 'contact' is an object, not a value; use a section");
	assert_fails("{{list}}", NULL, data, &strict, ERR_PARSE,
	    "t.txt:1:1: 'list' is a list, not a value; use a section");
	/* Sections over missing names stay legal. */
	assert_renders("{{#missing}}{{nope}}{{/missing}}{{^missing}}ok"
	    "{{/missing}}", data, &strict, "ok");
	/* Inside a section, a name that is missing everywhere is an error
	 * at its own position. */
	assert_fails("{{#list}}\n  {{.}}{{nmae}}\n{{/list}}", NULL, data,
	    &strict, ERR_PARSE, "t.txt:2:8: 'nmae' is not defined");
	/* The same template, not strict: the spec's empty string. */
	assert_renders("[{{orgg}}]", data, NULL, "[]");
}

static void
test_strict_partial_at_render(void **state)
{
	struct tmpl_opts lax = { 0 }, strict = { .strict = 1 };
	struct tmpl *t = NULL;
	struct buf out = BUF_INIT(0);
	struct err e = ERR_INIT;

	(void)state;
	/* Parsed leniently, rendered strictly: still caught. */
	assert_int_equal(tmpl_parse(&t, "a\nb{{>gone}}", 12, "m", &lax, &e),
	    0);
	assert_int_equal(tmpl_render(t, NULL, &lax, &out, &e), 0);
	assert_string_equal(buf_str(&out), "a\nb");
	buf_reset(&out);
	assert_int_equal(tmpl_render(t, NULL, &strict, &out, &e), -ERR_PARSE);
	assert_string_equal(e.msg, "m:2:2: partial 'gone' not found");
	buf_release(&out);
	tmpl_free(t);
}

/* --- partials ------------------------------------------------------------ */

static void
test_partial_recursion_limit(void **state)
{
	struct tmpl_opts o = { 0 };
	char want[200];

	(void)state;
	snprintf(want, sizeof(want), "self:1:2: partials nested deeper than "
	    "%d (does 'self' include itself?)", TMPL_DEFAULT_DEPTH);
	assert_fails("{{>self}}", "{\"self\":\"x{{>self}}\"}", NULL, NULL,
	    ERR_PARSE, want);
	/* Mutual recursion, smaller limit. */
	o.max_depth = 5;
	assert_fails("{{>a}}", "{\"a\":\"{{>b}}\",\"b\":\"\\n {{>a}}\"}", NULL,
	    &o, ERR_PARSE, "a:1:1: partials nested deeper than 5 (does 'b' "
	    "include itself?)");
	/* Data-bounded recursion is fine up to the limit, and the limit is
	 * exact: a tree 3 deep needs 3 nested includes. */
	o.max_depth = 3;
	assert_renders("{{>node}}", NULL, NULL, "");
	{
		struct err e = ERR_INIT;
		const char *tree = "{\"n\":1,\"kids\":[{\"n\":2,\"kids\":"
		    "[{\"n\":3,\"kids\":[]}]}]}";
		const char *node = "{\"node\":\"{{n}}({{#kids}}{{>node}}"
		    "{{/kids}})\"}";
		char *got = render_str("{{>node}}", node, tree, &o, &e);

		assert_non_null(got);
		assert_string_equal(got, "1(2(3()))");
		free(got);
		o.max_depth = 2;
		assert_null(render_str("{{>node}}", node, tree, &o, &e));
		assert_int_equal(e.code, ERR_PARSE);
	}
}

static void
test_runaway_rendering(void **state)
{
	struct buf src = BUF_INIT(0);

	(void)state;
	/* 10^20 iterations and no output: neither the depth limit nor the
	 * output cap would stop it; the step budget does. */
	buf_addstr(&src, "x\n");
	for (int i = 0; i < 20; i++)
		buf_addstr(&src, "{{#l}}");
	for (int i = 0; i < 20; i++)
		buf_addstr(&src, "{{/l}}");
	assert_fails(buf_str(&src), NULL, "{\"l\":[0,1,2,3,4,5,6,7,8,9]}",
	    NULL, ERR_PARSE, "t.txt:2:115: rendering takes more than "
	    "10000000 steps (sections over the same list nested in each "
	    "other?)");
	buf_release(&src);
}

static void
test_partials_loaded_once(void **state)
{
	struct jsonparts jp = { NULL, 0 };
	struct tmpl_opts o = { .load = json_load_partial, .load_arg = &jp };
	const char *src = "{{>a}}{{>a}}{{#l}}{{>b}}{{>a}}{{/l}}{{>missing}}"
	    "{{>missing}}";
	struct tmpl *t = NULL;
	struct buf out = BUF_INIT(0);
	struct err e = ERR_INIT;
	json_t *ctx = json_pack("{s:[i,i,i]}", "l", 1, 2, 3);

	(void)state;
	jp.obj = json_pack("{s:s,s:s}", "a", "A{{>b}}", "b", "B{{>a}}"
	    "{{>b}}");
	assert_int_equal(tmpl_parse(&t, src, strlen(src), "m", &o, &e), 0);
	/* a, b and missing: each asked for once, cycles included. */
	assert_int_equal(jp.calls, 3);
	/* b includes a and b unconditionally: rendering must hit the
	 * limit, not the stack's end. */
	assert_int_equal(tmpl_render(t, ctx, &o, &out, &e), -ERR_PARSE);
	assert_non_null(strstr(e.msg, "partials nested deeper than"));
	assert_int_equal(jp.calls, 3);	/* rendering never loads */
	buf_release(&out);
	tmpl_free(t);
	json_decref(jp.obj);
	json_decref(ctx);
}

static void
test_partial_indentation(void **state)
{
	const char *parts = "{\"outer\":\"<ul>\\n  {{>inner}}\\n</ul>\\n\","
	    "\"inner\":\"{{#l}}\\n<li>{{.}}</li>\\n{{/l}}\\n\"}";
	struct err e = ERR_INIT;
	char *got;

	(void)state;
	/* Standalone partials nest their indentation; data is not indented
	 * (the "x\ny" item keeps its inner newline as is). */
	got = render_str("<div>\n    {{>outer}}\n</div>\n", parts,
	    "{\"l\":[\"a\",\"x\\ny\"]}", NULL, &e);
	assert_non_null(got);
	assert_string_equal(got, "<div>\n    <ul>\n      <li>a</li>\n"
	    "      <li>x\ny</li>\n    </ul>\n</div>\n");
	free(got);
	/* The same partial inline: no indentation at all. */
	got = render_str("<div>{{>outer}}</div>", parts, "{\"l\":[\"a\"]}",
	    NULL, &e);
	assert_non_null(got);
	assert_string_equal(got, "<div><ul>\n  <li>a</li>\n</ul>\n</div>");
	free(got);
}

/* --- reuse, caps, threads ------------------------------------------------ */

static const char newsletter[] =
    "{{! the HTML part of a monthly newsletter, roughly }}\n"
    "<p>{{org}} {{contact}} 様</p>\n"
    "{{#advisories}}\n"
    "  <li><a href=\"{{link}}\">{{title}}</a> (CVSS {{cvss}})</li>\n"
    "{{/advisories}}\n"
    "{{^advisories}}\n"
    "  <p>今月の該当はありません。</p>\n"
    "{{/advisories}}\n"
    "{{>footer}}\n";

static const char footer_src[] = "<p>配信停止: {{unsub}}</p>\n";

static int
footer_loader(void *arg, const char *name, struct buf *src,
    struct buf *label, struct err *e)
{
	(void)arg;
	if (strcmp(name, "footer") != 0)
		return err_set(e, ERR_NOTFOUND, "no '%s'", name);
	buf_addstr(label, "partials/footer.html");
	return buf_addstr(src, footer_src);
}

/* The context and the expected output for declarer i. */
static json_t *
declarer_ctx(int i, struct buf *want)
{
	char org[64], contact[64], unsub[64];
	json_t *ctx;

	snprintf(org, sizeof(org), "Org <%d> & Co", i);
	snprintf(contact, sizeof(contact), "担当%d", i);
	snprintf(unsub, sizeof(unsub), "https://x/u/%d", i);
	ctx = json_pack("{s:s,s:s,s:s}", "org", org, "contact", contact,
	    "unsub", unsub);
	buf_addf(want, "<p>Org &lt;%d&gt; &amp; Co 担当%d 様</p>\n", i, i);
	{
		json_t *adv = json_array();

		for (int k = 0; k < i % 4; k++) {
			json_array_append_new(adv, json_pack("{s:s,s:s,s:f}",
			    "title", k % 2 ? "A \"quoted\" title" : "Plain",
			    "link", "https://jvn.jp/?a=1&b=2", "cvss", 9.8));
			buf_addf(want, "  <li><a href=\"https://jvn.jp/?a=1&amp;"
			    "b=2\">%s</a> (CVSS 9.8)</li>\n",
			    k % 2 ? "A &quot;quoted&quot; title" : "Plain");
		}
		json_object_set_new(ctx, "advisories", adv);
	}
	if (i % 4 == 0)
		buf_addstr(want, "  <p>今月の該当はありません。</p>\n");
	buf_addf(want, "<p>配信停止: https://x/u/%d</p>\n", i);
	return ctx;
}

static void
test_render_many(void **state)
{
	struct tmpl_opts o = { .load = footer_loader, .strict = 1 };
	struct tmpl *t = NULL;
	struct buf out = BUF_INIT(0), want = BUF_INIT(0);
	struct err e = ERR_INIT;

	(void)state;
	assert_int_equal(tmpl_parse(&t, newsletter, strlen(newsletter),
	    "newsletter.html", &o, &e), 0);
	assert_string_equal(tmpl_name(t), "newsletter.html");
	for (int i = 0; i < 2000; i++) {
		json_t *ctx = declarer_ctx(i, &want);

		assert_int_equal(tmpl_render(t, ctx, &o, &out, &e), 0);
		assert_string_equal(buf_str(&out), buf_str(&want));
		buf_reset(&out);
		buf_reset(&want);
		json_decref(ctx);
	}
	buf_release(&out);
	buf_release(&want);
	tmpl_free(t);
}

static void
test_buffer_cap(void **state)
{
	struct tmpl *t = NULL;
	struct err e = ERR_INIT;
	struct buf out;
	json_t *ctx = json_pack("{s:s}", "x", "<<<<");
	const char *src = "ab{{x}}cd";	/* "ab&lt;&lt;&lt;&lt;cd": 20 */

	(void)state;
	assert_int_equal(tmpl_parse(&t, src, strlen(src), "cap.html", NULL,
	    &e), 0);
	buf_init(&out, 20);
	assert_int_equal(tmpl_render(t, ctx, NULL, &out, &e), 0);
	assert_int_equal(out.len, 20);
	buf_release(&out);

	buf_init(&out, 19);
	assert_int_equal(tmpl_render(t, ctx, NULL, &out, &e), -ERR_TOOBIG);
	assert_string_equal(e.msg, "rendering 'cap.html': output larger than "
	    "the limit of 19 bytes");
	assert_true(out.len <= 19);
	buf_release(&out);

	/* The cap counts what is already in the buffer. */
	buf_init(&out, 25);
	buf_addstr(&out, "HEAD:");
	assert_int_equal(tmpl_render(t, ctx, NULL, &out, &e), 0);
	assert_string_equal(buf_str(&out), "HEAD:ab&lt;&lt;&lt;&lt;cd");
	buf_release(&out);
	tmpl_free(t);
	json_decref(ctx);
}

struct worker {
	const struct tmpl	*t;
	int			 first;
	int			 bad;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	struct tmpl_opts o = { .strict = 1 };
	struct buf out = BUF_INIT(0), want = BUF_INIT(0);

	for (int i = w->first; i < w->first + 300; i++) {
		json_t *ctx = declarer_ctx(i, &want);

		if (tmpl_render(w->t, ctx, &o, &out, NULL) != 0 ||
		    strcmp(buf_str(&out), buf_str(&want)) != 0)
			w->bad++;
		buf_reset(&out);
		buf_reset(&want);
		json_decref(ctx);
	}
	buf_release(&out);
	buf_release(&want);
	return NULL;
}

static void
test_threads(void **state)
{
	struct tmpl_opts o = { .load = footer_loader };
	struct tmpl *t = NULL;
	struct err e = ERR_INIT;
	struct worker w[8];
	pthread_t th[8];

	(void)state;
	assert_int_equal(tmpl_parse(&t, newsletter, strlen(newsletter),
	    "newsletter.html", &o, &e), 0);
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){ t, i * 1000, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, worker_run,
		    &w[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].bad, 0);
	}
	tmpl_free(t);
}

/* --- partials from files ------------------------------------------------- */

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	assert_int_equal(fclose(fp), 0);
}

static void
test_dir_loader(void **state)
{
	char dir[] = "/tmp/test_tmpl.XXXXXX", want[4200], path[4096];
	struct tmpl_dir d = { dir, ".mustache", 64 };
	struct tmpl_opts o = { .load = tmpl_dir_load, .load_arg = &d,
	    .escape = TMPL_ESCAPE_NONE, .strict = 1 };
	struct tmpl *t = NULL;
	struct buf out = BUF_INIT(0);
	struct err e = ERR_INIT;
	json_t *ctx = json_pack("{s:s}", "who", "世界");

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_file(dir, "hello.mustache", "こんにちは、{{who}}\n");
	write_file(dir, "broken.mustache", "ok\n{{#who}}\n");
	write_file(dir, "big.mustache", "0123456789012345678901234567890123"
	    "456789012345678901234567890123456789");

	assert_int_equal(tmpl_parse(&t, "> {{>hello}}", 12, "m", &o, &e), 0);
	assert_int_equal(tmpl_render(t, ctx, &o, &out, &e), 0);
	assert_string_equal(buf_str(&out), "> こんにちは、世界\n");
	tmpl_free(t);

	/* Errors inside a partial file name the file. */
	assert_int_equal(tmpl_parse(&t, "{{>broken}}", 11, "m", &o, &e),
	    -ERR_PARSE);
	snprintf(want, sizeof(want), "%s/broken.mustache:2:1: section 'who' "
	    "is never closed (the template ends at line 2)", dir);
	assert_string_equal(e.msg, want);

	assert_int_equal(tmpl_parse(&t, "x {{>nothere}}", 14, "m", &o, &e),
	    -ERR_PARSE);
	assert_string_equal(e.msg, "m:1:3: partial 'nothere' not found");

	assert_int_equal(tmpl_parse(&t, "{{>../etc/passwd}}", 18, "m", &o,
	    &e), -ERR_INVAL);
	assert_string_equal(e.msg, "m:1:1: partial '../etc/passwd': bad "
	    "partial name '../etc/passwd': no '/' and no leading '.'");

	assert_int_equal(tmpl_parse(&t, "{{>big}}", 8, "m", &o, &e),
	    -ERR_TOOBIG);
	snprintf(want, sizeof(want), "m:1:1: partial 'big': '%s/big.mustache' "
	    "is larger than 64 bytes", dir);
	assert_string_equal(e.msg, want);

	buf_release(&out);
	json_decref(ctx);
	for (const char *const *f = (const char *const[]){ "hello.mustache",
	    "broken.mustache", "big.mustache", NULL }; *f != NULL; f++) {
		snprintf(path, sizeof(path), "%s/%s", dir, *f);
		unlink(path);
	}
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec),
		cmocka_unit_test(test_error_unclosed_tags),
		cmocka_unit_test(test_error_sections),
		cmocka_unit_test(test_error_nesting_limit),
		cmocka_unit_test(test_error_delimiters),
		cmocka_unit_test(test_error_names),
		cmocka_unit_test(test_error_columns_count_characters),
		cmocka_unit_test(test_error_utf8),
		cmocka_unit_test(test_error_partials),
		cmocka_unit_test(test_error_loader),
		cmocka_unit_test(test_escape_modes),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_context_stack),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_strict_partial_at_render),
		cmocka_unit_test(test_partial_recursion_limit),
		cmocka_unit_test(test_runaway_rendering),
		cmocka_unit_test(test_partials_loaded_once),
		cmocka_unit_test(test_partial_indentation),
		cmocka_unit_test(test_render_many),
		cmocka_unit_test(test_buffer_cap),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_dir_loader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
