#!/usr/bin/env python3
"""Publishes one file (a signed revocation list) over HTTPS with an ETag, and misbehaves on demand.

  list_server.py PORT FILE CERT KEY MODEFILE LOGFILE

The first word of MODEFILE, read on every connection, says how to answer:
  serve   the file, 200 with an ETag, or 304 when If-None-Match matches (the default)
  stall   accept the TCP connection and never answer, not even the TLS handshake
  304     always 304 Not Modified, whatever was asked
  500     always 500
Every connection is logged as a JSON line: {"mode": ..., "status": ...}.
"""
import hashlib, json, socket, ssl, sys, threading, time

port, path, cert, key, modefile, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)


def mode():
    try:
        return (open(modefile).read().split() or ["serve"])[0]
    except OSError:
        return "serve"


def record(entry):
    with open(log, "a") as f:
        f.write(json.dumps(entry) + "\n")


def handle(raw):
    m = mode()
    if m == "stall":
        record({"mode": m})
        time.sleep(120)
        raw.close()
        return
    try:
        conn = context.wrap_socket(raw, server_side=True)
        conn.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        inm = None
        for line in data.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"if-none-match":
                inm = value.strip().decode()
        body = open(path, "rb").read()
        etag = '"%s"' % hashlib.sha256(body).hexdigest()[:32]
        if m == "304" or (m == "serve" and inm == etag):
            status, body = 304, b""
        elif m == "500":
            status, body = 500, b"broken\n"
        else:
            status = 200
        record({"mode": m, "status": status, "if_none_match": inm})
        reason = {200: "OK", 304: "Not Modified", 500: "Internal Server Error"}[status]
        conn.sendall(("HTTP/1.1 %d %s\r\nETag: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (status, reason, etag, len(body))).encode() + body)
        conn.close()
    except (OSError, ssl.SSLError):
        pass


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen(64)
while True:
    client, _ = server.accept()
    threading.Thread(target=handle, args=(client,), daemon=True).start()
