/*
 * msg — compose one outgoing mail with GMime 3.  See msg.h.
 *
 * GMime builds the MIME tree, encodes the bodies, and writes Date,
 * Message-Id, MIME-Version and Content-Type.  The other headers are
 * checked here and handed to GMime as finished raw values, because GMime
 * 3.2 gets them wrong for this mail: its folder turns any ASCII word longer
 * than a line into "=?us-ascii?Q?...?=" (an unsubscribe URL would be
 * corrupted) or breaks it at '.' or ':'; its RFC 2047 encoder writes
 * Japanese as encoded-words far over the 75-character limit; its quoting
 * of display names mishandles '"'; and its RFC 2231 continuations split
 * UTF-8 characters.  See add_encoded_words() and attachment_part().
 *
 * msg_build_cached() writes the same bytes without a MIME tree per
 * message: see "skeletons" below.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <gmime/gmime.h>
#include <openssl/evp.h>

#include "buf.h"
#include "err.h"
#include "msg.h"
#include "text.h"
#include "xalloc.h"

/* RFC 5322 2.1.1: at most 998 characters per line, excluding the CRLF. */
#define LINE_OCTETS_MAX	998
/* RFC 5322 3.6.4 leaves msg-id length open; keep it well inside a line. */
#define MSGID_MAX	250
/* RFC 2919 2: a list-id is at most 255 octets. */
#define LISTID_MAX	255
#define HDRNAME_MAX	76
/* RFC 2047 2: an encoded-word is at most 75 characters, and a line that
 * holds one at most 76; "=?UTF-8?B?" and "?=" take 12 of them. */
#define EW_MAX		75
#define EW_LINE		76
#define EW_WRAP		12
/* RFC 5322 2.1.1: lines SHOULD be at most 78 characters. */
#define FOLD_AT		78
/* Japan has had no daylight saving time since 1951: +0900 all year. */
#define JST_OFFSET	(9 * 3600)

void
msg_global_init(void)
{
	g_mime_init();
}

void
msg_global_shutdown(void)
{
	g_mime_shutdown();
}

/* --- validation --------------------------------------------------------- */

/*
 * Characters refused anywhere in a header value.  CR and LF would end the
 * header and start another one (header injection: a crafted name could add
 * a Bcc:); NUL, TAB and the other C0 and C1 controls and DEL have no
 * business in a header.  U+2028/U+2029 are line breaks to some parsers
 * (Python's str.splitlines), and the bidi embedding, override and isolate
 * controls can make a display name or subject read as something else.
 */
static int
refused_char(gunichar c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f) ||
	    c == 0x2028 || c == 0x2029 ||
	    (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

/* UTF-8 text without refused characters, at most max bytes. */
static int
check_text(const char *what, const char *s, size_t max, struct err *e)
{
	size_t len = strlen(s);
	const char *p;

	if (!g_utf8_validate(s, (gssize)len, NULL))
		return err_set(e, ERR_INVAL, "%s: not valid UTF-8", what);
	for (p = s; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (refused_char(c))
			return err_set(e, ERR_INVAL,
			    "%s: control character U+%04X at byte %zu refused "
			    "(a CR or LF could inject headers)", what,
			    (unsigned)c, (size_t)(p - s));
	}
	if (len > max)
		return err_set(e, ERR_INVAL, "%s: %zu bytes, more than %zu",
		    what, len, max);
	return 0;
}

/* A required text field: present, non-empty, then check_text(). */
static int
check_required(const char *what, const char *s, size_t max, struct err *e)
{
	if (s == NULL || *s == '\0')
		return err_set(e, ERR_INVAL, "%s: missing", what);
	return check_text(what, s, max, e);
}

/* RFC 5322 3.2.3 atext. */
static int
is_atext(unsigned char c)
{
	return g_ascii_isalnum(c) ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 5322 3.2.3 dot-atom-text: atext runs separated by single dots. */
static int
is_dot_atom(const char *s, size_t n)
{
	if (n == 0 || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return 0;
		} else if (!is_atext((unsigned char)s[i]))
			return 0;
	}
	return 1;
}

/* The first byte of s that no printable-ASCII check lets through, or NULL. */
static const char *
find_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return s;
	return NULL;
}

int
msg_check_addr(const char *what, const char *addr, struct err *e)
{
	const char *at, *dom, *p;
	size_t len, llen, lab;

	if (addr == NULL || *addr == '\0')
		return err_set(e, ERR_INVAL, "%s: address missing", what);
	/* Before anything quotes the address back in a message. */
	if ((p = find_control(addr)) != NULL)
		return err_set(e, ERR_INVAL, "%s: control character 0x%02x "
		    "in address refused (a CR or LF could inject headers)",
		    what, (unsigned char)*p);
	len = strlen(addr);
	if (len > MSG_ADDR_MAX)
		return err_set(e, ERR_INVAL, "%s: address of %zu bytes, more "
		    "than %d", what, len, MSG_ADDR_MAX);
	at = strchr(addr, '@');
	if (at == NULL || strchr(at + 1, '@') != NULL)
		return err_set(e, ERR_INVAL, "%s: address '%s' must have "
		    "exactly one '@'", what, addr);
	llen = (size_t)(at - addr);
	/*
	 * A dot-atom local part only: no quoted strings, so no spaces, no
	 * '<', '>', ',' or '"' that could split or re-shape an address list.
	 */
	if (llen > 64 || !is_dot_atom(addr, llen))
		return err_set(e, ERR_INVAL, "%s: address '%s' has an invalid "
		    "local part", what, addr);
	dom = at + 1;
	if (*dom == '\0' || strlen(dom) > 253)
		return err_set(e, ERR_INVAL, "%s: address '%s' has an invalid "
		    "domain", what, addr);
	/* RFC 1035 host names: letters, digits, hyphens, 1-63 per label. */
	lab = 0;
	for (p = dom; ; p++) {
		if (*p == '.' || *p == '\0') {
			if (lab == 0 || lab > 63 || p[-1] == '-' ||
			    p[-(ptrdiff_t)lab] == '-')
				return err_set(e, ERR_INVAL, "%s: address '%s' "
				    "has an invalid domain", what, addr);
			if (*p == '\0')
				break;
			lab = 0;
		} else if (g_ascii_isalnum(*p) || *p == '-')
			lab++;
		else
			return err_set(e, ERR_INVAL, "%s: address '%s' has an "
			    "invalid domain", what, addr);
	}
	return 0;
}

/* RFC 3986 characters allowed in a URL we put in a header, but ','. */
static int
is_url_char(unsigned char c)
{
	return g_ascii_isalnum(c) ||
	    (c != '\0' && strchr("-._~:/?#[]@!$&'()*+;=%", c) != NULL);
}

int
msg_check_url(const char *what, const char *url, struct err *e)
{
	const char *p, *host;
	size_t len;

	if (url == NULL || *url == '\0')
		return err_set(e, ERR_INVAL, "%s: URL missing", what);
	if ((p = find_control(url)) != NULL)
		return err_set(e, ERR_INVAL, "%s: control character 0x%02x "
		    "in URL refused (a CR or LF could inject headers)", what,
		    (unsigned char)*p);
	len = strlen(url);
	if (len > MSG_VALUE_MAX)
		return err_set(e, ERR_INVAL, "%s: URL of %zu bytes, more than "
		    "%d", what, len, MSG_VALUE_MAX);
	/* http only so that a local test server can stand in. */
	if (g_ascii_strncasecmp(url, "https://", 8) == 0)
		host = url + 8;
	else if (g_ascii_strncasecmp(url, "http://", 7) == 0)
		host = url + 7;
	else
		return err_set(e, ERR_INVAL, "%s: URL '%s' must start with "
		    "https://", what, url);
	/* No user@ part: it only ever serves to disguise the real host. */
	for (p = host; *p != '\0' && *p != '/' && *p != '?' && *p != '#'; p++)
		if (!g_ascii_isalnum(*p) && strchr(".-:[]", *p) == NULL)
			return err_set(e, ERR_INVAL, "%s: URL '%s' has an "
			    "invalid host", what, url);
	if (p == host)
		return err_set(e, ERR_INVAL, "%s: URL '%s' has no host", what,
		    url);
	/*
	 * Only RFC 3986 characters: no space, quote, '<' or '>' that would
	 * end the <...> of List-Unsubscribe early, and no ',' that naive
	 * parsers take for the separator between its URLs.
	 */
	for (; *p != '\0'; p++) {
		if (!is_url_char((unsigned char)*p) ||
		    (*p == '%' && (!g_ascii_isxdigit(p[1]) ||
		    !g_ascii_isxdigit(p[2]))))
			return err_set(e, ERR_INVAL, "%s: URL '%s' has a "
			    "character that must be percent-encoded at byte "
			    "%zu", what, url, (size_t)(p - url));
	}
	return 0;
}

/* "left@right", each a dot-atom-text (RFC 5322 3.6.4, no literals). */
static int
check_msgid(const char *id, struct err *e)
{
	const char *at;

	if (id == NULL || *id == '\0')
		return err_set(e, ERR_INVAL, "header 'Message-ID': missing");
	if (find_control(id) != NULL)
		return err_set(e, ERR_INVAL, "header 'Message-ID': control "
		    "character refused (a CR or LF could inject headers)");
	at = strchr(id, '@');
	if (strlen(id) > MSGID_MAX || at == NULL ||
	    !is_dot_atom(id, (size_t)(at - id)) ||
	    !is_dot_atom(at + 1, strlen(at + 1)))
		return err_set(e, ERR_INVAL, "header 'Message-ID': '%s' is not "
		    "left@right (dot-atoms, no <>, at most %d bytes)", id,
		    MSGID_MAX);
	return 0;
}

/* RFC 2919 list-id: list-label "." namespace, a dot-atom with a dot. */
static int
check_listid(const char *id, struct err *e)
{
	if (find_control(id) != NULL)
		return err_set(e, ERR_INVAL, "header 'List-Id': control "
		    "character refused (a CR or LF could inject headers)");
	if (strlen(id) > LISTID_MAX || strchr(id, '.') == NULL ||
	    !is_dot_atom(id, strlen(id)))
		return err_set(e, ERR_INVAL, "header 'List-Id': '%s' is not a "
		    "list id like 'news.example.jp'", id);
	return 0;
}

/*
 * Headers msg_build() writes itself, or that would change who gets the
 * message or how it is parsed: an extra header may not repeat them.
 */
static int
own_header(const char *name)
{
	static const char *const own[] = {
		"from", "sender", "reply-to", "to", "cc", "bcc", "subject",
		"date", "message-id", "in-reply-to", "references",
		"mime-version", "list-id", "list-unsubscribe",
		"list-unsubscribe-post", "received", "return-path",
	};

	if (g_ascii_strncasecmp(name, "content-", 8) == 0 ||
	    g_ascii_strncasecmp(name, "resent-", 7) == 0)
		return 1;
	for (size_t i = 0; i < G_N_ELEMENTS(own); i++)
		if (g_ascii_strcasecmp(name, own[i]) == 0)
			return 1;
	return 0;
}

static int
check_extra(const struct msg_header *h, struct err *e)
{
	char what[HDRNAME_MAX + 16];
	const char *p;

	if (h->name == NULL || *h->name == '\0')
		return err_set(e, ERR_INVAL, "extra header: name missing");
	for (p = h->name; *p != '\0'; p++)
		if (!g_ascii_isalnum(*p) && *p != '-')
			return err_set(e, ERR_INVAL, "extra header: name has "
			    "byte 0x%02x; only letters, digits and '-' are "
			    "allowed", (unsigned char)*p);
	if (p - h->name > HDRNAME_MAX)
		return err_set(e, ERR_INVAL, "extra header: name longer than "
		    "%d", HDRNAME_MAX);
	if (own_header(h->name))
		return err_set(e, ERR_INVAL, "extra header '%s': set by the "
		    "message itself, not allowed as an extra header", h->name);
	snprintf(what, sizeof(what), "header '%s'", h->name);
	if (h->value == NULL)
		return err_set(e, ERR_INVAL, "%s: value missing", what);
	return check_text(what, h->value, MSG_VALUE_MAX, e);
}

static int
check_mailbox(const char *hdr, const struct msg_mailbox *mb, struct err *e)
{
	char what[64];
	int rc;

	snprintf(what, sizeof(what), "header '%s'", hdr);
	if ((rc = msg_check_addr(what, mb->addr, e)) < 0)
		return rc;
	if (mb->name != NULL && (rc = check_text(what, mb->name,
	    MSG_NAME_MAX, e)) < 0)
		return rc;
	return 0;
}

/*
 * What the builders need to know of the two bodies, found in one pass
 * each (text_scan()): valid, 8-bit bytes (the encoding), CR (the line
 * ends).
 */
struct bodies {
	int			text_ok, html_ok;
	struct text_scan	text, html;
};

/* The bodies' scans: the caller's if it made them (msg.h), else made. */
static void
scan_bodies(const struct msg_spec *s, struct bodies *b)
{
	memset(b, 0, sizeof(*b));
	if (s->text != NULL && s->text_scan != NULL) {
		b->text = *s->text_scan;
		b->text_ok = 1;
	} else if (s->text != NULL)
		b->text_ok = text_scan(s->text, s->text_len, &b->text);
	if (s->html != NULL && s->html_scan != NULL) {
		b->html = *s->html_scan;
		b->html_ok = 1;
	} else if (s->html != NULL)
		b->html_ok = text_scan(s->html, s->html_len, &b->html);
}

/* A body: valid UTF-8 without NUL (text parts cannot carry one). */
static int
check_body(const char *what, const char *p, int ok,
    const struct text_scan *sc, struct err *e)
{
	if (p == NULL)
		return err_set(e, ERR_INVAL, "%s: missing", what);
	if (sc->nul)
		return err_set(e, ERR_INVAL, "%s: NUL byte refused", what);
	if (!ok)
		return err_set(e, ERR_INVAL, "%s: not valid UTF-8", what);
	return 0;
}

/* "type/subtype" of RFC 2045 tokens, then parameters for GMime to parse. */
static int
check_content_type(const char *ct, struct err *e)
{
	const char *p;
	int slash = 0;

	if (ct == NULL || *ct == '\0')
		return err_set(e, ERR_INVAL, "attachment: content type "
		    "missing");
	/* Printable ASCII: it is written into the part's header as is. */
	for (p = ct; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			return err_set(e, ERR_INVAL, "attachment: content type "
			    "has byte 0x%02x; printable ASCII only",
			    (unsigned char)*p);
	if (strlen(ct) > MSG_VALUE_MAX)
		return err_set(e, ERR_INVAL, "attachment: content type longer "
		    "than %d", MSG_VALUE_MAX);
	p = ct;
	for (; *p != '\0' && *p != ';'; p++) {
		if (*p == '/' && slash == 0 && p != ct && p[1] != '\0' &&
		    p[1] != ';')
			slash = 1;
		else if (!g_ascii_isalnum(*p) &&
		    strchr("!#$&^_.+-", *p) == NULL)
			break;
	}
	if (!slash || (*p != '\0' && *p != ';'))
		return err_set(e, ERR_INVAL, "attachment: content type '%s' is "
		    "not type/subtype[; parameters]", ct);
	return 0;
}

static int
check_attachment(const struct msg_attachment *a, struct err *e)
{
	int rc;

	if ((rc = check_content_type(a->content_type, e)) < 0)
		return rc;
	if ((rc = check_required("attachment filename", a->filename,
	    MSG_NAME_MAX, e)) < 0)
		return rc;
	/* A client saving the file must not be led into another folder. */
	if (strpbrk(a->filename, "/\\") != NULL)
		return err_set(e, ERR_INVAL, "attachment filename: '/' or '\\' "
		    "refused");
	if (a->data == NULL && a->len > 0)
		return err_set(e, ERR_INVAL, "attachment: data missing");
	return 0;
}

/* Everything that reaches a header, checked before GMime sees any of it. */
static int
check_spec(const struct msg_spec *s, const struct bodies *b, struct err *e)
{
	int rc;

	if ((rc = check_mailbox("From", &s->from, e)) < 0 ||
	    (rc = check_mailbox("To", &s->to, e)) < 0)
		return rc;
	if ((s->reply_to.addr != NULL || s->reply_to.name != NULL) &&
	    (rc = check_mailbox("Reply-To", &s->reply_to, e)) < 0)
		return rc;
	if ((rc = check_required("header 'Subject'", s->subject,
	    MSG_VALUE_MAX, e)) < 0)
		return rc;
	/* GDateTime's range ends in 9999 (in +0900: 9 hours earlier in
	 * UTC); before 1970 is a caller's bug. */
	if (s->date <= 0 || s->date > (time_t)253402300799 - JST_OFFSET)
		return err_set(e, ERR_INVAL, "header 'Date': time %lld out of "
		    "range", (long long)s->date);
	if ((rc = check_msgid(s->message_id, e)) < 0)
		return rc;
	if (s->list_id != NULL && (rc = check_listid(s->list_id, e)) < 0)
		return rc;
	if (s->list_name != NULL) {
		if (s->list_id == NULL)
			return err_set(e, ERR_INVAL, "header 'List-Id': a list "
			    "name needs a list id");
		if ((rc = check_text("header 'List-Id'", s->list_name,
		    MSG_NAME_MAX, e)) < 0)
			return rc;
	}
	if (s->unsub_url != NULL && (rc = msg_check_url(
	    "header 'List-Unsubscribe'", s->unsub_url, e)) < 0)
		return rc;
	if (s->unsub_token != NULL) {
		/* It goes into a header unencoded: its alphabet is checked. */
		const char *t = s->unsub_token;

		if (*t == '\0' || strlen(t) > 128 ||
		    strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		    "0123456789_-") != strlen(t))
			return err_set(e, ERR_INVAL, "header 'List-Unsubscribe': "
			    "the token is not [A-Za-z0-9_-]");
	}
	if (s->unsub_mailto != NULL && (rc = msg_check_addr(
	    "header 'List-Unsubscribe'", s->unsub_mailto, e)) < 0)
		return rc;
	/* RFC 8058 3.1: One-Click needs an HTTPS URI to POST to. */
	if (s->one_click && s->unsub_url == NULL)
		return err_set(e, ERR_INVAL, "header 'List-Unsubscribe-Post': "
		    "one-click unsubscribe needs an unsubscribe URL");
	for (size_t i = 0; i < s->nheaders; i++)
		if ((rc = check_extra(&s->headers[i], e)) < 0)
			return rc;
	if ((rc = check_body("text body", s->text, b->text_ok, &b->text,
	    e)) < 0)
		return rc;
	if (s->html != NULL && (rc = check_body("HTML body", s->html,
	    b->html_ok, &b->html, e)) < 0)
		return rc;
	if (s->attachment != NULL &&
	    (rc = check_attachment(s->attachment, e)) < 0)
		return rc;
	return 0;
}

/* --- header text -------------------------------------------------------- */

/*
 * Append a header whose value is already valid and folded (raw starts
 * with a space and ends with "\n"; GMime converts newlines on output).
 */
static void
add_raw_header(GMimeObject *obj, const char *name, const char *raw)
{
	GMimeHeaderList *hl = g_mime_object_get_header_list(obj);
	GMimeHeader *h;

	g_mime_header_list_append(hl, name, "", NULL);
	h = g_mime_header_list_get_header_at(hl,
	    g_mime_header_list_get_count(hl) - 1);
	g_mime_header_set_raw_value(h, raw);
}

/*
 * Text that cannot go out as it is: 8-bit, or holding "=?" (a decoder
 * would take it for an encoded-word).
 */
static int
needs_2047(const char *s)
{
	return !text_is_ascii(s, strlen(s)) || strstr(s, "=?") != NULL;
}

/* One character as a "Q" encoded-word; returns its length. */
static size_t
add_q_word(struct buf *out, const char *p, size_t n)
{
	size_t start = out->len;

	buf_addstr(out, "=?UTF-8?Q?");
	for (size_t i = 0; i < n; i++) {
		if (g_ascii_isalnum(p[i]))
			buf_addch(out, p[i]);
		else
			buf_addf(out, "=%02X", (unsigned char)p[i]);
	}
	buf_addstr(out, "?=");
	return out->len - start;
}

/*
 * Append s (UTF-8) as RFC 2047 encoded-words, the first at column col;
 * returns the column after the last.
 *
 * Written here rather than by GMime 3.2, whose encoder cuts text only at
 * spaces and every 38 characters: Japanese gives encoded-words of 150
 * characters and more, over RFC 2047's 75, which some clients show
 * garbled (Windows 10 Mail has been reported to).  Here every word holds
 * whole characters, is at most 75 characters long and has a line of its
 * own (RFC 2047 2 and 5).
 *
 * And no "B" word but the last ends in base64 padding: decoders that join
 * the payloads of adjacent "B" words before decoding, to mend other
 * mailers' split characters, lose the rest of the text after a padded one
 * (GMime 3.2 does; MimeKit joins them the same way).  So a "B" word is cut at a multiple of three bytes;
 * where no whole character ends at one (an odd run of ASCII among
 * Japanese), the next character goes out alone as a "Q" word, which ends
 * the run of "B" words.
 */
static size_t
add_encoded_words(struct buf *out, const char *s, size_t col)
{
	const char *p = s, *q, *next;
	size_t max, n, cut;
	gchar *b64;

	while (*p != '\0') {
		/* A fold before every word but a first one that fits. */
		if (p != s || col + EW_WRAP + 12 > EW_LINE) {
			buf_addstr(out, "\n ");
			col = 1;
		}
		max = (MIN(EW_MAX, EW_LINE - col) - EW_WRAP) / 4 * 3;
		n = cut = 0;
		for (q = p; *q != '\0'; q = next) {
			next = g_utf8_next_char(q);
			if ((size_t)(next - p) > max)
				break;
			n = (size_t)(next - p);
			if (n % 3 == 0)
				cut = n;
		}
		if (p[n] == '\0')
			cut = n;	/* the last word may be padded */
		else if (cut == 0) {
			n = (size_t)(g_utf8_next_char(p) - p);
			col += add_q_word(out, p, n);
			p += n;
			continue;
		}
		b64 = g_base64_encode((const guchar *)p, cut);
		buf_addf(out, "=?UTF-8?B?%s?=", b64);
		col += EW_WRAP + strlen(b64);
		g_free(b64);
		p += cut;
	}
	return col;
}

/*
 * Append ASCII text, folded before a space where a line would pass 78
 * (RFC 5322 2.2.3); a longer word stays whole.  Returns the column.
 */
static size_t
add_folded(struct buf *out, const char *s, size_t col)
{
	const char *p = s, *sp;
	size_t len;

	while (*p != '\0') {
		sp = strchr(p + 1, ' ');
		len = sp != NULL ? (size_t)(sp - p) : strlen(p);
		/* Not on a line holding only a space: that line would be
		 * all white space (RFC 5322 3.2.2). */
		if (p != s && col > 1 && col + len > FOLD_AT) {
			buf_addch(out, '\n');	/* the space starts the next line */
			col = 0;
		}
		buf_add(out, p, len);
		col += len;
		p += len;
	}
	return col;
}

/* Unstructured text (Subject, extra headers): encoded or folded. */
static size_t
add_text(struct buf *out, const char *s, size_t col)
{
	return needs_2047(s) ? add_encoded_words(out, s, col) :
	    add_folded(out, s, col);
}

/*
 * An RFC 5322 phrase (display name, List-Id description): encoded-words
 * when 8-bit; atoms as they are; otherwise a quoted-string (GMime 3.2's
 * g_mime_utils_quote_string leaves a name holding '"' unquoted).
 */
static size_t
add_phrase(struct buf *out, const char *s, size_t col)
{
	const char *p;
	int quote = 0;

	if (needs_2047(s))
		return add_encoded_words(out, s, col);
	for (p = s; *p != '\0'; p++)
		if (!(is_atext((unsigned char)*p) ||
		    (*p == ' ' && p[1] != ' ')))
			quote = 1;
	if (!quote) {
		buf_addstr(out, s);
		return col + strlen(s);
	}
	buf_addch(out, '"');
	for (p = s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			buf_addch(out, '\\');
		buf_addch(out, *p);
	}
	buf_addch(out, '"');
	return col + (size_t)(p - s) + 2;
}

/* The raw value of "Name: phrase <addr>", folding before <addr> when the
 * line is full. */
static void
mailbox_raw(struct buf *tmp, const char *hdr, const struct msg_mailbox *mb)
{
	size_t col = strlen(hdr) + 2;

	buf_reset(tmp);
	buf_addch(tmp, ' ');
	if (mb->name != NULL && *mb->name != '\0') {
		col = add_phrase(tmp, mb->name, col);
		if (col + strlen(mb->addr) + 3 > FOLD_AT)
			buf_addch(tmp, '\n');
		buf_addch(tmp, ' ');
	}
	buf_addf(tmp, "<%s>\n", mb->addr);
}

static void
add_mailbox(GMimeObject *obj, const char *hdr, const struct msg_mailbox *mb,
    struct buf *tmp)
{
	mailbox_raw(tmp, hdr, mb);
	add_raw_header(obj, hdr, buf_str(tmp));
}

static void
text_raw(struct buf *tmp, const char *hdr, const char *value)
{
	buf_reset(tmp);
	buf_addch(tmp, ' ');
	add_text(tmp, value, strlen(hdr) + 2);
	buf_addch(tmp, '\n');
}

static void
add_text_header(GMimeObject *obj, const char *hdr, const char *value,
    struct buf *tmp)
{
	text_raw(tmp, hdr, value);
	add_raw_header(obj, hdr, buf_str(tmp));
}

/* RFC 2369 3.2, one URL per line so that no fold falls inside one. */
static void
list_unsub_raw(struct buf *tmp, const struct msg_spec *s)
{
	buf_reset(tmp);
	if (s->unsub_url != NULL)
		buf_addf(tmp, " <%s>%s\n", s->unsub_url,
		    s->unsub_mailto != NULL ? "," : "");
	if (s->unsub_mailto != NULL && s->unsub_token != NULL)
		buf_addf(tmp, " <mailto:%s?subject=unsubscribe%%20%s>\n",
		    s->unsub_mailto, s->unsub_token);
	else if (s->unsub_mailto != NULL)
		buf_addf(tmp, " <mailto:%s?subject=unsubscribe>\n",
		    s->unsub_mailto);
}

static void
add_list_headers(GMimeObject *obj, const struct msg_spec *s, struct buf *tmp)
{
	size_t col;

	if (s->list_id != NULL) {
		buf_reset(tmp);
		if (s->list_name != NULL && *s->list_name != '\0') {
			buf_addch(tmp, ' ');
			col = add_phrase(tmp, s->list_name, strlen("List-Id: "));
			if (col + strlen(s->list_id) + 3 > FOLD_AT)
				buf_addch(tmp, '\n');
		}
		buf_addf(tmp, " <%s>\n", s->list_id);
		add_raw_header(obj, "List-Id", buf_str(tmp));
	}
	if (s->unsub_url != NULL || s->unsub_mailto != NULL) {
		list_unsub_raw(tmp, s);
		add_raw_header(obj, "List-Unsubscribe", buf_str(tmp));
	}
	if (s->one_click)
		add_raw_header(obj, "List-Unsubscribe-Post",
		    " List-Unsubscribe=One-Click\n");
}

static void
add_extra_headers(GMimeObject *obj, const struct msg_spec *s,
    struct buf *tmp)
{
	for (size_t i = 0; i < s->nheaders; i++) {
		const struct msg_header *h = &s->headers[i];

		if (needs_2047(h->value))
			add_text_header(obj, h->name, h->value, tmp);
		else {
			/* As given, unfolded: Feedback-ID and the like are
			 * structured, and a fold could fall inside a token. */
			buf_reset(tmp);
			buf_addf(tmp, " %s\n", h->value);
			add_raw_header(obj, h->name, buf_str(tmp));
		}
	}
}

/* --- body parts --------------------------------------------------------- */

/*
 * Put p[0..n) into tmp with every line break (CRLF, LF, lone CR) turned
 * into CRLF (crlf) or LF.  Text in base64 must be in canonical CRLF form
 * (RFC 2045 6.8); for quoted-printable GMime wants LF and writes the line
 * breaks in the output's own convention.
 */
static void
canon_lines(const char *p, size_t n, int crlf, int cr, struct buf *tmp)
{
	const char *end = p + n, *q, *nl = crlf ? "\r\n" : "\n";
	size_t nll = strlen(nl), lines = 0;
	char *w, *w0;

	buf_reset(tmp);
	/* Template output has LF line ends only (cr: whether p holds a CR,
	 * -1 if not known): with LF, a copy; with CRLF, the lines counted,
	 * then each copied with one memcpy() into the room for them all. */
	if (cr == 0 || (cr < 0 && memchr(p, '\r', n) == NULL)) {
		if (!crlf) {
			buf_add(tmp, p, n);
			return;
		}
		for (q = p; (q = memchr(q, '\n', (size_t)(end - q))) != NULL;
		    q++)
			lines++;
		if ((w = w0 = buf_space(tmp, n + lines)) == NULL)
			return;
		while ((q = memchr(p, '\n', (size_t)(end - p))) != NULL) {
			memcpy(w, p, (size_t)(q - p));
			w += q - p;
			*w++ = '\r';
			*w++ = '\n';
			p = q + 1;
		}
		memcpy(w, p, (size_t)(end - p));
		w += end - p;
		buf_commit(tmp, (size_t)(w - w0));
		return;
	}
	(void)buf_space(tmp, n + n / 16 + 16);	/* one allocation, mostly */
	for (q = p; q < end; q++) {
		if (*q != '\r' && *q != '\n')
			continue;
		buf_add(tmp, p, (size_t)(q - p));
		buf_add(tmp, nl, nll);
		if (*q == '\r' && q + 1 < end && q[1] == '\n')
			q++;
		p = q + 1;
	}
	buf_add(tmp, p, (size_t)(end - p));
}

/*
 * GMime's pick: base64 once more than about a sixth of the bytes are
 * 8-bit (Japanese text: a third of the size of quoted-printable, the same
 * SpamAssassin score), quoted-printable otherwise (English stays
 * readable).  Never 7bit: quoted-printable bounds the line length whatever
 * the template did, and keeps "=_" boundaries impossible inside a part.
 */
static GMimeContentEncoding
gmime_encoding(const char *p, size_t n)
{
	return g_mime_utils_best_encoding((const unsigned char *)p, n) ==
	    GMIME_CONTENT_ENCODING_BASE64 ? GMIME_CONTENT_ENCODING_BASE64 :
	    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE;
}

static GMimeContentEncoding
text_encoding(size_t n, const struct text_scan *sc)
{
	/* g_mime_utils_best_encoding()'s rule, on the count text_scan()
	 * made in its pass (test_msg compares the two), to the letter: the
	 * count as a float, as GMime has it, rounds past 2^24. */
	return (float)sc->eight <= n * 0.17 ?
	    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE :
	    GMIME_CONTENT_ENCODING_BASE64;
}

/* A text part holding p[0..n), or, for a skeleton, the stand-in slot
 * (written as it is) under enc's Content-Transfer-Encoding. */
static GMimeObject *
text_part(const char *subtype, const char *p, size_t n, const char *slot,
    GMimeContentEncoding enc, struct buf *tmp)
{
	GMimeTextPart *tp = g_mime_text_part_new_with_subtype(subtype);
	GMimeDataWrapper *w;
	GMimeStream *st;

	if (slot != NULL) {
		st = g_mime_stream_mem_new_with_buffer(slot, strlen(slot));
		w = g_mime_data_wrapper_new_with_stream(st, enc);
	} else {
		canon_lines(p, n, enc == GMIME_CONTENT_ENCODING_BASE64, -1,
		    tmp);
		st = g_mime_stream_mem_new_with_buffer(buf_str(tmp), tmp->len);
		w = g_mime_data_wrapper_new_with_stream(st,
		    GMIME_CONTENT_ENCODING_DEFAULT);
	}
	g_mime_text_part_set_charset(tp, "UTF-8");
	g_mime_part_set_content((GMimePart *)tp, w);
	g_mime_part_set_content_encoding((GMimePart *)tp, enc);
	g_object_unref(w);
	g_object_unref(st);
	return (GMimeObject *)tp;
}

/*
 * The attachment.  The file name goes twice, as most mailers write it:
 * RFC 2231 in Content-Disposition (the standard) and RFC 2047 in the
 * Content-Type name (what older Outlook and Japanese clients read).  Both
 * are written here: GMime 3.2 splits RFC 2231 continuations inside a
 * UTF-8 character, and a single "filename*=" is what most clients
 * support anyway.
 */
static GMimeObject *
attachment_part(const struct msg_attachment *a, const char *slot,
    struct buf *tmp)
{
	GMimeHeaderList *hl;
	GMimeContentType *ct;
	GMimeDataWrapper *w;
	GMimeStream *st;
	GMimePart *part;
	char *type, *esc;

	part = g_mime_part_new();
	ct = g_mime_content_type_parse(NULL, a->content_type);
	g_mime_object_set_content_type((GMimeObject *)part, ct);
	g_mime_object_set_disposition((GMimeObject *)part,
	    GMIME_DISPOSITION_ATTACHMENT);
	if (slot != NULL) {
		st = g_mime_stream_mem_new_with_buffer(slot, strlen(slot));
		w = g_mime_data_wrapper_new_with_stream(st,
		    GMIME_CONTENT_ENCODING_BASE64);
	} else {
		st = g_mime_stream_mem_new_with_buffer(a->data != NULL ?
		    a->data : "", a->len);
		w = g_mime_data_wrapper_new_with_stream(st,
		    GMIME_CONTENT_ENCODING_DEFAULT);
	}
	g_mime_part_set_content(part, w);
	/* base64 keeps the attachment's own CRLFs exactly as they are. */
	g_mime_part_set_content_encoding(part, GMIME_CONTENT_ENCODING_BASE64);

	hl = g_mime_object_get_header_list((GMimeObject *)part);
	type = g_strchomp(g_mime_content_type_encode(ct, NULL));
	buf_reset(tmp);
	buf_addf(tmp, "%s;\n name=", type);
	if (needs_2047(a->filename)) {
		buf_addch(tmp, '"');
		add_encoded_words(tmp, a->filename, strlen(" name=\""));
		buf_addch(tmp, '"');
	} else
		add_phrase(tmp, a->filename, 0);
	buf_addch(tmp, '\n');
	g_mime_header_set_raw_value(g_mime_header_list_get_header(hl,
	    "Content-Type"), buf_str(tmp));
	/* RFC 2231 attr-chars stay, everything else is %XX (UTF-8). */
	esc = g_uri_escape_string(a->filename, "!#$&+^`|", FALSE);
	buf_reset(tmp);
	buf_addf(tmp, " attachment;\n filename*=UTF-8''%s\n", esc);
	g_mime_header_set_raw_value(g_mime_header_list_get_header(hl,
	    "Content-Disposition"), buf_str(tmp));

	g_free(esc);
	g_free(type);
	g_object_unref(w);
	g_object_unref(st);
	g_object_unref(ct);
	return (GMimeObject *)part;
}

/*
 * The body tree.  Boundaries come from the Message-ID, so a rebuilt
 * message is byte-identical; "=_" cannot occur in base64 or
 * quoted-printable, so a boundary can never appear inside a part.
 */
/*
 * A multipart with our boundary.  g_mime_multipart_new_with_subtype()
 * first makes a random one, opening and reading /dev/urandom every time:
 * a system call we do not need, two per message.
 */
static GMimeMultipart *
multipart(const char *subtype, const char *boundary)
{
	GMimeMultipart *mp = g_object_new(GMIME_TYPE_MULTIPART, NULL);
	GMimeContentType *ct = g_mime_content_type_new("multipart", subtype);

	g_mime_object_set_content_type((GMimeObject *)mp, ct);
	g_object_unref(ct);
	g_mime_multipart_set_boundary(mp, boundary);
	return mp;
}

/* The stand-ins of a skeleton's parts (see "skeletons" below). */
#define SLOT_TEXT	"SAMAIL-SLOT-TEXT\n"
#define SLOT_HTML	"SAMAIL-SLOT-HTML\n"
#define SLOT_ATTACH	"SAMAIL-SLOT-ATTACH\n"

/* The body tree; slots: stand-ins instead of the bodies (a skeleton). */
static GMimeObject *
build_body(const struct msg_spec *s, int slots, GMimeContentEncoding enc_text,
    GMimeContentEncoding enc_html, struct buf *tmp)
{
	GMimeMultipart *alt, *mix;
	GMimeObject *body, *part;
	char *hash, boundary[64];

	body = text_part("plain", s->text, s->text_len,
	    slots ? SLOT_TEXT : NULL, enc_text, tmp);
	if (s->html == NULL && s->attachment == NULL)
		return body;
	hash = g_compute_checksum_for_string(G_CHECKSUM_SHA256,
	    s->message_id, -1);
	if (s->html != NULL) {
		snprintf(boundary, sizeof(boundary), "=_alt_%.32s", hash);
		alt = multipart("alternative", boundary);
		g_mime_multipart_add(alt, body);
		g_object_unref(body);
		part = text_part("html", s->html, s->html_len,
		    slots ? SLOT_HTML : NULL, enc_html, tmp);
		g_mime_multipart_add(alt, part);
		g_object_unref(part);
		body = (GMimeObject *)alt;
	}
	if (s->attachment != NULL) {
		snprintf(boundary, sizeof(boundary), "=_mix_%.32s", hash);
		mix = multipart("mixed", boundary);
		g_mime_multipart_add(mix, body);
		g_object_unref(body);
		part = attachment_part(s->attachment, slots ? SLOT_ATTACH :
		    NULL, tmp);
		g_mime_multipart_add(mix, part);
		g_object_unref(part);
		body = (GMimeObject *)mix;
	}
	g_free(hash);
	return body;
}

/* --- the message -------------------------------------------------------- */

/* Length of the longest line in p[0..n), line breaks excluded. */
static size_t
longest_line(const unsigned char *p, size_t n)
{
	const unsigned char *end = p + n, *nl;
	size_t len, max = 0;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		len = (size_t)((nl != NULL ? nl : end) - p);
		if (len > 0 && nl != NULL && p[len - 1] == '\r')
			len--;
		if (len > max)
			max = len;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return max;
}

/*
 * Compose s with GMime and append it to out (s is checked).  slots: a
 * skeleton, the bodies replaced by their stand-ins under the encodings
 * given.
 */
static int
build_gmime(const struct msg_spec *s, int slots, GMimeContentEncoding enc_text,
    GMimeContentEncoding enc_html, struct buf *out, struct err *e)
{
	struct buf tmp = BUF_INIT(0);
	GMimeFormatOptions *fo = NULL;
	GMimeMessage *m = NULL;
	GMimeObject *body = NULL;
	GMimeStream *stream = NULL;
	GDateTime *utc = NULL, *date = NULL;
	GTimeZone *tz = NULL;
	GByteArray *ba;
	size_t longest;
	int rc = 0;

	fo = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(fo, (s->flags & MSG_F_LF) ?
	    GMIME_NEWLINE_FORMAT_UNIX : GMIME_NEWLINE_FORMAT_DOS);
	/* No default headers: ours come out in the order they are set. */
	m = g_mime_message_new(FALSE);
	add_mailbox((GMimeObject *)m, "From", &s->from, &tmp);
	add_mailbox((GMimeObject *)m, "To", &s->to, &tmp);
	if (s->reply_to.addr != NULL)
		add_mailbox((GMimeObject *)m, "Reply-To", &s->reply_to, &tmp);
	add_text_header((GMimeObject *)m, "Subject", s->subject, &tmp);
	tz = g_time_zone_new_offset(JST_OFFSET);
	utc = g_date_time_new_from_unix_utc((gint64)s->date);
	date = g_date_time_to_timezone(utc, tz);
	g_mime_message_set_date(m, date);
	g_mime_message_set_message_id(m, s->message_id);
	add_list_headers((GMimeObject *)m, s, &tmp);
	add_extra_headers((GMimeObject *)m, s, &tmp);
	body = build_body(s, slots, enc_text, enc_html, &tmp);
	g_mime_message_set_mime_part(m, body);

	stream = g_mime_stream_mem_new();
	if (g_mime_object_write_to_stream((GMimeObject *)m, fo, stream) < 0) {
		rc = err_set(e, ERR_SOFTWARE, "message '%s': GMime could not "
		    "write it", s->message_id);
		goto out;
	}
	ba = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)stream);
	/*
	 * The inputs are capped so that this cannot happen; checked anyway
	 * because a relay may reject, or worse split, a longer line.
	 */
	if ((longest = longest_line(ba->data, ba->len)) > LINE_OCTETS_MAX) {
		rc = err_set(e, ERR_INVAL, "message '%s': a line of %zu "
		    "octets, more than %d", s->message_id, longest,
		    LINE_OCTETS_MAX);
		goto out;
	}
	if ((rc = buf_add(out, ba->data, ba->len)) < 0)
		err_set(e, ERR_TOOBIG, "message '%s': %u bytes do not fit in "
		    "the output buffer", s->message_id, ba->len);
out:
	if (stream != NULL)
		g_object_unref(stream);
	if (body != NULL)
		g_object_unref(body);
	if (m != NULL)
		g_object_unref(m);
	if (date != NULL)
		g_date_time_unref(date);
	if (utc != NULL)
		g_date_time_unref(utc);
	if (tz != NULL)
		g_time_zone_unref(tz);
	if (fo != NULL)
		g_mime_format_options_free(fo);
	buf_release(&tmp);
	return rc;
}

/* --- skeletons ---------------------------------------------------------- */

/*
 * A campaign sends thousands of messages that differ only in To, Subject,
 * Date, Message-Id, List-Unsubscribe, the boundaries (made from the
 * Message-ID) and the bodies.  The first message of each shape (same
 * From, Reply-To, List-Id, headers present, parts and their encodings) is
 * composed by GMime once more with stand-ins for those: the result is kept
 * as a skeleton of literal bytes and slots.  Every message of that shape is
 * then the skeleton with its slots filled by the same header code as above
 * and GMime's own encoders, without building, writing and freeing a MIME
 * tree per message (that was half of the CPU time of sending).  The bytes
 * are the same as build_gmime() writes: test_msg.c compares the two on
 * many messages.
 */

enum slot {
	SLOT_LIT, SLOT_TO, SLOT_SUBJECT, SLOT_DATE, SLOT_MID, SLOT_UNSUB,
	SLOT_HASH, SLOT_BODY_TEXT, SLOT_BODY_HTML, SLOT_BODY_ATTACH
};

struct piece {
	enum slot	 kind;
	size_t		 off, len;	/* in the skeleton's bytes */
};

struct skel {
	char		*key;
	char		*bytes;
	size_t		 nbytes;
	struct piece	*v;		/* NULL: this shape has no skeleton */
	size_t		 n;
};

#define SKEL_MAX	32
#define SL_TO		"slot-to@samail-slot.invalid"
#define SL_MID		"slot-mid@samail-slot.invalid"
#define SL_SUBJECT	"SAMAIL-SLOT-SUBJECT"

struct msg_cache {
	pthread_mutex_t	 mu;	/* not a GMutex: ThreadSanitizer sees this one */
	struct skel	*v[SKEL_MAX];
	size_t		 n;
};

static void
skel_free(struct skel *k)
{
	if (k == NULL)
		return;
	free(k->key);
	free(k->bytes);
	free(k->v);
	free(k);
}

struct msg_cache *
msg_cache_new(void)
{
	struct msg_cache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->mu, NULL);
	return c;
}

void
msg_cache_free(struct msg_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++)
		skel_free(c->v[i]);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

size_t
msg_cache_count(struct msg_cache *c)
{
	size_t n = 0;

	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->n; i++)
		n += c->v[i]->v != NULL;
	pthread_mutex_unlock(&c->mu);
	return n;
}

/* What makes two messages the same shape. */
static void
shape_key(struct buf *k, const struct msg_spec *s, GMimeContentEncoding et,
    GMimeContentEncoding eh)
{
#define KS(x)	((x) != NULL ? (x) : "\x1e")
	buf_addf(k, "%u\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%d%d%d%d%d\x1f",
	    s->flags, KS(s->from.name), KS(s->from.addr),
	    KS(s->reply_to.name), KS(s->reply_to.addr), KS(s->list_id),
	    KS(s->list_name), s->unsub_url != NULL || s->unsub_mailto != NULL,
	    s->one_click != 0, s->html != NULL, (int)et, (int)eh);
	if (s->attachment != NULL)
		buf_addf(k, "%s\x1f%s", s->attachment->content_type,
		    s->attachment->filename);
#undef KS
}

/* The header NAME in the head of p[0..n): its first byte and length with
 * its folded lines and line break; -1 if absent. */
static int
find_header(const char *p, size_t n, const char *name, size_t *off,
    size_t *len)
{
	size_t nl = strlen(name), i = 0, j;

	while (i < n) {
		if (p[i] == '\r' || p[i] == '\n')
			return -1;	/* the end of the head */
		if (n - i > nl && memcmp(p + i, name, nl) == 0 &&
		    p[i + nl] == ':') {
			j = i;
			do {
				const char *e = memchr(p + j, '\n', n - j);

				if (e == NULL)
					return -1;
				j = (size_t)(e - p) + 1;
			} while (j < n && (p[j] == ' ' || p[j] == '\t'));
			*off = i;
			*len = j - i;
			return 0;
		}
		const char *e = memchr(p + i, '\n', n - i);
		if (e == NULL)
			return -1;
		i = (size_t)(e - p) + 1;
	}
	return -1;
}

/* Every occurrence of what in p[0..n), with its line break if eol. */
static void
find_all(const char *p, size_t n, const char *what, int eol, enum slot kind,
    struct piece **v, size_t *nv)
{
	size_t wl = strlen(what);
	const char *q = p, *end = p + n, *f;

	while ((f = memmem(q, (size_t)(end - q), what, wl)) != NULL) {
		size_t len = wl;

		if (eol && f + len < end && f[len] == '\r')
			len++;
		if (eol && f + len < end && f[len] == '\n')
			len++;
		*v = xreallocarray(*v, *nv + 1, sizeof(**v));
		(*v)[*nv].kind = kind;
		(*v)[*nv].off = (size_t)(f - p);
		(*v)[*nv].len = len;
		(*nv)++;
		q = f + len;
	}
}

static int
piece_cmp(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/*
 * Compose the skeleton of s's shape.  Pieces cover the bytes in order;
 * a shape whose stand-ins are not all found once gets no pieces (and is
 * composed by GMime every time).
 */
static struct skel *
skel_new(const struct msg_spec *s, GMimeContentEncoding et,
    GMimeContentEncoding eh, const char *key)
{
	struct skel *k = xcalloc(1, sizeof(*k));
	struct msg_spec t = *s;
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	struct piece *v = NULL, *w;
	size_t nv = 0, off, len, at;
	char *hash;
	static const struct { const char *name; enum slot kind; } hdrs[] = {
		{ "To", SLOT_TO }, { "Subject", SLOT_SUBJECT },
		{ "Date", SLOT_DATE }, { "List-Unsubscribe", SLOT_UNSUB },
	};

	k->key = xstrdup(key);
	t.to.name = NULL;
	t.to.addr = SL_TO;
	t.subject = SL_SUBJECT;
	t.date = 1;
	t.message_id = SL_MID;
	if (build_gmime(&t, 1, et, eh, &b, &e) < 0)
		goto out;
	for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		if (find_header(b.data, b.len, hdrs[i].name, &off, &len) < 0) {
			if (hdrs[i].kind == SLOT_UNSUB && s->unsub_url == NULL &&
			    s->unsub_mailto == NULL)
				continue;
			goto out;
		}
		v = xreallocarray(v, nv + 1, sizeof(*v));
		v[nv++] = (struct piece){ hdrs[i].kind, off, len };
	}
	find_all(b.data, b.len, SL_MID, 0, SLOT_MID, &v, &nv);
	hash = g_compute_checksum_for_string(G_CHECKSUM_SHA256, SL_MID, -1);
	hash[32] = '\0';
	find_all(b.data, b.len, hash, 0, SLOT_HASH, &v, &nv);
	g_free(hash);
	find_all(b.data, b.len, "SAMAIL-SLOT-TEXT", 1, SLOT_BODY_TEXT, &v, &nv);
	find_all(b.data, b.len, "SAMAIL-SLOT-HTML", 1, SLOT_BODY_HTML, &v, &nv);
	find_all(b.data, b.len, "SAMAIL-SLOT-ATTACH", 1, SLOT_BODY_ATTACH,
	    &v, &nv);
	qsort(v, nv, sizeof(*v), piece_cmp);
	/* Each stand-in exactly once where expected; no overlaps. */
	{
		int unsub = s->unsub_url != NULL || s->unsub_mailto != NULL;
		int html = s->html != NULL, att = s->attachment != NULL;
		/* To, Subject, Date, [List-Unsubscribe], the Message-Id, the
		 * text; each boundary four times (parameter, two delimiters,
		 * close) and each other part once. */
		size_t want = (size_t)(3 + unsub + 1 + 1 + 5 * html + 5 * att);

		if (nv != want)
			goto out;
	}
	/* The literal bytes between. */
	w = xreallocarray(NULL, 2 * nv + 1, sizeof(*w));
	k->n = 0;
	at = 0;
	for (size_t i = 0; i < nv; i++) {
		if (v[i].off < at) {
			free(w);
			goto out;
		}
		if (v[i].off > at)
			w[k->n++] = (struct piece){ SLOT_LIT, at, v[i].off - at };
		w[k->n++] = v[i];
		at = v[i].off + v[i].len;
	}
	if (at < b.len)
		w[k->n++] = (struct piece){ SLOT_LIT, at, b.len - at };
	k->v = w;
	k->nbytes = b.len;
	k->bytes = buf_detach(&b, NULL);
out:
	if (k->v == NULL)
		k->n = 0;
	free(v);
	buf_release(&b);
	err_clear(&e);
	return k;
}

/* The skeleton of this shape, made on first use; NULL when there are too
 * many shapes (then GMime composes). */
static const struct skel *
skel_get(struct msg_cache *c, const struct msg_spec *s, GMimeContentEncoding et,
    GMimeContentEncoding eh)
{
	struct buf key = BUF_INIT(0);
	const struct skel *k = NULL;
	struct skel *made = NULL;
	size_t n;

	shape_key(&key, s, et, eh);
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->n && k == NULL; i++)
		if (strcmp(c->v[i]->key, buf_str(&key)) == 0)
			k = c->v[i];
	n = c->n;
	pthread_mutex_unlock(&c->mu);
	if (k != NULL || n >= SKEL_MAX)
		goto out;
	/* Composed outside the lock; a second thread may make the same one,
	 * and the first to come back keeps its. */
	made = skel_new(s, et, eh, buf_str(&key));
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->n && k == NULL; i++)
		if (strcmp(c->v[i]->key, made->key) == 0)
			k = c->v[i];
	if (k == NULL && c->n < SKEL_MAX) {
		c->v[c->n++] = made;
		k = made;
		made = NULL;
	}
	pthread_mutex_unlock(&c->mu);
out:
	skel_free(made);
	buf_release(&key);
	return k != NULL && k->v != NULL ? k : NULL;
}

/* p[0..n) (LF line ends) with LF turned into CRLF unless lf. */
static int
add_lines(struct buf *out, const char *p, size_t n, int lf)
{
	const char *end = p + n, *nl;
	char *w, *w0;

	size_t nl_count = 0;

	if (lf)
		return buf_add(out, p, n);
	for (const char *q = p; (q = memchr(q, '\n', (size_t)(end - q))) != NULL;
	    q++)
		nl_count++;
	if ((w = w0 = buf_space(out, n + nl_count)) == NULL)
		return -ERR_TOOBIG;
	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		memcpy(w, p, (size_t)(nl - p));
		w += nl - p;
		if (nl < end) {
			*w++ = '\r';
			*w++ = '\n';
		}
		p = nl + 1;
	}
	buf_commit(out, (size_t)(w - w0));
	return 0;
}

/* A header from its raw value (LF line ends), checked for length. */
static int
add_header(struct buf *out, const char *name, const struct buf *raw, int lf)
{
	int rc;

	if (longest_line((const unsigned char *)buf_str(raw), raw->len) +
	    strlen(name) + 1 > LINE_OCTETS_MAX)
		return -ERR_INVAL;
	if ((rc = buf_addstr(out, name)) < 0 || (rc = buf_addch(out, ':')) < 0)
		return rc;
	return add_lines(out, raw->data, raw->len, lf);
}

/*
 * Base64 as GMime's writer lays it out: lines of 76 characters (57
 * bytes), each with its line break, the last one too.  Each line is
 * encoded by OpenSSL's EVP_EncodeBlock() straight into the message:
 * GMime's encoder goes a byte at a time and wants a buffer of its own to
 * copy from, and was a fifth of the CPU time of sending a newsletter.
 * test_msg compares the bytes with GMime's for every length mod 57.
 */
#define B64_LINE_IN	57
#define B64_LINE_OUT	76

static int
add_base64(struct buf *out, const char *p, size_t n, int lf)
{
	size_t lines = (n + B64_LINE_IN - 1) / B64_LINE_IN, k;
	char *w, *w0;

	/* Room for one more NUL: EVP_EncodeBlock() ends with one. */
	if ((w = w0 = buf_space(out, lines * (B64_LINE_OUT + (lf ? 1 : 2)) +
	    1)) == NULL)
		return -ERR_TOOBIG;
	for (size_t i = 0; i < n; i += k) {
		k = n - i < B64_LINE_IN ? n - i : B64_LINE_IN;
		w += EVP_EncodeBlock((unsigned char *)w,
		    (const unsigned char *)p + i, (int)k);
		if (!lf)
			*w++ = '\r';
		*w++ = '\n';
	}
	buf_commit(out, (size_t)(w - w0));
	return 0;
}

/* A body encoded as GMime's writer encodes it (quoted-printable by
 * GMime's encoder, base64 by add_base64()). */
static int
add_encoded(struct buf *out, const char *p, size_t n,
    GMimeContentEncoding enc, int canon, int cr, int lf, struct buf *tmp)
{
	GMimeEncoding st;
	char *o;
	size_t olen;
	int rc;

	/* Quoted-printable of text without a CR takes it as it is. */
	if (canon && (enc == GMIME_CONTENT_ENCODING_BASE64 || cr != 0)) {
		canon_lines(p, n, enc == GMIME_CONTENT_ENCODING_BASE64, cr,
		    tmp);
		p = buf_str(tmp);
		n = tmp->len;
	}
	if (enc == GMIME_CONTENT_ENCODING_BASE64)
		return add_base64(out, p, n, lf);
	g_mime_encoding_init_encode(&st, enc);
	o = xmalloc(g_mime_encoding_outlen(&st, n));
	olen = g_mime_encoding_flush(&st, p, n, o);
	rc = add_lines(out, o, olen, lf);
	free(o);
	return rc;
}

/* skel_fill()'s Date, by thread: "Thu, 1 Jan 2026 09:00:00 +0900". */
static _Thread_local time_t date_t = -1;
static _Thread_local char date_str[64];

static int
skel_fill(const struct skel *k, const struct msg_spec *s,
    const struct bodies *b, GMimeContentEncoding et, GMimeContentEncoding eh,
    struct buf *out, struct err *e)
{
	struct buf tmp = BUF_INIT(0);
	size_t start = out->len;
	int lf = (s->flags & MSG_F_LF) != 0, rc = 0;
	char *hash = NULL, *date_s;
	GDateTime *utc, *date;
	GTimeZone *tz;

	/* Room for it all at once (base64 is 4/3 and two bytes a line). */
	(void)buf_space(out, k->nbytes + (s->text_len + s->html_len +
	    (s->attachment != NULL ? s->attachment->len : 0)) / 100 * 140 +
	    4096);
	for (size_t i = 0; i < k->n && rc == 0; i++) {
		const struct piece *p = &k->v[i];

		switch (p->kind) {
		case SLOT_LIT:
			rc = buf_add(out, k->bytes + p->off, p->len);
			break;
		case SLOT_TO:
			mailbox_raw(&tmp, "To", &s->to);
			rc = add_header(out, "To", &tmp, lf);
			break;
		case SLOT_SUBJECT:
			text_raw(&tmp, "Subject", s->subject);
			rc = add_header(out, "Subject", &tmp, lf);
			break;
		case SLOT_DATE:
			/* The same second as this thread's last message:
			 * GMime's string again, not four GLib objects. */
			if (s->date != date_t) {
				tz = g_time_zone_new_offset(JST_OFFSET);
				utc = g_date_time_new_from_unix_utc(
				    (gint64)s->date);
				date = g_date_time_to_timezone(utc, tz);
				date_s = g_mime_utils_header_format_date(date);
				snprintf(date_str, sizeof(date_str), " %s\n",
				    date_s);
				date_t = s->date;
				g_free(date_s);
				g_date_time_unref(date);
				g_date_time_unref(utc);
				g_time_zone_unref(tz);
			}
			buf_reset(&tmp);
			buf_addstr(&tmp, date_str);
			rc = add_header(out, "Date", &tmp, lf);
			break;
		case SLOT_MID:
			rc = buf_addstr(out, s->message_id);
			break;
		case SLOT_UNSUB:
			list_unsub_raw(&tmp, s);
			rc = add_header(out, "List-Unsubscribe", &tmp, lf);
			break;
		case SLOT_HASH:
			if (hash == NULL)
				hash = g_compute_checksum_for_string(
				    G_CHECKSUM_SHA256, s->message_id, -1);
			rc = buf_add(out, hash, 32);
			break;
		case SLOT_BODY_TEXT:
			rc = add_encoded(out, s->text, s->text_len, et, 1,
			    b->text.cr, lf, &tmp);
			break;
		case SLOT_BODY_HTML:
			rc = add_encoded(out, s->html, s->html_len, eh, 1,
			    b->html.cr, lf, &tmp);
			break;
		case SLOT_BODY_ATTACH:
			rc = add_encoded(out, s->attachment->data != NULL ?
			    s->attachment->data : "", s->attachment->len,
			    GMIME_CONTENT_ENCODING_BASE64, 0, 0, lf, &tmp);
			break;
		}
	}
	g_free(hash);
	buf_release(&tmp);
	if (rc < 0) {
		buf_truncate(out, start);
		return rc == -ERR_TOOBIG ? err_set(e, ERR_TOOBIG, "message "
		    "'%s': it does not fit in the output buffer",
		    s->message_id) : err_set(e, ERR_INVAL, "message '%s': a "
		    "header line of more than %d octets", s->message_id,
		    LINE_OCTETS_MAX);
	}
	return 0;
}

int
msg_build(const struct msg_spec *s, struct buf *out, struct err *e)
{
	struct bodies b;
	int rc;

	scan_bodies(s, &b);
	if ((rc = check_spec(s, &b, e)) < 0)
		return rc;
	/* The reference: GMime's own pick of the encoding. */
	return build_gmime(s, 0, gmime_encoding(s->text, s->text_len),
	    s->html != NULL ? gmime_encoding(s->html, s->html_len) :
	    GMIME_CONTENT_ENCODING_DEFAULT, out, e);
}

int
msg_build_cached(struct msg_cache *c, const struct msg_spec *s,
    struct buf *out, struct err *e)
{
	GMimeContentEncoding et, eh;
	const struct skel *k;
	struct bodies b;
	int rc;

	scan_bodies(s, &b);
	if ((rc = check_spec(s, &b, e)) < 0)
		return rc;
	et = text_encoding(s->text_len, &b.text);
	eh = s->html != NULL ? text_encoding(s->html_len, &b.html) :
	    GMIME_CONTENT_ENCODING_DEFAULT;
	/* Multipart only: GMime ends a single part in ways the skeleton
	 * does not follow (a final line break after quoted-printable). */
	if (c == NULL || s->nheaders > 0 || (s->html == NULL &&
	    s->attachment == NULL) || (k = skel_get(c, s, et, eh)) == NULL)
		return build_gmime(s, 0, et, eh, out, e);
	return skel_fill(k, s, &b, et, eh, out, e);
}
