//! Services for real (root): cluster IP and node port allocation by the API server, and the
//! service proxy's nftables rules carrying traffic from pods and from the host to ready
//! pods. Each test daemon has its own Service CIDR and port block (see `common::TestNet`);
//! traffic goes only to loopback and to the test's own pods.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::{TestDaemon, eventually, ok, stderr, stdout};
use serde_json::Value;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

/// A busybox pod labelled `app: web` answering its own name on port `http` (8080) and
/// `alt <name>` on port `alt` (8081); `ready: false` gives it a readiness probe that
/// always fails.
fn web(name: &str, ready: bool) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: web}}
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, 'mkdir -p /www /alt; echo {name} > /www/index.html; echo alt {name} > /alt/index.html; httpd -p 8081 -h /alt; exec httpd -f -p 8080 -h /www']
    ports:
    - {{name: http, containerPort: 8080}}
    - {{name: alt, containerPort: 8081}}
    readinessProbe:
      exec: {{command: ['{ready}']}}
      periodSeconds: 1
"
    )
}

const CLIENT: &str = "apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sleep, '3600']
";

fn wait_running(d: &TestDaemon, name: &str, ready: bool) {
    eventually(60, &format!("pod {name} running"), || {
        d.get_json(&["pod", name]).filter(|p| {
            p["status"]["phase"] == "Running"
                && p["status"]["podIP"].is_string()
                && p["status"]["containerStatuses"][0]["started"] == true
                && (!ready || p["status"]["containerStatuses"][0]["ready"] == true)
        })
    });
}

/// Runs `script` with `sh -c` inside pod `pod`; stdout and stderr together.
fn sh(d: &TestDaemon, pod: &str, script: &str) -> String {
    let o = d.cli(&["exec", pod, "--", "sh", "-c", script]);
    format!("{}{}", stdout(&o), stderr(&o))
}

/// `n` fetches of `url` from inside `pod`, one answer per line (busybox wget may crash on
/// its own -T, so `timeout` bounds it).
fn fetch_many(d: &TestDaemon, pod: &str, url: &str, n: usize) -> Vec<String> {
    let out = sh(
        d,
        pod,
        &format!("for i in $(seq {n}); do timeout 5 wget -q -O- {url} || echo FAILED; done"),
    );
    out.lines().map(str::to_string).collect()
}

/// An HTTP GET from the host to 127.0.0.1:`port`; the body, or None.
fn host_get(port: u16) -> Option<String> {
    let addr = (Ipv4Addr::LOCALHOST, port).into();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: test\r\n\r\n")
        .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let (head, body) = buf.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.trim().to_string())
}

fn svc_table(d: &TestDaemon) -> String {
    let o = Command::new("nft")
        .args(["list", "table", "ip", &format!("{}_svc", d.net.table)])
        .output()
        .unwrap();
    stdout(&o)
}

fn node_port(svc: &Value, i: usize) -> u16 {
    svc["spec"]["ports"][i]["nodePort"].as_u64().unwrap() as u16
}

#[test]
fn services_carry_traffic_to_ready_pods_from_pods_and_the_host() {
    let d = daemon();
    let cidr: berth::network::Ipv4Net = d.net.service_cidr.parse().unwrap();
    let (lb_http, lb_alt) = (d.net.host_port(0), d.net.host_port(1));
    let node_ports = d.net.port_base..=d.net.port_base + 7;
    d.apply_yaml("web-a", &web("web-a", true));
    d.apply_yaml("web-b", &web("web-b", true));
    d.apply_yaml("web-c", &web("web-c", false));
    d.apply_yaml("client", CLIENT);
    d.apply_yaml(
        "services",
        &format!(
            "apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  type: LoadBalancer
  selector: {{app: web}}
  ports:
  - {{name: http, port: {lb_http}, targetPort: http}}
  - {{name: alt, port: {lb_alt}, targetPort: alt}}
---
apiVersion: v1
kind: Service
metadata: {{name: sticky}}
spec:
  type: NodePort
  selector: {{app: web}}
  sessionAffinity: ClientIP
  ports:
  - {{port: 80, targetPort: http}}
---
apiVersion: v1
kind: Service
metadata: {{name: empty}}
spec:
  selector: {{app: nobody}}
  ports:
  - {{port: 80}}
"
        ),
    );
    wait_running(&d, "web-a", true);
    wait_running(&d, "web-b", true);
    wait_running(&d, "web-c", false);
    wait_running(&d, "client", false);
    // All three pods are endpoints; web-c is not ready.
    eventually(30, "web's EndpointSlice with web-c not ready", || {
        let list = d.get_json(&["endpointslices", "-l", "kubernetes.io/service-name=web"])?;
        let eps: Vec<&Value> = list["items"]
            .as_array()?
            .iter()
            .flat_map(|s| s["endpoints"].as_array().into_iter().flatten())
            .collect();
        let not_ready = eps
            .iter()
            .filter(|e| e["conditions"]["ready"] == false)
            .count();
        (eps.len() == 3 && not_ready == 1).then_some(())
    });

    // Allocated by the API server: a cluster IP of the daemon's CIDR, node ports of its range,
    // and the node's address as the load balancer's.
    let svc = d.get_json(&["svc", "web"]).unwrap();
    let cip: Ipv4Addr = svc["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
    assert!(
        cidr.contains(cip) && cip != cidr.network(),
        "{cip} in {cidr}"
    );
    assert_eq!(svc["spec"]["clusterIPs"][0], svc["spec"]["clusterIP"]);
    let (np_http, np_alt) = (node_port(&svc, 0), node_port(&svc, 1));
    assert!(node_ports.contains(&np_http) && node_ports.contains(&np_alt) && np_http != np_alt);
    let svc = eventually(30, "load balancer ingress", || {
        d.get_json(&["svc", "web"])
            .filter(|s| s["status"]["loadBalancer"]["ingress"][0]["ip"].is_string())
    });
    let lb_ip = svc["status"]["loadBalancer"]["ingress"][0]["ip"]
        .as_str()
        .unwrap()
        .to_string();

    // Pod → ClusterIP: spread over the ready pods, never the unready one.
    let url = format!("http://{cip}:{lb_http}/index.html");
    eventually(30, "client reaches the cluster IP", || {
        (fetch_many(&d, "client", &url, 1) != ["FAILED"]).then_some(())
    });
    let answers = fetch_many(&d, "client", &url, 40);
    let seen: BTreeSet<&str> = answers.iter().map(String::as_str).collect();
    assert_eq!(
        seen,
        BTreeSet::from(["web-a", "web-b"]),
        "40 requests: {answers:?}"
    );
    // By DNS name too, full and short (the pod's search path), through the cluster DNS.
    for name in ["web.default.svc.cluster.local", "web"] {
        let by_name = fetch_many(
            &d,
            "client",
            &format!("http://{name}:{lb_http}/index.html"),
            10,
        );
        assert!(
            by_name.iter().all(|a| a == "web-a" || a == "web-b"),
            "{name}: {by_name:?}"
        );
    }
    // Second port, target port by name.
    let alt = fetch_many(
        &d,
        "client",
        &format!("http://{cip}:{lb_alt}/index.html"),
        10,
    );
    assert!(
        alt.iter().all(|a| a == "alt web-a" || a == "alt web-b"),
        "{alt:?}"
    );

    // Host → NodePort and LoadBalancer port on 127.0.0.1.
    let mut from_host = BTreeSet::new();
    for _ in 0..40 {
        from_host.insert(host_get(np_http).unwrap_or_else(|| "FAILED".into()));
    }
    assert_eq!(
        from_host,
        BTreeSet::from(["web-a".to_string(), "web-b".to_string()]),
        "host to 127.0.0.1:{np_http}"
    );
    let alt = host_get(np_alt).unwrap_or_default();
    assert!(alt == "alt web-a" || alt == "alt web-b", "{alt:?}");
    let lb = host_get(lb_http).unwrap_or_default();
    assert!(
        lb == "web-a" || lb == "web-b",
        "127.0.0.1:{lb_http}: {lb:?}"
    );

    // Hairpin: a backend reaching its own Service, itself included.
    let own = fetch_many(&d, "web-a", &url, 30);
    assert!(own.iter().all(|a| a == "web-a" || a == "web-b"), "{own:?}");
    assert!(
        own.iter().any(|a| a == "web-a"),
        "web-a never reached itself: {own:?}"
    );

    // sessionAffinity: ClientIP holds a client to one pod.
    let sticky = d.get_json(&["svc", "sticky"]).unwrap();
    let sticky_ip = sticky["spec"]["clusterIP"].as_str().unwrap().to_string();
    let held = fetch_many(&d, "client", &format!("http://{sticky_ip}/index.html"), 20);
    let held: BTreeSet<String> = held.into_iter().collect();
    assert!(held.len() == 1 && !held.contains("FAILED"), "{held:?}");
    // Another Service's rules come: the table is rebuilt, the client stays where it was.
    d.apply_yaml(
        "other",
        "apiVersion: v1\nkind: Service\nmetadata: {name: other}\nspec:\n  selector: {app: web}\n  ports:\n  - {port: 80, targetPort: http}\n",
    );
    eventually(30, "rules for the other service", || {
        svc_table(&d).contains("default/other:80").then_some(())
    });
    let again: BTreeSet<String> =
        fetch_many(&d, "client", &format!("http://{sticky_ip}/index.html"), 10)
            .into_iter()
            .collect();
    assert_eq!(again, held, "affinity lost when the table was rebuilt");
    let sticky_np = node_port(&sticky, 0);
    let from_host: BTreeSet<String> = (0..10)
        .map(|_| host_get(sticky_np).unwrap_or_else(|| "FAILED".into()))
        .collect();
    assert!(
        from_host.len() == 1 && !from_host.contains("FAILED"),
        "{from_host:?}"
    );

    // No ready endpoint: refused at once, not left to time out.
    let empty = d.get_json(&["svc", "empty"]).unwrap();
    let empty_ip = empty["spec"]["clusterIP"].as_str().unwrap();
    let out = sh(
        &d,
        "client",
        &format!("timeout 5 wget -q -O- http://{empty_ip}/ 2>&1; echo rc=$?"),
    );
    assert!(out.contains("refused"), "{out}");

    // kubectl's columns.
    let table = ok(&d.cli(&["get", "svc", "web"]));
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[..3], ["web", "LoadBalancer", cip.to_string().as_str()]);
    assert_eq!(row[3], lb_ip);
    assert_eq!(
        row[4],
        format!("{lb_http}:{np_http}/TCP,{lb_alt}:{np_alt}/TCP")
    );
    let slices = ok(&d.cli(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
    ]));
    let header: Vec<&str> = slices.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]);
    assert!(slices.contains("IPv4"), "{slices}");

    // Deleting the Service removes its rules.
    assert!(svc_table(&d).contains(&cip.to_string()));
    ok(&d.cli(&["delete", "svc", "web"]));
    eventually(30, "web's rules gone", || {
        let t = svc_table(&d);
        (!t.contains(&format!("{cip} "))
            && !t.contains(&format!("dport {np_http} "))
            && !t.contains("default/web:"))
        .then_some(())
    });
    assert_eq!(host_get(np_http), None, "127.0.0.1:{np_http} still answers");
}

#[test]
fn allocation_honours_or_refuses_requested_values_and_frees_on_delete() {
    let mut d = TestDaemon::start();
    let cidr: berth::network::Ipv4Net = d.net.service_cidr.parse().unwrap();
    let ip = Ipv4Addr::from(u32::from(cidr.network()) + 10);
    let np = d.net.port_base + 3;
    let svc = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
{extra}"
        )
    };
    let try_apply = |d: &TestDaemon, name: &str, yaml: &str| {
        let path = d.write(&format!("{name}.yaml"), yaml);
        d.cli(&["apply", "-f", path.to_str().unwrap()])
    };
    let a = svc(
        "a",
        &format!(
            "  type: NodePort\n  clusterIP: {ip}\n  ports:\n  - {{port: 80, nodePort: {np}}}\n"
        ),
    );
    ok(&try_apply(&d, "a", &a));
    let got = d.get_json(&["svc", "a"]).unwrap();
    assert_eq!(got["spec"]["clusterIP"], ip.to_string());
    assert_eq!(got["spec"]["ports"][0]["nodePort"], np);

    let taken_ip = try_apply(
        &d,
        "b",
        &svc(
            "b",
            &format!("  clusterIP: {ip}\n  ports:\n  - {{port: 80}}\n"),
        ),
    );
    assert!(!taken_ip.status.success());
    assert!(
        stderr(&taken_ip).contains(&format!(
            "spec.clusterIPs: Invalid value: [\"{ip}\"]: failed to allocate IP {ip}: provided IP is already allocated"
        )),
        "{}",
        stderr(&taken_ip)
    );
    let taken_port = try_apply(
        &d,
        "b",
        &svc(
            "b",
            &format!("  type: NodePort\n  ports:\n  - {{port: 80, nodePort: {np}}}\n"),
        ),
    );
    assert!(
        stderr(&taken_port).contains(&format!(
            "spec.ports[0].nodePort: Invalid value: {np}: provided port is already allocated"
        )),
        "{}",
        stderr(&taken_port)
    );
    let outside = try_apply(
        &d,
        "b",
        &svc(
            "b",
            "  type: NodePort\n  clusterIP: 10.1.2.3\n  ports:\n  - {port: 80, nodePort: 80}\n",
        ),
    );
    let e = stderr(&outside);
    assert!(
        e.contains(&format!(
            "the provided IP (10.1.2.3) is not in the valid range. The range of valid IPs is {cidr}"
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "provided port is not in the valid range. The range of valid ports is {}-{}",
            d.net.port_base,
            d.net.port_base + 7
        )),
        "{e}"
    );
    assert!(d.get_json(&["svc", "b"]).is_none(), "nothing stored");

    // Re-applying without the allocated values keeps them; a headless Service gets none.
    ok(&try_apply(
        &d,
        "a2",
        &svc(
            "a",
            "  type: NodePort\n  ports:\n  - {port: 80}\n  - {port: 81, name: extra}\n",
        )
        .replace("  - {port: 80}\n", "  - {port: 80, name: web}\n"),
    ));
    let again = d.get_json(&["svc", "a"]).unwrap();
    assert_eq!(again["spec"]["clusterIP"], ip.to_string());
    let extra = again["spec"]["ports"][1]["nodePort"].as_u64().unwrap() as u16;
    assert!((d.net.port_base..=d.net.port_base + 7).contains(&extra) && extra != np);
    ok(&try_apply(
        &d,
        "h",
        &svc("h", "  clusterIP: None\n  ports:\n  - {port: 80}\n"),
    ));
    assert_eq!(
        d.get_json(&["svc", "h"]).unwrap()["spec"]["clusterIPs"][0],
        "None"
    );

    // Held values survive a restart; a delete frees them.
    d.stop();
    d.spawn();
    let fresh = try_apply(
        &d,
        "c",
        &svc(
            "c",
            &format!("  clusterIP: {ip}\n  ports:\n  - {{port: 80}}\n"),
        ),
    );
    assert!(!fresh.status.success(), "{ip} handed out twice");
    ok(&d.cli(&["delete", "svc", "a"]));
    ok(&try_apply(
        &d,
        "c",
        &svc(
            "c",
            &format!(
                "  type: NodePort\n  clusterIP: {ip}\n  ports:\n  - {{port: 80, nodePort: {np}}}\n"
            ),
        ),
    ));
}
