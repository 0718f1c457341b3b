#!/usr/bin/env bash
# A bounded fuzzing run of every target: tests/fuzz/run.sh [SECONDS-PER-TARGET] (default 60).
# Starts from the committed seed corpus (new inputs go to a scratch copy, not the tree);
# exits non-zero on the first crash, leaving it in tests/fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
# The targets keep a store in a temporary directory for the whole run: put it under $work.
work=$(mktemp -d "${TMPDIR:-/tmp}/berth-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
cargo fuzz build --dev --fuzz-dir tests/fuzz --sanitizer none
for target in manifest patch http; do
  mkdir -p "$work/$target"
  cp -r "tests/fuzz/corpus/$target/." "$work/$target/"
  echo "fuzzing $target for ${seconds}s"
  status=0
  TMPDIR=$work cargo fuzz run --dev --fuzz-dir tests/fuzz --sanitizer none "$target" "$work/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    >"$work/$target.log" 2>&1 || status=$?
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)' "$work/$target.log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$work/$target.log" >&2
    echo "fuzzing $target found a crash: see tests/fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
echo "fuzzing: no crash in ${seconds}s per target"
