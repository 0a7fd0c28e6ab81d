#!/usr/bin/env python3
"""The local target network: real servers a probe can check on one machine (127.0.0.1 only).
Used by the integration tests (started once per test run) and by scripts/demo.

    targets.py start STATE_DIR   -> writes STATE_DIR/env.json with every port and path
    targets.py stop STATE_DIR

Everything listens on 127.0.0.1 with ports picked by the kernel:
  * nginx (Debian) serving HTTP and four HTTPS endpoints with certificates from a throw-away CA:
    a valid one, an expired one, a self-signed one (unknown CA) and one for the wrong name;
    nginx proxies /slow to a backend that waits 200 ms (a measurable ttfb);
  * unbound (Debian) as the recursive resolver, with a local zone (shop.test, *.shop.test,
    NXDOMAIN names), a name whose upstream answers after 1.5 s (slow.test), a name whose
    upstream answers SERVFAIL (servfail.test) and one whose upstream never answers (dead.test);
  * the upstream DNS fixture (regions/lab/fixtures.py dns) behind unbound;
  * a TCP listener whose accept queue is full (connects time out) and a port nothing listens on.
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


_rng = random.Random()


def free_port(kind=socket.SOCK_STREAM):
    """A free port on 127.0.0.1 below the ephemeral range (32768+), so no outgoing connection's
    local port (busy or in TIME_WAIT after a load test) can take it before the server binds."""
    for _ in range(200):
        port = _rng.randrange(20000, 32000)
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port in 20000-32000")


def run(cmd, cwd=None):
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_certs(d):
    """A throw-away CA and the four server certificates, with openssl's CLI."""
    os.makedirs(d, exist_ok=True)
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
         "-out", "ca.pem", "-days", "30", "-subj", "/CN=Vantage Test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"], cwd=d)
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("""[ ca ]
default_ca = test_ca
[ test_ca ]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
[ anything ]
commonName = supplied
""")
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("1000\n")

    def leaf(name, san, start=None, end=None):
        run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
             "-out", name + ".csr", "-subj", "/CN=" + san.split(",")[0].split(":")[1],
             "-addext", "subjectAltName=" + san], cwd=d)
        cmd = ["openssl", "ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
               "-in", name + ".csr", "-out", name + ".pem", "-notext"]
        if start:
            cmd += ["-startdate", start, "-enddate", end]
        else:
            cmd += ["-days", "30"]
        run(cmd, cwd=d)

    leaf("valid", "DNS:shop.test,DNS:localhost,IP:127.0.0.1")
    leaf("expired", "DNS:shop.test,IP:127.0.0.1", "20200101000000Z", "20200201000000Z")
    leaf("wrongname", "DNS:other.test")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "selfsigned.key",
         "-out", "selfsigned.pem", "-days", "30", "-subj", "/CN=shop.test",
         "-addext", "subjectAltName=DNS:shop.test"], cwd=d)


def start_nginx(state, ports, shop_password):
    root = os.path.join(state, "www")
    # The demo origin's state (regions/lab/origin/api.js): written by nginx's workers.
    origin = os.path.join(state, "origin")
    os.makedirs(origin, exist_ok=True)
    with open(os.path.join(origin, "config.json"), "w") as f:
        json.dump({"shop_password": shop_password}, f)
    with open(os.path.join(origin, "faults.json"), "w") as f:
        f.write("{}")
    open(os.path.join(origin, "requests.jsonl"), "w").close()
    os.makedirs(os.path.join(root, "api"), exist_ok=True)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<html><body><h1>Welcome to the Vantage test shop</h1></body></html>\n")
    with open(os.path.join(root, "api", "products.json"), "w") as f:
        json.dump({"items": [{"sku": "BOOK-1", "price": 12.5}], "count": 1}, f)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(os.urandom(2 * 1024 * 1024))
    certs = os.path.join(state, "certs")
    servers = []

    def server(port, tls=None):
        listen = f"127.0.0.1:{port}" + (" ssl" if tls else "")
        cert = f"ssl_certificate {certs}/{tls}.pem; ssl_certificate_key {certs}/{tls}.key;" if tls else ""
        return f"""
    server {{
        listen {listen};
        server_name _;
        {cert}
        root {root};
        location = / {{ try_files /index.html =404; }}
        location = /api/products {{ default_type application/json; try_files /api/products.json =404; }}
        location = /big {{ try_files /big.bin =404; }}
        location = /status/500 {{ return 500 "internal error\\n"; }}
        location = /status/503 {{ return 503 "unavailable\\n"; }}
        location = /redirect {{ return 302 /; }}
        location = /slow {{ proxy_pass http://127.0.0.1:{ports['backend']}/slow; }}
        location /api/ {{ set $origin_dir {origin}; js_content api.api; }}
        location = /_faults {{ set $origin_dir {origin}; js_content api.faultsAdmin; }}
    }}"""

    servers.append(server(ports["http"]))
    for name in ("valid", "expired", "selfsigned", "wrongname"):
        servers.append(server(ports["https_" + name], name))
    conf = os.path.join(state, "nginx.conf")
    njs = "/usr/lib/nginx/modules/ngx_http_js_module.so"
    with open(conf, "w") as f:
        f.write(f"""
load_module {njs};
worker_processes 1;
pid {state}/nginx.pid;
error_log {state}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {state}/nginx-access.log;
    client_body_temp_path {state}/nginx-tmp;
    proxy_temp_path {state}/nginx-tmp;
    fastcgi_temp_path {state}/nginx-tmp;
    uwsgi_temp_path {state}/nginx-tmp;
    scgi_temp_path {state}/nginx-tmp;
    default_type text/html;
    keepalive_requests 100000;
    client_body_buffer_size 64k;
    client_max_body_size 64k;
    js_import api from {os.path.join(HERE, "origin", "api.js")};
    {''.join(servers)}
}}
""")
    os.makedirs(os.path.join(state, "nginx-tmp"), exist_ok=True)
    if os.geteuid() == 0:
        # Workers drop to nobody: let them read the tree and keep the origin's state.
        subprocess.run(["chmod", "-R", "a+rX", state], check=True)
        subprocess.run(["chmod", "-R", "a+rwX", origin], check=True)
    run(["nginx", "-c", conf, "-p", state, "-e", os.path.join(state, "nginx-error.log")])


def start_unbound(state, ports):
    conf = os.path.join(state, "unbound.conf")
    with open(conf, "w") as f:
        f.write(f"""
server:
    interface: 127.0.0.1
    port: {ports['dns']}
    do-ip6: no
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "{state}"
    pidfile: "{state}/unbound.pid"
    logfile: "{state}/unbound.log"
    use-syslog: no
    verbosity: 1
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "iterator"
    qname-minimisation: no
    harden-referral-path: no
    num-threads: 1
    cache-max-ttl: 0
    cache-max-negative-ttl: 0
    infra-keep-probing: yes
    local-zone: "shop.test." static
    local-data: "shop.test. 300 IN A 127.0.0.1"
    local-data: "www.shop.test. 300 IN A 127.0.0.1"
    local-data: "api.shop.test. 60 IN A 127.0.0.1"
    local-data: "mail.shop.test. 300 IN MX 10 mx.shop.test."
    local-data: "shop.test. 300 IN TXT \\"v=spf1 -all\\""
    local-zone: "nx.test." always_nxdomain
    local-zone: "hijacked.test." static
    local-data: "hijacked.test. 300 IN A 198.51.100.66"
    # "test." is one of unbound's default static zones (RFC 6761): let these through to their
    # forwarders.
    local-zone: "slow.test." transparent
    local-zone: "servfail.test." transparent
    local-zone: "dead.test." transparent
forward-zone:
    name: "slow.test."
    forward-addr: 127.0.0.1@{ports['upstream_dns']}
forward-zone:
    name: "servfail.test."
    forward-addr: 127.0.0.1@{ports['upstream_dns']}
forward-zone:
    name: "dead.test."
    forward-addr: 127.0.0.1@{ports['dead_dns']}
""")
    return spawn(state, "unbound", ["unbound", "-d", "-c", conf])


def spawn(state, name, cmd):
    log = open(os.path.join(state, name + ".out"), "w")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return p.pid


def wait_tcp(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def wait_dns(port, name="shop.test", timeout=10, attempt_timeout=0.5):
    """Waits until the DNS server at `port` answers a query for `name` (any rcode)."""
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    for label in name.split("."):
        query += bytes([len(label)]) + label.encode()
    query += b"\x00\x00\x01\x00\x01"
    end = time.time() + timeout
    while time.time() < end:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(attempt_timeout)
        try:
            s.sendto(query, ("127.0.0.1", port))
            s.recvfrom(512)
            return
        except OSError:
            time.sleep(0.05)
        finally:
            s.close()
    raise RuntimeError(f"no DNS answer from 127.0.0.1:{port}")


def start(state):
    if os.path.exists(state):
        stop(state)
        shutil.rmtree(state)
    os.makedirs(state)
    ports = {k: free_port() for k in ("http", "https_valid", "https_expired", "https_selfsigned",
                                      "https_wrongname", "backend", "blackhole", "closed")}
    ports["dns"] = free_port(socket.SOCK_DGRAM)
    ports["upstream_dns"] = free_port(socket.SOCK_DGRAM)
    ports["dead_dns"] = free_port(socket.SOCK_DGRAM)
    ports["closed_dns"] = free_port(socket.SOCK_DGRAM)
    make_certs(os.path.join(state, "certs"))
    pids = {}
    fixtures = os.path.join(HERE, "fixtures.py")
    pids["backend"] = spawn(state, "backend", [sys.executable, fixtures, "http-backend", str(ports["backend"])])
    pids["upstream_dns"] = spawn(state, "upstream-dns", [sys.executable, fixtures, "dns", str(ports["upstream_dns"])])
    pids["dead_dns"] = spawn(state, "dead-dns", [sys.executable, fixtures, "dns-silent", str(ports["dead_dns"])])
    pids["blackhole"] = spawn(state, "blackhole", [sys.executable, fixtures, "blackhole", str(ports["blackhole"])])
    wait_tcp(ports["backend"])
    shop_password = "probe-" + "".join(_rng.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(16))
    start_nginx(state, ports, shop_password)
    pids["unbound"] = start_unbound(state, ports)
    for key in ("http", "https_valid", "https_expired", "https_selfsigned", "https_wrongname"):
        wait_tcp(ports[key])
    wait_dns(ports["dns"])
    # unbound learns the slow upstream's round-trip time on the first queries (its first answer
    # can take several retransmissions); afterwards slow.test answers in about 1.5 s.
    for _ in range(2):
        wait_dns(ports["dns"], "slow.test", timeout=30, attempt_timeout=8)
    env = {
        "state": state,
        "ports": ports,
        "pids": pids,
        "ca_file": os.path.join(state, "certs", "ca.pem"),
        "resolver": f"127.0.0.1:{ports['dns']}",
        "origin": {"dir": os.path.join(state, "origin"), "shop_password": shop_password},
    }
    with open(os.path.join(state, "env.json"), "w") as f:
        json.dump(env, f, indent=2)
    print(f"servers started; see {state}/env.json")


def stop(state):
    env_path = os.path.join(state, "env.json")
    if os.path.exists(os.path.join(state, "nginx.pid")):
        try:
            with open(os.path.join(state, "nginx.pid")) as f:
                os.kill(int(f.read().strip()), signal.SIGQUIT)
        except (OSError, ValueError):
            pass
    if os.path.exists(env_path):
        with open(env_path) as f:
            env = json.load(f)
        for pid in env["pids"].values():
            try:
                os.killpg(pid, signal.SIGTERM)
            except OSError:
                pass
    print("servers stopped")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit("usage: targets.py start|stop STATE_DIR")
    (start if sys.argv[1] == "start" else stop)(os.path.abspath(sys.argv[2]))
