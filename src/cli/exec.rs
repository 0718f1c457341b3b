//! `berth exec POD [-c C] [-i] [-t] -- CMD…`: runs a command in a container, as
//! `kubectl exec` does; the remote exit code becomes berth's.

use std::io::{IsTerminal, Read, Write};

use clap::Args;
use tokio::sync::mpsc;

use super::{CliError, namespace_or_default};
use crate::client::{Client, ExecEvent, ExecOptions};

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The pod.
    pub pod: String,
    /// The container (default: the pod's default container, else its first).
    #[arg(short, long)]
    pub container: Option<String>,
    /// Pass standard input to the command.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Give the command a terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Keys typed before the command started, from the TUI that launched `berth exec -it` (the
/// bytes a terminal sends for them): sent first on standard input, ahead of the terminal.
pub const TYPEAHEAD_ENV: &str = "BERTH_EXEC_TYPEAHEAD";

/// Puts the terminal in raw mode for as long as it lives.
struct RawMode;

impl RawMode {
    fn enable() -> Option<RawMode> {
        crossterm::terminal::enable_raw_mode()
            .ok()
            .map(|()| RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// Runs the command; returns its exit code.
pub async fn exec(client: &Client, args: ExecArgs) -> Result<i32, CliError> {
    let ns = namespace_or_default(&args.namespace);
    let mut tty = args.tty;
    if tty && !(args.stdin && std::io::stdin().is_terminal()) {
        eprintln!("Unable to use a TTY - input is not a terminal or the right kind of file");
        tty = false;
    }
    let opts = ExecOptions {
        container: args.container.clone(),
        command: args.command.clone(),
        stdin: args.stdin,
        stdout: true,
        stderr: !tty,
        tty,
    };
    let (mut writer, mut reader) = client.exec(&ns, &args.pod, &opts).await?;
    let raw_mode = if tty { RawMode::enable() } else { None };

    // stdin on a plain thread: a blocked read must not keep the process from exiting.
    let (in_tx, mut in_rx) = mpsc::channel::<Option<Vec<u8>>>(8);
    if args.stdin {
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buf = vec![0u8; 8192];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = in_tx.blocking_send(None);
                        return;
                    }
                    Ok(n) => {
                        if in_tx.blocking_send(Some(buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    } else {
        drop(in_tx);
    }
    let mut winch = if tty {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok()
    } else {
        None
    };
    if tty && let Ok((w, h)) = crossterm::terminal::size() {
        writer.resize(w, h).await?;
    }

    if args.stdin
        && let Some(ahead) = std::env::var_os(TYPEAHEAD_ENV)
    {
        use std::os::unix::ffi::OsStrExt;
        writer.stdin(ahead.as_bytes()).await?;
    }
    let mut stdin_open = args.stdin;
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    loop {
        tokio::select! {
            chunk = in_rx.recv(), if stdin_open => match chunk {
                Some(Some(data)) => writer.stdin(&data).await?,
                Some(None) | None => {
                    stdin_open = false;
                    writer.close_stdin().await?;
                }
            },
            _ = async {
                match winch.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                if let Ok((w, h)) = crossterm::terminal::size() {
                    writer.resize(w, h).await?;
                }
            }
            event = reader.next() => match event {
                Some(ExecEvent::Stdout(data)) => {
                    let _ = stdout.write_all(&data);
                    let _ = stdout.flush();
                }
                Some(ExecEvent::Stderr(data)) => {
                    let _ = stderr.write_all(&data);
                    let _ = stderr.flush();
                }
                Some(ExecEvent::Exit(code)) => {
                    drop(raw_mode);
                    if code != 0 {
                        eprintln!("command terminated with exit code {code}");
                    }
                    return Ok(code);
                }
                Some(ExecEvent::Failed(e)) => return Err(CliError::Client(e.into())),
                None => {
                    return Err(CliError::Failed(
                        "the connection to the daemon ended before the command did".into(),
                    ));
                }
            },
        }
    }
}
