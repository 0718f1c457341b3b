//! Running a process in a running container ([`Runtime::exec`]): the daemon side of
//! `berth shim exec`.
//!
//! The shim is spawned with pipes as its stdio (or, with a terminal, nothing: the pty
//! master arrives on the control socket) and a SOCK_SEQPACKET control socket as fd 3
//! ([`proto`]). [`ExecChild`] owns the streams, the control socket and the shim process.
//! Dropping it kills the process if it still runs (the shim does that when the control
//! socket closes) and reaps the shim on a thread of its own. Every call is blocking and
//! bounded: call them from `spawn_blocking` in async code.

use std::fs::File;
use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::socket::{self, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType};

use super::{Runtime, RuntimeError};

/// The messages on the control socket, one per packet.
pub mod proto {
    /// shim → daemon, with the pty master attached (terminal only, before `started`).
    pub const PTY: &str = "pty";
    /// shim → daemon: `started <pid>` (host pid).
    pub const STARTED: &str = "started";
    /// shim → daemon: `exited <code>` (128 + signal when killed by one).
    pub const EXITED: &str = "exited";
    /// shim → daemon: `failed <message>`: the process could not be started.
    pub const FAILED: &str = "failed";
    /// daemon → shim: `kill <signal number>`.
    pub const KILL: &str = "kill";
}

/// The fd number of the control socket in the shim.
const CONTROL_FD: RawFd = 3;

/// How long [`Runtime::exec`] waits for the process to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecSpec {
    /// The command and its arguments (looked up in the container's `PATH`).
    pub args: Vec<String>,
    /// Added to (and overriding) the container's environment.
    pub env: Vec<(String, String)>,
    /// Connect a pipe to stdin (otherwise /dev/null). With `tty`, the terminal is stdin.
    pub stdin: bool,
    /// Give the process a terminal: stdout and stderr are both the terminal.
    pub tty: bool,
}

/// A started exec. Streams are `File`s (blocking); take them with `Option::take`.
#[derive(Debug)]
pub struct ExecChild {
    /// The write end of the process's stdin (a pipe, or a duplicate of the terminal).
    pub stdin: Option<File>,
    /// Its stdout (a pipe, or the terminal: everything the process writes).
    pub stdout: Option<File>,
    /// Its stderr; `None` with a terminal.
    pub stderr: Option<File>,
    /// The pty master, for resizing.
    pty: Option<OwnedFd>,
    control: OwnedFd,
    shim: Option<Child>,
    pid: i32,
    exit: Option<i32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("exec in container {id}: {source}")]
    Runtime {
        id: String,
        #[source]
        source: Box<RuntimeError>,
    },
    #[error("cannot set up the exec in container {id}: {source}")]
    Io {
        id: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot run {command:?} in container {id}: {message}")]
    Start {
        id: String,
        command: String,
        message: String,
    },
    #[error(
        "the exec shim for container {id} ended without an answer; is the container still running?"
    )]
    ShimVanished { id: String },
}

impl Runtime {
    /// Starts `spec.args` in the running container `id` and returns once it runs.
    pub fn exec(&self, id: &str, spec: &ExecSpec) -> Result<ExecChild, ExecError> {
        let io_err = |source: io::Error| ExecError::Io {
            id: id.to_string(),
            source,
        };
        let rt_err = |source: RuntimeError| ExecError::Runtime {
            id: id.to_string(),
            source: Box::new(source),
        };
        if !self.state(id).map_err(rt_err)?.is_running() {
            return Err(rt_err(RuntimeError::NotRunning { id: id.to_string() }));
        }
        if spec.args.is_empty() {
            return Err(ExecError::Start {
                id: id.to_string(),
                command: String::new(),
                message: "no command given".to_string(),
            });
        }
        let (ours, theirs) = socket::socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| io_err(e.into()))?;

        let mut cmd = Command::new(&self.shim_binary);
        cmd.arg("shim")
            .arg("exec")
            .arg("--id")
            .arg(id)
            .arg("--root")
            .arg(&self.state_root)
            .arg("--control-fd")
            .arg(CONTROL_FD.to_string());
        if spec.tty {
            cmd.arg("--tty");
        }
        for (k, v) in &spec.env {
            cmd.arg("--env").arg(format!("{k}={v}"));
        }
        cmd.arg("--").args(&spec.args);
        if spec.tty {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        } else {
            cmd.stdin(if spec.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        }
        let theirs_raw = theirs.as_raw_fd();
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if theirs_raw == CONTROL_FD {
                    // dup2 onto itself would keep close-on-exec.
                    if libc::fcntl(CONTROL_FD, libc::F_SETFD, 0) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                } else if libc::dup2(theirs_raw, CONTROL_FD) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut shim = cmd.spawn().map_err(|source| {
            rt_err(RuntimeError::SpawnShim {
                binary: self.shim_binary.clone(),
                source,
            })
        })?;
        drop(theirs);
        let mut child = ExecChild {
            stdin: shim.stdin.take().map(|s| File::from(OwnedFd::from(s))),
            stdout: shim.stdout.take().map(|s| File::from(OwnedFd::from(s))),
            stderr: shim.stderr.take().map(|s| File::from(OwnedFd::from(s))),
            pty: None,
            control: ours,
            shim: Some(shim),
            pid: 0,
            exit: None,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let (message, fd) = match child.receive(deadline).map_err(io_err)? {
                Received::Message(m, fd) => (m, fd),
                Received::Timeout => {
                    return Err(ExecError::Start {
                        id: id.to_string(),
                        command: spec.args.join(" "),
                        message: format!("it did not start within {START_TIMEOUT:?}"),
                    });
                }
                Received::Eof => return Err(ExecError::ShimVanished { id: id.to_string() }),
            };
            let (word, rest) = message.split_once(' ').unwrap_or((message.as_str(), ""));
            match word {
                proto::PTY => {
                    let Some(master) = fd else { continue };
                    let dup = |fd: &OwnedFd| fd.try_clone().map(File::from).map_err(io_err);
                    child.stdin = spec.stdin.then(|| dup(&master)).transpose()?;
                    child.stdout = Some(dup(&master)?);
                    child.pty = Some(master);
                }
                proto::STARTED => {
                    child.pid = rest.trim().parse().unwrap_or(0);
                    return Ok(child);
                }
                proto::FAILED => {
                    return Err(ExecError::Start {
                        id: id.to_string(),
                        command: spec.args.join(" "),
                        message: rest.to_string(),
                    });
                }
                _ => {}
            }
        }
    }
}

impl ExecChild {
    /// The process's pid on the host.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether the process has a terminal.
    pub fn has_tty(&self) -> bool {
        self.pty.is_some()
    }

    /// Sets the terminal size (no-op without a terminal).
    pub fn resize(&self, columns: u16, rows: u16) -> io::Result<()> {
        match &self.pty {
            Some(pty) => set_size(pty, columns, rows),
            None => Ok(()),
        }
    }

    /// A handle that resizes the terminal from elsewhere (another thread).
    pub fn terminal(&self) -> io::Result<Option<Terminal>> {
        self.pty
            .as_ref()
            .map(|p| p.try_clone().map(Terminal))
            .transpose()
    }

    /// Sends `signal` to the process (nothing once it has exited).
    pub fn kill(&self, signal: Signal) -> io::Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        let msg = format!("{} {}", proto::KILL, signal as i32);
        match socket::send(
            self.control.as_raw_fd(),
            msg.as_bytes(),
            MsgFlags::MSG_NOSIGNAL,
        ) {
            Ok(_) | Err(nix::Error::EPIPE) | Err(nix::Error::ECONNRESET) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits up to `timeout` (forever with `None`) for the process to exit; its exit code
    /// (128 + signal when killed by one), or `None` when the time ran out.
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<Option<i32>> {
        if let Some(code) = self.exit {
            return Ok(Some(code));
        }
        // Without a timeout: a deadline far enough away, renewed.
        let far = Duration::from_secs(3600);
        let mut deadline = Instant::now() + timeout.unwrap_or(far);
        loop {
            match self.receive(deadline)? {
                Received::Message(m, _) => {
                    if let Some(code) = m.strip_prefix(proto::EXITED) {
                        let code = code.trim().parse().unwrap_or(255);
                        self.finish(code);
                        return Ok(Some(code));
                    }
                }
                Received::Timeout if timeout.is_some() => return Ok(None),
                Received::Timeout => deadline = Instant::now() + far,
                Received::Eof => {
                    // The shim ended without telling: its exit status is the process's.
                    let code = match self.shim.take().map(|mut s| s.wait()) {
                        Some(Ok(status)) => status
                            .code()
                            .or_else(|| {
                                std::os::unix::process::ExitStatusExt::signal(&status)
                                    .map(|s| 128 + s)
                            })
                            .unwrap_or(255),
                        _ => 255,
                    };
                    self.exit = Some(code);
                    return Ok(Some(code));
                }
            }
        }
    }

    fn finish(&mut self, code: i32) {
        self.exit = Some(code);
        // The shim exits right after telling.
        if let Some(mut shim) = self.shim.take() {
            let _ = shim.wait();
        }
    }

    /// One message from the shim before `deadline`.
    fn receive(&mut self, deadline: Instant) -> io::Result<Received> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Received::Timeout);
            }
            let mut fds = [PollFd::new(self.control.as_fd(), PollFlags::POLLIN)];
            match poll(
                &mut fds,
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
            ) {
                // poll's millisecond rounding may wake us early: look at the clock again.
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let mut buf = [0u8; 4096];
            let mut iov = [IoSliceMut::new(&mut buf)];
            let mut space = nix::cmsg_space!([RawFd; 1]);
            let (n, fd) = {
                let msg = match socket::recvmsg::<()>(
                    self.control.as_raw_fd(),
                    &mut iov,
                    Some(&mut space),
                    MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
                ) {
                    Ok(m) => m,
                    Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => continue,
                    Err(nix::Error::ECONNRESET) => return Ok(Received::Eof),
                    Err(e) => return Err(e.into()),
                };
                let mut fd = None;
                if let Ok(cmsgs) = msg.cmsgs() {
                    for cmsg in cmsgs {
                        if let ControlMessageOwned::ScmRights(received) = cmsg {
                            for raw in received {
                                // SAFETY: the kernel installed this descriptor for us.
                                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                                if fd.is_none() {
                                    fd = Some(owned);
                                }
                            }
                        }
                    }
                }
                (msg.bytes, fd)
            };
            if n == 0 {
                return Ok(Received::Eof);
            }
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            return Ok(Received::Message(text, fd));
        }
    }
}

/// The terminal of an exec, for resizing it.
#[derive(Debug)]
pub struct Terminal(OwnedFd);

impl Terminal {
    pub fn resize(&self, columns: u16, rows: u16) -> io::Result<()> {
        set_size(&self.0, columns, rows)
    }
}

fn set_size(pty: &OwnedFd, columns: u16, rows: u16) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: columns,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct from the pointer.
    if unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &size) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What [`ExecChild::receive`] got.
enum Received {
    Message(String, Option<OwnedFd>),
    Eof,
    Timeout,
}

impl Drop for ExecChild {
    fn drop(&mut self) {
        // Closing the control socket (when `self` is gone) makes the shim kill a process
        // that still runs; the shim then exits and must be reaped.
        if let Some(mut shim) = self.shim.take() {
            if let Ok(Some(_)) = shim.try_wait() {
                return;
            }
            let _ = nix::sys::socket::shutdown(
                self.control.as_raw_fd(),
                nix::sys::socket::Shutdown::Both,
            );
            std::thread::spawn(move || {
                let _ = shim.wait();
            });
        }
    }
}
