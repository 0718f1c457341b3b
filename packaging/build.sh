#!/usr/bin/env bash
# Builds the .deb and the .rpm in one command: packaging/build.sh [OUT_DIR]
# Needs cargo-deb and cargo-generate-rpm (cargo install --locked cargo-deb cargo-generate-rpm).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/packaging}
for tool in cargo-deb cargo-generate-rpm; do
  command -v "$tool" >/dev/null || { echo "missing $tool: cargo install --locked $tool" >&2; exit 1; }
done
cargo build --release --locked
bin=target/release/berth
rm -rf target/packaging/man target/packaging/completions
mkdir -p target/packaging/completions "$out"
# Packages ship a stripped copy (the release build keeps line tables for backtraces).
strip --strip-debug -o target/packaging/berth "$bin"
strip --strip-debug -o target/packaging/berth-shim target/release/berth-shim
"$bin" generate-man target/packaging/man
"$bin" completion bash > target/packaging/completions/berth.bash
"$bin" completion zsh > target/packaging/completions/_berth
"$bin" completion fish > target/packaging/completions/berth.fish
cargo deb --no-build --no-strip --output "$out"
cargo generate-rpm --output "$out"
ls -l "$out"/*.deb "$out"/*.rpm
