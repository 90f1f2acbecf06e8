#!/usr/bin/env python3
"""Sends raw HTTP bytes to 127.0.0.1:PORT, one connection per case, and prints what came back.

Usage: raw_http.py PORT < cases.json
cases.json: [{"name": "...", "payload": "<bytes as latin-1 text>", "wait": seconds (optional, 2)}]
Prints one JSON object: {name: {"statuses": [200, 400, ...], "closed": bool, "text": "first 2 KiB"}}.
Every response on the connection is counted (a pipelined request answered after another shows
as a second status); "closed" says the server closed the connection before the wait ran out.
"""
import json, socket, sys, time



def parse_statuses(data, head_request):
    """The status of every response in data, framed by Content-Length or chunked encoding."""
    statuses = []
    while data.startswith(b"HTTP/1."):
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        lines = data[:end].split(b"\r\n")
        statuses.append(int(lines[0][9:12]))
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip().lower()
        data = data[end + 4:]
        if head_request and len(statuses) == 1:
            continue
        if b"content-length" in fields:
            data = data[int(fields[b"content-length"]):]
        elif fields.get(b"transfer-encoding") == b"chunked":
            while True:
                line_end = data.find(b"\r\n")
                if line_end < 0:
                    return statuses
                size = int(data[:line_end].split(b";")[0], 16)
                data = data[line_end + 2 + size + 2:]
                if size == 0:
                    break
        else:
            break
    return statuses


port = int(sys.argv[1])
out = {}
for case in json.load(sys.stdin):
    payload = case["payload"].encode("latin-1")
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(0.2)
    try:
        s.sendall(payload)
    except (BrokenPipeError, ConnectionResetError):
        pass
    data, closed = b"", False
    deadline = time.time() + case.get("wait", 2)
    while time.time() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
    s.close()
    statuses = parse_statuses(data, payload.startswith(b"HEAD "))
    out[case["name"]] = {"statuses": statuses, "closed": closed, "text": data[:2048].decode("latin-1")}
print(json.dumps(out))
