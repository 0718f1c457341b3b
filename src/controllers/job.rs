//! The Job controller (batch/v1), with Kubernetes' semantics.
//!
//! - **Pods** are created from the template, named `<job>-<5 characters>` (Indexed:
//!   `<job>-<index>-<5 characters>`), owned through a controller ownerReference and held by
//!   the `batch.kubernetes.io/job-tracking` finalizer until they are counted. At most
//!   `parallelism` run at once, and no more than the completions still missing; surplus
//!   pods go in the ReplicaSet's order. Finished pods stay (for their logs) and are never
//!   run again.
//! - **Counting** is Kubernetes' finalizer protocol, so a pod deleted after it finished is
//!   still counted, and counted once: a finished pod's uid is first written to
//!   `status.uncountedTerminatedPods`, then its finalizer is removed, then it moves to
//!   `status.succeeded` / `status.failed`. A pod deleted before it succeeded counts as
//!   failed, except one deleted because the Job was suspended.
//! - **Failure**: more failed pods than `backoffLimit` (with `restartPolicy: OnFailure`, also
//!   container restarts in running pods reaching it, as Kubernetes counts them), or running
//!   longer than `activeDeadlineSeconds` since `startTime`: the `FailureTarget` condition and
//!   a Warning event (`BackoffLimitExceeded` / `DeadlineExceeded`), the active pods are
//!   deleted, and once none is left the `Failed` condition.
//! - **Success**: `completions` succeeded pods (without `completions`: one, once no pod is
//!   still running; Indexed: every index): `SuccessCriteriaMet`, remaining pods deleted,
//!   then `Complete`, `completionTime` and the `Completed` event.
//! - A failed pod is replaced after Kubernetes' back-off: the base delay (10 s by default)
//!   doubling with each failure since the last success, up to six minutes. The record is
//!   kept in memory, as Kubernetes does; after a daemon restart replacements start at once.
//! - `suspend` deletes the active pods and sets `Suspended`; resuming resets `startTime`.
//! - `ttlSecondsAfterFinished`: the finished Job is deleted (Background propagation, so
//!   the garbage collector takes its pods) that long after it finished.
//!
//! Not done: `podFailurePolicy`, `successPolicy`, `backoffLimitPerIndex`, and
//! `podReplacementPolicy: Failed` (a terminating pod is replaced at once, as with the
//! default `TerminatingOrFailed`); orphan pods are not adopted.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::Wake;
use super::replicaset::{deletion_rank, name_suffix};
use crate::api::watch::EventType as ChangeType;
use crate::api::{ApiError, meta, registry};
use crate::events::{EventType, Recorder};
use crate::store::{Change, DeleteOptions, Propagation, Store, StoreError, Subresource};

/// Holds a pod until the controller has counted it.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// Annotation and label with an Indexed Job pod's index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The longest back-off before a failed pod is replaced (Kubernetes' `MaxJobPodFailureBackOff`).
const MAX_BACKOFF: Duration = Duration::from_secs(360);

const BACKOFF_REASON: &str = "BackoffLimitExceeded";
const BACKOFF_MESSAGE: &str = "Job has reached the specified backoff limit";
const DEADLINE_REASON: &str = "DeadlineExceeded";
const DEADLINE_MESSAGE: &str = "Job was active longer than specified deadline";
const COMPLETIONS_REASON: &str = "CompletionsReached";
const COMPLETIONS_MESSAGE: &str = "Reached expected number of succeeded pods";

pub(super) fn relevant(c: &Change) -> bool {
    match c.resource.kind {
        "Job" => c.resource.group == "batch",
        "Pod" => {
            job_owner_uid(&c.object).is_some()
                || has_finalizer(&c.object)
                || (c.kind == ChangeType::Modified
                    && c.previous.as_ref().is_some_and(has_finalizer))
        }
        _ => false,
    }
}

/// The uid of the Job that controls `pod`.
fn job_owner_uid(pod: &Value) -> Option<&str> {
    pod.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r["controller"] == true && r["kind"] == "Job" && r["apiVersion"] == "batch/v1")
        .and_then(|r| r["uid"].as_str())
}

fn has_finalizer(pod: &Value) -> bool {
    meta::finalizers(pod)
        .iter()
        .any(|f| f == TRACKING_FINALIZER)
}

fn is_terminating(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
}

/// How a pod of a Job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodState {
    Active,
    Succeeded,
    /// Failed, or deleted before it succeeded.
    Failed,
}

fn pod_state(pod: &Value) -> PodState {
    match meta::str_at(pod, "/status/phase") {
        "Succeeded" => PodState::Succeeded,
        "Failed" => PodState::Failed,
        _ if is_terminating(pod) => PodState::Failed,
        _ => PodState::Active,
    }
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Container restarts of a pod that is still running (Kubernetes counts them against
/// `backoffLimit` for `restartPolicy: OnFailure`).
fn restarts(pod: &Value) -> i64 {
    if !matches!(meta::str_at(pod, "/status/phase"), "Running" | "Pending") {
        return 0;
    }
    ["/status/initContainerStatuses", "/status/containerStatuses"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .filter_map(|s| s["restartCount"].as_i64())
        .sum()
}

fn pod_index(pod: &Value) -> Option<u32> {
    meta::annotations(pod)
        .get(COMPLETION_INDEX)
        .and_then(|v| v.parse().ok())
}

/// The back-off records of failed pods, per Job uid (in memory, as Kubernetes keeps them).
pub(super) struct Backoff {
    base: Duration,
    records: Mutex<HashMap<String, BackoffRecord>>,
}

#[derive(Debug, Clone, Copy)]
struct BackoffRecord {
    failures_after_success: u32,
    last_failure: Timestamp,
}

impl Backoff {
    pub fn new(base: Duration) -> Backoff {
        Backoff {
            base,
            records: Mutex::default(),
        }
    }

    /// Notes pods that just finished.
    fn observe(&self, job_uid: &str, succeeded: usize, failed: usize, now: Timestamp) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let record = records.entry(job_uid.to_string()).or_insert(BackoffRecord {
            failures_after_success: 0,
            last_failure: now,
        });
        if succeeded > 0 {
            record.failures_after_success = 0;
        }
        if failed > 0 {
            record.failures_after_success = record
                .failures_after_success
                .saturating_add(u32::try_from(failed).unwrap_or(u32::MAX));
            record.last_failure = now;
        }
    }

    /// When a new pod may be created (`None`: now).
    fn ready_at(&self, job_uid: &str) -> Option<Timestamp> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let r = records.get(job_uid)?;
        let delay = backoff_delay(self.base, r.failures_after_success)?;
        r.last_failure
            .checked_add(SignedDuration::try_from(delay).ok()?)
            .ok()
    }

    fn retain(&self, live: &HashSet<&str>) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.retain(|uid, _| live.contains(uid.as_str()));
    }
}

/// The delay after `failures` failures in a row: `base`, doubling, at most six minutes.
fn backoff_delay(base: Duration, failures: u32) -> Option<Duration> {
    if failures == 0 {
        return None;
    }
    let doublings = (failures - 1).min(31);
    Some(base.saturating_mul(1u32 << doublings).min(MAX_BACKOFF))
}

/// What the Job's spec asks for, with Kubernetes' defaults for anything missing.
#[derive(Debug, Clone)]
struct Spec {
    parallelism: i64,
    completions: Option<i64>,
    indexed: bool,
    backoff_limit: i64,
    active_deadline: Option<i64>,
    suspend: bool,
    ttl: Option<i64>,
    on_failure: bool,
}

impl Spec {
    fn of(job: &Value) -> Spec {
        let int = |p: &str| job.pointer(p).and_then(Value::as_i64);
        Spec {
            parallelism: int("/spec/parallelism").unwrap_or(1).max(0),
            completions: int("/spec/completions").map(|c| c.max(0)),
            indexed: meta::str_at(job, "/spec/completionMode") == "Indexed",
            backoff_limit: int("/spec/backoffLimit").unwrap_or(6).max(0),
            active_deadline: int("/spec/activeDeadlineSeconds"),
            suspend: job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true),
            ttl: int("/spec/ttlSecondsAfterFinished"),
            on_failure: meta::str_at(job, "/spec/template/spec/restartPolicy") == "OnFailure",
        }
    }
}

/// A condition of `status` that is True.
fn true_condition<'a>(status: &'a Value, kind: &str) -> Option<&'a Value> {
    status
        .get("conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == kind && c["status"] == "True")
}

/// Kubernetes' `ensureJobConditionStatus`: adds or updates a condition (a False one is
/// only written over an existing one); true when something changed.
fn set_condition(
    status: &mut Value,
    kind: &str,
    value: bool,
    reason: &str,
    message: &str,
    now: &str,
) -> bool {
    let value_str = if value { "True" } else { "False" };
    if !status["conditions"].is_array() {
        if !value {
            return false;
        }
        status["conditions"] = json!([]);
    }
    let Some(conditions) = status["conditions"].as_array_mut() else {
        return false;
    };
    match conditions.iter_mut().find(|c| c["type"] == kind) {
        Some(c) => {
            if c["status"] == value_str && c["reason"] == reason && c["message"] == message {
                return false;
            }
            if c["status"] != value_str {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!(value_str);
            c["reason"] = json!(reason);
            c["message"] = json!(message);
            c["lastProbeTime"] = json!(now);
            true
        }
        None if value => {
            conditions.push(json!({
                "type": kind,
                "status": "True",
                "lastProbeTime": now,
                "lastTransitionTime": now,
                "reason": reason,
                "message": message,
            }));
            true
        }
        None => false,
    }
}

/// `status.completedIndexes` (`"1,3-5"`) as a set.
fn parse_indexes(text: &str) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    out.extend(a..=b.min(a.saturating_add(1_000_000)));
                }
            }
            None => {
                if let Ok(v) = part.parse() {
                    out.insert(v);
                }
            }
        }
    }
    out
}

/// A set of indexes as Kubernetes writes `completedIndexes`: ranges of three or more
/// consecutive indexes as `a-b`, two as `a,b`.
fn format_indexes(set: &BTreeSet<u32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        match end - start {
            0 => parts.push(start.to_string()),
            1 => {
                parts.push(start.to_string());
                parts.push(end.to_string());
            }
            _ => parts.push(format!("{start}-{end}")),
        }
    }
    parts.join(",")
}

/// Everything one pass needs.
struct Ctx<'a> {
    store: &'a Store,
    events: &'a Recorder,
    backoff: &'a Backoff,
    job_rt: &'static registry::ResourceType,
    pod_rt: &'static registry::ResourceType,
    now: Timestamp,
}

impl Ctx<'_> {
    fn now_str(&self) -> String {
        meta::format_time(self.now)
    }
}

/// One pass over every Job; says when to look again.
pub(super) fn reconcile_all(store: &Store, events: &Recorder, backoff: &Backoff) -> Wake {
    let (Some(job_rt), Some(pod_rt)) = (
        registry::by_kind("batch/v1", "Job"),
        registry::by_kind("v1", "Pod"),
    ) else {
        return Wake::RESYNC;
    };
    let Some((jobs, pods)) = super::list_two(store, ("batch/v1", "Job"), ("v1", "Pod"), "job")
    else {
        return Wake::SOON;
    };
    let ctx = Ctx {
        store,
        events,
        backoff,
        job_rt,
        pod_rt,
        now: Timestamp::now(),
    };
    let live: HashSet<&str> = jobs.iter().map(meta::uid).collect();
    let mut by_job: HashMap<&str, Vec<&Value>> = HashMap::new();
    let mut wake = Wake::RESYNC;
    for p in &pods {
        match job_owner_uid(p) {
            Some(uid) if live.contains(uid) => by_job.entry(uid).or_default().push(p),
            // Its Job is gone (or it was orphaned): nothing will count it any more.
            _ if has_finalizer(p) => {
                if let Err(e) = remove_finalizer(&ctx, p) {
                    tracing::warn!(error = %e, pod = meta::name(p), "cannot release an orphaned job pod; retrying");
                    wake = Wake::SOON;
                }
            }
            _ => {}
        }
    }
    for job in &jobs {
        let span = tracing::debug_span!("reconcile", controller = "job", job = %format!("{}/{}", meta::namespace(job), meta::name(job)));
        let _e = span.enter();
        let owned = by_job.remove(meta::uid(job)).unwrap_or_default();
        let result = if is_terminating(job) {
            release_all(&ctx, &owned).map(|()| Wake::RESYNC)
        } else {
            reconcile(&ctx, job, &owned)
        };
        match result {
            Ok(w) => wake = wake.sooner(w),
            Err(e) => {
                tracing::warn!(error = %e, "job reconcile failed; retrying");
                wake = Wake::SOON;
            }
        }
    }
    backoff.retain(&live);
    wake
}

/// A Job being deleted: its pods need not be counted any more.
fn release_all(ctx: &Ctx, pods: &[&Value]) -> Result<(), StoreError> {
    for p in pods.iter().filter(|p| has_finalizer(p)) {
        remove_finalizer(ctx, p)?;
    }
    Ok(())
}

fn remove_finalizer(ctx: &Ctx, pod: &Value) -> Result<(), StoreError> {
    let result = ctx
        .store
        .update_same(ctx.pod_rt, pod, Subresource::Main, |cur| {
            let mut obj = cur.clone();
            let left: Vec<String> = meta::finalizers(cur)
                .into_iter()
                .filter(|f| f != TRACKING_FINALIZER)
                .collect();
            meta::set(
                &mut obj,
                "finalizers",
                (!left.is_empty()).then(|| json!(left)),
            );
            Ok(obj)
        });
    match result {
        Ok(_) | Err(StoreError::Api(ApiError::NotFound(_) | ApiError::BadRequest { .. })) => Ok(()),
        Err(e) => Err(e),
    }
}

fn write_status(ctx: &Ctx, job: &mut Value, status: &Value) -> Result<(), StoreError> {
    super::write_status(ctx.store, ctx.job_rt, job, status)
}

fn uid_list(status: &Value, which: &str) -> BTreeSet<String> {
    meta::strings_at(status, &format!("/uncountedTerminatedPods/{which}"))
        .into_iter()
        .collect()
}

fn set_uncounted(status: &mut Value, succeeded: &BTreeSet<String>, failed: &BTreeSet<String>) {
    let mut u = json!({});
    if !succeeded.is_empty() {
        u["succeeded"] = json!(succeeded);
    }
    if !failed.is_empty() {
        u["failed"] = json!(failed);
    }
    status["uncountedTerminatedPods"] = u;
}

/// Sets an integer status field, omitting zero as Kubernetes' `omitempty` does.
fn set_count(status: &mut Value, field: &str, n: i64) {
    if let Some(map) = status.as_object_mut() {
        if n == 0 {
            map.remove(field);
        } else {
            map.insert(field.to_string(), json!(n));
        }
    }
}

fn reconcile(ctx: &Ctx, job: &Value, pods: &[&Value]) -> Result<Wake, StoreError> {
    let mut job = job.clone();
    let spec = Spec::of(&job);
    let job_uid = meta::uid(&job).to_string();
    let now = ctx.now_str();
    let mut status = match job.get("status") {
        Some(s) if s.is_object() => s.clone(),
        _ => json!({}),
    };

    // 1. Count finished pods: record them as uncounted, release them, then count them.
    let mut uncounted_s = uid_list(&status, "succeeded");
    let mut uncounted_f = uid_list(&status, "failed");
    let mut completed_indexes = parse_indexes(meta::str_at(&status, "/completedIndexes"));
    let (mut new_s, mut new_f, mut release) = (0, 0, Vec::new());
    for p in pods.iter().filter(|p| has_finalizer(p)) {
        let uid = meta::uid(p).to_string();
        if uncounted_s.contains(&uid) || uncounted_f.contains(&uid) {
            continue;
        }
        match pod_state(p) {
            PodState::Active => {}
            PodState::Succeeded => {
                if spec.indexed
                    && let Some(i) = pod_index(p)
                    && spec.completions.is_some_and(|c| i64::from(i) < c)
                {
                    completed_indexes.insert(i);
                }
                uncounted_s.insert(uid);
                new_s += 1;
            }
            // Deleted because the Job was suspended: not a failure.
            PodState::Failed if spec.suspend && meta::str_at(p, "/status/phase") != "Failed" => {
                release.push(*p);
            }
            PodState::Failed => {
                uncounted_f.insert(uid);
                new_f += 1;
            }
        }
    }
    if new_s + new_f > 0 {
        ctx.backoff.observe(&job_uid, new_s, new_f, ctx.now);
        set_uncounted(&mut status, &uncounted_s, &uncounted_f);
        if spec.indexed && !completed_indexes.is_empty() {
            status["completedIndexes"] = json!(format_indexes(&completed_indexes));
        }
        write_status(ctx, &mut job, &status)?;
    }
    let mut still_tracked: HashSet<&str> = HashSet::new();
    for p in pods.iter().filter(|p| has_finalizer(p)) {
        let uid = meta::uid(p);
        if uncounted_s.contains(uid)
            || uncounted_f.contains(uid)
            || release.iter().any(|r| meta::uid(r) == uid)
        {
            remove_finalizer(ctx, p)?;
        } else {
            still_tracked.insert(uid);
        }
    }
    let mut succeeded = status["succeeded"].as_i64().unwrap_or(0) + uncounted_s.len() as i64;
    let mut failed = status["failed"].as_i64().unwrap_or(0) + uncounted_f.len() as i64;
    status["succeeded"] = json!(succeeded);
    status["failed"] = json!(failed);
    uncounted_s.clear();
    uncounted_f.clear();
    set_uncounted(&mut status, &uncounted_s, &uncounted_f);

    // 2. Decide.
    let mut active: Vec<&Value> = pods
        .iter()
        .copied()
        .filter(|p| pod_state(p) == PodState::Active)
        .collect();
    let finished = true_condition(&status, "Complete").is_some()
        || true_condition(&status, "Failed").is_some();
    let mut wake = Wake::RESYNC;
    let mut new_pods = 0;
    if finished {
        // Nothing runs after the end (a pod that raced the end is stopped).
        delete_pods(ctx, &job, &active)?;
        active.clear();
        if let Some(w) = ttl(ctx, &job, &status)? {
            wake = wake.sooner(w);
        }
    } else {
        let failure = if let Some(c) = true_condition(&status, "FailureTarget") {
            Some((
                meta::str_at(c, "/reason").to_string(),
                meta::str_at(c, "/message").to_string(),
            ))
        } else if failed > spec.backoff_limit
            || (spec.on_failure && past_backoff_limit_on_failure(&spec, &active))
        {
            Some((BACKOFF_REASON.to_string(), BACKOFF_MESSAGE.to_string()))
        } else if !spec.suspend && past_deadline(&spec, &status, ctx.now) {
            Some((DEADLINE_REASON.to_string(), DEADLINE_MESSAGE.to_string()))
        } else {
            None
        };
        let complete = match (spec.indexed, spec.completions) {
            (true, Some(c)) => completed_indexes.len() as i64 >= c,
            (_, Some(c)) => succeeded >= c,
            (_, None) => succeeded > 0 && active.is_empty(),
        };
        if let Some((reason, message)) = failure {
            if set_condition(&mut status, "FailureTarget", true, &reason, &message, &now) {
                ctx.events
                    .record(&job, EventType::Warning, &reason, &message);
            }
            delete_pods(ctx, &job, &active)?;
            active.clear();
            if still_tracked.is_empty() {
                set_condition(&mut status, "Failed", true, &reason, &message, &now);
            } else {
                wake = Wake::SOON;
            }
        } else if complete || true_condition(&status, "SuccessCriteriaMet").is_some() {
            set_condition(
                &mut status,
                "SuccessCriteriaMet",
                true,
                COMPLETIONS_REASON,
                COMPLETIONS_MESSAGE,
                &now,
            );
            delete_pods(ctx, &job, &active)?;
            active.clear();
            if still_tracked.is_empty() {
                set_condition(
                    &mut status,
                    "Complete",
                    true,
                    COMPLETIONS_REASON,
                    COMPLETIONS_MESSAGE,
                    &now,
                );
                status["completionTime"] = json!(now);
                ctx.events
                    .record(&job, EventType::Normal, "Completed", "Job completed");
            } else {
                wake = Wake::SOON;
            }
        } else if spec.suspend {
            if set_condition(
                &mut status,
                "Suspended",
                true,
                "JobSuspended",
                "Job suspended",
                &now,
            ) {
                ctx.events
                    .record(&job, EventType::Normal, "Suspended", "Job suspended");
            }
            delete_pods(ctx, &job, &active)?;
            active.clear();
        } else {
            if set_condition(
                &mut status,
                "Suspended",
                false,
                "JobResumed",
                "Job resumed",
                &now,
            ) {
                ctx.events
                    .record(&job, EventType::Normal, "Resumed", "Job resumed");
                // The deadline counts the time the Job is continuously active.
                status["startTime"] = json!(now);
            }
            if status.get("startTime").is_none_or(Value::is_null) {
                status["startTime"] = json!(now);
            }
            if let Some(deadline) = deadline_at(&spec, &status) {
                wake = wake.sooner(Wake::at(deadline, ctx.now));
            }
            let (kept, started, w) =
                manage_pods(ctx, &job, &spec, &active, succeeded, &completed_indexes)?;
            active = kept;
            new_pods = started;
            if let Some(w) = w {
                wake = wake.sooner(w);
            }
        }
    }
    let ready = active.iter().filter(|p| is_ready(p)).count() as i64;
    set_count(&mut status, "active", (active.len() + new_pods) as i64);
    status["ready"] = json!(ready);
    succeeded = status["succeeded"].as_i64().unwrap_or(0);
    failed = status["failed"].as_i64().unwrap_or(0);
    set_count(&mut status, "succeeded", succeeded);
    set_count(&mut status, "failed", failed);
    write_status(ctx, &mut job, &status)?;
    Ok(wake)
}

/// Kubernetes' `pastBackoffLimitOnFailure`: container restarts in running pods.
fn past_backoff_limit_on_failure(spec: &Spec, active: &[&Value]) -> bool {
    let total: i64 = active.iter().map(|p| restarts(p)).sum();
    if spec.backoff_limit == 0 {
        total > 0
    } else {
        total >= spec.backoff_limit
    }
}

fn deadline_at(spec: &Spec, status: &Value) -> Option<Timestamp> {
    let start = meta::parse_time(meta::str_at(status, "/startTime"))?;
    start
        .checked_add(SignedDuration::from_secs(spec.active_deadline?))
        .ok()
}

fn past_deadline(spec: &Spec, status: &Value, now: Timestamp) -> bool {
    deadline_at(spec, status).is_some_and(|d| now >= d)
}

/// A finished Job with `ttlSecondsAfterFinished`: deleted once the time is up, else the
/// time to look again.
fn ttl(ctx: &Ctx, job: &Value, status: &Value) -> Result<Option<Wake>, StoreError> {
    let Some(ttl) = Spec::of(job).ttl else {
        return Ok(None);
    };
    let finished_at = meta::parse_time(meta::str_at(status, "/completionTime")).or_else(|| {
        ["Complete", "Failed"]
            .iter()
            .filter_map(|k| true_condition(status, k))
            .find_map(|c| meta::parse_time(meta::str_at(c, "/lastTransitionTime")))
    });
    let Some(finished_at) = finished_at else {
        return Ok(None);
    };
    let Ok(expires) = finished_at.checked_add(SignedDuration::from_secs(ttl)) else {
        return Ok(None);
    };
    if ctx.now < expires {
        return Ok(Some(Wake::at(expires, ctx.now)));
    }
    tracing::info!(
        job = meta::name(job),
        "deleting the finished job: ttlSecondsAfterFinished passed"
    );
    delete_finished(ctx.store, ctx.job_rt, job).map(|_| None)
}

/// Deletes `job` (this very one: uid precondition) with Background propagation, as the
/// TTL and a CronJob's history limits do. `Ok(false)` when it was gone or replaced already.
pub(super) fn delete_finished(
    store: &Store,
    job_rt: &'static registry::ResourceType,
    job: &Value,
) -> Result<bool, StoreError> {
    let opts = DeleteOptions {
        propagation: Some(Propagation::Background),
        precondition_uid: Some(meta::uid(job).to_string()),
        ..Default::default()
    };
    match store.delete(job_rt, Some(meta::namespace(job)), meta::name(job), &opts) {
        Ok(_) => Ok(true),
        Err(StoreError::Api(ApiError::NotFound(_) | ApiError::Conflict { .. })) => Ok(false),
        Err(e) => Err(e),
    }
}

fn delete_pods(ctx: &Ctx, job: &Value, pods: &[&Value]) -> Result<(), StoreError> {
    for p in pods {
        let opts = DeleteOptions {
            precondition_uid: Some(meta::uid(p).to_string()),
            ..Default::default()
        };
        match ctx
            .store
            .delete(ctx.pod_rt, Some(meta::namespace(p)), meta::name(p), &opts)
        {
            Ok(_) => ctx.events.record(
                job,
                EventType::Normal,
                "SuccessfulDelete",
                &format!("Deleted pod: {}", meta::name(p)),
            ),
            Err(StoreError::Api(ApiError::NotFound(_) | ApiError::Conflict { .. })) => {}
            Err(e) => {
                ctx.events.record(
                    job,
                    EventType::Warning,
                    "FailedDelete",
                    &format!("Error deleting: {e}"),
                );
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Creates and deletes pods so the right number runs; returns the pods still active, how
/// many it created and, when the back-off holds creation back, when to look again.
fn manage_pods<'a>(
    ctx: &Ctx,
    job: &Value,
    spec: &Spec,
    active: &[&'a Value],
    succeeded: i64,
    completed_indexes: &BTreeSet<u32>,
) -> Result<(Vec<&'a Value>, usize, Option<Wake>), StoreError> {
    let mut keep: Vec<&Value> = Vec::new();
    let mut surplus: Vec<&Value> = Vec::new();
    let mut to_create: Vec<Option<u32>> = Vec::new();
    if spec.indexed {
        let completions = spec.completions.unwrap_or(0).max(0);
        // One pod per index still to do; a pod with a done, unknown or taken index goes.
        let mut running: BTreeMap<u32, &Value> = BTreeMap::new();
        for p in active {
            match pod_index(p) {
                Some(i)
                    if i64::from(i) < completions
                        && !completed_indexes.contains(&i)
                        && !running.contains_key(&i) =>
                {
                    running.insert(i, p);
                }
                _ => surplus.push(p),
            }
        }
        keep.extend(running.values().copied());
        let slots = spec.parallelism - keep.len() as i64;
        if slots < 0 {
            keep.sort_by_key(|p| deletion_rank(p));
            surplus.extend(keep.drain(..(-slots) as usize));
        } else {
            let missing = (0..u32::try_from(completions).unwrap_or(u32::MAX))
                .filter(|i| !completed_indexes.contains(i) && !running.contains_key(i));
            to_create.extend(missing.take(slots as usize).map(Some));
        }
    } else {
        let want = match spec.completions {
            Some(c) => spec.parallelism.min((c - succeeded).max(0)),
            // A work queue: once one pod succeeded, no new ones; the rest finish.
            None if succeeded > 0 => active.len() as i64,
            None => spec.parallelism,
        };
        keep.extend(active.iter().copied());
        let have = keep.len() as i64;
        if have > want {
            keep.sort_by_key(|p| deletion_rank(p));
            surplus.extend(keep.drain(..(have - want) as usize));
        } else {
            to_create.extend((have..want).map(|_| None));
        }
    }
    delete_pods(ctx, job, &surplus)?;
    let mut wake = None;
    let mut created = 0;
    if !to_create.is_empty() {
        if let Some(at) = ctx.backoff.ready_at(meta::uid(job))
            && ctx.now < at
        {
            return Ok((keep, 0, Some(Wake::at(at, ctx.now))));
        }
        for index in to_create {
            let pod = pod_from_template(job, index);
            match ctx
                .store
                .create(ctx.pod_rt, Some(meta::namespace(job)), pod, false)
            {
                Ok(pod) => {
                    created += 1;
                    ctx.events.record(
                        job,
                        EventType::Normal,
                        "SuccessfulCreate",
                        &format!("Created pod: {}", meta::name(&pod)),
                    );
                }
                // The random name was taken: the next pass tries another.
                Err(StoreError::Api(ApiError::AlreadyExists(_))) => wake = Some(Wake::SOON),
                Err(e) => {
                    ctx.events.record(
                        job,
                        EventType::Warning,
                        "FailedCreate",
                        &format!("Error creating: {e}"),
                    );
                    return Err(e);
                }
            }
        }
    }
    Ok((keep, created, wake))
}

/// A new pod of `job` from its template (Indexed: for `index`).
fn pod_from_template(job: &Value, index: Option<u32>) -> Value {
    let template = &job["spec"]["template"];
    let mut metadata = template["metadata"].clone();
    if !metadata.is_object() {
        metadata = json!({});
    }
    let name = meta::name(job);
    let prefix = match index {
        Some(i) => format!("{name}-{i}"),
        None => name.to_string(),
    };
    metadata["name"] = json!(format!("{prefix}-{}", name_suffix()));
    metadata["namespace"] = json!(meta::namespace(job));
    metadata["ownerReferences"] = json!([{
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": name,
        "uid": meta::uid(job),
        "controller": true,
        "blockOwnerDeletion": true,
    }]);
    let mut finalizers = metadata["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    finalizers.push(json!(TRACKING_FINALIZER));
    metadata["finalizers"] = Value::Array(finalizers);
    let mut spec = template["spec"].clone();
    if let Some(i) = index {
        for field in ["annotations", "labels"] {
            if !metadata[field].is_object() {
                metadata[field] = json!({});
            }
            metadata[field][COMPLETION_INDEX] = json!(i.to_string());
        }
        if spec["hostname"].as_str().is_none_or(str::is_empty) {
            spec["hostname"] = json!(prefix);
        }
        let env = json!({
            "name": "JOB_COMPLETION_INDEX",
            "valueFrom": {"fieldRef": {"fieldPath": format!("metadata.annotations['{COMPLETION_INDEX}']")}},
        });
        for list in ["initContainers", "containers"] {
            for c in spec[list].as_array_mut().into_iter().flatten() {
                if !c["env"].is_array() {
                    c["env"] = json!([]);
                }
                if let Some(vars) = c["env"].as_array_mut()
                    && !vars.iter().any(|v| v["name"] == "JOB_COMPLETION_INDEX")
                {
                    vars.push(env.clone());
                }
            }
        }
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn back_off_doubles_up_to_six_minutes() {
        let base = Duration::from_secs(10);
        assert_eq!(backoff_delay(base, 0), None);
        assert_eq!(backoff_delay(base, 1), Some(Duration::from_secs(10)));
        assert_eq!(backoff_delay(base, 2), Some(Duration::from_secs(20)));
        assert_eq!(backoff_delay(base, 6), Some(Duration::from_secs(320)));
        assert_eq!(backoff_delay(base, 7), Some(MAX_BACKOFF));
        assert_eq!(backoff_delay(base, 500), Some(MAX_BACKOFF));
        let b = Backoff::new(base);
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(b.ready_at("j"), None);
        b.observe("j", 0, 2, t);
        assert_eq!(
            b.ready_at("j"),
            Some("2026-01-01T00:00:20Z".parse().unwrap())
        );
        b.observe("j", 1, 0, t);
        assert_eq!(b.ready_at("j"), None, "a success starts over");
    }

    #[test]
    fn completed_indexes_round_trip() {
        for (text, set) in [
            ("", vec![]),
            ("0", vec![0]),
            ("0,1", vec![0, 1]),
            ("0-2", vec![0, 1, 2]),
            ("1,3-5,7,8", vec![1, 3, 4, 5, 7, 8]),
        ] {
            let parsed = parse_indexes(text);
            assert_eq!(parsed.iter().copied().collect::<Vec<_>>(), set, "{text}");
            assert_eq!(format_indexes(&parsed), text);
        }
    }

    #[test]
    fn conditions_change_only_when_they_differ() {
        let mut s = json!({});
        assert!(!set_condition(
            &mut s,
            "Suspended",
            false,
            "JobResumed",
            "Job resumed",
            "t0"
        ));
        assert!(
            s.get("conditions").is_none(),
            "no False condition from nothing"
        );
        assert!(set_condition(
            &mut s,
            "Suspended",
            true,
            "JobSuspended",
            "Job suspended",
            "t1"
        ));
        assert!(!set_condition(
            &mut s,
            "Suspended",
            true,
            "JobSuspended",
            "Job suspended",
            "t2"
        ));
        assert!(set_condition(
            &mut s,
            "Suspended",
            false,
            "JobResumed",
            "Job resumed",
            "t3"
        ));
        assert_eq!(s["conditions"][0]["status"], "False");
        assert_eq!(s["conditions"][0]["lastTransitionTime"], "t3");
    }

    fn store() -> (tempfile::TempDir, Arc<Store>) {
        crate::store::test_store()
    }

    fn job_pods(s: &Store) -> Vec<Value> {
        let rt = registry::by_kind("v1", "Pod").expect("pod");
        s.list(rt, Some("default")).expect("list").0
    }

    fn get_job(s: &Store, name: &str) -> Value {
        let rt = registry::by_kind("batch/v1", "Job").expect("job");
        s.get(rt, Some("default"), name).expect("job")
    }

    /// What the kubelet would write: the pod ran and ended in `phase`.
    fn finish(s: &Store, pod: &Value, phase: &str) {
        let rt = registry::by_kind("v1", "Pod").expect("pod");
        s.update_with(
            rt,
            Some("default"),
            meta::name(pod),
            Subresource::Status,
            false,
            |cur| {
                let mut p = cur.clone();
                p["status"]["phase"] = json!(phase);
                Ok(p)
            },
        )
        .expect("status");
    }

    fn create_job(s: &Store, spec: Value) -> Value {
        let rt = registry::by_kind("batch/v1", "Job").expect("job");
        let mut job = json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default"},
            "spec": {"template": {"spec": {
                "containers": [{"name": "c", "image": "i"}],
                "restartPolicy": "Never"
            }}}
        });
        json_patch::merge(&mut job, &spec);
        s.create(rt, Some("default"), job, false)
            .expect("create job")
    }

    #[test]
    fn a_job_runs_its_completions_within_parallelism_and_counts_once() {
        let (_d, s) = store();
        let events = Recorder::new(s.clone(), "job-controller", "node");
        let backoff = Backoff::new(Duration::from_secs(10));
        let job = create_job(&s, json!({"spec": {"completions": 3, "parallelism": 2}}));
        reconcile_all(&s, &events, &backoff);
        let pods = job_pods(&s);
        assert_eq!(pods.len(), 2);
        for p in &pods {
            assert!(meta::name(p).starts_with("pi-") && meta::name(p).len() == 8);
            assert_eq!(job_owner_uid(p), Some(meta::uid(&job)));
            assert!(has_finalizer(p));
            assert_eq!(p["metadata"]["labels"]["job-name"], "pi");
            assert_eq!(
                p["metadata"]["labels"]["batch.kubernetes.io/controller-uid"],
                meta::uid(&job)
            );
        }
        let j = get_job(&s, "pi");
        assert_eq!(j["status"]["active"], 2);
        assert_eq!(j["status"]["ready"], 0);
        assert!(j["status"]["startTime"].is_string());
        // A second pass changes nothing.
        reconcile_all(&s, &events, &backoff);
        assert_eq!(job_pods(&s).len(), 2);

        finish(&s, &pods[0], "Succeeded");
        reconcile_all(&s, &events, &backoff);
        let now = job_pods(&s);
        assert_eq!(now.len(), 3, "one more for the last completion");
        assert!(!has_finalizer(
            now.iter()
                .find(|p| meta::name(p) == meta::name(&pods[0]))
                .expect("kept")
        ));
        let j = get_job(&s, "pi");
        assert_eq!(j["status"]["succeeded"], 1);
        assert_eq!(j["status"]["active"], 2);
        assert_eq!(j["status"]["uncountedTerminatedPods"], json!({}));
        // Deleting the counted pod does not count it again or replace it.
        let pod_rt = registry::by_kind("v1", "Pod").expect("pod");
        s.delete(
            pod_rt,
            Some("default"),
            meta::name(&pods[0]),
            &DeleteOptions::default(),
        )
        .expect("delete");
        reconcile_all(&s, &events, &backoff);
        assert_eq!(get_job(&s, "pi")["status"]["succeeded"], 1);
        assert_eq!(job_pods(&s).len(), 2);

        for p in job_pods(&s) {
            finish(&s, &p, "Succeeded");
        }
        reconcile_all(&s, &events, &backoff);
        let j = get_job(&s, "pi");
        assert_eq!(j["status"]["succeeded"], 3);
        assert!(j["status"].get("active").is_none());
        assert!(true_condition(&j["status"], "Complete").is_some(), "{j}");
        assert!(true_condition(&j["status"], "SuccessCriteriaMet").is_some());
        assert!(j["status"]["completionTime"].is_string());
        assert!(job_pods(&s).iter().all(|p| !has_finalizer(p)));
    }

    #[test]
    fn failures_past_the_backoff_limit_fail_the_job() {
        let (_d, s) = store();
        let events = Recorder::new(s.clone(), "job-controller", "node");
        let backoff = Backoff::new(Duration::from_millis(1));
        create_job(&s, json!({"spec": {"backoffLimit": 1}}));
        for round in 0..2 {
            // One pass counts the failure, the next (after the back-off) replaces the pod.
            reconcile_all(&s, &events, &backoff);
            std::thread::sleep(Duration::from_millis(5));
            reconcile_all(&s, &events, &backoff);
            let running: Vec<Value> = job_pods(&s)
                .into_iter()
                .filter(|p| pod_state(p) == PodState::Active)
                .collect();
            assert_eq!(running.len(), 1, "round {round}");
            finish(&s, &running[0], "Failed");
        }
        reconcile_all(&s, &events, &backoff);
        let j = get_job(&s, "pi");
        assert_eq!(j["status"]["failed"], 2);
        let failed = true_condition(&j["status"], "Failed").expect("Failed");
        assert_eq!(failed["reason"], BACKOFF_REASON);
        assert_eq!(failed["message"], BACKOFF_MESSAGE);
        assert_eq!(job_pods(&s).len(), 2, "failed pods stay for their logs");
    }

    #[test]
    fn the_back_off_holds_replacements_back() {
        let (_d, s) = store();
        let events = Recorder::new(s.clone(), "job-controller", "node");
        let backoff = Backoff::new(Duration::from_secs(60));
        create_job(&s, json!({"spec": {"backoffLimit": 3}}));
        reconcile_all(&s, &events, &backoff);
        finish(&s, &job_pods(&s)[0], "Failed");
        let wake = reconcile_all(&s, &events, &backoff);
        assert_eq!(job_pods(&s).len(), 1, "no replacement yet");
        assert!(wake > Wake::after(Duration::from_secs(50)), "{wake:?}");
    }

    #[test]
    fn suspending_deletes_pods_without_failures_and_resuming_restarts() {
        let (_d, s) = store();
        let events = Recorder::new(s.clone(), "job-controller", "node");
        let backoff = Backoff::new(Duration::from_secs(10));
        create_job(&s, json!({"spec": {"parallelism": 2, "completions": 4}}));
        reconcile_all(&s, &events, &backoff);
        assert_eq!(job_pods(&s).len(), 2);
        let rt = registry::by_kind("batch/v1", "Job").expect("job");
        let set_suspend = |v: bool| {
            s.update_with(rt, Some("default"), "pi", Subresource::Main, false, |cur| {
                let mut j = cur.clone();
                j["spec"]["suspend"] = json!(v);
                Ok(j)
            })
            .expect("suspend");
        };
        set_suspend(true);
        reconcile_all(&s, &events, &backoff);
        reconcile_all(&s, &events, &backoff);
        let j = get_job(&s, "pi");
        assert!(true_condition(&j["status"], "Suspended").is_some());
        assert!(j["status"].get("failed").is_none(), "{j}");
        assert!(job_pods(&s).is_empty(), "unbound pods go at once");
        set_suspend(false);
        reconcile_all(&s, &events, &backoff);
        let j = get_job(&s, "pi");
        assert!(true_condition(&j["status"], "Suspended").is_none());
        assert_eq!(job_pods(&s).len(), 2);
    }

    #[test]
    fn indexed_jobs_run_each_index_once() {
        let (_d, s) = store();
        let events = Recorder::new(s.clone(), "job-controller", "node");
        let backoff = Backoff::new(Duration::from_secs(10));
        create_job(
            &s,
            json!({"spec": {"completionMode": "Indexed", "completions": 3, "parallelism": 2}}),
        );
        reconcile_all(&s, &events, &backoff);
        let pods = job_pods(&s);
        let mut indexes: Vec<u32> = pods.iter().filter_map(pod_index).collect();
        indexes.sort();
        assert_eq!(indexes, [0, 1]);
        let zero = pods
            .iter()
            .find(|p| pod_index(p) == Some(0))
            .expect("index 0");
        assert!(meta::name(zero).starts_with("pi-0-"));
        assert_eq!(zero["spec"]["hostname"], "pi-0");
        assert_eq!(
            zero["spec"]["containers"][0]["env"][0]["name"],
            "JOB_COMPLETION_INDEX"
        );
        finish(&s, zero, "Succeeded");
        reconcile_all(&s, &events, &backoff);
        let j = get_job(&s, "pi");
        assert_eq!(j["status"]["completedIndexes"], "0");
        let mut active: Vec<u32> = job_pods(&s)
            .iter()
            .filter(|p| pod_state(p) == PodState::Active)
            .filter_map(pod_index)
            .collect();
        active.sort();
        assert_eq!(active, [1, 2]);
        for p in job_pods(&s) {
            if pod_state(&p) == PodState::Active {
                finish(&s, &p, "Succeeded");
            }
        }
        reconcile_all(&s, &events, &backoff);
        let j = get_job(&s, "pi");
        assert_eq!(j["status"]["completedIndexes"], "0-2");
        assert!(true_condition(&j["status"], "Complete").is_some());
    }

    #[test]
    fn a_deadline_fails_the_job_and_stops_its_pods() {
        let (_d, s) = store();
        let events = Recorder::new(s.clone(), "job-controller", "node");
        let backoff = Backoff::new(Duration::from_secs(10));
        create_job(&s, json!({"spec": {"activeDeadlineSeconds": 0}}));
        reconcile_all(&s, &events, &backoff);
        reconcile_all(&s, &events, &backoff);
        reconcile_all(&s, &events, &backoff);
        let j = get_job(&s, "pi");
        let failed = true_condition(&j["status"], "Failed").expect("Failed");
        assert_eq!(failed["reason"], DEADLINE_REASON);
        assert!(job_pods(&s).is_empty());
    }

    #[test]
    fn finished_jobs_go_after_their_ttl() {
        let (_d, s) = store();
        let events = Recorder::new(s.clone(), "job-controller", "node");
        let backoff = Backoff::new(Duration::from_secs(10));
        create_job(&s, json!({"spec": {"ttlSecondsAfterFinished": 0}}));
        reconcile_all(&s, &events, &backoff);
        finish(&s, &job_pods(&s)[0], "Succeeded");
        reconcile_all(&s, &events, &backoff);
        assert!(true_condition(&get_job(&s, "pi")["status"], "Complete").is_some());
        reconcile_all(&s, &events, &backoff);
        let rt = registry::by_kind("batch/v1", "Job").expect("job");
        assert!(s.get(rt, Some("default"), "pi").is_err(), "deleted");
    }
}
