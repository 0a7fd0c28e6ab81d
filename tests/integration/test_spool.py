"""Collector outage: results are spooled on disk, survive a probe restart while the collector is
down, and are all delivered exactly once when the real vantage-collector comes back (ids checked
in its store)."""
import json
import os
import shutil
import tempfile
import unittest
import urllib.request

from collector_harness import Collector
from harness import free_port, IntegrationTest, Probe, wait_for, write_config

HERE = os.path.dirname(os.path.abspath(__file__))




def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class SpoolAcrossOutage(IntegrationTest):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vantage-spool-it-")
        self.metrics_port = free_port()
        self.token = "probe-token-123"
        token_file = os.path.join(self.dir, "token")
        with open(token_file, "w") as f:
            f.write(self.token + "\n")
        self.spool = os.path.join(self.dir, "spool")
        self.produced = os.path.join(self.dir, "produced.jsonl")
        self.collector = Collector(os.path.join(self.dir), probes=[{"id": "it-spool", "token_file": token_file}])
        self.port = self.collector.port
        self.config = write_config({
            "vantage_point": {"id": "it-spool", "region": "lab"},
            "collector": {"url": f"http://127.0.0.1:{self.port}/v1/results", "token_file": token_file,
                          "spool_dir": self.spool, "flush_interval": "100ms",
                          "backoff": {"initial": "100ms", "max": "300ms"}},
            "metrics": {"listen": f"127.0.0.1:{self.metrics_port}"},
            "scheduler": {"shutdown_grace": "2s"},
            "defaults": {"interval": "200ms", "timeout": "150ms"},
            "checks": [
                {"id": "home", "kind": "http", "url": f"http://127.0.0.1:{self.ports['http']}/"},
                {"id": "refused", "kind": "http", "url": f"http://127.0.0.1:{self.ports['closed']}/"},
            ],
        }, self.dir)
    def tearDown(self):
        self.collector.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def stored_ids(self):
        if not os.path.exists(self.collector.db):
            return []
        return [r["result_id"] for r in self.collector.query("SELECT result_id FROM probe_results")]

    def spooled_results(self):
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).read().decode()
        except OSError:
            return 0
        for line in text.splitlines():
            if line.startswith("vantage_probe_spool_results "):
                return float(line.split()[1])
        return 0

    def test_results_survive_a_restart_during_an_outage_and_arrive_exactly_once(self):
        log = os.path.join(self.dir, "probe.log")
        # 1. Collector down: results pile up in the spool.
        probe = Probe(self.config, output=self.produced, log=log)
        wait_for(lambda: self.spooled_results() >= 10, 15, what="results in the spool")
        self.assertEqual(probe.stop(), 0)
        first = len(read_jsonl(self.produced))
        self.assertGreaterEqual(first, 10)
        segments = [n for n in os.listdir(self.spool) if n.endswith(".ndjson")]
        self.assertTrue(segments)
        # 2. Restarted while the collector is still down: the spool is recovered and grows.
        probe = Probe(self.config, output=self.produced, log=log)
        wait_for(lambda: self.spooled_results() >= first + 5, 15, what="the recovered spool to grow")
        self.assertEqual(probe.stop(), 0)
        # 3. Collector back: everything is delivered, once.
        self.collector.start()
        probe = Probe(self.config, output=self.produced, log=log)
        wait_for(lambda: len(self.stored_ids()) >= first + 5 and self.spooled_results() == 0, 20,
                 what="the spool to drain")
        self.assertEqual(probe.stop(), 0)
        produced = [r["id"] for r in read_jsonl(self.produced)]
        stored = self.stored_ids()
        self.assertEqual(len(produced), len(set(produced)))
        self.assertEqual(sorted(stored), sorted(produced), "every result delivered, none extra")
        self.assertEqual(self.collector.metric('vantage_collector_dropped_reports_total{reason="duplicate_result"}'),
                         0, "no result delivered twice")
        remaining = [n for n in os.listdir(self.spool) if n.endswith(".ndjson")]
        for name in remaining:
            self.assertEqual(os.path.getsize(os.path.join(self.spool, name)), 0, f"{name} still holds results")

    def test_a_wrong_token_keeps_results_in_the_spool(self):
        self.collector.start()  # it read the right token at start-up
        with open(os.path.join(self.dir, "token"), "w") as f:
            f.write("wrong-token\n")
        log = os.path.join(self.dir, "probe.log")
        probe = Probe(self.config, output=self.produced, log=log)
        wait_for(lambda: self.spooled_results() >= 5, 15, what="results held back")
        self.assertEqual(probe.stop(), 0)
        self.assertEqual(self.stored_ids(), [])
        with open(log) as f:
            self.assertIn('"status":403', f.read())


if __name__ == "__main__":
    unittest.main()
