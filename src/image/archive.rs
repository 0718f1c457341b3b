//! Staging an import archive: the outer tar is streamed once into a private directory.
//!
//! An archive may come from a pipe (`berth image import -`), and neither format promises
//! an order of entries (`manifest.json` often comes last), so every regular file is copied
//! to disk while its sha256 is computed. Files are stored under flat generated names, never
//! under names from the archive, so a hostile archive cannot place anything anywhere;
//! symlinks and hard links (`docker save` links duplicate layers) are only remembered and
//! resolved by name, inside the archive.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::de::DeserializeOwned;

use super::digest::{Digest, HashingWriter};
use super::error::ImageError;

/// Manifests, configs and indexes are small; a bigger one is refused before it is parsed.
const MAX_METADATA_BYTES: u64 = 8 << 20;
/// Link chains longer than this are treated as loops.
const MAX_LINK_HOPS: usize = 16;

/// One regular file of the archive, copied into the staging directory.
#[derive(Debug, Clone)]
pub(crate) struct StagedFile {
    pub path: PathBuf,
    pub digest: Digest,
    pub size: u64,
}

/// The archive's files, by their normalised path inside the archive.
#[derive(Debug, Default)]
pub(crate) struct StagedArchive {
    files: HashMap<String, StagedFile>,
    links: HashMap<String, String>,
}

impl StagedArchive {
    /// Streams the tar from `reader` into `dir` (which must exist and be private).
    pub fn stage(reader: impl Read, dir: &Path) -> Result<StagedArchive, ImageError> {
        let mut staged = StagedArchive::default();
        let mut archive = tar::Archive::new(reader);
        let entries = archive
            .entries()
            .map_err(|source| ImageError::ArchiveRead { source })?;
        for (n, entry) in entries.enumerate() {
            let mut entry = entry.map_err(|source| ImageError::ArchiveRead { source })?;
            let raw = entry.path_bytes().into_owned();
            let Some(name) = normalise_entry(&raw)? else {
                continue;
            };
            let kind = entry.header().entry_type();
            if kind.is_file() || kind == tar::EntryType::Continuous {
                let path = dir.join(format!("f{n}"));
                let file = File::create(&path).map_err(|e| ImageError::io("create", &path, e))?;
                let mut w = HashingWriter::new(BufWriter::new(file));
                copy_to_disk(&mut entry, &mut w, &path)?;
                let (buf, digest, size) = w.finish();
                buf.into_inner()
                    .map_err(|e| ImageError::io("write", &path, e.into_error()))?
                    .flush()
                    .map_err(|e| ImageError::io("write", &path, e))?;
                staged.links.remove(&name);
                staged.files.insert(name, StagedFile { path, digest, size });
            } else if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let target = if kind.is_symlink() {
                    resolve_symlink(&name, &target)?
                } else {
                    normalise_entry(&target)?.ok_or_else(|| ImageError::UnsafePath {
                        entry: name.clone(),
                        why: "is a hard link without a target",
                    })?
                };
                staged.files.remove(&name);
                staged.links.insert(name, target);
            }
            // Directories are implied by file names; other kinds mean nothing in an image
            // archive and are skipped.
        }
        Ok(staged)
    }

    /// The file at `path` (following links inside the archive), if the archive has it.
    /// Adds a file already on disk (a pull's download) under `name`, hashing it.
    pub fn add_file(&mut self, name: &str, path: &Path) -> Result<(), ImageError> {
        let mut f = File::open(path).map_err(|e| ImageError::io("open", path, e))?;
        let mut w = HashingWriter::new(io::sink());
        io::copy(&mut f, &mut w).map_err(|e| ImageError::io("read", path, e))?;
        let (_, digest, size) = w.finish();
        self.files.insert(
            name.to_string(),
            StagedFile {
                path: path.to_path_buf(),
                digest,
                size,
            },
        );
        Ok(())
    }

    /// Adds `data` as the file `name`, written into `dir`.
    pub fn add_bytes_file(
        &mut self,
        name: &str,
        dir: &Path,
        data: &[u8],
    ) -> Result<(), ImageError> {
        let path = dir.join(format!("b-{}", self.files.len()));
        std::fs::write(&path, data).map_err(|e| ImageError::io("write", &path, e))?;
        self.add_file(name, &path)
    }

    pub fn get(&self, path: &str) -> Option<&StagedFile> {
        let mut name = normalise_entry(path.as_bytes()).ok()??;
        for _ in 0..MAX_LINK_HOPS {
            if let Some(f) = self.files.get(&name) {
                return Some(f);
            }
            name = self.links.get(&name)?.clone();
        }
        None
    }

    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// The file at `path`, or an error naming what is missing.
    pub fn require(&self, path: &str) -> Result<&StagedFile, ImageError> {
        self.get(path).ok_or_else(|| ImageError::MissingFile {
            path: path.to_string(),
        })
    }

    /// Parses the JSON document at `path`.
    pub fn read_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ImageError> {
        let f = self.require(path)?;
        read_json_file(f, path)
    }
}

/// Copies `r` to `w`, telling a failing archive read from a failing disk write.
pub(crate) fn copy_to_disk(
    r: &mut impl Read,
    w: &mut impl Write,
    path: &Path,
) -> Result<u64, ImageError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(ImageError::ArchiveRead { source }),
        };
        w.write_all(&buf[..n])
            .map_err(|e| ImageError::io("write", path, e))?;
        total += n as u64;
    }
}

/// Parses a staged JSON file, refusing oversized ones.
pub(crate) fn read_json_file<T: DeserializeOwned>(
    f: &StagedFile,
    what: &str,
) -> Result<T, ImageError> {
    let bytes = read_small(f, what)?;
    serde_json::from_slice(&bytes).map_err(|source| ImageError::BadJson {
        what: what.to_string(),
        source,
    })
}

/// Reads a staged metadata file whole, refusing oversized ones.
pub(crate) fn read_small(f: &StagedFile, what: &str) -> Result<Vec<u8>, ImageError> {
    if f.size > MAX_METADATA_BYTES {
        return Err(ImageError::MetadataTooLarge {
            what: what.to_string(),
            size: f.size,
            limit: MAX_METADATA_BYTES,
        });
    }
    std::fs::read(&f.path).map_err(|e| ImageError::io("read", &f.path, e))
}

/// `./a//b/` → `a/b`; `None` for the archive root itself; an error for paths that leave
/// the archive (`..`, absolute) or are not UTF-8 (no image archive uses such names).
fn normalise_entry(raw: &[u8]) -> Result<Option<String>, ImageError> {
    let lossy = || String::from_utf8_lossy(raw).into_owned();
    let s = std::str::from_utf8(raw).map_err(|_| ImageError::UnsafePath {
        entry: lossy(),
        why: "is not valid UTF-8",
    })?;
    let mut parts = Vec::new();
    for c in Path::new(s).components() {
        match c {
            Component::CurDir => {}
            Component::Normal(p) => parts.push(p.to_str().unwrap_or_default()),
            Component::ParentDir => {
                return Err(ImageError::UnsafePath {
                    entry: lossy(),
                    why: "contains '..'",
                });
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(ImageError::UnsafePath {
                    entry: lossy(),
                    why: "is an absolute path",
                });
            }
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// Resolves a symlink's target relative to the link's directory, refusing targets that
/// leave the archive.
fn resolve_symlink(link: &str, target: &[u8]) -> Result<String, ImageError> {
    let unsafe_link = || ImageError::UnsafePath {
        entry: link.to_string(),
        why: "is a symlink pointing outside the archive",
    };
    let target = std::str::from_utf8(target).map_err(|_| unsafe_link())?;
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for c in Path::new(target).components() {
        match c {
            Component::CurDir => {}
            Component::Normal(p) => parts.push(p.to_str().unwrap_or_default()),
            Component::ParentDir => {
                parts.pop().ok_or_else(unsafe_link)?;
            }
            Component::RootDir | Component::Prefix(_) => return Err(unsafe_link()),
        }
    }
    if parts.is_empty() {
        return Err(unsafe_link());
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_normalised_and_escapes_refused() {
        assert_eq!(
            normalise_entry(b"./blobs//sha256/ab").unwrap().as_deref(),
            Some("blobs/sha256/ab")
        );
        assert_eq!(normalise_entry(b"./").unwrap(), None);
        assert!(normalise_entry(b"../x").is_err());
        assert!(normalise_entry(b"a/../../x").is_err());
        assert!(normalise_entry(b"/etc/passwd").is_err());
    }

    #[test]
    fn symlinks_resolve_inside_the_archive_only() {
        assert_eq!(
            resolve_symlink("abc/layer.tar", b"../def/layer.tar").unwrap(),
            "def/layer.tar"
        );
        assert!(resolve_symlink("abc/layer.tar", b"../../etc/passwd").is_err());
        assert!(resolve_symlink("abc/layer.tar", b"/etc/passwd").is_err());
    }
}
