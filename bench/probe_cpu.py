#!/usr/bin/env python3
"""CPU per check: vantage-probe against Debian's prometheus-blackbox-exporter, side by side.

Both probe the same local targets (regions/lab/targets.py: nginx over HTTP and HTTPS with a
throw-away CA, unbound for DNS), at the same rate, with a new connection for every HTTP check,
each pinned to the same single core (taskset). CPU is the process's utime+stime from
/proc/<pid>/stat over the measured window, divided by the number of checks completed in it.
blackbox_exporter is driven the way Prometheus drives it (GET /probe?module=…&target=… over
keep-alive connections) from a driver pinned to the other core; the driver's CPU is not counted.

Then the sustained-rate test: vantage-probe alone on one core with 10,000 checks a minute.

Writes the results as Markdown to the file given with --out (docs/benchmarks.md).
"""
import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TARGETS = os.path.join(ROOT, "regions", "lab", "targets.py")
sys.path.insert(0, os.path.dirname(TARGETS))
from targets import free_port  # noqa: E402  (ports below the ephemeral range)
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK




def metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_port(port, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing on port {port}")


# --- vantage-probe ------------------------------------------------------------------------------

def run_vantage(probe, core, checks, interval_s, warmup_s, measure_s, workdir, name, env=None, timeout_s=None):
    metrics_port = free_port()
    config = {
        "vantage_point": {"id": "bench", "region": "lab"},
        "metrics": {"listen": f"127.0.0.1:{metrics_port}"},
        "scheduler": {"max_concurrency": 4096},
        "defaults": {"interval": f"{interval_s}s", "timeout": f"{timeout_s or min(interval_s, 5)}s"},
        "checks": checks,
    }
    path = os.path.join(workdir, f"{name}.yaml")
    with open(path, "w") as f:
        json.dump(config, f)
    out = os.path.join(workdir, f"{name}.jsonl")
    proc = subprocess.Popen(["taskset", "-c", str(core), probe, "--config", path, "--output", out,
                             "--log-level", "error"], env=env)
    try:
        wait_port(metrics_port)
        time.sleep(warmup_s)
        runs0, failed0 = metric(metrics_port, "vantage_probe_runs_total"), 0
        cpu0, t0 = cpu_seconds(proc.pid), time.time()
        time.sleep(measure_s)
        cpu1, t1 = cpu_seconds(proc.pid), time.time()
        runs1 = metric(metrics_port, "vantage_probe_runs_total")
        skipped = metric(metrics_port, "vantage_probe_skipped_runs_total")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    ok = failed = results = steps_run = 0
    step_ms = []
    with open(out) as f:
        for line in f:
            r = json.loads(line)
            results += 1
            if r["outcome"]["type"] == "ok":
                ok += 1
            else:
                failed += 1
            for st in r.get("steps", []):
                if not st.get("skipped"):
                    steps_run += 1
                    step_ms.append(st["phases_ms"]["total"])
    runs = runs1 - runs0
    return {"runs": runs, "cpu_s": cpu1 - cpu0, "wall_s": t1 - t0, "skipped": skipped,
            "ok": ok, "failed": failed, "steps_per_run": steps_run / results if results else 0,
            "step_ms": sorted(step_ms)}


# --- blackbox_exporter --------------------------------------------------------------------------

def run_blackbox(core, driver_core, module, target, rate, warmup_s, measure_s, workdir, ca):
    port = free_port()
    config = os.path.join(workdir, "blackbox.yml")
    with open(config, "w") as f:
        f.write(f"""
modules:
  http_plain:
    prober: http
    timeout: 5s
    http:
      valid_status_codes: [200]
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
  https_ca:
    prober: http
    timeout: 5s
    http:
      valid_status_codes: [200]
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      tls_config:
        ca_file: {ca}
  dns_a:
    prober: dns
    timeout: 5s
    dns:
      query_name: shop.test
      query_type: A
      transport_protocol: udp
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
""")
    proc = subprocess.Popen(["taskset", "-c", str(core), "prometheus-blackbox-exporter",
                             f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
                             "--log.level=error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        os.sched_setaffinity(0, {driver_core})
        path = f"/probe?module={module}&target={target}"
        stats = {"ok": 0, "failed": 0, "count": 0}
        lock = threading.Lock()
        stop = threading.Event()
        counting = threading.Event()

        def worker(offset, workers):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            interval = workers / rate
            next_t = time.time() + offset * interval / workers
            while not stop.is_set():
                now = time.time()
                if now < next_t:
                    time.sleep(next_t - now)
                next_t += interval
                conn.request("GET", path)
                body = conn.getresponse().read().decode()
                success = "probe_success 1" in body
                if counting.is_set():
                    with lock:
                        stats["count"] += 1
                        stats["ok" if success else "failed"] += 1

        workers = max(4, int(rate // 20))
        threads = [threading.Thread(target=worker, args=(i, workers), daemon=True) for i in range(workers)]
        for t in threads:
            t.start()
        time.sleep(warmup_s)
        counting.set()
        cpu0, t0 = cpu_seconds(proc.pid), time.time()
        time.sleep(measure_s)
        cpu1, t1 = cpu_seconds(proc.pid), time.time()
        counting.clear()
        stop.set()
        for t in threads:
            t.join(timeout=15)
        return {"runs": stats["count"], "cpu_s": cpu1 - cpu0, "wall_s": t1 - t0, "ok": stats["ok"],
                "failed": stats["failed"]}
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count())))
        proc.terminate()
        proc.wait(timeout=30)


def per_check_us(r):
    return 1e6 * r["cpu_s"] / r["runs"] if r["runs"] else float("nan")


def median_run(runs):
    """The round with the median CPU per check."""
    return sorted(runs, key=per_check_us)[len(runs) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--measure", type=float, default=20.0, help="seconds measured per scenario")
    ap.add_argument("--rate", type=float, default=100.0, help="checks per second in the comparison")
    ap.add_argument("--sustained-per-minute", type=int, default=10000)
    ap.add_argument("--sustained-measure", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating vantage/blackbox rounds per scenario; medians are reported")
    ap.add_argument("--journeys", type=int, default=1000, help="configured checkout journeys")
    ap.add_argument("--journey-intervals", default="60,12",
                    help="journey intervals (s) to measure, comma-separated")
    ap.add_argument("--journey-measure", type=float, default=60.0)
    ap.add_argument("--sections", default="cpu,sustained,journeys",
                    help="which sections to measure; the others are kept from the existing --out file")
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    cores = sorted(os.sched_getaffinity(0))
    probe_core, driver_core = cores[-1], cores[0]

    work = tempfile.mkdtemp(prefix="vantage-bench-")
    os.chmod(work, 0o755)
    state = os.path.join(work, "targets")
    subprocess.run([sys.executable, TARGETS, "start", state], check=True, stdout=subprocess.DEVNULL)
    try:
        with open(os.path.join(state, "env.json")) as f:
            env = json.load(f)
        p, ca, resolver = env["ports"], env["ca_file"], env["resolver"]
        n = int(args.rate)  # checks at 1 s intervals -> `rate` checks per second
        scenarios = [
            ("HTTP (new connection each check)", "http_plain", f"http://127.0.0.1:{p['http']}/",
             [{"id": f"h{i}", "kind": "http", "url": f"http://127.0.0.1:{p['http']}/", "expect": {"status": [200]}}
              for i in range(n)], 0.2),
            ("HTTPS (new connection and TLS handshake each check)", "https_ca", f"https://127.0.0.1:{p['https_valid']}/",
             [{"id": f"s{i}", "kind": "http", "url": f"https://127.0.0.1:{p['https_valid']}/",
               "tls": {"ca_file": ca}, "expect": {"status": [200]}} for i in range(n)], 0.3),
            ("DNS (A query to unbound)", "dns_a", resolver,
             [{"id": f"d{i}", "kind": "dns", "name": "shop.test", "resolvers": [resolver]} for i in range(n)],
             0.1),
        ]
        rows = []
        for title, module, target, checks, goal in (scenarios if "cpu" in sections else []):
            print(f"== {title}", flush=True)
            vs, bs = [], []
            # Alternate the two, several rounds: a shared machine's noise hits both alike.
            for _ in range(args.rounds):
                v = run_vantage(args.probe, probe_core, checks, 1, 3, args.measure, work, module)
                b = run_blackbox(probe_core, driver_core, module, target, args.rate, 3, args.measure, work, ca)
                print(f"   vantage {per_check_us(v):.0f} µs/check ({v['runs']:.0f} runs), "
                      f"blackbox {per_check_us(b):.0f} µs/check ({b['runs']} runs)", flush=True)
                vs.append(v)
                bs.append(b)
            rows.append((title, median_run(vs), median_run(bs), vs, bs, goal))

        # Sustained rate: the given checks per minute on one core, HTTP with new connections.
        per_minute = args.sustained_per_minute
        interval = 3
        count = per_minute * interval // 60
        sustained = None
        if "sustained" in sections:
            print(f"== sustained: {per_minute} HTTP checks/minute on one core", flush=True)
            sustained = run_vantage(args.probe, probe_core,
                                    [{"id": f"r{i}", "kind": "http", "url": f"http://127.0.0.1:{p['http']}/"}
                                     for i in range(count)], interval, 5, args.sustained_measure, work,
                                    "sustained")
            print(f"   {sustained['runs'] * 60 / sustained['wall_s']:.0f} checks/minute, "
                  f"CPU {100 * sustained['cpu_s'] / sustained['wall_s']:.0f}% of one core", flush=True)

        # Journeys: the example checkout (7 steps, HTTPS, one connection per run) against the lab
        # origin (nginx + njs on the other core), many configured at once.
        journeys = []
        if "journeys" in sections:
            base = f"https://shop.test:{p['https_valid']}"
            checks = [{"id": f"checkout-{i}", "kind": "journey",
                       "include": os.path.join(ROOT, "regions", "journeys", "checkout.yaml"),
                       "variables": {"base": base}, "resolvers": [resolver], "tls": {"ca_file": ca}}
                      for i in range(args.journeys)]
            jenv = dict(os.environ, SHOP_PROBE_PASSWORD=env["origin"]["shop_password"])
            for interval_s in (int(x) for x in args.journey_intervals.split(",")):
                scheduled = args.journeys * 60 / interval_s
                print(f"== journeys: {args.journeys} checkout journeys every {interval_s}s "
                      f"({scheduled:.0f}/minute) on one core", flush=True)
                j = run_vantage(args.probe, probe_core, checks, interval_s, interval_s + 5, args.journey_measure,
                                work, f"journeys-{interval_s}", env=jenv, timeout_s=min(interval_s, 30))
                j["interval_s"], j["scheduled_per_min"] = interval_s, scheduled
                steps = j["runs"] * j["steps_per_run"]
                print(f"   {j['runs'] * 60 / j['wall_s']:.0f} journeys/minute, "
                      f"{1e6 * j['cpu_s'] / steps if steps else float('nan'):.0f} µs CPU/step, "
                      f"CPU {100 * j['cpu_s'] / j['wall_s']:.0f}% of one core, failed {j['failed']}", flush=True)
                journeys.append(j)
    finally:
        subprocess.run([sys.executable, TARGETS, "stop", state], stdout=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)

    v = subprocess.run(["prometheus-blackbox-exporter", "--version"], capture_output=True, text=True)
    bb_version = (v.stdout + v.stderr).strip().splitlines()[0]
    curl_version = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    header = [
        "# Benchmarks",
        "",
        "Measured by `scripts/bench` (bench/probe_cpu.py); rerun it to refresh this page. Numbers are",
        "from one run on the machine below, not averages over machines.",
        "",
        f"- machine: {machine()}",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- reference: {bb_version} (Debian package `prometheus-blackbox-exporter`)",
        f"- vantage-probe: release preset (-O2); {curl_version.split(' (')[0]}",
        "",
    ]
    kept = existing_sections(args.out)
    out_sections = {}
    lines = [
        "## CPU per check: vantage-probe vs blackbox_exporter",
        "",
        f"Same local targets, same rate ({args.rate:.0f} checks/s, {args.measure:.0f} s measured after warm-up),",
        "each process pinned to the same single core. blackbox_exporter is driven like Prometheus",
        "drives it (`GET /probe?module=…&target=…` over keep-alive connections, from the other core).",
        "CPU = utime + stime of the process over the window / checks completed in it (both include",
        "the kernel's TCP work on loopback, which is charged to whichever side sends). The two",
        f"alternate for {args.rounds} rounds per scenario; the table shows the median round of each.",
        "",
        "| check | vantage-probe µs CPU/check | blackbox_exporter µs CPU/check | ratio | goal | all rounds, µs (vantage / blackbox) | failed (vantage / blackbox) |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for title, v, b, vs, bs, goal in rows:
        ratio = per_check_us(v) / per_check_us(b)
        rounds = ", ".join(f"{per_check_us(x):.0f}/{per_check_us(y):.0f}" for x, y in zip(vs, bs))
        verdict = "met" if ratio <= goal else "not met"
        lines.append(f"| {title} | {per_check_us(v):.0f} | {per_check_us(b):.0f} | **{ratio:.2f}×** | "
                     f"≤ {goal}× ({verdict}) | {rounds} | {v['failed']} / {b['failed']} |")
    if rows:
        # The hand-written profile below the table (### Profile …) is kept across reruns.
        old = kept.get("## CPU per check", [])
        profile = next((i for i, line in enumerate(old) if line.startswith("### ")), None)
        out_sections["## CPU per check"] = lines + ([""] + old[profile:] if profile is not None else [])
    s = sustained
    lines = [
        "## Sustained rate on one core",
        "",
        f"{count} HTTP checks at {interval} s intervals ({per_minute:,} checks/minute scheduled), vantage-probe",
        f"pinned to one core, {args.sustained_measure:.0f} s measured after warm-up. Goal: 10,000 checks/minute.",
        "",
        "| scheduled checks/min | completed checks/min | CPU (% of one core) | skipped runs | failed results |",
        "|---:|---:|---:|---:|---:|",
        f"| {per_minute:,} | {s['runs'] * 60 / s['wall_s']:,.0f} | {100 * s['cpu_s'] / s['wall_s']:.0f}% | "
        f"{s['skipped']:.0f} | {s['failed']} |",
        "",
    ] if s else []
    if s:
        out_sections["## Sustained rate"] = lines
    if journeys:
        lines = [
            "## Journeys: CPU per step and sustained journeys per minute",
            "",
            f"{args.journeys:,} configured copies of the example checkout journey "
            "(regions/journeys/checkout.yaml: 7 steps over HTTPS, one",
            "TLS connection per run kept alive across its steps, JSON extraction and assertions) against",
            "the lab origin (nginx + njs, regions/lab/origin/api.js, on the other core). vantage-probe",
            f"pinned to one core, {args.journey_measure:.0f} s measured after one interval of warm-up. CPU per step",
            "= the probe's CPU over the window / steps run in it (the TLS handshake of each run included).",
            "",
            "| interval | scheduled journeys/min | completed journeys/min | steps/min | µs CPU/step | CPU (% of one core) | step p50 / p95 ms (whole run) | skipped runs | failed journeys (whole run) |",
            "|---:|---:|---:|---:|---:|---:|---|---:|---:|",
        ]
        for j in journeys:
            per_min = j["runs"] * 60 / j["wall_s"]
            steps = j["runs"] * j["steps_per_run"]
            ms = j["step_ms"]
            pct = (lambda q: ms[min(len(ms) - 1, int(q * len(ms)))] if ms else float("nan"))
            lines.append(
                f"| {j['interval_s']} s | {j['scheduled_per_min']:,.0f} | {per_min:,.0f} | {per_min * j['steps_per_run']:,.0f} | "
                f"{1e6 * j['cpu_s'] / steps if steps else float('nan'):.0f} | {100 * j['cpu_s'] / j['wall_s']:.0f}% | "
                f"{pct(0.5):.1f} / {pct(0.95):.1f} | {j['skipped']:.0f} | {j['failed']} |")
        lines.append("")
        out_sections["## Journeys"] = lines
    # Every section of the page keeps its place; the ones measured now are replaced, and the
    # closing notes come from bench/notes.md. (Sections other scripts write are never dropped.)
    body, placed = [], set()
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notes.md")
    notes_text = open(notes).read() if os.path.exists(notes) else None
    notes_heading = notes_text.splitlines()[0] if notes_text else None
    for heading, section in ordered_sections(args.out):
        if notes_heading and heading == notes_heading:
            continue  # rewritten from bench/notes.md at the end
        prefix = next((p for p in OWN_SECTIONS if heading.startswith(p)), None)
        if prefix in out_sections:
            section = out_sections[prefix]
            placed.add(prefix)
        while section and not section[-1].strip():
            section = section[:-1]
        body += section + [""]
    new = []
    for prefix in OWN_SECTIONS:
        if prefix in out_sections and prefix not in placed:
            new += out_sections[prefix] + [""]
    body = new + body
    if notes_text:
        body += [notes_text]
    with open(args.out, "w") as f:
        f.write("\n".join(header + body))
    print(f"wrote {args.out}")


def machine():
    """"2 cores (Intel(R) Xeon(R) Processor), Linux 6.1.0" for the benchmark pages."""
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}"


OWN_SECTIONS = ("## CPU per check", "## Sustained rate", "## Journeys")


def ordered_sections(path):
    """The page's "## " sections in order, as (heading, lines); the text above them is left out."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f.read().splitlines():
            if line.startswith("## "):
                out.append((line, []))
            if out:
                out[-1][1].append(line)
    return out


def existing_sections(path):
    """This script's sections of an earlier run (by heading prefix)."""
    out = {}
    for heading, lines in ordered_sections(path):
        prefix = next((p for p in OWN_SECTIONS if heading.startswith(p)), None)
        if prefix:
            out[prefix] = lines
    return out


if __name__ == "__main__":
    main()
