#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds once, runs every test, then checks
# that nothing leaked. Runs as root (the tests start real daemons and, later, containers).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "the test suite runs as root: sudo env \"PATH=\$PATH\" tests/run.sh" >&2
  exit 1
fi
tests/install-deps.sh
cargo build --all-targets
tests/leak-check.sh >/dev/null || { echo "leftovers from before the run:"; tests/leak-check.sh; exit 1; }
cargo test --all-targets
# A bounded fuzzing run of every target from the committed seed corpus (tests/fuzz).
tests/fuzz/run.sh "${FUZZ_SECONDS:-30}"
tests/package.sh
tests/leak-check.sh
