//! The `berth` binary: `berth daemon`, `berth shim …` (internal), and the client commands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use berth::cli::{Cli, Command};
use berth::daemon::{self, Config};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        Some(c) => c,
        // `berth` alone: the TUI on a terminal; scripts and pipes get the help, as before.
        None if berth::tui::on_terminal() => Command::Tui,
        None => {
            eprint!("{}", Cli::command().render_help());
            return ExitCode::from(2);
        }
    };
    match command {
        // Before any runtime or thread: the shim calls libcontainer, which forks.
        Command::Shim(args) => berth::runtime::shim::main(args.args),
        Command::Daemon(args) => run_daemon(cli.socket, args),
        // Builds its own runtime for the network's netlink calls.
        Command::Reset(args) => ExitCode::from(u8::try_from(berth::cli::reset(args)).unwrap_or(1)),
        Command::Restore(args) => {
            ExitCode::from(u8::try_from(berth::cli::backup::restore(args)).unwrap_or(1))
        }
        command => {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let code = rt.block_on(berth::cli::run(cli.socket, command));
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Under systemd the journal adds timestamps; colours only on a terminal.
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if journald {
        builder.without_time().with_ansi(false).init();
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
}

fn run_daemon(socket: Option<PathBuf>, args: berth::cli::DaemonArgs) -> ExitCode {
    init_logging();
    daemon::tune_allocator();
    let (path, explicit) = match &args.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(daemon::DEFAULT_CONFIG), false),
    };
    let mut config = match Config::load(&path, explicit) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(dir) = args.state_dir {
        config.state_dir = dir;
    }
    config.config_file = path.is_file().then_some(path);
    // The same socket the client commands use: --socket, else BERTH_SOCKET, else the config.
    if let Some(socket) = socket.or_else(|| {
        std::env::var_os("BERTH_SOCKET")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    }) {
        config.socket = socket;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(daemon::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
