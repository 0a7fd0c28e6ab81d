"""Detectors and incidents on seeded scenario streams (`vantage generate` writes them into a
collector store through the collector's own SQLite schema): every fault scenario gives exactly
one incident, of the right kind and scope, opened during the fault and resolved after it; the
clean baseline gives none. Several seeds, so that a detector tuned to one noise pattern fails."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_DIR = os.environ.get("VANTAGE_BUILD_DIR", os.path.join(HERE, "..", "..", "build", "dev"))
VANTAGE = os.path.join(BUILD_DIR, "analysis", "vantage")
SEEDS = (1, 2, 3)


def ts(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Scenarios(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vantage-analysis-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def run_scenario(self, scenario, seed, hours=4, users_per_minute=100):
        db = os.path.join(self.dir, f"{scenario}-{seed}.db")
        g = subprocess.run([VANTAGE, "generate", "--db", db, "--scenario", scenario, "--seed", str(seed),
                            "--hours", str(hours), "--users-per-minute", str(users_per_minute)],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(g.returncode, 0, g.stderr)
        fault = None
        for line in g.stdout.splitlines():
            if line.startswith("fault "):
                words = line.split()
                fault = (ts(words[1]), ts(words[3].rstrip(":")))
        p = subprocess.run([VANTAGE, "incidents", "--db", db, "--json"], capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout), fault

    def one_incident(self, scenario, kind, check_scope, open_within=600):
        for seed in SEEDS:
            with self.subTest(seed=seed):
                incidents, fault = self.run_scenario(scenario, seed)
                self.assertEqual(len(incidents), 1, json.dumps(incidents, indent=1))
                inc = incidents[0]
                self.assertEqual(inc["kind"], kind)
                self.assertEqual(inc["status"], "resolved")
                # Opened within 10 minutes of the fault's start (or open_within seconds), resolved
                # within 40 of its end.
                self.assertGreaterEqual(ts(inc["opened"]), fault[0])
                self.assertLessEqual(ts(inc["opened"]), fault[0] + open_within)
                self.assertGreaterEqual(ts(inc["resolved"]), fault[1])
                self.assertLessEqual(ts(inc["resolved"]), fault[1] + 2400)
                self.assertEqual(inc["runbook"], f"docs/runbooks/{kind}.md")
                self.assertTrue(os.path.exists(os.path.join(HERE, "..", "..", inc["runbook"])))
                check_scope(inc)

    def test_clean_baseline_gives_no_incident(self):
        for seed in SEEDS:
            with self.subTest(seed=seed):
                incidents, fault = self.run_scenario("baseline", seed)
                self.assertIsNone(fault)
                self.assertEqual(incidents, [])

    def test_48_hours_of_realistic_noise_give_no_incident(self):
        # Two days and nights of diurnal traffic in each network's local time, single probe
        # timeouts, 503s, slow runs and skipped minutes, resolver timeouts, users' 404/502s,
        # resets and DNS failures: nothing of it is an incident. Fewer users per minute than the
        # fault scenarios (the nights are thinner, the test shorter).
        for seed in SEEDS:
            with self.subTest(seed=seed):
                incidents, fault = self.run_scenario("baseline", seed, hours=48, users_per_minute=25)
                self.assertIsNone(fault)
                self.assertEqual(incidents, [], json.dumps(incidents, indent=1))

    def test_global_outage_is_one_outage_page_for_the_host(self):
        def scope(inc):
            self.assertEqual(inc["severity"], "page")
            self.assertEqual(inc["id"].split(" @")[0], "outage target=shop.example.com")
            self.assertEqual(inc["scope"]["targets"], ["shop.example.com"])
            self.assertEqual(sorted(inc["scope"]["checks"]), ["checkout", "shop-home"])
            self.assertEqual(sorted(inc["scope"]["asns"]), [64501, 64502, 64503, 64504])
            self.assertEqual(list(inc["evidence"]["failure_types"]), ["tcp.timed_out"])
            self.assertEqual(inc["evidence"]["failing_vantage_points"], 8)
            self.assertEqual(inc["evidence"]["vantage_points"], 8)
            self.assertEqual(inc["evidence"]["networks"], 4)
            self.assertEqual(inc["evidence"]["failure_ratio"], 1.0)
            # The users agree, from every network (AS64505's users included).
            self.assertGreater(inc["evidence"]["browser_reports"].get("tcp.timed_out", 0), 1000)
        # Within two probe intervals and the tracker's two evaluations.
        self.one_incident("global-outage", "outage", scope, open_within=180)

    def test_partial_loss_in_one_asn_is_one_degraded_ticket(self):
        def scope(inc):
            self.assertEqual(inc["severity"], "ticket")
            self.assertEqual(inc["id"].split(" @")[0], "degraded asn=64504")
            self.assertEqual(inc["scope"]["asns"], [64504])
            self.assertEqual(inc["scope"]["isps"], ["Example DSL"])
            self.assertEqual(sorted(inc["evidence"]["failure_types"]), ["slow", "tcp.timed_out"])
            self.assertEqual(inc["evidence"]["failing_vantage_points"], 2)
            self.assertGreaterEqual(inc["evidence"]["bad_share"], 0.2)
            self.assertLess(inc["evidence"]["others_bad_share"], 0.05)
            self.assertGreater(inc["evidence"]["p95_ms"], 2000)
        # The share is taken over the degraded window (6 windows, 30 minutes): at 30 % bad runs it
        # reaches 20 % after about 20 minutes of the fault.
        self.one_incident("degraded", "degraded", scope, open_within=1800)

    def test_users_only_asn_is_one_reachability_loss_from_nel_alone(self):
        def scope(inc):
            self.assertEqual(inc["severity"], "page")
            self.assertEqual(inc["id"].split(" @")[0], "reachability_loss asn=64505")
            self.assertEqual(inc["scope"]["asns"], [64505])
            self.assertEqual(inc["scope"]["isps"], ["Example Telecom"])
            self.assertEqual(inc["scope"]["countries"], ["FR"])
            # No vantage point there: users' NEL is the whole evidence.
            self.assertEqual(inc["evidence"]["failure_types"], {})
            self.assertEqual(inc["evidence"]["failing_vantage_points"], 0)
            self.assertGreater(inc["evidence"]["browser_reports"].get("tcp.timed_out", 0), 50)
            self.assertGreater(inc["evidence"]["users_failure_share"], 0.2)
            self.assertLess(inc["evidence"]["users_baseline_share"], 0.01)
            self.assertGreater(inc["evidence"]["users_reports"], 50)
        self.one_incident("users-only-asn", "reachability_loss", scope)

    def test_isp_blackhole_is_one_reachability_loss_in_that_asn(self):
        def scope(inc):
            self.assertEqual(inc["severity"], "page")
            self.assertEqual(inc["scope"]["asns"], [64502])
            self.assertEqual(inc["scope"]["isps"], ["Example Cable"])
            self.assertEqual(sorted(inc["scope"]["targets"]),
                             ["https://shop.example.com/", "https://shop.example.com/api/checkout"])
            self.assertEqual(list(inc["evidence"]["failure_types"]), ["tcp.timed_out"])
            self.assertEqual(inc["evidence"]["failing_vantage_points"], 2)
            self.assertEqual(inc["evidence"]["vantage_points"], 8)
            # Corroborated by real users in the same ASN, and by the route leak of the origin's prefix.
            self.assertGreater(inc["evidence"]["browser_reports"].get("tcp.timed_out", 0), 50)
            self.assertEqual(inc["evidence"]["bgp_alerts"], ["route_leak 203.0.113.0/24 (leaker AS64510)"])
        self.one_incident("isp-blackhole", "reachability_loss", scope)

    def test_4xx_spike_in_one_country_is_one_http_error_on_that_endpoint(self):
        def scope(inc):
            self.assertEqual(inc["severity"], "ticket")
            self.assertEqual(inc["scope"]["endpoints"], ["/api/checkout"])
            self.assertEqual(inc["scope"]["countries"], ["FR"])
            self.assertEqual(inc["scope"]["asns"], [64505])
            self.assertGreater(inc["evidence"]["share"], 0.15)
            self.assertLess(inc["evidence"]["baseline_share"], 0.02)
        self.one_incident("http-4xx-spike", "http_error", scope)

    def test_nxdomain_from_one_resolver_is_one_dns_failure(self):
        def scope(inc):
            self.assertEqual(inc["severity"], "page")
            self.assertEqual(inc["id"].split(" @")[0], "dns_failure resolver=192.0.2.13")
            self.assertEqual(inc["scope"]["asns"], [64503])
            # The answers are NXDOMAIN (a resolver timeout of the noise may join them).
            types = inc["evidence"]["failure_types"]
            self.assertEqual(max(types, key=types.get), "dns.name_not_resolved")
            self.assertGreater(inc["evidence"]["browser_reports"].get("dns.name_not_resolved", 0), 50)
            self.assertEqual(inc["evidence"]["bgp_alerts"], [])
        self.one_incident("dns-nxdomain", "dns_failure", scope)

    def test_slow_checkout_is_one_slo_burn_of_the_journey(self):
        def scope(inc):
            self.assertEqual(inc["severity"], "page")  # escalated to the fast burn
            self.assertEqual(inc["scope"]["targets"], ["https://shop.example.com/api/checkout"])
            self.assertGreaterEqual(inc["evidence"]["burn_rate"], 14.4)
            self.assertGreater(inc["evidence"]["p95_ms"], 2000)
        self.one_incident("slow-checkout", "slo_burn", scope)

    def test_a_bad_time_range_is_refused(self):
        db = os.path.join(self.dir, "empty.db")
        subprocess.run([VANTAGE, "generate", "--db", db, "--hours", "2"], check=True, capture_output=True)
        p = subprocess.run([VANTAGE, "incidents", "--db", db, "--from", "yesterday"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn('--from: "yesterday" is neither an RFC 3339 time', p.stderr)

    def test_a_stopped_vantage_point_is_one_silent_ticket_and_nothing_else(self):
        # us-east-64503-1 sends no heartbeat and no result during the fault; its targets are fine
        # and its network's other vantage point keeps reporting: no reachability loss, no outage,
        # no degradation from its missing runs.
        def scope(inc):
            self.assertEqual(inc["severity"], "ticket")
            self.assertEqual(inc["id"].split(" @")[0], "vantage_point_silent probe=us-east-64503-1")
            self.assertEqual(inc["scope"]["probes"], ["us-east-64503-1"])
            self.assertEqual(inc["scope"]["asns"], [64503])
            self.assertEqual(inc["scope"]["isps"], ["Example Mobile"])
            self.assertEqual(inc["evidence"]["heartbeat_interval_s"], 30.0)
            # Its last heartbeat was 30 s before the fault: silent 3 intervals later, back at the
            # fault's end (its first heartbeat).
            self.assertEqual(ts(inc["opened"]), ts(inc["evidence"]["last_heartbeat"]) + 90)
        self.one_incident("vantage-point-silent", "vantage_point_silent", scope, open_within=60)


if __name__ == "__main__":
    unittest.main()
