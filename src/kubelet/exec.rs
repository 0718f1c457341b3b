//! The exec service of the API ([`ExecService`]) over the runtime: runs a command in a
//! running container and connects its streams to channels.
//!
//! Each stream is pumped by a blocking thread (the runtime's streams are plain files);
//! one more thread waits for the exit. When the server drops the [`ExecProcess`] (the
//! client went away) before the process ended, the process is killed.
//!
//! Exec probes use the same runtime exec through [`ProbeExec`]: output collected (bounded)
//! on one blocking thread, the whole run bounded by the probe's timeout.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::prober::{ExecFuture, ExecRunner};
use crate::api::ApiError;
use crate::runtime::{ExecError, ExecSpec, Runtime, RuntimeError};
use crate::server::node::{BoxFuture, ExecProcess, ExecRequest, ExecService};

/// How often the exit waiter looks whether anyone still wants the answer.
const CANCEL_CHECK: Duration = Duration::from_millis(250);

/// Chunks buffered per stream before the reader waits for the client.
const STREAM_BUFFER: usize = 16;

/// [`ExecService`] over the kubelet's runtime.
pub struct Exec(pub Arc<Runtime>);

/// Maps an exec error to the API's Status kinds (once, here).
pub fn api_error(e: ExecError) -> ApiError {
    match e {
        ExecError::Runtime { id, source } => match *source {
            RuntimeError::NotRunning { .. } | RuntimeError::NotFound { .. } => {
                ApiError::bad_request(format!(
                    "container {id} is not running; exec needs a running container"
                ))
            }
            other => ApiError::internal(format!("exec in container {id}: {other}")),
        },
        ExecError::ShimVanished { .. } => ApiError::bad_request(e.to_string()),
        other => ApiError::internal(other.to_string()),
    }
}

impl ExecService for Exec {
    fn exec(&self, request: ExecRequest) -> BoxFuture<Result<ExecProcess, ApiError>> {
        let runtime = self.0.clone();
        Box::pin(async move {
            let spec = ExecSpec {
                args: request.command.clone(),
                env: Vec::new(),
                stdin: request.stdin,
                tty: request.tty,
            };
            let id = request.container_id.clone();
            let mut child = tokio::task::spawn_blocking(move || runtime.exec(&id, &spec))
                .await
                .map_err(|e| ApiError::internal(format!("exec task failed: {e}")))?
                .map_err(api_error)?;

            let stdin = child.stdin.take().map(|file| {
                let (tx, rx) = mpsc::channel::<Bytes>(STREAM_BUFFER);
                std::thread::spawn(move || write_stdin(file, rx));
                tx
            });
            let stdout = child
                .stdout
                .take()
                .map(|file| pump_output(file, request.stdout));
            let stderr = child
                .stderr
                .take()
                .map(|file| pump_output(file, request.stderr));
            let resize = match child.terminal() {
                Ok(Some(terminal)) => {
                    let (tx, mut rx) = mpsc::channel::<(u16, u16)>(4);
                    tokio::spawn(async move {
                        while let Some((columns, rows)) = rx.recv().await {
                            let _ = terminal.resize(columns, rows);
                        }
                    });
                    Some(tx)
                }
                _ => None,
            };
            let (exit_tx, exit_rx) = oneshot::channel::<Result<i32, ApiError>>();
            std::thread::spawn(move || {
                loop {
                    match child.wait(Some(CANCEL_CHECK)) {
                        Ok(Some(code)) => {
                            let _ = exit_tx.send(Ok(code));
                            return;
                        }
                        Ok(None) if exit_tx.is_closed() => {
                            // Nobody listens any more: dropping the child kills the process.
                            return;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            let _ = exit_tx.send(Err(ApiError::internal(format!(
                                "waiting for the exec failed: {e}"
                            ))));
                            return;
                        }
                    }
                }
            });
            let exit: BoxFuture<Result<i32, ApiError>> = Box::pin(async move {
                exit_rx.await.unwrap_or_else(|_| {
                    Err(ApiError::internal(
                        "the exec waiter ended without an answer",
                    ))
                })
            });
            Ok(ExecProcess {
                stdin,
                stdout: if request.stdout { stdout } else { None },
                stderr: if request.stderr && !request.tty {
                    stderr
                } else {
                    None
                },
                resize,
                exit,
            })
        })
    }
}

/// Copies what the client sends to the process's stdin; closes it when the client does.
fn write_stdin(mut file: std::fs::File, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(chunk) = rx.blocking_recv() {
        if file.write_all(&chunk).is_err() {
            return;
        }
    }
}

/// Reads a stream on a thread of its own into a channel; with `wanted` false the output
/// is read and dropped (the process must not block on a full pipe).
fn pump_output(mut file: std::fs::File, wanted: bool) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel::<Bytes>(STREAM_BUFFER);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match file.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if wanted && tx.blocking_send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                        // The client is gone: keep draining so the process is not stuck.
                        continue;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // EIO from a pty master: the terminal's last user is gone.
                Err(_) => return,
            }
        }
    });
    rx
}

/// How much of an exec probe's output is kept (Kubernetes keeps 10 KiB).
const PROBE_OUTPUT_LIMIT: usize = 10 * 1024;

/// Exec probes through the runtime: [`ExecRunner`] for the prober.
pub struct ProbeExec(pub Arc<Runtime>);

impl ExecRunner for ProbeExec {
    fn run(&self, container_id: &str, command: Vec<String>, timeout: Duration) -> ExecFuture {
        let runtime = self.0.clone();
        let id = container_id.to_string();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || run_probe_command(&runtime, &id, command, timeout))
                .await
                .map_err(|e| format!("the exec probe task failed: {e}"))?
        })
    }
}

/// Runs `args` in container `id` and returns its exit code and combined output; `Err`
/// when it could not run at all (a not-running container) or did not end within `timeout`
/// (then it is killed).
fn run_probe_command(
    runtime: &Runtime,
    id: &str,
    args: Vec<String>,
    timeout: Duration,
) -> Result<(i32, String), String> {
    let deadline = Instant::now() + timeout;
    let spec = ExecSpec {
        args,
        env: Vec::new(),
        stdin: false,
        tty: false,
    };
    let mut child = match runtime.exec(id, &spec) {
        Ok(child) => child,
        // The command itself cannot be started (not found, not executable): the check
        // fails with the reason, as with Kubernetes' runtimes.
        Err(e @ ExecError::Start { .. }) => return Ok((126, e.to_string())),
        Err(e) => return Err(e.to_string()),
    };
    let output = read_bounded([child.stdout.take(), child.stderr.take()], deadline);
    // The output ended (or the time is up): the exit message follows at once.
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    match child.wait(Some(left)) {
        Ok(Some(code)) => Ok((code, output)),
        Ok(None) => {
            let _ = child.kill(nix::sys::signal::Signal::SIGKILL);
            Err(format!("command timed out after {}s", timeout.as_secs()))
        }
        Err(e) => Err(format!("waiting for the probe command failed: {e}")),
    }
}

/// Reads both streams until they end or `deadline`, keeping the first
/// [`PROBE_OUTPUT_LIMIT`] bytes (the rest is read and dropped so the process never blocks).
fn read_bounded(streams: [Option<File>; 2], deadline: Instant) -> String {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut open: Vec<File> = streams.into_iter().flatten().collect();
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    while !open.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd> = open
                .iter()
                .map(|f| PollFd::new(f.as_fd(), PollFlags::POLLIN))
                .collect();
            match poll(
                &mut fds,
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX),
            ) {
                Ok(0) => break,
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(_) => break,
            }
            fds.iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect()
        };
        let mut ended = Vec::new();
        for (i, file) in open.iter_mut().enumerate() {
            if !ready[i] {
                continue;
            }
            match file.read(&mut buf) {
                Ok(0) => ended.push(i),
                Ok(n) => {
                    let room = PROBE_OUTPUT_LIMIT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => ended.push(i),
            }
        }
        for i in ended.into_iter().rev() {
            open.remove(i);
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;
    use std::process::{Command, Stdio};

    fn spawn(script: &str) -> (std::process::Child, [Option<File>; 2]) {
        let mut child = Command::new("sh")
            .args(["-c", script])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().map(|s| File::from(OwnedFd::from(s)));
        let err = child.stderr.take().map(|s| File::from(OwnedFd::from(s)));
        (child, [out, err])
    }

    #[test]
    fn probe_output_is_combined_and_bounded() {
        let (mut child, streams) = spawn("echo out; echo err >&2");
        let got = read_bounded(streams, Instant::now() + Duration::from_secs(30));
        child.wait().unwrap();
        let mut lines: Vec<&str> = got.lines().collect();
        lines.sort();
        assert_eq!(lines, ["err", "out"]);

        let (mut child, streams) = spawn("head -c 50000 /dev/zero | tr '\\0' x");
        let got = read_bounded(streams, Instant::now() + Duration::from_secs(30));
        child.wait().unwrap();
        assert_eq!(got.len(), PROBE_OUTPUT_LIMIT);
    }

    #[test]
    fn reading_stops_at_the_deadline_of_a_command_that_hangs() {
        let (mut child, streams) = spawn("echo started; exec sleep 60");
        let got = read_bounded(streams, Instant::now() + Duration::from_millis(300));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(got, "started\n");
    }
}
