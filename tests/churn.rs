//! Pod network churn (root): 200 pods come and go; every pod gets its own address while it
//! lives, and afterwards nothing is left — no veth, no address held, no hostPort rule, no
//! network namespace, no mount.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{TestDaemon, eventually, ok};

const PODS: usize = 200;
/// Every tenth pod publishes a host port (its DNAT rule must go with it).
const HOST_PORT_BASE: usize = 18300;

fn manifest() -> String {
    let mut docs = Vec::new();
    for i in 0..PODS {
        let ports = if i % 10 == 0 {
            format!(
                "\n    ports: [{{containerPort: 8080, hostPort: {}}}]",
                HOST_PORT_BASE + i / 10
            )
        } else {
            String::new()
        };
        docs.push(format!(
            "apiVersion: v1
kind: Pod
metadata: {{name: churn-{i}, labels: {{app: churn}}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sleep, '3600']{ports}
"
        ));
    }
    docs.join("---\n")
}

fn nft_table(table: &str) -> String {
    let o = Command::new("nft")
        .args(["list", "table", "ip", table])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn bridge_ports(bridge: &str) -> usize {
    let o = Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .expect("ip");
    ok(&o).lines().count()
}

#[test]
fn two_hundred_pods_come_and_go_and_leave_nothing() {
    // More pods than Kubernetes' default 110 per node.
    let mut d = TestDaemon::start_with_config("maxPods: 250\n");
    d.import_busybox();
    let path = d.write("churn.yaml", &manifest());
    ok(&d.cli(&["apply", "-f", path.to_str().unwrap()]));

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    let ips = loop {
        let o = d.cli(&["get", "pods", "-l", "app=churn", "-o", "json"]);
        let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let ips: Vec<String> = items
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_string))
            .collect();
        if ips.len() == PODS {
            break ips;
        }
        if std::time::Instant::now() > deadline {
            let mut states = std::collections::BTreeMap::<String, usize>::new();
            for p in &items {
                let waiting = p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                    .as_str()
                    .unwrap_or("-");
                let key = format!(
                    "{} {} ip={}",
                    p["status"]["phase"],
                    waiting,
                    p["status"]["podIP"].is_string()
                );
                *states.entry(key).or_default() += 1;
            }
            let o = d.cli(&["get", "events", "-o", "name"]);
            panic!(
                "not all {PODS} pods run with addresses: {states:?}\nlog tail:\n{}\n{}",
                d.log()
                    .lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .join("\n"),
                common::stdout(&o).lines().count()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    let unique: BTreeSet<&String> = ips.iter().collect();
    assert_eq!(unique.len(), PODS, "every pod has its own address");
    assert_eq!(bridge_ports(&d.net.bridge), PODS, "one veth per pod");
    let rules = nft_table(&d.net.table);
    for i in 0..PODS / 10 {
        assert!(
            rules.contains(&format!("dport {}", HOST_PORT_BASE + i)),
            "no hostPort rule for {}:\n{rules}",
            HOST_PORT_BASE + i
        );
    }

    ok(&d.cli(&["delete", "pods", "-l", "app=churn"]));
    eventually(
        600,
        "the pods, veths, sandboxes and hostPort rules to go",
        || {
            let o = d.cli(&["get", "pods", "-o", "name"]);
            let sandboxes =
                std::fs::read_dir(d.state_dir().parent().unwrap().join("run/sandboxes"))
                    .map(|mut e| e.next().is_none())
                    .unwrap_or(true);
            (o.status.success()
            && common::stdout(&o).trim().is_empty()
            && bridge_ports(&d.net.bridge) == 0
            && sandboxes
            // The network is freed after the sandbox: its rules go last.
            && !nft_table(&d.net.table).contains("dnat"))
            .then_some(())
        },
    );
    let dir = d.state_dir().parent().unwrap().display().to_string();
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&dir))
        .map(str::to_string)
        .collect();
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");

    // No address is held: a stop may cut the last releases short, and the next start's
    // orphan cleanup frees those; then the store holds none.
    d.stop();
    d.spawn();
    d.stop();
    let store = berth::store::Store::open(&d.state_dir().join("state"), Default::default())
        .expect("open the stopped daemon's store");
    let held: serde_json::Value = store
        .local_get("ipam")
        .expect("read")
        .and_then(|b| serde_json::from_slice(&b).ok())
        .expect("allocations recorded");
    assert!(
        held["pods"].as_object().is_some_and(|m| m.is_empty()),
        "addresses still held: {held}"
    );
}
