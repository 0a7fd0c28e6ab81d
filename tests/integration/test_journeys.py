"""Journeys against the demo origin (nginx + njs, regions/lab/origin/api.js): the example checkout
and enrollment journeys pass; values extracted in step N reach the origin in step N+1; one trace
id per run, a new span id per step; an injected 500 names the failing step while cleanup still
runs; a latency fault fails the step's max_duration; a secret from ${env:…} leaks nowhere; a run
that passes only on retry is flaky."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.request

from harness import PROBE, IntegrationTest, Probe, free_port, vantage, wait_for, write_config

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
JOURNEYS = os.path.join(ROOT, "regions", "journeys")


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return f.readlines()


class JourneyTest(IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        origin = cls.env["origin"]
        cls.origin_log = os.path.join(origin["dir"], "requests.jsonl")
        cls.password = origin["shop_password"]
        cls.base = f"https://shop.test:{cls.ports['https_valid']}"

    def setUp(self):
        self.set_faults({})
        self.log_offset = os.path.getsize(self.origin_log) if os.path.exists(self.origin_log) else 0

    def tearDown(self):
        self.set_faults({})

    def set_faults(self, faults):
        req = urllib.request.Request(f"http://127.0.0.1:{self.ports['http']}/_faults",
                                     data=json.dumps(faults).encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def origin_requests(self):
        """The origin's log lines written since this test started."""
        with open(self.origin_log) as f:
            f.seek(self.log_offset)
            return [json.loads(line) for line in f if line.strip()]

    def journey(self, name, check_id=None, **extra):
        check = {"id": check_id or name, "kind": "journey", "timeout": "20s",
                 "include": os.path.join(JOURNEYS, name + ".yaml"),
                 "variables": {"base": self.base},
                 "resolvers": [self.resolver], "tls": {"ca_file": self.ca}}
        check.update(extra)
        return check

    def run_journeys(self, checks, log_level="warn", env=None):
        config = write_config({"vantage_point": vantage(), "checks": checks})
        out = config + ".jsonl"
        environment = dict(os.environ, SHOP_PROBE_PASSWORD=self.password)
        environment.update(env or {})
        try:
            p = subprocess.run([PROBE, "--config", config, "--once", "--output", out, "--log-level", log_level],
                               capture_output=True, text=True, timeout=90, env=environment)
            with open(out) as f:
                results = {r["check"]: r for r in map(json.loads, f)}
            return p.returncode, results, p.stderr
        finally:
            for f in (config, out):
                if os.path.exists(f):
                    os.unlink(f)

    def by_trace(self, trace_id):
        return [e for e in self.origin_requests() if (e.get("traceparent") or "").split("-")[1:2] == [trace_id]]

    def test_checkout_and_enrollment_pass_and_carry_extracted_values(self):
        rc, results, stderr = self.run_journeys([self.journey("checkout"), self.journey("enrollment")])
        self.assertEqual(rc, 0, stderr)
        for name, steps in (("checkout", ["login", "browse", "add-to-cart", "checkout", "confirm-order",
                                          "cancel-order", "delete-cart"]),
                            ("enrollment", ["register", "sign-in", "enroll", "verify-enrollment",
                                            "delete-account"])):
            r = results[name]
            self.assertEqual(r["kind"], "journey_result")
            self.assertEqual(r["outcome"]["type"], "ok", r["outcome"])
            self.assertEqual([s["name"] for s in r["steps"]], steps)
            self.assertTrue(all(s["outcome"]["type"] == "ok" and not s.get("skipped") for s in r["steps"]))
            self.assertGreater(r["phases_ms"]["total"], 0)
            # One trace id per run, a distinct span id per step, the check id in tracestate.
            seen = self.by_trace(r["trace_id"])
            self.assertEqual(len(seen), len(steps), seen)
            spans = [e["traceparent"].split("-")[2] for e in seen]
            self.assertEqual(len(set(spans)), len(steps))
            self.assertEqual(sorted(spans), sorted(s["span_id"] for s in r["steps"]))
            self.assertTrue(all(e["tracestate"] == "vantage=" + name for e in seen))

        shop = self.by_trace(results["checkout"]["trace_id"])
        by_endpoint = {e["endpoint"]: e for e in shop}
        # Step 1's token (response of login) is presented by add-to-cart (bearer) ...
        token = by_endpoint["login"]["token_issued"]
        self.assertEqual(by_endpoint["cart"]["token"], token)
        self.assertEqual(by_endpoint["cart"]["auth"], "bearer")
        # ... confirm-order carries no Authorization header: the run's cookie jar sends the session.
        self.assertEqual(by_endpoint["order"]["auth"], "cookie")
        self.assertEqual(by_endpoint["order"]["token"], token)
        # add-to-cart's cart id is in checkout's URL; checkout's order id in confirm and cancel.
        cart_id = by_endpoint["cart"]["cart_id"]
        order_id = by_endpoint["checkout"]["order_id"]
        self.assertEqual(by_endpoint["checkout"]["uri"], f"/api/cart/{cart_id}/checkout")
        self.assertEqual(by_endpoint["order"]["uri"], f"/api/orders/{order_id}")
        self.assertEqual(by_endpoint["cancel-order"]["uri"], f"/api/orders/{order_id}")
        self.assertEqual(by_endpoint["clear-cart"]["uri"], f"/api/cart/{cart_id}")
        # The result names the variables each step set, never their values.
        steps = {s["name"]: s for s in results["checkout"]["steps"]}
        self.assertEqual(steps["add-to-cart"]["extracted"], ["cart_id"])
        self.assertNotIn(cart_id, json.dumps(results["checkout"]["steps"][2]))

        learn = {e["endpoint"]: e for e in self.by_trace(results["enrollment"]["trace_id"])}
        self.assertEqual(learn["enroll"]["token"], learn["signin"]["token_issued"])
        self.assertEqual(learn["signin"]["user_id"], learn["register"]["user_id"])
        self.assertEqual(learn["delete-account"]["status"], 200)

    def test_injected_500_names_the_step_and_cleanup_still_runs(self):
        self.set_faults({"error_rate": {"checkout": 1}})
        rc, results, _ = self.run_journeys([self.journey("checkout")])
        self.assertEqual(rc, 1)
        r = results["checkout"]
        self.assertEqual(r["outcome"]["type"], "http.error")
        self.assertEqual(r["outcome"]["step"], "checkout")
        self.assertEqual(r["outcome"]["step_index"], 3)
        self.assertEqual(r["outcome"]["status_code"], 500)
        steps = {s["name"]: s for s in r["steps"]}
        self.assertEqual(steps["checkout"]["status_code"], 500)
        self.assertTrue(steps["confirm-order"]["skipped"])
        # No order was placed, so cancel-order has nothing to cancel; delete-cart runs.
        self.assertTrue(steps["cancel-order"]["skipped"])
        self.assertIn("order_id", steps["cancel-order"]["outcome"]["detail"])
        self.assertEqual(steps["delete-cart"]["outcome"]["type"], "ok")
        seen = self.by_trace(r["trace_id"])
        self.assertEqual([e["endpoint"] for e in seen], ["login", "product", "cart", "checkout", "clear-cart"])
        self.assertEqual(seen[3]["status"], 500)
        self.assertEqual(seen[4]["status"], 200)

    def test_waf_403_fails_the_first_step(self):
        self.set_faults({"deny_prefix": "127.0.0.0/8"})
        rc, results, _ = self.run_journeys([self.journey("enrollment")])
        self.assertEqual(rc, 1)
        r = results["enrollment"]
        self.assertEqual((r["outcome"]["type"], r["outcome"]["step"], r["outcome"]["status_code"]),
                         ("http.error", "register", 403))
        # delete-account needs the token sign-in would have extracted: it is skipped, not failed.
        self.assertTrue(all(s.get("skipped") for s in r["steps"][1:]))

    def test_latency_fails_max_duration(self):
        self.set_faults({"latency_ms": {"product": 700}})
        check = {"id": "slow-browse", "kind": "journey", "resolvers": [self.resolver],
                 "tls": {"ca_file": self.ca}, "variables": {"base": self.base},
                 "steps": [{"name": "browse", "request": {"url": "${base}/api/products/BOOK-1"},
                            "expect": {"status": [200], "max_duration": "300ms"}}]}
        rc, results, _ = self.run_journeys([check])
        r = results["slow-browse"]
        self.assertEqual(r["outcome"]["type"], "assertion.failed")
        self.assertEqual(r["outcome"]["assertion"], "max_duration")
        self.assertGreaterEqual(r["steps"][0]["phases_ms"]["total"], 700)

    def test_fail_once_then_pass_is_flaky(self):
        self.set_faults({"fail_next": {"checkout": 1}})
        rc, results, _ = self.run_journeys([self.journey("checkout", retries={"count": 1, "backoff": "200ms"})])
        self.assertEqual(rc, 0)
        r = results["checkout"]
        self.assertEqual(r["outcome"]["type"], "ok")
        self.assertTrue(r["flaky"])
        self.assertEqual(r["attempts"], 2)
        self.assertEqual(len(r["failed_attempts"]), 1)
        failed = r["failed_attempts"][0]
        self.assertEqual((failed["type"], failed["step"], failed["status_code"]), ("http.error", "checkout", 500))
        checkouts = [e for e in self.origin_requests() if e["endpoint"] == "checkout"]
        self.assertEqual([e["status"] for e in checkouts], [500, 200])

    def test_secret_from_env_appears_in_no_log_result_or_metric(self):
        d = tempfile.mkdtemp(prefix="vantage-journey-secret-")
        try:
            port = free_port()
            log, out = os.path.join(d, "probe.log"), os.path.join(d, "results.jsonl")
            # The secret is sent in a JSON body, a header and a URL path; the second step fails
            # (404 for that path), so its URL is reported in the result, redacted.
            secret = "${env:SHOP_PROBE_PASSWORD}"
            checks = [{
                "id": "secret-journey", "kind": "journey", "interval": "1s", "timeout": "900ms",
                "resolvers": [self.resolver], "tls": {"ca_file": self.ca}, "variables": {"base": self.base},
                "steps": [{"name": "login",
                           "request": {"method": "POST", "url": "${base}/api/login",
                                       "headers": {"X-Password": secret},
                                       "json": {"user": "probe", "password": secret}},
                           "expect": {"status": [200]}},
                          {"name": "lookup", "request": {"url": "${base}/api/products/" + secret}}]}]
            config = write_config({"vantage_point": vantage(), "metrics": {"listen": f"127.0.0.1:{port}"},
                                   "checks": checks}, d)
            probe = Probe(config, output=out, log=log, log_level="debug",
                          env=dict(os.environ, SHOP_PROBE_PASSWORD=self.password))
            try:
                wait_for(lambda: len(read_lines(out)) >= 2, 20, what="two results")
                metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            finally:
                self.assertEqual(probe.stop(), 0)
            with open(out) as f:
                results = f.read()
            with open(log) as f:
                logs = f.read()
            first = json.loads(results.splitlines()[0])
            self.assertEqual(first["steps"][0]["outcome"]["type"], "ok")  # the secret was accepted
            self.assertEqual((first["outcome"]["step"], first["outcome"]["status_code"]), ("lookup", 404))
            self.assertEqual(first["steps"][1]["url"], self.base + "/api/products/[redacted]")
            self.assertIn('step="login"', metrics)
            self.assertIn("probe.started", logs)
            for where, text in (("results", results), ("logs", logs), ("metrics", metrics)):
                self.assertNotIn(self.password, text, f"the secret leaked into the {where}")
            # And the secret was really sent: the origin logged the login attempt (body redacted by it).
            self.assertTrue(any(e["endpoint"] == "login" and e["status"] == 200 for e in self.origin_requests()))
        finally:
            shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main()
