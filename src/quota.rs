//! Capacity of node-local volumes enforced with file system project quotas (ext4 and xfs
//! mounted with `prjquota`): the volume's directory gets its own project id (inherited by
//! everything made below it) and a hard block limit of the claim's size. Where the file
//! system cannot do that, [`enforce`] says why and how to enable it, so the caller can warn
//! (the capacity is then only measured). Depends on nothing internal.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// `FS_IOC_FSGETXATTR`: `_IOR('X', 31, struct fsxattr)`.
const FS_IOC_FSGETXATTR: libc::c_ulong = 0x801c_581f;
/// `FS_IOC_FSSETXATTR`: `_IOW('X', 32, struct fsxattr)`.
const FS_IOC_FSSETXATTR: libc::c_ulong = 0x401c_5820;
/// New files and directories below take the directory's project id.
const FS_XFLAG_PROJINHERIT: u32 = 0x200;
/// The project quota type of `quotactl`.
const PRJQUOTA: libc::c_int = 2;
/// Quota blocks are 1 KiB.
const QUOTA_BLOCK: u64 = 1024;

/// `struct fsxattr` of `<linux/fs.h>`.
#[repr(C)]
#[derive(Default)]
struct FsXattr {
    xflags: u32,
    extsize: u32,
    nextents: u32,
    projid: u32,
    cowextsize: u32,
    pad: [u8; 8],
}

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "cannot set project {project} on {path}: {source}; is the file system mounted with prjquota?"
    )]
    SetProject {
        path: String,
        project: u32,
        source: std::io::Error,
    },
    #[error(
        "cannot set the quota of project {project} on {path}: {source}; is the file system mounted with prjquota?"
    )]
    SetLimit {
        path: String,
        project: u32,
        source: std::io::Error,
    },
}

/// What [`enforce`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capacity {
    /// The directory is project `project`, limited to the capacity.
    Enforced { project: u32 },
    /// The file system cannot enforce it; `reason` says why and how to enable it.
    NotEnforced { reason: String },
}

/// The mount holding a path: its source, file system type and super block options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: String,
    pub source: String,
    pub fstype: String,
    pub options: String,
}

/// The mount holding `path` (the longest mount point that is a prefix of it), read from
/// `mountinfo`'s text.
pub fn mount_in(mountinfo: &str, path: &Path) -> Option<Mount> {
    let mut best: Option<Mount> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(mount_point), Some(fstype), Some(source), Some(options)) = (
            fields.get(4),
            fields.get(dash + 1),
            fields.get(dash + 2),
            fields.get(dash + 3),
        ) else {
            continue;
        };
        // mountinfo escapes spaces and the like as octal.
        let mount_point = mount_point.replace("\\040", " ");
        if path.starts_with(&mount_point)
            && best
                .as_ref()
                .is_none_or(|b| mount_point.len() >= b.mount_point.len())
        {
            best = Some(Mount {
                mount_point,
                source: source.to_string(),
                fstype: fstype.to_string(),
                options: options.to_string(),
            });
        }
    }
    best
}

/// Whether project quotas are enforced on `m`; `Err` says why not and how to enable them.
pub fn supports(m: &Mount) -> Result<(), String> {
    let opts: Vec<&str> = m.options.split(',').collect();
    let has = |o: &str| opts.contains(&o);
    match m.fstype.as_str() {
        "ext4" if has("prjquota") => Ok(()),
        "ext4" => Err(format!(
            "{} ({}) is ext4 mounted without prjquota; to enforce volume capacities, unmount it, run `tune2fs -O quota,project {}` and mount it with -o prjquota (the kernel needs CONFIG_QUOTA and CONFIG_QFMT_V2)",
            m.mount_point, m.source, m.source
        )),
        "xfs" if has("prjquota") || has("pquota") => Ok(()),
        "xfs" => Err(format!(
            "{} ({}) is xfs mounted without project quotas; to enforce volume capacities, mount it with -o prjquota (the kernel needs CONFIG_XFS_QUOTA)",
            m.mount_point, m.source
        )),
        other => Err(format!(
            "{} is {other}, which has no project quotas; to enforce volume capacities, put berth's state directory on ext4 or xfs mounted with -o prjquota",
            m.mount_point
        )),
    }
}

/// The project id for a volume directory: its inode number when that fits (unique on its
/// file system while the directory exists), else a hash of its path. Never 0 (the default
/// project every file starts in).
fn project_for(dir: &Path, ino: u64) -> u32 {
    if let Ok(p) = u32::try_from(ino)
        && p != 0
    {
        return p;
    }
    // FNV-1a over the path.
    let mut h: u32 = 0x811c_9dc5;
    for b in dir.as_os_str().as_encoded_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.max(1)
}

/// The limit in quota blocks for `bytes` (rounded up; at least one, as 0 means no limit).
fn limit_blocks(bytes: u64) -> u64 {
    bytes.div_ceil(QUOTA_BLOCK).max(1)
}

/// Limits what can be written below `dir` (a fresh volume directory) to `bytes`, when its
/// file system has project quotas; safe to call again for the same directory.
pub fn enforce(dir: &Path, bytes: u64) -> Result<Capacity, QuotaError> {
    let real = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let Some(m) = mount_in(&info, &real) else {
        return Ok(Capacity::NotEnforced {
            reason: format!("no mount holds {} in /proc/self/mountinfo", real.display()),
        });
    };
    if let Err(reason) = supports(&m) {
        return Ok(Capacity::NotEnforced { reason });
    }
    let open_err = |source| QuotaError::Open {
        path: real.display().to_string(),
        source,
    };
    let file = fs::File::open(&real).map_err(open_err)?;
    let ino = file.metadata().map_err(open_err)?.ino();
    let project = project_for(&real, ino);
    let set_err = |source| QuotaError::SetProject {
        path: real.display().to_string(),
        project,
        source,
    };
    let mut attr = FsXattr::default();
    // SAFETY: the fd is open for the call; `attr` is a `struct fsxattr` the kernel fills.
    if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FSGETXATTR, &mut attr) } != 0 {
        return Err(set_err(std::io::Error::last_os_error()));
    }
    if attr.projid != project || attr.xflags & FS_XFLAG_PROJINHERIT == 0 {
        attr.projid = project;
        attr.xflags |= FS_XFLAG_PROJINHERIT;
        // SAFETY: as above; the kernel only reads `attr`.
        if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FSSETXATTR, &attr) } != 0 {
            return Err(set_err(std::io::Error::last_os_error()));
        }
    }
    let mut q = libc::dqblk {
        dqb_bhardlimit: limit_blocks(bytes),
        dqb_bsoftlimit: limit_blocks(bytes),
        dqb_curspace: 0,
        dqb_ihardlimit: 0,
        dqb_isoftlimit: 0,
        dqb_curinodes: 0,
        dqb_btime: 0,
        dqb_itime: 0,
        dqb_valid: libc::QIF_BLIMITS,
    };
    quotactl(&file, &m, libc::Q_SETQUOTA, project, &mut q).map_err(|source| {
        QuotaError::SetLimit {
            path: real.display().to_string(),
            project,
            source,
        }
    })?;
    tracing::info!(dir = %real.display(), project, bytes, "volume capacity enforced by a project quota");
    Ok(Capacity::Enforced { project })
}

/// The bytes project quotas count below `dir`, when it is a directory [`enforce`] limited
/// (cheaper than walking it); `None` otherwise.
pub fn used(dir: &Path) -> Option<u64> {
    let real = fs::canonicalize(dir).ok()?;
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let m = mount_in(&info, &real)?;
    supports(&m).ok()?;
    let file = fs::File::open(&real).ok()?;
    let mut attr = FsXattr::default();
    // SAFETY: the fd is open for the call; `attr` is a `struct fsxattr` the kernel fills.
    if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FSGETXATTR, &mut attr) } != 0
        || attr.projid == 0
    {
        return None;
    }
    // SAFETY: all-zero is a valid `dqblk` (plain integers).
    let mut q: libc::dqblk = unsafe { std::mem::zeroed() };
    quotactl(&file, &m, libc::Q_GETQUOTA, attr.projid, &mut q).ok()?;
    Some(q.dqb_curspace)
}

/// `quotactl_fd(2)` on the file's file system (Linux 5.14), else `quotactl(2)` on the
/// mount's block device.
fn quotactl(
    file: &fs::File,
    m: &Mount,
    cmd: libc::c_int,
    project: u32,
    q: &mut libc::dqblk,
) -> std::io::Result<()> {
    let cmd = libc::QCMD(cmd, PRJQUOTA);
    let id = project as libc::c_int;
    // SAFETY: the fd is open; `q` is a `struct if_dqblk` for the kernel to read or fill.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_quotactl_fd,
            file.as_raw_fd(),
            cmd,
            id,
            q as *mut libc::dqblk,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ENOSYS) {
        return Err(err);
    }
    let dev = std::ffi::CString::new(m.source.as_str())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: `dev` is a NUL-terminated path; `q` as above.
    let rc = unsafe { libc::quotactl(cmd, dev.as_ptr(), id, (q as *mut libc::dqblk).cast()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /dev/shm rw,nosuid,nodev shared:2 - tmpfs tmpfs rw
41 22 7:0 / /srv/berth rw,relatime shared:3 - ext4 /dev/loop0 rw,prjquota
42 22 7:1 / /srv/xfs rw,relatime shared:4 - xfs /dev/loop1 rw,attr2,inode64,prjquota
43 22 7:2 / /srv/plain\\040xfs rw,relatime shared:5 - xfs /dev/loop2 rw,attr2,noquota
";

    fn at(p: &str) -> Mount {
        mount_in(MOUNTINFO, Path::new(p)).expect("a mount")
    }

    #[test]
    fn the_longest_mount_point_holds_a_path() {
        assert_eq!(at("/var/lib/berth/volumes/pvc-1").mount_point, "/");
        let m = at("/srv/berth/volumes/pvc-1");
        assert_eq!(
            (m.mount_point.as_str(), m.source.as_str(), m.fstype.as_str()),
            ("/srv/berth", "/dev/loop0", "ext4")
        );
        assert_eq!(at("/srv/plain xfs/v").source, "/dev/loop2");
        // A name that only starts like a mount point is not below it.
        assert_eq!(at("/srv/berthx/v").mount_point, "/");
    }

    #[test]
    fn only_ext4_and_xfs_with_project_quotas_enforce() {
        assert!(supports(&at("/srv/berth/v")).is_ok());
        assert!(supports(&at("/srv/xfs/v")).is_ok());
        let ext4 = supports(&at("/var/lib/berth/v")).expect_err("ext4 without prjquota");
        assert!(ext4.contains("ext4 mounted without prjquota"), "{ext4}");
        assert!(ext4.contains("tune2fs -O quota,project /dev/vda"), "{ext4}");
        let xfs = supports(&at("/srv/plain xfs/v")).expect_err("xfs without pquota");
        assert!(xfs.contains("-o prjquota"), "{xfs}");
        let tmpfs = supports(&at("/dev/shm/v")).expect_err("tmpfs");
        assert!(
            tmpfs.contains("tmpfs, which has no project quotas"),
            "{tmpfs}"
        );
    }

    #[test]
    fn project_ids_are_never_the_default_project() {
        assert_eq!(project_for(Path::new("/a"), 1234), 1234);
        let big = project_for(Path::new("/a"), u64::from(u32::MAX) + 7);
        assert_ne!(big, 0);
        assert_eq!(big, project_for(Path::new("/a"), u64::from(u32::MAX) + 9));
        assert_ne!(project_for(Path::new("/b"), 0), 0);
    }

    #[test]
    fn limits_round_up_to_whole_quota_blocks() {
        assert_eq!(limit_blocks(1024 * 1024 * 1024), 1024 * 1024);
        assert_eq!(limit_blocks(1), 1);
        assert_eq!(limit_blocks(0), 1, "0 would mean no limit at all");
    }

    #[test]
    fn a_file_system_without_project_quotas_says_so_and_changes_nothing() {
        // /dev/shm is tmpfs on Linux.
        let dir = tempfile::tempdir_in("/dev/shm").expect("tempdir in /dev/shm");
        match enforce(dir.path(), 1 << 20).expect("enforce") {
            Capacity::NotEnforced { reason } => assert!(reason.contains("tmpfs"), "{reason}"),
            other => panic!("tmpfs enforced a quota: {other:?}"),
        }
        assert_eq!(used(dir.path()), None);
    }
}
