"""Retention end to end (docs/collector.md#retention): the real vantage-collector with
`store.retention` pruning a store full of old rows while uploads keep being stored, and the
real `vantage prune` on stores with and without auto_vacuum."""
import json
import os
import sqlite3
import subprocess
import time
import unittest

from collector_harness import Collector, temp_dir
from harness import BUILD_DIR, wait_for

VANTAGE = os.path.join(BUILD_DIR, "analysis", "vantage")
HOUR_NS = 3600 * 10**9
DAY_NS = 24 * HOUR_NS
INCIDENTS_DDL = ("CREATE TABLE IF NOT EXISTS incidents (id TEXT PRIMARY KEY, kind TEXT NOT NULL, "
                 "severity TEXT NOT NULL, status TEXT NOT NULL, opened_ns INTEGER NOT NULL, "
                 "resolved_ns INTEGER, title TEXT NOT NULL, runbook TEXT, record TEXT NOT NULL, "
                 "key TEXT) WITHOUT ROWID")


def nel_report(n):
    return [{"age": 0, "type": "network-error", "url": f"https://shop.example.com/new/{n}",
             "user_agent": "Mozilla/5.0 Firefox/128.0",
             "body": {"type": "tcp.timed_out", "phase": "connection", "server_ip": "192.0.2.10",
                      "elapsed_time": 30001, "sampling_fraction": 1.0, "status_code": 0,
                      "method": "GET", "protocol": "http/1.1"}}]


def fill(db, old_ns, young_ns, old_reports=20000, old_results=2000, young=100):
    """Rows a collector stored before: old ones (at old_ns) and young ones (at young_ns), and
    incidents as `vantage incidents` stores them."""
    con = sqlite3.connect(db, timeout=10)
    body = json.dumps({"padding": "x" * 500})
    rows = [(old_ns + i, old_ns + i) for i in range(old_reports)] + \
           [(young_ns + i, young_ns + i) for i in range(young)]
    con.executemany("INSERT INTO browser_reports (received_ns, event_ns, kind, type, endpoint, url, "
                    "origin, weight, client_prefix, body) VALUES (?, ?, 'browser_report', "
                    "'network-error', 'reports/nel', 'https://shop.example.com/old', "
                    "'https://shop.example.com', 1, '198.51.100.0/24', '" + body + "')", rows)
    results = [(f"old-{i:08d}", old_ns + i) for i in range(old_results)] + \
              [(f"young-{i:08d}", young_ns + i) for i in range(young)]
    con.executemany("INSERT INTO probe_results (result_id, kind, time_ns, received_ns, probe_id, "
                    "check_name, outcome, record) VALUES (?, 'check_result', ?, 0, 'p', 'c', 'ok', "
                    "'{}')", results)
    con.execute(INCIDENTS_DDL)
    for iid, opened, resolved in (("open-old", old_ns, None), ("resolved-old", old_ns, old_ns + HOUR_NS),
                                  ("resolved-young", old_ns, young_ns)):
        con.execute("INSERT INTO incidents (id, kind, severity, status, opened_ns, resolved_ns, title, "
                    "record, key) VALUES (?, 'outage', 'page', ?, ?, ?, 'Outage', '{}', ?)",
                    (iid, "open" if resolved is None else "resolved", opened, resolved, iid))
    con.commit()
    con.close()


def count(db, sql):
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def file_bytes(db):
    return sum(os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p))


def prune(*args):
    return subprocess.run([VANTAGE, "prune", *args], capture_output=True, text=True, timeout=120)


class CollectorRetention(unittest.TestCase):
    def test_the_collector_prunes_old_rows_while_uploads_keep_being_stored(self):
        d = temp_dir(self, "vantage-retention-it-")
        c = Collector(d)
        c.start()
        c.stop()  # the store and its schema
        now = time.time_ns()
        fill(c.db, now - 3 * DAY_NS, now - HOUR_NS)
        c = Collector(d, store={"sqlite": c.db, "prune_interval": "1s", "prune_batch_rows": 500,
                                "retention": {"browser_reports": "1d", "probe_results": "1d",
                                              "incidents": "1d"}})
        c.start()
        self.addCleanup(c.stop)
        # Uploads while the old rows go: every one answered 204 and stored.
        for n in range(40):
            status, _, _ = c.request("POST", "/reports/nel", json.dumps(nel_report(n)),
                                     {"Content-Type": "application/reports+json",
                                      "Origin": "https://shop.example.com"})
            self.assertEqual(status, 204)
        wait_for(lambda: c.metric('vantage_collector_store_pruned_records_total{table="browser_reports"}')
                 == 20000, 30, what="20,000 old reports pruned")
        wait_for(lambda: c.metric('vantage_collector_store_pruned_records_total{table="probe_results"}')
                 == 2000, 10, what="2,000 old results pruned")
        wait_for(lambda: count(c.db, "SELECT count(*) FROM browser_reports WHERE url LIKE '%/new/%'") == 40,
                 10, what="the 40 new reports stored")
        self.assertEqual(count(c.db, f"SELECT count(*) FROM browser_reports WHERE event_ns < {now - DAY_NS}"), 0)
        self.assertEqual(count(c.db, "SELECT count(*) FROM browser_reports WHERE url LIKE '%/old'"), 100)
        self.assertEqual(count(c.db, "SELECT count(*) FROM probe_results"), 100)
        ids = {r["id"] for r in c.query("SELECT id FROM incidents")}
        self.assertEqual(ids, {"open-old", "resolved-young"})
        self.assertEqual(c.metric('vantage_collector_store_pruned_records_total{table="incidents"}'), 1)
        # Tables without a retention have no series; the file's size is exported.
        self.assertNotIn('vantage_collector_store_pruned_records_total{table="heartbeats"}', c.metrics())
        self.assertGreater(c.metric("vantage_collector_store_file_bytes"), 0)
        # The index the incidents table needed was created on the fly.
        self.assertEqual(count(c.db, "SELECT count(*) FROM sqlite_master WHERE name = 'incidents_resolved'"), 1)


class PruneCommand(unittest.TestCase):
    def store(self, legacy=False):
        d = temp_dir(self, "vantage-prune-it-")
        db = os.path.join(d, "collector.db")
        if legacy:  # a store created before auto_vacuum: a table already there when the collector came
            con = sqlite3.connect(db)
            con.executescript("PRAGMA page_size=16384; CREATE TABLE legacy (x);")
            con.close()
        c = Collector(d)
        c.start()
        c.stop()
        return db

    def test_dry_run_then_prune_then_vacuum_shrink_the_file(self):
        db = self.store()
        now = time.time_ns()
        fill(db, now - 3 * DAY_NS, now - HOUR_NS)
        r = prune("--db", db, "--older-than", "1d", "--dry-run")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"browser_reports +older than \S+ +20000 rows would be deleted")
        self.assertRegex(r.stdout, r"incidents +resolved before \S+ +1 rows would be deleted")
        self.assertEqual(count(db, "SELECT count(*) FROM browser_reports"), 20100)
        r = prune("--db", db, "--retention", "browser_reports=1d", "--retention", "incidents=1d")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"browser_reports +older than \S+ +20000 rows deleted")
        self.assertNotIn("probe_results", r.stdout)
        self.assertEqual(count(db, "SELECT count(*) FROM browser_reports"), 100)
        self.assertEqual(count(db, "SELECT count(*) FROM probe_results"), 2100)  # not asked for
        self.assertEqual(count(db, "SELECT count(*) FROM incidents"), 2)
        before = file_bytes(db)
        r = prune("--db", db, "--vacuum")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(file_bytes(db), before / 2)
        self.assertEqual(count(db, "PRAGMA freelist_count"), 0)
        con = sqlite3.connect(db)
        self.assertEqual(con.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        con.close()

    def test_a_store_without_auto_vacuum_is_switched_by_vacuum(self):
        db = self.store(legacy=True)
        self.assertEqual(count(db, "PRAGMA auto_vacuum"), 0)
        now = time.time_ns()
        fill(db, now - 3 * DAY_NS, now - HOUR_NS)
        r = prune("--db", db, "--older-than", "1d")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--vacuum switches the store to incremental vacuum", r.stdout)
        before = file_bytes(db)
        r = prune("--db", db, "--vacuum")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("switching to auto_vacuum=INCREMENTAL", r.stdout)
        self.assertEqual(count(db, "PRAGMA auto_vacuum"), 2)
        self.assertLess(file_bytes(db), before / 2)

    def test_usage_errors_exit_2_with_a_message(self):
        db = self.store()
        for args, message in (
                ([], "nothing to do: give --older-than, --retention or --vacuum"),
                (["--retention", "vantage_points=1d"], '--retention: "vantage_points=1d" is not TABLE=DURATION'),
                (["--retention", "probe_results=7 days"], '--retention: "7 days" is not a duration like 7d'),
                (["--older-than", "soon"], '--older-than: "soon" is not a duration like 30d'),
                (["--older-than", "1d", "--now", "yesterday"], '--now: "yesterday" is not an RFC 3339 time')):
            r = prune("--db", db, *args)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
            self.assertIn(message, r.stderr)
        r = prune("--db", db + ".missing", "--older-than", "1d")
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
