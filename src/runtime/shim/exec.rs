//! `berth shim exec`: one more process in a running container.
//!
//! A short-lived, single-threaded process per exec (libcontainer forks; it must never run
//! in the daemon). It joins the container with libcontainer's tenant builder, which takes
//! the container's namespaces, cgroup, user, capabilities, rlimits and no_new_privs from
//! the process we hand it (a copy of the container's own, with our command, environment
//! and terminal). The tenant builder drops the container's seccomp profile from the spec,
//! so [`ExecExecutor`] loads that profile itself right before `execve`.
//!
//! stdio: without a terminal, the shim's own stdin/stdout/stderr (pipes from the daemon)
//! become the process's; with one, libcontainer opens a pty inside the container (on its
//! devpts, as the controlling terminal of a new session) and sends the master over a
//! console socket; the shim passes it on to the daemon.
//!
//! The control socket (SOCK_SEQPACKET, inherited from the daemon) carries one message per
//! packet ([`crate::runtime::exec::proto`]): to the daemon `pty` (with the master fd),
//! `started <pid>`, `exited <code>` or `failed <message>`; from the daemon `kill <signal>`.
//! When the daemon's end closes, the process is killed: an exec nobody waits for must not
//! linger. The shim reaps the process itself, so a pid it signals is never a reused one.
//! Its own exit code is the process's (128 + signal when killed by one), 125 when the
//! process could not be started.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{
    self, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
    UnixAddr,
};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use oci_spec::runtime::{Capability, LinuxCapabilities, LinuxSeccomp, Spec};

use super::{ExecArgs, error_chain, reset_signals};
use crate::runtime::exec::proto;
use crate::runtime::record::ContainerPaths;
use crate::runtime::spec::valid_id;

/// Exit code of `shim exec` when the process could not be started (as `docker exec`).
pub const EXIT_CANNOT_START: u8 = 125;

/// How long the shim waits for libcontainer's console socket connection.
const CONSOLE_TIMEOUT_MS: u16 = 10_000;

pub(super) fn exec(args: ExecArgs) -> ExitCode {
    // SAFETY: the daemon passed this fd to us and nobody else in this process owns it.
    let control = unsafe { OwnedFd::from_raw_fd(args.control_fd) };
    let _ = nix::fcntl::fcntl(
        control.as_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    let _ = std::env::set_current_dir("/");
    match start(&args, &control) {
        Ok(pid) => {
            send(&control, &format!("{} {pid}", proto::STARTED), None);
            let code = supervise(&control, pid);
            send(&control, &format!("{} {code}", proto::EXITED), None);
            ExitCode::from(u8::try_from(code).unwrap_or(255))
        }
        Err(message) => {
            send(
                &control,
                &format!("{} {}", proto::FAILED, message.replace('\n', " ")),
                None,
            );
            ExitCode::from(EXIT_CANNOT_START)
        }
    }
}

/// One packet on the control socket, with an fd when given.
fn send(control: &OwnedFd, message: &str, fd: Option<RawFd>) {
    let iov = [IoSlice::new(message.as_bytes())];
    let fds;
    let cmsgs: &[ControlMessage] = match fd {
        Some(fd) => {
            fds = [fd];
            &[ControlMessage::ScmRights(&fds)]
        }
        None => &[],
    };
    // The daemon may be gone (EPIPE; Rust ignores SIGPIPE): nothing to tell then.
    let _ = socket::sendmsg::<UnixAddr>(
        control.as_raw_fd(),
        &iov,
        cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    );
}

/// Starts the process; returns its pid (our child), or why it could not start.
fn start(args: &ExecArgs, control: &OwnedFd) -> Result<Pid, String> {
    if !valid_id(&args.id) {
        return Err(format!("invalid container id {:?}", args.id));
    }
    let paths = ContainerPaths::new(&args.root, &args.id);
    if !paths.libcontainer_state.join("state.json").exists() {
        return Err(format!("container {} is not running", args.id));
    }
    let config = paths.bundle.join("config.json");
    let spec = Spec::load(&config)
        .map_err(|e| format!("cannot read the container's spec {}: {e}", config.display()))?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    let mut process = exec_process(&spec, args)?;
    // Without no_new_privs, loading a seccomp filter needs CAP_SYS_ADMIN, which the
    // process may lack: it gets CAP_SYS_ADMIN and CAP_SETPCAP for the moment between
    // libcontainer's capability setup and the filter, and drops back to the container's
    // own sets right after loading it (still before execve).
    let restore = match (&seccomp, process.capabilities().clone()) {
        (Some(_), Some(caps)) if process.no_new_privileges() != Some(true) => {
            let mut wider = caps.clone();
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut set = set.clone().unwrap_or_default();
                set.insert(Capability::SysAdmin);
                set.insert(Capability::Setpcap);
                Some(set)
            };
            wider
                .set_bounding(add(caps.bounding()))
                .set_effective(add(caps.effective()))
                .set_permitted(add(caps.permitted()));
            process.set_capabilities(Some(wider));
            Some(caps)
        }
        _ => None,
    };

    // Files of this exec live in the container's directory under a name of their own,
    // removed when this function returns.
    let tag = format!("exec-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let process_file = TempPath(paths.dir.join(format!("{tag}.json")));
    let json = serde_json::to_vec(&process).map_err(|e| format!("cannot encode: {e}"))?;
    std::fs::write(&process_file.0, json).map_err(|e| {
        format!(
            "cannot write the exec process spec {}: {e}",
            process_file.0.display()
        )
    })?;

    // SIGCHLD is read from a signalfd; the process gets a clean mask from ExecExecutor.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block()
        .map_err(|e| format!("cannot block SIGCHLD: {e}"))?;

    let console = if args.tty {
        Some(ConsoleSocket::bind(&paths.dir, &tag)?)
    } else {
        None
    };

    let mut builder = ContainerBuilder::new(args.id.clone(), SyscallType::default())
        .with_executor(ExecExecutor { seccomp, restore });
    match &console {
        Some(c) => builder = builder.with_console_socket(Some(c.path.0.clone())),
        None => {
            let dup = |fd: RawFd| -> Result<OwnedFd, String> {
                // SAFETY: fcntl(F_DUPFD_CLOEXEC) returns a new fd that we own.
                let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
                if new < 0 {
                    return Err(format!(
                        "cannot duplicate fd {fd}: {}",
                        std::io::Error::last_os_error()
                    ));
                }
                // SAFETY: `new` is a fresh descriptor.
                Ok(unsafe { OwnedFd::from_raw_fd(new) })
            };
            builder = builder
                .with_stdin(dup(0)?)
                .with_stdout(dup(1)?)
                .with_stderr(dup(2)?);
        }
    }
    let built = builder
        .with_root_path(&paths.libcontainer_root)
        .and_then(|b| b.validate_id())
        .and_then(|b| {
            b.as_tenant()
                .with_process(Some(&process_file.0))
                .with_detach(args.tty)
                .build()
        });
    remove_stale_tenant_files(&paths.libcontainer_state);
    let pid = Pid::from_raw(built.map_err(|e| error_chain(&e))?.as_raw());

    if let Some(console) = console {
        match console.receive_master() {
            Ok(master) => send(control, proto::PTY, Some(master.as_raw_fd())),
            Err(e) => {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
                return Err(e);
            }
        }
    }
    // Again, now that this exec's console socket is gone.
    remove_stale_tenant_files(&paths.libcontainer_state);
    // Only the process keeps the daemon's pipes: the daemon sees EOF when it is done.
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        for target in [0, 1, 2] {
            // SAFETY: dup2 onto the standard fds, which this process owns.
            unsafe { libc::dup2(null.as_raw_fd(), target) };
        }
    }
    Ok(pid)
}

/// libcontainer leaves a notify socket and (with a terminal) a console-socket symlink in
/// the container's state directory per exec. Removes those nobody uses any more: notify
/// sockets no process listens on (a bound socket shows in /proc/net/unix from its bind
/// on, under the relative name it was bound with) and symlinks whose console socket is
/// gone. Exec probes run every few seconds for the life of a container.
fn remove_stale_tenant_files(dir: &Path) {
    let listening: Vec<String> = std::fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(7))
        .filter_map(|p| Path::new(p).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = if name.starts_with("tenant-notify-") {
            !listening.contains(&name)
        } else if name.starts_with("tenant-tty-") {
            // metadata follows the link: an error means its target is gone.
            std::fs::metadata(entry.path()).is_err()
        } else {
            false
        };
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The container's own process with our command, environment and terminal: same user,
/// capabilities, rlimits, no_new_privs, working directory.
fn exec_process(spec: &Spec, args: &ExecArgs) -> Result<oci_spec::runtime::Process, String> {
    let mut process = spec
        .process()
        .clone()
        .ok_or_else(|| "the container's spec has no process".to_string())?;
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    let mut extra: HashMap<&str, &str> = HashMap::new();
    for kv in &args.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format!("environment entry {kv:?} is not NAME=VALUE"))?;
        extra.insert(k, v);
    }
    if args.tty && !extra.contains_key("TERM") && !env.iter().any(|e| e.starts_with("TERM=")) {
        extra.insert("TERM", "xterm");
    }
    env.retain(|e| !extra.contains_key(e.split('=').next().unwrap_or_default()));
    let mut extra: Vec<String> = extra.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    extra.sort();
    env.extend(extra);
    process
        .set_args(Some(args.command.clone()))
        .set_env(Some(env))
        .set_terminal(Some(args.tty))
        .set_console_size(None);
    Ok(process)
}

/// Waits for the process, killing it on the daemon's request or when the daemon's end of
/// the control socket closes. Returns its exit code (128 + signal when killed by one).
fn supervise(control: &OwnedFd, pid: Pid) -> i32 {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ok();
    let mut control_open = true;
    let mut buf = [0u8; 64];
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => {}
            // Not our child any more (cannot happen): nothing left to wait for.
            Err(nix::Error::EINTR) => continue,
            Err(_) => return 255,
        }
        let mut fds = Vec::with_capacity(2);
        if let Some(sigfd) = &sigfd {
            fds.push(PollFd::new(sigfd.as_fd(), PollFlags::POLLIN));
        }
        if control_open {
            fds.push(PollFd::new(control.as_fd(), PollFlags::POLLIN));
        }
        // Without a signalfd (cannot happen) look again every 100 ms.
        let timeout = if sigfd.is_some() {
            PollTimeout::NONE
        } else {
            PollTimeout::from(100u16)
        };
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(_) => return 255,
        }
        if let Some(sigfd) = &sigfd {
            while let Ok(Some(_)) = sigfd.read_signal() {}
        }
        if !control_open {
            continue;
        }
        match socket::recv(control.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(0) => {
                control_open = false;
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            }
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                if let Some(sig) = text
                    .strip_prefix(proto::KILL)
                    .and_then(|s| s.trim().parse::<i32>().ok())
                    .and_then(|s| Signal::try_from(s).ok())
                {
                    // Still our unreaped child: the pid cannot belong to anyone else.
                    let _ = nix::sys::signal::kill(pid, sig);
                }
            }
            Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {}
            Err(_) => {
                control_open = false;
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            }
        }
    }
}

/// A file removed when dropped.
struct TempPath(PathBuf);

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The listening socket libcontainer sends the pty master to.
struct ConsoleSocket {
    path: TempPath,
    listener: OwnedFd,
}

impl ConsoleSocket {
    /// Binds `<dir>/<tag>.sock`, by a relative name: the absolute path may be longer than
    /// a socket address allows (this process has one thread, so changing directory is safe).
    fn bind(dir: &Path, tag: &str) -> Result<ConsoleSocket, String> {
        let name = format!("{tag}.sock");
        let listener = socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| format!("cannot create the console socket: {e}"))?;
        std::env::set_current_dir(dir)
            .map_err(|e| format!("cannot enter {}: {e}", dir.display()))?;
        let bound = UnixAddr::new(OsStr::from_bytes(name.as_bytes()))
            .and_then(|addr| socket::bind(listener.as_raw_fd(), &addr))
            .and_then(|()| socket::listen(&listener, socket::Backlog::new(1)?));
        let _ = std::env::set_current_dir("/");
        let path = TempPath(dir.join(&name));
        bound.map_err(|e| format!("cannot listen on the console socket: {e}"))?;
        Ok(ConsoleSocket { path, listener })
    }

    /// Accepts libcontainer's connection and takes the pty master it sends.
    fn receive_master(&self) -> Result<OwnedFd, String> {
        let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(CONSOLE_TIMEOUT_MS)) {
            Ok(n) if n > 0 => {}
            _ => return Err("the container did not send its terminal".to_string()),
        }
        let conn = socket::accept(self.listener.as_raw_fd())
            .map_err(|e| format!("cannot accept the console connection: {e}"))?;
        // SAFETY: accept returned a new descriptor that we own.
        let conn = unsafe { OwnedFd::from_raw_fd(conn) };
        let mut name = [0u8; 4096];
        let mut iov = [IoSliceMut::new(&mut name)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = socket::recvmsg::<UnixAddr>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| format!("cannot receive the terminal: {e}"))?;
        let mut master = None;
        for cmsg in msg
            .cmsgs()
            .map_err(|e| format!("cannot receive the terminal: {e}"))?
        {
            if let ControlMessageOwned::ScmRights(received) = cmsg {
                for fd in received {
                    // SAFETY: the kernel installed these descriptors for us.
                    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                    if master.is_none() {
                        master = Some(fd);
                    }
                }
            }
        }
        master.ok_or_else(|| "the container sent no terminal".to_string())
    }
}

/// Loads the container's seccomp profile, then runs the workload with a clean signal
/// state (see `CleanExecutor` in the shim).
#[derive(Clone)]
struct ExecExecutor {
    seccomp: Option<LinuxSeccomp>,
    /// The container's capabilities, when the process got more to load the filter.
    restore: Option<LinuxCapabilities>,
}

impl Executor for ExecExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        reset_signals();
        if let Some(seccomp) = &self.seccomp {
            // Fail rather than run the process less confined than its container.
            libcontainer::seccomp::initialize_seccomp(seccomp).map_err(|e| {
                ExecutorError::Other(format!(
                    "cannot apply the container's seccomp profile to the process: {}",
                    error_chain(&e)
                ))
            })?;
        }
        if let Some(caps) = &self.restore {
            let syscall = libcontainer::syscall::syscall::create_syscall();
            libcontainer::capabilities::drop_privileges(caps, syscall.as_ref()).map_err(|e| {
                ExecutorError::Other(format!(
                    "cannot drop back to the container's capabilities: {}",
                    error_chain(&e)
                ))
            })?;
        }
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}
