//! `berth backup FILE` and `berth restore FILE`: a node's state in one archive.
//!
//! The archive holds a hot copy of the store (LMDB's own consistent copy, taken by the
//! running daemon while pods run), the data of the local-path volumes, the secrets key and
//! the configuration. Images are not in it: pods pull them again (or they are imported
//! again), as with every Kubernetes backup tool.
//!
//! Format (version [`VERSION`]): a zstd-compressed tar whose first entry is
//! `berth-backup.json` ([`Manifest`]), then the files, and last `checksums.json` (each
//! file's size and sha256). A restore reads the whole archive and checks the manifest and
//! every checksum before it writes anything, so a truncated, damaged or foreign archive
//! changes nothing.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Seek, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The first bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// The archive's first entry.
pub const MANIFEST: &str = "berth-backup.json";
/// The archive's last entry.
pub const CHECKSUMS: &str = "checksums.json";
/// `format` of the manifest.
pub const FORMAT: &str = "berth-backup";
/// The archive version this berth writes and the newest it reads.
pub const VERSION: u32 = 1;
/// The store's data file in the archive.
pub const STORE_ENTRY: &str = "store/data.mdb";
/// The secrets key in the archive.
pub const KEY_ENTRY: &str = "secrets.key";
/// The configuration in the archive.
pub const CONFIG_ENTRY: &str = "config.yaml";
/// The local-path volumes' data in the archive (and under the state directory).
pub const VOLUMES_DIR: &str = "volumes";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cannot write the archive: {0}")]
    Write(io::Error),
    #[error("cannot copy the store: {0}")]
    Store(String),
    #[error("{} is not a berth backup: {reason}", path.display())]
    NotABackup { path: PathBuf, reason: String },
    #[error(
        "{} is damaged or incomplete: {reason}; nothing was restored (take a new backup with berth backup)",
        path.display()
    )]
    Damaged { path: PathBuf, reason: String },
    #[error(
        "{} was written by a newer berth ({what}); install that version (or newer) to restore it",
        path.display()
    )]
    TooNew { path: PathBuf, what: String },
    #[error(
        "{} already holds a store; restore into a fresh state directory (--state-dir DIR), or remove this one first with berth reset",
        path.display()
    )]
    NotEmpty { path: PathBuf },
    #[error("{0}")]
    Refused(String),
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BackupError {
    let path = path.to_path_buf();
    move |source| BackupError::Io {
        action,
        path,
        source,
    }
}

/// What the archive is, written first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// RFC 3339.
    pub created: String,
    pub berth_version: String,
    /// The store's schema version (`store::schema`).
    pub schema_version: u32,
    /// The node the backup was taken on.
    pub node_name: String,
    /// The state directory it was taken from (local-path volumes' paths start with it).
    pub state_dir: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct FileSum {
    size: u64,
    sha256: String,
}

/// What the node's daemon puts in a backup.
pub struct Sources<'a> {
    pub store: &'a crate::store::Store,
    pub state_dir: &'a Path,
    pub key_file: Option<&'a Path>,
    pub config_file: Option<&'a Path>,
    pub node_name: &'a str,
}

/// A writer that hashes what passes through.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    size: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

struct Writer<W: Write> {
    tar: tar::Builder<W>,
    sums: BTreeMap<String, FileSum>,
}

impl<W: Write> Writer<W> {
    fn bytes(&mut self, name: &str, data: &[u8], mode: u32) -> Result<(), BackupError> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        );
        h.set_entry_type(tar::EntryType::Regular);
        self.tar
            .append_data(&mut h, name, data)
            .map_err(BackupError::Write)?;
        if name != MANIFEST {
            self.sums.insert(
                name.to_string(),
                FileSum {
                    size: data.len() as u64,
                    sha256: hex::encode(Sha256::digest(data)),
                },
            );
        }
        Ok(())
    }

    /// Appends a regular file as it is now. A file that changes while it is read (a pod
    /// writing) is cut or padded to the size it had when its header was written, so the
    /// archive stays well-formed; its checksum is of what was archived.
    fn file(&mut self, name: &str, path: &Path, meta: &fs::Metadata) -> Result<(), BackupError> {
        let f = fs::File::open(path).map_err(io_err("read", path))?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata(meta);
        h.set_size(meta.len());
        let mut reader = Hashing {
            inner: f.take(meta.len()).chain(io::repeat(0)).take(meta.len()),
            hash: Sha256::new(),
            size: 0,
        };
        self.tar
            .append_data(&mut h, name, &mut reader)
            .map_err(BackupError::Write)?;
        self.sums.insert(
            name.to_string(),
            FileSum {
                size: reader.size,
                sha256: hex::encode(reader.hash.finalize()),
            },
        );
        Ok(())
    }

    /// Appends `dir` recursively under `name`: directories, regular files and symlinks,
    /// with their owners, modes and times. Sockets, FIFOs and devices are skipped.
    fn tree(&mut self, name: &str, dir: &Path) -> Result<(), BackupError> {
        let meta = fs::symlink_metadata(dir).map_err(io_err("read", dir))?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata(&meta);
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        self.tar
            .append_data(&mut h, format!("{name}/"), io::empty())
            .map_err(BackupError::Write)?;
        let mut entries: Vec<_> = fs::read_dir(dir)
            .map_err(io_err("list", dir))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let Some(file) = e.file_name().to_str().map(str::to_string) else {
                tracing::warn!(path = %path.display(), "not backed up: the name is not UTF-8");
                continue;
            };
            let entry = format!("{name}/{file}");
            // A file removed meanwhile is simply not in the backup.
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            let ty = meta.file_type();
            if ty.is_dir() {
                self.tree(&entry, &path)?;
            } else if ty.is_file() {
                match self.file(&entry, &path, &meta) {
                    Err(BackupError::Io { source, .. })
                        if source.kind() == io::ErrorKind::NotFound => {}
                    r => r?,
                }
            } else if ty.is_symlink() {
                let target = fs::read_link(&path).map_err(io_err("read", &path))?;
                let mut h = tar::Header::new_gnu();
                h.set_metadata(&meta);
                h.set_size(0);
                self.tar
                    .append_link(&mut h, &entry, &target)
                    .map_err(BackupError::Write)?;
            }
        }
        Ok(())
    }
}

/// Writes a backup of the running node to `out`.
pub fn write<W: Write>(out: W, src: &Sources<'_>) -> Result<(), BackupError> {
    let manifest = Manifest {
        format: FORMAT.to_string(),
        version: VERSION,
        created: jiff::Timestamp::now().to_string(),
        berth_version: env!("CARGO_PKG_VERSION").to_string(),
        schema_version: src
            .store
            .schema_version()
            .map_err(|e| BackupError::Store(e.to_string()))?,
        node_name: src.node_name.to_string(),
        state_dir: src.state_dir.to_path_buf(),
    };
    let encoder = zstd::Encoder::new(out, 3).map_err(BackupError::Write)?;
    let mut w = Writer {
        tar: tar::Builder::new(encoder),
        sums: BTreeMap::new(),
    };
    w.tar.mode(tar::HeaderMode::Complete);
    let json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    w.bytes(MANIFEST, &json, 0o644)?;

    // The store: LMDB's consistent copy into a private file beside it, then archived.
    let copy = src
        .state_dir
        .join(format!(".backup-{}.mdb", std::process::id()));
    let _ = fs::remove_file(&copy);
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode_0600()
            .open(&copy)
            .map_err(io_err("create", &copy))?;
        src.store
            .copy_to(&mut f)
            .map_err(|e| BackupError::Store(e.to_string()))?;
        f.rewind().map_err(io_err("read", &copy))?;
        let meta = f.metadata().map_err(io_err("read", &copy))?;
        w.file(STORE_ENTRY, &copy, &meta)
    })();
    let _ = fs::remove_file(&copy);
    result?;

    if let Some(key) = src.key_file
        && let Ok(meta) = fs::metadata(key)
    {
        w.file(KEY_ENTRY, key, &meta)?;
    }
    if let Some(config) = src.config_file
        && let Ok(meta) = fs::metadata(config)
    {
        w.file(CONFIG_ENTRY, config, &meta)?;
    }
    let volumes = src.state_dir.join(VOLUMES_DIR);
    if volumes.is_dir() {
        w.tree(VOLUMES_DIR, &volumes)?;
    }
    let sums = serde_json::to_vec_pretty(&w.sums).unwrap_or_default();
    w.bytes(CHECKSUMS, &sums, 0o644)?;
    let encoder = w.tar.into_inner().map_err(BackupError::Write)?;
    let mut out = encoder.finish().map_err(BackupError::Write)?;
    out.flush().map_err(BackupError::Write)
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

/// What a checked archive holds.
#[derive(Debug, Clone)]
pub struct Checked {
    pub manifest: Manifest,
    /// Files (with sizes) other than the manifest and the checksums.
    pub files: BTreeMap<String, u64>,
}

impl Checked {
    /// Bytes of volume data in the archive.
    pub fn volume_bytes(&self) -> u64 {
        self.files
            .iter()
            .filter(|(n, _)| n.starts_with(&format!("{VOLUMES_DIR}/")))
            .map(|(_, s)| s)
            .sum()
    }
}

fn open_archive(
    path: &Path,
) -> Result<tar::Archive<zstd::Decoder<'static, io::BufReader<fs::File>>>, BackupError> {
    let mut f = fs::File::open(path).map_err(io_err("open", path))?;
    let mut magic = [0u8; 4];
    if f.read_exact(&mut magic).is_err() || magic != ZSTD_MAGIC {
        return Err(BackupError::NotABackup {
            path: path.to_path_buf(),
            reason: "it is not zstd-compressed".to_string(),
        });
    }
    f.rewind().map_err(io_err("read", path))?;
    let decoder = zstd::Decoder::new(f).map_err(|e| BackupError::NotABackup {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(tar::Archive::new(decoder))
}

/// Reads the whole archive at `path`, checking its manifest, that every file is there
/// and that every checksum matches.
pub fn check(path: &Path) -> Result<Checked, BackupError> {
    let not_backup = |reason: String| BackupError::NotABackup {
        path: path.to_path_buf(),
        reason,
    };
    let damaged = |reason: String| BackupError::Damaged {
        path: path.to_path_buf(),
        reason,
    };
    let mut archive = open_archive(path)?;
    let mut entries = archive.entries().map_err(|e| not_backup(e.to_string()))?;
    let mut manifest: Option<Manifest> = None;
    let mut seen: BTreeMap<String, FileSum> = BTreeMap::new();
    let mut sums: Option<BTreeMap<String, FileSum>> = None;
    loop {
        let next = entries.next();
        let Some(entry) = next else { break };
        let mut entry = entry.map_err(|e| damaged(e.to_string()))?;
        let name = entry_name(&entry).map_err(damaged)?;
        if manifest.is_none() {
            if name != MANIFEST {
                return Err(not_backup(format!(
                    "its first entry is {name:?}, not {MANIFEST}"
                )));
            }
            let mut text = Vec::new();
            entry
                .read_to_end(&mut text)
                .map_err(|e| damaged(e.to_string()))?;
            let m: Manifest = serde_json::from_slice(&text)
                .map_err(|e| not_backup(format!("{MANIFEST} does not parse: {e}")))?;
            if m.format != FORMAT {
                return Err(not_backup(format!("its format is {:?}", m.format)));
            }
            if m.version > VERSION {
                return Err(BackupError::TooNew {
                    path: path.to_path_buf(),
                    what: format!(
                        "archive version {}, berth {}; this berth reads version {VERSION}",
                        m.version, m.berth_version
                    ),
                });
            }
            manifest = Some(m);
            continue;
        }
        if sums.is_some() {
            return Err(damaged(format!("{name:?} follows {CHECKSUMS}")));
        }
        if name == CHECKSUMS {
            let mut text = Vec::new();
            entry
                .read_to_end(&mut text)
                .map_err(|e| damaged(e.to_string()))?;
            sums = Some(
                serde_json::from_slice(&text)
                    .map_err(|e| damaged(format!("{CHECKSUMS} does not parse: {e}")))?,
            );
            continue;
        }
        if !known_entry(&name) {
            return Err(damaged(format!("unknown entry {name:?}")));
        }
        if entry.header().entry_type().is_file() {
            let mut r = Hashing {
                inner: &mut entry,
                hash: Sha256::new(),
                size: 0,
            };
            io::copy(&mut r, &mut io::sink()).map_err(|e| damaged(e.to_string()))?;
            seen.insert(
                name,
                FileSum {
                    size: r.size,
                    sha256: hex::encode(r.hash.finalize()),
                },
            );
        }
    }
    let manifest = manifest.ok_or_else(|| not_backup("it is empty".to_string()))?;
    let sums = sums.ok_or_else(|| damaged(format!("it ends before {CHECKSUMS}")))?;
    for (name, sum) in &sums {
        match seen.get(name) {
            None => return Err(damaged(format!("{name} is missing"))),
            Some(s) if s != sum => {
                return Err(damaged(format!("{name} does not match its checksum")));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = seen.keys().find(|n| !sums.contains_key(*n)) {
        return Err(damaged(format!("{extra} is not in {CHECKSUMS}")));
    }
    if !sums.contains_key(STORE_ENTRY) {
        return Err(damaged(format!("it holds no store ({STORE_ENTRY})")));
    }
    Ok(Checked {
        manifest,
        files: sums.into_iter().map(|(n, s)| (n, s.size)).collect(),
    })
}

/// Where a restore puts things.
pub struct Target {
    pub state_dir: PathBuf,
    pub key_file: PathBuf,
    /// The configuration file: written from the backup only when it does not exist.
    pub config_file: PathBuf,
}

/// What a restore did, for the user.
#[derive(Debug, Default)]
pub struct Restored {
    pub lines: Vec<String>,
}

/// An entry's name, without a directory's trailing slash.
fn entry_name<R: Read>(entry: &tar::Entry<'_, R>) -> Result<String, String> {
    Ok(entry
        .path()
        .map_err(|e| e.to_string())?
        .to_string_lossy()
        .trim_end_matches('/')
        .to_string())
}

/// Whether an archive may hold an entry of this name.
fn known_entry(name: &str) -> bool {
    matches!(name, STORE_ENTRY | KEY_ENTRY | CONFIG_ENTRY)
        || ((name == VOLUMES_DIR || name.starts_with(&format!("{VOLUMES_DIR}/")))
            && plain(name).is_some())
}

/// `rel` as a relative path of plain components (no `..`, not absolute).
fn plain(rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    p.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| p.to_path_buf())
}

/// Unpacks a checked archive into `target` (the caller has checked it and holds the state
/// directory's lock). The store goes in last, so an interrupted restore leaves no store and
/// can simply be run again.
pub fn unpack(path: &Path, checked: &Checked, target: &Target) -> Result<Restored, BackupError> {
    let mut out = Restored::default();
    let store_dir = target.state_dir.join("state");
    if store_dir.join("data.mdb").exists() {
        return Err(BackupError::NotEmpty { path: store_dir });
    }
    fs::create_dir_all(&target.state_dir).map_err(io_err("create", &target.state_dir))?;
    let staged_store = target.state_dir.join(".restore-data.mdb");
    let mut archive = open_archive(path)?;
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    let damaged = |reason: String| BackupError::Damaged {
        path: path.to_path_buf(),
        reason,
    };
    let entries = archive.entries().map_err(|e| damaged(e.to_string()))?;
    let mut config_written = false;
    for entry in entries {
        let mut entry = entry.map_err(|e| damaged(e.to_string()))?;
        let name = entry_name(&entry).map_err(damaged)?;
        let dest = match name.as_str() {
            MANIFEST | CHECKSUMS => continue,
            STORE_ENTRY => staged_store.clone(),
            KEY_ENTRY => target.key_file.clone(),
            CONFIG_ENTRY => {
                if target.config_file.exists() {
                    let aside = target.state_dir.join("config.from-backup.yaml");
                    out.lines.push(format!(
                        "kept {} (the backup's configuration is in {})",
                        target.config_file.display(),
                        aside.display()
                    ));
                    aside
                } else {
                    config_written = true;
                    target.config_file.clone()
                }
            }
            n if n == VOLUMES_DIR || n.starts_with(&format!("{VOLUMES_DIR}/")) => {
                let rel = plain(n).ok_or_else(|| damaged(format!("bad entry name {n:?}")))?;
                target.state_dir.join(rel)
            }
            other => return Err(damaged(format!("unknown entry {other:?}"))),
        };
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        entry.unpack(&dest).map_err(io_err("write", &dest))?;
    }
    if config_written {
        out.lines.push(format!(
            "wrote the configuration {}",
            target.config_file.display()
        ));
    }
    if checked.files.contains_key(KEY_ENTRY) {
        out.lines.push(format!(
            "restored the secrets key {}",
            target.key_file.display()
        ));
    }
    let volumes = checked
        .files
        .keys()
        .filter(|n| n.starts_with(&format!("{VOLUMES_DIR}/")))
        .count();
    out.lines.push(format!(
        "restored {volumes} volume files ({} bytes) under {}",
        checked.volume_bytes(),
        target.state_dir.join(VOLUMES_DIR).display()
    ));
    fs::create_dir_all(&store_dir).map_err(io_err("create", &store_dir))?;
    let data = store_dir.join("data.mdb");
    fs::rename(&staged_store, &data).map_err(io_err("move the store to", &data))?;
    out.lines
        .push(format!("restored the store {}", data.display()));
    Ok(out)
}

/// `berth restore`: checks the archive, refuses while a daemon runs on the state directory
/// or when it already holds a store, unpacks, migrates the store forward and makes it this
/// node's ([`adopt`]). Returns what it did, line by line.
pub fn restore(
    config: &crate::daemon::Config,
    file: &Path,
    key_file: &Path,
) -> Result<Vec<String>, BackupError> {
    let checked = check(file)?;
    let known = crate::store::schema::current_version();
    if checked.manifest.schema_version > known {
        return Err(BackupError::TooNew {
            path: file.to_path_buf(),
            what: format!(
                "store schema {}, berth {}; this berth knows schema {known}",
                checked.manifest.schema_version, checked.manifest.berth_version
            ),
        });
    }
    let _lock = match crate::daemon::lock_state_dir(&config.state_dir) {
        Ok(lock) => lock,
        Err(crate::daemon::DaemonError::Locked { pid, .. }) => {
            return Err(BackupError::Refused(format!(
                "berth is running{} on {}; stop it first (systemctl stop berth), then run berth restore again",
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                config.state_dir.display()
            )));
        }
        Err(e) => return Err(BackupError::Refused(e.to_string())),
    };
    let target = Target {
        state_dir: config.state_dir.clone(),
        key_file: key_file.to_path_buf(),
        config_file: config
            .config_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::daemon::DEFAULT_CONFIG)),
    };
    let mut lines = vec![format!(
        "checked {} (taken {} on node {} by berth {})",
        file.display(),
        checked.manifest.created,
        checked.manifest.node_name,
        checked.manifest.berth_version
    )];
    lines.extend(unpack(file, &checked, &target)?.lines);
    let secrets_key = if key_file.exists() {
        Some(std::sync::Arc::new(
            crate::store::seal::SecretsKey::load_or_create(key_file)
                .map_err(|e| BackupError::Store(e.to_string()))?,
        ))
    } else {
        None
    };
    let opts = crate::store::StoreOptions {
        secrets_key,
        history_limit: config.watch_history.max(1),
        service_ranges: config.service_ranges().map_err(BackupError::Refused)?,
        ..Default::default()
    };
    let store = crate::store::Store::open(&config.state_dir.join("state"), opts)
        .map_err(|e| BackupError::Store(e.to_string()))?;
    let host = crate::kubelet::node::HostInfo::read(config.node_name.as_deref(), &config.state_dir);
    lines.extend(adopt(
        &store,
        &checked.manifest,
        &config.state_dir,
        &host.name,
    )?);
    Ok(lines)
}

/// Makes a restored store this node's: local-path volumes' paths follow the state
/// directory when it moved, and when the node's name differs, the old Node goes and the
/// pods bound to it are unbound (the scheduler binds them here; their controllers keep
/// them). The node-local address allocations always start afresh.
pub fn adopt(
    store: &crate::store::Store,
    manifest: &Manifest,
    state_dir: &Path,
    node_name: &str,
) -> Result<Vec<String>, BackupError> {
    use crate::api::registry::by_kind;
    use serde_json::{Value, json};
    let err = |e: crate::store::StoreError| BackupError::Store(e.to_string());
    let mut lines = Vec::new();
    let (Some(pv_rt), Some(pod_rt), Some(node_rt)) = (
        by_kind("v1", "PersistentVolume"),
        by_kind("v1", "Pod"),
        by_kind("v1", "Node"),
    ) else {
        return Err(BackupError::Store("the registry lacks core kinds".into()));
    };
    let old_volumes = manifest.state_dir.join(VOLUMES_DIR);
    let new_volumes = state_dir.join(VOLUMES_DIR);
    if old_volumes != new_volumes {
        let mut moved = 0;
        for pv in store.list(pv_rt, None).map_err(err)?.0 {
            let mut pv = pv;
            let mut changed = false;
            for pointer in ["/spec/hostPath/path", "/spec/local/path"] {
                if let Some(Value::String(path)) = pv.pointer_mut(pointer)
                    && let Ok(rest) = Path::new(path.as_str()).strip_prefix(&old_volumes)
                {
                    *path = new_volumes.join(rest).to_string_lossy().into_owned();
                    changed = true;
                }
            }
            if changed {
                let name = crate::api::meta::name(&pv).to_string();
                store
                    .restore_put(pv_rt, None, &name, Some(pv))
                    .map_err(err)?;
                moved += 1;
            }
        }
        if moved > 0 {
            lines.push(format!(
                "moved {moved} volume(s) from {} to {}",
                old_volumes.display(),
                new_volumes.display()
            ));
        }
    }
    if manifest.node_name != node_name {
        let mut unbound = 0;
        for pod in store.list(pod_rt, None).map_err(err)?.0 {
            if crate::api::meta::str_at(&pod, "/spec/nodeName") != manifest.node_name {
                continue;
            }
            let ns = crate::api::meta::namespace(&pod).to_string();
            let name = crate::api::meta::name(&pod).to_string();
            let mut pod = pod;
            if let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("nodeName");
            }
            pod["status"] = json!({"phase": "Pending"});
            store
                .restore_put(pod_rt, Some(&ns), &name, Some(pod))
                .map_err(err)?;
            unbound += 1;
        }
        match store.restore_put(node_rt, None, &manifest.node_name, None) {
            Ok(())
            | Err(crate::store::StoreError::Api(crate::api::error::ApiError::NotFound(_))) => {}
            Err(e) => return Err(err(e)),
        }
        lines.push(format!(
            "moved {unbound} pod(s) from node {} to this node ({node_name})",
            manifest.node_name
        ));
    }
    crate::network::ipam::forget_all(store).map_err(|e| BackupError::Store(e.to_string()))?;
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_entries_only() {
        assert!(known_entry("store/data.mdb"));
        assert!(known_entry("volumes/pvc-1/a"));
        assert!(!known_entry("volumes/../../etc/shadow"));
        assert!(!known_entry("etc/passwd"));
    }

    #[test]
    fn plain_paths_only() {
        assert!(plain("volumes/pvc-1/data").is_some());
        assert!(plain("volumes/../etc/passwd").is_none());
        assert!(plain("/etc/passwd").is_none());
        assert!(plain("./volumes").is_none());
    }
}
