//! The Deployment controller with real pods: a rollout to a new template replaces every
//! pod through a new ReplicaSet within maxSurge/maxUnavailable, and the status reads as
//! `kubectl rollout status` expects.

mod common;

use berth::api::registry::by_kind;
use berth::api::watch::EventType;
use berth::client::ListOptions;
use common::{TestDaemon, eventually, ok, runtime, stdout};
use serde_json::Value;

fn deployment(cmd: &str, replicas: u32, strategy: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: {replicas}
{strategy}  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {{name: main, image: berth.local/busybox:latest, imagePullPolicy: Never, command: [sh, -c, '{cmd}']}}
"
    )
}

const ONE_AND_ONE: &str = "  strategy:\n    rollingUpdate: {maxSurge: 1, maxUnavailable: 1}\n";

fn json(d: &TestDaemon, args: &[&str]) -> Value {
    let o = d.cli(args);
    serde_json::from_slice(&o.stdout).unwrap_or_default()
}

/// The Deployment `web` has observed `generation` and all `replicas` are updated and
/// available.
fn complete(d: &TestDaemon, generation: i64, replicas: i64) -> Option<Value> {
    let v = json(d, &["get", "deploy", "web", "-o", "json"]);
    let s = &v["status"];
    (s["observedGeneration"].as_i64() >= Some(generation)
        && s["updatedReplicas"] == replicas
        && s["availableReplicas"] == replicas
        && s["replicas"] == replicas)
        .then_some(v)
}

/// What a watcher of the Deployment's pods saw during a rollout: the most pods that
/// existed (not terminating) and the fewest that were available, over every state the
/// store went through.
struct Extremes {
    most_pods: usize,
    fewest_available: usize,
    states: usize,
}

fn available(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Watches the pods labelled `app=web` from the current state until `done` is set, and
/// records the extremes after every event.
fn watch_pods(
    d: &TestDaemon,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Extremes> {
    use std::collections::BTreeMap;
    use std::sync::atomic::Ordering;
    let client = d.client();
    std::thread::spawn(move || {
        let rt = runtime();
        let pods = by_kind("v1", "Pod").expect("pod kind");
        let opts = ListOptions {
            label_selector: Some("app=web".into()),
            ..Default::default()
        };
        let list = rt
            .block_on(client.list(pods, Some("default"), &opts))
            .expect("list pods");
        let mut now: BTreeMap<String, Value> = list
            .items
            .into_iter()
            .map(|p| (p["metadata"]["name"].as_str().unwrap_or("").to_string(), p))
            .collect();
        let measure = |now: &BTreeMap<String, Value>| {
            (
                now.values()
                    .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                    .count(),
                now.values().filter(|p| available(p)).count(),
            )
        };
        let (live, avail) = measure(&now);
        let mut x = Extremes {
            most_pods: live,
            fewest_available: avail,
            states: 1,
        };
        let mut watch = rt
            .block_on(client.watch(pods, Some("default"), &opts, &list.resource_version))
            .expect("watch pods");
        while !done.load(Ordering::SeqCst) {
            let next = rt.block_on(async {
                tokio::time::timeout(std::time::Duration::from_millis(200), watch.next()).await
            });
            let Ok(Some(ev)) = next else { continue };
            let ev = ev.expect("watch event");
            let name = ev.object["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if ev.kind == EventType::Deleted {
                now.remove(&name);
            } else {
                now.insert(name, ev.object);
            }
            let (live, avail) = measure(&now);
            x.most_pods = x.most_pods.max(live);
            x.fewest_available = x.fewest_available.min(avail);
            x.states += 1;
        }
        x
    })
}

/// Rolls a 4-replica Deployment from v1 to v2 under `strategy` while a watcher checks
/// every intermediate state against replicas + maxSurge and replicas - maxUnavailable.
fn roll_within_bounds(strategy: &str, surge: usize, unavailable: usize) -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    let f = d.write("v1.yaml", &deployment("echo v1; sleep 3600", 4, strategy));
    ok(&d.cli(&["apply", "-f", f.to_str().unwrap()]));
    eventually(120, "four available replicas", || complete(&d, 1, 4));

    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = watch_pods(&d, done.clone());
    let f = d.write("v2.yaml", &deployment("echo v2; sleep 3600", 4, strategy));
    ok(&d.cli(&["apply", "-f", f.to_str().unwrap()]));
    let first_rs = json(&d, &["get", "rs", "-o", "json"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1")
        .map(|r| r["metadata"]["name"].as_str().unwrap().to_string())
        .expect("revision 1's ReplicaSet");
    eventually(180, "the rollout to finish", || {
        complete(&d, 2, 4)?;
        let old = json(&d, &["get", "rs", first_rs.as_str(), "-o", "json"]);
        let pods = json(&d, &["get", "pods", "-l", "app=web", "-o", "json"]);
        (old["spec"]["replicas"] == 0
            && old["status"]["replicas"].as_i64().unwrap_or(0) == 0
            && pods["items"].as_array().map(Vec::len) == Some(4))
        .then_some(())
    });
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let x = watcher.join().expect("watcher");
    eprintln!(
        "{} states; at most {} pods, at least {} available",
        x.states, x.most_pods, x.fewest_available
    );
    assert!(x.states > 8, "the watcher saw only {} states", x.states);
    assert!(
        x.most_pods <= 4 + surge,
        "{} pods at once for 4 replicas with maxSurge {surge}",
        x.most_pods
    );
    assert!(
        x.fewest_available >= 4 - unavailable,
        "only {} available pods at one moment for 4 replicas with maxUnavailable {unavailable}",
        x.fewest_available
    );
    d
}

#[test]
fn a_rolling_update_with_the_default_25_percent_stays_within_its_bounds() {
    // 25 % of 4: maxSurge rounds up to 1, maxUnavailable rounds down to 1.
    roll_within_bounds("", 1, 1);
}

#[test]
fn a_rolling_update_with_surge_1_and_unavailable_1_stays_within_its_bounds() {
    let d = roll_within_bounds(ONE_AND_ONE, 1, 1);
    let v = json(&d, &["get", "deploy", "web", "-o", "json"]);
    let conds = v["status"]["conditions"].as_array().unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c["type"] == "Available" && c["status"] == "True"),
        "{v}"
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
    assert_eq!(live.len(), 4, "{pods}");
    let pod = live[0]["metadata"]["name"].as_str().unwrap().to_string();
    let o = d.cli(&["logs", &pod]);
    assert_eq!(stdout(&o), "v2\n", "{pod}: {pods}");
}

/// Kubernetes' three propagation policies on a Deployment → ReplicaSet → Pods chain:
/// foreground removes the Deployment only after its pods and ReplicaSet are gone,
/// background removes it at once and its dependents after, orphan leaves the ReplicaSet
/// and pods running without the owner reference.
#[test]
fn deleting_a_deployment_with_each_propagation_policy() {
    let d = TestDaemon::start();
    d.import_busybox();
    let names = ["fg", "bg", "orphan"];
    for name in names {
        let y = deployment("sleep 3600", 2, "")
            .replace("name: web", &format!("name: {name}"))
            .replace("app: web", &format!("app: {name}"));
        let f = d.write(&format!("{name}.yaml"), &y);
        ok(&d.cli(&["apply", "-f", f.to_str().unwrap()]));
    }
    let pods_of = |name: &str| -> Vec<Value> {
        json(
            &d,
            &["get", "pods", "-l", &format!("app={name}"), "-o", "json"],
        )["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let rs_of = |name: &str| -> Vec<Value> {
        json(
            &d,
            &["get", "rs", "-l", &format!("app={name}"), "-o", "json"],
        )["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let exists = |kind: &str, name: &str| {
        let o = d.cli(&["get", kind, name, "-o", "name"]);
        o.status.success()
    };
    eventually(90, "two running pods in each deployment", || {
        names
            .iter()
            .all(|n| {
                let p = pods_of(n);
                p.len() == 2 && p.iter().all(|p| p["status"]["phase"] == "Running")
            })
            .then_some(())
    });

    // Foreground: while the Deployment exists it carries the foregroundDeletion finalizer;
    // when it is gone, so are its ReplicaSet and every pod.
    ok(&d.cli(&[
        "delete",
        "deploy",
        "fg",
        "--cascade",
        "foreground",
        "--wait=false",
    ]));
    let v = json(&d, &["get", "deploy", "fg", "-o", "json"]);
    if !v.is_null() {
        assert!(!v["metadata"]["deletionTimestamp"].is_null(), "{v}");
        assert_eq!(v["metadata"]["finalizers"][0], "foregroundDeletion", "{v}");
    }
    eventually(90, "the foreground deletion to finish", || {
        (!exists("deploy", "fg")).then_some(())
    });
    assert!(
        pods_of("fg").is_empty() && rs_of("fg").is_empty(),
        "the Deployment went before its dependents: pods {:?}, rs {:?}",
        pods_of("fg"),
        rs_of("fg")
    );

    // Background: the Deployment goes at once, its dependents after.
    ok(&d.cli(&["delete", "deploy", "bg", "--cascade", "background"]));
    assert!(!exists("deploy", "bg"));
    eventually(90, "the background deletion of the dependents", || {
        (pods_of("bg").is_empty() && rs_of("bg").is_empty()).then_some(())
    });

    // Orphan: the ReplicaSet and its pods stay, no longer owned.
    // The orphan finalizer holds the Deployment until the references are gone.
    ok(&d.cli(&["delete", "deploy", "orphan", "--cascade", "orphan"]));
    eventually(30, "the orphaning Deployment to go", || {
        (!exists("deploy", "orphan")).then_some(())
    });
    let rs = eventually(30, "the orphaned ReplicaSet without an owner", || {
        let rs = rs_of("orphan");
        (rs.len() == 1 && rs[0]["metadata"]["ownerReferences"].is_null()).then_some(rs)
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    let pods = pods_of("orphan");
    assert_eq!(pods.len(), 2, "the orphaned pods stay: {pods:?}");
    assert!(
        pods.iter().all(|p| p["status"]["phase"] == "Running"
            && p["metadata"]["ownerReferences"][0]["name"] == rs[0]["metadata"]["name"]),
        "{pods:?}"
    );
}
