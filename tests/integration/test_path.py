"""kind: path through a chain of three Linux routers in network namespaces.

    vtr-<pid>-src ── r1 ── r2 ── r3 ── vtr-<pid>-dst
    10.71.0.2    .0.1|.1.1 .1.2|.2.1 .2.2|.3.1  10.71.3.2      (IPv4, /24 per link)
    fd71:0::2    ...                          fd71:3::2       (IPv6, /64 per link)

The probe traces UDP, ICMP echo and TCP SYN from src to dst, over IPv4 and IPv6; the hop addresses
must equal what Debian's `mtr --json` reports on the same topology. A router that drops (a
blackhole route) shows as "no reply" after the last hop that answered; a router with an
`unreachable` route gives the ICMP unreachable reason and its hop.

Needs root (network namespaces, raw sockets); the namespaces are this test's own (vtr-<pid>-*)
and are removed even when a test fails. Routers' ICMP rate limits are switched off so three
probes per hop and mtr's runs are never rate-limited.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

BUILD = os.environ.get("VANTAGE_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build/dev"))
PROBE = os.path.join(BUILD, "probe", "vantage-probe")
PREFIX = "vtr-%d-" % os.getpid()
NODES = ["src", "r1", "r2", "r3", "dst"]
DST4 = "10.71.3.2"
DST6 = "fd71:3::2"
# What each hop answers from: the router's address on the link towards the source.
HOPS4 = ["10.71.0.1", "10.71.1.2", "10.71.2.2", DST4]
HOPS6 = ["fd71::1", "fd71:1::2", "fd71:2::2", DST6]


# Exits 0 when a UDP datagram to `argv[1]`'s port 9 comes back as port unreachable (a connected
# UDP socket reports it as ECONNREFUSED): the path works both ways.
REACHES = """
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(family, socket.SOCK_DGRAM)
s.settimeout(0.2)
s.connect((sys.argv[1], 9))
s.send(b"x")
try:
    s.recv(1)
except ConnectionRefusedError:
    sys.exit(0)
except OSError:
    pass
sys.exit(1)
"""


def ns(node):
    return PREFIX + node


def sh(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


def in_ns(node, *args, check=True):
    return sh("ip", "netns", "exec", ns(node), *args, check=check)


def build_topology():
    for node in NODES:
        sh("ip", "netns", "add", ns(node))
        in_ns(node, "ip", "link", "set", "lo", "up")
        for key in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                    "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0",
                    # No duplicate address detection: link-local addresses usable at once, so
                    # neighbour discovery works from the first probe.
                    "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"):
            in_ns(node, "sysctl", "-qw", key)
    # Link i joins NODES[i] (address .2 / ::2 … on its "up" side) and NODES[i+1].
    for i in range(4):
        left, right = NODES[i], NODES[i + 1]
        sh("ip", "link", "add", "right", "netns", ns(left), "type", "veth",
           "peer", "name", "left", "netns", ns(right))
        # The source side of each link: the node closer to src gets .2 except src itself.
        left4, right4 = ("10.71.%d.2" % i, "10.71.%d.1" % i) if i == 0 else \
                        ("10.71.%d.1" % i, "10.71.%d.2" % i)
        left6, right6 = ("fd71:%x::2" % i, "fd71:%x::1" % i) if i == 0 else \
                        ("fd71:%x::1" % i, "fd71:%x::2" % i)
        if i == 3:
            right4, right6 = DST4, DST6
            left4, left6 = "10.71.3.1", "fd71:3::1"
        in_ns(left, "ip", "addr", "add", left4 + "/24", "dev", "right")
        in_ns(right, "ip", "addr", "add", right4 + "/24", "dev", "left")
        in_ns(left, "ip", "-6", "addr", "add", left6 + "/64", "dev", "right", "nodad")
        in_ns(right, "ip", "-6", "addr", "add", right6 + "/64", "dev", "left", "nodad")
        in_ns(left, "ip", "link", "set", "right", "up")
        in_ns(right, "ip", "link", "set", "left", "up")
    # Towards dst: every node's default route is its right neighbour; back towards src: the
    # left neighbour for the links behind it.
    nxt4 = {"src": "10.71.0.1", "r1": "10.71.1.2", "r2": "10.71.2.2", "r3": DST4}
    nxt6 = {"src": "fd71::1", "r1": "fd71:1::2", "r2": "fd71:2::2", "r3": DST6}
    prv4 = {"r2": "10.71.1.1", "r3": "10.71.2.1", "dst": "10.71.3.1"}
    prv6 = {"r2": "fd71:1::1", "r3": "fd71:2::1", "dst": "fd71:3::1"}
    for node in ("src", "r1", "r2"):
        in_ns(node, "ip", "route", "add", "default", "via", nxt4[node])
        in_ns(node, "ip", "-6", "route", "add", "default", "via", nxt6[node])
    back4 = {"r2": "10.71.0.0/24", "r3": "10.71.0.0/23", "dst": "default"}
    back6 = {"r2": "fd71::/64", "r3": "fd71::/63", "dst": "default"}
    for node in ("r2", "r3", "dst"):
        in_ns(node, "ip", "route", "add", back4[node], "via", prv4[node])
        in_ns(node, "ip", "-6", "route", "add", back6[node], "via", prv6[node])
    # Ready when both families cross the chain (neighbour caches filled on every link).
    for dest in (DST4, DST6):
        for _ in range(50):
            if in_ns("src", sys.executable, "-c", REACHES, dest, check=False).returncode == 0:
                break
        else:
            raise RuntimeError("the namespace chain does not forward to " + dest)


def remove_topology():
    for node in NODES:
        sh("ip", "netns", "del", ns(node), check=False)


def trace(dest, protocol, port=None, extra=""):
    """Runs one `kind: path` check from src; returns (check_result, path_result)."""
    with tempfile.TemporaryDirectory(prefix="vtr-") as d:
        cfg = os.path.join(d, "probe.yaml")
        out = os.path.join(d, "out.jsonl")
        port_line = "    port: %d\n" % port if port else ""
        with open(cfg, "w") as f:
            f.write("vantage_point: {id: vtr-src, region: test}\n"
                    "checks:\n"
                    "  - id: path\n"
                    "    kind: path\n"
                    "    timeout: 15s\n"
                    "    host: \"%s\"\n"
                    "    protocol: %s\n%s"
                    "    hop_timeout: 500ms\n"
                    "    max_hops: 10\n%s" % (dest, protocol, port_line, extra))
        p = in_ns("src", PROBE, "--config", cfg, "--once", "--output", out, "--log-level", "warn",
                  check=False)
        with open(out) as f:
            records = [json.loads(line) for line in f if line.strip()]
    results = [r for r in records if r["kind"] == "check_result"]
    paths = [r for r in records if r["kind"] == "path_result"]
    assert len(results) == 1 and len(paths) == 1, (p.returncode, p.stderr, records)
    return results[0], paths[0]


def mtr_hops(dest, protocol, port=None):
    """The hop addresses Debian's mtr reports (three cycles, numeric)."""
    args = ["mtr", "--json", "-n", "-c", "3", "-i", "0.2", "--gracetime", "1",
            "-6" if ":" in dest else "-4"]
    if protocol == "udp":
        args += ["--udp"]
    elif protocol == "tcp":
        args += ["--tcp", "--port", str(port)]
    p = in_ns("src", *args, dest)
    hubs = json.loads(p.stdout)["report"]["hubs"]
    return [h["host"] for h in hubs]


@unittest.skipUnless(os.geteuid() == 0, "needs root: network namespaces and raw sockets")
class PathThroughRouters(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(PROBE):
            raise unittest.SkipTest("vantage-probe is not built: " + PROBE)
        try:
            build_topology()
        except BaseException:
            remove_topology()
            raise

    @classmethod
    def tearDownClass(cls):
        remove_topology()

    def test_hop_addresses_equal_mtr_for_udp_icmp_and_tcp_over_ipv4_and_ipv6(self):
        has_mtr = shutil.which("mtr") is not None
        for dest, expected in ((DST4, HOPS4), (DST6, HOPS6)):
            for protocol, port in (("udp", None), ("icmp", None), ("tcp", 443)):
                with self.subTest(dest=dest, protocol=protocol):
                    result, path = trace(dest, protocol, port)
                    hops = [h.get("address", "*") for h in path["hops"]]
                    self.assertEqual(hops, expected, path)
                    self.assertEqual(path["stop"]["reason"], "reached", path)
                    self.assertEqual(path["stop"]["ttl"], 4)
                    self.assertEqual(result["outcome"]["type"], "ok", result)
                    self.assertEqual(result["check_kind"], "path")
                    self.assertEqual(path["trace_id"], result["trace_id"])
                    self.assertEqual(path["vantage"]["source"], "probe")
                    for h in path["hops"]:
                        self.assertEqual(h["sent"], 3)
                        self.assertEqual(h["received"], 3, h)
                        self.assertTrue(all(isinstance(x, float) and x >= 0 for x in h["rtts_ms"]))
                    # Routers answer Time Exceeded; the target answers as its protocol does.
                    self.assertEqual(path["hops"][0]["icmp_name"], "ttl_exceeded" if ":" not in dest
                                     else "hop_limit_exceeded")
                    self.assertEqual(path["hops"][-1]["reply"],
                                     {"udp": "unreachable", "icmp": "echo_reply",
                                      "tcp": "tcp_reset"}[protocol])
                    if has_mtr:
                        self.assertEqual(hops, mtr_hops(dest, protocol, port))
        if not has_mtr:
            self.skipTest("mtr (Debian mtr-tiny) is not installed: hops checked against the "
                          "topology only")

    def test_a_router_that_drops_shows_no_reply_after_the_last_hop_that_answered(self):
        in_ns("r2", "ip", "route", "add", "blackhole", "10.71.3.0/24")
        in_ns("r2", "ip", "-6", "route", "add", "blackhole", "fd71:3::/64")
        try:
            for dest in (DST4, DST6):
                with self.subTest(dest=dest):
                    result, path = trace(dest, "udp", extra="    max_silent_hops: 3\n")
                    self.assertEqual(path["stop"]["reason"], "no_reply", path)
                    self.assertEqual(path["stop"]["ttl"], 1)
                    self.assertEqual(path["hops"][0]["address"], (HOPS4 if dest == DST4
                                                                  else HOPS6)[0])
                    self.assertEqual([h["received"] for h in path["hops"][1:]], [0, 0, 0])
                    self.assertEqual([h["ttl"] for h in path["hops"]], [1, 2, 3, 4])
                    self.assertEqual(result["outcome"]["type"], "tcp.timed_out")
        finally:
            in_ns("r2", "ip", "route", "del", "blackhole", "10.71.3.0/24", check=False)
            in_ns("r2", "ip", "-6", "route", "del", "blackhole", "fd71:3::/64", check=False)

    def test_an_unreachable_route_gives_the_icmp_reason_and_the_hop(self):
        in_ns("r2", "ip", "route", "add", "unreachable", "10.71.3.0/24")
        in_ns("r2", "ip", "-6", "route", "add", "prohibit", "fd71:3::/64")
        try:
            for dest, protocol, name, from_ in ((DST4, "tcp", "host_unreachable", "10.71.1.2"),
                                                (DST6, "icmp", "admin_prohibited", "fd71:1::2")):
                with self.subTest(dest=dest):
                    result, path = trace(dest, protocol, 443 if protocol == "tcp" else None)
                    stop = path["stop"]
                    self.assertEqual(stop["reason"], "unreachable", path)
                    self.assertEqual(stop["ttl"], 2)
                    self.assertEqual(stop["icmp_name"], name)
                    self.assertEqual(stop["from"], from_)
                    self.assertEqual(len(path["hops"]), 2)
                    self.assertEqual(result["outcome"]["type"], "tcp.address_unreachable")
                    self.assertIn(name, result["outcome"]["detail"])
        finally:
            in_ns("r2", "ip", "route", "del", "unreachable", "10.71.3.0/24", check=False)
            in_ns("r2", "ip", "-6", "route", "del", "prohibit", "fd71:3::/64", check=False)

    def test_without_cap_net_raw_the_path_check_says_so_and_the_others_run(self):
        with tempfile.TemporaryDirectory(prefix="vtr-") as d:
            cfg = os.path.join(d, "probe.yaml")
            out = os.path.join(d, "out.jsonl")
            with open(cfg, "w") as f:
                f.write("vantage_point: {id: vtr-src, region: test}\n"
                        "checks:\n"
                        "  - {id: p1, kind: path, host: \"%s\"}\n"
                        "  - {id: p2, kind: path, host: \"%s\", protocol: icmp}\n"
                        "  - {id: t1, kind: tcp, host: \"%s\", port: 9}\n" % (DST4, DST6, DST4))
            p = in_ns("src", "setpriv", "--inh-caps=-net_raw", "--bounding-set=-net_raw", PROBE,
                      "--config", cfg, "--once", "--output", out, "--log-level", "warn",
                      check=False)
            with open(out) as f:
                records = [json.loads(line) for line in f if line.strip()]
        logs = [json.loads(line) for line in p.stderr.splitlines() if line.startswith("{")]
        warnings = [l for l in logs if l.get("event") == "path.no_cap_net_raw"]
        self.assertEqual(len(warnings), 1, p.stderr)
        self.assertEqual(warnings[0]["capability"], "CAP_NET_RAW")
        self.assertEqual(warnings[0]["checks"], "p1,p2")
        by_check = {r["check"]: r for r in records if r["kind"] == "check_result"}
        for c in ("p1", "p2"):
            self.assertEqual(by_check[c]["outcome"]["type"], "unknown")
            self.assertIn("CAP_NET_RAW", by_check[c]["outcome"]["detail"])
        # The tcp check ran: dst refuses port 9, so the connection reached it.
        self.assertEqual(by_check["t1"]["outcome"]["type"], "tcp.refused")


if __name__ == "__main__":
    unittest.main()
