//! Table rendering (STUB: being written).

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::registry::ResourceType;

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: &'static str,
    pub kind: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

pub fn columns(_rt: &ResourceType) -> Vec<Column> {
    vec![Column {
        name: "Name",
        kind: "string",
        format: "name",
        description: "",
        priority: 0,
    }]
}

pub fn row(_rt: &ResourceType, obj: &Value, _now: Timestamp) -> Vec<Value> {
    vec![obj["metadata"]["name"].clone()]
}
