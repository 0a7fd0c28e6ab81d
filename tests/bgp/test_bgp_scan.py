"""`vantage bgp scan` and `generate`: hijack, sub-prefix hijack, route leak (naming the leaking
AS), unexpected upstream, visibility loss and RPKI invalid on MRT files written by real routers
(gobgpd, BIRD, FRR in a lab run) and on a real RIS RIB dump (false-positive control:
customer more-specifics under ignoreMorespecifics, prepending)."""
import json
import os
import shutil
import struct
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "bgp")
LAB = os.path.join(DATA, "lab")
RIS_RIB = os.path.join(DATA, "bgpdump", "bview.20020722.2337.gz")  # RIS rrc05, 2002-07-22
BUILD_DIR = os.environ.get("VANTAGE_BUILD_DIR", os.path.join(HERE, "..", "..", "build", "dev"))
VANTAGE = os.path.join(BUILD_DIR, "analysis", "vantage")

# The lab's expectations and AS relationships (regions/lab/bgp/): the YouTube /22 (AS36561), the
# Cloudflare /20 (AS13335) and 2001:db8:100::/48; AS396531 a customer of both AS33154 and AS701.
LAB_BGP = os.path.join(HERE, "..", "..", "regions", "lab", "bgp")
with open(os.path.join(LAB_BGP, "as-rel.txt")) as _f:
    AS_REL = _f.read()
with open(os.path.join(LAB_BGP, "prefixes.yml")) as _f:
    LAB_PREFIXES = _f.read()


class ScanTest(unittest.TestCase):
    """Runs `vantage bgp scan --json` with a prefixes file written to a temporary directory."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vantage-bgp-scan-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def scan(self, files, prefixes, *extra, status=0):
        """The alerts; checks the exit status and the summary object that ends --json output."""
        p = subprocess.run([VANTAGE, "bgp", "scan", *files, "--prefixes", self.write("prefixes.yml", prefixes),
                            "--json", *extra], capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, status, p.stderr)
        self.stderr = p.stderr
        records = [json.loads(line) for line in p.stdout.splitlines()]
        self.assertEqual(records[-1]["kind"], "scan_summary")
        self.assertEqual(records[-1]["exit_status"], status)
        self.assertEqual(records[-1]["files"], len(files))
        self.assertEqual(records[-1]["alerts"], len(records) - 1)
        return records[:-1]


class Scan(ScanTest):
    def test_lab_hijack_and_leak_are_detected_with_origin_and_leaker_from_every_router(self):
        as_rel = self.write("as-rel.txt", AS_REL)
        for mrt in ("gobgp-updates.mrt", "bird-messages.mrt", "frr-updates.mrt", "gobgp-table.mrt",
                    "frr-rib.mrt", "bird-table4.mrt"):
            with self.subTest(mrt=mrt):
                alerts = [a for a in self.scan([os.path.join(LAB, mrt)], LAB_PREFIXES, "--as-rel", as_rel)
                          if a["status"] == "open"]
                hijack = [a for a in alerts if a["alert"] == "sub_prefix_hijack"]
                self.assertEqual(len(hijack), 1, alerts)
                self.assertEqual((hijack[0]["prefix"], hijack[0]["origin"], hijack[0]["expected"]),
                                 ("208.65.153.0/24", 17557, [36561]))
                leak = [a for a in alerts if a["alert"] == "route_leak"]
                self.assertEqual(len(leak), 1, alerts)
                self.assertEqual((leak[0]["prefix"], leak[0]["leaker"], leak[0]["segment"]),
                                 ("104.20.0.0/20", 396531, [33154, 396531, 701]))
                # The legitimate /22 (origin 36561) and the IPv6 route via its expected upstream: quiet.
                self.assertFalse([a for a in alerts if a["alert"] in ("hijack", "unexpected_upstream")], alerts)

    def test_the_session_going_down_resolves_the_alerts_and_reports_lost_visibility(self):
        alerts = self.scan([os.path.join(LAB, "bird-messages.mrt")], LAB_PREFIXES,
                           "--as-rel", self.write("as-rel.txt", AS_REL))
        resolved = {a["alert"] for a in alerts if a["status"] == "resolved"}
        self.assertEqual(resolved, {"sub_prefix_hijack", "route_leak"})
        lost = {a["prefix"] for a in alerts if a["alert"] == "visibility_loss" and a["status"] == "open"}
        self.assertEqual(lost, {"208.65.152.0/22", "104.20.0.0/20", "2001:db8:100::/48"})

    def test_without_as_relationships_no_leak_is_claimed(self):
        alerts = self.scan([os.path.join(LAB, "gobgp-updates.mrt")], LAB_PREFIXES)
        self.assertFalse([a for a in alerts if a["alert"] == "route_leak"])

    def test_unexpected_upstream(self):
        prefixes = LAB_PREFIXES.replace("upstreams: [6939]", "upstreams: [174]")
        alerts = self.scan([os.path.join(LAB, "gobgp-updates.mrt")], prefixes)
        up = [a for a in alerts if a["alert"] == "unexpected_upstream"]
        self.assertEqual([(a["prefix"], a["upstream"], a["expected"]) for a in up],
                         [("2001:db8:100::/48", 6939, [174])])

    def test_rpki_invalid_more_specific_and_valid_covering_route(self):
        vrp = self.write("vrps.json", json.dumps({"roas": [
            {"asn": "AS36561", "prefix": "208.65.152.0/22", "maxLength": 24, "ta": "test"},
            {"asn": 13335, "prefix": "104.20.0.0/20", "maxLength": 20}]}))
        alerts = self.scan([os.path.join(LAB, "gobgp-updates.mrt")], LAB_PREFIXES, "--vrp", vrp)
        rpki = [(a["prefix"], a["origin"]) for a in alerts if a["alert"] == "rpki_invalid"]
        self.assertEqual(rpki, [("208.65.153.0/24", 17557)])

    def test_bgpalerter_vrp_files_with_every_asn_form_load(self):
        vrp = os.path.join(DATA, "rpki", "bgpalerter-vrp.correct.json")  # "13335", "AS2914", 1234
        prefixes = "8.8.8.0/22:\n  asn: [2914]\n103.21.244.0/24:\n  asn: [13335]\n"
        self.assertEqual(self.scan([os.path.join(LAB, "gobgp-updates.mrt")], prefixes, "--vrp", vrp), [])

    def test_customer_more_specifics_under_ignore_more_specifics_do_not_alert_on_real_ris_data(self):
        # In RIS rrc05's RIB of 2002-07-22, AS3549 originates 20.139.0.0/16, its customer AS17916
        # three more-specifics (path … 3549 17916) and AS7474 a fourth.
        quiet = self.scan([RIS_RIB], "20.139.0.0/16:\n  asn: [3549]\n  ignoreMorespecifics: true\n")
        self.assertEqual(quiet, [])
        loud = self.scan([RIS_RIB], "20.139.0.0/16:\n  asn: [3549]\n  ignoreMorespecifics: false\n")
        self.assertEqual(sorted((a["prefix"], a["origin"]) for a in loud if a["alert"] == "sub_prefix_hijack"),
                         [("20.139.0.0/22", 17916), ("20.139.10.0/24", 17916), ("20.139.192.0/18", 7474),
                          ("20.139.240.0/20", 17916)])

    def test_prepending_is_not_a_new_origin_nor_an_upstream_on_real_ris_data(self):
        # 12.2.192.0/24: path 1853 1239 701 14984 14984 14984 14984 (origin prepended three times).
        self.assertEqual(self.scan([RIS_RIB], "12.2.192.0/24:\n  asn: [14984]\n  upstreams: [701]\n"), [])
        alerts = self.scan([RIS_RIB], "12.2.192.0/24:\n  asn: [14984]\n  upstreams: [1239]\n")
        self.assertEqual([(a["alert"], a["upstream"], a["path"]) for a in alerts],
                         [("unexpected_upstream", 701, [1853, 1239, 701, 14984])])

    def test_min_peers_holds_back_an_alert_seen_by_too_few_peers(self):
        alerts = self.scan([os.path.join(LAB, "gobgp-updates.mrt")], LAB_PREFIXES, "--min-peers", "2")
        self.assertEqual(alerts, [])


class OtherInputs(ScanTest):
    def test_a_bmp_stream_from_gobgpd_raises_the_same_alerts_as_its_mrt_dump(self):
        as_rel = self.write("as-rel.txt", AS_REL)
        bmp = self.scan([os.path.join(LAB, "gobgp-bmp.bin")], LAB_PREFIXES, "--as-rel", as_rel)
        mrt = self.scan([os.path.join(LAB, "gobgp-updates.mrt")], LAB_PREFIXES, "--as-rel", as_rel)
        strip = lambda alerts: sorted((a["alert"], a["prefix"], a.get("origin"), a.get("leaker")) for a in alerts)
        self.assertEqual(strip(bmp), strip(mrt))
        self.assertEqual(len(bmp), 2)

    def test_an_frr_bmp_stream_with_only_end_of_rib_markers_parses_quietly(self):
        p = subprocess.run([VANTAGE, "bgp", "scan", os.path.join(LAB, "frr-bmp.bin"),
                            "--prefixes", self.write("p.yml", LAB_PREFIXES)], capture_output=True, text=True)
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""))

    def test_ris_live_messages_become_route_events(self):
        # The first message: 45.161.192.0/23 from AS268481 (path … 52993 268481 268481).
        # Its last line is cut: reported, and the exit status says so.
        alerts = self.scan([os.path.join(DATA, "ris-live", "libbgpstream-ris-live-stream.json")],
                           "45.161.192.0/22:\n  asn: [64500]\n", status=3)
        self.assertEqual([(a["alert"], a["prefix"], a["origin"], a["time"]) for a in alerts],
                         [("sub_prefix_hijack", "45.161.192.0/23", 268481, "2019-03-26T19:19:47.890000000Z")])
        quiet = self.scan([os.path.join(DATA, "ris-live", "libbgpstream-ris-live-stream.json")],
                          "45.161.192.0/22:\n  asn: [268481]\n  ignoreMorespecifics: true\n", status=3)
        self.assertEqual(quiet, [])


class Damage(ScanTest):
    """scan reports damage as dump does — the same words, with offsets, on stderr — says how much
    in its summary (stderr; and the scan_summary object with --json) and exits 3."""

    def run_both(self, path, *extra):
        prefixes = self.write("prefixes.yml", LAB_PREFIXES)
        dump = subprocess.run([VANTAGE, "bgp", "dump", path], capture_output=True, text=True)
        scan = subprocess.run([VANTAGE, "bgp", "scan", path, "--prefixes", prefixes, *extra], capture_output=True,
                              text=True)
        def about_the_file(command, err):
            prefix = f"vantage bgp {command}: {path}: "
            return [line[len(prefix):] for line in err.splitlines() if line.startswith(prefix)]
        return dump, scan, about_the_file("dump", dump.stderr), about_the_file("scan", scan.stderr)

    def test_bad_marker_unknown_subtype_unsupported_afi_and_a_cut_are_reported_as_dump_reports_them(self):
        with open(os.path.join(DATA, "mrtparse", "quagga_bgp"), "rb") as f:
            raw = bytearray(f.read())
        starts, pos = [], 0
        while pos < len(raw):
            starts.append(pos)
            pos += 12 + struct.unpack(">I", raw[pos + 8:pos + 12])[0]
        messages = [s for s in starts if raw[s + 4:s + 8] == b"\x00\x10\x00\x04"]  # BGP4MP MESSAGE_AS4
        marker, afi, subtype = messages[5], messages[10], messages[15]
        family = struct.unpack(">H", raw[marker + 22:marker + 24])[0]
        raw[marker + 12 + 12 + (32 if family == 2 else 8) + 3] ^= 0x01  # a byte of the BGP marker
        raw[afi + 12 + 10] = 0x01           # AFI 1 or 2 -> 257 or 258
        raw[subtype + 6] = 0x01             # subtype 4 -> 260
        path = self.write("damaged.mrt", "")
        with open(path, "wb") as f:
            f.write(bytes(raw[:-30]))       # and the last record cut
        dump, scan, dump_says, scan_says = self.run_both(path)
        self.assertEqual((dump.returncode, scan.returncode), (3, 3))
        self.assertEqual(scan_says, dump_says)
        self.assertEqual(scan_says[:3], [
            f"offset {marker}: BGP4MP MESSAGE: bad BGP marker",
            f"offset {afi}: BGP4MP MESSAGE: unsupported AFI {256 + raw[afi + 12 + 11]}",
            f"offset {subtype}: unknown subtype 260 of type 16 (BGP4MP); skipped {starts[starts.index(subtype) + 1] - subtype} "
            f"bytes to the next record header at offset {starts[starts.index(subtype) + 1]}"])
        self.assertRegex(scan_says[3], rf"^offset {starts[-1]}: truncated record: header says \d+ bytes, \d+ left$")
        self.assertRegex(scan_says[4], r"^4 damaged records skipped or read in part \(\d+ bytes of the stream skipped\)$")
        # --json: the same on stderr, and the summary object last on stdout.
        _, scan, _, json_says = self.run_both(path, "--json")
        self.assertEqual(json_says, scan_says)
        summary = json.loads(scan.stdout.splitlines()[-1])
        self.assertEqual({k: summary[k] for k in ("kind", "damaged_records", "damaged_files", "exit_status")},
                         {"kind": "scan_summary", "damaged_records": 4, "damaged_files": [path], "exit_status": 3})
        self.assertGreater(summary["skipped_bytes"], 0)

    def test_records_of_the_deprecated_bgp_type_are_counted_not_dropped_in_silence(self):
        # A type-5 UPDATE (RIS 1999-2001): peer AS and address, local AS and address, then the
        # UPDATE body (no withdrawals, no attributes, no NLRI). dump prints such records; scan
        # does not read them, and says so.
        body = struct.pack(">H4sH4sHH", 3333, bytes([193, 0, 0, 56]), 12654, bytes([193, 0, 4, 28]), 0, 0)
        path = self.write("bgp5.mrt", "")
        with open(path, "wb") as f:
            f.write(struct.pack(">IHHI", 945188487, 5, 1, len(body)) + body)
        _, scan, _, says = self.run_both(path, "--json")
        self.assertEqual(scan.returncode, 3)
        self.assertEqual(says, ["1 record of the deprecated MRT type 5 (BGP) skipped: scan reads TABLE_DUMP, "
                                "TABLE_DUMP_V2 and BGP4MP", "1 record of a type not read skipped"])
        summary = json.loads(scan.stdout.splitlines()[-1])
        self.assertEqual((summary["unread_records"], summary["damaged_records"]), (1, 0))

    @staticmethod
    def bgp4mp(subtype, body, time=1203530000):
        return struct.pack(">IHHI", time, 16, subtype, len(body)) + body

    @staticmethod
    def as4_head(afi=1):
        """BGP4MP *_AS4 header: peer AS 64511, local AS 64510, interface 0, AFI, peer and local
        addresses (documentation ranges)."""
        ips = bytes([192, 0, 2, 1, 192, 0, 2, 2]) if afi == 1 else bytes(32)
        return struct.pack(">IIHH", 64511, 64510, 0, afi) + ips

    def hijack_update(self, marker=b"\xff" * 16):
        """An UPDATE from peer AS64511 announcing the lab's YouTube /22 with origin AS17557."""
        attrs = (bytes([0x40, 1, 1, 0]) + bytes([0x40, 2, 10, 2, 2]) + struct.pack(">II", 64511, 17557) +
                 bytes([0x40, 3, 4, 192, 0, 2, 1]))
        body = struct.pack(">HH", 0, len(attrs)) + attrs + bytes([22, 208, 65, 152])
        return self.bgp4mp(4, self.as4_head() + marker + struct.pack(">HB", 19 + len(body), 2) + body)

    def test_a_record_with_a_bad_bgp_marker_is_skipped_by_scan_as_by_dump(self):
        # The same announcement raises a hijack when sound; with its marker damaged it is not a
        # BGP message: dump prints nothing for it, and scan neither alerts on it.
        sound = self.write("sound.mrt", "")
        with open(sound, "wb") as f:
            f.write(self.hijack_update())
        self.assertEqual([(a["alert"], a["status"]) for a in self.scan([sound], LAB_PREFIXES)], [("hijack", "open")])
        damaged = self.write("marker.mrt", "")
        with open(damaged, "wb") as f:
            f.write(self.hijack_update(marker=b"\xff" * 15 + b"\xfe"))
        dump, scan, dump_says, scan_says = self.run_both(damaged)
        self.assertEqual((dump.returncode, dump.stdout, scan.returncode, scan.stdout), (3, "", 3, ""))
        self.assertEqual(scan_says, dump_says)
        self.assertEqual(scan_says, ["offset 0: BGP4MP MESSAGE: bad BGP marker",
                                     "1 damaged record skipped or read in part"])

    def test_state_change_entry_bgp_length_and_deprecated_update_damage_are_reported_as_dump_reports_them(self):
        # scan reads records in one pass (no formatter): every check dump makes is made there too.
        state = self.bgp4mp(5, self.as4_head() + struct.pack(">HH", 6, 1) + b"\0\0")  # 2 bytes too many
        entry = self.bgp4mp(2, self.as4_head())  # ENTRY: bgpdump does not implement it
        short_length = self.bgp4mp(4, self.as4_head() + b"\xff" * 16 + struct.pack(">HB", 18, 2) + bytes(4))
        bgp5_short = struct.pack(">IHHI", 945188487, 5, 1, 6) + bytes(6)  # a type-5 UPDATE of 6 bytes
        records = [state, entry, short_length, self.hijack_update(), bgp5_short]
        offsets = [sum(len(r) for r in records[:i]) for i in range(len(records))]
        path = self.write("damaged.mrt", "")
        with open(path, "wb") as f:
            f.write(b"".join(records))
        dump, scan, dump_says, scan_says = self.run_both(path)
        self.assertEqual((dump.returncode, scan.returncode), (3, 3))
        self.assertEqual(scan_says[:4], dump_says[:4])
        self.assertEqual(scan_says[:4], [
            f"offset {offsets[0]}: BGP4MP STATE_CHANGE: unexpected length {len(state) - 12}",
            f"offset {offsets[1]}: BGP4MP subtype 2 (ENTRY/SNAPSHOT) is not implemented",
            f"offset {offsets[2]}: BGP4MP MESSAGE: BGP length 18",
            f"offset {offsets[4]}: BGP UPDATE: too short"])
        # The sound record among them is read: its hijack is raised.
        self.assertIn("hijack", scan.stdout)


class InvalidPrefixesFiles(unittest.TestCase):
    def test_every_invalid_prefixes_file_fails_with_its_exact_message(self):
        directory = os.path.join(HERE, "..", "config", "bgp")
        with open(os.path.join(directory, "expected-errors.tsv")) as f:
            expected = dict(line.rstrip("\n").split("\t", 1) for line in f if line.strip() and not line.startswith("#"))
        files = sorted(n for n in os.listdir(directory) if n.startswith("invalid-") and n.endswith(".yaml"))
        self.assertEqual(sorted(expected), files)
        for name in files:
            with self.subTest(file=name):
                p = subprocess.run([VANTAGE, "bgp", "scan", os.path.join(LAB, "frr-rib.mrt"), "--prefixes", name],
                                   capture_output=True, text=True, cwd=directory)
                self.assertEqual(p.returncode, 2)
                self.assertEqual(p.stderr, f"vantage bgp scan: {expected[name]}\n")


class Generate(unittest.TestCase):
    def test_generate_proposes_the_origins_prefixes_with_their_upstreams(self):
        p = subprocess.run([VANTAGE, "bgp", "generate", RIS_RIB, "--origin", "3549"], capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("20.139.0.0/16:\n  description: announced by AS3549\n  asn: [3549]\n", p.stdout)
        # The proposal is a valid prefixes file for scan: the RIB it came from raises nothing.
        d = tempfile.mkdtemp(prefix="vantage-bgp-gen-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "prefixes.yml")
        with open(path, "w") as f:
            f.write(p.stdout.replace("ignoreMorespecifics: false", "ignoreMorespecifics: true"))
        scan = subprocess.run([VANTAGE, "bgp", "scan", RIS_RIB, "--prefixes", path], capture_output=True,
                              text=True, timeout=300)
        self.assertEqual((scan.returncode, scan.stdout), (0, ""), scan.stderr)


if __name__ == "__main__":
    unittest.main()
