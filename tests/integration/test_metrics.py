"""The Prometheus endpoint: blackbox_exporter's metric names with the vantage labels, accepted by
`promtool check metrics` (Debian's prometheus package)."""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import unittest
import urllib.request

from collector_harness import COLLECTOR, start_collector
from harness import free_port, IntegrationTest, PROBE, Probe, wait_for, write_config


def version_of(binary, name):
    """(version, revision) from `<binary> --version`, which must print `<name> <version> (<revision>)`."""
    p = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stdout + p.stderr
    m = re.fullmatch(re.escape(name) + r" (\d+\.\d+\.\d+) \(([^()\s]+)\)\n", p.stdout)
    assert m, repr(p.stdout)
    return m.group(1), m.group(2)




class Metrics(IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = tempfile.mkdtemp(prefix="vantage-metrics-it-")
        cls.port = free_port()
        p, r = cls.ports, cls.resolver
        token = os.path.join(cls.dir, "token")
        with open(token, "w") as f:
            f.write("t\n")
        config = write_config({
            "vantage_point": {"id": "it-metrics", "region": "eu-west", "asn": 3320, "isp": "Lab"},
            "metrics": {"listen": f"127.0.0.1:{cls.port}"},
            "collector": {"url": f"http://127.0.0.1:{p['closed']}/v1/results", "token_file": token,
                          "spool_dir": os.path.join(cls.dir, "spool")},
            "defaults": {"interval": "500ms", "timeout": "400ms"},
            "checks": [
                {"id": "https-ok", "kind": "http", "url": f"https://shop.test:{p['https_valid']}/",
                 "resolvers": [r], "tls": {"ca_file": cls.ca}},
                {"id": "http-500", "kind": "http", "url": f"http://shop.test:{p['http']}/status/500", "resolvers": [r]},
                {"id": "dns-two", "kind": "dns", "name": "shop.test", "resolvers": [r, "system"]},
                {"id": "tls-ok", "kind": "tls", "host": "shop.test", "port": p["https_valid"],
                 "resolvers": [r], "tls": {"ca_file": cls.ca}},
                {"id": "tcp-refused", "kind": "tcp", "host": "127.0.0.1", "port": p["closed"]},
            ],
        }, cls.dir)
        cls.probe = Probe(config, log=os.path.join(cls.dir, "probe.log"))
        cls.text = wait_for(cls.scrape_when_complete, 20, what="every check in /metrics")

    @classmethod
    def scrape(cls):
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{cls.port}/metrics", timeout=2).read().decode()
        except OSError:
            return ""

    @classmethod
    def scrape_when_complete(cls):
        text = cls.scrape()
        ok = all(f'check="{c}"' in text for c in ("https-ok", "http-500", "dns-two", "tls-ok", "tcp-refused"))
        return text if ok and "vantage_probe_upload_errors_total" in text else ""

    @classmethod
    def tearDownClass(cls):
        cls.probe.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_promtool_accepts_the_exposition(self):
        p = subprocess.run(["promtool", "check", "metrics"], input=self.text, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_blackbox_names_and_vantage_labels(self):
        labels = 'check="https-ok",kind="http",vantage_point="it-metrics",region="eu-west",asn="3320"'
        self.assertIn(f"probe_success{{{labels}}} 1", self.text)
        self.assertIn(f'probe_http_duration_seconds{{{labels},phase="tls"}}', self.text)
        self.assertIn(f"probe_http_status_code{{{labels}}} 200", self.text)
        self.assertIn(f"probe_ssl_earliest_cert_expiry{{{labels}}}", self.text)
        self.assertIn('probe_http_status_code{check="http-500"', self.text)
        self.assertIn('probe_success{check="tcp-refused"', self.text)
        self.assertIn('type="tcp.refused"', self.text)
        self.assertIn('probe_dns_answer_rrs{check="dns-two"', self.text)
        self.assertIn('probe_tls_version_info{check="tls-ok"', self.text)

    def test_probe_health_is_exported(self):
        for name in ("vantage_probe_checks_in_flight", "vantage_probe_spool_results",
                     "vantage_probe_upload_errors_total", "vantage_probe_dropped_results_total"):
            self.assertIn(name, self.text)

    def test_build_info_has_the_version_and_revision_of_version_flag(self):
        version, revision = version_of(PROBE, "vantage-probe")
        self.assertIn(f'vantage_probe_build_info{{version="{version}",revision="{revision}"}} 1\n', self.text)

    def test_healthz(self):
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2).read()
        self.assertEqual(body, b"ok\n")



class CollectorBuildInfo(unittest.TestCase):
    def test_build_info_has_the_version_and_revision_of_version_flag(self):
        version, revision = version_of(COLLECTOR, "vantage-collector")
        c = start_collector(self)
        text = c.metrics_text()
        self.assertIn(f'vantage_collector_build_info{{version="{version}",revision="{revision}"}} 1\n', text)
        p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

if __name__ == "__main__":
    unittest.main()
