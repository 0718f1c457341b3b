//! Container logs in the CRI format, as the shim writes them and `berth logs` will read them:
//! one entry per line, `<RFC3339Nano UTC> <stdout|stderr> <F|P> <text>\n`. `F` ends a line;
//! `P` marks a piece of a line longer than [`MAX_LINE`] (or still unterminated when the
//! stream is cut), continued by the next entries of the same stream.
//!
//! Rotation: when the current file would grow past the size limit it becomes `<file>.1`,
//! older ones shift up (`.1` → `.2` …) and the oldest beyond the file count is deleted, so
//! at most `max_files` files exist (the current one included). Nothing is fsynced: logs
//! are not worth a disk flush per line; the exit record is.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A line longer than this is split into `P` entries (containerd's default).
pub const MAX_LINE: usize = 16 * 1024;

/// Default rotation size of one log file.
pub const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024;

/// Default number of files kept, the current one included.
pub const DEFAULT_MAX_FILES: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Formats a timestamp the way CRI logs carry it: always nine fractional digits, UTC.
pub fn timestamp(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S.%NZ").to_string()
}

/// Splits one stream's bytes into CRI entries, keeping an unterminated tail until more
/// data (or the end of the stream) arrives.
#[derive(Debug)]
pub struct LineSplitter {
    stream: Stream,
    partial: Vec<u8>,
}

impl LineSplitter {
    pub fn new(stream: Stream) -> LineSplitter {
        LineSplitter {
            stream,
            partial: Vec::new(),
        }
    }

    /// Appends the entries `data` completes to `out`, all stamped `ts`.
    pub fn feed(&mut self, data: &[u8], ts: &str, out: &mut Vec<u8>) {
        let mut rest = data;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let (line, tail) = rest.split_at(nl);
            if self.partial.is_empty() {
                self.emit_chunks(line, ts, out);
            } else {
                self.partial.extend_from_slice(line);
                let whole = std::mem::take(&mut self.partial);
                self.emit_chunks(&whole, ts, out);
            }
            rest = &tail[1..];
        }
        self.partial.extend_from_slice(rest);
        while self.partial.len() >= MAX_LINE {
            let piece: Vec<u8> = self.partial.drain(..MAX_LINE).collect();
            entry(out, ts, self.stream, b'P', &piece);
        }
    }

    /// A complete line: `P` pieces of [`MAX_LINE`] bytes, then the `F` remainder.
    fn emit_chunks(&self, line: &[u8], ts: &str, out: &mut Vec<u8>) {
        let mut line = line;
        while line.len() > MAX_LINE {
            entry(out, ts, self.stream, b'P', &line[..MAX_LINE]);
            line = &line[MAX_LINE..];
        }
        entry(out, ts, self.stream, b'F', line);
    }

    /// The stream ended: an unterminated last line becomes a full entry (as containerd
    /// does; the reader adds the newline).
    pub fn finish(&mut self, ts: &str, out: &mut Vec<u8>) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            entry(out, ts, self.stream, b'F', &line);
        }
    }
}

fn entry(out: &mut Vec<u8>, ts: &str, stream: Stream, tag: u8, text: &[u8]) {
    out.extend_from_slice(ts.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.push(b' ');
    out.push(tag);
    out.push(b' ');
    out.extend_from_slice(text);
    out.push(b'\n');
}

/// An append-only CRI log file with size-based rotation.
#[derive(Debug)]
pub struct RotatingLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: u32,
}

impl RotatingLog {
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> io::Result<RotatingLog> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingLog {
            path: path.to_path_buf(),
            file,
            size,
            max_size: max_size.max(1),
            max_files: max_files.max(1),
        })
    }

    /// Writes a batch of whole entries, rotating first if they would not fit.
    pub fn write_entries(&mut self, entries: &[u8]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        if self.size > 0 && self.size + entries.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file.write_all(entries)?;
        self.size += entries.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let numbered = |n: u32| {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        if self.max_files > 1 {
            let oldest = numbered(self.max_files - 1);
            match fs::remove_file(&oldest) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            for n in (1..self.max_files - 1).rev() {
                match fs::rename(numbered(n), numbered(n + 1)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            fs::rename(&self.path, numbered(1))?;
            self.file = open_append(&self.path)?;
        } else {
            self.file.set_len(0)?;
        }
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "2026-11-23T10:00:00.123456789Z";

    fn text(out: &[u8]) -> String {
        String::from_utf8_lossy(out).into_owned()
    }

    #[test]
    fn timestamps_have_nine_digits() {
        let ts: jiff::Timestamp = "2026-11-23T10:00:00.1Z".parse().expect("ts");
        assert_eq!(timestamp(ts), "2026-11-23T10:00:00.100000000Z");
    }

    #[test]
    fn lines_partials_and_end() {
        let mut s = LineSplitter::new(Stream::Stdout);
        let mut out = Vec::new();
        s.feed(b"one\ntw", TS, &mut out);
        assert_eq!(text(&out), format!("{TS} stdout F one\n"));
        out.clear();
        s.feed(b"o\n\nthree", TS, &mut out);
        assert_eq!(text(&out), format!("{TS} stdout F two\n{TS} stdout F \n"));
        out.clear();
        s.finish(TS, &mut out);
        assert_eq!(text(&out), format!("{TS} stdout F three\n"));
    }

    #[test]
    fn long_lines_are_split() {
        let mut s = LineSplitter::new(Stream::Stderr);
        let mut out = Vec::new();
        let long = vec![b'x'; MAX_LINE + 10];
        s.feed(&long, TS, &mut out);
        s.feed(b"\n", TS, &mut out);
        let t = text(&out);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with(&format!("{TS} stderr P xxx")));
        assert_eq!(lines[1], format!("{TS} stderr F {}", "x".repeat(10)));
    }

    #[test]
    fn rotation_keeps_max_files() {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-crilog-")
            .tempdir()
            .expect("tempdir");
        let path = dir.path().join("0.log");
        let mut log = RotatingLog::open(&path, 100, 3).expect("open");
        for i in 0..10 {
            log.write_entries(format!("{i:059}\n").as_bytes())
                .expect("write");
        }
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec!["0.log", "0.log.1", "0.log.2"]);
        assert_eq!(
            fs::read_to_string(&path).expect("current"),
            format!("{:059}\n", 9)
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("0.log.2")).expect("oldest"),
            format!("{:059}\n", 7)
        );
    }
}
