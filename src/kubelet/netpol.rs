//! Keeps the node's NetworkPolicy table ([`crate::network::policy`]) equal to the store:
//! rebuilt from NetworkPolicies, Pods (labels, addresses, phase, ports) and Namespaces
//! (labels) after each change that matters, with bursts coalesced into one rebuild, and
//! applied only when the result differs from what the kernel has.
//!
//! On shutdown the table stays: the pods keep running and stay policed; the next start
//! rebuilds it (and `Network::remove_node_network` removes it with the node's network).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use crate::api::{meta, registry, watch::EventType};
use crate::network::policy;
use crate::store::{Change, Store};

/// How long a burst of changes may keep coming before the rebuild.
const QUIET: Duration = Duration::from_millis(100);
/// The longest a rebuild waits for a burst to end.
const MAX_DELAY: Duration = Duration::from_millis(500);
/// Full pass without changes (covers a failed apply and anything missed).
const RESYNC: Duration = Duration::from_secs(60);
/// Retry after a failed apply.
const RETRY: Duration = Duration::from_secs(5);

/// Runs until `shutdown`.
pub async fn run(
    store: Arc<Store>,
    network: crate::network::NetworkConfig,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut changes = store.subscribe();
    // What the kernel has (None: unknown, apply whatever comes next).
    let mut applied: Option<String> = None;
    loop {
        let s = store.clone();
        let cidr = network.pod_cidr;
        let table = network.nft_table.clone();
        let batch = tokio::task::spawn_blocking(move || {
            let rules = desired(&s, cidr)?;
            Some((policy::ruleset(&table, &rules), rules.len()))
        })
        .await
        .ok()
        .flatten();
        let mut wait = RESYNC;
        if let Some((batch, policed)) = batch {
            let text = batch.to_string();
            if applied.as_deref() != Some(text.as_str()) {
                let result = tokio::task::spawn_blocking(move || policy::apply(&batch)).await;
                match result {
                    Ok(Ok(())) => {
                        tracing::info!(table = %policy::table_name(&network.nft_table), policed_pods = policed, "network policies applied");
                        applied = Some(text);
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cannot apply the network policies; retrying");
                        applied = None;
                        wait = RETRY;
                    }
                    Err(_) => return,
                }
            }
        } else {
            wait = RETRY;
        }
        // Wait for a change that matters, then for the burst to end.
        let resync = tokio::time::sleep(wait);
        tokio::pin!(resync);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = &mut resync => break,
                got = changes.recv() => match got {
                    Ok(c) if matters(&c) => {
                        if !coalesce(&mut changes, &mut shutdown).await {
                            return;
                        }
                        break;
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }
}

/// Drains changes until `QUIET` passes without one (at most `MAX_DELAY`); false on
/// shutdown or a closed store.
async fn coalesce(
    changes: &mut tokio::sync::broadcast::Receiver<Arc<Change>>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    let deadline = tokio::time::Instant::now() + MAX_DELAY;
    loop {
        let quiet = tokio::time::sleep(
            QUIET.min(deadline.saturating_duration_since(tokio::time::Instant::now())),
        );
        tokio::select! {
            _ = shutdown.changed() => return false,
            _ = quiet => return true,
            got = changes.recv() => match got {
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return false,
            },
        }
    }
}

/// Whether a change can alter the rules: any NetworkPolicy or Namespace change; a Pod
/// change that touches its labels, address, phase, ports or network mode.
fn matters(c: &Change) -> bool {
    match c.resource.kind {
        "NetworkPolicy" | "Namespace" => true,
        "Pod" => match (&c.kind, &c.previous) {
            (EventType::Modified, Some(old)) => pod_view(old) != pod_view(&c.object),
            _ => true,
        },
        _ => false,
    }
}

fn pod_view(pod: &Value) -> (Value, &str, &str, Option<&Value>, Option<&Value>) {
    (
        Value::Object(
            meta::labels(pod)
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        ),
        meta::str_at(pod, "/status/podIP"),
        meta::str_at(pod, "/status/phase"),
        pod.pointer("/spec/containers"),
        pod.pointer("/spec/hostNetwork"),
    )
}

/// The rules the store asks for (`None` when the store cannot be read).
fn desired(store: &Store, cidr: crate::network::Ipv4Net) -> Option<policy::Rules> {
    let np = registry::by_kind("networking.k8s.io/v1", "NetworkPolicy")?;
    let (items, _) = store.list(np, None).ok()?;
    let policies: Vec<NetworkPolicy> = items
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    if policies.is_empty() {
        return Some(policy::Rules::default());
    }
    let pod_rt = registry::by_kind("v1", "Pod")?;
    let ns_rt = registry::by_kind("v1", "Namespace")?;
    let (pods, _) = store.list(pod_rt, None).ok()?;
    let (namespaces, _) = store.list(ns_rt, None).ok()?;
    let pods: Vec<policy::PodInfo> = pods
        .iter()
        .filter_map(policy::PodInfo::from_object)
        .collect();
    let namespaces: BTreeMap<String, BTreeMap<String, String>> = namespaces
        .iter()
        .map(|n| (meta::name(n).to_string(), meta::labels(n)))
        .collect();
    Some(policy::compute(&policies, &pods, &namespaces, |ip| {
        cidr.contains(ip)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(kind: EventType, object: Value, previous: Option<Value>) -> Change {
        Change {
            revision: 1,
            kind,
            resource: registry::by_kind("v1", "Pod").unwrap(),
            object,
            previous,
        }
    }

    #[test]
    fn only_pod_changes_that_policies_can_see_matter() {
        let pod = json!({"metadata": {"name": "a", "labels": {"app": "x"}},
                         "spec": {"containers": [{"name": "c"}]},
                         "status": {"phase": "Running", "podIP": "10.0.0.2"}});
        let mut ready = pod.clone();
        ready["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
        assert!(!matters(&change(
            EventType::Modified,
            ready,
            Some(pod.clone())
        )));
        let mut relabelled = pod.clone();
        relabelled["metadata"]["labels"]["app"] = json!("y");
        assert!(matters(&change(
            EventType::Modified,
            relabelled,
            Some(pod.clone())
        )));
        let mut finished = pod.clone();
        finished["status"]["phase"] = json!("Succeeded");
        assert!(matters(&change(
            EventType::Modified,
            finished,
            Some(pod.clone())
        )));
        assert!(matters(&change(EventType::Deleted, pod.clone(), None)));
        assert!(matters(&change(EventType::Modified, pod, None)));
    }
}
