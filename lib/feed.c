/*
 * feed — streaming RSS 1.0 / RSS 2.0 / Atom parser on libxml2's SAX2
 * interface.  See feed.h for the contract and docs/violations.md for the
 * real-world quirks we tolerate.
 *
 * Why SAX and not the tree: a 50 MB feed costs libxml2's DOM about 260 MB;
 * here memory is one item's fields plus libxml2's input window.  Why not
 * xmlTextReader: it does not let us see entity declarations as they are
 * parsed, which is where hostile documents are refused.
 */
#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libxml/HTMLparser.h>
#include <libxml/encoding.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/uri.h>
#include <openssl/evp.h>

#include "buf.h"
#include "date.h"
#include "err.h"
#include "feed.h"
#include "text.h"
#include "xalloc.h"

#define NS_RDF		"http://www.w3.org/1999/02/22-rdf-syntax-ns#"
#define NS_RSS1		"http://purl.org/rss/1.0/"
#define NS_RSS090	"http://my.netscape.com/rdf/simple/0.9/"
#define NS_ATOM		"http://www.w3.org/2005/Atom"
#define NS_DC		"http://purl.org/dc/elements/1.1/"
#define NS_DCTERMS	"http://purl.org/dc/terms/"
#define NS_CONTENT	"http://purl.org/rss/1.0/modules/content/"
#define NS_MYJVN	"http://jvndb.jvn.jp/myjvn/Status"

/* What we keep of one raw field before cleaning: far above every output
 * cap, so cutting here never changes a result, and it bounds memory. */
#define RAW_MAX		(256 * 1024)

/* ---------------------------------------------------------------------
 * Process-wide set-up
 */

static pthread_once_t	 init_once = PTHREAD_ONCE_INIT;
static xmlExternalEntityLoader default_loader;
/* Its address marks the parser contexts that belong to this module. */
static const char	 ctxt_mark = 'F';

/*
 * Every external load libxml2 attempts while parsing a feed (DTD subset,
 * external entity, XInclude) comes through here: refuse it, so that no
 * feed can make us open a local file or a URL.  Entity declarations are
 * already refused earlier; this is the backstop.  Loads for other users of
 * libxml2 in the process keep the default behaviour, except loads with no
 * parser context at all, which nothing in samail needs.
 */
static xmlParserInputPtr
refusing_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
	if (ctxt == NULL || ctxt->_private == &ctxt_mark)
		return NULL;
	return default_loader(url, id, ctxt);
}

static int
iconv_has(const char *name)
{
	iconv_t cd = iconv_open("UTF-8", name);

	if (cd == (iconv_t)-1)
		return 0;
	iconv_close(cd);
	return 1;
}

static void
init_once_fn(void)
{
	static const char *const sjis[] = {
		"SHIFT_JIS", "SHIFT-JIS", "SJIS", "X-SJIS", "MS_KANJI",
		"CSSHIFTJIS",
	};
	static const char *const eucjp[] = { "EUC-JP", "EUCJP", "X-EUC-JP" };

	xmlInitParser();
	default_loader = xmlGetExternalEntityLoader();
	xmlSetExternalEntityLoader(refusing_loader);
	/*
	 * Japanese servers that declare Shift_JIS send Microsoft's CP932
	 * (NEC and IBM extensions such as ① and ㈱), and glibc's SHIFT_JIS
	 * turns 0x5C and 0x7E into ¥ and ‾, which breaks URLs with '~'.
	 * CP932 is the superset that matches what they mean; likewise
	 * EUC-JP-MS for EUC-JP.
	 */
	if (iconv_has("CP932"))
		for (size_t i = 0; i < sizeof(sjis) / sizeof(sjis[0]); i++)
			xmlAddEncodingAlias("CP932", sjis[i]);
	if (iconv_has("EUC-JP-MS"))
		for (size_t i = 0; i < sizeof(eucjp) / sizeof(eucjp[0]); i++)
			xmlAddEncodingAlias("EUC-JP-MS", eucjp[i]);
}

void
feed_init(void)
{
	pthread_once(&init_once, init_once_fn);
}

const char *
feed_format_name(enum feed_format f)
{
	switch (f) {
	case FEED_RSS1:	return "RSS 1.0";
	case FEED_RSS2:	return "RSS 2.0";
	case FEED_ATOM:	return "Atom";
	default:	return "unknown";
	}
}

/* ---------------------------------------------------------------------
 * Text clean-up
 */

/* Decode one UTF-8 sequence at s (n bytes left); *len gets its length.
 * Invalid sequences decode to U+FFFD and consume one byte. */
static unsigned
utf8_next(const unsigned char *s, size_t n, size_t *len)
{
	unsigned cp;
	size_t need;

	if (s[0] < 0x80) {
		*len = 1;
		return s[0];
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 1;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 2;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 3;
		cp = s[0] & 0x07;
	} else
		goto bad;
	if (n <= need)
		goto bad;
	for (size_t i = 1; i <= need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			goto bad;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		goto bad;
	*len = need + 1;
	return cp;
bad:
	*len = 1;
	return 0xfffd;
}

static int
is_space_cp(unsigned cp)
{
	return cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || cp == 0x85 ||
	    cp == 0xa0 || cp == 0x2028 || cp == 0x2029 ||
	    (cp >= 0x2000 && cp <= 0x200a) || cp == 0x202f || cp == 0x205f;
}

/*
 * Characters that never survive: C0 and C1 controls and DEL (a CR or LF
 * in a title would become a header injection in the mail), the bidi
 * embedding/override/isolate controls (they make a title read differently
 * from what it is), the BOM and non-characters.
 */
static int
is_dropped_cp(unsigned cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) ||
	    cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
	    (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff ||
	    (cp & 0xfffe) == 0xfffe || (cp >= 0xfdd0 && cp <= 0xfdef);
}

/*
 * One line of clean text from s[0..n): invalid UTF-8 replaced, white space
 * runs collapsed to one space, controls dropped, trimmed (ASCII space and
 * U+3000), cut to at most cap bytes at a character boundary with "…".
 * Caller frees.
 */
static char *
clean_line(const char *s, size_t n, size_t cap)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0, len, keep, run;
	int space = 0;
	unsigned cp;
	char *out;

	/* Written in place rather than through struct buf: this runs over
	 * every title and summary, and a replacement character (3 bytes) for
	 * each invalid byte bounds the output at 3n. */
	out = xmalloc(3 * n + 1);
	while (i < n) {
		/* The common case, a run of characters kept as they are (one
		 * copy for the run): printable ASCII, and most of a Japanese
		 * feed: U+1000-U+1FFF, U+3000-U+CFFF and U+E000-U+EFFF hold
		 * no space or control we act on. */
		for (run = i; run < n;) {
			if (p[run] > 0x20 && p[run] < 0x7f)
				run++;
			else if ((p[run] == 0xe1 || (p[run] >= 0xe3 &&
			    p[run] <= 0xec) || p[run] == 0xee) &&
			    n - run >= 3 && (p[run + 1] & 0xc0) == 0x80 &&
			    (p[run + 2] & 0xc0) == 0x80)
				run += 3;
			else
				break;
		}
		if (run > i) {
			if (space && o > 0)
				out[o++] = ' ';
			space = 0;
			memcpy(out + o, p + i, run - i);
			o += run - i;
			i = run;
			continue;
		}
		cp = utf8_next(p + i, n - i, &len);
		if (is_space_cp(cp))
			space = 1;
		else if (!is_dropped_cp(cp)) {
			if (space && o > 0)
				out[o++] = ' ';
			space = 0;
			if (cp == 0xfffd && len == 1) {
				memcpy(out + o, "\xef\xbf\xbd", 3);
				o += 3;
			} else {
				memcpy(out + o, p + i, len);
				o += len;
			}
		}
		i += len;
	}
	out[o] = '\0';
	text_trim(out);
	if (cap >= 4 && strlen(out) > cap) {
		keep = cap - 3;		/* room for "…" */
		while (keep > 0 && ((unsigned char)out[keep] & 0xc0) == 0x80)
			keep--;
		memcpy(out + keep, "\xe2\x80\xa6", 4);
	}
	return out;
}

/* HTML to text through libxml2's HTML parser (SAX, no tree). */

struct htext {
	struct buf	*out;
	int		 style;		/* inside <style>: its text is CSS */
};

/* 1 for an element whose content is never text a reader sees: <style>
 * (WordPress blocks and page builders put CSS in their excerpts). */
static int
html_hidden(const xmlChar *name)
{
	return xmlStrcasecmp(name, (const xmlChar *)"style") == 0;
}

static int
html_block(const xmlChar *name)
{
	static const char *const block[] = {
		"p", "br", "div", "li", "ul", "ol", "dl", "dt", "dd", "tr",
		"td", "th", "table", "h1", "h2", "h3", "h4", "h5", "h6",
		"blockquote", "pre", "hr", "section", "article", "header",
		"footer", "figure", "figcaption",
	};

	for (size_t i = 0; i < sizeof(block) / sizeof(block[0]); i++)
		if (xmlStrcasecmp(name, (const xmlChar *)block[i]) == 0)
			return 1;
	return 0;
}

/*
 * A space around block elements keeps words of adjacent paragraphs apart.
 * Not before <p>: libxml2 implies a <p> around text that follows a
 * top-level element ("<script>x</script>text"), and that must not split
 * what the feed wrote as one run of text.
 */
static void
h_start(void *ctx, const xmlChar *name, const xmlChar **atts)
{
	struct htext *h = ctx;

	(void)atts;
	if (html_hidden(name))
		h->style++;
	if (html_block(name) && xmlStrcasecmp(name, (const xmlChar *)"p") != 0)
		buf_addch(h->out, ' ');
}

static void
h_end(void *ctx, const xmlChar *name)
{
	struct htext *h = ctx;

	if (html_hidden(name) && h->style > 0)
		h->style--;
	if (html_block(name))
		buf_addch(h->out, ' ');
}

static void
h_chars(void *ctx, const xmlChar *ch, int len)
{
	struct htext *h = ctx;

	if (h->style == 0)
		buf_add(h->out, ch, (size_t)len);
}

/*
 * Append the text of an HTML fragment to out: tags dropped (their
 * content kept, a space for block elements; the CSS in <style> dropped
 * with its tags), entities and character
 * references decoded once.  Input without '<' or '&' is copied as is: no
 * markup, nothing to decode, and it is the common case for JVN feeds.
 */
static void
html_text(const char *in, size_t n, struct buf *out)
{
	htmlSAXHandler sax;
	htmlParserCtxtPtr ctxt;
	struct htext h = { out, 0 };

	if (memchr(in, '<', n) == NULL && memchr(in, '&', n) == NULL) {
		buf_add(out, in, n);
		return;
	}
	memset(&sax, 0, sizeof(sax));
	sax.startElement = h_start;
	sax.endElement = h_end;
	sax.characters = h_chars;
	sax.ignorableWhitespace = h_chars;
	/* <script>: kept as text (never markup); <style>: dropped. */
	sax.cdataBlock = h_chars;
	ctxt = htmlCreatePushParserCtxt(&sax, &h, NULL, 0, NULL,
	    XML_CHAR_ENCODING_UTF8);
	if (ctxt == NULL) {
		buf_add(out, in, n);
		return;
	}
	ctxt->_private = (void *)&ctxt_mark;
	/* IGNORE_ENC: a <meta charset> inside a description must not make
	 * libxml2 re-decode text that is already UTF-8.  Not NOIMPLIED: with
	 * it, the push parser drops text after the first top-level element. */
	htmlCtxtUseOptions(ctxt, HTML_PARSE_NONET | HTML_PARSE_NOERROR |
	    HTML_PARSE_NOWARNING | HTML_PARSE_IGNORE_ENC);
	htmlParseChunk(ctxt, in, (int)n, 1);
	htmlFreeParserCtxt(ctxt);
}

/* 1 if the n bytes at s name an HTML element (case-insensitively). */
static int
html_element(const char *s, size_t n)
{
	static const char *const known[] = {
		"a", "abbr", "acronym", "address", "area", "article", "aside",
		"b", "base", "basefont", "bdi", "bdo", "big", "blockquote",
		"body", "br", "button", "caption", "center", "cite", "code",
		"col", "colgroup", "dd", "del", "details", "dfn", "dir", "div",
		"dl", "dt", "em", "embed", "fieldset", "figcaption", "figure",
		"font", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
		"head", "header", "hr", "html", "i", "iframe", "img", "input",
		"ins", "kbd", "label", "legend", "li", "link", "main", "map",
		"mark", "meta", "nav", "nobr", "noscript", "object", "ol",
		"optgroup", "option", "p", "param", "picture", "pre", "q", "rp",
		"rt", "ruby", "s", "samp", "script", "section", "select",
		"small", "source", "span", "strike", "strong", "style", "sub",
		"summary", "sup", "svg", "table", "tbody", "td", "template",
		"textarea", "tfoot", "th", "thead", "time", "title", "tr",
		"track", "tt", "u", "ul", "var", "video", "wbr",
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i]) == n && strncasecmp(s, known[i], n) == 0)
			return 1;
	return 0;
}

/*
 * A '<' that does not open an HTML tag is text: "<CVE-2025-0282>" in a
 * title, "<AllowOverride None>" in advice.  Escape those so that the
 * HTML parser keeps them; real tags (known elements, "ns:tag" from
 * Office, comments, "</...>" of either) pass.
 */
static void
escape_non_tags(const char *in, size_t n, struct buf *out)
{
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		size_t k = i + 1, name;

		if (in[i] != '<')
			continue;
		if (k < n && (in[k] == '!' || in[k] == '?'))
			continue;
		if (k < n && in[k] == '/')
			k++;
		for (name = k; name < n && (isalnum((unsigned char)in[name]) ||
		    in[name] == ':' || in[name] == '_' ||
		    (name > k && in[name] == '-')); name++)
			;
		if (name > k && (html_element(in + k, name - k) ||
		    memchr(in + k, ':', name - k) != NULL) &&
		    (name == n || strchr(" \t\r\n/>", in[name]) != NULL))
			continue;
		buf_add(out, in + run, i - run);
		buf_addstr(out, "&lt;");
		run = i + 1;
	}
	buf_add(out, in + run, n - run);
}

/* Clean a title or summary: HTML to text, then one clean line. */
static char *
clean_html(const struct buf *raw, size_t cap)
{
	struct buf t = BUF_INIT(0), esc = BUF_INIT(0);
	char *out;

	/* No markup and nothing to decode: html_text() would copy it as is. */
	if (memchr(buf_str(raw), '<', raw->len) == NULL &&
	    memchr(buf_str(raw), '&', raw->len) == NULL)
		return clean_line(buf_str(raw), raw->len, cap);
	if (memchr(buf_str(raw), '<', raw->len) != NULL) {
		escape_non_tags(buf_str(raw), raw->len, &esc);
		html_text(buf_str(&esc), esc.len, &t);
	} else
		html_text(buf_str(raw), raw->len, &t);
	out = clean_line(buf_str(&t), t.len, cap);
	buf_release(&t);
	buf_release(&esc);
	return out;
}

/* 1 if s starts with an http or https scheme and a host. */
static int
is_http_url(const char *s)
{
	const char *p;

	if (strncasecmp(s, "http://", 7) == 0)
		p = s + 7;
	else if (strncasecmp(s, "https://", 8) == 0)
		p = s + 8;
	else
		return 0;
	return *p != '\0' && *p != '/' && *p != '?' && *p != '#';
}

/* s with every byte a URL may not hold as it is percent-encoded (non-ASCII,
 * space, " < > \\ ^ ` { | }); NULL if it holds a control character.
 * Caller frees. */
static char *
pct_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = xmalloc(3 * strlen(s) + 1), *w = out;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			free(out);
			return NULL;
		}
		if (*p >= 0x80 || *p == ' ' || *p == '"' || *p == '<' ||
		    *p == '>' || *p == '\\' || *p == '^' || *p == '`' ||
		    *p == '{' || *p == '|' || *p == '}') {
			*w++ = '%';
			*w++ = hex[*p >> 4];
			*w++ = hex[*p & 15];
		} else
			*w++ = (char)*p;
	}
	*w = '\0';
	return out;
}

/*
 * A link as mail can carry it: resolved against base when relative,
 * http(s) only (a javascript: or file: link must never be offered to a
 * reader), percent-encoded outside printable ASCII, no white space or
 * control characters, at most FEED_MAX_LINK bytes.  "" when it fails.
 * Caller frees.
 */
static char *
clean_link(const char *raw, size_t n, const char *base)
{
	char *s, *enc = NULL, *out = NULL;
	xmlChar *res = NULL;

	s = text_trim(xstrndup(raw, n));
	if (*s == '\0' || strlen(s) > FEED_MAX_LINK)
		goto done;
	/* Encoded before resolving: libxml2 refuses a relative reference
	 * with a space or a non-ASCII byte ("/お知らせ/1.html"). */
	if ((enc = pct_encode(s)) == NULL)
		goto done;
	if (is_http_url(enc))
		out = enc, enc = NULL;
	else if (base != NULL && (res = xmlBuildURI((const xmlChar *)enc,
	    (const xmlChar *)base)) != NULL && is_http_url((char *)res))
		out = pct_encode((char *)res);	/* the base's bytes too */
	if (out != NULL && strlen(out) > FEED_MAX_LINK) {
		free(out);
		out = NULL;
	}
done:
	free(s);
	free(enc);
	xmlFree(res);
	return out != NULL ? out : xstrdup("");
}

static char *
sha256_id(const char *a, const char *b)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	char *out;

	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c, a, strlen(a)) != 1 ||
	    EVP_DigestUpdate(c, "\n", 1) != 1 ||
	    EVP_DigestUpdate(c, b, strlen(b)) != 1 ||
	    EVP_DigestFinal_ex(c, md, &mdlen) != 1) {
		/* Out of memory inside OpenSSL: like xmalloc, stop. */
		fprintf(stderr, "samail: sha256 failed\n");
		abort();
	}
	EVP_MD_CTX_free(c);
	out = xmalloc(7 + 2 * mdlen + 1);
	memcpy(out, "sha256:", 7);
	for (unsigned i = 0; i < mdlen; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[8 + 2 * i] = hex[md[i] & 15];
	}
	out[7 + 2 * mdlen] = '\0';
	return out;
}

/* Length of a CVE id at s ("CVE-dddd-dddd..."), 0 if there is none. */
static size_t
cve_at(const char *s)
{
	size_t i, d;

	if (strncmp(s, "CVE-", 4) != 0)
		return 0;
	for (i = 4; i < 8; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	if (s[8] != '-')
		return 0;
	for (d = 0; isdigit((unsigned char)s[9 + d]); d++)
		;
	if (d < 4 || d > 19)
		return 0;
	return 9 + d;
}

static void
add_cve(struct strlist *l, const char *s, size_t n)
{
	char id[32];

	if (n >= sizeof(id) || l->n >= FEED_MAX_LIST)
		return;
	memcpy(id, s, n);
	id[n] = '\0';
	if (!strlist_has(l, id))
		strlist_add(l, id);
}

static void
scan_cves(const char *s, struct strlist *l)
{
	size_t n;

	while ((s = strstr(s, "CVE-")) != NULL) {
		if ((n = cve_at(s)) > 0) {
			add_cve(l, s, n);
			s += n;
		} else
			s += 4;
	}
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---------------------------------------------------------------------
 * Dates
 */

static int
rd_digits(const char **sp, int min, int max, int *out)
{
	const char *s = *sp;
	int n = 0, v = 0;

	while (n < max && isdigit((unsigned char)s[n]))
		v = v * 10 + (s[n++] - '0');
	if (n < min)
		return -1;
	*sp = s + n;
	*out = v;
	return n;
}

static void
skip_ws(const char **sp)
{
	while (**sp == ' ' || **sp == '\t' || **sp == '\r' || **sp == '\n')
		(*sp)++;
}

/* [+-]hh[:]mm or [+-]hh; *off in seconds east of UTC. */
static int
rd_offset(const char **sp, int *off)
{
	const char *s = *sp;
	int sign, h, m = 0;

	if (*s != '+' && *s != '-')
		return -1;
	sign = *s++ == '-' ? -1 : 1;
	if (rd_digits(&s, 2, 2, &h) < 0)
		return -1;
	if (*s == ':')
		s++;
	if (isdigit((unsigned char)*s) && rd_digits(&s, 2, 2, &m) < 0)
		return -1;
	if (h > 14 || m > 59)
		return -1;
	*off = sign * (h * 3600 + m * 60);
	*sp = s;
	return 0;
}

static int
make_time(int y, int mo, int d, int h, int mi, int sec, int off, time_t *t)
{
	if (y < 1970 || !date_valid(y, mo, d) || h > 23 || mi > 59 ||
	    sec > 60)
		return -1;
	if (sec == 60)		/* a leap second: close enough */
		sec = 59;
	*t = (time_t)date_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
	    off;
	return 0;
}

/*
 * Zone names as feeds write them, in minutes east of UTC: RFC 822's (UT,
 * GMT, Z and the US zones), and those of the places whose feeds an admin
 * here subscribes to.  Names that mean two things (IST: India, Ireland or
 * Israel) are not guessed; CST is RFC 822's US Central, not China.
 */
static const struct { const char *name; int minutes; } zones[] = {
	{ "UT", 0 }, { "UTC", 0 }, { "GMT", 0 }, { "Z", 0 }, { "WET", 0 },
	{ "WEST", 60 }, { "BST", 60 }, { "CET", 60 }, { "MET", 60 },
	{ "MEZ", 60 }, { "CEST", 120 }, { "MEST", 120 }, { "MESZ", 120 },
	{ "EET", 120 }, { "EEST", 180 }, { "MSK", 180 },
	{ "ICT", 420 }, { "WIB", 420 },
	{ "HKT", 480 }, { "SGT", 480 }, { "PHT", 480 }, { "AWST", 480 },
	{ "JST", 540 }, { "KST", 540 },
	{ "ACST", 570 }, { "ACDT", 630 }, { "AEST", 600 }, { "AEDT", 660 },
	{ "NZST", 720 }, { "NZDT", 780 },
	{ "EST", -300 }, { "EDT", -240 }, { "CST", -360 }, { "CDT", -300 },
	{ "MST", -420 }, { "MDT", -360 }, { "PST", -480 }, { "PDT", -420 },
	{ "AKST", -540 }, { "AKDT", -480 }, { "HST", -600 },
};

/*
 * A zone: an offset ("+0900", "+09:00"), perhaps followed by its name as
 * a comment ("+0900 JST"); or a name we know, a zero one perhaps followed
 * by the offset spelled out ("GMT+0900").  -1 for a name we do not know.
 */
static int
rd_zone(const char **sp, int *off)
{
	const char *s = *sp, *p;
	char word[8];
	size_t wl, n;

	if (*s == '+' || *s == '-') {
		if (rd_offset(&s, off) < 0)
			return -1;
		/* The name after the offset says nothing more: the offset
		 * wins (RFC 5322 3.3 makes the name obsolete). */
		p = s;
		skip_ws(&p);
		for (wl = 0; isalpha((unsigned char)p[wl]); wl++)
			;
		if (wl > 0 && wl <= 5 && !isdigit((unsigned char)p[wl]))
			s = p + wl;
		*sp = s;
		return 0;
	}
	for (wl = 0; isalpha((unsigned char)s[wl]) && wl < sizeof(word) - 1;
	    wl++)
		word[wl] = (char)toupper((unsigned char)s[wl]);
	word[wl] = '\0';
	if (wl == 0 || isalpha((unsigned char)s[wl]))
		return -1;
	for (n = 0; n < sizeof(zones) / sizeof(zones[0]); n++)
		if (strcmp(word, zones[n].name) == 0)
			break;
	if (n == sizeof(zones) / sizeof(zones[0]))
		return -1;	/* a zone we do not know: no date */
	*off = zones[n].minutes * 60;
	s += wl;
	/* "GMT+0900", "UTC+09:00": the offset from UTC, spelled out */
	if (*off == 0 && (*s == '+' || *s == '-') && rd_offset(&s, off) < 0)
		return -1;
	*sp = s;
	return 0;
}

/* hh:mm[:ss], the hour with one or two digits. */
static int
rd_time(const char **sp, int *h, int *mi, int *sec)
{
	const char *s = *sp;

	*sec = 0;
	if (rd_digits(&s, 1, 2, h) < 0 || *s++ != ':' ||
	    rd_digits(&s, 2, 2, mi) < 0)
		return -1;
	if (*s == ':') {
		s++;
		if (rd_digits(&s, 2, 2, sec) < 0)
			return -1;
	}
	*sp = s;
	return 0;
}

/* A month name, English, of 3 letters or more ("Apr", "April"). */
static int
rd_month(const char **sp, int *mo)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	const char *s = *sp;
	size_t wl;

	for (wl = 0; isalpha((unsigned char)s[wl]); wl++)
		;
	if (wl < 3)
		return -1;
	for (int i = 0; i < 12; i++)
		if (strncasecmp(s, months + 3 * i, 3) == 0) {
			*mo = i + 1;
			*sp = s + wl;
			return 0;
		}
	return -1;
}

/*
 * ISO 8601 / RFC 3339, and what Japanese sites write for it: '/' for '-',
 * one-digit months, days and hours ("2024/4/1 9:00"), a space for 'T',
 * no seconds, no time, no zone (Japan time), a zone name after the time.
 */
static int
parse_iso(const char *s, time_t *t)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, off = DATE_JST_OFFSET;
	char sep;

	if (rd_digits(&s, 4, 4, &y) < 0 || (*s != '-' && *s != '/'))
		return -1;
	sep = *s++;
	if (rd_digits(&s, 1, 2, &mo) < 0 || *s++ != sep ||
	    rd_digits(&s, 1, 2, &d) < 0)
		return -1;
	if (*s == 'T' || *s == 't' || (*s == ' ' && isdigit((unsigned char)s[1]))) {
		s++;
		if (rd_time(&s, &h, &mi, &sec) < 0)
			return -1;
		if (*s == '.' || *s == ',') {
			s++;
			if (!isdigit((unsigned char)*s))
				return -1;
			while (isdigit((unsigned char)*s))
				s++;
		}
		skip_ws(&s);
		if (*s == 'z' || *s == '+' || *s == '-' ||
		    isalpha((unsigned char)*s)) {
			if (*s == 'z')
				off = 0, s++;
			else if (rd_zone(&s, &off) < 0)
				return -1;
		}
	}
	skip_ws(&s);
	if (*s != '\0')
		return -1;
	return make_time(y, mo, d, h, mi, sec, off, t);
}

/*
 * RFC 822/2822/5322 ("Mon, 01 Apr 2024 09:00:00 +0900"), and its old
 * relatives that HTTP (RFC 9110 5.6.7) and feeds still carry: RFC 850
 * ("Monday, 01-Apr-24 09:00:00 GMT"), C's asctime ("Mon Apr  1 09:00:00
 * 2024") and Java's Date.toString(), which puts the zone before the year
 * ("Mon Apr 01 09:00:00 JST 2024").
 */
static int
parse_rfc822(const char *s, time_t *t)
{
	int y, mo = 0, d, h, mi, sec = 0, off = DATE_JST_OFFSET, n;
	const char *p;

	skip_ws(&s);
	/* An optional day name, not checked: feeds get it wrong. */
	if (isalpha((unsigned char)*s)) {
		while (isalpha((unsigned char)*s))
			s++;
		if (*s == ',')
			s++;
		skip_ws(&s);
	}
	if (isalpha((unsigned char)*s)) {
		/* asctime, Java: month day time [zone] year */
		if (rd_month(&s, &mo) < 0)
			return -1;
		skip_ws(&s);
		if (rd_digits(&s, 1, 2, &d) < 0)
			return -1;
		skip_ws(&s);
		if (rd_time(&s, &h, &mi, &sec) < 0)
			return -1;
		skip_ws(&s);
		if (!isdigit((unsigned char)*s)) {
			if (rd_zone(&s, &off) < 0)
				return -1;
			skip_ws(&s);
		}
		if (rd_digits(&s, 4, 4, &y) < 0)
			return -1;
	} else {
		/* RFC 822: day month year time [zone]; RFC 850: the date
		 * as day-month-year */
		int dash;

		if (rd_digits(&s, 1, 2, &d) < 0)
			return -1;
		if ((dash = *s == '-'))
			s++;
		else
			skip_ws(&s);
		if (rd_month(&s, &mo) < 0)
			return -1;
		if (dash) {
			if (*s++ != '-')
				return -1;
		} else
			skip_ws(&s);
		if ((n = rd_digits(&s, 2, 4, &y)) < 0 || n == 3)
			return -1;
		if (n == 2)	/* RFC 2822 4.3: 00-49 are 2000-2049 */
			y += y < 50 ? 2000 : 1900;
		skip_ws(&s);
		if (rd_time(&s, &h, &mi, &sec) < 0)
			return -1;
		skip_ws(&s);
		if ((*s == '+' || *s == '-' || isalpha((unsigned char)*s)) &&
		    rd_zone(&s, &off) < 0)
			return -1;
	}
	skip_ws(&s);
	/* A trailing comment, as RFC 5322 allows: "+0900 (JST)". */
	if (*s == '(') {
		if ((p = strchr(s, ')')) == NULL)
			return -1;
		s = p + 1;
		skip_ws(&s);
	}
	if (*s != '\0')
		return -1;
	return make_time(y, mo, d, h, mi, sec, off, t);
}

int
feed_parse_date(const char *s, time_t *t)
{
	const char *p = s;

	if (s == NULL)
		return -1;
	skip_ws(&p);
	if (*p == '\0')
		return -1;
	if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
	    isdigit((unsigned char)p[2]) && isdigit((unsigned char)p[3]) &&
	    (p[4] == '-' || p[4] == '/'))
		return parse_iso(p, t);
	return parse_rfc822(p, t);
}

/* ---------------------------------------------------------------------
 * The SAX state machine
 */

enum field {
	F_NONE,
	F_TITLE, F_LINK, F_DESC, F_CONTENT, F_GUID,
	F_PUBDATE, F_DCDATE, F_ISSUED, F_MODIFIED, F_PUBLISHED, F_UPDATED,
	F_SECID, F_DCID, F_CPE,
	F_CHTITLE,
	F__MAX
};

struct cvss {
	double	 score;
	int	 rank;		/* which version we prefer; 0 = none */
	char	 version[8];
	char	 vector[128];
	char	 severity[16];
};

struct base {
	int	 depth;
	char	*uri;
};

struct pstate {
	xmlParserCtxtPtr ctxt;
	const struct feed_opts *opts;
	feed_item_fn	 fn;
	void		*arg;
	struct feed_info *info;
	struct err	*e;
	int		 rc;		/* first failure, 0 if none */
	int		 fd;		/* input: fd >= 0, else mem */
	const char	*mem;
	size_t		 memlen, memoff;
	int		 io_errno;
	char		*xml_err;	/* libxml2's first fatal error */
	char		*generic_err;	/* ... and first generic message */
	int		 xml_err_line;

	enum feed_format format;
	int		 depth;		/* of the element we are in; root 1 */
	int		 channel_depth;
	int		 item_depth;	/* 0 = not in an item */
	enum field	 field;
	int		 field_depth;
	size_t		 node_len;	/* of the current text node */

	struct base	*bases;		/* xml:base in scope, innermost last */
	size_t		 nbases;

	/* The current item, raw. */
	struct buf	 raw[F__MAX];
	char		*about;		/* rdf:about, as given */
	char		*about_link;	/* rdf:about as a link */
	char		*link;		/* resolved <link> or Atom alternate */
	int		 atom_link_rank; /* 2 alternate, 1 no rel, 0 none */
	int		 guid_permalink;
	char		*guid_link;	/* guid as a link, if a permalink */
	struct strlist	 cves, cpes;
	struct cvss	 cvss;
	unsigned	 plain;		/* fields of plain text (1u << field):
					 * Atom type="text" or "xhtml" */

	struct feed_item item;
};

static int
is_sec_ns(const xmlChar *uri)
{
	const char *u = (const char *)uri;

	/* JVN publishes mod_sec as .../mod_sec/3.0/ and .../mod_sec/, and
	 * its schemas say https as often as http: accept the family. */
	return u != NULL && (strncmp(u, "http://jvn.jp/rss/mod_sec/", 26) == 0 ||
	    strncmp(u, "https://jvn.jp/rss/mod_sec/", 27) == 0);
}

static int
ns_is(const xmlChar *uri, const char *want)
{
	return uri != NULL && strcmp((const char *)uri, want) == 0;
}

static int
name_is(const xmlChar *n, const char *want)
{
	return strcmp((const char *)n, want) == 0;
}

/* The namespace the feed's own elements are in (NULL for RSS 2.0). */
static int
own_ns(const struct pstate *st, const xmlChar *uri)
{
	switch (st->format) {
	case FEED_RSS1:
		return ns_is(uri, NS_RSS1) || ns_is(uri, NS_RSS090);
	case FEED_RSS2:
		return uri == NULL;
	case FEED_ATOM:
		return ns_is(uri, NS_ATOM);
	default:
		return 0;
	}
}

static void
stop(struct pstate *st, int rc)
{
	if (st->rc == 0)
		st->rc = rc;
	xmlStopParser(st->ctxt);
}

static int
line_no(const struct pstate *st)
{
	return xmlSAX2GetLineNumber(st->ctxt);
}

/*
 * An attribute value from SAX2.  With entity substitution off, libxml2
 * hands over '&' (from &amp; or &#38;) as the five characters "&#38;" for
 * the tree builder to decode later; we have no tree, so decode it here.
 * Caller frees.
 */
static char *
attr_value(const xmlChar *v, const xmlChar *end)
{
	size_t n = (size_t)(end - v), i, o = 0;
	char *s = xmalloc(n + 1);

	for (i = 0; i < n; i++) {
		if (v[i] == '&' && n - i >= 5 && memcmp(v + i, "&#38;", 5) == 0) {
			s[o++] = '&';
			i += 4;
		} else
			s[o++] = (char)v[i];
	}
	s[o] = '\0';
	return s;
}

/* The value of attribute (uri, name) of the current element, or NULL;
 * caller frees. */
static char *
get_attr(int nattr, const xmlChar **attrs, const char *uri, const char *name)
{
	for (int i = 0; i < nattr; i++) {
		const xmlChar **a = attrs + 5 * i;

		if (!name_is(a[0], name))
			continue;
		if (uri == NULL ? a[2] != NULL : !ns_is(a[2], uri))
			continue;
		return attr_value(a[3], a[4]);
	}
	return NULL;
}

static const char *
cur_base(const struct pstate *st)
{
	if (st->nbases > 0)
		return st->bases[st->nbases - 1].uri;
	return st->opts != NULL ? st->opts->base_url : NULL;
}

static void
push_base(struct pstate *st, const char *xmlbase)
{
	const char *parent = cur_base(st);
	xmlChar *res;
	char *uri;

	if (parent != NULL && (res = xmlBuildURI((const xmlChar *)xmlbase,
	    (const xmlChar *)parent)) != NULL) {
		uri = xstrdup((const char *)res);
		xmlFree(res);
	} else
		uri = xstrdup(xmlbase);
	st->bases = xreallocarray(st->bases, st->nbases + 1,
	    sizeof(*st->bases));
	st->bases[st->nbases].depth = st->depth;
	st->bases[st->nbases++].uri = uri;
}

static void
item_reset(struct pstate *st)
{
	struct feed_item *it = &st->item;

	for (int f = 0; f < F__MAX; f++)
		if (f != F_CHTITLE)
			buf_reset(&st->raw[f]);
	free(st->about);
	free(st->about_link);
	free(st->link);
	free(st->guid_link);
	st->about = st->about_link = st->link = st->guid_link = NULL;
	st->atom_link_rank = 0;
	st->guid_permalink = 1;
	strlist_release(&st->cves);
	strlist_release(&st->cpes);
	memset(&st->cvss, 0, sizeof(st->cvss));
	st->plain = 0;

	free(it->id);
	free(it->ident);
	free(it->title);
	free(it->link);
	free(it->summary);
	free(it->cvss_version);
	free(it->cvss_vector);
	free(it->severity);
	strlist_release(&it->cves);
	strlist_release(&it->cpes);
	memset(it, 0, sizeof(*it));
}

static int
cvss_rank(const char *version)
{
	if (strncmp(version, "3.", 2) == 0)
		return 30 + (isdigit((unsigned char)version[2]) ?
		    version[2] - '0' : 0);
	if (strncmp(version, "4.", 2) == 0)
		return 20;
	if (strncmp(version, "2.", 2) == 0)
		return 10;
	return 1;
}

static int
printable_token(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (; *s != '\0'; s++)
		if (*s <= 0x20 || *s >= 0x7f)
			return 0;
	return 1;
}

/* <sec:cvss version score severity vector>: keep the one we prefer. */
static void
take_cvss(struct pstate *st, int nattr, const xmlChar **attrs)
{
	static const char *const sev[] = {
		"None", "Low", "Medium", "High", "Critical",
	};
	char *version = get_attr(nattr, attrs, NULL, "version");
	char *score = get_attr(nattr, attrs, NULL, "score");
	char *severity = get_attr(nattr, attrs, NULL, "severity");
	char *vector = get_attr(nattr, attrs, NULL, "vector");
	struct cvss c;
	char *end;

	memset(&c, 0, sizeof(c));
	if (score == NULL)
		goto out;
	text_trim(score);
	c.score = strtod(score, &end);
	if (end == score || *end != '\0' || !isfinite(c.score) ||
	    c.score < 0.0 || c.score > 10.0)
		goto out;
	if (version != NULL && *text_trim(version) != '\0' &&
	    strlen(version) < sizeof(c.version) &&
	    strspn(version, "0123456789.") == strlen(version))
		strcpy(c.version, version);
	c.rank = cvss_rank(c.version);
	if (vector != NULL && printable_token(text_trim(vector),
	    sizeof(c.vector) - 1))
		strcpy(c.vector, vector);
	if (severity != NULL) {
		text_trim(severity);
		for (size_t i = 0; i < sizeof(sev) / sizeof(sev[0]); i++)
			if (strcasecmp(severity, sev[i]) == 0)
				strcpy(c.severity, sev[i]);
	}
	if (c.severity[0] == '\0') {
		/* Derive it from the score: CVSS v3/v4 bands, v2 has no
		 * Critical and no None. */
		int v2 = c.rank == 10;
		const char *s = c.score >= 9.0 && !v2 ? "Critical" :
		    c.score >= 7.0 ? "High" : c.score >= 4.0 ? "Medium" :
		    c.score > 0.0 || v2 ? "Low" : "None";

		strcpy(c.severity, s);
	}
	if (c.rank > st->cvss.rank)
		st->cvss = c;
out:
	free(version);
	free(score);
	free(severity);
	free(vector);
}

/* <sec:references source="CVE|NVD" id="CVE-..."> */
static void
take_reference(struct pstate *st, int nattr, const xmlChar **attrs)
{
	char *source = get_attr(nattr, attrs, NULL, "source");
	char *id = get_attr(nattr, attrs, NULL, "id");
	size_t n;

	if (source != NULL && id != NULL &&
	    (strcasecmp(text_trim(source), "CVE") == 0 ||
	    strcasecmp(source, "NVD") == 0)) {
		text_trim(id);
		if ((n = cve_at(id)) > 0 && id[n] == '\0')
			add_cve(&st->cves, id, n);
	}
	free(source);
	free(id);
}

/* Atom <link rel href>: the alternate link wins over one without rel. */
static void
take_atom_link(struct pstate *st, int nattr, const xmlChar **attrs)
{
	char *rel = get_attr(nattr, attrs, NULL, "rel");
	char *href = get_attr(nattr, attrs, NULL, "href");
	int rank;
	char *link;

	if (rel == NULL || *text_trim(rel) == '\0')
		rank = 1;
	else if (strcmp(rel, "alternate") == 0 ||
	    strcmp(rel, "http://www.iana.org/assignments/relation/alternate") == 0)
		rank = 2;
	else
		rank = 0;
	if (href != NULL && rank > st->atom_link_rank) {
		link = clean_link(href, strlen(href), cur_base(st));
		if (*link != '\0') {
			free(st->link);
			st->link = link;
			st->atom_link_rank = rank;
		} else
			free(link);
	}
	free(rel);
	free(href);
}

static void
myjvn_status(struct pstate *st, int nattr, const xmlChar **attrs)
{
	char *ret = get_attr(nattr, attrs, NULL, "retCd");
	char *errcd = get_attr(nattr, attrs, NULL, "errCd");
	char *errmsg = get_attr(nattr, attrs, NULL, "errMsg");
	char *v;

	if (st->info != NULL) {
		st->info->myjvn = 1;
		if ((v = get_attr(nattr, attrs, NULL, "totalRes")) != NULL)
			st->info->myjvn_total = strtol(v, NULL, 10);
		free(v);
		if ((v = get_attr(nattr, attrs, NULL, "totalResRet")) != NULL)
			st->info->myjvn_returned = strtol(v, NULL, 10);
		free(v);
		if ((v = get_attr(nattr, attrs, NULL, "firstRes")) != NULL)
			st->info->myjvn_first = strtol(v, NULL, 10);
		free(v);
	}
	if (ret != NULL && strcmp(text_trim(ret), "0") != 0) {
		char *msg = clean_line(errmsg ? errmsg : "", errmsg ?
		    strlen(errmsg) : 0, 200);
		char *cd = clean_line(errcd ? errcd : "", errcd ?
		    strlen(errcd) : 0, 40);

		err_set(st->e, ERR_PARSE, "MyJVN API answered with error "
		    "%s (%s); check the query in the feed URL", cd, msg);
		free(msg);
		free(cd);
		stop(st, -ERR_PARSE);
	}
	free(ret);
	free(errcd);
	free(errmsg);
}

/* A field of the current item as one clean line (cap 0: whole):
 * HTML stripped unless the feed says it is plain text. */
static char *
clean_field(const struct pstate *st, enum field f, size_t cap)
{
	const struct buf *raw = &st->raw[f];

	if (raw->len == 0)
		return xstrdup("");
	if (st->plain & (1u << f))
		return clean_line(buf_str(raw), raw->len, cap);
	return clean_html(raw, cap);
}

/* A clean line cut to cap bytes: a copy, or the same cleaned again. */
static char *
capped(const char *full, size_t cap)
{
	size_t n = strlen(full);

	return n <= cap ? xstrndup(full, n) : clean_line(full, n, cap);
}

/* Which field an element directly inside an item is. */
static enum field
item_field(const struct pstate *st, const xmlChar *uri, const xmlChar *name)
{
	if (own_ns(st, uri)) {
		if (name_is(name, "title"))
			return F_TITLE;
		if (st->format == FEED_ATOM) {
			if (name_is(name, "summary"))
				return F_DESC;
			if (name_is(name, "content"))
				return F_CONTENT;
			if (name_is(name, "id"))
				return F_GUID;
			if (name_is(name, "published"))
				return F_PUBLISHED;
			if (name_is(name, "updated"))
				return F_UPDATED;
			return F_NONE;
		}
		if (name_is(name, "link"))
			return F_LINK;
		if (name_is(name, "description"))
			return F_DESC;
		if (st->format == FEED_RSS2 && name_is(name, "guid"))
			return F_GUID;
		if (st->format == FEED_RSS2 && name_is(name, "pubDate"))
			return F_PUBDATE;
		return F_NONE;
	}
	if (ns_is(uri, NS_DC)) {
		if (name_is(name, "date"))
			return F_DCDATE;
		if (name_is(name, "identifier"))
			return F_DCID;
		return F_NONE;
	}
	if (ns_is(uri, NS_DCTERMS)) {
		if (name_is(name, "issued"))
			return F_ISSUED;
		if (name_is(name, "modified"))
			return F_MODIFIED;
		return F_NONE;
	}
	if (ns_is(uri, NS_CONTENT) && name_is(name, "encoded"))
		return F_CONTENT;
	if (is_sec_ns(uri)) {
		if (name_is(name, "identifier"))
			return F_SECID;
		if (name_is(name, "cpe"))
			return F_CPE;
	}
	return F_NONE;
}

/* A CPE of the item, if it is one.  No ',' (a CPE 2.3 "\,"): lists are
 * stored comma-separated. */
static void
add_cpe(struct pstate *st, const char *s)
{
	if (strncmp(s, "cpe:", 4) == 0 && printable_token(s, FEED_MAX_CPE) &&
	    strchr(s, ',') == NULL && st->cpes.n < FEED_MAX_LIST &&
	    !strlist_has(&st->cpes, s))
		strlist_add(&st->cpes, s);
}

static void
sax_start(void *ctx, const xmlChar *name, const xmlChar *prefix,
    const xmlChar *uri, int nns, const xmlChar **nss, int nattr,
    int ndefaulted, const xmlChar **attrs)
{
	struct pstate *st = ctx;
	char *v;

	(void)prefix;
	(void)nns;
	(void)nss;
	(void)ndefaulted;
	if (st->rc != 0)
		return;
	st->depth++;
	st->node_len = 0;
	if ((v = get_attr(nattr, attrs, (const char *)XML_XML_NAMESPACE,
	    "base")) != NULL) {
		push_base(st, v);
		free(v);
	}

	if (st->depth == 1) {
		if (ns_is(uri, NS_RDF) && name_is(name, "RDF"))
			st->format = FEED_RSS1;
		else if (uri == NULL && name_is(name, "rss"))
			st->format = FEED_RSS2;
		else if (ns_is(uri, NS_ATOM) && name_is(name, "feed"))
			st->format = FEED_ATOM;
		else {
			err_set(st->e, ERR_PARSE, "not an RSS or Atom feed: "
			    "the document is <%.64s>", (const char *)name);
			stop(st, -ERR_PARSE);
		}
		return;
	}

	if (st->item_depth > 0) {
		if (st->field != F_NONE) {
			/* Markup inside a field (Atom type="xhtml"): keep its
			 * text, words of separate blocks apart. */
			if (html_block(name))
				buf_addch(&st->raw[st->field], ' ');
			return;
		}
		if (is_sec_ns(uri) && name_is(name, "cpe-item")) {
			/* JVN: <sec:cpe-item name="cpe:/a:vendor:product"> */
			if ((v = get_attr(nattr, attrs, NULL, "name")) != NULL) {
				add_cpe(st, text_trim(v));
				free(v);
			}
			return;
		}
		if (st->depth == st->item_depth + 1) {
			if (st->format == FEED_ATOM && ns_is(uri, NS_ATOM) &&
			    name_is(name, "link")) {
				take_atom_link(st, nattr, attrs);
				return;
			}
			if (is_sec_ns(uri) && name_is(name, "cvss")) {
				take_cvss(st, nattr, attrs);
				return;
			}
			if (is_sec_ns(uri) && name_is(name, "references")) {
				take_reference(st, nattr, attrs);
				return;
			}
			st->field = item_field(st, uri, name);
			/* Atom text constructs: "text" (the default) is plain
			 * text, "xhtml" arrives as markup that SAX already took
			 * apart; only "html" is HTML to strip. */
			if (st->format == FEED_ATOM && (st->field == F_TITLE ||
			    st->field == F_DESC || st->field == F_CONTENT)) {
				v = get_attr(nattr, attrs, NULL, "type");
				if (v != NULL)
					text_trim(v);
				/* "html", or a MIME type text/html (RFC 4287
				 * 4.1.3 allows one) */
				if (v != NULL && (strcasecmp(v, "html") == 0 ||
				    strncasecmp(v, "text/html", 9) == 0))
					st->plain &= ~(1u << st->field);
				else
					st->plain |= 1u << st->field;
				free(v);
			}
			if (st->field == F_GUID && st->format == FEED_RSS2 &&
			    (v = get_attr(nattr, attrs, NULL,
			    "isPermaLink")) != NULL) {
				st->guid_permalink =
				    strcasecmp(text_trim(v), "false") != 0;
				free(v);
			}
		} else if (is_sec_ns(uri) && name_is(name, "cpe"))
			st->field = F_CPE;	/* MyJVN's sec:items/sec:item */
		if (st->field != F_NONE) {
			st->field_depth = st->depth;
			buf_reset(&st->raw[st->field]);
		}
		return;
	}

	if ((st->format == FEED_ATOM && ns_is(uri, NS_ATOM) &&
	    name_is(name, "entry")) ||
	    (st->format != FEED_ATOM && own_ns(st, uri) &&
	    name_is(name, "item"))) {
		item_reset(st);
		st->item_depth = st->depth;
		if (st->format == FEED_RSS1 && (v = get_attr(nattr, attrs,
		    NS_RDF, "about")) != NULL) {
			st->about = v;
			st->about_link = clean_link(v, strlen(v), cur_base(st));
		}
		return;
	}
	if (st->format != FEED_ATOM && st->depth == 2 && own_ns(st, uri) &&
	    name_is(name, "channel"))
		st->channel_depth = 2;
	else if (own_ns(st, uri) && name_is(name, "title") &&
	    ((st->format == FEED_ATOM && st->depth == 2) ||
	    (st->channel_depth == 2 && st->depth == 3))) {
		st->field = F_CHTITLE;
		st->field_depth = st->depth;
		buf_reset(&st->raw[F_CHTITLE]);
	} else if (ns_is(uri, NS_MYJVN) && name_is(name, "Status"))
		myjvn_status(st, nattr, attrs);
}

static void finish_item(struct pstate *);

static void
sax_end(void *ctx, const xmlChar *name, const xmlChar *prefix,
    const xmlChar *uri)
{
	struct pstate *st = ctx;
	struct buf *raw;
	char *s;

	(void)prefix;
	(void)uri;
	if (st->rc != 0)
		return;
	if (st->field != F_NONE && st->depth > st->field_depth &&
	    html_block(name))
		buf_addch(&st->raw[st->field], ' ');
	if (st->field != F_NONE && st->depth == st->field_depth) {
		raw = &st->raw[st->field];
		switch (st->field) {
		case F_LINK:
			/* Resolve now: the base in scope is this element's. */
			free(st->link);
			st->link = clean_link(buf_str(raw), raw->len,
			    cur_base(st));
			break;
		case F_CPE:
			s = text_trim(xstrndup(buf_str(raw), raw->len));
			add_cpe(st, s);
			free(s);
			break;
		case F_CHTITLE:
			if (st->info != NULL && st->info->title == NULL)
				st->info->title = clean_html(raw, FEED_MAX_TITLE);
			break;
		default:
			break;
		}
		st->field = F_NONE;
	}
	if (st->item_depth > 0 && st->depth == st->item_depth) {
		finish_item(st);
		st->item_depth = 0;
	}
	if (st->nbases > 0 && st->bases[st->nbases - 1].depth == st->depth)
		free(st->bases[--st->nbases].uri);
	if (st->depth == st->channel_depth)
		st->channel_depth = 0;
	st->depth--;
	st->node_len = 0;
}

static void
sax_chars(void *ctx, const xmlChar *ch, int len)
{
	struct pstate *st = ctx;
	struct buf *raw;

	if (st->rc != 0)
		return;
	/* libxml2 only limits text nodes in its tree builder; a hostile
	 * feed must not get a pass because we stream. */
	st->node_len += (size_t)len;
	if (st->node_len > FEED_MAX_NODE) {
		err_set(st->e, ERR_TOOBIG, "line %d: a text node longer than "
		    "%d bytes; refused", line_no(st), FEED_MAX_NODE);
		stop(st, -ERR_TOOBIG);
		return;
	}
	if (st->field == F_NONE)
		return;
	raw = &st->raw[st->field];
	if (raw->len + (size_t)len <= RAW_MAX)
		buf_add(raw, ch, (size_t)len);
	else if (raw->len < RAW_MAX)
		buf_add(raw, ch, RAW_MAX - raw->len);
}

/*
 * A DTD that declares entities is how XXE and entity-expansion bombs
 * work, and no real feed needs one: refuse the document here, before any
 * entity can be referenced.  (libxml2 2.9 would otherwise still read
 * external parameter entities, and expands nested entities lazily.)
 */
static void
sax_entity_decl(void *ctx, const xmlChar *name, int type,
    const xmlChar *publicId, const xmlChar *systemId, xmlChar *content)
{
	struct pstate *st = ctx;
	char *n = clean_line((const char *)name, strlen((const char *)name), 64);

	(void)type;
	(void)publicId;
	(void)systemId;
	(void)content;
	err_set(st->e, ERR_PARSE, "line %d: the document type declares the "
	    "entity '%s'; feeds with entity declarations are refused (XXE / "
	    "entity expansion)", line_no(st), n);
	free(n);
	stop(st, -ERR_PARSE);
}

static void
sax_unparsed_decl(void *ctx, const xmlChar *name, const xmlChar *publicId,
    const xmlChar *systemId, const xmlChar *notation)
{
	(void)notation;
	sax_entity_decl(ctx, name, XML_EXTERNAL_GENERAL_UNPARSED_ENTITY,
	    publicId, systemId, NULL);
}

/*
 * Keep the first fatal error libxml2 reports (later ones are its
 * consequences).  Non-fatal errors, such as a relative namespace URI, do
 * not make a document ill-formed and are ignored, as libxml2 does.
 */
static void
sax_error(void *ctx, xmlErrorPtr xe)
{
	struct pstate *st = ctx;

	if (xe == NULL || xe->level != XML_ERR_FATAL || st->xml_err != NULL)
		return;
	st->xml_err = clean_line(xe->message ? xe->message : "error",
	    xe->message ? strlen(xe->message) : 5, 300);
	st->xml_err_line = xe->line;
}

/* libxml2's generic error channel: keep the first message, print none. */
static void
generic_error(void *ctx, const char *fmt, ...)
{
	struct pstate *st = ctx;
	char msg[300];
	va_list ap;

	if (st == NULL || st->generic_err != NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	st->generic_err = clean_line(msg, strlen(msg), 200);
}

/* ---------------------------------------------------------------------
 * Building the record
 */

static time_t
first_date(struct pstate *st, const enum field *order, size_t n)
{
	time_t t;

	for (size_t i = 0; i < n; i++)
		if (st->raw[order[i]].len > 0 &&
		    feed_parse_date(buf_str(&st->raw[order[i]]), &t) == 0)
			return t;
	return 0;
}

static void
finish_item(struct pstate *st)
{
	static const enum field rss1_pub[] = { F_ISSUED, F_DCDATE, F_PUBDATE };
	static const enum field rss1_upd[] = { F_MODIFIED, F_DCDATE };
	static const enum field rss2_pub[] = { F_PUBDATE, F_DCDATE, F_ISSUED };
	static const enum field rss2_upd[] = { F_MODIFIED };
	static const enum field atom_pub[] = { F_PUBLISHED, F_UPDATED,
	    F_DCDATE };
	static const enum field atom_upd[] = { F_UPDATED, F_MODIFIED };
	struct feed_item *it = &st->item;
	struct buf *r = st->raw;
	char date[32], *id, *s, *full_title, *full_desc, *full_content;
	int rc;

	/* Whole texts first: CVE ids are looked for in all of them, also
	 * past what is kept. */
	full_title = clean_field(st, F_TITLE, 0);
	full_desc = clean_field(st, F_DESC, 0);
	full_content = clean_field(st, F_CONTENT, 0);
	it->title = capped(full_title, FEED_MAX_TITLE);
	/* The summary: the description, or the full content when that says
	 * more (a WordPress excerpt, a "read more" teaser). */
	it->summary = capped(strlen(full_content) > strlen(full_desc) ?
	    full_content : full_desc, FEED_MAX_SUMMARY);
	if (*it->title == '\0' && *it->summary != '\0') {
		/* RSS 2.0 allows an item with only a description. */
		free(it->title);
		it->title = clean_line(it->summary, strlen(it->summary), 120);
	}

	/* link: <link>, else rdf:about (RSS 1.0) or a permalink guid that
	 * is already an absolute URL (RSS 2.0); never mined from text. */
	if (st->link != NULL && *st->link != '\0')
		it->link = xstrdup(st->link);
	else if (st->format == FEED_RSS1 && st->about_link != NULL)
		it->link = xstrdup(st->about_link);
	else if (st->format == FEED_RSS2 && st->guid_permalink &&
	    r[F_GUID].len > 0) {
		s = text_trim(xstrndup(buf_str(&r[F_GUID]), r[F_GUID].len));
		it->link = is_http_url(s) ? clean_link(s, strlen(s), NULL) :
		    xstrdup("");
		free(s);
	} else
		it->link = xstrdup("");

	switch (st->format) {
	case FEED_RSS1:
		it->published = first_date(st, rss1_pub, 3);
		it->updated = first_date(st, rss1_upd, 2);
		break;
	case FEED_RSS2:
		it->published = first_date(st, rss2_pub, 3);
		it->updated = first_date(st, rss2_upd, 1);
		break;
	default:
		it->published = first_date(st, atom_pub, 3);
		it->updated = first_date(st, atom_upd, 2);
		break;
	}
	if (it->updated == 0)
		it->updated = it->published;

	/* The stable id. */
	if (st->format == FEED_RSS1 && st->about != NULL)
		id = clean_line(st->about, strlen(st->about), 0);
	else
		id = clean_line(buf_str(&r[F_GUID]), r[F_GUID].len, 0);
	if (*id == '\0') {
		free(id);
		id = xstrdup(it->link);
	}
	if (strlen(id) > FEED_MAX_ID) {
		s = sha256_id(id, "");
		free(id);
		id = s;
	}
	if (*id == '\0') {
		/* Nothing stable at all: the content is the identity. */
		free(id);
		date_format_timestamp(it->published, date);
		id = sha256_id(it->title, it->published ? date : "");
	}
	it->id = id;

	s = text_trim(xstrndup(buf_str(&r[F_SECID]), r[F_SECID].len));
	if (*s == '\0') {
		free(s);
		s = text_trim(xstrndup(buf_str(&r[F_DCID]), r[F_DCID].len));
	}
	if (!printable_token(s, FEED_MAX_IDENT))
		*s = '\0';
	it->ident = s;

	it->cves = st->cves;
	memset(&st->cves, 0, sizeof(st->cves));
	scan_cves(full_title, &it->cves);
	scan_cves(full_desc, &it->cves);
	scan_cves(full_content, &it->cves);
	free(full_title);
	free(full_desc);
	free(full_content);
	if (it->cves.n > 1)
		qsort(it->cves.v, it->cves.n, sizeof(*it->cves.v), cmp_str);
	it->cpes = st->cpes;
	memset(&st->cpes, 0, sizeof(st->cpes));

	if (st->cvss.rank > 0) {
		it->cvss = st->cvss.score;
		it->cvss_version = xstrdup(st->cvss.version);
		it->cvss_vector = xstrdup(st->cvss.vector);
		it->severity = xstrdup(st->cvss.severity);
	} else {
		it->cvss = -1.0;
		it->cvss_version = xstrdup("");
		it->cvss_vector = xstrdup("");
		it->severity = xstrdup("");
	}

	if (st->info != NULL)
		st->info->items++;
	if ((rc = st->fn != NULL ? st->fn(it, st->arg) : 0) < 0)
		stop(st, rc);
	item_reset(st);
}

/* ---------------------------------------------------------------------
 * Entry points
 */

static int
io_read(void *ctx, char *buf, int len)
{
	struct pstate *st = ctx;
	ssize_t n;
	size_t left;

	if (st->fd < 0) {
		left = st->memlen - st->memoff;
		if ((size_t)len > left)
			len = (int)left;
		memcpy(buf, st->mem + st->memoff, (size_t)len);
		st->memoff += (size_t)len;
		return len;
	}
	do
		n = read(st->fd, buf, (size_t)len);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		st->io_errno = errno;
		return -1;
	}
	return (int)n;
}

/*
 * The first bytes of the document, without consuming them (pread on the
 * file; the memory case is direct): NUL-terminated in head (size bytes),
 * or -1 when they cannot be read ahead.
 */
static ssize_t
peek(const struct pstate *st, char *head, size_t size)
{
	ssize_t n;

	if (st->fd >= 0) {
		if ((n = pread(st->fd, head, size - 1, 0)) < 0)
			return -1;
	} else {
		n = (ssize_t)(st->memlen < size - 1 ? st->memlen : size - 1);
		memcpy(head, st->mem, (size_t)n);
	}
	head[n] = '\0';
	return n;
}

/*
 * Blank lines before the XML declaration: a template or a plugin that
 * prints a newline ahead of the feed (a classic of WordPress sites).  The
 * document is not well-formed then ("XML declaration allowed only at the
 * start"), but what follows is the feed, and feed readers take it; so do
 * we, by skipping those bytes (ASCII white space only, and only when an
 * XML declaration follows them: nothing else is recovered).
 */
static size_t
blanks_before_decl(const char *head)
{
	size_t n = strspn(head, " \t\r\n");

	return n > 0 && strncmp(head + n, "<?xml", 5) == 0 ? n : 0;
}

/*
 * Does the document say its encoding itself: a byte order mark (-1), or
 * an XML declaration with encoding= (1, the name in name)?  0 if not.
 */
static int
names_encoding(const struct pstate *st, char *name, size_t size)
{
	char buf[256], *head = buf;
	ssize_t n;
	const char *end, *v;
	size_t len;

	if ((n = peek(st, buf, sizeof(buf))) < 0)
		return -1;	/* cannot tell: leave it to libxml2 */
	if (n >= 2 && (((unsigned char)head[0] == 0xfe &&
	    (unsigned char)head[1] == 0xff) || ((unsigned char)head[0] == 0xff &&
	    (unsigned char)head[1] == 0xfe)))
		return -1;
	if (n >= 3 && memcmp(head, "\xef\xbb\xbf", 3) == 0)
		return -1;
	head += blanks_before_decl(head);
	if (strncmp(head, "<?xml", 5) != 0 || (end = strstr(head, "?>")) == NULL)
		return 0;
	for (const char *p = head; p < end; p++) {
		if (strncmp(p, "encoding", 8) != 0)
			continue;
		/* encoding = "name" or 'name'; anything odd: libxml2's. */
		v = p + 8 + strspn(p + 8, " \t\r\n");
		if (*v++ != '=')
			return -1;
		v += strspn(v, " \t\r\n");
		if (*v != '"' && *v != '\'')
			return -1;
		len = strcspn(v + 1, "\"'?");
		if (len == 0 || len >= size || v[1 + len] != *v)
			return -1;
		memcpy(name, v + 1, len);
		name[len] = '\0';
		return 1;
	}
	return 0;
}

/*
 * Is enc a single-byte charset (ISO-8859-1, windows-1252, KOI8-R), which
 * reads nearly any bytes, so that a document converting from it proves
 * nothing?  Most high bytes convert alone there; in Shift_JIS only the
 * half-width katakana do, in UTF-8 and EUC-JP none.
 */
static int
single_byte(const char *enc)
{
	const char *alias = xmlGetEncodingAlias(enc);
	char in, out[8], *ip, *op;
	size_t il, ol;
	iconv_t cd;
	int n = 0;

	if ((cd = iconv_open("UTF-8", alias ? alias : enc)) == (iconv_t)-1)
		return 1;
	for (int b = 0x80; b <= 0xff; b++) {
		in = (char)b;
		ip = &in;
		il = 1;
		op = out;
		ol = sizeof(out);
		iconv(cd, NULL, NULL, NULL, NULL);
		if (iconv(cd, &ip, &il, &op, &ol) != (size_t)-1 && il == 0)
			n++;
	}
	iconv_close(cd);
	return n >= 96;
}

/*
 * Do the document's bytes convert from encoding enc without an error?
 * Through the aliases feed_init() set (Shift_JIS is read as CP932).  1
 * when it cannot tell (iconv does not know enc, the input is not a file).
 */
static int
decodes_as(const struct pstate *st, const char *enc)
{
	const char *alias = xmlGetEncodingAlias(enc);
	char in[16384], out[4 * sizeof(in)], *ip, *op;
	size_t left = 0, off = 0, ol;
	ssize_t n;
	iconv_t cd;
	int ok = 1;

	if ((cd = iconv_open("UTF-8", alias ? alias : enc)) == (iconv_t)-1)
		return 1;
	for (;;) {
		if (st->fd >= 0)
			n = pread(st->fd, in + left, sizeof(in) - left,
			    (off_t)off);
		else {
			n = (ssize_t)(st->memlen - off < sizeof(in) - left ?
			    st->memlen - off : sizeof(in) - left);
			memcpy(in + left, st->mem + off, (size_t)n);
		}
		if (n < 0)
			break;		/* cannot tell */
		if (n == 0) {
			ok = left == 0;	/* not a character cut by the end */
			break;
		}
		off += (size_t)n;
		left += (size_t)n;
		ip = in;
		op = out;
		ol = sizeof(out);
		if (iconv(cd, &ip, &left, &op, &ol) == (size_t)-1 &&
		    errno != EINVAL) {
			ok = 0;		/* EILSEQ (E2BIG cannot happen) */
			break;
		}
		memmove(in, ip, left);	/* a character cut by the block */
	}
	iconv_close(cd);
	return ok;
}

/* Consume the blank lines before an XML declaration; -1 on a read error. */
static int
skip_blanks(struct pstate *st)
{
	char head[256];
	size_t skip;
	ssize_t n;

	if (peek(st, head, sizeof(head)) < 0 ||
	    (skip = blanks_before_decl(head)) == 0)
		return 0;
	if (st->fd < 0) {
		st->memoff = skip;
		return 0;
	}
	do
		n = read(st->fd, head, skip);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)skip) {
		st->io_errno = n < 0 ? errno : EIO;
		return -1;
	}
	return 0;
}

static int
parse(struct pstate *st, struct feed_info *info)
{
	xmlSAXHandler sax;
	xmlParserCtxtPtr ctxt;
	xmlGenericErrorFunc old_generic;
	void *old_generic_ctx;
	const xmlError *xe;
	char declared[48];
	int rc, options, named = 0;

	feed_init();
	if (info != NULL)
		memset(info, 0, sizeof(*info));
	st->info = info;
	if (skip_blanks(st) < 0)
		return err_set(st->e, ERR_IO, "reading the feed: %s",
		    strerror(st->io_errno));
	for (int f = 0; f < F__MAX; f++)
		buf_init(&st->raw[f], 0);
	st->guid_permalink = 1;

	memset(&sax, 0, sizeof(sax));
	sax.initialized = XML_SAX2_MAGIC;
	sax.startElementNs = sax_start;
	sax.endElementNs = sax_end;
	sax.characters = sax_chars;
	sax.cdataBlock = sax_chars;
	sax.ignorableWhitespace = sax_chars;
	sax.entityDecl = sax_entity_decl;
	sax.unparsedEntityDecl = sax_unparsed_decl;
	sax.serror = sax_error;
	/* No getEntity, resolveEntity or externalSubset: with no handler
	 * libxml2 has nothing to resolve an entity reference with. */

	ctxt = xmlCreateIOParserCtxt(&sax, st, io_read, NULL, st,
	    XML_CHAR_ENCODING_NONE);
	if (ctxt == NULL)
		return err_set(st->e, ERR_SOFTWARE, "cannot create an XML "
		    "parser");
	ctxt->_private = (void *)&ctxt_mark;
	/* NONET, and never NOENT, DTDLOAD, DTDATTR, HUGE or RECOVER. */
	options = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
	st->ctxt = ctxt;
	/*
	 * The server's charset (RFC 7303) for a document that names none.
	 * A declared encoding wins over it (servers label every file with
	 * their default charset), unless the document is not in the
	 * encoding it declares and is in the server's: a template's
	 * encoding="UTF-8" in front of a body the site converts to
	 * Shift_JIS.  Then the server's, and the declaration ignored; not
	 * for a single-byte charset of the server's, which reads anything
	 * (a UTF-8 feed with one bad byte would be all mojibake).
	 */
	if (st->opts != NULL && st->opts->http_charset != NULL &&
	    ((named = names_encoding(st, declared, sizeof(declared))) == 0 ||
	    (named == 1 && strcasecmp(declared, st->opts->http_charset) != 0 &&
	    !single_byte(st->opts->http_charset) &&
	    !decodes_as(st, declared) &&
	    decodes_as(st, st->opts->http_charset)))) {
		xmlCharEncodingHandlerPtr h =
		    xmlFindCharEncodingHandler(st->opts->http_charset);

		if (h != NULL) {
			xmlSwitchToEncoding(ctxt, h);
			if (named == 1)
				options |= XML_PARSE_IGNORE_ENC;
		}
	}
	xmlCtxtUseOptions(ctxt, options);

	/*
	 * Some libxml2 errors (encoding conversion, I/O) bypass the context
	 * and go to its generic handler, which prints to stderr: lib/ never
	 * prints.  Catch them for the message, for this parse only.
	 */
	old_generic = xmlGenericError;
	old_generic_ctx = xmlGenericErrorContext;
	xmlSetGenericErrorFunc(st, generic_error);
	xmlParseDocument(ctxt);
	xmlSetGenericErrorFunc(old_generic_ctx, old_generic);

	if (st->rc != 0)
		rc = st->rc;
	else if (st->io_errno != 0)
		rc = err_set(st->e, ERR_IO, "reading the feed: %s",
		    strerror(st->io_errno));
	else if (!ctxt->wellFormed) {
		xe = xmlCtxtGetLastError(ctxt);
		if (st->xml_err != NULL && st->generic_err != NULL)
			rc = err_set(st->e, ERR_PARSE, "not well-formed XML: "
			    "line %d: %s (%s)", st->xml_err_line, st->xml_err,
			    st->generic_err);
		else if (st->xml_err != NULL)
			rc = err_set(st->e, ERR_PARSE, "not well-formed XML: "
			    "line %d: %s", st->xml_err_line, st->xml_err);
		else
			rc = err_set(st->e, ERR_PARSE, "not well-formed XML: "
			    "line %d", xe != NULL ? xe->line : 0);
	} else if (st->format == FEED_UNKNOWN)
		rc = err_set(st->e, ERR_PARSE, "empty document");
	else
		rc = info != NULL ? (int)info->items : 0;
	if (info != NULL)
		info->format = st->format;

	/* In SAX mode libxml2 still records declared entities in a fake
	 * document of its own ("expat compatibility"); it is ours to free. */
	if (ctxt->myDoc != NULL)
		xmlFreeDoc(ctxt->myDoc);
	xmlFreeParserCtxt(ctxt);
	item_reset(st);
	for (int f = 0; f < F__MAX; f++)
		buf_release(&st->raw[f]);
	while (st->nbases > 0)
		free(st->bases[--st->nbases].uri);
	free(st->bases);
	free(st->xml_err);
	free(st->generic_err);
	return rc;
}

/* The common part of the two entry points: info may be NULL. */
static int
parse_into(struct pstate *st, const struct feed_opts *opts, feed_item_fn fn,
    void *arg, struct feed_info *info, struct err *e)
{
	struct feed_info local;
	int rc;

	st->opts = opts;
	st->fn = fn;
	st->arg = arg;
	st->e = e;
	if (info != NULL)
		return parse(st, info);
	rc = parse(st, &local);
	feed_info_release(&local);
	return rc;
}

int
feed_parse_fd(int fd, const struct feed_opts *opts, feed_item_fn fn,
    void *arg, struct feed_info *info, struct err *e)
{
	struct pstate st;

	memset(&st, 0, sizeof(st));
	st.fd = fd;
	return parse_into(&st, opts, fn, arg, info, e);
}

int
feed_parse_mem(const char *mem, size_t len, const struct feed_opts *opts,
    feed_item_fn fn, void *arg, struct feed_info *info, struct err *e)
{
	struct pstate st;

	memset(&st, 0, sizeof(st));
	st.fd = -1;
	st.mem = mem;
	st.memlen = len;
	return parse_into(&st, opts, fn, arg, info, e);
}

void
feed_info_release(struct feed_info *info)
{
	if (info == NULL)
		return;
	free(info->title);
	info->title = NULL;
}

/* Room for the n strings of l, and their pointers, in a packed item. */
static size_t
strlist_size(const struct strlist *l)
{
	size_t n = l->n * sizeof(*l->v);

	for (size_t i = 0; i < l->n; i++)
		n += strlen(l->v[i]) + 1;
	return n;
}

/* src's strings into a packed item: the pointers at *pp, the text at
 * *tp (both moved past what was written). */
static void
strlist_pack(struct strlist *dst, const struct strlist *src, char ***pp,
    char **tp)
{
	dst->v = src->n > 0 ? *pp : NULL;
	dst->n = src->n;
	*pp += src->n;
	for (size_t i = 0; i < src->n; i++) {
		size_t n = strlen(src->v[i]) + 1;

		dst->v[i] = memcpy(*tp, src->v[i], n);
		*tp += n;
	}
}

/*
 * One allocation holds the copy: the struct, the pointers of the two
 * lists, then every string.  The copy is made on the parse thread and
 * freed on the store's (lib/advisory.c), and a dozen blocks an item freed
 * on another thread than the one that took them cost more, in glibc's
 * arena locks and in that thread's next mallocs, than the copy itself.
 */
struct feed_item *
feed_item_dup(const struct feed_item *it)
{
	const char *const str[] = { it->id, it->ident, it->title, it->link,
	    it->summary, it->cvss_version, it->cvss_vector, it->severity };
	enum { NSTR = sizeof(str) / sizeof(str[0]) };
	size_t len[NSTR], size = sizeof(*it);
	struct feed_item *d;
	char **field[NSTR], **pp, *tp;

	for (size_t i = 0; i < NSTR; i++)
		size += (len[i] = strlen(str[i]) + 1);
	size += strlist_size(&it->cves) + strlist_size(&it->cpes);
	d = xmalloc(size);
	*d = *it;
	pp = (char **)(d + 1);
	tp = (char *)(pp + it->cves.n + it->cpes.n);
	strlist_pack(&d->cves, &it->cves, &pp, &tp);
	strlist_pack(&d->cpes, &it->cpes, &pp, &tp);
	field[0] = &d->id;
	field[1] = &d->ident;
	field[2] = &d->title;
	field[3] = &d->link;
	field[4] = &d->summary;
	field[5] = &d->cvss_version;
	field[6] = &d->cvss_vector;
	field[7] = &d->severity;
	for (size_t i = 0; i < NSTR; i++) {
		*field[i] = memcpy(tp, str[i], len[i]);
		tp += len[i];
	}
	return d;
}

void
feed_item_free(struct feed_item *it)
{
	free(it);
}
