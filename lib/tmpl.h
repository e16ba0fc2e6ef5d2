/*
 * tmpl — Mustache templates (https://mustache.github.io/mustache.5.html).
 *
 * Conforms to the required modules of the Mustache spec: interpolation,
 * sections, inverted sections, comments, partials and set-delimiter tags
 * (every test in tests/data/mustache-spec passes).  Lambdas, dynamic names
 * and template inheritance are not supported; `{{<x}}` and `{{$x}}` are
 * reported as errors rather than silently read as variable names.
 *
 * The data is a jansson tree.  Falsy for a section: missing, null, false and
 * the empty list; everything else is truthy (also "" and 0).  A non-empty
 * list renders the section once per element, any other truthy value once,
 * with the value pushed on the context stack.  Interpolated numbers print as
 * integers, or as the shortest decimal that reads back as the same double
 * (1.210 -> "1.21"); true/false print as "true"/"false"; null, a missing
 * name, an object or a list print nothing (strict mode rejects the last
 * three).  Names resolve per the spec: the first part of a dotted name is
 * looked up through the context stack, the rest only inside what it found.
 *
 * Life cycle: tmpl_parse() once, tmpl_render() many times, tmpl_free().
 * Partials are loaded through the caller's loader and parsed during
 * tmpl_parse(), each name once, recursively (a cycle is fine: it is only a
 * problem if rendering actually recurses past max_depth).  So every syntax
 * error, also one inside a partial that only some declarers' data would
 * reach, is reported before the first mail is rendered, and a parsed
 * template is immutable: any number of threads may render the same one at
 * once, without locks, as long as nobody modifies the json_t they pass in
 * (rendering only reads it and takes no references).
 *
 * Errors carry the position of the offending tag: "NAME:LINE:COL: what",
 * LINE and COL 1-based, COL counted in characters (UTF-8 code points, a tab
 * counts one), NAME the template's name or a partial's label.
 */
#ifndef SAMAIL_TMPL_H
#define SAMAIL_TMPL_H

#include <stddef.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"

struct tmpl;

enum tmpl_escape {
	TMPL_ESCAPE_HTML = 0,	/* {{x}} escapes & < > " ' (the default) */
	TMPL_ESCAPE_NONE,	/* text parts and subjects: nothing escaped */
};

/*
 * Fetch the source of partial `name` (as written in the tag, trimmed).
 * Append the source to `src`; optionally append to `label` the name to show
 * in error messages (e.g. the file's path; the partial's name if left
 * empty).  Return 0; -ERR_NOTFOUND if there is no such partial (see
 * tmpl_opts.strict); any other -ERR_* with `e` set aborts tmpl_parse() with
 * that code, the message prefixed with the position of the partial tag.
 * Both buffers belong to tmpl (released by it).
 */
typedef int tmpl_load_fn(void *arg, const char *name, struct buf *src,
    struct buf *label, struct err *e);

struct tmpl_opts {
	enum tmpl_escape escape;	/* render */
	/*
	 * parse + render.  Off (the spec's behaviour): a name that resolves
	 * to nothing interpolates as "", a missing partial renders as "".
	 * On: interpolating a missing name, an object or a list, and
	 * including a missing partial are errors (-ERR_PARSE, with the
	 * position): what catches typos in admin-edited templates.  Sections
	 * and inverted sections over missing names stay legal in both modes.
	 */
	int		 strict;
	tmpl_load_fn	*load;		/* parse; NULL: no partial exists */
	void		*load_arg;
	/*
	 * render: how deep partials may nest (a partial including itself
	 * recurses until this); 0 means TMPL_DEFAULT_DEPTH, values over 256
	 * are taken as 256 so that no setting can run the stack out.
	 */
	unsigned	 max_depth;
};

#define TMPL_DEFAULT_DEPTH	32
/* Sections nested deeper than this in one template are a parse error. */
#define TMPL_MAX_NESTING	100

/*
 * Parse src (len bytes, UTF-8, need not be NUL-terminated) named `name`
 * (used in messages; copied) and, through opts->load, every partial it
 * reaches.  opts may be NULL (no partials, not strict).  On success *out is
 * a template the caller frees with tmpl_free().  Errors: -ERR_PARSE (syntax,
 * invalid UTF-8, sections nested too deep, a missing partial when strict),
 * or the loader's code.
 */
int	 tmpl_parse(struct tmpl **out, const char *src, size_t len,
	    const char *name, const struct tmpl_opts *opts, struct err *e);

/*
 * Render t with data ctx (any JSON value; NULL is the same as null),
 * appending to out.  Uses opts->escape, ->strict and ->max_depth; opts may
 * be NULL (HTML escaping, not strict).  Errors: -ERR_PARSE (strict mode
 * misses, partials nested deeper than max_depth, a render visiting more
 * than 10 million nodes: runaway recursion through partials over a list),
 * -ERR_TOOBIG (out's cap reached).  On error out holds a partial rendering; the caller truncates
 * or discards it.
 */
int	 tmpl_render(const struct tmpl *t, json_t *ctx,
	    const struct tmpl_opts *opts, struct buf *out, struct err *e);

/* What {{x}} writes for c under TMPL_ESCAPE_HTML, or NULL: as it is. */
const char *tmpl_html_entity(char c);

/* The name given to tmpl_parse(). */
const char *tmpl_name(const struct tmpl *t);

void	 tmpl_free(struct tmpl *t);

/*
 * A ready-made loader for partials kept as files: arg is a struct tmpl_dir,
 * partial "footer" is read from "<dir>/footer<suffix>" and labelled with
 * that path.  Names containing '/' or starting with '.' are refused
 * (-ERR_INVAL): a template must not reach outside its directory.  A file
 * over `max` bytes (0: 1 MiB) is -ERR_TOOBIG; a missing one -ERR_NOTFOUND;
 * other failures -ERR_IO.
 */
struct tmpl_dir {
	const char	*dir;
	const char	*suffix;	/* e.g. ".mustache"; NULL for none */
	size_t		 max;
};

int	 tmpl_dir_load(void *arg, const char *name, struct buf *src,
	    struct buf *label, struct err *e);

#endif
