#!/usr/bin/env python3
"""Collector ingest throughput: wrk posting the same 700-byte NEL report, with the client
address in a trusted X-Forwarded-For (rotating over addresses that have both a City and an ASN
record in the MaxMind test databases), to
  1. nginx (one worker) taking the client address from X-Forwarded-For (realip), reading the
     body and writing it to its access log, and
  2. vantage-collector (one thread: parse + validate + normalise + GeoIP City/ASN enrichment of
     the forwarded address + segment log fdatasync before the 204 + SQLite store, whose writer
     and log threads share the same core),
side by side in one run, in two scenarios: one core (one nginx worker, one collector thread, each
server pinned to CPU 0 and wrk to CPU 1) and two (two nginx workers, collector `threads: 2`,
nothing pinned). Within a scenario the two servers take turns, --rounds times, and the median
round of each (by req/s) is reported. Reports req/s, server CPU per request and p99, checks that
every 204 the collector gave is a stored row with a City and an ASN, and writes the
"## Collector ingest" section of docs/benchmarks.md (other sections kept).

    bench/collector_ingest.py --collector build/release/beacon-collector/vantage-collector \
        --out docs/benchmarks.md [--seconds 10] [--connections 64] [--rounds 3]
"""
import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from probe_cpu import free_port, machine, wait_port  # noqa: E402
MMDB = os.path.join(REPO, "tests", "data", "mmdb")
SECTION = "## Collector ingest"
# Client addresses with a City and an ASN record in GeoIP2-City-Test / GeoLite2-ASN-Test:
# Linköping AS29518 (two), Milton AS209, San Diego AS721.
CLIENTS = ["89.160.20.112", "89.160.20.129", "216.160.83.58", "214.78.120.5"]


def cpu_seconds(pid):
    """User + system CPU of a process and its threads (/proc/<pid>/stat), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report_body(size=700):
    """A Chromium-shaped NEL report (tcp.timed_out), padded to exactly `size` bytes."""
    report = [{"age": 1234, "type": "network-error", "url": "https://shop.example.com/checkout/payment",
               "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                             "Chrome/156.0.0.0 Safari/537.36",
               "body": {"elapsed_time": 30012, "method": "POST", "phase": "connection",
                        "protocol": "http/1.1", "referrer": "https://shop.example.com/cart",
                        "sampling_fraction": 1.0, "server_ip": "1.128.0.1", "status_code": 0,
                        "type": "tcp.timed_out", "pad": ""}}]
    text = json.dumps(report, separators=(",", ":"))
    report[0]["body"]["pad"] = "x" * (size - len(text))
    text = json.dumps(report, separators=(",", ":"))
    assert len(text) == size, len(text)
    return text


def wrk(url, body_file, seconds, connections, pids, pin):
    script = body_file + ".lua"
    clients = ", ".join(f'"{a}"' for a in CLIENTS)
    with open(script, "w") as f:
        # The requests are built once (wrk.format), then handed out in turn: no Lua work per
        # request beyond an index.
        f.write('local f = io.open("%s", "rb")\nlocal body = f:read("*a")\nf:close()\n'
                'local reqs, i = {}, 0\n'
                'init = function(args)\n'
                '  for _, a in ipairs({%s}) do\n'
                '    reqs[#reqs + 1] = wrk.format("POST", nil, {["Content-Type"] = "application/reports+json",\n'
                '      ["Origin"] = "https://shop.example.com", ["X-Forwarded-For"] = a}, body)\n'
                '  end\nend\n'
                'request = function()\n  i = i %% #reqs + 1\n  return reqs[i]\nend\n' % (body_file, clients))
    taskset = ["taskset", "-c", "1"] if pin else []
    # Warm-up, then the measured run.
    subprocess.run(taskset + ["wrk", "-t1", f"-c{connections}", "-d2s", "-s", script, url],
                   capture_output=True, text=True, check=True)
    cpu0 = sum(cpu_seconds(p) for p in pids())
    out = subprocess.run(taskset + ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
                          "--latency", "-s", script, url], capture_output=True, text=True, check=True).stdout
    cpu = sum(cpu_seconds(p) for p in pids()) - cpu0
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale, "requests": total,
            "cpu_us": cpu / total * 1e6 if total else 0,
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errors.group(1) if errors else ""}


def serve_and_measure(cmd, stop_signal, port, body_file, seconds, connections, pin):
    """Starts a server (pinned to CPU 0 and wrk to CPU 1 if `pin`), runs wrk against it, stops it
    (graceful signal)."""
    proc = subprocess.Popen((["taskset", "-c", "0"] if pin else []) + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def pids():  # the server and its children (nginx's workers)
        kids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        return [proc.pid] + [int(k) for k in kids]
    try:
        wait_port(port)
        return wrk(f"http://127.0.0.1:{port}/reports/nel", body_file, seconds, connections, pids, pin)
    finally:
        proc.send_signal(stop_signal)
        proc.wait(timeout=60)


def run_nginx(work, body_file, seconds, connections, workers, pin):
    port = free_port()
    os.makedirs(work)
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
worker_processes {workers};
daemon off;
error_log {work}/nginx-error.log warn;
pid {work}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  client_body_temp_path {work}/body;
  log_format body '$msec $remote_addr "$http_origin" $request_body';
  set_real_ip_from 127.0.0.1;
  real_ip_header X-Forwarded-For;
  server {{
    listen 127.0.0.1:{port} reuseport;
    keepalive_requests 1000000;
    location /reports/ {{
      client_max_body_size 64k;
      client_body_buffer_size 64k;
      access_log {work}/access.log body;
      echo_read_request_body;
      echo_status 204;
    }}
  }}
}}
""")
    result = serve_and_measure(["nginx", "-c", conf, "-p", work], signal.SIGQUIT, port, body_file,
                               seconds, connections, pin)
    with open(os.path.join(work, "access.log"), "rb") as f:
        result["logged"] = sum(1 for _ in f)
    return result


def run_collector(binary, work, body_file, seconds, connections, threads, pin):
    port = free_port()
    os.makedirs(work)
    db = os.path.join(work, "collector.db")
    conf = os.path.join(work, "collector.yaml")
    with open(conf, "w") as f:
        json.dump({"listen": f"127.0.0.1:{port}", "threads": threads,
                   "allowed_origins": ["https://shop.example.com"], "trusted_proxies": ["127.0.0.1"],
                   "geoip": {"city_db": os.path.join(MMDB, "GeoIP2-City-Test.mmdb"),
                             "asn_db": os.path.join(MMDB, "GeoLite2-ASN-Test.mmdb")},
                   "limits": {"per_ip": {"rate": 0}, "per_origin": {"rate": 0}, "idle_timeout": "60s"},
                   "store": {"sqlite": db}, "log_level": "warn"}, f)
    result = serve_and_measure([binary, "--config", conf], signal.SIGTERM, port, body_file, seconds,
                               connections, pin)
    con = sqlite3.connect(db)
    result["logged"] = con.execute("SELECT count(*) FROM browser_reports").fetchone()[0]
    row = con.execute("SELECT asn, city, server_asn, client_prefix, nel_type FROM browser_reports LIMIT 1").fetchone()
    result["unenriched"] = con.execute("SELECT count(*) FROM browser_reports "
                                       "WHERE asn IS NULL OR city IS NULL").fetchone()[0]
    con.close()
    result["sample_row"] = row
    return result


def write_section(path, lines, heading):
    """Replaces the section whose title starts with `heading` where it stands (or adds it before
    the closing commentary, else at the end), keeping every other section of the page."""
    text = open(path).read().splitlines() if os.path.exists(path) else ["# Benchmarks", ""]
    out, skip, at = [], False, None
    for line in text:
        if line.startswith("## "):
            skip = line.startswith(heading)
            if skip and at is None:
                at = len(out)
        if not skip:
            out.append(line)
    if at is None:  # before the closing commentary, if there is one
        at = next((i for i, l in enumerate(out) if l.startswith("## What the numbers say")), len(out))
    out[at:at] = lines + [""]
    with open(path, "w") as f:
        f.write("\n".join(out).rstrip("\n") + "\n")


# The scenarios: (key, label, nginx workers, collector threads, pinned).
SCENARIOS = [("one", "one core", 1, 1, True), ("two", "2 threads / 2 workers, unpinned", 2, 2, False)]


def median(runs):
    """The median round by req/s (the round itself, so that its other figures stay consistent)."""
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--collector", required=True)
    ap.add_argument("--out", default=os.path.join(REPO, "docs", "benchmarks.md"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3, help="alternating nginx/collector rounds per scenario")
    args = ap.parse_args()
    for tool in ("wrk", "nginx", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: run scripts/install-deps")
    work = tempfile.mkdtemp(prefix="vantage-bench-collector-")
    runs = {}  # (scenario, server) -> [result per round]
    try:
        body_file = os.path.join(work, "report.json")
        with open(body_file, "w") as f:
            f.write(report_body())
        for key, label, workers, threads, pin in SCENARIOS:
            for r in range(args.rounds):
                n = run_nginx(os.path.join(work, f"nginx-{key}-{r}"), body_file, args.seconds,
                              args.connections, workers, pin)
                c = run_collector(args.collector, os.path.join(work, f"collector-{key}-{r}"), body_file,
                                  args.seconds, args.connections, threads, pin)
                for name, res in (("nginx", n), ("collector", c)):
                    runs.setdefault((key, name), []).append(res)
                    print(f"{label}, round {r + 1}, {name}: {res['rps']:.0f} req/s, {res['cpu_us']:.1f} µs "
                          f"CPU/request, p99 {res['p99_ms']:.2f} ms, {res['requests']} requests, "
                          f"{res['non2xx']} non-2xx, {res['logged']} logged/stored {res['socket_errors']}",
                          flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # The stored-row checks, on every collector round: each 204 is a stored row (the rows include
    # the warm-up's), each row has a City and an ASN.
    for key, label, *_ in SCENARIOS:
        for i, c in enumerate(runs[(key, "collector")]):
            if c["unenriched"]:
                sys.exit(f"{label}, round {i + 1}: {c['unenriched']} stored rows lack a City or an ASN: "
                         "the enrichment did not run")
            if c["logged"] < c["requests"] - c["non2xx"]:
                sys.exit(f"{label}, round {i + 1}: {c['logged']} stored rows for "
                         f"{c['requests'] - c['non2xx']} accepted uploads")
    med = {k: median(v) for k, v in runs.items()}
    ratio = {key: med[(key, "collector")]["rps"] / med[(key, "nginx")]["rps"] for key, *_ in SCENARIOS}
    nginx_version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    names = {("one", "nginx"): "nginx 1 worker, pinned", ("one", "collector"): "vantage-collector, 1 thread, pinned",
             ("two", "nginx"): "nginx 2 workers, unpinned", ("two", "collector"): "vantage-collector, 2 threads, unpinned"}
    rows = []
    for key, *_ in SCENARIOS:
        for name in ("nginx", "collector"):
            r = med[(key, name)]
            rounds = " / ".join(f"{x['rps']:,.0f}" for x in runs[(key, name)])
            rows.append(f"| {names[(key, name)]} | {r['rps']:,.0f} | {rounds} | {r['cpu_us']:.1f} µs | "
                        f"{r['p99_ms']:.2f} ms | {1.0 if name == 'nginx' else ratio[key]:.2f}× | "
                        f"{r['requests']:,} | {r['non2xx']:,} | {r['logged']:,} |")
    one_c, two_c = med[("one", "collector")], med[("two", "collector")]
    all_c = runs[("one", "collector")] + runs[("two", "collector")]
    verdict = lambda x: "met" if x >= 1 else "not met"  # noqa: E731
    lines = [
        f"{SECTION}: vantage-collector vs nginx, one core and two",
        "",
        f"Measured by `scripts/bench` (bench/collector_ingest.py) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{machine()}; {nginx_version}; {wrk_version.split(' [')[0]}.",
        f"wrk (1 thread, {args.connections} keep-alive connections, {args.seconds} s after a 2 s warm-up) "
        "posts the same 700-byte Chromium-shaped NEL report (`application/reports+json`) to each "
        "server, with the client address in `X-Forwarded-For` from a trusted proxy "
        f"(127.0.0.1), in turn one of {len(CLIENTS)} addresses that each have a City and an ASN record "
        "in the MaxMind test databases. Two scenarios: **one core** (each server pinned to CPU 0, wrk "
        "to CPU 1) and **two** (nginx with 2 workers, the collector with `threads: 2`, neither server "
        f"nor wrk pinned). In each, nginx and the collector take turns, {args.rounds} rounds; the table "
        "shows the median round of each (by req/s) and every round's req/s in run order.",
        "",
        "- **nginx**: the worker(s) take the client address from `X-Forwarded-For` (realip module), read "
        "the body (echo module) and write it to the access log (`$remote_addr`, `$request_body`, "
        "unbuffered, no fsync), answer 204.",
        "- **vantage-collector**: the server thread(s) plus its segment log and store writer threads: "
        "limits, simdjson parse, validation, normalisation (event time, URL sanitising, UA "
        "reduction), GeoIP City + ASN lookups for the forwarded client address and `server_ip`, then the "
        "upload is written to the segment log and **answered 204 only after the fdatasync that covers it** "
        "([durability](collector.md#durability)); the writer then stores it with SQLite WAL group "
        "commits (`synchronous=FULL`).",
        "",
        "| server | req/s (median) | req/s per round | CPU per request | p99 latency | ratio (req/s) | requests | non-2xx | rows logged / stored |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ] + rows + [
        "",
        f"CPU per request: the server's user + system time (all its threads; nginx's master and workers) "
        f"over the measured run, divided by the requests. Every 204 the collector gave is a stored row with a "
        f"City and an ASN, checked in every round: {one_c['logged']:,} rows for "
        f"{one_c['requests'] - one_c['non2xx']:,} accepted uploads (one core) and {two_c['logged']:,} for "
        f"{two_c['requests'] - two_c['non2xx']:,} (two) in the median rounds, the rows including the warm-up's; "
        f"{sum(c['unenriched'] for c in all_c)} rows without in any round (sample row: asn, city, server_asn, "
        f"client_prefix, nel_type = {one_c['sample_row']}).",
        "",
        f"**Goal ≥ 1.0× nginx: one core {verdict(ratio['one'])} ({ratio['one']:.2f}×); 2 threads / 2 workers "
        f"unpinned {verdict(ratio['two'])} ({ratio['two']:.2f}×)** (runs on this shared 2-core VM vary by "
        "±20 % or more as other jobs come and go). The profile (perf, release build, "
        "`perf record -g` on the one-thread collector during the same load, about 23,000 req/s; 2026-12-08) says "
        "where the gap is:",
        "",
        "- **Kernel: 50 % of the collector's samples.** The TCP receive and send that nginx pays too, plus "
        "what only the collector pays: the segment log's `pwrite` + `fdatasync` (about 600 a second, about 25 "
        "uploads each) and SQLite's WAL writes and fsync per group commit (about 120 transactions a "
        "second); and scheduling — `finish_task_switch` 9 %, reschedule IPIs 4 % — because three "
        "threads (server, log, writer) share the one core: each log sync wakes the log thread, blocks it "
        "in the disk flush and wakes the server thread with the answers.",
        "- **malloc/free: about 8 %** (`_int_malloc`, `malloc`, `_int_free`, `cfree`, `unlink_chunk`): a "
        "record's strings are built on the server thread, copied into the log frame, and freed on the "
        "writer thread after the commit.",
        "- **SQLite: 6 %** (25 bound columns and one index per row); **Beast's response "
        "serialisation: about 3 %**; libmaxminddb 1.7 %; simdjson 0.7 %; URL sanitising "
        "(`append_escaped`, `write_sanitised`) 1.4 %.",
        "",
        "Which means the gap lies in syncing, storing and scheduling, not in parsing or enrichment (about 4 % together): nginx "
        "appends to an unbuffered log without parsing, enriching or syncing, and acknowledges before the "
        "bytes reach the disk. Writing the frames over zeros written ahead of them (so that a sync flushes "
        "data pages, not the file's size and block map: `ext4_fsync_nojournal`'s synchronous inode write "
        "was in every sync) removed that write (`__sync_dirty_buffer` 1.3 % of samples → 0.01 %); the "
        "throughput change it made (22,700 → 25,500 req/s in one pair of runs; other runs of the same "
        "build land anywhere from 22,000 to 28,000) is within this machine's noise. What would close more of it, in order of what the profile says: one "
        "thread fewer on the core (the server thread doing the log's write and sync itself, between "
        "reads, as a database's group commit does), the log's frame built straight from the parsed "
        "JSON instead of from the record's strings, and an arena per upload instead of a string per "
        "field. Before the log (answered once queued, no sync before the 204), the same benchmark "
        "measured 44,186 req/s against nginx's 88,762 (0.50×) on 2026-11-29 and 34,381 against 63,318 "
        "(0.54×) in issue 19's measurement (2 threads / 2 workers unpinned: 36,770 against 52,941, 0.69×).",
    ]
    write_section(args.out, lines, SECTION)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
