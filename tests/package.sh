#!/usr/bin/env bash
# The packages for real (root): builds the .deb and .rpm, inspects the .rpm; builds the
# previous release's .deb (the commit in packaging/previous-release), installs it, runs a
# pod with its daemon, upgrades to this .deb with dpkg and checks that the pod was not
# restarted and its data is intact; checks files, group, unit, `berth version` against a
# daemon of the installed binary and `berth doctor`, then removes (dpkg -r) and purges
# (dpkg -P) and checks what is left each time. Refuses to run where berth is installed
# already.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "package test: $*" >&2; exit 1; }
if dpkg -s berth >/dev/null 2>&1; then
  fail "a berth package is installed on this machine; not touching it"
fi
if getent group berth >/dev/null 2>&1; then
  fail "a berth group exists already; the purge check would remove it: not touching it"
fi
out=$(mktemp -d /tmp/berth-test-pkg.XXXXXX)
# Its own pod network too (outside the test daemons' 10.200.0.0/14), removed at the end.
pkg_bridge=bt$(printf '%06x' $(($$ % 16777216)))
pkg_table=berth_t${pkg_bridge#bt}
cleanup() {
  [ -n "${daemon_pid:-}" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  # A run that failed part-way may leave the test node's pod: take the node apart.
  if [ -n "${state:-}" ] && [ -d "$state/lib" ]; then
    for b in /usr/bin/berth target/release/berth; do
      [ -x "$b" ] && { "$b" reset --config "$state/config.yaml" --yes >/dev/null 2>&1 || true; break; }
    done
  fi
  ip link del "$pkg_bridge" 2>/dev/null || true
  nft delete table ip "$pkg_table" 2>/dev/null || true
  nft delete table ip "${pkg_table}_svc" 2>/dev/null || true
  nft delete table ip "${pkg_table}_pol" 2>/dev/null || true
  dpkg -P berth >/dev/null 2>&1 || true
  rm -rf "$out"
}
trap cleanup EXIT
# The previous release, built from its own sources (sharing this tree's target directory,
# so only berth itself compiles again), labelled as the older version it is.
prev=$(cat packaging/previous-release)
echo "== build the previous release ${prev:0:12}"
git cat-file -e "$prev^{commit}" 2>/dev/null ||
  fail "the previous release $prev is not in this clone's history (a shallow clone? git fetch --unshallow)"
mkdir -p "$out/prev"
git archive "$prev" | tar -x -C "$out/prev"
ln -s "$PWD/target" "$out/prev/target"
(cd "$out/prev" && packaging/build.sh "$out/prev-pkg") >"$out/prev-build.log" 2>&1 ||
  { tail -40 "$out/prev-build.log"; fail "building the previous release failed"; }
dpkg-deb -R "$out"/prev-pkg/berth_*.deb "$out/prev-deb"
sed -i 's/^Version: \(.*\)$/Version: \1~prev/' "$out/prev-deb/DEBIAN/control"
dpkg-deb -b "$out/prev-deb" "$out/berth-prev.deb" >/dev/null
rm -rf "$out/prev" "$out/prev-deb"

echo "== build this release"
packaging/build.sh "$out" >"$out/build.log" 2>&1 || { cat "$out/build.log"; fail "packaging/build.sh failed"; }
deb=$(ls "$out"/berth_*.deb)
rpm=$(ls "$out"/berth-*.rpm)

echo "== rpm: files and scripts"
files=$(rpm -qpl "$rpm")
for f in /usr/bin/berth /usr/bin/berth-shim /usr/lib/systemd/system/berth.service /etc/berth/config.yaml \
  /usr/share/man/man1/berth.1 /usr/lib/berth/hooks.sh /usr/share/bash-completion/completions/berth; do
  grep -qx "$f" <<<"$files" || fail "the rpm lacks $f"
done
scripts=$(rpm -qp --scripts "$rpm")
grep -q "hooks.sh installed" <<<"$scripts" || fail "the rpm has no post-install script"
grep -q "hooks.sh removing" <<<"$scripts" || fail "the rpm has no pre-uninstall script"
rpm -qp --requires "$rpm" | grep -q libseccomp || fail "the rpm does not require libseccomp"
rpm -qp --requires "$rpm" | grep -q nftables || fail "the rpm does not require nftables"

# A node of its own: its own places for everything, so the host's defaults (/run/berth,
# /berth cgroups) stay untouched.
state="$out/state"
mkdir -p "$state/host"
cgroup_parent="berth-test-pkg-$$"
cat >"$state/config.yaml" <<EOC
stateDir: $state/lib
socket: $state/berth.sock
logDir: $state/logs
runDir: $state/run
cgroupParent: /$cgroup_parent
bridgeName: $pkg_bridge
podCIDR: 10.199.255.0/24
serviceCIDR: 10.199.254.0/24
serviceNodePortRange: 26400-26415
nftablesTable: $pkg_table
ingressHttpPort: 0
ingressHttpsPort: 0
EOC
export BERTH_SOCKET="$state/berth.sock"
start_daemon() {
  /usr/bin/berth daemon --config "$state/config.yaml" >>"$out/daemon.log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 100); do /usr/bin/berth version >/dev/null 2>&1 && return; sleep 0.1; done
  cat "$out/daemon.log"; fail "the daemon did not start"
}
stop_daemon() {
  kill "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=
}
pod_field() { /usr/bin/berth get pod keeper -o json | python3 -c "import json,sys; p=json.load(sys.stdin); print($1)"; }

echo "== deb: install the previous release and run a pod"
dpkg -i "$out/berth-prev.deb" >/dev/null
start_daemon
tests/images/build-busybox.sh "$out/busybox.tar" >/dev/null
/usr/bin/berth image import "$out/busybox.tar" >/dev/null
/usr/bin/berth apply -f - >/dev/null <<EOP
apiVersion: v1
kind: Pod
metadata:
  name: keeper
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, 'cat /proc/sys/kernel/random/uuid > /scratch/run-id; cp /scratch/run-id /host/run-id; sleep 3600']
    volumeMounts:
    - {name: scratch, mountPath: /scratch}
    - {name: host, mountPath: /host}
  volumes:
  - {name: scratch, emptyDir: {}}
  - {name: host, hostPath: {path: $state/host}}
EOP
for _ in $(seq 300); do [ -s "$state/host/run-id" ] && break; sleep 0.2; done
[ -s "$state/host/run-id" ] || { cat "$out/daemon.log"; fail "the pod did not start under the previous release"; }
for _ in $(seq 100); do [ "$(pod_field 'p["status"]["phase"]')" = Running ] && break; sleep 0.2; done
before="$(pod_field 'p["metadata"]["uid"], p["status"]["containerStatuses"][0]["containerID"], p["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]')"
run_id=$(cat "$state/host/run-id")

echo "== deb: upgrade to this release with the pod running"
# What systemd does around the package's upgrade: stop the daemon (KillMode=process leaves
# containers running), install, start the new binary.
stop_daemon
dpkg-deb -f "$deb" Depends | grep -q libseccomp2 || fail "the deb does not depend on libseccomp2"
dpkg-deb -f "$deb" Depends | grep -q nftables || fail "the deb does not depend on nftables"
dpkg -i "$deb"
dpkg-query -W -f='${Version}\n' berth | grep -qv '~prev' || fail "dpkg did not upgrade the package"
start_daemon
for _ in $(seq 100); do [ "$(pod_field 'p["status"]["phase"]')" = Running ] && break; sleep 0.2; done
sleep 2
after="$(pod_field 'p["metadata"]["uid"], p["status"]["containerStatuses"][0]["containerID"], p["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]')"
[ "$before" = "$after" ] || fail "the pod was restarted by the upgrade: before [$before], after [$after]"
[ "$(pod_field 'p["status"]["containerStatuses"][0]["restartCount"]')" = 0 ] || fail "the pod restarted"
[ "$(/usr/bin/berth exec keeper -- cat /scratch/run-id)" = "$run_id" ] || fail "the pod's emptyDir lost its data"
[ "$(cat "$state/host/run-id")" = "$run_id" ] || fail "the pod's hostPath data changed"
grep -q "store migrated\|berth daemon ready" "$out/daemon.log" || fail "no sign of the new daemon in its log"
for f in /usr/bin/berth /usr/bin/berth-shim /lib/systemd/system/berth.service /etc/berth/config.yaml \
  /usr/share/man/man1/berth.1.gz /usr/share/man/man1/berth-get.1.gz /usr/lib/berth/hooks.sh \
  /usr/share/bash-completion/completions/berth /usr/share/zsh/vendor-completions/_berth; do
  [ -e "$f" ] || fail "$f is not installed"
done
dpkg-query -W -f='${Conffiles}\n' berth | grep -q /etc/berth/config.yaml || fail "config.yaml is not a conffile"
getent group berth >/dev/null || fail "the berth group was not created"
[ -d /var/lib/berth ] || fail "/var/lib/berth was not created"
systemd-analyze verify /lib/systemd/system/berth.service || fail "systemd-analyze verify failed"
cmp -s /etc/berth/config.yaml assets/config.yaml || fail "the installed config differs from assets/config.yaml"

echo "== the installed binary runs a daemon"
version=$(/usr/bin/berth version) || { cat "$out/daemon.log"; fail "berth version failed"; }
grep -q "Client Version: v" <<<"$version" || fail "no client version: $version"
grep -q "Server Version: v" <<<"$version" || fail "no server version: $version"
/usr/bin/berth reset --config "$state/config.yaml" --yes >/dev/null 2>&1 &&
  fail "berth reset ran while the daemon was running"
stop_daemon
echo "== the installed binary resets the node"
/usr/bin/berth reset --config "$state/config.yaml" --yes || fail "berth reset failed"
for d in /sys/fs/cgroup/*/"$cgroup_parent" /sys/fs/cgroup/unified/"$cgroup_parent" "$state/lib" "$state/run"; do
  [ ! -e "$d" ] || fail "$d is left after berth reset"
done
ip link show "$pkg_bridge" >/dev/null 2>&1 && fail "the bridge $pkg_bridge is left after berth reset"
nft list tables | grep -q "$pkg_table" && fail "the nftables table $pkg_table is left after berth reset"
/usr/bin/berth doctor --no-color || fail "berth doctor reports a failure"

echo "== deb: remove keeps config and state"
dpkg -r berth
[ ! -e /usr/bin/berth ] || fail "/usr/bin/berth is left after dpkg -r"
[ -e /etc/berth/config.yaml ] || fail "dpkg -r removed the conffile"
[ -d /var/lib/berth ] || fail "dpkg -r removed the state"
getent group berth >/dev/null || fail "dpkg -r removed the group"

echo "== deb: purge removes everything"
dpkg -P berth
for p in /etc/berth /var/lib/berth /var/log/berth /usr/lib/berth /lib/systemd/system/berth.service; do
  [ ! -e "$p" ] || fail "$p is left after dpkg -P"
done
! getent group berth >/dev/null || fail "the berth group is left after dpkg -P"
echo "package test: 1 passed, 0 failed"
