//! The Deployment controller with real pods: a rollout to a new template replaces every
//! pod through a new ReplicaSet within maxSurge/maxUnavailable, and the status reads as
//! `kubectl rollout status` expects.

mod common;

use common::{TestDaemon, eventually, stdout};
use serde_json::Value;

fn deployment(cmd: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 3
  strategy:
    rollingUpdate: {{maxSurge: 1, maxUnavailable: 1}}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {{name: main, image: berth.local/busybox:latest, imagePullPolicy: Never, command: [sh, -c, '{cmd}']}}
"
    )
}

fn json(d: &TestDaemon, args: &[&str]) -> Value {
    let o = d.cli(args);
    serde_json::from_slice(&o.stdout).unwrap_or_default()
}

#[test]
fn a_rolling_update_replaces_every_pod_within_its_bounds() {
    let d = TestDaemon::start();
    d.import_busybox();
    let f = d.write("v1.yaml", &deployment("echo v1; sleep 3600"));
    assert!(
        d.cli(&["apply", "-f", f.to_str().unwrap()])
            .status
            .success()
    );
    let done = |d: &TestDaemon, generation: i64| -> Option<Value> {
        let v = json(d, &["get", "deploy", "web", "-o", "json"]);
        let s = &v["status"];
        (s["observedGeneration"].as_i64() >= Some(generation)
            && s["updatedReplicas"] == 3
            && s["availableReplicas"] == 3
            && s["replicas"] == 3)
            .then_some(v)
    };
    let v = eventually(90, "three available replicas", || done(&d, 1));
    let conds = v["status"]["conditions"].as_array().unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c["type"] == "Available" && c["status"] == "True"),
        "{v}"
    );
    let first_rs: Vec<String> = json(&d, &["get", "rs", "-o", "json"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(first_rs.len(), 1);

    // Roll to v2, watching that never more than 3 + 1 pods exist.
    let f = d.write("v2.yaml", &deployment("echo v2; sleep 3600"));
    assert!(
        d.cli(&["apply", "-f", f.to_str().unwrap()])
            .status
            .success()
    );
    let mut most = 0;
    let v = eventually(120, "the rollout to finish", || {
        let pods = json(&d, &["get", "pods", "-l", "app=web", "-o", "json"]);
        let live = pods["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                    .count()
            })
            .unwrap_or(0);
        most = most.max(live);
        let v = done(&d, 2)?;
        let olds = json(&d, &["get", "rs", first_rs[0].as_str(), "-o", "json"]);
        (olds["spec"]["replicas"] == 0 && olds["status"]["replicas"].as_i64().unwrap_or(0) == 0)
            .then_some(v)
    });
    assert!(
        most <= 4,
        "{most} pods at once for 3 replicas with maxSurge 1"
    );
    let progressing = v["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .cloned()
        .unwrap();
    assert_eq!(progressing["reason"], "NewReplicaSetAvailable", "{v}");
    assert_eq!(
        v["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let o = d.cli(&["events", "--for", "deployment/web"]);
    assert!(
        stdout(&o).contains("Scaled up replica set web-"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("Scaled down replica set web-"),
        "{}",
        stdout(&o)
    );
    let pods = json(&d, &["get", "pods", "-l", "app=web", "-o", "json"]);
    let live: Vec<&Value> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect();
    assert_eq!(live.len(), 3, "{pods}");
    let pod = live[0]["metadata"]["name"].as_str().unwrap().to_string();
    let o = d.cli(&["logs", &pod]);
    assert_eq!(stdout(&o), "v2\n", "{pod}: {pods}");
}
