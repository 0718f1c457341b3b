//! Patch engines for the patch types kubectl sends: RFC 6902 JSON patch, RFC 7386 merge
//! patch, and the subset of Kubernetes' strategic merge patch that kubectl produces
//! (`apply`, `set image`, `patch`, `cordon`, …), which also stands in for server-side apply.
//!
//! Invariants: a patch works on a copy, so a failed patch changes nothing; no input makes
//! this panic; and every `$` directive of a strategic merge patch is consumed while merging,
//! so none can reach the store.
//!
//! Kubernetes decides how a list merges from struct tags on its Go types
//! (`patchStrategy`, `patchMergeKey`). berth holds objects as JSON, so the merge keys of the
//! built-in kinds are tabled in [`list_strategy`] by field name, and by the field holding
//! it where one name means different things (`ports` of a container or of a Service).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;

use json_patch::PatchOperation;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::MAX_REQUEST_BODY_BYTES;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`: RFC 6902 operations.
    Json,
    /// `application/merge-patch+json`: RFC 7386.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml`: server-side apply. berth has no field ownership yet,
    /// so the applied configuration is merged strategically over the live object: fields
    /// it sets win, fields dropped from it are not removed.
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

    /// The media type of this patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

impl fmt::Display for PatchType {
    /// How messages name the patch type: `json patch`, `strategic merge patch`, …
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PatchType::Json => "json patch",
            PatchType::Merge => "merge patch",
            PatchType::Strategic => "strategic merge patch",
            PatchType::Apply => "apply patch",
        })
    }
}

/// A patch that is malformed or cannot be applied to the object. The message names the
/// patch type and where it failed; the server answers it as a client error.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{message}")]
pub struct PatchError {
    pub message: String,
}

impl PatchError {
    fn new(message: impl Into<String>) -> Self {
        PatchError {
            message: message.into(),
        }
    }
}

/// Applies `patch` of type `kind` to a copy of `original` and returns the result.
pub fn apply_patch(kind: PatchType, original: &Value, patch: &Value) -> Result<Value, PatchError> {
    match kind {
        PatchType::Json => apply_json_patch(original, patch),
        PatchType::Merge => {
            require_object(kind, patch)?;
            let mut doc = original.clone();
            json_patch::merge(&mut doc, patch);
            Ok(doc)
        }
        PatchType::Strategic | PatchType::Apply => {
            let patch = require_object(kind, patch)?;
            strategic_merge(kind, original, patch)
        }
    }
}

fn require_object(kind: PatchType, patch: &Value) -> Result<&Map<String, Value>, PatchError> {
    patch.as_object().ok_or_else(|| {
        PatchError::new(format!(
            "{kind} must be a JSON object, not {}",
            json_type(patch)
        ))
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------------------------------
// RFC 6902
// ---------------------------------------------------------------------------------------

/// Kubernetes' limit on the operations of one JSON patch.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// How many bytes `copy` operations may duplicate in one patch, as Kubernetes'
/// `AccumulatedCopySizeLimit`: without it a few dozen copies of the document onto itself
/// exhaust memory.
pub const MAX_JSON_PATCH_COPIED_BYTES: usize = 3 * MAX_REQUEST_BODY_BYTES;

fn apply_json_patch(original: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !patch.is_array() {
        return Err(PatchError::new(format!(
            "json patch must be a JSON array of operations, not {}",
            json_type(patch)
        )));
    }
    let ops = json_patch::Patch::deserialize(patch)
        .map_err(|e| PatchError::new(format!("invalid json patch: {e}")))?;
    if ops.0.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::new(format!(
            "json patch has {} operations; at most {MAX_JSON_PATCH_OPERATIONS} are allowed",
            ops.0.len()
        )));
    }
    let mut doc = original.clone();
    let mut copied = 0usize;
    for (i, op) in ops.0.iter().enumerate() {
        if let PatchOperation::Copy(copy) = op
            && let Some(from) = doc.pointer(copy.from.as_str())
        {
            copied = copied.saturating_add(json_len(from));
            if copied > MAX_JSON_PATCH_COPIED_BYTES {
                return Err(PatchError::new(format!(
                    "json patch operation {i} (copy {}) failed: the patch copies more than {MAX_JSON_PATCH_COPIED_BYTES} bytes",
                    op.path()
                )));
            }
        }
        // One operation at a time to know which failed. `patch_unsafe` because the copy is
        // discarded on error anyway (and `patch` would panic if its undo ever failed).
        json_patch::patch_unsafe(&mut doc, std::slice::from_ref(op)).map_err(|e| {
            PatchError::new(format!(
                "json patch operation {i} ({} {}) failed: {}",
                op_name(op),
                op.path(),
                e.kind
            ))
        })?;
    }
    Ok(doc)
}

fn op_name(op: &PatchOperation) -> &'static str {
    match op {
        PatchOperation::Add(_) => "add",
        PatchOperation::Remove(_) => "remove",
        PatchOperation::Replace(_) => "replace",
        PatchOperation::Move(_) => "move",
        PatchOperation::Copy(_) => "copy",
        PatchOperation::Test(_) => "test",
    }
}

/// The length of a value as compact JSON, counted without building the string.
fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Serialising a Value cannot fail (its keys are strings); if it did, what was counted
    // so far is still a lower bound.
    let _ = serde_json::to_writer(&mut count, v);
    count.0
}

// ---------------------------------------------------------------------------------------
// Strategic merge patch
// ---------------------------------------------------------------------------------------

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// How a list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListStrategy {
    /// A list of objects merged item by item on this key (`patchStrategy:"merge"`).
    MergeByKey(&'static str),
    /// A list of primitives merged as an ordered union (`finalizers`).
    Union,
    /// Replaced by the patch's list: every list Kubernetes does not tag for merging.
    Replace,
}

/// The merge strategy of list `field` inside an object held by field `holder` (for an item
/// of a list, the list's field). Covers the `patchMergeKey` tags of the kinds berth serves.
fn list_strategy(field: &str, holder: &str) -> ListStrategy {
    use ListStrategy::*;
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "schedulingGates"
        | "resourceClaims"
        | "resourceClaimStatuses" => MergeByKey("name"),
        "volumeMounts" => MergeByKey("mountPath"),
        "volumeDevices" => MergeByKey("devicePath"),
        "ports" => match holder {
            "containers" | "initContainers" | "ephemeralContainers" => MergeByKey("containerPort"),
            // A Service's spec.ports. Other `ports` (NetworkPolicy rules, Endpoints
            // subsets, load-balancer ingress) are atomic.
            "spec" => MergeByKey("port"),
            _ => Replace,
        },
        "hostAliases" | "podIPs" | "hostIPs" => MergeByKey("ip"),
        "conditions" => MergeByKey("type"),
        // Node status addresses; Endpoints subsets' addresses are atomic.
        "addresses" if holder == "status" => MergeByKey("type"),
        "ownerReferences" => MergeByKey("uid"),
        "topologySpreadConstraints" => MergeByKey("topologyKey"),
        // metadata.finalizers merges; a Namespace's spec.finalizers does not.
        "finalizers" if holder == "metadata" => Union,
        _ => Replace,
    }
}

/// Where in the document the merge is, for error messages and for [`list_strategy`]'s
/// holder. A chain on the stack, so tracking it costs nothing until an error prints it.
#[derive(Clone, Copy)]
struct Loc<'a> {
    parent: Option<&'a Loc<'a>>,
    seg: Seg<'a>,
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    Root,
    Field(&'a str),
    Item(usize),
}

impl<'a> Loc<'a> {
    const ROOT: Loc<'static> = Loc {
        parent: None,
        seg: Seg::Root,
    };

    fn field(&'a self, name: &'a str) -> Loc<'a> {
        Loc {
            parent: Some(self),
            seg: Seg::Field(name),
        }
    }

    fn item(&'a self, index: usize) -> Loc<'a> {
        Loc {
            parent: Some(self),
            seg: Seg::Item(index),
        }
    }

    /// The field holding the object at this location.
    fn holder(&self) -> &'a str {
        match self.seg {
            Seg::Field(name) => name,
            Seg::Item(_) => self.parent.map(Loc::holder).unwrap_or_default(),
            Seg::Root => "",
        }
    }
}

impl fmt::Display for Loc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(parent) = self.parent {
            write!(f, "{parent}")?;
        }
        match self.seg {
            Seg::Root => Ok(()),
            Seg::Field(name) => match self.parent {
                Some(Loc { seg: Seg::Root, .. }) | None => f.write_str(name),
                Some(_) => write!(f, ".{name}"),
            },
            Seg::Item(i) => write!(f, "[{i}]"),
        }
    }
}

/// Builds "<patch type>: <message> at <path>" (no "at" for the root).
fn smp_error(kind: PatchType, loc: &Loc<'_>, message: impl fmt::Display) -> PatchError {
    if matches!(loc.seg, Seg::Root) {
        PatchError::new(format!("{kind}: {message}"))
    } else {
        PatchError::new(format!("{kind}: {message} at {loc}"))
    }
}

/// A map key for comparing JSON values by equality (merge keys, primitive list members),
/// so lookups are hashed rather than quadratic in the list length.
fn identity(v: &Value) -> String {
    v.to_string()
}

fn strategic_merge(
    kind: PatchType,
    original: &Value,
    patch: &Map<String, Value>,
) -> Result<Value, PatchError> {
    let merger = Merger { kind };
    let base = original.as_object().cloned();
    match merger.merge_map(base, patch, &Loc::ROOT)? {
        Some(merged) => Ok(Value::Object(merged)),
        None => Err(smp_error(
            kind,
            &Loc::ROOT,
            "\"$patch\": \"delete\" cannot delete the whole object; send a DELETE request instead",
        )),
    }
}

struct Merger {
    /// Strategic or Apply, for messages.
    kind: PatchType,
}

impl Merger {
    fn err(&self, loc: &Loc<'_>, message: impl fmt::Display) -> PatchError {
        smp_error(self.kind, loc, message)
    }

    /// The value of a `$patch` directive.
    fn directive<'v>(&self, v: &'v Value, loc: &Loc<'_>) -> Result<&'v str, PatchError> {
        match v.as_str() {
            Some(d @ ("replace" | "delete" | "merge")) => Ok(d),
            _ => Err(self.err(
                loc,
                format_args!(
                    "unknown patch directive \"$patch\": {v}; expected \"replace\", \"delete\" or \"merge\""
                ),
            )),
        }
    }

    /// Merges a patch object into an object (`None`: absent). Returns `None` when the
    /// patch deletes the object (`$patch: delete`).
    fn merge_map(
        &self,
        original: Option<Map<String, Value>>,
        patch: &Map<String, Value>,
        loc: &Loc<'_>,
    ) -> Result<Option<Map<String, Value>>, PatchError> {
        if let Some(d) = patch.get(PATCH) {
            match self.directive(d, loc)? {
                // Kubernetes leaves `{}` for a deleted map; removing the field is what the
                // directive says and what typed decoding treats the same way.
                "delete" => return Ok(None),
                "replace" => return self.merge_fields(Map::new(), patch, loc).map(Some),
                _ => {}
            }
        }
        self.merge_fields(original.unwrap_or_default(), patch, loc)
            .map(Some)
    }

    /// Merges the fields of a patch object (its `$patch` already handled) into `orig`.
    fn merge_fields(
        &self,
        mut orig: Map<String, Value>,
        patch: &Map<String, Value>,
        loc: &Loc<'_>,
    ) -> Result<Map<String, Value>, PatchError> {
        // Check every directive first, so an unknown one fails before any work is done.
        for key in patch.keys().filter(|k| k.starts_with('$')) {
            let known = key == PATCH
                || key == RETAIN_KEYS
                || key
                    .strip_prefix(SET_ELEMENT_ORDER)
                    .is_some_and(|f| !f.is_empty())
                || key
                    .strip_prefix(DELETE_FROM_PRIMITIVE_LIST)
                    .is_some_and(|f| !f.is_empty());
            if !known {
                return Err(self.err(loc, format_args!("unknown directive {key:?}")));
            }
        }

        // $retainKeys: drop the fields of the original the patch does not list (it comes
        // with a patch that sets one member of a union, such as a Deployment strategy).
        if let Some(retain) = patch.get(RETAIN_KEYS) {
            let keys = retain
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .map(Value::as_str)
                        .collect::<Option<HashSet<&str>>>()
                })
                .ok_or_else(|| {
                    self.err(
                        loc,
                        format_args!(
                            "\"{RETAIN_KEYS}\" must be a list of field names, not {retain}"
                        ),
                    )
                })?;
            orig.retain(|k, _| keys.contains(k.as_str()));
        }

        // $deleteFromPrimitiveList/<field>: remove those values from a primitive list.
        for (key, values) in patch {
            let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) else {
                continue;
            };
            let Some(values) = values.as_array() else {
                return Err(self.err(
                    loc,
                    format_args!("{key:?} must be a list, not {}", json_type(values)),
                ));
            };
            if let Some(Value::Array(list)) = orig.get_mut(field) {
                let doomed: HashSet<String> = values.iter().map(identity).collect();
                list.retain(|v| !doomed.contains(&identity(v)));
            }
        }

        let holder = loc.holder();
        for (key, value) in patch {
            if key.starts_with('$') {
                continue;
            }
            if value.is_null() {
                orig.remove(key);
                continue;
            }
            let child = loc.field(key);
            let existing = orig.get_mut(key).map(Value::take);
            match self.merge_value(existing, value, key, holder, &child)? {
                Some(merged) => {
                    orig.insert(key.clone(), merged);
                }
                None => {
                    orig.remove(key);
                }
            }
        }

        // $setElementOrder/<field>: the order of the merged list. Applied last, to the
        // merged result: named items in the given order, the others after them in their
        // current relative order.
        for (key, order) in patch {
            let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER) else {
                continue;
            };
            let Some(order) = order.as_array() else {
                return Err(self.err(
                    loc,
                    format_args!("{key:?} must be a list, not {}", json_type(order)),
                ));
            };
            let Some(Value::Array(list)) = orig.get_mut(field) else {
                continue;
            };
            match list_strategy(field, holder) {
                ListStrategy::MergeByKey(merge_key) => reorder(list, order, Some(merge_key)),
                ListStrategy::Union => reorder(list, order, None),
                // A replaced list already has the patch's order.
                ListStrategy::Replace => {}
            }
        }
        Ok(orig)
    }

    /// Merges one patch value into the original value of field `field` (`None`: absent).
    /// Returns `None` when the value is deleted.
    fn merge_value(
        &self,
        original: Option<Value>,
        patch: &Value,
        field: &str,
        holder: &str,
        loc: &Loc<'_>,
    ) -> Result<Option<Value>, PatchError> {
        match patch {
            Value::Object(p) => {
                let base = match original {
                    Some(Value::Object(m)) => Some(m),
                    _ => None,
                };
                Ok(self.merge_map(base, p, loc)?.map(Value::Object))
            }
            Value::Array(items) => {
                let base = match original {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                let merged = match list_strategy(field, holder) {
                    ListStrategy::MergeByKey(key) => self.merge_keyed(base, items, key, loc)?,
                    // Cleaned first: a stray object in the patch must not carry
                    // directives into the result.
                    ListStrategy::Union => union(base, self.clean_list(items, loc)?),
                    ListStrategy::Replace => self.clean_list(items, loc)?,
                };
                Ok(Some(Value::Array(merged)))
            }
            scalar => Ok(Some(scalar.clone())),
        }
    }

    /// Merges a list of objects by `key`: `$patch: delete` items remove the original item
    /// with their key, a `$patch: replace` item makes the patch's items the whole list,
    /// other items merge into the original item with their key or are appended.
    fn merge_keyed(
        &self,
        mut base: Vec<Value>,
        patch: &[Value],
        key: &str,
        loc: &Loc<'_>,
    ) -> Result<Vec<Value>, PatchError> {
        let mut items = Vec::with_capacity(patch.len());
        let mut deleted = HashSet::new();
        let mut replace = false;
        for (i, item) in patch.iter().enumerate() {
            let item_loc = loc.item(i);
            let Some(map) = item.as_object() else {
                return Err(self.err(
                    &item_loc,
                    format_args!(
                        "list items must be objects with the merge key {key:?}, not {}",
                        json_type(item)
                    ),
                ));
            };
            let directive = match map.get(PATCH) {
                Some(d) => self.directive(d, &item_loc)?,
                None => "merge",
            };
            if directive == "replace" {
                // A marker item: the list is replaced by the other items.
                replace = true;
                continue;
            }
            let Some(key_value) = map.get(key) else {
                return Err(self.err(
                    &item_loc,
                    format_args!("list item does not contain the merge key {key:?}"),
                ));
            };
            if directive == "delete" {
                deleted.insert(identity(key_value));
            } else {
                items.push((i, map, identity(key_value)));
            }
        }
        if replace {
            base.clear();
        } else if !deleted.is_empty() {
            base.retain(|v| v.get(key).is_none_or(|kv| !deleted.contains(&identity(kv))));
        }

        let mut index: HashMap<String, usize> = HashMap::with_capacity(base.len());
        for (pos, v) in base.iter().enumerate() {
            if let Some(kv) = v.get(key) {
                index.entry(identity(kv)).or_insert(pos);
            }
        }
        for (i, map, id) in items {
            let item_loc = loc.item(i);
            match index.get(&id).and_then(|&pos| base.get_mut(pos)) {
                Some(slot) => {
                    let existing = match slot.take() {
                        Value::Object(m) => Some(m),
                        _ => None,
                    };
                    // `$patch: delete` items were taken out above, so this always yields
                    // an object; keep an empty one rather than shift positions if not.
                    let merged = self
                        .merge_map(existing, map, &item_loc)?
                        .unwrap_or_default();
                    *slot = Value::Object(merged);
                }
                None => {
                    if let Some(merged) = self.merge_map(None, map, &item_loc)? {
                        index.insert(id, base.len());
                        base.push(Value::Object(merged));
                    }
                }
            }
        }
        Ok(base)
    }

    /// A list that replaces the original: its objects are merged into nothing, so their
    /// directives are consumed and their nulls dropped, as for any new value.
    fn clean_list(&self, items: &[Value], loc: &Loc<'_>) -> Result<Vec<Value>, PatchError> {
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item_loc = loc.item(i);
            match item {
                Value::Object(map) => {
                    if let Some(merged) = self.merge_map(None, map, &item_loc)? {
                        out.push(Value::Object(merged));
                    }
                }
                Value::Array(inner) => out.push(Value::Array(self.clean_list(inner, &item_loc)?)),
                other => out.push(other.clone()),
            }
        }
        Ok(out)
    }
}

/// The ordered union of a primitive list and the patch's values, without duplicates.
fn union(mut base: Vec<Value>, patch: Vec<Value>) -> Vec<Value> {
    let mut seen: HashSet<String> = base.iter().map(identity).collect();
    for v in patch {
        if seen.insert(identity(&v)) {
            base.push(v);
        }
    }
    base
}

/// Orders `list` by `order` (items named by their merge key, or primitive values); items
/// not named keep their relative order after the named ones.
fn reorder(list: &mut Vec<Value>, order: &[Value], key: Option<&str>) {
    let id_of = |v: &Value| match key {
        Some(k) => v.get(k).map(identity),
        None => Some(identity(v)),
    };
    let mut rank: HashMap<String, usize> = HashMap::with_capacity(order.len());
    for (i, o) in order.iter().enumerate() {
        if let Some(id) = id_of(o) {
            rank.entry(id).or_insert(i);
        }
    }
    let mut ranked: Vec<(usize, Value)> = list
        .drain(..)
        .map(|v| {
            let r = id_of(&v)
                .and_then(|id| rank.get(&id).copied())
                .unwrap_or(usize::MAX);
            (r, v)
        })
        .collect();
    ranked.sort_by_key(|(r, _)| *r); // stable: unnamed items keep their order
    list.extend(ranked.into_iter().map(|(_, v)| v));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smp(original: Value, patch: Value) -> Value {
        let out = apply_patch(PatchType::Strategic, &original, &patch)
            .unwrap_or_else(|e| panic!("patch {patch} should apply: {e}"));
        assert_no_directives(&out);
        out
    }

    fn smp_err(original: Value, patch: Value) -> String {
        match apply_patch(PatchType::Strategic, &original, &patch) {
            Ok(v) => panic!("patch {patch} should fail, got {v}"),
            Err(e) => e.message,
        }
    }

    fn assert_no_directives(v: &Value) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    assert!(!k.starts_with('$'), "directive {k} left in the result");
                    assert_no_directives(v);
                }
            }
            Value::Array(a) => a.iter().for_each(assert_no_directives),
            _ => {}
        }
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default",
                "labels": {"app": "web"}, "finalizers": ["a", "b"]},
            "spec": {
                "replicas": 2,
                "strategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "web",
                            "image": "nginx:1.25",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]
                        }],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                        "tolerations": [{"key": "k1", "operator": "Exists"}]
                    }
                }
            }
        })
    }

    fn container(doc: &Value, i: usize) -> &Value {
        &doc["spec"]["template"]["spec"]["containers"][i]
    }

    // --- content types ---

    #[test]
    fn content_types() {
        for t in [
            PatchType::Json,
            PatchType::Merge,
            PatchType::Strategic,
            PatchType::Apply,
        ] {
            assert_eq!(PatchType::from_content_type(t.content_type()), Some(t));
        }
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
            Some(PatchType::Merge)
        );
        assert_eq!(PatchType::from_content_type("application/json"), None);
    }

    // --- RFC 6902 ---

    #[test]
    fn json_patch_applies_operations() {
        let patch = json!([
            {"op": "test", "path": "/spec/replicas", "value": 2},
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/metadata/labels/tier", "value": "front"},
            {"op": "remove", "path": "/metadata/finalizers/0"},
            {"op": "copy", "from": "/metadata/labels", "path": "/metadata/annotations"},
            {"op": "move", "from": "/spec/strategy", "path": "/spec/oldStrategy"}
        ]);
        let out = apply_patch(PatchType::Json, &deployment(), &patch).expect("applies");
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(out["metadata"]["labels"]["tier"], "front");
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        assert_eq!(out["metadata"]["annotations"]["app"], "web");
        assert!(out["spec"].get("strategy").is_none());
        assert_eq!(out["spec"]["oldStrategy"]["type"], "RollingUpdate");
    }

    #[test]
    fn json_patch_like_rollout_undo() {
        let patch = json!([
            {"op": "replace", "path": "/spec/template",
             "value": {"metadata": {"creationTimestamp": null}, "spec": {"containers": []}}},
            {"op": "replace", "path": "/metadata/annotations", "value": {"a": "b"}}
        ]);
        let mut original = deployment();
        original["metadata"]["annotations"] = json!({});
        let out = apply_patch(PatchType::Json, &original, &patch).expect("applies");
        assert_eq!(out["spec"]["template"]["spec"]["containers"], json!([]));
    }

    #[test]
    fn json_patch_errors_name_the_operation() {
        let d = deployment();
        let e = apply_patch(
            PatchType::Json,
            &d,
            &json!([
                {"op": "add", "path": "/a", "value": 1},
                {"op": "replace", "path": "/spec/nope/x", "value": 1}
            ]),
        )
        .expect_err("bad path");
        assert_eq!(
            e.message,
            "json patch operation 1 (replace /spec/nope/x) failed: path is invalid"
        );
        let e = apply_patch(
            PatchType::Json,
            &d,
            &json!([{"op": "test", "path": "/spec/replicas", "value": 5}]),
        )
        .expect_err("test fails");
        assert!(
            e.message
                .contains("(test /spec/replicas) failed: value did not match"),
            "{e}"
        );
        let e = apply_patch(
            PatchType::Json,
            &d,
            &json!([{"op": "frobnicate", "path": "/"}]),
        )
        .expect_err("unknown op");
        assert!(e.message.starts_with("invalid json patch: "), "{e}");
        let e = apply_patch(PatchType::Json, &d, &json!({"op": "add"})).expect_err("not a list");
        assert_eq!(
            e.message,
            "json patch must be a JSON array of operations, not an object"
        );
        let many = Value::Array(vec![
            json!({"op": "test", "path": "/kind", "value": "Deployment"});
            MAX_JSON_PATCH_OPERATIONS + 1
        ]);
        assert!(apply_patch(PatchType::Json, &d, &many).is_err());
    }

    #[test]
    fn json_patch_copy_bomb_is_refused() {
        // Each copy doubles the document; without a limit this exhausts memory.
        let mut ops = vec![json!({"op": "add", "path": "/x", "value": "x".repeat(1000)})];
        for i in 0..64 {
            ops.push(json!({"op": "copy", "from": "", "path": format!("/c{i}")}));
        }
        let e = apply_patch(PatchType::Json, &json!({}), &Value::Array(ops)).expect_err("bomb");
        assert!(e.message.contains("copies more than"), "{e}");
    }

    // --- RFC 7386 ---

    #[test]
    fn merge_patch() {
        let out = apply_patch(
            PatchType::Merge,
            &deployment(),
            &json!({"spec": {"replicas": 3, "strategy": null},
                    "metadata": {"labels": {"app": null, "new": "x"}}}),
        )
        .expect("applies");
        assert_eq!(out["spec"]["replicas"], 3);
        assert!(out["spec"].get("strategy").is_none());
        assert_eq!(out["metadata"]["labels"], json!({"new": "x"}));
        // Lists are replaced wholesale.
        let out = apply_patch(
            PatchType::Merge,
            &deployment(),
            &json!({"metadata": {"finalizers": ["z"]}}),
        )
        .expect("applies");
        assert_eq!(out["metadata"]["finalizers"], json!(["z"]));
        for bad in [json!([1]), json!("x"), json!(null), json!(3)] {
            let e = apply_patch(PatchType::Merge, &deployment(), &bad).expect_err("not object");
            assert!(
                e.message.starts_with("merge patch must be a JSON object"),
                "{e}"
            );
        }
    }

    // --- strategic merge patch ---

    #[test]
    fn smp_maps_merge_recursively_and_null_deletes() {
        let out = smp(
            deployment(),
            json!({"metadata": {"labels": {"tier": "front", "app": null}},
                   "spec": {"replicas": 5, "strategy": {"rollingUpdate": {"maxSurge": 1}}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"tier": "front"}));
        assert_eq!(out["spec"]["replicas"], 5);
        assert_eq!(
            out["spec"]["strategy"]["rollingUpdate"],
            json!({"maxSurge": 1, "maxUnavailable": "25%"})
        );
        assert_eq!(out["metadata"]["name"], "web");
        // A null for an absent key is a no-op; nulls inside new maps are dropped.
        let out = smp(
            json!({"a": 1}),
            json!({"b": null, "c": {"d": null, "e": 1}}),
        );
        assert_eq!(out, json!({"a": 1, "c": {"e": 1}}));
    }

    #[test]
    fn smp_cordon() {
        let node = json!({"kind": "Node", "metadata": {"name": "n1"}, "spec": {"podCIDR": "x"}});
        let out = smp(node, json!({"spec": {"unschedulable": true}}));
        assert_eq!(out["spec"], json!({"podCIDR": "x", "unschedulable": true}));
    }

    #[test]
    fn smp_kubectl_apply_image_change_and_env_removal() {
        // What kubectl apply sends after the image changes and env var B is removed.
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}],
            "containers": [{"name": "web", "image": "nginx:1.26",
                            "env": [{"name": "B", "$patch": "delete"}]}]
        }}}});
        let out = smp(deployment(), patch);
        let c = container(&out, 0);
        assert_eq!(c["image"], "nginx:1.26");
        assert_eq!(c["env"], json!([{"name": "A", "value": "1"}]));
        assert_eq!(
            c["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}])
        );
        assert_eq!(c["volumeMounts"][0]["mountPath"], "/data");
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
    }

    #[test]
    fn smp_kubectl_apply_strategy_change_with_retain_keys() {
        // kubectl apply switching a Deployment to Recreate.
        let patch = json!({"spec": {"strategy": {
            "$retainKeys": ["type"], "rollingUpdate": null, "type": "Recreate"}}});
        let out = smp(deployment(), patch);
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        // $retainKeys drops original keys not listed, even without an explicit null.
        let out = smp(
            json!({"v": {"name": "data", "emptyDir": {}, "x": 1}}),
            json!({"v": {"$retainKeys": ["name", "configMap"], "configMap": {"name": "c"}}}),
        );
        assert_eq!(
            out["v"],
            json!({"name": "data", "configMap": {"name": "c"}})
        );
    }

    #[test]
    fn smp_volumes_retain_keys_inside_a_merged_item() {
        let patch = json!({"spec": {"template": {"spec": {"volumes": [
            {"$retainKeys": ["configMap", "name"], "configMap": {"name": "cfg"}, "name": "data"}
        ]}}}});
        let out = smp(deployment(), patch);
        assert_eq!(
            out["spec"]["template"]["spec"]["volumes"],
            json!([{"name": "data", "configMap": {"name": "cfg"}}])
        );
    }

    #[test]
    fn smp_keyed_lists_merge_and_append() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "sidecar", "image": "busybox"},
            {"name": "web", "env": [{"name": "C", "value": "3"}, {"name": "A", "value": "9"}]}
        ]}}}});
        let out = smp(deployment(), patch);
        let containers = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["name"], "web");
        assert_eq!(containers[0]["image"], "nginx:1.25");
        assert_eq!(
            containers[0]["env"],
            json!([{"name": "A", "value": "9"}, {"name": "B", "value": "2"},
                   {"name": "C", "value": "3"}])
        );
        assert_eq!(
            containers[1],
            json!({"name": "sidecar", "image": "busybox"})
        );
        // An empty patch list merges nothing.
        let out = smp(
            deployment(),
            json!({"spec": {"template": {"spec": {"containers": []}}}}),
        );
        assert_eq!(container(&out, 0)["name"], "web");
    }

    #[test]
    fn smp_merge_keys_by_field() {
        // Container ports by containerPort.
        let out = smp(
            deployment(),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "web",
                "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]}]}}}}),
        );
        assert_eq!(
            container(&out, 0)["ports"],
            json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 443}])
        );
        // Service ports by port.
        let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}});
        let out = smp(
            svc,
            json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
        );
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port": 80, "targetPort": 9090}, {"port": 443}])
        );
        // volumeMounts by mountPath; volumes and imagePullSecrets by name.
        let out = smp(
            deployment(),
            json!({"spec": {"template": {"spec": {
                "containers": [{"name": "web",
                    "volumeMounts": [{"mountPath": "/data", "readOnly": true}]}],
                "volumes": [{"name": "cache", "emptyDir": {}}],
                "imagePullSecrets": [{"name": "reg"}]}}}}),
        );
        assert_eq!(
            container(&out, 0)["volumeMounts"],
            json!([{"name": "data", "mountPath": "/data", "readOnly": true}])
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["volumes"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        // Conditions by type, ownerReferences by uid, hostAliases by ip.
        let out = smp(
            json!({"status": {"conditions": [{"type": "Ready", "status": "False"},
                                             {"type": "Scheduled", "status": "True"}]},
                   "metadata": {"ownerReferences": [{"uid": "u1", "name": "a"}]},
                   "spec": {"hostAliases": [{"ip": "1.2.3.4", "hostnames": ["a"]}]}}),
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]},
                   "metadata": {"ownerReferences": [{"uid": "u2", "name": "b"}]},
                   "spec": {"hostAliases": [{"ip": "1.2.3.4", "hostnames": ["b"]}]}}),
        );
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "Scheduled", "status": "True"}])
        );
        assert_eq!(
            out["metadata"]["ownerReferences"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(
            out["spec"]["hostAliases"],
            json!([{"ip": "1.2.3.4", "hostnames": ["b"]}])
        );
    }

    #[test]
    fn smp_lists_without_merge_key_are_replaced() {
        let out = smp(
            deployment(),
            json!({"spec": {"template": {"spec": {
                "tolerations": [{"key": "k2", "operator": "Exists"}],
                "containers": [{"name": "web", "args": ["a", "b"]}]}}}}),
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["tolerations"],
            json!([{"key": "k2", "operator": "Exists"}])
        );
        let out2 = smp(
            out,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "args": ["c"]}]}}}}),
        );
        assert_eq!(container(&out2, 0)["args"], json!(["c"]));
        // Namespace spec.finalizers are atomic, unlike metadata.finalizers.
        let ns = json!({"spec": {"finalizers": ["kubernetes"]}});
        assert_eq!(
            smp(ns, json!({"spec": {"finalizers": ["x"]}}))["spec"]["finalizers"],
            json!(["x"])
        );
    }

    #[test]
    fn smp_primitive_union_and_delete_from_primitive_list() {
        let out = smp(
            deployment(),
            json!({"metadata": {"finalizers": ["c", "a"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
        let out = smp(
            deployment(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"],
                                "finalizers": ["d"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "d"]));
        // Deleting from a list the object does not have is a no-op.
        let out = smp(
            json!({}),
            json!({"$deleteFromPrimitiveList/finalizers": ["a"]}),
        );
        assert_eq!(out, json!({}));
        // Ordering a primitive list.
        let out = smp(
            deployment(),
            json!({"metadata": {"$setElementOrder/finalizers": ["b", "c", "a"],
                                "finalizers": ["c"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "c", "a"]));
    }

    #[test]
    fn smp_set_element_order() {
        let original = json!({"spec": {"containers": [
            {"name": "a"}, {"name": "injected"}, {"name": "b"}]}});
        let out = smp(
            original,
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}],
                "containers": [{"name": "c", "image": "x"}]}}),
        );
        // Named items in the given order, the others after them in their relative order.
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "c", "image": "x"}, {"name": "b"}, {"name": "a"}, {"name": "injected"}])
        );
        // Ordering alone reorders the original; a missing list stays missing.
        let out = smp(
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
            json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                            "$setElementOrder/initContainers": [{"name": "x"}]}}),
        );
        assert_eq!(
            out,
            json!({"spec": {"containers": [{"name": "b"}, {"name": "a"}]}})
        );
    }

    #[test]
    fn smp_patch_replace() {
        // On a map: the map becomes the patch's.
        let out = smp(
            deployment(),
            json!({"spec": {"strategy": {"$patch": "replace", "type": "Recreate"}}}),
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        // As a list item: the list becomes the patch's items.
        let out = smp(
            deployment(),
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "other", "image": "x"}, {"$patch": "replace"}]}}}}),
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "other", "image": "x"}])
        );
    }

    #[test]
    fn smp_patch_delete_and_merge() {
        // On a map: the field goes.
        let out = smp(
            deployment(),
            json!({"spec": {"strategy": {"$patch": "delete"}}}),
        );
        assert!(out["spec"].get("strategy").is_none());
        // On a keyed item: that item goes, the others stay.
        let out = smp(
            deployment(),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "web",
                "env": [{"name": "A", "$patch": "delete"}, {"name": "Z", "$patch": "delete"}]}]}}}}),
        );
        assert_eq!(
            container(&out, 0)["env"],
            json!([{"name": "B", "value": "2"}])
        );
        // $patch: merge is the default behaviour, spelled out.
        let out = smp(
            deployment(),
            json!({"spec": {"$patch": "merge", "replicas": 1, "template": {"spec": {"containers": [
                {"name": "web", "$patch": "merge", "image": "y"}]}}}}),
        );
        assert_eq!(out["spec"]["replicas"], 1);
        assert_eq!(container(&out, 0)["image"], "y");
        assert_eq!(container(&out, 0)["env"].as_array().map(Vec::len), Some(2));
        // The whole object cannot be deleted by a patch.
        let e = smp_err(deployment(), json!({"$patch": "delete"}));
        assert!(e.contains("cannot delete the whole object"), "{e}");
    }

    #[test]
    fn smp_directives_in_new_values_are_consumed() {
        let out = smp(
            json!({"metadata": {"name": "x"}}),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "a"}],
                "containers": [{"name": "a", "env": [{"name": "X", "$patch": "delete"}],
                                "resources": {"$patch": "replace", "limits": {"cpu": "1"}},
                                "securityContext": {"$patch": "delete"},
                                "gone": null}],
                "tolerations": [{"key": "t", "$retainKeys": ["key"]}],
                "strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        );
        assert_eq!(
            out,
            json!({"metadata": {"name": "x"}, "spec": {
                "containers": [{"name": "a", "env": [], "resources": {"limits": {"cpu": "1"}}}],
                "tolerations": [{"key": "t"}],
                "strategy": {"type": "Recreate"}}})
        );
    }

    #[test]
    fn smp_type_changes_take_the_patch_value() {
        let out = smp(
            json!({"a": "x", "b": {"c": 1}, "d": [1]}),
            json!({"a": {"k": 1}, "b": 2, "d": {"e": 1}}),
        );
        assert_eq!(out, json!({"a": {"k": 1}, "b": 2, "d": {"e": 1}}));
    }

    #[test]
    fn smp_errors() {
        let d = deployment();
        let e = smp_err(d.clone(), json!({"spec": {"$frobnicate": 1}}));
        assert_eq!(
            e,
            "strategic merge patch: unknown directive \"$frobnicate\" at spec"
        );
        let e = smp_err(d.clone(), json!({"spec": {"$setElementOrder/": []}}));
        assert!(e.contains("unknown directive"), "{e}");
        let e = smp_err(
            d.clone(),
            json!({"spec": {"strategy": {"$patch": "explode"}}}),
        );
        assert!(
            e.starts_with("strategic merge patch: unknown patch directive \"$patch\": \"explode\""),
            "{e}"
        );
        assert!(e.ends_with("at spec.strategy"), "{e}");
        let e = smp_err(d.clone(), json!({"$patch": 1}));
        assert!(e.contains("unknown patch directive"), "{e}");
        let e = smp_err(
            d.clone(),
            json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}),
        );
        assert_eq!(
            e,
            "strategic merge patch: list item does not contain the merge key \"name\" at spec.template.spec.containers[0]"
        );
        let e = smp_err(
            d.clone(),
            json!({"spec": {"template": {"spec": {"containers": [{"$patch": "delete"}]}}}}),
        );
        assert!(e.contains("merge key \"name\""), "{e}");
        let e = smp_err(
            d.clone(),
            json!({"spec": {"template": {"spec": {"containers": ["web"]}}}}),
        );
        assert!(e.contains("list items must be objects"), "{e}");
        let e = smp_err(
            d.clone(),
            json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
        );
        assert!(e.contains("must be a list of field names"), "{e}");
        let e = smp_err(
            d.clone(),
            json!({"metadata": {"$setElementOrder/finalizers": "a"}}),
        );
        assert!(e.contains("must be a list"), "{e}");
        let e = smp_err(
            d.clone(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": 1}}),
        );
        assert!(e.contains("must be a list"), "{e}");
        for bad in [json!([]), json!(null), json!("x")] {
            let e = apply_patch(PatchType::Strategic, &d, &bad).expect_err("not an object");
            assert!(
                e.message
                    .starts_with("strategic merge patch must be a JSON object"),
                "{e}"
            );
        }
    }

    #[test]
    fn smp_original_is_untouched_on_error() {
        let d = deployment();
        let before = d.clone();
        let _ = apply_patch(
            PatchType::Strategic,
            &d,
            &json!({"spec": {"replicas": 9, "$bogus": 1}}),
        );
        assert_eq!(d, before);
    }

    #[test]
    fn apply_type_merges_like_strategic() {
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}});
        let out = apply_patch(PatchType::Apply, &deployment(), &cfg).expect("applies");
        assert_eq!(container(&out, 0)["image"], "nginx:1.27");
        assert_eq!(container(&out, 0)["env"].as_array().map(Vec::len), Some(2));
        let e = apply_patch(PatchType::Apply, &deployment(), &json!({"$x": 1})).expect_err("bad");
        assert!(
            e.message.starts_with("apply patch: unknown directive"),
            "{e}"
        );
    }

    #[test]
    fn large_lists_merge_in_linear_time() {
        // A body-sized patch must not take quadratic time.
        let n = 50_000;
        let original = json!({"metadata": {"finalizers": (0..n).map(|i| format!("f{i}")).collect::<Vec<_>>()},
            "spec": {"containers": (0..n).map(|i| json!({"name": format!("c{i}")})).collect::<Vec<_>>()}});
        let patch = json!({"metadata": {"finalizers": (0..n).map(|i| format!("g{i}")).collect::<Vec<_>>()},
            "spec": {"containers": (0..n).map(|i| json!({"name": format!("d{i}")})).collect::<Vec<_>>(),
                     "$setElementOrder/containers": (0..n).rev().map(|i| json!({"name": format!("c{i}")})).collect::<Vec<_>>()}});
        let out = smp(original, patch);
        assert_eq!(
            out["metadata"]["finalizers"].as_array().map(Vec::len),
            Some(2 * n)
        );
        assert_eq!(
            out["spec"]["containers"].as_array().map(Vec::len),
            Some(2 * n)
        );
        assert_eq!(out["spec"]["containers"][0]["name"], format!("c{}", n - 1));
    }

    #[test]
    fn random_patches_never_panic() {
        // Deterministic random patches built from the pieces that stress the merger.
        let keys = [
            "spec",
            "containers",
            "env",
            "name",
            "ports",
            "containerPort",
            "port",
            "finalizers",
            "metadata",
            "$patch",
            "$retainKeys",
            "$setElementOrder/containers",
            "$deleteFromPrimitiveList/finalizers",
            "$setElementOrder/finalizers",
            "image",
            "conditions",
            "type",
            "volumes",
            "template",
            "$bogus",
        ];
        let scalars = [
            json!(null),
            json!("delete"),
            json!("replace"),
            json!("merge"),
            json!("web"),
            json!(80),
            json!(true),
            json!(["a", "b"]),
            json!([{"name": "web"}]),
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        fn build(
            next: &mut dyn FnMut() -> u64,
            keys: &[&str],
            scalars: &[Value],
            depth: u32,
        ) -> Value {
            let r = next() % 10;
            if depth == 0 || r < 3 {
                return scalars[(next() % scalars.len() as u64) as usize].clone();
            }
            if r < 5 {
                let len = next() % 4;
                return Value::Array(
                    (0..len)
                        .map(|_| build(next, keys, scalars, depth - 1))
                        .collect(),
                );
            }
            let len = next() % 5;
            let mut m = Map::new();
            for _ in 0..len {
                let k = keys[(next() % keys.len() as u64) as usize];
                m.insert(k.to_string(), build(next, keys, scalars, depth - 1));
            }
            Value::Object(m)
        }
        let original = deployment();
        for _ in 0..3_000 {
            let patch = build(&mut next, &keys, &scalars, 6);
            for kind in [
                PatchType::Strategic,
                PatchType::Merge,
                PatchType::Json,
                PatchType::Apply,
            ] {
                if let Ok(out) = apply_patch(kind, &original, &patch)
                    && kind == PatchType::Strategic
                {
                    assert_no_directives(&out);
                }
            }
        }
    }
}
