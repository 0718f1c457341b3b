//! The "containers" section of the harness: one run, one busybox image
//! (`tests/images/build-busybox.sh`), one command (`sleep 3600`), measured until the
//! container runs, against the peers from Debian's packages:
//!
//! - `crun run -d` of an OCI bundle whose rootfs is the image (the overlay berth mounts);
//! - `podman run -d --network none` of the same image (`podman load`ed into storage in a
//!   temporary directory, removed afterwards);
//! - berth's runtime layer (`Runtime::start`: shim + libcontainer, as the kubelet calls it);
//! - berth end to end: `berth apply -f pod.yaml` until a watch sees the pod Running (skipped,
//!   saying so, while no kubelet runs pods);
//! - memory per container: PSS of 10 berth shims (PIE, and `-no-pie` when built) against
//!   10 conmons.
//!
//! A peer that is not installed is skipped with a note in the output.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth::image::ImageStore;
use berth::runtime::{ContainerConfig, LogLocation, Resources, Runtime, RuntimeOptions};
use serde_json::json;

use crate::common::{TMP_PREFIX, TestDaemon, berth_bin};

/// Repetitions of each start.
const RUNS: usize = 15;
/// Containers running at once for the memory figures.
const MEM_N: usize = 10;
/// How long a pod may take to reach Running before the berth side is declared unavailable.
const POD_DEADLINE: Duration = Duration::from_secs(30);
const IMAGE: &str = "berth.local/busybox:latest";

/// One row of the section's table.
struct Row {
    what: String,
    median: String,
    p90: String,
    ratio: String,
    command: String,
}

/// Median and p90 (nearest rank) of samples in ms.
pub fn median_p90(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    let rank = ((0.9 * n as f64).ceil() as usize).clamp(1, n);
    (median, v[rank - 1])
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Pss, Rss, Pss_Anon and Pss_File in kB of a process, from /proc/PID/smaps_rollup.
fn smaps_kb(pid: i32) -> Option<[u64; 4]> {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |key: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some([
        field("Pss:"),
        field("Rss:"),
        field("Pss_Anon:"),
        field("Pss_File:"),
    ])
}

/// Live processes named `comm` whose command line contains `needle`.
fn pids_of(comm: &str, needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let name = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if name.trim() != comm {
            continue;
        }
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            out.push(pid);
        }
    }
    out
}

/// Mean PSS over `pids` in MB, and the detail "RSS …, PSS anon …, file …" in MB.
fn memory_row(pids: &[i32]) -> Option<(f64, String)> {
    if pids.is_empty() {
        return None;
    }
    let mut sum = [0u64; 4];
    for &p in pids {
        let v = smaps_kb(p)?;
        for (s, x) in sum.iter_mut().zip(v) {
            *s += x;
        }
    }
    let mb = |kb: u64| kb as f64 / pids.len() as f64 / 1000.0;
    Some((
        mb(sum[0]),
        format!(
            "RSS {:.2} MB; PSS anon {:.2} + file {:.2}",
            mb(sum[1]),
            mb(sum[2]),
            mb(sum[3])
        ),
    ))
}

/// podman's cgroup parent in each hierarchy, where it exists.
fn libpod_parents() -> Vec<PathBuf> {
    fs::read_dir("/sys/fs/cgroup")
        .map(|d| {
            d.flatten()
                .map(|e| e.path().join("libpod_parent"))
                .chain(std::iter::once(PathBuf::from(
                    "/sys/fs/cgroup/libpod_parent",
                )))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

/// The working directory of the section: image archive, image store, rootfs, bundles.
struct Bench {
    dir: tempfile::TempDir,
    archive: PathBuf,
    rootfs: PathBuf,
    notes: Vec<String>,
    rows: Vec<Row>,
    /// crun's median start, the reference of the ratios.
    crun_ms: Option<f64>,
    /// crun's median exec, the reference of the exec probe's budget.
    crun_exec_ms: Option<f64>,
}

pub fn run_section() -> String {
    let dir = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .tempdir()
        .expect("tempdir");
    let archive = dir.path().join("busybox.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/build-busybox.sh");
    run(Command::new(&script).arg(&archive)).expect("build the busybox image");
    let store = ImageStore::open(&dir.path().join("images")).expect("image store");
    let image = store
        .import(fs::File::open(&archive).expect("archive"), None)
        .expect("import")
        .into_iter()
        .next()
        .expect("one image");
    let mounted = store
        .mount_rootfs(&image, &dir.path().join("ctr"))
        .expect("mount the image's rootfs");
    let mut b = Bench {
        rootfs: mounted.path(),
        archive,
        dir,
        notes: Vec::new(),
        rows: Vec::new(),
        crun_ms: None,
        crun_exec_ms: None,
    };
    b.crun();
    b.podman();
    b.berth_runtime();
    b.berth_apply();
    if let Err(e) = mounted.unmount() {
        eprintln!("cannot unmount the bench rootfs: {e}");
    }
    b.report()
}

impl Bench {
    fn ratio(&self, ms: f64) -> String {
        match self.crun_ms {
            Some(c) if c > 0.0 => format!("{:.1}× crun", ms / c),
            _ => "—".into(),
        }
    }

    /// An exec row; berth's (`budget`) is judged against 2 × crun's exec.
    fn push_exec(&mut self, what: &str, samples: Vec<f64>, command: &str) {
        let (m, p) = median_p90(samples);
        let ratio = match self.crun_exec_ms.filter(|c| *c > 0.0) {
            Some(c) if !what.starts_with("`crun") => {
                crate::budgets::record(
                    "exec probe ≤ 2 × `crun exec`",
                    format!("{m:.1} ms = {:.1}× crun exec's {c:.1} ms", m / c),
                    m <= 2.0 * c,
                );
                format!("{:.1}× crun exec (budget ≤ 2×)", m / c)
            }
            _ => "—".into(),
        };
        self.push_ms(what, m, p, ratio, command);
    }

    /// A row of a median and p90 in milliseconds.
    fn push_ms(&mut self, what: &str, m: f64, p: f64, ratio: String, command: &str) {
        self.rows.push(Row {
            what: what.into(),
            median: format!("{m:.1} ms"),
            p90: format!("{p:.1} ms"),
            ratio,
            command: command.into(),
        });
    }

    fn push_start(&mut self, what: &str, samples: Vec<f64>, command: &str, budget: bool) {
        let (m, p) = median_p90(samples);
        if budget && let Some(c) = self.crun_ms.filter(|c| *c > 0.0) {
            crate::budgets::record(
                "pod start ≤ 3 × `crun run`",
                format!("{m:.1} ms = {:.1}× crun's {c:.1} ms", m / c),
                m <= 3.0 * c,
            );
        }
        let ratio = if budget {
            format!("{} (budget ≤ 3×)", self.ratio(m))
        } else {
            self.ratio(m)
        };
        self.push_ms(what, m, p, ratio, command);
    }

    /// `crun run -d` of a bundle on the image's rootfs, in a private mount namespace
    /// without the cgroup2 mount (crun refuses this hybrid host as it is). The loop runs in
    /// bash in that namespace and times each `crun run` with $EPOCHREALTIME.
    fn crun(&mut self) {
        if !have("crun") {
            self.notes
                .push("crun skipped: not installed (`apt-get install -y crun`).".into());
            return;
        }
        let bundle = self.dir.path().join("bundle");
        fs::create_dir_all(&bundle).expect("bundle dir");
        if let Err(e) = run(Command::new("crun").arg("spec").current_dir(&bundle)) {
            self.notes.push(format!("crun skipped: {e}"));
            return;
        }
        let path = bundle.join("config.json");
        let mut spec: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).expect("config.json")).expect("spec json");
        spec["process"]["terminal"] = json!(false);
        spec["process"]["args"] = json!(["/bin/sleep", "3600"]);
        spec["root"]["path"] = json!(self.rootfs);
        spec["root"]["readonly"] = json!(false);
        fs::write(&path, serde_json::to_vec_pretty(&spec).expect("json")).expect("write spec");
        let script = format!(
            r#"set -e
umount /sys/fs/cgroup/unified 2>/dev/null || true
for i in $(seq 0 {last}); do
  t0=$EPOCHREALTIME
  crun run -d --bundle "$1" berth-bench-$i </dev/null >/dev/null 2>&1
  t1=$EPOCHREALTIME
  crun exec berth-bench-$i /bin/true </dev/null >/dev/null 2>&1
  t2=$EPOCHREALTIME
  echo "${{t0/./}} ${{t1/./}} ${{t2/./}}"
  crun delete -f berth-bench-$i
done
"#,
            last = RUNS - 1
        );
        let out = run(Command::new("unshare")
            .args([
                "-m",
                "--propagation",
                "private",
                "bash",
                "-c",
                &script,
                "bash",
            ])
            .arg(&bundle));
        match out {
            Ok(text) => {
                let times: Vec<Vec<f64>> = text
                    .lines()
                    .map(|l| {
                        l.split_whitespace()
                            .filter_map(|v| v.parse::<f64>().ok())
                            .collect()
                    })
                    .filter(|t: &Vec<f64>| t.len() == 3)
                    .collect();
                let samples: Vec<f64> = times.iter().map(|t| (t[1] - t[0]) / 1000.0).collect();
                let execs: Vec<f64> = times.iter().map(|t| (t[2] - t[1]) / 1000.0).collect();
                if !execs.is_empty() {
                    self.crun_exec_ms = Some(median_p90(execs.clone()).0);
                    self.push_exec(
                        "`crun exec C /bin/true` (a running container)",
                        execs,
                        "same script: `crun exec berth-bench-N /bin/true` after each run",
                    );
                }
                if samples.len() != RUNS {
                    self.notes
                        .push(format!("crun: only {} of {RUNS} runs timed", samples.len()));
                }
                self.crun_ms = Some(median_p90(samples.clone()).0);
                self.push_start(
                    "`crun run -d` (bundle on the image's overlay rootfs, no network)",
                    samples,
                    "`unshare -m --propagation private bash -c 'umount /sys/fs/cgroup/unified; crun run -d --bundle B c1'`",
                    false,
                );
            }
            Err(e) => self.notes.push(format!("crun skipped: {e}")),
        }
    }

    /// `podman run -d --network none` with storage in the temporary directory.
    fn podman(&mut self) {
        let pm = match Podman::new(&self.dir.path().join("podman")) {
            Ok(p) => p,
            Err(e) => {
                self.notes.push(e);
                return;
            }
        };
        let runtime = pm.runtime;
        let podman = |args: &[&str]| pm.cmd(args);
        let result = (|| -> Result<(), String> {
            pm.load(&self.archive)?;
            let mut samples = Vec::new();
            for i in 0..RUNS {
                let name = format!("berth-bench-{i}");
                let t = Instant::now();
                run(&mut podman(&[
                    "run",
                    "-d",
                    "--network",
                    "none",
                    "--name",
                    &name,
                    IMAGE,
                    "/bin/sleep",
                    "3600",
                ]))?;
                samples.push(t.elapsed().as_secs_f64() * 1000.0);
                run(&mut podman(&["rm", "-f", "-t", "0", &name]))?;
            }
            self.push_start(
                &format!("`podman run -d --network none` ({runtime}, cgroupfs, overlay storage)"),
                samples,
                "`podman --root R --runroot RR run -d --network none berth.local/busybox sleep 3600`",
                false,
            );
            for i in 0..MEM_N {
                run(&mut podman(&[
                    "run",
                    "-d",
                    "--network",
                    "none",
                    "--name",
                    &format!("berth-mem-{i}"),
                    IMAGE,
                    "/bin/sleep",
                    "3600",
                ]))?;
            }
            let conmons = pids_of("conmon", &pm.root.display().to_string());
            match memory_row(&conmons) {
                Some((pss, detail)) => self.rows.push(Row {
                    what: format!("conmon per container ({} running)", conmons.len()),
                    median: format!("{pss:.2} MB PSS"),
                    p90: detail,
                    ratio: "—".into(),
                    command: "sum of `Pss:` in /proc/PID/smaps_rollup of each conmon / N".into(),
                }),
                None => self.notes.push("conmon processes not found".into()),
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.notes.push(format!("podman: {e}"));
        }
        pm.clean_up();
    }

    /// berth's runtime layer, as the kubelet calls it: `Runtime::start` (spawns the shim,
    /// which creates and starts the container with libcontainer) until it answers that the
    /// container runs. Then 10 at once for the shim's PSS: `berth-shim` (the shim-only
    /// binary the runtime uses when installed), the whole `berth` binary as `berth shim`
    /// (the fallback), and a `-no-pie` build when given.
    fn berth_runtime(&mut self) {
        let full = PathBuf::from(berth_bin());
        let small = full.with_file_name(berth::runtime::SHIM_BINARY_NAME);
        let cmd = "sum of `Pss:` in /proc/PID/smaps_rollup of each shim / N";
        if let Err(e) = self.runtime_start_and_pss(&small, "`berth-shim` binary", true, cmd) {
            self.notes.push(format!("berth runtime (berth-shim): {e}"));
        }
        if let Err(e) =
            self.runtime_start_and_pss(&full, "whole `berth` binary as `berth shim`", false, cmd)
        {
            self.notes.push(format!("berth runtime (berth shim): {e}"));
        }
        match std::env::var_os("BERTH_BENCH_NOPIE_SHIM").filter(|p| !p.is_empty()) {
            Some(p) => {
                let cmd = "same, `BERTH_BENCH_NOPIE_SHIM=… cargo bench --bench harness -- containers`";
                if let Err(e) =
                    self.runtime_start_and_pss(Path::new(&p), "`-no-pie` build", false, cmd)
                {
                    self.notes.push(format!("berth runtime (-no-pie shim): {e}"));
                }
            }
            None => self.notes.push(
                "`-no-pie` shim not measured: build it with `tests/bench/build-nopie-shim.sh` and set BERTH_BENCH_NOPIE_SHIM (see below)."
                    .into(),
            ),
        }
    }

    fn runtime_start_and_pss(
        &mut self,
        shim: &Path,
        label: &str,
        timed: bool,
        command: &str,
    ) -> Result<(), String> {
        let suffix = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let parent = format!("/berth-test-{suffix}");
        let base = self.dir.path().join(format!("rt-{suffix}"));
        let rt = Runtime::with_options(
            base.join("state"),
            base.join("run"),
            base.join("logs"),
            RuntimeOptions {
                shim_binary: Some(shim.to_path_buf()),
                cgroup_parent: parent,
                ..RuntimeOptions::default()
            },
        )
        .map_err(|e| e.to_string())?;
        let pod_uid = uuid::Uuid::new_v4().to_string();
        let rootfs = self.rootfs.clone();
        let config = |name: String| -> Result<ContainerConfig, String> {
            let mut c = ContainerConfig::new(
                name.clone(),
                &rootfs,
                vec!["/bin/sleep".into(), "3600".into()],
            );
            c.env = vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()];
            c.cgroups_path = rt
                .container_cgroup_path(&pod_uid, &name)
                .map_err(|e| e.to_string())?;
            c.log = LogLocation {
                namespace: "default".into(),
                pod_name: "bench".into(),
                pod_uid: pod_uid.clone(),
                container_name: name,
                restart_count: 0,
            };
            Ok(c)
        };
        let result = (|| -> Result<(), String> {
            rt.create_pod_cgroup(&pod_uid, &Resources::default())
                .map_err(|e| e.to_string())?;
            if timed {
                let mut samples = Vec::new();
                let mut execs = Vec::new();
                for i in 0..RUNS {
                    let c = config(format!("start-{i}"))?;
                    let t = Instant::now();
                    rt.start(&c).map_err(|e| e.to_string())?;
                    samples.push(t.elapsed().as_secs_f64() * 1000.0);
                    // An exec probe as the kubelet runs one: start, wait for the exit code.
                    let spec = berth::runtime::ExecSpec {
                        args: vec!["/bin/true".into()],
                        ..Default::default()
                    };
                    let t = Instant::now();
                    let mut child = rt.exec(&c.id, &spec).map_err(|e| e.to_string())?;
                    let code = child
                        .wait(Some(Duration::from_secs(30)))
                        .map_err(|e| e.to_string())?;
                    if code == Some(0) {
                        execs.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    rt.stop(&c.id, Duration::ZERO).map_err(|e| e.to_string())?;
                    rt.remove(&c.id).map_err(|e| e.to_string())?;
                }
                self.push_start(
                    "berth runtime: `Runtime::start` (spawn `berth-shim`, libcontainer create+start, answer)",
                    samples,
                    "`cargo bench --bench harness -- containers` (tests/bench/containers.rs)",
                    false,
                );
                if !execs.is_empty() {
                    self.push_exec(
                        "berth exec probe: `Runtime::exec` of `/bin/true` until its exit code",
                        execs,
                        "`cargo bench --bench harness -- containers` (tests/bench/containers.rs)",
                    );
                }
            }
            let mut ids = Vec::new();
            for i in 0..MEM_N {
                let c = config(format!("mem-{i}"))?;
                rt.start(&c).map_err(|e| e.to_string())?;
                ids.push(c.id);
            }
            let mut pids = Vec::new();
            for id in &ids {
                if let Some(p) = rt.shim_pid(id).map_err(|e| e.to_string())? {
                    pids.push(p);
                }
            }
            let (pss, detail) = memory_row(&pids).ok_or("no shim to measure")?;
            // The budget is the shim berth runs: the `berth-shim` binary.
            if label.starts_with("`berth-shim`") {
                crate::budgets::record("shim ≤ 0.5 MB PSS", format!("{pss:.2} MB PSS"), pss <= 0.5);
            }
            self.rows.push(Row {
                what: format!("berth shim per container ({} running, {label})", pids.len()),
                median: format!("{pss:.2} MB PSS"),
                p90: detail,
                ratio: format!("{:.0} % of the 0.5 MB budget", pss / 0.5 * 100.0),
                command: command.into(),
            });
            Ok(())
        })();
        // Stop, remove, and take the cgroups away whatever happened.
        if let Ok(ids) = rt.list() {
            for id in ids {
                let _ = rt.stop(&id, Duration::ZERO);
                if let Err(e) = rt.remove(&id) {
                    eprintln!("cannot remove container {id}: {e}");
                }
            }
        }
        if let Err(e) = rt.remove_pod_cgroup(&pod_uid) {
            eprintln!("cannot remove the bench pod cgroup: {e}");
        }
        if let Err(e) = rt.cgroups().remove_parent() {
            eprintln!("cannot remove the bench cgroup parent: {e}");
        }
        result
    }

    /// `berth apply -f pod.yaml` until a watch (started before the apply) sees the pod
    /// Running, with the image imported into a real daemon's store. Skipped, saying so,
    /// when the first pod does not run within [`POD_DEADLINE`] (no kubelet yet).
    fn berth_apply(&mut self) {
        let d = TestDaemon::start();
        if let Err(e) = import_image(&d, &self.archive) {
            self.notes.push(format!(
                "berth apply → Running skipped: the daemon did not import the image: {e}"
            ));
            return;
        }
        let r = crate::common::runtime();
        let mut samples = Vec::new();
        for i in 0..RUNS {
            let name = format!("bench-{i}");
            match apply_until_running(&d, &r, &name) {
                Ok(ms) => samples.push(ms),
                Err(e) => {
                    self.notes
                        .push(format!("berth apply → Running skipped: {e}"));
                    break;
                }
            }
            let _ = d.cli(&[
                "delete",
                "pod",
                &name,
                "--ignore-not-found",
                "--wait",
                "--timeout",
                "30",
            ]);
        }
        if !samples.is_empty() {
            self.push_start(
                "berth: `berth apply -f pod.yaml` → watch sees `Running` (real daemon, image imported)",
                samples,
                "`cargo bench --bench harness -- containers`",
                true,
            );
        }
        // `d` stops here: the pods were deleted one by one above (bounded by --timeout).
    }

    fn report(&self) -> String {
        let mut md = format!(
            "Measured {} on {} cores; {RUNS} starts each of `sleep 3600` in the busybox image \
             (`tests/images/build-busybox.sh`), timed until the container runs; memory with \
             {MEM_N} containers running. Release build: `cargo bench --bench harness -- containers`.\n\n",
            berth::api::meta::now_rfc3339(),
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
        );
        md.push_str(
            "| what | median | p90 / detail | ratio | reproduce |\n|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                r.what, r.median, r.p90, r.ratio, r.command
            ));
        }
        if !self.notes.is_empty() {
            md.push('\n');
            for n in &self.notes {
                md.push_str(&format!("- {n}\n"));
            }
        }
        md
    }
}

/// POSTs the archive to the daemon's image API (what `berth image import` does).
pub fn import_image(d: &TestDaemon, archive: &Path) -> Result<(), String> {
    let body = fs::read(archive).map_err(|e| e.to_string())?;
    let r = crate::common::runtime();
    r.block_on(async {
        let stream = tokio::net::UnixStream::connect(d.socket())
            .await
            .map_err(|e| e.to_string())?;
        let (mut s, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = hyper::Request::post("/apis/images.berth.dev/v1/images")
            .header("host", "berth")
            .header("content-type", "application/x-tar")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let resp = s.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        use http_body_util::BodyExt;
        let text = resp
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{status}: {}", text.trim()))
        }
    })
}

/// Applies one pod and returns the ms from the apply's start until a watch sees it Running.
fn apply_until_running(
    d: &TestDaemon,
    r: &tokio::runtime::Runtime,
    name: &str,
) -> Result<f64, String> {
    use berth::api::registry::by_kind;
    use berth::client::ListOptions;
    let yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: c\n    image: {IMAGE}\n    imagePullPolicy: Never\n    command: [\"sleep\", \"3600\"]\n"
    );
    let file = d.write(&format!("{name}.yaml"), &yaml);
    let client = d.client();
    let pods = by_kind("v1", "Pod").ok_or("no Pod kind")?;
    r.block_on(async {
        let list = client
            .list(pods, Some("default"), &ListOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let mut w = client
            .watch(
                pods,
                Some("default"),
                &ListOptions::default(),
                &list.resource_version,
            )
            .await
            .map_err(|e| e.to_string())?;
        let t = Instant::now();
        // Blocking is fine here: the watch's bytes wait in its socket meanwhile.
        let out = Command::new(berth_bin())
            .arg("apply")
            .arg("-f")
            .arg(&file)
            .env("BERTH_SOCKET", d.socket())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "berth apply failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let deadline = tokio::time::Instant::now() + POD_DEADLINE;
        let mut last_phase = String::from("(no status)");
        loop {
            let ev = match tokio::time::timeout_at(deadline, w.next()).await {
                Err(_) => {
                    return Err(format!(
                        "pod {name} not Running within {POD_DEADLINE:?} (last phase: {last_phase}); \
                         no kubelet runs pods on this build yet"
                    ));
                }
                Ok(None) => return Err("the watch ended".into()),
                Ok(Some(Err(e))) => return Err(e.to_string()),
                Ok(Some(Ok(ev))) => ev,
            };
            let obj = &ev.object;
            if obj["metadata"]["name"] != name {
                continue;
            }
            if let Some(p) = obj["status"]["phase"].as_str() {
                last_phase = p.to_string();
            }
            if obj["status"]["phase"] == "Running" {
                return Ok(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
    })
}

/// podman from Debian's packages in a private root (storage, run and tmp directories under
/// `root`), set up for this host: no systemd, hybrid cgroups (crun refuses them: runc),
/// root without CAP_SYS_RESOURCE (podman's default rlimits are above the hard limit).
pub struct Podman {
    pub root: PathBuf,
    conf: PathBuf,
    base: Vec<String>,
    pub runtime: &'static str,
    /// podman (cgroupfs) makes /libpod_parent in every hierarchy and keeps it; it is taken
    /// away afterwards unless it was there before.
    libpod_parent_before: bool,
}

impl Podman {
    /// Why not, when podman or runc is missing.
    pub fn new(root: &Path) -> Result<Podman, String> {
        if !have("podman") {
            return Err(
                "podman skipped: not installed (`apt-get install -y podman`); no conmon figure either."
                    .into(),
            );
        }
        if !have("runc") {
            return Err(
                "podman skipped: it needs runc here (crun refuses hybrid cgroups): `apt-get install -y runc`."
                    .into(),
            );
        }
        fs::create_dir_all(root).map_err(|e| format!("podman dir: {e}"))?;
        let runtime = "runc";
        let conf = root.join("containers.conf");
        // podman asks for nproc/nofile above this host's hard limits unless told otherwise.
        let nproc = run(Command::new("sh").args(["-c", "ulimit -Hu"]))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "32768".into());
        fs::write(
            &conf,
            format!(
                "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc={nproc}:{nproc}\"]\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nruntime = \"{runtime}\"\n"
            ),
        )
        .map_err(|e| format!("containers.conf: {e}"))?;
        let base = ["storage", "run", "tmp"]
            .iter()
            .zip(["--root", "--runroot", "--tmpdir"])
            .flat_map(|(dir, flag)| [flag.to_string(), root.join(dir).display().to_string()])
            .chain(["--storage-driver".to_string(), "overlay".to_string()])
            .collect();
        Ok(Podman {
            root: root.to_path_buf(),
            conf,
            base,
            runtime,
            libpod_parent_before: !libpod_parents().is_empty(),
        })
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", &self.conf)
            .args(&self.base)
            .args(args);
        c
    }

    /// `podman load -i ARCHIVE`.
    pub fn load(&self, archive: &Path) -> Result<String, String> {
        run(&mut self.cmd(&["load", "-i", &archive.display().to_string()]))
    }

    /// Removes every container and image, unmounts its storage, and removes
    /// /libpod_parent when podman made it.
    pub fn clean_up(self) {
        let _ = run(&mut self.cmd(&["rm", "-a", "-f", "-t", "0"]));
        let _ = run(&mut self.cmd(&["system", "reset", "-f"]));
        let _ = run(Command::new("sh").arg("-c").arg(format!(
            "grep -o ' {}[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l",
            self.root.display()
        )));
        if !self.libpod_parent_before {
            for dir in libpod_parents() {
                let _ = run(Command::new("find")
                    .arg(&dir)
                    .args(["-depth", "-type", "d", "-exec", "rmdir", "{}", ";"]));
            }
        }
    }
}
