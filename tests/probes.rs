//! Container probes for real (root): the kubelet's probe tasks against busybox `httpd` and
//! exec checks in real containers. A failing liveness probe restarts the container, a
//! failing readiness probe only takes the pod out of Ready, a startup probe holds the
//! liveness probe back from a slow starter, and a failed startup probe kills the container.
//! Periods are 1 s so each test takes seconds; nothing here asserts how long anything took.

mod common;

use common::{TestDaemon, eventually, ok};
use serde_json::Value;

fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

/// A pod with one busybox container `web` running `script`, with a named port `http`
/// (8080) and the given probe lines (indented for the container).
fn pod(name: &str, policy: &str, script: &str, probes: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {policy}
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, {script:?}]
    ports:
    - name: http
      containerPort: 8080
{probes}"
    )
}

/// Serves /www on 8080 with a `healthz` file.
const SERVE: &str = "mkdir -p /www && echo ok > /www/healthz && exec httpd -f -p 8080 -h /www";

fn apply(d: &TestDaemon, name: &str, yaml: &str) {
    let path = d.write(&format!("{name}.yaml"), yaml);
    ok(&d.cli(&["apply", "-f", path.to_str().unwrap()]));
}

fn get(d: &TestDaemon, name: &str) -> Option<Value> {
    let o = d.cli(&["get", "pod", name, "-o", "json"]);
    o.status
        .success()
        .then(|| serde_json::from_slice(&o.stdout).unwrap())
}

fn container(p: &Value) -> &Value {
    &p["status"]["containerStatuses"][0]
}

fn condition<'a>(p: &'a Value, ty: &str) -> &'a Value {
    p["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == ty))
        .unwrap_or(&Value::Null)
}

fn running(p: &Value) -> bool {
    container(p)["state"]["running"].is_object()
}

/// The pod's events as `(reason, message, count)`.
fn events(d: &TestDaemon, pod: &str) -> Vec<(String, String, u64)> {
    let list: Value = serde_json::from_str(&ok(&d.cli(&["get", "events", "-o", "json"]))).unwrap();
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["involvedObject"]["name"] == pod)
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or_default().to_string(),
                e["message"].as_str().unwrap_or_default().to_string(),
                e["count"].as_u64().unwrap_or(1),
            )
        })
        .collect()
}

fn exec(d: &TestDaemon, pod: &str, script: &str) {
    ok(&d.cli(&["exec", pod, "--", "sh", "-c", script]));
}

#[test]
fn a_failing_liveness_probe_restarts_the_container() {
    let d = daemon();
    let probes = "    livenessProbe:
      httpGet: {path: /healthz, port: http}
      periodSeconds: 1
      failureThreshold: 2
      terminationGracePeriodSeconds: 1
";
    apply(&d, "live", &pod("live", "Always", SERVE, probes));
    // Liveness does not gate readiness: the pod is Ready once it runs.
    let p = eventually(60, "pod live to be ready", || {
        get(&d, "live").filter(|p| condition(p, "Ready")["status"] == "True")
    });
    assert_eq!(container(&p)["started"], true, "{p}");
    assert_eq!(container(&p)["restartCount"], 0, "{p}");

    // The endpoint answers 404 from now on (the next run serves it again).
    exec(&d, "live", "rm /www/healthz");
    let p = eventually(60, "a restart after the liveness failure", || {
        get(&d, "live").filter(|p| container(p)["restartCount"].as_u64() >= Some(1))
    });
    let last = &container(&p)["lastState"]["terminated"];
    assert!(last["exitCode"].as_i64().is_some_and(|c| c != 0), "{p}");
    assert_eq!(last["reason"], "Error", "{p}");

    let evs = events(&d, "live");
    let unhealthy: Vec<_> = evs
        .iter()
        .filter(|e| e.0 == "Unhealthy" && e.1.starts_with("Liveness probe failed:"))
        .collect();
    assert_eq!(
        unhealthy.len(),
        1,
        "repeated failures are one event with a count: {evs:?}"
    );
    assert_eq!(
        unhealthy[0].1,
        "Liveness probe failed: HTTP probe failed with statuscode: 404"
    );
    assert!(unhealthy[0].2 >= 2, "{evs:?}");
    assert!(
        evs.iter()
            .any(|e| e.0 == "Killing"
                && e.1 == "Container web failed liveness probe, will be restarted"),
        "{evs:?}"
    );

    // The new run is healthy and stays up.
    eventually(60, "the restarted container to be ready", || {
        get(&d, "live").filter(|p| running(p) && container(p)["ready"] == true)
    });
}

#[test]
fn a_failing_readiness_probe_unreadies_the_pod_without_a_restart() {
    let d = daemon();
    // Readiness by exec, liveness by tcpSocket on the named port (it keeps passing).
    let probes = "    readinessProbe:
      exec: {command: [cat, /tmp/ready]}
      periodSeconds: 1
      failureThreshold: 1
    livenessProbe:
      tcpSocket: {port: http}
      periodSeconds: 1
      failureThreshold: 1
";
    let script = format!("touch /tmp/ready && {SERVE}");
    apply(&d, "ready", &pod("ready", "Always", &script, probes));
    let p = eventually(60, "pod ready to be ready", || {
        get(&d, "ready").filter(|p| condition(p, "Ready")["status"] == "True")
    });
    assert_eq!(condition(&p, "ContainersReady")["status"], "True", "{p}");
    assert_eq!(container(&p)["ready"], true, "{p}");

    exec(&d, "ready", "rm /tmp/ready");
    let p = eventually(60, "pod ready to become unready", || {
        get(&d, "ready").filter(|p| condition(p, "Ready")["status"] == "False")
    });
    for ty in ["Ready", "ContainersReady"] {
        let c = condition(&p, ty);
        assert_eq!(c["reason"], "ContainersNotReady", "{p}");
        assert_eq!(c["message"], "containers with unready status: [web]", "{p}");
    }
    assert_eq!(container(&p)["ready"], false, "{p}");
    assert_eq!(container(&p)["started"], true, "{p}");
    assert!(running(&p), "{p}");
    assert_eq!(container(&p)["restartCount"], 0, "{p}");
    let evs = events(&d, "ready");
    assert!(
        evs.iter().any(|e| e.0 == "Unhealthy"
            && e.1
                .starts_with("Readiness probe failed: cat: can't open '/tmp/ready'")),
        "{evs:?}"
    );

    exec(&d, "ready", "touch /tmp/ready");
    let p = eventually(60, "pod ready to be ready again", || {
        get(&d, "ready").filter(|p| condition(p, "Ready")["status"] == "True")
    });
    assert_eq!(container(&p)["ready"], true, "{p}");
    assert_eq!(container(&p)["restartCount"], 0, "{p}");
    let evs = events(&d, "ready");
    assert!(
        !evs.iter().any(|e| e.0 == "Killing"),
        "a readiness failure never kills: {evs:?}"
    );
}

#[test]
fn a_startup_probe_holds_liveness_back_from_a_slow_starter() {
    let d = daemon();
    // Without the startup probe, this liveness probe would kill it within a second or two.
    let probes = "    startupProbe:
      tcpSocket: {port: http}
      periodSeconds: 1
      failureThreshold: 15
    livenessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
      failureThreshold: 1
";
    let script = format!("sleep 8 && {SERVE}");
    apply(&d, "slow", &pod("slow", "Always", &script, probes));
    let p = eventually(60, "the slow starter to run, not started yet", || {
        get(&d, "slow").filter(running)
    });
    assert_eq!(container(&p)["started"], false, "{p}");
    assert_eq!(container(&p)["ready"], false, "{p}");

    let p = eventually(60, "the slow starter to be ready", || {
        get(&d, "slow").filter(|p| condition(p, "Ready")["status"] == "True")
    });
    assert_eq!(container(&p)["started"], true, "{p}");
    assert_eq!(container(&p)["restartCount"], 0, "{p}");
    let evs = events(&d, "slow");
    assert!(
        evs.iter()
            .any(|e| e.0 == "Unhealthy" && e.1.starts_with("Startup probe failed: dial tcp")),
        "{evs:?}"
    );
    assert!(!evs.iter().any(|e| e.0 == "Killing"), "{evs:?}");
}

#[test]
fn a_failed_startup_probe_kills_the_container() {
    let d = daemon();
    let probes = "    startupProbe:
      exec: {command: ['false']}
      periodSeconds: 1
      failureThreshold: 2
    readinessProbe:
      exec: {command: ['true']}
      periodSeconds: 1
";
    apply(&d, "never", &pod("never", "Never", "sleep 3600", probes));
    let p = eventually(60, "pod never to fail", || {
        get(&d, "never").filter(|p| p["status"]["phase"] == "Failed")
    });
    let c = container(&p);
    assert_eq!(c["restartCount"], 0, "{p}");
    assert_eq!(c["started"], false, "{p}");
    assert!(
        c["state"]["terminated"]["exitCode"]
            .as_i64()
            .is_some_and(|c| c != 0),
        "{p}"
    );
    let evs = events(&d, "never");
    assert!(
        evs.iter()
            .any(|e| e.0 == "Unhealthy" && e.1 == "Startup probe failed: "),
        "{evs:?}"
    );
    // restartPolicy Never: killed, not restarted.
    assert!(
        evs.iter()
            .any(|e| e.0 == "Killing" && e.1 == "Container web failed startup probe"),
        "{evs:?}"
    );
    assert!(
        !evs.iter().any(|e| e.1.starts_with("Readiness probe")),
        "readiness waits for the start: {evs:?}"
    );
}

#[test]
fn probes_carry_on_after_a_daemon_restart() {
    let mut d = daemon();
    // One file gates both: were the startup probe run again after the restart, its
    // failure would kill the container.
    let probes = "    startupProbe:
      exec: {command: [cat, /tmp/ready]}
      periodSeconds: 1
      failureThreshold: 1
    readinessProbe:
      exec: {command: [cat, /tmp/ready]}
      periodSeconds: 1
      failureThreshold: 1
";
    let script = "touch /tmp/ready && exec sleep 3600";
    apply(&d, "adopted", &pod("adopted", "Always", script, probes));
    let before = eventually(60, "pod adopted to be ready", || {
        get(&d, "adopted").filter(|p| condition(p, "Ready")["status"] == "True")
    });

    d.kill9();
    // While the daemon is down, the gate closes.
    let id = container(&before)["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("berth://")
        .to_string();
    let file = d
        .state_dir()
        .join("rootfs")
        .join(&id)
        .join("rootfs/tmp/ready");
    std::fs::remove_file(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    d.spawn();
    let p = eventually(60, "the readiness probe to run again and fail", || {
        let failed = events(&d, "adopted")
            .iter()
            .any(|e| e.0 == "Unhealthy" && e.1.starts_with("Readiness probe failed:"));
        get(&d, "adopted").filter(|p| failed && condition(p, "Ready")["status"] == "False")
    });
    assert_eq!(container(&p)["started"], true, "{p}");
    assert_eq!(container(&p)["restartCount"], 0, "{p}");
    assert_eq!(
        container(&p)["containerID"],
        container(&before)["containerID"],
        "{p}"
    );
    let evs = events(&d, "adopted");
    assert!(!evs.iter().any(|e| e.0 == "Killing"), "{evs:?}");
}
