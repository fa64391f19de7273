#!/usr/bin/python3
"""A throttling HTTP reverse proxy in front of a registry, for tests that need a pull to stay in
flight (pull progress): blob bodies are sent at RATE bytes per second, everything else as is.
Usage: slow_registry.py UPSTREAM_HOST:PORT RATE   (prints "listening on 127.0.0.1:PORT")"""
import http.client
import http.server
import sys
import time

UPSTREAM = sys.argv[1]
RATE = int(sys.argv[2])
CHUNK = 16 * 1024
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te"}


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self, head_only):
        body = None
        length = int(self.headers.get("Content-Length", "0") or 0)
        if length:
            body = self.rfile.read(length)
        conn = http.client.HTTPConnection(UPSTREAM, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP:
                self.send_header(k, v)
        self.end_headers()
        slow = "/blobs/" in self.path
        while not head_only:
            data = resp.read(CHUNK)
            if not data:
                break
            self.wfile.write(data)
            self.wfile.flush()
            if slow:
                time.sleep(len(data) / RATE)  # the throttle itself, not a synchronisation
        conn.close()

    def do_GET(self):
        self.forward(False)

    def do_HEAD(self):
        self.forward(True)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
server.serve_forever()
