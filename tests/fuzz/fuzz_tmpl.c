/*
 * libFuzzer target for lib/tmpl.  Not built by the Makefile; run by hand:
 *
 *   clang -g -O1 -std=c17 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
 *       -Ilib tests/fuzz/fuzz_tmpl.c lib/tmpl.c lib/buf.c lib/err.c \
 *       lib/xalloc.c -ljansson -o build/fuzz_tmpl
 *   build/fuzz_tmpl -dict=tests/fuzz/tmpl.dict -max_len=4096 CORPUS_DIR
 *
 * Input: the template, then up to four partials "a".."d", separated by NUL
 * bytes.  Each input is parsed lenient and strict, and each parse rendered
 * with both escape modes against a fixed context that has lists, nested
 * objects, scalars and HTML-special strings under the names a..d.
 * Besides crashes and leaks the target checks what callers rely on: an
 * error always has a code and a "NAME:LINE:COL: " message, a success
 * leaves no error code, a render is deterministic and never exceeds the
 * output cap.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmpl.h"

#define NPARTS	5
#define CAP	(64 * 1024)

struct input {
	const char	*p[NPARTS];
	size_t		 len[NPARTS];
};

static int
load(void *arg, const char *name, struct buf *src, struct buf *label,
    struct err *e)
{
	const struct input *in = arg;

	(void)label;
	if (name[0] >= 'a' && name[0] <= 'd' && name[1] == '\0' &&
	    in->p[name[0] - 'a' + 1] != NULL)
		return buf_add(src, in->p[name[0] - 'a' + 1],
		    in->len[name[0] - 'a' + 1]);
	return err_set(e, ERR_NOTFOUND, "no partial '%s'", name);
}

/* "NAME:LINE:COL: " with LINE and COL positive numbers. */
static int
has_position(const char *msg, const char *name)
{
	size_t n = strlen(name);
	char *end;

	if (strncmp(msg, name, n) != 0 || msg[n] != ':')
		return 0;
	if (strtoul(msg + n + 1, &end, 10) == 0 || *end != ':')
		return 0;
	if (strtoul(end + 1, &end, 10) == 0 || strncmp(end, ": ", 2) != 0)
		return 0;
	return 1;
}

static json_t *ctx;

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in;
	const char *s = (const char *)data, *end = s + size;

	if (ctx == NULL)
		ctx = json_loads("{\"a\":[{\"b\":1,\"c\":\"<x&y>\"},{\"b\":"
		    "2.5,\"d\":[]}],\"b\":{\"c\":{\"d\":\"deep\"},\"a\":null},"
		    "\"c\":\"'\\\"&\",\"d\":[1,[2,3],true,false,null],"
		    "\"e\":\"\"}", 0, NULL);
	memset(&in, 0, sizeof(in));
	for (int i = 0; i < NPARTS && s <= end; i++) {
		const char *nul = memchr(s, '\0', (size_t)(end - s));

		in.p[i] = s;
		in.len[i] = nul ? (size_t)(nul - s) : (size_t)(end - s);
		s += in.len[i] + 1;
	}

	for (int strict = 0; strict < 2; strict++) {
		struct tmpl_opts o = { .strict = strict, .load = load,
		    .load_arg = &in, .max_depth = 8 };
		struct err e = ERR_INIT;
		struct tmpl *t = NULL;
		int rc;

		rc = tmpl_parse(&t, in.p[0], in.len[0], "f", &o, &e);
		if (rc < 0) {
			/* Errors in a partial carry its name instead. */
			if (t != NULL || e.code != -rc ||
			    (!has_position(e.msg, "f") &&
			    !has_position(e.msg, "a") &&
			    !has_position(e.msg, "b") &&
			    !has_position(e.msg, "c") &&
			    !has_position(e.msg, "d")))
				abort();
			continue;
		}
		for (int esc = 0; esc < 2; esc++) {
			struct buf b1 = BUF_INIT(CAP), b2 = BUF_INIT(CAP);
			struct err e1 = ERR_INIT, e2 = ERR_INIT;
			int r1, r2;

			o.escape = esc ? TMPL_ESCAPE_NONE : TMPL_ESCAPE_HTML;
			r1 = tmpl_render(t, ctx, &o, &b1, &e1);
			r2 = tmpl_render(t, ctx, &o, &b2, &e2);
			if (r1 != r2 || strcmp(e1.msg, e2.msg) != 0 ||
			    b1.len > CAP || (r1 == 0 && (b1.len != b2.len ||
			    memcmp(buf_str(&b1), buf_str(&b2), b1.len) != 0)))
				abort();
			if (r1 < 0 && (e1.code != -r1 || e1.msg[0] == '\0'))
				abort();
			if (r1 == 0 && e1.code != 0)
				abort();
			buf_release(&b1);
			buf_release(&b2);
		}
		tmpl_free(t);
	}
	return 0;
}
