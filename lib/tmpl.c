/*
 * tmpl — a Mustache engine for the mail templates.
 *
 * Parsing turns each template (the main one and every partial it reaches)
 * into a flat array of nodes; a section node records where its body ends,
 * so rendering walks index ranges and the parser needs no recursion.  Text
 * and names point into a private copy of the source.
 *
 * Standalone lines and partial indentation follow the spec's "indent the
 * partial's source, then render it" rule without re-parsing per indent:
 * the parser puts an N_INDENT node wherever a source line begins with a
 * tag (or text) that is still there after standalone lines were removed,
 * and a text node's inner line starts are found while rendering.  Outside
 * an indented standalone partial both cost nothing but a branch.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tmpl.h"
#include "xalloc.h"

enum ntype {
	N_TEXT,		/* s/len: literal text */
	N_INDENT,	/* a source line starts here: emit the indentation */
	N_VAR,		/* s/len: the name */
	N_SECTION,	/* s/len: the name; body is [i + 1, end) */
	N_INVERTED,	/* same */
	N_PARTIAL,	/* part: index in tmpl->parts; ind: see below */
};

struct node {
	enum ntype	 type;
	int		 raw;		/* N_VAR: {{{x}}} or {{&x}}, never escaped */
	int		 standalone;	/* N_PARTIAL: alone on its line */
	size_t		 off;		/* where the tag starts, for messages */
	const char	*s;
	size_t		 len;
	size_t		 end;		/* N_SECTION, N_INVERTED */
	size_t		 part;		/* N_PARTIAL */
	const char	*ind;		/* N_PARTIAL standalone: its indentation */
	size_t		 indlen;
};

/* The main template (parts[0]) or one partial. */
struct part {
	char		*key;		/* partial name as in the tag; NULL for main */
	char		*label;		/* for messages: file path or name */
	char		*src;		/* private copy, NUL-terminated */
	size_t		 len;
	int		 missing;	/* the loader had no such partial */
	int		 parsed;
	struct node	*nodes;
	size_t		 nnodes;
};

struct tmpl {
	struct part	*parts;
	size_t		 nparts;
};

/* Render-time recursion bound (sections and partials together), so that
 * even a large max_depth cannot run the stack out. */
#define RENDER_MAX_NESTING	2000
/* max_depth is clamped to this, for the same reason. */
#define MAX_DEPTH_LIMIT		256
/*
 * Nodes one render may visit.  Sections over the same list nested in each
 * other (the name is found again up the stack at every level) take
 * len^depth steps; with no output the buffer cap never stops them, and
 * without this budget they are a hang, not an error.  A real newsletter
 * visits a few thousand nodes.
 */
#define RENDER_MAX_STEPS	10000000UL

/* --- positions and messages -------------------------------------------- */

/* 1-based line and column (in UTF-8 code points) of byte offset off. */
static void
position(const char *src, size_t off, unsigned *line, unsigned *col)
{
	unsigned l = 1, c = 1;

	for (size_t i = 0; i < off; i++) {
		if (src[i] == '\n') {
			l++;
			c = 1;
		} else if (((unsigned char)src[i] & 0xC0) != 0x80)
			c++;
	}
	*line = l;
	*col = c;
}

static unsigned
line_of(const char *src, size_t off)
{
	unsigned l, c;

	position(src, off, &l, &c);
	return l;
}

/* err_set() with "LABEL:LINE:COL: " in front. */
static int __attribute__((format(printf, 5, 6)))
pos_err(struct err *e, int code, const struct part *p, size_t off,
    const char *fmt, ...)
{
	char msg[sizeof(e->msg)];
	unsigned line, col;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	position(p->src, off, &line, &col);
	return err_set(e, code, "%s:%u:%u: %s", p->label, line, col, msg);
}

/*
 * Offset of the first byte that is not part of valid UTF-8 (no overlongs,
 * no surrogates, nothing above U+10FFFF), or len.  Templates are the
 * boundary for their own text: one saved in Shift_JIS must be refused with
 * its position, not mailed as mojibake to every declarer.
 */
static size_t
utf8_invalid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			n = 1;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			n = 2;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			n = 3;
			cp = c & 0x07;
		} else
			return i;
		if (len - i <= n)
			return i;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return i;
		i += n + 1;
	}
	return len;
}

/* --- parsing ------------------------------------------------------------ */

struct parser {
	struct tmpl		*t;
	size_t			 pi;	/* the part being parsed */
	const struct tmpl_opts	*opts;
	struct err		*e;
	const char		*src;
	size_t			 len;
	const char		*otag, *ctag;
	size_t			 olen, clen;
	struct node		*nodes;
	size_t			 n, cap;
	size_t			 open[TMPL_MAX_NESTING];	/* open sections */
	size_t			 nopen;
};

static int
is_blank(int c)
{
	return c == ' ' || c == '\t';
}

static int
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	    c == '\v';
}

static struct part *
cur(struct parser *ps)
{
	return &ps->t->parts[ps->pi];
}

static struct node *
add_node(struct parser *ps, enum ntype type, size_t off)
{
	struct node *n;

	if (ps->n == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 32;
		ps->nodes = xreallocarray(ps->nodes, ps->cap, sizeof(*n));
	}
	n = &ps->nodes[ps->n++];
	memset(n, 0, sizeof(*n));
	n->type = type;
	n->off = off;
	return n;
}

static int
at_line_start(const char *src, size_t off)
{
	return off == 0 || src[off - 1] == '\n';
}

/* Text [a, b), preceded by an N_INDENT when it begins a source line. */
static void
add_text(struct parser *ps, size_t a, size_t b)
{
	struct node *n;

	if (b <= a)
		return;
	if (at_line_start(ps->src, a))
		add_node(ps, N_INDENT, a);
	n = add_node(ps, N_TEXT, a);
	n->s = ps->src + a;
	n->len = b - a;
}

/* First occurrence at or after `from` of `pre` (if not 0) directly
 * followed by the closing delimiter; returns the offset of the match
 * or (size_t)-1. */
static size_t
find_close(const struct parser *ps, size_t from, char pre)
{
	size_t need = ps->clen + (pre ? 1 : 0);

	for (size_t i = from; i + need <= ps->len; i++) {
		const char *p = memchr(ps->src + i, pre ? pre : ps->ctag[0],
		    ps->len - i - need + 1);

		if (p == NULL)
			break;
		i = (size_t)(p - ps->src);
		if (memcmp(ps->src + i + (pre ? 1 : 0), ps->ctag, ps->clen) == 0)
			return i;
	}
	return (size_t)-1;
}

static size_t
find_open(const struct parser *ps, size_t from)
{
	const char *p = NULL;

	if (from < ps->len)
		p = memmem(ps->src + from, ps->len - from, ps->otag, ps->olen);
	return p != NULL ? (size_t)(p - ps->src) : (size_t)-1;
}

static void
trim(const char **s, size_t *len)
{
	while (*len > 0 && is_space((unsigned char)(*s)[0])) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && is_space((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

/*
 * Check a trimmed tag name.  "." is the implicit iterator; otherwise
 * dot-separated non-empty parts without whitespace.  Inner whitespace is
 * refused because in our templates it is always a typo ("{{org name}}"),
 * and so is an empty part ("{{org..name}}").
 */
static int
check_name(struct parser *ps, size_t off, const char *what, const char *s,
    size_t len, int dotted)
{
	if (len == 0)
		return pos_err(ps->e, ERR_PARSE, cur(ps), off,
		    "%s tag has no name", what);
	for (size_t i = 0; i < len; i++)
		if (is_space((unsigned char)s[i]))
			return pos_err(ps->e, ERR_PARSE, cur(ps), off,
			    "%s name '%.*s' contains whitespace", what,
			    (int)len, s);
	if (!dotted || (len == 1 && s[0] == '.'))
		return 0;
	if (s[0] == '.' || s[len - 1] == '.' || memmem(s, len, "..", 2))
		return pos_err(ps->e, ERR_PARSE, cur(ps), off,
		    "%s name '%.*s' has an empty part (stray '.')", what,
		    (int)len, s);
	return 0;
}

/* Find or load the partial called name[0..len); returns its index. */
static int
partial_ref(struct parser *ps, size_t off, const char *name, size_t len,
    size_t *idx)
{
	struct tmpl *t = ps->t;
	struct buf src = BUF_INIT(0), label = BUF_INIT(0);
	struct part *p;
	char *key;
	int rc = 0;

	for (size_t i = 1; i < t->nparts; i++)
		if (strlen(t->parts[i].key) == len &&
		    memcmp(t->parts[i].key, name, len) == 0) {
			*idx = i;
			return 0;
		}
	key = xstrndup(name, len);
	if (ps->opts->load != NULL)
		rc = ps->opts->load(ps->opts->load_arg, key, &src, &label,
		    ps->e);
	else
		rc = -ERR_NOTFOUND;
	if (rc == -ERR_NOTFOUND && ps->opts->strict) {
		rc = pos_err(ps->e, ERR_PARSE, cur(ps), off,
		    "partial '%s' not found", key);
		goto out;
	} else if (rc < 0 && rc != -ERR_NOTFOUND) {
		char msg[sizeof(ps->e->msg)];

		/* ps->e may be NULL; the message is only for the prefix. */
		snprintf(msg, sizeof(msg), "%s", ps->e ? ps->e->msg : "");
		pos_err(ps->e, -rc, cur(ps), off, "partial '%s': %s", key,
		    msg);
		goto out;
	}
	t->parts = xreallocarray(t->parts, t->nparts + 1, sizeof(*p));
	p = &t->parts[t->nparts];
	memset(p, 0, sizeof(*p));
	p->key = key;
	key = NULL;
	if (rc == -ERR_NOTFOUND) {
		p->missing = 1;
		p->parsed = 1;
		p->label = xstrdup(p->key);
		rc = 0;
	} else {
		p->len = src.len;
		p->src = buf_detach(&src, NULL);
		p->label = label.len > 0 ? buf_detach(&label, NULL) :
		    xstrdup(p->key);
	}
	*idx = t->nparts++;
out:
	free(key);
	buf_release(&src);
	buf_release(&label);
	return rc;
}

/* {{=<% %>=}}: content is what lies between the two '='. */
static int
set_delims(struct parser *ps, size_t off, const char *s, size_t len)
{
	const char *a, *b;
	size_t alen = 0, blen = 0;

	trim(&s, &len);
	a = s;
	while (alen < len && !is_space((unsigned char)a[alen]))
		alen++;
	b = a + alen;
	while (b < s + len && is_space((unsigned char)*b))
		b++;
	blen = (size_t)(s + len - b);
	if (alen == 0 || blen == 0 || memchr(b, ' ', blen) ||
	    memchr(b, '\t', blen) || memchr(b, '\n', blen) ||
	    memchr(b, '\r', blen))
		return pos_err(ps->e, ERR_PARSE, cur(ps), off,
		    "bad set-delimiter tag: expected two delimiters separated "
		    "by a space, as in '{{=<%% %%>=}}'");
	if (memchr(a, '=', alen) || memchr(b, '=', blen))
		return pos_err(ps->e, ERR_PARSE, cur(ps), off,
		    "bad set-delimiter tag: a delimiter must not contain '='");
	ps->otag = a;
	ps->olen = alen;
	ps->ctag = b;
	ps->clen = blen;
	return 0;
}

static int
close_section(struct parser *ps, size_t off, const char *s, size_t len)
{
	struct node *top;
	size_t k;

	if (ps->nopen == 0)
		return pos_err(ps->e, ERR_PARSE, cur(ps), off,
		    "'%.*s/%.*s%.*s' closes a section that was never opened",
		    (int)ps->olen, ps->otag, (int)len, s, (int)ps->clen,
		    ps->ctag);
	top = &ps->nodes[ps->open[ps->nopen - 1]];
	if (top->len == len && memcmp(top->s, s, len) == 0) {
		top->end = ps->n;
		ps->nopen--;
		return 0;
	}
	for (k = ps->nopen - 1; k-- > 0;) {
		struct node *o = &ps->nodes[ps->open[k]];

		if (o->len == len && memcmp(o->s, s, len) == 0)
			return pos_err(ps->e, ERR_PARSE, cur(ps), off,
			    "section '%.*s' is never closed (opened at line "
			    "%u)", (int)top->len, top->s,
			    line_of(ps->src, top->off));
	}
	return pos_err(ps->e, ERR_PARSE, cur(ps), off,
	    "'%.*s/%.*s%.*s' does not match the open section '%.*s' (opened "
	    "at line %u)", (int)ps->olen, ps->otag, (int)len, s,
	    (int)ps->clen, ps->ctag, (int)top->len, top->s,
	    line_of(ps->src, top->off));
}

/* Parse part pi into its node array. */
static int
parse_part(struct tmpl *t, size_t pi, const struct tmpl_opts *opts,
    struct err *e)
{
	struct parser ps;
	size_t pos = 0, text = 0, bad;
	int rc = 0;

	memset(&ps, 0, sizeof(ps));
	ps.t = t;
	ps.pi = pi;
	ps.opts = opts;
	ps.e = e;
	ps.src = t->parts[pi].src;
	ps.len = t->parts[pi].len;
	/* Every template, partials included, starts with the defaults. */
	ps.otag = "{{";
	ps.olen = 2;
	ps.ctag = "}}";
	ps.clen = 2;

	if ((bad = utf8_invalid((const unsigned char *)ps.src, ps.len)) <
	    ps.len) {
		rc = pos_err(e, ERR_PARSE, cur(&ps), bad,
		    "not valid UTF-8 (byte 0x%02X); save the template as "
		    "UTF-8", (unsigned char)ps.src[bad]);
		goto out;
	}

	for (;;) {
		size_t ts, c, k, te, ls, le, body;
		const char *name;
		size_t nlen;
		int sigil, standalone = 0;
		enum ntype type;
		struct node *n;

		if ((ts = find_open(&ps, pos)) == (size_t)-1)
			break;
		c = ts + ps.olen;
		sigil = c < ps.len ? (unsigned char)ps.src[c] : 0;
		body = c + 1;
		switch (sigil) {
		case '{':
			k = find_close(&ps, body, '}');
			te = k + 1 + ps.clen;
			break;
		case '=':
			k = find_close(&ps, body, '=');
			te = k + 1 + ps.clen;
			break;
		case '#': case '^': case '/': case '>': case '&': case '!':
			k = find_close(&ps, body, 0);
			te = k + ps.clen;
			break;
		case '<': case '$':
			rc = pos_err(e, ERR_PARSE, cur(&ps), ts,
			    "'%.*s%c' (template inheritance) is not supported",
			    (int)ps.olen, ps.otag, sigil);
			goto out;
		default:
			body = c;
			k = find_close(&ps, body, 0);
			te = k + ps.clen;
			break;
		}
		/* Another opening delimiter inside the tag means this one
		 * was never closed (comments may hold anything). */
		if (k == (size_t)-1 || (sigil != '!' && sigil != '=' &&
		    memmem(ps.src + body, k - body, ps.otag, ps.olen))) {
			rc = pos_err(e, ERR_PARSE, cur(&ps), ts,
			    "tag is never closed (expected '%s%.*s')",
			    sigil == '{' ? "}" : sigil == '=' ? "=" : "",
			    (int)ps.clen, ps.ctag);
			goto out;
		}
		name = ps.src + body;
		nlen = k - body;
		trim(&name, &nlen);

		/*
		 * Standalone: only blanks around the tag on its line.  Its
		 * line then disappears from the output, indentation and
		 * newline included.  Interpolation tags never are.
		 */
		ls = le = 0;
		if (strchr("#^/>!=", sigil) != NULL && sigil != 0) {
			ls = ts;
			while (ls > text && is_blank(ps.src[ls - 1]))
				ls--;
			le = te;
			while (le < ps.len && is_blank(ps.src[le]))
				le++;
			if (at_line_start(ps.src, ls) && (le == ps.len ||
			    ps.src[le] == '\n' || (ps.src[le] == '\r' &&
			    le + 1 < ps.len && ps.src[le + 1] == '\n'))) {
				standalone = 1;
				if (le < ps.len)
					le += ps.src[le] == '\r' ? 2 : 1;
			}
		}
		if (standalone) {
			add_text(&ps, text, ls);
			pos = text = le;
		} else {
			add_text(&ps, text, ts);
			pos = text = te;
			/* The tag begins a source line that survives. */
			if (at_line_start(ps.src, ts))
				add_node(&ps, N_INDENT, ts);
		}

		switch (sigil) {
		case '!':
			break;
		case '=':
			if ((rc = set_delims(&ps, ts, ps.src + body,
			    k - body)) < 0)
				goto out;
			break;
		case '/':
			if ((rc = check_name(&ps, ts, "closing", name,
			    nlen, 1)) < 0 ||
			    (rc = close_section(&ps, ts, name, nlen)) < 0)
				goto out;
			break;
		case '#':
		case '^':
			if ((rc = check_name(&ps, ts, "section", name, nlen,
			    1)) < 0)
				goto out;
			if (ps.nopen == TMPL_MAX_NESTING) {
				rc = pos_err(e, ERR_PARSE, cur(&ps), ts,
				    "sections nested deeper than %d",
				    TMPL_MAX_NESTING);
				goto out;
			}
			type = sigil == '#' ? N_SECTION : N_INVERTED;
			ps.open[ps.nopen++] = ps.n;
			n = add_node(&ps, type, ts);
			n->s = name;
			n->len = nlen;
			break;
		case '>': {
			size_t idx = 0;

			if ((rc = check_name(&ps, ts, "partial", name, nlen,
			    0)) < 0 ||
			    (rc = partial_ref(&ps, ts, name, nlen, &idx)) < 0)
				goto out;
			n = add_node(&ps, N_PARTIAL, ts);
			n->s = name;
			n->len = nlen;
			n->part = idx;
			n->standalone = standalone;
			n->ind = ps.src + ls;
			n->indlen = standalone ? ts - ls : 0;
			break;
		}
		default:
			if ((rc = check_name(&ps, ts, "variable", name, nlen,
			    1)) < 0)
				goto out;
			n = add_node(&ps, N_VAR, ts);
			n->s = name;
			n->len = nlen;
			n->raw = sigil == '{' || sigil == '&';
			break;
		}
	}
	add_text(&ps, text, ps.len);
	if (ps.nopen > 0) {
		struct node *top = &ps.nodes[ps.open[ps.nopen - 1]];

		rc = pos_err(e, ERR_PARSE, cur(&ps), top->off,
		    "section '%.*s' is never closed (the template ends at "
		    "line %u)", (int)top->len, top->s,
		    line_of(ps.src, ps.len > 0 ? ps.len - 1 : 0));
		goto out;
	}
	t->parts[pi].nodes = ps.n ? xreallocarray(ps.nodes, ps.n,
	    sizeof(*ps.nodes)) : NULL;
	if (ps.n == 0)
		free(ps.nodes);
	t->parts[pi].nnodes = ps.n;
	t->parts[pi].parsed = 1;
	ps.nodes = NULL;
out:
	free(ps.nodes);
	return rc;
}

int
tmpl_parse(struct tmpl **out, const char *src, size_t len, const char *name,
    const struct tmpl_opts *opts, struct err *e)
{
	static const struct tmpl_opts defaults;
	struct tmpl *t;
	int rc = 0;

	*out = NULL;
	if (opts == NULL)
		opts = &defaults;
	t = xcalloc(1, sizeof(*t));
	t->parts = xcalloc(1, sizeof(*t->parts));
	t->nparts = 1;
	t->parts[0].label = xstrdup(name != NULL ? name : "template");
	t->parts[0].src = xmalloc(len + 1);
	if (len > 0)
		memcpy(t->parts[0].src, src, len);
	t->parts[0].src[len] = '\0';
	t->parts[0].len = len;

	/* Partials found while parsing are appended; parse until none is
	 * left.  No recursion, and each partial is parsed once however often
	 * (or cyclically) it is included. */
	for (size_t i = 0; i < t->nparts; i++)
		if (!t->parts[i].parsed &&
		    (rc = parse_part(t, i, opts, e)) < 0)
			goto out;
	*out = t;
	t = NULL;
out:
	tmpl_free(t);
	return rc;
}

const char *
tmpl_name(const struct tmpl *t)
{
	return t->parts[0].label;
}

void
tmpl_free(struct tmpl *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nparts; i++) {
		free(t->parts[i].key);
		free(t->parts[i].label);
		free(t->parts[i].src);
		free(t->parts[i].nodes);
	}
	free(t->parts);
	free(t);
}

/* --- rendering ---------------------------------------------------------- */

struct render {
	const struct tmpl	*t;
	enum tmpl_escape	 escape;
	int			 strict;
	unsigned		 max_depth;
	unsigned		 nest;
	unsigned long		 steps;
	struct buf		*out;
	struct err		*e;
};

/* The context stack, on the C stack: one frame per section level. */
struct frame {
	json_t			*v;
	const struct frame	*up;
};

/* Indentation of the standalone partials being rendered, outermost last. */
struct indent {
	const char		*s;
	size_t			 len;
	const struct indent	*up;
};

static int
emit(struct render *r, const char *s, size_t n)
{
	if (buf_add(r->out, s, n) < 0)
		return err_set(r->e, ERR_TOOBIG,
		    "rendering '%s': output larger than the limit of %zu "
		    "bytes", tmpl_name(r->t), r->out->max);
	return 0;
}

static int
emit_indent(struct render *r, const struct indent *ind)
{
	int rc;

	if (ind == NULL)
		return 0;
	if ((rc = emit_indent(r, ind->up)) < 0)
		return rc;
	return emit(r, ind->s, ind->len);
}

const char *
tmpl_html_entity(char c)
{
	switch (c) {
	case '&':	return "&amp;";
	case '<':	return "&lt;";
	case '>':	return "&gt;";
	case '"':	return "&quot;";
	case '\'':	return "&#39;";
	default:	return NULL;
	}
}

static int
emit_escaped(struct render *r, const char *s, size_t n)
{
	size_t run = 0;
	int rc;

	for (size_t i = 0; i < n; i++) {
		const char *rep = tmpl_html_entity(s[i]);

		if (rep == NULL)
			continue;
		if ((rc = emit(r, s + run, i - run)) < 0 ||
		    (rc = emit(r, rep, strlen(rep))) < 0)
			return rc;
		run = i + 1;
	}
	return emit(r, s + run, n - run);
}

/* Text, with the indentation after each newline that is not its last
 * character (a line start at its end belongs to the next node). */
static int
emit_text(struct render *r, const struct node *n, const struct indent *ind)
{
	const char *s = n->s, *end = n->s + n->len, *nl;
	int rc;

	if (ind == NULL)
		return emit(r, s, n->len);
	while ((nl = memchr(s, '\n', (size_t)(end - s))) != NULL &&
	    nl + 1 < end) {
		if ((rc = emit(r, s, (size_t)(nl + 1 - s))) < 0 ||
		    (rc = emit_indent(r, ind)) < 0)
			return rc;
		s = nl + 1;
	}
	return emit(r, s, (size_t)(end - s));
}

/*
 * A double in the shortest form that reads back as the same value,
 * positional unless the exponent is very large or small (1.21, 0.001,
 * 100000, 1e+21), like JavaScript's Number#toString.
 */
static void
format_real(char *out, size_t sz, double d)
{
	char e[40];
	int prec, exp;

	for (prec = 1; prec < 17; prec++) {
		snprintf(e, sizeof(e), "%.*e", prec - 1, d);
		if (strtod(e, NULL) == d)
			break;
	}
	snprintf(e, sizeof(e), "%.*e", prec - 1, d);
	exp = atoi(strchr(e, 'e') + 1);
	if (exp >= -6 && exp < 21)
		snprintf(out, sz, "%.*f", prec - 1 - exp > 0 ?
		    prec - 1 - exp : 0, d);
	else
		snprintf(out, sz, "%s", e);
	/* printf follows LC_NUMERIC; mail text does not. */
	for (char *p = out; *p != '\0'; p++)
		if (*p == ',')
			*p = '.';
}

/* The value a name resolves to, or NULL when it resolves to nothing. */
static json_t *
lookup(const struct frame *ctx, const char *name, size_t len)
{
	const char *dot, *end = name + len;
	json_t *v = NULL;
	size_t seg;

	if (len == 1 && name[0] == '.')
		return ctx->v;
	dot = memchr(name, '.', len);
	seg = dot != NULL ? (size_t)(dot - name) : len;
	/* The first part goes up the context stack ... */
	for (const struct frame *f = ctx; f != NULL && v == NULL; f = f->up)
		if (json_is_object(f->v))
			v = json_object_getn(f->v, name, seg);
	/* ... the rest only down from what it found (spec: no fallback). */
	while (v != NULL && dot != NULL) {
		name = dot + 1;
		dot = memchr(name, '.', (size_t)(end - name));
		seg = dot != NULL ? (size_t)(dot - name) :
		    (size_t)(end - name);
		v = json_is_object(v) ? json_object_getn(v, name, seg) : NULL;
	}
	return v;
}

static int
truthy(const json_t *v)
{
	return v != NULL && !json_is_null(v) && !json_is_false(v) &&
	    !(json_is_array(v) && json_array_size(v) == 0);
}

static int
render_var(struct render *r, const struct part *p, const struct node *n,
    const struct frame *ctx)
{
	json_t *v = lookup(ctx, n->s, n->len);
	char num[64];

	if (v == NULL) {
		if (r->strict)
			return pos_err(r->e, ERR_PARSE, p, n->off,
			    "'%.*s' is not defined", (int)n->len, n->s);
		return 0;
	}
	switch (json_typeof(v)) {
	case JSON_STRING:
		if (!n->raw && r->escape == TMPL_ESCAPE_HTML)
			return emit_escaped(r, json_string_value(v),
			    json_string_length(v));
		return emit(r, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		return emit(r, num, strlen(num));
	case JSON_REAL:
		format_real(num, sizeof(num), json_real_value(v));
		return emit(r, num, strlen(num));
	case JSON_TRUE:
		return emit(r, "true", 4);
	case JSON_FALSE:
		return emit(r, "false", 5);
	case JSON_NULL:
		return 0;
	case JSON_OBJECT:
	case JSON_ARRAY:
		if (r->strict)
			return pos_err(r->e, ERR_PARSE, p, n->off,
			    "'%.*s' is %s, not a value; use a section",
			    (int)n->len, n->s, json_is_object(v) ?
			    "an object" : "a list");
		return 0;
	}
	return 0;
}

static int render_range(struct render *, const struct part *, size_t,
    size_t, const struct frame *, const struct indent *, unsigned);

static int
render_partial(struct render *r, const struct part *p, const struct node *n,
    const struct frame *ctx, const struct indent *ind, unsigned depth)
{
	const struct part *pp = &r->t->parts[n->part];
	struct indent mine = { n->ind, n->indlen, ind };
	const struct indent *inner = NULL;

	if (pp->missing) {
		if (r->strict)
			return pos_err(r->e, ERR_PARSE, p, n->off,
			    "partial '%s' not found", pp->key);
		return 0;
	}
	if (depth >= r->max_depth)
		return pos_err(r->e, ERR_PARSE, p, n->off,
		    "partials nested deeper than %u (does '%s' include "
		    "itself?)", r->max_depth, pp->key);
	/* Only a standalone partial is indented; its lines get the
	 * indentation of every standalone partial around it too. */
	if (n->standalone)
		inner = n->indlen > 0 ? &mine : ind;
	return render_range(r, pp, 0, pp->nnodes, ctx, inner, depth + 1);
}

static int
render_range(struct render *r, const struct part *p, size_t i, size_t end,
    const struct frame *ctx, const struct indent *ind, unsigned depth)
{
	int rc = 0;

	if (++r->nest > RENDER_MAX_NESTING) {
		rc = pos_err(r->e, ERR_PARSE, p, i < p->nnodes ?
		    p->nodes[i].off : p->len, "sections and partials nested "
		    "deeper than %d", RENDER_MAX_NESTING);
		goto out;
	}
	while (i < end) {
		const struct node *n = &p->nodes[i];
		json_t *v;

		if (++r->steps > RENDER_MAX_STEPS) {
			rc = pos_err(r->e, ERR_PARSE, p, n->off, "rendering "
			    "takes more than %lu steps (sections over the "
			    "same list nested in each other?)",
			    RENDER_MAX_STEPS);
			goto out;
		}
		switch (n->type) {
		case N_TEXT:
			rc = emit_text(r, n, ind);
			break;
		case N_INDENT:
			rc = emit_indent(r, ind);
			break;
		case N_VAR:
			rc = render_var(r, p, n, ctx);
			break;
		case N_PARTIAL:
			rc = render_partial(r, p, n, ctx, ind, depth);
			break;
		case N_INVERTED:
			v = lookup(ctx, n->s, n->len);
			if (!truthy(v))
				rc = render_range(r, p, i + 1, n->end, ctx,
				    ind, depth);
			i = n->end;
			if (rc < 0)
				goto out;
			continue;
		case N_SECTION:
			v = lookup(ctx, n->s, n->len);
			if (json_is_array(v)) {
				for (size_t k = 0; k < json_array_size(v) &&
				    rc == 0; k++) {
					struct frame f = {
						json_array_get(v, k), ctx };

					rc = render_range(r, p, i + 1, n->end,
					    &f, ind, depth);
				}
			} else if (truthy(v)) {
				struct frame f = { v, ctx };

				rc = render_range(r, p, i + 1, n->end, &f,
				    ind, depth);
			}
			i = n->end;
			if (rc < 0)
				goto out;
			continue;
		}
		if (rc < 0)
			goto out;
		i++;
	}
out:
	r->nest--;
	return rc;
}

int
tmpl_render(const struct tmpl *t, json_t *ctx, const struct tmpl_opts *opts,
    struct buf *out, struct err *e)
{
	struct render r;
	struct frame root;

	memset(&r, 0, sizeof(r));
	r.t = t;
	r.out = out;
	r.e = e;
	r.max_depth = TMPL_DEFAULT_DEPTH;
	if (opts != NULL) {
		r.escape = opts->escape;
		r.strict = opts->strict;
		if (opts->max_depth != 0)
			r.max_depth = opts->max_depth;
	}
	if (r.max_depth > MAX_DEPTH_LIMIT)
		r.max_depth = MAX_DEPTH_LIMIT;
	root.v = ctx != NULL ? ctx : json_null();
	root.up = NULL;
	return render_range(&r, &t->parts[0], 0, t->parts[0].nnodes, &root,
	    NULL, 0);
}

/* --- partials from a directory ------------------------------------------ */

int
tmpl_dir_load(void *arg, const char *name, struct buf *src,
    struct buf *label, struct err *e)
{
	const struct tmpl_dir *d = arg;
	size_t max = d->max ? d->max : 1024 * 1024;
	char chunk[8192];
	struct stat st;
	FILE *fp = NULL;
	size_t n;
	int rc;

	/* Partial names come from admin-edited templates: keep them inside
	 * the template directory. */
	if (name[0] == '.' || strchr(name, '/') != NULL)
		return err_set(e, ERR_INVAL, "bad partial name '%s': no '/' "
		    "and no leading '.'", name);
	if ((rc = buf_addf(label, "%s/%s%s", d->dir, name,
	    d->suffix ? d->suffix : "")) < 0)
		return err_set(e, ERR_TOOBIG, "partial path too long");
	if ((fp = fopen(buf_str(label), "rb")) == NULL) {
		if (errno == ENOENT)
			return err_set(e, ERR_NOTFOUND, "'%s' does not exist",
			    buf_str(label));
		return err_set(e, ERR_IO, "cannot open '%s': %s",
		    buf_str(label), strerror(errno));
	}
	if (fstat(fileno(fp), &st) == 0 && !S_ISREG(st.st_mode)) {
		rc = err_set(e, ERR_IO, "'%s' is not a regular file",
		    buf_str(label));
		goto out;
	}
	src->max = max;
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		if (buf_add(src, chunk, n) < 0) {
			rc = err_set(e, ERR_TOOBIG, "'%s' is larger than %zu "
			    "bytes", buf_str(label), max);
			goto out;
		}
	if (ferror(fp)) {
		rc = err_set(e, ERR_IO, "cannot read '%s': %s",
		    buf_str(label), strerror(errno));
		goto out;
	}
	rc = 0;
out:
	fclose(fp);
	return rc;
}
