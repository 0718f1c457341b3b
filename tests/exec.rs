//! `berth exec` and the exec endpoint against a real daemon, as root.
//!
//! Two kinds of pods:
//! - a pod bound to another node whose status names a container this test starts itself
//!   through the runtime on the daemon's own directories: the API, the WebSocket framing,
//!   the kubelet's exec service and the CLI for real, independent of pod workers;
//! - a pod the kubelet runs from the imported busybox image (tests named `kubelet_…`).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth::api::registry;
use berth::client::{Client, ExecEvent, ExecOptions};
use berth::runtime::{ContainerConfig, LogLocation, Resources, Runtime, RuntimeOptions};
use common::{TestDaemon, berth_bin, eventually, ok, runtime, stderr, stdout};
use hyper::Method;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// A daemon plus a running container, published as container `main` of pod `web` (bound
/// to another node, so no kubelet touches it).
struct Setup {
    daemon: TestDaemon,
    runtime: Runtime,
    pod_uid: String,
    id: String,
}

impl Setup {
    fn new() -> Setup {
        Setup::with_config("")
    }

    fn with_config(extra: &str) -> Setup {
        let daemon = TestDaemon::start_with_config(extra);
        let d = daemon.dir.path();
        let runtime = Runtime::with_options(
            daemon.state_dir().join("containers"),
            d.join("run"),
            d.join("logs"),
            RuntimeOptions {
                shim_binary: Some(PathBuf::from(berth_bin())),
                cgroup_parent: format!("/{}", daemon.cgroup_parent()),
                ..RuntimeOptions::default()
            },
        )
        .expect("runtime");
        let rootfs = common::busybox_rootfs(d);
        let pod_uid = uuid::Uuid::new_v4().to_string();
        runtime
            .create_pod_cgroup(&pod_uid, &Resources::default())
            .expect("pod cgroup");
        let id = format!(
            "exec-main-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let mut c = ContainerConfig::new(
            id.clone(),
            &rootfs,
            vec!["/bin/sleep".into(), "1000".into()],
        );
        c.cgroups_path = runtime
            .container_cgroup_path(&pod_uid, &id)
            .expect("cgroup path");
        c.log = LogLocation {
            namespace: "default".into(),
            pod_name: "web".into(),
            pod_uid: pod_uid.clone(),
            container_name: "main".into(),
            restart_count: 0,
        };
        let setup = Setup {
            daemon,
            runtime,
            pod_uid,
            id,
        };
        setup.runtime.start(&c).expect("start");

        let client = setup.daemon.client();
        let rt = registry::resolve("pods").expect("pods");
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "nodeName": "some-other-node",
                "containers": [
                    {"name": "main", "image": "berth.local/busybox:latest", "imagePullPolicy": "Never"},
                    {"name": "side", "image": "berth.local/busybox:latest", "imagePullPolicy": "Never"},
                ],
            },
        });
        let id = setup.id.clone();
        runtime_block(async move {
            let created = client
                .create(rt, Some("default"), &pod)
                .await
                .expect("create pod");
            let mut with_status = created.clone();
            with_status["status"] = json!({
                "phase": "Running",
                "containerStatuses": [
                    {"name": "main", "containerID": format!("berth://{id}"), "ready": true,
                     "restartCount": 0, "image": "berth.local/busybox:latest", "imageID": "",
                     "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}},
                    {"name": "side", "ready": false, "restartCount": 0,
                     "image": "berth.local/busybox:latest", "imageID": "",
                     "state": {"waiting": {"reason": "ContainerCreating"}}},
                ],
            });
            client
                .request(
                    Method::PUT,
                    "/api/v1/namespaces/default/pods/web/status",
                    Some("application/json"),
                    Some(serde_json::to_vec(&with_status).expect("json")),
                )
                .await
                .expect("status");
        });
        setup
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.runtime.stop(&self.id, Duration::ZERO);
        let _ = self.runtime.remove(&self.id);
        let _ = self.runtime.remove_pod_cgroup(&self.pod_uid);
        self.daemon.stop();
        let _ = self.runtime.cgroups().remove_parent();
    }
}

fn runtime_block<F: std::future::Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

#[test]
fn exit_codes_stdin_and_errors_through_the_cli() {
    let s = Setup::new();
    let d = &s.daemon;
    let out = d.cli(&[
        "exec",
        "web",
        "--",
        "sh",
        "-c",
        "echo hello; echo oops >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "hello\n");
    assert!(stderr(&out).contains("oops"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("command terminated with exit code 3"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ok(&d.cli(&["exec", "web", "-c", "main", "--", "true"])), "");

    let out = d.cli_with(
        &["exec", "-i", "web", "--", "cat"],
        Some("one\ntwo\n"),
        None,
    );
    assert_eq!(ok(&out), "one\ntwo\n");

    // The exec runs inside the container: its pid 1 is the container's sleep.
    let out = d.cli(&["exec", "web", "--", "cat", "/proc/1/cmdline"]);
    assert_eq!(ok(&out).replace('\0', " ").trim(), "/bin/sleep 1000");

    let out = d.cli(&["exec", "web", "-c", "nope", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("container nope is not valid for pod web"),
        "{}",
        stderr(&out)
    );
    let out = d.cli(&["exec", "web", "-c", "side", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("container not found (\"side\")"),
        "{}",
        stderr(&out)
    );
    let out = d.cli(&["exec", "nosuchpod", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    let out = d.cli(&["exec", "web", "--", "no-such-command"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no-such-command"), "{}", stderr(&out));
    // -t without a terminal on stdin falls back to plain pipes, as kubectl does.
    let out = d.cli(&["exec", "-t", "web", "--", "sh", "-c", "tty || true"]);
    assert!(
        stderr(&out).contains("Unable to use a TTY"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ok(&out), "not a tty\n");
}

#[test]
fn a_terminal_over_the_websocket_resizes() {
    let s = Setup::new();
    let client = s.daemon.client();
    runtime_block(async move {
        let (mut writer, mut reader) = client
            .exec(
                "default",
                "web",
                &ExecOptions {
                    command: vec!["sh".into()],
                    stdin: true,
                    stdout: true,
                    tty: true,
                    ..ExecOptions::default()
                },
            )
            .await
            .expect("exec");
        writer.resize(91, 27).await.expect("resize");
        let deadline = Instant::now() + WAIT;
        let mut seen = String::new();
        // The resize and the input travel separately: ask until the new size shows.
        writer.stdin(b"tty; stty size\n").await.expect("stdin");
        while !seen.contains("27 91") {
            assert!(Instant::now() < deadline, "no resize seen: {seen:?}");
            match tokio::time::timeout(Duration::from_millis(500), reader.next()).await {
                Ok(Some(ExecEvent::Stdout(b))) => seen.push_str(&String::from_utf8_lossy(&b)),
                Ok(other) => panic!("unexpected {other:?} after {seen:?}"),
                Err(_) => writer.stdin(b"stty size\n").await.expect("stdin"),
            }
        }
        assert!(seen.contains("/dev/pts/"), "{seen:?}");
        writer.stdin(b"exit 7\n").await.expect("stdin");
        loop {
            match reader.next().await {
                Some(ExecEvent::Stdout(_)) => {}
                Some(ExecEvent::Exit(code)) => {
                    assert_eq!(code, 7);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    });
}

#[test]
fn stdin_closed_by_the_client_ends_cat() {
    let s = Setup::new();
    let client = s.daemon.client();
    runtime_block(async move {
        let (mut writer, mut reader) = client
            .exec(
                "default",
                "web",
                &ExecOptions {
                    command: vec!["cat".into()],
                    stdin: true,
                    stdout: true,
                    stderr: true,
                    ..ExecOptions::default()
                },
            )
            .await
            .expect("exec");
        writer.stdin(b"echoed back").await.expect("stdin");
        writer.close_stdin().await.expect("close");
        let mut out = Vec::new();
        loop {
            match reader.next().await {
                Some(ExecEvent::Stdout(b)) => out.extend_from_slice(&b),
                Some(ExecEvent::Exit(code)) => {
                    assert_eq!(code, 0);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(out, b"echoed back");
    });
}

#[test]
fn exec_needs_write_access_and_a_websocket() {
    // Socket open to everyone so the other user can connect at all; the peer credentials
    // decide what it may do.
    let s = Setup::with_config("socketMode: \"0666\"\ngroup: berth-test-nonexistent\n");
    let d = &s.daemon;
    // nobody (65534) may read but not exec.
    ok(&d.cli_with(&["get", "pod", "web", "-o", "name"], None, Some(65534)));
    let out = d.cli_with(&["exec", "web", "--", "true"], None, Some(65534));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("forbidden"), "{}", stderr(&out));
    // A plain request (no upgrade) gets a Status that says what is needed.
    let client = Client::new(d.socket());
    let err = runtime_block(async move {
        client
            .request(
                Method::POST,
                "/api/v1/namespaces/default/pods/web/exec?command=true&stdout=true",
                None,
                None,
            )
            .await
            .expect_err("no upgrade")
    });
    assert!(err.to_string().contains("WebSocket"), "{err}");
}

// --- pods run by the kubelet (need the pod workers) --------------------------------------

/// Builds and imports the busybox test image into the daemon.
fn import_busybox(d: &TestDaemon) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/images/build-busybox.sh");
    let archive = d.dir.path().join("busybox.tar");
    let status = Command::new(script)
        .arg(&archive)
        .status()
        .expect("run build-busybox.sh");
    assert!(status.success(), "build-busybox.sh failed");
    let body = fs::read(&archive).expect("read the archive");
    let client = d.client();
    runtime_block(async move {
        client
            .request(
                Method::POST,
                "/apis/images.berth.dev/v1/images",
                Some("application/x-tar"),
                Some(body),
            )
            .await
            .expect("import the busybox image")
    });
}

/// Applies a pod running `sleep` and waits until its container runs.
fn run_pod(d: &TestDaemon, name: &str) {
    let manifest = d.write(
        &format!("{name}.yaml"),
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: main\n    image: berth.local/busybox:latest\n    imagePullPolicy: Never\n    command: [sleep, '1000']\n"
        ),
    );
    ok(&d.cli(&["apply", "-f", &manifest.to_string_lossy()]));
    eventually(60, "the pod to run", || {
        let out = d.cli(&["get", "pod", name, "-o", "json"]);
        let pod: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        pod["status"]["containerStatuses"][0]["state"]["running"]
            .is_object()
            .then_some(())
    });
}

fn delete_pod(d: &TestDaemon, name: &str) {
    let _ = d.cli(&["delete", "pod", name, "--wait", "--timeout", "60"]);
}

#[test]
fn kubelet_pod_exec_exit_code_and_stdin() {
    let d = TestDaemon::start();
    import_busybox(&d);
    run_pod(&d, "kexec");
    let out = d.cli(&["exec", "kexec", "--", "sh", "-c", "hostname; exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(stdout(&out), "kexec\n");
    let out = d.cli_with(
        &["exec", "-i", "kexec", "--", "cat"],
        Some("via kubelet\n"),
        None,
    );
    assert_eq!(ok(&out), "via kubelet\n");
    delete_pod(&d, "kexec");
}

#[test]
fn kubelet_pod_exec_with_a_terminal() {
    let d = TestDaemon::start();
    import_busybox(&d);
    run_pod(&d, "ktty");
    let client = d.client();
    runtime_block(async move {
        let (mut writer, mut reader) = client
            .exec(
                "default",
                "ktty",
                &ExecOptions {
                    command: vec!["sh".into(), "-c".into(), "tty; exit 5".into()],
                    stdin: true,
                    stdout: true,
                    tty: true,
                    ..ExecOptions::default()
                },
            )
            .await
            .expect("exec");
        writer.resize(80, 24).await.expect("resize");
        let mut seen = String::new();
        loop {
            match reader.next().await {
                Some(ExecEvent::Stdout(b)) => seen.push_str(&String::from_utf8_lossy(&b)),
                Some(ExecEvent::Exit(code)) => {
                    assert_eq!(code, 5);
                    break;
                }
                other => panic!("unexpected {other:?} after {seen:?}"),
            }
        }
        assert!(seen.starts_with("/dev/pts/"), "{seen:?}");
    });
    delete_pod(&d, "ktty");
}

/// A pty whose slave becomes the CLI's terminal; returns (master, slave).
fn open_pty(rows: u16, columns: u16) -> (fs::File, fs::File) {
    use std::os::fd::FromRawFd;
    let mut master = -1;
    let mut slave = -1;
    let size = libc::winsize {
        ws_row: rows,
        ws_col: columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two new fds into the pointers and reads the winsize.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: fresh descriptors from openpty, owned from here on.
    unsafe { (fs::File::from_raw_fd(master), fs::File::from_raw_fd(slave)) }
}

#[test]
fn the_cli_with_a_terminal_sends_its_size_and_follows_sigwinch() {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    use std::sync::mpsc;

    let s = Setup::new();
    let (mut master, slave) = open_pty(33, 101);
    let mut cmd = Command::new(berth_bin());
    cmd.args(["exec", "-it", "web", "--", "sh"])
        .env("BERTH_SOCKET", s.daemon.socket())
        .stdin(slave.try_clone().expect("slave"))
        .stdout(slave.try_clone().expect("slave"))
        .stderr(slave.try_clone().expect("slave"));
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut cli = cmd.spawn().expect("spawn the cli");
    drop(slave);
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut reader = master.try_clone().expect("master");
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // EIO once the CLI (the terminal's last user) is gone.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let mut seen = String::new();
    let mut wait_for = |want: &str, master: &mut fs::File| {
        let deadline = Instant::now() + WAIT;
        while !seen.contains(want) {
            assert!(Instant::now() < deadline, "no {want:?} in {seen:?}");
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(b) => seen.push_str(&String::from_utf8_lossy(&b)),
                // The size travels apart from the input: ask again.
                Err(_) => master.write_all(b"stty size\n").expect("write"),
            }
        }
    };
    master.write_all(b"stty size\n").expect("write");
    wait_for("33 101", &mut master);
    // A new size on the CLI's terminal: the kernel sends SIGWINCH, the CLI a resize.
    let size = libc::winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads the winsize struct.
    assert_eq!(
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) },
        0
    );
    wait_for("40 120", &mut master);
    master.write_all(b"exit 3\n").expect("write");
    let status = eventually(30, "the cli to exit", || cli.try_wait().ok().flatten());
    assert_eq!(status.code(), Some(3), "{seen:?}");
}

#[test]
fn a_client_that_goes_away_takes_its_process_with_it() {
    let s = Setup::new();
    let client = s.daemon.client();
    let running = || {
        fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .filter_map(|e| fs::read(e.path().join("cmdline")).ok())
            .any(|c| c == b"sleep\x00777\x00")
    };
    runtime_block(async move {
        let (writer, mut reader) = client
            .exec(
                "default",
                "web",
                &ExecOptions {
                    command: vec![
                        "sh".into(),
                        "-c".into(),
                        "echo started; exec sleep 777".into(),
                    ],
                    stdout: true,
                    ..ExecOptions::default()
                },
            )
            .await
            .expect("exec");
        match reader.next().await {
            Some(ExecEvent::Stdout(b)) => assert_eq!(&b[..], b"started\n"),
            other => panic!("unexpected {other:?}"),
        }
        eventually(30, "the exec to run sleep", || running().then_some(()));
        drop((writer, reader));
    });
    eventually(30, "the abandoned exec to be killed", || {
        (!running()).then_some(())
    });
    // The container itself runs on.
    assert!(s.runtime.state(&s.id).expect("state").is_running());
}
