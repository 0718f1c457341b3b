//! `berth shim`: one small single-threaded supervisor per container, and the only caller
//! of libcontainer.
//!
//! libcontainer forks with a raw `clone3` and runs Rust in the child, sets
//! `PR_SET_DUMPABLE=0` and `oom_score_adj` on its caller, and races on the working
//! directory: it must never run inside the multi-threaded daemon. So the daemon spawns
//! `berth shim …`, dispatched from `main` before any runtime or thread exists:
//!
//! - `shim run`: forks once and lets the parent exit (the daemon reaps it), so the
//!   supervisor is re-parented to init, leads its own session and outlives the daemon.
//!   It creates and starts the container, tells the daemon on its stdout pipe (`started
//!   <pid>` or `failed <reason>: <message>`), pumps the container's stdout/stderr into the
//!   CRI log, notices the init's exit through a signalfd, reads the cgroup's OOM-kill
//!   counter, deletes the container (and so its cgroup) while the init is still an
//!   unreaped zombie (its pid cannot be reused yet), reaps it and records the outcome
//!   durably in `shim.json` ([`super::record`]). Then it exits. No threads, one poll loop.
//! - `shim exec`: runs one more process in a running container (libcontainer's tenant
//!   builder: the container's namespaces, cgroup, user, capabilities, rlimits,
//!   no_new_privs and seccomp profile), waits for it and reports its exit on a control
//!   socket from the daemon; see [`exec`](self#exec) below and [`super::exec`].
//! - `shim kill`: a short-lived process sending a signal through libcontainer.
//! - `shim delete`: removes a container whose shim died (crash recovery).
//! - `shim sandbox create`: the pod sandbox helper ([`super::sandbox::helper_create`]).

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use jiff::Timestamp;
use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::{ForkResult, Pid};
use oci_spec::runtime::Spec;

use super::cgroups::{Cgroups, DEFAULT_PARENT};
use super::crilog::{self, LineSplitter, RotatingLog, Stream};
use super::record::{self, ContainerPaths, FailureReason, ShimRecord};
use super::sandbox;
use super::spec::valid_id;

/// How long the shim keeps reading the pipes after the init exited. The kernel kills the
/// rest of the pid namespace with it, so the pipes normally close at once.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// Exit code recorded for a container that never ran (as CRI runtimes report it).
pub const NEVER_RAN_EXIT_CODE: i32 = 128;

/// Exit code of `shim kill` when the container is not running.
pub const EXIT_NOT_RUNNING: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "berth shim",
    about = "internal: per-container supervisor of berth"
)]
struct ShimCli {
    #[command(subcommand)]
    command: ShimCommand,
}

#[derive(Debug, Subcommand)]
enum ShimCommand {
    /// Create, start and supervise one container until it exits.
    Run(RunArgs),
    /// Run a process in a running container and wait for it.
    Exec(ExecArgs),
    /// Send a signal to a container.
    Kill(KillArgs),
    /// Remove the libcontainer state and cgroup of a container whose shim died.
    Delete(DeleteArgs),
    /// Pod sandbox helpers.
    Sandbox {
        #[command(subcommand)]
        command: SandboxCommand,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    #[arg(long)]
    id: String,
    /// The OCI bundle (directory with config.json).
    #[arg(long)]
    bundle: PathBuf,
    /// berth's container state root.
    #[arg(long)]
    root: PathBuf,
    /// The CRI log file.
    #[arg(long)]
    log: PathBuf,
    /// The container's cgroup path (for the OOM-kill counter).
    #[arg(long)]
    cgroup: Option<String>,
    #[arg(long, default_value_t = crilog::DEFAULT_MAX_SIZE)]
    log_max_size: u64,
    #[arg(long, default_value_t = crilog::DEFAULT_MAX_FILES)]
    log_max_files: u32,
}

#[derive(Debug, Args)]
struct ExecArgs {
    #[arg(long)]
    id: String,
    #[arg(long)]
    root: PathBuf,
    /// The control socket (SOCK_SEQPACKET) inherited from the daemon.
    #[arg(long)]
    control_fd: i32,
    /// Give the process a terminal (its master goes to the daemon on the control socket).
    #[arg(long)]
    tty: bool,
    /// Extra environment, NAME=VALUE; repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

#[derive(Debug, Args)]
struct KillArgs {
    #[arg(long)]
    id: String,
    #[arg(long)]
    root: PathBuf,
    /// Signal number.
    #[arg(long)]
    signal: i32,
    /// Signal every process of the container (freeze, kill, thaw), not only its init.
    #[arg(long)]
    all: bool,
}

#[derive(Debug, Args)]
struct DeleteArgs {
    #[arg(long)]
    id: String,
    #[arg(long)]
    root: PathBuf,
}

#[derive(Debug, Subcommand)]
enum SandboxCommand {
    /// Create the namespaces of a pod and pin them below DIR.
    Create {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        hostname: String,
        /// Pin the host's network namespace instead of a new one (hostNetwork pods).
        #[arg(long)]
        host_network: bool,
    },
}

/// Entry point of `berth shim …` (arguments after `shim`). Must be called before any other
/// thread exists.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let cli =
        match ShimCli::try_parse_from(std::iter::once(OsString::from("berth shim")).chain(args)) {
            Ok(cli) => cli,
            Err(e) => {
                let _ = e.print();
                return ExitCode::from(2);
            }
        };
    match cli.command {
        ShimCommand::Run(args) => run(args),
        ShimCommand::Exec(args) => exec::exec(args),
        ShimCommand::Kill(args) => kill(args),
        ShimCommand::Delete(args) => delete(args),
        ShimCommand::Sandbox {
            command:
                SandboxCommand::Create {
                    dir,
                    hostname,
                    host_network,
                },
        } => match sandbox::helper_create(&dir, &hostname, host_network) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// libcontainer's own errors (it logs through tracing) go to the shim log on stderr.
fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::ERROR)
        .with_ansi(false)
        .with_writer(io::stderr)
        .try_init();
}

fn run(args: RunArgs) -> ExitCode {
    if !valid_id(&args.id) {
        eprintln!("error: invalid container id {:?}", args.id);
        return ExitCode::FAILURE;
    }
    // SAFETY: `berth shim` is dispatched before any thread is started, so the child of
    // this fork is a complete copy of a single-threaded process.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Parent { .. }) => return ExitCode::SUCCESS,
        Ok(ForkResult::Child) => {}
        Err(e) => {
            eprintln!("error: cannot fork the shim: {e}");
            return ExitCode::FAILURE;
        }
    }
    // A session of our own: no terminal, no signals meant for the daemon's process group.
    let _ = nix::unistd::setsid();
    let _ = std::env::set_current_dir("/");
    let status = match detach_stdio() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot set up the shim's stdio: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging();
    let mut notifier = Notifier(Some(status));
    match supervise(&args, &mut notifier) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{} error: container {}: {e}", now_str(), args.id);
            notifier.send(&format!("failed shim error: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// Keeps the daemon's pipe (our stdout) as a separate close-on-exec fd and points stdin and
/// stdout at /dev/null; stderr stays on the shim log the daemon opened.
fn detach_stdio() -> io::Result<File> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) returns a new fd that we own from here on.
    let status = unsafe {
        let fd = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        File::from_raw_fd(fd)
    };
    let null = File::options().read(true).write(true).open("/dev/null")?;
    for target in [0, 1] {
        // SAFETY: dup2 onto the standard fds, which this process owns.
        if unsafe { libc::dup2(null.as_raw_fd(), target) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(status)
}

/// The one-line answer to the daemon waiting in `Runtime::start`.
struct Notifier(Option<File>);

impl Notifier {
    fn send(&mut self, line: &str) {
        if let Some(mut f) = self.0.take() {
            // The daemon may be gone (EPIPE; SIGPIPE is ignored): the record still tells.
            let _ = writeln!(f, "{}", line.replace('\n', " "));
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ShimError {
    #[error("cannot write the record {path}: {source}")]
    Record {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot {action}: {source}")]
    Sys {
        action: &'static str,
        #[source]
        source: nix::Error,
    },
}

fn sys(action: &'static str) -> impl FnOnce(nix::Error) -> ShimError {
    move |source| ShimError::Sys { action, source }
}

fn now_str() -> String {
    crilog::timestamp(Timestamp::now())
}

fn supervise(args: &RunArgs, notifier: &mut Notifier) -> Result<(), ShimError> {
    let paths = ContainerPaths::new(&args.root, &args.id);
    let me = nix::unistd::getpid().as_raw();
    let rec = ShimRecord {
        shim_pid: me,
        shim_start_time: record::process_start_time(me).unwrap_or(0),
        ..ShimRecord::default()
    };
    write_record(&paths, &rec, false)?;

    let mut log = match open_log(&args.log, args.log_max_size, args.log_max_files) {
        Ok(l) => l,
        Err(e) => {
            let msg = format!("cannot open the log file {}: {e}", args.log.display());
            return fail(
                &paths,
                rec,
                FailureReason::CreateContainerError,
                msg,
                notifier,
            );
        }
    };

    // SIGCHLD is read from a signalfd, so it is blocked from here on: an init that dies at
    // once still leaves a pending signal. The container's init gets a clean signal mask
    // back from CleanExecutor before it execs the workload.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block().map_err(sys("block SIGCHLD"))?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(sys("create a signalfd"))?;
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("create a pipe"))?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys("create a pipe"))?;
    let stdin = match File::open("/dev/null") {
        Ok(f) => f,
        Err(e) => {
            let msg = format!("cannot open /dev/null: {e}");
            return fail(
                &paths,
                rec,
                FailureReason::CreateContainerError,
                msg,
                notifier,
            );
        }
    };

    // build() takes the pipes' write ends and closes its copies: afterwards only the
    // container holds them, so EOF on the read ends means the container is done writing.
    let built = ContainerBuilder::new(args.id.clone(), SyscallType::default())
        .with_executor(CleanExecutor)
        .with_stdin(OwnedFd::from(stdin))
        .with_stdout(out_w)
        .with_stderr(err_w)
        .with_root_path(&paths.libcontainer_root)
        .and_then(|b| b.validate_id())
        .and_then(|b| {
            b.as_init(&args.bundle)
                .with_systemd(false)
                .with_detach(true)
                .build()
        });
    let mut container = match built {
        Ok(c) => c,
        Err(e) => {
            let msg = error_chain(&e);
            cleanup_libcontainer(&paths);
            return fail(
                &paths,
                rec,
                FailureReason::CreateContainerError,
                msg,
                notifier,
            );
        }
    };

    let cgroups = Cgroups::detect(DEFAULT_PARENT).ok();
    let oom_kills = |cgroups: &Option<Cgroups>| -> u64 {
        match (cgroups, &args.cgroup) {
            (Some(cg), Some(path)) => cg.oom_kills(path).unwrap_or(0),
            _ => 0,
        }
    };
    let oom_before = oom_kills(&cgroups);

    if let Err(e) = container.start() {
        let msg = error_chain(&e);
        if let Err(e) = container.delete(true) {
            eprintln!(
                "{} error: deleting the unstarted container: {}",
                now_str(),
                error_chain(&e)
            );
        }
        return fail(&paths, rec, FailureReason::RunContainerError, msg, notifier);
    }
    let Some(pid) = container.pid() else {
        let _ = container.delete(true);
        let msg = "libcontainer started the container but reported no pid".to_string();
        return fail(&paths, rec, FailureReason::RunContainerError, msg, notifier);
    };
    let pid = Pid::from_raw(pid.as_raw());
    let mut rec = ShimRecord {
        pid: Some(pid.as_raw()),
        started_at: Some(Timestamp::now()),
        ..rec
    };
    if let Err(e) = write_record(&paths, &rec, true) {
        // Nobody could ever learn how this container ends: do not let it run.
        let _ = container.delete(true);
        let _ = waitpid(pid, None);
        return Err(e);
    }
    notifier.send(&format!("started {pid}"));
    // Give back what creation needed (spec parsing, libcontainer's allocations): a shim
    // lives as long as its container.
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe {
        libc::malloc_trim(0);
    }

    let status = pump(&mut log, out_r, err_r, &sigfd, pid)?;

    let oom_killed = oom_kills(&cgroups) > oom_before;
    // The init is still an unreaped zombie here, so its pid cannot have been reused:
    // libcontainer sees it stopped and removes the cgroup and its state.
    if let Err(e) = container.delete(true) {
        eprintln!(
            "{} error: deleting the container: {}",
            now_str(),
            error_chain(&e)
        );
    }
    let status = match waitpid(pid, None) {
        Ok(s) => s,
        Err(_) => status,
    };
    let (exit_code, signal) = match status {
        WaitStatus::Exited(_, code) => (code, None),
        WaitStatus::Signaled(_, sig, _) => (128 + sig as i32, Some(sig as i32)),
        other => {
            eprintln!("{} error: unexpected wait status {other:?}", now_str());
            (NEVER_RAN_EXIT_CODE, None)
        }
    };
    rec.exit_code = Some(exit_code);
    rec.signal = signal;
    rec.oom_killed = oom_killed;
    rec.finished_at = Some(Timestamp::now());
    write_record(&paths, &rec, true)
}

fn open_log(path: &Path, max_size: u64, max_files: u32) -> io::Result<RotatingLog> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    RotatingLog::open(path, max_size, max_files)
}

fn write_record(paths: &ContainerPaths, rec: &ShimRecord, durable: bool) -> Result<(), ShimError> {
    record::write(&paths.record, rec, durable).map_err(|source| ShimError::Record {
        path: paths.record.clone(),
        source,
    })
}

/// Records a container that never ran, and tells the daemon.
fn fail(
    paths: &ContainerPaths,
    rec: ShimRecord,
    reason: FailureReason,
    message: String,
    notifier: &mut Notifier,
) -> Result<(), ShimError> {
    eprintln!("{} error: {reason:?}: {message}", now_str());
    let rec = ShimRecord {
        exit_code: Some(NEVER_RAN_EXIT_CODE),
        finished_at: Some(Timestamp::now()),
        reason: Some(reason),
        error: Some(message.clone()),
        ..rec
    };
    write_record(paths, &rec, true)?;
    notifier.send(&format!("failed {reason:?}: {message}"));
    Ok(())
}

/// libcontainer cleans up after a failed create itself; this catches what a failure before
/// its own cleanup could leave.
fn cleanup_libcontainer(paths: &ContainerPaths) {
    if paths.libcontainer_state.join("state.json").exists() {
        match Container::load(paths.libcontainer_state.clone()) {
            Ok(mut c) => {
                if let Err(e) = c.delete(true) {
                    eprintln!("{} error: cleaning up: {}", now_str(), error_chain(&e));
                }
            }
            Err(e) => eprintln!("{} error: cleaning up: {}", now_str(), error_chain(&e)),
        }
    }
    let _ = std::fs::remove_dir_all(&paths.libcontainer_state);
}

/// An error and its causes in one line, without repeating what an outer message already
/// says.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}

/// Copies the container's output into the CRI log until its init has exited and the pipes
/// are drained. Returns the init's wait status without reaping it.
fn pump(
    log: &mut RotatingLog,
    out_r: OwnedFd,
    err_r: OwnedFd,
    sigfd: &SignalFd,
    pid: Pid,
) -> Result<WaitStatus, ShimError> {
    let mut streams = [
        (Some(out_r), LineSplitter::new(Stream::Stdout)),
        (Some(err_r), LineSplitter::new(Stream::Stderr)),
    ];
    let mut buf = vec![0u8; 16 * 1024];
    let mut entries: Vec<u8> = Vec::new();
    let mut exited = exit_status(pid);
    let mut deadline = exited.map(|_| Instant::now() + DRAIN_AFTER_EXIT);
    let mut log_failed = false;
    loop {
        if exited.is_some() && streams.iter().all(|(fd, _)| fd.is_none()) {
            break;
        }
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
            }
        };
        let ready: Vec<(usize, bool)> = {
            let mut fds: Vec<PollFd> = Vec::with_capacity(3);
            let mut which: Vec<usize> = Vec::with_capacity(3);
            for (i, (fd, _)) in streams.iter().enumerate() {
                if let Some(fd) = fd {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                    which.push(i);
                }
            }
            fds.push(PollFd::new(sigfd.as_fd(), PollFlags::POLLIN));
            which.push(usize::MAX);
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(e) => {
                    return Err(ShimError::Sys {
                        action: "poll",
                        source: e,
                    });
                }
            }
            fds.iter()
                .zip(which)
                .map(|(fd, i)| (i, fd.revents().is_some_and(|r| !r.is_empty())))
                .collect()
        };
        let ts = now_str();
        for (i, is_ready) in ready {
            if !is_ready {
                continue;
            }
            if i == usize::MAX {
                // Drain the signalfd; the signals only say "look at the child".
                while let Ok(Some(_)) = sigfd.read_signal() {}
                if exited.is_none() {
                    exited = exit_status(pid);
                    if exited.is_some() {
                        deadline = Some(Instant::now() + DRAIN_AFTER_EXIT);
                    }
                }
                continue;
            }
            let (fd_slot, splitter) = &mut streams[i];
            let Some(fd) = fd_slot else { continue };
            match nix::unistd::read(fd.as_fd(), &mut buf) {
                Ok(0) => {
                    splitter.finish(&ts, &mut entries);
                    *fd_slot = None;
                }
                Ok(n) => splitter.feed(&buf[..n], &ts, &mut entries),
                Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => {}
                Err(e) => {
                    eprintln!("{} error: reading the container's output: {e}", now_str());
                    splitter.finish(&ts, &mut entries);
                    *fd_slot = None;
                }
            }
        }
        if let Err(e) = log.write_entries(&entries)
            && !log_failed
        {
            // Keep supervising: losing log lines is better than losing the exit status.
            eprintln!("{} error: writing the container log: {e}", now_str());
            log_failed = true;
        }
        entries.clear();
    }
    // Whatever is still buffered (a stream cut off by the deadline) is logged as is.
    let ts = now_str();
    for (_, splitter) in streams.iter_mut() {
        splitter.finish(&ts, &mut entries);
    }
    let _ = log.write_entries(&entries);
    // `exited` is always set when the loop ends: it only breaks after the exit.
    Ok(exited.unwrap_or(WaitStatus::StillAlive))
}

/// The init's status if it has exited, leaving it unreaped (WNOWAIT).
fn exit_status(pid: Pid) -> Option<WaitStatus> {
    match waitid(
        Id::Pid(pid),
        WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
    ) {
        Ok(WaitStatus::StillAlive) => None,
        Ok(status) => Some(status),
        // ECHILD: already reaped (cannot happen, we are its only waiter); treat as exited.
        Err(_) => Some(WaitStatus::StillAlive),
    }
}

/// Runs the workload like libcontainer's default executor, after giving it the signal
/// state a fresh process expects: ignored signals and the signal mask survive execve, and
/// the shim blocks SIGCHLD (for its signalfd), Rust's runtime ignores SIGPIPE, and whatever
/// started the daemon may have ignored more (glibc's internal signals 32 and 33 among them).
#[derive(Clone)]
struct CleanExecutor;

impl Executor for CleanExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        reset_signals();
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}

/// Gives the calling process the signal state a freshly started program expects.
fn reset_signals() {
    // Raw syscalls, because glibc's wrappers refuse to touch its internal signals. An
    // all-zero kernel `struct sigaction` is SIG_DFL with no flags and an empty mask,
    // whatever the architecture's field order.
    let default_action = [0u64; 4];
    let empty_mask: u64 = 0;
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads a zeroed struct large enough for any layout and
        // writes nothing (null old action); sigsetsize is the kernel's 8 bytes.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                default_action.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            );
        }
    }
    // SAFETY: sets this thread's signal mask from an 8-byte kernel sigset.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty_mask as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        );
    }
}

fn kill(args: KillArgs) -> ExitCode {
    if !valid_id(&args.id) {
        eprintln!("error: invalid container id {:?}", args.id);
        return ExitCode::FAILURE;
    }
    let paths = ContainerPaths::new(&args.root, &args.id);
    let not_running = || {
        eprintln!("container {} is not running", args.id);
        ExitCode::from(EXIT_NOT_RUNNING)
    };
    if !paths.libcontainer_state.join("state.json").exists() {
        return not_running();
    }
    let signal = match libcontainer::signal::Signal::try_from(args.signal) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: signal {}: {e}", args.signal);
            return ExitCode::FAILURE;
        }
    };
    let result = Container::load(paths.libcontainer_state.clone())
        .and_then(|mut c| c.kill(signal, args.all));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The shim deleted the container meanwhile, or it had already stopped.
        Err(_) if !paths.libcontainer_state.join("state.json").exists() => not_running(),
        Err(libcontainer::error::LibcontainerError::IncorrectStatus(_)) => not_running(),
        Err(e) => {
            eprintln!(
                "error: cannot signal container {}: {}",
                args.id,
                error_chain(&e)
            );
            ExitCode::FAILURE
        }
    }
}

fn delete(args: DeleteArgs) -> ExitCode {
    if !valid_id(&args.id) {
        eprintln!("error: invalid container id {:?}", args.id);
        return ExitCode::FAILURE;
    }
    let paths = ContainerPaths::new(&args.root, &args.id);
    if !paths.libcontainer_state.join("state.json").exists() {
        let _ = std::fs::remove_dir_all(&paths.libcontainer_state);
        return ExitCode::SUCCESS;
    }
    match Container::load(paths.libcontainer_state.clone()).and_then(|mut c| c.delete(true)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "error: cannot delete container {}: {}",
                args.id,
                error_chain(&e)
            );
            ExitCode::FAILURE
        }
    }
}

mod exec;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_chain_skips_repeats() {
        let inner = io::Error::other("no such file");
        let outer = io::Error::new(io::ErrorKind::NotFound, inner);
        assert_eq!(error_chain(&outer), "no such file");
        #[derive(Debug, thiserror::Error)]
        #[error("cannot create")]
        struct Outer(#[source] io::Error);
        assert_eq!(
            error_chain(&Outer(io::Error::other("bad path"))),
            "cannot create: bad path"
        );
    }
}
