//! ResourceQuota and LimitRange admission for real: a quota of 2 pods refuses the third
//! with Kubernetes' message and creates nothing; deleting a pod frees a slot; the quota's
//! status follows; a Deployment under the quota stops at 2 with FailedCreate events;
//! LimitRange defaults land in pods and its bounds refuse what exceeds them.

mod common;

use std::time::Duration;

use common::{TestDaemon, eventually, ok, stderr};

fn pod(name: &str, ns: &str, resources: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: q}}
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sleep, '3600']
{resources}"
    )
}

#[test]
fn a_quota_of_two_pods_refuses_the_third() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.apply_yaml(
        "quota",
        "apiVersion: v1
kind: ResourceQuota
metadata:
  name: two-pods
spec:
  hard:
    pods: '2'
",
    );
    d.apply_yaml("p1", &pod("p1", "default", ""));
    d.apply_yaml("p2", &pod("p2", "default", ""));
    let f = d.write("p3.yaml", &pod("p3", "default", ""));
    let o = d.cli(&["apply", "-f", f.to_str().expect("utf-8")]);
    assert!(!o.status.success(), "the third pod was accepted");
    assert!(
        stderr(&o).contains(
            "pods \"p3\" is forbidden: exceeded quota: two-pods, requested: pods=1, used: pods=2, limited: pods=2"
        ),
        "{}",
        stderr(&o)
    );
    assert!(d.get_json(&["pod", "p3"]).is_none(), "p3 was created");
    // The quota's status says so.
    eventually(30, "the quota's status", || {
        std::thread::sleep(Duration::from_millis(200));
        d.get_json(&["quota", "two-pods"])
            .filter(|q| q["status"]["used"]["pods"] == "2" && q["status"]["hard"]["pods"] == "2")
    });
    // A freed slot takes the pod.
    ok(&d.cli(&["delete", "pod", "p1", "--grace-period", "0"]));
    eventually(60, "p3 accepted once p1 is gone", || {
        std::thread::sleep(Duration::from_millis(300));
        d.cli(&["apply", "-f", f.to_str().expect("utf-8")])
            .status
            .success()
            .then_some(())
    });

    // A Deployment of 3 in a namespace allowing 2 pods: 2 run, the ReplicaSet says why.
    d.apply_yaml(
        "ns",
        "apiVersion: v1
kind: Namespace
metadata:
  name: small
---
apiVersion: v1
kind: ResourceQuota
metadata:
  name: two-pods
  namespace: small
spec:
  hard: {pods: '2'}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: small
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: main
        image: berth.local/busybox:latest
        imagePullPolicy: Never
        command: [sleep, '3600']
",
    );
    let events = eventually(60, "the ReplicaSet's FailedCreate", || {
        std::thread::sleep(Duration::from_millis(300));
        let out = ok(&d.cli(&["events", "-n", "small"]));
        out.contains("FailedCreate").then_some(out)
    });
    assert!(events.contains("exceeded quota: two-pods"), "{events}");
    let pods = d.get_json(&["pods", "-n", "small"]).expect("pods");
    assert_eq!(pods["items"].as_array().map(Vec::len), Some(2));
}

#[test]
fn limit_ranges_default_and_bound_containers_and_compute_quotas_need_requests() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.apply_yaml(
        "lr",
        "apiVersion: v1
kind: Namespace
metadata:
  name: limited
---
apiVersion: v1
kind: LimitRange
metadata:
  name: defaults
  namespace: limited
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 128Mi}
    defaultRequest: {cpu: 100m, memory: 64Mi}
    max: {cpu: '1'}
",
    );
    d.apply_yaml("plain", &pod("plain", "limited", ""));
    let p = d.get_json(&["pod", "plain", "-n", "limited"]).expect("pod");
    let r = &p["spec"]["containers"][0]["resources"];
    assert_eq!(r["limits"]["cpu"], "500m");
    assert_eq!(r["limits"]["memory"], "128Mi");
    assert_eq!(r["requests"]["cpu"], "100m");
    assert_eq!(r["requests"]["memory"], "64Mi");
    let big = d.write(
        "big.yaml",
        &pod("big", "limited", "    resources: {limits: {cpu: '2'}}\n"),
    );
    let o = d.cli(&["apply", "-f", big.to_str().expect("utf-8")]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(
            "pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
        ),
        "{}",
        stderr(&o)
    );

    // A quota on requests.cpu: pods must say what they request.
    d.apply_yaml(
        "cq",
        "apiVersion: v1
kind: ResourceQuota
metadata:
  name: compute
spec:
  hard: {requests.cpu: '1'}
",
    );
    let bare = d.write("bare.yaml", &pod("bare", "default", ""));
    let o = d.cli(&["apply", "-f", bare.to_str().expect("utf-8")]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(
            "pods \"bare\" is forbidden: failed quota: compute: must specify requests.cpu for: main"
        ),
        "{}",
        stderr(&o)
    );
    d.apply_yaml(
        "ok",
        &pod(
            "fits",
            "default",
            "    resources: {requests: {cpu: 600m}}\n",
        ),
    );
    let over = d.write(
        "over.yaml",
        &pod(
            "over",
            "default",
            "    resources: {requests: {cpu: 600m}}\n",
        ),
    );
    let o = d.cli(&["apply", "-f", over.to_str().expect("utf-8")]);
    assert!(
        stderr(&o).contains("exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=600m, limited: requests.cpu=1"),
        "{}",
        stderr(&o)
    );
}
