"""Central configuration and heartbeats end to end: the real vantage-probe against the real
vantage-collector (GET /v1/config from fleet.config_dir, POST /v1/heartbeat), on 127.0.0.1.

- a probe started with only collector.config_url runs the checks the collector serves;
- a changed file on the collector reaches the probe within one poll (results of the new check);
- a document the probe's loader rejects is logged with the exact error and not cached;
- with the collector down, the probe restarts on its last good copy;
- heartbeats land in the collector's vantage_points table with the served document's hash.
"""
import hashlib
import json
import os
import signal
import socket
import time
import unittest
import urllib.request

from collector_harness import Collector, temp_dir
from harness import Probe, wait_for, write_config

POLL = 1.0  # config_poll_interval in these tests (seconds)


def log_lines(path, event):
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            if f'"event":"{event}"' in line:
                out.append(json.loads(line))
    return out


def results(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # a line being written
    return out


class CentralConfig(unittest.TestCase):
    def setUp(self):
        self.d = temp_dir(self, "vantage-central-it-")
        self.token = os.path.join(self.d, "token")
        with open(self.token, "w") as f:
            f.write("central-token\n")
        self.probes_d = os.path.join(self.d, "probes.d")
        os.mkdir(self.probes_d)
        # A listener the served tcp checks connect to (they succeed; results are results anyway).
        self.target = socket.socket()
        self.target.bind(("127.0.0.1", 0))
        self.target.listen(512)
        self.addCleanup(self.target.close)
        self.target_port = self.target.getsockname()[1]
        self.collector = Collector(os.path.join(self.d), probes=[{"id": "it-central", "token_file": self.token}],
                                   fleet={"config_dir": self.probes_d})
        self.collector.start()
        self.addCleanup(self.collector.stop)
        self.state = os.path.join(self.d, "state")
        self.cache = os.path.join(self.state, "central-config.yaml")
        self.config = write_config({
            "vantage_point": {"id": "it-central", "region": "lab", "country": "DE", "asn": 64500,
                              "isp": "Lab ISP"},
            "collector": {"url": f"http://127.0.0.1:{self.collector.port}/v1/results",
                          "token_file": self.token, "spool_dir": os.path.join(self.state, "spool"),
                          "flush_interval": "50ms", "backoff": {"initial": "100ms", "max": "500ms"},
                          "config_url": f"http://127.0.0.1:{self.collector.port}/v1/config",
                          "config_poll_interval": "1s", "heartbeat_interval": "1s"},
            "metrics": {"listen": "127.0.0.1:0"},
        }, self.d)
        self.probe = None
        self.addCleanup(self.stop_probe)

    def serve(self, check_ids, name="it-central.yaml", text=None):
        if text is None:
            text = "defaults: {interval: 200ms, timeout: 150ms}\nchecks:\n" + "".join(
                f"  - {{id: {c}, kind: tcp, host: 127.0.0.1, port: {self.target_port}}}\n" for c in check_ids)
        tmp = os.path.join(self.probes_d, "." + name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(self.probes_d, name))
        return text

    def start_probe(self, tag):
        self.output = os.path.join(self.d, f"results-{tag}.jsonl")
        self.log = os.path.join(self.d, f"probe-{tag}.log")
        self.probe = Probe(self.config, output=self.output, log=self.log)

    def stop_probe(self):
        if self.probe is not None:
            rc = self.probe.stop()
            self.probe = None
            self.assertEqual(rc, 0)

    def probe_metrics(self):
        port = wait_for(lambda: log_lines(self.log, "metrics.listening"), 10, what="metrics.listening")[0]["port"]
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def stored_checks(self):
        return {r["check_name"] for r in self.collector.query(
            "SELECT DISTINCT check_name FROM probe_results WHERE probe_id = 'it-central'")}

    def test_served_checks_changes_and_restart_on_the_last_good_copy(self):
        served = self.serve(["served-one", "served-two"])
        self.start_probe("first")
        # 1. Started with only config_url: it runs what the collector serves.
        wait_for(lambda: {"served-one", "served-two"} <= self.stored_checks(), 15,
                 what="results of the served checks in the collector")
        with open(self.cache) as f:
            self.assertEqual(f.read(), served)
        with open(self.cache + ".etag") as f:
            self.assertEqual(f.read().strip(), '"' + hashlib.sha256(served.encode()).hexdigest() + '"')
        self.assertTrue(log_lines(self.log, "probe.central_config_missing"), "a fresh probe says it has no copy")

        # Heartbeats: the vantage point with the served document's hash and its checks.
        def vantage_point():
            rows = self.collector.query("SELECT * FROM vantage_points WHERE probe_id = 'it-central'")
            return rows[0] if rows and rows[0]["config_hash"] else None
        vp = wait_for(vantage_point, 10, what="a heartbeat with a config hash")
        self.assertEqual(vp["config_hash"], "sha256:" + hashlib.sha256(served.encode()).hexdigest())
        self.assertEqual(vp["config_source"], "collector")
        self.assertEqual(vp["region"], "lab")
        self.assertEqual(vp["asn"], 64500)

        # 2. A changed file reaches the probe within one poll: the new check's results appear,
        # the removed one's stop.
        served = self.serve(["served-two", "served-three"])
        changed_at = time.time()
        wait_for(lambda: any(r["check"] == "served-three" for r in results(self.output)), POLL + 5,
                 what="results of the added check")
        self.assertLess(time.time() - changed_at, POLL + 3, "the change arrived within one poll (+ a run)")
        reloaded = log_lines(self.log, "probe.reloaded")
        self.assertTrue(reloaded)
        self.assertEqual(reloaded[-1]["added_checks"], "served-three")
        self.assertEqual(reloaded[-1]["removed_checks"], "served-one")
        self.assertEqual(reloaded[-1]["config_hash"], "sha256:" + hashlib.sha256(served.encode()).hexdigest())
        vp = wait_for(lambda: (lambda v: v if v and v["config_hash"].endswith(hashlib.sha256(served.encode()).hexdigest()) else None)(vantage_point()),
                      10, what="a heartbeat with the new hash")
        self.assertEqual(json.loads(vp["checks"]), ["served-three", "served-two"])
        m = self.probe_metrics()
        self.assertEqual(m['vantage_probe_central_config_polls_total{result="updated"}'], 2)
        self.assertEqual(m['vantage_probe_central_config_failing'], 0)
        self.assertGreaterEqual(m['vantage_probe_heartbeats_total{result="accepted"}'], 2)
        self.assertEqual(m['vantage_probe_heartbeats_total{result="failed"}'], 0)

        # 3. An invalid document is refused with the loader's exact message and not cached.
        self.serve([], text="checks: []\nmetrics: {listen: \"127.0.0.1:1\"}\n")
        invalid = wait_for(lambda: log_lines(self.log, "probe.central_config_invalid"), POLL + 5,
                           what="probe.central_config_invalid")
        self.assertTrue(invalid[0]["error"].startswith(self.cache + ":2:1: "), invalid[0]["error"])
        self.assertIn("metrics", invalid[0]["error"])
        time.sleep(POLL * 1.5)  # more polls of the same document: logged once
        self.assertEqual(len(log_lines(self.log, "probe.central_config_invalid")), 1)
        with open(self.cache) as f:
            self.assertEqual(f.read(), served)
        m = self.probe_metrics()
        self.assertEqual(m['vantage_probe_central_config_failing'], 1)
        self.assertGreaterEqual(m['vantage_probe_central_config_polls_total{result="invalid"}'], 2)
        n = len(results(self.output))
        wait_for(lambda: len(results(self.output)) > n + 4, 5, what="the running checks to keep running")

        # 4. The collector down: the probe restarts on its last good copy (the collector serves
        # that copy again meanwhile, so once it is back the probe's If-None-Match gets a 304).
        self.stop_probe()
        self.collector.stop()
        self.serve([], text=served)
        self.start_probe("second")
        wait_for(lambda: {"served-two", "served-three"} <= {r["check"] for r in results(self.output)}, 10,
                 what="the cached checks to run with the collector down")
        self.assertNotIn("served-one", {r["check"] for r in results(self.output)})
        wait_for(lambda: log_lines(self.log, "probe.central_config_unavailable"), 10,
                 what="probe.central_config_unavailable")
        time.sleep(POLL * 2.5)  # failing polls: logged once per state change, not per poll
        self.assertEqual(len(log_lines(self.log, "probe.central_config_unavailable")), 1)
        self.assertEqual(len(log_lines(self.log, "probe.heartbeat_failed")), 1)
        self.assertFalse(log_lines(self.log, "probe.central_config_missing"))

        # The collector back: the probe polls again (304: nothing reloads) and heartbeats resume.
        self.collector.start()
        wait_for(lambda: log_lines(self.log, "probe.central_config_available"), POLL + 10,
                 what="probe.central_config_available")
        wait_for(lambda: log_lines(self.log, "probe.heartbeat_ok"), 10, what="probe.heartbeat_ok")
        wait_for(lambda: self.collector.metric('vantage_collector_config_requests_total{result="not_modified"}') >= 1,
                 POLL + 5, what="a 304 answer to the probe's If-None-Match")
        self.assertFalse(log_lines(self.log, "probe.reloaded"), "an unchanged document reloads nothing")
        self.assertFalse(log_lines(self.log, "probe.central_config_updated"))
        self.assertFalse(log_lines(self.log, "probe.central_config_invalid"))

    def test_fresh_probe_with_the_collector_down_starts_with_no_checks_and_picks_them_up(self):
        self.serve(["late-one"])
        self.collector.stop()
        self.start_probe("down")
        wait_for(lambda: log_lines(self.log, "probe.central_config_missing"), 10, what="the missing-copy warning")
        wait_for(lambda: log_lines(self.log, "probe.central_config_unavailable"), 10,
                 what="probe.central_config_unavailable")
        self.assertTrue(self.probe.proc.poll() is None, "the probe keeps running with no checks")
        self.assertFalse(os.path.exists(self.cache))
        self.collector.start()
        wait_for(lambda: any(r["check"] == "late-one" for r in results(self.output)), POLL + 10,
                 what="the served check once the collector is back")

    def test_wrong_token_is_logged_with_the_collectors_text_and_a_reload_fixes_it(self):
        self.serve(["x"])
        with open(self.token, "w") as f:
            f.write("not-the-token\n")
        self.start_probe("token")
        line = wait_for(lambda: log_lines(self.log, "probe.central_config_unavailable"), 10,
                        what="probe.central_config_unavailable")[0]
        self.assertEqual(line["status"], 403)
        self.assertIn("error", json.loads(line["error"]))
        hb = wait_for(lambda: log_lines(self.log, "probe.heartbeat_failed"), 10, what="probe.heartbeat_failed")[0]
        self.assertEqual(hb["status"], 403)
        self.assertFalse(os.path.exists(self.cache))
        # The right token and a reload (SIGHUP): the next poll and heartbeat use it.
        with open(self.token, "w") as f:
            f.write("central-token\n")
        self.probe.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: log_lines(self.log, "probe.central_config_available"), POLL + 5,
                 what="probe.central_config_available")
        wait_for(lambda: log_lines(self.log, "probe.heartbeat_ok"), 5, what="probe.heartbeat_ok")
        wait_for(lambda: any(r["check"] == "x" for r in results(self.output)), 5, what="the served check")


if __name__ == "__main__":
    unittest.main()
