//! Pulling images from registries: the OCI distribution API (`/v2/<name>/manifests/<ref>`,
//! `/v2/<name>/blobs/<digest>`) over HTTP/1.1 with hyper and rustls.
//!
//! - Endpoints: a registry's mirrors from `registries.yaml` first (in order, falling back to
//!   the next on any failure), then the registry itself (`docker.io` is served by
//!   `registry-1.docker.io`). A loopback registry (`localhost`, `127.0.0.0/8`, `::1`) that
//!   does not speak TLS is spoken to in plain HTTP, as Docker does; other plain-HTTP
//!   registries are named with an `http://` mirror endpoint.
//! - Auth: Basic, or Bearer tokens from the realm a `401`'s `WWW-Authenticate` names, with
//!   the credentials of the pod's `imagePullSecrets` (`kubernetes.io/dockerconfigjson`) or
//!   of `registries.yaml`; anonymous otherwise.
//! - Manifest lists and OCI indexes resolve to `linux/<this machine's architecture>`.
//! - Every manifest and blob is checked against its digest (and size) before it is used; a
//!   mismatch is an error, never a warning.
//! - Blobs download up to [`CONCURRENT_BLOBS`] at a time into `<images>/partial/<hex>`; an
//!   interrupted pull resumes each unfinished blob with an HTTP `Range` request and does not
//!   fetch finished ones again.
//!
//! `registries.yaml` has k3s' shape:
//!
//! ```yaml
//! mirrors:
//!   docker.io:
//!     endpoint: ["https://mirror.example.com:5000", "http://10.0.0.5:5000"]
//! configs:
//!   "registry.example.com:5000":
//!     auth: {username: me, password: secret}
//!     tls: {ca_file: /etc/berth/registry-ca.pem}
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response, Uri};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tokio_rustls::rustls;

use super::digest::Digest;
use super::error::ImageError;
use super::import::host_architecture;
use super::reference::Reference;
use super::spec::{
    Descriptor, Index, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_INDEX,
    MEDIA_OCI_MANIFEST, Manifest,
};

/// Blobs downloaded at once.
pub const CONCURRENT_BLOBS: usize = 3;
/// Manifests and indexes are small; anything bigger is refused.
const MAX_MANIFEST: usize = 8 << 20;
/// Connecting (TCP and TLS) gives up after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed for one request (registries send blobs to storage).
const MAX_REDIRECTS: usize = 5;
/// The system's CA bundle (Debian's ca-certificates).
const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How far one pull has come: a line per blob (the config and each layer), for the
/// progress bars of `berth image pull` and the TUI's pod list.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullProgress {
    /// The normalised reference being pulled.
    pub reference: String,
    pub blobs: Vec<BlobProgress>,
}

/// One blob of a pull.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobProgress {
    pub digest: String,
    pub size: u64,
    /// Bytes in hand, counting what an interrupted pull left.
    pub done: u64,
    /// `waiting`, `downloading`, `resuming`, `verified`, or `exists` (the store had it).
    pub state: String,
}

impl PullProgress {
    /// Bytes in hand and bytes in all, over every blob.
    pub fn totals(&self) -> (u64, u64) {
        self.blobs
            .iter()
            .fold((0, 0), |(d, t), b| (d + b.done, t + b.size))
    }

    /// Percent done (0 until the manifest says the sizes).
    pub fn percent(&self) -> u8 {
        let (done, total) = self.totals();
        if total == 0 {
            return 0;
        }
        (done.min(total) * 100 / total) as u8
    }
}

/// A pull's progress, shared between the download tasks and whoever shows it.
pub type Tracker = Arc<Mutex<PullProgress>>;

/// Sets blob `digest`'s progress in `tracker`.
fn track(tracker: &Tracker, digest: &str, done: u64, state: &str) {
    let Ok(mut p) = tracker.lock() else { return };
    if let Some(b) = p.blobs.iter_mut().find(|b| b.digest == digest) {
        b.done = done;
        if b.state != state {
            b.state = state.to_string();
        }
    }
}

/// `registries.yaml`: mirrors and per-host settings, in k3s' shape.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registries {
    #[serde(default)]
    pub mirrors: BTreeMap<String, MirrorConfig>,
    #[serde(default)]
    pub configs: BTreeMap<String, HostConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    #[serde(default)]
    pub endpoint: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// base64 of `username:password`, as in a Docker config.
    #[serde(default)]
    pub auth: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// A PEM file of CA certificates trusted for this host, besides the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl Registries {
    /// Reads `path`; a missing file is no configuration. Unknown keys are refused.
    pub fn load(path: &Path) -> Result<Registries, ImageError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Registries::default());
            }
            Err(e) => return Err(ImageError::io("read", path, e)),
        };
        if text.trim().is_empty() {
            return Ok(Registries::default());
        }
        let r: Registries =
            serde_yaml::from_str(&text).map_err(|e| ImageError::RegistriesConfig {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        for (host, m) in &r.mirrors {
            for e in &m.endpoint {
                endpoint_uri(e).map_err(|message| ImageError::RegistriesConfig {
                    path: path.to_path_buf(),
                    message: format!("mirrors.{host}.endpoint: {message}"),
                })?;
            }
        }
        Ok(r)
    }
}

/// Credentials for one pull, by registry host (from `imagePullSecrets`).
#[derive(Debug, Clone, Default)]
pub struct PullAuth {
    hosts: BTreeMap<String, (String, String)>,
}

impl PullAuth {
    /// Adds the `auths` of a `.dockerconfigjson` (or `.dockercfg`) document. Keys may be
    /// hosts or URLs (`https://index.docker.io/v1/` is Docker Hub).
    pub fn add_docker_config(&mut self, json: &[u8]) -> Result<(), String> {
        let v: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| format!("invalid JSON: {e}"))?;
        let auths = v
            .get("auths")
            .and_then(|a| a.as_object())
            .or_else(|| v.as_object())
            .ok_or("no \"auths\" object")?;
        for (key, entry) in auths {
            let Some((user, pass)) = docker_auth(entry) else {
                continue;
            };
            self.hosts.insert(host_of_key(key), (user, pass));
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    fn get(&self, host: &str) -> Option<(String, String)> {
        self.hosts.get(host).cloned()
    }
}

/// `user`/`password` of a Docker config entry (`auth` base64, or the two fields).
fn docker_auth(entry: &serde_json::Value) -> Option<(String, String)> {
    if let Some(a) = entry
        .get("auth")
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty())
    {
        let decoded = base64_decode(a)?;
        let text = String::from_utf8(decoded).ok()?;
        let (u, p) = text.split_once(':')?;
        return Some((u.to_string(), p.to_string()));
    }
    let u = entry.get("username")?.as_str()?;
    let p = entry.get("password")?.as_str()?;
    Some((u.to_string(), p.to_string()))
}

/// The registry host of a Docker config key (`https://index.docker.io/v1/` → `docker.io`).
fn host_of_key(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = k.split('/').next().unwrap_or(k);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        h => h.to_string(),
    }
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn base64_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An endpoint's URI, checked: `http(s)://host[:port]` without a path.
fn endpoint_uri(e: &str) -> Result<Uri, String> {
    let uri: Uri = e
        .trim_end_matches('/')
        .parse()
        .map_err(|err| format!("{e:?} is not a URL: {err}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("{e:?} must start with https:// or http://")),
    }
    if uri.host().is_none() {
        return Err(format!("{e:?} names no host"));
    }
    Ok(uri)
}

fn is_loopback(host: &str) -> bool {
    let h = host.split(':').next().unwrap_or(host);
    h == "localhost"
        || h.parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
        || host.trim_start_matches('[').starts_with("::1")
}

/// One place to pull from.
#[derive(Debug, Clone)]
struct Endpoint {
    /// `https://host:port` or `http://host:port`.
    base: String,
    /// The host (with port) whose settings and credentials apply.
    host: String,
    /// A loopback registry tried in TLS first, then in plain HTTP.
    plain_fallback: bool,
}

fn endpoints(reference: &Reference, regs: &Registries) -> Vec<Endpoint> {
    let domain = reference.domain();
    let mut out = Vec::new();
    for e in regs
        .mirrors
        .get(domain)
        .map(|m| m.endpoint.as_slice())
        .unwrap_or_default()
    {
        if let Ok(uri) = endpoint_uri(e) {
            let host = uri
                .authority()
                .map(|a| a.as_str().to_string())
                .unwrap_or_default();
            out.push(Endpoint {
                base: e.trim_end_matches('/').to_string(),
                host,
                plain_fallback: false,
            });
        }
    }
    let host = if domain == "docker.io" {
        "registry-1.docker.io".to_string()
    } else {
        domain.to_string()
    };
    out.push(Endpoint {
        base: format!("https://{host}"),
        host: domain.to_string(),
        plain_fallback: is_loopback(domain),
    });
    out
}

/// The TLS settings for `host`: the system's CAs and the host's `ca_file`.
fn tls_config(host: &str, regs: &Registries) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if let Ok(pem) = fs::read(SYSTEM_CAS) {
        for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
            let _ = roots.add(cert);
        }
    }
    if let Some(ca) = regs
        .configs
        .get(host)
        .and_then(|c| c.tls.as_ref())
        .and_then(|t| t.ca_file.as_ref())
    {
        let pem = fs::read(ca).map_err(|e| format!("cannot read ca_file {}: {e}", ca.display()))?;
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
            n += 1;
        }
        if n == 0 {
            return Err(format!("ca_file {} holds no certificate", ca.display()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Sends one GET and returns the response head (the body is read by the caller).
async fn send(
    uri: &Uri,
    headers: &[(&str, String)],
    tls: &Arc<rustls::ClientConfig>,
) -> Result<Response<Incoming>, String> {
    let host = uri.host().ok_or("no host")?.to_string();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addr = format!(
        "{}:{port}",
        host.trim_start_matches('[').trim_end_matches(']')
    );
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&addr))
        .await
        .map_err(|_| format!("connecting to {addr} timed out"))?
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut req =
        Request::get(path).header("host", uri.authority().map(|a| a.as_str()).unwrap_or(&host));
    req = req.header("user-agent", concat!("berth/", env!("CARGO_PKG_VERSION")));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let req = req.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
    if https {
        let name = rustls::pki_types::ServerName::try_from(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        )
        .map_err(|e| format!("bad host name {host}: {e}"))?;
        let connector = tokio_rustls::TlsConnector::from(tls.clone());
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
            .await
            .map_err(|_| format!("the TLS handshake with {addr} timed out"))?
            .map_err(|e| format!("TLS with {addr} failed: {e}"))?;
        request(hyper_util::rt::TokioIo::new(stream), req).await
    } else {
        request(hyper_util::rt::TokioIo::new(tcp), req).await
    }
}

async fn request<T>(io: T, req: Request<Empty<Bytes>>) -> Result<Response<Incoming>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(req).await.map_err(|e| e.to_string())
}

/// Reads a whole (small) body.
async fn read_body(resp: Response<Incoming>, max: usize) -> Result<Vec<u8>, String> {
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
            if out.len() > max {
                return Err(format!("the response is larger than {max} bytes"));
            }
        }
    }
    Ok(out)
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq)]
enum Challenge {
    Basic,
    Bearer(BTreeMap<String, String>),
}

fn parse_challenge(h: &str) -> Option<Challenge> {
    let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = BTreeMap::new();
    let mut s = rest;
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.insert(key, value);
        s = next.trim_start_matches([',', ' ']);
    }
    Some(Challenge::Bearer(params))
}

/// Talks to one endpoint for one repository: keeps the auth it negotiated.
struct Session<'a> {
    endpoint: Endpoint,
    repository: String,
    tls: Arc<rustls::ClientConfig>,
    credentials: Option<(String, String)>,
    authorization: Option<String>,
    registries: &'a Registries,
}

impl Session<'_> {
    /// GET `path` on the endpoint, negotiating auth on a 401 and following redirects.
    async fn get(
        &mut self,
        path: &str,
        extra: &[(&str, String)],
    ) -> Result<Response<Incoming>, String> {
        let mut authed = false;
        loop {
            let mut uri: Uri = format!("{}{path}", self.endpoint.base)
                .parse()
                .map_err(|e| format!("bad URL: {e}"))?;
            let mut headers: Vec<(&str, String)> = extra.to_vec();
            if let Some(a) = &self.authorization {
                headers.push(("authorization", a.clone()));
            }
            let mut resp = send(&uri, &headers, &self.tls).await?;
            let mut hops = 0;
            while resp.status().is_redirection() && hops < MAX_REDIRECTS {
                let Some(location) = resp
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .map(str::to_string)
                else {
                    break;
                };
                let next: Uri = if location.starts_with('/') {
                    format!("{}{location}", self.endpoint.base)
                        .parse()
                        .map_err(|e| format!("bad redirect: {e}"))?
                } else {
                    location.parse().map_err(|e| format!("bad redirect: {e}"))?
                };
                // Credentials go only to the registry itself, never to where it redirects.
                let same = next.authority() == uri.authority();
                let headers: Vec<(&str, String)> = headers
                    .iter()
                    .filter(|(k, _)| same || *k != "authorization")
                    .cloned()
                    .collect();
                let tls = match next.host() {
                    Some(h) if !same => tls_config(h, self.registries)?,
                    _ => self.tls.clone(),
                };
                uri = next;
                resp = send(&uri, &headers, &tls).await?;
                hops += 1;
            }
            if resp.status() != hyper::StatusCode::UNAUTHORIZED || authed {
                return Ok(resp);
            }
            authed = true;
            let challenge = resp
                .headers()
                .get("www-authenticate")
                .and_then(|h| h.to_str().ok())
                .and_then(parse_challenge);
            match challenge {
                Some(Challenge::Basic) => {
                    let Some((u, p)) = &self.credentials else {
                        return Ok(resp);
                    };
                    self.authorization = Some(format!(
                        "Basic {}",
                        base64_encode(format!("{u}:{p}").as_bytes())
                    ));
                }
                Some(Challenge::Bearer(params)) => {
                    self.authorization = Some(format!("Bearer {}", self.token(&params).await?));
                }
                None => return Ok(resp),
            }
        }
    }

    /// A Bearer token from the challenge's realm (with the credentials, when there are).
    async fn token(&self, params: &BTreeMap<String, String>) -> Result<String, String> {
        let realm = params
            .get("realm")
            .ok_or("the registry's challenge names no realm")?;
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(service) = params.get("service") {
            query.append_pair("service", service);
        }
        let scope = params
            .get("scope")
            .cloned()
            .unwrap_or_else(|| format!("repository:{}:pull", self.repository));
        query.append_pair("scope", &scope);
        let sep = if realm.contains('?') { '&' } else { '?' };
        let uri: Uri = format!("{realm}{sep}{}", query.finish())
            .parse()
            .map_err(|e| format!("bad token realm {realm}: {e}"))?;
        let mut headers = Vec::new();
        if let Some((u, p)) = &self.credentials {
            headers.push((
                "authorization",
                format!("Basic {}", base64_encode(format!("{u}:{p}").as_bytes())),
            ));
        }
        let tls = match uri.host() {
            Some(h) => tls_config(h, self.registries)?,
            None => self.tls.clone(),
        };
        let resp = send(&uri, &headers, &tls).await?;
        let status = resp.status();
        let body = read_body(resp, 1 << 20).await?;
        if !status.is_success() {
            return Err(format!(
                "the token service {realm} refused ({status}): check the credentials"
            ));
        }
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("bad token response: {e}"))?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| "the token response has no token".to_string())
    }

    /// A manifest (or index) by tag or digest: its bytes, media type and digest (checked
    /// against `expected` when pulling by digest).
    async fn manifest(
        &mut self,
        reference: &str,
        expected: Option<&Digest>,
    ) -> Result<(Vec<u8>, String, Digest), String> {
        let accept = [
            MEDIA_OCI_INDEX,
            MEDIA_OCI_MANIFEST,
            MEDIA_DOCKER_LIST,
            MEDIA_DOCKER_MANIFEST,
        ]
        .join(", ");
        let path = format!("/v2/{}/manifests/{reference}", self.repository);
        let resp = self.get(&path, &[("accept", accept)]).await?;
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let body = read_body(resp, MAX_MANIFEST).await?;
        if !status.is_success() {
            return Err(registry_error(
                status,
                &body,
                &format!("manifest {reference}"),
            ));
        }
        let digest = Digest::of(&body);
        if let Some(want) = expected
            && &digest != want
        {
            return Err(format!(
                "the manifest's content has digest {digest}, not the {want} asked for: refusing it"
            ));
        }
        let media_type = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .filter(|m| !m.is_empty())
            .unwrap_or(content_type);
        Ok((body, media_type, digest))
    }

    /// Downloads blob `desc` to `partial` (resuming what is there) and checks it.
    async fn blob(
        &mut self,
        desc: &Descriptor,
        partial: &Path,
        tracker: &Tracker,
    ) -> Result<(), String> {
        let digest = Digest::parse(&desc.digest).map_err(|e| e.to_string())?;
        let mut hash = Sha256::new();
        let mut have = 0u64;
        if let Ok(mut f) = fs::File::open(partial) {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = f.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                hash.update(&buf[..n]);
                have += n as u64;
            }
        }
        if have > desc.size {
            let _ = fs::remove_file(partial);
            hash = Sha256::new();
            have = 0;
        }
        if have < desc.size {
            let path = format!("/v2/{}/blobs/{}", self.repository, desc.digest);
            let mut extra = Vec::new();
            if have > 0 {
                extra.push(("range", format!("bytes={have}-")));
            }
            let resp = self.get(&path, &extra).await?;
            let status = resp.status();
            if !status.is_success() {
                let body = read_body(resp, 1 << 16).await.unwrap_or_default();
                return Err(registry_error(
                    status,
                    &body,
                    &format!("blob {}", desc.digest),
                ));
            }
            if status != hyper::StatusCode::PARTIAL_CONTENT && have > 0 {
                // The registry sent it all again: start over.
                hash = Sha256::new();
                have = 0;
                let _ = fs::remove_file(partial);
            } else if have > 0 {
                tracing::info!(blob = %desc.digest, offset = have, "resuming a blob download");
            }
            let state = if have > 0 { "resuming" } else { "downloading" };
            track(tracker, &desc.digest, have, state);
            let mut f = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(partial)
                .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
            let mut body = resp.into_body();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| format!("the download broke off: {e}"))?;
                if let Ok(data) = frame.into_data() {
                    have += data.len() as u64;
                    if have > desc.size {
                        let _ = fs::remove_file(partial);
                        return Err(format!(
                            "blob {} is larger than the {} bytes its manifest says: refusing it",
                            desc.digest, desc.size
                        ));
                    }
                    hash.update(&data);
                    f.write_all(&data)
                        .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
                    track(tracker, &desc.digest, have, state);
                }
            }
            f.sync_all()
                .map_err(|e| format!("cannot write {}: {e}", partial.display()))?;
        }
        let got = format!("sha256:{}", hex::encode(hash.finalize()));
        if have != desc.size || got != digest.as_str() {
            let _ = fs::remove_file(partial);
            return Err(format!(
                "blob {} does not match its digest (got {got}, {have} bytes): refusing it",
                desc.digest
            ));
        }
        track(tracker, &desc.digest, have, "verified");
        Ok(())
    }
}

/// A registry's error response as a sentence.
fn registry_error(status: hyper::StatusCode, body: &[u8], what: &str) -> String {
    let detail = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("errors")?.as_array()?.first().map(|e| {
                format!(
                    "{}: {}",
                    e.get("code").and_then(|c| c.as_str()).unwrap_or_default(),
                    e.get("message")
                        .and_then(|c| c.as_str())
                        .unwrap_or_default()
                )
            })
        })
        .unwrap_or_else(|| status.to_string());
    match status.as_u16() {
        401 => format!(
            "{what}: unauthorized ({detail}): check the credentials (imagePullSecrets or registries.yaml)"
        ),
        403 => format!("{what}: access denied ({detail})"),
        404 => format!("{what}: not found ({detail})"),
        _ => format!("{what}: the registry answered {status} ({detail})"),
    }
}

/// What a pull fetched, staged: files by their name in an OCI image layout.
pub(crate) struct Fetched {
    pub files: Vec<(String, PathBuf)>,
}

/// The endpoints a pull of `reference` may try, in order, each base URL spelled out (a
/// loopback registry's plain-HTTP fallback after its HTTPS one).
fn reachable(
    reference: &Reference,
    regs: &Registries,
    allowed: &[String],
) -> Result<Vec<Endpoint>, ImageError> {
    let host_of = |h: &str| -> String {
        let h = h.trim_start_matches('[');
        match h.split_once(']') {
            Some((v6, _)) => v6.to_string(),
            None => h.split(':').next().unwrap_or(h).to_string(),
        }
    };
    let reachable: Vec<Endpoint> = endpoints(reference, regs)
        .into_iter()
        .filter(|ep| {
            let host = Uri::try_from(ep.base.as_str())
                .ok()
                .and_then(|u| u.host().map(str::to_string))
                .unwrap_or_default();
            allowed.is_empty() || allowed.iter().any(|a| host_of(a) == host_of(&host))
        })
        .collect();
    if reachable.is_empty() {
        return Err(ImageError::PullFailed {
            image: reference.to_string(),
            reason: format!(
                "pulls may reach only {} on this node (pullRegistries in the configuration)",
                allowed.join(", ")
            ),
        });
    }
    let mut out = Vec::new();
    for ep in reachable {
        if ep.plain_fallback {
            let plain = ep.base.replacen("https://", "http://", 1);
            out.push(ep.clone());
            out.push(Endpoint { base: plain, ..ep });
        } else {
            out.push(ep);
        }
    }
    Ok(out)
}

/// Fetches `reference` into `staging` (an OCI layout's files), resuming blobs kept in
/// `partial_dir` and skipping those the store holds in `blobs_dir`; tries each endpoint in
/// turn.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn fetch(
    reference: &Reference,
    regs: &Registries,
    auth: &PullAuth,
    staging: &Path,
    partial_dir: &Path,
    blobs_dir: &Path,
    allowed: &[String],
    tracker: &Tracker,
) -> Result<Fetched, ImageError> {
    let mut errors = Vec::new();
    for ep in reachable(reference, regs, allowed)? {
        let base = ep.base.clone();
        let result = match session(reference, regs, auth, &ep) {
            Ok(mut s) => {
                fetch_from(reference, &mut s, staging, partial_dir, blobs_dir, tracker).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(f) => return Ok(f),
            Err(e) => {
                tracing::info!(image = %reference, endpoint = %base, error = %e, "pull from an endpoint failed");
                errors.push(format!("{base}: {e}"));
            }
        }
    }
    Err(ImageError::PullFailed {
        image: reference.to_string(),
        reason: errors.join("; "),
    })
}

/// The digest `reference`'s tag names now in its registry (the manifest or index it
/// resolves to, as `docker buildx imagetools inspect` shows it), without pulling anything.
pub(crate) async fn resolve_digest(
    reference: &Reference,
    regs: &Registries,
    auth: &PullAuth,
    allowed: &[String],
) -> Result<Digest, ImageError> {
    let wanted = reference.tag().unwrap_or(super::DEFAULT_TAG).to_string();
    let mut errors = Vec::new();
    for ep in reachable(reference, regs, allowed)? {
        let base = ep.base.clone();
        let result = match session(reference, regs, auth, &ep) {
            Ok(mut s) => s.manifest(&wanted, None).await.map(|(_, _, d)| d),
            Err(e) => Err(e),
        };
        match result {
            Ok(d) => return Ok(d),
            Err(e) => errors.push(format!("{base}: {e}")),
        }
    }
    Err(ImageError::PullFailed {
        image: reference.to_string(),
        reason: errors.join("; "),
    })
}

/// A session with endpoint `ep` for `reference`'s repository, with the pod's credentials
/// for its registry, else `registries.yaml`'s.
fn session<'a>(
    reference: &Reference,
    regs: &'a Registries,
    auth: &PullAuth,
    ep: &Endpoint,
) -> Result<Session<'a>, String> {
    let credentials = auth.get(reference.domain()).or_else(|| {
        let c = regs
            .configs
            .get(&ep.host)
            .or_else(|| regs.configs.get(reference.domain()))?
            .auth
            .as_ref()?;
        if let Some(a) = &c.auth {
            let text = String::from_utf8(base64_decode(a)?).ok()?;
            let (u, p) = text.split_once(':')?;
            return Some((u.to_string(), p.to_string()));
        }
        Some((c.username.clone()?, c.password.clone().unwrap_or_default()))
    });
    Ok(Session {
        endpoint: ep.clone(),
        repository: reference.path().to_string(),
        tls: tls_config(&ep.host, regs)?,
        credentials,
        authorization: None,
        registries: regs,
    })
}

async fn fetch_from(
    reference: &Reference,
    s: &mut Session<'_>,
    staging: &Path,
    partial_dir: &Path,
    blobs_dir: &Path,
    tracker: &Tracker,
) -> Result<Fetched, String> {
    let wanted = reference
        .digest()
        .map(|d| d.as_str().to_string())
        .or_else(|| reference.tag().map(str::to_string))
        .unwrap_or_else(|| "latest".to_string());
    let (top, top_type, top_digest) = s.manifest(&wanted, reference.digest()).await?;
    let mut files = Vec::new();
    let mut save = |digest: &Digest, data: &[u8]| -> Result<(), String> {
        let p = staging.join(format!("m-{}", digest.hex()));
        fs::write(&p, data).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        files.push((format!("blobs/sha256/{}", digest.hex()), p));
        Ok(())
    };
    save(&top_digest, &top)?;
    let manifest_bytes = if top_type == MEDIA_OCI_INDEX || top_type == MEDIA_DOCKER_LIST {
        let index: Index = serde_json::from_slice(&top)
            .map_err(|e| format!("the image index does not parse: {e}"))?;
        let arch = host_architecture();
        let entry = index
            .manifests
            .iter()
            .find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            })
            .ok_or_else(|| {
                let available: Vec<String> = index
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.as_ref())
                    .map(|p| format!("{}/{}", p.os, p.architecture))
                    .collect();
                format!(
                    "the image has no linux/{arch} variant (it has: {})",
                    available.join(", ")
                )
            })?;
        let want = Digest::parse(&entry.digest).map_err(|e| e.to_string())?;
        let (bytes, _, digest) = s.manifest(&entry.digest, Some(&want)).await?;
        save(&digest, &bytes)?;
        bytes
    } else {
        top.clone()
    };
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| format!("the image manifest does not parse: {e}"))?;
    fs::create_dir_all(partial_dir)
        .map_err(|e| format!("cannot create {}: {e}", partial_dir.display()))?;
    let mut blobs = vec![manifest.config.clone()];
    blobs.extend(manifest.layers.iter().cloned());
    if let Ok(mut p) = tracker.lock() {
        p.blobs = blobs
            .iter()
            .map(|d| {
                let stored = Digest::parse(&d.digest)
                    .is_ok_and(|digest| blobs_dir.join(digest.hex()).is_file());
                BlobProgress {
                    digest: d.digest.clone(),
                    size: d.size,
                    done: if stored { d.size } else { 0 },
                    state: if stored { "exists" } else { "waiting" }.to_string(),
                }
            })
            .collect();
    }
    // Up to CONCURRENT_BLOBS at a time, each on its own session (auth is per session).
    let mut done = Vec::new();
    for group in blobs.chunks(CONCURRENT_BLOBS) {
        let mut tasks = Vec::new();
        for desc in group {
            let digest = Digest::parse(&desc.digest).map_err(|e| e.to_string())?;
            let stored = blobs_dir.join(digest.hex());
            if stored.is_file() {
                // The store has it (verified when it came in): nothing to download.
                done.push((digest, stored));
                continue;
            }
            let partial = partial_dir.join(digest.hex());
            let mut session = Session {
                endpoint: s.endpoint.clone(),
                repository: s.repository.clone(),
                tls: s.tls.clone(),
                credentials: s.credentials.clone(),
                authorization: s.authorization.clone(),
                registries: s.registries,
            };
            let desc = desc.clone();
            tasks.push(async move {
                session.blob(&desc, &partial, tracker).await?;
                Ok::<_, String>((digest, partial))
            });
        }
        for r in futures_util::future::join_all(tasks).await {
            done.push(r?);
        }
    }
    for (digest, partial) in done {
        files.push((format!("blobs/sha256/{}", digest.hex()), partial));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_INDEX,
        "manifests": [{
            "mediaType": top_type,
            "digest": top_digest.as_str(),
            "size": top.len(),
            "annotations": {super::spec::ANNOTATION_CONTAINERD_NAME: reference.to_string()},
        }],
    });
    let p = staging.join("index.json");
    fs::write(&p, serde_json::to_vec(&index).unwrap_or_default())
        .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    files.push(("index.json".to_string(), p));
    Ok(Fetched { files })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        assert_eq!(parse_challenge("Basic realm=\"x\""), Some(Challenge::Basic));
        let Some(Challenge::Bearer(p)) = parse_challenge(
            "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/busybox:pull\"",
        ) else {
            panic!("bearer");
        };
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:library/busybox:pull");
        assert_eq!(parse_challenge("Negotiate x"), None);
    }

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "user:pass", "üñí:cödé"] {
            assert_eq!(
                base64_decode(&base64_encode(s.as_bytes())).as_deref(),
                Some(s.as_bytes())
            );
        }
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
    }

    #[test]
    fn docker_config_auths() {
        let mut a = PullAuth::default();
        a.add_docker_config(
            br#"{"auths": {"https://index.docker.io/v1/": {"auth": "dXNlcjpwYXNz"},
                "127.0.0.1:5000": {"username": "me", "password": "pw"}}}"#,
        )
        .expect("parses");
        assert_eq!(a.get("docker.io"), Some(("user".into(), "pass".into())));
        assert_eq!(a.get("127.0.0.1:5000"), Some(("me".into(), "pw".into())));
        assert!(a.add_docker_config(b"{not json").is_err());
    }

    #[test]
    fn endpoints_mirrors_first_and_loopback_fallback() {
        let regs: Registries = serde_yaml::from_str(
            "mirrors:\n  docker.io:\n    endpoint: [\"http://10.0.0.5:5000\"]\n",
        )
        .expect("yaml");
        let r = Reference::parse("busybox").expect("ref");
        let e = endpoints(&r, &regs);
        assert_eq!(e[0].base, "http://10.0.0.5:5000");
        assert_eq!(e[1].base, "https://registry-1.docker.io");
        assert!(!e[1].plain_fallback);
        let local = Reference::parse("127.0.0.1:5000/app:1").expect("ref");
        assert!(endpoints(&local, &regs)[0].plain_fallback);
        assert!(serde_yaml::from_str::<Registries>("mirror: {}\n").is_err());
    }
}
