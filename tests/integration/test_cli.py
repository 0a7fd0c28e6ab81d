"""The binary's contract: exit status 2 and a file:line:col message on a config error; graceful
shutdown on SIGTERM within the configured grace period, with runs in flight."""
import os
import signal
import subprocess
import tempfile
import time
import unittest

from harness import PROBE, IntegrationTest, Probe, write_config

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "..", "config")


class Cli(IntegrationTest):
    def test_config_error_exits_2_with_position(self):
        p = subprocess.run([PROBE, "--config", "invalid-unknown-kind.yaml", "--validate"], cwd=CONFIG_DIR,
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr.strip(), 'vantage-probe: configuration error: invalid-unknown-kind.yaml:3:22: '
                                           'checks[0].kind: unknown check kind "icmp" (known: http, dns, tcp, tls, journey, bgp, path)')

    def test_config_error_also_exits_2_when_running(self):
        p = subprocess.run([PROBE, "--config", "invalid-timeout-longer-than-interval.yaml", "--once"],
                           cwd=CONFIG_DIR, capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)

    def test_valid_config_validates(self):
        env = dict(os.environ, VANTAGE_PROBE_TOKEN="x", SHOP_PROBE_PASSWORD="y")
        p = subprocess.run([PROBE, "--config", os.path.join(CONFIG_DIR, "..", "..", "regions", "eu-west.yaml"),
                            "--validate"], capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        # The journeys' password is a required secret: without it the config names where it is used.
        del env["SHOP_PROBE_PASSWORD"]
        p = subprocess.run([PROBE, "--config", os.path.join(CONFIG_DIR, "..", "..", "regions", "eu-west.yaml"),
                            "--validate"], capture_output=True, text=True, env=env)
        self.assertEqual(p.returncode, 2)
        self.assertRegex(p.stderr, r"regions/journeys/checkout\.yaml:\d+:\d+: steps\[0\]\.request\.json\.password: "
                                   r"environment variable SHOP_PROBE_PASSWORD is not set")

    def test_sigterm_stops_within_the_grace_period(self):
        with tempfile.TemporaryDirectory() as d:
            config = write_config({
                "vantage_point": {"id": "it-shutdown"},
                "scheduler": {"shutdown_grace": "1s"},
                "defaults": {"interval": "10s", "timeout": "9s"},
                "checks": [{"id": f"slow-{i}", "kind": "http",
                            "url": f"http://127.0.0.1:{self.ports['blackhole']}/"} for i in range(20)],
            }, d)
            probe = Probe(config, log=os.path.join(d, "log"))
            time.sleep(2.5)  # every check started (first runs spread over 10 s: some in flight)
            t0 = time.time()
            rc = probe.stop(signal.SIGTERM, timeout=15)
            took = time.time() - t0
            self.assertEqual(rc, 0)
            self.assertLess(took, 1 + 3, f"took {took:.1f}s")
            with open(os.path.join(d, "log")) as f:
                log = f.read()
            self.assertIn('"event":"scheduler.stopping"', log)
            self.assertIn('"event":"probe.stopped"', log)


if __name__ == "__main__":
    unittest.main()
