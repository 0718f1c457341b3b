//! Container logs for `berth logs` / `kubectl logs`: reads the CRI log files the shim
//! writes ([`crate::runtime::crilog`]), joins `P` pieces into whole lines, and applies
//! kubectl's options: `tailLines`, `sinceSeconds`/`sinceTime`, `timestamps`, `limitBytes`
//! and `follow`.
//!
//! A run's log is `<file>.N … <file>.1 <file>` (oldest first, see the rotation of
//! [`crate::runtime::crilog::RotatingLog`]). Following polls the current file, notices a
//! rotation by the path naming a different inode (the open file is read to its end first),
//! and ends once the container's run has ended and everything it wrote has been sent. The
//! reader runs on a thread of its own (file reads block) and stops when the receiver is
//! dropped.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use tokio::sync::mpsc;

use crate::api::ApiError;
use crate::runtime::crilog::Stream;
use crate::runtime::{LogLocation, Runtime};
use crate::server::node::{BoxFuture, CONTAINER_ID_SCHEME, LogRequest, LogService, LogStream};

/// How often a followed log is looked at for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Output is sent in chunks of about this size.
const CHUNK: usize = 32 * 1024;

/// The log service of the kubelet.
#[derive(Debug)]
pub struct Logs {
    runtime: Arc<Runtime>,
}

impl Logs {
    pub fn new(runtime: Arc<Runtime>) -> Logs {
        Logs { runtime }
    }
}

impl LogService for Logs {
    fn logs(&self, request: LogRequest) -> BoxFuture<Result<LogStream, ApiError>> {
        let result = self.open(request);
        Box::pin(async move { result })
    }
}

impl Logs {
    fn open(&self, request: LogRequest) -> Result<LogStream, ApiError> {
        let location = LogLocation {
            namespace: request.namespace.clone(),
            pod_name: request.pod_name.clone(),
            pod_uid: request.pod_uid.clone(),
            container_name: request.container.clone(),
            restart_count: request.restart_count,
        };
        let path = self.runtime.log_path(&location).ok_or_else(|| {
            ApiError::bad_request(format!(
                "container {:?} in pod {:?} has no log: its namespace, name, uid or container name cannot name a file",
                request.container, request.pod_name
            ))
        })?;
        let options = ReadOptions::from_request(&request, Timestamp::now());
        let id = request
            .container_id
            .as_deref()
            .map(|id| {
                id.strip_prefix(CONTAINER_ID_SCHEME)
                    .unwrap_or(id)
                    .to_string()
            })
            .filter(|id| !id.is_empty());
        let runtime = self.runtime.clone();
        let running = move || {
            id.as_deref()
                .is_some_and(|id| runtime.state(id).is_ok_and(|s| s.is_running()))
        };
        spawn_reader(path, options, running, FOLLOW_POLL)
    }
}

/// Starts the reader thread; its output arrives on the returned stream.
pub fn spawn_reader(
    path: PathBuf,
    options: ReadOptions,
    running: impl Fn() -> bool + Send + 'static,
    poll: Duration,
) -> Result<LogStream, ApiError> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::Builder::new()
        .name("berth-logs".into())
        .spawn(move || {
            let mut reader = Reader::new(path, options, tx.clone());
            if let Err(e) = reader.run(&running, poll) {
                let _ = tx.blocking_send(Err(e));
            }
        })
        .map_err(|e| ApiError::internal(format!("cannot start a log reader thread: {e}")))?;
    Ok(rx)
}

/// kubectl's options, resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadOptions {
    pub follow: bool,
    pub tail_lines: Option<u64>,
    /// Lines stamped before this are left out.
    pub since: Option<Timestamp>,
    pub timestamps: bool,
    pub limit_bytes: Option<u64>,
}

impl ReadOptions {
    pub fn from_request(r: &LogRequest, now: Timestamp) -> ReadOptions {
        let since_seconds = r.since_seconds.and_then(|s| {
            let s = i64::try_from(s).ok()?;
            now.checked_sub(jiff::SignedDuration::from_secs(s)).ok()
        });
        ReadOptions {
            follow: r.follow,
            tail_lines: r.tail_lines,
            since: r.since_time.or(since_seconds),
            timestamps: r.timestamps,
            limit_bytes: r.limit_bytes,
        }
    }
}

/// One parsed CRI entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub time: Timestamp,
    pub stream: Stream,
    /// A `P` piece, continued by the stream's next entry.
    pub partial: bool,
    pub text: &'a [u8],
}

/// Parses one CRI log line (without its newline); `None` when it is not one.
pub fn parse_entry(line: &[u8]) -> Option<Entry<'_>> {
    let mut fields = line.splitn(4, |&b| b == b' ');
    let time = std::str::from_utf8(fields.next()?).ok()?.parse().ok()?;
    let stream = match fields.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    // The tag field: `P` or `F`, possibly followed by more `:`-separated tags.
    let tags = fields.next().unwrap_or_default();
    let partial = match tags.split(|&b| b == b':').next() {
        Some(b"P") => true,
        Some(b"F") => false,
        _ => return None,
    };
    Some(Entry {
        time,
        stream,
        partial,
        text: fields.next().unwrap_or_default(),
    })
}

/// A whole log line (its text without the newline), stamped with its first piece's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub time: Timestamp,
    pub text: Vec<u8>,
    /// False for the unfinished rest of a line at the end of a log.
    pub complete: bool,
}

/// Joins `P` pieces of each stream into lines.
#[derive(Debug, Default)]
pub struct Joiner {
    pending: [Option<(Timestamp, Vec<u8>)>; 2],
}

impl Joiner {
    pub fn push(&mut self, e: &Entry<'_>) -> Option<Line> {
        let slot = &mut self.pending[e.stream as usize];
        let (time, mut text) = slot.take().unwrap_or_else(|| (e.time, Vec::new()));
        text.extend_from_slice(e.text);
        if e.partial {
            *slot = Some((time, text));
            None
        } else {
            Some(Line {
                time,
                text,
                complete: true,
            })
        }
    }

    /// The unfinished lines (at the very end of a log), oldest first.
    pub fn finish(&mut self) -> Vec<Line> {
        let mut rest: Vec<Line> = self
            .pending
            .iter_mut()
            .filter_map(Option::take)
            .map(|(time, text)| Line {
                time,
                text,
                complete: false,
            })
            .collect();
        rest.sort_by_key(|l| l.time);
        rest
    }
}

/// Formats a timestamp as kubectl's `--timestamps` prints it (RFC 3339 with up to nine
/// fractional digits, trailing zeros dropped).
pub fn format_time(t: Timestamp) -> String {
    let full = t.strftime("%Y-%m-%dT%H:%M:%S.%N").to_string();
    let trimmed = full.trim_end_matches('0').trim_end_matches('.');
    format!("{trimmed}Z")
}

/// Where output lines go: the since filter, timestamps, the byte limit and chunking.
struct Sink {
    options: ReadOptions,
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
    sent: u64,
    /// The byte limit was reached or the receiver is gone: nothing more is wanted.
    done: bool,
}

impl Sink {
    fn wants(&self, line: &Line) -> bool {
        self.options.since.is_none_or(|s| line.time >= s)
    }

    fn write(&mut self, line: &Line) {
        if self.done || !self.wants(line) {
            return;
        }
        let start = self.buf.len();
        if self.options.timestamps {
            self.buf
                .extend_from_slice(format_time(line.time).as_bytes());
            self.buf.push(b' ');
        }
        self.buf.extend_from_slice(&line.text);
        if line.complete {
            self.buf.push(b'\n');
        }
        if let Some(limit) = self.options.limit_bytes {
            let added = (self.buf.len() - start) as u64;
            if self.sent + added >= limit {
                let keep = (limit - self.sent) as usize;
                self.buf.truncate(start + keep);
                self.sent = limit;
                self.flush();
                self.done = true;
                return;
            }
            self.sent += added;
        }
        if self.buf.len() >= CHUNK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.buf.is_empty() || self.tx.is_closed() {
            self.buf.clear();
            return;
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        if self.tx.blocking_send(Ok(chunk)).is_err() {
            self.done = true;
        }
    }

    fn finished(&self) -> bool {
        self.done || self.tx.is_closed()
    }
}

/// The open current file while following.
struct Current {
    file: File,
    inode: (u64, u64),
}

struct Reader {
    path: PathBuf,
    joiner: Joiner,
    /// Bytes after the last newline read, kept until the line is complete.
    carry: Vec<u8>,
    sink: Sink,
}

impl Reader {
    fn new(
        path: PathBuf,
        options: ReadOptions,
        tx: mpsc::Sender<Result<Bytes, io::Error>>,
    ) -> Self {
        Reader {
            path,
            joiner: Joiner::default(),
            carry: Vec::new(),
            sink: Sink {
                options,
                tx,
                buf: Vec::new(),
                sent: 0,
                done: false,
            },
        }
    }

    fn run(&mut self, running: &dyn Fn() -> bool, poll: Duration) -> Result<(), io::Error> {
        if self.sink.options.limit_bytes == Some(0) {
            return Ok(());
        }
        // What is there now: rotated files oldest first, then the current one, the lines
        // kept back for the tail.
        let mut tail = self
            .sink
            .options
            .tail_lines
            .map(|n| (n, VecDeque::<Line>::new()));
        let mut emit = |sink: &mut Sink, line: Line| match &mut tail {
            Some((n, kept)) => {
                if sink.wants(&line) && *n > 0 {
                    if kept.len() as u64 == *n {
                        kept.pop_front();
                    }
                    kept.push_back(line);
                }
            }
            None => sink.write(&line),
        };
        for old in rotated_files(&self.path)? {
            match File::open(&old) {
                Ok(mut f) => self.read_to_end(&mut f, &mut emit)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(with_path(e, &old)),
            }
            if self.sink.finished() {
                return Ok(());
            }
        }
        let mut current = self.open_current()?;
        if let Some(c) = current.as_mut() {
            self.read_to_end(&mut c.file, &mut emit)?;
        }
        if let Some((_, kept)) = tail {
            for line in kept {
                self.sink.write(&line);
            }
        }
        if !self.sink.options.follow {
            self.end();
            return Ok(());
        }
        loop {
            self.sink.flush();
            if self.sink.finished() {
                return Ok(());
            }
            // Looked at before reading: whatever a run wrote before it ended is read below.
            let ended = !running();
            let mut write = |sink: &mut Sink, line: Line| sink.write(&line);
            if let Some(c) = current.as_mut() {
                self.read_to_end(&mut c.file, &mut write)?;
            }
            let now = match std::fs::metadata(&self.path) {
                Ok(m) => Some((m.dev(), m.ino())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(with_path(e, &self.path)),
            };
            // With a single log file the shim truncates it instead of renaming it: start
            // again from its beginning.
            if let Some(c) = current.as_mut() {
                let pos = c
                    .file
                    .stream_position()
                    .map_err(|e| with_path(e, &self.path))?;
                let len = c
                    .file
                    .metadata()
                    .map_err(|e| with_path(e, &self.path))?
                    .len();
                if len < pos {
                    c.file
                        .seek(io::SeekFrom::Start(0))
                        .map_err(|e| with_path(e, &self.path))?;
                    self.carry.clear();
                    continue;
                }
            }
            let rotated = match (&current, now) {
                (Some(c), Some(now)) => c.inode != now,
                (None, Some(_)) => true,
                _ => false,
            };
            if rotated {
                // The old file is complete (the shim writes only to the new one now).
                if let Some(c) = current.as_mut() {
                    self.read_to_end(&mut c.file, &mut write)?;
                }
                current = self.open_current()?;
                continue;
            }
            if ended {
                self.end();
                return Ok(());
            }
            self.sink.flush();
            std::thread::sleep(poll);
        }
    }

    /// The end of the log: unfinished lines go out as they are.
    fn end(&mut self) {
        if !self.carry.is_empty() {
            let rest = std::mem::take(&mut self.carry);
            self.entry_line(&rest, &mut |sink: &mut Sink, line: Line| sink.write(&line));
        }
        for line in self.joiner.finish() {
            self.sink.write(&line);
        }
        self.sink.flush();
    }

    fn open_current(&self) -> Result<Option<Current>, io::Error> {
        match File::open(&self.path) {
            Ok(file) => {
                let m = file.metadata().map_err(|e| with_path(e, &self.path))?;
                Ok(Some(Current {
                    file,
                    inode: (m.dev(), m.ino()),
                }))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(with_path(e, &self.path)),
        }
    }

    fn read_to_end(
        &mut self,
        file: &mut File,
        emit: &mut dyn FnMut(&mut Sink, Line),
    ) -> Result<(), io::Error> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if self.sink.finished() {
                return Ok(());
            }
            let n = match file.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(with_path(e, &self.path)),
            };
            let mut data = &buf[..n];
            while let Some(nl) = data.iter().position(|&b| b == b'\n') {
                let (line, rest) = data.split_at(nl);
                if self.carry.is_empty() {
                    self.entry_line(line, emit);
                } else {
                    let mut whole = std::mem::take(&mut self.carry);
                    whole.extend_from_slice(line);
                    self.entry_line(&whole, emit);
                }
                data = &rest[1..];
            }
            self.carry.extend_from_slice(data);
        }
    }

    fn entry_line(&mut self, raw: &[u8], emit: &mut dyn FnMut(&mut Sink, Line)) {
        // Lines that are not CRI entries (a damaged file) are skipped, as the kubelet does.
        if let Some(e) = parse_entry(raw)
            && let Some(line) = self.joiner.push(&e)
        {
            emit(&mut self.sink, line);
        }
    }
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("reading the log {}: {e}", path.display()))
}

/// The rotated files of a log (`<file>.N`), oldest (highest N) first.
pub fn rotated_files(path: &Path) -> Result<Vec<PathBuf>, io::Error> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(Vec::new());
    };
    let name = name.to_string_lossy();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(with_path(e, dir)),
    };
    let mut numbered: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let file = e.file_name();
            let n = file
                .to_str()?
                .strip_prefix(name.as_ref())?
                .strip_prefix('.')?
                .parse::<u64>()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    numbered.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
    Ok(numbered.into_iter().map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::crilog::{LineSplitter, RotatingLog};
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn tempdir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("berth-test-logs-")
            .tempdir()
            .expect("tempdir")
    }

    /// Reads a whole (non-follow) log through the reader.
    fn read(path: &Path, options: ReadOptions) -> String {
        let mut rx = spawn_reader(
            path.to_path_buf(),
            options,
            || false,
            Duration::from_millis(10),
        )
        .expect("reader");
        let mut out = Vec::new();
        while let Some(chunk) = rx.blocking_recv() {
            out.extend_from_slice(&chunk.expect("chunk"));
        }
        String::from_utf8(out).expect("utf8")
    }

    fn write_log(path: &Path, entries: &[(&str, &str, &str, &str)]) {
        let mut f = std::fs::File::create(path).expect("create");
        for (t, stream, tag, text) in entries {
            writeln!(f, "{t} {stream} {tag} {text}").expect("write");
        }
    }

    const T1: &str = "2026-11-23T10:00:01.000000000Z";
    const T2: &str = "2026-11-23T10:00:02.500000000Z";
    const T3: &str = "2026-11-23T10:00:03.123456789Z";

    #[test]
    fn parses_cri_entries() {
        let raw = format!("{T1} stdout F hello world");
        let e = parse_entry(raw.as_bytes()).expect("entry");
        assert_eq!(e.time, ts(T1));
        assert_eq!(e.stream, Stream::Stdout);
        assert!(!e.partial);
        assert_eq!(e.text, b"hello world");
        let raw = format!("{T2} stderr P:x piece ");
        let e = parse_entry(raw.as_bytes()).expect("entry");
        assert!(e.partial);
        assert_eq!(e.stream, Stream::Stderr);
        assert_eq!(e.text, b"piece ");
        let raw = format!("{T1} stdout F");
        let e = parse_entry(raw.as_bytes()).expect("empty line");
        assert_eq!(e.text, b"");
        for bad in [
            "",
            "nonsense",
            "2026-11-23 stdout F x",
            &format!("{T1} stdin F x"),
            &format!("{T1} stdout Q x"),
        ] {
            assert!(parse_entry(bad.as_bytes()).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn joins_partial_pieces_per_stream() {
        let mut j = Joiner::default();
        let entries = [
            format!("{T1} stdout P ab"),
            format!("{T2} stderr F err"),
            format!("{T2} stdout P cd"),
            format!("{T3} stdout F ef"),
            format!("{T3} stderr P unfinished"),
        ];
        let mut lines = Vec::new();
        for e in &entries {
            if let Some(l) = j.push(&parse_entry(e.as_bytes()).expect("entry")) {
                lines.push(l);
            }
        }
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].text, b"err");
        assert_eq!(lines[1].text, b"abcdef");
        assert_eq!(lines[1].time, ts(T1), "a line has its first piece's time");
        let rest = j.finish();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].text, b"unfinished");
        assert!(!rest[0].complete);
    }

    #[test]
    fn timestamps_as_kubectl_prints_them() {
        assert_eq!(format_time(ts(T1)), "2026-11-23T10:00:01Z");
        assert_eq!(format_time(ts(T2)), "2026-11-23T10:00:02.5Z");
        assert_eq!(format_time(ts(T3)), "2026-11-23T10:00:03.123456789Z");
    }

    #[test]
    fn options_tail_since_timestamps_limit() {
        let dir = tempdir();
        let path = dir.path().join("0.log");
        write_log(
            &path,
            &[
                (T1, "stdout", "F", "one"),
                (T2, "stderr", "F", "two"),
                (T2, "stdout", "P", "thr"),
                (T3, "stdout", "F", "ee"),
                ("garbage", "", "", ""),
                (T3, "stdout", "F", ""),
            ],
        );
        assert_eq!(read(&path, ReadOptions::default()), "one\ntwo\nthree\n\n");
        let tail = |n| ReadOptions {
            tail_lines: Some(n),
            ..Default::default()
        };
        assert_eq!(read(&path, tail(2)), "three\n\n");
        assert_eq!(read(&path, tail(0)), "");
        assert_eq!(read(&path, tail(10)), "one\ntwo\nthree\n\n");
        let since = ReadOptions {
            since: Some(ts(T2)),
            ..Default::default()
        };
        assert_eq!(read(&path, since), "two\nthree\n\n");
        let stamped = ReadOptions {
            timestamps: true,
            tail_lines: Some(2),
            ..Default::default()
        };
        assert_eq!(
            read(&path, stamped),
            "2026-11-23T10:00:02.5Z three\n2026-11-23T10:00:03.123456789Z \n"
        );
        let limit = |n| ReadOptions {
            limit_bytes: Some(n),
            ..Default::default()
        };
        assert_eq!(read(&path, limit(6)), "one\ntw");
        assert_eq!(read(&path, limit(4)), "one\n");
        assert_eq!(read(&path, limit(0)), "");
        assert_eq!(read(&path, limit(1000)), "one\ntwo\nthree\n\n");
        // sinceSeconds counts back from now.
        let r = LogRequest {
            since_seconds: Some(10),
            ..Default::default()
        };
        let now = ts("2026-11-23T10:00:12Z");
        assert_eq!(
            ReadOptions::from_request(&r, now).since,
            Some(ts("2026-11-23T10:00:02Z"))
        );
        assert_eq!(
            read(&path, ReadOptions::from_request(&r, now)),
            "two\nthree\n\n"
        );
    }

    #[test]
    fn a_missing_log_is_empty() {
        let dir = tempdir();
        assert_eq!(read(&dir.path().join("0.log"), ReadOptions::default()), "");
    }

    #[test]
    fn rotated_files_are_read_oldest_first() {
        let dir = tempdir();
        let path = dir.path().join("0.log");
        let mut log = RotatingLog::open(&path, 120, 4).expect("open");
        let mut split = LineSplitter::new(Stream::Stdout);
        let mut expected = String::new();
        for i in 0..12 {
            let mut out = Vec::new();
            split.feed(format!("line {i:02}\n").as_bytes(), T1, &mut out);
            log.write_entries(&out).expect("write");
            expected.push_str(&format!("line {i:02}\n"));
        }
        // Also a file of another run and a stray name that are not part of this log.
        std::fs::write(dir.path().join("1.log"), format!("{T1} stdout F other\n")).expect("w");
        std::fs::write(dir.path().join("0.log.tmp"), "x").expect("w");
        let rotated = rotated_files(&path).expect("list");
        assert_eq!(rotated.len(), 3);
        assert!(rotated[0].ends_with("0.log.3"));
        assert!(rotated[2].ends_with("0.log.1"));
        // Only the last 4 files survive, 2 entries of 48 bytes each fit in 120.
        let all = read(&path, ReadOptions::default());
        assert!(expected.ends_with(&all), "{all:?}");
        assert_eq!(all.lines().count(), 8);
        let tail = ReadOptions {
            tail_lines: Some(5),
            ..Default::default()
        };
        assert_eq!(
            read(&path, tail),
            "line 07\nline 08\nline 09\nline 10\nline 11\n"
        );
    }

    /// Follow: lines appended (also through rotations) arrive; the stream ends once the
    /// run has ended and the rest is read.
    #[test]
    fn follow_survives_rotation_and_ends_with_the_run() {
        let dir = tempdir();
        let path = dir.path().join("0.log");
        let mut log = RotatingLog::open(&path, 200, 3).expect("open");
        let mut split = LineSplitter::new(Stream::Stdout);
        let mut write = |log: &mut RotatingLog, text: &str| {
            let mut out = Vec::new();
            split.feed(
                text.as_bytes(),
                &crate::runtime::crilog::timestamp(Timestamp::now()),
                &mut out,
            );
            log.write_entries(&out).expect("write");
        };
        write(&mut log, "old 1\nold 2\n");
        let running = Arc::new(AtomicBool::new(true));
        let r = running.clone();
        let options = ReadOptions {
            follow: true,
            tail_lines: Some(1),
            ..Default::default()
        };
        let mut rx = spawn_reader(
            path.clone(),
            options,
            move || r.load(Ordering::SeqCst),
            Duration::from_millis(20),
        )
        .expect("reader");
        let mut got = String::new();
        recv_until(&mut rx, &mut got, "old 2\n");
        assert_eq!(got, "old 2\n", "the tail of what was there");
        // Enough lines to rotate several times (each entry is ~43 bytes, 200 per file).
        for i in 0..12 {
            write(&mut log, &format!("new {i:02}\n"));
            if i % 4 == 3 {
                recv_until(&mut rx, &mut got, &format!("new {i:02}\n"));
            }
        }
        assert!(rotated_files(&path).expect("list").len() >= 2, "it rotated");
        // The runtime records the end of a run after the shim wrote all of its output.
        write(&mut log, "last, in two");
        write(&mut log, " writes\n");
        running.store(false, Ordering::SeqCst);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            match rx.try_recv() {
                Ok(chunk) => got.push_str(&String::from_utf8_lossy(&chunk.expect("chunk"))),
                Err(mpsc::error::TryRecvError::Empty) => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the stream did not end: {got:?}"
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            }
        }
        let mut expected = String::from("old 2\n");
        for i in 0..12 {
            expected.push_str(&format!("new {i:02}\n"));
        }
        expected.push_str("last, in two writes\n");
        assert_eq!(got, expected);
    }

    /// Follow over a single log file, which the shim truncates instead of rotating.
    #[test]
    fn follow_survives_truncation() {
        let dir = tempdir();
        let path = dir.path().join("0.log");
        let mut log = RotatingLog::open(&path, 100, 1).expect("open");
        let mut split = LineSplitter::new(Stream::Stdout);
        let mut write = |log: &mut RotatingLog, text: &str| {
            let mut out = Vec::new();
            split.feed(text.as_bytes(), T1, &mut out);
            log.write_entries(&out).expect("write");
        };
        let running = Arc::new(AtomicBool::new(true));
        let r = running.clone();
        let options = ReadOptions {
            follow: true,
            ..Default::default()
        };
        let mut rx = spawn_reader(
            path.clone(),
            options,
            move || r.load(Ordering::SeqCst),
            Duration::from_millis(10),
        )
        .expect("reader");
        let mut got = String::new();
        let mut expected = String::new();
        for i in 0..6 {
            let line = format!("line {i:02}\n");
            write(&mut log, &line);
            expected.push_str(&line);
            recv_until(&mut rx, &mut got, &line);
        }
        running.store(false, Ordering::SeqCst);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !rx.is_closed() || !rx.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the stream did not end"
            );
            match rx.try_recv() {
                Ok(chunk) => got.push_str(&String::from_utf8_lossy(&chunk.expect("chunk"))),
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    std::thread::sleep(Duration::from_millis(10))
                }
            }
        }
        assert_eq!(got, expected);
    }

    fn recv_until(rx: &mut LogStream, got: &mut String, want: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !got.contains(want) {
            assert!(
                std::time::Instant::now() < deadline,
                "waiting for {want:?}, got {got:?}"
            );
            match rx.try_recv() {
                Ok(chunk) => got.push_str(&String::from_utf8_lossy(&chunk.expect("chunk"))),
                Err(mpsc::error::TryRecvError::Empty) => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(mpsc::error::TryRecvError::Disconnected) => panic!("ended early: {got:?}"),
            }
        }
    }

    /// A follower whose receiver is dropped stops.
    #[test]
    fn follow_stops_when_the_receiver_is_gone() {
        let dir = tempdir();
        let path = dir.path().join("0.log");
        write_log(&path, &[(T1, "stdout", "F", "x")]);
        let stopped = Arc::new(AtomicBool::new(false));
        let s = stopped.clone();
        let options = ReadOptions {
            follow: true,
            ..Default::default()
        };
        let rx = spawn_reader(
            path,
            options,
            move || {
                s.store(true, Ordering::SeqCst);
                true
            },
            Duration::from_millis(10),
        )
        .expect("reader");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !stopped.load(Ordering::SeqCst) {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(rx);
        // The reader thread owns the closure (and its clone of `stopped`): it is dropped
        // when the thread returns.
        while Arc::strong_count(&stopped) > 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the reader did not stop"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
