//! The pod sandbox, without a pause process: the network, IPC and UTS namespaces a pod's
//! containers share, kept alive by bind mounts of their nsfs files.
//!
//! Layout of `<run-dir>/sandboxes/<pod-uid>/`:
//! - `net`, `ipc`, `uts`: bind mounts of the namespaces (containers join them by path);
//! - `shm`: a tmpfs the containers mount at `/dev/shm` (POSIX shared memory is shared in a
//!   pod, as Kubernetes does with the pause container's `/dev/shm`);
//! - `hosts`, `resolv.conf`, `hostname`: files the containers bind-mount into `/etc`.
//!
//! Creating the namespaces needs `unshare(2)`, which must not run in the daemon, so
//! [`create`] spawns the single-threaded helper `berth shim sandbox create`, which unshares,
//! sets the hostname, brings `lo` up, makes the bind mounts in the host's mount namespace
//! and exits. [`destroy`] only unmounts and removes files, works after a crash of either
//! side and is idempotent.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::mount::{MntFlags, MsFlags};

/// The paths of one pod's sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPaths {
    pub dir: PathBuf,
    pub net: PathBuf,
    pub ipc: PathBuf,
    pub uts: PathBuf,
    pub shm: PathBuf,
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
    pub hostname: PathBuf,
}

impl SandboxPaths {
    pub fn new(dir: &Path) -> SandboxPaths {
        SandboxPaths {
            dir: dir.to_path_buf(),
            net: dir.join("net"),
            ipc: dir.join("ipc"),
            uts: dir.join("uts"),
            shm: dir.join("shm"),
            hosts: dir.join("hosts"),
            resolv_conf: dir.join("resolv.conf"),
            hostname: dir.join("hostname"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("pod uid {uid:?} is invalid: use letters, digits, '-' and '_'")]
    InvalidPodUid { uid: String },
    #[error("hostname {hostname:?} is invalid: use at most 63 letters, digits, '-' and '.'")]
    InvalidHostname { hostname: String },
    #[error("sandbox {path}: cannot {action}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the sandbox helper {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the sandbox helper for pod {pod_uid} failed: {message}")]
    Helper { pod_uid: String, message: String },
    #[error("sandbox {path}: cannot {action}: {source}")]
    Sys {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("sandbox {path} is still mounted after unmounting; check /proc/self/mountinfo")]
    StillMounted { path: PathBuf },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SandboxError {
    let path = path.to_path_buf();
    move |source| SandboxError::Io {
        action,
        path,
        source,
    }
}

fn check_uid(uid: &str) -> Result<(), SandboxError> {
    if !uid.is_empty()
        && uid.len() <= 128
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(SandboxError::InvalidPodUid {
            uid: uid.to_string(),
        })
    }
}

fn check_hostname(hostname: &str) -> Result<(), SandboxError> {
    if !hostname.is_empty()
        && hostname.len() <= 63
        && !hostname.starts_with(['-', '.'])
        && hostname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        Ok(())
    } else {
        Err(SandboxError::InvalidHostname {
            hostname: hostname.to_string(),
        })
    }
}

/// What a pod's `/etc/hosts` names besides localhost: its hostname, its fully qualified
/// name when it has a subdomain, and its `hostAliases`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodHosts {
    pub hostname: String,
    /// `<hostname>.<subdomain>.<ns>.svc.<cluster domain>`.
    pub fqdn: Option<String>,
    /// `(ip, hostnames)` from `spec.hostAliases`.
    pub aliases: Vec<(String, Vec<String>)>,
}

impl PodHosts {
    pub fn plain(hostname: &str) -> PodHosts {
        PodHosts {
            hostname: hostname.to_string(),
            ..Default::default()
        }
    }
}

/// The `/etc/hosts` of a pod, as Kubernetes' kubelet writes it: the localhost lines, the
/// pod's own names, then the host aliases.
pub fn hosts_file(names: &PodHosts, pod_ip: Option<IpAddr>) -> String {
    let ip = pod_ip.map_or_else(|| "127.0.0.1".to_string(), |ip| ip.to_string());
    let own = match &names.fqdn {
        Some(fqdn) => format!("{fqdn}\t{}", names.hostname),
        None => names.hostname.clone(),
    };
    let mut text = format!(
        "# Kubernetes-managed hosts file (berth).\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n\
         {ip}\t{own}\n"
    );
    if !names.aliases.is_empty() {
        text.push_str("\n# Entries added by HostAliases.\n");
        for (ip, hostnames) in &names.aliases {
            text.push_str(&format!("{ip}\t{}\n", hostnames.join("\t")));
        }
    }
    text
}

/// Rewrites the pod's `/etc/hosts` (e.g. once the pod has an IP). Written in place, not
/// renamed: containers bind-mount the file, and a bind mount pins the inode.
pub fn write_hosts(
    paths: &SandboxPaths,
    names: &PodHosts,
    pod_ip: Option<IpAddr>,
) -> Result<(), SandboxError> {
    check_hostname(&names.hostname)?;
    fs::write(&paths.hosts, hosts_file(names, pod_ip))
        .map_err(io_err("write the hosts file", &paths.hosts))
}

/// Rewrites the pod's `/etc/resolv.conf` (the kubelet forms it from the pod's DNS policy).
/// Written in place, as the hosts file.
pub fn write_resolv_conf(paths: &SandboxPaths, text: &str) -> Result<(), SandboxError> {
    fs::write(&paths.resolv_conf, text).map_err(io_err("write resolv.conf", &paths.resolv_conf))
}

/// Creates the sandbox of `pod_uid` below `sandboxes_dir` by running the helper
/// `<binary> shim sandbox create`. On failure nothing is left behind; when it already
/// exists, it is returned as is.
/// With `host_network` the pod shares the host's network namespace (`hostNetwork: true`):
/// its `net` pin is the host's, so containers, probes and port-forwards all use it.
pub fn create(
    binary: &Path,
    sandboxes_dir: &Path,
    pod_uid: &str,
    hostname: &str,
    host_network: bool,
) -> Result<SandboxPaths, SandboxError> {
    check_uid(pod_uid)?;
    check_hostname(hostname)?;
    let paths = SandboxPaths::new(&sandboxes_dir.join(pod_uid));
    if paths.dir.exists() {
        // Idempotent: a complete sandbox is kept (its pod's containers are in it); the
        // remains of a half-made one (a crash during create) are cleared first.
        let mounted = mounts_below(&paths.dir)?;
        if [&paths.net, &paths.ipc, &paths.uts, &paths.shm]
            .iter()
            .all(|p| mounted.contains(p))
        {
            return Ok(paths);
        }
        destroy(sandboxes_dir, pod_uid)?;
    }
    fs::create_dir_all(&paths.dir).map_err(io_err("create the directory", &paths.dir))?;
    let result = (|| {
        write_hosts(&paths, &PodHosts::plain(hostname), None)?;
        fs::write(&paths.hostname, format!("{hostname}\n"))
            .map_err(io_err("write the hostname file", &paths.hostname))?;
        // The host's resolver until the kubelet writes the pod's own (before any container
        // starts). A missing host file gives an empty one (no DNS), not a failed pod.
        let resolv = fs::read("/etc/resolv.conf").unwrap_or_default();
        fs::write(&paths.resolv_conf, resolv)
            .map_err(io_err("write resolv.conf", &paths.resolv_conf))?;
        let mut command = Command::new(binary);
        command.args([
            OsStr::new("shim"),
            OsStr::new("sandbox"),
            OsStr::new("create"),
            OsStr::new("--dir"),
            paths.dir.as_os_str(),
            OsStr::new("--hostname"),
            OsStr::new(hostname),
        ]);
        if host_network {
            command.arg("--host-network");
        }
        let out = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| SandboxError::Spawn {
                binary: binary.to_path_buf(),
                source,
            })?;
        if out.status.success() {
            Ok(())
        } else {
            let message = String::from_utf8_lossy(&out.stderr).trim().to_string();
            Err(SandboxError::Helper {
                pod_uid: pod_uid.to_string(),
                message: if message.is_empty() {
                    format!("exited with {}", out.status)
                } else {
                    message
                },
            })
        }
    })();
    match result {
        Ok(()) => Ok(paths),
        Err(e) => {
            if let Err(cleanup) = destroy(sandboxes_dir, pod_uid) {
                tracing::warn!(pod_uid, error = %cleanup, "cleaning up a failed sandbox");
            }
            Err(e)
        }
    }
}

/// Unmounts and removes the sandbox of `pod_uid`. Idempotent; works after a crash.
/// Containers still running in the pod keep its namespaces alive until they exit.
pub fn destroy(sandboxes_dir: &Path, pod_uid: &str) -> Result<(), SandboxError> {
    check_uid(pod_uid)?;
    let dir = sandboxes_dir.join(pod_uid);
    if !dir.exists() {
        return Ok(());
    }
    for mount in mounts_below(&dir)?.iter().rev() {
        match nix::mount::umount2(mount, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
            Err(source) => {
                return Err(SandboxError::Sys {
                    action: "unmount",
                    path: mount.clone(),
                    source,
                });
            }
        }
    }
    // Never recurse into a directory that still has something mounted in it.
    if let Some(left) = mounts_below(&dir)?.into_iter().next() {
        return Err(SandboxError::StillMounted { path: left });
    }
    match fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SandboxError::Io {
            action: "remove the directory",
            path: dir,
            source,
        }),
    }
}

/// Mount points at or below `dir`, in mount order.
fn mounts_below(dir: &Path) -> Result<Vec<PathBuf>, SandboxError> {
    let info = Path::new("/proc/self/mountinfo");
    let text = fs::read_to_string(info).map_err(io_err("read mounts", info))?;
    Ok(mount_points(&text)
        .into_iter()
        .filter(|p| p.starts_with(dir))
        .collect())
}

/// Every mount point in a mountinfo text, unescaped.
pub(crate) fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| {
            PathBuf::from(
                p.replace("\\040", " ")
                    .replace("\\011", "\t")
                    .replace("\\012", "\n")
                    .replace("\\134", "\\"),
            )
        })
        .collect()
}

/// The helper's work, in the single-threaded `berth shim sandbox create` process.
pub fn helper_create(dir: &Path, hostname: &str, host_network: bool) -> Result<(), SandboxError> {
    use nix::sched::{CloneFlags, unshare};
    check_hostname(hostname)?;
    let paths = SandboxPaths::new(dir);
    for target in [&paths.net, &paths.ipc, &paths.uts] {
        fs::File::create(target).map_err(io_err("create a namespace file", target))?;
    }
    fs::create_dir_all(&paths.shm).map_err(io_err("create the shm directory", &paths.shm))?;
    let sys = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| SandboxError::Sys {
            action,
            path,
            source,
        }
    };
    let mut flags = CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS;
    if !host_network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    unshare(flags).map_err(sys("create namespaces", dir))?;
    nix::unistd::sethostname(hostname).map_err(sys("set the hostname", dir))?;
    if !host_network {
        loopback_up().map_err(sys("bring lo up", dir))?;
    }
    for (ns, target) in [
        ("net", &paths.net),
        ("ipc", &paths.ipc),
        ("uts", &paths.uts),
    ] {
        let source = PathBuf::from(format!("/proc/self/ns/{ns}"));
        nix::mount::mount(
            Some(&source),
            target.as_path(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys("bind-mount a namespace", target))?;
    }
    nix::mount::mount(
        Some("shm"),
        paths.shm.as_path(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )
    .map_err(sys("mount the shm tmpfs", &paths.shm))?;
    Ok(())
}

/// `ip link set lo up`, by ioctl on a throwaway socket of the new network namespace.
fn loopback_up() -> Result<(), nix::Error> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    use std::os::fd::AsRawFd;
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value. The name fits (3 < IFNAMSIZ)
    // and the ioctls only read/write the struct we pass.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(nix::Error::last());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(nix::Error::last());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_names_the_pod() {
        let h = hosts_file(&PodHosts::plain("web-0"), None);
        assert!(h.contains("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("127.0.0.1\tweb-0\n"));
        let h = hosts_file(
            &PodHosts::plain("web-0"),
            Some("10.88.0.5".parse().expect("ip")),
        );
        assert!(h.ends_with("10.88.0.5\tweb-0\n"));
        let full = PodHosts {
            hostname: "db-0".into(),
            fqdn: Some("db-0.db.team.svc.cluster.local".into()),
            aliases: vec![("10.1.2.3".into(), vec!["foo.local".into(), "bar".into()])],
        };
        assert!(
            hosts_file(&full, Some("10.88.0.6".parse().expect("ip"))).ends_with(
                "10.88.0.6\tdb-0.db.team.svc.cluster.local\tdb-0\n\n\
                 # Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar\n"
            )
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(check_hostname("web-0").is_ok());
        assert!(check_hostname("").is_err());
        assert!(check_hostname("a/b").is_err());
        assert!(check_hostname(&"x".repeat(64)).is_err());
        assert!(check_uid("0b8f-11").is_ok());
        assert!(check_uid("../etc").is_err());
    }

    #[test]
    fn mountinfo_points_are_unescaped() {
        let text = "36 25 0:4 net:[4026532] /run/berth/sandboxes/u\\0401/net rw - nsfs nsfs rw\n";
        assert_eq!(
            mount_points(text),
            vec![PathBuf::from("/run/berth/sandboxes/u 1/net")]
        );
    }
}
