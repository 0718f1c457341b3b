//! The "workloads" section of the harness: a 100-replica Deployment of the busybox test
//! image on a real daemon (release build), against podman starting 100 containers of the
//! same image in the same run.
//!
//! - apply → all 100 pods `Running`, and → all 100 `Ready` (the Deployment available),
//!   timed by a pod watch opened before the apply;
//! - one rolling update of all 100 (the 25 %/25 % defaults) → the Deployment complete as
//!   `kubectl rollout status` reads it, timed by a Deployment watch;
//! - the daemon's RSS with 100 pods running;
//! - podman: `podman run -d` 100 times, one after the other (podman has no replica
//!   controller; `kube play` starts a Deployment's first replica only).
//!
//! Each figure is the median of [`RUNS`] runs, with min–max.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth::api::registry::by_kind;
use berth::client::ListOptions;
use serde_json::Value;

use crate::common::{TMP_PREFIX, TestDaemon};
use crate::containers::{Podman, import_image, run};

const REPLICAS: usize = 100;
const RUNS: usize = 3;
const IMAGE: &str = "berth.local/busybox:latest";
/// How long one phase may take before the run is abandoned with a note.
const DEADLINE: Duration = Duration::from_secs(300);

/// The Deployment; `version` changes the template (so a new one rolls). The shell traps
/// SIGTERM as a real service does, so pods end at once when deleted.
fn deployment(version: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: bench}}
spec:
  replicas: {REPLICAS}
  selector: {{matchLabels: {{app: bench}}}}
  template:
    metadata: {{labels: {{app: bench}}}}
    spec:
      containers:
      - name: main
        image: {IMAGE}
        imagePullPolicy: Never
        command: [sh, -c, 'trap \"exit 0\" TERM; echo v{version}; sleep 3600 & wait']
"
    )
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// `berth apply` of the file, timed from its start by the caller.
fn apply(d: &TestDaemon, file: &Path) -> Result<(), String> {
    let out = Command::new(crate::common::berth_bin())
        .args(["apply", "-f"])
        .arg(file)
        .env("BERTH_SOCKET", d.socket())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "berth apply: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Applies the 100-replica Deployment; seconds until all pods are Running, and until all
/// are Ready.
fn scale_up(d: &TestDaemon, r: &tokio::runtime::Runtime) -> Result<(f64, f64), String> {
    let file = d.write("bench-v1.yaml", &deployment(1));
    let client = d.client();
    let pods = by_kind("v1", "Pod").ok_or("no Pod kind")?;
    r.block_on(async {
        let opts = ListOptions::default();
        let list = client
            .list(pods, Some("default"), &opts)
            .await
            .map_err(|e| e.to_string())?;
        let mut w = client
            .watch(pods, Some("default"), &opts, &list.resource_version)
            .await
            .map_err(|e| e.to_string())?;
        let t = Instant::now();
        apply(d, &file)?;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let (mut running, mut readies) = (BTreeSet::new(), BTreeSet::new());
        let mut to_running = None;
        loop {
            let ev = match tokio::time::timeout_at(deadline, w.next()).await {
                Err(_) => {
                    return Err(format!(
                        "{} of {REPLICAS} pods Running, {} Ready after {DEADLINE:?}",
                        running.len(),
                        readies.len()
                    ));
                }
                Ok(None) => return Err("the pod watch ended".into()),
                Ok(Some(Err(e))) => return Err(e.to_string()),
                Ok(Some(Ok(ev))) => ev,
            };
            let name = ev.object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if ev.object["status"]["phase"] == "Running" {
                running.insert(name.clone());
            }
            if ready(&ev.object) {
                readies.insert(name);
            }
            if running.len() == REPLICAS && to_running.is_none() {
                to_running = Some(t.elapsed().as_secs_f64());
            }
            if readies.len() == REPLICAS {
                let ready_s = t.elapsed().as_secs_f64();
                return Ok((to_running.unwrap_or(ready_s), ready_s));
            }
        }
    })
}

/// Applies a new template; seconds until the Deployment is complete (every replica
/// updated and available, no old ones left) as `kubectl rollout status` reads it.
fn rolling_update(d: &TestDaemon, r: &tokio::runtime::Runtime) -> Result<f64, String> {
    let file = d.write("bench-v2.yaml", &deployment(2));
    let client = d.client();
    let deployments = by_kind("apps/v1", "Deployment").ok_or("no Deployment kind")?;
    r.block_on(async {
        let opts = ListOptions::default();
        let list = client
            .list(deployments, Some("default"), &opts)
            .await
            .map_err(|e| e.to_string())?;
        let mut w = client
            .watch(deployments, Some("default"), &opts, &list.resource_version)
            .await
            .map_err(|e| e.to_string())?;
        let t = Instant::now();
        apply(d, &file)?;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let mut last = Value::Null;
        loop {
            let ev = match tokio::time::timeout_at(deadline, w.next()).await {
                Err(_) => return Err(format!("rollout not complete: {}", last["status"])),
                Ok(None) => return Err("the deployment watch ended".into()),
                Ok(Some(Err(e))) => return Err(e.to_string()),
                Ok(Some(Ok(ev))) => ev,
            };
            let s = &ev.object["status"];
            let n = REPLICAS as i64;
            if ev.object["metadata"]["generation"].as_i64() == Some(2)
                && s["observedGeneration"].as_i64() >= Some(2)
                && s["updatedReplicas"].as_i64() == Some(n)
                && s["availableReplicas"].as_i64() == Some(n)
                && s["replicas"].as_i64() == Some(n)
            {
                return Ok(t.elapsed().as_secs_f64());
            }
            last = ev.object;
        }
    })
}

/// Median, min, max.
fn summary(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let (m, _) = crate::containers::median_p90(v.clone());
    (
        m,
        v.first().copied().unwrap_or(f64::NAN),
        v.last().copied().unwrap_or(f64::NAN),
    )
}

pub fn run_section() -> String {
    let dir = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .tempdir()
        .expect("tempdir");
    let archive = dir.path().join("busybox.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/build-busybox.sh");
    run(Command::new(&script).arg(&archive)).expect("build the busybox image");
    let mut notes = Vec::new();
    let (mut running, mut readies, mut rolls, mut rss) = (vec![], vec![], vec![], vec![]);
    {
        let d = TestDaemon::start();
        let r = crate::common::runtime();
        match import_image(&d, &archive) {
            Err(e) => notes.push(format!("berth skipped: the image did not import: {e}")),
            Ok(()) => {
                for i in 0..RUNS {
                    let result = (|| -> Result<(), String> {
                        let (to_running, to_ready) = scale_up(&d, &r)?;
                        running.push(to_running);
                        readies.push(to_ready);
                        if i == 0 {
                            rss.push(crate::idle_rss(d.pid()).0);
                        }
                        rolls.push(rolling_update(&d, &r)?);
                        Ok(())
                    })();
                    d.remove_all_pods();
                    if let Err(e) = result {
                        notes.push(format!("berth run {i}: {e}"));
                        break;
                    }
                }
            }
        }
    }
    let mut podman_s = Vec::new();
    match Podman::new(&dir.path().join("podman")) {
        Err(e) => notes.push(e),
        Ok(pm) => {
            let result = (|| -> Result<(), String> {
                pm.load(&archive)?;
                for _ in 0..RUNS {
                    let t = Instant::now();
                    for i in 0..REPLICAS {
                        run(&mut pm.cmd(&[
                            "run",
                            "-d",
                            "--network",
                            "none",
                            "--name",
                            &format!("berth-bench-{i}"),
                            IMAGE,
                            "/bin/sleep",
                            "3600",
                        ]))?;
                    }
                    podman_s.push(t.elapsed().as_secs_f64());
                    run(&mut pm.cmd(&["rm", "-a", "-f", "-t", "0"]))?;
                }
                Ok(())
            })();
            if let Err(e) = result {
                notes.push(format!("podman: {e}"));
            }
            pm.clean_up();
        }
    }
    let mut md = format!(
        "Measured {} on {} cores; {RUNS} runs each (median, min–max), release build: \
         `cargo bench --bench harness -- workloads`. The pods run `sleep 3600` under a shell \
         that exits on SIGTERM, in the busybox image (`tests/images/build-busybox.sh`).\n\n\
         | what | median | min–max | budget |\n|---|---|---|---|\n",
        berth::api::meta::now_rfc3339(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
    );
    if !running.is_empty() {
        let (m, _, _) = summary(running.clone());
        crate::budgets::record(
            "100-replica Deployment → all Running ≤ 4 s",
            format!("{m:.2} s"),
            m <= 4.0,
        );
    }
    let mut row = |what: &str, samples: Vec<f64>, unit: &str, budget: &str| {
        if samples.is_empty() {
            return;
        }
        let (m, lo, hi) = summary(samples);
        md.push_str(&format!(
            "| {what} | {m:.2} {unit} | {lo:.2}–{hi:.2} {unit} | {budget} |\n"
        ));
    };
    row(
        "berth: `apply -f` 100-replica Deployment → all 100 pods Running",
        running,
        "s",
        "≤ 4 s",
    );
    row(
        "berth: … → all 100 pods Ready (Deployment available)",
        readies,
        "s",
        "",
    );
    row(
        "berth: rolling update of all 100 (25 %/25 %) → rollout complete",
        rolls,
        "s",
        "",
    );
    row(
        "berth: daemon RSS with 100 pods running",
        rss,
        "MiB",
        "≤ 50 MiB",
    );
    row(
        "podman: `podman run -d --network none` × 100, one after the other (runc, cgroupfs)",
        podman_s,
        "s",
        "",
    );
    if !notes.is_empty() {
        md.push('\n');
        for n in &notes {
            md.push_str(&format!("- {n}\n"));
        }
    }
    md
}
