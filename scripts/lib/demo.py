#!/usr/bin/env python3
"""The demo's driver: a vantage point checking real local targets (see scripts/demo).

Starts the local target network (regions/lab/targets.py: nginx with a throw-away CA, unbound,
slow/broken DNS upstreams, a black-holed port), writes a probe configuration for it, runs every
check once and prints what the probe saw — outcome in NEL terms, the failing phase and per-phase
timings — then runs the probe as a daemon for a few seconds shipping to a real vantage-collector,
shows its Prometheus metrics and what the collector stored, and replays real Chromium report
uploads into the collector as if from users in four networks. Its `bgp` check receives the BMP
stream a real gobgpd sent in a lab run (the 2008 YouTube hijack, the 2019 Cloudflare leak) and
the collector shows the route events and alerts.
"""
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TARGETS = os.path.join(ROOT, "regions", "lab", "targets.py")
sys.path.insert(0, os.path.dirname(TARGETS))
from targets import free_port  # noqa: E402  (ports below the ephemeral range)


CAPTURES = os.path.join(ROOT, "tests", "data", "browser-reports", "captures")
MMDB = os.path.join(ROOT, "tests", "data", "mmdb")
LAB_BGP = os.path.join(ROOT, "regions", "lab", "bgp")
BMP_CAPTURE = os.path.join(ROOT, "tests", "data", "bgp", "lab", "gobgp-bmp.bin")
# Users in four networks of MaxMind's test databases, each sending one real Chromium upload
# through a trusted proxy (X-Forwarded-For).
USERS = [
    ("89.160.20.112", "nel-tcp-refused.http"),                     # SE, AS29518 Bredband2
    ("1.128.0.1", "nel-dns-name-not-resolved-subdomain.http"),     # AS1221 Telstra
    ("81.2.69.160", "reporting-v1-csp-violation-cross-origin.http"),  # GB, London
    ("216.160.83.56", "sendbeacon-text-fetch-404.http"),          # US, AS209
    ("216.160.83.56", "sendbeacon-text-js-error.http"),
]


def start_collector(binary, state, token_file):
    port = free_port()
    config = os.path.join(state, "collector.yaml")
    with open(config, "w") as f:
        json.dump({"listen": f"127.0.0.1:{port}", "trusted_proxies": ["127.0.0.1"],
                   "paths": {"csp": ["/csp", "/csp-legacy-report-uri"]},
                   "geoip": {"city_db": os.path.join(MMDB, "GeoIP2-City-Test.mmdb"),
                             "asn_db": os.path.join(MMDB, "GeoLite2-ASN-Test.mmdb")},
                   "store": {"sqlite": os.path.join(state, "collector.db")},
                   "probes": [{"id": "demo-lab-1", "token_file": token_file}], "log_level": "warn"}, f)
    proc = subprocess.Popen([binary, "--config", config])
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("vantage-collector did not start")


def replay(port, capture, client_ip):
    """Sends a recorded Chromium upload as it was, plus the X-Forwarded-For a proxy would add."""
    with open(os.path.join(CAPTURES, capture), "rb") as f:
        data = f.read()
    line, rest = data.split(b"\r\n", 1)
    data = line + b"\r\nX-Forwarded-For: " + client_ip.encode() + b"\r\n" + rest
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        return s.recv(4096).split(b"\r\n", 1)[0].decode()


def config_for(env, spool, metrics_port):
    p, r, ca = env["ports"], env["resolver"], env["ca_file"]

    def journey(name):
        # The example journeys of regions/journeys/, against the lab's demo shop/learning origin.
        return {"id": name, "kind": "journey",
                "include": os.path.join(ROOT, "regions", "journeys", name + ".yaml"),
                "variables": {"base": f"https://shop.test:{p['https_valid']}"},
                "resolvers": [r], "tls": {"ca_file": ca}}

    def http(check_id, url, **kw):
        c = {"id": check_id, "kind": "http", "url": url, "resolvers": [r], "tls": {"ca_file": ca}}
        c.update(kw)
        return c

    return {
        "vantage_point": {"id": "demo-lab-1", "region": "lab", "country": "DE", "asn": 64500,
                          "isp": "Demo Lab ISP"},
        "metrics": {"listen": f"127.0.0.1:{metrics_port}"},
        "defaults": {"interval": "2s", "timeout": "1500ms"},
        "checks": [
            http("shop-home", f"https://shop.test:{p['https_valid']}/",
                 expect={"status": [200], "body_matches": "Welcome", "cert_expires_after": "14d"}),
            http("shop-api", f"http://shop.test:{p['http']}/api/products",
                 expect={"json": {"/items/0/sku": "BOOK-1"}}),
            http("shop-slow-backend", f"https://shop.test:{p['https_valid']}/slow",
                 expect={"max_duration": "1s"}),
            http("shop-error-page", f"https://shop.test:{p['https_valid']}/status/503"),
            http("expired-cert", f"https://shop.test:{p['https_expired']}/"),
            http("unknown-ca", f"https://shop.test:{p['https_selfsigned']}/"),
            http("wrong-cert-name", f"https://shop.test:{p['https_wrongname']}/"),
            http("nxdomain", f"http://nx.test:{p['http']}/"),
            http("servfail", f"http://servfail.test:{p['http']}/"),
            http("resolver-silent", f"http://dead.test:{p['http']}/"),
            http("port-closed", f"http://shop.test:{p['closed']}/"),
            http("blackholed", f"http://shop.test:{p['blackhole']}/"),
            {"id": "dns-shop", "kind": "dns", "name": "shop.test", "resolvers": [r],
             "expect": {"answers_within": ["127.0.0.0/8"]}},
            {"id": "dns-hijacked", "kind": "dns", "name": "hijacked.test", "resolvers": [r],
             "expect": {"answers_within": ["127.0.0.0/8"]}},
            {"id": "tls-shop", "kind": "tls", "host": "shop.test", "port": p["https_valid"],
             "resolvers": [r], "tls": {"ca_file": ca}, "expect": {"cert_expires_after": "14d"}},
            {"id": "tcp-shop", "kind": "tcp", "host": "shop.test", "port": p["http"], "resolvers": [r]},
            journey("checkout"),
            journey("enrollment"),
        ],
    }


def fmt_ms(v):
    return "" if v is None else f"{v:.1f}"


def show(results):
    cols = ["check", "kind", "outcome", "at", "dns", "connect", "tls", "ttfb", "transfer", "total"]
    rows = []
    for r in results:
        o, ph = r["outcome"], r["phases_ms"]
        outcome = o["type"] + (f" {o['status_code']}" if o["type"] == "http.error" else "")
        rows.append([r["check"], r["check_kind"], outcome, o.get("failed_at", ""),
                     fmt_ms(ph.get("dns")), fmt_ms(ph.get("connect")), fmt_ms(ph.get("tls")),
                     fmt_ms(ph.get("ttfb")), fmt_ms(ph.get("transfer")), fmt_ms(ph.get("total"))])
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)) + "     (phases in ms)")
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
    print()
    for r in results:
        if r["outcome"]["type"] != "ok":
            print(f"  {r['check']}: {r['outcome'].get('detail', '')}")


def show_steps(r):
    print(f"  {r['check']}: {r['outcome']['type']}"
          + (f" at step {r['outcome']['step']!r} (status {r['outcome'].get('status_code')})"
             if r["outcome"].get("step") else "") + f", trace id {r.get('trace_id')}")
    for st in r["steps"]:
        state = "skipped" if st.get("skipped") else st["outcome"]["type"]
        status = st.get("status_code", "")
        extra = " (cleanup)" if st.get("always") else ""
        print(f"    {st['index']}. {st['name'] + extra:<24} {state:<16} {status!s:<4} "
              f"{fmt_ms(st['phases_ms'].get('total')):>6} ms  span {st.get('span_id', '-')}"
              + (f"  extracted {', '.join(st['extracted'])}" if st.get("extracted") else ""))


def set_faults(env, faults):
    req = urllib.request.Request(f"http://127.0.0.1:{env['ports']['http']}/_faults",
                                 data=json.dumps(faults).encode(), method="POST")
    urllib.request.urlopen(req, timeout=5).read()


def main():
    probe, collector, vantage = sys.argv[1], sys.argv[2], sys.argv[3]
    state = tempfile.mkdtemp(prefix="vantage-demo-")
    os.chmod(state, 0o755)  # nginx's workers (nobody) must reach the files below
    try:
        print("== starting the local targets (nginx, unbound, a throw-away CA, broken DNS upstreams)")
        subprocess.run([sys.executable, TARGETS, "start", os.path.join(state, "targets")], check=True,
                       stdout=subprocess.DEVNULL)
        with open(os.path.join(state, "targets", "env.json")) as f:
            env = json.load(f)
        metrics_port = free_port()
        config = os.path.join(state, "probe.yaml")
        with open(config, "w") as f:
            json.dump(config_for(env, os.path.join(state, "spool"), metrics_port), f, indent=2)
        results_path = os.path.join(state, "results.jsonl")
        print(f"== vantage-probe --once: every check once, from vantage point demo-lab-1 (AS64500)\n")
        # The journeys' login password: a secret from the environment, never in results or logs.
        penv = dict(os.environ, SHOP_PROBE_PASSWORD=env["origin"]["shop_password"])
        p = subprocess.run([probe, "--config", config, "--once", "--output", results_path, "--log-level", "warn"],
                           env=penv)
        with open(results_path) as f:
            results = [json.loads(line) for line in f]
        order = [c["id"] for c in config_for(env, "", 0)["checks"]]
        results.sort(key=lambda r: order.index(r["check"]))
        show(results)
        print(f"\n  exit status {p.returncode} (1: at least one check failed, as intended here)")
        print(f"  one result as stored (JSON line):\n  {json.dumps(results[0])[:600]}…\n")

        print("== journeys, step by step (regions/journeys/*.yaml against the demo shop origin)\n")
        for r in results:
            if r["check_kind"] == "journey":
                show_steps(r)
        print("\n== the same checkout with a 500 injected at the origin's checkout endpoint "
              "(POST /_faults {\"error_rate\": {\"checkout\": 1}})\n")
        set_faults(env, {"error_rate": {"checkout": 1}})
        faulty = results_path + ".fault"
        subprocess.run([probe, "--config", config, "--once", "--check", "checkout", "--output", faulty,
                        "--log-level", "error"], env=penv)
        set_faults(env, {})
        with open(faulty) as f:
            show_steps(json.loads(f.readline()))
        print("  (cleanup steps still ran; cancel-order is skipped because no order was placed)\n")

        print("== vantage-collector (SQLite store, GeoIP/ASN from MaxMind's test databases) and "
              "vantage-probe as a daemon for 5 s shipping to it; the probe's Prometheus metrics")
        token_file = os.path.join(state, "token")
        with open(token_file, "w") as f:
            f.write("demo-token-for-demo-lab-1\n")
        collector_proc, collector_port = start_collector(collector, state, token_file)
        daemon_config = config_for(env, "", metrics_port)
        daemon_config["collector"] = {"url": f"http://127.0.0.1:{collector_port}/v1/results",
                                      "token_file": token_file, "spool_dir": os.path.join(state, "spool"),
                                      "flush_interval": "500ms"}
        bmp_port = free_port()
        daemon_config["checks"].append({
            "id": "own-prefixes", "kind": "bgp", "interval": "1s",
            "prefixes": os.path.join(LAB_BGP, "prefixes.yml"), "as_rel": os.path.join(LAB_BGP, "as-rel.txt"),
            "bmp": {"listen": f"127.0.0.1:{bmp_port}", "allowed_routers": ["127.0.0.1"]}})
        config = os.path.join(state, "probe-daemon.yaml")
        with open(config, "w") as f:
            json.dump(daemon_config, f, indent=2)
        log = open(os.path.join(state, "probe.log"), "w")
        daemon = subprocess.Popen([probe, "--config", config], stdout=log, stderr=log, env=penv)
        time.sleep(1)
        # A router streaming BMP to the probe's bgp check: the bytes gobgpd sent in a lab run.
        with socket.create_connection(("127.0.0.1", bmp_port), timeout=5) as bmp, open(BMP_CAPTURE, "rb") as f:
            bmp.sendall(f.read())
            time.sleep(0.5)
        time.sleep(4)
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=3).read().decode()
        wanted = ("probe_success{check=\"shop-home\"", "probe_http_duration_seconds{check=\"shop-home\"",
                  "probe_ssl_earliest_cert_expiry{check=\"shop-home\"", "vantage_check_failure_info",
                  "vantage_journey_step_duration_seconds{check=\"checkout\"",
                  "vantage_probe_checks_configured")
        for line in text.splitlines():
            if line.startswith(wanted):
                print("  " + line)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=15)
        log.close()
        print(f"\n  full metrics: curl http://127.0.0.1:<port>/metrics while the probe runs; "
              f"every key of the config: docs/configuration.md")

        db = os.path.join(state, "collector.db")
        con = sqlite3.connect(db, timeout=10)
        rows = con.execute("SELECT check_name, outcome, count(*), round(avg(total_ms), 1) FROM probe_results "
                           "GROUP BY check_name, outcome ORDER BY check_name").fetchall()
        print(f"\n== what the collector stored from the probe (probe_results, {sum(r[2] for r in rows)} results, "
              "acknowledged only after the commit)\n")
        print(f"  {'check':<18} {'outcome':<26} {'results':>7} {'avg ms':>8}")
        for name, outcome, n, avg in rows:
            print(f"  {name:<18} {outcome:<26} {n:>7} {avg if avg is not None else '':>8}")

        print("\n== BGP: the probe's bgp check fed a router's BMP stream (gobgpd, lab run: tests/data/bgp/lab); "
              "expectations regions/lab/bgp/prefixes.yml; times (UTC) as the router stamped them\n")
        def utc(ns):
            return time.strftime("%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9 // 1000:06d}"
        for time_ns, event, prefix, as_path, collector in con.execute(
                "SELECT time_ns, event, prefix, as_path, collector FROM route_events "
                "ORDER BY time_ns, event != 'peer_up', prefix"):
            print(f"  {utc(time_ns)} route_event {event:<9} {prefix or '':<20} {as_path or '':<36} router {collector}")
        print()
        for time_ns, alert, status, prefix, record in con.execute(
                "SELECT time_ns, alert, status, prefix, record FROM bgp_alerts ORDER BY time_ns, result_id"):
            a = json.loads(record)
            expected = ", ".join(f"AS{x}" for x in a.get("expected", []))
            detail = (f"origin AS{a.get('origin')}, expected {expected}" if "hijack" in alert else
                      f"AS{a.get('leaker')} leaked it (segment {' '.join(map(str, a.get('segment', [])))})"
                      if alert == "route_leak" else "")
            print(f"  {utc(time_ns)} bgp_alert {status.upper():<8} {alert:<18} {prefix:<20} {detail}")
        print("\n  live version: ExaBGP -> FRR -> BMP -> probe in network namespaces, "
              "tests/bgp/test_bgp_lab.py (docs/bgp.md#the-lab)")

        print("\n== real Chromium report uploads (tests/data/browser-reports) replayed into the collector "
              "as if from users in four networks (X-Forwarded-For from a trusted proxy)\n")
        for ip, capture in USERS:
            print(f"  {ip:<15} {capture:<48} -> {replay(collector_port, capture, ip)}")
        time.sleep(0.3)  # browser uploads are answered once queued; the commit follows
        print(f"\n  {'kind/type':<34} {'nel_type':<22} {'url':<40} {'client':<16} {'cc':<3} {'city':<10} "
              f"{'asn':>6} {'isp':<16} browser")
        for r in con.execute("SELECT kind, type, nel_type, url, client_prefix, country, city, asn, isp, "
                             "ua_family, ua_major FROM browser_reports ORDER BY id"):
            kind = f"{r[0]}/{r[1]}"
            print(f"  {kind:<34} {r[2] or '':<22} {r[3][:40]:<40} {r[4]:<16} {r[5] or '':<3} {(r[6] or '')[:10]:<10} "
                  f"{r[7] or '':>6} {(r[8] or '')[:16]:<16} {r[9]} {r[10]}")
        con.close()
        print("\n  raw client addresses, query strings and cookies are never stored (docs/collector.md);")
        print("  the header lines a site needs: vantage-collector headers --site https://shop.example.com "
              "--collector https://collector.example.com")
        collector_proc.send_signal(signal.SIGTERM)
        collector_proc.wait(timeout=15)

        print("\n== vantage report isp over what the collector stored (the probe above and the users' "
              "NEL reports, per ISP)\n")
        report = subprocess.run([vantage, "report", "isp", "--db", db], capture_output=True, text=True)
        print("  " + "\n  ".join(report.stdout.splitlines()[:12]))
        html = os.path.join(ROOT, "build", "demo-isp-report.html")
        subprocess.run([vantage, "report", "isp", "--db", db, "--format", "html", "-o", html], capture_output=True)
        print(f"\n  the same as an HTML page with charts: {html}")

        print("\n== the detectors on a generated day with one ISP black-holed "
              "(vantage generate --scenario isp-blackhole; docs/analysis.md)\n")
        gen_db = os.path.join(state, "scenario.db")
        subprocess.run([vantage, "generate", "--db", gen_db, "--scenario", "isp-blackhole"], check=True,
                       stdout=subprocess.DEVNULL)
        incidents = subprocess.run([vantage, "incidents", "--db", gen_db], capture_output=True, text=True)
        print("  " + "\n  ".join(incidents.stdout.strip().splitlines()))
    finally:
        subprocess.run([sys.executable, TARGETS, "stop", os.path.join(state, "targets")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
