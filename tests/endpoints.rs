//! The Endpoints and EndpointSlice controllers with real pods (root): endpoints follow the
//! selector and the pods' readiness, named target ports resolve per pod, and a selectorless
//! Service's own Endpoints are mirrored into a slice.

mod common;

use common::{TestDaemon, eventually, ok};
use serde_json::Value;

/// The slices of service `svc`: (ready IPs, not-ready IPs, ports) over all of them.
fn slice_view(d: &TestDaemon, svc: &str) -> (Vec<String>, Vec<String>, Vec<Value>) {
    let list = d
        .get_json(&[
            "endpointslices",
            "-l",
            &format!("kubernetes.io/service-name={svc}"),
        ])
        .expect("list slices");
    let (mut ready, mut not_ready, mut ports) = (Vec::new(), Vec::new(), Vec::new());
    for s in list["items"].as_array().expect("items") {
        ports.extend(s["ports"].as_array().cloned().unwrap_or_default());
        for e in s["endpoints"].as_array().into_iter().flatten() {
            let ip = e["addresses"][0].as_str().unwrap_or_default().to_string();
            if e["conditions"]["ready"] == true {
                ready.push(ip);
            } else {
                not_ready.push(ip);
            }
        }
    }
    ready.sort();
    not_ready.sort();
    (ready, not_ready, ports)
}

fn pod_ip(d: &TestDaemon, name: &str) -> String {
    eventually(60, &format!("{name} to have an IP"), || {
        d.get_json(&["pod", name])
            .and_then(|p| p["status"]["podIP"].as_str().map(str::to_string))
    })
}

fn pod(name: &str, ready: bool) -> String {
    let check = if ready { "true" } else { "false" };
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sleep, '3600']
    ports: [{{name: http, containerPort: 8080}}]
    readinessProbe:
      exec: {{command: ['{check}']}}
      periodSeconds: 1
"
    )
}

#[test]
fn endpoints_follow_selector_readiness_and_named_ports() {
    let d = TestDaemon::start();
    d.import_busybox();
    d.apply_yaml(
        "svc",
        "apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {tier: front}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
",
    );
    // Before any pod: one empty slice, an Endpoints without subsets.
    eventually(20, "an empty slice", || {
        let (r, n, _) = slice_view(&d, "web");
        let ep = d.get_json(&["endpoints", "web"])?;
        (r.is_empty() && n.is_empty() && ep.get("subsets").is_none()).then_some(())
    });
    d.apply_yaml("ready", &pod("ready", true));
    d.apply_yaml("unready", &pod("unready", false));
    let (a, b) = (pod_ip(&d, "ready"), pod_ip(&d, "unready"));

    // The unready pod is listed, not ready; the ready one ready.
    let (_, _, ports) = eventually(60, "ready and unready endpoints", || {
        let v = slice_view(&d, "web");
        (v.0 == [a.clone()] && v.1 == [b.clone()]).then_some(v)
    });
    assert_eq!(
        ports,
        [serde_json::json!({"name": "http", "port": 8080, "protocol": "TCP"})]
    );
    let ep = d.get_json(&["endpoints", "web"]).expect("endpoints");
    assert_eq!(ep["subsets"][0]["addresses"][0]["ip"], a.as_str(), "{ep}");
    assert_eq!(
        ep["subsets"][0]["addresses"][0]["targetRef"]["name"],
        "ready"
    );
    assert_eq!(ep["subsets"][0]["notReadyAddresses"][0]["ip"], b.as_str());
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], 8080);
    assert_eq!(ep["metadata"]["labels"]["tier"], "front", "{ep}");
    let slices = d.get_json(&["endpointslices"]).expect("slices");
    let slice = &slices["items"][0];
    assert_eq!(slice["addressType"], "IPv4");
    assert_eq!(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert_eq!(
        slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert!(
        slice["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("web-")),
        "{slice}"
    );

    // A pod that goes away leaves the endpoints.
    ok(&d.cli(&["delete", "pod", "ready", "--wait"]));
    eventually(60, "the deleted pod to leave", || {
        let v = slice_view(&d, "web");
        (v.0.is_empty() && v.1 == [b.clone()]).then_some(())
    });

    // The Service goes: so do its Endpoints and slices.
    ok(&d.cli(&["delete", "service", "web"]));
    eventually(30, "endpoints and slices to go", || {
        let ep = d.cli(&["get", "endpoints", "web"]);
        let (r, n, p) = slice_view(&d, "web");
        (!ep.status.success() && r.is_empty() && n.is_empty() && p.is_empty()).then_some(())
    });
    d.remove_all_pods();
}

#[test]
fn a_selectorless_services_endpoints_are_mirrored_into_a_slice() {
    let d = TestDaemon::start();
    d.apply_yaml(
        "manual",
        "apiVersion: v1
kind: Service
metadata:
  name: outside
spec:
  ports: [{port: 80, targetPort: 9000}]
---
apiVersion: v1
kind: Endpoints
metadata:
  name: outside
subsets:
- addresses: [{ip: 10.9.0.1}]
  notReadyAddresses: [{ip: 10.9.0.2}]
  ports: [{port: 9000}]
",
    );
    let (ready, not_ready, ports) = eventually(20, "a mirrored slice", || {
        let v = slice_view(&d, "outside");
        (!v.0.is_empty()).then_some(v)
    });
    assert_eq!(ready, ["10.9.0.1"]);
    assert_eq!(not_ready, ["10.9.0.2"]);
    assert_eq!(ports[0]["port"], 9000);
    let slices = d.get_json(&["endpointslices"]).expect("slices");
    assert_eq!(
        slices["items"][0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslicemirroring-controller.k8s.io"
    );
    // The user's Endpoints stay the user's: not rewritten, not deleted with the mirror.
    let ep = d.get_json(&["endpoints", "outside"]).expect("endpoints");
    assert!(ep["metadata"]["labels"].is_null(), "{ep}");
    ok(&d.cli(&["delete", "endpoints", "outside"]));
    eventually(20, "the mirror to go", || {
        slice_view(&d, "outside").0.is_empty().then_some(())
    });
    ok(&d.cli(&["get", "service", "outside"]));
}
