#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need (only those missing).
set -euo pipefail
packages=(
  build-essential   # cc for -sys crates
  pkg-config
  libseccomp-dev    # libcontainer's seccomp support links libseccomp
  procps            # pgrep for the leak check
  passwd            # groupadd for the access-control test
  busybox-static    # /bin/busybox for the test image (tests/images/build-busybox.sh)
  rpm               # rpm -qp to inspect the built .rpm (tests/package.sh)
  systemd           # systemd-analyze verify of the installed unit
  tmux              # drives the real TUI in tests/tui.rs
  util-linux        # setpriv: the TUI as another user (tests/tui.rs)
  tzdata            # IANA zones for CronJob timeZone (unit and integration tests)
  nftables          # nft: the pod network, Services and NetworkPolicy tables
  iproute2          # ip: the network tests look at links and namespaces
  curl              # the Ingress tests (--resolve, --cacert)
  openssl           # the Ingress and registry tests make their TLS certificates
  docker-registry   # a real registry on loopback for the pull tests (tests/registry.rs)
  skopeo            # pushes the test image into it
  apache2-utils     # htpasswd for the registry's auth
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The package builders (crates.io), for tests/package.sh.
for tool in cargo-deb cargo-generate-rpm; do
  command -v "$tool" >/dev/null || cargo install --locked --quiet "$tool"
done
