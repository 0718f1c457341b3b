//! Pod workers: one task per pod bound to this node, fed the pod's latest version by the
//! sync loop. A worker creates the sandbox and pod cgroup, runs init containers in order
//! and then the app containers, restarts them by `restartPolicy` with Kubernetes'
//! CrashLoopBackOff (first restart at once, then the base delay doubling to 5 min, reset
//! after 10 min of running), writes the pod's status only when it changed, and on deletion
//! runs preStop hooks, SIGTERM, waits the grace period, SIGKILLs, cleans up and deletes the
//! pod for good.
//!
//! Probes: each app container's run gets one task per probe it has
//! ([`super::prober::worker`]); the startup probe first, liveness and readiness once the
//! container has started. Their results (sent only when they change) decide `started` and
//! `ready` in the status and the pod's Ready conditions; a liveness or startup failure
//! kills the run, which is then restarted by `restartPolicy` like any exit.
//!
//! Container runs are named `<pod uid>_<container name>_<run>` (run = restartCount of that
//! run; its log is `<run>.log`). After a daemon restart the worker finds its runs again by
//! that name ([`parse_id`]) and the pod's stored status, so running containers are adopted,
//! exits that happened meanwhile are recorded, and finished containers are not run again.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, watch};

use super::Kubelet;
use super::container::{self, BuildInput, ConfigError, Lookup, qos_class};
use super::prober::worker::{EventSink, ProbeTask, ProbeUpdate};
use super::prober::{self, ProbeKind, ProbeResult};
use super::volumes;
use crate::api::{ApiError, meta, registry};
use crate::events::{EventType, Recorder};
use crate::image::ImageError;
use crate::runtime::{ContainerState, LogLocation, RuntimeError};
use crate::server::node::CONTAINER_ID_SCHEME;
use crate::store::{DeleteOptions, Store, StoreError, Subresource};

/// The longest CrashLoopBackOff delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A container that ran this long starts its back-off from the base again.
pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(600);
/// How long a worker sleeps when nothing is due (a safety resync).
const RESYNC: Duration = Duration::from_secs(30);
/// Least time between two rewrites of a pod's file volumes.
const VOLUME_REFRESH: Duration = Duration::from_secs(10);
/// Retry delay after an image or config error.
const RETRY: Duration = Duration::from_secs(5);
/// The first delay after a failed image pull (the kubelet's image back-off).
const PULL_BACKOFF_BASE: Duration = Duration::from_secs(10);
/// How often emptyDir usage is held against `sizeLimit` (Kubernetes' eviction monitoring
/// interval).
const EVICTION_CHECK: Duration = Duration::from_secs(10);

/// The id of run `run` of container `name` of pod `uid`.
pub fn container_id(uid: &str, name: &str, run: u32) -> String {
    format!("{uid}_{name}_{run}")
}

/// `(pod uid, container name, run)` of a runtime id made by [`container_id`].
pub fn parse_id(id: &str) -> Option<(String, String, u32)> {
    let mut parts = id.rsplitn(3, '_');
    let run = parts.next()?.parse().ok()?;
    let name = parts.next()?.to_string();
    let uid = parts.next()?.to_string();
    Some((uid, name, run))
}

/// Shared by the workers.
pub struct Ctx {
    pub kubelet: Arc<Kubelet>,
    pub store: Arc<Store>,
    pub node: String,
    pub host_ip: String,
    pub memory_capacity: u64,
    pub events: Recorder,
}

impl Ctx {
    fn rootfs_dir(&self, id: &str) -> PathBuf {
        self.kubelet.config.state_dir.join("rootfs").join(id)
    }

    fn pod_dir(&self, uid: &str) -> PathBuf {
        self.kubelet.config.state_dir.join("pods").join(uid)
    }
}

/// A finished run, as the status shows it.
#[derive(Debug, Clone, PartialEq)]
struct Terminated {
    exit_code: i32,
    signal: Option<i32>,
    reason: String,
    message: Option<String>,
    started_at: Option<String>,
    finished_at: String,
    finished: Timestamp,
    ran_for: Duration,
    container_id: String,
}

impl Terminated {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "exitCode": self.exit_code,
            "reason": self.reason,
            "finishedAt": self.finished_at,
            "containerID": self.container_id,
        });
        if let Some(s) = self.signal {
            v["signal"] = json!(s);
        }
        if let Some(m) = &self.message {
            v["message"] = json!(m);
        }
        v["startedAt"] = self
            .started_at
            .clone()
            .map(Value::String)
            .unwrap_or(Value::Null);
        v
    }

    fn from_json(v: &Value) -> Option<Terminated> {
        let finished_at = v.get("finishedAt")?.as_str()?.to_string();
        let finished = finished_at.parse().ok()?;
        Some(Terminated {
            exit_code: v.get("exitCode")?.as_i64()? as i32,
            signal: v.get("signal").and_then(Value::as_i64).map(|s| s as i32),
            reason: v["reason"].as_str().unwrap_or("Error").to_string(),
            message: v["message"].as_str().map(str::to_string),
            started_at: v["startedAt"].as_str().map(str::to_string),
            finished_at,
            finished,
            ran_for: Duration::ZERO,
            container_id: v["containerID"].as_str().unwrap_or_default().to_string(),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum RunState {
    Running { started_at: String },
    Exited(Terminated),
}

/// What the worker knows of one container.
#[derive(Debug, Clone)]
struct Track {
    name: String,
    init: bool,
    image: String,
    image_id: String,
    /// The run number of the current (or last) run; the status's restartCount.
    run: u32,
    /// The runtime container of the current run, while it exists.
    run_id: Option<String>,
    state: Option<RunState>,
    last: Option<Terminated>,
    waiting: Option<(String, String)>,
    /// The CrashLoopBackOff entry: the delay the next crash must wait.
    backoff: Option<Duration>,
    /// The image pull back-off: the delay after the last failed pull (10 s doubling to
    /// 5 min, as the kubelet's).
    pull_backoff: Option<Duration>,
    retry_at: Option<Instant>,
    /// Older runs still to remove from the runtime.
    stale: Vec<String>,
    /// `(run id, started, ready)` of a run adopted after a daemon restart, from the stored
    /// status: its probes carry on from there instead of starting over.
    carried: Option<(String, bool, bool)>,
}

impl Track {
    fn new(c: &Container, init: bool) -> Track {
        Track {
            name: c.name.clone(),
            init,
            image: c.image.clone().unwrap_or_default(),
            image_id: String::new(),
            run: 0,
            run_id: None,
            state: None,
            last: None,
            waiting: None,
            backoff: None,
            pull_backoff: None,
            retry_at: None,
            stale: Vec::new(),
            carried: None,
        }
    }

    fn running(&self) -> bool {
        matches!(self.state, Some(RunState::Running { .. }))
    }

    fn exited(&self) -> Option<&Terminated> {
        match &self.state {
            Some(RunState::Exited(t)) => Some(t),
            _ => None,
        }
    }
}

/// The probe tasks of one run of an app container and what they reported.
struct RunProbes {
    run_id: String,
    /// The startup probe has succeeded (true from the start without one).
    started: bool,
    /// The readiness probe's current result is Success.
    ready: bool,
    /// A liveness or startup failure the worker has yet to act on.
    failed: Option<ProbeKind>,
    startup_spawned: bool,
    others_spawned: bool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for RunProbes {
    /// The probes of a run end with it (and with the worker).
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// `started` and `ready` of a container, as the status shows them: a running container
/// has started once its startup probe succeeded (at once without one) and is ready once it
/// has started and its readiness probe succeeds (at once without one).
fn started_and_ready(t: &Track, c: Option<&Container>, probes: Option<&RunProbes>) -> (bool, bool) {
    if !t.running() {
        return (false, false);
    }
    let probes = probes.filter(|p| t.run_id.as_deref() == Some(p.run_id.as_str()));
    let started = c.is_none_or(|c| c.startup_probe.is_none()) || probes.is_some_and(|p| p.started);
    let ready = started
        && (c.is_none_or(|c| c.readiness_probe.is_none()) || probes.is_some_and(|p| p.ready));
    (started, ready)
}

/// When a running container's run started, as an `Instant` (now when unknown).
fn started_instant(t: &Track) -> Instant {
    match &t.state {
        Some(RunState::Running { started_at }) => started_at.parse::<Timestamp>().ok(),
        _ => None,
    }
    .and_then(|at| Duration::try_from(Timestamp::now().duration_since(at)).ok())
    .and_then(|ago| Instant::now().checked_sub(ago))
    .unwrap_or_else(Instant::now)
}

/// Where the probes of run `run_id` of container `c` go: the pod's network namespace, its
/// named ports, and the runtime's exec.
fn probe_target(ctx: &Ctx, uid: &str, c: &Container, run_id: &str) -> prober::Target {
    prober::Target {
        netns: Some(ctx.kubelet.runtime.sandbox_paths(uid).net),
        // Filled in from the pod's status before each check.
        pod_ip: None,
        named_ports: c
            .ports
            .iter()
            .flatten()
            .filter_map(|p| Some((p.name.clone()?, u16::try_from(p.container_port).ok()?)))
            .collect(),
        container_id: run_id.to_string(),
        exec: Some(Arc::new(super::exec::ProbeExec(
            ctx.kubelet.runtime.clone(),
        ))),
    }
}

fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

fn ts(t: Timestamp) -> String {
    meta::format_time(t)
}

/// Runs a blocking closure on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// The credentials of the pod's `imagePullSecrets` (dockerconfigjson or dockercfg Secrets
/// of its namespace); a missing or unreadable one is skipped, as the kubelet does.
fn pull_auth(store: &Store, pod: &Pod) -> crate::image::PullAuth {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let names = pod
        .spec
        .iter()
        .flat_map(|s| s.image_pull_secrets.iter().flatten())
        .map(|r| r.name.as_str());
    pull_auth_from(store, ns, names)
}

/// Registry credentials from the `kubernetes.io/dockerconfigjson` (or `dockercfg`)
/// Secrets `names` of namespace `ns`; a missing or unreadable one is skipped (logged).
pub(crate) fn pull_auth_from<'a>(
    store: &Store,
    ns: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> crate::image::PullAuth {
    let mut auth = crate::image::PullAuth::default();
    let Some(rt) = registry::by_kind("v1", "Secret") else {
        return auth;
    };
    for name in names {
        let Ok(secret) = store.get(rt, Some(ns), name) else {
            tracing::info!(secret = %name, "an imagePullSecret does not exist; pulling without it");
            continue;
        };
        let data = container::secret_data(&secret);
        for key in [".dockerconfigjson", ".dockercfg"] {
            if let Some(doc) = data.get(key)
                && let Err(e) = auth.add_docker_config(doc.as_bytes())
            {
                tracing::info!(secret = %name, error = %e, "an imagePullSecret does not parse");
            }
        }
    }
    auth
}

/// Lookups of ConfigMaps and Secrets in the store.
struct StoreLookup<'a>(&'a Store);

impl Lookup for StoreLookup<'_> {
    fn config_map(&self, ns: &str, name: &str) -> Option<BTreeMap<String, String>> {
        let rt = registry::by_kind("v1", "ConfigMap")?;
        self.0
            .get(rt, Some(ns), name)
            .ok()
            .map(|v| container::config_map_data(&v))
    }
    fn secret(&self, ns: &str, name: &str) -> Option<BTreeMap<String, String>> {
        let rt = registry::by_kind("v1", "Secret")?;
        self.0
            .get(rt, Some(ns), name)
            .ok()
            .map(|v| container::secret_data(&v))
    }
}

impl volumes::ObjectLookup for StoreLookup<'_> {
    fn object(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let rt = registry::by_kind("v1", kind)?;
        let ns = rt.namespaced.then_some(namespace);
        self.0.get(rt, ns, name).ok()
    }
}

/// The pod's `hostPort`s (containers' ports with one; TCP when no protocol is given).
fn host_ports(pod: &Pod) -> Vec<crate::network::nft::HostPort> {
    let spec = pod.spec.clone().unwrap_or_default();
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let host_port = u16::try_from(p.host_port?).ok().filter(|p| *p > 0)?;
            Some(crate::network::nft::HostPort {
                protocol: p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase(),
                host_port,
                container_port: u16::try_from(p.container_port).ok()?,
                host_ip: p
                    .host_ip
                    .as_deref()
                    .and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok())
                    .filter(|ip| !ip.is_unspecified()),
            })
        })
        .filter(|p| p.protocol == "tcp" || p.protocol == "udp")
        .collect()
}

/// Why a pod's sandbox (namespaces, cgroup, network) could not be set up.
#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
}

/// One pod's worker.
pub struct Worker {
    ctx: Arc<Ctx>,
    uid: String,
    namespace: String,
    name: String,
    tracks: Vec<Track>,
    sandbox_ready: bool,
    /// When the pod's configMap/secret/downwardAPI volumes were last rewritten.
    volumes_refreshed: Option<Instant>,
    start_time: Option<String>,
    last_status: Option<Value>,
    exit: Arc<Notify>,
    watched: HashMap<String, tokio::task::JoinHandle<()>>,
    /// Container name → run ids found in the runtime at adoption.
    adopted: bool,
    /// Container name → the probes of its current run.
    probes: HashMap<String, RunProbes>,
    probe_tx: mpsc::UnboundedSender<ProbeUpdate>,
    probe_rx: Option<mpsc::UnboundedReceiver<ProbeUpdate>>,
    /// `status.podIP` as last seen, for network probes.
    pod_ip: watch::Sender<Option<IpAddr>>,
    /// Why the pod was evicted (its `status.message`); an evicted pod runs nothing again.
    evicted: Option<String>,
    /// When emptyDir usage was last measured.
    usage_checked: Option<Instant>,
    /// The address the network gave the pod (the host's for hostNetwork pods), written to
    /// `status.podIP(s)`.
    ip: Option<IpAddr>,
}

/// Why the worker's loop woke up.
enum Wake {
    Look,
    Probe(ProbeUpdate),
    Stop,
}

impl Worker {
    pub fn new(ctx: Arc<Ctx>, pod: &Value) -> Worker {
        let (probe_tx, probe_rx) = mpsc::unbounded_channel();
        Worker {
            ctx,
            uid: meta::uid(pod).to_string(),
            namespace: meta::namespace(pod).to_string(),
            name: meta::name(pod).to_string(),
            tracks: Vec::new(),
            sandbox_ready: false,
            volumes_refreshed: None,
            start_time: None,
            last_status: None,
            exit: Arc::new(Notify::new()),
            watched: HashMap::new(),
            adopted: false,
            probes: HashMap::new(),
            probe_tx,
            probe_rx: Some(probe_rx),
            pod_ip: watch::Sender::new(None),
            ip: None,
            evicted: None,
            usage_checked: None,
        }
    }

    fn label(&self) -> String {
        format!("{}_{}({})", self.name, self.namespace, self.uid)
    }

    /// Runs until the pod is gone (or the daemon stops: then containers keep running).
    pub async fn run(
        mut self,
        mut pod_rx: watch::Receiver<Option<Value>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let Some(mut probe_rx) = self.probe_rx.take() else {
            return;
        };
        loop {
            let current = pod_rx.borrow_and_update().clone();
            let Some(raw) = current else {
                // A daemon that stops does not wait for pods to finish stopping: the
                // containers go on, and the next start adopts and finishes the job.
                tokio::select! {
                    _ = self.terminate(None, 2) => {}
                    _ = shutdown.wait_for(|stop| *stop) => {}
                }
                break;
            };
            let Ok(pod) = serde_json::from_value::<Pod>(raw.clone()) else {
                tracing::warn!(pod = %self.label(), "the stored pod does not decode; skipping");
                break;
            };
            if raw.pointer("/metadata/deletionTimestamp").is_some() {
                // deletionTimestamp is when the grace period ends: after a daemon restart
                // only what is left of it remains.
                let left = raw
                    .pointer("/metadata/deletionTimestamp")
                    .and_then(Value::as_str)
                    .and_then(|t| t.parse::<Timestamp>().ok())
                    .map(|end| {
                        // Rounded up: a 1 s grace must not become 0 s on its way here.
                        let d = end.duration_since(Timestamp::now());
                        (d.as_secs() + i64::from(d.subsec_nanos() > 0)).max(0)
                    });
                let grace = raw
                    .pointer("/metadata/deletionGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(30)
                    .min(left.unwrap_or(i64::MAX))
                    .max(0) as u64;
                tokio::select! {
                    _ = async {
                        self.terminate(Some(&pod), grace).await;
                        self.final_delete().await;
                    } => {}
                    _ = shutdown.wait_for(|stop| *stop) => {}
                }
                break;
            }
            if self.evicted.is_none() && raw.pointer("/status/reason") == Some(&json!("Evicted")) {
                // Evicted before a daemon restart: it stays stopped.
                self.evicted = Some(meta::str_at(&raw, "/status/message").to_string());
            }
            let wake = if self.evicted.is_some() {
                if !self.adopted {
                    self.adopt(&raw, &pod).await;
                }
                self.stop_all(&raw, &pod).await;
                None
            } else {
                let wake = self.sync(&raw, &pod).await;
                self.refresh_volumes(&pod).await;
                self.check_empty_dir_usage(&raw, &pod).await;
                wake
            };
            self.write_status(&raw, &pod).await;
            let sleep = wake
                .map(|w| w.saturating_duration_since(Instant::now()))
                .unwrap_or(RESYNC)
                .min(RESYNC);
            let wake = tokio::select! {
                changed = pod_rx.changed() => match changed {
                    Ok(()) => Wake::Look,
                    // The sync loop is gone: the daemon is stopping.
                    Err(_) => Wake::Stop,
                },
                update = probe_rx.recv() => update.map_or(Wake::Look, Wake::Probe),
                _ = self.exit.notified() => Wake::Look,
                _ = tokio::time::sleep(sleep) => Wake::Look,
                _ = shutdown.changed() => Wake::Stop,
            };
            match wake {
                Wake::Stop => break,
                Wake::Look => {}
                Wake::Probe(update) => {
                    self.apply_probe(update);
                    while let Ok(update) = probe_rx.try_recv() {
                        self.apply_probe(update);
                    }
                }
            }
        }
        // Containers outlive the worker; their probes start again when they are adopted.
        self.probes.clear();
        for (_, h) in self.watched.drain() {
            h.abort();
        }
    }

    /// Takes a probe's changed result for the current run of a container.
    fn apply_probe(&mut self, u: ProbeUpdate) {
        let label = self.label();
        let Some((name, p)) = self.probes.iter_mut().find(|(_, p)| p.run_id == u.run_id) else {
            return;
        };
        tracing::info!(pod = %label, container = %name, probe = u.kind.title(),
            result = ?u.result, output = %u.message, "probe result changed");
        match (u.kind, u.result) {
            (ProbeKind::Startup, ProbeResult::Success) => p.started = true,
            (ProbeKind::Readiness, r) => p.ready = r == ProbeResult::Success,
            (ProbeKind::Liveness | ProbeKind::Startup, ProbeResult::Failure) => {
                p.failed = Some(u.kind)
            }
            _ => {}
        }
    }

    /// Builds the container list and adopts what the runtime and the stored status know.
    async fn adopt(&mut self, raw: &Value, pod: &Pod) {
        let spec = pod.spec.clone().unwrap_or_default();
        self.tracks = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| Track::new(c, true))
            .chain(spec.containers.iter().map(|c| Track::new(c, false)))
            .collect();
        self.start_time = raw
            .pointer("/status/startTime")
            .and_then(Value::as_str)
            .map(str::to_string);
        let runtime = self.ctx.kubelet.runtime.clone();
        let uid = self.uid.clone();
        let ids = blocking(move || {
            runtime
                .list()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|id| parse_id(&id).filter(|(u, _, _)| *u == uid).map(|p| (id, p)))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let stored: BTreeMap<String, Value> =
            ["/status/initContainerStatuses", "/status/containerStatuses"]
                .iter()
                .filter_map(|p| raw.pointer(p).and_then(Value::as_array))
                .flatten()
                .filter_map(|s| Some((s["name"].as_str()?.to_string(), s.clone())))
                .collect();
        for t in &mut self.tracks {
            let mut runs: Vec<(u32, String)> = ids
                .iter()
                .filter(|(_, (_, n, _))| *n == t.name)
                .map(|(id, (_, _, r))| (*r, id.clone()))
                .collect();
            runs.sort();
            let status = stored.get(&t.name);
            if let Some(s) = status {
                t.run = s["restartCount"].as_u64().unwrap_or(0) as u32;
                t.last = s
                    .pointer("/lastState/terminated")
                    .and_then(Terminated::from_json);
                t.image_id = s["imageID"].as_str().unwrap_or_default().to_string();
                if let Some(term) = s
                    .pointer("/state/terminated")
                    .and_then(Terminated::from_json)
                {
                    t.state = Some(RunState::Exited(term));
                }
                if t.run > 0 || t.last.is_some() {
                    // It has crashed before: the next crash backs off.
                    t.backoff = Some(self.ctx.kubelet.config.crash_loop_base);
                }
            }
            if let Some((run, id)) = runs.pop() {
                if run >= t.run {
                    if run > t.run {
                        // A run started after the last status write: the earlier one is
                        // its previous state.
                        if let Some(RunState::Exited(term)) = t.state.take() {
                            t.last = Some(term);
                        }
                    }
                    t.run = run;
                    if let Some(s) = status.filter(|s| {
                        s["containerID"].as_str()
                            == Some(format!("{CONTAINER_ID_SCHEME}{id}").as_str())
                    }) {
                        t.carried = Some((
                            id.clone(),
                            s["started"].as_bool().unwrap_or(false),
                            s["ready"].as_bool().unwrap_or(false),
                        ));
                    }
                    t.run_id = Some(id);
                    // Refreshed from the runtime below.
                    t.state = Some(RunState::Running {
                        started_at: String::new(),
                    });
                } else {
                    t.stale.push(id);
                }
            }
            t.stale.extend(runs.into_iter().map(|(_, id)| id));
        }
        self.adopted = true;
    }

    /// Looks at the runtime, acts on probe failures, starts what should run and keeps the
    /// probes of running containers going; returns when to look again.
    async fn sync(&mut self, raw: &Value, pod: &Pod) -> Option<Instant> {
        let ip = raw
            .pointer("/status/podIP")
            .and_then(Value::as_str)
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        self.pod_ip.send_if_modified(|cur| {
            let changed = *cur != ip;
            *cur = ip;
            changed
        });
        let wake = self.sync_containers(raw, pod).await;
        self.ensure_probes(raw, pod);
        wake
    }

    async fn sync_containers(&mut self, raw: &Value, pod: &Pod) -> Option<Instant> {
        if !self.adopted {
            self.adopt(raw, pod).await;
        }
        if self.start_time.is_none() {
            self.start_time = Some(ts(Timestamp::now()));
        }
        if !self.sandbox_ready && !self.ensure_sandbox(raw, pod).await {
            return Some(Instant::now() + RETRY);
        }
        self.refresh(raw).await;
        self.remove_stale().await;
        self.kill_unhealthy(raw, pod).await;
        let policy = pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone())
            .unwrap_or_else(|| "Always".into());
        let mut wake: Option<Instant> = None;
        let mut soonest = |w: Option<Instant>| {
            if let Some(w) = w {
                wake = Some(wake.map_or(w, |x: Instant| x.min(w)));
            }
        };
        // Init containers, in order: each must succeed before the next starts.
        let n_init = self.tracks.iter().filter(|t| t.init).count();
        for i in 0..n_init {
            match self.tracks[i].state.clone() {
                None => {
                    soonest(self.start(i, raw, pod).await);
                    return wake;
                }
                Some(RunState::Running { .. }) => return wake,
                Some(RunState::Exited(t)) if t.exit_code == 0 => continue,
                Some(RunState::Exited(_)) => {
                    if policy != "Never" {
                        soonest(self.restart_if_due(i, raw, pod).await);
                    }
                    return wake;
                }
            }
        }
        for i in n_init..self.tracks.len() {
            match self.tracks[i].state.clone() {
                None => soonest(self.start(i, raw, pod).await),
                Some(RunState::Running { .. }) => {}
                Some(RunState::Exited(t)) => {
                    if should_restart(&policy, t.exit_code) {
                        soonest(self.restart_if_due(i, raw, pod).await);
                    } else {
                        self.release(i).await;
                    }
                }
            }
        }
        wake
    }

    /// Kills the runs whose liveness or startup probe failed (preStop, SIGTERM, the probe's
    /// or the pod's grace period, SIGKILL); the caller then restarts them by policy.
    async fn kill_unhealthy(&mut self, raw: &Value, pod: &Pod) {
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec.restart_policy.as_deref().unwrap_or("Always");
        let due: Vec<(String, String, ProbeKind)> = self
            .tracks
            .iter()
            .filter(|t| !t.init && t.running())
            .filter_map(|t| {
                let id = t.run_id.clone()?;
                let p = self.probes.get(&t.name).filter(|p| p.run_id == id)?;
                Some((t.name.clone(), id, p.failed?))
            })
            .collect();
        if due.is_empty() {
            return;
        }
        for (name, id, kind) in due {
            // Its probes end with the run; the next run starts its own.
            self.probes.remove(&name);
            let c = spec.containers.iter().find(|c| c.name == name);
            let probe = c.and_then(|c| match kind {
                ProbeKind::Startup => c.startup_probe.as_ref(),
                _ => c.liveness_probe.as_ref(),
            });
            let grace = probe
                .and_then(|p| p.termination_grace_period_seconds)
                .or(spec.termination_grace_period_seconds)
                .unwrap_or(30)
                .max(0) as u64;
            let what = match kind {
                ProbeKind::Startup => "startup",
                _ => "liveness",
            };
            let mut message = format!("Container {name} failed {what} probe");
            if policy != "Never" {
                message.push_str(", will be restarted");
            }
            tracing::info!(pod = %self.label(), container = %name, grace, "{message}");
            stop_container(
                &self.ctx,
                Some(raw),
                &id,
                c,
                Instant::now() + Duration::from_secs(grace),
                &message,
            )
            .await;
        }
        // Record the exits (the restart follows by policy, with the usual back-off).
        self.refresh(raw).await;
    }

    /// Starts the probe tasks a running app container's run needs now: the startup probe
    /// first, liveness and readiness once it has started. Drops the probes of runs that
    /// are over.
    fn ensure_probes(&mut self, raw: &Value, pod: &Pod) {
        let tracks = &self.tracks;
        self.probes.retain(|name, p| {
            tracks.iter().any(|t| {
                t.name == *name && t.running() && t.run_id.as_deref() == Some(p.run_id.as_str())
            })
        });
        let Some(spec) = pod.spec.as_ref() else {
            return;
        };
        for t in self.tracks.iter_mut().filter(|t| !t.init && t.running()) {
            let Some(run_id) = t.run_id.clone() else {
                continue;
            };
            let Some(c) = spec.containers.iter().find(|c| c.name == t.name) else {
                continue;
            };
            if c.startup_probe.is_none()
                && c.liveness_probe.is_none()
                && c.readiness_probe.is_none()
            {
                continue;
            }
            let carried = t
                .carried
                .take_if(|(id, _, _)| *id == run_id)
                .map(|(_, started, ready)| (started, ready));
            let p = self
                .probes
                .entry(t.name.clone())
                .or_insert_with(|| RunProbes {
                    run_id: run_id.clone(),
                    started: c.startup_probe.is_none() || carried.is_some_and(|c| c.0),
                    ready: carried.is_some_and(|c| c.1),
                    failed: None,
                    startup_spawned: false,
                    others_spawned: false,
                    tasks: Vec::new(),
                });
            let mut wanted: Vec<(ProbeKind, &Probe, Option<ProbeResult>)> = Vec::new();
            if !p.started && !p.startup_spawned {
                p.startup_spawned = true;
                wanted.extend(
                    c.startup_probe
                        .as_ref()
                        .map(|pr| (ProbeKind::Startup, pr, None)),
                );
            }
            if p.started && !p.others_spawned {
                p.others_spawned = true;
                wanted.extend(
                    c.liveness_probe
                        .as_ref()
                        .map(|pr| (ProbeKind::Liveness, pr, None)),
                );
                let ready = p.ready.then_some(ProbeResult::Success);
                wanted.extend(
                    c.readiness_probe
                        .as_ref()
                        .map(|pr| (ProbeKind::Readiness, pr, ready)),
                );
            }
            if wanted.is_empty() {
                continue;
            }
            let container_started = tokio::time::Instant::from_std(started_instant(t));
            let target = probe_target(&self.ctx, &self.uid, c, &run_id);
            let events: EventSink = {
                let recorder = self.ctx.events.clone();
                let raw = raw.clone();
                Arc::new(move |message: &str| {
                    recorder.record(&raw, EventType::Warning, "Unhealthy", message)
                })
            };
            for (kind, probe, initial) in wanted {
                let (initial_delay, period) = prober::schedule_of(probe);
                let task = ProbeTask {
                    kind,
                    probe: probe.clone(),
                    target: target.clone(),
                    pod_ip: self.pod_ip.subscribe(),
                    container_started,
                    initial_delay,
                    period,
                    initial,
                    run_id: run_id.clone(),
                    events: events.clone(),
                };
                p.tasks.push(tokio::spawn(task.run(self.probe_tx.clone())));
            }
        }
    }

    /// ConfigMap, Secret and pod metadata changes reach the pod's volumes (at most every
    /// [`VOLUME_REFRESH`]; the worker's resync makes it happen without other wakes).
    async fn refresh_volumes(&mut self, pod: &Pod) {
        if !self.sandbox_ready
            || self
                .volumes_refreshed
                .is_some_and(|t| t.elapsed() < VOLUME_REFRESH)
        {
            return;
        }
        self.volumes_refreshed = Some(Instant::now());
        let ctx = self.ctx.clone();
        let dir = ctx.pod_dir(&self.uid).join("volumes");
        let pod = pod.clone();
        blocking(move || volumes::refresh(&pod, &dir, &StoreLookup(&ctx.store))).await;
    }

    /// Evicts the pod when one of its emptyDir volumes holds more than its `sizeLimit`, as
    /// Kubernetes' eviction manager does: the containers are killed at once and the pod
    /// ends `Failed` with reason `Evicted` (its controller, if any, replaces it).
    async fn check_empty_dir_usage(&mut self, raw: &Value, pod: &Pod) {
        if !self.sandbox_ready
            || self
                .usage_checked
                .is_some_and(|t| t.elapsed() < EVICTION_CHECK)
        {
            return;
        }
        self.usage_checked = Some(Instant::now());
        let limits = volumes::empty_dir_limits(pod);
        if limits.is_empty() {
            return;
        }
        let dir = self.ctx.pod_dir(&self.uid).join("volumes");
        let over = blocking(move || {
            limits.into_iter().find(|(name, _, bytes)| {
                crate::storage::disk_usage(&dir.join(name)).is_ok_and(|used| used > *bytes)
            })
        })
        .await
        .flatten();
        let Some((volume, limit, _)) = over else {
            return;
        };
        let message = format!("Usage of EmptyDir volume {volume:?} exceeds the limit {limit:?}. ");
        tracing::info!(pod = %self.label(), volume, limit, "evicting the pod: an emptyDir is over its sizeLimit");
        self.ctx
            .events
            .record(raw, EventType::Warning, "Evicted", &message);
        self.evicted = Some(message);
        self.stop_all(raw, pod).await;
    }

    /// Kills every running container of the pod at once (no grace) and frees them.
    async fn stop_all(&mut self, raw: &Value, pod: &Pod) {
        self.probes.clear();
        let now = Instant::now();
        let spec = pod.spec.clone().unwrap_or_default();
        let running: Vec<(String, String)> = self
            .tracks
            .iter()
            .filter(|t| t.running())
            .filter_map(|t| Some((t.name.clone(), t.run_id.clone()?)))
            .collect();
        for (name, id) in &running {
            let container = spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .find(|c| &c.name == name);
            let message = format!("Stopping container {name}");
            stop_container(&self.ctx, Some(raw), id, container, now, &message).await;
        }
        if !running.is_empty() {
            self.refresh(raw).await;
        }
        for i in 0..self.tracks.len() {
            if !self.tracks[i].running() {
                self.release(i).await;
            }
        }
    }

    async fn ensure_sandbox(&mut self, raw: &Value, pod: &Pod) -> bool {
        let runtime = self.ctx.kubelet.runtime.clone();
        let names = super::dns::pod_hosts(pod, &self.ctx.kubelet.config.dns.cluster_domain);
        let (uid, hostname) = (self.uid.clone(), names.hostname);
        let mut limits = container::pod_resources(pod);
        limits.pids_limit = self.ctx.kubelet.config.pod_pids_limit;
        let pod_dir = self.ctx.pod_dir(&self.uid);
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        let result = blocking(move || -> Result<(), RuntimeError> {
            runtime.create_pod_cgroup(&uid, &limits)?;
            runtime.create_sandbox(&uid, &hostname, host_network)?;
            std::fs::create_dir_all(pod_dir.join("volumes")).map_err(|source| {
                RuntimeError::Io {
                    action: "create",
                    path: pod_dir,
                    source,
                }
            })?;
            Ok(())
        })
        .await;
        let result: Option<Result<(), SetupError>> = match result {
            Some(Ok(())) => match self.write_resolv_conf(raw, pod).await {
                Some(Ok(())) => self.ensure_network(pod).await,
                other => other,
            },
            Some(Err(e)) => Some(Err(e.into())),
            None => None,
        };
        match result {
            Some(Ok(())) => {
                self.sandbox_ready = true;
                true
            }
            Some(Err(e)) => {
                tracing::warn!(pod = %self.label(), error = %e, "cannot create the pod sandbox");
                self.ctx.events.record(
                    raw,
                    EventType::Warning,
                    "FailedCreatePodSandBox",
                    &format!("Failed to create pod sandbox: {e}"),
                );
                false
            }
            None => false,
        }
    }

    /// Writes the pod's `/etc/resolv.conf` from its DNS policy (before any container
    /// starts), recording Kubernetes' warnings about it as events.
    async fn write_resolv_conf(
        &mut self,
        raw: &Value,
        pod: &Pod,
    ) -> Option<Result<(), SetupError>> {
        let kubelet = &self.ctx.kubelet;
        let formed =
            super::dns::pod_resolv_conf(pod, kubelet.cluster_dns.as_ref(), &kubelet.host_resolv);
        for (reason, message) in &formed.warnings {
            self.ctx
                .events
                .record(raw, EventType::Warning, reason, message);
        }
        let runtime = kubelet.runtime.clone();
        let uid = self.uid.clone();
        blocking(move || runtime.write_resolv_conf(&uid, &formed.text))
            .await
            .map(|r| r.map_err(SetupError::from))
    }

    /// Gives the pod its address and `eth0` (after the sandbox, before any container), or
    /// the host's address for hostNetwork pods. `None` when the worker task failed.
    async fn ensure_network(&mut self, pod: &Pod) -> Option<Result<(), SetupError>> {
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        if host_network {
            self.ip = self.ctx.host_ip.parse().ok();
            return Some(Ok(()));
        }
        let Some(net) = self.ctx.kubelet.network.clone() else {
            return Some(Ok(()));
        };
        let netns = self.ctx.kubelet.runtime.sandbox_paths(&self.uid).net;
        let ip = match net.attach(&self.uid, &netns, host_ports(pod)).await {
            Ok(ip) => IpAddr::V4(ip),
            Err(e) => return Some(Err(e.into())),
        };
        self.ip = Some(ip);
        let runtime = self.ctx.kubelet.runtime.clone();
        let uid = self.uid.clone();
        let names = super::dns::pod_hosts(pod, &self.ctx.kubelet.config.dns.cluster_domain);
        blocking(move || runtime.set_pod_hosts(&uid, &names, ip))
            .await
            .map(|r| r.map_err(SetupError::from))
    }

    /// Reads the state of every current run; records exits.
    async fn refresh(&mut self, raw: &Value) {
        for i in 0..self.tracks.len() {
            let Some(id) = self.tracks[i].run_id.clone() else {
                continue;
            };
            if matches!(self.tracks[i].state, Some(RunState::Exited(_))) {
                continue;
            }
            let runtime = self.ctx.kubelet.runtime.clone();
            let rid = id.clone();
            let state = blocking(move || runtime.state(&rid)).await;
            let cid = format!("{CONTAINER_ID_SCHEME}{id}");
            let now = Timestamp::now();
            let t = &mut self.tracks[i];
            match state {
                Some(Ok(ContainerState::Running { started_at, .. })) => {
                    t.state = Some(RunState::Running {
                        started_at: ts(started_at),
                    });
                    t.waiting = None;
                    self.watch_exit(&id);
                }
                Some(Ok(ContainerState::Creating)) => self.watch_exit(&id),
                Some(Ok(ContainerState::Exited {
                    exit_code,
                    signal,
                    oom_killed,
                    started_at,
                    finished_at,
                    error,
                })) => {
                    let reason = if let Some(e) = &error {
                        format!("{:?}", e.reason)
                    } else if oom_killed {
                        "OOMKilled".to_string()
                    } else if exit_code == 0 {
                        "Completed".to_string()
                    } else {
                        "Error".to_string()
                    };
                    let ran_for = started_at
                        .map(|s| {
                            Duration::try_from(finished_at.duration_since(s)).unwrap_or_default()
                        })
                        .unwrap_or_default();
                    t.state = Some(RunState::Exited(Terminated {
                        exit_code,
                        signal,
                        reason,
                        message: error.map(|e| e.message),
                        started_at: started_at.map(ts),
                        finished_at: ts(finished_at),
                        finished: finished_at,
                        ran_for,
                        container_id: cid,
                    }));
                    reap_shim(&self.ctx, &id);
                    if let Some(h) = self.watched.remove(&id) {
                        h.abort();
                    }
                }
                Some(Ok(ContainerState::Unknown)) | Some(Err(_)) | None => {
                    t.state = Some(RunState::Exited(Terminated {
                        exit_code: 128,
                        signal: None,
                        reason: "Error".into(),
                        message: Some("the container's supervisor (berth shim) is gone".into()),
                        started_at: None,
                        finished_at: ts(now),
                        finished: now,
                        ran_for: Duration::ZERO,
                        container_id: cid,
                    }));
                    if let Some(h) = self.watched.remove(&id) {
                        h.abort();
                    }
                }
            }
            let _ = raw;
        }
    }

    /// Wakes the worker when the run's shim exits (it has recorded the exit by then).
    fn watch_exit(&mut self, id: &str) {
        if self.watched.contains_key(id) {
            return;
        }
        let runtime = self.ctx.kubelet.runtime.clone();
        let notify = self.exit.clone();
        let rid = id.to_string();
        let handle = tokio::spawn(async move {
            let fd: Option<OwnedFd> = runtime.shim_pidfd(&rid).ok().flatten();
            match fd.and_then(watch_fd) {
                Some(afd) => {
                    let _ = afd.readable().await;
                }
                // No pidfd: poll.
                _ => loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if !runtime.state(&rid).is_ok_and(|s| s.is_running()) {
                        break;
                    }
                },
            }
            notify.notify_one();
        });
        self.watched.insert(id.to_string(), handle);
    }

    async fn remove_stale(&mut self) {
        let stale: Vec<String> = self
            .tracks
            .iter_mut()
            .flat_map(|t| t.stale.drain(..))
            .collect();
        for id in stale {
            self.remove_run(&id).await;
        }
    }

    /// Removes a finished run from the runtime and unmounts its rootfs (its log stays).
    async fn remove_run(&self, id: &str) {
        let runtime = self.ctx.kubelet.runtime.clone();
        let dir = self.ctx.rootfs_dir(id);
        let rid = id.to_string();
        let result = blocking(move || {
            if runtime.state(&rid).is_ok_and(|s| s.is_running()) {
                let _ = runtime.stop(&rid, Duration::from_secs(2));
            }
            let r = runtime.remove(&rid);
            let _ = crate::image::remove_rootfs(&dir);
            let _ = std::fs::remove_dir(&dir);
            r
        })
        .await;
        if let Some(Err(e)) = result {
            tracing::warn!(container = id, error = %e, "cannot remove a finished container");
        }
    }

    /// A container that will not run again: free its runtime container and rootfs.
    async fn release(&mut self, i: usize) {
        if let Some(id) = self.tracks[i].run_id.take() {
            self.remove_run(&id).await;
        }
    }

    /// Restarts a crashed container now, or says when (CrashLoopBackOff).
    async fn restart_if_due(&mut self, i: usize, raw: &Value, pod: &Pod) -> Option<Instant> {
        let base = self.ctx.kubelet.config.crash_loop_base;
        let label = self.label();
        let t = &mut self.tracks[i];
        if let Some(retry) = t.retry_at
            && retry > Instant::now()
        {
            return Some(retry);
        }
        let term = t.exited()?.clone();
        if term.ran_for >= BACKOFF_RESET_AFTER {
            t.backoff = None;
        }
        if let Some(delay) = t.backoff {
            let since = Duration::try_from(Timestamp::now().duration_since(term.finished))
                .unwrap_or_default();
            if since < delay {
                let message = format!(
                    "back-off {} restarting failed container={} pod={label}",
                    crate::api::table::human_duration(
                        jiff::SignedDuration::try_from(delay).unwrap_or_default()
                    ),
                    t.name
                );
                if t.waiting.as_ref().map(|w| w.0.as_str()) != Some("CrashLoopBackOff") {
                    self.ctx.events.record(
                        raw,
                        EventType::Warning,
                        "BackOff",
                        &format!(
                            "Back-off restarting failed container {} in pod {label}",
                            t.name
                        ),
                    );
                }
                t.waiting = Some(("CrashLoopBackOff".into(), message));
                return Some(Instant::now() + (delay - since));
            }
            t.backoff = Some((delay * 2).min(MAX_BACKOFF));
        } else {
            t.backoff = Some(base);
        }
        // The finished run becomes lastState; the next run gets the next number.
        t.last = Some(term);
        t.state = None;
        t.run += 1;
        if let Some(old) = t.run_id.take() {
            t.stale.push(old);
        }
        self.remove_stale().await;
        self.start(i, raw, pod).await
    }

    /// Starts run `t.run` of container `i`.
    async fn start(&mut self, i: usize, raw: &Value, pod: &Pod) -> Option<Instant> {
        let t = self.tracks[i].clone();
        if let Some(retry) = t.retry_at
            && retry > Instant::now()
        {
            if let Some((reason, message)) = &t.waiting
                && reason == "ErrImagePull"
            {
                // Waiting out the pull back-off: the status says so, as Kubernetes' does.
                self.ctx.events.record(
                    raw,
                    EventType::Normal,
                    "BackOff",
                    &format!("Back-off pulling image \"{}\"", t.image),
                );
                self.tracks[i].waiting = Some((
                    "ImagePullBackOff".to_string(),
                    format!(
                        "Back-off pulling image \"{}\": ErrImagePull: {message}",
                        t.image
                    ),
                ));
            }
            return Some(retry);
        }
        let spec = pod.spec.clone().unwrap_or_default();
        let c = spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .find(|c| c.name == t.name)
            .cloned()?;
        let id = container_id(&self.uid, &t.name, t.run);
        let ctx = self.ctx.clone();
        let pod2 = pod.clone();
        let uid = self.uid.clone();
        let log = LogLocation {
            namespace: self.namespace.clone(),
            pod_name: self.name.clone(),
            pod_uid: self.uid.clone(),
            container_name: t.name.clone(),
            restart_count: t.run,
        };
        let id2 = id.clone();
        let label = self.label();
        let result = blocking(move || start_container(&ctx, &pod2, &c, &uid, &id2, log)).await;
        let t = &mut self.tracks[i];
        match result {
            Some(Ok(started)) => {
                let pulled = match started.pulled {
                    Some((took, size)) => format!(
                        "Successfully pulled image \"{}\" in {:.3}s. Image size: {size} bytes.",
                        t.image,
                        took.as_secs_f64()
                    ),
                    None => format!("Container image \"{}\" already present on machine", t.image),
                };
                t.pull_backoff = None;
                self.ctx
                    .events
                    .record(raw, EventType::Normal, "Pulled", &pulled);
                self.ctx.events.record(
                    raw,
                    EventType::Normal,
                    "Created",
                    &format!("Created container: {}", t.name),
                );
                self.ctx.events.record(
                    raw,
                    EventType::Normal,
                    "Started",
                    &format!("Started container {}", t.name),
                );
                t.image_id = started.image_id;
                t.run_id = Some(id.clone());
                t.waiting = None;
                t.retry_at = None;
                t.state = Some(RunState::Running {
                    started_at: ts(Timestamp::now()),
                });
                self.watch_exit(&id);
                // Pick up the real start time (and an immediate exit).
                self.refresh(raw).await;
                None
            }
            Some(Err(StartError {
                reason,
                message,
                event,
            })) => {
                tracing::info!(pod = %label, container = %t.name, %reason, %message, "container did not start");
                if reason == "ErrImagePull" {
                    // Kubernetes' image back-off: 10 s doubling to 5 min between pulls.
                    let delay = t
                        .pull_backoff
                        .map_or(PULL_BACKOFF_BASE, |d| (d * 2).min(MAX_BACKOFF));
                    t.pull_backoff = Some(delay);
                    self.ctx.events.record(
                        raw,
                        EventType::Warning,
                        "Failed",
                        &format!("Failed to pull image \"{}\": {message}", t.image),
                    );
                    self.ctx.events.record(
                        raw,
                        EventType::Warning,
                        "Failed",
                        "Error: ErrImagePull",
                    );
                    t.waiting = Some((reason, message));
                    let retry = Instant::now() + delay;
                    t.retry_at = Some(retry);
                    return Some(retry);
                }
                if t.waiting.as_ref().map(|w| &w.1) != Some(&message) {
                    self.ctx
                        .events
                        .record(raw, EventType::Warning, event, &message);
                }
                t.waiting = Some((reason, message));
                let retry = Instant::now() + RETRY;
                t.retry_at = Some(retry);
                Some(retry)
            }
            None => Some(Instant::now() + RETRY),
        }
    }

    /// Stops every container (preStop, SIGTERM, grace, SIGKILL) and frees everything.
    async fn terminate(&mut self, pod: Option<&Pod>, grace: u64) {
        // No probe acts on a pod that is going away.
        self.probes.clear();
        if !self.adopted {
            // Deleted before the first sync (or after a restart): find what runs.
            if let Some(p) = pod {
                let raw = serde_json::to_value(p).unwrap_or_default();
                self.adopt(&raw, p).await;
            } else {
                let ids = {
                    let runtime = self.ctx.kubelet.runtime.clone();
                    let uid = self.uid.clone();
                    blocking(move || {
                        runtime
                            .list()
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|id| parse_id(id).is_some_and(|(u, _, _)| u == uid))
                            .collect::<Vec<_>>()
                    })
                    .await
                    .unwrap_or_default()
                };
                for id in ids {
                    let mut t = Track::new(&Container::default(), false);
                    t.name = parse_id(&id).map(|p| p.1).unwrap_or_default();
                    t.run_id = Some(id);
                    t.state = Some(RunState::Running {
                        started_at: String::new(),
                    });
                    self.tracks.push(t);
                }
                self.adopted = true;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(grace);
        let raw = pod.map(|p| serde_json::to_value(p).unwrap_or_default());
        let mut stopping = Vec::new();
        for t in &self.tracks {
            let Some(id) = t.run_id.clone() else { continue };
            let container = pod.and_then(|p| {
                p.spec.as_ref().and_then(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                        .find(|c| c.name == t.name)
                        .cloned()
                })
            });
            let ctx = self.ctx.clone();
            let raw = raw.clone();
            let name = t.name.clone();
            stopping.push(tokio::spawn(async move {
                let message = format!("Stopping container {name}");
                stop_container(
                    &ctx,
                    raw.as_ref(),
                    &id,
                    container.as_ref(),
                    deadline,
                    &message,
                )
                .await;
            }));
        }
        for s in stopping {
            let _ = s.await;
        }
        // The last word on each container (exit codes) before the pod goes.
        if let (Some(raw), Some(p)) = (raw.as_ref(), pod) {
            self.refresh(raw).await;
            self.write_status(raw, p).await;
        }
        // Everything is stopped: free it all.
        let ids: Vec<String> = self
            .tracks
            .iter_mut()
            .filter_map(|t| t.run_id.take())
            .collect();
        for id in ids {
            self.remove_run(&id).await;
        }
        for (_, h) in self.watched.drain() {
            h.abort();
        }
        cleanup_pod(&self.ctx, &self.uid, &self.namespace, &self.name).await;
    }

    /// Deletes the pod for good once its containers are gone.
    async fn final_delete(&self) {
        let Some(rt) = registry::by_kind("v1", "Pod") else {
            return;
        };
        let store = self.ctx.store.clone();
        let (ns, name, uid) = (self.namespace.clone(), self.name.clone(), self.uid.clone());
        let result = blocking(move || {
            store.delete(
                rt,
                Some(&ns),
                &name,
                &DeleteOptions {
                    grace_period_seconds: Some(0),
                    precondition_uid: Some(uid),
                    ..Default::default()
                },
            )
        })
        .await;
        match result {
            Some(Ok(_))
            | Some(Err(StoreError::Api(ApiError::NotFound(_) | ApiError::Conflict { .. }))) => {}
            Some(Err(e)) => {
                tracing::warn!(pod = %self.label(), error = %e, "cannot delete the stopped pod")
            }
            None => {}
        }
    }

    /// Writes the pod's status when it differs from what is stored.
    async fn write_status(&mut self, raw: &Value, pod: &Pod) {
        let status = self.status(raw, pod);
        if self.last_status.as_ref() == Some(&status) && raw.get("status") == Some(&status) {
            return;
        }
        if raw.get("status") == Some(&status) {
            self.last_status = Some(status);
            return;
        }
        let Some(rt) = registry::by_kind("v1", "Pod") else {
            return;
        };
        let store = self.ctx.store.clone();
        let (ns, name, uid) = (self.namespace.clone(), self.name.clone(), self.uid.clone());
        let new_status = status.clone();
        let result = blocking(move || {
            store.update_with(
                rt,
                Some(&ns),
                &name,
                Subresource::Status,
                false,
                move |obj| {
                    if meta::uid(obj) != uid {
                        return Err(ApiError::bad_request("the pod was replaced"));
                    }
                    let mut obj = obj.clone();
                    // Keep what others own: the scheduler's condition.
                    let mut status = new_status.clone();
                    if let Some(sched) = obj
                        .pointer("/status/conditions")
                        .and_then(Value::as_array)
                        .and_then(|c| c.iter().find(|c| c["type"] == "PodScheduled"))
                        .cloned()
                        && let Some(conds) = status["conditions"].as_array_mut()
                    {
                        conds.retain(|c| c["type"] != "PodScheduled");
                        conds.insert(0, sched);
                    }
                    obj["status"] = status;
                    Ok(obj)
                },
            )
        })
        .await;
        match result {
            Some(Ok(_)) => self.last_status = Some(status),
            Some(Err(e)) => tracing::debug!(pod = %self.label(), error = %e, "status not written"),
            None => {}
        }
    }

    fn started_and_ready(
        &self,
        t: &Track,
        spec: &k8s_openapi::api::core::v1::PodSpec,
    ) -> (bool, bool) {
        started_and_ready(
            t,
            spec.containers.iter().find(|c| c.name == t.name),
            self.probes.get(&t.name),
        )
    }

    /// The pod's status from what the worker knows.
    fn status(&self, raw: &Value, pod: &Pod) -> Value {
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        let init: Vec<&Track> = self.tracks.iter().filter(|t| t.init).collect();
        let apps: Vec<&Track> = self.tracks.iter().filter(|t| !t.init).collect();
        let init_failed = init
            .iter()
            .any(|t| t.exited().is_some_and(|e| e.exit_code != 0) && policy == "Never");
        let initialized = init
            .iter()
            .all(|t| t.exited().is_some_and(|e| e.exit_code == 0));
        let app_done = |t: &&Track| {
            t.exited()
                .is_some_and(|e| !should_restart(&policy, e.exit_code))
        };
        let phase = if init_failed || self.evicted.is_some() {
            "Failed"
        } else if !initialized {
            "Pending"
        } else if !apps.is_empty() && apps.iter().all(app_done) {
            if apps
                .iter()
                .all(|t| t.exited().is_some_and(|e| e.exit_code == 0))
            {
                "Succeeded"
            } else {
                "Failed"
            }
        } else if apps
            .iter()
            .any(|t| t.running() || t.exited().is_some() || t.last.is_some())
        {
            "Running"
        } else {
            "Pending"
        };
        let terminal = matches!(phase, "Succeeded" | "Failed");
        let waiting_reason = if initialized {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        let statuses = |list: &[&Track], init_list: bool| -> Vec<Value> {
            list.iter()
                .map(|t| {
                    let state = match (&t.state, &t.waiting) {
                        (Some(RunState::Running { started_at }), _) => {
                            json!({"running": {"startedAt": started_at}})
                        }
                        (_, Some((reason, message))) => {
                            json!({"waiting": {"reason": reason, "message": message}})
                        }
                        (Some(RunState::Exited(term)), None) => json!({"terminated": term.to_json()}),
                        (None, None) => {
                            let reason = if init_list { "PodInitializing" } else { waiting_reason };
                            json!({"waiting": {"reason": reason}})
                        }
                    };
                    let (started, ready) = if init_list {
                        (t.running(), t.running() || t.exited().is_some_and(|e| e.exit_code == 0))
                    } else {
                        self.started_and_ready(t, &spec)
                    };
                    let mut v = json!({
                        "name": t.name,
                        "image": t.image,
                        "imageID": t.image_id,
                        "ready": ready,
                        "restartCount": t.run,
                        "started": started,
                        "state": state,
                        "lastState": t.last.as_ref().map(|l| json!({"terminated": l.to_json()})).unwrap_or(json!({})),
                    });
                    if let Some(id) = t.run_id.clone().or_else(|| t.exited().map(|e| e.container_id.trim_start_matches(CONTAINER_ID_SCHEME).to_string())) {
                        v["containerID"] = json!(format!("{CONTAINER_ID_SCHEME}{id}"));
                    }
                    v
                })
                .collect()
        };
        let existing = |ty: &str| -> Option<Value> {
            raw.pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| c["type"] == ty))
                .cloned()
        };
        let condition = |ty: &str, ok: bool, reason: Option<&str>, message: Option<String>| {
            let status = if ok { "True" } else { "False" };
            let since = existing(ty)
                .filter(|c| c["status"] == status)
                .and_then(|c| c["lastTransitionTime"].as_str().map(str::to_string))
                .unwrap_or_else(|| ts(Timestamp::now()));
            let mut c = json!({"type": ty, "status": status, "lastProbeTime": null, "lastTransitionTime": since});
            if let Some(r) = reason {
                c["reason"] = json!(r);
            }
            if let Some(m) = message {
                c["message"] = json!(m);
            }
            c
        };
        let unready: Vec<&str> = apps
            .iter()
            .filter(|t| !self.started_and_ready(t, &spec).1)
            .map(|t| t.name.as_str())
            .collect();
        let incomplete: Vec<&str> = init
            .iter()
            .filter(|t| t.exited().is_none_or(|e| e.exit_code != 0))
            .map(|t| t.name.as_str())
            .collect();
        let list = |v: &[&str]| format!("[{}]", v.join(" "));
        let ready_reason = if terminal {
            Some("PodCompleted")
        } else if unready.is_empty() {
            None
        } else {
            Some("ContainersNotReady")
        };
        let ready_message = (!terminal && !unready.is_empty())
            .then(|| format!("containers with unready status: {}", list(&unready)));
        let mut conditions = vec![
            condition("PodReadyToStartContainers", self.sandbox_ready, None, None),
            condition(
                "Initialized",
                initialized,
                if initialized {
                    None
                } else {
                    Some("ContainersNotInitialized")
                },
                (!initialized)
                    .then(|| format!("containers with incomplete status: {}", list(&incomplete))),
            ),
            condition(
                "Ready",
                !terminal && unready.is_empty(),
                ready_reason,
                ready_message.clone(),
            ),
            condition(
                "ContainersReady",
                !terminal && unready.is_empty(),
                ready_reason,
                ready_message,
            ),
        ];
        if let Some(s) = existing("PodScheduled") {
            conditions.insert(1, s);
        }
        if let Some(message) = &self.evicted {
            conditions.push(condition(
                "DisruptionTarget",
                true,
                Some("TerminationByKubelet"),
                Some(message.clone()),
            ));
        }
        let mut status = json!({
            "phase": phase,
            "conditions": conditions,
            "hostIP": self.ctx.host_ip,
            "hostIPs": [{"ip": self.ctx.host_ip}],
            "podIP": self.ip.map(|ip| ip.to_string()),
            "podIPs": self.ip.map(|ip| vec![json!({"ip": ip.to_string()})]),
            "startTime": self.start_time,
            "qosClass": qos_class(pod).as_str(),
            "containerStatuses": statuses(&apps, false),
        });
        if !init.is_empty() {
            status["initContainerStatuses"] = json!(statuses(&init, true));
        }
        if let Some(message) = &self.evicted {
            status["reason"] = json!("Evicted");
            status["message"] = json!(message);
        }
        status
    }
}

/// Why a container did not start: the waiting reason, its message and the event reason.
struct StartError {
    reason: String,
    message: String,
    event: &'static str,
}

struct Started {
    image_id: String,
    /// How long the pull took, when the image was pulled for this start.
    pulled: Option<(Duration, u64)>,
}

/// Ensures the image, mounts the rootfs, builds the config and starts the run (blocking).
fn start_container(
    ctx: &Ctx,
    pod: &Pod,
    c: &Container,
    uid: &str,
    id: &str,
    log: LogLocation,
) -> Result<Started, StartError> {
    let image = c.image.clone().unwrap_or_default();
    let policy = c.image_pull_policy.clone().unwrap_or_default();
    let auth = pull_auth(&ctx.store, pod);
    let pulling = crate::image::pull_decision(
        &policy,
        &image,
        ctx.kubelet.images.resolve(&image).is_some(),
    )
    .unwrap_or(false);
    if pulling && let Ok(raw) = serde_json::to_value(pod) {
        {
            ctx.events.record(
                &raw,
                EventType::Normal,
                "Pulling",
                &format!("Pulling image \"{image}\""),
            );
        }
    }
    let began = Instant::now();
    let info = ctx
        .kubelet
        .images
        .ensure(&image, &policy, &auth)
        .map_err(|e: ImageError| StartError {
            reason: e.waiting_reason().to_string(),
            message: e.to_string(),
            event: if matches!(e, ImageError::NeverPull { .. }) {
                "ErrImageNeverPull"
            } else {
                "Failed"
            },
        })?;
    let pulled = pulling.then(|| (began.elapsed(), info.size));
    if let Ok(mut used) = ctx.kubelet.image_last_used.lock() {
        used.insert(info.id.as_str().to_string(), jiff::Timestamp::now());
    }
    let image_id = match crate::image::Reference::parse(&info.reference) {
        Ok(r) => format!("{}@{}", r.repository(), info.manifest_digest.as_str()),
        Err(_) => info.id.as_str().to_string(),
    };
    let config_error = |e: ConfigError| StartError {
        reason: "CreateContainerConfigError".into(),
        message: e.0,
        event: "Failed",
    };
    let create_error = |m: String| StartError {
        reason: "CreateContainerError".into(),
        message: m,
        event: "Failed",
    };
    let dir = ctx.rootfs_dir(id);
    // A leftover of an interrupted start of this very run.
    let _ = crate::image::remove_rootfs(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| create_error(format!("cannot create {}: {e}", dir.display())))?;
    let rootfs = ctx
        .kubelet
        .images
        .mount_rootfs(&info, &dir)
        .map_err(|e| create_error(e.to_string()))?;
    let undo = |e: StartError| {
        let _ = crate::image::remove_rootfs(&dir);
        let _ = std::fs::remove_dir(&dir);
        e
    };
    let built = container::build(
        &BuildInput {
            pod,
            container: c,
            image: &info.config,
            rootfs: &rootfs.path(),
            host_ip: &ctx.host_ip,
            memory_capacity: ctx.memory_capacity,
        },
        &StoreLookup(&ctx.store),
    );
    let mut config = built.map_err(config_error).map_err(undo)?;
    config.id = id.to_string();
    config.cgroups_path = ctx
        .kubelet
        .runtime
        .container_cgroup_path(uid, id)
        .map_err(|e| undo(create_error(e.to_string())))?;
    config.join_sandbox(&ctx.kubelet.runtime.sandbox_paths(uid));
    config.log = log;
    // Volumes: set up (files written, host paths checked) and bind-mounted.
    let volume_mounts = volumes::mounts(
        pod,
        c,
        &ctx.pod_dir(uid).join("volumes"),
        &StoreLookup(&ctx.store),
    )
    .map_err(|e| {
        // A volume that cannot be set up keeps the pod creating (FailedMount, retried);
        // a bad mount of a container (subPath, unknown volume) is a config error.
        undo(match e.volume {
            Some(_) => StartError {
                reason: "ContainerCreating".into(),
                message: e.message(),
                event: "FailedMount",
            },
            None => config_error(ConfigError(e.message())),
        })
    })?;
    config.mounts.extend(volume_mounts);
    match ctx.kubelet.runtime.start(&config) {
        Ok(()) => Ok(Started { image_id, pulled }),
        Err(RuntimeError::CreateContainer {
            reason, message, ..
        }) => {
            // The run exists and has recorded why; the worker reads it as an exit.
            let _ = reason;
            tracing::info!(container = id, %message, "the container could not be created");
            Ok(Started { image_id, pulled })
        }
        Err(e) => Err(undo(create_error(e.to_string()))),
    }
}

/// preStop, SIGTERM, wait until `deadline`, SIGKILL. `message` is the `Killing` event's.
async fn stop_container(
    ctx: &Ctx,
    pod: Option<&Value>,
    id: &str,
    container: Option<&Container>,
    deadline: Instant,
    message: &str,
) {
    let runtime = ctx.kubelet.runtime.clone();
    let rid = id.to_string();
    let running = blocking({
        let runtime = runtime.clone();
        move || runtime.state(&rid).is_ok_and(|s| s.is_running())
    })
    .await
    .unwrap_or(false);
    if !running {
        return;
    }
    if let Some(p) = pod {
        ctx.events.record(p, EventType::Normal, "Killing", message);
    }
    if let Some(hook) = container
        .and_then(|c| c.lifecycle.as_ref())
        .and_then(|l| l.pre_stop.as_ref())
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let run = pre_stop(ctx, id, hook, left);
        if tokio::time::timeout(left, run).await.is_err() {
            tracing::info!(
                container = id,
                "the preStop hook did not finish within the grace period"
            );
        }
    }
    let rid = id.to_string();
    let r2 = runtime.clone();
    let _ = blocking(move || r2.kill(&rid, nix::sys::signal::Signal::SIGTERM, false)).await;
    if !wait_exit(ctx, id, deadline).await {
        let rid = id.to_string();
        let r2 = runtime.clone();
        let _ = blocking(move || r2.kill(&rid, nix::sys::signal::Signal::SIGKILL, true)).await;
        wait_exit(ctx, id, Instant::now() + Duration::from_secs(10)).await;
    }
    reap_shim(ctx, id);
}

/// Registers a pidfd with the reactor; it turns readable when the process exits.
fn watch_fd(fd: OwnedFd) -> Option<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd takes ownership of the descriptor, so it stays open for as long
    // as it is registered and is deregistered before it is closed.
    unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE).ok()
    }
}

/// Waits (without holding a thread) until the run's shim has exited.
async fn wait_exit(ctx: &Ctx, id: &str, deadline: Instant) -> bool {
    let runtime = ctx.kubelet.runtime.clone();
    let rid = id.to_string();
    let fd = runtime.shim_pidfd(&rid).ok().flatten();
    let left = deadline.saturating_duration_since(Instant::now());
    match fd.and_then(watch_fd) {
        Some(afd) => tokio::time::timeout(left, afd.readable()).await.is_ok(),
        _ => {
            while Instant::now() < deadline {
                if !runtime.state(&rid).is_ok_and(|s| s.is_running()) {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        }
    }
}

/// Runs a preStop hook: exec in the container, or sleep.
async fn pre_stop(
    ctx: &Ctx,
    id: &str,
    hook: &k8s_openapi::api::core::v1::LifecycleHandler,
    timeout: Duration,
) {
    if let Some(exec) = &hook.exec {
        let runtime = ctx.kubelet.runtime.clone();
        let rid = id.to_string();
        let args = exec.command.clone().unwrap_or_default();
        let _ = blocking(move || {
            let spec = crate::runtime::ExecSpec {
                args,
                env: Vec::new(),
                stdin: false,
                tty: false,
            };
            match runtime.exec(&rid, &spec) {
                Ok(mut child) => {
                    let _ = child.wait(Some(timeout));
                }
                Err(e) => {
                    tracing::info!(container = %rid, error = %e, "the preStop hook could not run")
                }
            }
        })
        .await;
    } else if let Some(sleep) = &hook.sleep {
        tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64).min(timeout)).await;
    } else if let Some(http) = &hook.http_get {
        let probe = k8s_openapi::api::core::v1::Probe {
            http_get: Some(http.clone()),
            timeout_seconds: Some(timeout.as_secs().max(1) as i32),
            ..Default::default()
        };
        let target = super::prober::Target {
            netns: Some(
                ctx.kubelet
                    .runtime
                    .sandbox_paths(parse_id(id).map(|p| p.0).unwrap_or_default().as_str())
                    .net,
            ),
            pod_ip: None,
            named_ports: BTreeMap::new(),
            container_id: id.to_string(),
            exec: None,
        };
        let _ = super::prober::check(&probe, &target).await;
    }
}

/// Reaps a run's shim when it became our child (the daemon is a child subreaper).
fn reap_shim(ctx: &Ctx, id: &str) {
    if let Ok(Some(pid)) = ctx.kubelet.runtime.shim_pid(id) {
        let _ = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
    }
}

/// Frees a pod's sandbox, cgroup, volumes and logs.
pub async fn cleanup_pod(ctx: &Arc<Ctx>, uid: &str, namespace: &str, name: &str) {
    let runtime = ctx.kubelet.runtime.clone();
    let uid = uid.to_string();
    let uid_net = uid.clone();
    let pod_dir = ctx.pod_dir(&uid);
    let log = LogLocation {
        namespace: namespace.to_string(),
        pod_name: name.to_string(),
        pod_uid: uid.clone(),
        container_name: "x".into(),
        restart_count: 0,
    };
    let result = blocking(move || -> Result<(), RuntimeError> {
        runtime.destroy_sandbox(&uid)?;
        runtime.remove_pod_cgroup(&uid)?;
        if !namespace_is_empty(&log) {
            runtime.remove_pod_logs(&log)?;
        }
        // Secret and projected volumes are tmpfs mounts below the pod's directory.
        volumes::unmount_below(&pod_dir);
        let _ = std::fs::remove_dir_all(&pod_dir);
        Ok(())
    })
    .await;
    if let Some(Err(e)) = result {
        tracing::warn!(error = %e, "cannot clean up a pod");
    }
    // After the sandbox: the blocking part above runs to its end even when a stopping
    // daemon drops this future, whereas an await here may be cut short. The veth pair goes
    // with the namespace anyway; an address left allocated is freed by the orphan cleanup
    // at the next start.
    if let Some(net) = &ctx.kubelet.network
        && let Err(e) = net.detach(&uid_net).await
    {
        tracing::warn!(pod_uid = %uid_net, error = %e, "cannot release the pod's network");
    }
}

fn namespace_is_empty(log: &LogLocation) -> bool {
    log.namespace.is_empty() || log.pod_name.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_round_trip() {
        let id = container_id("0b6f7d1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "web-server", 12);
        assert_eq!(
            parse_id(&id),
            Some((
                "0b6f7d1e-1c2d-4e5f-8a9b-0c1d2e3f4a5b".to_string(),
                "web-server".to_string(),
                12
            ))
        );
        assert!(crate::runtime::spec::valid_id(&id));
        assert_eq!(parse_id("garbage"), None);
    }

    #[test]
    fn started_and_ready_follow_the_probes_of_the_current_run() {
        let c: Container = serde_json::from_value(json!({"name": "web",
            "startupProbe": {"exec": {"command": ["true"]}},
            "readinessProbe": {"exec": {"command": ["true"]}}}))
        .unwrap();
        let plain = Container {
            name: "web".into(),
            ..Default::default()
        };
        let mut t = Track::new(&c, false);
        assert_eq!(started_and_ready(&t, Some(&c), None), (false, false));
        t.run_id = Some("u_web_0".into());
        t.state = Some(RunState::Running {
            started_at: String::new(),
        });
        assert_eq!(started_and_ready(&t, Some(&plain), None), (true, true));
        let mut p = RunProbes {
            run_id: "u_web_0".into(),
            started: false,
            ready: true,
            failed: None,
            startup_spawned: true,
            others_spawned: false,
            tasks: Vec::new(),
        };
        // Not started: not ready, whatever readiness said.
        assert_eq!(started_and_ready(&t, Some(&c), Some(&p)), (false, false));
        p.started = true;
        assert_eq!(started_and_ready(&t, Some(&c), Some(&p)), (true, true));
        p.ready = false;
        assert_eq!(started_and_ready(&t, Some(&c), Some(&p)), (true, false));
        // Results of an earlier run count for nothing.
        p.ready = true;
        t.run_id = Some("u_web_1".into());
        assert_eq!(started_and_ready(&t, Some(&c), Some(&p)), (false, false));
    }

    #[test]
    fn restart_policies() {
        assert!(should_restart("Always", 0));
        assert!(should_restart("OnFailure", 1));
        assert!(!should_restart("OnFailure", 0));
        assert!(!should_restart("Never", 1));
    }
}
