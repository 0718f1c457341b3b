//! Rollouts, as `kubectl rollout`, `kubectl scale` and `kubectl set image` do them, for the
//! CLI and the TUI alike.
//!
//! Everything here is client side, as in kubectl; the Deployment controller does the rest.
//! History is read from the ReplicaSets a Deployment controls (by controller owner UID) and
//! their `deployment.kubernetes.io/revision` annotation; undo copies a ReplicaSet's pod
//! template (minus `pod-template-hash`) back into the Deployment, and the controller
//! recognises the template, reuses that ReplicaSet and gives it the next revision; restart
//! stamps `kubectl.kubernetes.io/restartedAt` on the pod template; pause and resume flip
//! `spec.paused`; scale writes the `scale` subresource.
//!
//! The pure parts (what a history or a status reads as, what to patch) are plain functions
//! with unit tests. The async parts read the object, decide from what they read, and write
//! with the resourceVersion they read, so a change in between is a Conflict; they then start
//! again from fresh state (a few times) instead of overwriting it.

use std::future::Future;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{Client, ClientError, ListOptions};
use crate::api::patch::PatchType;
use crate::api::registry::{self, ResourceType};
use crate::api::watch::EventType;
use crate::api::{ApiError, describe, meta};

/// The revision a ReplicaSet (and its Deployment) is at.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Why a revision was made; shown by `rollout history`.
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
/// Set on the pod template by `rollout restart`; a new value is a new template.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
/// The label the Deployment controller adds to each ReplicaSet's template.
pub const HASH_LABEL: &str = "pod-template-hash";

/// Deployment annotations undo leaves as they are instead of taking them from the
/// ReplicaSet (kubectl's list): they describe the Deployment, not the template.
const KEEP_ON_UNDO: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// One `CONTAINER=IMAGE` of `set image`: a container's name (`*`: every container) and
/// the image it gets.
pub type ImageUpdate = (String, String);

/// How often a write that met a Conflict is computed again from fresh state.
const ATTEMPTS: usize = 5;

/// Errors of rollout operations. Messages are kubectl's where kubectl has one.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("this berth does not serve {kind} objects")]
    MissingKind { kind: &'static str },
    #[error("unable to find specified revision {revision} in history")]
    RevisionNotFound { revision: i64 },
    #[error("no rollout history found for deployment \"{name}\"")]
    NoHistory { name: String },
    #[error(
        "you cannot rollback a paused deployment; resume it first with 'berth rollout resume deployment/{name}' and try again"
    )]
    UndoPaused { name: String },
    #[error("deployments.apps \"{name}\" is already paused")]
    AlreadyPaused { name: String },
    #[error("deployments.apps \"{name}\" is not paused")]
    NotPaused { name: String },
    #[error(
        "deployments.apps \"{name}\" can't restart paused deployment (run rollout resume first)"
    )]
    RestartPaused { name: String },
    #[error(
        "failed to create patch for {name}: if restart has already been triggered within the past second, please wait before attempting to trigger another"
    )]
    RestartTooSoon { name: String },
    #[error("unable to find container named \"{container}\"")]
    ContainerNotFound { container: String },
    #[error("{resource} \"{name}\" has no pod template to set an image in")]
    NoPodTemplate { resource: String, name: String },
    #[error("deployment \"{name}\" exceeded its progress deadline")]
    ProgressDeadline { name: String },
    #[error("desired revision ({wanted}) is different from the running revision ({running})")]
    RevisionMismatch { wanted: i64, running: i64 },
    #[error("cannot get the revision of deployment \"{name}\": it has none yet")]
    NoRevision { name: String },
    #[error("{kind} \"{name}\" was deleted while waiting for its rollout")]
    Deleted { kind: &'static str, name: String },
    #[error("no last revision to roll back to")]
    NoLastRevision,
    #[error("rollout status is only available for RollingUpdate strategy type")]
    NotRollingUpdate,
    #[error("timed out waiting for the condition")]
    Timeout,
    #[error("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0")]
    NegativeReplicas,
    #[error("Expected replicas to be {expected}, was {actual}")]
    ScalePrecondition { expected: i64, actual: i64 },
    #[error(
        "cannot scale {resource}: only kinds with a scale subresource (deployments, replicasets, statefulsets) can be scaled"
    )]
    NotScalable { resource: String },
}

fn deployments() -> Result<&'static ResourceType, RolloutError> {
    kind("apps/v1", "Deployment")
}

fn replica_sets() -> Result<&'static ResourceType, RolloutError> {
    kind("apps/v1", "ReplicaSet")
}

fn kind(api_version: &str, kind: &'static str) -> Result<&'static ResourceType, RolloutError> {
    registry::by_kind(api_version, kind).ok_or(RolloutError::MissingKind { kind })
}

// ---------------------------------------------------------------------------------------
// Pure functions

/// The `deployment.kubernetes.io/revision` of a ReplicaSet or Deployment, when it has a
/// readable one.
pub fn revision(obj: &Value) -> Option<i64> {
    meta::annotations(obj)
        .get(REVISION)
        .and_then(|r| r.trim().parse().ok())
}

/// The ReplicaSets among `sets` whose controller is `deploy` (by owner UID, as kubectl
/// decides it: a selector match alone does not make a ReplicaSet part of the history).
pub fn controlled_by<'a>(deploy: &Value, sets: &'a [Value]) -> Vec<&'a Value> {
    let uid = meta::uid(deploy);
    if uid.is_empty() {
        return Vec::new();
    }
    sets.iter()
        .filter(|rs| {
            rs.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r["controller"] == true && r["uid"] == uid)
                })
        })
        .collect()
}

/// One revision of a Deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    pub number: i64,
    /// `kubernetes.io/change-cause` of the ReplicaSet, when set.
    pub change_cause: Option<String>,
    /// The ReplicaSet holding this revision.
    pub replica_set: String,
    /// Its pod template (with the `pod-template-hash` label).
    pub template: Value,
}

/// The revisions of `deploy` found among `sets`, oldest first. ReplicaSets without a
/// readable revision are left out, as kubectl leaves them out.
pub fn history(deploy: &Value, sets: &[Value]) -> Vec<Revision> {
    let mut revs: Vec<Revision> = controlled_by(deploy, sets)
        .into_iter()
        .filter_map(|rs| {
            Some(Revision {
                number: revision(rs)?,
                change_cause: meta::annotations(rs)
                    .get(CHANGE_CAUSE)
                    .filter(|c| !c.is_empty())
                    .cloned(),
                replica_set: meta::name(rs).to_string(),
                template: rs.pointer("/spec/template").cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    revs.sort_by(|a, b| {
        a.number
            .cmp(&b.number)
            .then_with(|| a.replica_set.cmp(&b.replica_set))
    });
    revs
}

/// `REVISION  CHANGE-CAUSE` and a line per revision, as `kubectl rollout history` prints it.
pub fn history_table(revisions: &[Revision]) -> String {
    let mut lines = vec![vec!["REVISION".to_string(), "CHANGE-CAUSE".to_string()]];
    for r in revisions {
        let cause = r
            .change_cause
            .as_deref()
            .unwrap_or("<none>")
            .replace(['\n', '\r', '\t'], " ");
        lines.push(vec![r.number.to_string(), cause]);
    }
    crate::api::table::tabwrite(&lines, 0, 2)
}

/// One revision's pod template, as `kubectl rollout history --revision=N` prints it (the
/// change cause shown among the template's annotations, as kubectl shows it).
pub fn revision_details(revision: &Revision) -> String {
    let mut template = revision.template.clone();
    if let Some(cause) = &revision.change_cause
        && let Some(t) = template.as_object_mut()
    {
        let metadata = t.entry("metadata").or_insert_with(|| json!({}));
        if let Some(m) = metadata.as_object_mut() {
            let annotations = m.entry("annotations").or_insert_with(|| json!({}));
            if let Some(a) = annotations.as_object_mut() {
                a.insert(CHANGE_CAUSE.to_string(), json!(cause));
            }
        }
    }
    describe::pod_template_text(&template)
}

/// The revision with number `number` (`None` when there is none).
pub fn find_revision(revisions: &[Revision], number: i64) -> Option<&Revision> {
    revisions.iter().rev().find(|r| r.number == number)
}

/// The ReplicaSet `rollout undo` goes back to: revision `to_revision`, or with 0 the one
/// before the newest (kubectl's choice, also when the newest is not the current one).
pub fn rollback_target<'a>(
    deploy: &Value,
    sets: &'a [Value],
    to_revision: i64,
) -> Result<&'a Value, RolloutError> {
    let owned = controlled_by(deploy, sets);
    if to_revision > 0 {
        return owned
            .into_iter()
            .find(|rs| revision(rs) == Some(to_revision))
            .ok_or(RolloutError::RevisionNotFound {
                revision: to_revision,
            });
    }
    let mut numbered: Vec<(i64, &Value)> = owned
        .into_iter()
        .filter_map(|rs| Some((revision(rs)?, rs)))
        .collect();
    numbered.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    numbered
        .get(1)
        .map(|(_, rs)| *rs)
        .ok_or_else(|| RolloutError::NoHistory {
            name: meta::name(deploy).to_string(),
        })
}

/// A pod template without what never tells two templates apart: the `pod-template-hash`
/// label and an empty `creationTimestamp`.
fn normalised_template(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(m) = t.get_mut("metadata").and_then(Value::as_object_mut) {
        if let Some(labels) = m.get_mut("labels").and_then(Value::as_object_mut) {
            labels.remove(HASH_LABEL);
            if labels.is_empty() {
                m.remove("labels");
            }
        }
        if m.get("creationTimestamp").is_some_and(Value::is_null) {
            m.remove("creationTimestamp");
        }
        if m.get("annotations")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
        {
            m.remove("annotations");
        }
        if m.is_empty()
            && let Some(o) = t.as_object_mut()
        {
            o.remove("metadata");
        }
    }
    t
}

/// Whether two pod templates are the same apart from the `pod-template-hash` label.
pub fn templates_match(a: &Value, b: &Value) -> bool {
    normalised_template(a) == normalised_template(b)
}

/// The JSON patch (RFC 6902) that puts `rs`'s template back into `deploy`, with the
/// ReplicaSet's annotations (its change cause) over the Deployment's own. The Deployment's
/// resourceVersion goes with it: a Deployment changed since it was read is a Conflict.
///
/// Unlike kubectl, annotations of the Deployment that the ReplicaSet lacks are kept (berth's
/// controller does not copy them onto ReplicaSets), except the change cause, which belongs
/// to the revision.
pub fn undo_patch(deploy: &Value, rs: &Value) -> Value {
    let template = normalised_template(rs.pointer("/spec/template").unwrap_or(&Value::Null));
    let mut annotations = meta::annotations(deploy);
    annotations.remove(CHANGE_CAUSE);
    for (k, v) in meta::annotations(rs) {
        if !KEEP_ON_UNDO.contains(&k.as_str()) {
            annotations.insert(k, v);
        }
    }
    let mut ops = Vec::new();
    let rv = meta::resource_version(deploy);
    if !rv.is_empty() {
        ops.push(json!({"op": "add", "path": "/metadata/resourceVersion", "value": rv}));
    }
    ops.push(json!({"op": "replace", "path": "/spec/template", "value": template}));
    ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": annotations}));
    Value::Array(ops)
}

/// Where `rollout status` stands: kubectl's message, and whether the rollout is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutStatus {
    pub message: String,
    pub done: bool,
}

fn int_at(obj: &Value, pointer: &str) -> Option<i64> {
    obj.pointer(pointer).and_then(Value::as_i64)
}

/// Reads a Deployment's rollout as `kubectl rollout status` does. With `revision`, a
/// Deployment at another revision is an error. A Progressing condition with reason
/// ProgressDeadlineExceeded is an error.
pub fn rollout_status(
    deploy: &Value,
    revision_wanted: Option<i64>,
) -> Result<RolloutStatus, RolloutError> {
    let name = meta::name(deploy).to_string();
    if let Some(wanted) = revision_wanted.filter(|r| *r > 0) {
        let running =
            revision(deploy).ok_or_else(|| RolloutError::NoRevision { name: name.clone() })?;
        if running != wanted {
            return Err(RolloutError::RevisionMismatch { wanted, running });
        }
    }
    let generation = int_at(deploy, "/metadata/generation").unwrap_or(0);
    let observed = int_at(deploy, "/status/observedGeneration").unwrap_or(0);
    let waiting = |message: String| {
        Ok(RolloutStatus {
            message,
            done: false,
        })
    };
    if generation > observed {
        return waiting("Waiting for deployment spec update to be observed...".to_string());
    }
    let timed_out = deploy
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded")
        });
    if timed_out {
        return Err(RolloutError::ProgressDeadline { name });
    }
    let replicas = int_at(deploy, "/spec/replicas");
    let status = |f: &str| int_at(deploy, &format!("/status/{f}")).unwrap_or(0);
    let (updated, total, available) = (
        status("updatedReplicas"),
        status("replicas"),
        status("availableReplicas"),
    );
    if let Some(want) = replicas
        && updated < want
    {
        return waiting(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {updated} out of {want} new replicas have been updated..."
        ));
    }
    if total > updated {
        return waiting(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {} old replicas are pending termination...",
            total - updated
        ));
    }
    if available < updated {
        return waiting(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    Ok(RolloutStatus {
        message: format!("deployment \"{name}\" successfully rolled out"),
        done: true,
    })
}

/// Reads a StatefulSet's rollout as `kubectl rollout status` does (only for the
/// RollingUpdate strategy; a partition counts only the pods at or above it).
pub fn statefulset_status(sts: &Value) -> Result<RolloutStatus, RolloutError> {
    if meta::str_at(sts, "/spec/updateStrategy/type") != "RollingUpdate" {
        return Err(RolloutError::NotRollingUpdate);
    }
    let waiting = |message: String| {
        Ok(RolloutStatus {
            message,
            done: false,
        })
    };
    let generation = int_at(sts, "/metadata/generation").unwrap_or(0);
    let observed = int_at(sts, "/status/observedGeneration").unwrap_or(0);
    if observed == 0 || generation > observed {
        return waiting("Waiting for statefulset spec update to be observed...".to_string());
    }
    let status = |f: &str| int_at(sts, &format!("/status/{f}")).unwrap_or(0);
    let replicas = int_at(sts, "/spec/replicas");
    if let Some(want) = replicas
        && status("readyReplicas") < want
    {
        return waiting(format!(
            "Waiting for {} pods to be ready...",
            want - status("readyReplicas")
        ));
    }
    if sts.pointer("/spec/updateStrategy/rollingUpdate").is_some() {
        if let (Some(want), Some(partition)) = (
            replicas,
            int_at(sts, "/spec/updateStrategy/rollingUpdate/partition"),
        ) && status("updatedReplicas") < want - partition
        {
            return waiting(format!(
                "Waiting for partitioned roll out to finish: {} out of {} new pods have been updated...",
                status("updatedReplicas"),
                want - partition
            ));
        }
        return Ok(RolloutStatus {
            message: format!(
                "partitioned roll out complete: {} new pods have been updated...",
                status("updatedReplicas")
            ),
            done: true,
        });
    }
    let (current, update) = (
        meta::str_at(sts, "/status/currentRevision"),
        meta::str_at(sts, "/status/updateRevision"),
    );
    if current != update {
        return waiting(format!(
            "waiting for statefulset rolling update to complete {} pods at revision {update}...",
            status("updatedReplicas")
        ));
    }
    Ok(RolloutStatus {
        message: format!(
            "statefulset rolling update complete {} pods at revision {current}...",
            status("currentReplicas")
        ),
        done: true,
    })
}

fn is_paused(deploy: &Value) -> bool {
    deploy
        .pointer("/spec/paused")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The merge patch that pauses (`pause`) or resumes a Deployment, with its resourceVersion.
pub fn pause_patch(deploy: &Value, pause: bool) -> Result<Value, RolloutError> {
    let name = meta::name(deploy).to_string();
    match (pause, is_paused(deploy)) {
        (true, true) => Err(RolloutError::AlreadyPaused { name }),
        (false, false) => Err(RolloutError::NotPaused { name }),
        _ => Ok(json!({
            "metadata": {"resourceVersion": meta::resource_version(deploy)},
            "spec": {"paused": if pause { json!(true) } else { Value::Null }},
        })),
    }
}

/// The merge patch that restarts a Deployment's pods: `restartedAt` = `now` (RFC 3339) on
/// its pod template, which makes a new template and so a rollout.
pub fn restart_patch(deploy: &Value, now: &str) -> Result<Value, RolloutError> {
    let name = meta::name(deploy).to_string();
    if is_paused(deploy) {
        return Err(RolloutError::RestartPaused { name });
    }
    let current = deploy
        .pointer("/spec/template/metadata/annotations")
        .and_then(|a| a.get(RESTARTED_AT))
        .and_then(Value::as_str);
    if current == Some(now) {
        return Err(RolloutError::RestartTooSoon { name });
    }
    Ok(json!({
        "metadata": {"resourceVersion": meta::resource_version(deploy)},
        "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}},
    }))
}

/// The time as `rollout restart` writes it: RFC 3339 in UTC, to the second.
pub fn restart_timestamp(now: jiff::Timestamp) -> String {
    now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The strategic merge patch that sets container images (`CONTAINER=IMAGE`; `*` for every
/// container) in the pod template of `obj` (`spec.template.spec`), with its
/// resourceVersion. `None` when every image is already as asked. A name that matches no
/// container, init container or ephemeral container is an error, and then nothing is
/// patched at all.
pub fn set_image_patch(obj: &Value, images: &[ImageUpdate]) -> Result<Option<Value>, RolloutError> {
    let spec = obj
        .pointer("/spec/template/spec")
        .ok_or_else(|| RolloutError::NoPodTemplate {
            resource: obj["kind"].as_str().unwrap_or("object").to_lowercase(),
            name: meta::name(obj).to_string(),
        })?;
    let mut changes: Map<String, Value> = Map::new();
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let containers = spec.get(list).and_then(Value::as_array);
        let mut changed = Vec::new();
        for c in containers.into_iter().flatten() {
            let name = c["name"].as_str().unwrap_or_default();
            // The last CONTAINER=IMAGE for a name wins; `*` is overridden by a name.
            let wanted = images
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .or_else(|| images.iter().rev().find(|(n, _)| n == "*"));
            if let Some((_, image)) = wanted
                && c["image"].as_str() != Some(image.as_str())
            {
                changed.push(json!({"name": name, "image": image}));
            }
        }
        if !changed.is_empty() {
            changes.insert(list.to_string(), Value::Array(changed));
        }
    }
    for (name, _) in images.iter().filter(|(n, _)| n != "*") {
        let known = ["initContainers", "containers", "ephemeralContainers"]
            .iter()
            .filter_map(|l| spec.get(*l).and_then(Value::as_array))
            .flatten()
            .any(|c| c["name"].as_str() == Some(name.as_str()));
        if !known {
            return Err(RolloutError::ContainerNotFound {
                container: name.clone(),
            });
        }
    }
    if changes.is_empty() {
        return Ok(None);
    }
    Ok(Some(json!({
        "metadata": {"resourceVersion": meta::resource_version(obj)},
        "spec": {"template": {"spec": Value::Object(changes)}},
    })))
}

// ---------------------------------------------------------------------------------------
// Calls

/// Runs `f` again (up to [`ATTEMPTS`] times) while it fails with a Conflict: each run reads
/// fresh state and decides again.
async fn retry_on_conflict<T, F, Fut>(mut f: F) -> Result<T, RolloutError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RolloutError>>,
{
    let mut attempt = 1;
    loop {
        match f().await {
            Err(RolloutError::Client(ClientError::Api(ApiError::Conflict { .. })))
                if attempt < ATTEMPTS =>
            {
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A Deployment.
pub async fn get_deployment(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Value, RolloutError> {
    Ok(client.get(deployments()?, Some(namespace), name).await?)
}

/// The Deployment and its ReplicaSets (all of the namespace; [`controlled_by`] picks).
async fn deployment_and_sets(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<(Value, Vec<Value>), RolloutError> {
    let deploy = get_deployment(client, namespace, name).await?;
    let sets = client
        .list(replica_sets()?, Some(namespace), &ListOptions::default())
        .await?
        .items;
    Ok((deploy, sets))
}

/// A Deployment's revisions, oldest first.
pub async fn list_history(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Vec<Revision>, RolloutError> {
    let (deploy, sets) = deployment_and_sets(client, namespace, name).await?;
    Ok(history(&deploy, &sets))
}

/// The revisions of StatefulSet `sts`: the ControllerRevisions among `revisions` it
/// controls, oldest first (`replica_set` names the ControllerRevision).
pub fn statefulset_history(sts: &Value, revisions: &[Value]) -> Vec<Revision> {
    let mut revs: Vec<Revision> = controlled_by(sts, revisions)
        .into_iter()
        .map(|r| {
            let mut template = r
                .pointer("/data/spec/template")
                .cloned()
                .unwrap_or(Value::Null);
            if let Some(t) = template.as_object_mut() {
                t.remove("$patch");
            }
            Revision {
                number: int_at(r, "/revision").unwrap_or(0),
                change_cause: meta::annotations(r)
                    .get(CHANGE_CAUSE)
                    .filter(|c| !c.is_empty())
                    .cloned(),
                replica_set: meta::name(r).to_string(),
                template,
            }
        })
        .collect();
    revs.sort_by(|a, b| {
        a.number
            .cmp(&b.number)
            .then_with(|| a.replica_set.cmp(&b.replica_set))
    });
    revs
}

/// A StatefulSet and its revisions, oldest first.
pub async fn list_statefulset_history(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<(Value, Vec<Revision>), RolloutError> {
    let sts = client
        .get(kind("apps/v1", "StatefulSet")?, Some(namespace), name)
        .await?;
    let revisions = client
        .list(
            kind("apps/v1", "ControllerRevision")?,
            Some(namespace),
            &ListOptions::default(),
        )
        .await?
        .items;
    let history = statefulset_history(&sts, &revisions);
    Ok((sts, history))
}

/// Rolls a StatefulSet back to `to_revision` (0: the one before the newest): its template
/// becomes the revision's, and the controller rolls the pods.
pub async fn undo_statefulset(
    client: &Client,
    namespace: &str,
    name: &str,
    to_revision: i64,
) -> Result<UndoOutcome, RolloutError> {
    retry_on_conflict(|| async {
        let (sts, history) = list_statefulset_history(client, namespace, name).await?;
        let target = if to_revision > 0 {
            find_revision(&history, to_revision).ok_or(RolloutError::RevisionNotFound {
                revision: to_revision,
            })?
        } else {
            history
                .len()
                .checked_sub(2)
                .and_then(|i| history.get(i))
                .ok_or(RolloutError::NoLastRevision)?
        };
        let revision = target.number;
        let current = sts.pointer("/spec/template").unwrap_or(&Value::Null);
        if templates_match(&target.template, current) {
            return Ok(UndoOutcome::Skipped { revision });
        }
        let mut ops = Vec::new();
        let rv = meta::resource_version(&sts);
        if !rv.is_empty() {
            ops.push(json!({"op": "add", "path": "/metadata/resourceVersion", "value": rv}));
        }
        ops.push(json!({"op": "replace", "path": "/spec/template", "value": target.template}));
        client
            .patch(
                kind("apps/v1", "StatefulSet")?,
                Some(namespace),
                name,
                PatchType::Json,
                &Value::Array(ops),
            )
            .await?;
        Ok(UndoOutcome::RolledBack { revision })
    })
    .await
}

/// What `rollout undo` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoOutcome {
    /// The template of `revision` is the Deployment's again.
    RolledBack { revision: i64 },
    /// The Deployment already had the template of `revision`.
    Skipped { revision: i64 },
}

/// Rolls a Deployment back to `to_revision` (0: the previous revision).
pub async fn undo(
    client: &Client,
    namespace: &str,
    name: &str,
    to_revision: i64,
) -> Result<UndoOutcome, RolloutError> {
    retry_on_conflict(|| async {
        let (deploy, sets) = deployment_and_sets(client, namespace, name).await?;
        if is_paused(&deploy) {
            return Err(RolloutError::UndoPaused {
                name: name.to_string(),
            });
        }
        let rs = rollback_target(&deploy, &sets, to_revision)?;
        let revision = revision(rs).unwrap_or(to_revision);
        let current = deploy.pointer("/spec/template").unwrap_or(&Value::Null);
        if templates_match(
            rs.pointer("/spec/template").unwrap_or(&Value::Null),
            current,
        ) {
            return Ok(UndoOutcome::Skipped { revision });
        }
        client
            .patch(
                deployments()?,
                Some(namespace),
                name,
                PatchType::Json,
                &undo_patch(&deploy, rs),
            )
            .await?;
        Ok(UndoOutcome::RolledBack { revision })
    })
    .await
}

/// Reads the Deployment, computes a patch from it and applies it, again on a Conflict.
async fn patch_deployment(
    client: &Client,
    namespace: &str,
    name: &str,
    kind: PatchType,
    make: impl Fn(&Value) -> Result<Value, RolloutError>,
) -> Result<Value, RolloutError> {
    retry_on_conflict(|| async {
        let deploy = get_deployment(client, namespace, name).await?;
        let patch = make(&deploy)?;
        Ok(client
            .patch(deployments()?, Some(namespace), name, kind, &patch)
            .await?)
    })
    .await
}

/// Pauses a Deployment: template changes wait until it is resumed.
pub async fn pause(client: &Client, namespace: &str, name: &str) -> Result<Value, RolloutError> {
    patch_deployment(client, namespace, name, PatchType::Merge, |d| {
        pause_patch(d, true)
    })
    .await
}

/// Resumes a paused Deployment.
pub async fn resume(client: &Client, namespace: &str, name: &str) -> Result<Value, RolloutError> {
    patch_deployment(client, namespace, name, PatchType::Merge, |d| {
        pause_patch(d, false)
    })
    .await
}

/// Replaces every pod of a Deployment through a rollout.
pub async fn restart(client: &Client, namespace: &str, name: &str) -> Result<Value, RolloutError> {
    let now = restart_timestamp(jiff::Timestamp::now());
    patch_deployment(client, namespace, name, PatchType::Merge, |d| {
        restart_patch(d, &now)
    })
    .await
}

/// Sets container images in the pod template of a Deployment, ReplicaSet or StatefulSet.
/// `None` when nothing had to change.
pub async fn set_image(
    client: &Client,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
    images: &[ImageUpdate],
) -> Result<Option<Value>, RolloutError> {
    retry_on_conflict(|| async {
        let obj = client.get(rt, Some(namespace), name).await?;
        let Some(patch) = set_image_patch(&obj, images)? else {
            return Ok(None);
        };
        Ok(Some(
            client
                .patch(rt, Some(namespace), name, PatchType::Strategic, &patch)
                .await?,
        ))
    })
    .await
}

fn scale_path(rt: &ResourceType, namespace: &str, name: &str) -> String {
    format!("{}/scale", super::object_path(rt, Some(namespace), name))
}

/// Sets `spec.replicas` through the `scale` subresource. With `current`, only when the
/// object has that many now (checked against the Scale read, written with its
/// resourceVersion). Returns the new Scale.
pub async fn scale(
    client: &Client,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
    replicas: i64,
    current: Option<i64>,
) -> Result<Value, RolloutError> {
    if replicas < 0 {
        return Err(RolloutError::NegativeReplicas);
    }
    if !rt.scale_subresource {
        return Err(RolloutError::NotScalable {
            resource: rt.group_resource(),
        });
    }
    let path = scale_path(rt, namespace, name);
    let Some(expected) = current else {
        let body = serde_json::to_vec(&json!({"spec": {"replicas": replicas}})).unwrap_or_default();
        return Ok(client
            .request(
                hyper::Method::PATCH,
                &path,
                Some(PatchType::Merge.content_type()),
                Some(body),
            )
            .await?);
    };
    retry_on_conflict(|| async {
        let mut scale = client
            .request(hyper::Method::GET, &path, None, None)
            .await?;
        let actual = int_at(&scale, "/spec/replicas").unwrap_or(0);
        if actual != expected {
            return Err(RolloutError::ScalePrecondition { expected, actual });
        }
        scale["spec"]["replicas"] = json!(replicas);
        let body = serde_json::to_vec(&scale).unwrap_or_default();
        Ok(client
            .request(
                hyper::Method::PUT,
                &path,
                Some("application/json"),
                Some(body),
            )
            .await?)
    })
    .await
}

/// How [`wait_rollout`] waits.
#[derive(Debug, Clone, Default)]
pub struct StatusOptions {
    /// Fail when the Deployment is at another revision.
    pub revision: Option<i64>,
    /// Keep watching until the rollout is done (false: report once).
    pub watch: bool,
    /// Give up after this long (`None`: never).
    pub timeout: Option<Duration>,
}

/// Follows a Deployment's rollout by watching it: `report` gets each new status (only when
/// the message changes); returns the last one (done, unless `watch` is off). A progress
/// deadline exceeded, a revision other than the one asked for, the Deployment's deletion
/// and the timeout are errors.
pub async fn wait_rollout(
    client: &Client,
    rt: &'static ResourceType,
    namespace: &str,
    name: &str,
    options: &StatusOptions,
    mut report: impl FnMut(&RolloutStatus),
) -> Result<RolloutStatus, RolloutError> {
    let kind: &'static str = match rt.kind {
        "StatefulSet" => "statefulset",
        _ => "deployment",
    };
    let rollout_status = |obj: &Value, revision: Option<i64>| match kind {
        "statefulset" => statefulset_status(obj),
        _ => rollout_status(obj, revision),
    };
    let mut last: Option<String> = None;
    let mut show = |s: &RolloutStatus| {
        if last.as_deref() != Some(s.message.as_str()) {
            report(s);
            last = Some(s.message.clone());
        }
    };
    // A missing object is the usual NotFound, before any waiting.
    let first = client.get(rt, Some(namespace), name).await?;
    let status = rollout_status(&first, options.revision)?;
    show(&status);
    if status.done || !options.watch {
        return Ok(status);
    }
    let follow = async {
        let opts = ListOptions {
            field_selector: Some(format!("metadata.name={name}")),
            ..Default::default()
        };
        loop {
            let list = client.list(rt, Some(namespace), &opts).await?;
            let Some(deploy) = list.items.first() else {
                return Err(RolloutError::Deleted {
                    kind,
                    name: name.to_string(),
                });
            };
            let status = rollout_status(deploy, options.revision)?;
            show(&status);
            if status.done {
                return Ok(status);
            }
            let mut watch = match client
                .watch(rt, Some(namespace), &opts, &list.resource_version)
                .await
            {
                Ok(w) => w,
                Err(ClientError::Api(ApiError::Gone { .. })) => continue,
                Err(e) => return Err(e.into()),
            };
            // Until the server ends the stream; then list and watch again.
            while let Some(event) = watch.next().await {
                let event = match event {
                    Ok(e) => e,
                    Err(ClientError::Api(ApiError::Gone { .. })) => break,
                    Err(e) => return Err(e.into()),
                };
                match event.kind {
                    EventType::Added | EventType::Modified => {
                        let status = rollout_status(&event.object, options.revision)?;
                        show(&status);
                        if status.done {
                            return Ok(status);
                        }
                    }
                    EventType::Deleted => {
                        return Err(RolloutError::Deleted {
                            kind,
                            name: name.to_string(),
                        });
                    }
                    EventType::Bookmark | EventType::Error => {}
                }
            }
        }
    };
    match options.timeout {
        Some(t) => tokio::time::timeout(t, follow)
            .await
            .map_err(|_| RolloutError::Timeout)?,
        None => follow.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "d-1", "resourceVersion": "42",
                "generation": 2,
                "annotations": {REVISION: "2", "team": "blue", CHANGE_CAUSE: "v2",
                    "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "main", "image": "busybox:2"}]}},
            },
            "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3},
        })
    }

    fn rs(name: &str, rev: Option<&str>, owner: &str, image: &str, cause: Option<&str>) -> Value {
        let mut annotations = json!({});
        if let Some(r) = rev {
            annotations[REVISION] = json!(r);
        }
        if let Some(c) = cause {
            annotations[CHANGE_CAUSE] = json!(c);
        }
        annotations["deployment.kubernetes.io/desired-replicas"] = json!("3");
        json!({
            "metadata": {"name": name, "annotations": annotations,
                "ownerReferences": [{"kind": "Deployment", "name": "web", "uid": owner, "controller": true}]},
            "spec": {"template": {"metadata": {"labels": {"app": "web", HASH_LABEL: name}},
                "spec": {"containers": [{"name": "main", "image": image}]}}},
        })
    }

    fn sets() -> Vec<Value> {
        vec![
            rs("web-b", Some("2"), "d-1", "busybox:2", Some("v2")),
            rs("web-a", Some("1"), "d-1", "busybox:1", None),
            rs("other-x", Some("7"), "d-2", "busybox:9", None),
            rs("web-junk", Some("x"), "d-1", "busybox:0", None),
        ]
    }

    #[test]
    fn statefulset_rollouts_read_as_kubectl_reads_them() {
        let sts = |generation: i64, partition: Option<i64>, status: Value| {
            let mut s = json!({"metadata": {"name": "web", "generation": generation},
                "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate"}},
                "status": status});
            if let Some(p) = partition {
                s["spec"]["updateStrategy"]["rollingUpdate"] = json!({"partition": p});
            }
            s
        };
        let msg = |s: &Value| statefulset_status(s).map(|r| (r.message, r.done)).unwrap();
        assert_eq!(
            msg(&sts(2, None, json!({"observedGeneration": 1}))),
            (
                "Waiting for statefulset spec update to be observed...".into(),
                false
            )
        );
        assert_eq!(
            msg(&sts(
                1,
                None,
                json!({"observedGeneration": 1, "readyReplicas": 1})
            )),
            ("Waiting for 2 pods to be ready...".into(), false)
        );
        let ready = json!({"observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 1,
            "currentReplicas": 2, "currentRevision": "web-a", "updateRevision": "web-b"});
        assert_eq!(
            msg(&sts(1, Some(2), ready.clone())),
            (
                "partitioned roll out complete: 1 new pods have been updated...".into(),
                true
            )
        );
        assert_eq!(
            msg(&sts(1, Some(0), ready.clone())),
            ("Waiting for partitioned roll out to finish: 1 out of 3 new pods have been updated...".into(), false)
        );
        assert_eq!(
            msg(&sts(1, None, ready)),
            (
                "waiting for statefulset rolling update to complete 1 pods at revision web-b..."
                    .into(),
                false
            )
        );
        let done = json!({"observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 3,
            "currentReplicas": 3, "currentRevision": "web-b", "updateRevision": "web-b"});
        assert_eq!(
            msg(&sts(1, None, done)),
            (
                "statefulset rolling update complete 3 pods at revision web-b...".into(),
                true
            )
        );
        let mut on_delete = sts(1, None, json!({}));
        on_delete["spec"]["updateStrategy"]["type"] = json!("OnDelete");
        assert!(matches!(
            statefulset_status(&on_delete),
            Err(RolloutError::NotRollingUpdate)
        ));
    }

    #[test]
    fn history_lists_owned_revisions_oldest_first() {
        let h = history(&deploy(), &sets());
        let numbers: Vec<i64> = h.iter().map(|r| r.number).collect();
        assert_eq!(numbers, vec![1, 2]);
        assert_eq!(h[1].change_cause.as_deref(), Some("v2"));
        assert_eq!(
            history_table(&h),
            "REVISION  CHANGE-CAUSE\n1         <none>\n2         v2\n"
        );
        assert_eq!(
            find_revision(&h, 1).map(|r| r.replica_set.as_str()),
            Some("web-a")
        );
        assert!(find_revision(&h, 3).is_none());
        let text = revision_details(&h[1]);
        assert!(text.starts_with("Pod Template:\n"), "{text}");
        assert!(text.contains("kubernetes.io/change-cause: v2"), "{text}");
        assert!(text.contains("busybox:2"), "{text}");
    }

    #[test]
    fn undo_goes_to_the_previous_or_the_named_revision() {
        let (d, s) = (deploy(), sets());
        assert_eq!(
            meta::name(rollback_target(&d, &s, 0).expect("previous")),
            "web-a"
        );
        assert_eq!(
            meta::name(rollback_target(&d, &s, 2).expect("named")),
            "web-b"
        );
        let err = rollback_target(&d, &s, 5).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "unable to find specified revision 5 in history"
        );
        let only = vec![rs("web-b", Some("2"), "d-1", "busybox:2", None)];
        let err = rollback_target(&d, &only, 0).expect_err("no previous");
        assert_eq!(
            err.to_string(),
            "no rollout history found for deployment \"web\""
        );
    }

    #[test]
    fn templates_match_ignores_the_hash_label_and_empty_metadata() {
        let d = deploy();
        let s = sets();
        let current = &d["spec"]["template"];
        assert!(templates_match(&s[0]["spec"]["template"], current));
        assert!(!templates_match(&s[1]["spec"]["template"], current));
        let mut with_null = current.clone();
        with_null["metadata"]["creationTimestamp"] = Value::Null;
        with_null["metadata"]["annotations"] = json!({});
        assert!(templates_match(&with_null, current));
    }

    #[test]
    fn the_undo_patch_restores_the_template_and_the_revision_annotations() {
        let d = deploy();
        let s = sets();
        let patch = undo_patch(&d, &s[1]);
        assert_eq!(
            patch[0],
            json!({"op": "add", "path": "/metadata/resourceVersion", "value": "42"})
        );
        assert_eq!(patch[1]["path"], "/spec/template");
        assert_eq!(
            patch[1]["value"],
            json!({"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "main", "image": "busybox:1"}]}})
        );
        let annotations = &patch[2]["value"];
        assert_eq!(annotations[REVISION], "2", "the Deployment's own stays");
        assert_eq!(annotations["team"], "blue");
        assert!(annotations.get(CHANGE_CAUSE).is_none(), "{annotations}");
        assert_eq!(
            annotations["deployment.kubernetes.io/desired-replicas"],
            Value::Null
        );
        // The patch applies as the server applies it.
        let out = crate::api::patch::apply_patch(PatchType::Json, &d, &patch).expect("applies");
        assert!(templates_match(
            &out["spec"]["template"],
            &s[1]["spec"]["template"]
        ));
    }

    #[test]
    fn status_reads_like_kubectl() {
        let mut d = deploy();
        let msg = |d: &Value| rollout_status(d, None).expect("status");
        assert_eq!(
            msg(&d),
            RolloutStatus {
                message: "deployment \"web\" successfully rolled out".into(),
                done: true
            }
        );
        d["status"] = json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1, "availableReplicas": 3});
        assert_eq!(
            msg(&d).message,
            "Waiting for deployment \"web\" rollout to finish: 1 out of 3 new replicas have been updated..."
        );
        d["status"] = json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3});
        assert_eq!(
            msg(&d).message,
            "Waiting for deployment \"web\" rollout to finish: 1 old replicas are pending termination..."
        );
        d["status"] = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2});
        assert_eq!(
            msg(&d).message,
            "Waiting for deployment \"web\" rollout to finish: 2 of 3 updated replicas are available..."
        );
        assert!(!msg(&d).done);
        d["status"]["observedGeneration"] = json!(1);
        assert_eq!(
            msg(&d).message,
            "Waiting for deployment spec update to be observed..."
        );
        d["status"] = json!({"observedGeneration": 2, "conditions": [
            {"type": "Available", "status": "False"},
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]});
        assert_eq!(
            rollout_status(&d, None).expect_err("deadline").to_string(),
            "deployment \"web\" exceeded its progress deadline"
        );
        let d = deploy();
        assert!(rollout_status(&d, Some(2)).is_ok());
        assert_eq!(
            rollout_status(&d, Some(1))
                .expect_err("other revision")
                .to_string(),
            "desired revision (1) is different from the running revision (2)"
        );
    }

    #[test]
    fn pause_resume_and_restart_patches() {
        let mut d = deploy();
        assert_eq!(
            pause_patch(&d, true).expect("pause"),
            json!({"metadata": {"resourceVersion": "42"}, "spec": {"paused": true}})
        );
        assert_eq!(
            pause_patch(&d, false).expect_err("not paused").to_string(),
            "deployments.apps \"web\" is not paused"
        );
        d["spec"]["paused"] = json!(true);
        assert_eq!(
            pause_patch(&d, true).expect_err("paused").to_string(),
            "deployments.apps \"web\" is already paused"
        );
        assert_eq!(
            pause_patch(&d, false).expect("resume")["spec"]["paused"],
            Value::Null
        );
        assert!(matches!(
            restart_patch(&d, "2025-01-01T00:00:00Z"),
            Err(RolloutError::RestartPaused { .. })
        ));
        d["spec"]["paused"] = json!(false);
        let p = restart_patch(&d, "2025-01-01T00:00:00Z").expect("restart");
        assert_eq!(
            p["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT],
            "2025-01-01T00:00:00Z"
        );
        d["spec"]["template"]["metadata"]["annotations"] =
            json!({RESTARTED_AT: "2025-01-01T00:00:00Z"});
        assert!(matches!(
            restart_patch(&d, "2025-01-01T00:00:00Z"),
            Err(RolloutError::RestartTooSoon { .. })
        ));
        let t: jiff::Timestamp = "2025-03-04T05:06:07.89Z".parse().expect("time");
        assert_eq!(restart_timestamp(t), "2025-03-04T05:06:07Z");
    }

    #[test]
    fn set_image_patches_only_what_changes_and_refuses_unknown_names() {
        let mut d = deploy();
        d["spec"]["template"]["spec"]["initContainers"] =
            json!([{"name": "init", "image": "busybox:1"}]);
        let pair = |n: &str, i: &str| (n.to_string(), i.to_string());
        let p = set_image_patch(&d, &[pair("main", "busybox:3")])
            .expect("ok")
            .expect("a change");
        assert_eq!(
            p,
            json!({"metadata": {"resourceVersion": "42"}, "spec": {"template": {"spec": {
                "containers": [{"name": "main", "image": "busybox:3"}]}}}})
        );
        assert_eq!(
            set_image_patch(&d, &[pair("main", "busybox:2")]).expect("ok"),
            None
        );
        let all = set_image_patch(&d, &[pair("*", "busybox:9")])
            .expect("ok")
            .expect("a change");
        assert_eq!(
            all["spec"]["template"]["spec"]["initContainers"][0]["image"],
            "busybox:9"
        );
        assert_eq!(
            all["spec"]["template"]["spec"]["containers"][0]["image"],
            "busybox:9"
        );
        let err = set_image_patch(&d, &[pair("main", "busybox:3"), pair("nope", "x")])
            .expect_err("unknown");
        assert_eq!(err.to_string(), "unable to find container named \"nope\"");
        let pod = json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {}});
        assert!(matches!(
            set_image_patch(&pod, &[pair("main", "x")]),
            Err(RolloutError::NoPodTemplate { .. })
        ));
    }
}
