//! The reverse proxy: HTTP/1.1 on the host's HTTP and HTTPS listeners to the pods. Each
//! request takes the routing table current when it arrives and keeps it to the end, so a
//! rebuild never drops one in flight. Upgrades (WebSocket) are passed through: the
//! backend's 101 goes back to the client and the two upgraded connections are joined.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use super::routes::{Table, normalize_host};

type Body = BoxBody<Bytes, hyper::Error>;

/// How long connecting to a backend may take before the client gets a 502.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What every connection shares: the current table (swapped whole) and the HTTPS port
/// (for redirects).
#[derive(Debug)]
pub struct Shared {
    pub table: RwLock<Arc<Table>>,
    pub https_port: u16,
}

impl Shared {
    pub fn table(&self) -> Arc<Table> {
        match self.table.read() {
            Ok(t) => t.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn swap(&self, table: Table) {
        let table = Arc::new(table);
        match self.table.write() {
            Ok(mut t) => *t = table,
            Err(poisoned) => *poisoned.into_inner() = table,
        }
    }
}

/// Accepts plain HTTP (or, with `tls`, HTTPS) connections until `shutdown` flips.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.changed() => return,
            got = listener.accept() => match got {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "ingress accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            match tls {
                None => connection(TokioIo::new(stream), peer, port, shared, false).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => connection(TokioIo::new(s), peer, port, shared, true).await,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "ingress tls handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "ingress tls handshake timed out"),
                    }
                }
            }
        });
    }
}

async fn connection<I>(io: I, peer: SocketAddr, port: u16, shared: Arc<Shared>, https: bool)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |req| handle(req, peer, port, shared.clone(), https));
    // A client gets HEADER_READ_TIMEOUT to send a request's headers (idle keep-alive
    // connections and slow senders are closed).
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(io, service)
        .with_upgrades()
        .await
    {
        tracing::debug!(%peer, error = %e, "ingress connection ended");
    }
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    port: u16,
    shared: Arc<Shared>,
    https: bool,
) -> Result<Response<Body>, Infallible> {
    let table = shared.table();
    let raw_host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let host = normalize_host(&raw_host);
    let path = req.uri().path().to_string();
    let Some(target) = table.route(&host, &path) else {
        return Ok(text(
            StatusCode::NOT_FOUND,
            format!("no ingress rule matches host \"{host}\" and path \"{path}\"\n"),
        ));
    };
    if !https && target.force_ssl_redirect {
        let port = match shared.https_port {
            443 | 0 => String::new(),
            p => format!(":{p}"),
        };
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let location = format!("https://{host}{port}{pq}");
        let mut r = text(StatusCode::PERMANENT_REDIRECT, String::new());
        if let Ok(v) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return Ok(r);
    }
    let Some(addr) = target.next_endpoint() else {
        let why = target
            .unavailable
            .as_deref()
            .unwrap_or("no ready endpoints");
        return Ok(text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the backend of ingress {}/{} is unavailable: {why}\n",
                target.ingress.0, target.ingress.1
            ),
        ));
    };
    match forward(req, addr, (peer, port), https, &raw_host).await {
        Ok(r) => Ok(r),
        Err(e) => {
            tracing::debug!(backend = %addr, error = %e, "ingress backend failed");
            Ok(text(
                StatusCode::BAD_GATEWAY,
                format!("the backend {addr} did not answer: {e}\n"),
            ))
        }
    }
}

/// Why a backend did not answer.
#[derive(Debug, thiserror::Error)]
enum ForwardError {
    #[error("connection timed out")]
    Timeout,
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("{0}")]
    Http(#[source] hyper::Error),
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether the headers ask for a protocol upgrade (`Connection: upgrade` + `Upgrade`).
fn is_upgrade(h: &HeaderMap) -> bool {
    h.contains_key(header::UPGRADE)
        && h.get_all(header::CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
        })
}

/// Removes hop-by-hop headers (and those `Connection` names), keeping an upgrade's.
fn strip_hop_by_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    let upgrade = h.get(header::UPGRADE).cloned();
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(',').map(|t| t.trim().to_ascii_lowercase()))
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        h.remove(n);
    }
    if keep_upgrade && let Some(u) = upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, u);
    }
}

/// Adds X-Forwarded-For (appended to a client's), -Proto, -Host and -Port.
fn add_forwarded(h: &mut HeaderMap, peer: SocketAddr, https: bool, host: &str, port: u16) {
    let xff = HeaderName::from_static("x-forwarded-for");
    let ip = peer.ip().to_string();
    let value = match h.get(&xff).and_then(|v| v.to_str().ok()) {
        Some(prev) if !prev.trim().is_empty() => format!("{prev}, {ip}"),
        _ => ip,
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(xff, v);
    }
    h.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static(if https { "https" } else { "http" }),
    );
    if let Ok(v) = HeaderValue::from_str(host) {
        h.insert(HeaderName::from_static("x-forwarded-host"), v);
    }
    h.insert(
        HeaderName::from_static("x-forwarded-port"),
        HeaderValue::from(port),
    );
}

async fn forward(
    mut req: Request<Incoming>,
    addr: SocketAddr,
    (peer, local_port): (SocketAddr, u16),
    https: bool,
    host: &str,
) -> Result<Response<Body>, ForwardError> {
    let upgrade = is_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    // The backend gets the origin form, also when the client sent an absolute URI.
    if req.uri().authority().is_some() {
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".to_string());
        if let Ok(uri) = pq.parse() {
            *req.uri_mut() = uri;
        }
    }
    strip_hop_by_hop(req.headers_mut(), upgrade);
    add_forwarded(req.headers_mut(), peer, https, host, local_port);
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| ForwardError::Timeout)?
        .map_err(ForwardError::Connect)?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(ForwardError::Http)?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "ingress backend connection ended");
        }
    });
    let mut resp = sender.send_request(req).await.map_err(ForwardError::Http)?;
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let backend_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            match tokio::try_join!(client_upgrade, backend_upgrade) {
                Ok((c, b)) => {
                    let (mut c, mut b) = (TokioIo::new(c), TokioIo::new(b));
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut b).await;
                }
                Err(e) => tracing::debug!(error = %e, "ingress upgrade failed"),
            }
        });
        return Ok(resp.map(|b| b.boxed()));
    }
    strip_hop_by_hop(resp.headers_mut(), false);
    Ok(resp.map(|b| b.boxed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go_and_forwarded_headers_append() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        assert!(!is_upgrade(&h));
        strip_hop_by_hop(&mut h, false);
        assert!(h.get("x-secret").is_none() && h.get("keep-alive").is_none());
        assert!(h.get(header::CONNECTION).is_none());
        assert_eq!(h["accept"], "*/*");
        add_forwarded(
            &mut h,
            "127.0.0.1:5555".parse().unwrap(),
            true,
            "a.test:8443",
            8443,
        );
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "a.test:8443");
        assert_eq!(h["x-forwarded-port"], "8443");

        let mut u = HeaderMap::new();
        u.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        u.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&u));
        strip_hop_by_hop(&mut u, true);
        assert_eq!(u[header::CONNECTION], "upgrade");
        assert_eq!(u[header::UPGRADE], "websocket");
    }
}
