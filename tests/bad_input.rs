//! Bad input gets a clear error and changes nothing: each case checks the message and that
//! the store's revision (bumped by every write) did not move.

mod common;

use berth::api::registry::by_kind;
use berth::client::{Client, ListOptions};
use common::*;
use serde_json::{Value, json};

fn revision(client: &Client) -> String {
    let rt = by_kind("v1", "Namespace").expect("kind");
    runtime()
        .block_on(client.list(rt, None, &ListOptions::default()))
        .expect("list")
        .resource_version
}

/// Runs `f` and asserts the store's revision is the same afterwards.
fn unchanged<T>(d: &TestDaemon, f: impl FnOnce() -> T) -> T {
    let before = revision(&d.client());
    let out = f();
    assert_eq!(revision(&d.client()), before, "the store changed");
    out
}

fn apply_fails(d: &TestDaemon, manifest: &str) -> String {
    let out = d.cli_with(&["apply", "-f", "-"], Some(manifest), None);
    assert!(
        !out.status.success(),
        "apply must fail; stdout: {}",
        stdout(&out)
    );
    assert_eq!(out.status.code(), Some(1));
    stderr(&out)
}

#[test]
fn malformed_yaml_is_refused_before_anything_is_sent() {
    let d = TestDaemon::start();
    let err = unchanged(&d, || {
        apply_fails(
            &d,
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: good}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: [broken\n",
        )
    });
    assert!(err.contains("error parsing STDIN: document 2"), "{err}");
    assert!(
        !ok(&d.cli(&["get", "cm", "-o", "name"])).contains("good"),
        "the good document was not applied"
    );
}

#[test]
fn a_typo_in_a_field_is_an_error_naming_it() {
    let d = TestDaemon::start();
    let manifest = NGINX_DEPLOYMENT
        .replace("replicas: 3", "replica: 3")
        .replace(
            "        ports:",
            "        imagePullPolcy: Always\n        ports:",
        );
    let err = unchanged(&d, || apply_fails(&d, &manifest));
    assert!(err.contains("unknown field \"spec.replica\""), "{err}");
    assert!(
        err.contains("unknown field \"spec.template.spec.containers[0].imagePullPolcy\""),
        "{err}"
    );
    assert!(err.contains("nothing was applied"), "{err}");
}

#[test]
fn invalid_names_are_refused() {
    let d = TestDaemon::start();
    for name in ["My_App", "../etc"] {
        let manifest = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"{name}\"\n");
        let err = unchanged(&d, || apply_fails(&d, &manifest));
        assert!(
            err.contains(&format!("metadata.name: Invalid value: \"{name}\"")),
            "{err}"
        );
        assert!(err.contains("a lowercase RFC 1123 subdomain"), "{err}");
    }
    // Straight to the API as well: the path segment cannot smuggle a name either.
    let client = d.client();
    let r = runtime();
    let body = serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "../etc"}}),
    )
    .expect("json");
    let err = unchanged(&d, || {
        r.block_on(client.request(
            hyper::Method::POST,
            "/api/v1/namespaces/default/configmaps",
            Some("application/json"),
            Some(body),
        ))
        .expect_err("refused")
    });
    assert!(err.to_string().contains("is invalid"), "{err}");
}

#[test]
fn a_wrong_api_version_and_kind_pair_is_refused() {
    let d = TestDaemon::start();
    let err = unchanged(&d, || {
        apply_fails(&d, &NGINX_DEPLOYMENT.replace("apps/v1", "v1"))
    });
    assert!(
        err.contains("no matches for kind \"Deployment\" in version \"v1\""),
        "{err}"
    );
    assert!(
        err.contains("apps/v1"),
        "the message suggests the right apiVersion: {err}"
    );
    // The API refuses a body whose kind does not match the path.
    let client = d.client();
    let r = runtime();
    let body = serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
    )
    .expect("json");
    let err = unchanged(&d, || {
        r.block_on(client.request(
            hyper::Method::POST,
            "/api/v1/namespaces/default/configmaps",
            Some("application/json"),
            Some(body),
        ))
        .expect_err("refused")
    });
    let msg = err.to_string();
    assert!(
        msg.contains("the kind in the data (Secret) does not match the expected kind (ConfigMap)"),
        "{msg}"
    );
}

#[test]
fn a_body_over_the_limit_is_refused() {
    let d = TestDaemon::start();
    let big = "x".repeat(4 * 1024 * 1024);
    let body = serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"k": big}}))
        .expect("json");
    let client = d.client();
    let r = runtime();
    let err = unchanged(&d, || {
        r.block_on(client.request(
            hyper::Method::POST,
            "/api/v1/namespaces/default/configmaps",
            Some("application/json"),
            Some(body),
        ))
        .expect_err("too large")
    });
    assert!(
        matches!(err, berth::client::ClientError::Api(ref e) if e.code() == 413),
        "{err}"
    );
    assert!(
        err.to_string().contains("request entity too large"),
        "{err}"
    );
}

#[test]
fn a_stale_resource_version_is_a_conflict() {
    let d = TestDaemon::start();
    let rt = by_kind("v1", "ConfigMap").expect("kind");
    let client = d.client();
    let r = runtime();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"v": "1"}});
    let created = r
        .block_on(client.create(rt, Some("default"), &cm))
        .expect("create");
    let mut newer = created.clone();
    newer["data"]["v"] = json!("2");
    r.block_on(client.replace(rt, Some("default"), "c", &newer))
        .expect("update");
    let mut stale = created.clone();
    stale["data"]["v"] = json!("3");
    let err = unchanged(&d, || {
        r.block_on(client.replace(rt, Some("default"), "c", &stale))
            .expect_err("stale")
    });
    let msg = err.to_string();
    assert!(
        matches!(err, berth::client::ClientError::Api(ref e) if e.code() == 409),
        "{msg}"
    );
    assert_eq!(
        msg,
        "Operation cannot be fulfilled on ConfigMap \"c\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let now: Value = r
        .block_on(client.get(rt, Some("default"), "c"))
        .expect("get");
    assert_eq!(now["data"]["v"], "2");
}

#[test]
fn a_user_outside_the_group_may_read_but_not_write() {
    // Socket open to everyone so the other user can connect at all; the peer credentials
    // decide what it may do.
    let d = TestDaemon::start_with_config("socketMode: \"0666\"\ngroup: berth-test-nonexistent\n");
    let nobody = 65534;
    let read = d.cli_with(&["get", "ns", "-o", "name"], None, Some(nobody));
    assert!(ok(&read).contains("namespace/default"));
    let err = unchanged(&d, || {
        let out = d.cli_with(
            &["apply", "-f", "-"],
            Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sneaky}\n"),
            Some(nobody),
        );
        assert!(!out.status.success());
        stderr(&out)
    });
    assert!(err.contains("forbidden"), "{err}");
    assert!(
        err.contains("cannot create resource \"configmaps\""),
        "{err}"
    );
    let del = d.cli_with(&["delete", "ns", "kube-public"], None, Some(nobody));
    assert!(
        stderr(&del).contains("cannot delete resource \"namespaces\""),
        "{}",
        stderr(&del)
    );
}

#[test]
fn the_default_socket_mode_keeps_other_users_out() {
    let d = TestDaemon::start();
    let meta = std::fs::metadata(d.socket()).expect("socket");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    let out = d.cli_with(&["get", "ns"], None, Some(65534));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("permission denied; add yourself to the berth group"),
        "{}",
        stderr(&out)
    );
}

/// Removes the test group on drop.
struct TempGroup(String);
impl Drop for TempGroup {
    fn drop(&mut self) {
        let _ = std::process::Command::new("groupdel").arg(&self.0).status();
    }
}

#[test]
fn members_of_the_group_may_write() {
    let name = format!("bt{}", std::process::id());
    let made = std::process::Command::new("groupadd")
        .arg(&name)
        .status()
        .expect("groupadd runs");
    assert!(made.success(), "groupadd {name}");
    let _group = TempGroup(name.clone());
    let gid = nix::unistd::Group::from_name(&name)
        .expect("lookup")
        .expect("group exists")
        .gid
        .as_raw();
    let d = TestDaemon::start_with_config(&format!("group: {name}\n"));
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(d.socket()).expect("socket");
    assert_eq!(meta.gid(), gid, "the socket belongs to the group");
    // nobody, with the group as its primary group: connects through the group bits, may write.
    let out = {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(berth_bin());
        cmd.args(["apply", "-f", "-"])
            .env("BERTH_SOCKET", d.socket())
            .uid(65534)
            .gid(gid);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: by-member}\n")
            .expect("write");
        child.wait_with_output().expect("output")
    };
    assert_eq!(ok(&out), "configmap/by-member created\n");
}
