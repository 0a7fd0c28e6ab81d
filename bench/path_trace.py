#!/usr/bin/env python3
"""kind: path against Debian's mtr on the same topology: traces per second per core and CPU time
per trace.

The topology is tests/integration/test_path.py's: three Linux routers in network namespaces of
this script's own (vtb-<pid>-*, removed at the end), ICMP rate limits off. The probe runs N path
checks once (`--once`, scheduler.max_concurrency C); mtr runs M times with the same probes per hop
(3 cycles, interval 0.1 s: mtr's cycles are paced, so only its CPU time compares). CPU time is
user + system of the process and its children (mtr forks mtr-packet), from getrusage.

Needs root. Run under the build lock:
    flock /tmp/vantage-build.lock python3 bench/path_trace.py [--traces 500] [--mtr-runs 20]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import test_path as topo  # noqa: E402

topo.PREFIX = "vtb-%d-" % os.getpid()


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench_probe(probe, protocol, traces, concurrency):
    with tempfile.TemporaryDirectory(prefix="vtb-") as d:
        cfg = os.path.join(d, "probe.yaml")
        out = os.path.join(d, "out.jsonl")
        with open(cfg, "w") as f:
            f.write("vantage_point: {id: vtb-src, region: bench}\n"
                    "scheduler: {max_concurrency: %d}\n"
                    "checks:\n" % concurrency)
            for i in range(traces):
                f.write("  - {id: p%d, kind: path, host: \"%s\", protocol: %s, "
                        "hop_timeout: 500ms, interval: 1h}\n" % (i, topo.DST4, protocol))
        cpu0, t0 = children_cpu(), time.monotonic()
        p = topo.in_ns("src", probe, "--config", cfg, "--once", "--output", out,
                       "--log-level", "warn", check=False)
        wall, cpu = time.monotonic() - t0, children_cpu() - cpu0
        with open(out) as f:
            paths = [json.loads(l) for l in f if '"path_result"' in l]
    reached = sum(1 for x in paths if x["stop"]["reason"] == "reached")
    if reached != traces:
        print("warning: %d of %d traces reached the target (exit %d)" % (reached, traces,
                                                                         p.returncode))
    return {"traces": traces, "wall_s": wall, "cpu_s": cpu, "reached": reached}


def bench_mtr(protocol, runs):
    args = ["mtr", "--json", "-n", "-4", "-c", "3", "-i", "0.1", "--gracetime", "0.2"]
    if protocol == "udp":
        args.append("--udp")
    elif protocol == "tcp":
        args += ["--tcp", "--port", "443"]
    cpu0, t0 = children_cpu(), time.monotonic()
    for _ in range(runs):
        topo.in_ns("src", *args, topo.DST4)
    return {"traces": runs, "wall_s": time.monotonic() - t0, "cpu_s": children_cpu() - cpu0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--traces", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--mtr-runs", type=int, default=20)
    ap.add_argument("--build", default=os.environ.get("VANTAGE_BUILD_DIR",
                                                      os.path.join(HERE, "..", "build", "release")))
    a = ap.parse_args()
    probe = os.path.join(a.build, "probe", "vantage-probe")
    topo.build_topology()
    try:
        print("| protocol | tool | traces | wall s | CPU s | traces/s | traces/s per core "
              "| CPU ms/trace |")
        print("|---|---|---|---|---|---|---|---|")
        for protocol in ("udp", "icmp", "tcp"):
            for name, r in (("vantage-probe", bench_probe(probe, protocol, a.traces,
                                                          a.concurrency)),
                            ("mtr", bench_mtr(protocol, a.mtr_runs))):
                print("| %s | %s | %d | %.2f | %.3f | %.0f | %.0f | %.3f |" % (
                    protocol, name, r["traces"], r["wall_s"], r["cpu_s"],
                    r["traces"] / r["wall_s"], r["traces"] / max(r["cpu_s"], 1e-9),
                    1000 * r["cpu_s"] / r["traces"]))
    finally:
        topo.remove_topology()


if __name__ == "__main__":
    main()
