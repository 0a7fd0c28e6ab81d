"""Running the real vantage-collector in tests: config, start/stop/SIGKILL, raw requests over a
socket, the SQLite store and /metrics."""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.request

from harness import BUILD_DIR, free_port, wait_for

COLLECTOR = os.path.join(BUILD_DIR, "beacon-collector", "vantage-collector")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(REPO, "tests", "data")
MMDB = os.path.join(DATA, "mmdb")
CAPTURES = os.path.join(DATA, "browser-reports", "captures")


class Collector:
    """A vantage-collector process on 127.0.0.1 with its own directory and SQLite store."""

    def __init__(self, directory, **overrides):
        self.dir = directory
        self.port = free_port()
        self.db = os.path.join(directory, "collector.db")
        self.log_path = os.path.join(directory, "collector.log")
        self.config = {
            "listen": f"127.0.0.1:{self.port}",
            "store": {"sqlite": self.db},
            "paths": {"csp": ["/csp", "/csp-legacy-report-uri"]},
            "geoip": {"city_db": os.path.join(MMDB, "GeoIP2-City-Test.mmdb"),
                      "asn_db": os.path.join(MMDB, "GeoLite2-ASN-Test.mmdb")},
        }
        for key, value in overrides.items():
            self.config[key] = value
        self.config_path = os.path.join(directory, "collector.yaml")
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)  # JSON is YAML
        self.proc = None

    def start(self, open_files=None):
        """Starts the collector; `open_files` sets its RLIMIT_NOFILE (soft and hard), as a
        service manager's `LimitNOFILE=` would."""
        self.log = open(self.log_path, "a")
        preexec = None
        if open_files is not None:
            import resource
            preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))  # noqa: E731
        self.proc = subprocess.Popen([COLLECTOR, "--config", self.config_path], stdout=self.log, stderr=self.log,
                                     preexec_fn=preexec)
        wait_for(self._listening, 10, what="the collector to listen")
        return self

    def _listening(self):
        if self.proc.poll() is not None:
            with open(self.log_path) as f:
                raise AssertionError(f"collector exited with {self.proc.returncode}: {f.read()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def stop(self, sig=signal.SIGTERM):
        """Stops the collector; a graceful stop must exit 0 (under ASan this also catches leaks
        and memory errors, which make the process exit non-zero)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            rc = self.proc.wait(timeout=30)
        else:
            rc = self.proc.returncode
        self.log.close()
        self.proc = None
        if sig == signal.SIGTERM and rc != 0:
            with open(self.log_path) as f:
                raise AssertionError(f"collector exited with {rc} after SIGTERM: {f.read()[-3000:]}")
        return rc

    def cpu_seconds(self):
        """User + system CPU time the collector has used (from /proc/<pid>/stat)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_lines(self, event):
        """The collector's log lines (parsed JSON) whose event is `event`."""
        lines = []
        with open(self.log_path) as f:
            for line in f:
                if f'"event":"{event}"' in line:
                    lines.append(json.loads(line))
        return lines

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- HTTP --------------------------------------------------------------------------------
    def raw(self, data, timeout=5):
        """Sends bytes as they are and returns (status, headers dict, body bytes) of the answer."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            return read_response(s)

    def request(self, method, path, body=b"", headers=None, timeout=5):
        head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", "Connection: close"]
        for k, v in (headers or {}).items():
            head.append(f"{k}: {v}")
        if isinstance(body, str):
            body = body.encode()
        if body or method == "POST":
            head.append(f"Content-Length: {len(body)}")
        return self.raw(("\r\n".join(head) + "\r\n\r\n").encode() + body, timeout)

    def metrics_text(self):
        return urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5).read().decode()

    def metrics(self):
        text = self.metrics_text()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def metric(self, series):
        return self.metrics().get(series, 0.0)

    # -- store -------------------------------------------------------------------------------
    def query(self, sql, args=()):
        con = sqlite3.connect(self.db, timeout=10)
        try:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(sql, args)]
        finally:
            con.close()


def read_response(s):
    """Reads exactly one response (byte by byte up to the blank line, so that pipelined responses
    behind it stay in the socket)."""
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        chunk = s.recv(1)
        if not chunk:
            break
        data += chunk
    if b"\r\n\r\n" not in data:
        return None, {}, data
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = s.recv(length - len(body))
        if not chunk:
            break
        body += chunk
    return status, headers, body


def temp_dir(test, prefix="vantage-collector-it-"):
    d = tempfile.mkdtemp(prefix=prefix)
    import shutil
    test.addCleanup(shutil.rmtree, d, True)
    return d


def start_collector(test, open_files=None, **overrides):
    c = Collector(temp_dir(test), **overrides).start(open_files=open_files)
    test.addCleanup(c.stop)
    return c
