//! Certificates for the HTTPS listener: from the `kubernetes.io/tls` Secrets named in the
//! served Ingresses' `spec.tls`, chosen by SNI (exact name, then a `*.` wildcard of one
//! label); the first certificate loaded answers clients whose name matches none.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Secret;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

use super::routes::{ObjectRef, TlsEntry};

/// Why a Secret's certificate cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("secret {0}/{1} not found; create it (kubectl create secret tls)")]
    NotFound(String, String),
    #[error("secret {0}/{1} has no {2}; a kubernetes.io/tls secret needs tls.crt and tls.key")]
    Missing(String, String, &'static str),
    #[error("secret {0}/{1}: {2} is not valid PEM: {3}")]
    Pem(String, String, &'static str, String),
    #[error("secret {0}/{1}: the private key is not usable: {2}")]
    Key(String, String, #[source] rustls::Error),
}

/// The certificates by server name (one immutable snapshot).
#[derive(Debug, Default)]
pub struct Certs {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by the suffix after `*` (".example.com").
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl Certs {
    /// Loads the certificates of `entries` (oldest Ingress first) from `secrets`; a Secret
    /// that cannot be used is skipped and returned with its Ingress and the reason.
    pub fn build(entries: &[TlsEntry], secrets: &[Secret]) -> (Certs, Vec<(ObjectRef, String)>) {
        let mut certs = Certs::default();
        let mut problems = Vec::new();
        let mut loaded: HashMap<&ObjectRef, Arc<CertifiedKey>> = HashMap::new();
        for entry in entries {
            let r = &entry.secret;
            let key = match loaded.get(r) {
                Some(k) => k.clone(),
                None => match load(r, secrets) {
                    Ok(k) => {
                        let k = Arc::new(k);
                        loaded.insert(r, k.clone());
                        k
                    }
                    Err(e) => {
                        tracing::debug!(namespace = %r.0, secret = %r.1, error = %e, "ingress tls certificate skipped");
                        problems.push((entry.ingress.clone(), e.to_string()));
                        continue;
                    }
                },
            };
            if certs.default.is_none() {
                certs.default = Some(key.clone());
            }
            for h in &entry.hosts {
                let map = match h.strip_prefix('*') {
                    Some(suffix) => certs.wildcard.entry(suffix.to_string()),
                    None => certs.exact.entry(h.clone()),
                };
                map.or_insert_with(|| key.clone());
            }
        }
        (certs, problems)
    }

    /// The certificate for a server name (or the default).
    pub fn pick(&self, name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let name = name.map(|n| n.trim_end_matches('.').to_ascii_lowercase());
        if let Some(n) = name.as_deref() {
            if let Some(k) = self.exact.get(n) {
                return Some(k.clone());
            }
            if let Some((_, suffix)) = n.split_once('.')
                && let Some(k) = self.wildcard.get(&format!(".{suffix}"))
            {
                return Some(k.clone());
            }
        }
        self.default.clone()
    }
}

fn load(r: &ObjectRef, secrets: &[Secret]) -> Result<CertifiedKey, TlsError> {
    let (ns, name) = (r.0.clone(), r.1.clone());
    let secret = secrets
        .iter()
        .find(|s| {
            s.metadata.namespace.as_ref() == Some(&ns) && s.metadata.name.as_ref() == Some(&name)
        })
        .ok_or_else(|| TlsError::NotFound(ns.clone(), name.clone()))?;
    let field = |f: &'static str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(f))
            .map(|b| b.0.clone())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get(f))
                    .map(|s| s.clone().into_bytes())
            })
            .ok_or_else(|| TlsError::Missing(ns.clone(), name.clone(), f))
    };
    let crt = field("tls.crt")?;
    let key = field("tls.key")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&crt)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem(ns.clone(), name.clone(), "tls.crt", e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::Pem(
            ns,
            name,
            "tls.crt",
            "no certificate in it".to_string(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key)
        .map_err(|e| TlsError::Pem(ns.clone(), name.clone(), "tls.key", e.to_string()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| TlsError::Key(ns.clone(), name.clone(), e))?;
    Ok(CertifiedKey::new(chain, signer))
}

/// The rustls resolver over the current certificates (swapped whole on each rebuild).
#[derive(Debug, Default)]
pub struct Resolver {
    pub current: RwLock<Arc<Certs>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let certs = match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        certs.pick(hello.server_name())
    }
}

/// The HTTPS listener's rustls configuration (ring, HTTP/1.1 by ALPN).
pub fn server_config(resolver: Arc<Resolver>) -> Result<rustls::ServerConfig, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
