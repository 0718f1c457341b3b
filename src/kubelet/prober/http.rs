//! httpGet probes: `GET scheme://host:port/path` with the probe's headers, Kubernetes'
//! `User-Agent: kube-probe/<major.minor>` and `Accept: */*`; 2xx and 3xx succeed. HTTPS
//! certificates are not verified (neither does the kubelet).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::HTTPGetAction;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types;

use super::{CheckOutcome, netns};

/// The Kubernetes version probes announce.
const USER_AGENT: &str = "kube-probe/1.34";

/// How much of a body is kept for the event message.
const MAX_BODY: usize = 10 * 1024;

pub(super) async fn check(
    action: &HTTPGetAction,
    host: IpAddr,
    port: u16,
    netns_path: Option<PathBuf>,
    timeout: Duration,
) -> CheckOutcome {
    let https = action
        .scheme
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("HTTPS"));
    let scheme = if https { "https" } else { "http" };
    let path = match action.path.as_deref() {
        Some(p) if p.starts_with('/') => p.to_string(),
        Some(p) => format!("/{p}"),
        None => "/".to_string(),
    };
    let addr = SocketAddr::new(host, port);
    let url = format!("{scheme}://{addr}{path}");
    let fut = get(action, addr, &path, https, netns_path, timeout);
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => CheckOutcome::failure(format!(
            "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
        Ok(Err(e)) => CheckOutcome::failure(format!("Get \"{url}\": {e}")),
        Ok(Ok((status, body))) => {
            if (200..400).contains(&status) {
                CheckOutcome::success(body)
            } else {
                CheckOutcome::failure(format!("HTTP probe failed with statuscode: {status}"))
            }
        }
    }
}

async fn get(
    action: &HTTPGetAction,
    addr: SocketAddr,
    path: &str,
    https: bool,
    netns_path: Option<PathBuf>,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let tcp = netns::connect(netns_path, addr, timeout)
        .await
        .map_err(|e| format!("dial tcp {addr}: {}", netns::describe(&e)))?;
    let mut builder = Request::builder()
        .method("GET")
        .uri(path)
        .header("User-Agent", USER_AGENT)
        .header("Accept", "*/*")
        .header("Connection", "close");
    let mut host_header = addr.to_string();
    for h in action.http_headers.iter().flatten() {
        if h.name.eq_ignore_ascii_case("host") {
            host_header = h.value.clone();
        } else {
            builder = builder.header(h.name.as_str(), h.value.as_str());
        }
    }
    let req = builder
        .header("Host", host_header)
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("invalid request: {e}"))?;
    if https {
        let tls = tls_connector()
            .connect(pki_types::ServerName::IpAddress(addr.ip().into()), tcp)
            .await
            .map_err(|e| format!("tls: {e}"))?;
        send(TokioIo::new(tls), req).await
    } else {
        send(TokioIo::new(tcp), req).await
    }
}

async fn send<T>(io: T, req: Request<Empty<Bytes>>) -> Result<(u16, String), String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        // Header names as Go writes them: some small servers match them case-sensitively.
        .title_case_headers(true)
        .handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            let room = MAX_BODY.saturating_sub(kept.len());
            kept.extend_from_slice(&data[..data.len().min(room)]);
            if kept.len() >= MAX_BODY {
                break;
            }
        }
    }
    Ok((status, String::from_utf8_lossy(&kept).into_owned()))
}

/// A TLS client that accepts any certificate (probes check liveness, not identity).
fn tls_connector() -> tokio_rustls::TlsConnector {
    use std::sync::OnceLock;
    static CONNECTOR: OnceLock<tokio_rustls::TlsConnector> = OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth();
            tokio_rustls::TlsConnector::from(Arc::new(config))
        })
        .clone()
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &pki_types::CertificateDer<'_>,
        _intermediates: &[pki_types::CertificateDer<'_>],
        _server_name: &pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
