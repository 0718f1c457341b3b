//! The namespace controller: empties a terminating namespace, then lets it go.
//!
//! Deleting a Namespace marks it Terminating (the store sets `deletionTimestamp` and
//! `status.phase`; its `spec.finalizers` still holds `kubernetes`). This controller deletes
//! every object in it; once nothing is left it removes the `kubernetes` finalizer, and the
//! store removes the namespace. It runs at start (a restart resumes unfinished work), on
//! every namespace change, and retries each second while a namespace still has content.

use serde_json::Value;

use crate::api::registry::{self, REGISTRY};
use crate::api::{ApiError, meta};
use crate::store::{DeleteOptions, Propagation, Store, StoreError, Subresource};

const FINALIZER: &str = "kubernetes";

/// Namespace changes trigger a pass.
pub(super) fn relevant(c: &crate::store::Change) -> bool {
    c.resource.plural == "namespaces"
}

/// Reconciles every terminating namespace; true when one still waits for its content.
pub(super) fn reconcile_all(store: &Store) -> bool {
    let Some(rt) = registry::by_kind("v1", "Namespace") else {
        return false;
    };
    let namespaces = match store.list(rt, None) {
        Ok((items, _)) => items,
        Err(e) => {
            tracing::warn!(error = %e, "namespace controller cannot list namespaces");
            return true;
        }
    };
    let mut pending = false;
    for ns in namespaces
        .iter()
        .filter(|n| n.pointer("/metadata/deletionTimestamp").is_some())
    {
        let name = meta::name(ns).to_string();
        let span = tracing::info_span!("reconcile", kind = "Namespace", name = %name);
        let _enter = span.enter();
        match reconcile(store, &name) {
            Ok(done) => pending |= !done,
            Err(e) => {
                tracing::warn!(error = %e, "namespace cleanup failed; retrying");
                pending = true;
            }
        }
    }
    pending
}

/// Deletes what is left in `ns`; when nothing is, releases the namespace. True when done.
fn reconcile(store: &Store, ns: &str) -> Result<bool, StoreError> {
    let mut remaining = 0;
    for rt in REGISTRY.iter().filter(|r| r.namespaced) {
        let (items, _) = store.list(rt, Some(ns))?;
        for obj in items {
            remaining += 1;
            if obj.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let opts = DeleteOptions {
                propagation: Some(Propagation::Background),
                ..Default::default()
            };
            match store.delete(rt, Some(ns), meta::name(&obj), &opts) {
                Ok(_) | Err(StoreError::Api(ApiError::NotFound(_))) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if remaining > 0 {
        // Look again: what was deleted outright is gone now, what has finalizers waits.
        let left: usize = REGISTRY
            .iter()
            .filter(|r| r.namespaced)
            .map(|rt| store.list(rt, Some(ns)).map(|(i, _)| i.len()).unwrap_or(1))
            .sum();
        if left > 0 {
            return Ok(false);
        }
    }
    let Some(rt) = registry::by_kind("v1", "Namespace") else {
        return Ok(true);
    };
    let released = store.update_with(rt, None, ns, Subresource::Main, false, |current| {
        let mut obj = current.clone();
        if let Some(list) = obj
            .pointer_mut("/spec/finalizers")
            .and_then(Value::as_array_mut)
        {
            list.retain(|f| f != FINALIZER);
        }
        Ok(obj)
    });
    match released {
        Ok(_) | Err(StoreError::Api(ApiError::NotFound(_))) => {
            tracing::info!("namespace emptied and removed");
            Ok(true)
        }
        Err(e) => Err(e),
    }
}
