"""A stand-in registry for proxy tests: records every request it receives (method, target,
headers in order) as JSON lines, and answers 200 with a small JSON body.

  fake_upstream.py PORT LOGFILE [--sleep SECONDS] [--close]
--sleep delays every answer; --close closes the connection without answering.
"""
import http.server
import json
import socketserver
import sys
import time

port, log = int(sys.argv[1]), sys.argv[2]
sleep = float(sys.argv[sys.argv.index("--sleep") + 1]) if "--sleep" in sys.argv else 0.0
close = "--close" in sys.argv


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_one(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with open(log, "a") as f:
            f.write(json.dumps({"method": self.command, "target": self.path,
                                "headers": [[k, v] for k, v in self.headers.items()],
                                "body_len": len(body)}) + "\n")
        if sleep:
            time.sleep(sleep)
        if close:
            self.close_connection = True
            return
        out = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("X-Multi", "one")
        self.send_header("X-Multi", "two")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


Server(("127.0.0.1", port), Handler).serve_forever()
