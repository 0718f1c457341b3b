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

pub fn table_object(
    _rt: &ResourceType,
    objs: &[Value],
    _now: Timestamp,
    _include_object: bool,
) -> Value {
    serde_json::json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "rows": objs})
}

pub fn render_text(
    _columns: &[Column],
    rows: &[Vec<Value>],
    _wide: bool,
    _with_namespace: bool,
    _namespaces: &[String],
) -> String {
    rows.iter().map(|r| format!("{r:?}\n")).collect()
}
