/*
 * render — templates of a campaign, from files to a finished message.
 *
 * A campaign freezes its templates: render_snapshot() reads every
 * template file and content.json of each locale into one JSON object,
 * stored with the campaign.  render_new() compiles a snapshot's templates
 * for one message kind ("newsletter", "reminder"); render_message() turns
 * the data of one declarer into the bytes of the message.  A compiled
 * render may be used by several threads at once: it changes only its
 * cache of message shapes (msg_build_cached()), which has its own lock.
 */
#ifndef SAMAIL_RENDER_H
#define SAMAIL_RENDER_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"

struct err;
struct render;

/*
 * Read <dir>/<locale>/ for every locale (ja, en): each NAME.mustache into
 * files.NAME, content.json (parsed) into content.  The result is
 * {"dir": dir, "ja": {"files": {...}, "content": {...}}, "en": {...}};
 * caller json_decref()s.  -ERR_NOINPUT (missing), -ERR_PARSE (content.json
 * not JSON: file:line:col), -ERR_TOOBIG.
 */
int	 render_snapshot(const char *dir, json_t **out, struct err *);

/*
 * Compile, for every locale in the snapshot, the templates KIND.subject,
 * KIND.txt and KIND.html and the extra names given (NULL-terminated, may
 * be NULL), with their partials.  kind NULL: only the extra names (the
 * unsubscribe pages).  Errors name templates/LOC/FILE:LINE:COL.
 * The render keeps a reference to snap.
 */
int	 render_new(struct render **, json_t *snap, const char *kind,
	    const char *const *extra, struct err *);
void	 render_free(struct render *);

/* content.json of a locale (borrowed; falls back to ja). */
json_t	*render_content(const struct render *, const char *locale);

/*
 * Render template NAME (e.g. "reminder.ics-summary") of a locale with ctx
 * into out.  html: escape for HTML.  strict: a name that resolves to
 * nothing is an error (for checking templates against a full context).
 */
int	 render_text(const struct render *, const char *locale,
	    const char *name, json_t *ctx, int html, int strict,
	    struct buf *out, struct err *);

/* The parts of a message that are not template output. */
struct render_env {
	const char	*from_name;
	const char	*from_addr;
	const char	*reply_to;	/* NULL: none */
	const char	*list_id;	/* "<news.example.jp>" or bare */
	const char	*list_name;
	unsigned	 flags;		/* MSG_F_* (MSG_F_LF for local stores) */
	const char	*from_name_en;	/* for locale en; NULL: from_name */
};

struct render_mail {
	const char	*locale;
	json_t		*ctx;		/* the template data */
	const char	*to_name;	/* may be NULL */
	const char	*to_addr;
	const char	*message_id;	/* without <> */
	time_t		 date;
	const char	*unsub_url;
	const char	*unsub_mailto;	/* bare address */
	const char	*unsub_token;	/* put in the mailto subject */
	const void	*attach;	/* optional attachment */
	size_t		 attach_len;
	const char	*attach_name;
	const char	*attach_type;
	int		 strict;	/* render the templates strictly */
};

/* Render subject, text and HTML and compose the message into out. */
int	 render_message(const struct render *, const struct render_env *,
	    const struct render_mail *, struct buf *out, struct err *);

/*
 * Skeletons: many declarers whose template data differ only in some
 * strings get one rendering.  Put render_hole(i) in the data in place of
 * string i (i < RENDER_HOLES_MAX), render a skeleton once with
 * render_skel_new(), and make each declarer's message with
 * render_skel_message() and the real strings: the bytes are those
 * render_message() makes from the real data.  Where a value is only
 * tested by a section ({{#name}}), its presence must be the same for all
 * declarers of the skeleton: the caller keeps that in its key.
 *
 * render_skel_new() returns 0 with *out (the caller frees it with
 * render_skel_free(); it must not outlive the render), 1 when this data
 * cannot be rendered that way (a hole in the subject, say: use
 * render_message()), or -ERR_* (a template error).  A skeleton is
 * immutable; several threads may fill it.  render_skel_message() returns
 * what render_message() returns.
 */
#define RENDER_HOLES_MAX	100
#define RENDER_HOLE_LEN		6
struct render_skel;
void	 render_hole(unsigned i, char out[RENDER_HOLE_LEN]);
int	 render_skel_new(const struct render *, const struct render_mail *m,
	    struct render_skel **out, struct err *);
int	 render_skel_message(const struct render_skel *,
	    const struct render_env *, const struct render_mail *m,
	    const char *const *values, size_t nvalues, struct buf *out,
	    struct err *);
void	 render_skel_free(struct render_skel *);
/* The bytes a skeleton holds (0 for NULL). */
size_t	 render_skel_size(const struct render_skel *);

/*
 * After an attempt with a skeleton that appended to out from start and
 * returned rc: render m (whose ctx is the full data) whole when rc is 1.
 * With check (the tests set $SAMAIL_CHECK_SKELETONS), a message made from
 * a skeleton is rendered whole too and must be the same bytes, else
 * -ERR_SOFTWARE (which stops a send).  Returns the outcome.
 */
int	 render_check(const struct render *, const struct render_env *,
	    const struct render_mail *m, int rc, int check, struct buf *out,
	    size_t start, struct err *);

#endif
