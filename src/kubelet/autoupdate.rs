//! Health-gated auto-update of Deployments from their registry.
//!
//! A Deployment annotated `berth.dev/auto-update: registry` has the digest of each
//! container's `repo:tag` looked up in its registry every `autoUpdatePeriodSeconds` (with
//! the template's `imagePullSecrets`). A digest other than the one the Deployment runs pins
//! the container to `repo:tag@digest`: an ordinary rolling update, within the Deployment's
//! own `maxSurge`/`maxUnavailable`. Then the update is judged by readiness:
//!
//! - the rollout completes (`Progressing` is `NewReplicaSetAvailable` for this
//!   generation): the digest is kept, with an `AutoUpdated` event;
//! - the rollout passes `progressDeadlineSeconds` (`ProgressDeadlineExceeded`): the
//!   containers go back to the images they had, the digest is recorded as rejected and
//!   never tried again, and a Warning `AutoUpdateRolledBack` event says why.
//!
//! The state lives in the Deployment's annotations, so a daemon restart resumes it:
//! `berth.dev/auto-update-pending` (the digest being rolled out),
//! `berth.dev/auto-update-previous` (JSON: container name → image before the update) and
//! `berth.dev/auto-update-rejected` (digests that failed, newest last).
//!
//! Podman's auto-update rolls back only when a unit fails to start; this judges readiness.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::{meta, registry};
use crate::events::{EventType, Recorder};
use crate::image::{Digest, ImageStore, Reference};
use crate::store::{Store, Subresource};

/// The opt-in annotation and its one value.
pub const ANNOTATION: &str = "berth.dev/auto-update";
pub const MODE_REGISTRY: &str = "registry";
pub const PENDING: &str = "berth.dev/auto-update-pending";
pub const PREVIOUS: &str = "berth.dev/auto-update-previous";
pub const REJECTED: &str = "berth.dev/auto-update-rejected";
/// Rejected digests remembered per Deployment (the oldest are forgotten first).
const MAX_REJECTED: usize = 20;
/// Kubernetes' default `progressDeadlineSeconds`.
const DEFAULT_DEADLINE: i64 = 600;

/// Checks every annotated Deployment each `period` until `shutdown`.
pub async fn run(
    store: Arc<Store>,
    images: Arc<ImageStore>,
    node: String,
    period: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let events = Arc::new(Recorder::new(store.clone(), "berth-auto-update", &node));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.changed() => return,
        }
        let (s, i, e) = (store.clone(), images.clone(), events.clone());
        let _ = tokio::task::spawn_blocking(move || check_all(&s, &i, &e)).await;
    }
}

/// One round over the annotated Deployments (blocking: it asks registries).
pub fn check_all(store: &Store, images: &ImageStore, events: &Recorder) {
    let Some(rt) = registry::by_kind("apps/v1", "Deployment") else {
        return;
    };
    let Ok((deployments, _)) = store.list(rt, None) else {
        return;
    };
    for d in deployments {
        let Some(mode) = d["metadata"]["annotations"][ANNOTATION].as_str() else {
            continue;
        };
        if !meta::str_at(&d, "/metadata/deletionTimestamp").is_empty() {
            continue;
        }
        if mode != MODE_REGISTRY {
            events.record(
                &d,
                EventType::Warning,
                "AutoUpdateInvalid",
                &format!(
                    "annotation {ANNOTATION}: \"{mode}\" is not a known mode; use \"{MODE_REGISTRY}\" (or remove the annotation)"
                ),
            );
            continue;
        }
        let result = if d["metadata"]["annotations"][PENDING].is_string() {
            judge(store, &d, events)
        } else {
            look_for_update(store, images, &d, events)
        };
        if let Err(e) = result {
            tracing::info!(deployment = %meta::name(&d), namespace = %meta::namespace(&d), error = %e, "auto-update did not complete this round");
        }
    }
}

/// The containers of a template: (name, image).
fn containers(d: &Value) -> Vec<(String, String)> {
    d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["name"].as_str()?.into(), c["image"].as_str()?.into())))
        .collect()
}

fn rejected(d: &Value) -> Vec<String> {
    d["metadata"]["annotations"][REJECTED]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Looks up each container's tag in its registry; starts an update to the first new digest.
fn look_for_update(
    store: &Store,
    images: &ImageStore,
    d: &Value,
    events: &Recorder,
) -> Result<(), String> {
    let ns = meta::namespace(d);
    let secrets: Vec<String> = d["spec"]["template"]["spec"]["imagePullSecrets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str().map(str::to_string))
        .collect();
    let auth = super::pods::pull_auth_from(store, ns, secrets.iter().map(String::as_str));
    let rejected = rejected(d);
    for (name, image) in containers(d) {
        let Ok(r) = Reference::parse(&image) else {
            continue;
        };
        let Some(tag) = r.tag() else {
            // Pinned by digest alone: there is no tag to follow.
            continue;
        };
        let tagged = format!("{}:{tag}", r.repository());
        let latest = match images.resolve_digest(&tagged, &auth) {
            Ok(digest) => digest,
            Err(e) => {
                events.record(
                    d,
                    EventType::Warning,
                    "AutoUpdateCheckFailed",
                    &format!("Cannot look up the digest of {tagged}: {e}"),
                );
                continue;
            }
        };
        if !is_new(&r, &tagged, &latest, images) {
            continue;
        }
        if rejected.iter().any(|x| x == latest.as_str()) {
            tracing::debug!(image = %tagged, digest = %latest, "a rejected digest: not tried again");
            continue;
        }
        let pinned = format!("{tagged}@{}", latest.as_str());
        let previous = json!({ name.as_str(): image.as_str() }).to_string();
        let digest = latest.as_str().to_string();
        let updated = update(store, d, |obj| {
            set_image(obj, &name, &pinned);
            let a = &mut obj["metadata"]["annotations"];
            a[PENDING] = json!(digest);
            a[PREVIOUS] = json!(previous);
            a["kubernetes.io/change-cause"] =
                json!(format!("berth auto-update: {tagged} is now {digest}"));
        })?;
        events.record(
            &updated,
            EventType::Normal,
            "AutoUpdate",
            &format!("New digest {digest} for {tagged}: rolling container \"{name}\" to {pinned}"),
        );
        // One update at a time: the next container waits for this one's verdict.
        return Ok(());
    }
    Ok(())
}

/// Whether `latest` differs from what the container runs: its pinned digest, else the
/// digest of the local image of its tag (an unpinned container runs what was pulled; not
/// pulled yet, it will run the tag's current digest anyway).
fn is_new(r: &Reference, tagged: &str, latest: &Digest, images: &ImageStore) -> bool {
    match r.digest() {
        Some(pinned) => pinned != latest,
        None => images
            .resolve(tagged)
            .is_some_and(|local| &local.manifest_digest != latest),
    }
}

/// A pending update's verdict: kept when the rollout completed, rolled back when it
/// passed its progress deadline; otherwise it waits.
fn judge(store: &Store, d: &Value, events: &Recorder) -> Result<(), String> {
    let a = &d["metadata"]["annotations"];
    let digest = a[PENDING].as_str().unwrap_or_default().to_string();
    let generation = d["metadata"]["generation"].as_i64().unwrap_or(0);
    let observed = d["status"]["observedGeneration"].as_i64().unwrap_or(0);
    if observed < generation {
        return Ok(());
    }
    let progressing = d["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Progressing")
        .cloned()
        .unwrap_or_default();
    match progressing["reason"].as_str().unwrap_or_default() {
        "NewReplicaSetAvailable" => {
            let updated = update(store, d, |obj| {
                clear(obj);
            })?;
            let replicas = d["status"]["updatedReplicas"].as_i64().unwrap_or(0);
            events.record(
                &updated,
                EventType::Normal,
                "AutoUpdated",
                &format!("Updated to {digest}: {replicas} new replica(s) ready"),
            );
            Ok(())
        }
        "ProgressDeadlineExceeded" => {
            let previous: BTreeMap<String, String> =
                serde_json::from_str(a[PREVIOUS].as_str().unwrap_or("{}")).unwrap_or_default();
            let deadline = d["spec"]["progressDeadlineSeconds"]
                .as_i64()
                .unwrap_or(DEFAULT_DEADLINE);
            let mut rejected = rejected(d);
            rejected.retain(|x| x != &digest);
            rejected.push(digest.clone());
            let skip = rejected.len().saturating_sub(MAX_REJECTED);
            let rejected = rejected[skip..].join(",");
            let updated = update(store, d, |obj| {
                for (name, image) in &previous {
                    set_image(obj, name, image);
                }
                clear(obj);
                obj["metadata"]["annotations"][REJECTED] = json!(rejected);
                obj["metadata"]["annotations"]["kubernetes.io/change-cause"] =
                    json!(format!("berth auto-update: rolled back from {digest}"));
            })?;
            let back: Vec<String> = previous
                .iter()
                .map(|(n, i)| format!("container \"{n}\" to {i}"))
                .collect();
            events.record(
                &updated,
                EventType::Warning,
                "AutoUpdateRolledBack",
                &format!(
                    "Rolled back {}: the pods of digest {digest} did not become ready within the progress deadline ({deadline}s); {digest} will not be tried again",
                    back.join(", ")
                ),
            );
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Removes the pending update's annotations.
fn clear(obj: &mut Value) {
    if let Some(a) = obj["metadata"]["annotations"].as_object_mut() {
        a.remove(PENDING);
        a.remove(PREVIOUS);
    }
}

fn set_image(obj: &mut Value, container: &str, image: &str) {
    if let Some(cs) = obj["spec"]["template"]["spec"]["containers"].as_array_mut() {
        for c in cs {
            if c["name"] == container {
                c["image"] = json!(image);
            }
        }
    }
}

/// Writes `f`'s change to the Deployment `d` as it is now in the store (only if it is the
/// same object: a Deployment deleted and made again is left alone).
fn update(store: &Store, d: &Value, f: impl FnOnce(&mut Value)) -> Result<Value, String> {
    let rt = registry::by_kind("apps/v1", "Deployment")
        .ok_or_else(|| "no Deployment kind".to_string())?;
    store
        .update_same(rt, d, Subresource::Main, |cur| {
            let mut obj = cur.clone();
            f(&mut obj);
            Ok(obj)
        })
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_image_changes_only_the_named_container() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}]}}}});
        set_image(&mut d, "b", "y:1@sha256:00");
        assert_eq!(
            containers(&d),
            vec![
                ("a".to_string(), "x:1".to_string()),
                ("b".to_string(), "y:1@sha256:00".to_string())
            ]
        );
    }

    #[test]
    fn rejected_digests_parse_from_the_annotation() {
        let d = json!({"metadata": {"annotations": {REJECTED: "sha256:a,sha256:b"}}});
        assert_eq!(rejected(&d), vec!["sha256:a", "sha256:b"]);
        assert!(rejected(&json!({})).is_empty());
        let mut d = json!({"metadata": {"annotations": {PENDING: "x", PREVIOUS: "{}", "k": "v"}}});
        clear(&mut d);
        assert_eq!(d["metadata"]["annotations"], json!({"k": "v"}));
    }
}
