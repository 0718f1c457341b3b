//! The terminal UI end to end: the real `berth` binary in tmux against a real daemon,
//! driven by keys and read back with `tmux capture-pane`.
//!
//! Each test runs its own tmux server on a socket in the daemon's temporary directory
//! (`-S`), killed when the test ends.

mod common;

use berth::api::registry::by_kind;
use common::tmux::Tmux;
use common::*;
use serde_json::json;

fn tui_command(d: &TestDaemon, prefix: &str) -> String {
    format!(
        "{prefix}env BERTH_SOCKET={} {}",
        d.socket().display(),
        berth_bin()
    )
}

#[test]
fn lists_scales_deletes_and_survives_a_daemon_restart() {
    let mut d = TestDaemon::start();
    d.import_busybox();
    let client = d.client();
    let r = runtime();
    let deploy = by_kind("apps/v1", "Deployment").expect("kind");
    let pods = by_kind("v1", "Pod").expect("kind");
    r.block_on(client.create(
        deploy,
        Some("default"),
        &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "c", "image": "berth.local/busybox:latest",
                        "imagePullPolicy": "Never", "command": ["sleep", "3600"]}]}}}}),
    ))
    .expect("create deployment");

    // `berth` with no arguments on a terminal opens the TUI.
    let t = Tmux::start(&d, &tui_command(&d, ""));
    t.wait_for("Pods(all)");
    t.wait_for(&format!("berth v{}", env!("CARGO_PKG_VERSION")));

    t.type_text(":deploy");
    t.key("Enter");
    t.wait_for("Deployments(all)[1]");
    t.type_text("S");
    t.wait_for("Replicas of deployment.apps/web");
    t.key("BSpace");
    t.type_text("3");
    t.key("Enter");
    t.wait_for("scaled deployment.apps/web to 3");

    // The pod view shows the three replicas Running.
    let running_web = |screen: &str| -> Vec<String> {
        screen
            .lines()
            .filter(|l| l.contains("Running"))
            .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("web-")))
            .map(str::to_string)
            .collect()
    };
    t.type_text(":po");
    t.key("Enter");
    t.type_text("/web");
    t.key("Enter");
    t.wait_for("</web>");
    let three = eventually(60, "three web pods Running on the screen", || {
        let names = running_web(&t.screen());
        (names.len() == 3).then_some(names)
    });

    // ctrl-d deletes the selected pod after a yes; the ReplicaSet replaces it.
    t.key("C-d");
    let screen = t.wait_for("Delete pod/web-");
    let victim = three
        .iter()
        .find(|n| screen.contains(&format!("Delete pod/{n}?")))
        .expect("the dialog names one of the pods")
        .clone();
    t.type_text("y");
    eventually(60, "a replacement Running on the screen", || {
        let names = running_web(&t.screen());
        (names.len() == 3 && !names.contains(&victim)).then_some(())
    });
    // The victim stays listed (Terminating) for its grace period; the shell below must
    // go to a live pod, so wait until it has left the table and the cursor moved on.
    t.wait_gone(&victim);

    // A shell in the selected pod, typed into at once (keys typed before the shell runs
    // reach it too): its hostname is the pod's name.
    t.type_text("s");
    t.type_text("echo host=$(hostname)");
    t.key("Enter");
    let screen = t.wait_for("host=web-");
    // The answer may share its line with the prompt (typeahead echoes before the shell's
    // first prompt): take the word after "host=web-" wherever it stands.
    let host = screen
        .split_whitespace()
        .find_map(|w| w.find("host=web-").map(|i| &w[i + "host=".len()..]))
        .expect("the hostname word")
        .to_string();
    t.type_text("exit");
    t.key("Enter");
    t.wait_for("</web>");
    assert!(
        r.block_on(client.get(pods, Some("default"), &host)).is_ok(),
        "the shell's hostname {host} is not a pod"
    );

    // The daemon goes away: the TUI says so and keeps going; it resumes when it is back.
    d.stop();
    t.wait_for("disconnected, retrying");
    d.spawn();
    let client = d.client();
    r.block_on(client.create(
        pods,
        Some("default"),
        &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "after-restart"},
            "spec": {"containers": [{"name": "c", "image": "berth.local/busybox:latest",
                "imagePullPolicy": "Never"}]}}),
    ))
    .expect("create pod after restart");
    t.key("Escape");
    t.wait_for("after-restart");
    t.wait_gone("disconnected, retrying");

    t.type_text("q");
    eventually(20, "the TUI to exit", || (!t.alive()).then_some(()));
}

#[test]
fn users_outside_the_group_get_a_read_only_tui_that_says_why() {
    let d = TestDaemon::start_with_config("socketMode: \"0666\"\ngroup: berth-test-nonexistent\n");
    let t = Tmux::start(
        &d,
        &tui_command(&d, "setpriv --reuid=65534 --regid=65534 --clear-groups "),
    );
    t.wait_for("Pods(all)");
    t.wait_for("read-only:");
    t.type_text(":ns");
    t.key("Enter");
    t.wait_for("Namespaces[");
    t.key("C-d");
    let screen = t.wait_for("┌ read-only");
    assert!(screen.contains("forbidden"), "{screen}");
    assert!(!screen.contains("Delete namespace"), "{screen}");
}

#[test]
fn without_a_terminal_berth_prints_help() {
    let d = TestDaemon::start();
    let out = d.cli(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Usage: berth"), "{}", stderr(&out));
}

#[test]
fn logs_from_the_pod_view() {
    let d = TestDaemon::start();
    d.import_busybox();
    let pod = d.write(
        "talker.yaml",
        "apiVersion: v1
kind: Pod
metadata: {name: talker}
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, 'echo hello-from-talker; sleep 3600']
",
    );
    assert!(
        d.cli(&["apply", "-f", pod.to_str().unwrap()])
            .status
            .success()
    );
    eventually(60, "the pod to run", || {
        let o = d.cli(&["get", "pod", "talker", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        (v["status"]["phase"] == "Running").then_some(())
    });
    let t = Tmux::start(&d, &tui_command(&d, ""));
    t.wait_for("Pods(all)");
    t.wait_for("talker");
    t.type_text("/talker");
    t.key("Enter");
    t.wait_for("</talker>");
    t.type_text("l");
    t.wait_for("hello-from-talker");
    t.key("Escape");
    t.wait_for("Pods(all)");
    t.type_text("q");
    eventually(20, "the TUI to exit", || (!t.alive()).then_some(()));
}

#[test]
fn shift_f_forwards_a_pod_port_while_the_tui_runs() {
    use std::io::{Read, Write};
    let d = TestDaemon::start();
    d.import_busybox();
    let pod = d.write(
        "web.yaml",
        "apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sh, -c, 'mkdir -p /www && echo hello-from-the-tui > /www/index.html && exec httpd -f -p 8080 -h /www']
    ports:
    - containerPort: 8080
    readinessProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
",
    );
    ok(&d.cli(&["apply", "-f", pod.to_str().unwrap()]));
    eventually(60, "the pod to be ready", || {
        let o = d.cli(&["get", "pod", "web", "-o", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        v["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
            .then_some(())
    });
    let t = Tmux::start(&d, &tui_command(&d, ""));
    t.wait_for("Pods(all)");
    t.wait_for("web");
    t.type_text("F");
    t.wait_for("8080:8080_");
    // Any free local port: `:8080`.
    for _ in 0..4 {
        t.key("BSpace");
    }
    t.wait_for("8080:_");
    for _ in 0..4 {
        t.key("BSpace");
    }
    t.type_text(":8080");
    t.key("Enter");
    let screen = t.wait_for("→ pod/web:8080");
    let at = screen.find("127.0.0.1:").expect("the local address") + "127.0.0.1:".len();
    let port: u16 = screen[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("a port");
    for _ in 0..2 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .expect("timeout");
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("request");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("answer");
        assert!(answer.contains("hello-from-the-tui"), "{answer}");
    }
    t.type_text("q");
    eventually(20, "the TUI to exit", || (!t.alive()).then_some(()));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the forward ends with the TUI"
    );
}
