//! Recording Events as Kubernetes does: one `core/v1` Event per distinct
//! (object, type, reason, message, source); a repeat increments `count` and moves
//! `lastTimestamp` instead of writing a new object. Events expire after a retention period
//! (Kubernetes' default is one hour) so they never grow without bound.
//!
//! Controllers and the kubelet write events through the store's gate like any client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::registry::{self, ResourceType};
use crate::api::{ApiError, meta};
use crate::store::{DeleteOptions, Store, StoreError, Subresource};

/// `Normal` or `Warning`, as Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Writes events for one component (`kubelet`, `deployment-controller`, …).
#[derive(Clone)]
pub struct Recorder {
    store: Arc<Store>,
    component: String,
    host: String,
    /// Dedup key → (namespace, event name) of the event already written.
    seen: Arc<Mutex<HashMap<String, (String, String)>>>,
}

/// How many distinct events a recorder remembers for deduplication.
const SEEN_LIMIT: usize = 4096;

impl Recorder {
    pub fn new(store: Arc<Store>, component: &str, host: &str) -> Self {
        Recorder {
            store,
            component: component.to_string(),
            host: host.to_string(),
            seen: Arc::default(),
        }
    }

    /// Records an event about `object` (any stored object). Blocking: call from a blocking
    /// context. Failures are logged, never fatal: an event is a report, not state.
    pub fn record(&self, object: &Value, kind: EventType, reason: &str, message: &str) {
        if let Err(e) = self.try_record(object, kind, reason, message) {
            tracing::warn!(error = %e, reason, "cannot record event");
        }
    }

    fn try_record(
        &self,
        object: &Value,
        kind: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        let Some(rt) = registry::by_kind("v1", "Event") else {
            return Ok(());
        };
        let ns = match meta::namespace(object) {
            "" => "default".to_string(),
            ns => ns.to_string(),
        };
        let key = format!(
            "{}|{}|{}|{}|{}",
            meta::uid(object),
            kind.as_str(),
            reason,
            message,
            self.component
        );
        let now = meta::now_rfc3339();
        let existing = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some((ev_ns, name)) = existing {
            let bumped =
                self.store
                    .update_with(rt, Some(&ev_ns), &name, Subresource::Main, false, |cur| {
                        let mut ev = cur.clone();
                        let count = ev.get("count").and_then(Value::as_i64).unwrap_or(1) + 1;
                        ev["count"] = json!(count);
                        ev["lastTimestamp"] = json!(now);
                        Ok(ev)
                    });
            match bumped {
                Ok(_) => return Ok(()),
                // Expired or deleted meanwhile: write a new one.
                Err(StoreError::Api(ApiError::NotFound(_))) => {}
                Err(e) => return Err(e),
            }
        }
        let involved = involved_object(object);
        let name = format!("{}.{}", meta::name(object), unique_suffix());
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": {"component": self.component, "host": self.host},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": kind.as_str(),
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        });
        self.store.create(rt, Some(&ns), event, false)?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= SEEN_LIMIT {
            seen.clear();
        }
        seen.insert(key, (ns, name));
        Ok(())
    }
}

fn involved_object(object: &Value) -> Value {
    let mut o = json!({
        "apiVersion": meta::str_at(object, "/apiVersion"),
        "kind": meta::str_at(object, "/kind"),
        "name": meta::name(object),
        "uid": meta::uid(object),
        "resourceVersion": meta::resource_version(object),
    });
    let ns = meta::namespace(object);
    if !ns.is_empty() {
        o["namespace"] = json!(ns);
    }
    o
}

/// 16 hex digits, as Kubernetes' event names end (it uses a timestamp; uniqueness is what
/// matters).
fn unique_suffix() -> String {
    let bytes = uuid::Uuid::new_v4();
    bytes.as_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deletes events whose `lastTimestamp` is older than `ttl`; returns how many.
pub fn prune(store: &Store, ttl: Duration) -> Result<usize, StoreError> {
    let Some(rt) = registry::by_kind("v1", "Event") else {
        return Ok(0);
    };
    let (events, _) = store.list(rt, None)?;
    let now = k8s_openapi::jiff::Timestamp::now();
    let mut removed = 0;
    for ev in events {
        let last = [
            "/lastTimestamp",
            "/eventTime",
            "/metadata/creationTimestamp",
        ]
        .iter()
        .find_map(|p| meta::parse_time(meta::str_at(&ev, p)));
        let Some(last) = last else { continue };
        let age = now.duration_since(last);
        if age.as_secs() >= ttl.as_secs() as i64 {
            match store.delete(
                rt,
                Some(meta::namespace(&ev)),
                meta::name(&ev),
                &DeleteOptions::default(),
            ) {
                Ok(_) | Err(StoreError::Api(ApiError::NotFound(_))) => removed += 1,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// Prunes expired events every minute until shutdown.
pub async fn expire(
    store: Arc<Store>,
    ttl: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {
                let s = store.clone();
                match tokio::task::spawn_blocking(move || prune(&s, ttl)).await {
                    Ok(Ok(n)) if n > 0 => tracing::debug!(removed = n, "expired events"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot expire events"),
                    _ => {}
                }
            }
        }
    }
}

/// The resource type of events (always registered).
pub fn event_type() -> Option<&'static ResourceType> {
    registry::by_kind("v1", "Event")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Arc<Store>) {
        crate::store::test_store()
    }

    #[test]
    fn repeats_are_counted_not_duplicated() {
        let (_d, s) = store();
        let cm = registry::by_kind("v1", "ConfigMap").expect("cm");
        let obj = s
            .create(
                cm,
                Some("default"),
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
                false,
            )
            .expect("cm");
        let r = Recorder::new(s.clone(), "test-controller", "node1");
        r.record(
            &obj,
            EventType::Warning,
            "BackOff",
            "Back-off restarting failed container",
        );
        r.record(
            &obj,
            EventType::Warning,
            "BackOff",
            "Back-off restarting failed container",
        );
        r.record(&obj, EventType::Normal, "Started", "Started container x");
        let (events, _) = s
            .list(event_type().expect("ev"), Some("default"))
            .expect("list");
        assert_eq!(events.len(), 2);
        let backoff = events
            .iter()
            .find(|e| e["reason"] == "BackOff")
            .expect("backoff");
        assert_eq!(backoff["count"], 2);
        assert_eq!(backoff["type"], "Warning");
        assert_eq!(backoff["involvedObject"]["name"], "x");
        assert_eq!(backoff["involvedObject"]["kind"], "ConfigMap");
        assert_eq!(backoff["source"]["component"], "test-controller");
        assert!(meta::name(backoff).starts_with("x."));
    }

    #[test]
    fn old_events_expire() {
        let (_d, s) = store();
        let ev = event_type().expect("ev");
        let old = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "x.1"},
            "involvedObject": {"kind": "Pod", "name": "x", "namespace": "default"},
            "reason": "Old", "message": "m", "type": "Normal",
            "firstTimestamp": "2020-01-01T00:00:00Z", "lastTimestamp": "2020-01-01T00:00:00Z", "count": 1});
        s.create(ev, Some("default"), old, false).expect("create");
        let r = Recorder::new(s.clone(), "c", "h");
        let cm = registry::by_kind("v1", "ConfigMap").expect("cm");
        let obj = s
            .create(
                cm,
                Some("default"),
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}}),
                false,
            )
            .expect("cm");
        r.record(&obj, EventType::Normal, "New", "fresh");
        assert_eq!(prune(&s, Duration::from_secs(3600)).expect("prune"), 1);
        let (left, _) = s.list(ev, Some("default")).expect("list");
        assert_eq!(left.len(), 1);
        assert_eq!(left[0]["reason"], "New");
    }
}
