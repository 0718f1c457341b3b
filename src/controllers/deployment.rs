//! The Deployment controller: one ReplicaSet per pod template (`<deployment>-<hash>`, the
//! `pod-template-hash` label on its selector and pods), rolled by `strategy`:
//! RollingUpdate within `maxSurge`/`maxUnavailable` (integers or percentages; surge rounds
//! up, unavailable down; both 0 means unavailable 1) or Recreate (old pods gone first).
//! It writes the revision annotations, prunes old ReplicaSets beyond
//! `revisionHistoryLimit`, honours `paused`, reports `status` as `kubectl rollout status`
//! reads it (Available and Progressing conditions, ProgressDeadlineExceeded), and records
//! ScalingReplicaSet events.

use serde_json::{Value, json};

use crate::api::{ApiError, meta, registry};
use crate::events::{EventType, Recorder};
use crate::store::{Change, DeleteOptions, Store, StoreError, Subresource};

pub(super) fn relevant(c: &Change) -> bool {
    matches!(c.resource.kind, "Deployment" | "ReplicaSet")
}

const REVISION: &str = "deployment.kubernetes.io/revision";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const HASH_LABEL: &str = "pod-template-hash";

/// FNV-1a (32 bit) of the template, written with Kubernetes' safe alphabet.
pub fn template_hash(template: &Value) -> String {
    let text = serde_json::to_string(template).unwrap_or_default();
    let mut h: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = u64::from(h);
    let mut out = Vec::new();
    while n > 0 {
        out.push(ALPHABET[(n % ALPHABET.len() as u64) as usize]);
        n /= ALPHABET.len() as u64;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// An `intOrString` of the strategy against `replicas`, rounded up or down.
fn resolve(v: &Value, replicas: i64, round_up: bool, default: &str) -> i64 {
    let v = if v.is_null() {
        json!(default)
    } else {
        v.clone()
    };
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => {
            let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
            let x = pct * replicas as f64 / 100.0;
            if round_up {
                x.ceil() as i64
            } else {
                x.floor() as i64
            }
        }
        _ => 0,
    }
}

/// (maxSurge, maxUnavailable) as Kubernetes resolves them.
pub fn surge_and_unavailable(deploy: &Value) -> (i64, i64) {
    let replicas = deploy["spec"]["replicas"].as_i64().unwrap_or(1);
    let ru = &deploy["spec"]["strategy"]["rollingUpdate"];
    let surge = resolve(&ru["maxSurge"], replicas, true, "25%");
    let mut unavailable = resolve(&ru["maxUnavailable"], replicas, false, "25%");
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

fn owned_by(obj: &Value, uid: &str) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r["uid"] == uid && r["controller"] == true)
        })
}

fn revision(rs: &Value) -> i64 {
    rs.pointer(&format!(
        "/metadata/annotations/{}",
        REVISION.replace('/', "~1")
    ))
    .and_then(Value::as_str)
    .and_then(|s| s.parse().ok())
    .unwrap_or(0)
}

fn spec_replicas(rs: &Value) -> i64 {
    rs["spec"]["replicas"].as_i64().unwrap_or(0)
}

fn status_count(rs: &Value, field: &str) -> i64 {
    rs["status"][field].as_i64().unwrap_or(0)
}

/// One pass over every Deployment; true when something must be looked at again soon.
pub(super) fn reconcile_all(store: &Store, events: &Recorder) -> bool {
    let Some((deploys, sets)) = super::list_two(
        store,
        ("apps/v1", "Deployment"),
        ("apps/v1", "ReplicaSet"),
        "deployment",
    ) else {
        return true;
    };
    let mut again = false;
    for d in &deploys {
        if d.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        let owned: Vec<Value> = sets
            .iter()
            .filter(|rs| meta::namespace(rs) == meta::namespace(d) && owned_by(rs, meta::uid(d)))
            .cloned()
            .collect();
        match reconcile(store, events, d, owned) {
            Ok(a) => again |= a,
            Err(e) => {
                tracing::warn!(error = %e, deployment = meta::name(d), "deployment reconcile failed; retrying");
                again = true;
            }
        }
    }
    again
}

fn scale(
    store: &Store,
    events: &Recorder,
    d: &Value,
    rs: &Value,
    to: i64,
) -> Result<Value, StoreError> {
    let rs_rt = registry::by_kind("apps/v1", "ReplicaSet")
        .ok_or_else(|| ApiError::internal("no ReplicaSet kind"))?;
    let from = spec_replicas(rs);
    let desired = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let (surge, _) = surge_and_unavailable(d);
    let updated = store.update_with(
        rs_rt,
        Some(meta::namespace(rs)),
        meta::name(rs),
        Subresource::Main,
        false,
        |obj| {
            let mut obj = obj.clone();
            obj["spec"]["replicas"] = json!(to);
            obj["metadata"]["annotations"][DESIRED] = json!(desired.to_string());
            obj["metadata"]["annotations"][MAX_REPLICAS] = json!((desired + surge).to_string());
            Ok(obj)
        },
    )?;
    if from != to {
        let verb = if to > from { "up" } else { "down" };
        events.record(
            d,
            EventType::Normal,
            "ScalingReplicaSet",
            &format!(
                "Scaled {verb} replica set {} from {from} to {to}",
                meta::name(rs)
            ),
        );
    }
    Ok(updated)
}

fn reconcile(
    store: &Store,
    events: &Recorder,
    d: &Value,
    mut owned: Vec<Value>,
) -> Result<bool, StoreError> {
    let rs_rt = registry::by_kind("apps/v1", "ReplicaSet")
        .ok_or_else(|| ApiError::internal("no ReplicaSet kind"))?;
    let d_rt = registry::by_kind("apps/v1", "Deployment")
        .ok_or_else(|| ApiError::internal("no Deployment kind"))?;
    let ns = meta::namespace(d);
    let desired = d["spec"]["replicas"].as_i64().unwrap_or(1).max(0);
    let template = d["spec"]["template"].clone();
    let hash = template_hash(&template);
    let new_name = format!("{}-{hash}", meta::name(d));
    let paused = d["spec"]["paused"].as_bool().unwrap_or(false);
    let mut created_new = false;
    let max_revision = owned.iter().map(revision).max().unwrap_or(0);
    let mut new_rs = owned.iter().find(|rs| meta::name(rs) == new_name).cloned();
    if new_rs.is_none() && !paused {
        let mut tmpl = template.clone();
        tmpl["metadata"]["labels"][HASH_LABEL] = json!(hash);
        let mut selector = d["spec"]["selector"].clone();
        selector["matchLabels"][HASH_LABEL] = json!(hash);
        let mut labels = template["metadata"]["labels"].clone();
        labels[HASH_LABEL] = json!(hash);
        let mut annotations = json!({REVISION: (max_revision + 1).to_string()});
        if let Some(cause) = d.pointer("/metadata/annotations/kubernetes.io~1change-cause") {
            annotations["kubernetes.io/change-cause"] = cause.clone();
        }
        let strategy = d["spec"]["strategy"]["type"]
            .as_str()
            .unwrap_or("RollingUpdate");
        let start = if strategy == "Recreate" || !owned.is_empty() {
            0
        } else {
            desired
        };
        let rs = json!({
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": new_name,
                "namespace": ns,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta::name(d),
                    "uid": meta::uid(d), "controller": true, "blockOwnerDeletion": true}],
            },
            "spec": {
                "replicas": start,
                "minReadySeconds": d["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
                "selector": selector,
                "template": tmpl,
            }
        });
        match store.create(rs_rt, Some(ns), rs, false) {
            Ok(c) => {
                if start > 0 {
                    events.record(
                        d,
                        EventType::Normal,
                        "ScalingReplicaSet",
                        &format!("Scaled up replica set {new_name} from 0 to {start}"),
                    );
                }
                created_new = true;
                owned.push(c.clone());
                new_rs = Some(c);
            }
            Err(StoreError::Api(ApiError::AlreadyExists(_))) => return Ok(true),
            Err(e) => return Err(e),
        }
    }
    let mut again = false;
    if let Some(new) = new_rs.clone().filter(|_| !paused) {
        // An old template brought back (rollout undo) gets the newest revision.
        if revision(&new) < max_revision {
            let rev = (max_revision + 1).to_string();
            store.update_with(
                rs_rt,
                Some(ns),
                meta::name(&new),
                Subresource::Main,
                false,
                |obj| {
                    let mut obj = obj.clone();
                    obj["metadata"]["annotations"][REVISION] = json!(rev);
                    Ok(obj)
                },
            )?;
        }
        let olds: Vec<Value> = owned
            .iter()
            .filter(|rs| meta::name(rs) != new_name)
            .cloned()
            .collect();
        let strategy = d["spec"]["strategy"]["type"]
            .as_str()
            .unwrap_or("RollingUpdate");
        if strategy == "Recreate" {
            for old in olds.iter().filter(|o| spec_replicas(o) > 0) {
                scale(store, events, d, old, 0)?;
                again = true;
            }
            let old_pods: i64 = olds.iter().map(|o| status_count(o, "replicas")).sum();
            if old_pods == 0
                && olds.iter().all(|o| spec_replicas(o) == 0)
                && spec_replicas(&new) != desired
            {
                scale(store, events, d, &new, desired)?;
            } else if old_pods > 0 {
                again = true;
            }
        } else {
            let (surge, unavailable) = surge_and_unavailable(d);
            let total: i64 = owned.iter().map(spec_replicas).sum();
            // Scale the new ReplicaSet up within the surge.
            let new_count = spec_replicas(&new);
            if new_count > desired {
                scale(store, events, d, &new, desired)?;
            } else if new_count < desired {
                let room = desired + surge - total;
                if room > 0 {
                    let to = (new_count + room).min(desired);
                    scale(store, events, d, &new, to)?;
                }
            }
            // Scale old ones down while enough stay available (Kubernetes' two steps: first
            // the old pods that are not available anyway, then as far as availability allows).
            let (sets, _) = store.list(rs_rt, Some(ns))?;
            let owned: Vec<Value> = sets
                .into_iter()
                .filter(|rs| owned_by(rs, meta::uid(d)))
                .collect();
            let new = owned
                .iter()
                .find(|rs| meta::name(rs) == new_name)
                .cloned()
                .unwrap_or(new);
            let mut olds: Vec<Value> = owned
                .iter()
                .filter(|rs| meta::name(rs) != new_name)
                .cloned()
                .collect();
            olds.sort_by_key(|o| meta::str_at(o, "/metadata/creationTimestamp").to_string());
            let min_available = desired - unavailable;
            let new_unavailable =
                (spec_replicas(&new) - status_count(&new, "availableReplicas")).max(0);
            let all: i64 = owned.iter().map(spec_replicas).sum();
            let mut cleanup = all - min_available - new_unavailable;
            if cleanup > 0 {
                for old in olds.iter_mut() {
                    let unhealthy =
                        (spec_replicas(old) - status_count(old, "availableReplicas")).max(0);
                    let cut = unhealthy.min(cleanup);
                    if cut > 0 {
                        *old = scale(store, events, d, old, spec_replicas(old) - cut)?;
                        cleanup -= cut;
                    }
                }
                let available: i64 = status_count(&new, "availableReplicas")
                    + olds
                        .iter()
                        .map(|o| status_count(o, "availableReplicas").min(spec_replicas(o)))
                        .sum::<i64>();
                let mut budget = available - min_available;
                for old in olds.iter_mut() {
                    if budget <= 0 {
                        break;
                    }
                    let cut = spec_replicas(old).min(budget);
                    if cut > 0 {
                        *old = scale(store, events, d, old, spec_replicas(old) - cut)?;
                        budget -= cut;
                    }
                }
            }
            if olds
                .iter()
                .any(|o| spec_replicas(o) > 0 || status_count(o, "replicas") > 0)
                || status_count(&new, "availableReplicas") < desired
            {
                again = true;
            }
        }
        // Old ReplicaSets beyond the history limit go, oldest revision first.
        let limit = d["spec"]["revisionHistoryLimit"]
            .as_i64()
            .unwrap_or(10)
            .max(0) as usize;
        let mut idle: Vec<&Value> = olds
            .iter()
            .filter(|o| spec_replicas(o) == 0 && status_count(o, "replicas") == 0)
            .collect();
        if idle.len() > limit {
            idle.sort_by_key(|o| revision(o));
            for old in &idle[..idle.len() - limit] {
                let _ = store.delete(rs_rt, Some(ns), meta::name(old), &DeleteOptions::default());
            }
        }
    }
    // Status, from fresh ReplicaSets.
    let (sets, _) = store.list(rs_rt, Some(ns))?;
    let owned: Vec<&Value> = sets
        .iter()
        .filter(|rs| owned_by(rs, meta::uid(d)))
        .collect();
    let sum = |f: &str| owned.iter().map(|rs| status_count(rs, f)).sum::<i64>();
    let new = owned.iter().find(|rs| meta::name(rs) == new_name);
    let updated = new.map(|n| status_count(n, "replicas")).unwrap_or(0);
    let replicas = sum("replicas");
    let available = sum("availableReplicas");
    let (_, unavailable) = surge_and_unavailable(d);
    let now = meta::now_rfc3339();
    let complete = new.is_some_and(|n| {
        status_count(n, "availableReplicas") >= desired && spec_replicas(n) == desired
    }) && updated == desired
        && replicas == desired;
    let existing = |ty: &str| -> Option<Value> {
        d.pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| c["type"] == ty))
            .cloned()
    };
    let condition = |ty: &str, status: bool, reason: &str, message: String| {
        let s = if status { "True" } else { "False" };
        let prev = existing(ty);
        let same = prev
            .as_ref()
            .is_some_and(|p| p["status"] == s && p["reason"] == reason);
        let transition = prev
            .as_ref()
            .filter(|p| p["status"] == s)
            .and_then(|p| p["lastTransitionTime"].as_str().map(str::to_string))
            .unwrap_or_else(|| now.clone());
        let update = if same {
            prev.as_ref()
                .and_then(|p| p["lastUpdateTime"].as_str().map(str::to_string))
                .unwrap_or_else(|| now.clone())
        } else {
            now.clone()
        };
        json!({"type": ty, "status": s, "reason": reason, "message": message,
            "lastUpdateTime": update, "lastTransitionTime": transition})
    };
    let available_ok = available >= desired - unavailable;
    let available_cond = if available_ok {
        condition(
            "Available",
            true,
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
        )
    } else {
        condition(
            "Available",
            false,
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
        )
    };
    let deadline = d["spec"]["progressDeadlineSeconds"].as_i64().unwrap_or(600);
    let progressing_cond = if complete {
        condition(
            "Progressing",
            true,
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{new_name}\" has successfully progressed."),
        )
    } else if created_new {
        condition(
            "Progressing",
            true,
            "NewReplicaSetCreated",
            format!("Created new replica set \"{new_name}\""),
        )
    } else if paused {
        condition(
            "Progressing",
            true,
            "DeploymentPaused",
            "Deployment is paused".into(),
        )
    } else {
        // Progress as Kubernetes counts it (more updated, ready or available replicas, or
        // fewer old ones, than last time; an undo makes some) resets the deadline; without
        // it, a deadline once passed stays passed. Zero counts are left out of the stored
        // status, so absent reads as 0.
        let was = |f: &str| d["status"][f].as_i64().unwrap_or(0);
        let moved = updated > was("updatedReplicas")
            || replicas - updated < was("replicas") - was("updatedReplicas")
            || sum("readyReplicas") > was("readyReplicas")
            || available > was("availableReplicas");
        let prev = existing("Progressing");
        let stalled = !moved
            && (prev
                .as_ref()
                .is_some_and(|p| p["reason"] == "ProgressDeadlineExceeded")
                || prev
                    .as_ref()
                    .and_then(|p| p["lastUpdateTime"].as_str())
                    .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                    .is_some_and(|t| {
                        jiff::Timestamp::now().duration_since(t).as_secs() > deadline
                    }));
        if stalled {
            condition(
                "Progressing",
                false,
                "ProgressDeadlineExceeded",
                format!("ReplicaSet \"{new_name}\" has timed out progressing."),
            )
        } else {
            let mut c = condition(
                "Progressing",
                true,
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{new_name}\" is progressing."),
            );
            if moved {
                c["lastUpdateTime"] = json!(now.clone());
            }
            again = true;
            c
        }
    };
    let mut status = json!({
        "observedGeneration": d["metadata"]["generation"].as_i64().unwrap_or(1),
        "replicas": replicas,
        "updatedReplicas": updated,
        "readyReplicas": sum("readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": (replicas.max(desired) - available).max(0),
        "conditions": [available_cond, progressing_cond],
    });
    if let Some(o) = status.as_object_mut() {
        o.retain(|k, v| !(v.as_i64() == Some(0) && k != "observedGeneration" && k != "replicas"));
    }
    if d["status"] != status {
        let uid = meta::uid(d).to_string();
        let s2 = status.clone();
        match store.update_with(
            d_rt,
            Some(ns),
            meta::name(d),
            Subresource::Status,
            false,
            move |obj| {
                if meta::uid(obj) != uid {
                    return Err(ApiError::bad_request("replaced"));
                }
                let mut obj = obj.clone();
                obj["status"] = s2;
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
    // Also stamp the revision on the Deployment.
    if let Some(n) = new {
        let rev = revision(n).to_string();
        let have = d
            .pointer(&format!(
                "/metadata/annotations/{}",
                REVISION.replace('/', "~1")
            ))
            .and_then(Value::as_str);
        if have != Some(rev.as_str()) {
            let _ = store.update_with(
                d_rt,
                Some(ns),
                meta::name(d),
                Subresource::Main,
                false,
                |obj| {
                    let mut obj = obj.clone();
                    obj["metadata"]["annotations"][REVISION] = json!(rev);
                    Ok(obj)
                },
            );
        }
    }
    Ok(again)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_rounds_up_and_unavailable_down() {
        let d = |s: Value, u: Value, r: i64| json!({"spec": {"replicas": r, "strategy": {"rollingUpdate": {"maxSurge": s, "maxUnavailable": u}}}});
        assert_eq!(
            surge_and_unavailable(&d(Value::Null, Value::Null, 4)),
            (1, 1)
        );
        assert_eq!(
            surge_and_unavailable(&d(Value::Null, Value::Null, 10)),
            (3, 2)
        );
        assert_eq!(surge_and_unavailable(&d(json!(1), json!(1), 4)), (1, 1));
        assert_eq!(surge_and_unavailable(&d(json!(0), json!(0), 4)), (0, 1));
        assert_eq!(
            surge_and_unavailable(&d(json!("50%"), json!("30%"), 3)),
            (2, 0)
        );
    }

    #[test]
    fn the_template_hash_is_stable_and_safe() {
        let t = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "a"}]}});
        let h = template_hash(&t);
        assert_eq!(h, template_hash(&t.clone()));
        assert!(
            h.bytes()
                .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)),
            "{h}"
        );
        let mut t2 = t.clone();
        t2["spec"]["containers"][0]["image"] = json!("b");
        assert_ne!(h, template_hash(&t2));
    }
}
