#!/usr/bin/env python3
"""The soak test: a real vantage-collector and three real vantage-probes under steady load for a
number of minutes, with faults injected on a schedule, then every acknowledged record accounted
for. Everything runs on 127.0.0.1; nothing else is contacted.

Load: three probes (http, tcp and a failing http check every 250 ms each, their results shipped
through their spools) and a browser client uploading NEL reports on keep-alive connections.

Faults, repeated every 150 s (a cycle):
  +20 s  collector SIGKILL, restarted 3 s later
  +45 s  collector SIGSTOP for 10 s (longer than the probes' 2 s upload timeout), then SIGCONT
  +70 s  the probes' spool disks full (each spool on a 4 MiB tmpfs, filled) for 15 s
  +95 s  another process holds the SQLite write lock (BEGIN EXCLUSIVE) for 10 s
  +115 s 1,500 idle connections opened against the collector (run with `ulimit -n 1024`) for 25 s

At the end the load stops, the probes' spools drain, and the accounting is checked:
  probe results: produced (each probe's --output) = stored + dropped-and-counted (by the probes'
                 vantage_probe_dropped_results_total), lost = 0;
  browser reports: acknowledged (204) = stored, except reports acknowledged in the last second
                 before a SIGKILL (a browser upload is answered once queued, ~5 ms before its
                 commit: the known window);
  processes: RSS and open descriptors at the start and the end of the last collector's life and
             of each probe; log lines per minute.
Exit status 0 when every check holds, 1 otherwise; a JSON summary is written with --json.
"""
import argparse
import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "regions", "lab"))
from targets import free_port  # noqa: E402

CYCLE_S = 150
OPEN_FILES = 1024


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def proc_stats(pid):
    """(RSS in KiB, open descriptors) of a process, or (None, None) when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        return rss, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return None, None


def scrape(port):
    values = {}
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return values
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


class Soak:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build_dir)
        self.dir = tempfile.mkdtemp(prefix="vantage-soak-")
        self.port = free_port()
        self.db = os.path.join(self.dir, "collector.db")
        self.collector = None
        self.collector_starts = []
        self.kills = []              # times of collector SIGKILLs
        self.probes = []             # dicts: id, proc, metrics_port, output, spool, log
        self.mounts = []
        self.stop_load = threading.Event()
        self.browser_acked = {}      # url -> acknowledgement time
        self.browser_sent = 0
        self.samples = []            # (t, name, rss KiB, fds)
        self.root = os.geteuid() == 0
        self.notes = []
        self.started = time.time()

    # -- processes --------------------------------------------------------------------------
    def start_collector(self):
        config = {
            "listen": f"127.0.0.1:{self.port}",
            "store": {"sqlite": self.db},
            "probes": [{"id": p["id"], "token_file": p["token_file"]} for p in self.probes],
            "limits": {"per_ip": {"rate": 0}, "per_origin": {"rate": 0}},
            "geoip": {"city_db": os.path.join(REPO, "tests", "data", "mmdb", "GeoIP2-City-Test.mmdb"),
                      "asn_db": os.path.join(REPO, "tests", "data", "mmdb", "GeoLite2-ASN-Test.mmdb")},
        }
        path = os.path.join(self.dir, "collector.yaml")
        with open(path, "w") as f:
            json.dump(config, f)
        logf = open(os.path.join(self.dir, "collector.log"), "a")
        self.collector = subprocess.Popen(
            [os.path.join(self.build, "beacon-collector", "vantage-collector"), "--config", path],
            stdout=logf, stderr=logf,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES)))
        self.collector_starts.append(time.time())
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the collector did not start")

    def make_probes(self):
        for i in range(3):
            pid = f"soak-{i + 1}"
            d = os.path.join(self.dir, pid)
            os.makedirs(d)
            spool = os.path.join(d, "spool")
            os.makedirs(spool)
            if self.root:
                subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", spool], check=True)
                self.mounts.append(spool)
            token_file = os.path.join(d, "token")
            with open(token_file, "w") as f:
                f.write(f"token-{pid}-0123456789\n")
            self.probes.append({"id": pid, "dir": d, "spool": spool, "token_file": token_file,
                                "metrics_port": free_port(), "output": os.path.join(d, "produced.jsonl"),
                                "log": os.path.join(d, "probe.log")})

    def start_probe(self, p):
        config = {
            "vantage_point": {"id": p["id"], "region": "soak", "country": "DE", "asn": 64500},
            "collector": {"url": f"http://127.0.0.1:{self.port}/v1/results", "token_file": p["token_file"],
                          "spool_dir": p["spool"], "flush_interval": "200ms", "request_timeout": "2s",
                          "backoff": {"initial": "200ms", "max": "2s"}},
            "metrics": {"listen": f"127.0.0.1:{p['metrics_port']}"},
            "defaults": {"interval": "250ms", "timeout": "200ms"},
            "checks": [
                {"id": "healthz", "kind": "http", "url": f"http://127.0.0.1:{self.port}/healthz"},
                {"id": "port", "kind": "tcp", "host": "127.0.0.1", "port": self.port},
                {"id": "refused", "kind": "http", "url": f"http://127.0.0.1:{free_port()}/"},
            ],
        }
        path = os.path.join(p["dir"], "probe.yaml")
        with open(path, "w") as f:
            json.dump(config, f)
        logf = open(p["log"], "a")
        p["proc"] = subprocess.Popen(
            [os.path.join(self.build, "probe", "vantage-probe"), "--config", path, "--output", p["output"]],
            stdout=logf, stderr=logf)

    # -- load -------------------------------------------------------------------------------
    def browser_load(self):
        """NEL uploads, ~50 per second, each with a unique URL; a 204 is an acknowledgement."""
        seq = 0
        s = None
        while not self.stop_load.is_set():
            seq += 1
            url = f"https://shop.example.com/soak/{seq}"
            body = json.dumps([{"age": 10, "type": "network-error", "url": url,
                                "body": {"type": "tcp.timed_out", "phase": "connection",
                                         "sampling_fraction": 1.0, "elapsed_time": 100}}]).encode()
            req = (f"POST /reports/nel HTTP/1.1\r\nHost: collector.test\r\n"
                   f"Content-Type: application/reports+json\r\nOrigin: https://shop.example.com\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
            try:
                if s is None:
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
                s.sendall(req)
                self.browser_sent += 1
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = s.recv(4096)
                    if not chunk:
                        raise OSError("closed")
                    head += chunk
                status = int(head.split(b" ", 2)[1])
                if status == 204:
                    self.browser_acked[url] = time.time()
                if b"connection: close" in head.lower() or status != 204:
                    s.close()
                    s = None
            except (OSError, ValueError, IndexError):
                if s is not None:
                    s.close()
                s = None
                time.sleep(0.05)
            time.sleep(0.02)
        if s is not None:
            s.close()

    def sampler(self):
        while not self.stop_load.is_set():
            now = time.time()
            if self.collector and self.collector.poll() is None:
                rss, fds = proc_stats(self.collector.pid)
                if rss is not None:
                    self.samples.append((now, "collector", rss, fds))
            for p in self.probes:
                rss, fds = proc_stats(p["proc"].pid)
                if rss is not None:
                    self.samples.append((now, p["id"], rss, fds))
            self.stop_load.wait(5)

    # -- faults -----------------------------------------------------------------------------
    def fault_kill(self):
        log("fault: collector SIGKILL")
        self.kills.append(time.time())
        self.collector.kill()
        self.collector.wait()
        time.sleep(3)
        self.start_collector()
        log("         collector restarted")

    def fault_stop(self):
        log("fault: collector SIGSTOP for 10 s")
        self.collector.send_signal(signal.SIGSTOP)
        time.sleep(10)
        self.collector.send_signal(signal.SIGCONT)

    def fault_disk_full(self):
        if not self.root:
            self.notes.append("spool disk full: skipped (needs root for tmpfs)")
            return
        log("fault: the probes' spool disks full for 15 s")
        fillers = []
        for p in self.probes:
            filler = os.path.join(p["spool"], "filler")
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                while os.write(fd, b"\0" * 4096) > 0:
                    pass
            except OSError:
                pass  # ENOSPC: full
            finally:
                os.close(fd)
            fillers.append(filler)
        time.sleep(15)
        for f in fillers:
            os.unlink(f)

    def fault_lock(self):
        log("fault: SQLite write lock held for 10 s")
        con = sqlite3.connect(self.db, timeout=10, isolation_level=None)
        con.execute("BEGIN EXCLUSIVE")
        time.sleep(10)
        con.execute("ROLLBACK")
        con.close()

    def fault_idle_flood(self):
        log("fault: 1,500 idle connections for 25 s")
        socks = []
        for _ in range(1500):
            try:
                socks.append(socket.create_connection(("127.0.0.1", self.port), timeout=2))
            except OSError:
                break
        time.sleep(25)
        for s in socks:
            s.close()

    # -- run --------------------------------------------------------------------------------
    def run(self):
        duration = self.args.minutes * 60
        self.make_probes()
        self.start_collector()
        for p in self.probes:
            self.start_probe(p)
        threads = [threading.Thread(target=self.browser_load, daemon=True),
                   threading.Thread(target=self.sampler, daemon=True)]
        for t in threads:
            t.start()
        start = self.started = time.time()
        schedule = [(20, self.fault_kill), (45, self.fault_stop), (70, self.fault_disk_full),
                    (95, self.fault_lock), (115, self.fault_idle_flood)]
        log(f"soak: {self.args.minutes} min, collector :{self.port}, work dir {self.dir}")
        cycle = 0
        while time.time() - start < duration:
            for offset, fault in schedule:
                at = start + cycle * CYCLE_S + offset
                if at > start + duration - 20:
                    break
                time.sleep(max(0, at - time.time()))
                fault()
            cycle += 1
            next_cycle = start + cycle * CYCLE_S
            if next_cycle >= start + duration:
                break
            time.sleep(max(0, next_cycle - time.time()))
        time.sleep(max(0, start + duration - time.time()))
        elapsed = time.time() - start
        log("load stops; waiting for the spools to drain")
        self.stop_load.set()
        for t in threads:
            t.join(timeout=10)
        deadline = time.time() + 120
        while time.time() < deadline:
            pending = [scrape(p["metrics_port"]).get("vantage_probe_spool_results", -1) for p in self.probes]
            if all(v == 0 for v in pending):
                break
            time.sleep(0.5)
        end_samples = {p["id"]: proc_stats(p["proc"].pid) for p in self.probes}
        end_samples["collector"] = proc_stats(self.collector.pid)
        dropped = {}
        for p in self.probes:
            m = scrape(p["metrics_port"])
            dropped[p["id"]] = sum(v for k, v in m.items()
                                   if k.startswith("vantage_probe_dropped_results_total")
                                   or k.startswith("vantage_probe_output_dropped_total"))
            p["proc"].send_signal(signal.SIGTERM)
        for p in self.probes:
            p["rc"] = p["proc"].wait(timeout=60)
        self.collector.send_signal(signal.SIGTERM)
        collector_rc = self.collector.wait(timeout=60)
        return self.account(elapsed, dropped, end_samples, collector_rc)

    def account(self, elapsed, dropped, end_samples, collector_rc):
        con = sqlite3.connect(self.db, timeout=30)
        stored_results = {r[0] for r in con.execute("SELECT result_id FROM probe_results")}
        stored_urls = {r[0] for r in con.execute("SELECT url FROM browser_reports")}
        con.close()
        ok = True
        summary = {"minutes": round(elapsed / 60, 2), "collector_restarts": len(self.kills),
                   "probes": {}, "notes": self.notes}
        produced_total = stored_total = dropped_total = lost_total = 0
        for p in self.probes:
            produced = set()
            with open(p["output"]) as f:
                for line in f:
                    if line.strip():
                        produced.add(json.loads(line)["id"])
            missing = produced - stored_results
            lost = len(missing) - int(dropped[p["id"]])
            produced_total += len(produced)
            stored_total += len(produced & stored_results)
            dropped_total += int(dropped[p["id"]])
            lost_total += max(lost, 0)
            # "start": the first sample once warm (30 s in), as for the collector below.
            first = next(((rss, fds) for t, n, rss, fds in self.samples
                          if n == p["id"] and t >= self.started + 30), (None, None))
            summary["probes"][p["id"]] = {
                "produced": len(produced), "stored": len(produced & stored_results),
                "dropped_counted": int(dropped[p["id"]]), "lost": lost, "exit": p["rc"],
                "rss_kib": [first[0], end_samples[p["id"]][0]], "fds": [first[1], end_samples[p["id"]][1]],
                "log_lines": count_lines(p["log"])}
            if lost != 0 or p["rc"] != 0:
                ok = False
        summary["probe_results"] = {"produced": produced_total, "stored": stored_total,
                                    "dropped_counted": dropped_total, "lost": lost_total}
        acked = self.browser_acked
        lost_urls = [u for u in acked if u not in stored_urls]
        in_window = [u for u in lost_urls if any(0 <= k - acked[u] <= 1.0 for k in self.kills)]
        summary["browser_reports"] = {"sent": self.browser_sent, "acknowledged": len(acked),
                                      "stored": len(set(acked) & stored_urls),
                                      "lost_in_sigkill_window": len(in_window),
                                      "lost_otherwise": len(lost_urls) - len(in_window)}
        if len(lost_urls) != len(in_window):
            ok = False
        # The last collector process: from 30 s after its start (warm) to the end.
        last_start = self.collector_starts[-1]
        warm = [(rss, fds) for t, n, rss, fds in self.samples if n == "collector" and t >= last_start + 30]
        start_rss, start_fds = warm[0] if warm else (None, None)
        end_rss, end_fds = end_samples["collector"]
        peak_rss = max((rss for t, n, rss, fds in self.samples if n == "collector"), default=None)
        summary["collector"] = {"rss_kib": [start_rss, end_rss], "peak_rss_kib": peak_rss,
                                "fds": [start_fds, end_fds], "exit": collector_rc,
                                "log_lines": count_lines(os.path.join(self.dir, "collector.log"))}
        if collector_rc != 0:
            ok = False
        if start_fds is not None and end_fds is not None and end_fds > start_fds + 16:
            ok = False
            self.notes.append(f"collector descriptors grew from {start_fds} to {end_fds}")
        if start_rss and end_rss and end_rss > start_rss + 64 * 1024:
            ok = False
            self.notes.append(f"collector RSS grew from {start_rss} to {end_rss} KiB")
        minutes = max(elapsed / 60, 1)
        for name, lines in [("collector", summary["collector"]["log_lines"])] + \
                [(k, v["log_lines"]) for k, v in summary["probes"].items()]:
            if lines / minutes > 200:
                ok = False
                self.notes.append(f"{name}: {lines} log lines in {minutes:.1f} min (a flood)")
        summary["ok"] = ok
        return summary

    def cleanup(self):
        for proc in [self.collector] + [p.get("proc") for p in self.probes]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()
        for m in self.mounts:
            subprocess.run(["umount", "-l", m], check=False)
        if not self.args.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def write_doc(path, summary, started):
    """Writes the "## Soak" section of docs/benchmarks.md (other sections kept)."""
    sys.path.insert(0, os.path.join(REPO, "bench"))
    from collector_ingest import write_section  # noqa: E402
    from probe_cpu import machine  # noqa: E402
    r, b, c = summary["probe_results"], summary["browser_reports"], summary["collector"]

    def mib(kib):
        return f"{kib / 1024:.1f}" if kib else "-"

    lines = [
        "## Soak: faults on a schedule, every acknowledged record accounted for",
        "",
        f"`scripts/soak --minutes {summary['minutes']:g}` (scripts/lib/soak.py; also `scripts/test --soak`) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}; {machine()}; dev build. A collector "
        f"(`ulimit -n {OPEN_FILES}`) and three probes (three checks every 250 ms each, spools on 4 MiB tmpfs "
        "disks), a browser client uploading NEL reports ~40/s; every 150 s: collector SIGKILL and restart, "
        "SIGSTOP for 10 s (past the probes' 2 s upload timeout), the spool disks full for 15 s, the SQLite "
        "write lock held for 10 s, 1,500 idle connections for 25 s.",
        "",
        "| what | count |",
        "|---|---:|",
        f"| probe results produced | {r['produced']:,} |",
        f"| … stored by the collector | {r['stored']:,} |",
        f"| … dropped while the spool disk was full, and counted (`vantage_probe_dropped_results_total`) | {r['dropped_counted']:,} |",
        f"| … **lost** (produced − stored − counted) | **{r['lost']}** |",
        f"| browser reports acknowledged (204) | {b['acknowledged']:,} |",
        f"| … stored | {b['stored']:,} |",
        f"| … lost in the ≤ 1 s before a SIGKILL (answered once queued, before the commit) | {b['lost_in_sigkill_window']} |",
        f"| … **lost otherwise** | **{b['lost_otherwise']}** |",
        f"| collector restarts (SIGKILL) | {summary['collector_restarts']} |",
        "",
        "| process | RSS MiB (warm → end) | open descriptors (warm → end) | log lines |",
        "|---|---:|---:|---:|",
        f"| collector (its last life) | {mib(c['rss_kib'][0])} → {mib(c['rss_kib'][1])} (peak {mib(c['peak_rss_kib'])}) | "
        f"{c['fds'][0]} → {c['fds'][1]} | {c['log_lines']} |",
    ]
    for name, p in summary["probes"].items():
        lines.append(f"| {name} | {mib(p['rss_kib'][0])} → {mib(p['rss_kib'][1])} | {p['fds'][0]} → {p['fds'][1]} | "
                     f"{p['log_lines']} |")
    lines += ["", f"Result: **{'passed' if summary['ok'] else 'FAILED'}**" +
              ("" if not summary["notes"] else " — " + "; ".join(summary["notes"])) + "."]
    write_section(path, lines, "## Soak")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10, help="how long the load runs (default 10)")
    parser.add_argument("--build-dir", default=os.path.join(REPO, "build", "dev"),
                        help="where vantage-collector and vantage-probe are built (default build/dev)")
    parser.add_argument("--json", help="write the summary to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, store)")
    parser.add_argument("--doc", help="write the figures into this page's \"## Soak\" section "
                                      "(docs/benchmarks.md)")
    args = parser.parse_args()
    soak = Soak(args)
    try:
        summary = soak.run()
    finally:
        soak.cleanup()
    print(json.dumps(summary, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    if args.doc:
        write_doc(args.doc, summary, soak.started)
    r = summary["probe_results"]
    b = summary["browser_reports"]
    print(f"soak: {summary['minutes']} min; probe results produced {r['produced']}, stored {r['stored']}, "
          f"dropped and counted {r['dropped_counted']}, lost {r['lost']}; browser reports acknowledged "
          f"{b['acknowledged']}, stored {b['stored']}, lost in a SIGKILL window {b['lost_in_sigkill_window']}, "
          f"lost otherwise {b['lost_otherwise']}; {'ok' if summary['ok'] else 'FAILED'}")
    for note in summary["notes"]:
        print(f"soak: {note}")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
