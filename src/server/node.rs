//! What the API server asks of the node: container logs, exec, port-forward, local images
//! and resource metrics. The kubelet implements these traits; the server sees only them, so it keeps
//! depending on `api` and `store` alone. A service that is absent (`None`) answers
//! 503 ServiceUnavailable naming what is missing.
//!
//! Containers are named by the `containerID` the kubelet writes into the pod's status
//! (`berth://<runtime id>`), so the server resolves pod + container name → id from the
//! stored pod and the services need no pod bookkeeping of their own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

use crate::api::ApiError;

/// A boxed future, as the services return (their traits stay object-safe).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The scheme of `containerID` in container statuses.
pub const CONTAINER_ID_SCHEME: &str = "berth://";

/// The services of this node, each optional.
#[derive(Clone, Default)]
pub struct NodeServices {
    pub logs: Option<Arc<dyn LogService>>,
    pub exec: Option<Arc<dyn ExecService>>,
    pub port_forward: Option<Arc<dyn PortForwardService>>,
    pub images: Option<Arc<dyn ImageService>>,
    pub metrics: Option<Arc<dyn MetricsService>>,
}

impl std::fmt::Debug for NodeServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeServices")
            .field("logs", &self.logs.is_some())
            .field("exec", &self.exec.is_some())
            .field("port_forward", &self.port_forward.is_some())
            .field("images", &self.images.is_some())
            .field("metrics", &self.metrics.is_some())
            .finish()
    }
}

/// The answer when a service is missing.
pub fn unavailable(what: &str) -> ApiError {
    ApiError::ServiceUnavailable {
        message: format!("{what} is not available: this daemon runs without a kubelet"),
    }
}

/// Which log of which container, with kubectl's options (`PodLogOptions`).
#[derive(Debug, Clone, Default)]
pub struct LogRequest {
    pub namespace: String,
    pub pod_name: String,
    pub pod_uid: String,
    pub container: String,
    /// `berth://…` of the current run (for `follow`: the stream ends when it exits).
    pub container_id: Option<String>,
    /// The run whose log is wanted: the container's restartCount, or one less for
    /// `previous`.
    pub restart_count: u32,
    pub follow: bool,
    pub tail_lines: Option<u64>,
    pub since_seconds: Option<u64>,
    pub since_time: Option<jiff::Timestamp>,
    pub timestamps: bool,
    pub limit_bytes: Option<u64>,
}

/// A log as a stream of chunks; the stream ends at the end of the log (or, with `follow`,
/// when the container's run ends or the receiver is dropped).
pub type LogStream = tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>;

pub trait LogService: Send + Sync {
    fn logs(&self, request: LogRequest) -> BoxFuture<Result<LogStream, ApiError>>;
}

/// One command to run in a running container.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// The runtime id (without `berth://`).
    pub container_id: String,
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// A running exec: its streams, a way to resize its terminal, and its exit.
pub struct ExecProcess {
    pub stdin: Option<tokio::sync::mpsc::Sender<Bytes>>,
    pub stdout: Option<tokio::sync::mpsc::Receiver<Bytes>>,
    /// `None` with a TTY (stderr goes to the terminal).
    pub stderr: Option<tokio::sync::mpsc::Receiver<Bytes>>,
    /// (columns, rows); only with a TTY.
    pub resize: Option<tokio::sync::mpsc::Sender<(u16, u16)>>,
    /// The exit code (128 + signal when killed by one).
    pub exit: BoxFuture<Result<i32, ApiError>>,
}

pub trait ExecService: Send + Sync {
    fn exec(&self, request: ExecRequest) -> BoxFuture<Result<ExecProcess, ApiError>>;
}

/// A byte stream to a port of a pod (a TCP connection made inside its network namespace).
pub trait PortStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> PortStream for T {}

pub trait PortForwardService: Send + Sync {
    /// Connects to `port` on the loopback of the pod with uid `pod_uid`, from inside the
    /// pod's network namespace (pods have no address of their own yet). The error says
    /// why, e.g. `connect: connection refused`.
    fn connect(
        &self,
        pod_uid: String,
        port: u16,
    ) -> BoxFuture<Result<Box<dyn PortStream>, ApiError>>;
}

/// Local images, as JSON objects (`kind: Image`, see the image service for the fields).
pub trait ImageService: Send + Sync {
    fn list(&self) -> BoxFuture<Result<serde_json::Value, ApiError>>;
    fn get(&self, reference: String) -> BoxFuture<Result<serde_json::Value, ApiError>>;
    fn remove(&self, reference: String) -> BoxFuture<Result<serde_json::Value, ApiError>>;
    /// Imports a `docker save` or OCI archive read from `body` (not size-limited), named
    /// `name` when the archive names nothing.
    fn import(
        &self,
        body: tokio::sync::mpsc::Receiver<Bytes>,
        name: Option<String>,
    ) -> BoxFuture<Result<serde_json::Value, ApiError>>;
    /// Removes every image no container uses.
    fn prune(&self) -> BoxFuture<Result<serde_json::Value, ApiError>>;
    /// Pulls `reference` from its registry (with `registries.yaml`'s credentials); with
    /// `progress`, sends a `PullProgress` object there whenever the pull moves on.
    fn pull(
        &self,
        reference: String,
        progress: Option<tokio::sync::mpsc::Sender<serde_json::Value>>,
    ) -> BoxFuture<Result<serde_json::Value, ApiError>>;
    /// The pulls under way (a `PullProgressList`).
    fn pulls(&self) -> BoxFuture<Result<serde_json::Value, ApiError>>;
}

/// Resource usage from cgroup statistics, as `metrics.k8s.io/v1beta1` objects.
pub trait MetricsService: Send + Sync {
    /// A `PodMetricsList` of the given pods (as stored; the server selects them).
    fn pod_metrics(
        &self,
        pods: Vec<serde_json::Value>,
    ) -> BoxFuture<Result<serde_json::Value, ApiError>>;
    /// A `NodeMetricsList` of this node.
    fn node_metrics(&self) -> BoxFuture<Result<serde_json::Value, ApiError>>;
}
