#!/usr/bin/env python3
"""The main job (scripts/demo): starts the lab (regions/lab/lab.py), runs the scenario timeline
(regions/lab/scenarios/demo.yml), prints incidents as `vantage watch` opens and resolves them,
checks each against its scenario's expectation, prints the per-ISP report, writes the HTML
report, replays a real RIS RIB through the BGP monitor, and tears the lab down — also on Ctrl-C
or a failure.

    lab_demo.py PROBE COLLECTOR VANTAGE [--out DIR] [--json FILE] [--timeline NAME|FILE]

The timeline is regions/lab/scenarios/demo.yml (the five original faults) unless --timeline or
$VANTAGE_LAB_TIMELINE names another, e.g. `outages` (global outage, origin down, packet loss, a
403 on one path, a users-only network black-holed, two faults at once).

Exit status: 0 when every scenario opened exactly its expected incidents in time, as its
`expect:` block says (docs/lab.md#expectations), and nothing else opened; 1 otherwise; 2 when
the lab cannot run here (not root, a missing package).
"""
import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB_DIR = os.path.join(ROOT, "regions", "lab")
sys.path.insert(0, LAB_DIR)
import lab as labmod  # noqa: E402
import yaml  # noqa: E402

RIS_RIB = os.path.join(ROOT, "tests", "data", "bgp", "bgpdump", "bview.20020722.2337.gz")
RIS_PREFIXES = os.path.join(LAB_DIR, "bgp", "ris-rrc05-2002.yml")


def now_ns():
    return time.time_ns()


def rfc3339(ns):
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text):
    return int(datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp() * 1e9)


class Demo:
    def __init__(self, args):
        self.args = args
        args.vantage = os.path.abspath(args.vantage)
        self.binaries = {"probe": os.path.abspath(args.probe), "collector": os.path.abspath(args.collector),
                         "vantage": args.vantage}
        self.cfg = labmod.load_config()
        args.timeline = labmod.timeline_path(args.timeline)
        with open(args.timeline) as f:
            self.timeline = yaml.safe_load(f)
        self.scenarios = {}
        for step in self.timeline["timeline"]:
            with open(os.path.join(os.path.dirname(args.timeline), step["scenario"] + ".yml")) as f:
                self.scenarios[step["scenario"]] = yaml.safe_load(f)
            labmod.expectation(self.scenarios[step["scenario"]].get("expect"))  # a malformed one fails now
        self.interval = labmod.seconds(self.cfg["timing"]["probe_interval"])
        self.flags = [str(x) for x in self.cfg["timing"]["analysis"]]
        self.t0 = None
        self.watch = None
        self.watch_lines = []
        self.lab = None
        self.summary = {}

    def clock(self):
        return f"[{(time.time() - self.t0 / 1e9) if self.t0 else 0:5.1f}s]"

    def say(self, text):
        print(f"{self.clock()} {text}" if self.t0 else text, flush=True)

    # -- the run ----------------------------------------------------------------------------
    def run(self):
        isps = self.cfg["isps"]
        print(f"== Vantage lab: an origin, a collector and {len(isps)} ISPs in network namespaces (root), nothing "
              f"leaves the machine")
        for i in isps:
            point = "vantage point, " if i.get("probe", True) else "no vantage point (users only), "
            print(f"   {i['name']:<18} AS{i['asn']} {i['country']} {i['subnet']:<13} {point}resolver "
                  f"(unbound), a user (headless Chromium)")
        print(f"   origin: shop.lab.test {self.cfg['origin']['web']} (nginx, AS{self.cfg['origin']['asn']}), "
              f"collector.lab.test {self.cfg['collector']['address']}; BGP: ExaBGP -> FRR (Northwind's border "
              f"router) -> BMP -> a bgp check")
        started = time.time()
        self.lab = labmod.Lab(self.binaries, self.cfg)
        self.lab.start()
        print(f"== lab up in {time.time() - started:.1f} s; waiting for the first round of checks and page views")
        self.warm_up()
        self.start_watch()
        self.t0 = now_ns()
        self.summary["t0"] = rfc3339(self.t0)
        print(f"== timeline ({self.args.timeline}): probe interval {self.interval:.0f} s; the detectors run every "
              f"half second over 10 s windows (the production ones on a compressed clock)")
        events = []
        for step in self.timeline["timeline"]:
            at, span = labmod.seconds(step["at"]), labmod.seconds(step["for"])
            events.append((at, 0, "inject", step["scenario"]))
            events.append((at + span, 1, "remove", step["scenario"]))
        end = labmod.seconds(self.timeline["end"])
        self.summary["scenarios"] = {}
        for at, _, action, name in sorted(events):
            self.sleep_until(at)
            sc = self.scenarios[name]
            rec = self.summary["scenarios"].setdefault(name, {"expect": sc.get("expect")})
            rec[action] = now_ns()
            if not sc["faults"]:
                if action == "inject":
                    self.say(f"SCENARIO {name}: {sc['summary']}")
                continue
            if action == "inject":
                self.say(f"INJECT   {name}: {sc['summary']}")
                for fault in sc["faults"]:
                    self.lab.inject(fault)
                    self.say(f"         + {self.lab.describe(fault)}")
            else:
                for fault in sc["faults"]:
                    self.lab.remove(fault)
                self.say(f"REMOVE   {name}: faults taken out")
        self.sleep_until(end)
        self.stop_watch()
        self.results()

    def warm_up(self):
        """Until every vantage point has a result stored and every user a report."""
        def ready():
            try:
                db = sqlite3.connect(f"file:{self.lab.db}?mode=ro", uri=True, timeout=1)
                probes = {r[0] for r in db.execute("SELECT DISTINCT probe_id FROM probe_results")}
                asns = {r[0] for r in db.execute("SELECT DISTINCT asn FROM browser_reports")}
                db.close()
            except sqlite3.Error:
                return False
            want = {self.lab.probe_id(i) for i in self.lab.probe_isps}
            return want <= probes and {i["asn"] for i in self.cfg["isps"]} <= asns

        labmod.wait(ready, 60, "the first results of every vantage point and reports of every user", interval=0.5)

    def sleep_until(self, at):
        while time.time() < self.t0 / 1e9 + at:
            time.sleep(0.05)

    # -- vantage watch --------------------------------------------------------------------------
    def start_watch(self):
        cmd = labmod.ns_exec(labmod.COLL, self.args.vantage, "watch", "--db", self.lab.db, "--no-save",
                             *[str(x) for x in self.cfg["timing"]["watch"]], *self.flags)
        self.watch = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                      start_new_session=True)
        self.lab.procs["watch"] = self.watch

        def pump():
            for line in self.watch.stdout:
                line = line.rstrip("\n")
                self.watch_lines.append((now_ns(), line))
                self.say(line.split(" ", 1)[1] if " " in line else line)

        self.pump = threading.Thread(target=pump, daemon=True)
        self.pump.start()

    def stop_watch(self):
        time.sleep(2.5)  # the last settle period and cycle
        self.watch.send_signal(signal.SIGTERM)
        self.watch.wait(timeout=10)
        self.pump.join(timeout=5)

    # -- results ----------------------------------------------------------------------------
    def vantage(self, *args):
        p = subprocess.run([self.args.vantage, *args], capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"vantage {' '.join(args)}: {p.stderr.strip()}")
        return p.stdout

    def results(self):
        db = self.lab.db
        from_ = rfc3339(self.t0 - int(5e9))
        incidents = json.loads(self.vantage("incidents", "--db", db, "--from", from_, "--json", "--no-save",
                                            *self.flags))
        self.summary["incidents"] = incidents
        self.summary["watch"] = [{"time": rfc3339(t), "time_ns": t, "line": line} for t, line in self.watch_lines]
        verdicts = self.check(incidents)
        self.summary["verdicts"] = verdicts
        print("\n== what was injected, what Vantage found")
        print(f"   {'scenario':<20} {'expected':<22} {'found':<40} {'detected':>9} {'resolved':>9}")
        for v in verdicts:
            opened = f"{v['printed_s']:.1f} s" if v.get("printed_s") is not None else "-"
            resolved = f"{v['resolution_s']:.0f} s" if v.get("resolution_s") is not None else "-"
            print(f"   {v['scenario']:<20} {v['expected']:<22} {v['found'][:40]:<40} {opened:>9} {resolved:>9}"
                  f"  {'ok' if v['ok'] else 'FAIL: ' + v['problem']}")
        print(f"   (detected: after the fault went in, when vantage watch printed it — the goal is two probe intervals,"
              f" {2 * self.interval:.0f} s;\n    resolved: after the fault came out, on the data's clock)")
        extra = self.summary["unexpected"] = [i["id"] for i in incidents if i["id"] not in self.matched]
        for i in extra:
            print(f"   unexpected incident: {i}")
        # What vantage watch printed must be the same story: one OPENED per fault, nothing else.
        opened = [line for _, line in self.watch_lines if " OPENED " in line]
        faults = sum(v["expected_incidents"] for v in verdicts)
        self.summary["printed_opened"] = opened
        if len(opened) != faults:
            print(f"   vantage watch printed {len(opened)} openings for {faults} expected incidents:")
            for line in opened:
                print(f"     {line}")
        # `vantage watch` and `vantage incidents` over the same store: the same incidents, opened and
        # resolved at the same times (both replay from the store's first event, on the same grid).
        self.summary["watch_vs_incidents"] = self.compare_watch(
            json.loads(self.vantage("incidents", "--db", db, "--json", "--no-save", *self.flags)))
        if self.summary["watch_vs_incidents"]:
            print("   vantage watch and vantage incidents disagree:")
            for d in self.summary["watch_vs_incidents"]:
                print(f"     {d}")
        # Per-ISP report: the whole run (terminal + HTML), and each fault's window (JSON, for the test).
        os.makedirs(self.args.out, exist_ok=True)
        to = rfc3339(now_ns())
        print("\n== per-ISP report over the run (vantage report isp)")
        print(self.vantage("report", "isp", "--db", db, "--from", from_, "--to", to, *self.flags))
        html = os.path.join(self.args.out, "isp-report.html")
        self.vantage("report", "isp", "--db", db, "--from", from_, "--to", to, "--format", "html", "-o", html,
                     *self.flags)
        self.summary["html_report"] = html
        self.summary["windows"] = {}
        for name, rec in self.summary["scenarios"].items():
            if "inject" in rec and "remove" in rec:
                self.summary["windows"][name] = json.loads(self.vantage(
                    "report", "isp", "--db", db, "--from", rfc3339(rec["inject"]), "--to", rfc3339(rec["remove"]),
                    "--format", "json", *self.flags))
        print(f"   HTML report (availability over time per ISP, failure types, latency): {html}")
        # The fleet as the collector sees it: every vantage point's heartbeats (none went silent:
        # the faults cut the origin, not the collector), its version and its configuration.
        print("\n== the fleet (vantage fleet: heartbeats the collector received)")
        print("\n".join("   " + line for line in self.vantage("fleet", "--db", db).splitlines()))
        self.summary["fleet"] = json.loads(self.vantage("fleet", "--db", db, "--format", "json"))
        # A real RIS RIB through the BGP monitor.
        print(f"\n== a real RIS RIB (rrc05, 2002-07-22) through the BGP monitor, expectations {RIS_PREFIXES}")
        scan = self.vantage("bgp", "scan", RIS_RIB, "--prefixes", RIS_PREFIXES)
        print("\n".join("   " + line for line in scan.splitlines()[:12]))
        self.summary["mrt_scan"] = scan.splitlines()
        self.summary["ok"] = all(v["ok"] for v in verdicts) and not extra and len(opened) == faults

    def compare_watch(self, replay):
        """What `vantage watch` printed (OPENED and RESOLVED lines: time, kind, title) against a
        `vantage incidents` replay of the whole store: the differences, as text."""
        printed = {}
        for _, line in self.watch_lines:
            parts = line.split(None, 4)  # time, change, severity, kind, title
            if len(parts) == 5 and parts[1] in ("OPENED", "RESOLVED"):
                printed.setdefault((parts[1], parts[3], parts[4]), parts[0])
        wanted = set()
        problems = []
        for i in replay:
            for change, field in (("OPENED", "opened"), ("RESOLVED", "resolved")):
                if field not in i:
                    continue
                wanted.add((change, i["kind"], i["title"]))
                at = i[field][:19] + "Z"
                got = printed.get((change, i["kind"], i["title"]))
                # Watch reports what it saw `--settle` (1.5 s) before each cycle: a result that
                # reached the collector later (a 1 s connect timeout, then the upload) can move a
                # replay's time one or two steps earlier. Up to 2 s (the settle, to the printed
                # second) is that documented lag; anything else is a different story.
                late = got is not None and 0 <= parse_time(got) - parse_time(at) <= 2_000_000_000
                if got != at and not late:
                    problems.append(f"{change} {i['kind']} {i['title'][:60]}: incidents {at}, watch {got or 'never'}")
        for key, at in printed.items():
            if key not in wanted and not (key[0] == "RESOLVED" and ("OPENED",) + key[1:] in wanted):
                problems.append(f"{key[0]} {key[1]} {key[2][:60]}: watch {at}, incidents never")
        return problems

    def check(self, incidents):
        """Each scenario against its expectation (lab.expectation): between its injection and its
        removal exactly its expected incidents open (`only`: nothing else), each of the expected
        kind and scope, printed by vantage watch within `within` (two probe intervals by default)
        and resolved after the removal; `steady`: none resolves or opens again while the fault is
        in; `quiet_after`: nothing opens for that long after the removal. The baseline: none."""
        self.matched = set()
        verdicts = []
        order = sorted(self.summary["scenarios"].items(), key=lambda kv: kv[1]["inject"])
        for n, (name, rec) in enumerate(order):
            exp = labmod.expectation(rec["expect"])
            start, stop = rec["inject"], rec["remove"]
            within = exp["within"] if exp["within"] is not None else 2 * self.interval
            during = [i for i in incidents if start <= parse_time(i["opened"]) < stop]
            kinds = [e["kind"] for e in exp["incidents"]]
            v = {"scenario": name, "expected": " + ".join(kinds) or "none", "found": "", "ok": False, "problem": "",
                 "incidents": [], "expected_incidents": len(kinds)}
            verdicts.append(v)
            problems = []
            self.matched.update(i["id"] for i in during)
            if exp["only"] and len(during) != len(kinds):
                problems.append(f"{len(during)} incidents opened while the fault was in, expected {len(kinds)}")
            # Each expected incident takes the opened one of its kind that fits it best.
            left = list(during)
            printed_used = set()
            for want in exp["incidents"]:
                candidates = [i for i in left if i["kind"] == want["kind"]]
                if not candidates:
                    problems.append(f"no {want['kind']} incident")
                    continue
                scored = sorted(((self.scope_problems(i, want), k) for k, i in enumerate(candidates)),
                                key=lambda x: len(x[0]))
                mismatch, k = scored[0]
                inc = candidates[k]
                left.remove(inc)
                problems += mismatch
                v["incidents"].append(inc["id"])
                # When the demo printed it (vantage watch: data settled, then a cycle).
                printed = [(t, line) for t, line in self.watch_lines if " OPENED " in line
                           and f" {inc['kind']} " in line and t >= start and (t, line) not in printed_used]
                printed_s = (printed[0][0] - start) / 1e9 if printed else None
                if printed:
                    printed_used.add(printed[0])
                v["printed_s"] = max(v.get("printed_s") or 0, printed_s) if printed_s is not None else None
                v["detection_s"] = (parse_time(inc["opened"]) - start) / 1e9
                if printed_s is None:
                    problems.append(f"vantage watch never printed the {inc['kind']} incident")
                elif printed_s > within:
                    problems.append(f"{inc['kind']} printed {printed_s:.1f} s after the fault (more than {within:g} s)")
                resolved = parse_time(inc["resolved"]) if inc.get("resolved") else None
                if resolved is not None:
                    v["resolution_s"] = max(v.get("resolution_s") or -1e9, (resolved - stop) / 1e9)
                if exp["resolves"] and resolved is None:
                    problems.append(f"{inc['kind']} not resolved after the fault was removed")
                if exp["steady"]:
                    if resolved is not None and resolved < stop:
                        problems.append(f"{inc['kind']} resolved while the fault was still in")
                    flaps = [line for t, line in self.watch_lines if " RESOLVED " in line
                             and f" {inc['kind']} " in line and start <= t < stop]
                    if flaps:
                        problems.append(f"{inc['kind']} resolved while the fault was in (vantage watch: {flaps[0]})")
                    reopened = [line for t, line in self.watch_lines if " OPENED " in line
                                and f" {inc['kind']} " in line and start <= t < stop]
                    if len(reopened) > kinds.count(inc["kind"]):
                        problems.append(f"{inc['kind']} opened {len(reopened)} times while the fault was in")
            if exp["quiet_after"] > 0:
                until = stop + int(exp["quiet_after"] * 1e9)
                if n + 1 < len(order):
                    until = min(until, order[n + 1][1]["inject"])
                after = [i for i in incidents if stop <= parse_time(i["opened"]) < until]
                self.matched.update(i["id"] for i in after)
                if after:
                    problems.append(f"{len(after)} opened within {exp['quiet_after']:g} s after the removal: "
                                    + ", ".join(i["kind"] for i in after))
            # The incidents that fit first, then what else opened.
            fitted = [i for i in during if i["id"] in v["incidents"]]
            others = [i for i in during if i["id"] not in v["incidents"]]
            v["found"] = " | ".join([i["title"] for i in fitted] + [f"+ {i['kind']}" for i in others]) or "none"
            v["incident"] = v["incidents"][0] if v["incidents"] else None
            v["ok"] = not problems
            v["problem"] = "; ".join(problems)
        return verdicts

    @staticmethod
    def scope_problems(inc, want):
        """What in the incident differs from one expected incident: `id` (its key, a prefix of the
        id), `severity`, `title` (substrings), `asns` (exactly), `asns_at_least`, `evidence`
        (evidence fields that must not be empty), any other key (each listed value present in
        the scope's or the evidence's field of that name)."""
        scope, ev = inc.get("scope", {}), inc.get("evidence", {})
        problems = []
        for key, value in want.items():
            if key == "kind":
                continue
            if key == "id":
                if not inc["id"].startswith(value):
                    problems.append(f"id {inc['id']}")
            elif key == "severity":
                if inc.get("severity") != value:
                    problems.append(f"severity {inc.get('severity')}, expected {value}")
            elif key == "title":
                for text in value if isinstance(value, list) else [value]:
                    if text not in inc.get("title", ""):
                        problems.append(f"title {inc.get('title')!r} lacks {text!r}")
            elif key == "evidence":
                for field in value:
                    if not ev.get(field):
                        problems.append(f"no {field} in the evidence")
            elif key in ("asns", "asns_at_least"):
                have = sorted(scope.get("asns", []))
                if key == "asns" and have != sorted(value) or key == "asns_at_least" and not set(value) <= set(have):
                    problems.append(f"asns {have}")
            else:
                have = scope.get(key, ev.get(key))
                have = list(have) if isinstance(have, (list, dict)) else []
                for w in value:
                    if w not in have:
                        problems.append(f"{key} lacks {w}")
        return problems


def keep_store(db, out):
    """Copies the collector's store into `out` (SQLite's online backup: the collector may still
    be writing), so that the run can be replayed afterwards (`vantage incidents --db
    OUT/collector.db`). Best effort: a demo that failed before the store existed has none."""
    if not db or not out or not os.path.exists(db):
        return
    try:
        os.makedirs(out, exist_ok=True)
        src = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        dst = sqlite3.connect(os.path.join(out, "collector.db"))
        with dst:
            src.backup(dst)
        src.close()
        dst.close()
    except (sqlite3.Error, OSError) as e:
        print(f"== could not keep the collector's store: {e}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("probe")
    ap.add_argument("collector")
    ap.add_argument("vantage")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "lab"), help="where the reports go")
    ap.add_argument("--json", help="write the run's summary (incidents, verdicts, reports) here")
    ap.add_argument("--timeline", default=os.environ.get("VANTAGE_LAB_TIMELINE", "demo"),
                    help="a timeline in regions/lab/scenarios/ by name (demo, outages) or a path; default: "
                         "$VANTAGE_LAB_TIMELINE, else demo")
    args = ap.parse_args()
    if not os.path.isfile(labmod.timeline_path(args.timeline)):
        ap.error(f"no timeline {labmod.timeline_path(args.timeline)} (in regions/lab/scenarios/: "
                 f"{', '.join(labmod.timelines())})")
    missing = labmod.requirements()
    if missing:
        print(f"scripts/demo: {missing}.", file=sys.stderr)
        print("The demo emulates ISPs, an origin and a collector with Linux network namespaces; "
              "try: sudo scripts/demo", file=sys.stderr)
        return 2

    def interrupted(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    demo = Demo(args)
    started = time.time()
    status = 1
    try:
        demo.run()
        status = 0 if demo.summary.get("ok") else 1
    except KeyboardInterrupt as e:
        print(f"\n== interrupted ({e or 'SIGINT'}): tearing the lab down", file=sys.stderr)
        status = 130
    except Exception as e:  # noqa: BLE001 — report, tear down, fail
        status = 3
        print(f"\n== the demo failed: {e}", file=sys.stderr)
        if demo.lab and demo.lab.dir:
            for key in list(demo.lab.procs):
                tail = demo.lab.read_log(key)[-1500:]
                if tail.strip():
                    print(f"--- {key}.log (end)\n{tail}", file=sys.stderr)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second Ctrl-C: teardown goes on
            signal.signal(sig, signal.SIG_IGN)
        if demo.lab:
            keep_store(demo.lab.db, args.out)
            demo.lab.stop()
        left = labmod.leftovers()
        demo.summary["leftovers"] = left
        demo.summary["seconds"] = time.time() - started
        print(f"== lab torn down: {'nothing left (namespaces, links, processes, files)' if not left else left}; "
              f"{time.time() - started:.0f} s in all")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(demo.summary, f, indent=1, default=str)
    if status == 0:
        print("== every fault was found, by the right detector, with the right scope; the baseline stayed quiet")
    elif status == 1:
        print("== some scenario did not give its expected incident (see above)")
    return 1 if status == 3 else status


if __name__ == "__main__":
    sys.exit(main())
