#!/bin/sh
# Reminders over a simulated year: a few hundred declarers, `remind build`
# and `send` (maildir) once a day with --now, some days missed (several in
# a row, once longer than catch_up_days), a relay outage (build without
# send), new self-diagnoses mid-cycle (update and import), star changes,
# unsubscribes.  The reminders each declarer should get are computed here
# independently, in Python, from the rules of issue 6 / lib/remind.h, and
# compared with what arrived in the maildir and with the reminder table.
. "$(dirname "$0")/lib.sh"
$PY -c 'import icalendar' 2>/dev/null || { echo "python3-icalendar missing"; exit 77; }
write_config <<CONF
[unsubscribe]
base_url = https://news.example.jp/u/
CONF
sam init >/dev/null 2>&1 || { echo "init failed"; exit 1; }
export SRCDIR

# --- the rules, independently ---------------------------------------------
cat > model.py <<'PY'
import calendar
import datetime as dt

INTERVAL, STEPUP, OFFSETS, OVERDUE, CATCH = 12, 6, (30, 7, 0), 3, 14
DAY = dt.timedelta(days=1)


def add_months(d, n):
    y, m = divmod(d.month - 1 + n, 12)
    y += d.year
    return dt.date(y, m + 1, min(d.day, calendar.monthrange(y, m + 1)[1]))


def moments(anchor, due):
    out = [(due - o * DAY, o) for o in OFFSETS if due - o * DAY > anchor]
    for k in range(1, OVERDUE + 1):
        d = add_months(due, k)
        out.append((d, -(d - due).days))
    return sorted(out)


def cycle(star, declared, assessed, today):
    """(kind, anchor, due, n) or None."""
    if assessed:
        kind, anchor, first = "reassess", assessed, INTERVAL
    elif declared and star == 2:
        kind, anchor, first = "reassess", declared, INTERVAL
    elif declared:
        kind, anchor, first = "stepup", declared, STEPUP
    else:
        return None
    n = 1
    while True:
        due = add_months(anchor, first + (n - 1) * INTERVAL)
        ms = moments(anchor, due)
        end = ms[-1][0] if ms else due
        if end + CATCH * DAY >= today:
            return kind, anchor, due, n
        n += 1


def slot_day(due, today):
    if today <= due:
        return due
    d = today + DAY
    while d.weekday() >= 5:
        d += DAY
    return d


class Row:
    def __init__(self, kind, state):
        self.kind, self.state = kind, state
        self.outbox = None        # queued, sent, cancelled (None: skipped)
        self.mail = None


class Decl:
    def __init__(self, email, star, declared, assessed, locale):
        self.email, self.star = email, star
        self.declared, self.assessed, self.locale = declared, assessed, locale
        self.active = True
        self.rows = {}            # (due, offset) -> Row

    def build(self, today):
        if not self.active:
            return
        c = cycle(self.star, self.declared, self.assessed, today)
        for (due, _), r in self.rows.items():
            if r.state == "queued" and r.outbox == "queued" and \
                    (c is None or due != c[2] or r.kind != c[0]):
                r.state = r.outbox = "cancelled"
        if c is None:
            return
        kind, anchor, due, _ = c
        ms = moments(anchor, due)
        done = [(due, o) in self.rows for _, o in ms]
        last_done = max([d for (d, _), x in zip(ms, done) if x],
                        default=None)
        pick, skip = None, []
        for (d, o), x in zip(ms, done):
            if x or d > today:
                continue
            if (today - d).days > CATCH or (last_done and d < last_done):
                skip.append(o)
                continue
            if pick is not None:
                skip.append(pick)
            pick = o
        for o in skip:
            self.rows[(due, o)] = Row(kind, "skipped")
        if pick is None:
            return
        seq = 0
        for (d, _), r in self.rows.items():
            if d != due:
                continue
            if r.state == "queued" and r.outbox == "queued":
                r.state = r.outbox = "cancelled"
            if r.state != "skipped":
                seq += 1
        r = self.rows[(due, pick)] = Row(kind, "queued")
        r.outbox = "queued"
        r.mail = dict(email=self.email, due=due, offset=pick, day=today,
                      seq=seq, kind=kind, slot=slot_day(due, today),
                      locale=self.locale)

    def send(self):
        for r in self.rows.values():
            if r.outbox == "queued":
                # The sender cancels what an inactive declarer would get.
                r.outbox = "sent" if self.active else "cancelled"
PY

# --- the declarers and the year's plan --------------------------------------
$PY - <<'PY'
import csv, datetime as dt, json, random
from model import *

random.seed(6)
D = dt.date.fromisoformat
start, end = D("2026-01-01"), D("2026-12-31")


def rnd(a, b):
    a, b = D(a), D(b)
    return a + random.randrange((b - a).days + 1) * DAY


decls = []
special = [  # star, declared, assessed: leap days, month ends, old anchors
    (2, "2023-05-01", "2024-02-29"), (1, "2023-05-01", "2025-02-28"),
    (2, "2024-01-31", "2025-01-31"), (2, "2024-03-31", "2025-03-31"),
    (1, "2024-05-31", "2025-05-31"), (2, "2024-08-31", "2025-08-31"),
    (1, "2025-08-31", None), (1, "2025-07-31", None), (1, "2025-08-29", None),
    (1, "2025-08-30", None), (2, "2025-02-28", None), (2, "2024-02-29", None),
    (2, "2022-03-15", None), (1, "2021-11-30", None), (2, "2022-12-31", None),
    (1, None, "2025-10-31"), (2, None, None), (1, None, None),
]
for i in range(300):
    if i < len(special):
        star, decl, ass = special[i]
    else:
        r = random.random()
        star = 1 if r < 0.5 else 2
        if random.random() < 0.06:
            decl = ass = None
        elif star == 1:
            decl = str(rnd("2024-01-01", "2026-01-01"))
            ass = str(rnd(decl, "2026-01-01")) if random.random() < 0.4 else None
        else:
            decl = str(rnd("2023-06-01", "2026-01-01"))
            ass = str(rnd("2024-01-01", "2025-12-31")) if random.random() < 0.6 else None
    loc = "en" if i % 5 == 3 else "ja"
    org = ("Example & <Sons> %d" % i) if loc == "en" else "株式会社テスト%d" % i
    name = None if i % 3 == 0 else ("山田 太郎%d" % i if loc == "ja" else "Taro Yamada %d" % i)
    decls.append(dict(email="u%d@example.jp" % i, org=org, name=name, star=star,
                      declared=decl, assessed=ass, locale=loc))

joiners = []
for i in range(300, 320):
    decl = str(rnd("2025-11-01", "2026-03-31"))
    joiners.append(dict(email="u%d@example.jp" % i, org="新規株式会社%d" % i,
                        name=None, star=1 + i % 2, declared=decl, assessed=None,
                        locale="ja"))


def write(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["email", "org", "name", "star", "declared", "assessed", "locale"])
        for d in rows:
            w.writerow([d["email"], d["org"], d["name"] or "", d["star"],
                        d["declared"] or "", d["assessed"] or "", d["locale"]])


write("declarers.csv", decls)
write("joiners.csv", joiners)

# Days without any run: 5 in a row, 9 in a row, 16 in a row (more than
# catch_up_days), and a dozen single days.
skip = set()
for a, n in (("2026-02-09", 5), ("2026-07-20", 9), ("2026-10-01", 16)):
    skip |= {D(a) + k * DAY for k in range(n)}
days = [start + k * DAY for k in range((end - start).days + 1)]
singles = [d for d in days if d not in skip and d.month not in (6, 11)]
skip |= set(random.sample(singles, 12))
# The relay is down: build, no send (two days in June; ten in November,
# long enough for a newer reminder of an event to replace an unsent one).
no_send = {D("2026-06-01"), D("2026-06-02")} | \
    {D("2026-11-04") + k * DAY for k in range(10)}


def due_on(d, day):
    c = cycle(d["star"], d["declared"] and D(d["declared"]),
              d["assessed"] and D(d["assessed"]), day)
    return c


# Events, each before that day's build.  Mid-cycle: the cycle open on the
# day has reminders both before and after it.
def midcycle(d, day, kind=None):
    c = due_on(d, day)
    if c is None or (kind and c[0] != kind):
        return False
    ms = [m for m, _ in moments(c[1], c[2])]
    return ms[0] < day <= ms[-1]


active = [d for d in decls if d["declared"] or d["assessed"]]
events = []
for d in random.sample(active[20:], 3):
    events.append(dict(day="2026-01-01", op="status", email=d["email"],
                       value="unsubscribed"))
taken = {e["email"] for e in events}


def pick(day, n, kind=None, pool=decls):
    got = [d for d in pool if d["email"] not in taken and
           midcycle(d, D(day), kind)]
    got = random.sample(got, min(n, len(got)))
    taken.update(d["email"] for d in got)
    return got


events.append(dict(day="2026-04-01", op="import", file="joiners.csv"))
for d in pick("2026-05-01", 6, "stepup"):
    if d["star"] == 1 and not d["assessed"]:
        events.append(dict(day="2026-05-01", op="update", email=d["email"],
                           field="star", value="2"))
for d in pick("2026-06-20", 8):
    events.append(dict(day="2026-06-20", op="update", email=d["email"],
                       field="assessed", value="2026-06-18", score=70))
for d in pick("2026-08-03", 8):
    events.append(dict(day="2026-08-03", op="reimport", email=d["email"],
                       org=d["org"], value=str(rnd("2026-07-01", "2026-08-02"))))
for d in pick("2026-09-01", 5):
    events.append(dict(day="2026-09-01", op="remove", email=d["email"]))
# On 06-03: those whose reminder of 06-02 is still queued (relay down)
# record a new self-diagnosis; chosen from the database at run time.
events.append(dict(day="2026-06-03", op="assess-queued", value="2026-06-02", n=6))

json.dump(dict(skip=sorted(map(str, skip)), no_send=sorted(map(str, no_send)),
               events=events, declarers=decls, joiners=joiners),
          open("plan.json", "w"), ensure_ascii=False, indent=0)
PY
[ -f plan.json ] || { echo "plan not written"; exit 1; }
expect_exit 0 "import the declarers" -- sam --now 2026-01-01T00:00:00Z subscriber import declarers.csv

# --- the year -----------------------------------------------------------------
start=$(date +%s)
$PY - <<'PY' > driver.log 2>&1
import csv, datetime as dt, json, os, sqlite3, subprocess, sys
plan = json.load(open("plan.json"))
T = os.environ["T"]
sam = [os.environ["SAMAIL"], "-c", T + "/samail.conf", "-q"]
applied = []


def run(now, *args):
    r = subprocess.run(sam + ["--now", now] + list(args),
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("FAILED (%d): %s %s\n%s%s" % (r.returncode, now, " ".join(args),
                                            r.stdout, r.stderr))
        sys.exit(1)
    return r.stdout


day = dt.date(2026, 1, 1)
skip, no_send = set(plan["skip"]), set(plan["no_send"])
while day.year == 2026:
    d = str(day)
    t0 = d + "T00:00:00Z"
    for e in (e for e in plan["events"] if e["day"] == d):
        if e["op"] == "status":
            run(t0, "subscriber", "update", e["email"], "--status", e["value"])
        elif e["op"] == "remove":
            run(t0, "subscriber", "remove", e["email"])
        elif e["op"] == "import":
            run(t0, "subscriber", "import", e["file"])
        elif e["op"] == "update":
            extra = ["--score", str(e["score"])] if e.get("score") else []
            run(t0, "subscriber", "update", e["email"], "--" + e["field"],
                e["value"], *extra)
        elif e["op"] == "reimport":
            with open("reimport.csv", "w", newline="") as f:
                csv.writer(f).writerows([["メールアドレス", "事業者名", "自社診断日"],
                                         [e["email"], e["org"], e["value"].replace("-", "/")]])
            run(t0, "subscriber", "import", "reimport.csv")
        elif e["op"] == "assess-queued":
            db = sqlite3.connect(T + "/samail.db")
            got = [r[0] for r in db.execute(
                "SELECT DISTINCT o.rcpt FROM outbox o JOIN campaign c ON "
                "c.id = o.campaign_id WHERE c.kind = 'reminder' AND "
                "o.state = 'queued' ORDER BY o.rcpt LIMIT ?", (e["n"],))]
            db.close()
            for email in got:
                run(t0, "subscriber", "update", email, "--assessed", e["value"])
                applied.append(dict(day=d, op="update", email=email,
                                    field="assessed", value=e["value"]))
            continue
        applied.append(e)
    if d not in skip:
        run(d + "T01:00:00Z", "remind", "build")
        if d not in no_send:
            run(d + "T01:05:00Z", "send")
    day += dt.timedelta(days=1)
json.dump(applied, open("applied.json", "w"))
print("done")
PY
rc=$?
echo "# the year took $(( $(date +%s) - start ))s"
check "a year of daily builds and sends ran without an error" -- \
	test $rc -eq 0 -a -f applied.json
[ $rc -eq 0 ] || { sed 's/^/#   /' driver.log | tail -20; finish; }

# --- what arrived, against what the rules give ------------------------------
start=$(date +%s)
$PY - > results.txt 2>&1 <<'PY'
import collections, datetime as dt, email, email.policy, glob, json, os, re
import sqlite3, subprocess, sys
import icalendar
from model import *

sys.path.insert(0, os.environ["SRCDIR"] + "/tests/tools")
import checkics, checkmail

D = dt.date.fromisoformat
JST = dt.timezone(dt.timedelta(hours=9))
plan = json.load(open("plan.json"))
applied = json.load(open("applied.json"))
T = os.environ["T"]
results = []


def check(desc, problems):
    problems = list(problems)
    results.append((desc, problems))


def ddate(s):
    return D(s) if s else None


# Replay the year through the model.
decl = {}
for d in plan["declarers"]:
    decl[d["email"]] = Decl(d["email"], d["star"], ddate(d["declared"]),
                            ddate(d["assessed"]), d["locale"])
joiners = {d["email"]: d for d in plan["joiners"]}
by_day = collections.defaultdict(list)
for e in applied:
    by_day[e["day"]].append(e)
old_due = {}      # (email, event day) -> due of the cycle the event ended
day = dt.date(2026, 1, 1)
skip, no_send = set(plan["skip"]), set(plan["no_send"])
while day.year == 2026:
    for e in by_day[str(day)]:
        if e["op"] == "import":
            for j in joiners.values():
                decl[j["email"]] = Decl(j["email"], j["star"],
                                        ddate(j["declared"]), None, j["locale"])
            continue
        x = decl[e["email"]]
        c = cycle(x.star, x.declared, x.assessed, day)
        if e["op"] in ("status", "remove"):
            x.active = False
        elif e["op"] == "update" and e["field"] == "star":
            x.star = int(e["value"])
        elif e["op"] in ("update", "reimport"):
            x.assessed = D(e["value"])
        if c is not None:
            old_due[(x.email, day)] = c[2]
    if str(day) not in skip:
        for x in decl.values():
            x.build(day)
        if str(day) not in no_send:
            for x in decl.values():
                x.send()
    day += DAY
want = collections.Counter()
for x in decl.values():
    for r in x.rows.values():
        if r.outbox == "sent":
            m = r.mail
            want[(m["email"], m["due"], m["offset"], m["day"], m["seq"],
                  m["kind"], m["slot"])] += 1

# Read the maildir.
files = sorted(glob.glob(T + "/mail/new/*") + glob.glob(T + "/mail/cur/*"))
got = collections.Counter()
mids = collections.Counter()
uids = {}
bad, ics_bad, text_bad, mail_bad = [], [], [], []
html_dir = T + "/html"
os.makedirs(html_dir, exist_ok=True)
html_files = []
nsample = 0
MID = re.compile(r"<reminder-(\d{4}-\d\d-\d\d)\.(\d+)\.(\d{4}-\d\d-\d\d)-(-?\d+)"
                 r"\.[A-Za-z0-9_-]{12}\.([0-9a-f]{8})@example\.jp>")
WD_JA = "月火水木金土日"
for n, path in enumerate(files):
    raw = open(path, "rb").read()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    m = MID.fullmatch(str(msg["message-id"]).strip())
    if not m:
        bad.append("%s: Message-ID %r" % (path, msg["message-id"]))
        continue
    mids[m.group(0)] += 1
    rcpt = msg["to"].addresses[0].addr_spec
    x = decl.get(rcpt)
    due, offset = D(m.group(3)), int(m.group(4))
    sent_day = msg["date"].datetime.astimezone(JST).date()
    if m.group(1) != str(sent_day):
        bad.append("%s: campaign %s but Date %s" % (path, m.group(1), sent_day))
    fn = ("self-assessment-%s.ics" if x and x.locale == "en" else "自社診断-%s.ics") % due
    # The receiver's view: checkmail's checks, with expectations, on
    # every fourth message (Python's header parser is slow; the model,
    # .ics and text checks below see every message).
    sample = n % 4 == 0
    if sample:
        checkmail.failures.clear()
        checkmail.check_raw(raw, True)
        checkmail.collect_defects(msg)
        ex = dict(to_addr=rcpt, from_addr="news@example.jp",
                  list_id="security-action.example.jp",
                  attachment_type="text/calendar; method=PUBLISH; charset=UTF-8",
                  attachment_filename=fn)
        checkmail.check_headers(msg, ex)
        checkmail.check_bulk(msg, ex)
        checkmail.check_structure(msg, ex)
        mail_bad += ["%s: %s" % (path, f) for f in checkmail.failures]
        nsample += 1
    parts = {p.get_content_type(): p for p in msg.walk()}
    ics = parts["text/calendar"].get_payload(decode=True)
    text = parts["text/plain"].get_content()
    if sample:
        hp = "%s/%d.html" % (html_dir, n)
        open(hp, "w", encoding="utf-8").write(parts["text/html"].get_content())
        html_files.append(hp)
    # The calendar's view: checkics' checks, with expectations.
    cal = icalendar.Calendar.from_ical(ics)
    ev = cal.walk("VEVENT")[0]
    seq = int(ev.get("SEQUENCE"))
    start = ev.get("DTSTART").dt
    slot = start.date()
    checkics.failures.clear()
    checkics.check_raw(ics)
    checkics.check_event(cal, dict(dtstart="%sT100000" % slot.strftime("%Y%m%d"),
                                   duration=30, alarm_before=1440,
                                   url="https://www.ipa.go.jp/security/guide/sme/5minutes.html"))
    if str(cal.get("METHOD")) != "PUBLISH" or str(cal.get("VERSION")) != "2.0" \
            or not cal.get("PRODID"):
        checkics.failures.append("METHOD/VERSION/PRODID")
    ics_bad += ["%s: %s" % (path, f) for f in checkics.failures]
    uid = str(ev.get("UID"))
    # Stable per (declarer, due date) and without personal data.
    if due.strftime("%Y%m%d") not in uid or rcpt.split("@")[0] in uid or \
            (x is not None and x.email in uid):
        ics_bad.append("%s: UID %s" % (path, uid))
    uids.setdefault((rcpt, due), set()).add(uid)
    summary = str(ev.get("SUMMARY"))
    kind = "stepup" if ("二つ星" in summary or "two stars" in summary) else "reassess"
    got[(rcpt, due, offset, sent_day, seq, kind, slot)] += 1
    # What the text says is true on the day it was queued.
    left = (due - sent_day).days
    en = x is not None and x.locale == "en"
    if left > 0:
        need = ["Days to go: %d" % left] if en else ["あと%d日です" % left]
    elif left == 0:
        need = ["That is today."] if en else ["本日が目安日です"]
    else:
        # A step-up nudge has no deadline: it says the date passed, not
        # how many days ago.
        if en:
            need = ["Days since the suggested date: %d" % -left if kind == "reassess"
                    else "The suggested date has passed.",
                    "10:00 on %s, %d %s %d" % (slot.strftime("%A"), slot.day,
                                               slot.strftime("%B"), slot.year)]
        else:
            need = ["目安日から%d日が過ぎています" % -left if kind == "reassess"
                    else "目安日を過ぎました",
                    "%d年%d月%d日（%s） 10:00から30分" % (slot.year, slot.month,
                                                   slot.day, WD_JA[slot.weekday()])]
    for s in need:
        if s not in text.replace("\n", ""):
            text_bad.append("%s: text lacks %r" % (path, s))

check("%d messages, every one a reminder with our Message-ID" % len(files), bad)
check("no Message-ID twice", ["%s x%d" % (k, v) for k, v in mids.items() if v > 1])
check("each declarer got exactly the reminders the rules give (%d)" % sum(want.values()),
      ["missing %s x%d" % (k, v) for k, v in (want - got).items()] +
      ["unexpected %s x%d" % (k, v) for k, v in (got - want).items()])
check("no reminder twice (declarer, due date, offset)",
      ["%s x%d" % (k, v) for k, v in collections.Counter(
          (k[0], k[1], k[2]) for k in got.elements()).items() if v > 1])
check("one UID per (declarer, due date), never shared",
      ["%s: %s" % (k, v) for k, v in uids.items() if len(v) != 1] +
      (["a UID is shared"] if len({u for v in uids.values() for u in v}) != len(uids) else []))
seqs = collections.defaultdict(list)
for k in got.elements():
    seqs[(k[0], k[1])].append((k[3], k[4]))
check("SEQUENCE grows with each update of an event, in sending order",
      ["%s: %s" % (k, sorted(v)) for k, v in seqs.items()
       if any(a[1] >= b[1] for a, b in zip(sorted(v), sorted(v)[1:]))])
check("%d messages pass checkmail (headers, List-Unsubscribe, multipart/mixed, .ics part)"
      % nsample, mail_bad[:20] + ([] if nsample >= 300 else ["too few checked"]))
check("every .ics passes checkics (python3-icalendar): TZID=Asia/Tokyo, 30 min, alarm the day before",
      ics_bad[:20])
check("the text says the days left/overdue of the day it was queued, and the slot when overdue",
      text_bad[:20])
r = subprocess.run(["/usr/bin/python3", os.environ["SRCDIR"] + "/tests/tools/checkhtml.py"]
                   + html_files, capture_output=True, text=True)
check("%d HTML parts pass checkhtml" % len(html_files), r.stdout.splitlines()[:20] +
      ([r.stderr] if r.returncode not in (0, 1) else []))

# The reminder table: every (declarer, due, offset) with its outcome.
db = sqlite3.connect(T + "/samail.db")
have = collections.Counter(db.execute(
    "SELECT s.email, r.due, r.offset_days, r.kind, r.state, o.state FROM reminder r "
    "JOIN subscriber s ON s.id = r.subscriber_id LEFT JOIN outbox o ON o.id = r.outbox_id"))
model = collections.Counter()
for x in decl.values():
    for (due, off), r in x.rows.items():
        model[(x.email, str(due), off, r.kind, r.state, r.outbox)] += 1
check("the reminder table holds every outcome the rules give (%d rows)" % sum(model.values()),
      ["missing %s" % (k,) for k in (model - have)][:10] +
      ["unexpected %s" % (k,) for k in (have - model)][:10])

# The scenarios happened (so the checks above mean something).
states = collections.Counter((k[4], k[5]) for k in model.elements())
late = sum(1 for x in decl.values() for (due, off), r in x.rows.items()
           if r.state == "skipped")
stopped, meaningful = [], 0
for (em, eday), od in old_due.items():
    x = decl[em]
    after = [k for k in got.elements() if k[0] == em and k[1] == od and k[3] >= eday]
    if after:
        stopped.append("%s: %s reminders after %s: %s" % (em, od, eday, after))
    c = cycle(x.star, x.declared, x.assessed, eday)
    ms = [d for d, _ in moments(od - 12 * 31 * DAY, od)]
    if c is None or c[2] != od:
        meaningful += any(d >= eday for d in ms)
check("new self-diagnosis / star change / removal: the old cycle's reminders stopped "
      "(%d had reminders still to come)" % meaningful,
      stopped + (["only %d events mid-cycle" % meaningful] if meaningful < 15 else []))
cq = db.execute("SELECT count(*) FROM reminder r JOIN outbox o ON o.id = r.outbox_id "
                "WHERE r.state = 'cancelled' AND o.state = 'cancelled'").fetchone()[0]
check("queued but unsent when the cycle changed or a newer one came: cancelled "
      "(%d reminder + outbox rows)" % cq,
      [] if cq >= 8 and states[("cancelled", "cancelled")] == cq else
      ["cancelled %d, model %d" % (cq, states[("cancelled", "cancelled")])])
sup = [k for k in got.elements() if k[4] > 0 and not any(
    g[0] == k[0] and g[1] == k[1] and g[4] == k[4] - 1 for g in got)]
check("a reminder that replaced an unsent one bumps SEQUENCE past it (%d)" % len(sup),
      [] if sup else ["no unsent reminder was replaced"])
odd = [k for k in got.elements() if k[1] < k[3]]
check("overdue reminders came, with the slot on a later weekday (%d)" % len(odd),
      [] if len(odd) >= 20 and all(k[6] > k[3] and k[6].weekday() < 5 for k in odd)
      else ["%d overdue" % len(odd)])
caught = [k for k in got.elements() if (k[1] - k[3]).days != k[2]]
check("missed days were caught up (%d sent late), too-late ones skipped (%d)"
      % (len(caught), late), [] if len(caught) >= 10 and late >= 10 else ["too few"])
check("leap day, month ends and multi-year anchors reached (Feb 28, 31sts, cycle >= 2)",
      [] if any(k[1] == D("2026-02-28") for k in got) and
      any(k[1].day == 31 for k in got) and
      any(k[0] == "u12@example.jp" for k in got) else ["not reached"])
check("both kinds, both languages, SEQUENCE up to %d" % max(k[4] for k in got),
      [] if {k[5] for k in got} == {"reassess", "stepup"} and
      max(k[4] for k in got) >= 3 and
      any(decl[k[0]].locale == "en" for k in got) else ["not all covered"])

for desc, problems in results:
    print(("not ok - " if problems else "ok - ") + desc)
    for p in problems[:20]:
        print("#   " + str(p))
PY
echo "# the checks took $(( $(date +%s) - start ))s"
while IFS= read -r line; do
	case $line in
	"ok - "*) ok "${line#ok - }" ;;
	"not ok - "*) not_ok "${line#not ok - }" ;;
	*) echo "$line" ;;
	esac
done < results.txt
grep -q "^ok - \|^not ok - " results.txt || not_ok "the checker ran"
finish
