//! The daemon process: durability across SIGKILL, the state-dir lock, clean shutdown,
//! systemd readiness.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use berth::api::registry::by_kind;
use berth::client::{ClientError, ListOptions};
use common::*;
use serde_json::json;

/// A tiny deterministic generator for kill times (no test depends on the wall clock's luck).
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn acknowledged_writes_survive_sigkill_twenty_times() {
    let mut d = TestDaemon::start();
    let rt = by_kind("v1", "ConfigMap").expect("kind");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    let mut rng = XorShift(seed | 1);
    eprintln!("kill-time seed {seed}");
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();
    let mut updated: Vec<(String, String)> = Vec::new();
    let mut next = 0u64;
    for round in 0..20 {
        let client = d.client();
        let kill_after = Duration::from_millis(20 + rng.next() % 250);
        let pid = d.pid() as i32;
        // Kill from another thread at a random moment while this one writes.
        let killer = std::thread::spawn(move || {
            std::thread::sleep(kill_after);
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        });
        let r = runtime();
        let started = Instant::now();
        loop {
            let name = format!("w{next}");
            next += 1;
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"round": round.to_string()}});
            match r.block_on(client.create(rt, Some("default"), &cm)) {
                Ok(_) => {
                    acknowledged.insert(name.clone());
                    // Every third write also updates an acknowledged object.
                    if next.is_multiple_of(3) {
                        let value = format!("updated-{next}");
                        let patch = json!({"data": {"v": value}});
                        if r.block_on(client.patch(
                            rt,
                            Some("default"),
                            &name,
                            berth::api::patch::PatchType::Merge,
                            &patch,
                        ))
                        .is_ok()
                        {
                            updated.push((name, value));
                        }
                    }
                }
                Err(ClientError::Connect { .. } | ClientError::Http { .. }) => break,
                Err(e) => panic!("unexpected error in round {round}: {e}"),
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the daemon was never killed"
            );
        }
        killer.join().expect("killer");
        if let Some(mut child) = d.child.take() {
            let _ = child.wait();
        }
        d.spawn();
        let list = r
            .block_on(
                d.client()
                    .list(rt, Some("default"), &ListOptions::default()),
            )
            .expect("list after restart");
        let present: BTreeSet<String> = list
            .items
            .iter()
            .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
            .collect();
        let lost: Vec<&String> = acknowledged.difference(&present).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged writes lost: {lost:?}"
        );
        for (name, value) in &updated {
            let obj = list
                .items
                .iter()
                .find(|o| o["metadata"]["name"] == name.as_str())
                .expect("present");
            assert_eq!(
                obj["data"]["v"],
                value.as_str(),
                "round {round}: acknowledged update of {name} lost"
            );
        }
    }
    assert!(
        acknowledged.len() >= 20,
        "too few writes to mean anything: {}",
        acknowledged.len()
    );
}

#[test]
fn a_second_daemon_on_the_same_state_dir_is_refused() {
    let d = TestDaemon::start();
    // With the first daemon's configuration (its log, run and cgroup places), so that a
    // refused start could not touch the host's defaults either.
    let out = std::process::Command::new(berth_bin())
        .args(["daemon", "--config"])
        .arg(d.dir.path().join("config.yaml"))
        .arg("--state-dir")
        .arg(d.state_dir())
        .arg("--socket")
        .arg(d.dir.path().join("other.sock"))
        .env_remove("BERTH_SOCKET")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("another berth daemon"), "{err}");
    assert!(err.contains(&format!("pid {}", d.pid())), "{err}");
    // The first one still serves.
    ok(&d.cli(&["get", "ns"]));
}

#[test]
fn sigterm_stops_cleanly_and_removes_the_socket() {
    let mut d = TestDaemon::start();
    let status = d.stop().expect("was running");
    assert!(status.success(), "exit status {status}");
    assert!(!d.socket().exists(), "socket left behind");
    assert!(d.log().contains("shutting down"));
    // State is intact for the next start.
    d.spawn();
    assert!(ok(&d.cli(&["get", "ns", "-o", "name"])).contains("namespace/kube-system"));
}

#[test]
fn readiness_is_reported_to_the_notify_socket() {
    let dir = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .tempdir()
        .expect("tempdir");
    let notify_path = dir.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).expect("bind notify");
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    // Everything else the daemon makes stays in the test's directory too (the flags under
    // test override the configuration's state dir and socket).
    let parent = dir
        .path()
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-")
        })
        .unwrap_or_default();
    let config = dir.path().join("config.yaml");
    // Dropped at the end, after the daemon stopped: removes its bridge and table.
    let net = common::TestNet::claim();
    std::fs::write(
        &config,
        format!(
            "logDir: {}\nrunDir: {}\ncgroupParent: /{parent}\n{}ingressHttpPort: 0\ningressHttpsPort: 0\n",
            dir.path().join("logs").display(),
            dir.path().join("run").display(),
            net.config()
        ),
    )
    .expect("config");
    let mut child = std::process::Command::new(berth_bin())
        .args(["daemon", "--config"])
        .arg(&config)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--socket")
        .arg(dir.path().join("berth.sock"))
        .env("NOTIFY_SOCKET", &notify_path)
        .env_remove("BERTH_SOCKET")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut buf = [0u8; 64];
    let n = notify.recv(&mut buf).expect("READY=1 within 20s");
    assert_eq!(&buf[..n], b"READY=1");
    // The socket accepts once READY was sent.
    assert!(dir.path().join("berth.sock").exists());
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let n = notify.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(child.wait().expect("wait").success());
    berth::runtime::Cgroups::detect(&format!("/{parent}"))
        .expect("cgroups")
        .remove_parent()
        .expect("remove the daemon's cgroup parent");
}
