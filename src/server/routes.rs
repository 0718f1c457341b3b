//! Parsing of Kubernetes REST paths into a [`Route`].

use crate::api::ApiError;
use crate::api::registry::{self, ResourceType};

/// What a request path names.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Version,
    Health,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`
    Resources {
        group: String,
        version: String,
    },
    /// `/openapi/v3` and below.
    OpenApi(String),
    /// A collection, an object or an object's subresource.
    Resource(ResourceRoute),
    /// `/apis/images.berth.dev/v1/images[/{reference}]`: the node's local images (the
    /// reference percent-encoded, `/` as `%2F`).
    Images(Option<String>),
    /// `GET /apis/images.berth.dev/v1/pulls`: the pulls under way, with their progress.
    Pulls,
    /// `GET /apis/backup.berth.dev/v1/backup`: a backup archive of the node (root only).
    Backup,
}

/// The API group of local images (served by the kubelet, not stored).
pub const IMAGES_GROUP: &str = "images.berth.dev";
/// The group of the backup endpoint.
pub const BACKUP_GROUP: &str = "backup.berth.dev";

/// A resource path.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRoute {
    pub rt: &'static ResourceType,
    /// Namespace from the path (`None` for cluster-scoped kinds and for lists across all
    /// namespaces).
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

fn not_found(path: &str) -> ApiError {
    ApiError::NotFoundPath {
        message: format!("the server could not find the requested resource ({path})"),
    }
}

/// Parses a request path (without the query).
pub fn parse(path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segs.as_slice() {
        ["version"] => Ok(Route::Version),
        ["healthz" | "readyz" | "livez", ..] => Ok(Route::Health),
        ["api"] => Ok(Route::CoreVersions),
        ["apis"] => Ok(Route::Groups),
        ["openapi", "v3", rest @ ..] => Ok(Route::OpenApi(rest.join("/"))),
        ["api", "v1"] => Ok(Route::Resources {
            group: String::new(),
            version: "v1".into(),
        }),
        ["apis", group] => known_group(group, path).map(|g| Route::Group(g.to_string())),
        ["apis", group, version] => {
            known_group(group, path)?;
            Ok(Route::Resources {
                group: group.to_string(),
                version: version.to_string(),
            })
        }
        ["apis", IMAGES_GROUP, "v1", "images"] => Ok(Route::Images(None)),
        ["apis", IMAGES_GROUP, "v1", "pulls"] => Ok(Route::Pulls),
        ["apis", BACKUP_GROUP, "v1", "backup"] => Ok(Route::Backup),
        ["apis", IMAGES_GROUP, "v1", "images", reference] => {
            Ok(Route::Images(Some(percent_decode(reference))))
        }
        ["api", "v1", rest @ ..] => resource("", "v1", rest, path),
        ["apis", group, version, rest @ ..] => resource(group, version, rest, path),
        _ => Err(not_found(path)),
    }
}

fn known_group<'a>(group: &'a str, path: &str) -> Result<&'a str, ApiError> {
    if registry::REGISTRY.iter().any(|r| r.group == group) || group == super::metrics::METRICS_GROUP
    {
        Ok(group)
    } else {
        Err(not_found(path))
    }
}

/// Decodes one percent-encoded path segment.
fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn resource(group: &str, version: &str, rest: &[&str], path: &str) -> Result<Route, ApiError> {
    let lookup =
        |plural: &str| registry::by_plural(group, version, plural).ok_or_else(|| not_found(path));
    let percent = |s: &str| -> Result<String, ApiError> { Ok(percent_decode(s)) };
    // `/namespaces/{ns}/{plural}…` names a namespaced collection when {plural} is one;
    // otherwise `/namespaces/{name}[/{sub}]` is the Namespace object itself.
    if let ["namespaces", ns, plural, tail @ ..] = rest
        && let Some(rt) = registry::by_plural(group, version, plural).filter(|r| r.namespaced)
    {
        if tail.len() > 2 {
            return Err(not_found(path));
        }
        return Ok(Route::Resource(ResourceRoute {
            rt,
            namespace: Some(percent(ns)?),
            name: tail.first().map(|s| percent(s)).transpose()?,
            subresource: tail.get(1).map(|s| s.to_string()),
        }));
    }
    match rest {
        [plural, tail @ ..] if tail.len() <= 2 => {
            let rt = lookup(plural)?;
            Ok(Route::Resource(ResourceRoute {
                rt,
                namespace: None,
                name: tail.first().map(|s| percent(s)).transpose()?,
                subresource: tail.get(1).map(|s| s.to_string()),
            }))
        }
        _ => Err(not_found(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourceRoute {
        match parse(path).expect(path) {
            Route::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn resource_paths() {
        let r = res("/apis/apps/v1/namespaces/default/deployments/web/scale");
        assert_eq!(r.rt.kind, "Deployment");
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.subresource.as_deref(), Some("scale"));
        let r = res("/api/v1/pods");
        assert_eq!((r.rt.kind, r.namespace, r.name), ("Pod", None, None));
        let r = res("/api/v1/namespaces/default");
        assert_eq!(
            (r.rt.kind, r.name.as_deref()),
            ("Namespace", Some("default"))
        );
        let r = res("/api/v1/namespaces/kube-system/status");
        assert_eq!(
            (r.rt.kind, r.name.as_deref(), r.subresource.as_deref()),
            ("Namespace", Some("kube-system"), Some("status"))
        );
        let r = res("/api/v1/namespaces/default/pods");
        assert_eq!(
            (r.rt.kind, r.namespace.as_deref()),
            ("Pod", Some("default"))
        );
        let r = res("/api/v1/nodes/node1");
        assert_eq!((r.rt.kind, r.name.as_deref()), ("Node", Some("node1")));
    }

    #[test]
    fn unknown_paths_are_not_found() {
        for p in [
            "/api/v2/pods",
            "/apis/apps/v1/widgets",
            "/apis/nope/v1",
            "/x",
            "/api/v1/namespaces/a/pods/b/c/d",
        ] {
            assert_eq!(parse(p).expect_err(p).code(), 404, "{p}");
        }
        assert_eq!(
            parse("/apis/apps/v1").expect("gv"),
            Route::Resources {
                group: "apps".into(),
                version: "v1".into()
            }
        );
    }
}
