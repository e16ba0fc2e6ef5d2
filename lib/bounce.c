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

/* The paragraph around position at: from the blank line before it
 * (at most 1 KB back) to the blank line after it (at most 3 KB on). */
static void
paragraph_at(const char *s, size_t n, size_t at, size_t *a, size_t *b)
{
	size_t i = at, j = at;

	while (i > 0 && at - i < 1024 && !(s[i - 1] == '\n' && (i < 2 ||
	    s[i - 2] == '\n' || (s[i - 2] == '\r' && i >= 3 &&
	    s[i - 3] == '\n'))))
		i--;
	while (j < n && j - at < 3072 && !(s[j] == '\n' && (j + 1 >= n ||
	    s[j + 1] == '\n' || (s[j + 1] == '\r' && j + 2 < n &&
	    s[j + 2] == '\n'))))
		j++;
	*a = i;
	*b = j;
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

/* --- classification ------------------------------------------------------ */

/*
 * Words in a receiving server's reply, matched without regard to ASCII
 * case.  The signs of policy count only where they are not part of a
 * host name or an address: "host mx.spamfilter.example said: 550 User
 * unknown" is not about spam, nor is a declarer called junk@.
 */

/* The mail was refused for who sent it or what it is. */
static const char *const policy_signs[] = {
	/* block lists, reputation */
	"blocked using", "block list", "blocklist", "blacklist", "black list",
	"denylist", "deny list", "dnsbl", "in an rbl", "listed at", "listed on",
	"listed in", "listed by", "spamhaus", "spamcop", "barracuda", "sorbs",
	"uceprotect", "reputation", "banned", "blocked",
	/* the sending host */
	"client host", "your ip", "sending ip", "sender ip", "reverse dns",
	"reverse lookup", "ptr record", "rdns", "your hostname", "dynamic",
	"helo command rejected",
	/* authentication */
	"spf", "dkim", "dmarc", "authenticat", "not authorized",
	/* content, volume */
	"spam", "junk", "unsolicited", "bulk mail", "phish", "virus", "malware",
	"content", "suspicious", "rate limit", "ratelimit", "rate-limit",
	"too many", "unusual rate", "volume", "complaint", "sending quota",
	"sending limit", "policy", "administrative prohibition", "prohibited",
	"greylist", "graylist",
	/* relaying: the server does not take mail for that domain (our own
	 * relay says so for every recipient when its login is wrong) */
	"relay access denied", "relaying denied", "relay denied",
	"relay not permitted", "relaying not allowed", "not permitted to relay",
	"unable to relay", "does not relay", "do not relay",
	/* Japanese */
	"迷惑メール", "スパム", "ブラックリスト", "ブロックリスト", "受信拒否",
	"なりすまし", "送信元", "送信ドメイン認証", "ポリシー",
	NULL
};

/* ... and of those, the ones about our sender address. */
static const char *const sender_signs[] = {
	"sender address", "sender domain", "sender rejected", "sender denied",
	"sender verif", "envelope sender", "envelope from", "sender is not",
	"sender not", "sender was rejected", "mail from address",
	/* not 送信者: NDR templates say they return the mail to him */
	"送信元",
	NULL
};

/* The reporting MTA's words for a refusal before the recipient was
 * named: it cannot have been about the address. */
static const char *const stage_signs[] = {
	"in reply to mail from command", "after mail from",
	"in reply to ehlo command", "in reply to helo command",
	"after ehlo", "after helo", "after initial connection",
	"refused to talk to me", "but sender was rejected",
	"but my name was rejected",
	NULL
};

/* The address does not exist or is disabled. */
static const char *const gone_signs[] = {
	"user unknown", "unknown user", "unknown recipient", "recipient unknown",
	"unknown address", "address unknown", "unknown mailbox",
	"no such user", "no such recipient", "no such mailbox", "no such address",
	"no such account", "no mailbox", "not a valid mailbox", "invalid mailbox",
	"invalid recipient", "invalid address", "recipient not found",
	"user not found", "mailbox not found", "address not found",
	"account not found", "recipientnotfound", "user does not exist",
	"mailbox does not exist", "account does not exist",
	"address does not exist", "recipient does not exist",
	"tried to reach does not exist", "user doesn't exist",
	"mailbox doesn't exist", "user doesn't have", "doesn't have an account",
	"mailbox disabled", "mailbox is disabled", "account disabled",
	"account is disabled", "account has been disabled",
	"tried to reach is disabled", "account is inactive", "inactive account",
	"no longer accepts", "no longer available", "no longer active",
	"no longer in use", "no longer valid",
	"ユーザが存在しません", "ユーザーが存在しません", "ユーザは存在しません",
	"ユーザーは存在しません", "ユーザが存在しない", "ユーザーが存在しない",
	"存在しないユーザ", "存在しないメールアドレス",
	"アドレスは存在しません", "アドレスが存在しません",
	"アカウントが存在しません", "アカウントは存在しません", "宛先不明",
	"ユーザ不明", "ユーザー不明", "登録されていません", "該当するユーザ",
	NULL
};

/* Weaker: mostly a missing address, in replies without a precise code. */
static const char *const gone_weak_signs[] = {
	"mailbox unavailable", "mailbox not available", "unrouteable address",
	"recipient address rejected", "recipient rejected",
	NULL
};

/* The receiving side refuses this recipient, whoever sends: a
 * recipient-specific rule of theirs, not our set-up.  Postfix's access
 * table and Microsoft 365's directory check (a recipient the tenant does
 * not have) both say "Access denied" after "Recipient address rejected". */
static const char *const refused_rcpt_signs[] = {
	"recipient address rejected: access denied",
	NULL
};

/* A full mailbox. */
static const char *const full_signs[] = {
	"mailbox full", "mailbox is full", "mailbox has exceeded",
	"mailbox size limit", "over quota", "quota exceeded", "quotaexceeded",
	"exceeded storage", "exceeds storage", "insufficient storage",
	"out of storage", "disk quota", "storage allocation", "inbox is full",
	"too much mail data",			/* docomo */
	/* A mailbox taking no more for now: Gmail's "550 5.2.1 The user
	 * ... is receiving mail at a rate that prevents additional
	 * messages", Outlook.com's "554 5.2.122 The recipient has exceeded
	 * their limit for the number of messages they can receive per
	 * hour".  It is there, and takes mail again later. */
	"receiving mail at a rate", "mail at a rate that",
	"receiving mail too quickly", "messages they can receive",
	"メールボックスがいっぱい", "メールボックスが一杯",
	"メールボックスの容量", "容量オーバー", "容量超過", "容量が一杯",
	"容量がいっぱい",
	NULL
};

static int
token_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    is_digit((char)c) || c == '.' || c == '-' || c == '_' || c == '@' ||
	    c == '+';
}

/* Does the token of ASCII word characters around s[i] look like a host
 * name or an address (a '.' between word characters, or an '@')? */
static int
in_name(const char *s, size_t n, size_t i)
{
	size_t a = i, b = i;

	while (a > 0 && token_char((unsigned char)s[a - 1]))
		a--;
	while (b < n && token_char((unsigned char)s[b]))
		b++;
	/* A sentence's full stop or a trailing hyphen is not a name. */
	while (b > a && (s[b - 1] == '.' || s[b - 1] == '-'))
		b--;
	for (size_t k = a; k < b; k++)
		if (s[k] == '@' || (s[k] == '.' && k > a && k + 1 < b))
			return 1;
	return 0;
}

/* Is one of pats in s[0..n)?  With names 0: not inside a host name
 * or an address (see above). */
static int
sign_in(const char *s, size_t n, const char *const *pats, int names)
{
	for (size_t k = 0; pats[k] != NULL; k++) {
		const char *pat = pats[k];
		size_t m = strlen(pat), off = 0;
		const char *p;
		int ascii = (unsigned char)pat[0] < 0x80;

		while (off < n && (p = memcasemem(s + off, n - off, pat)) != NULL) {
			size_t i = (size_t)(p - s);

			if (names || !ascii || (!in_name(s, n, i) &&
			    !in_name(s, n, i + m - 1)))
				return 1;
			off = i + 1;
		}
	}
	return 0;
}

static int
sign_of(const char *s, size_t n, const char *const *pats)
{
	return sign_in(s, n, pats, 1);
}

static int
policy_sign_of(const char *s, size_t n, const char *const *pats)
{
	return sign_in(s, n, pats, 0);
}

/* The SMTP reply code (550) at the start of text, or 0. */
static int
basic_code(const char *t, size_t n)
{
	size_t at;

	if (find_smtp_code(t, n, &at) == 0 || at > 16)
		return 0;
	return (t[at] - '0') * 100 + (t[at + 1] - '0') * 10 + (t[at + 2] - '0');
}

/*
 * The rule.  cls is the class (4 or 5); code the enhanced code or "".
 * The code's subject says most (RFC 3463): 1 addressing, 2 mailbox,
 * 3 mail system, 4 routing, 5 protocol, 6 content, 7 security/policy.
 * The words decide where the code is generic or misused.  Where the
 * reply speaks both of the address and of policy, policy wins unless the
 * code is about the address: a wrong "policy" costs a declarer nothing,
 * a wrong "hard" stops their mail.
 */
static enum bounce_kind
classify(int cls, const char *code, const char *t, size_t n, const char *ctx,
    size_t cn)
{
	long sub = -1, det = -1;
	int stage, sender, pol, gone, weak, refused, full, resolver;

	if (code[0] != '\0') {
		char *end;

		sub = strtol(code + 2, &end, 10);
		if (*end == '.')
			det = strtol(end + 1, NULL, 10);
	}
	stage = sign_of(t, n, stage_signs) ||
	    (ctx != NULL && sign_of(ctx, cn, stage_signs));
	sender = stage || policy_sign_of(t, n, sender_signs);
	pol = sender || policy_sign_of(t, n, policy_signs);
	gone = sign_of(t, n, gone_signs);
	weak = sign_of(t, n, gone_weak_signs);
	refused = sign_of(t, n, refused_rcpt_signs);
	full = sign_of(t, n, full_signs);
	/* Exchange's recipient delivery restrictions (a group that takes
	 * mail only from inside): the recipient's own rule, whatever the
	 * words "authentication required" suggest. */
	resolver = memcasemem(t, n, "resolver.rst.") != NULL &&
	    /* not its size limits (RecipSizeLimit, SendSizeLimit.Org):
	     * about our message, the code (5.2.3, 5.3.4) decides */
	    memcasemem(t, n, "sizelimit") == NULL;

	if (cls == 4) {
		if (sub == 7)
			return (gone || refused || resolver) && !stage ?
			    BOUNCE_SOFT : BOUNCE_POLICY;
		return pol && !gone && !full ? BOUNCE_POLICY : BOUNCE_SOFT;
	}
	if (resolver && !stage)
		return BOUNCE_HARD;
	switch (sub) {
	case 7:		/* security or policy */
	case 6:		/* media: our content */
		return (gone || refused) && !pol ? BOUNCE_HARD : BOUNCE_POLICY;
	case 1:		/* addressing; 5.1.7 and 5.1.8 are the sender's */
		if (det == 7 || det == 8 || sender ||
		    (pol && !gone && !weak))
			return BOUNCE_POLICY;
		return BOUNCE_HARD;
	case 2:		/* mailbox: 5.2.2 full, 5.2.3 our message too big */
		if (det == 2)
			return BOUNCE_SOFT;
		if (det == 3 || (pol && !gone))
			return BOUNCE_POLICY;
		return full ? BOUNCE_SOFT : BOUNCE_HARD;
	case 3:		/* the receiving system; 5.3.4 too big */
	case 4:		/* routing; 5.4.4 the domain does not resolve */
		if (sub == 3 && det == 4)
			return BOUNCE_POLICY;
		if (pol && !gone && !refused)
			return BOUNCE_POLICY;
		/* A permanent "unable to route" is a domain that is gone (a
		 * company closed, its domain lapsed: the commonest dead
		 * address among small firms); a lookup that merely failed is
		 * 4.4.3.  Left soft, a monthly list would mail it forever. */
		if (sub == 4 && det == 4)
			return BOUNCE_HARD;
		return gone || refused ? BOUNCE_HARD : BOUNCE_SOFT;
	default:	/* 5.0.0, 5.5.x, no enhanced code: the words */
		if (pol)
			return BOUNCE_POLICY;
		if (full || basic_code(t, n) == 552)
			return BOUNCE_SOFT;
		return BOUNCE_HARD;
	}
}

/* How much of a reply is looked at: enough for any real one. */
#define CLASSIFY_MAX	4096

enum bounce_kind
bounce_classify(const char *action, const char *status, const char *text,
    size_t n, const char *ctx, size_t cn)
{
	char code[16] = "";
	size_t at;
	int cls;

	if (n > CLASSIFY_MAX)
		n = CLASSIFY_MAX;
	if (ctx != NULL && cn > CLASSIFY_MAX)
		cn = CLASSIFY_MAX;
	if (action[0] != '\0' && strcasecmp(action, "failed") != 0 &&
	    strcasecmp(action, "delayed") != 0)
		return BOUNCE_NONE;	/* delivered, relayed, expanded */
	if (status[0] == '4' || status[0] == '5')
		snprintf(code, sizeof(code), "%s", status);
	else if (status[0] == '2' && action[0] == '\0')
		return BOUNCE_NONE;
	else if (!find_status(text, n, code, NULL))
		code[0] = '\0';
	if (code[0] != '\0')
		cls = code[0] - '0';
	else if ((cls = find_smtp_code(text, n, &at)) == 0) {
		if (action[0] == '\0')
			return BOUNCE_NONE;
		cls = 5;	/* "failed" with nothing more precise */
	}
	if (strcasecmp(action, "delayed") == 0)
		cls = 4;
	return classify(cls, code, text, n, ctx, cn);
}

/* --- what to tell the admin about a policy bounce ----------------------- */

static const struct {
	const char	*const *signs;
	const char	*codes;		/* "5.7.26 5.7.27": these too */
	const char	*hint;
} hints[] = {
	{ (const char *const[]){ "greylist", "graylist", NULL },
	  "",
	  "the receiver greylists new senders: your relay's next tries get "
	  "through; nothing to do unless it keeps failing" },
	{ (const char *const[]){ "relay access denied", "relaying denied",
	    "relay denied", "relay not permitted", "relaying not allowed",
	    "not permitted to relay", "unable to relay", "do not relay", NULL },
	  "",
	  "the server does not take mail for that domain: when every bounce "
	  "says so, your relay refuses samail (check its login, [mail] "
	  "transport); else the declarer's mail moved: check the address" },
	{ sender_signs, "5.1.7 5.1.8",
	  "the receiver refused the envelope sender ([mail] envelope_from): "
	  "check that its domain has MX (or A) and SPF records" },
	{ (const char *const[]){ "spf", "dkim", "dmarc", "authenticat",
	    "送信ドメイン認証", "なりすまし", NULL },
	  "5.7.23 5.7.24 5.7.26 5.7.27 5.7.509 5.7.515",
	  "the receiver could not authenticate the mail: check SPF for the "
	  "envelope_from domain, the DKIM signature and DMARC for the From "
	  "domain" },
	{ (const char *const[]){ "reverse dns", "reverse lookup", "ptr record",
	    "rdns", "your hostname", "helo command rejected", NULL },
	  "5.7.25",
	  "the relay's IP address has no matching reverse DNS (PTR) name: "
	  "have its provider set one" },
	{ (const char *const[]){ "blocked using", "block list", "blocklist",
	    "blacklist", "black list", "denylist", "deny list", "dnsbl",
	    "in an rbl", "listed", "spamhaus", "spamcop", "barracuda", "sorbs",
	    "uceprotect", "reputation", "banned", "dynamic", "client host",
	    "your ip", "sending ip", "ブラックリスト", "ブロックリスト", NULL },
	  "5.7.606 5.7.705 5.7.708 5.7.750",
	  "the relay's IP address (or your domain) is on a block list or has a "
	  "poor reputation: look it up (the reply's URL, check.spamhaus.org), "
	  "fix the cause, ask for removal" },
	{ (const char *const[]){ "rate limit", "ratelimit", "rate-limit",
	    "too many", "unusual rate", "volume", "sending quota",
	    "sending limit", NULL },
	  "4.7.28 5.7.28",
	  "the receiver takes mail from you more slowly: lower [smtp] "
	  "rate_per_minute and max_connections" },
	{ (const char *const[]){ "too big", "too large", "size limit",
	    "exceeds the maximum", "message size", NULL },
	  "5.2.3 5.3.4",
	  "the message is over the receiver's size limit: make it smaller" },
	{ (const char *const[]){ "spam", "junk", "unsolicited", "bulk mail",
	    "phish", "virus", "malware", "content", "suspicious", "迷惑メール",
	    "スパム", NULL },
	  "",
	  "the receiver took the message for spam: check its content and "
	  "links, and SPF/DKIM/DMARC" },
};

static int
code_in(const char *status, const char *codes)
{
	size_t m = strlen(status);
	const char *p = codes;

	if (m == 0)
		return 0;
	while ((p = strstr(p, status)) != NULL) {
		if ((p == codes || p[-1] == ' ') && (p[m] == ' ' || p[m] == '\0'))
			return 1;
		p += m;
	}
	return 0;
}

const char *
bounce_policy_hint(const char *status, const char *diag)
{
	size_t n = strlen(diag);

	for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++)
		if (code_in(status, hints[i].codes) ||
		    policy_sign_of(diag, n, hints[i].signs))
			return hints[i].hint;
	return "refused for the sending set-up, not the address: check SPF, "
	    "DKIM and DMARC for your domains, and whether the relay's IP "
	    "address is on a block list";
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

/*
 * What the human-readable part of a report says about addr: the
 * paragraph that starts with it on a line of its own ("<addr>: host ...
 * said: ... (in reply to RCPT TO command)", Exim's "  addr\n    host
 * ...\n    SMTP error ... after RCPT TO:..."), appended to out.
 */
static void
rcpt_paragraph(const char *s, size_t n, const char *addr, struct buf *out)
{
	size_t m = strlen(addr), off = 0;
	const char *p;

	if (m == 0)
		return;
	while (off < n && (p = memcasemem(s + off, n - off, addr)) != NULL) {
		size_t i = (size_t)(p - s), a = i, b = i + m;

		off = i + 1;
		if (a > 0 && s[a - 1] == '<')
			a--;
		while (a > 0 && (s[a - 1] == ' ' || s[a - 1] == '\t'))
			a--;
		if (a > 0 && s[a - 1] != '\n')
			continue;	/* not at a line's start */
		if (b < n && s[b] == '>')
			b++;
		if (b < n && s[b] != ':' && s[b] != '\n' && s[b] != '\r' &&
		    s[b] != ' ')
			continue;
		/* To the next blank line, at most a screenful. */
		while (b < n && b - a < 2048 && !(s[b] == '\n' && (b + 1 >= n ||
		    s[b + 1] == '\n' || (s[b + 1] == '\r' && b + 2 < n &&
		    s[b + 2] == '\n'))))
			b++;
		buf_add(out, s + a, b - a);
		buf_addch(out, '\n');
		return;
	}
}

/* One per-recipient block, parsed with GMime as a header block; notice
 * is the report's human-readable text so far. */
static void
dsn_block(struct bounce_report *r, const char *p, size_t n, int *others,
    const struct buf *notice)
{
	GMimeParserOptions *po;
	GMimeParser *ps;
	GMimeObject *o;
	struct buf blk = BUF_INIT(0), ctx = BUF_INIT(0);
	struct bounce_rcpt rc;
	const char *v;
	char code[16], reply[CLASSIFY_MAX];
	char cls;

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
	reply[0] = '\0';
	if ((v = g_mime_object_get_header(o, "Diagnostic-Code")) != NULL) {
		const char *semi = strchr(v, ';');

		/* "smtp; 550 ...": the type is not worth keeping. */
		if (semi != NULL && semi - v < 20)
			v = semi + 1;
		clean_line(v, strlen(v), rc.diag, sizeof(rc.diag));
		/* All of it (within reason) for the classification. */
		clean_line(v, strlen(v), reply, sizeof(reply));
	}
	/* Where the reporting MTA says at which step the refusal came. */
	if ((v = g_mime_object_get_header(o, "X-Exim-Diagnostic")) != NULL) {
		buf_addstr(&ctx, v);
		buf_addch(&ctx, '\n');
	}
	if (notice != NULL && notice->len > 0) {
		rcpt_paragraph(notice->data, notice->len, rc.addr, &ctx);
		if (strcasecmp(rc.orig, rc.addr) != 0)
			rcpt_paragraph(notice->data, notice->len, rc.orig, &ctx);
	}
	/* Exim writes "Status: 5.0.0" before "550 5.1.1 ...": take the
	 * precise code when it agrees on the class. */
	if ((rc.status[0] == '\0' || strcmp(rc.status + 1, ".0.0") == 0) &&
	    find_status(rc.diag, strlen(rc.diag), code, NULL) &&
	    (rc.status[0] == '\0' || code[0] == rc.status[0]))
		snprintf(rc.status, sizeof(rc.status), "%s", code);
	rc.kind = bounce_classify(rc.action, rc.status, reply, strlen(reply),
	    ctx.data, ctx.len);
	if (rc.kind == BOUNCE_NONE) {
		(*others)++;
		goto out;
	}
	/* A failure reported with a success code (2.x.x) has no usable
	 * code: take the diagnostic's, else the class's generic one. */
	if (rc.status[0] != '4' && rc.status[0] != '5') {
		size_t at;
		int c;

		cls = '5';
		if (strcasecmp(rc.action, "delayed") == 0)
			cls = '4';
		else if (find_status(reply, strlen(reply), code, NULL))
			cls = code[0];
		else if ((c = find_smtp_code(reply, strlen(reply), &at)) != 0)
			cls = (char)('0' + c);
		rc.status[0] = '\0';
		if (find_status(rc.diag, strlen(rc.diag), code, NULL) &&
		    code[0] == cls)
			snprintf(rc.status, sizeof(rc.status), "%s", code);
		else
			snprintf(rc.status, sizeof(rc.status), "%c.0.0", cls);
	}
	if (r->nrcpts < BOUNCE_MAX_RCPTS)
		r->rcpts[r->nrcpts++] = rc;
out:
	buf_release(&ctx);
	g_object_unref(o);
}

/* message/delivery-status: blocks of fields separated by blank lines. */
static void
parse_dsn(struct bounce_report *r, const char *s, size_t n, int *others,
    const struct buf *notice)
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
				dsn_block(r, s + start, end - start, others,
				    notice);
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
		parse_dsn(r, buf_str(&b), b.len, &sc->others, &sc->text);
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
		/* A quoted "Message-ID: <...@...>" has the shape of an
		 * address, but names no recipient. */
		for (size_t k = 0; k < r->nmids; k++)
			if (strcasecmp(r->mids[k], norm) == 0)
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
	size_t n = report_end(s, t->len), at = 0, pa, pb;
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
	/* The Message-IDs the text quotes first (the original's headers
	 * often follow the notice with no marker before them): not
	 * addresses.  Taken for one, our own Message-ID made a bounce that
	 * names nobody else look like one about somebody else, and it was
	 * not trusted. */
	add_mids_from_text(r, s, t->len);
	if (xfail != NULL)
		text_addresses(r, xfail, strlen(xfail), skip);
	if (r->nrcpts == 0)
		text_addresses(r, s, n, skip);

	/* The status: an enhanced code, else an SMTP reply code, else the
	 * words.  A returned message is a failure unless it says it is a
	 * warning.  The kind from the code and the paragraph around it
	 * (a reply wrapped over lines, "Connected to ... but sender was
	 * rejected." before it). */
	if (find_status(s, n, code, &at)) {
		line_at(s, n, at, diag, sizeof(diag));
		paragraph_at(s, n, at, &pa, &pb);
		kind = bounce_classify("", code, s + pa, pb - pa, NULL, 0);
	} else if ((cls = find_smtp_code(s, n, &at)) != 0) {
		line_at(s, n, at, diag, sizeof(diag));
		paragraph_at(s, n, at, &pa, &pb);
		kind = bounce_classify("", "", s + pa, pb - pa, NULL, 0);
		snprintf(code, sizeof(code), "%d.0.0", cls);
	} else if (any_of(s, n, delay_signs) || (subject != NULL &&
	    any_of(subject, strlen(subject), delay_signs))) {
		kind = bounce_classify("delayed", "", s, n, NULL, 0);
		snprintf(code, sizeof(code), "4.0.0");
	} else {
		kind = bounce_classify("failed", "", s, n, NULL, 0);
		snprintf(code, sizeof(code), "5.0.0");
	}
	if (kind == BOUNCE_NONE)	/* cannot be: a code was found */
		kind = code[0] == '4' ? BOUNCE_SOFT : BOUNCE_HARD;
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
	return k == BOUNCE_HARD ? "hard" : k == BOUNCE_SOFT ? "soft" :
	    k == BOUNCE_POLICY ? "policy" : "none";
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
	snprintf(res->diag, sizeof(res->diag), "%s", rc->diag);
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
	 * wish, or an admin's removal, stays what it is.  A policy refusal
	 * changes nobody: it is about the sending set-up (recorded, and
	 * shown to the admin). */
	if (!res->unverified && strcmp(w.status, "active") == 0 &&
	    (rc->kind == BOUNCE_HARD || (rc->kind == BOUNCE_SOFT &&
	    res->soft_count >= o->soft_limit))) {
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

int
bounce_policy_since(struct db *db, const char *since,
    struct bounce_policy_summary *ps, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	memset(ps, 0, sizeof(*ps));
	if ((st = db_stmt(db, "SELECT count(*), max(received) FROM bounce "
	    "WHERE kind = 'policy' AND received >= ?1", e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_text(st, 1, since, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		ps->count = (long)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return db_error(db, e, "count policy bounces");
	if (ps->count == 0)
		return 0;
	if ((st = db_stmt(db, "SELECT received, coalesce(status, ''), "
	    "coalesce(diagnostic, '') FROM bounce WHERE kind = 'policy' AND "
	    "received >= ?1 ORDER BY received DESC, id DESC LIMIT 1",
	    e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_text(st, 1, since, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(ps->received, sizeof(ps->received), "%s",
		    (const char *)sqlite3_column_text(st, 0));
		snprintf(ps->status, sizeof(ps->status), "%s",
		    (const char *)sqlite3_column_text(st, 1));
		snprintf(ps->diag, sizeof(ps->diag), "%s",
		    (const char *)sqlite3_column_text(st, 2));
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 :
	    db_error(db, e, "read the last policy bounce");
}
