#!/usr/bin/env python3
"""The lab: several ISPs, an origin, a collector and BGP emulated on one machine with Linux network
namespaces and veth links (regions/lab/lab.yml describes them; docs/lab.md explains them).

    lab.py cleanup [--force]
                        removes whatever a killed run left: processes in the lab's namespaces,
                        the namespaces, /etc/netns/vlab-*, /tmp/vantage-lab-*; refuses while a
                        lab runs (the lock /run/vantage-lab.lock is held) unless --force

Everything the lab starts runs inside one of its namespaces (so `cleanup` finds it), under a
temporary directory /tmp/vantage-lab-XXXX removed by stop() (also its processes' TMPDIR). One lab
at a time per machine: the names are fixed, so a second one fails at once (the lock). Needs root, iproute2, nginx with njs,
unbound, Chromium, ExaBGP, FRR and MaxMind's DB writer (scripts/install-deps installs them).

Faults (Lab.inject / Lab.remove) are what scenarios (regions/lab/scenarios/*.yml) are made of.
`isp` is one ISP id, a list of them, or `all` (every ISP of lab.yml, the users-only one too); any
set of faults may be in at once, as long as no two of them act on the same ISP in the same way:
  blackhole    {isp}                 the core router drops the ISPs' packets to the origin's prefix
                                     (connects time out); one routing rule and table per ISP
  packet_loss  {isp, percent}        the core router drops `percent` % of the ISPs' packets to and
                                     from the origin's prefix (nftables numgen; the kernel has no
                                     netem): each direction drops 1 - sqrt(1 - percent/100), so a
                                     round trip (ping, a SYN and its SYN-ACK) is lost `percent` %
  origin_down  {}                    the origin's web server (nginx) stops: connections are refused;
                                     removal starts it again (its DNS stays up)
  http_status  {isp, path, status}   the origin answers `status` (e.g. 403, 503) to the ISPs'
                                     prefixes on requests for `path` (/api/...): exactly, or every
                                     path under it when it ends with / (as an nginx location)
  waf_block    {isp}                 http_status with path /api/ and status 403 (a WAF rule)
  dns_hijack   {isp, name, address}  the ISP's resolver answers `name` with `address`
  latency      {endpoint, ms}        the origin delays one API endpoint (e.g. checkout)
  bgp_announce {prefix, as_path}     the BGP upstream announces a route (removal: the baseline
                                     route again, or a withdrawal)
An ISP with `probe: false` in lab.yml has a resolver and a user but no vantage point (a
users-only network: only its browsers' reports show what happens there).
"""
import fcntl
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import bgp_lab  # noqa: E402

PREFIX = "vlab"                       # namespace and interface names start with it
CORE, ORIGIN, COLL = f"{PREFIX}-core", f"{PREFIX}-origin", f"{PREFIX}-coll"
BGP_NAME = f"{PREFIX}-bgp"            # bgp_lab namespaces: vlab-bgp-spk, vlab-bgp-rtr
TMP_GLOB = "/tmp/vantage-lab-*"
LOCK = "/run/vantage-lab.lock"
BLACKHOLE_TABLE = 100                 # + the ISP's position in lab.yml (1, 2, ...): its table and rule
LOSS_TABLE = "vlab_loss"              # nftables: one table per ISP with packet loss, vlab_loss_<isp>
NGINX_NJS = "/usr/lib/nginx/modules/ngx_http_js_module.so"
CHROMIUM = "/usr/bin/chromium"
SHOP, COLLECTOR_HOST, NS_HOST = "shop.lab.test", "collector.lab.test", "ns.lab.test"


def load_config(path=os.path.join(HERE, "lab.yml")):
    with open(path) as f:
        return yaml.safe_load(f)


SCENARIOS = os.path.join(HERE, "scenarios")
# What an `expect:` block may say besides its incidents (docs/lab.md#expectations).
EXPECT_OPTIONS = {"incidents", "within", "only", "quiet_after", "steady", "resolves"}


def timeline_path(name):
    """A timeline file: a path, or the name of one in regions/lab/scenarios/ (`outages`,
    `outages.yml`)."""
    if os.path.sep in name or os.path.exists(name):
        return name
    return os.path.join(SCENARIOS, name if name.endswith(".yml") else name + ".yml")


def timelines():
    """The names of the timelines in regions/lab/scenarios/ (files with a `timeline:` list)."""
    names = []
    for f in sorted(glob.glob(os.path.join(SCENARIOS, "*.yml"))):
        with open(f) as fh:
            doc = yaml.safe_load(fh)
        if isinstance(doc, dict) and "timeline" in doc:
            names.append(os.path.basename(f)[:-4])
    return names


def expectation(expect):
    """A scenario's `expect:` in one shape: {"incidents": [{kind, ...}, ...], "within": seconds
    or None, "only": bool, "quiet_after": seconds, "steady": bool, "resolves": bool}. Accepts
    `none` (no incident), one incident's keys (the original format: `kind`, `asns`, ...) or
    `incidents:` with a list of them and the options. ValueError on a malformed block."""
    out = {"incidents": [], "within": None, "only": True, "quiet_after": 0.0, "steady": False, "resolves": True}
    if expect in (None, "none"):
        return out
    if not isinstance(expect, dict):
        raise ValueError(f"expect: `none` or a mapping (got {expect!r})")
    if "incidents" not in expect:
        expect = {"incidents": [expect]}
    unknown = set(expect) - EXPECT_OPTIONS
    if unknown:
        raise ValueError(f"expect: unknown keys {sorted(unknown)} beside incidents (allowed: "
                         f"{', '.join(sorted(EXPECT_OPTIONS))})")
    out["incidents"] = list(expect["incidents"] or [])
    for inc in out["incidents"]:
        if not isinstance(inc, dict) or "kind" not in inc:
            raise ValueError(f"expect: each incident needs a kind (got {inc!r})")
    for key in ("within", "quiet_after"):
        if key in expect:
            out[key] = seconds(expect[key])
    for key in ("only", "steady", "resolves"):
        if key in expect:
            if not isinstance(expect[key], bool):
                raise ValueError(f"expect: {key} must be true or false (got {expect[key]!r})")
            out[key] = expect[key]
    return out


def run(*cmd, check=True, input=None):
    p = subprocess.run(cmd, capture_output=True, text=True, input=input)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit status {p.returncode}: {(p.stderr or p.stdout).strip()}")
    return p


def requirements():
    """What is missing to run the lab, as one sentence, or None."""
    if os.geteuid() != 0:
        return ("the lab needs root: it creates network namespaces and veth links "
                "(run it as root, or with sudo)")
    missing = [c for c in ("ip", "nft", "nginx", "unbound", "unbound-control", "perl", "exabgp", "openssl", "certutil")
               if not shutil.which(c)]
    missing += [p for p in (CHROMIUM, NGINX_NJS, bgp_lab.BGPD) if not os.path.exists(p)]
    if run("perl", "-MMaxMind::DB::Writer::Tree", "-e", "1", check=False).returncode != 0:
        missing.append("MaxMind::DB::Writer (libmaxmind-db-writer-perl)")
    if missing:
        return "the lab needs " + ", ".join(missing) + " (scripts/install-deps installs them)"
    return None


def ns_exec(ns, *cmd):
    return ["ip", "netns", "exec", ns, *cmd]


def seconds(text):
    text = str(text)
    for suffix, scale in (("ms", 0.001), ("s", 1), ("m", 60)):
        if text.endswith(suffix) and text[:-len(suffix)].replace(".", "", 1).isdigit():
            return float(text[:-len(suffix)]) * scale
    raise ValueError(f"not a duration like 5s or 2m: {text!r}")


def lock():
    """Takes the machine's lab lock (non-blocking); returns its file descriptor. Exits with the
    holder's pid when another lab runs."""
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by the lab's processes
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise SystemExit(f"lab: another lab is running on this machine (pid {holder}); stop it first "
                         f"(after a killed run: regions/lab/lab.py cleanup)")
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def unlock(fd):
    try:
        os.unlink(LOCK)
    except FileNotFoundError:
        pass
    os.close(fd)


class Lab:
    def __init__(self, binaries, config=None):
        self.cfg = config or load_config()
        self.bin = binaries  # {"probe": path, "collector": path, "vantage": path}
        self.dir = None
        self.procs = {}
        self.isps = {i["id"]: i for i in self.cfg["isps"]}
        # ISPs with a vantage point; the others (`probe: false`) are users-only networks.
        self.probe_isps = [k for k, i in self.isps.items() if i.get("probe", True)]
        self.blackholed = set()  # ISP ids whose packets to the origin the core drops
        self.lossy = set()       # ISP ids with an nftables packet-loss table on the core
        self.http_rules = {}     # (isp id, path) -> status, the origin's http_status rules
        self.origin_cmd = None   # how nginx is started (origin_down stops it, removal restarts it)
        self.faults_state = {}   # the origin's faults.json
        self.bgp = None
        self.tokens = {}
        self.lock = None

    # -- addresses ---------------------------------------------------------------------------
    def isp_ns(self, isp_id):
        return f"{PREFIX}-{isp_id}"

    def isp_addr(self, isp_id, host):
        net = self.isps[isp_id]["subnet"].split("/")[0].rsplit(".", 1)[0]
        return f"{net}.{host}"

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self):
        missing = requirements()
        if missing:
            raise SystemExit(f"lab: {missing}")
        self.lock = lock()
        cleanup(quiet=True)  # what a killed run left
        self.dir = tempfile.mkdtemp(prefix="vantage-lab-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.network()
        self.certificates()
        self.mmdb()
        self.start_origin()
        self.start_collector()
        for isp_id in self.isps:
            self.start_resolver(isp_id)
        self.wait_ready()
        self.start_bgp()
        for isp_id in self.probe_isps:
            self.start_probe(isp_id)
        for isp_id in self.isps:
            self.start_user(isp_id)
        return self

    def stop(self):
        """Stops everything and removes the namespaces and the temporary directory (idempotent)."""
        bgp_lab.terminate(self.procs)
        self.procs.clear()
        if self.bgp:
            bgp_lab.terminate(self.bgp.procs)  # SIGTERM: bgpd cleans up after itself
            self.bgp = None
        if self.lock is not None:
            cleanup(quiet=True)
            unlock(self.lock)
            self.lock = None
        self.dir = None

    def spawn(self, key, ns, cmd, env=None):
        log = open(self.path(f"{key}.log"), "a")
        env = dict(env or os.environ, TMPDIR=self.dir)  # e.g. Chromium's .org.chromium.* files
        self.procs[key] = subprocess.Popen(ns_exec(ns, *cmd), stdout=log, stderr=log, env=env, cwd=self.dir,
                                           stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        return self.procs[key]

    def read_log(self, key):
        return self.file(self.path(f"{key}.log"))

    # -- the network -------------------------------------------------------------------------
    def network(self):
        o, c = self.cfg["origin"], self.cfg["collector"]
        namespaces = [CORE, ORIGIN, COLL] + [self.isp_ns(i) for i in self.isps]
        for ns in namespaces:
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run(*ns_exec(CORE, "sysctl", "-qw", "net.ipv4.ip_forward=1"))

        def link(peer_ns, core_if, core_addr, peer_addr, prefix_len):
            run("ip", "-n", CORE, "link", "add", core_if, "type", "veth", "peer", "name", "eth0", "netns", peer_ns)
            run("ip", "-n", CORE, "addr", "add", f"{core_addr}/{prefix_len}", "dev", core_if)
            run("ip", "-n", peer_ns, "addr", "add", f"{peer_addr}/{prefix_len}", "dev", "eth0")
            run("ip", "-n", CORE, "link", "set", core_if, "up")
            run("ip", "-n", peer_ns, "link", "set", "eth0", "up")
            run("ip", "-n", peer_ns, "route", "add", "default", "via", core_addr)

        # Origin and collector: a /30 transfer network each, their service addresses behind it.
        link(ORIGIN, f"{PREFIX}-o", "10.254.0.1", "10.254.0.2", 30)
        for a in (o["web"], o["dns"]):
            run("ip", "-n", ORIGIN, "addr", "add", f"{a}/32", "dev", "eth0")
        run("ip", "-n", CORE, "route", "add", o["prefix"], "via", "10.254.0.2")
        run("ip", "-n", CORE, "route", "replace", f"{o['dns']}/32", "via", "10.254.0.2")  # the DNS host
        link(COLL, f"{PREFIX}-c", "10.254.0.5", "10.254.0.6", 30)
        run("ip", "-n", COLL, "addr", "add", f"{c['address']}/32", "dev", "eth0")
        run("ip", "-n", CORE, "route", "add", f"{c['address']}/32", "via", "10.254.0.6")
        # ISPs: the core is each one's gateway (.1); the ISP's hosts share .2.
        for isp_id, isp in self.isps.items():
            plen = int(isp["subnet"].split("/")[1])
            link(self.isp_ns(isp_id), f"{PREFIX}-{isp_id}", self.isp_addr(isp_id, 1), self.isp_addr(isp_id, 2), plen)
            # The compressed clock for the users' TCP: a connect gives up after ~3 s (one SYN
            # retransmission, not six: ~127 s), so a browser reports a black-holed origin as
            # tcp.timed_out within the fault instead of abandoning the request (the page gives each
            # request 10 s). The probes' own timeouts are shorter and unchanged.
            run(*ns_exec(self.isp_ns(isp_id), "sysctl", "-qw", "net.ipv4.tcp_syn_retries=1"))
            # Chromium and the probe read resolv.conf: `ip netns exec` shows them this one.
            os.makedirs(f"/etc/netns/{self.isp_ns(isp_id)}", exist_ok=True)
            with open(f"/etc/netns/{self.isp_ns(isp_id)}/resolv.conf", "w") as f:
                f.write(f"# vantage lab: {isp['name']}'s resolver\nnameserver {self.isp_addr(isp_id, 2)}\n")

    # -- certificates and the lab MMDB ----------------------------------------------------------
    def certificates(self):
        d = self.path("certs")
        os.makedirs(d)

        def ssl(*args):
            run("openssl", *args)

        ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem",
            "-days", "7", "-subj", "/CN=Vantage Lab CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        for name in (SHOP, COLLECTOR_HOST):
            ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr",
                "-subj", f"/CN={name}")
            ext = f"{d}/{name}.ext"
            with open(ext, "w") as f:
                f.write(f"subjectAltName=DNS:{name}\nextendedKeyUsage=serverAuth\n")
            ssl("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
                "-CAcreateserial", "-out", f"{d}/{name}.pem", "-days", "7", "-extfile", ext)
        for key in glob.glob(f"{d}/*.key"):
            os.chmod(key, 0o600)
        self.ca = f"{d}/ca.pem"

    def mmdb(self):
        networks = [{"network": i["subnet"], "asn": i["asn"], "isp": i["name"], "country": i["country"],
                     "city": i["city"]} for i in self.isps.values()]
        spec = self.path("mmdb-networks.json")
        with open(spec, "w") as f:
            json.dump(networks, f)
        run("perl", os.path.join(HERE, "mmdb", "write-lab-mmdb.pl"), spec, self.path())
        self.city_db, self.asn_db = self.path("Lab-City.mmdb"), self.path("Lab-ASN.mmdb")

    # -- the origin: nginx + njs (the demo shop) and the authoritative DNS server -------------
    def site_headers(self):
        out = run(self.bin["collector"], "headers", "--site", f"https://{SHOP}", "--collector",
                  f"https://{COLLECTOR_HOST}", "--nel-success-fraction", "1", "--nel-failure-fraction", "1",
                  "--max-age", "3600").stdout
        headers, agent = {}, ""
        for line in out.splitlines():
            if line.startswith(("Reporting-Endpoints:", "Report-To:", "NEL:")):
                k, v = line.split(": ", 1)
                headers[k] = v
            elif line.startswith("<script"):
                agent = line
        return headers, agent

    def start_origin(self):
        o = self.cfg["origin"]
        state = self.path("origin")
        www = self.path("www")
        os.makedirs(state)
        os.makedirs(www)
        self.shop_password = "lab-" + os.urandom(8).hex()
        with open(os.path.join(state, "config.json"), "w") as f:
            json.dump({"shop_password": self.shop_password}, f)
        self.write_faults()
        open(os.path.join(state, "requests.jsonl"), "w").close()
        headers, agent = self.site_headers()
        with open(os.path.join(HERE, "www", "index.html")) as f:
            page = f.read().replace("<!-- vantage agent -->", agent)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write(page)
        add_headers = "".join(f"        add_header {k} '{v}' always;\n" for k, v in headers.items())
        certs = self.path("certs")
        conf = self.path("nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""load_module {NGINX_NJS};
worker_processes 1;
pid {self.path('nginx.pid')};
error_log {self.path('nginx-error.log')} warn;
events {{ worker_connections 1024; }}
http {{
    access_log {self.path('nginx-access.log')};
    client_body_temp_path {state}/tmp;
    proxy_temp_path {state}/tmp;
    fastcgi_temp_path {state}/tmp;
    uwsgi_temp_path {state}/tmp;
    scgi_temp_path {state}/tmp;
    default_type text/html;
    keepalive_timeout 5s;
    js_import api from {os.path.join(HERE, "origin", "api.js")};
    server {{
        listen {o['web']}:443 ssl;
        server_name {SHOP};
        ssl_certificate {certs}/{SHOP}.pem;
        ssl_certificate_key {certs}/{SHOP}.key;
        root {www};
{add_headers}
        location = / {{ try_files /index.html =404; }}
        location = /favicon.ico {{ return 204; }}
        location /api/ {{ set $origin_dir {state}; js_content api.api; }}
    }}
}}
""")
        os.makedirs(os.path.join(state, "tmp"))
        # nginx's workers run as nobody: they read the page and keep the shop's state; the keys
        # stay the master's (root) alone.
        subprocess.run(["chmod", "-R", "a+rX", www], check=True)
        subprocess.run(["chown", "-R", "nobody", state], check=True)
        subprocess.run(["chmod", "-R", "go-rwx", state], check=True)
        self.origin_cmd = ["nginx", "-c", conf, "-p", self.dir, "-e", self.path("nginx-error.log"), "-g", "daemon off;"]
        self.spawn("nginx", ORIGIN, self.origin_cmd)
        # The authoritative server for lab.test (unbound's auth-zone).
        zone = self.path("lab.test.zone")
        records = [f"@ 60 IN SOA {NS_HOST}. hostmaster.lab.test. 1 3600 600 86400 1",
                   f"@ 60 IN NS {NS_HOST}.", f"ns 60 IN A {o['dns']}",
                   f"shop 5 IN A {o['web']}", f"www.shop 5 IN A {o['web']}",
                   f"collector 60 IN A {self.cfg['collector']['address']}"]
        with open(zone, "w") as f:
            f.write("$ORIGIN lab.test.\n" + "\n".join(records) + "\n")
        self.unbound("auth", ORIGIN, o["dns"], f"""
    local-zone: "test." nodefault
auth-zone:
    name: "lab.test."
    zonefile: "{zone}"
    for-downstream: yes
    for-upstream: no
""", access="0.0.0.0/0 allow")

    def unbound(self, key, ns, address, extra, access):
        conf = self.path(f"unbound-{key}.conf")
        with open(conf, "w") as f:
            f.write(f"""server:
    interface: {address}
    port: 53
    do-ip6: no
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{self.dir}"
    pidfile: "{self.path(f'unbound-{key}.pid')}"
    use-syslog: no
    logfile: ""
    verbosity: 1
    access-control: {access}
    module-config: "iterator"
    qname-minimisation: no
    num-threads: 1
    cache-max-ttl: 5
    cache-max-negative-ttl: 1
{extra}
remote-control:
    control-enable: yes
    control-interface: {self.path(f'unbound-{key}.ctl')}
    control-use-cert: no
""")
        self.spawn(f"unbound-{key}", ns, ["unbound", "-d", "-c", conf])
        return conf

    def start_resolver(self, isp_id):
        """The ISP's recursive resolver: asks ns.lab.test for lab.test, like any resolver would."""
        o = self.cfg["origin"]
        self.unbound(isp_id, self.isp_ns(isp_id), self.isp_addr(isp_id, 2), f"""
    local-zone: "test." nodefault
    do-not-query-localhost: no
stub-zone:
    name: "lab.test."
    stub-addr: {o['dns']}
""", access=f"{self.isps[isp_id]['subnet']} allow\n    access-control: 10.254.0.0/16 allow")

    # -- the collector -----------------------------------------------------------------------
    def start_collector(self):
        c = self.cfg["collector"]
        probes = []
        for isp_id in self.probe_isps + ["bgp"]:
            token = os.urandom(16).hex()
            self.tokens[isp_id] = token
            probes.append({"id": self.probe_id(isp_id), "token_env": f"VANTAGE_TOKEN_{isp_id.upper()}"})
        self.db = self.path("collector.db")
        config = {
            "listen": f"{c['address']}:443",
            "threads": 1,
            "tls": {"cert_file": self.path("certs", f"{COLLECTOR_HOST}.pem"),
                    "key_file": self.path("certs", f"{COLLECTOR_HOST}.key")},
            "allowed_origins": [f"https://{SHOP}"],
            "geoip": {"city_db": self.city_db, "asn_db": self.asn_db},
            "limits": {"per_ip": {"rate": 200, "burst": 1000}},
            "store": {"sqlite": self.db, "commit_interval": "100ms"},
            "probes": probes,
        }
        path = self.path("collector.yaml")
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
        env = dict(os.environ, **{f"VANTAGE_TOKEN_{k.upper()}": v for k, v in self.tokens.items()})
        self.spawn("collector", COLL, [self.bin["collector"], "--config", path], env=env)

    def probe_id(self, isp_id):
        if isp_id == "bgp":
            return f"{self.cfg['bgp']['isp']}-border-bmp"
        return f"{isp_id}-probe"

    # -- the vantage points ------------------------------------------------------------------
    def start_probe(self, isp_id):
        isp = self.isps[isp_id]
        t = self.cfg["timing"]
        interval = t["probe_interval"]
        timeout = t["http_timeout"]
        o = self.cfg["origin"]
        config = {
            "vantage_point": {"id": self.probe_id(isp_id), "region": isp["region"], "country": isp["country"],
                              "city": isp["city"], "asn": isp["asn"], "isp": isp["name"]},
            "collector": {"url": f"https://{COLLECTOR_HOST}/v1/results", "token_env": "VANTAGE_PROBE_TOKEN",
                          "spool_dir": self.path(f"spool-{isp_id}"), "flush_interval": "200ms",
                          "tls": {"ca_file": self.ca}},
            "defaults": {"interval": interval, "timeout": timeout},
            "checks": [
                {"id": "shop-home", "kind": "http", "url": f"https://{SHOP}/", "tls": {"ca_file": self.ca},
                 "expect": {"status": [200], "body_matches": "Welcome"}},
                {"id": "shop-api-catalog", "kind": "http", "url": f"https://{SHOP}/api/products",
                 "tls": {"ca_file": self.ca}, "expect": {"status": [200]}},
                {"id": "shop-dns", "kind": "dns", "name": SHOP, "type": "A",
                 "resolvers": [f"{self.isp_addr(isp_id, 2)}:53"],
                 "expect": {"rcode": "NOERROR", "answers_within": [o["prefix"]]}},
                {"id": "checkout", "kind": "journey", "timeout": "4s",
                 "include": os.path.join(ROOT, "regions", "journeys", "checkout.yaml"),
                 "variables": {"base": f"https://{SHOP}", "user": f"lab-{isp_id}"},
                 "tls": {"ca_file": self.ca}},
            ],
        }
        path = self.path(f"probe-{isp_id}.yaml")
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
        env = dict(os.environ, VANTAGE_PROBE_TOKEN=self.tokens[isp_id], SHOP_PROBE_PASSWORD=self.shop_password)
        self.spawn(f"probe-{isp_id}", self.isp_ns(isp_id),
                   [self.bin["probe"], "--config", path, "--output", self.path(f"probe-{isp_id}.jsonl")], env=env)

    def start_user(self, isp_id):
        """A user of the ISP: headless Chromium on the shop's page, which browses the catalogue
        four times a second; the page's agent and NEL report to the collector."""
        home = self.path(f"home-{isp_id}")
        nssdb = os.path.join(home, ".pki", "nssdb")
        os.makedirs(nssdb)
        run("certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password")
        run("certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "vantage-lab-ca", "-i", self.ca)
        self.spawn(f"user-{isp_id}", self.isp_ns(isp_id),
                   [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--short-reporting-delay", "--js-flags=--max-old-space-size=64",
                    f"--user-data-dir={os.path.join(home, 'profile')}", f"https://{SHOP}/"],
                   env=dict(os.environ, HOME=home))

    # -- BGP: ExaBGP -> FRR (the ISP's border router) -> BMP -> a probe's bgp check ------------
    def start_bgp(self):
        b = self.cfg["bgp"]
        os.makedirs(self.path("bgp"))
        self.bgp = bgp_lab.BgpLab(name=BGP_NAME, directory=self.path("bgp"))
        self.bgp.create()
        rtr = self.bgp.router_ns
        # The router reaches the collector through the core.
        run("ip", "-n", CORE, "link", "add", f"{PREFIX}-b", "type", "veth", "peer", "name", "eth1", "netns", rtr)
        run("ip", "-n", CORE, "addr", "add", "10.254.0.9/30", "dev", f"{PREFIX}-b")
        run("ip", "-n", rtr, "addr", "add", "10.254.0.10/30", "dev", "eth1")
        run("ip", "-n", CORE, "link", "set", f"{PREFIX}-b", "up")
        run("ip", "-n", rtr, "link", "set", "eth1", "up")
        run("ip", "-n", rtr, "route", "add", "default", "via", "10.254.0.9")
        isp = self.isps[b["isp"]]
        o = self.cfg["origin"]
        prefixes = self.path("bgp-prefixes.yml")
        with open(prefixes, "w") as f:
            f.write(f"{o['prefix']}:\n  description: the lab origin (shop.lab.test)\n  asn: [{o['asn']}]\n"
                    f"  ignoreMorespecifics: false\noptions:\n  min_peers: 1\n"
                    # the lab's compressed time scale (docs/bgp.md#lifecycle: 60 s by default)
                    f"  resolve_hold: 2s\n")
        shutil.copy(os.path.join(HERE, "bgp", "lab-as-rel.txt"), self.path("as-rel.txt"))
        config = {
            "vantage_point": {"id": self.probe_id("bgp"), "region": isp["region"], "country": isp["country"],
                              "asn": isp["asn"], "isp": isp["name"]},
            "collector": {"url": f"https://{COLLECTOR_HOST}/v1/results", "token_env": "VANTAGE_PROBE_TOKEN",
                          "spool_dir": self.path("spool-bgp"), "flush_interval": "200ms",
                          "tls": {"ca_file": self.ca}},
            "checks": [{"id": "origin-prefix-bgp", "kind": "bgp", "interval": "5s", "prefixes": prefixes,
                        "as_rel": self.path("as-rel.txt"),
                        "bmp": {"listen": f"127.0.0.1:{bgp_lab.BMP_PORT}"}}],
        }
        path = self.path("probe-bgp.yaml")
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
        # /etc/hosts-free: the router namespace resolves collector.lab.test through ISP 1's resolver.
        os.makedirs(f"/etc/netns/{rtr}", exist_ok=True)
        with open(f"/etc/netns/{rtr}/resolv.conf", "w") as f:
            f.write(f"nameserver {self.isp_addr(b['isp'], 2)}\n")
        env = dict(os.environ, VANTAGE_PROBE_TOKEN=self.tokens["bgp"])
        self.spawn("probe-bgp", rtr, [self.bin["probe"], "--config", path, "--output", self.path("probe-bgp.jsonl")],
                   env=env)
        wait(lambda: "bgp.bmp_listening" in self.read_log("probe-bgp"), 15, "the bgp check's BMP listener")
        self.bgp.start_router()
        self.bgp.start_speaker()
        wait(lambda: "bgp.bmp_session_up" in self.read_log("probe-bgp"), 30, "FRR's BMP session to the probe")
        wait(self.bgp.established, 60, "the eBGP session ExaBGP -> FRR")
        for r in b["routes"]:
            self.bgp.announce(r["prefix"], r["as_path"])
        wait(lambda: '"route_event"' in self.file(self.path("probe-bgp.jsonl")), 20, "the baseline route over BMP")

    @staticmethod
    def file(path):
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # -- readiness ---------------------------------------------------------------------------
    def wait_ready(self):
        o = self.cfg["origin"]
        for isp_id in self.isps:
            ns = self.isp_ns(isp_id)

            def resolves():
                p = run(*ns_exec(ns, "getent", "ahostsv4", SHOP), check=False)
                return o["web"] in p.stdout

            wait(resolves, 20, f"{SHOP} through {self.isps[isp_id]['name']}'s resolver")
            for url in (f"https://{SHOP}/", f"https://{COLLECTOR_HOST}/healthz"):
                wait(lambda: run(*ns_exec(ns, "curl", "-sf", "--max-time", "2", "--cacert", self.ca, "-o",
                                          "/dev/null", url), check=False).returncode == 0,
                     20, f"{url} from {self.isps[isp_id]['name']}")

    # -- faults ------------------------------------------------------------------------------
    def write_faults(self):
        path = self.path("origin", "faults.json")
        with open(path + ".tmp", "w") as f:
            json.dump(self.faults_state, f)
        os.chmod(path + ".tmp", 0o666)
        os.rename(path + ".tmp", path)

    def fault_isps(self, a):
        """The ISP ids a fault names: `isp` is one id, a list of ids, or `all`."""
        want = a.get("isp")
        ids = list(self.isps) if want == "all" else [want] if isinstance(want, str) else list(want or [])
        unknown = [i for i in ids if i not in self.isps]
        if not ids or unknown:
            raise ValueError(f"fault needs isp: one of {', '.join(self.isps)}, a list of them, or all "
                             f"(got {want!r})")
        return ids

    def isp_names(self, ids):
        if len(ids) == len(self.isps):
            return "every ISP"
        return " and ".join(f"{self.isps[i]['name']} ({self.isps[i]['subnet']})" for i in ids)

    @staticmethod
    def http_path(a):
        path = str(a.get("path", ""))
        if not path.startswith("/api/"):  # nginx hands only /api/ to the shop (api.js)
            raise ValueError(f"http_status: path must start with /api/ (got {path!r})")
        status = int(a.get("status", 0))
        if not 100 <= status <= 599:
            raise ValueError(f"http_status: status must be an HTTP status code (got {a.get('status')!r})")
        return path, status

    def describe(self, fault):
        (kind, a), = fault.items()
        prefix = self.cfg["origin"]["prefix"]
        if kind == "blackhole":
            return f"the core router drops {self.isp_names(self.fault_isps(a))}'s packets to the origin ({prefix})"
        if kind == "packet_loss":
            return (f"the core router drops {a['percent']} % of the round trips between "
                    f"{self.isp_names(self.fault_isps(a))} and the origin ({prefix})")
        if kind == "origin_down":
            return f"the origin's web server stops ({self.cfg['origin']['web']}:443 refuses connections; DNS stays up)"
        if kind == "http_status":
            path, status = self.http_path(a)
            return f"the origin answers {status} on {path} to {self.isp_names(self.fault_isps(a))}"
        if kind == "dns_hijack":
            return f"{self.isps[a['isp']]['name']}'s resolver answers {a['name']} with {a['address']}"
        if kind == "waf_block":
            return f"the origin's WAF answers 403 on /api/ to {self.isp_names(self.fault_isps(a))}"
        if kind == "latency":
            return f"the origin delays {a['endpoint']} by {a['ms']} ms"
        if kind == "bgp_announce":
            return f"BGP: {a['prefix']} announced with AS path {' '.join(map(str, a['as_path']))}"
        raise ValueError(f"unknown fault {kind!r}")

    def inject(self, fault):
        self.apply(fault, True)

    def remove(self, fault):
        self.apply(fault, False)

    def apply(self, fault, on):
        (kind, a), = fault.items()
        a = a or {}
        if kind == "blackhole":
            for isp_id in self.fault_isps(a):
                self.blackhole(isp_id, on)
        elif kind == "packet_loss":
            percent = float(a.get("percent", -1))
            if not 0 < percent <= 100:
                raise ValueError(f"packet_loss: percent must be in (0, 100] (got {a.get('percent')!r})")
            for isp_id in self.fault_isps(a):
                self.packet_loss(isp_id, percent if on else None)
        elif kind == "origin_down":
            self.origin_down(on)
        elif kind in ("http_status", "waf_block"):
            path, status = self.http_path(a) if kind == "http_status" else ("/api/", 403)
            for isp_id in self.fault_isps(a):
                key = (isp_id, path)
                if on and key in self.http_rules:
                    raise ValueError(f"{kind}: {isp_id} already gets {self.http_rules[key]} on {path}")
                if on:
                    self.http_rules[key] = status
                else:
                    self.http_rules.pop(key, None)
            self.faults_state["http_status"] = [{"prefix": self.isps[i]["subnet"], "path": p, "status": st}
                                                for (i, p), st in sorted(self.http_rules.items())]
            if not self.faults_state["http_status"]:
                del self.faults_state["http_status"]
            self.write_faults()
        elif kind == "dns_hijack":
            ctl = ["unbound-control", "-c", self.path(f"unbound-{a['isp']}.conf")]
            if on:
                run(*ctl, "local_data", f"{a['name']}. 5 IN A {a['address']}")
            else:
                run(*ctl, "local_data_remove", f"{a['name']}.")
            run(*ctl, "flush", f"{a['name']}.")
        elif kind == "latency":
            lat = self.faults_state.setdefault("latency_ms", {})
            if on:
                lat[a["endpoint"]] = int(a["ms"])
            else:
                lat.pop(a["endpoint"], None)
            self.write_faults()
        elif kind == "bgp_announce":
            baseline = {r["prefix"]: r for r in self.cfg["bgp"]["routes"]}
            if on:
                self.bgp.announce(a["prefix"], a["as_path"])
            elif a["prefix"] in baseline:
                self.bgp.announce(a["prefix"], baseline[a["prefix"]]["as_path"])
            else:
                self.bgp.withdraw(a["prefix"])
        else:
            raise ValueError(f"unknown fault {kind!r}")

    def blackhole(self, isp_id, on):
        """One policy rule and one routing table per ISP (BLACKHOLE_TABLE + its position), so any
        set of ISPs can be black-holed and restored independently."""
        if on == (isp_id in self.blackholed):
            raise ValueError(f"blackhole: {isp_id} is {'already' if on else 'not'} black-holed")
        subnet, prefix = self.isps[isp_id]["subnet"], self.cfg["origin"]["prefix"]
        table = str(BLACKHOLE_TABLE + list(self.isps).index(isp_id) + 1)
        if on:
            run("ip", "-n", CORE, "route", "add", "blackhole", prefix, "table", table)
            run("ip", "-n", CORE, "rule", "add", "from", subnet, "to", prefix, "table", table, "priority", table)
            self.blackholed.add(isp_id)
        else:
            run("ip", "-n", CORE, "rule", "del", "priority", table)
            run("ip", "-n", CORE, "route", "flush", "table", table)
            self.blackholed.discard(isp_id)

    def packet_loss(self, isp_id, percent):
        """An nftables table of its own per ISP on the core router (removal deletes it): forwarded
        packets between the ISP's subnet and the origin's prefix are dropped at random, each
        direction with the probability that makes a round trip fail `percent` % of the time."""
        table = f"{LOSS_TABLE}_{isp_id}"
        if (percent is not None) == (isp_id in self.lossy):
            raise ValueError(f"packet_loss: {isp_id} {'already has' if percent is not None else 'has no'} loss")
        if percent is None:
            run(*ns_exec(CORE, "nft", "delete", "table", "inet", table))
            self.lossy.discard(isp_id)
            return
        per_mille = round(1000 * (1 - (1 - percent / 100) ** 0.5))
        subnet, prefix = self.isps[isp_id]["subnet"], self.cfg["origin"]["prefix"]
        rules = f"""table inet {table} {{
    chain forward {{
        type filter hook forward priority 0; policy accept;
        ip saddr {subnet} ip daddr {prefix} numgen random mod 1000 < {per_mille} drop
        ip saddr {prefix} ip daddr {subnet} numgen random mod 1000 < {per_mille} drop
    }}
}}
"""
        run(*ns_exec(CORE, "nft", "-f", "-"), input=rules)
        self.lossy.add(isp_id)

    def origin_down(self, on):
        """Stops nginx (SIGTERM: it closes its connections; nothing listens on :443, so new ones
        are refused), or starts it again and waits until it accepts connections."""
        proc = self.procs.get("nginx")
        running = proc is not None and proc.poll() is None
        if on:
            if not running:
                raise ValueError("origin_down: the origin's web server is not running")
            proc.terminate()
            proc.wait(timeout=10)
            return
        if running:
            raise ValueError("origin_down: the origin's web server is already running")
        self.spawn("nginx", ORIGIN, self.origin_cmd)
        web = self.cfg["origin"]["web"]
        wait(lambda: f"{web}:443" in run(*ns_exec(ORIGIN, "ss", "-Hltn"), check=False).stdout, 10,
             "the origin's web server to listen again")


def wait(predicate, timeout, what, interval=0.1):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(interval)
    raise RuntimeError(f"lab: timed out after {timeout:.0f} s waiting for {what}")


def lab_namespaces():
    try:
        return sorted(n for n in os.listdir("/run/netns") if n.startswith(PREFIX + "-"))
    except FileNotFoundError:
        return []


def cleanup(quiet=False):
    """Kills every process in the lab's namespaces (SIGTERM, then SIGKILL), deletes them,
    /etc/netns/vlab-* and the temporary directories (idempotent). Returns what it removed. The
    caller holds the lab lock (or was told to --force)."""
    removed = []
    for ns in lab_namespaces():
        killed = bgp_lab.remove_namespace(ns)
        removed.append(f"namespace {ns}" + (f" ({killed} processes)" if killed else ""))
    for d in glob.glob(f"/etc/netns/{PREFIX}-*"):
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    for d in glob.glob(TMP_GLOB):
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    if not quiet:
        print("lab cleanup: " + ("removed " + ", ".join(removed) if removed else "nothing to remove"))
    return removed


def leftovers():
    """What of the lab still exists: namespaces, veth links in the root namespace, processes,
    files. Empty when the lab is gone."""
    out = [f"namespace {n}" for n in lab_namespaces()]
    links = run("ip", "-o", "link", "show", check=False).stdout
    out += [f"link {line.split(':')[1].strip()}" for line in links.splitlines() if f" {PREFIX}-" in line]
    out += glob.glob(TMP_GLOB) + glob.glob(f"/etc/netns/{PREFIX}-*")
    # bgpd's own directory, left when it did not exit cleanly.
    for d in glob.glob("/var/tmp/frr/bgpd.*"):
        pid = d.rsplit(".", 1)[1]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            out.append(d)
    ps = run("ps", "-eo", "pid=,args=", check=False).stdout
    out += [f"process {line.strip()}" for line in ps.splitlines()
            if "vantage-lab-" in line and "ps -eo" not in line]
    return out


if __name__ == "__main__":
    if len(sys.argv) in (2, 3) and sys.argv[1] == "cleanup" and sys.argv[2:] in ([], ["--force"]):
        if os.geteuid() != 0:
            sys.exit("lab cleanup needs root (it deletes network namespaces)")
        held = None if sys.argv[2:] == ["--force"] else lock()
        cleanup()
        if held is not None:
            unlock(held)
    else:
        print(__doc__)
        sys.exit(2)
