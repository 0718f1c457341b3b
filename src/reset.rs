//! `berth reset`: takes a stopped node apart. Every container is killed and removed (with
//! its rootfs mount and shim), every pod sandbox unmounted (its network namespace goes with
//! the last reference, and with it the pod's veth pair), every cgroup of berth's removed,
//! the bridge and berth's nftables tables deleted; then, unless the state is kept, the
//! state, log and run directories go too.
//!
//! The package's removal runs it keeping the state (a reinstall brings the workloads back);
//! a purge runs it in full. It refuses while the daemon runs: a live kubelet would put
//! everything back.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::daemon::{Config, DaemonError};
use crate::runtime::{Runtime, RuntimeOptions};

/// What a reset did, one line per step, for the user.
#[derive(Debug, Default)]
pub struct Report {
    pub done: Vec<String>,
    /// What could not be removed (the reset carries on past each).
    pub failed: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error(
        "berth is running ({0}); stop it first (systemctl stop berth), then run berth reset again"
    )]
    Running(String),
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error("the configuration is invalid: {0}")]
    Config(String),
}

/// Resets the node described by `config`; `keep_state` keeps the state directory (the
/// store and images) and the logs.
pub fn reset(config: &Config, keep_state: bool) -> Result<Report, ResetError> {
    let lock = match crate::daemon::lock_state_dir(&config.state_dir) {
        Ok(lock) => lock,
        Err(DaemonError::Locked { pid, .. }) => {
            return Err(ResetError::Running(match pid {
                Some(pid) => format!("pid {pid}"),
                None => "its state directory is locked".to_string(),
            }));
        }
        Err(e) => return Err(e.into()),
    };
    let network = config.network().map_err(ResetError::Config)?;
    let mut report = Report::default();

    // Containers first: their processes hold the namespaces and cgroups.
    let options = RuntimeOptions {
        cgroup_parent: config.cgroup_parent.clone(),
        ..Default::default()
    };
    match Runtime::with_options(
        config.state_dir.join("containers"),
        &config.run_dir,
        &config.log_dir,
        options,
    ) {
        Ok(runtime) => {
            remove_containers(&runtime, &mut report);
            remove_rootfs(&config.state_dir, &mut report);
            remove_sandboxes(&runtime, &config.run_dir, &mut report);
            remove_volume_mounts(&config.state_dir, &mut report);
            remove_cgroups(&runtime, &mut report);
        }
        Err(e) => report
            .failed
            .push(format!("cannot open the runtime to stop containers: {e}")),
    }

    // The network: the bridge (the pods' veths went with their namespaces) and the tables.
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => match rt.block_on(crate::network::Network::remove_node_network(&network)) {
            Ok(()) => report.done.push(format!(
                "removed the bridge {} and the nftables table(s) {}*",
                network.bridge, network.nft_table
            )),
            Err(e) => report
                .failed
                .push(format!("cannot remove the pod network: {e}")),
        },
        Err(e) => report
            .failed
            .push(format!("cannot start the async runtime: {e}")),
    }

    // Files.
    let mut dirs: Vec<&Path> = vec![&config.run_dir];
    if !keep_state {
        dirs.push(&config.log_dir);
    }
    for dir in dirs {
        remove_dir(dir, &mut report);
    }
    if !keep_state {
        drop(lock);
        remove_dir(&config.state_dir, &mut report);
        if config.socket.exists() {
            match std::fs::remove_file(&config.socket) {
                Ok(()) => report
                    .done
                    .push(format!("removed {}", config.socket.display())),
                Err(e) => report
                    .failed
                    .push(format!("cannot remove {}: {e}", config.socket.display())),
            }
        }
    }
    Ok(report)
}

fn remove_containers(runtime: &Runtime, report: &mut Report) {
    let ids = match runtime.list() {
        Ok(ids) => ids,
        Err(e) => {
            report.failed.push(format!("cannot list containers: {e}"));
            return;
        }
    };
    let mut removed = 0;
    for id in &ids {
        // No grace: the node is being taken apart.
        if let Err(e) = runtime.stop(id, Duration::ZERO) {
            tracing::debug!(container = %id, error = %e, "stop before removal");
        }
        match runtime.remove(id) {
            Ok(()) => removed += 1,
            Err(e) => report
                .failed
                .push(format!("cannot remove container {id}: {e}")),
        }
    }
    report
        .done
        .push(format!("stopped and removed {removed} container(s)"));
}

/// The containers' overlay root filesystems (their image layers stay).
fn remove_rootfs(state_dir: &Path, report: &mut Report) {
    let dir = state_dir.join("rootfs");
    let mut removed = 0;
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        match crate::image::remove_rootfs(&entry.path()) {
            Ok(()) => removed += 1,
            Err(e) => report.failed.push(format!(
                "cannot remove the root filesystem {}: {e}",
                entry.path().display()
            )),
        }
    }
    report.done.push(format!(
        "unmounted and removed {removed} container root filesystem(s)"
    ));
}

fn remove_sandboxes(runtime: &Runtime, run_dir: &Path, report: &mut Report) {
    let dir = run_dir.join("sandboxes");
    let uids: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut removed = 0;
    for uid in &uids {
        match runtime.destroy_sandbox(uid) {
            Ok(()) => removed += 1,
            Err(e) => report
                .failed
                .push(format!("cannot remove the sandbox of pod {uid}: {e}")),
        }
    }
    report.done.push(format!(
        "removed {removed} pod sandbox(es) and their network namespaces"
    ));
}

/// Secret and projected volumes are tmpfs mounts below `<stateDir>/pods`.
fn remove_volume_mounts(state_dir: &Path, report: &mut Report) {
    let pods = state_dir.join("pods");
    let before = mounts_below(&pods).len();
    if before == 0 {
        return;
    }
    crate::kubelet::volumes::unmount_below(&pods);
    match mounts_below(&pods).into_iter().next() {
        None => report
            .done
            .push(format!("unmounted {before} pod volume(s)")),
        Some(m) => report
            .failed
            .push(format!("cannot unmount the pod volume {}", m.display())),
    }
}

fn remove_cgroups(runtime: &Runtime, report: &mut Report) {
    let cgroups = runtime.cgroups();
    // Pod cgroups are the parent's subdirectories, in every hierarchy.
    let mut pods: std::collections::BTreeSet<String> = Default::default();
    for dir in cgroups.dirs(cgroups.parent()) {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pods.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    for pod in &pods {
        let uid = pod.strip_prefix("pod").unwrap_or(pod);
        if let Err(e) = runtime.remove_pod_cgroup(uid) {
            report
                .failed
                .push(format!("cannot remove the cgroup of pod {uid}: {e}"));
        }
    }
    match cgroups.remove_parent() {
        Ok(()) => report
            .done
            .push(format!("removed the cgroup {}", cgroups.parent())),
        Err(e) => report.failed.push(format!(
            "cannot remove the cgroup {}: {e}",
            cgroups.parent()
        )),
    }
}

fn remove_dir(dir: &Path, report: &mut Report) {
    if !dir.exists() {
        return;
    }
    // Never recurse through a mount (a leftover overlay would take image data with it).
    if let Some(m) = mounts_below(dir).into_iter().next() {
        report.failed.push(format!(
            "{} is still mounted; not removing {}",
            m.display(),
            dir.display()
        ));
        return;
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => report.done.push(format!("removed {}", dir.display())),
        Err(e) => report
            .failed
            .push(format!("cannot remove {}: {e}", dir.display())),
    }
}

/// Mount points at or below `dir` (from /proc/self/mountinfo).
fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect()
}
