//! The ReplicaSet controller with real pods: replicas come up, a deleted pod is replaced,
//! scaling converges, surplus pods go.

mod common;

use common::{TestDaemon, eventually, stdout};
use serde_json::Value;

fn running_pods(d: &TestDaemon) -> Vec<Value> {
    let o = d.cli(&["get", "pods", "-l", "app=rs-test", "-o", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    v["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| {
            p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null()
        })
        .collect()
}

#[test]
fn a_replicaset_keeps_its_replicas_running() {
    let d = TestDaemon::start();
    d.import_busybox();
    let rs = d.write(
        "rs.yaml",
        "apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: rs-test}}
  template:
    metadata: {labels: {app: rs-test}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: main, image: berth.local/busybox:latest, imagePullPolicy: Never, command: [sleep, '3600']}
",
    );
    assert!(
        d.cli(&["apply", "-f", rs.to_str().unwrap()])
            .status
            .success()
    );
    let pods = eventually(60, "three running replicas", || {
        let p = running_pods(&d);
        (p.len() == 3).then_some(p)
    });
    for p in &pods {
        assert!(p["metadata"]["name"].as_str().unwrap().starts_with("web-"));
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
    }
    let victim = pods[0]["metadata"]["name"].as_str().unwrap().to_string();
    assert!(d.cli(&["delete", "pod", &victim]).status.success());
    eventually(60, "a replacement", || {
        let p = running_pods(&d);
        (p.len() == 3 && p.iter().all(|p| p["metadata"]["name"] != victim.as_str())).then_some(())
    });
    let o = d.cli(&["events", "--for", "replicaset/web"]);
    assert!(stdout(&o).contains("SuccessfulCreate"), "{}", stdout(&o));

    for (replicas, want) in [("10", 10usize), ("0", 0)] {
        {
            let y = std::fs::read_to_string(&rs)
                .unwrap()
                .replace("replicas: 3", &format!("replicas: {replicas}"));
            let f = d.write("rs2.yaml", &y);
            assert!(
                d.cli(&["apply", "-f", f.to_str().unwrap()])
                    .status
                    .success()
            );
        }
        eventually(120, "the new replica count", || {
            let o = d.cli(&["get", "rs", "web", "-o", "json"]);
            let v: Value = serde_json::from_slice(&o.stdout).ok()?;
            let all = d.cli(&["get", "pods", "-l", "app=rs-test", "-o", "name"]);
            let n = stdout(&all).lines().count();
            (running_pods(&d).len() == want && n == want && v["status"]["replicas"] == want)
                .then_some(())
        });
    }
}
