//! Unpacking one layer blob into its own directory, in the form overlayfs expects.
//!
//! The blob may be a plain tar, gzip or zstd: the magic bytes decide, because media types
//! are sometimes wrong and `docker save` gives none. While the tar streams past, its sha256
//! is computed: that is the layer's diff id, checked against the image config, so one pass
//! both unpacks and verifies.
//!
//! OCI whiteouts become overlayfs whiteouts: `.wh.NAME` becomes a character device 0:0 named
//! `NAME`, and `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory. Each layer is
//! unpacked on its own (not on top of the layers below it), so a layer snapshot depends only
//! on the layer's content and is shared by every image that has it.
//!
//! Safety: entries with `..` or absolute names are refused; regular entries go through the
//! tar crate's `unpack_in`, which refuses to write through a symlink that leads outside the
//! layer; whiteouts and device nodes (which the tar crate would turn into regular files) are
//! made here, refusing any symlink in their parent path.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, makedev, mknod};

use super::digest::{Digest, HashingReader};
use super::error::ImageError;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Detects the compression from the first bytes of a blob.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// What unpacking a layer found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unpacked {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Bytes of regular-file content.
    pub unpacked_size: u64,
}

/// Unpacks the layer blob at `blob` into the existing, empty directory `dst`. `layer` names
/// the layer in errors.
pub(crate) fn unpack_layer(blob: &Path, dst: &Path, layer: &str) -> Result<Unpacked, ImageError> {
    let file = fs::File::open(blob).map_err(|e| ImageError::io("open", blob, e))?;
    let mut buffered = BufReader::with_capacity(128 * 1024, file);
    let head = buffered
        .fill_buf()
        .map_err(|e| ImageError::io("read", blob, e))?;
    let compression = Compression::detect(head);
    let unpack_err = |entry: &str, source: io::Error| ImageError::Unpack {
        layer: layer.to_string(),
        entry: entry.to_string(),
        source,
    };
    let decoder: Box<dyn Read> = match compression {
        Compression::None => Box::new(buffered),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buffered).map_err(|e| unpack_err("", e))?,
        ),
    };
    let mut hashing = HashingReader::new(decoder);
    let mut unpacked_size = 0u64;
    {
        let mut archive = tar::Archive::new(&mut hashing);
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(true);
        archive.set_preserve_mtime(true);
        archive.set_unpack_xattrs(true);
        archive.set_overwrite(true);
        let entries = archive.entries().map_err(|e| unpack_err("", e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| unpack_err("", e))?;
            let raw = entry.path_bytes().into_owned();
            let name = String::from_utf8_lossy(&raw).into_owned();
            let Some(rel) = layer_path(&raw, &name)? else {
                continue;
            };
            let kind = entry.header().entry_type();
            if kind.is_file() || kind == tar::EntryType::Continuous {
                unpacked_size += entry.header().size().unwrap_or(0);
            }
            let file_name = rel.file_name().map(OsStr::as_bytes).unwrap_or_default();
            let parent = rel.parent().unwrap_or(Path::new(""));
            if file_name == OPAQUE_MARKER.as_bytes() {
                let dir = ensure_dir(dst, parent, &name)?;
                xattr::set(&dir, OPAQUE_XATTR, b"y").map_err(|e| unpack_err(&name, e))?;
            } else if let Some(hidden) = file_name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
                // `.wh..wh.*` other than the opaque marker is aufs bookkeeping: meaningless here.
                if !hidden.is_empty() && !hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                    let dir = ensure_dir(dst, parent, &name)?;
                    whiteout(&dir.join(OsStr::from_bytes(hidden)))
                        .map_err(|e| unpack_err(&name, e))?;
                }
            } else if matches!(
                kind,
                tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo
            ) {
                let dir = ensure_dir(dst, parent, &name)?;
                let path = dir.join(rel.file_name().unwrap_or_default());
                special_file(&entry, kind, &path).map_err(|e| unpack_err(&name, e))?;
            } else {
                entry.unpack_in(dst).map_err(|e| unpack_err(&name, e))?;
            }
        }
    }
    let (diff_id, _) = hashing.finish().map_err(|e| unpack_err("", e))?;
    Ok(Unpacked {
        diff_id,
        unpacked_size,
    })
}

/// The relative path of a layer entry; `None` for the layer root (`./`).
fn layer_path(raw: &[u8], name: &str) -> Result<Option<PathBuf>, ImageError> {
    let mut rel = PathBuf::new();
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::CurDir => {}
            Component::Normal(p) => rel.push(p),
            Component::ParentDir => {
                return Err(ImageError::UnsafePath {
                    entry: name.to_string(),
                    why: "contains '..'",
                });
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(ImageError::UnsafePath {
                    entry: name.to_string(),
                    why: "is an absolute path",
                });
            }
        }
    }
    Ok((!rel.as_os_str().is_empty()).then_some(rel))
}

/// Makes sure `dst/rel` is a real directory, creating missing parts (0755). Any symlink or
/// non-directory on the way is refused, so nothing is ever made outside `dst`.
fn ensure_dir(dst: &Path, rel: &Path, entry: &str) -> Result<PathBuf, ImageError> {
    let mut cur = dst.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(ImageError::UnsafePath {
                    entry: entry.to_string(),
                    why: "lies under a symlink or a non-directory in its layer",
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&cur).map_err(|e| ImageError::io("create directory", &cur, e))?;
                fs::set_permissions(&cur, fs::Permissions::from_mode(0o755))
                    .map_err(|e| ImageError::io("chmod", &cur, e))?;
            }
            Err(e) => return Err(ImageError::io("inspect", &cur, e)),
        }
    }
    Ok(cur)
}

/// Makes the overlayfs whiteout for `path`: a character device 0:0. If this layer itself
/// has a file there, the file wins (OCI: whiteouts only hide lower layers).
fn whiteout(path: &Path) -> io::Result<()> {
    if fs::symlink_metadata(path).is_ok() {
        return Ok(());
    }
    mknod(path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))?;
    Ok(())
}

/// Creates a device node or FIFO as the entry describes, with its owner and mode. A kernel
/// that refuses device nodes (no CAP_MKNOD) gets a warning, not a failed import.
fn special_file<R: Read>(
    entry: &tar::Entry<'_, R>,
    kind: tar::EntryType,
    path: &Path,
) -> io::Result<()> {
    let h = entry.header();
    let mode = h.mode()? & 0o7777;
    let sflag = match kind {
        tar::EntryType::Char => SFlag::S_IFCHR,
        tar::EntryType::Block => SFlag::S_IFBLK,
        _ => SFlag::S_IFIFO,
    };
    let dev = makedev(
        u64::from(h.device_major()?.unwrap_or(0)),
        u64::from(h.device_minor()?.unwrap_or(0)),
    );
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path)?,
        Ok(_) => fs::remove_file(path)?,
        Err(_) => {}
    }
    if let Err(e) = mknod(path, sflag, Mode::from_bits_truncate(mode), dev) {
        if e == nix::errno::Errno::EPERM {
            tracing::warn!(path = %path.display(), "cannot create device node; skipped");
            return Ok(());
        }
        return Err(e.into());
    }
    let uid = u32::try_from(h.uid()?).unwrap_or(0);
    let gid = u32::try_from(h.gid()?).unwrap_or(0);
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    // mknod applied the umask; set the mode the layer asked for.
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    use super::*;

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h
    }

    fn add_file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
        let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    }

    fn add_dir(b: &mut tar::Builder<Vec<u8>>, path: &str) {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, path, io::empty()).unwrap();
    }

    fn add_link(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, path: &str, target: &str) {
        let mut h = header(kind, 0o777, 0);
        b.append_link(&mut h, path, target).unwrap();
    }

    /// Writes `tar` to a blob file compressed as asked and unpacks it into a fresh dir.
    fn unpack(
        tar: &[u8],
        compression: Compression,
    ) -> (tempfile::TempDir, Result<Unpacked, ImageError>) {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .unwrap();
        let blob = dir.path().join("blob");
        let data = match compression {
            Compression::None => tar.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                io::Write::write_all(&mut e, tar).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => zstd::encode_all(tar, 3).unwrap(),
        };
        fs::write(&blob, data).unwrap();
        let dst = dir.path().join("layer");
        fs::create_dir(&dst).unwrap();
        let r = unpack_layer(&blob, &dst, "test");
        (dir, r)
    }

    #[test]
    fn whiteouts_become_overlayfs_whiteouts() {
        let mut b = tar::Builder::new(Vec::new());
        add_dir(&mut b, "etc/");
        add_file(&mut b, "etc/keep", b"kept", 0o640);
        add_file(&mut b, "etc/.wh.gone", b"", 0o644);
        add_file(&mut b, "opaque/.wh..wh..opq", b"", 0o644);
        add_file(&mut b, "opaque/new", b"new", 0o644);
        add_file(&mut b, "deep/er/.wh.x", b"", 0o644);
        add_file(&mut b, ".wh..wh.plnk", b"", 0o644);
        add_link(&mut b, tar::EntryType::Symlink, "etc/link", "/etc/keep");
        add_link(&mut b, tar::EntryType::Link, "etc/hard", "etc/keep");
        let mut dev = header(tar::EntryType::Char, 0o666, 0);
        dev.set_device_major(1).unwrap();
        dev.set_device_minor(3).unwrap();
        b.append_data(&mut dev, "dev/null", io::empty()).unwrap();
        let tar = b.into_inner().unwrap();

        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let (dir, r) = unpack(&tar, compression);
            let u = r.unwrap();
            assert_eq!(u.diff_id, Digest::of(&tar), "{compression:?}");
            assert_eq!(u.unpacked_size, 7);
            let l = dir.path().join("layer");
            let gone = fs::symlink_metadata(l.join("etc/gone")).unwrap();
            assert!(gone.file_type().is_char_device());
            assert_eq!(gone.rdev(), 0);
            assert!(!l.join("etc/.wh.gone").exists());
            assert!(
                fs::symlink_metadata(l.join("deep/er/x"))
                    .unwrap()
                    .file_type()
                    .is_char_device()
            );
            assert_eq!(
                xattr::get(l.join("opaque"), OPAQUE_XATTR)
                    .unwrap()
                    .as_deref(),
                Some(&b"y"[..])
            );
            assert!(!l.join("opaque/.wh..wh..opq").exists());
            assert_eq!(fs::read(l.join("opaque/new")).unwrap(), b"new");
            assert!(!l.join(".wh..wh.plnk").exists());
            let keep = fs::metadata(l.join("etc/keep")).unwrap();
            assert_eq!(keep.mode() & 0o7777, 0o640);
            assert_eq!(keep.nlink(), 2);
            assert_eq!(
                fs::read_link(l.join("etc/link")).unwrap(),
                Path::new("/etc/keep")
            );
            let null = fs::symlink_metadata(l.join("dev/null")).unwrap();
            assert!(null.file_type().is_char_device());
            assert_eq!(null.rdev(), makedev(1, 3));
            assert_eq!(null.mode() & 0o7777, 0o666);
        }
    }

    #[test]
    fn escapes_are_refused() {
        // `..` in a name.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(tar::EntryType::Regular, 0o644, 1);
        h.as_old_mut().name[..7].copy_from_slice(b"../evil");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let (_d, r) = unpack(&b.into_inner().unwrap(), Compression::None);
        assert!(matches!(r, Err(ImageError::UnsafePath { .. })), "{r:?}");

        // An absolute name.
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(tar::EntryType::Regular, 0o644, 1);
        h.as_old_mut().name[..6].copy_from_slice(b"/etc/x");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let (_d, r) = unpack(&b.into_inner().unwrap(), Compression::None);
        assert!(matches!(r, Err(ImageError::UnsafePath { .. })), "{r:?}");

        // A symlink to outside, then a file through it.
        let outside = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .unwrap();
        let mut b = tar::Builder::new(Vec::new());
        add_link(
            &mut b,
            tar::EntryType::Symlink,
            "esc",
            outside.path().to_str().unwrap(),
        );
        add_file(&mut b, "esc/pwned", b"x", 0o644);
        let (_d, r) = unpack(&b.into_inner().unwrap(), Compression::None);
        assert!(r.is_err());
        assert!(!outside.path().join("pwned").exists());

        // A whiteout through that symlink.
        let mut b = tar::Builder::new(Vec::new());
        add_link(
            &mut b,
            tar::EntryType::Symlink,
            "esc",
            outside.path().to_str().unwrap(),
        );
        add_file(&mut b, "esc/.wh.x", b"", 0o644);
        add_file(&mut b, "esc/.wh..wh..opq", b"", 0o644);
        let (_d, r) = unpack(&b.into_inner().unwrap(), Compression::None);
        assert!(matches!(r, Err(ImageError::UnsafePath { .. })), "{r:?}");
        assert!(!outside.path().join("x").exists());
        assert!(xattr::get(outside.path(), OPAQUE_XATTR).unwrap().is_none());

        // A hard link to a file outside.
        let mut b = tar::Builder::new(Vec::new());
        add_link(
            &mut b,
            tar::EntryType::Symlink,
            "esc",
            outside.path().to_str().unwrap(),
        );
        add_link(&mut b, tar::EntryType::Link, "stolen", "esc/secret");
        fs::write(outside.path().join("secret"), b"s").unwrap();
        let (d, r) = unpack(&b.into_inner().unwrap(), Compression::None);
        assert!(r.is_err());
        assert!(!d.path().join("layer/stolen").exists());
    }

    #[test]
    fn detects_compression_by_magic() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"etc/"), Compression::None);
        assert_eq!(Compression::detect(b""), Compression::None);
    }
}
