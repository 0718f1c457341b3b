//! The scheduler: binds each pending pod that asks for the default scheduler to a node it
//! fits ([`predicates`]), best score first, through the `binding` operation, and records
//! `Scheduled`. A pod that fits nowhere stays Pending with `PodScheduled=False`
//! (`Unschedulable`, Kubernetes' `0/N nodes are available: …` message) and a
//! `FailedScheduling` warning; it is tried again whenever a pod or a node changes, and
//! every second while any pod waits.
//!
//! One pass sees every pod: pods bound earlier in the pass count against the nodes at
//! once (Kubernetes' "assumed" pods), so a burst of pods never overcommits a node.

pub mod predicates;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

use crate::api::{ApiError, meta, registry};
use crate::events::{EventType, Recorder};
use crate::store::{Change, Store, StoreError, Subresource};
use predicates::{Placed, fit, is_terminal, score, unschedulable_message};

/// How often a still-unschedulable pod's FailedScheduling event is repeated (counted).
const EVENT_REPEAT: Duration = Duration::from_secs(60);

/// The scheduler's name, as pods ask for it in `spec.schedulerName`.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";

/// Pods and nodes trigger a pass (a deleted pod frees room).
pub fn relevant(c: &Change) -> bool {
    matches!(c.resource.kind, "Pod" | "Node")
}

/// What the scheduler remembers between passes: when it last reported each waiting pod.
#[derive(Debug, Default)]
pub struct Scheduler {
    reported: Mutex<HashMap<String, (String, Instant)>>,
}

fn unbound(pod: &Value) -> bool {
    meta::str_at(pod, "/spec/nodeName").is_empty()
        && pod.pointer("/metadata/deletionTimestamp").is_none()
        && matches!(
            meta::str_at(pod, "/spec/schedulerName"),
            "" | DEFAULT_SCHEDULER
        )
        && !matches!(meta::str_at(pod, "/status/phase"), "Succeeded" | "Failed")
}

impl Scheduler {
    /// One pass over every pending pod; true when some pod still waits.
    pub fn schedule_all(&self, store: &Store, events: &Recorder) -> bool {
        let (Some(pod_rt), Some(node_rt)) = (
            registry::by_kind("v1", "Pod"),
            registry::by_kind("v1", "Node"),
        ) else {
            return false;
        };
        let (pods, nodes) = match (store.list(pod_rt, None), store.list(node_rt, None)) {
            (Ok((p, _)), Ok((n, _))) => (p, n),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "scheduler cannot list pods and nodes");
                return true;
            }
        };
        let nodes: BTreeMap<String, Node> = nodes
            .into_iter()
            .filter_map(|n| serde_json::from_value::<Node>(n).ok())
            .map(|n| (n.metadata.name.clone().unwrap_or_default(), n))
            .collect();
        let mut placed: Vec<Placed> = Vec::new();
        let mut pending: Vec<(Value, Pod)> = Vec::new();
        for raw in pods {
            let Ok(pod) = serde_json::from_value::<Pod>(raw.clone()) else {
                continue;
            };
            let node = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            if !node.is_empty() {
                if !is_terminal(&pod) {
                    placed.push(Placed { pod, node });
                }
            } else if unbound(&raw) {
                pending.push((raw, pod));
            }
        }
        // Higher priority first, then oldest first (Kubernetes' queue order).
        pending.sort_by_key(|(raw, pod)| {
            (
                -pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0),
                meta::str_at(raw, "/metadata/creationTimestamp").to_string(),
                meta::name(raw).to_string(),
            )
        });
        let mut waiting = false;
        let mut still_waiting = Vec::new();
        for (raw, pod) in pending {
            let mut per_node = Vec::new();
            let mut best: Option<(i64, &str)> = None;
            for (name, node) in &nodes {
                let reasons = fit(&pod, node, &placed, &nodes);
                if reasons.is_empty() {
                    let s = score(&pod, node, &placed);
                    if best.is_none_or(|(b, _)| s > b) {
                        best = Some((s, name));
                    }
                } else {
                    per_node.push(reasons);
                }
            }
            let key = meta::uid(&raw).to_string();
            match best {
                Some((_, node)) => match self.bind(store, events, &raw, node) {
                    Ok(()) => {
                        placed.push(Placed {
                            pod,
                            node: node.to_string(),
                        });
                        self.forget(&key);
                    }
                    Err(retry) => waiting |= retry,
                },
                None => {
                    let message = unschedulable_message(nodes.len(), &per_node);
                    self.report_unschedulable(store, events, &raw, &message);
                    still_waiting.push(key);
                    waiting = true;
                }
            }
        }
        // Forget pods that are gone or bound by someone else.
        self.reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| still_waiting.contains(k));
        waiting
    }

    fn forget(&self, uid: &str) {
        self.reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
    }

    /// Binds; Err(true) when it should be retried.
    fn bind(&self, store: &Store, events: &Recorder, pod: &Value, node: &str) -> Result<(), bool> {
        let (ns, name) = (meta::namespace(pod), meta::name(pod));
        match store.bind_pod(ns, name, node, Some(meta::uid(pod))) {
            Ok(bound) => {
                tracing::info!(pod = %format!("{ns}/{name}"), node, "pod scheduled");
                events.record(
                    &bound,
                    EventType::Normal,
                    "Scheduled",
                    &format!("Successfully assigned {ns}/{name} to {node}"),
                );
                Ok(())
            }
            Err(StoreError::Api(ApiError::NotFound(_) | ApiError::Conflict { .. })) => Err(false),
            Err(e) => {
                tracing::warn!(error = %e, pod = name, "binding failed; retrying");
                Err(true)
            }
        }
    }

    /// Sets `PodScheduled=False` (only when it changes) and records `FailedScheduling`
    /// when the message changes or once a minute while the pod waits.
    fn report_unschedulable(&self, store: &Store, events: &Recorder, pod: &Value, message: &str) {
        let condition = pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| c["type"] == "PodScheduled"));
        let up_to_date = condition.is_some_and(|c| {
            c["status"] == "False" && c["reason"] == "Unschedulable" && c["message"] == message
        });
        let mut current = pod.clone();
        if !up_to_date && let Some(rt) = registry::by_kind("v1", "Pod") {
            let uid = meta::uid(pod).to_string();
            let msg = message.to_string();
            match store.update_with(
                rt,
                Some(meta::namespace(pod)),
                meta::name(pod),
                Subresource::Status,
                false,
                move |obj| {
                    if meta::uid(obj) != uid {
                        return Err(ApiError::bad_request("the pod was replaced"));
                    }
                    let mut obj = obj.clone();
                    set_unschedulable(&mut obj, &msg);
                    Ok(obj)
                },
            ) {
                Ok(updated) => current = updated,
                Err(e) => {
                    tracing::debug!(error = %e, pod = meta::name(pod), "cannot mark pod unschedulable");
                    return;
                }
            }
        }
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        let key = meta::uid(pod).to_string();
        let due = match reported.get(&key) {
            Some((m, at)) => m != message || at.elapsed() >= EVENT_REPEAT,
            None => true,
        };
        if due {
            reported.insert(key, (message.to_string(), Instant::now()));
            drop(reported);
            events.record(&current, EventType::Warning, "FailedScheduling", message);
        }
    }
}

/// Writes the PodScheduled=False condition into a pod object (phase stays Pending).
fn set_unschedulable(pod: &mut Value, message: &str) {
    let now = meta::now_rfc3339();
    if !pod["status"].is_object() {
        pod["status"] = json!({});
    }
    let status = &mut pod["status"];
    if status["phase"].as_str().unwrap_or_default().is_empty() {
        status["phase"] = json!("Pending");
    }
    let condition = json!({
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": now,
    });
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    let mut out: Vec<Value> = Vec::new();
    let mut replaced = false;
    for c in conditions {
        if c["type"] == "PodScheduled" {
            let mut n = condition.clone();
            if c["status"] == "False" {
                n["lastTransitionTime"] = c["lastTransitionTime"].clone();
            }
            out.push(n);
            replaced = true;
        } else {
            out.push(c);
        }
    }
    if !replaced {
        out.push(condition);
    }
    status["conditions"] = Value::Array(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_condition_is_replaced_and_keeps_its_transition_time() {
        let mut pod = json!({"status": {"conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "old", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
        set_unschedulable(&mut pod, "0/1 nodes are available: 1 Insufficient memory.");
        let c = &pod["status"]["conditions"][0];
        assert_eq!(
            c["message"],
            "0/1 nodes are available: 1 Insufficient memory."
        );
        assert_eq!(c["lastTransitionTime"], "2026-01-01T00:00:00Z");
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(pod["status"]["conditions"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn only_pending_default_scheduler_pods_are_taken() {
        assert!(unbound(&json!({"spec": {}})));
        assert!(!unbound(&json!({"spec": {"nodeName": "n"}})));
        assert!(!unbound(&json!({"spec": {"schedulerName": "other"}})));
        assert!(!unbound(
            &json!({"metadata": {"deletionTimestamp": "x"}, "spec": {}})
        ));
        assert!(!unbound(
            &json!({"spec": {}, "status": {"phase": "Failed"}})
        ));
    }
}
