#!/usr/bin/env bash
# Builds a copy of the release `berth-shim` binary linked with -no-pie, for the harness's
# shim memory figure, and prints its path:
#
#   BERTH_BENCH_NOPIE_SHIM=$(tests/bench/build-nopie-shim.sh) cargo bench --bench harness -- containers
#
# The flag is passed to the binary's final link only (`cargo rustc`, the same as the
# opt-in `BERTH_NO_PIE=1` of build.rs but without rebuilding the library), then the normal
# PIE binary is linked again so target/release/berth-shim stays what `cargo build` makes.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=target/release/berth-shim-no-pie
cargo rustc --release --bin berth-shim -- -C link-arg=-no-pie >&2
cp target/release/berth-shim "$out"
cargo build --release --bin berth-shim >&2
if command -v file >/dev/null 2>&1 && file "$out" | grep -q 'pie executable'; then
  echo "$out is still position-independent: the linker ignored -no-pie" >&2
  exit 1
fi
realpath "$out"
