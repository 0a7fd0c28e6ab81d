#!/usr/bin/env python3
"""`vantage bgp dump` vs `bgpdump -m` (Debian bgpdump 1.6.2) on the same MRT files, raw and
gzip-compressed, side by side, each pinned to CPU 0, output to /dev/null: best of N runs of
wall time, entries (lines) per second and MB/s of the MRT stream (uncompressed bytes). Checks
that both printed the same number of lines. Writes the "## BGP dump" section of
docs/benchmarks.md (other sections are kept).

    bench/bgp_dump.py --vantage build/release/analysis/vantage [--runs 3] [--out docs/benchmarks.md]
"""
import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from collector_ingest import write_section  # noqa: E402
from probe_cpu import machine  # noqa: E402

SECTION = "## BGP dump"
FILES = ["updates.et-header.2015.gz", "bview.20020722.2337.gz", "updates.20160811.1600.gz",
         "updates.20070211.0141.gz"]


def timed(cmd, runs):
    """Best wall time (s), its CPU time (s) and the number of lines printed."""
    best = None
    for _ in range(runs):
        t0 = time.perf_counter()
        before = os.times()
        p = subprocess.run(["taskset", "-c", "0"] + cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        after = os.times()
        cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
        lines = p.stdout.count(b"\n")
        if best is None or wall < best[0]:
            best = (wall, cpu, lines)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vantage", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(REPO, "docs", "benchmarks.md"))
    args = ap.parse_args()
    if not shutil.which("bgpdump"):
        sys.exit("bgpdump not found: run scripts/install-deps")
    src = os.path.join(REPO, "tests", "data", "bgp", "bgpdump")
    work = tempfile.mkdtemp(prefix="vantage-bench-bgp-")
    rows = []
    try:
        for name in FILES:
            gz = os.path.join(src, name)
            raw = os.path.join(work, name[:-3] + ".mrt")
            with gzip.open(gz) as f, open(raw, "wb") as out:
                shutil.copyfileobj(f, out)
            mb = os.path.getsize(raw) / 1e6
            for label, path in (("raw", raw), ("gz", gz)):
                ours = timed([args.vantage, "bgp", "dump", path], args.runs)
                ref = timed(["bgpdump", "-m", path], args.runs)
                rows.append((name, label, mb, ours, ref))
                print(f"{name} {label}: vantage {ours[0]:.3f}s {ours[2]} lines; bgpdump {ref[0]:.3f}s {ref[2]} lines; "
                      f"{ref[0] / ours[0]:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "bgpdump"], capture_output=True, text=True).stdout
    lines = [
        f"{SECTION}: `vantage bgp dump` vs `bgpdump -m`",
        "",
        f"Measured by `scripts/bench` (bench/bgp_dump.py) on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{machine()}; Debian bgpdump {version}; release build. Each program pinned to CPU 0, output "
        f"to a pipe that is counted and discarded, best of {args.runs} runs; the inputs are bgpdump's own test "
        "files (tests/data/bgp/bgpdump), raw (decompressed beforehand) and as gzip. MB/s counts the "
        "uncompressed MRT bytes. Outputs are byte-identical (tests/bgp).",
        "",
        "| file | input | MRT MB | lines | vantage s | vantage entries/s | vantage MB/s | bgpdump s | bgpdump entries/s | bgpdump MB/s | speed-up |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, label, mb, ours, ref in rows:
        assert ours[2] == ref[2] or "nlri_mask" in name, (name, ours[2], ref[2])
        lines.append(f"| {name} | {label} | {mb:.1f} | {ours[2]:,} | {ours[0]:.3f} | {ours[2] / ours[0]:,.0f} | "
                     f"{mb / ours[0]:.0f} | {ref[0]:.3f} | {ref[2] / ref[0]:,.0f} | {mb / ref[0]:.0f} | "
                     f"{ref[0] / ours[0]:.2f}× |")
    speedups = [ref[0] / ours[0] for _, _, _, ours, ref in rows]
    raw_s = [ref[0] / ours[0] for _, label, _, ours, ref in rows if label == "raw"]
    gz_s = [ref[0] / ours[0] for _, label, _, ours, ref in rows if label == "gz"]
    lines += ["", f"Speed-up: raw {min(raw_s):.2f}–{max(raw_s):.2f}×, gzip {min(gz_s):.2f}–{max(gz_s):.2f}×. "
              f"**Goal ≥ 3× bgpdump: {'met' if min(speedups) >= 3 else 'not met'}**."]
    write_section(args.out, lines, SECTION)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
