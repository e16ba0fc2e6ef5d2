#!/usr/bin/python3
"""tag-mids.py KEYFILE INSTANCE < in.eml > out.eml

Bounce fixtures quote our Message-IDs without the HMAC tag samail puts in
them (lib/campaign.c): NAME.ID[.ITEM].5a17c0de@DOMAIN.  This writes them
as samail makes them for the database whose unsubscribe key is KEYFILE
and whose instance is INSTANCE: NAME.ID[.ITEM].TAG.INSTANCE@DOMAIN.

The tag is token_make()'s MAC (lib/token.c) over the declarer id and
"mid:NAME:ITEM", keyed with the file's bytes: base64url characters 12-23.
"""
import base64, hashlib, hmac, re, struct, sys

key = open(sys.argv[1], "rb").read().rstrip(b"\r\n")
instance = sys.argv[2]

def tag(name, sid, item):
    raw = bytes([1]) + struct.pack(">q", sid)
    msg = b"samail-unsub\0" + raw + ("mid:%s:%s" % (name, item)).encode()
    mac = hmac.new(key, msg, hashlib.sha256).digest()[:24]
    tok = base64.urlsafe_b64encode(raw + mac).decode()
    return tok[12:24]

def fix(m):
    name, sid, item, domain = m.group(1), int(m.group(2)), m.group(3) or "", m.group(4)
    mid = "%s.%d" % (name, sid)
    if item:
        mid += "." + item
    return "%s.%s.%s@%s" % (mid, tag(name, sid, item), instance, domain)

data = sys.stdin.buffer.read().decode("latin-1")
data = re.sub(r"([a-z]+-[0-9-]+)\.([0-9]+)(?:\.([A-Za-z0-9-]+))?\.5a17c0de@([A-Za-z0-9.-]+)", fix, data)
sys.stdout.buffer.write(data.encode("latin-1"))
