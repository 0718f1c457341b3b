//! Discovery documents (legacy form, which every kubectl version understands), `/version`
//! and the minimal OpenAPI v3 index that lets kubectl leave validation to the server.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::api::ApiError;
use crate::api::registry::{REGISTRY, ResourceType};

/// The Kubernetes API version berth's types follow (k8s-openapi feature `v1_34`).
pub const KUBE_MINOR: &str = "34";

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBE_MINOR,
        "gitVersion": format!("v1.{KUBE_MINOR}.0-berth.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
}

fn group_versions() -> Vec<(&'static str, &'static str)> {
    let set: BTreeSet<(&str, &str)> = REGISTRY
        .iter()
        .filter(|r| !r.group.is_empty())
        .map(|r| (r.group, r.version))
        .collect();
    set.into_iter().collect()
}

fn group_json(group: &str) -> Value {
    if group == super::metrics::METRICS_GROUP {
        let v = json!({"groupVersion": format!("{group}/{}", super::metrics::METRICS_VERSION),
            "version": super::metrics::METRICS_VERSION});
        return json!({"name": group, "versions": [v.clone()], "preferredVersion": v});
    }
    let versions: Vec<Value> = group_versions()
        .into_iter()
        .filter(|(g, _)| *g == group)
        .map(|(g, v)| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

pub fn groups() -> Value {
    let mut names: BTreeSet<&str> = group_versions().into_iter().map(|(g, _)| g).collect();
    // Served by the node's metrics service, not stored: `kubectl top` looks for it here.
    names.insert(super::metrics::METRICS_GROUP);
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": names.into_iter().map(group_json).collect::<Vec<_>>()})
}

pub fn group(group: &str) -> Value {
    let mut g = group_json(group);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    g
}

fn verbs(_rt: &ResourceType) -> Value {
    json!([
        "create", "delete", "get", "list", "patch", "update", "watch"
    ])
}

pub fn resources(group: &str, version: &str) -> Value {
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut list = Vec::new();
    if group == super::metrics::METRICS_GROUP && version == super::metrics::METRICS_VERSION {
        for (name, kind, namespaced) in [
            ("nodes", "NodeMetrics", false),
            ("pods", "PodMetrics", true),
        ] {
            list.push(
                json!({"name": name, "singularName": "", "namespaced": namespaced,
                "kind": kind, "verbs": ["get", "list"]}),
            );
        }
    }
    for rt in REGISTRY
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        list.push(json!({
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": verbs(rt),
            "shortNames": rt.short_names,
            "categories": rt.categories,
        }));
        if rt.status_subresource {
            list.push(json!({"name": format!("{}/status", rt.plural), "singularName": "", "namespaced": rt.namespaced,
                "kind": rt.kind, "verbs": ["get", "patch", "update"]}));
        }
        if rt.group.is_empty() && rt.kind == "Pod" {
            list.push(
                json!({"name": "pods/log", "singularName": "", "namespaced": true,
                "kind": "Pod", "verbs": ["get"]}),
            );
        }
        if rt.scale_subresource {
            list.push(json!({"name": format!("{}/scale", rt.plural), "singularName": "", "namespaced": rt.namespaced,
                "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list})
}

/// `/openapi/v3` and the per-group-version documents: just enough for kubectl to see that
/// the server validates fields itself (`fieldValidation`), so it sends manifests as they are.
pub fn openapi(rest: &str) -> Result<Value, ApiError> {
    let gvs: Vec<(String, &str, &str)> = std::iter::once(("api/v1".to_string(), "", "v1"))
        .chain(
            group_versions()
                .into_iter()
                .map(|(g, v)| (format!("apis/{g}/{v}"), g, v)),
        )
        .collect();
    if rest.is_empty() {
        let paths: serde_json::Map<String, Value> = gvs
            .iter()
            .map(|(p, _, _)| {
                (
                    p.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=berth")}),
                )
            })
            .collect();
        return Ok(json!({"paths": paths}));
    }
    let (_, group, version) =
        gvs.iter()
            .find(|(p, _, _)| p == rest)
            .ok_or_else(|| ApiError::NotFoundPath {
                message: format!("no OpenAPI document for {rest}"),
            })?;
    let mut paths = serde_json::Map::new();
    for rt in REGISTRY
        .iter()
        .filter(|r| r.group == *group && r.version == *version)
    {
        let path = if rt.namespaced {
            format!("/{rest}/namespaces/{{namespace}}/{}/{{name}}", rt.plural)
        } else {
            format!("/{rest}/{}/{{name}}", rt.plural)
        };
        paths.insert(
            path,
            json!({"patch": {
                "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
                "parameters": [{"name": "fieldValidation", "in": "query"}],
            }}),
        );
    }
    Ok(
        json!({"openapi": "3.0.0", "info": {"title": "berth", "version": env!("CARGO_PKG_VERSION")}, "paths": paths}),
    )
}
