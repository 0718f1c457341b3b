//! NetworkPolicy for real (root): pods serving HTTP on ports 5000 and 5001, clients inside
//! other pods (`timeout 3 wget`), policies applied and deleted through the CLI. Traffic
//! only goes between the test's own pods and from the host to them.

mod common;

use std::net::Ipv4Addr;
use std::process::Command;

use common::{TestDaemon, eventually, ok};
use serde_json::Value;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

/// A pod serving "ok from NAME" with httpd on ports 5000 and 5001; `extra` goes at the end
/// of its container (after its port `web`, 5000).
fn server(ns: &str, name: &str, labels: &[(&str, &str)], extra: &str) -> String {
    let labels: String = labels
        .iter()
        .map(|(k, v)| format!("\n    {k}: {v}"))
        .collect();
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels:
    test: netpol{labels}
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, 'echo ok from {name} > /tmp/index.html; httpd -p 5001 -h /tmp; exec httpd -f -p 5000 -h /tmp']
    ports:
    - name: web
      containerPort: 5000
{extra}---
"
    )
}

fn apply(d: &TestDaemon, file: &str, yaml: &str) {
    let path = d.write(file, yaml);
    ok(&d.cli(&["apply", "-f", path.to_str().unwrap()]));
}

fn pod(d: &TestDaemon, ns: &str, name: &str) -> Option<Value> {
    let o = d.cli(&["get", "pod", name, "-n", ns, "-o", "json"]);
    o.status
        .success()
        .then(|| serde_json::from_slice(&o.stdout).unwrap())
}

fn ready_ip(d: &TestDaemon, ns: &str, name: &str) -> Ipv4Addr {
    let p = eventually(90, &format!("pod {ns}/{name} ready with an IP"), || {
        pod(d, ns, name).filter(|p| {
            p["status"]["podIP"].is_string() && p["status"]["containerStatuses"][0]["ready"] == true
        })
    });
    p["status"]["podIP"].as_str().unwrap().parse().unwrap()
}

/// Whether pod `ns/from` gets "ok from …" from `ip:port` (a fresh connection, 3 s).
fn reaches(d: &TestDaemon, ns: &str, from: &str, ip: Ipv4Addr, port: u16) -> bool {
    let url = format!("http://{ip}:{port}/index.html");
    let o = d.cli(&[
        "exec", from, "-n", ns, "--", "timeout", "3", "wget", "-q", "-O", "-", &url,
    ]);
    o.status.success() && String::from_utf8_lossy(&o.stdout).starts_with("ok from")
}

/// Waits until `reaches` gives `want` (a policy change applies asynchronously).
fn until(d: &TestDaemon, ns: &str, from: &str, ip: Ipv4Addr, port: u16, want: bool) {
    let what = format!(
        "{ns}/{from} {} {ip}:{port}",
        if want { "to reach" } else { "to be refused by" }
    );
    eventually(30, &what, || {
        (reaches(d, ns, from, ip, port) == want).then_some(())
    });
}

/// The host (the node itself, as the kubelet is) fetches from a pod.
fn host_reaches(ip: Ipv4Addr, port: u16) -> bool {
    Command::new("timeout")
        .args(["5", "busybox", "wget", "-q", "-O", "-"])
        .arg(format!("http://{ip}:{port}/index.html"))
        .output()
        .is_ok_and(|o| o.status.success())
}

fn policy_table_exists(d: &TestDaemon) -> bool {
    let o = Command::new("nft")
        .args(["list", "table", "ip", &format!("{}_pol", d.net.table)])
        .output()
        .unwrap();
    o.status.success()
}

const PROBES: &str = "    readinessProbe:
      httpGet: {path: /index.html, port: 5000}
      periodSeconds: 1
    livenessProbe:
      httpGet: {path: /index.html, port: web}
      periodSeconds: 1
      failureThreshold: 2
";

#[test]
fn only_monitoring_pods_reach_the_apiserver_on_port_5000_until_the_policy_goes() {
    let d = daemon();
    // Its hostPort makes traffic that is routed (DNAT on the node, then forwarded back
    // onto the bridge), as a Service's would be.
    let host_port = 20000 + (uuid::Uuid::new_v4().as_u128() % 10000) as u16;
    let mut yaml = server(
        "default",
        "apiserver",
        &[("app", "apiserver")],
        &format!("      hostPort: {host_port}\n{PROBES}"),
    );
    yaml += &server("default", "monitor", &[("role", "monitoring")], "");
    yaml += &server("default", "other", &[], "");
    yaml += &server("default", "free", &[("app", "free")], "");
    apply(&d, "pods.yaml", &yaml);
    let api = ready_ip(&d, "default", "apiserver");
    let mon = ready_ip(&d, "default", "monitor");
    let free = ready_ip(&d, "default", "free");
    ready_ip(&d, "default", "other");
    let host_ip: Ipv4Addr = pod(&d, "default", "apiserver").unwrap()["status"]["hostIP"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // Open before any policy, bridged and routed.
    until(&d, "default", "other", api, 5000, true);
    until(&d, "default", "other", host_ip, host_port, true);
    // Bridged pod traffic goes through the ip family's hooks, for this bridge.
    let option = format!("/sys/class/net/{}/bridge/nf_call_iptables", d.net.bridge);
    assert_eq!(std::fs::read_to_string(&option).unwrap().trim(), "1");
    assert!(!policy_table_exists(&d), "no policy, no table");

    // The Kubernetes docs' example, by named port here and by number below.
    apply(
        &d,
        "policy.yaml",
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: api-allow-monitoring
spec:
  podSelector:
    matchLabels:
      app: apiserver
  ingress:
  - from:
    - podSelector:
        matchLabels:
          role: monitoring
    ports:
    - protocol: TCP
      port: 5000
",
    );
    until(&d, "default", "other", api, 5000, false);
    assert!(policy_table_exists(&d));
    assert!(reaches(&d, "default", "monitor", api, 5000));
    assert!(!reaches(&d, "default", "monitor", api, 5001), "other port");
    assert!(!reaches(&d, "default", "other", api, 5001));
    // Routed through the hostPort's DNAT: the policy sees the real source.
    assert!(reaches(&d, "default", "monitor", host_ip, host_port));
    assert!(!reaches(&d, "default", "other", host_ip, host_port));
    // Pods no policy selects stay open, both ways.
    assert!(reaches(&d, "default", "other", free, 5000));
    assert!(reaches(&d, "default", "apiserver", free, 5001));
    assert!(reaches(&d, "default", "other", mon, 5001));
    // The node reaches the policed pod (as the kubelet's probes would from the host).
    assert!(host_reaches(api, 5000));
    assert!(host_reaches(api, 5001));

    // Egress: "other" may only talk to monitoring pods, on the named port "web".
    apply(
        &d,
        "egress.yaml",
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: other-egress
spec:
  podSelector:
    matchExpressions:
    - {key: app, operator: DoesNotExist}
    - {key: role, operator: DoesNotExist}
  policyTypes: [Egress]
  egress:
  - to:
    - podSelector:
        matchLabels:
          role: monitoring
    ports:
    - port: web
",
    );
    until(&d, "default", "other", free, 5000, false);
    assert!(reaches(&d, "default", "other", mon, 5000));
    assert!(
        !reaches(&d, "default", "other", mon, 5001),
        "not the named port"
    );
    // Its ingress is not restricted by an Egress-only policy.
    let other = ready_ip(&d, "default", "other");
    assert!(reaches(&d, "default", "free", other, 5000));

    // The probes of the policed pod kept working: still ready, never restarted.
    let p = pod(&d, "default", "apiserver").unwrap();
    assert_eq!(p["status"]["containerStatuses"][0]["ready"], true, "{p}");
    assert_eq!(
        p["status"]["containerStatuses"][0]["restartCount"], 0,
        "{p}"
    );

    // Deleting the policies reopens everything and removes the table.
    ok(&d.cli(&[
        "delete",
        "networkpolicy",
        "api-allow-monitoring",
        "other-egress",
    ]));
    until(&d, "default", "other", api, 5000, true);
    until(&d, "default", "other", free, 5000, true);
    assert!(reaches(&d, "default", "monitor", api, 5001));
    eventually(10, "the policy table to go", || {
        (!policy_table_exists(&d)).then_some(())
    });
}

#[test]
fn namespace_selectors_ip_blocks_a_restart_and_deleted_pods() {
    let mut d = daemon();
    let mut yaml = String::new();
    for (ns, team) in [("np-a", "a"), ("np-b", "b")] {
        yaml += &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    team: {team}\n---\n"
        );
    }
    yaml += &server("default", "db", &[("app", "db")], "");
    yaml += &server("default", "w", &[], "");
    yaml += &server("np-a", "x", &[], "");
    yaml += &server("np-b", "y", &[("role", "ok")], "");
    yaml += &server("np-b", "z", &[], "");
    apply(&d, "setup.yaml", &yaml);
    let db = ready_ip(&d, "default", "db");
    let w = ready_ip(&d, "default", "w");
    ready_ip(&d, "np-a", "x");
    ready_ip(&d, "np-b", "y");
    let z = ready_ip(&d, "np-b", "z");
    let cidr = &d.net.pod_cidr;

    // Port 5000: every pod of team a's namespaces, and pods with role=ok in team b's.
    // Port 5001: the pod CIDR except z.
    apply(
        &d,
        "policy.yaml",
        &format!(
            "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: db
spec:
  podSelector:
    matchLabels:
      app: db
  ingress:
  - from:
    - namespaceSelector:
        matchLabels:
          team: a
    - namespaceSelector:
        matchLabels:
          team: b
      podSelector:
        matchLabels:
          role: ok
    ports:
    - port: 5000
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: db-block
spec:
  podSelector:
    matchLabels:
      app: db
  policyTypes: [Ingress]
  ingress:
  - from:
    - ipBlock:
        cidr: {cidr}
        except: [{z}/32]
    ports:
    - port: 5000
      endPort: 5001
"
        ),
    );
    until(&d, "np-b", "z", db, 5001, false);
    assert!(reaches(&d, "np-a", "x", db, 5000));
    assert!(reaches(&d, "np-b", "y", db, 5000));
    assert!(!reaches(&d, "np-b", "z", db, 5000));
    assert!(reaches(&d, "default", "w", db, 5000), "in the ipBlock");
    assert!(reaches(&d, "default", "w", db, 5001), "endPort");
    assert!(reaches(&d, "np-a", "x", db, 5001));

    // The rules stay while the daemon is down (its pods keep running) and still hold
    // after it restarts.
    d.stop();
    assert!(policy_table_exists(&d), "the pods stay policed");
    d.spawn();
    assert!(!reaches(&d, "np-b", "z", db, 5000));
    assert!(reaches(&d, "np-b", "y", db, 5000));

    // A namespace's labels count: z's namespace joins team a, z still is excepted on
    // 5001 but gets 5000 through the namespaceSelector.
    apply(
        &d,
        "relabel.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: np-b\n  labels:\n    team: a\n",
    );
    until(&d, "np-b", "z", db, 5000, true);
    assert!(!reaches(&d, "np-b", "z", db, 5001));

    // An egress policy isolating w with no rule: w reaches nobody else; the node and
    // replies to others' connections still pass.
    apply(
        &d,
        "deny-egress.yaml",
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: w-deny-egress
spec:
  podSelector:
    matchExpressions:
    - {key: app, operator: DoesNotExist}
  policyTypes: [Egress]
",
    );
    until(&d, "default", "w", db, 5000, false);
    assert!(!reaches(&d, "default", "w", z, 5000));
    assert!(reaches(&d, "np-a", "x", w, 5000), "replies pass");
    assert!(host_reaches(w, 5000));

    // Deleting the policed pod takes its rules away.
    let table = || {
        let o = Command::new("nft")
            .args(["list", "table", "ip", &format!("{}_pol", d.net.table)])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let chain = format!("in_{}", db.to_string().replace('.', "_"));
    assert!(table().contains(&chain));
    ok(&d.cli(&[
        "delete",
        "pod",
        "db",
        "--grace-period=1",
        "--wait",
        "--timeout",
        "60",
    ]));
    eventually(20, "the deleted pod's chain to go", || {
        (!table().contains(&chain)).then_some(())
    });
    ok(&d.cli(&["delete", "networkpolicy", "db", "db-block", "w-deny-egress"]));
    eventually(20, "the policy table to go", || {
        (!policy_table_exists(&d)).then_some(())
    });
}
