"""`vantage report isp` on a seeded isp-blackhole stream: the terminal table, the JSON (the
black-holed ISP's availability drops, the others stay up), and the HTML page rendered by real
headless Chromium: no console errors, a screenshot that is not blank, and the expected ISPs in
the rendered DOM. Then its edges on a hand-made store: failure lists never cut inside a type,
tls/tcp checks and failed runs named by their check, percentiles of passed runs only, HTTP
status codes of probes, users without GeoIP as "unknown network", silences as gaps."""
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import tempfile
import unittest
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_DIR = os.environ.get("VANTAGE_BUILD_DIR", os.path.join(HERE, "..", "..", "build", "dev"))
VANTAGE = os.path.join(BUILD_DIR, "analysis", "vantage")
CHROMIUM = "/usr/bin/chromium"
ISPS = {64501: "Example Fiber", 64502: "Example Cable", 64503: "Example Mobile", 64504: "Example DSL",
        64505: "Example Telecom"}


def png_pixels(path):
    """Decodes an 8-bit RGB(A) PNG (what Chromium writes) into (width, height, rows of bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack("!I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack("!IIBB", chunk[:10])
            assert depth == 8, depth
            channels = {2: 3, 6: 4}[color]
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


class IspReport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="vantage-report-")
        cls.db = os.path.join(cls.dir, "store.db")
        subprocess.run([VANTAGE, "generate", "--db", cls.db, "--scenario", "isp-blackhole", "--seed", "7"],
                       check=True, capture_output=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def report(self, *args):
        p = subprocess.run([VANTAGE, "report", "isp", "--db", self.db, *args], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_json_shows_the_blackholed_isp_down_and_the_others_up(self):
        r = json.loads(self.report("--format", "json"))
        by_asn = {i["asn"]: i for i in r["isps"]}
        self.assertEqual({a: i["isp"] for a, i in by_asn.items()}, ISPS)
        for asn, isp in by_asn.items():
            if asn == 64502:
                self.assertLess(isp["availability"], 0.9)
                self.assertLess(isp["browser_availability"], 0.9)
                self.assertEqual(max(isp["failure_types"], key=isp["failure_types"].get), "tcp.timed_out")
                self.assertEqual(len(isp["incidents"]), 1)
                self.assertTrue(isp["incidents"][0].startswith("reachability_loss asn=64502"))
            else:
                self.assertGreater(isp["browser_availability"], 0.99, asn)
                if isp["vantage_points"]:
                    self.assertGreater(isp["availability"], 0.99, asn)
                else:
                    self.assertIsNone(isp["availability"], asn)  # no probe there: not 100 %
                self.assertEqual(isp["incidents"], [], asn)
        # Latency percentiles per target are of the runs that passed: the black-holed ISP's
        # timeouts lower its availability, not its p95 (which would be the connect timeout).
        home = by_asn[64502]["targets"]["https://shop.example.com/"]
        self.assertLess(home["ok"], home["runs"] * 0.9)
        self.assertLess(home["p95_ms"], 1000)
        self.assertLess(by_asn[64501]["targets"]["https://shop.example.com/"]["p95_ms"], 1000)
        self.assertEqual((home["check"], home["kind"]), ("shop-home", "http"))
        # The series dips only for AS64502.
        dips = [p for p in by_asn[64502]["series"] if p["runs"] and p["ok"] / p["runs"] < 0.5]
        self.assertGreater(len(dips), 3)
        self.assertFalse([p for p in by_asn[64501]["series"] if p["runs"] and p["ok"] / p["runs"] < 0.5])

    def test_terminal_table_names_every_isp(self):
        text = self.report()
        for asn, name in ISPS.items():
            self.assertRegex(text, rf"AS{asn}\s+{name}")
        self.assertIn("reachability_loss", text)

    def test_html_renders_in_chromium_without_console_errors(self):
        html = os.path.join(self.dir, "report.html")
        self.report("--format", "html", "-o", html)
        with open(html) as f:
            page = f.read()
        self.assertNotIn("<script", page)
        self.assertNotRegex(page, r'(src|href)="https?://')  # self-contained
        shot = os.path.join(self.dir, "report.png")
        profile = os.path.join(self.dir, "profile")
        common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]
        env = dict(os.environ, TMPDIR=self.dir)  # Chromium's temporary files go with the test's
        p = subprocess.run(common + [f"--screenshot={shot}", "--window-size=1100,1400", "file://" + html],
                           capture_output=True, text=True, timeout=120, env=env)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        console = [l for l in p.stderr.splitlines() if "CONSOLE" in l or "Uncaught" in l]
        self.assertEqual(console, [], "console messages while rendering the report")
        width, height, channels, rows = png_pixels(shot)
        self.assertEqual((width, height), (1100, 1400))
        colours = set()
        for row in rows[::20]:
            for x in range(0, width * channels, channels * 20):
                colours.add(row[x:x + 3])
        self.assertGreater(len(colours), 5, "the screenshot is blank")
        red = bytes([0xd6, 0x27, 0x28])  # the failure bars and the second ISP's line
        self.assertTrue(any(red in row for row in rows), "no chart drawn")
        dom = subprocess.run(common + ["--dump-dom", "file://" + html], capture_output=True, text=True, timeout=120,
                             env=env)
        self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
        for asn, name in ISPS.items():
            self.assertIn(f'<tr class="isp" data-asn="{asn}"><td>AS{asn}</td><td>{name}</td>', dom.stdout)
        self.assertIn('<polyline', dom.stdout)  # availability over time
        self.assertEqual(dom.stdout.count('<svg class="latency"'), 3)  # one latency chart per target
        self.assertIn('<svg class="failures"', dom.stdout)


T0 = 1_795_305_600 * 10**9  # 2026-11-22T00:00:00Z
MINUTE = 60 * 10**9
SILENCE = range(20, 40)  # minutes without any probe run
# The flaky check's failures, one per minute in turn (odd minutes), each taking 10 s.
FLAKY = ["tcp.timed_out", "tcp.refused", "tls.cert.name_invalid", "http.protocol.error",
         "tcp.reset", "tls.version_or_cipher_mismatch"]


class ReportEdges(unittest.TestCase):
    """A hand-made store: one vantage point in AS64501 running an http check that answers 403
    every other minute, a flaky API check failing in six ways (10 s each) every other minute, a
    tls check that always fails (its target is an address) and a tcp check failing at DNS (no
    address at all); silent for minutes 20-39. Users without GeoIP (no ASN) and with."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="vantage-report-edges-")
        cls.db = os.path.join(cls.dir, "store.db")
        # The collector's schema, written by its own store code, then emptied.
        subprocess.run([VANTAGE, "generate", "--db", cls.db, "--scenario", "baseline", "--hours", "2",
                        "--users-per-minute", "1"], check=True, capture_output=True)
        con = sqlite3.connect(cls.db)
        con.execute("DELETE FROM probe_results")
        con.execute("DELETE FROM browser_reports")
        con.execute("DELETE FROM heartbeats")  # the generator's vantage points send them too
        con.execute("DELETE FROM vantage_points")
        cls.expected_403 = 0
        for m in range(60):
            if m in SILENCE:
                continue
            t = T0 + m * MINUTE
            odd = m % 2 == 1
            cls.expected_403 += odd
            flaky = FLAKY[(m // 2) % len(FLAKY)] if odd else "ok"
            for check, kind, url, ip, outcome, status, ms in [
                    ("shop-home", "http", "https://shop.example.com/", "203.0.113.10",
                     "http.error" if odd else "ok", 403 if odd else 200, 40 if odd else 100),
                    ("flaky-api", "http", "https://shop.example.com/api/products", "203.0.113.10",
                     flaky, None, 10000 if odd else 200),
                    ("expired-cert", "tls", None, "192.0.2.10", "tls.cert.date_invalid", None, 5),
                    ("closed-port", "tcp", None, None, "dns.name_not_resolved", None, 2)]:
                record = {"kind": "check_result", "check": check, "check_kind": kind,
                          "target": {"host": "expired.example.com"} if kind == "tls" else {},
                          "vantage": {"probe_id": "edge-1", "asn": 64501, "isp": "Example Fiber",
                                      "country": "DE", "source": "probe"}}
                con.execute("INSERT INTO probe_results (result_id, kind, time_ns, received_ns, probe_id, region, "
                            "asn, check_name, check_kind, target_url, server_ip, outcome, status_code, total_ms, "
                            "record) VALUES (?, 'check_result', ?, ?, 'edge-1', 'eu-west', 64501, ?, ?, ?, ?, ?, "
                            "?, ?, ?)",
                            (f"{check}-{m}", t, t, check, kind, url, ip, outcome, status, ms, json.dumps(record)))
            for asn, isp, nel in [(None, None, "tcp.timed_out" if odd else "ok"), (64502, "Example Cable", "ok"),
                                  (64503, "Telefónica Móviles España", "ok")]:
                con.execute("INSERT INTO browser_reports (received_ns, event_ns, kind, type, endpoint, url, origin, "
                            "nel_type, status_code, weight, client_prefix, asn, isp, body, url_template) VALUES "
                            "(?, ?, 'browser_report', 'network-error', 'reports/nel', ?, "
                            "'https://shop.example.com', ?, ?, 1, '198.51.100.0/24', ?, ?, '{}', NULL)",
                            (t, t, f"https://shop.example.com/api/cart/{m}/total", nel, 200 if nel == "ok" else 0,
                             asn, isp))
        con.commit()
        con.close()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def report(self, *args):
        p = subprocess.run([VANTAGE, "report", "isp", "--db", self.db, *args], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_checks_without_a_url_are_named_by_their_check_and_percentiles_count_passed_runs(self):
        r = json.loads(self.report("--format", "json"))
        fiber = {i["asn"]: i for i in r["isps"]}[64501]
        targets = fiber["targets"]
        self.assertEqual(set(targets), {"https://shop.example.com/", "https://shop.example.com/api/products",
                                        "expired-cert (tls expired.example.com)", "closed-port (tcp)"})
        tls = targets["expired-cert (tls expired.example.com)"]  # not its address, 192.0.2.10
        self.assertEqual((tls["check"], tls["kind"]), ("expired-cert", "tls"))
        # Nothing passed: no percentile rather than the failures' durations.
        for name in ("expired-cert (tls expired.example.com)", "closed-port (tcp)"):
            self.assertEqual(targets[name]["ok"], 0)
            self.assertIsNone(targets[name]["p50_ms"])
            self.assertIsNone(targets[name]["p95_ms"])
        # Half the flaky API's runs took 10 s and failed; the passed ones took 200 ms.
        flaky = targets["https://shop.example.com/api/products"]
        self.assertEqual(flaky["ok"] * 2, flaky["runs"])
        self.assertLess(flaky["p95_ms"], 220)
        self.assertGreater(flaky["p50_ms"], 180)
        # Probes' HTTP errors carry their status code, as browsers' do.
        self.assertEqual(fiber["failure_types"]["http.error 403"], self.expected_403)
        self.assertNotIn("http.error", fiber["failure_types"])
        self.assertEqual(targets["https://shop.example.com/"]["failure_types"], {"http.error 403": self.expected_403})

        text = self.report()
        self.assertNotIn("192.0.2.10", text)
        latency = text.split("Latency per ISP and target")[1].split("\n\nIncidents")[0]
        self.assertIn("p50/p95 of the runs that passed", latency)
        rows = [l for l in latency.splitlines()[1:] if l.strip()]
        self.assertTrue(all(re.match(r"\s+(AS\d+|-)\s+\S", l) for l in rows), rows)  # no blank target
        self.assertRegex(latency, r"AS64501\s+expired-cert \(tls expired\.example\.com\)\s+runs\s+40\s+ok\s+0\.00%\s+p50\s+-\s+p95\s+-"
                                  r"\s+tls\.cert\.date_invalid ×40\n")
        self.assertRegex(latency, r"AS64501\s+https://shop\.example\.com/\s+runs\s+40\s+ok\s+50\.00%.*"
                                  rf"\s+http\.error 403 ×{self.expected_403}\n")

    def test_failure_lists_end_in_more_instead_of_cutting_a_type(self):
        text = self.report()
        line = next(l for l in text.splitlines() if l.startswith("AS64501"))
        known = set(FLAKY) | {"http.error 403", "tls.cert.date_invalid", "dns.name_not_resolved"}
        entries = re.findall(r"([a-z_.]+(?: \d{3})?) ×(\d+)", line)
        self.assertGreaterEqual(len(entries), 1)
        for name, _ in entries:
            self.assertIn(name, known)
        more = re.search(r"\+(\d+) more", line)
        self.assertIsNotNone(more, line)
        self.assertEqual(len(entries) + int(more.group(1)), len(known))
        self.assertEqual(entries[0], ("dns.name_not_resolved", "40"))  # the most frequent first (ties by name)

    def test_long_isp_names_are_cut_between_characters_and_stay_aligned(self):
        text = self.report()
        line = next(l for l in text.splitlines() if l.startswith("AS64503"))
        # 18 columns of the name (the bytes of "ó" and "ñ" are not split), then the columns.
        self.assertRegex(line, r"^AS64503  Telefónica Móviles -\s+-\s+100\.00%")
        header = text.splitlines()[2]
        self.assertEqual(line.index("100.00%") + len("100.00%"), header.index("users") + len("users"))

    def test_users_without_geoip_are_an_unknown_network_not_as0(self):
        r = json.loads(self.report("--format", "json"))
        by_asn = {i["asn"]: i for i in r["isps"]}
        self.assertEqual(by_asn[0]["isp"], "unknown network")
        self.assertEqual(r["isps"][-1]["asn"], 0)  # listed after the named networks
        self.assertAlmostEqual(by_asn[0]["browser_availability"], 0.5, delta=0.05)
        text = self.report()
        self.assertNotIn("AS0 ", text)
        self.assertRegex(text, r"\n-\s+unknown network\s")
        html = os.path.join(self.dir, "edges.html")
        self.report("--format", "html", "-o", html)
        with open(html) as f:
            page = f.read()
        self.assertNotIn(">AS0<", page)
        self.assertIn("<td>–</td><td>unknown network</td>", page)

    def test_a_silence_breaks_the_availability_line(self):
        html = os.path.join(self.dir, "gaps.html")
        self.report("--format", "html", "-o", html)
        with open(html) as f:
            chart = f.read().split('<svg id="availability"')[1].split("</svg>")[0]
        # One vantage point: two lines, before and after the silence, none across it.
        lines = re.findall(r'<polyline[^>]*points="([^"]+)"', chart)
        self.assertEqual(len(lines), 2, chart)
        xs = [[float(p.split(",")[0]) for p in line.split()] for line in lines]
        self.assertEqual((len(xs[0]), len(xs[1])), (20, 20))
        self.assertLess(max(xs[0]), min(xs[1]))
        series = {i["asn"]: i for i in json.loads(self.report("--format", "json"))["isps"]}[64501]["series"]
        self.assertEqual(len(series), 40)  # silent buckets are absent, not zero


if __name__ == "__main__":
    unittest.main()
