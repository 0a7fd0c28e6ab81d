"""The demo end to end (scripts/demo's main job, regions/lab/): three ISPs, an origin, a collector
and BGP in network namespaces; the scenario timeline of regions/lab/scenarios/demo.yml injected
and removed; `vantage watch` and a final `vantage incidents` replay over what the collector
stored. Needs root (network namespaces), Chromium, ExaBGP, FRR, unbound, nginx and MaxMind's
DB writer — all installed by scripts/install-deps.

Each fault scenario must open exactly one incident, of the right kind and scope, printed by
`vantage watch` within two probe intervals of the fault, resolved after the fault is removed; the
baseline none; nothing else. The per-ISP report over each fault's window shows the affected ISP
down and the others up. Afterwards — and after a killed demo followed by `lab.py cleanup`, and
after Ctrl-C — no namespace, link, process or file of the lab is left."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "regions", "lab"))
import lab  # noqa: E402
import yaml  # noqa: E402

BUILD = os.environ.get("VANTAGE_BUILD_DIR", os.path.join(ROOT, "build", "dev"))
BINARIES = [os.path.join(BUILD, "probe", "vantage-probe"), os.path.join(BUILD, "beacon-collector", "vantage-collector"),
            os.path.join(BUILD, "analysis", "vantage")]
DEMO = os.path.join(ROOT, "scripts", "lib", "lab_demo.py")
SCENARIOS = os.path.join(ROOT, "regions", "lab", "scenarios")


def parse_time(text):
    return int(datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp() * 1e9)


def nothing_left(test):
    """The lab's namespaces, links, processes, /etc/netns entries and temporary files are gone —
    checked directly, not through lab.py."""
    netns = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    test.assertEqual([n for n in netns if n.startswith("vlab-")], [])
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    test.assertNotIn("vlab-", links)
    test.assertEqual([d for d in os.listdir("/tmp") if d.startswith("vantage-lab-")], [])
    test.assertEqual([d for d in os.listdir("/etc/netns") if d.startswith("vlab-")] if os.path.isdir("/etc/netns")
                     else [], [])
    ps = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True).stdout.splitlines()
    test.assertEqual([p for p in ps if "vantage-lab-" in p or "vlab-" in p], [])
    test.assertFalse(os.path.exists("/run/vantage-lab.lock"))
    # FRR's bgpd leaves /var/tmp/frr/bgpd.<pid> unless it exits cleanly.
    frr = [d for d in (os.listdir("/var/tmp/frr") if os.path.isdir("/var/tmp/frr") else []) if d.startswith("bgpd.")]
    test.assertEqual([d for d in frr if not os.path.exists("/proc/" + d.split(".", 1)[1])], [])


class LabDemoTest(unittest.TestCase):
    summary = None

    @classmethod
    def setUpClass(cls):
        missing = lab.requirements()
        if missing:
            raise AssertionError(missing)
        cls.dir = tempfile.mkdtemp(prefix="vantage-labtest-")
        cls.json = os.path.join(cls.dir, "summary.json")
        with open(os.path.join(SCENARIOS, "demo.yml")) as f:
            cls.timeline = yaml.safe_load(f)
        cls.interval = lab.seconds(lab.load_config()["timing"]["probe_interval"])
        started = time.time()
        proc = subprocess.Popen([sys.executable, DEMO, *BINARIES, "--out", cls.dir, "--json", cls.json],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=400)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)  # let it tear the lab down
            out, err = proc.communicate(timeout=90)
        cls.proc = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        cls.seconds = time.time() - started
        with open(cls.json) as f:
            cls.summary = json.load(f)
        for v in cls.summary.get("verdicts", []):  # the figures, for the CI log
            fmt = lambda x: "-" if x is None else f"{x:.1f} s"  # noqa: E731
            sys.stderr.write(f"\n  {v['scenario']:<14} {v['expected']:<22} detected {fmt(v.get('printed_s'))}, "
                             f"resolved {fmt(v.get('resolution_s'))} after removal: "
                             f"{'ok' if v['ok'] else v['problem']}")
        sys.stderr.write(f"\n  demo: {cls.summary.get('seconds', 0):.0f} s\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def output(self):
        return self.proc.stdout[-6000:] + "\n--- stderr\n" + self.proc.stderr[-4000:]

    def expectation(self, name):
        with open(os.path.join(SCENARIOS, name + ".yml")) as f:
            return yaml.safe_load(f)["expect"]

    def window(self, name):
        rec = self.summary["scenarios"][name]
        return rec["inject"], rec["remove"]

    def test_the_demo_passes_within_three_minutes_of_the_lab_starting(self):
        self.assertEqual(self.proc.returncode, 0, self.output())
        self.assertLess(self.summary["seconds"], 180, self.output())
        out = self.proc.stdout
        for text in ("INJECT   isp-blackhole", "REMOVE   isp-blackhole", "OPENED", "RESOLVED",
                     "per-ISP report over the run", "HTML report", "lab torn down: nothing left"):
            self.assertIn(text, out)

    def test_each_fault_opens_exactly_its_incident_in_time_and_it_resolves(self):
        incidents = self.summary["incidents"]
        faults = [s["scenario"] for s in self.timeline["timeline"] if self.expectation(s["scenario"]) != "none"]
        self.assertEqual(len(incidents), len(faults), json.dumps(incidents, indent=1))
        for name in faults:
            with self.subTest(scenario=name):
                exp = self.expectation(name)
                start, stop = self.window(name)
                mine = [i for i in incidents if start <= parse_time(i["opened"]) < stop]
                self.assertEqual(len(mine), 1, json.dumps(incidents, indent=1))
                inc = mine[0]
                self.assertEqual(inc["kind"], exp["kind"])
                scope, ev = inc["scope"], inc["evidence"]
                if "asns" in exp:
                    self.assertEqual(sorted(scope["asns"]), sorted(exp["asns"]))
                for key in ("targets", "countries", "endpoints", "prefixes"):
                    for want in exp.get(key, []):
                        self.assertIn(want, scope[key])
                for want in exp.get("failure_types", []):
                    self.assertIn(want, ev["failure_types"])
                for want in exp.get("browser_reports", []):
                    self.assertIn(want, ev["browser_reports"])
                for want in exp.get("bgp_alerts", []):
                    self.assertIn(want, ev["bgp_alerts"])
                if "id" in exp:
                    self.assertTrue(inc["id"].startswith(exp["id"] + " @"), inc["id"])
                # Printed by vantage watch within two probe intervals of the fault going in.
                printed = [w["time_ns"] for w in self.summary["watch"]
                           if " OPENED " in w["line"] and f" {inc['kind']} " in w["line"]]
                self.assertTrue(printed, self.summary["watch"])
                self.assertLessEqual((min(p for p in printed if p >= start) - start) / 1e9, 2 * self.interval,
                                     "detection slower than two probe intervals")
                # Resolved, after the fault came out.
                self.assertIn("resolved", inc, inc)
                self.assertGreater(parse_time(inc["resolved"]), stop)
                self.assertTrue(any(" RESOLVED " in w["line"] and f" {inc['kind']} " in w["line"]
                                    for w in self.summary["watch"]))

    def test_the_baseline_opens_nothing(self):
        start, stop = self.window("baseline")
        self.assertEqual([i["id"] for i in self.summary["incidents"] if parse_time(i["opened"]) < stop], [])
        self.assertEqual(self.summary["unexpected"], [])
        # vantage watch told the same story while it happened: one opening per fault, no other.
        faults = [s["scenario"] for s in self.timeline["timeline"] if self.expectation(s["scenario"]) != "none"]
        self.assertEqual(len(self.summary["printed_opened"]), len(faults), self.summary["printed_opened"])

    def test_the_per_isp_report_shows_the_affected_isp_down_and_the_others_up(self):
        affected = {"isp-blackhole": 64501, "dns-hijack": 64502, "waf-403": 64503}
        for name, asn in affected.items():
            with self.subTest(scenario=name):
                report = self.summary["windows"][name]
                by_asn = {r["asn"]: r for r in report["isps"]}
                self.assertEqual(set(by_asn), {64501, 64502, 64503})
                self.assertLess(by_asn[asn]["availability"], 0.85, by_asn[asn])
                for other, r in by_asn.items():
                    if other != asn:
                        self.assertGreaterEqual(r["availability"], 0.97, r)
        # The WAF's 403s reach the collector from the blocked ISP's real browser (NEL).
        waf = {r["asn"]: r for r in self.summary["windows"]["waf-403"]["isps"]}
        self.assertLess(waf[64503]["browser_availability"], 0.5, waf[64503])
        self.assertGreater(waf[64501]["browser_availability"], 0.95, waf[64501])
        with open(self.summary["html_report"]) as f:
            html = f.read()
        for isp in ("Northwind Telecom", "Contoso Fibre", "Fabrikam Cable", "<svg"):
            self.assertIn(isp, html)

    def test_a_real_ris_rib_is_replayed_through_the_bgp_monitor(self):
        scan = "\n".join(self.summary["mrt_scan"])
        self.assertIn("unexpected_upstream 12.2.192.0/24", scan)
        self.assertIn("sub_prefix_hijack 20.139.0.0/22", scan)

    def test_nothing_of_the_lab_is_left(self):
        self.assertEqual(self.summary["leftovers"], [])
        nothing_left(self)


class LabTeardownTest(unittest.TestCase):
    """A killed demo and the documented cleanup command; Ctrl-C; no root."""

    def start_demo(self):
        out = tempfile.NamedTemporaryFile("w+", prefix="vantage-labtest-", suffix=".log", delete=False)
        self.addCleanup(os.unlink, out.name)
        p = subprocess.Popen([sys.executable, DEMO, *BINARIES, "--out", tempfile.gettempdir()], stdout=out,
                             stderr=subprocess.STDOUT, text=True)
        end = time.time() + 120
        while time.time() < end:
            with open(out.name) as f:
                if "== timeline" in f.read():
                    return p, out.name
            if p.poll() is not None:
                break
            time.sleep(0.2)
        p.kill()
        with open(out.name) as f:
            self.fail("the demo did not reach its timeline:\n" + f.read()[-3000:])

    def test_a_killed_demo_leaves_the_lab_and_cleanup_removes_all_of_it(self):
        p, _ = self.start_demo()
        p.kill()  # SIGKILL: no teardown runs
        p.wait()
        self.assertTrue(lab.leftovers(), "a killed demo should have left its lab for cleanup to find")
        r = subprocess.run([sys.executable, os.path.join(ROOT, "regions", "lab", "lab.py"), "cleanup"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("namespace vlab-core", r.stdout)
        nothing_left(self)

    def test_ctrl_c_tears_the_lab_down(self):
        p, log = self.start_demo()
        p.send_signal(signal.SIGINT)
        self.assertEqual(p.wait(timeout=60), 130)
        with open(log) as f:
            text = f.read()
        self.assertIn("interrupted", text)
        self.assertIn("lab torn down: nothing left", text)
        nothing_left(self)

    def test_a_second_lab_is_refused_while_one_runs(self):
        p, _ = self.start_demo()
        try:
            r = subprocess.run([sys.executable, os.path.join(ROOT, "regions", "lab", "lab.py"), "cleanup"],
                               capture_output=True, text=True, timeout=60)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("another lab is running", r.stderr)
            self.assertTrue(os.path.exists("/run/netns/vlab-core"), "cleanup must not touch a running lab")
        finally:
            p.send_signal(signal.SIGINT)
            p.wait(timeout=60)
        nothing_left(self)

    def test_without_root_it_says_so(self):
        r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, DEMO,
                            *BINARIES], capture_output=True, text=True, timeout=60, cwd="/")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("needs root", r.stderr)
        self.assertIn("sudo scripts/demo", r.stderr)


if __name__ == "__main__":
    unittest.main()
