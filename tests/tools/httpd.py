#!/usr/bin/python3
"""A feed server for the tests, on 127.0.0.1 only.

    httpd.py --root DIR [--port N] [--port-file FILE] [--log FILE]

Serves the files under DIR and a few misbehaving endpoints:

    /<file>                 the file, with ETag and Last-Modified; answers
                            304 to If-None-Match / If-Modified-Since; gzip
                            when the client accepts it and ?gzip=1; the
                            Content-Type given by ?ctype= (application/xml)
    /redirect?to=URL[&bytes=N]
                            302 to URL (any scheme: file:// included),
                            with an HTML body of about N bytes
    /hops/N                 N chained redirects, then /<file ?f=...>
    /status/CODE[?bytes=N]  that status with a small body (about N bytes)
    /big?bytes=N[&nolength=1]
                            N bytes of XML-ish filler; nolength=1 sends
                            no Content-Length (the body ends at close), so
                            only the client's own count can stop it
    /bomb                   a small gzip body that inflates to 64 MB
    /myjvn?total=N[&maxCountItem=M][&startItem=S][&fail=S][&slow=T][&bogus=1]
                            a MyJVN getVulnOverviewList answer (JVNRSS +
                            status:Status) for a query with N results,
                            M a page (at most 50, default 50), from S
                            (default 1); items JVNDB-2026-00000K.  fail=S:
                            the page from S answers 500; slow=T: the
                            pages after the first wait T seconds;
                            bogus=1: they are a plain RSS 2.0 feed
    /stall                  accepts, reads the request, never answers
    /slowloris              sends headers, then one byte every second

Every request is appended to --log as one JSON line (method, path,
headers), so tests can check what samail sent.  --port-file gets the port
once the socket listens (use --port 0 for any free port).
"""
import argparse
import email.utils
import gzip
import hashlib
import io
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "samail-test-httpd"

    def log_message(self, fmt, *args):  # quiet: tests read --log instead
        pass

    def record(self):
        if self.server.logfile:
            with self.server.lock, open(self.server.logfile, "a") as f:
                f.write(json.dumps({"method": self.command, "path": self.path,
                                    "headers": dict(self.headers)}) + "\n")

    def send_body(self, code, body, ctype="application/xml", extra=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self.record()
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        path = url.path
        if path == "/redirect":
            pad = b"<p>moved</p>" * (int(q.get("bytes", ["0"])[0]) // 12)
            self.send_response(302)
            self.send_header("Location", q["to"][0])
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(pad)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(pad)
        elif path.startswith("/hops/"):
            n = int(path.split("/")[2])
            target = ("/hops/%d?%s" % (n - 1, url.query) if n > 1
                      else "/" + q["f"][0])
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path.startswith("/status/"):
            code = int(path.split("/")[2])
            body = b"<html><body>error</body></html>"
            if q.get("bytes"):
                body = b"<p>error</p>" * (int(q["bytes"][0]) // 12)
            self.send_body(code, body, "text/html")
        elif path == "/big":
            n = int(q["bytes"][0])
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            if not q.get("nolength"):
                self.send_header("Content-Length", str(n))
            self.send_header("Connection", "close")
            self.end_headers()
            chunk = b"<x>" + b"A" * 65530 + b"</x>"
            sent = 0
            try:
                while sent < n:
                    part = chunk[: min(len(chunk), n - sent)]
                    self.wfile.write(part)
                    sent += len(part)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True
        elif path == "/bomb":
            raw = io.BytesIO()
            with gzip.GzipFile(fileobj=raw, mode="wb") as z:
                block = b"\0" * (1 << 20)
                for _ in range(64):
                    z.write(block)
            self.send_body(200, raw.getvalue(), extra={"Content-Encoding":
                                                       "gzip"})
        elif path == "/myjvn":
            self.myjvn(q)
        elif path == "/stall":
            time.sleep(3600)
        elif path == "/slowloris":
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(3600):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(1)
            except (BrokenPipeError, ConnectionResetError):
                pass
        else:
            self.serve_file(path, q)

    def myjvn(self, q):
        total = int(q.get("total", ["120"])[0])
        per = min(int(q.get("maxCountItem", ["50"])[0]), 50)
        start = int(q.get("startItem", ["1"])[0])
        if q.get("fail") and int(q["fail"][0]) == start:
            self.send_body(500, b"<html><body>error</body></html>",
                           "text/html")
            return
        if start > 1 and q.get("slow"):
            time.sleep(float(q["slow"][0]))
        if start > 1 and q.get("bogus"):
            self.send_body(200, (
                '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0">'
                '<channel><title>portal</title><link>https://e.example/</link>'
                '<item><guid>portal-1</guid><title>not a page</title>'
                '<link>https://e.example/1</link></item></channel></rss>\n'
            ).encode())
            return
        ks = range(start, min(start + per, total + 1))
        items = "".join(
            '<item rdf:about="https://jvndb.jvn.jp/ja/contents/2026/'
            'JVNDB-2026-%06d.html"><title>テスト製品 %d の脆弱性</title>'
            '<link>https://jvndb.jvn.jp/ja/contents/2026/'
            'JVNDB-2026-%06d.html</link><description>概要 %d</description>'
            '<sec:identifier>JVNDB-2026-%06d</sec:identifier>'
            '<dcterms:issued>2026-10-%02dT10:00:00+09:00</dcterms:issued>'
            '<dcterms:modified>2026-10-%02dT10:00:00+09:00</dcterms:modified>'
            '</item>' % (k, k, k, k, k, 1 + k % 28, 1 + k % 28) for k in ks)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rdf:RDF xmlns="http://purl.org/rss/1.0/" '
            'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:sec="http://jvn.jp/rss/mod_sec/3.0/" '
            'xmlns:status="http://jvndb.jvn.jp/myjvn/Status">'
            '<channel rdf:about="https://jvndb.jvn.jp/apis/myjvn">'
            '<title>JVNDB 脆弱性対策情報</title>'
            '<link>https://jvndb.jvn.jp/apis/myjvn</link>'
            '<description>JVNDB 脆弱性対策情報</description></channel>'
            '%s<status:Status version="3.3" method="getVulnOverviewList" '
            'lang="ja" retCd="0" retMax="50" errCd="" errMsg="" '
            'totalRes="%d" totalResRet="%d" firstRes="%d" feed="hnd" '
            'maxCountItem="%d"/></rdf:RDF>\n'
            % (items, total, len(ks), start, per))
        self.send_body(200, body.encode())

    def serve_file(self, path, q):
        rel = urllib.parse.unquote(path).lstrip("/")
        full = os.path.realpath(os.path.join(self.server.root, rel))
        if not full.startswith(self.server.root + os.sep) or \
                not os.path.isfile(full):
            self.send_body(404, b"not found", "text/plain")
            return
        with open(full, "rb") as f:
            body = f.read()
        st = os.stat(full)
        etag = '"%s"' % hashlib.sha256(body).hexdigest()[:16]
        lastmod = email.utils.formatdate(int(st.st_mtime), usegmt=True)
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        fresh = False
        if inm is not None:
            fresh = etag in [t.strip() for t in inm.split(",")]
        elif ims is not None:
            try:
                fresh = int(st.st_mtime) <= email.utils.parsedate_to_datetime(
                    ims).timestamp()
            except (TypeError, ValueError):
                fresh = False
        headers = {"ETag": etag, "Last-Modified": lastmod}
        if fresh:
            self.send_response(304)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            return
        if q.get("gzip") and "gzip" in self.headers.get("Accept-Encoding",
                                                        ""):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        self.send_body(200, body, q.get("ctype", ["application/xml"])[0],
                       extra=headers)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # Clients that hang up (size caps, timeouts) are what tests do.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.root = os.path.realpath(a.root)
    srv.logfile = a.log
    srv.lock = threading.Lock()
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
