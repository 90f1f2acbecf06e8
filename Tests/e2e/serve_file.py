"""Serves one file over HTTP with an ETag, answering If-None-Match with 304, and logs each
request as a JSON line: how a fleet of proxies would poll a published revocation list.

  serve_file.py PORT FILE LOGFILE
"""
import hashlib
import http.server
import json
import socketserver
import sys

port, path, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        with open(path, "rb") as f:
            data = f.read()
        etag = '"%s"' % hashlib.sha256(data).hexdigest()[:32]
        inm = self.headers.get("If-None-Match")
        status = 304 if inm == etag else 200
        with open(log, "a") as f:
            f.write(json.dumps({"if_none_match": inm, "status": status}) + "\n")
        self.send_response(status)
        self.send_header("ETag", etag)
        if status == 200:
            self.send_header("Content-Type", "application/jose")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


Server(("127.0.0.1", port), Handler).serve_forever()
