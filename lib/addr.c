#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <idn2.h>

#include "addr.h"
#include "err.h"
#include "text.h"
#include "xalloc.h"

static int
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/*
 * An internationalised domain (会社.jp, ＥＸＡＭＰＬＥ．ｊｐ) becomes its
 * ASCII form (xn--...), the one SMTP and DNS use, by UTS #46 (as browsers
 * do: full-width and upper-case letters are mapped, then IDNA2008): the
 * address "local@<that>" goes in idn (ADDR_MAX + 1 bytes).
 */
static int
ascii_domain(const char *s, const char *at, char *idn, struct err *e)
{
	static const char *const dots[] = { ".", "\xe3\x80\x82",
	    "\xef\xbc\x8e", "\xef\xbd\xa1" };	/* . 。 ． ｡ */
	const char *tld = at + 1, *q;
	char *ace = NULL;
	int rc, ascii = 0;

	/*
	 * No top-level domain mixes ASCII with other characters: such a
	 * one is text typed after the address ("info@example.co.jp様",
	 * "...jpです") or a full-width letter ("example.comａ"), which
	 * UTS #46 would turn into a made-up xn-- TLD that only bounces.
	 */
	for (size_t i = 0; i < sizeof(dots) / sizeof(dots[0]); i++)
		for (q = at + 1; (q = strstr(q, dots[i])) != NULL; q++)
			if (q + strlen(dots[i]) > tld)
				tld = q + strlen(dots[i]);
	for (q = tld; *q != '\0'; q++)
		if ((unsigned char)*q < 0x80)
			ascii = 1;
	if (ascii && !text_is_ascii(tld, strlen(tld)))
		return err_set(e, ERR_INVAL, "the domain of '%s' ends in '%s', "
		    "ASCII mixed with other characters (text after the "
		    "address, or a full-width letter?); check its spelling",
		    s, tld);
	rc = idn2_to_ascii_8z(at + 1, &ace, IDN2_NFC_INPUT |
	    IDN2_NONTRANSITIONAL);
	if (rc != IDN2_OK)
		return err_set(e, ERR_INVAL, "the domain of '%s' is not a "
		    "valid internationalised domain name (%s); check its "
		    "spelling", s, idn2_strerror(rc));
	if ((size_t)snprintf(idn, ADDR_MAX + 1, "%.*s@%s", (int)(at - s), s,
	    ace) > ADDR_MAX)
		rc = err_set(e, ERR_INVAL, "'%.40s...' is longer than %d "
		    "characters once its domain is in ASCII form", s, ADDR_MAX);
	idn2_free(ace);
	return rc;
}

/*
 * More than an address in the cell, as sheets hold them: two addresses
 * ("a@x.jp; b@x.jp", "a@x.jp、b@x.jp"), a name with one ("山田
 * <taro@x.jp>"), a link ("mailto:taro@x.jp"), a sentence's dot after it.
 * Zero-width characters pasted with it are invisible in the message.
 * Each is refused saying what to write (the generic messages said
 * "contains a space" or "not a valid internationalised domain name"); none
 * is guessed at, as the address is the declarer's key.
 */
static int
composite(const char *s, struct err *e)
{
	static const char *const seps[] = { ";", ",", " ", "/", "\xe3\x80\x81",
	    "\xe3\x80\x80", "\xef\xbc\x8c", "\xef\xbc\x9b", "\xef\xbc\x8f",
	    "\xe3\x83\xbb" };	/* 、 and ideographic space ，；／・ */
	const char *p, *lt, *gt;
	size_t ats = 0, n = strlen(s), k, ch = 0;

	if (strncasecmp(s, "mailto:", 7) == 0 && s[7] != '\0')
		return err_set(e, ERR_INVAL, "'%s' is a link; write only the "
		    "address (%s)", s, s + 7);
	if ((lt = strchr(s, '<')) != NULL && (gt = strchr(lt, '>')) != NULL &&
	    memchr(lt, '@', (size_t)(gt - lt)) != NULL && gt[1] == '\0')
		return err_set(e, ERR_INVAL, "'%s' is a name with an address; "
		    "write only the address (%.*s)", s, (int)(gt - lt - 1),
		    lt + 1);
	for (p = s; (p = strpbrk(p, "@\xef")) != NULL; p++)
		if (*p == '@' || strncmp(p, "\xef\xbc\xa0", 3) == 0)
			ats++;
	for (size_t i = 0; ats > 1 && i < sizeof(seps) / sizeof(seps[0]); i++)
		if (strstr(s, seps[i]) != NULL)
			return err_set(e, ERR_INVAL, "'%s' holds more than one "
			    "address; give each address a row of its own", s);
	for (p = s; *p != '\0'; p += k) {
		unsigned cp = 0;

		ch++;
		if ((unsigned char)*p < 0x80) {
			k = 1;
			continue;
		}
		k = text_utf8_decode(p, n - (size_t)(p - s), &cp);
		/* Zero-width characters, pasted from a web page or a PDF. */
		if (cp == 0x200b || cp == 0x2060 || cp == 0xfeff)
			return err_set(e, ERR_INVAL, "'%s' holds an invisible "
			    "character (U+%04X) at character %zu; type the "
			    "address again", s, cp, ch);
	}
	if (n > 1 && s[n - 1] == '.' && strchr(s, '@') != NULL)
		return err_set(e, ERR_INVAL, "'%s' ends with a dot; an address "
		    "does not, remove it", s);
	return 0;
}

int
addr_check(const char *s, char *out, struct err *e)
{
	const char *at, *p, *label, *in = s;	/* in: as given, for messages */
	char idn[ADDR_MAX + 1];
	size_t len = strlen(s), llen, dlen;
	int dots = 0, rc;

	if (len == 0)
		return err_set(e, ERR_INVAL, "the address is empty");
	/* Controls first: the message below must not echo them raw. */
	for (p = s; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return err_set(e, ERR_INVAL, "the address contains a "
			    "control character (CR, LF, tab...)");
	}
	if (!text_utf8_valid(s, len))
		return err_set(e, ERR_INVAL, "the address is not valid UTF-8");
	if ((rc = composite(s, e)) < 0)
		return rc;
	if (strstr(s, "\xef\xbc\xa0") != NULL)	/* U+FF20 FULLWIDTH @ */
		return err_set(e, ERR_INVAL, "'%s' has a full-width '＠'; "
		    "use the ASCII '@'", s);
	if (strchr(s, ' ') != NULL || strstr(s, "\xe3\x80\x80") != NULL)
		return err_set(e, ERR_INVAL, "'%s' contains a space", s);
	at = strchr(s, '@');
	llen = at != NULL ? (size_t)(at - s) : len;
	if (!text_is_ascii(s, llen))
		return err_set(e, ERR_INVAL, "'%s' has non-ASCII characters "
		    "before the '@' (full-width letters?); only ASCII is "
		    "allowed there", s);
	if (at != NULL && !text_is_ascii(at + 1, len - llen - 1)) {
		if (ascii_domain(s, at, idn, e) < 0)
			return -ERR_INVAL;
		s = idn;
		len = strlen(s);
	}
	if (len > ADDR_MAX)
		return err_set(e, ERR_INVAL, "'%.40s...' is longer than %d "
		    "characters", in, ADDR_MAX);
	if ((at = strchr(s, '@')) == NULL)
		return err_set(e, ERR_INVAL, "'%s' has no '@'", in);
	if (strchr(at + 1, '@') != NULL)
		return err_set(e, ERR_INVAL, "'%s' has more than one '@'", in);
	if (strpbrk(s, "<>\"(),:;[]\\") != NULL)
		return err_set(e, ERR_INVAL, "'%s' contains a character "
		    "not allowed in an address (< > \" ( ) , : ; [ ] \\)", in);

	llen = (size_t)(at - s);
	dlen = len - llen - 1;
	if (llen == 0)
		return err_set(e, ERR_INVAL, "'%s' has nothing before the '@'", in);
	if (llen > 64)
		return err_set(e, ERR_INVAL, "the part before the '@' of '%s' "
		    "is longer than 64 characters", in);
	if (s[0] == '.' || at[-1] == '.' || memmem(s, llen, "..", 2) != NULL)
		return err_set(e, ERR_INVAL, "'%s' has a dot at the start or "
		    "end of the part before '@', or two dots in a row", in);
	for (p = s; p < at; p++)
		if (!is_atext((unsigned char)*p) && *p != '.')
			return err_set(e, ERR_INVAL, "'%s' contains '%c', which "
			    "is not allowed before the '@'", in, *p);

	if (dlen == 0)
		return err_set(e, ERR_INVAL, "'%s' has no domain after the '@'", in);
	if (dlen > 253)
		return err_set(e, ERR_INVAL, "the domain of '%s' is too long", in);
	label = at + 1;
	for (p = at + 1;; p++) {
		if (*p == '.' || *p == '\0') {
			size_t n = (size_t)(p - label);

			if (n == 0 || n > 63 || label[0] == '-' || p[-1] == '-')
				return err_set(e, ERR_INVAL, "the domain of '%s' "
				    "is not valid (empty label, label over 63 "
				    "characters, or '-' at a label's edge)", in);
			if (*p == '\0')
				break;
			dots++;
			label = p + 1;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-'))
			return err_set(e, ERR_INVAL, "the domain of '%s' contains "
			    "'%c'; only letters, digits, '-' and '.' are allowed",
			    in, *p);
	}
	if (dots == 0)
		return err_set(e, ERR_INVAL, "the domain of '%s' has no dot; "
		    "a mail domain looks like example.co.jp", in);

	memcpy(out, s, len + 1);
	text_ascii_lower(out + llen + 1);
	return 0;
}

int
addr_parse_mailbox(const char *s, char **name, char **addr, struct err *e)
{
	const char *lt, *gt;
	char buf[ADDR_MAX + 1], *n;
	size_t alen;

	*name = *addr = NULL;
	if (text_has_control(s) || !text_utf8_valid(s, strlen(s)))
		return err_set(e, ERR_INVAL, "the mailbox contains a control "
		    "character or is not UTF-8");
	lt = strrchr(s, '<');
	if (lt == NULL) {
		char *copy = text_trim(xstrdup(s));
		int rc = addr_check(copy, buf, e);

		free(copy);
		if (rc < 0)
			return rc;
		*name = xstrdup("");
		*addr = xstrdup(buf);
		return 0;
	}
	gt = strchr(lt, '>');
	if (gt == NULL || gt[1] != '\0')
		return err_set(e, ERR_INVAL, "'%s' is not of the form "
		    "'Name <address>'", s);
	alen = (size_t)(gt - lt - 1);
	if (alen > ADDR_MAX)
		return err_set(e, ERR_INVAL, "the address in '%s' is too long", s);
	memcpy(buf, lt + 1, alen);
	buf[alen] = '\0';
	{
		char norm[ADDR_MAX + 1];
		int rc = addr_check(buf, norm, e);

		if (rc < 0)
			return rc;
		*addr = xstrdup(norm);
	}
	n = text_trim(xstrndup(s, (size_t)(lt - s)));
	/* "Name" in quotes: drop them; GMime re-quotes or encodes as needed. */
	if (n[0] == '"' && strlen(n) >= 2 && n[strlen(n) - 1] == '"') {
		memmove(n, n + 1, strlen(n));
		n[strlen(n) - 1] = '\0';
	}
	*name = n;
	return 0;
}

const char *
addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : addr;
}
