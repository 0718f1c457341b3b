//! The ResourceQuota controller: keeps each quota's `status.hard` and `status.used` current
//! (admission itself is in the store's write transaction, see `api::quota`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api::{meta, registry};
use crate::store::{Change, Store};

pub(super) fn relevant(c: &Change) -> bool {
    c.resource.kind != "Event" && super::pod_change_matters(c)
}

pub(super) fn reconcile_all(store: &Store) -> bool {
    let Some(rt) = registry::by_kind("v1", "ResourceQuota") else {
        return false;
    };
    let quotas = match store.list(rt, None) {
        Ok((q, _)) => q,
        Err(e) => {
            tracing::warn!(error = %e, controller = "resourcequota", "cannot list");
            return true;
        }
    };
    let mut pending = false;
    for mut q in quotas {
        let ns = meta::namespace(&q).to_string();
        let mut objects: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for gr in crate::api::quota::counted_resources(&q) {
            let Some(kind) = registry::by_group_resource(&gr) else {
                continue;
            };
            match store.list(kind, Some(&ns)) {
                Ok((items, _)) => {
                    objects.insert(gr, items);
                }
                Err(_) => pending = true,
            }
        }
        let status = crate::api::quota::status(&q, &objects);
        if let Err(e) = super::write_status(store, rt, &mut q, &status) {
            tracing::warn!(error = %e, quota = meta::name(&q), "cannot write a quota's status");
            pending = true;
        }
    }
    pending
}
