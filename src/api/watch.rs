//! Watch events as Kubernetes streams them: `{"type":"ADDED","object":{…}}` per line.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `type` of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    Added,
    Modified,
    Deleted,
    Bookmark,
    Error,
}

/// One line of a watch stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchEvent {
    #[serde(rename = "type")]
    pub kind: EventType,
    pub object: Value,
}
