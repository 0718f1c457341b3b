//! ConfigMaps and Secrets (`ValidateConfigMap`, `ValidateSecret` and their updates).
//!
//! A Secret's `stringData` is merged into `data` at admission and never stored, as in
//! Kubernetes. Secret values never appear in error messages.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};

use super::default_str;
use crate::api::error::FieldError;
use crate::api::registry::Admit;
use crate::api::validation::config_key_errors;

/// Largest total size of a ConfigMap's or Secret's values (Kubernetes' `MaxSecretSize`).
pub const MAX_DATA_SIZE: usize = 1024 * 1024;

const IMMUTABLE_MSG: &str = "field is immutable when `immutable` is set";

fn validate_keys<'a>(
    field: &str,
    keys: impl Iterator<Item = &'a String>,
    errs: &mut Vec<FieldError>,
) {
    for key in keys {
        for msg in config_key_errors(key) {
            errs.push(FieldError::invalid(format!("{field}[{key}]"), key, &msg));
        }
    }
}

impl Admit for ConfigMap {
    fn validate(&self, errs: &mut Vec<FieldError>) {
        let data = self.data.as_ref();
        let binary = self.binary_data.as_ref();
        validate_keys("data", data.into_iter().flat_map(BTreeMap::keys), errs);
        validate_keys(
            "binaryData",
            binary.into_iter().flat_map(BTreeMap::keys),
            errs,
        );
        for key in binary.into_iter().flat_map(BTreeMap::keys) {
            if data.is_some_and(|d| d.contains_key(key)) {
                errs.push(FieldError::invalid(
                    format!("binaryData[{key}]"),
                    key,
                    "duplicate of key present in data",
                ));
            }
        }
        let size: usize = data
            .into_iter()
            .flatten()
            .map(|(_, v)| v.len())
            .sum::<usize>()
            + binary
                .into_iter()
                .flatten()
                .map(|(_, v)| v.0.len())
                .sum::<usize>();
        if size > MAX_DATA_SIZE {
            errs.push(FieldError::too_long("", MAX_DATA_SIZE));
        }
    }

    fn validate_update(&self, old: &Self, errs: &mut Vec<FieldError>) {
        if old.immutable == Some(true) {
            validate_immutable_data(
                self.immutable,
                (&self.data, &old.data),
                (&self.binary_data, &old.binary_data),
                errs,
            );
        }
    }
}

/// The rule for ConfigMaps and Secrets marked `immutable: true`.
fn validate_immutable_data<A: PartialEq, B: PartialEq>(
    immutable: Option<bool>,
    data: (&A, &A),
    binary: (&B, &B),
    errs: &mut Vec<FieldError>,
) {
    if immutable != Some(true) {
        errs.push(FieldError::forbidden("immutable", IMMUTABLE_MSG));
    }
    if data.0 != data.1 {
        errs.push(FieldError::forbidden("data", IMMUTABLE_MSG));
    }
    if binary.0 != binary.1 {
        errs.push(FieldError::forbidden("binaryData", IMMUTABLE_MSG));
    }
}

impl Admit for Secret {
    fn apply_defaults(&mut self) {
        default_str(&mut self.type_, "Opaque");
        // `stringData` is write-only: its entries overwrite `data`'s.
        if let Some(strings) = self.string_data.take() {
            let data = self.data.get_or_insert_with(BTreeMap::new);
            for (k, v) in strings {
                data.insert(k, ByteString(v.into_bytes()));
            }
        }
    }

    fn validate(&self, errs: &mut Vec<FieldError>) {
        let data = self.data.as_ref();
        validate_keys("data", data.into_iter().flat_map(BTreeMap::keys), errs);
        let size: usize = data.into_iter().flatten().map(|(_, v)| v.0.len()).sum();
        if size > MAX_DATA_SIZE {
            errs.push(FieldError::too_long("data", MAX_DATA_SIZE));
        }
        let has = |key: &str| data.is_some_and(|d| d.contains_key(key));
        let required = |key: &str, errs: &mut Vec<FieldError>| {
            if !has(key) {
                errs.push(FieldError::required(format!("data[{key}]"), ""));
            }
        };
        match self.type_.as_deref().unwrap_or_default() {
            "kubernetes.io/service-account-token" => {
                let annotated = self
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("kubernetes.io/service-account.name"))
                    .is_some_and(|n| !n.is_empty());
                if !annotated {
                    errs.push(FieldError::required(
                        "metadata.annotations[kubernetes.io/service-account.name]",
                        "",
                    ));
                }
            }
            "kubernetes.io/dockercfg" => validate_json_key(data, ".dockercfg", errs),
            "kubernetes.io/dockerconfigjson" => {
                validate_json_key(data, ".dockerconfigjson", errs);
            }
            "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
                required("username", errs);
                required("password", errs);
            }
            "kubernetes.io/ssh-auth" => required("ssh-privatekey", errs),
            "kubernetes.io/tls" => {
                required("tls.crt", errs);
                required("tls.key", errs);
            }
            _ => {}
        }
    }

    fn validate_update(&self, old: &Self, errs: &mut Vec<FieldError>) {
        if self.type_ != old.type_ {
            errs.push(FieldError::immutable("type"));
        }
        if old.immutable == Some(true) {
            validate_immutable_data(self.immutable, (&self.data, &old.data), (&(), &()), errs);
        }
    }
}

/// A docker config key: present and valid JSON (its contents are never echoed).
fn validate_json_key(
    data: Option<&BTreeMap<String, ByteString>>,
    key: &str,
    errs: &mut Vec<FieldError>,
) {
    let field = format!("data[{key}]");
    match data.and_then(|d| d.get(key)) {
        None => errs.push(FieldError::required(field, "")),
        Some(bytes) => {
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes.0) {
                errs.push(FieldError::invalid(
                    field,
                    "<secret contents redacted>",
                    &e.to_string(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::test_support::{admit_update, ok, patched, rejects, rejects_update};

    fn config_map() -> Value {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "conf", "namespace": "default"},
            "data": {"app.properties": "a=1", "LOG_LEVEL": "debug"}
        })
    }

    fn secret() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "default"},
            "data": {"user": "YWRtaW4="}
        })
    }

    #[test]
    fn config_maps() {
        ok(&config_map());
        rejects(
            &patched(&config_map(), json!({"data": {"a/b": "x"}})),
            "data[a/b]",
            "a valid config key",
        );
        rejects(
            &patched(&config_map(), json!({"data": {"..": "x"}})),
            "data[..]",
            "must not be '..'",
        );
        rejects(
            &patched(&config_map(), json!({"binaryData": {"LOG_LEVEL": "AAE="}})),
            "binaryData[LOG_LEVEL]",
            "duplicate of key present in data",
        );
        let big = "x".repeat(super::MAX_DATA_SIZE + 1);
        rejects(
            &patched(&config_map(), json!({"data": {"big": big}})),
            "",
            "Too long: may not be more than 1048576 bytes",
        );
    }

    #[test]
    fn immutable_config_maps_and_secrets_stay_put() {
        let old = ok(&patched(&config_map(), json!({"immutable": true})));
        let changed = patched(&old, json!({"data": {"LOG_LEVEL": "info"}}));
        rejects_update(
            &changed,
            &old,
            "data",
            "field is immutable when `immutable` is set",
        );
        let unset = patched(&old, json!({"immutable": false}));
        rejects_update(
            &unset,
            &old,
            "immutable",
            "field is immutable when `immutable` is set",
        );
        let labelled = patched(&old, json!({"metadata": {"labels": {"a": "b"}}}));
        admit_update(&labelled, Some(&old)).expect("metadata stays mutable");
        // A mutable one may become immutable.
        let mutable = ok(&config_map());
        admit_update(
            &patched(&mutable, json!({"immutable": true})),
            Some(&mutable),
        )
        .expect("freeze");

        let old = ok(&patched(&secret(), json!({"immutable": true})));
        rejects_update(
            &patched(&old, json!({"data": {"user": "cm9vdA=="}})),
            &old,
            "data",
            "field is immutable when",
        );
    }

    #[test]
    fn secret_string_data_is_merged_into_data() {
        let out = ok(&patched(
            &secret(),
            json!({"stringData": {"password": "s3cret", "user": "root"}}),
        ));
        assert_eq!(out["type"], "Opaque");
        assert!(out.get("stringData").is_none());
        // base64 of "s3cret" and "root"; stringData wins over data.
        assert_eq!(
            out["data"],
            json!({"password": "czNjcmV0", "user": "cm9vdA=="})
        );
    }

    #[test]
    fn typed_secrets_need_their_keys() {
        let tls = patched(
            &secret(),
            json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}}),
        );
        let causes = rejects(&tls, "data[tls.key]", "Required value");
        assert!(!causes.iter().any(|c| c.field == "data[tls.crt]"));
        let docker = patched(&secret(), json!({"type": "kubernetes.io/dockerconfigjson"}));
        rejects(&docker, "data[.dockerconfigjson]", "Required value");
        let garbage = patched(
            &docker,
            json!({"data": {".dockerconfigjson": "bm90IGpzb24="}}),
        );
        let causes = rejects(
            &garbage,
            "data[.dockerconfigjson]",
            "<secret contents redacted>",
        );
        assert!(
            !causes.iter().any(|c| c.detail.contains("not json")),
            "values never echoed"
        );
        let ok_docker = patched(
            &docker,
            json!({"stringData": {".dockerconfigjson": "{\"auths\":{}}"}}),
        );
        ok(&ok_docker);
        rejects(
            &patched(&secret(), json!({"data": {"bad key": "eA=="}})),
            "data[bad key]",
            "valid config key",
        );
    }

    #[test]
    fn secret_type_is_immutable() {
        let old = ok(&secret());
        let retyped = patched(
            &old,
            json!({"type": "kubernetes.io/basic-auth", "data": {"username": "eA=="}}),
        );
        rejects_update(&retyped, &old, "type", "field is immutable");
    }
}
