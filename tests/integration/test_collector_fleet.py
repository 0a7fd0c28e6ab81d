"""vantage-collector for a fleet, end to end on 127.0.0.1: GET /v1/config (200/304/404/401/403, a
changed file served at the next request), POST /v1/heartbeat (204 and its rows, 400 reasons, 403
for another probe's id), a token rotation with two tokens valid together and SIGHUP removing the
old one while uploads never stop (zero rejected), SIGHUP with a broken file (exact message logged,
the old configuration keeps serving), a restart-only key changed (warned, kept), a second
collector on the same port (exits non-zero with a clear message, the first keeps serving) and
two event-loop threads sharing the port (both accept)."""
import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest
import uuid

from collector_harness import COLLECTOR, Collector, start_collector, temp_dir
from harness import wait_for
from test_collector import probe_results


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def heartbeat(probe_id, **extra):
    body = {"type": "heartbeat", "probe_id": probe_id, "region": "lab", "country": "DE", "asn": 64500,
            "isp": "Lab ISP", "version": "0.3.0", "revision": "a2487b4",
            "config_hash": "sha256:" + "b" * 64, "config_source": "collector",
            "checks": ["shop-home", "api-health"], "spool_results": 0, "spool_bytes": 0,
            "heartbeat_interval_s": 30, "started_ns": time.time_ns() - 10**9, "time_ns": time.time_ns()}
    body.update(extra)
    return json.dumps(body)


class FleetCollector(unittest.TestCase):
    """One collector with two probes (it-a has two tokens) and a fleet.config_dir."""

    def setUp(self):
        self.d = temp_dir(self)
        self.tokens = {}
        for name, token in (("a-old", "token-a-old"), ("a-new", "token-a-new"), ("b", "token-b")):
            self.tokens[name] = os.path.join(self.d, f"{name}.token")
            write(self.tokens[name], token + "\n")
        self.probes_d = os.path.join(self.d, "probes.d")
        os.mkdir(self.probes_d)
        self.c = Collector(self.d, probes=self.probes(old=True, new=True),
                           fleet={"config_dir": self.probes_d}).start()
        self.addCleanup(self.c.stop)

    def probes(self, old, new):
        a = [{"token_file": self.tokens[k]} for k, on in (("a-old", old), ("a-new", new)) if on]
        return [{"id": "it-a", "tokens": a}, {"id": "it-b", "token_file": self.tokens["b"]}]

    def rewrite_config(self, **changes):
        self.c.config.update(changes)
        with open(self.c.config_path, "w") as f:
            json.dump(self.c.config, f, indent=2)

    def sighup_and_wait(self, result="ok"):
        series = f'vantage_collector_config_reloads_total{{result="{result}"}}'
        before = self.c.metric(series)
        self.c.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: self.c.metric(series) == before + 1, 10, what=f"reload {result}")

    def get_config(self, token, etag=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if etag:
            headers["If-None-Match"] = etag
        return self.c.request("GET", "/v1/config", headers=headers)

    def post_heartbeat(self, token, body):
        return self.c.request("POST", "/v1/heartbeat", body,
                              {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})

    def upload(self, token, lines):
        return self.c.request("POST", "/v1/results", "\n".join(lines) + "\n",
                              {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"})


class ConfigEndpoint(FleetCollector):
    def test_config_is_served_per_vantage_point_with_etag_and_304(self):
        status, headers, body = self.get_config(None)
        self.assertEqual((status, headers.get("www-authenticate")), (401, "Bearer"))
        status, _, body = self.get_config("not-a-token")
        self.assertEqual((status, json.loads(body)), (403, {"error": "unknown token"}))
        status, _, body = self.get_config("token-a-old")
        self.assertEqual((status, json.loads(body)),
                         (404, {"error": "no configuration for vantage point \"it-a\""}))

        default = "checks:\n  - {id: shop-home, kind: http, url: https://shop.example.com/}\n"
        write(os.path.join(self.probes_d, "default.yaml"), default)
        status, headers, body = self.get_config("token-a-old")
        self.assertEqual((status, body.decode()), (200, default))
        self.assertEqual(headers["content-type"], "application/yaml")
        etag = headers["etag"]
        self.assertEqual(etag, '"' + hashlib.sha256(default.encode()).hexdigest() + '"')
        status, headers, body = self.get_config("token-a-new", etag)  # the other token: same probe
        self.assertEqual((status, body, headers["etag"]), (304, b"", etag))

        # The probe's own file, changed on disk, is served at the next request: no reload.
        own = "checks:\n  - {id: api-health, kind: http, url: https://api.example.com/health}\n"
        write(os.path.join(self.probes_d, "it-a.yaml"), own)
        status, headers, body = self.get_config("token-a-new", etag)
        self.assertEqual((status, body.decode()), (200, own))
        self.assertNotEqual(headers["etag"], etag)
        self.assertEqual(self.get_config("token-b")[2].decode(), default)
        metric = 'vantage_collector_config_requests_total{{result="{}"}}'
        self.assertEqual([self.c.metric(metric.format(r)) for r in ("ok", "not_modified", "not_found", "error")],
                         [3, 1, 1, 0])

    def test_without_config_dir_the_endpoint_says_it_is_off(self):
        self.rewrite_config(fleet={})
        self.sighup_and_wait()
        status, _, body = self.get_config("token-a-old")
        self.assertEqual((status, json.loads(body)),
                         (404, {"error": "central configuration is not enabled (fleet.config_dir)"}))


class Heartbeat(FleetCollector):
    def test_a_heartbeat_is_answered_204_after_its_rows_are_committed(self):
        write(os.path.join(self.probes_d, "default.yaml"), "checks: []\n")
        before = time.time_ns()
        status, _, body = self.post_heartbeat("token-a-new", heartbeat("it-a", spool_results=7))
        self.assertEqual((status, body), (204, b""))
        # Committed before the answer: no waiting.
        vp = self.c.query("SELECT * FROM vantage_points")
        self.assertEqual(len(vp), 1)
        row = vp[0]
        self.assertEqual((row["probe_id"], row["region"], row["country"], row["asn"], row["version"],
                          row["config_source"], json.loads(row["checks"]), row["spool_results"],
                          row["heartbeat_interval_ns"]),
                         ("it-a", "lab", "DE", 64500, "0.3.0", "collector", ["shop-home", "api-health"], 7,
                          30_000_000_000))
        self.assertEqual(row["served_config_hash"], "sha256:" + hashlib.sha256(b"checks: []\n").hexdigest())
        self.assertTrue(before <= row["last_heartbeat_ns"] <= time.time_ns())
        self.assertEqual(len(self.c.query("SELECT * FROM heartbeats WHERE probe_id = 'it-a'")), 1)
        self.assertEqual(self.c.metric("vantage_collector_heartbeats_total"), 1)
        self.assertEqual(self.c.metric("vantage_collector_vantage_points"), 1)

        # A results upload refreshes last_seen_ns.
        last_heartbeat = row["last_heartbeat_ns"]
        self.assertEqual(self.upload("token-a-old", probe_results(1, probe_id="it-a"))[0], 200)
        row = self.c.query("SELECT * FROM vantage_points")[0]
        self.assertGreater(row["last_seen_ns"], last_heartbeat)
        self.assertEqual(row["last_heartbeat_ns"], last_heartbeat)

    def test_bad_heartbeats_get_400_with_the_reason_and_another_probes_id_403(self):
        cases = [("{", "not valid JSON"),
                 (json.dumps({"probe_id": "it-a"}), 'type: missing (expected "heartbeat")'),
                 (heartbeat("it-a", asn="64500"), "asn: expected an integer 0-4294967295"),
                 (heartbeat("it-a", checks="shop-home"), "checks: expected a list of check ids"),
                 (heartbeat("it-a", config_hash="abc"), 'config_hash: expected "sha256:" and 64 hex digits')]
        for body, reason in cases:
            with self.subTest(reason):
                status, _, answer = self.post_heartbeat("token-a-new", body)
                self.assertEqual((status, json.loads(answer)["error"]), (400, reason))
        status, _, answer = self.post_heartbeat("token-a-new", heartbeat("it-b"))
        self.assertEqual((status, json.loads(answer)["error"]),
                         (403, 'the token belongs to probe "it-a", the heartbeat names "it-b"'))
        status, _, _ = self.c.request("POST", "/v1/heartbeat", "x" * (65 * 1024),
                                      {"Authorization": "Bearer token-b", "Content-Type": "application/json"})
        self.assertEqual(status, 413)
        self.assertEqual(self.c.query("SELECT count(*) AS n FROM heartbeats")[0]["n"], 0)
        self.assertEqual(self.c.metric('vantage_collector_rejected_requests_total{reason="invalid_heartbeat"}'),
                         len(cases))
        self.assertTrue(self.c.alive())


class Reload(FleetCollector):
    def test_token_rotation_never_rejects_an_upload(self):
        """The documented rotation: add the new token (both valid), SIGHUP; the probe switches to
        the new token; remove the old one, SIGHUP. Uploads run all along."""
        self.rewrite_config(probes=self.probes(old=True, new=False))
        self.sighup_and_wait()
        self.assertEqual(self.upload("token-a-new", probe_results(1, probe_id="it-a"))[0], 403)

        template = probe_results(1, probe_id="it-a")[0]
        current = {"token": "token-a-old"}
        statuses, stop = [], threading.Event()

        def uploader():
            while not stop.is_set():
                line = json.loads(template)
                line["id"] = str(uuid.uuid4())
                statuses.append((current["token"], self.upload(current["token"], [json.dumps(line)])[0]))
        t = threading.Thread(target=uploader)
        t.start()
        try:
            wait_for(lambda: len(statuses) >= 10, 10, what="uploads with the old token")
            self.rewrite_config(probes=self.probes(old=True, new=True))  # 1. add the new token
            self.sighup_and_wait()
            wait_for(lambda: len(statuses) >= 20, 10, what="more uploads")
            current["token"] = "token-a-new"  # 2. the probe switches (its own reload)
            n = len(statuses)
            wait_for(lambda: len(statuses) >= n + 10, 10, what="uploads with the new token")
            self.rewrite_config(probes=self.probes(old=False, new=True))  # 3. remove the old one
            self.sighup_and_wait()
            n = len(statuses)
            wait_for(lambda: len(statuses) >= n + 10, 10, what="uploads after the old token is gone")
        finally:
            stop.set()
            t.join()
        self.assertEqual([s for s in statuses if s[1] != 200], [], "no upload rejected during the rotation")
        self.assertIn("token-a-old", {tok for tok, _ in statuses})
        self.assertIn("token-a-new", {tok for tok, _ in statuses})
        self.assertEqual(self.upload("token-a-old", probe_results(1, probe_id="it-a"))[0], 403)
        self.assertEqual(self.upload("token-a-new", probe_results(1, probe_id="it-a"))[0], 200)
        self.assertEqual(self.c.query("SELECT count(*) AS n FROM probe_results")[0]["n"], len(statuses) + 1)
        self.assertEqual(self.c.metric('vantage_collector_config_reloads_total{result="ok"}'), 3)

    def test_a_broken_file_is_logged_exactly_and_the_old_configuration_keeps_serving(self):
        with open(self.c.config_path) as f:
            good = f.read()
        broken = good.replace('"probes"', '"probez"', 1)
        self.assertNotEqual(good, broken)
        write(self.c.config_path, broken)
        expected = subprocess.run([COLLECTOR, "--validate", "--config", self.c.config_path],
                                  capture_output=True, text=True, timeout=30)
        self.assertEqual(expected.returncode, 2)
        self.sighup_and_wait("failed")
        failed = self.c.log_lines("collector.reload_failed")
        self.assertEqual(len(failed), 1)
        self.assertEqual(failed[0]["error"], expected.stderr.strip())
        self.assertEqual(failed[0]["file"], self.c.config_path)
        self.assertIn("probez: unknown key", failed[0]["error"])
        # Still the old tokens, still serving.
        self.assertEqual(self.upload("token-a-old", probe_results(1, probe_id="it-a"))[0], 200)
        self.assertEqual(self.post_heartbeat("token-b", heartbeat("it-b"))[0], 204)
        self.assertEqual(self.c.metric('vantage_collector_config_reloads_total{result="ok"}'), 0)

    def test_restart_only_keys_are_warned_and_kept_while_the_rest_applies(self):
        other_db = os.path.join(self.d, "other.db")
        self.rewrite_config(listen=f"127.0.0.1:{self.c.port + 1}", store={"sqlite": other_db},
                            allowed_origins=["https://shop.example.com"])
        self.sighup_and_wait()
        keys = sorted(l["key"] for l in self.c.log_lines("collector.reload_needs_restart"))
        self.assertEqual(keys, ["listen", "store.sqlite"])
        # Still on the old port and database; the allowed origins changed at once.
        body = json.dumps([{"age": 1, "type": "network-error", "url": "https://shop.example.com/",
                            "body": {"type": "tcp.timed_out", "phase": "connection"}}])
        status = self.c.request("POST", "/reports/nel", body, {"Content-Type": "application/reports+json",
                                                                "Origin": "https://evil.example.net"})[0]
        self.assertEqual(status, 403)
        status = self.c.request("POST", "/reports/nel", body, {"Content-Type": "application/reports+json",
                                                                "Origin": "https://shop.example.com"})[0]
        self.assertEqual(status, 204)
        wait_for(lambda: self.c.query("SELECT count(*) AS n FROM browser_reports")[0]["n"] == 1, 5,
                 what="the report in the running database")
        self.assertFalse(os.path.exists(other_db))


class ExclusiveListen(unittest.TestCase):
    def test_a_second_collector_on_the_same_address_exits_with_a_clear_message(self):
        first = start_collector(self)
        d = temp_dir(self)
        second = Collector(d)
        second.config["listen"] = f"127.0.0.1:{first.port}"
        with open(second.config_path, "w") as f:
            json.dump(second.config, f)
        p = subprocess.run([COLLECTOR, "--config", second.config_path], capture_output=True, text=True,
                           timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"vantage-collector: cannot listen on 127.0.0.1:{first.port}: address in use "
                      "(another collector?)", p.stderr)
        # It stopped before opening anything: no database of its own (nor a write to the first's).
        self.assertFalse(os.path.exists(second.db))
        # The first one keeps every connection.
        self.assertTrue(first.alive())
        for _ in range(20):
            self.assertEqual(first.request("GET", "/healthz")[0], 200)
        # 20 requests, the harness's start-up check and this scrape: all on the one thread.
        self.assertEqual(first.metric('vantage_collector_accepted_connections_total{thread="0"}'), 22)

    def test_two_event_loop_threads_share_the_port_and_both_accept(self):
        c = start_collector(self, threads=2, limits={"per_ip": {"rate": 0}})
        errors = []

        def client(n):
            try:
                for _ in range(n):
                    if c.request("GET", "/healthz")[0] != 200:
                        errors.append("status")
            except OSError as e:
                errors.append(str(e))
        # Accepts race between the two threads' event loops: with concurrent clients both win
        # some (a thread busy with one connection leaves the next to the other).
        for _ in range(5):
            threads = [threading.Thread(target=client, args=(40,)) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            counts = [c.metric(f'vantage_collector_accepted_connections_total{{thread="{i}"}}') for i in (0, 1)]
            if min(counts) > 0:
                break
        self.assertEqual(errors, [])
        self.assertGreater(min(counts), 0, counts)
        # And still exclusive: nobody else can bind the address, even with SO_REUSEPORT.
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        with self.assertRaises(OSError):
            s.bind(("127.0.0.1", c.port))
        s.close()


if __name__ == "__main__":
    unittest.main()
