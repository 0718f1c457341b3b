//! Pods for real (root): real daemons run the busybox test image through the kubelet,
//! `berth shim` and libcontainer. Exit codes and restart policies, the CrashLoopBackOff
//! schedule, OOM kills, cgroup limits, init containers, graceful termination, security
//! defaults seen from inside a container, env from fieldRef, and re-adoption after the
//! daemon is killed with SIGKILL.

mod common;

use std::time::{Duration, Instant};

use common::{TestDaemon, eventually, stdout};
use serde_json::Value;

fn daemon(extra: &str) -> TestDaemon {
    let d = TestDaemon::start_with_config(extra);
    d.import_busybox();
    d
}

/// A pod of the busybox image running `script` with `sh -c`.
fn pod(name: &str, policy: &str, script: &str, extra_container: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {policy}
{extra_spec}  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, {script:?}]
{extra_container}"
    )
}

fn apply(d: &TestDaemon, name: &str, yaml: &str) {
    let path = d.write(&format!("{name}.yaml"), yaml);
    let o = d.cli(&["apply", "-f", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn get(d: &TestDaemon, name: &str) -> Option<Value> {
    let o = d.cli(&["get", "pod", name, "-o", "json"]);
    o.status
        .success()
        .then(|| serde_json::from_slice(&o.stdout).unwrap())
}

fn status_of(p: &Value) -> &Value {
    &p["status"]["containerStatuses"][0]
}

fn wait_phase(d: &TestDaemon, name: &str, phase: &str) -> Value {
    eventually(60, &format!("pod {name} to be {phase}"), || {
        get(d, name).filter(|p| p["status"]["phase"] == phase)
    })
}

fn logs(d: &TestDaemon, args: &[&str]) -> String {
    let mut all = vec!["logs"];
    all.extend_from_slice(args);
    let o = d.cli(&all);
    assert!(
        o.status.success(),
        "logs: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

#[test]
fn exit_codes_and_restart_policies() {
    let d = daemon("");
    apply(
        &d,
        "never",
        &pod("never", "Never", "echo bye; exit 3", "", ""),
    );
    apply(&d, "done", &pod("done", "OnFailure", "exit 0", "", ""));
    apply(&d, "again", &pod("again", "OnFailure", "exit 1", "", ""));
    apply(&d, "always", &pod("always", "Always", "exit 0", "", ""));

    let p = wait_phase(&d, "never", "Failed");
    let t = &status_of(&p)["state"]["terminated"];
    assert_eq!(t["exitCode"], 3, "{p}");
    assert_eq!(t["reason"], "Error");
    assert_eq!(status_of(&p)["restartCount"], 0);
    assert!(t["containerID"].as_str().unwrap().starts_with("berth://"));
    assert_eq!(logs(&d, &["never"]), "bye\n");

    let p = wait_phase(&d, "done", "Succeeded");
    assert_eq!(status_of(&p)["state"]["terminated"]["reason"], "Completed");
    assert_eq!(status_of(&p)["restartCount"], 0);
    let ready = p["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready["reason"], "PodCompleted", "{ready}");

    for name in ["again", "always"] {
        let p = eventually(60, "a restart", || {
            get(&d, name).filter(|p| status_of(p)["restartCount"].as_u64() >= Some(1))
        });
        assert_eq!(p["status"]["phase"], "Running", "{p}");
        let last = &status_of(&p)["lastState"]["terminated"];
        assert!(last["exitCode"].is_number(), "{p}");
    }
}

#[test]
fn crash_loop_back_off_doubles_from_the_base_delay() {
    let d = daemon("crashLoopBackOffBaseMillis: 1000\n");
    apply(&d, "crash", &pod("crash", "Always", "exit 1", "", ""));
    // Record when each restart count first appears.
    let start = Instant::now();
    let mut seen: Vec<(u64, Duration)> = Vec::new();
    let mut saw_backoff = false;
    while seen.last().map(|s| s.0) < Some(5) && start.elapsed() < Duration::from_secs(90) {
        if let Some(p) = get(&d, "crash") {
            let count = status_of(&p)["restartCount"].as_u64().unwrap_or(0);
            if status_of(&p)["state"]["waiting"]["reason"] == "CrashLoopBackOff" {
                saw_backoff = true;
                let msg = status_of(&p)["state"]["waiting"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                assert!(
                    msg.starts_with("back-off ")
                        && msg.contains("restarting failed container=main pod=crash_default("),
                    "{msg}"
                );
            }
            if seen.last().map(|s| s.0) != Some(count) && count > 0 {
                seen.push((count, start.elapsed()));
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(saw_backoff, "the pod never showed CrashLoopBackOff");
    let at = |n: u64| {
        seen.iter()
            .find(|s| s.0 == n)
            .map(|s| s.1)
            .unwrap_or_else(|| panic!("restart {n} not seen: {seen:?}"))
    };
    // Kubernetes' schedule: the first restart at once, then 1 s, 2 s, 4 s (base 1 s).
    for (n, expected) in [(2u64, 1.0f64), (3, 2.0), (4, 4.0)] {
        let gap = (at(n) - at(n - 1)).as_secs_f64();
        assert!(
            gap >= expected * 0.8 && gap <= expected + 2.5,
            "restart {n} came {gap:.2}s after the previous one, expected about {expected}s: {seen:?}"
        );
    }
    let o = d.cli(&["events", "--for", "pod/crash"]);
    assert!(
        stdout(&o).contains("Back-off restarting failed container main in pod crash_default("),
        "{}",
        stdout(&o)
    );
}

#[test]
fn an_oom_kill_is_reported_and_limits_reach_the_cgroup() {
    let d = daemon("podPidsLimit: 64\n");
    let limits = "    resources:\n      limits: {memory: 32Mi, cpu: 500m}\n";
    apply(
        &d,
        "hog",
        &pod(
            "hog",
            "Never",
            "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done",
            limits,
            "",
        ),
    );
    apply(&d, "calm", &pod("calm", "Never", "sleep 3600", limits, ""));
    let p = wait_phase(&d, "hog", "Failed");
    let t = &status_of(&p)["state"]["terminated"];
    assert_eq!(t["reason"], "OOMKilled", "{p}");
    assert_eq!(t["exitCode"], 137, "{p}");

    let p = wait_phase(&d, "calm", "Running");
    assert_eq!(p["status"]["qosClass"], "Guaranteed");
    let id = status_of(&p)["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("berth://")
        .to_string();
    let uid = p["metadata"]["uid"].as_str().unwrap();
    let cg = |controller: &str, file: &str| {
        let path = format!(
            "/sys/fs/cgroup/{controller}/{}/pod{uid}/{id}/{file}",
            d.cgroup_parent()
        );
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .trim()
            .to_string()
    };
    assert_eq!(
        cg("memory", "memory.limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    assert_eq!(cg("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(cg("cpu", "cpu.shares"), "512");
    let pod_pids = format!(
        "/sys/fs/cgroup/pids/{}/pod{uid}/pids.max",
        d.cgroup_parent()
    );
    assert_eq!(
        std::fs::read_to_string(&pod_pids).unwrap().trim(),
        "64",
        "{pod_pids}"
    );
}

#[test]
fn init_containers_run_in_order_before_the_app() {
    let d = daemon("");
    let yaml = "apiVersion: v1
kind: Pod
metadata: {name: init}
spec:
  volumes: [{name: work, emptyDir: {}}]
  initContainers:
  - {name: first, image: berth.local/busybox:latest, imagePullPolicy: Never, command: [sh, -c, 'echo one >> /work/order'], volumeMounts: [{name: work, mountPath: /work}]}
  - {name: second, image: berth.local/busybox:latest, imagePullPolicy: Never, command: [sh, -c, 'echo two >> /work/order'], volumeMounts: [{name: work, mountPath: /work}]}
  containers:
  - {name: main, image: berth.local/busybox:latest, imagePullPolicy: Never, command: [sh, -c, 'cat /work/order; sleep 3600'], volumeMounts: [{name: work, mountPath: /work}]}
";
    apply(&d, "init", yaml);
    let p = wait_phase(&d, "init", "Running");
    let inits = p["status"]["initContainerStatuses"].as_array().unwrap();
    assert_eq!(inits.len(), 2);
    for s in inits {
        assert_eq!(s["state"]["terminated"]["reason"], "Completed", "{p}");
    }
    eventually(20, "the app's output", || {
        (logs(&d, &["init", "-c", "main"]) == "one\ntwo\n").then_some(())
    });
}

#[test]
fn termination_honours_sigterm_handlers_and_the_grace_period() {
    let d = daemon("");
    apply(
        &d,
        "polite",
        &pod(
            "polite",
            "Always",
            "trap 'echo got TERM; exit 0' TERM; echo ready; while true; do sleep 0.1; done",
            "",
            "  terminationGracePeriodSeconds: 30\n",
        ),
    );
    apply(
        &d,
        "stubborn",
        &pod(
            "stubborn",
            "Always",
            "trap '' TERM; echo ready; while true; do sleep 0.1; done",
            "",
            "  terminationGracePeriodSeconds: 2\n",
        ),
    );
    for name in ["polite", "stubborn"] {
        wait_phase(&d, name, "Running");
        eventually(20, "the trap to be set", || {
            (logs(&d, &[name]) == "ready\n").then_some(())
        });
    }
    let client = d.client();
    let r = common::runtime();
    let rt = berth::api::registry::by_kind("v1", "Pod").unwrap();
    // The DELETED event carries the pod's last status: the containers' exits.
    let last_state = |name: &'static str| {
        let client = client.clone();
        let d = &d;
        r.block_on(async move {
            let mut w = client
                .watch(rt, Some("default"), &Default::default(), "")
                .await
                .unwrap();
            let started = Instant::now();
            let o = d.cli(&["delete", "pod", name]);
            assert!(o.status.success());
            loop {
                let ev = tokio::time::timeout(Duration::from_secs(60), w.next())
                    .await
                    .expect("an event")
                    .expect("a stream")
                    .unwrap();
                if ev.object["metadata"]["name"] == name
                    && ev.kind == berth::api::watch::EventType::Deleted
                {
                    return (ev.object, started.elapsed());
                }
            }
        })
    };
    let (pod, took) = last_state("stubborn");
    let t = &status_of(&pod)["state"]["terminated"];
    assert_eq!(t["exitCode"], 137, "killed after ignoring SIGTERM: {pod}");
    assert!(
        took >= Duration::from_millis(1900),
        "killed before its grace period ended: {took:?}"
    );
    let (pod, took) = last_state("polite");
    let t = &status_of(&pod)["state"]["terminated"];
    assert_eq!(t["exitCode"], 0, "its SIGTERM handler ran: {pod}");
    assert!(
        took < Duration::from_secs(25),
        "a pod that handles SIGTERM does not wait out its grace: {took:?}"
    );
}

#[test]
fn security_defaults_hold_inside_a_container() {
    let d = daemon("");
    let script = "grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; \
        echo kcore=$(wc -c < /proc/kcore 2>/dev/null || echo unreadable); \
        (echo 1 > /proc/sys/vm/drop_caches) 2>/dev/null && echo sys=writable || echo sys=readonly; \
        echo procs=$(ls /proc | grep -c '^[0-9]'); echo host=$(hostname); echo pid1=$(cat /proc/1/comm); \
        echo POD=$POD NS=$NS NODE=$NODE GREETING=$GREETING; sleep 3600";
    let env = "    env:
    - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: GREETING, value: hello-$(POD)}
";
    apply(&d, "secure", &pod("secure", "Always", script, env, ""));
    let p = wait_phase(&d, "secure", "Running");
    let out = eventually(20, "the report", || {
        let l = logs(&d, &["secure"]);
        l.contains("GREETING=").then_some(l)
    });
    // Docker's default capability set; seccomp in filter mode; no_new_privs.
    assert!(out.contains("CapEff:\t00000000a80425fb"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(
        out.contains("kcore=0") || out.contains("kcore=unreadable"),
        "{out}"
    );
    assert!(out.contains("sys=readonly"), "{out}");
    let procs: u32 = out
        .split("procs=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(procs <= 5, "the container sees host processes: {out}");
    assert!(out.contains("host=secure\n"), "{out}");
    assert!(out.contains("pid1=sh\n"), "{out}");
    let node = p["spec"]["nodeName"].as_str().unwrap();
    assert!(
        out.contains(&format!(
            "POD=secure NS=default NODE={node} GREETING=hello-secure"
        )),
        "{out}"
    );
}

#[test]
fn a_killed_daemon_readopts_its_containers_and_records_exits_it_missed() {
    let mut d = daemon("");
    for i in 0..10 {
        apply(
            &d,
            &format!("s{i}"),
            &pod(&format!("s{i}"), "Always", "sleep 3600", "", ""),
        );
    }
    apply(
        &d,
        "quitter",
        &pod(
            "quitter",
            "Never",
            "while [ ! -f /tmp/quit ]; do sleep 0.1; done; exit 7",
            "",
            "",
        ),
    );
    let mut ids = Vec::new();
    for i in 0..10 {
        let p = wait_phase(&d, &format!("s{i}"), "Running");
        ids.push(status_of(&p)["containerID"].as_str().unwrap().to_string());
    }
    let q = wait_phase(&d, "quitter", "Running");
    let qid = status_of(&q)["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("berth://")
        .to_string();

    d.kill9();
    // While the daemon is down, the quitter finishes: write its signal file into its rootfs.
    let flag = d
        .state_dir()
        .join("rootfs")
        .join(&qid)
        .join("rootfs/tmp/quit");
    std::fs::write(&flag, "").unwrap_or_else(|e| panic!("{}: {e}", flag.display()));
    std::thread::sleep(Duration::from_millis(800));
    d.spawn();

    let q = wait_phase(&d, "quitter", "Failed");
    assert_eq!(status_of(&q)["state"]["terminated"]["exitCode"], 7, "{q}");
    for (i, id) in ids.iter().enumerate() {
        let p = get(&d, &format!("s{i}")).unwrap();
        assert_eq!(p["status"]["phase"], "Running");
        assert_eq!(
            status_of(&p)["containerID"].as_str().unwrap(),
            id,
            "s{i} was restarted"
        );
        assert_eq!(status_of(&p)["restartCount"], 0);
    }
    // One runtime container per pod: nothing was started twice.
    let runs = std::fs::read_dir(d.state_dir().join("containers"))
        .unwrap()
        .count();
    assert!(runs <= 11, "{runs} containers for 11 pods");
    let shims = std::process::Command::new("pgrep")
        .args(["-fc", &format!("shim run .*{}", d.state_dir().display())])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&shims).trim(),
        "10",
        "one shim per running container"
    );
}

/// The README's quick start applies assets/demo/workload.yaml: it must run.
#[test]
fn the_demo_workload_runs() {
    let d = daemon("");
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo/workload.yaml");
    let o = d.cli(&["apply", "-f", demo.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    eventually(60, "the ticker to tick", || {
        let o = d.cli(&["logs", "-n", "demo", "ticker"]);
        stdout(&o).contains("tick ").then_some(())
    });
    let o = d.cli(&["exec", "-n", "demo", "ticker", "--", "hostname"]);
    assert_eq!(stdout(&o).trim(), "ticker");
}

/// A daemon told to stop while a pod is in its grace period stops at once, without waiting
/// the grace out (the container goes on meanwhile); the next start finishes the pod's
/// termination.
#[test]
fn a_stopping_daemon_does_not_wait_for_terminating_pods() {
    let mut d = daemon("");
    // `sleep` as the container's init ignores SIGTERM: only the grace period ends it.
    apply(
        &d,
        "slow",
        &pod(
            "slow",
            "Always",
            "sleep 3600",
            "",
            "  terminationGracePeriodSeconds: 25\n",
        ),
    );
    wait_phase(&d, "slow", "Running");
    let o = d.cli(&["delete", "pod", "slow"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let status = d.stop().expect("the daemon ran");
    assert!(
        status.success(),
        "the daemon did not stop by itself on SIGTERM (the test stops it with SIGKILL after 20 s): {status}"
    );
    d.spawn();
    eventually(
        120,
        "the pod's termination finished after the restart",
        || get(&d, "slow").is_none().then_some(()),
    );
}
