//! Tasks that feed the TUI's state from the daemon, each reporting over a channel:
//! reflectors (list, then watch from the list's revision; list again on 410 Gone or any
//! failure, with capped backoff), the image list, the server version, node metrics, and a
//! dry-run write that tells whether this user may write.
//!
//! Every task ends when the TUI's receiver is gone (a send fails).

use std::collections::HashMap;
use std::time::Duration;

use hyper::Method;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use super::logs::LogChunk;
use super::state::{Source, Usage, milli};
use crate::api::registry::{self, ResourceType};
use crate::api::watch::{EventType, WatchEvent};
use crate::api::{ApiError, meta};
use crate::client::{Client, ClientError, ListOptions};

/// The node's image API (see `berth image`).
pub const IMAGES_PATH: &str = "/apis/images.berth.dev/v1/images";
/// The pulls under way, with their progress.
const PULLS_PATH: &str = "/apis/images.berth.dev/v1/pulls";
/// Node usage from the metrics API; it may not be served (404/503): the header says n/a.
const NODE_METRICS_PATH: &str = "/apis/metrics.k8s.io/v1beta1/nodes";
/// Pod usage from the metrics API (cgroup statistics of each container).
const POD_METRICS_PATH: &str = "/apis/metrics.k8s.io/v1beta1/pods";

/// Retry delays: from the first to the cap, doubling.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// A kind the server does not serve (404) is asked for again this rarely.
const NOT_SERVED_RETRY: Duration = Duration::from_secs(30);
const METRICS_PERIOD: Duration = Duration::from_secs(15);
/// Pull progress is asked for this often (an in-memory list: cheap to serve).
const PULLS_PERIOD: Duration = Duration::from_secs(1);

/// What tasks report.
#[derive(Debug)]
pub enum Update {
    Listed(Source, Vec<Value>),
    Event(Source, WatchEvent),
    /// A list or watch failed: the message, and whether the daemon was unreachable.
    Failed(Source, String, bool),
    Version(String),
    Usage(Option<Usage>),
    /// Each pod's usage (summed over its containers), by (namespace, name).
    PodUsage(HashMap<(String, String), Usage>),
    /// The pulls under way: percent done by normalised image reference.
    Pulls(HashMap<String, u8>),
    /// Writes are forbidden for this user: the server's reason.
    ReadOnly(String),
    /// A write finished.
    Done {
        what: String,
        result: Result<(), ClientError>,
    },
    /// A port-forward listens.
    Forwarding(super::state::ActiveForward),
    /// A connection of a running port-forward failed (the forward goes on).
    ForwardFailed(String),
    /// A rollout restart or undo finished: what to flash, or why it was refused.
    Rollout {
        what: String,
        result: Result<String, String>,
    },
    /// A log chunk of the viewer's stream `generation`.
    Log(u64, LogChunk),
}

/// Whether an error means the daemon could not be reached (rather than refused).
pub fn is_connection(e: &ClientError) -> bool {
    matches!(e, ClientError::Connect { .. } | ClientError::Http { .. })
}

fn is_not_served(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Api(ApiError::NotFound(_) | ApiError::NotFoundPath { .. })
    )
}

/// Keeps the cache of `rt` (every namespace) in step with the daemon, for ever.
pub async fn reflect(client: Client, rt: &'static ResourceType, tx: UnboundedSender<Update>) {
    let source = Source::Kind(rt);
    let opts = ListOptions::default();
    let mut backoff = BACKOFF_FIRST;
    loop {
        let failure = match client.list(rt, None, &opts).await {
            Ok(list) => {
                backoff = BACKOFF_FIRST;
                if tx.send(Update::Listed(source, list.items)).is_err() {
                    return;
                }
                match follow(&client, rt, &opts, list.resource_version, &tx).await {
                    Followed::Closed => return,
                    // 410 Gone: our revision was compacted; list again at once.
                    Followed::Expired => continue,
                    Followed::Failed(e) => e,
                }
            }
            Err(e) => e,
        };
        let delay = if is_not_served(&failure) {
            NOT_SERVED_RETRY
        } else {
            backoff
        };
        let connection = is_connection(&failure);
        if tx
            .send(Update::Failed(source, failure.to_string(), connection))
            .is_err()
        {
            return;
        }
        tokio::time::sleep(delay).await;
        backoff = (backoff * 2).min(BACKOFF_CAP);
    }
}

enum Followed {
    /// The TUI is gone.
    Closed,
    Expired,
    Failed(ClientError),
}

/// Watches from `rv`, reopening the watch when the server ends it cleanly.
async fn follow(
    client: &Client,
    rt: &'static ResourceType,
    opts: &ListOptions,
    mut rv: String,
    tx: &UnboundedSender<Update>,
) -> Followed {
    let source = Source::Kind(rt);
    loop {
        let mut watch = match client.watch(rt, None, opts, &rv).await {
            Ok(w) => w,
            Err(ClientError::Api(ApiError::Gone { .. })) => return Followed::Expired,
            Err(e) => return Followed::Failed(e),
        };
        while let Some(ev) = watch.next().await {
            match ev {
                Ok(ev) => {
                    let next = meta::resource_version(&ev.object);
                    if !next.is_empty() {
                        rv = next.to_string();
                    }
                    if ev.kind == EventType::Bookmark {
                        continue;
                    }
                    if tx.send(Update::Event(source, ev)).is_err() {
                        return Followed::Closed;
                    }
                }
                Err(ClientError::Api(ApiError::Gone { .. })) => return Followed::Expired,
                Err(e) => return Followed::Failed(e),
            }
        }
        if tx.is_closed() {
            return Followed::Closed;
        }
    }
}

/// Lists the images once (they have no watch; `ctrl-r` lists again).
pub async fn list_images(client: Client, tx: UnboundedSender<Update>) {
    let update = match client.request(Method::GET, IMAGES_PATH, None, None).await {
        Ok(v) => Update::Listed(
            Source::Images,
            v.get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        ),
        Err(e) => {
            let connection = is_connection(&e);
            Update::Failed(Source::Images, e.to_string(), connection)
        }
    };
    let _ = tx.send(update);
}

/// Asks for the server's version until it answers.
pub async fn server_version(client: Client, tx: UnboundedSender<Update>) {
    let mut backoff = BACKOFF_FIRST;
    loop {
        if let Ok(v) = client.version().await
            && let Some(version) = v.get("gitVersion").and_then(Value::as_str)
        {
            let _ = tx.send(Update::Version(version.to_string()));
            return;
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_CAP);
    }
}

/// Sums node usage from the metrics API every [`METRICS_PERIOD`]. Metrics are samples,
/// not objects: there is nothing to watch, so this is the one thing asked for again.
pub async fn metrics(client: Client, tx: UnboundedSender<Update>) {
    loop {
        let usage = client
            .request(Method::GET, NODE_METRICS_PATH, None, None)
            .await
            .ok()
            .and_then(|v| node_usage(&v));
        if tx.send(Update::Usage(usage)).is_err() {
            return;
        }
        let pods = client
            .request(Method::GET, POD_METRICS_PATH, None, None)
            .await
            .ok()
            .map(|v| pod_usage(&v))
            .unwrap_or_default();
        if tx.send(Update::PodUsage(pods)).is_err() {
            return;
        }
        tokio::time::sleep(METRICS_PERIOD).await;
    }
}

/// Follows the node's pulls every [`PULLS_PERIOD`] (pods waiting for an image show how
/// far its pull has come).
pub async fn pulls(client: Client, tx: UnboundedSender<Update>) {
    loop {
        let pulls = client
            .request(Method::GET, PULLS_PATH, None, None)
            .await
            .map(|v| pull_percents(&v))
            .unwrap_or_default();
        if tx.send(Update::Pulls(pulls)).is_err() {
            return;
        }
        tokio::time::sleep(PULLS_PERIOD).await;
    }
}

/// Percent done of each pull of a `PullProgressList`, by reference (the least advanced
/// when one image is pulled twice at once).
pub fn pull_percents(list: &Value) -> HashMap<String, u8> {
    let mut out: HashMap<String, u8> = HashMap::new();
    for item in list
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let reference = meta::str_at(item, "/status/reference");
        let percent = item
            .pointer("/status/percent")
            .and_then(Value::as_u64)
            .unwrap_or_default()
            .min(100) as u8;
        if reference.is_empty() {
            continue;
        }
        out.entry(reference.to_string())
            .and_modify(|p| *p = (*p).min(percent))
            .or_insert(percent);
    }
    out
}

/// The summed `usage` of a `NodeMetricsList`; `None` when it has no items.
pub fn node_usage(list: &Value) -> Option<Usage> {
    let items = list.get("items").and_then(Value::as_array)?;
    if items.is_empty() {
        return None;
    }
    let mut u = Usage {
        cpu_milli: 0,
        mem: 0,
    };
    for item in items {
        u.cpu_milli += milli(item.pointer("/usage/cpu"));
        u.mem += milli(item.pointer("/usage/memory")) / 1000;
    }
    Some(u)
}

/// Each pod of a `PodMetricsList`, its containers' usage summed.
pub fn pod_usage(list: &Value) -> HashMap<(String, String), Usage> {
    let mut out = HashMap::new();
    for item in list
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = (
            meta::str_at(item, "/metadata/namespace").to_string(),
            meta::str_at(item, "/metadata/name").to_string(),
        );
        let mut u = Usage {
            cpu_milli: 0,
            mem: 0,
        };
        for c in item
            .get("containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            u.cpu_milli += milli(c.pointer("/usage/cpu"));
            u.mem += milli(c.pointer("/usage/memory")) / 1000;
        }
        out.insert(key, u);
    }
    out
}

/// A dry-run create (nothing is stored): a 403 means this user may only read.
pub async fn write_check(client: Client, tx: UnboundedSender<Update>) {
    let Some(rt) = registry::resolve("namespaces") else {
        return;
    };
    let probe = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "berth-tui-write-check"}});
    let dry = client.with_dry_run(true);
    let mut backoff = BACKOFF_FIRST;
    loop {
        match dry.create(rt, None, &probe).await {
            Err(ClientError::Api(ApiError::Forbidden { message })) => {
                let _ = tx.send(Update::ReadOnly(message));
                return;
            }
            Err(e) if is_connection(&e) => {}
            _ => return,
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_CAP);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_percents_keep_the_least_advanced_pull_of_an_image() {
        let list = json!({"items": [
            {"status": {"reference": "docker.io/library/a:1", "percent": 80}},
            {"status": {"reference": "docker.io/library/a:1", "percent": 20}},
            {"status": {"reference": "docker.io/library/b:1", "percent": 100}},
            {"status": {"percent": 3}}]});
        let p = pull_percents(&list);
        assert_eq!(p.len(), 2);
        assert_eq!(p["docker.io/library/a:1"], 20);
        assert_eq!(p["docker.io/library/b:1"], 100);
    }

    #[test]
    fn node_usage_sums_items_and_is_none_without_any() {
        let list = json!({"items": [
            {"usage": {"cpu": "250m", "memory": "1Gi"}},
            {"usage": {"cpu": "1", "memory": "512Mi"}}
        ]});
        assert_eq!(
            node_usage(&list),
            Some(Usage {
                cpu_milli: 1250,
                mem: (1 << 30) + (512 << 20)
            })
        );
        assert_eq!(node_usage(&json!({"items": []})), None);
        assert_eq!(node_usage(&json!({"kind": "Status"})), None);
    }
}
