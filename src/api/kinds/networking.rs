//! networking.k8s.io/v1: Ingress, IngressClass, NetworkPolicy.

use k8s_openapi::api::networking::v1::{
    Ingress, IngressBackend, IngressClass, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{default_str, immutable};
use crate::api::error::FieldError;
use crate::api::registry::Admit;
use crate::api::validation::{
    CIDR_MSG, NameRule, PROTOCOLS, cidr_strictly_contains, invalid_raw, is_dns1123_subdomain,
    name_errors, parse_cidr, parse_ip, port_name_errors, validate_label_selector,
    validate_port_num, validate_supported, wildcard_subdomain_errors,
};

const PATH_TYPES: &[&str] = &["Exact", "Prefix", "ImplementationSpecific"];

/// A host of an Ingress rule or TLS entry: a DNS name, optionally `*.`-wildcarded.
fn validate_host(field: &str, host: &str, errs: &mut Vec<FieldError>) {
    if parse_ip(host).is_some() {
        errs.push(FieldError::invalid(
            field,
            host,
            "must be a DNS name, not an IP address",
        ));
        return;
    }
    let msgs = if host.contains('*') {
        wildcard_subdomain_errors(host)
    } else {
        name_errors(host, NameRule::Subdomain)
    };
    for msg in msgs {
        errs.push(FieldError::invalid(field, host, &msg));
    }
}

fn validate_backend(backend: &IngressBackend, path: &str, errs: &mut Vec<FieldError>) {
    match (&backend.resource, &backend.service) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            path,
            "",
            "cannot set both resource and service backends",
        )),
        (Some(r), None) => {
            if r.kind.is_empty() {
                errs.push(FieldError::required(format!("{path}.resource.kind"), ""));
            }
            if r.name.is_empty() {
                errs.push(FieldError::required(format!("{path}.resource.name"), ""));
            }
        }
        (None, Some(s)) => {
            if s.name.is_empty() {
                errs.push(FieldError::required(format!("{path}.service.name"), ""));
            } else {
                for msg in name_errors(&s.name, NameRule::Rfc1035Label) {
                    errs.push(FieldError::invalid(
                        format!("{path}.service.name"),
                        &s.name,
                        &msg,
                    ));
                }
            }
            let name = s
                .port
                .as_ref()
                .and_then(|p| p.name.as_deref())
                .filter(|n| !n.is_empty());
            let number = s.port.as_ref().and_then(|p| p.number).filter(|n| *n != 0);
            match (name, number) {
                (Some(_), Some(_)) => errs.push(FieldError::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                )),
                (Some(name), None) => {
                    for msg in port_name_errors(name) {
                        errs.push(FieldError::invalid(
                            format!("{path}.service.port.name"),
                            name,
                            &msg,
                        ));
                    }
                }
                (None, Some(n)) => {
                    validate_port_num(&format!("{path}.service.port.number"), n, errs)
                }
                (None, None) => errs.push(FieldError::required(
                    format!("{path}.service.port"),
                    "port name or number is required",
                )),
            }
        }
        (None, None) => errs.push(FieldError::invalid(
            path,
            "",
            "resource or service backend is required",
        )),
    }
}

impl Admit for Ingress {
    fn validate(&self, errs: &mut Vec<FieldError>) {
        let Some(spec) = &self.spec else {
            errs.push(FieldError::invalid(
                "spec",
                "",
                "either `defaultBackend` or `rules` must be specified",
            ));
            return;
        };
        let rules = spec.rules.as_deref().unwrap_or_default();
        if rules.is_empty() && spec.default_backend.is_none() {
            errs.push(FieldError::invalid(
                "spec",
                "",
                "either `defaultBackend` or `rules` must be specified",
            ));
        }
        if let Some(b) = &spec.default_backend {
            validate_backend(b, "spec.defaultBackend", errs);
        }
        if let Some(class) = spec.ingress_class_name.as_deref() {
            for msg in name_errors(class, NameRule::Subdomain) {
                errs.push(FieldError::invalid("spec.ingressClassName", class, &msg));
            }
        }
        for (i, tls) in spec.tls.iter().flatten().enumerate() {
            for (j, host) in tls.hosts.iter().flatten().enumerate() {
                validate_host(&format!("spec.tls[{i}].hosts[{j}]"), host, errs);
            }
        }
        for (i, rule) in rules.iter().enumerate() {
            let rpath = format!("spec.rules[{i}]");
            if let Some(host) = rule.host.as_deref().filter(|h| !h.is_empty()) {
                validate_host(&format!("{rpath}.host"), host, errs);
            }
            let Some(http) = &rule.http else { continue };
            if http.paths.is_empty() {
                errs.push(FieldError::required(format!("{rpath}.http.paths"), ""));
            }
            for (j, p) in http.paths.iter().enumerate() {
                let ppath = format!("{rpath}.http.paths[{j}]");
                let value = p.path.as_deref().unwrap_or_default();
                match p.path_type.as_str() {
                    "" => errs.push(FieldError::required(
                        format!("{ppath}.pathType"),
                        "pathType must be specified",
                    )),
                    "Exact" | "Prefix" => {
                        if !value.starts_with('/') {
                            errs.push(FieldError::invalid(
                                format!("{ppath}.path"),
                                value,
                                "must be an absolute path",
                            ));
                        }
                        for seq in ["//", "/./", "/../", "%2f", "%2F"] {
                            if value.contains(seq) {
                                errs.push(FieldError::invalid(
                                    format!("{ppath}.path"),
                                    value,
                                    &format!("must not contain '{seq}'"),
                                ));
                            }
                        }
                        for suffix in ["/..", "/."] {
                            if value.ends_with(suffix) {
                                errs.push(FieldError::invalid(
                                    format!("{ppath}.path"),
                                    value,
                                    &format!("cannot end with '{suffix}'"),
                                ));
                            }
                        }
                    }
                    "ImplementationSpecific" => {
                        if !value.is_empty() && !value.starts_with('/') {
                            errs.push(FieldError::invalid(
                                format!("{ppath}.path"),
                                value,
                                "must be an absolute path",
                            ));
                        }
                    }
                    other => errs.push(FieldError::not_supported(
                        format!("{ppath}.pathType"),
                        other,
                        PATH_TYPES,
                    )),
                }
                validate_backend(&p.backend, &format!("{ppath}.backend"), errs);
            }
        }
    }
}

impl Admit for IngressClass {
    fn validate(&self, errs: &mut Vec<FieldError>) {
        let Some(spec) = &self.spec else { return };
        if let Some(controller) = spec.controller.as_deref() {
            if controller.len() > 250 {
                errs.push(FieldError::too_long("spec.controller", 250));
            }
            let ok = controller.split_once('/').is_some_and(|(domain, path)| {
                is_dns1123_subdomain(domain)
                    && !path.is_empty()
                    && path
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "/-._~%!$&'()*+,;=:".contains(c))
            });
            if !ok {
                errs.push(FieldError::invalid(
                    "spec.controller",
                    controller,
                    "must be a domain-prefixed path (such as \"acme.io/foo\")",
                ));
            }
        }
        if let Some(p) = &spec.parameters {
            let path = "spec.parameters";
            if p.kind.is_empty() {
                errs.push(FieldError::required(format!("{path}.kind"), ""));
            }
            if p.name.is_empty() {
                errs.push(FieldError::required(format!("{path}.name"), ""));
            }
            let scope = p.scope.as_deref();
            validate_supported(
                &format!("{path}.scope"),
                scope,
                &["Cluster", "Namespace"],
                errs,
            );
            match (scope, p.namespace.as_deref().filter(|n| !n.is_empty())) {
                (Some("Namespace"), None) => errs.push(FieldError::required(
                    format!("{path}.namespace"),
                    "`parameters.scope` is set to 'Namespace'",
                )),
                (Some("Cluster") | None, Some(_)) => errs.push(FieldError::forbidden(
                    format!("{path}.namespace"),
                    "`parameters.scope` is set to 'Cluster'",
                )),
                _ => {}
            }
        }
    }

    fn validate_update(&self, old: &Self, errs: &mut Vec<FieldError>) {
        let controller = |c: &IngressClass| c.spec.as_ref().and_then(|s| s.controller.clone());
        immutable("spec.controller", &controller(self), &controller(old), errs);
    }
}

impl Admit for NetworkPolicy {
    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        if spec.policy_types.as_ref().is_none_or(Vec::is_empty) {
            let mut types = vec!["Ingress".to_string()];
            if spec.egress.as_ref().is_some_and(|e| !e.is_empty()) {
                types.push("Egress".to_string());
            }
            spec.policy_types = Some(types);
        }
        let ingress_ports = spec
            .ingress
            .iter_mut()
            .flatten()
            .flat_map(|r| r.ports.iter_mut().flatten());
        let egress_ports = spec
            .egress
            .iter_mut()
            .flatten()
            .flat_map(|r| r.ports.iter_mut().flatten());
        for port in ingress_ports.chain(egress_ports) {
            default_str(&mut port.protocol, "TCP");
        }
    }

    fn validate(&self, errs: &mut Vec<FieldError>) {
        let Some(spec) = &self.spec else { return };
        if let Some(selector) = &spec.pod_selector {
            validate_label_selector("spec.podSelector", selector, errs);
        }
        for (i, rule) in spec.ingress.iter().flatten().enumerate() {
            let path = format!("spec.ingress[{i}]");
            for (j, port) in rule.ports.iter().flatten().enumerate() {
                validate_np_port(port, &format!("{path}.ports[{j}]"), errs);
            }
            for (j, peer) in rule.from.iter().flatten().enumerate() {
                validate_peer(peer, &format!("{path}.from[{j}]"), errs);
            }
        }
        for (i, rule) in spec.egress.iter().flatten().enumerate() {
            let path = format!("spec.egress[{i}]");
            for (j, port) in rule.ports.iter().flatten().enumerate() {
                validate_np_port(port, &format!("{path}.ports[{j}]"), errs);
            }
            for (j, peer) in rule.to.iter().flatten().enumerate() {
                validate_peer(peer, &format!("{path}.to[{j}]"), errs);
            }
        }
        let types = spec.policy_types.as_deref().unwrap_or_default();
        if types.len() > 2 {
            errs.push(invalid_raw(
                "spec.policyTypes",
                format!("{types:?}"),
                "may not specify more than two policyTypes",
            ));
            return;
        }
        for (i, t) in types.iter().enumerate() {
            validate_supported(
                &format!("spec.policyTypes[{i}]"),
                Some(t),
                &["Ingress", "Egress"],
                errs,
            );
        }
    }
}

fn validate_np_port(port: &NetworkPolicyPort, path: &str, errs: &mut Vec<FieldError>) {
    validate_supported(
        &format!("{path}.protocol"),
        port.protocol.as_deref(),
        PROTOCOLS,
        errs,
    );
    match (&port.port, port.end_port) {
        (Some(IntOrString::Int(n)), end) => {
            validate_port_num(&format!("{path}.port"), *n, errs);
            if let Some(end) = end {
                if end < *n {
                    errs.push(invalid_raw(
                        format!("{path}.endPort"),
                        n,
                        "must be greater than or equal to `port`",
                    ));
                }
                validate_port_num(&format!("{path}.endPort"), end, errs);
            }
        }
        (Some(IntOrString::String(name)), end) => {
            if let Some(end) = end {
                errs.push(invalid_raw(
                    format!("{path}.endPort"),
                    end,
                    "may not be specified when `port` is non-numeric",
                ));
            }
            for msg in port_name_errors(name) {
                errs.push(FieldError::invalid(format!("{path}.port"), name, &msg));
            }
        }
        (None, Some(end)) => errs.push(invalid_raw(
            format!("{path}.endPort"),
            end,
            "may not be specified when `port` is not specified",
        )),
        (None, None) => {}
    }
}

fn validate_peer(peer: &NetworkPolicyPeer, path: &str, errs: &mut Vec<FieldError>) {
    let mut count = 0;
    if let Some(s) = &peer.pod_selector {
        count += 1;
        validate_label_selector(&format!("{path}.podSelector"), s, errs);
    }
    if let Some(s) = &peer.namespace_selector {
        count += 1;
        validate_label_selector(&format!("{path}.namespaceSelector"), s, errs);
    }
    if let Some(block) = &peer.ip_block {
        count += 1;
        let cidr_path = format!("{path}.ipBlock.cidr");
        if block.cidr.is_empty() {
            errs.push(FieldError::required(cidr_path, ""));
        } else {
            match parse_cidr(&block.cidr) {
                None => errs.push(FieldError::invalid(cidr_path, &block.cidr, CIDR_MSG)),
                Some(outer) => {
                    for (i, except) in block.except.iter().flatten().enumerate() {
                        let epath = format!("{path}.ipBlock.except[{i}]");
                        match parse_cidr(except) {
                            None => errs.push(FieldError::invalid(epath, except, CIDR_MSG)),
                            Some(inner) if !cidr_strictly_contains(outer, inner) => {
                                errs.push(FieldError::invalid(
                                    epath,
                                    except,
                                    "must be a strict subset of `cidr`",
                                ));
                            }
                            Some(_) => {}
                        }
                    }
                }
            }
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a peer"));
    } else if count > 1 && peer.ip_block.is_some() {
        errs.push(FieldError::forbidden(
            path,
            "may not specify both ipBlock and another peer",
        ));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::test_support::{admit_update, ok, patched, rejects, rejects_update};

    fn ingress() -> Value {
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "ingressClassName": "berth",
                "tls": [{"hosts": ["*.example.com"], "secretName": "tls"}],
                "rules": [{
                    "host": "www.example.com",
                    "http": {"paths": [{
                        "path": "/", "pathType": "Prefix",
                        "backend": {"service": {"name": "web", "port": {"number": 80}}}
                    }]}
                }]
            }
        })
    }

    /// The first path of the first rule, merged with `patch`.
    fn with_path(patch: Value) -> Value {
        let mut ing = ingress();
        let merged = patched(&ing["spec"]["rules"][0]["http"]["paths"][0], patch);
        ing["spec"]["rules"][0]["http"]["paths"][0] = merged;
        ing
    }

    #[test]
    fn ingresses() {
        ok(&ingress());
        ok(&patched(
            &ingress(),
            json!({"spec": {"rules": [{"host": "*.example.com", "http": {"paths": [
                {"pathType": "ImplementationSpecific", "backend": {"service": {"name": "web", "port": {"name": "http"}}}}
            ]}}]}}),
        ));
        rejects(
            &patched(&ingress(), json!({"spec": {"rules": null}})),
            "spec",
            "either `defaultBackend` or `rules` must be specified",
        );
        let host = |h: &str| patched(&ingress(), json!({"spec": {"rules": [{"host": h}]}}));
        rejects(
            &host("Example.COM"),
            "spec.rules[0].host",
            "RFC 1123 subdomain",
        );
        rejects(
            &host("10.0.0.1"),
            "spec.rules[0].host",
            "must be a DNS name, not an IP address",
        );
        rejects(
            &host("www.*.example.com"),
            "spec.rules[0].host",
            "wildcard DNS-1123 subdomain",
        );
        rejects(
            &patched(
                &ingress(),
                json!({"spec": {"tls": [{"hosts": ["bad_host"]}]}}),
            ),
            "spec.tls[0].hosts[0]",
            "RFC 1123 subdomain",
        );
        let p = "spec.rules[0].http.paths[0]";
        rejects(
            &with_path(json!({"pathType": null})),
            &format!("{p}.pathType"),
            "pathType must be specified",
        );
        rejects(
            &with_path(json!({"pathType": "Regex"})),
            &format!("{p}.pathType"),
            "Unsupported value",
        );
        rejects(
            &with_path(json!({"path": "api"})),
            &format!("{p}.path"),
            "must be an absolute path",
        );
        rejects(
            &with_path(json!({"path": "/a//b"})),
            &format!("{p}.path"),
            "must not contain '//'",
        );
        rejects(
            &with_path(json!({"backend": {"resource": {"kind": "Bucket", "name": "b"}}})),
            &format!("{p}.backend"),
            "cannot set both resource and service backends",
        );
        rejects(
            &with_path(json!({"backend": {"service": {"port": null}}})),
            &format!("{p}.backend.service.port"),
            "port name or number is required",
        );
        rejects(
            &with_path(json!({"backend": {"service": {"port": {"name": "http"}}}})),
            &format!("{p}.backend"),
            "cannot set both port name & port number",
        );
        rejects(
            &with_path(json!({"backend": {"service": {"name": "Web"}}})),
            &format!("{p}.backend.service.name"),
            "DNS-1035 label",
        );
        rejects(
            &with_path(json!({"backend": {"service": null}})),
            &format!("{p}.backend"),
            "resource or service backend is required",
        );
    }

    #[test]
    fn ingress_classes() {
        let class = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": "berth"},
            "spec": {"controller": "berth.io/ingress"}
        });
        let out = ok(&class);
        rejects(
            &patched(&class, json!({"spec": {"controller": "nginx"}})),
            "spec.controller",
            "must be a domain-prefixed path",
        );
        rejects(
            &patched(
                &class,
                json!({"spec": {"parameters": {"kind": "Config", "name": "c", "scope": "Namespace"}}}),
            ),
            "spec.parameters.namespace",
            "Required value",
        );
        rejects_update(
            &patched(&out, json!({"spec": {"controller": "other.io/ingress"}})),
            &out,
            "spec.controller",
            "field is immutable",
        );
    }

    fn network_policy() -> Value {
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "db"}},
                "ingress": [{
                    "from": [{"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}},
                             {"podSelector": {"matchLabels": {"app": "web"}}}],
                    "ports": [{"port": 5432}]
                }]
            }
        })
    }

    #[test]
    fn network_policy_defaults() {
        let out = ok(&network_policy());
        assert_eq!(out["spec"]["policyTypes"], json!(["Ingress"]));
        assert_eq!(out["spec"]["ingress"][0]["ports"][0]["protocol"], "TCP");
        let both = ok(&patched(
            &network_policy(),
            json!({"spec": {"egress": [{"to": [{"namespaceSelector": {}}]}]}}),
        ));
        assert_eq!(both["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        let explicit = ok(&patched(
            &network_policy(),
            json!({"spec": {"policyTypes": ["Egress"]}}),
        ));
        assert_eq!(explicit["spec"]["policyTypes"], json!(["Egress"]));
        admit_update(&out, Some(&out)).expect("unchanged update");
    }

    #[test]
    fn invalid_network_policies_name_the_field() {
        let rule = |r: Value| patched(&network_policy(), json!({"spec": {"ingress": [r]}}));
        rejects(
            &rule(json!({"from": [{"ipBlock": {"cidr": "172.17.0.0/33"}}]})),
            "spec.ingress[0].from[0].ipBlock.cidr",
            "valid CIDR",
        );
        rejects(
            &rule(
                json!({"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}}]}),
            ),
            "spec.ingress[0].from[0].ipBlock.except[0]",
            "must be a strict subset of `cidr`",
        );
        rejects(
            &rule(json!({"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]})),
            "spec.ingress[0].from[0]",
            "may not specify both ipBlock and another peer",
        );
        rejects(
            &rule(json!({"from": [{}]})),
            "spec.ingress[0].from[0]",
            "must specify a peer",
        );
        rejects(
            &rule(json!({"ports": [{"protocol": "ICMP"}]})),
            "spec.ingress[0].ports[0].protocol",
            "Unsupported value",
        );
        rejects(
            &rule(json!({"ports": [{"port": 90, "endPort": 80}]})),
            "spec.ingress[0].ports[0].endPort",
            "must be greater than or equal to `port`",
        );
        rejects(
            &rule(json!({"ports": [{"port": "http", "endPort": 80}]})),
            "spec.ingress[0].ports[0].endPort",
            "non-numeric",
        );
        rejects(
            &patched(
                &network_policy(),
                json!({"spec": {"policyTypes": ["Inbound"]}}),
            ),
            "spec.policyTypes[0]",
            "supported values: \"Ingress\", \"Egress\"",
        );
    }
}
