"""vantage-collector: a browser report answered 204 is on disk (the segment log) before the
answer, so a SIGKILL loses none. Real Chromium Reporting API captures, each upload given unique
report URLs, streamed over several keep-alive connections; the collector is SIGKILLed mid-stream
and restarted, three times in a row, and every upload that got its 204 must be stored exactly
once. Also: a log that cannot be written (the file size limit) answers 503 with Retry-After,
never 204. Each test starts its own collector on 127.0.0.1."""
import json
import os
import resource
import signal
import socket
import threading
import time
import unittest
import uuid

from collector_harness import CAPTURES, Collector, read_response, temp_dir
from harness import wait_for

STREAMS = 6  # connections uploading at once: several uploads share one log sync


def reporting_captures():
    """(head lines, JSON reports) of every Reporting API POST among the Chromium captures."""
    out = []
    for name in sorted(os.listdir(CAPTURES)):
        with open(os.path.join(CAPTURES, name), "rb") as f:
            data = f.read()
        if not data.startswith(b"POST /reports"):
            continue
        head, body = data.split(b"\r\n\r\n", 1)
        lines = [l for l in head.decode().split("\r\n") if not l.lower().startswith("content-length:")]
        out.append((lines, json.loads(body)))
    return out


def unique_upload(capture, upload_id):
    """The capture's request with every report's URL made unique: <origin>/durable/<id>/<n>."""
    lines, reports = capture
    reports = json.loads(json.dumps(reports))
    for n, r in enumerate(reports):
        scheme, rest = r["url"].split("://", 1)
        r["url"] = f"{scheme}://{rest.split('/', 1)[0]}/durable/{upload_id}/{n}"
    body = json.dumps(reports).encode()
    head = "\r\n".join(lines + [f"Content-Length: {len(body)}"]) + "\r\n\r\n"
    return head.encode() + body, len(reports)


class Stream(threading.Thread):
    """One keep-alive connection posting unique uploads until told to stop or the peer dies;
    `acked` holds (upload id, reports) of each 204."""

    def __init__(self, port, captures, stop):
        super().__init__(daemon=True)
        self.port, self.captures, self.stop_event = port, captures, stop
        self.acked, self.sent, self.other = [], [], []

    def run(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError:
            return
        i = 0
        with s:
            while not self.stop_event.is_set():
                upload_id = uuid.uuid4().hex
                data, n = unique_upload(self.captures[i % len(self.captures)], upload_id)
                i += 1
                self.sent.append((upload_id, n))
                try:
                    s.sendall(data)
                    status, _, body = read_response(s)
                except OSError:
                    return
                if status is None:
                    return  # the collector died before answering
                if status == 204:
                    self.acked.append((upload_id, n))
                else:
                    self.other.append((status, body))


def stored_counts(c):
    counts = {}
    for r in c.query("SELECT url FROM browser_reports WHERE url LIKE '%/durable/%'"):
        upload_id = r["url"].split("/durable/", 1)[1].split("/", 1)[0]
        counts[upload_id] = counts.get(upload_id, 0) + 1
    return counts


class Durability(unittest.TestCase):
    def test_sigkill_during_browser_uploads_loses_no_acknowledged_report_three_times_in_a_row(self):
        captures = reporting_captures()
        self.assertGreaterEqual(len(captures), 10)
        d = temp_dir(self)
        # commit_interval 1 s: most acknowledged uploads are in the log only when the kill comes.
        c = Collector(d, limits={"per_ip": {"rate": 100000, "burst": 100000},
                                 "per_origin": {"rate": 100000, "burst": 100000}},
                      store={"sqlite": os.path.join(d, "collector.db"), "commit_interval": "1s"})
        self.addCleanup(c.stop)
        acked, sent = {}, {}
        for run in range(3):
            with self.subTest(run=run):
                c.start()
                stop = threading.Event()
                streams = [Stream(c.port, captures[k::STREAMS] or captures, stop) for k in range(STREAMS)]
                for s in streams:
                    s.start()
                wait_for(lambda: sum(len(s.acked) for s in streams) >= 300, 30,
                         what="300 acknowledged uploads")
                c.stop(sig=signal.SIGKILL)  # mid-stream: requests are in flight
                stop.set()
                for s in streams:
                    s.join(10)
                for s in streams:
                    self.assertEqual(s.other, [], "only 204s before the kill")
                    acked.update(s.acked)
                    sent.update(s.sent)
                c.start()  # replays the log into the store before it listens
                counts = stored_counts(c)
                lost = [u for u in acked if counts.get(u, 0) != acked[u]]
                self.assertEqual(lost, [], f"run {run}: acknowledged uploads not stored (or twice)")
                # Nothing stored twice, nothing that was never sent.
                for upload_id, n in counts.items():
                    self.assertEqual(n, sent.get(upload_id), upload_id)
                replayed = c.log_lines("store.log_replayed")[-1]
                self.assertGreaterEqual(replayed["frames"], replayed["replayed"])
                c.stop()
        # The kills hit while uploads waited for the store: the log carried them.
        replays = [l["replayed"] for l in c.log_lines("store.log_replayed")]
        self.assertGreater(sum(replays), 0, replays)
        self.assertEqual(len(acked), len(set(acked)))
        # After clean stops and replays, the log holds only its open segment.
        segments = [n for n in os.listdir(os.path.join(d, "collector.db-log")) if n.endswith(".seg")]
        self.assertLessEqual(len(segments), 2, segments)

    def test_a_log_that_cannot_be_written_answers_503_with_retry_after_never_204(self):
        d = temp_dir(self)
        # One segment grows past the limit (segments are 64 MiB by default).
        c = Collector(d, limits={"per_ip": {"rate": 100000, "burst": 100000}},
                      store={"sqlite": os.path.join(d, "collector.db")})
        self.addCleanup(c.stop)
        c.start()
        captures = reporting_captures()
        data, _ = unique_upload(captures[0], uuid.uuid4().hex)
        self.assertEqual(c.raw(data)[0], 204)
        c.stop()
        # A file size limit (RLIMIT_FSIZE) makes the log's writes fail with EFBIG as a full disk
        # fails them with ENOSPC; SIGXFSZ ignored as a service manager would not kill on it.
        limit = 200_000

        def limited():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        self._start_limited(c, limited)
        statuses, retry = [], set()
        ids = []
        for i in range(400):
            upload_id = uuid.uuid4().hex
            data, _ = unique_upload(captures[i % len(captures)], upload_id)
            status, headers, _ = c.raw(data)
            statuses.append(status)
            ids.append((upload_id, status))
            if status == 503:
                retry.add(headers.get("retry-after"))
                if statuses.count(503) >= 5:
                    break
        self.assertIn(503, statuses)
        self.assertEqual(set(statuses) - {204, 503}, set())
        self.assertEqual(retry, {"5"})
        self.assertGreater(c.metric("vantage_collector_store_log_errors_total"), 0)
        c.stop(sig=signal.SIGKILL)
        c.start()
        counts = stored_counts(c)
        for upload_id, status in ids:
            if status == 204:
                self.assertGreater(counts.get(upload_id, 0), 0, "an acknowledged upload is stored")
            else:
                self.assertEqual(counts.get(upload_id, 0), 0, "a 503 upload is not stored")

    def _start_limited(self, c, preexec):
        import subprocess
        from collector_harness import COLLECTOR
        c.log = open(c.log_path, "a")
        c.proc = subprocess.Popen([COLLECTOR, "--config", c.config_path], stdout=c.log,
                                  stderr=c.log, preexec_fn=preexec)
        wait_for(c._listening, 10, what="the collector to listen")


if __name__ == "__main__":
    unittest.main()
