//! Local container images: a content-addressed blob store, unpacked layer snapshots, and
//! container root file systems as overlayfs mounts over them.
//!
//! Images enter through [`ImageStore::import`] (a `docker save` archive or an OCI
//! image-layout archive); every blob is checked against its digest and every layer against
//! its diff id before the store changes. The kubelet asks [`ImageStore::ensure`] for the
//! image of a container (applying `imagePullPolicy`), builds the process from
//! [`command_for`] and [`merge_env`], and mounts the rootfs with
//! [`ImageStore::mount_rootfs`]. [`ImageStore::pull`] fetches images from registries
//! ([`registry`]) into the same pipeline as an import.
//!
//! On disk, under the store's directory (normally `<state-dir>/images`):
//!
//! ```text
//! images/
//! ├── images.json              the index: one ImageInfo per reference (reference, image id
//! │                            = config digest, manifest digest, layers, size, config,
//! │                            import time); replaced atomically; the source of truth
//! ├── blobs/sha256/<hex>       manifests, configs and layer blobs as imported (compressed
//! │                            or not), named by the sha256 of their content
//! ├── layers/sha256/<hex>/     one unpacked layer per diff id (sha256 of the uncompressed
//! │                            tar), whiteouts already in overlayfs form; read-only lower
//! │                            dirs shared by every container of every image that has it
//! ├── partial/<hex>            blobs of pulls not finished yet (resumed by the next pull)
//! └── tmp/                     staging for imports and deletions; emptied at open
//!     ├── import-<uuid>/       the archive's files under generated names, unpacked layers
//!     └── delete-<uuid>/       a layer being deleted (renamed here first)
//! ```
//!
//! A container's rootfs lives in its own directory, see [`rootfs`].
//!
//! This module depends on nothing else in the crate; only the kubelet uses it.

mod archive;
mod command;
mod digest;
mod error;
mod import;
mod layer;
mod pull;
mod reference;
pub mod registry;
pub mod rootfs;
mod spec;
mod store;

pub use command::{command_for, expand_env_refs, merge_env};
pub use digest::Digest;
pub use error::ImageError;
pub use layer::Compression;
pub use pull::{PullPolicy, pull_decision};
pub use reference::{DEFAULT_DOMAIN, DEFAULT_TAG, Reference, normalize};
pub use registry::{BlobProgress, PullAuth, PullProgress, Registries, Tracker};
pub use rootfs::{RootFs, is_mounted, remove_rootfs, unmount_rootfs};
pub use spec::{ImageConfig, ImageInfo, LayerInfo};
pub use store::{ImageStore, RemoveReport};
