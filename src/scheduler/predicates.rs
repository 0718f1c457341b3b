//! The fit predicates and scores of Kubernetes' default scheduler profile, as pure
//! functions of a pod, a node and the pods already on it: NodeUnschedulable, NodeName,
//! NodeAffinity (nodeSelector and required/preferred node affinity), TaintToleration,
//! NodePorts, NodeResourcesFit and InterPodAffinity (required terms; any topology key the
//! node carries as a label). Each failure is the reason text Kubernetes prints in
//! `0/N nodes are available: …`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodAffinityTerm, Taint, Toleration,
};

use crate::api::selector::LabelSelector;
use crate::api::validation::parse_quantity;

/// The taint the node lifecycle puts on a cordoned node; `spec.unschedulable` blocks pods
/// that do not tolerate it.
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// Why a node does not fit (Kubernetes' wording, used as a key for counting).
pub type Reason = String;

/// A pod already placed on a node (bound, or assumed earlier in the same pass).
#[derive(Debug, Clone)]
pub struct Placed {
    pub pod: Pod,
    pub node: String,
}

fn labels_of(pod: &Pod) -> BTreeMap<String, String> {
    pod.metadata.labels.clone().unwrap_or_default()
}

fn node_labels(node: &Node) -> BTreeMap<String, String> {
    node.metadata.labels.clone().unwrap_or_default()
}

/// A pod that no longer holds resources.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Requested amounts in milli-units per resource name: the larger of the sum over app
/// containers and the largest init container, plus the pod overhead (Kubernetes'
/// effective request). A container with a limit and no request requests its limit.
pub fn pod_requests(pod: &Pod) -> BTreeMap<String, i128> {
    let Some(spec) = &pod.spec else {
        return BTreeMap::new();
    };
    let container_requests = |c: &k8s_openapi::api::core::v1::Container| {
        let mut out: BTreeMap<String, i128> = BTreeMap::new();
        if let Some(r) = &c.resources {
            for (k, q) in r.limits.iter().flatten() {
                if let Ok(v) = parse_quantity(&q.0) {
                    out.insert(k.clone(), v.milli());
                }
            }
            for (k, q) in r.requests.iter().flatten() {
                if let Ok(v) = parse_quantity(&q.0) {
                    out.insert(k.clone(), v.milli());
                }
            }
        }
        out
    };
    let mut sum: BTreeMap<String, i128> = BTreeMap::new();
    for c in &spec.containers {
        for (k, v) in container_requests(c) {
            *sum.entry(k).or_default() += v;
        }
    }
    for c in spec.init_containers.iter().flatten() {
        let sidecar = c.restart_policy.as_deref() == Some("Always");
        for (k, v) in container_requests(c) {
            let e = sum.entry(k).or_default();
            if sidecar {
                *e += v;
            } else {
                *e = (*e).max(v);
            }
        }
    }
    for (k, q) in spec.overhead.iter().flatten() {
        if let Ok(v) = parse_quantity(&q.0) {
            *sum.entry(k.clone()).or_default() += v.milli();
        }
    }
    sum
}

/// What the node offers, in milli-units.
pub fn allocatable(node: &Node) -> BTreeMap<String, i128> {
    node.status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .map(|a| {
            a.iter()
                .filter_map(|(k, q)| parse_quantity(&q.0).ok().map(|v| (k.clone(), v.milli())))
                .collect()
        })
        .unwrap_or_default()
}

fn requirement_matches(req: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = req.values.as_deref().unwrap_or_default();
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => !value.is_some_and(|v| values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if req.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// A node selector term: all its expressions and fields match (an empty term matches
/// nothing, as in Kubernetes).
pub fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let labels = node_labels(node);
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let name = node.metadata.name.as_deref();
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, name))
}

fn node_affinity_fits(pod: &Pod, node: &Node) -> bool {
    let Some(spec) = &pod.spec else { return true };
    let labels = node_labels(node);
    if let Some(sel) = &spec.node_selector
        && sel.iter().any(|(k, v)| labels.get(k) != Some(v))
    {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        Some(sel) => sel
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, node)),
        None => true,
    }
}

/// Whether `toleration` tolerates `taint` (Kubernetes' `ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref()
        && !effect.is_empty()
        && effect != taint.effect
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            // An empty key with Equal is invalid in Kubernetes; it tolerates nothing.
            !key.is_empty()
                && toleration.value.as_deref().unwrap_or_default()
                    == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

fn untolerated_taint<'a>(pod: &Pod, node: &'a Node) -> Option<&'a Taint> {
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default();
    taints.iter().find(|t| {
        matches!(t.effect.as_str(), "NoSchedule" | "NoExecute")
            && !tolerations(pod).iter().any(|tol| tolerates(tol, t))
    })
}

/// (protocol, hostIP, hostPort) of every container port with a host port.
fn host_ports(pod: &Pod) -> Vec<(String, String, i32)> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| {
            (
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                p.host_ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .unwrap_or_else(|| "0.0.0.0".into()),
                p.host_port.unwrap_or(0),
            )
        })
        .collect()
}

fn ports_conflict(a: &(String, String, i32), b: &(String, String, i32)) -> bool {
    a.0 == b.0 && a.2 == b.2 && (a.1 == b.1 || a.1 == "0.0.0.0" || b.1 == "0.0.0.0")
}

fn namespaces_of(term: &PodAffinityTerm, owner: &Pod) -> Vec<String> {
    match &term.namespaces {
        Some(n) if !n.is_empty() => n.clone(),
        _ => vec![owner.metadata.namespace.clone().unwrap_or_default()],
    }
}

/// Whether `other` is selected by `term` of `owner` (label selector and namespaces; a
/// namespaceSelector is honoured only when empty = all namespaces).
fn term_selects(term: &PodAffinityTerm, owner: &Pod, other: &Pod) -> bool {
    let Some(sel) = &term.label_selector else {
        return false;
    };
    let Ok(sel) = LabelSelector::from_k8s(sel) else {
        return false;
    };
    let all_namespaces = term
        .namespace_selector
        .as_ref()
        .is_some_and(|s| s.match_labels.is_none() && s.match_expressions.is_none());
    let ns_ok = all_namespaces
        || namespaces_of(term, owner)
            .iter()
            .any(|n| Some(n) == other.metadata.namespace.as_ref());
    ns_ok && sel.matches(&labels_of(other))
}

/// Nodes of the same topology domain as `node` for `key`: `None` when `node` lacks it.
fn same_domain(key: &str, node: &Node, other_node: Option<&Node>) -> Option<bool> {
    let value = node_labels(node).get(key).cloned()?;
    Some(other_node.is_some_and(|o| node_labels(o).get(key) == Some(&value)))
}

/// The inter-pod affinity check; `None` when it fits, else the reason.
fn inter_pod_affinity(
    pod: &Pod,
    node: &Node,
    placed: &[Placed],
    nodes: &BTreeMap<String, Node>,
) -> Option<Reason> {
    let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
    let node_of = |p: &Placed| nodes.get(&p.node);
    let empty = k8s_openapi::api::core::v1::Affinity::default();
    let affinity = affinity.unwrap_or(&empty);
    let required = affinity
        .pod_affinity
        .as_ref()
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or_default();
    for term in required {
        let matching: Vec<&Placed> = placed
            .iter()
            .filter(|o| term_selects(term, pod, &o.pod))
            .collect();
        let satisfied = matching
            .iter()
            .any(|o| same_domain(&term.topology_key, node, node_of(o)) == Some(true));
        // Kubernetes lets the first pod of a group that selects itself in.
        let first_of_its_kind = matching.is_empty()
            && term_selects(term, pod, pod)
            && node_labels(node).contains_key(&term.topology_key);
        if !satisfied && !first_of_its_kind {
            return Some("node(s) didn't match pod affinity rules".into());
        }
    }
    let anti = affinity
        .pod_anti_affinity
        .as_ref()
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_deref()
        })
        .unwrap_or_default();
    for term in anti {
        if placed.iter().any(|o| {
            term_selects(term, pod, &o.pod)
                && same_domain(&term.topology_key, node, node_of(o)) == Some(true)
        }) {
            return Some("node(s) didn't match pod anti-affinity rules".into());
        }
    }
    // Existing pods' required anti-affinity against this pod.
    for other in placed {
        let terms = other
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_deref()
            })
            .unwrap_or_default();
        for term in terms {
            if term_selects(term, &other.pod, pod)
                && same_domain(&term.topology_key, node, node_of(other)) == Some(true)
            {
                return Some("node(s) didn't satisfy existing pods anti-affinity rules".into());
            }
        }
    }
    None
}

/// Every reason `node` cannot take `pod`; empty when it fits. `placed` holds every
/// non-terminal pod bound to any node (and those assumed in this pass).
pub fn fit(
    pod: &Pod,
    node: &Node,
    placed: &[Placed],
    nodes: &BTreeMap<String, Node>,
) -> Vec<Reason> {
    let mut reasons = Vec::new();
    let node_name = node.metadata.name.clone().unwrap_or_default();
    let unschedulable = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    if unschedulable {
        let cordon = Taint {
            key: UNSCHEDULABLE_TAINT.into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if !tolerations(pod).iter().any(|t| tolerates(t, &cordon)) {
            reasons.push("node(s) were unschedulable".into());
        }
    }
    if !node_affinity_fits(pod, node) {
        reasons.push("node(s) didn't match Pod's node affinity/selector".into());
    }
    if let Some(t) = untolerated_taint(pod, node) {
        reasons.push(format!(
            "node(s) had untolerated taint {{{}: {}}}",
            t.key,
            t.value.as_deref().unwrap_or_default()
        ));
    }
    let on_node: Vec<&Placed> = placed.iter().filter(|p| p.node == node_name).collect();
    let wanted_ports = host_ports(pod);
    if on_node.iter().any(|p| {
        host_ports(&p.pod)
            .iter()
            .any(|a| wanted_ports.iter().any(|b| ports_conflict(a, b)))
    }) {
        reasons.push("node(s) didn't have free ports for the requested pod ports".into());
    }
    let alloc = allocatable(node);
    let max_pods = alloc.get("pods").copied().unwrap_or(110_000) / 1000;
    if on_node.len() as i128 + 1 > max_pods {
        reasons.push("Too many pods".into());
    }
    let mut used: BTreeMap<String, i128> = BTreeMap::new();
    for p in &on_node {
        for (k, v) in pod_requests(&p.pod) {
            *used.entry(k).or_default() += v;
        }
    }
    for (resource, want) in pod_requests(pod) {
        if want <= 0 || resource == "pods" {
            continue;
        }
        let have = alloc.get(&resource).copied().unwrap_or(0);
        if want > have - used.get(&resource).copied().unwrap_or(0) {
            reasons.push(format!("Insufficient {resource}"));
        }
    }
    if let Some(r) = inter_pod_affinity(pod, node, placed, nodes) {
        reasons.push(r);
    }
    reasons
}

/// Preference of a fitting node (higher is better): preferred node affinity weights,
/// minus PreferNoSchedule taints not tolerated, then the share of cpu and memory left.
pub fn score(pod: &Pod, node: &Node, placed: &[Placed]) -> i64 {
    let mut score = 0i64;
    if let Some(prefs) = pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })
    {
        for p in prefs {
            if term_matches(&p.preference, node) {
                score += i64::from(p.weight) * 100;
            }
        }
    }
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default();
    for t in taints.iter().filter(|t| t.effect == "PreferNoSchedule") {
        if !tolerations(pod).iter().any(|tol| tolerates(tol, t)) {
            score -= 1000;
        }
    }
    let name = node.metadata.name.clone().unwrap_or_default();
    let alloc = allocatable(node);
    let mut used: BTreeMap<String, i128> = BTreeMap::new();
    for p in placed.iter().filter(|p| p.node == name) {
        for (k, v) in pod_requests(&p.pod) {
            *used.entry(k).or_default() += v;
        }
    }
    for r in ["cpu", "memory"] {
        let have = alloc.get(r).copied().unwrap_or(0);
        if have > 0 {
            let free = have - used.get(r).copied().unwrap_or(0);
            score += i64::try_from(free * 50 / have).unwrap_or(0);
        }
    }
    score
}

/// Kubernetes' summary: `0/3 nodes are available: 1 Insufficient cpu, 2 node(s) were
/// unschedulable.` (reasons counted over nodes, sorted).
pub fn unschedulable_message(total_nodes: usize, per_node: &[Vec<Reason>]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for reasons in per_node {
        for r in reasons {
            *counts.entry(r.as_str()).or_default() += 1;
        }
    }
    if counts.is_empty() {
        return format!("0/{total_nodes} nodes are available.");
    }
    let parts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    format!("0/{total_nodes} nodes are available: {}.", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).unwrap()
    }

    fn small_node() -> Node {
        node(json!({
            "metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1", "disk": "ssd"}},
            "status": {"allocatable": {"cpu": "2", "memory": "1Gi", "pods": "3"}}
        }))
    }

    fn nodes(n: &Node) -> BTreeMap<String, Node> {
        BTreeMap::from([(n.metadata.name.clone().unwrap(), n.clone())])
    }

    fn placed(p: Pod) -> Placed {
        Placed {
            pod: p,
            node: "n1".into(),
        }
    }

    fn with_requests(name: &str, cpu: &str, mem: &str) -> Pod {
        pod(
            json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"containers": [
            {"name": "c", "image": "i", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}}),
        )
    }

    #[test]
    fn resources_count_what_is_already_placed() {
        let n = small_node();
        let big = with_requests("big", "1500m", "512Mi");
        assert!(fit(&big, &n, &[], &nodes(&n)).is_empty());
        let second = with_requests("second", "1", "600Mi");
        let reasons = fit(&second, &n, &[placed(big)], &nodes(&n));
        assert_eq!(reasons, vec!["Insufficient cpu", "Insufficient memory"]);
        assert_eq!(
            unschedulable_message(1, &[reasons]),
            "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."
        );
    }

    #[test]
    fn requests_default_to_limits_and_init_containers_take_the_max() {
        let p = pod(json!({"spec": {
            "initContainers": [{"name": "i", "image": "x", "resources": {"requests": {"memory": "300Mi"}}}],
            "containers": [
                {"name": "a", "image": "x", "resources": {"limits": {"memory": "100Mi", "cpu": "1"}}},
                {"name": "b", "image": "x", "resources": {"requests": {"memory": "100Mi"}}}]}}));
        let r = pod_requests(&p);
        assert_eq!(r["memory"], 300 * 1024 * 1024 * 1000);
        assert_eq!(r["cpu"], 1000);
    }

    #[test]
    fn too_many_pods() {
        let n = small_node();
        let existing: Vec<Placed> = (0..3)
            .map(|i| placed(with_requests(&format!("p{i}"), "1m", "1Mi")))
            .collect();
        let reasons = fit(&with_requests("x", "1m", "1Mi"), &n, &existing, &nodes(&n));
        assert_eq!(reasons, vec!["Too many pods"]);
    }

    #[test]
    fn node_selector_and_required_affinity() {
        let n = small_node();
        let sel = pod(json!({"spec": {"nodeSelector": {"disk": "hdd"}, "containers": []}}));
        assert_eq!(
            fit(&sel, &n, &[], &nodes(&n)),
            vec!["node(s) didn't match Pod's node affinity/selector"]
        );
        let aff = pod(
            json!({"spec": {"containers": [], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["nvme"]}]},
                {"matchExpressions": [{"key": "disk", "operator": "Exists"}],
                 "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}}}),
        );
        assert!(fit(&aff, &n, &[], &nodes(&n)).is_empty());
        let gt = pod(
            json!({"spec": {"containers": [], "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disk", "operator": "Gt", "values": ["3"]}]}]}}}}}),
        );
        assert!(!fit(&gt, &n, &[], &nodes(&n)).is_empty());
    }

    #[test]
    fn taints_need_tolerations_and_cordon_is_a_taint() {
        let mut n = small_node();
        n.spec = Some(
            serde_json::from_value(json!({"taints": [
            {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
            {"key": "soft", "effect": "PreferNoSchedule"}]}))
            .unwrap(),
        );
        let plain = pod(json!({"spec": {"containers": []}}));
        assert_eq!(
            fit(&plain, &n, &[], &nodes(&n)),
            vec!["node(s) had untolerated taint {dedicated: gpu}"]
        );
        let tolerant = pod(json!({"spec": {"containers": [], "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]}}));
        assert!(fit(&tolerant, &n, &[], &nodes(&n)).is_empty());
        let wrong_value = pod(json!({"spec": {"containers": [], "tolerations": [
            {"key": "dedicated", "value": "cpu"}]}}));
        assert!(!fit(&wrong_value, &n, &[], &nodes(&n)).is_empty());
        let everything =
            pod(json!({"spec": {"containers": [], "tolerations": [{"operator": "Exists"}]}}));
        assert!(fit(&everything, &n, &[], &nodes(&n)).is_empty());

        let mut cordoned = small_node();
        cordoned.spec = Some(serde_json::from_value(json!({"unschedulable": true})).unwrap());
        assert_eq!(
            fit(&plain, &cordoned, &[], &nodes(&cordoned)),
            vec!["node(s) were unschedulable"]
        );
        let ds_like = pod(json!({"spec": {"containers": [], "tolerations": [
            {"key": UNSCHEDULABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"}]}}));
        assert!(fit(&ds_like, &cordoned, &[], &nodes(&cordoned)).is_empty());
    }

    #[test]
    fn host_ports_conflict_by_protocol_and_address() {
        let n = small_node();
        let web = |name: &str, port: i32, proto: &str, ip: &str| {
            pod(
                json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "i",
                "ports": [{"containerPort": 80, "hostPort": port, "protocol": proto, "hostIP": ip}]}]}}),
            )
        };
        let existing = [placed(web("a", 8080, "TCP", ""))];
        assert_eq!(
            fit(
                &web("b", 8080, "TCP", "127.0.0.1"),
                &n,
                &existing,
                &nodes(&n)
            ),
            vec!["node(s) didn't have free ports for the requested pod ports"]
        );
        assert!(fit(&web("c", 8080, "UDP", ""), &n, &existing, &nodes(&n)).is_empty());
        assert!(fit(&web("d", 8081, "TCP", ""), &n, &existing, &nodes(&n)).is_empty());
    }

    #[test]
    fn anti_affinity_on_hostname_allows_one_per_node() {
        let n = small_node();
        let replica = |name: &str| {
            pod(
                json!({"metadata": {"name": name, "namespace": "default", "labels": {"app": "db"}},
                "spec": {"containers": [], "affinity": {"podAntiAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": [{
                        "labelSelector": {"matchLabels": {"app": "db"}},
                        "topologyKey": "kubernetes.io/hostname"}]}}}}),
            )
        };
        assert!(fit(&replica("db-0"), &n, &[], &nodes(&n)).is_empty());
        let existing = [placed(replica("db-0"))];
        let reasons = fit(&replica("db-1"), &n, &existing, &nodes(&n));
        assert_eq!(
            reasons,
            vec!["node(s) didn't match pod anti-affinity rules"]
        );
        // A pod without anti-affinity of its own is kept out by the existing pod's rule.
        let plain = pod(
            json!({"metadata": {"name": "x", "namespace": "default", "labels": {"app": "db"}},
            "spec": {"containers": []}}),
        );
        assert_eq!(
            fit(&plain, &n, &existing, &nodes(&n)),
            vec!["node(s) didn't satisfy existing pods anti-affinity rules"]
        );
        // Another namespace is not selected.
        let other_ns = pod(
            json!({"metadata": {"name": "x", "namespace": "other", "labels": {"app": "db"}},
            "spec": {"containers": []}}),
        );
        assert!(fit(&other_ns, &n, &existing, &nodes(&n)).is_empty());
    }

    #[test]
    fn pod_affinity_needs_a_partner_except_for_the_first() {
        let n = small_node();
        let follower = pod(
            json!({"metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"containers": [], "affinity": {"podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"app": "cache"}},
                    "topologyKey": "kubernetes.io/hostname"}]}}}}),
        );
        assert_eq!(
            fit(&follower, &n, &[], &nodes(&n)),
            vec!["node(s) didn't match pod affinity rules"]
        );
        let cache = pod(
            json!({"metadata": {"name": "cache", "namespace": "default", "labels": {"app": "cache"}},
            "spec": {"containers": []}}),
        );
        assert!(fit(&follower, &n, &[placed(cache)], &nodes(&n)).is_empty());
        let self_selecting = pod(
            json!({"metadata": {"name": "c0", "namespace": "default", "labels": {"app": "cache"}},
            "spec": {"containers": [], "affinity": {"podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"app": "cache"}},
                    "topologyKey": "kubernetes.io/hostname"}]}}}}),
        );
        assert!(fit(&self_selecting, &n, &[], &nodes(&n)).is_empty());
    }

    #[test]
    fn preferred_affinity_and_soft_taints_rank_nodes() {
        let a = small_node();
        let mut b = small_node();
        b.metadata.name = Some("n2".into());
        b.metadata.labels = Some(BTreeMap::from([("disk".into(), "hdd".into())]));
        let p = pod(
            json!({"spec": {"containers": [], "affinity": {"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10,
                "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}}}),
        );
        assert!(score(&p, &a, &[]) > score(&p, &b, &[]));
    }
}
