//! The pod network for real (root): each test daemon has its own bridge, pod /24 and
//! nftables table (see `common::TestNet`). Traffic only goes between the test's own pods
//! and to loopback, never off the machine.

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

/// A busybox pod serving `/www` with httpd on port 8080 (its index says the pod's name).
fn web(name: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, 'echo hello from {name} > /tmp/index.html; exec httpd -f -p 8080 -h /tmp']
"
    )
}

fn get(d: &TestDaemon, name: &str) -> Option<Value> {
    let o = d.cli(&["get", "pod", name, "-o", "json"]);
    o.status
        .success()
        .then(|| serde_json::from_slice(&o.stdout).unwrap())
}

/// Waits for the pod to run with an IP; returns (uid, podIP).
fn running_ip(d: &TestDaemon, name: &str) -> (String, Ipv4Addr) {
    let p = eventually(60, &format!("pod {name} running with an IP"), || {
        get(d, name).filter(|p| {
            p["status"]["phase"] == "Running"
                && p["status"]["podIP"].is_string()
                && p["status"]["containerStatuses"][0]["ready"] == true
        })
    });
    let ip: Ipv4Addr = p["status"]["podIP"].as_str().unwrap().parse().unwrap();
    assert_eq!(p["status"]["podIPs"][0]["ip"], p["status"]["podIP"], "{p}");
    assert!(p["status"]["hostIP"].is_string(), "{p}");
    (p["metadata"]["uid"].as_str().unwrap().to_string(), ip)
}

/// `wget` from inside pod `from` to `ip:8080`.
fn fetch(d: &TestDaemon, from: &str, ip: Ipv4Addr) -> std::process::Output {
    let url = format!("http://{ip}:8080/index.html");
    d.cli(&["exec", from, "--", "wget", "-q", "-O", "-", &url])
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The pod IP allocations the (stopped) daemon left in its store.
fn ipam(d: &TestDaemon) -> Value {
    let store = berth::store::Store::open(&d.state_dir().join("state"), Default::default())
        .expect("open the stopped daemon's store");
    store
        .local_get("ipam")
        .expect("read")
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

#[test]
fn pods_reach_each_other_keep_their_ips_across_a_restart_and_leave_nothing_behind() {
    let mut d = daemon();
    let cidr: berth::network::Ipv4Net = d.net.pod_cidr.parse().unwrap();
    d.apply_yaml("a", &web("a"));
    d.apply_yaml("b", &web("b"));
    let (uid_a, ip_a) = running_ip(&d, "a");
    let (uid_b, ip_b) = running_ip(&d, "b");
    assert!(
        cidr.contains(ip_a) && cidr.contains(ip_b),
        "{ip_a} {ip_b} in {cidr}"
    );
    assert_ne!(ip_a, ip_b);
    assert_ne!(ip_a, cidr.gateway());

    // Pod to pod, both ways, through the bridge.
    let out = eventually(30, "a reaches b", || {
        let o = fetch(&d, "a", ip_b);
        o.status.success().then_some(o)
    });
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from b\n");
    let o = fetch(&d, "b", ip_a);
    assert_eq!(ok(&o), "hello from a\n");
    // The host reaches the pod through the bridge's gateway address.
    let o = Command::new("busybox")
        .args(["wget", "-q", "-O", "-"])
        .arg(format!("http://{ip_a}:8080/index.html"))
        .output()
        .unwrap();
    assert_eq!(ok(&o), "hello from a\n");
    // The pod's /etc/hosts names its own address.
    let hosts = ok(&d.cli(&["exec", "a", "--", "cat", "/etc/hosts"]));
    assert!(hosts.contains(&format!("{ip_a}\ta")), "{hosts}");

    // Egress plumbing: forwarding on, and the masquerade rule in the daemon's own table.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .unwrap()
            .trim(),
        "1"
    );
    let o = Command::new("nft")
        .args(["-j", "list", "table", "ip", &d.net.table])
        .output()
        .unwrap();
    let rules = ok(&o);
    assert!(rules.contains("masquerade"), "{rules}");

    // A restart keeps every address, and the pods still reach each other.
    d.stop();
    d.spawn();
    assert_eq!(running_ip(&d, "a").1, ip_a);
    assert_eq!(running_ip(&d, "b").1, ip_b);
    eventually(30, "a still reaches b", || {
        fetch(&d, "a", ip_b).status.success().then_some(())
    });
    // A new pod never gets an address in use.
    d.apply_yaml("c", &web("c"));
    let (uid_c, ip_c) = running_ip(&d, "c");
    assert!(ip_c != ip_a && ip_c != ip_b && cidr.contains(ip_c));

    // Deleting the pods removes their veths and frees their addresses.
    for uid in [&uid_a, &uid_b, &uid_c] {
        assert!(link_exists(&berth::network::host_veth_name(uid)));
    }
    ok(&d.cli(&["delete", "pod", "a", "b", "c", "--grace-period=1"]));
    eventually(60, "the pods to be gone", || {
        ["a", "b", "c"]
            .iter()
            .all(|n| get(&d, n).is_none())
            .then_some(())
    });
    eventually(20, "veths to be gone", || {
        [&uid_a, &uid_b, &uid_c]
            .iter()
            .all(|u| !link_exists(&berth::network::host_veth_name(u)))
            .then_some(())
    });
    let o = Command::new("ip")
        .args(["-o", "link", "show", "master", &d.net.bridge])
        .output()
        .unwrap();
    assert_eq!(ok(&o).trim(), "", "ports left on the bridge");
    // The allocations are in the store, and free. A stop may come between a veth's removal
    // and the release of its address: then the next start's orphan cleanup releases it.
    d.stop();
    let mut held = ipam(&d);
    if let Some(left) = held["pods"].as_object().filter(|m| !m.is_empty()) {
        let uids: Vec<String> = left.keys().cloned().collect();
        d.spawn();
        eventually(30, "the orphan cleanup of the held addresses", || {
            let log = d.log();
            uids.iter()
                .all(|u| {
                    log.lines().any(|l| {
                        l.contains("cleaned up after a pod") && l.contains(&format!("pod_uid={u}"))
                    })
                })
                .then_some(())
        });
        d.stop();
        held = ipam(&d);
    }
    assert!(
        held["pods"].as_object().is_some_and(|m| m.is_empty()),
        "{held}"
    );
    assert_eq!(held["cidr"], d.net.pod_cidr.as_str(), "{held}");
}

#[test]
fn a_pod_cidr_that_overlaps_a_host_route_stops_the_start() {
    // The first daemon's bridge routes its /24; a second daemon wanting it must refuse.
    let first = TestDaemon::start();
    let dir = tempfile::Builder::new()
        .prefix(common::TMP_PREFIX)
        .tempdir()
        .unwrap();
    let cgroup = dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "stateDir: {0}/state\nsocket: {0}/berth.sock\nlogDir: {0}/logs\nrunDir: {0}/run\n\
             cgroupParent: /{cgroup}\nbridgeName: btzzzzzz\nnftablesTable: berth_tzzzzzz\n\
             podCIDR: {1}\n",
            dir.path().display(),
            first.net.pod_cidr
        ),
    )
    .unwrap();
    let o = Command::new(common::berth_bin())
        .args(["daemon", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("podCIDR") && err.contains("overlaps the host route"),
        "{err}"
    );
    assert!(!link_exists("btzzzzzz"), "nothing made");

    // Pod and Service CIDRs that overlap each other are refused before anything runs.
    std::fs::write(
        &config,
        format!(
            "stateDir: {0}/state\nsocket: {0}/berth.sock\nrunDir: {0}/run\n\
             podCIDR: 10.96.0.0/12\nserviceCIDR: 10.96.0.0/16\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let o = Command::new(common::berth_bin())
        .args(["daemon", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("overlaps serviceCIDR"), "{err}");
}

#[test]
fn host_ports_reach_the_pod_from_loopback_and_the_host_ip_until_it_is_deleted() {
    let d = daemon();
    // A port of this daemon's own block: no other test daemon installs rules for it.
    let port = d.net.host_port(7);
    let yaml = format!(
        "{}    ports:\n    - containerPort: 8080\n      hostPort: {port}\n",
        web("hp")
    );
    d.apply_yaml("hp", &yaml);
    let p = eventually(60, "pod hp running", || {
        get(&d, "hp").filter(|p| p["status"]["containerStatuses"][0]["ready"] == true)
    });
    let host_ip = p["status"]["hostIP"].as_str().unwrap().to_string();
    let wget = |host: &str| {
        Command::new("busybox")
            .args(["wget", "-q", "-O", "-"])
            .arg(format!("http://{host}:{port}/index.html"))
            .output()
            .unwrap()
    };
    for host in ["127.0.0.1", host_ip.as_str()] {
        let o = eventually(20, &format!("{host}:{port} to answer"), || {
            let o = wget(host);
            o.status.success().then_some(o)
        });
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "hello from hp\n",
            "{host}"
        );
    }
    ok(&d.cli(&["delete", "pod", "hp", "--wait", "--timeout", "60"]));
    let table = || {
        let o = Command::new("nft")
            .args(["-j", "list", "table", "ip", &d.net.table])
            .output()
            .unwrap();
        ok(&o)
    };
    eventually(20, "the DNAT rules to go", || {
        (!table().contains("dnat")).then_some(())
    });
    assert!(!wget("127.0.0.1").status.success());
}

#[test]
fn host_network_pods_share_the_hosts_network() {
    let d = daemon();
    let port = d.net.host_port(5);
    d.apply_yaml(
        "hostnet",
        &format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: hostnet
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, 'echo hello from the host network > /tmp/index.html; exec httpd -f -p 127.0.0.1:{port} -h /tmp']
    readinessProbe:
      httpGet: {{host: 127.0.0.1, port: {port}, path: /index.html}}
      periodSeconds: 1
"
        ),
    );
    // Ready through its probe (run in the host's network namespace), with the host's address.
    let pod = eventually(60, "the hostNetwork pod ready", || {
        d.get_json(&["pod", "hostnet"])
            .filter(|p| p["status"]["containerStatuses"][0]["ready"] == true)
    });
    assert_eq!(pod["status"]["podIP"], pod["status"]["hostIP"], "{pod}");
    // Its server listens on the host's loopback.
    let body = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    assert!(body.contains("hello from the host network"), "{body}");
    // It sees the host's links (this daemon's bridge), and got no veth of its own.
    let links = ok(&d.cli(&["exec", "hostnet", "--", "ip", "-o", "link"]));
    assert!(links.contains(&d.net.bridge), "{links}");
    let o = Command::new("ip")
        .args(["-o", "link", "show", "master", &d.net.bridge])
        .output()
        .unwrap();
    assert_eq!(ok(&o).trim(), "", "a hostNetwork pod has no veth");
    ok(&d.cli(&["delete", "pod", "hostnet", "--wait"]));
    // Its sandbox went without taking the host's network namespace with it.
    assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    assert!(link_exists(&d.net.bridge));
}
