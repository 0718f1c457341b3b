//! The kubelet: runs this node's pods. It registers the Node ([`node`]), owns the container
//! runtime ([`crate::runtime`]) and the local images ([`crate::image`]), runs one worker per
//! bound pod, and serves the node side of the API (logs, exec, port-forward, images,
//! metrics) through [`crate::server::node`]'s traits.

pub mod autoupdate;
pub mod container;
pub mod dns;
pub mod exec;
pub mod images;
pub mod logs;
pub mod metrics;
pub mod netpol;
pub mod node;
pub mod pods;
pub mod portforward;
pub mod prober;
pub mod volumes;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::image::{ImageError, ImageStore};
use crate::runtime::{Runtime, RuntimeError, RuntimeOptions};
use crate::server::node::NodeServices;

/// What the kubelet needs to know from the daemon's configuration.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// `<stateDir>`: containers go to `containers/`, images to `images/`.
    pub state_dir: PathBuf,
    pub log_dir: PathBuf,
    pub run_dir: PathBuf,
    pub cgroup_parent: String,
    /// The first CrashLoopBackOff delay (Kubernetes: 10 s, doubling up to 5 min).
    pub crash_loop_base: Duration,
    /// The `berth` binary run as `berth shim` (default: this executable).
    pub shim_binary: Option<PathBuf>,
    /// Most processes a pod may have (Kubernetes' kubelet `podPidsLimit`); `None`: no limit.
    pub pod_pids_limit: Option<i64>,
    /// The pod network; `None`: pods get no network beyond their loopback.
    pub network: Option<crate::network::NetworkConfig>,
    /// The cluster DNS (served on the bridge address when there is a pod network).
    pub dns: crate::network::dns::DnsSettings,
    /// Registry mirrors, credentials and CAs for pulls (k3s' `registries.yaml`).
    pub registries_file: Option<PathBuf>,
    /// The registry hosts pulls may reach; empty: any.
    pub pull_registries: Vec<String>,
    /// Image garbage collection.
    pub image_gc: images::ImageGc,
    /// How often Deployments annotated `berth.dev/auto-update` are checked.
    pub auto_update_period: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("cannot start the container runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("cannot open the image store: {0}")]
    Images(#[from] ImageError),
    #[error("cannot set up the pod network: {0}")]
    Network(#[from] crate::network::NetworkError),
    #[error(transparent)]
    Dns(#[from] crate::network::dns::DnsError),
    #[error("the pod network needs a Tokio runtime")]
    NoRuntime,
}

/// The node agent. Shared (`Arc`) by its workers and the services it gives the server.
#[derive(Debug)]
pub struct Kubelet {
    pub config: KubeletConfig,
    pub runtime: Arc<Runtime>,
    pub images: Arc<ImageStore>,
    pub network: Option<Arc<crate::network::Network>>,
    /// Where the pods' `ClusterFirst` resolv.conf points (`None`: no cluster DNS).
    pub cluster_dns: Option<dns::ClusterDns>,
    /// The host's resolver configuration (for `Default` and the search path), read at start.
    pub host_resolv: dns::HostResolv,
    /// The bound DNS listeners until [`Kubelet::start`] serves them.
    dns_server: std::sync::Mutex<Option<crate::network::dns::DnsServer>>,
    /// The store (the image GC and prune keep the images of its pods).
    pub store: Arc<crate::store::Store>,
    /// When each image (by id) last started a container, for the image GC's order.
    pub image_last_used: std::sync::Mutex<std::collections::HashMap<String, jiff::Timestamp>>,
}

impl Kubelet {
    /// Opens the runtime (creating berth's cgroup parent), the image store and the pod
    /// network (blocking on it: call from a Tokio runtime's `block_in_place`).
    /// `store` keeps the pod IP allocations.
    pub fn new(
        config: KubeletConfig,
        store: Arc<crate::store::Store>,
    ) -> Result<Arc<Kubelet>, KubeletError> {
        // The network first: a CIDR that overlaps a host route stops the start before
        // anything else (cgroups, images) is touched.
        let network = match config.network.clone() {
            Some(n) => {
                let rt =
                    tokio::runtime::Handle::try_current().map_err(|_| KubeletError::NoRuntime)?;
                Some(Arc::new(rt.block_on(crate::network::Network::start(
                    n,
                    store.clone(),
                ))?))
            }
            None => None,
        };
        // Bound now. A port already taken (a DNS server of the host's listening on every
        // address, such as a Pi-hole) does not stop the node: the error is logged and pods
        // fall back to the host's resolvers, each with a MissingClusterDNS event, as a
        // kubelet without cluster DNS does.
        let (dns_server, cluster_dns) = match &network {
            Some(net) => {
                let gateway = net.config().pod_cidr.gateway();
                match crate::network::dns::DnsServer::bind(gateway, 53, &config.dns) {
                    Ok(server) => {
                        let cluster = dns::ClusterDns {
                            nameserver: gateway,
                            domain: config.dns.cluster_domain.trim_end_matches('.').to_string(),
                        };
                        (Some(server), Some(cluster))
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cluster DNS is off; pods use the host's resolvers");
                        (None, None)
                    }
                }
            }
            None => (None, None),
        };
        let options = RuntimeOptions {
            shim_binary: config.shim_binary.clone(),
            cgroup_parent: config.cgroup_parent.clone(),
            ..Default::default()
        };
        let runtime = Runtime::with_options(
            config.state_dir.join("containers"),
            &config.run_dir,
            &config.log_dir,
            options,
        )?;
        let mut images = ImageStore::open(&config.state_dir.join("images"))?;
        if let Some(f) = &config.registries_file {
            images = images.with_registries_file(f.clone());
        }
        images = images.with_pull_registries(config.pull_registries.clone());
        Ok(Arc::new(Kubelet {
            config,
            runtime: Arc::new(runtime),
            images: Arc::new(images),
            network,
            cluster_dns,
            host_resolv: dns::HostResolv::read(),
            dns_server: std::sync::Mutex::new(dns_server),
            image_last_used: Default::default(),
            store,
        }))
    }

    /// The services the API server offers on this node's behalf.
    pub fn services(self: &Arc<Self>) -> NodeServices {
        NodeServices {
            images: Some(Arc::new(images::Images(
                self.images.clone(),
                self.store.clone(),
            ))),
            logs: Some(Arc::new(logs::Logs::new(self.runtime.clone()))),
            metrics: Some(Arc::new(Arc::new(metrics::Metrics::new(
                self.runtime.clone(),
            )))),
            exec: Some(Arc::new(exec::Exec(self.runtime.clone()))),
            port_forward: Some(Arc::new(portforward::PortForward(self.runtime.clone()))),
        }
    }
}

impl Kubelet {
    /// Starts the pod workers' sync loop and the shim reaper. `memory_kib` is the node's
    /// memory (for Burstable pods' `oom_score_adj`). Containers outlive the daemon: on
    /// shutdown the workers stop and leave them running, to be adopted at the next start.
    pub fn start(
        self: &Arc<Self>,
        store: Arc<crate::store::Store>,
        node: &str,
        memory_kib: u64,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        // Shims double-fork and so are orphans: become their parent to reap them (on a
        // host whose init does not reap, they would stay zombies).
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::warn!(error = %e, "cannot become a child subreaper; exited shims may stay zombies");
        }
        let ctx = Arc::new(pods::Ctx {
            kubelet: self.clone(),
            store: store.clone(),
            node: node.to_string(),
            host_ip: host_ip(),
            memory_capacity: memory_kib.saturating_mul(1024),
            events: crate::events::Recorder::new(store.clone(), "kubelet", node),
        });
        let mut tasks = vec![
            tokio::spawn(sync_loop(ctx.clone(), shutdown.clone())),
            tokio::spawn(reaper(self.clone(), shutdown.clone())),
            tokio::spawn(images::gc_loop(
                self.clone(),
                self.config.image_gc.clone(),
                shutdown.clone(),
            )),
            tokio::spawn(autoupdate::run(
                store.clone(),
                self.images.clone(),
                node.to_string(),
                self.config.auto_update_period,
                shutdown.clone(),
            )),
        ];
        let dns = self.dns_server.lock().ok().and_then(|mut d| d.take());
        if let Some(server) = dns {
            tasks.push(tokio::spawn(server.run(store.clone(), shutdown.clone())));
        }
        if let Some(net) = &self.network {
            tasks.push(tokio::spawn(crate::network::services::run(
                store,
                crate::network::services::ProxyConfig::new(net.config()),
                node.to_string(),
                shutdown.clone(),
            )));
            tasks.push(tokio::spawn(netpol::run(
                ctx.store.clone(),
                net.config().clone(),
                shutdown,
            )));
        }
        tasks
    }
}

/// The node's first non-loopback IPv4 address (the pods' `hostIP`), else 127.0.0.1.
fn host_ip() -> String {
    first_host_ipv4().unwrap_or_else(|| "127.0.0.1".to_string())
}

/// The node's first non-loopback IPv4 address.
fn first_host_ipv4() -> Option<String> {
    nix::ifaddrs::getifaddrs()
        .ok()
        .and_then(|addrs| {
            addrs
                .filter_map(|a| a.address.and_then(|s| s.as_sockaddr_in().map(|v| v.ip())))
                .find(|ip| !ip.is_loopback())
        })
        .map(|ip| ip.to_string())
}

/// Reaps exited shims (our children since we are a subreaper) on every SIGCHLD, by the
/// pids their records name, so that no other child's exit status is taken.
async fn reaper(kubelet: Arc<Kubelet>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut sigchld) = signal(SignalKind::child()) else {
        return;
    };
    loop {
        tokio::select! {
            _ = sigchld.recv() => {}
            _ = shutdown.changed() => return,
        }
        let runtime = kubelet.runtime.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for id in runtime.list().unwrap_or_default() {
                if let Ok(Some(pid)) = runtime.shim_pid(&id) {
                    let _ = nix::sys::wait::waitpid(
                        nix::unistd::Pid::from_raw(pid),
                        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
                    );
                }
            }
        })
        .await;
    }
}

type WorkerHandle = (
    tokio::sync::watch::Sender<Option<serde_json::Value>>,
    tokio::task::JoinHandle<()>,
);

/// Keeps one worker per pod bound to this node, feeding each its pod's latest version.
async fn sync_loop(ctx: Arc<pods::Ctx>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    use crate::api::meta;
    use tokio::sync::broadcast::error::RecvError;
    let Some(rt) = crate::api::registry::by_kind("v1", "Pod") else {
        return;
    };
    let mut changes = ctx.store.subscribe();
    let mut workers: std::collections::HashMap<String, WorkerHandle> = Default::default();
    let mut first = true;
    loop {
        // A full pass: at start, every 30 s, and after missing changes.
        let store = ctx.store.clone();
        let pods = tokio::task::spawn_blocking(move || store.list(rt, None))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|(items, _)| items)
            .unwrap_or_default();
        let mine: Vec<serde_json::Value> = pods
            .into_iter()
            .filter(|p| meta::str_at(p, "/spec/nodeName") == ctx.node)
            .collect();
        if first {
            let known: std::collections::HashSet<String> =
                mine.iter().map(|p| meta::uid(p).to_string()).collect();
            clean_orphans(&ctx, &known).await;
            first = false;
        }
        let live: std::collections::HashSet<String> =
            mine.iter().map(|p| meta::uid(p).to_string()).collect();
        for pod in mine {
            route(&ctx, &mut workers, pod, &shutdown);
        }
        for (uid, (tx, _)) in workers.iter() {
            if !live.contains(uid) {
                let _ = tx.send(None);
            }
        }
        workers.retain(|_, (_, h)| !h.is_finished());
        let resync = tokio::time::sleep(std::time::Duration::from_secs(30));
        tokio::pin!(resync);
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    for (_, (_, h)) in workers.drain() {
                        let _ = h.await;
                    }
                    return;
                }
                _ = &mut resync => break,
                got = changes.recv() => match got {
                    Ok(c) if c.resource.kind == "Pod" => {
                        let uid = meta::uid(&c.object).to_string();
                        if c.kind == crate::api::watch::EventType::Deleted {
                            if let Some((tx, _)) = workers.get(&uid) {
                                let _ = tx.send(None);
                            }
                        } else if meta::str_at(&c.object, "/spec/nodeName") == ctx.node {
                            route(&ctx, &mut workers, c.object.clone(), &shutdown);
                        }
                        workers.retain(|_, (_, h)| !h.is_finished());
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }
}

/// Hands a pod to its worker, starting one when there is none.
fn route(
    ctx: &Arc<pods::Ctx>,
    workers: &mut std::collections::HashMap<String, WorkerHandle>,
    pod: serde_json::Value,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) {
    let uid = crate::api::meta::uid(&pod).to_string();
    if let Some((tx, h)) = workers.get(&uid)
        && !h.is_finished()
    {
        tx.send_if_modified(|cur| {
            if cur.as_ref() == Some(&pod) {
                false
            } else {
                *cur = Some(pod.clone());
                true
            }
        });
        return;
    }
    let (tx, rx) = tokio::sync::watch::channel(Some(pod.clone()));
    let worker = pods::Worker::new(ctx.clone(), &pod);
    let handle = tokio::spawn(worker.run(rx, shutdown.clone()));
    workers.insert(uid, (tx, handle));
}

/// At start: containers, sandboxes, rootfs mounts and pod directories whose pod is gone.
async fn clean_orphans(ctx: &Arc<pods::Ctx>, known: &std::collections::HashSet<String>) {
    let runtime = ctx.kubelet.runtime.clone();
    let state_dir = ctx.kubelet.config.state_dir.clone();
    let known2 = known.clone();
    let orphans = tokio::task::spawn_blocking(move || {
        let mut uids = std::collections::BTreeSet::new();
        for id in runtime.list().unwrap_or_default() {
            let Some((uid, _, _)) = pods::parse_id(&id) else {
                continue;
            };
            if known2.contains(&uid) {
                continue;
            }
            if runtime.state(&id).is_ok_and(|s| s.is_running()) {
                let _ = runtime.stop(&id, Duration::from_secs(2));
            }
            let _ = runtime.remove(&id);
            let dir = state_dir.join("rootfs").join(&id);
            let _ = crate::image::remove_rootfs(&dir);
            let _ = std::fs::remove_dir(&dir);
            uids.insert(uid);
        }
        // Rootfs directories of runs that no longer exist.
        let live: std::collections::HashSet<String> =
            runtime.list().unwrap_or_default().into_iter().collect();
        for e in std::fs::read_dir(state_dir.join("rootfs"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = e.file_name().to_string_lossy().into_owned();
            if !live.contains(&id) {
                let _ = crate::image::remove_rootfs(&e.path());
                let _ = std::fs::remove_dir(e.path());
            }
        }
        for dir in ["pods"] {
            for e in std::fs::read_dir(state_dir.join(dir))
                .into_iter()
                .flatten()
                .flatten()
            {
                let uid = e.file_name().to_string_lossy().into_owned();
                if !known2.contains(&uid) {
                    uids.insert(uid);
                }
            }
        }
        for e in std::fs::read_dir(
            runtime
                .sandbox_paths("x")
                .dir
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        )
        .into_iter()
        .flatten()
        .flatten()
        {
            let uid = e.file_name().to_string_lossy().into_owned();
            if !known2.contains(&uid) {
                uids.insert(uid);
            }
        }
        uids
    })
    .await
    .unwrap_or_default();
    let mut orphans = orphans;
    if let Some(net) = &ctx.kubelet.network {
        orphans.extend(
            net.allocated()
                .await
                .into_iter()
                .filter(|u| !known.contains(u)),
        );
    }
    for uid in orphans {
        tracing::info!(pod_uid = %uid, "cleaning up after a pod that no longer exists");
        pods::cleanup_pod(ctx, &uid, "", "").await;
        tracing::info!(pod_uid = %uid, "cleaned up after a pod that no longer exists");
    }
}
