//! The garbage collector: carries out the propagation policy a delete recorded.
//!
//! - `orphan` finalizer: removes the owner's reference from every dependent, then the
//!   finalizer; dependents live on.
//! - `foregroundDeletion` finalizer: deletes the dependents (in the foreground too) and
//!   removes the finalizer once none is left, so the owner goes last.
//! - Background: an object whose every owner is gone is deleted. Before deleting, the owner
//!   is looked up by name and uid, so an owner that is merely newer than the scan is found.
//!
//! It runs at start, after every deletion and every change that marks an object for
//! deletion, and every second while it waits for dependents to go.

use std::collections::HashSet;

use serde_json::Value;

use crate::api::registry::{self, REGISTRY, ResourceType};
use crate::api::watch::EventType;
use crate::api::{ApiError, meta};
use crate::store::{
    Change, DeleteOptions, FINALIZER_FOREGROUND, FINALIZER_ORPHAN, Propagation, Store, StoreError,
    Subresource,
};

pub(super) fn relevant(c: &Change) -> bool {
    c.kind == EventType::Deleted || c.object.pointer("/metadata/deletionTimestamp").is_some()
}

struct Obj {
    rt: &'static ResourceType,
    value: Value,
}

fn owner_uids(v: &Value) -> Vec<String> {
    v.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|o| o["uid"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn ns_opt(v: &Value) -> Option<&str> {
    Some(meta::namespace(v)).filter(|s| !s.is_empty())
}

/// One pass; true when work remains (dependents still going away).
pub(super) fn collect(store: &Store) -> bool {
    let span = tracing::debug_span!("reconcile", controller = "garbage-collector");
    let _enter = span.enter();
    let mut all = Vec::new();
    for rt in REGISTRY.iter() {
        match store.list(rt, None) {
            Ok((items, _)) => all.extend(items.into_iter().map(|value| Obj { rt, value })),
            Err(e) => {
                tracing::warn!(error = %e, kind = rt.kind, "garbage collector cannot list");
                return true;
            }
        }
    }
    let uids: HashSet<&str> = all.iter().map(|o| meta::uid(&o.value)).collect();
    let mut pending = false;
    for owner in all
        .iter()
        .filter(|o| o.value.pointer("/metadata/deletionTimestamp").is_some())
    {
        let finalizers = meta::finalizers(&owner.value);
        let uid = meta::uid(&owner.value);
        let dependents: Vec<&Obj> = all
            .iter()
            .filter(|d| owner_uids(&d.value).iter().any(|u| u == uid))
            .collect();
        let result = if finalizers.iter().any(|f| f == FINALIZER_ORPHAN) {
            orphan(store, owner, &dependents).map(|()| true)
        } else if finalizers.iter().any(|f| f == FINALIZER_FOREGROUND) {
            foreground(store, owner, &dependents)
        } else {
            Ok(true)
        };
        match result {
            Ok(done) => pending |= !done,
            Err(e) => {
                tracing::warn!(error = %e, kind = owner.rt.kind, name = meta::name(&owner.value), "garbage collection failed; retrying");
                pending = true;
            }
        }
    }
    // Background: objects all of whose owners are gone.
    for dep in &all {
        let owners = owner_uids(&dep.value);
        if owners.is_empty() || owners.iter().any(|u| uids.contains(u.as_str())) {
            continue;
        }
        if dep.value.pointer("/metadata/deletionTimestamp").is_some()
            || owner_still_exists(store, &dep.value)
        {
            continue;
        }
        let name = meta::name(&dep.value);
        tracing::info!(
            kind = dep.rt.kind,
            name,
            "deleting object whose owner is gone"
        );
        let opts = DeleteOptions {
            propagation: Some(Propagation::Background),
            precondition_uid: Some(meta::uid(&dep.value).to_string()),
            ..Default::default()
        };
        match store.delete(dep.rt, ns_opt(&dep.value), name, &opts) {
            Ok(_) | Err(StoreError::Api(ApiError::NotFound(_) | ApiError::Conflict { .. })) => {}
            Err(e) => {
                tracing::warn!(error = %e, "garbage collection failed; retrying");
                pending = true;
            }
        }
    }
    pending
}

/// A live lookup of the owners named in `ownerReferences`, by name and uid.
fn owner_still_exists(store: &Store, dep: &Value) -> bool {
    let Some(refs) = dep
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
    else {
        return false;
    };
    refs.iter().any(|r| {
        let rt = registry::by_kind(
            r["apiVersion"].as_str().unwrap_or_default(),
            r["kind"].as_str().unwrap_or_default(),
        );
        let Some(rt) = rt else { return false };
        let ns = if rt.namespaced { ns_opt(dep) } else { None };
        store
            .get(rt, ns, r["name"].as_str().unwrap_or_default())
            .map(|o| meta::uid(&o) == r["uid"].as_str().unwrap_or_default())
            .unwrap_or(false)
    })
}

fn remove_finalizer(store: &Store, owner: &Obj, finalizer: &str) -> Result<(), StoreError> {
    let result = store.update_with(
        owner.rt,
        ns_opt(&owner.value),
        meta::name(&owner.value),
        Subresource::Main,
        false,
        |cur| {
            let mut obj = cur.clone();
            if let Some(list) = obj
                .pointer_mut("/metadata/finalizers")
                .and_then(Value::as_array_mut)
            {
                list.retain(|f| f != finalizer);
            }
            Ok(obj)
        },
    );
    match result {
        Ok(_) | Err(StoreError::Api(ApiError::NotFound(_))) => Ok(()),
        Err(e) => Err(e),
    }
}

fn orphan(store: &Store, owner: &Obj, dependents: &[&Obj]) -> Result<(), StoreError> {
    let uid = meta::uid(&owner.value).to_string();
    for dep in dependents {
        let result = store.update_with(
            dep.rt,
            ns_opt(&dep.value),
            meta::name(&dep.value),
            Subresource::Main,
            false,
            |cur| {
                let mut obj = cur.clone();
                if let Some(refs) = obj
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r["uid"] != uid.as_str());
                    if refs.is_empty() {
                        meta::set(&mut obj, "ownerReferences", None);
                    }
                }
                Ok(obj)
            },
        );
        match result {
            Ok(_) | Err(StoreError::Api(ApiError::NotFound(_))) => {}
            Err(e) => return Err(e),
        }
    }
    tracing::info!(
        kind = owner.rt.kind,
        name = meta::name(&owner.value),
        orphaned = dependents.len(),
        "orphaned dependents"
    );
    remove_finalizer(store, owner, FINALIZER_ORPHAN)
}

/// True when the owner could be released.
fn foreground(store: &Store, owner: &Obj, dependents: &[&Obj]) -> Result<bool, StoreError> {
    if dependents.is_empty() {
        remove_finalizer(store, owner, FINALIZER_FOREGROUND)?;
        return Ok(true);
    }
    for dep in dependents {
        if dep.value.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        let opts = DeleteOptions {
            propagation: Some(Propagation::Foreground),
            ..Default::default()
        };
        match store.delete(dep.rt, ns_opt(&dep.value), meta::name(&dep.value), &opts) {
            Ok(_) | Err(StoreError::Api(ApiError::NotFound(_))) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}
