"""The fleet end to end: two real probes send heartbeats to a real collector; `vantage fleet` lists
both with their versions; one probe stopped for longer than three heartbeat intervals yields
exactly one `vantage_point_silent` incident naming it, resolved when it returns, and no
reachability incident (its silence is not evidence about its targets)."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from collector_harness import Collector
from harness import BUILD_DIR, PROBE, IntegrationTest, Probe, vantage, wait_for, write_config

VANTAGE = os.path.join(BUILD_DIR, "analysis", "vantage")


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)
    if p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}: {p.stdout[-2000:]} {p.stderr[-2000:]}")
    return p.stdout


class Fleet(IntegrationTest):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vantage-fleet-it-")
        self.ids = ["fleet-a", "fleet-b"]
        tokens = []
        for i, pid in enumerate(self.ids):
            path = os.path.join(self.dir, f"{pid}.token")
            with open(path, "w") as f:
                f.write(f"fleet-token-{i}-0123456789\n")
            tokens.append({"id": pid, "token_file": path})
        self.collector = Collector(self.dir, probes=tokens).start()
        self.configs = {}
        for i, pid in enumerate(self.ids):
            self.configs[pid] = write_config({
                "vantage_point": vantage(id=pid, asn=64500 + i, isp=f"Lab ISP {i}"),
                "collector": {"url": f"http://127.0.0.1:{self.collector.port}/v1/results",
                              "token_file": tokens[i]["token_file"],
                              "spool_dir": os.path.join(self.dir, f"spool-{pid}"),
                              "flush_interval": "200ms", "heartbeat_interval": "1s"},
                "defaults": {"interval": "1s", "timeout": "800ms"},
                "checks": [{"id": "home", "kind": "http",
                            "url": f"http://127.0.0.1:{self.ports['http']}/"}],
            }, self.dir)
        self.probes = {}

    def tearDown(self):
        for p in self.probes.values():
            if p.proc.poll() is None:
                p.stop()
        self.collector.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, pid):
        self.probes[pid] = Probe(self.configs[pid], log=os.path.join(self.dir, f"{pid}.log"))

    def heartbeats(self, pid):
        try:
            return self.collector.query("SELECT count(*) AS n FROM heartbeats WHERE probe_id = ?", (pid,))[0]["n"]
        except Exception:  # the table appears with the first heartbeat's commit
            return 0

    def fleet(self):
        return json.loads(run([VANTAGE, "fleet", "--db", self.collector.db, "--format", "json"]))

    def test_fleet_lists_both_and_a_stopped_probe_is_one_silent_incident(self):
        version = run([PROBE, "--version"]).split()[1]
        for pid in self.ids:
            self.start(pid)
        for pid in self.ids:
            wait_for(lambda pid=pid: self.heartbeats(pid) >= 2, 20, what=f"heartbeats from {pid}")
        listed = self.fleet()
        rows = listed["vantage_points"] if isinstance(listed, dict) else listed
        by_id = {r["probe_id"]: r for r in rows}
        self.assertEqual(sorted(by_id), self.ids)
        for pid in self.ids:
            self.assertEqual(by_id[pid]["version"], version)
            self.assertEqual(by_id[pid]["state"], "ok")

        # Stop one for well over three heartbeat intervals, then bring it back.
        self.assertEqual(self.probes["fleet-b"].stop(), 0)
        stopped = time.time()
        wait_for(lambda: time.time() - stopped > 6, 10, what="the silence")
        rows = {r["probe_id"]: r for r in (lambda f: f["vantage_points"] if isinstance(f, dict) else f)(self.fleet())}
        self.assertEqual(rows["fleet-b"]["state"], "silent")
        self.assertEqual(rows["fleet-a"]["state"], "ok")
        before = self.heartbeats("fleet-b")
        self.start("fleet-b")
        wait_for(lambda: self.heartbeats("fleet-b") >= before + 2, 20, what="fleet-b back")
        time.sleep(2)  # fleet-a keeps its checks and heartbeats going meanwhile

        incidents = json.loads(run([VANTAGE, "incidents", "--db", self.collector.db, "--json",
                                    "--from", "10m", "--step", "1s", "--window", "3s", "--no-save"]))
        kinds = [(i["kind"], i.get("scope", {})) for i in incidents]
        silent = [i for i in incidents if i["kind"] == "vantage_point_silent"]
        self.assertEqual(len(silent), 1, kinds)
        self.assertIn("fleet-b", json.dumps(silent[0]))
        self.assertNotIn("fleet-a", json.dumps(silent[0]))
        self.assertEqual(silent[0]["status"], "resolved", silent[0])
        others = [i for i in incidents if i["kind"] != "vantage_point_silent"]
        self.assertEqual(others, [], kinds)


if __name__ == "__main__":
    unittest.main()
