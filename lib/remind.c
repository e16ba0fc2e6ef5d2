/*
 * remind — self-diagnosis reminders.  See remind.h for the rules.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "campaign.h"
#include "config.h"
#include "date.h"
#include "db.h"
#include "err.h"
#include "ical.h"
#include "log.h"
#include "msg.h"
#include "outbox.h"
#include "remind.h"
#include "render.h"
#include "skelcache.h"
#include "subscriber.h"
#include "token.h"
#include "xalloc.h"

#define ICS_TYPE	"text/calendar; method=PUBLISH; charset=UTF-8"
#define ICS_MAX		(64 * 1024)
#define PART_MAX	(16 * 1024)

/* --- the rules (pure) --------------------------------------------------- */

void
remind_rules_from_config(const struct config *cfg, struct remind_rules *r)
{
	memset(r, 0, sizeof(*r));
	r->interval = cfg->rm_interval;
	r->stepup = cfg->rm_stepup;
	for (size_t i = 0; i < cfg->rm_noffsets && i < REMIND_MAX_OFFSETS; i++)
		r->offsets[r->noffsets++] = cfg->rm_offsets[i];
	r->overdue_repeats = cfg->rm_overdue;
	r->catch_up = cfg->rm_catch_up;
}

size_t
remind_moments(const struct remind_rules *r, const struct remind_cycle *c,
    struct remind_moment *out)
{
	int repeats = r->overdue_repeats;
	size_t n = 0;

	for (size_t i = 0; i < r->noffsets && i < REMIND_MAX_OFFSETS; i++) {
		long day = c->due - r->offsets[i];
		size_t k;

		/* A reminder before the self-diagnosis it counts from (a
		 * short interval with a long offset) would make no sense. */
		if (r->offsets[i] < 0 || day <= c->anchor)
			continue;
		for (k = 0; k < n; k++)
			if (out[k].offset == r->offsets[i])
				break;
		if (k < n)
			continue;	/* the same offset given twice */
		out[n].day = day;
		out[n].offset = r->offsets[i];
		n++;
	}
	if (repeats > REMIND_MAX_OVERDUE)
		repeats = REMIND_MAX_OVERDUE;
	for (int k = 1; k <= repeats; k++) {
		out[n].day = date_add_months(c->due, k);
		out[n].offset = (int)(c->due - out[n].day);
		n++;
	}
	/* Earliest first (offsets may come in any order). */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && out[j - 1].day > out[j].day; j--) {
			struct remind_moment t = out[j];

			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return n;
}

/* The day of the cycle's last moment (its due date if it has none). */
static long
cycle_end(const struct remind_rules *r, const struct remind_cycle *c)
{
	struct remind_moment m[REMIND_MAX_MOMENTS];
	size_t n = remind_moments(r, c, m);

	return n > 0 ? m[n - 1].day : c->due;
}

int
remind_cycle(const struct remind_rules *r, int star, long declared,
    long assessed, long today, struct remind_cycle *c)
{
	int interval = r->interval > 0 ? r->interval : 12;
	int first;

	memset(c, 0, sizeof(*c));
	if (assessed != SUB_NODATE) {
		c->kind = REMIND_REASSESS;
		c->anchor = assessed;
		first = interval;
	} else if (declared != SUB_NODATE && star == 2) {
		/* ★★ is declared after a self-diagnosis. */
		c->kind = REMIND_REASSESS;
		c->anchor = declared;
		first = interval;
	} else if (declared != SUB_NODATE) {
		c->kind = REMIND_STEPUP;
		c->anchor = declared;
		first = r->stepup > 0 ? r->stepup : 6;
	} else
		return 0;
	/* Months from the anchor each time, not from the previous due
	 * date, so that month-end clamping never drifts (Jan 31 -> Feb 28
	 * -> Mar 31, not Mar 28). */
	for (c->n = 1; ; c->n++) {
		c->due = date_add_months(c->anchor, first +
		    (c->n - 1) * interval);
		if (cycle_end(r, c) + r->catch_up >= today)
			break;
	}
	return 1;
}

void
remind_plan(const struct remind_rules *r, const struct remind_moment *m,
    size_t n, const int *done, long today, enum remind_action *out)
{
	long last_done = LONG_MIN;
	size_t pick = n;

	for (size_t i = 0; i < n; i++)
		if (done[i] && m[i].day > last_done)
			last_done = m[i].day;
	for (size_t i = 0; i < n; i++) {
		if (done[i])
			out[i] = REMIND_DONE;
		else if (m[i].day > today)
			out[i] = REMIND_WAIT;
		else if (today - m[i].day > r->catch_up)
			out[i] = REMIND_SKIP_LATE;
		else if (m[i].day < last_done)
			out[i] = REMIND_SKIP_SUPERSEDED;
		else {
			/* Moments are in time order: a later one wins. */
			if (pick < n)
				out[pick] = REMIND_SKIP_SUPERSEDED;
			out[i] = REMIND_QUEUE;
			pick = i;
		}
	}
}

enum remind_pos
remind_position(long due, long today, int *days)
{
	if (today < due) {
		*days = (int)(due - today);
		return REMIND_BEFORE;
	}
	*days = (int)(today - due);
	return today == due ? REMIND_ON_THE_DAY : REMIND_OVERDUE;
}

/* 0 Sunday .. 6 Saturday; day 0 (1970-01-01) was a Thursday. */
static int
weekday(long day)
{
	return (int)(((day % 7) + 7 + 4) % 7);
}

long
remind_slot_day(long due, long today)
{
	long d;

	if (today <= due)
		return due;
	for (d = today + 1; weekday(d) == 0 || weekday(d) == 6; d++)
		;
	return d;
}

static const char *
en_month(int m)
{
	static const char *const en_mon[] = { "January", "February", "March",
	    "April", "May", "June", "July", "August", "September", "October",
	    "November", "December" };

	return m >= 1 && m <= 12 ? en_mon[m - 1] : "?";
}

void
remind_date_label(long day, const char *locale, char *out)
{
	static const char *const ja_wd[] = { "日", "月", "火", "水", "木",
	    "金", "土" };
	static const char *const en_wd[] = { "Sunday", "Monday", "Tuesday",
	    "Wednesday", "Thursday", "Friday", "Saturday" };
	int y, m, d;

	if (locale != NULL && strcmp(locale, "en") == 0) {
		date_civil(day, &y, &m, &d);
		snprintf(out, 64, "%s, %d %s %d", en_wd[weekday(day)], d,
		    en_month(m), y);
	} else {
		date_format_ja(day, out);
		snprintf(out + strlen(out), 64 - strlen(out), "（%s）",
		    ja_wd[weekday(day)]);
	}
}

void
remind_campaign_name(long day, char *out)
{
	char d[11];

	date_format(day, d);
	snprintf(out, 32, "reminder-%s", d);
}

static const char *
kind_name(enum remind_kind k)
{
	return k == REMIND_STEPUP ? "stepup" : "reassess";
}

/* --- one message --------------------------------------------------------- */

struct rm_state {
	char		 list_id[256];
	char		 instance[9];
	const char	*assessment_url;	/* borrowed from content */
	int		 last_label;	/* last_assessed as a date label */
	struct skelcache *cache;	/* skeletons for sending; NULL: none */
};

/* What a reminder row freezes about the declarer and the event. */
struct rm_row {
	const char		*org;
	const char		*name;		/* NULL: none */
	const char		*locale;
	const char		*token;
	const char		*uid;
	int			 star;
	enum remind_kind	 kind;
	long			 due;
	long			 today;		/* the day it is queued */
	long			 last_assessed;	/* SUB_NODATE: none */
	long			 slot;		/* day of the calendar slot */
	int			 hour, minute;
	int			 offset;
	int			 sequence;
};

static json_t *
row_data(const struct rm_row *r)
{
	json_t *d = json_object();
	char day[11], hm[8];

	json_object_set_new(d, "org", json_string(r->org));
	if (r->name != NULL)
		json_object_set_new(d, "name", json_string(r->name));
	json_object_set_new(d, "star", json_integer(r->star));
	json_object_set_new(d, "locale", json_string(r->locale));
	json_object_set_new(d, "token", json_string(r->token));
	json_object_set_new(d, "kind", json_string(kind_name(r->kind)));
	date_format(r->due, day);
	json_object_set_new(d, "due", json_string(day));
	json_object_set_new(d, "offset", json_integer(r->offset));
	date_format(r->today, day);
	json_object_set_new(d, "day", json_string(day));
	if (r->last_assessed != SUB_NODATE) {
		date_format(r->last_assessed, day);
		json_object_set_new(d, "last_assessed", json_string(day));
	}
	json_object_set_new(d, "sequence", json_integer(r->sequence));
	json_object_set_new(d, "uid", json_string(r->uid));
	date_format(r->slot, day);
	json_object_set_new(d, "slot", json_string(day));
	snprintf(hm, sizeof(hm), "%02d:%02d", r->hour, r->minute);
	json_object_set_new(d, "slot_time", json_string(hm));
	return d;
}

static int
data_date(json_t *data, const char *key, long *out)
{
	const char *s = json_string_value(json_object_get(data, key));

	return s != NULL && date_parse(s, out, NULL) == 0 ? 0 : -1;
}

/*
 * Read back what row_data() froze; -ERR_DB if the stored row is not one
 * (it came from our own database, but a damaged row must not crash the
 * sender).  Strings are borrowed from data.
 */
static int
row_parse(json_t *data, struct rm_row *r, long long row_id, struct err *e)
{
	const char *kind = json_string_value(json_object_get(data, "kind"));
	const char *hm = json_string_value(json_object_get(data, "slot_time"));

	memset(r, 0, sizeof(*r));
	r->org = json_string_value(json_object_get(data, "org"));
	r->name = json_string_value(json_object_get(data, "name"));
	r->locale = json_string_value(json_object_get(data, "locale"));
	r->token = json_string_value(json_object_get(data, "token"));
	r->uid = json_string_value(json_object_get(data, "uid"));
	r->star = (int)json_integer_value(json_object_get(data, "star"));
	r->offset = (int)json_integer_value(json_object_get(data, "offset"));
	r->sequence = (int)json_integer_value(json_object_get(data,
	    "sequence"));
	r->kind = kind != NULL && strcmp(kind, "stepup") == 0 ? REMIND_STEPUP :
	    REMIND_REASSESS;
	if (data_date(data, "last_assessed", &r->last_assessed) < 0)
		r->last_assessed = SUB_NODATE;
	if (r->org == NULL || r->token == NULL || r->uid == NULL ||
	    kind == NULL || hm == NULL ||
	    sscanf(hm, "%2d:%2d", &r->hour, &r->minute) != 2 ||
	    data_date(data, "due", &r->due) < 0 ||
	    data_date(data, "day", &r->today) < 0 ||
	    data_date(data, "slot", &r->slot) < 0)
		return err_set(e, ERR_DB, "outbox row %lld: reminder data is "
		    "incomplete", row_id);
	if (r->locale == NULL)
		r->locale = "ja";
	return 0;
}

/* The template data of one reminder (docs/templates.md, Reminder
 * context).  Caller json_decref()s. */
static json_t *
context(const struct campaign_run *c, const struct rm_state *s,
    const struct rm_row *r, const char *unsub_url, const char *mailto)
{
	json_t *content = render_content(c->render, r->locale);
	json_t *ctx = json_object();
	enum remind_pos pos;
	char label[64], slot[96], day[11], hm[8];
	int days;

	json_object_set_new(ctx, "org", json_string(r->org));
	if (r->name != NULL)
		json_object_set_new(ctx, "name", json_string(r->name));
	json_object_set_new(ctx, "star1", json_boolean(r->star != 2));
	json_object_set_new(ctx, "star2", json_boolean(r->star == 2));
	json_object_set_new(ctx, "kind_reassess",
	    json_boolean(r->kind == REMIND_REASSESS));
	json_object_set_new(ctx, "kind_stepup",
	    json_boolean(r->kind == REMIND_STEPUP));
	date_format(r->due, day);
	json_object_set_new(ctx, "due", json_string(day));
	remind_date_label(r->due, r->locale, label);
	json_object_set_new(ctx, "due_label", json_string(label));
	pos = remind_position(r->due, r->today, &days);
	json_object_set_new(ctx, "before", json_boolean(pos == REMIND_BEFORE));
	json_object_set_new(ctx, "on_the_day",
	    json_boolean(pos == REMIND_ON_THE_DAY));
	json_object_set_new(ctx, "overdue", json_boolean(pos == REMIND_OVERDUE));
	if (pos == REMIND_OVERDUE)
		json_object_set_new(ctx, "days_overdue", json_integer(days));
	else
		json_object_set_new(ctx, "days_before", json_integer(days));
	/* As the reader's language writes a date, like due_label but
	 * without the weekday: 2025年12月1日 / 1 December 2025.  A campaign
	 * built before that (no "last_assessed_label" in its content) keeps
	 * 2025-12-01, what its first messages said. */
	if (r->last_assessed != SUB_NODATE && !s->last_label) {
		date_format(r->last_assessed, day);
		json_object_set_new(ctx, "last_assessed", json_string(day));
	} else if (r->last_assessed != SUB_NODATE) {
		int y, m, d;

		date_civil(r->last_assessed, &y, &m, &d);
		if (strcmp(r->locale, "en") == 0)
			snprintf(label, sizeof(label), "%d %s %d", d,
			    en_month(m), y);
		else
			date_format_ja(r->last_assessed, label);
		json_object_set_new(ctx, "last_assessed", json_string(label));
	}
	json_object_set_new(ctx, "assessment_url",
	    json_string(s->assessment_url));
	snprintf(hm, sizeof(hm), "%02d:%02d", r->hour, r->minute);
	json_object_set_new(ctx, "slot_time", json_string(hm));
	/* The .ics alarm is the day before (issue 6): for a slot on the
	 * day the mail goes out that time has passed, and the templates do
	 * not promise it. */
	json_object_set_new(ctx, "alarm_same_day",
	    json_boolean(r->slot == r->today));
	/* Only when the slot is not on the due date (overdue): the
	 * templates then name the day the event is on. */
	if (r->slot != r->due) {
		remind_date_label(r->slot, r->locale, label);
		if (strcmp(r->locale, "en") == 0)
			snprintf(slot, sizeof(slot), "%s on %s", hm, label);
		else
			snprintf(slot, sizeof(slot), "%s %s", label, hm);
		json_object_set_new(ctx, "slot_label", json_string(slot));
	}
	if (json_object_get(content, "reminder") != NULL)
		json_object_set(ctx, "reminder", json_object_get(content,
		    "reminder"));
	if (json_object_get(content, "sender") != NULL)
		json_object_set(ctx, "sender", json_object_get(content, "sender"));
	json_object_set_new(ctx, "unsubscribe_url", json_string(unsub_url));
	{
		char *m = xasprintf("mailto:%s?subject=unsubscribe%%20%s", mailto,
		    r->token);

		json_object_set_new(ctx, "unsubscribe_mailto", json_string(m));
		free(m);
	}
	json_object_set_new(ctx, "list_name",
	    json_string(c->env->cfg->list_name));
	return ctx;
}

/* Surrounding white space off; with one_line, line breaks become one
 * space (the SUMMARY is one line, whatever the template's layout). */
static void
tidy(struct buf *b, int one_line)
{
	size_t w = 0, start = 0;

	if (one_line)
		for (size_t i = 0; i < b->len; i++)
			if (b->data[i] == '\r' || b->data[i] == '\n' ||
			    b->data[i] == '\t')
				b->data[i] = ' ';
	while (start < b->len && (b->data[start] == ' ' ||
	    b->data[start] == '\n' || b->data[start] == '\r' ||
	    b->data[start] == '\t'))
		start++;
	for (size_t i = start; i < b->len; i++) {
		if (one_line && b->data[i] == ' ' && w > 0 &&
		    b->data[w - 1] == ' ')
			continue;
		b->data[w++] = b->data[i];
	}
	while (w > 0 && (b->data[w - 1] == ' ' || b->data[w - 1] == '\n' ||
	    b->data[w - 1] == '\r' || b->data[w - 1] == '\t'))
		w--;
	buf_truncate(b, w);
}

/* The .ics of one reminder into ics. */
static int
render_ics(const struct campaign_run *c, const struct rm_state *s,
    const struct rm_row *r, json_t *ctx, time_t stamp, int strict,
    struct buf *ics, struct err *e)
{
	struct buf sum = BUF_INIT(PART_MAX), desc = BUF_INIT(PART_MAX);
	struct ical_spec spec;
	int rc, y, m, d;

	if ((rc = render_text(c->render, r->locale, "reminder.ics-summary",
	    ctx, 0, strict, &sum, e)) < 0 ||
	    (rc = render_text(c->render, r->locale, "reminder.ics-description",
	    ctx, 0, strict, &desc, e)) < 0)
		goto out;
	tidy(&sum, 1);
	tidy(&desc, 0);
	if (sum.len == 0) {
		rc = err_set(e, ERR_PARSE, "template %s/reminder.ics-summary: "
		    "renders an empty SUMMARY (%s)", r->locale, kind_name(r->kind));
		goto out;
	}
	date_civil(r->slot, &y, &m, &d);
	memset(&spec, 0, sizeof(spec));
	spec.uid = r->uid;
	spec.sequence = r->sequence;
	spec.dtstamp = stamp;
	spec.year = y;
	spec.month = m;
	spec.day = d;
	spec.hour = r->hour;
	spec.minute = r->minute;
	spec.summary = buf_str(&sum);
	spec.description = desc.len > 0 ? buf_str(&desc) : NULL;
	spec.url = s->assessment_url;
	/* The sender, named as the From header names it to this reader. */
	spec.organizer = c->env->cfg->from_addr;
	spec.organizer_name = c->env->cfg->from_name_en != NULL &&
	    strcmp(r->locale, "en") == 0 ? c->env->cfg->from_name_en :
	    c->env->cfg->from_name;
	rc = ical_build(&spec, ics, e);
out:
	buf_release(&sum);
	buf_release(&desc);
	return rc;
}

/*
 * Skeletons (render.h): reminders queued on one day fall into a few
 * variants (kind, due date, position, slot, star, locale); the strings
 * of the declarer are the holes.
 */
enum { RH_ORG, RH_NAME, RH_LAST, RH_UNSUB_URL, RH_UNSUB_MAILTO, RH_N };

struct rm_make {
	const struct campaign_run	*c;
	const struct rm_state		*s;
	const struct rm_row		*r;
	const struct render_mail	*m;
	const char			*const *v;
};

static struct render_skel *
rm_make_skel(void *arg)
{
	struct rm_make *a = arg;
	char mark[RH_N][RENDER_HOLE_LEN];
	struct render_skel *k = NULL;
	struct render_mail m2 = *a->m;
	struct rm_row r2 = *a->r;
	struct err e = ERR_INIT;
	json_t *ctx;

	for (unsigned i = 0; i < RH_N; i++)
		render_hole(i, mark[i]);
#define HOLE(i)	(a->v[i] != NULL && *a->v[i] != '\0')
	if (HOLE(RH_ORG))
		r2.org = mark[RH_ORG];
	if (HOLE(RH_NAME))
		r2.name = mark[RH_NAME];
	ctx = context(a->c, a->s, &r2, HOLE(RH_UNSUB_URL) ?
	    mark[RH_UNSUB_URL] : a->v[RH_UNSUB_URL], a->c->env->cfg->unsub_mailto);
	if (HOLE(RH_LAST))
		json_object_set_new(ctx, "last_assessed",
		    json_string(mark[RH_LAST]));
	if (HOLE(RH_UNSUB_MAILTO))
		json_object_set_new(ctx, "unsubscribe_mailto",
		    json_string(mark[RH_UNSUB_MAILTO]));
#undef HOLE
	m2.ctx = ctx;
	if (render_skel_new(a->c->render, &m2, &k, &e) < 0)
		k = NULL;
	json_decref(ctx);
	return k;
}

/* The message from the skeleton of this reminder's variant: 0, 1 when it
 * must be rendered whole, -ERR_*. */
static int
rm_render_skel(const struct campaign_run *c, const struct rm_state *s,
    const struct rm_row *r, json_t *ctx, const struct render_mail *m,
    const struct render_env *env, struct buf *out, struct err *e)
{
	const char *v[RH_N];
	struct rm_make a = { c, s, r, m, v };
	struct buf key = BUF_INIT(0);
	int rc;

	v[RH_ORG] = r->org;
	v[RH_NAME] = r->name;
	/* As context() made them. */
	v[RH_LAST] = json_string_value(json_object_get(ctx, "last_assessed"));
	v[RH_UNSUB_URL] = m->unsub_url;
	v[RH_UNSUB_MAILTO] = json_string_value(json_object_get(ctx,
	    "unsubscribe_mailto"));
	buf_addf(&key, "%s|%d|%d|%ld|%ld|%ld|%02d:%02d|", r->locale, r->star,
	    (int)r->kind, r->due, r->today, r->slot, r->hour, r->minute);
	for (size_t i = 0; i < RH_N; i++)
		buf_addch(&key, v[i] == NULL ? 'a' : *v[i] == '\0' ? 'e' : 'h');
	rc = skelcache_message(s->cache, buf_str(&key), rm_make_skel, &a, env,
	    m, v, RH_N, out, e);
	buf_release(&key);
	return rc;
}

static int
render_data(const struct campaign_run *c, const struct rm_state *s,
    json_t *data, const char *rcpt, long long subscriber_id,
    const char *item, long long row_id, time_t date, int strict,
    struct buf *out, struct err *e)
{
	const struct config *cfg = c->env->cfg;
	struct buf mid = BUF_INIT(512), url = BUF_INIT(2048),
	    ics = BUF_INIT(ICS_MAX);
	struct render_env env = { cfg->from_name, cfg->from_addr,
	    cfg->reply_to, cfg->list_id, cfg->list_name, c->env->msg_flags,
	    cfg->from_name_en };
	struct render_mail m;
	struct rm_row r;
	json_t *ctx = NULL;
	char fname[64], due[11];
	size_t start = out->len;
	int rc;

	if ((rc = row_parse(data, &r, row_id, e)) < 0)
		return rc;
	campaign_message_id(&mid, c->name, subscriber_id, item, s->instance,
	    campaign_mid_domain(c), c->env->keys);
	buf_addf(&url, "%s%s", cfg->unsub_base_url, r.token);
	ctx = context(c, s, &r, buf_str(&url), cfg->unsub_mailto);
	if ((rc = render_ics(c, s, &r, ctx, date, strict, &ics, e)) < 0)
		goto out;
	/* A name that says what it is; msg encodes the Japanese one
	 * (RFC 2231). */
	date_format(r.due, due);
	snprintf(fname, sizeof(fname), "%s-%s.ics", strcmp(r.locale, "en") ==
	    0 ? "self-assessment" : "自社診断", due);
	memset(&m, 0, sizeof(m));
	m.locale = r.locale;
	m.ctx = ctx;
	m.to_name = r.name != NULL ? r.name : r.org;
	m.to_addr = rcpt;
	m.message_id = buf_str(&mid);
	m.date = date;
	m.unsub_url = buf_str(&url);
	m.unsub_mailto = cfg->unsub_mailto;
	m.unsub_token = r.token;	/* so a mailto unsubscribe names whom */
	m.attach = ics.data;
	m.attach_len = ics.len;
	m.attach_name = fname;
	m.attach_type = ICS_TYPE;
	m.strict = strict;
	rc = !strict && s->cache != NULL ? rm_render_skel(c, s, &r, ctx, &m,
	    &env, out, e) : 1;
	rc = render_check(c->render, &env, &m, rc, cfg->check_skeletons, out,
	    start, e);
out:
	json_decref(ctx);
	buf_release(&mid);
	buf_release(&url);
	buf_release(&ics);
	return rc;
}

int
remind_prepare(struct campaign_run *c, struct err *e)
{
	static const char *const extra[] = { "reminder.ics-summary",
	    "reminder.ics-description", NULL };
	struct rm_state *s = xcalloc(1, sizeof(*s));
	char *dump;

	c->state = s;
	s->assessment_url = json_string_value(json_object_get(c->content,
	    "assessment_url"));
	if (s->assessment_url == NULL)
		return err_set(e, ERR_DB, "campaign '%s' has no assessment_url",
		    c->name);
	s->last_label = json_is_true(json_object_get(c->content,
	    "last_assessed_label"));
	campaign_list_id(c->env->cfg, s->list_id);
	snprintf(s->instance, sizeof(s->instance), "%s", c->env->instance);
	/* As in newsletter_prepare(): a U+0001 in the content (the marker
	 * of a hole) and every message is rendered whole. */
	dump = json_dumps(c->content, JSON_COMPACT);
	if (dump != NULL && strstr(dump, "\\u0001") == NULL)
		s->cache = skelcache_new(64);
	free(dump);
	return render_new(&c->render, json_object_get(c->content, "templates"),
	    "reminder", extra, e);
}

void
remind_release(struct campaign_run *c)
{
	if (c->state != NULL)
		skelcache_free(((struct rm_state *)c->state)->cache);
	free(c->state);
	c->state = NULL;
}

int
remind_render_row(const struct campaign_run *c, const struct outbox_row *row,
    struct buf *out, struct err *e)
{
	json_error_t jerr;
	json_t *data = json_loads(row->data, 0, &jerr);
	time_t date;
	int rc;

	if (data == NULL)
		return err_set(e, ERR_DB, "outbox row %lld: data is not JSON: %s",
		    row->id, jerr.text);
	/* Date and DTSTAMP: when it was queued, so a re-send is identical. */
	if (date_parse_timestamp(row->queued_at, &date, NULL) < 0)
		date = 0;
	rc = render_data(c, c->state, data, row->rcpt, row->subscriber_id,
	    row->item, row->id, date, 0, out, e);
	json_decref(data);
	return rc;
}

/* The five templates of one reminder, strictly, without composing the
 * message: what the probe runs for most combinations. */
static int
probe_texts(const struct campaign_run *c, const struct rm_state *s,
    json_t *data, struct err *e)
{
	static const char *const names[] = { "reminder.subject",
	    "reminder.txt", "reminder.html", "reminder.ics-summary",
	    "reminder.ics-description" };
	struct buf out = BUF_INIT(0);
	struct rm_row r;
	json_t *ctx;
	int rc;

	if ((rc = row_parse(data, &r, 0, e)) < 0)
		return rc;
	ctx = context(c, s, &r, "https://example.jp/u/x", "u@example.jp");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		buf_reset(&out);
		if ((rc = render_text(c->render, r.locale, names[i], ctx,
		    i == 2, 1, &out, e)) < 0)
			break;
		/* A subject or SUMMARY that renders to nothing is an error
		 * too (render_message and render_ics say so when sending). */
		tidy(&out, 1);
		if ((i == 0 || i == 3) && out.len == 0) {
			rc = err_set(e, ERR_PARSE, "template %s/%s: renders "
			    "nothing for a %s reminder", r.locale, names[i],
			    kind_name(r.kind));
			break;
		}
	}
	json_decref(ctx);
	buf_release(&out);
	return rc;
}

/*
 * Render every kind and position in both languages strictly, once with
 * every optional field (contact name, last self-diagnosis, a slot on
 * another day) and once with none, so that both branches of every
 * {{#x}}/{{^x}} are checked: a misspelt name fails here with its
 * file:line:col, before anything is queued.  One of them per language
 * is composed into a whole message with its .ics, as when sending.
 */
static int
probe(struct campaign_run *c, time_t now, struct err *e)
{
	static const char *const locs[] = { "ja", "en" };
	static const enum remind_kind kinds[] = { REMIND_REASSESS,
	    REMIND_STEPUP };
	static const int when[] = { 30, 0, -40 };	/* due - today */
	struct buf out = BUF_INIT(0);
	long today = date_jst_day(now);
	int rc = 0;

	for (size_t l = 0; l < 2 && rc == 0; l++)
	for (size_t k = 0; k < 2 && rc == 0; k++)
	for (size_t w = 0; w < 3 && rc == 0; w++)
	for (int full = 0; full < 2 && rc == 0; full++) {
		struct rm_row r;
		json_t *d;

		memset(&r, 0, sizeof(r));
		r.org = "株式会社サンプル";
		r.name = full ? "山田 太郎" : NULL;
		r.locale = locs[l];
		r.token = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
		r.uid = "reminder-1-20270115.probe@example.jp";
		r.star = full ? 1 : 2;
		r.kind = kinds[k];
		r.today = today;
		r.due = today + when[w];
		r.last_assessed = full ? today - 365 : SUB_NODATE;
		r.slot = full ? remind_slot_day(r.due, today) : r.due;
		if (full && r.slot == r.due)
			r.slot = r.due + 1;	/* so slot_label is set */
		r.hour = 10;
		r.offset = when[w];
		r.sequence = full;
		d = row_data(&r);
		if (full && k == 0 && w == 2) {
			buf_reset(&out);
			rc = render_data(c, c->state, d, "probe@example.jp", 1,
			    "2027-01-15:-40", 0, now, 1, &out, e);
		} else
			rc = probe_texts(c, c->state, d, e);
		json_decref(d);
	}
	buf_release(&out);
	return rc;
}

/* --- build --------------------------------------------------------------- */

/* A reminder row of one declarer, as stored. */
struct rm_have {
	long long	 id;
	long long	 outbox_id;
	enum remind_kind kind;
	long		 due;
	int		 offset;
	char		 state[12];	/* reminder: queued, cancelled, skipped */
	int		 unsent;	/* its outbox row is still to be sent */
};

struct rm_build {
	struct db		*db;
	const struct remind_opts *o;
	struct remind_stats	*st;
	struct campaign_run	*run;
	json_t			*content;
	time_t			 now;
	long			 today;
	char			 name[32];
	char			 instance[9];
	char			 ts[21];
	int			 any_supp;
	struct rm_have		*have;
	size_t			 nhave, cap;
};

static int
load_have(struct rm_build *b, long long sid, struct err *e)
{
	sqlite3_stmt *st;
	int step;

	b->nhave = 0;
	if ((st = db_stmt(b->db, "SELECT r.id, r.kind, r.due, r.offset_days, "
	    "r.state, r.outbox_id, o.state IN ('queued', 'deferred', 'held') "
	    "FROM reminder r LEFT JOIN outbox o ON o.id = r.outbox_id "
	    "WHERE r.subscriber_id = ?", e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_int64(st, 1, sid);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct rm_have *h;
		const char *due = (const char *)sqlite3_column_text(st, 2);

		if (b->nhave == b->cap) {
			b->cap = b->cap ? b->cap * 2 : 16;
			b->have = xreallocarray(b->have, b->cap, sizeof(*b->have));
		}
		h = &b->have[b->nhave];
		memset(h, 0, sizeof(*h));
		h->id = sqlite3_column_int64(st, 0);
		h->kind = strcmp((const char *)sqlite3_column_text(st, 1),
		    "stepup") == 0 ? REMIND_STEPUP : REMIND_REASSESS;
		if (due == NULL || date_parse(due, &h->due, NULL) < 0)
			continue;	/* not ours; never matches a cycle */
		h->offset = sqlite3_column_int(st, 3);
		snprintf(h->state, sizeof(h->state), "%s",
		    sqlite3_column_text(st, 4));
		h->outbox_id = sqlite3_column_int64(st, 5);
		h->unsent = sqlite3_column_int(st, 6) == 1;
		b->nhave++;
	}
	if (step != SQLITE_DONE)
		return db_error(b->db, e, "read reminders");
	return 0;
}

/* Cancel one queued reminder whose message has not gone yet. */
static int
cancel_have(struct rm_build *b, struct rm_have *h, const char *why,
    struct err *e)
{
	sqlite3_stmt *st;
	int n;

	if ((st = db_stmt(b->db, "UPDATE outbox SET state = 'cancelled', "
	    "last_error = ? WHERE id = ? AND state IN ('queued', 'deferred', "
	    "'held')", e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_text(st, 1, why, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, h->outbox_id);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_error(b->db, e, "cancel reminder");
	n = sqlite3_changes(b->db->h);
	sqlite3_reset(st);
	if (n == 0)
		return 0;
	if ((st = db_stmt(b->db, "UPDATE reminder SET state = 'cancelled' "
	    "WHERE id = ?", e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_int64(st, 1, h->id);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_error(b->db, e, "cancel reminder");
	sqlite3_reset(st);
	snprintf(h->state, sizeof(h->state), "cancelled");
	h->unsent = 0;
	b->st->cancelled++;
	return 0;
}

static int
insert_reminder(struct rm_build *b, long long sid, enum remind_kind kind,
    long due, int offset, const char *state, long long outbox_id,
    struct err *e)
{
	sqlite3_stmt *st;
	char d[11];

	date_format(due, d);
	if ((st = db_stmt(b->db, "INSERT INTO reminder (subscriber_id, kind, "
	    "due, offset_days, state, outbox_id, created) VALUES "
	    "(?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", e)) == NULL)
		return -ERR_DB;
	sqlite3_bind_int64(st, 1, sid);
	sqlite3_bind_text(st, 2, kind_name(kind), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, d, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 4, offset);
	sqlite3_bind_text(st, 5, state, -1, SQLITE_STATIC);
	if (outbox_id > 0)
		sqlite3_bind_int64(st, 6, outbox_id);
	else
		sqlite3_bind_null(st, 6);
	sqlite3_bind_text(st, 7, b->ts, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_error(b->db, e, "record reminder");
	sqlite3_reset(st);
	return 0;
}

/* The day's campaign, created with the first reminder queued. */
static int
ensure_campaign(struct rm_build *b, struct err *e)
{
	char day[11];
	long long id;

	if (b->st->campaign_id > 0)
		return 0;
	date_format(b->today, day);
	id = campaign_create(b->db, "reminder", b->name, day, b->content,
	    b->now, e);
	if (id < 0)
		return (int)id;
	b->st->campaign_id = id;
	b->st->created = 1;
	return 0;
}

struct rm_decl {
	long long	 id;
	const char	*email;
	const char	*org;
	const char	*name;
	const char	*locale;
	int		 star;
	long		 declared, assessed;
};

static int
queue_one(struct rm_build *b, const struct rm_decl *dl,
    const struct remind_cycle *cy, const struct remind_moment *m,
    struct err *e)
{
	const struct config *cfg = b->o->cfg;
	char token[TOKEN_LEN + 1], item[32], due[11], *text, *uid;
	struct buf ub = BUF_INIT(0);
	struct rm_row r;
	enum remind_pos pos;
	json_t *data;
	int rc, seq = 0, days;
	long long oid;

	if (b->any_supp) {
		if ((rc = sub_suppressed(b->db, dl->email, NULL, e)) < 0)
			return rc;
		if (rc == 1) {
			/* Not recorded: should the address be lifted from
			 * the list within catch_up_days, it still gets it. */
			b->st->suppressed++;
			return 0;
		}
	}
	if ((rc = ensure_campaign(b, e)) < 0)
		return rc;
	/* One event, one current reminder: an older one of this cycle
	 * still waiting (relay down) would arrive saying something no
	 * longer true. */
	for (size_t i = 0; i < b->nhave; i++) {
		struct rm_have *h = &b->have[i];

		if (h->due != cy->due)
			continue;
		if (strcmp(h->state, "queued") == 0 && h->unsent &&
		    (rc = cancel_have(b, h, "superseded by a newer reminder",
		    e)) < 0)
			return rc;
		/* SEQUENCE: the event's versions queued before this one. */
		if (strcmp(h->state, "skipped") != 0)
			seq++;
	}
	if ((rc = token_make(b->o->keys, dl->id, b->o->list_id, token, e)) < 0)
		return rc;
	date_format(cy->due, due);
	/* The UID names the event, not the person: a number of ours, the
	 * due date and this installation. */
	buf_addf(&ub, "reminder-%lld-%.4s%.2s%.2s.%s@%s", dl->id, due, due + 5,
	    due + 8, b->instance, cfg->message_id_domain);
	uid = buf_detach(&ub, NULL);
	memset(&r, 0, sizeof(r));
	r.org = dl->org;
	r.name = dl->name;
	r.locale = dl->locale;
	r.token = token;
	r.uid = uid;
	r.star = dl->star;
	r.kind = cy->kind;
	r.due = cy->due;
	r.today = b->today;
	r.last_assessed = dl->assessed;
	r.slot = remind_slot_day(cy->due, b->today);
	r.hour = cfg->rm_hour;
	r.minute = cfg->rm_minute;
	r.offset = m->offset;
	r.sequence = seq;
	data = row_data(&r);
	text = json_dumps(data, JSON_COMPACT);
	json_decref(data);
	free(uid);
	snprintf(item, sizeof(item), "%s:%d", due, m->offset);
	rc = outbox_queue(b->db, b->st->campaign_id, dl->id, item, dl->email,
	    text, b->now, e);
	free(text);
	if (rc < 0)
		return rc;
	if (rc == 0)	/* queued today already (reminder row lost) */
		return insert_reminder(b, dl->id, cy->kind, cy->due, m->offset,
		    "queued", 0, e);
	oid = sqlite3_last_insert_rowid(b->db->h);
	if ((rc = insert_reminder(b, dl->id, cy->kind, cy->due, m->offset,
	    "queued", oid, e)) < 0)
		return rc;
	pos = remind_position(cy->due, b->today, &days);
	b->st->queued[cy->kind][pos]++;
	b->st->queued_total++;
	return 0;
}

static int
one_declarer(struct rm_build *b, const struct rm_decl *dl, struct err *e)
{
	const struct remind_rules *ru = &b->o->rules;
	struct remind_cycle cy;
	struct remind_moment m[REMIND_MAX_MOMENTS];
	enum remind_action act[REMIND_MAX_MOMENTS];
	int done[REMIND_MAX_MOMENTS];
	size_t n, i, k;
	int rc, has;

	has = remind_cycle(ru, dl->star, dl->declared, dl->assessed, b->today,
	    &cy);
	if (!has)
		b->st->nodate++;
	if ((rc = load_have(b, dl->id, e)) < 0)
		return rc;
	/* Another cycle's reminders that have not gone: that cycle ended
	 * (new self-diagnosis, star or dates changed). */
	for (i = 0; i < b->nhave; i++) {
		struct rm_have *h = &b->have[i];

		if (strcmp(h->state, "queued") == 0 && h->unsent &&
		    (!has || h->due != cy.due || h->kind != cy.kind) &&
		    (rc = cancel_have(b, h, "the self-diagnosis cycle changed",
		    e)) < 0)
			return rc;
	}
	if (!has)
		return 0;
	n = remind_moments(ru, &cy, m);
	for (i = 0; i < n; i++) {
		done[i] = 0;
		for (k = 0; k < b->nhave; k++)
			if (b->have[k].due == cy.due &&
			    b->have[k].offset == m[i].offset)
				done[i] = 1;
	}
	remind_plan(ru, m, n, done, b->today, act);
	for (i = 0; i < n; i++) {
		switch (act[i]) {
		case REMIND_SKIP_LATE:
		case REMIND_SKIP_SUPERSEDED:
			if ((rc = insert_reminder(b, dl->id, cy.kind, cy.due,
			    m[i].offset, "skipped", 0, e)) < 0)
				return rc;
			if (act[i] == REMIND_SKIP_LATE)
				b->st->late++;
			else
				b->st->superseded++;
			break;
		case REMIND_QUEUE:
			if ((rc = queue_one(b, dl, &cy, &m[i], e)) < 0)
				return rc;
			break;
		default:
			break;
		}
	}
	return 0;
}

static int
col_day(sqlite3_stmt *st, int col, long *out)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	*out = SUB_NODATE;
	return s == NULL || date_parse(s, out, NULL) == 0 ? 0 : -1;
}

int
remind_build(struct db *db, const struct remind_opts *o, time_t now,
    struct remind_stats *st, struct err *e)
{
	struct campaign_env env;
	struct rm_build b;
	json_t *snap = NULL;
	sqlite3_stmt *q = NULL;
	char day[11];
	int rc, step;

	memset(st, 0, sizeof(*st));
	memset(&b, 0, sizeof(b));
	b.db = db;
	b.o = o;
	b.st = st;
	b.now = now;
	b.today = date_jst_day(now);
	date_format_timestamp(now, b.ts);
	remind_campaign_name(b.today, b.name);
	if ((rc = campaign_instance(db, b.instance, e)) < 0)
		return rc;
	st->campaign_id = campaign_find(db, b.name, &b.content, e);
	if (st->campaign_id < 0)
		return (int)st->campaign_id;
	if (st->campaign_id == 0) {
		/* What the day's messages say, frozen with the campaign. */
		date_format(b.today, day);
		b.content = json_object();
		json_object_set_new(b.content, "kind", json_string("reminder"));
		json_object_set_new(b.content, "day", json_string(day));
		json_object_set_new(b.content, "message_id_domain",
		    json_string(o->cfg->message_id_domain));
		json_object_set_new(b.content, "assessment_url",
		    json_string(o->cfg->rm_url));
		json_object_set_new(b.content, "last_assessed_label",
		    json_true());
		if ((rc = render_snapshot(o->templates_dir, &snap, e)) < 0)
			goto out;
		json_object_set_new(b.content, "templates", snap);
		snap = NULL;
	}

	/* Compile and check the templates before anything is written. */
	memset(&env, 0, sizeof(env));
	env.cfg = o->cfg;
	env.instance = b.instance;
	env.keys = o->keys;
	b.run = xcalloc(1, sizeof(*b.run));
	b.run->env = &env;
	b.run->content = json_incref(b.content);
	b.run->id = st->campaign_id;
	snprintf(b.run->name, sizeof(b.run->name), "%s", b.name);
	snprintf(b.run->kind, sizeof(b.run->kind), "reminder");
	if ((rc = remind_prepare(b.run, e)) < 0)
		goto out;
	/* Checked here for a clear message; ical_build() would refuse it
	 * in the probe below. */
	if (msg_check_url("[remind] assessment_url",
	    ((struct rm_state *)b.run->state)->assessment_url, e) < 0) {
		rc = -ERR_CONFIG;
		goto out;
	}
	if ((rc = probe(b.run, now, e)) < 0)
		goto out;

	if ((b.any_supp = sub_any_suppressed(db, e)) < 0) {
		rc = b.any_supp;
		goto out;
	}
	q = db_prepare(db, "SELECT id, email, org, name, star, declared, "
	    "assessed, locale FROM subscriber WHERE status = 'active' "
	    "ORDER BY id", e);
	if (q == NULL) {
		rc = -ERR_DB;
		goto out;
	}
	while ((step = sqlite3_step(q)) == SQLITE_ROW) {
		struct rm_decl dl;

		memset(&dl, 0, sizeof(dl));
		dl.id = sqlite3_column_int64(q, 0);
		dl.email = (const char *)sqlite3_column_text(q, 1);
		dl.org = (const char *)sqlite3_column_text(q, 2);
		dl.name = (const char *)sqlite3_column_text(q, 3);
		dl.star = sqlite3_column_int(q, 4);
		dl.locale = (const char *)sqlite3_column_text(q, 7);
		st->declarers++;
		if (col_day(q, 5, &dl.declared) < 0 ||
		    col_day(q, 6, &dl.assessed) < 0) {
			rc = err_set(e, ERR_DB, "declarer '%s': a stored date "
			    "is not YYYY-MM-DD", dl.email);
			goto out;
		}
		if (dl.locale == NULL)
			dl.locale = "ja";
		if ((rc = one_declarer(&b, &dl, e)) < 0) {
			err_prefix(e, "declarer '%s'", dl.email);
			goto out;
		}
	}
	if (step != SQLITE_DONE) {
		rc = db_error(db, e, "list declarers");
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(q);
	free(b.have);
	campaign_run_free(b.run);
	json_decref(b.content);
	json_decref(snap);
	return rc;
}
