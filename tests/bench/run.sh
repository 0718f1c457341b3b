#!/usr/bin/env bash
# The proof under load, in one command (as root): every section of the benchmark harness
# (each figure beside its peer: crun, runc, podman, conmon, skopeo), the budgets of
# DESIGN.md §6 judged from that run, the soak, the full fault-injection run (50 daemon
# kills during churn) and a longer fuzzing run. Every result is written into BENCHMARKS.md.
#
#   tests/bench/run.sh                      # about 30–40 minutes on 2 cores
#   FAULT_KILLS=50 FUZZ_SECONDS=300 BENCH_SOAK_PODS=1000 tests/bench/run.sh   # the defaults
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "$(id -u)" -ne 0 ]; then
  echo "the benchmarks run as root: sudo env \"PATH=\$PATH\" tests/bench/run.sh" >&2
  exit 1
fi
kills=${FAULT_KILLS:-50}
fuzz_seconds=${FUZZ_SECONDS:-300}
tests/install-deps.sh
# The peers measured beside berth.
missing=()
for p in crun runc podman; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Replaces the text between <!-- NAME:start --> and <!-- NAME:end --> with FILE's.
section() {
  local name=$1 file=$2
  awk -v name="$name" -v file="$file" '
    $0 == "<!-- " name ":start -->" { print; while ((getline line < file) > 0) print line; skip = 1; next }
    $0 == "<!-- " name ":end -->" { skip = 0 }
    !skip { print }
  ' BENCHMARKS.md >"$work/B.md"
  if ! grep -qx "<!-- $name:start -->" BENCHMARKS.md; then
    { echo; echo "<!-- $name:start -->"; cat "$file"; echo "<!-- $name:end -->"; } >>"$work/B.md"
  fi
  cp "$work/B.md" BENCHMARKS.md
}

# 1. Every benchmark section, then the budgets from this run.
cargo bench --bench harness

# 2. Faults: the daemon SIGKILLed $kills times during churn, and the other faults.
status=0
BERTH_FAULT_KILLS=$kills BERTH_FAULT_REPORT=$work/churn.txt \
  cargo test --release --test faults -- --test-threads=1 >"$work/faults.log" 2>&1 || status=$?
{
  echo "Run $(date -u +%Y-%m-%dT%H:%M:%SZ): \`BERTH_FAULT_KILLS=$kills cargo test --release --test faults\` (tests/faults.rs)."
  echo
  echo "| case | result |"
  echo "|---|---|"
  grep -E '^test [a-z_]+ \.\.\. ' "$work/faults.log" | sed -E 's/^test ([a-z_]+) \.\.\. (.*)$/| `\1` | \2 |/'
  echo
  if [ -f "$work/churn.txt" ]; then sed 's/^/Churn: /' "$work/churn.txt"; fi
} >"$work/faults.md"
section faults "$work/faults.md"
[ "$status" -eq 0 ] || { tail -n 80 "$work/faults.log" >&2; echo "the fault suite failed" >&2; exit 1; }

# 3. A longer fuzzing run of every target.
status=0
tests/fuzz/run.sh "$fuzz_seconds" >"$work/fuzz.log" 2>&1 || status=$?
{
  echo "Run $(date -u +%Y-%m-%dT%H:%M:%SZ): \`tests/fuzz/run.sh $fuzz_seconds\` (${fuzz_seconds} s per target, from the committed seed corpus)."
  echo
  echo '```'
  grep -E '^(fuzzing|stat::number_of_executed_units|stat::peak_rss_mb)' "$work/fuzz.log" || true
  echo '```'
} >"$work/fuzz.md"
section fuzz "$work/fuzz.md"
[ "$status" -eq 0 ] || { tail -n 80 "$work/fuzz.log" >&2; echo "fuzzing found a crash" >&2; exit 1; }
tests/leak-check.sh
echo "BENCHMARKS.md updated"
