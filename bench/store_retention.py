#!/usr/bin/env python3
"""The store's retention: simulated days of collector records through the real Writer into a
real SQLite file (bench/retention_bench.cpp, a fake clock), with `store.retention: 1d` on every
table and with no retention, side by side. Reports the file size at the end of each simulated
day, the ingest rate (records/s through the writer, fsync per transaction) once pruning deletes
as much as arrives, the longest prune transaction, and writes the "## Store retention" section
of docs/benchmarks.md (other sections are kept).

    bench/store_retention.py --bench build/release/bench/vantage_retention_bench \
        --out docs/benchmarks.md [--days 5] [--records-per-day 250000] [--rounds 2]
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from collector_ingest import write_section  # noqa: E402
from probe_cpu import machine  # noqa: E402

SECTION = "## Store retention"


def run(bench, db, days, per_day, retention):
    out = subprocess.run([bench, "--db", db, "--days", str(days), "--records-per-day", str(per_day),
                          "--retention", retention], capture_output=True, text=True, check=True).stdout
    lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return [l for l in lines if "day" in l], next(l for l in lines if l.get("summary"))


def mib(n):
    return f"{n / 2**20:,.1f} MiB"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--days", type=int, default=5)
    ap.add_argument("--records-per-day", type=int, default=250_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--label", default="",
                    help="how the bench was built, e.g. 'dev preset (-O1)'; default: from the path")
    args = ap.parse_args()
    label = args.label or ("release preset (-O2)" if "/release/" in args.bench else
                           "dev preset (-O1 -g), not the release build")
    results = {"off": [], "1d": []}
    with tempfile.TemporaryDirectory(prefix="vantage-retention-bench-") as tmp:
        db = os.path.join(tmp, "store.db")
        for _ in range(args.rounds):  # alternate, so that both see the same machine
            for mode in ("off", "1d"):
                results[mode].append(run(args.bench, db, args.days, args.records_per_day, mode))

    def rate(mode):  # median over rounds of the records/s of days 2.. (pruning in steady state)
        per_round = [statistics.mean(d["records_per_second"] for d in days[1:]) for days, _ in results[mode]]
        return statistics.median(per_round), per_round

    off_rate, off_rounds = rate("off")
    on_rate, on_rounds = rate("1d")
    on_days, on_summary = results["1d"][-1]
    off_days, _ = results["off"][-1]
    day1 = on_days[0]
    bytes_per_record = day1["file_bytes"] / day1["committed"]
    longest = max(d[-1]["longest_prune_ms"] for d, _ in results["1d"])
    longest_turn = max(d[-1]["longest_turn_ms"] for d, _ in results["1d"])
    prune_share = statistics.median(s["seconds"] and d[-1]["prune_seconds"] / s["seconds"]
                                    for d, s in results["1d"])
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        SECTION,
        "",
        f"Measured by `bench/store_retention.py` on {now}; {machine()}; the benchmark program "
        f"built with the **{label}**.",
        f"`vantage_retention_bench` (bench/retention_bench.cpp) ingests {args.days} simulated days of "
        f"{args.records_per_day:,} records a day (per upload: 12 NEL reports of about 700 bytes, "
        "2 probe results, a route event, a heartbeat, a BGP alert every tenth upload) as fast as "
        "the real store writer takes them (the collector's defaults: a queue of 100,000 records, "
        "transactions of up to 5,000, WAL with an fsync per commit) into a real SQLite file, "
        "on a fake clock. With `store.retention: 1d` on every table (prune_interval 60s, "
        "prune_batch_rows 2000) the writer prunes between its commits; without, the file grows. "
        f"{args.rounds} rounds each, alternating; the file sizes are from the last round.",
        "",
        "| end of simulated day | file, no retention | file, retention 1d | rows kept (1d) | rows pruned so far |",
        "|---:|---:|---:|---:|---:|",
    ]
    for off, on in zip(off_days, on_days):
        lines.append(f"| {on['day']} | {mib(off['file_bytes'])} | {mib(on['file_bytes'])} | "
                     f"{on['rows']:,} | {on['pruned']:,} |")
    lines += [
        "",
        "| retention | ingest, records/s (days 2-" + str(args.days) + ", median of rounds) | rounds | "
        "longest prune transaction | longest prune turn between two commits | "
        "writer time in prune transactions |",
        "|---|---:|---|---:|---:|---:|",
        f"| none | {off_rate:,.0f} | {', '.join(f'{r:,.0f}' for r in off_rounds)} | — | — | — |",
        f"| 1d, every table | {on_rate:,.0f} ({on_rate / off_rate:.2f}×) | "
        f"{', '.join(f'{r:,.0f}' for r in on_rounds)} | {longest:.1f} ms | {longest_turn:.1f} ms | "
        f"{prune_share:.0%} |",
        "",
        f"Bytes per record as stored (file at the end of day 1 / records, WAL and indexes "
        f"included): **{bytes_per_record:,.0f}**. With retention the file stays at one day of "
        f"records plus the WAL and at most one prune interval: "
        f"{mib(max(d['file_bytes'] for d in on_days[1:]))} at most from day 2 on, against "
        f"{mib(off_days[-1]['file_bytes'])} after {args.days} days without. The size formula "
        "(docs/collector.md#retention): bytes per record × records per second × retention in "
        f"seconds; at 1,000 browser reports/s and 7 days that is about "
        f"{bytes_per_record * 1000 * 7 * 86400 / 2**30:,.0f} GiB.",
        "",
        f"What pruning costs: every row stored is deleted once, and a delete costs SQLite about as "
        f"much as an insert (the table's and its time index's B-trees, pages freed and reused), so "
        f"at full rate the writer commits {on_rate / off_rate:.2f}× the records it commits without "
        f"retention: {(1 / on_rate - 1 / off_rate) * 1e6:.1f} µs of writer time per record pruned "
        f"against {1e6 / off_rate:.1f} µs to store one. At 1,000 records/s that is "
        f"{(1 / on_rate - 1 / off_rate) * 1000:.2%} of a core. Between two of its commits the writer "
        "deletes at least as many rows as the last commit wrote (more only while no upload waits), "
        "in 2,000-row transactions: the longest such turn, "
        f"{longest_turn:.1f} ms here with commits of up to 5,000 records, is the most a probe "
        "upload's answer (given after its own commit) was delayed by retention; browser uploads "
        "are answered once queued and do not wait at all.",
        "",
    ]
    write_section(args.out, lines, SECTION)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
