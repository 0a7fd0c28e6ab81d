"""The demo end to end (scripts/demo's main job, regions/lab/): four ISPs (one users-only), an
origin, a collector and BGP in network namespaces; the scenario timeline of
regions/lab/scenarios/demo.yml (or the one $VANTAGE_LAB_TIMELINE names, e.g. `outages`) injected
and removed; `vantage watch` and a final `vantage incidents` replay over what the collector
stored. Needs root (network namespaces), Chromium, ExaBGP, FRR, unbound, nginx and MaxMind's
DB writer — all installed by scripts/install-deps.

Each fault scenario must open exactly the incidents its `expect:` block lists (docs/lab.md), of
the right kind and scope, printed by `vantage watch` within two probe intervals of the fault (or
its `within`), resolved after the fault is removed; with `steady`, none resolves or opens again
while the fault is in; with `quiet_after`, nothing opens that long after the removal; the
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
TIMELINE = lab.timeline_path(os.environ.get("VANTAGE_LAB_TIMELINE", "demo"))
# Per scenario: the networks whose vantage points are down in its window (availability below
# 85 %); the other probe networks stay at 97 % or more. isp-loss: below 97 % only (loss, not down).
PROBES_DOWN = {"isp-blackhole": {64501}, "dns-hijack": {64502}, "waf-403": {64503},
               "global-blackhole": {64501, 64502, 64503}, "origin-down": {64501, 64502, 64503},
               "api-403": {64503}, "two-faults": {64501, 64503}, "users-only-blackhole": set()}
# Per scenario: the networks whose users' browsers fail (NEL availability below 50 %); checked
# against one that does not (above 95 %) where there is one.
BROWSERS_DOWN = {"waf-403": {64503}, "api-403": {64503}, "users-only-blackhole": {64504},
                 "global-blackhole": {64501, 64502, 64503, 64504}, "origin-down": {64501, 64502, 64503, 64504}}


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
        with open(TIMELINE) as f:
            cls.timeline = yaml.safe_load(f)
        cls.end = lab.seconds(cls.timeline["end"])
        cls.interval = lab.seconds(lab.load_config()["timing"]["probe_interval"])
        started = time.time()
        proc = subprocess.Popen([sys.executable, DEMO, *BINARIES, "--out", cls.dir, "--json", cls.json,
                                 "--timeline", TIMELINE], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=cls.end + 250)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)  # let it tear the lab down
            out, err = proc.communicate(timeout=90)
        cls.proc = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        cls.seconds = time.time() - started
        with open(cls.json) as f:
            cls.summary = json.load(f)
        for v in cls.summary.get("verdicts", []):  # the figures, for the CI log
            fmt = lambda x: "-" if x is None else f"{x:.1f} s"  # noqa: E731
            sys.stderr.write(f"\n  {v['scenario']:<20} {v['expected']:<22} detected {fmt(v.get('printed_s'))}, "
                             f"resolved {fmt(v.get('resolution_s'))} after removal: "
                             f"{'ok' if v['ok'] else v['problem']}")
        sys.stderr.write(f"\n  demo: {cls.summary.get('seconds', 0):.0f} s\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def output(self):
        return self.proc.stdout[-6000:] + "\n--- stderr\n" + self.proc.stderr[-4000:]

    def expectation(self, name):
        with open(os.path.join(os.path.dirname(TIMELINE), name + ".yml")) as f:
            return lab.expectation(yaml.safe_load(f)["expect"])

    def steps(self):
        return [s["scenario"] for s in self.timeline["timeline"]]

    def faults(self):
        return [name for name in self.steps() if self.expectation(name)["incidents"]]

    def expected_count(self):
        return sum(len(self.expectation(name)["incidents"]) for name in self.steps())

    def window(self, name):
        rec = self.summary["scenarios"][name]
        return rec["inject"], rec["remove"]

    def test_the_demo_passes_within_three_minutes_of_the_lab_starting(self):
        self.assertEqual(self.proc.returncode, 0, self.output())
        # demo.yml: 150 s of timeline, 3 minutes in all; a longer timeline, its length + 30 s.
        self.assertLess(self.summary["seconds"], max(180, self.end + 30), self.output())
        out = self.proc.stdout
        first = self.faults()[0]
        for text in (f"INJECT   {first}", f"REMOVE   {first}", "OPENED", "RESOLVED",
                     "per-ISP report over the run", "HTML report", "lab torn down: nothing left"):
            self.assertIn(text, out)

    def test_each_fault_opens_exactly_its_incidents_in_time_and_they_resolve(self):
        incidents = self.summary["incidents"]
        self.assertEqual(len(incidents), self.expected_count(), json.dumps(incidents, indent=1))
        steps = self.steps()
        for n, name in enumerate(steps):
            exp = self.expectation(name)
            if not exp["incidents"]:
                continue
            with self.subTest(scenario=name):
                start, stop = self.window(name)
                mine = [i for i in incidents if start <= parse_time(i["opened"]) < stop]
                self.assertEqual(sorted(i["kind"] for i in mine), sorted(e["kind"] for e in exp["incidents"]),
                                 json.dumps(incidents, indent=1))
                for want in exp["incidents"]:
                    candidates = [i for i in mine if i["kind"] == want["kind"] and self.fits(i, want)]
                    self.assertTrue(candidates, f"no incident fits {want}: {json.dumps(mine, indent=1)}")
                    inc = candidates[0]
                    mine.remove(inc)
                    # Printed by vantage watch within two probe intervals (or `within`) of the fault.
                    within = exp["within"] if exp["within"] is not None else 2 * self.interval
                    printed = [w["time_ns"] for w in self.summary["watch"]
                               if " OPENED " in w["line"] and f" {inc['kind']} " in w["line"] and w["time_ns"] >= start]
                    self.assertTrue(printed, self.summary["watch"])
                    self.assertLessEqual((min(printed) - start) / 1e9, within, "detection too slow")
                    # Resolved, after the fault came out.
                    if exp["resolves"]:
                        self.assertIn("resolved", inc, inc)
                        self.assertGreater(parse_time(inc["resolved"]), stop)
                        self.assertTrue(any(" RESOLVED " in w["line"] and f" {inc['kind']} " in w["line"]
                                            for w in self.summary["watch"]))
                    if exp["steady"]:  # open for the whole fault: no resolve, no second opening
                        during = [w["line"] for w in self.summary["watch"] if start <= w["time_ns"] < stop
                                  and f" {inc['kind']} " in w["line"]]
                        self.assertEqual([line for line in during if " RESOLVED " in line], [], during)
                        self.assertLessEqual(len([line for line in during if " OPENED " in line]),
                                             [e["kind"] for e in exp["incidents"]].count(inc["kind"]), during)
                if exp["quiet_after"]:
                    until = stop + int(exp["quiet_after"] * 1e9)
                    if n + 1 < len(steps):
                        until = min(until, self.window(steps[n + 1])[0])
                    self.assertEqual([i["id"] for i in incidents if stop <= parse_time(i["opened"]) < until], [])

    @staticmethod
    def fits(inc, want):
        """The incident has the expected scope (docs/lab.md#expectations)."""
        scope, ev = inc["scope"], inc["evidence"]
        for key, value in want.items():
            if key == "kind":
                continue
            elif key == "id":
                ok = inc["id"].startswith(value + " @")
            elif key == "severity":
                ok = inc["severity"] == value
            elif key == "title":
                ok = all(t in inc["title"] for t in (value if isinstance(value, list) else [value]))
            elif key == "evidence":
                ok = all(ev.get(field) for field in value)
            elif key == "asns":
                ok = sorted(scope["asns"]) == sorted(value)
            elif key == "asns_at_least":
                ok = set(value) <= set(scope["asns"])
            else:
                have = scope[key] if key in scope else ev.get(key, [])
                ok = all(w in have for w in value)
            if not ok:
                return False
        return True

    def test_watch_and_incidents_give_the_same_incidents_at_the_same_times(self):
        # What `vantage watch` printed while the faults went in and out, against a `vantage
        # incidents` replay of the finished store: same kinds and titles, same opened and
        # resolved times (to the second).
        self.assertIn("watch_vs_incidents", self.summary)
        self.assertEqual(self.summary["watch_vs_incidents"], [], self.output())

    def test_the_baseline_opens_nothing(self):
        start, stop = self.window("baseline")
        self.assertEqual([i["id"] for i in self.summary["incidents"] if parse_time(i["opened"]) < stop], [])
        self.assertEqual(self.summary["unexpected"], [])
        # vantage watch told the same story while it happened: one opening per expected incident.
        self.assertEqual(len(self.summary["printed_opened"]), self.expected_count(), self.summary["printed_opened"])

    def test_the_per_isp_report_shows_the_affected_isps_down_and_the_others_up(self):
        probe_asns = {i["asn"] for i in lab.load_config()["isps"] if i.get("probe", True)}
        all_asns = {i["asn"] for i in lab.load_config()["isps"]}
        for name in self.steps():
            if name not in PROBES_DOWN and name not in BROWSERS_DOWN and name != "isp-loss":
                continue
            with self.subTest(scenario=name):
                by_asn = {r["asn"]: r for r in self.summary["windows"][name]["isps"]}
                self.assertEqual(set(by_asn), all_asns)  # the users-only network through its browsers
                down = PROBES_DOWN.get(name, {64502} if name == "isp-loss" else set())
                for asn in probe_asns:
                    r = by_asn[asn]
                    if asn not in down:
                        self.assertGreaterEqual(r["availability"], 0.97, r)
                    else:
                        self.assertLess(r["availability"], 0.97 if name == "isp-loss" else 0.85, r)
                self.assertIsNone(by_asn[64504]["availability"], "a users-only network has no vantage point")
                browsers_down = BROWSERS_DOWN.get(name, set())
                for asn in browsers_down:
                    self.assertLess(by_asn[asn]["browser_availability"], 0.5, by_asn[asn])
                for asn in all_asns - browsers_down - down:  # (slower, not failing, under loss)
                    self.assertGreater(by_asn[asn]["browser_availability"], 0.95, by_asn[asn])
        with open(self.summary["html_report"]) as f:
            html = f.read()
        for isp in ("Northwind Telecom", "Contoso Fibre", "Fabrikam Cable", "Litware Broadband", "<svg"):
            self.assertIn(isp, html)

    def test_a_real_ris_rib_is_replayed_through_the_bgp_monitor(self):
        scan = "\n".join(self.summary["mrt_scan"])
        self.assertIn("unexpected_upstream 12.2.192.0/24", scan)
        self.assertIn("sub_prefix_hijack 20.139.0.0/22", scan)

    def test_the_fleet_lists_every_vantage_point_alive_with_its_version(self):
        # Every lab probe sends heartbeats to the lab's collector; at the end of the run none is
        # silent (the faults cut the origin, never the collector) and all run one version.
        points = self.summary["fleet"]["vantage_points"]
        self.assertGreaterEqual(len(points), 3, points)
        for p in points:
            self.assertEqual(p["state"], "ok", p)
            self.assertEqual(p["version"], self.summary["fleet"]["common_version"], p)
            self.assertFalse(p["config_drift"], p)

    def test_nothing_of_the_lab_is_left(self):
        self.assertEqual(self.summary["leftovers"], [])
        nothing_left(self)


def load_demo_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("lab_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ScenarioFilesTest(unittest.TestCase):
    """Hermetic (no root, no lab): every scenario of every timeline parses, its faults are
    well-formed for this lab, and the demo's expectation check passes and fails where it should."""

    def test_every_timeline_names_scenarios_whose_faults_and_expectations_parse(self):
        fake = lab.Lab({"probe": "", "collector": "", "vantage": ""})
        self.assertEqual(fake.probe_isps, ["isp1", "isp2", "isp3"])  # isp4: users only
        names = lab.timelines()
        self.assertIn("demo", names)
        self.assertIn("outages", names)
        for timeline in names:
            with open(lab.timeline_path(timeline)) as f:
                steps = yaml.safe_load(f)["timeline"]
            for step in steps:
                with self.subTest(timeline=timeline, scenario=step["scenario"]):
                    with open(os.path.join(SCENARIOS, step["scenario"] + ".yml")) as f:
                        sc = yaml.safe_load(f)
                    exp = lab.expectation(sc["expect"])
                    self.assertEqual(exp["incidents"] == [], sc["faults"] == [])
                    for fault in sc["faults"]:
                        self.assertTrue(fake.describe(fault))

    def test_the_original_expect_format_is_one_incident_and_none_is_none(self):
        self.assertEqual(lab.expectation("none")["incidents"], [])
        exp = lab.expectation({"kind": "dns_failure", "asns": [64502]})
        self.assertEqual(exp["incidents"], [{"kind": "dns_failure", "asns": [64502]}])
        self.assertEqual((exp["within"], exp["only"], exp["steady"], exp["quiet_after"]), (None, True, False, 0.0))
        exp = lab.expectation({"incidents": [{"kind": "outage"}], "within": "10s", "steady": True,
                               "quiet_after": "12s"})
        self.assertEqual((exp["within"], exp["steady"], exp["quiet_after"]), (10.0, True, 12.0))

    def test_malformed_expectations_and_faults_are_refused_with_the_reason(self):
        with self.assertRaisesRegex(ValueError, "unknown keys \\['kind'\\]"):
            lab.expectation({"incidents": [], "kind": "outage"})
        with self.assertRaisesRegex(ValueError, "each incident needs a kind"):
            lab.expectation({"incidents": [{"asns": [1]}]})
        with self.assertRaisesRegex(ValueError, "steady must be true or false"):
            lab.expectation({"incidents": [{"kind": "outage"}], "steady": "yes"})
        fake = lab.Lab({"probe": "", "collector": "", "vantage": ""})
        self.assertEqual(fake.fault_isps({"isp": "all"}), ["isp1", "isp2", "isp3", "isp4"])
        self.assertEqual(fake.fault_isps({"isp": ["isp2", "isp4"]}), ["isp2", "isp4"])
        with self.assertRaisesRegex(ValueError, "fault needs isp: one of isp1, isp2, isp3, isp4"):
            fake.fault_isps({"isp": "isp9"})
        with self.assertRaisesRegex(ValueError, "path must start with /api/"):
            fake.describe({"http_status": {"isp": "isp3", "path": "/", "status": 503}})
        with self.assertRaisesRegex(ValueError, "status must be an HTTP status code"):
            fake.describe({"http_status": {"isp": "isp3", "path": "/api/x", "status": 42}})
        with self.assertRaisesRegex(ValueError, "percent must be in"):
            fake.apply({"packet_loss": {"isp": "isp2", "percent": 0}}, True)

    def check(self, expect, incidents, watch, stop_s=20.0, interval=5.0):
        """The demo's verdict for one scenario in for [0, stop_s), then a baseline after it."""
        demo_module = load_demo_module()
        demo = object.__new__(demo_module.Demo)
        t0 = 1_700_000_000 * 10**9
        demo.interval = interval
        demo.summary = {"scenarios": {"fault": {"expect": expect, "inject": t0, "remove": t0 + int(stop_s * 1e9)},
                                      "after": {"expect": "none", "inject": t0 + int(60e9),
                                                "remove": t0 + int(80e9)}}}
        demo.watch_lines = [(t0 + int(t * 1e9), line) for t, line in watch]

        def at(seconds):
            return datetime.fromtimestamp((t0 + seconds * 1e9) / 1e9, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

        incs = []
        for n, (kind, opened, resolved, scope) in enumerate(incidents):
            inc = {"id": f"{kind} n={n} @{at(opened)}", "kind": kind, "title": f"{kind} title", "severity": "page",
                   "opened": at(opened), "scope": scope, "evidence": {"browser_reports": []}}
            if resolved is not None:
                inc["resolved"] = at(resolved)
            incs.append(inc)
        return demo.check(incs)[0]

    def test_the_expectation_check_accepts_what_fits_and_names_what_does_not(self):
        expect = {"incidents": [{"kind": "outage", "severity": "page", "asns_at_least": [64501, 64502]},
                                {"kind": "http_error", "asns": [64503], "statuses": [503]}],
                  "within": "10s", "steady": True, "quiet_after": "12s"}
        outage = ("outage", 4, 25, {"asns": [64501, 64502, 64503]})
        error = ("http_error", 6, 24, {"asns": [64503], "statuses": [503]})
        watch = [(7, "[t] OPENED   page outage   down"), (9, "[t] OPENED   page http_error   503"),
                 (27, "[t] RESOLVED page outage   down"), (27, "[t] RESOLVED page http_error   503")]
        v = self.check(expect, [outage, error], watch)
        self.assertTrue(v["ok"], v["problem"])
        self.assertEqual(v["printed_s"], 9.0)
        # Slower than `within`.
        v = self.check(expect, [outage, error], [(12, "[t] OPENED   page outage   down")] + watch[1:])
        self.assertIn("outage printed 12.0 s after the fault (more than 10 s)", v["problem"])
        # A scope that does not fit, a third incident, an incident after the removal.
        v = self.check(expect, [outage, ("http_error", 6, 24, {"asns": [64503, 64501], "statuses": [500]}),
                                ("reachability_loss", 8, 24, {"asns": [64501]}),
                                ("reachability_loss", 25, 30, {"asns": [64502]})], watch)
        for text in ("3 incidents opened while the fault was in, expected 2", "asns [64501, 64503]",
                     "statuses lacks 503", "1 opened within 12 s after the removal: reachability_loss"):
            self.assertIn(text, v["problem"])
        # Flapping: resolved and opened again while the fault was in.
        flapping = watch + [(14, "[t] RESOLVED page outage   down"), (16, "[t] OPENED   page outage   down")]
        v = self.check(expect, [("outage", 4, 14, outage[3]), error], flapping)
        self.assertIn("outage resolved while the fault was still in", v["problem"])
        self.assertIn("outage opened 2 times while the fault was in", v["problem"])
        # Not resolved at all; missing kind.
        v = self.check(expect, [("outage", 4, None, outage[3])], watch)
        self.assertIn("outage not resolved after the fault was removed", v["problem"])
        self.assertIn("no http_error incident", v["problem"])


class LabTeardownTest(unittest.TestCase):
    """A killed demo and the documented cleanup command; Ctrl-C; no root."""

    def start_demo(self):
        out = tempfile.NamedTemporaryFile("w+", prefix="vantage-labtest-", suffix=".log", delete=False)
        self.addCleanup(os.unlink, out.name)
        out_dir = tempfile.mkdtemp(prefix="vantage-labtest-out-")  # the demo keeps its store there
        self.addCleanup(shutil.rmtree, out_dir, True)
        p = subprocess.Popen([sys.executable, DEMO, *BINARIES, "--out", out_dir], stdout=out,
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
