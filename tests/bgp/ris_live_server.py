#!/usr/bin/env python3
"""A small RIS Live server for tests and benchmarks: RFC 6455 websockets with the standard
library only (no package to install), speaking the RIS Live protocol
(https://ris-live.ripe.net/manual/) far enough for a client: `ris_subscribe` (answered with
`ris_subscribe_ok` when `socketOptions.acknowledge` is set), `ping` (answered with `pong`),
websocket pings and closes; `ris_message`s go to a connection only when one of its
subscriptions matches (a `prefix` with `moreSpecific`, or a `type` such as RIS_PEER_STATE), as
the real server filters.

What the real server never does, and tests need: replaying captured lines or what it sent
before to each new connection, cutting a connection in the middle of a frame (RST), refusing
the upgrade, talking garbage, and blasting pre-encoded frames as fast as the socket takes them.

    python3 tests/bgp/ris_live_server.py --port 0 --replay tests/data/bgp/ris-live/*.json

prints "listening on PORT" and serves until interrupted.
"""
import argparse
import base64
import hashlib
import ipaddress
import json
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


def frame(payload, opcode=1, fin=True):
    """A server-to-client frame (unmasked)."""
    if isinstance(payload, str):
        payload = payload.encode()
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def ris_message(data):
    return json.dumps({"type": "ris_message", "data": data})


_seq = [0]


def update(peer, peer_asn, path, announce=(), withdraw=(), host="rrc00", timestamp=None):
    """A RIS Live UPDATE message (the wire form of the manual) with a unique id."""
    _seq[0] += 1
    ts = round(timestamp if timestamp is not None else time.time(), 2)
    data = {"timestamp": ts, "peer": peer, "peer_asn": str(peer_asn), "id": f"{peer}-{ts}-{_seq[0]}",
            "host": host, "type": "UPDATE"}
    if announce:
        data.update({"path": path, "origin": "igp",
                     "announcements": [{"next_hop": peer, "prefixes": list(announce)}]})
    if withdraw:
        data["withdrawals"] = list(withdraw)
    return ris_message(data)


def peer_state(peer, peer_asn, state, host="rrc00"):
    _seq[0] += 1
    ts = round(time.time(), 2)
    return ris_message({"timestamp": ts, "peer": peer, "peer_asn": str(peer_asn), "id": f"{peer}-{ts}-{_seq[0]}",
                        "host": host, "type": "RIS_PEER_STATE", "state": state})


class Connection:
    def __init__(self, server, sock, number):
        self.server = server
        self.sock = sock
        self.number = number
        self.subscriptions = []
        self.client = None
        self.path = None
        self.send_lock = threading.Lock()
        self.open = True
        self.last_subscribe = None
        self.replayed = False

    def send_raw(self, data):
        with self.send_lock:
            if not self.open:
                return False
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                self.open = False
                return False

    def send_text(self, text):
        return self.send_raw(frame(text))

    def matches(self, text):
        """Whether the real server would send this ris_message on this connection."""
        try:
            m = json.loads(text)
        except ValueError:
            return True
        if m.get("type") != "ris_message":
            return True
        d = m.get("data", {})
        for s in self.subscriptions:
            if s.get("type") and s["type"] != d.get("type"):
                continue
            if "prefix" in s:
                sub = ipaddress.ip_network(s["prefix"])
                prefixes = list(d.get("withdrawals", []))
                for a in d.get("announcements", []):
                    prefixes += a.get("prefixes", [])
                for p in prefixes:
                    try:
                        net = ipaddress.ip_network(p)
                    except ValueError:
                        continue
                    if net.version == sub.version and (net == sub or (s.get("moreSpecific") and net.subnet_of(sub))):
                        return True
                continue
            return True
        return False

    def abort(self, half_frame=b""):
        """Cuts the connection: optionally the first bytes of a frame, then a TCP reset."""
        with self.send_lock:
            if not self.open:
                return
            self.open = False
            try:
                if half_frame:
                    self.sock.sendall(half_frame)
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                # Wakes the reading thread, so that the close below is the last reference and
                # the kernel resets the connection at once.
                self.sock.shutdown(socket.SHUT_RD)
            except OSError:
                pass
            self.sock.close()

    def close(self, code=1001, reason=b"going away"):
        self.send_raw(frame(struct.pack("!H", code) + reason, opcode=8))
        with self.send_lock:
            self.open = False
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()


class RisLiveServer:
    """Threaded server on 127.0.0.1. `mode`: "ris" (the protocol), "refuse" (closes at once),
    "http404" (answers the upgrade with 404), "garbage" (accepts, then sends what is not RIS
    Live and closes). `replay`: lines sent (unfiltered, as captured) to every connection once it
    has subscribed; with `replay_history`, also every ris_message sent before (filtered)."""

    def __init__(self, replay=(), replay_history=False, mode="ris", tls=None, port=0):
        self.replay = list(replay)
        self.replay_history = replay_history
        self.mode = mode
        self.history = []
        self.connections = []
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.tls = None
        if tls:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(*tls)
        self.running = True
        self.accepted = 0  # connections accepted so far (numbered from 1)
        self.subscribed_event = threading.Condition(self.lock)
        threading.Thread(target=self._accept, daemon=True).start()

    # -- what tests look at ---------------------------------------------------------------------
    def subscriptions(self, number=None):
        with self.lock:
            return [(c.number, s) for c in self.connections for s in c.subscriptions
                    if number is None or c.number == number]

    def clients(self):
        with self.lock:
            return [c.client for c in self.connections if c.client is not None]

    def live(self):
        with self.lock:
            return [c for c in self.connections if c.open and c.subscriptions]

    # -- what tests do --------------------------------------------------------------------------
    def send(self, text, record=True):
        """Sends a message to every subscribed connection it matches; returns how many."""
        if record:
            with self.lock:
                self.history.append(text)
        return sum(1 for c in self.live() if c.matches(text) and c.send_text(text))

    def send_burst_and_cut(self, texts, cut_after):
        """Sends `texts` to the subscribed connections, but cuts every one of them after
        `cut_after` messages, in the middle of the next frame. All of `texts` go into the history
        (a relay that replays would have them)."""
        with self.lock:
            self.history.extend(texts)
        for c in self.live():
            sent = 0
            for t in texts:
                if not c.matches(t):
                    continue
                if sent == cut_after:
                    f = frame(t)
                    c.abort(half_frame=f[:len(f) // 2])
                    break
                c.send_text(t)
                sent += 1

    def drop(self, abrupt=True):
        for c in list(self.connections):
            if c.open:
                if abrupt:
                    c.abort()
                else:
                    c.close()

    def stop(self):
        self.running = False
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (close alone does not)
        except OSError:
            pass
        try:
            self.listener.close()
        except OSError:
            pass
        self.drop()

    # -- the server -----------------------------------------------------------------------------
    def _accept(self):
        number = 0
        while self.running:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            number += 1
            self.accepted = number
            threading.Thread(target=self._serve, args=(sock, number), daemon=True).start()

    def _serve(self, sock, number):
        if self.mode == "refuse":
            sock.close()
            return
        if self.tls:
            try:
                sock = self.tls.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError):
                sock.close()
                return
        conn = Connection(self, sock, number)
        with self.lock:
            self.connections.append(conn)
        try:
            if not self._handshake(conn):
                return
            if self.mode == "garbage":
                for junk in (frame("this is not JSON"), frame(b"\x00\x01binary", opcode=2),
                             frame('{"data": {}}'), frame('{"type": "ris_unknown", "data": {}}'),
                             frame('{"type": "ris_message", "data": {"peer": "not-an-address", "type": "UPDATE"}}')):
                    conn.send_raw(junk)
                time.sleep(0.2)
                conn.close(1011, b"garbage done")
                return
            self._read(conn)
        finally:
            conn.open = False
            try:
                sock.close()
            except OSError:
                pass

    def _handshake(self, conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.sock.recv(4096)
            if not chunk:
                return False
            data += chunk
            if len(data) > 65536:
                return False
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, target, _ = head[0].split(" ", 2)
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        url = urllib.parse.urlsplit(target)
        conn.path = url.path
        conn.client = urllib.parse.parse_qs(url.query).get("client", [""])[0]
        if self.mode == "http404" or method != "GET" or headers.get("upgrade", "").lower() != "websocket":
            conn.send_raw(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found")
            return False
        accept = base64.b64encode(hashlib.sha1(headers["sec-websocket-key"].encode() + GUID).digest())
        conn.send_raw(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        return True

    def _recv_exact(self, conn, n, buf):
        while len(buf[0]) < n:
            chunk = conn.sock.recv(65536)
            if not chunk:
                raise EOFError
            buf[0] += chunk
        out, buf[0] = buf[0][:n], buf[0][n:]
        return out

    def _read(self, conn):
        buf = [b""]
        message = b""
        try:
            while True:
                b0, b1 = self._recv_exact(conn, 2, buf)
                opcode, masked, n = b0 & 0x0F, b1 & 0x80, b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", self._recv_exact(conn, 2, buf))[0]
                elif n == 127:
                    n = struct.unpack("!Q", self._recv_exact(conn, 8, buf))[0]
                key = self._recv_exact(conn, 4, buf) if masked else b"\x00" * 4
                payload = bytes(x ^ key[i % 4] for i, x in enumerate(self._recv_exact(conn, n, buf)))
                if opcode == 8:  # close: answer it
                    conn.close(1000, b"")
                    return
                if opcode == 9:  # ping
                    conn.send_raw(frame(payload, opcode=10))
                    continue
                if opcode == 10:
                    continue
                message += payload
                if not b0 & 0x80:
                    continue
                text, message = message.decode(), b""
                self._on_text(conn, text)
        except (EOFError, OSError, ValueError):
            return

    def _on_text(self, conn, text):
        try:
            m = json.loads(text)
        except ValueError:
            conn.send_text(json.dumps({"type": "ris_error", "data": {"message": "not JSON"}}))
            return
        if m.get("type") == "ping":
            conn.send_text(json.dumps({"type": "pong", "data": None}))
        elif m.get("type") == "ris_subscribe":
            data = m.get("data", {})
            with self.lock:
                conn.subscriptions.append(data)
                conn.last_subscribe = time.time()
                self.subscribed_event.notify_all()
            if data.get("socketOptions", {}).get("acknowledge"):
                conn.send_text(json.dumps({"type": "ris_subscribe_ok", "data": {"subscription": data}}))
            if not conn.replayed:
                conn.replayed = True
                threading.Thread(target=self._replay, args=(conn,), daemon=True).start()

    def _replay(self, conn):
        # Once the client's burst of subscriptions is over (100 ms without another).
        while True:
            time.sleep(0.05)
            with self.lock:
                if time.time() - conn.last_subscribe >= 0.1:
                    history = list(self.history) if self.replay_history else []
                    break
        for line in self.replay:
            conn.send_text(line)
        for text in history:
            if conn.matches(text):
                conn.send_text(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--replay", nargs="*", default=[], help="files of RIS Live lines sent to every connection")
    args = ap.parse_args()
    lines = []
    for path in args.replay:
        with open(path) as f:
            lines += [line.rstrip("\n") for line in f if line.strip()]
    server = RisLiveServer(replay=lines)
    print(f"listening on {server.port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
