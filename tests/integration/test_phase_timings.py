"""The probe's phase timings agree with `curl -w` on the same target.

Tolerance (documented in docs/failure-mapping.md#phase-timings): each phase's median over 7 runs
is within max(15 ms, 25 % of curl's value) of curl's median. Both use libcurl underneath, but the
probe drives it through its own event loop, resolves with c-ares and adds its own bookkeeping;
this test catches a phase computed from the wrong pair of timestamps or a loop that adds delay.
"""
import statistics
import subprocess
import unittest

from harness import IntegrationTest, run_once

RUNS = 7


class PhaseTimings(IntegrationTest):
    def curl_phases(self, url, port):
        fmt = "%{time_namelookup} %{time_connect} %{time_appconnect} %{time_pretransfer} %{time_starttransfer} %{time_total}"
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "--http1.1", "--cacert", self.ca,
                              "--resolve", f"shop.test:{port}:127.0.0.1", "-w", fmt, url],
                             capture_output=True, text=True, check=True).stdout.split()
        dns, connect, app, pre, start, total = (float(x) * 1000 for x in out)
        return {"connect": connect - dns, "tls": app - connect, "ttfb": start - pre, "transfer": total - start}

    def probe_phases(self, url):
        status, results, stderr = run_once([{"id": "t", "kind": "http", "url": url, "resolvers": [self.resolver],
                                             "http_version": "1.1", "tls": {"ca_file": self.ca}}])
        r = results["t"][0]
        self.assertEqual(r["outcome"]["type"], "ok", r)
        return r["phases_ms"]

    def compare(self, path):
        port = self.ports["https_valid"]
        url = f"https://shop.test:{port}{path}"
        curl = [self.curl_phases(url, port) for _ in range(RUNS)]
        probe = [self.probe_phases(url) for _ in range(RUNS)]
        report = []
        for phase in ("connect", "tls", "ttfb", "transfer"):
            c = statistics.median(x[phase] for x in curl)
            p = statistics.median(x[phase] for x in probe)
            tolerance = max(15.0, 0.25 * c)
            report.append(f"{phase}: probe {p:.2f} ms, curl {c:.2f} ms, tolerance {tolerance:.1f} ms")
            self.assertLessEqual(abs(p - c), tolerance, "\n".join(report))
        print(f"\n{path}:\n  " + "\n  ".join(report))

    def test_ttfb_of_a_slow_backend(self):
        self.compare("/slow")

    def test_transfer_of_a_large_body(self):
        self.compare("/big")


if __name__ == "__main__":
    unittest.main()
