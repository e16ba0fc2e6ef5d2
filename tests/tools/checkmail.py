#!/usr/bin/python3
"""checkmail.py — check one outgoing samail message the way a receiver would.

Run with Debian's /usr/bin/python3.  The message is parsed with the
standard library's modern parser (email.policy.default); any parser defect
is a failure.  Expectations come from options or from a JSON sidecar
(--expect FILE, same keys with '_' for '-'); options win over the sidecar.

    checkmail.py MSG.eml [--expect X.json] [--subject S]
        [--from-name N] [--from-addr A] [--to-name N] [--to-addr A]
        [--reply-to-addr A] [--message-id ID] [--date EPOCH]
        [--list-id ID] [--no-bulk] [--no-html] [--lf]
        [--text-file F] [--html-file F]
        [--attachment-type T] [--attachment-filename F]
        [--attachment-file F] [--header NAME=VALUE ...]

Checks: 7-bit bytes only; CRLF line ends (LF with --lf); every line <= 998
octets; headers decode to the expected text; Message-ID, Date, MIME-Version;
List-Id; List-Unsubscribe with one https and one mailto URL and
List-Unsubscribe-Post: List-Unsubscribe=One-Click (unless --no-bulk);
multipart/alternative text/plain + text/html in UTF-8 (base64 or
quoted-printable), inside multipart/mixed when there is an attachment;
attachment type, parameters, file name and bytes.

Exit 0 when every check passes, 1 with one line per failure otherwise,
2 on bad usage.
"""

import argparse
import datetime
import email
import email.header
import email.policy
import email.utils
import json
import re
import sys

failures = []


def fail(what):
    failures.append(what)


def check_raw(raw, lf):
    if any(b >= 0x80 for b in raw):
        fail("message has 8-bit bytes (must be 7-bit: base64/QP/RFC 2047)")
    if lf:
        if b"\r" in raw:
            fail("CR found in a message asked for with LF line ends")
        lines = raw.split(b"\n")
    else:
        if re.search(rb"(?<!\r)\n", raw):
            fail("bare LF found (lines must end in CRLF)")
        if re.search(rb"\r(?!\n)", raw):
            fail("bare CR found")
        lines = raw.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    else:
        fail("message does not end with a line break")
    for n, line in enumerate(lines, 1):
        if len(line) > 998:
            fail("line %d has %d octets, more than 998" % (n, len(line)))
    if b"\r\n\r\n" not in raw and b"\n\n" not in raw:
        fail("no blank line between header and body")


# The RFC 2047 file name in an attachment's Content-Type "name" parameter
# is deliberate (what older Outlook and Japanese clients read; the standard
# RFC 2231 "filename*" is in Content-Disposition), and these are the defects
# Python reports for that form.  check_attachment() checks that it decodes.
LEGACY_NAME_DEFECTS = ("encoded word inside quoted string",
                       "missing trailing whitespace after encoded-word")


def collect_defects(msg):
    for part in msg.walk():
        for d in part.defects:
            fail("parser defect in %s: %s" % (part.get_content_type(),
                                               type(d).__name__))
        attachment = part.get_content_disposition() == "attachment"
        for name, value in part.items():
            for d in getattr(value, "defects", ()):
                if attachment and name.lower() == "content-type" and \
                        str(d) in LEGACY_NAME_DEFECTS:
                    continue
                fail("parser defect in header %s: %s" % (name, d))


def display_name(msg, hdr):
    """The display name decoded as RFC 2047 6.2 says: white space between
    adjacent encoded-words dropped.  Python's modern parser keeps it inside
    a phrase, so a long name split over several words would read wrong."""
    _, raw = next((k, v) for k, v in msg.raw_items() if k.lower() == hdr)
    name, _ = email.utils.parseaddr(re.sub(r"\r?\n(?=[ \t])", "", raw))
    return str(email.header.make_header(email.header.decode_header(name)))


def one_address(msg, hdr, name, addr):
    h = msg[hdr]
    if h is None:
        if name is not None or addr is not None:
            fail("%s: missing" % hdr)
        return
    addrs = h.addresses
    if len(addrs) != 1:
        fail("%s: %d addresses, want 1" % (hdr, len(addrs)))
        return
    if addr is not None and addrs[0].addr_spec != addr:
        fail("%s: address %r, want %r" % (hdr, addrs[0].addr_spec, addr))
    if name is not None and display_name(msg, hdr) != name:
        fail("%s: display name %r, want %r" % (hdr, display_name(msg, hdr),
                                                name))


def unfolded(msg, hdr):
    """The raw value with folding removed (CRLF + WSP -> WSP)."""
    for k, v in msg.raw_items():
        if k.lower() == hdr.lower():
            return re.sub(r"\r?\n(?=[ \t])", "", str(v)).strip()
    return None


def check_headers(msg, x):
    if x.get("subject") is not None and msg["subject"] != x["subject"]:
        fail("Subject decodes to %r, want %r" % (msg["subject"],
                                                 x["subject"]))
    one_address(msg, "from", x.get("from_name"), x.get("from_addr"))
    one_address(msg, "to", x.get("to_name"), x.get("to_addr"))
    if x.get("reply_to_addr") is not None:
        one_address(msg, "reply-to", None, x["reply_to_addr"])
    for hdr in ("from", "to", "subject", "date", "message-id",
                "mime-version"):
        if len(msg.get_all(hdr, [])) != 1:
            fail("%s: %d occurrences, want exactly 1"
                 % (hdr, len(msg.get_all(hdr, []))))
    mid = unfolded(msg, "message-id")
    if mid is None or not re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", mid):
        fail("Message-ID %r is not <left@right>" % mid)
    elif x.get("message_id") is not None and mid != "<%s>" % x["message_id"]:
        fail("Message-ID %r, want <%s>" % (mid, x["message_id"]))
    date = msg["date"]
    if date is None or date.datetime is None:
        fail("Date missing or unparseable")
    elif x.get("date") is not None:
        if date.datetime.timestamp() != float(x["date"]):
            fail("Date %s is not epoch %s" % (date, x["date"]))
        if date.datetime.utcoffset() != datetime.timedelta(hours=9):
            fail("Date %s is not in +0900" % date)
    if str(msg.get("mime-version", "")).strip() != "1.0":
        fail("MIME-Version is not 1.0")
    for spec in x.get("header") or ():
        name, _, value = spec.partition("=")
        if msg[name] is None or str(msg[name]) != value:
            fail("header %s is %r, want %r" % (name, msg[name], value))


def check_bulk(msg, x):
    lid = unfolded(msg, "list-id")
    if lid is None:
        fail("List-Id missing")
    else:
        m = re.fullmatch(r"(.*?)\s*<([^<>\s]+)>", lid)
        if not m:
            fail("List-Id %r is not [phrase] <id>" % lid)
        elif x.get("list_id") is not None and m.group(2) != x["list_id"]:
            fail("List-Id %r, want <%s>" % (lid, x["list_id"]))
    lu = unfolded(msg, "list-unsubscribe")
    if lu is None:
        fail("List-Unsubscribe missing")
    else:
        urls = re.findall(r"<([^>]*)>", lu)
        if re.sub(r"<[^>]*>", "", lu).replace(",", "").strip():
            fail("List-Unsubscribe %r has text outside <...>" % lu)
        https = [u for u in urls if u.startswith("https://")]
        mailto = [u for u in urls if u.startswith("mailto:")]
        if len(https) != 1:
            fail("List-Unsubscribe %r: want exactly one https URL" % lu)
        if len(mailto) != 1:
            fail("List-Unsubscribe %r: want exactly one mailto URL" % lu)
        for u in urls:
            if re.search(r"\s", u):
                fail("List-Unsubscribe URL %r has whitespace" % u)
        if mailto and not re.fullmatch(
                r"mailto:[^@\s?]+@[^@\s?]+\?subject=unsubscribe(%20[A-Za-z0-9_-]+)?",
                mailto[0]):
            fail("List-Unsubscribe %r: mailto is not addr?subject=unsubscribe[%%20TOKEN]"
                 % mailto[0])
    lup = unfolded(msg, "list-unsubscribe-post")
    if lup != "List-Unsubscribe=One-Click":
        fail("List-Unsubscribe-Post is %r, want List-Unsubscribe=One-Click"
             % lup)


def norm(text):
    return text.replace("\r\n", "\n").replace("\r", "\n")


def check_text_part(part, subtype, expect_file):
    if part.get_content_type() != "text/" + subtype:
        fail("part is %s, want text/%s" % (part.get_content_type(), subtype))
        return
    if part.get_content_charset() != "utf-8":
        fail("text/%s charset is %r, want UTF-8"
             % (subtype, part.get_content_charset()))
    cte = part.get("content-transfer-encoding", "").lower()
    if cte not in ("base64", "quoted-printable"):
        fail("text/%s transfer encoding %r, want base64 or quoted-printable"
             % (subtype, cte))
    raw = part.get_payload(decode=True)
    if cte == "base64" and re.search(rb"(?<!\r)\n", raw):
        fail("text/%s in base64 is not in canonical CRLF form" % subtype)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        fail("text/%s does not decode as UTF-8" % subtype)
        return
    if expect_file is not None:
        with open(expect_file, encoding="utf-8", newline="") as f:
            want = f.read()
        if norm(text) != norm(want):
            fail("text/%s content differs from %s" % (subtype, expect_file))


def check_alternative(part, x):
    if x.get("no_html"):
        check_text_part(part, "plain", x.get("text_file"))
        return
    if part.get_content_type() != "multipart/alternative":
        fail("body is %s, want multipart/alternative"
             % part.get_content_type())
        return
    subs = part.get_payload()
    if len(subs) != 2:
        fail("multipart/alternative has %d parts, want 2" % len(subs))
        return
    check_text_part(subs[0], "plain", x.get("text_file"))
    check_text_part(subs[1], "html", x.get("html_file"))


def check_attachment(part, x):
    want_type = x.get("attachment_type")
    if want_type is not None:
        main, _, params = want_type.partition(";")
        if part.get_content_type() != main.strip().lower():
            fail("attachment type %s, want %s" % (part.get_content_type(),
                                                  main.strip()))
        for p in params.split(";"):
            if not p.strip():
                continue
            k, _, v = p.strip().partition("=")
            got = part.get_param(k)
            if got is None or got.lower() != v.strip('"').lower():
                fail("attachment parameter %s=%r, want %r" % (k, got, v))
    if part.get_content_disposition() != "attachment":
        fail("attachment disposition %r, want attachment"
             % part.get_content_disposition())
    fn = part.get_filename()
    want_fn = x.get("attachment_filename")
    if want_fn is not None and fn != want_fn:
        fail("attachment filename %r, want %r" % (fn, want_fn))
    name = part["content-type"].params.get("name")
    if want_fn is not None and name != want_fn:
        fail("attachment Content-Type name %r, want %r" % (name, want_fn))
    if part.get("content-transfer-encoding", "").lower() != "base64":
        fail("attachment is not base64")
    if x.get("attachment_file") is not None:
        with open(x["attachment_file"], "rb") as f:
            if part.get_payload(decode=True) != f.read():
                fail("attachment bytes differ from %s"
                     % x["attachment_file"])


def check_structure(msg, x):
    if x.get("attachment_type") or x.get("attachment_filename"):
        if msg.get_content_type() != "multipart/mixed":
            fail("top is %s, want multipart/mixed" % msg.get_content_type())
            return
        subs = msg.get_payload()
        if len(subs) != 2:
            fail("multipart/mixed has %d parts, want 2" % len(subs))
            return
        check_alternative(subs[0], x)
        check_attachment(subs[1], x)
    else:
        check_alternative(msg, x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("message")
    ap.add_argument("--expect")
    for opt in ("subject", "from-name", "from-addr", "to-name", "to-addr",
                "reply-to-addr", "message-id", "date", "list-id",
                "text-file", "html-file", "attachment-type",
                "attachment-filename", "attachment-file"):
        ap.add_argument("--" + opt)
    ap.add_argument("--header", action="append")
    ap.add_argument("--no-bulk", action="store_true", default=None)
    ap.add_argument("--no-html", action="store_true", default=None)
    ap.add_argument("--lf", action="store_true", default=None)
    args = ap.parse_args()

    x = {}
    if args.expect:
        with open(args.expect, encoding="utf-8") as f:
            x.update(json.load(f))
    x.update({k: v for k, v in vars(args).items()
              if v is not None and k not in ("message", "expect")})

    with open(args.message, "rb") as f:
        raw = f.read()
    check_raw(raw, bool(x.get("lf")))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    collect_defects(msg)
    check_headers(msg, x)
    if not x.get("no_bulk"):
        check_bulk(msg, x)
    check_structure(msg, x)

    for f in failures:
        print("checkmail: %s: %s" % (args.message, f))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
