//! The cluster zone (`cluster.local` by default) kept in memory: Services and
//! EndpointSlices as the store last told, and the answers derived from them following
//! Kubernetes' DNS specification for Services and Pods:
//!
//! - `<svc>.<ns>.svc.<zone>` A: the ClusterIP; for a headless Service the addresses of its
//!   ready endpoints; an ExternalName Service answers a CNAME;
//! - `<endpoint>.<svc>.<ns>.svc.<zone>` A for headless Services, `<endpoint>` being the
//!   endpoint's hostname or its address with dashes (`10-244-0-5`);
//! - `_<port>._<proto>.<svc>.<ns>.svc.<zone>` SRV for named ports (the Service itself as
//!   target, or every ready endpoint of a headless Service, with its A record added);
//! - `<a-b-c-d>.<ns>.pod.<zone>` A (CoreDNS' `pods insecure`, Kubernetes' default);
//! - `<d.c.b.a>.in-addr.arpa` PTR for a ClusterIP (the Service's name) and for an endpoint
//!   of a headless Service (its endpoint name); other addresses are not ours to answer
//!   (they are forwarded, as CoreDNS' `fallthrough` does);
//! - a name of the zone that does not exist: NXDOMAIN; one that exists without records of
//!   the asked type: NOERROR and no answer; both with the zone's SOA in authority.
//!
//! Invariant: answering reads only this structure (no store access per query).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use hickory_server::proto::rr::rdata::{A, CNAME, NS, PTR, SOA, SRV};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use serde_json::Value;

use crate::api::meta;

/// TTL of the zone's records (CoreDNS' kubernetes plugin default).
pub const TTL: u32 = 5;
/// The label EndpointSlices name their Service by.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A port of a Service or an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Port {
    name: String,
    /// Lower-case, as in SRV names (`tcp`, `udp`, `sctp`).
    protocol: String,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ServiceKind {
    ClusterIp(Vec<Ipv4Addr>),
    Headless,
    ExternalName(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Service {
    kind: ServiceKind,
    ports: Vec<Port>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    addresses: Vec<Ipv4Addr>,
    hostname: Option<String>,
    ready: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Slice {
    service: String,
    ports: Vec<Port>,
    endpoints: Vec<Endpoint>,
}

/// What a query in the zone gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub nxdomain: bool,
    pub answers: Vec<Record>,
    pub additionals: Vec<Record>,
    /// The SOA for the authority section (negative answers).
    pub soa: Option<Record>,
}

/// The zone's data.
#[derive(Debug, Clone)]
pub struct Zone {
    /// Lower-case, without the trailing dot (`cluster.local`).
    domain: String,
    services: BTreeMap<(String, String), Service>,
    /// (namespace, slice name) → slice.
    slices: BTreeMap<(String, String), Slice>,
    /// (namespace, service) → its slices' names.
    slices_of: BTreeMap<(String, String), BTreeSet<String>>,
    /// The last store revision applied (the SOA serial).
    pub serial: u32,
}

fn ipv4s(values: impl Iterator<Item = Option<String>>) -> Vec<Ipv4Addr> {
    values.flatten().filter_map(|s| s.parse().ok()).collect()
}

fn ports_of(list: Option<&Vec<Value>>, number_key: &str) -> Vec<Port> {
    list.into_iter()
        .flatten()
        .filter_map(|p| {
            let name = p.get("name")?.as_str()?.to_ascii_lowercase();
            let port = u16::try_from(p.get(number_key)?.as_u64()?).ok()?;
            let protocol = p
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP")
                .to_ascii_lowercase();
            (!name.is_empty()).then_some(Port {
                name,
                protocol,
                port,
            })
        })
        .collect()
}

fn parse_service(obj: &Value) -> Service {
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let str_at = |k: &str| spec.get(k).and_then(Value::as_str).unwrap_or_default();
    let kind = if str_at("type") == "ExternalName" {
        ServiceKind::ExternalName(str_at("externalName").trim_end_matches('.').to_string())
    } else if str_at("clusterIP") == "None" {
        ServiceKind::Headless
    } else {
        let mut ips = ipv4s(
            spec.get("clusterIPs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|v| v.as_str().map(str::to_string)),
        );
        if ips.is_empty() {
            ips = ipv4s(std::iter::once(Some(str_at("clusterIP").to_string())));
        }
        ServiceKind::ClusterIp(ips)
    };
    Service {
        kind,
        ports: ports_of(spec.get("ports").and_then(Value::as_array), "port"),
    }
}

fn parse_slice(obj: &Value) -> Option<Slice> {
    if obj.get("addressType").and_then(Value::as_str) != Some("IPv4") {
        return None;
    }
    let service = meta::labels(obj).get(SERVICE_NAME_LABEL)?.to_string();
    let endpoints = obj
        .get("endpoints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| Endpoint {
            addresses: ipv4s(
                e.get("addresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|v| v.as_str().map(str::to_string)),
            ),
            hostname: e
                .get("hostname")
                .and_then(Value::as_str)
                .filter(|h| !h.is_empty())
                .map(str::to_ascii_lowercase),
            // Kubernetes: an unknown readiness is read as ready.
            ready: e.pointer("/conditions/ready").and_then(Value::as_bool) != Some(false),
        })
        .collect();
    Some(Slice {
        service,
        ports: ports_of(obj.get("ports").and_then(Value::as_array), "port"),
        endpoints,
    })
}

fn key(obj: &Value) -> (String, String) {
    (
        meta::namespace(obj).to_string(),
        meta::name(obj).to_string(),
    )
}

fn dashed(ip: Ipv4Addr) -> String {
    ip.to_string().replace('.', "-")
}

fn undashed(label: &str) -> Option<Ipv4Addr> {
    let dotted = label.replace('-', ".");
    (dotted.split('.').count() == 4)
        .then(|| dotted.parse().ok())
        .flatten()
}

impl Zone {
    pub fn new(domain: &str) -> Zone {
        Zone {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            services: BTreeMap::new(),
            slices: BTreeMap::new(),
            slices_of: BTreeMap::new(),
            serial: 1,
        }
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Replaces everything with the listed Services and EndpointSlices.
    pub fn reset(&mut self, services: &[Value], slices: &[Value]) {
        self.services.clear();
        self.slices.clear();
        self.slices_of.clear();
        for s in services {
            self.set_service(s);
        }
        for s in slices {
            self.set_slice(s);
        }
    }

    pub fn set_service(&mut self, obj: &Value) {
        self.services.insert(key(obj), parse_service(obj));
    }

    pub fn remove_service(&mut self, obj: &Value) {
        self.services.remove(&key(obj));
    }

    pub fn set_slice(&mut self, obj: &Value) {
        self.remove_slice(obj);
        let k = key(obj);
        if let Some(slice) = parse_slice(obj) {
            self.slices_of
                .entry((k.0.clone(), slice.service.clone()))
                .or_default()
                .insert(k.1.clone());
            self.slices.insert(k, slice);
        }
    }

    pub fn remove_slice(&mut self, obj: &Value) {
        let k = key(obj);
        if let Some(old) = self.slices.remove(&k) {
            let sk = (k.0, old.service);
            if let Some(set) = self.slices_of.get_mut(&sk) {
                set.remove(&k.1);
                if set.is_empty() {
                    self.slices_of.remove(&sk);
                }
            }
        }
    }

    fn name(&self, relative: &str) -> Name {
        let fqdn = if relative.is_empty() {
            format!("{}.", self.domain)
        } else {
            format!("{relative}.{}.", self.domain)
        };
        // Names built from validated object names; a bad one degrades to the root.
        Name::from_ascii(fqdn).unwrap_or_else(|_| Name::root())
    }

    /// The zone's SOA record.
    pub fn soa(&self) -> Record {
        Record::from_rdata(
            self.name(""),
            TTL,
            RData::SOA(SOA::new(
                self.name("ns.dns"),
                self.name("hostmaster"),
                self.serial,
                7200,
                1800,
                86400,
                TTL,
            )),
        )
    }

    /// Whether `qname` (any case, with or without the trailing dot) is in the zone.
    pub fn contains(&self, qname: &str) -> bool {
        self.relative(&qname.to_ascii_lowercase()).is_some()
    }

    fn relative<'a>(&self, qname: &'a str) -> Option<&'a str> {
        let q = qname.trim_end_matches('.');
        if q == self.domain {
            return Some("");
        }
        q.strip_suffix(self.domain.as_str())?.strip_suffix('.')
    }

    /// The ready endpoints of a Service: (name label, address, endpoint ports).
    fn ready_endpoints(&self, ns: &str, svc: &str) -> Vec<(String, Ipv4Addr, &[Port])> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        let names = self.slices_of.get(&(ns.to_string(), svc.to_string()));
        for slice_name in names.into_iter().flatten() {
            let Some(slice) = self.slices.get(&(ns.to_string(), slice_name.clone())) else {
                continue;
            };
            for e in slice.endpoints.iter().filter(|e| e.ready) {
                for ip in &e.addresses {
                    if seen.insert(*ip) {
                        let label = e.hostname.clone().unwrap_or_else(|| dashed(*ip));
                        out.push((label, *ip, slice.ports.as_slice()));
                    }
                }
            }
        }
        out
    }

    fn a(&self, relative: &str, ip: Ipv4Addr) -> Record {
        Record::from_rdata(self.name(relative), TTL, RData::A(A(ip)))
    }

    /// The names an address has in the cluster (for PTR).
    fn names_of(&self, ip: Ipv4Addr) -> Vec<String> {
        let mut out = Vec::new();
        for ((ns, name), svc) in &self.services {
            match &svc.kind {
                ServiceKind::ClusterIp(ips) if ips.contains(&ip) => {
                    out.push(format!("{name}.{ns}.svc"));
                }
                ServiceKind::Headless => {
                    out.extend(
                        self.ready_endpoints(ns, name)
                            .into_iter()
                            .filter(|(_, e, _)| *e == ip)
                            .map(|(label, _, _)| format!("{label}.{name}.{ns}.svc")),
                    );
                }
                _ => {}
            }
        }
        out
    }

    /// Answers a reverse name (`5.0.244.10.in-addr.arpa`) of an address the cluster
    /// names; `None` for any other name.
    pub fn reverse(&self, qname: &str, qtype: RecordType) -> Option<Answer> {
        let lower = qname.to_ascii_lowercase();
        let rev = lower.trim_end_matches('.').strip_suffix(".in-addr.arpa")?;
        let octets: Vec<u8> = rev
            .split('.')
            .map(|o| o.parse().ok())
            .collect::<Option<_>>()?;
        let [d, c, b, a] = octets[..] else {
            return None;
        };
        let names = self.names_of(Ipv4Addr::new(a, b, c, d));
        if names.is_empty() {
            return None;
        }
        let owner = Name::from_ascii(format!("{}.", lower.trim_end_matches('.'))).ok()?;
        let answers: Vec<Record> = if qtype == RecordType::PTR {
            names
                .iter()
                .map(|n| Record::from_rdata(owner.clone(), TTL, RData::PTR(PTR(self.name(n)))))
                .collect()
        } else {
            Vec::new()
        };
        Some(Answer {
            nxdomain: false,
            soa: answers.is_empty().then(|| self.soa()),
            answers,
            additionals: Vec::new(),
        })
    }

    /// Answers `qname`/`qtype`; `None` when the name is not in the zone.
    pub fn answer(&self, qname: &str, qtype: RecordType) -> Option<Answer> {
        let lower = qname.to_ascii_lowercase();
        let rel = self.relative(&lower)?;
        let labels: Vec<&str> = if rel.is_empty() {
            Vec::new()
        } else {
            rel.split('.').rev().collect()
        };
        let mut out = Answer {
            nxdomain: false,
            answers: Vec::new(),
            additionals: Vec::new(),
            soa: None,
        };
        let exists = match labels.as_slice() {
            [] => {
                match qtype {
                    RecordType::SOA => out.answers.push(self.soa()),
                    RecordType::NS => out.answers.push(Record::from_rdata(
                        self.name(""),
                        TTL,
                        RData::NS(NS(self.name("ns.dns"))),
                    )),
                    _ => {}
                }
                true
            }
            ["svc"] | ["pod"] => true,
            ["svc", ns] => self.services.keys().any(|(n, _)| n == ns),
            ["pod", _ns] => true,
            ["pod", _ns, ip] => match undashed(ip) {
                Some(ip) => {
                    if qtype == RecordType::A {
                        out.answers.push(self.a(rel, ip));
                    }
                    true
                }
                None => false,
            },
            ["svc", ns, svc] => self.service_name(ns, svc, rel, qtype, &mut out),
            ["svc", ns, svc, proto] if proto.starts_with('_') => self
                .services
                .get(&(ns.to_string(), svc.to_string()))
                .is_some_and(|s| s.ports.iter().any(|p| p.protocol == proto[1..])),
            ["svc", ns, svc, ep] => {
                let found: Vec<Ipv4Addr> =
                    match self.services.get(&(ns.to_string(), svc.to_string())) {
                        Some(Service {
                            kind: ServiceKind::Headless,
                            ..
                        }) => self
                            .ready_endpoints(ns, svc)
                            .into_iter()
                            .filter(|(label, _, _)| label == ep)
                            .map(|(_, ip, _)| ip)
                            .collect(),
                        _ => Vec::new(),
                    };
                if qtype == RecordType::A {
                    out.answers.extend(found.iter().map(|ip| self.a(rel, *ip)));
                }
                !found.is_empty()
            }
            ["svc", ns, svc, proto, port] if proto.starts_with('_') && port.starts_with('_') => {
                self.srv(ns, svc, &port[1..], &proto[1..], rel, qtype, &mut out)
            }
            _ => false,
        };
        if !exists {
            out.nxdomain = true;
        }
        if out.answers.is_empty() {
            out.soa = Some(self.soa());
        }
        Some(out)
    }

    fn service_name(
        &self,
        ns: &str,
        svc: &str,
        rel: &str,
        qtype: RecordType,
        out: &mut Answer,
    ) -> bool {
        let Some(service) = self.services.get(&(ns.to_string(), svc.to_string())) else {
            return false;
        };
        match &service.kind {
            ServiceKind::ExternalName(target) => {
                // A CNAME answers every type; the client follows it.
                if let Ok(t) = Name::from_ascii(format!("{target}.")) {
                    out.answers.push(Record::from_rdata(
                        self.name(rel),
                        TTL,
                        RData::CNAME(CNAME(t)),
                    ));
                }
            }
            ServiceKind::ClusterIp(ips) if qtype == RecordType::A => {
                out.answers.extend(ips.iter().map(|ip| self.a(rel, *ip)));
            }
            ServiceKind::Headless if qtype == RecordType::A => {
                out.answers.extend(
                    self.ready_endpoints(ns, svc)
                        .into_iter()
                        .map(|(_, ip, _)| self.a(rel, ip)),
                );
            }
            _ => {}
        }
        true
    }

    #[allow(clippy::too_many_arguments)]
    fn srv(
        &self,
        ns: &str,
        svc: &str,
        port_name: &str,
        proto: &str,
        rel: &str,
        qtype: RecordType,
        out: &mut Answer,
    ) -> bool {
        let Some(service) = self.services.get(&(ns.to_string(), svc.to_string())) else {
            return false;
        };
        let Some(port) = service
            .ports
            .iter()
            .find(|p| p.name == port_name && p.protocol == proto)
        else {
            return false;
        };
        if qtype != RecordType::SRV {
            return true;
        }
        let svc_rel = format!("{svc}.{ns}.svc");
        let srv = |target: &str, port: u16, weight: u16| {
            Record::from_rdata(
                self.name(rel),
                TTL,
                RData::SRV(SRV::new(0, weight, port, self.name(target))),
            )
        };
        match &service.kind {
            ServiceKind::Headless => {
                let eps: Vec<(String, Ipv4Addr, u16)> = self
                    .ready_endpoints(ns, svc)
                    .into_iter()
                    .filter_map(|(label, ip, ports)| {
                        ports
                            .iter()
                            .find(|p| p.name == port_name && p.protocol == proto)
                            .map(|p| (label, ip, p.port))
                    })
                    .collect();
                let weight = u16::try_from(100 / eps.len().max(1)).unwrap_or(100);
                for (label, ip, p) in eps {
                    let target = format!("{label}.{svc_rel}");
                    out.answers.push(srv(&target, p, weight));
                    out.additionals.push(self.a(&target, ip));
                }
            }
            ServiceKind::ClusterIp(ips) => {
                out.answers.push(srv(&svc_rel, port.port, 100));
                out.additionals
                    .extend(ips.iter().map(|ip| self.a(&svc_rel, *ip)));
            }
            ServiceKind::ExternalName(_) => {}
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn zone() -> Zone {
        let mut z = Zone::new("cluster.local");
        z.reset(
            &[
                json!({"metadata": {"namespace": "default", "name": "web"},
                       "spec": {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                                "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                                          {"port": 81}]}}),
                json!({"metadata": {"namespace": "default", "name": "db"},
                       "spec": {"clusterIP": "None",
                                "ports": [{"name": "pg", "port": 5432}]}}),
                json!({"metadata": {"namespace": "other", "name": "ext"},
                       "spec": {"type": "ExternalName", "externalName": "example.org"}}),
            ],
            &[
                json!({"metadata": {"namespace": "default", "name": "db-abc",
                                  "labels": {"kubernetes.io/service-name": "db"}},
                     "addressType": "IPv4",
                     "ports": [{"name": "pg", "port": 5433, "protocol": "TCP"}],
                     "endpoints": [
                        {"addresses": ["10.244.0.5"], "hostname": "db-0",
                         "conditions": {"ready": true}},
                        {"addresses": ["10.244.0.6"], "conditions": {}},
                        {"addresses": ["10.244.0.7"], "conditions": {"ready": false}}]}),
            ],
        );
        z
    }

    /// A question the zone must own (its answer, NXDOMAIN included).
    fn ask(z: &Zone, name: &str, ty: RecordType) -> Answer {
        z.answer(name, ty).expect("in zone")
    }

    fn ips(a: &Answer) -> Vec<String> {
        a.answers
            .iter()
            .filter_map(|r| match r.data {
                RData::A(A(ip)) => Some(ip.to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn cluster_ip_service_answers_its_ip() {
        let z = zone();
        let a = ask(&z, "WEB.default.svc.cluster.local.", RecordType::A);
        assert_eq!(ips(&a), ["10.96.0.10"]);
        assert!(!a.nxdomain && a.soa.is_none());
        let aaaa = ask(&z, "web.default.svc.cluster.local", RecordType::AAAA);
        assert!(!aaaa.nxdomain && aaaa.answers.is_empty() && aaaa.soa.is_some());
        assert!(
            z.answer("web.default.svc.example.org", RecordType::A)
                .is_none()
        );
    }

    #[test]
    fn headless_service_answers_ready_endpoints_and_hostnames() {
        let z = zone();
        let a = ask(&z, "db.default.svc.cluster.local", RecordType::A);
        assert_eq!(ips(&a), ["10.244.0.5", "10.244.0.6"]);
        let h = ask(&z, "db-0.db.default.svc.cluster.local", RecordType::A);
        assert_eq!(ips(&h), ["10.244.0.5"]);
        let d = ask(&z, "10-244-0-6.db.default.svc.cluster.local", RecordType::A);
        assert_eq!(ips(&d), ["10.244.0.6"]);
        let not_ready = ask(&z, "10-244-0-7.db.default.svc.cluster.local", RecordType::A);
        assert!(not_ready.nxdomain);
    }

    #[test]
    fn srv_for_named_ports() {
        let z = zone();
        let s = ask(
            &z,
            "_http._tcp.web.default.svc.cluster.local",
            RecordType::SRV,
        );
        match &s.answers[..] {
            [r] => match &r.data {
                RData::SRV(srv) => {
                    assert_eq!(srv.port, 80);
                    assert_eq!(srv.target.to_ascii(), "web.default.svc.cluster.local.");
                }
                other => panic!("not SRV: {other:?}"),
            },
            other => panic!("one SRV expected: {other:?}"),
        }
        assert_eq!(
            ips(&Answer {
                answers: s.additionals.clone(),
                ..s.clone()
            }),
            ["10.96.0.10"]
        );
        let h = ask(&z, "_pg._tcp.db.default.svc.cluster.local", RecordType::SRV);
        let targets: Vec<(String, u16)> = h
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(s) => Some((s.target.to_ascii(), s.port)),
                _ => None,
            })
            .collect();
        assert_eq!(
            targets,
            [
                ("db-0.db.default.svc.cluster.local.".to_string(), 5433),
                ("10-244-0-6.db.default.svc.cluster.local.".to_string(), 5433)
            ]
        );
        let udp = ask(
            &z,
            "_http._udp.web.default.svc.cluster.local",
            RecordType::SRV,
        );
        assert!(udp.nxdomain);
    }

    #[test]
    fn missing_names_are_nxdomain_with_soa_and_parents_exist() {
        let z = zone();
        let n = ask(&z, "nope.default.svc.cluster.local", RecordType::A);
        assert!(n.nxdomain);
        assert!(matches!(
            n.soa.as_ref().map(|r| &r.data),
            Some(RData::SOA(_))
        ));
        for exists in [
            "default.svc.cluster.local",
            "svc.cluster.local",
            "cluster.local",
        ] {
            let a = ask(&z, exists, RecordType::A);
            assert!(!a.nxdomain, "{exists}");
        }
        assert!(
            z.answer("nons.svc.cluster.local", RecordType::A)
                .expect("zone")
                .nxdomain
        );
        let soa = z.answer("cluster.local", RecordType::SOA).expect("zone");
        assert_eq!(soa.answers.len(), 1);
    }

    #[test]
    fn external_name_and_pod_names() {
        let z = zone();
        let c = ask(&z, "ext.other.svc.cluster.local", RecordType::A);
        assert!(matches!(&c.answers[0].data, RData::CNAME(t) if t.0.to_ascii() == "example.org."));
        let p = ask(&z, "10-244-0-9.default.pod.cluster.local", RecordType::A);
        assert_eq!(ips(&p), ["10.244.0.9"]);
    }

    #[test]
    fn reverse_names_of_cluster_addresses() {
        let z = zone();
        let p = z
            .reverse("10.0.96.10.in-addr.arpa.", RecordType::PTR)
            .expect("a cluster IP");
        assert!(matches!(&p.answers[..], [r] if matches!(&r.data,
            RData::PTR(t) if t.0.to_ascii() == "web.default.svc.cluster.local.")));
        let e = z
            .reverse("5.0.244.10.in-addr.arpa", RecordType::PTR)
            .expect("a headless endpoint");
        assert!(matches!(&e.answers[..], [r] if matches!(&r.data,
            RData::PTR(t) if t.0.to_ascii() == "db-0.db.default.svc.cluster.local.")));
        assert!(
            z.reverse("1.1.168.192.in-addr.arpa", RecordType::PTR)
                .is_none()
        );
        assert!(
            z.reverse("7.0.244.10.in-addr.arpa", RecordType::PTR)
                .is_none()
        );
    }

    #[test]
    fn changes_apply_and_deletes_remove() {
        let mut z = zone();
        let slice = json!({"metadata": {"namespace": "default", "name": "db-abc",
                                        "labels": {"kubernetes.io/service-name": "db"}},
                           "addressType": "IPv4",
                           "endpoints": [{"addresses": ["10.244.0.8"]}]});
        z.set_slice(&slice);
        let a = z
            .answer("db.default.svc.cluster.local", RecordType::A)
            .expect("zone");
        assert_eq!(ips(&a), ["10.244.0.8"]);
        z.remove_slice(&slice);
        let a = z
            .answer("db.default.svc.cluster.local", RecordType::A)
            .expect("zone");
        assert!(a.answers.is_empty() && !a.nxdomain);
        z.remove_service(&json!({"metadata": {"namespace": "default", "name": "web"}}));
        assert!(
            z.answer("web.default.svc.cluster.local", RecordType::A)
                .expect("zone")
                .nxdomain
        );
    }
}
