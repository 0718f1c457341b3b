//! Fault injection (root): what a homelab box meets — power cuts (the daemon SIGKILLed
//! during churn), a shim or a container's processes killed from outside, the state disk
//! full, and containers that fork-bomb, eat memory or spin the CPU. Each case checks that
//! nothing acknowledged is lost, nothing is duplicated, and the neighbours are unharmed.
//!
//! `BERTH_FAULT_KILLS` sets how many times the daemon is killed during churn (CI: 5; the
//! full run, `tests/bench/run.sh`, 50).

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth::api::registry::by_kind;
use berth::client::{Client, ClientError, ListOptions};
use common::*;
use serde_json::{Value, json};

/// What the churn knows of one ConfigMap: the value of its last acknowledged write
/// (`None`: deleted), or unknown when a later write's answer was lost with the daemon.
#[derive(Debug, Clone, PartialEq)]
enum Known {
    Acked(Option<u64>),
    Unknown,
}

/// Whether an error means the daemon went away mid-request (the write may or may not
/// have happened), rather than a refusal.
fn lost(e: &ClientError) -> bool {
    matches!(e, ClientError::Connect { .. } | ClientError::Http { .. })
        || matches!(e, ClientError::Decode { status: 0, .. })
}

fn cm(name: &str, v: u64) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "default"},
           "data": {"v": v.to_string()}})
}

/// Creates, updates and deletes ConfigMaps until `stop`, recording what was acknowledged.
fn churn(client: Client, ledger: Arc<Mutex<BTreeMap<String, Known>>>, stop: Arc<AtomicBool>) {
    let rt = by_kind("v1", "ConfigMap").expect("kind");
    let r = runtime();
    let mut i: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let record = |name: String, result: Result<Value, ClientError>, acked: Option<u64>| {
            let mut l = ledger.lock().expect("ledger");
            match result {
                Ok(_) => {
                    l.insert(name, Known::Acked(acked));
                }
                Err(e) if lost(&e) => {
                    l.insert(name, Known::Unknown);
                    // The daemon is down: wait for it a little.
                    std::thread::sleep(Duration::from_millis(50));
                }
                // A refusal (conflict, not found after an unknown delete) changes nothing.
                Err(_) => {}
            }
        };
        let name = format!("c{i}");
        let res = r.block_on(client.create(rt, Some("default"), &cm(&name, 0)));
        record(name, res, Some(0));
        if i.is_multiple_of(3) && i > 1 {
            let target = format!("c{}", i - 1);
            let res = r.block_on(client.replace(rt, Some("default"), &target, &cm(&target, i)));
            record(target, res, Some(i));
        }
        if i.is_multiple_of(5) && i > 2 {
            let target = format!("c{}", i - 2);
            let res = r.block_on(client.delete(rt, Some("default"), &target, None, None));
            record(target, res, None);
        }
    }
}

fn pods_of(d: &TestDaemon, selector: &str) -> Vec<Value> {
    d.get_json(&["pods", "-l", selector])
        .and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default()
}

#[test]
fn sigkill_during_churn_loses_no_acknowledged_write_and_no_pod() {
    let kills: usize = std::env::var("BERTH_FAULT_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut d = TestDaemon::start_with_config("crashLoopBackOffBaseMillis: 200\n");
    d.import_busybox();
    // Pods that restart on their own throughout (each container ends after a second).
    d.apply_yaml(
        "deploy",
        "apiVersion: apps/v1
kind: Deployment
metadata: {name: restarting}
spec:
  replicas: 3
  selector: {matchLabels: {app: restarting}}
  template:
    metadata: {labels: {app: restarting}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: berth.local/busybox:latest
        imagePullPolicy: Never
        command: [sh, -c, 'sleep 1']
",
    );
    let ledger = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (client, ledger, stop) = (d.client(), ledger.clone(), stop.clone());
        std::thread::spawn(move || churn(client, ledger, stop))
    };
    let mut rng = 0x2545_f491_u64;
    for _ in 0..kills {
        // 0.3 to 2 s of churn, then the power cut.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(300 + rng % 1700));
        d.kill9();
        // The store opens every time.
        d.spawn();
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    worker.join().expect("churn thread");

    // Every acknowledged write is there, every acknowledged delete is gone.
    let rt = by_kind("v1", "ConfigMap").expect("kind");
    let list = runtime()
        .block_on(
            d.client()
                .list(rt, Some("default"), &ListOptions::default()),
        )
        .expect("list");
    let stored: BTreeMap<String, u64> = list
        .items
        .iter()
        .filter_map(|o| {
            let name = o["metadata"]["name"].as_str()?;
            let v = o["data"]["v"].as_str()?.parse().ok()?;
            name.starts_with('c').then(|| (name.to_string(), v))
        })
        .collect();
    let ledger = ledger.lock().expect("ledger").clone();
    let mut acked = 0;
    for (name, known) in &ledger {
        match known {
            Known::Acked(Some(v)) => {
                acked += 1;
                assert_eq!(stored.get(name), Some(v), "{name}: acknowledged value lost");
            }
            Known::Acked(None) => {
                acked += 1;
                assert!(
                    !stored.contains_key(name),
                    "{name}: acknowledged delete undone"
                );
            }
            Known::Unknown => {}
        }
    }
    assert!(
        acked > 50,
        "too little churn to judge: {acked} acknowledged writes"
    );
    // Nothing the churn did not write appeared.
    for name in stored.keys() {
        assert!(ledger.contains_key(name), "{name} appeared from nowhere");
    }

    // The Deployment has exactly its 3 pods, each with one running container and one shim.
    let pods = eventually(90, "exactly three running pods", || {
        std::thread::sleep(Duration::from_millis(500));
        let pods = pods_of(&d, "app=restarting");
        let live: Vec<_> = pods
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .cloned()
            .collect();
        (pods.len() == 3 && live.len() == 3).then_some(live)
    });
    let mut names: Vec<&str> = pods
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str())
        .collect();
    names.dedup();
    assert_eq!(names.len(), 3);
    eventually(60, "one shim per pod container at most", || {
        std::thread::sleep(Duration::from_millis(500));
        (shim_pids(&d).len() <= 3).then_some(())
    });
    let summary = format!("{kills} kills, {acked} acknowledged writes checked");
    println!("{summary}");
    // tests/bench/run.sh puts it into BENCHMARKS.md.
    if let Some(report) = std::env::var_os("BERTH_FAULT_REPORT") {
        let _ = std::fs::write(report, format!("{summary}\n"));
    }
}

/// The host PID of a pod's container, from its cgroup (`cgroup.procs`, the first one).
fn container_pids(d: &TestDaemon, pod: &Value) -> Vec<u32> {
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    let dir = format!("/sys/fs/cgroup/pids/{}/pod{uid}", d.cgroup_parent());
    let mut pids = Vec::new();
    let walk = dirs_below(std::path::Path::new(&dir));
    for p in walk {
        if let Ok(text) = std::fs::read_to_string(p.join("cgroup.procs")) {
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
    }
    pids
}

fn sleeper(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
{extra}"
    )
}

fn restarts(d: &TestDaemon, pod: &str) -> i64 {
    d.get_json(&["pod", pod])
        .and_then(|p| p["status"]["containerStatuses"][0]["restartCount"].as_i64())
        .unwrap_or(-1)
}

fn running(d: &TestDaemon, pod: &str) -> Value {
    eventually(60, &format!("{pod} running"), || {
        std::thread::sleep(Duration::from_millis(300));
        d.get_json(&["pod", pod]).filter(|p| {
            p["status"]["phase"] == "Running"
                && p["status"]["containerStatuses"][0]["state"]["running"].is_object()
        })
    })
}

fn kill(pid: u32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[test]
fn a_container_killed_from_outside_and_a_killed_shim_are_restarted() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.apply_yaml("pod", &sleeper("victim", "    command: [sleep, '3600']\n"));
    let p = running(&d, "victim");
    // The container's processes killed from the host (an admin's kill -9, the OOM killer
    // of the host): the kubelet sees the exit, records it and restarts the container.
    for pid in container_pids(&d, &p) {
        kill(pid);
    }
    let p = eventually(60, "the killed container restarted", || {
        std::thread::sleep(Duration::from_millis(300));
        (restarts(&d, "victim") == 1).then(|| running(&d, "victim"))
    });
    let last = &p["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(last["exitCode"], 137, "{p}");
    assert_eq!(last["reason"], "Error", "{p}");

    // The shim killed: the container it watched is not lost track of; the pod runs again
    // with exactly one shim for it.
    let before = shim_pids(&d);
    assert_eq!(before.len(), 1, "{before:?}");
    kill(before[0]);
    eventually(60, "the pod running under a new shim", || {
        std::thread::sleep(Duration::from_millis(300));
        let now = shim_pids(&d);
        let p = d.get_json(&["pod", "victim"])?;
        (now.len() == 1
            && now[0] != before[0]
            && p["status"]["containerStatuses"][0]["state"]["running"].is_object())
        .then_some(())
    });
    assert!(restarts(&d, "victim") >= 2);
}

/// A tmpfs mounted at `path` for the test's life (lazily unmounted on drop, so a panic
/// while the daemon still holds files there leaves nothing mounted).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).expect("mkdir");
        let st = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "berth-test-tmpfs",
            ])
            .arg(path)
            .status()
            .expect("mount");
        assert!(st.success(), "mount tmpfs");
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `dir` with `dir/filler` until it is full.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0xa5u8; 1 << 16];
    while f.write_all(&chunk).is_ok() {}
    let small = vec![0xa5u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
    path
}

#[test]
fn a_full_state_disk_fails_writes_clearly_corrupts_nothing_and_recovers() {
    let mut d = TestDaemon::unstarted("");
    let _fs = Tmpfs::mount(&d.state_dir(), "64m");
    d.spawn();
    let rt = by_kind("v1", "ConfigMap").expect("kind");
    let client = d.client();
    let r = runtime();
    let big = "x".repeat(200 * 1024);
    let make = |name: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": "default"}, "data": {"big": big}})
    };
    for i in 0..5 {
        r.block_on(client.create(rt, Some("default"), &make(&format!("before-{i}"))))
            .expect("create while there is room");
    }
    let filler = fill(&d.state_dir());
    // Writes fail, each with a clear error; none is half-done.
    let mut refused = None;
    for i in 0..200 {
        match r.block_on(client.create(rt, Some("default"), &make(&format!("full-{i}")))) {
            Ok(_) => continue,
            Err(e) => {
                refused = Some((i, e.to_string()));
                break;
            }
        }
    }
    let (first_refused, message) = refused.expect("a write refused on a full disk");
    assert!(
        message.contains("no space left") && message.contains("free"),
        "{message}"
    );
    // Reads still work, and the daemon still answers.
    let list = r
        .block_on(client.list(rt, Some("default"), &ListOptions::default()))
        .expect("list on a full disk");
    assert!(list.items.len() >= 5);
    ok(&d.cli(&["get", "namespaces"]));

    // Space returns: writes go through again, without a restart.
    std::fs::remove_file(&filler).expect("remove filler");
    eventually(30, "a write to succeed once there is room", || {
        std::thread::sleep(Duration::from_millis(200));
        r.block_on(client.create(rt, Some("default"), &make("after")))
            .ok()
    });
    // Nothing corrupted: a restart opens the store with every acknowledged object.
    d.kill9();
    d.spawn();
    let list = r
        .block_on(
            d.client()
                .list(rt, Some("default"), &ListOptions::default()),
        )
        .expect("list after restart");
    let names: Vec<&str> = list
        .items
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    for i in 0..5 {
        assert!(names.contains(&format!("before-{i}").as_str()), "{names:?}");
    }
    assert!(names.contains(&"after"), "{names:?}");
    for i in 0..first_refused {
        assert!(names.contains(&format!("full-{i}").as_str()), "{names:?}");
    }
    assert!(!names.contains(&format!("full-{first_refused}").as_str()));
    // `_fs` goes first (declared last): the tmpfs is detached, then the daemon stops and
    // its directory is removed.
}

/// A cgroup v1 file of a pod (the pod's own cgroup under the daemon's parent).
fn pod_cgroup_file(d: &TestDaemon, pod: &Value, controller: &str, file: &str) -> String {
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    let path = format!(
        "/sys/fs/cgroup/{controller}/{}/pod{uid}/{file}",
        d.cgroup_parent()
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn exec_ok(d: &TestDaemon, pod: &str) -> String {
    ok(&d.cli(&["exec", pod, "--", "echo", "alive"]))
}

/// A daemon with `config` and a running pod "neighbour" that the faults must not harm.
fn with_neighbour(config: &str) -> TestDaemon {
    let d = TestDaemon::start_with_config(config);
    d.import_busybox();
    d.apply_yaml("n", &sleeper("neighbour", "    command: [sleep, '3600']\n"));
    running(&d, "neighbour");
    d
}

#[test]
fn a_fork_bomb_hits_the_pids_limit_and_its_neighbour_keeps_running() {
    let d = with_neighbour("podPidsLimit: 64\n");
    d.apply_yaml(
        "bomb",
        &sleeper(
            "bomb",
            "    command: [sh, -c, 'b() { b | b & }; b; sleep 3600']\n",
        ),
    );
    let bomb = running(&d, "bomb");
    eventually(60, "the bomb to hit its limit", || {
        std::thread::sleep(Duration::from_millis(300));
        // Failed forks are counted where they were tried (on cgroup v1: the container's
        // cgroup below the pod's, whose limit held them).
        let uid = bomb["metadata"]["uid"].as_str().unwrap_or_default();
        let pod_dir = format!("/sys/fs/cgroup/pids/{}/pod{uid}", d.cgroup_parent());
        let hits: u64 = dirs_below(std::path::Path::new(&pod_dir))
            .iter()
            .filter_map(|dir| std::fs::read_to_string(dir.join("pids.events")).ok())
            .filter_map(|e| e.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        (hits > 0).then_some(())
    });
    let current: u64 = pod_cgroup_file(&d, &bomb, "pids", "pids.current")
        .trim()
        .parse()
        .expect("pids.current");
    assert!(current <= 64, "pids.current {current}");
    // The neighbour is unharmed: it still runs and answers.
    assert!(exec_ok(&d, "neighbour").contains("alive"));
    assert_eq!(restarts(&d, "neighbour"), 0);
    // Deleting the bomb ends every process of it.
    ok(&d.cli(&["delete", "pod", "bomb", "--grace-period=0"]));
    let uid = bomb["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    eventually(60, "the bomb's cgroup gone", || {
        std::thread::sleep(Duration::from_millis(300));
        let p = format!("/sys/fs/cgroup/pids/{}/pod{uid}", d.cgroup_parent());
        (!std::path::Path::new(&p).exists()).then_some(())
    });
    assert!(exec_ok(&d, "neighbour").contains("alive"));
}

#[test]
fn a_memory_eater_is_oom_killed_alone_and_a_cpu_spinner_is_throttled_to_its_limit() {
    let d = with_neighbour("");
    // Eats memory without end (a shell string that doubles) under a 32 MiB limit.
    d.apply_yaml(
        "eater",
        &sleeper(
            "eater",
            "    command: [sh, -c, 'x=a; while :; do x=$x$x; done']
    resources: {limits: {memory: 32Mi}}
",
        ),
    );
    let eater = eventually(60, "the eater OOM-killed", || {
        std::thread::sleep(Duration::from_millis(300));
        d.get_json(&["pod", "eater"]).filter(|p| {
            let c = &p["status"]["containerStatuses"][0];
            c["lastState"]["terminated"]["reason"] == "OOMKilled"
                || c["state"]["terminated"]["reason"] == "OOMKilled"
        })
    });
    assert_eq!(
        pod_cgroup_file(&d, &eater, "memory", "memory.limit_in_bytes").trim(),
        (32u64 << 20).to_string()
    );
    assert_eq!(restarts(&d, "neighbour"), 0);
    assert!(exec_ok(&d, "neighbour").contains("alive"));

    // Spins the CPU under a limit of a tenth of a core: the CFS quota throttles it.
    d.apply_yaml(
        "spinner",
        &sleeper(
            "spinner",
            "    command: [sh, -c, 'while :; do :; done']
    resources: {limits: {cpu: 100m}}
",
        ),
    );
    let spinner = running(&d, "spinner");
    let quota = pod_cgroup_file(&d, &spinner, "cpu", "cpu.cfs_quota_us");
    let period = pod_cgroup_file(&d, &spinner, "cpu", "cpu.cfs_period_us");
    assert_eq!(
        quota.trim().parse::<u64>().expect("quota") * 10,
        period.trim().parse::<u64>().expect("period")
    );
    eventually(30, "the spinner throttled", || {
        std::thread::sleep(Duration::from_millis(500));
        let stat = pod_cgroup_file(&d, &spinner, "cpu", "cpu.stat");
        let throttled: u64 = stat
            .lines()
            .find_map(|l| l.strip_prefix("nr_throttled "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        (throttled > 0).then_some(())
    });
    assert!(exec_ok(&d, "neighbour").contains("alive"));
    assert_eq!(restarts(&d, "neighbour"), 0);
}
