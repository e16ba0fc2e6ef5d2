#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <jansson.h>
#include <libical/ical.h>

#include "buf.h"
#include "err.h"
#include "ical.h"

/* Generated files go next to the test binary: <build>/tests/out/. */
static char outdir[4096];

#define UID	"remind-42-20240315@samail.example.jp"
#define SUMMARY	"情報セキュリティ自社診断の再実施"
#define DESC	"前回の「5分でできる！情報セキュリティ自社診断」から1年が経ちました。\n" \
		"25の質問に答えて、いまの対策状況をもう一度確かめましょう。\n" \
		"診断シートとパンフレット: " \
		"https://www.ipa.go.jp/security/guide/sme/5minutes.html\n" \
		"ご不明な点は事務局（samail.example.jp）までお問い合わせください。"
#define URL	"https://www.ipa.go.jp/security/guide/sme/5minutes.html"

/* The reminder that tests/data/msg/reminder.ics holds. */
static const struct ical_spec sample = {
	.uid = UID,
	.sequence = 1,
	.dtstamp = 1709251200,		/* 2024-03-01T00:00:00Z */
	.organizer = "news@samail.example.jp",
	.organizer_name = "SECURITY ACTION 事務局",
	.year = 2024, .month = 3, .day = 15,
	.hour = 10, .minute = 0,
	.summary = SUMMARY,
	.description = DESC,
	.url = URL,
	.alarm_text = "明日は情報セキュリティ自社診断の予定日です",
};

static char *
slurp(const char *path, size_t *lenp)
{
	gchar *data = NULL;
	gsize len = 0;

	assert_true(g_file_get_contents(path, &data, &len, NULL));
	*lenp = len;
	return data;
}

static void
write_out(const char *name, const char *data, size_t len, char *path,
    size_t pathsz)
{
	snprintf(path, pathsz, "%s/%s", outdir, name);
	assert_true(g_file_set_contents(path, data, (gssize)len, NULL));
}

/*
 * Run checkics.py on path with expectations from a JSON sidecar; quiet hides
 * the report of a run that is meant to fail.
 */
static int
run_checkics(const char *path, json_t *expect, int quiet)
{
	char jpath[4200], cmd[8600];

	snprintf(jpath, sizeof(jpath), "%s.json", path);
	assert_int_equal(json_dump_file(expect, jpath, JSON_INDENT(1)), 0);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/tools/checkics.py "
	    "'%s' --expect '%s'%s", path, jpath, quiet ? " >/dev/null" : "");
	return system(cmd);
}

static icalcomponent *
parse(const struct buf *b)
{
	icalcomponent *c = icalparser_parse_string(buf_str(b));

	assert_non_null(c);
	assert_int_equal(icalcomponent_isa(c), ICAL_VCALENDAR_COMPONENT);
	return c;
}

static const char *
param_tzid(icalproperty *p)
{
	icalparameter *tz = icalproperty_get_first_parameter(p,
	    ICAL_TZID_PARAMETER);

	return tz != NULL ? icalparameter_get_tzid(tz) : NULL;
}

/*
 * Each line CRLF-terminated with no other CR, <= 75 octets, valid UTF-8 on
 * its own, and no continuation line that holds nothing but its space.
 */
static void
assert_folded(const struct buf *b)
{
	const char *p = b->data, *end = b->data + b->len, *nl;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		assert_non_null(nl);
		assert_true(nl > p && nl[-1] == '\r');
		assert_null(memchr(p, '\r', (size_t)(nl - 1 - p)));
		assert_in_range(nl - 1 - p, 2, 75);
		assert_false(nl - 1 - p == 1 && *p == ' ');
		assert_true(g_utf8_validate(p, nl - 1 - p, NULL));
		p = nl + 1;
	}
}

/* Built, folded right, and the description reads back as given. */
static void
assert_folded_round_trip(const struct ical_spec *s)
{
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	icalcomponent *cal, *ev;

	assert_int_equal(ical_build(s, &b, &e), 0);
	assert_folded(&b);
	cal = parse(&b);
	ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
	assert_string_equal(icalcomponent_get_description(ev),
	    s->description);
	icalcomponent_free(cal);
	buf_release(&b);
}

/* Round trip through libical: every field reads back as given. */
static void
test_round_trip(void **state)
{
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	icalcomponent *cal, *ev, *al, *tz;
	icalproperty *p;
	struct icaltimetype t;
	struct icaltriggertype trig;

	(void)state;
	assert_int_equal(ical_build(&sample, &b, &e), 0);
	cal = parse(&b);
	assert_int_equal(icalcomponent_count_errors(cal), 0);
	assert_string_equal(icalproperty_get_version(
	    icalcomponent_get_first_property(cal, ICAL_VERSION_PROPERTY)),
	    "2.0");
	assert_string_equal(icalproperty_get_prodid(
	    icalcomponent_get_first_property(cal, ICAL_PRODID_PROPERTY)),
	    ICAL_DEFAULT_PRODID);
	assert_int_equal(icalcomponent_get_method(cal), ICAL_METHOD_PUBLISH);
	tz = icalcomponent_get_first_component(cal, ICAL_VTIMEZONE_COMPONENT);
	assert_non_null(tz);
	assert_string_equal(icalproperty_get_tzid(
	    icalcomponent_get_first_property(tz, ICAL_TZID_PROPERTY)),
	    "Asia/Tokyo");

	ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
	assert_non_null(ev);
	assert_null(icalcomponent_get_next_component(cal,
	    ICAL_VEVENT_COMPONENT));
	assert_string_equal(icalcomponent_get_uid(ev), UID);
	assert_int_equal(icalcomponent_get_sequence(ev), 1);
	assert_string_equal(icalcomponent_get_summary(ev), SUMMARY);
	assert_string_equal(icalcomponent_get_description(ev), DESC);
	assert_string_equal(icalproperty_get_url(
	    icalcomponent_get_first_property(ev, ICAL_URL_PROPERTY)), URL);
	p = icalcomponent_get_first_property(ev, ICAL_ORGANIZER_PROPERTY);
	assert_non_null(p);
	assert_string_equal(icalproperty_get_organizer(p),
	    "mailto:news@samail.example.jp");
	assert_string_equal(icalparameter_get_cn(
	    icalproperty_get_first_parameter(p, ICAL_CN_PARAMETER)),
	    "SECURITY ACTION 事務局");

	t = icalcomponent_get_dtstamp(ev);
	assert_true(icaltime_is_utc(t));
	assert_int_equal(icaltime_as_timet(t), 1709251200);

	p = icalcomponent_get_first_property(ev, ICAL_DTSTART_PROPERTY);
	assert_string_equal(param_tzid(p), "Asia/Tokyo");
	t = icalproperty_get_dtstart(p);
	assert_int_equal(t.year, 2024);
	assert_int_equal(t.month, 3);
	assert_int_equal(t.day, 15);
	assert_int_equal(t.hour, 10);
	assert_int_equal(t.minute, 0);
	p = icalcomponent_get_first_property(ev, ICAL_DTEND_PROPERTY);
	assert_string_equal(param_tzid(p), "Asia/Tokyo");
	t = icalproperty_get_dtend(p);
	/* The default slot: 30 minutes. */
	assert_int_equal(t.hour, 10);
	assert_int_equal(t.minute, 30);

	al = icalcomponent_get_first_component(ev, ICAL_VALARM_COMPONENT);
	assert_non_null(al);
	assert_int_equal(icalproperty_get_action(
	    icalcomponent_get_first_property(al, ICAL_ACTION_PROPERTY)),
	    ICAL_ACTION_DISPLAY);
	trig = icalproperty_get_trigger(
	    icalcomponent_get_first_property(al, ICAL_TRIGGER_PROPERTY));
	/* The default alarm: one day before. */
	assert_int_equal(icaldurationtype_as_int(trig.duration), -86400);
	assert_string_equal(icalcomponent_get_description(al),
	    "明日は情報セキュリティ自社診断の予定日です");
	/* What RFC 5546 (iTIP) asks of a PUBLISH, as libical checks it:
	 * one ORGANIZER in the VEVENT among others. */
	assert_int_equal(icalrestriction_check(cal), 1);
	assert_int_equal(icalcomponent_count_errors(cal), 0);
	icalcomponent_free(cal);

	/* Exactly what the sample fixture holds, and the same each time. */
	{
		size_t len;
		char *want = slurp("tests/data/msg/reminder.ics", &len);

		if (b.len != len || memcmp(b.data, want, len) != 0) {
			char path[4200];

			write_out("reminder.ics.new", b.data, b.len, path,
			    sizeof(path));
			fail_msg("ical_build output differs from "
			    "tests/data/msg/reminder.ics; if the change is "
			    "meant, copy %s over it", path);
		}
		g_free(want);
	}
	assert_int_equal(ical_check(b.data, b.len, 0, &e), 0);
	buf_release(&b);
}

static void
test_checkics(void **state)
{
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	struct ical_spec s = sample;
	char path[4200];
	json_t *x;

	(void)state;
	if (access("/usr/bin/python3", X_OK) != 0)
		skip();
	s.sequence = 3;
	s.duration_min = 45;
	s.alarm_before_min = 90;
	s.hour = 16;
	s.minute = 30;
	assert_int_equal(ical_build(&s, &b, &e), 0);
	write_out("checkics.ics", b.data, b.len, path, sizeof(path));
	x = json_pack("{s:s, s:i, s:s, s:i, s:i, s:s, s:s, s:s, s:s, s:s}",
	    "uid", UID, "sequence", 3, "dtstart", "20240315T163000",
	    "duration", 45, "alarm_before", 90, "summary", SUMMARY,
	    "description", DESC, "url", URL,
	    "organizer", "mailto:news@samail.example.jp",
	    "organizer_name", "SECURITY ACTION 事務局");
	assert_int_equal(run_checkics(path, x, 0), 0);
	/* The checker can fail: a wrong expectation is reported. */
	json_object_set_new(x, "sequence", json_integer(4));
	assert_int_not_equal(run_checkics(path, x, 1), 0);
	json_decref(x);
	buf_release(&b);
}

static void
test_deterministic(void **state)
{
	struct buf a = BUF_INIT(0), b = BUF_INIT(0);
	struct err e = ERR_INIT;
	struct ical_spec s = sample;

	(void)state;
	assert_int_equal(ical_build(&sample, &a, &e), 0);
	assert_int_equal(ical_build(&sample, &b, &e), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	/* A re-sent update differs only where it should. */
	s.sequence = 2;
	buf_reset(&b);
	assert_int_equal(ical_build(&s, &b, &e), 0);
	assert_non_null(strstr(buf_str(&b), "\r\nSEQUENCE:2\r\n"));
	assert_non_null(strstr(buf_str(&a), "\r\nSEQUENCE:1\r\n"));
	buf_release(&a);
	buf_release(&b);
}

/*
 * Long Japanese text shifted by 0-3 ASCII bytes, so that the 75-octet
 * fold point falls at every offset inside a 3-byte character: no line
 * may split one, and unfolding must give the text back.
 */
static void
test_folding_utf8(void **state)
{
	struct buf text = BUF_INIT(0);
	struct ical_spec s = sample;

	(void)state;
	for (int shift = 0; shift < 4; shift++) {
		buf_reset(&text);
		for (int i = 0; i < shift; i++)
			buf_addch(&text, 'x');
		for (int i = 0; i < 12; i++)
			buf_addstr(&text, "情報セキュリティ対策、よろしく；"
			    "お願い致します𠮷");
		s.summary = "診断";
		s.description = buf_str(&text);
		assert_folded_round_trip(&s);
	}
	buf_release(&text);
}

/*
 * Every length of a long value, so that the last chunk of the folded line
 * is every size: libical 3.0.16 folds inside the CRLF when it is 73 or 74
 * octets, which ical_build() mends.
 */
static void
test_folding_sweep(void **state)
{
	struct buf text = BUF_INIT(0);
	struct ical_spec s = sample;

	(void)state;
	for (int n = 50; n < 400; n++) {
		buf_reset(&text);
		for (int i = 0; i < n; i++)
			buf_addch(&text, 'a' + i % 26);
		s.description = buf_str(&text);
		s.url = NULL;
		assert_folded_round_trip(&s);
	}
	buf_release(&text);
}

/* Text that libical must escape, and CRLF turned into one line break. */
static void
test_escaping(void **state)
{
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	struct ical_spec s = sample;
	icalcomponent *cal, *ev;

	(void)state;
	s.summary = "自社診断; 5か条, その1 \\ 確認";
	s.description = "一行目\r\n二行目\rBEGIN:VALARM\nEND:VEVENT";
	assert_int_equal(ical_build(&s, &b, &e), 0);
	/* No line of the text turned into a line of the calendar. */
	assert_null(strstr(buf_str(&b), "\r\nEND:VEVENT\r\nEND:VEVENT"));
	assert_int_equal(ical_check(b.data, b.len, 0, &e), 0);
	cal = parse(&b);
	ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
	assert_string_equal(icalcomponent_get_summary(ev), s.summary);
	assert_string_equal(icalcomponent_get_description(ev),
	    "一行目\n二行目\nBEGIN:VALARM\nEND:VEVENT");
	assert_int_equal(icalcomponent_count_components(ev,
	    ICAL_VALARM_COMPONENT), 1);
	icalcomponent_free(cal);
	buf_release(&b);
}

static void
test_end_crosses_midnight(void **state)
{
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;
	struct ical_spec s = sample;

	(void)state;
	s.year = 2024;
	s.month = 2;
	s.day = 29;
	s.hour = 23;
	s.minute = 45;
	s.duration_min = 30;
	assert_int_equal(ical_build(&s, &b, &e), 0);
	assert_non_null(strstr(buf_str(&b),
	    "DTSTART;TZID=Asia/Tokyo:20240229T234500\r\n"));
	assert_non_null(strstr(buf_str(&b),
	    "DTEND;TZID=Asia/Tokyo:20240301T001500\r\n"));
	buf_release(&b);
}

static void
expect_inval(const struct ical_spec *s, const char *needle)
{
	struct buf b = BUF_INIT(0);
	struct err e = ERR_INIT;

	buf_addstr(&b, "keep");
	assert_int_equal(ical_build(s, &b, &e), -ERR_INVAL);
	if (strstr(e.msg, needle) == NULL)
		fail_msg("error '%s' does not mention '%s'", e.msg, needle);
	/* The output is left as it was. */
	assert_string_equal(buf_str(&b), "keep");
	buf_release(&b);
}

static void
test_refused(void **state)
{
	struct ical_spec s;

	(void)state;
	s = sample; s.day = 30; s.month = 2;
	expect_inval(&s, "DTSTART");
	s = sample; s.year = 2023; s.month = 2; s.day = 29;
	expect_inval(&s, "DTSTART");
	s = sample; s.hour = 24;
	expect_inval(&s, "DTSTART");
	s = sample; s.minute = 60;
	expect_inval(&s, "DTSTART");
	s = sample; s.sequence = -1;
	expect_inval(&s, "SEQUENCE");
	s = sample; s.dtstamp = 0;
	expect_inval(&s, "DTSTAMP");
	s = sample; s.duration_min = -5;
	expect_inval(&s, "DTEND");
	s = sample; s.alarm_before_min = -1;
	expect_inval(&s, "VALARM");
	s = sample; s.uid = NULL;
	expect_inval(&s, "UID");
	s = sample; s.uid = "remind 42@x";
	expect_inval(&s, "UID");
	s = sample; s.uid = "remind-42@x\r\nATTENDEE:x";
	expect_inval(&s, "UID");
	s = sample; s.uid = "診断@x";
	expect_inval(&s, "UID");
	s = sample; s.summary = "";
	expect_inval(&s, "SUMMARY");
	s = sample; s.summary = "診断\r\nEND:VEVENT";
	expect_inval(&s, "SUMMARY");
	s = sample; s.summary = "診断\n";
	expect_inval(&s, "SUMMARY");
	s = sample; s.summary = "bad \xe3\x81 utf-8";
	expect_inval(&s, "UTF-8");
	s = sample; s.description = "bell \x07 here";
	expect_inval(&s, "DESCRIPTION");
	s = sample; s.description = "C1 \xc2\x85 NEL";
	expect_inval(&s, "DESCRIPTION");
	s = sample; s.alarm_text = "a\nb";
	expect_inval(&s, "VALARM");
	s = sample; s.url = "javascript:alert(1)";
	expect_inval(&s, "URL");
	s = sample; s.url = "https://ipa.go.jp/a b";
	expect_inval(&s, "URL");
	s = sample; s.prodid = "-//x//\r\nX-EVIL:1";
	expect_inval(&s, "PRODID");
	s = sample; s.organizer = NULL;
	expect_inval(&s, "ORGANIZER");
	s = sample; s.organizer = "news";
	expect_inval(&s, "ORGANIZER");
	s = sample; s.organizer = "news@x\r\nATTENDEE:y";
	expect_inval(&s, "ORGANIZER");
	s = sample; s.organizer_name = "事務局\r\nX-EVIL:1";
	expect_inval(&s, "ORGANIZER");
}

/* Hostile or broken calendars from tests/data/msg/bad-*.ics. */
static void
test_check_rejects(void **state)
{
	static const struct {
		const char	*file;
		const char	*needle;
	} bad[] = {
		{ "bad-no-dtstart.ics",	"DTSTART" },
		{ "bad-no-uid.ics",	"UID" },
		{ "bad-no-vevent.ics",	"no VEVENT" },
		{ "bad-no-version.ics",	"VERSION" },
		{ "bad-not-calendar.ics", "VCALENDAR" },
		{ "bad-bad-dtstart.ics", "DTSTART" },
	};
	struct err e = ERR_INIT;
	char path[256], *data;
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(path, sizeof(path), "tests/data/msg/%s", bad[i].file);
		data = slurp(path, &len);
		err_clear(&e);
		if (ical_check(data, len, 0, &e) != -ERR_PARSE)
			fail_msg("%s: not rejected as -ERR_PARSE (%s)", path,
			    e.msg);
		if (strstr(e.msg, bad[i].needle) == NULL)
			fail_msg("%s: error '%s' does not mention '%s'", path,
			    e.msg, bad[i].needle);
		g_free(data);
	}
}

static void
test_check_limits(void **state)
{
	struct err e = ERR_INIT;
	char *data;
	size_t len;

	(void)state;
	data = slurp("tests/data/msg/reminder.ics", &len);
	assert_int_equal(ical_check(data, len, 0, &e), 0);
	assert_int_equal(ical_check(data, len, len, &e), 0);
	/* One byte over the cap: refused before libical parses it. */
	assert_int_equal(ical_check(data, len, len - 1, &e), -ERR_TOOBIG);
	/* A NUL inside. */
	data[40] = '\0';
	assert_int_equal(ical_check(data, len, 0, &e), -ERR_PARSE);
	assert_int_equal(ical_check("", 0, 0, &e), -ERR_PARSE);
	g_free(data);
}

/*
 * ical_build() reuses what libical built for a spec differing only in UID
 * and DTSTAMP: its bytes must be libical's own (ical_build_direct()) for
 * any UID (lengths around the fold, characters TEXT escapes), stamp,
 * SEQUENCE, slot and text, in any order, with the slots evicted.
 */
static void
test_cache_is_libical(void **state)
{
	static const char *const sums[] = { SUMMARY, "Self-assessment",
	    "見直し、自社診断；テスト\\QQQQ" };
	static const char *const uids[] = {
		"reminder-1-20261201.a1b2c3d4@example.jp",
		"reminder-123456-20261201.a1b2c3d4@example.jp",
		"r", "QQQQ", "a,b@example.jp", "a;b\\c@example.jp",
		"reminder-1234567890123-20261201.a1b2c3d4@mail.example.jp",
		"reminder-12345678901234567890-20261201.a1b2c3d4@mail.example.jp",
		"reminder-12345678901234567890123456789012345-20261201.a1b2c3d4@mail.example.jp",
	};
	struct err e = ERR_INIT;
	unsigned seed = 20261127;
	int n = 0;

	(void)state;
	for (int round = 0; round < 600; round++) {
		struct ical_spec s = sample;
		struct buf a = BUF_INIT(0), b = BUF_INIT(0);
		char uid[128];

		seed = seed * 1103515245u + 12345u;
		snprintf(uid, sizeof(uid), "%s", uids[seed % 9]);
		if ((seed >> 8) % 3 == 0)	/* other lengths too */
			snprintf(uid, sizeof(uid), "reminder-%u-2026120%u.x@e.jp",
			    seed % 100000u * ((seed >> 4) % 7 + 1), seed % 9);
		s.uid = uid;
		s.dtstamp = (time_t)(1700000000u + seed % 90000000u);
		s.sequence = (int)((seed >> 3) % 3);
		s.day = 1 + (int)((seed >> 5) % 2) * 14;
		s.hour = 9 + (int)((seed >> 7) % 2);
		s.summary = sums[(seed >> 9) % 3];
		s.description = (seed >> 11) % 4 == 0 ? NULL : DESC;
		s.url = (seed >> 13) % 5 == 0 ? NULL : URL;
		assert_int_equal(ical_build(&s, &a, &e), 0);
		assert_int_equal(ical_build_direct(&s, &b, &e), 0);
		if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
			fail_msg("round %d, UID '%s', DTSTAMP %lld: ical_build "
			    "differs from libical's own build", round, uid,
			    (long long)s.dtstamp);
		n += strstr(a.data, "19700101T000001Z") == NULL;
		buf_release(&a);
		buf_release(&b);
	}
	assert_int_equal(n, 600);
	/* The last DTSTAMP libical writes, and the first it cannot (it
	 * wrote "00000000T000000" where the cache wrote the date): both
	 * ways alike, the second refused. */
	for (int i = 0; i < 2; i++) {
		struct ical_spec s = sample;
		struct buf a = BUF_INIT(0), b = BUF_INIT(0);
		int ra, rb;

		s.dtstamp = (time_t)32535215999LL + i;	/* 3001-01-01 */
		ra = ical_build(&s, &a, &e);
		rb = ical_build_direct(&s, &b, &e);
		assert_int_equal(ra, i ? -ERR_INVAL : 0);
		assert_int_equal(rb, ra);
		if (i)
			assert_non_null(strstr(e.msg, "DTSTAMP"));
		else
			assert_non_null(strstr(a.data,
			    "DTSTAMP:30001231T235959Z\r\n"));
		if (a.len != b.len || (a.len > 0 &&
		    memcmp(a.data, b.data, a.len) != 0))
			fail_msg("DTSTAMP %lld: ical_build differs from "
			    "libical's own build", (long long)s.dtstamp);
		buf_release(&a);
		buf_release(&b);
	}
	/* No PRODID (the default) and an empty one are two calendars: the
	 * one built first must not stand in for the other. */
	for (int i = 0; i < 2; i++) {
		struct ical_spec s = sample;
		struct buf a = BUF_INIT(0), b = BUF_INIT(0);

		s.prodid = i == 0 ? NULL : "";
		assert_int_equal(ical_build(&s, &a, &e), 0);
		assert_int_equal(ical_build_direct(&s, &b, &e), 0);
		if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
			fail_msg("PRODID %s: ical_build differs from libical's "
			    "own build", i == 0 ? "NULL" : "\"\"");
		buf_release(&a);
		buf_release(&b);
	}
	/* Another sender or name is another calendar (the From of a
	 * locale, a changed config): both ways alike. */
	{
		static const char *const orgs[][2] = {
			{ "news@samail.example.jp", "SECURITY ACTION 事務局" },
			{ "news@samail.example.jp", "SECURITY ACTION office" },
			{ "news@samail.example.jp", NULL },
			{ "info@samail.example.jp", NULL },
			{ "news@samail.example.jp", "A, B; \"C\"" },
		};

		for (int i = 0; i < 5; i++) {
			struct ical_spec s = sample;
			struct buf a = BUF_INIT(0), b = BUF_INIT(0);

			s.organizer = orgs[i][0];
			s.organizer_name = orgs[i][1];
			assert_int_equal(ical_build(&s, &a, &e), 0);
			assert_int_equal(ical_build_direct(&s, &b, &e), 0);
			if (a.len != b.len || memcmp(a.data, b.data, a.len))
				fail_msg("ORGANIZER %s %s: ical_build differs "
				    "from libical's own build", orgs[i][0],
				    orgs[i][1] ? orgs[i][1] : "(no name)");
			buf_release(&a);
			buf_release(&b);
		}
	}
	/* A refused spec says why, as before, and adds nothing. */
	{
		struct ical_spec s = sample;
		struct buf a = BUF_INIT(0);

		s.uid = "a b";
		assert_int_equal(ical_build(&s, &a, &e), -ERR_INVAL);
		assert_non_null(strstr(e.msg, "UID"));
		assert_int_equal(a.len, 0);
		buf_release(&a);
	}
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_cache_is_libical),
		cmocka_unit_test(test_checkics),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_folding_utf8),
		cmocka_unit_test(test_folding_sweep),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_end_crosses_midnight),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_check_rejects),
		cmocka_unit_test(test_check_limits),
	};
	char *self;

	(void)argc;
	self = g_strdup(argv[0]);
	snprintf(outdir, sizeof(outdir), "%s/out", dirname(self));
	g_free(self);
	mkdir(outdir, 0755);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
