"""vantage-collector end to end: real Chromium captures replayed byte for byte, GeoIP/ASN
enrichment with the MaxMind test databases, every limit, probe uploads and durability across
SIGKILL. Each test starts its own collector on 127.0.0.1 (no other servers needed)."""
import json
import os
import socket
import sqlite3
import threading
import time
import unittest
import urllib.parse
import uuid

from collector_harness import CAPTURES, MMDB, Collector, read_response, start_collector, temp_dir
from harness import PROBE, Probe, free_port, wait_for, write_config

NOT_UPLOADS = {"page-request-same.http", "reporting-v1-preflight-that-got-no-cors-answer.http"}


def strip_query(url):
    if "://" not in url:
        return url
    p = urllib.parse.urlsplit(url)
    netloc = p.netloc.rsplit("@", 1)[-1]
    return f"{p.scheme}://{netloc}{p.path}"


def expected_rows(capture):
    """What the store must hold after this capture, worked out from the capture itself:
    [(kind, type, endpoint, url, nel_type, status_code)]."""
    head, body = capture.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    method, target, _ = lines[0].split(" ")
    headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    path = target.split("?")[0]
    if method != "POST":
        return []
    doc = json.loads(body)
    if path.startswith("/reports"):
        group = path[len("/reports/"):] if path.startswith("/reports/") else ""
        endpoint = "reports/" + group if group else "reports"
        return [("browser_report", r["type"], endpoint, strip_query(r["url"]),
                 r["body"].get("type") if r["type"] == "network-error" else None,
                 r["body"].get("status_code") if r["type"] == "network-error" else None) for r in doc]
    if headers["content-type"] == "application/csp-report":
        return [("browser_report", "csp-violation", "csp", strip_query(doc["csp-report"]["document-uri"]), None, None)]
    kinds = {"js-error": "js_error", "unhandledrejection": "js_error", "fetch-http-error": "http_error",
             "perf": "timing"}
    if doc.get("kind") == "reporting-observer":
        return [("browser_report", doc["report"]["type"], "beacon", strip_query(doc["report"]["url"]), None, None)]
    kind = kinds.get(doc.get("kind"), "unknown")
    url = doc.get("url") if kind == "http_error" else doc.get("page", "")
    status = doc.get("status") if kind == "http_error" else (doc["nav"]["responseStatus"] if kind == "timing" else None)
    return [("rum_event", kind, "beacon", strip_query(url or ""), None, status)]


class CaptureReplay(unittest.TestCase):
    def test_every_chromium_capture_replayed_byte_for_byte_is_accepted_and_stored(self):
        c = start_collector(self)
        captures = sorted(os.listdir(CAPTURES))
        self.assertGreaterEqual(len(captures), 29)
        last_id = 0
        for name in captures:
            with open(os.path.join(CAPTURES, name), "rb") as f:
                data = f.read()
            before = time.time_ns()
            status, headers, body = c.raw(data)
            after = time.time_ns()
            with self.subTest(capture=name):
                if name in NOT_UPLOADS:
                    self.assertEqual(status, 404)
                    continue
                self.assertEqual(status, 204, body)
                if data.startswith(b"OPTIONS"):
                    origin = [l for l in data.decode().split("\r\n") if l.lower().startswith("origin:")][0].split(":", 1)[1].strip()
                    self.assertEqual(headers.get("access-control-allow-origin"), origin)
                    self.assertIn("content-type", headers.get("access-control-allow-headers", ""))
                want = expected_rows(data)
                # Browser uploads are answered once in the segment log; the store loads them from it
                # asynchronously, within milliseconds.
                wait_for(lambda: len(c.query("SELECT id FROM browser_reports WHERE id > ?", (last_id,))) >= len(want),
                         5, what=f"the rows of {name}")
                rows = c.query("SELECT * FROM browser_reports WHERE id > ? ORDER BY id", (last_id,))
                last_id = max([last_id] + [r["id"] for r in rows])
                got = [(r["kind"], r["type"], r["endpoint"], r["url"], r["nel_type"], r["status_code"]) for r in rows]
                self.assertEqual(got, want)
                for r in rows:
                    self.assertEqual(r["client_prefix"], "127.0.0.0/24")
                    self.assertEqual((r["ua_family"], r["ua_major"]), ("HeadlessChrome", 156))
                    self.assertNotIn("?", r["url"])
                    json.loads(r["body"])
                    self.assertTrue(before <= r["received_ns"] <= after)
                if data.startswith(b"POST /reports"):
                    doc = json.loads(data.split(b"\r\n\r\n", 1)[1])
                    for report, row in zip(doc, rows):
                        self.assertEqual(row["received_ns"] - row["event_ns"], report["age"] * 1_000_000)
        # Cookies and raw addresses are never stored.
        with open(c.db, "rb") as f:
            stored = f.read()
        self.assertNotIn(b"Cookie", stored)
        nel = c.query("SELECT weight, method, protocol, server_ip, nel_phase FROM browser_reports "
                      "WHERE nel_type = 'tcp.refused'")
        self.assertTrue(nel)
        self.assertEqual((nel[0]["weight"], nel[0]["method"], nel[0]["protocol"], nel[0]["server_ip"],
                          nel[0]["nel_phase"]), (1.0, "GET", "http/1.1", "127.0.0.1", "connection"))


def nel_report(url="https://shop.example.com/cart?id=7#x", server_ip="1.128.0.1", age=1500, fraction=0.25):
    return [{"age": age, "type": "network-error", "url": url, "user_agent": "Mozilla/5.0 Firefox/128.0",
             "body": {"type": "tcp.timed_out", "phase": "connection", "server_ip": server_ip,
                      "elapsed_time": 30001, "sampling_fraction": fraction, "status_code": 0,
                      "method": "GET", "protocol": "http/1.1", "referrer": "https://shop.example.com/?q=secret"}}]


def stored(c, n, sql="SELECT * FROM browser_reports ORDER BY id"):
    """The rows once `n` of them are committed (browser uploads are acknowledged once in the
    segment log; the store loads them asynchronously)."""
    wait_for(lambda: len(c.query(sql)) >= n, 5, what=f"{n} stored rows")
    return c.query(sql)


def post_reports(c, body, extra=None):
    headers = {"Content-Type": "application/reports+json", "Origin": "https://shop.example.com"}
    headers.update(extra or {})
    return c.request("POST", "/reports/nel", json.dumps(body), headers)


class Enrichment(unittest.TestCase):
    def test_trusted_proxy_forwarded_address_is_enriched_then_truncated(self):
        c = start_collector(self, trusted_proxies=["127.0.0.1"],
                            geoip={"city_db": os.path.join(MMDB, "GeoIP2-City-Test.mmdb"),
                                   "asn_db": os.path.join(MMDB, "GeoLite2-ASN-Test.mmdb")})
        self.assertEqual(post_reports(c, nel_report(), {"X-Forwarded-For": "1.128.0.1"})[0], 204)
        self.assertEqual(post_reports(c, nel_report(), {"X-Forwarded-For": "203.0.113.9, 81.2.69.160"})[0], 204)
        self.assertEqual(post_reports(c, nel_report(), {"Forwarded": 'for="[2001:db8:1:2::5]:4711"'})[0], 204)
        rows = stored(c, 3)
        self.assertEqual(len(rows), 3)
        telstra, london, v6 = rows
        self.assertEqual((telstra["asn"], telstra["isp"], telstra["client_prefix"]), (1221, "Telstra Pty Ltd", "1.128.0.0/24"))
        # The right-most untrusted X-Forwarded-For hop is the client (the proxy appended it).
        self.assertEqual((london["country"], london["city"], london["client_prefix"]), ("GB", "London", "81.2.69.0/24"))
        self.assertEqual(v6["client_prefix"], "2001:db8:1::/48")
        # NEL server_ip is enriched too: which network the failing connection went to.
        self.assertEqual((telstra["server_asn"], telstra["server_as_org"]), (1221, "Telstra Pty Ltd"))
        # Normalisation: event time = receive time - age; weight = 1/sampling_fraction; no query.
        self.assertEqual(telstra["received_ns"] - telstra["event_ns"], 1500 * 1_000_000)
        self.assertEqual(telstra["weight"], 4.0)
        self.assertEqual(telstra["url"], "https://shop.example.com/cart")
        self.assertEqual(json.loads(telstra["body"])["referrer"], "https://shop.example.com/")
        self.assertEqual((telstra["ua_family"], telstra["ua_major"]), ("Firefox", 128))
        with open(c.db, "rb") as f:
            raw_db = f.read()
        for raw in (b"81.2.69.160", b"2001:db8:1:2::5", b"secret", b"cart?id"):
            self.assertNotIn(raw, raw_db)

    def test_isp_database_names_the_isp(self):
        c = start_collector(self, trusted_proxies=["127.0.0.0/8"],
                            geoip={"isp_db": os.path.join(MMDB, "GeoIP2-ISP-Test.mmdb")})
        self.assertEqual(post_reports(c, nel_report(), {"X-Forwarded-For": "1.128.0.1"})[0], 204)
        row = stored(c, 1)[0]
        self.assertEqual((row["asn"], row["isp"]), (1221, "Telstra Internet"))

    def test_an_untrusted_peers_forwarding_headers_are_ignored(self):
        c = start_collector(self)  # no trusted_proxies
        self.assertEqual(post_reports(c, nel_report(), {"X-Forwarded-For": "81.2.69.160",
                                                        "Forwarded": "for=1.128.0.1"})[0], 204)
        row = stored(c, 1)[0]
        self.assertEqual((row["client_prefix"], row["country"], row["asn"]), ("127.0.0.0/24", None, None))

    def test_sighup_reloads_the_databases_and_a_broken_file_keeps_the_old_ones(self):
        d = temp_dir(self)
        city = os.path.join(d, "city.mmdb")
        with open(os.path.join(MMDB, "GeoIP2-City-Test.mmdb"), "rb") as src, open(city, "wb") as dst:
            dst.write(src.read())
        c = Collector(d, trusted_proxies=["127.0.0.1"], geoip={"city_db": city}).start()
        self.addCleanup(c.stop)
        # Database updates replace the file (geoipupdate writes a new file and renames it).
        def replace(source):
            with open(source, "rb") as src, open(city + ".new", "wb") as dst:
                dst.write(src.read())
            os.replace(city + ".new", city)
        replace(os.path.join(MMDB, "GeoIP2-City-Test-Invalid-Node-Count.mmdb"))
        c.proc.send_signal(1)  # SIGHUP
        wait_for(lambda: c.metric("vantage_collector_geoip_reload_failures_total") == 1, 5, what="failed reload")
        self.assertEqual(post_reports(c, nel_report(), {"X-Forwarded-For": "81.2.69.160"})[0], 204)
        self.assertEqual(stored(c, 1)[0]["country"], "GB")
        replace(os.path.join(MMDB, "GeoIP2-City-Test.mmdb"))
        c.proc.send_signal(1)
        wait_for(lambda: c.metric("vantage_collector_geoip_reloads_total") == 1, 5, what="reload")


class EndpointTemplates(unittest.TestCase):
    def test_reports_for_two_carts_are_stored_raw_and_aggregate_to_one_endpoint(self):
        c = start_collector(self)
        for cart in (1, 2):
            self.assertEqual(post_reports(c, nel_report(url=f"https://shop.example.com/api/cart/{cart}/total?x=1"))[0],
                             204)
        rows = stored(c, 2)
        self.assertEqual([r["url"] for r in rows], ["https://shop.example.com/api/cart/1/total",
                                                    "https://shop.example.com/api/cart/2/total"])
        self.assertEqual(c.query("SELECT url_template, count(*) AS n FROM browser_reports GROUP BY url_template"),
                         [{"url_template": "https://shop.example.com/api/cart/:id/total", "n": 2}])


def rejected(c, reason):
    return c.metric(f'vantage_collector_rejected_requests_total{{reason="{reason}"}}')


class Limits(unittest.TestCase):
    def setUp(self):
        self.c = start_collector(self, allowed_origins=["https://shop.example.com"], limits={
            "max_body_bytes": "2KiB", "max_reports_per_batch": 3, "max_json_depth": 6,
            "max_string_bytes": 300, "max_header_bytes": "2KiB", "request_timeout": "1s",
            "per_ip": {"rate": 1000, "burst": 1000}})

    def assert_still_serving(self):
        self.assertEqual(post_reports(self.c, nel_report())[0], 204)
        self.assertEqual(self.c.request("GET", "/healthz")[0], 200)

    def test_body_over_the_limit_is_refused_with_413_before_it_is_sent(self):
        c = self.c
        with socket.create_connection(("127.0.0.1", c.port), timeout=5) as s:
            s.sendall(b"POST /reports/nel HTTP/1.1\r\nHost: x\r\nContent-Type: application/reports+json\r\n"
                      b"Origin: https://shop.example.com\r\nContent-Length: 5000\r\n\r\n")
            status, _, body = read_response(s)  # answered without a single body byte
        self.assertEqual(status, 413)
        self.assertIn(b"limit is 2048", body)
        self.assertEqual(rejected(c, "body_too_large"), 1)
        self.assert_still_serving()

    def test_wrong_content_type_is_415(self):
        status, _, _ = self.c.request("POST", "/reports/nel", "[]", {"Content-Type": "text/html"})
        self.assertEqual(status, 415)
        self.assertEqual(rejected(self.c, "unsupported_media_type"), 1)
        self.assert_still_serving()

    def test_malformed_or_oversized_json_is_400_with_a_reason(self):
        cases = [
            ("malformed_json", "[{\"age\": 1,", "malformed JSON"),
            ("json_too_deep", "[" * 7 + "]" * 7, "deeper than 6"),
            ("string_too_long", json.dumps([{"type": "x" * 400}]), "longer than 300"),
            ("too_many_reports", json.dumps(nel_report() * 4), "has 4 reports; the limit is 3"),
            ("wrong_shape", json.dumps({"age": 1}), "expected a JSON array"),
        ]
        for label, body, reason in cases:
            with self.subTest(label):
                status, _, answer = self.c.request("POST", "/reports/nel", body,
                                                   {"Content-Type": "application/reports+json",
                                                    "Origin": "https://shop.example.com"})
                self.assertEqual(status, 400)
                self.assertIn(reason, json.loads(answer)["error"])
                self.assertEqual(rejected(self.c, label), 1)
        self.assert_still_serving()

    def test_reports_for_other_sites_are_dropped_and_foreign_origins_refused(self):
        c = self.c
        mixed = nel_report() + nel_report(url="https://evil.example.net/")
        self.assertEqual(post_reports(c, mixed)[0], 204)
        self.assertEqual(len(stored(c, 1)), 1)
        self.assertEqual(c.metric('vantage_collector_dropped_reports_total{reason="url_not_allowed"}'), 1)
        status, headers, _ = c.request("OPTIONS", "/reports/nel", headers={
            "Origin": "https://evil.example.net", "Access-Control-Request-Method": "POST"})
        self.assertEqual(status, 403)
        self.assertNotIn("access-control-allow-origin", headers)
        self.assertEqual(post_reports(c, nel_report(), {"Origin": "https://evil.example.net"})[0], 403)
        self.assertEqual(rejected(c, "origin_not_allowed"), 2)
        old = nel_report(age=48 * 3600 * 1000)
        self.assertEqual(post_reports(c, old)[0], 204)
        self.assertEqual(c.metric('vantage_collector_dropped_reports_total{reason="age_out_of_range"}'), 1)

    def test_headers_over_the_limit_are_431(self):
        status, _, _ = self.c.request("GET", "/healthz", headers={"X-Padding": "a" * 4000})
        self.assertEqual(status, 431)
        self.assertEqual(rejected(self.c, "header_too_large"), 1)
        self.assert_still_serving()

    def test_a_slow_client_is_disconnected_and_counted(self):
        c = self.c
        with socket.create_connection(("127.0.0.1", c.port), timeout=5) as s:
            s.sendall(b"POST /reports/nel HTTP/1.1\r\nHost: x\r\n")  # ... and nothing more
            t0 = time.monotonic()
            self.assertEqual(s.recv(100), b"")  # the collector closes the connection
            elapsed = time.monotonic() - t0
        self.assertGreater(elapsed, 0.5)
        self.assertLess(elapsed, 4)
        self.assertEqual(c.metric('vantage_collector_connections_closed_total{reason="slow_client"}'), 1)
        self.assert_still_serving()


class Protocol(unittest.TestCase):
    def test_expect_100_continue_is_answered_before_the_body_is_sent(self):
        c = start_collector(self)
        body = json.dumps(nel_report() * 3).encode()
        with socket.create_connection(("127.0.0.1", c.port), timeout=5) as s:
            s.sendall(b"POST /reports/nel HTTP/1.1\r\nHost: x\r\nContent-Type: application/reports+json\r\n"
                      b"Expect: 100-continue\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
            s.settimeout(0.5)
            self.assertEqual(s.recv(25), b"HTTP/1.1 100 Continue\r\n\r\n")
            s.settimeout(5)
            s.sendall(body)
            self.assertEqual(read_response(s)[0], 204)

    def test_keep_alive_serves_several_requests_on_one_connection(self):
        c = start_collector(self)
        body = json.dumps(nel_report()).encode()
        one = (b"POST /reports/nel HTTP/1.1\r\nHost: x\r\nContent-Type: application/reports+json\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        with socket.create_connection(("127.0.0.1", c.port), timeout=5) as s:
            s.sendall(one * 3)  # pipelined
            statuses = [read_response(s)[0] for _ in range(3)]
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            statuses.append(read_response(s)[0])
        self.assertEqual(statuses, [204, 204, 204, 200])
        self.assertEqual(len(stored(c, 3)), 3)

    def test_several_event_loops_share_one_port(self):
        c = start_collector(self, threads=3, limits={"per_ip": {"rate": 0}})
        errors = []

        def client(n):
            try:
                for _ in range(n):
                    if post_reports(c, nel_report())[0] != 204:
                        errors.append("status")
            except OSError as e:
                errors.append(str(e))
        threads = [threading.Thread(target=client, args=(20,)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(stored(c, 120)), 120)

    def test_beacon_js_and_readiness_are_served(self):
        c = start_collector(self)
        status, headers, body = c.request("GET", "/beacon.js")
        self.assertEqual(status, 200)
        self.assertIn("javascript", headers["content-type"])
        self.assertIn(b"sendBeacon", body)
        self.assertEqual(c.request("GET", "/readyz")[0], 200)
        self.assertEqual(c.request("DELETE", "/metrics")[0], 405)


class RateLimits(unittest.TestCase):
    def test_per_client_and_per_origin_buckets_answer_429_with_retry_after(self):
        c = start_collector(self, trusted_proxies=["127.0.0.1"], limits={
            "per_ip": {"rate": 0.2, "burst": 3}, "per_origin": {"rate": 0.2, "burst": 5}})
        statuses = [post_reports(c, nel_report(), {"X-Forwarded-For": "192.0.2.1"}) for _ in range(4)]
        self.assertEqual([s[0] for s in statuses], [204, 204, 204, 429])
        self.assertGreaterEqual(int(statuses[3][1]["retry-after"]), 1)
        self.assertEqual(rejected(c, "rate_limited_client"), 1)
        # Other clients of the same origin still get through until the origin's bucket is empty.
        more = [post_reports(c, nel_report(), {"X-Forwarded-For": f"192.0.2.{i}"})[0] for i in (10, 11, 12)]
        self.assertEqual(more, [204, 204, 429])
        self.assertEqual(rejected(c, "rate_limited_origin"), 1)
        self.assertEqual(c.request("GET", "/healthz")[0], 200)


class QueueFull(unittest.TestCase):
    def test_a_full_store_queue_answers_503_and_nothing_queued_is_lost(self):
        c = start_collector(self, store={"sqlite": os.path.join(temp_dir(self), "c.db"), "queue_records": 5},
                            limits={"per_ip": {"rate": 1000, "burst": 1000}})
        c.db = c.config["store"]["sqlite"]
        self.assertEqual(post_reports(c, nel_report())[0], 204)
        wait_for(lambda: len(c.query("SELECT id FROM browser_reports")) == 1, 5, what="first commit")
        # Another writer holds the database: the collector's writer cannot commit.
        lock = sqlite3.connect(c.db, timeout=10, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            statuses = [post_reports(c, nel_report()) for _ in range(10)]
            codes = [s[0] for s in statuses]
            self.assertIn(503, codes)
            accepted = codes.count(204)
            self.assertLessEqual(accepted, 6)
            first_503 = statuses[codes.index(503)]
            self.assertEqual(first_503[1]["retry-after"], "1")
            self.assertEqual(c.request("GET", "/readyz")[0], 503)
            self.assertEqual(c.request("GET", "/healthz")[0], 200)
            time.sleep(0.5)  # longer than SQLite's busy timeout: the writer's attempts fail
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        wait_for(lambda: len(c.query("SELECT id FROM browser_reports")) == 1 + accepted, 10,
                 what="the queued reports to be committed")
        self.assertEqual(rejected(c, "queue_full"), codes.count(503))
        self.assertGreater(c.metric("vantage_collector_store_write_errors_total"), 0)
        self.assertEqual(post_reports(c, nel_report())[0], 204)


def probe_results(n, probe_id="it-probe-1"):
    """Result lines produced by the real probe (one --once run against a closed port), given
    fresh ids so the test controls uniqueness."""
    d = temp_dir_path()
    config = write_config({"vantage_point": {"id": probe_id, "region": "lab", "asn": 64500},
                           "checks": [{"id": "refused", "kind": "http",
                                       "url": f"http://127.0.0.1:{free_port()}/"}]}, d)
    out = os.path.join(d, "out.jsonl")
    import subprocess
    subprocess.run([PROBE, "--config", config, "--once", "--output", out, "--log-level", "off"], timeout=60)
    with open(out) as f:
        template = json.loads(f.readline())
    lines = []
    for _ in range(n):
        template["id"] = str(uuid.uuid4())
        lines.append(json.dumps(template))
    return lines


def temp_dir_path():
    import tempfile
    return tempfile.mkdtemp(prefix="vantage-collector-it-")


class ProbeUploads(unittest.TestCase):
    def setUp(self):
        d = temp_dir(self)
        with open(os.path.join(d, "token"), "w") as f:
            f.write("token-for-it-probe-1\n")
        self.c = start_collector(self, probes=[{"id": "it-probe-1", "token_file": os.path.join(d, "token")}])

    def upload(self, lines, token="token-for-it-probe-1"):
        headers = {"Content-Type": "application/x-ndjson"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.c.request("POST", "/v1/results", "\n".join(lines) + "\n", headers)

    def test_results_are_stored_once_and_acknowledged_after_commit(self):
        lines = probe_results(3)
        status, _, body = self.upload(lines)
        self.assertEqual((status, json.loads(body)), (200, {"accepted": 3, "duplicates": 0}))
        status, _, body = self.upload(lines[1:] + probe_results(1))
        self.assertEqual((status, json.loads(body)), (200, {"accepted": 1, "duplicates": 2}))
        rows = self.c.query("SELECT * FROM probe_results")
        self.assertEqual(len(rows), 4)
        r = rows[0]
        self.assertEqual((r["kind"], r["probe_id"], r["check_name"], r["check_kind"], r["outcome"], r["asn"]),
                         ("check_result", "it-probe-1", "refused", "http", "tcp.refused", 64500))
        self.assertEqual(json.loads(r["record"])["id"], r["result_id"])
        self.assertEqual(self.c.metric('vantage_collector_dropped_reports_total{reason="duplicate_result"}'), 2)

    def test_missing_wrong_and_mismatched_tokens_are_refused(self):
        lines = probe_results(1)
        self.assertEqual(self.upload(lines, token=None)[0], 401)
        self.assertEqual(self.upload(lines, token="nope")[0], 403)
        other = probe_results(1, probe_id="someone-else")
        status, _, body = self.upload(other)
        self.assertEqual(status, 403)
        self.assertIn("the result names \"someone-else\"", json.loads(body)["error"])
        status, _, body = self.upload(["{\"kind\": \"check_result\"}"])
        self.assertEqual(status, 400)
        self.assertIn("line 1", json.loads(body)["error"])
        self.assertEqual(self.c.query("SELECT count(*) AS n FROM probe_results")[0]["n"], 0)


class Durability(unittest.TestCase):
    def test_sigkill_during_a_stream_of_probe_uploads_loses_no_acknowledged_result(self):
        d = temp_dir(self)
        token = os.path.join(d, "token")
        with open(token, "w") as f:
            f.write("durability-token\n")
        c = Collector(d, probes=[{"id": "it-durable", "token_file": token}]).start()
        self.addCleanup(c.stop)
        produced = os.path.join(d, "produced.jsonl")
        closed = free_port()
        config = write_config({
            "vantage_point": {"id": "it-durable", "region": "lab"},
            "collector": {"url": f"http://127.0.0.1:{c.port}/v1/results", "token_file": token,
                          "spool_dir": os.path.join(d, "spool"), "flush_interval": "50ms",
                          "batch_max_results": 20, "backoff": {"initial": "100ms", "max": "300ms"}},
            "scheduler": {"shutdown_grace": "3s"},
            "defaults": {"interval": "100ms", "timeout": "80ms"},
            "checks": [{"id": f"refused-{i}", "kind": "http", "url": f"http://127.0.0.1:{closed}/{i}"}
                       for i in range(10)],
        }, d)
        probe = Probe(config, output=produced, log=os.path.join(d, "probe.log"))
        try:
            wait_for(lambda: c.query("SELECT count(*) AS n FROM probe_results")[0]["n"] >= 100, 20,
                     what="a stream of results")
            # Acknowledged so far: everything committed is what the probe was told is stored.
            c.stop(sig=9)  # SIGKILL mid-stream
            committed_before = {r["result_id"] for r in c.query("SELECT result_id FROM probe_results")}
            time.sleep(1.0)  # uploads fail meanwhile: the probe spools
            c.start()
            wait_for(lambda: c.query("SELECT count(*) AS n FROM probe_results")[0]["n"] >= len(committed_before) + 100,
                     20, what="the stream to resume")
        finally:
            self.assertEqual(probe.stop(), 0)
        with open(produced) as f:
            produced_ids = [json.loads(l)["id"] for l in f if l.strip()]
        stored = [r["result_id"] for r in c.query("SELECT result_id FROM probe_results")]
        self.assertTrue(committed_before <= set(stored), "every result committed before the kill survives")
        self.assertEqual(len(stored), len(set(stored)))
        self.assertEqual(sorted(stored), sorted(produced_ids), "every produced result stored exactly once")


if __name__ == "__main__":
    unittest.main()
