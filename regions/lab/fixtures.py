#!/usr/bin/env python3
"""Small network fixtures the integration tests need besides the real servers (stdlib only).

    fixtures.py http-backend PORT   HTTP backend behind nginx: /slow answers after 200 ms
    fixtures.py dns PORT            upstream DNS for unbound: *.slow.test -> 127.0.0.1 after 1.5 s,
                                    servfail.test -> SERVFAIL
    fixtures.py dns-silent PORT     a DNS server that never answers
    fixtures.py blackhole PORT      a TCP listener whose accept queue is full: connects time out
"""
import http.server
import socket
import socketserver
import struct
import sys
import threading
import time


def http_backend(port):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if self.path.startswith("/slow"):
                time.sleep(0.2)
            body = b"slow backend\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    Server(("127.0.0.1", port), Handler).serve_forever()


def parse_question(data):
    pos = 12
    labels = []
    while pos < len(data) and data[pos] != 0:
        n = data[pos]
        labels.append(data[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    qtype = struct.unpack("!H", data[pos + 1:pos + 3])[0]
    return ".".join(labels).lower(), qtype, pos + 5


def dns(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))

    def answer(data, addr):
        name, qtype, end = parse_question(data)
        flags = 0x8400 | (struct.unpack("!H", data[2:4])[0] & 0x0100)  # QR, AA, copy RD
        answers = b""
        count = 0
        if name.endswith("servfail.test"):
            flags |= 2
        elif name.endswith("slow.test"):
            time.sleep(1.5)
            if qtype == 1:
                answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
                count = 1
        else:
            flags |= 3
        header = data[:2] + struct.pack("!HHHHH", flags, 1, count, 0, 0)
        sock.sendto(header + data[12:end] + answers, addr)

    while True:
        data, addr = sock.recvfrom(4096)
        if len(data) >= 12:
            threading.Thread(target=answer, args=(data, addr), daemon=True).start()


def dns_silent(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))
    while True:
        sock.recvfrom(4096)


def blackhole(port):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(0)
    fillers = []
    for _ in range(4):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    {"http-backend": http_backend, "dns": dns, "dns-silent": dns_silent, "blackhole": blackhole}[kind](port)
