/*
 * msg — compose one outgoing mail (RFC 5322 + MIME) with GMime 3.
 *
 * The caller fills a struct msg_spec; msg_build() checks every field that
 * becomes a header (this module is the boundary where text turns into
 * headers, so CR/LF and other control characters are refused here, whatever
 * was checked earlier) and appends the whole message to a struct buf.
 *
 * Shape of what is built:
 *
 *	From, To, [Reply-To], Subject, Date, Message-Id, [List-Id],
 *	[List-Unsubscribe], [List-Unsubscribe-Post], [extra headers],
 *	MIME-Version, Content-Type
 *	multipart/mixed				(only with an attachment)
 *	  multipart/alternative			(only with an HTML body)
 *	    text/plain; charset=UTF-8
 *	    text/html; charset=UTF-8
 *	  <attachment>; name=...		Content-Disposition: attachment
 *
 * The message is 7-bit.  Subject, display names, the List-Id name and
 * non-ASCII extra header values are RFC 2047-encoded (UTF-8) when they are
 * not plain ASCII, in encoded-words of at most 75 characters holding whole
 * characters (GMime 3.2's own encoder does not keep to that for Japanese;
 * see msg.c); plain ASCII is folded at spaces.  Blanks at either end of
 * plain header text are not kept: readers trim them.  Text parts are
 * quoted-printable when mostly ASCII and base64 when mostly not (Japanese):
 * GMime's own choice, never 7bit or 8bit, so that no body line can exceed
 * 998 octets and no relay needs 8BITMIME.  Attachments are base64, their
 * file name in both RFC 2231 (Content-Disposition) and RFC 2047 (the
 * Content-Type name, for older clients).
 *
 * The output is deterministic: MIME boundaries are derived from the
 * Message-ID and nothing depends on the clock or on randomness, so a
 * message re-built after a crash is byte-identical.
 *
 * Strings are NUL-terminated UTF-8; a NUL inside a header value cannot be
 * represented, so callers reading from a store with explicit lengths (the
 * database) must refuse values whose length differs from strlen().  The
 * bodies and the attachment carry explicit lengths, and a NUL in a body is
 * refused.
 *
 * msg_global_init() must have been called once (from main()) before any
 * other function here.
 */
#ifndef SAMAIL_MSG_H
#define SAMAIL_MSG_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "err.h"
#include "text.h"

/* Longest header value (subject, URL, extra header value) accepted, bytes. */
#define MSG_VALUE_MAX	900
/* Longest display name or list name accepted, bytes. */
#define MSG_NAME_MAX	200
/* Longest addr-spec (RFC 5321 path limit less the brackets). */
#define MSG_ADDR_MAX	254

/* msg_spec.flags */
#define MSG_F_LF	0x01	/* LF line endings (mbox, maildir) instead of CRLF */

struct msg_mailbox {
	const char	*name;	/* display name, UTF-8; NULL or "" for none */
	const char	*addr;	/* addr-spec "local@domain"; NULL = absent */
};

struct msg_header {
	const char	*name;	/* [A-Za-z0-9-]+, not one msg_build() sets */
	const char	*value;	/* UTF-8, no control characters */
};

struct msg_attachment {
	const void	*data;
	size_t		 len;
	const char	*filename;	/* UTF-8, e.g. "自社診断.ics" */
	const char	*content_type;	/* "text/calendar; method=PUBLISH; charset=UTF-8" */
};

struct msg_spec {
	struct msg_mailbox	 from;		/* required */
	struct msg_mailbox	 to;		/* required */
	struct msg_mailbox	 reply_to;	/* optional (addr NULL) */
	const char		*subject;	/* required, UTF-8 */
	time_t			 date;		/* required (> 0); written in +0900 */
	const char		*message_id;	/* required: "left@right", no <> */
	const char		*list_id;	/* optional RFC 2919 id: "news.example.jp" */
	const char		*list_name;	/* optional phrase shown with List-Id */
	const char		*unsub_url;	/* optional https:// (or http://) URL */
	const char		*unsub_mailto;	/* optional address for mailto: */
	int			 one_click;	/* add List-Unsubscribe-Post (RFC 8058); needs unsub_url */
	const char		*unsub_token;	/* optional [A-Za-z0-9_-]: the mailto subject
						   becomes "unsubscribe TOKEN", so the admin who
						   reads it can run `samail unsubscribe TOKEN` */
	const char		*text;		/* required text/plain body, UTF-8 */
	size_t			 text_len;
	const char		*html;		/* optional text/html body, UTF-8 */
	size_t			 html_len;
	/* Optional: text_scan() of text and of html, made by a caller who
	 * joined them from pieces scanned once (render's skeletons), each
	 * one valid UTF-8 without NUL.  Taken as they are; NULL: the body
	 * is scanned here. */
	const struct text_scan	*text_scan, *html_scan;
	const struct msg_attachment *attachment;	/* optional */
	const struct msg_header *headers;	/* optional extra headers */
	size_t			 nheaders;
	unsigned		 flags;		/* MSG_F_* */
};

/* Initialise GMime; once per process, from main(), before msg_build(). */
void	 msg_global_init(void);
/* Release GMime's global state (for leak checkers); optional. */
void	 msg_global_shutdown(void);

/*
 * Compose the message described by spec and append it to out.  Lines end
 * in CRLF (LF with MSG_F_LF); every line is at most 998 octets.
 *
 * Body line breaks (LF, CRLF or a lone CR) are normalised.
 * On failure out is left as it was.
 *
 * Returns 0, or:
 *   -ERR_INVAL   a field is missing or refused (control character in a
 *                header value, bad address, Message-ID, URL, header name,
 *                invalid UTF-8, NUL in a body); the message names the header
 *   -ERR_TOOBIG  out's cap was reached
 */
int	 msg_build(const struct msg_spec *spec, struct buf *out, struct err *e);

/*
 * The same message as msg_build(), faster for many messages of one shape
 * (same From, Reply-To, List-Id, headers present, parts and their
 * encodings): the first of each shape is composed by GMime with stand-ins
 * for what differs and kept in the cache as a skeleton; the next ones are
 * that skeleton filled in, by the same header code and GMime's encoders.
 * The bytes are msg_build()'s (test_msg compares them).  Multipart
 * messages only (a single part is composed by GMime).  A cache holds up
 * to 32 shapes (then GMime composes) and may be shared by threads; the
 * caller frees it with msg_cache_free() once no thread uses it.  cache
 * NULL: msg_build().  Returns what msg_build() returns.
 */
struct msg_cache;
struct msg_cache *msg_cache_new(void);
void	 msg_cache_free(struct msg_cache *);
/* How many shapes have a skeleton (for tests). */
size_t	 msg_cache_count(struct msg_cache *);
int	 msg_build_cached(struct msg_cache *, const struct msg_spec *spec,
	    struct buf *out, struct err *e);

/*
 * Check an addr-spec as this module accepts it for a header or envelope:
 * dot-atom local part (<= 64) "@" domain of letters, digits and hyphens
 * (<= 253), <= 254 in all; so no spaces, quotes, <>, commas or control
 * characters.  what names the field in the message ("To", "[mail] from").
 * Returns 0 or -ERR_INVAL.
 */
int	 msg_check_addr(const char *what, const char *addr, struct err *e);

/*
 * Check a URL that will be placed in a header or calendar property:
 * "https://" (or "http://", for local testing) followed by a host and
 * only RFC 3986 characters (no spaces, quotes, <>, commas or controls;
 * '%' followed by two hex digits), at most MSG_VALUE_MAX bytes.
 * Returns 0 or -ERR_INVAL.
 */
int	 msg_check_url(const char *what, const char *url, struct err *e);

#endif
