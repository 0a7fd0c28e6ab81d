"""vantage-collector against a real browser: headless Chromium loads a test page over HTTPS (a
throw-away CA trusted in a private NSS database) whose headers come from `vantage-collector
headers`; the Reporting API (csp-violation, deprecation, permissions-policy-violation), NEL
(ok, http.error, dns.name_not_resolved, tcp.refused), the legacy CSP report-uri and the agent
served at /beacon.js (JS error, fetch 404) all arrive in the collector's SQLite store, cross-origin
(so every upload passed a CORS preflight), enriched with the client's /24 prefix and the browser
family, and without the page URL's query string."""
import json
import os
import shutil
import signal
import sqlite3
import ssl
import subprocess
import tempfile
import threading
import unittest
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import BUILD_DIR, free_port, wait_for

COLLECTOR = os.path.join(BUILD_DIR, "beacon-collector", "vantage-collector")
CHROMIUM = "/usr/bin/chromium"
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
MMDB = os.path.join(ROOT, "tests", "data", "mmdb")
NONCE = "n0nce4vantage"
SECRET_QUERY = "secret=1"

# The page under test: CSP enforced (report-to) plus a report-only policy with report-uri only
# (Chromium ignores report-uri in a policy that also has report-to), the agent, a blocked image,
# an inline style, a sync XHR (deprecation), geolocation under `geolocation=()`, a JS error and
# a fetch 404. The NEL fetches run in an iframe without CSP: a connect-src would block them
# before DNS.
MAIN_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>vantage test page</title>
{agent}
</head><body>
<h1>vantage</h1>
<img src="/blocked.png" alt="">
<style>h1 {{ color: red }}</style>
<iframe src="/nel.html"></iframe>
<script nonce="{nonce}">
window.addEventListener("load", function () {{
  setTimeout(function () {{ throw new Error("boom from the test page"); }}, 100);
  fetch("/missing.json?{secret}").catch(function () {{}});
  var x = new XMLHttpRequest();
  x.open("GET", "/ok.txt", false);
  x.send();
  navigator.geolocation.getCurrentPosition(function () {{}}, function () {{}});
}});
</script>
</body></html>
"""

NEL_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>nel</title></head><body>
<script>
(async function () {{
  async function get(url) {{ try {{ await fetch(url, {{mode: "no-cors", cache: "no-store"}}); }} catch (e) {{}} }}
  await get("https://nx.app.test:{app_port}/x");
  await get("https://svc.test:{svc_port}/set-policy");
  await fetch("/stop-svc", {{cache: "no-store"}});
  await get("https://svc.test:{svc_port}/after-stop");
  document.title = "done";
}})();
</script>
</body></html>
"""

EXPECTED_REPORT_TYPES = {"csp-violation", "deprecation", "permissions-policy-violation"}
EXPECTED_NEL_TYPES = {"ok", "http.error", "dns.name_not_resolved", "tcp.refused"}


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60, **kw)


def make_certificates(directory):
    """A throw-away CA and one leaf for every test host; returns (ca, leaf cert, leaf key)."""
    ca_key, ca = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.pem")
    key, csr, cert = (os.path.join(directory, n) for n in ("leaf.key", "leaf.csr", "leaf.pem"))
    ext = os.path.join(directory, "leaf.ext")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run(["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=Vantage Chromium test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    run(["openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=app.test"])
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:app.test,DNS:*.app.test,DNS:collector.test,DNS:svc.test\n")
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", ext])
    return ca, cert, key


def header_lines(site, collector):
    """`vantage-collector headers` output: ({header name: value}, CSP suffix, agent tag)."""
    out = run([COLLECTOR, "headers", "--site", site, "--collector", collector,
               "--nel-success-fraction", "1", "--nel-failure-fraction", "1"]).stdout
    headers, csp_suffix, agent = {}, None, None
    for line in out.splitlines():
        if line.startswith("<script"):
            agent = line
        elif line.startswith("Content-Security-Policy: <your policy>"):
            csp_suffix = line.split("<your policy>", 1)[1]
        elif not line.startswith("#") and ": " in line and not line.startswith("allowed_origins"):
            name, value = line.split(": ", 1)
            headers[name] = value
    return headers, csp_suffix, agent


class TlsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port, handler, context):
        super().__init__(("127.0.0.1", port), handler)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()
        self.stopped = False

    def handle_error(self, request, client_address):
        pass  # TLS handshakes Chromium abandons are not test failures

    def stop(self):
        if not self.stopped:
            self.stopped = True
            self.shutdown()
            self.server_close()


def make_handler(routes):
    """A quiet HTTP/1.0 handler (one request per connection) answering from `routes`:
    path -> (status, {header: value}, body); unknown paths get routes[None]."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            status, headers, body = routes.get(path, routes[None])
            if callable(body):
                body = body()
            data = body.encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

    return Handler


class CollectorChromiumTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Fail, not skip: scripts/install-deps installs both, so a missing one is a broken set-up.
        if not os.path.exists(COLLECTOR):
            raise AssertionError(f"{COLLECTOR} not built")
        if not os.path.exists(CHROMIUM) or not shutil.which("certutil"):
            raise AssertionError("chromium and certutil (libnss3-tools) are needed: run scripts/install-deps")
        cls.dir = tempfile.mkdtemp(prefix="vantage-chromium-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, ignore_errors=True)
        ca, cert, key = make_certificates(cls.dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)

        cls.app_port, cls.collector_port, cls.svc_port = free_port(), free_port(), free_port()
        while len({cls.app_port, cls.collector_port, cls.svc_port}) < 3:
            cls.svc_port = free_port()
        cls.site = f"https://app.test:{cls.app_port}"
        cls.collector_url = f"https://collector.test:{cls.collector_port}"
        svc_site = f"https://svc.test:{cls.svc_port}"

        # The collector.
        cls.db = os.path.join(cls.dir, "collector.db")
        config = {
            "listen": f"127.0.0.1:{cls.collector_port}",
            "tls": {"cert_file": cert, "key_file": key},
            "allowed_origins": ["https://*.test:*", "https://app.test:*"],
            "store": {"sqlite": cls.db},
            "paths": {"csp": ["/csp", "/csp-legacy-report-uri"]},
            "geoip": {"city_db": os.path.join(MMDB, "GeoIP2-City-Test.mmdb"),
                      "asn_db": os.path.join(MMDB, "GeoLite2-ASN-Test.mmdb")},
        }
        config_path = os.path.join(cls.dir, "collector.yaml")
        with open(config_path, "w") as f:
            json.dump(config, f)  # JSON is YAML
        cls.collector_log = os.path.join(cls.dir, "collector.log")
        log = open(cls.collector_log, "w")
        cls.addClassCleanup(log.close)
        cls.collector = subprocess.Popen([COLLECTOR, "--config", config_path],
                                         stdout=log, stderr=log)
        cls.addClassCleanup(cls.stop_collector)
        wait_for(lambda: cls.collector.poll() is not None or "collector.listening" in cls.read_log(),
                 10, what="the collector to listen")
        if cls.collector.poll() is not None:
            raise AssertionError(f"the collector exited: {cls.read_log()}")

        # Headers for the page and for svc.test, from the helper under test.
        cls.headers, csp_suffix, cls.agent_tag = header_lines(cls.site, cls.collector_url)
        svc_headers, _, _ = header_lines(svc_site, cls.collector_url)
        nel = {"Report-To": cls.headers["Report-To"], "NEL": cls.headers["NEL"]}
        csp = (f"default-src 'self'; script-src 'self' 'nonce-{NONCE}' {cls.collector_url}; "
               f"img-src 'none'; connect-src 'self' {cls.collector_url}{csp_suffix}")
        legacy_csp = f"style-src 'none'; report-uri {cls.collector_url}/csp"
        page_headers = dict(nel, **{
            "Content-Type": "text/html; charset=utf-8",
            "Reporting-Endpoints": cls.headers["Reporting-Endpoints"],
            "Content-Security-Policy": csp,
            "Content-Security-Policy-Report-Only": legacy_csp,
            "Permissions-Policy": "geolocation=()",
        })
        main_page = MAIN_PAGE.format(agent=cls.agent_tag, nonce=NONCE, secret=SECRET_QUERY)
        nel_page = NEL_PAGE.format(app_port=cls.app_port, svc_port=cls.svc_port)

        # svc.test: sets a NEL policy, then is stopped so that the next request is refused.
        svc_routes = {
            "/set-policy": (200, {"Report-To": svc_headers["Report-To"], "NEL": svc_headers["NEL"],
                                  "Content-Type": "text/plain"}, "policy set\n"),
            None: (404, {"Content-Type": "text/plain"}, "not found\n"),
        }
        cls.svc = TlsServer(cls.svc_port, make_handler(svc_routes), context)
        cls.addClassCleanup(cls.svc.stop)

        def stop_svc():
            cls.svc.stop()
            return "stopped\n"

        text = dict(nel, **{"Content-Type": "text/plain"})
        app_routes = {
            "/page.html": (200, page_headers, main_page),
            "/nel.html": (200, dict(nel, **{"Content-Type": "text/html; charset=utf-8"}), nel_page),
            "/ok.txt": (200, text, "ok\n"),
            "/stop-svc": (200, text, stop_svc),
            None: (404, text, "not found\n"),
        }
        cls.app = TlsServer(cls.app_port, make_handler(app_routes), context)
        cls.addClassCleanup(cls.app.stop)

        # Chromium with a fresh HOME whose NSS database trusts the CA.
        home = os.path.join(cls.dir, "home")
        nssdb = os.path.join(home, ".pki", "nssdb")
        os.makedirs(nssdb)
        run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"])
        run(["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "test-ca", "-i", ca])
        cls.browser_log = os.path.join(cls.dir, "chromium.log")
        blog = open(cls.browser_log, "w")
        cls.addClassCleanup(blog.close)
        cls.page_url = f"{cls.site}/page.html?{SECRET_QUERY}"
        cls.browser = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={os.path.join(cls.dir, 'profile')}",
             "--short-reporting-delay",
             "--host-resolver-rules=MAP nx.app.test ~NOTFOUND, MAP *.test 127.0.0.1, EXCLUDE localhost",
             cls.page_url],
            stdout=blog, stderr=blog, stdin=subprocess.DEVNULL, start_new_session=True,
            env=dict(os.environ, HOME=home, TMPDIR=cls.dir))  # its temporary files go with the test's
        cls.addClassCleanup(cls.stop_browser)

        # Keep the browser running until the store has everything (or the time is up: the tests
        # then name what is missing).
        try:
            wait_for(cls.complete, 60, interval=0.5, what="every expected record in the store")
        except AssertionError:
            pass
        cls.rows = cls.query("SELECT * FROM browser_reports")
        cls.stop_browser()
        # After the rows: every stored upload's request is counted by now.
        cls.metrics = urllib.request.urlopen(
            f"https://127.0.0.1:{cls.collector_port}/metrics",
            context=cls.client_context(ca), timeout=5).read().decode()

    @staticmethod
    def client_context(ca):
        ctx = ssl.create_default_context(cafile=ca)
        ctx.check_hostname = False  # the leaf names collector.test; we connect to 127.0.0.1
        return ctx

    @classmethod
    def read_log(cls):
        with open(cls.collector_log) as f:
            return f.read()

    @classmethod
    def stop_collector(cls):
        if cls.collector.poll() is None:
            cls.collector.send_signal(signal.SIGTERM)
            try:
                cls.collector.wait(timeout=20)
            except subprocess.TimeoutExpired:
                cls.collector.kill()
                cls.collector.wait()

    @classmethod
    def stop_browser(cls):
        if cls.browser.returncode is not None:
            return
        for sig, timeout in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(cls.browser.pid, sig)
            except ProcessLookupError:
                break
            try:
                cls.browser.wait(timeout=timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        # Helpers left in the group (zygote, GPU, network service) go too.
        try:
            os.killpg(cls.browser.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    @classmethod
    def query(cls, sql, args=()):
        if not os.path.exists(cls.db):
            return []
        con = sqlite3.connect(f"file:{cls.db}?mode=ro", uri=True, timeout=5)
        try:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(sql, args)]
        except sqlite3.OperationalError:
            return []  # the schema is not there yet
        finally:
            con.close()

    @classmethod
    def complete(cls):
        rows = cls.query("SELECT kind, type, endpoint, nel_type FROM browser_reports")
        types = {r["type"] for r in rows if r["kind"] == "browser_report" and r["endpoint"] != "beacon"}
        nel = {r["nel_type"] for r in rows if r["type"] == "network-error"}
        legacy = any(r["endpoint"] == "csp" for r in rows)
        rum = {r["type"] for r in rows if r["kind"] == "rum_event"}
        return (EXPECTED_REPORT_TYPES <= types and EXPECTED_NEL_TYPES <= nel and legacy
                and {"js_error", "http_error"} <= rum)

    def describe(self):
        return "\n".join(f"{r['kind']} {r['type']} {r['endpoint']} {r['nel_type']} {r['url']}"
                         for r in self.rows) or "(no rows)"

    def reports(self, **where):
        return [r for r in self.rows if all(r[k] == v for k, v in where.items())]

    # --- the tests -------------------------------------------------------------------------

    def test_reporting_api_v1_types_arrive(self):
        uploaded = [r for r in self.rows if r["kind"] == "browser_report" and r["endpoint"] != "beacon"]
        self.assertLessEqual(EXPECTED_REPORT_TYPES, {r["type"] for r in uploaded}, self.describe())
        page = f"{self.site}/page.html"
        csp = self.reports(type="csp-violation", endpoint="reports/csp")
        self.assertTrue(csp, self.describe())
        self.assertTrue(any(json.loads(r["body"]).get("effectiveDirective") == "img-src" for r in csp),
                        [r["body"] for r in csp])
        for t in ("deprecation", "permissions-policy-violation"):
            rows = self.reports(type=t, endpoint="reports/default")
            self.assertTrue(rows, f"no {t} report on reports/default:\n{self.describe()}")
            self.assertEqual({page}, {r["url"] for r in rows})
            self.assertEqual({self.site}, {r["origin"] for r in rows})
        policy = self.reports(type="permissions-policy-violation")
        self.assertIn("geolocation", {json.loads(r["body"]).get("policyId") for r in policy})

    def test_nel_reports_arrive_with_their_fields(self):
        nel = {r["nel_type"]: r for r in self.reports(type="network-error")}
        self.assertLessEqual(EXPECTED_NEL_TYPES, set(nel), self.describe())
        for r in self.reports(type="network-error"):
            self.assertEqual("reports/nel", r["endpoint"])
            self.assertEqual("GET", r["method"])
        ok = [r for r in self.reports(type="network-error", nel_type="ok")]
        self.assertIn(f"{self.site}/page.html", {r["url"] for r in ok})
        self.assertTrue(all(r["status_code"] == 200 and r["nel_phase"] == "application" for r in ok))
        self.assertTrue(all(r["weight"] == 1.0 for r in ok))  # success_fraction 1.0
        http = nel["http.error"]
        self.assertEqual(404, http["status_code"])
        self.assertEqual(f"{self.site}/missing.json", http["url"])
        self.assertEqual("application", http["nel_phase"])
        dns = nel["dns.name_not_resolved"]
        self.assertEqual("dns", dns["nel_phase"])
        self.assertEqual(f"https://nx.app.test:{self.app_port}/x", dns["url"])
        # The upload's Origin is the failing request's origin (include_subdomains).
        self.assertEqual(f"https://nx.app.test:{self.app_port}", dns["origin"])
        refused = nel["tcp.refused"]
        self.assertEqual("connection", refused["nel_phase"])
        self.assertEqual(f"https://svc.test:{self.svc_port}/after-stop", refused["url"])
        self.assertEqual(f"https://svc.test:{self.svc_port}", refused["origin"])
        self.assertEqual("127.0.0.1", refused["server_ip"])

    def test_legacy_report_uri_csp_arrives(self):
        legacy = self.reports(endpoint="csp")
        self.assertTrue(legacy, self.describe())
        self.assertEqual({"browser_report"}, {r["kind"] for r in legacy})
        self.assertEqual({"csp-violation"}, {r["type"] for r in legacy})
        bodies = [json.loads(r["body"]) for r in legacy]
        # CSP2 names are mapped to the Reporting API ones.
        self.assertIn("style-src-elem", {b.get("effectiveDirective") for b in bodies}, bodies)
        self.assertIn("report", {b.get("disposition") for b in bodies})
        self.assertFalse(any("document-uri" in b for b in bodies))
        self.assertEqual({f"{self.site}/page.html"}, {r["url"] for r in legacy})

    def test_agent_beacons_arrive(self):
        rum = self.reports(kind="rum_event")
        errors = [r for r in rum if r["type"] == "js_error"]
        self.assertTrue(errors, self.describe())
        self.assertTrue(any("boom from the test page" in json.loads(r["body"]).get("message", "")
                            for r in errors), [r["body"] for r in errors])
        self.assertEqual({f"{self.site}/page.html"}, {r["url"] for r in errors})
        http = [r for r in rum if r["type"] == "http_error"]
        self.assertTrue(http, self.describe())
        self.assertEqual({404}, {r["status_code"] for r in http})
        self.assertEqual({"GET"}, {r["method"] for r in http})
        self.assertEqual({f"{self.site}/missing.json"}, {r["url"] for r in http})
        self.assertEqual({"beacon"}, {r["endpoint"] for r in rum})
        self.assertEqual({self.site}, {r["origin"] for r in rum})

    def test_every_row_is_enriched_and_anonymised(self):
        self.assertTrue(self.rows)
        for r in self.rows:
            where = f"{r['kind']} {r['type']} {r['endpoint']}"
            self.assertEqual("127.0.0.0/24", r["client_prefix"], where)
            self.assertEqual("HeadlessChrome", r["ua_family"], where)
            self.assertGreater(r["ua_major"] or 0, 0, where)
            self.assertNotIn("?", r["url"], where)
            self.assertNotIn(SECRET_QUERY, r["url"], where)
            # The raw client address is stored nowhere (only the /24 prefix). The body may name
            # the *server's* address (NEL server_ip), which is 127.0.0.1 here too.
            for column, value in r.items():
                if isinstance(value, str) and column not in ("client_prefix", "server_ip", "body"):
                    self.assertNotIn("127.0.0.1", value, f"{where}: {column}")

    def test_cross_origin_uploads_passed_preflights(self):
        # Every Reporting API / NEL upload to collector.test is cross-origin: none would have been
        # sent without a 204 preflight answer carrying CORS headers.
        self.assertTrue(self.reports(endpoint="reports/nel"))
        self.assertTrue(self.reports(endpoint="reports/default"))
        counts = {}
        for line in self.metrics.splitlines():
            if line.startswith('vantage_collector_requests_total{endpoint="reports",code="204"}'):
                counts["reports_204"] = float(line.rsplit(" ", 1)[1])
        self.assertIn("reports_204", counts, self.metrics)
        uploads = {(r["endpoint"], r["received_ns"]) for r in self.rows if r["endpoint"].startswith("reports/")}
        # One preflight and one POST per upload, both answered 204.
        self.assertGreaterEqual(counts["reports_204"], 2 * len(uploads), self.metrics)
        self.assertNotIn('code="403"', self.metrics)

    def test_headers_helper_output_used_by_the_page(self):
        self.assertEqual(
            f'default="{self.collector_url}/reports/default", '
            f'csp-endpoint="{self.collector_url}/reports/csp"', self.headers["Reporting-Endpoints"])
        self.assertEqual("nel", json.loads(self.headers["Report-To"])["group"])
        self.assertEqual(1.0, json.loads(self.headers["NEL"])["success_fraction"])
        self.assertIn(f'src="{self.collector_url}/beacon.js"', self.agent_tag)
        self.assertIn(f'data-endpoint="{self.collector_url}/beacon"', self.agent_tag)

    def test_no_query_string_is_stored_anywhere(self):
        # DESIGN.md section 10: no query strings are stored. The page was loaded with ?secret=1,
        # which reaches the collector in report URLs, NEL referrers, CSP documentURL/sourceFile
        # and the agent's JS error stack ("at https://app.test:P/page.html?secret=1:11:34").
        self.assertTrue(self.rows)
        for r in self.rows:
            for column, value in r.items():
                if isinstance(value, str):
                    self.assertNotIn(SECRET_QUERY, value,
                                     f"{r['kind']} {r['type']} {r['endpoint']}: {column} = {value[:400]}")


if __name__ == "__main__":
    unittest.main()
