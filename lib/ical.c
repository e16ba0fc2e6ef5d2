/*
 * ical — the reminder .ics with libical.  See ical.h.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <libical/ical.h>

#include "buf.h"
#include "err.h"
#include "ical.h"
#include "msg.h"
#include "xalloc.h"

#define JST_OFFSET	(9 * 3600)
#define UID_MAX		255
#define ORGANIZER_MAX	254	/* an address (RFC 5321's path limit) */
#define SUMMARY_MAX	255
#define DESC_MAX	4096
/* 3001-01-01T00:00:00Z: libical 3.0 writes no DTSTAMP from there on. */
#define DTSTAMP_END	((time_t)32535216000LL)
/* RFC 5545 3.1: lines SHOULD NOT be longer than 75 octets. */
#define FOLD_OCTETS	75

/*
 * RFC 5545 3.3.11: TEXT holds any character but the controls other than
 * HTAB; a line break inside it is written "\n" (libical does that).  So:
 * valid UTF-8, no C0/C1 control or DEL but TAB, and LF only where
 * lines_ok says a multi-line value is expected.
 */
static int
check_text(const char *what, const char *s, size_t max, int lines_ok,
    struct err *e)
{
	size_t len = strlen(s);
	const char *p;

	if (!g_utf8_validate(s, (gssize)len, NULL))
		return err_set(e, ERR_INVAL, "calendar %s: not valid UTF-8",
		    what);
	for (p = s; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (c == '\t' || (lines_ok && (c == '\n' || c == '\r')))
			continue;
		if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
			return err_set(e, ERR_INVAL, "calendar %s: control "
			    "character U+%04X at byte %zu refused", what,
			    (unsigned)c, (size_t)(p - s));
	}
	if (len > max)
		return err_set(e, ERR_INVAL, "calendar %s: %zu bytes, more "
		    "than %zu", what, len, max);
	return 0;
}

static int
check_spec(const struct ical_spec *s, struct err *e)
{
	const char *p;
	int rc;

	/* The UID ends up in a filename-like key on the client: keep it
	 * printable ASCII without spaces. */
	if (s->uid == NULL || *s->uid == '\0' || strlen(s->uid) > UID_MAX)
		return err_set(e, ERR_INVAL, "calendar UID: missing or longer "
		    "than %d", UID_MAX);
	for (p = s->uid; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return err_set(e, ERR_INVAL, "calendar UID: byte 0x%02x "
			    "refused (printable ASCII only)", (unsigned char)*p);
	if (s->prodid != NULL && (rc = check_text("PRODID", s->prodid,
	    SUMMARY_MAX, 0, e)) < 0)
		return rc;
	/* Written as a mailto: URI, which libical does not escape: one
	 * address, printable ASCII without spaces. */
	if (s->organizer == NULL || strchr(s->organizer, '@') == NULL ||
	    strlen(s->organizer) > ORGANIZER_MAX)
		return err_set(e, ERR_INVAL, "calendar ORGANIZER: missing or "
		    "not an address");
	for (p = s->organizer; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return err_set(e, ERR_INVAL, "calendar ORGANIZER: byte "
			    "0x%02x refused (printable ASCII only)",
			    (unsigned char)*p);
	if (s->organizer_name != NULL && (rc = check_text("ORGANIZER name",
	    s->organizer_name, SUMMARY_MAX, 0, e)) < 0)
		return rc;
	if (s->sequence < 0)
		return err_set(e, ERR_INVAL, "calendar SEQUENCE: %d is "
		    "negative", s->sequence);
	if (s->dtstamp <= 0)
		return err_set(e, ERR_INVAL, "calendar DTSTAMP: missing");
	/* libical writes a later one as "00000000T000000" (no date, no Z):
	 * refused, rather than a calendar that says nothing of when. */
	if (s->dtstamp >= DTSTAMP_END)
		return err_set(e, ERR_INVAL, "calendar DTSTAMP: %lld is after "
		    "the year 3000; is the clock (--now) right?",
		    (long long)s->dtstamp);
	if (s->year < 1970 || s->year > 9999 || s->month < 1 ||
	    s->month > 12 || s->day < 1 ||
	    s->day > icaltime_days_in_month(s->month, s->year))
		return err_set(e, ERR_INVAL, "calendar DTSTART: no date "
		    "%04d-%02d-%02d", s->year, s->month, s->day);
	if (s->hour < 0 || s->hour > 23 || s->minute < 0 || s->minute > 59)
		return err_set(e, ERR_INVAL, "calendar DTSTART: no time "
		    "%02d:%02d", s->hour, s->minute);
	if (s->duration_min < 0 || s->duration_min > 24 * 60)
		return err_set(e, ERR_INVAL, "calendar DTEND: duration of %d "
		    "minutes out of range (1-1440)", s->duration_min);
	if (s->alarm_before_min < 0 || s->alarm_before_min > 28 * 24 * 60)
		return err_set(e, ERR_INVAL, "calendar VALARM: %d minutes "
		    "before out of range (up to four weeks)",
		    s->alarm_before_min);
	if (s->summary == NULL || *s->summary == '\0')
		return err_set(e, ERR_INVAL, "calendar SUMMARY: missing");
	if ((rc = check_text("SUMMARY", s->summary, SUMMARY_MAX, 0, e)) < 0)
		return rc;
	if (s->description != NULL && (rc = check_text("DESCRIPTION",
	    s->description, DESC_MAX, 1, e)) < 0)
		return rc;
	if (s->alarm_text != NULL && (rc = check_text("VALARM DESCRIPTION",
	    s->alarm_text, SUMMARY_MAX, 0, e)) < 0)
		return rc;
	if (s->url != NULL && (rc = msg_check_url("calendar URL", s->url,
	    e)) < 0)
		return rc;
	return 0;
}

/* The fixed Asia/Tokyo rule; see ical.h for why not libical's own. */
static icalcomponent *
vtimezone(void)
{
	icalcomponent *tz, *std;

	std = icalcomponent_vanew(ICAL_XSTANDARD_COMPONENT,
	    icalproperty_new_dtstart(icaltime_from_string("19700101T000000")),
	    icalproperty_new_tzoffsetfrom(JST_OFFSET),
	    icalproperty_new_tzoffsetto(JST_OFFSET),
	    icalproperty_new_tzname("JST"),
	    (void *)0);
	tz = icalcomponent_vanew(ICAL_VTIMEZONE_COMPONENT,
	    icalproperty_new_tzid(ICAL_TZID),
	    std,
	    (void *)0);
	return tz;
}

/* ORGANIZER;CN=name:mailto:address (libical quotes or RFC 6868-encodes
 * the name as it needs). */
static icalproperty *
organizer(const struct ical_spec *s)
{
	char *uri = xasprintf("mailto:%s", s->organizer);
	icalproperty *p = icalproperty_new_organizer(uri);

	free(uri);
	if (s->organizer_name != NULL && *s->organizer_name != '\0')
		icalproperty_add_parameter(p,
		    icalparameter_new_cn(s->organizer_name));
	return p;
}

/* A DATE-TIME property in Asia/Tokyo: local time plus TZID parameter. */
static icalproperty *
with_tzid(icalproperty *p)
{
	icalproperty_add_parameter(p, icalparameter_new_tzid(ICAL_TZID));
	return p;
}

/* Every line break (CRLF, CR, LF) as LF, which libical writes as "\n". */
static char *
lf_lines(const char *s)
{
	char *out = xstrdup(s), *w = out;

	for (const char *r = s; *r != '\0'; r++) {
		if (*r == '\r') {
			*w++ = '\n';
			if (r[1] == '\n')
				r++;
		} else
			*w++ = *r;
	}
	*w = '\0';
	return out;
}

/*
 * Mend libical 3.0.16's folds that land inside a line's own CRLF.  Its
 * folder treats the terminating CRLF as content: when the last chunk of a
 * property plus CRLF is exactly 75 octets it folds between CR and LF,
 * writing "...\r" "\r\n " "\n" (a bare CR, then a line holding a space and
 * a bare LF); at 76 it writes a continuation line holding only a space.
 * Both unfold to a plain CRLF, so that is what they are replaced by.
 * Content cannot hold a raw CR or LF (TEXT escapes newlines, and the other
 * values are checked), so these sequences mean nothing else.
 */
static void
mend_folds(char *s)
{
	char *r = s, *w = s;

	while (*r != '\0') {
		if (strncmp(r, "\r\r\n \n", 5) == 0) {
			memcpy(w, "\r\n", 2);
			w += 2;
			r += 5;
		} else if (strncmp(r, "\r\n \r\n", 5) == 0) {
			r += 3;		/* drop the empty continuation */
		} else
			*w++ = *r++;
	}
	*w = '\0';
}

/*
 * libical 3.0 folds at 75 octets and backs off to a character boundary;
 * checked on every build all the same, because a client shows a split
 * UTF-8 sequence as garbage and a libical change would go unnoticed.
 */
static int
check_folding(const char *s, size_t n, struct err *e)
{
	const char *p = s, *end = s + n, *nl;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL || nl == p || nl[-1] != '\r')
			return err_set(e, ERR_SOFTWARE, "calendar: libical "
			    "wrote a line not ending in CRLF");
		if (nl - 1 - p > FOLD_OCTETS ||
		    !g_utf8_validate(p, nl - 1 - p, NULL))
			return err_set(e, ERR_SOFTWARE, "calendar: libical "
			    "folded a line badly (over %d octets or inside a "
			    "character)", FOLD_OCTETS);
		p = nl + 1;
	}
	return 0;
}

int
ical_build_direct(const struct ical_spec *s, struct buf *out, struct err *e)
{
	icalcomponent *cal = NULL, *ev, *alarm;
	struct icaltimetype start, end;
	struct icaltriggertype trig;
	char *text = NULL, *desc = NULL;
	int rc, dur, before;

	if ((rc = check_spec(s, e)) < 0)
		return rc;
	dur = s->duration_min != 0 ? s->duration_min : ICAL_DEFAULT_DURATION;
	before = s->alarm_before_min != 0 ? s->alarm_before_min :
	    ICAL_DEFAULT_ALARM;

	/* Floating local time + TZID=Asia/Tokyo (RFC 5545 3.3.5 form 3). */
	start = icaltime_null_time();
	start.year = s->year;
	start.month = s->month;
	start.day = s->day;
	start.hour = s->hour;
	start.minute = s->minute;
	end = icaltime_add(start, icaldurationtype_from_int(dur * 60));

	ev = icalcomponent_vanew(ICAL_VEVENT_COMPONENT,
	    icalproperty_new_uid(s->uid),
	    icalproperty_new_sequence(s->sequence),
	    icalproperty_new_dtstamp(icaltime_from_timet_with_zone(
		s->dtstamp, 0, icaltimezone_get_utc_timezone())),
	    organizer(s),
	    with_tzid(icalproperty_new_dtstart(start)),
	    with_tzid(icalproperty_new_dtend(end)),
	    icalproperty_new_summary(s->summary),
	    (void *)0);
	if (s->description != NULL) {
		desc = lf_lines(s->description);
		icalcomponent_add_property(ev,
		    icalproperty_new_description(desc));
	}
	if (s->url != NULL)
		icalcomponent_add_property(ev, icalproperty_new_url(s->url));

	memset(&trig, 0, sizeof(trig));
	trig.time = icaltime_null_time();
	trig.duration = icaldurationtype_from_int(-before * 60);
	alarm = icalcomponent_vanew(ICAL_VALARM_COMPONENT,
	    icalproperty_new_action(ICAL_ACTION_DISPLAY),
	    icalproperty_new_trigger(trig),
	    icalproperty_new_description(s->alarm_text != NULL ?
		s->alarm_text : s->summary),
	    (void *)0);
	icalcomponent_add_component(ev, alarm);

	cal = icalcomponent_vanew(ICAL_VCALENDAR_COMPONENT,
	    icalproperty_new_prodid(s->prodid != NULL ? s->prodid :
		ICAL_DEFAULT_PRODID),
	    icalproperty_new_version("2.0"),
	    icalproperty_new_method(ICAL_METHOD_PUBLISH),
	    vtimezone(),
	    ev,
	    (void *)0);

	text = icalcomponent_as_ical_string_r(cal);
	if (text == NULL) {
		rc = err_set(e, ERR_SOFTWARE, "calendar '%s': libical could "
		    "not write it", s->uid);
		goto out;
	}
	mend_folds(text);
	if ((rc = check_folding(text, strlen(text), e)) < 0)
		goto out;
	if ((rc = buf_addstr(out, text)) < 0)
		err_set(e, ERR_TOOBIG, "calendar '%s': does not fit in the "
		    "output buffer", s->uid);
out:
	icalmemory_free_buffer(text);
	free(desc);
	icalcomponent_free(cal);
	return rc;
}

/*
 * The same calendar for many declarers but for its UID and DTSTAMP (a
 * day's reminders come in a few kinds and slots): libical builds it once
 * per thread with stand-ins of the same length, and each message gets a
 * copy with its own two values written over them.  That is only done
 * where it gives libical's own bytes: the UID line unfolded and the UID
 * free of what TEXT escapes, each stand-in found once; otherwise, and for
 * a kind not seen lately, ical_build_direct().  test_ical compares the
 * two on many specs.  It was a fifth of the CPU of sending reminders.
 */
#define SKEL_SLOTS	4
#define STAND_IN_TIME	((time_t)1)	/* 19700101T000001Z */

struct ics_skel {
	char	*key;		/* the spec but for the UID and DTSTAMP */
	char	*text;
	size_t	 len, uid_off, uid_len, dt_off;
};

struct ics_cache {
	struct ics_skel	 v[SKEL_SLOTS];
	unsigned	 next;
};

static pthread_key_t ics_tls;
static int ics_tls_ok;
static pthread_once_t ics_once = PTHREAD_ONCE_INIT;

static void
ics_cache_free(void *p)
{
	struct ics_cache *c = p;

	for (int i = 0; i < SKEL_SLOTS; i++) {
		free(c->v[i].key);
		free(c->v[i].text);
	}
	free(c);
}

static void
ics_tls_init(void)
{
	ics_tls_ok = pthread_key_create(&ics_tls, ics_cache_free) == 0;
}

/* The spec but for the UID's bytes and the DTSTAMP; a field left NULL
 * (its default) is \x1e, which no valid text holds, so it is told apart
 * from an empty one (an empty PRODID is written empty). */
static void
skel_key(const struct ical_spec *s, struct buf *k)
{
	buf_addf(k, "%s\x1f%s\x1f%s\x1f%d\x1f%d-%d-%d %d:%d\x1f%d\x1f%d\x1f%zu\x1f"
	    "%s\x1f%s\x1f%s\x1f%s", s->organizer,
	    s->organizer_name != NULL ? s->organizer_name : "",
	    s->prodid != NULL ? s->prodid : "\x1e", s->sequence,
	    s->year, s->month, s->day, s->hour, s->minute, s->duration_min,
	    s->alarm_before_min, strlen(s->uid), s->summary,
	    s->description != NULL ? s->description : "\x1e",
	    s->url != NULL ? s->url : "\x1e",
	    s->alarm_text != NULL ? s->alarm_text : "\x1e");
}

/* The offset of the one "\r\n" NAME ":" VALUE "\r\n" in text, or -1 if
 * there is none or more than one. */
static long
only_line(const char *text, const char *name, const char *value)
{
	char *line = xasprintf("\r\n%s:%s\r\n", name, value);
	const char *p = strstr(text, line), *q;
	long off = -1;

	if (p != NULL && (q = strstr(p + 1, line)) == NULL)
		off = (long)(p - text) + 2 + (long)strlen(name) + 1;
	free(line);
	return off;
}

/* Make the skeleton for spec s into k: 0, 1 when s cannot have one, or
 * -ERR_*. */
static int
skel_make(const struct ical_spec *s, struct ics_skel *k, struct err *e)
{
	struct ical_spec t = *s;
	struct buf b = BUF_INIT(0);
	char *uid;
	long uo, dto;
	size_t n = strlen(s->uid);
	int rc;

	uid = xmalloc(n + 1);
	memset(uid, 'Q', n);
	uid[n] = '\0';
	t.uid = uid;
	t.dtstamp = STAND_IN_TIME;
	if ((rc = ical_build_direct(&t, &b, e)) < 0)
		goto out;
	uo = only_line(buf_str(&b), "UID", uid);
	dto = only_line(buf_str(&b), "DTSTAMP", "19700101T000001Z");
	if (uo < 0 || dto < 0) {
		rc = 1;
		goto out;
	}
	k->len = b.len;
	k->text = buf_detach(&b, NULL);
	k->uid_off = (size_t)uo;
	k->uid_len = n;
	k->dt_off = (size_t)dto;
out:
	buf_release(&b);
	free(uid);
	return rc;
}

int
ical_build(const struct ical_spec *s, struct buf *out, struct err *e)
{
	struct ics_cache *c = NULL;
	struct ics_skel *k = NULL;
	struct buf key = BUF_INIT(0);
	char stamp[32];
	struct tm tm;
	size_t start = out->len;
	int rc;

	/* What the cache cannot stand in for: a UID that would be
	 * escaped or folded, an invalid one (the direct path says why). */
	if (s->uid == NULL || s->summary == NULL ||
	    strpbrk(s->uid, ",;\\") != NULL || strlen(s->uid) > 60 ||
	    check_spec(s, e) < 0)
		return ical_build_direct(s, out, e);
	pthread_once(&ics_once, ics_tls_init);
	if (ics_tls_ok && (c = pthread_getspecific(ics_tls)) == NULL &&
	    (c = calloc(1, sizeof(*c))) != NULL &&
	    pthread_setspecific(ics_tls, c) != 0) {
		free(c);
		c = NULL;
	}
	if (c == NULL)
		return ical_build_direct(s, out, e);
	skel_key(s, &key);
	for (int i = 0; i < SKEL_SLOTS && k == NULL; i++)
		if (c->v[i].key != NULL && strcmp(c->v[i].key,
		    buf_str(&key)) == 0)
			k = &c->v[i];
	if (k == NULL) {
		struct ics_skel made = { NULL, NULL, 0, 0, 0, 0 };

		if ((rc = skel_make(s, &made, e)) != 0) {
			buf_release(&key);
			return rc < 0 ? rc : ical_build_direct(s, out, e);
		}
		k = &c->v[c->next++ % SKEL_SLOTS];
		free(k->key);
		free(k->text);
		*k = made;
		k->key = buf_detach(&key, NULL);
	}
	buf_release(&key);
	/* libical's form of a UTC DATE-TIME. */
	if (gmtime_r(&s->dtstamp, &tm) == NULL || strftime(stamp,
	    sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) != 16)
		return ical_build_direct(s, out, e);
	if (buf_add(out, k->text, k->len) < 0)
		return err_set(e, ERR_TOOBIG, "calendar '%s': does not fit in "
		    "the output buffer", s->uid);
	memcpy(out->data + start + k->uid_off, s->uid, k->uid_len);
	memcpy(out->data + start + k->dt_off, stamp, 16);
	return 0;
}

/* The first X-LIC-ERROR libical left in c or below, or NULL. */
static const char *
first_parse_error(icalcomponent *c)
{
	icalproperty *p;
	icalcomponent *sub;
	const char *msg;

	p = icalcomponent_get_first_property(c, ICAL_XLICERROR_PROPERTY);
	if (p != NULL)
		return icalproperty_get_xlicerror(p);
	for (sub = icalcomponent_get_first_component(c, ICAL_ANY_COMPONENT);
	    sub != NULL;
	    sub = icalcomponent_get_next_component(c, ICAL_ANY_COMPONENT))
		if ((msg = first_parse_error(sub)) != NULL)
			return msg;
	return NULL;
}

int
ical_check(const char *data, size_t len, size_t max, struct err *e)
{
	icalcomponent *cal = NULL, *ev;
	icalproperty *ver;
	const char *perr;
	char *copy = NULL;
	int rc = 0, nev = 0;

	if (max == 0)
		max = ICAL_CHECK_MAX;
	/* Before parsing: libical builds a tree as large as its input. */
	if (len > max)
		return err_set(e, ERR_TOOBIG, "calendar: %zu bytes, more than "
		    "%zu", len, max);
	if (memchr(data, '\0', len) != NULL)
		return err_set(e, ERR_PARSE, "calendar: NUL byte in the data");
	copy = xstrndup(data, len);
	cal = icalparser_parse_string(copy);
	if (cal == NULL ||
	    icalcomponent_isa(cal) != ICAL_VCALENDAR_COMPONENT) {
		rc = err_set(e, ERR_PARSE, "calendar: not one VCALENDAR");
		goto out;
	}
	if ((perr = first_parse_error(cal)) != NULL) {
		rc = err_set(e, ERR_PARSE, "calendar: %s", perr);
		goto out;
	}
	ver = icalcomponent_get_first_property(cal, ICAL_VERSION_PROPERTY);
	if (ver == NULL || icalproperty_get_version(ver) == NULL ||
	    strcmp(icalproperty_get_version(ver), "2.0") != 0) {
		rc = err_set(e, ERR_PARSE, "calendar: VERSION:2.0 missing");
		goto out;
	}
	for (ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
	    ev != NULL;
	    ev = icalcomponent_get_next_component(cal, ICAL_VEVENT_COMPONENT)) {
		nev++;
		if (icalcomponent_get_first_property(ev,
		    ICAL_UID_PROPERTY) == NULL) {
			rc = err_set(e, ERR_PARSE, "calendar: VEVENT %d has no "
			    "UID", nev);
			goto out;
		}
		if (icalcomponent_get_first_property(ev,
		    ICAL_DTSTART_PROPERTY) == NULL ||
		    icaltime_is_null_time(icalcomponent_get_dtstart(ev))) {
			rc = err_set(e, ERR_PARSE, "calendar: VEVENT %d has no "
			    "DTSTART", nev);
			goto out;
		}
	}
	if (nev == 0)
		rc = err_set(e, ERR_PARSE, "calendar: no VEVENT");
out:
	if (cal != NULL)	/* libical flags NULL as an error */
		icalcomponent_free(cal);
	free(copy);
	return rc;
}
