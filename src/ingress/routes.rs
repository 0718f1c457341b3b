//! The routing table: which Ingresses berth serves, and for a request's host and path the
//! backend (a Service port's ready endpoints) that answers it, as Kubernetes specifies:
//! exact hosts before `*.` wildcards (one label) before rules without a host; within them
//! the longest matching path wins (Exact before Prefix at equal length); then the
//! `defaultBackend`. Built from whole lists of objects, so it is pure and swapped whole.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend, IngressClass};

/// The controller name of berth's IngressClass.
pub const CONTROLLER: &str = "berth.dev/ingress-controller";
/// berth's IngressClass.
pub const CLASS: &str = "berth";
/// The annotation that makes an IngressClass the default.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
/// The class annotation of Ingresses from before `ingressClassName`.
pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// Answer plain HTTP with a redirect to HTTPS.
pub const FORCE_SSL_REDIRECT: &str = "ingress.kubernetes.io/force-ssl-redirect";
/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Namespace and name of an object.
pub type ObjectRef = (String, String);

/// Where a matched request goes.
#[derive(Debug)]
pub struct Target {
    /// The Ingress the rule comes from.
    pub ingress: ObjectRef,
    /// Plain HTTP is answered with a 308 to HTTPS.
    pub force_ssl_redirect: bool,
    /// The ready endpoints of the backend (empty: 503), and why when there are none.
    pub endpoints: Vec<SocketAddr>,
    pub unavailable: Option<String>,
    next: AtomicUsize,
}

impl Target {
    /// The next ready endpoint, round-robin; `None` when there is none.
    pub fn next_endpoint(&self) -> Option<SocketAddr> {
        if self.endpoints.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.endpoints.get(i % self.endpoints.len()).copied()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathKind {
    Exact,
    Prefix,
}

#[derive(Debug)]
struct Route {
    /// For Prefix without its trailing slashes ("" matches everything).
    path: String,
    kind: PathKind,
    target: Arc<Target>,
}

impl Route {
    fn matches(&self, path: &str) -> bool {
        match self.kind {
            PathKind::Exact => path == self.path,
            PathKind::Prefix => prefix_matches(&self.path, path),
        }
    }

    /// Longer paths win; Exact wins over Prefix at equal length.
    fn rank(&self) -> (usize, bool) {
        (self.path.len(), self.kind == PathKind::Exact)
    }
}

/// Element-wise prefix match: `/foo` matches `/foo`, `/foo/` and `/foo/bar`, not `/foobar`.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The objects a table is built from (whole lists, as the store holds them).
#[derive(Debug, Default)]
pub struct Inputs {
    pub ingresses: Vec<Ingress>,
    pub classes: Vec<IngressClass>,
    pub services: Vec<Service>,
    pub slices: Vec<EndpointSlice>,
}

/// The routing table: one immutable snapshot; requests hold the one they started with.
#[derive(Debug, Default)]
pub struct Table {
    exact: HashMap<String, Vec<Route>>,
    /// Keyed by the suffix after `*` (".example.com").
    wildcard: HashMap<String, Vec<Route>>,
    any_host: Vec<Route>,
    default_backend: Option<Arc<Target>>,
    /// The Ingresses served, oldest first.
    pub served: Vec<ObjectRef>,
    /// What is wrong with a served Ingress's backends (not a passing lack of ready
    /// endpoints): the Ingress and a message.
    pub problems: Vec<(ObjectRef, String)>,
}

/// The host of a request without its port, lower-cased.
pub fn normalize_host(host: &str) -> String {
    let host = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        rest.split(']').next().unwrap_or_default()
    } else if host.matches(':').count() == 1 {
        host.split(':').next().unwrap_or_default()
    } else {
        host
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

impl Table {
    /// Where a request for `host` (normalized) and `path` goes; `None`: 404.
    pub fn route(&self, host: &str, path: &str) -> Option<&Arc<Target>> {
        fn best<'a>(routes: &'a [Route], path: &str) -> Option<&'a Arc<Target>> {
            routes
                .iter()
                .filter(|r| r.matches(path))
                // max_by_key keeps the last of equals; iterate reversed so the oldest wins.
                .rev()
                .max_by_key(|r| r.rank())
                .map(|r| &r.target)
        }
        if let Some(t) = self.exact.get(host).and_then(|r| best(r, path)) {
            return Some(t);
        }
        if let Some((_, suffix)) = host.split_once('.')
            && let Some(t) = self
                .wildcard
                .get(&format!(".{suffix}"))
                .and_then(|r| best(r, path))
        {
            return Some(t);
        }
        best(&self.any_host, path).or(self.default_backend.as_ref())
    }

    /// Builds the table from the objects. `Ingress`es are taken oldest first, so an older
    /// rule wins a tie, as controllers that merge Ingresses do.
    pub fn build(inputs: &Inputs) -> Table {
        let mut table = Table::default();
        let mut ingresses: Vec<&Ingress> = inputs
            .ingresses
            .iter()
            .filter(|i| served(i, &inputs.classes))
            .collect();
        ingresses.sort_by_key(|i| {
            (
                i.metadata.creation_timestamp.as_ref().map(|t| t.0),
                i.metadata.namespace.clone(),
                i.metadata.name.clone(),
            )
        });
        for ing in ingresses {
            let ns = ing.metadata.namespace.clone().unwrap_or_default();
            let name = ing.metadata.name.clone().unwrap_or_default();
            let force = ing
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(FORCE_SSL_REDIRECT))
                .is_some_and(|v| v == "true");
            let mut problems = Vec::new();
            let mut target = |backend: &IngressBackend| {
                let (endpoints, unavailable) = match resolve(&ns, backend, inputs) {
                    Ok(e) if e.is_empty() => (e, Some("no ready endpoints".to_string())),
                    Ok(e) => (e, None),
                    Err(why) => {
                        if !problems.contains(&why) {
                            problems.push(why.clone());
                        }
                        (Vec::new(), Some(why))
                    }
                };
                Arc::new(Target {
                    ingress: (ns.clone(), name.clone()),
                    force_ssl_redirect: force,
                    endpoints,
                    unavailable,
                    next: AtomicUsize::new(0),
                })
            };
            let Some(spec) = &ing.spec else { continue };
            table.served.push((ns.clone(), name.clone()));
            if table.default_backend.is_none()
                && let Some(b) = &spec.default_backend
            {
                table.default_backend = Some(target(b));
            }
            for rule in spec.rules.iter().flatten() {
                let Some(http) = &rule.http else { continue };
                let host = rule
                    .host
                    .as_deref()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let routes = if host.is_empty() {
                    &mut table.any_host
                } else if let Some(suffix) = host.strip_prefix('*') {
                    table.wildcard.entry(suffix.to_string()).or_default()
                } else {
                    table.exact.entry(host).or_default()
                };
                for p in &http.paths {
                    let path = p.path.as_deref().unwrap_or_default();
                    let (kind, path) = match p.path_type.as_str() {
                        "Exact" => (PathKind::Exact, path.to_string()),
                        // Prefix, and ImplementationSpecific treated as Prefix.
                        _ => (PathKind::Prefix, path.trim_end_matches('/').to_string()),
                    };
                    routes.push(Route {
                        path,
                        kind,
                        target: target(&p.backend),
                    });
                }
            }
            table.problems.extend(
                problems
                    .into_iter()
                    .map(|m| ((ns.clone(), name.clone()), m)),
            );
        }
        table
    }
}

/// Whether berth serves this Ingress: its class is one of berth's, or it names none (and
/// no legacy annotation) while one of berth's classes is the default.
pub fn served(ing: &Ingress, classes: &[IngressClass]) -> bool {
    let ours = |name: &str| {
        classes.iter().any(|c| {
            c.metadata.name.as_deref() == Some(name)
                && c.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(CONTROLLER)
        })
    };
    if let Some(class) = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
    {
        return ours(class);
    }
    if let Some(class) = ing
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(LEGACY_CLASS_ANNOTATION))
    {
        return class == CLASS || ours(class);
    }
    classes.iter().any(|c| {
        c.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(CONTROLLER)
            && c.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                .is_some_and(|v| v == "true")
    })
}

/// The ready endpoints of an Ingress backend: the Service port (by number or name), then
/// the EndpointSlices of the Service, their port of the same name (which carries the
/// resolved targetPort) and their endpoints whose `ready` condition is not false.
fn resolve(ns: &str, backend: &IngressBackend, inputs: &Inputs) -> Result<Vec<SocketAddr>, String> {
    let Some(sb) = &backend.service else {
        return Err("resource backends are not supported by berth".to_string());
    };
    let svc = inputs
        .services
        .iter()
        .find(|s| {
            s.metadata.namespace.as_deref() == Some(ns)
                && s.metadata.name.as_deref() == Some(&sb.name)
        })
        .ok_or_else(|| format!("service \"{}\" not found", sb.name))?;
    let want = sb.port.as_ref();
    let port = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .find(|p| match want {
            Some(w) => match (&w.name, w.number) {
                (Some(name), _) if !name.is_empty() => p.name.as_deref() == Some(name.as_str()),
                (_, Some(n)) => p.port == n,
                _ => false,
            },
            None => true,
        })
        .ok_or_else(|| format!("service \"{}\" has no such port", sb.name))?;
    let port_name = port.name.clone().unwrap_or_default();
    let mut out = Vec::new();
    let slices = inputs.slices.iter().filter(|s| {
        s.metadata.namespace.as_deref() == Some(ns)
            && s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                == Some(&sb.name)
    });
    for slice in slices {
        let Some(target) = slice.ports.iter().flatten().find_map(|p| {
            (p.name.clone().unwrap_or_default() == port_name
                && p.protocol.as_deref().unwrap_or("TCP") == "TCP")
                .then_some(p.port)
                .flatten()
        }) else {
            continue;
        };
        let Ok(target) = u16::try_from(target) else {
            continue;
        };
        for ep in &slice.endpoints {
            if ep.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            for a in &ep.addresses {
                if let Ok(ip) = a.parse::<IpAddr>() {
                    let addr = SocketAddr::new(ip, target);
                    if !out.contains(&addr) {
                        out.push(addr);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// A TLS entry of a served Ingress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsEntry {
    pub ingress: ObjectRef,
    /// (namespace, name) of the Secret.
    pub secret: ObjectRef,
    /// The hosts it is for (lower-cased).
    pub hosts: Vec<String>,
}

/// The TLS entries of the served Ingresses, oldest Ingress first.
pub fn tls_secrets(inputs: &Inputs, served: &[ObjectRef]) -> Vec<TlsEntry> {
    let mut out = Vec::new();
    let by_ref: BTreeMap<ObjectRef, &Ingress> = inputs
        .ingresses
        .iter()
        .map(|i| {
            (
                (
                    i.metadata.namespace.clone().unwrap_or_default(),
                    i.metadata.name.clone().unwrap_or_default(),
                ),
                i,
            )
        })
        .collect();
    for r in served {
        let Some(ing) = by_ref.get(r) else { continue };
        for tls in ing.spec.iter().flat_map(|s| s.tls.iter().flatten()) {
            let Some(secret) = tls.secret_name.clone().filter(|s| !s.is_empty()) else {
                continue;
            };
            let hosts = tls
                .hosts
                .iter()
                .flatten()
                .map(|h| h.to_ascii_lowercase())
                .collect();
            out.push(TlsEntry {
                ingress: r.clone(),
                secret: (r.0.clone(), secret),
                hosts,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ingress(name: &str, ts: &str, spec: serde_json::Value) -> Ingress {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": ts},
            "spec": spec,
        }))
        .unwrap()
    }

    fn class(default: bool) -> IngressClass {
        let mut c = json!({"metadata": {"name": CLASS}, "spec": {"controller": CONTROLLER}});
        if default {
            c["metadata"]["annotations"] = json!({DEFAULT_CLASS_ANNOTATION: "true"});
        }
        serde_json::from_value(c).unwrap()
    }

    fn service(name: &str, ports: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"ports": ports},
        }))
        .unwrap()
    }

    fn slice(svc: &str, port_name: &str, port: i32, eps: &[(&str, Option<bool>)]) -> EndpointSlice {
        let endpoints: Vec<_> = eps
            .iter()
            .map(|(ip, ready)| {
                let mut e = json!({"addresses": [ip]});
                if let Some(r) = ready {
                    e["conditions"] = json!({"ready": r});
                }
                e
            })
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": format!("{svc}-x"), "namespace": "default",
                         "labels": {SERVICE_NAME_LABEL: svc}},
            "addressType": "IPv4",
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            "endpoints": endpoints,
        }))
        .unwrap()
    }

    fn backend(svc: &str, port: serde_json::Value) -> serde_json::Value {
        json!({"service": {"name": svc, "port": port}})
    }

    fn inputs(ingresses: Vec<Ingress>) -> Inputs {
        Inputs {
            ingresses,
            classes: vec![class(true)],
            services: vec![
                service("a", json!([{"port": 80, "targetPort": 8080}])),
                service(
                    "b",
                    json!([{"name": "web", "port": 80, "targetPort": "http"}]),
                ),
                service("c", json!([{"port": 80}])),
            ],
            slices: vec![
                slice(
                    "a",
                    "",
                    8080,
                    &[("10.0.0.1", None), ("10.0.0.2", Some(true))],
                ),
                slice(
                    "b",
                    "web",
                    9090,
                    &[("10.0.0.3", Some(true)), ("10.0.0.4", Some(false))],
                ),
                slice("c", "", 80, &[("10.0.0.5", Some(false))]),
            ],
        }
    }

    fn dest(t: &Table, host: &str, path: &str) -> Option<String> {
        t.route(host, path).map(|t| {
            t.endpoints
                .first()
                .map(|e| e.to_string())
                .unwrap_or_else(|| format!("503 {}", t.unavailable.clone().unwrap_or_default()))
        })
    }

    #[test]
    fn prefix_matching_is_element_wise() {
        assert!(prefix_matches("/foo", "/foo"));
        assert!(prefix_matches("/foo", "/foo/"));
        assert!(prefix_matches("/foo", "/foo/bar"));
        assert!(!prefix_matches("/foo", "/foobar"));
        assert!(!prefix_matches("/aaa/bb", "/aaa/bbb"));
        assert!(prefix_matches("", "/anything"));
        assert_eq!(normalize_host("Foo.Example.com:8080"), "foo.example.com");
        assert_eq!(normalize_host("[::1]:443"), "::1");
        assert_eq!(normalize_host("example.com."), "example.com");
    }

    #[test]
    fn hosts_paths_and_default_backend_route_as_kubernetes_says() {
        let one = ingress(
            "one",
            "2026-01-01T00:00:00Z",
            json!({
                "defaultBackend": backend("c", json!({"number": 80})),
                "rules": [
                    {"host": "a.example.com", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": backend("a", json!({"number": 80}))},
                        {"path": "/api/", "pathType": "Prefix", "backend": backend("b", json!({"name": "web"}))},
                        {"path": "/api/v1", "pathType": "Exact", "backend": backend("c", json!({"number": 80}))},
                    ]}},
                    {"host": "*.wild.test", "http": {"paths": [
                        {"path": "/", "pathType": "ImplementationSpecific", "backend": backend("b", json!({"number": 80}))},
                    ]}},
                ],
            }),
        );
        let two = ingress(
            "two",
            "2026-01-02T00:00:00Z",
            json!({"rules": [
                {"host": "b.example.com", "http": {"paths": [
                    {"path": "/x", "pathType": "Exact", "backend": backend("b", json!({"number": 80}))},
                ]}},
                {"http": {"paths": [
                    {"path": "/any", "pathType": "Prefix", "backend": backend("a", json!({"number": 80}))},
                ]}},
            ]}),
        );
        let t = Table::build(&inputs(vec![two, one]));
        assert_eq!(t.served.len(), 2);
        assert_eq!(t.served[0].1, "one", "oldest first");
        assert_eq!(
            dest(&t, "a.example.com", "/").as_deref(),
            Some("10.0.0.1:8080")
        );
        assert_eq!(
            dest(&t, "a.example.com", "/apix").as_deref(),
            Some("10.0.0.1:8080")
        );
        assert_eq!(
            dest(&t, "a.example.com", "/api").as_deref(),
            Some("10.0.0.3:9090")
        );
        assert_eq!(
            dest(&t, "a.example.com", "/api/v2").as_deref(),
            Some("10.0.0.3:9090")
        );
        assert_eq!(
            dest(&t, "a.example.com", "/api/v1").as_deref(),
            Some("503 no ready endpoints"),
            "exact, longest"
        );
        assert_eq!(
            dest(&t, "x.wild.test", "/q").as_deref(),
            Some("10.0.0.3:9090")
        );
        // A wildcard covers one label only; the unmatched host falls to the default.
        assert_eq!(
            dest(&t, "y.x.wild.test", "/q").as_deref(),
            Some("503 no ready endpoints")
        );
        assert_eq!(
            dest(&t, "wild.test", "/q").as_deref(),
            Some("503 no ready endpoints")
        );
        assert_eq!(
            dest(&t, "b.example.com", "/x").as_deref(),
            Some("10.0.0.3:9090")
        );
        assert_eq!(
            dest(&t, "b.example.com", "/x/y").as_deref(),
            Some("503 no ready endpoints")
        );
        assert_eq!(
            dest(&t, "other", "/any/thing").as_deref(),
            Some("10.0.0.1:8080")
        );

        // Without a default backend nothing matches: 404.
        let t = Table::build(&inputs(vec![ingress(
            "three",
            "2026-01-01T00:00:00Z",
            json!({"rules": [{"host": "h", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": backend("missing", json!({"number": 80}))},
            ]}}]}),
        )]));
        assert!(t.route("other", "/").is_none());
        assert_eq!(
            t.problems,
            [(
                ("default".to_string(), "three".to_string()),
                "service \"missing\" not found".to_string()
            )]
        );
        assert_eq!(
            dest(&t, "h", "/").as_deref(),
            Some("503 service \"missing\" not found")
        );
    }

    #[test]
    fn round_robin_over_ready_endpoints_only() {
        let t = Table::build(&inputs(vec![ingress(
            "rr",
            "2026-01-01T00:00:00Z",
            json!({"defaultBackend": backend("a", json!({"number": 80}))}),
        )]));
        let target = t.route("h", "/").unwrap();
        let got: Vec<_> = (0..4)
            .map(|_| target.next_endpoint().unwrap().to_string())
            .collect();
        assert_eq!(
            got,
            [
                "10.0.0.1:8080",
                "10.0.0.2:8080",
                "10.0.0.1:8080",
                "10.0.0.2:8080"
            ]
        );
        let t = Table::build(&inputs(vec![ingress(
            "none",
            "2026-01-01T00:00:00Z",
            json!({"defaultBackend": backend("c", json!({"number": 80}))}),
        )]));
        assert_eq!(t.route("h", "/").unwrap().next_endpoint(), None);
    }

    #[test]
    fn class_selection() {
        let mk = |class: Option<&str>, legacy: Option<&str>| {
            let mut i = json!({"metadata": {"name": "i", "namespace": "default"}, "spec": {}});
            if let Some(c) = class {
                i["spec"]["ingressClassName"] = json!(c);
            }
            if let Some(l) = legacy {
                i["metadata"]["annotations"] = json!({LEGACY_CLASS_ANNOTATION: l});
            }
            serde_json::from_value::<Ingress>(i).unwrap()
        };
        let classes = [class(true)];
        assert!(served(&mk(Some("berth"), None), &classes));
        assert!(!served(&mk(Some("nginx"), None), &classes));
        assert!(served(&mk(None, None), &classes), "default class");
        assert!(!served(&mk(None, None), &[class(false)]), "not the default");
        assert!(served(&mk(None, Some("berth")), &[class(false)]));
        assert!(!served(&mk(None, Some("nginx")), &classes));
    }
}
