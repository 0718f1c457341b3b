//! Services and Endpoints (`SetDefaults_Service`, `ValidateService`, `ValidateEndpoints`).
//!
//! ClusterIP and NodePort allocation (and the range checks, which depend on the daemon's
//! configured ranges) happen after admission, in the store's write transaction
//! ([`crate::api::allocation`]). Admission checks what a manifest sets and keeps a set
//! ClusterIP fixed.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Endpoints, Service, ServiceStatus};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::default_str;
use crate::api::error::FieldError;
use crate::api::registry::Admit;
use crate::api::validation::{
    self, CIDR_MSG, IP_MSG, NameRule, PROTOCOLS, invalid_raw, name_errors, parse_cidr, parse_ip,
    validate_labels, validate_port_num, validate_port_num_or_name, validate_supported,
};

const SERVICE_TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];

impl Admit for Service {
    fn name_rule() -> NameRule {
        NameRule::Rfc1035Label
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(ServiceStatus {
            load_balancer: Some(Default::default()),
            ..Default::default()
        });
    }

    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        default_str(&mut spec.session_affinity, "None");
        match spec.session_affinity.as_deref() {
            Some("None") => spec.session_affinity_config = None,
            Some("ClientIP") => {
                let config = spec
                    .session_affinity_config
                    .get_or_insert_with(Default::default);
                let client_ip = config.client_ip.get_or_insert_with(Default::default);
                client_ip.timeout_seconds.get_or_insert(10800);
            }
            _ => {}
        }
        default_str(&mut spec.type_, "ClusterIP");
        for port in spec.ports.iter_mut().flatten() {
            default_str(&mut port.protocol, "TCP");
            let unset = match &port.target_port {
                None => true,
                Some(IntOrString::Int(n)) => *n == 0,
                Some(IntOrString::String(s)) => s.is_empty(),
            };
            if unset {
                port.target_port = Some(IntOrString::Int(port.port));
            }
        }
        let ty = spec.type_.clone().unwrap_or_default();
        if ty == "NodePort" || ty == "LoadBalancer" {
            default_str(&mut spec.external_traffic_policy, "Cluster");
        }
        if ty != "ExternalName" {
            spec.internal_traffic_policy
                .get_or_insert_with(|| "Cluster".into());
            // berth's network is single-stack: the family is chosen by the allocator.
            spec.ip_family_policy
                .get_or_insert_with(|| "SingleStack".into());
        }
        if ty == "LoadBalancer" {
            spec.allocate_load_balancer_node_ports.get_or_insert(true);
        }
    }

    fn validate(&self, errs: &mut Vec<FieldError>) {
        let Some(spec) = &self.spec else {
            errs.push(FieldError::required("spec", ""));
            return;
        };
        let ty = spec.type_.as_deref().unwrap_or_default();
        validate_supported("spec.type", Some(ty), SERVICE_TYPES, errs);
        let cluster_ip = spec.cluster_ip.as_deref().unwrap_or_default();
        let headless = cluster_ip == "None";
        let ports = spec.ports.as_deref().unwrap_or_default();

        if ty == "ExternalName" {
            if !cluster_ip.is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.clusterIP",
                    "may not be set for ExternalName services",
                ));
            }
            let cname = spec.external_name.as_deref().unwrap_or_default();
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                for msg in name_errors(cname, NameRule::Subdomain) {
                    errs.push(FieldError::invalid("spec.externalName", cname, &msg));
                }
            }
        } else if !cluster_ip.is_empty() && !headless && parse_ip(cluster_ip).is_none() {
            errs.push(FieldError::invalid(
                "spec.clusterIP",
                cluster_ip,
                "must be empty, 'None', or a valid IP address",
            ));
        }

        if ports.is_empty() && !headless && ty != "ExternalName" {
            errs.push(FieldError::required("spec.ports", ""));
        }
        let mut names = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for (i, p) in ports.iter().enumerate() {
            let path = format!("spec.ports[{i}]");
            match p.name.as_deref().filter(|n| !n.is_empty()) {
                None if ports.len() > 1 => {
                    errs.push(FieldError::required(format!("{path}.name"), ""));
                }
                None => {}
                Some(name) => {
                    for msg in name_errors(name, NameRule::Label) {
                        errs.push(FieldError::invalid(format!("{path}.name"), name, &msg));
                    }
                    if !names.insert(name) {
                        errs.push(FieldError::duplicate(format!("{path}.name"), name));
                    }
                }
            }
            validate_port_num(&format!("{path}.port"), p.port, errs);
            let protocol = p.protocol.as_deref().unwrap_or_default();
            validate_supported(&format!("{path}.protocol"), Some(protocol), PROTOCOLS, errs);
            if !keys.insert((p.port, protocol)) {
                errs.push(FieldError::duplicate(
                    &path,
                    format!("{}/{protocol}", p.port),
                ));
            }
            if let Some(target) = &p.target_port {
                validate_port_num_or_name(&format!("{path}.targetPort"), target, errs);
            }
            if let Some(node_port) = p.node_port.filter(|n| *n != 0) {
                if ty == "ClusterIP" || ty == "ExternalName" {
                    errs.push(FieldError::forbidden(
                        format!("{path}.nodePort"),
                        &format!("may not be used when `type` is '{ty}'"),
                    ));
                } else {
                    validate_port_num(&format!("{path}.nodePort"), node_port, errs);
                }
            }
        }

        if let Some(selector) = &spec.selector {
            validate_labels("spec.selector", selector, errs);
        }
        validate_supported(
            "spec.sessionAffinity",
            spec.session_affinity.as_deref(),
            &["None", "ClientIP"],
            errs,
        );
        if let Some(timeout) = spec
            .session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            && !(1..=86400).contains(&timeout)
        {
            errs.push(invalid_raw(
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                timeout,
                "must be greater than 0 and less than 86400",
            ));
        }
        let external = ty == "NodePort" || ty == "LoadBalancer";
        match spec.external_traffic_policy.as_deref() {
            Some(policy) if !external && !policy.is_empty() => {
                errs.push(FieldError::invalid(
                    "spec.externalTrafficPolicy",
                    policy,
                    "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
                ));
            }
            policy => validate_supported(
                "spec.externalTrafficPolicy",
                policy,
                &["Cluster", "Local"],
                errs,
            ),
        }
        validate_supported(
            "spec.internalTrafficPolicy",
            spec.internal_traffic_policy.as_deref(),
            &["Cluster", "Local"],
            errs,
        );
        validate_supported(
            "spec.ipFamilyPolicy",
            spec.ip_family_policy.as_deref(),
            &["SingleStack", "PreferDualStack", "RequireDualStack"],
            errs,
        );
        for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
            if parse_ip(ip).is_none() {
                errs.push(FieldError::invalid(
                    format!("spec.externalIPs[{i}]"),
                    ip,
                    IP_MSG,
                ));
            }
        }
        if let Some(ranges) = spec
            .load_balancer_source_ranges
            .as_ref()
            .filter(|r| !r.is_empty())
        {
            if ty != "LoadBalancer" {
                errs.push(FieldError::forbidden(
                    "spec.loadBalancerSourceRanges",
                    "may only be used when `type` is 'LoadBalancer'",
                ));
            }
            for (i, r) in ranges.iter().enumerate() {
                if parse_cidr(r.trim()).is_none() {
                    errs.push(FieldError::invalid(
                        format!("spec.loadBalancerSourceRanges[{i}]"),
                        r,
                        CIDR_MSG,
                    ));
                }
            }
        }
    }

    fn validate_update(&self, old: &Self, errs: &mut Vec<FieldError>) {
        let (Some(new), Some(old)) = (&self.spec, &old.spec) else {
            return;
        };
        let is_external_name = |t: &Option<String>| t.as_deref() == Some("ExternalName");
        if is_external_name(&new.type_) || is_external_name(&old.type_) {
            return;
        }
        // An update that leaves clusterIP out keeps the allocated one (the allocator copies
        // it over); only a different value is a change.
        let old_ip = old.cluster_ip.as_deref().unwrap_or_default();
        let new_ip = new.cluster_ip.as_deref().unwrap_or_default();
        if !old_ip.is_empty() && !new_ip.is_empty() && old_ip != new_ip {
            errs.push(FieldError::invalid(
                "spec.clusterIP",
                new_ip,
                "field is immutable",
            ));
        }
    }
}

impl Admit for Endpoints {
    fn apply_defaults(&mut self) {
        for subset in self.subsets.iter_mut().flatten() {
            for port in subset.ports.iter_mut().flatten() {
                default_str(&mut port.protocol, "TCP");
            }
        }
    }

    fn validate(&self, errs: &mut Vec<FieldError>) {
        for (i, subset) in self.subsets.iter().flatten().enumerate() {
            let path = format!("subsets[{i}]");
            let addresses = [
                ("addresses", subset.addresses.as_deref()),
                ("notReadyAddresses", subset.not_ready_addresses.as_deref()),
            ];
            for (field, list) in addresses {
                for (j, a) in list.unwrap_or_default().iter().enumerate() {
                    let apath = format!("{path}.{field}[{j}]");
                    if parse_ip(&a.ip).is_none() {
                        errs.push(FieldError::invalid(format!("{apath}.ip"), &a.ip, IP_MSG));
                    }
                    if let Some(h) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
                        for msg in name_errors(h, NameRule::Label) {
                            errs.push(FieldError::invalid(format!("{apath}.hostname"), h, &msg));
                        }
                    }
                    if let Some(n) = a.node_name.as_deref().filter(|n| !n.is_empty()) {
                        validation::validate_name(
                            &format!("{apath}.nodeName"),
                            n,
                            NameRule::Subdomain,
                            errs,
                        );
                    }
                }
            }
            let ports = subset.ports.as_deref().unwrap_or_default();
            for (j, p) in ports.iter().enumerate() {
                let ppath = format!("{path}.ports[{j}]");
                match p.name.as_deref().filter(|n| !n.is_empty()) {
                    None if ports.len() > 1 => {
                        errs.push(FieldError::required(format!("{ppath}.name"), ""));
                    }
                    None => {}
                    Some(name) => {
                        for msg in name_errors(name, NameRule::Label) {
                            errs.push(FieldError::invalid(format!("{ppath}.name"), name, &msg));
                        }
                    }
                }
                validate_port_num(&format!("{ppath}.port"), p.port, errs);
                validate_supported(
                    &format!("{ppath}.protocol"),
                    p.protocol.as_deref(),
                    PROTOCOLS,
                    errs,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::test_support::{admit_update, ok, patched, rejects, rejects_update};

    fn service() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}
        })
    }

    #[test]
    fn service_defaults() {
        let out = ok(&service());
        let spec = &out["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert!(spec.get("externalTrafficPolicy").is_none());
        assert!(
            spec.get("clusterIP").is_none(),
            "allocated by the store, not admission"
        );
        assert_eq!(out["status"], json!({"loadBalancer": {}}));

        let node_port = ok(&patched(
            &service(),
            json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": "http", "nodePort": 30080}]}}),
        ));
        assert_eq!(node_port["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(node_port["spec"]["ports"][0]["targetPort"], "http");
        let lb = ok(&patched(
            &service(),
            json!({"spec": {"type": "LoadBalancer"}}),
        ));
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
        let sticky = ok(&patched(
            &service(),
            json!({"spec": {"sessionAffinity": "ClientIP"}}),
        ));
        assert_eq!(
            sticky["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
            10800
        );
    }

    #[test]
    fn headless_and_external_name_services_need_no_ports() {
        ok(&patched(
            &service(),
            json!({"spec": {"clusterIP": "None", "ports": null}}),
        ));
        let ext = ok(&json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "db.example.com."}
        }));
        assert!(ext["spec"].get("ipFamilyPolicy").is_none());
        assert!(ext["spec"].get("internalTrafficPolicy").is_none());
    }

    #[test]
    fn invalid_services_name_the_field() {
        let two_ports = |a: Value, b: Value| json!({"spec": {"ports": [a, b]}});
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                json!({"metadata": {"name": "1web"}}),
                "metadata.name",
                "DNS-1035 label",
            ),
            (
                json!({"spec": {"ports": null}}),
                "spec.ports",
                "Required value",
            ),
            (
                json!({"spec": {"type": "Magic"}}),
                "spec.type",
                "Unsupported value",
            ),
            (
                json!({"spec": {"ports": [{"port": 0}]}}),
                "spec.ports[0].port",
                "Invalid value: 0: must be between 1 and 65535",
            ),
            (
                json!({"spec": {"ports": [{"port": 80, "protocol": "ICMP"}]}}),
                "spec.ports[0].protocol",
                "Unsupported value",
            ),
            (
                json!({"spec": {"ports": [{"port": 80, "targetPort": 70000}]}}),
                "spec.ports[0].targetPort",
                "between 1 and 65535",
            ),
            (
                json!({"spec": {"ports": [{"port": 80, "targetPort": "http_alt"}]}}),
                "spec.ports[0].targetPort",
                "alpha-numeric",
            ),
            (
                two_ports(json!({"port": 80}), json!({"port": 443, "name": "https"})),
                "spec.ports[0].name",
                "Required value",
            ),
            (
                two_ports(
                    json!({"port": 80, "name": "web"}),
                    json!({"port": 443, "name": "web"}),
                ),
                "spec.ports[1].name",
                "Duplicate value",
            ),
            (
                two_ports(
                    json!({"port": 80, "name": "a"}),
                    json!({"port": 80, "name": "b"}),
                ),
                "spec.ports[1]",
                "Duplicate value: \"80/TCP\"",
            ),
            (
                json!({"spec": {"ports": [{"port": 80, "nodePort": 30080}]}}),
                "spec.ports[0].nodePort",
                "may not be used when `type` is 'ClusterIP'",
            ),
            (
                json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 70000}]}}),
                "spec.ports[0].nodePort",
                "must be between 1 and 65535",
            ),
            (
                json!({"spec": {"selector": {"app": "has space"}}}),
                "spec.selector[app]",
                "a valid label",
            ),
            (
                json!({"spec": {"clusterIP": "10.0.0.300"}}),
                "spec.clusterIP",
                "must be empty, 'None', or a valid IP address",
            ),
            (
                json!({"spec": {"externalTrafficPolicy": "Local"}}),
                "spec.externalTrafficPolicy",
                "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
            ),
            (
                json!({"spec": {"sessionAffinity": "Cookie"}}),
                "spec.sessionAffinity",
                "Unsupported value",
            ),
            (
                json!({"spec": {"type": "ExternalName", "ports": null}}),
                "spec.externalName",
                "Required value",
            ),
            (
                json!({"spec": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/33"]}}),
                "spec.loadBalancerSourceRanges[0]",
                "valid CIDR",
            ),
        ];
        for (patch, field, text) in cases {
            rejects(&patched(&service(), patch), field, text);
        }
    }

    #[test]
    fn cluster_ip_is_immutable_once_set() {
        let old = ok(&patched(
            &service(),
            json!({"spec": {"clusterIP": "10.43.0.10"}}),
        ));
        let moved = patched(&old, json!({"spec": {"clusterIP": "10.43.0.11"}}));
        rejects_update(&moved, &old, "spec.clusterIP", "field is immutable");
        let omitted = patched(
            &old,
            json!({"spec": {"clusterIP": null, "ports": [{"port": 8080}]}}),
        );
        admit_update(&omitted, Some(&old)).expect("an omitted clusterIP is kept by the allocator");
        let external = patched(
            &old,
            json!({"spec": {"type": "ExternalName", "externalName": "example.com", "clusterIP": null, "ports": null}}),
        );
        admit_update(&external, Some(&old)).expect("changing to ExternalName releases the IP");
    }

    #[test]
    fn endpoints() {
        let eps = json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "web", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "10.42.0.5"}], "ports": [{"port": 8080}]}]
        });
        let out = ok(&eps);
        assert_eq!(out["subsets"][0]["ports"][0]["protocol"], "TCP");
        rejects(
            &patched(
                &eps,
                json!({"subsets": [{"addresses": [{"ip": "pod-a"}], "ports": [{"port": 8080}]}]}),
            ),
            "subsets[0].addresses[0].ip",
            "valid IP address",
        );
        rejects(
            &patched(
                &eps,
                json!({"subsets": [{"ports": [{"port": 80}, {"port": 81, "name": "b"}]}]}),
            ),
            "subsets[0].ports[0].name",
            "Required value",
        );
    }
}
