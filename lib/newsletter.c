#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "campaign.h"
#include "config.h"
#include "date.h"
#include "db.h"
#include "err.h"
#include "log.h"
#include "msg.h"
#include "newsletter.h"
#include "outbox.h"
#include "products.h"
#include "render.h"
#include "skelcache.h"
#include "subscriber.h"
#include "text.h"
#include "token.h"
#include "wrap.h"
#include "xalloc.h"

void
newsletter_campaign_name(int year, int month, char *out)
{
	snprintf(out, 32, "newsletter-%04d-%02d", year, month);
}

/* --- the snapshot --------------------------------------------------- */

/* Is the k-byte CVE id at p in the comma-separated list? */
static int
has_cve(const char *list, const char *p, size_t k)
{
	for (const char *q = list; *q; ) {
		size_t m = strcspn(q, ",");

		if (m == k && strncmp(q, p, k) == 0)
			return 1;
		q += m + (q[m] == ',');
	}
	return 0;
}

static int
severity_rank(const char *sev)
{
	if (sev == NULL)
		return 0;
	if (text_ieq(sev, "critical"))
		return 4;
	if (text_ieq(sev, "high"))
		return 3;
	if (text_ieq(sev, "medium"))
		return 2;
	if (text_ieq(sev, "low"))
		return 1;
	return 0;
}

static const char *
rank_name(int rank)
{
	static const char *const names[] = { NULL, "low", "medium", "high",
	    "critical" };

	return rank >= 1 && rank <= 4 ? names[rank] : NULL;
}

/* An advisory's severity (lower-case name) and CVSS score in its JSON. */
static void
set_severity(json_t *j, const char *sev, double cvss)
{
	if (cvss >= 0)
		json_object_set_new(j, "cvss", json_real(cvss));
	else
		json_object_del(j, "cvss");
	if (severity_rank(sev) > 0)
		json_object_set_new(j, "severity",
		    json_string(rank_name(severity_rank(sev))));
	else
		json_object_del(j, "severity");
}

/* Who published it, as readers know the name. */
static const char *
source_label(const char *url, const char *feed)
{
	if (url != NULL) {
		if (strstr(url, "://jvndb.jvn.jp/"))
			return "JVN iPedia";
		if (strstr(url, "://jvn.jp/") || strstr(url, ".jvn.jp/"))
			return "JVN";
		if (strstr(url, "://www.ipa.go.jp/") || strstr(url, ".ipa.go.jp/"))
			return "IPA";
	}
	/* A feed read from a local copy: its name tells. */
	if (feed != NULL) {
		if (strstr(feed, "jvndb") != NULL)
			return "JVN iPedia";
		if (strstr(feed, "jvn") != NULL || strstr(feed, "JVN") != NULL)
			return "JVN";
		if (strstr(feed, "ipa") != NULL || strstr(feed, "IPA") != NULL)
			return "IPA";
	}
	return feed;
}

/* The key that says two feed items are the same advisory: the JVN id,
 * else the link without "index.html" and scheme, else the guid. */
static char *
dedupe_key(const char *ident, const char *link, const char *guid)
{
	char *k, *p;
	size_t n;

	if (ident != NULL && *ident)
		return xasprintf("id:%s", ident);
	if (link != NULL && *link) {
		p = strstr(link, "://");
		k = xasprintf("ln:%s", p ? p + 3 : link);
		n = strlen(k);
		if (n > 10 && strcmp(k + n - 10, "index.html") == 0)
			k[n - 10] = '\0';
		n = strlen(k);
		while (n > 3 && k[n - 1] == '/')
			k[--n] = '\0';
		return k;
	}
	return xasprintf("g:%s", guid);
}

struct adv {
	json_t	*j;
	double	 cvss;
	int	 rank;
	int	 alert;
	int	 prio;		/* whose words are shown: source_prio() */
	char	*published;
	char	*key;
	char	*tkey;		/* the title, folded: same title = same item */
	char	*feed;		/* the feed it came from */
	char	*cves;		/* "CVE-...,CVE-..." */
};

/* Whose title, link and summary a merged advisory shows: IPA's alert
 * (the page with its countermeasures), then JVN, then anything else (a
 * news feed an admin added). */
static int
source_prio(int alert, const char *label)
{
	if (alert)
		return 3;
	if (label != NULL && strncmp(label, "JVN", 3) == 0)
		return 2;
	return 1;
}


/*
 * Do two advisories name a CVE in common?  Then they are one problem told
 * by two sources (JVN's entry and IPA's alert about the same update):
 * listed once, or a reader without an IT person counts two.
 */
static int
shares_cve(const char *a, const char *b)
{
	if (a == NULL || b == NULL || *a == '\0' || *b == '\0')
		return 0;
	for (const char *p = b; *p; ) {
		size_t k = strcspn(p, ",");

		if (k > 0 && has_cve(a, p, k))
			return 1;
		p += k + (p[k] == ',');
	}
	return 0;
}

/* "a" and the CVE ids of "b" it lacks, comma-separated; caller frees. */
static char *
union_cves(const char *a, const char *b)
{
	struct buf u = BUF_INIT(0);

	buf_addstr(&u, a != NULL ? a : "");
	for (const char *p = b != NULL ? b : ""; *p; ) {
		size_t k = strcspn(p, ",");

		if (k > 0 && !has_cve(buf_str(&u), p, k)) {
			if (u.len > 0)
				buf_addch(&u, ',');
			buf_add(&u, p, k);
		}
		p += k + (p[k] == ',');
	}
	return buf_detach(&u, NULL);
}

/* "tag,tag" as a JSON array of tags. */
static json_t *
products_array(const char *prods)
{
	json_t *pa = json_array();
	char *copy = xstrdup(prods ? prods : ""), *tok, *save = NULL;

	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save))
		json_array_append_new(pa, json_string(tok));
	free(copy);
	return pa;
}

/* Add to dst's "products" the tags it lacks: a merged advisory reaches
 * every declarer any of its copies was tagged for. */
static void
union_products(json_t *dst, json_t *tags)
{
	json_t *d = json_object_get(dst, "products"), *t;
	size_t i, k;

	if (!json_is_array(d))
		return;
	json_array_foreach(tags, i, t) {
		int have = 0;
		json_t *u;

		json_array_foreach(d, k, u)
			have |= json_equal(u, t);
		if (!have)
			json_array_append(d, t);
	}
}

static int
adv_cmp(const void *a, const void *b)
{
	const struct adv *x = a, *y = b;

	/* Most severe first: severity, then score, then newest. */
	if (x->rank != y->rank)
		return y->rank - x->rank;
	if (x->cvss != y->cvss)
		return x->cvss < y->cvss ? 1 : -1;
	return strcmp(y->published, x->published);
}

/*
 * The period's advisories, deduplicated across feeds, most severe first,
 * as the snapshot's "advisories" list.  An IPA alert without a score
 * counts as high: IPA publishes only what it deems important.
 */
/*
 * What a newsletter shows of an advisory's summary: the first
 * NL_SUMMARY_CHARS characters, cut after a sentence (Japanese or English)
 * when one ends in the last third, else marked "…", and never inside a
 * URL or an English word; the link has the rest.  (The store keeps up to
 * FEED_MAX_SUMMARY bytes, all of it tagged.)
 */
#define NL_SUMMARY_CHARS	300

/* The CVE ids an advisory lists; the rest are counted (cves_more). */
#define NL_CVES_SHOWN		5

static int
ascii_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
	    (c >= 'a' && c <= 'z');
}

/* A byte of an English word or an id (CVE-2026-1234, snake_case). */
static int
word_byte(unsigned char c)
{
	return ascii_alnum(c) || c == '-' || c == '_';
}

static json_t *
clip_summary(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t i = 0, chars = 0, sentence = 0, n = strlen((const char *)p);
	size_t url = 0, url_end = 0;	/* the last URL seen */
	json_t *j;
	char *cut;

	while (p[i] != '\0' && chars < NL_SUMMARY_CHARS) {
		size_t k = p[i] < 0x80 ? 1 : p[i] >= 0xf0 ? 4 : p[i] >= 0xe0 ?
		    3 : 2, u;

		if (i >= url_end && (p[i] == 'h' || p[i] == 'm') &&
		    (u = wrap_url((const char *)p + i, n - i)) > 0) {
			url = i;
			url_end = i + u;
		}
		for (size_t m = 1; m < k; m++)
			if (p[i + m] == '\0')
				k = m;
		if (k == 3 && (memcmp(p + i, "。", 3) == 0 ||
		    memcmp(p + i, "！", 3) == 0 || memcmp(p + i, "？", 3) == 0))
			sentence = i + 3;
		else if (k == 1 && strchr(".!?", p[i]) != NULL && i > 0 &&
		    ascii_alnum(p[i - 1]) && (p[i + 1] == ' ' ||
		    p[i + 1] == '\t' || p[i + 1] == '\n'))
			sentence = i + 1;	/* an English one */
		i += k;
		chars++;
	}
	if (p[i] == '\0')
		return json_string((const char *)p);
	if (url_end > i) {
		/* Never inside a URL: a reader's client would link the
		 * part shown, a page that does not exist.  Cut before it,
		 * or after it when it starts the summary. */
		i = url;
		while (i > 0 && (p[i - 1] == ' ' || p[i - 1] == '\t'))
			i--;
		if (i == 0)
			i = url_end;
		if (p[i] == '\0')
			return json_string((const char *)p);
	}
	if (sentence > i * 2 / 3)
		cut = xstrndup((const char *)p, sentence);
	else {
		/* Not in the middle of an English word. */
		size_t w = i;

		while (w > i * 2 / 3 && word_byte(p[w]) && word_byte(p[w - 1]))
			w--;
		if (w > i * 2 / 3 && w < i)
			while (w > 0 && (p[w - 1] == ' ' || p[w - 1] == '\t'))
				w--;
		if (w > i * 2 / 3)
			i = w;
		cut = xasprintf("%.*s…", (int)i, (const char *)p);
	}
	j = json_string(cut);
	free(cut);
	return j;
}

static int
collect(struct db *db, int year, int month, json_t *list, size_t *nalerts,
    struct err *e)
{
	sqlite3_stmt *st;
	char from[21], to[21];
	struct adv *v = NULL;
	size_t n = 0;
	int rc = 0, step, ny = year, nm = month + 1;

	if (nm == 13) {
		nm = 1;
		ny++;
	}
	date_format_timestamp(date_jst_time(date_days(year, month, 1), 0, 0), from);
	date_format_timestamp(date_jst_time(date_days(ny, nm, 1), 0, 0), to);
	if ((st = db_prepare(db, "SELECT a.title, a.link, a.summary, "
	    "COALESCE(a.published, a.updated, a.first_seen) AS p, a.cvss, "
	    "a.severity, a.cves, a.products, f.name, f.url, f.alert, a.ident, "
	    "a.guid, COALESCE(a.updated, a.published, a.first_seen) "
	    "FROM advisory a JOIN feed f ON f.id = a.feed_id "
	    "WHERE p >= ? AND p < ? ORDER BY p DESC, a.id", e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, to, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *title = (const char *)sqlite3_column_text(st, 0);
		const char *link = (const char *)sqlite3_column_text(st, 1);
		const char *summary = (const char *)sqlite3_column_text(st, 2);
		const char *pub = (const char *)sqlite3_column_text(st, 3);
		const char *sev = (const char *)sqlite3_column_text(st, 5);
		const char *cves = (const char *)sqlite3_column_text(st, 6);
		const char *prods = (const char *)sqlite3_column_text(st, 7);
		const char *feed = (const char *)sqlite3_column_text(st, 8);
		const char *url = (const char *)sqlite3_column_text(st, 9);
		int alert = sqlite3_column_int(st, 10);
		char *key = dedupe_key((const char *)sqlite3_column_text(st, 11),
		    link, (const char *)sqlite3_column_text(st, 12));
		double cvss = sqlite3_column_type(st, 4) == SQLITE_NULL ? -1 :
		    sqlite3_column_double(st, 4);
		json_t *j;
		char day[11], day_ja[DATE_JA_MAX];
		size_t i, merge;
		time_t t;

		const char *label = source_label(url, feed);
		int prio = source_prio(alert, label);
		char *tkey = text_match_key(title ? title : "");

		/* The same title from another feed (IPA's and JVN's monthly
		 * Microsoft item) is the same advisory; within one feed titles
		 * repeat for different problems ("Linux Kernel における脆弱性"). */
		for (i = 0; i < n; i++)
			if (strcmp(v[i].key, key) == 0 ||
			    shares_cve(v[i].cves, cves) ||
			    (*tkey != '\0' && strcmp(v[i].tkey, tkey) == 0 &&
			    strcmp(v[i].feed, feed ? feed : "") != 0))
				break;
		merge = i < n ? i : (size_t)-1;
		if (merge != (size_t)-1) {
			/* Seen from another feed: one entry, in the words of
			 * the most authoritative source (IPA's alert, then
			 * JVN), as severe as the most severe copy says, and an
			 * alert if any feed that carried it is the alert feed. */
			int more_severe = severity_rank(sev) > v[merge].rank ||
			    (v[merge].rank == 0 && cvss > v[merge].cvss);

			v[merge].alert |= alert;
			if (prio < v[merge].prio || (prio == v[merge].prio &&
			    !more_severe)) {
				if (more_severe) {
					/* Keep the words, take the severity. */
					set_severity(v[merge].j, sev, cvss);
					v[merge].rank = severity_rank(sev);
					v[merge].cvss = cvss;
				}
				/* Every CVE id any copy names. */
				{
					char *all = union_cves(v[merge].cves, cves);

					free(v[merge].cves);
					v[merge].cves = all;
					json_object_set_new(v[merge].j, "cves",
					    json_string(all));
				}
				/* Its tags too. */
				{
					json_t *tags = products_array(prods);

					union_products(v[merge].j, tags);
					json_decref(tags);
				}
				/* An alert without a summary borrows JVN's. */
				if (json_string_length(json_object_get(v[merge].j,
				    "summary")) == 0 && summary != NULL &&
				    *summary != '\0')
					json_object_set_new(v[merge].j, "summary",
					    clip_summary(summary));
				free(key);
				free(tkey);
				continue;
			}
		}
		j = json_object();
		json_object_set_new(j, "title", json_string(title ? title : ""));
		json_object_set_new(j, "link", json_string(link ? link : ""));
		json_object_set_new(j, "summary", clip_summary(summary));
		day[0] = day_ja[0] = '\0';
		if (pub != NULL && date_parse_timestamp(pub, &t, NULL) == 0) {
			date_format(date_jst_day(t), day);
			date_format_ja(date_jst_day(t), day_ja);
		}
		json_object_set_new(j, "published", json_string(day));
		json_object_set_new(j, "published_ja", json_string(day_ja));
		if (cvss >= 0)
			json_object_set_new(j, "cvss", json_real(cvss));
		if (sev != NULL && severity_rank(sev) > 0) {
			char *low = text_ascii_lower(xstrdup(sev));

			json_object_set_new(j, "severity", json_string(low));
			free(low);
		}
		json_object_set_new(j, "cves", json_string(cves ? cves : ""));
		json_object_set_new(j, "products", products_array(prods));
		json_object_set_new(j, "source", json_string(label));
		if (merge != (size_t)-1) {
			/* The more authoritative (or, from the same kind of
			 * source, more severe) copy replaces the one kept; a
			 * severity only the kept one had stays. */
			if (v[merge].rank > severity_rank(sev) ||
			    (v[merge].rank == severity_rank(sev) &&
			    v[merge].cvss > cvss)) {
				/* A score only the shown copy has stays. */
				if (v[merge].cvss < 0)
					v[merge].cvss = cvss;
				set_severity(j, v[merge].rank > 0 ?
				    rank_name(v[merge].rank) : NULL,
				    v[merge].cvss);
			} else {
				v[merge].cvss = cvss;
				v[merge].rank = severity_rank(sev);
			}
			if (json_string_length(json_object_get(j, "summary")) == 0)
				json_object_set(j, "summary",
				    json_object_get(v[merge].j, "summary"));
			union_products(j, json_object_get(v[merge].j,
			    "products"));
			{
				char *all = union_cves(cves, v[merge].cves);

				json_object_set_new(j, "cves", json_string(all));
				free(v[merge].cves);
				v[merge].cves = all;
			}
			json_decref(v[merge].j);
			free(v[merge].published);
			free(key);
			free(tkey);
			v[merge].j = j;
			v[merge].prio = prio;
			free(v[merge].feed);
			v[merge].feed = xstrdup(feed ? feed : "");
			v[merge].published = xstrdup(pub ? pub : "");
			continue;
		}
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n].j = j;
		v[n].cvss = cvss;
		v[n].rank = severity_rank(sev);
		v[n].alert = alert;
		v[n].prio = prio;
		v[n].published = xstrdup(pub ? pub : "");
		v[n].key = key;
		v[n].tkey = tkey;
		v[n].feed = xstrdup(feed ? feed : "");
		v[n].cves = xstrdup(cves ? cves : "");
		n++;
	}
	if (step != SQLITE_DONE)
		rc = db_error(db, e, "read advisories");
	sqlite3_finalize(st);
	/* IPA publishes in its 重要なセキュリティ情報 only what it deems
	 * important: without a score of its own such an item reads 重要
	 * (high), as IPA calls it, and sorts with the high ones. */
	for (size_t i = 0; i < n; i++)
		if (v[i].alert && v[i].rank == 0 && v[i].cvss < 0) {
			v[i].rank = 3;
			json_object_set_new(v[i].j, "severity", json_string("high"));
		}
	if (n > 1)
		qsort(v, n, sizeof(*v), adv_cmp);
	*nalerts = 0;
	for (size_t i = 0; i < n; i++) {
		json_object_set_new(v[i].j, "alert", json_boolean(v[i].alert));
		*nalerts += v[i].alert != 0;
		if (rc == 0)
			json_array_append(list, v[i].j);
		json_decref(v[i].j);
		free(v[i].published);
		free(v[i].key);
		free(v[i].tkey);
		free(v[i].feed);
		free(v[i].cves);
	}
	free(v);
	return rc;
}

/* Display names of every product, so a re-send reads the same even if
 * the dictionary is edited. */
static json_t *
product_names(const struct products *dict)
{
	json_t *o = json_object();

	for (size_t i = 0; i < dict->n; i++) {
		json_t *p = json_object();

		json_object_set_new(p, "ja", json_string(dict->v[i].name_ja));
		json_object_set_new(p, "en", json_string(dict->v[i].name_en));
		json_object_set_new(o, dict->v[i].tag, p);
	}
	return o;
}

/* --- the context of one message -------------------------------------- */

/* One advisory of the snapshot, prepared once per campaign: the parts of
 * its template data that do not depend on the declarer. */
struct nl_adv {
	json_t		*base[2];	/* ja, en: title, link, severity... */
	json_t		*alert;		/* for the alerts list, or NULL */
	json_t		*products;	/* borrowed: its product tags */
};

struct nl_state {
	json_t		*advisories;	/* borrowed from content */
	struct nl_adv	*adv;		/* the same, prepared */
	size_t		 nadv;
	json_t		*names;		/* product names */
	int		 year, month;
	long		 rule_month;	/* see newsletter_rule_index(); -1 */
	int		 max_adv, max_alerts;
	char		 list_id[256];
	char		 instance[9];
	struct skelcache *cache;	/* skeletons for sending; NULL: none */
};

/* Copy key from src to dst unless it is missing or an empty string: an
 * empty string is truthy in Mustache, so a section over it would render. */
static void
copy_set(json_t *dst, json_t *src, const char *key)
{
	json_t *v = json_object_get(src, key);

	if (v == NULL || json_is_null(v) ||
	    (json_is_string(v) && json_string_length(v) == 0))
		return;
	json_object_set(dst, key, v);
}

static const char *
sev_label(const char *sev, const char *locale)
{
	static const char *const ja[] = { "緊急", "重要", "警告", "注意" };
	static const char *const en[] = { "Critical", "High", "Medium", "Low" };
	int r = severity_rank(sev);

	if (r == 0)
		return NULL;
	return (strcmp(locale, "en") == 0 ? en : ja)[4 - r];
}

static int
has_tag(const char *csv, const char *tag)
{
	size_t n = strlen(tag);

	for (const char *p = csv; *p; ) {
		size_t k = strcspn(p, ",");

		if (k == n && strncmp(p, tag, n) == 0)
			return 1;
		p += k + (p[k] == ',');
	}
	return 0;
}

static const char *
pname(const struct nl_state *s, const char *tag, const char *locale)
{
	json_t *n = json_object_get(json_object_get(s->names, tag), locale);

	return json_is_string(n) ? json_string_value(n) : tag;
}

/* "Windows、Microsoft Office" (ja) / "Windows, Microsoft Office" (en). */
static void
join_names(const struct nl_state *s, struct buf *b, json_t *tags,
    const char *only, const char *locale)
{
	const char *sep = strcmp(locale, "en") == 0 ? ", " : "、";
	size_t i, k = 0;
	json_t *t;

	json_array_foreach(tags, i, t) {
		const char *tag = json_string_value(t);

		if (tag == NULL || (only != NULL && !has_tag(only, tag)))
			continue;
		buf_addstr(b, k++ ? sep : "");
		buf_addstr(b, pname(s, tag, locale));
	}
}

/* All of the declarer's products (tags "a,b"), named. */
static void
declared_names(const struct nl_state *s, struct buf *b, const char *prods,
    const char *locale)
{
	json_t *ptags = json_array();
	char *copy = xstrdup(prods), *tok, *save = NULL;

	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save))
		json_array_append_new(ptags, json_string(tok));
	free(copy);
	join_names(s, b, ptags, NULL, locale);
	json_decref(ptags);
}

/* The five_rules item for a period: months counted from year 0, so the n
 * items come in turn across the new year (with 5: 2026-10 item 2,
 * 2026-11 item 3 ... 2027-01 item 5, 2027-02 item 1).  n 0: the count of
 * months itself, which a campaign keeps ("rule_month"). */
size_t
newsletter_rule_index(int year, int month, size_t n)
{
	size_t m = (size_t)((long)year * 12 + month - 1);

	return n == 0 ? m : m % n;
}

/*
 * The template data for one declarer (docs/templates.md).  data: the
 * outbox row's frozen declarer fields.  Caller json_decref()s.
 */
static json_t *
context(const struct campaign_run *c, const struct nl_state *s, json_t *data,
    const char *unsub_url, const char *mailto, const char *token)
{
	const char *locale = json_string_value(json_object_get(data, "locale"));
	const char *prods = json_string_value(json_object_get(data, "products"));
	json_t *content = render_content(c->render, locale ? locale : "ja");
	json_t *ctx = json_object(), *list = json_array(), *alerts = json_array();
	json_t *match = json_object_get(data, "match"), *m, *rules;
	int star = (int)json_integer_value(json_object_get(data, "star"));
	size_t i, shown = 0, nmatch = 0, nalerts = 0;
	struct buf b = BUF_INIT(0);

	if (locale == NULL)
		locale = "ja";
	if (prods == NULL)
		prods = "";
	json_object_set(ctx, "org", json_object_get(data, "org"));
	if (json_is_string(json_object_get(data, "name")))
		json_object_set(ctx, "name", json_object_get(data, "name"));
	json_object_set_new(ctx, "star1", json_boolean(star != 2));
	json_object_set_new(ctx, "star2", json_boolean(star == 2));
	buf_addf(&b, "%04d-%02d", s->year, s->month);
	json_object_set_new(ctx, "period", json_string(buf_str(&b)));
	json_object_set_new(ctx, "period_year", json_integer(s->year));
	{
		static const char *const months[] = { "January", "February",
		    "March", "April", "May", "June", "July", "August",
		    "September", "October", "November", "December" };

		buf_reset(&b);
		if (strcmp(locale, "en") == 0)
			buf_addf(&b, "%s %d", months[s->month - 1], s->year);
		else
			buf_addf(&b, "%d年%d月", s->year, s->month);
		json_object_set_new(ctx, "period_label", json_string(buf_str(&b)));
	}
	json_object_set_new(ctx, "period_month", json_integer(s->month));

	json_array_foreach(match, i, m) {
		size_t idx = (size_t)json_integer_value(m);
		json_t *o;

		if (idx >= s->nadv)
			continue;
		nmatch++;
		if ((int)shown >= s->max_adv)
			continue;
		shown++;
		o = json_copy(s->adv[idx].base[strcmp(locale, "en") == 0]);
		buf_reset(&b);
		join_names(s, &b, s->adv[idx].products, prods, locale);
		if (b.len > 0)
			json_object_set_new(o, "products", json_string(buf_str(&b)));
		json_array_append_new(list, o);
	}
	nmatch += (size_t)json_integer_value(json_object_get(data, "more"));
	json_object_set_new(ctx, "advisories", list);
	json_object_set_new(ctx, "has_advisories", json_boolean(shown > 0));
	json_object_set_new(ctx, "advisory_count", json_integer((json_int_t)nmatch));
	if (nmatch > shown)
		json_object_set_new(ctx, "more_advisories",
		    json_integer((json_int_t)(nmatch - shown)));

	/* IPA's alerts of the month that did not match the declarer. */
	for (i = 0; i < s->nadv && (int)nalerts < s->max_alerts; i++) {
		int matched = 0;
		size_t k;
		json_t *x;

		if (s->adv[i].alert == NULL)
			continue;
		json_array_foreach(match, k, x)
			if ((size_t)json_integer_value(x) == i)
				matched = 1;
		json_array_foreach(json_object_get(data, "alerts"), k, x)
			if ((size_t)json_integer_value(x) == i)
				matched = 1;
		if (matched)
			continue;
		nalerts++;
		json_array_append(alerts, s->adv[i].alert);
	}
	json_object_set_new(ctx, "alerts", alerts);
	json_object_set_new(ctx, "has_alerts", json_boolean(nalerts > 0));

	buf_reset(&b);
	declared_names(s, &b, prods, locale);
	json_object_set_new(ctx, "products", json_string(buf_str(&b)));
	json_object_set_new(ctx, "has_products", json_boolean(*prods != '\0'));

	/* Months counted on across years (frozen in the campaign when it
	 * was built); a campaign built before that keeps the rule its
	 * first messages had: (month - 1) % n. */
	rules = json_object_get(content, "five_rules");
	if (json_array_size(rules) > 0)
		json_object_set(ctx, "rule", json_array_get(rules,
		    s->rule_month >= 0 ? (size_t)s->rule_month %
		    json_array_size(rules) : (size_t)(s->month - 1) %
		    json_array_size(rules)));
	if (star != 2 && json_object_get(content, "stepup") != NULL)
		json_object_set(ctx, "stepup", json_object_get(content, "stepup"));
	if (json_object_get(content, "sender") != NULL)
		json_object_set(ctx, "sender", json_object_get(content, "sender"));
	json_object_set_new(ctx, "unsubscribe_url", json_string(unsub_url));
	buf_reset(&b);
	buf_addf(&b, "mailto:%s?subject=unsubscribe%%20%s", mailto, token);
	json_object_set_new(ctx, "unsubscribe_mailto", json_string(buf_str(&b)));
	json_object_set_new(ctx, "list_name",
	    json_string(c->env->cfg->list_name));
	buf_release(&b);
	return ctx;
}

static void
release_advisories(struct nl_state *s)
{
	for (size_t i = 0; i < s->nadv; i++) {
		json_decref(s->adv[i].base[0]);
		json_decref(s->adv[i].base[1]);
		json_decref(s->adv[i].alert);
	}
	free(s->adv);
	s->adv = NULL;
	s->nadv = 0;
}

/* The declarer-independent template data of every advisory, per locale. */
static void
prepare_advisories(struct nl_state *s)
{
	static const char *const locs[2] = { "ja", "en" };
	struct buf b = BUF_INIT(0);
	json_t *a;
	size_t i;

	release_advisories(s);
	s->nadv = json_array_size(s->advisories);
	s->adv = xcalloc(s->nadv ? s->nadv : 1, sizeof(*s->adv));
	json_array_foreach(s->advisories, i, a) {
		const char *sev = json_string_value(json_object_get(a, "severity"));

		for (int l = 0; l < 2; l++) {
			json_t *o = json_object();
			const char *label;

			copy_set(o, a, "title");
			copy_set(o, a, "link");
			copy_set(o, a, "summary");
			copy_set(o, a, "published");
			copy_set(o, a, "published_ja");
			copy_set(o, a, "source");
			if ((label = sev_label(sev, locs[l])) != NULL) {
				json_object_set_new(o, "severity",
				    json_string(label));
				json_object_set_new(o, severity_rank(sev) == 4 ?
				    "severity_critical" : severity_rank(sev) == 3 ?
				    "severity_high" : severity_rank(sev) == 2 ?
				    "severity_medium" : "severity_low", json_true());
			}
			if (json_is_number(json_object_get(a, "cvss"))) {
				buf_reset(&b);
				buf_addf(&b, "%.1f", json_number_value(
				    json_object_get(a, "cvss")));
				json_object_set_new(o, "cvss",
				    json_string(buf_str(&b)));
			}
			if (json_string_length(json_object_get(a, "cves")) > 0) {
				const char *p = json_string_value(
				    json_object_get(a, "cves"));
				size_t shown = 0, more = 0, k;

				/* The first NL_CVES_SHOWN, and how many more
				 * (an Oracle or Microsoft roll-up names a
				 * hundred: the link has them all). */
				buf_reset(&b);
				for (; *p; p += k + (p[k] == ',')) {
					if ((k = strcspn(p, ",")) == 0)
						continue;
					if (shown == NL_CVES_SHOWN) {
						more++;
						continue;
					}
					if (shown++ > 0)
						buf_addstr(&b, ", ");
					buf_add(&b, p, k);
				}
				json_object_set_new(o, "cves",
				    json_string(buf_str(&b)));
				if (more > 0)
					json_object_set_new(o, "cves_more",
					    json_integer((json_int_t)more));
			}
			s->adv[i].base[l] = o;
		}
		s->adv[i].products = json_object_get(a, "products");
		if (json_is_true(json_object_get(a, "alert"))) {
			json_t *o = json_object();

			copy_set(o, a, "title");
			copy_set(o, a, "link");
			copy_set(o, a, "published");
			copy_set(o, a, "published_ja");
			s->adv[i].alert = o;
		}
	}
	buf_release(&b);
}

int
newsletter_prepare(struct campaign_run *c, struct err *e)
{
	struct nl_state *s = xcalloc(1, sizeof(*s));
	const char *period = json_string_value(json_object_get(c->content,
	    "period"));
	char *dump;
	int rc;

	c->state = s;
	if (period == NULL || date_parse_period(period, &s->year, &s->month,
	    e) < 0)
		return err_set(e, ERR_DB, "campaign '%s' has no period", c->name);
	s->rule_month = json_is_integer(json_object_get(c->content,
	    "rule_month")) ? (long)json_integer_value(json_object_get(
	    c->content, "rule_month")) : -1;
	s->advisories = json_object_get(c->content, "advisories");
	s->names = json_object_get(c->content, "product_names");
	prepare_advisories(s);
	s->max_adv = (int)json_integer_value(json_object_get(c->content,
	    "max_advisories"));
	s->max_alerts = (int)json_integer_value(json_object_get(c->content,
	    "max_alerts"));
	if (s->max_adv <= 0)
		s->max_adv = 20;
	campaign_list_id(c->env->cfg, s->list_id);
	snprintf(s->instance, sizeof(s->instance), "%s", c->env->instance);
	rc = render_new(&c->render, json_object_get(c->content, "templates"),
	    "newsletter", NULL, e);
	/* Skeletons mark their holes with U+0001: a campaign whose content
	 * holds one (no feed can: XML forbids it) renders every message
	 * whole. */
	dump = json_dumps(c->content, JSON_COMPACT);
	if (dump != NULL && strstr(dump, "\\u0001") == NULL)
		s->cache = skelcache_new(64);
	free(dump);
	return rc;
}


void
newsletter_release(struct campaign_run *c)
{
	if (c->state != NULL) {
		release_advisories(c->state);
		skelcache_free(((struct nl_state *)c->state)->cache);
	}
	free(c->state);
	c->state = NULL;
}

/*
 * The strings of the template data that differ between declarers who get
 * the same message otherwise: the holes of a skeleton (render.h).  Their
 * order is their hole number.
 */
enum {
	H_ORG, H_NAME, H_PRODUCTS, H_UNSUB_URL, H_UNSUB_MAILTO,
	H_ADV_PRODUCTS		/* + the shown advisory's position */
};

struct holes {
	const char	*v[RENDER_HOLES_MAX];
	size_t		 n;
	struct buf	 store[RENDER_HOLES_MAX];	/* the made strings */
	struct buf	 key;
};

static void
holes_release(struct holes *h)
{
	for (size_t i = 0; i < RENDER_HOLES_MAX; i++)
		buf_release(&h->store[i]);
	buf_release(&h->key);
}

/*
 * The holes' values of a declarer and the key of their skeleton: all of
 * the template data but the holes (locale, star, the advisories shown,
 * the count of the others, the alerts), and whether each hole is absent,
 * empty or a string (a section over it renders or not).  What context()
 * makes, the same way.  Returns 0, or 1 when this data has too many holes.
 */
static int
holes_of(const struct nl_state *s, json_t *data, const char *url,
    const char *mailto, const char *token, struct holes *h)
{
	const char *locale = json_string_value(json_object_get(data, "locale"));
	const char *prods = json_string_value(json_object_get(data, "products"));
	json_t *match = json_object_get(data, "match"), *m;
	char *dump;
	size_t i, shown = 0;

	if (locale == NULL)
		locale = "ja";
	if (prods == NULL)
		prods = "";
	memset(h->v, 0, sizeof(h->v));
	h->v[H_ORG] = json_string_value(json_object_get(data, "org"));
	h->v[H_NAME] = json_string_value(json_object_get(data, "name"));
	buf_reset(&h->store[H_PRODUCTS]);
	buf_addstr(&h->store[H_PRODUCTS], "");
	declared_names(s, &h->store[H_PRODUCTS], prods, locale);
	h->v[H_PRODUCTS] = buf_str(&h->store[H_PRODUCTS]);
	h->v[H_UNSUB_URL] = url;
	buf_reset(&h->store[H_UNSUB_MAILTO]);
	buf_addf(&h->store[H_UNSUB_MAILTO], "mailto:%s?subject=unsubscribe%%20%s",
	    mailto, token);
	h->v[H_UNSUB_MAILTO] = buf_str(&h->store[H_UNSUB_MAILTO]);
	h->n = H_ADV_PRODUCTS;
	json_array_foreach(match, i, m) {
		size_t idx = (size_t)json_integer_value(m);
		struct buf *b;

		if (idx >= s->nadv || (int)shown >= s->max_adv)
			continue;
		if (h->n >= RENDER_HOLES_MAX)
			return 1;
		b = &h->store[h->n];
		buf_reset(b);
		join_names(s, b, s->adv[idx].products, prods, locale);
		/* context() leaves an empty list out. */
		h->v[h->n++] = b->len > 0 ? buf_str(b) : NULL;
		shown++;
	}
	buf_reset(&h->key);
	buf_addf(&h->key, "%s|%lld|", locale,
	    (long long)json_integer_value(json_object_get(data, "star")));
	dump = json_dumps(match, JSON_COMPACT);
	buf_addf(&h->key, "%s|%lld|", dump ? dump : "",
	    (long long)json_integer_value(json_object_get(data, "more")));
	free(dump);
	dump = json_dumps(json_object_get(data, "alerts"), JSON_COMPACT |
	    JSON_ENCODE_ANY);
	buf_addf(&h->key, "%s|%d|", dump ? dump : "", *prods != '\0');
	free(dump);
	for (i = 0; i < h->n; i++)
		buf_addch(&h->key, h->v[i] == NULL ? 'a' : *h->v[i] == '\0' ?
		    'e' : 'h');
	return 0;
}

struct make_arg {
	const struct campaign_run	*c;
	const struct nl_state		*s;
	json_t				*data;
	const struct render_mail	*m;
	const struct holes		*h;
};

/* The skeleton for the declarer of data, whose holes are h. */
static struct render_skel *
make_skel(void *arg)
{
	struct make_arg *a = arg;
	const struct holes *h = a->h;
	char mark[RENDER_HOLES_MAX][RENDER_HOLE_LEN];
	struct render_skel *k = NULL;
	struct render_mail m2 = *a->m;
	struct err e = ERR_INIT;
	json_t *d = json_copy(a->data), *ctx, *list, *o;
	size_t i, j = H_ADV_PRODUCTS;

	for (i = 0; i < h->n; i++)
		render_hole((unsigned)i, mark[i]);
	/* A hole that is absent or empty stays as it is: the key says so. */
#define HOLE(i)	(h->v[i] != NULL && *h->v[i] != '\0')
	if (HOLE(H_ORG))
		json_object_set_new(d, "org", json_string(mark[H_ORG]));
	if (HOLE(H_NAME))
		json_object_set_new(d, "name", json_string(mark[H_NAME]));
	ctx = context(a->c, a->s, d, HOLE(H_UNSUB_URL) ? mark[H_UNSUB_URL] :
	    h->v[H_UNSUB_URL], a->c->env->cfg->unsub_mailto,
	    json_string_value(json_object_get(a->data, "token")));
	if (HOLE(H_UNSUB_MAILTO))
		json_object_set_new(ctx, "unsubscribe_mailto",
		    json_string(mark[H_UNSUB_MAILTO]));
	if (HOLE(H_PRODUCTS))
		json_object_set_new(ctx, "products",
		    json_string(mark[H_PRODUCTS]));
	list = json_object_get(ctx, "advisories");
	json_array_foreach(list, i, o) {
		if (j < h->n && HOLE(j))
			json_object_set_new(o, "products", json_string(mark[j]));
		j++;
	}
#undef HOLE
	m2.ctx = ctx;
	if (j == h->n && render_skel_new(a->c->render, &m2, &k, &e) < 0)
		k = NULL;
	json_decref(ctx);
	json_decref(d);
	return k;
}

/*
 * The message from the skeleton of the declarer's key, made on first use:
 * 0, 1 when it must be rendered whole, or -ERR_*.
 */
static int
render_skel_data(const struct campaign_run *c, const struct nl_state *s,
    json_t *data, const struct render_mail *m, const struct render_env *env,
    struct buf *out, struct err *e)
{
	struct holes h;
	struct make_arg a = { c, s, data, m, &h };
	int rc = 1;

	memset(&h, 0, sizeof(h));
	if (holes_of(s, data, m->unsub_url, c->env->cfg->unsub_mailto,
	    m->unsub_token, &h) == 0)
		rc = skelcache_message(s->cache, buf_str(&h.key), make_skel, &a,
		    env, m, h.v, h.n, out, e);
	holes_release(&h);
	return rc;
}

static int
render_data(const struct campaign_run *c, const struct nl_state *s,
    json_t *data, const char *rcpt, long long subscriber_id, time_t date,
    int strict, struct buf *out, struct err *e)
{
	const struct config *cfg = c->env->cfg;
	const char *token = json_string_value(json_object_get(data, "token"));
	const char *org = json_string_value(json_object_get(data, "org"));
	const char *name = json_string_value(json_object_get(data, "name"));
	const char *locale = json_string_value(json_object_get(data, "locale"));
	struct buf mid = BUF_INIT(512), url = BUF_INIT(2048);
	struct render_mail m;
	struct render_env env = { cfg->from_name, cfg->from_addr,
	    cfg->reply_to, cfg->list_id, cfg->list_name, c->env->msg_flags,
	    cfg->from_name_en };
	json_t *ctx;
	size_t start = out->len;
	int rc = 1;

	if (token == NULL || org == NULL)
		return err_set(e, ERR_DB, "outbox data for '%s' lacks token "
		    "or org", rcpt);
	campaign_message_id(&mid, c->name, subscriber_id, NULL, s->instance,
	    campaign_mid_domain(c), c->env->keys);
	buf_addf(&url, "%s%s", cfg->unsub_base_url, token);
	memset(&m, 0, sizeof(m));
	m.locale = locale ? locale : "ja";
	/* The contact's name if known, else the organisation's. */
	m.to_name = name ? name : org;
	m.to_addr = rcpt;
	m.message_id = buf_str(&mid);
	m.date = date;
	m.unsub_url = buf_str(&url);
	m.unsub_mailto = cfg->unsub_mailto;
	m.unsub_token = token;
	m.strict = strict;
	if (!strict && s->cache != NULL)
		rc = render_skel_data(c, s, data, &m, &env, out, e);
	if (rc != 0 || cfg->check_skeletons) {
		ctx = context(c, s, data, buf_str(&url), cfg->unsub_mailto, token);
		m.ctx = ctx;
		rc = render_check(c->render, &env, &m, rc, cfg->check_skeletons,
		    out, start, e);
		json_decref(ctx);
	}
	buf_release(&mid);
	buf_release(&url);
	return rc;
}

int
newsletter_render_row(const struct campaign_run *c,
    const struct outbox_row *row, struct buf *out, struct err *e)
{
	json_error_t jerr;
	json_t *data = json_loads(row->data, 0, &jerr);
	time_t date;
	int rc;

	if (data == NULL)
		return err_set(e, ERR_DB, "outbox row %lld: data is not JSON: %s",
		    row->id, jerr.text);
	/* Date: when the message was queued, so a re-send is identical. */
	if (date_parse_timestamp(row->queued_at, &date, NULL) < 0)
		date = 0;
	rc = render_data(c, c->state, data, row->rcpt, row->subscriber_id, date,
	    0, out, e);
	json_decref(data);
	return rc;
}

/* --- build -------------------------------------------------------------- */

/*
 * Mail that leaves for real with the sender details still the shipped
 * placeholders: the law on commercial email (特定電子メール法) wants the
 * sender's name, address and contact in every message.  A warning, not a
 * refusal: the local transports are for trying things out.
 */
static void
warn_placeholders(const struct config *cfg, json_t *templates)
{
	static const char *const locs[] = { "ja", "en" };

	if (cfg->nrelays == 0)
		return;
	for (size_t i = 0; i < 2; i++) {
		json_t *sender = json_object_get(json_object_get(json_object_get(
		    templates, locs[i]), "content"), "sender");
		char *text = json_dumps(sender, JSON_COMPACT);

		if (text != NULL && (strstr(text, "運営団体") != NULL ||
		    strstr(text, "operator's name") != NULL ||
		    strstr(text, "example.jp\"") != NULL)) {
			log_warnx("the sender details in templates/%s/content.json "
			    "are still the placeholders; put your organisation's "
			    "name, address and contact there (the law on "
			    "commercial email requires them in every message)",
			    locs[i]);
		}
		free(text);
	}
}

/* The declarer's side of a message, frozen at queue time. */
static json_t *
row_data(const struct subscriber *s, json_t *match, size_t more,
    json_t *alerts, const char *token)
{
	json_t *d = json_object();

	json_object_set_new(d, "org", json_string(s->org));
	if (s->name != NULL)
		json_object_set_new(d, "name", json_string(s->name));
	json_object_set_new(d, "star", json_integer(s->star));
	json_object_set_new(d, "locale", json_string(s->locale));
	json_object_set_new(d, "products", json_string(s->products));
	json_object_set_new(d, "match", match);
	if (more > 0)
		json_object_set_new(d, "more", json_integer((json_int_t)more));
	if (json_array_size(alerts) > 0)
		json_object_set(d, "alerts", alerts);
	json_object_set_new(d, "token", json_string(token));
	return d;
}

/* Per advisory of the snapshot, its product tags as a bit set of
 * dictionary indexes, words of 64 bits each (a dictionary may hold any
 * number of products). */
struct masks {
	uint64_t	*adv;	/* n * words: advisory i's set at i * words */
	char		*alert;	/* per advisory: from the alert feed */
	size_t		 n;
	size_t		 words;
};

static size_t
tag_words(const struct products *dict)
{
	return dict->n / 64 + 1;
}

/* The set of the tags in csv into bits (tag_words() words). */
static void
tag_bits(const struct products *dict, const char *csv, uint64_t *bits)
{
	memset(bits, 0, tag_words(dict) * sizeof(*bits));
	for (size_t i = 0; i < dict->n; i++)
		if (has_tag(csv, dict->v[i].tag))
			bits[i / 64] |= (uint64_t)1 << (i % 64);
}

static int
bits_meet(const uint64_t *a, const uint64_t *b, size_t words)
{
	for (size_t w = 0; w < words; w++)
		if (a[w] & b[w])
			return 1;
	return 0;
}

/*
 * Check the templates against a declarer with every optional field
 * present, strictly: a misspelt name fails here, with its file:line:col,
 * before anything is queued — not in the middle of sending.
 */
static int
probe(struct campaign_run *c, time_t now, struct err *e)
{
	static const char *const locs[] = { "ja", "en" };
	struct nl_state fake = *(const struct nl_state *)c->state;
	struct buf out = BUF_INIT(0);
	json_t *advs = json_array(), *a, *match = json_array();
	int rc = 0;

	/* Two advisories with every field (the first naming more CVE ids
	 * than are listed), one also an IPA alert, and a third, unmatched
	 * alert. */
	for (int i = 0; i < 3; i++) {
		a = json_pack("{s:s, s:s, s:s, s:s, s:s, s:f, s:s, s:s, s:[s], s:s, "
		    "s:b}", "title", "Probe", "link", "https://example.jp/a",
		    "summary", "s", "published", "2026-10-01", "published_ja",
		    "2026年10月1日", "cvss", 9.8, "severity",
		    i == 0 ? "critical" : "high", "cves", i == 0 ?
		    "CVE-2026-0001,CVE-2026-0002,CVE-2026-0003,CVE-2026-0004,"
		    "CVE-2026-0005,CVE-2026-0006" : "CVE-2026-0001",
		    "products", "windows", "source", "JVN", "alert", i > 0);
		json_array_append_new(advs, a);
	}
	json_array_append_new(match, json_integer(0));
	json_array_append_new(match, json_integer(1));
	fake.cache = NULL;	/* strict rendering, never from a skeleton */
	fake.advisories = advs;
	fake.adv = NULL;
	fake.nadv = 0;
	prepare_advisories(&fake);
	fake.max_adv = 1;	/* so "more_advisories" is set too */
	for (size_t l = 0; l < 2 && rc == 0; l++) {
		for (int star = 1; star <= 2 && rc == 0; star++) {
			json_t *d = json_object();

			json_object_set_new(d, "org", json_string("株式会社サンプル"));
			json_object_set_new(d, "name", json_string("山田 太郎"));
			json_object_set_new(d, "star", json_integer(star));
			json_object_set_new(d, "locale", json_string(locs[l]));
			json_object_set_new(d, "products",
			    json_string("windows,office"));
			json_object_set(d, "match", match);
			json_object_set_new(d, "token", json_string(
			    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
			buf_reset(&out);
			rc = render_data(c, &fake, d, "probe@example.jp", 1, now,
			    1, &out, e);
			json_decref(d);
		}
	}
	json_decref(match);
	release_advisories(&fake);
	json_decref(advs);
	buf_release(&out);
	return rc;
}

int
newsletter_build(struct db *db, const struct newsletter_opts *o, time_t now,
    struct newsletter_stats *st, struct err *e)
{
	struct campaign_env env;
	struct campaign_run *run = NULL;
	struct masks mk = { NULL, NULL, 0, 0 };
	uint64_t *mine = NULL;
	char name[32], period[8], instance[9], token[TOKEN_LEN + 1];
	json_t *content = NULL, *snap = NULL, *advs;
	sqlite3_stmt *q = NULL;
	struct subscriber s;
	int rc, step, cur_y, cur_m, any_supp;
	long cur_day;
	size_t i;

	memset(st, 0, sizeof(*st));
	memset(&s, 0, sizeof(s));	/* filled by sub_get(); freed at out */
	newsletter_campaign_name(o->year, o->month, name);
	snprintf(period, sizeof(period), "%04d-%02d", o->year, o->month);
	cur_day = date_jst_day(now);
	{
		int d;

		date_civil(cur_day, &cur_y, &cur_m, &d);
	}
	/* A newsletter reports a month that is over: built earlier, it
	 * would miss the rest of the month for good (it is built once). */
	if (o->year * 12 + o->month >= cur_y * 12 + cur_m)
		return err_set(e, ERR_INVAL, "period %s is not over yet (today "
		    "is %04d-%02d in Japan); build it from the 1st of the next "
		    "month", period, cur_y, cur_m);
	if ((rc = campaign_instance(db, instance, e)) < 0)
		return rc;

	st->campaign_id = campaign_find(db, name, &content, e);
	if (st->campaign_id < 0)
		return (int)st->campaign_id;
	if (st->campaign_id == 0) {
		/* First build: freeze what the campaign reports and says. */
		content = json_object();
		json_object_set_new(content, "kind", json_string("newsletter"));
		json_object_set_new(content, "period", json_string(period));
		json_object_set_new(content, "rule_month", json_integer(
		    (json_int_t)newsletter_rule_index(o->year, o->month, 0)));
		json_object_set_new(content, "message_id_domain",
		    json_string(o->cfg->message_id_domain));
		advs = json_array();
		if ((rc = collect(db, o->year, o->month, advs, &st->alerts,
		    e)) < 0) {
			json_decref(advs);
			goto out;
		}
		json_object_set_new(content, "advisories", advs);
		json_object_set_new(content, "product_names",
		    product_names(o->dict));
		json_object_set_new(content, "max_advisories",
		    json_integer(o->max_advisories));
		json_object_set_new(content, "max_alerts",
		    json_integer(o->max_alerts));
		if ((rc = render_snapshot(o->templates_dir, &snap, e)) < 0)
			goto out;
		json_object_set_new(content, "templates", snap);
		snap = NULL;
	}
	advs = json_object_get(content, "advisories");
	st->advisories = json_array_size(advs);
	warn_placeholders(o->cfg, json_object_get(content, "templates"));

	/* Compile and check the templates before anything is queued. */
	memset(&env, 0, sizeof(env));
	env.cfg = o->cfg;
	env.instance = instance;
	env.keys = o->keys;
	run = xcalloc(1, sizeof(*run));
	run->env = &env;
	run->content = json_incref(content);
	snprintf(run->name, sizeof(run->name), "%s", name);
	snprintf(run->kind, sizeof(run->kind), "newsletter");
	if ((rc = newsletter_prepare(run, e)) < 0 || (rc = probe(run, now, e)) < 0)
		goto out;

	if (st->campaign_id == 0) {
		st->campaign_id = campaign_create(db, "newsletter", name, period,
		    content, now, e);
		if (st->campaign_id < 0) {
			rc = (int)st->campaign_id;
			goto out;
		}
		st->created = 1;
	} else {
		json_t *a;

		json_array_foreach(advs, i, a)
			st->alerts += json_is_true(json_object_get(a, "alert"));
	}

	/* Each advisory's products as bits of the dictionary's order. */
	mk.n = json_array_size(advs);
	mk.words = tag_words(o->dict);
	mk.adv = xcalloc((mk.n ? mk.n : 1) * mk.words, sizeof(*mk.adv));
	mine = xcalloc(mk.words, sizeof(*mine));
	mk.alert = xcalloc(mk.n ? mk.n : 1, 1);
	for (i = 0; i < mk.n; i++) {
		mk.alert[i] = json_is_true(json_object_get(json_array_get(advs,
		    i), "alert"));
		json_t *tags = json_object_get(json_array_get(advs, i), "products"), *t;
		size_t k;

		json_array_foreach(tags, k, t)
			for (size_t d = 0; d < o->dict->n; d++)
				if (strcmp(o->dict->v[d].tag,
				    json_string_value(t) ? json_string_value(t) : "") == 0)
					mk.adv[i * mk.words + d / 64] |=
					    (uint64_t)1 << (d % 64);
	}

	if ((any_supp = sub_any_suppressed(db, e)) < 0) {
		rc = any_supp;
		goto out;
	}
	/*
	 * Active declarers not queued for this campaign yet, or whose
	 * message was cancelled unsent (they unsubscribed or bounced, and
	 * are active again): a rebuild queues it again.  Not one held
	 * after a crash when it was cancelled: it may have gone out
	 * (outbox_requeue()).  Queued in the
	 * order of their products: declarers who get the same message but
	 * for their names come one after the other, so that the sender
	 * renders it once for them all (render.h, "skeletons").
	 */
	q = db_prepare(db, "SELECT s.email FROM subscriber s WHERE s.status = "
	    "'active' AND (?2 IS NULL OR s.email = ?2) AND NOT EXISTS (SELECT 1 "
	    "FROM outbox o WHERE o.campaign_id = ?1 AND o.subscriber_id = s.id "
	    "AND o.item = '' AND (o.state != 'cancelled' OR "
	    "coalesce(o.last_error, '') = '" OUTBOX_HELD_ERROR "')) "
	    "ORDER BY s.products, s.star, s.locale, s.id", e);
	if (q == NULL) {
		rc = -ERR_DB;
		goto out;
	}
	sqlite3_bind_int64(q, 1, st->campaign_id);
	db_bind_text(q, 2, o->only_email);
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		const char *email = (const char *)sqlite3_column_text(q, 0);
		json_t *match, *malerts, *data;
		size_t more;
		char *text;

		if ((rc = sub_get(db, email, &s, e)) < 0)
			goto out;
		if (any_supp && sub_suppressed(db, s.email, NULL, e) == 1) {
			st->suppressed++;
			continue;
		}
		/* The snapshot is sorted most severe first: keep the first
		 * max_advisories matches, count the rest, and note matched
		 * alerts beyond them (so they are not listed as unmatched). */
		tag_bits(o->dict, s.products, mine);
		match = json_array();
		malerts = json_array();
		more = 0;
		for (i = 0; i < mk.n; i++) {
			if (!bits_meet(mk.adv + i * mk.words, mine, mk.words))
				continue;
			if ((int)json_array_size(match) < o->max_advisories)
				json_array_append_new(match,
				    json_integer((json_int_t)i));
			else {
				more++;
				if (mk.alert[i])
					json_array_append_new(malerts,
					    json_integer((json_int_t)i));
			}
		}
		if (json_array_size(match) > 0)
			st->matched++;
		if ((rc = token_make(o->keys, s.id, run->state ?
		    ((struct nl_state *)run->state)->list_id : "", token, e)) < 0) {
			json_decref(match);
			json_decref(malerts);
			goto out;
		}
		data = row_data(&s, match, more, malerts, token);
		json_decref(malerts);
		text = json_dumps(data, JSON_COMPACT);
		json_decref(data);
		rc = outbox_queue(db, st->campaign_id, s.id, "", s.email, text,
		    now, e);
		if (rc == 0)	/* there, cancelled: see the query */
			rc = outbox_requeue(db, st->campaign_id, s.id, "",
			    s.email, text, now, e);
		free(text);
		if (rc < 0)
			goto out;
		st->queued += rc == 1;
	}
	if (step != SQLITE_DONE) {
		rc = db_error(db, e, "list declarers");
		goto out;
	}
	{
		sqlite3_stmt *c = db_stmt(db, "SELECT count(*) FROM outbox WHERE "
		    "campaign_id = ? AND item = ''", e);

		if (c != NULL) {
			sqlite3_bind_int64(c, 1, st->campaign_id);
			if (sqlite3_step(c) == SQLITE_ROW)
				st->already = (size_t)sqlite3_column_int64(c, 0) -
				    st->queued;
			sqlite3_reset(c);
		}
	}
	rc = 0;
out:
	sqlite3_finalize(q);
	sub_release(&s);
	free(mk.adv);
	free(mk.alert);
	free(mine);
	campaign_run_free(run);
	json_decref(content);
	json_decref(snap);
	return rc;
}
