//! The CronJob controller (batch/v1), with Kubernetes' semantics.
//!
//! - **Runs**: at each schedule time ([`Schedule`], in `timeZone` or, when unset, the
//!   host's zone as Kubernetes uses its controller manager's) a Job named
//!   `<cronjob>-<scheduled time in minutes since the epoch>` is created from `jobTemplate`,
//!   owned by the CronJob and annotated `batch.kubernetes.io/cronjob-scheduled-timestamp`.
//!   Only the most recent missed time runs; with `startingDeadlineSeconds`, times older
//!   than that are not considered at all. More than 100 missed times give the
//!   `TooManyMissedTimes` warning (the most recent one still runs).
//! - **Concurrency**: `Allow` runs alongside; `Forbid` skips the run while a Job is active
//!   (`JobAlreadyActive`), and, as in Kubernetes, runs it late when the active Job ends if
//!   it is still the most recent time; `Replace` deletes the active Jobs first.
//! - **Status**: `active` (references to the unfinished Jobs), `lastScheduleTime`,
//!   `lastSuccessfulTime`. A finished Job leaves `active` with `SawCompletedJob`. An
//!   unfinished Job the CronJob owns but does not list (a run whose status write was lost)
//!   gives `UnexpectedJob` and is listed, so `Forbid` and `Replace` see it.
//! - **History**: finished Jobs beyond `successfulJobsHistoryLimit` / `failedJobsHistoryLimit`
//!   are deleted oldest first (Background propagation), with `SuccessfulDelete`.
//! - `suspend` stops new runs only. A schedule or time zone that cannot be used (stored
//!   before admission checked it, or a zone the host's database lost) gives a Warning event
//!   (`UnparseableSchedule`, `UnknownTimeZone`) and no runs.
//! - The controller asks its loop to wake it just after the next schedule time.

use std::collections::HashMap;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::Wake;
use crate::api::kinds::Schedule;
use crate::api::{ApiError, meta, registry};
use crate::events::{EventType, Recorder};
use crate::store::{Change, Store, StoreError};

/// The annotation with the time a Job was scheduled for.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// More missed times than this is reported (Kubernetes' limit).
const MISSED_LIMIT: usize = 100;
/// Kubernetes wakes a little after the schedule time, so the time has surely come.
const WAKE_SLACK: SignedDuration = SignedDuration::from_millis(100);

pub(super) fn relevant(c: &Change) -> bool {
    match c.resource.kind {
        "CronJob" => c.resource.group == "batch",
        "Job" => c.resource.group == "batch" && cronjob_owner_uid(&c.object).is_some(),
        _ => false,
    }
}

fn cronjob_owner_uid(job: &Value) -> Option<&str> {
    job.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| {
            r["controller"] == true && r["kind"] == "CronJob" && r["apiVersion"] == "batch/v1"
        })
        .and_then(|r| r["uid"].as_str())
}

/// `Complete` or `Failed` when the Job has finished.
fn finished_condition(job: &Value) -> Option<&'static str> {
    let conditions = job
        .pointer("/status/conditions")
        .and_then(Value::as_array)?;
    ["Complete", "Failed"].into_iter().find(|kind| {
        conditions
            .iter()
            .any(|c| c["type"] == *kind && c["status"] == "True")
    })
}

struct Ctx<'a> {
    store: &'a Store,
    events: &'a Recorder,
    cj_rt: &'static registry::ResourceType,
    job_rt: &'static registry::ResourceType,
    now: Timestamp,
}

/// One pass over every CronJob; says when to look again.
pub(super) fn reconcile_all(store: &Store, events: &Recorder) -> Wake {
    let (Some(cj_rt), Some(job_rt)) = (
        registry::by_kind("batch/v1", "CronJob"),
        registry::by_kind("batch/v1", "Job"),
    ) else {
        return Wake::RESYNC;
    };
    let Some((cronjobs, jobs)) = super::list_two(
        store,
        ("batch/v1", "CronJob"),
        ("batch/v1", "Job"),
        "cronjob",
    ) else {
        return Wake::SOON;
    };
    let ctx = Ctx {
        store,
        events,
        cj_rt,
        job_rt,
        now: Timestamp::now(),
    };
    let mut by_owner: HashMap<&str, Vec<&Value>> = HashMap::new();
    for j in &jobs {
        if let Some(uid) = cronjob_owner_uid(j) {
            by_owner.entry(uid).or_default().push(j);
        }
    }
    let mut wake = Wake::RESYNC;
    for cj in cronjobs
        .iter()
        .filter(|c| c.pointer("/metadata/deletionTimestamp").is_none())
    {
        let span = tracing::debug_span!("reconcile", controller = "cronjob", cronjob = %format!("{}/{}", meta::namespace(cj), meta::name(cj)));
        let _e = span.enter();
        let owned = by_owner.remove(meta::uid(cj)).unwrap_or_default();
        match reconcile(&ctx, cj, &owned) {
            Ok(w) => wake = wake.sooner(w),
            Err(e) => {
                tracing::warn!(error = %e, "cronjob reconcile failed; retrying");
                wake = Wake::SOON;
            }
        }
    }
    wake
}

fn job_ref(job: &Value) -> Value {
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": meta::name(job),
        "namespace": meta::namespace(job),
        "uid": meta::uid(job),
        "resourceVersion": meta::resource_version(job),
    })
}

fn reconcile(ctx: &Ctx, cj: &Value, jobs: &[&Value]) -> Result<Wake, StoreError> {
    let mut cj = cj.clone();
    let mut status = match cj.get("status") {
        Some(s) if s.is_object() => s.clone(),
        _ => json!({}),
    };
    let mut active: Vec<Value> = status["active"].as_array().cloned().unwrap_or_default();
    let mut last_success = meta::parse_time(meta::str_at(&status, "/lastSuccessfulTime"));

    // 1. What became of the Jobs it runs.
    for j in jobs {
        let uid = meta::uid(j);
        let listed = active.iter().any(|r| r["uid"] == uid);
        match (listed, finished_condition(j)) {
            (false, None) => {
                ctx.events.record(
                    &cj,
                    EventType::Warning,
                    "UnexpectedJob",
                    &format!(
                        "Saw a job that the controller did not create or forgot: {}",
                        meta::name(j)
                    ),
                );
                active.push(job_ref(j));
            }
            (true, Some(condition)) => {
                active.retain(|r| r["uid"] != uid);
                ctx.events.record(
                    &cj,
                    EventType::Normal,
                    "SawCompletedJob",
                    &format!(
                        "Saw completed job: {}, condition: {condition}",
                        meta::name(j)
                    ),
                );
            }
            _ => {}
        }
        if finished_condition(j) == Some("Complete")
            && let Some(done) = meta::parse_time(meta::str_at(j, "/status/completionTime"))
            && last_success.is_none_or(|l| done > l)
        {
            last_success = Some(done);
        }
    }
    active.retain(|r| {
        let present = jobs.iter().any(|j| r["uid"] == meta::uid(j));
        if !present {
            ctx.events.record(
                &cj,
                EventType::Normal,
                "MissingJob",
                &format!("Active job went missing: {}", meta::str_at(r, "/name")),
            );
        }
        present
    });
    if let Some(t) = last_success {
        status["lastSuccessfulTime"] = json!(meta::format_time(t));
    }

    // 2. History.
    clean_history(ctx, &cj, jobs)?;

    // 3. The schedule.
    let (wake, created) = if cj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        (Wake::RESYNC, None)
    } else {
        schedule(ctx, &cj, jobs, &mut active, &mut status)?
    };
    if let Some(job) = created {
        active.push(job_ref(&job));
    }
    match status.as_object_mut() {
        Some(map) if active.is_empty() => {
            map.remove("active");
        }
        _ => status["active"] = Value::Array(active),
    }
    super::write_status(ctx.store, ctx.cj_rt, &mut cj, &status)?;
    Ok(wake)
}

/// Deletes the oldest finished Jobs beyond the history limits.
fn clean_history(ctx: &Ctx, cj: &Value, jobs: &[&Value]) -> Result<(), StoreError> {
    for (condition, limit_field) in [
        ("Complete", "/spec/successfulJobsHistoryLimit"),
        ("Failed", "/spec/failedJobsHistoryLimit"),
    ] {
        let Some(limit) = cj.pointer(limit_field).and_then(Value::as_i64) else {
            continue;
        };
        let mut done: Vec<&Value> = jobs
            .iter()
            .copied()
            .filter(|j| {
                finished_condition(j) == Some(condition)
                    && j.pointer("/metadata/deletionTimestamp").is_none()
            })
            .collect();
        let surplus = done
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(0));
        if surplus == 0 {
            continue;
        }
        // Oldest first; Jobs that never started last (Kubernetes' `byJobStartTime`).
        done.sort_by_key(|j| {
            let start = meta::parse_time(meta::str_at(j, "/status/startTime"));
            (start.is_none(), start, meta::name(j).to_string())
        });
        for j in done.into_iter().take(surplus) {
            delete_job(ctx, cj, j)?;
        }
    }
    Ok(())
}

fn delete_job(ctx: &Ctx, cj: &Value, job: &Value) -> Result<(), StoreError> {
    match super::job::delete_finished(ctx.store, ctx.job_rt, job) {
        Ok(true) => {
            ctx.events.record(
                cj,
                EventType::Normal,
                "SuccessfulDelete",
                &format!("Deleted job {}", meta::name(job)),
            );
            Ok(())
        }
        Ok(false) => Ok(()),
        Err(e) => {
            ctx.events.record(
                cj,
                EventType::Warning,
                "FailedDelete",
                &format!("Deleted job: {e}"),
            );
            Err(e)
        }
    }
}

/// The CronJob's zone: `timeZone`, or the host's.
fn time_zone(cj: &Value) -> Result<TimeZone, String> {
    match cj.pointer("/spec/timeZone").and_then(Value::as_str) {
        Some(name) => TimeZone::get(name).map_err(|e| e.to_string()),
        None => Ok(TimeZone::system()),
    }
}

/// The most recent schedule time in `(earliest, now]` and how many there are (counted up
/// to one more than [`MISSED_LIMIT`]).
fn missed_times(
    schedule: &Schedule,
    tz: &TimeZone,
    earliest: Timestamp,
    now: Timestamp,
) -> (Option<Timestamp>, usize) {
    let mut t = earliest;
    let mut count = 0;
    let mut last = None;
    while let Some(next) = schedule.next_after(t, tz).filter(|n| *n <= now) {
        count += 1;
        last = Some(next);
        t = next;
        if count > MISSED_LIMIT {
            // Too many to walk: find the most recent from a window before now that holds
            // one, widening it as needed.
            for hours in [1, 24, 24 * 31, 24 * 366, 24 * 366 * 5] {
                let from = now
                    .checked_sub(SignedDuration::from_hours(hours))
                    .map_or(t, |f| f.max(t));
                let mut walk = from;
                let mut found = None;
                while let Some(n) = schedule.next_after(walk, tz).filter(|n| *n <= now) {
                    found = Some(n);
                    walk = n;
                }
                if found.is_some() {
                    last = found;
                    break;
                }
            }
            break;
        }
    }
    (last, count)
}

/// Go's RFC 3339 of an instant in a zone (`Z` for UTC), as Kubernetes writes the
/// scheduled-timestamp annotation.
fn rfc3339_in(t: Timestamp, tz: &TimeZone) -> String {
    let zoned = t.to_zoned(tz.clone());
    if zoned.offset().seconds() == 0 {
        meta::format_time(t)
    } else {
        zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// Starts the run that is due, if any; returns when to look again and the Job it created.
fn schedule(
    ctx: &Ctx,
    cj: &Value,
    jobs: &[&Value],
    active: &mut Vec<Value>,
    status: &mut Value,
) -> Result<(Wake, Option<Value>), StoreError> {
    let text = meta::str_at(cj, "/spec/schedule");
    let schedule = match Schedule::parse(text) {
        Ok(s) => s,
        Err(e) => {
            ctx.events.record(
                cj,
                EventType::Warning,
                "UnparseableSchedule",
                &format!("unparseable schedule: {text:?} : {e}"),
            );
            return Ok((Wake::RESYNC, None));
        }
    };
    let tz = match time_zone(cj) {
        Ok(tz) => tz,
        Err(e) => {
            ctx.events.record(
                cj,
                EventType::Warning,
                "UnknownTimeZone",
                &format!(
                    "invalid timeZone: {:?}: {e}",
                    meta::str_at(cj, "/spec/timeZone")
                ),
            );
            return Ok((Wake::RESYNC, None));
        }
    };
    let now = ctx.now;
    let next_wake = match schedule.next_after(now, &tz) {
        Some(next) => Wake::at(next.checked_add(WAKE_SLACK).unwrap_or(next), now),
        None => Wake::RESYNC,
    };
    let created = meta::parse_time(meta::str_at(cj, "/metadata/creationTimestamp"));
    let Some(mut earliest) =
        meta::parse_time(meta::str_at(status, "/lastScheduleTime")).or(created)
    else {
        return Ok((next_wake, None));
    };
    let deadline = cj
        .pointer("/spec/startingDeadlineSeconds")
        .and_then(Value::as_i64);
    if let Some(d) = deadline
        && let Ok(window_start) = now.checked_sub(SignedDuration::from_secs(d))
    {
        earliest = earliest.max(window_start);
    }
    let (due, missed) = missed_times(&schedule, &tz, earliest, now);
    let Some(due) = due else {
        return Ok((next_wake, None));
    };
    if missed > MISSED_LIMIT {
        ctx.events.record(
            cj,
            EventType::Warning,
            "TooManyMissedTimes",
            &format!("too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"),
        );
    }
    if let Some(d) = deadline
        && due
            .checked_add(SignedDuration::from_secs(d))
            .is_ok_and(|late| late < now)
    {
        ctx.events.record(
            cj,
            EventType::Warning,
            "MissSchedule",
            &format!(
                "Missed scheduled time to start a job: {}",
                due.to_zoned(TimeZone::UTC)
                    .strftime("%a, %d %b %Y %H:%M:%S %z")
            ),
        );
        return Ok((next_wake, None));
    }
    let name = format!("{}-{}", meta::name(cj), due.as_second().div_euclid(60));
    if jobs.iter().any(|j| meta::name(j) == name) {
        // Already ran (its status write was lost, or it is listed already).
        status["lastScheduleTime"] = json!(meta::format_time(due));
        return Ok((next_wake, None));
    }
    match meta::str_at(cj, "/spec/concurrencyPolicy") {
        "Forbid" if !active.is_empty() => {
            ctx.events.record(
                cj,
                EventType::Normal,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            );
            return Ok((next_wake, None));
        }
        "Replace" => {
            for r in std::mem::take(active) {
                match jobs.iter().find(|j| r["uid"] == meta::uid(j)) {
                    Some(j) => delete_job(ctx, cj, j)?,
                    None => continue,
                }
            }
        }
        _ => {}
    }
    let job = job_from_template(cj, &name, due, &tz);
    match ctx
        .store
        .create(ctx.job_rt, Some(meta::namespace(cj)), job, false)
    {
        Ok(created) => {
            ctx.events.record(
                cj,
                EventType::Normal,
                "SuccessfulCreate",
                &format!("Created job {name}"),
            );
            status["lastScheduleTime"] = json!(meta::format_time(due));
            Ok((next_wake, Some(created)))
        }
        Err(StoreError::Api(ApiError::AlreadyExists(_))) => {
            status["lastScheduleTime"] = json!(meta::format_time(due));
            Ok((next_wake, None))
        }
        Err(e) => {
            ctx.events.record(
                cj,
                EventType::Warning,
                "FailedCreate",
                &format!("Error creating job: {e}"),
            );
            Err(e)
        }
    }
}

/// The Job for the run scheduled at `due`.
fn job_from_template(cj: &Value, name: &str, due: Timestamp, tz: &TimeZone) -> Value {
    let template = &cj["spec"]["jobTemplate"];
    let mut metadata = json!({
        "name": name,
        "namespace": meta::namespace(cj),
        "ownerReferences": [{
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": meta::name(cj),
            "uid": meta::uid(cj),
            "controller": true,
            "blockOwnerDeletion": true,
        }],
    });
    if let Some(labels) = template
        .pointer("/metadata/labels")
        .filter(|l| l.is_object())
    {
        metadata["labels"] = labels.clone();
    }
    let mut annotations = template
        .pointer("/metadata/annotations")
        .filter(|a| a.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    annotations[SCHEDULED_TIMESTAMP] = json!(rfc3339_in(due, tz));
    metadata["annotations"] = annotations;
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": template["spec"].clone(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::Subresource;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn missed_times_count_and_find_the_latest() {
        let every_minute = Schedule::parse("* * * * *").expect("parses");
        let utc = TimeZone::UTC;
        let now = ts("2026-01-01T10:05:30Z");
        assert_eq!(
            missed_times(&every_minute, &utc, ts("2026-01-01T10:05:00Z"), now),
            (None, 0)
        );
        assert_eq!(
            missed_times(&every_minute, &utc, ts("2026-01-01T10:02:10Z"), now),
            (Some(ts("2026-01-01T10:05:00Z")), 3)
        );
        // A year of minutes: reported as too many, the latest still found.
        let (latest, count) = missed_times(&every_minute, &utc, ts("2025-01-01T00:00:00Z"), now);
        assert_eq!(latest, Some(ts("2026-01-01T10:05:00Z")));
        assert!(count > MISSED_LIMIT);
        let yearly = Schedule::parse("@yearly").expect("parses");
        let (latest, count) = missed_times(&yearly, &utc, ts("1900-01-01T00:00:00Z"), now);
        assert_eq!(latest, Some(ts("2026-01-01T00:00:00Z")));
        assert!(count > MISSED_LIMIT);
    }

    #[test]
    fn scheduled_timestamps_are_rfc3339_in_the_zone() {
        let t = ts("2026-07-01T08:00:00Z");
        assert_eq!(rfc3339_in(t, &TimeZone::UTC), "2026-07-01T08:00:00Z");
        let berlin = TimeZone::get("Europe/Berlin").expect("tzdata");
        assert_eq!(rfc3339_in(t, &berlin), "2026-07-01T10:00:00+02:00");
    }

    fn store() -> (tempfile::TempDir, Arc<Store>) {
        crate::store::test_store()
    }

    fn rt(kind: &str) -> &'static registry::ResourceType {
        registry::by_kind("batch/v1", kind).expect("kind")
    }

    /// A CronJob whose last run was `minutes_ago` minutes before the last minute boundary.
    fn create_cron_job(s: &Store, spec: Value, minutes_ago: i64) -> Value {
        let mut cj = json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "tick", "namespace": "default"},
            "spec": {
                "schedule": "* * * * *",
                "timeZone": "UTC",
                "jobTemplate": {"spec": {"template": {"spec": {
                    "containers": [{"name": "c", "image": "i"}],
                    "restartPolicy": "Never"
                }}}}
            }
        });
        json_patch::merge(&mut cj, &spec);
        let created = s
            .create(rt("CronJob"), Some("default"), cj, false)
            .expect("create");
        let minute = Timestamp::now().as_second().div_euclid(60) * 60;
        let last = Timestamp::from_second(minute - 60 * minutes_ago).expect("time");
        s.update_with(
            rt("CronJob"),
            Some("default"),
            "tick",
            Subresource::Status,
            false,
            |cur| {
                let mut c = cur.clone();
                c["status"] = json!({"lastScheduleTime": meta::format_time(last)});
                Ok(c)
            },
        )
        .expect("status");
        created
    }

    fn jobs(s: &Store) -> Vec<Value> {
        s.list(rt("Job"), Some("default")).expect("list").0
    }

    fn finish(s: &Store, job: &Value, condition: &str, start: &str) {
        s.update_with(
            rt("Job"),
            Some("default"),
            meta::name(job),
            Subresource::Status,
            false,
            |cur| {
                let mut j = cur.clone();
                j["status"] = json!({
                    "startTime": start,
                    "completionTime": start,
                    "conditions": [{"type": condition, "status": "True"}],
                });
                Ok(j)
            },
        )
        .expect("finish");
    }

    #[test]
    fn a_due_run_creates_one_job_and_lists_it() {
        let (_d, s) = store();
        let events = Recorder::new(s.clone(), "cronjob-controller", "node");
        let cj = create_cron_job(&s, json!({}), 1);
        let wake = reconcile_all(&s, &events);
        assert!(wake <= Wake::after(std::time::Duration::from_secs(61)));
        let all = jobs(&s);
        assert_eq!(all.len(), 1);
        let job = &all[0];
        let minute = Timestamp::now().as_second().div_euclid(60);
        assert_eq!(meta::name(job), format!("tick-{minute}"));
        assert_eq!(cronjob_owner_uid(job), Some(meta::uid(&cj)));
        assert!(meta::annotations(job)[SCHEDULED_TIMESTAMP].ends_with(":00Z"));
        assert_eq!(job["spec"]["backoffLimit"], 6, "Job defaults applied");
        let cj = s.get(rt("CronJob"), Some("default"), "tick").expect("cj");
        assert_eq!(cj["status"]["active"][0]["name"], meta::name(job));
        assert_eq!(
            cj["status"]["lastScheduleTime"],
            meta::format_time(Timestamp::from_second(minute * 60).expect("t"))
        );
        // Again: nothing new.
        reconcile_all(&s, &events);
        assert_eq!(jobs(&s).len(), 1);
        // Finished: out of `active`, and the success time noted.
        finish(&s, job, "Complete", "2026-01-01T00:00:00Z");
        reconcile_all(&s, &events);
        let cj = s.get(rt("CronJob"), Some("default"), "tick").expect("cj");
        assert!(cj["status"].get("active").is_none(), "{cj}");
        assert_eq!(cj["status"]["lastSuccessfulTime"], "2026-01-01T00:00:00Z");
    }

    #[test]
    fn forbid_skips_and_replace_replaces() {
        let (_d, s) = store();
        let events = Recorder::new(s.clone(), "cronjob-controller", "node");
        let cj = create_cron_job(&s, json!({"spec": {"concurrencyPolicy": "Forbid"}}), 2);
        // An unfinished run it does not list (as if its status write had been lost).
        let old = job_from_template(&cj, "tick-1", Timestamp::now(), &TimeZone::UTC);
        s.create(rt("Job"), Some("default"), old, false)
            .expect("job");
        reconcile_all(&s, &events);
        assert_eq!(jobs(&s).len(), 1, "Forbid: no second run");
        let (evs, _) = s
            .list(crate::events::event_type().expect("ev"), Some("default"))
            .expect("events");
        assert!(evs.iter().any(|e| e["reason"] == "JobAlreadyActive"));
        assert!(evs.iter().any(|e| e["reason"] == "UnexpectedJob"));

        s.update_with(
            rt("CronJob"),
            Some("default"),
            "tick",
            Subresource::Main,
            false,
            |cur| {
                let mut c = cur.clone();
                c["spec"]["concurrencyPolicy"] = json!("Replace");
                Ok(c)
            },
        )
        .expect("replace");
        reconcile_all(&s, &events);
        let left: Vec<Value> = jobs(&s)
            .into_iter()
            .filter(|j| j.pointer("/metadata/deletionTimestamp").is_none())
            .collect();
        assert_eq!(left.len(), 1);
        assert_ne!(meta::name(&left[0]), "tick-1");
        let cj = s.get(rt("CronJob"), Some("default"), "tick").expect("cj");
        assert_eq!(cj["status"]["active"].as_array().map(Vec::len), Some(1));
        assert_eq!(cj["status"]["active"][0]["name"], meta::name(&left[0]));
    }

    #[test]
    fn history_keeps_the_newest_finished_jobs() {
        let (_d, s) = store();
        let events = Recorder::new(s.clone(), "cronjob-controller", "node");
        let cj = create_cron_job(
            &s,
            json!({"spec": {"suspend": true, "successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 1}}),
            0,
        );
        for (i, condition) in ["Complete", "Complete", "Failed", "Failed", "Complete"]
            .iter()
            .enumerate()
        {
            let job =
                job_from_template(&cj, &format!("tick-{i}"), Timestamp::now(), &TimeZone::UTC);
            let job = s
                .create(rt("Job"), Some("default"), job, false)
                .expect("job");
            finish(&s, &job, condition, &format!("2026-01-01T00:0{i}:00Z"));
        }
        reconcile_all(&s, &events);
        let mut names: Vec<String> = jobs(&s).iter().map(|j| meta::name(j).to_string()).collect();
        names.sort();
        assert_eq!(names, ["tick-3", "tick-4"]);
    }

    #[test]
    fn a_zone_that_cannot_be_loaded_is_reported_not_run() {
        let (_d, s) = store();
        let events = Recorder::new(s.clone(), "cronjob-controller", "node");
        create_cron_job(&s, json!({}), 3);
        // Stored as if admission had not checked it.
        s.update_with(
            rt("CronJob"),
            Some("default"),
            "tick",
            Subresource::Status,
            false,
            |cur| Ok(cur.clone()),
        )
        .expect("noop");
        let mut cj = s.get(rt("CronJob"), Some("default"), "tick").expect("cj");
        cj["spec"]["timeZone"] = json!("Mars/Olympus_Mons");
        let ctx = Ctx {
            store: &s,
            events: &events,
            cj_rt: rt("CronJob"),
            job_rt: rt("Job"),
            now: Timestamp::now(),
        };
        reconcile(&ctx, &cj, &[]).expect("no error");
        assert!(jobs(&s).is_empty());
        let (evs, _) = s
            .list(crate::events::event_type().expect("ev"), Some("default"))
            .expect("events");
        assert!(
            evs.iter().any(|e| e["reason"] == "UnknownTimeZone"),
            "{evs:?}"
        );
    }
}
