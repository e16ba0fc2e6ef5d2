/*
 * ical — the reminder .ics (RFC 5545) with libical, and a checker for
 * calendar data from elsewhere.
 *
 * ical_build() makes one VCALENDAR (PRODID, VERSION:2.0, METHOD:PUBLISH)
 * with a VTIMEZONE for Asia/Tokyo and one VEVENT: UID, SEQUENCE, DTSTAMP,
 * ORGANIZER, DTSTART/DTEND;TZID=Asia/Tokyo, SUMMARY, DESCRIPTION, URL and
 * a DISPLAY VALARM.  ORGANIZER is there because RFC 5546 (3.2.1) requires
 * one in a PUBLISH VEVENT; libical's icalrestriction_check() says so.
 * Lines are folded at 75 octets on UTF-8 character boundaries
 * and end in CRLF; text is escaped by libical.  The output depends on the
 * spec only (DTSTAMP is given, not read from the clock), so a re-sent
 * reminder is byte-identical, and an update is told apart by SEQUENCE.
 *
 * The VTIMEZONE is the fixed +0900 rule (Japan has had no daylight saving
 * time since 1951) rather than libical's zoneinfo-derived one: that one
 * carries a "/citadel.org/..." TZID prefix and the 1948-1951 history, and
 * changes with the system's tzdata, which would break byte-identity.
 */
#ifndef SAMAIL_ICAL_H
#define SAMAIL_ICAL_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "err.h"

#define ICAL_TZID		"Asia/Tokyo"
#define ICAL_DEFAULT_DURATION	30		/* minutes */
#define ICAL_DEFAULT_ALARM	(24 * 60)	/* minutes before the start */
#define ICAL_DEFAULT_PRODID	"-//samail//samail reminder//JA"
/* ical_check()'s cap when the caller passes 0. */
#define ICAL_CHECK_MAX		(256 * 1024)

struct ical_spec {
	const char	*prodid;	/* NULL: ICAL_DEFAULT_PRODID */
	const char	*uid;		/* required: stable per declarer + due date */
	int		 sequence;	/* >= 0; bump when re-sending a change */
	time_t		 dtstamp;	/* required (> 0, before the year 3001,
					 * which libical cannot write): when
					 * this version was made */
	const char	*organizer;	/* required: the sender's address,
					 * written as mailto: */
	const char	*organizer_name;	/* optional: its CN */
	int		 year, month, day;	/* the date, in Asia/Tokyo */
	int		 hour, minute;	/* start of the slot, Asia/Tokyo */
	int		 duration_min;	/* 0: ICAL_DEFAULT_DURATION */
	const char	*summary;	/* required, UTF-8, one line */
	const char	*description;	/* optional, UTF-8, line breaks allowed */
	const char	*url;		/* optional https:// URL */
	int		 alarm_before_min;	/* 0: ICAL_DEFAULT_ALARM */
	const char	*alarm_text;	/* NULL: the summary */
};

/*
 * Append the calendar described by spec to out.  On failure out is left
 * as it was.
 *
 * Returns 0, or:
 *   -ERR_INVAL   a field is missing or refused (bad date or time, control
 *                character, invalid UTF-8, UID or organizer not printable
 *                ASCII, bad URL)
 *   -ERR_TOOBIG  out's cap was reached
 */
int	 ical_build(const struct ical_spec *spec, struct buf *out,
	    struct err *e);
/* The same, libical building every byte (ical_build() reuses a calendar
 * it built for a spec that differs only in UID and DTSTAMP). */
int	 ical_build_direct(const struct ical_spec *spec, struct buf *out,
	    struct err *e);

/*
 * Check len bytes of calendar data (not NUL-terminated) from outside:
 * at most max bytes (0: ICAL_CHECK_MAX), parsed by libical without
 * errors, one VCALENDAR with VERSION:2.0 and at least one VEVENT, each
 * with a UID and a DTSTART.
 *
 * Returns 0, or -ERR_TOOBIG (over the cap) or -ERR_PARSE (what is wrong).
 */
int	 ical_check(const char *data, size_t len, size_t max, struct err *e);

#endif
