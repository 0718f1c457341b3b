//! The ReplicaSet controller: keeps `spec.replicas` pods from the template, with
//! Kubernetes' semantics. It owns pods through a controller ownerReference, adopts matching
//! orphans and releases pods whose labels no longer match; creates pods named
//! `<replicaset>-<5 characters>`; deletes surplus pods in Kubernetes' order (unscheduled,
//! then pending, then not ready, then the newest, then those restarted most); writes
//! `status` (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
//! observedGeneration) only when it changed; records SuccessfulCreate / SuccessfulDelete.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::api::selector::LabelSelector;
use crate::api::watch::EventType as ChangeType;
use crate::api::{ApiError, meta, registry};
use crate::events::{EventType, Recorder};
use crate::store::{Change, DeleteOptions, Store, StoreError, Subresource};

pub(super) fn relevant(c: &Change) -> bool {
    match c.resource.kind {
        "ReplicaSet" => true,
        // Its own pods changing (readiness, deletion), or a pod it might adopt.
        "Pod" => c.kind != ChangeType::Modified || owner_uid(&c.object).is_some(),
        _ => false,
    }
}

/// The characters of Kubernetes' generated name suffixes (no vowels, no look-alikes).
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A random 5-character suffix as `generateName` makes it.
pub fn name_suffix() -> String {
    let bytes = uuid::Uuid::new_v4();
    bytes
        .as_bytes()
        .iter()
        .take(5)
        .map(|b| SUFFIX_ALPHABET[usize::from(*b) % SUFFIX_ALPHABET.len()] as char)
        .collect()
}

fn owner_uid(pod: &Value) -> Option<&str> {
    pod.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r["uid"].as_str())
}

fn is_active(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_none()
        && !matches!(meta::str_at(pod, "/status/phase"), "Succeeded" | "Failed")
}

/// The time the pod became Ready, when it is.
fn ready_since(pod: &Value) -> Option<jiff::Timestamp> {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")
        .and_then(|c| c["lastTransitionTime"].as_str())
        .and_then(|t| t.parse().ok())
}

/// Ready, and for at least `min_ready` seconds.
pub fn is_available(pod: &Value, min_ready: i64, now: jiff::Timestamp) -> bool {
    match ready_since(pod) {
        Some(since) => min_ready <= 0 || now.duration_since(since).as_secs() >= min_ready,
        None => false,
    }
}

/// The order in which surplus pods go (Kubernetes' `ActivePods` ranking): first the key
/// that sorts lowest.
pub fn deletion_rank(
    pod: &Value,
) -> (
    u8,
    u8,
    u8,
    std::cmp::Reverse<String>,
    std::cmp::Reverse<u64>,
) {
    let scheduled = u8::from(!meta::str_at(pod, "/spec/nodeName").is_empty());
    let phase = match meta::str_at(pod, "/status/phase") {
        "Pending" | "" => 0,
        "Unknown" => 1,
        _ => 2,
    };
    let ready = u8::from(ready_since(pod).is_some());
    let created = meta::str_at(pod, "/metadata/creationTimestamp").to_string();
    let restarts: u64 = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s["restartCount"].as_u64()).sum())
        .unwrap_or(0);
    (
        scheduled,
        phase,
        ready,
        std::cmp::Reverse(created),
        std::cmp::Reverse(restarts),
    )
}

/// A new pod of `rs` from its template.
pub fn pod_from_template(rs: &Value) -> Value {
    let template = &rs["spec"]["template"];
    let mut metadata = template["metadata"].clone();
    if !metadata.is_object() {
        metadata = json!({});
    }
    metadata["name"] = json!(format!("{}-{}", meta::name(rs), name_suffix()));
    metadata["namespace"] = json!(meta::namespace(rs));
    metadata["ownerReferences"] = json!([{
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": meta::name(rs),
        "uid": meta::uid(rs),
        "controller": true,
        "blockOwnerDeletion": true,
    }]);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": template["spec"].clone(),
    })
}

/// One pass over every ReplicaSet; true when something must be looked at again soon.
pub(super) fn reconcile_all(store: &Store, events: &Recorder) -> bool {
    let Some((sets, pods)) = super::list_two(
        store,
        ("apps/v1", "ReplicaSet"),
        ("v1", "Pod"),
        "replicaset",
    ) else {
        return true;
    };
    let mut by_ns: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for p in &pods {
        by_ns.entry(meta::namespace(p)).or_default().push(p);
    }
    let mut again = false;
    for rs in &sets {
        if rs.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        let span = tracing::debug_span!("reconcile", controller = "replicaset", rs = %format!("{}/{}", meta::namespace(rs), meta::name(rs)));
        let _e = span.enter();
        match reconcile(
            store,
            events,
            rs,
            by_ns
                .get(meta::namespace(rs))
                .map(Vec::as_slice)
                .unwrap_or_default(),
        ) {
            Ok(a) => again |= a,
            Err(e) => {
                tracing::warn!(error = %e, "replicaset reconcile failed; retrying");
                again = true;
            }
        }
    }
    again
}

fn reconcile(
    store: &Store,
    events: &Recorder,
    rs: &Value,
    pods: &[&Value],
) -> Result<bool, StoreError> {
    let pod_rt = registry::by_kind("v1", "Pod").ok_or_else(|| ApiError::internal("no Pod kind"))?;
    let rs_rt = registry::by_kind("apps/v1", "ReplicaSet")
        .ok_or_else(|| ApiError::internal("no ReplicaSet kind"))?;
    let ns = meta::namespace(rs);
    let uid = meta::uid(rs);
    let selector = serde_json::from_value::<
        k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    >(rs["spec"]["selector"].clone())
    .ok()
    .and_then(|s| LabelSelector::from_k8s(&s).ok())
    .filter(|s| !s.is_empty());
    let Some(selector) = selector else {
        return Ok(false);
    };
    let mut owned: Vec<Value> = Vec::new();
    for p in pods {
        let matches = selector.matches(&meta::labels(p));
        match owner_uid(p) {
            Some(o) if o == uid => {
                if matches {
                    owned.push((*p).clone());
                } else {
                    // Its labels changed: release it.
                    let _ = store.update_with(
                        pod_rt,
                        Some(ns),
                        meta::name(p),
                        Subresource::Main,
                        false,
                        |obj| {
                            let mut obj = obj.clone();
                            if let Some(refs) = obj
                                .pointer_mut("/metadata/ownerReferences")
                                .and_then(Value::as_array_mut)
                            {
                                refs.retain(|r| r["uid"] != uid);
                            }
                            Ok(obj)
                        },
                    );
                }
            }
            None if matches && is_active(p) => {
                // Adopt the orphan.
                let rs_name = meta::name(rs).to_string();
                let rs_uid = uid.to_string();
                if let Ok(adopted) = store.update_with(pod_rt, Some(ns), meta::name(p), Subresource::Main, false, move |obj| {
                    let mut obj = obj.clone();
                    if owner_uid(&obj).is_some() {
                        return Err(ApiError::bad_request("already owned"));
                    }
                    let mut refs = obj.pointer("/metadata/ownerReferences").and_then(Value::as_array).cloned().unwrap_or_default();
                    refs.push(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs_name, "uid": rs_uid, "controller": true, "blockOwnerDeletion": true}));
                    obj["metadata"]["ownerReferences"] = Value::Array(refs);
                    Ok(obj)
                }) {
                    owned.push(adopted);
                }
            }
            _ => {}
        }
    }
    let mut active: Vec<Value> = owned.iter().filter(|p| is_active(p)).cloned().collect();
    let want = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
    if active.len() < want {
        for _ in active.len()..want {
            let pod = pod_from_template(rs);
            match store.create(pod_rt, Some(ns), pod, false) {
                Ok(created) => {
                    events.record(
                        rs,
                        EventType::Normal,
                        "SuccessfulCreate",
                        &format!("Created pod: {}", meta::name(&created)),
                    );
                    active.push(created);
                }
                Err(StoreError::Api(ApiError::AlreadyExists(_))) => {}
                Err(e) => {
                    events.record(
                        rs,
                        EventType::Warning,
                        "FailedCreate",
                        &format!("Error creating: {e}"),
                    );
                    return Err(e);
                }
            }
        }
    } else if active.len() > want {
        active.sort_by_key(deletion_rank);
        let surplus: Vec<Value> = active.drain(..active.len() - want).collect();
        for p in surplus {
            match store.delete(
                pod_rt,
                Some(ns),
                meta::name(&p),
                &DeleteOptions {
                    precondition_uid: Some(meta::uid(&p).to_string()),
                    ..Default::default()
                },
            ) {
                Ok(_) | Err(StoreError::Api(ApiError::NotFound(_))) => {
                    events.record(
                        rs,
                        EventType::Normal,
                        "SuccessfulDelete",
                        &format!("Deleted pod: {}", meta::name(&p)),
                    );
                }
                Err(e) => return Err(e),
            }
        }
    }
    // Status.
    let now = jiff::Timestamp::now();
    let min_ready = rs["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let template_labels = rs
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let fully_labeled = active
        .iter()
        .filter(|p| {
            template_labels.iter().all(|(k, v)| {
                p.pointer(&format!(
                    "/metadata/labels/{}",
                    k.replace('~', "~0").replace('/', "~1")
                )) == Some(v)
            })
        })
        .count();
    let ready = active.iter().filter(|p| ready_since(p).is_some()).count();
    let available = active
        .iter()
        .filter(|p| is_available(p, min_ready, now))
        .count();
    let waiting_for_available = ready > available;
    let mut status = json!({
        "replicas": active.len(),
        "fullyLabeledReplicas": fully_labeled,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": rs["metadata"]["generation"].as_i64().unwrap_or(1),
    });
    if let Some(obj) = status.as_object_mut() {
        // Kubernetes omits zero counts.
        obj.retain(|k, v| k == "replicas" || k == "observedGeneration" || v.as_u64() != Some(0));
    }
    let mut current = rs["status"].clone();
    if let Some(c) = current.as_object_mut() {
        c.remove("conditions");
    }
    if current != status {
        let rs_uid = uid.to_string();
        let status2 = status.clone();
        match store.update_with(
            rs_rt,
            Some(ns),
            meta::name(rs),
            Subresource::Status,
            false,
            move |obj| {
                if meta::uid(obj) != rs_uid {
                    return Err(ApiError::bad_request("replaced"));
                }
                let mut obj = obj.clone();
                let conditions = obj["status"]["conditions"].clone();
                obj["status"] = status2;
                if !conditions.is_null() {
                    obj["status"]["conditions"] = conditions;
                }
                Ok(obj)
            },
        ) {
            Ok(_)
            | Err(StoreError::Api(
                ApiError::NotFound(_) | ApiError::BadRequest { .. } | ApiError::Conflict { .. },
            )) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(waiting_for_available)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_templates() {
        let s = name_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.bytes().all(|b| SUFFIX_ALPHABET.contains(&b)));
        let rs = json!({"metadata": {"name": "web-7d9f", "namespace": "prod", "uid": "u1"},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let p = pod_from_template(&rs);
        assert!(meta::name(&p).starts_with("web-7d9f-"));
        assert_eq!(p["metadata"]["labels"]["app"], "web");
        assert_eq!(p["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(p["spec"]["containers"][0]["name"], "c");
    }

    #[test]
    fn surplus_pods_go_in_kubernetes_order() {
        let ready = |t: &str| json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]);
        let mut pods = [
            json!({"metadata": {"name": "old-ready", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"nodeName": "n"}, "status": {"phase": "Running", "conditions": ready("2026-01-01T00:00:01Z")}}),
            json!({"metadata": {"name": "new-ready", "creationTimestamp": "2026-01-02T00:00:00Z"}, "spec": {"nodeName": "n"}, "status": {"phase": "Running", "conditions": ready("2026-01-02T00:00:01Z")}}),
            json!({"metadata": {"name": "unscheduled", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {}}),
            json!({"metadata": {"name": "pending", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"nodeName": "n"}, "status": {"phase": "Pending"}}),
            json!({"metadata": {"name": "not-ready", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"nodeName": "n"}, "status": {"phase": "Running"}}),
        ];
        pods.sort_by_key(deletion_rank);
        let order: Vec<&str> = pods.iter().map(meta::name).collect();
        assert_eq!(
            order,
            vec![
                "unscheduled",
                "pending",
                "not-ready",
                "new-ready",
                "old-ready"
            ]
        );
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let now: jiff::Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        let p = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:05Z"}]}});
        assert!(is_available(&p, 0, now));
        assert!(is_available(&p, 5, now));
        assert!(!is_available(&p, 6, now));
        assert!(!is_available(&json!({}), 0, now));
    }
}
