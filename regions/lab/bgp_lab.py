#!/usr/bin/env python3
"""The BGP part of the lab: ExaBGP announcing routes to FRR's bgpd, which streams BMP to a
vantage-probe `bgp` check. Two network namespaces created here and joined by one veth pair;
only documentation addresses (192.0.2.0/24) and 127.0.0.1 inside the namespaces are used, so
nothing leaves the machine. Needs root (network namespaces), Debian's exabgp and frr.

    speaker (netns <name>-spk)            router (netns <name>-rtr)
    ExaBGP AS65000, 192.0.2.1  --eBGP-->  FRR bgpd AS65003, 192.0.2.4
                                          BMP to 127.0.0.1:11019 -> vantage-probe (bgp check)

The test or demo drives ExaBGP with announce()/withdraw() (ExaBGP's text API through a FIFO).

    bgp_lab.py cleanup [NAME]   removes what a killed run left (namespaces, processes)

Lessons from getting FRR 8.4 to send routes over BMP (see docs/bgp.md#the-lab):
  * pre-policy Route Monitoring reads the Adj-RIB-In, which FRR keeps only with
    `soft-reconfiguration inbound`; without it every route goes out as a withdrawal;
  * bgpd runs without zebra (-Z); the nexthop-tracking messages it logs are harmless;
  * FRR 8.4 puts its own AS in front of the AS path of pre-policy Route Monitoring messages
    (65003 65000 …), as if the route had been sent on.
"""
import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BGPD = "/usr/lib/frr/bgpd"
SPEAKER_IP, ROUTER_IP = "192.0.2.1", "192.0.2.4"
SPEAKER_AS, ROUTER_AS = 65000, 65003
BMP_PORT = 11019

FRR_CONF = f"""hostname vantage-lab-frr
log stdout informational
!
router bgp {ROUTER_AS}
 bgp router-id {ROUTER_IP}
 no bgp ebgp-requires-policy
 neighbor {SPEAKER_IP} remote-as {SPEAKER_AS}
 neighbor {SPEAKER_IP} passive
 address-family ipv4 unicast
  neighbor {SPEAKER_IP} soft-reconfiguration inbound
 exit-address-family
 address-family ipv6 unicast
  neighbor {SPEAKER_IP} activate
  neighbor {SPEAKER_IP} soft-reconfiguration inbound
 exit-address-family
 bmp targets vantage
  bmp connect 127.0.0.1 port {BMP_PORT} min-retry 100 max-retry 1000
  bmp monitor ipv4 unicast pre-policy
  bmp monitor ipv6 unicast pre-policy
 exit
!
"""

RELAY = """# Copies commands from a FIFO to ExaBGP's API (ExaBGP reads this process's stdout).
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)  # read-write: no end of file when a writer closes
with os.fdopen(fd, "r") as fifo:
    for line in fifo:
        sys.stdout.write(line)
        sys.stdout.flush()
"""


def exabgp_conf(relay, fifo):
    return f"""process control {{
    run {sys.executable} {relay} {fifo};
    encoder text;
}}
neighbor {ROUTER_IP} {{
    router-id {SPEAKER_IP};
    local-address {SPEAKER_IP};
    local-as {SPEAKER_AS};
    peer-as {ROUTER_AS};
    family {{ ipv4 unicast; ipv6 unicast; }}
    api {{ processes [ control ]; }}
}}
"""


def run(*cmd, check=True):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit status {p.returncode}: {p.stderr.strip()}")
    return p


def requirements():
    """What is missing to run the lab, as one sentence, or None."""
    if os.geteuid() != 0:
        return "the BGP lab needs root (it creates network namespaces)"
    missing = [p for p in ("exabgp", "ip") if not shutil.which(p)] + ([] if os.access(BGPD, os.X_OK) else [BGPD])
    if missing:
        return "the BGP lab needs " + ", ".join(missing) + " (scripts/install-deps installs them)"
    return None


class BgpLab:
    def __init__(self, name="vbgp", directory=None):
        self.name = name
        self.speaker_ns, self.router_ns = f"{name}-spk", f"{name}-rtr"
        self.dir = directory or tempfile.mkdtemp(prefix="vantage-bgp-lab-")
        os.chmod(self.dir, 0o755)
        self.procs = {}
        self.fifo = os.path.join(self.dir, "exabgp.fifo")

    # -- namespaces --------------------------------------------------------------------------
    def create(self):
        cleanup(self.name)  # a previous killed run
        for ns in (self.speaker_ns, self.router_ns):
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", self.speaker_ns, "link", "add", "vbgp0", "type", "veth", "peer", "name", "vbgp1",
            "netns", self.router_ns)
        run("ip", "-n", self.speaker_ns, "addr", "add", f"{SPEAKER_IP}/24", "dev", "vbgp0")
        run("ip", "-n", self.router_ns, "addr", "add", f"{ROUTER_IP}/24", "dev", "vbgp1")
        run("ip", "-n", self.speaker_ns, "link", "set", "vbgp0", "up")
        run("ip", "-n", self.router_ns, "link", "set", "vbgp1", "up")
        return self

    def in_router(self, *cmd):
        """A command line that runs `cmd` in the router's namespace (where the probe runs)."""
        return ["ip", "netns", "exec", self.router_ns, *cmd]

    def spawn(self, key, cmd, env=None):
        log = open(os.path.join(self.dir, f"{key}.log"), "a")
        self.procs[key] = subprocess.Popen(cmd, stdout=log, stderr=log, env=env, cwd=self.dir,
                                           start_new_session=True)
        log.close()
        return self.procs[key]

    # -- speakers ----------------------------------------------------------------------------
    def start_router(self):
        conf = os.path.join(self.dir, "frr-bgpd.conf")
        with open(conf, "w") as f:
            f.write(FRR_CONF)
        self.spawn("frr", self.in_router(BGPD, "-f", conf, "-M", "bmp", "-S", "-Z", "-l", ROUTER_IP, "-P", "0",
                                         "-u", "root", "-g", "root", "-i", os.path.join(self.dir, "bgpd.pid"),
                                         "--vty_socket", self.dir))

    def start_speaker(self):
        relay = os.path.join(self.dir, "exabgp_relay.py")
        with open(relay, "w") as f:
            f.write(RELAY)
        if not os.path.exists(self.fifo):
            os.mkfifo(self.fifo)
        conf = os.path.join(self.dir, "exabgp.conf")
        with open(conf, "w") as f:
            f.write(exabgp_conf(relay, self.fifo))
        env = dict(os.environ, exabgp_daemon_user="root", exabgp_daemon_daemonize="false",
                   exabgp_api_cli="false", exabgp_log_destination="stdout")
        self.spawn("exabgp", ["ip", "netns", "exec", self.speaker_ns, "exabgp", conf], env=env)

    def established(self):
        """True once FRR's session with ExaBGP is Established (FRR logs the neighbour up)."""
        path = os.path.join(self.dir, "frr.log")
        if not os.path.exists(path):
            return False
        with open(path) as f:
            text = f.read()
        return f"{SPEAKER_IP} in vrf default Up" in text or "rcvd End-of-RIB" in text

    def command(self, line, timeout=15):
        """Sends one ExaBGP API command. ExaBGP starts its API process (the relay reading the FIFO)
        on its own schedule, sometimes after the session is up: until the relay has the FIFO open,
        opening it for writing fails with ENXIO, so wait for it (never block)."""
        deadline = time.time() + timeout
        while True:
            try:
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as e:
                if e.errno != errno.ENXIO or time.time() > deadline:
                    raise RuntimeError(f"ExaBGP's API relay is not reading {self.fifo}: {e}") from e
                time.sleep(0.05)
        try:
            os.write(fd, (line.rstrip("\n") + "\n").encode())
        finally:
            os.close(fd)

    def announce(self, prefix, as_path, extra=""):
        path = " ".join(str(a) for a in as_path)
        self.command(f"announce route {prefix} next-hop {SPEAKER_IP} as-path [ {path} ] {extra}".rstrip())

    def withdraw(self, prefix):
        self.command(f"withdraw route {prefix} next-hop {SPEAKER_IP}")

    # -- teardown ----------------------------------------------------------------------------
    def stop(self):
        terminate(self.procs)
        cleanup(self.name)

    def log(self, key):
        path = os.path.join(self.dir, f"{key}.log")
        if not os.path.exists(path):
            return ""
        with open(path, errors="replace") as f:
            return f.read()


def terminate(procs):
    """SIGTERM to each process group of `procs` (name -> Popen, started in new sessions), in
    reverse start order; SIGKILL to those still running 10 s later."""
    for p in reversed(list(procs.values())):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in procs.values():
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def remove_namespace(ns):
    """Kills every process in network namespace `ns` and deletes it; returns how many processes
    it killed (None when there was no such namespace)."""
    if not os.path.exists(f"/run/netns/{ns}"):
        return None
    pids = run("ip", "netns", "pids", ns, check=False).stdout.split()
    # SIGTERM first: bgpd removes its /var/tmp/frr/bgpd.<pid> directory only on a clean exit.
    for sig, grace in ((signal.SIGTERM, 3), (signal.SIGKILL, 5)):
        for pid in run("ip", "netns", "pids", ns, check=False).stdout.split():
            try:
                os.kill(int(pid), sig)
            except (ProcessLookupError, ValueError):
                pass
        deadline = time.time() + grace
        while run("ip", "netns", "pids", ns, check=False).stdout.split() and time.time() < deadline:
            time.sleep(0.05)
    run("ip", "netns", "del", ns, check=False)
    return len(pids)


def cleanup(name="vbgp"):
    """Kills whatever still runs in the lab's namespaces and deletes them (idempotent)."""
    for ns in (f"{name}-spk", f"{name}-rtr"):
        remove_namespace(ns)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "cleanup":
        cleanup(sys.argv[2] if len(sys.argv) > 2 else "vbgp")
    else:
        print(__doc__)
        sys.exit(2)
