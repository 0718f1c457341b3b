//! `metrics.k8s.io/v1beta1`: PodMetrics and NodeMetrics, as metrics-server serves them,
//! measured by the node's [`MetricsService`](super::node::MetricsService). The group is not
//! in the registry (nothing is stored), so its paths are parsed here, before
//! [`super::routes::parse`].

use std::sync::Arc;

use hyper::StatusCode;
use serde_json::Value;

use super::node::{self, NodeServices};
use super::{Body, json_response};
use crate::api::selector::LabelSelector;
use crate::api::{ApiError, ObjectRef, registry};
use crate::store::{Store, StoreError};

pub const METRICS_GROUP: &str = "metrics.k8s.io";
pub const METRICS_VERSION: &str = "v1beta1";

/// A metrics path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsRoute {
    /// `…/pods`, `…/namespaces/{ns}/pods`, `…/namespaces/{ns}/pods/{name}`.
    Pods {
        namespace: Option<String>,
        name: Option<String>,
    },
    /// `…/nodes`, `…/nodes/{name}`.
    Nodes { name: Option<String> },
}

/// Parses a path of the metrics group; `None` when it is not one.
pub fn parse(path: &str) -> Option<MetricsRoute> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let rest = match segs.as_slice() {
        ["apis", METRICS_GROUP, METRICS_VERSION, rest @ ..] => rest,
        _ => return None,
    };
    let s = |x: &&str| Some(x.to_string());
    match rest {
        ["pods"] => Some(MetricsRoute::Pods {
            namespace: None,
            name: None,
        }),
        ["namespaces", ns, "pods"] => Some(MetricsRoute::Pods {
            namespace: s(ns),
            name: None,
        }),
        ["namespaces", ns, "pods", name] => Some(MetricsRoute::Pods {
            namespace: s(ns),
            name: s(name),
        }),
        ["nodes"] => Some(MetricsRoute::Nodes { name: None }),
        ["nodes", name] => Some(MetricsRoute::Nodes { name: s(name) }),
        _ => None,
    }
}

fn not_found(kind: &str, name: &str) -> ApiError {
    ApiError::NotFound(ObjectRef::new(METRICS_GROUP, kind, name))
}

fn store_list(
    store: &Arc<Store>,
    kind: &'static str,
    ns: Option<String>,
) -> impl std::future::Future<Output = Result<Vec<Value>, ApiError>> + use<> {
    let store = store.clone();
    async move {
        let rt = registry::by_kind("v1", kind)
            .ok_or_else(|| ApiError::internal(format!("the {kind} kind is not registered")))?;
        tokio::task::spawn_blocking(move || store.list(rt, ns.as_deref()))
            .await
            .map_err(|e| ApiError::internal(format!("store task failed: {e}")))?
            .map(|(items, _)| items)
            .map_err(StoreError::into_api)
    }
}

/// Serves a GET of the metrics group.
pub async fn serve(
    store: &Arc<Store>,
    services: &NodeServices,
    route: MetricsRoute,
    raw_query: &str,
) -> Result<hyper::Response<Body>, ApiError> {
    let selector = form_urlencoded::parse(raw_query.as_bytes())
        .find(|(k, _)| k == "labelSelector")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let selector = LabelSelector::parse(&selector)
        .map_err(|e| ApiError::bad_request(format!("unable to parse labelSelector: {e}")))?;
    let service = services
        .metrics
        .clone()
        .ok_or_else(|| node::unavailable("the metrics service"))?;
    match route {
        MetricsRoute::Pods { namespace, name } => {
            let mut pods = store_list(store, "Pod", namespace).await?;
            pods.retain(|p| {
                name.as_deref()
                    .is_none_or(|n| p["metadata"]["name"].as_str() == Some(n))
                    && selector.matches_object(p)
            });
            if let Some(n) = &name
                && pods.is_empty()
            {
                return Err(not_found("podmetrics", n));
            }
            let list = service.pod_metrics(pods).await?;
            one_or_list(list, name.as_deref(), "podmetrics")
        }
        MetricsRoute::Nodes { name } => {
            let nodes = store_list(store, "Node", None).await?;
            let node = nodes.into_iter().find(|n| {
                name.as_deref()
                    .is_none_or(|w| n["metadata"]["name"].as_str() == Some(w))
                    && selector.matches_object(n)
            });
            let Some(node) = node else {
                return match name {
                    Some(n) => Err(not_found("nodemetrics", &n)),
                    None => Ok(json_response(
                        StatusCode::OK,
                        &serde_json::json!({"kind": "NodeMetricsList",
                            "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": []}),
                    )),
                };
            };
            let mut list = service.node_metrics().await?;
            if let Some(items) = list["items"].as_array_mut() {
                for item in items {
                    item["metadata"]["name"] = node["metadata"]["name"].clone();
                    if let Some(labels) = node["metadata"]["labels"].as_object() {
                        item["metadata"]["labels"] = Value::Object(labels.clone());
                    }
                }
            }
            one_or_list(list, name.as_deref(), "nodemetrics")
        }
    }
}

fn one_or_list(
    list: Value,
    name: Option<&str>,
    resource: &str,
) -> Result<hyper::Response<Body>, ApiError> {
    let Some(name) = name else {
        return Ok(json_response(StatusCode::OK, &list));
    };
    list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["metadata"]["name"] == name))
        .map(|item| json_response(StatusCode::OK, item))
        .ok_or_else(|| not_found(resource, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_paths() {
        let base = "/apis/metrics.k8s.io/v1beta1";
        assert_eq!(
            parse(&format!("{base}/pods")),
            Some(MetricsRoute::Pods {
                namespace: None,
                name: None
            })
        );
        assert_eq!(
            parse(&format!("{base}/namespaces/default/pods/web")),
            Some(MetricsRoute::Pods {
                namespace: Some("default".into()),
                name: Some("web".into())
            })
        );
        assert_eq!(
            parse(&format!("{base}/nodes/n1")),
            Some(MetricsRoute::Nodes {
                name: Some("n1".into())
            })
        );
        assert_eq!(parse(&format!("{base}/widgets")), None);
        assert_eq!(parse("/api/v1/pods"), None);
        assert_eq!(parse(&format!("{base}/namespaces/x/pods/a/b")), None);
    }
}
