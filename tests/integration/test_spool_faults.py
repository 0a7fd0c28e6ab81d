"""Disk faults under the collector spool: the real vantage-probe keeps running and says so
(a gauge, counters, a bounded number of log lines), counts what it could not keep, and delivers
to the real vantage-collector again by itself once the disk is back.

No `servers` fixture: the probe's only check is a TCP connect to a closed port on 127.0.0.1, which
yields a (failed) result every interval. The full-disk test mounts a 256 KiB tmpfs, so it needs
root (CI runs as root); it is skipped otherwise."""
import errno
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.request

from collector_harness import Collector
from harness import free_port, Probe, wait_for, write_config


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def log_events(path, event):
    """The probe's log lines (parsed) whose event is `event`."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            if f'"event":"{event}"' in line:
                out.append(json.loads(line))
    return out


class SpoolFaultTest(unittest.TestCase):
    """A probe with its spool in `self.spool`, uploading to a collector that is not started."""

    token = "probe-token-faults"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vantage-spool-faults-it-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.spool = os.path.join(self.dir, "spool")
        os.mkdir(self.spool)
        self.produced = os.path.join(self.dir, "produced.jsonl")
        self.log = os.path.join(self.dir, "probe.log")
        self.metrics_port = free_port()
        token_file = os.path.join(self.dir, "token")
        with open(token_file, "w") as f:
            f.write(self.token + "\n")
        self.collector = Collector(self.dir, probes=[{"id": "it-faults", "token_file": token_file}])
        self.addCleanup(self.collector.stop)
        self.probe_token_file = os.path.join(self.dir, "probe-token")
        with open(self.probe_token_file, "w") as f:
            f.write(self.token + "\n")
        self.probe = None

    def write_probe_config(self):
        return write_config({
            "vantage_point": {"id": "it-faults", "region": "lab"},
            "collector": {"url": f"http://127.0.0.1:{self.collector.port}/v1/results",
                          "token_file": self.probe_token_file, "spool_dir": self.spool,
                          "flush_interval": "100ms", "backoff": {"initial": "100ms", "max": "300ms"}},
            "metrics": {"listen": f"127.0.0.1:{self.metrics_port}"},
            "scheduler": {"shutdown_grace": "2s"},
            "defaults": {"interval": "100ms", "timeout": "100ms"},
            "checks": [{"id": "closed-port", "kind": "tcp", "host": "127.0.0.1", "port": free_port()}],
        }, self.dir)

    def start_probe(self):
        self.probe = Probe(self.write_probe_config(), output=self.produced, log=self.log)
        self.addCleanup(self.stop_probe)
        wait_for(lambda: self.metrics() is not None, 10, what="the probe's /metrics")

    def stop_probe(self):
        if self.probe is None:
            return None
        probe, self.probe = self.probe, None
        return probe.stop()

    def assert_probe_alive(self):
        self.assertIsNone(self.probe.proc.poll(), "the probe exited")

    def metrics(self):
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).read().decode()
        except OSError:
            return None
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def metric(self, series):
        return (self.metrics() or {}).get(series, 0.0)

    def stored_ids(self):
        if not os.path.exists(self.collector.db):
            return []
        return [r["result_id"] for r in self.collector.query("SELECT result_id FROM probe_results")]


class FullDisk(SpoolFaultTest):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to mount a tmpfs for the spool (CI runs as root)")
        super().setUp()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", self.spool],
                                 capture_output=True, text=True)
        if mounted.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
        # Cleanups run last-in first-out: the probe is stopped before the unmount.
        self.addCleanup(subprocess.run, ["umount", "-l", self.spool], check=False)
        self.filler = os.path.join(self.spool, "filler")

    def fill(self):
        """Takes every free block of the tmpfs."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            chunk = b"\0" * 4096
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    if len(chunk) == 1:
                        break
                    chunk = chunk[: len(chunk) // 2]
        finally:
            os.close(fd)

    def test_a_full_disk_drops_new_results_visibly_and_delivery_resumes_when_space_returns(self):
        dropped_series = 'vantage_probe_dropped_results_total{reason="spool_error"}'
        # 1. Collector down: results are spooled.
        self.start_probe()
        wait_for(lambda: self.metric("vantage_probe_spool_results") >= 5, 15, what="results in the spool")

        # 2. The disk fills up: new results cannot be spooled.
        self.fill()
        wait_for(lambda: self.metric("vantage_probe_spool_write_failing") == 1, 10, what="the failing gauge")
        wait_for(lambda: self.metric(dropped_series) >= 20, 15, what="results counted as dropped")
        failing_since = time.time()
        wait_for(lambda: self.metric('vantage_probe_spool_write_errors_total{file="segment"}') >= 10, 15,
                 what="spool writes failing again and again")
        self.assert_probe_alive()
        # Every flush interval failed, but the log says it once per 10 s (plus the first line).
        failed_lines = log_events(self.log, "collector.spool_write_failed")
        self.assertGreaterEqual(len(failed_lines), 1)
        self.assertLessEqual(len(failed_lines), 2 + int((time.time() - failing_since) / 10))
        self.assertEqual(failed_lines[0]["level"], "error")
        self.assertIn("No space left on device", failed_lines[0]["error"])
        self.assertEqual(self.metric("vantage_probe_spool_write_failing"), 1)

        # 3. Space is back and so is the collector: everything spooled is delivered, new results
        # are spooled again.
        os.unlink(self.filler)
        self.collector.start()
        wait_for(lambda: self.metric("vantage_probe_spool_write_failing") == 0, 10, what="the gauge to clear")
        recovered_at = len(self.stored_ids())
        wait_for(lambda: len(self.stored_ids()) >= recovered_at + 10 and
                 self.metric("vantage_probe_spool_results") < 5, 20, what="delivery to resume")
        dropped = self.metric(dropped_series)
        self.assertGreater(dropped, 0)
        self.assertGreaterEqual(len(log_events(self.log, "collector.spool_write_recovered")), 1)
        time.sleep(1)
        self.assertEqual(self.metric(dropped_series), dropped, "nothing dropped once space was back")
        self.assertEqual(self.stop_probe(), 0)

        # Accounting: every result produced was either stored (once) or counted as dropped.
        produced = [r["id"] for r in read_jsonl(self.produced)]
        stored = self.stored_ids()
        self.assertEqual(len(produced), len(set(produced)))
        self.assertEqual(len(stored), len(set(stored)))
        self.assertLessEqual(set(stored), set(produced), "nothing stored that was not produced")
        self.assertEqual(len(produced), len(stored) + int(dropped),
                         f"{len(produced)} produced, {len(stored)} stored, {int(dropped)} dropped")


class CursorFault(SpoolFaultTest):
    def cursor_is_directory(self):
        """Replaces the cursor file by a directory: renaming the new cursor over it fails
        (EISDIR). The probe may rename one in between, hence the loop."""
        path = os.path.join(self.spool, "cursor")
        for _ in range(100):
            try:
                if os.path.isfile(path):
                    os.unlink(path)
                os.mkdir(path)
                return
            except (FileExistsError, FileNotFoundError):
                continue
        self.fail("could not replace the cursor by a directory")

    def test_acknowledgements_that_cannot_be_persisted_are_counted_and_uploads_go_on(self):
        cursor_errors = 'vantage_probe_spool_write_errors_total{file="cursor"}'
        self.collector.start()
        self.start_probe()
        wait_for(lambda: self.metric("vantage_probe_uploaded_results_total") >= 3, 15, what="first uploads")

        self.cursor_is_directory()
        wait_for(lambda: self.metric(cursor_errors) >= 3, 10, what="cursor writes failing")
        self.assertEqual(self.metric("vantage_probe_spool_write_failing"), 1)
        stored = len(self.stored_ids())
        wait_for(lambda: len(self.stored_ids()) >= stored + 10, 15, what="uploads to go on")
        self.assert_probe_alive()
        self.assertEqual(self.metric('vantage_probe_collector_sender_failures_total{loop="send"}'), 0)

        # A restart while the cursor still cannot be written: the probe starts, may send again
        # what it had acknowledged (the collector deduplicates), and goes on delivering.
        self.assertEqual(self.stop_probe(), 0)
        self.start_probe()
        stored = len(self.stored_ids())
        wait_for(lambda: len(self.stored_ids()) >= stored + 10, 15, what="uploads after the restart")
        self.assertEqual(self.metric("vantage_probe_spool_write_failing"), 1)
        lines = log_events(self.log, "collector.spool_cursor_write_failed")
        self.assertGreaterEqual(len(lines), 1)
        self.assertLessEqual(len(lines), 4, "rate-limited: a few lines, not one per upload")

        # The disk is fine again: the next acknowledgement writes the cursor.
        os.rmdir(os.path.join(self.spool, "cursor"))
        wait_for(lambda: self.metric("vantage_probe_spool_write_failing") == 0, 10, what="the gauge to clear")
        self.assertTrue(os.path.isfile(os.path.join(self.spool, "cursor")))
        wait_for(lambda: self.metric("vantage_probe_spool_results") < 5, 10, what="the spool to drain")
        self.assertEqual(self.stop_probe(), 0)

        produced = [r["id"] for r in read_jsonl(self.produced)]
        stored = self.stored_ids()
        self.assertEqual(len(stored), len(set(stored)))
        self.assertEqual(sorted(stored), sorted(produced), "every result delivered, none lost")


class UploadRefused(SpoolFaultTest):
    def test_a_refused_upload_logs_the_collectors_answer_at_most_once_per_interval(self):
        self.collector.start()
        with open(self.probe_token_file, "w") as f:
            f.write("not-the-token\n")
        self.start_probe()
        wait_for(lambda: self.metric("vantage_probe_upload_errors_total") >= 10, 15, what="failed uploads")
        lines = log_events(self.log, "collector.upload_failed")
        self.assertEqual(len(lines), 1, "ten failures in a few seconds: one line (10 s interval)")
        self.assertEqual(lines[0]["status"], 403)
        self.assertIn("unknown token", lines[0]["response"])
        self.assertEqual(self.stored_ids(), [])
        self.assert_probe_alive()
        self.assertEqual(self.stop_probe(), 0)


if __name__ == "__main__":
    unittest.main()
