//! batch/v1: Job and CronJob (`pkg/apis/batch/v1/defaults.go`, `pkg/apis/batch/validation`).
//!
//! As in Kubernetes, the Job-level defaults (`parallelism`, `backoffLimit`, …) belong to the
//! Job object, not to a CronJob's `jobTemplate`: the Jobs a CronJob creates get them when
//! they are admitted. Pod templates are defaulted everywhere, so a Job template without a
//! `restartPolicy` gets `Always` and is then refused with Kubernetes' own message.

use k8s_openapi::api::batch::v1::{CronJob, Job, JobSpec};

use super::apps::default_pod_template;
use super::cron::validate_schedule;
use super::pod::validate_pod_template;
use super::{default_str, immutable, json_of};
use crate::api::error::FieldError;
use crate::api::registry::Admit;
use crate::api::validation::{
    go_string_map, invalid_raw, selector_matches, validate_label_selector, validate_nonnegative,
    validate_supported,
};

impl Admit for Job {
    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        if spec.completions.is_none() && spec.parallelism.is_none() {
            spec.completions = Some(1);
            spec.parallelism = Some(1);
        }
        spec.parallelism.get_or_insert(1);
        if spec.backoff_limit.is_none() {
            spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() {
                i32::MAX
            } else {
                6
            });
        }
        spec.completion_mode
            .get_or_insert_with(|| "NonIndexed".into());
        spec.suspend.get_or_insert(false);
        let replacement = if spec.pod_failure_policy.is_some() {
            "Failed"
        } else {
            "TerminatingOrFailed"
        };
        spec.pod_replacement_policy
            .get_or_insert_with(|| replacement.into());
        default_job_spec_nested(spec);
        // A Job without labels takes its template's. Kubernetes does this again whenever
        // it reads a Job back, so a Job created without any labels shows the generated ones.
        copy_template_labels(self);
    }

    /// Kubernetes' `generateSelector`: unless `manualSelector`, the selector is the Job's
    /// uid (which the store assigns before admission, as Kubernetes' `BeforeCreate` does),
    /// and the template is labelled with the uid and the Job's name, both under the legacy
    /// and the `batch.kubernetes.io/` keys. Create only, as in Kubernetes; the Job's own
    /// labels are copied from the user's template labels first, as Kubernetes' defaulting
    /// runs before its create strategy.
    fn prepare_for_create(&mut self) {
        copy_template_labels(self);
        let (Some(uid), Some(name)) = (self.metadata.uid.clone(), self.metadata.name.clone())
        else {
            return;
        };
        let Some(spec) = self.spec.as_mut() else {
            return;
        };
        if spec.manual_selector == Some(true) {
            return;
        }
        let labels = spec
            .template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(Default::default);
        for (key, value) in [
            (LEGACY_CONTROLLER_UID_LABEL, &uid),
            (CONTROLLER_UID_LABEL, &uid),
            (LEGACY_JOB_NAME_LABEL, &name),
            (JOB_NAME_LABEL, &name),
        ] {
            // A conflicting label the user set stays, and validation refuses it.
            labels
                .entry(key.to_string())
                .or_insert_with(|| value.clone());
        }
        spec.selector
            .get_or_insert_with(Default::default)
            .match_labels
            .get_or_insert_with(Default::default)
            .entry(CONTROLLER_UID_LABEL.to_string())
            .or_insert(uid);
    }

    fn validate(&self, errs: &mut Vec<FieldError>) {
        match &self.spec {
            Some(spec) => {
                validate_job_spec(spec, "spec", errs);
                validate_generated_selector(self, spec, errs);
            }
            None => errs.push(FieldError::required("spec", "")),
        }
    }

    fn validate_update(&self, old: &Self, errs: &mut Vec<FieldError>) {
        let (Some(new), Some(old)) = (&self.spec, &old.spec) else {
            return;
        };
        immutable("spec.selector", &new.selector, &old.selector, errs);
        // Kubernetes lets a suspended Job change scheduling directives; berth keeps the
        // template immutable.
        immutable("spec.template", &new.template, &old.template, errs);
        immutable("spec.completions", &new.completions, &old.completions, errs);
        immutable(
            "spec.completionMode",
            &new.completion_mode,
            &old.completion_mode,
            errs,
        );
        immutable(
            "spec.podFailurePolicy",
            &new.pod_failure_policy,
            &old.pod_failure_policy,
            errs,
        );
    }
}

/// The labels Kubernetes' `generateSelector` puts on a Job's pod template.
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";

/// A Job without labels of its own takes its template's.
fn copy_template_labels(job: &mut Job) {
    let template_labels = job
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .filter(|l| !l.is_empty());
    if job.metadata.labels.as_ref().is_none_or(|l| l.is_empty())
        && let Some(labels) = template_labels
    {
        job.metadata.labels = Some(labels);
    }
}

/// Without `manualSelector`, the selector must be exactly the generated one (a selector
/// the user wrote is refused, as in Kubernetes). Jobs stored without a selector are let be.
fn validate_generated_selector(job: &Job, spec: &JobSpec, errs: &mut Vec<FieldError>) {
    let (Some(uid), Some(selector)) = (job.metadata.uid.as_deref(), spec.selector.as_ref()) else {
        return;
    };
    if spec.manual_selector == Some(true) {
        return;
    }
    let generated = selector
        .match_expressions
        .as_ref()
        .is_none_or(Vec::is_empty)
        && selector.match_labels.as_ref().is_some_and(|m| {
            m.len() == 1 && m.get(CONTROLLER_UID_LABEL).map(String::as_str) == Some(uid)
        });
    if !generated {
        errs.push(invalid_raw(
            "spec.selector",
            json_of(selector),
            "`selector` not auto-generated",
        ));
    }
}

/// Defaults a Job spec's nested structures (also for a CronJob's job template).
fn default_job_spec_nested(spec: &mut JobSpec) {
    default_pod_template(&mut spec.template);
    let rules = spec.pod_failure_policy.as_mut().map(|p| &mut p.rules);
    for rule in rules.into_iter().flatten() {
        for pattern in rule.on_pod_conditions.iter_mut().flatten() {
            if pattern.status.is_empty() {
                pattern.status = "True".into();
            }
        }
    }
}

/// `ValidateJobSpec` at `path` (`spec`, `spec.jobTemplate.spec`).
fn validate_job_spec(spec: &JobSpec, path: &str, errs: &mut Vec<FieldError>) {
    for (field, value) in [
        ("parallelism", spec.parallelism),
        ("completions", spec.completions),
        ("backoffLimit", spec.backoff_limit),
        ("backoffLimitPerIndex", spec.backoff_limit_per_index),
        ("maxFailedIndexes", spec.max_failed_indexes),
        ("ttlSecondsAfterFinished", spec.ttl_seconds_after_finished),
    ] {
        validate_nonnegative(&format!("{path}.{field}"), value.map(i64::from), errs);
    }
    validate_nonnegative(
        &format!("{path}.activeDeadlineSeconds"),
        spec.active_deadline_seconds,
        errs,
    );
    match &spec.selector {
        Some(selector) => {
            validate_label_selector(&format!("{path}.selector"), selector, errs);
            let labels = spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.as_ref());
            let empty = Default::default();
            if !selector_matches(selector, labels.unwrap_or(&empty)) {
                errs.push(invalid_raw(
                    format!("{path}.template.metadata.labels"),
                    go_string_map(labels),
                    "`selector` does not match template `labels`",
                ));
            }
        }
        None if spec.manual_selector == Some(true) => {
            errs.push(FieldError::required(format!("{path}.selector"), ""));
        }
        None => {}
    }
    let mode = spec.completion_mode.as_deref();
    validate_supported(
        &format!("{path}.completionMode"),
        mode,
        &["NonIndexed", "Indexed"],
        errs,
    );
    if mode == Some("Indexed") && spec.completions.is_none() {
        errs.push(FieldError::required(
            format!("{path}.completions"),
            "when completion mode is Indexed",
        ));
    }
    validate_supported(
        &format!("{path}.podReplacementPolicy"),
        spec.pod_replacement_policy.as_deref(),
        &["TerminatingOrFailed", "Failed"],
        errs,
    );
    validate_pod_template(&spec.template, &format!("{path}.template"), &[], errs);
    if let Some(pod) = &spec.template.spec {
        let policy = pod.restart_policy.as_deref().unwrap_or_default();
        if policy != "OnFailure" && policy != "Never" {
            errs.push(FieldError::not_supported(
                format!("{path}.template.spec.restartPolicy"),
                policy,
                &["OnFailure", "Never"],
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CronJob
// ---------------------------------------------------------------------------------------------

impl Admit for CronJob {
    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        default_str(&mut spec.concurrency_policy, "Allow");
        spec.suspend.get_or_insert(false);
        spec.successful_jobs_history_limit.get_or_insert(3);
        spec.failed_jobs_history_limit.get_or_insert(1);
        default_job_spec_nested(spec.job_template.spec.get_or_insert_with(Default::default));
    }

    fn validate(&self, errs: &mut Vec<FieldError>) {
        // Job names are the CronJob's name plus an 11-character suffix.
        if let Some(name) = self.metadata.name.as_deref()
            && name.len() > 52
        {
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                "must be no more than 52 characters",
            ));
        }
        let Some(spec) = &self.spec else {
            errs.push(FieldError::required("spec", ""));
            return;
        };
        if spec.schedule.is_empty() {
            errs.push(FieldError::required("spec.schedule", ""));
        } else {
            if let Err(msg) = validate_schedule(&spec.schedule) {
                errs.push(FieldError::invalid("spec.schedule", &spec.schedule, &msg));
            }
            if spec.schedule.contains("TZ") {
                errs.push(FieldError::invalid(
                    "spec.schedule",
                    &spec.schedule,
                    "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
                ));
            }
        }
        if let Some(tz) = &spec.time_zone {
            validate_time_zone(tz, errs);
        }
        validate_supported(
            "spec.concurrencyPolicy",
            spec.concurrency_policy.as_deref(),
            &["Allow", "Forbid", "Replace"],
            errs,
        );
        validate_nonnegative(
            "spec.startingDeadlineSeconds",
            spec.starting_deadline_seconds,
            errs,
        );
        validate_nonnegative(
            "spec.successfulJobsHistoryLimit",
            spec.successful_jobs_history_limit.map(i64::from),
            errs,
        );
        validate_nonnegative(
            "spec.failedJobsHistoryLimit",
            spec.failed_jobs_history_limit.map(i64::from),
            errs,
        );
        let template = &spec.job_template;
        if let Some(meta) = &template.metadata {
            if let Some(labels) = &meta.labels {
                crate::api::validation::validate_labels(
                    "spec.jobTemplate.metadata.labels",
                    labels,
                    errs,
                );
            }
            if let Some(annotations) = &meta.annotations {
                crate::api::validation::validate_annotations(
                    "spec.jobTemplate.metadata.annotations",
                    annotations,
                    errs,
                );
            }
        }
        match &template.spec {
            Some(job) => {
                if job.manual_selector == Some(true) {
                    errs.push(FieldError::not_supported(
                        "spec.jobTemplate.spec.manualSelector",
                        "true",
                        &["nil", "false"],
                    ));
                }
                validate_job_spec(job, "spec.jobTemplate.spec", errs);
            }
            None => errs.push(FieldError::required("spec.jobTemplate.spec", "")),
        }
    }
}

/// A `timeZone`: an explicit IANA zone name the time zone database knows.
fn validate_time_zone(tz: &str, errs: &mut Vec<FieldError>) {
    const FIELD: &str = "spec.timeZone";
    if tz.is_empty() {
        errs.push(FieldError::invalid(
            FIELD,
            tz,
            "timeZone must be nil or non-empty string",
        ));
        return;
    }
    let well_formed = tz.split('/').all(|part| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && !part.starts_with('-')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+'))
    });
    if !well_formed {
        errs.push(FieldError::invalid(
            FIELD,
            tz,
            "timeZone must be a valid time zone name (e.g. \"America/New_York\")",
        ));
        return;
    }
    if tz.eq_ignore_ascii_case("local") {
        errs.push(FieldError::invalid(
            FIELD,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
        return;
    }
    let db = k8s_openapi::jiff::tz::db();
    // A host without a zoneinfo database cannot judge names; the CronJob controller will
    // report the zone when it cannot load it.
    if !db.is_definitively_empty() && db.get(tz).is_err() {
        errs.push(FieldError::invalid(
            FIELD,
            tz,
            &format!("unknown time zone {tz}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::test_support::{admit_update, ok, patched, rejects, rejects_update};

    fn job() -> Value {
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default"},
            "spec": {"template": {
                "metadata": {"labels": {"app": "pi"}},
                "spec": {
                    "containers": [{"name": "pi", "image": "perl:5.34", "command": ["perl", "-e", "print 1"]}],
                    "restartPolicy": "Never"
                }
            }}
        })
    }

    #[test]
    fn job_defaults() {
        let out = ok(&job());
        let spec = &out["spec"];
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert!(spec.get("manualSelector").is_none());
        assert!(
            spec.get("selector").is_none(),
            "generated only with the uid the store assigns"
        );
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app": "pi"}),
            "labels from the template"
        );
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");

        // Only parallelism set: completions stay unset (a work queue).
        let queue = ok(&patched(&job(), json!({"spec": {"parallelism": 3}})));
        assert_eq!(queue["spec"]["parallelism"], 3);
        assert!(queue["spec"].get("completions").is_none());
        // Only completions set: parallelism 1.
        let five = ok(&patched(&job(), json!({"spec": {"completions": 5}})));
        assert_eq!(five["spec"]["parallelism"], 1);
    }

    #[test]
    fn created_jobs_get_a_generated_selector() {
        let with_uid = patched(&job(), json!({"metadata": {"uid": "u-1"}}));
        let out = ok(&with_uid);
        assert_eq!(
            out["spec"]["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
        );
        assert_eq!(
            out["spec"]["template"]["metadata"]["labels"],
            json!({
                "app": "pi",
                "batch.kubernetes.io/controller-uid": "u-1",
                "batch.kubernetes.io/job-name": "pi",
                "controller-uid": "u-1",
                "job-name": "pi"
            })
        );
        // The Job's own labels are the user's template labels, as in Kubernetes.
        assert_eq!(out["metadata"]["labels"], json!({"app": "pi"}));
        // Without template labels, the Job shows the generated ones.
        let bare = patched(
            &with_uid,
            json!({"spec": {"template": {"metadata": {"labels": null}}}}),
        );
        let out = ok(&bare);
        assert_eq!(out["metadata"]["labels"]["job-name"], "pi");
        // Updates keep the selector (it is immutable and not generated again).
        admit_update(&out, Some(&out)).expect("unchanged update");
        // A selector the user wrote needs manualSelector.
        rejects(
            &patched(
                &with_uid,
                json!({"spec": {"selector": {"matchLabels": {"app": "pi"}}}}),
            ),
            "spec.selector",
            "`selector` not auto-generated",
        );
        // With manualSelector nothing is generated.
        let manual = ok(&patched(
            &with_uid,
            json!({"spec": {"manualSelector": true, "selector": {"matchLabels": {"app": "pi"}}}}),
        ));
        assert_eq!(
            manual["spec"]["selector"],
            json!({"matchLabels": {"app": "pi"}})
        );
        assert_eq!(
            manual["spec"]["template"]["metadata"]["labels"],
            json!({"app": "pi"})
        );
    }

    #[test]
    fn invalid_jobs_name_the_field() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                json!({"spec": {"template": {"spec": {"restartPolicy": null}}}}),
                "spec.template.spec.restartPolicy",
                "Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"",
            ),
            (
                json!({"spec": {"parallelism": -1}}),
                "spec.parallelism",
                "greater than or equal to 0",
            ),
            (
                json!({"spec": {"completions": -2}}),
                "spec.completions",
                "greater than or equal to 0",
            ),
            (
                json!({"spec": {"backoffLimit": -1}}),
                "spec.backoffLimit",
                "greater than or equal to 0",
            ),
            (
                json!({"spec": {"completionMode": "Sometimes"}}),
                "spec.completionMode",
                "Unsupported value",
            ),
            (
                json!({"spec": {"selector": {"matchLabels": {"app": "other"}}, "manualSelector": true}}),
                "spec.template.metadata.labels",
                "`selector` does not match template `labels`",
            ),
            (
                json!({"spec": {"manualSelector": true}}),
                "spec.selector",
                "Required value",
            ),
        ];
        for (patch, field, text) in cases {
            rejects(&patched(&job(), patch), field, text);
        }
        // Indexed needs completions; with both unset the defaults supply them.
        rejects(
            &patched(
                &job(),
                json!({"spec": {"completionMode": "Indexed", "parallelism": 2}}),
            ),
            "spec.completions",
            "when completion mode is Indexed",
        );
    }

    #[test]
    fn job_selector_and_template_are_immutable() {
        let with_selector = patched(
            &job(),
            json!({"spec": {"manualSelector": true, "selector": {"matchLabels": {"app": "pi"}}}}),
        );
        let old = ok(&with_selector);
        let mut new = patched(
            &old,
            json!({"spec": {"selector": {"matchLabels": {"tier": "batch"}}}}),
        );
        new["spec"]["template"]["metadata"]["labels"]["tier"] = json!("batch");
        let causes = rejects_update(&new, &old, "spec.selector", "field is immutable");
        assert!(
            causes.iter().any(|c| c.field == "spec.template"),
            "{causes:?}"
        );
        let mut image = old.clone();
        image["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5.36");
        rejects_update(&image, &old, "spec.template", "field is immutable");
        let suspended = patched(&old, json!({"spec": {"suspend": true, "parallelism": 2}}));
        admit_update(&suspended, Some(&old)).expect("suspend and parallelism are mutable");
    }

    fn cron_job() -> Value {
        json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "namespace": "default"},
            "spec": {
                "schedule": "* * * * *",
                "jobTemplate": {"spec": {"template": {"spec": {
                    "containers": [{"name": "hello", "image": "busybox:1.28", "command": ["date"]}],
                    "restartPolicy": "OnFailure"
                }}}}
            }
        })
    }

    #[test]
    fn cron_job_defaults() {
        let out = ok(&cron_job());
        let spec = &out["spec"];
        assert_eq!(spec["concurrencyPolicy"], "Allow");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["successfulJobsHistoryLimit"], 3);
        assert_eq!(spec["failedJobsHistoryLimit"], 1);
        let pod = &spec["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(pod["dnsPolicy"], "ClusterFirst");
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
        // Job-level defaults come when the CronJob controller creates the Job.
        assert!(spec["jobTemplate"]["spec"].get("backoffLimit").is_none());
        ok(&patched(
            &cron_job(),
            json!({"spec": {"timeZone": "Europe/Berlin", "schedule": "@daily"}}),
        ));
    }

    #[test]
    fn invalid_cron_jobs_name_the_field() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                json!({"spec": {"schedule": ""}}),
                "spec.schedule",
                "Required value",
            ),
            (
                json!({"spec": {"schedule": "every minute"}}),
                "spec.schedule",
                "expected exactly 5 fields, found 2",
            ),
            (
                json!({"spec": {"schedule": "61 * * * *"}}),
                "spec.schedule",
                "above maximum (59)",
            ),
            (
                json!({"spec": {"schedule": "TZ=UTC 0 * * * *"}}),
                "spec.schedule",
                "use timeZone field instead",
            ),
            (
                json!({"spec": {"timeZone": "Mars/Olympus_Mons"}}),
                "spec.timeZone",
                "unknown time zone Mars/Olympus_Mons",
            ),
            (
                json!({"spec": {"timeZone": "Local"}}),
                "spec.timeZone",
                "explicit time zone",
            ),
            (
                json!({"spec": {"timeZone": "../etc/passwd"}}),
                "spec.timeZone",
                "valid time zone name",
            ),
            (
                json!({"spec": {"concurrencyPolicy": "Sometimes"}}),
                "spec.concurrencyPolicy",
                "supported values: \"Allow\", \"Forbid\", \"Replace\"",
            ),
            (
                json!({"spec": {"startingDeadlineSeconds": -5}}),
                "spec.startingDeadlineSeconds",
                "greater than or equal to 0",
            ),
            (
                json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Always"}}}}}}),
                "spec.jobTemplate.spec.template.spec.restartPolicy",
                "supported values: \"OnFailure\", \"Never\"",
            ),
            (
                json!({"spec": {"jobTemplate": {"spec": {"manualSelector": true}}}}),
                "spec.jobTemplate.spec.manualSelector",
                "Unsupported value",
            ),
            (
                json!({"metadata": {"name": "a".repeat(53)}}),
                "metadata.name",
                "must be no more than 52 characters",
            ),
        ];
        for (patch, field, text) in cases {
            rejects(&patched(&cron_job(), patch), field, text);
        }
    }
}
