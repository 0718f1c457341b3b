//! The log viewer: a bounded buffer of lines from a [`LogSource`], with follow, wrap,
//! timestamps, search with highlight, and save to a file.
//!
//! The source is a trait so the viewer does not care where lines come from: the daemon's
//! `GET /api/v1/namespaces/{ns}/pods/{name}/log?follow=true&timestamps=true` in the app, a
//! fixed list in tests. Lines always arrive with their RFC 3339 timestamp first (the
//! viewer asks for `timestamps=true`); hiding timestamps is a display choice, so toggling
//! them never re-reads the log.

use std::collections::VecDeque;
use std::path::PathBuf;

use tokio::sync::mpsc;

/// Lines kept; older ones are dropped (k9s keeps a similar bounded buffer).
pub const MAX_LINES: usize = 10_000;

/// Whose log to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    pub namespace: String,
    pub pod: String,
    /// `None`: the pod's only (or first) container, as the API defaults it.
    pub container: Option<String>,
    /// The previous (terminated) instance of the container.
    pub previous: bool,
}

/// What a source sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogChunk {
    /// One line, without its line break.
    Line(String),
    /// The log ended (not following, or the container stopped).
    End,
    /// The source failed; the message says what to do.
    Failed(String),
}

/// Where log lines come from. `open` must not block: it starts whatever work it needs
/// (a task reading an HTTP stream) and returns the receiving end.
pub trait LogSource: Send + Sync {
    fn open(&self, target: &LogTarget, follow: bool) -> mpsc::Receiver<LogChunk>;
}

/// The source used until the daemon's log API is wired in: it says so.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unwired;

impl LogSource for Unwired {
    fn open(&self, _target: &LogTarget, _follow: bool) -> mpsc::Receiver<LogChunk> {
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(LogChunk::Failed(
            "this berth does not stream logs yet; use berth logs when it does".to_string(),
        ));
        rx
    }
}

/// Logs from the daemon's `pods/{name}/log` API (with timestamps; the viewer hides them
/// unless asked).
#[derive(Debug, Clone)]
pub struct ApiLogs(pub crate::client::Client);

impl LogSource for ApiLogs {
    fn open(&self, target: &LogTarget, follow: bool) -> mpsc::Receiver<LogChunk> {
        let (tx, rx) = mpsc::channel(256);
        let client = self.0.clone();
        let target = target.clone();
        tokio::spawn(async move {
            let options = crate::client::LogOptions {
                container: target.container.clone(),
                follow,
                previous: target.previous,
                timestamps: true,
                ..Default::default()
            };
            let mut stream = match client.logs(&target.namespace, &target.pod, &options).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(LogChunk::Failed(e.to_string())).await;
                    return;
                }
            };
            let mut lines = LineSplitter::default();
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(bytes) => {
                        for line in lines.feed(&bytes) {
                            if tx.send(LogChunk::Line(line)).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(LogChunk::Failed(e.to_string())).await;
                        return;
                    }
                }
            }
            if let Some(last) = lines.finish() {
                let _ = tx.send(LogChunk::Line(last)).await;
            }
            let _ = tx.send(LogChunk::End).await;
        });
        rx
    }
}

/// Cuts a byte stream (HTTP chunks of a log) into lines: a line split across chunks is
/// joined, invalid UTF-8 is replaced, `\r\n` endings are trimmed. For log sources.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// The lines completed by `bytes`.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                out.push(self.take());
            } else {
                self.partial.push(b);
            }
        }
        out
    }

    /// The last line when the stream ended without a line break.
    pub fn finish(&mut self) -> Option<String> {
        (!self.partial.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let mut line = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        if line.ends_with('\r') {
            line.pop();
        }
        line
    }
}

/// Whether the stream is still open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogStatus {
    Streaming,
    Ended,
    Failed(String),
}

/// The viewer's state.
#[derive(Debug, Clone)]
pub struct LogViewer {
    pub target: LogTarget,
    pub lines: VecDeque<String>,
    /// Stick to the end as lines arrive.
    pub follow: bool,
    pub wrap: bool,
    pub timestamps: bool,
    /// First line shown when not following.
    pub scroll: usize,
    /// The search in effect (highlighted), and the line of the current match.
    pub search: Option<String>,
    pub current_match: Option<usize>,
    /// Typing a search after `/`.
    pub search_input: Option<String>,
    pub status: LogStatus,
    /// The last message of a save or search, for the viewer's status line.
    pub message: Option<String>,
}

/// What a key did in the viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogKey {
    Handled,
    Close,
    /// Save the buffer to a file (the app does the I/O).
    Save,
    /// Reopen the stream (after toggling `previous`).
    Reopen,
    Ignored,
}

impl LogViewer {
    pub fn new(target: LogTarget) -> LogViewer {
        LogViewer {
            target,
            lines: VecDeque::new(),
            follow: true,
            wrap: false,
            timestamps: false,
            scroll: 0,
            search: None,
            current_match: None,
            search_input: None,
            status: LogStatus::Streaming,
            message: None,
        }
    }

    /// Takes what a source sent.
    pub fn push(&mut self, chunk: LogChunk) {
        match chunk {
            LogChunk::Line(l) => {
                if self.lines.len() == MAX_LINES {
                    self.lines.pop_front();
                    self.scroll = self.scroll.saturating_sub(1);
                }
                self.lines.push_back(l);
            }
            LogChunk::End => self.status = LogStatus::Ended,
            LogChunk::Failed(m) => self.status = LogStatus::Failed(m),
        }
    }

    /// A line as shown: without its timestamp unless timestamps are on.
    pub fn display_line<'a>(&self, line: &'a str) -> &'a str {
        if self.timestamps {
            return line;
        }
        match line.split_once(' ') {
            Some((ts, rest)) if looks_like_timestamp(ts) => rest,
            _ => line,
        }
    }

    /// The first line to show in a body of `height` lines.
    pub fn top(&self, height: usize) -> usize {
        if self.follow {
            self.lines.len().saturating_sub(height)
        } else {
            self.scroll.min(self.lines.len().saturating_sub(1))
        }
    }

    /// Handles a key; `height` is the body's height (for paging).
    pub fn key(&mut self, key: crossterm::event::KeyEvent, height: usize) -> LogKey {
        use crossterm::event::{KeyCode, KeyModifiers};
        if let Some(input) = &mut self.search_input {
            match key.code {
                KeyCode::Esc => self.search_input = None,
                KeyCode::Enter => {
                    let text = std::mem::take(input);
                    self.search_input = None;
                    self.search = (!text.is_empty()).then_some(text);
                    self.current_match = None;
                    self.find(true, height);
                }
                KeyCode::Backspace => {
                    input.pop();
                }
                KeyCode::Char(c) => input.push(c),
                _ => {}
            }
            return LogKey::Handled;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let page = height.max(1);
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => {
                if self.search.is_some() && key.code == KeyCode::Esc {
                    self.search = None;
                    self.current_match = None;
                    return LogKey::Handled;
                }
                return LogKey::Close;
            }
            KeyCode::Char('s') if ctrl => return LogKey::Save,
            KeyCode::Char('b') if ctrl => self.scroll_by(-(page as isize), height),
            KeyCode::Char('f') if ctrl => self.scroll_by(page as isize, height),
            KeyCode::Char('f') => {
                self.follow = !self.follow;
                if !self.follow {
                    self.scroll = self.lines.len().saturating_sub(height);
                }
            }
            KeyCode::Char('w') => self.wrap = !self.wrap,
            KeyCode::Char('t') => self.timestamps = !self.timestamps,
            KeyCode::Char('p') => {
                self.target.previous = !self.target.previous;
                self.lines.clear();
                self.scroll = 0;
                self.status = LogStatus::Streaming;
                return LogKey::Reopen;
            }
            KeyCode::Char('/') => self.search_input = Some(String::new()),
            KeyCode::Char('n') => self.find(true, height),
            KeyCode::Char('N') => self.find(false, height),
            KeyCode::Up | KeyCode::Char('k') => self.scroll_by(-1, height),
            KeyCode::Down | KeyCode::Char('j') => self.scroll_by(1, height),
            KeyCode::PageUp => self.scroll_by(-(page as isize), height),
            KeyCode::PageDown => self.scroll_by(page as isize, height),
            KeyCode::Home | KeyCode::Char('g') => {
                self.follow = false;
                self.scroll = 0;
            }
            KeyCode::End | KeyCode::Char('G') => self.follow = true,
            _ => return LogKey::Ignored,
        }
        LogKey::Handled
    }

    fn scroll_by(&mut self, delta: isize, height: usize) {
        let top = self.top(height) as isize;
        let max = self.lines.len().saturating_sub(height) as isize;
        let next = (top + delta).clamp(0, max.max(0));
        self.follow = next >= max && delta > 0;
        self.scroll = next as usize;
    }

    /// Moves to the next (or previous) line matching the search, case-insensitively.
    fn find(&mut self, forward: bool, height: usize) {
        let Some(needle) = self.search.as_ref().map(|s| s.to_lowercase()) else {
            return;
        };
        let n = self.lines.len();
        if n == 0 {
            return;
        }
        let start = match self.current_match {
            Some(i) if forward => i + 1,
            Some(i) => i + n - 1,
            None if forward => self.top(height),
            None => self.top(height) + n - 1,
        };
        for step in 0..n {
            let i = if forward {
                (start + step) % n
            } else {
                (start + n - step % n) % n
            };
            if self
                .display_line(&self.lines[i])
                .to_lowercase()
                .contains(&needle)
            {
                self.current_match = Some(i);
                self.follow = false;
                // Show the match with some lines of context above it.
                self.scroll = i.saturating_sub(height / 3);
                self.message = None;
                return;
            }
        }
        self.message = Some(format!(
            "no match for \"{}\"",
            self.search.as_deref().unwrap_or("")
        ));
    }

    /// The file name a save writes to, under `dir`.
    pub fn save_path(&self, dir: &std::path::Path, now: k8s_openapi::jiff::Timestamp) -> PathBuf {
        let container = self.target.container.as_deref().unwrap_or("log");
        let stamp = now.strftime("%Y%m%dT%H%M%SZ");
        dir.join(format!(
            "{}-{}-{}-{stamp}.log",
            self.target.namespace, self.target.pod, container
        ))
    }

    /// The buffer as shown (timestamps as toggled), one line each.
    pub fn contents(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            out.push_str(self.display_line(l));
            out.push('\n');
        }
        out
    }
}

fn looks_like_timestamp(s: &str) -> bool {
    s.len() >= 20 && s.as_bytes().get(4) == Some(&b'-') && s.contains('T')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn viewer(n: usize) -> LogViewer {
        let mut v = LogViewer::new(LogTarget {
            namespace: "default".into(),
            pod: "web".into(),
            container: Some("c".into()),
            previous: false,
        });
        for i in 0..n {
            v.push(LogChunk::Line(format!(
                "2026-11-23T10:00:{:02}.000000000Z line {i}",
                i % 60
            )));
        }
        v
    }

    #[test]
    fn timestamps_are_hidden_until_asked() {
        let mut v = viewer(1);
        assert_eq!(v.display_line(&v.lines[0].clone()), "line 0");
        v.key(key(KeyCode::Char('t')), 10);
        assert!(
            v.display_line(&v.lines[0].clone())
                .starts_with("2026-11-23T10:00:00")
        );
    }

    #[test]
    fn follow_sticks_to_the_end_until_scrolled_up() {
        let mut v = viewer(100);
        assert_eq!(v.top(10), 90);
        v.key(key(KeyCode::Up), 10);
        assert!(!v.follow);
        assert_eq!(v.top(10), 89);
        v.push(LogChunk::Line("x".into()));
        assert_eq!(
            v.top(10),
            89,
            "not following: new lines do not move the view"
        );
        v.key(key(KeyCode::Char('G')), 10);
        assert_eq!(v.top(10), 91);
    }

    #[test]
    fn search_finds_next_and_previous_and_reports_no_match() {
        let mut v = viewer(30);
        for c in "/line 2".chars() {
            v.key(key(KeyCode::Char(c)), 10);
        }
        v.key(key(KeyCode::Enter), 10);
        let first = v.current_match.expect("a match");
        assert!(v.lines[first].ends_with("line 2") || v.lines[first].contains("line 2"));
        v.key(key(KeyCode::Char('n')), 10);
        let second = v.current_match.expect("a match");
        assert_ne!(first, second);
        v.key(key(KeyCode::Char('N')), 10);
        assert_eq!(v.current_match, Some(first));
        v.search = Some("absent".into());
        v.key(key(KeyCode::Char('n')), 10);
        assert!(v.message.as_deref().unwrap_or("").contains("no match"));
    }

    #[test]
    fn buffer_is_bounded() {
        let v = viewer(MAX_LINES + 5);
        assert_eq!(v.lines.len(), MAX_LINES);
        assert!(v.lines[0].ends_with("line 5"));
    }

    #[test]
    fn keys_close_save_and_reopen() {
        let mut v = viewer(3);
        assert_eq!(
            v.key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::CONTROL), 10),
            LogKey::Save
        );
        assert_eq!(v.key(key(KeyCode::Char('p')), 10), LogKey::Reopen);
        assert!(v.target.previous && v.lines.is_empty());
        assert_eq!(v.key(key(KeyCode::Char('q')), 10), LogKey::Close);
    }

    #[test]
    fn lines_split_across_chunks_are_joined() {
        let mut s = LineSplitter::default();
        assert_eq!(s.feed(b"one\ntw"), vec!["one".to_string()]);
        assert_eq!(s.feed(b"o\r\nthr"), vec!["two".to_string()]);
        assert_eq!(s.feed(b"\xffee"), Vec::<String>::new());
        assert_eq!(s.finish(), Some("thr\u{fffd}ee".to_string()));
        assert_eq!(s.finish(), None);
    }

    #[tokio::test]
    async fn the_unwired_source_says_so() {
        let mut rx = Unwired.open(&viewer(0).target, true);
        assert!(matches!(rx.recv().await, Some(LogChunk::Failed(_))));
    }
}
