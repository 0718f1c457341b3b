//! `berth reset` for real (root): after it, nothing of a node's pods is left — no
//! container process, mount, cgroup, network namespace, veth, bridge, nftables table or
//! file — and it refuses while the daemon runs.

mod common;

use std::process::Command;

use common::{TestDaemon, eventually, ok, stderr};

fn reset(d: &TestDaemon, extra: &[&str]) -> std::process::Output {
    let config = d.config_path();
    let mut args = vec!["reset", "--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    Command::new(common::berth_bin())
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run berth reset")
}

/// Processes whose command line or mount namespace names `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!("{name}: {cmdline}"));
        }
    }
    found
}

fn mounts_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

fn cgroups_named(name: &str) -> Vec<String> {
    let mut found = Vec::new();
    for root in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = root.path().join(name);
        if dir.exists() {
            found.push(dir.display().to_string());
        }
    }
    found
}

fn nft_tables(prefix: &str) -> Vec<String> {
    let out = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(2)
                .is_some_and(|t| t.starts_with(prefix))
        })
        .map(str::to_string)
        .collect()
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn reset_leaves_nothing_of_a_nodes_pods_and_refuses_while_berth_runs() {
    let mut d = TestDaemon::start();
    d.import_busybox();
    let manifest = d.write(
        "pods.yaml",
        "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: main
        image: berth.local/busybox:latest
        imagePullPolicy: Never
        command: [httpd, -f, -p, '8080']
---
apiVersion: v1
kind: Pod
metadata: {name: ported}
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sleep, '3600']
    ports: [{containerPort: 80, hostPort: 18099}]
    # A secret volume is a tmpfs mount of the pod: the reset unmounts it.
    volumeMounts: [{name: s, mountPath: /var/secret}]
  volumes: [{name: s, secret: {secretName: s}}]
---
apiVersion: v1
kind: Secret
metadata: {name: s}
stringData: {k: v}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web}
spec:
  podSelector: {matchLabels: {app: web}}
",
    );
    ok(&d.cli(&["apply", "-f", manifest.to_str().unwrap()]));
    eventually(90, "three pods running with IPs", || {
        let o = d.cli(&["get", "pods", "-o", "json"]);
        let list: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        let items = list["items"].as_array()?;
        (items.len() == 3
            && items
                .iter()
                .all(|p| p["status"]["phase"] == "Running" && p["status"]["podIP"].is_string()))
        .then_some(())
    });
    // The NetworkPolicy gives the node its policy table as well.
    let policy_table = format!("{}_pol", d.net.table);
    eventually(20, "the NetworkPolicy table", || {
        (nft_tables(&policy_table).len() == 1).then_some(())
    });
    let dir = d.state_dir().parent().unwrap().to_path_buf();
    let dir_s = dir.display().to_string();
    let veths = {
        let o = Command::new("ip")
            .args(["-o", "link", "show", "master", &d.net.bridge])
            .output()
            .unwrap();
        ok(&o).lines().count()
    };
    assert_eq!(veths, 3, "one veth per pod on the bridge");

    // While the daemon runs, reset refuses and changes nothing.
    let o = reset(&d, &["--yes"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("berth is running"), "{}", stderr(&o));
    assert!(d.state_dir().exists());
    // Without a terminal and without --yes, it refuses too.
    d.stop();
    let o = reset(&d, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--yes"), "{}", stderr(&o));
    assert!(d.state_dir().exists());
    // The containers outlive the daemon (as across an upgrade) until the reset.
    assert!(
        !processes_mentioning(&dir_s).is_empty(),
        "shims keep running"
    );

    let o = reset(&d, &["--yes"]);
    assert!(o.status.success(), "{}\n{}", common::stdout(&o), stderr(&o));
    let out = common::stdout(&o);
    assert!(out.contains("stopped and removed 3 container(s)"), "{out}");
    assert!(out.contains("unmounted 1 pod volume(s)"), "{out}");

    assert_eq!(
        processes_mentioning(&dir_s),
        Vec::<String>::new(),
        "processes left"
    );
    assert_eq!(
        mounts_mentioning(&dir_s),
        Vec::<String>::new(),
        "mounts left"
    );
    assert_eq!(
        cgroups_named(&d.cgroup_parent()),
        Vec::<String>::new(),
        "cgroups left"
    );
    assert!(!link_exists(&d.net.bridge), "bridge left");
    assert_eq!(
        nft_tables(&d.net.table),
        Vec::<String>::new(),
        "nftables tables left"
    );
    for gone in ["state", "run", "logs"] {
        assert!(!dir.join(gone).exists(), "{gone} left");
    }
}

#[test]
fn keep_state_keeps_the_objects_for_the_next_start() {
    let mut d = TestDaemon::start();
    d.import_busybox();
    let pod = d.write(
        "pod.yaml",
        "apiVersion: v1
kind: Pod
metadata: {name: keeper}
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sleep, '3600']
",
    );
    ok(&d.cli(&["apply", "-f", pod.to_str().unwrap()]));
    let uid = eventually(60, "the pod running", || {
        let o = d.cli(&["get", "pod", "keeper", "-o", "json"]);
        let p: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        (p["status"]["phase"] == "Running")
            .then(|| p["metadata"]["uid"].as_str().unwrap().to_string())
    });
    d.stop();
    let o = reset(&d, &["--yes", "--keep-state"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!link_exists(&d.net.bridge));
    assert!(d.state_dir().join("state").exists(), "the store is kept");
    // The next start brings the pod back: same object, new containers.
    d.spawn();
    eventually(60, "the pod running again", || {
        let o = d.cli(&["get", "pod", "keeper", "-o", "json"]);
        let p: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        (p["metadata"]["uid"] == uid.as_str()
            && p["status"]["phase"] == "Running"
            && p["status"]["containerStatuses"][0]["ready"] == true)
            .then_some(())
    });
    d.remove_all_pods();
}
