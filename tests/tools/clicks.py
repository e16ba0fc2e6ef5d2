#!/usr/bin/python3
"""clicks.py PORT KEYFILE LIST_ID OUT [--threads N] [--pace S] < JOBS

Drives `samail serve` on 127.0.0.1:PORT as many mail clients at once:
each line of JOBS is "POST ID" (an RFC 8058 one-click POST) or "GET ID"
(the confirmation page) for declarer ID, whose token is made here as
lib/token.c makes it (KEYFILE's bytes, LIST_ID).  Each request comes from
its own X-Forwarded-For client (the rate limit is per client), on its own
connection, from N threads (default 8), each first sleeping up to 2*S
seconds (default 0: all at once).  OUT gets one JSON object per request:
{"m", "id", "t0", "t1" (epoch seconds), "code" (0: no answer, with
"err"), "retry" (Retry-After), "page": done|already|failed|confirm|other}.
"""
import argparse, base64, hashlib, hmac, http.client, json, queue, random
import struct, sys, threading, time

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("keyfile")
ap.add_argument("list_id")
ap.add_argument("out")
ap.add_argument("--threads", type=int, default=8)
ap.add_argument("--pace", type=float, default=0)
a = ap.parse_args()
key = open(a.keyfile, "rb").read().rstrip(b"\r\n")


def token(sid):
    raw = bytes([1]) + struct.pack(">q", sid)
    mac = hmac.new(key, b"samail-unsub\0" + raw + a.list_id.encode(),
                   hashlib.sha256).digest()[:24]
    return base64.urlsafe_b64encode(raw + mac).decode()


jobs = queue.Queue()
for i, line in enumerate(sys.stdin):
    m, sid = line.split()
    jobs.put((i, m, int(sid)))
lock = threading.Lock()
out = open(a.out, "w")


def page(body):
    if "配信を停止しました" in body or "You have been unsubscribed" in body:
        return "done"
    if "すでに停止" in body:
        return "already"
    if "ただいま手続きができません" in body:
        return "failed"
    return "confirm" if "<form" in body else "other"


def worker():
    while True:
        try:
            i, m, sid = jobs.get_nowait()
        except queue.Empty:
            return
        if a.pace:
            time.sleep(random.uniform(0, 2 * a.pace))
        hdr = {"X-Forwarded-For": "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255)}
        rec = {"m": m, "id": sid, "t0": time.time()}
        try:
            c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
            if m == "POST":
                hdr["Content-Type"] = "application/x-www-form-urlencoded"
                c.request("POST", "/u/" + token(sid), body="List-Unsubscribe=One-Click", headers=hdr)
            else:
                c.request("GET", "/u/" + token(sid), headers=hdr)
            r = c.getresponse()
            rec["code"] = r.status
            rec["retry"] = r.getheader("Retry-After")
            rec["page"] = page(r.read().decode("utf-8", "replace"))
            c.close()
        except Exception as ex:
            rec["code"] = 0
            rec["err"] = repr(ex)
        rec["t1"] = time.time()
        with lock:
            out.write(json.dumps(rec) + "\n")
            out.flush()


ts = [threading.Thread(target=worker) for _ in range(a.threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
