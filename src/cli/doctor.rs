//! `berth doctor`: checks that this host can run berth, and prints each problem with the
//! command that fixes it. Exit code 1 when something berth needs is missing; warnings alone
//! leave it at 0.
//!
//! Each check reads the host through [`Host`], so the verdicts are unit-tested on fixed
//! inputs; `berth doctor` runs them on the real host.

use std::path::{Path, PathBuf};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub what: String,
    /// The command (or step) that fixes it; empty when fine.
    pub fix: String,
}

impl Finding {
    fn ok(what: impl Into<String>) -> Self {
        Finding {
            level: Level::Ok,
            what: what.into(),
            fix: String::new(),
        }
    }
    fn warn(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            level: Level::Warn,
            what: what.into(),
            fix: fix.into(),
        }
    }
    fn fail(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            level: Level::Fail,
            what: what.into(),
            fix: fix.into(),
        }
    }
}

/// What the checks read from the host.
pub trait Host {
    /// A file's contents (`/proc/...`, `/sys/...`), `None` when absent or unreadable.
    fn read(&self, path: &str) -> Option<String>;
    /// Whether a program is on PATH.
    fn has_program(&self, name: &str) -> bool;
    /// Free bytes on the file system holding `path` (its nearest existing ancestor).
    fn free_bytes(&self, path: &Path) -> Option<u64>;
    /// `Some(true)` when a TCP port on all addresses is free, `Some(false)` when taken,
    /// `None` when this user may not tell (binding a port below 1024 needs root).
    fn port_free(&self, port: u16) -> Option<bool>;
    /// The gid of a group, if it exists.
    fn group(&self, name: &str) -> Option<u32>;
    /// Owner gid and mode of a file.
    fn file_owner(&self, path: &Path) -> Option<(u32, u32)>;
}

/// The settings the checks look at.
#[derive(Debug, Clone)]
pub struct Settings {
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    pub group: String,
}

/// The oldest kernel berth supports: overlayfs with index/redirect fixes, cgroup v2
/// `memory.events` oom_kill, pidfd.
pub const MIN_KERNEL: (u32, u32) = (5, 4);

/// Less free space than this on the state dir is a warning.
pub const MIN_FREE_BYTES: u64 = 2 << 30;

fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn check_kernel(host: &dyn Host) -> Finding {
    let release = host.read("/proc/sys/kernel/osrelease").unwrap_or_default();
    match kernel_version(&release) {
        Some(v) if v >= MIN_KERNEL => Finding::ok(format!("kernel {}", release.trim())),
        Some(_) => Finding::fail(
            format!(
                "kernel {} is older than {}.{}",
                release.trim(),
                MIN_KERNEL.0,
                MIN_KERNEL.1
            ),
            "install a newer kernel (Debian: apt install linux-image-amd64) and reboot",
        ),
        None => Finding::warn(
            "cannot read the kernel version from /proc/sys/kernel/osrelease",
            "check that /proc is mounted",
        ),
    }
}

/// Controllers berth needs, per cgroup version.
const V1_NEEDED: &[&str] = &["cpu", "cpuacct", "memory", "pids", "freezer", "devices"];
const V2_NEEDED: &[&str] = &["cpu", "memory", "pids"];

fn check_cgroups(host: &dyn Host) -> Finding {
    let mounts = host.read("/proc/self/mountinfo").unwrap_or_default();
    let pure_v2 = mounts.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(4) == Some(&"/sys/fs/cgroup") && l.contains(" - cgroup2 ")
    });
    if pure_v2 {
        let available = host
            .read("/sys/fs/cgroup/cgroup.controllers")
            .unwrap_or_default();
        let missing: Vec<&str> = V2_NEEDED
            .iter()
            .copied()
            .filter(|c| !available.split_whitespace().any(|a| a == *c))
            .collect();
        return if missing.is_empty() {
            Finding::ok(format!("cgroup v2 with {}", V2_NEEDED.join(", ")))
        } else {
            Finding::fail(
                format!("cgroup v2 lacks the controllers {}", missing.join(", ")),
                "enable them on the kernel command line (cgroup_enable=memory) or delegate them to berth's service (Delegate=yes in berth.service)",
            )
        };
    }
    let cgroups = host.read("/proc/cgroups").unwrap_or_default();
    let enabled: Vec<&str> = cgroups
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(3) == Some(&"1")).then(|| f[0])
        })
        .collect();
    if enabled.is_empty() {
        return Finding::fail(
            "no cgroup controllers found (/proc/cgroups is empty or missing)",
            "mount cgroups: mount -t cgroup2 none /sys/fs/cgroup",
        );
    }
    let missing: Vec<&str> = V1_NEEDED
        .iter()
        .copied()
        .filter(|c| !enabled.contains(c))
        .collect();
    if missing.is_empty() {
        Finding::ok(format!("cgroup v1 with {}", V1_NEEDED.join(", ")))
    } else {
        Finding::fail(
            format!("cgroup v1 lacks the controllers {}", missing.join(", ")),
            format!(
                "enable them on the kernel command line (e.g. cgroup_enable={}) and reboot",
                missing.join(",")
            ),
        )
    }
}

fn check_overlayfs(host: &dyn Host) -> Finding {
    let fs = host.read("/proc/filesystems").unwrap_or_default();
    if fs
        .lines()
        .any(|l| l.split_whitespace().last() == Some("overlay"))
    {
        Finding::ok("overlayfs")
    } else {
        Finding::fail(
            "overlayfs is not available: containers cannot get a root file system",
            "modprobe overlay && echo overlay > /etc/modules-load.d/berth.conf",
        )
    }
}

fn check_namespaces(host: &dyn Host) -> Vec<Finding> {
    let mut out = Vec::new();
    let missing: Vec<&str> = ["net", "pid", "ipc", "uts", "mnt"]
        .into_iter()
        .filter(|ns| !host_has_ns(host, ns))
        .collect();
    if missing.is_empty() {
        out.push(Finding::ok("namespaces: net, pid, ipc, uts, mnt"));
    } else {
        out.push(Finding::fail(
            format!("the kernel lacks namespaces: {}", missing.join(", ")),
            "use a kernel built with CONFIG_NAMESPACES (every distribution kernel is)",
        ));
    }
    match host
        .read("/proc/sys/user/max_user_namespaces")
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        Some(0) => out.push(Finding::warn(
            "user namespaces are disabled (user.max_user_namespaces = 0); pods with hostUsers: false cannot run",
            "sysctl -w user.max_user_namespaces=15000 && echo user.max_user_namespaces=15000 > /etc/sysctl.d/99-berth.conf",
        )),
        Some(_) => out.push(Finding::ok("user namespaces")),
        None => out.push(Finding::warn(
            "cannot tell whether user namespaces are enabled",
            "check /proc/sys/user/max_user_namespaces",
        )),
    }
    out
}

fn host_has_ns(host: &dyn Host, ns: &str) -> bool {
    // nsfs entries are symlinks; reading them as files fails. Their presence is enough.
    host.file_owner(Path::new(&format!("/proc/self/ns/{ns}")))
        .is_some()
}

fn check_nftables(host: &dyn Host) -> Finding {
    if host.has_program("nft") {
        Finding::ok("nftables (nft)")
    } else {
        Finding::warn(
            "nftables is not installed: Services and NetworkPolicy need it",
            "apt install nftables",
        )
    }
}

fn check_ip_forward(host: &dyn Host) -> Finding {
    match host
        .read("/proc/sys/net/ipv4/ip_forward")
        .map(|v| v.trim().to_string())
    {
        Some(v) if v == "1" => Finding::ok("IPv4 forwarding"),
        Some(_) => Finding::warn(
            "IPv4 forwarding is off: pods cannot reach other networks",
            "sysctl -w net.ipv4.ip_forward=1 && echo net.ipv4.ip_forward=1 > /etc/sysctl.d/99-berth.conf",
        ),
        None => Finding::warn(
            "cannot read /proc/sys/net/ipv4/ip_forward",
            "check that /proc/sys is mounted",
        ),
    }
}

fn check_space(host: &dyn Host, state_dir: &Path) -> Finding {
    match host.free_bytes(state_dir) {
        Some(free) if free >= MIN_FREE_BYTES => Finding::ok(format!(
            "{} free for {}",
            human_bytes(free),
            state_dir.display()
        )),
        Some(free) => Finding::warn(
            format!(
                "only {} free for {} (images and volumes need room)",
                human_bytes(free),
                state_dir.display()
            ),
            format!(
                "free space on that file system, or set stateDir in /etc/berth/config.yaml to a larger one (now {})",
                state_dir.display()
            ),
        ),
        None => Finding::warn(
            format!("cannot tell the free space for {}", state_dir.display()),
            format!(
                "check that {} is on a mounted file system",
                state_dir.display()
            ),
        ),
    }
}

fn check_ports(host: &dyn Host) -> Vec<Finding> {
    [80u16, 443]
        .into_iter()
        .map(|port| match host.port_free(port) {
            Some(true) => Finding::ok(format!("port {port} is free for the Ingress")),
            Some(false) => Finding::warn(
                format!("port {port} is in use: the built-in Ingress cannot listen on it"),
                format!("find the program with: ss -ltnp 'sport = :{port}' (stop it, or give the Ingress other ports)"),
            ),
            None => Finding::warn(
                format!("cannot tell whether port {port} is free (run berth doctor as root)"),
                "sudo berth doctor",
            ),
        })
        .collect()
}

fn check_group(host: &dyn Host, settings: &Settings) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(gid) = host.group(&settings.group) else {
        out.push(Finding::warn(
            format!(
                "the group \"{}\" does not exist: only root can use berth",
                settings.group
            ),
            format!("groupadd --system {}", settings.group),
        ));
        return out;
    };
    out.push(Finding::ok(format!("group {} (gid {gid})", settings.group)));
    match host.file_owner(&settings.socket) {
        Some((owner_gid, mode)) if owner_gid == gid && mode & 0o060 == 0o060 => out.push(
            Finding::ok(format!("socket {} is group-accessible", settings.socket.display())),
        ),
        Some(_) => out.push(Finding::warn(
            format!(
                "the socket {} is not read-writable by the group {}",
                settings.socket.display(),
                settings.group
            ),
            format!(
                "restart the daemon (systemctl restart berth) so it recreates the socket, or: chgrp {} {} && chmod 0660 {}",
                settings.group,
                settings.socket.display(),
                settings.socket.display()
            ),
        )),
        None => out.push(Finding::warn(
            format!(
                "the socket {} does not exist: the daemon is not running",
                settings.socket.display()
            ),
            "systemctl start berth (see: journalctl -u berth)",
        )),
    }
    out
}

/// Runs every check.
pub fn run_checks(host: &dyn Host, settings: &Settings) -> Vec<Finding> {
    let mut out = vec![
        check_kernel(host),
        check_cgroups(host),
        check_overlayfs(host),
    ];
    out.extend(check_namespaces(host));
    out.push(check_nftables(host));
    out.push(check_ip_forward(host));
    out.push(check_space(host, &settings.state_dir));
    out.extend(check_ports(host));
    out.extend(check_group(host, settings));
    out
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// The report as printed; `no_color` drops the ANSI colours.
pub fn render(findings: &[Finding], color: bool) -> String {
    let mut out = String::new();
    for f in findings {
        let (tag, code) = match f.level {
            Level::Ok => ("ok  ", "32"),
            Level::Warn => ("warn", "33"),
            Level::Fail => ("FAIL", "31"),
        };
        if color {
            out.push_str(&format!("\x1b[{code}m{tag}\x1b[0m  {}\n", f.what));
        } else {
            out.push_str(&format!("{tag}  {}\n", f.what));
        }
        if !f.fix.is_empty() {
            out.push_str(&format!("      fix: {}\n", f.fix));
        }
    }
    let fails = findings.iter().filter(|f| f.level == Level::Fail).count();
    let warns = findings.iter().filter(|f| f.level == Level::Warn).count();
    out.push_str(&match (fails, warns) {
        (0, 0) => "berth can run on this host.\n".to_string(),
        (0, w) => format!("berth can run on this host; {w} warning(s) above.\n"),
        (f, _) => format!("berth cannot run on this host: {f} problem(s) above must be fixed.\n"),
    });
    out
}

/// The real host.
pub struct RealHost;

impl Host for RealHost {
    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    fn has_program(&self, name: &str) -> bool {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .any(|d| d.join(name).is_file())
    }

    fn free_bytes(&self, path: &Path) -> Option<u64> {
        let mut p = path.to_path_buf();
        while !p.exists() {
            p = p.parent()?.to_path_buf();
        }
        let s = nix::sys::statvfs::statvfs(&p).ok()?;
        Some(s.blocks_available() as u64 * s.fragment_size() as u64)
    }

    fn port_free(&self, port: u16) -> Option<bool> {
        match std::net::TcpListener::bind(("0.0.0.0", port)) {
            Ok(_) => Some(true),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Some(false),
            Err(_) => None,
        }
    }

    fn group(&self, name: &str) -> Option<u32> {
        nix::unistd::Group::from_name(name)
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw())
    }

    fn file_owner(&self, path: &Path) -> Option<(u32, u32)> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(path).ok()?;
        Some((m.gid(), m.mode()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct FakeHost {
        files: BTreeMap<String, String>,
        programs: Vec<String>,
        free: Option<u64>,
        ports: BTreeMap<u16, bool>,
        groups: BTreeMap<String, u32>,
        owners: BTreeMap<PathBuf, (u32, u32)>,
    }

    impl Host for FakeHost {
        fn read(&self, path: &str) -> Option<String> {
            self.files.get(path).cloned()
        }
        fn has_program(&self, name: &str) -> bool {
            self.programs.iter().any(|p| p == name)
        }
        fn free_bytes(&self, _: &Path) -> Option<u64> {
            self.free
        }
        fn port_free(&self, port: u16) -> Option<bool> {
            self.ports.get(&port).copied()
        }
        fn group(&self, name: &str) -> Option<u32> {
            self.groups.get(name).copied()
        }
        fn file_owner(&self, path: &Path) -> Option<(u32, u32)> {
            self.owners.get(path).copied()
        }
    }

    const V1_CGROUPS: &str = "#subsys_name\thierarchy\tnum_cgroups\tenabled
cpuset\t5\t1\t1
cpu\t3\t60\t1
cpuacct\t3\t60\t1
memory\t8\t90\t1
devices\t4\t60\t1
freezer\t6\t2\t1
pids\t2\t65\t1
";

    fn healthy() -> FakeHost {
        let mut h = FakeHost::default();
        for (k, v) in [
            ("/proc/sys/kernel/osrelease", "6.1.0-28-amd64\n"),
            (
                "/proc/self/mountinfo",
                "30 1 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
            ),
            ("/proc/cgroups", V1_CGROUPS),
            (
                "/proc/filesystems",
                "nodev\tsysfs\nnodev\toverlay\n\text4\n",
            ),
            ("/proc/sys/user/max_user_namespaces", "63000\n"),
            ("/proc/sys/net/ipv4/ip_forward", "1\n"),
        ] {
            h.files.insert(k.into(), v.into());
        }
        for ns in ["net", "pid", "ipc", "uts", "mnt"] {
            h.owners
                .insert(PathBuf::from(format!("/proc/self/ns/{ns}")), (0, 0o777));
        }
        h.owners
            .insert(PathBuf::from("/run/berth/berth.sock"), (997, 0o140660));
        h.programs.push("nft".into());
        h.free = Some(50 << 30);
        h.ports.insert(80, true);
        h.ports.insert(443, true);
        h.groups.insert("berth".into(), 997);
        h
    }

    fn settings() -> Settings {
        Settings {
            state_dir: "/var/lib/berth".into(),
            socket: "/run/berth/berth.sock".into(),
            group: "berth".into(),
        }
    }

    #[test]
    fn a_healthy_host_passes_every_check() {
        let findings = run_checks(&healthy(), &settings());
        let bad: Vec<&Finding> = findings.iter().filter(|f| f.level != Level::Ok).collect();
        assert!(bad.is_empty(), "{bad:?}");
        assert!(render(&findings, false).ends_with("berth can run on this host.\n"));
    }

    #[test]
    fn each_problem_comes_with_its_fix() {
        let mut h = healthy();
        h.files
            .insert("/proc/sys/kernel/osrelease".into(), "4.19.0-1\n".into());
        h.files.insert(
            "/proc/cgroups".into(),
            V1_CGROUPS.replace("pids\t2\t65\t1", "pids\t2\t65\t0"),
        );
        h.files
            .insert("/proc/filesystems".into(), "nodev\tsysfs\n".into());
        h.files
            .insert("/proc/sys/net/ipv4/ip_forward".into(), "0\n".into());
        h.programs.clear();
        h.ports.insert(80, false);
        h.free = Some(100 << 20);
        h.owners
            .insert(PathBuf::from("/run/berth/berth.sock"), (0, 0o140600));
        let findings = run_checks(&h, &settings());
        let text = render(&findings, false);
        assert!(
            text.contains("FAIL  kernel 4.19.0-1 is older than 5.4"),
            "{text}"
        );
        assert!(
            text.contains("FAIL  cgroup v1 lacks the controllers pids"),
            "{text}"
        );
        assert!(text.contains("fix: modprobe overlay"), "{text}");
        assert!(
            text.contains("fix: sysctl -w net.ipv4.ip_forward=1"),
            "{text}"
        );
        assert!(text.contains("fix: apt install nftables"), "{text}");
        assert!(text.contains("warn  port 80 is in use"), "{text}");
        assert!(text.contains("only 100.0 MiB free"), "{text}");
        assert!(text.contains("chgrp berth /run/berth/berth.sock"), "{text}");
        assert!(
            text.ends_with("berth cannot run on this host: 3 problem(s) above must be fixed.\n"),
            "{text}"
        );
        assert!(
            findings
                .iter()
                .all(|f| f.level == Level::Ok || !f.fix.is_empty())
        );
    }

    #[test]
    fn cgroup_v2_hosts_are_checked_by_their_controllers() {
        let mut h = healthy();
        h.files.insert(
            "/proc/self/mountinfo".into(),
            "30 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n".into(),
        );
        h.files.insert(
            "/sys/fs/cgroup/cgroup.controllers".into(),
            "cpuset cpu io memory\n".into(),
        );
        let f = check_cgroups(&h);
        assert_eq!(f.level, Level::Fail);
        assert_eq!(f.what, "cgroup v2 lacks the controllers pids");
        h.files.insert(
            "/sys/fs/cgroup/cgroup.controllers".into(),
            "cpuset cpu io memory pids\n".into(),
        );
        assert_eq!(check_cgroups(&h).level, Level::Ok);
    }

    #[test]
    fn missing_group_and_socket() {
        let mut h = healthy();
        h.groups.clear();
        let f = check_group(&h, &settings());
        assert_eq!(f[0].fix, "groupadd --system berth");
        let mut h = healthy();
        h.owners.remove(Path::new("/run/berth/berth.sock"));
        let f = check_group(&h, &settings());
        assert!(f[1].what.contains("the daemon is not running"), "{f:?}");
    }

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(kernel_version("6.1.0-28-amd64"), Some((6, 1)));
        assert_eq!(
            kernel_version("5.15.167.4-microsoft-standard-WSL2"),
            Some((5, 15))
        );
        assert_eq!(kernel_version("garbage"), None);
    }
}
