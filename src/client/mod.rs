//! The typed API client: HTTP/1.1 over the daemon's Unix socket. The CLI and the TUI talk
//! to berth only through this.
//!
//! The socket is found through `--socket`, else `BERTH_SOCKET`, else the default path.

mod exec;
mod portforward;
pub mod rollout;

pub use exec::{ExecEvent, ExecOptions, ExecReader, ExecWriter};
pub use portforward::{
    ForwardError, ForwardEvent, ForwardTarget, PortForwardConn, PortSpec, serve_local,
};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::api::patch::PatchType;
use crate::api::registry::ResourceType;
use crate::api::watch::WatchEvent;
use crate::api::{ApiError, meta};

/// The default socket of a system daemon.
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the berth daemon at {}: {hint}", .socket.display())]
    Connect {
        socket: PathBuf,
        hint: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("talking to the berth daemon at {} failed: {source}", .socket.display())]
    Http {
        socket: PathBuf,
        #[source]
        source: hyper::Error,
    },
    #[error("the berth daemon sent an unreadable answer ({status}): {message}")]
    Decode { status: u16, message: String },
    /// A forwarded connection to a pod's port failed (refused, broken), as the daemon
    /// reported it.
    #[error("{message}")]
    PortForward { port: u16, message: String },
    /// What to forward to cannot be used (no running pod, no such port, …).
    #[error(transparent)]
    Forward(#[from] ForwardError),
}

/// A client for one daemon socket. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    dry_run: bool,
    /// Idle keep-alive connections, shared by clones; a request takes one or opens one.
    idle: Arc<Mutex<Vec<SendRequest<Full<Bytes>>>>>,
}

/// Idle connections kept per client.
const IDLE_CONNECTIONS: usize = 8;

/// A list response: the items and the revision to watch from.
#[derive(Debug, Clone)]
pub struct List {
    pub items: Vec<Value>,
    pub resource_version: String,
}

/// Options of list and watch calls.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Client {
            socket: socket.into(),
            dry_run: false,
            idle: Arc::default(),
        }
    }

    /// A client whose writes are server-side dry runs (`dryRun=All`): checked, not stored.
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }

    /// The socket from a flag, else `BERTH_SOCKET`, else the default.
    pub fn from_flag(flag: Option<&Path>) -> Self {
        let socket = flag
            .map(Path::to_path_buf)
            .or_else(|| {
                std::env::var_os("BERTH_SOCKET")
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
        Client::new(socket)
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends on a new connection of its own (watches keep theirs open).
    async fn send(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        let mut sender = self.connect().await?;
        sender
            .send_request(req)
            .await
            .map_err(|source| ClientError::Http {
                socket: self.socket.clone(),
                source,
            })
    }

    /// Opens a connection to the daemon.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        self.connect_with().await
    }

    /// Opens a connection to the daemon for requests with body type `B`.
    async fn connect_with<B>(&self) -> Result<SendRequest<B>, ClientError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let stream = tokio::net::UnixStream::connect(&self.socket).await.map_err(|source| {
            let hint = match source.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    "is the daemon running? start it with: systemctl start berth (or berth daemon)".to_string()
                }
                std::io::ErrorKind::PermissionDenied => {
                    "permission denied; add yourself to the berth group (sudo usermod -aG berth $USER, then log in again)".to_string()
                }
                _ => source.to_string(),
            };
            ClientError::Connect { socket: self.socket.clone(), hint, source }
        })?;
        let http = |source| ClientError::Http {
            socket: self.socket.clone(),
            source,
        };
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(s) = idle.pop() {
            if !s.is_closed() {
                return Some(s);
            }
        }
        None
    }

    fn put_idle(&self, sender: SendRequest<Full<Bytes>>) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if !sender.is_closed() && idle.len() < IDLE_CONNECTIONS {
            idle.push(sender);
        }
    }

    /// Sends on an idle connection when there is one (once more on a fresh connection if
    /// that one turns out to be dead), and reads the whole answer.
    async fn exchange(
        &self,
        make: impl Fn() -> Result<Request<Full<Bytes>>, ClientError>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let http = |source| ClientError::Http {
            socket: self.socket.clone(),
            source,
        };
        if let Some(mut sender) = self.take_idle()
            && sender.ready().await.is_ok()
        {
            match sender.try_send_request(make()?).await {
                Ok(resp) => {
                    let status = resp.status();
                    let bytes = resp.into_body().collect().await.map_err(http)?.to_bytes();
                    self.put_idle(sender);
                    return Ok((status, bytes));
                }
                // Never written to the dead connection: safe to send again below.
                Err(e) if e.message().is_some() => {}
                // It may have reached the daemon: sending it again could apply it twice.
                Err(e) => return Err(http(e.into_error())),
            }
        }
        let mut sender = self.connect().await?;
        let resp = sender.send_request(make()?).await.map_err(http)?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await.map_err(http)?.to_bytes();
        self.put_idle(sender);
        Ok((status, bytes))
    }

    /// POSTs a body streamed from `reader` (an image archive: far larger than what is
    /// sensible to hold in memory) and returns the JSON answer.
    pub async fn upload(
        &self,
        path: &str,
        content_type: &str,
        reader: impl tokio::io::AsyncRead + Send + Unpin + 'static,
    ) -> Result<Value, ClientError> {
        use tokio::io::AsyncReadExt;
        let http = |source| ClientError::Http {
            socket: self.socket.clone(),
            source,
        };
        let frames = futures_util::stream::unfold(Some(reader), |reader| async move {
            let mut reader = reader?;
            let mut buf = vec![0u8; 256 * 1024];
            match reader.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(hyper::body::Frame::data(Bytes::from(buf))), Some(reader)))
                }
                Err(e) => Some((Err(e), None)),
            }
        });
        let body = http_body_util::StreamBody::new(frames);
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("host", "berth")
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .map_err(|e| ClientError::Decode {
                status: 0,
                message: format!("bad request path {path}: {e}"),
            })?;
        let mut sender = self.connect_with().await?;
        let resp = sender.send_request(req).await.map_err(http)?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await.map_err(http)?.to_bytes();
        decode(status, &bytes)
    }

    /// Sends a request and returns the JSON answer, or the Status error it carried.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Value, ClientError> {
        let path = if self.dry_run && method != Method::GET {
            format!(
                "{path}{}dryRun=All",
                if path.contains('?') { '&' } else { '?' }
            )
        } else {
            path.to_string()
        };
        let path = path.as_str();
        let body = Bytes::from(body.unwrap_or_default());
        let make = || {
            let mut builder = Request::builder()
                .method(method.clone())
                .uri(path)
                .header("host", "berth")
                .header(ACCEPT, "application/json");
            if let Some(ct) = content_type {
                builder = builder.header(CONTENT_TYPE, ct);
            }
            builder
                .body(Full::new(body.clone()))
                .map_err(|e| ClientError::Decode {
                    status: 0,
                    message: format!("bad request path {path}: {e}"),
                })
        };
        let (status, bytes) = self.exchange(make).await?;
        decode(status, &bytes)
    }

    pub async fn version(&self) -> Result<Value, ClientError> {
        self.request(Method::GET, "/version", None, None).await
    }

    pub async fn get(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ClientError> {
        self.request(Method::GET, &object_path(rt, ns, name), None, None)
            .await
    }

    pub async fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<List, ClientError> {
        let path = with_query(&rt.collection_path(ns), &list_query(opts, &[]));
        let v = self.request(Method::GET, &path, None, None).await?;
        let items = v
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(List {
            items,
            resource_version: meta::resource_version(&v).to_string(),
        })
    }

    pub async fn create(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        obj: &Value,
    ) -> Result<Value, ClientError> {
        let body = serde_json::to_vec(obj).unwrap_or_default();
        self.request(
            Method::POST,
            &rt.collection_path(ns),
            Some("application/json"),
            Some(body),
        )
        .await
    }

    pub async fn replace(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        obj: &Value,
    ) -> Result<Value, ClientError> {
        let body = serde_json::to_vec(obj).unwrap_or_default();
        self.request(
            Method::PUT,
            &object_path(rt, ns, name),
            Some("application/json"),
            Some(body),
        )
        .await
    }

    pub async fn patch(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        kind: PatchType,
        patch: &Value,
    ) -> Result<Value, ClientError> {
        let ct = match kind {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        };
        let body = serde_json::to_vec(patch).unwrap_or_default();
        self.request(
            Method::PATCH,
            &object_path(rt, ns, name),
            Some(ct),
            Some(body),
        )
        .await
    }

    /// Deletes an object; `propagation` is Kubernetes' `propagationPolicy`.
    pub async fn delete(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        propagation: Option<&str>,
        grace_period_seconds: Option<i64>,
    ) -> Result<Value, ClientError> {
        let mut options = json!({"kind": "DeleteOptions", "apiVersion": "v1"});
        if let Some(p) = propagation {
            options["propagationPolicy"] = json!(p);
        }
        if let Some(g) = grace_period_seconds {
            options["gracePeriodSeconds"] = json!(g);
        }
        let body = Some(serde_json::to_vec(&options).unwrap_or_default());
        self.request(
            Method::DELETE,
            &object_path(rt, ns, name),
            Some("application/json"),
            body,
        )
        .await
    }

    /// The error of a streaming request the server refused: its `Status`, or `fallback` of
    /// the body when the body is not one.
    async fn refused(
        &self,
        resp: hyper::Response<Incoming>,
        fallback: impl FnOnce(&[u8]) -> String,
    ) -> ClientError {
        let status = resp.status();
        let bytes = match resp.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(source) => {
                return ClientError::Http {
                    socket: self.socket.clone(),
                    source,
                };
            }
        };
        match decode(status, &bytes) {
            Err(e) => e,
            Ok(_) => ClientError::Decode {
                status: status.as_u16(),
                message: fallback(&bytes),
            },
        }
    }

    /// Opens a watch from `resource_version` ("" = current state first, as ADDED events).
    pub async fn watch(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        opts: &ListOptions,
        resource_version: &str,
    ) -> Result<Watch, ClientError> {
        let extra = [("watch", "true"), ("resourceVersion", resource_version)];
        let path = with_query(&rt.collection_path(ns), &list_query(opts, &extra));
        let req = Request::builder()
            .method(Method::GET)
            .uri(path.as_str())
            .header("host", "berth")
            .header(ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Decode {
                status: 0,
                message: format!("bad request path {path}: {e}"),
            })?;
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(self.refused(resp, |_| "watch refused".to_string()).await);
        }
        Ok(Watch {
            body: resp.into_body(),
            buf: Vec::new(),
            socket: self.socket.clone(),
        })
    }
}

/// Options of a log request (`PodLogOptions`).
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub tail_lines: Option<u64>,
    pub since_seconds: Option<u64>,
    pub since_time: Option<String>,
    pub timestamps: bool,
    pub limit_bytes: Option<u64>,
}

impl LogOptions {
    fn query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(c) = self.container.as_deref().filter(|c| !c.is_empty()) {
            q.append_pair("container", c);
        }
        for (key, on) in [
            ("follow", self.follow),
            ("previous", self.previous),
            ("timestamps", self.timestamps),
        ] {
            if on {
                q.append_pair(key, "true");
            }
        }
        for (key, n) in [
            ("tailLines", self.tail_lines),
            ("sinceSeconds", self.since_seconds),
            ("limitBytes", self.limit_bytes),
        ] {
            if let Some(n) = n {
                q.append_pair(key, &n.to_string());
            }
        }
        if let Some(t) = &self.since_time {
            q.append_pair("sinceTime", t);
        }
        q.finish()
    }
}

impl Client {
    /// Opens a request whose answer is streamed (logs, pulls); a non-success answer is its
    /// error.
    pub async fn open_stream(&self, method: Method, path: &str) -> Result<ByteStream, ClientError> {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "berth")
            .header(ACCEPT, "*/*")
            .body(Full::new(Bytes::new()))
            .map_err(|e| ClientError::Decode {
                status: 0,
                message: format!("bad request path {path}: {e}"),
            })?;
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(self
                .refused(resp, |b| String::from_utf8_lossy(b).into_owned())
                .await);
        }
        Ok(ByteStream {
            body: resp.into_body(),
            socket: self.socket.clone(),
        })
    }

    /// A backup archive of the node, as the daemon writes it (root only).
    pub async fn backup(&self) -> Result<ByteStream, ClientError> {
        self.open_stream(Method::GET, "/apis/backup.berth.dev/v1/backup")
            .await
    }

    /// A container's log, as it is read (with `follow`, until the container's run ends).
    pub async fn logs(
        &self,
        namespace: &str,
        pod: &str,
        options: &LogOptions,
    ) -> Result<ByteStream, ClientError> {
        let path = format!(
            "/api/v1/namespaces/{}/pods/{}/log",
            encode_segment(namespace),
            encode_segment(pod)
        );
        self.open_stream(Method::GET, &with_query(&path, &options.query()))
            .await
    }
}

impl Client {
    /// `PodMetricsList` of a namespace (or all), or one pod's `PodMetrics`.
    pub async fn pod_metrics(
        &self,
        namespace: Option<&str>,
        name: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Value, ClientError> {
        let mut path = String::from("/apis/metrics.k8s.io/v1beta1");
        if let Some(ns) = namespace {
            path.push_str(&format!("/namespaces/{}", encode_segment(ns)));
        }
        path.push_str("/pods");
        if let Some(n) = name {
            path.push_str(&format!("/{}", encode_segment(n)));
        }
        let opts = ListOptions {
            label_selector: label_selector.map(str::to_string),
            field_selector: None,
        };
        let path = with_query(&path, &list_query(&opts, &[]));
        self.request(Method::GET, &path, None, None).await
    }

    /// `NodeMetricsList`, or one node's `NodeMetrics`.
    pub async fn node_metrics(&self, name: Option<&str>) -> Result<Value, ClientError> {
        let path = match name {
            Some(n) => format!("/apis/metrics.k8s.io/v1beta1/nodes/{}", encode_segment(n)),
            None => "/apis/metrics.k8s.io/v1beta1/nodes".to_string(),
        };
        self.request(Method::GET, &path, None, None).await
    }
}

/// A streamed response body.
pub struct ByteStream {
    body: Incoming,
    socket: PathBuf,
}

impl ByteStream {
    /// The next chunk; `None` at the end.
    pub async fn next(&mut self) -> Option<Result<Bytes, ClientError>> {
        loop {
            match self.body.frame().await? {
                Err(source) => {
                    return Some(Err(ClientError::Http {
                        socket: self.socket.clone(),
                        source,
                    }));
                }
                Ok(frame) => {
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        return Some(Ok(data));
                    }
                }
            }
        }
    }

    /// Reads the rest into memory.
    pub async fn collect(mut self) -> Result<Vec<u8>, ClientError> {
        let mut out = Vec::new();
        while let Some(chunk) = self.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }
}

/// A stream of watch events.
pub struct Watch {
    body: Incoming,
    buf: Vec<u8>,
    socket: PathBuf,
}

impl Watch {
    /// The next event; `None` when the server ended the stream.
    pub async fn next(&mut self) -> Option<Result<WatchEvent, ClientError>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let raw: Value = match serde_json::from_slice(&line) {
                    Ok(v) => v,
                    Err(e) => {
                        return Some(Err(ClientError::Decode {
                            status: 200,
                            message: e.to_string(),
                        }));
                    }
                };
                if raw["type"] == "ERROR" {
                    return Some(Err(ApiError::from_status(&raw["object"]).into()));
                }
                return Some(
                    serde_json::from_value(raw).map_err(|e| ClientError::Decode {
                        status: 200,
                        message: e.to_string(),
                    }),
                );
            }
            match self.body.frame().await {
                None => return None,
                Some(Err(source)) => {
                    return Some(Err(ClientError::Http {
                        socket: self.socket.clone(),
                        source,
                    }));
                }
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        self.buf.extend_from_slice(data);
                    }
                }
            }
        }
    }
}

fn object_path(rt: &ResourceType, ns: Option<&str>, name: &str) -> String {
    rt.object_path(ns, &encode_segment(name))
}

fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

fn list_query(opts: &ListOptions, extra: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(l) = opts.label_selector.as_deref().filter(|s| !s.is_empty()) {
        q.append_pair("labelSelector", l);
    }
    if let Some(f) = opts.field_selector.as_deref().filter(|s| !s.is_empty()) {
        q.append_pair("fieldSelector", f);
    }
    for (k, v) in extra.iter().filter(|(_, v)| !v.is_empty()) {
        q.append_pair(k, v);
    }
    q.finish()
}

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

fn decode(status: StatusCode, bytes: &[u8]) -> Result<Value, ClientError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| ClientError::Decode {
        status: status.as_u16(),
        message: format!(
            "{e}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ),
    })?;
    if status.is_success() {
        return Ok(value);
    }
    if value["kind"] == "Status" {
        return Err(ApiError::from_status(&value).into());
    }
    Err(ClientError::Decode {
        status: status.as_u16(),
        message: String::from_utf8_lossy(bytes).into_owned(),
    })
}
