//! The StatefulSet controller, with Kubernetes' semantics (`pkg/controller/statefulset`):
//!
//! - Pods are named `<set>-<ordinal>` from `spec.ordinals.start`, carry the template's
//!   labels plus `statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index` and
//!   `controller-revision-hash`, and get `hostname` = their name and `subdomain` =
//!   `spec.serviceName`.
//! - `volumeClaimTemplates`: the claim `<template>-<set>-<ordinal>` is created before its pod
//!   (labelled with the set's selector) and is never deleted with the pod;
//!   `persistentVolumeClaimRetentionPolicy` `Delete` adds the owner references through which
//!   the garbage collector removes claims when the set is deleted or scaled down.
//! - `OrderedReady`: one pod at a time, each only once every lower one is Running and
//!   Ready; scale-down from the highest ordinal, waiting for each to be gone. `Parallel`:
//!   all at once.
//! - Revisions are `ControllerRevision`s `<set>-<hash>` (kept up to
//!   `revisionHistoryLimit`); `RollingUpdate` replaces pods from the highest ordinal down to
//!   `partition`, one at a time, waiting for each to be Ready; `OnDelete` gives only pods
//!   created anew the update revision.
//! - `status` as Kubernetes writes it; events `SuccessfulCreate` / `SuccessfulDelete` /
//!   `FailedCreate` with Kubernetes' messages.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::api::selector::LabelSelector;
use crate::api::watch::EventType as ChangeType;
use crate::api::{ApiError, meta, registry};
use crate::events::{EventType, Recorder};
use crate::store::{Change, DeleteOptions, Store, StoreError, Subresource};

/// The label naming a pod's revision.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// The label with a pod's own name (services can select one pod).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label with a pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// The label a ControllerRevision carries with its hash.
const HASH_LABEL: &str = "controller.kubernetes.io/hash";

pub(super) fn relevant(c: &Change) -> bool {
    match c.resource.kind {
        "StatefulSet" => true,
        "Pod" => c.kind != ChangeType::Modified || controller_uid(&c.object).is_some(),
        "PersistentVolumeClaim" => c.kind == ChangeType::Deleted,
        _ => false,
    }
}

fn controller_uid(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r["uid"].as_str())
}

fn is_terminating(pod: &Value) -> bool {
    pod.pointer("/metadata/deletionTimestamp").is_some()
}

fn is_finished(pod: &Value) -> bool {
    matches!(meta::str_at(pod, "/status/phase"), "Succeeded" | "Failed")
}

fn is_running_and_ready(pod: &Value) -> bool {
    meta::str_at(pod, "/status/phase") == "Running"
        && super::replicaset::is_available(pod, 0, jiff::Timestamp::now())
}

fn is_available(pod: &Value, min_ready: i64, now: jiff::Timestamp) -> bool {
    meta::str_at(pod, "/status/phase") == "Running"
        && super::replicaset::is_available(pod, min_ready, now)
}

/// The ordinal in `<set>-<ordinal>`, when `pod` is named so.
pub fn ordinal_of(set_name: &str, pod_name: &str) -> Option<i64> {
    let rest = pod_name.strip_prefix(set_name)?.strip_prefix('-')?;
    if rest.is_empty()
        || !rest.bytes().all(|b| b.is_ascii_digit())
        || rest.starts_with("0") && rest.len() > 1
    {
        return None;
    }
    rest.parse().ok()
}

/// The claim of template `claim` for the pod of `ordinal`.
pub fn claim_name(claim: &str, set_name: &str, ordinal: i64) -> String {
    format!("{claim}-{set_name}-{ordinal}")
}

/// The template a revision holds, as `data.spec.template`.
fn revision_template(rev: &Value) -> Value {
    let mut t = rev
        .pointer("/data/spec/template")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(o) = t.as_object_mut() {
        o.remove("$patch");
    }
    t
}

/// The hash naming the revision of `template`.
pub fn revision_hash(template: &Value) -> String {
    super::deployment::template_hash(template)
}

fn selector_labels(sts: &Value) -> serde_json::Map<String, Value> {
    sts.pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn claim_templates(sts: &Value) -> Vec<Value> {
    sts.pointer("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn retention(sts: &Value, which: &str) -> bool {
    meta::str_at(
        sts,
        &format!("/spec/persistentVolumeClaimRetentionPolicy/{which}"),
    ) == "Delete"
}

fn owner_ref(kind: &str, api_version: &str, obj: &Value, controller: bool) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": meta::name(obj),
        "uid": meta::uid(obj),
        "controller": controller,
        "blockOwnerDeletion": true,
    })
}

/// The pod of `ordinal` from `template` (of revision `revision`).
pub fn new_pod(sts: &Value, template: &Value, revision: &str, ordinal: i64) -> Value {
    let set_name = meta::name(sts);
    let name = format!("{set_name}-{ordinal}");
    let mut metadata = template["metadata"].clone();
    if !metadata.is_object() {
        metadata = json!({});
    }
    metadata["name"] = json!(name);
    metadata["namespace"] = json!(meta::namespace(sts));
    if !metadata["labels"].is_object() {
        metadata["labels"] = json!({});
    }
    metadata["labels"][POD_NAME_LABEL] = json!(name);
    metadata["labels"][POD_INDEX_LABEL] = json!(ordinal.to_string());
    metadata["labels"][REVISION_LABEL] = json!(revision);
    metadata["ownerReferences"] = json!([owner_ref("StatefulSet", "apps/v1", sts, true)]);
    let mut spec = template["spec"].clone();
    if !spec.is_object() {
        spec = json!({});
    }
    spec["hostname"] = json!(name);
    let service = meta::str_at(sts, "/spec/serviceName");
    if !service.is_empty() {
        spec["subdomain"] = json!(service);
    }
    // Each claim template becomes a volume of the same name, replacing one the template
    // may declare.
    let mut volumes: Vec<Value> = spec["volumes"].as_array().cloned().unwrap_or_default();
    for claim in claim_templates(sts) {
        let claim_tmpl = meta::name(&claim).to_string();
        volumes.retain(|v| v["name"] != claim_tmpl.as_str());
        volumes.push(json!({
            "name": claim_tmpl,
            "persistentVolumeClaim": {"claimName": claim_name(&claim_tmpl, set_name, ordinal)},
        }));
    }
    if !volumes.is_empty() {
        spec["volumes"] = Value::Array(volumes);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}

/// The claim of template `claim` for the pod of `ordinal`.
pub fn new_claim(sts: &Value, claim: &Value, ordinal: i64) -> Value {
    let mut metadata = claim["metadata"].clone();
    if !metadata.is_object() {
        metadata = json!({});
    }
    let name = claim_name(meta::name(claim), meta::name(sts), ordinal);
    metadata["name"] = json!(name);
    metadata["namespace"] = json!(meta::namespace(sts));
    if !metadata["labels"].is_object() {
        metadata["labels"] = json!({});
    }
    for (k, v) in selector_labels(sts) {
        metadata["labels"][k] = v;
    }
    if let Some(o) = metadata.as_object_mut() {
        for k in ["uid", "resourceVersion", "creationTimestamp", "generation"] {
            o.remove(k);
        }
    }
    if retention(sts, "whenDeleted") {
        metadata["ownerReferences"] = json!([owner_ref("StatefulSet", "apps/v1", sts, false)]);
    }
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata,
        "spec": claim["spec"].clone(),
    })
}

/// One pass over every StatefulSet; true when something must be looked at again soon.
pub(super) fn reconcile_all(store: &Store, events: &Recorder) -> bool {
    let Some((sets, pods)) = super::list_two(
        store,
        ("apps/v1", "StatefulSet"),
        ("v1", "Pod"),
        "statefulset",
    ) else {
        return true;
    };
    if sets.is_empty() {
        return false;
    }
    let Some((revisions, claims)) = super::list_two(
        store,
        ("apps/v1", "ControllerRevision"),
        ("v1", "PersistentVolumeClaim"),
        "statefulset",
    ) else {
        return true;
    };
    let mut again = false;
    for sts in &sets {
        if is_terminating(sts) {
            continue;
        }
        let span = tracing::debug_span!("reconcile", controller = "statefulset", sts = %format!("{}/{}", meta::namespace(sts), meta::name(sts)));
        let _e = span.enter();
        let ns = meta::namespace(sts);
        let uid = meta::uid(sts);
        let owned = |v: &&Value| meta::namespace(v) == ns && controller_uid(v) == Some(uid);
        let my_pods: Vec<Value> = pods.iter().filter(owned).cloned().collect();
        let orphans: Vec<Value> = pods
            .iter()
            .filter(|p| {
                meta::namespace(p) == ns && controller_uid(p).is_none() && !is_terminating(p)
            })
            .cloned()
            .collect();
        let my_revs: Vec<Value> = revisions.iter().filter(owned).cloned().collect();
        let ns_claims: BTreeMap<&str, &Value> = claims
            .iter()
            .filter(|c| meta::namespace(c) == ns)
            .map(|c| (meta::name(c), c))
            .collect();
        match reconcile(store, events, sts, my_pods, orphans, my_revs, &ns_claims) {
            Ok(a) => again |= a,
            Err(e) => {
                tracing::warn!(error = %e, "statefulset reconcile failed; retrying");
                again = true;
            }
        }
    }
    again
}

fn rt(api_version: &str, kind: &str) -> Result<&'static registry::ResourceType, StoreError> {
    registry::by_kind(api_version, kind)
        .ok_or_else(|| StoreError::Api(ApiError::internal(format!("no {kind} kind"))))
}

/// Finds or creates the revision of the current template; returns (all revisions sorted by
/// number, the update revision).
fn sync_revisions(
    store: &Store,
    sts: &Value,
    mut revs: Vec<Value>,
) -> Result<(Vec<Value>, Value), StoreError> {
    let rev_rt = rt("apps/v1", "ControllerRevision")?;
    let ns = meta::namespace(sts);
    let template = sts["spec"]["template"].clone();
    revs.sort_by_key(|r| r["revision"].as_i64().unwrap_or(0));
    let max = revs
        .last()
        .and_then(|r| r["revision"].as_i64())
        .unwrap_or(0);
    if let Some(i) = revs.iter().position(|r| revision_template(r) == template) {
        if revs[i]["revision"].as_i64().unwrap_or(0) < max {
            // A rollback to an earlier template: it becomes the newest revision again.
            let updated = store.update_with(
                rev_rt,
                Some(ns),
                meta::name(&revs[i]),
                Subresource::Main,
                false,
                move |cur| {
                    let mut cur = cur.clone();
                    cur["revision"] = json!(max + 1);
                    Ok(cur)
                },
            )?;
            revs.remove(i);
            revs.push(updated);
        }
        let update = revs.last().cloned().unwrap_or(Value::Null);
        return Ok((revs, update));
    }
    let hash = revision_hash(&template);
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels[HASH_LABEL] = json!(hash);
    let mut data_template = template.clone();
    if let Some(o) = data_template.as_object_mut() {
        o.insert("$patch".into(), json!("replace"));
    }
    // The set's annotations (its change cause) describe the revision, as in Kubernetes.
    let mut annotations = sts["metadata"]["annotations"].clone();
    if let Some(a) = annotations.as_object_mut() {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    } else {
        annotations = json!({});
    }
    let rev = json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": format!("{}-{hash}", meta::name(sts)),
            "namespace": ns,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_ref("StatefulSet", "apps/v1", sts, true)],
        },
        "data": {"spec": {"template": data_template}},
        "revision": max + 1,
    });
    let created = store.create(rev_rt, Some(ns), rev, false)?;
    revs.push(created.clone());
    Ok((revs, created))
}

fn reconcile(
    store: &Store,
    events: &Recorder,
    sts: &Value,
    mut pods: Vec<Value>,
    orphans: Vec<Value>,
    revs: Vec<Value>,
    claims: &BTreeMap<&str, &Value>,
) -> Result<bool, StoreError> {
    let pod_rt = rt("v1", "Pod")?;
    let sts_rt = rt("apps/v1", "StatefulSet")?;
    let ns = meta::namespace(sts);
    let set_name = meta::name(sts);
    let selector = serde_json::from_value::<
        k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    >(sts["spec"]["selector"].clone())
    .ok()
    .and_then(|s| LabelSelector::from_k8s(&s).ok())
    .filter(|s| !s.is_empty());
    let Some(selector) = selector else {
        return Ok(false);
    };
    // Orphans the selector matches are adopted, as Kubernetes' controllers do.
    for orphan in orphans
        .iter()
        .filter(|p| selector.matches(&meta::labels(p)))
    {
        let oref = owner_ref("StatefulSet", "apps/v1", sts, true);
        match store.update_with(
            pod_rt,
            Some(ns),
            meta::name(orphan),
            Subresource::Main,
            false,
            move |cur| {
                if controller_uid(cur).is_some() {
                    return Err(ApiError::bad_request("already owned"));
                }
                let mut cur = cur.clone();
                let mut refs = cur
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                refs.push(oref.clone());
                cur["metadata"]["ownerReferences"] = Value::Array(refs);
                Ok(cur)
            },
        ) {
            Ok(adopted) => pods.push(adopted),
            Err(StoreError::Api(
                ApiError::NotFound(_) | ApiError::BadRequest { .. } | ApiError::Conflict { .. },
            )) => {}
            Err(e) => return Err(e),
        }
    }
    let (revs, update_rev) = sync_revisions(store, sts, revs)?;
    let update_name = meta::name(&update_rev).to_string();
    let current_rev = revs
        .iter()
        .find(|r| meta::name(r) == meta::str_at(sts, "/status/currentRevision"))
        .cloned()
        .unwrap_or_else(|| update_rev.clone());
    let current_name = meta::name(&current_rev).to_string();
    let update_template = revision_template(&update_rev);
    let current_template = revision_template(&current_rev);

    let start = sts
        .pointer("/spec/ordinals/start")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .max(0);
    let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
    let parallel = meta::str_at(sts, "/spec/podManagementPolicy") == "Parallel";
    let monotonic = !parallel;
    let on_delete = meta::str_at(sts, "/spec/updateStrategy/type") == "OnDelete";
    let partition = sts
        .pointer("/spec/updateStrategy/rollingUpdate/partition")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let min_ready = sts["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let now = jiff::Timestamp::now();

    // Slots for the wanted ordinals; everything else owned is condemned.
    let mut slots: BTreeMap<i64, Option<Value>> =
        (start..start + replicas).map(|o| (o, None)).collect();
    let mut condemned: Vec<(i64, Value)> = Vec::new();
    for p in &pods {
        match ordinal_of(set_name, meta::name(p)) {
            Some(o) if slots.contains_key(&o) => {
                slots.insert(o, Some(p.clone()));
            }
            Some(o) => condemned.push((o, p.clone())),
            None => condemned.push((i64::MAX, p.clone())),
        }
    }
    condemned.sort_by_key(|(o, _)| std::cmp::Reverse(*o));
    let status_pods: Vec<Value> = pods.clone();

    let pass = || -> Result<bool, StoreError> {
        // Bring up the wanted pods.
        for (&ordinal, slot) in &slots {
            let pod_name = format!("{set_name}-{ordinal}");
            if let Some(p) = slot {
                if is_finished(p) && !is_terminating(p) {
                    // A finished pod is replaced under the same name once it is gone.
                    delete_pod(store, events, sts, p)?;
                    if monotonic {
                        return Ok(true);
                    }
                    continue;
                }
                if monotonic && (is_terminating(p) || !is_available(p, min_ready, now)) {
                    return Ok(true);
                }
                continue;
            }
            let (template, revision) = if !on_delete && ordinal < partition {
                (&current_template, &current_name)
            } else {
                (&update_template, &update_name)
            };
            // Claims first; a pod never starts without its own.
            let mut claims_ready = true;
            for tmpl in claim_templates(sts) {
                let name = claim_name(meta::name(&tmpl), set_name, ordinal);
                match claims.get(name.as_str()) {
                    Some(c) if is_terminating(c) => claims_ready = false,
                    Some(_) => {}
                    None => {
                        let claim = new_claim(sts, &tmpl, ordinal);
                        match store.create(rt("v1", "PersistentVolumeClaim")?, Some(ns), claim, false) {
                            Ok(_) | Err(StoreError::Api(ApiError::AlreadyExists(_))) => events.record(
                                sts,
                                EventType::Normal,
                                "SuccessfulCreate",
                                &format!("create Claim {name} Pod {pod_name} in StatefulSet {set_name} success"),
                            ),
                            Err(e) => {
                                events.record(
                                    sts,
                                    EventType::Warning,
                                    "FailedCreate",
                                    &format!("create Claim {name} for Pod {pod_name} in StatefulSet {set_name} failed error: {e}"),
                                );
                                return Err(e);
                            }
                        }
                    }
                }
            }
            if !claims_ready {
                // The old claim is still going away.
                return Ok(true);
            }
            let pod = new_pod(sts, template, revision, ordinal);
            match store.create(pod_rt, Some(ns), pod, false) {
                Ok(_) => events.record(
                    sts,
                    EventType::Normal,
                    "SuccessfulCreate",
                    &format!("create Pod {pod_name} in StatefulSet {set_name} successful"),
                ),
                Err(StoreError::Api(ApiError::AlreadyExists(_))) => {}
                Err(e) => {
                    events.record(
                        sts,
                        EventType::Warning,
                        "FailedCreate",
                        &format!(
                            "create Pod {pod_name} in StatefulSet {set_name} failed error: {e}"
                        ),
                    );
                    return Err(e);
                }
            }
            if monotonic {
                return Ok(true);
            }
        }
        // Scale down from the highest ordinal.
        let mut pending = false;
        for (_, p) in &condemned {
            if is_terminating(p) {
                if monotonic {
                    return Ok(true);
                }
                pending = true;
                continue;
            }
            if retention(sts, "whenScaled") {
                own_claims_by_pod(store, sts, p)?;
            }
            delete_pod(store, events, sts, p)?;
            if monotonic {
                return Ok(true);
            }
            pending = true;
        }
        if pending {
            return Ok(true);
        }
        // Rolling update, highest ordinal first, down to the partition.
        if on_delete {
            return Ok(false);
        }
        for (&ordinal, slot) in slots.iter().rev() {
            if ordinal < partition {
                break;
            }
            let Some(p) = slot else { continue };
            if meta::str_at(p, &format!("/metadata/labels/{REVISION_LABEL}")) != update_name
                && !is_terminating(p)
            {
                delete_pod(store, events, sts, p)?;
                return Ok(true);
            }
            if !is_available(p, min_ready, now) {
                return Ok(true);
            }
        }
        Ok(false)
    };
    let mut again = pass()?;

    // Status.
    let mut ready = 0;
    let mut available = 0;
    let mut current = 0;
    let mut updated = 0;
    for p in &status_pods {
        if is_running_and_ready(p) {
            ready += 1;
            if is_available(p, min_ready, now) {
                available += 1;
            }
        }
        if !is_terminating(p) {
            let rev = meta::str_at(p, &format!("/metadata/labels/{REVISION_LABEL}"));
            if rev == current_name {
                current += 1;
            }
            if rev == update_name {
                updated += 1;
            }
        }
    }
    let count = status_pods.len() as i64;
    let (mut status_current, mut status_current_count) = (current_name.clone(), current);
    if updated == replicas && ready == replicas && count == replicas {
        // The rollout is complete.
        status_current = update_name.clone();
        status_current_count = updated;
    }
    if ready < count || available < ready {
        again = true;
    }
    let status = json!({
        "observedGeneration": sts["metadata"]["generation"].as_i64().unwrap_or(1),
        "replicas": count,
        "readyReplicas": ready,
        "currentReplicas": status_current_count,
        "updatedReplicas": updated,
        "availableReplicas": available,
        "currentRevision": status_current,
        "updateRevision": update_name,
        "collisionCount": 0,
    });
    let mut obj = sts.clone();
    super::write_status(store, sts_rt, &mut obj, &status)?;

    trim_history(
        store,
        sts,
        &revs,
        &[&status_current, &update_name],
        &status_pods,
    )?;
    Ok(again)
}

fn delete_pod(store: &Store, events: &Recorder, sts: &Value, p: &Value) -> Result<(), StoreError> {
    let set_name = meta::name(sts);
    let name = meta::name(p);
    match store.delete(
        rt("v1", "Pod")?,
        Some(meta::namespace(p)),
        name,
        &DeleteOptions {
            precondition_uid: Some(meta::uid(p).to_string()),
            ..Default::default()
        },
    ) {
        Ok(_) => {
            events.record(
                sts,
                EventType::Normal,
                "SuccessfulDelete",
                &format!("delete Pod {name} in StatefulSet {set_name} successful"),
            );
            Ok(())
        }
        Err(StoreError::Api(ApiError::NotFound(_) | ApiError::Conflict { .. })) => Ok(()),
        Err(e) => {
            events.record(
                sts,
                EventType::Warning,
                "FailedDelete",
                &format!("delete Pod {name} in StatefulSet {set_name} failed error: {e}"),
            );
            Err(e)
        }
    }
}

/// `whenScaled: Delete`: the condemned pod's claims get the pod as their owner (instead of
/// the set), so the garbage collector removes them once the pod is gone.
fn own_claims_by_pod(store: &Store, sts: &Value, pod: &Value) -> Result<(), StoreError> {
    let Some(ordinal) = ordinal_of(meta::name(sts), meta::name(pod)) else {
        return Ok(());
    };
    let claim_rt = rt("v1", "PersistentVolumeClaim")?;
    for tmpl in claim_templates(sts) {
        let name = claim_name(meta::name(&tmpl), meta::name(sts), ordinal);
        let oref = owner_ref("Pod", "v1", pod, false);
        let pod_uid = meta::uid(pod).to_string();
        let set_uid = meta::uid(sts).to_string();
        match store.update_with(
            claim_rt,
            Some(meta::namespace(sts)),
            &name,
            Subresource::Main,
            false,
            move |cur| {
                let mut cur = cur.clone();
                let mut refs = cur
                    .pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if refs.iter().any(|r| r["uid"] == pod_uid.as_str()) {
                    return Err(ApiError::bad_request("already owned"));
                }
                // The pod alone owns it now, so it goes with the pod.
                refs.retain(|r| r["uid"] != set_uid.as_str());
                refs.push(oref.clone());
                cur["metadata"]["ownerReferences"] = Value::Array(refs);
                Ok(cur)
            },
        ) {
            Ok(_) | Err(StoreError::Api(ApiError::NotFound(_) | ApiError::BadRequest { .. })) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Deletes the oldest revisions beyond `revisionHistoryLimit` that no pod uses and that are
/// neither the current nor the update revision.
fn trim_history(
    store: &Store,
    sts: &Value,
    revs: &[Value],
    live: &[&str],
    pods: &[Value],
) -> Result<(), StoreError> {
    let limit = sts["spec"]["revisionHistoryLimit"]
        .as_i64()
        .unwrap_or(10)
        .max(0) as usize;
    let in_use = |r: &Value| {
        let name = meta::name(r);
        live.contains(&name)
            || pods
                .iter()
                .any(|p| meta::str_at(p, &format!("/metadata/labels/{REVISION_LABEL}")) == name)
    };
    let history: Vec<&Value> = revs.iter().filter(|r| !in_use(r)).collect();
    if history.len() <= limit {
        return Ok(());
    }
    let rev_rt = rt("apps/v1", "ControllerRevision")?;
    for r in &history[..history.len() - limit] {
        match store.delete(
            rev_rt,
            Some(meta::namespace(r)),
            meta::name(r),
            &DeleteOptions {
                precondition_uid: Some(meta::uid(r).to_string()),
                ..Default::default()
            },
        ) {
            Ok(_) | Err(StoreError::Api(ApiError::NotFound(_) | ApiError::Conflict { .. })) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts() -> Value {
        json!({"metadata": {"name": "web", "namespace": "prod", "uid": "u1"},
            "spec": {"serviceName": "nginx", "selector": {"matchLabels": {"app": "web"}},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
                "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}],
                    "volumes": [{"name": "www", "emptyDir": {}}, {"name": "other", "emptyDir": {}}]}}}})
    }

    #[test]
    fn ordinals_are_parsed_strictly() {
        assert_eq!(ordinal_of("web", "web-0"), Some(0));
        assert_eq!(ordinal_of("web", "web-12"), Some(12));
        assert_eq!(ordinal_of("web", "web-01"), None);
        assert_eq!(ordinal_of("web", "web-"), None);
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web", "webs-1"), None);
        assert_eq!(ordinal_of("web", "web-abc-1"), None);
    }

    #[test]
    fn pods_get_identity_labels_and_their_claims() {
        let s = sts();
        let p = new_pod(&s, &s["spec"]["template"], "web-abc", 2);
        assert_eq!(p["metadata"]["name"], "web-2");
        assert_eq!(p["metadata"]["namespace"], "prod");
        assert_eq!(p["metadata"]["labels"]["app"], "web");
        assert_eq!(p["metadata"]["labels"][POD_NAME_LABEL], "web-2");
        assert_eq!(p["metadata"]["labels"][POD_INDEX_LABEL], "2");
        assert_eq!(p["metadata"]["labels"][REVISION_LABEL], "web-abc");
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "StatefulSet");
        assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(p["spec"]["hostname"], "web-2");
        assert_eq!(p["spec"]["subdomain"], "nginx");
        let vols = p["spec"]["volumes"].as_array().unwrap();
        assert_eq!(vols.len(), 2);
        let www = vols.iter().find(|v| v["name"] == "www").unwrap();
        assert_eq!(www["persistentVolumeClaim"]["claimName"], "www-web-2");
        let c = new_claim(&s, &s["spec"]["volumeClaimTemplates"][0], 2);
        assert_eq!(c["metadata"]["name"], "www-web-2");
        assert_eq!(c["metadata"]["labels"]["app"], "web");
        assert_eq!(c["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(c["metadata"]["ownerReferences"][0]["controller"], false);
        assert_eq!(c["spec"]["resources"]["requests"]["storage"], "1Gi");
        let mut retain = s.clone();
        retain["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] = json!("Retain");
        let c = new_claim(&retain, &retain["spec"]["volumeClaimTemplates"][0], 0);
        assert!(c["metadata"]["ownerReferences"].is_null());
    }

    #[test]
    fn a_revision_holds_its_template() {
        let t = json!({"metadata": {"labels": {"app": "web"}}, "spec": {}});
        let mut with_patch = t.clone();
        with_patch["$patch"] = json!("replace");
        let rev = json!({"data": {"spec": {"template": with_patch}}});
        assert_eq!(revision_template(&rev), t);
        assert_eq!(revision_hash(&t), revision_hash(&t.clone()));
    }
}
