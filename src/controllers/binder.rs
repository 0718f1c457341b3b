//! The minimal binder: assigns every new Pod that asks for the default scheduler to this
//! node, through the `binding` operation, and records Kubernetes' `Scheduled` event. The
//! real scheduler (fit predicates, affinity, taints) replaces it with the workloads issue.

use serde_json::Value;

use crate::api::{ApiError, meta, registry};
use crate::events::{EventType, Recorder};
use crate::store::{Change, Store, StoreError};

/// New or changed pods trigger a pass.
pub(super) fn relevant(c: &Change) -> bool {
    c.resource.kind == "Pod" && c.kind != crate::api::watch::EventType::Deleted
}

fn unbound(pod: &Value) -> bool {
    meta::str_at(pod, "/spec/nodeName").is_empty()
        && pod.pointer("/metadata/deletionTimestamp").is_none()
        && matches!(
            meta::str_at(pod, "/spec/schedulerName"),
            "" | "default-scheduler"
        )
}

/// Binds every unbound pod to `node`; true when one could not be bound yet.
pub(super) fn bind_all(store: &Store, node: &str, events: &Recorder) -> bool {
    let Some(rt) = registry::by_kind("v1", "Pod") else {
        return false;
    };
    let pods = match store.list(rt, None) {
        Ok((items, _)) => items,
        Err(e) => {
            tracing::warn!(error = %e, "binder cannot list pods");
            return true;
        }
    };
    let mut pending = false;
    for pod in pods.iter().filter(|p| unbound(p)) {
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
            }
            Err(StoreError::Api(ApiError::NotFound(_) | ApiError::Conflict { .. })) => {}
            Err(e) => {
                tracing::warn!(error = %e, pod = name, "binding failed; retrying");
                pending = true;
            }
        }
    }
    pending
}
