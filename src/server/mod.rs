//! The API server: Kubernetes' REST shape over HTTP/1.1 on a Unix socket.
//!
//! Each connection's peer credentials (SO_PEERCRED) decide what it may do: root and members
//! of the configured group may write, anyone else may only read and gets 403 Forbidden for
//! a write, which changes nothing. Errors become `metav1.Status` bodies in one place
//! ([`status_response`]). Store calls run on the blocking pool (LMDB commits fsync).

mod discovery;
pub mod exec;
mod handlers;
pub mod logs;
pub mod metrics;
pub mod node;
pub mod portforward;
pub mod routes;
mod watch;
mod websocket;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::UnixListener;

use crate::api::{ApiError, MAX_REQUEST_BODY_BYTES};
use crate::store::Store;

/// Response body: whole JSON documents, or a stream for watches.
pub type Body = BoxBody<Bytes, Infallible>;

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
    /// Root, or a member of the write group.
    pub can_write: bool,
}

impl Identity {
    fn describe(&self) -> String {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(self.uid))
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| format!("uid {}", self.uid))
    }
}

/// Settings of the API server.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// The group whose members may write (name and gid), if it exists on this host.
    pub write_group: Option<(String, u32)>,
    /// What a backup holds besides the store; `None`: backups are not served.
    pub backup: Option<BackupPaths>,
}

/// The node's files that go into a backup.
#[derive(Debug, Clone, Default)]
pub struct BackupPaths {
    pub state_dir: std::path::PathBuf,
    pub key_file: Option<std::path::PathBuf>,
    pub config_file: Option<std::path::PathBuf>,
    pub node_name: String,
}

/// The API server's shared state.
pub struct ApiServer {
    pub store: Arc<Store>,
    pub config: ServerConfig,
    /// Logs, exec, port-forward, images and metrics, served by the kubelet.
    pub node: node::NodeServices,
}

impl ApiServer {
    pub fn new(store: Arc<Store>, config: ServerConfig, node: node::NodeServices) -> Arc<Self> {
        Arc::new(ApiServer {
            store,
            config,
            node,
        })
    }

    /// Who may do what, from the peer credentials of a connection.
    pub fn identify(&self, uid: u32, gid: u32, pid: Option<i32>) -> Identity {
        let can_write = uid == 0
            || self
                .config
                .write_group
                .as_ref()
                .is_some_and(|(_, group_gid)| {
                    gid == *group_gid
                        || pid.is_some_and(|pid| process_groups(pid).contains(group_gid))
                });
        Identity {
            uid,
            gid,
            pid,
            can_write,
        }
    }

    /// Serves one connection (any byte stream: the socket's, or a fuzzer's) as `identity`
    /// until it ends or `shutdown` flips.
    pub async fn serve_connection<IO>(
        self: Arc<Self>,
        io: IO,
        identity: Arc<Identity>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let service = service_fn(move |req| {
            let server = self.clone();
            let identity = identity.clone();
            async move { Ok::<_, Infallible>(server.handle(&identity, req).await) }
        });
        // A client that does not send its request headers in time (a slowloris, or a
        // connection left idle) is cut off.
        let conn = http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_HEADER_BYTES)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            }
            _ = shutdown.changed() => {}
        }
    }

    /// Accepts connections until `shutdown` flips to true.
    pub async fn serve(
        self: Arc<Self>,
        listener: UnixListener,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            // Out of file descriptors (a flood of connections): pause
                            // rather than spin; the open connections keep being served.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(ACCEPT_BACKOFF).await;
                            continue;
                        }
                    };
                    let identity = match stream.peer_cred() {
                        Ok(cred) => Arc::new(self.identify(cred.uid(), cred.gid(), cred.pid())),
                        Err(e) => {
                            tracing::warn!(error = %e, "no peer credentials; closing connection");
                            continue;
                        }
                    };
                    tokio::spawn(self.clone().serve_connection(stream, identity, shutdown.clone()));
                }
                _ = shutdown.changed() => break,
            }
        }
    }

    async fn handle(
        self: &Arc<Self>,
        identity: &Identity,
        req: Request<Incoming>,
    ) -> Response<Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let result = self.dispatch(identity, req).await;
        match result {
            Ok(resp) => {
                tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
                resp
            }
            Err(e) => {
                tracing::debug!(%method, %path, status = e.code(), error = %e, "request failed");
                status_response(&e)
            }
        }
    }

    async fn dispatch(
        self: &Arc<Self>,
        identity: &Identity,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, ApiError> {
        if let Some(m) = metrics::parse(req.uri().path()) {
            if req.method() != Method::GET {
                return Err(ApiError::MethodNotAllowed);
            }
            let raw = req.uri().query().unwrap_or_default();
            return metrics::serve(&self.store, &self.node, m, raw).await;
        }
        let route = routes::parse(req.uri().path())?;
        let query = Query::parse(req.uri().query().unwrap_or_default())?;
        let method = req.method().clone();
        let is_write = matches!(
            method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        );
        if is_write && !identity.can_write {
            return Err(self.forbidden(identity, &method, &route));
        }
        match route {
            routes::Route::Version => Ok(json_response(StatusCode::OK, &discovery::version())),
            routes::Route::Health => Ok(text_response(StatusCode::OK, "ok")),
            routes::Route::CoreVersions => {
                Ok(json_response(StatusCode::OK, &discovery::core_versions()))
            }
            routes::Route::Groups => Ok(json_response(StatusCode::OK, &discovery::groups())),
            routes::Route::Group(g) => Ok(json_response(StatusCode::OK, &discovery::group(&g))),
            routes::Route::Resources { group, version } => Ok(json_response(
                StatusCode::OK,
                &discovery::resources(&group, &version),
            )),
            routes::Route::OpenApi(rest) => {
                discovery::openapi(&rest).map(|v| json_response(StatusCode::OK, &v))
            }
            routes::Route::Images(reference) => images(&self.node, method, reference, req).await,
            routes::Route::Pulls => {
                if method != Method::GET {
                    return Err(ApiError::MethodNotAllowed);
                }
                let service = self
                    .node
                    .images
                    .clone()
                    .ok_or_else(|| node::unavailable("the image service"))?;
                Ok(json_response(StatusCode::OK, &service.pulls().await?))
            }
            routes::Route::Backup => {
                if method != Method::GET {
                    return Err(ApiError::MethodNotAllowed);
                }
                if identity.uid != 0 {
                    return Err(ApiError::Forbidden {
                        message: format!(
                            "backup is forbidden: User \"{}\" cannot take a backup: it holds the secrets key, so only root may; run berth backup as root",
                            identity.describe()
                        ),
                    });
                }
                self.backup()
            }
            routes::Route::Resource(r) if exec::is_exec(&r) => {
                // Exec runs commands in containers: a write, whatever the method.
                if !identity.can_write {
                    return Err(self.forbidden(
                        identity,
                        &Method::POST,
                        &routes::Route::Resource(r),
                    ));
                }
                exec::serve(self, r, req).await
            }
            routes::Route::Resource(r) if portforward::is_portforward(&r) => {
                // Port-forward reaches into pods: a write, whatever the method.
                if !identity.can_write {
                    return Err(self.forbidden(
                        identity,
                        &Method::POST,
                        &routes::Route::Resource(r),
                    ));
                }
                portforward::serve(self, r, req).await
            }
            routes::Route::Resource(r) => {
                let accept = header(&req, hyper::header::ACCEPT);
                let content_type = header(&req, CONTENT_TYPE);
                let wants_table = accept.contains("as=Table");
                if r.rt.kind == "Pod"
                    && r.subresource.as_deref() == Some("log")
                    && r.name.is_some()
                    && method == Method::GET
                {
                    let raw = req.uri().query().unwrap_or_default();
                    return logs::serve(self.store.clone(), &self.node, r, raw).await;
                }
                if query.watch && method == Method::GET {
                    return watch::serve(self.store.clone(), r, query, wants_table).await;
                }
                let body = if is_write {
                    read_body(req).await?
                } else {
                    Bytes::new()
                };
                let ctx = handlers::Ctx {
                    route: r,
                    query,
                    wants_table,
                    content_type,
                    body,
                };
                handlers::handle(&self.store, method, ctx).await
            }
        }
    }

    /// Streams a backup archive, written by a blocking thread as the client reads it. A
    /// failure part-way ends the stream early: the client's check of the archive finds it
    /// incomplete.
    fn backup(self: &Arc<Self>) -> Result<Response<Body>, ApiError> {
        let paths = self
            .config
            .backup
            .clone()
            .ok_or_else(|| node::unavailable("the backup service"))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let out = std::io::BufWriter::with_capacity(256 * 1024, ChannelWriter(tx));
            let sources = crate::backup::Sources {
                store: &store,
                state_dir: &paths.state_dir,
                key_file: paths.key_file.as_deref(),
                config_file: paths.config_file.as_deref(),
                node_name: &paths.node_name,
            };
            match crate::backup::write(out, &sources) {
                Ok(()) => tracing::info!("backup written"),
                Err(e) => tracing::warn!(error = %e, "the backup failed"),
            }
        });
        let mut resp = Response::new(channel_body(rx));
        resp.headers_mut().insert(
            CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/zstd"),
        );
        Ok(resp)
    }

    fn forbidden(&self, identity: &Identity, method: &Method, route: &routes::Route) -> ApiError {
        let verb = match *method {
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            _ => "delete",
        };
        let (resource, group) = match route {
            routes::Route::Resource(r) => (r.rt.plural, r.rt.group),
            routes::Route::Images(_) => ("images", routes::IMAGES_GROUP),
            _ => ("", ""),
        };
        let how = match &self.config.write_group {
            Some((group_name, _)) => format!(
                "only root and members of the \"{group_name}\" group may change objects; ask an administrator to run: usermod -aG {group_name} {}",
                identity.describe()
            ),
            None => "only root may change objects on this host (no berth group exists; create it with: groupadd berth)"
                .to_string(),
        };
        ApiError::Forbidden {
            message: format!(
                "{resource} is forbidden: User \"{}\" cannot {verb} resource \"{resource}\" in API group \"{group}\": {how}",
                identity.describe()
            ),
        }
    }
}

/// A `Write` into a response stream (from a blocking thread).
struct ChannelWriter(tokio::sync::mpsc::Sender<Bytes>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
            })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A pull whose answer is a stream of JSON lines: `PullProgress` objects as the pull moves
/// on, then the `ImageList` pulled or the `Status` of its failure (the HTTP status is sent
/// before the pull ends, so the last line says how it went).
fn pull_stream(service: Arc<dyn node::ImageService>, reference: String) -> Response<Body> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Value>(16);
    let (out_tx, out_rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let pull = service.pull(reference, Some(tx));
        tokio::pin!(pull);
        let last = loop {
            tokio::select! {
                r = &mut pull => break r,
                Some(p) = rx.recv() => {
                    let _ = out_tx.send(json_line(&p)).await;
                }
            }
        };
        while let Ok(p) = rx.try_recv() {
            let _ = out_tx.send(json_line(&p)).await;
        }
        let last = match last {
            Ok(v) => v,
            Err(e) => e.to_status(),
        };
        let _ = out_tx.send(json_line(&last)).await;
    });
    let mut resp = Response::new(channel_body(out_rx));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A response body streamed from a channel, ending when its senders are gone.
fn channel_body(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Body {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(hyper::body::Frame::data(chunk)), rx))
    });
    http_body_util::StreamBody::new(stream).boxed()
}

/// One JSON value and a newline (a line of a streamed answer: watches, pulls).
pub(crate) fn json_line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// `/apis/images.berth.dev/v1/images…`: list, get, delete, and import (POST, the archive
/// as the body, streamed: archives are far larger than the API's body limit).
async fn images(
    node: &node::NodeServices,
    method: Method,
    reference: Option<String>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let service = node
        .images
        .clone()
        .ok_or_else(|| node::unavailable("the image service"))?;
    let value = match (method, reference) {
        (Method::GET, None) => service.list().await?,
        (Method::GET, Some(r)) => service.get(r).await?,
        (Method::DELETE, Some(r)) => service.remove(r).await?,
        (Method::POST, None)
            if form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
                .any(|(k, _)| k == "prune") =>
        {
            return Ok(json_response(StatusCode::OK, &service.prune().await?));
        }
        (Method::POST, None)
            if form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
                .any(|(k, _)| k == "pull") =>
        {
            let query: Vec<(String, String)> =
                form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
                    .into_owned()
                    .collect();
            let arg = |name: &str| {
                query
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            let reference = arg("pull").unwrap_or_default();
            if arg("progress").as_deref() != Some("true") {
                let pulled = service.pull(reference, None).await?;
                return Ok(json_response(StatusCode::CREATED, &pulled));
            }
            return Ok(pull_stream(service, reference));
        }
        (Method::POST, None) => {
            let name = form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
                .find(|(k, _)| k == "name")
                .map(|(_, v)| v.into_owned())
                .filter(|v| !v.is_empty());
            let (tx, rx) = tokio::sync::mpsc::channel(8);
            let mut body = req.into_body();
            let pump = tokio::spawn(async move {
                while let Some(frame) = body.frame().await {
                    match frame {
                        Ok(f) => {
                            if let Ok(data) = f.into_data()
                                && tx.send(data).await.is_err()
                            {
                                return Ok(());
                            }
                        }
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Ok(())
            });
            let result = service.import(rx, name).await;
            match pump.await {
                Ok(Err(e)) => {
                    return Err(ApiError::bad_request(format!(
                        "the upload of the image archive broke off: {e}"
                    )));
                }
                Err(e) => return Err(ApiError::internal(format!("upload task failed: {e}"))),
                Ok(Ok(())) => {}
            }
            let imported = result?;
            return Ok(json_response(StatusCode::CREATED, &imported));
        }
        _ => return Err(ApiError::MethodNotAllowed),
    };
    Ok(json_response(StatusCode::OK, &value))
}

/// Supplementary groups of a process, from `/proc/<pid>/status`.
fn process_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Groups:")).map(|g| {
                g.split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default()
}

fn header(req: &Request<Incoming>, name: hyper::header::HeaderName) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// How long a client has to send a request's headers (and how long a connection may sit
/// idle before its first request).
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a client has to send a request's body (the API's bodies are at most 3 MiB).
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// The most a request's headers may take (hyper answers 431 past it).
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The pause after a failed accept (out of file descriptors).
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// How much of an oversized body is read and dropped before answering 413.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// Reads a request body, refusing more than [`MAX_REQUEST_BODY_BYTES`] or a body that
/// takes longer than [`BODY_READ_TIMEOUT`] to arrive.
async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(BODY_READ_TIMEOUT, read_body_now(req)).await {
        Ok(r) => r,
        Err(_) => Err(ApiError::Timeout {
            message: format!(
                "the request body did not arrive within {}s",
                BODY_READ_TIMEOUT.as_secs()
            ),
        }),
    }
}

async fn read_body_now(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let too_large = ApiError::RequestEntityTooLarge {
        limit: MAX_REQUEST_BODY_BYTES,
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_REQUEST_BODY_BYTES) {
        // Read and drop what the client is still sending (up to a bound), so that it can
        // read the 413 instead of failing on a closed connection.
        let mut body = req.into_body();
        let mut drained = 0usize;
        while drained < DRAIN_LIMIT {
            match body.frame().await {
                Some(Ok(frame)) => drained += frame.data_ref().map_or(0, |d| d.len()),
                _ => break,
            }
        }
        return Err(too_large);
    }
    let limited = http_body_util::Limited::new(req.into_body(), MAX_REQUEST_BODY_BYTES);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large)
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "reading the request body failed: {e}"
        ))),
    }
}

/// Query parameters the API understands.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub label_selector: String,
    pub field_selector: String,
    pub watch: bool,
    pub resource_version: String,
    pub timeout_seconds: Option<u64>,
    pub dry_run: bool,
    pub propagation_policy: Option<String>,
    pub include_object: bool,
    pub grace_period_seconds: Option<i64>,
}

impl Query {
    fn parse(raw: &str) -> Result<Query, ApiError> {
        let mut q = Query::default();
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            match k.as_ref() {
                "labelSelector" => q.label_selector = v.into_owned(),
                "fieldSelector" => q.field_selector = v.into_owned(),
                "watch" => q.watch = v == "true" || v == "1",
                "resourceVersion" => q.resource_version = v.into_owned(),
                "timeoutSeconds" => {
                    q.timeout_seconds = Some(v.parse().map_err(|_| {
                        ApiError::bad_request(format!(
                            "timeoutSeconds must be a whole number of seconds, not \"{v}\""
                        ))
                    })?)
                }
                "dryRun" => {
                    if v != "All" {
                        return Err(ApiError::bad_request(format!(
                            "unsupported dryRun value \"{v}\": the only supported value is All"
                        )));
                    }
                    q.dry_run = true;
                }
                "propagationPolicy" => q.propagation_policy = Some(v.into_owned()),
                "includeObject" => q.include_object = v == "Object",
                "gracePeriodSeconds" => {
                    q.grace_period_seconds = Some(v.parse().map_err(|_| {
                        ApiError::bad_request(format!(
                            "gracePeriodSeconds must be a whole number of seconds, not \"{v}\""
                        ))
                    })?)
                }
                // Accepted and not needed: every list is one page, validation is always
                // strict, field managers are not tracked.
                _ => {}
            }
        }
        Ok(q)
    }
}

/// A whole JSON response.
pub fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    json_bytes_response(status, serde_json::to_vec(value).unwrap_or_default())
}

/// A JSON response from bytes that are already JSON.
pub fn json_bytes_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn text_response(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from_static(text.as_bytes())).boxed());
    *resp.status_mut() = status;
    resp
}

/// The one place an error becomes a response.
pub fn status_response(e: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(e.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &e.to_status())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(group: Option<u32>) -> Arc<ApiServer> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(
            &dir.path().join("s"),
            crate::store::StoreOptions {
                history_limit: 10,
                map_size: 16 << 20,
                ..Default::default()
            },
        )
        .expect("store");
        std::mem::forget(dir);
        ApiServer::new(
            Arc::new(store),
            ServerConfig {
                write_group: group.map(|g| ("berth".to_string(), g)),
                backup: None,
            },
            node::NodeServices::default(),
        )
    }

    #[test]
    fn root_and_group_members_may_write() {
        let s = server(Some(4242));
        assert!(s.identify(0, 0, None).can_write);
        assert!(s.identify(1000, 4242, None).can_write, "primary group");
        assert!(!s.identify(1000, 1000, None).can_write);
        // Supplementary groups come from /proc: this process (root in CI) has its own list.
        let own = process_groups(std::process::id() as i32);
        if let Some(g) = own.first() {
            let s = server(Some(*g));
            assert!(
                s.identify(1000, 1000, Some(std::process::id() as i32))
                    .can_write
            );
        }
        let nobody = server(None);
        assert!(
            !nobody.identify(1000, 1000, None).can_write,
            "no group: only root"
        );
    }

    #[test]
    fn query_parsing_rejects_nonsense() {
        assert!(Query::parse("timeoutSeconds=abc").is_err());
        assert!(Query::parse("dryRun=Some").is_err());
        let q = Query::parse("watch=true&resourceVersion=5&labelSelector=app%3Dweb&limit=500")
            .expect("ok");
        assert!(q.watch);
        assert_eq!(q.resource_version, "5");
        assert_eq!(q.label_selector, "app=web");
    }
}
