//! What the kubelet decides about one container, and its translation into an OCI runtime
//! spec (`config.json`) for libcontainer.
//!
//! Pure apart from logging: the host facts that shape the spec (rlimit hard limits, whether
//! this process may lower `oom_score_adj`) come in as a [`HostLimits`] value, so the
//! translation is testable without a container. Invariants of every spec built here:
//! a new pid, mount and cgroup namespace per container; net/ipc/uts either joined from the
//! pod sandbox or new; Docker's default capability set unless told otherwise; the
//! RuntimeDefault seccomp profile (an embedded asset) unless unconfined or privileged;
//! runc-like masked and read-only `/proc` paths; a device cgroup that denies everything
//! except the runtime's default devices; no rlimit above what the host lets us set.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::OciSpecError;
use oci_spec::runtime::{
    Arch, Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, LinuxSeccomp, LinuxSeccompAction,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder, Mount, MountBuilder, PosixRlimit,
    PosixRlimitBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

pub use oci_spec::runtime::PosixRlimitType;

/// The PATH a container gets when its environment names none (Docker's and containerd's).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The CFS period Kubernetes uses, in microseconds.
pub const DEFAULT_CPU_PERIOD: u64 = 100_000;

/// RLIMIT_NOFILE asked for by default (containerd under systemd gives pods this much); it is
/// clamped to the host's hard limit, as root here may lack CAP_SYS_RESOURCE.
pub const DEFAULT_NOFILE: u64 = 1_048_576;

/// The RuntimeDefault seccomp profile: our own allow-list with Docker's semantics
/// (default action ERRNO(EPERM)), in OCI `LinuxSeccomp` JSON.
pub const SECCOMP_DEFAULT_JSON: &str = include_str!("../../assets/seccomp-default.json");

/// Docker's default capability set.
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Every capability oci-spec knows, indexed by its bit number in the kernel's capability
/// masks (what a privileged container gets, as far as the host allows).
pub const ALL_CAPABILITIES: [Capability; 41] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::LinuxImmutable,
    Capability::NetBindService,
    Capability::NetBroadcast,
    Capability::NetAdmin,
    Capability::NetRaw,
    Capability::IpcLock,
    Capability::IpcOwner,
    Capability::SysModule,
    Capability::SysRawio,
    Capability::SysChroot,
    Capability::SysPtrace,
    Capability::SysPacct,
    Capability::SysAdmin,
    Capability::SysBoot,
    Capability::SysNice,
    Capability::SysResource,
    Capability::SysTime,
    Capability::SysTtyConfig,
    Capability::Mknod,
    Capability::Lease,
    Capability::AuditWrite,
    Capability::AuditControl,
    Capability::Setfcap,
    Capability::MacOverride,
    Capability::MacAdmin,
    Capability::Syslog,
    Capability::WakeAlarm,
    Capability::BlockSuspend,
    Capability::AuditRead,
    Capability::Perfmon,
    Capability::Bpf,
    Capability::CheckpointRestore,
];

/// The bit of a capability in `/proc/<pid>/status` masks.
pub fn capability_bit(cap: Capability) -> u32 {
    ALL_CAPABILITIES
        .iter()
        .position(|c| *c == cap)
        .map_or(u32::MAX, |i| i as u32)
}

/// Paths hidden from the container (runc's list plus containerd's additions).
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths the container may read but not write.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Syscalls the RuntimeDefault profile allows only when the container holds a capability
/// that makes them useful (Docker's profile has the same shape; the kernel still checks the
/// capability itself).
const CAPABILITY_SYSCALLS: &[(Capability, &[&str])] = &[
    (
        Capability::SysAdmin,
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    (Capability::SysBoot, &["reboot"]),
    (Capability::SysChroot, &["chroot"]),
    (
        Capability::SysModule,
        &["delete_module", "init_module", "finit_module"],
    ),
    (Capability::SysPacct, &["acct"]),
    (
        Capability::SysPtrace,
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
        ],
    ),
    (Capability::SysRawio, &["iopl", "ioperm"]),
    (
        Capability::SysTime,
        &[
            "settimeofday",
            "stime",
            "clock_settime",
            "clock_settime64",
            "clock_adjtime",
            "clock_adjtime64",
        ],
    ),
    (Capability::SysTtyConfig, &["vhangup"]),
    (
        Capability::SysNice,
        &["move_pages", "set_mempolicy_home_node"],
    ),
    (Capability::Syslog, &["syslog"]),
    (Capability::Bpf, &["bpf"]),
    (Capability::Perfmon, &["perf_event_open"]),
    (
        Capability::DacReadSearch,
        &["open_by_handle_at", "name_to_handle_at"],
    ),
];

/// Everything the kubelet decides about one container. Paths on the host are absolute.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerConfig {
    /// Unique on this node; letters, digits, `_`, `-`, `.`, `+`; not starting with `.`.
    pub id: String,
    /// The already-mounted root filesystem.
    pub rootfs: PathBuf,
    /// The command line: entrypoint + args, already resolved against the image.
    pub args: Vec<String>,
    /// `NAME=value` entries. A `PATH` is added when none is given.
    pub env: Vec<String>,
    /// Working directory inside the container.
    pub cwd: PathBuf,
    pub user: User,
    /// Set only when the container has a UTS namespace of its own; a pod's containers get
    /// the sandbox's hostname by joining its UTS namespace.
    pub hostname: Option<String>,
    /// Bind mounts: `/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`, `/dev/shm`, volumes.
    pub mounts: Vec<BindMount>,
    /// Namespaces of the pod sandbox to join; `None` means a new one.
    pub namespaces: NamespacePaths,
    /// The container's cgroup, e.g. `/berth/pod<uid>/<id>` (see [`super::cgroups`]).
    pub cgroups_path: String,
    pub resources: Resources,
    pub security: Security,
    /// Resource limits; each is clamped to the host's hard limit.
    pub rlimits: Vec<Rlimit>,
    /// Kubernetes sets this by QoS class; clamped when this host cannot lower it.
    pub oom_score_adj: Option<i32>,
    /// Where the CRI log of this run goes, below the runtime's log root.
    pub log: LogLocation,
}

impl ContainerConfig {
    /// A container with Docker's defaults: root, `/` as working directory, default
    /// security, no limits, NOFILE asked for at [`DEFAULT_NOFILE`].
    pub fn new(id: impl Into<String>, rootfs: impl Into<PathBuf>, args: Vec<String>) -> Self {
        ContainerConfig {
            id: id.into(),
            rootfs: rootfs.into(),
            args,
            env: Vec::new(),
            cwd: PathBuf::from("/"),
            user: User::default(),
            hostname: None,
            mounts: Vec::new(),
            namespaces: NamespacePaths::default(),
            cgroups_path: String::new(),
            resources: Resources::default(),
            security: Security::default(),
            rlimits: vec![Rlimit {
                kind: PosixRlimitType::RlimitNofile,
                soft: DEFAULT_NOFILE,
                hard: DEFAULT_NOFILE,
            }],
            oom_score_adj: None,
            log: LogLocation::default(),
        }
    }

    /// Joins the pod sandbox: its net/ipc/uts namespaces, and bind mounts of its
    /// `/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname` and `/dev/shm`.
    pub fn join_sandbox(&mut self, sandbox: &super::sandbox::SandboxPaths) {
        self.namespaces = NamespacePaths {
            net: Some(sandbox.net.clone()),
            ipc: Some(sandbox.ipc.clone()),
            uts: Some(sandbox.uts.clone()),
        };
        self.hostname = None;
        let ro = self.security.read_only_rootfs;
        for (source, destination, readonly) in [
            (&sandbox.hosts, "/etc/hosts", ro),
            (&sandbox.resolv_conf, "/etc/resolv.conf", ro),
            (&sandbox.hostname, "/etc/hostname", ro),
            // /dev/shm stays writable: it is the pod's shared memory, not the image.
            (&sandbox.shm, "/dev/shm", false),
        ] {
            self.mounts.push(BindMount {
                source: source.clone(),
                destination: PathBuf::from(destination),
                readonly,
            });
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: PathBuf,
    pub readonly: bool,
}

/// Existing namespaces to join (nsfs files, e.g. the sandbox's bind mounts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespacePaths {
    pub net: Option<PathBuf>,
    pub ipc: Option<PathBuf>,
    pub uts: Option<PathBuf>,
}

/// cgroup limits, in cgroup v1 units (the v2 path converts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resources {
    /// `cpu.shares`; see [`milli_cpu_to_shares`].
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per `cpu_period`; see [`milli_cpu_to_quota`].
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds ([`DEFAULT_CPU_PERIOD`] when a quota is set without one).
    pub cpu_period: Option<u64>,
    /// Bytes; swap is limited to the same value, i.e. no swap.
    pub memory_limit: Option<i64>,
    pub pids_limit: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    /// All capabilities, no seccomp, no masked paths, all devices, writable /sys.
    pub privileged: bool,
    /// Capability names as Kubernetes writes them (`NET_ADMIN`; `CAP_` prefix allowed;
    /// `ALL`).
    pub add_capabilities: Vec<String>,
    pub drop_capabilities: Vec<String>,
    /// Sets `no_new_privs` (Kubernetes: `allowPrivilegeEscalation: false`). On by default.
    pub no_new_privileges: bool,
    pub read_only_rootfs: bool,
    pub seccomp: SeccompProfile,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            privileged: false,
            add_capabilities: Vec::new(),
            drop_capabilities: Vec::new(),
            no_new_privileges: true,
            read_only_rootfs: false,
            seccomp: SeccompProfile::RuntimeDefault,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SeccompProfile {
    /// The embedded allow-list ([`SECCOMP_DEFAULT_JSON`]).
    #[default]
    RuntimeDefault,
    Unconfined,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub kind: PosixRlimitType,
    pub soft: u64,
    pub hard: u64,
}

/// Which pod and run a CRI log file belongs to:
/// `<namespace>_<pod_name>_<pod_uid>/<container_name>/<restart_count>.log`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogLocation {
    pub namespace: String,
    pub pod_name: String,
    pub pod_uid: String,
    pub container_name: String,
    pub restart_count: u32,
}

impl LogLocation {
    /// The path below the log root; `None` when a part is empty or could escape it.
    pub fn relative_path(&self) -> Option<PathBuf> {
        let parts = [
            &self.namespace,
            &self.pod_name,
            &self.pod_uid,
            &self.container_name,
        ];
        if parts.iter().any(|p| !is_path_component(p)) {
            return None;
        }
        Some(
            PathBuf::from(format!(
                "{}_{}_{}",
                self.namespace, self.pod_name, self.pod_uid
            ))
            .join(&self.container_name)
            .join(format!("{}.log", self.restart_count)),
        )
    }

    /// The pod's log directory below the log root.
    pub fn pod_dir(&self) -> Option<PathBuf> {
        self.relative_path()
            .and_then(|p| p.parent().and_then(Path::parent).map(Path::to_path_buf))
    }
}

fn is_path_component(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('\0')
}

/// Host facts the spec depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLimits {
    /// The hard limit this process has for each rlimit kind (what the container may get).
    pub rlimit_hard: Vec<(PosixRlimitType, u64)>,
    /// Without CAP_SYS_RESOURCE a process may raise its `oom_score_adj` but not lower it.
    pub can_lower_oom_score_adj: bool,
    pub oom_score_adj: i32,
    /// This process's permitted capabilities (CapPrm): a container cannot get more.
    pub capabilities: u64,
}

impl HostLimits {
    /// Reads this process's rlimits, capabilities and `oom_score_adj`. Whatever cannot be
    /// read is taken as "no limit" / "may lower" so that the kernel reports the problem.
    pub fn current() -> HostLimits {
        use nix::sys::resource::{Resource, getrlimit};
        let kinds = [
            (PosixRlimitType::RlimitNofile, Resource::RLIMIT_NOFILE),
            (PosixRlimitType::RlimitNproc, Resource::RLIMIT_NPROC),
            (PosixRlimitType::RlimitCore, Resource::RLIMIT_CORE),
            (PosixRlimitType::RlimitMemlock, Resource::RLIMIT_MEMLOCK),
            (PosixRlimitType::RlimitStack, Resource::RLIMIT_STACK),
            (PosixRlimitType::RlimitFsize, Resource::RLIMIT_FSIZE),
            (PosixRlimitType::RlimitAs, Resource::RLIMIT_AS),
            (PosixRlimitType::RlimitMsgqueue, Resource::RLIMIT_MSGQUEUE),
            (PosixRlimitType::RlimitNice, Resource::RLIMIT_NICE),
            (PosixRlimitType::RlimitRtprio, Resource::RLIMIT_RTPRIO),
            (
                PosixRlimitType::RlimitSigpending,
                Resource::RLIMIT_SIGPENDING,
            ),
        ];
        let rlimit_hard = kinds
            .iter()
            .filter_map(|(kind, res)| getrlimit(*res).ok().map(|(_, hard)| (*kind, hard)))
            .collect();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let mask = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        };
        // CAP_SYS_RESOURCE is bit 24 of CapEff.
        let can_lower = mask("CapEff:").is_none_or(|caps| caps & (1 << 24) != 0);
        let capabilities = mask("CapPrm:").unwrap_or(u64::MAX);
        let oom_score_adj = std::fs::read_to_string("/proc/self/oom_score_adj")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        HostLimits {
            rlimit_hard,
            can_lower_oom_score_adj: can_lower,
            oom_score_adj,
            capabilities,
        }
    }

    /// This process's hard limit for `kind`, if known.
    pub fn hard_limit(&self, kind: PosixRlimitType) -> Option<u64> {
        self.rlimit_hard
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, h)| *h)
    }
}

/// Why a container's configuration cannot become a spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(
        "container id {id:?} is invalid: use letters, digits, '_', '-', '.' and '+', not starting with '.'"
    )]
    InvalidId { id: String },
    #[error("container {id}: the command is empty; give the container args or an image entrypoint")]
    EmptyArgs { id: String },
    #[error("container {id}: {what} {path:?} must be an absolute path")]
    RelativePath {
        id: String,
        what: &'static str,
        path: PathBuf,
    },
    #[error("container {id}: environment entry {entry:?} is not NAME=value")]
    InvalidEnv { id: String, entry: String },
    #[error(
        "container {id}: unknown capability {name:?}; use names like NET_ADMIN or CAP_NET_ADMIN"
    )]
    UnknownCapability { id: String, name: String },
    #[error("the embedded seccomp profile is not valid OCI LinuxSeccomp JSON")]
    SeccompProfile(#[source] serde_json::Error),
    #[error("container {id}: cannot build the OCI {what}")]
    Build {
        id: String,
        what: &'static str,
        #[source]
        source: OciSpecError,
    },
}

/// Whether `id` is usable as a container id (and a file name).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'))
}

/// Kubernetes' milli-CPU → `cpu.shares`: `max(2, milli * 1024 / 1000)`, at most 262144.
pub fn milli_cpu_to_shares(milli_cpu: i64) -> u64 {
    const MIN_SHARES: u64 = 2;
    const MAX_SHARES: u64 = 262_144;
    if milli_cpu <= 0 {
        return MIN_SHARES;
    }
    let shares = (milli_cpu as u64).saturating_mul(1024) / 1000;
    shares.clamp(MIN_SHARES, MAX_SHARES)
}

/// Kubernetes' milli-CPU limit → CFS quota for `period` µs; `None` for no limit. A quota is
/// at least 1000 µs (the kernel's minimum).
pub fn milli_cpu_to_quota(milli_cpu: i64, period: u64) -> Option<i64> {
    const MIN_QUOTA: i64 = 1000;
    if milli_cpu <= 0 {
        return None;
    }
    let quota = i64::try_from((milli_cpu as u128 * period as u128 / 1000).min(i64::MAX as u128))
        .unwrap_or(i64::MAX);
    Some(quota.max(MIN_QUOTA))
}

/// cgroup v1 `cpu.shares` → cgroup v2 `cpu.weight`. Uses the same curve as libcgroups (and
/// runc ≥ 1.3) for container cgroups, so that pod and container cgroups agree: 2 → 1,
/// 1024 → 100, 262144 → 10000.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    (10f64.powf(exponent).ceil() as u64).clamp(1, 10_000)
}

/// Translates the kubelet's decisions into an OCI runtime spec.
pub fn build_spec(config: &ContainerConfig, host: &HostLimits) -> Result<Spec, SpecError> {
    let id = &config.id;
    if !valid_id(id) {
        return Err(SpecError::InvalidId { id: id.clone() });
    }
    if config.args.is_empty() {
        return Err(SpecError::EmptyArgs { id: id.clone() });
    }
    let absolute = |what: &'static str, path: &Path| {
        if path.is_absolute() {
            Ok(())
        } else {
            Err(SpecError::RelativePath {
                id: id.clone(),
                what,
                path: path.to_path_buf(),
            })
        }
    };
    absolute("rootfs", &config.rootfs)?;
    absolute("working directory", &config.cwd)?;
    for m in &config.mounts {
        absolute("mount source", &m.source)?;
        absolute("mount destination", &m.destination)?;
    }
    for ns in [
        &config.namespaces.net,
        &config.namespaces.ipc,
        &config.namespaces.uts,
    ]
    .into_iter()
    .flatten()
    {
        absolute("namespace path", ns)?;
    }
    let mut env = Vec::with_capacity(config.env.len() + 1);
    for entry in &config.env {
        match entry.split_once('=') {
            Some((name, _)) if !name.is_empty() && !entry.contains('\0') => env.push(entry.clone()),
            _ => {
                return Err(SpecError::InvalidEnv {
                    id: id.clone(),
                    entry: entry.clone(),
                });
            }
        }
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }

    let sec = &config.security;
    let caps = capability_set(id, sec, host)?;
    let build = |what: &'static str| {
        let id = id.clone();
        move |source| SpecError::Build {
            id: id.clone(),
            what,
            source,
        }
    };

    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps.clone())
        .inheritable(Capabilities::new())
        .ambient(Capabilities::new())
        .build()
        .map_err(build("capabilities"))?;

    let user = UserBuilder::default()
        .uid(config.user.uid)
        .gid(config.user.gid)
        .additional_gids(config.user.additional_gids.clone())
        .build()
        .map_err(build("user"))?;

    let mut process = ProcessBuilder::default()
        .terminal(false)
        .user(user)
        .args(config.args.clone())
        .env(env)
        .cwd(config.cwd.clone())
        .capabilities(capabilities)
        .rlimits(clamp_rlimits(id, &config.rlimits, host, build("rlimits"))?)
        .build()
        .map_err(build("process"))?;
    // libcontainer treats Some(false) like "set", and then loads seccomp after dropping
    // CAP_SYS_ADMIN, which fails without no_new_privs: leave it unset instead.
    process.set_no_new_privileges(sec.no_new_privileges.then_some(true));
    process.set_oom_score_adj(config.oom_score_adj.map(|adj| clamp_oom(id, adj, host)));

    let root = RootBuilder::default()
        .path(config.rootfs.clone())
        .readonly(sec.read_only_rootfs)
        .build()
        .map_err(build("root"))?;

    let mut linux = LinuxBuilder::default()
        .cgroups_path(PathBuf::from(&config.cgroups_path))
        .namespaces(namespaces(&config.namespaces, build("namespaces"))?)
        .resources(resources(
            &config.resources,
            sec.privileged,
            build("resources"),
        )?);
    if sec.privileged {
        // The builder starts from oci-spec's defaults, which mask paths: clear them.
        linux = linux
            .masked_paths(Vec::<String>::new())
            .readonly_paths(Vec::<String>::new());
    } else {
        linux = linux
            .masked_paths(
                MASKED_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            )
            .readonly_paths(
                READONLY_PATHS
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>(),
            );
        if sec.seccomp == SeccompProfile::RuntimeDefault {
            linux = linux.seccomp(runtime_default_seccomp(&caps)?);
        }
    }
    let linux = linux.build().map_err(build("linux section"))?;

    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .process(process)
        .root(root)
        .mounts(mounts(config, build("mounts"))?)
        .linux(linux)
        .build()
        .map_err(build("spec"))?;
    // A hostname only makes sense in a UTS namespace of the container's own; a pod's
    // containers inherit the sandbox's.
    spec.set_hostname(if config.namespaces.uts.is_none() {
        config.hostname.clone()
    } else {
        None
    });
    Ok(spec)
}

fn parse_capability(id: &str, name: &str) -> Result<Capability, SpecError> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    bare.parse::<Capability>()
        .map_err(|_| SpecError::UnknownCapability {
            id: id.to_string(),
            name: name.to_string(),
        })
}

fn is_all(name: &str) -> bool {
    name.trim().eq_ignore_ascii_case("ALL")
}

/// Docker's default set (or every capability when privileged), then drops, then adds:
/// `drop: [ALL], add: [NET_BIND_SERVICE]` leaves exactly NET_BIND_SERVICE.
fn capability_set(id: &str, sec: &Security, host: &HostLimits) -> Result<Capabilities, SpecError> {
    let mut caps: Capabilities = if sec.privileged {
        ALL_CAPABILITIES.iter().copied().collect()
    } else {
        DEFAULT_CAPABILITIES.iter().copied().collect()
    };
    if !sec.privileged {
        for name in &sec.drop_capabilities {
            if is_all(name) {
                caps.clear();
            } else {
                caps.remove(&parse_capability(id, name)?);
            }
        }
        for name in &sec.add_capabilities {
            if is_all(name) {
                caps.extend(ALL_CAPABILITIES.iter().copied());
            } else {
                caps.insert(parse_capability(id, name)?);
            }
        }
    }
    // A process cannot hand out capabilities it does not hold (these hosts' root lacks
    // CAP_SYS_RESOURCE): libcontainer would fail to set them, so leave them out.
    let missing: Vec<Capability> = caps
        .iter()
        .copied()
        .filter(|c| host.capabilities & (1u64 << capability_bit(*c).min(63)) == 0)
        .collect();
    if !missing.is_empty() {
        tracing::info!(
            container = id,
            capabilities = ?missing,
            "capabilities left out: berth itself does not hold them on this host"
        );
        for c in &missing {
            caps.remove(c);
        }
    }
    Ok(caps)
}

fn clamp_rlimits(
    id: &str,
    wanted: &[Rlimit],
    host: &HostLimits,
    err: impl Fn(OciSpecError) -> SpecError,
) -> Result<Vec<PosixRlimit>, SpecError> {
    let mut out = Vec::with_capacity(wanted.len());
    for r in wanted {
        let (mut soft, mut hard) = (r.soft, r.hard.max(r.soft));
        if let Some(max) = host.hard_limit(r.kind)
            && hard > max
        {
            // Debug only: it happens to every container on such hosts; Runtime::new says
            // it once at info level.
            tracing::debug!(
                container = id,
                rlimit = ?r.kind,
                requested = hard,
                granted = max,
                "rlimit clamped to the host's hard limit (no CAP_SYS_RESOURCE to raise it)"
            );
            hard = max;
            soft = soft.min(max);
        }
        out.push(
            PosixRlimitBuilder::default()
                .typ(r.kind)
                .soft(soft)
                .hard(hard)
                .build()
                .map_err(&err)?,
        );
    }
    Ok(out)
}

fn clamp_oom(id: &str, wanted: i32, host: &HostLimits) -> i32 {
    let wanted = wanted.clamp(-1000, 1000);
    if !host.can_lower_oom_score_adj && wanted < host.oom_score_adj {
        tracing::info!(
            container = id,
            requested = wanted,
            granted = host.oom_score_adj,
            "oom_score_adj clamped: this host does not let berth lower it (no CAP_SYS_RESOURCE)"
        );
        return host.oom_score_adj;
    }
    wanted
}

fn namespaces(
    paths: &NamespacePaths,
    err: impl Fn(OciSpecError) -> SpecError,
) -> Result<Vec<LinuxNamespace>, SpecError> {
    let mut out = Vec::with_capacity(6);
    for typ in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
    ] {
        out.push(
            LinuxNamespaceBuilder::default()
                .typ(typ)
                .build()
                .map_err(&err)?,
        );
    }
    for (typ, path) in [
        (LinuxNamespaceType::Network, &paths.net),
        (LinuxNamespaceType::Ipc, &paths.ipc),
        (LinuxNamespaceType::Uts, &paths.uts),
    ] {
        let mut b = LinuxNamespaceBuilder::default().typ(typ);
        if let Some(p) = path {
            b = b.path(p.clone());
        }
        out.push(b.build().map_err(&err)?);
    }
    Ok(out)
}

fn resources(
    r: &Resources,
    privileged: bool,
    err: impl Fn(OciSpecError) -> SpecError,
) -> Result<oci_spec::runtime::LinuxResources, SpecError> {
    // Deny every device; libcgroups then allows its defaults (null, zero, full, tty,
    // urandom, random, console, pts, ptmx). Privileged containers may use any device.
    let devices = vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(privileged)
            .access("rwm")
            .build()
            .map_err(&err)?,
    ];
    let mut b = LinuxResourcesBuilder::default().devices(devices);
    if r.cpu_shares.is_some() || r.cpu_quota.is_some() || r.cpu_period.is_some() {
        let mut cpu = LinuxCpuBuilder::default();
        if let Some(s) = r.cpu_shares {
            cpu = cpu.shares(s);
        }
        if let Some(q) = r.cpu_quota {
            cpu = cpu
                .quota(q)
                .period(r.cpu_period.unwrap_or(DEFAULT_CPU_PERIOD));
        } else if let Some(p) = r.cpu_period {
            cpu = cpu.period(p);
        }
        b = b.cpu(cpu.build().map_err(&err)?);
    }
    if let Some(limit) = r.memory_limit {
        // swap = limit: memory+swap may not exceed the memory limit, i.e. no swap.
        b = b.memory(
            LinuxMemoryBuilder::default()
                .limit(limit)
                .swap(limit)
                .build()
                .map_err(&err)?,
        );
    }
    if let Some(limit) = r.pids_limit {
        b = b.pids(
            LinuxPidsBuilder::default()
                .limit(limit)
                .build()
                .map_err(&err)?,
        );
    }
    b.build().map_err(err)
}

fn mount(
    destination: &str,
    typ: &str,
    source: &str,
    options: &[&str],
    err: &impl Fn(OciSpecError) -> SpecError,
) -> Result<Mount, SpecError> {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(err)
}

fn mounts(
    config: &ContainerConfig,
    err: impl Fn(OciSpecError) -> SpecError,
) -> Result<Vec<Mount>, SpecError> {
    let privileged = config.security.privileged;
    let sys_mode = if privileged { "rw" } else { "ro" };
    let shm_bound = config
        .mounts
        .iter()
        .any(|m| m.destination == Path::new("/dev/shm"));
    let mut out = vec![
        mount(
            "/proc",
            "proc",
            "proc",
            &["nosuid", "noexec", "nodev"],
            &err,
        )?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
            &err,
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
            &err,
        )?,
    ];
    if !shm_bound {
        out.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            &err,
        )?);
    }
    out.push(mount(
        "/dev/mqueue",
        "mqueue",
        "mqueue",
        &["nosuid", "noexec", "nodev"],
        &err,
    )?);
    out.push(mount(
        "/sys",
        "sysfs",
        "sysfs",
        &["nosuid", "noexec", "nodev", sys_mode],
        &err,
    )?);
    out.push(mount(
        "/sys/fs/cgroup",
        "cgroup",
        "cgroup",
        &["nosuid", "noexec", "nodev", "relatime", sys_mode],
        &err,
    )?);
    for m in &config.mounts {
        let source = m.source.to_string_lossy();
        let destination = m.destination.to_string_lossy();
        let mode = if m.readonly { "ro" } else { "rw" };
        out.push(mount(
            &destination,
            "bind",
            &source,
            &["rbind", "rprivate", mode],
            &err,
        )?);
    }
    Ok(out)
}

fn seccomp_base() -> Result<LinuxSeccomp, SpecError> {
    // Parsed per container (≈ 10 kB of JSON, tens of µs) rather than cached, so that a
    // broken asset is a typed error and not a poisoned global.
    serde_json::from_str(SECCOMP_DEFAULT_JSON).map_err(SpecError::SeccompProfile)
}

/// The architectures a filter covers on this machine: the native one and its 32-bit
/// compat ABI, so that 32-bit binaries run and their syscalls are filtered too. x32 is left
/// out: libseccomp's x86_64 filter already refuses x32 syscalls, most kernels disable the
/// ABI, and each extra architecture costs milliseconds of filter generation per container
/// start (measured: x86_64 + x86 + x32 ≈ 14 ms, x86_64 + x86 ≈ 4–7 ms, release build).
fn seccomp_architectures() -> Vec<Arch> {
    match std::env::consts::ARCH {
        "x86_64" => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86],
        "aarch64" => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        "riscv64" => vec![Arch::ScmpArchRiscv64],
        "s390x" => vec![Arch::ScmpArchS390x, Arch::ScmpArchS390],
        "powerpc64" => vec![Arch::ScmpArchPpc64le],
        _ => vec![Arch::ScmpArchNative],
    }
}

/// The RuntimeDefault profile for a container holding `caps`.
pub fn runtime_default_seccomp(caps: &Capabilities) -> Result<LinuxSeccomp, SpecError> {
    let mut profile = seccomp_base()?;
    let mut extra: Vec<&str> = Vec::new();
    for (cap, names) in CAPABILITY_SYSCALLS {
        if caps.contains(cap) {
            for n in *names {
                if !extra.contains(n) {
                    extra.push(n);
                }
            }
        }
    }
    let unrestricted: HashSet<&str> = extra.iter().copied().collect();
    let mut syscalls: Vec<LinuxSyscall> = Vec::new();
    for rule in profile.syscalls().iter().flatten() {
        // A capability that allows a syscall outright replaces the base profile's
        // conditional rule for it (libseccomp refuses two actions for one syscall).
        let names: Vec<String> = rule
            .names()
            .iter()
            .filter(|n| !unrestricted.contains(n.as_str()))
            .cloned()
            .collect();
        if names.is_empty() {
            continue;
        }
        let mut rule = rule.clone();
        rule.set_names(names);
        if let Some(args) = rule.args().clone() {
            let args = args
                .into_iter()
                .map(libcontainer_masked_eq)
                .collect::<Result<Vec<_>, _>>()?;
            rule.set_args(Some(args));
        }
        syscalls.push(rule);
    }
    if !extra.is_empty() {
        syscalls.push(
            LinuxSyscallBuilder::default()
                .names(extra.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .action(LinuxSeccompAction::ScmpActAllow)
                .build()
                .map_err(|source| SpecError::Build {
                    id: String::new(),
                    what: "seccomp rule",
                    source,
                })?,
        );
    }
    profile.set_syscalls(Some(syscalls));
    profile.set_architectures(Some(seccomp_architectures()));
    Ok(profile)
}

/// The asset follows runc/Docker: for `SCMP_CMP_MASKED_EQ`, `value` is the mask and
/// `valueTwo` the expected result. libcontainer 0.7 passes them to libseccomp the other way
/// round, so swap them for it (a container test checks that fork works and that
/// `unshare -U` is refused).
fn libcontainer_masked_eq(
    arg: oci_spec::runtime::LinuxSeccompArg,
) -> Result<oci_spec::runtime::LinuxSeccompArg, SpecError> {
    if arg.op() != LinuxSeccompOperator::ScmpCmpMaskedEq {
        return Ok(arg);
    }
    oci_spec::runtime::LinuxSeccompArgBuilder::default()
        .index(arg.index())
        .value(arg.value_two().unwrap_or(0))
        .value_two(arg.value())
        .op(arg.op())
        .build()
        .map_err(|source| SpecError::Build {
            id: String::new(),
            what: "seccomp argument",
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostLimits {
        HostLimits {
            rlimit_hard: vec![(PosixRlimitType::RlimitNofile, 20_000)],
            can_lower_oom_score_adj: false,
            oom_score_adj: 0,
            // Everything but CAP_SYS_RESOURCE, like root on these hosts.
            capabilities: ((1u64 << 41) - 1) & !(1 << 24),
        }
    }

    fn config() -> ContainerConfig {
        let mut c = ContainerConfig::new("c1", "/rootfs", vec!["sh".into()]);
        c.cgroups_path = "/berth/podx/c1".into();
        c
    }

    #[test]
    fn capability_bits_match_the_kernel() {
        assert_eq!(capability_bit(Capability::Chown), 0);
        assert_eq!(capability_bit(Capability::SysResource), 24);
        assert_eq!(capability_bit(Capability::Setfcap), 31);
        assert_eq!(capability_bit(Capability::CheckpointRestore), 40);
        let docker: u64 = DEFAULT_CAPABILITIES
            .iter()
            .map(|c| 1u64 << capability_bit(*c))
            .sum();
        assert_eq!(docker, 0xa80425fb);
    }

    #[test]
    fn cpu_helpers_follow_kubernetes() {
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(100), 102);
        assert_eq!(milli_cpu_to_shares(1000), 1024);
        assert_eq!(milli_cpu_to_shares(i64::MAX), 262_144);
        assert_eq!(milli_cpu_to_quota(0, 100_000), None);
        assert_eq!(milli_cpu_to_quota(250, 100_000), Some(25_000));
        assert_eq!(milli_cpu_to_quota(1, 100_000), Some(1000));
        assert_eq!(milli_cpu_to_quota(2000, 100_000), Some(200_000));
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert!(shares_to_weight(102) < shares_to_weight(1024));
    }

    #[test]
    fn default_spec_has_docker_defaults() {
        let spec = build_spec(&config(), &host()).expect("spec");
        let process = spec.process().as_ref().expect("process");
        let caps = process.capabilities().as_ref().expect("caps");
        let want: Capabilities = DEFAULT_CAPABILITIES.iter().copied().collect();
        assert_eq!(caps.effective().as_ref(), Some(&want));
        assert_eq!(caps.bounding().as_ref(), Some(&want));
        assert_eq!(process.no_new_privileges(), Some(true));
        assert!(
            process
                .env()
                .as_ref()
                .is_some_and(|e| e.iter().any(|v| v == DEFAULT_PATH))
        );
        let rl = process.rlimits().as_ref().expect("rlimits");
        assert_eq!(rl[0].hard(), 20_000);
        assert_eq!(rl[0].soft(), 20_000);
        let linux = spec.linux().as_ref().expect("linux");
        assert!(
            linux
                .masked_paths()
                .as_ref()
                .is_some_and(|m| m.iter().any(|p| p == "/proc/kcore"))
        );
        assert!(linux.seccomp().is_some());
        let ns = linux.namespaces().as_ref().expect("namespaces");
        assert_eq!(ns.len(), 6);
        assert_eq!(spec.hostname(), &None);
    }

    #[test]
    fn seccomp_asset_parses_and_capabilities_widen_it() {
        let base = runtime_default_seccomp(&DEFAULT_CAPABILITIES.iter().copied().collect())
            .expect("profile");
        assert_eq!(base.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(base.default_errno_ret(), Some(1));
        let names = |p: &LinuxSeccomp, action| -> Vec<String> {
            p.syscalls()
                .iter()
                .flatten()
                .filter(|s| s.action() == action && s.args().is_none())
                .flat_map(|s| s.names().clone())
                .collect()
        };
        let allowed = names(&base, LinuxSeccompAction::ScmpActAllow);
        assert!(allowed.iter().any(|n| n == "read"));
        assert!(allowed.iter().any(|n| n == "chroot"));
        assert!(!allowed.iter().any(|n| n == "mount"));
        assert!(!allowed.iter().any(|n| n == "unshare"));
        // clone is only allowed without namespace flags; swapped for libcontainer.
        let clone = base
            .syscalls()
            .iter()
            .flatten()
            .find(|s| s.names().iter().any(|n| n == "clone"))
            .expect("clone rule");
        let arg = &clone.args().as_ref().expect("args")[0];
        assert_eq!(arg.value(), 0);
        assert_eq!(arg.value_two(), Some(0x7E02_0000));

        let mut caps: Capabilities = DEFAULT_CAPABILITIES.iter().copied().collect();
        caps.insert(Capability::SysAdmin);
        let admin = runtime_default_seccomp(&caps).expect("profile");
        let allowed = names(&admin, LinuxSeccompAction::ScmpActAllow);
        assert!(allowed.iter().any(|n| n == "mount"));
        assert!(allowed.iter().any(|n| n == "clone3"));
        // No second, conditional rule for clone/clone3 remains.
        let clone_rules = admin
            .syscalls()
            .iter()
            .flatten()
            .filter(|s| s.names().iter().any(|n| n == "clone" || n == "clone3"))
            .count();
        assert_eq!(clone_rules, 1);
    }

    #[test]
    fn capabilities_add_and_drop() {
        let mut c = config();
        c.security.drop_capabilities = vec!["ALL".into()];
        c.security.add_capabilities = vec!["NET_BIND_SERVICE".into(), "cap_net_admin".into()];
        let spec = build_spec(&c, &host()).expect("spec");
        let caps = spec
            .process()
            .as_ref()
            .and_then(|p| p.capabilities().clone())
            .and_then(|c| c.effective().clone())
            .expect("caps");
        assert_eq!(caps.len(), 2);
        assert!(caps.contains(&Capability::NetAdmin));

        c.security.add_capabilities = vec!["NOPE".into()];
        assert!(matches!(
            build_spec(&c, &host()),
            Err(SpecError::UnknownCapability { .. })
        ));
    }

    #[test]
    fn privileged_and_unconfined() {
        let mut c = config();
        c.security.privileged = true;
        let spec = build_spec(&c, &host()).expect("spec");
        let caps = spec
            .process()
            .as_ref()
            .and_then(|p| p.capabilities().clone())
            .and_then(|c| c.permitted().clone())
            .expect("caps");
        assert_eq!(caps.len(), 40);
        assert!(!caps.contains(&Capability::SysResource));
        let linux = spec.linux().as_ref().expect("linux");
        assert!(linux.seccomp().is_none());
        assert!(linux.masked_paths().as_ref().is_none_or(|m| m.is_empty()));
        c.security.privileged = false;
        c.security.seccomp = SeccompProfile::Unconfined;
        c.security.no_new_privileges = false;
        let spec = build_spec(&c, &host()).expect("spec");
        assert!(spec.linux().as_ref().expect("linux").seccomp().is_none());
        assert_eq!(
            spec.process().as_ref().expect("p").no_new_privileges(),
            None
        );
    }

    #[test]
    fn resources_and_sandbox() {
        let mut c = config();
        c.resources = Resources {
            cpu_shares: Some(512),
            cpu_quota: Some(50_000),
            cpu_period: None,
            memory_limit: Some(16 << 20),
            pids_limit: Some(64),
        };
        c.oom_score_adj = Some(-997);
        c.join_sandbox(&crate::runtime::sandbox::SandboxPaths::new(Path::new(
            "/run/berth/sandboxes/u1",
        )));
        let spec = build_spec(&c, &host()).expect("spec");
        let linux = spec.linux().as_ref().expect("linux");
        let res = linux.resources().as_ref().expect("resources");
        let cpu = res.cpu().as_ref().expect("cpu");
        assert_eq!(cpu.shares(), Some(512));
        assert_eq!(cpu.quota(), Some(50_000));
        assert_eq!(cpu.period(), Some(DEFAULT_CPU_PERIOD));
        let mem = res.memory().as_ref().expect("memory");
        assert_eq!(mem.limit(), Some(16 << 20));
        assert_eq!(mem.swap(), Some(16 << 20));
        assert_eq!(res.pids().as_ref().map(|p| p.limit()), Some(64));
        let net = linux
            .namespaces()
            .iter()
            .flatten()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .expect("net");
        assert_eq!(
            net.path().as_deref(),
            Some(Path::new("/run/berth/sandboxes/u1/net"))
        );
        let mounts = spec.mounts().as_ref().expect("mounts");
        assert!(
            mounts
                .iter()
                .any(|m| m.destination() == Path::new("/etc/hosts"))
        );
        // The sandbox's /dev/shm replaces the private one.
        assert_eq!(
            mounts
                .iter()
                .filter(|m| m.destination() == Path::new("/dev/shm"))
                .count(),
            1
        );
        // Cannot lower oom_score_adj without CAP_SYS_RESOURCE.
        assert_eq!(
            spec.process().as_ref().and_then(|p| p.oom_score_adj()),
            Some(0)
        );
    }

    #[test]
    fn bad_input_is_refused() {
        let mut c = config();
        c.id = "../x".into();
        assert!(matches!(
            build_spec(&c, &host()),
            Err(SpecError::InvalidId { .. })
        ));
        let mut c = config();
        c.args.clear();
        assert!(matches!(
            build_spec(&c, &host()),
            Err(SpecError::EmptyArgs { .. })
        ));
        let mut c = config();
        c.env = vec!["NOEQUALS".into()];
        assert!(matches!(
            build_spec(&c, &host()),
            Err(SpecError::InvalidEnv { .. })
        ));
        let mut c = config();
        c.rootfs = "relative".into();
        assert!(matches!(
            build_spec(&c, &host()),
            Err(SpecError::RelativePath { .. })
        ));
    }

    #[test]
    fn log_paths() {
        let l = LogLocation {
            namespace: "default".into(),
            pod_name: "web".into(),
            pod_uid: "u1".into(),
            container_name: "app".into(),
            restart_count: 2,
        };
        assert_eq!(
            l.relative_path(),
            Some(PathBuf::from("default_web_u1/app/2.log"))
        );
        assert_eq!(l.pod_dir(), Some(PathBuf::from("default_web_u1")));
        let bad = LogLocation {
            container_name: "..".into(),
            ..l
        };
        assert_eq!(bad.relative_path(), None);
    }
}
