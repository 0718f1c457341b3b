//! Accessors for the metadata of objects held as JSON.

use serde_json::{Map, Value};

/// `metadata.name`, or "" when absent.
pub fn name(obj: &Value) -> &str {
    str_at(obj, "/metadata/name")
}

/// `metadata.namespace`, or "" when absent.
pub fn namespace(obj: &Value) -> &str {
    str_at(obj, "/metadata/namespace")
}

/// `metadata.uid`, or "" when absent.
pub fn uid(obj: &Value) -> &str {
    str_at(obj, "/metadata/uid")
}

/// `metadata.resourceVersion`, or "" when absent.
pub fn resource_version(obj: &Value) -> &str {
    str_at(obj, "/metadata/resourceVersion")
}

/// The string at a JSON pointer, or "".
pub fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `metadata.labels` as a map (empty when absent).
pub fn labels(obj: &Value) -> std::collections::BTreeMap<String, String> {
    string_map(obj.pointer("/metadata/labels"))
}

/// `metadata.annotations` as a map (empty when absent).
pub fn annotations(obj: &Value) -> std::collections::BTreeMap<String, String> {
    string_map(obj.pointer("/metadata/annotations"))
}

fn string_map(v: Option<&Value>) -> std::collections::BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata.finalizers` (empty when absent).
pub fn finalizers(obj: &Value) -> Vec<String> {
    strings_at(obj, "/metadata/finalizers")
}

/// The strings of the array at `pointer` (empty when absent; other items skipped).
pub fn strings_at(obj: &Value, pointer: &str) -> Vec<String> {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The metadata object, created when absent (and when `obj` is not an object, replaced).
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let map = obj.as_object_mut().expect("just made an object"); // ok: ensured above
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("just made an object") // ok: ensured above
}

/// Sets a metadata field (`None` removes it).
pub fn set(obj: &mut Value, field: &str, value: Option<Value>) {
    let meta = metadata_mut(obj);
    match value {
        Some(v) => {
            meta.insert(field.to_string(), v);
        }
        None => {
            meta.remove(field);
        }
    }
}

/// The current time as Kubernetes writes `metav1.Time` (RFC 3339, seconds).
pub fn now_rfc3339() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    format_time(now)
}

/// Formats a timestamp as `2006-01-02T15:04:05Z`.
pub fn format_time(t: k8s_openapi::jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses a `metav1.Time`.
pub fn parse_time(s: &str) -> Option<k8s_openapi::jiff::Timestamp> {
    s.parse().ok()
}
