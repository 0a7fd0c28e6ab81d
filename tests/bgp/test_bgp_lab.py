"""The BGP lab end to end (issue: hijack and route leak detected live, resolved on withdrawal):
ExaBGP in one network namespace announces routes over eBGP to FRR's bgpd in another; bgpd
streams BMP to a real vantage-probe whose `bgp` check listens on 127.0.0.1 inside the router's
namespace. Needs root; the namespaces, veth pair and processes are created and removed here
(regions/lab/bgp_lab.py)."""
import json
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "regions", "lab"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import bgp_lab  # noqa: E402
from harness import PROBE, wait_for  # noqa: E402
from test_bgp_scan import AS_REL, LAB_PREFIXES  # noqa: E402

LEGIT_22 = ("208.65.152.0/22", [65000, 3356, 36561])
HIJACK = ("208.65.153.0/24", [65000, 3491, 17557])  # 2008: AS17557 under YouTube's AS36561
CLEAN_20 = ("104.20.0.0/20", [65000, 3356, 13335])
LEAK_20 = ("104.20.0.0/20", [65000, 701, 396531, 33154, 3356, 13335])  # 2019: AS396531 between two providers


class BgpLabTest(unittest.TestCase):
    def setUp(self):
        missing = bgp_lab.requirements()
        if missing:
            self.fail(missing)
        self.lab = bgp_lab.BgpLab(name=f"vbgp{os.getpid() % 10000}")
        self.addCleanup(self.teardown_lab)
        self.lab.create()
        d = self.lab.dir
        for name, text in (("prefixes.yml", LAB_PREFIXES), ("as-rel.txt", AS_REL)):
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        self.out = os.path.join(d, "probe-out.jsonl")
        with open(os.path.join(d, "probe.yaml"), "w") as f:
            json.dump({"vantage_point": {"id": "lab-bgp-1", "region": "lab"},
                       "checks": [{"id": "own-prefixes", "kind": "bgp", "interval": "5s",
                                   "prefixes": "prefixes.yml", "as_rel": "as-rel.txt",
                                   "bmp": {"listen": f"127.0.0.1:{bgp_lab.BMP_PORT}"}}]}, f)
        self.probe = self.lab.spawn("probe", self.lab.in_router(PROBE, "--config", os.path.join(d, "probe.yaml"),
                                                                "--output", self.out))
        wait_for(lambda: "bgp.bmp_listening" in self.lab.log("probe"), 10, what="the probe's BMP listener")
        self.lab.start_router()
        self.lab.start_speaker()
        wait_for(lambda: "bgp.bmp_session_up" in self.lab.log("probe"), 30,
                 what="FRR's BMP session to the probe")
        wait_for(self.lab.established, 60, what="the eBGP session ExaBGP -> FRR")

    def teardown_lab(self):
        namespaces = (self.lab.speaker_ns, self.lab.router_ns)
        if self.probe.poll() is None:
            self.probe.terminate()
        rc = self.probe.wait(timeout=30)
        self.lab.stop()
        for ns in namespaces:
            self.assertFalse(os.path.exists(f"/run/netns/{ns}"), f"namespace {ns} left behind")
        self.assertEqual(rc, 0, self.lab.log("probe")[-2000:])

    def records(self, kind):
        if not os.path.exists(self.out):
            return []
        with open(self.out) as f:
            return [r for r in (json.loads(line) for line in f if line.strip()) if r["kind"] == kind]

    def alert(self, alert, status, **fields):
        for a in self.records("bgp_alert"):
            if a["alert"] == alert and a["status"] == status and all(a.get(k) == v for k, v in fields.items()):
                return a
        return None

    def wait_alert(self, alert, status, timeout=20, **fields):
        start = time.monotonic()
        a = wait_for(lambda: self.alert(alert, status, **fields), timeout, what=f"{status} {alert} {fields}")
        return a, time.monotonic() - start

    def test_hijack_and_leak_are_detected_live_and_resolve_when_withdrawn(self):
        self.lab.announce(*LEGIT_22)
        self.lab.announce(*CLEAN_20)
        wait_for(lambda: len([e for e in self.records("route_event") if e["event"] == "announce"]) >= 2, 20,
                 what="the legitimate announcements over BMP")
        time.sleep(0.5)
        self.assertEqual(self.records("bgp_alert"), [], "legitimate routes raised alerts")

        self.lab.announce(*HIJACK, extra="community [ 3491:100 ]")
        self.lab.announce(*LEAK_20)
        hijack, hijack_s = self.wait_alert("sub_prefix_hijack", "open", prefix="208.65.153.0/24")
        self.assertEqual((hijack["origin"], hijack["expected"], hijack["monitored_prefix"]),
                         (17557, [36561], "208.65.152.0/22"))
        leak, leak_s = self.wait_alert("route_leak", "open", prefix="104.20.0.0/20")
        self.assertEqual((leak["leaker"], leak["segment"]), (396531, [33154, 396531, 701]))
        event = next(e for e in self.records("route_event") if e.get("prefix") == "208.65.153.0/24")
        self.assertEqual((event["collector"], event["router_name"], event["peer"], event["origin"], event["communities"]),
                         ("127.0.0.1", "vantage-lab-frr", {"ip": "192.0.2.1", "asn": 65000}, 17557, ["3491:100"]))
        # The AS path as FRR 8.4 reports it pre-policy: its own AS first, then ExaBGP's path.
        self.assertEqual(event["path"], [65003, *HIJACK[1]])
        print(f"\n  detection: hijack {hijack_s:.2f} s, leak {leak_s:.2f} s after the announcement",
              file=sys.stderr)

        self.lab.withdraw(HIJACK[0])
        self.lab.withdraw(LEAK_20[0])
        resolved, resolve_s = self.wait_alert("sub_prefix_hijack", "resolved", alert_key=hijack["alert_key"])
        self.wait_alert("route_leak", "resolved", alert_key=leak["alert_key"])
        # The leaked path was the only path of 104.20.0.0/20: its withdrawal is a visibility loss,
        # which the clean path's return ends.
        self.wait_alert("visibility_loss", "open", prefix="104.20.0.0/20")
        self.lab.announce(*CLEAN_20)
        self.wait_alert("visibility_loss", "resolved", prefix="104.20.0.0/20")
        time.sleep(0.5)
        opened = sorted(a["alert"] for a in self.records("bgp_alert") if a["status"] == "open")
        closed = sorted(a["alert"] for a in self.records("bgp_alert") if a["status"] == "resolved")
        self.assertEqual(opened, ["route_leak", "sub_prefix_hijack", "visibility_loss"])
        self.assertEqual(closed, opened)
        print(f"  resolution: {resolve_s:.2f} s after the withdrawal", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
