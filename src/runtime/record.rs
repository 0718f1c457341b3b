//! The on-disk contract between the daemon and a shim: where a container's files live and
//! the record the shim keeps of it.
//!
//! ```text
//! <state-root>/<id>/
//!   bundle/config.json   the OCI spec the daemon wrote
//!   shim.json            the record: written by the shim only, each time whole and durably
//!                        (temp file, fsync, rename, fsync of the directory)
//!   shim.log             the shim's own diagnostics (libcontainer errors)
//!   lc/<id>/state.json   libcontainer's state, deleted by the shim after the exit
//! ```
//!
//! The record moves through three shapes: `{shimPid}` while creating, `+{pid, startedAt}`
//! once running, `+{exitCode, signal, oomKilled, finishedAt[, error]}` when finished. A
//! finished record is final; the daemon reads it after its own restarts.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Why a container never ran, in Kubernetes' words (the Waiting reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureReason {
    /// The container could not be created (bad binary path, mount failure, …).
    CreateContainerError,
    /// It was created but could not be started.
    RunContainerError,
}

/// What the shim records about one container run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShimRecord {
    pub shim_pid: i32,
    /// `/proc/<pid>/stat` start time of the shim, so a reused pid is not mistaken for it.
    pub shim_start_time: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<FailureReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The files of one container below the state root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPaths {
    pub dir: PathBuf,
    pub bundle: PathBuf,
    pub record: PathBuf,
    pub shim_log: PathBuf,
    /// libcontainer's root (its state lives in `<this>/<id>`).
    pub libcontainer_root: PathBuf,
    pub libcontainer_state: PathBuf,
}

impl ContainerPaths {
    pub fn new(state_root: &Path, id: &str) -> ContainerPaths {
        let dir = state_root.join(id);
        let libcontainer_root = dir.join("lc");
        ContainerPaths {
            bundle: dir.join("bundle"),
            record: dir.join("shim.json"),
            shim_log: dir.join("shim.log"),
            libcontainer_state: libcontainer_root.join(id),
            libcontainer_root,
            dir,
        }
    }
}

/// Reads a record; `Ok(None)` when there is none yet.
pub fn read(path: &Path) -> io::Result<Option<ShimRecord>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces the record atomically; with `durable`, it survives a power cut once this returns.
pub fn write(path: &Path, record: &ShimRecord, durable: bool) -> io::Result<()> {
    let bytes = serde_json::to_vec(record).map_err(io::Error::other)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        if durable {
            f.sync_all()?;
        }
    }
    fs::rename(&tmp, path)?;
    if durable && let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The start time (field 22 of `/proc/<pid>/stat`) of a live, non-zombie process.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // After the state (field 3), the start time is field 22: 19 fields further.
    fields.nth(18)?.parse().ok()
}

/// Whether the shim that wrote `record` is still alive.
pub fn shim_alive(record: &ShimRecord) -> bool {
    record.shim_pid > 0 && process_start_time(record.shim_pid) == Some(record.shim_start_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_shape() {
        let dir = tempfile::Builder::new()
            .prefix("berth-test-record-")
            .tempdir()
            .expect("tempdir");
        let path = dir.path().join("shim.json");
        assert_eq!(read(&path).expect("read"), None);
        let rec = ShimRecord {
            shim_pid: 42,
            shim_start_time: 7,
            pid: Some(43),
            started_at: Some("2026-11-23T10:00:00Z".parse().expect("ts")),
            exit_code: Some(3),
            ..ShimRecord::default()
        };
        write(&path, &rec, true).expect("write");
        assert_eq!(read(&path).expect("read"), Some(rec));
        let text = fs::read_to_string(&path).expect("text");
        assert!(text.contains("\"shimPid\":42"));
        assert!(text.contains("\"exitCode\":3"));
        assert!(!text.contains("finishedAt"));
    }

    #[test]
    fn own_start_time_is_readable() {
        let me = std::process::id() as i32;
        assert!(process_start_time(me).is_some());
        assert!(process_start_time(-1).is_none());
    }
}
