"""An HTTP receiver for webhook_test.py, state_webhook_test.py and
callback_test.py, run as its own process: binds a free port on
127.0.0.1, prints it, and logs every POST it reads as one JSON line
(path, headers, body, when) to the file named by argv[1]. The path says
how to answer:

  /ok      200, body "done:" + the Hopper-Id header
  /fail    500, body "boom"; ?ra=N adds Retry-After: N
  /gone    410, body "gone"
  /accept  202, body "accepted" (the work goes on; a callback settles it)
  /early   POSTs {"action":"complete","result":"early"} to the request's
           Hopper-Callback first, then answers 202 (a receiver done at once)
  /flaky   500 (body "boom") to the first POST of each Hopper-Id, then as
           /ok
  /hang    never answers (the test's hopperd must cut it)

The test stops it by pid."""

import base64
import json
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = open(sys.argv[1], "a", buffering=1)
LOCK = threading.Lock()
SEEN = set()  # LOCK: the Hopper-Ids /flaky has failed once


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        url = urllib.parse.urlsplit(self.path)
        entry = {
            "path": url.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": base64.b64encode(body).decode(),
            "mono": time.monotonic(),
        }
        with LOCK:
            LOG.write(json.dumps(entry) + "\n")
        if url.path == "/hang":
            time.sleep(3600)
            return
        if url.path == "/early":
            req = urllib.request.Request(
                self.headers["Hopper-Callback"], method="POST",
                data=b'{"action":"complete","result":"early"}')
            with urllib.request.urlopen(req, timeout=60) as r:
                r.read()
        extra = {}
        hid = self.headers.get("Hopper-Id", "")
        with LOCK:
            first = url.path == "/flaky" and hid not in SEEN
            if first:
                SEEN.add(hid)
        if url.path in ("/ok", "/flaky") and not first:
            status, text = 200, b"done:" + self.headers["Hopper-Id"].encode()
        elif url.path == "/gone":
            status, text = 410, b"gone"
        elif url.path in ("/accept", "/early"):
            status, text = 202, b"accepted"
        else:
            status, text = 500, b"boom"
            ra = urllib.parse.parse_qs(url.query).get("ra")
            if ra:
                extra["Retry-After"] = ra[0]
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)


# socketserver's listen backlog is 5: hundreds of connections at once
# (the cap test) would overflow it, and each refused SYN is retried after
# 1, 2, 4, ... s.
ThreadingHTTPServer.request_queue_size = 1024
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
