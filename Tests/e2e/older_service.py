"""An HTTP service older than this regtoken, or not a regtoken service: every request gets a
plain-text answer, Go's 404 unless another status is given.

  older_service.py PORT [STATUS]
"""
import http.server
import socketserver
import sys


STATUS = int(sys.argv[2]) if len(sys.argv) > 2 else 404


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b"%d not what you expect\n" % STATUS
        self.send_response(STATUS)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = do_PUT = answer

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
