//! Deletion propagation: Background, Orphan and Foreground, carried out by the garbage
//! collector in the daemon.

mod common;

use berth::api::patch::PatchType;
use berth::api::registry::by_kind;
use berth::client::Client;
use common::*;
use serde_json::{Value, json};

fn cm(client: &Client, name: &str, owner: Option<&Value>, finalizers: &[&str]) -> Value {
    let rt = by_kind("v1", "ConfigMap").expect("kind");
    let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
    if let Some(o) = owner {
        obj["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap",
            "name": o["metadata"]["name"], "uid": o["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]);
    }
    if !finalizers.is_empty() {
        obj["metadata"]["finalizers"] = json!(finalizers);
    }
    runtime()
        .block_on(client.create(rt, Some("default"), &obj))
        .expect("create")
}

fn get(client: &Client, name: &str) -> Option<Value> {
    let rt = by_kind("v1", "ConfigMap").expect("kind");
    runtime()
        .block_on(client.get(rt, Some("default"), name))
        .ok()
}

#[test]
fn background_deletion_removes_dependents() {
    let d = TestDaemon::start();
    let c = d.client();
    let owner = cm(&c, "owner", None, &[]);
    cm(&c, "dep", Some(&owner), &[]);
    ok(&d.cli(&["delete", "cm", "owner"]));
    eventually(20, "the dependent to be collected", || {
        get(&c, "dep").is_none().then_some(())
    });
}

#[test]
fn orphan_deletion_keeps_dependents_without_the_reference() {
    let d = TestDaemon::start();
    let c = d.client();
    let owner = cm(&c, "owner", None, &[]);
    cm(&c, "dep", Some(&owner), &[]);
    ok(&d.cli(&[
        "delete",
        "cm",
        "owner",
        "--cascade",
        "orphan",
        "--wait",
        "--timeout",
        "20",
    ]));
    let dep = get(&c, "dep").expect("dependent survives");
    assert!(dep["metadata"].get("ownerReferences").is_none(), "{dep}");
}

#[test]
fn foreground_deletion_removes_the_owner_last() {
    let d = TestDaemon::start();
    let c = d.client();
    let rt = by_kind("v1", "ConfigMap").expect("kind");
    let owner = cm(&c, "owner", None, &[]);
    cm(&c, "dep", Some(&owner), &["example.com/hold"]);
    ok(&d.cli(&["delete", "cm", "owner", "--cascade", "foreground"]));
    // The dependent is marked, held by its own finalizer; the owner waits for it.
    let dep = eventually(20, "the dependent to be marked", || {
        get(&c, "dep").filter(|d| d["metadata"].get("deletionTimestamp").is_some())
    });
    assert!(dep["metadata"]["deletionTimestamp"].is_string());
    let owner_now = get(&c, "owner").expect("owner still there while a dependent exists");
    assert!(owner_now["metadata"]["deletionTimestamp"].is_string());
    let release = json!({"metadata": {"finalizers": null}});
    runtime()
        .block_on(c.patch(rt, Some("default"), "dep", PatchType::Merge, &release))
        .expect("release");
    eventually(20, "the owner to go after its dependent", || {
        get(&c, "owner").is_none().then_some(())
    });
    assert!(get(&c, "dep").is_none());
}
