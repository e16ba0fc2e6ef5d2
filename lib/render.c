#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "msg.h"
#include "render.h"
#include "text.h"
#include "tmpl.h"
#include "wrap.h"
#include "xalloc.h"

#define MAX_TEMPLATE	(256 * 1024)	/* one template file */
#define MAX_PART	(2 * 1024 * 1024)	/* one rendered part */

static const char *const locales[] = { "ja", "en" };
#define NLOCALES	(sizeof(locales) / sizeof(locales[0]))

static int
read_file(const char *path, char **out, size_t *lenp, struct err *e)
{
	FILE *fp;
	struct stat st;
	char *data;
	size_t n;

	if ((fp = fopen(path, "rb")) == NULL)
		return err_set(e, ERR_NOINPUT, "cannot open '%s': %s", path,
		    strerror(errno));
	if (fstat(fileno(fp), &st) < 0 || st.st_size > MAX_TEMPLATE) {
		fclose(fp);
		return err_set(e, ERR_TOOBIG, "'%s' is larger than %d KB", path,
		    MAX_TEMPLATE / 1024);
	}
	data = xmalloc((size_t)st.st_size + 1);
	n = fread(data, 1, (size_t)st.st_size, fp);
	fclose(fp);
	data[n] = '\0';
	*out = data;
	*lenp = n;
	return 0;
}

int
render_snapshot(const char *dir, json_t **out, struct err *e)
{
	json_t *snap = json_object();
	int rc = 0;

	*out = NULL;
	json_object_set_new(snap, "dir", json_string(dir));
	for (size_t i = 0; i < NLOCALES; i++) {
		char *ldir = xasprintf("%s/%s", dir, locales[i]);
		json_t *loc = json_object(), *files = json_object(), *content;
		json_error_t jerr;
		DIR *d;
		struct dirent *de;

		if ((d = opendir(ldir)) == NULL) {
			rc = err_set(e, ERR_NOINPUT, "cannot read templates "
			    "'%s': %s (set [paths] templates)", ldir,
			    strerror(errno));
			free(ldir);
			json_decref(loc);
			json_decref(files);
			goto out;
		}
		while ((de = readdir(d)) != NULL) {
			size_t n = strlen(de->d_name);
			char *path, *src = NULL, *name;
			size_t len = 0;

			if (n <= 9 || strcmp(de->d_name + n - 9, ".mustache") != 0 ||
			    de->d_name[0] == '.')
				continue;
			path = xasprintf("%s/%s", ldir, de->d_name);
			rc = read_file(path, &src, &len, e);
			free(path);
			if (rc < 0)
				break;
			name = xstrndup(de->d_name, n - 9);
			json_object_set_new(files, name, json_stringn(src, len));
			if (json_object_get(files, name) == NULL)
				rc = err_set(e, ERR_PARSE, "'%s/%s' is not valid "
				    "UTF-8", ldir, de->d_name);
			free(name);
			free(src);
			if (rc < 0)
				break;
		}
		closedir(d);
		if (rc == 0) {
			char *cpath = xasprintf("%s/content.json", ldir);

			content = json_load_file(cpath, JSON_REJECT_DUPLICATES,
			    &jerr);
			if (content == NULL)
				rc = err_set(e, access(cpath, F_OK) == 0 ?
				    ERR_PARSE : ERR_NOINPUT, "%s:%d:%d: %s",
				    cpath, jerr.line, jerr.column, jerr.text);
			else
				json_object_set_new(loc, "content", content);
			free(cpath);
		}
		json_object_set_new(loc, "files", files);
		json_object_set_new(snap, locales[i], loc);
		free(ldir);
		if (rc < 0)
			goto out;
	}
	*out = snap;
	snap = NULL;
out:
	json_decref(snap);
	return rc;
}

struct compiled {
	char		 locale[8];
	char		 name[64];
	struct tmpl	*t;
};

struct render {
	struct msg_cache *mc;		/* the shapes of its messages */
	json_t		*snap;
	char		*dir;
	char		*kind;
	struct compiled	*v;
	size_t		 n;
};

struct loadarg {
	json_t		*files;
	const char	*dir;
	const char	*locale;
};

/* Partials come from the snapshot, never from the file system: a campaign
 * renders the same whatever the files say now. */
static int
snap_load(void *arg, const char *name, struct buf *src, struct buf *label,
    struct err *e)
{
	struct loadarg *la = arg;
	json_t *v = json_object_get(la->files, name);

	(void)e;
	if (v == NULL)
		return -ERR_NOTFOUND;
	buf_add(src, json_string_value(v), json_string_length(v));
	buf_addf(label, "%s/%s/%s.mustache", la->dir, la->locale, name);
	return 0;
}

static int
compile(struct render *r, const char *locale, json_t *files, const char *name,
    struct err *e)
{
	struct loadarg la = { files, r->dir, locale };
	struct tmpl_opts o = { TMPL_ESCAPE_NONE, 1, snap_load, &la, 0 };
	json_t *src = json_object_get(files, name);
	char *label;
	struct tmpl *t;
	int rc;

	label = xasprintf("%s/%s/%s.mustache", r->dir, locale, name);
	if (src == NULL) {
		rc = err_set(e, ERR_NOINPUT, "template '%s' is missing", label);
		free(label);
		return rc;
	}
	rc = tmpl_parse(&t, json_string_value(src), json_string_length(src),
	    label, &o, e);
	free(label);
	if (rc < 0)
		return rc;
	r->v = xreallocarray(r->v, r->n + 1, sizeof(*r->v));
	snprintf(r->v[r->n].locale, sizeof(r->v[r->n].locale), "%s", locale);
	snprintf(r->v[r->n].name, sizeof(r->v[r->n].name), "%s", name);
	r->v[r->n].t = t;
	r->n++;
	return 0;
}

int
render_new(struct render **out, json_t *snap, const char *kind,
    const char *const *extra, struct err *e)
{
	static const char *const parts[] = { "subject", "txt", "html" };
	struct render *r = xcalloc(1, sizeof(*r));
	json_t *dir = json_object_get(snap, "dir");
	int rc = 0;

	*out = NULL;
	r->snap = json_incref(snap);
	r->mc = msg_cache_new();
	r->kind = xstrdup(kind != NULL ? kind : "");
	r->dir = xstrdup(json_is_string(dir) ? json_string_value(dir) : "templates");
	for (size_t i = 0; i < NLOCALES && rc == 0; i++) {
		json_t *loc = json_object_get(snap, locales[i]);
		json_t *files = json_object_get(loc, "files");
		char name[64];

		if (files == NULL) {
			rc = err_set(e, ERR_NOINPUT, "no templates for locale "
			    "'%s' in %s", locales[i], r->dir);
			break;
		}
		for (size_t p = 0; kind != NULL && p < 3 && rc == 0; p++) {
			snprintf(name, sizeof(name), "%s.%s", kind, parts[p]);
			rc = compile(r, locales[i], files, name, e);
		}
		for (size_t x = 0; extra != NULL && extra[x] != NULL && rc == 0; x++)
			rc = compile(r, locales[i], files, extra[x], e);
	}
	if (rc < 0) {
		render_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void
render_free(struct render *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		tmpl_free(r->v[i].t);
	free(r->v);
	free(r->dir);
	free(r->kind);
	json_decref(r->snap);
	msg_cache_free(r->mc);
	free(r);
}

json_t *
render_content(const struct render *r, const char *locale)
{
	json_t *c = json_object_get(json_object_get(r->snap, locale), "content");

	if (c == NULL)
		c = json_object_get(json_object_get(r->snap, "ja"), "content");
	return c;
}

static const struct tmpl *
find(const struct render *r, const char *locale, const char *name)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < r->n; i++)
			if (strcmp(r->v[i].locale, locale) == 0 &&
			    strcmp(r->v[i].name, name) == 0)
				return r->v[i].t;
		locale = "ja";		/* an unknown locale reads Japanese */
	}
	return NULL;
}

int
render_text(const struct render *r, const char *locale, const char *name,
    json_t *ctx, int html, int strict, struct buf *out, struct err *e)
{
	const struct tmpl *t = find(r, locale, name);
	struct tmpl_opts o = { html ? TMPL_ESCAPE_HTML : TMPL_ESCAPE_NONE,
	    strict, NULL, NULL, 0 };

	if (t == NULL)
		return err_set(e, ERR_SOFTWARE, "template '%s' (%s) was not "
		    "compiled", name, locale);
	return tmpl_render(t, ctx, &o, out, e);
}

/* A subject is one line: the template's line breaks and surrounding
 * blanks go (so a template may end in a newline). */
static void
one_line(struct buf *b)
{
	size_t w = 0;
	int sp = 0;

	for (size_t i = 0; i < b->len; i++) {
		char c = b->data[i];

		if (c == '\r' || c == '\n' || c == '\t')
			c = ' ';
		if (c == ' ') {
			if (w == 0 || sp)
				continue;
			sp = 1;
		} else
			sp = 0;
		b->data[w++] = c;
	}
	while (w > 0 && b->data[w - 1] == ' ')
		w--;
	buf_truncate(b, w);
}

/* Compose the message from its rendered subject (one line), text
 * (wrapped) and HTML; text_sc, html_sc: their scans if known (msg.h). */
static int
compose(const struct render *r, const struct render_env *env,
    const struct render_mail *m, const struct buf *subj,
    const struct buf *text, const struct buf *html,
    const struct text_scan *text_sc, const struct text_scan *html_sc,
    int cached, struct buf *out, struct err *e)
{
	struct msg_spec spec;
	struct msg_attachment att;
	char list_id[256], *to_name = NULL;
	int rc;

	if (subj->len == 0)
		return err_set(e, ERR_PARSE, "template %s/%s/%s.subject.mustache "
		    "renders an empty subject", r->dir, m->locale, r->kind);
	snprintf(list_id, sizeof(list_id), "%s", env->list_id);
	if (list_id[0] == '<') {
		memmove(list_id, list_id + 1, strlen(list_id));
		list_id[strcspn(list_id, ">")] = '\0';
	}
	memset(&spec, 0, sizeof(spec));
	spec.from.name = env->from_name_en != NULL &&
	    strcmp(m->locale, "en") == 0 ? env->from_name_en : env->from_name;
	spec.from.addr = env->from_addr;
	/* A long organisation name (200 characters are allowed) is cut in
	 * the To header, never a reason not to send. */
	spec.to.name = m->to_name;
	if (m->to_name != NULL && strlen(m->to_name) > MSG_NAME_MAX) {
		size_t n = MSG_NAME_MAX - strlen("…");

		while (n > 0 && ((unsigned char)m->to_name[n] & 0xc0) == 0x80)
			n--;
		to_name = xasprintf("%.*s…", (int)n, m->to_name);
		spec.to.name = to_name;
	}
	spec.to.addr = m->to_addr;
	spec.reply_to.addr = env->reply_to;
	spec.subject = buf_str(subj);
	spec.date = m->date;
	spec.message_id = m->message_id;
	spec.list_id = list_id;
	spec.list_name = env->list_name;
	spec.unsub_url = m->unsub_url;
	spec.unsub_mailto = m->unsub_mailto;
	spec.unsub_token = m->unsub_token;
	spec.one_click = m->unsub_url != NULL;
	spec.text = buf_str(text);
	spec.text_len = text->len;
	spec.html = buf_str(html);
	spec.html_len = html->len;
	spec.text_scan = text_sc;
	spec.html_scan = html_sc;
	spec.flags = env->flags;
	if (m->attach != NULL) {
		att.data = m->attach;
		att.len = m->attach_len;
		att.filename = m->attach_name;
		att.content_type = m->attach_type;
		spec.attachment = &att;
	}
	rc = cached ? msg_build_cached(r->mc, &spec, out, e) :
	    msg_build(&spec, out, e);
	free(to_name);
	return rc;
}

static int
render_whole(const struct render *r, const struct render_env *env,
    const struct render_mail *m, int cached, struct buf *out, struct err *e)
{
	struct buf subj = BUF_INIT(4096), text = BUF_INIT(MAX_PART),
	    wide = BUF_INIT(MAX_PART), html = BUF_INIT(MAX_PART);
	const char *kind = r->kind;
	char name[64];
	int rc;

	snprintf(name, sizeof(name), "%s.subject", kind);
	if ((rc = render_text(r, m->locale, name, m->ctx, 0, m->strict, &subj,
	    e)) < 0)
		goto out;
	one_line(&subj);
	snprintf(name, sizeof(name), "%s.txt", kind);
	if ((rc = render_text(r, m->locale, name, m->ctx, 0, m->strict, &wide,
	    e)) < 0)
		goto out;
	/* Content paragraphs and feed titles are long single lines: wrap
	 * them for plain-text readers (docs/templates.md, "Rendering"). */
	if ((rc = wrap_text(buf_str(&wide), wide.len, 76, &text)) < 0) {
		rc = err_set(e, ERR_TOOBIG, "the text part is too large");
		goto out;
	}
	snprintf(name, sizeof(name), "%s.html", kind);
	if ((rc = render_text(r, m->locale, name, m->ctx, 1, m->strict, &html,
	    e)) < 0)
		goto out;
	rc = compose(r, env, m, &subj, &text, &html, NULL, NULL, cached, out,
	    e);
out:
	buf_release(&subj);
	buf_release(&wide);
	buf_release(&text);
	buf_release(&html);
	return rc;
}

int
render_message(const struct render *r, const struct render_env *env,
    const struct render_mail *m, struct buf *out, struct err *e)
{
	return render_whole(r, env, m, 1, out, e);
}

/* --- skeletons: one rendering for many declarers ------------------------ */

/*
 * Declarers with the same template data but for a few strings (their
 * organisation, name, unsubscribe URL...) get the same message but for
 * those strings.  A skeleton is the templates rendered once with markers
 * in place of those strings ("holes"), kept in pieces: the text part's
 * lines without holes already wrapped, its lines with holes as they are
 * (wrapped once filled, so a long name wraps as it would have), the HTML
 * around its holes, each hole noted as escaped or not (a marker holds a
 * '&', which {{x}} escapes and {{{x}}} does not).  Filling it gives the
 * bytes render_message() gives for the full data.
 */

#define HOLE_OPEN	'\x01'
#define HOLE_CLOSE	'\x02'

struct piece {
	int	 hole;		/* -1: literal */
	int	 esc;		/* the hole is HTML-escaped */
	size_t	 off, len;	/* literal (or, in text, the raw line) */
	size_t	 eight;		/* literal: text_scan()'s count */
	int	 cr;		/* literal: text_scan()'s */
};

/*
 * scanned: every literal is valid UTF-8 without NUL, and has its
 * text_scan() counts.  Then a message's part, the literals and what
 * fills the holes (scanned per message) joined, is valid too and its
 * counts are their sums: the part goes to msg_build_cached() with its
 * scan and is not scanned whole again.
 */
struct part {
	struct buf	 bytes;
	struct piece	*v;
	size_t		 n;
	int		 scanned;
};

struct render_skel {
	const struct render	*r;
	char		 locale[8];
	struct buf	 subject;
	struct part	 text, html;
};

void
render_hole(unsigned i, char out[RENDER_HOLE_LEN])
{
	snprintf(out, RENDER_HOLE_LEN, "%c%02u&%c", HOLE_OPEN,
	    i % RENDER_HOLES_MAX, HOLE_CLOSE);
}

/* The hole at s[0..n) (s[0] is HOLE_OPEN): its length, or 0 if it is
 * not one. */
static size_t
hole_at(const char *s, size_t n, int *idx, int *esc)
{
	if (n < 5 || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' ||
	    s[3] != '&')
		return 0;
	*idx = (s[1] - '0') * 10 + (s[2] - '0');
	if (s[4] == HOLE_CLOSE) {
		*esc = 0;
		return 5;
	}
	if (n >= 9 && memcmp(s + 4, "amp;", 4) == 0 && s[8] == HOLE_CLOSE) {
		*esc = 1;
		return 9;
	}
	return 0;
}

static void
add_piece(struct part *p, int hole, int esc, size_t off, size_t len)
{
	if (hole < 0 && len == 0)
		return;
	p->v = xreallocarray(p->v, p->n + 1, sizeof(*p->v));
	p->v[p->n++] = (struct piece){ hole, esc, off, len, 0, 0 };
}

/* HTML (or any text that is not wrapped) into literals and holes. */
static int
split_holes(struct part *p, const char *s, size_t n)
{
	size_t i = 0, run = 0, hl;
	int idx, esc;

	buf_add(&p->bytes, s, n);
	while (i < n) {
		const char *o = memchr(s + i, HOLE_OPEN, n - i);

		if (o == NULL)
			break;
		i = (size_t)(o - s);
		if ((hl = hole_at(s + i, n - i, &idx, &esc)) == 0)
			return -1;
		add_piece(p, -1, 0, run, i - run);
		add_piece(p, idx, esc, 0, 0);
		i += hl;
		run = i;
	}
	add_piece(p, -1, 0, run, n - run);
	return 0;
}

/*
 * A run of lines without holes, wrapped, as a literal piece.  wrap_text()
 * drops the line break before a last line that wraps to nothing (blanks
 * only, no final newline): that break may belong to the piece before,
 * which a skeleton cannot take back, so such a text is rendered whole
 * (-1).  A '\n' put first in the scratch buffer tells.
 */
static int
add_run(struct part *p, struct buf *run, struct buf *scratch)
{
	int rc = 0;

	if (run->len == 0)
		return 0;
	buf_reset(scratch);
	buf_addch(scratch, '\n');
	if (wrap_text(run->data, run->len, 76, scratch) < 0 ||
	    scratch->len == 0 || scratch->data[0] != '\n')
		rc = -1;
	else {
		add_piece(p, -1, 0, p->bytes.len, scratch->len - 1);
		buf_add(&p->bytes, scratch->data + 1, scratch->len - 1);
	}
	buf_reset(run);
	return rc;
}

/* The text part: runs of lines without holes wrapped now, lines with
 * holes kept for later. */
static int
split_text(struct part *p, const char *s, size_t n)
{
	struct buf run = BUF_INIT(MAX_PART), scratch = BUF_INIT(0);
	size_t i = 0;
	int rc = 0;

	while (i < n && rc == 0) {
		const char *nl = memchr(s + i, '\n', n - i);
		size_t end = nl != NULL ? (size_t)(nl - s) + 1 : n;

		if (memchr(s + i, HOLE_OPEN, end - i) == NULL) {
			buf_add(&run, s + i, end - i);
		} else if ((rc = add_run(p, &run, &scratch)) == 0) {
			add_piece(p, -2, 0, p->bytes.len, end - i);
			buf_add(&p->bytes, s + i, end - i);
		}
		i = end;
	}
	if (rc == 0)
		rc = add_run(p, &run, &scratch);
	buf_release(&run);
	buf_release(&scratch);
	return rc;
}

/* Scan the literals of p (see struct part). */
static void
scan_literals(struct part *p)
{
	struct text_scan sc;

	p->scanned = 1;
	for (size_t i = 0; i < p->n; i++) {
		struct piece *q = &p->v[i];

		if (q->hole != -1)
			continue;
		if (!text_scan(p->bytes.data + q->off, q->len, &sc))
			p->scanned = 0;
		q->eight = sc.eight;
		q->cr = sc.cr;
	}
}

/* Add the scan of s[0..n) to sc; 0 if it is not valid UTF-8 without NUL. */
static int
scan_more(struct text_scan *sc, const char *s, size_t n)
{
	struct text_scan more;

	if (!text_scan(s, n, &more))
		return 0;
	sc->eight += more.eight;
	sc->cr |= more.cr;
	return 1;
}

size_t
render_skel_size(const struct render_skel *k)
{
	if (k == NULL)
		return 0;
	return sizeof(*k) + k->subject.cap + k->text.bytes.cap +
	    k->html.bytes.cap + (k->text.n + k->html.n) * sizeof(struct piece);
}

void
render_skel_free(struct render_skel *k)
{
	if (k == NULL)
		return;
	buf_release(&k->subject);
	buf_release(&k->text.bytes);
	buf_release(&k->html.bytes);
	free(k->text.v);
	free(k->html.v);
	free(k);
}

int
render_skel_new(const struct render *r, const struct render_mail *m,
    struct render_skel **out, struct err *e)
{
	struct render_skel *k = xcalloc(1, sizeof(*k));
	struct buf text = BUF_INIT(MAX_PART), html = BUF_INIT(MAX_PART);
	char name[64];
	int rc;

	*out = NULL;
	k->r = r;
	snprintf(k->locale, sizeof(k->locale), "%s", m->locale);
	buf_init(&k->subject, 4096);
	buf_init(&k->text.bytes, MAX_PART);
	buf_init(&k->html.bytes, MAX_PART);
	snprintf(name, sizeof(name), "%s.subject", r->kind);
	if ((rc = render_text(r, m->locale, name, m->ctx, 0, 0, &k->subject,
	    e)) < 0)
		goto out;
	one_line(&k->subject);
	snprintf(name, sizeof(name), "%s.txt", r->kind);
	if ((rc = render_text(r, m->locale, name, m->ctx, 0, 0, &text, e)) < 0)
		goto out;
	snprintf(name, sizeof(name), "%s.html", r->kind);
	if ((rc = render_text(r, m->locale, name, m->ctx, 1, 0, &html, e)) < 0)
		goto out;
	/* A hole in the subject, or what only looks like one: not this
	 * way (render_message() renders such messages whole). */
	if (k->subject.len == 0 || memchr(k->subject.data, HOLE_OPEN,
	    k->subject.len) != NULL || split_text(&k->text, text.data ?
	    text.data : "", text.len) < 0 || split_holes(&k->html, html.data ?
	    html.data : "", html.len) < 0) {
		rc = 1;
		goto out;
	}
	for (size_t i = 0; i < k->text.n; i++)
		if (k->text.v[i].hole == -2) {
			const char *l = k->text.bytes.data + k->text.v[i].off;
			size_t ln = k->text.v[i].len, j = 0, hl;
			int idx, esc;

			while (j < ln) {
				const char *o = memchr(l + j, HOLE_OPEN, ln - j);

				if (o == NULL)
					break;
				j = (size_t)(o - l);
				if ((hl = hole_at(l + j, ln - j, &idx, &esc)) == 0) {
					rc = 1;
					goto out;
				}
				j += hl;
			}
		}
	scan_literals(&k->text);
	scan_literals(&k->html);
	*out = k;
	k = NULL;
	rc = 0;
out:
	render_skel_free(k);
	buf_release(&text);
	buf_release(&html);
	return rc;
}

static const char *
value_of(const char *const *values, size_t nvalues, int idx)
{
	return idx >= 0 && (size_t)idx < nvalues && values[idx] != NULL ?
	    values[idx] : "";
}

int
render_skel_message(const struct render_skel *k, const struct render_env *env,
    const struct render_mail *m, const char *const *values, size_t nvalues,
    struct buf *out, struct err *e)
{
	struct buf text = BUF_INIT(MAX_PART), html = BUF_INIT(MAX_PART),
	    line = BUF_INIT(MAX_PART);
	struct text_scan text_sc = { 0, 0, 0 }, html_sc = { 0, 0, 0 };
	int text_ok = k->text.scanned, html_ok = k->html.scanned, rc = 0;

	(void)buf_space(&text, k->text.bytes.len + 4096);
	(void)buf_space(&html, k->html.bytes.len + 4096);
	for (size_t i = 0; i < k->text.n && rc == 0; i++) {
		const struct piece *p = &k->text.v[i];
		const char *l = k->text.bytes.data + p->off;
		size_t j = 0, run = 0, hl, start = text.len;
		int idx, esc;

		if (p->hole == -1) {
			rc = buf_add(&text, l, p->len);
			text_sc.eight += p->eight;
			text_sc.cr |= p->cr;
			continue;
		}
		buf_reset(&line);
		while (j < p->len) {
			const char *o = memchr(l + j, HOLE_OPEN, p->len - j);

			if (o == NULL)
				break;
			j = (size_t)(o - l);
			hl = hole_at(l + j, p->len - j, &idx, &esc);
			buf_add(&line, l + run, j - run);
			buf_addstr(&line, value_of(values, nvalues, idx));
			j += hl;
			run = j;
		}
		buf_add(&line, l + run, p->len - run);
		rc = wrap_text(line.data ? line.data : "", line.len, 76, &text);
		if (rc == 0 && text_ok)
			text_ok = scan_more(&text_sc, buf_str(&text) + start,
			    text.len - start);
	}
	for (size_t i = 0; i < k->html.n && rc == 0; i++) {
		const struct piece *p = &k->html.v[i];
		const char *v, *ent = NULL;
		size_t start = html.len;

		if (p->hole < 0) {
			rc = buf_add(&html, k->html.bytes.data + p->off, p->len);
			html_sc.eight += p->eight;
			html_sc.cr |= p->cr;
			continue;
		}
		v = value_of(values, nvalues, p->hole);
		/* The values are scanned as they go in, escaped or not. */
		if (!p->esc) {
			rc = buf_addstr(&html, v);
			if (rc == 0 && html_ok)
				html_ok = scan_more(&html_sc,
				    buf_str(&html) + start, html.len - start);
			continue;
		}
		for (size_t run = 0, j = 0;; j++) {
			if (v[j] != '\0' && (ent = tmpl_html_entity(v[j])) == NULL)
				continue;
			buf_add(&html, v + run, j - run);
			if (v[j] == '\0')
				break;
			rc = buf_addstr(&html, ent);
			run = j + 1;
		}
		if (rc == 0 && html_ok)
			html_ok = scan_more(&html_sc, buf_str(&html) + start,
			    html.len - start);
	}
	if (rc < 0)
		rc = err_set(e, ERR_TOOBIG, "a part of the message is too large");
	else
		rc = compose(k->r, env, m, &k->subject, &text, &html,
		    text_ok ? &text_sc : NULL, html_ok ? &html_sc : NULL, 1,
		    out, e);
	buf_release(&text);
	buf_release(&html);
	buf_release(&line);
	return rc;
}

int
render_check(const struct render *r, const struct render_env *env,
    const struct render_mail *m, int rc, int check, struct buf *out,
    size_t start, struct err *e)
{
	struct buf whole = BUF_INIT(0);
	struct err e2 = ERR_INIT;
	int made = rc == 0, wrc;

	if (made && !check)
		return 0;
	/* A skeleton that failed: the message is rendered whole, which
	 * either works (with check: a bug of the skeleton) or says why not. */
	if (!made)
		buf_truncate(out, start);
	/* m->ctx: the declarer's full template data; with check, composed
	 * by GMime too, not from the cache of shapes. */
	wrc = render_whole(r, env, m, !check, made ? &whole : out, made ?
	    &e2 : e);
	if (check && wrc == 0 && (rc < 0 || (made &&
	    (whole.len != out->len - start ||
	    memcmp(whole.data, out->data + start, whole.len) != 0))))
		wrc = err_set(e, ERR_SOFTWARE, "the message to '%s' made from a "
		    "skeleton %s the one rendered whole (a bug: please report "
		    "it)", m->to_addr, rc < 0 ? "failed, unlike" : "differs from");
	else if (made && wrc < 0)
		wrc = err_set(e, ERR_SOFTWARE, "the message to '%s' was made from "
		    "a skeleton but fails rendered whole: %s", m->to_addr, e2.msg);
	buf_release(&whole);
	return wrc;
}
