//! The container runtime as the kubelet sees it: pod sandboxes, pod cgroups, and
//! containers run by one `berth shim` each.
//!
//! Safe to use from the daemon's multi-threaded async runtime: this side only spawns
//! processes, reads and writes files and makes a few plain syscalls (umount, poll). It
//! never calls libcontainer; [`shim`] does, in a process of its own. Calls block (bounded:
//! [`Runtime::start`] up to the start timeout, [`Runtime::stop`] up to the grace period),
//! so call them from `spawn_blocking`.
//!
//! Daemon restarts: shims keep running and keep their records ([`record`]), so after a
//! restart [`Runtime::list`] and [`Runtime::state`] tell what exists and how each
//! container is doing, and nothing has to be re-attached.
//!
//! - [`spec`]: pure translation of a [`ContainerConfig`] into an OCI spec.
//! - [`cgroups`]: berth's cgroup parent, pod cgroups, OOM counters, stats (v1 and v2).
//! - [`sandbox`]: the pod's shared namespaces and its `/etc/hosts` & co.
//! - [`shim`]: the per-container supervisor (the only caller of libcontainer).
//! - [`exec`]: processes run in a running container (`berth shim exec`).
//! - [`crilog`]: CRI log format and rotation; [`record`]: the shim's on-disk record.

pub mod cgroups;
pub mod crilog;
pub mod exec;
pub mod record;
pub mod sandbox;
pub mod shim;
pub mod spec;

use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;

pub use cgroups::{CgroupError, CgroupStats, CgroupVersion, Cgroups};
pub use exec::{ExecChild, ExecError, ExecSpec, Terminal};
pub use record::FailureReason;
pub use sandbox::{SandboxError, SandboxPaths};
pub use spec::{
    BindMount, ContainerConfig, HostLimits, LogLocation, NamespacePaths, Resources, Rlimit,
    SeccompProfile, Security, SpecError, User,
};

use record::{ContainerPaths, ShimRecord};

/// How long [`Runtime::remove`] waits for a finished shim to exit.
const SHIM_EXIT_TIMEOUT_MS: u16 = 5000;

/// How long [`Runtime::stop`] waits for a container after SIGKILL.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// The shim-only executable (`src/bin/berth-shim.rs`), used when it sits beside `berth`.
pub const SHIM_BINARY_NAME: &str = "berth-shim";

/// How a container is doing, from its shim's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// Its shim is alive and still creating it.
    Creating,
    Running {
        pid: i32,
        started_at: Timestamp,
    },
    /// It ran and exited, or it could never run (`error` says why).
    Exited {
        /// The exit status, or 128 + signal when killed by one (Kubernetes' convention),
        /// or 128 when it never ran.
        exit_code: i32,
        signal: Option<i32>,
        oom_killed: bool,
        started_at: Option<Timestamp>,
        finished_at: Timestamp,
        error: Option<ContainerError>,
    },
    /// The record is missing or its shim died before recording an exit: the container
    /// may still be running; [`Runtime::remove`] cleans it up.
    Unknown,
}

impl ContainerState {
    pub fn is_running(&self) -> bool {
        matches!(
            self,
            ContainerState::Creating | ContainerState::Running { .. }
        )
    }
}

/// Why a container never ran (the kubelet shows it as a Waiting reason and message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerError {
    pub reason: FailureReason,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("container id {id:?} is invalid: use letters, digits, '_', '-', '.' and '+'")]
    InvalidId { id: String },
    #[error(
        "container {id}: its log location (namespace, pod, uid, container name) has an empty or unsafe part"
    )]
    InvalidLogLocation { id: String },
    #[error("container {id} already exists; remove it first")]
    AlreadyExists { id: String },
    #[error("container {id} does not exist")]
    NotFound { id: String },
    #[error("container {id} is not running")]
    NotRunning { id: String },
    #[error("container {id} is still running; stop it first")]
    StillRunning { id: String },
    #[error("cannot run the shim {binary}: {source}")]
    SpawnShim {
        binary: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("container {id}: {reason:?}: {message}")]
    CreateContainer {
        id: String,
        reason: FailureReason,
        message: String,
    },
    #[error("the shim of container {id} failed ({detail}); see {log}")]
    ShimFailed {
        id: String,
        detail: String,
        log: PathBuf,
    },
    #[error("the shim of container {id} {status}: {output}")]
    ShimExited {
        id: String,
        status: String,
        output: String,
    },
    #[error("container {id} did not start within {after:?}; see {log}")]
    StartTimeout {
        id: String,
        after: Duration,
        log: PathBuf,
    },
    #[error("container {id} is still running {after:?} after SIGKILL")]
    StopTimeout { id: String, after: Duration },
    #[error("`berth shim {command}` for container {id} failed: {message}")]
    ShimCommand {
        id: String,
        command: &'static str,
        message: String,
    },
    #[error("the record of container {id} at {path} is unreadable: {source}")]
    Record {
        id: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RuntimeError {
    let path = path.to_path_buf();
    move |source| RuntimeError::Io {
        action,
        path,
        source,
    }
}

/// Settings beyond the three directories.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// The `berth` binary to run as `berth shim`; default: this executable.
    pub shim_binary: Option<PathBuf>,
    /// berth's cgroup parent.
    pub cgroup_parent: String,
    /// How long [`Runtime::start`] waits for the shim's answer.
    pub start_timeout: Duration,
    /// CRI log rotation.
    pub log_max_size: u64,
    pub log_max_files: u32,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            shim_binary: None,
            cgroup_parent: cgroups::DEFAULT_PARENT.to_string(),
            start_timeout: Duration::from_secs(60),
            log_max_size: crilog::DEFAULT_MAX_SIZE,
            log_max_files: crilog::DEFAULT_MAX_FILES,
        }
    }
}

/// The runtime. Cheap to share (`Arc`); every method takes `&self`.
#[derive(Debug)]
pub struct Runtime {
    state_root: PathBuf,
    run_dir: PathBuf,
    log_root: PathBuf,
    shim_binary: PathBuf,
    cgroups: Cgroups,
    host: HostLimits,
    options: RuntimeOptions,
}

impl Runtime {
    /// `state_root`: one directory per container (bundle, record); `run_dir`: sandboxes;
    /// `log_root`: CRI logs (`/var/log/berth/pods`). Creates them, detects the cgroup
    /// layout and creates berth's cgroup parent.
    pub fn new(
        state_root: impl AsRef<Path>,
        run_dir: impl AsRef<Path>,
        log_root: impl AsRef<Path>,
    ) -> Result<Runtime, RuntimeError> {
        Runtime::with_options(state_root, run_dir, log_root, RuntimeOptions::default())
    }

    pub fn with_options(
        state_root: impl AsRef<Path>,
        run_dir: impl AsRef<Path>,
        log_root: impl AsRef<Path>,
        options: RuntimeOptions,
    ) -> Result<Runtime, RuntimeError> {
        // Canonical paths: the shim gets them as arguments, and sandbox mounts are found
        // again by comparing with /proc/self/mountinfo.
        let prepare = |dir: &Path| -> Result<PathBuf, RuntimeError> {
            fs::create_dir_all(dir).map_err(io_err("create", dir))?;
            fs::canonicalize(dir).map_err(io_err("resolve", dir))
        };
        let state_root = prepare(state_root.as_ref())?;
        let run_dir = prepare(run_dir.as_ref())?;
        let log_root = prepare(log_root.as_ref())?;
        prepare(&run_dir.join("sandboxes"))?;
        let shim_binary = match &options.shim_binary {
            Some(b) => b.clone(),
            None => {
                let exe = std::env::current_exe().map_err(io_err(
                    "find the berth executable",
                    Path::new("/proc/self/exe"),
                ))?;
                // The small `berth-shim` beside it when installed; else `berth shim`.
                exe.parent()
                    .map(|dir| dir.join(SHIM_BINARY_NAME))
                    .filter(|p| p.is_file())
                    .unwrap_or(exe)
            }
        };
        let cgroups = Cgroups::detect(&options.cgroup_parent)?;
        cgroups.ensure_parent()?;
        tracing::info!(version = ?cgroups.version(), parent = cgroups.parent(), "cgroups detected");
        let host = HostLimits::current();
        if let Some(hard) = host.hard_limit(spec::PosixRlimitType::RlimitNofile)
            && hard < spec::DEFAULT_NOFILE
        {
            tracing::info!(
                granted = hard,
                requested = spec::DEFAULT_NOFILE,
                "containers get RLIMIT_NOFILE clamped to berth's own hard limit (raising it needs CAP_SYS_RESOURCE)"
            );
        }
        Ok(Runtime {
            state_root,
            run_dir,
            log_root,
            shim_binary,
            cgroups,
            host,
            options,
        })
    }

    pub fn cgroups(&self) -> &Cgroups {
        &self.cgroups
    }

    pub fn state_root(&self) -> &Path {
        &self.state_root
    }

    pub fn log_root(&self) -> &Path {
        &self.log_root
    }

    fn sandboxes_dir(&self) -> PathBuf {
        self.run_dir.join("sandboxes")
    }

    // --- pods ------------------------------------------------------------------------

    /// Creates the pod's shared namespaces (net with `lo` up, ipc, uts with `hostname`) and
    /// its `/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`, `/dev/shm`.
    pub fn create_sandbox(
        &self,
        pod_uid: &str,
        hostname: &str,
        host_network: bool,
    ) -> Result<SandboxPaths, RuntimeError> {
        Ok(sandbox::create(
            &self.shim_binary,
            &self.sandboxes_dir(),
            pod_uid,
            hostname,
            host_network,
        )?)
    }

    /// The sandbox paths of a pod (after a daemon restart, to start more containers in it).
    pub fn sandbox_paths(&self, pod_uid: &str) -> SandboxPaths {
        SandboxPaths::new(&self.sandboxes_dir().join(pod_uid))
    }

    /// Rewrites the pod's `/etc/hosts` with its names and IP (the kubelet calls this once
    /// the network gave the pod its address).
    pub fn set_pod_hosts(
        &self,
        pod_uid: &str,
        names: &sandbox::PodHosts,
        ip: std::net::IpAddr,
    ) -> Result<(), RuntimeError> {
        Ok(sandbox::write_hosts(
            &self.sandbox_paths(pod_uid),
            names,
            Some(ip),
        )?)
    }

    /// Rewrites the pod's `/etc/resolv.conf`.
    pub fn write_resolv_conf(&self, pod_uid: &str, text: &str) -> Result<(), RuntimeError> {
        Ok(sandbox::write_resolv_conf(
            &self.sandbox_paths(pod_uid),
            text,
        )?)
    }

    /// Unmounts and removes the pod's sandbox. Idempotent.
    pub fn destroy_sandbox(&self, pod_uid: &str) -> Result<(), RuntimeError> {
        Ok(sandbox::destroy(&self.sandboxes_dir(), pod_uid)?)
    }

    /// Creates the pod's cgroup with pod-level limits (idempotent).
    pub fn create_pod_cgroup(&self, pod_uid: &str, limits: &Resources) -> Result<(), RuntimeError> {
        Ok(self.cgroups.create_pod(pod_uid, limits)?)
    }

    /// Removes the pod's cgroup once its containers are gone. Idempotent.
    pub fn remove_pod_cgroup(&self, pod_uid: &str) -> Result<(), RuntimeError> {
        Ok(self.cgroups.remove_pod(pod_uid)?)
    }

    /// The `cgroups_path` to put in a container's [`ContainerConfig`].
    pub fn container_cgroup_path(&self, pod_uid: &str, id: &str) -> Result<String, RuntimeError> {
        Ok(self.cgroups.container_path(pod_uid, id)?)
    }

    /// The CRI log file of one container run.
    pub fn log_path(&self, location: &LogLocation) -> Option<PathBuf> {
        location.relative_path().map(|p| self.log_root.join(p))
    }

    /// Removes every log of a pod (when the pod is deleted). Idempotent.
    pub fn remove_pod_logs(&self, location: &LogLocation) -> Result<(), RuntimeError> {
        let Some(dir) = location.pod_dir().map(|d| self.log_root.join(d)) else {
            return Ok(());
        };
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &dir)(e)),
        }
    }

    // --- containers ------------------------------------------------------------------

    fn paths(&self, id: &str) -> Result<ContainerPaths, RuntimeError> {
        if !spec::valid_id(id) {
            return Err(RuntimeError::InvalidId { id: id.to_string() });
        }
        Ok(ContainerPaths::new(&self.state_root, id))
    }

    /// Creates and starts a container under a new shim, and returns once it runs. A
    /// container that cannot be created or started is an error here *and* an `Exited`
    /// state with the reason, so the kubelet can report it either way.
    pub fn start(&self, config: &ContainerConfig) -> Result<(), RuntimeError> {
        let id = config.id.as_str();
        let paths = self.paths(id)?;
        let spec = spec::build_spec(config, &self.host)?;
        let log = self
            .log_path(&config.log)
            .ok_or_else(|| RuntimeError::InvalidLogLocation { id: id.to_string() })?;
        match fs::create_dir(&paths.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(RuntimeError::AlreadyExists { id: id.to_string() });
            }
            Err(e) => return Err(io_err("create", &paths.dir)(e)),
        }
        // Until the shim has taken over, a failure leaves nothing behind (a retry with the
        // same id must work); afterwards the record tells what happened.
        let answer = match self.spawn_shim(config, &spec, &paths, &log) {
            Ok(answer) => answer,
            Err(e) => {
                let _ = fs::remove_dir_all(&paths.dir);
                return Err(e);
            }
        };
        let line = match answer {
            Some(out) => read_line(OwnedFd::from(out), self.options.start_timeout),
            None => Ok(None),
        };
        match line {
            Err(ReadLineError::Timeout) => Err(RuntimeError::StartTimeout {
                id: id.to_string(),
                after: self.options.start_timeout,
                log: paths.shim_log.clone(),
            }),
            Err(ReadLineError::Io(e)) => Err(io_err("read the shim's answer", &paths.shim_log)(e)),
            Ok(Some(line)) if line.starts_with("started ") => Ok(()),
            Ok(_) => match self.state(id)? {
                ContainerState::Exited {
                    error: Some(error), ..
                } => Err(RuntimeError::CreateContainer {
                    id: id.to_string(),
                    reason: error.reason,
                    message: error.message,
                }),
                ContainerState::Running { .. } => Ok(()),
                _ => Err(RuntimeError::ShimFailed {
                    id: id.to_string(),
                    detail: "it ended without starting the container".to_string(),
                    log: paths.shim_log.clone(),
                }),
            },
        }
    }

    /// Writes the bundle and spawns `berth shim run`; returns the pipe the shim answers on.
    fn spawn_shim(
        &self,
        config: &ContainerConfig,
        spec: &oci_spec::runtime::Spec,
        paths: &ContainerPaths,
        log: &Path,
    ) -> Result<Option<std::process::ChildStdout>, RuntimeError> {
        let id = config.id.as_str();
        fs::create_dir(&paths.bundle).map_err(io_err("create", &paths.bundle))?;
        let config_json = paths.bundle.join("config.json");
        spec.save(&config_json).map_err(|e| RuntimeError::Io {
            action: "write",
            path: config_json.clone(),
            source: io::Error::other(e),
        })?;
        let shim_log =
            fs::File::create(&paths.shim_log).map_err(io_err("create", &paths.shim_log))?;

        let mut cmd = Command::new(&self.shim_binary);
        cmd.arg("shim")
            .arg("run")
            .arg("--id")
            .arg(id)
            .arg("--bundle")
            .arg(&paths.bundle)
            .arg("--root")
            .arg(&self.state_root)
            .arg("--log")
            .arg(log)
            .arg("--log-max-size")
            .arg(self.options.log_max_size.to_string())
            .arg("--log-max-files")
            .arg(self.options.log_max_files.to_string());
        if !config.cgroups_path.is_empty() {
            cmd.arg("--cgroup").arg(&config.cgroups_path);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(shim_log);
        let mut child = cmd.spawn().map_err(|source| RuntimeError::SpawnShim {
            binary: self.shim_binary.clone(),
            source,
        })?;
        let answer = child.stdout.take();
        // The first shim process forks the supervisor and exits at once: reap it here.
        let status = child
            .wait()
            .map_err(io_err("wait for the shim", &self.shim_binary))?;
        if !status.success() {
            let output = fs::read_to_string(&paths.shim_log).unwrap_or_default();
            return Err(RuntimeError::ShimExited {
                id: id.to_string(),
                status: status.to_string(),
                output: output.trim().chars().take(2000).collect(),
            });
        }
        Ok(answer)
    }

    fn read_record(
        &self,
        id: &str,
        paths: &ContainerPaths,
    ) -> Result<Option<ShimRecord>, RuntimeError> {
        record::read(&paths.record).map_err(|source| RuntimeError::Record {
            id: id.to_string(),
            path: paths.record.clone(),
            source,
        })
    }

    /// How the container is doing.
    pub fn state(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        let paths = self.paths(id)?;
        if !paths.dir.is_dir() {
            return Err(RuntimeError::NotFound { id: id.to_string() });
        }
        let Some(rec) = self.read_record(id, &paths)? else {
            return Ok(ContainerState::Unknown);
        };
        if let Some(finished_at) = rec.finished_at {
            return Ok(ContainerState::Exited {
                exit_code: rec.exit_code.unwrap_or(shim::NEVER_RAN_EXIT_CODE),
                signal: rec.signal,
                oom_killed: rec.oom_killed,
                started_at: rec.started_at,
                finished_at,
                error: rec.reason.map(|reason| ContainerError {
                    reason,
                    message: rec.error.clone().unwrap_or_default(),
                }),
            });
        }
        if !record::shim_alive(&rec) {
            // Read again: the shim may have finished between the two looks.
            return match self.read_record(id, &paths)? {
                Some(r) if r.finished_at.is_some() => self.state(id),
                _ => Ok(ContainerState::Unknown),
            };
        }
        Ok(match (rec.pid, rec.started_at) {
            (Some(pid), Some(started_at)) => ContainerState::Running { pid, started_at },
            _ => ContainerState::Creating,
        })
    }

    /// The pid of the container's shim while it is alive.
    pub fn shim_pid(&self, id: &str) -> Result<Option<i32>, RuntimeError> {
        let paths = self.paths(id)?;
        Ok(self
            .read_record(id, &paths)?
            .filter(record::shim_alive)
            .map(|r| r.shim_pid))
    }

    /// Waits up to `timeout` for the container to stop running; returns its state then.
    /// Sleeps on a pidfd of the shim (which exits right after recording the exit).
    pub fn wait(&self, id: &str, timeout: Duration) -> Result<ContainerState, RuntimeError> {
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.state(id)?;
            let left = deadline.saturating_duration_since(Instant::now());
            if !state.is_running() || left.is_zero() {
                return Ok(state);
            }
            let paths = self.paths(id)?;
            let rec = self.read_record(id, &paths)?;
            match rec.as_ref().and_then(pidfd_for) {
                Some(fd) => {
                    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                    let t = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
                    match poll(&mut fds, t) {
                        Ok(_) | Err(nix::Error::EINTR) => {}
                        Err(e) => return Err(io_err("wait for the shim", &paths.record)(e.into())),
                    }
                }
                // No pidfd (very old kernel, or the shim just exited): poll the record.
                None => std::thread::sleep(left.min(Duration::from_millis(10))),
            }
        }
    }

    /// Sends `signal` to the container's init, or with `all` to every process in it.
    /// [`RuntimeError::NotRunning`] when it has no process left.
    /// A pidfd of the container's shim, readable once the shim has exited (after it
    /// recorded the container's exit); `None` when the shim is already gone.
    pub fn shim_pidfd(&self, id: &str) -> Result<Option<OwnedFd>, RuntimeError> {
        let paths = self.paths(id)?;
        Ok(self.read_record(id, &paths)?.as_ref().and_then(pidfd_for))
    }

    pub fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<(), RuntimeError> {
        let paths = self.paths(id)?;
        if !paths.dir.is_dir() {
            return Err(RuntimeError::NotFound { id: id.to_string() });
        }
        let mut cmd = Command::new(&self.shim_binary);
        cmd.arg("shim")
            .arg("kill")
            .arg("--id")
            .arg(id)
            .arg("--root")
            .arg(&self.state_root)
            .arg("--signal")
            .arg((signal as i32).to_string());
        if all {
            cmd.arg("--all");
        }
        let out = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| RuntimeError::SpawnShim {
                binary: self.shim_binary.clone(),
                source,
            })?;
        match out.status.code() {
            Some(0) => Ok(()),
            Some(c) if c == i32::from(shim::EXIT_NOT_RUNNING) => {
                Err(RuntimeError::NotRunning { id: id.to_string() })
            }
            _ => Err(RuntimeError::ShimCommand {
                id: id.to_string(),
                command: "kill",
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            }),
        }
    }

    /// Kubernetes' stop: SIGTERM to the init, up to `grace` to exit, then SIGKILL to every
    /// process. (A shell as the init ignores SIGTERM: it always takes the whole grace.)
    pub fn stop(&self, id: &str, grace: Duration) -> Result<ContainerState, RuntimeError> {
        let state = self.state(id)?;
        if !state.is_running() {
            return Ok(state);
        }
        match self.kill(id, Signal::SIGTERM, false) {
            Ok(()) | Err(RuntimeError::NotRunning { .. }) => {}
            Err(e) => return Err(e),
        }
        let state = self.wait(id, grace)?;
        if !state.is_running() {
            return Ok(state);
        }
        match self.kill(id, Signal::SIGKILL, true) {
            Ok(()) | Err(RuntimeError::NotRunning { .. }) => {}
            Err(e) => return Err(e),
        }
        let state = self.wait(id, KILL_TIMEOUT)?;
        if state.is_running() {
            return Err(RuntimeError::StopTimeout {
                id: id.to_string(),
                after: KILL_TIMEOUT,
            });
        }
        Ok(state)
    }

    /// Removes an exited container's bundle and record (its logs stay until the pod's
    /// are removed). Idempotent. A container whose shim died is deleted for good.
    pub fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let paths = self.paths(id)?;
        match self.state(id) {
            Err(RuntimeError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
            Ok(s) if s.is_running() => {
                return Err(RuntimeError::StillRunning { id: id.to_string() });
            }
            Ok(_) => {}
        }
        // The shim exits right after writing the final record; let it finish, so that
        // nothing of the container remains once this returns.
        if let Some(rec) = self.read_record(id, &paths)?
            && let Some(fd) = pidfd_for(&rec)
        {
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(SHIM_EXIT_TIMEOUT_MS));
        }
        if paths.libcontainer_state.exists() {
            // Only left behind when the shim died: let libcontainer kill and clean up.
            let out = Command::new(&self.shim_binary)
                .arg("shim")
                .arg("delete")
                .arg("--id")
                .arg(id)
                .arg("--root")
                .arg(&self.state_root)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .map_err(|source| RuntimeError::SpawnShim {
                    binary: self.shim_binary.clone(),
                    source,
                })?;
            if !out.status.success() {
                return Err(RuntimeError::ShimCommand {
                    id: id.to_string(),
                    command: "delete",
                    message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                });
            }
        }
        match fs::remove_dir_all(&paths.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &paths.dir)(e)),
        }
    }

    /// Every container this runtime knows (running or not), for re-adoption after a
    /// daemon restart.
    pub fn list(&self) -> Result<Vec<String>, RuntimeError> {
        let entries = fs::read_dir(&self.state_root).map_err(io_err("list", &self.state_root))?;
        let mut ids: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| spec::valid_id(id))
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// A pidfd for the record's shim, if it is still the same process.
fn pidfd_for(rec: &ShimRecord) -> Option<OwnedFd> {
    if rec.shim_pid <= 0 {
        return None;
    }
    // SAFETY: pidfd_open returns a new fd (or -1); we take ownership of it.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, rec.shim_pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // Checked after opening: the fd now pins whatever process has that pid.
    record::shim_alive(rec).then_some(fd)
}

enum ReadLineError {
    Timeout,
    Io(io::Error),
}

/// Reads the first line from `fd` within `timeout`; `None` on EOF without one.
fn read_line(fd: OwnedFd, timeout: Duration) -> Result<Option<String>, ReadLineError> {
    let deadline = Instant::now() + timeout;
    let mut file = fs::File::from(fd);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadLineError::Timeout);
        }
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) => return Err(ReadLineError::Timeout),
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(ReadLineError::Io(e.into())),
        }
        match file.read(&mut chunk) {
            Ok(0) => {
                return Ok((!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned()));
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                    return Ok(Some(String::from_utf8_lossy(&buf[..nl]).into_owned()));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadLineError::Io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Runtime>();
        shareable::<ContainerState>();
    }

    #[test]
    fn read_line_stops_at_newline_eof_or_deadline() {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        let mut w = fs::File::from(w);
        io::Write::write_all(&mut w, b"started 42\nrest").expect("write");
        assert_eq!(
            read_line(r, Duration::from_secs(1))
                .ok()
                .flatten()
                .as_deref(),
            Some("started 42")
        );
        let (r, w) = nix::unistd::pipe().expect("pipe");
        drop(w);
        assert!(matches!(read_line(r, Duration::from_secs(1)), Ok(None)));
        let (r, _w) = nix::unistd::pipe().expect("pipe");
        assert!(matches!(
            read_line(r, Duration::from_millis(20)),
            Err(ReadLineError::Timeout)
        ));
    }
}
