//! The scheduler against a real daemon: pods that do not fit stay Pending with
//! Kubernetes' reason and a FailedScheduling event, and are bound once they fit; cordon
//! and uncordon; drain's refusals.

mod common;

use common::{TestDaemon, eventually, stdout};
use serde_json::Value;

fn pod_yaml(name: &str, extra_spec: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{{labels}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sleep, '3600']
{extra_spec}"
    )
}

fn get_pod(d: &TestDaemon, name: &str) -> Value {
    let o = d.cli(&["get", "pod", name, "-o", "json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn node_name(p: &Value) -> &str {
    p.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn scheduled_condition(p: &Value) -> Option<Value> {
    p.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "PodScheduled")
        .cloned()
}

fn apply(d: &TestDaemon, file: &str, yaml: &str) {
    let path = d.write(file, yaml);
    let o = d.cli(&["apply", "-f", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Waits until the pod is marked unschedulable and returns the message.
fn unschedulable_message(d: &TestDaemon, name: &str) -> String {
    eventually(20, "the pod to be marked unschedulable", || {
        let p = get_pod(d, name);
        assert_eq!(node_name(&p), "", "{name} must not be bound");
        let c = scheduled_condition(&p)?;
        (c["status"] == "False" && c["reason"] == "Unschedulable")
            .then(|| c["message"].as_str().unwrap_or_default().to_string())
    })
}

#[test]
fn a_pod_that_does_not_fit_stays_pending_with_the_reason() {
    let d = TestDaemon::start();
    apply(
        &d,
        "big.yaml",
        &pod_yaml(
            "big",
            "    resources:\n      requests:\n        memory: 64Ti\n",
            "",
        ),
    );
    let message = unschedulable_message(&d, "big");
    assert_eq!(message, "0/1 nodes are available: 1 Insufficient memory.");
    eventually(20, "a FailedScheduling event", || {
        let o = d.cli(&["events", "--for", "pod/big"]);
        let text = stdout(&o);
        (text.contains("FailedScheduling") && text.contains("Insufficient memory")).then_some(())
    });
    let p = get_pod(&d, "big");
    assert_eq!(p["status"]["phase"], "Pending");
}

#[test]
fn required_anti_affinity_lets_one_replica_per_node_and_cordon_holds_pods() {
    let d = TestDaemon::start();
    let anti = "  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector:
          matchLabels: {app: db}
        topologyKey: kubernetes.io/hostname
";
    for i in 0..3 {
        apply(
            &d,
            &format!("db-{i}.yaml"),
            &pod_yaml(&format!("db-{i}"), anti, "app: db"),
        );
    }
    let (bound, pending) = eventually(20, "one bound, two unschedulable", || {
        let pods: Vec<Value> = (0..3).map(|i| get_pod(&d, &format!("db-{i}"))).collect();
        let bound: Vec<&Value> = pods.iter().filter(|p| !node_name(p).is_empty()).collect();
        let pending: Vec<&Value> = pods
            .iter()
            .filter(|p| scheduled_condition(p).is_some_and(|c| c["status"] == "False"))
            .collect();
        (bound.len() == 1 && pending.len() == 2).then(|| {
            (
                bound[0]["metadata"]["name"].as_str().unwrap().to_string(),
                pending
                    .iter()
                    .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>(),
            )
        })
    });
    for name in &pending {
        assert_eq!(
            unschedulable_message(&d, name),
            "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules."
        );
    }
    let node = node_name(&get_pod(&d, &bound)).to_string();

    // Cordon: a new pod without anti-affinity waits; uncordon binds it.
    let o = d.cli(&["cordon", &node]);
    assert_eq!(stdout(&o).trim(), format!("node/{node} cordoned"));
    let o = d.cli(&["cordon", &node]);
    assert_eq!(stdout(&o).trim(), format!("node/{node} already cordoned"));
    apply(&d, "web.yaml", &pod_yaml("web", "", "app: web"));
    assert_eq!(
        unschedulable_message(&d, "web"),
        "0/1 nodes are available: 1 node(s) were unschedulable."
    );
    let o = d.cli(&["uncordon", &node]);
    assert_eq!(stdout(&o).trim(), format!("node/{node} uncordoned"));
    eventually(20, "web to be bound after uncordon", || {
        (node_name(&get_pod(&d, "web")) == node).then_some(())
    });

    // Drain refuses pods without a controller and leaves the node cordoned.
    let o = d.cli(&["drain", &node]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot delete Pods that declare no controller (use --force to override)"),
        "{err}"
    );
    let n: Value =
        serde_json::from_slice(&d.cli(&["get", "node", &node, "-o", "json"]).stdout).unwrap();
    assert_eq!(n["spec"]["unschedulable"], true);
    d.cli(&["uncordon", &node]);
}
