//! apps/v1: Deployment, ReplicaSet, StatefulSet (`pkg/apis/apps/v1/defaults.go`,
//! `pkg/apis/apps/validation`).
//!
//! apps/v1 never invents a selector: `spec.selector` is required, must select the template's
//! labels and is immutable.

use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod::{default_pod_spec, validate_pod_template};
use super::storage::{default_pvc, validate_pvc_spec};
use super::{default_str, immutable, json_of};
use crate::api::error::FieldError;
use crate::api::registry::Admit;
use crate::api::validation::{
    go_string_map, invalid_raw, selector_is_empty, selector_matches, validate_label_selector,
    validate_nonnegative, validate_supported,
};

/// Defaults a pod template (its spec is created when absent, so validation reports what is
/// missing inside it).
pub(super) fn default_pod_template(template: &mut PodTemplateSpec) {
    default_pod_spec(template.spec.get_or_insert_with(Default::default));
}

/// The selector rules shared by the workload kinds: present, non-empty, valid, and
/// selecting the template's labels. `kind` names the kind in the empty-selector message.
pub(super) fn validate_selector_and_template(
    selector: &LabelSelector,
    template: &PodTemplateSpec,
    kind: &str,
    errs: &mut Vec<FieldError>,
) {
    validate_label_selector("spec.selector", selector, errs);
    if selector_is_empty(selector) {
        errs.push(invalid_raw(
            "spec.selector",
            json_of(selector),
            &format!("empty selector is invalid for {kind}"),
        ));
        return;
    }
    let labels = template.metadata.as_ref().and_then(|m| m.labels.as_ref());
    let empty = Default::default();
    if !selector_matches(selector, labels.unwrap_or(&empty)) {
        errs.push(invalid_raw(
            "spec.template.metadata.labels",
            go_string_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
}

/// Template rules of controllers whose pods run forever: restartPolicy Always and no
/// activeDeadlineSeconds.
fn validate_long_running_template(
    template: &PodTemplateSpec,
    kind: &str,
    extra_volumes: &[String],
    errs: &mut Vec<FieldError>,
) {
    validate_pod_template(template, "spec.template", extra_volumes, errs);
    let Some(spec) = &template.spec else { return };
    if let Some(policy) = spec.restart_policy.as_deref()
        && policy != "Always"
    {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            policy,
            &["Always"],
        ));
    }
    if spec.active_deadline_seconds.is_some() {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            &format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
}

/// An int-or-percent (`maxSurge`, `maxUnavailable`): a count ≥ 0 or `N%`.
fn validate_int_or_percent(field: &str, value: Option<&IntOrString>, errs: &mut Vec<FieldError>) {
    match value {
        Some(IntOrString::Int(n)) => validate_nonnegative(field, Some(i64::from(*n)), errs),
        Some(IntOrString::String(s)) if percent(s).is_none() => {
            errs.push(FieldError::invalid(
                field,
                s,
                "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
            ));
        }
        Some(IntOrString::String(_)) | None => {}
    }
}

/// `25%` → 25.
fn percent(s: &str) -> Option<u64> {
    let digits = s.strip_suffix('%')?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().unwrap_or(u64::MAX))
}

fn is_zero(value: Option<&IntOrString>) -> bool {
    match value {
        Some(IntOrString::Int(n)) => *n == 0,
        Some(IntOrString::String(s)) => percent(s) == Some(0),
        None => true,
    }
}

fn int_or_string_display(v: Option<&IntOrString>) -> String {
    match v {
        Some(IntOrString::Int(n)) => n.to_string(),
        Some(IntOrString::String(s)) => format!("{s:?}"),
        None => "null".to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Deployment
// ---------------------------------------------------------------------------------------------

impl Admit for Deployment {
    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        spec.replicas.get_or_insert(1);
        let strategy = spec.strategy.get_or_insert_with(Default::default);
        default_str(&mut strategy.type_, "RollingUpdate");
        if strategy.type_.as_deref() == Some("RollingUpdate") {
            let ru = strategy.rolling_update.get_or_insert_with(Default::default);
            ru.max_unavailable
                .get_or_insert_with(|| IntOrString::String("25%".into()));
            ru.max_surge
                .get_or_insert_with(|| IntOrString::String("25%".into()));
        }
        spec.revision_history_limit.get_or_insert(10);
        spec.progress_deadline_seconds.get_or_insert(600);
        default_pod_template(&mut spec.template);
    }

    fn validate(&self, errs: &mut Vec<FieldError>) {
        let Some(spec) = &self.spec else {
            errs.push(FieldError::required("spec", ""));
            return;
        };
        validate_nonnegative("spec.replicas", spec.replicas.map(i64::from), errs);
        validate_nonnegative(
            "spec.minReadySeconds",
            spec.min_ready_seconds.map(i64::from),
            errs,
        );
        validate_nonnegative(
            "spec.revisionHistoryLimit",
            spec.revision_history_limit.map(i64::from),
            errs,
        );
        if let Some(deadline) = spec.progress_deadline_seconds {
            validate_nonnegative(
                "spec.progressDeadlineSeconds",
                Some(i64::from(deadline)),
                errs,
            );
            if deadline <= spec.min_ready_seconds.unwrap_or(0) {
                errs.push(invalid_raw(
                    "spec.progressDeadlineSeconds",
                    deadline,
                    "must be greater than minReadySeconds",
                ));
            }
        }
        validate_selector_and_template(&spec.selector, &spec.template, "deployment", errs);
        validate_long_running_template(&spec.template, "ReplicaSet", &[], errs);

        let Some(strategy) = &spec.strategy else {
            return;
        };
        match strategy.type_.as_deref() {
            Some("Recreate") => {
                if strategy.rolling_update.is_some() {
                    errs.push(FieldError::forbidden(
                        "spec.strategy.rollingUpdate",
                        "may not be specified when strategy `type` is 'Recreate'",
                    ));
                }
            }
            Some("RollingUpdate") => {
                let Some(ru) = &strategy.rolling_update else {
                    errs.push(FieldError::required("spec.strategy.rollingUpdate", ""));
                    return;
                };
                let path = "spec.strategy.rollingUpdate";
                let unavailable = ru.max_unavailable.as_ref();
                let surge = ru.max_surge.as_ref();
                validate_int_or_percent(&format!("{path}.maxUnavailable"), unavailable, errs);
                validate_int_or_percent(&format!("{path}.maxSurge"), surge, errs);
                if is_zero(unavailable) && is_zero(surge) {
                    errs.push(invalid_raw(
                        format!("{path}.maxUnavailable"),
                        int_or_string_display(unavailable),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                if let Some(IntOrString::String(s)) = unavailable
                    && percent(s).is_some_and(|p| p > 100)
                {
                    errs.push(FieldError::invalid(
                        format!("{path}.maxUnavailable"),
                        s,
                        "must not be greater than 100%",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                "spec.strategy.type",
                other.unwrap_or_default(),
                &["Recreate", "RollingUpdate"],
            )),
        }
    }

    fn validate_update(&self, old: &Self, errs: &mut Vec<FieldError>) {
        if let (Some(new), Some(old)) = (&self.spec, &old.spec) {
            immutable("spec.selector", &new.selector, &old.selector, errs);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ReplicaSet
// ---------------------------------------------------------------------------------------------

impl Admit for ReplicaSet {
    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        spec.replicas.get_or_insert(1);
        default_pod_template(spec.template.get_or_insert_with(Default::default));
    }

    fn validate(&self, errs: &mut Vec<FieldError>) {
        let Some(spec) = &self.spec else {
            errs.push(FieldError::required("spec", ""));
            return;
        };
        validate_nonnegative("spec.replicas", spec.replicas.map(i64::from), errs);
        validate_nonnegative(
            "spec.minReadySeconds",
            spec.min_ready_seconds.map(i64::from),
            errs,
        );
        let Some(template) = &spec.template else {
            errs.push(FieldError::required("spec.template", ""));
            return;
        };
        validate_selector_and_template(&spec.selector, template, "replicaset", errs);
        validate_long_running_template(template, "ReplicaSet", &[], errs);
    }

    fn validate_update(&self, old: &Self, errs: &mut Vec<FieldError>) {
        if let (Some(new), Some(old)) = (&self.spec, &old.spec) {
            immutable("spec.selector", &new.selector, &old.selector, errs);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ControllerRevision
// ---------------------------------------------------------------------------------------------

/// A snapshot of a workload's template (`pkg/apis/apps/validation`): `revision` is not
/// negative and `data` never changes.
impl Admit for ControllerRevision {
    fn validate(&self, errs: &mut Vec<FieldError>) {
        validate_nonnegative("revision", Some(self.revision), errs);
    }

    fn validate_update(&self, old: &Self, errs: &mut Vec<FieldError>) {
        immutable("data", &self.data, &old.data, errs);
    }
}

// ---------------------------------------------------------------------------------------------
// StatefulSet
// ---------------------------------------------------------------------------------------------

impl Admit for StatefulSet {
    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        default_str(&mut spec.pod_management_policy, "OrderedReady");
        let strategy = spec.update_strategy.get_or_insert_with(Default::default);
        if strategy.type_.as_deref().is_none_or(str::is_empty) {
            strategy.type_ = Some("RollingUpdate".into());
            strategy.rolling_update.get_or_insert_with(Default::default);
        }
        if strategy.type_.as_deref() == Some("RollingUpdate")
            && let Some(ru) = strategy.rolling_update.as_mut()
        {
            ru.partition.get_or_insert(0);
        }
        let retention = spec
            .persistent_volume_claim_retention_policy
            .get_or_insert_with(Default::default);
        default_str(&mut retention.when_deleted, "Retain");
        default_str(&mut retention.when_scaled, "Retain");
        spec.replicas.get_or_insert(1);
        spec.revision_history_limit.get_or_insert(10);
        default_pod_template(&mut spec.template);
        for claim in spec.volume_claim_templates.iter_mut().flatten() {
            default_pvc(claim);
        }
    }

    fn validate(&self, errs: &mut Vec<FieldError>) {
        let Some(spec) = &self.spec else {
            errs.push(FieldError::required("spec", ""));
            return;
        };
        validate_supported(
            "spec.podManagementPolicy",
            spec.pod_management_policy.as_deref(),
            &["OrderedReady", "Parallel"],
            errs,
        );
        if let Some(strategy) = &spec.update_strategy {
            match strategy.type_.as_deref() {
                Some("OnDelete") => {
                    if let Some(ru) = &strategy.rolling_update {
                        errs.push(invalid_raw(
                            "spec.updateStrategy.rollingUpdate",
                            json_of(ru),
                            "only allowed for updateStrategy 'RollingUpdate'",
                        ));
                    }
                }
                Some("RollingUpdate") => {
                    if let Some(ru) = &strategy.rolling_update {
                        validate_nonnegative(
                            "spec.updateStrategy.rollingUpdate.partition",
                            ru.partition.map(i64::from),
                            errs,
                        );
                        let field = "spec.updateStrategy.rollingUpdate.maxUnavailable";
                        validate_int_or_percent(field, ru.max_unavailable.as_ref(), errs);
                        if ru.max_unavailable.is_some() && is_zero(ru.max_unavailable.as_ref()) {
                            errs.push(invalid_raw(
                                field,
                                int_or_string_display(ru.max_unavailable.as_ref()),
                                "must be greater than 0",
                            ));
                        }
                    }
                }
                other => errs.push(FieldError::not_supported(
                    "spec.updateStrategy.type",
                    other.unwrap_or_default(),
                    &["OnDelete", "RollingUpdate"],
                )),
            }
        }
        if let Some(policy) = &spec.persistent_volume_claim_retention_policy {
            let values = &["Retain", "Delete"];
            let base = "spec.persistentVolumeClaimRetentionPolicy";
            validate_supported(
                &format!("{base}.whenDeleted"),
                policy.when_deleted.as_deref(),
                values,
                errs,
            );
            validate_supported(
                &format!("{base}.whenScaled"),
                policy.when_scaled.as_deref(),
                values,
                errs,
            );
        }
        validate_nonnegative("spec.replicas", spec.replicas.map(i64::from), errs);
        validate_nonnegative(
            "spec.minReadySeconds",
            spec.min_ready_seconds.map(i64::from),
            errs,
        );
        validate_nonnegative(
            "spec.revisionHistoryLimit",
            spec.revision_history_limit.map(i64::from),
            errs,
        );
        if let Some(ordinals) = &spec.ordinals {
            validate_nonnegative("spec.ordinals.start", ordinals.start.map(i64::from), errs);
        }
        validate_selector_and_template(&spec.selector, &spec.template, "statefulset", errs);
        // Pods mount their claims by the template's name, so those count as volumes.
        let claims: Vec<String> = spec
            .volume_claim_templates
            .iter()
            .flatten()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        validate_long_running_template(&spec.template, "StatefulSet", &claims, errs);
        for (i, claim) in spec.volume_claim_templates.iter().flatten().enumerate() {
            let path = format!("spec.volumeClaimTemplates[{i}]");
            match claim.metadata.name.as_deref() {
                None | Some("") => {
                    errs.push(FieldError::required(format!("{path}.metadata.name"), ""))
                }
                Some(name) => crate::api::validation::validate_name(
                    &format!("{path}.metadata.name"),
                    name,
                    crate::api::validation::NameRule::Subdomain,
                    errs,
                ),
            }
            if let Some(claim_spec) = &claim.spec {
                validate_pvc_spec(claim_spec, &format!("{path}.spec"), errs);
            }
        }
    }

    fn validate_update(&self, old: &Self, errs: &mut Vec<FieldError>) {
        let (Some(new), Some(old)) = (&self.spec, &old.spec) else {
            return;
        };
        immutable("spec.selector", &new.selector, &old.selector, errs);
        let mut rest = new.clone();
        rest.replicas = old.replicas;
        rest.template = old.template.clone();
        rest.update_strategy = old.update_strategy.clone();
        rest.min_ready_seconds = old.min_ready_seconds;
        rest.ordinals = old.ordinals.clone();
        rest.revision_history_limit = old.revision_history_limit;
        rest.persistent_volume_claim_retention_policy =
            old.persistent_volume_claim_retention_policy.clone();
        rest.selector = old.selector.clone();
        if rest != *old {
            errs.push(FieldError::forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::test_support::{admit_update, ok, patched, rejects, rejects_update};

    /// The nginx-deployment of the Kubernetes documentation, as a user writes it.
    const NGINX_DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  namespace: default
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
"#;

    fn deployment() -> Value {
        serde_yaml::from_str(NGINX_DEPLOYMENT).expect("valid YAML")
    }

    #[test]
    fn nginx_deployment_admits_with_kubernetes_defaults() {
        let out = ok(&deployment());
        let spec = &out["spec"];
        assert_eq!(spec["replicas"], 3, "kept");
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        assert!(spec.get("minReadySeconds").is_none());
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Always");
        assert_eq!(pod["dnsPolicy"], "ClusterFirst");
        assert_eq!(pod["schedulerName"], "default-scheduler");
        assert_eq!(pod["securityContext"], json!({}));
        assert_eq!(pod["terminationGracePeriodSeconds"], 30);
        // Pod-only defaults stay out of templates, as in Kubernetes.
        assert!(pod.get("enableServiceLinks").is_none());
        let c = &pod["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        // Admission is idempotent: the stored object admits to itself.
        assert_eq!(ok(&out), out);
    }

    #[test]
    fn deployment_defaults_without_replicas_and_with_recreate() {
        let out = ok(&patched(
            &deployment(),
            json!({"spec": {"replicas": null, "strategy": {"type": "Recreate"}}}),
        ));
        assert_eq!(out["spec"]["replicas"], 1);
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn invalid_deployments_name_the_field() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                json!({"spec": {"selector": null}}),
                "spec.selector",
                "empty selector is invalid for deployment",
            ),
            (
                json!({"spec": {"selector": {"matchLabels": {"app": "web"}}}}),
                "spec.template.metadata.labels",
                "Invalid value: map[string]string{\"app\":\"nginx\"}: `selector` does not match template `labels`",
            ),
            (
                json!({"spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "Near"}]}}}),
                "spec.selector.matchExpressions[0].operator",
                "Unsupported value",
            ),
            (
                json!({"spec": {"replicas": -1}}),
                "spec.replicas",
                "Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                json!({"spec": {"template": {"spec": {"restartPolicy": "Never"}}}}),
                "spec.template.spec.restartPolicy",
                "Unsupported value: \"Never\": supported values: \"Always\"",
            ),
            (
                json!({"spec": {"strategy": {"type": "BlueGreen"}}}),
                "spec.strategy.type",
                "Unsupported value",
            ),
            (
                json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}}}),
                "spec.strategy.rollingUpdate.maxUnavailable",
                "may not be 0 when `maxSurge` is 0",
            ),
            (
                json!({"spec": {"strategy": {"rollingUpdate": {"maxUnavailable": "150%"}}}}),
                "spec.strategy.rollingUpdate.maxUnavailable",
                "must not be greater than 100%",
            ),
            (
                json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": "half"}}}}),
                "spec.strategy.rollingUpdate.maxSurge",
                "a valid percent string",
            ),
            (
                json!({"spec": {"strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}}}),
                "spec.strategy.rollingUpdate",
                "may not be specified when strategy `type` is 'Recreate'",
            ),
            (
                json!({"spec": {"minReadySeconds": 700}}),
                "spec.progressDeadlineSeconds",
                "must be greater than minReadySeconds",
            ),
            (
                json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": ""}]}}}}),
                "spec.template.spec.containers[0].image",
                "Required value",
            ),
            (
                json!({"spec": {"template": {"metadata": {"labels": {"app": "nginx", "bad key": "x"}}}}}),
                "spec.template.metadata.labels",
                "name part must consist of",
            ),
        ];
        for (patch, field, text) in cases {
            rejects(&patched(&deployment(), patch), field, text);
        }
    }

    #[test]
    fn deployment_selector_is_immutable() {
        let old = ok(&deployment());
        let mut new = patched(
            &old,
            json!({"spec": {"selector": {"matchLabels": {"tier": "web"}}}}),
        );
        new["spec"]["template"]["metadata"]["labels"] = json!({"app": "nginx", "tier": "web"});
        rejects_update(&new, &old, "spec.selector", "field is immutable");
        // Changing anything else is fine.
        let scaled = patched(&old, json!({"spec": {"replicas": 5}}));
        admit_update(&scaled, Some(&old)).expect("scaling is an update");
    }

    fn replica_set() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}
                }
            }
        })
    }

    #[test]
    fn replica_sets() {
        let out = ok(&replica_set());
        assert_eq!(out["spec"]["replicas"], 1);
        assert_eq!(out["spec"]["template"]["spec"]["restartPolicy"], "Always");
        rejects(
            &patched(&replica_set(), json!({"spec": {"template": null}})),
            "spec.template.metadata.labels",
            "`selector` does not match template `labels`",
        )
        .iter()
        .find(|c| c.field == "spec.template.spec.containers")
        .expect("an absent template has no containers");
        rejects(
            &patched(
                &replica_set(),
                json!({"spec": {"template": {"spec": {"activeDeadlineSeconds": 5}}}}),
            ),
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        );
        let new = patched(
            &out,
            json!({"spec": {"selector": {"matchLabels": {"app": null}, "matchExpressions": [{"key": "app", "operator": "Exists"}]}}}),
        );
        rejects_update(&new, &out, "spec.selector", "field is immutable");
    }

    fn stateful_set() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{
                        "name": "db", "image": "postgres:16",
                        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql"}]
                    }]}
                },
                "volumeClaimTemplates": [{
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
                }]
            }
        })
    }

    #[test]
    fn stateful_set_defaults_and_claim_mounts() {
        let out = ok(&stateful_set());
        let spec = &out["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(
            spec["volumeClaimTemplates"][0]["spec"]["volumeMode"],
            "Filesystem"
        );
        assert_eq!(
            spec["volumeClaimTemplates"][0]["status"]["phase"],
            "Pending"
        );
        // OnDelete gets no rollingUpdate.
        let on_delete = ok(&patched(
            &stateful_set(),
            json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}),
        ));
        assert_eq!(
            on_delete["spec"]["updateStrategy"],
            json!({"type": "OnDelete"})
        );
    }

    #[test]
    fn invalid_stateful_sets_name_the_field() {
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                json!({"spec": {"podManagementPolicy": "Random"}}),
                "spec.podManagementPolicy",
                "Unsupported value",
            ),
            (
                json!({"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}}}),
                "spec.updateStrategy.rollingUpdate",
                "only allowed for updateStrategy 'RollingUpdate'",
            ),
            (
                json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": -1}}}}),
                "spec.updateStrategy.rollingUpdate.partition",
                "greater than or equal to 0",
            ),
            (
                json!({"spec": {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Keep"}}}),
                "spec.persistentVolumeClaimRetentionPolicy.whenDeleted",
                "Unsupported value",
            ),
            (
                json!({"spec": {"selector": {"matchLabels": null}}}),
                "spec.selector",
                "empty selector is invalid for statefulset",
            ),
            (
                json!({"spec": {"template": {"spec": {"restartPolicy": "OnFailure"}}}}),
                "spec.template.spec.restartPolicy",
                "supported values: \"Always\"",
            ),
            (
                json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}]}}),
                "spec.volumeClaimTemplates[0].spec.accessModes",
                "at least 1 access mode is required",
            ),
        ];
        for (patch, field, text) in cases {
            rejects(&patched(&stateful_set(), patch), field, text);
        }
    }

    #[test]
    fn stateful_set_updates() {
        let old = ok(&stateful_set());
        let mut new = patched(
            &old,
            json!({"spec": {"replicas": 3, "updateStrategy": {"type": "OnDelete", "rollingUpdate": null}}}),
        );
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("postgres:17");
        admit_update(&new, Some(&old)).expect("replicas, template and strategy may change");
        let renamed = patched(&old, json!({"spec": {"serviceName": "other"}}));
        rejects_update(
            &renamed,
            &old,
            "spec",
            "updates to statefulset spec for fields other than",
        );
        let mut reselected = patched(
            &old,
            json!({"spec": {"selector": {"matchLabels": {"tier": "db"}}}}),
        );
        reselected["spec"]["template"]["metadata"]["labels"]["tier"] = json!("db");
        rejects_update(&reselected, &old, "spec.selector", "field is immutable");
    }
}
