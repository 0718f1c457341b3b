//! Validation as Kubernetes' apimachinery does it: names, labels, annotations and selectors,
//! plus the checks every object's metadata gets. Kind-specific checks live in the
//! [`Admit`](super::registry::Admit) impls in `kinds.rs`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::error::FieldError;

/// How the names of a kind are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// RFC 1123 subdomain (most kinds): at most 253 characters.
    Subdomain,
    /// RFC 1123 label (Namespace, Service): at most 63 characters, no dots.
    Label,
    /// RFC 1035 label (Service): starts with a letter.
    Rfc1035Label,
    /// Path segment only (Event, Node allow dots and more): not `.`/`..`, no `/` or `%`.
    PathSegment,
}

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// RFC 1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| is_lower_alnum(c) || c == '-')
        && s.starts_with(is_lower_alnum)
        && s.ends_with(is_lower_alnum)
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// RFC 1035 label: like an RFC 1123 label but starting with a letter.
pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase())
}

/// Errors for a name under `rule`, each a complete message.
pub fn name_errors(name: &str, rule: NameRule) -> Vec<String> {
    let mut out = Vec::new();
    match rule {
        NameRule::Subdomain => {
            if name.len() > 253 {
                out.push("must be no more than 253 characters".to_string());
            }
            if !is_dns1123_subdomain(name) {
                out.push(DNS1123_SUBDOMAIN_MSG.to_string());
            }
        }
        NameRule::Label => {
            if name.len() > 63 {
                out.push("must be no more than 63 characters".to_string());
            }
            if !is_dns1123_label(name) {
                out.push(DNS1123_LABEL_MSG.to_string());
            }
        }
        NameRule::Rfc1035Label => {
            if name.len() > 63 {
                out.push("must be no more than 63 characters".to_string());
            }
            if !is_dns1035_label(name) {
                out.push(DNS1035_LABEL_MSG.to_string());
            }
        }
        NameRule::PathSegment => {
            if name == "." || name == ".." {
                out.push(format!("may not be '{name}'"));
            }
            for bad in ["/", "%"] {
                if name.contains(bad) {
                    out.push(format!("may not contain '{bad}'"));
                }
            }
        }
    }
    out
}

/// Checks a name (or a namespace name) and reports at `field`.
pub fn validate_name(field: &str, name: &str, rule: NameRule, errs: &mut Vec<FieldError>) {
    for msg in name_errors(name, rule) {
        errs.push(FieldError::invalid(field, name, &msg));
    }
}

/// A qualified name as used by label and annotation keys: `[prefix/]name`.
pub fn qualified_name_errors(key: &str) -> Vec<String> {
    const NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    let mut out = Vec::new();
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            out.push("prefix part must be non-empty".to_string());
        } else if !is_dns1123_subdomain(p) {
            out.push(format!("prefix part {DNS1123_SUBDOMAIN_MSG}"));
        }
        if name.contains('/') {
            out.push("a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_string());
            return out;
        }
    }
    if name.is_empty() {
        out.push("name part must be non-empty".to_string());
    } else {
        if name.len() > 63 {
            out.push("name part must be no more than 63 characters".to_string());
        }
        let ok_chars = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        let ok_ends = name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !ok_chars || !ok_ends {
            out.push(NAME_MSG.to_string());
        }
    }
    out
}

/// A label value: empty, or at most 63 alphanumerics/`-_.` starting and ending alphanumeric.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    if value.is_empty() {
        return out;
    }
    if value.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    let ok_chars = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let ok_ends = value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !ok_chars || !ok_ends {
        out.push("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string());
    }
    out
}

/// Validates a label map at `field`.
pub fn validate_labels(field: &str, labels: &BTreeMap<String, String>, errs: &mut Vec<FieldError>) {
    for (k, v) in labels {
        for msg in qualified_name_errors(k) {
            errs.push(FieldError::invalid(field, k, &msg));
        }
        for msg in label_value_errors(v) {
            errs.push(FieldError::invalid(format!("{field}[{k}]"), v, &msg));
        }
    }
}

/// Total size limit of annotations, as Kubernetes (256 KiB).
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Validates an annotation map at `field`.
pub fn validate_annotations(
    field: &str,
    annotations: &BTreeMap<String, String>,
    errs: &mut Vec<FieldError>,
) {
    let mut total = 0;
    for (k, v) in annotations {
        for msg in qualified_name_errors(&k.to_ascii_lowercase()) {
            errs.push(FieldError::invalid(field, k, &msg));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(field, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
}

/// Validates a `LabelSelector` (keys, operators, values) at `field`.
pub fn validate_label_selector(field: &str, sel: &LabelSelector, errs: &mut Vec<FieldError>) {
    if let Some(ml) = &sel.match_labels {
        validate_labels(&format!("{field}.matchLabels"), ml, errs);
    }
    for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
        let f = format!("{field}.matchExpressions[{i}]");
        for msg in qualified_name_errors(&req.key) {
            errs.push(FieldError::invalid(format!("{f}.key"), &req.key, &msg));
        }
        let values = req.values.as_deref().unwrap_or_default();
        match req.operator.as_str() {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        format!("{f}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        format!("{f}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                format!("{f}.operator"),
                other,
                &["In", "NotIn", "Exists", "DoesNotExist"],
            )),
        }
        for v in values {
            for msg in label_value_errors(v) {
                errs.push(FieldError::invalid(format!("{f}.values"), v, &msg));
            }
        }
    }
}

/// The checks every object's metadata gets on create and update.
pub fn validate_object_meta(
    meta: &ObjectMeta,
    namespaced: bool,
    rule: NameRule,
    errs: &mut Vec<FieldError>,
) {
    match meta.name.as_deref() {
        None | Some("") => errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        )),
        Some(name) => validate_name("metadata.name", name, rule, errs),
    }
    match (namespaced, meta.namespace.as_deref()) {
        (true, None | Some("")) => errs.push(FieldError::required("metadata.namespace", "")),
        (true, Some(ns)) => validate_name("metadata.namespace", ns, NameRule::Label, errs),
        (false, Some(ns)) if !ns.is_empty() => errs.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        )),
        _ => {}
    }
    if let Some(labels) = &meta.labels {
        validate_labels("metadata.labels", labels, errs);
    }
    if let Some(annotations) = &meta.annotations {
        validate_annotations("metadata.annotations", annotations, errs);
    }
    for (i, owner) in meta.owner_references.iter().flatten().enumerate() {
        let f = format!("metadata.ownerReferences[{i}]");
        if owner.api_version.is_empty() {
            errs.push(FieldError::invalid(
                format!("{f}.apiVersion"),
                "",
                "version must not be empty",
            ));
        }
        if owner.kind.is_empty() {
            errs.push(FieldError::invalid(
                format!("{f}.kind"),
                "",
                "kind must not be empty",
            ));
        }
        if owner.name.is_empty() {
            errs.push(FieldError::invalid(
                format!("{f}.name"),
                "",
                "name must not be empty",
            ));
        }
        if owner.uid.is_empty() {
            errs.push(FieldError::invalid(
                format!("{f}.uid"),
                "",
                "uid must not be empty",
            ));
        }
    }
    let controllers = meta
        .owner_references
        .iter()
        .flatten()
        .filter(|o| o.controller == Some(true))
        .count();
    if controllers > 1 {
        errs.push(FieldError::invalid(
            "metadata.ownerReferences",
            controllers,
            "Only one reference can have Controller set to true",
        ));
    }
    for (i, f) in meta.finalizers.iter().flatten().enumerate() {
        for msg in qualified_name_errors(f) {
            errs.push(FieldError::invalid(
                format!("metadata.finalizers[{i}]"),
                f,
                &msg,
            ));
        }
    }
}

/// The checks an update's metadata gets against the stored object.
pub fn validate_object_meta_update(new: &ObjectMeta, old: &ObjectMeta, errs: &mut Vec<FieldError>) {
    if new.name != old.name {
        errs.push(FieldError::immutable("metadata.name"));
    }
    if new.namespace != old.namespace {
        errs.push(FieldError::immutable("metadata.namespace"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_dns1123_subdomain("nginx-deployment"));
        assert!(is_dns1123_subdomain("a.b-c.d"));
        assert!(!is_dns1123_subdomain("My_App"));
        assert!(!is_dns1123_subdomain("../etc"));
        assert!(!is_dns1123_subdomain("-a"));
        assert!(!is_dns1123_subdomain(""));
        assert!(!is_dns1123_label("a.b"));
        assert!(is_dns1035_label("web"));
        assert!(!is_dns1035_label("1web"));
        assert!(!name_errors("My_App", NameRule::Subdomain).is_empty());
    }

    #[test]
    fn label_keys_and_values() {
        assert!(qualified_name_errors("app.kubernetes.io/name").is_empty());
        assert!(qualified_name_errors("app").is_empty());
        assert!(!qualified_name_errors("-app").is_empty());
        assert!(!qualified_name_errors("a/b/c").is_empty());
        assert!(!qualified_name_errors("Bad_Prefix/x").is_empty());
        assert!(label_value_errors("").is_empty());
        assert!(label_value_errors("v1.2_3").is_empty());
        assert!(!label_value_errors("has space").is_empty());
        assert!(!label_value_errors(&"a".repeat(64)).is_empty());
    }

    #[test]
    fn metadata_requires_a_namespace_for_namespaced_kinds() {
        let meta = ObjectMeta {
            name: Some("x".into()),
            ..Default::default()
        };
        let mut errs = Vec::new();
        validate_object_meta(&meta, true, NameRule::Subdomain, &mut errs);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.namespace");
    }
}
