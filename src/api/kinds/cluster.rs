//! Namespaces, Nodes, ResourceQuotas, LimitRanges and Events.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Event, LimitRange, Namespace, NamespaceSpec, NamespaceStatus, Node, ResourceQuota,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::default_str;
use super::pod::TAINT_EFFECTS;
use crate::api::error::FieldError;
use crate::api::registry::Admit;
use crate::api::validation::{
    CIDR_MSG, NONNEGATIVE_MSG, NameRule, QuantityValue, label_value_errors, name_errors,
    parse_cidr, parse_quantity, qualified_name_errors, validate_quantity, validate_supported,
};

/// The label every namespace carries with its own name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

impl Admit for Namespace {
    fn name_rule() -> NameRule {
        NameRule::Label
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(NamespaceStatus {
            phase: Some("Active".into()),
            ..Default::default()
        });
        let spec = self.spec.get_or_insert_with(NamespaceSpec::default);
        let finalizers = spec.finalizers.get_or_insert_with(Vec::new);
        if !finalizers.iter().any(|f| f == "kubernetes") {
            finalizers.push("kubernetes".into());
        }
    }

    fn apply_defaults(&mut self) {
        if let Some(name) = self.metadata.name.clone().filter(|n| !n.is_empty()) {
            self.metadata
                .labels
                .get_or_insert_with(BTreeMap::new)
                .insert(NAMESPACE_NAME_LABEL.to_string(), name);
        }
        if let Some(status) = self.status.as_mut() {
            default_str(&mut status.phase, "Active");
        }
    }

    fn validate(&self, errs: &mut Vec<FieldError>) {
        for (i, f) in self
            .spec
            .iter()
            .flat_map(|s| s.finalizers.iter().flatten())
            .enumerate()
        {
            let field = format!("spec.finalizers[{i}]");
            for msg in qualified_name_errors(f) {
                errs.push(FieldError::invalid(&field, f, &msg));
            }
            if !f.contains('/') && f != "kubernetes" {
                errs.push(FieldError::invalid(
                    &field,
                    f,
                    "name is neither a standard finalizer name nor is it fully qualified",
                ));
            }
        }
    }
}

impl Admit for Node {
    fn apply_defaults(&mut self) {
        if let Some(status) = self.status.as_mut()
            && status.allocatable.is_none()
        {
            status.allocatable = status.capacity.clone();
        }
    }

    fn validate(&self, errs: &mut Vec<FieldError>) {
        let Some(spec) = &self.spec else { return };
        if let Some(cidr) = spec.pod_cidr.as_deref().filter(|c| !c.is_empty())
            && parse_cidr(cidr).is_none()
        {
            errs.push(FieldError::invalid("spec.podCIDR", cidr, CIDR_MSG));
        }
        for (i, cidr) in spec.pod_cidrs.iter().flatten().enumerate() {
            if parse_cidr(cidr).is_none() {
                errs.push(FieldError::invalid(
                    format!("spec.podCIDRs[{i}]"),
                    cidr,
                    CIDR_MSG,
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, t) in spec.taints.iter().flatten().enumerate() {
            let path = format!("spec.taints[{i}]");
            if t.key.is_empty() {
                errs.push(FieldError::required(format!("{path}.key"), ""));
            }
            for msg in qualified_name_errors(&t.key)
                .into_iter()
                .filter(|_| !t.key.is_empty())
            {
                errs.push(FieldError::invalid(format!("{path}.key"), &t.key, &msg));
            }
            for msg in label_value_errors(t.value.as_deref().unwrap_or_default()) {
                errs.push(FieldError::invalid(
                    format!("{path}.value"),
                    t.value.as_deref().unwrap_or_default(),
                    &msg,
                ));
            }
            if t.effect.is_empty() {
                errs.push(FieldError::required(format!("{path}.effect"), ""));
            } else {
                validate_supported(
                    &format!("{path}.effect"),
                    Some(&t.effect),
                    TAINT_EFFECTS,
                    errs,
                );
            }
            if !seen.insert((t.key.as_str(), t.effect.as_str())) {
                errs.push(FieldError::duplicate(
                    path.clone(),
                    format!("{}:{}", t.key, t.effect),
                ));
            }
        }
    }
}

/// Quota resources counted in whole objects.
fn is_integer_resource(name: &str) -> bool {
    matches!(
        name,
        "pods"
            | "services"
            | "replicationcontrollers"
            | "resourcequotas"
            | "secrets"
            | "configmaps"
            | "persistentvolumeclaims"
            | "services.nodeports"
            | "services.loadbalancers"
    ) || name.starts_with("count/")
}

impl Admit for ResourceQuota {
    fn validate(&self, errs: &mut Vec<FieldError>) {
        let Some(spec) = &self.spec else { return };
        for (name, q) in spec.hard.iter().flatten() {
            let field = format!("spec.hard[{name}]");
            for msg in qualified_name_errors(name) {
                errs.push(FieldError::invalid(&field, name, &msg));
            }
            if let Some(v) = validate_quantity(&field, q, errs) {
                if v.is_negative() {
                    errs.push(FieldError::invalid(&field, &q.0, NONNEGATIVE_MSG));
                }
                if is_integer_resource(name) && !v.is_integer() {
                    errs.push(FieldError::invalid(&field, &q.0, "must be an integer"));
                }
            }
        }
        for (i, scope) in spec.scopes.iter().flatten().enumerate() {
            validate_supported(
                &format!("spec.scopes[{i}]"),
                Some(scope),
                &[
                    "Terminating",
                    "NotTerminating",
                    "BestEffort",
                    "NotBestEffort",
                    "PriorityClass",
                    "CrossNamespacePodAffinity",
                    "VolumeAttributesClass",
                ],
                errs,
            );
        }
    }
}

impl Admit for LimitRange {
    fn apply_defaults(&mut self) {
        let items = self.spec.iter_mut().flat_map(|s| s.limits.iter_mut());
        for item in items.filter(|i| i.type_ == "Container") {
            // A max is the default limit, a default limit the default request, and a min
            // the default request when nothing else gave one.
            let mut default = item.default.take().unwrap_or_default();
            for (k, v) in item.max.iter().flatten() {
                default.entry(k.clone()).or_insert_with(|| v.clone());
            }
            let mut request = item.default_request.take().unwrap_or_default();
            for (k, v) in default.iter().chain(item.min.iter().flatten()) {
                request.entry(k.clone()).or_insert_with(|| v.clone());
            }
            item.default = Some(default).filter(|m| !m.is_empty());
            item.default_request = Some(request).filter(|m| !m.is_empty());
        }
    }

    fn validate(&self, errs: &mut Vec<FieldError>) {
        let Some(spec) = &self.spec else { return };
        for (i, item) in spec.limits.iter().enumerate() {
            let path = format!("spec.limits[{i}]");
            let ty = item.type_.as_str();
            if ty.is_empty() {
                errs.push(FieldError::required(format!("{path}.type"), ""));
            } else if !ty.contains('/')
                && !matches!(ty, "Container" | "Pod" | "PersistentVolumeClaim")
            {
                errs.push(FieldError::invalid(
                    format!("{path}.type"),
                    ty,
                    "must be a standard limit type or fully qualified",
                ));
            }
            let parse = |field: &str,
                         map: Option<&BTreeMap<String, Quantity>>,
                         errs: &mut Vec<FieldError>| {
                let mut out = BTreeMap::new();
                for (name, q) in map.into_iter().flatten() {
                    let f = format!("{path}.{field}[{name}]");
                    for msg in qualified_name_errors(name) {
                        errs.push(FieldError::invalid(&f, name, &msg));
                    }
                    if let Some(v) = validate_quantity(&f, q, errs) {
                        if v.is_negative() {
                            errs.push(FieldError::invalid(&f, &q.0, NONNEGATIVE_MSG));
                        }
                        out.insert(name.clone(), (v, q.0.clone()));
                    }
                }
                out
            };
            let max = parse("max", item.max.as_ref(), errs);
            let min = parse("min", item.min.as_ref(), errs);
            let default = parse("default", item.default.as_ref(), errs);
            let request = parse("defaultRequest", item.default_request.as_ref(), errs);
            let ratio = parse(
                "maxLimitRequestRatio",
                item.max_limit_request_ratio.as_ref(),
                errs,
            );
            if ty == "Pod" {
                if !default.is_empty() {
                    errs.push(FieldError::forbidden(
                        format!("{path}.default"),
                        "may not be specified when `type` is 'Pod'",
                    ));
                }
                if !request.is_empty() {
                    errs.push(FieldError::forbidden(
                        format!("{path}.defaultRequest"),
                        "may not be specified when `type` is 'Pod'",
                    ));
                }
            }
            if ty == "PersistentVolumeClaim"
                && !min.contains_key("storage")
                && !max.contains_key("storage")
            {
                errs.push(FieldError::required(
                    format!("{path}.limits"),
                    "either minimum or maximum storage value is required, but neither was provided",
                ));
            }
            let keys: BTreeSet<&String> = max
                .keys()
                .chain(min.keys())
                .chain(default.keys())
                .chain(request.keys())
                .chain(ratio.keys())
                .collect();
            for key in keys {
                let field = format!("{path}[{key}]");
                let order = [
                    (&min, &max, "min value {a} is greater than max value {b}"),
                    (
                        &min,
                        &request,
                        "min value {a} is greater than default request value {b}",
                    ),
                    (
                        &request,
                        &max,
                        "default request value {a} is greater than max value {b}",
                    ),
                    (
                        &request,
                        &default,
                        "default request value {a} is greater than default limit value {b}",
                    ),
                    (
                        &min,
                        &default,
                        "min value {a} is greater than default value {b}",
                    ),
                    (
                        &default,
                        &max,
                        "default value {a} is greater than max value {b}",
                    ),
                ];
                for (lower, upper, template) in order {
                    if let (Some((a, a_str)), Some((b, b_str))) = (lower.get(key), upper.get(key))
                        && a > b
                    {
                        let msg = template.replace("{a}", a_str).replace("{b}", b_str);
                        errs.push(FieldError::invalid(&field, a_str, &msg));
                    }
                }
                if let Some((r, r_str)) = ratio.get(key) {
                    let one = parse_quantity("1").unwrap_or(QuantityValue::ZERO);
                    if *r < one {
                        errs.push(FieldError::invalid(
                            &field,
                            r_str,
                            &format!("ratio {r_str} is less than 1"),
                        ));
                    }
                }
            }
        }
    }
}

impl Admit for Event {
    fn validate(&self, errs: &mut Vec<FieldError>) {
        let namespace = self.metadata.namespace.as_deref().unwrap_or_default();
        let involved_ns = self
            .involved_object
            .namespace
            .as_deref()
            .unwrap_or_default();
        let mismatch = || {
            FieldError::invalid(
                "involvedObject.namespace",
                involved_ns,
                "does not match event.namespace",
            )
        };
        if self.event_time.is_none() {
            // An old-style event: the namespaces must agree (an event about a cluster-scoped
            // object lives in "default").
            if involved_ns.is_empty() {
                if !namespace.is_empty() && namespace != "default" {
                    errs.push(mismatch());
                }
            } else if namespace != involved_ns {
                errs.push(mismatch());
            }
        } else {
            if involved_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
                errs.push(mismatch());
            }
            let controller = self.reporting_component.as_deref().unwrap_or_default();
            if controller.is_empty() {
                errs.push(FieldError::required("reportingComponent", ""));
            } else {
                for msg in qualified_name_errors(controller) {
                    errs.push(FieldError::invalid("reportingComponent", controller, &msg));
                }
            }
            let lengths = [
                ("reportingInstance", self.reporting_instance.as_deref(), 128),
                ("action", self.action.as_deref(), 128),
                ("reason", self.reason.as_deref(), 128),
            ];
            for (field, value, max) in lengths {
                let value = value.unwrap_or_default();
                if value.is_empty() {
                    errs.push(FieldError::required(field, ""));
                } else if value.len() > max {
                    errs.push(FieldError::invalid(
                        field,
                        "",
                        &format!("can have at most {max} characters"),
                    ));
                }
            }
            if self.message.as_deref().is_some_and(|m| m.len() > 1024) {
                errs.push(FieldError::invalid(
                    "message",
                    "",
                    "can have at most 1024 characters",
                ));
            }
            validate_supported("type", self.type_.as_deref(), &["Normal", "Warning"], errs);
        }
        for msg in name_errors(namespace, NameRule::Subdomain) {
            errs.push(FieldError::invalid("namespace", namespace, &msg));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::test_support::{ok, patched, rejects};

    #[test]
    fn namespaces() {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
        let out = ok(&ns);
        assert_eq!(
            out["metadata"]["labels"],
            json!({"kubernetes.io/metadata.name": "shop"})
        );
        assert_eq!(out["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(out["status"]["phase"], "Active");
        rejects(
            &patched(&ns, json!({"metadata": {"name": "my.shop"}})),
            "metadata.name",
            "RFC 1123 label",
        );
        rejects(
            &patched(&ns, json!({"spec": {"finalizers": ["cleanup"]}})),
            "spec.finalizers[0]",
            "neither a standard finalizer name nor is it fully qualified",
        );
        rejects(
            &patched(&ns, json!({"metadata": {"namespace": "default"}})),
            "metadata.namespace",
            "not allowed",
        );
    }

    #[test]
    fn nodes() {
        let node = json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "box.lan"},
            "spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]},
            "status": {"capacity": {"cpu": "4", "memory": "8Gi"}}
        });
        let out = ok(&node);
        assert_eq!(
            out["status"]["allocatable"],
            json!({"cpu": "4", "memory": "8Gi"})
        );
        rejects(
            &patched(
                &node,
                json!({"spec": {"taints": [{"key": "k", "effect": "Never"}]}}),
            ),
            "spec.taints[0].effect",
            "Unsupported value",
        );
        rejects(
            &patched(&node, json!({"spec": {"podCIDR": "10.42.0.0"}})),
            "spec.podCIDR",
            "valid CIDR",
        );
    }

    #[test]
    fn resource_quotas() {
        let quota = json!({
            "apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "q", "namespace": "default"},
            "spec": {"hard": {"requests.cpu": "4", "limits.memory": "8Gi", "pods": "10"}}
        });
        ok(&quota);
        let with = |hard: Value| patched(&quota, json!({"spec": {"hard": hard}}));
        rejects(
            &with(json!({"requests.memory": "8GB"})),
            "spec.hard[requests.memory]",
            "quantities must match",
        );
        rejects(
            &with(json!({"pods": "-1"})),
            "spec.hard[pods]",
            "greater than or equal to 0",
        );
        rejects(
            &with(json!({"pods": "1500m"})),
            "spec.hard[pods]",
            "must be an integer",
        );
        rejects(
            &patched(&quota, json!({"spec": {"scopes": ["Weekend"]}})),
            "spec.scopes[0]",
            "Unsupported value",
        );
    }

    #[test]
    fn limit_ranges() {
        let lr = json!({
            "apiVersion": "v1", "kind": "LimitRange",
            "metadata": {"name": "limits", "namespace": "default"},
            "spec": {"limits": [{"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}, "min": {"cpu": "100m"}}]}
        });
        let out = ok(&lr);
        let item = &out["spec"]["limits"][0];
        assert_eq!(
            item["default"],
            json!({"cpu": "2", "memory": "1Gi"}),
            "max is the default limit"
        );
        assert_eq!(item["defaultRequest"], json!({"cpu": "2", "memory": "1Gi"}));
        let item = |i: Value| patched(&lr, json!({"spec": {"limits": [i]}}));
        rejects(
            &item(json!({"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}})),
            "spec.limits[0][cpu]",
            "min value 2 is greater than max value 1",
        );
        rejects(
            &item(
                json!({"type": "Container", "default": {"memory": "2Gi"}, "max": {"memory": "1Gi"}}),
            ),
            "spec.limits[0][memory]",
            "default value 2Gi is greater than max value 1Gi",
        );
        rejects(
            &item(
                json!({"type": "Container", "default": {"memory": "1Gi"}, "defaultRequest": {"memory": "2Gi"}}),
            ),
            "spec.limits[0][memory]",
            "default request value 2Gi is greater than default limit value 1Gi",
        );
        rejects(
            &item(json!({"type": "Pod", "default": {"cpu": "1"}})),
            "spec.limits[0].default",
            "may not be specified when `type` is 'Pod'",
        );
        rejects(
            &item(json!({"type": "Node"})),
            "spec.limits[0].type",
            "must be a standard limit type or fully qualified",
        );
        rejects(
            &item(json!({"type": "Container", "max": {"cpu": "lots"}})),
            "spec.limits[0].max[cpu]",
            "quantities must match",
        );
        rejects(
            &item(json!({"type": "PersistentVolumeClaim", "max": {"cpu": "1"}})),
            "spec.limits[0].limits",
            "either minimum or maximum storage value is required",
        );
    }

    #[test]
    fn events() {
        let ev = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "web-abc.17a", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-abc", "namespace": "default"},
            "reason": "Scheduled", "message": "assigned", "type": "Normal"
        });
        ok(&ev);
        rejects(
            &patched(&ev, json!({"involvedObject": {"namespace": "shop"}})),
            "involvedObject.namespace",
            "does not match event.namespace",
        );
        let new_style = patched(
            &ev,
            json!({"eventTime": "2024-01-01T00:00:00.000000Z", "reportingComponent": "berth/scheduler"}),
        );
        rejects(&new_style, "reportingInstance", "Required value");
        let complete = patched(
            &new_style,
            json!({"reportingInstance": "box", "action": "Binding"}),
        );
        ok(&complete);
        rejects(
            &patched(&complete, json!({"type": "Info"})),
            "type",
            "Unsupported value",
        );
        rejects(
            &patched(&complete, json!({"reason": "r".repeat(129)})),
            "reason",
            "can have at most 128 characters",
        );
    }
}
