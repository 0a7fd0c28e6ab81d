"""vantage-collector under hostile or unlucky conditions: out of descriptors, invented report types,
oversized probe batches, pipelined requests over TLS, compressed bodies and protocol edge cases
(RFC 9110/9112). Each test starts its own collector on 127.0.0.1 (no other servers needed)."""
import gzip
import json
import os
import resource
import select
import socket
import ssl
import subprocess
import time
import unittest
import zlib

from collector_harness import Collector, read_response, start_collector, temp_dir
from harness import PROBE, Probe, free_port, wait_for, write_config

# The test process itself holds the client side of every idle connection.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if _soft < min(_hard, 8192):
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(_hard, 8192), _hard))


def nel(url="https://shop.example.com/cart", age=1500, type_="network-error"):
    return {"age": age, "type": type_, "url": url, "user_agent": "Mozilla/5.0 Firefox/128.0",
            "body": {"type": "tcp.timed_out", "phase": "connection", "server_ip": "192.0.2.1",
                     "elapsed_time": 30001, "sampling_fraction": 1.0, "status_code": 0,
                     "method": "GET", "protocol": "http/1.1"}}


def upload(body, path="/reports/nel", content_type="application/reports+json", host="collector.test",
           extra=(), connection="keep-alive"):
    if isinstance(body, str):
        body = body.encode()
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Type: {content_type}",
            "Origin: https://shop.example.com", f"Content-Length: {len(body)}", f"Connection: {connection}"]
    head += list(extra)
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def rejected(c, reason):
    return c.metric(f'vantage_collector_rejected_requests_total{{reason="{reason}"}}')


def closed(c, reason):
    return c.metric(f'vantage_collector_connections_closed_total{{reason="{reason}"}}')


def open_idle(port, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        socks.append(s)
    return socks


def hold_busy_connections(port, n, attempts=10):
    """Opens n connections, each with a request in progress (headers started, never finished),
    and returns them once the collector holds all n open. A connection still closing from an
    earlier request counts towards the limit for up to its 500 ms lingering close, so a set the
    collector refused or evicted is closed and tried again after that window."""
    for _ in range(attempts):
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /reports/nel HTTP/1.1\r\nHost: x\r\n")  # a request in progress
            socks.append(s)
            time.sleep(0.1)  # read (busy, so never evicted) before the next one arrives
        time.sleep(0.2)
        readable, _, _ = select.select(socks, [], [], 0)
        if not readable:  # neither answered (503) nor closed by the collector
            return socks
        for s in socks:
            s.close()
        time.sleep(0.6)
    return None


def closed_by_server(s, timeout=0.2):
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


class Descriptors(unittest.TestCase):
    """Issue: with `ulimit -n 1024`, ~1,000 idle keep-alive connections made the accept loop retry
    EMFILE at once forever (100 % CPU, a million log lines) and new connections were never served."""

    def check_flood(self, c, expect_emfile):
        socks = open_idle(c.port, 1100)
        self.addCleanup(lambda: [s.close() for s in socks])
        # Every connection beyond the limit closed the longest-idle one, oldest first.
        wait_for(lambda: closed(c, "evicted") >= 1100 - c.metric("vantage_collector_connections_max")
                 if not expect_emfile else c.metric(
                     'vantage_collector_accept_errors_total{reason="no_descriptors"}') > 0,
                 15, what="idle connections closed for new ones")
        cpu_before = c.cpu_seconds()
        time.sleep(3)
        cpu = c.cpu_seconds() - cpu_before
        self.assertLess(cpu, 0.5, f"{cpu:.2f} s CPU in 3 s with 1,100 idle connections")
        # A new request is served (an idle connection makes room for it).
        status, _, body = c.request("GET", "/healthz", timeout=5)
        self.assertEqual((status, body), (200, b"ok\n"))
        self.assertTrue(closed_by_server(socks[0]), "the longest-idle connection was not closed")
        self.assertFalse(closed_by_server(socks[-1]), "the newest connection was closed")
        return c.log_lines("collector.accept_failed")

    def test_over_the_connection_limit_the_longest_idle_connection_makes_room(self):
        c = start_collector(self, open_files=1024)
        self.assertEqual(c.metric("vantage_collector_connections_max"), 1024 - 128)
        limit_line = c.log_lines("collector.open_file_limit")[0]
        self.assertEqual((limit_line["soft"], limit_line["hard"], limit_line["max_connections"]),
                         (1024, 1024, 896))
        failures = self.check_flood(c, expect_emfile=False)
        self.assertEqual(failures, [])
        self.assertGreaterEqual(closed(c, "evicted"), 1100 - 896)

    def test_out_of_descriptors_backs_off_closes_idle_connections_and_logs_once_per_interval(self):
        # max_connections above what the descriptors allow: accept() itself fails with EMFILE.
        c = start_collector(self, open_files=1024, limits={"max_connections": 5000})
        self.assertTrue(c.log_lines("collector.max_connections_over_file_limit"))
        failures = self.check_flood(c, expect_emfile=True)
        errors = c.metric('vantage_collector_accept_errors_total{reason="no_descriptors"}')
        self.assertGreater(errors, 0)
        # One line per 10 s, however many failures (the test lasts well under 30 s).
        self.assertLessEqual(len(failures), 3, failures)
        self.assertGreaterEqual(len(failures), 1)
        self.assertEqual(failures[0]["error"], "Too many open files")

    def test_busy_connections_over_the_limit_get_503(self):
        c = start_collector(self, limits={"max_connections": 2, "request_timeout": "5s"})
        busy = hold_busy_connections(c.port, 2)
        self.assertIsNotNone(busy, "could not hold two busy connections")
        self.addCleanup(lambda: [s.close() for s in busy])
        status, headers, _ = c.request("GET", "/healthz")
        self.assertEqual((status, headers.get("retry-after")), (503, "1"))
        for s in busy:
            s.close()  # (the metrics scrape needs a connection too)
        wait_for(lambda: c.request("GET", "/healthz")[0] == 200, 5, what="the busy connections to close")
        self.assertGreaterEqual(closed(c, "over_limit"), 1)


class Cardinality(unittest.TestCase):
    def test_invented_report_types_do_not_grow_metrics(self):
        c = start_collector(self, limits={"per_ip": {"rate": 0}, "per_origin": {"rate": 0}})
        with socket.create_connection(("127.0.0.1", c.port), timeout=10) as s:
            for batch in range(300):
                reports = [nel(type_=f"invented-{batch}-{i}") for i in range(100)]
                s.sendall(upload(json.dumps(reports)))
                status, _, body = read_response(s)
                self.assertEqual(status, 204, body)
        text = c.metrics_text()
        # Stated bound (docs/metrics.md): the page does not depend on what clients upload.
        self.assertLess(len(text), 16 * 1024)
        series = [line for line in text.splitlines() if line.startswith("vantage_collector_records_total{")]
        self.assertEqual(len(series), 1, series[:5])
        self.assertEqual(c.metric('vantage_collector_records_total{kind="browser_report",type="other"}'), 30000)
        # The records themselves are stored with the type they had.
        wait_for(lambda: c.query("SELECT COUNT(DISTINCT type) AS n FROM browser_reports")[0]["n"] == 30000, 20,
                 what="30,000 distinct types stored")


def results_upload(c, body, token="tok-1", extra=()):
    head = ["POST /v1/results HTTP/1.1", "Host: collector.test", "Content-Type: application/x-ndjson",
            f"Authorization: Bearer {token}", f"Content-Length: {len(body)}", "Connection: close"] + list(extra)
    return c.raw(("\r\n".join(head) + "\r\n\r\n").encode() + body)


class BodyLimits(unittest.TestCase):
    def test_every_body_over_a_limit_gets_413(self):
        d = temp_dir(self)
        token = os.path.join(d, "token")
        with open(token, "w") as f:
            f.write("tok-1\n")
        c = start_collector(self, probes=[{"id": "p1", "token_file": token}],
                            limits={"max_results_body_bytes": "16KiB"})
        # Content-Length over the results limit, and over Beast's default (4 MiB): 413, not 400.
        for size in (16 * 1024 + 1, 5 << 20):
            with socket.create_connection(("127.0.0.1", c.port), timeout=5) as s:
                s.sendall(("POST /v1/results HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                           f"Authorization: Bearer tok-1\r\nContent-Length: {size}\r\n\r\n").encode())
                status, _, body = read_response(s)
            self.assertEqual(status, 413, body)
        # A chunked body that grows over the limit while streaming.
        with socket.create_connection(("127.0.0.1", c.port), timeout=5) as s:
            chunk = b"x" * 8192
            s.sendall(b"POST /v1/results HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                      b"Authorization: Bearer tok-1\r\nTransfer-Encoding: chunked\r\n\r\n" +
                      (b"2000\r\n" + chunk + b"\r\n") * 3)
            status, _, body = read_response(s)
        self.assertEqual(status, 413, body)
        self.assertEqual(rejected(c, "body_too_large"), 3)
        self.assertEqual(rejected(c, "bad_request"), 0)

    def test_an_oversized_probe_batch_is_halved_and_everything_is_delivered(self):
        d = temp_dir(self)
        token = os.path.join(d, "token")
        with open(token, "w") as f:
            f.write("tok-1\n")
        collector = Collector(d, probes=[{"id": "p1", "token_file": token}],
                              limits={"max_results_body_bytes": "8KiB"})
        spool = os.path.join(d, "spool")
        produced = os.path.join(d, "produced.jsonl")
        config = write_config({
            "vantage_point": {"id": "p1", "region": "lab"},
            "collector": {"url": f"http://127.0.0.1:{collector.port}/v1/results", "token_file": token,
                          "spool_dir": spool, "flush_interval": "100ms", "batch_max_results": 500,
                          "backoff": {"initial": "100ms", "max": "300ms"}},
            "defaults": {"interval": "200ms", "timeout": "150ms"},
            "checks": [{"id": f"refused-{i}", "kind": "http", "url": f"http://127.0.0.1:{free_port()}/"}
                       for i in range(4)],
        }, d)
        log = os.path.join(d, "probe.log")
        probe = Probe(config, output=produced, log=log)
        # The collector is down: a few dozen results (~1 KB each) pile up, several times 8 KiB.
        def produced_lines():
            if not os.path.exists(produced):
                return []
            with open(produced) as f:
                return [line for line in f if line.strip()]
        wait_for(lambda: len(produced_lines()) >= 40, 20, what="results spooled")
        backlog = {json.loads(line)["id"] for line in produced_lines()}
        collector.start()
        self.addCleanup(collector.stop)
        wait_for(lambda: backlog <= {r["result_id"] for r in collector.query("SELECT result_id FROM probe_results")},
                 30, what="every spooled result delivered")
        self.assertEqual(probe.stop(), 0)
        self.assertGreaterEqual(rejected(collector, "body_too_large"), 1)
        with open(log) as f:
            text = f.read()
        self.assertIn("collector.batch_too_large", text)
        self.assertNotIn("collector.batch_rejected", text)
        rejected_dir = os.path.join(spool, "rejected")
        self.assertFalse(os.path.isdir(rejected_dir) and os.listdir(rejected_dir))


def self_signed(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=collector.test"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def count_pipelined_answers(port, n, tls):
    """Sends `n` pipelined uploads at once and counts the complete answers read until the
    server closes."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(raw, server_hostname="collector.test")
    else:
        s = raw
    one = upload(json.dumps([nel()]))
    try:
        s.sendall(one * n)
    except OSError:
        pass  # the server closed after its last answer; what it sent is still to be read
    answers = []
    try:
        while True:
            status, headers, _ = read_response(s)
            if status is None:
                break
            answers.append(status)
            if headers.get("connection") == "close":
                break
    except (OSError, ssl.SSLError):
        pass
    s.close()
    return answers


class Pipelining(unittest.TestCase):
    """The per-client bucket (burst 200) answers the 201st upload with 429 and closes: the 201
    answers must all arrive, although 799 requests were still unread (TLS used to reset them)."""

    def run_pipelined(self, tls):
        d = temp_dir(self)
        extra = {}
        if tls:
            cert, key = self_signed(d)
            extra["tls"] = {"cert_file": cert, "key_file": key}
        c = start_collector(self, limits={"per_ip": {"rate": 0.001, "burst": 200}}, **extra)
        for run in range(5):
            answers = count_pipelined_answers(c.port, 1000, tls)
            self.assertEqual(len(answers), 201, f"run {run}: {len(answers)} answers")
            self.assertEqual(answers[-1], 429)
            c.stop()
            c.start()

    def test_tls_close_after_pipelined_requests_loses_no_answer(self):
        self.run_pipelined(tls=True)

    def test_plain_close_after_pipelined_requests_loses_no_answer(self):
        self.run_pipelined(tls=False)


class ProtocolEdges(unittest.TestCase):
    def setUp(self):
        d = temp_dir(self)
        token = os.path.join(d, "token")
        with open(token, "w") as f:
            f.write("tok-1\n")
        self.c = start_collector(self, probes=[{"id": "p1", "token_file": token}],
                                 limits={"per_ip": {"rate": 0}})

    def stored(self, n):
        wait_for(lambda: len(self.c.query("SELECT id FROM browser_reports")) >= n, 5, what=f"{n} rows")
        return self.c.query("SELECT * FROM browser_reports ORDER BY id")

    def test_gzip_and_deflate_bodies_are_inflated(self):
        body = json.dumps([nel(url="https://shop.example.com/gzip")]).encode()
        deflate_raw = zlib.compressobj(wbits=-15)
        raw = deflate_raw.compress(body) + deflate_raw.flush()
        for encoded, coding in ((gzip.compress(body), "gzip"), (zlib.compress(body), "deflate"),
                                (raw, "deflate")):
            status, _, answer = self.c.raw(upload(encoded, extra=[f"Content-Encoding: {coding}"],
                                                  connection="close"))
            self.assertEqual(status, 204, answer)
        rows = self.stored(3)
        self.assertEqual([r["url"] for r in rows], ["https://shop.example.com/gzip"] * 3)

    def test_unknown_encoding_is_415_and_a_bomb_is_413(self):
        body = json.dumps([nel()]).encode()
        status, headers, _ = self.c.raw(upload(body, extra=["Content-Encoding: br"], connection="close"))
        self.assertEqual((status, headers.get("accept-encoding")), (415, "gzip, deflate"))
        self.assertEqual(rejected(self.c, "unsupported_encoding"), 1)
        bomb = gzip.compress(b"[" + b" " * (32 << 20) + b"]")  # 32 MiB of spaces in ~32 KiB
        self.assertLess(len(bomb), 64 * 1024)
        status, _, answer = self.c.raw(upload(bomb, extra=["Content-Encoding: gzip"], connection="close"))
        self.assertEqual(status, 413, answer)
        status, _, answer = self.c.raw(upload(b"\x1f\x8b\x08\x00garbage", extra=["Content-Encoding: gzip"],
                                              connection="close"))
        self.assertEqual(status, 400)
        self.assertIn(b"not valid gzip", answer)
        self.assertEqual(self.c.query("SELECT COUNT(*) AS n FROM browser_reports")[0]["n"], 0)

    def test_absolute_form_targets_are_routed(self):
        body = json.dumps([nel()])
        status, _, answer = self.c.raw(upload(body, path=f"http://127.0.0.1:{self.c.port}/reports/nel?x=1",
                                              connection="close"))
        self.assertEqual(status, 204, answer)
        status, _, _ = self.c.raw(b"GET HTTP://collector.test/healthz HTTP/1.1\r\nHost: collector.test\r\n"
                                  b"Connection: close\r\n\r\n")
        self.assertEqual(status, 200)
        self.stored(1)

    def test_missing_or_repeated_host_is_400(self):
        body = json.dumps([nel()]).encode()
        without = upload(body, connection="close").replace(b"Host: collector.test\r\n", b"")
        self.assertEqual(self.c.raw(without)[0], 400)
        twice = upload(body, connection="close").replace(b"Host: collector.test\r\n",
                                                         b"Host: collector.test\r\nHost: other.test\r\n")
        self.assertEqual(self.c.raw(twice)[0], 400)
        bad = upload(body, host="a b", connection="close")
        self.assertEqual(self.c.raw(bad)[0], 400)
        self.assertEqual(rejected(self.c, "bad_host"), 3)
        # HTTP/1.0 needs no Host.
        old = without.replace(b"HTTP/1.1", b"HTTP/1.0")
        self.assertEqual(self.c.raw(old)[0], 204)

    def test_options_is_answered_on_every_upload_path(self):
        for path in ("/reports/nel", "/csp", "/beacon"):
            status, headers, _ = self.c.request("OPTIONS", path, headers={
                "Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST"})
            self.assertEqual(status, 204, path)
            self.assertEqual(headers.get("access-control-allow-origin"), "https://shop.example.com")
        status, headers, _ = self.c.request("OPTIONS", "/v1/results")
        self.assertEqual((status, headers.get("allow")), (204, "POST, OPTIONS"))
        self.assertNotIn("access-control-allow-origin", headers)

    def test_a_report_with_an_impossible_age_is_dropped_alone(self):
        good = json.dumps(nel(url="https://shop.example.com/kept"))
        bad = json.dumps(nel(url="https://shop.example.com/dropped")).replace('"age": 1500', '"age": 18446744073709551616')
        self.assertIn("18446744073709551616", bad)
        status, _, answer = self.c.raw(upload(f"[{bad},{good}]", connection="close"))
        self.assertEqual(status, 204, answer)
        self.assertEqual([r["url"] for r in self.stored(1)], ["https://shop.example.com/kept"])
        self.assertEqual(self.c.metric('vantage_collector_dropped_reports_total{reason="age_out_of_range"}'), 1)
        # A string holding such digits is not touched, and a float of that size is dropped too.
        weird = json.dumps(nel(url="https://shop.example.com/s")).replace('"age": 1500', '"age": 1e300')
        weird = weird.replace('"tcp.timed_out"', '"12345678901234567890123"')
        status, _, answer = self.c.raw(upload(f"[{weird},{good}]", connection="close"))
        self.assertEqual(status, 204, answer)
        self.assertEqual(self.c.metric('vantage_collector_dropped_reports_total{reason="age_out_of_range"}'), 2)


if __name__ == "__main__":
    unittest.main()
