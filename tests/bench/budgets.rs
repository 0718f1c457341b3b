//! The budgets of DESIGN.md §6, judged from this run's figures: each section records what it
//! measured against its budget, and a full run (`tests/bench/run.sh`, or `cargo bench
//! --bench harness` with no section named) writes the verdicts into BENCHMARKS.md.

use std::sync::Mutex;

/// One budget's verdict.
struct Verdict {
    budget: &'static str,
    measured: String,
    met: bool,
}

static VERDICTS: Mutex<Vec<Verdict>> = Mutex::new(Vec::new());

/// Every budget of DESIGN.md §6, in its order.
const BUDGETS: &[&str] = &[
    "pod start ≤ 3 × `crun run`",
    "100-replica Deployment → all Running ≤ 4 s",
    "shim ≤ 0.5 MB PSS",
    "exec probe ≤ 2 × `crun exec`",
    "daemon RSS idle, 0 pods ≤ 20 MiB",
    "daemon RSS idle, 100 pods ≤ 50 MiB",
    "daemon CPU idle ≤ 0.2 % of a core",
    "no store commits while idle (disk writes ≈ 0 B/s)",
    "API list 1,000 pods ≤ 20 ms",
    "API create throughput ≥ 2,000 objects/s",
    "TUI frame with 1,000 pods ≤ 5 ms",
];

/// Records this run's figure for `budget` (one of [`BUDGETS`]).
pub fn record(budget: &'static str, measured: String, met: bool) {
    debug_assert!(BUDGETS.contains(&budget), "unknown budget {budget}");
    if let Ok(mut v) = VERDICTS.lock() {
        v.retain(|x| x.budget != budget || x.measured != measured);
        v.push(Verdict {
            budget,
            measured,
            met,
        });
    }
}

/// The budgets table: each budget, what this run measured, met or not.
pub fn section() -> String {
    let verdicts = VERDICTS.lock().map(|v| {
        v.iter()
            .map(|x| (x.budget, x.measured.clone(), x.met))
            .collect::<Vec<_>>()
    });
    let verdicts = verdicts.unwrap_or_default();
    let mut md = format!(
        "Judged {} from the figures of this run (`tests/bench/run.sh`).\n\n| budget (DESIGN.md §6) | measured | verdict |\n|---|---|---|\n",
        berth::api::meta::now_rfc3339()
    );
    for b in BUDGETS {
        let mine: Vec<_> = verdicts.iter().filter(|(x, _, _)| x == b).collect();
        if mine.is_empty() {
            md.push_str(&format!("| {b} | not measured in this run | — |\n"));
            continue;
        }
        let measured: Vec<String> = mine.iter().map(|(_, m, _)| m.clone()).collect();
        let verdict = if mine.iter().all(|(_, _, met)| *met) {
            "**met**"
        } else if mine.iter().any(|(_, _, met)| *met) {
            "**partly met**"
        } else {
            "**not met**"
        };
        md.push_str(&format!("| {b} | {} | {verdict} |\n", measured.join("; ")));
    }
    md
}
