//! The store: Kubernetes objects in LMDB (through heed), behind one write gate.
//!
//! Every write — from the API server or an in-process controller — passes the same path:
//! strict decoding, defaulting and validation ([`ResourceType::admit`]), admission checks
//! (namespace exists and is not terminating), then one LMDB write transaction that bumps the
//! global revision, stores the object with that revision as its `resourceVersion`, appends the
//! change to the bounded history and commits (durably: LMDB syncs on commit), and only then
//! notifies watchers. The gate is held from reading the current object to notifying, so
//! changes reach watchers in revision order. Reads are lock-free LMDB snapshots.
//!
//! The layout is documented in [`schema`].

pub mod schema;
pub mod seal;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use heed::byteorder::BE;
use heed::types::{Bytes, Str, U64};
use heed::{Env, EnvOpenOptions, RwTxn, WithoutTls};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::api::allocation::ServiceRanges;
use crate::api::registry::{self, ResourceType};
use crate::api::watch::EventType;
use crate::api::{ApiError, meta};
use schema::{Dbs, META_REVISION, META_SCHEMA};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request itself is wrong (not found, conflict, invalid…): reported to the client.
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("lmdb {op} failed in {}: {source}", .path.display())]
    Lmdb {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: heed::Error,
    },
    #[error("stored object {key} is not valid JSON: {source}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "the state in {} was written by a newer berth (schema {found}, this build knows up to {known}); install a newer berth",
        .path.display()
    )]
    SchemaTooNew {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("migration to schema {version} ({description}) failed in {}; the data was left at schema {from}: {source}", .path.display())]
    Migration {
        version: u32,
        description: &'static str,
        from: u32,
        path: PathBuf,
        #[source]
        source: heed::Error,
    },
    #[error(transparent)]
    Seal(#[from] seal::SealError),
    #[error(
        "the store {} holds encrypted Secrets but no secrets key was given; restore the key (<stateDir>/secrets.key) from your backup",
        .path.display()
    )]
    NoSecretsKey { path: PathBuf },
    #[error("cannot create the state directory {}: {source}", .path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// The error as the API reports it (store failures become 500s with the cause).
    pub fn into_api(self) -> ApiError {
        match self {
            StoreError::Api(e) => e,
            StoreError::Lmdb { path, source, .. } if is_disk_full(&source) => {
                ApiError::InsufficientStorage {
                    message: format!(
                        "the state disk is full (no space left on the file system of {}): nothing was written; free space there and writes resume by themselves",
                        path.display()
                    ),
                }
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// Whether an LMDB error says the disk (or the store's map) is full.
fn is_disk_full(e: &heed::Error) -> bool {
    match e {
        heed::Error::Io(io) => {
            io.raw_os_error() == Some(libc::ENOSPC) || io.raw_os_error() == Some(libc::EDQUOT)
        }
        heed::Error::Mdb(heed::MdbError::MapFull) => true,
        _ => false,
    }
}

/// Tuning of the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How many revisions of history are kept for watches to resume from.
    pub history_limit: u64,
    /// Largest size the data file may grow to (LMDB's map size; the file is sparse).
    pub map_size: usize,
    /// Where Services' cluster IPs and node ports are allocated from.
    pub service_ranges: ServiceRanges,
    /// Seals Secrets at rest; `None` (tests, tools): Secrets are stored as they are.
    pub secrets_key: Option<Arc<seal::SecretsKey>>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            history_limit: 10_000,
            map_size: 8 << 30,
            service_ranges: ServiceRanges::default(),
            secrets_key: None,
        }
    }
}

/// One committed change, as watchers receive it.
#[derive(Debug, Clone)]
pub struct Change {
    pub revision: u64,
    pub kind: EventType,
    pub resource: &'static ResourceType,
    /// The object as written (for `Deleted`, as it was last, with the deleting revision).
    pub object: Value,
    /// For `Modified`, the object before this change (`None` when replayed from history),
    /// so a filtered watch can tell an object entering or leaving its selection.
    pub previous: Option<Value>,
}

/// Which part of an object an update may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// Everything but `status` (for kinds with a status subresource).
    Main,
    /// Only `status`.
    Status,
}

/// What happens to dependents when an owner is deleted (recorded as finalizers, as Kubernetes
/// does, for the garbage collector).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Orphan,
    Background,
    Foreground,
}

impl Propagation {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "Orphan" => Ok(Propagation::Orphan),
            "Background" => Ok(Propagation::Background),
            "Foreground" => Ok(Propagation::Foreground),
            other => Err(ApiError::bad_request(format!(
                "propagationPolicy \"{other}\" is not supported; use Orphan, Background or Foreground"
            ))),
        }
    }
}

/// Finalizer that makes the garbage collector orphan an object's dependents.
pub const FINALIZER_ORPHAN: &str = "orphan";
/// Finalizer that makes the garbage collector delete dependents before the owner.
pub const FINALIZER_FOREGROUND: &str = "foregroundDeletion";
/// Namespaces that may not be deleted.
pub const PROTECTED_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub propagation: Option<Propagation>,
    /// Pods: how long the kubelet has to stop the containers (`None`: the pod's
    /// `terminationGracePeriodSeconds`, default 30; 0: at once).
    pub grace_period_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

/// Result of a delete.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// The object is gone (the value is its last state).
    Gone(Value),
    /// The object is marked for deletion and waits for finalizers.
    Pending(Value),
}

/// The store. Cheap to share behind an `Arc`.
pub struct Store {
    env: Env<WithoutTls>,
    dbs: Dbs,
    path: PathBuf,
    gate: Mutex<()>,
    changes: broadcast::Sender<Arc<Change>>,
    opts: StoreOptions,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The group-resource of Secrets, sealed at rest.
const SECRETS: &str = "secrets";

/// The finalizer that keeps a claim while pods use it.
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";

/// Capacity of the in-memory change channel; a watcher that falls further behind re-reads
/// the history from LMDB.
const CHANGE_CHANNEL: usize = 256;

impl Store {
    /// Opens (creating if needed) the store in `dir` and migrates it to the current schema.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::StateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let lmdb = |op, source| StoreError::Lmdb {
            op,
            path: dir.to_path_buf(),
            source,
        };
        // SAFETY: the daemon holds an exclusive lock on the state directory (see daemon.rs),
        // so no other process maps this environment, and it is opened once per process.
        let env = unsafe {
            EnvOpenOptions::new()
                .read_txn_without_tls()
                .map_size(opts.map_size)
                .max_dbs(8)
                .open(dir)
        }
        .map_err(|e| lmdb("open", e))?;
        let mut txn = env.write_txn().map_err(|e| lmdb("begin", e))?;
        let dbs = Dbs {
            meta: env
                .create_database::<Str, Bytes>(&mut txn, Some("meta"))
                .map_err(|e| lmdb("create meta", e))?,
            objects: env
                .create_database::<Str, Bytes>(&mut txn, Some("objects"))
                .map_err(|e| lmdb("create objects", e))?,
            history: env
                .create_database::<U64<BE>, Bytes>(&mut txn, Some("history"))
                .map_err(|e| lmdb("create history", e))?,
            local: env
                .create_database::<Str, Bytes>(&mut txn, Some("local"))
                .map_err(|e| lmdb("create local", e))?,
        };
        txn.commit().map_err(|e| lmdb("commit", e))?;
        let (changes, _) = broadcast::channel(CHANGE_CHANNEL);
        let store = Store {
            env,
            dbs,
            path: dir.to_path_buf(),
            gate: Mutex::new(()),
            changes,
            opts,
        };
        store.migrate()?;
        store.seal_existing()?;
        Ok(store)
    }

    /// Applies every migration newer than the stored schema, each in its own transaction.
    fn migrate(&self) -> Result<(), StoreError> {
        let found = self.schema_version()?;
        let known = schema::current_version();
        if found > known {
            return Err(StoreError::SchemaTooNew {
                path: self.path.clone(),
                found,
                known,
            });
        }
        for m in schema::MIGRATIONS.iter().filter(|m| m.version > found) {
            let from = self.schema_version()?;
            let fail = |source| StoreError::Migration {
                version: m.version,
                description: m.description,
                from,
                path: self.path.clone(),
                source,
            };
            let mut txn = self.env.write_txn().map_err(fail)?;
            (m.apply)(&mut txn, &self.dbs).map_err(fail)?;
            self.dbs
                .meta
                .put(&mut txn, META_SCHEMA, &m.version.to_be_bytes())
                .map_err(fail)?;
            txn.commit().map_err(fail)?;
            tracing::info!(
                version = m.version,
                description = m.description,
                "store migrated"
            );
        }
        Ok(())
    }

    fn lmdb(&self, op: &'static str) -> impl Fn(heed::Error) -> StoreError + '_ {
        move |source| StoreError::Lmdb {
            op,
            path: self.path.clone(),
            source,
        }
    }

    /// Seals a Secret's bytes when the store has a key.
    fn seal(&self, bytes: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        match &self.opts.secrets_key {
            Some(k) => Ok(k.seal(&bytes)?),
            None => Ok(bytes),
        }
    }

    /// Opens a sealed value; anything else is returned as it is.
    fn unseal<'a>(&self, bytes: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, StoreError> {
        if !seal::is_sealed(bytes) {
            return Ok(std::borrow::Cow::Borrowed(bytes));
        }
        match &self.opts.secrets_key {
            Some(k) => Ok(std::borrow::Cow::Owned(k.open(bytes)?)),
            None => Err(StoreError::NoSecretsKey {
                path: self.path.clone(),
            }),
        }
    }

    /// Seals the Secrets (objects and history) still stored in plain text — those of a
    /// store from before sealing — in one transaction; checks that sealed ones open with
    /// this key. Without a key, a store holding sealed Secrets is refused.
    fn seal_existing(&self) -> Result<(), StoreError> {
        let prefix = schema::object_prefix(SECRETS, None);
        let mut txn = self.env.write_txn().map_err(self.lmdb("begin write"))?;
        let mut plain: Vec<(String, Vec<u8>)> = Vec::new();
        for item in self
            .dbs
            .objects
            .prefix_iter(&txn, &prefix)
            .map_err(self.lmdb("list secrets"))?
        {
            let (key, bytes) = item.map_err(self.lmdb("list secrets"))?;
            if seal::is_sealed(bytes) {
                // Fails here, at open, when the key is not the one they were sealed with.
                self.unseal(bytes)?;
            } else {
                plain.push((key.to_string(), bytes.to_vec()));
            }
        }
        let mut history: Vec<(u64, Vec<u8>)> = Vec::new();
        for item in self
            .dbs
            .history
            .iter(&txn)
            .map_err(self.lmdb("read history"))?
        {
            let (rev, bytes) = item.map_err(self.lmdb("read history"))?;
            if seal::is_sealed(bytes) {
                continue;
            }
            let is_secret = serde_json::from_slice::<Value>(bytes)
                .ok()
                .is_some_and(|e| e["resource"] == SECRETS);
            if is_secret {
                history.push((rev, bytes.to_vec()));
            }
        }
        if self.opts.secrets_key.is_none() || (plain.is_empty() && history.is_empty()) {
            return Ok(());
        }
        let (n, h) = (plain.len(), history.len());
        for (key, bytes) in plain {
            let sealed = self.seal(bytes)?;
            self.dbs
                .objects
                .put(&mut txn, &key, &sealed)
                .map_err(self.lmdb("seal a secret"))?;
        }
        for (rev, bytes) in history {
            let sealed = self.seal(bytes)?;
            self.dbs
                .history
                .put(&mut txn, &rev, &sealed)
                .map_err(self.lmdb("seal a secret's history"))?;
        }
        txn.commit().map_err(self.lmdb("commit"))?;
        tracing::info!(
            secrets = n,
            history = h,
            "sealed the Secrets stored in plain text"
        );
        Ok(())
    }

    /// A piece of node-local state (see `schema.rs`, database `local`).
    pub fn local_get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.env.read_txn().map_err(self.lmdb("begin read"))?;
        let v = self
            .dbs
            .local
            .get(&txn, key)
            .map_err(self.lmdb("read local state"))?;
        Ok(v.map(<[u8]>::to_vec))
    }

    /// Writes a piece of node-local state durably (the commit is synced before this returns).
    pub fn local_put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let _gate = self.gate();
        let mut txn = self.env.write_txn().map_err(self.lmdb("begin write"))?;
        self.dbs
            .local
            .put(&mut txn, key, value)
            .map_err(self.lmdb("write local state"))?;
        txn.commit().map_err(self.lmdb("commit"))
    }

    /// Writes a consistent, compacted copy of the whole store to `file` while it is in use
    /// (LMDB's own hot copy: a read transaction's snapshot).
    pub fn copy_to(&self, file: &mut std::fs::File) -> Result<(), StoreError> {
        self.env
            .copy_to_file(file, heed::CompactionOption::Enabled)
            .map_err(self.lmdb("copy"))
    }

    /// Restore only (`berth restore`, the daemon stopped): replaces an object as it is, or
    /// removes it (`None`), without admission. For what a restore must move to another
    /// node or state directory (a node's pods, a volume's path), which the API forbids.
    pub fn restore_put(
        &self,
        rt: &'static ResourceType,
        ns: Option<&str>,
        name: &str,
        obj: Option<Value>,
    ) -> Result<(), StoreError> {
        let ns = Self::ns_of(rt, ns)?;
        let key = schema::object_key(&rt.group_resource(), ns, name);
        self.write(false, |s, txn, changes| {
            let current = s
                .get_in(txn, &key)?
                .ok_or_else(|| ApiError::NotFound(rt.resource_ref(name)))?;
            match obj {
                Some(mut new) => {
                    meta::set(&mut new, "resourceVersion", None);
                    s.record(txn, changes, EventType::Modified, rt, &key, new)?;
                }
                None => {
                    s.record(txn, changes, EventType::Deleted, rt, &key, current)?;
                }
            }
            Ok(())
        })
    }

    /// The schema version stored (0 for a new store).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let txn = self.env.read_txn().map_err(self.lmdb("begin read"))?;
        let v = self
            .dbs
            .meta
            .get(&txn, META_SCHEMA)
            .map_err(self.lmdb("read schema"))?;
        Ok(v.and_then(schema::read_u32).unwrap_or(0))
    }

    /// The current global revision.
    pub fn revision(&self) -> Result<u64, StoreError> {
        let txn = self.env.read_txn().map_err(self.lmdb("begin read"))?;
        let v = self
            .dbs
            .meta
            .get(&txn, META_REVISION)
            .map_err(self.lmdb("read revision"))?;
        Ok(v.and_then(schema::read_u64).unwrap_or(0))
    }

    /// The directory of the LMDB environment.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Subscribes to committed changes (subscribe *before* reading a snapshot to miss none).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    fn ns_of<'a>(rt: &ResourceType, ns: Option<&'a str>) -> Result<Option<&'a str>, ApiError> {
        match (rt.namespaced, ns) {
            (true, Some(ns)) if !ns.is_empty() => Ok(Some(ns)),
            (true, _) => Err(ApiError::bad_request(format!(
                "{} are namespaced: a namespace is required",
                rt.plural
            ))),
            (false, _) => Ok(None),
        }
    }

    fn parse(key: &str, bytes: &[u8]) -> Result<Value, StoreError> {
        serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
            key: key.to_string(),
            source,
        })
    }

    /// Reads one object.
    pub fn get(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, StoreError> {
        let ns = Self::ns_of(rt, ns)?;
        let key = schema::object_key(&rt.group_resource(), ns, name);
        let txn = self.env.read_txn().map_err(self.lmdb("begin read"))?;
        match self.dbs.objects.get(&txn, &key).map_err(self.lmdb("get"))? {
            Some(bytes) => Self::parse(&key, &self.unseal(bytes)?),
            None => Err(ApiError::NotFound(rt.resource_ref(name)).into()),
        }
    }

    /// Lists the objects of a kind (in one namespace, or all when `ns` is `None`), with the
    /// revision of the snapshot they were read at.
    pub fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
    ) -> Result<(Vec<Value>, u64), StoreError> {
        let (raw, revision) = self.list_raw(rt, ns)?;
        let key = rt.group_resource();
        let items = raw
            .iter()
            .map(|bytes| Self::parse(&key, bytes))
            .collect::<Result<_, _>>()?;
        Ok((items, revision))
    }

    /// Like [`Store::list`], but the objects as their stored JSON bytes, unparsed: a list
    /// that needs no filtering is spliced into the response as it is, which keeps big lists
    /// cheap in time and memory.
    pub fn list_raw(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
    ) -> Result<(Vec<Vec<u8>>, u64), StoreError> {
        let ns = if rt.namespaced {
            ns.filter(|n| !n.is_empty())
        } else {
            None
        };
        let prefix = schema::object_prefix(&rt.group_resource(), ns);
        let txn = self.env.read_txn().map_err(self.lmdb("begin read"))?;
        let revision = self
            .dbs
            .meta
            .get(&txn, META_REVISION)
            .map_err(self.lmdb("read revision"))?
            .and_then(schema::read_u64)
            .unwrap_or(0);
        let mut out = Vec::new();
        for item in self
            .dbs
            .objects
            .prefix_iter(&txn, &prefix)
            .map_err(self.lmdb("list"))?
        {
            let (_, bytes) = item.map_err(self.lmdb("list"))?;
            out.push(self.unseal(bytes)?.into_owned());
        }
        Ok((out, revision))
    }

    /// Changes after `revision`, from the history. 410 Gone when it no longer reaches back.
    pub fn changes_since(&self, revision: u64) -> Result<Vec<Change>, StoreError> {
        let txn = self.env.read_txn().map_err(self.lmdb("begin read"))?;
        let current = self
            .dbs
            .meta
            .get(&txn, META_REVISION)
            .map_err(self.lmdb("read revision"))?
            .and_then(schema::read_u64)
            .unwrap_or(0);
        if revision >= current {
            return Ok(Vec::new());
        }
        let oldest = self
            .dbs
            .history
            .first(&txn)
            .map_err(self.lmdb("read history"))?
            .map(|(k, _)| k);
        match oldest {
            Some(oldest) if revision + 1 >= oldest => {}
            _ => {
                return Err(ApiError::Gone {
                    message: format!("too old resource version: {revision} ({current})"),
                }
                .into());
            }
        }
        let mut out = Vec::new();
        for item in self
            .dbs
            .history
            .range(&txn, &((revision + 1)..))
            .map_err(self.lmdb("read history"))?
        {
            let (rev, v) = item.map_err(self.lmdb("read history"))?;
            let key = format!("history/{rev}");
            let entry = Self::parse(&key, &self.unseal(v)?)?;
            let resource = entry["resource"]
                .as_str()
                .and_then(registry::by_group_resource);
            let kind = serde_json::from_value::<EventType>(entry["type"].clone()).ok();
            if let (Some(resource), Some(kind)) = (resource, kind) {
                let object = entry.get("object").cloned().unwrap_or(Value::Null);
                out.push(Change {
                    revision: rev,
                    kind,
                    resource,
                    object,
                    previous: None,
                });
            }
        }
        Ok(out)
    }

    fn gate(&self) -> MutexGuard<'_, ()> {
        // A panic while holding the gate cannot leave LMDB inconsistent (the transaction
        // aborts on drop), so a poisoned gate is safe to take.
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` in a write transaction under the gate; commits and notifies the changes it
    /// recorded (or aborts when it recorded none, or on `dry_run`).
    fn write<T>(
        &self,
        dry_run: bool,
        f: impl FnOnce(&Self, &mut RwTxn<'_>, &mut Vec<Change>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _gate = self.gate();
        let mut txn = self.env.write_txn().map_err(self.lmdb("begin write"))?;
        let mut changes = Vec::new();
        let out = f(self, &mut txn, &mut changes)?;
        if changes.is_empty() || dry_run {
            txn.abort();
            return Ok(out);
        }
        txn.commit().map_err(self.lmdb("commit"))?;
        for c in changes {
            // No receivers is fine: nobody is watching.
            let _ = self.changes.send(Arc::new(c));
        }
        Ok(out)
    }

    fn get_in(&self, txn: &RwTxn<'_>, key: &str) -> Result<Option<Value>, StoreError> {
        match self.dbs.objects.get(txn, key).map_err(self.lmdb("get"))? {
            Some(bytes) => Ok(Some(Self::parse(key, &self.unseal(bytes)?)?)),
            None => Ok(None),
        }
    }

    /// Bumps the revision, stamps it on `object`, stores (or removes) it and records history.
    fn record(
        &self,
        txn: &mut RwTxn<'_>,
        changes: &mut Vec<Change>,
        kind: EventType,
        rt: &'static ResourceType,
        key: &str,
        mut object: Value,
    ) -> Result<Value, StoreError> {
        let previous = if kind == EventType::Modified {
            self.get_in(txn, key)?
        } else {
            None
        };
        let revision = self
            .dbs
            .meta
            .get(txn, META_REVISION)
            .map_err(self.lmdb("read revision"))?
            .and_then(schema::read_u64)
            .unwrap_or(0)
            + 1;
        self.dbs
            .meta
            .put(txn, META_REVISION, &revision.to_be_bytes())
            .map_err(self.lmdb("write revision"))?;
        meta::set(
            &mut object,
            "resourceVersion",
            Some(Value::String(revision.to_string())),
        );
        let bytes = serde_json::to_vec(&object).map_err(|source| StoreError::Corrupt {
            key: key.to_string(),
            source,
        })?;
        let secret = rt.group_resource() == SECRETS;
        let bytes = if secret { self.seal(bytes)? } else { bytes };
        if kind == EventType::Deleted {
            self.dbs
                .objects
                .delete(txn, key)
                .map_err(self.lmdb("delete"))?;
        } else {
            self.dbs
                .objects
                .put(txn, key, &bytes)
                .map_err(self.lmdb("put"))?;
        }
        let entry = json!({"type": kind, "resource": rt.group_resource(), "object": object});
        let entry = serde_json::to_vec(&entry).map_err(|source| StoreError::Corrupt {
            key: key.to_string(),
            source,
        })?;
        let entry = if secret { self.seal(entry)? } else { entry };
        self.dbs
            .history
            .put(txn, &revision, &entry)
            .map_err(self.lmdb("write history"))?;
        if revision > self.opts.history_limit {
            let end = revision - self.opts.history_limit;
            self.dbs
                .history
                .delete_range(txn, &(..=end))
                .map_err(self.lmdb("compact history"))?;
        }
        changes.push(Change {
            revision,
            kind,
            resource: rt,
            object: object.clone(),
            previous,
        });
        Ok(object)
    }

    /// Creates an object. `ns` is the namespace from the request path.
    pub fn create(
        &self,
        rt: &'static ResourceType,
        ns: Option<&str>,
        obj: Value,
        dry_run: bool,
    ) -> Result<Value, StoreError> {
        let ns = Self::ns_of(rt, ns)?;
        let mut obj = prepare_body(rt, ns, None, obj)?;
        if meta::name(&obj).is_empty() {
            let generate = meta::str_at(&obj, "/metadata/generateName").to_string();
            if !generate.is_empty() {
                meta::set(
                    &mut obj,
                    "name",
                    Some(Value::String(format!("{generate}{}", random_suffix()))),
                );
            }
        }
        for system in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "managedFields",
            "selfLink",
        ] {
            meta::set(&mut obj, system, None);
        }
        if rt.status_subresource
            && let Some(map) = obj.as_object_mut()
        {
            map.remove("status");
        }
        // The uid comes before admission, as Kubernetes' `BeforeCreate` fills it before the
        // create strategy runs: a Job's generated selector names it.
        meta::set(
            &mut obj,
            "uid",
            Some(Value::String(uuid::Uuid::new_v4().to_string())),
        );
        let mut obj = rt.admit(&obj, None)?;
        let name = meta::name(&obj).to_string();
        meta::set(
            &mut obj,
            "creationTimestamp",
            Some(Value::String(meta::now_rfc3339())),
        );
        if rt.generation {
            meta::set(&mut obj, "generation", Some(json!(1)));
        }
        let key = schema::object_key(&rt.group_resource(), ns, &name);
        self.write(dry_run, |s, txn, changes| {
            if let Some(ns) = ns {
                s.check_namespace_open(txn, ns)?;
            }
            if s.get_in(txn, &key)?.is_some() {
                return Err(ApiError::AlreadyExists(rt.resource_ref(&name)).into());
            }
            let mut obj = obj;
            s.allocate(txn, rt, &mut obj, None)?;
            s.default_class(txn, rt, &mut obj)?;
            if let Some(ns) = ns {
                s.admit_limits_and_quota(txn, rt, ns, &mut obj)?;
            }
            if dry_run {
                return Ok(obj);
            }
            s.record(txn, changes, EventType::Added, rt, &key, obj)
        })
    }

    /// Services: cluster IP and node ports, against every other stored Service (what they
    /// hold is what is taken, so a delete frees and a restart never reuses).
    fn allocate(
        &self,
        txn: &RwTxn<'_>,
        rt: &ResourceType,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), StoreError> {
        if !is_services(rt) {
            return Ok(());
        }
        let prefix = schema::object_prefix("services", None);
        let mut others = Vec::new();
        for item in self
            .dbs
            .objects
            .prefix_iter(txn, &prefix)
            .map_err(self.lmdb("list services"))?
        {
            let (key, bytes) = item.map_err(self.lmdb("list services"))?;
            others.push(Self::parse(key, bytes)?);
        }
        crate::api::allocation::allocate(obj, old, &others, &self.opts.service_ranges).map_err(
            |causes| {
                ApiError::Invalid {
                    object: rt.kind_ref(meta::name(obj)),
                    causes,
                }
                .into()
            },
        )
    }

    /// Kubernetes' DefaultIngressClass admission: an Ingress created without a class (and
    /// without the legacy `kubernetes.io/ingress.class` annotation) gets the default
    /// IngressClass, the newest one when several claim to be it.
    /// DefaultIngressClass and DefaultStorageClass admission: an Ingress or a
    /// PersistentVolumeClaim that names no class (nor the legacy annotation) gets the newest
    /// class marked default. A claim also gets the `kubernetes.io/pvc-protection` finalizer
    /// (Kubernetes' StorageObjectInUseProtection): it stays while a pod uses it.
    fn default_class(
        &self,
        txn: &RwTxn<'_>,
        rt: &ResourceType,
        obj: &mut Value,
    ) -> Result<(), StoreError> {
        let (field, legacy, classes, defaults): (&str, &str, &str, &[&str]) =
            match (rt.group, rt.kind) {
                ("networking.k8s.io", "Ingress") => (
                    "ingressClassName",
                    "kubernetes.io~1ingress.class",
                    "ingressclasses.networking.k8s.io",
                    &["ingressclass.kubernetes.io/is-default-class"],
                ),
                ("", "PersistentVolumeClaim") => {
                    let mut finalizers: Vec<String> = obj
                        .pointer("/metadata/finalizers")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|f| f.as_str().map(str::to_string))
                        .collect();
                    if !finalizers.iter().any(|f| f == PVC_PROTECTION) {
                        finalizers.push(PVC_PROTECTION.to_string());
                        meta::set(obj, "finalizers", Some(json!(finalizers)));
                    }
                    (
                        "storageClassName",
                        "volume.beta.kubernetes.io~1storage-class",
                        "storageclasses.storage.k8s.io",
                        &[
                            "storageclass.kubernetes.io/is-default-class",
                            "storageclass.beta.kubernetes.io/is-default-class",
                        ],
                    )
                }
                _ => return Ok(()),
            };
        if obj
            .pointer(&format!("/spec/{field}"))
            .is_some_and(|c| !c.is_null())
            || obj
                .pointer(&format!("/metadata/annotations/{legacy}"))
                .is_some()
        {
            return Ok(());
        }
        let prefix = schema::object_prefix(classes, None);
        let mut default: Option<(String, String)> = None;
        for item in self
            .dbs
            .objects
            .prefix_iter(txn, &prefix)
            .map_err(self.lmdb("list classes"))?
        {
            let (key, bytes) = item.map_err(self.lmdb("list classes"))?;
            let class = Self::parse(key, bytes)?;
            let annotations = meta::annotations(&class);
            let is_default = defaults
                .iter()
                .any(|a| annotations.get(*a).is_some_and(|v| v == "true"));
            let created = meta::str_at(&class, "/metadata/creationTimestamp").to_string();
            if is_default && default.as_ref().is_none_or(|(at, _)| created > *at) {
                default = Some((created, meta::name(&class).to_string()));
            }
        }
        if let Some((_, name)) = default
            && let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.insert(field.into(), Value::String(name));
        }
        Ok(())
    }

    /// The objects of `group_resource` in `ns`, parsed.
    fn list_in(
        &self,
        txn: &RwTxn<'_>,
        group_resource: &str,
        ns: &str,
    ) -> Result<Vec<Value>, StoreError> {
        let prefix = schema::object_prefix(group_resource, Some(ns));
        let mut out = Vec::new();
        for item in self
            .dbs
            .objects
            .prefix_iter(txn, &prefix)
            .map_err(self.lmdb("list"))?
        {
            let (key, bytes) = item.map_err(self.lmdb("list"))?;
            out.push(Self::parse(key, &self.unseal(bytes)?)?);
        }
        Ok(out)
    }

    /// LimitRanger and ResourceQuota admission of a create (Forbidden, as Kubernetes).
    fn admit_limits_and_quota(
        &self,
        txn: &RwTxn<'_>,
        rt: &ResourceType,
        ns: &str,
        obj: &mut Value,
    ) -> Result<(), StoreError> {
        let name = meta::name(obj).to_string();
        let forbidden = |msg: String| {
            StoreError::Api(ApiError::Forbidden {
                message: format!("{} \"{name}\" is forbidden: {msg}", rt.plural),
            })
        };
        if rt.kind == "Pod" {
            let ranges = self.list_in(txn, "limitranges", ns)?;
            if !ranges.is_empty()
                && let Err(errs) = crate::api::quota::apply_limit_ranges(obj, &ranges)
            {
                let msg = if errs.len() == 1 {
                    errs.join("")
                } else {
                    format!("[{}]", errs.join(", "))
                };
                return Err(forbidden(msg));
            }
        }
        let quotas = self.list_in(txn, "resourcequotas", ns)?;
        if quotas.is_empty() {
            return Ok(());
        }
        let gr = rt.group_resource();
        let existing = self.list_in(txn, &gr, ns)?;
        crate::api::quota::check(&gr, obj, &quotas, &existing).map_err(forbidden)
    }

    /// Namespace admission: the namespace must exist and not be terminating.
    fn check_namespace_open(&self, txn: &RwTxn<'_>, ns: &str) -> Result<(), StoreError> {
        let key = schema::object_key("namespaces", None, ns);
        match self.get_in(txn, &key)? {
            None => Err(ApiError::NotFound(crate::api::ObjectRef::new("", "namespaces", ns)).into()),
            Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => Err(ApiError::Forbidden {
                message: format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            }
            .into()),
            Some(_) => Ok(()),
        }
    }

    /// Replaces an object (PUT).
    pub fn update(
        &self,
        rt: &'static ResourceType,
        ns: Option<&str>,
        name: &str,
        obj: Value,
        sub: Subresource,
        dry_run: bool,
    ) -> Result<Value, StoreError> {
        self.update_with(rt, ns, name, sub, dry_run, move |_| Ok(obj))
    }

    /// [`Store::update_with`] of the object `obj` names, only while it is still that object:
    /// one deleted and made again under the same name (another uid) is refused with a
    /// BadRequest "the object was replaced", which controllers take as "leave it alone".
    pub fn update_same(
        &self,
        rt: &'static ResourceType,
        obj: &Value,
        sub: Subresource,
        f: impl FnOnce(&Value) -> Result<Value, ApiError>,
    ) -> Result<Value, StoreError> {
        let uid = meta::uid(obj).to_string();
        self.update_with(
            rt,
            Some(meta::namespace(obj)).filter(|n| !n.is_empty()),
            meta::name(obj),
            sub,
            false,
            move |cur| {
                if meta::uid(cur) != uid {
                    return Err(ApiError::bad_request("the object was replaced"));
                }
                f(cur)
            },
        )
    }

    /// Read-modify-write of one object under the gate: `f` gets the stored object and
    /// returns the new one (a patch, a controller's change). A `resourceVersion` in the result
    /// that differs from the stored one is a conflict.
    pub fn update_with(
        &self,
        rt: &'static ResourceType,
        ns: Option<&str>,
        name: &str,
        sub: Subresource,
        dry_run: bool,
        f: impl FnOnce(&Value) -> Result<Value, ApiError>,
    ) -> Result<Value, StoreError> {
        let ns = Self::ns_of(rt, ns)?;
        let key = schema::object_key(&rt.group_resource(), ns, name);
        self.write(dry_run, |s, txn, changes| {
            let current = s.get_in(txn, &key)?.ok_or_else(|| ApiError::NotFound(rt.resource_ref(name)))?;
            let new = prepare_body(rt, ns, Some(name), f(&current)?)?;
            let wanted_rv = meta::resource_version(&new);
            if !wanted_rv.is_empty() && wanted_rv != meta::resource_version(&current) {
                return Err(ApiError::Conflict {
                    object: rt.kind_ref(name),
                    reason: "the object has been modified; please apply your changes to the latest version and try again".to_string(),
                }
                .into());
            }
            let mut new = match sub {
                Subresource::Status => {
                    let mut merged = current.clone();
                    set_field(&mut merged, "status", new.get("status").cloned());
                    merged
                }
                Subresource::Main => {
                    let mut new = new;
                    if rt.status_subresource {
                        set_field(&mut new, "status", current.get("status").cloned());
                    }
                    new
                }
            };
            for system in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"]
            {
                meta::set(&mut new, system, current.pointer(&format!("/metadata/{system}")).cloned());
            }
            meta::set(&mut new, "resourceVersion", None);
            meta::set(&mut new, "managedFields", None);
            if is_services(rt) {
                crate::api::allocation::drop_type_dependent_fields(&mut new, &current);
            }
            let mut new = rt.admit(&new, Some(&current))?;
            s.allocate(txn, rt, &mut new, Some(&current))?;
            if rt.generation {
                let generation = current.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
                let bumped = if sub == Subresource::Main && new.get("spec") != current.get("spec") {
                    generation + 1
                } else {
                    generation
                };
                meta::set(&mut new, "generation", Some(json!(bumped)));
            }
            let terminating = new.pointer("/metadata/deletionTimestamp").is_some();
            if terminating && all_finalizers(rt, &new).is_empty() {
                return s.record(txn, changes, EventType::Deleted, rt, &key, new);
            }
            let mut unchanged = current.clone();
            meta::set(&mut unchanged, "resourceVersion", None);
            if new == unchanged || dry_run {
                // Nothing to write: Kubernetes does not bump resourceVersion for a no-op.
                return Ok(if dry_run { new } else { current });
            }
            s.record(txn, changes, EventType::Modified, rt, &key, new)
        })
    }

    /// Deletes an object, or marks it for deletion when finalizers hold it.
    pub fn delete(
        &self,
        rt: &'static ResourceType,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, StoreError> {
        let ns = Self::ns_of(rt, ns)?;
        if rt.plural == "namespaces" && PROTECTED_NAMESPACES.contains(&name) {
            return Err(ApiError::Forbidden {
                message: format!(
                    "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
                ),
            }
            .into());
        }
        let key = schema::object_key(&rt.group_resource(), ns, name);
        self.write(opts.dry_run, |s, txn, changes| {
            let current = s.get_in(txn, &key)?.ok_or_else(|| ApiError::NotFound(rt.resource_ref(name)))?;
            if let Some(uid) = &opts.precondition_uid
                && uid != meta::uid(&current)
            {
                return Err(ApiError::Conflict {
                    object: rt.kind_ref(name),
                    reason: format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta::uid(&current)
                    ),
                }
                .into());
            }
            if let Some(rv) = &opts.precondition_resource_version
                && rv != meta::resource_version(&current)
            {
                return Err(ApiError::Conflict {
                    object: rt.kind_ref(name),
                    reason: format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        meta::resource_version(&current)
                    ),
                }
                .into());
            }
            let mut obj = current.clone();
            let mut finalizers = meta::finalizers(&obj);
            let policy_finalizer = match opts.propagation {
                Some(Propagation::Orphan) => Some(FINALIZER_ORPHAN),
                Some(Propagation::Foreground) => Some(FINALIZER_FOREGROUND),
                _ => None,
            };
            if let Some(f) = policy_finalizer
                && !finalizers.iter().any(|x| x == f)
            {
                finalizers.push(f.to_string());
                meta::set(&mut obj, "finalizers", Some(json!(finalizers)));
            }
            // Kubernetes' graceful pod deletion: a pod running on a node is only marked;
            // its kubelet stops the containers and then deletes it with grace 0.
            if let Some(grace) = pod_grace_period(rt, &current, opts.grace_period_seconds) {
                let deadline = meta::format_time(
                    k8s_openapi::jiff::Timestamp::now()
                        + k8s_openapi::jiff::SignedDuration::from_secs(grace),
                );
                let shorter = match current.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64) {
                    Some(existing) => grace < existing,
                    None => true,
                };
                if shorter {
                    meta::set(&mut obj, "deletionTimestamp", Some(Value::String(deadline)));
                    meta::set(&mut obj, "deletionGracePeriodSeconds", Some(json!(grace)));
                }
                if obj == current || opts.dry_run {
                    return Ok(Deleted::Pending(obj));
                }
                return Ok(Deleted::Pending(s.record(txn, changes, EventType::Modified, rt, &key, obj)?));
            }
            if all_finalizers(rt, &obj).is_empty() {
                if opts.dry_run {
                    return Ok(Deleted::Gone(obj));
                }
                return Ok(Deleted::Gone(s.record(txn, changes, EventType::Deleted, rt, &key, obj)?));
            }
            if obj.pointer("/metadata/deletionTimestamp").is_none() {
                meta::set(&mut obj, "deletionTimestamp", Some(Value::String(meta::now_rfc3339())));
                meta::set(&mut obj, "deletionGracePeriodSeconds", Some(json!(0)));
                if rt.plural == "namespaces" {
                    set_field(&mut obj, "status", Some(json!({"phase": "Terminating"})));
                }
            }
            if obj == current || opts.dry_run {
                return Ok(Deleted::Pending(obj));
            }
            Ok(Deleted::Pending(s.record(txn, changes, EventType::Modified, rt, &key, obj)?))
        })
    }
}

/// The grace period a pod deletion must wait for, or `None` when the pod goes at once:
/// not bound to a node, already finished, or a grace of 0.
fn pod_grace_period(rt: &ResourceType, pod: &Value, requested: Option<i64>) -> Option<i64> {
    if rt.kind != "Pod" || !rt.group.is_empty() {
        return None;
    }
    let bound = !meta::str_at(pod, "/spec/nodeName").is_empty();
    let finished = matches!(meta::str_at(pod, "/status/phase"), "Succeeded" | "Failed");
    if !bound || finished {
        return None;
    }
    let grace = requested.unwrap_or_else(|| {
        pod.pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30)
    });
    // Kubernetes turns a request of 0 into 1 unless forced; berth's force is 0 itself.
    (grace > 0).then_some(grace)
}

impl Store {
    /// Binds a pending Pod to a node (Kubernetes' `pods/binding`): sets `spec.nodeName` and
    /// the `PodScheduled` condition. Pod validation forbids changing `spec.nodeName` by an
    /// update, so binding is its own operation, like in Kubernetes. A pod that is already
    /// bound is a conflict; `uid` (when given) must match.
    pub fn bind_pod(
        &self,
        ns: &str,
        name: &str,
        node: &str,
        uid: Option<&str>,
    ) -> Result<Value, StoreError> {
        let rt = registry::by_kind("v1", "Pod")
            .ok_or_else(|| ApiError::internal("the Pod kind is not registered"))?;
        let key = schema::object_key(&rt.group_resource(), Some(ns), name);
        self.write(false, |s, txn, changes| {
            let current = s
                .get_in(txn, &key)?
                .ok_or_else(|| ApiError::NotFound(rt.resource_ref(name)))?;
            if let Some(uid) = uid
                && uid != meta::uid(&current)
            {
                return Err(ApiError::Conflict {
                    object: rt.kind_ref(name),
                    reason: format!("the pod's uid is {}, not {uid}", meta::uid(&current)),
                }
                .into());
            }
            let bound = meta::str_at(&current, "/spec/nodeName");
            if !bound.is_empty() {
                return Err(ApiError::Conflict {
                    object: rt.kind_ref(name),
                    reason: format!("pod {name} is already assigned to node \"{bound}\""),
                }
                .into());
            }
            if current.pointer("/metadata/deletionTimestamp").is_some() {
                return Err(ApiError::Conflict {
                    object: rt.kind_ref(name),
                    reason: "the pod is being deleted".into(),
                }
                .into());
            }
            let mut pod = current;
            if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("nodeName".into(), json!(node));
            }
            let status = pod
                .as_object_mut()
                .map(|m| m.entry("status").or_insert_with(|| json!({})));
            if let Some(Value::Object(status)) = status {
                let conds = status.entry("conditions").or_insert_with(|| json!([]));
                if let Value::Array(list) = conds {
                    list.retain(|c| c["type"] != "PodScheduled");
                    list.push(
                        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
                        "lastTransitionTime": meta::now_rfc3339()}),
                    );
                }
            }
            s.record(txn, changes, EventType::Modified, rt, &key, pod)
        })
    }
}

/// What holds an object back from deletion: metadata finalizers, and for namespaces also
/// `spec.finalizers`.
/// Services get cluster IPs and node ports allocated by the store.
fn is_services(rt: &ResourceType) -> bool {
    rt.group.is_empty() && rt.plural == "services"
}

fn all_finalizers(rt: &ResourceType, obj: &Value) -> Vec<String> {
    let mut f = meta::finalizers(obj);
    if rt.plural == "namespaces"
        && let Some(spec) = obj.pointer("/spec/finalizers").and_then(Value::as_array)
    {
        f.extend(spec.iter().filter_map(|v| v.as_str().map(str::to_string)));
    }
    f
}

fn set_field(obj: &mut Value, field: &str, value: Option<Value>) {
    if let Some(map) = obj.as_object_mut() {
        match value {
            Some(v) => {
                map.insert(field.to_string(), v);
            }
            None => {
                map.remove(field);
            }
        }
    }
}

/// Checks a request body against the request: an object, of this kind, in this namespace,
/// with this name; fills in what the body left out.
fn prepare_body(
    rt: &ResourceType,
    ns: Option<&str>,
    name: Option<&str>,
    mut obj: Value,
) -> Result<Value, ApiError> {
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(format!(
            "the body of a {} request must be a JSON object",
            rt.kind
        )));
    };
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), Value::String(rt.api_version.into()));
        }
        Some(v) if v == rt.api_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({})",
                rt.api_version
            )));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), Value::String(rt.kind.into()));
        }
        Some(k) if k == rt.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                rt.kind
            )));
        }
    }
    let body_ns = meta::namespace(&obj).to_string();
    match ns {
        Some(ns) => {
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::bad_request(format!(
                    "the namespace of the provided object ({body_ns}) does not match the namespace sent on the request ({ns})"
                )));
            }
            meta::set(&mut obj, "namespace", Some(Value::String(ns.to_string())));
        }
        None => {
            if !body_ns.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "{} are not namespaced: remove metadata.namespace ({body_ns})",
                    rt.plural
                )));
            }
            meta::set(&mut obj, "namespace", None);
        }
    }
    if let Some(name) = name {
        let body_name = meta::name(&obj).to_string();
        if body_name.is_empty() {
            meta::set(&mut obj, "name", Some(Value::String(name.to_string())));
        } else if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
    }
    Ok(obj)
}

/// Five characters as Kubernetes' `generateName` appends (no vowels, no confusable digits).
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4().as_bytes()[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Waits on a [`Store::subscribe`] receiver for a change `relevant` says matters, a lagged
/// receiver (changes were missed: look again), or `wait`; then, with `settle`, lets a burst
/// of changes land (it waits that long more, then drops what came meanwhile). False when
/// the loop should end: `shutdown` flipped or the store is gone.
pub async fn wait_for_change(
    changes: &mut broadcast::Receiver<Arc<Change>>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
    relevant: impl Fn(&Change) -> bool,
    wait: std::time::Duration,
    settle: std::time::Duration,
) -> bool {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return false,
            _ = &mut deadline => break,
            got = changes.recv() => match got {
                Ok(c) if relevant(&c) => break,
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return false,
            },
        }
    }
    if settle.is_zero() {
        return true;
    }
    tokio::select! {
        _ = shutdown.changed() => return false,
        _ = tokio::time::sleep(settle) => {}
    }
    loop {
        match changes.try_recv() {
            Ok(_) | Err(TryRecvError::Lagged(_)) => {}
            Err(TryRecvError::Empty) => return true,
            Err(TryRecvError::Closed) => return false,
        }
    }
}

#[cfg(test)]
mod tests;

/// A store in a temporary directory with the `default` namespace, for unit tests of the
/// code that works on stored objects (controllers, events).
#[cfg(test)]
pub(crate) fn test_store() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(
        dir.path(),
        StoreOptions {
            history_limit: 100,
            map_size: 32 << 20,
            ..Default::default()
        },
    )
    .expect("open");
    let ns = registry::by_kind("v1", "Namespace").expect("ns");
    s.create(
        ns,
        None,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
        false,
    )
    .expect("ns");
    (dir, Arc::new(s))
}
