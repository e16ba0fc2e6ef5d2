#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "date.h"
#include "db.h"
#include "err.h"
#include "products.h"
#include "subscriber.h"
#include "text.h"
#include "token.h"
#include "xalloc.h"

static const struct {
	const char	*en;
	const char	*ja;
	const char	*aliases;	/* '|'-separated, compared folded */
} fields[SUB_NFIELDS] = {
	[SUB_EMAIL] = { "email", "メールアドレス",
	    "e-mail|mail|mail address|email address|メール|電子メール|"
	    "電子メールアドレス|eメール|eメールアドレス" },
	[SUB_ORG] = { "org", "事業者名",
	    "organisation|organization|company|事業者|会社名|企業名|"
	    "法人名|団体名|名称" },
	[SUB_NAME] = { "name", "担当者名", "contact|contact name|担当者|氏名" },
	[SUB_STAR] = { "star", "星", "stars|level|宣言|段階|星の数|宣言段階" },
	[SUB_DECLARED] = { "declared", "宣言日",
	    "declaration date|declared date|宣言年月日" },
	[SUB_ASSESSED] = { "assessed", "自社診断日",
	    "assessment date|self-diagnosis|last assessed|自社診断|診断日" },
	[SUB_PRODUCTS] = { "products", "利用製品",
	    "product|software|使用製品|利用ソフトウェア|製品" },
	[SUB_INDUSTRY] = { "industry", "業種", "sector|業界" },
	[SUB_EMPLOYEES] = { "employees", "従業員数",
	    "staff|employee count|社員数|従業員" },
	[SUB_LOCALE] = { "locale", "言語", "language|lang" },
};

const char *
sub_field_name(enum sub_field f)
{
	return fields[f].en;
}

const char *
sub_field_name_ja(enum sub_field f)
{
	return fields[f].ja;
}

int
sub_field_lookup(const char *header)
{
	/* Headers from old systems are half-width too (ﾒｰﾙｱﾄﾞﾚｽ). */
	char *h = text_trim(text_fold_fullwidth(text_widen_kana(header)));
	int found = -1;

	for (int f = 0; f < SUB_NFIELDS && found < 0; f++) {
		const char *a = fields[f].aliases;

		if (text_ieq(h, fields[f].en) || strcmp(h, fields[f].ja) == 0) {
			found = f;
			break;
		}
		while (*a != '\0') {
			size_t n = strcspn(a, "|");

			if (strlen(h) == n && strncasecmp(h, a, n) == 0) {
				found = f;
				break;
			}
			a += n + (a[n] == '|');
		}
	}
	free(h);
	return found;
}

void
sub_init(struct subscriber *s)
{
	memset(s, 0, sizeof(*s));
	s->star = 1;
	s->declared = s->assessed = SUB_NODATE;
	s->employees = -1;
	strcpy(s->locale, "ja");
	strcpy(s->status, "active");
	s->products = xstrdup("");
}

void
sub_release(struct subscriber *s)
{
	free(s->org);
	free(s->name);
	free(s->products);
	free(s->industry);
	free(s->created);
	free(s->updated);
	memset(s, 0, sizeof(*s));
}

/*
 * Honorifics sheets often carry, which the mail writes itself: a contact
 * name's "山田 太郎 様" (the greeting is "{{name}} 様", which made
 * "山田 太郎 様 様") and an organisation's "株式会社サンプル 御中" (written
 * above "ご担当者様", and 御中 with 様 is wrong in Japanese).  blank: only
 * after a blank (鵜殿 is a surname).
 */
struct honorific {
	const char	*s;
	int		 blank;
};

static const struct honorific name_hon[] = {
	{ "様", 0 }, { "さま", 0 }, { "殿", 1 },
}, org_hon[] = {
	{ "御中", 0 },
};

/* v (trimmed) without the first of hon[] that ends it, nor the blanks
 * before that; a value that is nothing but the honorific stays as it is. */
static void
drop_honorific(char *v, const struct honorific *hon, size_t nhon)
{
	size_t n = strlen(v);

	for (size_t i = 0; i < nhon; i++) {
		size_t k = strlen(hon[i].s), m;
		char *rest;

		if (n <= k || strcmp(v + n - k, hon[i].s) != 0)
			continue;
		rest = text_trim(xstrndup(v, n - k));
		m = strlen(rest);
		if (m > 0 && (!hon[i].blank || m < n - k))
			memcpy(v, rest, m + 1);
		free(rest);
		return;
	}
}

/*
 * Free text that ends up in mail (org and contact names go into the To:
 * header's display name and the greeting): valid UTF-8, no control
 * characters — a CR or LF here could forge headers — and a sane length.
 */
/* The length limit of a text field; UTF-8 and control characters are
 * checked before, in sub_set_field(). */
static int
check_text(const char *what, const char *v, size_t maxchars, struct err *e)
{
	if (text_utf8_len(v) > maxchars)
		return err_set(e, ERR_INVAL, "%s is longer than %zu characters",
		    what, maxchars);
	return 0;
}

static int
parse_star(const char *v, int *star)
{
	static const char *const one[] = { "1", "★", "☆", "一つ星", "ひとつ星",
	    "1つ星", "星1", "one", NULL };
	static const char *const two[] = { "2", "★★", "☆☆", "二つ星", "ふたつ星",
	    "2つ星", "星2", "two", NULL };

	for (int i = 0; one[i] != NULL; i++)
		if (text_ieq(v, one[i])) {
			*star = 1;
			return 0;
		}
	for (int i = 0; two[i] != NULL; i++)
		if (text_ieq(v, two[i])) {
			*star = 2;
			return 0;
		}
	return -1;
}

/*
 * The era of a Japanese date: 令和6年 is 2024 (令和元年 2019), 平成30年
 * is 2018, in full or as Excel's 和暦 formats write it ("R6.4.1" for
 * ge.m.d, "令6.4.1" for gge.m.d, "令和6.4.1" for ggge.m.d, "H31/4/30");
 * v is folded to ASCII digits and letters before.  The year becomes the
 * Western one, the rest is kept: "R6.4.1" -> "2024.4.1" (v needs room
 * for 2 more bytes: "R1." -> "2019.").
 */
static void
western_year(char *v)
{
	static const struct {
		const char	*era;
		int		 base;
	} eras[] = {
		{ "令和", 2018 }, { "平成", 1988 }, { "令", 2018 }, { "平", 1988 },
		{ "R", 2018 }, { "r", 2018 }, { "H", 1988 }, { "h", 1988 },
	};
	char *p, *end, year[8];
	long ey;

	if (*v >= '0' && *v <= '9')
		return;		/* a Western year: most dates */
	for (size_t i = 0; i < sizeof(eras) / sizeof(eras[0]); i++) {
		size_t k = strlen(eras[i].era);

		if (strncmp(v, eras[i].era, k) != 0)
			continue;
		p = v + k;
		if (strncmp(p, "元", 3) == 0) {
			ey = 1;
			end = p + 3;
		} else if (*p >= '0' && *p <= '9')
			ey = strtol(p, &end, 10);
		else
			return;
		/* 年 after the year, or the separator of a short form. */
		if (end == p || ey < 1 || ey > 99 ||
		    (strncmp(end, "年", 3) != 0 && *end != '.' &&
		    *end != '/' && *end != '-'))
			return;
		snprintf(year, sizeof(year), "%ld", eras[i].base + ey);
		memmove(v + strlen(year), end, strlen(end) + 1);
		memcpy(v, year, strlen(year));
		return;
	}
}

/* "2024年4月1日" -> "2024-4-1", also "令和6年4月1日(月)", "R6.4.1" and
 * "2024.4.1"; a trailing time of day (Excel writes "2024/04/01 0:00") is
 * dropped. */
static void
normalise_date(char *v)
{
	char *p, *sp;
	struct buf b = BUF_INIT(0);
	size_t n;

	western_year(v);
	if ((sp = strchr(v, ' ')) != NULL) {
		int h, m;
		char tail;

		if (sscanf(sp + 1, "%d:%d%c", &h, &m, &tail) == 2 ||
		    sscanf(sp + 1, "%d:%d:%*d%c", &h, &m, &tail) == 2)
			*sp = '\0';
	}
	/* "2024年4月1日(月)": the day of the week goes. */
	n = strlen(v);
	if (n >= 5 && v[n - 1] == ')' && v[n - 5] == '(' &&
	    strstr("日月火水木金土", (char[]){ v[n - 4], v[n - 3], v[n - 2],
	    '\0' }) != NULL) {
		v[n - 5] = '\0';
		text_trim(v);
	}
	/* "2024.4.1" (and "R6.4.1" above): dots as the separator. */
	if (strchr(v, '-') == NULL && strchr(v, '/') == NULL &&
	    (p = strchr(v, '.')) != NULL && (p = strchr(p + 1, '.')) != NULL &&
	    strchr(p + 1, '.') == NULL)
		for (p = v; *p != '\0'; p++)
			if (*p == '.')
				*p = '-';
	if (strstr(v, "年") == NULL)
		return;
	for (p = v; *p != '\0';) {
		if (strncmp(p, "年", 3) == 0 || strncmp(p, "月", 3) == 0) {
			buf_addch(&b, '-');
			p += 3;
		} else if (strncmp(p, "日", 3) == 0 && p[3] == '\0') {
			p += 3;
		} else
			buf_addch(&b, *p++);
	}
	strcpy(v, buf_str(&b));
	buf_release(&b);
}

static int
set_date(long *dst, const char *what, const char *orig, time_t now,
    struct err *e)
{
	/* orig is quoted as the sheet has it; "R1." becomes "2019.": room
	 * for the longer year. */
	char *v = xmalloc(strlen(orig) + 8);
	long d;
	int y, m, dd, rc = 0;

	strcpy(v, orig);
	normalise_date(v);
	if (date_parse(v, &d, e) < 0) {
		size_t ndig = strspn(v, "0123456789");

		/* 45383: a date cell formatted as a number (days since 1900,
		 * or 1904 in an old Mac workbook: not to be guessed). */
		if (ndig == 5 && (v[5] == '\0' || (v[5] == '.' &&
		    strspn(v + 6, "0123456789") == strlen(v + 6))))
			rc = err_set(e, ERR_INVAL, "%s '%s' is an Excel date "
			    "serial number, not a date; format the column as a "
			    "date (yyyy/mm/dd) in Excel and save the CSV again",
			    what, orig);
		else if (strcmp(orig, v) == 0)
			rc = err_prefix(e, "%s", what);
		else
			rc = err_set(e, ERR_INVAL, "%s '%s' is not a date; write "
			    "YYYY-MM-DD, YYYY/MM/DD or YYYY年M月D日", what, orig);
		goto out;
	}
	date_civil(d, &y, &m, &dd);
	if (y < 2000)
		rc = err_set(e, ERR_INVAL, "%s '%s' is before 2000; check the "
		    "year", what, orig);
	else if (d > date_jst_day(now))
		rc = err_set(e, ERR_INVAL, "%s '%s' is in the future", what,
		    orig);
	else
		*dst = d;
out:
	free(v);
	return rc;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What people write in a products cell for "nothing to list". */
static int
no_product(const char *item)
{
	static const char *const none[] = { "なし", "無し", "特になし",
	    "特に無し", "該当なし", "不明", "その他", "-", "ー", "―", "none",
	    "n/a", "na", NULL };
	char *f = text_fold_fullwidth(xstrdup(item));
	int hit = 0;

	for (int i = 0; none[i] != NULL && !hit; i++)
		hit = text_ieq(f, none[i]);
	free(f);
	return hit;
}

/* "11" in "Windows 10/11": only a version, of the product before it. */
static int
only_version(const char *item)
{
	char *f = text_fold_fullwidth(xstrdup(item));
	int digits = 0, other = 0;

	for (const char *p = f; *p != '\0'; p++)
		if (*p >= '0' && *p <= '9')
			digits = 1;
		else if (*p != '.' && *p != ' ')
			other = 1;
	free(f);
	return digits && !other;
}

/* Split on ; , 、 ， ； / ／ and line breaks; each item a tag or a product
 * name from the dictionary ("なし" and the like: nothing). */
static int
set_products(struct subscriber *s, const char *v, const struct products *dict,
    struct err *e)
{
	char *copy = xstrdup(v), *p, *item, **tags = NULL;
	size_t ntags = 0;
	struct buf out = BUF_INIT(0);
	int rc = 0;

	/* Turn every separator into ','. */
	for (p = copy; *p != '\0'; p++) {
		if (strncmp(p, "、", 3) == 0 || strncmp(p, "，", 3) == 0 ||
		    strncmp(p, "；", 3) == 0 || strncmp(p, "／", 3) == 0) {
			memset(p, ' ', 3);
			*p = ',';
		} else if (*p == ';' || *p == '\n' || *p == '\r' || *p == '/')
			*p = ',';
	}
	for (item = copy; item != NULL;) {
		char *next = strchr(item, ',');
		const struct product *pr;

		if (next != NULL)
			*next++ = '\0';
		text_trim(item);
		/* A tag, as most are, is none of "なし" or a bare version. */
		if (*item != '\0' && ((pr = products_tag(dict, item)) != NULL ||
		    (!no_product(item) && !(ntags > 0 && only_version(item))))) {
			if (pr == NULL && (pr = products_find(dict, item)) == NULL) {
				char *known = products_tags(dict);

				rc = err_set(e, ERR_INVAL, "products: unknown "
				    "product '%s'; write one of the tags %s, or "
				    "add the name as an alias in the product "
				    "dictionary", item, known);
				free(known);
				goto out;
			}
			int dup = 0;

			for (size_t i = 0; i < ntags; i++)
				if (strcmp(tags[i], pr->tag) == 0)
					dup = 1;
			if (!dup) {
				tags = xreallocarray(tags, ntags + 1, sizeof(*tags));
				tags[ntags++] = pr->tag;
			}
		}
		item = next;
	}
	if (ntags > 1)
		qsort(tags, ntags, sizeof(*tags), cmp_str);
	for (size_t i = 0; i < ntags; i++) {
		if (i > 0)
			buf_addch(&out, ',');
		buf_addstr(&out, tags[i]);
	}
	free(s->products);
	s->products = buf_detach(&out, NULL);
out:
	free(tags);
	free(copy);
	return rc;
}

int
sub_set_field(struct subscriber *s, enum sub_field f, const char *value,
    const struct products *dict, time_t now, struct err *e)
{
	char *v = xstrdup(value);
	int rc = 0;

	/* Checked before trimming, so a CR or LF at an edge is refused rather
	 * than trimmed away silently.  Only a products cell may hold line
	 * breaks: Excel users list one product per line (Alt+Enter). */
	if (!text_utf8_valid(value, strlen(value))) {
		rc = err_set(e, ERR_INVAL, "%s is not valid UTF-8 text",
		    fields[f].en);
		goto out;
	}
	/* Addresses one per line (Alt+Enter) in one cell. */
	if (f == SUB_EMAIL && strpbrk(value, "\r\n") != NULL &&
	    strchr(value, '@') != strrchr(value, '@')) {
		rc = err_set(e, ERR_INVAL, "email holds more than one address "
		    "(one per line); give each address a row of its own");
		goto out;
	}
	if (f != SUB_PRODUCTS && text_has_control(value)) {
		rc = err_set(e, ERR_INVAL, "%s contains a control character "
		    "(line break, tab...); write it on one line", fields[f].en);
		goto out;
	}
	if ((f == SUB_ORG || f == SUB_NAME || f == SUB_INDUSTRY) &&
	    (rc = check_text(fields[f].en, value, f == SUB_ORG ? 200 : 100,
	    e)) < 0)
		goto out;
	text_trim(v);
	switch (f) {
	case SUB_EMAIL:
		if ((rc = addr_check(v, s->email, e)) < 0)
			err_prefix(e, "email");
		break;
	case SUB_ORG:
		drop_honorific(v, org_hon, sizeof(org_hon) / sizeof(org_hon[0]));
		if (*v == '\0') {
			rc = err_set(e, ERR_INVAL, "org is empty; the "
			    "organisation's name is required");
			break;
		}
		free(s->org);
		s->org = text_widen_kana(v);
		break;
	case SUB_NAME:
		drop_honorific(v, name_hon,
		    sizeof(name_hon) / sizeof(name_hon[0]));
		free(s->name);
		s->name = *v ? text_widen_kana(v) : NULL;
		break;
	case SUB_INDUSTRY:
		free(s->industry);
		s->industry = *v ? text_widen_kana(v) : NULL;
		break;
	case SUB_STAR:
		text_fold_fullwidth(v);
		text_trim(v);
		if (*v == '\0')
			s->star = 1;
		else if (parse_star(v, &s->star) < 0)
			rc = err_set(e, ERR_INVAL, "star '%s' is not a star "
			    "level; write 1 or 2 (also ★/★★, 一つ星/二つ星)", v);
		break;
	case SUB_DECLARED:
	case SUB_ASSESSED:
		text_fold_fullwidth(v);
		text_trim(v);
		if (*v == '\0')
			*(f == SUB_DECLARED ? &s->declared : &s->assessed) =
			    SUB_NODATE;
		else
			rc = set_date(f == SUB_DECLARED ? &s->declared :
			    &s->assessed, fields[f].en, v, now, e);
		break;
	case SUB_PRODUCTS: {
		/* Line breaks separate products; any other control character
		 * (C1 and bidi ones too: an unknown item is quoted back in
		 * the message) is refused, as in every other field. */
		char *lines = xstrdup(v);
		int ctl;

		for (char *p = lines; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
		ctl = text_has_control(lines);
		free(lines);
		if (ctl) {
			rc = err_set(e, ERR_INVAL, "products contains a control "
			    "character");
			goto out;
		}
		rc = set_products(s, v, dict, e);
		break;
	}
	case SUB_EMPLOYEES: {
		char *w = v, *r = v, *end;
		long n;

		text_fold_fullwidth(v);
		text_trim(v);
		if (*v == '\0') {
			s->employees = -1;
			break;
		}
		/* "1,200", "12人", "12名" */
		for (; *r != '\0'; r++)
			if (*r != ',')
				*w++ = *r;
		*w = '\0';
		if ((w = strstr(v, "人")) != NULL || (w = strstr(v, "名")) != NULL)
			if (w[3] == '\0')
				*w = '\0';
		n = strtol(v, &end, 10);
		if (!isdigit((unsigned char)*v) || *end != '\0' || n > 10000000)
			rc = err_set(e, ERR_INVAL, "employees '%s' is not a "
			    "number of staff (write e.g. 12)", value);
		else
			s->employees = n;
		break;
	}
	case SUB_LOCALE:
		text_fold_fullwidth(v);
		text_trim(v);
		text_ascii_lower(v);
		if (*v == '\0' || strcmp(v, "ja") == 0 ||
		    strcmp(v, "ja-jp") == 0 || strcmp(v, "ja_jp") == 0 ||
		    strcmp(v, "日本語") == 0 || strcmp(v, "japanese") == 0)
			strcpy(s->locale, "ja");
		else if (strcmp(v, "en") == 0 || strncmp(v, "en-", 3) == 0 ||
		    strncmp(v, "en_", 3) == 0 || strcmp(v, "英語") == 0 ||
		    strcmp(v, "english") == 0)
			strcpy(s->locale, "en");
		else
			rc = err_set(e, ERR_INVAL, "locale '%s' is not ja or en",
			    value);
		break;
	case SUB_NFIELDS:
		break;
	}
	if (rc == 0)
		s->set |= 1u << f;
out:
	free(v);
	return rc;
}

void
sub_email_hash(const char *email, char *out)
{
	/* One definition of the suppression key (lib/token.h); a checked
	 * address always hashes. */
	if (token_addr_hash(email, out, NULL) < 0)
		out[0] = '\0';
}

#define COLS \
    "id, email, org, name, star, declared, assessed, products, industry, " \
    "employees, locale, status, created, updated"

static long
col_date(sqlite3_stmt *st, int c)
{
	long d;

	if (sqlite3_column_type(st, c) == SQLITE_NULL ||
	    date_parse((const char *)sqlite3_column_text(st, c), &d, NULL) < 0)
		return SUB_NODATE;
	return d;
}

static void
from_row(sqlite3_stmt *st, struct subscriber *s)
{
	sub_release(s);
	sub_init(s);
	s->id = sqlite3_column_int64(st, 0);
	snprintf(s->email, sizeof(s->email), "%s", sqlite3_column_text(st, 1));
	s->org = db_column_dup(st, 2);
	s->name = db_column_dup(st, 3);
	s->star = sqlite3_column_int(st, 4);
	s->declared = col_date(st, 5);
	s->assessed = col_date(st, 6);
	free(s->products);
	s->products = db_column_dup(st, 7);
	if (s->products == NULL)
		s->products = xstrdup("");
	s->industry = db_column_dup(st, 8);
	s->employees = sqlite3_column_type(st, 9) == SQLITE_NULL ? -1 :
	    sqlite3_column_int64(st, 9);
	snprintf(s->locale, sizeof(s->locale), "%s", sqlite3_column_text(st, 10));
	snprintf(s->status, sizeof(s->status), "%s", sqlite3_column_text(st, 11));
	s->created = db_column_dup(st, 12);
	s->updated = db_column_dup(st, 13);
}

int
sub_get(struct db *db, const char *email, struct subscriber *s, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, "SELECT " COLS " FROM subscriber WHERE email = ?",
	    e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_text(st, 1, email, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		from_row(st, s);
		rc = 0;
	} else if (rc == SQLITE_DONE)
		rc = err_set(e, ERR_NOTFOUND, "no declarer with address '%s'",
		    email);
	else
		rc = db_error(db, e, "read declarer");
	sqlite3_reset(st);
	return rc;
}

int
sub_suppressed(struct db *db, const char *email, char *reason, struct err *e)
{
	char hash[65];
	sqlite3_stmt *st;
	int rc;

	sub_email_hash(email, hash);
	if ((st = db_stmt(db, "SELECT reason FROM suppression WHERE hash = ?",
	    e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (reason != NULL)
			snprintf(reason, 32, "%s", sqlite3_column_text(st, 0));
		rc = 1;
	} else if (rc == SQLITE_DONE)
		rc = 0;
	else
		rc = db_error(db, e, "read suppression list");
	sqlite3_reset(st);
	return rc;
}

int
sub_any_suppressed(struct db *db, struct err *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = db_stmt(db, "SELECT EXISTS (SELECT 1 FROM suppression)", e))
	    == NULL)
		return -ERR_DB;
	rc = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) :
	    db_error(db, e, "read suppression list");
	sqlite3_reset(st);
	return rc;
}

static int
suppress(struct db *db, const char *email, const char *reason, time_t now,
    struct err *e)
{
	char hash[65], ts[21];
	sqlite3_stmt *st;
	int rc = 0;

	sub_email_hash(email, hash);
	date_format_timestamp(now, ts);
	if ((st = db_prepare(db, "INSERT INTO suppression (hash, reason, created)"
	    " VALUES (?, ?, ?) ON CONFLICT (hash) DO UPDATE SET "
	    "reason = excluded.reason", e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, reason, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, ts, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(db, e, "write suppression list");
	sqlite3_finalize(st);
	return rc;
}

static int
unsuppress(struct db *db, const char *email, struct err *e)
{
	char hash[65];
	sqlite3_stmt *st;
	int rc = 0;

	sub_email_hash(email, hash);
	if ((st = db_prepare(db, "DELETE FROM suppression WHERE hash = ?", e))
	    == NULL)
		return -ERR_DB;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(db, e, "write suppression list");
	sqlite3_finalize(st);
	return rc;
}

static void
bind_date(sqlite3_stmt *st, int i, long d)
{
	char buf[11];

	if (d == SUB_NODATE)
		sqlite3_bind_null(st, i);
	else {
		date_format(d, buf);
		sqlite3_bind_text(st, i, buf, -1, SQLITE_TRANSIENT);
	}
}

/* Bind the value columns 1..10 in the order of `cols` after id. */
static void
bind_values(sqlite3_stmt *st, const struct subscriber *s)
{
	sqlite3_bind_text(st, 1, s->email, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, s->org, -1, SQLITE_STATIC);
	db_bind_text(st, 3, s->name);
	sqlite3_bind_int(st, 4, s->star);
	bind_date(st, 5, s->declared);
	bind_date(st, 6, s->assessed);
	sqlite3_bind_text(st, 7, s->products, -1, SQLITE_STATIC);
	db_bind_text(st, 8, s->industry);
	if (s->employees < 0)
		sqlite3_bind_null(st, 9);
	else
		sqlite3_bind_int64(st, 9, s->employees);
	sqlite3_bind_text(st, 10, s->locale, -1, SQLITE_STATIC);
}

/*
 * A new self-diagnosis (or a star change) ends the reminder cycle: its
 * reminders not sent yet are cancelled now, not at the next `remind
 * build` (a send in between would still deliver them).
 */
/* Does the change move the reminders' due date?  A new self-diagnosis
 * always does; without one on record, the star and the declared date
 * decide it (lib/remind.h). */
static int
cycle_changed(const struct subscriber *now, long assessed, int star,
    long declared)
{
	if (now->assessed != assessed)
		return 1;
	return now->assessed == SUB_NODATE &&
	    (now->star != star || now->declared != declared);
}

static int
cancel_reminders(struct db *db, long long id, struct err *e)
{
	int rc;

	if ((rc = db_run(db, "UPDATE reminder SET state = 'cancelled' WHERE "
	    "subscriber_id = ?1 AND state = 'queued' AND outbox_id IN (SELECT "
	    "id FROM outbox WHERE subscriber_id = ?1 AND state IN ('queued', "
	    "'deferred', 'held'))", id, NULL, NULL, NULL, e)) < 0)
		return rc;
	if ((rc = db_run(db, "UPDATE outbox SET state = 'cancelled', "
	    "last_error = ?2 WHERE subscriber_id = ?1 AND state IN ('queued', "
	    "'deferred', 'held') AND campaign_id IN (SELECT id FROM campaign "
	    "WHERE kind = 'reminder')", id, "the self-diagnosis cycle changed "
	    "(new date or star)", NULL, NULL, e)) < 0)
		return rc;
	return 0;
}

static int
record_assessment(struct db *db, long long id, long assessed, int score,
    const char *ts, struct err *e)
{
	sqlite3_stmt *st;
	int rc = 0;

	if (assessed == SUB_NODATE)
		return 0;
	if ((st = db_stmt(db, "INSERT INTO assessment (subscriber_id, "
	    "assessed, score, recorded) VALUES (?, ?, ?, ?)", e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_int64(st, 1, id);
	bind_date(st, 2, assessed);
	if (score >= 0)
		sqlite3_bind_int(st, 3, score);
	sqlite3_bind_text(st, 4, ts, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(db, e, "record self-diagnosis");
	sqlite3_reset(st);
	return rc;
}

/* Insert s unless its address exists; 1 if inserted, 0 if it existed. */
static int
insert(struct db *db, struct subscriber *s, const char *ts, struct err *e)
{
	sqlite3_stmt *st;
	int rc = 0;

	if ((st = db_stmt(db, "INSERT INTO subscriber (email, org, name, "
	    "star, declared, assessed, products, industry, employees, locale, "
	    "created, updated) VALUES (?,?,?,?,?,?,?,?,?,?,?11,?11) "
	    "ON CONFLICT (email) DO NOTHING", e)) == NULL)
		return -ERR_DB;
	bind_values(st, s);
	sqlite3_bind_text(st, 11, ts, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(db, e, "add declarer");
	else if (sqlite3_changes(db->h) == 1) {
		s->id = sqlite3_last_insert_rowid(db->h);
		rc = 1;
	}
	sqlite3_reset(st);
	if (rc == 1 && s->assessed != SUB_NODATE &&
	    record_assessment(db, s->id, s->assessed, -1, ts, e) < 0)
		rc = -ERR_DB;
	return rc;
}

int
sub_insert_new(struct db *db, struct subscriber *s, time_t now,
    struct err *e)
{
	char ts[21];

	date_format_timestamp(now, ts);
	return insert(db, s, ts, e);
}

long long
sub_id(struct db *db, const char *email, struct err *e)
{
	sqlite3_stmt *st;
	long long id = 0;
	int rc;

	if ((st = db_stmt(db, "SELECT id FROM subscriber WHERE email = ?",
	    e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_text(st, 1, email, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		id = db_error(db, e, "find declarer");
	sqlite3_reset(st);
	return id;
}

long long
sub_last_id(struct db *db, struct err *e)
{
	sqlite3_stmt *st;
	long long id = 0;
	int rc;

	/* AUTOINCREMENT: sqlite_sequence keeps the largest id ever used. */
	if ((st = db_stmt(db, "SELECT max(coalesce((SELECT seq FROM "
	    "sqlite_sequence WHERE name = 'subscriber'), 0), coalesce((SELECT "
	    "max(id) FROM subscriber), 0))", e)) == NULL)
		return -ERR_DB;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	else
		id = db_error(db, e, "read declarer ids");
	sqlite3_reset(st);
	return id;
}

int
sub_add(struct db *db, struct subscriber *s, int resubscribe, time_t now,
    struct err *e)
{
	struct subscriber old;
	char ts[21], reason[32];
	int rc;

	sub_init(&old);
	rc = sub_get(db, s->email, &old, NULL);
	sub_release(&old);
	if (rc == 0)
		return err_set(e, ERR_EXISTS, "declarer '%s' exists already; "
		    "use 'samail subscriber update'", s->email);
	if ((rc = sub_suppressed(db, s->email, reason, e)) < 0)
		return rc;
	if (rc == 1 && !resubscribe)
		return err_set(e, ERR_INVAL, "'%s' is on the suppression list "
		    "(%s); add it with --resubscribe only if the declarer asked "
		    "to receive mail again", s->email, reason);
	if (rc == 1 && (rc = unsuppress(db, s->email, e)) < 0)
		return rc;
	date_format_timestamp(now, ts);
	rc = insert(db, s, ts, e);
	return rc < 0 ? rc : 0;
}

/* Copy the fields in src->set into dst; 1 if anything changed. */
static int
apply(struct subscriber *dst, const struct subscriber *src)
{
	int changed = 0;

#define STRF(f, fld)							\
	if ((src->set & (1u << (f))) &&					\
	    !((dst->fld == NULL && src->fld == NULL) ||			\
	    (dst->fld != NULL && src->fld != NULL &&			\
	    strcmp(dst->fld, src->fld) == 0))) {			\
		free(dst->fld);						\
		dst->fld = src->fld ? xstrdup(src->fld) : NULL;		\
		changed = 1;						\
	}
#define NUMF(f, fld)							\
	if ((src->set & (1u << (f))) && dst->fld != src->fld) {		\
		dst->fld = src->fld;					\
		changed = 1;						\
	}
	STRF(SUB_ORG, org)
	STRF(SUB_NAME, name)
	STRF(SUB_PRODUCTS, products)
	STRF(SUB_INDUSTRY, industry)
	NUMF(SUB_STAR, star)
	NUMF(SUB_DECLARED, declared)
	NUMF(SUB_ASSESSED, assessed)
	NUMF(SUB_EMPLOYEES, employees)
#undef STRF
#undef NUMF
	if ((src->set & (1u << SUB_LOCALE)) &&
	    strcmp(dst->locale, src->locale) != 0) {
		strcpy(dst->locale, src->locale);
		changed = 1;
	}
	return changed;
}

static int
write_back(struct db *db, const struct subscriber *s, const char *ts,
    struct err *e)
{
	sqlite3_stmt *st;
	int rc = 0;

	if ((st = db_stmt(db, "UPDATE subscriber SET email = ?, org = ?, "
	    "name = ?, star = ?, declared = ?, assessed = ?, products = ?, "
	    "industry = ?, employees = ?, locale = ?, updated = ? "
	    "WHERE id = ?", e)) == NULL)
		return -ERR_DB;
	bind_values(st, s);
	sqlite3_bind_text(st, 11, ts, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 12, s->id);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(db, e, "update declarer");
	sqlite3_reset(st);
	return rc;
}

static int refresh(struct db *, struct subscriber *, const char *,
    enum sub_outcome *, struct err *);

int
sub_refresh(struct db *db, struct subscriber *s, time_t now,
    enum sub_outcome *out, struct err *e)
{
	char ts[21];

	date_format_timestamp(now, ts);
	return refresh(db, s, ts, out, e);
}

int
sub_upsert(struct db *db, struct subscriber *s, time_t now, int check_supp,
    enum sub_outcome *out, struct err *e)
{
	char ts[21];
	int rc;

	date_format_timestamp(now, ts);
	/* Most rows of a first import are new: try the insert first. */
	if (check_supp && (rc = sub_suppressed(db, s->email, NULL, e)) != 0) {
		if (rc < 0)
			goto out;
		/* A suppressed address is never added, only an existing
		 * declarer's data refreshed (it keeps its status). */
	} else {
		if ((rc = insert(db, s, ts, e)) < 0)
			goto out;
		if (rc == 1) {
			*out = SUB_ADDED;
			rc = 0;
			goto out;
		}
	}
	rc = refresh(db, s, ts, out, e);
out:
	return rc;
}

/* Update the existing declarer s->email with the fields in s->set; an
 * address that is not stored is SUB_SUPPRESSED (the caller found it on
 * the suppression list). */
static int
refresh(struct db *db, struct subscriber *s, const char *ts,
    enum sub_outcome *out, struct err *e)
{
	struct subscriber cur;
	int rc, old_star;
	long old_assessed, old_declared;

	sub_init(&cur);
	rc = sub_get(db, s->email, &cur, e);
	if (rc == -ERR_NOTFOUND) {
		err_clear(e);
		*out = SUB_SUPPRESSED;
		rc = 0;
		goto out;
	}
	if (rc < 0)
		goto out;
	old_assessed = cur.assessed;
	old_star = cur.star;
	old_declared = cur.declared;
	if (!apply(&cur, s)) {
		*out = SUB_UNCHANGED;
		goto out;
	}
	if ((rc = write_back(db, &cur, ts, e)) < 0)
		goto out;
	if (cur.assessed != old_assessed &&
	    (rc = record_assessment(db, cur.id, cur.assessed, -1, ts, e)) < 0)
		goto out;
	if (cycle_changed(&cur, old_assessed, old_star, old_declared) &&
	    (rc = cancel_reminders(db, cur.id, e)) < 0)
		goto out;
	s->id = cur.id;
	*out = SUB_UPDATED;
out:
	sub_release(&cur);
	return rc;
}

int
sub_update(struct db *db, const struct subscriber *patch, int score,
    time_t now, struct err *e)
{
	struct subscriber cur;
	char ts[21];
	int rc, changed, old_star;
	long old_assessed, old_declared;

	sub_init(&cur);
	if ((rc = sub_get(db, patch->email, &cur, e)) < 0)
		goto out;
	date_format_timestamp(now, ts);
	old_assessed = cur.assessed;
	old_star = cur.star;
	old_declared = cur.declared;
	changed = apply(&cur, patch);
	if (changed && (rc = write_back(db, &cur, ts, e)) < 0)
		goto out;
	if (cycle_changed(&cur, old_assessed, old_star, old_declared) &&
	    (rc = cancel_reminders(db, cur.id, e)) < 0)
		goto out;
	/* A score comes with a self-diagnosis: record it even if the date
	 * is the one on record (the admin is adding the score). */
	if (cur.assessed != old_assessed || score >= 0) {
		if (cur.assessed == SUB_NODATE) {
			rc = err_set(e, ERR_INVAL, "--score needs a self-"
			    "diagnosis date: give --assessed DATE");
			goto out;
		}
		if ((rc = record_assessment(db, cur.id, cur.assessed, score,
		    ts, e)) < 0)
			goto out;
		changed = 1;
	}
	rc = changed;
out:
	sub_release(&cur);
	return rc;
}

static int
cancel_pending(struct db *db, long long id, int erase, struct err *e)
{
	sqlite3_stmt *st;
	int rc = 0;

	if ((st = db_prepare(db, erase ?
	    "UPDATE outbox SET state = CASE WHEN state IN ('queued', "
	    "'deferred', 'held') THEN 'cancelled' ELSE state END, rcpt = '', "
	    "data = '{}' WHERE subscriber_id = ?" :
	    "UPDATE outbox SET state = 'cancelled' WHERE subscriber_id = ? "
	    "AND state IN ('queued', 'deferred', 'held')", e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_error(db, e, "cancel queued mail");
	sqlite3_finalize(st);
	return rc;
}


int
sub_set_status(struct db *db, const char *email, const char *status,
    const char *reason, time_t now, struct err *e)
{
	struct subscriber cur;
	char ts[21];
	int rc;

	if (strcmp(status, "active") != 0 && strcmp(status, "unsubscribed") != 0
	    && strcmp(status, "bounced") != 0 && strcmp(status, "removed") != 0)
		return err_set(e, ERR_INVAL, "status '%s' is not one of active, "
		    "unsubscribed, bounced, removed", status);
	sub_init(&cur);
	if ((rc = sub_get(db, email, &cur, e)) < 0)
		goto out;
	if (strcmp(cur.status, status) == 0) {
		rc = 0;
		goto out;
	}
	date_format_timestamp(now, ts);
	if ((rc = db_run(db, "UPDATE subscriber SET status = ?2, "
	    "status_reason = ?3, status_changed = ?4, updated = ?4 "
	    "WHERE id = ?1", cur.id, status, reason, ts, e)) < 0)
		goto out;
	if (strcmp(status, "active") == 0)
		rc = unsuppress(db, email, e);
	else if ((rc = suppress(db, email, status, now, e)) == 0)
		rc = cancel_pending(db, cur.id, 0, e);
	if (rc == 0)
		rc = 1;
out:
	sub_release(&cur);
	return rc;
}

int
sub_remove(struct db *db, const char *email, int purge, time_t now,
    struct err *e)
{
	struct subscriber cur;
	char ts[21], reason[32] = "removed";
	int rc;

	sub_init(&cur);
	date_format_timestamp(now, ts);
	if ((rc = sub_get(db, email, &cur, e)) < 0) {
		/* Purging an address we no longer hold still suppresses it. */
		if (rc == -ERR_NOTFOUND && purge) {
			err_clear(e);
			rc = suppress(db, email, "purged", now, e);
		}
		goto out;
	}
	if (strcmp(cur.status, "active") != 0 && strcmp(cur.status, "removed"))
		snprintf(reason, sizeof(reason), "%s", cur.status);
	if ((rc = suppress(db, email, purge ? "purged" : reason, now, e)) < 0 ||
	    (rc = cancel_pending(db, cur.id, purge, e)) < 0)
		goto out;
	if (purge)
		rc = db_run(db, "DELETE FROM subscriber WHERE id = ?1", cur.id,
		    NULL, NULL, NULL, e);
	else
		rc = db_run(db, "UPDATE subscriber SET status = 'removed', "
		    "status_reason = 'removed by admin', status_changed = ?2, "
		    "updated = ?2 WHERE id = ?1", cur.id, ts, NULL, NULL, e);
	if (rc > 0)
		rc = 0;
out:
	sub_release(&cur);
	return rc;
}

int
sub_each(struct db *db, const struct sub_filter *f,
    int (*fn)(const struct subscriber *, void *), void *arg, struct err *e)
{
	sqlite3_stmt *st;
	struct subscriber s;
	int rc = 0, step;

	if ((st = db_prepare(db, "SELECT " COLS " FROM subscriber WHERE "
	    "(?1 IS NULL OR status = ?1) AND (?2 = 0 OR star = ?2) AND "
	    "(?3 IS NULL OR ',' || products || ',' LIKE '%,' || ?3 || ',%') "
	    "ORDER BY id", e)) == NULL)
		return -ERR_DB;
	db_bind_text(st, 1, f ? f->status : NULL);
	sqlite3_bind_int(st, 2, f ? f->star : 0);
	db_bind_text(st, 3, f ? f->product : NULL);
	sub_init(&s);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		from_row(st, &s);
		if ((rc = fn(&s, arg)) != 0)
			break;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = db_error(db, e, "list declarers");
	sub_release(&s);
	sqlite3_finalize(st);
	return rc;
}

char *
sub_to_json(const struct subscriber *s)
{
	json_t *o = json_object(), *prods = json_array();
	char d[11], *out, *copy, *tok, *save = NULL;

	json_object_set_new(o, "email", json_string(s->email));
	json_object_set_new(o, "org", json_string(s->org ? s->org : ""));
	json_object_set_new(o, "name", s->name ? json_string(s->name) : json_null());
	json_object_set_new(o, "star", json_integer(s->star));
	if (s->declared != SUB_NODATE) {
		date_format(s->declared, d);
		json_object_set_new(o, "declared", json_string(d));
	} else
		json_object_set_new(o, "declared", json_null());
	if (s->assessed != SUB_NODATE) {
		date_format(s->assessed, d);
		json_object_set_new(o, "assessed", json_string(d));
	} else
		json_object_set_new(o, "assessed", json_null());
	copy = xstrdup(s->products ? s->products : "");
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save))
		json_array_append_new(prods, json_string(tok));
	free(copy);
	json_object_set_new(o, "products", prods);
	json_object_set_new(o, "industry",
	    s->industry ? json_string(s->industry) : json_null());
	json_object_set_new(o, "employees",
	    s->employees >= 0 ? json_integer(s->employees) : json_null());
	json_object_set_new(o, "locale", json_string(s->locale));
	json_object_set_new(o, "status", json_string(s->status));
	out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return out;
}
