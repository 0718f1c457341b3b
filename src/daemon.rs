//! The composition root: configuration → state-dir lock → store → API server (and
//! controllers) → graceful shutdown.
//!
//! The daemon refuses to start when another daemon holds the state directory (an exclusive
//! `flock` on `<state-dir>/daemon.lock`, held for the whole life of the process), creates the
//! socket with mode 0660 and group `berth` when that group exists, tells systemd `READY=1`
//! once the socket accepts, and stops on SIGTERM or SIGINT.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;

use crate::api::registry;
use crate::server::{ApiServer, ServerConfig};
use crate::store::{Store, StoreError, StoreOptions};

/// Default location of the state (LMDB, later images and volumes).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/berth";
/// Default API socket.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";
/// Default location of container logs.
pub const DEFAULT_LOG_DIR: &str = "/var/log/berth/pods";
/// Default location of runtime files (pod sandboxes).
pub const DEFAULT_RUN_DIR: &str = "/run/berth";
/// Default cgroup parent.
pub const DEFAULT_CGROUP_PARENT: &str = crate::runtime::cgroups::DEFAULT_PARENT;
/// Default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/berth/config.yaml";

/// The daemon's configuration (`/etc/berth/config.yaml`; flags override it).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Config {
    /// Where berth keeps its state.
    pub state_dir: PathBuf,
    /// The file this configuration was read from (not a key of it): it goes into backups.
    #[serde(skip)]
    pub config_file: Option<PathBuf>,
    /// The API socket.
    pub socket: PathBuf,
    /// Permission bits of the socket, as an octal string ("0660").
    pub socket_mode: String,
    /// Members of this group may change objects (root always may).
    pub group: String,
    /// Revisions of change history kept for watches to resume from.
    pub watch_history: u64,
    /// How long events are kept after they last happened, in seconds.
    pub event_ttl_seconds: u64,
    /// This node's name (default: the host name, lower-cased).
    pub node_name: Option<String>,
    /// Where container logs go (CRI format, `<ns>_<pod>_<uid>/<container>/<n>.log`).
    pub log_dir: PathBuf,
    /// Runtime files that must not survive a reboot (pod sandboxes).
    pub run_dir: PathBuf,
    /// berth's cgroup parent (below each controller's root on cgroup v1, below the
    /// unified root on v2).
    pub cgroup_parent: String,
    /// The first CrashLoopBackOff delay in milliseconds (Kubernetes: 10 s), doubling up to
    /// five minutes.
    pub crash_loop_back_off_base_millis: u64,
    /// The first delay in milliseconds before the Job controller replaces a failed pod
    /// (Kubernetes: 10 s), doubling up to six minutes.
    pub job_back_off_base_millis: u64,
    /// Most processes one pod may run (its pod cgroup's pids limit); -1: no limit.
    pub pod_pids_limit: i64,
    /// How many pods this node takes (its `pods` capacity; Kubernetes' maxPods).
    pub max_pods: u32,
    /// The pods' addresses (the bridge gets the first one).
    #[serde(rename = "podCIDR")]
    pub pod_cidr: String,
    /// The Services' cluster IPs.
    #[serde(rename = "serviceCIDR")]
    pub service_cidr: String,
    /// The ports NodePort and LoadBalancer Services get on the node (`30000-32767`).
    pub service_node_port_range: String,
    /// The Linux bridge the pods' veth pairs are attached to (at most 15 characters).
    pub bridge_name: String,
    /// berth's own nftables table (family ip): egress masquerade and hostPorts; Services
    /// use `<nftablesTable>_svc`.
    pub nftables_table: String,
    /// The cluster DNS zone (Kubernetes' kubelet `clusterDomain`).
    pub cluster_domain: String,
    /// Where the cluster DNS forwards other names ("ip" or "ip:port"); empty: the host's
    /// /etc/resolv.conf nameservers.
    pub dns_upstreams: Vec<String>,
    /// The address the Ingress listeners bind (0.0.0.0: every IPv4 address of the host).
    pub ingress_address: String,
    /// The Ingress HTTP port; 0 disables the HTTP listener.
    pub ingress_http_port: u16,
    /// The Ingress HTTPS port; 0 disables the HTTPS listener.
    pub ingress_https_port: u16,
    /// Registry mirrors, credentials and CAs for image pulls (k3s' `registries.yaml`
    /// format); read at each pull, a missing file is no configuration.
    pub registries_file: PathBuf,
    /// The registry hosts image pulls may reach (any port); empty: any registry.
    pub pull_registries: Vec<String>,
    /// Image GC: unused images go when the image file system is fuller than this percent
    /// (Kubernetes' `imageGCHighThresholdPercent`)…
    #[serde(rename = "imageGCHighThresholdPercent")]
    pub image_gc_high_threshold_percent: u8,
    /// …down to this percent (`imageGCLowThresholdPercent`).
    #[serde(rename = "imageGCLowThresholdPercent")]
    pub image_gc_low_threshold_percent: u8,
    /// How often the image GC looks, in seconds.
    #[serde(rename = "imageGCPeriodSeconds")]
    pub image_gc_period_seconds: u64,
    /// How often Deployments annotated `berth.dev/auto-update: registry` have their tags
    /// looked up in their registries, in seconds.
    pub auto_update_period_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            config_file: None,
            socket: PathBuf::from(DEFAULT_SOCKET),
            socket_mode: "0660".to_string(),
            group: "berth".to_string(),
            watch_history: 10_000,
            event_ttl_seconds: 3600,
            node_name: None,
            log_dir: PathBuf::from(DEFAULT_LOG_DIR),
            run_dir: PathBuf::from(DEFAULT_RUN_DIR),
            cgroup_parent: DEFAULT_CGROUP_PARENT.to_string(),
            crash_loop_back_off_base_millis: 10_000,
            job_back_off_base_millis: 10_000,
            pod_pids_limit: -1,
            max_pods: crate::kubelet::node::MAX_PODS,
            pod_cidr: crate::network::DEFAULT_POD_CIDR.to_string(),
            service_cidr: crate::network::DEFAULT_SERVICE_CIDR.to_string(),
            service_node_port_range: "30000-32767".to_string(),
            bridge_name: crate::network::DEFAULT_BRIDGE.to_string(),
            nftables_table: crate::network::DEFAULT_NFT_TABLE.to_string(),
            cluster_domain: crate::network::dns::DEFAULT_CLUSTER_DOMAIN.to_string(),
            dns_upstreams: Vec::new(),
            ingress_address: "0.0.0.0".to_string(),
            ingress_http_port: 80,
            ingress_https_port: 443,
            registries_file: PathBuf::from("/etc/berth/registries.yaml"),
            pull_registries: Vec::new(),
            image_gc_high_threshold_percent: 85,
            image_gc_low_threshold_percent: 80,
            image_gc_period_seconds: 300,
            auto_update_period_seconds: 300,
        }
    }
}

/// Errors that stop the daemon from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot read the configuration {}: {source}", .path.display())]
    ConfigRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration in {}: {message}", .path.display())]
    ConfigInvalid { path: PathBuf, message: String },
    #[error("another berth daemon{} is using {}; stop it first (systemctl stop berth)", .pid.map(|p| format!(" (pid {p})")).unwrap_or_default(), .state_dir.display())]
    Locked {
        state_dir: PathBuf,
        pid: Option<u32>,
    },
    #[error("cannot prepare {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Kubelet(#[from] crate::kubelet::KubeletError),
    #[error("cannot bootstrap namespace {name}: {message}")]
    Bootstrap { name: String, message: String },
}

impl Config {
    /// Loads a configuration file. A missing file at the default path means defaults; a
    /// missing file named explicitly is an error.
    pub fn load(path: &Path, explicit: bool) -> Result<Config, DaemonError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Config::default());
            }
            Err(source) => {
                return Err(DaemonError::ConfigRead {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let config: Config =
            serde_yaml::from_str(&text).map_err(|e| DaemonError::ConfigInvalid {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        if config.image_gc_low_threshold_percent >= config.image_gc_high_threshold_percent
            || config.image_gc_high_threshold_percent > 100
        {
            return Err(DaemonError::ConfigInvalid {
                path: path.to_path_buf(),
                message: format!(
                    "imageGCLowThresholdPercent ({}) must be below imageGCHighThresholdPercent ({}), which is at most 100",
                    config.image_gc_low_threshold_percent, config.image_gc_high_threshold_percent
                ),
            });
        }
        config
            .socket_mode_bits()
            .map_err(|message| DaemonError::ConfigInvalid {
                path: path.to_path_buf(),
                message,
            })?;
        config
            .ingress()
            .map_err(|message| DaemonError::ConfigInvalid {
                path: path.to_path_buf(),
                message,
            })?;
        config
            .network()
            .and_then(|n| n.validate().map_err(|e| e.to_string()))
            .and_then(|()| config.dns().map(drop))
            .and_then(|()| config.service_ranges().map(|_| ()))
            .map_err(|message| DaemonError::ConfigInvalid {
                path: path.to_path_buf(),
                message,
            })?;
        Ok(config)
    }

    /// Event retention.
    pub fn event_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.event_ttl_seconds.max(60))
    }

    /// The pod network's settings, with the CIDRs parsed.
    pub fn network(&self) -> Result<crate::network::NetworkConfig, String> {
        Ok(crate::network::NetworkConfig {
            bridge: self.bridge_name.clone(),
            pod_cidr: self.pod_cidr.parse().map_err(|e| format!("podCIDR: {e}"))?,
            service_cidr: self
                .service_cidr
                .parse()
                .map_err(|e| format!("serviceCIDR: {e}"))?,
            nft_table: self.nftables_table.clone(),
            state_dir: self.state_dir.clone(),
        })
    }

    /// The cluster DNS settings, checked.
    pub fn dns(&self) -> Result<crate::network::dns::DnsSettings, String> {
        let domain = self
            .cluster_domain
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if domain.len() > 253 || !domain.split('.').all(label_ok) {
            return Err(format!(
                "clusterDomain: {:?} is not a DNS domain like cluster.local",
                self.cluster_domain
            ));
        }
        let upstreams = self
            .dns_upstreams
            .iter()
            .map(|u| crate::network::dns::parse_upstream(u))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::network::dns::DnsSettings {
            cluster_domain: domain,
            upstreams: (!upstreams.is_empty()).then_some(upstreams),
        })
    }

    /// Where Services' cluster IPs and node ports come from.
    pub fn service_ranges(&self) -> Result<crate::api::allocation::ServiceRanges, String> {
        let cidr: crate::network::Ipv4Net = self
            .service_cidr
            .parse()
            .map_err(|e| format!("serviceCIDR: {e}"))?;
        let node_ports =
            crate::api::allocation::ServiceRanges::parse_node_ports(&self.service_node_port_range)
                .map_err(|e| format!("serviceNodePortRange: {e}"))?;
        Ok(crate::api::allocation::ServiceRanges {
            network: cidr.network(),
            prefix: cidr.prefix,
            node_ports,
        })
    }

    /// The Ingress listeners' settings, with the address parsed.
    pub fn ingress(&self) -> Result<crate::ingress::IngressConfig, String> {
        Ok(crate::ingress::IngressConfig {
            address: self.ingress_address.parse().map_err(|e| {
                format!(
                    "ingressAddress: \"{}\" is not an IP address ({e})",
                    self.ingress_address
                )
            })?,
            http_port: self.ingress_http_port,
            https_port: self.ingress_https_port,
        })
    }

    /// `socket_mode` as permission bits.
    pub fn socket_mode_bits(&self) -> Result<u32, String> {
        u32::from_str_radix(self.socket_mode.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                format!(
                    "socketMode: \"{}\" is not an octal permission like \"0660\"",
                    self.socket_mode
                )
            })
    }
}

/// Holds the exclusive lock on the state directory for as long as it lives.
pub struct StateLock {
    _file: nix::fcntl::Flock<File>,
}

/// Takes the state-dir lock, or says who holds it.
pub fn lock_state_dir(state_dir: &Path) -> Result<StateLock, DaemonError> {
    let io = |source| DaemonError::Io {
        path: state_dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(state_dir).map_err(io)?;
    let path = state_dir.join("daemon.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|source| DaemonError::Io {
            path: path.clone(),
            source,
        })?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(mut locked) => {
            let _ = locked.set_len(0);
            let _ = writeln!(locked, "{}", std::process::id());
            Ok(StateLock { _file: locked })
        }
        Err((_, _)) => {
            let pid = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            Err(DaemonError::Locked {
                state_dir: state_dir.to_path_buf(),
                pid,
            })
        }
    }
}

/// Tells systemd (when it started us with `NOTIFY_SOCKET`) about our state.
/// Caps glibc's malloc arenas at two before any thread starts. By default every thread
/// that allocates may get an arena of its own (up to 8 per core), and the blocking pool's
/// short-lived threads (one per container start, exec or log read in flight) leave pages
/// behind in each: measured (tests/bench/soak.rs, heaptrack), 1,000 pod lifecycles grew
/// the daemon's anonymous memory by 220 MiB that way, with a live heap of 5–15 MiB.
pub fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; called before other threads run.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 2);
    }
}

/// Raises the soft limit on open files to the hard one: every API connection, watch, shim
/// pipe and log is a file, and a flood of connections must not starve the rest.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::info!(error = %e, soft, hard, "cannot raise the open files limit");
    }
}

pub fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let result = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)
            .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
    } else {
        sock.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

/// Half of systemd's `WatchdogSec` (from `WATCHDOG_USEC`, when it is meant for us).
fn watchdog_period() -> Option<std::time::Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Some(pid) = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        && pid != std::process::id()
    {
        return None;
    }
    (usec > 0).then(|| std::time::Duration::from_micros(usec / 2))
}

/// Tells systemd we are alive while the store still answers a read: a daemon whose store
/// hangs is restarted (containers survive: KillMode=process).
async fn watchdog(
    store: Arc<Store>,
    period: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let ns = registry::by_kind("v1", "Namespace");
    loop {
        let s = store.clone();
        let alive = tokio::task::spawn_blocking(move || match ns {
            Some(rt) => s.get(rt, None, "default").is_ok(),
            None => true,
        })
        .await
        .unwrap_or(false);
        if alive {
            sd_notify("WATCHDOG=1");
        } else {
            tracing::warn!("the store did not answer; withholding the watchdog ping");
        }
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The namespaces that exist from the first start.
pub const BOOTSTRAP_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

fn bootstrap(store: &Store) -> Result<(), DaemonError> {
    let rt = registry::by_kind("v1", "Namespace").ok_or_else(|| DaemonError::Bootstrap {
        name: "-".into(),
        message: "Namespace is not registered".into(),
    })?;
    for name in BOOTSTRAP_NAMESPACES {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        match store.create(rt, None, ns, false) {
            Ok(_) => tracing::info!(namespace = name, "created namespace"),
            Err(StoreError::Api(crate::api::ApiError::AlreadyExists(_))) => {}
            Err(e) => {
                return Err(DaemonError::Bootstrap {
                    name: name.to_string(),
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Creates the socket: parent directory, stale file removed, mode and group set.
fn bind_socket(
    config: &Config,
) -> Result<(tokio::net::UnixListener, Option<(String, u32)>), DaemonError> {
    let path = &config.socket;
    let io = |source| DaemonError::Io {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    // We hold the state lock, so a socket file left here is from a daemon that died.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(io)?;
    let mode = config
        .socket_mode_bits()
        .map_err(|message| DaemonError::ConfigInvalid {
            path: PathBuf::from("socketMode"),
            message,
        })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    let group = nix::unistd::Group::from_name(&config.group).ok().flatten();
    let write_group = match group {
        Some(g) => {
            std::os::unix::fs::chown(path, None, Some(g.gid.as_raw())).map_err(io)?;
            Some((g.name, g.gid.as_raw()))
        }
        None => {
            tracing::warn!(group = %config.group, "group does not exist: only root may change objects (create it with: groupadd {})", config.group);
            None
        }
    };
    Ok((listener, write_group))
}

/// glibc gives every thread that allocates its own arena, and keeps what is freed there;
/// a daemon that is idle most of the time wants few arenas. Call before starting threads.
pub fn limit_malloc_arenas() {
    // SAFETY: mallopt only adjusts allocator tuning; called before any other thread exists.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 2);
    }
}

/// Returns freed heap to the OS now and then, so a burst (a big list, many creates) does
/// not stay in the idle daemon's RSS.
async fn trim_memory(mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(15));
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {
                // SAFETY: malloc_trim is thread-safe and only releases free memory.
                unsafe { nix::libc::malloc_trim(0) };
            }
        }
    }
}

fn meta_name(obj: &serde_json::Value) -> &str {
    crate::api::meta::name(obj)
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    // Handlers first: a SIGTERM that arrives right after READY=1 must stop us cleanly.
    let signals = Signals::install().map_err(|source| DaemonError::Io {
        path: PathBuf::from("signal handlers"),
        source,
    })?;
    let _lock = lock_state_dir(&config.state_dir)?;
    raise_open_files_limit();
    let key_file = config.state_dir.join(crate::backup::KEY_ENTRY);
    let secrets_key =
        crate::store::seal::SecretsKey::load_or_create(&key_file).map_err(|e| DaemonError::Io {
            path: key_file.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
    let store_opts = StoreOptions {
        secrets_key: Some(Arc::new(secrets_key)),
        history_limit: config.watch_history.max(1),
        service_ranges: config
            .service_ranges()
            .map_err(|message| DaemonError::ConfigInvalid {
                path: PathBuf::from("the configuration"),
                message,
            })?,
        ..Default::default()
    };
    let state = config.state_dir.join("state");
    let store = Arc::new(tokio::task::block_in_place(|| {
        Store::open(&state, store_opts)
    })?);
    tokio::task::block_in_place(|| bootstrap(&store))?;
    let mut host =
        crate::kubelet::node::HostInfo::read(config.node_name.as_deref(), &config.state_dir);
    host.max_pods = config.max_pods;
    let node = tokio::task::block_in_place(|| crate::kubelet::node::register(&store, &host))?;
    tracing::info!(node = meta_name(&node), "node registered");
    let network = config
        .network()
        .map_err(|message| DaemonError::ConfigInvalid {
            path: PathBuf::from("the configuration"),
            message,
        })?;
    let dns = config.dns().map_err(|message| DaemonError::ConfigInvalid {
        path: PathBuf::from("the configuration"),
        message,
    })?;
    let ingress = config
        .ingress()
        .map_err(|message| DaemonError::ConfigInvalid {
            path: PathBuf::from("the configuration"),
            message,
        })?;
    tokio::task::block_in_place(|| crate::ingress::ensure_class(&store))?;
    tokio::task::block_in_place(|| crate::storage::ensure_class(&store))?;
    let kubelet = tokio::task::block_in_place(|| {
        crate::kubelet::Kubelet::new(
            crate::kubelet::KubeletConfig {
                state_dir: config.state_dir.clone(),
                log_dir: config.log_dir.clone(),
                run_dir: config.run_dir.clone(),
                cgroup_parent: config.cgroup_parent.clone(),
                crash_loop_base: std::time::Duration::from_millis(
                    config.crash_loop_back_off_base_millis.max(1),
                ),
                shim_binary: None,
                pod_pids_limit: (config.pod_pids_limit > 0).then_some(config.pod_pids_limit),
                network: Some(network.clone()),
                dns,
                registries_file: Some(config.registries_file.clone()),
                pull_registries: config.pull_registries.clone(),
                image_gc: crate::kubelet::images::ImageGc {
                    high_percent: config.image_gc_high_threshold_percent,
                    low_percent: config.image_gc_low_threshold_percent,
                    period: std::time::Duration::from_secs(config.image_gc_period_seconds.max(1)),
                },
                auto_update_period: std::time::Duration::from_secs(
                    config.auto_update_period_seconds.max(1),
                ),
            },
            store.clone(),
        )
    })?;
    let (listener, write_group) = bind_socket(&config)?;
    let server = ApiServer::new(
        store.clone(),
        ServerConfig {
            write_group,
            backup: Some(crate::server::BackupPaths {
                state_dir: config.state_dir.clone(),
                key_file: Some(key_file.clone()),
                config_file: config.config_file.clone(),
                node_name: host.name.clone(),
            }),
        },
        kubelet.services(),
    );
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let settings = crate::controllers::Settings {
        job_back_off_base: std::time::Duration::from_millis(config.job_back_off_base_millis.max(1)),
        volumes_dir: config.state_dir.join(crate::storage::VOLUMES_DIR),
    };
    let mut controllers = crate::controllers::start(
        store.clone(),
        meta_name(&node),
        settings,
        shutdown_rx.clone(),
    );
    controllers.extend(kubelet.start(
        store.clone(),
        meta_name(&node),
        host.memory_kib,
        shutdown_rx.clone(),
    ));
    controllers.extend(
        crate::ingress::start(
            store.clone(),
            meta_name(&node).to_string(),
            ingress,
            shutdown_rx.clone(),
        )
        .await,
    );
    let serving = tokio::spawn(server.serve(listener, shutdown_rx.clone()));
    tokio::spawn(trim_memory(shutdown_rx.clone()));
    tokio::spawn(crate::events::expire(
        store.clone(),
        config.event_ttl(),
        shutdown_rx,
    ));
    tracing::info!(socket = %config.socket.display(), state_dir = %config.state_dir.display(), "berth daemon ready");
    sd_notify("READY=1");
    if let Some(period) = watchdog_period() {
        tokio::spawn(watchdog(store.clone(), period, shutdown_tx.subscribe()));
    }
    signals.wait().await;
    sd_notify("STOPPING=1");
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    let _ = serving.await;
    for c in controllers {
        let _ = c.await;
    }
    let _ = std::fs::remove_file(&config.socket);
    Ok(())
}

/// SIGTERM and SIGINT, caught from the moment they are installed.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_refuses_unknown_keys_and_bad_modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.yaml");
        std::fs::write(&p, "stateDir: /tmp/x\nsocketMod: \"0600\"\n").expect("write");
        let e = Config::load(&p, true).expect_err("typo").to_string();
        assert!(e.contains("socketMod"), "{e}");
        std::fs::write(&p, "socketMode: \"0999\"\n").expect("write");
        let e = Config::load(&p, true).expect_err("bad mode").to_string();
        assert!(e.contains("0999"), "{e}");
        std::fs::write(&p, "socketMode: \"0666\"\ngroup: wheel\n").expect("write");
        let c = Config::load(&p, true).expect("valid");
        assert_eq!(c.socket_mode_bits(), Ok(0o666));
        assert_eq!(c.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        std::fs::write(&p, "serviceNodePortRange: 32767-30000\n").expect("write");
        let e = Config::load(&p, true).expect_err("bad range").to_string();
        assert!(e.contains("serviceNodePortRange"), "{e}");
        std::fs::write(&p, "serviceNodePortRange: 40000-40099\n").expect("write");
        let c = Config::load(&p, true).expect("valid range");
        assert_eq!(c.service_ranges().map(|r| r.node_ports), Ok(40000..=40099));
        std::fs::write(&p, "ingressAddress: everywhere\n").expect("write");
        let e = Config::load(&p, true).expect_err("bad address").to_string();
        assert!(e.contains("ingressAddress: \"everywhere\""), "{e}");
        std::fs::write(&p, "ingressHttpPort: 0\ningressHttpsPort: 8443\n").expect("write");
        let c = Config::load(&p, true)
            .expect("valid")
            .ingress()
            .expect("ingress");
        assert_eq!((c.http_port, c.https_port), (0, 8443));
        assert!(Config::load(&dir.path().join("missing"), false).is_ok());
        assert!(Config::load(&dir.path().join("missing"), true).is_err());
    }

    #[test]
    fn the_shipped_config_is_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/config.yaml");
        assert_eq!(
            Config::load(&path, true).expect("shipped config loads"),
            Config::default()
        );
    }

    #[test]
    fn second_lock_on_a_state_dir_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = lock_state_dir(dir.path()).expect("first");
        let e = lock_state_dir(dir.path())
            .err()
            .expect("second must fail")
            .to_string();
        assert!(e.contains("another berth daemon"), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
    }
}
