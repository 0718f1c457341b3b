//! Drawing: pure functions of a borrowed [`State`] into a ratatui frame. Nothing here
//! changes state, touches the network, or computes rows (that is `State::refresh_table`);
//! only the rows on screen become widgets, so a frame costs the same with 10 or 10,000
//! objects.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table, Wrap};

use super::actions::{LOG_KEYS, help};
use super::logs::{LogStatus, LogViewer};
use super::state::{CacheStatus, Dialog, Mode, State, TextView, Tone};

/// Lines above the table.
pub const HEADER_HEIGHT: u16 = 3;

/// Rows of the table body (or of a text view) for a terminal of `area`.
pub fn body_height(area: Rect) -> usize {
    // Header, the status line, the block's borders and the table's header row.
    area.height.saturating_sub(HEADER_HEIGHT + 1 + 2 + 1) as usize
}

/// A style that keeps only modifiers when colours are off (`NO_COLOR`).
fn paint(state: &State, style: Style) -> Style {
    if state.color {
        style
    } else {
        Style::default().add_modifier(style.add_modifier)
    }
}

fn tone_style(state: &State, tone: Tone) -> Style {
    let color = match tone {
        Tone::Normal => return Style::default(),
        Tone::Healthy => Color::Green,
        Tone::Pending => Color::Yellow,
        Tone::Failed => Color::Red,
        Tone::Completed => Color::DarkGray,
        Tone::Terminating => Color::Magenta,
    };
    paint(state, Style::default().fg(color))
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, state: &State) {
    let [header, body, status] = Layout::vertical([
        Constraint::Length(HEADER_HEIGHT),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_header(frame, header, state);
    match &state.mode {
        Mode::Dialog(Dialog::Text(view)) => draw_text(frame, body, state, view),
        Mode::Dialog(Dialog::Logs(viewer)) => draw_logs(frame, body, state, viewer),
        _ => draw_table(frame, body, state),
    }
    draw_status(frame, status, state);
    if let Mode::Dialog(d) = &state.mode {
        match d {
            Dialog::Help => draw_help(frame, body, state),
            Dialog::ConfirmDelete(target) => draw_box(
                frame,
                body,
                state,
                " Delete ",
                vec![
                    Line::from(format!("Delete {}?", target.display())),
                    Line::from(""),
                    Line::from("y / enter: delete    n / esc: cancel"),
                ],
                true,
            ),
            Dialog::ConfirmUndo {
                target,
                revision,
                images,
            } => draw_box(
                frame,
                body,
                state,
                " Rollout undo ",
                vec![
                    Line::from(format!(
                        "Roll {} back to revision {revision}?",
                        target.display()
                    )),
                    Line::from(format!("images: {images}")),
                    Line::from(""),
                    Line::from("y / enter: roll back    n / esc: cancel"),
                ],
                true,
            ),
            Dialog::Scale { target, input } => draw_box(
                frame,
                body,
                state,
                " Scale ",
                vec![
                    Line::from(format!("Replicas of {}:", target.display())),
                    Line::from(Span::styled(
                        format!("{input}_"),
                        Style::default().add_modifier(Modifier::BOLD),
                    )),
                    Line::from(""),
                    Line::from("enter: scale    esc: cancel"),
                ],
                false,
            ),
            Dialog::PortForward { target, input } => draw_box(
                frame,
                body,
                state,
                " Port-forward ",
                vec![
                    Line::from(format!("Forward to {} as LOCAL:REMOTE:", target.display())),
                    Line::from(Span::styled(
                        format!("{input}_"),
                        Style::default().add_modifier(Modifier::BOLD),
                    )),
                    Line::from(""),
                    Line::from("Listens on 127.0.0.1:LOCAL (:REMOTE picks a free port)"),
                    Line::from("while berth runs."),
                    Line::from(""),
                    Line::from("enter: forward    esc: cancel"),
                ],
                false,
            ),
            Dialog::Error { title, message } => {
                let mut lines: Vec<Line> =
                    message.lines().map(|l| Line::from(l.to_string())).collect();
                lines.push(Line::from(""));
                lines.push(Line::from("esc / enter: close"));
                draw_box(frame, body, state, &format!(" {title} "), lines, true)
            }
            Dialog::Text(_) | Dialog::Logs(_) => {}
        }
    }
}

fn human_cpu(milli: i128) -> String {
    if milli % 1000 == 0 {
        format!("{}", milli / 1000)
    } else {
        format!("{milli}m")
    }
}

pub fn human_mem(bytes: i128) -> String {
    const UNITS: [&str; 5] = ["", "Ki", "Mi", "Gi", "Ti"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || v >= 10.0 {
        format!("{:.0}{}", v, UNITS[unit])
    } else {
        format!("{:.1}{}", v, UNITS[unit])
    }
}

fn percent(part: i128, whole: i128) -> String {
    if whole <= 0 {
        "n/a".to_string()
    } else {
        format!("{}%", part * 100 / whole)
    }
}

fn draw_header(frame: &mut Frame, area: Rect, state: &State) {
    let cap = state.summary.capacity;
    let (total, running, pending, failed) = state.summary.pods;
    let key = paint(state, Style::default().fg(Color::Cyan));
    let bold = Style::default().add_modifier(Modifier::BOLD);
    // The server's version only when it is not this berth's (an upgrade half done).
    let server = state
        .server_version
        .as_deref()
        .filter(|v| !v.ends_with(&format!("-berth.{}", env!("CARGO_PKG_VERSION"))))
        .map(|v| format!(" (server {v})"))
        .unwrap_or_default();
    let (cpu_use, mem_use) = match state.usage {
        Some(u) => (
            format!(
                "{} {}",
                human_cpu(u.cpu_milli),
                percent(u.cpu_milli, cap.cpu_allocatable_milli)
            ),
            format!(
                "{} {}",
                human_mem(u.mem),
                percent(u.mem, cap.mem_allocatable)
            ),
        ),
        None => ("n/a".to_string(), "n/a".to_string()),
    };
    let line1 = Line::from(vec![
        Span::styled(format!("berth v{}", env!("CARGO_PKG_VERSION")), bold),
        Span::raw(server),
        Span::styled("  Pods ", key),
        Span::raw(format!("{total}: ")),
        Span::styled(
            format!("{running} running"),
            tone_style(state, Tone::Healthy),
        ),
        Span::raw(", "),
        Span::styled(
            format!("{pending} pending"),
            tone_style(state, Tone::Pending),
        ),
        Span::raw(", "),
        Span::styled(format!("{failed} failed"), tone_style(state, Tone::Failed)),
    ]);
    let line2 = Line::from(vec![
        Span::styled("CPU ", key),
        Span::raw(format!(
            "req {}/{} {} use {cpu_use}   ",
            human_cpu(cap.cpu_requested_milli),
            human_cpu(cap.cpu_allocatable_milli),
            percent(cap.cpu_requested_milli, cap.cpu_allocatable_milli)
        )),
        Span::styled("MEM ", key),
        Span::raw(format!(
            "req {}/{} {} use {mem_use}",
            human_mem(cap.mem_requested),
            human_mem(cap.mem_allocatable),
            percent(cap.mem_requested, cap.mem_allocatable)
        )),
    ]);
    let mut ns_spans = vec![ns_span(state, 0, "all", state.namespace.is_none())];
    for (i, ns) in state.summary.namespaces.iter().enumerate() {
        ns_spans.push(Span::raw(" "));
        ns_spans.push(ns_span(
            state,
            i + 1,
            ns,
            state.namespace.as_deref() == Some(ns),
        ));
    }
    if let Some(ns) = &state.namespace
        && !state.summary.namespaces.contains(ns)
    {
        ns_spans.push(Span::raw(" "));
        ns_spans.push(Span::styled(
            ns.clone(),
            Style::default().add_modifier(Modifier::REVERSED),
        ));
    }
    frame.render_widget(
        Paragraph::new(vec![line1, line2, Line::from(ns_spans)]),
        area,
    );
}

fn ns_span(state: &State, n: usize, name: &str, current: bool) -> Span<'static> {
    let style = if current {
        Style::default().add_modifier(Modifier::REVERSED)
    } else {
        paint(state, Style::default().fg(Color::DarkGray))
    };
    Span::styled(format!("<{n}>{name}"), style)
}

fn draw_table(frame: &mut Frame, area: Rect, state: &State) {
    let table = &state.table;
    let scope = match &state.namespace {
        Some(ns) if state.source.namespaced() => ns.as_str(),
        _ if state.source.namespaced() => "all",
        _ => "",
    };
    let count = if state.filter.is_empty() {
        format!("[{}]", table.rows.len())
    } else {
        format!("[{}/{}]", table.rows.len(), table.total)
    };
    let mut title = vec![Span::styled(
        format!(" {}", state.source.title()),
        Style::default().add_modifier(Modifier::BOLD),
    )];
    if !scope.is_empty() {
        title.push(Span::raw(format!("({scope})")));
    }
    title.push(Span::raw(format!("{count} ")));
    if !state.filter.is_empty() {
        title.push(Span::styled(
            format!("</{}> ", state.filter.text),
            paint(state, Style::default().fg(Color::Yellow)),
        ));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Line::from(title))
        .border_style(paint(state, Style::default().fg(Color::Blue)));
    let inner = block.inner(area);
    frame.render_widget(block, area);

    if table.rows.is_empty() {
        let msg = match state.view_status() {
            None | Some(CacheStatus::Loading) => "loading…".to_string(),
            Some(CacheStatus::Retrying(e)) => format!("cannot list: {e}"),
            Some(CacheStatus::Live) if table.total > 0 => "no rows match the filter".to_string(),
            Some(CacheStatus::Live) => format!("no {} here", state.source.title().to_lowercase()),
        };
        let [h, rest] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
        frame.render_widget(Paragraph::new(header_line(state, inner.width)), h);
        frame.render_widget(
            Paragraph::new(msg)
                .style(paint(state, Style::default().fg(Color::DarkGray)))
                .wrap(Wrap { trim: true }),
            rest,
        );
        return;
    }

    let shown = shown_columns(table, inner.width.saturating_sub(2) as usize);
    let height = inner.height.saturating_sub(1) as usize;
    let offset = visible_offset(state.offset, state.selected, height, table.rows.len());
    let rows = table
        .rows
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, r)| {
            let mut cells = vec![if r.warning {
                "!".to_string()
            } else {
                " ".to_string()
            }];
            cells.extend(
                shown
                    .iter()
                    .map(|(c, _)| r.cells.get(*c).cloned().unwrap_or_default()),
            );
            let mut style = tone_style(state, r.tone);
            if i == state.selected {
                style = style.add_modifier(Modifier::REVERSED);
            }
            Row::new(cells).style(style)
        });
    let mut constraints = vec![Constraint::Length(1)];
    constraints.extend(shown.iter().map(|(_, w)| Constraint::Length(*w as u16)));
    let mut headers = vec![String::new()];
    let sorted = (state.sort.column > 0 || state.sort.descending).then_some(state.sort);
    for (c, _) in &shown {
        let mut h = table.headers.get(*c).cloned().unwrap_or_default();
        if let Some(sort) = sorted
            && sort.column == *c
        {
            h.push(if sort.descending { '↓' } else { '↑' });
        }
        headers.push(h);
    }
    let header = Row::new(headers).style(paint(
        state,
        Style::default()
            .fg(Color::White)
            .add_modifier(Modifier::BOLD),
    ));
    let widget = Table::new(rows, constraints)
        .header(header)
        .column_spacing(1);
    frame.render_widget(widget, inner);
}

/// The header row alone, for an empty table.
fn header_line(state: &State, width: u16) -> Line<'static> {
    let mut text = String::from("  ");
    for (c, w) in shown_columns(&state.table, width.saturating_sub(2) as usize) {
        let h = state.table.headers.get(c).map(String::as_str).unwrap_or("");
        text.push_str(&format!("{h:<w$} "));
    }
    Line::from(Span::styled(
        text.trim_end().to_string(),
        Style::default().add_modifier(Modifier::BOLD),
    ))
}

/// The columns to show and their widths: every column when all fit in `avail` cells (as
/// `-o wide`), else the default ones, cut to fit.
pub fn shown_columns(table: &super::state::Table, avail: usize) -> Vec<(usize, usize)> {
    let all: usize = table.widths.iter().map(|w| w + 1).sum();
    let columns: Vec<usize> = (0..table.widths.len())
        .filter(|&c| all <= avail + 1 || !table.wide.get(c).copied().unwrap_or(false))
        .collect();
    let widths: Vec<usize> = columns.iter().map(|&c| table.widths[c]).collect();
    columns
        .into_iter()
        .zip(fit_widths(&widths, avail))
        .collect()
}

/// Column widths that fit `avail` cells: whole columns from the left, the last one cut.
pub fn fit_widths(widths: &[usize], avail: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut used = 0;
    for (i, &w) in widths.iter().enumerate() {
        // Long cells (messages, selectors) are cut, except in the last column.
        let w = if i + 1 < widths.len() { w.min(60) } else { w };
        let need = w + usize::from(!out.is_empty());
        if used + need <= avail {
            used += need;
            out.push(w);
        } else {
            let rest = avail.saturating_sub(used + usize::from(!out.is_empty()));
            if rest >= 4 {
                out.push(rest);
            }
            break;
        }
    }
    out
}

/// The first row to draw so the selection is visible.
fn visible_offset(offset: usize, selected: usize, height: usize, len: usize) -> usize {
    let height = height.max(1);
    let mut o = offset;
    if selected < o {
        o = selected;
    } else if selected >= o + height {
        o = selected + 1 - height;
    }
    o.min(len.saturating_sub(height))
}

fn draw_text(frame: &mut Frame, area: Rect, state: &State, view: &TextView) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(
            format!(" {} ", view.title),
            Style::default().add_modifier(Modifier::BOLD),
        ))
        .border_style(paint(state, Style::default().fg(Color::Blue)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let lines: Vec<Line> = view
        .lines
        .iter()
        .skip(view.scroll)
        .take(inner.height as usize)
        .map(|l| Line::from(l.as_str()))
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_logs(frame: &mut Frame, area: Rect, state: &State, viewer: &LogViewer) {
    let t = &viewer.target;
    let flags: Vec<&str> = [
        (viewer.follow, "follow"),
        (viewer.wrap, "wrap"),
        (viewer.timestamps, "timestamps"),
        (t.previous, "previous"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, n)| *n)
    .collect();
    let container = t
        .container
        .as_deref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    let state_text = match &viewer.status {
        LogStatus::Streaming => String::new(),
        LogStatus::Ended => " ended".to_string(),
        LogStatus::Failed(_) => " failed".to_string(),
    };
    let title = format!(
        " Logs: {}/{}{container} [{}]{state_text} ",
        t.namespace,
        t.pod,
        flags.join(" ")
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(
            title,
            Style::default().add_modifier(Modifier::BOLD),
        ))
        .border_style(paint(state, Style::default().fg(Color::Blue)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let height = inner.height as usize;
    let mut lines: Vec<Line> = Vec::new();
    if let LogStatus::Failed(m) = &viewer.status {
        lines.push(Line::from(Span::styled(
            m.clone(),
            paint(state, Style::default().fg(Color::Red)),
        )));
    }
    let needle = viewer.search.as_ref().map(|s| s.to_lowercase());
    let hl = paint(
        state,
        Style::default()
            .bg(Color::Yellow)
            .fg(Color::Black)
            .add_modifier(Modifier::BOLD),
    )
    .add_modifier(Modifier::UNDERLINED);
    let top = viewer.top(height.saturating_sub(lines.len()));
    for i in top..viewer.lines.len().min(top + height) {
        let text = viewer.display_line(&viewer.lines[i]);
        let mut line = highlight(text, needle.as_deref(), hl);
        if viewer.current_match == Some(i) {
            line = line.style(Style::default().add_modifier(Modifier::BOLD));
        }
        lines.push(line);
    }
    let mut p = Paragraph::new(lines);
    if viewer.wrap {
        p = p.wrap(Wrap { trim: false });
    }
    frame.render_widget(p, inner);
}

/// A line with every case-insensitive occurrence of `needle` styled.
fn highlight(text: &str, needle: Option<&str>, style: Style) -> Line<'static> {
    let Some(needle) = needle.filter(|n| !n.is_empty()) else {
        return Line::from(text.to_string());
    };
    let lower = text.to_lowercase();
    // Lower-casing can change byte lengths outside ASCII: highlight only when it did not.
    if lower.len() != text.len() {
        return Line::from(text.to_string());
    }
    let mut spans = Vec::new();
    let mut at = 0;
    while let Some(pos) = lower.get(at..).and_then(|rest| rest.find(needle)) {
        let start = at + pos;
        let end = start + needle.len();
        // Same byte length need not mean the same character boundaries: never slice
        // through a character.
        let (Some(before), Some(hit)) = (text.get(at..start), text.get(start..end)) else {
            return Line::from(text.to_string());
        };
        if !before.is_empty() {
            spans.push(Span::raw(before.to_string()));
        }
        spans.push(Span::styled(hit.to_string(), style));
        at = end;
    }
    if let Some(rest) = text.get(at..).filter(|r| !r.is_empty()) {
        spans.push(Span::raw(rest.to_string()));
    }
    Line::from(spans)
}

fn draw_status(frame: &mut Frame, area: Rect, state: &State) {
    let line = match &state.mode {
        Mode::Command(input) => Line::from(vec![
            Span::styled(":", Style::default().add_modifier(Modifier::BOLD)),
            Span::raw(format!("{input}█")),
        ]),
        Mode::Filter(input) => Line::from(vec![
            Span::styled("/", Style::default().add_modifier(Modifier::BOLD)),
            Span::raw(format!("{input}█")),
        ]),
        _ if state.disconnected.is_some() => Line::from(Span::styled(
            format!(
                "disconnected, retrying: {}",
                state.disconnected.as_deref().unwrap_or_default()
            ),
            paint(
                state,
                Style::default()
                    .bg(Color::Red)
                    .fg(Color::White)
                    .add_modifier(Modifier::BOLD),
            )
            .add_modifier(Modifier::BOLD),
        )),
        Mode::Dialog(Dialog::Logs(v)) => {
            if let Some(input) = &v.search_input {
                Line::from(format!("/{input}█"))
            } else if let Some(m) = &v.message {
                Line::from(m.clone())
            } else {
                hints(state, LOG_KEYS)
            }
        }
        Mode::Dialog(Dialog::Text(_)) => hints(
            state,
            &[("j/k", "scroll"), ("pgup/pgdn", "page"), ("esc", "back")],
        ),
        _ => match (&state.flash, &state.read_only) {
            (Some(f), _) => Line::from(Span::styled(
                f.text.clone(),
                if f.error {
                    paint(state, Style::default().fg(Color::Red))
                } else {
                    paint(state, Style::default().fg(Color::Green))
                },
            )),
            (None, Some(r)) => Line::from(Span::styled(
                format!("read-only: {r}"),
                paint(state, Style::default().fg(Color::Yellow)),
            )),
            (None, None) => {
                let mut line = hints(
                    state,
                    &[
                        ("?", "help"),
                        (":", "view"),
                        ("/", "filter"),
                        ("d", "describe"),
                        ("y", "yaml"),
                        ("l", "logs"),
                        ("ctrl-d", "delete"),
                    ],
                );
                // Running port-forwards first (state matters more than reminders): the
                // one, or how many (`?` lists them).
                let forwards = match state.forwards.as_slice() {
                    [] => None,
                    [one] => Some(format!("⇄ {}  ", one.display())),
                    many => Some(format!("⇄ {} port-forwards  ", many.len())),
                };
                if let Some(text) = forwards {
                    line.spans.insert(
                        0,
                        Span::styled(text, paint(state, Style::default().fg(Color::Green))),
                    );
                }
                line
            }
        },
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn hints(state: &State, keys: &[(&str, &str)]) -> Line<'static> {
    let key = paint(
        state,
        Style::default()
            .fg(Color::Cyan)
            .add_modifier(Modifier::BOLD),
    )
    .add_modifier(Modifier::BOLD);
    let mut spans = Vec::new();
    for (k, d) in keys {
        spans.push(Span::styled(format!("<{k}>"), key));
        spans.push(Span::raw(format!("{d} ")));
    }
    Line::from(spans)
}

/// A rectangle of `w`×`h` centred in `area` (clamped to it).
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn draw_box(
    frame: &mut Frame,
    area: Rect,
    state: &State,
    title: &str,
    lines: Vec<Line<'_>>,
    danger: bool,
) {
    let width = lines
        .iter()
        .map(|l| l.width() as u16)
        .max()
        .unwrap_or(0)
        .clamp(30, area.width.saturating_sub(4).max(30))
        + 4;
    // Lines wrap inside the borders: count the rows they take.
    let inner = width.saturating_sub(2).max(1) as usize;
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner)).sum();
    let height = (rows as u16 + 2).min(area.height);
    let rect = centered(area, width, height);
    let color = if danger { Color::Red } else { Color::Cyan };
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(
            title.to_string(),
            Style::default().add_modifier(Modifier::BOLD),
        ))
        .border_style(paint(state, Style::default().fg(color)));
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        rect,
    );
}

fn draw_help(frame: &mut Frame, area: Rect, state: &State) {
    let keys = help(state);
    let key_w = keys
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let key_style = paint(state, Style::default().fg(Color::Cyan)).add_modifier(Modifier::BOLD);
    // The running port-forwards go below the keys: a blank line, a title, one line each.
    let forward_rows = match state.forwards.len() {
        0 => 0,
        n => n + 2,
    };
    let rows = area.height.saturating_sub(2 + forward_rows as u16) as usize;
    let entry_w = keys
        .iter()
        .map(|(k, d)| key_w.max(k.chars().count()) + 2 + d.chars().count())
        .max()
        .unwrap_or(0);
    // As many columns as the list needs to fit the height, as far as the width allows.
    let fit = (area.width.saturating_sub(2) as usize / (entry_w + 2)).max(1);
    let columns = keys.len().div_ceil(rows.max(1)).clamp(1, fit);
    let per_col = keys.len().div_ceil(columns);
    let mut lines: Vec<Line> = Vec::new();
    for r in 0..per_col {
        let mut spans = Vec::new();
        for c in 0..columns {
            if let Some((k, d)) = keys.get(c * per_col + r) {
                spans.push(Span::styled(format!("{k:<key_w$}  "), key_style));
                let pad = entry_w.saturating_sub(key_w + 2);
                spans.push(Span::raw(format!("{d:<pad$}  ")));
            }
        }
        lines.push(Line::from(spans));
    }
    if !state.forwards.is_empty() {
        lines.push(Line::from(""));
        lines.push(Line::from(Span::styled("Port-forwards", key_style)));
        for f in &state.forwards {
            lines.push(Line::from(format!("  {}", f.display())));
        }
    }
    let widest = lines.iter().map(Line::width).max().unwrap_or(0);
    let width = ((entry_w + 2) * columns + 2).max(widest + 2) as u16;
    let rect = centered(
        area,
        width.max(30),
        (lines.len() as u16 + 2).min(area.height),
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(
            format!(" Help: {} ", state.source.title()),
            Style::default().add_modifier(Modifier::BOLD),
        ))
        .border_style(paint(state, Style::default().fg(Color::Cyan)));
    frame.render_widget(Clear, rect);
    frame.render_widget(Paragraph::new(lines).block(block), rect);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlight_marks_every_match_case_insensitively() {
        let style = Style::default().add_modifier(Modifier::BOLD);
        let line = highlight("GET /a get /b", Some("get"), style);
        let marked: Vec<&str> = line
            .spans
            .iter()
            .filter(|s| s.style == style)
            .map(|s| s.content.as_ref())
            .collect();
        assert_eq!(marked, vec!["GET", "get"]);
        // Non-ASCII text never panics, whatever lower-casing does to it.
        let _ = highlight("İstanbul İ ß", Some("i"), style);
        let _ = highlight("ÅÄÖ åäö", Some("ä"), style);
    }

    #[test]
    fn widths_fit_whole_columns_then_cut_the_last() {
        assert_eq!(fit_widths(&[10, 10, 10], 40), vec![10, 10, 10]);
        assert_eq!(fit_widths(&[10, 10, 30], 30), vec![10, 10, 8]);
        assert_eq!(fit_widths(&[10, 10, 30], 23), vec![10, 10]);
    }
}
