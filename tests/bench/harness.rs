//! berth's benchmark harness. `cargo bench --bench harness [-- SECTION…]` measures, against
//! a real daemon on a temporary state dir, and rewrites its sections of BENCHMARKS.md:
//!
//! - creates per second over the socket (one client, and 8 concurrent clients)
//! - listing 1,000 pods (JSON and kubectl's Table form)
//! - watch event delay (a create until a watcher has it)
//! - daemon RSS idle with 1,000 objects
//! - the TUI with 1,000 pods: recomputing the table, drawing a frame, key to frame drawn
//!   (section `tui`; drawn into ratatui's TestBackend, so terminal I/O is not included)
//!
//! Medians with the spread (min–max) of repeated runs; nothing here is asserted.
//!
//! Section "workloads" (tests/bench/workloads.rs): a 100-replica Deployment from apply to
//! all Running and Ready, one rolling update of it, RSS with 100 pods, against podman
//! starting 100 containers. `cargo bench --bench harness -- workloads`.
//!
//! Section "pull" (tests/bench/pull.rs): `berth image pull` of a multi-layer image against
//! `skopeo copy` of it, from one registry on loopback.
//! Section "network" (tests/bench/network.rs): requests per second to a busybox httpd pod
//! directly, through its ClusterIP and through the Ingress. `-- network`.
//!
//! Section "containers" (tests/bench/containers.rs): container start against crun and
//! podman, shim memory against conmon. `cargo bench --bench harness -- containers` runs
//! only that section (`-- api` only the API one).
//!
//! Sections "idle" and "scale" (tests/bench/idle.rs): the daemon's RSS, CPU, disk writes
//! and store commits while idle with 0 and 100 pods; creates and lists at 1,000 and
//! 10,000 objects. Section "soak" (tests/bench/soak.rs): 1,000 pod lifecycles and what
//! they leave behind.
//!
//! With no section named, every section runs and the budgets of DESIGN.md §6 are judged
//! from this run's figures (tests/bench/budgets.rs). `tests/bench/run.sh` does that and
//! the full fault-injection run.

mod budgets;
#[path = "../common/mod.rs"]
mod common;
mod containers;
mod idle;
mod network;
mod pull;
mod soak;
mod workloads;

use std::time::{Duration, Instant};

use berth::api::registry::by_kind;
use berth::client::{Client, ListOptions};
use common::*;
use serde_json::json;

struct Figure {
    what: String,
    median: String,
    spread: String,
    budget: String,
}

fn stats(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = samples.len();
    let median = if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    };
    (median, samples[0], samples[n - 1])
}

fn pod(name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}})
}

/// A field of /proc/PID/status in KiB (VmRSS, RssAnon, RssFile).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// Idle RSS after a settling pause: (total, anonymous, file-mapped) in MiB.
fn idle_rss(pid: u32) -> (f64, f64, f64) {
    // The daemon trims freed heap every 15 s; wait for one trim.
    std::thread::sleep(Duration::from_secs(16));
    let mib = |f| status_kib(pid, f) as f64 / 1024.0;
    (mib("VmRSS"), mib("RssAnon"), mib("RssFile"))
}

async fn creates_per_second(client: &Client, prefix: &str, n: usize, workers: usize) -> f64 {
    let rt = by_kind("v1", "ConfigMap").expect("kind");
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let client = client.clone();
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(workers) {
                let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("{prefix}-{i}")}, "data": {"k": "v"}});
                client.create(rt, Some("default"), &cm).await.expect("create");
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would run this too: skip then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |s: &str| named.is_empty() || named.iter().any(|n| n == s);
    if wanted("tui") {
        tui_figures();
    }
    if wanted("api") {
        api_section();
    }
    if wanted("containers") {
        let md = containers::run_section();
        println!("{md}");
        update_benchmarks_md("containers", &md);
    }
    if wanted("workloads") {
        let md = workloads::run_section();
        println!("{md}");
        update_benchmarks_md("workloads", &md);
    }
    if wanted("network") {
        let md = network::run_section();
        println!("{md}");
        update_benchmarks_md("network", &md);
    }
    if wanted("pull") {
        let md = pull::run_section();
        println!("{md}");
        update_benchmarks_md("pull", &md);
    }
    if wanted("idle") {
        let md = idle::run_idle_section();
        println!("{md}");
        update_benchmarks_md("idle", &md);
    }
    if wanted("scale") {
        let md = idle::run_scale_section();
        println!("{md}");
        update_benchmarks_md("scale", &md);
    }
    if wanted("soak") {
        let md = soak::run_section();
        println!("{md}");
        update_benchmarks_md("soak", &md);
    }
    // The budgets are judged only from a full run, so that every verdict is of one run.
    if named.is_empty() {
        let md = budgets::section();
        println!("{md}");
        update_benchmarks_md("budgets", &md);
    }
}

/// A two-thread runtime for concurrent API clients.
fn clients_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn api_section() {
    let d = TestDaemon::start();
    let client = d.client();
    let r = clients_runtime();
    let mut figures = Vec::new();

    let idle_empty = rss_kib(d.pid());
    let pods = by_kind("v1", "Pod").expect("kind");
    r.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..8 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                for i in (w..1000).step_by(8) {
                    client
                        .create(pods, Some("default"), &pod(&format!("p{i}")))
                        .await
                        .expect("create pod");
                }
            }));
        }
        for t in tasks {
            t.await.expect("worker");
        }
    });
    let (total, anon, file) = idle_rss(d.pid());
    figures.push(Figure {
        what: "Daemon RSS, idle, with 1,000 pod objects stored (0 running)".into(),
        median: format!("{total:.1} MiB"),
        spread: format!("anon {anon:.1} + LMDB/file pages {file:.1}"),
        budget: "≤ 20 MiB idle / ≤ 50 MiB with 100 pods".into(),
    });
    for (workers, label) in [(1, "1 client"), (8, "8 concurrent clients")] {
        let samples: Vec<f64> = (0..5)
            .map(|round| {
                r.block_on(creates_per_second(
                    &client,
                    &format!("w{workers}r{round}"),
                    400,
                    workers,
                ))
            })
            .collect();
        let (m, lo, hi) = stats(samples);
        budgets::record(
            "API create throughput ≥ 2,000 objects/s",
            format!("{m:.0}/s ({label})"),
            m >= 2000.0,
        );
        figures.push(Figure {
            what: format!("API creates per second ({label}, ConfigMaps, fsync'd commits)"),
            median: format!("{m:.0}/s"),
            spread: format!("{lo:.0}–{hi:.0}"),
            budget: "≥ 2,000 objects/s".into(),
        });
    }

    let mut list_ms = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let l = r
            .block_on(client.list(pods, Some("default"), &ListOptions::default()))
            .expect("list");
        list_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(l.items.len(), 1000);
    }
    let (m, lo, hi) = stats(list_ms);
    budgets::record(
        "API list 1,000 pods ≤ 20 ms",
        format!("{m:.1} ms (JSON)"),
        m <= 20.0,
    );
    figures.push(Figure {
        what: "List 1,000 pods (JSON, client round trip incl. decode)".into(),
        median: format!("{m:.1} ms"),
        spread: format!("{lo:.1}–{hi:.1}"),
        budget: "≤ 20 ms".into(),
    });
    let mut table_ms = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let (code, _, _) = raw_get(
            &d,
            "/api/v1/namespaces/default/pods?limit=500",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        );
        assert_eq!(code, 200);
        table_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (m, lo, hi) = stats(table_ms);
    budgets::record(
        "API list 1,000 pods ≤ 20 ms",
        format!("{m:.1} ms (kubectl's Table)"),
        m <= 20.0,
    );
    figures.push(Figure {
        what: "List 1,000 pods as kubectl's Table".into(),
        median: format!("{m:.1} ms"),
        spread: format!("{lo:.1}–{hi:.1}"),
        budget: "≤ 20 ms".into(),
    });

    let cms = by_kind("v1", "ConfigMap").expect("kind");
    let delays: Vec<f64> = r.block_on(async {
        let list = client.list(cms, Some("default"), &ListOptions::default()).await.expect("list");
        let mut w = client.watch(cms, Some("default"), &ListOptions::default(), &list.resource_version).await.expect("watch");
        let mut out = Vec::new();
        for i in 0..50 {
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("watched-{i}")}});
            let t = Instant::now();
            client.create(cms, Some("default"), &cm).await.expect("create");
            w.next().await.expect("event").expect("ok");
            out.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        out
    });
    let (m, lo, hi) = stats(delays);
    figures.push(Figure {
        what: "Create sent → the watcher has the event (includes the fsync'd commit)".into(),
        median: format!("{m:.2} ms"),
        spread: format!("{lo:.2}–{hi:.2}"),
        budget: "—".into(),
    });

    let objects = r
        .block_on(client.list(cms, Some("default"), &ListOptions::default()))
        .expect("list")
        .items
        .len()
        + 1000;
    let (total, anon, file) = idle_rss(d.pid());
    figures.push(Figure {
        what: format!("Daemon RSS, idle, after all of the above ({objects} objects)"),
        median: format!("{total:.1} MiB"),
        spread: format!("anon {anon:.1} + LMDB/file pages {file:.1}"),
        budget: "—".into(),
    });
    figures.push(Figure {
        what: "Daemon RSS, idle, empty store".into(),
        median: format!("{:.1} MiB", idle_empty as f64 / 1024.0),
        spread: "one sample".into(),
        budget: "≤ 20 MiB".into(),
    });

    let mut md = String::new();
    md.push_str(
        "| what | median | spread (min–max) | budget (DESIGN.md §6) |\n|---|---|---|---|\n",
    );
    for f in &figures {
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            f.what, f.median, f.spread, f.budget
        ));
    }
    let host = format!(
        "Measured {} on {} cores, release build (`cargo bench --bench harness`), daemon state on {}.\n\n",
        berth::api::meta::now_rfc3339(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        d.dir.path().display()
    );
    println!("{host}{md}");
    update_benchmarks_md("api", &format!("{host}{md}"));
}

fn bench_pod(i: usize) -> serde_json::Value {
    let phase = ["Running", "Running", "Running", "Pending", "Succeeded"][i % 5];
    let namespace = ["default", "apps", "monitoring"][i % 3];
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("web-7d4b9c-{i:05}"), "namespace": namespace,
            "uid": format!("uid-{i}"), "resourceVersion": format!("{}", 100 + i),
            "creationTimestamp": "2026-11-23T09:00:00Z", "labels": {"app": "web", "pod-template-hash": "7d4b9c"}},
        "spec": {"nodeName": "node1", "containers": [{"name": "web", "image": "berth.local/busybox:latest",
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
        "status": {"phase": phase, "podIP": format!("10.88.{}.{}", i / 250, i % 250),
            "containerStatuses": [{"name": "web", "ready": phase == "Running", "restartCount": i % 4,
                "image": "berth.local/busybox:latest", "imageID": "",
                "state": {"running": {"startedAt": "2026-11-23T09:00:01Z"}}}]}})
}

/// Frame cost of the TUI with 1,000 pods, at 80×24 and 160×48.
fn tui_figures() {
    use berth::tui::actions::handle_key;
    use berth::tui::state::{Source, State};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    let now: jiff::Timestamp = "2026-11-23T10:00:00Z".parse().expect("time");
    let mut state = State::new(now, true);
    let pods = Source::resolve("pods").expect("pods");
    state.replace_all(&pods, (0..1000).map(bench_pod).collect());
    let mut figures = Vec::new();
    for (what, dirty) in [
        (
            "render all 1,000 rows (after a watch event or the 1 s tick)",
            true,
        ),
        (
            "rearrange the rows (a namespace, filter or sort key)",
            false,
        ),
    ] {
        let mut refresh = Vec::new();
        for _ in 0..50 {
            state.dirty = dirty;
            let t = Instant::now();
            state.refresh_table();
            refresh.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        assert_eq!(state.table.rows.len(), 1000);
        let (m, lo, hi) = stats(refresh);
        figures.push(Figure {
            what: format!("TUI: {what}"),
            median: format!("{m:.2} ms"),
            spread: format!("{lo:.2}–{hi:.2}"),
            budget: "—".into(),
        });
    }
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let mut term = Terminal::new(TestBackend::new(w, h)).expect("backend");
        let mut draw = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            term.draw(|f| berth::tui::views::draw(f, &state))
                .expect("draw");
            draw.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let (m, lo, hi) = stats(draw);
        budgets::record(
            "TUI frame with 1,000 pods ≤ 5 ms",
            format!("{m:.2} ms at {w}×{h}"),
            m <= 5.0,
        );
        figures.push(Figure {
            what: format!("TUI: draw one frame, 1,000 pods, {w}×{h}"),
            median: format!("{m:.2} ms"),
            spread: format!("{lo:.2}–{hi:.2}"),
            budget: "≤ 5 ms".into(),
        });
        let height = berth::tui::views::body_height(ratatui::layout::Rect::new(0, 0, w, h));
        let mut keys = Vec::new();
        for i in 0..200 {
            // Down, and every tenth key a filter keystroke, which recomputes the table.
            let key = if i % 10 == 0 {
                KeyEvent::new(KeyCode::Char('/'), KeyModifiers::NONE)
            } else if i % 10 == 1 {
                KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)
            } else {
                KeyEvent::new(KeyCode::Char('j'), KeyModifiers::NONE)
            };
            let t = Instant::now();
            let _ = handle_key(&mut state, key, height);
            term.draw(|f| berth::tui::views::draw(f, &state))
                .expect("draw");
            keys.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let (m, lo, hi) = stats(keys);
        figures.push(Figure {
            what: format!("TUI: key handled → frame drawn, 1,000 pods, {w}×{h}"),
            median: format!("{m:.2} ms"),
            spread: format!("{lo:.2}–{hi:.2}"),
            budget: "well under 16 ms".into(),
        });
    }
    let mut md = String::new();
    md.push_str(
        "| what | median | spread (min–max) | budget (DESIGN.md §6) |\n|---|---|---|---|\n",
    );
    for f in &figures {
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            f.what, f.median, f.spread, f.budget
        ));
    }
    let host = format!(
        "Measured {} on {} cores, release build (`cargo bench --bench harness`); frames drawn into ratatui's TestBackend (no terminal I/O).\n\n",
        berth::api::meta::now_rfc3339(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
    );
    println!("{host}{md}");
    update_benchmarks_md("tui", &format!("{host}{md}"));
}

/// Replaces the text between `<!-- NAME:start -->` and `<!-- NAME:end -->` in BENCHMARKS.md.
fn update_benchmarks_md(name: &str, body: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let (start, end) = (
        format!("<!-- {name}:start -->"),
        format!("<!-- {name}:end -->"),
    );
    let new = match (text.find(&start), text.find(&end)) {
        (Some(s), Some(e)) if e > s => format!("{}{start}\n{body}{}", &text[..s], &text[e..]),
        _ => format!("{text}\n{start}\n{body}{end}\n"),
    };
    if let Err(e) = std::fs::write(&path, new) {
        eprintln!("cannot update {}: {e}", path.display());
    }
}
