//! `berth-shim`: the per-container supervisor alone, without the daemon, API server, CLI or
//! TUI, so each running container costs less memory than a whole `berth` binary would.
//! Called with the same arguments as `berth shim …` (`berth-shim shim run --id …`); the
//! runtime prefers it when it sits beside the `berth` executable.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1).peekable();
    // Accept both `berth-shim shim run …` and `berth-shim run …`.
    if args.peek().is_some_and(|a| a == "shim") {
        args.next();
    }
    berth::runtime::shim::main(args.collect())
}
