"""Shared helpers for the integration tests: the servers' env.json, running vantage-probe."""
import json
import os
import signal
import subprocess
import tempfile
import time
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "regions", "lab"))
from targets import free_port  # noqa: E402  (ports below the ephemeral range)

BUILD_DIR = os.environ.get("VANTAGE_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build", "dev"))
STATE_DIR = os.environ.get("VANTAGE_IT_STATE", os.path.join(BUILD_DIR, "integration-state"))
PROBE = os.path.join(BUILD_DIR, "probe", "vantage-probe")


def env():
    with open(os.path.join(STATE_DIR, "env.json")) as f:
        return json.load(f)


def write_config(config, directory=None):
    """Writes a probe configuration. JSON is valid YAML, so the dict is dumped as JSON."""
    fd, path = tempfile.mkstemp(suffix=".yaml", dir=directory)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f, indent=2)
    return path


def vantage(**extra):
    v = {"id": "it-probe-1", "region": "lab", "country": "DE", "asn": 64500, "isp": "Lab ISP"}
    v.update(extra)
    return v


def run_once(checks, timeout=60, extra=None):
    """Runs `vantage-probe --once` and returns (exit status, {check id: [results]}, stderr)."""
    config = {"vantage_point": vantage(), "checks": checks}
    if extra:
        config.update(extra)
    path = write_config(config)
    out = path + ".jsonl"
    try:
        p = subprocess.run([PROBE, "--config", path, "--once", "--output", out, "--log-level", "warn"],
                           capture_output=True, text=True, timeout=timeout)
        results = {}
        if os.path.exists(out):
            with open(out) as f:
                for line in f:
                    r = json.loads(line)
                    results.setdefault(r["check"], []).append(r)
        return p.returncode, results, p.stderr
    finally:
        for f in (path, out):
            if os.path.exists(f):
                os.unlink(f)


class Probe:
    """A vantage-probe daemon for tests that need it running (metrics, spool, shutdown)."""

    def __init__(self, config_path, output=None, log=None, log_level="info", env=None):
        cmd = [PROBE, "--config", config_path, "--log-level", log_level]
        if output:
            cmd += ["--output", output]
        self.log = open(log or os.devnull, "a")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, env=env)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=timeout)
        self.log.close()
        return rc


def wait_for(predicate, timeout, interval=0.1, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class IntegrationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(os.path.join(STATE_DIR, "env.json")):
            raise unittest.SkipTest("servers not started (run through ctest, which starts them)")
        cls.env = env()
        cls.ports = cls.env["ports"]
        cls.resolver = cls.env["resolver"]
        cls.ca = cls.env["ca_file"]
