//! Kind-specific defaulting and validation ([`Admit`](super::registry::Admit) impls),
//! following Kubernetes' `pkg/apis/*/v1/defaults.go` and `pkg/apis/*/validation`.
//!
//! One file per API area. Defaulting fills exactly what Kubernetes fills, so objects read
//! back look as they would from a real cluster; validation reports every problem at once,
//! with Kubernetes' field paths and, where known, its wording. Nothing here panics on input:
//! every value that came from a manifest is checked before it is used.
//!
//! Go's zero values matter for defaulting: where Kubernetes' v1 field is a plain string or
//! integer, an explicit `""` or `0` counts as unset and is defaulted too ([`default_str`],
//! [`default_nonzero`]); where it is a pointer, only an absent field is.

mod apps;
mod batch;
mod cluster;
mod config;
mod cron;
mod discovery;
mod networking;
mod pod;
mod service;
mod storage;

pub use cron::{Schedule, validate_schedule};
pub use pod::{default_pod_spec, pod_qos_class, validate_pod_spec, validate_pod_template};

use serde::Serialize;

use super::error::FieldError;

/// Sets a Go-string field (`""` counts as unset) to `value` when unset.
fn default_str(field: &mut Option<String>, value: &str) {
    if field.as_deref().is_none_or(str::is_empty) {
        *field = Some(value.to_string());
    }
}

/// Sets a Go-int field (`0` counts as unset) to `value` when unset.
fn default_nonzero<T: Default + PartialEq>(field: &mut Option<T>, value: T) {
    if field.as_ref().is_none_or(|v| *v == T::default()) {
        *field = Some(value);
    }
}

/// Reports `field is immutable` when `new` differs from `old`.
fn immutable<T: PartialEq>(field: &str, new: &T, old: &T, errs: &mut Vec<FieldError>) {
    if new != old {
        errs.push(FieldError::immutable(field));
    }
}

/// A value as compact JSON, for messages that show a structure.
fn json_of<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Shared helpers for the tests in this module's files.
#[cfg(test)]
mod test_support {
    use serde_json::Value;

    use crate::api::error::{ApiError, FieldError};
    use crate::api::registry::by_kind;

    /// Admits `obj` as a create through the registry, exactly as the store does.
    pub fn admit(obj: &Value) -> Result<Value, ApiError> {
        admit_update(obj, None)
    }

    /// Admits `obj` as an update of `old` (or a create).
    pub fn admit_update(obj: &Value, old: Option<&Value>) -> Result<Value, ApiError> {
        let api_version = obj["apiVersion"].as_str().unwrap_or_default();
        let kind = obj["kind"].as_str().unwrap_or_default();
        let rt = by_kind(api_version, kind).expect("kind registered");
        rt.admit(obj, old)
    }

    /// Admits and expects success.
    #[track_caller]
    pub fn ok(obj: &Value) -> Value {
        match admit(obj) {
            Ok(v) => v,
            Err(e) => panic!("expected admission, got: {e}"),
        }
    }

    /// The causes of an Invalid error.
    #[track_caller]
    pub fn causes(result: Result<Value, ApiError>) -> Vec<FieldError> {
        match result {
            Err(ApiError::Invalid { causes, .. }) => causes,
            Err(other) => panic!("expected Invalid, got: {other}"),
            Ok(v) => panic!("expected Invalid, got admitted: {v}"),
        }
    }

    /// Admits and expects an Invalid error with a cause at `field` whose message contains
    /// `text`; returns all causes.
    #[track_caller]
    pub fn rejects(obj: &Value, field: &str, text: &str) -> Vec<FieldError> {
        expect_cause(causes(admit(obj)), field, text)
    }

    /// Like [`rejects`], for an update of `old`.
    #[track_caller]
    pub fn rejects_update(obj: &Value, old: &Value, field: &str, text: &str) -> Vec<FieldError> {
        expect_cause(causes(admit_update(obj, Some(old))), field, text)
    }

    #[track_caller]
    fn expect_cause(causes: Vec<FieldError>, field: &str, text: &str) -> Vec<FieldError> {
        assert!(
            causes
                .iter()
                .any(|c| c.field == field && c.detail.contains(text)),
            "expected a cause at {field:?} containing {text:?}, got: {:#?}",
            causes.iter().map(ToString::to_string).collect::<Vec<_>>()
        );
        causes
    }

    /// Applies a JSON merge patch to a copy of `base` (`null` removes a field).
    pub fn patched(base: &Value, patch: Value) -> Value {
        let mut out = base.clone();
        json_patch::merge(&mut out, &patch);
        out
    }
}
