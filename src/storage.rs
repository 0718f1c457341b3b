//! Node-local storage shared by the PersistentVolume controller and the kubelet: the
//! `local-path` StorageClass, its volumes' directories (`<stateDir>/volumes/<pv name>`),
//! and measuring how much a directory holds.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::api::ApiError;
use crate::api::registry;
use crate::store::{Store, StoreError};

/// The default StorageClass berth creates.
pub const LOCAL_PATH_CLASS: &str = "local-path";
/// Its provisioner.
pub const LOCAL_PATH_PROVISIONER: &str = "berth.io/local-path";
/// The annotation on a claim with the bytes its volume holds (measured).
pub const USED_BYTES_ANNOTATION: &str = "berth.io/used-bytes";
/// The subdirectory of the state directory holding local-path volumes.
pub const VOLUMES_DIR: &str = "volumes";

/// Creates the default StorageClass `local-path` unless it exists.
pub fn ensure_class(store: &Store) -> Result<(), StoreError> {
    let Some(rt) = registry::by_kind("storage.k8s.io/v1", "StorageClass") else {
        return Ok(());
    };
    let class = json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": LOCAL_PATH_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": LOCAL_PATH_PROVISIONER,
        "reclaimPolicy": "Delete",
        // One node: a claim can be bound as soon as it exists.
        "volumeBindingMode": "Immediate",
    });
    match store.create(rt, None, class, false) {
        Ok(_) => {
            tracing::info!(class = LOCAL_PATH_CLASS, "created storage class");
            Ok(())
        }
        Err(StoreError::Api(ApiError::AlreadyExists(_))) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Bytes used below `path` as `du` counts them (allocated blocks), staying on its file
/// system and not following symlinks; hard links count once.
pub fn disk_usage(path: &Path) -> io::Result<u64> {
    let top = fs::symlink_metadata(path)?;
    let mut seen = std::collections::HashSet::new();
    let mut total = top.blocks() * 512;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.dev() != top.dev() {
                continue;
            }
            if m.nlink() > 1 && !m.is_dir() && !seen.insert(m.ino()) {
                continue;
            }
            total += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    Ok(total)
}

/// Where the local-path volume `pv` lives.
pub fn volume_dir(volumes: &Path, pv: &str) -> PathBuf {
    volumes.join(pv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_blocks_once_per_inode() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("a"), vec![1u8; 100_000]).expect("write");
        fs::hard_link(dir.path().join("a"), dir.path().join("b")).expect("link");
        fs::create_dir(dir.path().join("sub")).expect("mkdir");
        fs::write(dir.path().join("sub/c"), vec![1u8; 50_000]).expect("write");
        let used = disk_usage(dir.path()).expect("usage");
        assert!((150_000..300_000).contains(&used), "{used}");
    }
}
