//! The image service of the API: local images as JSON objects of kind `Image`
//! (`images.berth.dev/v1`, cluster-scoped, named by their normalised reference).
//!
//! ```yaml
//! apiVersion: images.berth.dev/v1
//! kind: Image
//! metadata: {name: berth.local/busybox:latest, creationTimestamp: …}  # imported at
//! spec: {id: sha256:…, manifestDigest: sha256:…, os: linux, architecture: amd64,
//!        size: 1234, layers: [...], config: {entrypoint, cmd, env, workingDir, user}}
//! ```

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::api::ApiError;
use crate::api::error::ObjectRef;
use crate::image::{ImageError, ImageInfo, ImageStore};
use crate::server::node::{BoxFuture, ImageService};

/// The group and version of `Image` objects.
pub const API_VERSION: &str = "images.berth.dev/v1";

/// [`ImageService`] over the kubelet's image store (the API store says which images pods use).
pub struct Images(pub Arc<ImageStore>, pub Arc<crate::store::Store>);

/// An image as an API object.
pub fn image_object(info: &ImageInfo) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": "Image",
        "metadata": {
            "name": info.reference,
            "uid": info.id.as_str(),
            "creationTimestamp": info.imported_at.to_string(),
        },
        "spec": {
            "id": info.id.as_str(),
            "manifestDigest": info.manifest_digest.as_str(),
            "familiarName": info.familiar_reference(),
            "os": info.os,
            "architecture": info.architecture,
            "variant": info.variant,
            "size": info.size,
            "layers": info.layers,
            "config": info.config,
        }
    })
}

/// Maps an image-store error to the API's Status kinds (once, here).
pub fn api_error(e: ImageError) -> ApiError {
    let message = e.to_string();
    match e {
        // The store's message says how to get the image; keep it.
        ImageError::NotFound { .. } => ApiError::NotFoundPath { message },
        ImageError::InUse { reference, .. } => ApiError::Conflict {
            object: ObjectRef::new("images.berth.dev", "images", &reference),
            reason: message,
        },
        ImageError::Io { .. }
        | ImageError::Mount { .. }
        | ImageError::Unmount { .. }
        | ImageError::LayerMissing { .. }
        | ImageError::UnusablePath { .. } => ApiError::internal(message),
        _ => ApiError::bad_request(message),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImageError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(api_error),
        Err(e) => Err(ApiError::internal(format!("image task failed: {e}"))),
    }
}

impl ImageService for Images {
    fn list(&self) -> BoxFuture<Result<Value, ApiError>> {
        let store = self.0.clone();
        Box::pin(async move {
            let items: Vec<Value> = blocking(move || Ok(store.list()))
                .await?
                .iter()
                .map(image_object)
                .collect();
            Ok(json!({
                "apiVersion": API_VERSION,
                "kind": "ImageList",
                "metadata": {},
                "items": items,
            }))
        })
    }

    fn get(&self, reference: String) -> BoxFuture<Result<Value, ApiError>> {
        let store = self.0.clone();
        Box::pin(async move {
            let info = blocking(move || store.inspect(&reference)).await?;
            Ok(image_object(&info))
        })
    }

    fn remove(&self, reference: String) -> BoxFuture<Result<Value, ApiError>> {
        let store = self.0.clone();
        Box::pin(async move {
            let report = blocking(move || store.remove(&reference)).await?;
            Ok(json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "untagged": report.untagged,
                    "deleted": report.deleted.iter().map(|d| d.as_str().to_string()).collect::<Vec<_>>(),
                }
            }))
        })
    }

    fn import(
        &self,
        body: tokio::sync::mpsc::Receiver<Bytes>,
        name: Option<String>,
    ) -> BoxFuture<Result<Value, ApiError>> {
        let store = self.0.clone();
        Box::pin(async move {
            let imported = blocking(move || {
                let reader = ChannelReader {
                    rx: body,
                    current: Bytes::new(),
                };
                store.import(reader, name.as_deref())
            })
            .await?;
            Ok(Images::list_of(&imported))
        })
    }

    fn prune(&self) -> BoxFuture<Result<Value, ApiError>> {
        let store = self.0.clone();
        let api = self.1.clone();
        Box::pin(async move {
            let removed = blocking(move || {
                let in_use = pod_images(&api);
                Ok(remove_unused(&store, &in_use, &Default::default(), || true))
            })
            .await?;
            Ok(json!({"apiVersion": API_VERSION, "kind": "ImagePruneReport", "removed": removed}))
        })
    }

    fn pull(
        &self,
        reference: String,
        progress: Option<tokio::sync::mpsc::Sender<Value>>,
    ) -> BoxFuture<Result<Value, ApiError>> {
        let store = self.0.clone();
        Box::pin(async move {
            let tracker = crate::image::Tracker::default();
            let watched = tracker.clone();
            let mut pull = tokio::task::spawn_blocking(move || {
                store.pull_tracked(&reference, &Default::default(), tracker)
            });
            let mut last = None;
            let mut tick = tokio::time::interval(PROGRESS_PERIOD);
            let pulled = loop {
                tokio::select! {
                    r = &mut pull => break r,
                    _ = tick.tick(), if progress.is_some() => {
                        let now = snapshot(&watched);
                        if now != last && let (Some(tx), Some(p)) = (&progress, &now) {
                            // A client that went away does not stop the pull.
                            let _ = tx.send(progress_object(p)).await;
                            last = now;
                        }
                    }
                }
            };
            let pulled = match pulled {
                Ok(r) => r.map_err(api_error)?,
                Err(e) => return Err(ApiError::internal(format!("image task failed: {e}"))),
            };
            if let (Some(tx), Some(p)) = (&progress, snapshot(&watched)) {
                let _ = tx.send(progress_object(&p)).await;
            }
            Ok(Images::list_of(&pulled))
        })
    }

    fn pulls(&self) -> BoxFuture<Result<Value, ApiError>> {
        let store = self.0.clone();
        Box::pin(async move {
            let items: Vec<Value> = store.pulls().iter().map(progress_object).collect();
            Ok(json!({
                "apiVersion": API_VERSION,
                "kind": "PullProgressList",
                "metadata": {},
                "items": items,
            }))
        })
    }
}

/// How often a streamed pull reports its progress.
const PROGRESS_PERIOD: std::time::Duration = std::time::Duration::from_millis(200);

/// A copy of a tracker's progress (none if a download task panicked holding it).
fn snapshot(t: &crate::image::Tracker) -> Option<crate::image::PullProgress> {
    t.lock().ok().map(|p| p.clone())
}

/// A pull's progress as an API object.
pub fn progress_object(p: &crate::image::PullProgress) -> Value {
    let (done, total) = p.totals();
    json!({
        "apiVersion": API_VERSION,
        "kind": "PullProgress",
        "metadata": {"name": p.reference},
        "status": {
            "reference": p.reference,
            "blobs": p.blobs,
            "doneBytes": done,
            "totalBytes": total,
            "percent": p.percent(),
        }
    })
}

impl Images {
    fn list_of(imported: &[crate::image::ImageInfo]) -> Value {
        json!({
            "apiVersion": API_VERSION,
            "kind": "ImageList",
            "metadata": {},
            "items": imported.iter().map(image_object).collect::<Vec<_>>(),
        })
    }
}

/// When images are garbage-collected (Kubernetes' kubelet image GC): when the image file
/// system is more than `high_percent` used, unused images go, least recently used first,
/// until it is at most `low_percent` used.
#[derive(Debug, Clone)]
pub struct ImageGc {
    pub high_percent: u8,
    pub low_percent: u8,
    pub period: std::time::Duration,
}

impl Default for ImageGc {
    fn default() -> Self {
        ImageGc {
            high_percent: 85,
            low_percent: 80,
            period: std::time::Duration::from_secs(300),
        }
    }
}

/// How full the file system holding `path` is, in percent (as `df` counts it).
pub fn used_percent(path: &std::path::Path) -> Option<u8> {
    let st = nix::sys::statvfs::statvfs(path).ok()?;
    let used = st.blocks().saturating_sub(st.blocks_free());
    let total = used + st.blocks_available();
    (total > 0).then(|| u8::try_from(used * 100 / total).unwrap_or(100))
}

/// The normalised image references of every container of every pod.
pub fn pod_images(store: &crate::store::Store) -> std::collections::HashSet<String> {
    let Some(rt) = crate::api::registry::by_kind("v1", "Pod") else {
        return Default::default();
    };
    let pods = store.list(rt, None).map(|(p, _)| p).unwrap_or_default();
    let mut out = std::collections::HashSet::new();
    for p in &pods {
        for list in ["/spec/containers", "/spec/initContainers"] {
            for c in p
                .pointer(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(r) = c["image"]
                    .as_str()
                    .and_then(|i| crate::image::normalize(i).ok())
                {
                    out.insert(r);
                }
            }
        }
    }
    out
}

/// Removes images no pod names and no container uses (their layers are not mounted),
/// least recently used first (`last_used` by image id, else their import time), while
/// `go_on` says so. Returns the references removed.
pub fn remove_unused(
    store: &ImageStore,
    in_use: &std::collections::HashSet<String>,
    last_used: &std::collections::HashMap<String, jiff::Timestamp>,
    mut go_on: impl FnMut() -> bool,
) -> Vec<String> {
    let mut candidates: Vec<ImageInfo> = store
        .list()
        .into_iter()
        .filter(|i| !in_use.contains(&i.reference))
        .collect();
    candidates.sort_by_key(|i| {
        last_used
            .get(i.id.as_str())
            .copied()
            .unwrap_or(i.imported_at)
    });
    let mut removed = Vec::new();
    for img in candidates {
        if !go_on() {
            break;
        }
        match store.remove(&img.reference) {
            Ok(_) => removed.push(img.reference),
            Err(ImageError::InUse { .. }) => {}
            Err(e) => {
                tracing::warn!(reference = %img.reference, error = %e, "cannot remove an unused image")
            }
        }
    }
    removed
}

/// The image garbage collector: every `gc.period`, when the image file system is over the
/// high threshold, frees unused images down to the low one.
pub async fn gc_loop(
    kubelet: Arc<super::Kubelet>,
    gc: ImageGc,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(gc.period) => {}
            _ = shutdown.changed() => return,
        }
        let k = kubelet.clone();
        let gc = gc.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let root = k.images.root().to_path_buf();
            let Some(used) = used_percent(&root) else {
                return;
            };
            if used <= gc.high_percent {
                return;
            }
            tracing::info!(
                used,
                high = gc.high_percent,
                low = gc.low_percent,
                "image file system over its high threshold: removing unused images"
            );
            let last_used = k
                .image_last_used
                .lock()
                .map(|m| m.clone())
                .unwrap_or_default();
            let in_use = pod_images(&k.store);
            let removed = remove_unused(&k.images, &in_use, &last_used, || {
                used_percent(&root).is_some_and(|u| u > gc.low_percent)
            });
            for r in &removed {
                tracing::info!(reference = %r, "image garbage-collected");
            }
        })
        .await;
    }
}

/// A blocking reader over the chunks of a request body.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}
