//! Keys become [`Action`]s, and actions change the [`State`]; what needs the network or the
//! terminal comes back as an [`Effect`] for the event loop to run off the UI path.
//!
//! Key bindings follow k9s where k9s has one. [`help`] lists the keys of the current view
//! from the same tables the dispatch uses, so the help screen cannot drift from the keys.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::Value;

use super::filter::Filter;
use super::logs::{LogKey, LogTarget, LogViewer};
use super::state::{Dialog, Flash, Mode, Source, State, Target, TextView};
use crate::api::describe::{Related, describe_with};
use crate::api::registry;
use crate::api::table;
use crate::client::PortSpec;

/// What a key asks for in the table.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Quit,
    Move(isize),
    Page(isize),
    Top,
    Bottom,
    StartCommand,
    StartFilter,
    ClearFilter,
    /// 0 = every namespace, 1-9 the namespace shortcuts.
    Namespace(usize),
    SortBy(usize),
    Describe,
    Yaml,
    Edit,
    Delete,
    Scale,
    /// Port-forward to the selected pod or service (k9s' shift-f).
    PortForward,
    /// Rollout restart (deployments, statefulsets).
    Restart,
    /// Rollout history of a deployment.
    History,
    /// Rollout undo of a deployment to its previous revision (after a yes).
    Undo,
    Events,
    Logs,
    Shell,
    Enter,
    Refresh,
    Help,
}

/// Work for the event loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Make sure the cache of this source is fed (start its watch once; images: list).
    Watch(Source),
    /// List the images again (they have no watch).
    Refresh(Source),
    Delete(Target),
    Scale(Target, i64),
    /// Start a port-forward to a pod or service that runs as long as the TUI.
    PortForward(Target, PortSpec),
    /// `kubectl rollout restart`: stamp the pod template so every pod is replaced.
    Restart(Target),
    /// `kubectl rollout undo` to the previous revision.
    Undo(Target),
    /// Open the object in `$EDITOR` and apply the result.
    Edit(Target),
    /// Start streaming a log into the open viewer.
    OpenLogs(LogTarget),
    /// Write the viewer's buffer to a file.
    SaveLogs,
    /// `s`: a shell in the pod's first container (the TUI steps aside meanwhile).
    Shell(LogTarget),
}

/// Table keys that are the same in every view: (key, description).
const COMMON_KEYS: &[(&str, &str)] = &[
    ("j / ↓", "down"),
    ("k / ↑", "up"),
    ("pgdn/ctrl-f", "page down"),
    ("pgup/ctrl-b", "page up"),
    ("g / home", "first row"),
    ("G / end", "last row"),
    (":", "view (:po :deploy :q)"),
    ("/", "filter (-l sel, ! not)"),
    ("esc", "clear the filter"),
    ("0-9", "namespace (0 = all)"),
    ("enter", "its pods, or describe"),
    ("d", "describe"),
    ("y", "YAML"),
    ("v", "events of the object"),
    ("?", "this help"),
    ("q / ctrl-c", "quit"),
];

/// Keys of writes, shown when the view has objects to write.
const WRITE_KEYS: &[(&str, &str)] = &[("e", "edit in $EDITOR"), ("ctrl-d", "delete")];

/// Maps a key in the table (normal mode) to an action.
pub fn action_for(state: &State, key: KeyEvent) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let action = match key.code {
        KeyCode::Char('c') if ctrl => Action::Quit,
        KeyCode::Char('d') if ctrl => Action::Delete,
        KeyCode::Char('f') if ctrl => Action::Page(1),
        KeyCode::Char('b') if ctrl => Action::Page(-1),
        KeyCode::Char('r') if ctrl => Action::Refresh,
        _ if ctrl => return None,
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Down | KeyCode::Char('j') => Action::Move(1),
        KeyCode::Up | KeyCode::Char('k') => Action::Move(-1),
        KeyCode::PageDown => Action::Page(1),
        KeyCode::PageUp => Action::Page(-1),
        KeyCode::Home | KeyCode::Char('g') => Action::Top,
        KeyCode::End | KeyCode::Char('G') => Action::Bottom,
        KeyCode::Char(':') => Action::StartCommand,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Esc => Action::ClearFilter,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Enter => Action::Enter,
        KeyCode::Char(c @ '0'..='9') => Action::Namespace(c as usize - '0' as usize),
        KeyCode::Char('d') => Action::Describe,
        KeyCode::Char('y') => Action::Yaml,
        KeyCode::Char('v') => Action::Events,
        KeyCode::Char('e') if state.source.kind().is_some() => Action::Edit,
        KeyCode::Char('S') if state.source.scalable() => Action::Scale,
        KeyCode::Char('F') if state.source.forwardable() => Action::PortForward,
        KeyCode::Char('r') if restartable(state) => Action::Restart,
        KeyCode::Char('h') if is_deployments(state) => Action::History,
        KeyCode::Char('u') if is_deployments(state) => Action::Undo,
        KeyCode::Char('l') if is_pods(state) => Action::Logs,
        KeyCode::Char('s') if is_pods(state) => Action::Shell,
        KeyCode::Char(c) if c.is_ascii_uppercase() => {
            let column = sort_keys(state).into_iter().find(|(k, _)| *k == c)?.1;
            Action::SortBy(column)
        }
        _ => return None,
    };
    Some(action)
}

fn is_deployments(state: &State) -> bool {
    state.source.is("apps", "Deployment")
}

fn restartable(state: &State) -> bool {
    state.source.is("apps", "Deployment") || state.source.is("apps", "StatefulSet")
}

fn is_pods(state: &State) -> bool {
    state.source.is("", "Pod")
}

/// Sort keys of the current table: shift+letter, NAME, AGE and STATUS first so they get
/// k9s' letters (N, A, S); each other column gets the first letter of its header that no
/// key holds yet.
pub fn sort_keys(state: &State) -> Vec<(char, usize)> {
    let mut reserved: Vec<char> = vec!['G'];
    if state.source.scalable() {
        reserved.push('S');
    }
    if state.source.forwardable() {
        reserved.push('F');
    }
    let headers = &state.table.headers;
    let mut order: Vec<usize> = Vec::new();
    for first in ["NAME", "AGE", "STATUS"] {
        if let Some(i) = headers.iter().position(|h| h == first) {
            order.push(i);
        }
    }
    let rest: Vec<usize> = (0..headers.len()).filter(|i| !order.contains(i)).collect();
    order.extend(rest);
    let mut keys = Vec::new();
    for i in order {
        let letter = headers[i]
            .chars()
            .filter(char::is_ascii_alphabetic)
            .map(|c| c.to_ascii_uppercase())
            .find(|c| !reserved.contains(c));
        if let Some(c) = letter {
            reserved.push(c);
            keys.push((c, i));
        }
    }
    keys.sort_by_key(|(_, i)| *i);
    keys
}

/// The port a forward to this pod or service most likely wants: the first container port
/// of a pod, the first port of a service.
fn first_port(obj: &Value) -> Option<u64> {
    let from_pod = table::list(obj, "/spec/containers")
        .iter()
        .flat_map(|c| table::list(c, "/ports"))
        .find_map(|p| p.get("containerPort").and_then(Value::as_u64));
    from_pod.or_else(|| {
        table::list(obj, "/spec/ports")
            .first()
            .and_then(|p| p.get("port"))
            .and_then(Value::as_u64)
    })
}

/// Every key of the current view with what it does, for `?`.
pub fn help(state: &State) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = COMMON_KEYS
        .iter()
        .map(|(k, d)| (k.to_string(), d.to_string()))
        .collect();
    if state.source.kind().is_some() {
        out.extend(
            WRITE_KEYS
                .iter()
                .map(|(k, d)| (k.to_string(), d.to_string())),
        );
    }
    if state.source.scalable() {
        out.push(("S".into(), "scale".into()));
    }
    if state.source.forwardable() {
        out.push(("shift-F".into(), "port-forward".into()));
    }
    if restartable(state) {
        out.push(("r".into(), "rollout restart".into()));
    }
    if is_deployments(state) {
        out.push(("h".into(), "rollout history".into()));
        out.push(("u".into(), "rollout undo".into()));
    }
    if is_pods(state) {
        out.push(("l".into(), "logs".into()));
        out.push(("s".into(), "shell".into()));
    }
    if state.source == Source::Images {
        out.push(("ctrl-r".into(), "list again".into()));
    }
    for (c, i) in sort_keys(state) {
        let header = state.table.headers.get(i).cloned().unwrap_or_default();
        out.push((format!("shift-{c}"), format!("sort by {header}")));
    }
    out
}

/// Keys of the log viewer, for its help line and `?`.
pub const LOG_KEYS: &[(&str, &str)] = &[
    ("f", "follow"),
    ("w", "wrap"),
    ("t", "timestamps"),
    ("p", "previous container"),
    ("/ n N", "search, next, previous"),
    ("ctrl-s", "save"),
    ("esc", "back"),
];

/// Handles a key in whatever mode is active; `height` is the table body's height.
pub fn handle_key(state: &mut State, key: KeyEvent, height: usize) -> Vec<Effect> {
    // ctrl-c quits from anywhere, as in k9s.
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        state.quit = true;
        return Vec::new();
    }
    let effects = match &mut state.mode {
        Mode::Normal => match action_for(state, key) {
            Some(a) => apply(state, a, height),
            None => Vec::new(),
        },
        Mode::Command(input) => match key.code {
            KeyCode::Esc => {
                state.mode = Mode::Normal;
                Vec::new()
            }
            KeyCode::Enter => {
                let line = std::mem::take(input);
                state.mode = Mode::Normal;
                run_command(state, &line)
            }
            KeyCode::Backspace => {
                if input.pop().is_none() {
                    state.mode = Mode::Normal;
                }
                Vec::new()
            }
            KeyCode::Char(c) => {
                input.push(c);
                Vec::new()
            }
            _ => Vec::new(),
        },
        Mode::Filter(input) => {
            match key.code {
                KeyCode::Esc => {
                    state.mode = Mode::Normal;
                    state.filter = Filter::default();
                }
                KeyCode::Enter => {
                    state.mode = Mode::Normal;
                    if let Some(e) = state.filter.error() {
                        state.flash = Some(Flash {
                            text: format!("filter: {e}"),
                            error: true,
                        });
                    }
                }
                KeyCode::Backspace => {
                    input.pop();
                    state.filter = Filter::parse(input);
                }
                KeyCode::Char(c) => {
                    input.push(c);
                    state.filter = Filter::parse(input);
                }
                _ => {}
            }
            state.refresh_table();
            Vec::new()
        }
        Mode::Dialog(dialog) => dialog_key(dialog, key, height).unwrap_or_else(|outcome| {
            let mode = std::mem::replace(&mut state.mode, Mode::Normal);
            finish_dialog(state, mode, outcome)
        }),
    };
    state.scroll_into_view(height);
    effects
}

/// How a dialog ended.
enum Outcome {
    Cancel,
    Confirm,
    Save,
    Reopen,
}

/// Keys inside a dialog: `Ok` keeps it open with these effects, `Err` ends it.
fn dialog_key(dialog: &mut Dialog, key: KeyEvent, height: usize) -> Result<Vec<Effect>, Outcome> {
    match dialog {
        Dialog::Help | Dialog::Error { .. } => match key.code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') | KeyCode::Char('?') => {
                Err(Outcome::Cancel)
            }
            _ => Ok(Vec::new()),
        },
        Dialog::Text(view) => {
            let max = view.lines.len().saturating_sub(height.max(1));
            match key.code {
                KeyCode::Esc | KeyCode::Char('q') => return Err(Outcome::Cancel),
                KeyCode::Down | KeyCode::Char('j') => view.scroll = (view.scroll + 1).min(max),
                KeyCode::Up | KeyCode::Char('k') => view.scroll = view.scroll.saturating_sub(1),
                KeyCode::PageDown | KeyCode::Char(' ') => {
                    view.scroll = (view.scroll + height.max(1)).min(max)
                }
                KeyCode::PageUp => view.scroll = view.scroll.saturating_sub(height.max(1)),
                KeyCode::Home | KeyCode::Char('g') => view.scroll = 0,
                KeyCode::End | KeyCode::Char('G') => view.scroll = max,
                KeyCode::Char('x') => {
                    if let Some(obj) = view.secret.take() {
                        view.lines = yaml_lines(&obj);
                        view.title.push_str(" (values shown)");
                    }
                }
                _ => {}
            }
            Ok(Vec::new())
        }
        Dialog::ConfirmDelete(_) | Dialog::ConfirmUndo { .. } => match key.code {
            KeyCode::Char('y') | KeyCode::Enter => Err(Outcome::Confirm),
            KeyCode::Char('n') | KeyCode::Esc | KeyCode::Char('q') => Err(Outcome::Cancel),
            _ => Ok(Vec::new()),
        },
        Dialog::Scale { input, .. } => match key.code {
            KeyCode::Esc => Err(Outcome::Cancel),
            KeyCode::Enter => Err(Outcome::Confirm),
            KeyCode::Backspace => {
                input.pop();
                Ok(Vec::new())
            }
            KeyCode::Char(c) if c.is_ascii_digit() && input.len() < 6 => {
                input.push(c);
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        },
        Dialog::PortForward { input, .. } => match key.code {
            KeyCode::Esc => Err(Outcome::Cancel),
            KeyCode::Enter => Err(Outcome::Confirm),
            KeyCode::Backspace => {
                input.pop();
                Ok(Vec::new())
            }
            // Numbers, `:`, and port names (lowercase letters, digits, `-`).
            KeyCode::Char(c)
                if (c.is_ascii_alphanumeric() || c == ':' || c == '-') && input.len() < 24 =>
            {
                input.push(c);
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        },
        Dialog::Logs(viewer) => match viewer.key(key, height) {
            LogKey::Close => Err(Outcome::Cancel),
            LogKey::Save => Err(Outcome::Save),
            LogKey::Reopen => Err(Outcome::Reopen),
            LogKey::Handled | LogKey::Ignored => Ok(Vec::new()),
        },
    }
}

/// Ends (or, for the log viewer's save and reopen, keeps) a dialog.
fn finish_dialog(state: &mut State, mode: Mode, outcome: Outcome) -> Vec<Effect> {
    let Mode::Dialog(dialog) = mode else {
        return Vec::new();
    };
    match (dialog, outcome) {
        (Dialog::ConfirmDelete(target), Outcome::Confirm) => vec![Effect::Delete(target)],
        (Dialog::ConfirmUndo { target, .. }, Outcome::Confirm) => vec![Effect::Undo(target)],
        (Dialog::Scale { target, input }, Outcome::Confirm) => match input.parse::<i64>() {
            Ok(n) => vec![Effect::Scale(target, n)],
            Err(_) => {
                state.flash = Some(Flash {
                    text: "scale: type a number of replicas".into(),
                    error: true,
                });
                Vec::new()
            }
        },
        (Dialog::PortForward { target, input }, Outcome::Confirm) => {
            match PortSpec::parse(&input) {
                Ok(spec) => vec![Effect::PortForward(target, spec)],
                Err(e) => {
                    state.flash = Some(Flash {
                        text: format!("port-forward: {e}"),
                        error: true,
                    });
                    Vec::new()
                }
            }
        }
        (Dialog::Logs(viewer), Outcome::Save) => {
            state.mode = Mode::Dialog(Dialog::Logs(viewer));
            vec![Effect::SaveLogs]
        }
        (Dialog::Logs(viewer), Outcome::Reopen) => {
            let target = viewer.target.clone();
            state.mode = Mode::Dialog(Dialog::Logs(viewer));
            vec![Effect::OpenLogs(target)]
        }
        _ => Vec::new(),
    }
}

/// Applies a table action.
pub fn apply(state: &mut State, action: Action, height: usize) -> Vec<Effect> {
    let page = height.max(1) as isize;
    match action {
        Action::Quit => state.quit = true,
        Action::Move(d) => state.move_selection(d),
        Action::Page(d) => state.move_selection(d * page),
        Action::Top => state.select(0),
        Action::Bottom => state.select(state.table.rows.len().saturating_sub(1)),
        Action::StartCommand => state.mode = Mode::Command(String::new()),
        Action::StartFilter => state.mode = Mode::Filter(state.filter.text.clone()),
        Action::ClearFilter => {
            state.filter = Filter::default();
            state.flash = None;
            state.refresh_table();
        }
        Action::Namespace(n) => {
            if n == 0 {
                state.namespace = None;
            } else if let Some(ns) = state.namespace_shortcuts().get(n - 1) {
                state.namespace = Some(ns.clone());
            }
            state.refresh_table();
        }
        Action::SortBy(column) => {
            if state.sort.column == column {
                state.sort.descending = !state.sort.descending;
            } else {
                state.sort.column = column;
                state.sort.descending = false;
            }
            state.refresh_table();
        }
        Action::Describe => open_describe(state),
        Action::Yaml => open_yaml(state),
        Action::Events => open_events(state),
        Action::History => open_history(state),
        Action::Help => state.mode = Mode::Dialog(Dialog::Help),
        Action::Refresh => return vec![Effect::Refresh(state.source)],
        Action::Enter => return drill_down(state),
        Action::Delete
        | Action::Edit
        | Action::Scale
        | Action::Restart
        | Action::PortForward
        | Action::Undo => {
            let Some(target) = state.selected_target() else {
                return Vec::new();
            };
            if let Some(reason) = &state.read_only {
                state.mode = Mode::Dialog(Dialog::Error {
                    title: "read-only".into(),
                    message: reason.clone(),
                });
                return Vec::new();
            }
            match action {
                Action::Delete => state.mode = Mode::Dialog(Dialog::ConfirmDelete(target)),
                Action::Edit => return vec![Effect::Edit(target)],
                Action::Restart => return vec![Effect::Restart(target)],
                Action::Undo => confirm_undo(state, target),
                Action::PortForward => {
                    let port = state.selected_object().and_then(first_port);
                    state.mode = Mode::Dialog(Dialog::PortForward {
                        target,
                        input: port.map(|p| format!("{p}:{p}")).unwrap_or_default(),
                    });
                }
                _ => {
                    let current = state
                        .selected_object()
                        .and_then(|o| o.pointer("/spec/replicas"))
                        .and_then(Value::as_i64)
                        .unwrap_or(1);
                    state.mode = Mode::Dialog(Dialog::Scale {
                        target,
                        input: current.to_string(),
                    });
                }
            }
        }
        Action::Logs => {
            let Some(obj) = state.selected_object() else {
                return Vec::new();
            };
            let target = LogTarget {
                namespace: crate::api::meta::namespace(obj).to_string(),
                pod: crate::api::meta::name(obj).to_string(),
                container: table::list(obj, "/spec/containers")
                    .first()
                    .and_then(|c| c.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                previous: false,
            };
            state.mode = Mode::Dialog(Dialog::Logs(Box::new(LogViewer::new(target.clone()))));
            return vec![Effect::OpenLogs(target)];
        }
        Action::Shell => {
            let Some(obj) = state.selected_object() else {
                return Vec::new();
            };
            return vec![Effect::Shell(LogTarget {
                namespace: crate::api::meta::namespace(obj).to_string(),
                pod: crate::api::meta::name(obj).to_string(),
                container: table::list(obj, "/spec/containers")
                    .first()
                    .and_then(|c| c.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                previous: false,
            })];
        }
    }
    Vec::new()
}

/// `:` commands: a view name (optionally followed by a namespace), `q`/`quit`, `help`.
pub fn run_command(state: &mut State, line: &str) -> Vec<Effect> {
    let mut words = line.split_whitespace();
    let Some(first) = words.next() else {
        return Vec::new();
    };
    match first {
        "q" | "q!" | "quit" | "exit" => {
            state.quit = true;
            return Vec::new();
        }
        "help" | "?" => {
            state.mode = Mode::Dialog(Dialog::Help);
            return Vec::new();
        }
        _ => {}
    }
    let Some(source) = Source::resolve(first) else {
        state.flash = Some(Flash {
            text: format!("no view named \"{first}\"; try :pods, :deploy, :svc, :images"),
            error: true,
        });
        return Vec::new();
    };
    if let Some(ns) = words.next() {
        state.namespace = match ns {
            "all" | "-A" | "*" => None,
            ns => Some(ns.to_string()),
        };
    }
    state.flash = None;
    state.switch_to(source);
    watches_for(source)
}

/// The watches a view needs: its own, and what its describe shows beside the object
/// (a Deployment's ReplicaSets, a Service's Endpoints).
pub fn watches_for(source: Source) -> Vec<Effect> {
    let mut out = vec![Effect::Watch(source)];
    let related = if source.is("apps", "Deployment") {
        Source::resolve("replicasets")
    } else if source.is("", "Service") {
        Source::resolve("endpoints")
    } else {
        None
    };
    out.extend(related.map(Effect::Watch));
    out
}

fn open_text(state: &mut State, title: String, lines: Vec<String>, secret: Option<Value>) {
    state.mode = Mode::Dialog(Dialog::Text(TextView {
        title,
        lines,
        scroll: 0,
        secret,
    }));
}

fn target_title(state: &State) -> Option<String> {
    state.selected_target().map(|t| t.display())
}

/// The selected Deployment and the ReplicaSets in the cache (the deployments view
/// watches them).
fn deployment_and_sets(state: &State) -> Option<(Value, Vec<Value>)> {
    let deploy = state.selected_object()?.clone();
    let sets = registry::resolve("replicasets")
        .and_then(|rs| state.cache(&Source::Kind(rs)))
        .map(|c| c.objects.values().cloned().collect())
        .unwrap_or_default();
    Some((deploy, sets))
}

/// The images of a pod template, comma-separated.
fn template_images(template: &Value) -> String {
    table::list(template, "/spec/containers")
        .iter()
        .filter_map(|c| c.get("image").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(",")
}

/// `h`: `kubectl rollout history` of the selected Deployment, with each revision's
/// ReplicaSet and images.
fn open_history(state: &mut State) {
    let (Some((deploy, sets)), Some(title)) = (deployment_and_sets(state), target_title(state))
    else {
        return;
    };
    let current = crate::client::rollout::revision(&deploy);
    let revisions = crate::client::rollout::history(&deploy, &sets);
    let mut rows = vec![vec![
        "REVISION".to_string(),
        "REPLICASET".to_string(),
        "IMAGES".to_string(),
        "CHANGE-CAUSE".to_string(),
    ]];
    for r in &revisions {
        let mark = if Some(r.number) == current {
            " (current)"
        } else {
            ""
        };
        rows.push(vec![
            format!("{}{mark}", r.number),
            r.replica_set.clone(),
            template_images(&r.template),
            r.change_cause.clone().unwrap_or_else(|| "<none>".into()),
        ]);
    }
    let mut lines: Vec<String> = table::tabwrite(&rows, 0, 2)
        .lines()
        .map(str::to_string)
        .collect();
    if revisions.is_empty() {
        lines = vec!["no rollout history yet (no ReplicaSet of this Deployment)".into()];
    } else {
        lines.push(String::new());
        lines.push("u in the deployments view rolls back to the previous revision".into());
    }
    open_text(state, format!("Rollout history: {title}"), lines, None);
}

/// `u`: asks before `kubectl rollout undo` to the previous revision, naming it.
fn confirm_undo(state: &mut State, target: Target) {
    let Some((deploy, sets)) = deployment_and_sets(state) else {
        return;
    };
    match crate::client::rollout::rollback_target(&deploy, &sets, 0) {
        Ok(rs) => {
            let revision = crate::client::rollout::revision(rs).unwrap_or(0);
            let images = rs
                .pointer("/spec/template")
                .map(template_images)
                .unwrap_or_default();
            state.mode = Mode::Dialog(Dialog::ConfirmUndo {
                target,
                revision,
                images,
            });
        }
        Err(e) => {
            state.flash = Some(Flash {
                text: format!("rollout undo: {e}"),
                error: true,
            })
        }
    }
}

fn open_describe(state: &mut State) {
    let (Some(obj), Some(title)) = (state.selected_object().cloned(), target_title(state)) else {
        return;
    };
    let text = match state.source {
        Source::Kind(rt) => {
            let events = state.events_for(&obj);
            let rs: Option<Vec<Value>> = (rt.kind == "Deployment")
                .then(|| registry::resolve("replicasets"))
                .flatten()
                .and_then(|rs| state.cache(&Source::Kind(rs)))
                .map(|c| c.objects.values().cloned().collect());
            let endpoints = (rt.kind == "Service")
                .then(|| Source::resolve("endpoints"))
                .flatten()
                .and_then(|ep| state.cache(&ep))
                .and_then(|c| c.objects.get(&crate::tui::state::object_key(&obj)))
                .cloned();
            let related = Related {
                replica_sets: rs.as_deref(),
                endpoints: endpoints.as_ref(),
            };
            describe_with(rt, &obj, &related, &events, state.now)
        }
        Source::Images => serde_yaml::to_string(&obj).unwrap_or_default(),
    };
    open_text(
        state,
        format!("Describe: {title}"),
        text.lines().map(str::to_string).collect(),
        None,
    );
}

fn yaml_lines(obj: &Value) -> Vec<String> {
    match serde_yaml::to_string(obj) {
        Ok(y) => y.lines().map(str::to_string).collect(),
        Err(e) => vec![format!("cannot show YAML: {e}")],
    }
}

/// A Secret with its values replaced, so they are not on screen until asked for.
fn masked(secret: &Value) -> Value {
    let mut out = secret.clone();
    for field in ["data", "stringData"] {
        if let Some(map) = out.get_mut(field).and_then(Value::as_object_mut) {
            for v in map.values_mut() {
                *v = Value::String("********".into());
            }
        }
    }
    if let Some(ann) = out
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        ann.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    out
}

fn open_yaml(state: &mut State) {
    let (Some(obj), Some(title)) = (state.selected_object().cloned(), target_title(state)) else {
        return;
    };
    if state.source.is("", "Secret") {
        let lines = yaml_lines(&masked(&obj));
        open_text(
            state,
            format!("YAML: {title} (x shows values)"),
            lines,
            Some(obj),
        );
    } else {
        let lines = yaml_lines(&obj);
        open_text(state, format!("YAML: {title}"), lines, None);
    }
}

fn open_events(state: &mut State) {
    let (Some(obj), Some(title)) = (state.selected_object().cloned(), target_title(state)) else {
        return;
    };
    let events = state.events_for(&obj);
    let lines = match registry::resolve("events") {
        Some(rt) if !events.is_empty() => {
            let cols = table::columns(rt);
            let keep: Vec<usize> = (0..cols.len())
                .filter(|&i| cols[i].priority == 0 && cols[i].name != "Object")
                .collect();
            let mut rows = vec![keep.iter().map(|&i| cols[i].header()).collect::<Vec<_>>()];
            for ev in &events {
                let cells = table::row(rt, ev, state.now);
                rows.push(
                    keep.iter()
                        .map(|&i| cells.get(i).map(table::cell_text).unwrap_or_default())
                        .collect(),
                );
            }
            table::tabwrite(&rows, 0, 2)
                .lines()
                .map(str::to_string)
                .collect()
        }
        _ => vec!["No events.".to_string()],
    };
    open_text(state, format!("Events: {title}"), lines, None);
}

/// Enter: the pods of a workload or service, a namespace's pods, else describe.
fn drill_down(state: &mut State) -> Vec<Effect> {
    let Some(obj) = state.selected_object().cloned() else {
        return Vec::new();
    };
    let Some(pods) = Source::resolve("pods") else {
        return Vec::new();
    };
    let selector = match state.source {
        Source::Kind(rt) => match (rt.group, rt.kind) {
            ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
            | ("batch", "Job") => Some(table::label_selector_string(obj.pointer("/spec/selector"))),
            ("", "Service") => obj
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                }),
            ("", "Namespace") => {
                state.namespace = Some(crate::api::meta::name(&obj).to_string());
                state.switch_to(pods);
                return vec![Effect::Watch(pods)];
            }
            _ => None,
        },
        Source::Images => None,
    };
    match selector.filter(|s| !s.is_empty() && s != "<none>") {
        Some(sel) => {
            let ns = crate::api::meta::namespace(&obj);
            if !ns.is_empty() {
                state.namespace = Some(ns.to_string());
            }
            state.switch_to(pods);
            let text = format!("-l {sel}");
            state.filter = Filter::parse(&text);
            state.refresh_table();
            vec![Effect::Watch(pods)]
        }
        None => {
            open_describe(state);
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-11-23T10:00:00Z".parse().expect("time")
    }

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn ch(c: char) -> KeyEvent {
        let m = if c.is_ascii_uppercase() {
            KeyModifiers::SHIFT
        } else {
            KeyModifiers::NONE
        };
        KeyEvent::new(KeyCode::Char(c), m)
    }

    fn typed(state: &mut State, text: &str) -> Vec<Effect> {
        let mut effects = Vec::new();
        for c in text.chars() {
            effects.extend(handle_key(state, ch(c), 10));
        }
        effects
    }

    fn state_with_deployment() -> State {
        let mut s = State::new(now(), false);
        let deploy = Source::resolve("deploy").expect("deploy");
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "d1",
                "creationTimestamp": "2026-11-23T09:00:00Z"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
            "status": {"readyReplicas": 2, "replicas": 2}});
        s.replace_all(&deploy, vec![d]);
        let pods = Source::resolve("po").expect("pods");
        let pod = |name: &str, app: &str| {
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "default", "uid": name, "labels": {"app": app},
                    "creationTimestamp": "2026-11-23T09:00:00Z"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                "status": {"phase": "Running"}})
        };
        s.replace_all(&pods, vec![pod("web-1", "web"), pod("db-1", "db")]);
        s.refresh_table();
        s
    }

    #[test]
    fn colon_switches_views_by_short_name() {
        let mut s = state_with_deployment();
        handle_key(&mut s, ch(':'), 10);
        let effects = typed(&mut s, "deploy");
        assert!(effects.is_empty());
        let effects = handle_key(&mut s, key(KeyCode::Enter), 10);
        assert_eq!(s.source.title(), "Deployments");
        let rs = Source::resolve("rs").expect("rs");
        assert_eq!(effects, vec![Effect::Watch(s.source), Effect::Watch(rs)]);
        assert_eq!(s.table.rows.len(), 1);
    }

    #[test]
    fn unknown_view_names_say_so() {
        let mut s = state_with_deployment();
        handle_key(&mut s, ch(':'), 10);
        typed(&mut s, "bogus");
        handle_key(&mut s, key(KeyCode::Enter), 10);
        assert!(
            s.flash
                .as_ref()
                .is_some_and(|f| f.error && f.text.contains("bogus"))
        );
    }

    #[test]
    fn slash_filters_as_you_type_and_esc_clears() {
        let mut s = state_with_deployment();
        handle_key(&mut s, ch('/'), 10);
        typed(&mut s, "db");
        assert_eq!(s.table.rows.len(), 1);
        handle_key(&mut s, key(KeyCode::Enter), 10);
        assert!(matches!(s.mode, Mode::Normal));
        assert_eq!(s.table.rows.len(), 1);
        handle_key(&mut s, key(KeyCode::Esc), 10);
        assert_eq!(s.table.rows.len(), 2);
    }

    #[test]
    fn number_keys_switch_namespace() {
        let mut s = state_with_deployment();
        let ns = Source::resolve("ns").expect("ns");
        s.replace_all(
            &ns,
            vec![
                json!({"metadata": {"name": "default"}}),
                json!({"metadata": {"name": "kube-system"}}),
            ],
        );
        handle_key(&mut s, ch('2'), 10);
        assert_eq!(s.namespace.as_deref(), Some("kube-system"));
        assert!(s.table.rows.is_empty());
        handle_key(&mut s, ch('0'), 10);
        assert_eq!(s.namespace, None);
        assert_eq!(s.table.rows.len(), 2);
    }

    #[test]
    fn shift_letters_sort_and_help_lists_them() {
        let mut s = state_with_deployment();
        s.namespace = Some("default".into());
        s.refresh_table();
        assert_eq!(s.table.rows[0].key.1, "db-1");
        // Rows start sorted by name: N reverses that.
        handle_key(&mut s, ch('N'), 10);
        assert!(s.sort.descending);
        assert_eq!(s.table.rows[0].key.1, "web-1");
        let help = help(&s);
        for k in [
            "shift-N", "shift-A", "shift-S", "l", "s", "ctrl-d", "d", "y", "e", "?",
        ] {
            assert!(help.iter().any(|(key, _)| key == k), "help lacks {k}");
        }
    }

    #[test]
    fn scale_is_s_on_scalable_views_and_asks_for_a_number() {
        let mut s = state_with_deployment();
        run_command(&mut s, "deploy");
        handle_key(&mut s, ch('S'), 10);
        assert!(matches!(&s.mode, Mode::Dialog(Dialog::Scale { input, .. }) if input == "2"));
        handle_key(&mut s, key(KeyCode::Backspace), 10);
        typed(&mut s, "3");
        let effects = handle_key(&mut s, key(KeyCode::Enter), 10);
        assert!(matches!(&effects[..], [Effect::Scale(t, 3)] if t.name == "web"));
    }

    #[test]
    fn shift_f_forwards_pods_and_services_from_a_dialog() {
        let mut s = state_with_deployment();
        run_command(&mut s, "deploy");
        assert_eq!(action_for(&s, ch('F')), None, "not on deployments");
        run_command(&mut s, "svc");
        assert_eq!(action_for(&s, ch('F')), Some(Action::PortForward));
        assert!(
            help(&s)
                .iter()
                .any(|(k, d)| k == "shift-F" && d == "port-forward")
        );
        assert!(sort_keys(&s).iter().all(|(c, _)| *c != 'F'));
        run_command(&mut s, "po");
        assert_eq!(action_for(&s, ch('F')), Some(Action::PortForward));
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default", "uid": "u1",
                "creationTimestamp": "2026-11-23T09:00:00Z"},
            "spec": {"containers": [{"name": "web", "image": "nginx",
                "ports": [{"containerPort": 8080}]}]},
            "status": {"phase": "Running"}});
        s.replace_all(&s.source.clone(), vec![pod]);
        s.refresh_table();
        s.select(0);
        handle_key(&mut s, ch('F'), 10);
        assert!(
            matches!(&s.mode, Mode::Dialog(Dialog::PortForward { input, .. }) if input == "8080:8080"),
            "prefilled with the first container port"
        );
        for _ in 0..4 {
            handle_key(&mut s, key(KeyCode::Backspace), 10);
        }
        let effects = typed(&mut s, "9000");
        assert!(effects.is_empty());
        let effects = handle_key(&mut s, key(KeyCode::Enter), 10);
        assert!(matches!(
            &effects[..],
            [Effect::PortForward(t, spec)] if t.name == "web-1" && spec.local == 8080 && spec.remote == "9000"
        ));
        handle_key(&mut s, ch('F'), 10);
        for _ in 0..9 {
            handle_key(&mut s, key(KeyCode::Backspace), 10);
        }
        typed(&mut s, "x:80");
        assert!(handle_key(&mut s, key(KeyCode::Enter), 10).is_empty());
        assert!(s.flash.as_ref().is_some_and(|f| f.error));
    }

    #[test]
    fn h_shows_the_rollout_history_and_u_asks_before_undo() {
        use crate::tui::snapshots::{fixture_state, with_revisions};
        let mut s = with_revisions(fixture_state());
        run_command(&mut s, "deploy");
        s.select(0);
        assert!(handle_key(&mut s, ch('h'), 10).is_empty());
        let Mode::Dialog(Dialog::Text(v)) = &s.mode else {
            panic!("no history view: {:?}", s.mode);
        };
        assert!(v.title.contains("deployment.apps/web"), "{}", v.title);
        assert!(
            v.lines.iter().any(|l| l.starts_with("1 ")
                && l.contains("web-5f6d8c")
                && l.contains("nginx:1.24")),
            "{:?}",
            v.lines
        );
        assert!(
            v.lines.iter().any(|l| l.starts_with("2 (current)")),
            "{:?}",
            v.lines
        );
        s.mode = Mode::Normal;
        assert!(handle_key(&mut s, ch('u'), 10).is_empty());
        assert!(
            matches!(&s.mode, Mode::Dialog(Dialog::ConfirmUndo { revision: 1, images, .. }) if images == "nginx:1.24,busybox"),
            "{:?}",
            s.mode
        );
        let effects = handle_key(&mut s, ch('y'), 10);
        assert!(matches!(&effects[..], [Effect::Undo(t)] if t.name == "web"));
        // Only deployments have a rollout history.
        run_command(&mut s, "po");
        assert!(handle_key(&mut s, ch('u'), 10).is_empty());
        assert!(matches!(s.mode, Mode::Normal));
    }

    #[test]
    fn r_restarts_deployments_only() {
        let mut s = state_with_deployment();
        assert!(handle_key(&mut s, ch('r'), 10).is_empty(), "not on pods");
        run_command(&mut s, "deploy");
        let effects = handle_key(&mut s, ch('r'), 10);
        assert!(matches!(&effects[..], [Effect::Restart(t)] if t.name == "web"));
        assert!(
            help(&s)
                .iter()
                .any(|(k, d)| k == "r" && d == "rollout restart")
        );
    }

    #[test]
    fn delete_needs_confirmation() {
        let mut s = state_with_deployment();
        let ctrl_d = KeyEvent::new(KeyCode::Char('d'), KeyModifiers::CONTROL);
        assert!(handle_key(&mut s, ctrl_d, 10).is_empty());
        assert!(matches!(s.mode, Mode::Dialog(Dialog::ConfirmDelete(_))));
        assert!(handle_key(&mut s, ch('n'), 10).is_empty());
        assert!(matches!(s.mode, Mode::Normal));
        handle_key(&mut s, ctrl_d, 10);
        let effects = handle_key(&mut s, ch('y'), 10);
        assert!(matches!(&effects[..], [Effect::Delete(_)]));
    }

    #[test]
    fn read_only_refuses_writes_with_the_reason() {
        let mut s = state_with_deployment();
        s.read_only = Some("pods is forbidden: ask an administrator".into());
        let ctrl_d = KeyEvent::new(KeyCode::Char('d'), KeyModifiers::CONTROL);
        assert!(handle_key(&mut s, ctrl_d, 10).is_empty());
        assert!(
            matches!(&s.mode, Mode::Dialog(Dialog::Error { message, .. }) if message.contains("forbidden"))
        );
    }

    #[test]
    fn enter_on_a_deployment_shows_its_pods() {
        let mut s = state_with_deployment();
        run_command(&mut s, "deploy");
        let effects = handle_key(&mut s, key(KeyCode::Enter), 10);
        assert!(s.source.is("", "Pod"));
        assert_eq!(effects, vec![Effect::Watch(s.source)]);
        assert_eq!(s.table.rows.len(), 1);
        assert_eq!(s.table.rows[0].key.1, "web-1");
    }

    #[test]
    fn secret_yaml_hides_values_until_x() {
        let mut s = State::new(now(), false);
        let secrets = Source::resolve("secrets").expect("secrets");
        s.replace_all(
            &secrets,
            vec![json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "db", "namespace": "default"}, "data": {"password": "aHVudGVyMg=="}})],
        );
        s.switch_to(secrets);
        handle_key(&mut s, ch('y'), 10);
        let text = |s: &State| match &s.mode {
            Mode::Dialog(Dialog::Text(v)) => v.lines.join("\n"),
            _ => String::new(),
        };
        assert!(!text(&s).contains("aHVudGVyMg=="));
        handle_key(&mut s, ch('x'), 10);
        assert!(text(&s).contains("aHVudGVyMg=="));
    }

    #[test]
    fn logs_open_a_viewer_and_ask_for_the_stream() {
        let mut s = state_with_deployment();
        let effects = handle_key(&mut s, ch('l'), 10);
        assert!(
            matches!(&effects[..], [Effect::OpenLogs(t)] if t.container.as_deref() == Some("c"))
        );
        assert!(matches!(s.mode, Mode::Dialog(Dialog::Logs(_))));
        let effects = handle_key(
            &mut s,
            KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL),
            10,
        );
        assert_eq!(effects, vec![Effect::SaveLogs]);
        assert!(
            matches!(s.mode, Mode::Dialog(Dialog::Logs(_))),
            "save keeps the viewer"
        );
        handle_key(&mut s, key(KeyCode::Esc), 10);
        assert!(matches!(s.mode, Mode::Normal));
    }

    #[test]
    fn quit_by_q_and_colon_q() {
        let mut s = state_with_deployment();
        handle_key(&mut s, ch('q'), 10);
        assert!(s.quit);
        let mut s = state_with_deployment();
        handle_key(&mut s, ch(':'), 10);
        typed(&mut s, "q");
        handle_key(&mut s, key(KeyCode::Enter), 10);
        assert!(s.quit);
    }
}
