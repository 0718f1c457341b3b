#!/usr/bin/env bash
# Quick start: runs a berth daemon from this checkout with its state in /tmp/berth-demo,
# applies the demo workload and shows it. Run from the checkout after `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=./target/release/berth
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 1; }
state=/tmp/berth-demo
export BERTH_SOCKET=$state/berth.sock
mkdir -p "$state"
if ! "$bin" version >/dev/null 2>&1; then
  "$bin" daemon --state-dir "$state/state" >"$state/daemon.log" 2>&1 &
  echo "berth daemon started (pid $!, log $state/daemon.log)"
  for _ in $(seq 100); do "$bin" version >/dev/null 2>&1 && break; sleep 0.1; done
fi
if ! "$bin" image inspect berth.local/busybox:latest >/dev/null 2>&1; then
  tests/images/build-busybox.sh "$state/busybox.tar"
  "$bin" image import "$state/busybox.tar"
fi
"$bin" apply -f assets/demo/workload.yaml
"$bin" get all -n demo
echo
echo "berth is running: BERTH_SOCKET=$BERTH_SOCKET $bin get all -A"
echo "the demo web app, through berth's Ingress: curl -H 'Host: web.demo.localhost' http://127.0.0.1/"
echo "stop it with: kill \$(cat $state/state/daemon.lock)"
echo "then take its pods, mounts and network down with: $bin reset --state-dir $state/state --yes"
# On a terminal, open the TUI (q quits; the daemon keeps running).
if [ -t 0 ] && [ -t 1 ]; then
  echo "opening the terminal UI (q quits) ..."
  sleep 1
  exec "$bin" tui
fi
