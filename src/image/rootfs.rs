//! A container's root file system: an overlayfs mount of the image's layer snapshots
//! (read-only, shared by every container of the image) under a private upper directory.
//!
//! ```text
//! <container_dir>/
//! ├── rootfs/   the overlay mount point: what the container sees as /
//! ├── upper/    the container's own changes (writes, deletions as whiteouts)
//! └── work/     overlayfs' scratch directory (same file system as upper/)
//! ```
//!
//! Mounts outlive the daemon (a container keeps running across daemon restarts), so a
//! [`RootFs`] does not unmount on drop. After a crash, [`unmount_rootfs`] finds a leftover
//! mount through `/proc/self/mountinfo` and removes it; it is idempotent.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::error::ImageError;

/// The kernel copies mount options into one page; 4096 bytes is the smallest page size
/// Linux has, so staying under it works everywhere.
const MAX_MOUNT_OPTIONS: usize = 4095;
const ROOTFS_DIR: &str = "rootfs";
const UPPER_DIR: &str = "upper";
const WORK_DIR: &str = "work";
const EMPTY_LOWER_DIR: &str = "empty";

/// A mounted container rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootFs {
    container_dir: PathBuf,
}

impl RootFs {
    /// The mount point: the container's `/`.
    pub fn path(&self) -> PathBuf {
        self.container_dir.join(ROOTFS_DIR)
    }

    /// Where the container's own changes land.
    pub fn upper_dir(&self) -> PathBuf {
        self.container_dir.join(UPPER_DIR)
    }

    pub fn container_dir(&self) -> &Path {
        &self.container_dir
    }

    /// Unmounts the rootfs (the upper directory is kept; see [`remove_rootfs`]).
    pub fn unmount(self) -> Result<(), ImageError> {
        unmount_rootfs(&self.container_dir).map(drop)
    }
}

/// Mounts an overlay of `lowers` (top layer first) at `container_dir/rootfs`. If that
/// mount point already carries exactly this overlay (a daemon restart), it is reused.
pub(crate) fn mount_overlay(
    lowers: &[PathBuf],
    container_dir: &Path,
    reference: &str,
) -> Result<RootFs, ImageError> {
    let rootfs = container_dir.join(ROOTFS_DIR);
    let upper = container_dir.join(UPPER_DIR);
    let work = container_dir.join(WORK_DIR);
    for dir in [container_dir, &rootfs, &upper, &work] {
        create_dir(dir)?;
    }
    let mut lowers = lowers.to_vec();
    if lowers.is_empty() {
        // An image without layers (FROM scratch + config only): overlayfs needs a lower.
        let empty = container_dir.join(EMPTY_LOWER_DIR);
        create_dir(&empty)?;
        lowers.push(empty);
    }
    for p in lowers.iter().chain([&upper, &work]) {
        let s = p.as_os_str().as_encoded_bytes();
        if s.contains(&b',') || s.contains(&b':') || std::str::from_utf8(s).is_err() {
            return Err(ImageError::UnusablePath { path: p.clone() });
        }
    }
    let lowerdir = lowers
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let options = format!(
        "lowerdir={lowerdir},upperdir={},workdir={}",
        upper.display(),
        work.display()
    );
    if options.len() > MAX_MOUNT_OPTIONS {
        return Err(ImageError::TooManyLayers {
            reference: reference.to_string(),
            layers: lowers.len(),
            len: options.len(),
            max: MAX_MOUNT_OPTIONS,
        });
    }
    let canonical = canonical(&rootfs)?;
    if let Some(m) = overlay_mounts()?
        .into_iter()
        .find(|m| m.mountpoint == canonical)
    {
        if m.lowerdirs == lowers {
            return Ok(RootFs {
                container_dir: container_dir.to_path_buf(),
            });
        }
        // Something else is mounted there: take it away rather than stack on top of it.
        unmount_all(&canonical)?;
    }
    mount(
        Some("overlay"),
        &rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    )
    .map_err(|source| ImageError::Mount {
        target: rootfs.clone(),
        source,
    })?;
    Ok(RootFs {
        container_dir: container_dir.to_path_buf(),
    })
}

/// Unmounts `container_dir/rootfs` if anything is mounted there. Returns whether something
/// was. Safe to call any number of times, also when the directory does not exist.
pub fn unmount_rootfs(container_dir: &Path) -> Result<bool, ImageError> {
    let rootfs = container_dir.join(ROOTFS_DIR);
    let canonical = match fs::canonicalize(&rootfs) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(ImageError::io("resolve", &rootfs, e)),
    };
    unmount_all(&canonical)
}

/// Unmounts the rootfs and deletes the container's rootfs, upper and work directories.
pub fn remove_rootfs(container_dir: &Path) -> Result<(), ImageError> {
    unmount_rootfs(container_dir)?;
    for name in [ROOTFS_DIR, UPPER_DIR, WORK_DIR, EMPTY_LOWER_DIR] {
        let p = container_dir.join(name);
        match fs::remove_dir_all(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ImageError::io("remove", &p, e)),
        }
    }
    Ok(())
}

/// Whether anything is mounted at `path`.
pub fn is_mounted(path: &Path) -> Result<bool, ImageError> {
    let canonical = match fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(ImageError::io("resolve", path, e)),
    };
    Ok(mounts()?.iter().any(|m| m.mountpoint == canonical))
}

/// Unmounts every mount stacked at `mountpoint` (normally one).
fn unmount_all(mountpoint: &Path) -> Result<bool, ImageError> {
    let mut any = false;
    while mounts()?.iter().any(|m| m.mountpoint == mountpoint) {
        umount2(mountpoint, MntFlags::empty()).map_err(|source| ImageError::Unmount {
            target: mountpoint.to_path_buf(),
            source,
        })?;
        any = true;
    }
    Ok(any)
}

fn create_dir(dir: &Path) -> Result<(), ImageError> {
    match fs::create_dir(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
            .map_err(|e| ImageError::io("chmod", dir, e)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(ImageError::io("create directory", dir, e)),
    }
}

fn canonical(p: &Path) -> Result<PathBuf, ImageError> {
    fs::canonicalize(p).map_err(|e| ImageError::io("resolve", p, e))
}

/// One line of `/proc/self/mountinfo`, the parts berth needs.
#[derive(Debug, Clone)]
pub(crate) struct MountEntry {
    pub mountpoint: PathBuf,
    pub fstype: String,
    /// For overlay mounts, the lower directories, top first.
    pub lowerdirs: Vec<PathBuf>,
}

pub(crate) fn mounts() -> Result<Vec<MountEntry>, ImageError> {
    const MOUNTINFO: &str = "/proc/self/mountinfo";
    let text = fs::read_to_string(MOUNTINFO).map_err(|e| ImageError::io("read", MOUNTINFO, e))?;
    Ok(text.lines().filter_map(parse_mountinfo_line).collect())
}

pub(crate) fn overlay_mounts() -> Result<Vec<MountEntry>, ImageError> {
    Ok(mounts()?
        .into_iter()
        .filter(|m| m.fstype == "overlay")
        .collect())
}

/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let mountpoint = unescape(left.split(' ').nth(4)?);
    let mut right = right.split(' ');
    let fstype = right.next()?.to_string();
    let _source = right.next()?;
    let options = right.next().unwrap_or("");
    let lowerdirs = if fstype == "overlay" {
        options
            .split(',')
            .filter_map(|o| {
                o.strip_prefix("lowerdir=")
                    .or_else(|| o.strip_prefix("lowerdir+="))
            })
            .flat_map(|v| v.split(':'))
            .filter(|s| !s.is_empty())
            .map(|s| PathBuf::from(unescape(s)))
            .collect()
    } else {
        Vec::new()
    };
    Some(MountEntry {
        mountpoint: PathBuf::from(mountpoint),
        fstype,
        lowerdirs,
    })
}

/// Undoes the kernel's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let (b'\\', Some(d)) = (b[i], octal) {
            let v =
                u32::from(d[0] - b'0') * 64 + u32::from(d[1] - b'0') * 8 + u32::from(d[2] - b'0');
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_overlay_mountinfo_lines() {
        let line = "45 27 0:39 / /tmp/a\\040b/rootfs rw,relatime - overlay overlay rw,lowerdir=/s/l2:/s/l1,upperdir=/c/upper,workdir=/c/work,uuid=on";
        let m = parse_mountinfo_line(line).unwrap();
        assert_eq!(m.mountpoint, Path::new("/tmp/a b/rootfs"));
        assert_eq!(m.fstype, "overlay");
        assert_eq!(
            m.lowerdirs,
            vec![PathBuf::from("/s/l2"), PathBuf::from("/s/l1")]
        );
        let plain = parse_mountinfo_line("22 1 8:1 / / rw shared:1 - ext4 /dev/vda rw").unwrap();
        assert_eq!(plain.mountpoint, Path::new("/"));
        assert!(plain.lowerdirs.is_empty());
        assert!(parse_mountinfo_line("garbage").is_none());
    }

    #[test]
    fn unmount_of_nothing_is_fine() {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .unwrap();
        assert!(!unmount_rootfs(dir.path()).unwrap());
        assert!(!unmount_rootfs(&dir.path().join("missing")).unwrap());
        remove_rootfs(dir.path()).unwrap();
    }
}
