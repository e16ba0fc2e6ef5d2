#!/usr/bin/python3
"""Check that an HTML mail part is what email clients accept.

  checkhtml.py [--page] FILE.html ...
  checkhtml.py --self-test

One line per problem on stdout, "FILE:LINE: what is wrong"; exit 1 when
there is any, 2 on usage errors or unreadable files, 0 when all is well.

What it checks (the mail rules of docs/templates.md and issue 4):
  - <html lang="..."> and a UTF-8 charset (<meta charset> or http-equiv);
  - a viewport <meta> (phones otherwise render a shrunken desktop page);
  - no <script>, no on* event attributes, no javascript:/vbscript: URLs;
  - no <iframe>, <object>, <embed>, <applet>, <frame>, <base>, no
    <meta http-equiv="refresh">;
  - no <form>/<input>/<button>/<select>/<textarea> in mail (--page allows
    them: the unsubscribe pages served by `samail serve` need a form);
  - no external CSS: no <link rel="stylesheet">, no @import, no url()
    other than data:/cid: in style attributes or <style>;
  - <style> only as progressive enhancement: at top level it may hold
    @media/@supports blocks and nothing else (layout must be inline);
  - no remote images: <img src> must be cid: or data:, and needs alt;
  - every <a href> is absolute http(s) or mailto (mail has no base URL);
  - width: some element is constrained to at most 640px (max-width or a
    width attribute), and nothing is fixed wider than 640px, or wider
    than a 360px phone without max-width:100% on the same element;
  - size: at most 102,000 bytes (Gmail clips longer messages).
Conditional comments (<!--[if mso]>...) are comments and not checked.
"""
import html.parser
import re
import sys

MAX_WIDTH = 640          # px: the widest container we accept
PHONE = 360              # px: narrowest screen we design for
CLIP = 102000            # bytes: Gmail clips the message beyond this

FORM_TAGS = {"form", "input", "button", "select", "textarea", "option"}
BANNED_TAGS = {"script", "iframe", "object", "embed", "applet", "frame",
               "frameset", "base", "noscript"}
URL_RE = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.I)
PX_RE = re.compile(r"(?<![-\w])(min-width|width|max-width)\s*:\s*([\d.]+)\s*(px|%|em|rem|vw)?", re.I)


def style_props(style):
    """Parse an inline style into {property: value} (last one wins)."""
    props = {}
    for decl in style.split(";"):
        if ":" in decl:
            k, v = decl.split(":", 1)
            props[k.strip().lower()] = v.strip().lower()
    return props


def check_css(css, report, where):
    if re.search(r"@import", css, re.I):
        report(where, "@import loads external CSS")
    if re.search(r"expression\s*\(", css, re.I):
        report(where, "CSS expression() is script")
    for m in URL_RE.finditer(css):
        target = m.group(2).strip().lower()
        if not (target.startswith("data:") or target.startswith("cid:")):
            report(where, "url(%s) in CSS loads a remote resource" % m.group(2))


def top_level_rules(css):
    """Yield the text before each top-level '{' of a style sheet."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    depth, start = 0, 0
    for i, ch in enumerate(css):
        if ch == "{":
            if depth == 0:
                yield css[start:i].strip()
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
            if depth == 0:
                start = i + 1


class Checker(html.parser.HTMLParser):
    def __init__(self, page, report):
        super().__init__(convert_charrefs=True)
        self.page = page
        self.report = report
        self.lang = None
        self.charset = False
        self.viewport = False
        self.constrained = False
        self.in_style = False
        self.style_line = 0
        self.style_buf = []

    def where(self):
        return self.getpos()[0]

    def handle_starttag(self, tag, attrs):
        self.check_tag(tag, attrs)

    def handle_startendtag(self, tag, attrs):
        self.check_tag(tag, attrs)

    def check_tag(self, tag, attrs):
        line = self.where()
        a = {}
        for k, v in attrs:
            a[k.lower()] = v if v is not None else ""
        r = self.report
        if tag == "html":
            self.lang = a.get("lang", "").strip()
        if tag in BANNED_TAGS:
            r(line, "<%s> is not allowed in mail" % tag)
        if tag in FORM_TAGS and not self.page:
            r(line, "<%s> is not allowed in mail (forms only on served pages, --page)" % tag)
        for k, v in a.items():
            if k.startswith("on"):
                r(line, "event attribute %s= on <%s> is script" % (k, tag))
            if k in ("href", "src", "action", "formaction", "background", "poster") \
                    and re.match(r"\s*(javascript|vbscript):", v, re.I):
                r(line, "%s= on <%s> is a script URL" % (k, tag))
        if tag == "meta":
            if "charset" in a:
                if a["charset"].strip().lower().replace("_", "-") in ("utf-8", "utf8"):
                    self.charset = True
                else:
                    r(line, "charset is '%s', mail parts are UTF-8" % a["charset"])
            equiv = a.get("http-equiv", "").lower()
            if equiv == "content-type":
                m = re.search(r"charset\s*=\s*([\w-]+)", a.get("content", ""), re.I)
                if m and m.group(1).lower() in ("utf-8", "utf8"):
                    self.charset = True
                elif m:
                    r(line, "charset is '%s', mail parts are UTF-8" % m.group(1))
            if equiv == "refresh":
                r(line, "<meta http-equiv=refresh> redirects the reader")
            if a.get("name", "").lower() == "viewport" and "width=device-width" in a.get("content", "").replace(" ", "").lower():
                self.viewport = True
        if tag == "link":
            rel = a.get("rel", "").lower().split()
            if "stylesheet" in rel:
                r(line, "<link rel=stylesheet> loads external CSS; inline the styles")
            elif a.get("href") and re.match(r"\s*(https?:)?//", a["href"], re.I):
                r(line, "<link href=%s> loads a remote resource" % a["href"])
        if tag == "img":
            src = a.get("src", "").strip()
            low = src.lower()
            if not (low.startswith("cid:") or low.startswith("data:")):
                r(line, "<img src=%s> is a remote (or relative) image; clients block them" % (src or '""'))
            if "alt" not in a:
                r(line, "<img> without alt text")
        if tag == "a" and "href" in a:
            href = a["href"].strip()
            if not re.match(r"(https?://[^\s/]+\S*|mailto:\S+@\S+)$", href, re.I):
                r(line, "<a href=%s> is not an absolute http(s) or mailto link" % (href or '""'))
        if "style" in a:
            check_css(a["style"], self.report, line)
        self.check_width(tag, a, line)
        if tag == "style":
            self.in_style = True
            self.style_line = line
            self.style_buf = []

    def check_width(self, tag, a, line):
        props = style_props(a.get("style", ""))
        fluid = props.get("max-width", "").replace(" ", "") == "100%"
        maxw = props.get("max-width", "")
        m = re.match(r"([\d.]+)px$", maxw)
        if m and float(m.group(1)) <= MAX_WIDTH:
            self.constrained = True
        fixed = []
        w = a.get("width", "").strip()
        if re.match(r"^\d+(px)?$", w):
            n = int(re.match(r"\d+", w).group(0))
            fixed.append(("width attribute", n))
            if n <= MAX_WIDTH and tag in ("table", "td", "div"):
                self.constrained = True
        for k in ("width", "min-width"):
            m = re.match(r"([\d.]+)px$", props.get(k, ""))
            if m:
                fixed.append((k, float(m.group(1))))
        for what, n in fixed:
            if n > MAX_WIDTH:
                self.report(line, "<%s> %s %dpx is wider than %dpx" % (tag, what, n, MAX_WIDTH))
            elif n > PHONE and not fluid and (what == "min-width" or "max-width" not in props):
                self.report(line, "<%s> %s %dpx overflows a %dpx phone screen (add max-width:100%%)"
                            % (tag, what, n, PHONE))

    def handle_data(self, data):
        if self.in_style:
            self.style_buf.append(data)

    def handle_endtag(self, tag):
        if tag == "style" and self.in_style:
            self.in_style = False
            css = "".join(self.style_buf)
            check_css(css, self.report, self.style_line)
            for sel in top_level_rules(css):
                if not re.match(r"@(media|supports)\b", sel, re.I):
                    self.report(self.style_line,
                                "<style> rule '%s' outside @media: layout must be inline "
                                "(clients drop <style>)" % sel[:40])


def check_file(path, page):
    problems = []

    def report(line, msg):
        problems.append("%s:%d: %s" % (path, line, msg))

    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        print("%s: cannot read: %s" % (path, e.strerror), file=sys.stderr)
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        report(1, "not valid UTF-8 (byte %d)" % e.start)
        return problems
    if len(raw) > CLIP and not page:
        report(1, "%d bytes: Gmail clips messages over %d bytes" % (len(raw), CLIP))
    c = Checker(page, report)
    c.feed(text)
    c.close()
    if not c.lang:
        report(1, "<html> has no lang attribute")
    if not c.charset:
        report(1, "no <meta charset=\"utf-8\">")
    if not c.viewport:
        report(1, "no <meta name=\"viewport\" content=\"width=device-width, ...\">")
    if not c.constrained:
        report(1, "no container limited to %dpx or less (max-width or width attribute)" % MAX_WIDTH)
    return problems


SELF_TESTS = [
    # (name, --page?, html, substrings every one of which must be reported)
    ("good", False,
     '<!DOCTYPE html><html lang="ja"><head><meta charset="utf-8">'
     '<meta name="viewport" content="width=device-width, initial-scale=1">'
     '<style>@media (max-width:480px){.p{padding:8px!important}}</style></head>'
     '<body><!--[if mso]><table width="600"><tr><td><![endif]-->'
     '<table width="100%" style="max-width:600px"><tr><td>'
     '<a href="https://example.jp/a?b=1&amp;c=2">x</a> <a href="mailto:a@example.jp">m</a>'
     '<img src="cid:logo" alt="logo"></td></tr></table></body></html>', []),
    ("bad", False,
     '<html><head><meta charset="iso-8859-1"><link rel="stylesheet" href="https://x/a.css">'
     '<style>body{color:red} @import "x.css";</style><script>alert(1)</script></head>'
     '<body onload="x()"><table width="800"><tr><td style="background:url(https://x/i.png)">'
     '<img src="https://x/t.gif"><a href="/relative">r</a><a href="javascript:x()">j</a>'
     '<a href="#top">t</a><form action="https://x/"><input name="a"></form>'
     '<div style="width:500px">w</div><iframe src="https://x/"></iframe>'
     '</td></tr></table></body></html>',
     ["no lang", "charset is 'iso-8859-1'", "no <meta name=\"viewport\"", "<link rel=stylesheet>",
      "outside @media", "@import", "<script>", "onload=", "wider than 640px", "url(https://x/i.png)",
      "remote (or relative) image", "without alt", "href=/relative", "script URL",
      "href=#top", "<form>", "<input>", "overflows a 360px phone", "<iframe>",
      "no container limited"]),
    ("page allows forms", True,
     '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
     '<meta name="viewport" content="width=device-width"></head><body>'
     '<div style="max-width:560px"><form method="post" action="https://example.jp/u/t">'
     '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
     '<button type="submit">Unsubscribe</button></form></div></body></html>', []),
]


def self_test():
    import os
    import tempfile
    failed = 0
    for name, page, doc, expect in SELF_TESTS:
        fd, path = tempfile.mkstemp(suffix=".html")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(doc)
        got = check_file(path, page)
        os.unlink(path)
        text = "\n".join(got)
        missing = [e for e in expect if e not in text]
        if (not expect and got) or missing:
            failed += 1
            print("not ok - %s: reported %r, missing %r" % (name, got, missing))
        else:
            print("ok - %s" % name)
    print("%d passed, %d failed" % (len(SELF_TESTS) - failed, failed))
    return 1 if failed else 0


def main(argv):
    page = False
    files = []
    for arg in argv:
        if arg == "--self-test":
            return self_test()
        if arg == "--page":
            page = True
        elif arg.startswith("-"):
            print("usage: checkhtml.py [--page] FILE.html ... | --self-test", file=sys.stderr)
            return 2
        else:
            files.append(arg)
    if not files:
        print("usage: checkhtml.py [--page] FILE.html ... | --self-test", file=sys.stderr)
        return 2
    status = 0
    for path in files:
        problems = check_file(path, page)
        if problems is None:
            status = 2
            continue
        for p in problems:
            print(p)
        if problems and status == 0:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
