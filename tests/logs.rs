//! `berth logs` and `berth top` end to end: a real daemon runs real pods from the busybox
//! test image; the CLI reads their logs (tail, timestamps, follow, previous) and their
//! CPU and memory usage.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestDaemon, eventually, ok, stderr, stdout};
use serde_json::Value;

const IMAGE: &str = "berth.local/busybox:latest";

/// Builds the busybox test image and imports it into the daemon through the image API.
fn import_busybox(d: &TestDaemon) {
    let tar = d.dir.path().join("busybox.tar");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/images/build-busybox.sh");
    let status = Command::new(script)
        .arg(&tar)
        .status()
        .expect("run build-busybox.sh");
    assert!(status.success(), "build-busybox.sh failed");
    let body = std::fs::read(&tar).expect("read image archive");
    let r = common::runtime();
    let (code, text) = r.block_on(async {
        let stream = tokio::net::UnixStream::connect(d.socket())
            .await
            .expect("connect");
        let (mut s, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .expect("handshake");
        tokio::spawn(conn);
        let req = hyper::Request::post("/apis/images.berth.dev/v1/images")
            .header("host", "berth")
            .header("content-type", "application/x-tar")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .expect("request");
        let resp = s.send_request(req).await.expect("send");
        let code = resp.status().as_u16();
        use http_body_util::BodyExt;
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (code, String::from_utf8_lossy(&body).into_owned())
    });
    assert!(code < 300, "image import failed ({code}): {text}");
}

fn pod_yaml(name: &str, restart: &str, containers: &[(&str, &str)]) -> String {
    let mut y = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: {restart}\n  terminationGracePeriodSeconds: 1\n  containers:\n"
    );
    for (cname, script) in containers {
        y.push_str(&format!(
            "  - name: {cname}\n    image: {IMAGE}\n    imagePullPolicy: Never\n    command: [\"/bin/sh\", \"-c\", {script:?}]\n"
        ));
    }
    y
}

fn apply(d: &TestDaemon, name: &str, yaml: &str) {
    let f = d.write(&format!("{name}.yaml"), yaml);
    ok(&d.cli(&["apply", "-f", f.to_str().expect("path")]));
}

fn get_pod(d: &TestDaemon, name: &str) -> Value {
    let out = ok(&d.cli(&["get", "pod", name, "-o", "json"]));
    serde_json::from_str(&out).expect("pod json")
}

fn status_of<'a>(pod: &'a Value, container: &str) -> Option<&'a Value> {
    pod["status"]["containerStatuses"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == container)
}

fn wait_running(d: &TestDaemon, name: &str, container: &str) {
    eventually(120, &format!("{name}/{container} running"), || {
        let pod = get_pod(d, name);
        status_of(&pod, container)
            .filter(|s| s["state"]["running"].is_object())
            .map(|_| ())
    });
}

/// Deletes the pods and waits until they (and so their containers) are gone.
fn delete_pods(d: &TestDaemon, names: &[&str]) {
    let mut args = vec!["delete", "pod"];
    args.extend_from_slice(names);
    args.extend_from_slice(&["--wait", "--timeout", "120"]);
    ok(&d.cli(&args));
}

/// Runs the CLI and waits (bounded) for it to exit.
fn cli_bounded(d: &TestDaemon, args: &[&str], secs: u64) -> (bool, String, String) {
    let mut child = Command::new(common::berth_bin())
        .args(args)
        .env("BERTH_SOCKET", d.socket())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cli");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("berth {args:?} did not end within {secs}s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read stdout");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    (status.success(), out, err)
}

#[test]
fn logs_tail_timestamps_and_errors() {
    let d = TestDaemon::start();
    import_busybox(&d);
    apply(
        &d,
        "talker",
        &pod_yaml(
            "talker",
            "Always",
            &[(
                "app",
                "for i in 1 2 3; do echo line$i; done; sleep 0.2; echo oops >&2; sleep 3600",
            )],
        ),
    );
    apply(
        &d,
        "pair",
        &pod_yaml(
            "pair",
            "Always",
            &[("a", "sleep 3600"), ("b", "sleep 3600")],
        ),
    );
    wait_running(&d, "talker", "app");
    let all = eventually(60, "the whole log", || {
        let out = d.cli(&["logs", "talker"]);
        let text = stdout(&out);
        (out.status.success() && text.contains("oops")).then_some(text)
    });
    assert_eq!(all, "line1\nline2\nline3\noops\n");
    assert_eq!(
        ok(&d.cli(&["logs", "talker", "--tail", "2"])),
        "line3\noops\n"
    );
    assert_eq!(
        ok(&d.cli(&["logs", "pod/talker", "-c", "app", "--tail=0"])),
        ""
    );
    assert_eq!(ok(&d.cli(&["logs", "talker", "--since", "1h"])), all);
    assert_eq!(
        ok(&d.cli(&["logs", "talker", "--limit-bytes", "8"])),
        "line1\nli"
    );
    let stamped = ok(&d.cli(&["logs", "talker", "--timestamps", "--tail", "1"]));
    let (ts, text) = stamped.trim_end().split_once(' ').expect("timestamp");
    assert!(ts.parse::<jiff::Timestamp>().is_ok(), "{stamped}");
    assert_eq!(text, "oops");

    // kube-apiserver's answers for the wrong container or pod.
    let out = d.cli(&["logs", "talker", "-c", "nope"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("container nope is not valid for pod talker"),
        "{}",
        stderr(&out)
    );
    wait_running(&d, "pair", "b");
    let out = d.cli(&["logs", "pair"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("a container name must be specified for pod pair, choose one of: [a b]"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ok(&d.cli(&["logs", "pair", "-c", "b"])), "");
    let out = d.cli(&["logs", "ghost"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("pods \"ghost\" not found"),
        "{}",
        stderr(&out)
    );
    let out = d.cli(&["logs", "talker", "--previous"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("previous terminated container \"app\" in pod \"talker\" not found"),
        "{}",
        stderr(&out)
    );
    delete_pods(&d, &["talker", "pair"]);
}

#[test]
fn follow_streams_until_the_container_exits() {
    let d = TestDaemon::start();
    import_busybox(&d);
    apply(
        &d,
        "once",
        &pod_yaml(
            "once",
            "Never",
            &[(
                "app",
                "echo start; sleep 2; echo middle; sleep 1; printf done",
            )],
        ),
    );
    wait_running(&d, "once", "app");
    let (success, out, err) = cli_bounded(&d, &["logs", "-f", "once"], 120);
    assert!(success, "{err}");
    assert_eq!(out, "start\nmiddle\ndone\n");
    // After the end, the log is still there.
    eventually(60, "the pod to finish", || {
        let pod = get_pod(&d, "once");
        status_of(&pod, "app")
            .filter(|s| s["state"]["terminated"].is_object())
            .map(|_| ())
    });
    assert_eq!(ok(&d.cli(&["logs", "once"])), "start\nmiddle\ndone\n");
    delete_pods(&d, &["once"]);
}

#[test]
fn previous_shows_the_run_before_a_restart() {
    let d = TestDaemon::start();
    import_busybox(&d);
    // Each run prints its own start time, so two runs differ.
    apply(
        &d,
        "crasher",
        &pod_yaml(
            "crasher",
            "Always",
            &[("app", "echo run at $(cat /proc/uptime); sleep 1; exit 3")],
        ),
    );
    let pod = eventually(180, "a restart", || {
        let pod = get_pod(&d, "crasher");
        status_of(&pod, "app")
            .filter(|s| s["restartCount"].as_u64() >= Some(1))
            .map(|_| pod.clone())
    });
    assert!(status_of(&pod, "app").is_some());
    let previous = ok(&d.cli(&["logs", "crasher", "--previous"]));
    assert!(previous.starts_with("run at "), "{previous}");
    assert_eq!(previous.lines().count(), 1, "{previous}");
    let current = eventually(60, "the current run's log", || {
        let out = d.cli(&["logs", "crasher"]);
        let text = stdout(&out);
        (out.status.success() && !text.is_empty()).then_some(text)
    });
    assert!(current.starts_with("run at "), "{current}");
    delete_pods(&d, &["crasher"]);
}

#[test]
fn waiting_containers_have_no_log_yet() {
    let d = TestDaemon::start();
    // No image imported: the container cannot start.
    apply(
        &d,
        "stuck",
        &pod_yaml("stuck", "Always", &[("app", "echo never")]),
    );
    let err = eventually(60, "the waiting message", || {
        let out = d.cli(&["logs", "stuck"]);
        let err = stderr(&out);
        (!out.status.success() && err.contains("is waiting to start")).then_some(err)
    });
    assert!(
        err.contains("container \"app\" in pod \"stuck\" is waiting to start"),
        "{err}"
    );
    delete_pods(&d, &["stuck"]);
}

#[test]
fn top_pods_and_node() {
    let d = TestDaemon::start();
    import_busybox(&d);
    apply(
        &d,
        "spinner",
        &pod_yaml(
            "spinner",
            "Always",
            &[("busy", "while :; do :; done"), ("idle", "sleep 3600")],
        ),
    );
    wait_running(&d, "spinner", "busy");
    wait_running(&d, "spinner", "idle");
    let out = ok(&d.cli(&["top", "pods"]));
    let lines: Vec<&str> = out.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "CPU(cores)", "MEMORY(bytes)"]);
    let row: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("spinner"))
        .expect("spinner row")
        .split_whitespace()
        .collect();
    let milli: u64 = row[1].strip_suffix('m').expect("m").parse().expect("cpu");
    assert!(milli > 10, "a busy loop uses CPU: {out}");
    assert!(row[2].ends_with("Mi"), "{out}");

    let out = ok(&d.cli(&["top", "pods", "--containers", "-A"]));
    let header: Vec<&str> = out
        .lines()
        .next()
        .expect("header")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAMESPACE", "POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    );
    assert!(
        out.lines()
            .any(|l| l.contains("spinner") && l.contains("busy")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("spinner") && l.contains("idle")),
        "{out}"
    );

    let out = ok(&d.cli(&["top", "node"]));
    let lines: Vec<&str> = out.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert!(row[1].ends_with('m') && row[2].ends_with('%'), "{out}");
    assert!(row[3].ends_with("Mi") && row[4].ends_with('%'), "{out}");

    // The API as metrics-server serves it.
    let (code, _, one) = common::raw_get(
        &d,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/spinner",
        "application/json",
    );
    assert_eq!(code, 200);
    assert_eq!(one["kind"], "PodMetrics");
    let (code, _, missing) = common::raw_get(
        &d,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/ghost",
        "application/json",
    );
    assert_eq!(code, 404, "{missing}");
    delete_pods(&d, &["spinner"]);
}

/// The log API over log files alone: a pod bound to another node (so no kubelet runs it)
/// whose status names runs, and CRI log files written where the kubelet's runtime keeps
/// them. Passes without a pod-running kubelet.
#[test]
fn the_log_api_reads_the_runs_the_status_names() {
    let d = TestDaemon::start();
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: filed\n  annotations:\n    kubectl.kubernetes.io/default-container: b\nspec:\n  nodeName: elsewhere\n  containers:\n  - name: a\n    image: x\n  - name: b\n    image: x\n";
    apply(&d, "filed", yaml);
    let client = d.client();
    let r = common::runtime();
    let status = serde_json::json!({"status": {"containerStatuses": [
        {"name": "a", "ready": true, "restartCount": 1, "image": "x", "imageID": "",
         "containerID": "berth://no-such-container",
         "state": {"running": {"startedAt": "2026-11-23T10:00:00Z"}},
         "lastState": {"terminated": {"exitCode": 1, "containerID": "berth://old-a",
            "startedAt": "2026-11-23T09:00:00Z", "finishedAt": "2026-11-23T09:59:00Z"}}},
        {"name": "b", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
         "state": {"waiting": {"reason": "ContainerCreating"}}},
    ]}});
    r.block_on(client.request(
        hyper::Method::PATCH,
        "/api/v1/namespaces/default/pods/filed/status",
        Some("application/merge-patch+json"),
        Some(serde_json::to_vec(&status).expect("json")),
    ))
    .expect("status patch");
    let uid = get_pod(&d, "filed")["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    let dir = d
        .dir
        .path()
        .join("logs")
        .join(format!("default_filed_{uid}"))
        .join("a");
    std::fs::create_dir_all(&dir).expect("log dir");
    let t = "2026-11-23T10:00:01.5Z";
    std::fs::write(dir.join("0.log"), format!("{t} stdout F first run\n")).expect("w");
    std::fs::write(
        dir.join("1.log.1"),
        format!("{t} stdout F rotated\n{t} stderr P long \n"),
    )
    .expect("w");
    std::fs::write(
        dir.join("1.log"),
        format!("{t} stderr F line\n{t} stdout F current\n"),
    )
    .expect("w");

    assert_eq!(
        ok(&d.cli(&["logs", "filed", "-c", "a"])),
        "rotated\nlong line\ncurrent\n"
    );
    assert_eq!(
        ok(&d.cli(&["logs", "filed", "-c", "a", "-p"])),
        "first run\n"
    );
    assert_eq!(
        ok(&d.cli(&["logs", "filed", "-c", "a", "--tail", "1", "--timestamps"])),
        "2026-11-23T10:00:01.5Z current\n"
    );
    assert_eq!(
        ok(&d.cli(&[
            "logs",
            "filed",
            "-c",
            "a",
            "--since-time",
            "2026-11-23T10:00:02Z"
        ])),
        ""
    );
    // The run is not running (its container does not exist): follow ends at the end.
    let (success, out, err) = cli_bounded(&d, &["logs", "-f", "filed", "-c", "a"], 60);
    assert!(success, "{err}");
    assert_eq!(out, "rotated\nlong line\ncurrent\n");
    // The default container is b, which has not started.
    let out = d.cli(&["logs", "filed"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("container \"b\" in pod \"filed\" is waiting to start: ContainerCreating"),
        "{}",
        stderr(&out)
    );
    let out = d.cli(&["logs", "filed", "-c", "b", "--previous"]);
    assert!(
        stderr(&out).contains("previous terminated container \"b\" in pod \"filed\" not found"),
        "{}",
        stderr(&out)
    );
    // Invalid options are 422 Invalid, as kube-apiserver answers.
    let (code, _, body) = common::raw_get(
        &d,
        "/api/v1/namespaces/default/pods/filed/log?container=a&tailLines=-1",
        "*/*",
    );
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["reason"], "Invalid");
    // The body is text/plain.
    let (code, ct, _) = common::raw_get(
        &d,
        "/api/v1/namespaces/default/pods/filed/log?container=a",
        "*/*",
    );
    assert_eq!((code, ct.as_str()), (200, "text/plain"));
    let bytes = r
        .block_on(async {
            let opts = berth::client::LogOptions {
                container: Some("a".into()),
                limit_bytes: Some(9),
                ..Default::default()
            };
            client
                .logs("default", "filed", &opts)
                .await
                .expect("logs")
                .collect()
                .await
        })
        .expect("collect");
    assert_eq!(bytes, b"rotated\nl");
    ok(&d.cli(&["delete", "pod", "filed"]));
}

/// `berth top node` needs no pods: the node's own usage from /proc.
#[test]
fn top_node_reports_the_host() {
    let d = TestDaemon::start();
    let out = ok(&d.cli(&["top", "node"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row.len(), 5, "{out}");
    assert!(row[1].ends_with('m') && row[2].ends_with('%'), "{out}");
    let mem: u64 = row[3]
        .strip_suffix("Mi")
        .expect("Mi")
        .parse()
        .expect("memory");
    assert!(mem > 0, "{out}");
    let (code, _, list) =
        common::raw_get(&d, "/apis/metrics.k8s.io/v1beta1/nodes", "application/json");
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "NodeMetricsList");
    assert_eq!(list["items"][0]["metadata"]["name"], row[0]);
    // No pods: no pod metrics.
    let (code, _, pods) =
        common::raw_get(&d, "/apis/metrics.k8s.io/v1beta1/pods", "application/json");
    assert_eq!(code, 200);
    assert_eq!(pods["items"], serde_json::json!([]));
    let out = ok(&d.cli(&["top", "pods"]));
    assert_eq!(out, "");
    // kubectl top looks for the group in discovery.
    let (_, _, groups) = common::raw_get(&d, "/apis", "application/json");
    assert!(
        groups["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .any(|g| g["name"] == "metrics.k8s.io"),
        "{groups}"
    );
    let (code, _, resources) =
        common::raw_get(&d, "/apis/metrics.k8s.io/v1beta1", "application/json");
    assert_eq!(code, 200);
    let names: Vec<&str> = resources["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["nodes", "pods"]);
}

/// A container started with the runtime directly, in the daemon's own state, log and
/// cgroup directories, for a pod bound to another node (so no kubelet runs it) whose status
/// names the container: the API serves its log and metrics as a kubelet's. Lets these
/// tests pass without a pod-running kubelet.
struct Live {
    runtime: berth::runtime::Runtime,
    uid: String,
    id: String,
    rootfs: PathBuf,
    pod: String,
}

impl Live {
    fn start(d: &TestDaemon, pod: &str, script: &str) -> Live {
        use berth::runtime::{ContainerConfig, LogLocation, Resources, Runtime, RuntimeOptions};
        let runtime = Runtime::with_options(
            d.state_dir().join("containers"),
            d.dir.path().join("run"),
            d.dir.path().join("logs"),
            RuntimeOptions {
                shim_binary: Some(PathBuf::from(common::berth_bin())),
                cgroup_parent: format!("/{}", d.cgroup_parent()),
                ..RuntimeOptions::default()
            },
        )
        .expect("runtime");
        apply(
            d,
            pod,
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {pod}\nspec:\n  nodeName: elsewhere\n  containers:\n  - name: app\n    image: x\n"
            ),
        );
        let uid = get_pod(d, pod)["metadata"]["uid"]
            .as_str()
            .expect("uid")
            .to_string();
        runtime
            .create_pod_cgroup(&uid, &Resources::default())
            .expect("pod cgroup");
        let rootfs = common::busybox_rootfs(&d.dir.path().join(pod));
        let id = format!("{pod}-{}", &uid[..8]);
        let mut c = ContainerConfig::new(
            id.clone(),
            &rootfs,
            vec!["/bin/sh".into(), "-c".into(), script.into()],
        );
        c.cgroups_path = runtime.container_cgroup_path(&uid, &id).expect("cgroup");
        c.log = LogLocation {
            namespace: "default".into(),
            pod_name: pod.into(),
            pod_uid: uid.clone(),
            container_name: "app".into(),
            restart_count: 0,
        };
        let status = serde_json::json!({"status": {"containerStatuses": [
            {"name": "app", "ready": true, "restartCount": 0, "image": "x", "imageID": "",
             "containerID": format!("berth://{id}"),
             "state": {"running": {"startedAt": "2026-11-23T10:00:00Z"}}},
        ]}});
        common::runtime()
            .block_on(d.client().request(
                hyper::Method::PATCH,
                &format!("/api/v1/namespaces/default/pods/{pod}/status"),
                Some("application/merge-patch+json"),
                Some(serde_json::to_vec(&status).expect("json")),
            ))
            .expect("status patch");
        runtime.start(&c).expect("start");
        Live {
            runtime,
            uid,
            id,
            rootfs,
            pod: pod.to_string(),
        }
    }

    /// Removes the container, its cgroups and the pod, then stops the daemon.
    fn finish(self, mut d: TestDaemon) {
        let _ = self.runtime.stop(&self.id, Duration::ZERO);
        self.runtime.remove(&self.id).expect("remove container");
        self.runtime
            .remove_pod_cgroup(&self.uid)
            .expect("remove pod cgroup");
        ok(&d.cli(&["delete", "pod", &self.pod]));
        d.stop();
        let _ = self.runtime.cgroups().remove_parent();
    }
}

/// `berth logs -f` streams a live container's output as it is written and ends when the
/// container exits.
#[test]
fn follow_streams_a_live_container_through_the_api() {
    let d = TestDaemon::start();
    // It prints one line, then waits for the test to have read it before the second.
    let live = Live::start(
        &d,
        "live",
        "echo first; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo second",
    );
    let mut child = Command::new(common::berth_bin())
        .args(["logs", "-f", "live"])
        .env("BERTH_SOCKET", d.socket())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn berth logs -f");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(60));
    let still_running = live.runtime.state(&live.id).map(|s| s.is_running());
    std::fs::write(live.rootfs.join("tmp/go"), "").expect("go");
    let second = rx.recv_timeout(Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = reader.join();
    let state = live.runtime.wait(&live.id, Duration::from_secs(30));
    // Clean up before asserting, so that a failure leaves nothing behind.
    live.finish(d);

    assert_eq!(first.expect("the first line while running"), "first");
    assert!(
        still_running.expect("state"),
        "the first line arrived while the container ran"
    );
    assert_eq!(second.expect("the second line"), "second");
    let exit = exit.expect("berth logs -f ended when the container exited");
    assert!(exit.success(), "{exit}");
    assert!(!state.expect("state").is_running());
}

/// `berth top pods` over a live busy container.
#[test]
fn top_pods_measures_a_live_container() {
    let d = TestDaemon::start();
    let live = Live::start(&d, "busy", "while :; do :; done");
    let pods = d.cli(&["top", "pods"]);
    let containers = d.cli(&["top", "pods", "--containers", "-A"]);
    let one = common::raw_get(
        &d,
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/busy",
        "application/json",
    );
    live.finish(d);

    let out = ok(&pods);
    let lines: Vec<&str> = out.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "CPU(cores)", "MEMORY(bytes)"]);
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(row[0], "busy", "{out}");
    let milli: u64 = row[1].strip_suffix('m').expect("m").parse().expect("cpu");
    assert!(milli > 10, "a busy loop uses CPU: {out}");
    assert!(row[2].ends_with("Mi"), "{out}");
    let out = ok(&containers);
    let header: Vec<&str> = out
        .lines()
        .next()
        .expect("header")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAMESPACE", "POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    );
    let row: Vec<&str> = out
        .lines()
        .nth(1)
        .expect("row")
        .split_whitespace()
        .collect();
    assert_eq!(&row[..3], ["default", "busy", "app"], "{out}");
    let (code, _, metrics) = one;
    assert_eq!(code, 200, "{metrics}");
    assert_eq!(metrics["kind"], "PodMetrics");
    assert_eq!(metrics["containers"][0]["name"], "app");
    assert!(
        metrics["containers"][0]["usage"]["cpu"]
            .as_str()
            .expect("cpu")
            .ends_with('n')
    );
}
