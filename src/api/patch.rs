//! Patch engines (STUB: being written).

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or_default().trim() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" => Some(PatchType::Apply),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{message}")]
pub struct PatchError {
    pub message: String,
}

pub fn apply_patch(
    _kind: PatchType,
    original: &Value,
    _patch: &Value,
) -> Result<Value, PatchError> {
    Ok(original.clone())
}
