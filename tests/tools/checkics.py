#!/usr/bin/python3
"""checkics.py — check a samail reminder .ics the way a calendar would.

Run with Debian's /usr/bin/python3 (python3-icalendar).  Expectations come
from options or from a JSON sidecar (--expect FILE, keys with '_').

    checkics.py FILE.ics [--expect X.json] [--uid U] [--sequence N]
        [--dtstart YYYYMMDDTHHMMSS] [--duration MIN] [--alarm-before MIN]
        [--summary S] [--description S | --description-file F] [--url U]
        [--organizer mailto:ADDR] [--organizer-name CN]

Checks: CRLF line ends; every line <= 75 octets and valid UTF-8 by itself
(no fold inside a character); VERSION:2.0, PRODID, METHOD:PUBLISH; a
VTIMEZONE for Asia/Tokyo; one VEVENT with UID, SEQUENCE, DTSTAMP in UTC,
ORGANIZER (a mailto: address: RFC 5546 3.2.1 requires one in a PUBLISH),
DTSTART and DTEND with TZID=Asia/Tokyo; SUMMARY, DESCRIPTION, URL; a
DISPLAY VALARM triggered before the start.

Exit 0 when every check passes, 1 with one line per failure otherwise.
"""

import argparse
import datetime
import json
import re
import sys

import icalendar

TZID = "Asia/Tokyo"
failures = []


def fail(what):
    failures.append(what)


def check_raw(raw):
    if re.search(rb"(?<!\r)\n", raw) or re.search(rb"\r(?!\n)", raw):
        fail("line ends are not all CRLF")
    lines = raw.split(b"\r\n")
    if lines[-1] != b"":
        fail("does not end with CRLF")
    for n, line in enumerate(lines[:-1], 1):
        if len(line) > 75:
            fail("line %d has %d octets, more than 75" % (n, len(line)))
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            fail("line %d is not valid UTF-8 by itself (folded inside a "
                 "character)" % n)


def local(dt):
    return dt.strftime("%Y%m%dT%H%M%S")


def check_event(cal, x):
    tzs = [c for c in cal.walk("VTIMEZONE") if str(c.get("TZID")) == TZID]
    if len(tzs) != 1:
        fail("want one VTIMEZONE with TZID %s, found %d" % (TZID, len(tzs)))
    events = cal.walk("VEVENT")
    if len(events) != 1:
        fail("want one VEVENT, found %d" % len(events))
        return
    ev = events[0]
    uid = ev.get("UID")
    if not uid:
        fail("VEVENT has no UID")
    elif x.get("uid") is not None and str(uid) != x["uid"]:
        fail("UID %r, want %r" % (str(uid), x["uid"]))
    seq = ev.get("SEQUENCE")
    if seq is None:
        fail("VEVENT has no SEQUENCE")
    elif x.get("sequence") is not None and int(seq) != int(x["sequence"]):
        fail("SEQUENCE %s, want %s" % (seq, x["sequence"]))
    stamp = ev.get("DTSTAMP")
    if stamp is None or stamp.dt.utcoffset() != datetime.timedelta(0):
        fail("DTSTAMP missing or not in UTC")

    org = ev.get("ORGANIZER")
    if org is None or not str(org).lower().startswith("mailto:") or \
            "@" not in str(org):
        fail("VEVENT has no ORGANIZER mailto: address (RFC 5546 PUBLISH)")
    else:
        if x.get("organizer") is not None and str(org) != x["organizer"]:
            fail("ORGANIZER %r, want %r" % (str(org), x["organizer"]))
        if x.get("organizer_name") is not None and \
                org.params.get("CN") != x["organizer_name"]:
            fail("ORGANIZER CN %r, want %r" % (org.params.get("CN"),
                                               x["organizer_name"]))

    start, end = ev.get("DTSTART"), ev.get("DTEND")
    for name, prop in (("DTSTART", start), ("DTEND", end)):
        if prop is None:
            fail("VEVENT has no %s" % name)
            return
        if prop.params.get("TZID") != TZID:
            fail("%s TZID is %r, want %s" % (name, prop.params.get("TZID"),
                                             TZID))
        if not isinstance(prop.dt, datetime.datetime) or \
                prop.dt.utcoffset() != datetime.timedelta(hours=9):
            fail("%s %r is not a date-time at +09:00" % (name, prop.dt))
            return
    if x.get("dtstart") is not None and local(start.dt) != x["dtstart"]:
        fail("DTSTART %s, want %s" % (local(start.dt), x["dtstart"]))
    if end.dt <= start.dt:
        fail("DTEND is not after DTSTART")
    if x.get("duration") is not None and \
            end.dt - start.dt != datetime.timedelta(minutes=int(x["duration"])):
        fail("event lasts %s, want %s minutes" % (end.dt - start.dt,
                                                  x["duration"]))

    for key in ("summary", "description", "url"):
        want = x.get(key)
        if key == "description" and x.get("description_file"):
            with open(x["description_file"], encoding="utf-8") as f:
                want = f.read()
        got = ev.get(key.upper())
        if got is None:
            if key == "summary" or want is not None:
                fail("VEVENT has no %s" % key.upper())
            continue
        got = str(got)
        if want is not None and got.replace("\r\n", "\n") != \
                want.replace("\r\n", "\n"):
            fail("%s is %r, want %r" % (key.upper(), got, want))

    alarms = ev.walk("VALARM")
    if not alarms:
        fail("VEVENT has no VALARM")
        return
    for a in alarms:
        if str(a.get("ACTION")) != "DISPLAY":
            fail("VALARM ACTION %r, want DISPLAY" % str(a.get("ACTION")))
        if not a.get("DESCRIPTION"):
            fail("DISPLAY VALARM without DESCRIPTION")
        trig = a.get("TRIGGER")
        if trig is None or not isinstance(trig.dt, datetime.timedelta) or \
                trig.dt >= datetime.timedelta(0):
            fail("VALARM TRIGGER is not a time before the start")
        elif x.get("alarm_before") is not None and \
                -trig.dt != datetime.timedelta(minutes=int(x["alarm_before"])):
            fail("VALARM fires %s before, want %s minutes"
                 % (-trig.dt, x["alarm_before"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ics")
    ap.add_argument("--expect")
    for opt in ("uid", "sequence", "dtstart", "duration", "alarm-before",
                "summary", "description", "description-file", "url",
                "organizer", "organizer-name"):
        ap.add_argument("--" + opt)
    args = ap.parse_args()
    x = {}
    if args.expect:
        with open(args.expect, encoding="utf-8") as f:
            x.update(json.load(f))
    x.update({k: v for k, v in vars(args).items()
              if v is not None and k not in ("ics", "expect")})

    with open(args.ics, "rb") as f:
        raw = f.read()
    check_raw(raw)
    try:
        cal = icalendar.Calendar.from_ical(raw)
    except ValueError as err:
        fail("icalendar cannot parse it: %s" % err)
        cal = None
    if cal is not None:
        for c in cal.walk():
            for prop, err in getattr(c, "errors", ()):
                fail("parse error in %s %s: %s" % (c.name, prop, err))
        if str(cal.get("VERSION")) != "2.0":
            fail("VERSION is %r, want 2.0" % str(cal.get("VERSION")))
        if not cal.get("PRODID"):
            fail("PRODID missing")
        if str(cal.get("METHOD")) != "PUBLISH":
            fail("METHOD is %r, want PUBLISH" % str(cal.get("METHOD")))
        check_event(cal, x)

    for f in failures:
        print("checkics: %s: %s" % (args.ics, f))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
