//! NetworkPolicy enforcement: turns the NetworkPolicies, Pods and Namespaces of the store
//! into berth's own nftables table `<nftablesTable>_pol` (family `ip`), rebuilt whole in one
//! atomic `nft -j -f -` batch, as Kubernetes defines the semantics:
//!
//! - a pod selected by no policy of a type (Ingress, Egress) is open for that type;
//! - a pod selected by some policy of a type accepts (sends) only what a rule of one of the
//!   selecting policies allows (their union); an empty rule allows everything;
//! - replies of allowed connections pass (`ct state established,related`);
//! - traffic between a pod and its own node is always allowed, and a pod cannot block
//!   itself (its traffic through a Service back to itself).
//!
//! Which hook sees the traffic: pod to pod on the bridge is *bridged* (L2). This kernel
//! build has neither `nf_conntrack_bridge` nor bridge `meta` keys (a `bridge` family table
//! with `ct state` is refused), so a bridge-family chain could not let replies pass. berth
//! therefore uses br_netfilter, which hands bridged IPv4 frames to the `ip` family's hooks
//! (with conntrack), and turns it on *for berth's bridge only* through the per-bridge
//! option `nf_call_iptables` (sysfs), never through the host-wide
//! `net.bridge.bridge-nf-call-iptables` sysctl (see [`enable_bridge_netfilter`]). One `ip`
//! family `forward` chain then sees every pod's traffic: bridged pod to pod, routed pod to
//! outside, outside (hostPort) to pod, and pod to Service after DNAT. Traffic from the node
//! to its pods (kubelet probes, the host) leaves through `output` and traffic from pods to
//! the node (DNS on the bridge address) arrives through `input`: neither passes `forward`,
//! which is how the node stays allowed without a rule that a pod could spoof.
//!
//! Pods are matched by their IP (`status.podIP`): a pod is policed from the moment the
//! kubelet reports its address (until then, as with most Kubernetes network plugins, it is
//! open).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::NetworkError;
use crate::api::meta;
use crate::api::selector::LabelSelector;

/// The name of the policy table for the configured table name.
pub fn table_name(base: &str) -> String {
    format!("{base}_pol")
}

/// A pod as policies see it.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub ip: Ipv4Addr,
    pub labels: BTreeMap<String, String>,
    /// Its containers' ports: (name, protocol upper-case, number).
    pub ports: Vec<(String, String, u16)>,
}

impl PodInfo {
    /// A pod that holds a pod-network address: not hostNetwork, not finished, with an
    /// IPv4 `status.podIP`.
    pub fn from_object(pod: &Value) -> Option<PodInfo> {
        if pod
            .pointer("/spec/hostNetwork")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            return None;
        }
        if matches!(meta::str_at(pod, "/status/phase"), "Succeeded" | "Failed") {
            return None;
        }
        let ip: Ipv4Addr = meta::str_at(pod, "/status/podIP").parse().ok()?;
        let ports = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|c| {
                c.get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .filter_map(|p| {
                let name = p.get("name")?.as_str()?.to_string();
                let proto = p
                    .get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("TCP")
                    .to_ascii_uppercase();
                let number = u16::try_from(p.get("containerPort")?.as_i64()?).ok()?;
                Some((name, proto, number))
            })
            .collect();
        Some(PodInfo {
            namespace: meta::namespace(pod).to_string(),
            name: meta::name(pod).to_string(),
            ip,
            labels: meta::labels(pod),
            ports,
        })
    }

    fn named_port(&self, name: &str, proto: &str) -> Option<u16> {
        self.ports
            .iter()
            .find(|(n, p, _)| n == name && p == proto)
            .map(|(_, _, port)| *port)
    }
}

/// Who a rule admits: the remote end's address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Peer {
    Any,
    /// Pod addresses (a selector that matched no pod is dropped: it admits nothing).
    Ips(BTreeSet<Ipv4Addr>),
    /// `ipBlock`: inside `cidr` and outside every `except`.
    Block {
        cidr: Cidr,
        except: Vec<Cidr>,
    },
}

/// Which traffic a rule admits by port. `only` restricts the remote address too: a named
/// port in an egress rule means that port of each destination pod.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PortMatch {
    /// `None`: every protocol and port.
    proto: Option<String>,
    range: Option<(u16, u16)>,
    only: Option<Ipv4Addr>,
}

/// An IPv4 prefix of any length (ipBlock allows /0 to /32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Cidr {
    addr: Ipv4Addr,
    len: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (a, l) = s.split_once('/')?;
        let addr: Ipv4Addr = a.parse().ok()?;
        let len: u8 = l.parse().ok().filter(|l| *l <= 32)?;
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        Some(Cidr {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            len,
        })
    }
}

/// One allowed (peer, port) combination of a pod's ingress or egress.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Allow {
    peer: Peer,
    port: PortMatch,
}

/// What one pod may receive and send. `None`: not isolated for that direction.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PodRules {
    ingress: Option<BTreeSet<Allow>>,
    egress: Option<BTreeSet<Allow>>,
}

/// The policed pods, by address.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rules {
    pods: BTreeMap<Ipv4Addr, PodRules>,
}

impl Rules {
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// How many pods are policed (for either direction).
    pub fn len(&self) -> usize {
        self.pods.len()
    }
}

/// Evaluates the policies over the pods. `local` tells which pods this node polices (those
/// with an address of its pod CIDR); every pod can be a peer. `namespaces` are the
/// Namespace objects' labels by name (a missing one has only its name label).
pub fn compute(
    policies: &[NetworkPolicy],
    pods: &[PodInfo],
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
    local: impl Fn(Ipv4Addr) -> bool,
) -> Rules {
    let ns_labels = |ns: &str| -> BTreeMap<String, String> {
        namespaces.get(ns).cloned().unwrap_or_else(|| {
            BTreeMap::from([("kubernetes.io/metadata.name".to_string(), ns.to_string())])
        })
    };
    let mut rules = Rules::default();
    for policy in policies {
        let ns = policy.metadata.namespace.as_deref().unwrap_or("default");
        let spec = policy.spec.clone().unwrap_or_default();
        let Ok(selector) = LabelSelector::from_k8s(&spec.pod_selector.clone().unwrap_or_default())
        else {
            tracing::warn!(namespace = ns, policy = ?policy.metadata.name, "network policy with an invalid podSelector ignored");
            continue;
        };
        let (ingress, egress) = policy_types(&spec);
        // Peers (and egress ports) do not depend on the target pod: resolve them once.
        let ingress_rules: Vec<(Vec<Peer>, Option<&[NetworkPolicyPort]>)> = spec
            .ingress
            .iter()
            .flatten()
            .map(|r| {
                (
                    peers(r.from.as_deref(), ns, pods, &ns_labels),
                    r.ports.as_deref(),
                )
            })
            .collect();
        let egress_rules: Vec<(Vec<Peer>, Vec<PortMatch>)> = spec
            .egress
            .iter()
            .flatten()
            .map(|r| {
                let ports = ports(r.ports.as_deref(), |name, proto| {
                    // A named port in an egress rule: that port of each destination pod.
                    pods.iter()
                        .filter_map(|p| Some((p.named_port(name, proto)?, Some(p.ip))))
                        .collect()
                });
                (peers(r.to.as_deref(), ns, pods, &ns_labels), ports)
            })
            .collect();
        for target in pods
            .iter()
            .filter(|p| p.namespace == ns && local(p.ip) && selector.matches(&p.labels))
        {
            let entry = rules.pods.entry(target.ip).or_default();
            if ingress {
                let set = entry.ingress.get_or_insert_with(BTreeSet::new);
                for (peers, list) in &ingress_rules {
                    // A named port in an ingress rule: the target pod's own port.
                    let ports = ports(*list, |name, proto| {
                        target
                            .named_port(name, proto)
                            .map(|p| vec![(p, None)])
                            .unwrap_or_default()
                    });
                    combine(set, peers, &ports);
                }
            }
            if egress {
                let set = entry.egress.get_or_insert_with(BTreeSet::new);
                for (peers, ports) in &egress_rules {
                    combine(set, peers, ports);
                }
            }
        }
    }
    rules
}

/// (Ingress, Egress) as Kubernetes defaults `policyTypes` (admission already did; this
/// covers objects stored before it).
fn policy_types(spec: &NetworkPolicySpec) -> (bool, bool) {
    match spec.policy_types.as_deref() {
        Some(types) if !types.is_empty() => (
            types.iter().any(|t| t == "Ingress"),
            types.iter().any(|t| t == "Egress"),
        ),
        _ => (true, spec.egress.as_ref().is_some_and(|e| !e.is_empty())),
    }
}

fn combine(set: &mut BTreeSet<Allow>, peers: &[Peer], ports: &[PortMatch]) {
    for peer in peers {
        for port in ports {
            set.insert(Allow {
                peer: peer.clone(),
                port: port.clone(),
            });
        }
    }
}

/// A rule's `from`/`to`: absent or empty admits everyone.
fn peers(
    list: Option<&[NetworkPolicyPeer]>,
    ns: &str,
    pods: &[PodInfo],
    ns_labels: &impl Fn(&str) -> BTreeMap<String, String>,
) -> Vec<Peer> {
    let list = list.unwrap_or_default();
    if list.is_empty() {
        return vec![Peer::Any];
    }
    let mut out = Vec::new();
    for peer in list {
        if let Some(block) = &peer.ip_block {
            // IPv6 blocks cannot match this IPv4 network.
            if let Some(cidr) = Cidr::parse(&block.cidr) {
                let except = block
                    .except
                    .iter()
                    .flatten()
                    .filter_map(|e| Cidr::parse(e))
                    .collect();
                out.push(Peer::Block { cidr, except });
            }
            continue;
        }
        let pod_sel = match &peer.pod_selector {
            Some(s) => LabelSelector::from_k8s(s).ok(),
            None => Some(LabelSelector::everything()),
        };
        let ns_sel = match &peer.namespace_selector {
            Some(s) => LabelSelector::from_k8s(s).ok().map(Some),
            None => Some(None),
        };
        let (Some(pod_sel), Some(ns_sel)) = (pod_sel, ns_sel) else {
            continue;
        };
        let ips: BTreeSet<Ipv4Addr> = pods
            .iter()
            .filter(|p| match &ns_sel {
                // Without namespaceSelector: pods of the policy's own namespace.
                None => p.namespace == ns,
                Some(sel) => sel.matches(&ns_labels(&p.namespace)),
            })
            .filter(|p| pod_sel.matches(&p.labels))
            .map(|p| p.ip)
            .collect();
        if !ips.is_empty() {
            out.push(Peer::Ips(ips));
        }
    }
    out
}

/// A rule's `ports`: absent or empty admits every port. `named` resolves a named port to
/// (number, the only address it applies to).
fn ports(
    list: Option<&[NetworkPolicyPort]>,
    named: impl Fn(&str, &str) -> Vec<(u16, Option<Ipv4Addr>)>,
) -> Vec<PortMatch> {
    let list = list.unwrap_or_default();
    if list.is_empty() {
        return vec![PortMatch {
            proto: None,
            range: None,
            only: None,
        }];
    }
    let mut out = Vec::new();
    for p in list {
        let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_uppercase();
        match &p.port {
            None => out.push(PortMatch {
                proto: Some(proto),
                range: None,
                only: None,
            }),
            Some(IntOrString::Int(n)) => {
                let Ok(lo) = u16::try_from(*n) else { continue };
                let hi = p
                    .end_port
                    .and_then(|e| u16::try_from(e).ok())
                    .filter(|e| *e >= lo)
                    .unwrap_or(lo);
                out.push(PortMatch {
                    proto: Some(proto),
                    range: Some((lo, hi)),
                    only: None,
                });
            }
            Some(IntOrString::String(name)) => {
                for (number, only) in named(name, &proto) {
                    out.push(PortMatch {
                        proto: Some(proto.clone()),
                        range: Some((number, number)),
                        only,
                    });
                }
            }
        }
    }
    out
}

fn eq(left: Value, right: Value) -> Value {
    json!({"match": {"op": "==", "left": left, "right": right}})
}

fn ne(left: Value, right: Value) -> Value {
    json!({"match": {"op": "!=", "left": left, "right": right}})
}

fn addr(field: &str) -> Value {
    json!({"payload": {"protocol": "ip", "field": field}})
}

fn cidr_value(c: Cidr) -> Value {
    if c.len == 32 {
        json!(c.addr.to_string())
    } else {
        json!({"prefix": {"addr": c.addr.to_string(), "len": c.len}})
    }
}

fn chain_name(dir: &str, ip: Ipv4Addr) -> String {
    format!("{dir}_{}", ip.to_string().replace('.', "_"))
}

/// The match expressions of one allowed combination; `remote` is `saddr` for ingress and
/// `daddr` for egress.
fn allow_exprs(a: &Allow, remote: &str) -> Option<Vec<Value>> {
    let mut expr = Vec::new();
    match &a.peer {
        Peer::Any => {}
        Peer::Ips(ips) => {
            let set: Vec<Value> = ips.iter().map(|ip| json!(ip.to_string())).collect();
            expr.push(eq(addr(remote), json!({"set": set})));
        }
        Peer::Block { cidr, except } => {
            if cidr.len > 0 {
                expr.push(eq(addr(remote), cidr_value(*cidr)));
            }
            for e in except {
                if e.len == 0 {
                    return None;
                }
                expr.push(ne(addr(remote), cidr_value(*e)));
            }
        }
    }
    if let Some(only) = a.port.only {
        expr.push(eq(addr(remote), json!(only.to_string())));
    }
    if let Some(proto) = &a.port.proto {
        let proto = proto.to_ascii_lowercase();
        match a.port.range {
            None => expr.push(eq(json!({"meta": {"key": "l4proto"}}), json!(proto))),
            Some((lo, hi)) => {
                let right = if lo == hi {
                    json!(lo)
                } else {
                    json!({"range": [lo, hi]})
                };
                expr.push(eq(
                    json!({"payload": {"protocol": proto, "field": "dport"}}),
                    right,
                ));
            }
        }
    }
    Some(expr)
}

/// The whole batch: the table made anew (or removed when no pod is policed), atomically.
pub fn ruleset(base_table: &str, rules: &Rules) -> Value {
    let table = table_name(base_table);
    let t = json!({"family": "ip", "name": table});
    // `add` first so that the `delete` succeeds when the table does not exist yet.
    let mut batch = vec![
        json!({"add": {"table": t}}),
        json!({"delete": {"table": t}}),
    ];
    if rules.is_empty() {
        return json!({"nftables": batch});
    }
    batch.push(json!({"add": {"table": t}}));
    let chain =
        |name: &str| json!({"add": {"chain": {"family": "ip", "table": table, "name": name}}});
    let rule = |chain: &str, expr: Vec<Value>| json!({"add": {"rule": {"family": "ip", "table": table, "chain": chain, "expr": expr}}});
    batch.push(json!({"add": {"chain": {
        "family": "ip", "table": table, "name": "forward",
        "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"
    }}}));
    batch.push(rule(
        "forward",
        vec![
            json!({"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}),
            json!({"accept": null}),
        ],
    ));
    let mut per_pod = Vec::new();
    let mut egress_jumps = Vec::new();
    let mut ingress_jumps = Vec::new();
    for (ip, pod) in &rules.pods {
        for (dir, allows, own, remote, verdict, jumps) in [
            (
                "eg",
                &pod.egress,
                "saddr",
                "daddr",
                json!({"return": null}),
                &mut egress_jumps,
            ),
            (
                "in",
                &pod.ingress,
                "daddr",
                "saddr",
                json!({"accept": null}),
                &mut ingress_jumps,
            ),
        ] {
            let Some(allows) = allows else { continue };
            let name = chain_name(dir, *ip);
            per_pod.push(chain(&name));
            // A pod cannot block itself (its traffic through a Service back to itself).
            per_pod.push(rule(
                &name,
                vec![eq(addr(remote), json!(ip.to_string())), verdict.clone()],
            ));
            for a in allows {
                if let Some(mut expr) = allow_exprs(a, remote) {
                    expr.push(verdict.clone());
                    per_pod.push(rule(&name, expr));
                }
            }
            per_pod.push(rule(&name, vec![json!({"drop": null})]));
            jumps.push(rule(
                "forward",
                vec![
                    eq(addr(own), json!(ip.to_string())),
                    json!({"jump": {"target": name}}),
                ],
            ));
        }
    }
    // Chains before the rules that jump to them; egress (which returns when allowed)
    // before ingress.
    batch.extend(
        per_pod
            .iter()
            .filter(|c| c["add"].get("chain").is_some())
            .cloned(),
    );
    batch.extend(
        per_pod
            .into_iter()
            .filter(|c| c["add"].get("rule").is_some()),
    );
    batch.extend(egress_jumps);
    batch.extend(ingress_jumps);
    json!({"nftables": batch})
}

/// Applies a batch made by [`ruleset`].
pub fn apply(batch: &Value) -> Result<(), NetworkError> {
    super::nft::apply(batch)
}

/// Deletes the policy table (nothing to do when it does not exist).
pub fn delete_table(base_table: &str) -> Result<(), NetworkError> {
    super::nft::delete_table(&table_name(base_table))
}

/// Makes the kernel pass the bridge's bridged IPv4 frames through the `ip` family hooks
/// (br_netfilter), for this bridge only: the per-bridge `nf_call_iptables` option. When
/// br_netfilter is not loaded, it is loaded (`modprobe`), and since loading it turns the
/// host-wide `net.bridge.bridge-nf-call-{ip,ip6,arp}tables` on by default for every
/// bridge, those are set back to 0 at once, so the host's other bridges behave as they
/// did before. Where br_netfilter was already loaded its global settings are left alone.
pub fn enable_bridge_netfilter(bridge: &str) -> Result<(), NetworkError> {
    let sys = Path::new("/proc/sys/net/bridge");
    if !sys.exists() {
        let _ = std::process::Command::new("modprobe")
            .arg("br_netfilter")
            .stdin(std::process::Stdio::null())
            .output();
        if !sys.exists() {
            return Err(NetworkError::NoBridgeNetfilter);
        }
        for f in [
            "bridge-nf-call-iptables",
            "bridge-nf-call-ip6tables",
            "bridge-nf-call-arptables",
        ] {
            let path = sys.join(f);
            std::fs::write(&path, "0").map_err(|source| NetworkError::Io {
                action: "restore the host-wide bridge netfilter setting",
                path,
                source,
            })?;
        }
        tracing::info!(
            "loaded br_netfilter; its host-wide bridge-nf-call-* settings set back to 0 (berth turns it on for its own bridge only)"
        );
    }
    let path = Path::new("/sys/class/net")
        .join(bridge)
        .join("bridge/nf_call_iptables");
    if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    std::fs::write(&path, "1").map_err(|source| NetworkError::Io {
        action: "let NetworkPolicy see bridged pod traffic (br_netfilter) through",
        path,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ns: &str, name: &str, ip: &str, labels: &[(&str, &str)]) -> PodInfo {
        PodInfo {
            namespace: ns.into(),
            name: name.into(),
            ip: ip.parse().unwrap(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ports: vec![("http".into(), "TCP".into(), 8080)],
        }
    }

    fn policy(ns: &str, spec: Value) -> NetworkPolicy {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": ns}, "spec": spec}))
            .unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn all(_: Ipv4Addr) -> bool {
        true
    }

    #[test]
    fn unselected_pods_stay_open_and_selected_pods_get_the_union() {
        let pods = vec![
            pod("default", "api", "10.0.0.2", &[("app", "apiserver")]),
            pod("default", "mon", "10.0.0.3", &[("role", "monitoring")]),
            pod("default", "other", "10.0.0.4", &[]),
        ];
        let p = policy(
            "default",
            json!({"podSelector": {"matchLabels": {"app": "apiserver"}},
                   "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "monitoring"}}}],
                                "ports": [{"protocol": "TCP", "port": 5000}]}]}),
        );
        let r = compute(&[p], &pods, &BTreeMap::new(), all);
        assert_eq!(r.pods.len(), 1);
        let api = &r.pods[&ip("10.0.0.2")];
        assert!(api.egress.is_none());
        let ing = api.ingress.as_ref().unwrap();
        assert_eq!(
            ing.iter().cloned().collect::<Vec<_>>(),
            vec![Allow {
                peer: Peer::Ips([ip("10.0.0.3")].into()),
                port: PortMatch {
                    proto: Some("TCP".into()),
                    range: Some((5000, 5000)),
                    only: None
                }
            }]
        );
        let batch = ruleset("berth", &r).to_string();
        assert!(batch.contains("in_10_0_0_2") && !batch.contains("eg_10_0_0_2"));
        assert!(batch.contains("\"name\":\"berth_pol\""));
    }

    #[test]
    fn deny_all_egress_named_ports_and_namespaces() {
        let pods = vec![
            pod("a", "x", "10.0.0.2", &[]),
            pod("b", "y", "10.0.0.3", &[]),
            pod("c", "z", "10.0.0.4", &[]),
        ];
        let namespaces = BTreeMap::from([
            (
                "b".to_string(),
                BTreeMap::from([("team".to_string(), "blue".to_string())]),
            ),
            ("c".to_string(), BTreeMap::new()),
        ]);
        // Deny all ingress in `a`: isolated with nothing allowed.
        let deny = policy("a", json!({"podSelector": {}, "policyTypes": ["Ingress"]}));
        let r = compute(std::slice::from_ref(&deny), &pods, &namespaces, all);
        assert_eq!(r.pods[&ip("10.0.0.2")].ingress, Some(BTreeSet::new()));
        // Egress to namespaces labelled team=blue on the named port "http".
        let eg = policy(
            "a",
            json!({"podSelector": {}, "policyTypes": ["Egress"],
                   "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}],
                               "ports": [{"protocol": "TCP", "port": "http"}]}]}),
        );
        let r = compute(&[eg], &pods, &namespaces, all);
        let e = r.pods[&ip("10.0.0.2")].egress.clone().unwrap();
        assert!(r.pods[&ip("10.0.0.2")].ingress.is_none());
        assert!(
            e.iter()
                .all(|a| a.peer == Peer::Ips([ip("10.0.0.3")].into()))
        );
        // The named port is each destination pod's own "http".
        assert_eq!(e.len(), 3);
        assert!(e.iter().all(|a| a.port.range == Some((8080, 8080))));
        // ipBlock with except; a pod not local is not policed.
        let blk = policy(
            "a",
            json!({"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/24", "except": ["10.0.0.4/32"]}}]}]}),
        );
        let r = compute(&[blk], &pods, &namespaces, |i| i != ip("10.0.0.2"));
        assert!(r.is_empty());
        let batch = ruleset("berth", &r).to_string();
        assert!(!batch.contains("chain"), "{batch}");
    }

    #[test]
    fn policy_types_default_like_kubernetes() {
        let s: NetworkPolicySpec = serde_json::from_value(json!({"egress": [{}]})).unwrap();
        assert_eq!(policy_types(&s), (true, true));
        let s: NetworkPolicySpec = serde_json::from_value(json!({})).unwrap();
        assert_eq!(policy_types(&s), (true, false));
        let s: NetworkPolicySpec =
            serde_json::from_value(json!({"policyTypes": ["Egress"]})).unwrap();
        assert_eq!(policy_types(&s), (false, true));
    }

    #[test]
    fn cidrs_of_any_length() {
        assert_eq!(
            Cidr::parse("10.1.2.3/8"),
            Some(Cidr {
                addr: ip("10.0.0.0"),
                len: 8
            })
        );
        assert_eq!(Cidr::parse("0.0.0.0/0").map(|c| c.len), Some(0));
        assert!(Cidr::parse("fd00::/8").is_none());
        assert!(Cidr::parse("10.0.0.0/33").is_none());
    }
}
