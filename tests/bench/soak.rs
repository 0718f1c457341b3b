//! Section "soak": `BENCH_SOAK_PODS` (default 1,000) pod lifecycles in batches of 50 —
//! created, run to completion on the pod network (every tenth with a hostPort), deleted —
//! then what is left is compared with the baseline taken after a first warm-up batch:
//! daemon memory (RSS and its anonymous part), open file descriptors, shims, mounts,
//! cgroups, pod veths and nftables rules. Nothing is asserted; the table says.

use std::time::{Duration, Instant};

use crate::common::TestDaemon;

const BATCH: usize = 50;
const HOST_PORT_BASE: usize = 18600;

fn pods_wanted() -> usize {
    std::env::var("BENCH_SOAK_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn batch(round: usize) -> String {
    let mut docs = Vec::new();
    for i in 0..BATCH {
        let ports = if i % 10 == 0 {
            format!(
                "    ports: [{{containerPort: 80, hostPort: {}}}]\n",
                HOST_PORT_BASE + i
            )
        } else {
            String::new()
        };
        docs.push(format!(
            "apiVersion: v1
kind: Pod
metadata: {{name: soak-{round}-{i}, labels: {{app: soak}}}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, 'echo hello; sleep 0.2']
{ports}"
        ));
    }
    docs.join("---\n")
}

#[derive(Debug, Clone, Copy, Default)]
struct Snapshot {
    rss_kib: u64,
    anon_kib: u64,
    fds: usize,
    shims: usize,
    mounts: usize,
    cgroups: usize,
    veths: usize,
    nft_rules: usize,
}

fn snapshot(d: &TestDaemon) -> Snapshot {
    let pid = d.pid();
    let dir = d.dir.path().display().to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let nft = std::process::Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let cgroup_root = format!("/sys/fs/cgroup/memory/{}", d.cgroup_parent());
    Snapshot {
        rss_kib: crate::rss_kib(pid),
        anon_kib: crate::status_kib(pid, "RssAnon"),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|r| r.count())
            .unwrap_or(0),
        shims: crate::common::shim_pids(d).len(),
        mounts: mountinfo.lines().filter(|l| l.contains(&dir)).count(),
        cgroups: crate::common::dirs_below(std::path::Path::new(&cgroup_root))
            .len()
            .saturating_sub(1),
        veths: links
            .lines()
            .filter(|l| {
                l.split(": ")
                    .nth(1)
                    .is_some_and(|n| n.starts_with("bv") || n.starts_with("bp"))
            })
            .count(),
        nft_rules: nft
            .lines()
            .filter(|l| {
                let t = l.trim();
                !t.is_empty()
                    && !t.starts_with("table")
                    && !t.starts_with("chain")
                    && !t.starts_with("type")
                    && !t.starts_with("set")
                    && !t.starts_with("map")
                    && t != "}"
            })
            .count(),
    }
}

/// Runs one batch: applies it, waits until every pod has finished, deletes them and waits
/// until they are gone. Returns how many completed.
fn run_batch(d: &TestDaemon, round: usize) -> Result<usize, String> {
    d.apply_yaml(&format!("soak-{round}"), &batch(round));
    let t = Instant::now();
    let done = loop {
        let pods = d
            .get_json(&["pods", "-l", "app=soak"])
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default();
        let done = pods
            .iter()
            .filter(|p| matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")))
            .count();
        if done == BATCH {
            break done;
        }
        if t.elapsed() > Duration::from_secs(300) {
            return Err(format!("batch {round}: {done} of {BATCH} pods finished"));
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let out = d.cli(&["delete", "pods", "-l", "app=soak", "--grace-period=0"]);
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let t = Instant::now();
    loop {
        let left = d
            .get_json(&["pods", "-l", "app=soak"])
            .and_then(|v| v["items"].as_array().map(Vec::len))
            .unwrap_or(0);
        if left == 0 {
            return Ok(done);
        }
        if t.elapsed() > Duration::from_secs(300) {
            return Err(format!("batch {round}: {left} pods not gone"));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

pub fn run_section() -> String {
    let d = TestDaemon::start();
    d.import_busybox();
    let wanted = pods_wanted();
    let rounds = wanted.div_ceil(BATCH).max(2);
    let began = Instant::now();
    let mut completed = 0;
    let mut failure = None;
    if let Err(e) = run_batch(&d, 0) {
        failure = Some(e);
    }
    completed += BATCH;
    std::thread::sleep(Duration::from_secs(5));
    let base = snapshot(&d);
    for round in 1..rounds {
        if failure.is_some() {
            break;
        }
        match run_batch(&d, round) {
            Ok(n) => completed += n,
            Err(e) => failure = Some(e),
        }
    }
    // Settle: the reaper, the GC of exited runs and the IP release run in the background;
    // idle blocking threads retire after 10 s and free memory is trimmed every 15 s.
    std::thread::sleep(Duration::from_secs(40));
    let end = snapshot(&d);
    let mut md = format!(
        "Measured {} on {} cores, release build: `cargo bench --bench harness -- soak` \
         ({completed} pod lifecycles in batches of {BATCH}, every tenth pod with a hostPort, \
         {:.0} s). Baseline: after the first batch.\n\n\
         | what | baseline | after | change |\n|---|---|---|---|\n",
        berth::api::meta::now_rfc3339(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        began.elapsed().as_secs_f64()
    );
    let rows: [(&str, u64, u64, &str); 8] = [
        ("daemon RSS", base.rss_kib, end.rss_kib, "KiB"),
        ("daemon RSS, anonymous", base.anon_kib, end.anon_kib, "KiB"),
        (
            "daemon open file descriptors",
            base.fds as u64,
            end.fds as u64,
            "",
        ),
        ("shims", base.shims as u64, end.shims as u64, ""),
        (
            "mounts under the test dir",
            base.mounts as u64,
            end.mounts as u64,
            "",
        ),
        (
            "memory cgroups under berth's parent",
            base.cgroups as u64,
            end.cgroups as u64,
            "",
        ),
        ("pod veths", base.veths as u64, end.veths as u64, ""),
        (
            "nftables rules",
            base.nft_rules as u64,
            end.nft_rules as u64,
            "",
        ),
    ];
    for (what, b, e, unit) in rows {
        let change = e as i64 - b as i64;
        md.push_str(&format!(
            "| {what} | {b} {unit} | {e} {unit} | {change:+} {unit} |\n"
        ));
    }
    if let Some(f) = failure {
        md.push_str(&format!("\nThe soak stopped early: {f}\n"));
    }
    md
}
