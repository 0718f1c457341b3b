//! The runtime layer with real containers, as root: shims, CRI logs, exit records, OOM
//! kills, cgroup limits, pod sandboxes, default security, surviving the caller's death.
//!
//! Each test has its own temporary directory (`berth-test-*`), cgroup parent
//! (`/berth-test-<random>`) and busybox rootfs, and ends with [`Fixture::finish`], which
//! removes everything and checks that no mount, cgroup or shim process is left.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth::runtime::spec::{DEFAULT_CAPABILITIES, capability_bit};
use berth::runtime::{
    ContainerConfig, ContainerState, FailureReason, LogLocation, Resources, Runtime, RuntimeError,
    RuntimeOptions, SandboxPaths,
};
use nix::sys::signal::Signal;

const TMP_PREFIX: &str = "berth-test-";
const WAIT: Duration = Duration::from_secs(30);

/// The binary run as `berth shim`: this build's, or `BERTH_TEST_SHIM_BINARY` (to measure a
/// release shim's memory with the same tests).
fn berth_bin() -> PathBuf {
    std::env::var_os("BERTH_TEST_SHIM_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_berth")))
}

struct Fixture {
    dir: tempfile::TempDir,
    runtime: std::sync::Arc<Runtime>,
    parent: String,
    rootfs: PathBuf,
    pod_uid: String,
    sandboxes: Vec<String>,
    finished: bool,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempdir()
            .expect("tempdir");
        let parent = format!("/berth-test-{}", common::random_suffix());
        let runtime = runtime_at(dir.path(), &parent);
        let rootfs = common::busybox_rootfs(dir.path());
        let pod_uid = uuid::Uuid::new_v4().to_string();
        runtime
            .create_pod_cgroup(&pod_uid, &Resources::default())
            .expect("pod cgroup");
        Fixture {
            dir,
            runtime: std::sync::Arc::new(runtime),
            parent,
            rootfs,
            pod_uid,
            sandboxes: Vec::new(),
            finished: false,
        }
    }

    fn config(&self, name: &str, script: &str) -> ContainerConfig {
        let id = format!("{name}-{}", common::random_suffix());
        let mut c = ContainerConfig::new(
            id.clone(),
            &self.rootfs,
            vec!["/bin/sh".into(), "-c".into(), script.into()],
        );
        c.cgroups_path = self
            .runtime
            .container_cgroup_path(&self.pod_uid, &id)
            .expect("cgroup path");
        c.log = LogLocation {
            namespace: "default".into(),
            pod_name: "pod".into(),
            pod_uid: self.pod_uid.clone(),
            container_name: name.into(),
            restart_count: 0,
        };
        c
    }

    fn sandbox(&mut self, hostname: &str) -> SandboxPaths {
        let s = self
            .runtime
            .create_sandbox(&self.pod_uid, hostname, false)
            .expect("sandbox");
        self.sandboxes.push(self.pod_uid.clone());
        s
    }

    fn start(&self, c: &ContainerConfig) {
        self.runtime.start(c).expect("start");
    }

    fn wait_exit(&self, c: &ContainerConfig) -> ContainerState {
        let s = self.runtime.wait(&c.id, WAIT).expect("wait");
        assert!(!s.is_running(), "{} still running after {WAIT:?}", c.id);
        s
    }

    fn log(&self, c: &ContainerConfig) -> String {
        let path = self.runtime.log_path(&c.log).expect("log path");
        fs::read_to_string(&path).unwrap_or_default()
    }

    /// The text of the container's log entries of one stream, one line each.
    fn lines(&self, c: &ContainerConfig, stream: &str) -> Vec<String> {
        self.log(c)
            .lines()
            .filter_map(|l| {
                let mut parts = l.splitn(4, ' ');
                let (_ts, s, tag, text) = (
                    parts.next()?,
                    parts.next()?,
                    parts.next()?,
                    parts.next().unwrap_or(""),
                );
                (s == stream && tag == "F").then(|| text.to_string())
            })
            .collect()
    }

    /// Stops and removes every container, sandbox and cgroup of the test.
    fn cleanup(&self) -> Result<(), RuntimeError> {
        for id in self.runtime.list()? {
            self.runtime.stop(&id, Duration::ZERO)?;
            self.runtime.remove(&id)?;
        }
        for uid in &self.sandboxes {
            self.runtime.destroy_sandbox(uid)?;
            // Idempotent.
            self.runtime.destroy_sandbox(uid)?;
        }
        self.runtime.remove_pod_cgroup(&self.pod_uid)?;
        self.runtime.cgroups().remove_parent()?;
        Ok(())
    }

    /// Cleans up, then checks that nothing is left.
    fn finish(mut self) {
        self.cleanup().expect("cleanup");
        self.finished = true;
        assert_nothing_left(self.dir.path(), &self.parent);
    }
}

impl Drop for Fixture {
    /// A failed test still cleans up what it can (before its directory goes).
    fn drop(&mut self) {
        if !self.finished
            && let Err(e) = self.cleanup()
        {
            eprintln!("cleanup after a failed test: {e}");
        }
    }
}

fn runtime_at(dir: &Path, parent: &str) -> Runtime {
    Runtime::with_options(
        dir.join("state"),
        dir.join("run"),
        dir.join("logs"),
        RuntimeOptions {
            shim_binary: Some(berth_bin()),
            cgroup_parent: parent.to_string(),
            ..RuntimeOptions::default()
        },
    )
    .expect("runtime")
}

fn assert_nothing_left(dir: &Path, parent: &str) {
    let dir_s = dir.to_string_lossy().to_string();
    let mounts = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let leaked: Vec<&str> = mounts.lines().filter(|l| l.contains(&dir_s)).collect();
    assert!(leaked.is_empty(), "mounts left: {leaked:#?}");
    for entry in fs::read_dir("/sys/fs/cgroup").expect("cgroupfs").flatten() {
        let p = entry.path().join(parent.trim_start_matches('/'));
        assert!(!p.exists(), "cgroup left: {}", p.display());
    }
    assert!(
        !Path::new("/sys/fs/cgroup")
            .join(parent.trim_start_matches('/'))
            .exists(),
        "v2 cgroup left"
    );
    let shims = live_processes_mentioning(&dir_s);
    assert!(shims.is_empty(), "processes left: {shims:?}");
}

/// Live (non-zombie) processes whose command line mentions `needle`.
fn live_processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && pid != std::process::id() as i32 {
            out.push((pid, cmdline));
        }
    }
    out
}

fn exited(state: &ContainerState) -> (i32, Option<i32>, bool) {
    match state {
        ContainerState::Exited {
            exit_code,
            signal,
            oom_killed,
            ..
        } => (*exit_code, *signal, *oom_killed),
        other => panic!("not exited: {other:?}"),
    }
}

#[test]
fn stdout_and_stderr_become_cri_log_lines() {
    let fx = Fixture::new();
    let c = fx.config("echo", "echo out1; echo err1 >&2; echo out2; printf tail");
    fx.start(&c);
    let s = fx.wait_exit(&c);
    assert_eq!(exited(&s), (0, None, false));
    assert_eq!(fx.lines(&c, "stdout"), vec!["out1", "out2", "tail"]);
    assert_eq!(fx.lines(&c, "stderr"), vec!["err1"]);
    // Format: 2026-11-23T10:00:00.123456789Z stdout F out1
    let first = fx.log(&c).lines().next().expect("a line").to_string();
    let ts = first.split(' ').next().expect("ts");
    assert_eq!(ts.len(), 30, "{first}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{first}");
    assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{first}");
    if let ContainerState::Exited {
        started_at,
        finished_at,
        error,
        ..
    } = &s
    {
        assert!(started_at.is_some_and(|t| t <= *finished_at));
        assert!(error.is_none());
    }
    assert_eq!(fx.runtime.list().expect("list"), vec![c.id.clone()]);
    fx.finish();
}

#[test]
fn exit_code_is_recorded() {
    let fx = Fixture::new();
    let c = fx.config("exit3", "exit 3");
    fx.start(&c);
    assert_eq!(exited(&fx.wait_exit(&c)), (3, None, false));
    // The shim deleted the container's cgroup and libcontainer state, and had nothing to
    // complain about.
    for d in fx.runtime.cgroups().dirs(&c.cgroups_path) {
        assert!(!d.exists(), "cgroup {} left", d.display());
    }
    let dir = fx.runtime.state_root().join(&c.id);
    assert!(!dir.join("lc").join(&c.id).exists());
    let shim_log = fs::read_to_string(dir.join("shim.log")).expect("shim log");
    assert_eq!(shim_log, "", "the shim logged errors");
    // Removing twice is fine; the state is gone.
    fx.runtime.remove(&c.id).expect("remove");
    fx.runtime.remove(&c.id).expect("remove again");
    assert!(matches!(
        fx.runtime.state(&c.id),
        Err(RuntimeError::NotFound { .. })
    ));
    fx.finish();
}

#[test]
fn a_signal_is_recorded() {
    let fx = Fixture::new();
    let c = fx.config("sleeper", "exec sleep 1000");
    fx.start(&c);
    assert!(matches!(
        fx.runtime.state(&c.id).expect("state"),
        ContainerState::Running { .. }
    ));
    assert!(matches!(
        fx.runtime.remove(&c.id),
        Err(RuntimeError::StillRunning { .. })
    ));
    fx.runtime
        .kill(&c.id, Signal::SIGKILL, false)
        .expect("kill");
    assert_eq!(exited(&fx.wait_exit(&c)), (137, Some(9), false));
    assert!(matches!(
        fx.runtime.kill(&c.id, Signal::SIGKILL, false),
        Err(RuntimeError::NotRunning { .. })
    ));
    fx.finish();
}

#[test]
fn an_unknown_binary_is_a_create_error() {
    let fx = Fixture::new();
    let mut c = fx.config("nobin", "");
    c.args = vec!["/no/such/binary".into()];
    match fx.runtime.start(&c) {
        Err(RuntimeError::CreateContainer {
            reason, message, ..
        }) => {
            assert_eq!(reason, FailureReason::CreateContainerError);
            assert!(message.contains("/no/such/binary"), "{message}");
            eprintln!("create error: {message}");
        }
        other => panic!("expected a create error, got {other:?}"),
    }
    match fx.runtime.state(&c.id).expect("state") {
        ContainerState::Exited {
            exit_code,
            error: Some(error),
            ..
        } => {
            assert_eq!(exit_code, 128);
            assert_eq!(error.reason, FailureReason::CreateContainerError);
            assert!(
                error.message.contains("/no/such/binary"),
                "{}",
                error.message
            );
        }
        other => panic!("expected a recorded error, got {other:?}"),
    }
    fx.finish();
}

#[test]
fn memory_limit_ends_in_an_oom_kill() {
    let fx = Fixture::new();
    // The shell itself holds 64 MiB in a variable: the OOM killer picks it.
    let mut c = fx.config("hog", "x=$(yes | head -c 67108864); echo survived");
    c.resources.memory_limit = Some(16 << 20);
    fx.start(&c);
    let (code, _signal, oom) = exited(&fx.wait_exit(&c));
    assert!(oom, "not recorded as OOM-killed (exit {code})");
    assert_ne!(code, 0);
    assert!(!fx.log(&c).contains("survived"));
    fx.finish();
}

#[test]
fn cgroup_files_show_the_limits() {
    let fx = Fixture::new();
    let mut c = fx.config("limited", "exec sleep 1000");
    c.resources = Resources {
        cpu_shares: Some(berth::runtime::spec::milli_cpu_to_shares(500)),
        cpu_quota: berth::runtime::spec::milli_cpu_to_quota(250, 100_000),
        cpu_period: Some(100_000),
        memory_limit: Some(64 << 20),
        pids_limit: Some(100),
    };
    fx.start(&c);
    let cg = fx.runtime.cgroups();
    let read = |controller: &str, file: &str| -> String {
        let dir = cg.controller_dir(controller, &c.cgroups_path).expect("dir");
        fs::read_to_string(dir.join(file))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
            .trim()
            .to_string()
    };
    match cg.version() {
        berth::runtime::CgroupVersion::V1 => {
            assert_eq!(
                read("memory", "memory.limit_in_bytes"),
                (64u64 << 20).to_string()
            );
            assert_eq!(
                read("memory", "memory.memsw.limit_in_bytes"),
                (64u64 << 20).to_string()
            );
            assert_eq!(read("cpu", "cpu.cfs_quota_us"), "25000");
            assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
            assert_eq!(read("cpu", "cpu.shares"), "512");
            assert_eq!(read("pids", "pids.max"), "100");
        }
        berth::runtime::CgroupVersion::V2 => {
            assert_eq!(read("memory", "memory.max"), (64u64 << 20).to_string());
            assert_eq!(read("cpu", "cpu.max"), "25000 100000");
            assert_eq!(read("pids", "pids.max"), "100");
        }
    }
    // Pod-level limits on the pod cgroup.
    let pod_limits = Resources {
        cpu_shares: Some(1024),
        memory_limit: Some(128 << 20),
        pids_limit: Some(200),
        ..Resources::default()
    };
    fx.runtime
        .create_pod_cgroup(&fx.pod_uid, &pod_limits)
        .expect("pod limits");
    let pod_path = cg.pod_path(&fx.pod_uid).expect("pod path");
    let read_pod = |controller: &str, file: &str| -> String {
        let dir = cg.controller_dir(controller, &pod_path).expect("dir");
        fs::read_to_string(dir.join(file))
            .expect("pod file")
            .trim()
            .to_string()
    };
    if cg.version() == berth::runtime::CgroupVersion::V1 {
        assert_eq!(
            read_pod("memory", "memory.limit_in_bytes"),
            (128u64 << 20).to_string()
        );
        assert_eq!(read_pod("cpu", "cpu.shares"), "1024");
        assert_eq!(read_pod("pids", "pids.max"), "200");
    }
    // A pod cgroup with a running container cannot go.
    assert!(matches!(
        fx.runtime.remove_pod_cgroup(&fx.pod_uid),
        Err(RuntimeError::Cgroup(
            berth::runtime::CgroupError::Busy { .. }
        ))
    ));

    let stats = cg.stats(&c.cgroups_path).expect("stats");
    assert!(stats.memory_usage_bytes.is_some_and(|m| m > 0));
    assert_eq!(stats.memory_limit_bytes, Some(64 << 20));
    assert_eq!(stats.pids, Some(1));

    // The shim's memory, for the report (measured, never asserted).
    if let Some(shim) = fx.runtime.shim_pid(&c.id).expect("shim pid")
        && let Ok(rollup) = fs::read_to_string(format!("/proc/{shim}/smaps_rollup"))
    {
        let pick = |key: &str| {
            rollup
                .lines()
                .find(|l| l.starts_with(key))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
                .unwrap_or_default()
        };
        eprintln!(
            "shim {shim}: Rss {} kB, Pss {} kB, Private_Dirty {} kB, Pss_Anon {} kB",
            pick("Rss:"),
            pick("Pss:"),
            pick("Private_Dirty:"),
            pick("Pss_Anon:")
        );
    }
    fx.finish();
}

#[test]
fn containers_of_a_sandbox_share_hostname_and_loopback() {
    let mut fx = Fixture::new();
    let sandbox = fx.sandbox("web-pod");
    // Creating it again returns the same, still mounted, sandbox.
    assert_eq!(fx.sandbox("web-pod"), sandbox);
    let mounts = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(mounts.contains(&sandbox.net.to_string_lossy().to_string()));
    // busybox httpd and wget rather than nc: busybox nc half-closes as soon as its stdin
    // (here /dev/null) ends, which races with the peer's data.
    let mut server = fx.config(
        "server",
        "hostname; cat /etc/hosts; echo shm-shared > /dev/shm/marker; \
         mkdir -p /tmp/www && echo hello > /tmp/www/index.html && \
         exec httpd -f -p 8080 -h /tmp/www",
    );
    server.join_sandbox(&sandbox);
    let mut client = fx.config(
        "client",
        "hostname; for i in $(seq 100); do \
           wget -q -O - http://127.0.0.1:8080/index.html && { cat /dev/shm/marker; exit 0; }; \
           sleep 0.1; \
         done; exit 1",
    );
    client.join_sandbox(&sandbox);
    fx.start(&server);
    fx.start(&client);
    assert_eq!(exited(&fx.wait_exit(&client)), (0, None, false));
    // The client got the page over the shared loopback, and read what the server left in
    // the pod's /dev/shm.
    assert_eq!(
        fx.lines(&client, "stdout"),
        vec!["web-pod", "hello", "shm-shared"],
        "{}",
        fx.log(&client)
    );
    let served = fx.lines(&server, "stdout");
    assert_eq!(served.first().map(String::as_str), Some("web-pod"));
    assert!(
        served.iter().any(|l| l == "127.0.0.1\tweb-pod"),
        "{served:?}"
    );
    // httpd, the server's init, keeps serving until finish() kills it.
    fx.finish();
}

#[test]
fn default_security_from_inside() {
    let fx = Fixture::new();
    let c = fx.config(
        "secure",
        "grep -E '^(CapEff|Seccomp|NoNewPrivs|SigBlk|SigIgn):' /proc/self/status; \
         echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c); \
         echo keys-masked=$(grep -c ' /proc/keys ' /proc/self/mountinfo); \
         echo keys=$(cat /proc/keys | wc -c); \
         echo pids=$(ls /proc | grep -cE '^[0-9]+$'); \
         echo self=$$; \
         unshare -U true 2>/dev/null && echo userns=allowed || echo userns=denied; \
         echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo procsys=rw || echo procsys=ro",
    );
    fx.start(&c);
    assert_eq!(exited(&fx.wait_exit(&c)), (0, None, false));
    let out = fx.lines(&c, "stdout");
    let field = |key: &str| -> String {
        out.iter()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("{key} missing in {out:?}"))
    };
    let want: u64 = DEFAULT_CAPABILITIES
        .iter()
        .map(|c| 1u64 << capability_bit(*c))
        .sum();
    assert_eq!(want, 0xa80425fb);
    assert_eq!(field("CapEff:"), format!("{want:016x}"));
    assert_eq!(field("Seccomp:"), "2");
    assert_eq!(field("NoNewPrivs:"), "1");
    // Nothing of the shim's signal state (blocked SIGCHLD, ignored SIGPIPE, …) leaks into
    // the container.
    assert_eq!(field("SigBlk:"), "0000000000000000");
    assert_eq!(field("SigIgn:"), "0000000000000000");
    // /proc/kcore reads empty (masked, or absent as on these VMs' kernels); /proc/keys,
    // present everywhere, is masked by /dev/null.
    assert_eq!(field("kcore="), "0");
    assert_eq!(field("keys-masked="), "1");
    assert_eq!(field("keys="), "0");
    assert_eq!(field("self="), "1");
    let pids: u32 = field("pids=").parse().expect("pid count");
    assert!(pids <= 4, "the container sees {pids} processes");
    assert_eq!(field("userns="), "denied");
    assert_eq!(field("procsys="), "ro");
    fx.finish();
}

#[test]
fn a_privileged_container_gets_what_the_host_allows() {
    let fx = Fixture::new();
    let mut c = fx.config(
        "privileged",
        "grep -E '^(CapEff|Seccomp):' /proc/self/status; echo keys-masked=$(grep -c ' /proc/keys ' /proc/self/mountinfo)",
    );
    c.security.privileged = true;
    fx.start(&c);
    assert_eq!(exited(&fx.wait_exit(&c)), (0, None, false));
    let host_caps = fs::read_to_string("/proc/self/status")
        .expect("status")
        .lines()
        .find_map(|l| l.strip_prefix("CapPrm:").map(|v| v.trim().to_string()))
        .expect("CapPrm");
    let out = fx.lines(&c, "stdout");
    assert!(out.contains(&format!("CapEff:\t{host_caps}")), "{out:?}");
    assert!(out.contains(&"Seccomp:\t0".to_string()), "{out:?}");
    assert!(out.contains(&"keys-masked=0".to_string()), "{out:?}");
    fx.finish();
}

#[test]
fn stop_kills_a_shell_that_ignores_sigterm_after_the_grace() {
    let fx = Fixture::new();
    let c = fx.config("stubborn", "while true; do sleep 1; done");
    fx.start(&c);
    let t = Instant::now();
    let s = fx
        .runtime
        .stop(&c.id, Duration::from_secs(1))
        .expect("stop");
    assert!(t.elapsed() >= Duration::from_secs(1));
    assert_eq!(exited(&s), (137, Some(9), false));
    fx.finish();
}

#[test]
fn a_shim_that_cannot_run_leaves_nothing_behind() {
    let fx = Fixture::new();
    let broken = Runtime::with_options(
        fx.dir.path().join("state"),
        fx.dir.path().join("run"),
        fx.dir.path().join("logs"),
        RuntimeOptions {
            shim_binary: Some(fx.dir.path().join("no-such-berth")),
            cgroup_parent: fx.parent.clone(),
            ..RuntimeOptions::default()
        },
    )
    .expect("runtime");
    let c = fx.config("retry", "exit 0");
    assert!(matches!(
        broken.start(&c),
        Err(RuntimeError::SpawnShim { .. })
    ));
    assert!(fx.runtime.list().expect("list").is_empty());
    // The same id works once the shim can run.
    fx.start(&c);
    assert_eq!(exited(&fx.wait_exit(&c)), (0, None, false));
    assert!(matches!(
        fx.runtime.start(&c),
        Err(RuntimeError::AlreadyExists { .. })
    ));
    fx.finish();
}

#[test]
fn a_container_whose_shim_died_is_cleaned_up_by_remove() {
    let fx = Fixture::new();
    let c = fx.config("orphan", "exec sleep 1000");
    fx.start(&c);
    let shim = fx.runtime.shim_pid(&c.id).expect("pid").expect("alive");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(shim), Signal::SIGKILL).expect("kill shim");
    let deadline = Instant::now() + WAIT;
    while fx.runtime.state(&c.id).expect("state") != ContainerState::Unknown {
        assert!(Instant::now() < deadline, "the dead shim is not noticed");
        std::thread::sleep(Duration::from_millis(10));
    }
    // remove() has libcontainer kill the orphaned container and delete its cgroup.
    fx.runtime.remove(&c.id).expect("remove");
    for d in fx.runtime.cgroups().dirs(&c.cgroups_path) {
        assert!(!d.exists(), "cgroup {} left", d.display());
    }
    fx.finish();
}

/// Run by [`the_shim_outlives_its_caller`] in a child process: starts a container, says so,
/// then waits to be killed.
#[test]
fn helper_start_and_hang() {
    let Ok(dir) = std::env::var("BERTH_TEST_HELPER_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let parent = std::env::var("BERTH_TEST_HELPER_PARENT").expect("parent");
    let pod_uid = std::env::var("BERTH_TEST_HELPER_POD").expect("pod");
    let id = std::env::var("BERTH_TEST_HELPER_ID").expect("id");
    let runtime = runtime_at(&dir, &parent);
    let mut c = ContainerConfig::new(
        id.clone(),
        dir.join("rootfs"),
        vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo up; exec sleep 1000".into(),
        ],
    );
    c.cgroups_path = runtime.container_cgroup_path(&pod_uid, &id).expect("path");
    c.log = LogLocation {
        namespace: "default".into(),
        pod_name: "pod".into(),
        pod_uid,
        container_name: "survivor".into(),
        restart_count: 0,
    };
    runtime.start(&c).expect("start");
    println!("STARTED");
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn the_shim_outlives_its_caller() {
    let fx = Fixture::new();
    let id = format!("survivor-{}", common::random_suffix());
    let mut helper = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "helper_start_and_hang",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("BERTH_TEST_HELPER_DIR", fx.dir.path())
        .env("BERTH_TEST_HELPER_PARENT", &fx.parent)
        .env("BERTH_TEST_HELPER_POD", &fx.pod_uid)
        .env("BERTH_TEST_HELPER_ID", &id)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn helper");
    let stdout = helper.stdout.take().expect("stdout");
    let started = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("STARTED"));
    assert!(started, "the helper did not start the container");
    // The caller dies the hard way, as a crashed daemon would.
    helper.kill().expect("kill helper");
    helper.wait().expect("reap helper");

    // A new runtime over the same directories (a restarted daemon) finds it running.
    let runtime = runtime_at(fx.dir.path(), &fx.parent);
    assert_eq!(runtime.list().expect("list"), vec![id.clone()]);
    let s = runtime.state(&id).expect("state");
    assert!(matches!(s, ContainerState::Running { .. }), "{s:?}");
    let shim = runtime.shim_pid(&id).expect("shim").expect("shim alive");
    assert!(Path::new(&format!("/proc/{shim}")).exists());

    runtime.kill(&id, Signal::SIGKILL, true).expect("kill");
    let s = runtime.wait(&id, WAIT).expect("wait");
    assert_eq!(exited(&s), (137, Some(9), false));
    let log_path = runtime
        .log_path(&LogLocation {
            namespace: "default".into(),
            pod_name: "pod".into(),
            pod_uid: fx.pod_uid.clone(),
            container_name: "survivor".into(),
            restart_count: 0,
        })
        .expect("log path");
    assert!(
        fs::read_to_string(log_path)
            .expect("log")
            .contains(" stdout F up")
    );
    fx.finish();
}

/// Per-shim memory with several containers running (shared pages split between them).
/// Measured, not asserted: `cargo test --release --test runtime -- --ignored --nocapture`
/// (or with `BERTH_TEST_SHIM_BINARY` pointing at a release `berth`).
#[test]
#[ignore]
fn measure_shim_memory() {
    const N: usize = 10;
    let fx = Fixture::new();
    let configs: Vec<ContainerConfig> = (0..N)
        .map(|i| fx.config(&format!("m{i}"), "exec sleep 1000"))
        .collect();
    let t = Instant::now();
    for c in &configs {
        fx.start(c);
    }
    eprintln!(
        "start(): {:?} per container, one after another",
        t.elapsed() / N as u32
    );
    let field = |rollup: &str, key: &str| -> u64 {
        rollup
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let (mut rss, mut pss, mut anon, mut dirty) = (0, 0, 0, 0);
    for c in &configs {
        let shim = fx.runtime.shim_pid(&c.id).expect("pid").expect("alive");
        let rollup = fs::read_to_string(format!("/proc/{shim}/smaps_rollup")).expect("rollup");
        rss += field(&rollup, "Rss:");
        pss += field(&rollup, "Pss:");
        anon += field(&rollup, "Pss_Anon:");
        dirty += field(&rollup, "Private_Dirty:");
    }
    let n = N as u64;
    eprintln!(
        "{N} shims, per shim: Rss {} kB, Pss {} kB, Pss_Anon {} kB, Private_Dirty {} kB",
        rss / n,
        pss / n,
        anon / n,
        dirty / n
    );
    fx.finish();
}

// --- the kubelet's log and metrics services over real containers ---------------------

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// Reads a whole log stream (with a deadline, so a stream that never ends fails the test).
fn read_stream(mut rx: berth::server::node::LogStream) -> String {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "the log stream did not end: {out:?}"
        );
        match rx.try_recv() {
            Ok(chunk) => out.extend_from_slice(&chunk.expect("chunk")),
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
        }
    }
    String::from_utf8(out).expect("utf8")
}

fn log_request(c: &ContainerConfig) -> berth::server::node::LogRequest {
    berth::server::node::LogRequest {
        namespace: c.log.namespace.clone(),
        pod_name: c.log.pod_name.clone(),
        pod_uid: c.log.pod_uid.clone(),
        container: c.log.container_name.clone(),
        container_id: Some(format!("berth://{}", c.id)),
        restart_count: c.log.restart_count,
        ..Default::default()
    }
}

#[test]
fn the_log_service_follows_a_container_until_it_exits() {
    use berth::server::node::LogService;
    let fx = Fixture::new();
    let c = fx.config(
        "talker",
        "echo one; sleep 0.2; echo two >&2; sleep 1; for i in 0 1 2; do echo n$i; sleep 0.2; done; printf end",
    );
    fx.start(&c);
    let logs = berth::kubelet::logs::Logs::new(fx.runtime.clone());
    let follow = berth::server::node::LogRequest {
        follow: true,
        ..log_request(&c)
    };
    let rx = block_on(logs.logs(follow)).expect("follow");
    let got = read_stream(rx);
    assert_eq!(got, "one\ntwo\nn0\nn1\nn2\nend\n");
    assert!(
        !fx.runtime.state(&c.id).expect("state").is_running(),
        "the stream ended with the run"
    );
    // After the end: tail, timestamps, limit.
    let tail = berth::server::node::LogRequest {
        tail_lines: Some(2),
        timestamps: true,
        ..log_request(&c)
    };
    let got = read_stream(block_on(logs.logs(tail)).expect("tail"));
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 2, "{got:?}");
    for (line, text) in lines.iter().zip(["n2", "end"]) {
        let (ts, rest) = line.split_once(' ').expect("timestamp");
        assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{ts}");
        assert_eq!(rest, text);
    }
    let limited = berth::server::node::LogRequest {
        limit_bytes: Some(5),
        ..log_request(&c)
    };
    assert_eq!(
        read_stream(block_on(logs.logs(limited)).expect("limit")),
        "one\nt"
    );
    fx.finish();
}

#[test]
fn the_metrics_service_measures_a_busy_container() {
    use berth::server::node::MetricsService;
    let fx = Fixture::new();
    let c = fx.config("spinner", "while :; do :; done");
    fx.start(&c);
    let metrics = std::sync::Arc::new(berth::kubelet::metrics::Metrics::new(fx.runtime.clone()));
    let pod = serde_json::json!({
        "metadata": {"name": "pod", "namespace": "default", "uid": fx.pod_uid, "labels": {"app": "spin"}},
        "status": {"containerStatuses": [{
            "name": "spinner", "containerID": format!("berth://{}", c.id),
            "restartCount": 0, "state": {"running": {}},
        }, {
            "name": "gone", "containerID": "berth://no-such-container",
            "restartCount": 0, "state": {"running": {}},
        }]},
    });
    let list = block_on(metrics.pod_metrics(vec![pod])).expect("pod metrics");
    assert_eq!(list["kind"], "PodMetricsList");
    let item = &list["items"][0];
    assert_eq!(item["metadata"]["name"], "pod");
    assert_eq!(item["metadata"]["labels"]["app"], "spin");
    let containers = item["containers"].as_array().expect("containers");
    assert_eq!(
        containers.len(),
        1,
        "a container without a cgroup is left out: {list}"
    );
    assert_eq!(containers[0]["name"], "spinner");
    let cpu = containers[0]["usage"]["cpu"].as_str().expect("cpu");
    let nanocores: u64 = cpu
        .strip_suffix('n')
        .expect("nanocores")
        .parse()
        .expect("number");
    // A busy loop on a shared machine: well above 10 millicores.
    assert!(nanocores > 10_000_000, "{cpu}");
    let memory = containers[0]["usage"]["memory"].as_str().expect("memory");
    let kib: u64 = memory
        .strip_suffix("Ki")
        .expect("Ki")
        .parse()
        .expect("number");
    assert!(kib > 0, "{memory}");
    // A second request soon after uses the previous sample.
    let again = block_on(metrics.pod_metrics(vec![item.clone()])).expect("again");
    assert!(
        again["items"].as_array().expect("items").is_empty(),
        "no statuses, no metrics"
    );
    let node = block_on(metrics.node_metrics()).expect("node metrics");
    let usage = &node["items"][0]["usage"];
    assert!(usage["cpu"].as_str().expect("cpu").ends_with('n'));
    assert!(usage["memory"].as_str().expect("memory").ends_with("Ki"));
    fx.runtime.stop(&c.id, Duration::ZERO).expect("stop");
    fx.finish();
}
