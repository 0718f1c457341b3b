//! The built-in Ingress controller: IngressClass `berth` (the default class), an HTTP and an
//! HTTPS listener on the host, and a reverse proxy to the ready endpoints of the Services
//! the served Ingresses name.
//!
//! It reads the store directly, as controllers do. The routing table and the certificates
//! are rebuilt whole from the store on every change to Ingresses, IngressClasses, Services,
//! EndpointSlices, Secrets or Nodes and swapped atomically: a request keeps the table it
//! started with, so changes never drop one in flight. Each served Ingress gets
//! `status.loadBalancer.ingress`: the node's addresses with the listeners' ports.

mod proxy;
pub mod routes;
mod tls;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::{ApiError, meta, registry};
use crate::store::{Store, StoreError, Subresource};

/// The listeners (a port of 0 disables one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressConfig {
    pub address: IpAddr,
    pub http_port: u16,
    pub https_port: u16,
}

/// What stops the controller from reading the store.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("{kind} is not registered")]
    Unregistered { kind: &'static str },
    #[error("cannot read {kind}s for the ingress: {source}")]
    List {
        kind: &'static str,
        #[source]
        source: StoreError,
    },
}

/// Creates IngressClass `berth` (the default class) when it is missing.
pub fn ensure_class(store: &Store) -> Result<(), StoreError> {
    let Some(rt) = registry::by_kind("networking.k8s.io/v1", "IngressClass") else {
        return Ok(());
    };
    let class = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {
            "name": routes::CLASS,
            "annotations": {routes::DEFAULT_CLASS_ANNOTATION: "true"},
        },
        "spec": {"controller": routes::CONTROLLER},
    });
    match store.create(rt, None, class, false) {
        Ok(_) => {
            tracing::info!(class = routes::CLASS, "created ingress class");
            Ok(())
        }
        Err(StoreError::Api(ApiError::AlreadyExists(_))) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Starts the listeners and the table rebuilder; they stop when `shutdown` flips. A
/// listener that cannot bind is logged and left out (the rest of the daemon runs on).
pub async fn start(
    store: Arc<Store>,
    node: String,
    config: IngressConfig,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let shared = Arc::new(proxy::Shared {
        table: RwLock::new(Arc::new(routes::Table::default())),
        https_port: config.https_port,
    });
    let resolver = Arc::new(tls::Resolver::default());
    let mut tasks = Vec::new();
    let mut ports = Vec::new();
    for (port, https) in [(config.http_port, false), (config.https_port, true)] {
        if port == 0 {
            continue;
        }
        let addr = SocketAddr::new(config.address, port);
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(%addr, error = %e, "cannot listen for ingress traffic; free the port or set ingressHttpPort/ingressHttpsPort (0 disables)");
                continue;
            }
        };
        let acceptor = if https {
            match tls::server_config(resolver.clone()) {
                Ok(c) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(c))),
                Err(e) => {
                    tracing::error!(error = %e, "cannot set up tls for ingress");
                    continue;
                }
            }
        } else {
            None
        };
        tracing::info!(%addr, https, "ingress listening");
        ports.push(port);
        tasks.push(tokio::spawn(proxy::serve(
            listener,
            shared.clone(),
            acceptor,
            shutdown.clone(),
        )));
    }
    let events = crate::events::Recorder::new(store.clone(), "berth-ingress-controller", &node);
    tasks.push(tokio::spawn(rebuild_loop(
        store,
        Rebuilder {
            shared,
            resolver,
            node,
            address: config.address,
            ports,
            events,
            reported: Mutex::default(),
        },
        shutdown,
    )));
    tasks
}

/// What a rebuild needs.
struct Rebuilder {
    shared: Arc<proxy::Shared>,
    resolver: Arc<tls::Resolver>,
    node: String,
    address: IpAddr,
    /// The ports actually listened on (for the status).
    ports: Vec<u16>,
    events: crate::events::Recorder,
    /// The problems the last rebuild found (already reported).
    reported: Mutex<BTreeSet<Problem>>,
}

/// An Ingress, the reason and the message of a Warning event about it.
type Problem = (routes::ObjectRef, &'static str, String);

fn relevant(c: &crate::store::Change) -> bool {
    // Our own status writes change nothing the table is built from.
    if c.resource.kind == "Ingress"
        && let Some(prev) = &c.previous
        && prev.get("spec") == c.object.get("spec")
        && prev["metadata"].get("annotations") == c.object["metadata"].get("annotations")
    {
        return false;
    }
    matches!(
        (c.resource.group, c.resource.kind),
        ("networking.k8s.io", "Ingress" | "IngressClass")
            | ("", "Service" | "Secret" | "Node")
            | ("discovery.k8s.io", "EndpointSlice")
    )
}

async fn rebuild_loop(
    store: Arc<Store>,
    rebuilder: Rebuilder,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let rebuilder = Arc::new(rebuilder);
    let mut changes = store.subscribe();
    loop {
        let (s, r) = (store.clone(), rebuilder.clone());
        let pending = tokio::task::spawn_blocking(move || match r.rebuild(&s) {
            Ok(pending) => pending,
            Err(e) => {
                tracing::warn!(error = %e, "ingress table not rebuilt");
                true
            }
        })
        .await
        .unwrap_or(true);
        let wait = if pending {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(300)
        };
        // A burst of changes (a Service and its EndpointSlice) lands in one rebuild.
        let settle = Duration::from_millis(20);
        if !crate::store::wait_for_change(&mut changes, &mut shutdown, relevant, wait, settle).await
        {
            return;
        }
    }
}

fn list<T: serde::de::DeserializeOwned>(
    store: &Store,
    api_version: &str,
    kind: &'static str,
) -> Result<Vec<T>, IngressError> {
    let rt = registry::by_kind(api_version, kind).ok_or(IngressError::Unregistered { kind })?;
    let (items, _) = store
        .list(rt, None)
        .map_err(|source| IngressError::List { kind, source })?;
    Ok(items
        .into_iter()
        .filter_map(|v| match serde_json::from_value(v) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(kind, error = %e, "object skipped by the ingress");
                None
            }
        })
        .collect())
}

impl Rebuilder {
    /// Rebuilds and swaps the table and certificates, then writes the served Ingresses'
    /// status. `Ok(true)`: a status write failed, try again soon.
    fn rebuild(&self, store: &Store) -> Result<bool, IngressError> {
        let ingresses: Vec<k8s_openapi::api::networking::v1::Ingress> =
            list(store, "networking.k8s.io/v1", "Ingress")?;
        // Without Ingresses nothing else matters: endpoint churn costs no reads.
        let some = !ingresses.is_empty();
        let inputs = routes::Inputs {
            ingresses,
            classes: list(store, "networking.k8s.io/v1", "IngressClass")?,
            services: if some {
                list(store, "v1", "Service")?
            } else {
                Vec::new()
            },
            slices: if some {
                list(store, "discovery.k8s.io/v1", "EndpointSlice")?
            } else {
                Vec::new()
            },
        };
        let secrets: Vec<k8s_openapi::api::core::v1::Secret> = if some {
            list(store, "v1", "Secret")?
        } else {
            Vec::new()
        };
        let table = routes::Table::build(&inputs);
        let (certs, tls_problems) =
            tls::Certs::build(&routes::tls_secrets(&inputs, &table.served), &secrets);
        let served = table.served.clone();
        let problems: BTreeSet<_> = table
            .problems
            .iter()
            .map(|(r, m)| (r.clone(), "BackendUnavailable", m.clone()))
            .chain(
                tls_problems
                    .into_iter()
                    .map(|(r, m)| (r, "InvalidTLSSecret", m)),
            )
            .collect();
        self.shared.swap(table);
        match self.resolver.current.write() {
            Ok(mut c) => *c = Arc::new(certs),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(certs),
        }
        tracing::debug!(ingresses = served.len(), "ingress table rebuilt");
        self.report(store, problems);
        let status = self.load_balancer_status(store);
        let mut pending = false;
        for (ns, name) in &served {
            if let Err(e) = write_status(store, ns, name, &status) {
                tracing::warn!(namespace = %ns, ingress = %name, error = %e, "ingress status not written");
                pending = true;
            }
        }
        Ok(pending)
    }

    /// A Warning event on the Ingress for each problem not reported by the last rebuild
    /// (so endpoint churn does not repeat them).
    fn report(&self, store: &Store, problems: BTreeSet<Problem>) {
        let mut reported = match self.reported.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some(rt) = registry::by_kind("networking.k8s.io/v1", "Ingress") else {
            return;
        };
        for ((ns, name), reason, message) in problems.difference(&reported) {
            tracing::warn!(namespace = %ns, ingress = %name, reason, message, "ingress problem");
            if let Ok(ing) = store.get(rt, Some(ns), name) {
                self.events
                    .record(&ing, crate::events::EventType::Warning, reason, message);
            }
        }
        *reported = problems;
    }

    /// `status.loadBalancer`: the node's InternalIP (and ExternalIP) addresses, or the
    /// listen address when it is a specific one, or else the node's host name.
    fn load_balancer_status(&self, store: &Store) -> Value {
        let ports: Vec<Value> = self
            .ports
            .iter()
            .map(|p| json!({"port": p, "protocol": "TCP"}))
            .collect();
        let mut entries = Vec::new();
        if !self.address.is_unspecified() {
            entries.push(json!({"ip": self.address.to_string()}));
        } else {
            let node = registry::by_kind("v1", "Node")
                .and_then(|rt| store.get(rt, None, &self.node).ok())
                .unwrap_or(Value::Null);
            let addresses = node["status"]["addresses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for a in &addresses {
                if matches!(a["type"].as_str(), Some("InternalIP" | "ExternalIP"))
                    && let Some(ip) = a["address"].as_str()
                    && !entries.iter().any(|e: &Value| e["ip"] == ip)
                {
                    entries.push(json!({"ip": ip}));
                }
            }
            if entries.is_empty()
                && let Some(h) = addresses
                    .iter()
                    .find(|a| a["type"] == "Hostname")
                    .and_then(|a| a["address"].as_str())
            {
                entries.push(json!({"hostname": h}));
            }
        }
        if !ports.is_empty() {
            for e in &mut entries {
                e["ports"] = Value::Array(ports.clone());
            }
        }
        json!({"loadBalancer": {"ingress": entries}})
    }
}

/// Writes an Ingress's status when it differs (through the status subresource).
fn write_status(store: &Store, ns: &str, name: &str, status: &Value) -> Result<(), StoreError> {
    let Some(rt) = registry::by_kind("networking.k8s.io/v1", "Ingress") else {
        return Ok(());
    };
    let current = match store.get(rt, Some(ns), name) {
        Ok(c) => c,
        Err(StoreError::Api(ApiError::NotFound(_))) => return Ok(()),
        Err(e) => return Err(e),
    };
    if current.get("status") == Some(status) {
        return Ok(());
    }
    let uid = meta::uid(&current).to_string();
    let new_status = status.clone();
    let result = store.update_with(rt, Some(ns), name, Subresource::Status, false, move |cur| {
        if meta::uid(cur) != uid {
            return Err(ApiError::bad_request("the object was replaced"));
        }
        let mut new = cur.clone();
        new["status"] = new_status;
        Ok(new)
    });
    match result {
        Ok(_) | Err(StoreError::Api(ApiError::NotFound(_) | ApiError::BadRequest { .. })) => Ok(()),
        Err(e) => Err(e),
    }
}
