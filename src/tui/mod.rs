//! The terminal UI: `berth` on a terminal, or `berth tui`.
//!
//! Laid out as gitui and yazi are: [`state`] holds what is known (object caches fed by
//! watches), [`actions`] turns keys into state changes and [`actions::Effect`]s, [`views`]
//! draws from a borrowed state. The event loop here owns the state; network work runs in
//! tasks that report back over a channel, so drawing and keys never wait on the daemon.
//! Watches follow the client-go reflector: list, watch from the list's resourceVersion,
//! list again on 410 Gone or any failure, with backoff; while the daemon is away a
//! "disconnected, retrying" line shows and the caches keep their last contents.
//!
//! The terminal is restored on every exit path, and on panic (the hook runs before the
//! default one prints). `NO_COLOR` (any value) turns colours off.

pub mod actions;
pub mod filter;
pub mod logs;
pub mod state;
pub mod views;
mod watch;

#[cfg(test)]
mod snapshots;

use std::io::{IsTerminal, Stdout};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use crossterm::event::{Event, KeyEventKind};
use k8s_openapi::jiff::Timestamp;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use serde_json::Value;
use tokio::sync::mpsc;

use self::actions::Effect;
use self::logs::LogSource;
use self::state::{ActiveForward, Dialog, Flash, Mode, Source, State, Target};
use self::watch::Update;
use crate::api::ApiError;
use crate::client::{Client, ClientError, ForwardEvent, ForwardTarget, PortSpec};

/// Errors that end the TUI.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error(
        "the terminal UI needs a terminal on standard input and output; see berth --help for the commands"
    )]
    NotATerminal,
    #[error("cannot use the terminal: {0}")]
    Terminal(#[source] std::io::Error),
}

/// Whether the TUI can run here: standard input and output are terminals.
pub fn on_terminal() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Whether colours are wanted (<https://no-color.org>: any non-empty `NO_COLOR` turns them off).
pub fn colors_wanted() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Runs the TUI until the user quits. `logs` feeds the log viewer.
pub async fn run(client: Client, logs: Arc<dyn LogSource>) -> Result<(), TuiError> {
    if !on_terminal() {
        return Err(TuiError::NotATerminal);
    }
    let mut terminal = TerminalGuard::enter()?;
    let input = InputThread::start();
    let result = event_loop(&mut terminal, &input, client, logs).await;
    input.stop();
    drop(terminal);
    result
}

/// Puts the terminal in raw mode on the alternate screen, and back when dropped.
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

fn restore_terminal() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(
        std::io::stdout(),
        crossterm::terminal::LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

fn suspend_terminal() {
    restore_terminal();
}

/// Hands the terminal to `cmd` (an editor, a shell) until it exits, then takes it back.
/// The command runs on a blocking thread, so the watches keep running meanwhile.
async fn run_on_the_terminal(
    mut cmd: std::process::Command,
    typeahead_env: Option<&str>,
    guard: &mut TerminalGuard,
    input: &InputThread,
) -> (
    std::io::Result<std::process::ExitStatus>,
    std::io::Result<()>,
) {
    let ahead: Vec<u8> = input.pause().iter().flat_map(key_bytes).collect();
    if let Some(var) = typeahead_env.filter(|_| !ahead.is_empty()) {
        cmd.env(var, std::ffi::OsStr::from_bytes(&ahead));
    }
    suspend_terminal();
    let status = tokio::task::spawn_blocking(move || cmd.status())
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    let resumed = resume_terminal();
    let _ = guard.terminal.clear();
    input.resume();
    (status, resumed)
}

/// The bytes a terminal sends for a key, so keys typed ahead reach the program that takes
/// the terminal over (a shell) as if typed there.
fn key_bytes(ev: &Event) -> Vec<u8> {
    use crossterm::event::{KeyCode, KeyEventKind, KeyModifiers};
    let Event::Key(k) = ev else {
        return match ev {
            Event::Paste(text) => text.as_bytes().to_vec(),
            _ => Vec::new(),
        };
    };
    if k.kind == KeyEventKind::Release {
        return Vec::new();
    }
    match k.code {
        KeyCode::Char(c)
            if k.modifiers.contains(KeyModifiers::CONTROL) && c.is_ascii_alphabetic() =>
        {
            vec![(c.to_ascii_lowercase() as u8) & 0x1f]
        }
        KeyCode::Char(c) => c.to_string().into_bytes(),
        KeyCode::Enter => b"\r".to_vec(),
        KeyCode::Tab => b"\t".to_vec(),
        KeyCode::Backspace => vec![0x7f],
        KeyCode::Esc => vec![0x1b],
        KeyCode::Up => b"\x1b[A".to_vec(),
        KeyCode::Down => b"\x1b[B".to_vec(),
        KeyCode::Right => b"\x1b[C".to_vec(),
        KeyCode::Left => b"\x1b[D".to_vec(),
        _ => Vec::new(),
    }
}

fn resume_terminal() -> std::io::Result<()> {
    crossterm::terminal::enable_raw_mode()?;
    crossterm::execute!(
        std::io::stdout(),
        crossterm::terminal::EnterAlternateScreen,
        crossterm::cursor::Hide
    )
}

impl TerminalGuard {
    fn enter() -> Result<TerminalGuard, TuiError> {
        // Restore before the panic message is printed, or it lands in raw mode on the
        // alternate screen and vanishes.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
        resume_terminal().map_err(TuiError::Terminal)?;
        let terminal = Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(|e| {
            restore_terminal();
            TuiError::Terminal(e)
        })?;
        Ok(TerminalGuard { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Reads terminal events on a thread of its own (crossterm's read blocks), so the async
/// loop only ever awaits a channel. Paused while another program (an editor, a shell) owns
/// the terminal: [`InputThread::pause`] returns only once the thread has stopped reading,
/// so what the user types next goes to that program, not into crossterm's buffer.
struct InputThread {
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Event>>,
    /// [`READING`], [`PAUSE_ASKED`] or [`PAUSED`].
    state: Arc<AtomicU8>,
    /// Keys read after a pause was asked for: typed ahead for the program taking over.
    typed_ahead: Arc<std::sync::Mutex<Vec<Event>>>,
    stop: Arc<AtomicBool>,
}

const READING: u8 = 0;
const PAUSE_ASKED: u8 = 1;
const PAUSED: u8 = 2;

/// How long the input thread waits for a key before it looks at its state again.
const INPUT_POLL: Duration = Duration::from_millis(20);

impl InputThread {
    fn start() -> InputThread {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(AtomicU8::new(READING));
        let typed_ahead = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, s, ahead) = (state.clone(), stop.clone(), typed_ahead.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match st.load(Ordering::SeqCst) {
                    READING => {}
                    PAUSE_ASKED => {
                        // Keys read after the pause was asked for belong to the program
                        // that takes the terminal, not to the TUI.
                        while matches!(crossterm::event::poll(Duration::ZERO), Ok(true)) {
                            match crossterm::event::read() {
                                Ok(ev) => {
                                    if let Ok(mut a) = ahead.lock() {
                                        a.push(ev);
                                    }
                                }
                                Err(_) => break,
                            }
                        }
                        // Fails when resumed meanwhile: then read again.
                        let _ = st.compare_exchange(
                            PAUSE_ASKED,
                            PAUSED,
                            Ordering::SeqCst,
                            Ordering::SeqCst,
                        );
                        continue;
                    }
                    _ => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                }
                match crossterm::event::poll(INPUT_POLL) {
                    // A pause asked for while polling: the loop drains it above.
                    Ok(true) if st.load(Ordering::SeqCst) != READING => {}
                    Ok(true) => match crossterm::event::read() {
                        Ok(ev) => {
                            if tx.send(ev).is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    },
                    Ok(false) => {}
                    Err(_) => break,
                }
            }
        });
        InputThread {
            rx: tokio::sync::Mutex::new(rx),
            state,
            typed_ahead,
            stop,
        }
    }

    /// Stops reading the terminal; returns, once the thread has stopped (at most one poll
    /// interval; bounded here in case the thread has ended), the keys it read meanwhile.
    fn pause(&self) -> Vec<Event> {
        self.state.store(PAUSE_ASKED, Ordering::SeqCst);
        let deadline = std::time::Instant::now() + INPUT_POLL * 10;
        while self.state.load(Ordering::SeqCst) != PAUSED && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.typed_ahead
            .lock()
            .map(|mut a| std::mem::take(&mut *a))
            .unwrap_or_default()
    }

    fn resume(&self) {
        self.state.store(READING, Ordering::SeqCst);
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// How long a flash message shows.
const FLASH_FOR: Duration = Duration::from_secs(5);

/// Sources whose caches feed the header, the namespace keys and the warning markers:
/// watched from the start, whatever the view.
const ALWAYS_WATCHED: [&str; 4] = ["pods", "nodes", "events", "namespaces"];

struct App {
    client: Client,
    logs: Arc<dyn LogSource>,
    tx: mpsc::UnboundedSender<Update>,
    watched: std::collections::HashSet<String>,
    log_task: Option<tokio::task::JoinHandle<()>>,
    log_generation: u64,
    /// Port-forwards started with shift-F; they run until the TUI ends.
    forwards: Vec<tokio::task::JoinHandle<()>>,
}

async fn event_loop(
    guard: &mut TerminalGuard,
    input: &InputThread,
    client: Client,
    logs: Arc<dyn LogSource>,
) -> Result<(), TuiError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut state = State::new(Timestamp::now(), colors_wanted());
    let mut app = App {
        client: client.clone(),
        logs,
        tx: tx.clone(),
        watched: Default::default(),
        log_task: None,
        log_generation: 0,
        forwards: Vec::new(),
    };
    for name in ALWAYS_WATCHED {
        if let Some(source) = Source::resolve(name) {
            app.watch(source);
        }
    }
    for effect in actions::watches_for(state.source) {
        if let Effect::Watch(source) = effect {
            app.watch(source);
        }
    }
    let mut background = vec![
        tokio::spawn(watch::server_version(client.clone(), tx.clone())),
        tokio::spawn(watch::metrics(client.clone(), tx.clone())),
        tokio::spawn(watch::pulls(client.clone(), tx.clone())),
        tokio::spawn(watch::write_check(client.clone(), tx.clone())),
    ];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // A flash message stays a few seconds, then the key hints come back.
    let mut flash_shown: Option<(Flash, std::time::Instant)> = None;
    let mut keys = input.rx.lock().await;
    let result = loop {
        let size = guard.terminal.size().map_err(TuiError::Terminal)?;
        let height = views::body_height(ratatui::layout::Rect::new(0, 0, size.width, size.height));
        state.scroll_into_view(height);
        if let Err(e) = guard.terminal.draw(|f| views::draw(f, &state)) {
            break Err(TuiError::Terminal(e));
        }
        if state.quit {
            break Ok(());
        }
        tokio::select! {
            ev = keys.recv() => {
                let Some(ev) = ev else { break Ok(()) };
                if let Event::Key(key) = ev
                    && key.kind != KeyEventKind::Release
                {
                    let effects = actions::handle_key(&mut state, key, height);
                    for effect in effects {
                        app.run(effect, &mut state, guard, input).await;
                    }
                    if !matches!(state.mode, Mode::Dialog(Dialog::Logs(_)))
                        && let Some(t) = app.log_task.take()
                    {
                        t.abort();
                    }
                }
            }
            update = rx.recv() => {
                let Some(update) = update else { break Ok(()) };
                app.apply(update, &mut state);
                // Coalesce a burst (a relist of 1,000 pods) into one redraw.
                while let Ok(u) = rx.try_recv() {
                    app.apply(u, &mut state);
                }
                state.refresh_table();
            }
            _ = tick.tick() => {
                state.set_now(Timestamp::now());
                match (&state.flash, &flash_shown) {
                    (Some(f), Some((seen, at))) if f == seen => {
                        if at.elapsed() >= FLASH_FOR {
                            state.flash = None;
                        }
                    }
                    (Some(f), _) => flash_shown = Some((f.clone(), std::time::Instant::now())),
                    (None, _) => flash_shown = None,
                }
                state.refresh_table();
            }
        }
    };
    for task in background.drain(..) {
        task.abort();
    }
    app.shutdown();
    result
}

impl App {
    /// Starts feeding a source's cache, once.
    fn watch(&mut self, source: Source) {
        if !self.watched.insert(source.key()) {
            return;
        }
        let tx = self.tx.clone();
        let client = self.client.clone();
        match source {
            Source::Kind(rt) => {
                tokio::spawn(watch::reflect(client, rt, tx));
            }
            Source::Images => {
                tokio::spawn(watch::list_images(client, tx));
            }
        }
    }

    fn shutdown(&mut self) {
        if let Some(t) = self.log_task.take() {
            t.abort();
        }
        for t in self.forwards.drain(..) {
            t.abort();
        }
        // Watch tasks end when the channel closes (their next send fails) or with the
        // runtime when `berth` exits.
    }

    fn apply(&mut self, update: Update, state: &mut State) {
        match update {
            Update::Listed(source, items) => state.replace_all(&source, items),
            Update::Event(source, ev) => state.apply_event(&source, ev.kind, ev.object),
            Update::Failed(source, error, connection) => {
                state.source_failed(&source, error, connection)
            }
            Update::Version(v) => state.server_version = Some(v),
            Update::Usage(u) => state.usage = u,
            Update::PodUsage(u) => state.set_pod_usage(u),
            Update::Pulls(p) => state.set_pulls(p),
            Update::ReadOnly(reason) => state.read_only = Some(reason),
            Update::Done { what, result } => match result {
                Ok(()) => {
                    state.flash = Some(Flash {
                        text: what,
                        error: false,
                    })
                }
                Err(e) => show_error(state, &what, &e),
            },
            Update::Rollout { what, result } => match result {
                Ok(text) => state.flash = Some(Flash { text, error: false }),
                Err(message) => show_message(state, &what, &message),
            },
            Update::Forwarding(forward) => {
                state.flash = Some(Flash {
                    text: format!("forwarding {}", forward.display()),
                    error: false,
                });
                state.forwards.push(forward);
            }
            Update::ForwardFailed(message) => {
                state.flash = Some(Flash {
                    text: message,
                    error: true,
                })
            }
            Update::Log(generation, chunk) => {
                if generation == self.log_generation
                    && let Mode::Dialog(Dialog::Logs(viewer)) = &mut state.mode
                {
                    viewer.push(chunk);
                }
            }
        }
    }

    async fn run(
        &mut self,
        effect: Effect,
        state: &mut State,
        guard: &mut TerminalGuard,
        input: &InputThread,
    ) {
        match effect {
            Effect::Watch(source) => self.watch(source),
            Effect::Refresh(source) => {
                if source == Source::Images {
                    tokio::spawn(watch::list_images(self.client.clone(), self.tx.clone()));
                }
            }
            Effect::Delete(target) => {
                let client = self.client.clone();
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let result = match target.source {
                        Source::Kind(rt) => client
                            .delete(
                                rt,
                                target.namespace(),
                                &target.name,
                                Some("Background"),
                                None,
                            )
                            .await
                            .map(|_| ()),
                        Source::Images => client
                            .request(
                                hyper::Method::DELETE,
                                &format!("{}/{}", watch::IMAGES_PATH, segment(&target.name)),
                                None,
                                None,
                            )
                            .await
                            .map(|_| ()),
                    };
                    let _ = tx.send(Update::Done {
                        what: format!("deleted {}", target.display()),
                        result,
                    });
                });
            }
            Effect::Scale(target, replicas) => {
                let what = format!("scaled {} to {replicas}", target.display());
                let patch = serde_json::json!({"spec": {"replicas": replicas}});
                self.patch_in_background(target, patch, what);
            }
            Effect::PortForward(target, spec) => {
                let client = self.client.clone();
                let tx = self.tx.clone();
                self.forwards.push(tokio::spawn(async move {
                    let what = format!("port-forward to {}", target.display());
                    if let Err(e) = forward(client, target, spec, tx.clone()).await {
                        let _ = tx.send(Update::Done {
                            what,
                            result: Err(e),
                        });
                    }
                }));
            }
            Effect::Restart(target) if target.source.is("apps", "Deployment") => {
                self.rollout_in_background(target, false)
            }
            Effect::Restart(target) => {
                let what = format!("{} restarted", target.display());
                let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations":
                    {"kubectl.kubernetes.io/restartedAt": crate::api::meta::now_rfc3339()}}}}});
                self.patch_in_background(target, patch, what);
            }
            Effect::Undo(target) => self.rollout_in_background(target, true),
            Effect::Edit(target) => {
                self.edit(target, state, guard, input).await;
            }
            Effect::Shell(target) => {
                self.shell(target, state, guard, input).await;
            }
            Effect::OpenLogs(target) => {
                if let Some(t) = self.log_task.take() {
                    t.abort();
                }
                self.log_generation += 1;
                let generation = self.log_generation;
                let mut rx = self.logs.open(&target, true);
                let tx = self.tx.clone();
                self.log_task = Some(tokio::spawn(async move {
                    while let Some(chunk) = rx.recv().await {
                        if tx.send(Update::Log(generation, chunk)).is_err() {
                            break;
                        }
                    }
                }));
            }
            Effect::SaveLogs => {
                if let Mode::Dialog(Dialog::Logs(viewer)) = &mut state.mode {
                    let dir = std::env::temp_dir().join("berth-logs");
                    let path = viewer.save_path(&dir, state.now);
                    let written = std::fs::create_dir_all(&dir)
                        .and_then(|()| std::fs::write(&path, viewer.contents()));
                    viewer.message = Some(match written {
                        Ok(()) => {
                            format!("saved {} lines to {}", viewer.lines.len(), path.display())
                        }
                        Err(e) => format!("cannot save to {}: {e}", path.display()),
                    });
                }
            }
        }
    }

    /// A merge patch of the target, sent off the UI loop; its outcome comes back as
    /// `Update::Done` with `what`.
    fn patch_in_background(&self, target: Target, patch: Value, what: String) {
        let Source::Kind(rt) = target.source else {
            return;
        };
        let client = self.client.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let result = client
                .patch(
                    rt,
                    target.namespace(),
                    &target.name,
                    crate::api::patch::PatchType::Merge,
                    &patch,
                )
                .await
                .map(|_| ());
            let _ = tx.send(Update::Done { what, result });
        });
    }

    /// Rollout restart, or undo to the previous revision, through the client's rollout
    /// functions (the CLI's): the outcome as a flash, a refusal as a dialog.
    fn rollout_in_background(&self, target: Target, undo: bool) {
        use crate::client::rollout::{self, UndoOutcome};
        let client = self.client.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let (ns, name) = (target.namespace().unwrap_or("default"), &target.name);
            let shown = target.display();
            let result = if undo {
                rollout::undo(&client, ns, name, 0).await.map(|o| match o {
                    UndoOutcome::RolledBack { revision } => {
                        format!("{shown} rolled back to revision {revision}")
                    }
                    UndoOutcome::Skipped { revision } => format!(
                        "{shown} skipped rollback (current template already matches revision {revision})"
                    ),
                })
            } else {
                rollout::restart(&client, ns, name)
                    .await
                    .map(|_| format!("{shown} restarted"))
            };
            let what = if undo {
                "rollout undo"
            } else {
                "rollout restart"
            };
            let _ = tx.send(Update::Rollout {
                what: what.to_string(),
                result: result.map_err(|e| e.to_string()),
            });
        });
    }

    /// `s`: `berth exec -it POD -- sh` on the real terminal (a PTY in the container), the
    /// TUI suspended until the shell exits.
    async fn shell(
        &mut self,
        target: crate::tui::logs::LogTarget,
        state: &mut State,
        guard: &mut TerminalGuard,
        input: &InputThread,
    ) {
        let what = format!("shell in {}/{}", target.namespace, target.pod);
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => {
                return show_message(state, &what, &format!("cannot find the berth binary: {e}"));
            }
        };
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("--socket").arg(self.client.socket()).args([
            "exec",
            "-i",
            "-t",
            "-n",
            &target.namespace,
            &target.pod,
        ]);
        if let Some(c) = &target.container {
            cmd.args(["-c", c]);
        }
        cmd.args([
            "--",
            "sh",
            "-c",
            "command -v bash >/dev/null && exec bash || exec sh",
        ]);
        let (status, resumed) =
            run_on_the_terminal(cmd, Some(crate::cli::exec::TYPEAHEAD_ENV), guard, input).await;
        if let Err(e) = resumed {
            return show_message(state, &what, &format!("cannot take the terminal back: {e}"));
        }
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                state.flash = Some(Flash {
                    text: format!("{what} ended: {s}"),
                    error: true,
                });
            }
            Err(e) => show_message(state, &what, &format!("cannot run berth exec: {e}")),
        }
    }

    /// `e`: the object as YAML in `$KUBE_EDITOR`/`$EDITOR` (else `vi`), then a replace
    /// with the result. An unchanged file changes nothing; errors come back in a dialog.
    async fn edit(
        &mut self,
        target: Target,
        state: &mut State,
        guard: &mut TerminalGuard,
        input: &InputThread,
    ) {
        let Source::Kind(rt) = target.source else {
            return;
        };
        let what = format!("edit {}", target.display());
        let obj = match self.client.get(rt, target.namespace(), &target.name).await {
            Ok(o) => o,
            Err(e) => return show_error(state, &what, &e),
        };
        let original = match serde_yaml::to_string(&obj) {
            Ok(y) => y,
            Err(e) => {
                return show_message(state, &what, &format!("cannot write YAML: {e}"));
            }
        };
        let dir = match EditDir::create() {
            Ok(d) => d,
            Err(e) => {
                return show_message(
                    state,
                    &what,
                    &format!("cannot create a temporary file: {e}"),
                );
            }
        };
        let path = dir
            .path()
            .join(format!("{}-{}.yaml", rt.singular, target.name));
        if let Err(e) = std::fs::write(&path, &original) {
            return show_message(
                state,
                &what,
                &format!("cannot write {}: {e}", path.display()),
            );
        }
        let editor = std::env::var("KUBE_EDITOR")
            .ok()
            .or_else(|| std::env::var("EDITOR").ok())
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| "vi".to_string());
        let mut words = editor.split_whitespace();
        let program = words.next().unwrap_or("vi").to_string();
        let mut cmd = std::process::Command::new(&program);
        cmd.args(words).arg(&path);
        let (status, resumed) = run_on_the_terminal(cmd, None, guard, input).await;
        if let Err(e) = resumed {
            return show_message(state, &what, &format!("cannot take the terminal back: {e}"));
        }
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                return show_message(
                    state,
                    &what,
                    &format!("{program} exited with {s}; nothing changed"),
                );
            }
            Err(e) => {
                return show_message(
                    state,
                    &what,
                    &format!("cannot run {program}: {e}; set EDITOR to your editor"),
                );
            }
        }
        let edited = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                return show_message(
                    state,
                    &what,
                    &format!("cannot read {}: {e}", path.display()),
                );
            }
        };
        if edited == original {
            state.flash = Some(Flash {
                text: format!("edit cancelled, no changes made to {}", target.display()),
                error: false,
            });
            return;
        }
        let value: Value = match serde_yaml::from_str(&edited) {
            Ok(v) => v,
            Err(e) => {
                return show_message(
                    state,
                    &what,
                    &format!("the edited file is not valid YAML: {e}; nothing changed"),
                );
            }
        };
        match self
            .client
            .replace(rt, target.namespace(), &target.name, &value)
            .await
        {
            Ok(_) => {
                state.flash = Some(Flash {
                    text: format!("{} edited", target.display()),
                    error: false,
                })
            }
            Err(e) => show_error(state, &what, &e),
        }
    }
}

/// Runs a port-forward to the pod or service `target` until aborted: finds the pod and
/// port, listens on 127.0.0.1, reports that it listens, then forwards every connection
/// (their failures come back as flashes). Fails when it cannot start.
async fn forward(
    client: Client,
    target: Target,
    spec: PortSpec,
    tx: mpsc::UnboundedSender<Update>,
) -> Result<(), ClientError> {
    let named = match target.source {
        Source::Kind(rt) if rt.kind == "Service" => ForwardTarget::Service(target.name.clone()),
        _ => ForwardTarget::Pod(target.name.clone()),
    };
    let (pod, ports) = client
        .resolve_forward(
            &target.namespace,
            &named,
            std::slice::from_ref(&spec.remote),
        )
        .await?;
    let remote = ports.first().copied().unwrap_or_default();
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, spec.local))
        .await
        .map_err(|e| ClientError::PortForward {
            port: remote,
            message: format!("unable to listen on 127.0.0.1:{}: {e}", spec.local),
        })?;
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| format!("127.0.0.1:{}", spec.local));
    let pod_name = crate::api::meta::name(&pod).to_string();
    let _ = tx.send(Update::Forwarding(ActiveForward {
        local: local.clone(),
        pod: format!("pod/{pod_name}"),
        remote,
    }));
    crate::client::serve_local(
        client,
        listener,
        target.namespace.clone(),
        pod_name,
        remote,
        move |event| {
            if let ForwardEvent::Error(e) = event {
                let _ = tx.send(Update::ForwardFailed(format!("port-forward {local}: {e}")));
            }
        },
    )
    .await;
    Ok(())
}

/// Shows a failed write; a 403 also turns the TUI read-only, with the server's reason.
fn show_error(state: &mut State, what: &str, error: &ClientError) {
    if let ClientError::Api(ApiError::Forbidden { message }) = error {
        state.read_only = Some(message.clone());
        state.mode = Mode::Dialog(Dialog::Error {
            title: "read-only".into(),
            message: message.clone(),
        });
        return;
    }
    show_message(state, what, &error.to_string());
}

fn show_message(state: &mut State, what: &str, message: &str) {
    state.mode = Mode::Dialog(Dialog::Error {
        title: format!("{what} failed"),
        message: message.to_string(),
    });
}

/// An image reference as one path segment.
fn segment(reference: &str) -> String {
    form_urlencoded::byte_serialize(reference.as_bytes()).collect()
}

/// A private directory for the file being edited, removed when dropped.
struct EditDir(std::path::PathBuf);

impl EditDir {
    fn create() -> std::io::Result<EditDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!("berth-edit-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path)?;
        Ok(EditDir(path))
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for EditDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod typeahead_tests {
    use super::key_bytes;
    use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};

    fn key(code: KeyCode, m: KeyModifiers) -> Event {
        Event::Key(KeyEvent::new(code, m))
    }

    #[test]
    fn keys_become_the_bytes_a_terminal_sends() {
        let typed: Vec<u8> = [
            key(KeyCode::Char('l'), KeyModifiers::NONE),
            key(KeyCode::Char('S'), KeyModifiers::SHIFT),
            key(KeyCode::Char('é'), KeyModifiers::NONE),
            key(KeyCode::Enter, KeyModifiers::NONE),
            key(KeyCode::Char('c'), KeyModifiers::CONTROL),
            key(KeyCode::Backspace, KeyModifiers::NONE),
            key(KeyCode::Up, KeyModifiers::NONE),
            key(KeyCode::F(5), KeyModifiers::NONE),
            Event::Paste("ls -l".into()),
            Event::FocusGained,
        ]
        .iter()
        .flat_map(key_bytes)
        .collect();
        assert_eq!(typed, "lSé\r\x03\x7f\x1b[Als -l".as_bytes());
    }
}
