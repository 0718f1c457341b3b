//! The service proxy: Services and their EndpointSlices made into nftables rules in berth's
//! own table `<nftablesTable>_svc` (family ip), kept apart from the pod network's table so
//! the two are never rebuilt over each other.
//!
//! What the table does:
//! - `clusterIP:port` (and `nodePort`, and for LoadBalancer Services the port itself, on
//!   every local address of the node: ServiceLB's "served on the host"; and `externalIPs`
//!   on the port) DNATs to one READY endpoint (`conditions.ready` not false and not
//!   terminating), picked at random (`numgen random mod N`); with `sessionAffinity:
//!   ClientIP` a client address is held to the endpoint it got first for the configured
//!   timeout (one timed set per endpoint);
//! - DNATed traffic from a pod to a pod is masqueraded (the reply would otherwise be
//!   bridged straight back and miss conntrack's reverse NAT), loopback sources too; the
//!   pods' bridge ports are in hairpin mode (see `link::enslave`) so a pod reaches itself;
//! - a Service port without ready endpoints, and anything else sent to the Service CIDR,
//!   is rejected (TCP reset, else ICMP host-unreachable) instead of vanishing.
//!
//! The table is rebuilt whole in one `nft -j -f -` batch (atomic), only when the rules
//! change; bursts of changes are coalesced. Chains and sets are named after what they serve,
//! so a rebuild keeps the affinity sets of endpoints that stay (see [`ruleset`]). The same task writes
//! `status.loadBalancer.ingress` of LoadBalancer Services (the node's InternalIP).
//! [`frontends`] and [`ruleset`] are pure and unit-tested.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Ipv4Net, NetworkError};
use crate::api::meta;
use crate::api::registry;
use crate::store::{Store, Subresource};

/// Label of an EndpointSlice naming its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// One Service port as the data plane serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontend {
    /// `namespace/name:port` (rule comments, logs).
    pub id: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub cluster_ip: Option<Ipv4Addr>,
    pub port: u16,
    pub node_port: Option<u16>,
    /// LoadBalancer: also served on the node's own addresses on `port`.
    pub on_host: bool,
    /// `spec.externalIPs`: served on `port` at these addresses too (as kube-proxy does).
    pub external_ips: Vec<Ipv4Addr>,
    /// `sessionAffinity: ClientIP` timeout in seconds.
    pub affinity: Option<u32>,
    /// Ready endpoints (address, port), sorted, without duplicates.
    pub backends: Vec<(Ipv4Addr, u16)>,
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

fn port_num(v: Option<&Value>) -> Option<u16> {
    v.and_then(Value::as_u64)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| *n != 0)
}

/// The frontends of every Service with a cluster IP, with the ready endpoints of its
/// EndpointSlices (headless and ExternalName Services have none: DNS serves them).
pub fn frontends(services: &[Value], slices: &[Value]) -> Vec<Frontend> {
    let mut out = Vec::new();
    for svc in services {
        let ty = s(svc, "/spec/type");
        if ty == "ExternalName" {
            continue;
        }
        let Ok(cluster_ip) = s(svc, "/spec/clusterIP").parse::<Ipv4Addr>() else {
            continue;
        };
        let ns = meta::namespace(svc);
        let name = meta::name(svc);
        let affinity = (s(svc, "/spec/sessionAffinity") == "ClientIP").then(|| {
            svc.pointer("/spec/sessionAffinityConfig/clientIP/timeoutSeconds")
                .and_then(Value::as_u64)
                .and_then(|t| u32::try_from(t).ok())
                .unwrap_or(10800)
        });
        let external_ips: Vec<Ipv4Addr> = svc
            .pointer("/spec/externalIPs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|ip| ip.parse().ok())
            .collect();
        let mine: Vec<&Value> = slices
            .iter()
            .filter(|sl| {
                meta::namespace(sl) == ns
                    && s(
                        sl,
                        &format!("/metadata/labels/{}", SERVICE_NAME_LABEL.replace('/', "~1")),
                    ) == name
                    && s(sl, "/addressType") == "IPv4"
            })
            .collect();
        for p in svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(port) = port_num(p.get("port")) else {
                continue;
            };
            let port_name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            let protocol = p
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP")
                .to_string();
            let mut backends = BTreeSet::new();
            for sl in &mine {
                let Some(target) = sl
                    .get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|sp| {
                        sp.get("name").and_then(Value::as_str).unwrap_or_default() == port_name
                            && sp.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                                == protocol
                    })
                    .and_then(|sp| port_num(sp.get("port")))
                else {
                    continue;
                };
                for ep in sl
                    .get("endpoints")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    // Kubernetes: an unset `ready` means ready.
                    let ready =
                        ep.pointer("/conditions/ready").and_then(Value::as_bool) != Some(false);
                    let terminating = ep
                        .pointer("/conditions/terminating")
                        .and_then(Value::as_bool)
                        == Some(true);
                    if !ready || terminating {
                        continue;
                    }
                    for a in ep
                        .get("addresses")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .filter_map(|a| a.parse::<Ipv4Addr>().ok())
                    {
                        backends.insert((a, target));
                    }
                }
            }
            let external = ty == "NodePort" || ty == "LoadBalancer";
            out.push(Frontend {
                id: if port_name.is_empty() {
                    format!("{ns}/{name}:{port}")
                } else {
                    format!("{ns}/{name}:{port_name}")
                },
                protocol: protocol.to_ascii_lowercase(),
                cluster_ip: Some(cluster_ip),
                port,
                node_port: port_num(p.get("nodePort")).filter(|_| external),
                on_host: ty == "LoadBalancer",
                external_ips: external_ips.clone(),
                affinity,
                backends: backends.into_iter().collect(),
            });
        }
    }
    out
}

fn eq(left: Value, right: Value) -> Value {
    json!({"match": {"op": "==", "left": left, "right": right}})
}

fn field(protocol: &str, field: &str) -> Value {
    json!({"payload": {"protocol": protocol, "field": field}})
}

fn local_daddr() -> Value {
    eq(
        json!({"fib": {"result": "type", "flags": ["daddr"]}}),
        json!("local"),
    )
}

fn prefix(net: Ipv4Net) -> Value {
    json!({"prefix": {"addr": net.network().to_string(), "len": net.prefix}})
}

fn reject(tcp: bool) -> Value {
    if tcp {
        json!({"reject": {"type": "tcp reset"}})
    } else {
        json!({"reject": {"type": "icmp", "expr": "host-unreachable"}})
    }
}

/// A short stable name part for `parts` (chains and sets are named after what they serve,
/// so a rebuild keeps the affinity sets of unchanged endpoints).
fn tag(parts: &[&str]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())[..12].to_string()
}

/// The chains and sets (kind, name) a list of batch items declares.
pub type Declared = BTreeSet<(&'static str, String)>;

fn declared(items: &[Value]) -> Declared {
    let mut out = BTreeSet::new();
    for item in items {
        for kind in ["chain", "set"] {
            if let Some(name) = item
                .pointer(&format!("/add/{kind}/name"))
                .and_then(Value::as_str)
            {
                out.insert((kind, name.to_string()));
            }
        }
    }
    out
}

/// The whole table as one nftables JSON batch, and the chains and sets it leaves in the
/// table. Without `previous` (what the last applied batch left) the table is created,
/// deleted and created again, so whatever was there goes away in the same transaction;
/// with it, the table is flushed (rules go, affinity sets keep their entries), the chains
/// and sets no longer wanted are deleted and only new sets are added (nft cannot re-add a
/// set the packet path updates: its `dynamic` flag is not expressible in nft's JSON).
pub fn ruleset(
    table: &str,
    pod_cidr: Ipv4Net,
    service_cidr: Ipv4Net,
    fronts: &[Frontend],
    previous: Option<&Declared>,
) -> (Value, Declared) {
    let body = rules(table, pod_cidr, service_cidr, fronts);
    let wanted = declared(&body);
    let t = json!({"family": "ip", "name": table});
    let mut batch = vec![json!({"add": {"table": t}})];
    match previous {
        None => {
            batch.push(json!({"delete": {"table": t}}));
            batch.push(json!({"add": {"table": t}}));
            batch.extend(body);
        }
        Some(prev) => {
            batch.push(json!({"flush": {"table": t}}));
            for (kind, name) in prev.difference(&wanted) {
                batch.push(
                    json!({"delete": {*kind: {"family": "ip", "table": table, "name": name}}}),
                );
            }
            batch.extend(body.into_iter().filter(|item| {
                let name = item.pointer("/add/set/name").and_then(Value::as_str);
                name.is_none_or(|n| !prev.contains(&("set", n.to_string())))
            }));
        }
    }
    (json!({ "nftables": batch }), wanted)
}

/// The table's chains, sets and rules.
fn rules(table: &str, pod_cidr: Ipv4Net, service_cidr: Ipv4Net, fronts: &[Frontend]) -> Vec<Value> {
    let chain = |name: &str, base: Option<(&str, &str, i32)>| {
        let mut c = json!({"family": "ip", "table": table, "name": name});
        if let Some((ty, hook, prio)) = base {
            c["type"] = json!(ty);
            c["hook"] = json!(hook);
            c["prio"] = json!(prio);
            c["policy"] = json!("accept");
        }
        json!({"add": {"chain": c}})
    };
    let rule = |chain: &str, expr: Vec<Value>, comment: Option<&str>| {
        let mut r = json!({"family": "ip", "table": table, "chain": chain, "expr": expr});
        if let Some(c) = comment {
            r["comment"] = json!(c);
        }
        json!({"add": {"rule": r}})
    };
    let mut batch = vec![
        chain("services", None),
        chain("prerouting", Some(("nat", "prerouting", -100))),
        chain("output", Some(("nat", "output", -100))),
        chain("postrouting", Some(("nat", "postrouting", 100))),
        chain("reject_forward", Some(("filter", "forward", -10))),
        chain("reject_output", Some(("filter", "output", -10))),
        chain("reject_input", Some(("filter", "input", -10))),
        rule(
            "prerouting",
            vec![json!({"jump": {"target": "services"}})],
            None,
        ),
        rule(
            "output",
            vec![json!({"jump": {"target": "services"}})],
            None,
        ),
        // Hairpin: a pod reaching a Service backed by a pod on the same bridge (itself
        // included) must get the reply back through the host's conntrack.
        rule(
            "postrouting",
            vec![
                json!({"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}),
                eq(field("ip", "saddr"), prefix(pod_cidr)),
                eq(field("ip", "daddr"), prefix(pod_cidr)),
                json!({"masquerade": null}),
            ],
            None,
        ),
        // 127.0.0.1:nodePort from the node: a loopback source cannot leave on the bridge.
        rule(
            "postrouting",
            vec![
                json!({"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}),
                eq(
                    field("ip", "saddr"),
                    json!({"prefix": {"addr": "127.0.0.0", "len": 8}}),
                ),
                json!({"masquerade": null}),
            ],
            None,
        ),
    ];
    let mut unserved = Vec::new();
    for f in fronts {
        let dport = |port: u16| eq(field(&f.protocol, "dport"), json!(port));
        if f.backends.is_empty() {
            unserved.push(f);
            continue;
        }
        let svc_chain = format!("svc_{}", tag(&[&f.id]));
        batch.push(chain(&svc_chain, None));
        let goto = json!({"goto": {"target": svc_chain}});
        if let Some(ip) = f.cluster_ip {
            batch.push(rule(
                "services",
                vec![
                    eq(field("ip", "daddr"), json!(ip.to_string())),
                    dport(f.port),
                    goto.clone(),
                ],
                Some(&format!("{} cluster IP", f.id)),
            ));
        }
        if let Some(np) = f.node_port {
            batch.push(rule(
                "services",
                vec![local_daddr(), dport(np), goto.clone()],
                Some(&format!("{} node port", f.id)),
            ));
        }
        if f.on_host {
            batch.push(rule(
                "services",
                vec![local_daddr(), dport(f.port), goto.clone()],
                Some(&format!("{} load balancer", f.id)),
            ));
        }
        for ip in &f.external_ips {
            batch.push(rule(
                "services",
                vec![
                    eq(field("ip", "daddr"), json!(ip.to_string())),
                    dport(f.port),
                    goto.clone(),
                ],
                Some(&format!("{} external IP", f.id)),
            ));
        }
        let ep_chains: Vec<String> = f
            .backends
            .iter()
            .map(|(ip, port)| format!("ep_{}", tag(&[&f.id, &ip.to_string(), &port.to_string()])))
            .collect();
        // The timeout is part of a set's name: a set cannot change it in place.
        let sets: Vec<String> = f
            .backends
            .iter()
            .map(|(ip, port)| {
                let timeout = f.affinity.unwrap_or_default().to_string();
                format!(
                    "aff_{}",
                    tag(&[&f.id, &ip.to_string(), &port.to_string(), &timeout])
                )
            })
            .collect();
        // Chains exist before a rule jumps to them.
        for c in &ep_chains {
            batch.push(chain(c, None));
        }
        if let Some(timeout) = f.affinity {
            for (k, set) in sets.iter().enumerate() {
                batch.push(json!({"add": {"set": {
                    // nft adds `dynamic` itself for a set the packet path updates.
                    "family": "ip", "table": table, "name": set, "type": "ipv4_addr",
                    "flags": ["timeout"], "timeout": timeout
                }}}));
                // A client seen before goes back to its endpoint.
                batch.push(rule(
                    &svc_chain,
                    vec![
                        eq(field("ip", "saddr"), json!(format!("@{set}"))),
                        json!({"goto": {"target": ep_chains[k]}}),
                    ],
                    None,
                ));
            }
        }
        if ep_chains.len() == 1 {
            batch.push(rule(
                &svc_chain,
                vec![json!({"goto": {"target": ep_chains[0]}})],
                None,
            ));
        } else {
            let map: Vec<Value> = ep_chains
                .iter()
                .enumerate()
                .map(|(k, c)| json!([k, {"goto": {"target": c}}]))
                .collect();
            batch.push(rule(
                &svc_chain,
                vec![json!({"vmap": {
                    "key": {"numgen": {"mode": "random", "mod": ep_chains.len(), "offset": 0}},
                    "data": {"set": map}
                }})],
                None,
            ));
        }
        for (k, (ip, port)) in f.backends.iter().enumerate() {
            let mut expr = Vec::new();
            if f.affinity.is_some() {
                expr.push(json!({"set": {"op": "update", "elem": field("ip", "saddr"), "set": format!("@{}", sets[k])}}));
            }
            expr.push(eq(json!({"meta": {"key": "l4proto"}}), json!(f.protocol)));
            expr.push(json!({"dnat": {"addr": ip.to_string(), "port": port}}));
            batch.push(rule(
                &ep_chains[k],
                expr,
                Some(&format!("{} → {ip}:{port}", f.id)),
            ));
        }
    }
    // No ready endpoint: refuse the connection rather than let it time out.
    for f in unserved {
        let tcp = f.protocol == "tcp";
        let dport = |port: u16| eq(field(&f.protocol, "dport"), json!(port));
        if let Some(ip) = f.cluster_ip {
            for chain in ["reject_forward", "reject_output"] {
                batch.push(rule(
                    chain,
                    vec![
                        eq(field("ip", "daddr"), json!(ip.to_string())),
                        dport(f.port),
                        reject(tcp),
                    ],
                    Some(&format!("{} has no ready endpoints", f.id)),
                ));
            }
        }
        for ip in &f.external_ips {
            for chain in ["reject_forward", "reject_output", "reject_input"] {
                batch.push(rule(
                    chain,
                    vec![
                        eq(field("ip", "daddr"), json!(ip.to_string())),
                        dport(f.port),
                        reject(tcp),
                    ],
                    Some(&format!("{} has no ready endpoints", f.id)),
                ));
            }
        }
        for port in f.node_port.into_iter().chain(f.on_host.then_some(f.port)) {
            batch.push(rule(
                "reject_input",
                vec![local_daddr(), dport(port), reject(tcp)],
                Some(&format!("{} has no ready endpoints", f.id)),
            ));
        }
    }
    // Anything else to the Service CIDR (a port no Service has) is refused too.
    for chain in ["reject_forward", "reject_output"] {
        batch.push(rule(
            chain,
            vec![
                eq(field("ip", "daddr"), prefix(service_cidr)),
                eq(json!({"meta": {"key": "l4proto"}}), json!("tcp")),
                reject(true),
            ],
            None,
        ));
        batch.push(rule(
            chain,
            vec![
                eq(field("ip", "daddr"), prefix(service_cidr)),
                reject(false),
            ],
            None,
        ));
    }
    batch
}

/// What the proxy needs from the network's configuration.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// `<nftablesTable>_svc`.
    pub table: String,
    pub pod_cidr: Ipv4Net,
    pub service_cidr: Ipv4Net,
}

impl ProxyConfig {
    pub fn new(config: &super::NetworkConfig) -> ProxyConfig {
        ProxyConfig {
            table: table_name(&config.nft_table),
            pod_cidr: config.pod_cidr,
            service_cidr: config.service_cidr,
        }
    }
}

/// The Services' table next to berth's table `base`.
pub fn table_name(base: &str) -> String {
    format!("{base}_svc")
}

/// What one pass reads from the store.
struct Snapshot {
    services: Vec<Value>,
    slices: Vec<Value>,
    node_ips: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("{0} is not registered")]
    Unregistered(&'static str),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

fn read(store: &Store, node: &str) -> Result<Snapshot, ReadError> {
    let svc_rt = registry::by_kind("v1", "Service").ok_or(ReadError::Unregistered("Service"))?;
    let slice_rt = registry::by_kind("discovery.k8s.io/v1", "EndpointSlice")
        .ok_or(ReadError::Unregistered("EndpointSlice"))?;
    let node_rt = registry::by_kind("v1", "Node").ok_or(ReadError::Unregistered("Node"))?;
    let (services, _) = store.list(svc_rt, None)?;
    let (slices, _) = store.list(slice_rt, None)?;
    let node_ips = store
        .get(node_rt, None, node)
        .ok()
        .and_then(|n| {
            n.pointer("/status/addresses")
                .and_then(Value::as_array)
                .cloned()
        })
        .unwrap_or_default()
        .iter()
        .filter(|a| a["type"] == "InternalIP")
        .filter_map(|a| a["address"].as_str().map(str::to_string))
        .collect();
    Ok(Snapshot {
        services,
        slices,
        node_ips,
    })
}

/// The `status.loadBalancer` a Service should have: the node's addresses for a
/// LoadBalancer, nothing otherwise.
pub fn load_balancer_status(svc: &Value, node_ips: &[String]) -> Value {
    if s(svc, "/spec/type") == "LoadBalancer" && !node_ips.is_empty() {
        let ingress: Vec<Value> = node_ips.iter().map(|ip| json!({"ip": ip})).collect();
        json!({"ingress": ingress})
    } else {
        json!({})
    }
}

/// Writes `status.loadBalancer` of the Services whose status differs.
fn write_statuses(store: &Store, snap: &Snapshot) {
    let Some(rt) = registry::by_kind("v1", "Service") else {
        return;
    };
    for svc in &snap.services {
        let wanted = load_balancer_status(svc, &snap.node_ips);
        let current = svc
            .pointer("/status/loadBalancer")
            .cloned()
            .unwrap_or(json!({}));
        if current == wanted {
            continue;
        }
        let (ns, name) = (meta::namespace(svc), meta::name(svc));
        let result = store.update_with(rt, Some(ns), name, Subresource::Status, false, |cur| {
            let mut next = cur.clone();
            next["status"]["loadBalancer"] = wanted.clone();
            Ok(next)
        });
        if let Err(e) = result {
            tracing::warn!(namespace = ns, service = name, error = %e, "cannot write the load balancer status");
        }
    }
}

fn apply_batch(batch: &Value) -> Result<(), NetworkError> {
    super::nft::apply(batch)
}

/// Keeps the table equal to the Services and EndpointSlices in `store` until shutdown.
pub async fn run(
    store: Arc<Store>,
    config: ProxyConfig,
    node: String,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut changes = store.subscribe();
    // What the kernel has: the frontends and the batch that made them.
    let mut applied: Option<(Vec<Frontend>, Declared)> = None;
    loop {
        let (s, n) = (store.clone(), node.clone());
        let snap = match tokio::task::spawn_blocking(move || read(&s, &n)).await {
            Ok(Ok(snap)) => Some(snap),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "service proxy cannot read Services");
                None
            }
            Err(_) => None,
        };
        let mut retry = false;
        if let Some(snap) = snap {
            let fronts = frontends(&snap.services, &snap.slices);
            if applied.as_ref().map(|(f, _)| f) != Some(&fronts) {
                let (batch, names) = ruleset(
                    &config.table,
                    config.pod_cidr,
                    config.service_cidr,
                    &fronts,
                    applied.as_ref().map(|(_, d)| d),
                );
                match tokio::task::spawn_blocking(move || apply_batch(&batch)).await {
                    Ok(Ok(())) => {
                        tracing::debug!(table = %config.table, frontends = fronts.len(), "service rules applied");
                        applied = Some((fronts, names));
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(table = %config.table, error = %e, "cannot apply the service rules; retrying");
                        // Start over from an empty table next time.
                        applied = None;
                        retry = true;
                    }
                    Err(_) => retry = true,
                }
            }
            let s = store.clone();
            let _ = tokio::task::spawn_blocking(move || write_statuses(&s, &snap)).await;
        } else {
            retry = true;
        }
        // Wait for a change that matters (or a periodic pass), then let a burst settle.
        let period = if retry {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(60)
        };
        let relevant = |c: &crate::store::Change| {
            matches!(c.resource.plural, "services" | "endpointslices" | "nodes")
        };
        let settle = Duration::from_millis(50);
        if !crate::store::wait_for_change(&mut changes, &mut shutdown, relevant, period, settle)
            .await
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, spec: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec})
    }

    fn slice(service: &str, ports: Value, endpoints: Value) -> Value {
        json!({
            "metadata": {"name": format!("{service}-x"), "namespace": "default",
                "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "ports": ports, "endpoints": endpoints
        })
    }

    fn ep(ip: &str, ready: bool, terminating: bool) -> Value {
        json!({"addresses": [ip], "conditions": {"ready": ready, "serving": ready, "terminating": terminating}})
    }

    #[test]
    fn only_ready_endpoints_back_each_port() {
        let services = vec![
            svc(
                "web",
                json!({"type": "NodePort", "clusterIP": "10.96.0.10", "externalIPs": ["192.0.2.7"], "ports": [
                    {"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080},
                    {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}]}),
            ),
            svc(
                "headless",
                json!({"clusterIP": "None", "ports": [{"port": 80}]}),
            ),
            svc(
                "other",
                json!({"type": "ClusterIP", "clusterIP": "10.96.0.11", "ports": [{"port": 80, "protocol": "TCP"}]}),
            ),
        ];
        let slices = vec![
            // Two pods whose named port resolves to 8080, one to 9090: two slices.
            slice(
                "web",
                json!([{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "dns", "port": 5353, "protocol": "UDP"}]),
                json!([
                    ep("10.244.0.5", true, false),
                    ep("10.244.0.6", false, false),
                    ep("10.244.0.7", true, true)
                ]),
            ),
            slice(
                "web",
                json!([{"name": "http", "port": 9090, "protocol": "TCP"}]),
                json!([ep("10.244.0.8", true, false), {"addresses": ["10.244.0.9"]}]),
            ),
            slice(
                "nothing",
                json!([{"name": "", "port": 1, "protocol": "TCP"}]),
                json!([ep("10.244.0.1", true, false)]),
            ),
        ];
        let f = frontends(&services, &slices);
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(f[0].id, "default/web:http");
        assert_eq!(f[0].protocol, "tcp");
        assert_eq!(f[0].node_port, Some(30080));
        assert_eq!(
            f[0].backends,
            vec![
                ("10.244.0.5".parse().unwrap(), 8080),
                ("10.244.0.8".parse().unwrap(), 9090),
                ("10.244.0.9".parse().unwrap(), 9090)
            ]
        );
        assert_eq!(f[1].protocol, "udp");
        assert_eq!(f[1].backends, vec![("10.244.0.5".parse().unwrap(), 5353)]);
        assert_eq!(f[2].id, "default/other:80");
        assert!(f[2].backends.is_empty());
        assert!(!f[0].on_host);
        assert_eq!(f[0].external_ips, vec![Ipv4Addr::new(192, 0, 2, 7)]);
    }

    fn text(batch: &Value) -> String {
        batch.to_string()
    }

    #[test]
    fn rules_spread_stick_and_reject() {
        let pod: Ipv4Net = "10.244.0.0/16".parse().unwrap();
        let svc_cidr: Ipv4Net = "10.96.0.0/16".parse().unwrap();
        let fronts = vec![
            Frontend {
                id: "default/web:80".into(),
                protocol: "tcp".into(),
                cluster_ip: Some("10.96.0.10".parse().unwrap()),
                port: 80,
                node_port: Some(30080),
                on_host: true,
                external_ips: vec!["192.0.2.7".parse().unwrap()],
                affinity: Some(60),
                backends: vec![
                    ("10.244.0.5".parse().unwrap(), 8080),
                    ("10.244.0.6".parse().unwrap(), 8080),
                ],
            },
            Frontend {
                id: "default/empty:53".into(),
                protocol: "udp".into(),
                cluster_ip: Some("10.96.0.11".parse().unwrap()),
                port: 53,
                node_port: None,
                on_host: false,
                external_ips: vec![],
                affinity: None,
                backends: vec![],
            },
        ];
        let (b, names) = ruleset("berth_svc", pod, svc_cidr, &fronts, None);
        let t = text(&b);
        let items = b["nftables"].as_array().unwrap();
        // Rebuilt whole: created, deleted and created again first.
        assert!(items[1].get("delete").is_some());
        assert!(
            t.contains(r#""numgen":{"mod":2,"mode":"random","offset":0}"#),
            "{t}"
        );
        assert!(t.contains(r#""dnat":{"addr":"10.244.0.6","port":8080}"#));
        let sets: Vec<&String> = names
            .iter()
            .filter(|(k, _)| *k == "set")
            .map(|(_, n)| n)
            .collect();
        assert_eq!(sets.len(), 2, "{names:?}");
        assert!(sets.iter().all(|n| n.starts_with("aff_")) && t.contains(r#""timeout":60"#));
        assert!(t.contains(r#""op":"update""#));
        assert!(t.contains("default/web:80 node port"));
        assert!(t.contains("default/web:80 load balancer"));
        assert!(t.contains("default/web:80 external IP") && t.contains("192.0.2.7"));
        // The empty UDP service is refused with ICMP, never DNATed.
        assert!(t.contains("default/empty:53 has no ready endpoints"));
        assert!(t.contains(r#""expr":"host-unreachable""#));
        assert_eq!(
            names
                .iter()
                .filter(|(k, n)| *k == "chain" && n.starts_with("svc_"))
                .count(),
            1,
            "{names:?}"
        );
        // Hairpin masquerade between pods.
        assert!(t.contains(r#""right":"dnat""#) && t.contains(r#""addr":"10.244.0.0","len":16"#));

        // A rebuild flushes, keeps the sets of endpoints still there and deletes the rest.
        let fewer: Vec<Frontend> = fronts[..1]
            .iter()
            .cloned()
            .map(|mut f| {
                f.backends.truncate(1);
                f
            })
            .collect();
        let (next, kept) = ruleset("berth_svc", pod, svc_cidr, &fewer, Some(&names));
        let items = next["nftables"].as_array().unwrap();
        assert!(items[1].get("flush").is_some());
        let deleted: Vec<String> = items
            .iter()
            .filter_map(|i| i.get("delete"))
            .map(|d| d.to_string())
            .collect();
        assert_eq!(deleted.len(), 2, "one ep chain, one set: {deleted:?}");
        assert!(
            kept.contains(&("set", sets[0].clone())) || kept.contains(&("set", sets[1].clone()))
        );
        assert!(!text(&next).contains("numgen"));
        // The kept set is not added again (nft refuses to re-add a dynamic set).
        assert!(
            !items.iter().any(|i| i.pointer("/add/set").is_some()),
            "{next}"
        );
    }

    #[test]
    fn load_balancers_get_the_node_addresses() {
        let lb = svc("lb", json!({"type": "LoadBalancer"}));
        assert_eq!(
            load_balancer_status(&lb, &["192.168.1.10".into()]),
            json!({"ingress": [{"ip": "192.168.1.10"}]})
        );
        assert_eq!(
            load_balancer_status(&svc("c", json!({"type": "ClusterIP"})), &["1.2.3.4".into()]),
            json!({})
        );
    }
}
