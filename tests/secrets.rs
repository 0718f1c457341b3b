//! Secrets at rest: sealed in the LMDB data file (objects and history), never in the
//! daemon's log, served and mounted as Kubernetes does, kept across a restart, and a wrong
//! key stops the start with a clear error instead of losing anything.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{TestDaemon, berth_bin, eventually, ok, stdout};

const PLAIN: &str = "TopSecretValue-9f2c41";
const VIA_DATA: &str = "AnotherSecret-77ab03";
const CONTROL: &str = "NotSecretAtAll-5e1d";

fn b64(s: &str) -> String {
    let out = std::process::Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(s.as_bytes())?;
            c.wait_with_output()
        })
        .expect("base64");
    String::from_utf8(out.stdout).expect("utf-8")
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn secrets_are_sealed_at_rest_and_never_logged() {
    let mut d = TestDaemon::start();
    d.import_busybox();
    let key = d.state_dir().join("secrets.key");
    let mode = std::fs::metadata(&key)
        .expect("the key exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&key).expect("key").len(), 32);

    d.apply_yaml(
        "objects",
        &format!(
            "apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  password: {PLAIN}
---
apiVersion: v1
kind: Secret
metadata:
  name: api
data:
  token: {}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: plain
data:
  value: {CONTROL}
",
            b64(VIA_DATA)
        ),
    );
    // Served as Kubernetes serves them: base64 data.
    let s = d.get_json(&["secret", "db"]).expect("secret");
    assert_eq!(s["data"]["password"], b64(PLAIN).as_str());
    assert!(s.get("stringData").is_none());
    // An update, so the history holds several revisions of it.
    d.apply_yaml(
        "update",
        &format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  labels: {{v: '2'}}\nstringData:\n  password: {PLAIN}\n"),
    );

    // Mounted and in env inside a pod.
    d.apply_yaml(
        "pod",
        "apiVersion: v1
kind: Pod
metadata:
  name: reader
spec:
  containers:
  - name: main
    image: berth.local/busybox:latest
    imagePullPolicy: Never
    command: [sleep, '3600']
    env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: api, key: token}}}]
    volumeMounts: [{name: s, mountPath: /s, readOnly: true}]
  volumes: [{name: s, secret: {secretName: db}}]
",
    );
    eventually(90, "the reader running", || {
        std::thread::sleep(Duration::from_millis(300));
        d.get_json(&["pod", "reader"])
            .filter(|p| p["status"]["phase"] == "Running")
    });
    let exec = |cmd: &str| ok(&d.cli(&["exec", "reader", "--", "sh", "-c", cmd]));
    assert_eq!(exec("cat /s/password"), PLAIN);
    assert_eq!(exec("echo -n $TOKEN"), VIA_DATA);
    assert!(exec("grep ' /s ' /proc/mounts").starts_with("tmpfs"));

    // The data file: the ConfigMap's value is there (the search works), no Secret's is,
    // in plain text or base64.
    let data = std::fs::read(d.state_dir().join("state/data.mdb")).expect("data.mdb");
    assert!(
        contains(&data, CONTROL),
        "the control value is not in data.mdb"
    );
    for v in [PLAIN, VIA_DATA] {
        assert!(!contains(&data, v), "{v} is in data.mdb in plain text");
        assert!(!contains(&data, &b64(v)), "{v} is in data.mdb as base64");
    }
    // The daemon's log (at debug level) has neither.
    let log = d.log();
    for v in [PLAIN, VIA_DATA] {
        assert!(
            !log.contains(v) && !log.contains(&b64(v)),
            "{v} is in the daemon log"
        );
    }

    // A restart reads them back.
    d.kill9();
    d.spawn();
    let s = d
        .get_json(&["secret", "api"])
        .expect("secret after restart");
    assert_eq!(s["data"]["token"], b64(VIA_DATA).as_str());

    // A wrong key: the daemon refuses to start and says why; nothing is lost.
    d.stop();
    let good = std::fs::read(&key).expect("key");
    std::fs::write(&key, [7u8; 32]).expect("write");
    let out = std::process::Command::new(berth_bin())
        .args(["daemon", "--config"])
        .arg(d.config_path())
        .output()
        .expect("daemon");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not open with this node's key"), "{err}");
    std::fs::write(&key, &good).expect("restore the key");
    d.spawn();
    let s = d
        .get_json(&["secret", "db"])
        .expect("secret with the right key");
    assert_eq!(s["data"]["password"], b64(PLAIN).as_str());
    assert!(stdout(&d.cli(&["get", "secrets"])).contains("db"));
}
