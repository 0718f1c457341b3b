//! `Runtime::exec` (`berth shim exec`) with real containers, as root: exit codes, pipes,
//! a terminal that resizes, the container's namespaces, cgroup and security settings.
//!
//! Each test has its own temporary directory, cgroup parent and busybox rootfs, runs one
//! long-lived container (`sleep`) and ends with [`Fixture::finish`], which removes
//! everything and checks that no mount, cgroup or process is left.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth::runtime::spec::{DEFAULT_CAPABILITIES, capability_bit};
use berth::runtime::{
    ContainerConfig, ExecChild, ExecError, ExecSpec, LogLocation, Resources, Runtime, RuntimeError,
    RuntimeOptions,
};
use nix::sys::signal::Signal;

const WAIT: Duration = Duration::from_secs(30);

struct Fixture {
    dir: tempfile::TempDir,
    runtime: Runtime,
    parent: String,
    pod_uid: String,
    sandbox: bool,
    /// The running container every exec goes into.
    id: String,
    finished: bool,
}

impl Fixture {
    /// A running `sleep` container in a pod sandbox whose hostname is `exec-pod`.
    fn new() -> Fixture {
        Fixture::with(|_| {})
    }

    /// The same, with the container's configuration adjusted by `adjust`.
    fn with(adjust: impl FnOnce(&mut ContainerConfig)) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .expect("tempdir");
        let parent = format!("/berth-test-{}", common::random_suffix());
        let runtime = Runtime::with_options(
            dir.path().join("state"),
            dir.path().join("run"),
            dir.path().join("logs"),
            RuntimeOptions {
                shim_binary: Some(PathBuf::from(env!("CARGO_BIN_EXE_berth"))),
                cgroup_parent: parent.clone(),
                ..RuntimeOptions::default()
            },
        )
        .expect("runtime");
        let rootfs = common::busybox_rootfs(dir.path());
        let pod_uid = uuid::Uuid::new_v4().to_string();
        runtime
            .create_pod_cgroup(&pod_uid, &Resources::default())
            .expect("pod cgroup");
        let mut fx = Fixture {
            dir,
            runtime,
            parent,
            pod_uid,
            sandbox: false,
            id: format!("main-{}", common::random_suffix()),
            finished: false,
        };
        let sandbox = fx
            .runtime
            .create_sandbox(&fx.pod_uid, "exec-pod", false)
            .expect("sandbox");
        fx.sandbox = true;
        let mut c = ContainerConfig::new(
            fx.id.clone(),
            &rootfs,
            vec!["/bin/sleep".into(), "1000".into()],
        );
        c.env.push("GREETING=from-the-pod".into());
        c.cgroups_path = fx
            .runtime
            .container_cgroup_path(&fx.pod_uid, &fx.id)
            .expect("cgroup path");
        c.log = LogLocation {
            namespace: "default".into(),
            pod_name: "exec-pod".into(),
            pod_uid: fx.pod_uid.clone(),
            container_name: "main".into(),
            restart_count: 0,
        };
        c.join_sandbox(&sandbox);
        adjust(&mut c);
        fx.runtime.start(&c).expect("start");
        fx
    }

    fn exec(&self, args: &[&str], stdin: bool, tty: bool) -> ExecChild {
        self.runtime
            .exec(
                &self.id,
                &ExecSpec {
                    args: args.iter().map(|s| s.to_string()).collect(),
                    env: Vec::new(),
                    stdin,
                    tty,
                },
            )
            .expect("exec")
    }

    fn cleanup(&self) -> Result<(), RuntimeError> {
        for id in self.runtime.list()? {
            self.runtime.stop(&id, Duration::ZERO)?;
            self.runtime.remove(&id)?;
        }
        if self.sandbox {
            self.runtime.destroy_sandbox(&self.pod_uid)?;
        }
        self.runtime.remove_pod_cgroup(&self.pod_uid)?;
        self.runtime.cgroups().remove_parent()?;
        Ok(())
    }

    fn finish(mut self) {
        self.cleanup().expect("cleanup");
        self.finished = true;
        assert_nothing_left(self.dir.path(), &self.parent);
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if !self.finished
            && let Err(e) = self.cleanup()
        {
            eprintln!("cleanup after a failed test: {e}");
        }
    }
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
    let deadline = Instant::now() + WAIT;
    loop {
        let left = live_processes_mentioning(&dir_s);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "processes left: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
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

fn read_all(f: Option<fs::File>) -> String {
    let mut s = Vec::new();
    if let Some(mut f) = f {
        // A pty master reads EIO once the terminal's last user is gone: that is its end.
        let mut buf = [0u8; 4096];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => s.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
    String::from_utf8_lossy(&s).into_owned()
}

fn wait(child: &mut ExecChild) -> i32 {
    child
        .wait(Some(WAIT))
        .expect("wait")
        .unwrap_or_else(|| panic!("exec still running after {WAIT:?}"))
}

#[test]
fn exit_codes_and_signals_come_back() {
    let fx = Fixture::new();
    let mut child = fx.exec(&["sh", "-c", "exit 3"], false, false);
    assert!(child.pid() > 0);
    assert_eq!(wait(&mut child), 3);
    // Asking again gives the same answer.
    assert_eq!(child.wait(None).expect("wait"), Some(3));
    let mut child = fx.exec(&["sh", "-c", "kill -9 $$"], false, false);
    assert_eq!(wait(&mut child), 137);
    let mut child = fx.exec(&["true"], false, false);
    assert_eq!(wait(&mut child), 0);
    let mut child = fx.exec(&["tty"], true, true);
    assert_eq!(wait(&mut child), 0);
    // Execs leave no files behind (exec probes run every few seconds for months).
    let dir = fx.runtime.state_root().join(&fx.id);
    let names = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&dir), vec!["bundle", "lc", "shim.json", "shim.log"]);
    let lc = names(&dir.join("lc").join(&fx.id));
    assert!(
        lc.iter().all(|n| !n.starts_with("tenant-")),
        "libcontainer state: {lc:?}"
    );
    fx.finish();
}

#[test]
fn stdin_stdout_and_stderr_are_pipes() {
    let fx = Fixture::new();
    let mut child = fx.exec(&["cat"], true, false);
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"hello through cat\n").expect("write");
    drop(stdin);
    assert_eq!(read_all(child.stdout.take()), "hello through cat\n");
    assert_eq!(wait(&mut child), 0);

    let mut child = fx.exec(
        &["sh", "-c", "echo out; echo err >&2; echo $GREETING"],
        false,
        false,
    );
    assert!(child.stdin.is_none());
    let err = child.stderr.take();
    assert_eq!(read_all(child.stdout.take()), "out\nfrom-the-pod\n");
    assert_eq!(read_all(err), "err\n");
    assert_eq!(wait(&mut child), 0);

    // Extra environment overrides the container's.
    let mut child = fx
        .runtime
        .exec(
            &fx.id,
            &ExecSpec {
                args: vec!["sh".into(), "-c".into(), "echo $GREETING $EXTRA".into()],
                env: vec![
                    ("GREETING".into(), "hi".into()),
                    ("EXTRA".into(), "x".into()),
                ],
                ..ExecSpec::default()
            },
        )
        .expect("exec");
    assert_eq!(read_all(child.stdout.take()), "hi x\n");
    assert_eq!(wait(&mut child), 0);
    fx.finish();
}

#[test]
fn a_terminal_is_a_pty_of_the_container_and_resizes() {
    let fx = Fixture::new();
    let mut child = fx.exec(
        &[
            "sh",
            "-c",
            "tty; stty size; read x; stty size; echo \"got $x\"",
        ],
        true,
        true,
    );
    assert!(child.has_tty());
    assert!(child.stderr.is_none());
    let mut out = child.stdout.take().expect("terminal");
    let mut stdin = child.stdin.take().expect("terminal input");
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    // Read until the first `stty size` has answered (two lines).
    while String::from_utf8_lossy(&seen).lines().count() < 2 {
        let n = out.read(&mut buf).expect("read the terminal");
        assert!(
            n > 0,
            "terminal closed early: {:?}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    child.resize(123, 45).expect("resize");
    stdin.write_all(b"line\n").expect("write");
    let rest = read_all(Some(out));
    assert_eq!(wait(&mut child), 0);
    let text = String::from_utf8_lossy(&seen).to_string() + &rest;
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("/dev/pts/")),
        "{text:?}"
    );
    // The terminal echoes the input line.
    assert!(lines.contains(&"line"), "{text:?}");
    assert!(lines.contains(&"45 123"), "{text:?}");
    assert!(lines.contains(&"got line"), "{text:?}");
    fx.finish();
}

#[test]
fn an_exec_sees_the_containers_namespaces_and_cgroup() {
    let fx = Fixture::new();
    let mut child = fx.exec(
        &[
            "sh",
            "-c",
            "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; \
             echo pids=$(ls /proc | grep -cE '^[0-9]+$'); \
             [ \"$(cat /proc/self/cgroup)\" = \"$(cat /proc/1/cgroup)\" ] && echo cgroup=same",
        ],
        false,
        false,
    );
    let out = read_all(child.stdout.take());
    assert_eq!(wait(&mut child), 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"exec-pod"), "{out}");
    assert_eq!(
        lines.get(1).map(|l| l.trim()),
        Some("/bin/sleep 1000"),
        "{out}"
    );
    // sleep, sh, ls, grep (and perhaps the subshell): nothing of the host.
    let pids: u32 = lines
        .iter()
        .find_map(|l| l.strip_prefix("pids="))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(pids <= 6, "the exec sees {pids} processes");
    assert!(lines.contains(&"cgroup=same"), "{out}");
    fx.finish();
}

#[test]
fn an_exec_is_as_confined_as_its_container() {
    let fx = Fixture::new();
    let mut child = fx.exec(
        &[
            "sh",
            "-c",
            "grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs|SigBlk|SigIgn):' /proc/self/status; \
             grep -E '^(CapBnd|Seccomp):' /proc/1/status | sed 's/^/init-/'; id -u",
        ],
        false,
        false,
    );
    let out = read_all(child.stdout.take());
    assert_eq!(wait(&mut child), 0);
    let field = |key: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("{key} missing in {out}"))
    };
    let want: u64 = DEFAULT_CAPABILITIES
        .iter()
        .map(|c| 1u64 << capability_bit(*c))
        .sum();
    assert_eq!(field("CapEff:"), format!("{want:016x}"));
    assert_eq!(field("CapBnd:"), field("init-CapBnd:"));
    assert_eq!(field("Seccomp:"), "2", "the container's seccomp filter");
    assert_eq!(field("init-Seccomp:"), "2");
    assert_eq!(field("NoNewPrivs:"), "1");
    assert_eq!(field("SigBlk:"), "0000000000000000");
    assert_eq!(field("SigIgn:"), "0000000000000000");
    assert_eq!(out.lines().last(), Some("0"));
    fx.finish();
}

#[test]
fn a_slow_exec_times_out_and_can_be_killed() {
    let fx = Fixture::new();
    let mut child = fx.exec(&["sleep", "1000"], false, false);
    assert_eq!(
        child.wait(Some(Duration::from_millis(50))).expect("wait"),
        None
    );
    child.kill(Signal::SIGKILL).expect("kill");
    assert_eq!(wait(&mut child), 137);
    // Dropping a running exec kills it; the container keeps running.
    let child = fx.exec(&["sleep", "999"], false, false);
    let pid = child.pid();
    drop(child);
    let deadline = Instant::now() + WAIT;
    while Path::new(&format!("/proc/{pid}/cmdline")).exists()
        && fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
    {
        assert!(Instant::now() < deadline, "the dropped exec still runs");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(fx.runtime.state(&fx.id).expect("state").is_running());
    fx.finish();
}

#[test]
fn exec_errors_say_what_is_wrong() {
    let fx = Fixture::new();
    match fx.runtime.exec(
        &fx.id,
        &ExecSpec {
            args: vec!["no-such-binary".into()],
            ..ExecSpec::default()
        },
    ) {
        Err(ExecError::Start { message, .. }) => {
            assert!(message.contains("no-such-binary"), "{message}")
        }
        other => panic!("expected a start error, got {other:?}"),
    }
    assert!(matches!(
        fx.runtime.exec("no-such-container", &ExecSpec::default()),
        Err(ExecError::Runtime { .. })
    ));
    fx.runtime
        .stop(&fx.id, Duration::ZERO)
        .expect("stop the container");
    match fx.runtime.exec(
        &fx.id,
        &ExecSpec {
            args: vec!["true".into()],
            ..ExecSpec::default()
        },
    ) {
        Err(ExecError::Runtime { source, .. }) => {
            assert!(
                matches!(*source, RuntimeError::NotRunning { .. }),
                "{source}"
            )
        }
        other => panic!("expected not running, got {other:?}"),
    }
    fx.finish();
}

#[test]
fn without_no_new_privs_an_exec_still_gets_the_seccomp_filter() {
    let fx = Fixture::with(|c| c.security.no_new_privileges = false);
    let mut child = fx.exec(
        &[
            "sh",
            "-c",
            "grep -E '^(CapEff|CapPrm|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status; \
             grep -E '^(CapEff|CapBnd):' /proc/1/status | sed 's/^/init-/'",
        ],
        false,
        false,
    );
    let out = read_all(child.stdout.take());
    assert_eq!(wait(&mut child), 0, "{out}");
    let field = |key: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("{key} missing in {out}"))
    };
    assert_eq!(field("Seccomp:"), "2", "{out}");
    assert_eq!(field("NoNewPrivs:"), "0");
    // The extra capabilities needed to load the filter are gone again.
    assert_eq!(field("CapEff:"), field("init-CapEff:"));
    assert_eq!(field("CapPrm:"), field("init-CapEff:"));
    assert_eq!(field("CapBnd:"), field("init-CapBnd:"));
    fx.finish();
}
