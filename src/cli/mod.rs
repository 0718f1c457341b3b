//! The `berth` command line. Talks to the daemon only through [`crate::client`].

mod apply;
pub mod backup;
pub mod doctor;
pub mod exec;
mod get;
mod image;
mod logs;
pub mod manifest;
mod node;
pub mod portforward;
mod rollout;
mod top;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::registry::{self, ResourceType};
use crate::client::{Client, ClientError};

/// berth: Kubernetes workloads on one homelab server.
#[derive(Debug, Parser)]
///
/// With no command on a terminal, berth opens its terminal UI; without a terminal it prints
/// this help.
#[command(name = "berth", version, about, long_about = None)]
pub struct Cli {
    /// The daemon's API socket (default: $BERTH_SOCKET, else /run/berth/berth.sock).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the berth daemon (API server, store, controllers).
    Daemon(DaemonArgs),
    /// Create or update objects from manifests.
    Apply(ApplyArgs),
    /// Show objects as a table, YAML, JSON or names.
    Get(GetArgs),
    /// Show an object in detail, with its events.
    Describe(DescribeArgs),
    /// Delete objects by name or by manifest.
    Delete(DeleteArgs),
    /// Show events, newest last.
    Events(EventsArgs),
    /// Print a container's log (-f to follow it).
    Logs(LogsArgs),
    /// Show CPU and memory usage of pods or of the node.
    Top(TopArgs),
    /// Run a command in a container of a pod.
    Exec(exec::ExecArgs),
    /// Forward local ports to a pod (or a pod of a service or deployment).
    PortForward(portforward::PortForwardArgs),
    /// Show the client and server versions.
    Version,
    /// Check that this host can run berth; print each problem with its fix.
    Doctor(DoctorArgs),
    /// Take a stopped node apart: stop every pod, remove every mount, cgroup, network
    /// namespace, bridge, veth and nftables table berth made, and its files.
    Reset(ResetArgs),
    /// Write a backup of this node (store, volume data, secrets key, configuration) to FILE.
    Backup(backup::BackupArgs),
    /// Restore a backup into a stopped node's fresh state directory.
    Restore(backup::RestoreArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Internal: write the man pages into DIR (used by packaging/build.sh).
    #[command(hide = true, name = "generate-man")]
    GenerateMan { dir: PathBuf },
    /// Manage the node's local images (import, ls, inspect, rm).
    Image(image::ImageArgs),
    /// Set the number of replicas of a Deployment, ReplicaSet or StatefulSet.
    Scale(rollout::ScaleArgs),
    /// Follow, list, undo, restart, pause or resume the rollouts of a Deployment.
    Rollout(rollout::RolloutArgs),
    /// Change part of an object in place (set image).
    Set(rollout::SetArgs),
    /// Mark a node unschedulable: new pods stay Pending until uncordon.
    Cordon(node::NodeArgs),
    /// Mark a node schedulable again.
    Uncordon(node::NodeArgs),
    /// Cordon a node and evict its pods, honouring their grace periods.
    Drain(node::DrainArgs),
    /// Open the terminal UI (what `berth` alone does on a terminal).
    Tui,
    /// Internal: the per-container supervisor and its helpers, spawned by the daemon.
    #[command(hide = true, disable_help_flag = true)]
    Shim(ShimArgs),
}

/// Everything after `berth shim`, parsed by the shim itself (`crate::runtime::shim`), which
/// must run before any async runtime or thread exists.
#[derive(Debug, Args)]
pub struct ShimArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The daemon's configuration (for stateDir, socket and group).
    #[arg(long, value_name = "FILE", default_value = crate::daemon::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Print without colours (also when NO_COLOR is set or stdout is not a terminal).
    #[arg(long)]
    pub no_color: bool,
}

#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The daemon's configuration (for its directories, cgroup parent and network).
    #[arg(long, value_name = "FILE", default_value = crate::daemon::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// The daemon's state directory, when it was started with `--state-dir`.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Keep the state (objects, images) and the logs: a later start brings the workloads
    /// back. The package's removal uses this; its purge does not.
    #[arg(long)]
    pub keep_state: bool,
    /// Do not ask for confirmation (needed when standard input is not a terminal).
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// State directory (overrides the configuration).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Manifest file, directory (recursive) or - for standard input; repeatable.
    #[arg(short = 'f', long = "filename", required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Namespace for objects that do not name one.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Check everything with the server and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Wide,
    Yaml,
    Json,
    Name,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Kind (pods, po, deploy, svc, …; comma-separated for several; `all`).
    pub kind: String,
    /// Names of objects to show (default: all).
    pub names: Vec<String>,
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Label selector, e.g. app=web,tier!=db.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector, e.g. status.phase=Running.
    #[arg(long)]
    pub field_selector: Option<String>,
    #[arg(short, long, value_enum)]
    pub output: Option<Output>,
    /// After listing, watch for changes.
    #[arg(short, long)]
    pub watch: bool,
    /// Leave out the header line.
    #[arg(long)]
    pub no_headers: bool,
}

#[derive(Debug, Args)]
pub struct DescribeArgs {
    pub kind: String,
    pub names: Vec<String>,
    #[arg(short, long)]
    pub namespace: Option<String>,
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Cascade {
    Background,
    Foreground,
    Orphan,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kind, then names (or use -f).
    pub args: Vec<String>,
    /// Delete the objects in these manifests.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Delete the objects of KIND whose labels match (e.g. `-l app=web`).
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Delete every object of KIND in the namespace.
    #[arg(long)]
    pub all: bool,
    /// What happens to objects this one owns.
    #[arg(long, value_enum, default_value = "background")]
    pub cascade: Cascade,
    /// Wait until the objects are gone (`--wait`, `--wait=true` or `--wait=false`).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "false", action = clap::ArgAction::Set)]
    pub wait: bool,
    /// How long --wait waits, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Do not fail when an object does not exist.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Seconds a pod gets to stop (default: its terminationGracePeriodSeconds).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// Delete at once, without waiting for the containers to stop (grace period 0).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[arg(short, long)]
    pub namespace: Option<String>,
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Only events of this object (KIND/NAME).
    #[arg(long = "for", value_name = "KIND/NAME")]
    pub for_object: Option<String>,
    /// After listing, watch for new events.
    #[arg(short, long)]
    pub watch: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The pod (NAME or pod/NAME).
    pub pod: String,
    /// The container (default: the only one, or the pod's default-container annotation).
    #[arg(short, long)]
    pub container: Option<String>,
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Keep printing new lines until the container's run ends.
    #[arg(short, long)]
    pub follow: bool,
    /// The log of the previous run of the container.
    #[arg(short, long)]
    pub previous: bool,
    /// Only the last N lines (-1: all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// Only lines newer than this, e.g. 10s, 5m, 1h.
    #[arg(long)]
    pub since: Option<String>,
    /// Only lines since this RFC 3339 time.
    #[arg(long)]
    pub since_time: Option<String>,
    /// Prefix each line with its time.
    #[arg(long)]
    pub timestamps: bool,
    /// Stop after this many bytes.
    #[arg(long)]
    pub limit_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TopKind {
    #[value(alias = "pod", alias = "po")]
    Pods,
    #[value(alias = "nodes", alias = "no")]
    Node,
}

#[derive(Debug, Args)]
pub struct TopArgs {
    /// pods or node.
    #[arg(value_enum)]
    pub kind: TopKind,
    /// One pod or node (default: all).
    pub name: Option<String>,
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Pods of every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// One line per container.
    #[arg(long)]
    pub containers: bool,
    /// Leave out the header line.
    #[arg(long)]
    pub no_headers: bool,
}

/// A command's failure: printed as `error: …` with exit code 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

/// Resolves a kind the user typed, with kubectl's message when unknown.
pub fn resolve_kind(name: &str) -> Result<&'static ResourceType, CliError> {
    registry::resolve(name).ok_or_else(|| {
        CliError::Usage(format!(
            "the server doesn't have a resource type \"{name}\" (known: {})",
            registry::REGISTRY
                .iter()
                .map(|r| r.plural)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// The namespace to use: the flag, else `default`.
pub fn namespace_or_default(flag: &Option<String>) -> String {
    flag.clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

/// Runs a client command; returns the process exit code.
pub async fn run(socket: Option<PathBuf>, command: Command) -> i32 {
    let client = Client::from_flag(socket.as_deref());
    let socket_flag = socket;
    let result = match command {
        Command::Apply(a) => apply::apply(&client, a).await,
        Command::Get(a) => get::get(&client, a).await,
        Command::Describe(a) => get::describe(&client, a).await,
        Command::Delete(a) => apply::delete(&client, a).await,
        Command::Events(a) => get::events(&client, a).await,
        Command::Logs(a) => logs::logs(&client, a).await,
        Command::Top(a) => top::top(&client, a).await,
        Command::Version => version(&client).await,
        Command::PortForward(a) => portforward::port_forward(&client, a).await,
        Command::Exec(a) => {
            return exec::exec(&client, a).await.unwrap_or_else(|e| {
                eprintln!("error: {e}");
                1
            });
        }
        Command::Doctor(a) => doctor(socket_flag.as_deref(), a),
        Command::Backup(a) => backup::backup(&client, a).await,
        Command::Completion { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "berth", &mut std::io::stdout());
            Ok(())
        }
        Command::GenerateMan { dir } => generate_man(&dir),
        Command::Image(a) => image::image(&client, a).await,
        Command::Scale(a) => rollout::scale(&client, a).await,
        Command::Rollout(a) => rollout::rollout(&client, a).await,
        Command::Set(a) => rollout::set(&client, a).await,
        Command::Cordon(a) => node::set_unschedulable(&client, &a.node, true).await,
        Command::Uncordon(a) => node::set_unschedulable(&client, &a.node, false).await,
        Command::Drain(a) => node::drain(&client, a).await,
        Command::Tui => crate::tui::run(
            client.clone(),
            std::sync::Arc::new(crate::tui::logs::ApiLogs(client.clone())),
        )
        .await
        .map_err(|e| CliError::Failed(e.to_string())),
        Command::Reset(_) | Command::Restore(_) => Err(CliError::Usage(
            "berth reset and berth restore run outside the client's runtime (see main.rs)".into(),
        )),
        Command::Daemon(_) => Err(CliError::Usage(
            "berth daemon is not a client command".into(),
        )),
        Command::Shim(_) => Err(CliError::Usage(
            "berth shim is internal and not a client command".into(),
        )),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// `berth reset`: asks first on a terminal (unless `--yes`), then resets; exit code 1 when
/// it refused or something could not be removed. Run without any async runtime.
pub fn reset(args: ResetArgs) -> i32 {
    use std::io::{BufRead, IsTerminal, Write};
    let explicit = args.config.as_os_str() != crate::daemon::DEFAULT_CONFIG;
    let mut config = match crate::daemon::Config::load(&args.config, explicit) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    if let Some(dir) = args.state_dir.clone() {
        config.state_dir = dir;
    }
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "error: berth reset removes every pod of this node{}; run it on a terminal to confirm, or pass --yes",
                if args.keep_state {
                    ""
                } else {
                    " and all of berth's state"
                }
            );
            return 1;
        }
        let state = if args.keep_state {
            String::new()
        } else {
            format!(", and deletes {}", config.state_dir.display())
        };
        print!(
            "This stops every pod and removes berth's containers, mounts, cgroups and network{state}.\nContinue? [y/N] "
        );
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing was changed");
            return 1;
        }
    }
    match crate::reset::reset(&config, args.keep_state) {
        Ok(report) => {
            for line in &report.done {
                println!("{line}");
            }
            for line in &report.failed {
                eprintln!("error: {line}");
            }
            i32::from(!report.failed.is_empty())
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// `berth doctor`: exit code 1 when a check fails.
fn doctor(socket: Option<&std::path::Path>, args: DoctorArgs) -> Result<(), CliError> {
    use std::io::IsTerminal;
    let explicit = args.config.as_os_str() != crate::daemon::DEFAULT_CONFIG;
    let config = crate::daemon::Config::load(&args.config, explicit)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let settings = doctor::Settings {
        state_dir: config.state_dir.clone(),
        socket: socket.map(PathBuf::from).unwrap_or(config.socket.clone()),
        group: config.group.clone(),
    };
    let findings = doctor::run_checks(&doctor::RealHost, &settings);
    let color = !args.no_color
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal();
    print!("{}", doctor::render(&findings, color));
    if findings.iter().any(|f| f.level == doctor::Level::Fail) {
        return Err(CliError::Failed(
            "this host cannot run berth yet; fix the problems marked FAIL".into(),
        ));
    }
    Ok(())
}

/// Writes `berth.1` and one page per subcommand (`berth-get.1`, …) into `dir`.
fn generate_man(dir: &std::path::Path) -> Result<(), CliError> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::Failed(format!("cannot create {}: {e}", dir.display())))?;
    let cmd = Cli::command();
    let write = |name: String, cmd: clap::Command| -> Result<(), CliError> {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut out)
            .map_err(|e| CliError::Failed(format!("cannot render {name}.1: {e}")))?;
        std::fs::write(&path, out)
            .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", path.display())))
    };
    // A page per command, and per subcommand of those that have them
    // (`berth-rollout-status.1`).
    fn pages(prefix: &str, cmd: &clap::Command, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let name = format!("{prefix}-{}", sub.get_name());
            out.push((
                name.clone(),
                sub.clone()
                    .display_name(name.clone())
                    .bin_name(name.clone()),
            ));
            pages(&name, sub, out);
        }
    }
    let mut all = Vec::new();
    pages("berth", &cmd, &mut all);
    for (name, sub) in all {
        write(name, sub)?;
    }
    write("berth".into(), cmd)
}

async fn version(client: &Client) -> Result<(), CliError> {
    println!("Client Version: v{}", env!("CARGO_PKG_VERSION"));
    let v = client.version().await?;
    println!(
        "Server Version: {}",
        v["gitVersion"].as_str().unwrap_or("unknown")
    );
    Ok(())
}
