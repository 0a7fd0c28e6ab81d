"""The bgp check's RIS Live input against a local websocket server (tests/bgp/ris_live_server.py,
standard library only) on 127.0.0.1: the real RIS Live capture of tests/data/bgp/ris-live is
replayed to the probe, then crafted messages announce hijacks of a monitored prefix; what the
check publishes goes to the real vantage-collector (bgp_alerts, route_events). Connections are
cut in the middle of a frame, the server is killed and restarted, refuses the upgrade and talks
garbage; TLS (wss://) with a private CA."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from collector_harness import Collector  # noqa: E402
from harness import Probe, free_port, wait_for, write_config  # noqa: E402
from ris_live_server import RisLiveServer, update  # noqa: E402

CAPTURE = os.path.join(HERE, "..", "data", "bgp", "ris-live", "libbgpstream-ris-live-stream.json")

# 208.65.152.0/22 (YouTube, the 2008 hijack) and 45.161.192.0/22, which covers the one UPDATE of
# the real capture (45.161.192.0/23 from AS268481, its legitimate origin here). No resolve hold:
# a withdrawn hijack resolves at once.
PREFIXES = """\
208.65.152.0/22:
  description: YouTube
  asn: [36561]
45.161.192.0/22:
  description: the RIS Live capture's prefix
  asn: [268481]
options:
  min_peers: 1
  resolve_hold: 0s
"""

LEGIT_1 = ("193.0.0.56", 3333, [3333, 1299, 36561])    # rrc00's peer, a path to YouTube's origin
LEGIT_2 = ("195.66.224.175", 6939, [6939, 36561])       # another RIS peer (rrc01)


def hijack(prefix, peer=LEGIT_1, origin=17557, host="rrc00"):
    return update(peer[0], peer[1], [peer[1], 3491, origin], announce=[prefix], host=host)


def legit(peer=LEGIT_1, host="rrc00", prefix="208.65.152.0/22"):
    return update(peer[0], peer[1], peer[2], announce=[prefix], host=host)


def records(path, kind=None):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        out = [json.loads(line) for line in f if line.strip()]
    return [r for r in out if kind is None or r["kind"] == kind]


class RisLive(unittest.TestCase):
    gap_expiry = "1h"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vantage-ris-live-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        with open(os.path.join(self.dir, "prefixes.yml"), "w") as f:
            f.write(PREFIXES)
        self.out = os.path.join(self.dir, "out.jsonl")
        self.log = os.path.join(self.dir, "probe.log")
        self.metrics_port = free_port()
        self.token_file = os.path.join(self.dir, "token")
        with open(self.token_file, "w") as f:
            f.write("ris-probe-token\n")
        self.collector = Collector(self.dir, probes=[{"id": "it-ris", "token_file": self.token_file}]).start()
        self.addCleanup(self.collector.stop)
        self.probe = None
        self.addCleanup(self.stop_probe)

    def start(self, server, checks=None, **ris_live):
        options = {"url": f"ws://127.0.0.1:{server.port}/v1/ws/", "reconnect": {"initial": "100ms", "max": "500ms"},
                   "ping_interval": "1s", "gap_expiry": self.gap_expiry}
        options.update(ris_live)
        config = write_config({
            "vantage_point": {"id": "it-ris", "region": "lab"},
            "collector": {"url": f"http://127.0.0.1:{self.collector.port}/v1/results", "token_file": self.token_file,
                          "spool_dir": os.path.join(self.dir, "spool"), "flush_interval": "100ms"},
            "metrics": {"listen": f"127.0.0.1:{self.metrics_port}"},
            "checks": checks or [{"id": "ris", "kind": "bgp", "interval": "200ms", "prefixes": "prefixes.yml",
                                  "ris_live": options}],
        }, self.dir)
        self.probe = Probe(config, output=self.out, log=self.log)

    def stop_probe(self):
        if self.probe:
            rc = self.probe.stop()
            self.probe = None
            self.assertEqual(rc, 0, self.log_text()[-3000:])

    def wait(self, predicate, timeout, what, interval=0.1):
        """wait_for, with the end of the probe's log when it times out."""
        try:
            return wait_for(predicate, timeout, interval=interval, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- probe log:\n{self.log_text()[-4000:]}") from None

    def log_text(self):
        with open(self.log) as f:
            return f.read()

    def log_events(self, event):
        return [json.loads(line) for line in self.log_text().splitlines() if f'"event":"{event}"' in line]

    def metric(self, name, check="ris"):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        label = f'{{check="{check}"}}' if check else ""
        m = re.search(rf"^{name}{re.escape(label)} (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    def stored_alerts(self, prefix=None):
        sql = "SELECT alert, status, prefix, origin_asn, record FROM bgp_alerts"
        rows = self.collector.query(sql + (" WHERE prefix = ?" if prefix else ""), (prefix,) if prefix else ())
        return [(r["alert"], r["status"], r["prefix"]) for r in rows]

    def stored_events(self):
        return self.collector.query("SELECT event, collector, peer_ip, prefix, as_path, record FROM route_events")

    def subscribed(self, server, connection):
        """Waits until connection number `connection` has sent all its subscriptions."""
        self.wait(lambda: len(server.subscriptions(connection)) == 3, 10,
                 what=f"the subscriptions of connection {connection}")
        time.sleep(0.3)  # the server replays once the burst of subscriptions is over
        return [s for _, s in server.subscriptions(connection)]


class Streaming(RisLive):
    def test_the_real_capture_is_digested_and_a_hijack_reaches_the_collector_within_two_seconds(self):
        with open(CAPTURE) as f:
            capture = [line.rstrip("\n") for line in f if line.strip()]
        server = RisLiveServer(replay=capture)
        self.addCleanup(server.stop)
        self.start(server)
        subscriptions = self.subscribed(server, 1)
        # One subscription per monitored prefix, more-specifics included, acknowledged, and the
        # peer state changes; the client names itself after the vantage point.
        self.assertEqual(subscriptions, [
            {"type": "UPDATE", "prefix": "208.65.152.0/22", "moreSpecific": True, "lessSpecific": False,
             "socketOptions": {"includeRaw": False, "acknowledge": True}},
            {"type": "UPDATE", "prefix": "45.161.192.0/22", "moreSpecific": True, "lessSpecific": False,
             "socketOptions": {"includeRaw": False, "acknowledge": True}},
            {"type": "RIS_PEER_STATE", "socketOptions": {"includeRaw": False, "acknowledge": True}},
        ])
        self.assertEqual(server.clients(), ["vantage-it-ris"])
        # The capture (2019): its UPDATE of 45.161.192.0/23 is a route event (legitimate origin,
        # no alert); its RIS_PEER_STATE down is the peer's session going down; OPEN, NOTIFICATION
        # and KEEPALIVE make no event; its ris_error is logged and counted; the cut last line (a
        # KEEPALIVE repeated, with the same id) is dropped as a repeat.
        self.wait(lambda: len(records(self.out, "route_event")) >= 2, 10, what="the capture's route events")
        events = records(self.out, "route_event")
        self.assertEqual([(e["event"], e["collector"], e["peer"], e.get("prefix"), e.get("path")) for e in events], [
            ("announce", "rrc00", {"ip": "72.22.223.9", "asn": 11708}, "45.161.192.0/23",
             [11708, 32097, 1299, 52320, 263009, 263009, 263009, 263009, 263009, 52993, 268481, 268481]),
            ("peer_down", "rrc01", {"ip": "195.66.224.59", "asn": 24931}, None, None)])
        self.assertEqual(events[0]["monitored_prefix"], "45.161.192.0/22")
        self.assertEqual(records(self.out, "bgp_alert"), [])
        self.wait(lambda: self.metric("vantage_bgp_ris_live_server_errors_total") == 1, 5, what="the ris_error counted")
        self.assertEqual(self.log_events("bgp.ris_live_server_error")[0]["message"], "this is a test error message")
        self.assertEqual(self.metric("vantage_bgp_ris_live_messages_total"), 6)
        self.assertEqual(self.metric("vantage_bgp_ris_live_duplicates_total"), 1)
        self.assertEqual(self.metric("vantage_bgp_ris_live_connected", check=None), 1)

        # The YouTube hijack of 2008, announced now: in the collector's store within 2 s.
        sent = time.time()
        self.assertEqual(server.send(hijack("208.65.153.0/24")), 1)
        self.wait(lambda: self.stored_alerts("208.65.153.0/24"), 2, interval=0.02,
                 what="the hijack in the collector's bgp_alerts within 2 s")
        latency = time.time() - sent
        row = self.collector.query("SELECT * FROM bgp_alerts")[0]
        self.assertEqual((row["alert"], row["status"], row["prefix"], row["monitored_prefix"], row["origin_asn"],
                          row["probe_id"], row["check_name"]),
                         ("sub_prefix_hijack", "open", "208.65.153.0/24", "208.65.152.0/22", 17557, "it-ris", "ris"))
        print(f"\nRIS Live hijack to the collector's bgp_alerts: {latency * 1000:.0f} ms", file=sys.stderr)
        event = [e for e in records(self.out, "route_event") if e.get("prefix") == "208.65.153.0/24"][0]
        self.assertEqual((event["collector"], event["peer"], event["origin"]),
                         ("rrc00", {"ip": "193.0.0.56", "asn": 3333}, 17557))

    def test_a_connection_cut_mid_frame_is_resubscribed_with_no_duplicate_and_no_missed_alert(self):
        # A replaying server: every new connection gets everything sent before.
        server = RisLiveServer(replay_history=True)
        self.addCleanup(server.stop)
        self.start(server)
        first = self.subscribed(server, 1)
        server.send(legit(LEGIT_1))
        server.send(legit(LEGIT_2, host="rrc01"))
        server.send(hijack("208.65.153.0/24"))
        self.wait(lambda: self.stored_alerts("208.65.153.0/24"), 5, what="the first hijack in the store")
        # 200 legitimate announcements from 200 peers; the connection is cut (half a frame, then a
        # TCP reset) after 100 of them.
        burst = [update(f"198.18.{i // 250}.{i % 250 + 1}", 64600 + i, [174, 3356, 36561], announce=["208.65.152.0/22"],
                        host="rrc03") for i in range(200)]
        server.send_burst_and_cut(burst, cut_after=100)
        # The probe reconnects and subscribes again, the same way; the server replays the 203
        # messages sent so far, of which the probe had read 3 to 103.
        second = self.subscribed(server, 2)
        self.assertEqual(second, first)
        self.wait(lambda: len(self.stored_events()) == 203, 10, what="the 203 announcements in the store")
        # A new hijack after the reconnection is not missed.
        server.send(hijack("208.65.154.0/24", peer=LEGIT_2, origin=23724, host="rrc01"))
        self.wait(lambda: self.stored_alerts("208.65.154.0/24"), 5, what="the second hijack in the store")
        time.sleep(0.5)
        # Each alert once, each announcement once.
        self.assertEqual(sorted(self.stored_alerts()), [("sub_prefix_hijack", "open", "208.65.153.0/24"),
                                                        ("sub_prefix_hijack", "open", "208.65.154.0/24")])
        events = self.stored_events()
        self.assertEqual(len(events), 204)
        self.assertEqual(len({(e["peer_ip"], e["prefix"]) for e in events}), 204)
        # What the probe had read before the reset (at least the 3 before the burst, at most 103:
        # the kernel drops what was not read yet) came again and was recognised.
        duplicates = self.metric("vantage_bgp_ris_live_duplicates_total")
        self.assertTrue(3 <= duplicates <= 103, duplicates)
        self.assertEqual(self.metric("vantage_bgp_ris_live_messages_total") - duplicates, 204)
        self.assertEqual(self.metric("vantage_bgp_ris_live_gaps_total"), 1)
        self.assertGreaterEqual(self.metric("vantage_bgp_ris_live_reconnects_total"), 1)
        self.assertEqual(self.metric("vantage_bgp_ris_live_connected", check=None), 1)
        gap = self.log_events("bgp.ris_live_gap")
        self.assertEqual(len(gap), 1)
        self.assertLess(gap[0]["seconds"], 2)
        self.assertTrue(self.log_events("bgp.ris_live_disconnected"))

    def test_a_killed_server_is_retried_with_back_off_and_the_restarted_one_resubscribed(self):
        server = RisLiveServer()
        self.start(server)
        self.subscribed(server, 1)
        server.send(hijack("208.65.153.0/24"))
        self.wait(lambda: self.stored_alerts("208.65.153.0/24"), 5, what="the first hijack in the store")
        port = server.port
        server.stop()  # the listener closes, the connection is reset
        # Refused connections, retried after 50-100 ms, then longer, up to 250-500 ms.
        self.wait(lambda: self.metric("vantage_bgp_ris_live_reconnects_total") >= 4, 10, what="four reconnection attempts")
        self.assertEqual(self.metric("vantage_bgp_ris_live_connected", check=None), 0)
        down = self.log_events("bgp.ris_live_disconnected")
        self.assertTrue(down)
        time.sleep(1)
        attempts = self.metric("vantage_bgp_ris_live_reconnects_total")
        self.assertLess(attempts, 20, "the back-off should space the attempts")
        restarted = RisLiveServer(port=port)
        self.addCleanup(restarted.stop)
        self.subscribed(restarted, 1)
        sent = time.time()
        restarted.send(hijack("208.65.154.0/24", origin=23724))
        self.wait(lambda: self.stored_alerts("208.65.154.0/24"), 2, interval=0.02, what="the new hijack within 2 s")
        self.assertLess(time.time() - sent, 2)
        time.sleep(0.3)
        self.assertEqual(sorted(self.stored_alerts()), [("sub_prefix_hijack", "open", "208.65.153.0/24"),
                                                        ("sub_prefix_hijack", "open", "208.65.154.0/24")])
        self.assertEqual(self.metric("vantage_bgp_ris_live_gaps_total"), 1)

    def test_a_server_that_refuses_or_talks_garbage_is_logged_counted_and_retried(self):
        server = RisLiveServer(mode="http404")
        self.addCleanup(server.stop)
        self.start(server)
        self.wait(lambda: self.log_events("bgp.ris_live_disconnected"), 10, what="the refused handshake logged")
        self.assertIn("HTTP 404", self.log_events("bgp.ris_live_disconnected")[0]["reason"])
        self.wait(lambda: self.metric("vantage_bgp_ris_live_reconnects_total") >= 2, 10, what="retries")
        server.mode = "refuse"  # accepts, then closes before the handshake
        before = self.metric("vantage_bgp_ris_live_reconnects_total")
        self.wait(lambda: self.metric("vantage_bgp_ris_live_reconnects_total") >= before + 2, 10, what="retries")
        server.mode = "garbage"  # accepts the upgrade, sends what is not RIS Live, closes
        self.wait(lambda: self.metric("vantage_bgp_ris_live_invalid_messages_total") >= 5, 10, what="garbage counted")
        invalid = self.log_events("bgp.ris_live_invalid_message")
        self.assertEqual(invalid[0]["reason"], "not JSON")
        self.assertGreaterEqual(self.metric("vantage_bgp_ris_live_messages_total"), 1)  # with a bad peer
        server.mode = "ris"
        garbage = server.accepted
        self.wait(lambda: [n for n, _ in server.subscriptions() if n > garbage], 10, what="a good connection")
        time.sleep(0.3)
        server.send(hijack("208.65.153.0/24"))
        self.wait(lambda: self.stored_alerts("208.65.153.0/24"), 5, what="the hijack in the store")
        self.assertEqual(self.metric("vantage_bgp_ris_live_gaps_total"), 0)  # nothing was subscribed before


class GapExpiry(RisLive):
    gap_expiry = "2s"

    def test_after_a_gap_an_unconfirmed_hijack_is_withdrawn_and_a_confirmed_one_and_clean_routes_stay(self):
        server = RisLiveServer()
        self.addCleanup(server.stop)
        self.start(server)
        self.subscribed(server, 1)
        server.send(legit(LEGIT_1))
        server.send(legit(LEGIT_2, host="rrc01"))
        server.send(hijack("208.65.153.0/24"))
        server.send(hijack("208.65.154.0/24", peer=LEGIT_2, host="rrc01"))
        self.wait(lambda: len(self.stored_alerts()) == 2, 5, what="two hijacks in the store")
        server.drop()
        self.subscribed(server, 2)
        reconnected = time.time()
        # After the gap, one peer announces its hijack again: confirmed. The other hijack is not
        # heard of again: withdrawn gap_expiry (2 s) after the reconnection, and resolved.
        server.send(hijack("208.65.154.0/24", peer=LEGIT_2, host="rrc01"))
        self.wait(lambda: ("sub_prefix_hijack", "resolved", "208.65.153.0/24") in self.stored_alerts(), 6,
                 what="the unconfirmed hijack to resolve")
        self.assertGreaterEqual(time.time() - reconnected, 1.5)
        time.sleep(0.5)
        self.assertEqual(sorted(self.stored_alerts()), [("sub_prefix_hijack", "open", "208.65.153.0/24"),
                                                        ("sub_prefix_hijack", "open", "208.65.154.0/24"),
                                                        ("sub_prefix_hijack", "resolved", "208.65.153.0/24")])
        withdrawn = [json.loads(e["record"]) for e in self.stored_events() if e["event"] == "withdraw"]
        self.assertEqual([(w["prefix"], w["peer"]["ip"], w["reason"]) for w in withdrawn],
                         [("208.65.153.0/24", "193.0.0.56", "not confirmed since a RIS Live gap")])
        # The legitimate routes are kept: no visibility loss for YouTube's /22.
        self.assertEqual(self.log_events("bgp.ris_live_gap_expired")[0]["routes"], 1)


class Tls(RisLive):
    def make_ca(self):
        d = self.dir

        def run(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=vantage test CA")
        run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
        with open(os.path.join(d, "san.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
        return os.path.join(d, "server.pem"), os.path.join(d, "server.key")

    def test_wss_with_a_private_ca_and_a_second_check_that_does_not_trust_it(self):
        server = RisLiveServer(tls=self.make_ca())
        self.addCleanup(server.stop)
        url = f"wss://127.0.0.1:{server.port}/v1/ws/?client=tls-test"
        common = {"kind": "bgp", "interval": "200ms", "prefixes": "prefixes.yml"}
        self.start(server, checks=[
            dict(common, id="ris", ris_live={"url": url, "ca_file": "ca.pem", "prefixes": ["208.65.152.0/22"],
                                             "peer_state": False}),
            dict(common, id="untrusting", ris_live={"url": url, "reconnect": {"initial": "200ms", "max": "1s"}}),
        ])
        self.wait(lambda: server.subscriptions(), 10, what="a subscription over TLS")
        time.sleep(0.3)
        self.assertEqual([s["prefix"] for _, s in server.subscriptions()], ["208.65.152.0/22"])
        self.assertEqual(server.clients(), ["tls-test"])
        server.send(hijack("208.65.153.0/24"))
        self.wait(lambda: self.stored_alerts("208.65.153.0/24"), 5, what="the hijack over TLS in the store")
        # The system's CAs do not know the test CA: the other check cannot connect, and says why.
        self.wait(lambda: [d for d in self.log_events("bgp.ris_live_disconnected") if d["check"] == "untrusting"], 10,
                 what="the untrusting check's failure")
        failure = [d for d in self.log_events("bgp.ris_live_disconnected") if d["check"] == "untrusting"][0]
        self.assertIn("TLS: certificate verify failed", failure["reason"])
        # One set of metric families for both checks, a series per check.
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        self.assertEqual(text.count("# TYPE vantage_bgp_ris_live_messages_total counter"), 1)
        self.assertEqual(self.metric("vantage_bgp_ris_live_messages_total", "ris"), 1)
        self.assertEqual(self.metric("vantage_bgp_ris_live_messages_total", "untrusting"), 0)
        self.assertIn('vantage_bgp_ris_live_reconnects_total{check="untrusting"}', text)
        self.assertEqual(self.metric("vantage_bgp_ris_live_connected", check=None), 1)


if __name__ == "__main__":
    unittest.main()
