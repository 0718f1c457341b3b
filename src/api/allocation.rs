//! ClusterIP and NodePort allocation for Services, as Kubernetes' API server does it on
//! create and update: the response already holds the allocated values.
//!
//! Pure: the store calls [`allocate`] inside its write transaction with every other
//! Service, so what is held is exactly what the stored Services name (a deleted Service
//! frees its values, a restart never hands out one that is held). Errors carry
//! Kubernetes' field paths and wording.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use serde_json::{Value, json};

use super::error::FieldError;
use super::validation::invalid_raw;

/// Default Service CIDR (Kubernetes' kubeadm default).
pub const DEFAULT_SERVICE_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 96, 0, 0), 16);
/// Default NodePort range (Kubernetes' `--service-node-port-range`).
pub const DEFAULT_NODE_PORTS: RangeInclusive<u16> = 30000..=32767;

/// Where cluster IPs and node ports come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRanges {
    /// The Service CIDR's network address and prefix length.
    pub network: Ipv4Addr,
    pub prefix: u8,
    pub node_ports: RangeInclusive<u16>,
}

impl Default for ServiceRanges {
    fn default() -> Self {
        ServiceRanges {
            network: DEFAULT_SERVICE_CIDR.0,
            prefix: DEFAULT_SERVICE_CIDR.1,
            node_ports: DEFAULT_NODE_PORTS,
        }
    }
}

impl ServiceRanges {
    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix.min(32)))
        }
    }

    fn first(&self) -> u32 {
        u32::from(self.network) & self.mask()
    }

    fn last(&self) -> u32 {
        self.first() | !self.mask()
    }

    /// Whether `ip` may be a cluster IP: inside the CIDR, not its network or broadcast
    /// address.
    pub fn holds(&self, ip: Ipv4Addr) -> bool {
        let n = u32::from(ip);
        n > self.first() && n < self.last()
    }

    fn cidr(&self) -> String {
        format!("{}/{}", Ipv4Addr::from(self.first()), self.prefix)
    }

    /// Parses a port range as Kubernetes writes it (`30000-32767`, or one port).
    pub fn parse_node_ports(s: &str) -> Result<RangeInclusive<u16>, String> {
        let bad = || format!("{s:?} is not a port range like 30000-32767");
        let (a, b) = s.trim().split_once('-').unwrap_or((s.trim(), s.trim()));
        let a: u16 = a.trim().parse().map_err(|_| bad())?;
        let b: u16 = b.trim().parse().map_err(|_| bad())?;
        if a == 0 || b < a {
            return Err(bad());
        }
        Ok(a..=b)
    }
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

fn key(svc: &Value) -> (String, String) {
    (
        str_at(svc, "/metadata/namespace").to_string(),
        str_at(svc, "/metadata/name").to_string(),
    )
}

/// Whether the Service's ports get node ports.
fn needs_node_ports(svc: &Value) -> bool {
    match str_at(svc, "/spec/type") {
        "NodePort" => true,
        "LoadBalancer" => svc
            .pointer("/spec/allocateLoadBalancerNodePorts")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        _ => false,
    }
}

/// The cluster IP a stored Service holds (none for headless and ExternalName).
pub fn cluster_ip_of(svc: &Value) -> Option<Ipv4Addr> {
    if str_at(svc, "/spec/type") == "ExternalName" {
        return None;
    }
    str_at(svc, "/spec/clusterIP").parse().ok()
}

fn node_ports_of(svc: &Value) -> impl Iterator<Item = u16> + '_ {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
        .filter_map(|n| u16::try_from(n).ok())
        .filter(|n| *n != 0)
}

/// Fills `spec.clusterIP`/`clusterIPs`/`ipFamilies` and the ports' `nodePort`s of `svc`
/// (already defaulted and validated), keeping what `old` held when the update leaves it out.
/// `others` are the other stored Services (`svc` itself may be among them: it is skipped).
pub fn allocate(
    svc: &mut Value,
    old: Option<&Value>,
    others: &[Value],
    ranges: &ServiceRanges,
) -> Result<(), Vec<FieldError>> {
    let me = key(svc);
    let others: Vec<&Value> = others.iter().filter(|o| key(o) != me).collect();
    let mut errs = Vec::new();
    let ty = str_at(svc, "/spec/type").to_string();
    let needs = needs_node_ports(svc);
    let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };

    // Cluster IP.
    if ty == "ExternalName" {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    } else {
        let mut wanted = spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .or_else(|| {
                spec.get("clusterIPs")
                    .and_then(|l| l.get(0))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            })
            .map(str::to_string);
        if wanted.is_none()
            && let Some(old) = old
            && str_at(old, "/spec/type") != "ExternalName"
        {
            let held = str_at(old, "/spec/clusterIP");
            if !held.is_empty() {
                wanted = Some(held.to_string());
            }
        }
        let ip = match wanted.as_deref() {
            Some("None") => Some("None".to_string()),
            Some(requested) => {
                let kept = old.and_then(cluster_ip_of).map(|o| o.to_string());
                match requested.parse::<Ipv4Addr>() {
                    Err(_) => None,
                    // An update keeping its own address is always fine.
                    Ok(_) if kept.as_deref() == Some(requested) => Some(requested.to_string()),
                    Ok(ip) if !ranges.holds(ip) => {
                        errs.push(cluster_ip_error(
                            requested,
                            &format!(
                                "the provided IP ({requested}) is not in the valid range. The range of valid IPs is {}",
                                ranges.cidr()
                            ),
                        ));
                        None
                    }
                    Ok(ip) if others.iter().any(|o| cluster_ip_of(o) == Some(ip)) => {
                        errs.push(cluster_ip_error(
                            requested,
                            "provided IP is already allocated",
                        ));
                        None
                    }
                    Ok(_) => Some(requested.to_string()),
                }
            }
            None => {
                let used: BTreeSet<u32> = others
                    .iter()
                    .filter_map(|o| cluster_ip_of(o))
                    .map(u32::from)
                    .collect();
                let free = (ranges.first() + 1..ranges.last()).find(|n| !used.contains(n));
                match free {
                    Some(n) => Some(Ipv4Addr::from(n).to_string()),
                    None => {
                        errs.push(FieldError {
                            kind: super::error::CauseType::FieldValueInvalid,
                            field: "spec.clusterIPs".into(),
                            detail: format!(
                                "Invalid value: null: failed to allocate a serviceIP: range is full; the serviceCIDR {} has no free address left, delete Services or configure a larger serviceCIDR",
                                ranges.cidr()
                            ),
                        });
                        None
                    }
                }
            }
        };
        if let Some(ip) = ip {
            if ip != "None" {
                spec.insert("ipFamilies".into(), json!(["IPv4"]));
            }
            spec.insert("clusterIPs".into(), json!([ip]));
            spec.insert("clusterIP".into(), json!(ip));
        }
    }

    // Node ports.
    if needs {
        let taken: BTreeSet<u16> = others.iter().flat_map(|o| node_ports_of(o)).collect();
        let old_by_name: Vec<(String, u16)> = old
            .filter(|o| needs_node_ports(o))
            .and_then(|o| o.pointer("/spec/ports").and_then(Value::as_array))
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let n = p.get("nodePort").and_then(Value::as_u64)?;
                Some((
                    p.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    u16::try_from(n).ok()?,
                ))
            })
            .collect();
        let ports = spec
            .get_mut("ports")
            .and_then(Value::as_array_mut)
            .map(std::mem::take)
            .unwrap_or_default();
        let mut ports = ports;
        let requested: BTreeSet<u16> = ports
            .iter()
            .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
            .filter_map(|n| u16::try_from(n).ok())
            .filter(|n| *n != 0)
            .collect();
        let own_old: BTreeSet<u16> = old_by_name.iter().map(|(_, n)| *n).collect();
        let mut mine: BTreeSet<u16> = requested.clone();
        for (i, p) in ports.iter_mut().enumerate() {
            let Some(p) = p.as_object_mut() else { continue };
            let set = p
                .get("nodePort")
                .and_then(Value::as_i64)
                .filter(|n| *n != 0);
            match set {
                Some(n) => {
                    let field = format!("spec.ports[{i}].nodePort");
                    match u16::try_from(n).ok().filter(|n| ranges.node_ports.contains(n)) {
                        None => errs.push(invalid_raw(
                            field,
                            n,
                            &format!(
                                "provided port is not in the valid range. The range of valid ports is {}-{}",
                                ranges.node_ports.start(),
                                ranges.node_ports.end()
                            ),
                        )),
                        Some(n) if taken.contains(&n) => errs.push(invalid_raw(
                            field,
                            n,
                            "provided port is already allocated",
                        )),
                        Some(_) => {}
                    }
                }
                None => {
                    let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
                    // An update that leaves a port's nodePort out keeps the one it had.
                    let kept = old_by_name
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, port)| *port)
                        .filter(|port| !requested.contains(port) && !taken.contains(port));
                    let chosen = kept.or_else(|| {
                        ranges.node_ports.clone().find(|n| {
                            !taken.contains(n) && !mine.contains(n) && !own_old.contains(n)
                        })
                    });
                    match chosen {
                        Some(n) => {
                            mine.insert(n);
                            p.insert("nodePort".into(), json!(n));
                        }
                        None => errs.push(FieldError {
                            kind: super::error::CauseType::FieldValueInvalid,
                            field: format!("spec.ports[{i}].nodePort"),
                            detail: format!(
                                "Invalid value: 0: failed to allocate a nodePort: range is full; no free port left in {}-{}, delete Services or configure a larger serviceNodePortRange",
                                ranges.node_ports.start(),
                                ranges.node_ports.end()
                            ),
                        }),
                    }
                }
            }
        }
        spec.insert("ports".into(), Value::Array(ports));
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// Kubernetes' `dropTypeDependentFields` on update: a Service whose type no longer takes
/// node ports (or a cluster IP, or an external traffic policy) loses what its old type gave
/// it, unless the update changes those fields itself; so `type: ClusterIP` re-applied over
/// a NodePort Service just works.
pub fn drop_type_dependent_fields(new: &mut Value, old: &Value) {
    let new_type = str_at(new, "/spec/type").to_string();
    if needs_node_ports(old) && !needs_node_ports(new) {
        let held: BTreeSet<u16> = node_ports_of(old).collect();
        for p in new
            .pointer_mut("/spec/ports")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let n = port_of(p.get("nodePort"));
            if let (Some(n), Some(m)) = (n, p.as_object_mut())
                && held.contains(&n)
            {
                m.remove("nodePort");
            }
        }
    }
    // Fields only an externally reachable (or LoadBalancer) Service has, unless the update
    // sets them to something new (validation then names them).
    let external = new_type == "NodePort" || new_type == "LoadBalancer";
    for (field, keep) in [
        ("externalTrafficPolicy", external),
        ("allocateLoadBalancerNodePorts", new_type == "LoadBalancer"),
    ] {
        let was = old.pointer(&format!("/spec/{field}")).cloned();
        if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut)
            && !keep
            && spec.get(field).is_some()
            && spec.get(field) == was.as_ref()
        {
            spec.remove(field);
        }
    }
    if new_type == "ExternalName" && str_at(old, "/spec/type") != "ExternalName" {
        let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
            let was = old.pointer(&format!("/spec/{field}"));
            if spec.get(field).is_some() && spec.get(field) == was {
                spec.remove(field);
            }
        }
    }
}

fn port_of(v: Option<&Value>) -> Option<u16> {
    v.and_then(Value::as_u64)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| *n != 0)
}

fn cluster_ip_error(ip: &str, why: &str) -> FieldError {
    invalid_raw(
        "spec.clusterIPs",
        format!("[\"{ip}\"]"),
        &format!("failed to allocate IP {ip}: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, spec: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec})
    }

    fn ranges() -> ServiceRanges {
        ServiceRanges {
            network: Ipv4Addr::new(10, 96, 0, 0),
            prefix: 29,
            node_ports: 30000..=30002,
        }
    }

    fn details(r: Result<(), Vec<FieldError>>) -> String {
        r.expect_err("refused")
            .iter()
            .map(|e| format!("{}: {}", e.field, e.detail))
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn cluster_ips_skip_the_network_address_and_held_ones() {
        let mut a = svc("a", json!({"type": "ClusterIP", "ports": [{"port": 80}]}));
        allocate(&mut a, None, &[], &ranges()).expect("allocated");
        assert_eq!(a["spec"]["clusterIP"], "10.96.0.1");
        assert_eq!(a["spec"]["clusterIPs"], json!(["10.96.0.1"]));
        assert_eq!(a["spec"]["ipFamilies"], json!(["IPv4"]));
        let mut b = svc("b", json!({"type": "ClusterIP", "ports": [{"port": 80}]}));
        allocate(&mut b, None, std::slice::from_ref(&a), &ranges()).expect("allocated");
        assert_eq!(b["spec"]["clusterIP"], "10.96.0.2");

        let mut headless = svc("h", json!({"type": "ClusterIP", "clusterIP": "None"}));
        allocate(&mut headless, None, &[], &ranges()).expect("headless");
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        let mut ext = svc(
            "e",
            json!({"type": "ExternalName", "externalName": "x.example"}),
        );
        allocate(&mut ext, None, &[], &ranges()).expect("external");
        assert!(ext["spec"].get("clusterIP").is_none());
    }

    #[test]
    fn requested_cluster_ips_are_honoured_or_refused() {
        let mut a = svc("a", json!({"type": "ClusterIP", "clusterIP": "10.96.0.5"}));
        allocate(&mut a, None, &[], &ranges()).expect("free address");
        assert_eq!(a["spec"]["clusterIPs"], json!(["10.96.0.5"]));
        let mut b = svc("b", json!({"type": "ClusterIP", "clusterIP": "10.96.0.5"}));
        assert_eq!(
            details(allocate(&mut b, None, std::slice::from_ref(&a), &ranges())),
            "spec.clusterIPs: Invalid value: [\"10.96.0.5\"]: failed to allocate IP 10.96.0.5: provided IP is already allocated"
        );
        let mut c = svc("c", json!({"type": "ClusterIP", "clusterIP": "10.97.0.5"}));
        assert!(details(allocate(&mut c, None, &[], &ranges())).contains(
            "the provided IP (10.97.0.5) is not in the valid range. The range of valid IPs is 10.96.0.0/29"
        ));
        let mut bcast = svc("d", json!({"type": "ClusterIP", "clusterIP": "10.96.0.7"}));
        assert!(allocate(&mut bcast, None, &[], &ranges()).is_err());
        // Updating itself with its own address is no conflict.
        let mut again = a.clone();
        allocate(&mut again, Some(&a), std::slice::from_ref(&a), &ranges()).expect("own");
    }

    #[test]
    fn updates_keep_what_was_allocated() {
        let mut a = svc(
            "a",
            json!({"type": "NodePort", "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}),
        );
        allocate(&mut a, None, &[], &ranges()).expect("allocated");
        assert_eq!(a["spec"]["ports"][0]["nodePort"], 30000);
        assert_eq!(a["spec"]["ports"][1]["nodePort"], 30001);
        let mut b = svc(
            "a",
            json!({"type": "NodePort", "ports": [{"name": "https", "port": 443}, {"name": "extra", "port": 8080}]}),
        );
        allocate(&mut b, Some(&a), std::slice::from_ref(&a), &ranges()).expect("updated");
        assert_eq!(b["spec"]["clusterIP"], a["spec"]["clusterIP"]);
        assert_eq!(b["spec"]["ports"][0]["nodePort"], 30001);
        assert_eq!(b["spec"]["ports"][1]["nodePort"], 30002);

        // ClusterIP → ExternalName releases the address; back allocates one.
        let mut ext = svc(
            "a",
            json!({"type": "ExternalName", "externalName": "x.example"}),
        );
        allocate(&mut ext, Some(&a), &[], &ranges()).expect("external");
        assert!(ext["spec"].get("clusterIP").is_none());
    }

    #[test]
    fn node_ports_are_honoured_or_refused() {
        let mut a = svc(
            "a",
            json!({"type": "LoadBalancer", "ports": [{"port": 80, "nodePort": 30001}]}),
        );
        allocate(&mut a, None, &[], &ranges()).expect("allocated");
        let mut b = svc(
            "b",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30001}]}),
        );
        assert_eq!(
            details(allocate(&mut b, None, std::slice::from_ref(&a), &ranges())),
            "spec.ports[0].nodePort: Invalid value: 30001: provided port is already allocated"
        );
        let mut c = svc(
            "c",
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 8080}]}),
        );
        assert!(details(allocate(&mut c, None, &[], &ranges())).contains(
            "provided port is not in the valid range. The range of valid ports is 30000-30002"
        ));
        let mut no_lb_ports = svc(
            "d",
            json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]}),
        );
        allocate(&mut no_lb_ports, None, &[], &ranges()).expect("no node ports");
        assert!(no_lb_ports["spec"]["ports"][0].get("nodePort").is_none());
        let mut full = svc(
            "e",
            json!({"type": "NodePort", "ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}, {"name": "c", "port": 3}]}),
        );
        assert!(
            details(allocate(
                &mut full,
                None,
                std::slice::from_ref(&a),
                &ranges()
            ))
            .contains("range is full")
        );
    }

    #[test]
    fn a_type_change_drops_what_the_old_type_was_given() {
        let mut old = svc("a", json!({"type": "NodePort", "ports": [{"port": 80}]}));
        allocate(&mut old, None, &[], &ranges()).expect("allocated");
        let mut new = old.clone();
        new["spec"]["type"] = json!("ClusterIP");
        drop_type_dependent_fields(&mut new, &old);
        assert!(new["spec"]["ports"][0].get("nodePort").is_none(), "{new}");
        assert_eq!(new["spec"]["clusterIP"], old["spec"]["clusterIP"]);
        let mut ext = old.clone();
        ext["spec"]["type"] = json!("ExternalName");
        ext["spec"]["externalName"] = json!("x.example");
        drop_type_dependent_fields(&mut ext, &old);
        assert!(ext["spec"].get("clusterIP").is_none(), "{ext}");
        assert!(ext["spec"].get("ipFamilies").is_none(), "{ext}");
    }

    #[test]
    fn port_ranges_parse() {
        assert_eq!(
            ServiceRanges::parse_node_ports("30000-32767"),
            Ok(30000..=32767)
        );
        assert_eq!(ServiceRanges::parse_node_ports("31000"), Ok(31000..=31000));
        assert!(ServiceRanges::parse_node_ports("32767-30000").is_err());
        assert!(ServiceRanges::parse_node_ports("0-10").is_err());
        assert!(ServiceRanges::parse_node_ports("abc").is_err());
    }
}
