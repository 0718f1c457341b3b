//! Pod volumes: emptyDir (a directory of the pod, or a tmpfs for `medium: Memory`),
//! configMap, secret, downwardAPI and projected volumes
//! written with Kubernetes' atomic layout (a timestamped `..<time>` directory, a `..data`
//! symlink to it and per-entry symlinks `name -> ..data/name`, so an update swaps `..data`
//! in one rename), hostPath with its `type` checks, and `subPath`.
//!
//! Secret and projected volumes live on a small tmpfs of their own below the pod's
//! directory; [`unmount_below`] frees them with the pod.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, DownwardAPIVolumeFile, KeyToPath, Pod, Volume};
use serde_json::Value;

use super::container;
use crate::runtime::BindMount;

/// Kubernetes' default file mode of configMap, secret, downwardAPI and projected volumes.
pub const DEFAULT_MODE: u32 = 0o644;
/// Size of the tmpfs holding one secret or projected volume.
const TMPFS_SIZE: &str = "size=16m,mode=0755";

/// Why a volume could not be set up. Shown as Kubernetes' `FailedMount` event:
/// `MountVolume.SetUp failed for volume "x" : <this>`.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("configmap references non-existent config key: {0}")]
    ConfigMapKey(String),
    #[error("references non-existent secret key: {0}")]
    SecretKey(String),
    #[error("invalid path {0:?}: must be relative, without '..', and not start with '..'")]
    BadPath(String),
    #[error("hostPath type check failed: {path} is not {what}")]
    HostPathType { path: String, what: &'static str },
    #[error("hostPath {0:?} must be an absolute path")]
    HostPathRelative(String),
    #[error("invalid hostPath type {0:?}")]
    HostPathBadType(String),
    #[error("{0}")]
    Field(String),
    #[error("{0}: not supported by berth; use configMap, secret or downwardAPI sources")]
    Unsupported(&'static str),
    #[error(
        "emptyDir medium {0:?} is not supported by berth; use medium \"\" (disk) or \"Memory\" (tmpfs)"
    )]
    UnsupportedMedium(String),
    #[error("persistentvolumeclaim \"{0}\" not found")]
    ClaimNotFound(String),
    #[error("persistentvolumeclaim \"{0}\" is not bound yet")]
    ClaimUnbound(String),
    #[error("persistentvolumeclaim \"{0}\" is being deleted")]
    ClaimDeleting(String),
    #[error("cannot {action} {}: {source}; check the pod directory's file system", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

/// Why a volume mount of a container could not be made.
#[derive(Debug)]
pub struct MountError {
    /// The volume; `None` for errors of the mount itself (e.g. a bad subPath).
    pub volume: Option<String>,
    pub error: VolumeError,
}

impl MountError {
    /// The `FailedMount` event's message, as Kubernetes' kubelet writes it.
    pub fn message(&self) -> String {
        match &self.volume {
            Some(v) => format!("MountVolume.SetUp failed for volume {v:?} : {}", self.error),
            None => self.error.to_string(),
        }
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> VolumeError {
    let path = path.to_path_buf();
    move |source| VolumeError::Io {
        action,
        path,
        source,
    }
}

/// ConfigMaps and Secrets as stored (`None` when absent).
pub trait ObjectLookup {
    fn object(&self, kind: &str, namespace: &str, name: &str) -> Option<Value>;
}

/// Files of a volume: relative path → (content, mode).
pub type Files = BTreeMap<String, (Vec<u8>, u32)>;

/// Checks a file path of `items`: relative, no `..` element, not starting with `..`.
pub fn validate_path(p: &str) -> Result<(), VolumeError> {
    let bad = p.is_empty()
        || p.starts_with("..")
        || Path::new(p)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)));
    if bad {
        return Err(VolumeError::BadPath(p.to_string()));
    }
    Ok(())
}

/// A mode from the API (`defaultMode`, `mode`): only permission bits count.
pub fn mode_of(mode: Option<i32>, default: u32) -> u32 {
    mode.map(|m| (m as u32) & 0o7777).unwrap_or(default)
}

/// A ConfigMap's data and binaryData, or a Secret's data (base64) and stringData.
fn object_data(kind: &str, v: &Value) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    // (field, base64?) in the order later fields win.
    let fields = if kind == "Secret" {
        [("data", true), ("stringData", false)]
    } else {
        [("data", false), ("binaryData", true)]
    };
    for (field, base64) in fields {
        if let Some(d) = v.get(field).and_then(Value::as_object) {
            for (k, val) in d {
                let Some(s) = val.as_str() else { continue };
                let bytes = if base64 {
                    container::base64_decode(s)
                } else {
                    Some(s.as_bytes().to_vec())
                };
                if let Some(bytes) = bytes {
                    out.insert(k.clone(), bytes);
                }
            }
        }
    }
    out
}

/// Files of a configMap or secret source (`items` or every key).
#[allow(clippy::too_many_arguments)]
fn object_files(
    lookup: &dyn ObjectLookup,
    kind: &str,
    namespace: &str,
    name: &str,
    items: Option<&Vec<KeyToPath>>,
    optional: bool,
    default_mode: u32,
    out: &mut Files,
) -> Result<(), VolumeError> {
    let Some(obj) = lookup.object(kind, namespace, name) else {
        if optional {
            return Ok(());
        }
        return Err(if kind == "Secret" {
            VolumeError::SecretNotFound(name.to_string())
        } else {
            VolumeError::ConfigMapNotFound(name.to_string())
        });
    };
    let data = object_data(kind, &obj);
    match items {
        Some(items) if !items.is_empty() => {
            for it in items {
                validate_path(&it.path)?;
                match data.get(&it.key) {
                    Some(bytes) => {
                        out.insert(
                            it.path.clone(),
                            (bytes.clone(), mode_of(it.mode, default_mode)),
                        );
                    }
                    None if optional => {}
                    None if kind == "Secret" => return Err(VolumeError::SecretKey(it.key.clone())),
                    None => return Err(VolumeError::ConfigMapKey(it.key.clone())),
                }
            }
        }
        _ => {
            for (k, bytes) in data {
                validate_path(&k)?;
                out.insert(k, (bytes, default_mode));
            }
        }
    }
    Ok(())
}

/// Files of downwardAPI items.
fn downward_files(
    pod: &Pod,
    items: Option<&Vec<DownwardAPIVolumeFile>>,
    default_mode: u32,
    out: &mut Files,
) -> Result<(), VolumeError> {
    for it in items.into_iter().flatten() {
        validate_path(&it.path)?;
        let value = if let Some(f) = &it.field_ref {
            let m = &pod.metadata;
            let map = |m: Option<&BTreeMap<String, String>>| {
                m.into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            match f.field_path.as_str() {
                "metadata.labels" => map(m.labels.as_ref()),
                "metadata.annotations" => map(m.annotations.as_ref()),
                other => {
                    container::field_ref(pod, other, "").map_err(|e| VolumeError::Field(e.0))?
                }
            }
        } else if let Some(r) = &it.resource_field_ref {
            let cname = r.container_name.as_deref().unwrap_or_default();
            let c = pod
                .spec
                .iter()
                .flat_map(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                })
                .find(|c| c.name == cname)
                .ok_or_else(|| {
                    VolumeError::Field(format!(
                        "resourceFieldRef of {:?} names no container {cname:?}",
                        it.path
                    ))
                })?;
            container::resource_field(c, &r.resource, r.divisor.as_ref().map(|d| d.0.as_str()))
                .map_err(|e| VolumeError::Field(e.0))?
        } else {
            return Err(VolumeError::Field(format!(
                "downwardAPI item {:?} needs fieldRef or resourceFieldRef",
                it.path
            )));
        };
        out.insert(
            it.path.clone(),
            (value.into_bytes(), mode_of(it.mode, default_mode)),
        );
    }
    Ok(())
}

/// What a volume is on the host.
pub enum Kind {
    /// A directory of the pod (emptyDir); with `Some(options)` a tmpfs mounted with them.
    Dir { tmpfs: Option<String> },
    /// Files written by berth; `tmpfs` for secret and projected volumes.
    Files { files: Files, tmpfs: bool },
    /// A host path (already checked against its type).
    Host(PathBuf),
}

/// The content of a volume, reading ConfigMaps and Secrets through `lookup`.
pub fn resolve(pod: &Pod, v: &Volume, lookup: &dyn ObjectLookup) -> Result<Kind, VolumeError> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    if let Some(e) = &v.empty_dir {
        return match e.medium.as_deref().unwrap_or("") {
            "" => Ok(Kind::Dir { tmpfs: None }),
            "Memory" => {
                let size = e
                    .size_limit
                    .as_ref()
                    .and_then(|q| quantity_bytes(&q.0))
                    .or_else(|| {
                        container::pod_resources(pod)
                            .memory_limit
                            .and_then(|b| u64::try_from(b).ok())
                    });
                let mut options = String::from("mode=0777");
                if let Some(size) = size {
                    options = format!("size={size},{options}");
                }
                Ok(Kind::Dir {
                    tmpfs: Some(options),
                })
            }
            other => Err(VolumeError::UnsupportedMedium(other.to_string())),
        };
    }
    if let Some(h) = &v.host_path {
        return host_path(&h.path, h.type_.as_deref().unwrap_or("")).map(Kind::Host);
    }
    let mut files = Files::new();
    // The files of one ConfigMap or Secret (`optional` unset means required).
    let object = |kind, name: &str, items, optional: Option<bool>, mode, files: &mut Files| {
        let optional = optional.unwrap_or(false);
        object_files(lookup, kind, ns, name, items, optional, mode, files)
    };
    if let Some(c) = &v.config_map {
        let mode = mode_of(c.default_mode, DEFAULT_MODE);
        object(
            "ConfigMap",
            &c.name,
            c.items.as_ref(),
            c.optional,
            mode,
            &mut files,
        )?;
        return Ok(Kind::Files {
            files,
            tmpfs: false,
        });
    }
    if let Some(s) = &v.secret {
        let mode = mode_of(s.default_mode, DEFAULT_MODE);
        let name = s.secret_name.as_deref().unwrap_or_default();
        object(
            "Secret",
            name,
            s.items.as_ref(),
            s.optional,
            mode,
            &mut files,
        )?;
        return Ok(Kind::Files { files, tmpfs: true });
    }
    if let Some(d) = &v.downward_api {
        downward_files(
            pod,
            d.items.as_ref(),
            mode_of(d.default_mode, DEFAULT_MODE),
            &mut files,
        )?;
        return Ok(Kind::Files {
            files,
            tmpfs: false,
        });
    }
    if let Some(p) = &v.projected {
        let mode = mode_of(p.default_mode, DEFAULT_MODE);
        for s in p.sources.iter().flatten() {
            if let Some(c) = &s.config_map {
                object(
                    "ConfigMap",
                    &c.name,
                    c.items.as_ref(),
                    c.optional,
                    mode,
                    &mut files,
                )?;
            } else if let Some(c) = &s.secret {
                object(
                    "Secret",
                    &c.name,
                    c.items.as_ref(),
                    c.optional,
                    mode,
                    &mut files,
                )?;
            } else if let Some(d) = &s.downward_api {
                downward_files(pod, d.items.as_ref(), mode, &mut files)?;
            } else if s.service_account_token.is_some() {
                return Err(VolumeError::Unsupported("projected serviceAccountToken"));
            } else {
                return Err(VolumeError::Unsupported("this projected volume source"));
            }
        }
        return Ok(Kind::Files { files, tmpfs: true });
    }
    if let Some(claim) = &v.persistent_volume_claim {
        return claim_path(lookup, ns, &claim.claim_name).map(Kind::Host);
    }
    Err(VolumeError::Unsupported("this volume type"))
}

/// The host directory of the volume bound to claim `name`.
fn claim_path(lookup: &dyn ObjectLookup, ns: &str, name: &str) -> Result<PathBuf, VolumeError> {
    let claim = lookup
        .object("PersistentVolumeClaim", ns, name)
        .ok_or_else(|| VolumeError::ClaimNotFound(name.to_string()))?;
    if claim.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(VolumeError::ClaimDeleting(name.to_string()));
    }
    let volume = claim
        .pointer("/spec/volumeName")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .filter(|_| claim.pointer("/status/phase").and_then(Value::as_str) == Some("Bound"))
        .ok_or_else(|| VolumeError::ClaimUnbound(name.to_string()))?;
    let pv = lookup
        .object("PersistentVolume", ns, volume)
        .ok_or_else(|| VolumeError::ClaimUnbound(name.to_string()))?;
    if let Some(path) = pv
        .pointer("/spec/hostPath/path")
        .or_else(|| pv.pointer("/spec/local/path"))
        .and_then(Value::as_str)
    {
        let kind = pv
            .pointer("/spec/hostPath/type")
            .and_then(Value::as_str)
            .unwrap_or("");
        return host_path(path, kind);
    }
    Err(VolumeError::Field(format!(
        "persistentvolume {volume:?} has no hostPath or local source; berth mounts only those"
    )))
}

/// Checks (and for `*OrCreate` makes) a hostPath against its `type`.
pub fn host_path(path: &str, kind: &str) -> Result<PathBuf, VolumeError> {
    let p = PathBuf::from(path);
    if !p.is_absolute() {
        return Err(VolumeError::HostPathRelative(path.to_string()));
    }
    let fail = |what| VolumeError::HostPathType {
        path: path.to_string(),
        what,
    };
    let meta = fs::metadata(&p);
    match kind {
        // As containerd does for a bind mount source: a missing path becomes a directory.
        "" => {
            if meta.is_err() {
                fs::create_dir_all(&p).map_err(io_err("create", &p))?;
            }
        }
        "DirectoryOrCreate" => match &meta {
            Ok(m) if !m.is_dir() => return Err(fail("a directory")),
            Ok(_) => {}
            Err(_) => {
                fs::create_dir_all(&p).map_err(io_err("create", &p))?;
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755))
                    .map_err(io_err("chmod", &p))?;
            }
        },
        "Directory" => {
            if !meta.is_ok_and(|m| m.is_dir()) {
                return Err(fail("a directory"));
            }
        }
        "FileOrCreate" => match &meta {
            Ok(m) if m.is_dir() => return Err(fail("a file")),
            Ok(_) => {}
            Err(_) => {
                fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&p)
                    .map_err(io_err("create", &p))?;
                fs::set_permissions(&p, fs::Permissions::from_mode(0o644))
                    .map_err(io_err("chmod", &p))?;
            }
        },
        "File" => {
            if !meta.is_ok_and(|m| m.is_file()) {
                return Err(fail("a file"));
            }
        }
        "Socket" => {
            if !meta.is_ok_and(|m| m.file_type().is_socket()) {
                return Err(fail("a socket file"));
            }
        }
        "CharDevice" => {
            if !meta.is_ok_and(|m| m.file_type().is_char_device()) {
                return Err(fail("a character device"));
            }
        }
        "BlockDevice" => {
            if !meta.is_ok_and(|m| m.file_type().is_block_device()) {
                return Err(fail("a block device"));
            }
        }
        other => return Err(VolumeError::HostPathBadType(other.to_string())),
    }
    Ok(p)
}

/// The name of a new timestamped data directory.
fn data_dir_name() -> String {
    jiff::Zoned::now()
        .strftime("..%Y_%m_%d_%H_%M_%S.%f")
        .to_string()
}

/// Whether `dir`'s current data equals `files` (contents and modes).
fn same_data(dir: &Path, files: &Files) -> bool {
    let data = dir.join("..data");
    let Ok(target) = fs::read_link(&data) else {
        return false;
    };
    let base = dir.join(target);
    let mut present = 0usize;
    if count_files(&base, &mut present).is_err() || present != files.len() {
        return false;
    }
    files.iter().all(|(p, (content, mode))| {
        let f = base.join(p);
        fs::read(&f).is_ok_and(|c| &c == content)
            && fs::metadata(&f).is_ok_and(|m| m.permissions().mode() & 0o7777 == *mode)
    })
}

fn count_files(dir: &Path, n: &mut usize) -> io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            count_files(&e.path(), n)?;
        } else {
            *n += 1;
        }
    }
    Ok(())
}

/// Writes `files` into `dir` with the atomic layout; returns whether anything changed.
pub fn write_atomic(dir: &Path, files: &Files) -> Result<bool, VolumeError> {
    fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    if same_data(dir, files) {
        return Ok(false);
    }
    let old = fs::read_link(dir.join("..data")).ok();
    let name = data_dir_name();
    let new = dir.join(&name);
    fs::create_dir(&new).map_err(io_err("create", &new))?;
    for (p, (content, mode)) in files {
        validate_path(p)?;
        let f = new.join(p);
        if let Some(parent) = f.parent() {
            fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        fs::write(&f, content).map_err(io_err("write", &f))?;
        fs::set_permissions(&f, fs::Permissions::from_mode(*mode)).map_err(io_err("chmod", &f))?;
    }
    let tmp = dir.join("..data_tmp");
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&name, &tmp).map_err(io_err("link", &tmp))?;
    fs::rename(&tmp, dir.join("..data")).map_err(io_err("rename", &tmp))?;
    // One symlink per top-level entry; entries gone from the data lose theirs.
    let top: std::collections::BTreeSet<String> = files
        .keys()
        .filter_map(|p| p.split('/').next().map(str::to_string))
        .collect();
    for t in &top {
        let link = dir.join(t);
        if fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(t), &link)
                .map_err(io_err("link", &link))?;
        }
    }
    for e in fs::read_dir(dir).map_err(io_err("read", dir))?.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if !n.starts_with("..") && !top.contains(&n) {
            let _ = fs::remove_file(e.path());
        }
    }
    if let Some(old) = old
        && old != Path::new(&name)
    {
        let _ = fs::remove_dir_all(dir.join(old));
    }
    Ok(true)
}

/// Whether `path` is a mount point (in this mount namespace).
fn is_mount_point(path: &Path) -> bool {
    mounts_below(path).iter().any(|m| m == path)
}

/// Mount points at or below `dir`, outermost first.
fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(dir))
        .collect()
}

/// Unmounts every mount at or below `dir` (the pod's secret tmpfs mounts).
pub fn unmount_below(dir: &Path) {
    for m in mounts_below(dir).iter().rev() {
        if let Err(e) = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!(path = %m.display(), error = %e, "cannot unmount a pod volume");
        }
    }
}

/// Makes volume `v` under `volumes_dir` (writing its files); returns its host directory.
pub fn set_up(
    pod: &Pod,
    v: &Volume,
    volumes_dir: &Path,
    lookup: &dyn ObjectLookup,
) -> Result<PathBuf, VolumeError> {
    let dir = volumes_dir.join(&v.name);
    match resolve(pod, v, lookup)? {
        Kind::Dir { tmpfs } => {
            fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
            if let Some(options) = tmpfs {
                mount_tmpfs(&dir, &options)?;
            }
            // Kubernetes' emptyDir is world-writable: any user of the pod may use it.
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o777))
                .map_err(io_err("set the mode of", &dir))?;
            Ok(dir)
        }
        Kind::Host(p) => Ok(p),
        Kind::Files { files, tmpfs } => {
            fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
            if tmpfs {
                mount_tmpfs(&dir, TMPFS_SIZE)?;
            }
            write_atomic(&dir, &files)?;
            Ok(dir)
        }
    }
}

/// Mounts a tmpfs with `options` on `dir` unless something is mounted there already.
fn mount_tmpfs(dir: &Path, options: &str) -> Result<(), VolumeError> {
    if is_mount_point(dir) {
        return Ok(());
    }
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some(options),
    )
    .map_err(|e| VolumeError::Io {
        action: "mount a tmpfs on",
        path: dir.to_path_buf(),
        source: e.into(),
    })
}

/// A byte quantity (`1Mi`, `500k`) as a whole number of bytes, rounded up.
fn quantity_bytes(q: &str) -> Option<u64> {
    let v = crate::api::validation::parse_quantity(q).ok()?;
    u64::try_from((v.milli() + 999) / 1000).ok()
}

/// The emptyDir volumes of `pod` with a `sizeLimit`: (volume name, the limit as written,
/// the limit in bytes).
pub fn empty_dir_limits(pod: &Pod) -> Vec<(String, String, u64)> {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| {
            let q = v.empty_dir.as_ref()?.size_limit.as_ref()?;
            Some((v.name.clone(), q.0.clone(), quantity_bytes(&q.0)?))
        })
        .collect()
}

/// Rewrites the file volumes that are already set up whose data changed (ConfigMap and
/// Secret updates reach running pods). Errors leave the current files in place.
pub fn refresh(pod: &Pod, volumes_dir: &Path, lookup: &dyn ObjectLookup) {
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let dir = volumes_dir.join(&v.name);
        if fs::symlink_metadata(dir.join("..data")).is_err() {
            continue;
        }
        if let Ok(Kind::Files { files, .. }) = resolve(pod, v, lookup) {
            match write_atomic(&dir, &files) {
                Ok(true) => tracing::info!(volume = %v.name, "volume data updated"),
                Ok(false) => {}
                Err(e) => tracing::warn!(volume = %v.name, error = %e, "cannot update a volume"),
            }
        }
    }
}

/// The bind mounts of `c`'s volumeMounts, setting each volume up.
pub fn mounts(
    pod: &Pod,
    c: &Container,
    volumes_dir: &Path,
    lookup: &dyn ObjectLookup,
) -> Result<Vec<BindMount>, MountError> {
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    let plain = |error| MountError {
        volume: None,
        error,
    };
    let mut out = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let Some(v) = volumes.iter().find(|v| v.name == m.name) else {
            return Err(plain(VolumeError::Field(format!(
                "volumeMount {:?} names no volume of the pod",
                m.name
            ))));
        };
        let root = set_up(pod, v, volumes_dir, lookup).map_err(|error| MountError {
            volume: Some(v.name.clone()),
            error,
        })?;
        let source = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            None => root,
            Some(sub) => sub_path(
                &root,
                sub,
                v.empty_dir.is_some()
                    || v.host_path.is_some()
                    || v.persistent_volume_claim.is_some(),
            )
            .map_err(plain)?,
        };
        let claim_read_only = v
            .persistent_volume_claim
            .as_ref()
            .and_then(|c| c.read_only)
            .unwrap_or(false);
        out.push(BindMount {
            source,
            destination: PathBuf::from(&m.mount_path),
            readonly: m.read_only.unwrap_or(false) || claim_read_only,
        });
    }
    Ok(out)
}

/// The host path of `sub` inside volume `root`; made a directory when missing and
/// `create`; refused when it leaves the volume (`..`, absolute, or through a symlink).
pub fn sub_path(root: &Path, sub: &str, create: bool) -> Result<PathBuf, VolumeError> {
    let bad = || {
        VolumeError::Field(format!(
            "invalid subPath {sub:?}: must be a relative path inside the volume, without '..'"
        ))
    };
    if Path::new(sub)
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(bad());
    }
    let p = root.join(sub);
    if create && fs::symlink_metadata(&p).is_err() {
        fs::create_dir_all(&p).map_err(io_err("create", &p))?;
    }
    let real = fs::canonicalize(&p).map_err(io_err("resolve the subPath", &p))?;
    let real_root = fs::canonicalize(root).map_err(io_err("resolve", root))?;
    if !real.starts_with(&real_root) {
        return Err(bad());
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_paths() {
        for ok in ["a", "a/b", "a..b", "x/..y"] {
            assert!(validate_path(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/abs", "../x", "a/../b", "..data", "..", "./a"] {
            assert!(validate_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn modes() {
        assert_eq!(mode_of(None, DEFAULT_MODE), 0o644);
        assert_eq!(mode_of(Some(0o400), DEFAULT_MODE), 0o400);
        assert_eq!(mode_of(Some(0o100755), DEFAULT_MODE), 0o755);
    }

    struct Objects(Vec<(&'static str, Value)>);
    impl ObjectLookup for Objects {
        fn object(&self, kind: &str, _: &str, name: &str) -> Option<Value> {
            self.0
                .iter()
                .find(|(k, v)| {
                    *k == kind && v.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
                })
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn config_map_items_modes_and_optional() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"b": "2", "a": "1"}},
            "spec": {"containers": [{"name": "c"}]}
        }))
        .unwrap();
        let objs = Objects(vec![
            (
                "ConfigMap",
                serde_json::json!({"metadata": {"name": "cm"}, "data": {"k": "v", "o": "x"}, "binaryData": {"b": "AAE="}}),
            ),
            (
                "Secret",
                serde_json::json!({"metadata": {"name": "s"}, "data": {"pw": "aHVudGVyMg=="}}),
            ),
        ]);
        let vol = |j: Value| -> Volume { serde_json::from_value(j).unwrap() };
        let files = |k: Kind| match k {
            Kind::Files { files, .. } => files,
            _ => panic!("not files"),
        };
        let f = files(resolve(&pod, &vol(serde_json::json!({"name": "v", "configMap": {"name": "cm", "defaultMode": 0o600,
            "items": [{"key": "k", "path": "d/k.txt"}, {"key": "o", "path": "o", "mode": 0o755}]}})), &objs).unwrap());
        assert_eq!(f["d/k.txt"], (b"v".to_vec(), 0o600));
        assert_eq!(f["o"], (b"x".to_vec(), 0o755));
        assert_eq!(f.len(), 2);
        let f = files(
            resolve(
                &pod,
                &vol(serde_json::json!({"name": "v", "configMap": {"name": "cm"}})),
                &objs,
            )
            .unwrap(),
        );
        assert_eq!(f["b"], (vec![0, 1], 0o644));
        let f = files(
            resolve(
                &pod,
                &vol(serde_json::json!({"name": "v", "secret": {"secretName": "s"}})),
                &objs,
            )
            .unwrap(),
        );
        assert_eq!(f["pw"].0, b"hunter2");
        let e = resolve(
            &pod,
            &vol(serde_json::json!({"name": "v", "configMap": {"name": "nope"}})),
            &objs,
        )
        .err()
        .unwrap();
        assert_eq!(e.to_string(), "configmap \"nope\" not found");
        let f = files(resolve(&pod, &vol(serde_json::json!({"name": "v", "configMap": {"name": "nope", "optional": true}})), &objs).unwrap());
        assert!(f.is_empty());
        let e = resolve(&pod, &vol(serde_json::json!({"name": "v", "configMap": {"name": "cm", "items": [{"key": "zz", "path": "z"}]}})), &objs).err().unwrap();
        assert_eq!(
            e.to_string(),
            "configmap references non-existent config key: zz"
        );
        let e = resolve(
            &pod,
            &vol(
                serde_json::json!({"name": "v", "configMap": {"name": "cm", "items": [{"key": "k", "path": "../z"}]}}),
            ),
            &objs,
        );
        assert!(e.is_err());
        let f = files(
            resolve(
                &pod,
                &vol(serde_json::json!({"name": "v", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}})),
                &objs,
            )
            .unwrap(),
        );
        assert_eq!(f["labels"].0, b"a=\"1\"\nb=\"2\"");
        assert_eq!(f["name"].0, b"p");
        let f = files(resolve(&pod, &vol(serde_json::json!({"name": "v", "projected": {"defaultMode": 0o400, "sources": [
            {"configMap": {"name": "cm", "items": [{"key": "k", "path": "k"}]}},
            {"secret": {"name": "s"}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}})), &objs).unwrap());
        assert_eq!(f["k"], (b"v".to_vec(), 0o400));
        assert_eq!(f["pw"].0, b"hunter2");
        assert_eq!(f["ns"].0, b"ns");
        let e = resolve(
            &pod,
            &vol(serde_json::json!({"name": "v", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token"}}]}})),
            &objs,
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("serviceAccountToken"), "{e}");
    }

    #[test]
    fn atomic_writer_swaps_data() {
        let dir = std::env::temp_dir().join(format!("berth-vol-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut files = Files::new();
        files.insert("a".into(), (b"1".to_vec(), 0o644));
        files.insert("sub/b".into(), (b"2".to_vec(), 0o600));
        assert!(write_atomic(&dir, &files).unwrap());
        assert_eq!(fs::read(dir.join("a")).unwrap(), b"1");
        assert_eq!(fs::read(dir.join("sub/b")).unwrap(), b"2");
        assert_eq!(fs::read_link(dir.join("a")).unwrap(), Path::new("..data/a"));
        assert_eq!(
            fs::metadata(dir.join("sub/b"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        let first = fs::read_link(dir.join("..data")).unwrap();
        assert!(first.to_string_lossy().starts_with(".."));
        assert!(
            !write_atomic(&dir, &files).unwrap(),
            "same data: no rewrite"
        );
        files.remove("sub/b");
        files.insert("a".into(), (b"3".to_vec(), 0o644));
        assert!(write_atomic(&dir, &files).unwrap());
        assert_eq!(fs::read(dir.join("a")).unwrap(), b"3");
        assert!(
            fs::symlink_metadata(dir.join("sub")).is_err(),
            "gone key loses its link"
        );
        assert!(!dir.join(&first).exists(), "old data dir removed");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sub_paths_stay_inside() {
        let dir = std::env::temp_dir().join(format!("berth-subpath-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        assert!(sub_path(&dir, "x/y", true).unwrap().ends_with("x/y"));
        assert!(sub_path(&dir, "../etc", true).is_err());
        assert!(sub_path(&dir, "/etc", true).is_err());
        std::os::unix::fs::symlink("/etc", dir.join("out")).unwrap();
        assert!(sub_path(&dir, "out", false).is_err());
        assert!(sub_path(&dir, "missing", false).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn host_path_types() {
        let dir = std::env::temp_dir().join(format!("berth-hostpath-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let d = dir.join("made");
        host_path(d.to_str().unwrap(), "DirectoryOrCreate").unwrap();
        assert!(d.is_dir());
        host_path(d.to_str().unwrap(), "Directory").unwrap();
        let e = host_path(dir.join("nofile").to_str().unwrap(), "File").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "hostPath type check failed: {} is not a file",
                dir.join("nofile").display()
            )
        );
        let f = dir.join("f");
        host_path(f.to_str().unwrap(), "FileOrCreate").unwrap();
        assert!(f.is_file());
        assert!(host_path(f.to_str().unwrap(), "Directory").is_err());
        assert!(host_path(f.to_str().unwrap(), "Socket").is_err());
        assert!(host_path("/dev/null", "CharDevice").is_ok());
        assert!(host_path("relative", "").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
