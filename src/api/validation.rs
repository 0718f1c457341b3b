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

// ---------------------------------------------------------------------------------------------
// Field-level helpers shared by the kind-specific checks in `kinds/`.
// ---------------------------------------------------------------------------------------------

/// An invalid value printed without quotes, as Kubernetes prints numbers and structures:
/// `spec.replicas: Invalid value: -1: must be greater than or equal to 0`.
pub fn invalid_raw(field: impl Into<String>, raw: impl std::fmt::Display, why: &str) -> FieldError {
    FieldError {
        kind: super::error::CauseType::FieldValueInvalid,
        field: field.into(),
        detail: format!("Invalid value: {raw}: {why}"),
    }
}

/// A reference to something that does not exist in the object (a volume mount naming no
/// volume). Kubernetes' `FieldValueNotFound` has no cause type of its own here, so it is
/// reported as invalid with Kubernetes' wording.
pub fn not_found(field: impl Into<String>, value: impl std::fmt::Display) -> FieldError {
    FieldError {
        kind: super::error::CauseType::FieldValueInvalid,
        field: field.into(),
        detail: format!("Not found: \"{value}\""),
    }
}

/// Kubernetes' message for a negative count.
pub const NONNEGATIVE_MSG: &str = "must be greater than or equal to 0";

/// Reports `value < 0` at `field`.
pub fn validate_nonnegative(field: &str, value: Option<i64>, errs: &mut Vec<FieldError>) {
    if let Some(v) = value
        && v < 0
    {
        errs.push(invalid_raw(field, v, NONNEGATIVE_MSG));
    }
}

/// Reports a value outside `supported` (an empty or absent value is left to the caller).
pub fn validate_supported(
    field: &str,
    value: Option<&str>,
    supported: &[&str],
    errs: &mut Vec<FieldError>,
) {
    if let Some(v) = value
        && !supported.contains(&v)
    {
        errs.push(FieldError::not_supported(field, v, supported));
    }
}

/// Kubernetes' message for a port number out of range.
pub const PORT_NUM_MSG: &str = "must be between 1 and 65535, inclusive";

/// A TCP/UDP port number: 1–65535.
pub fn is_valid_port_num(port: i32) -> bool {
    (1..=65535).contains(&port)
}

/// Reports a port number out of range at `field`.
pub fn validate_port_num(field: &str, port: i32, errs: &mut Vec<FieldError>) {
    if !is_valid_port_num(port) {
        errs.push(invalid_raw(field, port, PORT_NUM_MSG));
    }
}

/// An IANA service name as used for port names (`IANA_SVC_NAME`): at most 15 lowercase
/// alphanumerics or '-', at least one letter, no leading/trailing or doubled '-'.
pub fn port_name_errors(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if name.len() > 15 {
        out.push("must be no more than 15 characters".to_string());
    }
    if !name.chars().all(|c| is_lower_alnum(c) || c == '-') {
        out.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !name.chars().any(|c| c.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)".to_string());
    }
    if name.contains("--") {
        out.push("must not contain consecutive hyphens".to_string());
    }
    if name.starts_with('-') || name.ends_with('-') {
        out.push("must not begin or end with a hyphen".to_string());
    }
    out
}

/// Reports a port given as a number or an IANA name (probes, service target ports).
pub fn validate_port_num_or_name(
    field: &str,
    port: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString,
    errs: &mut Vec<FieldError>,
) {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    match port {
        IntOrString::Int(n) => validate_port_num(field, *n, errs),
        IntOrString::String(s) => {
            for msg in port_name_errors(s) {
                errs.push(FieldError::invalid(field, s, &msg));
            }
        }
    }
}

/// The protocols a port may use.
pub const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];

/// An environment variable name. Kubernetes 1.34 accepts any printable ASCII except '='
/// (`RelaxedEnvironmentVariableValidation`).
pub fn env_var_name_errors(name: &str) -> Vec<String> {
    if name.is_empty() || !name.chars().all(|c| (' '..='~').contains(&c) && c != '=') {
        vec![
            "a valid environment variable name must consist only of printable ASCII characters other than '='"
                .to_string(),
        ]
    } else {
        Vec::new()
    }
}

/// A ConfigMap / Secret key: `[-._a-zA-Z0-9]+`, at most 253 characters, not `.` or `..`.
pub fn config_key_errors(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    if key.len() > 253 {
        out.push("must be no more than 253 characters".to_string());
    }
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        out.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string());
    }
    if key == "." {
        out.push("must not be '.'".to_string());
    } else if key == ".." {
        out.push("must not be '..'".to_string());
    } else if key.starts_with("..") {
        out.push("must not start with '..'".to_string());
    }
    out
}

/// A DNS subdomain, optionally with a leading `*.` wildcard label (Ingress hosts).
pub fn wildcard_subdomain_errors(host: &str) -> Vec<String> {
    match host.strip_prefix("*.") {
        Some(rest) if is_dns1123_subdomain(rest) && !rest.contains('*') => Vec::new(),
        _ => vec!["a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string()],
    }
}

/// Kubernetes' message for a bad IP address.
pub const IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
/// Kubernetes' message for a bad CIDR.
pub const CIDR_MSG: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// Parses an IP address as Kubernetes does (no zone, no leading zeros in IPv4).
pub fn parse_ip(s: &str) -> Option<std::net::IpAddr> {
    s.parse().ok()
}

/// Parses `addr/prefix`; the address need not be the network address.
pub fn parse_cidr(s: &str) -> Option<(std::net::IpAddr, u8)> {
    let (addr, len) = s.split_once('/')?;
    let ip = parse_ip(addr)?;
    if len.is_empty() || !len.chars().all(|c| c.is_ascii_digit()) || len.len() > 3 {
        return None;
    }
    let len: u8 = len.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

/// Whether the network `outer` contains the network `inner` and is strictly larger.
pub fn cidr_strictly_contains(
    outer: (std::net::IpAddr, u8),
    inner: (std::net::IpAddr, u8),
) -> bool {
    use std::net::IpAddr;
    let bits = |ip: IpAddr| -> (u128, u32) {
        match ip {
            IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
            IpAddr::V6(v) => (u128::from(v), 128),
        }
    };
    let ((o, ow), (i, iw)) = (bits(outer.0), bits(inner.0));
    if ow != iw || outer.1 >= inner.1 {
        return false;
    }
    let shift = ow - u32::from(outer.1);
    let mask = if shift >= 128 {
        0
    } else {
        (u128::MAX << shift) & (u128::MAX >> (128 - ow))
    };
    o & mask == i & mask
}

/// Whether `labels` satisfy `selector` (an empty selector matches everything).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|req| {
        let values = req.values.as_deref().unwrap_or_default();
        let value = labels.get(&req.key);
        match req.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// Whether a selector selects nothing in particular (no labels, no expressions).
pub fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

/// A label map as Go prints it in Kubernetes' messages: `map[string]string{"app":"web"}`.
pub fn go_string_map(map: Option<&BTreeMap<String, String>>) -> String {
    let inner: Vec<String> = map
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k:?}:{v:?}"))
        .collect();
    format!("map[string]string{{{}}}", inner.join(", "))
}

// ---------------------------------------------------------------------------------------------
// Quantities
// ---------------------------------------------------------------------------------------------

/// Kubernetes' message for a malformed quantity.
pub const QUANTITY_MSG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// The value of a `resource.Quantity`, exact to the nanounit, for comparisons.
///
/// Values beyond ±1.7e29 saturate; Kubernetes itself caps quantities at 2^63-1, so nothing
/// a manifest means is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct QuantityValue {
    nanos: i128,
}

impl QuantityValue {
    pub const ZERO: QuantityValue = QuantityValue { nanos: 0 };

    pub fn is_zero(self) -> bool {
        self.nanos == 0
    }
    pub fn is_negative(self) -> bool {
        self.nanos < 0
    }
    /// Whether the value is a whole number of units (`3`, `1k`, not `1500m`).
    pub fn is_integer(self) -> bool {
        self.nanos % 1_000_000_000 == 0
    }
    /// The value in milliunits, saturating (`1500m` → 1500, `2` → 2000).
    pub fn milli(self) -> i128 {
        self.nanos / 1_000_000 + i128::from(self.nanos % 1_000_000 > 0)
    }
    /// Sum of two values, saturating.
    pub fn saturating_add(self, other: QuantityValue) -> QuantityValue {
        QuantityValue {
            nanos: self.nanos.saturating_add(other.nanos),
        }
    }
}

/// Parses a quantity (`100m`, `1.5Gi`, `1e3`, `-2k`) as Kubernetes' `resource.ParseQuantity`
/// does; the error is Kubernetes' message.
pub fn parse_quantity(s: &str) -> Result<QuantityValue, String> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let num_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(num_len);
    if number.is_empty() {
        return Err(QUANTITY_MSG.to_string());
    }
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if frac_part.contains('.') || (int_part.is_empty() && frac_part.is_empty()) {
        return Err("unable to parse numeric part of quantity".to_string());
    }
    let suffix_chars = suffix.trim_start_matches(|c: char| "eEinumkKMGTP".contains(c));
    let suffix_chars = suffix_chars
        .strip_prefix(['+', '-'])
        .unwrap_or(suffix_chars);
    if !suffix_chars.chars().all(|c| c.is_ascii_digit()) {
        return Err(QUANTITY_MSG.to_string());
    }
    let (binary_shift, exp10) = parse_quantity_suffix(suffix)
        .ok_or_else(|| "unable to parse quantity's suffix".to_string())?;

    let mut mantissa: u128 = 0;
    for d in int_part.bytes().chain(frac_part.bytes()) {
        mantissa = mantissa
            .saturating_mul(10)
            .saturating_add(u128::from(d - b'0'));
    }
    mantissa = mantissa.saturating_mul(1u128 << binary_shift);
    // Nanounits: shift the decimal point by the suffix, the fraction and 10^9.
    let frac_len = i64::try_from(frac_part.len()).unwrap_or(i64::MAX);
    let shift = i64::from(exp10).saturating_add(9).saturating_sub(frac_len);
    if shift >= 0 {
        for _ in 0..shift.min(40) {
            if mantissa == 0 {
                break;
            }
            mantissa = mantissa.saturating_mul(10);
        }
    } else {
        // Kubernetes rounds precision it cannot hold up, never to zero.
        for _ in 0..shift.unsigned_abs().min(40) {
            if mantissa <= 1 {
                break;
            }
            mantissa = mantissa.div_ceil(10);
        }
    }
    let magnitude = i128::try_from(mantissa).unwrap_or(i128::MAX);
    Ok(QuantityValue {
        nanos: if negative { -magnitude } else { magnitude },
    })
}

/// `(binary shift, decimal exponent)` of a quantity suffix.
fn parse_quantity_suffix(suffix: &str) -> Option<(u32, i32)> {
    let known = match suffix {
        "" => Some((0, 0)),
        "n" => Some((0, -9)),
        "u" => Some((0, -6)),
        "m" => Some((0, -3)),
        "k" => Some((0, 3)),
        "M" => Some((0, 6)),
        "G" => Some((0, 9)),
        "T" => Some((0, 12)),
        "P" => Some((0, 15)),
        "E" => Some((0, 18)),
        "Ki" => Some((10, 0)),
        "Mi" => Some((20, 0)),
        "Gi" => Some((30, 0)),
        "Ti" => Some((40, 0)),
        "Pi" => Some((50, 0)),
        "Ei" => Some((60, 0)),
        _ => None,
    };
    if known.is_some() {
        return known;
    }
    let exp = suffix.strip_prefix(['e', 'E'])?;
    let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let value: i32 = digits.parse().unwrap_or(i32::MAX);
    Some((0, if exp.starts_with('-') { -value } else { value }))
}

/// Checks a quantity at `field`, returning its value when it parses.
pub fn validate_quantity(
    field: &str,
    q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
    errs: &mut Vec<FieldError>,
) -> Option<QuantityValue> {
    match parse_quantity(&q.0) {
        Ok(v) => Some(v),
        Err(msg) => {
            errs.push(FieldError::invalid(field, &q.0, &msg));
            None
        }
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

    #[test]
    fn quantities_parse_and_compare() {
        let q = |s: &str| parse_quantity(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(q("1"), q("1000m"));
        assert_eq!(q("1k"), q("1e3"));
        assert_eq!(q("1Ki"), q("1024"));
        assert_eq!(q("1.5Gi"), q("1536Mi"));
        assert_eq!(q("0.5"), q("500m"));
        assert_eq!(q("+2"), q("2"));
        assert_eq!(q("1E"), q("1e18"));
        assert_eq!(q("100n"), q("0.1u"));
        assert!(q("128Mi") > q("100M"));
        assert!(q("-1").is_negative());
        assert!(q("0").is_zero() && q("0Gi").is_zero());
        assert!(q("3").is_integer() && !q("1500m").is_integer());
        assert_eq!(q("1500m").milli(), 1500);
        assert!(
            q("0.1m") > QuantityValue::ZERO,
            "sub-milli precision rounds up, never to zero"
        );
        assert!(q("99999999999999999999999999Ei") > q("1Ei"), "saturates");
        for bad in [
            "", "2Gb", "1.2.3", "Gi", "1 Gi", "one", ".", "1e", "1Kib", "--1", "1e+",
        ] {
            assert!(parse_quantity(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(parse_quantity("2Gb"), Err(QUANTITY_MSG.to_string()));
        assert_eq!(
            parse_quantity("1Kii"),
            Err("unable to parse quantity's suffix".to_string())
        );
    }

    #[test]
    fn port_names_env_names_and_config_keys() {
        assert!(port_name_errors("http").is_empty());
        assert!(port_name_errors("web-8080").is_empty());
        assert!(!port_name_errors("8080").is_empty());
        assert!(!port_name_errors("HTTP").is_empty());
        assert!(!port_name_errors("a--b").is_empty());
        assert!(!port_name_errors("-web").is_empty());
        assert!(!port_name_errors("a-very-long-port").is_empty());
        assert!(env_var_name_errors("PATH").is_empty());
        assert!(env_var_name_errors("my.var-1").is_empty());
        assert!(env_var_name_errors("1ST").is_empty(), "relaxed in 1.34");
        assert!(!env_var_name_errors("A=B").is_empty());
        assert!(!env_var_name_errors("tab\there").is_empty());
        assert!(config_key_errors("app.properties").is_empty());
        assert!(config_key_errors(".env").is_empty());
        assert!(!config_key_errors("..data").is_empty());
        assert!(!config_key_errors("a/b").is_empty());
        assert!(!config_key_errors("").is_empty());
    }

    #[test]
    fn cidrs_and_selectors() {
        let c = |s: &str| parse_cidr(s).unwrap_or_else(|| panic!("{s}"));
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("10.0.0.0").is_none());
        assert!(parse_cidr("10.0.0.0/+8").is_none());
        assert!(cidr_strictly_contains(c("10.0.0.0/8"), c("10.1.0.0/16")));
        assert!(!cidr_strictly_contains(c("10.0.0.0/8"), c("10.0.0.0/8")));
        assert!(!cidr_strictly_contains(c("10.0.0.0/8"), c("11.0.0.0/16")));
        assert!(cidr_strictly_contains(c("0.0.0.0/0"), c("192.168.1.0/24")));
        assert!(cidr_strictly_contains(
            c("2001:db8::/32"),
            c("2001:db8:1::/48")
        ));
        assert!(!cidr_strictly_contains(c("2001:db8::/32"), c("10.0.0.0/8")));

        let labels: BTreeMap<String, String> = [
            ("app".to_string(), "web".to_string()),
            ("tier".into(), "fe".into()),
        ]
        .into();
        let sel: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["fe", "be"]},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        }))
        .expect("selector");
        assert!(selector_matches(&sel, &labels));
        let sel: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["fe"]}]
        }))
        .expect("selector");
        assert!(!selector_matches(&sel, &labels));
        assert!(selector_is_empty(&LabelSelector::default()));
        assert_eq!(
            go_string_map(Some(&labels)),
            "map[string]string{\"app\":\"web\", \"tier\":\"fe\"}"
        );
    }
}
