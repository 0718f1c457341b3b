//! The on-disk schema of berth's store, and its ordered migrations.
//!
//! One LMDB environment (`<state-dir>/state/data.mdb`) holds four named databases:
//!
//! ```text
//! meta       key: UTF-8 name               value
//!   "schema"   -> u32 big-endian: the last migration applied
//!   "revision" -> u64 big-endian: the global revision; every write adds one, and the new
//!                 value is the written object's metadata.resourceVersion
//! objects    key: "<group-resource>/<namespace>/<name>" (namespaced kinds)
//!                 "<group-resource>/<name>"             (cluster-scoped kinds)
//!              e.g. "deployments.apps/default/web", "pods/kube-system/dns", "namespaces/default"
//!            value: the object as Kubernetes JSON (UTF-8), resourceVersion included
//! history    key: u64 big-endian revision
//!            value: JSON {"type":"ADDED|MODIFIED|DELETED","resource":"<group-resource>",
//!                         "object":{…}} — the object as written (for DELETED, as it was
//!                         last, with the deleting revision as its resourceVersion)
//! ```
//!
//! Keys sort so that one kind, and one namespace of one kind, are each a contiguous prefix.
//! Names cannot contain `/` (validation refuses them), so keys are unambiguous. History keeps
//! the newest `history_limit` revisions; older ones are deleted in the same transaction that
//! writes a new one, so a watch can resume from any revision still held (and gets 410 Gone
//! for an older one).
//!
//! Migrations: [`MIGRATIONS`] is an ordered list; each runs in its own write transaction
//! together with the bump of `meta["schema"]`, so a failed migration leaves the previous
//! version intact. A store whose schema is newer than this build knows is refused.

use heed::byteorder::BE;
use heed::types::{Bytes, Str, U64};
use heed::{Database, RwTxn};

/// Handles of the named databases.
#[derive(Clone, Copy)]
pub struct Dbs {
    pub meta: Database<Str, Bytes>,
    pub objects: Database<Str, Bytes>,
    pub history: Database<U64<BE>, Bytes>,
    pub local: Database<Str, Bytes>,
}

pub const META_SCHEMA: &str = "schema";
pub const META_REVISION: &str = "revision";

/// One step of the schema's history.
pub struct Migration {
    /// The schema version after this step.
    pub version: u32,
    pub description: &'static str,
    pub apply: fn(&mut RwTxn<'_>, &Dbs) -> heed::Result<()>,
}

/// Every migration, oldest first. Append only: never edit or reorder a released step.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "initial layout: meta, objects, history; revision counter at 0",
        apply: migrate_1_initial,
    },
    Migration {
        version: 2,
        description: "local: node-local kubelet state (pod IP allocations)",
        // The database itself is created when the store opens; older builds, which would
        // not know it, refuse the store from here on.
        apply: |_, _| Ok(()),
    },
];

/// The schema version this build writes.
pub fn current_version() -> u32 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

fn migrate_1_initial(txn: &mut RwTxn<'_>, dbs: &Dbs) -> heed::Result<()> {
    if dbs.meta.get(txn, META_REVISION)?.is_none() {
        dbs.meta.put(txn, META_REVISION, &0u64.to_be_bytes())?;
    }
    Ok(())
}

/// Key of an object in `objects`.
pub fn object_key(group_resource: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{group_resource}/{ns}/{name}"),
        None => format!("{group_resource}/{name}"),
    }
}

/// Prefix of a kind (optionally one namespace of it) in `objects`.
pub fn object_prefix(group_resource: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{group_resource}/{ns}/"),
        None => format!("{group_resource}/"),
    }
}

/// Reads a big-endian u64 (a revision or the counter).
pub fn read_u64(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}

/// Reads a big-endian u32 (the schema version).
pub fn read_u32(bytes: &[u8]) -> Option<u32> {
    bytes.try_into().ok().map(u32::from_be_bytes)
}
