//! The image store: blobs, layer snapshots and the index of references.
//!
//! Invariants:
//! - `images.json` is the source of truth. It is replaced atomically (temp file, fsync,
//!   rename, fsync of the directory) and only after every blob and layer it names is in
//!   place and flushed (`syncfs`). Anything under `blobs/` or `layers/` it does not name is
//!   garbage, deleted after each change and at [`ImageStore::open`], so a crash at any point
//!   leaves at worst garbage, never an image with missing parts.
//! - A blob file is only ever created by renaming a staged file whose sha256 was computed
//!   while it was written; a layer directory only by renaming a temporary directory whose
//!   diff id was verified while it was unpacked. So anything found under its digest's name
//!   is whole and correct.
//! - A layer directory is deleted by first renaming it into `tmp/`, so a half-deleted layer
//!   never sits under its real name.
//! - One writer at a time (`ops` mutex): import, remove. Readers (`list`, `resolve`) take
//!   only the short `index` lock, so a long import never blocks the kubelet.
//! - Every method does blocking file-system work: async callers use `spawn_blocking`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::archive::StagedArchive;
use super::digest::Digest;
use super::error::ImageError;
use super::import::{PendingImage, read_images};
use super::layer::unpack_layer;
use super::pull::pull_decision;
use super::reference::Reference;
use super::registry::{PullProgress, Tracker};
use super::rootfs::{RootFs, mount_overlay, overlay_mounts};
use super::spec::{ImageConfig, ImageInfo, LayerInfo};

const INDEX_FILE: &str = "images.json";
const INDEX_VERSION: u32 = 1;
const BLOBS_DIR: &str = "blobs/sha256";
const LAYERS_DIR: &str = "layers/sha256";
const TMP_DIR: &str = "tmp";
const PARTIAL_DIR: &str = "partial";
/// The registry domain of images that exist only on this node (imported, never pulled).
pub const LOCAL_DOMAIN: &str = "berth.local";
/// Id prefixes shorter than this are not looked up (too likely to match by accident).
const MIN_ID_PREFIX: usize = 3;

/// The on-disk form of `images.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct IndexFile {
    version: u32,
    images: Vec<ImageInfo>,
}

/// What [`ImageStore::remove`] did, in `docker rmi`'s terms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoveReport {
    /// References removed.
    pub untagged: Vec<String>,
    /// Blobs and layer snapshots deleted because no image uses them any more.
    pub deleted: Vec<Digest>,
}

/// The local image store under one directory (normally `<state-dir>/images`).
#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
    /// Serialises writers (import, remove) against each other.
    ops: Mutex<()>,
    /// The index, sorted by reference; the in-memory copy of `images.json`.
    index: Mutex<Vec<ImageInfo>>,
    /// `registries.yaml` (mirrors, credentials, CAs), read at each pull.
    registries_file: Option<PathBuf>,
    /// The registry hosts pulls may reach; empty: any.
    pull_registries: Vec<String>,
    /// The pulls under way, by a sequence number (the same image may be pulled twice at once).
    pulls: Mutex<BTreeMap<u64, Tracker>>,
    next_pull: AtomicU64,
}

impl ImageStore {
    /// Opens (creating if needed) the store at `dir`, clears what an interrupted import or
    /// removal left behind, and deletes blobs and layers no image names.
    pub fn open(dir: &Path) -> Result<ImageStore, ImageError> {
        for sub in [BLOBS_DIR, LAYERS_DIR, TMP_DIR] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(|e| ImageError::io("create directory", &p, e))?;
        }
        // Absolute and free of symlinks: layer paths go into overlay mount options, and
        // mountinfo (which says which layers are in use) shows them as given.
        let dir = &fs::canonicalize(dir).map_err(|e| ImageError::io("resolve", dir, e))?;
        let tmp = dir.join(TMP_DIR);
        for entry in read_dir(&tmp)? {
            remove_path(&entry)?;
        }
        let index_path = dir.join(INDEX_FILE);
        let images = match fs::read(&index_path) {
            Ok(bytes) => {
                let f: IndexFile =
                    serde_json::from_slice(&bytes).map_err(|source| ImageError::BadJson {
                        what: index_path.display().to_string(),
                        source,
                    })?;
                f.images
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(ImageError::io("read", &index_path, e)),
        };
        let store = ImageStore {
            root: dir.to_path_buf(),
            ops: Mutex::new(()),
            index: Mutex::new(images),
            registries_file: None,
            pull_registries: Vec::new(),
            pulls: Mutex::new(BTreeMap::new()),
            next_pull: AtomicU64::new(0),
        };
        let images = store.images();
        store.collect_garbage(&images)?;
        Ok(store)
    }

    /// Reads mirrors, credentials and CAs for pulls from `path` (k3s' `registries.yaml`).
    pub fn with_registries_file(mut self, path: PathBuf) -> ImageStore {
        self.registries_file = Some(path);
        self
    }

    /// Limits pulls to these registry hosts (any port); empty: any registry.
    pub fn with_pull_registries(mut self, hosts: Vec<String>) -> ImageStore {
        self.pull_registries = hosts;
        self
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Imports every image of a `docker save` or OCI layout archive read from `reader`.
    /// `name` (`repo` or `repo:tag`) names images the archive names only by a tag or not at
    /// all. A reference that already exists is moved to the new image. Nothing changes
    /// unless every digest checks out.
    pub fn import(
        &self,
        reader: impl Read,
        name: Option<&str>,
    ) -> Result<Vec<ImageInfo>, ImageError> {
        let _ops = lock(&self.ops);
        let staging = TempDir::create(&self.root.join(TMP_DIR), "import")?;
        let archive = StagedArchive::stage(reader, staging.path())?;
        self.import_staged(&staging, &archive, name)
    }

    /// Pulls `reference` from its registry (see [`super::registry`]) with the pod's
    /// credentials, then brings it in exactly as an import does. Blobs of an interrupted
    /// pull are kept in `partial/` and resumed by the next one.
    pub fn pull_with(
        &self,
        reference: &str,
        auth: &super::registry::PullAuth,
    ) -> Result<Vec<ImageInfo>, ImageError> {
        self.pull_tracked(reference, auth, Tracker::default())
    }

    /// The pulls under way, each with its progress.
    pub fn pulls(&self) -> Vec<PullProgress> {
        lock(&self.pulls)
            .values()
            .filter_map(|t| t.lock().ok().map(|p| p.clone()))
            .collect()
    }

    /// The registries file's settings (none when there is no file).
    fn registries(&self) -> Result<super::registry::Registries, ImageError> {
        match &self.registries_file {
            Some(p) => super::registry::Registries::load(p),
            None => Ok(super::registry::Registries::default()),
        }
    }

    /// A runtime for one registry conversation (the store is called from blocking threads).
    fn runtime(&self) -> Result<tokio::runtime::Runtime, ImageError> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ImageError::io("start a runtime for", &self.root, e))
    }

    /// The digest `reference`'s tag names in its registry now (nothing is pulled).
    pub fn resolve_digest(
        &self,
        reference: &str,
        auth: &super::registry::PullAuth,
    ) -> Result<Digest, ImageError> {
        let r = Reference::parse(reference)?;
        let registries = self.registries()?;
        self.runtime()?.block_on(super::registry::resolve_digest(
            &r,
            &registries,
            auth,
            &self.pull_registries,
        ))
    }

    /// [`ImageStore::pull_with`], reporting progress into `tracker` (listed by
    /// [`ImageStore::pulls`] while the pull runs).
    pub fn pull_tracked(
        &self,
        reference: &str,
        auth: &super::registry::PullAuth,
        tracker: Tracker,
    ) -> Result<Vec<ImageInfo>, ImageError> {
        let r = Reference::parse(reference)?;
        if let Ok(mut p) = tracker.lock() {
            p.reference = r.to_string();
        }
        let seq = self.next_pull.fetch_add(1, Ordering::Relaxed);
        lock(&self.pulls).insert(seq, tracker.clone());
        let result = self.pull_tracked_inner(&r, auth, &tracker);
        lock(&self.pulls).remove(&seq);
        result
    }

    fn pull_tracked_inner(
        &self,
        r: &Reference,
        auth: &super::registry::PullAuth,
        tracker: &Tracker,
    ) -> Result<Vec<ImageInfo>, ImageError> {
        let registries = self.registries()?;
        let staging = TempDir::create(&self.root.join(TMP_DIR), "pull")?;
        let partial = self.root.join(PARTIAL_DIR);
        let fetched = self.runtime()?.block_on(super::registry::fetch(
            r,
            &registries,
            auth,
            staging.path(),
            &partial,
            &self.root.join(BLOBS_DIR),
            &self.pull_registries,
            tracker,
        ))?;
        let mut archive = StagedArchive::default();
        for (name, path) in &fetched.files {
            archive.add_file(name, path)?;
        }
        archive.add_bytes_file(
            "oci-layout",
            staging.path(),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        let _ops = lock(&self.ops);
        let infos = self.import_staged(&staging, &archive, None)?;
        for i in &infos {
            tracing::info!(reference = %i.reference, id = %i.id, "image pulled");
        }
        Ok(infos)
    }

    fn import_staged(
        &self,
        staging: &TempDir,
        archive: &StagedArchive,
        name: Option<&str>,
    ) -> Result<Vec<ImageInfo>, ImageError> {
        let pending = read_images(archive, staging.path(), name)?;
        let known = self.images();

        // Unpack and verify every layer the store does not already hold verified. A layer
        // is skipped only when the index already pairs this very blob with this diff id:
        // then the blob was verified and unpacked before. Any other blob is unpacked, so
        // the claim "this blob has that diff id" is always checked once.
        let mut verified: BTreeSet<(Digest, Digest)> = BTreeSet::new();
        let mut unpacked: HashMap<Digest, PathBuf> = HashMap::new();
        let mut sizes: HashMap<Digest, u64> = HashMap::new();
        for img in &pending {
            for (i, layer) in img.layers.iter().enumerate() {
                let pair = (layer.blob.digest.clone(), layer.diff_id.clone());
                if verified.contains(&pair) {
                    continue;
                }
                if let Some(size) = known_layer(&known, &pair)
                    && self.layer_dir(&layer.diff_id).is_dir()
                {
                    sizes.insert(layer.diff_id.clone(), size);
                    verified.insert(pair);
                    continue;
                }
                let dst = staging.path().join(format!("layer-{}", verified.len()));
                fs::create_dir(&dst).map_err(|e| ImageError::io("create directory", &dst, e))?;
                let what = format!(
                    "{} (layer {} of {})",
                    layer.blob.digest,
                    i + 1,
                    describe(img)
                );
                let got = unpack_layer(&layer.blob.path, &dst, &what)?;
                if got.diff_id != layer.diff_id {
                    return Err(ImageError::DigestMismatch {
                        what: format!("the uncompressed content of layer {what}"),
                        expected: layer.diff_id.to_string(),
                        actual: got.diff_id.to_string(),
                    });
                }
                sizes.insert(layer.diff_id.clone(), got.unpacked_size);
                if !self.layer_dir(&layer.diff_id).exists() {
                    unpacked.entry(layer.diff_id.clone()).or_insert(dst);
                }
                verified.insert(pair);
            }
        }

        // Everything verified: move blobs and layers into place. Should that fail (a full
        // disk), what was moved is garbage to the unchanged index: clear it now.
        if let Err(e) = self.commit(&pending, &unpacked) {
            if let Err(gc) = self.collect_garbage(&known) {
                tracing::warn!(error = %gc, "cannot clear a failed import; cleared at next start");
            }
            return Err(e);
        }

        let now = jiff::Timestamp::now();
        let mut infos = Vec::new();
        for img in &pending {
            for r in &img.references {
                infos.push(image_info(img, r, &sizes, now));
            }
        }
        let mut images = self.images();
        images.retain(|i| !infos.iter().any(|n| n.reference == i.reference));
        images.extend(infos.iter().cloned());
        images.sort_by(|a, b| a.reference.cmp(&b.reference));
        self.write_index(&images)?;
        *lock(&self.index) = images.clone();
        for i in &infos {
            tracing::info!(reference = %i.reference, id = %i.id, "image imported");
        }
        // Images that lost their reference to this import may have left garbage.
        self.collect_garbage(&images)?;
        Ok(infos)
    }

    /// All local images, one entry per reference, sorted by reference.
    pub fn list(&self) -> Vec<ImageInfo> {
        self.images()
    }

    /// The image a user's reference names: `busybox`, `busybox:latest`, the full form,
    /// `name@sha256:…`, or a prefix of the image id or manifest digest. `None` if there
    /// is none (or the reference is invalid, or an id prefix is ambiguous).
    pub fn resolve(&self, reference: &str) -> Option<ImageInfo> {
        let images = self.images();
        match lookup(&images, reference) {
            Ok(Match::Reference(i)) => Some(i.clone()),
            Ok(Match::Id(v)) => v.first().map(|i| (*i).clone()),
            Err(_) => None,
        }
    }

    /// Like [`ImageStore::resolve`], with an error saying why nothing was found.
    pub fn inspect(&self, reference: &str) -> Result<ImageInfo, ImageError> {
        let images = self.images();
        match lookup(&images, reference)? {
            Match::Reference(i) => Ok(i.clone()),
            Match::Id(v) => v
                .first()
                .map(|i| (*i).clone())
                .ok_or_else(|| ImageError::NotFound {
                    reference: reference.to_string(),
                }),
        }
    }

    /// Removes a reference; given an image id (or digest) instead, removes every reference
    /// to that image. Blobs and layers no remaining image uses are deleted. Refused, with
    /// nothing changed, while a mounted container rootfs uses a layer that would go.
    pub fn remove(&self, reference: &str) -> Result<RemoveReport, ImageError> {
        let _ops = lock(&self.ops);
        let images = self.images();
        let targets: Vec<String> = match lookup(&images, reference)? {
            Match::Reference(i) => vec![i.reference.clone()],
            Match::Id(v) => v.iter().map(|i| i.reference.clone()).collect(),
        };
        let remaining: Vec<ImageInfo> = images
            .iter()
            .filter(|i| !targets.contains(&i.reference))
            .cloned()
            .collect();
        let doomed = self.unused_layer_dirs(&remaining)?;
        for m in overlay_mounts()? {
            if m.lowerdirs.iter().any(|l| doomed.contains(l)) {
                return Err(ImageError::InUse {
                    reference: reference.to_string(),
                    mountpoint: m.mountpoint,
                });
            }
        }
        self.write_index(&remaining)?;
        *lock(&self.index) = remaining.clone();
        let deleted = self.collect_garbage(&remaining)?;
        for r in &targets {
            tracing::info!(reference = %r, "image removed");
        }
        Ok(RemoveReport {
            untagged: targets,
            deleted,
        })
    }

    /// Mounts the rootfs of a container of `image` at `container_dir/rootfs` (see
    /// [`super::rootfs`]). Reuses an identical mount already there.
    pub fn mount_rootfs(
        &self,
        image: &ImageInfo,
        container_dir: &Path,
    ) -> Result<RootFs, ImageError> {
        let mut lowers = Vec::with_capacity(image.layers.len());
        // overlayfs lists the top layer first; images list the base first.
        for l in image.layers.iter().rev() {
            let dir = self.layer_dir(&l.diff_id);
            if !dir.is_dir() {
                return Err(ImageError::LayerMissing {
                    reference: image.reference.clone(),
                    diff_id: l.diff_id.to_string(),
                    path: dir,
                });
            }
            lowers.push(dir);
        }
        mount_overlay(&lowers, container_dir, &image.reference)
    }

    /// Pulls an image from its registry anonymously (or with `registries.yaml`'s credentials).
    pub fn pull(&self, reference: &str) -> Result<Vec<ImageInfo>, ImageError> {
        self.pull_with(reference, &super::registry::PullAuth::default())
    }

    /// The kubelet's image step for one container: applies the pull policy (empty means
    /// Kubernetes' default) and returns the local image to run.
    pub fn ensure(
        &self,
        image: &str,
        policy: &str,
        auth: &super::registry::PullAuth,
    ) -> Result<ImageInfo, ImageError> {
        let r = Reference::parse(image)?;
        let present = self.resolve(image);
        if r.domain() == LOCAL_DOMAIN {
            // Images of the local domain exist only where they were imported: there is no
            // registry to pull them from, so the local copy is always the current one.
            pull_decision(policy, image, true)?;
            return present.ok_or_else(|| ImageError::NotFound {
                reference: image.to_string(),
            });
        }
        if pull_decision(policy, image, present.is_some())? {
            self.pull_with(image, auth)?;
            return self.inspect(image);
        }
        present.ok_or_else(|| ImageError::NotFound {
            reference: image.to_string(),
        })
    }

    /// Where a blob lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(BLOBS_DIR).join(digest.hex())
    }

    /// Where a layer's unpacked snapshot lives (whether or not it exists).
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join(LAYERS_DIR).join(diff_id.hex())
    }

    fn images(&self) -> Vec<ImageInfo> {
        lock(&self.index).clone()
    }

    /// Moves verified blobs and unpacked layers under their digests and flushes them.
    fn commit(
        &self,
        pending: &[PendingImage],
        unpacked: &HashMap<Digest, PathBuf>,
    ) -> Result<(), ImageError> {
        for img in pending {
            self.commit_blob(&img.manifest_file.path, &img.manifest_digest)?;
            self.commit_blob(&img.config_file.path, &img.config_digest)?;
            for layer in &img.layers {
                self.commit_blob(&layer.blob.path, &layer.blob.digest)?;
            }
        }
        for (diff_id, dir) in unpacked {
            let target = self.layer_dir(diff_id);
            if !target.exists() {
                fs::rename(dir, &target)
                    .map_err(|e| ImageError::io("move layer to", &target, e))?;
            }
        }
        self.sync()
    }

    /// Moves a verified staged file to its blob path (keeping an existing copy).
    fn commit_blob(&self, staged: &Path, digest: &Digest) -> Result<(), ImageError> {
        let target = self.blob_path(digest);
        if target.exists() {
            return Ok(());
        }
        // A staged file may back two names (docker save links duplicate layers); once moved,
        // the second name finds the blob in place above.
        fs::rename(staged, &target).map_err(|e| ImageError::io("move blob to", &target, e))
    }

    /// Flushes everything written to the store's file system before the index names it.
    fn sync(&self) -> Result<(), ImageError> {
        let dir = fs::File::open(&self.root).map_err(|e| ImageError::io("open", &self.root, e))?;
        nix::unistd::syncfs(&dir).map_err(|e| ImageError::io("sync", &self.root, e.into()))
    }

    fn write_index(&self, images: &[ImageInfo]) -> Result<(), ImageError> {
        let path = self.root.join(INDEX_FILE);
        let tmp = self.root.join(format!("{INDEX_FILE}.tmp"));
        let file = IndexFile {
            version: INDEX_VERSION,
            images: images.to_vec(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|source| ImageError::BadJson {
            what: path.display().to_string(),
            source,
        })?;
        let mut f = fs::File::create(&tmp).map_err(|e| ImageError::io("create", &tmp, e))?;
        f.write_all(&bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| ImageError::io("write", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| ImageError::io("replace", &path, e))?;
        fs::File::open(&self.root)
            .and_then(|d| d.sync_all())
            .map_err(|e| ImageError::io("sync", &self.root, e))
    }

    /// Layer directories on disk that no image in `images` uses.
    fn unused_layer_dirs(&self, images: &[ImageInfo]) -> Result<Vec<PathBuf>, ImageError> {
        let (_, keep_layers) = in_use(images);
        let dir = self.root.join(LAYERS_DIR);
        Ok(list_unused(&dir, &keep_layers)?
            .into_iter()
            .map(|n| dir.join(n))
            .collect())
    }

    /// Deletes blobs and layers no image in `images` uses, except layers a mount still uses.
    /// Returns the digests deleted.
    fn collect_garbage(&self, images: &[ImageInfo]) -> Result<Vec<Digest>, ImageError> {
        let (keep_blobs, keep_layers) = in_use(images);
        let mounted: Vec<PathBuf> = overlay_mounts()?
            .into_iter()
            .flat_map(|m| m.lowerdirs)
            .collect();
        let mut deleted = Vec::new();
        for name in list_unused(&self.root.join(BLOBS_DIR), &keep_blobs)? {
            let p = self.root.join(BLOBS_DIR).join(&name);
            remove_path(&p)?;
            if let Ok(d) = Digest::parse(&format!("sha256:{name}")) {
                deleted.push(d);
            }
        }
        for name in list_unused(&self.root.join(LAYERS_DIR), &keep_layers)? {
            let p = self.root.join(LAYERS_DIR).join(&name);
            if mounted.contains(&p) {
                tracing::warn!(layer = %p.display(), "unused layer is still mounted; kept");
                continue;
            }
            // Rename first: a half-deleted layer must never sit under its digest.
            let trash = self
                .root
                .join(TMP_DIR)
                .join(format!("delete-{}", uuid::Uuid::new_v4().simple()));
            fs::rename(&p, &trash).map_err(|e| ImageError::io("move away", &p, e))?;
            remove_path(&trash)?;
            if let Ok(d) = Digest::parse(&format!("sha256:{name}")) {
                deleted.push(d);
            }
        }
        Ok(deleted)
    }
}

/// How a user's reference matched.
enum Match<'a> {
    /// By name (tag or digest reference): exactly this entry.
    Reference(&'a ImageInfo),
    /// By id or digest prefix: every reference to that one image.
    Id(Vec<&'a ImageInfo>),
}

fn lookup<'a>(images: &'a [ImageInfo], input: &str) -> Result<Match<'a>, ImageError> {
    let not_found = || ImageError::NotFound {
        reference: input.to_string(),
    };
    let parsed = Reference::parse(input);
    if let Ok(r) = &parsed {
        let full = r.to_string();
        if let Some(i) = images.iter().find(|i| i.reference == full) {
            return Ok(Match::Reference(i));
        }
        if let Some(d) = r.digest() {
            // `name@sha256:…` finds the image with that manifest under any tag of the name.
            let found = images.iter().find(|i| {
                Reference::parse(&i.reference).is_ok_and(|ir| {
                    ir.repository() == r.repository()
                        && (r.tag().is_none() || ir.tag() == r.tag())
                        && (&i.manifest_digest == d || ir.digest() == Some(d))
                })
            });
            if let Some(i) = found {
                return Ok(Match::Reference(i));
            }
        }
    }
    let hex = input.strip_prefix("sha256:").unwrap_or(input);
    let is_hex = hex.len() >= MIN_ID_PREFIX
        && hex.len() <= 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !is_hex {
        return match parsed {
            Ok(_) => Err(not_found()),
            Err(e) => Err(e),
        };
    }
    let hits: Vec<&ImageInfo> = images
        .iter()
        .filter(|i| i.id.hex().starts_with(hex) || i.manifest_digest.hex().starts_with(hex))
        .collect();
    let ids: BTreeSet<&Digest> = hits.iter().map(|i| &i.id).collect();
    match ids.len() {
        0 => Err(not_found()),
        1 => {
            let id = hits[0].id.clone();
            Ok(Match::Id(images.iter().filter(|i| i.id == id).collect()))
        }
        _ => Err(ImageError::Ambiguous {
            reference: input.to_string(),
            matches: ids.iter().map(|d| d.short()).collect::<Vec<_>>().join(", "),
        }),
    }
}

fn image_info(
    img: &PendingImage,
    reference: &Reference,
    sizes: &HashMap<Digest, u64>,
    now: jiff::Timestamp,
) -> ImageInfo {
    let layers: Vec<LayerInfo> = img
        .layers
        .iter()
        .map(|l| LayerInfo {
            digest: l.blob.digest.clone(),
            diff_id: l.diff_id.clone(),
            media_type: l.media_type.clone(),
            size: l.blob.size,
            unpacked_size: sizes.get(&l.diff_id).copied().unwrap_or(0),
        })
        .collect();
    ImageInfo {
        reference: reference.to_string(),
        id: img.config_digest.clone(),
        manifest_digest: img.manifest_digest.clone(),
        os: img.config.os.clone(),
        architecture: img.config.architecture.clone(),
        variant: img.config.variant.clone().filter(|v| !v.is_empty()),
        size: layers.iter().map(|l| l.unpacked_size).sum(),
        layers,
        config: img
            .config
            .config
            .clone()
            .map(ImageConfig::from)
            .unwrap_or_default(),
        imported_at: now,
    }
}

fn describe(img: &PendingImage) -> String {
    img.references
        .first()
        .map(|r| r.familiar())
        .unwrap_or_else(|| img.manifest_digest.to_string())
}

/// The unpacked size of a layer the index already pairs with this blob, if any.
fn known_layer(images: &[ImageInfo], (blob, diff_id): &(Digest, Digest)) -> Option<u64> {
    images
        .iter()
        .flat_map(|i| &i.layers)
        .find(|l| &l.digest == blob && &l.diff_id == diff_id)
        .map(|l| l.unpacked_size)
}

/// The blob and layer file names (hex digests) that `images` use.
fn in_use(images: &[ImageInfo]) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut blobs = BTreeSet::new();
    let mut layers = BTreeSet::new();
    for i in images {
        blobs.insert(i.manifest_digest.hex().to_string());
        blobs.insert(i.id.hex().to_string());
        for l in &i.layers {
            blobs.insert(l.digest.hex().to_string());
            layers.insert(l.diff_id.hex().to_string());
        }
    }
    (blobs, layers)
}

/// Names in `dir` not in `keep`.
fn list_unused(dir: &Path, keep: &BTreeSet<String>) -> Result<Vec<String>, ImageError> {
    Ok(read_dir(dir)?
        .into_iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| !keep.contains(n))
        .collect())
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let entries = fs::read_dir(dir).map_err(|e| ImageError::io("list", dir, e))?;
    entries
        .map(|e| {
            e.map(|e| e.path())
                .map_err(|e| ImageError::io("list", dir, e))
        })
        .collect()
}

fn remove_path(p: &Path) -> Result<(), ImageError> {
    let r = match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    r.map_err(|e| ImageError::io("remove", p, e))
}

/// Locks a mutex, carrying on after a panic elsewhere: the data it guards (an index that
/// is only replaced whole, or nothing) cannot be left half-updated.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A directory under the store's `tmp/`, removed with its contents when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn create(parent: &Path, prefix: &str) -> Result<TempDir, ImageError> {
        let p = parent.join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        fs::create_dir(&p).map_err(|e| ImageError::io("create directory", &p, e))?;
        Ok(TempDir(p))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            tracing::warn!(path = %self.0.display(), error = %e, "cannot remove temporary directory");
        }
    }
}

// The daemon shares one store between its tasks.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<ImageStore>();
    shared::<ImageError>();
};
