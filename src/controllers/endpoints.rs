//! The Endpoints, EndpointSlice and EndpointSlice-mirroring controllers, in one pass.
//!
//! For every Service with a selector (not ExternalName), the pods of its namespace that
//! match the selector, have an IP and are not finished become endpoints:
//! - an `Endpoints` object named after the Service (ready pods under `addresses`, the rest
//!   under `notReadyAddresses`; terminating pods left out), labelled
//!   `endpoints.kubernetes.io/managed-by: endpoint-controller`;
//! - `EndpointSlice`s named `<service>-<5 characters>`, labelled
//!   `kubernetes.io/service-name` and managed by `endpointslice-controller.k8s.io`, owned by
//!   the Service, with the conditions Kubernetes sets (`ready` is serving and not
//!   terminating; terminating pods stay listed with `terminating: true`) and at most 100
//!   endpoints each.
//!
//! A Service port's `targetPort` by name resolves per pod against its containers' ports;
//! pods that resolve to the same ports share a subset (a slice). A pod that lacks a named
//! port is left out of that Service. `publishNotReadyAddresses` makes every endpoint ready.
//!
//! For a Service without a selector, the user's own `Endpoints` are mirrored into slices
//! managed by `endpointslicemirroring-controller.k8s.io`, so every consumer (the service
//! proxy, DNS, the Ingress) reads EndpointSlices only.
//!
//! Writes happen only when the wanted content differs from what is stored.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::api::selector::LabelSelector;
use crate::api::{ApiError, meta, registry};
use crate::store::{Change, DeleteOptions, Store, StoreError, Subresource};

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const SLICE_MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const SLICE_CONTROLLER: &str = "endpointslice-controller.k8s.io";
pub const MIRROR_CONTROLLER: &str = "endpointslicemirroring-controller.k8s.io";
pub const ENDPOINTS_MANAGED_BY_LABEL: &str = "endpoints.kubernetes.io/managed-by";
pub const ENDPOINTS_CONTROLLER: &str = "endpoint-controller";
const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Kubernetes' `--max-endpoints-per-slice` default.
const MAX_PER_SLICE: usize = 100;

pub(super) fn relevant(c: &Change) -> bool {
    matches!(
        c.resource.kind,
        "Service" | "Pod" | "Endpoints" | "EndpointSlice"
    )
}

/// One endpoint: a pod (or a mirrored address).
#[derive(Debug, Clone, PartialEq)]
struct Endpoint {
    ip: String,
    ready: bool,
    serving: bool,
    terminating: bool,
    hostname: Option<String>,
    node_name: Option<String>,
    target_ref: Option<Value>,
}

/// The ports of one group: (name, port, protocol, appProtocol).
type Ports = Vec<(String, i32, String, Option<String>)>;

fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The port a Service port's targetPort names in `pod`, as Kubernetes' `FindPort` does.
fn resolve_target(pod: &Value, target: &Value, protocol: &str) -> Option<i32> {
    match target {
        Value::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
        Value::String(name) => {
            let containers = pod.pointer("/spec/containers").and_then(Value::as_array)?;
            containers
                .iter()
                .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                .find(|p| {
                    p["name"] == name.as_str()
                        && p["protocol"].as_str().unwrap_or("TCP") == protocol
                })
                .and_then(|p| p["containerPort"].as_i64())
                .and_then(|n| i32::try_from(n).ok())
        }
        _ => None,
    }
}

/// The resolved ports of `svc` for `pod`; `None` when a named port is missing.
fn ports_for(svc: &Value, pod: &Value) -> Option<Ports> {
    let mut out = Vec::new();
    for p in svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let protocol = p["protocol"].as_str().unwrap_or("TCP").to_string();
        let target = p
            .get("targetPort")
            .cloned()
            .unwrap_or_else(|| p["port"].clone());
        let port = resolve_target(pod, &target, &protocol)?;
        out.push((
            p["name"].as_str().unwrap_or_default().to_string(),
            port,
            protocol,
            p["appProtocol"].as_str().map(str::to_string),
        ));
    }
    Some(out)
}

fn pod_endpoint(svc: &Value, pod: &Value) -> Option<Endpoint> {
    let ip = meta::str_at(pod, "/status/podIP");
    if ip.is_empty() || matches!(meta::str_at(pod, "/status/phase"), "Succeeded" | "Failed") {
        return None;
    }
    let publish = svc
        .pointer("/spec/publishNotReadyAddresses")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let terminating = pod.pointer("/metadata/deletionTimestamp").is_some();
    let serving = publish || pod_ready(pod);
    let hostname = Some(meta::str_at(pod, "/spec/hostname"))
        .filter(|h| !h.is_empty() && meta::str_at(pod, "/spec/subdomain") == meta::name(svc))
        .map(str::to_string);
    Some(Endpoint {
        ip: ip.to_string(),
        ready: serving && (!terminating || publish),
        serving,
        terminating,
        hostname,
        node_name: Some(meta::str_at(pod, "/spec/nodeName"))
            .filter(|n| !n.is_empty())
            .map(str::to_string),
        target_ref: Some(json!({
            "kind": "Pod",
            "namespace": meta::namespace(pod),
            "name": meta::name(pod),
            "uid": meta::uid(pod),
        })),
    })
}

/// The endpoints of a selector Service, grouped by their resolved ports, each group sorted
/// by IP.
fn groups_for(svc: &Value, pods: &[&Value]) -> BTreeMap<String, (Ports, Vec<Endpoint>)> {
    let mut groups: BTreeMap<String, (Ports, Vec<Endpoint>)> = BTreeMap::new();
    for pod in pods {
        let (Some(ep), Some(ports)) = (pod_endpoint(svc, pod), ports_for(svc, pod)) else {
            continue;
        };
        let key = serde_json::to_string(&ports).unwrap_or_default();
        groups
            .entry(key)
            .or_insert_with(|| (ports, Vec::new()))
            .1
            .push(ep);
    }
    for (_, eps) in groups.values_mut() {
        eps.sort_by_key(|e| ip_key(&e.ip));
    }
    groups
}

fn ip_key(ip: &str) -> (u32, String) {
    match ip.parse::<std::net::Ipv4Addr>() {
        Ok(v4) => (u32::from(v4), String::new()),
        Err(_) => (u32::MAX, ip.to_string()),
    }
}

fn address(ep: &Endpoint) -> Value {
    let mut a = json!({"ip": ep.ip});
    if let Some(h) = &ep.hostname {
        a["hostname"] = json!(h);
    }
    if let Some(n) = &ep.node_name {
        a["nodeName"] = json!(n);
    }
    if let Some(t) = &ep.target_ref {
        a["targetRef"] = t.clone();
    }
    a
}

/// Ports as JSON: Endpoints leave an empty name out, EndpointSlices keep it (`""`).
fn ports_json(ports: &Ports, empty_name: bool) -> Value {
    Value::Array(
        ports
            .iter()
            .map(|(name, port, protocol, app)| {
                let mut p = json!({"port": port, "protocol": protocol});
                if empty_name || !name.is_empty() {
                    p["name"] = json!(name);
                }
                if let Some(a) = app {
                    p["appProtocol"] = json!(a);
                }
                p
            })
            .collect(),
    )
}

fn slice_endpoint(ep: &Endpoint) -> Value {
    let mut e = json!({
        "addresses": [ep.ip],
        "conditions": {"ready": ep.ready, "serving": ep.serving, "terminating": ep.terminating},
    });
    if let Some(h) = &ep.hostname {
        e["hostname"] = json!(h);
    }
    if let Some(n) = &ep.node_name {
        e["nodeName"] = json!(n);
    }
    if let Some(t) = &ep.target_ref {
        e["targetRef"] = t.clone();
    }
    e
}

fn is_headless(svc: &Value) -> bool {
    meta::str_at(svc, "/spec/clusterIP") == "None"
}

/// Labels every derived object carries: the Service's own, plus the headless marker.
fn derived_labels(svc: &Value) -> BTreeMap<String, String> {
    let mut labels = meta::labels(svc);
    labels.retain(|k, _| {
        k != SERVICE_NAME_LABEL
            && k != SLICE_MANAGED_BY_LABEL
            && k != ENDPOINTS_MANAGED_BY_LABEL
            && k != HEADLESS_LABEL
    });
    if is_headless(svc) {
        labels.insert(HEADLESS_LABEL.into(), String::new());
    }
    labels
}

/// The wanted Endpoints object of a selector Service.
fn wanted_endpoints(svc: &Value, groups: &BTreeMap<String, (Ports, Vec<Endpoint>)>) -> Value {
    let mut labels = derived_labels(svc);
    labels.insert(
        ENDPOINTS_MANAGED_BY_LABEL.into(),
        ENDPOINTS_CONTROLLER.into(),
    );
    let subsets: Vec<Value> = groups
        .values()
        .filter_map(|(ports, eps)| {
            let live: Vec<&Endpoint> = eps.iter().filter(|e| !e.terminating).collect();
            if live.is_empty() {
                return None;
            }
            let mut subset = json!({});
            let ready: Vec<Value> = live
                .iter()
                .filter(|e| e.ready)
                .map(|e| address(e))
                .collect();
            let not_ready: Vec<Value> = live
                .iter()
                .filter(|e| !e.ready)
                .map(|e| address(e))
                .collect();
            if !ready.is_empty() {
                subset["addresses"] = Value::Array(ready);
            }
            if !not_ready.is_empty() {
                subset["notReadyAddresses"] = Value::Array(not_ready);
            }
            if !ports.is_empty() {
                subset["ports"] = ports_json(ports, false);
            }
            Some(subset)
        })
        .collect();
    let mut obj = json!({
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": meta::name(svc), "namespace": meta::namespace(svc), "labels": labels},
    });
    if !subsets.is_empty() {
        obj["subsets"] = Value::Array(subsets);
    }
    obj
}

/// The wanted slices' bodies (without names) of a Service, by the controller `manager`.
fn wanted_slices(
    svc: &Value,
    manager: &str,
    groups: impl IntoIterator<Item = (Ports, Vec<Endpoint>)>,
) -> Vec<Value> {
    let mut labels = derived_labels(svc);
    labels.insert(SERVICE_NAME_LABEL.into(), meta::name(svc).into());
    labels.insert(SLICE_MANAGED_BY_LABEL.into(), manager.into());
    let owner = json!([{
        "apiVersion": "v1",
        "kind": "Service",
        "name": meta::name(svc),
        "uid": meta::uid(svc),
        "controller": true,
        "blockOwnerDeletion": true,
    }]);
    let mut groups: Vec<(Ports, Vec<Endpoint>)> = groups.into_iter().collect();
    if groups.is_empty() {
        // A Service with no endpoints still has one (empty) slice, as in Kubernetes, with
        // the ports it can name.
        groups.push((service_ports_unresolved(svc), Vec::new()));
    }
    let mut out = Vec::new();
    for (ports, eps) in groups {
        let chunks: Vec<&[Endpoint]> = if eps.is_empty() {
            vec![&[]]
        } else {
            eps.chunks(MAX_PER_SLICE).collect()
        };
        for chunk in chunks {
            out.push(json!({
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "namespace": meta::namespace(svc),
                    "labels": labels,
                    "ownerReferences": owner,
                },
                "addressType": "IPv4",
                "endpoints": chunk.iter().map(slice_endpoint).collect::<Vec<_>>(),
                "ports": ports_json(&ports, true),
            }));
        }
    }
    out
}

/// A Service's ports with numeric targetPorts, for the empty slice (Kubernetes lists the
/// ports it can; a named one without pods has no number).
fn service_ports_unresolved(svc: &Value) -> Ports {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let port = p
                .get("targetPort")
                .and_then(Value::as_i64)
                .and_then(|n| i32::try_from(n).ok())?;
            Some((
                p["name"].as_str().unwrap_or_default().to_string(),
                port,
                p["protocol"].as_str().unwrap_or("TCP").to_string(),
                p["appProtocol"].as_str().map(str::to_string),
            ))
        })
        .collect()
}

/// The groups of a user's Endpoints object, for mirroring.
fn mirrored_groups(ep: &Value) -> Vec<(Ports, Vec<Endpoint>)> {
    let mut out = Vec::new();
    for subset in ep["subsets"].as_array().into_iter().flatten() {
        let ports: Ports = subset["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p["name"].as_str().unwrap_or_default().to_string(),
                    i32::try_from(p["port"].as_i64()?).ok()?,
                    p["protocol"].as_str().unwrap_or("TCP").to_string(),
                    p["appProtocol"].as_str().map(str::to_string),
                ))
            })
            .collect();
        let mut eps = Vec::new();
        for (field, ready) in [("addresses", true), ("notReadyAddresses", false)] {
            for a in subset[field].as_array().into_iter().flatten() {
                let ip = a["ip"].as_str().unwrap_or_default();
                if ip.parse::<std::net::Ipv4Addr>().is_err() {
                    continue;
                }
                eps.push(Endpoint {
                    ip: ip.to_string(),
                    ready,
                    serving: ready,
                    terminating: false,
                    hostname: a["hostname"].as_str().map(str::to_string),
                    node_name: a["nodeName"].as_str().map(str::to_string),
                    target_ref: a.get("targetRef").cloned(),
                });
            }
        }
        eps.sort_by_key(|e| ip_key(&e.ip));
        out.push((ports, eps));
    }
    out
}

fn has_selector(svc: &Value) -> bool {
    svc.pointer("/spec/selector")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty())
        && meta::str_at(svc, "/spec/type") != "ExternalName"
}

/// One pass: true when something must be retried soon.
pub(super) fn reconcile_all(store: &Store) -> bool {
    let kinds = [
        ("v1", "Service"),
        ("v1", "Pod"),
        ("v1", "Endpoints"),
        ("discovery.k8s.io/v1", "EndpointSlice"),
    ];
    let mut lists = Vec::new();
    for (gv, kind) in kinds {
        let Some(rt) = registry::by_kind(gv, kind) else {
            return false;
        };
        match store.list(rt, None) {
            Ok((items, _)) => lists.push(items),
            Err(e) => {
                tracing::warn!(error = %e, controller = "endpoints", "cannot list");
                return true;
            }
        }
    }
    let [services, pods, endpoints, slices]: [Vec<Value>; 4] = match lists.try_into() {
        Ok(l) => l,
        Err(_) => return true,
    };
    let key = |o: &Value| (meta::namespace(o).to_string(), meta::name(o).to_string());
    let services: BTreeMap<_, _> = services.iter().map(|s| (key(s), s)).collect();
    let endpoints: BTreeMap<_, _> = endpoints.iter().map(|e| (key(e), e)).collect();
    let mut pods_by_ns: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for p in &pods {
        pods_by_ns.entry(meta::namespace(p)).or_default().push(p);
    }
    // Existing slices by (namespace, service) and manager.
    let mut slices_of: BTreeMap<(String, String), Vec<&Value>> = BTreeMap::new();
    for s in &slices {
        let labels = meta::labels(s);
        let manager = labels.get(SLICE_MANAGED_BY_LABEL).map(String::as_str);
        if !matches!(manager, Some(SLICE_CONTROLLER | MIRROR_CONTROLLER)) {
            continue;
        }
        let Some(svc) = labels.get(SERVICE_NAME_LABEL) else {
            continue;
        };
        slices_of
            .entry((meta::namespace(s).to_string(), svc.clone()))
            .or_default()
            .push(s);
    }

    let mut pending = false;
    let mut done: BTreeSet<(String, String)> = BTreeSet::new();
    for (k, svc) in &services {
        if svc.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        let existing = slices_of.get(k).cloned().unwrap_or_default();
        let result = if has_selector(svc) {
            let selector = svc
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect::<BTreeMap<_, _>>()
                })
                .unwrap_or_default();
            let selector = LabelSelector::from_labels(&selector);
            let matching: Vec<&Value> = pods_by_ns
                .get(k.0.as_str())
                .into_iter()
                .flatten()
                .copied()
                .filter(|p| selector.matches(&meta::labels(p)))
                .collect();
            let groups = groups_for(svc, &matching);
            let wanted_ep = wanted_endpoints(svc, &groups);
            sync_endpoints(store, endpoints.get(k).copied(), wanted_ep).and_then(|()| {
                sync_slices(
                    store,
                    svc,
                    SLICE_CONTROLLER,
                    &existing,
                    wanted_slices(svc, SLICE_CONTROLLER, groups.into_values()),
                )
            })
        } else if meta::str_at(svc, "/spec/type") != "ExternalName"
            && let Some(ep) = endpoints.get(k).filter(|e| !managed_endpoints(e))
        {
            sync_slices(
                store,
                svc,
                MIRROR_CONTROLLER,
                &existing,
                wanted_slices(svc, MIRROR_CONTROLLER, mirrored_groups(ep)),
            )
        } else {
            // Nothing of this Service's is managed here: its slices (if any) go below.
            continue;
        };
        match result {
            Ok(()) => {
                done.insert(k.clone());
            }
            Err(e) => {
                tracing::warn!(error = %e, service = %format!("{}/{}", k.0, k.1), "cannot update endpoints");
                pending = true;
            }
        }
    }
    // What belongs to no Service (any more): the controller's Endpoints, and slices.
    let ep_rt = registry::by_kind("v1", "Endpoints");
    for (k, ep) in &endpoints {
        let svc_selects = services.get(k).is_some_and(|s| has_selector(s));
        if managed_endpoints(ep) && !svc_selects {
            pending |= delete(store, ep_rt, ep).is_err();
        }
    }
    let slice_rt = registry::by_kind("discovery.k8s.io/v1", "EndpointSlice");
    for (k, list) in &slices_of {
        if done.contains(k) {
            continue;
        }
        for s in list {
            pending |= delete(store, slice_rt, s).is_err();
        }
    }
    pending
}

fn managed_endpoints(ep: &Value) -> bool {
    meta::labels(ep)
        .get(ENDPOINTS_MANAGED_BY_LABEL)
        .map(String::as_str)
        == Some(ENDPOINTS_CONTROLLER)
}

fn delete(
    store: &Store,
    rt: Option<&'static crate::api::ResourceType>,
    obj: &Value,
) -> Result<(), StoreError> {
    let Some(rt) = rt else { return Ok(()) };
    let opts = DeleteOptions {
        precondition_uid: Some(meta::uid(obj).to_string()),
        ..Default::default()
    };
    match store.delete(rt, Some(meta::namespace(obj)), meta::name(obj), &opts) {
        Ok(_) | Err(StoreError::Api(ApiError::NotFound(_) | ApiError::Conflict { .. })) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The part of an object the controller decides (what is compared before a write).
fn content(obj: &Value, fields: &[&str]) -> Value {
    let mut out = json!({
        "labels": obj.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
    });
    for f in fields {
        out[*f] = obj.get(*f).cloned().unwrap_or(Value::Null);
    }
    out
}

fn sync_endpoints(store: &Store, current: Option<&Value>, wanted: Value) -> Result<(), StoreError> {
    let Some(rt) = registry::by_kind("v1", "Endpoints") else {
        return Ok(());
    };
    let ns = meta::namespace(&wanted).to_string();
    match current {
        None => match store.create(rt, Some(&ns), wanted, false) {
            Ok(_) | Err(StoreError::Api(ApiError::AlreadyExists(_))) => Ok(()),
            Err(e) => Err(e),
        },
        Some(cur) if content(cur, &["subsets"]) == content(&wanted, &["subsets"]) => Ok(()),
        Some(cur) => overwrite(store, rt, cur, &wanted, &["subsets"]),
    }
}

/// Writes `wanted`'s labels and `fields` over the stored `cur` (a field `wanted` lacks is
/// removed), only while the stored object is still `cur`'s (same uid). Gone or replaced
/// meanwhile: nothing to do (the next pass sees the new state).
fn overwrite(
    store: &Store,
    rt: &'static crate::api::ResourceType,
    cur: &Value,
    wanted: &Value,
    fields: &[&str],
) -> Result<(), StoreError> {
    let r = store.update_same(rt, cur, Subresource::Main, |stored| {
        let mut new = stored.clone();
        meta::set(
            &mut new,
            "labels",
            wanted.pointer("/metadata/labels").cloned(),
        );
        if let Some(m) = new.as_object_mut() {
            for f in fields {
                match wanted.get(*f) {
                    Some(v) => m.insert((*f).to_string(), v.clone()),
                    None => m.remove(*f),
                };
            }
        }
        Ok(new)
    });
    match r {
        Ok(_) | Err(StoreError::Api(ApiError::NotFound(_) | ApiError::BadRequest { .. })) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes the stored slices of one Service (by one manager) the wanted ones: a slice with
/// the same ports is updated in place, others are reused, created or deleted.
fn sync_slices(
    store: &Store,
    svc: &Value,
    manager: &str,
    existing: &[&Value],
    wanted: Vec<Value>,
) -> Result<(), StoreError> {
    let Some(rt) = registry::by_kind("discovery.k8s.io/v1", "EndpointSlice") else {
        return Ok(());
    };
    let ns = meta::namespace(svc);
    let fields = ["endpoints", "ports", "addressType"];
    // Only this manager's slices of this very Service (a recreated one has a new uid).
    let (mut mine, stale): (Vec<&Value>, Vec<&Value>) = existing.iter().partition(|s| {
        meta::labels(s)
            .get(SLICE_MANAGED_BY_LABEL)
            .map(String::as_str)
            == Some(manager)
            && s.pointer("/metadata/ownerReferences/0/uid")
                .and_then(Value::as_str)
                == Some(meta::uid(svc))
    });
    for s in stale {
        delete(store, Some(rt), s)?;
    }
    let mut unplaced = Vec::new();
    for w in wanted {
        // An unchanged slice first, then one with the same ports.
        let pos = mine
            .iter()
            .position(|s| content(s, &fields) == content(&w, &fields))
            .or_else(|| mine.iter().position(|s| s.get("ports") == w.get("ports")));
        match pos {
            Some(i) => {
                let cur = mine.remove(i);
                update_slice(store, rt, cur, &w)?;
            }
            None => unplaced.push(w),
        }
    }
    for w in unplaced {
        if let Some(cur) = mine.pop() {
            update_slice(store, rt, cur, &w)?;
        } else {
            let mut w = w;
            meta::set(
                &mut w,
                "generateName",
                Some(json!(format!("{}-", meta::name(svc)))),
            );
            store.create(rt, Some(ns), w, false)?;
        }
    }
    for s in mine {
        delete(store, Some(rt), s)?;
    }
    Ok(())
}

fn update_slice(
    store: &Store,
    rt: &'static crate::api::ResourceType,
    cur: &Value,
    wanted: &Value,
) -> Result<(), StoreError> {
    let fields = ["endpoints", "ports", "addressType"];
    if content(cur, &fields) == content(wanted, &fields) {
        return Ok(());
    }
    if cur.get("addressType") != wanted.get("addressType") {
        // Immutable: replace the slice.
        delete(store, Some(rt), cur)?;
        let mut w = wanted.clone();
        let svc = meta::labels(cur)
            .get(SERVICE_NAME_LABEL)
            .cloned()
            .unwrap_or_default();
        meta::set(&mut w, "generateName", Some(json!(format!("{svc}-"))));
        store.create(rt, Some(meta::namespace(cur)), w, false)?;
        return Ok(());
    }
    overwrite(store, rt, cur, wanted, &fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(ports: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default", "uid": "s1",
                "labels": {"app": "web"}},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.5", "ports": ports}})
    }

    fn pod(name: &str, ip: &str, ready: bool, ports: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "default", "uid": format!("u-{name}"),
                "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": ports}]},
            "status": {"phase": "Running", "podIP": ip, "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    }

    #[test]
    fn named_target_ports_resolve_per_pod_and_group_pods() {
        let s = svc(json!([{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web"}]));
        let a = pod(
            "a",
            "10.0.0.3",
            true,
            json!([{"name": "web", "containerPort": 8080}]),
        );
        let b = pod(
            "b",
            "10.0.0.2",
            false,
            json!([{"name": "web", "containerPort": 9090}]),
        );
        let c = pod("c", "10.0.0.4", true, json!([]));
        let groups = groups_for(&s, &[&a, &b, &c]);
        assert_eq!(groups.len(), 2, "two port sets; c lacks the named port");
        let ep = wanted_endpoints(&s, &groups);
        let subsets = ep["subsets"].as_array().unwrap();
        assert_eq!(subsets.len(), 2);
        let all: Vec<(&str, i64, bool)> = subsets
            .iter()
            .flat_map(|ss| {
                let port = ss["ports"][0]["port"].as_i64().unwrap();
                let r = ss["addresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(move |a| (a["ip"].as_str().unwrap(), port, true));
                let n = ss["notReadyAddresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(move |a| (a["ip"].as_str().unwrap(), port, false));
                r.chain(n)
            })
            .collect();
        assert!(all.contains(&("10.0.0.3", 8080, true)));
        assert!(all.contains(&("10.0.0.2", 9090, false)));
        assert_eq!(
            ep["metadata"]["labels"][ENDPOINTS_MANAGED_BY_LABEL],
            ENDPOINTS_CONTROLLER
        );
    }

    #[test]
    fn slices_mark_terminating_pods_and_chunk_at_one_hundred() {
        let s = svc(json!([{"name": "", "port": 80, "protocol": "TCP", "targetPort": 8080}]));
        let mut pods: Vec<Value> = (0..150)
            .map(|i| {
                pod(
                    &format!("p{i}"),
                    &format!("10.0.{}.{}", i / 200, i % 200 + 1),
                    true,
                    json!([]),
                )
            })
            .collect();
        pods[0]["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let refs: Vec<&Value> = pods.iter().collect();
        let groups = groups_for(&s, &refs);
        let slices = wanted_slices(&s, SLICE_CONTROLLER, groups.clone().into_values());
        assert_eq!(slices.len(), 2);
        let eps: Vec<&Value> = slices
            .iter()
            .flat_map(|s| s["endpoints"].as_array().unwrap())
            .collect();
        assert_eq!(eps.len(), 150);
        let term = eps.iter().find(|e| e["targetRef"]["name"] == "p0").unwrap();
        assert_eq!(
            term["conditions"],
            json!({"ready": false, "serving": true, "terminating": true})
        );
        assert_eq!(slices[0]["metadata"]["labels"][SERVICE_NAME_LABEL], "web");
        assert_eq!(slices[0]["metadata"]["ownerReferences"][0]["uid"], "s1");
        // Endpoints leave terminating pods out.
        let ep = wanted_endpoints(&s, &groups);
        let n: usize = ep["subsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["addresses"].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(n, 149);
    }

    #[test]
    fn no_pods_still_make_one_empty_slice_and_mirroring_keeps_readiness() {
        let s = svc(json!([{"name": "", "port": 80, "protocol": "TCP", "targetPort": 8080}]));
        let slices = wanted_slices(&s, SLICE_CONTROLLER, Vec::new());
        assert_eq!(slices.len(), 1);
        assert_eq!(slices[0]["endpoints"], json!([]));
        assert_eq!(slices[0]["ports"][0]["port"], 8080);
        let ep = json!({"subsets": [{"addresses": [{"ip": "10.1.0.1"}],
            "notReadyAddresses": [{"ip": "10.1.0.2"}], "ports": [{"port": 9000}]}]});
        let g = mirrored_groups(&ep);
        assert_eq!(
            g[0].1.iter().map(|e| e.ready).collect::<Vec<_>>(),
            [true, false]
        );
    }
}
