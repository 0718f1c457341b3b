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

/// [`ImageService`] over the kubelet's image store.
pub struct Images(pub Arc<ImageStore>);

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

    fn pull(&self, reference: String) -> BoxFuture<Result<Value, ApiError>> {
        let store = self.0.clone();
        Box::pin(async move {
            let pulled = blocking(move || store.pull(&reference)).await?;
            Ok(Images::list_of(&pulled))
        })
    }
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
