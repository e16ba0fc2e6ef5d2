/*
 * bounce — DSN and non-standard bounce parsing (GMime), and the bounce
 * rules.  See bounce.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "addr.h"
#include "bounce.h"
#include "verp.h"
#include "buf.h"
#include "campaign.h"
#include "date.h"
#include "db.h"
#include "err.h"
#include "log.h"
#include "subscriber.h"
#include "text.h"
#include "xalloc.h"

#define MAX_DEPTH	32		/* MIME nesting we look into */
#define TEXT_MAX	(512 * 1024)	/* report text kept for scanning */
#define PART_MAX	(2 * 1024 * 1024)	/* one decoded part */

/* --- small text helpers ------------------------------------------------ */

/* Case-insensitive (ASCII) search in s[0..n); NULL if absent. */
static const char *
memcasemem(const char *s, size_t n, const char *pat)
{
	size_t m = strlen(pat);

	if (m == 0 || m > n)
		return NULL;
	for (size_t i = 0; i + m <= n; i++)
		if (strncasecmp(s + i, pat, m) == 0)
			return s + i;
	return NULL;
}

static int
any_of(const char *s, size_t n, const char *const *pats)
{
	for (size_t i = 0; pats[i] != NULL; i++)
		if (memcasemem(s, n, pats[i]) != NULL)
			return 1;
	return 0;
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Copy one value from a report into out as one clean line: control
 * characters (C0, DEL, C1) become spaces, runs of blanks one space, invalid UTF-8 bytes
 * '?', cut to outsz - 1 bytes on a character boundary.  Report text is
 * untrusted and ends up in the database and in log lines.
 */
static void
clean_line(const char *in, size_t n, char *out, size_t outsz)
{
	size_t w = 0, i = 0;
	int sp = 1;

	while (i < n && w + 1 < outsz) {
		unsigned char c = (unsigned char)in[i];
		size_t clen = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 :
		    (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;

		/* C0, DEL, space, and the C1 controls (U+0080..U+009F). */
		if (c < 0x20 || c == 0x7f || c == ' ' || (c == 0xc2 &&
		    i + 1 < n && (unsigned char)in[i + 1] >= 0x80 &&
		    (unsigned char)in[i + 1] <= 0x9f)) {
			if (!sp && w + 1 < outsz)
				out[w++] = ' ';
			sp = 1;
			i += c == 0xc2 ? 2 : 1;
			continue;
		}
		sp = 0;
		if (clen == 0 || i + clen > n ||
		    !text_utf8_valid(in + i, clen)) {
			out[w++] = '?';
			i++;
			continue;
		}
		if (w + clen >= outsz)
			break;
		memcpy(out + w, in + i, clen);
		w += clen;
		i += clen;
	}
	while (w > 0 && out[w - 1] == ' ')
		w--;
	out[w] = '\0';
}

/*
 * An enhanced status code (RFC 3463: class.subject.detail, class 2, 4 or
 * 5, one to three digits each) at s, not part of a longer number.  Copies
 * it into out (16 bytes) and returns its length, or 0.
 */
static size_t
status_at(const char *s, size_t n, char *out)
{
	size_t i = 0, d;

	if (n < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    s[1] != '.')
		return 0;
	i = 2;
	for (d = 0; i < n && is_digit(s[i]) && d < 4; i++, d++)
		;
	if (d == 0 || d > 3 || i >= n || s[i] != '.')
		return 0;
	i++;
	for (d = 0; i < n && is_digit(s[i]) && d < 4; i++, d++)
		;
	if (d == 0 || d > 3)
		return 0;
	if (i < n && (is_digit(s[i]) || (s[i] == '.' && i + 1 < n &&
	    is_digit(s[i + 1]))))
		return 0;
	memcpy(out, s, i);
	out[i] = '\0';
	return i;
}

/* The first enhanced code of class 4 or 5 in s[0..n); its position in
 * *at.  0 if none. */
static int
find_status(const char *s, size_t n, char *out, size_t *at)
{
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && (is_digit(s[i - 1]) || s[i - 1] == '.'))
			continue;
		if ((s[i] == '4' || s[i] == '5') &&
		    status_at(s + i, n - i, out) > 0) {
			if (at != NULL)
				*at = i;
			return 1;
		}
	}
	return 0;
}

/*
 * A basic SMTP reply code (4yz or 5yz) where replies appear: at a line
 * start (after blanks), or after "said:" / ':' / '(' — followed by a
 * space or '-' (a multi-line reply).  Returns the class digit or 0.
 */
static int
find_smtp_code(const char *s, size_t n, size_t *at)
{
	for (size_t i = 0; i + 4 <= n; i++) {
		char p = i == 0 ? '\n' : s[i - 1];

		if ((s[i] != '4' && s[i] != '5') || !is_digit(s[i + 1]) ||
		    !is_digit(s[i + 2]) || (s[i + 3] != ' ' && s[i + 3] != '-'))
			continue;
		if (p != '\n' && p != ' ' && p != '\t' && p != ':' && p != '(')
			continue;
		if (i + 4 < n && s[i + 3] == '-' && !is_digit(s[i + 4]) &&
		    s[i + 4] != ' ' && (s[i + 4] < 'A' || s[i + 4] > 'z'))
			continue;
		/* Not a time or a number in prose: the line so far is
		 * blank or ends in a colon ("said: 550 ..."). */
		{
			size_t j = i;

			while (j > 0 && (s[j - 1] == ' ' || s[j - 1] == '\t'))
				j--;
			if (j > 0 && s[j - 1] != '\n' && s[j - 1] != ':' &&
			    s[j - 1] != '(')
				continue;
		}
		if (at != NULL)
			*at = i;
		return s[i] - '0';
	}
	return 0;
}

/* The line around position at, cleaned, into out. */
static void
line_at(const char *s, size_t n, size_t at, char *out, size_t outsz)
{
	size_t a = at, b = at;

	while (a > 0 && s[a - 1] != '\n')
		a--;
	while (b < n && s[b] != '\n' && s[b] != '\r')
		b++;
	clean_line(s + a, b - a, out, outsz);
}

/* --- Message-IDs ------------------------------------------------------- */

static void
add_mid(struct bounce_report *r, const char *mid, size_t n)
{
	char v[BOUNCE_MID_MAX + 1];

	while (n > 0 && (*mid == '<' || *mid == ' ' || *mid == '\t')) {
		mid++;
		n--;
	}
	while (n > 0 && (mid[n - 1] == '>' || mid[n - 1] == ' ' ||
	    mid[n - 1] == '\t' || mid[n - 1] == '\r' || mid[n - 1] == '\n'))
		n--;
	if (n == 0 || n > BOUNCE_MID_MAX || memchr(mid, '@', n) == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)mid[i] <= ' ' || mid[i] == '<' ||
		    mid[i] == '>' || (unsigned char)mid[i] >= 0x7f)
			return;
	memcpy(v, mid, n);
	v[n] = '\0';
	for (size_t i = 0; i < r->nmids; i++)
		if (strcmp(r->mids[i], v) == 0)
			return;
	if (r->nmids < BOUNCE_MAX_MIDS)
		memcpy(r->mids[r->nmids++], v, n + 1);
}

/* Every "<...>" in a header value (In-Reply-To, References). */
static void
add_mids_from_list(struct bounce_report *r, const char *v)
{
	const char *a, *b;

	while (v != NULL && (a = strchr(v, '<')) != NULL &&
	    (b = strchr(a, '>')) != NULL) {
		add_mid(r, a + 1, (size_t)(b - a - 1));
		v = b + 1;
	}
}

/* "Message-ID: <...>" lines of a returned message quoted in text. */
static void
add_mids_from_text(struct bounce_report *r, const char *s, size_t n)
{
	static const char key[] = "message-id:";
	const char *p = s, *end = s + n, *lt, *gt;

	while (p < end && (p = memcasemem(p, (size_t)(end - p), key)) != NULL) {
		/* At a line start only: not "In-Reply-To: ...Message-ID:". */
		int bol = p == s || p[-1] == '\n' || p[-1] == '>' ||
		    p[-1] == ' ' || p[-1] == '\t';

		p += sizeof(key) - 1;
		if (!bol)
			continue;
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' ||
		    *p == '\n'))
			p++;
		if (p >= end || *p != '<')
			continue;
		lt = p;
		gt = memchr(lt, '>', (size_t)(end - lt));
		if (gt == NULL || gt - lt > BOUNCE_MID_MAX + 1)
			continue;
		add_mid(r, lt + 1, (size_t)(gt - lt - 1));
		p = gt + 1;
	}
}

/* --- GMime ------------------------------------------------------------ */

static GMimeParserOptions *
parser_options(void)
{
	/* Japanese mail systems write raw 8-bit headers in these. */
	static const char *fallback[] = { "UTF-8", "ISO-2022-JP", "Shift_JIS",
	    "EUC-JP", "ISO-8859-1", NULL };
	GMimeParserOptions *o = g_mime_parser_options_new();

	g_mime_parser_options_set_fallback_charsets(o, fallback);
	g_mime_parser_options_set_rfc2047_compliance_mode(o,
	    GMIME_RFC_COMPLIANCE_LOOSE);
	return o;
}

static GMimeParser *
parser_for(const char *data, size_t len)
{
	GMimeStream *s = g_mime_stream_mem_new_with_buffer(data, len);
	GMimeParser *p = g_mime_parser_new_with_stream(s);

	g_object_unref(s);
	return p;
}

/*
 * The decoded content of a leaf part (transfer encoding undone; text
 * converted to UTF-8 where its charset is known) appended to out.
 */
static void
part_content(GMimePart *part, int text, struct buf *out)
{
	GMimeDataWrapper *w = g_mime_part_get_content(part);
	GMimeStream *mem, *filt;
	GMimeFilter *f = NULL;
	GByteArray *ba;
	const char *cs;

	if (w == NULL)
		return;
	mem = g_mime_stream_mem_new();
	filt = g_mime_stream_filter_new(mem);
	cs = text ? g_mime_object_get_content_type_parameter(
	    (GMimeObject *)part, "charset") : NULL;
	if (cs != NULL && g_ascii_strcasecmp(cs, "utf-8") != 0 &&
	    g_ascii_strcasecmp(cs, "us-ascii") != 0 &&
	    (f = g_mime_filter_charset_new(cs, "UTF-8")) != NULL) {
		g_mime_stream_filter_add((GMimeStreamFilter *)filt, f);
		g_object_unref(f);
	}
	g_mime_data_wrapper_write_to_stream(w, filt);
	g_mime_stream_flush(filt);
	ba = g_mime_stream_mem_get_byte_array((GMimeStreamMem *)mem);
	if (ba != NULL && ba->len > 0) {
		/* Keep the beginning of a big part (a bounce quoting a large
		 * message has its facts up front), not nothing. */
		size_t n = ba->len > PART_MAX ? PART_MAX : ba->len;

		if (out->max > 0) {
			size_t room = out->len + 1 < out->max ?
			    out->max - out->len - 1 : 0;

			if (n > room)
				n = room;
		}
		buf_add(out, ba->data, n);
	}
	g_object_unref(filt);
	g_object_unref(mem);
}

/* --- RFC 3464 delivery-status ------------------------------------------ */

/* "rfc822; user@example.jp" (or a bare address, or <...>) into out
 * when it is a valid address; "" otherwise. */
static void
dsn_address(const char *v, char *out)
{
	char tmp[ADDR_MAX + 3];
	const char *p;
	size_t n;

	out[0] = '\0';
	if (v == NULL)
		return;
	p = strchr(v, ';');
	p = p != NULL ? p + 1 : v;
	while (*p == ' ' || *p == '\t' || *p == '<')
		p++;
	n = strcspn(p, " \t>\r\n");
	if (n == 0 || n > ADDR_MAX)
		return;
	memcpy(tmp, p, n);
	tmp[n] = '\0';
	if (addr_check(tmp, out, NULL) < 0)
		out[0] = '\0';
}

static enum bounce_kind
kind_of(const char *action, const char *status, const char *diag)
{
	char code[16];
	size_t at;
	int cls;

	if (action[0] != '\0' && strcasecmp(action, "failed") != 0 &&
	    strcasecmp(action, "delayed") != 0)
		return BOUNCE_NONE;	/* delivered, relayed, expanded */
	if (strcasecmp(action, "delayed") == 0)
		return BOUNCE_SOFT;
	if (status[0] == '5')
		return BOUNCE_HARD;
	if (status[0] == '4')
		return BOUNCE_SOFT;
	if (status[0] == '2' && action[0] == '\0')
		return BOUNCE_NONE;
	if (find_status(diag, strlen(diag), code, NULL))
		return code[0] == '5' ? BOUNCE_HARD : BOUNCE_SOFT;
	if ((cls = find_smtp_code(diag, strlen(diag), &at)) != 0)
		return cls == 5 ? BOUNCE_HARD : BOUNCE_SOFT;
	/* "failed" with nothing more precise: the MTA gave up. */
	return action[0] != '\0' ? BOUNCE_HARD : BOUNCE_NONE;
}

/* One per-recipient block, parsed with GMime as a header block. */
static void
dsn_block(struct bounce_report *r, const char *p, size_t n, int *others)
{
	GMimeParserOptions *po;
	GMimeParser *ps;
	GMimeObject *o;
	struct buf blk = BUF_INIT(0);
	struct bounce_rcpt rc;
	const char *v;
	char code[16];

	buf_add(&blk, p, n);
	buf_addstr(&blk, "\n\n");
	ps = parser_for(blk.data, blk.len);
	po = parser_options();
	o = g_mime_parser_construct_part(ps, po);
	g_mime_parser_options_free(po);
	g_object_unref(ps);
	buf_release(&blk);
	if (o == NULL)
		return;
	memset(&rc, 0, sizeof(rc));
	if (g_mime_object_get_header(o, "Final-Recipient") == NULL &&
	    g_mime_object_get_header(o, "Action") == NULL &&
	    g_mime_object_get_header(o, "Status") == NULL)
		goto out;	/* the per-message block */
	dsn_address(g_mime_object_get_header(o, "Final-Recipient"), rc.addr);
	dsn_address(g_mime_object_get_header(o, "Original-Recipient"), rc.orig);
	if ((v = g_mime_object_get_header(o, "Action")) != NULL)
		clean_line(v, strlen(v), rc.action, sizeof(rc.action));
	if ((v = g_mime_object_get_header(o, "Status")) != NULL) {
		while (*v == ' ' || *v == '\t')
			v++;
		if (status_at(v, strlen(v), code) == 0)
			code[0] = '\0';
		snprintf(rc.status, sizeof(rc.status), "%s", code);
	}
	if ((v = g_mime_object_get_header(o, "Diagnostic-Code")) != NULL) {
		const char *semi = strchr(v, ';');

		/* "smtp; 550 ...": the type is not worth keeping. */
		if (semi != NULL && semi - v < 20)
			v = semi + 1;
		clean_line(v, strlen(v), rc.diag, sizeof(rc.diag));
	}
	/* Exim writes "Status: 5.0.0" before "550 5.1.1 ...": take the
	 * precise code when it agrees on the class. */
	if ((rc.status[0] == '\0' || strcmp(rc.status + 1, ".0.0") == 0) &&
	    find_status(rc.diag, strlen(rc.diag), code, NULL) &&
	    (rc.status[0] == '\0' || code[0] == rc.status[0]))
		snprintf(rc.status, sizeof(rc.status), "%s", code);
	rc.kind = kind_of(rc.action, rc.status, rc.diag);
	if (rc.kind == BOUNCE_NONE) {
		(*others)++;
		goto out;
	}
	/* A failure reported with a success code (2.x.x) has no usable
	 * code: take the diagnostic's, else the class's generic one. */
	if (rc.status[0] != '4' && rc.status[0] != '5') {
		rc.status[0] = '\0';
		if (find_status(rc.diag, strlen(rc.diag), code, NULL) &&
		    (code[0] == '5') == (rc.kind == BOUNCE_HARD))
			snprintf(rc.status, sizeof(rc.status), "%s", code);
	}
	if (rc.status[0] == '\0')
		snprintf(rc.status, sizeof(rc.status), "%s",
		    rc.kind == BOUNCE_HARD ? "5.0.0" : "4.0.0");
	if (r->nrcpts < BOUNCE_MAX_RCPTS)
		r->rcpts[r->nrcpts++] = rc;
out:
	g_object_unref(o);
}

/* message/delivery-status: blocks of fields separated by blank lines. */
static void
parse_dsn(struct bounce_report *r, const char *s, size_t n, int *others)
{
	size_t i = 0, start = 0, blocks = 0;

	while (i <= n && blocks < 4 * BOUNCE_MAX_RCPTS) {
		int blank = 0;
		size_t eol = i;

		while (eol < n && s[eol] != '\n')
			eol++;
		/* A line of nothing but blanks ends a block. */
		blank = 1;
		for (size_t k = i; k < eol; k++)
			if (s[k] != ' ' && s[k] != '\t' && s[k] != '\r')
				blank = 0;
		if (blank || eol >= n) {
			size_t end = blank ? i : n;

			if (end > start) {
				dsn_block(r, s + start, end - start, others);
				blocks++;
			}
			start = eol + 1;
		}
		i = eol + 1;
	}
}

/* --- walking the message ----------------------------------------------- */

struct scan {
	int		 is_report;
	char		 report_type[40];
	int		 dsn_parts;
	int		 others;	/* recipients delivered/relayed */
	struct buf	 text;		/* text/plain parts, UTF-8 */
	struct buf	 html;		/* text/html, when there is no text */
};

static void
walk(GMimeObject *o, int depth, struct scan *sc, struct bounce_report *r)
{
	GMimeContentType *ct;

	if (o == NULL || depth > MAX_DEPTH)
		return;
	ct = g_mime_object_get_content_type(o);
	if (GMIME_IS_MULTIPART(o)) {
		int n = g_mime_multipart_get_count((GMimeMultipart *)o);

		if (ct != NULL && g_mime_content_type_is_type(ct, "multipart",
		    "report") && !sc->is_report) {
			const char *rt = g_mime_content_type_get_parameter(ct,
			    "report-type");

			sc->is_report = 1;
			clean_line(rt ? rt : "", rt ? strlen(rt) : 0,
			    sc->report_type, sizeof(sc->report_type));
		}
		for (int i = 0; i < n && i < 64; i++)
			walk(g_mime_multipart_get_part((GMimeMultipart *)o, i),
			    depth + 1, sc, r);
		return;
	}
	if (GMIME_IS_MESSAGE_PART(o)) {
		/* The returned message: its Message-ID is what we want; its
		 * body is the newsletter, not part of the report. */
		GMimeMessage *m = g_mime_message_part_get_message(
		    (GMimeMessagePart *)o);
		const char *mid = m ? g_mime_message_get_message_id(m) : NULL;

		if (mid != NULL)
			add_mid(r, mid, strlen(mid));
		return;
	}
	if (!GMIME_IS_PART(o) || ct == NULL)
		return;
	if (g_mime_content_type_is_type(ct, "message", "delivery-status") ||
	    g_mime_content_type_is_type(ct, "message", "global-delivery-status")) {
		struct buf b = BUF_INIT(0);

		part_content((GMimePart *)o, 0, &b);
		sc->dsn_parts++;
		parse_dsn(r, buf_str(&b), b.len, &sc->others);
		buf_release(&b);
	} else if (g_mime_content_type_is_type(ct, "text", "rfc822-headers") ||
	    g_mime_content_type_is_type(ct, "message", "global-headers")) {
		struct buf b = BUF_INIT(0);
		GMimeParser *ps;
		GMimeParserOptions *po;
		GMimeMessage *m;
		const char *mid;

		part_content((GMimePart *)o, 0, &b);
		buf_addstr(&b, "\n\n");
		ps = parser_for(b.data, b.len);
		po = parser_options();
		m = g_mime_parser_construct_message(ps, po);
		g_mime_parser_options_free(po);
		g_object_unref(ps);
		if (m != NULL && (mid = g_mime_message_get_message_id(m)) != NULL)
			add_mid(r, mid, strlen(mid));
		if (m != NULL)
			g_object_unref(m);
		buf_release(&b);
	} else if (g_mime_content_type_is_type(ct, "text", "plain")) {
		part_content((GMimePart *)o, 1, &sc->text);
		buf_addch(&sc->text, '\n');
	} else if (g_mime_content_type_is_type(ct, "text", "html")) {
		part_content((GMimePart *)o, 1, &sc->html);
		buf_addch(&sc->html, '\n');
	} else if (g_mime_content_type_is_type(ct, "message", "*") ||
	    g_mime_content_type_is_type(ct, "text", "*")) {
		/* message/partial and the like, text/x-...: still text. */
		part_content((GMimePart *)o, 1, &sc->text);
		buf_addch(&sc->text, '\n');
	}
}

/* --- non-standard bounces, by their text -------------------------------- */

/* Where a returned message starts inside a text bounce. */
static const char *const copy_markers[] = {
	"--- Below this line is a copy of the message",		/* qmail */
	"------ This is a copy of the message",			/* Exim */
	"------ This is a copy of the body of the message",	/* Exim */
	"----- Original message -----",				/* Gmail */
	"------ Original message ------",
	"----- Original Message -----",
	"Original message headers:",				/* Exchange */
	"----- Unsent message follows -----",			/* sendmail */
	"----- Original message follows -----",
	"--- The header of the original message is following",
	"Content-Description: Undelivered Message",		/* Postfix */
	"\nReturn-Path:", "\nReceived:",
	NULL
};

static size_t
report_end(const char *s, size_t n)
{
	size_t end = n;

	for (size_t i = 0; copy_markers[i] != NULL; i++) {
		const char *p = memcasemem(s, end, copy_markers[i]);

		if (p != NULL && (size_t)(p - s) < end)
			end = (size_t)(p - s);
	}
	return end;
}

static const char *const subject_signs[] = {
	"undeliver", "delivery status notification", "delivery failure",
	"delivery failed", "mail delivery failed", "failure notice",
	"returned mail", "returned to sender", "delivery has failed",
	"could not be delivered", "non-delivery", "nondeliver",
	"not delivered", "delivery problem", "mail system error",
	"delayed mail", "delivery delayed", "warning: message",
	"配信エラー", "配信不能", "送信エラー", "エラーメール", "配送エラー",
	"不達", "配信できません", "配信に失敗",
	NULL
};

static const char *const body_signs[] = {
	"qmail-send program", "wasn't able to deliver",
	"was not able to deliver", "could not be delivered",
	"couldn't be delivered", "was not delivered", "wasn't delivered",
	"delivery to the following recipient", "address(es) failed",
	"had permanent fatal errors", "cannot be reached",
	"delivery has failed to these recipients", "permanent error",
	"unable to deliver", "this is the mail system at host",
	"mail delivery software", "has not yet been delivered",
	"could not deliver", "delivery to these recipients or groups failed",
	"配信できませんでした", "届けることができませんでした",
	"送信できませんでした", "配送できませんでした", "配信に失敗しました",
	NULL
};

static const char *const vacation_signs[] = {
	"out of office", "out of the office", "auto:", "automatic reply",
	"autoreply", "auto-reply", "auto reply", "vacation", "away from",
	"自動応答", "自動返信", "自動送信", "不在",
	NULL
};

static const char *const delay_signs[] = {
	"warning only", "delayed", "will be retried", "will continue to try",
	"not yet been delivered", "still trying", "still being retried",
	"temporary", "temporarily", "一時的",
	NULL
};

static const char *const daemon_signs[] = {
	"mailer-daemon", "mailer_daemon", "mailerdaemon", "postmaster",
	"mail-daemon", "mail delivery", "mdaemon",
	NULL
};

static const char *
text_format(const char *s, size_t n, const char *from, int xfailed)
{
	if (memcasemem(s, n, "qmail-send program") != NULL)
		return "qmail";
	if (xfailed || memcasemem(s, n, "mail delivery software") != NULL)
		return "exim";
	if (memcasemem(s, n, "this is the mail system at host") != NULL)
		return "postfix";
	if ((from != NULL && (strcasestr(from, "googlemail.com") != NULL ||
	    strcasestr(from, "google.com") != NULL)) ||
	    memcasemem(s, n, "Google tried to deliver") != NULL)
		return "gmail";
	if (memcasemem(s, n, "Microsoft Exchange") != NULL ||
	    memcasemem(s, n, "delivery has failed to these recipients") != NULL ||
	    memcasemem(s, n, "Remote Server returned") != NULL)
		return "exchange";
	if (memcasemem(s, n, "Transcript of session follows") != NULL ||
	    memcasemem(s, n, "had permanent fatal errors") != NULL)
		return "sendmail";
	return "text";
}

/* Is addr one to leave out: a mail system's, or in one of the three
 * headers in skip (To, From, Return-Path; each may be NULL). */
static int
excluded(const char *addr, const char *const *skip)
{
	const char *at = strchr(addr, '@');
	size_t ln = at ? (size_t)(at - addr) : 0;

	if ((ln == 10 && strncasecmp(addr, "postmaster", 10) == 0) ||
	    (ln == 13 && strncasecmp(addr, "mailer-daemon", 13) == 0))
		return 1;
	for (size_t i = 0; i < 3; i++)
		if (skip[i] != NULL && strcasestr(skip[i], addr) != NULL)
			return 1;
	return 0;
}

static int
atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    is_digit((char)c) || strchr("!#$%&'*+/=?^_`{|}~.-", c) != NULL;
}

/* Every valid address in s[0..n), in order, into the report. */
static void
text_addresses(struct bounce_report *r, const char *s, size_t n,
    const char *const *skip)
{
	for (size_t i = 0; i < n && r->nrcpts < BOUNCE_MAX_RCPTS; i++) {
		size_t a = i, b = i + 1;
		char tmp[ADDR_MAX + 1], norm[ADDR_MAX + 1];
		int dup = 0;

		if (s[i] != '@')
			continue;
		while (a > 0 && atext((unsigned char)s[a - 1]) && i - a < 64)
			a--;
		while (b < n && ((s[b] >= 'a' && s[b] <= 'z') ||
		    (s[b] >= 'A' && s[b] <= 'Z') || is_digit(s[b]) ||
		    s[b] == '.' || s[b] == '-') && b - i < 254)
			b++;
		while (b > i + 1 && s[b - 1] == '.')
			b--;
		while (a < i && s[a] == '.')
			a++;
		if (a == i || b == i + 1 || b - a > ADDR_MAX)
			continue;
		memcpy(tmp, s + a, b - a);
		tmp[b - a] = '\0';
		if (addr_check(tmp, norm, NULL) < 0 || excluded(norm, skip))
			continue;
		for (size_t k = 0; k < r->nrcpts; k++)
			if (strcasecmp(r->rcpts[k].addr, norm) == 0)
				dup = 1;
		if (!dup)
			snprintf(r->rcpts[r->nrcpts++].addr, ADDR_MAX + 1, "%s",
			    norm);
		i = b - 1;
	}
}

/*
 * A bounce that is not a DSN: decide from the headers and the report's
 * text whether it is one, then take addresses and codes from the text
 * before the returned message.  Returns 1 or 0 (why set).
 */
static int
parse_text(struct bounce_report *r, GMimeMessage *msg, struct scan *sc)
{
	GMimeObject *mo = (GMimeObject *)msg;
	const char *subject = g_mime_message_get_subject(msg);
	const char *from = g_mime_object_get_header(mo, "From");
	const char *to = g_mime_object_get_header(mo, "To");
	const char *xfail = g_mime_object_get_header(mo, "X-Failed-Recipients");
	const char *skip[4];
	const struct buf *t = sc->text.len > 0 ? &sc->text : &sc->html;
	const char *s = buf_str(t);
	size_t n = report_end(s, t->len), at = 0;
	int daemon, subj, body, vacation;
	enum bounce_kind kind;
	char code[16] = "", diag[BOUNCE_DIAG_MAX + 1] = "";
	int cls;

	daemon = from != NULL && any_of(from, strlen(from), daemon_signs);
	subj = subject != NULL && any_of(subject, strlen(subject),
	    subject_signs);
	body = any_of(s, n, body_signs);
	vacation = (subject != NULL && any_of(subject, strlen(subject),
	    vacation_signs)) || g_mime_object_get_header(mo, "X-Autoreply") ||
	    g_mime_object_get_header(mo, "X-Autorespond");
	if (!(xfail != NULL || (daemon && (subj || body)) ||
	    (subj && body && !vacation))) {
		snprintf(r->why, sizeof(r->why), "%s", vacation ?
		    "an auto-reply (out of office)" : daemon ?
		    "from a mail system, but it reports no failure" :
		    "an ordinary message");
		return 0;
	}
	snprintf(r->format, sizeof(r->format), "%s",
	    text_format(s, t->len, from, xfail != NULL));

	/* The failed addresses: Exim names them in a header; otherwise
	 * the report text does, before the returned message. */
	skip[0] = to;
	skip[1] = from;
	skip[2] = g_mime_object_get_header(mo, "Return-Path");
	skip[3] = NULL;
	if (xfail != NULL)
		text_addresses(r, xfail, strlen(xfail), skip);
	if (r->nrcpts == 0)
		text_addresses(r, s, n, skip);

	/* The status: an enhanced code, else an SMTP reply code, else the
	 * words.  A returned message is a failure unless it says it is a
	 * warning. */
	if (find_status(s, n, code, &at)) {
		kind = code[0] == '5' ? BOUNCE_HARD : BOUNCE_SOFT;
		line_at(s, n, at, diag, sizeof(diag));
	} else if ((cls = find_smtp_code(s, n, &at)) != 0) {
		kind = cls == 5 ? BOUNCE_HARD : BOUNCE_SOFT;
		snprintf(code, sizeof(code), "%d.0.0", cls);
		line_at(s, n, at, diag, sizeof(diag));
	} else if (any_of(s, n, delay_signs) || (subject != NULL &&
	    any_of(subject, strlen(subject), delay_signs))) {
		kind = BOUNCE_SOFT;
		snprintf(code, sizeof(code), "4.0.0");
	} else {
		kind = BOUNCE_HARD;
		snprintf(code, sizeof(code), "5.0.0");
	}
	if (r->nrcpts == 0)
		r->nrcpts = 1;	/* nobody named: the Message-ID must say */
	for (size_t i = 0; i < r->nrcpts; i++) {
		r->rcpts[i].kind = kind;
		snprintf(r->rcpts[i].status, sizeof(r->rcpts[i].status), "%s",
		    code);
		snprintf(r->rcpts[i].diag, sizeof(r->rcpts[i].diag), "%s", diag);
	}
	return 1;
}

/* --- the entry point ---------------------------------------------------- */

const char *
bounce_kind_name(enum bounce_kind k)
{
	return k == BOUNCE_HARD ? "hard" : k == BOUNCE_SOFT ? "soft" : "none";
}

/* The addresses this bounce was delivered to, for VERP: the headers a
 * local delivery adds first, then To. */
static void
envelope_to(GMimeMessage *msg, struct bounce_report *r)
{
	static const char *const hdrs[] = { "Delivered-To", "X-Original-To",
	    "Envelope-To", "To" };

	for (size_t i = 0; i < 4 && r->nto < 4; i++) {
		const char *v = g_mime_object_get_header((GMimeObject *)msg,
		    hdrs[i]);
		InternetAddressList *l;

		if (v == NULL || strlen(v) > 1000)
			continue;
		if ((l = internet_address_list_parse(NULL, v)) == NULL)
			continue;
		for (int k = 0; k < internet_address_list_length(l) &&
		    r->nto < 4; k++) {
			InternetAddress *ia = internet_address_list_get_address(l, k);
			const char *a;
			char norm[ADDR_MAX + 1];

			if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
				continue;
			a = internet_address_mailbox_get_addr(
			    INTERNET_ADDRESS_MAILBOX(ia));
			if (a != NULL && addr_check(a, norm, NULL) == 0)
				snprintf(r->to[r->nto++], ADDR_MAX + 1, "%s", norm);
		}
		g_object_unref(l);
	}
}

int
bounce_parse(const void *data, size_t len, struct bounce_report *r,
    struct err *e)
{
	GMimeParser *ps = NULL;
	GMimeParserOptions *po = NULL;
	GMimeMessage *msg = NULL;
	struct scan sc;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	memset(&sc, 0, sizeof(sc));
	buf_init(&sc.text, TEXT_MAX);
	buf_init(&sc.html, TEXT_MAX);
	if (len > (size_t)BOUNCE_MAX_INPUT)
		return err_set(e, ERR_TOOBIG, "bounce: the message is over %ld "
		    "MB; not read", BOUNCE_MAX_INPUT / (1024 * 1024));
	ps = parser_for(data, len);
	po = parser_options();
	msg = g_mime_parser_construct_message(ps, po);
	if (msg == NULL || g_mime_header_list_get_count(
	    g_mime_object_get_header_list((GMimeObject *)msg)) == 0) {
		snprintf(r->why, sizeof(r->why), "not a mail message");
		goto out;
	}
	walk(g_mime_message_get_mime_part(msg), 0, &sc, r);
	envelope_to(msg, r);

	/* A report-type left out, but a delivery-status part inside: a
	 * DSN all the same (some MTAs forget the parameter). */
	if (sc.is_report && !(sc.report_type[0] == '\0' && sc.dsn_parts > 0) &&
	    strcasecmp(sc.report_type, "delivery-status") != 0 &&
	    strcasecmp(sc.report_type, "global-delivery-status") != 0) {
		if (strcasecmp(sc.report_type, "disposition-notification") == 0)
			snprintf(r->why, sizeof(r->why), "a read-receipt, not a "
			    "delivery report");
		else if (strcasecmp(sc.report_type, "feedback-report") == 0)
			snprintf(r->why, sizeof(r->why), "a complaint (feedback "
			    "report), not a delivery report");
		else
			snprintf(r->why, sizeof(r->why), "a report of type "
			    "'%.32s', not a delivery report", sc.report_type);
		goto out;
	}
	if (sc.dsn_parts > 0) {
		if (r->nrcpts == 0) {
			snprintf(r->why, sizeof(r->why), "a delivery report "
			    "without failures (%d delivered or relayed)",
			    sc.others);
			goto out;
		}
		snprintf(r->format, sizeof(r->format), "dsn");
	} else if ((rc = parse_text(r, msg, &sc)) == 0)
		goto out;

	/* Candidates for the original Message-ID: the returned message's
	 * (found while walking), any quoted in the text, then what the
	 * bounce itself refers to. */
	add_mids_from_text(r, sc.text.data ? sc.text.data : "", sc.text.len);
	add_mids_from_list(r, g_mime_object_get_header((GMimeObject *)msg,
	    "In-Reply-To"));
	add_mids_from_list(r, g_mime_object_get_header((GMimeObject *)msg,
	    "References"));
	for (size_t i = 0; i < r->nrcpts; i++)
		if (r->rcpts[i].kind > r->kind)
			r->kind = r->rcpts[i].kind;
	rc = 1;
out:
	if (rc == 0) {
		r->nrcpts = 0;
		r->nmids = 0;
		r->kind = BOUNCE_NONE;
	}
	if (msg != NULL)
		g_object_unref(msg);
	if (po != NULL)
		g_mime_parser_options_free(po);
	if (ps != NULL)
		g_object_unref(ps);
	buf_release(&sc.text);
	buf_release(&sc.html);
	return rc;
}

/* --- the rules ---------------------------------------------------------- */

struct who {
	long long	 id;
	char		 email[ADDR_MAX + 1];
	char		 status[16];
};

static int
row_who(sqlite3_stmt *st, struct who *w)
{
	w->id = sqlite3_column_int64(st, 0);
	snprintf(w->email, sizeof(w->email), "%s", sqlite3_column_text(st, 1));
	snprintf(w->status, sizeof(w->status), "%s", sqlite3_column_text(st, 2));
	return 1;
}

/* The declarer our message mid went to; 1 found, 0 not, -ERR_DB. */
static int
by_message_id(struct db *db, const struct bounce_opts *o, const char *mid,
    struct who *w, struct err *e)
{
	char name[64];
	long long sid;
	sqlite3_stmt *st;
	int rc;

	/* Only a Message-ID whose tag verifies names a declarer. */
	if (o->keys == NULL ||
	    campaign_parse_message_id(mid, o->instance, o->keys, name, &sid) < 0)
		return 0;
	/* The id alone is guessable: that campaign must have queued mail
	 * for that declarer. */
	if ((st = db_stmt(db, "SELECT s.id, s.email, s.status FROM outbox o "
	    "JOIN campaign c ON c.id = o.campaign_id "
	    "JOIN subscriber s ON s.id = o.subscriber_id "
	    "WHERE c.name = ?1 AND o.subscriber_id = ?2 LIMIT 1", e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, sid);
	rc = sqlite3_step(st);
	rc = rc == SQLITE_ROW ? row_who(st, w) : rc == SQLITE_DONE ? 0 :
	    db_error(db, e, "find declarer by Message-ID");
	sqlite3_reset(st);
	return rc;
}

static int
by_id(struct db *db, int64_t id, struct who *w, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, "SELECT id, email, status FROM subscriber "
	    "WHERE id = ?", e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	rc = rc == SQLITE_ROW ? row_who(st, w) : rc == SQLITE_DONE ? 0 :
	    db_error(db, e, "find declarer by VERP address");
	sqlite3_reset(st);
	return rc;
}

static int
by_address(struct db *db, const char *addr, struct who *w, struct err *e)
{
	static const char *const q[] = {
		"SELECT id, email, status FROM subscriber WHERE email = ?1",
		/* Remote MTAs may change the local part's case. */
		"SELECT id, email, status FROM subscriber WHERE "
		"lower(email) = lower(?1) ORDER BY id LIMIT 1",
	};
	sqlite3_stmt *st;
	int rc = 0;

	if (addr[0] == '\0')
		return 0;
	for (int i = 0; i < 2 && rc == 0; i++) {
		if ((st = db_stmt(db, q[i], e)) == NULL)
			return -ERR_DB;
		sqlite3_bind_text(st, 1, addr, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		rc = rc == SQLITE_ROW ? row_who(st, w) : rc == SQLITE_DONE ?
		    0 : db_error(db, e, "find declarer by address");
		sqlite3_reset(st);
	}
	return rc;
}

/* The recipient of the report that is w, or NULL. */
static const struct bounce_rcpt *
rcpt_of(const struct bounce_report *r, const struct who *w)
{
	for (size_t i = 0; i < r->nrcpts; i++)
		if ((r->rcpts[i].addr[0] != '\0' &&
		    strcasecmp(r->rcpts[i].addr, w->email) == 0) ||
		    (r->rcpts[i].orig[0] != '\0' &&
		    strcasecmp(r->rcpts[i].orig, w->email) == 0))
			return &r->rcpts[i];
	return NULL;
}

static int
names_anyone(const struct bounce_report *r)
{
	for (size_t i = 0; i < r->nrcpts; i++)
		if (r->rcpts[i].addr[0] != '\0' || r->rcpts[i].orig[0] != '\0')
			return 1;
	return 0;
}

/* The worst recipient (for a report that names nobody). */
static const struct bounce_rcpt *
worst(const struct bounce_report *r)
{
	const struct bounce_rcpt *best = NULL;

	for (size_t i = 0; i < r->nrcpts; i++)
		if (best == NULL || r->rcpts[i].kind > best->kind)
			best = &r->rcpts[i];
	return best;
}

static int
find(struct db *db, const struct bounce_opts *o, const struct bounce_report *r,
    struct who *w, const struct bounce_rcpt **rc, const char **mid,
    struct err *e)
{
	int found;

	*rc = NULL;
	*mid = NULL;
	/* VERP first: the return address is ours and cannot be forged. */
	if (o->verp && o->keys != NULL) {
		const char *cand[5];
		size_t nc = 0;

		if (o->recipient != NULL)
			cand[nc++] = o->recipient;
		for (size_t i = 0; i < r->nto; i++)
			cand[nc++] = r->to[i];
		for (size_t i = 0; i < nc; i++) {
			int64_t id;

			if (verp_parse(o->keys, o->list_id, o->envelope_from,
			    cand[i], &id) < 0)
				continue;
			if ((found = by_id(db, id, w, e)) < 0)
				return found;
			if (found) {
				*rc = names_anyone(r) && rcpt_of(r, w) ?
				    rcpt_of(r, w) : worst(r);
				return 2;
			}
		}
	}
	for (size_t i = 0; i < r->nmids; i++) {
		if ((found = by_message_id(db, o, r->mids[i], w, e)) < 0)
			return found;
		if (found == 0)
			continue;
		*mid = r->mids[i];
		if (!names_anyone(r)) {
			*rc = worst(r);
			return 1;
		}
		if ((*rc = rcpt_of(r, w)) != NULL)
			return 1;
		log_info("bounce: Message-ID <%s> is declarer %lld's, but the "
		    "report names other recipients; not trusted", r->mids[i],
		    w->id);
		*mid = NULL;
	}
	for (size_t i = 0; i < r->nrcpts; i++) {
		const char *cand[2] = { r->rcpts[i].addr, r->rcpts[i].orig };

		for (int k = 0; k < 2; k++) {
			if ((found = by_address(db, cand[k], w, e)) < 0)
				return found;
			if (found) {
				*rc = &r->rcpts[i];
				return 1;
			}
		}
	}
	return 0;
}

int
bounce_apply(struct db *db, const struct bounce_opts *o,
    const struct bounce_report *r, time_t now, struct bounce_result *res,
    struct err *e)
{
	const struct bounce_rcpt *rc = NULL;
	const char *mid = NULL;
	struct who w;
	sqlite3_stmt *st;
	char ts[21], cutoff[21], reason[BOUNCE_DIAG_MAX + 96];
	int ret, n;

	memset(res, 0, sizeof(*res));
	memset(&w, 0, sizeof(w));
	if ((ret = db_begin(db, e)) < 0)
		return ret;
	if ((ret = find(db, o, r, &w, &rc, &mid, e)) < 0)
		goto fail;
	if (ret == 0 || rc == NULL || rc->kind == BOUNCE_NONE) {
		db_rollback(db);
		return 0;
	}
	res->declarer = w.id;
	snprintf(res->email, sizeof(res->email), "%s", w.email);
	snprintf(res->status_before, sizeof(res->status_before), "%s",
	    w.status);
	res->kind = rc->kind;
	snprintf(res->status, sizeof(res->status), "%s", rc->status);
	res->by_verp = ret == 2;
	res->by_message_id = mid != NULL;
	/* Found by a failed address only: anybody can write such a bounce,
	 * so it is recorded, but changes nobody's status. */
	res->unverified = ret == 1 && mid == NULL;
	date_format_timestamp(now, ts);
	if ((st = db_stmt(db, "INSERT INTO bounce (subscriber_id, received, "
	    "kind, status, diagnostic, message_id, verified) VALUES (?, ?, ?, "
	    "?, ?, ?, ?)", e)) == NULL) {
		ret = -ERR_DB;
		goto fail;
	}
	sqlite3_bind_int64(st, 1, w.id);
	sqlite3_bind_text(st, 2, ts, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, bounce_kind_name(rc->kind), -1, SQLITE_STATIC);
	db_bind_text(st, 4, rc->status[0] ? rc->status : NULL);
	db_bind_text(st, 5, rc->diag[0] ? rc->diag : NULL);
	db_bind_text(st, 6, mid != NULL ? mid : r->nmids > 0 ? r->mids[0] :
	    NULL);
	sqlite3_bind_int(st, 7, !res->unverified);
	ret = sqlite3_step(st) == SQLITE_DONE ? 0 :
	    db_error(db, e, "record bounce");
	sqlite3_reset(st);
	if (ret < 0)
		goto fail;

	if (rc->kind == BOUNCE_SOFT) {
		/* Delay warnings and the final failure of one message are
		 * one soft bounce, not several. */
		date_format_timestamp(now - (time_t)o->soft_days * 86400, cutoff);
		if ((st = db_stmt(db, "SELECT count(DISTINCT coalesce("
		    "message_id, 'row:' || id)) FROM bounce WHERE "
		    "subscriber_id = ? AND kind = 'soft' AND verified AND "
		    "received >= ?",
		    e)) == NULL) {
			ret = -ERR_DB;
			goto fail;
		}
		sqlite3_bind_int64(st, 1, w.id);
		sqlite3_bind_text(st, 2, cutoff, -1, SQLITE_STATIC);
		n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) :
		    -1;
		sqlite3_reset(st);
		if (n < 0) {
			ret = db_error(db, e, "count soft bounces");
			goto fail;
		}
		res->soft_count = n;
		snprintf(reason, sizeof(reason), "%d soft bounces within %d "
		    "days, the last %s%s%s", n, o->soft_days, rc->status,
		    rc->diag[0] ? ": " : "", rc->diag);
	} else
		snprintf(reason, sizeof(reason), "hard bounce %s%s%s",
		    rc->status, rc->diag[0] ? ": " : "", rc->diag);
	/* Only an active address changes: an unsubscribed declarer's own
	 * wish, or an admin's removal, stays what it is. */
	if (!res->unverified && strcmp(w.status, "active") == 0 &&
	    (rc->kind == BOUNCE_HARD || res->soft_count >= o->soft_limit)) {
		if ((ret = sub_set_status(db, w.email, "bounced", reason, now,
		    e)) < 0)
			goto fail;
		res->marked = 1;
	}
	if (o->dry_run) {
		db_rollback(db);
		return 0;
	}
	if ((ret = db_commit(db, e)) < 0)
		return ret;
	return 0;
fail:
	db_rollback(db);
	return ret;
}
