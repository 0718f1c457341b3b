//! cgroups as berth lays them out: its own parent (`/berth` by default, never the
//! daemon's own cgroup), one cgroup per pod below it (`/berth/pod<uid>`), one per container
//! below that (`/berth/pod<uid>/<container-id>`, created by libcontainer from the spec's
//! `cgroupsPath`).
//!
//! Two host layouts, detected once at start-up ([`Cgroups::detect`]):
//! - **v1** (legacy or hybrid, like these machines): every v1 hierarchy mounted under
//!   `/sys/fs/cgroup/<controller>` gets a `/berth/...` directory; the cgroup2 mount a
//!   hybrid host also has is left alone (libcgroups, too, uses v1 there).
//! - **v2** (unified): `/sys/fs/cgroup/berth/...`, with the controllers berth needs enabled
//!   in `cgroup.subtree_control` of every level above a container (a delegated subtree).
//!
//! Everything here is plain file I/O (mkdir, write, read, rmdir), safe to call from the
//! daemon's threads, and takes the hierarchy root as data so that the v2 write path is unit
//! tested against a fake directory.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::spec::{DEFAULT_CPU_PERIOD, Resources, shares_to_weight};

/// Where the kernel mounts cgroups.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// berth's parent cgroup unless configured otherwise.
pub const DEFAULT_PARENT: &str = "/berth";

/// v1 controllers berth knows about (named hierarchies such as `name=systemd` are not
/// berth's business).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// v2 controllers berth enables for its subtree (those the kernel offers).
const V2_CONTROLLERS: &[&str] = &["cpuset", "cpu", "io", "memory", "hugetlb", "pids"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// cgroup v1, alone or beside an (unused) cgroup2 mount.
    V1,
    /// The unified hierarchy only.
    V2,
}

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot inspect the cgroup filesystem at {path}: {source}; is cgroupfs mounted?")]
    Inspect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "no cgroup v1 controller is mounted under {root} and it is not a cgroup2 mount; mount cgroups (v2 preferred) and restart berth"
    )]
    NoHierarchy { root: PathBuf },
    #[error("cgroup parent {parent:?} is invalid: use an absolute path like /berth")]
    InvalidParent { parent: String },
    #[error("pod uid {uid:?} cannot name a cgroup: use letters, digits, '-' and '_'")]
    InvalidPodUid { uid: String },
    #[error("container id {id:?} cannot name a cgroup: use letters, digits, '_', '-', '.' and '+'")]
    InvalidContainerId { id: String },
    #[error("cannot create cgroup {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cgroup {path} still has processes; stop its containers first")]
    Busy { path: PathBuf },
    #[error("cannot remove cgroup {path}: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// One v1 hierarchy: where it is mounted and which controllers it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    pub mount: PathBuf,
    pub controllers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    V1(Vec<V1Hierarchy>),
    V2(PathBuf),
}

/// Usage numbers for `berth top`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// Total CPU time, nanoseconds.
    pub cpu_usage_ns: Option<u64>,
    pub memory_usage_bytes: Option<u64>,
    /// Usage minus inactive file cache (what Kubernetes reports and evicts on).
    pub memory_working_set_bytes: Option<u64>,
    /// `None` when unlimited.
    pub memory_limit_bytes: Option<u64>,
    pub pids: Option<u64>,
}

/// berth's view of this host's cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroups {
    layout: Layout,
    parent: String,
}

impl Cgroups {
    /// Detects v1 (legacy/hybrid) or v2 at `/sys/fs/cgroup`, with berth's parent `parent`.
    pub fn detect(parent: &str) -> Result<Cgroups, CgroupError> {
        let root = Path::new(CGROUP_ROOT);
        let fs = nix::sys::statfs::statfs(root).map_err(|e| CgroupError::Inspect {
            path: root.to_path_buf(),
            source: e.into(),
        })?;
        if fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
            return Cgroups::v2_at(root, parent);
        }
        let mountinfo = Path::new("/proc/self/mountinfo");
        let text = fs::read_to_string(mountinfo).map_err(|source| CgroupError::Inspect {
            path: mountinfo.to_path_buf(),
            source,
        })?;
        let hierarchies = parse_v1_mounts(&text);
        if hierarchies.is_empty() {
            return Err(CgroupError::NoHierarchy {
                root: root.to_path_buf(),
            });
        }
        Cgroups::v1_with(hierarchies, parent)
    }

    /// A unified (v2) hierarchy mounted at `root` (a fake directory in tests).
    pub fn v2_at(root: impl Into<PathBuf>, parent: &str) -> Result<Cgroups, CgroupError> {
        Ok(Cgroups {
            layout: Layout::V2(root.into()),
            parent: check_parent(parent)?,
        })
    }

    /// v1 hierarchies as given (tests, or hosts with unusual mounts).
    pub fn v1_with(hierarchies: Vec<V1Hierarchy>, parent: &str) -> Result<Cgroups, CgroupError> {
        Ok(Cgroups {
            layout: Layout::V1(hierarchies),
            parent: check_parent(parent)?,
        })
    }

    pub fn version(&self) -> CgroupVersion {
        match self.layout {
            Layout::V1(_) => CgroupVersion::V1,
            Layout::V2(_) => CgroupVersion::V2,
        }
    }

    /// berth's parent cgroup, e.g. `/berth`.
    pub fn parent(&self) -> &str {
        &self.parent
    }

    /// The pod's cgroup path, `/berth/pod<uid>`.
    pub fn pod_path(&self, pod_uid: &str) -> Result<String, CgroupError> {
        check_uid(pod_uid)?;
        Ok(format!("{}/pod{}", self.parent, pod_uid))
    }

    /// A container's cgroup path (the spec's `cgroupsPath`), `/berth/pod<uid>/<id>`.
    pub fn container_path(&self, pod_uid: &str, container_id: &str) -> Result<String, CgroupError> {
        if !super::spec::valid_id(container_id) {
            return Err(CgroupError::InvalidContainerId {
                id: container_id.to_string(),
            });
        }
        Ok(format!("{}/{}", self.pod_path(pod_uid)?, container_id))
    }

    /// The directories a cgroup path has on this host (one per v1 hierarchy, one on v2).
    pub fn dirs(&self, cgroup_path: &str) -> Vec<PathBuf> {
        let rel = cgroup_path.trim_start_matches('/');
        match &self.layout {
            Layout::V1(hs) => hs.iter().map(|h| h.mount.join(rel)).collect(),
            Layout::V2(root) => vec![root.join(rel)],
        }
    }

    /// The directory of `cgroup_path` in the hierarchy carrying `controller` (v1), or in
    /// the unified hierarchy (v2).
    pub fn controller_dir(&self, controller: &str, cgroup_path: &str) -> Option<PathBuf> {
        let rel = cgroup_path.trim_start_matches('/');
        match &self.layout {
            Layout::V1(hs) => hs
                .iter()
                .find(|h| h.controllers.iter().any(|c| c == controller))
                .map(|h| h.mount.join(rel)),
            Layout::V2(root) => Some(root.join(rel)),
        }
    }

    /// Creates berth's parent cgroup (idempotent). On v2 this also enables berth's
    /// controllers at the root and in the parent, so that pods and containers below can
    /// have limits.
    pub fn ensure_parent(&self) -> Result<(), CgroupError> {
        match &self.layout {
            Layout::V1(hs) => {
                for h in hs {
                    create_v1_chain(h, &self.parent)?;
                }
                Ok(())
            }
            Layout::V2(root) => {
                let enabled = enable_v2_controllers(root, None)?;
                let dir = root.join(self.parent.trim_start_matches('/'));
                mkdir(&dir)?;
                enable_v2_controllers(&dir, Some(&enabled))?;
                Ok(())
            }
        }
    }

    /// Creates the pod's cgroup with pod-level limits (Kubernetes: shares = sum of
    /// requests, quota and memory = sum of limits when every container has one).
    /// Idempotent: an existing pod cgroup gets the limits rewritten.
    pub fn create_pod(&self, pod_uid: &str, limits: &Resources) -> Result<(), CgroupError> {
        let path = self.pod_path(pod_uid)?;
        self.ensure_parent()?;
        match &self.layout {
            Layout::V1(hs) => {
                for h in hs {
                    create_v1_chain(h, &path)?;
                }
                self.write_v1_limits(&path, limits)
            }
            Layout::V2(root) => {
                let parent_dir = root.join(self.parent.trim_start_matches('/'));
                let enabled = read_v2_enabled(&parent_dir);
                let dir = root.join(path.trim_start_matches('/'));
                mkdir(&dir)?;
                enable_v2_controllers(&dir, Some(&enabled))?;
                write_v2_limits(&dir, limits)
            }
        }
    }

    fn write_v1_limits(&self, path: &str, r: &Resources) -> Result<(), CgroupError> {
        if let Some(dir) = self.controller_dir("cpu", path) {
            if let Some(shares) = r.cpu_shares {
                write(&dir.join("cpu.shares"), &shares.to_string())?;
            }
            if let Some(quota) = r.cpu_quota {
                let period = r.cpu_period.unwrap_or(DEFAULT_CPU_PERIOD);
                write(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
                write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
        }
        if let (Some(dir), Some(limit)) = (self.controller_dir("memory", path), r.memory_limit) {
            // The memory limit first: memsw may never be below it.
            write(&dir.join("memory.limit_in_bytes"), &limit.to_string())?;
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                write(&memsw, &limit.to_string())?;
            }
        }
        if let (Some(dir), Some(limit)) = (self.controller_dir("pids", path), r.pids_limit) {
            write(&dir.join("pids.max"), &limit.to_string())?;
        }
        Ok(())
    }

    /// Removes the pod's cgroup and any (empty) container cgroups left below it, in every
    /// hierarchy. Idempotent; [`CgroupError::Busy`] while processes remain.
    pub fn remove_pod(&self, pod_uid: &str) -> Result<(), CgroupError> {
        let path = self.pod_path(pod_uid)?;
        for dir in self.dirs(&path) {
            rmdir_tree(&dir)?;
        }
        Ok(())
    }

    /// Removes berth's parent cgroup when it is empty (uninstall, tests). Idempotent.
    pub fn remove_parent(&self) -> Result<(), CgroupError> {
        for dir in self.dirs(&self.parent) {
            rmdir_tree(&dir)?;
        }
        Ok(())
    }

    /// How many times the kernel's OOM killer killed a process in this cgroup (v1
    /// `memory.oom_control` `oom_kill`, v2 `memory.events` `oom_kill`). `memory.failcnt`
    /// is useless for this: it stays 0 on these kernels.
    pub fn oom_kills(&self, cgroup_path: &str) -> Result<u64, CgroupError> {
        let (dir, file) = match self.version() {
            CgroupVersion::V1 => (
                self.controller_dir("memory", cgroup_path),
                "memory.oom_control",
            ),
            CgroupVersion::V2 => (self.controller_dir("memory", cgroup_path), "memory.events"),
        };
        let Some(dir) = dir else { return Ok(0) };
        let path = dir.join(file);
        let text = read(&path)?;
        Ok(keyed_value(&text, "oom_kill").unwrap_or(0))
    }

    /// CPU and memory usage of a cgroup; numbers a controller does not offer are `None`.
    pub fn stats(&self, cgroup_path: &str) -> Result<CgroupStats, CgroupError> {
        let mut s = CgroupStats::default();
        match self.version() {
            CgroupVersion::V1 => {
                if let Some(d) = self.controller_dir("cpuacct", cgroup_path) {
                    s.cpu_usage_ns = read_u64(&d.join("cpuacct.usage"))?;
                }
                if let Some(d) = self.controller_dir("memory", cgroup_path) {
                    s.memory_usage_bytes = read_u64(&d.join("memory.usage_in_bytes"))?;
                    // The kernel reports "unlimited" as a huge page-aligned number.
                    s.memory_limit_bytes =
                        read_u64(&d.join("memory.limit_in_bytes"))?.filter(|&l| l < (1 << 62));
                    let stat = read_opt(&d.join("memory.stat"))?.unwrap_or_default();
                    s.memory_working_set_bytes = s.memory_usage_bytes.map(|u| {
                        u.saturating_sub(keyed_value(&stat, "total_inactive_file").unwrap_or(0))
                    });
                }
                if let Some(d) = self.controller_dir("pids", cgroup_path) {
                    s.pids = read_u64(&d.join("pids.current"))?;
                }
            }
            CgroupVersion::V2 => {
                let Some(d) = self.dirs(cgroup_path).into_iter().next() else {
                    return Ok(s);
                };
                let cpu = read_opt(&d.join("cpu.stat"))?.unwrap_or_default();
                s.cpu_usage_ns = keyed_value(&cpu, "usage_usec").map(|us| us.saturating_mul(1000));
                s.memory_usage_bytes = read_u64(&d.join("memory.current"))?;
                s.memory_limit_bytes = read_u64(&d.join("memory.max"))?;
                let stat = read_opt(&d.join("memory.stat"))?.unwrap_or_default();
                s.memory_working_set_bytes = s
                    .memory_usage_bytes
                    .map(|u| u.saturating_sub(keyed_value(&stat, "inactive_file").unwrap_or(0)));
                s.pids = read_u64(&d.join("pids.current"))?;
            }
        }
        Ok(s)
    }
}

fn check_parent(parent: &str) -> Result<String, CgroupError> {
    let trimmed = parent.trim_end_matches('/');
    let ok = trimmed.starts_with('/')
        && trimmed.len() > 1
        && trimmed[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'));
    if ok {
        Ok(trimmed.to_string())
    } else {
        Err(CgroupError::InvalidParent {
            parent: parent.to_string(),
        })
    }
}

fn check_uid(uid: &str) -> Result<(), CgroupError> {
    if !uid.is_empty()
        && uid.len() <= 128
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(CgroupError::InvalidPodUid {
            uid: uid.to_string(),
        })
    }
}

/// The v1 hierarchies in `/proc/self/mountinfo` that carry at least one known controller.
pub fn parse_v1_mounts(mountinfo: &str) -> Vec<V1Hierarchy> {
    let mut out: Vec<V1Hierarchy> = Vec::new();
    for line in mountinfo.lines() {
        // id parent maj:min root mountpoint opts [optional...] - fstype source superopts
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut r = right.split(' ');
        let (Some("cgroup"), Some(_source), Some(superopts)) = (r.next(), r.next(), r.next())
        else {
            continue;
        };
        let Some(mount) = left.split(' ').nth(4) else {
            continue;
        };
        let controllers: Vec<String> = superopts
            .split(',')
            .filter(|o| V1_CONTROLLERS.contains(o))
            .map(str::to_string)
            .collect();
        if controllers.is_empty() {
            continue;
        }
        let mount = PathBuf::from(unescape_mountinfo(mount));
        if out.iter().any(|h| h.controllers == controllers) {
            continue; // the same hierarchy mounted twice
        }
        out.push(V1Hierarchy { mount, controllers });
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mkdir(dir: &Path) -> Result<(), CgroupError> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(CgroupError::Create {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// Creates each level of `path` in a v1 hierarchy. A new cpuset cgroup starts with empty
/// `cpus`/`mems` and refuses tasks until they are set, so copy them from the level above.
fn create_v1_chain(h: &V1Hierarchy, path: &str) -> Result<(), CgroupError> {
    let cpuset = h.controllers.iter().any(|c| c == "cpuset");
    let mut dir = h.mount.clone();
    for component in path.trim_start_matches('/').split('/') {
        let parent = dir.clone();
        dir.push(component);
        mkdir(&dir)?;
        if cpuset {
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let mine = read(&dir.join(file))?;
                if mine.trim().is_empty() {
                    let theirs = read(&parent.join(file))?;
                    write(&dir.join(file), theirs.trim())?;
                }
            }
        }
    }
    Ok(())
}

/// The controllers a v2 cgroup has enabled for its children.
fn read_v2_enabled(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("cgroup.subtree_control"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|c| c.trim_start_matches('+').to_string())
        .collect()
}

/// Enables berth's controllers for `dir`'s children: those `dir` offers
/// (`cgroup.controllers`), or, below berth's parent, those enabled one level up (which is
/// what the kernel offers there). Returns what it enabled.
fn enable_v2_controllers(
    dir: &Path,
    offered: Option<&[String]>,
) -> Result<Vec<String>, CgroupError> {
    let offered: Vec<String> = match offered {
        Some(o) => o.to_vec(),
        None => read(&dir.join("cgroup.controllers"))?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
    };
    let wanted: Vec<&str> = V2_CONTROLLERS
        .iter()
        .copied()
        .filter(|c| offered.iter().any(|o| o == c))
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let file = dir.join("cgroup.subtree_control");
    let all = wanted
        .iter()
        .map(|c| format!("+{c}"))
        .collect::<Vec<_>>()
        .join(" ");
    if write(&file, &all).is_ok() {
        return Ok(wanted.iter().map(|c| c.to_string()).collect());
    }
    // One controller the kernel will not enable here (e.g. cpu with realtime tasks)
    // should not cost the others: enable one by one and keep what works.
    let mut enabled = Vec::new();
    for c in wanted {
        match write(&file, &format!("+{c}")) {
            Ok(()) => enabled.push(c.to_string()),
            Err(e) => tracing::warn!(error = %e, controller = c, "cgroup controller not enabled"),
        }
    }
    Ok(enabled)
}

fn write_v2_limits(dir: &Path, r: &Resources) -> Result<(), CgroupError> {
    if let Some(shares) = r.cpu_shares {
        write(
            &dir.join("cpu.weight"),
            &shares_to_weight(shares).to_string(),
        )?;
    }
    if r.cpu_quota.is_some() || r.cpu_period.is_some() {
        let period = r.cpu_period.unwrap_or(DEFAULT_CPU_PERIOD);
        let quota = match r.cpu_quota {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".to_string(),
        };
        write(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
    }
    if let Some(limit) = r.memory_limit {
        write(&dir.join("memory.max"), &limit.to_string())?;
        // swap = limit means no swap; memory.swap.max exists only with swap accounting.
        let swap = dir.join("memory.swap.max");
        if swap.exists() {
            write(&swap, "0")?;
        }
    }
    if let Some(limit) = r.pids_limit {
        write(&dir.join("pids.max"), &limit.to_string())?;
    }
    Ok(())
}

/// Removes a cgroup directory and any cgroup directories below it, deepest first. cgroupfs
/// removes a directory's interface files with it, so only directories are touched.
fn rmdir_tree(dir: &Path) -> Result<(), CgroupError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            rmdir_tree(&entry.path())?;
        }
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Err(CgroupError::Busy {
            path: dir.to_path_buf(),
        }),
        Err(source) => Err(CgroupError::Remove {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    // create(true) is harmless on cgroupfs (existing interface files) and lets the same
    // code write a fake hierarchy in tests.
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write {
            path: path.to_path_buf(),
            value: value.to_string(),
            source,
        })
}

fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_opt(path: &Path) -> Result<Option<String>, CgroupError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CgroupError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A number file; `None` when absent or `max`.
fn read_u64(path: &Path) -> Result<Option<u64>, CgroupError> {
    Ok(read_opt(path)?.and_then(|s| s.trim().parse().ok()))
}

/// `value` of a `key value` line (memory.stat, memory.events, cpu.stat, oom_control).
fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hybrid_mountinfo() {
        let text = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,relatime shared:5 - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
34 30 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/net\\040cls rw - cgroup cgroup rw,net_cls,net_prio
";
        let hs = parse_v1_mounts(text);
        assert_eq!(hs.len(), 3);
        assert_eq!(hs[0].mount, PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(hs[2].mount, PathBuf::from("/sys/fs/cgroup/net cls"));
        assert_eq!(hs[2].controllers, vec!["net_cls", "net_prio"]);
    }

    #[test]
    fn paths_are_validated() {
        let cg = Cgroups::v2_at("/nonexistent", "/berth/").expect("cgroups");
        assert_eq!(cg.parent(), "/berth");
        assert_eq!(cg.pod_path("1234-ab").expect("pod"), "/berth/pod1234-ab");
        assert_eq!(
            cg.container_path("u1", "c1").expect("container"),
            "/berth/podu1/c1"
        );
        assert!(cg.pod_path("../x").is_err());
        assert!(cg.container_path("u1", "../c").is_err());
        assert!(Cgroups::v2_at("/x", "berth").is_err());
        assert!(Cgroups::v2_at("/x", "/a/../b").is_err());
        assert!(Cgroups::v2_at("/x", "/").is_err());
    }

    /// The v2 write path against a fake cgroupfs: parent and pod creation, controller
    /// delegation, limits, OOM counter and stats.
    #[test]
    fn v2_writes_against_fake_cgroupfs() {
        let root = tempfile::Builder::new()
            .prefix("berth-test-cgv2-")
            .tempdir()
            .expect("tempdir");
        let r = root.path();
        fs::write(
            r.join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        )
        .expect("controllers");
        let cg = Cgroups::v2_at(r, "/berth").expect("cgroups");
        assert_eq!(cg.version(), CgroupVersion::V2);

        cg.ensure_parent().expect("parent");
        assert_eq!(
            fs::read_to_string(r.join("cgroup.subtree_control")).expect("root subtree"),
            "+cpuset +cpu +io +memory +hugetlb +pids"
        );
        assert_eq!(
            fs::read_to_string(r.join("berth/cgroup.subtree_control")).expect("berth subtree"),
            "+cpuset +cpu +io +memory +hugetlb +pids"
        );

        // Swap accounting present: the kernel would have created memory.swap.max.
        fs::create_dir_all(r.join("berth/podu1")).expect("pod dir");
        fs::write(r.join("berth/podu1/memory.swap.max"), "max\n").expect("swap");
        let limits = Resources {
            cpu_shares: Some(1024),
            cpu_quota: Some(50_000),
            cpu_period: None,
            memory_limit: Some(64 << 20),
            pids_limit: Some(100),
        };
        cg.create_pod("u1", &limits).expect("pod");
        let pod = r.join("berth/podu1");
        let file = |name: &str| fs::read_to_string(pod.join(name)).expect(name);
        assert_eq!(
            file("cgroup.subtree_control"),
            "+cpuset +cpu +io +memory +hugetlb +pids"
        );
        assert_eq!(file("cpu.weight"), "100");
        assert_eq!(file("cpu.max"), "50000 100000");
        assert_eq!(file("memory.max"), (64u64 << 20).to_string());
        assert_eq!(file("memory.swap.max"), "0");
        assert_eq!(file("pids.max"), "100");

        // No quota but a period: unlimited.
        let unlimited = Resources {
            cpu_period: Some(100_000),
            ..Resources::default()
        };
        cg.create_pod("u1", &unlimited).expect("pod again");
        assert_eq!(file("cpu.max"), "max 100000");

        // The container cgroup libcontainer would create below the pod.
        let ctr = cg.container_path("u1", "c1").expect("path");
        let cdir = r.join(ctr.trim_start_matches('/'));
        fs::create_dir_all(&cdir).expect("container dir");
        fs::write(
            cdir.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .expect("events");
        assert_eq!(cg.oom_kills(&ctr).expect("oom"), 1);
        fs::write(cdir.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").expect("cpu.stat");
        fs::write(cdir.join("memory.current"), "4096\n").expect("current");
        fs::write(cdir.join("memory.max"), "max\n").expect("max");
        fs::write(cdir.join("memory.stat"), "anon 1024\ninactive_file 1024\n").expect("stat");
        fs::write(cdir.join("pids.current"), "2\n").expect("pids");
        let s = cg.stats(&ctr).expect("stats");
        assert_eq!(s.cpu_usage_ns, Some(1_500_000));
        assert_eq!(s.memory_usage_bytes, Some(4096));
        assert_eq!(s.memory_working_set_bytes, Some(3072));
        assert_eq!(s.memory_limit_bytes, None);
        assert_eq!(s.pids, Some(2));
    }

    #[test]
    fn v1_writes_against_fake_hierarchies() {
        let root = tempfile::Builder::new()
            .prefix("berth-test-cgv1-")
            .tempdir()
            .expect("tempdir");
        let r = root.path();
        let mut hs = Vec::new();
        for c in ["cpu", "memory", "pids", "cpuset"] {
            fs::create_dir_all(r.join(c)).expect("mount");
            hs.push(V1Hierarchy {
                mount: r.join(c),
                controllers: vec![c.to_string()],
            });
        }
        fs::write(r.join("cpuset/cpuset.cpus"), "0-1\n").expect("cpus");
        fs::write(r.join("cpuset/cpuset.mems"), "0\n").expect("mems");
        // A fake cpuset cgroup "kernel": new directories start with empty files.
        fs::create_dir_all(r.join("cpuset/berth/podu1")).expect("dirs");
        for d in ["cpuset/berth", "cpuset/berth/podu1"] {
            fs::write(r.join(d).join("cpuset.cpus"), "").expect("cpus");
            fs::write(r.join(d).join("cpuset.mems"), "").expect("mems");
        }
        fs::create_dir_all(r.join("memory/berth/podu1")).expect("memory dir");
        fs::write(r.join("memory/berth/podu1/memory.memsw.limit_in_bytes"), "").expect("memsw");
        let cg = Cgroups::v1_with(hs, "/berth").expect("cgroups");
        let limits = Resources {
            cpu_shares: Some(512),
            cpu_quota: Some(20_000),
            cpu_period: None,
            memory_limit: Some(1 << 20),
            pids_limit: Some(10),
        };
        cg.create_pod("u1", &limits).expect("pod");
        let read = |p: &str| fs::read_to_string(r.join(p)).expect(p);
        assert_eq!(read("cpuset/berth/podu1/cpuset.cpus"), "0-1");
        assert_eq!(read("cpu/berth/podu1/cpu.shares"), "512");
        assert_eq!(read("cpu/berth/podu1/cpu.cfs_quota_us"), "20000");
        assert_eq!(read("cpu/berth/podu1/cpu.cfs_period_us"), "100000");
        assert_eq!(read("memory/berth/podu1/memory.limit_in_bytes"), "1048576");
        assert_eq!(
            read("memory/berth/podu1/memory.memsw.limit_in_bytes"),
            "1048576"
        );
        assert_eq!(read("pids/berth/podu1/pids.max"), "10");
        fs::write(
            r.join("memory/berth/podu1/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .expect("oom_control");
        assert_eq!(cg.oom_kills("/berth/podu1").expect("oom"), 2);
    }
}
