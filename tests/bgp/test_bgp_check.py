"""The probe's `bgp` check without root: real BMP streams captured from gobgpd and FRR are sent
over TCP to the probe's BMP listener, real MRT files are dropped into its watched directory, and
what the check publishes goes to the real vantage-collector, which stores route events and BGP
alerts in their own tables. (The network-namespace lab with live ExaBGP and FRR is
test_bgp_lab.py.)"""
import json
import os
import shutil
import socket
import struct
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from collector_harness import Collector  # noqa: E402
from harness import Probe, free_port, wait_for, write_config  # noqa: E402
from test_bgp_scan import AS_REL, LAB, LAB_PREFIXES  # noqa: E402


# Hand-built BMP v3 messages (RFC 7854 §4) for the reconnect test; the captures hold the rest.
def bmp_message(msg_type, body):
    return struct.pack("!BIB", 3, 6 + len(body), msg_type) + body


def per_peer_header(peer="192.0.2.1", asn=65000):
    addr = b"\x00" * 12 + socket.inet_aton(peer)
    return struct.pack("!BB8s16sII", 0, 0, b"\x00" * 8, addr, asn, 0x0a000001) + struct.pack("!II", int(time.time()), 0)


def bmp_initiation(sys_name):
    name = sys_name.encode()
    return bmp_message(4, struct.pack("!HH", 2, len(name)) + name)


def bgp_message(msg_type, body):
    return b"\xff" * 16 + struct.pack("!HB", 19 + len(body), msg_type) + body


def bmp_peer_up():
    open_msg = bgp_message(1, struct.pack("!BHHIB", 4, 65000, 90, 0x0a000001, 0))
    return bmp_message(3, per_peer_header() + socket.inet_aton("192.0.2.4") + b"\x00" * 12 +
                       struct.pack("!HH", 179, 40000) + open_msg + open_msg)


def update_announce(prefix, path):
    net, length = prefix.split("/")
    length = int(length)
    nlri = bytes([length]) + socket.inet_aton(net)[:(length + 7) // 8]
    as_path = struct.pack("!BB", 2, len(path)) + b"".join(struct.pack("!I", a) for a in path)
    attrs = (b"\x40\x01\x01\x00" + struct.pack("!BBB", 0x40, 2, len(as_path)) + as_path +
             b"\x40\x03\x04" + socket.inet_aton("192.0.2.1"))
    return bgp_message(2, struct.pack("!H", 0) + struct.pack("!H", len(attrs)) + attrs + nlri)


END_OF_RIB_V4 = bgp_message(2, b"\x00\x00\x00\x00")


def bmp_route_monitoring(update):
    return bmp_message(0, per_peer_header() + update)


def records(path, kind=None):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        out = [json.loads(line) for line in f if line.strip()]
    return [r for r in out if kind is None or r["kind"] == kind]


def alerts(path, status=None):
    return [(a["alert"], a["prefix"]) for a in records(path, "bgp_alert") if status is None or a["status"] == status]


class BgpCheck(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vantage-bgp-check-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        for name, text in (("prefixes.yml", LAB_PREFIXES), ("as-rel.txt", AS_REL)):
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)
        self.mrt_dir = os.path.join(self.dir, "mrt")
        os.mkdir(self.mrt_dir)
        self.out = os.path.join(self.dir, "out.jsonl")
        self.bmp_port = free_port()
        self.metrics_port = free_port()
        token_file = os.path.join(self.dir, "token")
        with open(token_file, "w") as f:
            f.write("bgp-probe-token\n")
        self.collector = Collector(self.dir, probes=[{"id": "it-bgp", "token_file": token_file}]).start()
        self.addCleanup(self.collector.stop)
        self.config = write_config({
            "vantage_point": {"id": "it-bgp", "region": "lab", "asn": 64496},
            "collector": {"url": f"http://127.0.0.1:{self.collector.port}/v1/results", "token_file": token_file,
                          "spool_dir": os.path.join(self.dir, "spool"), "flush_interval": "100ms"},
            "metrics": {"listen": f"127.0.0.1:{self.metrics_port}"},
            "checks": [{"id": "own-prefixes", "kind": "bgp", "interval": "200ms",
                        "prefixes": "prefixes.yml", "as_rel": "as-rel.txt",
                        "bmp": {"listen": f"127.0.0.1:{self.bmp_port}"}, "mrt_dir": "mrt",
                        "mrt_pattern": "updates.*", "mrt_settle": "2s"}],
        }, self.dir)
        self.log = os.path.join(self.dir, "probe.log")
        self.probe = Probe(self.config, output=self.out, log=self.log)
        self.addCleanup(self.stop_probe)
        wait_for(self.listening, 10, what="the BMP listener")

    def stop_probe(self):
        if self.probe:
            rc = self.probe.stop()
            self.probe = None
            self.assertEqual(rc, 0, self.log_text()[-2000:])

    def log_text(self):
        with open(self.log) as f:
            return f.read()

    def listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.bmp_port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def send_bmp(self, capture, chunk=7, router="127.0.0.2"):
        """Sends a captured BMP stream as the router at `router` would, in small pieces (messages
        split across reads)."""
        with open(os.path.join(LAB, capture), "rb") as f:
            data = f.read()
        with socket.create_connection(("127.0.0.1", self.bmp_port), source_address=(router, 0)) as s:
            for i in range(0, len(data), chunk):
                s.sendall(data[i:i + chunk])
            time.sleep(0.3)

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def test_bmp_from_a_router_raises_the_hijack_and_the_leak_as_records_stored_by_the_collector(self):
        self.send_bmp("gobgp-bmp.bin")
        wait_for(lambda: len(alerts(self.out, "open")) >= 2, 10, what="two alerts")
        opened = {a["alert"]: a for a in records(self.out, "bgp_alert") if a["status"] == "open"}
        hijack = opened["sub_prefix_hijack"]
        self.assertEqual((hijack["prefix"], hijack["monitored_prefix"], hijack["origin"], hijack["expected"]),
                         ("208.65.153.0/24", "208.65.152.0/22", 17557, [36561]))
        leak = opened["route_leak"]
        self.assertEqual((leak["prefix"], leak["leaker"], leak["segment"]), ("104.20.0.0/20", 396531, [33154, 396531, 701]))
        for a in opened.values():
            self.assertEqual(a["check"], "own-prefixes")
            self.assertEqual(a["vantage"], {"probe_id": "it-bgp", "region": "lab", "asn": 64496, "source": "bgp"})
        # Route events: only the monitored prefixes and their more-specifics (not 198.51.100.0/24).
        events = records(self.out, "route_event")
        self.assertEqual([e["event"] for e in events if "prefix" not in e], ["peer_up"])  # session events
        announced = sorted(e["prefix"] for e in events if e["event"] == "announce")
        self.assertEqual(announced, ["104.20.0.0/20", "2001:db8:100::/48", "208.65.152.0/22", "208.65.153.0/24"])
        hijack_event = next(e for e in events if e.get("prefix") == "208.65.153.0/24")
        self.assertEqual(hijack_event["collector"], "127.0.0.2")  # the router, by its address
        self.assertEqual(hijack_event["peer"], {"ip": "192.0.2.1", "asn": 65000})
        self.assertEqual(hijack_event["path"], [65000, 3491, 17557])
        self.assertEqual(hijack_event["communities"], ["3491:100"])
        self.assertEqual(hijack_event["monitored_prefix"], "208.65.152.0/22")
        # The collector stored every record once, in its own table.
        wait_for(lambda: self.collector.query("SELECT count(*) AS n FROM bgp_alerts")[0]["n"] == len(opened), 10,
                 what="the alerts in the collector's store")
        wait_for(lambda: self.collector.query("SELECT count(*) AS n FROM route_events")[0]["n"] == len(events), 10,
                 what="the route events in the collector's store")
        row = self.collector.query("SELECT * FROM bgp_alerts WHERE alert = 'route_leak'")[0]
        self.assertEqual((row["status"], row["prefix"], row["leaker_asn"], row["origin_asn"], row["probe_id"],
                          row["check_name"]), ("open", "104.20.0.0/20", 396531, 13335, "it-bgp", "own-prefixes"))
        self.assertEqual(json.loads(row["record"])["id"], leak["id"])
        row = self.collector.query("SELECT * FROM route_events WHERE prefix = '208.65.153.0/24'")[0]
        self.assertEqual((row["event"], row["peer_ip"], row["peer_asn"], row["origin_asn"], row["as_path"],
                          row["monitored_prefix"]), ("announce", "192.0.2.1", 65000, 17557, "65000 3491 17557",
                                                     "208.65.152.0/22"))
        self.assertEqual(self.collector.query("SELECT count(*) AS n FROM probe_results")[0]["n"], 0)
        # Prometheus sees the open alerts.
        m = self.metrics()
        self.assertIn('vantage_bgp_alert_open{check="own-prefixes",vantage_point="it-bgp",alert="route_leak",'
                      'prefix="104.20.0.0/20",monitored_prefix="104.20.0.0/20"} 1', m)
        self.assertIn('vantage_bgp_route_events_total{check="own-prefixes",vantage_point="it-bgp",event="announce"} 4', m)
        # What the monitor ignores is counted, by reason (198.51.100.0/24 is not monitored at all).
        self.assertIn('vantage_bgp_ignored_routes_total{reason="private_path"} 0', m)
        self.assertIn('vantage_bgp_ignored_routes_total{reason="bogon_prefix"} 0', m)

    def test_each_router_is_its_own_vantage_point(self):
        # FRR's capture reports its session with AS65000 going down and that peer's routes
        # withdrawn. The same neighbour seen through another router (another address) is another
        # peer: its routes, and the alerts they raised, stay.
        self.send_bmp("gobgp-bmp.bin", router="127.0.0.2")
        wait_for(lambda: len(alerts(self.out, "open")) >= 2, 10, what="two alerts")
        self.send_bmp("frr-bmp.bin", router="127.0.0.3")
        wait_for(lambda: any(e["event"] == "peer_down" and e["collector"] == "127.0.0.3"
                             for e in records(self.out, "route_event")), 10, what="the second router's Peer Down")
        time.sleep(0.5)
        self.assertEqual(alerts(self.out, "resolved"), [], "a second router's session must not touch the first's routes")
        # The same capture from the first router's address: now its Peer Down is that peer's.
        self.send_bmp("frr-bmp.bin", router="127.0.0.2")
        wait_for(lambda: len(alerts(self.out, "resolved")) >= 2, 10, what="the alerts to resolve")

    def test_a_router_that_reconnects_replaces_its_table_and_drops_what_it_did_not_resend(self):
        # gobgpd's table (hijack and leak) arrives; the session drops; the router reconnects and
        # sends Peer Up, only the legitimate /22 and End-of-RIB: the routes it did not re-send are
        # withdrawn at End-of-RIB and their alerts resolve.
        self.send_bmp("gobgp-bmp.bin")
        wait_for(lambda: len(alerts(self.out, "open")) >= 2, 10, what="two alerts")
        self.send_raw_bmp(bmp_initiation("lab-router") + bmp_peer_up() +
                          bmp_route_monitoring(update_announce("208.65.152.0/22", [65000, 3356, 36561])) +
                          bmp_route_monitoring(END_OF_RIB_V4))
        wait_for(lambda: len(alerts(self.out, "resolved")) >= 2, 10, what="the alerts to resolve at End-of-RIB")
        self.assertEqual(sorted(alerts(self.out, "resolved")),
                         [("route_leak", "104.20.0.0/20"), ("sub_prefix_hijack", "208.65.153.0/24")])
        # 104.20.0.0/20 was not re-sent: it lost its only peer. 2001:db8:100::/48 is IPv6, which
        # had no End-of-RIB: still there.
        self.assertIn(("visibility_loss", "104.20.0.0/20"), alerts(self.out, "open"))
        self.assertNotIn(("visibility_loss", "2001:db8:100::/48"), alerts(self.out, "open"))

    def send_raw_bmp(self, data, router="127.0.0.2"):
        with socket.create_connection(("127.0.0.1", self.bmp_port), source_address=(router, 0)) as s:
            s.sendall(data)
            time.sleep(0.3)

    def test_new_mrt_files_in_the_watched_directory_are_read_once_complete(self):
        with open(os.path.join(LAB, "gobgp-updates.mrt"), "rb") as f:
            data = f.read()
        # Written in two halves with a pause: the check waits until the file has stopped growing
        # (unchanged between looks and mrt_settle old) and reads it once, whole. Files outside
        # mrt_pattern and hidden files (rsync's temporaries) are never read.
        for other in ("README", ".updates.20261122.0050.tmp"):
            with open(os.path.join(self.mrt_dir, other), "wb") as f:
                f.write(data if other.startswith(".") else b"not MRT")
        path = os.path.join(self.mrt_dir, "updates.20261122.0050")
        with open(path, "wb") as f:
            f.write(data[:100])
        time.sleep(1)
        self.assertNotIn('"bgp.mrt_file_read"', self.log_text(), "a file still being written was read")
        with open(path, "ab") as f:
            f.write(data[100:])
        wait_for(lambda: len(alerts(self.out, "open")) >= 2, 10, what="the MRT file's alerts")
        self.assertEqual(sorted(alerts(self.out, "open")),
                         [("route_leak", "104.20.0.0/20"), ("sub_prefix_hijack", "208.65.153.0/24")])
        # A file that is not MRT is reported and skipped; the check keeps running. Files that do
        # not match mrt_pattern are not read.
        with open(os.path.join(self.mrt_dir, "updates.20261122.0055"), "wb") as f:
            f.write(b"\x00\x00\x00\x01not an MRT file at all")
        wait_for(lambda: '"bgp.mrt_warning","check":"own-prefixes","file":"updates.20261122.0055"' in self.log_text(),
                 10, what="the damaged file's warning")
        time.sleep(0.5)
        read = [json.loads(line) for line in self.log_text().splitlines() if '"bgp.mrt_file_read"' in line]
        self.assertEqual([(r["file"], r["events"]) for r in read],
                         [("updates.20261122.0050", 4), ("updates.20261122.0055", 0)])
        self.assertEqual(len(records(self.out, "bgp_alert")), 2)
        # The collector has them; a restarted probe reads the directory again (mrt_skip_existing
        # is false) and publishes the same records with the same ids: the collector drops them.
        stored = lambda: (self.collector.query("SELECT count(*) AS n FROM route_events")[0]["n"],
                          self.collector.query("SELECT count(*) AS n FROM bgp_alerts")[0]["n"])
        wait_for(lambda: stored() == (4, 2), 10, what="the records in the collector")
        first_ids = sorted(r["id"] for r in records(self.out))
        self.stop_probe()
        os.remove(self.out)
        self.probe = Probe(self.config, output=self.out, log=self.log)
        wait_for(lambda: len(records(self.out)) == len(first_ids), 15, what="the files read again")
        self.assertEqual(sorted(r["id"] for r in records(self.out)), first_ids)
        time.sleep(1)
        self.assertEqual(stored(), (4, 2))

    def test_a_stream_that_is_not_bmp_is_closed_and_the_listener_keeps_serving(self):
        with socket.create_connection(("127.0.0.1", self.bmp_port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(s.recv(100), b"", "the probe should close a stream it cannot follow")
        self.assertIn('"bgp.bmp_session_closed"', self.log_text())
        self.send_bmp("gobgp-bmp.bin")
        wait_for(lambda: len(alerts(self.out, "open")) >= 2, 10, what="alerts from the next router")

    def test_the_collector_refuses_a_malformed_bgp_record_with_the_field_named(self):
        line = json.dumps({"kind": "bgp_alert", "id": "x-1", "check": "own-prefixes", "time": "2026-11-22T00:53:47Z",
                           "alert": "hijack", "status": "maybe", "alert_key": "k", "prefix": "192.0.2.0/24",
                           "vantage": {"probe_id": "it-bgp"}})
        status, _, body = self.collector.request("POST", "/v1/results", line.encode(),
                                                 {"Content-Type": "application/x-ndjson",
                                                  "Authorization": "Bearer bgp-probe-token"})
        self.assertEqual(status, 400)
        self.assertIn("line 1: status: expected open or resolved", body.decode())


if __name__ == "__main__":
    unittest.main()
