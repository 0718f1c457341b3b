//! The API end to end through the real socket: the Kubernetes docs' nginx Deployment
//! applied, read back, updated, watched and deleted; selectors; subresources; patches;
//! watch resumption.

mod common;

use berth::api::patch::PatchType;
use berth::api::registry::by_kind;
use berth::api::watch::EventType;
use berth::client::{ClientError, ListOptions};
use common::*;
use serde_json::{Value, json};

/// Every field of `want` is in `got` with the same value (`got` may have more: defaults,
/// system metadata).
fn assert_contains(got: &Value, want: &Value, path: &str) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, v) in w {
                let child = format!("{path}.{k}");
                let gv = g
                    .get(k)
                    .unwrap_or_else(|| panic!("missing {child} in {got}"));
                assert_contains(gv, v, &child);
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "length of {path}");
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                assert_contains(gv, wv, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(got, want, "at {path}"),
    }
}

#[test]
fn nginx_deployment_apply_get_update_watch_delete() {
    let d = TestDaemon::start();
    let rt = by_kind("apps/v1", "Deployment").expect("deployment kind");
    let manifest: Value = serde_yaml::from_str(NGINX_DEPLOYMENT).expect("manifest");
    let file = d.write("nginx.yaml", NGINX_DEPLOYMENT);

    let out = ok(&d.cli(&["apply", "-f", file.to_str().expect("path")]));
    assert_eq!(out, "deployment.apps/nginx-deployment created\n");
    let out = ok(&d.cli(&["apply", "-f", file.to_str().expect("path")]));
    assert_eq!(out, "deployment.apps/nginx-deployment unchanged\n");

    // Read back as YAML: every field of the manifest, with the same values.
    let yaml = ok(&d.cli(&["get", "deployment", "nginx-deployment", "-o", "yaml"]));
    let got: Value = serde_yaml::from_str(&yaml).expect("yaml");
    assert_contains(&got, &manifest, "");
    assert_eq!(got["metadata"]["namespace"], "default");
    assert_eq!(got["metadata"]["generation"], 1);
    assert!(
        !got["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );

    // Watch from the current revision, then update.
    let rt_ = runtime();
    let client = d.client();
    let rv = got["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let mut watch = rt_
        .block_on(client.watch(rt, Some("default"), &ListOptions::default(), &rv))
        .expect("watch");
    let updated = NGINX_DEPLOYMENT
        .replace("replicas: 3", "replicas: 5")
        .replace("nginx:1.14.2", "nginx:1.16.1");
    let file = d.write("nginx.yaml", &updated);
    let out = ok(&d.cli(&["apply", "-f", file.to_str().expect("path")]));
    assert_eq!(out, "deployment.apps/nginx-deployment configured\n");
    // The Deployment controller writes status and annotations too: find the update.
    let next =
        |w: &mut berth::client::Watch| rt_.block_on(w.next()).expect("event").expect("ok event");
    let mut ev = next(&mut watch);
    while ev.kind == EventType::Modified && ev.object["spec"]["replicas"] != 5 {
        ev = next(&mut watch);
    }
    assert_eq!(ev.kind, EventType::Modified);
    assert_eq!(ev.object["spec"]["replicas"], 5);
    assert_eq!(
        ev.object["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.16.1"
    );
    assert_eq!(
        ev.object["metadata"]["generation"], 2,
        "a spec change bumps generation"
    );

    // Delete, and the watch sees it go.
    let out = ok(&d.cli(&["delete", "-f", file.to_str().expect("path")]));
    assert_eq!(out, "deployment.apps \"nginx-deployment\" deleted\n");
    let mut ev = next(&mut watch);
    while ev.kind == EventType::Modified {
        ev = next(&mut watch);
    }
    assert_eq!(ev.kind, EventType::Deleted);
    assert_eq!(ev.object["metadata"]["name"], "nginx-deployment");
    let err = rt_
        .block_on(client.get(rt, Some("default"), "nginx-deployment"))
        .expect_err("gone");
    assert!(
        matches!(err, ClientError::Api(ref e) if e.code() == 404),
        "{err}"
    );
    let out = d.cli(&["get", "deploy", "nginx-deployment"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("deployments.apps \"nginx-deployment\" not found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn label_and_field_selectors_filter_lists() {
    let d = TestDaemon::start();
    let cms = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {app: web, tier: front}}\n---\n\
               apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, labels: {app: web, tier: back}}\n---\n\
               apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: {app: db}}\n";
    ok(&d.cli_with(&["apply", "-f", "-"], Some(cms), None));
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["get", "cm", "-o", "name"];
        all.extend_from_slice(args);
        ok(&d.cli(&all))
            .lines()
            .map(|l| l.trim_start_matches("configmap/").to_string())
            .collect()
    };
    assert_eq!(names(&["-l", "app=web"]), ["a", "b"]);
    assert_eq!(names(&["-l", "app=web,tier!=front"]), ["b"]);
    assert_eq!(names(&["-l", "tier in (front,back)"]), ["a", "b"]);
    assert_eq!(names(&["-l", "!tier"]), ["c"]);
    assert_eq!(names(&["--field-selector", "metadata.name=c"]), ["c"]);
    assert_eq!(
        names(&["--field-selector", "metadata.name!=c", "-l", "tier"]),
        ["a", "b"]
    );
    let bad = d.cli(&["get", "cm", "--field-selector", "spec.nope=1"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("field label not supported: spec.nope"),
        "{}",
        stderr(&bad)
    );

    // delete -l and --all, as kubectl: a selection that matches nothing is no error.
    let out = ok(&d.cli(&["delete", "cm", "-l", "app=web"]));
    assert!(
        out.contains("configmap \"a\" deleted") && out.contains("configmap \"b\" deleted"),
        "{out}"
    );
    assert_eq!(
        names(&[])
            .iter()
            .filter(|n| *n != "kube-root-ca.crt")
            .count(),
        1
    );
    let none = d.cli(&["delete", "cm", "-l", "app=nothing"]);
    assert!(none.status.success());
    assert!(
        stderr(&none).contains("No resources found"),
        "{}",
        stderr(&none)
    );
    let both = d.cli(&["delete", "cm", "c", "-l", "app=db"]);
    assert!(
        !both.status.success(),
        "names and a selector together are refused"
    );
    ok(&d.cli(&["delete", "cm", "--all"]));
    assert!(names(&[]).is_empty());
}

#[test]
fn scale_and_status_subresources() {
    let d = TestDaemon::start();
    let rt = by_kind("apps/v1", "Deployment").expect("kind");
    ok(&d.cli_with(&["apply", "-f", "-"], Some(NGINX_DEPLOYMENT), None));
    let client = d.client();
    let r = runtime();
    let path = "/apis/apps/v1/namespaces/default/deployments/nginx-deployment/scale";
    let scale = r
        .block_on(client.request(hyper::Method::GET, path, None, None))
        .expect("get scale");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["selector"], "app=nginx");
    let body = serde_json::to_vec(&json!({"spec": {"replicas": 7}})).expect("json");
    let scaled = r
        .block_on(client.request(
            hyper::Method::PATCH,
            path,
            Some("application/merge-patch+json"),
            Some(body),
        ))
        .expect("patch scale");
    assert_eq!(scaled["spec"]["replicas"], 7);
    let dep = r
        .block_on(client.get(rt, Some("default"), "nginx-deployment"))
        .expect("get");
    assert_eq!(dep["spec"]["replicas"], 7);

    // Status goes through /status only. The Deployment controller writes status too, so a
    // PUT may meet a newer resourceVersion: read again and retry, as any client must.
    let st_path = "/apis/apps/v1/namespaces/default/deployments/nginx-deployment/status";
    let mut tries = 0;
    let (dep, after) = loop {
        let dep = r
            .block_on(client.get(rt, Some("default"), "nginx-deployment"))
            .expect("get");
        let mut with_status = dep.clone();
        with_status["status"] = json!({"replicas": 7, "readyReplicas": 2, "observedGeneration": 2});
        let body = serde_json::to_vec(&with_status).expect("json");
        match r.block_on(client.request(
            hyper::Method::PUT,
            st_path,
            Some("application/json"),
            Some(body),
        )) {
            Ok(after) => break (dep, after),
            Err(ClientError::Api(e)) if e.code() == 409 && tries < 20 => tries += 1,
            Err(e) => panic!("put status: {e}"),
        }
    };
    assert_eq!(after["status"]["readyReplicas"], 2);
    assert_eq!(
        after["metadata"]["generation"], dep["metadata"]["generation"],
        "status does not bump generation"
    );
}

#[test]
fn patches_of_every_kind_kubectl_sends() {
    let d = TestDaemon::start();
    let rt = by_kind("apps/v1", "Deployment").expect("kind");
    ok(&d.cli_with(&["apply", "-f", "-"], Some(NGINX_DEPLOYMENT), None));
    let client = d.client();
    let r = runtime();
    // Strategic merge: change the image of the container named nginx, keep its ports.
    let smp = json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}}});
    let after = r
        .block_on(client.patch(
            rt,
            Some("default"),
            "nginx-deployment",
            PatchType::Strategic,
            &smp,
        ))
        .expect("smp");
    let c = &after["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "nginx:1.25");
    assert_eq!(
        c["ports"][0]["containerPort"], 80,
        "merged by name, not replaced"
    );
    // JSON patch.
    let jp = json!([{"op": "replace", "path": "/spec/replicas", "value": 2}]);
    let after = r
        .block_on(client.patch(
            rt,
            Some("default"),
            "nginx-deployment",
            PatchType::Json,
            &jp,
        ))
        .expect("jp");
    assert_eq!(after["spec"]["replicas"], 2);
    // Merge patch that deletes a label.
    let mp = json!({"metadata": {"labels": {"app": null, "team": "home"}}});
    let after = r
        .block_on(client.patch(
            rt,
            Some("default"),
            "nginx-deployment",
            PatchType::Merge,
            &mp,
        ))
        .expect("mp");
    assert_eq!(after["metadata"]["labels"], json!({"team": "home"}));
    // A patch that makes the object invalid is refused and changes nothing.
    let before = r
        .block_on(client.get(rt, Some("default"), "nginx-deployment"))
        .expect("get");
    let bad = json!({"spec": {"replicas": "many"}});
    let err = r
        .block_on(client.patch(
            rt,
            Some("default"),
            "nginx-deployment",
            PatchType::Merge,
            &bad,
        ))
        .expect_err("invalid");
    assert!(err.to_string().contains("spec.replicas"), "{err}");
    let now = r
        .block_on(client.get(rt, Some("default"), "nginx-deployment"))
        .expect("get");
    // (The Deployment controller may have written status and its annotations meanwhile.)
    assert_eq!(before["spec"], now["spec"]);
    assert_eq!(
        before["metadata"]["generation"],
        now["metadata"]["generation"]
    );
    assert_eq!(before["metadata"]["labels"], now["metadata"]["labels"]);
}

#[test]
fn watch_resumes_from_a_revision_and_expires_when_compacted() {
    let d = TestDaemon::start_with_config("watchHistory: 20\n");
    let rt = by_kind("v1", "ConfigMap").expect("kind");
    let client = d.client();
    let r = runtime();
    let start = r
        .block_on(client.list(rt, Some("default"), &ListOptions::default()))
        .expect("list")
        .resource_version;
    for i in 0..5 {
        let cm =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}")}});
        r.block_on(client.create(rt, Some("default"), &cm))
            .expect("create");
    }
    let mut w = r
        .block_on(client.watch(rt, Some("default"), &ListOptions::default(), &start))
        .expect("watch");
    let mut last = start.parse::<u64>().expect("rv");
    for i in 0..5 {
        let ev = r.block_on(w.next()).expect("event").expect("ok");
        assert_eq!(ev.kind, EventType::Added);
        assert_eq!(ev.object["metadata"]["name"], format!("c{i}"));
        let rv: u64 = ev.object["metadata"]["resourceVersion"]
            .as_str()
            .expect("rv")
            .parse()
            .expect("num");
        assert!(rv > last);
        last = rv;
    }
    for i in 5..40 {
        let cm =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}")}});
        r.block_on(client.create(rt, Some("default"), &cm))
            .expect("create");
    }
    let mut old = r
        .block_on(client.watch(rt, Some("default"), &ListOptions::default(), &start))
        .expect("watch");
    let err = r
        .block_on(old.next())
        .expect("an error event")
        .expect_err("expired");
    assert!(
        matches!(err, ClientError::Api(ref e) if e.code() == 410),
        "{err}"
    );
}

#[test]
fn namespaces_delete_their_contents_and_then_themselves() {
    let d = TestDaemon::start();
    ok(&d.cli_with(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Namespace\nmetadata: {name: media}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg, namespace: media}\ndata: {a: b}\n"),
        None,
    ));
    assert!(ok(&d.cli(&["get", "cm", "-n", "media", "-o", "name"])).contains("configmap/cfg"));
    ok(&d.cli(&["delete", "ns", "media", "--wait", "--timeout", "20"]));
    let out = d.cli(&["get", "ns", "media"]);
    assert!(!out.status.success());
    let out = d.cli(&["get", "cm", "-A", "-o", "name"]);
    assert!(!stdout(&out).contains("cfg"), "{}", stdout(&out));
    let out = d.cli(&["delete", "ns", "default"]);
    assert!(
        stderr(&out).contains("this namespace may not be deleted"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn kubectl_tables_discovery_and_version() {
    let d = TestDaemon::start();
    ok(&d.cli_with(&["apply", "-f", "-"], Some(NGINX_DEPLOYMENT), None));
    let table_accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let (code, _, t) = raw_get(
        &d,
        "/apis/apps/v1/namespaces/default/deployments?limit=500",
        table_accept,
    );
    assert_eq!(code, 200);
    assert_eq!(t["kind"], "Table");
    let names: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .expect("defs")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        &names[..5],
        ["Name", "Ready", "Up-to-date", "Available", "Age"]
    );
    assert_eq!(t["rows"][0]["cells"][0], "nginx-deployment");
    assert_eq!(t["rows"][0]["cells"][1], "0/3");
    assert_eq!(t["rows"][0]["object"]["metadata"]["namespace"], "default");
    assert!(
        t["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );

    let (_, _, v) = raw_get(&d, "/version?timeout=32s", "application/json");
    assert_eq!(v["major"], "1");
    let (_, _, api) = raw_get(&d, "/api", "application/json");
    assert_eq!(api["versions"], json!(["v1"]));
    let (_, _, groups) = raw_get(&d, "/apis", "application/json");
    let group_names: Vec<&str> = groups["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    for g in ["apps", "batch", "networking.k8s.io", "storage.k8s.io"] {
        assert!(group_names.contains(&g), "{g} missing from {group_names:?}");
    }
    let (_, _, core) = raw_get(&d, "/api/v1", "application/json");
    let pods = core["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "pods")
        .expect("pods");
    assert_eq!(pods["shortNames"], json!(["po"]));
    assert_eq!(pods["categories"], json!(["all"]));
    let (_, _, apps) = raw_get(&d, "/apis/apps/v1", "application/json");
    let scale = apps["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .find(|r| r["name"] == "deployments/scale")
        .expect("scale");
    assert_eq!(scale["group"], "autoscaling");
    let (_, _, oa) = raw_get(&d, "/openapi/v3", "application/json");
    let url = oa["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("url")
        .to_string();
    let (_, _, doc) = raw_get(&d, &url, "application/json");
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(
        patch["x-kubernetes-group-version-kind"]["kind"],
        "Deployment"
    );
    assert_eq!(patch["parameters"][0]["name"], "fieldValidation");
    let (code, _, st) = raw_get(
        &d,
        "/apis/apps/v1/namespaces/default/widgets",
        "application/json",
    );
    assert_eq!(code, 404);
    assert_eq!(st["kind"], "Status");
}

#[test]
fn the_node_registers_itself_and_restarts_write_nothing() {
    let mut d = TestDaemon::start_with_config("nodeName: test-node\n");
    let out = ok(&d.cli(&["get", "nodes"]));
    let line = out.lines().nth(1).expect("one node");
    assert!(line.starts_with("test-node"), "{out}");
    assert!(line.contains("Ready"), "{out}");
    let node: Value =
        serde_yaml::from_str(&ok(&d.cli(&["get", "node", "test-node", "-o", "yaml"])))
            .expect("yaml");
    assert_eq!(node["status"]["capacity"]["pods"], "110");
    assert_eq!(node["metadata"]["labels"]["kubernetes.io/os"], "linux");
    let rv = node["metadata"]["resourceVersion"].clone();
    d.stop();
    d.spawn();
    let again: Value =
        serde_yaml::from_str(&ok(&d.cli(&["get", "node", "test-node", "-o", "yaml"])))
            .expect("yaml");
    assert_eq!(
        again["metadata"]["resourceVersion"], rv,
        "an unchanged node is not rewritten at start"
    );
}

#[test]
fn new_pods_are_bound_to_the_node_with_a_scheduled_event() {
    let d = TestDaemon::start_with_config("nodeName: test-node\n");
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - {name: c, image: busybox, command: [sleep, '3600']}\n";
    ok(&d.cli_with(&["apply", "-f", "-"], Some(pod), None));
    let rt = by_kind("v1", "Pod").expect("kind");
    let client = d.client();
    let r = runtime();
    let bound = eventually(20, "the pod to be bound", || {
        r.block_on(client.get(rt, Some("default"), "web"))
            .ok()
            .filter(|p| p["spec"]["nodeName"] == "test-node")
    });
    let scheduled = bound["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == "PodScheduled")
        .cloned();
    assert_eq!(scheduled.expect("PodScheduled")["status"], "True");
    let events = eventually(20, "the Scheduled event", || {
        let out = ok(&d.cli(&["events", "--for", "pod/web"]));
        out.contains("Scheduled").then_some(out)
    });
    assert!(
        events.contains("Successfully assigned default/web to test-node"),
        "{events}"
    );
    // Binding twice is a conflict, and a plain update cannot move the pod either.
    let body = serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "other"}}),
    )
    .expect("json");
    let err = r
        .block_on(client.request(
            hyper::Method::POST,
            "/api/v1/namespaces/default/pods/web/binding",
            Some("application/json"),
            Some(body),
        ))
        .expect_err("already bound");
    assert!(
        err.to_string()
            .contains("already assigned to node \"test-node\""),
        "{err}"
    );
    let moved = json!({"spec": {"nodeName": "other"}});
    assert!(
        r.block_on(client.patch(rt, Some("default"), "web", PatchType::Merge, &moved))
            .is_err()
    );
}

#[test]
fn filtered_watches_see_objects_enter_and_leave_the_selection() {
    let d = TestDaemon::start();
    let rt = by_kind("v1", "ConfigMap").expect("kind");
    let client = d.client();
    let r = runtime();
    let start = r
        .block_on(client.list(rt, Some("default"), &ListOptions::default()))
        .expect("list")
        .resource_version;
    let opts = ListOptions {
        label_selector: Some("app=web".into()),
        field_selector: None,
    };
    let mut w = r
        .block_on(client.watch(rt, Some("default"), &opts, &start))
        .expect("watch");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"app": "web"}}});
    r.block_on(client.create(rt, Some("default"), &cm))
        .expect("create");
    let relabel = |app: &str| {
        let p = json!({"metadata": {"labels": {"app": app}}});
        r.block_on(client.patch(rt, Some("default"), "c", PatchType::Merge, &p))
            .expect("patch");
    };
    relabel("db");
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unrelated", "labels": {"app": "db"}}});
    r.block_on(client.create(rt, Some("default"), &other))
        .expect("create");
    relabel("web");
    let kinds: Vec<EventType> = (0..3)
        .map(|_| r.block_on(w.next()).expect("event").expect("ok").kind)
        .collect();
    assert_eq!(
        kinds,
        [EventType::Added, EventType::Deleted, EventType::Added]
    );
}
