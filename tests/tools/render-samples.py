#!/usr/bin/python3
"""Render the sample contexts through the templates with Debian's pystache.

A stand-in for samail's own engine (lib/tmpl) until it is merged, so that
the templates can be looked at and checked now.  Templates use standard
Mustache only, so any spec-conformant engine gives the same output.

  render-samples.py [--out DIR] [--dump-contexts DIR] [SAMPLE.json ...]

For each sample (default: tests/data/context/*.json) it writes the rendered
parts to DIR (default build/render) and checks them:
  - every tag in the templates names a documented context field
    (docs/templates.md, including "Requested additions");
  - subject lines are one line;
  - text parts: lines wider than 76 columns (East Asian wide = 2) other
    than URL lines are reported as notes (not failures: admins' content
    and feed titles can be long);
  - HTML parts pass tests/tools/checkhtml.py.
Exit status 0 when all checks pass, 1 otherwise, 2 on usage errors.

Samples hold the per-declarer data plus "_kind" (newsletter, reminder,
unsubscribe, unsubscribed) and "_locale" (ja, en).  The content parts are
merged from templates/<locale>/content.json as the builder does:
sender always; newsletter: rule = five_rules[(period_month - 1) % 5],
stepup only for star1; reminder: reminder = content.reminder.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import unicodedata

try:
    import pystache
except ImportError:
    sys.exit("render-samples: needs python3-pystache (apt-get install -y python3-pystache)")

SRC = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

# The documented context, as nested names.  A dict is an object or a list
# of objects with those fields; None is a scalar (or a list of strings when
# used as a section with {{.}}).
LINK = {"label": None, "url": None}
SENDER = {"name": None, "organisation": None, "address": None, "url": None,
          "contact": None, "note": None}
PERSONAL = {"org": None, "name": None, "star1": None, "star2": None,
            "sender": SENDER, "unsubscribe_url": None,
            "unsubscribe_mailto": None, "list_name": None}
STEPS = {"step": None, "text": None}
NEWSLETTER = dict(PERSONAL, **{
    "period": None, "period_year": None, "period_month": None,
    "period_label": None,
    "advisories": {"title": None, "link": None, "summary": None,
                   "published": None, "published_ja": None, "severity": None,
                   "severity_critical": None, "severity_high": None,
                   "severity_medium": None, "severity_low": None,
                   "cvss": None, "cves": None, "cves_more": None, "products": None,
                   "source": None},
    "has_advisories": None, "advisory_count": None, "more_advisories": None,
    "alerts": {"title": None, "link": None, "published": None, "published_ja": None},
    "has_alerts": None, "products": None, "has_products": None,
    "rule": {"number": None, "title": None, "summary": None,
             "paragraphs": None, "checklist": None, "links": LINK},
    "stepup": {"title": None, "paragraphs": None, "steps": STEPS,
               "links": LINK},
})
REMINDER_CONTENT = {"title": None, "paragraphs": None, "steps": STEPS}
REMINDER = dict(PERSONAL, **{
    "kind_reassess": None, "kind_stepup": None, "due": None,
    "due_label": None, "days_before": None, "before": None,
    "on_the_day": None, "overdue": None, "days_overdue": None,
    "last_assessed": None, "assessment_url": None, "slot_time": None, "slot_label": None,
    "alarm_same_day": None,
    "reminder": {"reassess": REMINDER_CONTENT, "stepup": REMINDER_CONTENT,
                 "when_before": None, "when_on_the_day": None,
                 "when_overdue": None, "stepup_hint": None, "links": LINK},
})
PAGE = {"action_url": None, "list_name": None, "sender": SENDER,
        "done": None, "already": None, "invalid": None, "failed": None}
SCHEMA = {"newsletter": NEWSLETTER, "reminder": REMINDER,
          "unsubscribe": PAGE, "unsubscribed": PAGE}

PARTS = {
    "newsletter": [("subject", "newsletter.subject", False),
                   ("txt", "newsletter.txt", False),
                   ("html", "newsletter.html", True)],
    "reminder": [("subject", "reminder.subject", False),
                 ("txt", "reminder.txt", False),
                 ("html", "reminder.html", True),
                 ("ics-summary", "reminder.ics-summary", False),
                 ("ics-description", "reminder.ics-description", False)],
    "unsubscribe": [("html", "unsubscribe.html", True)],
    "unsubscribed": [("html", "unsubscribed.html", True)],
}

TAG = re.compile(r"\{\{(\{?)\s*([#^/>!&]?)\s*([^}]*?)\s*\}?\}\}")


def lint_names(path, schema, problems, stack=None):
    """Check every tag of a template (and its partials) against schema."""
    text = open(path, encoding="utf-8").read()
    stack = list(stack) if stack else [schema]  # scopes: innermost last
    depth = len(stack)
    for m in TAG.finditer(text):
        kind, name = m.group(2), m.group(3)
        line = text.count("\n", 0, m.start()) + 1
        where = "%s:%d" % (os.path.relpath(path, SRC), line)
        if kind == "!":
            continue
        if kind == ">":
            part = os.path.join(os.path.dirname(path), name + ".mustache")
            if not os.path.exists(part):
                problems.append("%s: partial '%s' not found" % (where, name))
            else:
                lint_names(part, schema, problems, stack)
            continue
        if kind == "/":
            if len(stack) > depth:
                stack.pop()
            continue
        if name == ".":
            scope = None
        else:
            scope = resolve(name, stack)
            if scope is False:
                problems.append("%s: '%s' is not a documented context name"
                                % (where, name))
                scope = None
        if kind in "#^":
            stack.append(scope if isinstance(scope, dict) else {})


def resolve(name, stack):
    parts = name.split(".")
    for scope in reversed(stack):
        if isinstance(scope, dict) and parts[0] in scope:
            node = scope[parts[0]]
            for p in parts[1:]:
                if not isinstance(node, dict) or p not in node:
                    return False
                node = node[p]
            return node
    return False


def width(s):
    w = 0
    for ch in s:
        w += 2 if unicodedata.east_asian_width(ch) in "WFA" else 1
    return w


# Reference for the wrapping requested from the builder (docs/templates.md,
# "Requested additions"): text parts wrapped at 76 columns, East Asian
# wide and ambiguous characters counting 2, URLs and ASCII words never
# broken, kinsoku (no closing punctuation at a line start, no opening
# bracket at a line end), continuation lines hanging under a list marker.
NO_START = set("、。，．・：；？！ー）」』】〕〉》”’ぁぃぅぇぉっゃゅょゎァィゥェォッャュョヮヵヶ々〻‐〜～),.:;!?]}%")
NO_END = set("（「『【〔〈《“‘([{")
TOKEN = re.compile(r"(?:https?|mailto):\S+|[A-Za-z0-9_./@%+=:&?#~'\-]+|\s+|.")
MARKER = re.compile(r"^(\s*)(・|□ |\d+\. |- |\[ \] )?")


def wrap_line(line, cols=76):
    if width(line) <= cols:
        return [line]
    m = MARKER.match(line)
    hang = " " * width(m.group(0))
    out, cur = [], ""
    for tok in TOKEN.findall(line):
        if cur.strip() and width(cur) + width(tok) > cols and not tok.isspace():
            if tok[0] in NO_START:
                cur += tok            # hang the punctuation (burasage)
                continue
            carry = ""
            while cur and cur[-1] in NO_END:
                carry = cur[-1] + carry
                cur = cur[:-1]
            out.append(cur.rstrip())
            cur = hang + carry + tok
        elif tok.isspace() and not cur.strip():
            cur += tok if not out else ""
        else:
            cur += tok
    if cur.strip():
        out.append(cur.rstrip())
    return out


def wrap_text(text, cols=76):
    lines = []
    for line in text.split("\n"):
        lines.extend(wrap_line(line, cols))
    return "\n".join(lines)


def merge(ctx, content):
    kind = ctx["_kind"]
    ctx.setdefault("sender", content["sender"])
    if kind == "newsletter":
        rules = content["five_rules"]
        ctx.setdefault("rule", rules[(int(ctx["period_month"]) - 1) % len(rules)])
        if ctx.get("star1") and "stepup" not in ctx:
            ctx["stepup"] = content["stepup"]
    elif kind == "reminder":
        ctx.setdefault("reminder", content["reminder"])
    return ctx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(SRC, "build", "render"))
    ap.add_argument("--no-wrap", action="store_true",
                    help="leave text parts as the engine renders them")
    ap.add_argument("--dump-contexts", metavar="DIR",
                    help="also write the merged (complete) contexts here")
    ap.add_argument("samples", nargs="*")
    args = ap.parse_args()
    samples = args.samples or sorted(glob.glob(os.path.join(SRC, "tests/data/context/*.json")))
    if not samples:
        print("render-samples: no samples", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    if args.dump_contexts:
        os.makedirs(args.dump_contexts, exist_ok=True)
    problems, notes, htmls = [], [], []

    linted = set()
    for sample in samples:
        base = os.path.splitext(os.path.basename(sample))[0]
        with open(sample, encoding="utf-8") as f:
            ctx = json.load(f)
        kind, locale = ctx.get("_kind"), ctx.get("_locale", "ja")
        if kind not in PARTS:
            problems.append("%s: _kind must be one of %s" % (sample, ", ".join(PARTS)))
            continue
        tdir = os.path.join(SRC, "templates", locale)
        with open(os.path.join(tdir, "content.json"), encoding="utf-8") as f:
            content = json.load(f)
        ctx = merge(ctx, content)
        if args.dump_contexts:
            clean = {k: v for k, v in ctx.items() if not k.startswith("_")}
            with open(os.path.join(args.dump_contexts, base + ".json"), "w", encoding="utf-8") as f:
                json.dump(clean, f, ensure_ascii=False, indent=2)
                f.write("\n")
        for part, tname, is_html in PARTS[kind]:
            tpath = os.path.join(tdir, tname + ".mustache")
            if not os.path.exists(tpath):
                problems.append("%s: missing" % os.path.relpath(tpath, SRC))
                continue
            if tpath not in linted:
                linted.add(tpath)
                lint_names(tpath, SCHEMA[kind], problems)
            r = pystache.Renderer(search_dirs=[tdir], file_extension="mustache",
                                  string_encoding="utf-8", file_encoding="utf-8",
                                  missing_tags="ignore",
                                  escape=None if is_html else (lambda s: s))
            out = r.render(open(tpath, encoding="utf-8").read(), ctx)
            if part == "txt" and not args.no_wrap:
                out = wrap_text(out)
            ext = "html" if is_html else "txt"
            opath = os.path.join(args.out, "%s.%s.%s" % (base, part, ext))
            with open(opath, "w", encoding="utf-8") as f:
                f.write(out)
            rel = os.path.relpath(opath)
            if part in ("subject", "ics-summary"):
                if "\n" in out.strip("\n") or not out.strip():
                    problems.append("%s: %s must be one non-empty line" % (rel, part))
            if part == "txt":
                for n, line in enumerate(out.split("\n"), 1):
                    if width(line) > 76 and not re.match(r"^\s*(https?|mailto):\S+$", line):
                        notes.append("%s:%d: %d columns" % (rel, n, width(line)))
            if is_html:
                htmls.append((opath, kind in ("unsubscribe", "unsubscribed")))
    for opath, page in htmls:
        cmd = [sys.executable, os.path.join(SRC, "tests/tools/checkhtml.py")]
        if page:
            cmd.append("--page")
        r = subprocess.run(cmd + [opath], capture_output=True, text=True)
        if r.returncode != 0:
            problems.extend(l for l in (r.stdout + r.stderr).splitlines() if l)
    for n in notes:
        print("note: " + n)
    for p in problems:
        print(p)
    print("render-samples: %d samples, %d problems, %d wide text lines; output in %s"
          % (len(samples), len(problems), len(notes), os.path.relpath(args.out)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
