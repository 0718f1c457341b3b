//! PersistentVolumes for real: the default `local-path` class provisions a directory per
//! claim; data outlives pods, rollouts and a SIGKILLed daemon; reclaim policies Delete and
//! Retain; static volumes bound by class, size and access mode; claims in use are protected;
//! `berth get pvc` shows the bytes used.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{TestDaemon, eventually, ok, stdout};
use serde_json::Value;

fn exec(d: &TestDaemon, pod: &str, cmd: &str) -> std::process::Output {
    d.cli(&["exec", pod, "--", "sh", "-c", cmd])
}

fn bound(d: &TestDaemon, claim: &str) -> Value {
    eventually(60, &format!("claim {claim} bound"), || {
        std::thread::sleep(Duration::from_millis(200));
        d.get_json(&["pvc", claim])
            .filter(|c| c["status"]["phase"] == "Bound")
    })
}

/// The one running pod labelled `app=<app>` that is not being deleted.
fn the_pod(d: &TestDaemon, app: &str, not: &[String]) -> String {
    eventually(120, &format!("a running {app} pod"), || {
        std::thread::sleep(Duration::from_millis(300));
        let list = d.get_json(&["pods", "-l", &format!("app={app}")])?;
        list["items"]
            .as_array()?
            .iter()
            .filter(|p| {
                p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null()
            })
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
            .find(|n| !not.contains(n))
    })
}

fn deployment(env: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: db
spec:
  replicas: 1
  strategy: {{type: Recreate}}
  selector:
    matchLabels: {{app: db}}
  template:
    metadata:
      labels: {{app: db}}
    spec:
      containers:
      - name: main
        image: berth.local/busybox:latest
        imagePullPolicy: Never
        command: [sleep, '3600']
        env: [{{name: GENERATION, value: '{env}'}}]
        volumeMounts: [{{name: data, mountPath: /data}}]
      volumes:
      - name: data
        persistentVolumeClaim: {{claimName: data}}
"
    )
}

#[test]
fn claim_data_outlives_pods_rollouts_and_a_killed_daemon() {
    let mut d = TestDaemon::start();
    d.import_busybox();
    d.apply_yaml(
        "claim",
        "apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests: {storage: 64Mi}
",
    );
    let claim = bound(&d, "data");
    // The default class, a provisioned volume and its directory under the state dir.
    assert_eq!(claim["spec"]["storageClassName"], "local-path");
    let uid = claim["metadata"]["uid"].as_str().expect("uid").to_string();
    let pv_name = format!("pvc-{uid}");
    assert_eq!(claim["spec"]["volumeName"], pv_name.as_str());
    assert_eq!(claim["status"]["capacity"]["storage"], "64Mi");
    let pv = d.get_json(&["pv", &pv_name]).expect("pv");
    assert_eq!(pv["status"]["phase"], "Bound");
    assert_eq!(pv["spec"]["claimRef"]["uid"], uid.as_str());
    let dir = d.state_dir().join("volumes").join(&pv_name);
    assert!(dir.is_dir(), "{} missing", dir.display());
    let events = ok(&d.cli(&["events", "--for", "pvc/data"]));
    assert!(events.contains("ProvisioningSucceeded"), "{events}");
    assert!(events.contains("CapacityNotEnforced"), "{events}");
    // It says how to get the capacity enforced.
    assert!(events.contains("prjquota"), "{events}");

    d.apply_yaml("deploy", &deployment("1"));
    let first = the_pod(&d, "db", &[]);
    ok(&exec(
        &d,
        &first,
        "echo one > /data/f && head -c 300000 /dev/urandom > /data/blob",
    ));
    assert_eq!(
        std::fs::read_to_string(dir.join("f")).expect("host file"),
        "one\n"
    );

    // The pod deleted: its replacement sees the data.
    ok(&d.cli(&["delete", "pod", &first]));
    let second = the_pod(&d, "db", std::slice::from_ref(&first));
    assert_eq!(ok(&exec(&d, &second, "cat /data/f")), "one\n");

    // A rollout (new template): the new pod sees it too.
    d.apply_yaml("deploy2", &deployment("2"));
    let third = eventually(120, "the rolled-out pod", || {
        std::thread::sleep(Duration::from_millis(300));
        let n = the_pod(&d, "db", &[first.clone(), second.clone()]);
        (stdout(&exec(&d, &n, "echo $GENERATION")).trim() == "2").then_some(n)
    });
    assert_eq!(ok(&exec(&d, &third, "cat /data/f")), "one\n");
    ok(&exec(&d, &third, "echo two >> /data/f"));

    // SIGKILL the daemon and start it again: the pod and its data are still there.
    d.kill9();
    d.spawn();
    let after = the_pod(&d, "db", &[]);
    assert_eq!(ok(&exec(&d, &after, "cat /data/f")), "one\ntwo\n");
    bound(&d, "data");

    // berth get pvc shows what the volume holds (the 300 kB blob at least), measured
    // every minute.
    let used: u64 = eventually(150, "the blob counted in the claim's used bytes", || {
        std::thread::sleep(Duration::from_millis(500));
        d.get_json(&["pvc", "data"])?["metadata"]["annotations"]["berth.io/used-bytes"]
            .as_str()
            .and_then(|b| b.parse().ok())
            .filter(|u| *u >= 300_000)
    });
    let table = ok(&d.cli(&["get", "pvc"]));
    assert!(table.contains("USED"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("data ") && (l.contains("Ki ") || l.contains("Mi "))),
        "{table}"
    );
    assert!(used >= 300_000, "{used}");
}

#[test]
fn reclaim_policies_and_claims_protected_while_in_use() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.apply_yaml(
        "objects",
        "apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: keep
provisioner: berth.io/local-path
reclaimPolicy: Retain
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: scratch
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Mi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: precious
spec:
  storageClassName: keep
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Mi}}
---
apiVersion: v1
kind: Pod
metadata:
  name: user
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sleep, '3600']
    volumeMounts: [{name: s, mountPath: /s}]
  volumes:
  - {name: s, persistentVolumeClaim: {claimName: scratch}}
",
    );
    let scratch = bound(&d, "scratch");
    let precious = bound(&d, "precious");
    let vol = |c: &Value| {
        c["spec"]["volumeName"]
            .as_str()
            .expect("volume")
            .to_string()
    };
    let (scratch_pv, precious_pv) = (vol(&scratch), vol(&precious));
    let dir = |pv: &str| d.state_dir().join("volumes").join(pv);
    eventually(90, "the user pod running", || {
        std::thread::sleep(Duration::from_millis(300));
        d.get_json(&["pod", "user"])
            .filter(|p| p["status"]["phase"] == "Running")
    });
    ok(&exec(&d, "user", "echo x > /s/f"));
    std::fs::write(dir(&precious_pv).join("keep-me"), "data").expect("write");

    // In use: deleting the claim leaves it Terminating until the pod is gone.
    ok(&d.cli(&["delete", "pvc", "scratch", "--wait=false"]));
    std::thread::sleep(Duration::from_secs(2));
    let c = d
        .get_json(&["pvc", "scratch"])
        .expect("still there while in use");
    assert!(c["metadata"]["deletionTimestamp"].is_string());
    assert!(dir(&scratch_pv).join("f").is_file());
    ok(&d.cli(&["delete", "pod", "user", "--grace-period", "1"]));

    // Delete: the claim, its volume and its directory go.
    eventually(90, "the scratch claim, volume and directory gone", || {
        std::thread::sleep(Duration::from_millis(300));
        (d.get_json(&["pvc", "scratch"]).is_none()
            && d.get_json(&["pv", &scratch_pv]).is_none()
            && !dir(&scratch_pv).exists())
        .then_some(())
    });

    // Retain: the volume is Released and its data kept.
    ok(&d.cli(&["delete", "pvc", "precious"]));
    let pv = eventually(60, "the retained volume released", || {
        std::thread::sleep(Duration::from_millis(300));
        d.get_json(&["pv", &precious_pv])
            .filter(|p| p["status"]["phase"] == "Released")
    });
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(
        std::fs::read_to_string(dir(&precious_pv).join("keep-me")).expect("kept"),
        "data"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(d.get_json(&["pv", &precious_pv]).is_some());
    ok(&d.cli(&["delete", "pv", &precious_pv]));
}

#[test]
fn static_volumes_bind_by_class_size_and_access_mode() {
    let d = TestDaemon::start();
    d.import_busybox();
    let host = |n: &str| -> PathBuf {
        let p = d.dir.path().join("disks").join(n);
        std::fs::create_dir_all(&p).expect("mkdir");
        p
    };
    let pv = |name: &str, size: &str, class: &str, modes: &str| {
        format!(
            "apiVersion: v1
kind: PersistentVolume
metadata:
  name: {name}
spec:
  capacity: {{storage: {size}}}
  accessModes: [{modes}]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: {class}
  hostPath: {{path: {}}}
---
",
            host(name).display()
        )
    };
    let mut yaml = String::new();
    yaml.push_str(&pv("small", "1Gi", "manual", "ReadWriteOnce"));
    yaml.push_str(&pv("big", "5Gi", "manual", "ReadWriteOnce"));
    yaml.push_str(&pv("shared", "5Gi", "manual", "ReadWriteMany"));
    yaml.push_str(&pv("elsewhere", "5Gi", "other", "ReadWriteOnce"));
    d.apply_yaml("pvs", &yaml);
    let claim = |name: &str, size: &str, modes: &str| {
        format!(
            "apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {name}
spec:
  storageClassName: manual
  accessModes: [{modes}]
  resources: {{requests: {{storage: {size}}}}}
"
        )
    };
    d.apply_yaml("c1", &claim("two-gigs", "2Gi", "ReadWriteOnce"));
    assert_eq!(bound(&d, "two-gigs")["spec"]["volumeName"], "big");
    d.apply_yaml("c2", &claim("tiny", "100Mi", "ReadWriteOnce"));
    let tiny = bound(&d, "tiny");
    assert_eq!(tiny["spec"]["volumeName"], "small");
    assert_eq!(tiny["status"]["capacity"]["storage"], "1Gi");
    d.apply_yaml("c3", &claim("many", "1Gi", "ReadWriteMany"));
    assert_eq!(bound(&d, "many")["spec"]["volumeName"], "shared");
    // Nothing left that fits, and no StorageClass "manual" to provision from.
    d.apply_yaml("c4", &claim("none-left", "1Gi", "ReadWriteOnce"));
    let events = eventually(30, "the claim's ProvisioningFailed event", || {
        std::thread::sleep(Duration::from_millis(300));
        let out = ok(&d.cli(&["events", "--for", "pvc/none-left"]));
        out.contains("ProvisioningFailed").then_some(out)
    });
    assert!(
        events.contains("storageclass.storage.k8s.io \"manual\" not found"),
        "{events}"
    );
    assert_eq!(
        d.get_json(&["pvc", "none-left"]).expect("pvc")["status"]["phase"],
        "Pending"
    );

    // A pod on the static claim writes into the host directory.
    d.apply_yaml(
        "pod",
        "apiVersion: v1
kind: Pod
metadata:
  name: writer
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, 'echo hello > /v/greeting; sleep 3600']
    volumeMounts: [{name: v, mountPath: /v}]
  volumes:
  - {name: v, persistentVolumeClaim: {claimName: tiny}}
",
    );
    eventually(90, "the greeting on the host", || {
        std::thread::sleep(Duration::from_millis(300));
        std::fs::read_to_string(host("small").join("greeting"))
            .ok()
            .filter(|g| g == "hello\n")
    });
}
