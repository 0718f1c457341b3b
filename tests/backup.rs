//! `berth backup` and `berth restore` for real: a node with a Deployment, a Secret and a
//! volume holding data is backed up while its pods run, the archive is restored into a
//! fresh state directory under another node name, and the same objects, the same data and
//! running pods come back. Damaged archives change nothing.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{TMP_PREFIX, TestDaemon, eventually, ok, stderr, stdout};

const WORKLOAD: &str = "apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: web-data
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 16Mi}}
---
apiVersion: v1
kind: Secret
metadata:
  name: app-secret
stringData:
  token: backed-up-token-77
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: main
        image: berth.local/busybox:latest
        imagePullPolicy: Never
        command: [sleep, '3600']
        env:
        - {name: TOKEN, valueFrom: {secretKeyRef: {name: app-secret, key: token}}}
        volumeMounts: [{name: data, mountPath: /data}]
      volumes:
      - {name: data, persistentVolumeClaim: {claimName: web-data}}
";

fn running_pods(d: &TestDaemon, n: usize) -> Vec<serde_json::Value> {
    eventually(120, &format!("{n} running web pods"), || {
        std::thread::sleep(Duration::from_millis(300));
        let list = d.get_json(&["pods", "-l", "app=web"])?;
        let pods: Vec<serde_json::Value> = list["items"]
            .as_array()?
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .cloned()
            .collect();
        (pods.len() == n).then_some(pods)
    })
}

#[test]
fn backup_then_restore_into_a_fresh_state_dir_on_another_node() {
    let keep = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .tempdir()
        .expect("tempdir");
    let archive = keep.path().join("node.backup");
    let archive_s = archive.to_str().expect("utf-8");
    let secret_before;
    {
        // Others may read through the socket (to show that they may not take a backup).
        let d = TestDaemon::start_with_config("socketMode: \"0666\"\n");
        d.import_busybox();
        d.apply_yaml("workload", WORKLOAD);
        let pods = running_pods(&d, 2);
        secret_before = d.get_json(&["secret", "app-secret"]).expect("secret");
        let writer = pods[0]["metadata"]["name"].as_str().expect("name");
        ok(&d.cli(&[
            "exec",
            writer,
            "--",
            "sh",
            "-c",
            "echo precious-data > /data/file",
        ]));

        // Only root may take a backup (it holds the secrets key).
        let o = d.cli_with(&["backup", archive_s], None, Some(65534));
        assert!(!o.status.success());
        assert!(stderr(&o).contains("only root may"), "{}", stderr(&o));
        assert!(!archive.exists());

        let out = ok(&d.cli(&["backup", archive_s]));
        assert!(out.contains("written to"), "{out}");
        let mode = std::fs::metadata(&archive)
            .expect("archive")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let mut b = TestDaemon::unstarted("nodeName: restored-node\n");
    b.write_config();
    let config = b.config_path();
    let config_s = config.to_str().expect("utf-8");

    // A damaged archive (cut short, or one byte changed) changes nothing.
    let bytes = std::fs::read(&archive).expect("read archive");
    let cut = keep.path().join("cut.backup");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let o = b.cli(&[
        "restore",
        cut.to_str().expect("utf-8"),
        "--config",
        config_s,
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("damaged or incomplete"),
        "{}",
        stderr(&o)
    );
    let not_backup = keep.path().join("not.backup");
    std::fs::write(&not_backup, b"hello").expect("write");
    let o = b.cli(&[
        "restore",
        not_backup.to_str().expect("utf-8"),
        "--config",
        config_s,
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("is not a berth backup"),
        "{}",
        stderr(&o)
    );
    assert!(!b.state_dir().join("state/data.mdb").exists());

    let out = ok(&b.cli(&["restore", archive_s, "--config", config_s]));
    assert!(out.contains("restored the store"), "{out}");
    assert!(out.contains("to this node (restored-node)"), "{out}");
    // A second restore onto the same state refuses.
    let o = b.cli(&["restore", archive_s, "--config", config_s]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("already holds a store"),
        "{}",
        stderr(&o)
    );

    b.spawn();
    b.import_busybox();
    let secret = b
        .get_json(&["secret", "app-secret"])
        .expect("restored secret");
    assert_eq!(secret["data"], secret_before["data"]);
    assert_eq!(secret["metadata"]["uid"], secret_before["metadata"]["uid"]);
    let pods = running_pods(&b, 2);
    for p in &pods {
        assert_eq!(p["spec"]["nodeName"], "restored-node");
        let name = p["metadata"]["name"].as_str().expect("name");
        let env = stdout(&b.cli(&["exec", name, "--", "sh", "-c", "echo $TOKEN"]));
        assert_eq!(env.trim(), "backed-up-token-77");
    }
    // The volume's data came back, at the new state directory's path.
    let claim = b.get_json(&["pvc", "web-data"]).expect("claim");
    assert_eq!(claim["status"]["phase"], "Bound");
    let pv = b
        .get_json(&["pv", claim["spec"]["volumeName"].as_str().expect("volume")])
        .expect("pv");
    let path = pv["spec"]["hostPath"]["path"].as_str().expect("path");
    assert!(
        path.starts_with(b.state_dir().to_str().expect("utf-8")),
        "{path}"
    );
    for p in &pods {
        let name = p["metadata"]["name"].as_str().expect("name");
        let data = stdout(&b.cli(&["exec", name, "--", "cat", "/data/file"]));
        assert_eq!(data, "precious-data\n");
    }
    // The secrets key came with it (the Secret opened above), mode 0600.
    let key = b.state_dir().join("secrets.key");
    assert_eq!(
        std::fs::metadata(&key).expect("key").permissions().mode() & 0o777,
        0o600
    );
    let nodes = b.get_json(&["nodes"]).expect("nodes");
    let names: Vec<&str> = nodes["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|n| n["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, vec!["restored-node"]);
}
