"""`vantage-collector headers --format nginx|apache` against the real servers: each snippet,
included verbatim, passes the server's own syntax check (`nginx -t`, `apache2 -t`), and the
running server sends exactly the header values of the raw format on 200 and 404 responses
(`always`), a percent-encoded collector path included (Apache's `%%`). nginx's add_header
inheritance is shown for real: a location with its own add_header sends none of the snippet's
headers unless it includes the snippet too. End to end: a page served
by nginx configured only with the nginx snippet (and the collector configured with the snippet's
allowed_origins hint) makes real headless Chromium deliver a CSP violation and NEL network errors
to the collector. Caddy is not in Debian 12, so its snippet is checked by the unit tests only."""
import json
import os
import shutil
import signal
import sqlite3
import ssl
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

from harness import free_port, wait_for
from test_collector_chromium import CHROMIUM, COLLECTOR, MMDB, make_certificates

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
APACHE = "/usr/sbin/apache2"
APACHE_MODULES = "/usr/lib/apache2/modules"
SNIPPET_HEADERS = ("Reporting-Endpoints", "Report-To", "NEL", "Content-Security-Policy-Report-Only")


def headers_output(fmt, site, collector):
    return subprocess.run([COLLECTOR, "headers", "--format", fmt, "--site", site,
                           "--collector", collector], check=True, capture_output=True,
                          text=True, timeout=30).stdout


def expected_values(site, collector):
    """The header values of the raw format, with the CSP the server formats default to."""
    out = subprocess.run([COLLECTOR, "headers", "--site", site, "--collector", collector,
                          "--csp", "default-src 'self'"], check=True, capture_output=True,
                         text=True, timeout=30).stdout
    values = {}
    for line in out.splitlines():
        name, _, value = line.partition(": ")
        if name in SNIPPET_HEADERS:
            values[name] = value
    assert set(values) == set(SNIPPET_HEADERS), out
    return values


def allowed_origins_hint(snippet):
    for line in snippet.splitlines():
        if line.startswith("#     allowed_origins: "):
            return json.loads(line.split(": ", 1)[1])
    raise AssertionError(f"no allowed_origins hint in:\n{snippet}")


def fetch(url, context=None):
    """(status, headers) of a GET; error statuses are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as r:
            return r.status, r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.headers


def checked(cmd, what):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"{what} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout + r.stderr


def readable_by_workers(directory):
    # nginx workers and Apache children drop to nobody when started as root.
    if os.geteuid() == 0:
        subprocess.run(["chmod", "-R", "a+rX", directory], check=True)


class Server:
    """A server process in the foreground (its own process group), stopped at cleanup."""

    def __init__(self, cmd, log, ready):
        self.log = log
        with open(log, "a") as f:
            self.proc = subprocess.Popen(cmd, stdout=f, stderr=f, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        wait_for(lambda: self.proc.poll() is not None or ready(), 10, what=f"{cmd[0]} to answer")
        if self.proc.poll() is not None:
            raise AssertionError(f"{cmd[0]} exited {self.proc.returncode}:\n{self.read_log()}")

    def read_log(self):
        with open(self.log) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def answers(url, context=None):
    def probe():
        try:
            fetch(url, context)
            return True
        except OSError:
            return False
    return probe


def nginx_conf(d, servers):
    tmp = os.path.join(d, "nginx-tmp")
    os.makedirs(tmp, exist_ok=True)
    return f"""worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp};
    proxy_temp_path {tmp};
    fastcgi_temp_path {tmp};
    uwsgi_temp_path {tmp};
    scgi_temp_path {tmp};
    default_type text/html;
{servers}
}}
"""


def start_nginx(test, d, conf_text):
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    readable_by_workers(d)
    base = [NGINX, "-c", conf, "-p", d, "-e", os.path.join(d, "nginx-error.log")]
    test.nginx_check = checked(base + ["-t"], "nginx -t")
    return base + ["-g", "daemon off;"]


class ServerSnippetTest(unittest.TestCase):
    site = "https://shop.example.com"
    collector = "https://collector.example.com/_v"

    @classmethod
    def setUpClass(cls):
        # Fail, not skip: scripts/install-deps installs nginx and apache2-bin.
        for path in (COLLECTOR, NGINX, APACHE):
            if not os.path.exists(path):
                raise AssertionError(f"{path} is missing: build, or run scripts/install-deps")
        cls.expected = expected_values(cls.site, cls.collector)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vantage-site-headers-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        www = os.path.join(self.dir, "www")
        os.makedirs(os.path.join(www, "own"))
        os.makedirs(os.path.join(www, "forgot"))
        for page in ("index.html", "own/index.html", "forgot/index.html"):
            with open(os.path.join(www, page), "w") as f:
                f.write("<!doctype html><title>ok</title>\n")

    def assert_snippet_headers(self, headers, where, expected=None):
        for name, value in (expected or self.expected).items():
            self.assertEqual([value], headers.get_all(name) or [], f"{where}: {name}")

    def test_nginx_snippet_passes_nginx_t_and_is_sent_on_200_and_404(self):
        snippet = os.path.join(self.dir, "vantage-headers.conf")
        with open(snippet, "w") as f:
            f.write(headers_output("nginx", self.site, self.collector))
        port = free_port()
        servers = f"""    server {{
        listen 127.0.0.1:{port};
        root {self.dir}/www;
        include {snippet};
        location /own/ {{
            add_header Cache-Control no-store always;
            include {snippet};
        }}
        location /forgot/ {{
            add_header Cache-Control no-store always;
        }}
    }}"""
        cmd = start_nginx(self, self.dir, nginx_conf(self.dir, servers))
        self.assertIn("syntax is ok", self.nginx_check)
        self.assertNotIn("[warn]", self.nginx_check)
        server = Server(cmd, os.path.join(self.dir, "nginx.out"),
                        answers(f"http://127.0.0.1:{port}/"))
        self.addCleanup(server.stop)
        base = f"http://127.0.0.1:{port}"
        for path, status in (("/", 200), ("/nope.png", 404), ("/own/", 200), ("/own/nope", 404)):
            code, headers = fetch(base + path)
            self.assertEqual(status, code, path)
            self.assert_snippet_headers(headers, path)
        # The caveat the snippet's comment warns about: a location with an add_header of its own
        # inherits none of the server block's, so without the include it sends no NEL.
        code, headers = fetch(base + "/forgot/")
        self.assertEqual((200, "no-store"), (code, headers.get("Cache-Control")))
        for name in SNIPPET_HEADERS:
            self.assertIsNone(headers.get(name), name)

    def test_apache_snippet_passes_apache2_t_and_is_sent_on_200_and_404(self):
        # A percent-encoded collector path: mod_headers would read "%3" as a format specifier
        # had the snippet not doubled it.
        collector = "https://collector.example.com/v%31"
        text = headers_output("apache", self.site, collector)
        self.assertIn("https://collector.example.com/v%%31/reports/nel", text)
        expected = expected_values(self.site, collector)
        snippet = os.path.join(self.dir, "vantage-headers.conf")
        with open(snippet, "w") as f:
            f.write(text)
        port = free_port()
        run_dir = os.path.join(self.dir, "run")
        os.makedirs(run_dir)
        user = "User nobody\nGroup nogroup\n" if os.geteuid() == 0 else ""
        conf = os.path.join(self.dir, "apache2.conf")
        with open(conf, "w") as f:
            f.write(f"""ServerRoot {self.dir}
DefaultRuntimeDir {run_dir}
PidFile {run_dir}/apache2.pid
Listen 127.0.0.1:{port}
ServerName 127.0.0.1
LoadModule mpm_event_module {APACHE_MODULES}/mod_mpm_event.so
LoadModule authz_core_module {APACHE_MODULES}/mod_authz_core.so
LoadModule headers_module {APACHE_MODULES}/mod_headers.so
{user}ErrorLog {self.dir}/apache2-error.log
LogLevel warn
DocumentRoot {self.dir}/www
<Directory {self.dir}/www>
    Require all granted
</Directory>
Include {snippet}
""")
        readable_by_workers(self.dir)
        check = checked([APACHE, "-f", conf, "-t"], "apache2 -t")
        self.assertIn("Syntax OK", check)
        server = Server([APACHE, "-f", conf, "-DFOREGROUND"], os.path.join(self.dir, "apache2.out"),
                        answers(f"http://127.0.0.1:{port}/"))
        self.addCleanup(server.stop)
        for path, status in (("/index.html", 200), ("/nope.png", 404)):
            code, headers = fetch(f"http://127.0.0.1:{port}{path}")
            self.assertEqual(status, code, path)
            self.assert_snippet_headers(headers, path, expected)


class ChromiumThroughNginxTest(unittest.TestCase):
    """The issue's acceptance test: nginx with only the nginx snippet, real Chromium, reports
    stored by the collector."""

    @classmethod
    def setUpClass(cls):
        for path in (COLLECTOR, NGINX, CHROMIUM):
            if not os.path.exists(path):
                raise AssertionError(f"{path} is missing: build, or run scripts/install-deps")
        if not shutil.which("certutil"):
            raise AssertionError("certutil (libnss3-tools) is needed: run scripts/install-deps")
        cls.dir = tempfile.mkdtemp(prefix="vantage-site-headers-chromium-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, ignore_errors=True)
        ca, cert, key = make_certificates(cls.dir)
        cls.app_port, cls.collector_port = free_port(), free_port()
        while cls.collector_port == cls.app_port:
            cls.collector_port = free_port()
        cls.site = f"https://app.test:{cls.app_port}"
        collector_url = f"https://collector.test:{cls.collector_port}"
        cls.snippet_text = headers_output("nginx", cls.site, collector_url)

        # The collector, its allowed_origins taken from the snippet's hint.
        cls.db = os.path.join(cls.dir, "collector.db")
        config = {
            "listen": f"127.0.0.1:{cls.collector_port}",
            "tls": {"cert_file": cert, "key_file": key},
            "allowed_origins": allowed_origins_hint(cls.snippet_text),
            "store": {"sqlite": cls.db},
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
        wait_for(lambda: cls.collector.poll() is not None or "collector.listening" in cls.read(cls.collector_log),
                 10, what="the collector to listen")
        if cls.collector.poll() is not None:
            raise AssertionError(f"the collector exited: {cls.read(cls.collector_log)}")

        # nginx: TLS, a static tree, and the snippet included verbatim — nothing else sets a header.
        snippet = os.path.join(cls.dir, "vantage-headers.conf")
        with open(snippet, "w") as f:
            f.write(cls.snippet_text)
        www = os.path.join(cls.dir, "www")
        os.makedirs(www)
        # Under the snippet's report-only `default-src 'self'`: an inline script and an image
        # from another origin are violations (reported, not blocked); /missing.png is a 404
        # (NEL http.error) and nx.app.test does not resolve (NEL dns.name_not_resolved, reported
        # through app.test's policy: include_subdomains).
        with open(os.path.join(www, "page.html"), "w") as f:
            f.write(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>nginx snippet</title></head><body>
<h1>served by nginx</h1>
<img src="/missing.png" alt="">
<img src="https://nx.app.test:{cls.app_port}/x.png" alt="">
<script>document.title = "loaded";</script>
</body></html>
""")
        servers = f"""    server {{
        listen 127.0.0.1:{cls.app_port} ssl;
        server_name app.test;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {www};
        include {snippet};
    }}"""
        cmd = start_nginx(cls, cls.dir, nginx_conf(cls.dir, servers))
        context = ssl.create_default_context(cafile=ca)
        context.check_hostname = False
        cls.nginx = Server(cmd, os.path.join(cls.dir, "nginx.out"),
                           answers(f"https://127.0.0.1:{cls.app_port}/page.html", context))
        cls.addClassCleanup(cls.nginx.stop)

        # Chromium with a fresh HOME whose NSS database trusts the CA (as test_collector_chromium).
        home = os.path.join(cls.dir, "home")
        nssdb = os.path.join(home, ".pki", "nssdb")
        os.makedirs(nssdb)
        checked(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], "certutil -N")
        checked(["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "test-ca", "-i", ca],
                "certutil -A")
        blog = open(os.path.join(cls.dir, "chromium.log"), "w")
        cls.addClassCleanup(blog.close)
        cls.browser = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={os.path.join(cls.dir, 'profile')}",
             "--short-reporting-delay",  # send queued reports after ~100 ms, not up to a minute
             "--host-resolver-rules=MAP nx.app.test ~NOTFOUND, MAP *.test 127.0.0.1, EXCLUDE localhost",
             f"{cls.site}/page.html"],
            stdout=blog, stderr=blog, stdin=subprocess.DEVNULL, start_new_session=True,
            env=dict(os.environ, HOME=home, TMPDIR=cls.dir))
        cls.addClassCleanup(cls.stop_browser)
        try:
            wait_for(cls.complete, 90, interval=0.5, what="the CSP and NEL reports in the store")
        except AssertionError:
            pass  # the tests name what is missing
        cls.rows = cls.query("SELECT * FROM browser_reports")
        cls.stop_browser()

    @staticmethod
    def read(path):
        with open(path) as f:
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
        if cls.browser.poll() is None:
            try:
                os.killpg(cls.browser.pid, signal.SIGTERM)
                cls.browser.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                return
        try:
            os.killpg(cls.browser.pid, signal.SIGKILL)  # helpers left in the group
        except ProcessLookupError:
            pass
        cls.browser.wait()

    @classmethod
    def query(cls, sql):
        if not os.path.exists(cls.db):
            return []
        con = sqlite3.connect(f"file:{cls.db}?mode=ro", uri=True, timeout=5)
        try:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(sql)]
        except sqlite3.OperationalError:
            return []  # no schema yet
        finally:
            con.close()

    @classmethod
    def complete(cls):
        rows = cls.query("SELECT type, nel_type FROM browser_reports")
        nel = {r["nel_type"] for r in rows if r["type"] == "network-error"}
        return (any(r["type"] == "csp-violation" for r in rows)
                and {"http.error", "dns.name_not_resolved"} <= nel)

    def describe(self):
        return "\n".join(f"{r['kind']} {r['type']} {r['endpoint']} {r['nel_type']} {r['url']}"
                         for r in self.rows) or "(no rows)"

    def test_csp_violation_reported_through_reporting_endpoints(self):
        csp = [r for r in self.rows if r["type"] == "csp-violation"]
        self.assertTrue(csp, self.describe())
        self.assertEqual({"reports/csp"}, {r["endpoint"] for r in csp})
        bodies = [json.loads(r["body"]) for r in csp]
        self.assertEqual({"report"}, {b.get("disposition") for b in bodies})  # report-only
        self.assertEqual({f"{self.site}/page.html"}, {r["url"] for r in csp})
        self.assertTrue({"script-src-elem", "img-src"} & {b.get("effectiveDirective") for b in bodies},
                        bodies)

    def test_nel_network_errors_reported_through_report_to(self):
        nel = [r for r in self.rows if r["type"] == "network-error"]
        self.assertLessEqual({"http.error", "dns.name_not_resolved"}, {r["nel_type"] for r in nel},
                             self.describe())
        self.assertEqual({"reports/nel"}, {r["endpoint"] for r in nel})
        # The browser's own /favicon.ico 404 is reported too.
        http = {r["url"]: r for r in nel if r["nel_type"] == "http.error"}
        self.assertIn(f"{self.site}/missing.png", http, self.describe())
        self.assertEqual(404, http[f"{self.site}/missing.png"]["status_code"])
        self.assertEqual("application", http[f"{self.site}/missing.png"]["nel_phase"])
        dns = [r for r in nel if r["nel_type"] == "dns.name_not_resolved"]
        self.assertEqual({f"https://nx.app.test:{self.app_port}/x.png"}, {r["url"] for r in dns})
        self.assertEqual({"dns"}, {r["nel_phase"] for r in dns})

    def test_page_headers_came_from_the_snippet_alone(self):
        conf = self.read(os.path.join(self.dir, "nginx.conf"))
        self.assertEqual(1, conf.count("include "), conf)
        self.assertNotIn("add_header", conf)
        self.assertIn("add_header NEL '", self.snippet_text)


if __name__ == "__main__":
    unittest.main()
