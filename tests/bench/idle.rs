//! Sections "idle" and "scale".
//!
//! idle: the daemon left alone, first with no pods, then with 100 running: its RSS, its CPU
//! (utime + stime from /proc/PID/stat over the window), the bytes it wrote
//! (/proc/PID/io `write_bytes`, what reached the block layer) and the store commits (the
//! store's revision) over `BENCH_IDLE_SECONDS` (default 60) each.
//!
//! scale: 10,000 ConfigMaps created by 8 concurrent clients (the rate), then listed (the
//! latency of a list of 10,000 and of a page of 1,000).

use std::time::{Duration, Instant};

use berth::api::registry::by_kind;
use berth::client::{Client, ListOptions};
use serde_json::json;

use crate::budgets;
use crate::common::TestDaemon;

fn window() -> Duration {
    Duration::from_secs(
        std::env::var("BENCH_IDLE_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    )
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat: after "pid (comm) ", state is index 0, utime 11, stime 12.
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    ticks / hz
}

fn write_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("write_bytes: "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn revision(client: &Client, r: &tokio::runtime::Runtime) -> u64 {
    let rt = by_kind("v1", "Namespace").expect("kind");
    r.block_on(client.list(rt, None, &ListOptions::default()))
        .ok()
        .and_then(|l| l.resource_version.parse().ok())
        .unwrap_or(0)
}

struct Idle {
    rss_mib: f64,
    cpu_percent: f64,
    bytes_per_min: f64,
    commits: u64,
}

/// Watches the daemon for one window without touching it (one list at each end).
fn measure_idle(d: &TestDaemon, r: &tokio::runtime::Runtime) -> Idle {
    let pid = d.pid();
    let client = d.client();
    let w = window();
    let rev0 = revision(&client, r);
    let (cpu0, io0, t0) = (cpu_seconds(pid), write_bytes(pid), Instant::now());
    let mut rss = Vec::new();
    while t0.elapsed() < w {
        std::thread::sleep(Duration::from_secs(5).min(w));
        rss.push(crate::rss_kib(pid) as f64 / 1024.0);
    }
    let secs = t0.elapsed().as_secs_f64();
    let (cpu1, io1) = (cpu_seconds(pid), write_bytes(pid));
    let rev1 = revision(&client, r);
    let (rss_mib, _, _) = crate::stats(rss);
    Idle {
        rss_mib,
        cpu_percent: (cpu1 - cpu0) / secs * 100.0,
        bytes_per_min: (io1.saturating_sub(io0)) as f64 / secs * 60.0,
        commits: rev1.saturating_sub(rev0),
    }
}

fn deployment(replicas: usize) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: idle}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: idle}}}}
  template:
    metadata: {{labels: {{app: idle}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: berth.local/busybox:latest
        imagePullPolicy: Never
        command: [sleep, '86400']
"
    )
}

fn running_pods(d: &TestDaemon) -> usize {
    d.get_json(&["pods", "-l", "app=idle"])
        .and_then(|v| {
            v["items"].as_array().map(|items| {
                items
                    .iter()
                    .filter(|p| p["status"]["phase"] == "Running")
                    .count()
            })
        })
        .unwrap_or(0)
}

pub fn run_idle_section() -> String {
    let d = TestDaemon::start();
    let r = crate::common::runtime();
    d.import_busybox();
    // Let the start settle (the node object, the image import).
    std::thread::sleep(Duration::from_secs(10));
    let empty = measure_idle(&d, &r);
    d.apply_yaml("idle", &deployment(100));
    let t = Instant::now();
    while running_pods(&d) < 100 && t.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_secs(1));
    }
    let running = running_pods(&d);
    std::thread::sleep(Duration::from_secs(20));
    let full = measure_idle(&d, &r);
    let secs = window().as_secs();
    budgets::record(
        "daemon RSS idle, 0 pods ≤ 20 MiB",
        format!("{:.1} MiB", empty.rss_mib),
        empty.rss_mib <= 20.0,
    );
    budgets::record(
        "daemon RSS idle, 100 pods ≤ 50 MiB",
        format!("{:.1} MiB ({running} pods running)", full.rss_mib),
        full.rss_mib <= 50.0 && running == 100,
    );
    budgets::record(
        "daemon CPU idle ≤ 0.2 % of a core",
        format!(
            "{:.3} % (0 pods), {:.3} % (100 pods)",
            empty.cpu_percent, full.cpu_percent
        ),
        empty.cpu_percent <= 0.2 && full.cpu_percent <= 0.2,
    );
    budgets::record(
        "no store commits while idle (disk writes ≈ 0 B/s)",
        format!(
            "{} commits, {:.0} B/min (0 pods); {} commits, {:.0} B/min (100 pods)",
            empty.commits, empty.bytes_per_min, full.commits, full.bytes_per_min
        ),
        empty.commits == 0 && full.commits == 0,
    );
    let mut md = format!(
        "Measured {} on {} cores, release build: `cargo bench --bench harness -- idle`. Each \
         window is {secs} s with nothing asked of the daemon; 100 pods are a Deployment of \
         busybox `sleep` (no probes).\n\n\
         | daemon, idle | RSS (median of samples) | CPU (% of a core) | bytes written per minute | store commits |\n|---|---|---|---|---|\n",
        berth::api::meta::now_rfc3339(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    for (label, i) in [("0 pods", &empty), ("100 pods running", &full)] {
        md.push_str(&format!(
            "| {label} | {:.1} MiB | {:.3} % | {:.0} B | {} |\n",
            i.rss_mib, i.cpu_percent, i.bytes_per_min, i.commits
        ));
    }
    md.push_str("\nPeers (shared/reference/peer-baselines.md): k3s idles at ≈ 6 % of a core and writes 6–10 kB/s; containerd alone holds 37 MB.\n");
    md
}

pub fn run_scale_section() -> String {
    let d = TestDaemon::start();
    let client = d.client();
    let r = crate::clients_runtime();
    let cms = by_kind("v1", "ConfigMap").expect("kind");
    let mut md = format!(
        "Measured {} on {} cores, release build: `cargo bench --bench harness -- scale`.\n\n\
         | what | median | spread (min–max) |\n|---|---|---|\n",
        berth::api::meta::now_rfc3339(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );
    let mut have = 0usize;
    for target in [1_000usize, 10_000] {
        let t = Instant::now();
        let n = target - have;
        r.block_on(async {
            let mut tasks = Vec::new();
            for w in 0..8 {
                let client = client.clone();
                tasks.push(tokio::spawn(async move {
                    for i in (have + w..target).step_by(8) {
                        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": format!("cm{i}"), "labels": {"app": "scale"}},
                            "data": {"key": "value", "n": i.to_string()}});
                        client
                            .create(cms, Some("default"), &obj)
                            .await
                            .expect("create");
                    }
                }));
            }
            for t in tasks {
                t.await.expect("worker");
            }
        });
        let rate = n as f64 / t.elapsed().as_secs_f64();
        have = target;
        let mut list_ms = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            let l = r
                .block_on(client.list(cms, Some("default"), &ListOptions::default()))
                .expect("list");
            assert!(l.items.len() >= target);
            list_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let (m, lo, hi) = crate::stats(list_ms);
        md.push_str(&format!(
            "| creates per second, 8 clients, filling to {target} | {rate:.0}/s | one run |\n\
             | list {target} ConfigMaps (JSON, client round trip incl. decode) | {m:.1} ms | {lo:.1}–{hi:.1} |\n"
        ));
    }
    md
}
