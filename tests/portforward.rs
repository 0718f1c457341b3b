//! `berth port-forward` against a real daemon and real busybox pods, as root: the CLI is
//! spawned as a child process, its printed local port read back, and plain HTTP requests
//! go through it to `httpd` inside the pod's network namespace.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use common::{TestDaemon, berth_bin, eventually, ok, stderr};

/// What the pods serve.
const PAGE: &str = "hello-through-port-forward";

/// The `containers:` of a pod spec, each line prefixed by `indent`: httpd on 8080 (the
/// container port named `http`) with a readiness probe, so Ready means it accepts
/// connections.
fn httpd_containers(indent: &str) -> String {
    let lines = [
        "containers:".to_string(),
        "- name: web".to_string(),
        "  image: berth.local/busybox:latest".to_string(),
        "  imagePullPolicy: Never".to_string(),
        format!(
            "  command: [sh, -c, 'mkdir -p /www && echo {PAGE} > /www/index.html && exec httpd -f -p 8080 -h /www']"
        ),
        "  ports:".to_string(),
        "  - name: http".to_string(),
        "    containerPort: 8080".to_string(),
        "  readinessProbe:".to_string(),
        "    tcpSocket:".to_string(),
        "      port: http".to_string(),
        "    periodSeconds: 1".to_string(),
    ];
    lines.iter().map(|l| format!("{indent}{l}\n")).collect()
}

fn wait_ready(d: &TestDaemon, selector: &str) {
    eventually(90, "a ready pod", || {
        let out = d.cli(&["get", "pods", "-l", selector, "-o", "json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        list["items"]
            .as_array()?
            .iter()
            .any(|p| {
                p["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .then_some(())
    });
}

/// A running `berth port-forward`: its stdout lines arrive on a channel, its stderr
/// collects in a buffer. Killed on drop.
struct Forwarder {
    child: Child,
    lines: mpsc::Receiver<String>,
    errors: Arc<Mutex<String>>,
}

impl Forwarder {
    fn start(d: &TestDaemon, args: &[&str]) -> Forwarder {
        Forwarder::start_as(d, args, None)
    }

    /// Runs as user `uid` (and group) when given.
    fn start_as(d: &TestDaemon, args: &[&str], uid: Option<u32>) -> Forwarder {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(berth_bin());
        if let Some(uid) = uid {
            cmd.uid(uid).gid(uid);
        }
        let mut child = cmd
            .arg("port-forward")
            .args(args)
            .env("BERTH_SOCKET", d.socket())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn berth port-forward");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let errors = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().expect("stderr");
        let sink = errors.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().expect("stderr buffer");
                s.push_str(&line);
                s.push('\n');
            }
        });
        Forwarder {
            child,
            lines,
            errors,
        }
    }

    /// The next stdout line (the deadline only keeps a broken run from hanging).
    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "berth port-forward printed nothing more; stderr: {}",
                    self.errors.lock().expect("stderr buffer")
                )
            })
    }

    /// Reads `Forwarding from 127.0.0.1:LOCAL -> REMOTE` lines until the one for `remote`
    /// on IPv4 loopback; returns LOCAL.
    fn local_port_for(&self, remote: u16) -> u16 {
        loop {
            let line = self.line();
            let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:") else {
                continue;
            };
            let (local, to) = rest.split_once(" -> ").expect("an arrow");
            if to == remote.to_string() {
                return local.parse().expect("a port number");
            }
        }
    }

    /// The next `Handling connection for …` line (after the remaining `Forwarding` ones).
    fn handling(&self) -> String {
        loop {
            let line = self.line();
            if !line.starts_with("Forwarding from ") {
                return line;
            }
        }
    }

    fn stderr(&self) -> String {
        self.errors.lock().expect("stderr buffer").clone()
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.0 GET of `/` through 127.0.0.1:`port`; the whole answer.
fn http_get(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the forwarder");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .expect("send the request");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read the answer");
    answer
}

#[test]
fn pod_port_forward_serves_http_and_survives_a_refused_port() {
    // Socket open to everyone so that another user can connect at all; the peer
    // credentials decide what it may do.
    let d = TestDaemon::start_with_config("socketMode: \"0666\"\ngroup: berth-test-nonexistent\n");
    d.import_busybox();
    let manifest = d.write(
        "web.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels:\n    app: web\nspec:\n  terminationGracePeriodSeconds: 0\n{}",
            httpd_containers("  ")
        ),
    );
    ok(&d.cli(&["apply", "-f", &manifest.to_string_lossy()]));
    wait_ready(&d, "app=web");

    let fwd = Forwarder::start(&d, &["pod/web", "0:8080", ":9999"]);
    let local = fwd.local_port_for(8080);
    let refused = fwd.local_port_for(9999);
    assert_ne!(local, 0);

    // Two connections one after the other, each a whole HTTP exchange.
    for _ in 0..2 {
        let answer = http_get(local);
        assert!(answer.starts_with("HTTP/1."), "{answer}");
        assert!(answer.contains(PAGE), "{answer}");
        assert_eq!(fwd.handling(), format!("Handling connection for {local}"));
    }

    // Nothing listens on 9999 in the pod: the connection ends empty, the error is printed,
    // and the forwarder goes on.
    let mut s = TcpStream::connect(("127.0.0.1", refused)).expect("the local side accepts");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    eventually(30, "the refusal on stderr", || {
        fwd.stderr().contains("connection refused").then_some(())
    });
    let e = fwd.stderr();
    assert!(
        e.contains("an error occurred forwarding") && e.contains("9999"),
        "{e}"
    );
    assert!(http_get(local).contains(PAGE));
    drop(fwd);

    // Forwarding reaches into the pod: like exec, it needs write access. nobody (65534)
    // may read the pod and listen, but each connection is refused.
    let fwd = Forwarder::start_as(&d, &["web", ":8080"], Some(65534));
    let port = fwd.local_port_for(8080);
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("the local side accepts");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    eventually(30, "forbidden on stderr", || {
        fwd.stderr().contains("forbidden").then_some(())
    });
    drop(fwd);

    // Clear errors before anything listens.
    let out = d.cli(&["port-forward", "pod/nothere", "8080"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("pods \"nothere\" not found"),
        "{}",
        stderr(&out)
    );
    let out = d.cli(&["port-forward", "web", "8080:abc"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("port \"abc\" is not a number"),
        "{}",
        stderr(&out)
    );
    let pending = d.write(
        "pending.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: pending\nspec:\n  terminationGracePeriodSeconds: 0\n  containers:\n  - name: c\n    image: berth.local/not-imported:1\n    imagePullPolicy: Never\n",
    );
    ok(&d.cli(&["apply", "-f", &pending.to_string_lossy()]));
    let out = d.cli(&["port-forward", "pending", "8080"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("pod pending is not running. Current status=Pending"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn service_and_deployment_port_forward_pick_a_running_pod() {
    let d = TestDaemon::start();
    d.import_busybox();
    let manifest = d.write(
        "app.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      terminationGracePeriodSeconds: 0\n{}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n  ports:\n  - name: front\n    port: 80\n    targetPort: http\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: empty\nspec:\n  selector:\n    app: nobody\n  ports:\n  - port: 80\n",
            httpd_containers("      ")
        ),
    );
    ok(&d.cli(&["apply", "-f", &manifest.to_string_lossy()]));
    wait_ready(&d, "app=web");

    // The service's port 80 targets the container port named http (8080).
    let fwd = Forwarder::start(&d, &["svc/web", "0:80"]);
    let local = fwd.local_port_for(8080);
    assert!(http_get(local).contains(PAGE));
    drop(fwd);

    let fwd = Forwarder::start(&d, &["deployment/web", ":8080", "--address", "127.0.0.1"]);
    let local = fwd.local_port_for(8080);
    assert!(http_get(local).contains(PAGE));
    drop(fwd);

    let out = d.cli(&["port-forward", "svc/web", "8080"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("service web does not have a service port 8080"),
        "{}",
        stderr(&out)
    );
    let out = d.cli(&["port-forward", "svc/empty", "80"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("service empty has no running pod"),
        "{}",
        stderr(&out)
    );
}
