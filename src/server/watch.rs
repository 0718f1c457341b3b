//! `?watch=true` streams: one JSON watch event per line, from a resourceVersion on.
//!
//! The stream subscribes to the store's change channel *before* it reads what it starts
//! from (a snapshot, or the history after the requested revision), then forwards only
//! changes newer than that, so nothing is missed or repeated. A watcher that falls behind
//! the in-memory channel catches up from the LMDB history; if the history no longer reaches
//! back far enough it gets Kubernetes' 410 "too old resource version" ERROR event.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::CONTENT_TYPE;
use hyper::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::handlers::selectors;
use super::routes::ResourceRoute;
use super::{Body, Query};
use crate::api::selector::{FieldSelector, LabelSelector};
use crate::api::watch::EventType;
use crate::api::{ApiError, meta, table};
use crate::store::{Change, Store, StoreError};

struct Filter {
    route: ResourceRoute,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn selects(&self, obj: &Value) -> bool {
        self.labels.matches_object(obj) && self.fields.matches(obj)
    }

    /// The event this watcher gets for a change, if any. With selectors, an object that
    /// stops matching is reported DELETED and one that starts matching ADDED, as
    /// Kubernetes' watch cache does.
    fn event_for(&self, c: &Change) -> Option<EventType> {
        if !std::ptr::eq(c.resource, self.route.rt) {
            return None;
        }
        if let Some(ns) = &self.route.namespace
            && meta::namespace(&c.object) != ns
        {
            return None;
        }
        if let Some(name) = &self.route.name
            && meta::name(&c.object) != name
        {
            return None;
        }
        let now = self.selects(&c.object);
        let before = c.previous.as_ref().map(|p| self.selects(p));
        match (c.kind, before, now) {
            (EventType::Modified, Some(true), false) => Some(EventType::Deleted),
            (EventType::Modified, Some(false), true) => Some(EventType::Added),
            (kind, _, true) => Some(kind),
            _ => None,
        }
    }
}

/// Serves a watch request.
pub async fn serve(
    store: Arc<Store>,
    route: ResourceRoute,
    query: Query,
    wants_table: bool,
) -> Result<Response<Body>, ApiError> {
    let (labels, fields) = selectors(&route, &query)?;
    let start: Option<u64> = match query.resource_version.as_str() {
        "" | "0" => None,
        rv => Some(rv.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion must be a revision number, not \"{rv}\""
            ))
        })?),
    };
    let filter = Filter {
        route,
        labels,
        fields,
    };
    let rx = store.subscribe();
    // Starting point: a snapshot (synthetic ADDED events) or the history after `start`.
    let s = store.clone();
    let rt = filter.route.rt;
    let ns = filter.route.namespace.clone();
    let initial: Result<(Vec<Change>, u64), StoreError> =
        tokio::task::spawn_blocking(move || match start {
            None => {
                let (items, revision) = s.list(rt, ns.as_deref())?;
                let changes = items
                    .into_iter()
                    .map(|object| Change {
                        previous: None,
                        revision,
                        kind: EventType::Added,
                        resource: rt,
                        object,
                    })
                    .collect();
                Ok((changes, revision))
            }
            Some(rev) => {
                let changes = s.changes_since(rev)?;
                let last = changes.last().map(|c| c.revision).unwrap_or(rev);
                Ok((changes, last))
            }
        })
        .await
        .map_err(|e| ApiError::internal(format!("watch setup failed: {e}")))?;

    let (tx, out) = mpsc::channel::<Bytes>(256);
    let timeout = query.timeout_seconds.map(Duration::from_secs);
    tokio::spawn(async move {
        let work = pump(store, filter, rx, initial, tx, wants_table);
        match timeout {
            Some(t) => {
                let _ = tokio::time::timeout(t, work).await;
            }
            None => work.await,
        }
    });
    let stream = futures_util::stream::unfold(out, |mut out| async move {
        out.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), out))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed());
    *resp.status_mut() = StatusCode::OK;
    let ct = if wants_table {
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    } else {
        "application/json"
    };
    resp.headers_mut()
        .insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static(ct));
    Ok(resp)
}

fn encode(
    kind: EventType,
    object: &Value,
    rt: &'static crate::api::ResourceType,
    table_first: Option<&mut bool>,
) -> Bytes {
    let object = match table_first {
        Some(first) => {
            let now = k8s_openapi::jiff::Timestamp::now();
            let mut t = table::table_object(rt, std::slice::from_ref(object), now, false);
            if !*first && let Some(m) = t.as_object_mut() {
                m.insert("columnDefinitions".into(), json!([]));
            }
            *first = false;
            t["metadata"] = json!({"resourceVersion": meta::resource_version(object)});
            t
        }
        None => object.clone(),
    };
    super::json_line(&json!({"type": kind, "object": object}))
}

fn gone_event(e: ApiError) -> Bytes {
    super::json_line(&json!({"type": "ERROR", "object": e.to_status()}))
}

async fn pump(
    store: Arc<Store>,
    filter: Filter,
    mut rx: broadcast::Receiver<Arc<Change>>,
    initial: Result<(Vec<Change>, u64), StoreError>,
    tx: mpsc::Sender<Bytes>,
    wants_table: bool,
) {
    // Table streams carry the column definitions on their first event only.
    let mut first = true;
    let rt = filter.route.rt;
    let mut send = |kind: EventType, c: &Change| {
        encode(kind, &c.object, rt, wants_table.then_some(&mut first))
    };
    let mut last = match initial {
        Ok((changes, last)) => {
            for c in &changes {
                let Some(kind) = filter.event_for(c) else {
                    continue;
                };
                if tx.send(send(kind, c)).await.is_err() {
                    return;
                }
            }
            last
        }
        Err(e) => {
            let _ = tx.send(gone_event(e.into_api())).await;
            return;
        }
    };
    loop {
        let batch: Vec<Arc<Change>> = tokio::select! {
            _ = tx.closed() => return,
            got = rx.recv() => match got {
                Ok(c) => vec![c],
                Err(broadcast::error::RecvError::Closed) => return,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let s = store.clone();
                    let since = last;
                    match tokio::task::spawn_blocking(move || s.changes_since(since)).await {
                        Ok(Ok(changes)) => changes.into_iter().map(Arc::new).collect(),
                        Ok(Err(e)) => {
                            let _ = tx.send(gone_event(e.into_api())).await;
                            return;
                        }
                        Err(_) => return,
                    }
                }
            },
        };
        for c in batch {
            if c.revision <= last {
                continue;
            }
            last = c.revision;
            if let Some(kind) = filter.event_for(&c)
                && tx.send(send(kind, &c)).await.is_err()
            {
                return;
            }
        }
    }
}
