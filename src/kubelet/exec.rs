//! The exec service of the API ([`ExecService`]) over the runtime: runs a command in a
//! running container and connects its streams to channels.
//!
//! Each stream is pumped by a blocking thread (the runtime's streams are plain files);
//! one more thread waits for the exit. When the server drops the [`ExecProcess`] (the
//! client went away) before the process ended, the process is killed.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

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
