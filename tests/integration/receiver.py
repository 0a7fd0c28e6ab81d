#!/usr/bin/env python3
"""A stand-in for vantage-collector's probe endpoint until the collector exists (stdlib only).

    receiver.py PORT TOKEN LOG_FILE

POST /v1/results with `Authorization: Bearer TOKEN` and an NDJSON body: every line must be a JSON
object with an "id"; each received line is appended to LOG_FILE as {"id":…, "duplicate":bool}.
401 without a token, 403 with a wrong one, 400 for a malformed body. Duplicates (an id seen
before) are acknowledged but flagged, as the collector will drop them.
"""
import http.server
import json
import socketserver
import sys
import threading

port, token, log_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
seen = set()
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return self.reply(401, {"error": "missing bearer token"})
        if auth[len("Bearer "):] != token:
            return self.reply(403, {"error": "wrong token"})
        if self.path != "/v1/results":
            return self.reply(404, {"error": "not found"})
        records = []
        try:
            for line in body.decode().splitlines():
                if line.strip():
                    r = json.loads(line)
                    records.append(r["id"])
        except (ValueError, KeyError, TypeError) as e:
            return self.reply(400, {"error": f"malformed NDJSON: {e}"})
        duplicates = 0
        with lock, open(log_path, "a") as f:
            for rid in records:
                dup = rid in seen
                duplicates += dup
                seen.add(rid)
                f.write(json.dumps({"id": rid, "duplicate": dup}) + "\n")
        self.reply(200, {"accepted": len(records) - duplicates, "duplicates": duplicates})

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


Server(("127.0.0.1", port), Handler).serve_forever()
