"""vantage-probe's SIGHUP reload and delivery you can trust, with the real binary and a real
vantage-collector on 127.0.0.1:

- a broken file keeps the old checks running and logs the loader's exact message;
- a changed file adds, removes and changes checks while an untouched check's results keep their
  schedule (no interval missing) and the spool is only appended to (same segment files, same
  cursor), every result arriving once the collector is up;
- token rotation with two tokens valid together on the collector: zero rejected uploads;
- a wrong token logs the collector's status and error text;
- `--once` with an unreachable collector exits 3; a URL without the results path fails
  `--validate` naming the key.

No server fixture: the checks are TCP connects to closed ports on 127.0.0.1 (a result per run,
at once)."""
import datetime
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

from collector_harness import Collector
from harness import PROBE, free_port, wait_for

INTERVAL = 0.2  # seconds, every check here but "keep"
KEEP_INTERVAL = 0.5  # the untouched check of the reload test


def parse_time(text):
    """RFC 3339 with up to 9 fractional digits and Z -> Unix seconds (float)."""
    base, _, frac = text.rstrip("Z").partition(".")
    t = datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return t.timestamp() + (float("0." + frac) if frac else 0.0)


def tcp_check(check_id, port, **extra):
    c = {"id": check_id, "kind": "tcp", "host": "127.0.0.1", "port": port}
    c.update(extra)
    return c


class ProbeReload(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vantage-reload-it-")
        self.config_path = os.path.join(self.dir, "probe.yaml")
        self.output = os.path.join(self.dir, "results.jsonl")
        self.log_path = os.path.join(self.dir, "probe.log")
        self.spool = os.path.join(self.dir, "spool")
        self.metrics_port = free_port()
        self.token_file = os.path.join(self.dir, "probe.token")
        self.write_token(self.token_file, "token-old-0123456789")
        self.proc = None
        self.collector = None

    def tearDown(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.collector:
            self.collector.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def write_token(path, token):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(token + "\n")
        os.replace(tmp, path)

    def config(self, checks, collector_port=None, **collector_extra):
        cfg = {
            "vantage_point": {"id": "it-reload", "region": "lab"},
            "metrics": {"listen": f"127.0.0.1:{self.metrics_port}"},
            "scheduler": {"shutdown_grace": "1s"},
            "defaults": {"interval": f"{int(INTERVAL * 1000)}ms", "timeout": "150ms"},
            "checks": checks,
        }
        if collector_port:
            cfg["collector"] = {"url": f"http://127.0.0.1:{collector_port}/v1/results",
                                "token_file": self.token_file, "spool_dir": self.spool,
                                "flush_interval": "100ms", "heartbeat_interval": "0s",
                                "backoff": {"initial": "100ms", "max": "300ms"}}
            cfg["collector"].update(collector_extra)
        return cfg

    def write_config(self, cfg):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(cfg, f, indent=2)  # JSON is YAML
        os.replace(tmp, self.config_path)

    def start_probe(self, log_level="info"):
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([PROBE, "--config", self.config_path, "--output", self.output,
                                      "--log-level", log_level], stdout=self.log, stderr=self.log)
        wait_for(lambda: self.log_lines("probe.started") or self.exited(), 10, what="the probe to start")
        self.assertIsNone(self.proc.poll(), self.log_text())

    def exited(self):
        return self.proc.poll() is not None

    def stop_probe(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=30)
        self.log.close()
        return rc

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def log_lines(self, event):
        out = []
        with open(self.log_path) as f:
            for line in f:
                if f'"event":"{event}"' in line:
                    out.append(json.loads(line))
        return out

    def results(self):
        if not os.path.exists(self.output):
            return []
        out = []
        with open(self.output) as f:
            for line in f:
                if line.endswith("\n"):
                    out.append(json.loads(line))
        return out

    def by_check(self):
        checks = {}
        for r in self.results():
            checks.setdefault(r["check"], []).append(r)
        return checks

    def count(self, check_id):
        return len(self.by_check().get(check_id, []))

    def metrics(self):
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def validate_error(self):
        """The loader's message for the file as it is now (what --validate prints)."""
        p = subprocess.run([PROBE, "--config", self.config_path, "--validate"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        prefix = "vantage-probe: configuration error: "
        self.assertTrue(p.stderr.startswith(prefix), p.stderr)
        return p.stderr[len(prefix):].rstrip("\n")

    def sighup_and_wait(self, event):
        before = len(self.log_lines(event))
        sent = time.time()
        self.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(self.log_lines(event)) > before or self.exited(), 10, what=event)
        self.assertIsNone(self.proc.poll(), "the probe died on SIGHUP: " + self.log_text()[-2000:])
        return sent, self.log_lines(event)[-1]

    def spool_state(self):
        segments = {n: os.path.getsize(os.path.join(self.spool, n))
                    for n in os.listdir(self.spool) if n.endswith(".ndjson")}
        cursor = None
        if os.path.exists(os.path.join(self.spool, "cursor")):
            with open(os.path.join(self.spool, "cursor")) as f:
                cursor = f.read()
        return segments, cursor

    # -- (a) ------------------------------------------------------------------------------
    def test_a_broken_file_keeps_the_old_checks_and_logs_the_exact_error(self):
        good = self.config([tcp_check("one", free_port()), tcp_check("two", free_port())])
        self.write_config(good)
        self.start_probe()
        wait_for(lambda: self.count("one") >= 2 and self.count("two") >= 2, 10, what="first results")

        broken = json.loads(json.dumps(good))
        broken["checks"][1]["interval"] = "5 parsecs"
        self.write_config(broken)
        expected = self.validate_error()
        self.assertIn("interval", expected)
        _, line = self.sighup_and_wait("probe.reload_failed")
        self.assertEqual(line["error"], expected)
        self.assertEqual(line["file"], self.config_path)
        self.assertEqual(line["level"], "error")

        # Both checks keep running on the old configuration.
        n1, n2 = self.count("one"), self.count("two")
        wait_for(lambda: self.count("one") >= n1 + 3 and self.count("two") >= n2 + 3, 10,
                 what="results after the failed reload")
        m = self.metrics()
        self.assertEqual(m['vantage_probe_config_reloads_total{result="failed"}'], 1)
        self.assertEqual(m['vantage_probe_config_reloads_total{result="ok"}'], 0)
        self.assertEqual(m["vantage_probe_checks_configured"], 2)
        self.assertEqual(self.log_lines("probe.reloaded"), [])
        self.assertEqual(self.stop_probe(), 0)

    # -- (b) ------------------------------------------------------------------------------
    def test_b_a_changed_file_adds_removes_and_changes_checks_without_a_gap_or_touching_the_spool(self):
        self.collector = Collector(self.dir, probes=[{"id": "it-reload", "token_file": self.token_file}])
        keep_port, gone_port, old_port, new_port, added_port = (free_port() for _ in range(5))
        keep = tcp_check("keep", keep_port, interval=f"{int(KEEP_INTERVAL * 1000)}ms")
        first = self.config([keep, tcp_check("gone", gone_port), tcp_check("change", old_port)],
                            collector_port=self.collector.port)
        self.write_config(first)
        self.start_probe(log_level="debug")  # the collector is down: everything stays in the spool
        wait_for(lambda: self.count("keep") >= 4 and all(self.count(c) >= 5 for c in ("gone", "change")), 15,
                 what="first results")
        wait_for(lambda: self.metrics().get("vantage_probe_spool_results", 0) >= 10, 10, what="a spool")
        segments_before, cursor_before = self.spool_state()
        self.assertTrue(segments_before)

        second = self.config([keep, tcp_check("change", new_port),
                              tcp_check("added", added_port)], collector_port=self.collector.port)
        self.write_config(second)
        sent, line = self.sighup_and_wait("probe.reloaded")
        reloaded_at = parse_time(line["ts"])
        self.assertEqual((line["added"], line["removed"], line["changed"], line["unchanged"]), (1, 1, 1, 1), line)
        self.assertEqual((line["added_checks"], line["removed_checks"], line["changed_checks"]),
                         ("added", "gone", "change"))
        n_keep = self.count("keep")
        wait_for(lambda: self.count("keep") >= n_keep + 6 and self.count("added") >= 5, 15,
                 what="results after the reload")

        checks = self.by_check()
        # The untouched check: results before and after the reload on one grid (its loop was not
        # restarted: a new loop would start at a random offset), one per interval, none missing.
        keep_times = sorted(parse_time(r["time"]) for r in checks["keep"])
        self.assertLess(keep_times[0], sent)
        self.assertGreater(keep_times[-1], reloaded_at + 2 * KEEP_INTERVAL)
        slots = []
        for t in keep_times:
            k = round((t - keep_times[0]) / KEEP_INTERVAL)
            self.assertLess(abs(t - keep_times[0] - k * KEEP_INTERVAL), 0.05, "keep's results left their grid")
            slots.append(k)
        self.assertEqual(slots, list(range(len(slots))), "an interval of keep is missing")
        started = [line["check"] for line in self.log_lines("scheduler.loop_started")]
        self.assertEqual(started.count("keep"), 1, "keep's loop was restarted")
        self.assertEqual(sorted(started), sorted(["keep", "gone", "change", "change", "added"]))
        # The removed check stopped with the reload; the added one started after it.
        self.assertLessEqual(max(parse_time(r["time"]) for r in checks["gone"]), reloaded_at)
        self.assertGreater(min(parse_time(r["time"]) for r in checks["added"]), sent)
        # The changed check runs its new definition after the reload, only the old one before.
        for r in checks["change"]:
            t = parse_time(r["time"])
            port = r["target"]["port"]
            if t < sent:
                self.assertEqual(port, old_port)
            elif t > reloaded_at:
                self.assertEqual(port, new_port)
        self.assertTrue(any(r["target"]["port"] == new_port for r in checks["change"]))

        # The spool was not touched: the same segment files, only appended to, the same cursor.
        segments_after, cursor_after = self.spool_state()
        for name, size in segments_before.items():
            self.assertIn(name, segments_after)
            self.assertGreaterEqual(segments_after[name], size)
        self.assertEqual(cursor_after, cursor_before)
        m = self.metrics()
        self.assertEqual(m['vantage_probe_config_reloads_total{result="ok"}'], 1)
        self.assertEqual(m["vantage_probe_checks_configured"], 3)
        self.assertGreater(m["vantage_probe_config_last_reload_success_timestamp_seconds"], sent - 1)
        self.assertEqual(self.log_lines("probe.reload_needs_restart"), [])

        # The collector comes up: every result, from before and after the reload, arrives once.
        self.collector.start()
        wait_for(lambda: self.metrics().get("vantage_probe_spool_results", 1) == 0, 20, what="the spool to drain")
        self.assertEqual(self.stop_probe(), 0)
        produced = {r["id"] for r in self.results()}
        stored = [r["result_id"] for r in self.collector.query("SELECT result_id FROM probe_results")]
        self.assertEqual(len(stored), len(set(stored)), "a result stored twice")
        self.assertEqual(set(stored), produced)

    def test_b2_spool_dir_and_metrics_address_need_a_restart(self):
        self.collector = Collector(self.dir, probes=[{"id": "it-reload", "token_file": self.token_file}])
        cfg = self.config([tcp_check("one", free_port())], collector_port=self.collector.port)
        self.write_config(cfg)
        self.start_probe()
        wait_for(lambda: self.count("one") >= 2, 10, what="results")
        moved = json.loads(json.dumps(cfg))
        moved["collector"]["spool_dir"] = os.path.join(self.dir, "elsewhere")
        moved["metrics"]["listen"] = f"127.0.0.1:{free_port()}"
        self.write_config(moved)
        self.sighup_and_wait("probe.reloaded")
        keys = sorted(line["key"] for line in self.log_lines("probe.reload_needs_restart"))
        self.assertEqual(keys, ["collector.spool_dir", "metrics.listen"])
        self.assertFalse(os.path.exists(os.path.join(self.dir, "elsewhere")))
        self.assertIn("vantage_probe_spool_results", self.metrics())  # still the old address
        self.assertEqual(self.stop_probe(), 0)

    # -- (c) ------------------------------------------------------------------------------
    def test_c_token_rotation_with_two_tokens_rejects_nothing(self):
        old_token, new_token = "token-old-0123456789", "token-new-9876543210"
        col_old = os.path.join(self.dir, "collector-old.token")
        col_new = os.path.join(self.dir, "collector-new.token")
        self.write_token(col_old, old_token)
        self.write_token(col_new, new_token)
        # Step 1 (collector): the new token next to the old one.
        self.collector = Collector(self.dir, probes=[{"id": "it-reload", "tokens": [
            {"token_file": col_old}, {"token_file": col_new}]}])
        self.collector.start()
        self.write_config(self.config([tcp_check("one", free_port())], collector_port=self.collector.port))
        self.start_probe()

        def stored():
            return self.collector.query("SELECT COUNT(*) AS n FROM probe_results")[0]["n"]
        wait_for(lambda: stored() >= 5, 15, what="deliveries with the old token")

        # Step 2 (probe): the new token file, SIGHUP.
        self.write_token(self.token_file, new_token)
        self.sighup_and_wait("probe.reloaded")
        n = stored()
        wait_for(lambda: stored() >= n + 5, 15, what="deliveries after the probe's reload")

        # Step 3 (collector): drop the old token, reload the collector (SIGHUP).
        rejected_before = self.rejections()
        self.collector.config["probes"] = [{"id": "it-reload", "tokens": [{"token_file": col_new}]}]
        with open(self.collector.config_path, "w") as f:
            json.dump(self.collector.config, f, indent=2)
        self.collector.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: self.collector.log_lines("collector.reloaded"), 10, what="the collector's reload")
        status, _, _ = self.collector.request("POST", "/v1/results", b"",
                                              {"Authorization": f"Bearer {old_token}",
                                               "Content-Type": "application/x-ndjson"})
        self.assertIn(status, (401, 403), "the old token is still accepted")
        rejected_before += 1  # our own probe of the old token
        n = stored()
        wait_for(lambda: stored() >= n + 5, 15, what="deliveries with the new token only")
        self.assertEqual(self.rejections(), rejected_before, "the collector rejected an upload")
        self.assertEqual(self.stop_probe(), 0)
        for line in self.log_lines("collector.upload_failed"):
            self.assertNotIn(line["status"], (401, 403), line)

    def rejections(self):
        m = self.collector.metrics()
        return sum(v for k, v in m.items()
                   if k.startswith("vantage_collector_rejected_requests_total")
                   and ('"forbidden"' in k or '"unauthorized"' in k))

    # -- (d) ------------------------------------------------------------------------------
    def test_d_a_wrong_token_logs_the_collectors_status_and_error_text(self):
        right = os.path.join(self.dir, "collector.token")
        self.write_token(right, "the-right-token-000")
        self.collector = Collector(self.dir, probes=[{"id": "it-reload", "token_file": right}])
        self.write_config(self.config([tcp_check("one", free_port())], collector_port=self.collector.port))
        # The collector is down first: a connection error is logged, then (well within the
        # 10 s rate limit of repeated lines) the collector's refusal, a new kind of failure.
        self.start_probe()
        wait_for(lambda: self.log_lines("collector.upload_failed"), 15, what="a failed upload")
        first = self.log_lines("collector.upload_failed")[0]
        self.assertEqual(first["status"], 0)
        self.assertIn("connect", first["error"].lower())
        self.collector.start()
        refused = lambda: [x for x in self.log_lines("collector.upload_failed") if x["status"] != 0]  # noqa: E731
        wait_for(refused, 5, what="the refusal logged")
        line = refused()[0]
        self.assertEqual(line["status"], 403)
        self.assertEqual(line["error"], "unknown token")
        self.assertIn("unknown token", line["response"])
        self.assertEqual(self.stop_probe(), 0)

    # -- (e) ------------------------------------------------------------------------------
    def test_e_once_with_an_unreachable_collector_exits_3(self):
        self.write_config(self.config([tcp_check("one", free_port())], collector_port=free_port()))
        t0 = time.time()
        p = subprocess.run([PROBE, "--config", self.config_path, "--once", "--output", self.output,
                            "--log-level", "warn"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("probe.undelivered", p.stderr)
        self.assertLess(time.time() - t0, 20)
        self.assertEqual(len(self.results()), 1)  # the result itself was produced (and spooled)

    def test_e2_once_with_a_reachable_collector_exits_by_the_results(self):
        right = os.path.join(self.dir, "collector.token")
        self.write_token(right, "token-old-0123456789")
        self.collector = Collector(self.dir, probes=[{"id": "it-reload", "token_file": right}]).start()
        self.write_config(self.config([tcp_check("one", free_port())], collector_port=self.collector.port))
        p = subprocess.run([PROBE, "--config", self.config_path, "--once", "--output", self.output,
                            "--log-level", "warn"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)  # a refused connection is a failed check
        self.assertEqual(len(self.collector.query("SELECT result_id FROM probe_results")), 1)

    def test_f_validate_refuses_a_collector_url_without_the_results_path(self):
        cfg = self.config([tcp_check("one", free_port())], collector_port=free_port())
        cfg["collector"]["url"] = "https://collector.example.com/"
        self.write_config(cfg)
        error = self.validate_error()
        self.assertIn(self.config_path, error)
        self.assertIn("collector.url", error)
        self.assertIn("/v1/results", error)
        with open(self.config_path) as f:
            line = next(i for i, text in enumerate(f, 1) if '"url"' in text)
        self.assertIn(f"{self.config_path}:{line}:", error)


if __name__ == "__main__":
    unittest.main()
