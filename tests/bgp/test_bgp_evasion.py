"""BGP monitoring that cannot be evaded, on real MRT data plus crafted RIS Live lines through
`vantage bgp scan`: a private ASN appended to a hijack still alerts; a private AS behind the
expected origin is one private_origin; one peer flapping a second origin on a real RIB is one
moas alert, opened once and resolved once; a prepend typo is tagged and scores below the 2008
YouTube sub-prefix hijack, which scores highest."""
import json
import os
import subprocess
import unittest

from test_bgp_scan import DATA, LAB_PREFIXES, VANTAGE, ScanTest

RIS_RIB = os.path.join(DATA, "bgpdump", "bview.20020722.2337.gz")  # RIS rrc05, 2002-07-22 23:37
LAB_MRT = os.path.join(DATA, "lab", "gobgp-updates.mrt")  # the lab's replay of the 2008 YouTube hijack
# LAB_PREFIXES (regions/lab/bgp/prefixes.yml): YouTube 208.65.152.0/22 (AS36561), Cloudflare
# 104.20.0.0/20 (AS13335).


def ris(t, peer, peer_asn, path=None, prefixes=(), withdrawals=(), aggregator=None):
    """One RIS Live message (https://ris-live.ripe.net/manual/) as the websocket delivers it."""
    data = {"timestamp": t, "peer": peer, "peer_asn": str(peer_asn), "host": "rrc00", "type": "UPDATE"}
    if prefixes:
        data["path"] = path
        data["announcements"] = [{"next_hop": peer, "prefixes": list(prefixes)}]
    if withdrawals:
        data["withdrawals"] = list(withdrawals)
    if aggregator:
        data["aggregator"] = aggregator
    return json.dumps({"type": "ris_message", "data": data})


class Evasion(ScanTest):
    def scan(self, files, prefixes, *extra):
        """(alerts, stderr): the scan as test_bgp_scan runs it, with what it says on stderr."""
        alerts = super().scan(files, prefixes, *extra)
        return alerts, self.stderr

    def test_a_private_asn_appended_to_a_hijack_still_alerts(self):
        t = 1_700_000_000
        lines = [
            ris(t, "192.0.2.1", 3356, [3356, 17557, 65001], ["208.65.152.0/22"]),
            ris(t + 1, "192.0.2.1", 3356, [3356, 17557, 17557, 4200000000], ["208.65.153.0/24"]),
            ris(t + 2, "192.0.2.2", 174, [174, 666, 64512, 65535], ["104.20.8.0/21"]),
        ]
        alerts, _ = self.scan([self.write("ris.json", "\n".join(lines) + "\n")], LAB_PREFIXES)
        opened = {(a["alert"], a["prefix"], a["origin"]) for a in alerts if a["status"] == "open"}
        self.assertEqual(opened, {("hijack", "208.65.152.0/22", 17557),
                                  ("sub_prefix_hijack", "208.65.153.0/24", 17557),
                                  ("sub_prefix_hijack", "104.20.8.0/21", 666)})
        for a in alerts:
            self.assertIn("private_origin", a["tags"])
        sub = next(a for a in alerts if a["prefix"] == "208.65.153.0/24")
        self.assertEqual((sub["private_asns"], sub["raw_path"]), ([4200000000], "3356 17557 17557 4200000000"))
        self.assertEqual(sub["path"], [3356, 17557, 4200000000])  # prepending collapsed

    def test_a_private_as_behind_the_expected_origin_is_one_private_origin_and_private_only_is_counted(self):
        t = 1_700_000_000
        lines = [ris(t + i, f"192.0.2.{10 + i}", asn, [asn, 13335, 65201], ["104.20.0.0/20"])
                 for i, asn in enumerate((3356, 174, 6939))]
        lines.append(ris(t + 5, "192.0.2.20", 3356, [65001, 65002], ["104.20.1.0/24"]))
        alerts, stderr = self.scan([self.write("ris.json", "\n".join(lines) + "\n")], LAB_PREFIXES)
        self.assertEqual([(a["alert"], a["status"]) for a in alerts], [("private_origin", "open")])
        self.assertEqual((alerts[0]["origin"], alerts[0]["private_asns"], alerts[0]["severity"]),
                         (13335, [65201], "ticket"))
        self.assertIn("1 routes under monitored prefixes ignored (private_path 1)", stderr)

    def rib_prefix(self):
        """A prefix of the real RIB seen by at least 3 peers, all from one origin: (prefix, origin)."""
        out = subprocess.run([VANTAGE, "bgp", "dump", RIS_RIB], capture_output=True, text=True, check=True).stdout
        seen = {}
        for line in out.splitlines():
            f = line.split("|")
            if len(f) > 6 and f[6].split() and ":" not in f[5]:
                seen.setdefault(f[5], set()).add((f[3], f[6].split()[-1]))
        for prefix, peers in sorted(seen.items()):
            origins = {o for _, o in peers}
            if len(peers) >= 3 and len(origins) == 1 and prefix.endswith("/24") and next(iter(origins)).isdigit():
                return prefix, int(next(iter(origins)))
        self.fail("no prefix found")

    def test_one_peer_flapping_a_second_origin_on_a_real_rib_is_one_moas_alert(self):
        prefix, origin = self.rib_prefix()
        prefixes = f"{prefix}:\n  asn: [{origin}]\noptions:\n  min_peers: 1\n"
        # After the RIB (2002-07-22 23:37 UTC): one peer announces the prefix with origin AS4766
        # every 40 s and withdraws it 20 s later, for 12 minutes.
        t0 = 1027381200  # 2002-07-22 23:40 UTC
        lines = []
        for i in range(18):
            lines.append(ris(t0 + 40 * i, "192.0.2.99", 6939, [6939, 4766], [prefix]))
            lines.append(ris(t0 + 40 * i + 20, "192.0.2.99", 6939, withdrawals=[prefix]))
        alerts, _ = self.scan([RIS_RIB, self.write("flap.json", "\n".join(lines) + "\n")], prefixes)
        self.assertEqual([(a["alert"], a["status"]) for a in alerts], [("moas", "open"), ("moas", "resolved")])
        self.assertEqual(alerts[0]["origin"], 4766)
        self.assertEqual(alerts[0]["alert_key"], alerts[1]["alert_key"])
        # The resolution is stamped when the last withdrawal came, not when the hold ended.
        self.assertEqual(alerts[1]["time"], "2002-07-22T23:51:40.000000000Z")

    def test_a_prepend_typo_scores_below_the_youtube_hijack_which_scores_highest(self):
        t = 1_700_000_000
        lines = [
            ris(t, "192.0.2.30", 3356, [3356, 13335], ["104.20.0.0/20"]),
            ris(t + 1, "192.0.2.31", 174, [174, 13335, 3], ["104.20.0.0/20"], aggregator="13335:192.0.2.31"),
            ris(t + 2, "192.0.2.32", 6939, [6939, 666], ["104.20.4.0/22"]),
        ]
        alerts, _ = self.scan([LAB_MRT, self.write("ris.json", "\n".join(lines) + "\n")], LAB_PREFIXES)
        opened = [a for a in alerts if a["status"] == "open" and "score" in a]
        youtube = next(a for a in opened if a["prefix"] == "208.65.153.0/24")
        typo = next(a for a in opened if a.get("origin") == 3)
        self.assertEqual(typo["alert"], "moas")
        self.assertIn("origin_after_expected", typo["tags"])
        self.assertIn("aggregator_is_expected", typo["tags"])
        self.assertLess(typo["score"], youtube["score"])
        self.assertEqual(typo["severity"], "log")
        self.assertEqual(youtube["severity"], "page")
        self.assertEqual(max(a["score"] for a in opened), youtube["score"])
        text = subprocess.run([VANTAGE, "bgp", "scan", LAB_MRT, self.write("ris.json", "\n".join(lines) + "\n"),
                               "--prefixes", self.write("prefixes.yml", LAB_PREFIXES)],
                              capture_output=True, text=True, timeout=60).stdout
        self.assertIn("AS3 directly after AS13335: likely a prepend typo", text)


if __name__ == "__main__":
    unittest.main()
