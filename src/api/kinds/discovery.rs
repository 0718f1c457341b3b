//! discovery.k8s.io/v1: EndpointSlice (`ValidateEndpointSlice`).

use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::{default_str, immutable};
use crate::api::error::FieldError;
use crate::api::registry::Admit;
use crate::api::validation::{
    IP_MSG, NameRule, PROTOCOLS, name_errors, parse_ip, validate_supported,
};

const ADDRESS_TYPES: &[&str] = &["IPv4", "IPv6", "FQDN"];

/// Kubernetes' limits on one slice.
const MAX_ENDPOINTS: usize = 1000;
const MAX_PORTS: usize = 20000;
const MAX_ADDRESSES: usize = 100;

impl Admit for EndpointSlice {
    fn apply_defaults(&mut self) {
        for port in self.ports.iter_mut().flatten() {
            default_str(&mut port.protocol, "TCP");
            port.name.get_or_insert_with(String::new);
        }
    }

    fn validate(&self, errs: &mut Vec<FieldError>) {
        validate_supported("addressType", Some(&self.address_type), ADDRESS_TYPES, errs);
        if self.endpoints.len() > MAX_ENDPOINTS {
            errs.push(FieldError::too_many(
                "endpoints",
                self.endpoints.len(),
                MAX_ENDPOINTS,
            ));
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            let path = format!("endpoints[{i}]");
            if e.addresses.is_empty() {
                errs.push(FieldError::required(format!("{path}.addresses"), ""));
            }
            if e.addresses.len() > MAX_ADDRESSES {
                errs.push(FieldError::too_many(
                    format!("{path}.addresses"),
                    e.addresses.len(),
                    MAX_ADDRESSES,
                ));
            }
            for (j, a) in e.addresses.iter().enumerate() {
                let apath = format!("{path}.addresses[{j}]");
                let ip = parse_ip(a);
                let fits = match self.address_type.as_str() {
                    "IPv4" => ip.is_some_and(|ip| ip.is_ipv4()),
                    "IPv6" => ip.is_some_and(|ip| ip.is_ipv6()),
                    _ => name_errors(a, NameRule::Subdomain).is_empty(),
                };
                if !fits {
                    let msg = match self.address_type.as_str() {
                        "IPv4" => "must be a valid IPv4 address".to_string(),
                        "IPv6" => "must be a valid IPv6 address".to_string(),
                        _ => IP_MSG.to_string(),
                    };
                    errs.push(FieldError::invalid(apath, a, &msg));
                }
            }
            if let Some(h) = e.hostname.as_deref().filter(|h| !h.is_empty()) {
                for msg in name_errors(h, NameRule::Label) {
                    errs.push(FieldError::invalid(format!("{path}.hostname"), h, &msg));
                }
            }
        }
        let ports = self.ports.as_deref().unwrap_or_default();
        if ports.len() > MAX_PORTS {
            errs.push(FieldError::too_many("ports", ports.len(), MAX_PORTS));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, p) in ports.iter().enumerate() {
            let path = format!("ports[{i}]");
            let name = p.name.as_deref().unwrap_or_default();
            if !name.is_empty() {
                for msg in name_errors(name, NameRule::Label) {
                    errs.push(FieldError::invalid(format!("{path}.name"), name, &msg));
                }
            }
            if !names.insert(name) {
                errs.push(FieldError::duplicate(format!("{path}.name"), name));
            }
            if let Some(port) = p.port
                && !(1..=65535).contains(&port)
            {
                errs.push(FieldError::invalid(
                    format!("{path}.port"),
                    port.to_string(),
                    "must be between 1 and 65535, inclusive",
                ));
            }
            validate_supported(
                &format!("{path}.protocol"),
                p.protocol.as_deref(),
                PROTOCOLS,
                errs,
            );
        }
    }

    fn validate_update(&self, old: &Self, errs: &mut Vec<FieldError>) {
        immutable("addressType", &self.address_type, &old.address_type, errs);
    }
}
