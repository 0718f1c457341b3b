//! Snapshots of every view and dialog.
