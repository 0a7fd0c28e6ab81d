"""The detectors on data made by the real vantage-probe and stored by the real vantage-collector,
with `vantage watch` notifying a real Prometheus Alertmanager (Debian's, on 127.0.0.1) and a
webhook: two vantage points (AS64501, AS64502) check the same target; the second one's route is
"black-holed" (its URL points at a port nothing listens on, so it gets tcp.refused); watch opens
one reachability_loss for AS64502, Alertmanager shows it active and notifies its receiver; the
probe is fixed, watch resolves the incident, Alertmanager's receiver gets the resolution."""
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from collector_harness import Collector  # noqa: E402
from harness import Probe, free_port, wait_for, write_config  # noqa: E402

BUILD_DIR = os.environ.get("VANTAGE_BUILD_DIR", os.path.join(HERE, "..", "..", "build", "dev"))
VANTAGE = os.path.join(BUILD_DIR, "analysis", "vantage")
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


class Recorder(http.server.BaseHTTPRequestHandler):
    """Collects POSTed JSON bodies (the webhook and Alertmanager's receiver)."""
    bodies = None

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.bodies.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def do_GET(self):  # the target the probes check
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class Pipeline(unittest.TestCase):
    def setUp(self):
        if not os.access(ALERTMANAGER, os.X_OK):
            self.fail("prometheus-alertmanager is needed: run scripts/install-deps")
        self.dir = tempfile.mkdtemp(prefix="vantage-pipeline-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        # The target and the receivers: one small HTTP server on 127.0.0.1.
        Recorder.bodies = self.bodies = []
        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Recorder)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.addCleanup(self.http.shutdown)
        self.base = f"http://127.0.0.1:{self.http.server_address[1]}"
        # Alertmanager, grouping nothing and notifying at once (resolutions too).
        self.am_port = free_port()
        am_config = os.path.join(self.dir, "alertmanager.yml")
        with open(am_config, "w") as f:
            json.dump({"route": {"receiver": "hook", "group_by": ["incident"], "group_wait": "1s",
                                 "group_interval": "1s", "repeat_interval": "1h"},
                       "receivers": [{"name": "hook", "webhook_configs": [
                           {"url": self.base + "/alertmanager", "send_resolved": True}]}]}, f)
        self.am_log = open(os.path.join(self.dir, "alertmanager.log"), "w")
        self.am = subprocess.Popen([ALERTMANAGER, f"--config.file={am_config}",
                                    f"--storage.path={os.path.join(self.dir, 'am-data')}",
                                    f"--web.listen-address=127.0.0.1:{self.am_port}", "--cluster.listen-address="],
                                   stdout=self.am_log, stderr=self.am_log)
        self.addCleanup(self.stop, self.am)
        wait_for(lambda: self.get(f"/api/v2/status") is not None, 20, what="Alertmanager")
        # The collector and two vantage points.
        tokens = []
        for probe in ("it-fiber-1", "it-cable-1"):
            path = os.path.join(self.dir, probe + ".token")
            with open(path, "w") as f:
                f.write(probe + "-token\n")
            tokens.append({"id": probe, "token_file": path})
        self.collector = Collector(self.dir, probes=tokens).start()
        self.addCleanup(self.collector.stop)
        self.closed_port = free_port()
        self.probes = {}
        self.start_probe("it-fiber-1", 64501, "Example Fiber", self.base + "/")
        self.start_probe("it-cable-1", 64502, "Example Cable", f"http://127.0.0.1:{self.closed_port}/")

    def stop(self, proc):
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.am_port}{path}", timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def start_probe(self, probe_id, asn, isp, url):
        if probe_id in self.probes:
            self.assertEqual(self.probes.pop(probe_id).stop(), 0)
        config = write_config({
            "vantage_point": {"id": probe_id, "region": "lab", "asn": asn, "isp": isp, "country": "DE"},
            "collector": {"url": f"http://127.0.0.1:{self.collector.port}/v1/results",
                          "token_file": os.path.join(self.dir, probe_id + ".token"),
                          "spool_dir": os.path.join(self.dir, probe_id + "-spool"), "flush_interval": "100ms"},
            "defaults": {"interval": "500ms", "timeout": "400ms"},
            "checks": [{"id": "shop-home", "kind": "http", "url": url}],
        }, self.dir)
        probe = Probe(config, log=os.path.join(self.dir, probe_id + ".log"))
        self.probes[probe_id] = probe
        self.addCleanup(lambda: probe.proc.poll() is None and probe.stop())

    def test_watch_opens_notifies_and_resolves_a_reachability_loss_from_real_probe_data(self):
        out = open(os.path.join(self.dir, "watch.out"), "w")
        self.addCleanup(out.close)
        watch = subprocess.Popen([VANTAGE, "watch", "--db", self.collector.db, "--interval", "1s", "--lookback", "10m",
                                  "--step", "2s", "--window", "6s", "--open-after", "2", "--resolve-after", "2",
                                  "--alertmanager", f"http://127.0.0.1:{self.am_port}",
                                  "--webhook", self.base + "/webhook", "--runbook-base", "https://docs.example.com/"],
                                 stdout=out, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop, watch)
        hooks = lambda path, event=None: [b for p, b in self.bodies if p == path and (event is None or b.get("event") == event)]
        opened = wait_for(lambda: hooks("/webhook", "opened"), 60, what="the webhook's opened incident")[0]["incident"]
        self.assertEqual(opened["kind"], "reachability_loss")
        self.assertEqual(opened["scope"]["asns"], [64502])
        self.assertEqual(opened["scope"]["isps"], ["Example Cable"])
        self.assertEqual(list(opened["evidence"]["failure_types"]), ["tcp.refused"])
        self.assertEqual((opened["evidence"]["failing_vantage_points"], opened["evidence"]["vantage_points"]), (1, 2))
        # Alertmanager has it, active, with the labels and the runbook link.
        alerts = wait_for(lambda: self.get("/api/v2/alerts?filter=source%3D%22vantage%22"), 20, what="the alert")
        self.assertEqual(len(alerts), 1)
        a = alerts[0]
        self.assertEqual(a["status"]["state"], "active")
        self.assertEqual((a["labels"]["alertname"], a["labels"]["incident"], a["labels"]["severity"]),
                         ("VantageReachabilityLoss", "reachability_loss asn=64502", "page"))
        self.assertEqual(a["annotations"]["asns"], "64502")
        self.assertEqual(a["annotations"]["runbook_url"], "https://docs.example.com/docs/runbooks/reachability_loss.md")
        firing = wait_for(lambda: [b for b in hooks("/alertmanager") if b["status"] == "firing"], 20,
                          what="Alertmanager's notification")[0]
        self.assertEqual(firing["alerts"][0]["labels"]["incident"], "reachability_loss asn=64502")
        # The route is fixed: the incident resolves, everywhere.
        self.start_probe("it-cable-1", 64502, "Example Cable", self.base + "/")
        resolved = wait_for(lambda: hooks("/webhook", "resolved"), 60, what="the webhook's resolution")[0]["incident"]
        self.assertEqual(resolved["id"], opened["id"])
        wait_for(lambda: self.get("/api/v2/alerts?filter=source%3D%22vantage%22") == [], 20,
                 what="the alert to leave Alertmanager's active list")
        wait_for(lambda: [b for b in hooks("/alertmanager") if b["status"] == "resolved"], 20,
                 what="Alertmanager's resolved notification")
        self.assertEqual(len(hooks("/webhook", "opened")), 1, "the incident was notified twice")
        watch.terminate()
        self.assertEqual(watch.wait(timeout=20), 0)
        out.flush()
        with open(os.path.join(self.dir, "watch.out")) as f:
            text = f.read()
        self.assertRegex(text, r"OPENED\s+page\s+reachability_loss")
        self.assertRegex(text, r"RESOLVED\s+page\s+reachability_loss")
        # Stored: the incidents table of the store.
        rows = self.collector.query("SELECT kind, status FROM incidents")
        self.assertEqual(rows, [{"kind": "reachability_loss", "status": "resolved"}])
        # And the per-ISP report over the same data names both networks.
        report = json.loads(subprocess.run([VANTAGE, "report", "isp", "--db", self.collector.db, "--format", "json"],
                                           check=True, capture_output=True, text=True).stdout)
        by_asn = {i["asn"]: i for i in report["isps"]}
        self.assertEqual({a: i["isp"] for a, i in by_asn.items()}, {64501: "Example Fiber", 64502: "Example Cable"})
        self.assertLess(by_asn[64502]["availability"], by_asn[64501]["availability"])


if __name__ == "__main__":
    unittest.main()
