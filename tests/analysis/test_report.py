"""`vantage report isp` on a seeded isp-blackhole stream: the terminal table, the JSON (the
black-holed ISP's availability drops, the others stay up), and the HTML page rendered by real
headless Chromium: no console errors, a screenshot that is not blank, and the expected ISPs in
the rendered DOM."""
import json
import os
import shutil
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
        # Latency percentiles per target: the black-holed ISP's p95 is the connect timeout.
        home = by_asn[64502]["targets"]["https://shop.example.com/"]
        self.assertGreater(home["p95_ms"], 9000)
        self.assertLess(by_asn[64501]["targets"]["https://shop.example.com/"]["p95_ms"], 1000)
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


if __name__ == "__main__":
    unittest.main()
