//! The one error type of the image module.
//!
//! Every variant carries what a person needs to act on it (the reference, the path, the
//! digests) and its message says what to do next. Archive and disk problems are errors,
//! never panics: an import that fails changes nothing in the store.

use std::path::PathBuf;

/// Everything that can go wrong with local images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A file-system operation on the store, a layer or a rootfs failed.
    #[error("cannot {op} {}: {source}", .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The archive stream itself could not be read (truncated, not a tar).
    #[error(
        "cannot read the image archive: {source}; is it a tar file made by docker save or an OCI image layout?"
    )]
    ArchiveRead {
        #[source]
        source: std::io::Error,
    },

    /// The archive has neither a `manifest.json` nor an OCI `index.json` at its top.
    #[error(
        "the archive is neither a docker save archive nor an OCI image layout (it has no manifest.json or index.json at its top level); make one with docker save IMAGE -o FILE"
    )]
    NotAnImageArchive,

    /// An archive entry (outer archive or layer) would land outside its directory.
    #[error(
        "archive entry \"{entry}\" {why}; the archive is corrupt or malicious and was not imported"
    )]
    UnsafePath { entry: String, why: &'static str },

    /// A JSON document in the archive (or the store's own index) does not parse.
    #[error("cannot parse {what}: {source}")]
    BadJson {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// A JSON document is larger than any sane manifest or config.
    #[error("{what} is {size} bytes, more than the {limit} bytes allowed for image metadata")]
    MetadataTooLarge { what: String, size: u64, limit: u64 },

    /// The archive refers to a file it does not contain.
    #[error("the archive refers to {path} but does not contain it; the archive is incomplete")]
    MissingFile { path: String },

    /// A digest string is not `sha256:<64 lowercase hex>` (the only algorithm berth uses).
    #[error(
        "unsupported digest \"{digest}\" in {what}: berth supports sha256:<64 hex digits> only"
    )]
    BadDigest { digest: String, what: String },

    /// Content does not hash to the digest that names it.
    #[error(
        "digest mismatch for {what}: expected {expected}, got {actual}; the archive is corrupt or was tampered with and was not imported"
    )]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    /// Content does not have the size its descriptor says.
    #[error(
        "size mismatch for {what}: expected {expected} bytes, got {actual}; the archive is corrupt and was not imported"
    )]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },

    /// The manifest and the config disagree on the number of layers.
    #[error(
        "image {what} lists {layers} layers but its config lists {diff_ids} diff ids; the archive is corrupt"
    )]
    LayerCountMismatch {
        what: String,
        layers: usize,
        diff_ids: usize,
    },

    /// A manifest, config or layer has a media type berth cannot run.
    #[error("{what} has media type \"{media_type}\", which berth cannot use: {why}")]
    UnsupportedMediaType {
        what: String,
        media_type: String,
        why: &'static str,
    },

    /// A multi-platform index has no image for this machine.
    #[error(
        "the archive has no image for {wanted} (it has: {available}); export the image for this platform"
    )]
    NoMatchingPlatform { wanted: String, available: String },

    /// The archive names an image only by a tag (`latest`) and no repository was given.
    #[error(
        "the archive names image {manifest} only as \"{tag}\"; pass a repository name for it (berth image import --name REPOSITORY FILE)"
    )]
    BareTag { manifest: String, tag: String },

    /// The archive does not name an image at all and no name was given.
    #[error(
        "the archive does not name image {manifest}; pass a name for it (berth image import --name REPOSITORY[:TAG] FILE)"
    )]
    Unnamed { manifest: String },

    /// Unpacking one layer failed.
    #[error("cannot unpack layer {layer} at \"{entry}\": {source}")]
    Unpack {
        layer: String,
        entry: String,
        #[source]
        source: std::io::Error,
    },

    /// An image reference does not follow the reference grammar.
    #[error("invalid image reference \"{reference}\": {why}")]
    InvalidReference { reference: String, why: String },

    /// No local image matches the reference.
    #[error("image \"{reference}\" not found locally; import it with berth image import FILE")]
    NotFound { reference: String },

    /// An id or digest prefix matches more than one image.
    #[error("\"{reference}\" matches more than one image ({matches}); give more of the id")]
    Ambiguous { reference: String, matches: String },

    /// Removing the image would delete layers a mounted container rootfs uses.
    #[error(
        "image \"{reference}\" is in use by the container rootfs mounted at {}; delete the pods that use it first",
        .mountpoint.display()
    )]
    InUse {
        reference: String,
        mountpoint: PathBuf,
    },

    /// A layer of a known image is missing on disk (deleted by hand?).
    #[error(
        "layer {diff_id} of image \"{reference}\" is missing from {}; remove the image and import it again",
        .path.display()
    )]
    LayerMissing {
        reference: String,
        diff_id: String,
        path: PathBuf,
    },

    /// A path cannot be passed to overlayfs (its option syntax uses `,` and `:`).
    #[error(
        "cannot use {} in an overlay mount: paths must not contain ',' or ':'; choose a state directory without them",
        .path.display()
    )]
    UnusablePath { path: PathBuf },

    /// The overlay option string exceeds the kernel's one-page limit.
    #[error(
        "image \"{reference}\" has too many layers ({layers}) for one overlay mount: the options are {len} bytes, the kernel accepts at most {max}; flatten the image (fewer layers) or use a shorter state directory"
    )]
    TooManyLayers {
        reference: String,
        layers: usize,
        len: usize,
        max: usize,
    },

    /// mount(2) failed.
    #[error("cannot mount the rootfs at {}: {source}", .target.display())]
    Mount {
        target: PathBuf,
        #[source]
        source: nix::Error,
    },

    /// umount(2) failed.
    #[error("cannot unmount the rootfs at {}: {source}; is a process still using it?", .target.display())]
    Unmount {
        target: PathBuf,
        #[source]
        source: nix::Error,
    },

    /// Neither the container nor the image says what to run.
    #[error(
        "no command specified: the image has no entrypoint or cmd; set command (or args) in the container spec"
    )]
    NoCommand,

    /// Kubernetes' exact message for `imagePullPolicy: Never` with no local image.
    #[error("Container image \"{image}\" is not present with pull policy of Never")]
    NeverPull { image: String },

    /// A pull is needed but pulling from registries is not implemented yet.
    #[error(
        "cannot pull image \"{image}\": pulling from registries is not supported yet; import it with berth image import FILE and set imagePullPolicy: IfNotPresent or Never"
    )]
    PullUnsupported { image: String },

    /// Every endpoint of the image's registry failed (Kubernetes' `ErrImagePull`).
    #[error("failed to pull and unpack image \"{image}\": {reason}")]
    PullFailed { image: String, reason: String },

    /// `registries.yaml` is not valid.
    #[error("invalid registries configuration {}: {message}", path.display())]
    RegistriesConfig { path: PathBuf, message: String },

    /// `imagePullPolicy` is not one of Kubernetes' three values.
    #[error(
        "unsupported image pull policy \"{policy}\": supported values: \"Always\", \"IfNotPresent\", \"Never\""
    )]
    InvalidPullPolicy { policy: String },
}

impl ImageError {
    /// The reason Kubernetes shows in a container's `state.waiting.reason` for this error.
    pub fn waiting_reason(&self) -> &'static str {
        match self {
            ImageError::NeverPull { .. } => "ErrImageNeverPull",
            ImageError::PullUnsupported { .. } | ImageError::PullFailed { .. } => "ErrImagePull",
            ImageError::InvalidReference { .. } => "InvalidImageName",
            ImageError::NotFound { .. } | ImageError::Ambiguous { .. } => "ErrImagePull",
            ImageError::NoCommand => "CreateContainerError",
            _ => "CreateContainerError",
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ImageError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
