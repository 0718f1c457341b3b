//! Reading the images out of a staged archive: format detection, references, and every
//! digest check that can be made before layers are unpacked.
//!
//! Two formats:
//! - OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`), as written by
//!   skopeo, buildah, `docker buildx --output type=oci` and Docker ≥ 25's `docker save`.
//!   Names come from the `io.containerd.image.name` annotation (a full reference) or
//!   `org.opencontainers.image.ref.name` (a full reference, or often just a tag, which needs
//!   the repository name the user passes).
//! - `docker save` (`manifest.json` listing `Config`, `RepoTags` and `Layers`, with layers as
//!   `<id>/layer.tar` or `blobs/sha256/<hex>`). There is no manifest blob, so an OCI manifest
//!   is synthesised (deterministically, so re-importing gives the same digest).
//!
//! When both are present (Docker ≥ 25) the OCI layout wins: it carries real manifests.

use std::io::Read;
use std::path::Path;

use super::archive::{StagedArchive, StagedFile, read_json_file};
use super::digest::Digest;
use super::error::ImageError;
use super::layer::Compression;
use super::reference::{DEFAULT_TAG, Reference};
use super::spec::*;

/// An image read from the archive, blobs verified, layers not yet unpacked.
#[derive(Debug)]
pub(crate) struct PendingImage {
    pub references: Vec<Reference>,
    pub manifest_digest: Digest,
    pub manifest_file: StagedFile,
    pub config_digest: Digest,
    pub config_file: StagedFile,
    pub config: ConfigFile,
    pub layers: Vec<PendingLayer>,
}

#[derive(Debug, Clone)]
pub(crate) struct PendingLayer {
    pub blob: StagedFile,
    pub media_type: String,
    /// What the config says the uncompressed layer hashes to; checked while unpacking.
    pub diff_id: Digest,
}

/// Reads every image of the archive. `name` names images the archive names only by a tag
/// or not at all; `staging` is where a synthesised manifest is written.
pub(crate) fn read_images(
    archive: &StagedArchive,
    staging: &Path,
    name: Option<&str>,
) -> Result<Vec<PendingImage>, ImageError> {
    let name = match name {
        Some(n) => {
            let r = Reference::parse_name_only(n)?;
            if r.digest().is_some() {
                return Err(ImageError::InvalidReference {
                    reference: n.to_string(),
                    why: "a name for imported images cannot contain a digest".to_string(),
                });
            }
            Some(r)
        }
        None => None,
    };
    let images = if archive.contains("index.json") {
        read_oci(archive, name.as_ref())?
    } else if archive.contains("manifest.json") {
        read_docker(archive, staging, name.as_ref())?
    } else {
        return Err(ImageError::NotAnImageArchive);
    };
    // One entry per manifest, with all its names: the same image may be listed twice.
    let mut merged: Vec<PendingImage> = Vec::new();
    for img in images {
        match merged
            .iter_mut()
            .find(|m| m.manifest_digest == img.manifest_digest)
        {
            Some(m) => {
                for r in img.references {
                    if !m.references.contains(&r) {
                        m.references.push(r);
                    }
                }
            }
            None => merged.push(img),
        }
    }
    if merged.is_empty() {
        return Err(ImageError::NotAnImageArchive);
    }
    Ok(merged)
}

fn read_oci(
    archive: &StagedArchive,
    name: Option<&Reference>,
) -> Result<Vec<PendingImage>, ImageError> {
    let index: Index = archive.read_json("index.json")?;
    let mut images = Vec::new();
    for named in &index.manifests {
        // The name is on the entry of index.json, also when that entry is itself an
        // index of platforms.
        let references = oci_references(named, name, &named.digest)?;
        let mut desc = named.clone();
        if is_index(&desc.media_type) {
            let blob = verified_blob(archive, &desc, "image index")?;
            let nested: Index = read_json_file(blob, &format!("image index {}", desc.digest))?;
            desc = pick_platform(archive, &nested)?;
        }
        images.push(read_manifest(archive, &desc, references)?);
    }
    Ok(images)
}

fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_OCI_INDEX || media_type == MEDIA_DOCKER_LIST
}

/// The references an OCI index entry gives its image.
fn oci_references(
    desc: &Descriptor,
    name: Option<&Reference>,
    manifest: &str,
) -> Result<Vec<Reference>, ImageError> {
    let ann = desc.annotations.clone().unwrap_or_default();
    if let Some(full) = ann.get(ANNOTATION_CONTAINERD_NAME) {
        return Ok(vec![Reference::parse(full)?]);
    }
    match (ann.get(ANNOTATION_REF_NAME), name) {
        (Some(r), _) if r.contains(['/', ':', '@']) => Ok(vec![Reference::parse(r)?]),
        (Some(tag), Some(name)) => Ok(vec![name.with_tag(tag)?]),
        (Some(tag), None) => Err(ImageError::BareTag {
            manifest: manifest.to_string(),
            tag: tag.clone(),
        }),
        (None, Some(name)) => Ok(vec![default_tag(name)?]),
        (None, None) => Err(ImageError::Unnamed {
            manifest: manifest.to_string(),
        }),
    }
}

fn default_tag(name: &Reference) -> Result<Reference, ImageError> {
    name.with_tag(name.tag().unwrap_or(DEFAULT_TAG))
}

/// The entry of a multi-platform index for this machine, among those the archive has.
fn pick_platform(archive: &StagedArchive, index: &Index) -> Result<Descriptor, ImageError> {
    let arch = host_architecture();
    let mut available = Vec::new();
    for d in &index.manifests {
        let p = d.platform.clone().unwrap_or(Platform {
            architecture: String::new(),
            os: String::new(),
            variant: None,
        });
        let present = Digest::parse(&d.digest)
            .map(|dg| archive.contains(&blob_path(&dg)))
            .unwrap_or(false);
        if p.os == "linux" && p.architecture == arch && present {
            return Ok(d.clone());
        }
        if !p.os.is_empty() {
            available.push(format!("{}/{}", p.os, p.architecture));
        }
    }
    Err(ImageError::NoMatchingPlatform {
        wanted: format!("linux/{arch}"),
        available: if available.is_empty() {
            "none".to_string()
        } else {
            available.join(", ")
        },
    })
}

/// Go's GOARCH name for this machine, as image platforms spell it.
pub(crate) fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// The blob a descriptor names, after checking its digest and size.
fn verified_blob<'a>(
    archive: &'a StagedArchive,
    desc: &Descriptor,
    what: &str,
) -> Result<&'a StagedFile, ImageError> {
    let digest = Digest::parse_in(&desc.digest, what)?;
    let what = format!("{what} {digest}");
    let f = archive.require(&blob_path(&digest))?;
    check_file(f, &digest, &what)?;
    if f.size != desc.size {
        return Err(ImageError::SizeMismatch {
            what,
            expected: desc.size,
            actual: f.size,
        });
    }
    Ok(f)
}

fn check_file(f: &StagedFile, expected: &Digest, what: &str) -> Result<(), ImageError> {
    if &f.digest != expected {
        return Err(ImageError::DigestMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            actual: f.digest.to_string(),
        });
    }
    Ok(())
}

/// Reads a manifest and everything it names.
fn read_manifest(
    archive: &StagedArchive,
    desc: &Descriptor,
    references: Vec<Reference>,
) -> Result<PendingImage, ImageError> {
    let manifest_file = verified_blob(archive, desc, "manifest")?.clone();
    let manifest_digest = manifest_file.digest.clone();
    let what = format!("manifest {manifest_digest}");
    let manifest: Manifest = read_json_file(&manifest_file, &what)?;
    if let Some(mt) = &manifest.media_type
        && mt != MEDIA_OCI_MANIFEST
        && mt != MEDIA_DOCKER_MANIFEST
    {
        return Err(ImageError::UnsupportedMediaType {
            what,
            media_type: mt.clone(),
            why: "it is not an image manifest",
        });
    }
    let cmt = &manifest.config.media_type;
    if cmt != MEDIA_OCI_CONFIG && cmt != MEDIA_DOCKER_CONFIG {
        return Err(ImageError::UnsupportedMediaType {
            what: format!("the config of {what}"),
            media_type: cmt.clone(),
            why: "it is not a container image (an artifact such as a helm chart?)",
        });
    }
    let config_file = verified_blob(archive, &manifest.config, "image config")?.clone();
    let config_digest = config_file.digest.clone();
    let config: ConfigFile =
        read_json_file(&config_file, &format!("image config {config_digest}"))?;
    let diff_ids = diff_ids(&config, &config_digest)?;
    if diff_ids.len() != manifest.layers.len() {
        return Err(ImageError::LayerCountMismatch {
            what,
            layers: manifest.layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let mut layers = Vec::new();
    for (l, diff_id) in manifest.layers.iter().zip(diff_ids) {
        check_layer_media_type(&l.media_type, &what)?;
        let blob = verified_blob(archive, l, "layer")?.clone();
        layers.push(PendingLayer {
            blob,
            media_type: l.media_type.clone(),
            diff_id,
        });
    }
    Ok(PendingImage {
        references,
        manifest_digest,
        manifest_file,
        config_digest,
        config_file,
        config,
        layers,
    })
}

fn diff_ids(config: &ConfigFile, config_digest: &Digest) -> Result<Vec<Digest>, ImageError> {
    let what = format!("the diff ids of image config {config_digest}");
    config
        .rootfs
        .as_ref()
        .map(|r| r.diff_ids.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|d| Digest::parse_in(d, &what))
        .collect()
}

/// Accepts the layer media types that are (possibly compressed) tars; refuses encrypted
/// layers and anything else rather than unpacking something that is not a file system.
fn check_layer_media_type(media_type: &str, what: &str) -> Result<(), ImageError> {
    let known = [
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.docker.image.rootfs.foreign.diff.tar",
    ];
    let base = media_type
        .strip_suffix("+gzip")
        .or_else(|| media_type.strip_suffix("+zstd"))
        .or_else(|| media_type.strip_suffix(".gzip"))
        .unwrap_or(media_type);
    if known.contains(&base) {
        Ok(())
    } else {
        Err(ImageError::UnsupportedMediaType {
            what: format!("a layer of {what}"),
            media_type: media_type.to_string(),
            why: "only tar layers (plain, gzip or zstd) can be unpacked",
        })
    }
}

fn read_docker(
    archive: &StagedArchive,
    staging: &Path,
    name: Option<&Reference>,
) -> Result<Vec<PendingImage>, ImageError> {
    let entries: Vec<DockerManifestEntry> = archive.read_json("manifest.json")?;
    let mut images = Vec::new();
    for (n, e) in entries.iter().enumerate() {
        let config_file = archive.require(&e.config)?.clone();
        let config_digest = config_file.digest.clone();
        // Both `<hex>.json` and `blobs/sha256/<hex>` name the config by its digest.
        if let Some(named) = digest_in_name(&e.config) {
            check_file(&config_file, &named, &format!("image config {}", e.config))?;
        }
        let config: ConfigFile =
            read_json_file(&config_file, &format!("image config {}", e.config))?;
        let diff_ids = diff_ids(&config, &config_digest)?;
        if diff_ids.len() != e.layers.len() {
            return Err(ImageError::LayerCountMismatch {
                what: format!("{} in manifest.json", e.config),
                layers: e.layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        let mut layers = Vec::new();
        let mut descriptors = Vec::new();
        for (path, diff_id) in e.layers.iter().zip(diff_ids) {
            let blob = archive.require(path)?.clone();
            if let Some(named) = digest_in_name(path) {
                check_file(&blob, &named, &format!("layer {path}"))?;
            }
            let compression = Compression::detect(&read_head(&blob)?);
            let media_type = match compression {
                Compression::None => MEDIA_OCI_LAYER,
                Compression::Gzip => MEDIA_OCI_LAYER_GZIP,
                Compression::Zstd => MEDIA_OCI_LAYER_ZSTD,
            };
            // An uncompressed layer is its own diff: check it now, before any unpacking.
            if compression == Compression::None {
                check_file(&blob, &diff_id, &format!("layer {path}"))?;
            }
            descriptors.push(Descriptor {
                media_type: media_type.to_string(),
                digest: blob.digest.to_string(),
                size: blob.size,
                annotations: None,
                platform: None,
            });
            layers.push(PendingLayer {
                blob,
                media_type: media_type.to_string(),
                diff_id,
            });
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_OCI_MANIFEST.to_string()),
            config: Descriptor {
                media_type: MEDIA_OCI_CONFIG.to_string(),
                digest: config_digest.to_string(),
                size: config_file.size,
                annotations: None,
                platform: None,
            },
            layers: descriptors,
        };
        let manifest_file = write_synthesised(staging, n, &manifest)?;
        let references = match e.repo_tags.as_deref().unwrap_or_default() {
            [] => match name {
                Some(name) => vec![default_tag(name)?],
                None => {
                    return Err(ImageError::Unnamed {
                        manifest: config_digest.to_string(),
                    });
                }
            },
            tags => tags
                .iter()
                .map(|t| Reference::parse(t))
                .collect::<Result<_, _>>()?,
        };
        images.push(PendingImage {
            references,
            manifest_digest: manifest_file.digest.clone(),
            manifest_file,
            config_digest,
            config_file,
            config,
            layers,
        });
    }
    Ok(images)
}

/// `abc…64.json`, `abc…64/layer.tar` is not a digest name but `blobs/sha256/abc…64` and
/// `abc…64.json` are.
fn digest_in_name(path: &str) -> Option<Digest> {
    let file = path.rsplit('/').next()?;
    let hex = file.strip_suffix(".json").unwrap_or(file);
    Digest::parse(&format!("sha256:{hex}")).ok()
}

fn read_head(f: &StagedFile) -> Result<Vec<u8>, ImageError> {
    let mut head = Vec::with_capacity(8);
    std::fs::File::open(&f.path)
        .and_then(|file| file.take(8).read_to_end(&mut head))
        .map_err(|e| ImageError::io("read", &f.path, e))?;
    Ok(head)
}

fn write_synthesised(
    staging: &Path,
    n: usize,
    manifest: &Manifest,
) -> Result<StagedFile, ImageError> {
    // Serialisation of these structs is deterministic (fixed field order, no maps with
    // unordered keys), so the same archive always yields the same manifest digest.
    let bytes = serde_json::to_vec(manifest).map_err(|source| ImageError::BadJson {
        what: "the synthesised manifest".to_string(),
        source,
    })?;
    let path = staging.join(format!("manifest-{n}.json"));
    std::fs::write(&path, &bytes).map_err(|e| ImageError::io("write", &path, e))?;
    Ok(StagedFile {
        path,
        digest: Digest::of(&bytes),
        size: bytes.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_in_docker_save_names() {
        let hex = "a".repeat(64);
        assert!(digest_in_name(&format!("{hex}.json")).is_some());
        assert!(digest_in_name(&format!("blobs/sha256/{hex}")).is_some());
        assert!(digest_in_name(&format!("{hex}/layer.tar")).is_none());
        assert!(digest_in_name("config.json").is_none());
    }

    #[test]
    fn oci_names_need_a_repository_for_bare_tags() {
        let desc = |ann: &[(&str, &str)]| Descriptor {
            media_type: MEDIA_OCI_MANIFEST.to_string(),
            digest: format!("sha256:{}", "b".repeat(64)),
            size: 1,
            annotations: Some(
                ann.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            platform: None,
        };
        let name = Reference::parse_name_only("berth.local/busybox").unwrap();
        let refs = |d: &Descriptor, n: Option<&Reference>| {
            oci_references(d, n, "m").map(|v| v.iter().map(|r| r.to_string()).collect::<Vec<_>>())
        };
        let bare = desc(&[(ANNOTATION_REF_NAME, "v1")]);
        assert_eq!(
            refs(&bare, Some(&name)).unwrap(),
            ["berth.local/busybox:v1"]
        );
        assert!(matches!(refs(&bare, None), Err(ImageError::BareTag { .. })));
        let full = desc(&[(ANNOTATION_REF_NAME, "busybox:1.36")]);
        assert_eq!(
            refs(&full, None).unwrap(),
            ["docker.io/library/busybox:1.36"]
        );
        let containerd = desc(&[
            (ANNOTATION_REF_NAME, "latest"),
            (ANNOTATION_CONTAINERD_NAME, "docker.io/library/alpine:3"),
        ]);
        assert_eq!(
            refs(&containerd, None).unwrap(),
            ["docker.io/library/alpine:3"]
        );
        let none = desc(&[]);
        assert_eq!(
            refs(&none, Some(&name)).unwrap(),
            ["berth.local/busybox:latest"]
        );
        assert!(matches!(refs(&none, None), Err(ImageError::Unnamed { .. })));
    }

    #[test]
    fn layer_media_types() {
        for ok in [
            MEDIA_OCI_LAYER,
            MEDIA_OCI_LAYER_GZIP,
            MEDIA_OCI_LAYER_ZSTD,
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ] {
            assert!(check_layer_media_type(ok, "x").is_ok(), "{ok}");
        }
        for bad in [
            "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
            "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
            "",
        ] {
            assert!(check_layer_media_type(bad, "x").is_err(), "{bad}");
        }
    }
}
