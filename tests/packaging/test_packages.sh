#!/usr/bin/env bash
# The Debian packages end to end, on this machine (root, Debian 12; systemd need not be PID 1):
#   1. cpack builds vantage-probe, vantage-collector and vantage from an already-built tree
#      (default build/dev: its binaries, stripped by CPack — no second build);
#   2. lintian: no error or warning (the overrides in packaging/debian/*.lintian-overrides say why);
#   3. dpkg -i the three; the maintainer scripts' work is checked (user, state directories, token
#      permissions, conffiles, unit enablement as deb-systemd-helper records it);
#   4. systemd-analyze verify on the installed units;
#   5. the installed binaries run AS THE vantage USER with the installed example configuration:
#      the collector listens on 127.0.0.1:8080, the probe's --once checks it (a local HTTP server)
#      and uploads its result there, and the collector's store has the row;
#   6. --version of each installed binary;
#   7. dpkg --purge the three: what is left is exactly what docs/install.md says stays.
# Usage: tests/packaging/test_packages.sh [BUILD_DIR]     (scripts/test runs it after the dev stage)
# Refuses to run when any of the three packages is already installed (it purges them at the end).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(realpath "${1:-build/dev}")
pkgs=(vantage-probe vantage-collector vantage)
start=$EPOCHREALTIME

fail() { echo "test_packages: FAIL: $*" >&2; exit 1; }
elapsed() { awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
step() { printf 'test_packages: %-58s (%s s)\n' "$1" "$(elapsed)"; }

[[ $(id -u) -eq 0 ]] || fail "needs root (dpkg -i, runuser)"
for b in probe/vantage-probe beacon-collector/vantage-collector analysis/vantage; do
  [[ -x $build/$b ]] || fail "$build/$b is not built (cmake --build --preset dev first)"
done
for p in "${pkgs[@]}"; do
  if dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qvx 'not-installed'; then
    fail "$p is installed on this machine; this test installs and purges the packages, so it" \
      "will not touch an existing installation (dpkg --purge ${pkgs[*]} first)"
  fi
done
if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then
  fail "127.0.0.1:8080 is in use; the installed example collector listens there"
fi

work=$(mktemp -d /tmp/vantage-packaging.XXXXXX)
collector_pid=""
installed=0
cleanup() {
  [[ -n $collector_pid ]] && kill "$collector_pid" 2>/dev/null && wait "$collector_pid" 2>/dev/null
  if ((installed)); then dpkg --purge "${pkgs[@]}" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# What exists before, to compare with what purge leaves. dpkg's and man-db's own records are
# theirs (dpkg-query checks the packages' state below).
snapshot() {
  find /etc /usr/bin /usr/share/doc /usr/share/man/man1 /usr/share/lintian/overrides /lib/systemd \
    /var/lib -xdev \( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/lib/systemd/timers \
    -o -path /var/lib/man-db \) -prune -o -print 2>/dev/null | sort
}
snapshot >"$work/before"

# 1. Packages from the built tree.
version=$(sed -n 's/^project(vantage VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
[[ -n $version ]] || fail "no project(VERSION) in CMakeLists.txt"
(cd "$build" && cpack -G DEB -B "$work/debs" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack"; }
debs=()
for p in "${pkgs[@]}"; do
  deb="$work/debs/${p}_${version}-1_$(dpkg --print-architecture).deb"
  [[ -f $deb ]] || fail "cpack did not write $deb: $(ls "$work/debs")"
  debs+=("$deb")
  [[ $(dpkg-deb -f "$deb" Package) == "$p" ]] || fail "$deb: wrong Package field"
  [[ $(dpkg-deb -f "$deb" Version) == "$version-1" ]] || fail "$deb: Version is not $version-1"
  [[ $(dpkg-deb -f "$deb" Section) == net && $(dpkg-deb -f "$deb" Priority) == optional ]] ||
    fail "$deb: Section/Priority"
  [[ $(dpkg-deb -f "$deb" Depends) == *adduser* ]] || fail "$deb: Depends lacks adduser"
  # Stripped: no debug sections in the installed binary.
  dpkg-deb -x "$deb" "$work/x-$p"
  bin="$work/x-$p/usr/bin/$p"
  file "$bin" | grep -q ', stripped' || fail "$bin is not stripped: $(file "$bin")"
  echo "   $p $(dpkg-deb -f "$deb" Version): $(du -k "$deb" | cut -f1) KiB," \
    "binary $(($(stat -c %s "$bin") / 1024)) KiB stripped (built: $(($(stat -c %s "$build"/*/"$p" | head -1) / 1048576)) MiB)"
done
# Shared-library dependencies found by dpkg-shlibdeps (the collector links libsqlite3 and
# libmaxminddb dynamically; the probe libcurl and c-ares).
dpkg-deb -f "${debs[0]}" Depends | grep -q 'libcurl4' || fail "vantage-probe: no libcurl4 in Depends"
dpkg-deb -f "${debs[1]}" Depends | grep -q 'libmaxminddb0' || fail "vantage-collector: no libmaxminddb0 in Depends"
step "cpack: three packages"

# 2. lintian.
lintian --fail-on error,warning --pedantic -I "${debs[@]}" >"$work/lintian.log" 2>&1 ||
  { grep -v '^N:' "$work/lintian.log"; fail "lintian"; }
echo "   lintian: no error or warning; $(grep -c '^I:' "$work/lintian.log" || true) informational tags," \
  "$(grep -c '^P:' "$work/lintian.log" || true) pedantic"
step "lintian"

# 3. Installation and the maintainer scripts' work.
installed=1
dpkg -i "${debs[@]}" >"$work/dpkg-i.log" 2>&1 || { cat "$work/dpkg-i.log"; fail "dpkg -i"; }
for p in "${pkgs[@]}"; do
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$p") == installed ]] || fail "$p is not installed"
done
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd vantage) || fail "no user vantage"
((uid < 1000)) || fail "vantage is not a system user (uid $uid)"
[[ $home == /var/lib/vantage && $shell == /usr/sbin/nologin ]] || fail "vantage: home $home, shell $shell"
getent group vantage >/dev/null || fail "no group vantage"
[[ $(stat -c '%U:%G %a' /var/lib/vantage/probe) == "vantage:vantage 750" ]] || fail "/var/lib/vantage/probe"
[[ $(stat -c '%U:%G %a' /var/lib/vantage/collector) == "vantage:vantage 750" ]] || fail "/var/lib/vantage/collector"
[[ $(stat -c '%U:%G %a' /etc/vantage/probe.token) == "root:vantage 640" ]] ||
  fail "/etc/vantage/probe.token: $(stat -c '%U:%G %a' /etc/vantage/probe.token)"
grep -qE '^[0-9a-f]{48}$' /etc/vantage/probe.token || fail "probe.token is not 48 hex digits"
runuser -u nobody -- cat /etc/vantage/probe.token >/dev/null 2>&1 && fail "nobody can read probe.token"
dpkg-query -W -f='${Conffiles}\n' vantage-probe | grep -q '/etc/vantage/probe.yaml' || fail "probe.yaml is no conffile"
dpkg-query -W -f='${Conffiles}\n' vantage-collector | grep -q '/etc/vantage/collector.yaml' || fail "collector.yaml"
dpkg-query -W -f='${Conffiles}\n' vantage | grep -q '/etc/default/vantage-watch' || fail "vantage-watch default"
wants=/etc/systemd/system/multi-user.target.wants
[[ -L $wants/vantage-probe.service && -L $wants/vantage-collector.service ]] ||
  fail "the probe and collector units are not enabled"
[[ ! -e $wants/vantage-watch.service ]] || fail "vantage-watch is enabled at installation (it must not be)"
for p in "${pkgs[@]}"; do  # (from the package: a minimal image's dpkg may exclude /usr/share/man)
  zcat "$work/x-$p/usr/share/man/man1/$p.1.gz" | grep -q 'OPTIONS' || fail "$p's man page has no OPTIONS"
done
# Installing again (an upgrade to the same version) must work: the scripts are idempotent.
dpkg -i "${debs[@]}" >"$work/dpkg-i2.log" 2>&1 || { cat "$work/dpkg-i2.log"; fail "dpkg -i (again)"; }
token=$(cat /etc/vantage/probe.token)
step "dpkg -i (twice) and the maintainer scripts"

# 4. The installed units.
systemd-analyze verify /lib/systemd/system/vantage-probe.service /lib/systemd/system/vantage-collector.service \
  /lib/systemd/system/vantage-watch.service >"$work/verify.log" 2>&1 || { cat "$work/verify.log"; fail "systemd-analyze verify"; }
[[ ! -s $work/verify.log ]] || { cat "$work/verify.log"; fail "systemd-analyze verify printed warnings"; }
for u in vantage-probe vantage-collector vantage-watch; do
  grep -qx 'User=vantage' "/lib/systemd/system/$u.service" || fail "$u runs as root"
  grep -qx 'CapabilityBoundingSet=' "/lib/systemd/system/$u.service" || fail "$u keeps capabilities"
done
step "systemd-analyze verify"

# 5. The installed binaries as the vantage user with the installed configuration.
# setpriv executes the program itself (runuser would stay as its parent): the pid is the service's.
as_vantage() { setpriv --reuid=vantage --regid=vantage --init-groups -- "$@"; }
as_vantage /usr/bin/vantage-collector --config /etc/vantage/collector.yaml --validate >/dev/null ||
  fail "the installed collector.yaml is not valid"
as_vantage /usr/bin/vantage-probe --config /etc/vantage/probe.yaml --validate >/dev/null ||
  fail "the installed probe.yaml is not valid"
(cd /var/lib/vantage/collector &&
  exec setpriv --reuid=vantage --regid=vantage --init-groups -- /usr/bin/vantage-collector \
    --config /etc/vantage/collector.yaml) \
  >"$work/collector.log" 2>&1 &
collector_pid=$!
for _ in $(seq 100); do
  curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break
  kill -0 "$collector_pid" 2>/dev/null || { cat "$work/collector.log"; fail "the collector exited"; }
  sleep 0.1
done
curl -fsS http://127.0.0.1:8080/healthz >/dev/null || fail "the collector does not answer /healthz"
[[ $(ps -o user= -p "$collector_pid") == vantage ]] ||
  fail "the collector does not run as vantage"
# The probe checks the collector's /healthz (the example's only check) and uploads the result.
(cd /var/lib/vantage/probe &&
  as_vantage /usr/bin/vantage-probe --config /etc/vantage/probe.yaml --once --log-level warn) \
  >"$work/once.jsonl" 2>"$work/once.log" || { cat "$work/once.log"; fail "vantage-probe --once as vantage"; }
grep -q '"check":"collector-healthz"' "$work/once.jsonl" || fail "--once printed no collector-healthz result"
rows=""
for _ in $(seq 50); do
  rows=$(sqlite3 -readonly /var/lib/vantage/collector/collector.db \
    "SELECT count(*) FROM probe_results WHERE probe_id='example-probe' AND check_name='collector-healthz' AND outcome='ok'" 2>/dev/null || true)
  [[ ${rows:-0} -ge 1 ]] && break
  sleep 0.1
done
[[ ${rows:-0} -ge 1 ]] || { cat "$work/collector.log" "$work/once.log"; fail "the collector stored no result of example-probe"; }
curl -fsS http://127.0.0.1:8080/metrics | grep -q '^vantage_collector_build_info{version="'"$version"'"' ||
  fail "the collector's build_info lacks version $version"
# Files the services wrote belong to vantage; the spool is inside the state directory.
[[ $(stat -c %U /var/lib/vantage/collector/collector.db) == vantage ]] || fail "collector.db owner"
[[ $(stat -c %U /var/lib/vantage/probe/spool) == vantage ]] || fail "the probe's spool owner"
# The analysis command reads the store as vantage too.
as_vantage /usr/bin/vantage incidents --db /var/lib/vantage/collector/collector.db --json >"$work/incidents.json" ||
  fail "vantage incidents as vantage"
kill -TERM "$collector_pid"
wait "$collector_pid" || fail "the collector exited non-zero after SIGTERM: $(tail -5 "$work/collector.log")"
collector_pid=""
echo "   collector (vantage) accepted example-probe's upload: $rows row(s); token ${#token} characters"
step "the services as vantage with the example configuration"

# 6. --version of each installed binary.
for p in "${pkgs[@]}"; do
  out=$(/usr/bin/"$p" --version) || fail "$p --version exited non-zero"
  [[ $out =~ ^$p\ $version\ \([^()\ ]+\)$ ]] || fail "$p --version printed '$out'"
  echo "   $out"
done
step "--version"

# 7. Purge: only the documented state stays (docs/install.md#removal-and-purge): the user and
# group vantage, and the backup copies of the account files the first adduser writes.
dpkg --purge "${pkgs[@]}" >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg --purge"; }
installed=0
for p in "${pkgs[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || echo not-installed)
  [[ $st == not-installed ]] || fail "$p is $st after purge"
done
snapshot >"$work/after"
left=$(comm -13 "$work/before" "$work/after" | grep -vxE '/etc/(passwd|group|shadow|gshadow)-' || true)
# deb-systemd-helper does not remove the directories it created for the first enabled unit on a
# machine (/etc/systemd/system/multi-user.target.wants, its state directories): empty ones there
# are its, not ours.
dsh_dirs=""
for path in $left; do
  if [[ $path =~ ^(/etc/systemd/system|/var/lib/systemd)/ && -d $path && -z $(ls -A "$path") ]]; then
    dsh_dirs+=" $path"
  fi
done
for path in $dsh_dirs; do left=$(grep -vxF "$path" <<<"$left" || true); done
[[ -z $dsh_dirs ]] || echo "   empty directories deb-systemd-helper created and left:$dsh_dirs"
gone=$(comm -23 "$work/before" "$work/after" || true)
[[ -z $left ]] || fail "left after purge (not documented): $left"
[[ -z $gone ]] || fail "gone after purge (was there before): $gone"
getent passwd vantage >/dev/null || fail "purge removed the user vantage (docs say it stays)"
echo "   after purge: the user and group vantage (uid $uid, gid $gid) stay, as documented; nothing else"
step "dpkg --purge"
echo "test_packages: passed in $(elapsed) s"
