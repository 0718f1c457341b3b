//! Label and field selectors, as Kubernetes' apimachinery `labels` and `fields` packages
//! define them: the string syntax of `?labelSelector=` / `?fieldSelector=` (and `kubectl -l`
//! / `--field-selector`), the set-based `metav1.LabelSelector` of workload specs, matching,
//! and the canonical string form.
//!
//! A selector is parsed and validated once, then matched against every object of a list and
//! every event of a watch. So both types are immutable, share their requirements behind an
//! `Arc` (a clone is a reference-count bump) and match without allocating (field values
//! that are numbers are the one exception). Parsing never panics: every input either yields
//! a selector or a [`SelectorError`] worded as Kubernetes words it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::Value;

use super::registry::ResourceType;
use super::validation::{label_value_errors, qualified_name_errors};

/// A selector that cannot be parsed, or asks for a field the kind does not support.
///
/// The server answers these with 400 Bad Request and the message as is.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{message}")]
pub struct SelectorError {
    pub message: String,
}

impl SelectorError {
    fn new(message: impl Into<String>) -> Self {
        SelectorError {
            message: message.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------------------

/// The operator of one label requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `k=v` (also what `matchLabels` entries become).
    Equals,
    /// `k==v`: the same as `=`, remembered so the string form round-trips.
    DoubleEquals,
    /// `k!=v`: true when the label is absent or differs.
    NotEquals,
    /// `k in (a,b)`.
    In,
    /// `k notin (a,b)`: true when the label is absent or not in the set.
    NotIn,
    /// `k`.
    Exists,
    /// `!k`.
    DoesNotExist,
    /// `k>5`: the label parses as an integer greater than the value.
    GreaterThan,
    /// `k<5`: the label parses as an integer less than the value.
    LessThan,
}

/// One requirement of a label selector: a key, an operator and its values.
///
/// Values are kept sorted and without duplicates (a set, as in Kubernetes), which gives the
/// canonical string form and lets matching binary-search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement, validating the key, the values and their number as
    /// Kubernetes' `labels.NewRequirement` does.
    pub fn new(
        key: impl Into<String>,
        operator: Operator,
        values: impl IntoIterator<Item = String>,
    ) -> Result<Self, SelectorError> {
        let key = key.into();
        let mut values: Vec<String> = values.into_iter().collect();
        values.sort();
        values.dedup();
        validate_key(&key)?;
        let count_error = match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                Some("for 'in', 'notin' operators, values set can't be empty")
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                Some("exact-match compatibility requires one single value")
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                Some("values set must be empty for exists and does not exist")
            }
            Operator::GreaterThan | Operator::LessThan if values.len() != 1 => {
                Some("for 'Gt', 'Lt' operators, exactly one value is required")
            }
            _ => None,
        };
        if let Some(msg) = count_error {
            return Err(SelectorError::new(format!(
                "invalid values for key {key:?}: {msg}"
            )));
        }
        for v in &values {
            if matches!(operator, Operator::GreaterThan | Operator::LessThan)
                && v.parse::<i64>().is_err()
            {
                return Err(SelectorError::new(format!(
                    "invalid value {v:?} for key {key:?}: for 'Gt', 'Lt' operators, the value must be an integer"
                )));
            }
            let errs = label_value_errors(v);
            if !errs.is_empty() {
                return Err(SelectorError::new(format!(
                    "invalid label value {v:?} for key {key:?}: {}",
                    errs.join("; ")
                )));
            }
        }
        Ok(Requirement {
            key,
            operator,
            values,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, sorted and de-duplicated.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether a label value (`None`: the label is absent) satisfies this requirement.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let contains = |v: &str| {
            self.values
                .binary_search_by(|probe| probe.as_str().cmp(v))
                .is_ok()
        };
        match self.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => value.is_some_and(contains),
            // Absent labels satisfy the negative operators, as in Kubernetes.
            Operator::NotEquals | Operator::NotIn => !value.is_some_and(contains),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(label), Some(bound)) = (value, self.values.first()) else {
                    return false;
                };
                let (Ok(label), Ok(bound)) = (label.parse::<i64>(), bound.parse::<i64>()) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    label > bound
                } else {
                    label < bound
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.values.first().map(String::as_str).unwrap_or_default();
        match self.operator {
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
            Operator::Equals => write!(f, "{}={first}", self.key),
            Operator::DoubleEquals => write!(f, "{}=={first}", self.key),
            Operator::NotEquals => write!(f, "{}!={first}", self.key),
            Operator::GreaterThan => write!(f, "{}>{first}", self.key),
            Operator::LessThan => write!(f, "{}<{first}", self.key),
            Operator::In | Operator::NotIn => {
                let op = if self.operator == Operator::In {
                    "in"
                } else {
                    "notin"
                };
                write!(f, "{} {op} ({})", self.key, self.values.join(","))
            }
        }
    }
}

fn validate_key(key: &str) -> Result<(), SelectorError> {
    let errs = qualified_name_errors(key);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(SelectorError::new(format!(
            "invalid label key {key:?}: {}",
            errs.join("; ")
        )))
    }
}

/// A label selector: requirements that must all hold. No requirements match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// Sorted by key (stable), as Kubernetes sorts them; this is the canonical order.
    requirements: Arc<[Requirement]>,
}

impl LabelSelector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parses the string syntax of `?labelSelector=` and `kubectl -l`: comma-separated
    /// `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, `k>n`, `k<n`.
    /// The empty string matches everything.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let requirements = Parser::new(s).parse()?;
        Ok(Self::from_requirements(requirements))
    }

    /// Converts a `metav1.LabelSelector` (`matchLabels` + `matchExpressions`), as
    /// Kubernetes' `LabelSelectorAsSelector`. One with nothing in it matches everything.
    pub fn from_k8s(sel: &metav1::LabelSelector) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            requirements.push(Requirement::new(k.as_str(), Operator::Equals, [v.clone()])?);
        }
        for expr in sel.match_expressions.iter().flatten() {
            let operator = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(SelectorError::new(format!(
                        "{other:?} is not a valid label selector operator"
                    )));
                }
            };
            let values = expr.values.iter().flatten().cloned();
            requirements.push(Requirement::new(expr.key.as_str(), operator, values)?);
        }
        Ok(Self::from_requirements(requirements))
    }

    /// An equality selector from a label map, such as a Service's `spec.selector`, as
    /// Kubernetes' `SelectorFromValidatedSet`: the map is assumed to have passed label
    /// validation already, so this cannot fail. An empty map matches everything (a
    /// Service with no selector selects nothing; that is the caller's rule).
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Self {
        let requirements = labels.iter().map(|(k, v)| Requirement {
            key: k.clone(),
            operator: Operator::Equals,
            values: vec![v.clone()],
        });
        Self::from_requirements(requirements)
    }

    /// A selector from requirements built with [`Requirement::new`].
    pub fn from_requirements(requirements: impl IntoIterator<Item = Requirement>) -> Self {
        let mut requirements: Vec<Requirement> = requirements.into_iter().collect();
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements: requirements.into(),
        }
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True when the selector has no requirements (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether a label set satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|k| labels.get(k).map(String::as_str))
    }

    /// Whether an object's `metadata.labels` satisfy every requirement. An object without
    /// labels has none (so it matches `!k` and `k!=v`, and not `k`).
    pub fn matches_object(&self, obj: &Value) -> bool {
        let labels = obj
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object);
        self.matches_with(|k| labels.and_then(|l| l.get(k)).and_then(Value::as_str))
    }

    fn matches_with<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements
            .iter()
            .all(|r| r.matches_value(get(&r.key)))
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical form: requirements sorted by key, joined by `,` (`app=web,tier in (a,b)`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Tokens of the label selector syntax. `in` and `notin` are lexed as identifiers: they are
/// keywords only where an operator is expected, so `in=notin` is a valid requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Not,
    NotEquals,
    Equals,
    DoubleEquals,
    GreaterThan,
    LessThan,
    OpenParen,
    CloseParen,
    Comma,
    End,
}

impl Token {
    /// The text quoted in error messages (Kubernetes quotes the end of input as '').
    fn literal(&self) -> &str {
        match self {
            Token::Ident(s) => s,
            Token::Not => "!",
            Token::NotEquals => "!=",
            Token::Equals => "=",
            Token::DoubleEquals => "==",
            Token::GreaterThan => ">",
            Token::LessThan => "<",
            Token::OpenParen => "(",
            Token::CloseParen => ")",
            Token::Comma => ",",
            Token::End => "",
        }
    }
}

fn is_selector_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

/// Splits the input into tokens. Every input lexes: anything that is neither whitespace
/// nor a symbol is part of an identifier, and validation rejects what is not a valid key
/// or value afterwards.
fn lex(s: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if is_selector_whitespace(c) {
            continue;
        }
        let next_is_eq = chars.peek() == Some(&'=');
        let token = match c {
            '!' if next_is_eq => {
                chars.next();
                Token::NotEquals
            }
            '=' if next_is_eq => {
                chars.next();
                Token::DoubleEquals
            }
            '!' => Token::Not,
            '=' => Token::Equals,
            '>' => Token::GreaterThan,
            '<' => Token::LessThan,
            '(' => Token::OpenParen,
            ')' => Token::CloseParen,
            ',' => Token::Comma,
            _ => {
                let mut ident = String::from(c);
                while let Some(&n) = chars.peek() {
                    if is_selector_whitespace(n) || is_special(n) {
                        break;
                    }
                    ident.push(n);
                    chars.next();
                }
                Token::Ident(ident)
            }
        };
        tokens.push(token);
    }
    tokens
}

/// A recursive-descent parser with the grammar and error wording of Kubernetes'
/// `labels.Parser`.
struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn new(s: &str) -> Self {
        Parser {
            tokens: lex(s),
            pos: 0,
        }
    }

    fn peek(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&Token::End)
    }

    fn next(&mut self) -> Token {
        let token = self.tokens.get(self.pos).cloned().unwrap_or(Token::End);
        self.pos = self.pos.saturating_add(1);
        token
    }

    fn parse(mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            match self.peek() {
                Token::Ident(_) | Token::Not => {
                    let r = self.requirement().map_err(|e| {
                        SelectorError::new(format!("unable to parse requirement: {e}"))
                    })?;
                    requirements.push(r);
                    match self.next() {
                        Token::End => return Ok(requirements),
                        Token::Comma => match self.peek() {
                            Token::Ident(_) | Token::Not => {}
                            t => {
                                return Err(SelectorError::new(format!(
                                    "found '{}', expected: identifier after ','",
                                    t.literal()
                                )));
                            }
                        },
                        t => {
                            return Err(SelectorError::new(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.literal()
                            )));
                        }
                    }
                }
                Token::End => return Ok(requirements),
                t => {
                    return Err(SelectorError::new(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.literal()
                    )));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let mut token = self.next();
        let negated = token == Token::Not;
        if negated {
            token = self.next();
        }
        let key = match token {
            Token::Ident(k) => k,
            t => {
                return Err(SelectorError::new(format!(
                    "found '{}', expected: identifier",
                    t.literal()
                )));
            }
        };
        // Validate the key before looking at the operator, so `-bad=x` reports the key.
        validate_key(&key)?;
        if negated {
            return Requirement::new(key, Operator::DoesNotExist, []);
        }
        if matches!(self.peek(), Token::End | Token::Comma) {
            return Requirement::new(key, Operator::Exists, []);
        }
        let operator = match self.next() {
            Token::Ident(k) if k == "in" => Operator::In,
            Token::Ident(k) if k == "notin" => Operator::NotIn,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::NotEquals => Operator::NotEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            t => {
                return Err(SelectorError::new(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    t.literal()
                )));
            }
        };
        let values = match operator {
            Operator::In | Operator::NotIn => self.set_values()?,
            _ => self.exact_value()?,
        };
        Requirement::new(key, operator, values)
    }

    /// `(a,b)`. Empty members are empty strings: `()` is `{""}`, `(a,)` is `{"",a}`.
    fn set_values(&mut self) -> Result<Vec<String>, SelectorError> {
        match self.next() {
            Token::OpenParen => {}
            t => {
                return Err(SelectorError::new(format!(
                    "found '{}' expected: '('",
                    t.literal()
                )));
            }
        }
        match self.peek() {
            Token::Ident(_) | Token::Comma => {
                let values = self.value_list()?;
                match self.next() {
                    Token::CloseParen => Ok(values),
                    t => Err(SelectorError::new(format!(
                        "found '{}', expected: ')'",
                        t.literal()
                    ))),
                }
            }
            Token::CloseParen => {
                self.next();
                Ok(vec![String::new()])
            }
            t => Err(SelectorError::new(format!(
                "found '{}', expected: ',', ')' or identifier",
                t.literal()
            ))),
        }
    }

    /// The members of a set, up to (not including) the closing parenthesis. Every
    /// iteration consumes a token, so this ends on any input.
    fn value_list(&mut self) -> Result<Vec<String>, SelectorError> {
        let mut values = Vec::new();
        loop {
            match self.next() {
                Token::Ident(v) => {
                    values.push(v);
                    match self.peek() {
                        Token::Comma => continue,
                        Token::CloseParen => return Ok(values),
                        t => {
                            return Err(SelectorError::new(format!(
                                "found '{}', expected: ',' or ')'",
                                t.literal()
                            )));
                        }
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        values.push(String::new()); // "(,"
                    }
                    match self.peek() {
                        Token::CloseParen => {
                            values.push(String::new()); // ",)"
                            return Ok(values);
                        }
                        Token::Comma => {
                            self.next();
                            values.push(String::new()); // ",,"
                        }
                        _ => {}
                    }
                }
                t => {
                    return Err(SelectorError::new(format!(
                        "found '{}', expected: ',', or identifier",
                        t.literal()
                    )));
                }
            }
        }
    }

    /// The value after `=`, `==`, `!=`, `>` or `<`; nothing (`app=`) is the empty string.
    fn exact_value(&mut self) -> Result<Vec<String>, SelectorError> {
        if matches!(self.peek(), Token::End | Token::Comma) {
            return Ok(vec![String::new()]);
        }
        match self.next() {
            Token::Ident(v) => Ok(vec![v]),
            t => Err(SelectorError::new(format!(
                "found '{}', expected: identifier",
                t.literal()
            ))),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------------------

/// A field a kind can be selected by: its selector label and where its value lives.
#[derive(Debug, PartialEq, Eq)]
struct FieldDef {
    label: &'static str,
    /// JSON paths tried in order; the first holding a non-empty value wins (an Event's
    /// `source` falls back to `reportingComponent`, as in Kubernetes).
    paths: &'static [&'static [&'static str]],
    /// What an absent field reads as: the zero value of the Go field Kubernetes formats,
    /// so `spec.unschedulable=false` matches a Node that never set it.
    missing: &'static str,
}

impl FieldDef {
    fn read<'v>(&self, obj: &'v Value) -> Cow<'v, str> {
        for path in self.paths {
            let found = path.iter().try_fold(obj, |v, seg| v.get(seg));
            match found {
                Some(Value::String(s)) if !s.is_empty() => return Cow::Borrowed(s),
                Some(Value::Bool(b)) => return Cow::Borrowed(if *b { "true" } else { "false" }),
                Some(Value::Number(n)) => return Cow::Owned(n.to_string()),
                _ => {}
            }
        }
        Cow::Borrowed(self.missing)
    }
}

macro_rules! field {
    ($label:literal $(, missing = $missing:literal)? => $([$($seg:literal),+]),+) => {
        FieldDef {
            label: $label,
            paths: &[$(&[$($seg),+]),+],
            missing: field!(@missing $($missing)?),
        }
    };
    (@missing $missing:literal) => { $missing };
    (@missing) => { "" };
}

/// Fields every kind supports.
static META_FIELDS: &[FieldDef] = &[
    field!("metadata.name" => ["metadata", "name"]),
    field!("metadata.namespace" => ["metadata", "namespace"]),
];

static POD_FIELDS: &[FieldDef] = &[
    field!("spec.nodeName" => ["spec", "nodeName"]),
    field!("spec.restartPolicy" => ["spec", "restartPolicy"]),
    field!("spec.schedulerName" => ["spec", "schedulerName"]),
    field!("spec.serviceAccountName" => ["spec", "serviceAccountName"]),
    field!("spec.hostNetwork", missing = "false" => ["spec", "hostNetwork"]),
    field!("status.phase" => ["status", "phase"]),
    field!("status.podIP" => ["status", "podIP"]),
    field!("status.nominatedNodeName" => ["status", "nominatedNodeName"]),
];

static EVENT_FIELDS: &[FieldDef] = &[
    field!("involvedObject.kind" => ["involvedObject", "kind"]),
    field!("involvedObject.namespace" => ["involvedObject", "namespace"]),
    field!("involvedObject.name" => ["involvedObject", "name"]),
    field!("involvedObject.uid" => ["involvedObject", "uid"]),
    field!("involvedObject.apiVersion" => ["involvedObject", "apiVersion"]),
    field!("involvedObject.resourceVersion" => ["involvedObject", "resourceVersion"]),
    field!("involvedObject.fieldPath" => ["involvedObject", "fieldPath"]),
    field!("reason" => ["reason"]),
    field!("reportingComponent" => ["reportingComponent"]),
    field!("source" => ["source", "component"], ["reportingComponent"]),
    field!("type" => ["type"]),
];

static SECRET_FIELDS: &[FieldDef] = &[field!("type" => ["type"])];

static NAMESPACE_FIELDS: &[FieldDef] = &[field!("status.phase" => ["status", "phase"])];

static NODE_FIELDS: &[FieldDef] =
    &[field!("spec.unschedulable", missing = "false" => ["spec", "unschedulable"])];

static REPLICASET_FIELDS: &[FieldDef] =
    &[field!("status.replicas", missing = "0" => ["status", "replicas"])];

// Kubernetes names the selector label `status.successful` but reads `status.succeeded`.
static JOB_FIELDS: &[FieldDef] =
    &[field!("status.successful", missing = "0" => ["status", "succeeded"])];

fn kind_fields(rt: &ResourceType) -> &'static [FieldDef] {
    match (rt.group, rt.kind) {
        ("", "Pod") => POD_FIELDS,
        ("", "Event") => EVENT_FIELDS,
        ("", "Secret") => SECRET_FIELDS,
        ("", "Namespace") => NAMESPACE_FIELDS,
        ("", "Node") => NODE_FIELDS,
        ("apps", "ReplicaSet") => REPLICASET_FIELDS,
        ("batch", "Job") => JOB_FIELDS,
        _ => &[],
    }
}

fn field_def(rt: &ResourceType, label: &str) -> Option<&'static FieldDef> {
    META_FIELDS
        .iter()
        .chain(kind_fields(rt))
        .find(|d| d.label == label)
}

/// One `field=value` or `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    field: &'static FieldDef,
    value: String,
    negated: bool,
}

/// A field selector: terms that must all hold. No terms match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Arc<[FieldTerm]>,
}

impl FieldSelector {
    /// Parses `?fieldSelector=`: comma-separated `field=value`, `field==value` or
    /// `field!=value`, with `\,`, `\=` and `\\` escaping those characters in values.
    /// Only the fields Kubernetes supports for the kind are accepted; any other is
    /// `field label not supported: <field>`. Whitespace around fields and values is
    /// ignored (Kubernetes would reject the field instead).
    pub fn parse(s: &str, rt: &ResourceType) -> Result<Self, SelectorError> {
        let mut parts = split_terms(s);
        // Kubernetes sorts the terms, which makes the string form canonical.
        parts.sort_unstable();
        let mut terms = Vec::with_capacity(parts.len());
        for part in parts {
            if part.trim().is_empty() {
                continue;
            }
            let Some((label, negated, raw_value)) = split_term(part) else {
                return Err(SelectorError::new(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let value = unescape_value(raw_value.trim())?;
            let label = label.trim();
            let Some(field) = field_def(rt, label) else {
                return Err(SelectorError::new(format!(
                    "field label not supported: {label}"
                )));
            };
            terms.push(FieldTerm {
                field,
                value,
                negated,
            });
        }
        Ok(FieldSelector {
            terms: terms.into(),
        })
    }

    /// The selector that matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// True when the selector has no terms (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether the object satisfies every term. Values compare as strings: an absent
    /// field as its zero value (`""`, or `false`/`0` for boolean and count fields),
    /// booleans as `true`/`false`, numbers in decimal.
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms
            .iter()
            .all(|t| (t.field.read(obj) == t.value.as_str()) != t.negated)
    }

    /// The value a `field=value` term requires, if there is one (`metadata.name=web`
    /// lets the store fetch one object instead of scanning), as Kubernetes'
    /// `RequiresExactMatch`.
    pub fn exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| !t.negated && t.field.label == field)
            .map(|t| t.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    /// The canonical form: terms sorted, `field=value` / `field!=value`, values escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if t.negated { "!=" } else { "=" };
            write!(f, "{}{op}", t.field.label)?;
            for c in t.value.chars() {
                if matches!(c, '\\' | ',' | '=') {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Splits on commas that are not escaped by a backslash.
fn split_terms(s: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(s.get(start..i).unwrap_or_default());
            start = i + 1; // ok: ',' is one byte, so this is the next char boundary
        }
    }
    terms.push(s.get(start..).unwrap_or_default());
    terms
}

/// Splits `field<op>value` at the first operator; `!=` and `==` win over `=` at the same
/// position. Returns the field, whether the term is negated, and the raw value.
fn split_term(term: &str) -> Option<(&str, bool, &str)> {
    for (i, _) in term.char_indices() {
        let rest = term.get(i..)?;
        let head = term.get(..i)?;
        if let Some(v) = rest.strip_prefix("!=") {
            return Some((head, true, v));
        }
        if let Some(v) = rest.strip_prefix("==") {
            return Some((head, false, v));
        }
        if let Some(v) = rest.strip_prefix('=') {
            return Some((head, false, v));
        }
    }
    None
}

/// Undoes `\\`, `\,` and `\=`; an unescaped `,` or `=`, or any other escape, is an error.
fn unescape_value(s: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::new(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                )));
            }
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' || c == '=' {
            return Err(SelectorError::new(format!(
                "invalid field selector: unescaped character in value: '{c}'"
            )));
        } else {
            out.push(c);
        }
    }
    if escaped {
        return Err(SelectorError::new(
            "invalid field selector: invalid escape sequence: \\",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry::by_kind;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn err(s: &str) -> String {
        match LabelSelector::parse(s) {
            Ok(sel) => panic!("{s:?} should not parse, got {sel}"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn equality_operators() {
        let web = labels(&[("app", "web"), ("tier", "front")]);
        assert!(sel("app=web").matches(&web));
        assert!(sel("app==web").matches(&web));
        assert!(!sel("app=db").matches(&web));
        assert!(sel("app!=db").matches(&web));
        assert!(!sel("app!=web").matches(&web));
        // Absent labels satisfy != and notin.
        assert!(sel("env!=prod").matches(&web));
        assert!(sel("env notin (prod)").matches(&web));
        assert!(!sel("env=prod").matches(&web));
        assert!(sel("app=web,tier=front").matches(&web));
        assert!(!sel("app=web,tier=back").matches(&web));
    }

    #[test]
    fn set_and_existence_operators() {
        let web = labels(&[("app", "web"), ("tier", "front")]);
        assert!(sel("tier in (front,back)").matches(&web));
        assert!(!sel("tier in (back)").matches(&web));
        assert!(sel("tier notin (back)").matches(&web));
        assert!(!sel("tier notin (back,front)").matches(&web));
        assert!(sel("app").matches(&web));
        assert!(!sel("env").matches(&web));
        assert!(sel("!env").matches(&web));
        assert!(!sel("!app").matches(&web));
        // Empty members are empty strings.
        let empty = labels(&[("app", "")]);
        assert!(sel("app in ()").matches(&empty));
        assert!(sel("app=").matches(&empty));
        assert!(sel("app in (,x)").matches(&empty));
    }

    #[test]
    fn integer_comparisons() {
        let l = labels(&[("gen", "5"), ("name", "x")]);
        assert!(sel("gen>4").matches(&l));
        assert!(!sel("gen>5").matches(&l));
        assert!(sel("gen<6").matches(&l));
        assert!(!sel("name>1").matches(&l), "non-integer labels never match");
        assert!(!sel("missing<1").matches(&l));
        assert!(err("gen>x").contains("must be an integer"));
    }

    #[test]
    fn whitespace_is_tolerated() {
        let s = sel("  app = web ,\ttier   notin ( a , b ) , ! env ,x");
        assert_eq!(s.to_string(), "app=web,!env,tier notin (a,b),x");
        let s2 = sel("app=web,tier notin (a,b),!env,x");
        assert_eq!(s, s2);
    }

    #[test]
    fn canonical_string_sorts_by_key_and_values() {
        let s = sel("tier in (b,a,b),app=web");
        assert_eq!(s.to_string(), "app=web,tier in (a,b)");
        assert_eq!(sel("a==1,b!=2,!c,d,e<3").to_string(), "a==1,b!=2,!c,d,e<3");
        assert_eq!(sel("app in ()").to_string(), "app in ()");
        assert_eq!(sel("").to_string(), "");
        assert_eq!("app=web".parse::<LabelSelector>(), Ok(sel("app=web")));
    }

    #[test]
    fn keywords_are_identifiers_outside_operator_position() {
        let l = labels(&[("in", "notin")]);
        assert!(sel("in=notin").matches(&l));
        assert!(sel("in in (notin)").matches(&l));
    }

    #[test]
    fn empty_selector_matches_everything() {
        for s in ["", "   ", "\t\n"] {
            let e = sel(s);
            assert!(e.is_empty());
            assert!(e.matches(&BTreeMap::new()));
            assert!(e.matches_object(&json!({})));
        }
        assert!(LabelSelector::everything().is_empty());
        assert!(!sel("a").is_empty());
    }

    #[test]
    fn errors_are_worded_as_kubernetes() {
        assert_eq!(
            err("app in (a"),
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(
            err("="),
            "found '=', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            err(",,"),
            "found ',', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(err("a,"), "found '', expected: identifier after ','");
        assert_eq!(err("a,,b"), "found ',', expected: identifier after ','");
        assert_eq!(
            err("app web"),
            "unable to parse requirement: found 'web', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            err("app in a"),
            "unable to parse requirement: found 'a' expected: '('"
        );
        assert_eq!(
            err("!app=web"),
            "found '=', expected: ',' or 'end of string'"
        );
        assert_eq!(
            err("app=(x)"),
            "unable to parse requirement: found '(', expected: identifier"
        );
        assert_eq!(
            err("!"),
            "unable to parse requirement: found '', expected: identifier"
        );
        let e = err("-bad=x");
        assert!(
            e.starts_with("unable to parse requirement: invalid label key \"-bad\": name part"),
            "{e}"
        );
        assert_eq!(
            err("app=has space"),
            "found 'space', expected: ',' or 'end of string'"
        );
        let e = err("app=a/b");
        assert!(
            e.starts_with(
                "unable to parse requirement: invalid label value \"a/b\" for key \"app\""
            ),
            "{e}"
        );
    }

    #[test]
    fn adversarial_inputs_never_panic() {
        let inputs = [
            "(",
            ")",
            "((",
            "))",
            "()",
            "app in ((a))",
            "app in (a))",
            "app in (a,,)",
            "app notin",
            "app in",
            "app in (",
            "app in )",
            "!",
            "!!",
            "!!a",
            "a!",
            "a!!=b",
            "===",
            "a===b",
            "a=b=c",
            "a<",
            "a>",
            "a<>1",
            "a<=1",
            ",",
            ",,",
            ",a",
            "a,,",
            "ü",
            "ü=ü",
            "app=ü",
            "日本=語",
            "a\u{0}b",
            "a=\u{200b}",
            "🦀 in (🦀)",
            "\\",
            "a=\\,",
            "a in (b c)",
            "a in (b) c",
            "a notin () ,",
            "a=b,!c,d in (e),f notin (g)",
        ];
        for s in inputs {
            let _ = LabelSelector::parse(s);
        }
        // Every prefix of a rich selector, cut at every char boundary.
        let rich = "app.kubernetes.io/name in (web,db), tier notin (x), !legacy, gen>3, ü=1";
        for (i, _) in rich.char_indices() {
            let _ = LabelSelector::parse(&rich[..i]);
        }
    }

    #[test]
    fn random_inputs_never_panic_and_round_trip() {
        // A deterministic generator over an alphabet rich in syntax and non-ASCII.
        let alphabet: Vec<char> = "ab1=!(),<> \tin notin.-_/ü🦀".chars().collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut parsed = 0;
        for _ in 0..20_000 {
            let mut s = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 16) as usize;
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            if let Ok(sel) = LabelSelector::parse(&s) {
                parsed += 1;
                let again = LabelSelector::parse(&sel.to_string())
                    .unwrap_or_else(|e| panic!("{s:?} -> {sel} does not re-parse: {e}"));
                assert_eq!(again, sel, "{s:?} does not round-trip");
            }
        }
        assert!(
            parsed > 100,
            "the generator should produce valid selectors too"
        );
    }

    #[test]
    fn from_k8s_selector() {
        let k = metav1::LabelSelector {
            match_labels: Some(labels(&[("tier", "web"), ("app", "shop")])),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "env".into(),
                    operator: "In".into(),
                    values: Some(vec!["prod".into(), "dev".into()]),
                },
                LabelSelectorRequirement {
                    key: "legacy".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
                LabelSelectorRequirement {
                    key: "zone".into(),
                    operator: "Exists".into(),
                    values: Some(vec![]),
                },
            ]),
        };
        let s = LabelSelector::from_k8s(&k).expect("valid");
        assert_eq!(
            s.to_string(),
            "app=shop,env in (dev,prod),!legacy,tier=web,zone"
        );
        let good = labels(&[
            ("app", "shop"),
            ("tier", "web"),
            ("env", "dev"),
            ("zone", "a"),
        ]);
        assert!(s.matches(&good));
        let mut bad = good.clone();
        bad.insert("legacy".into(), "1".into());
        assert!(!s.matches(&bad));
    }

    #[test]
    fn from_k8s_empty_matches_everything_and_bad_operators_fail() {
        let empty = LabelSelector::from_k8s(&metav1::LabelSelector::default()).expect("valid");
        assert!(empty.is_empty());
        assert!(empty.matches_object(&json!({"metadata": {"labels": {"a": "b"}}})));

        let bad_op = metav1::LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "a".into(),
                operator: "Gt".into(),
                values: Some(vec!["1".into()]),
            }]),
            ..Default::default()
        };
        assert_eq!(
            LabelSelector::from_k8s(&bad_op).map_err(|e| e.message),
            Err("\"Gt\" is not a valid label selector operator".to_string())
        );
        let no_values = metav1::LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "a".into(),
                operator: "In".into(),
                values: None,
            }]),
            ..Default::default()
        };
        let e = LabelSelector::from_k8s(&no_values).expect_err("In needs values");
        assert!(e.message.contains("values set can't be empty"), "{e}");
        let bad_key = metav1::LabelSelector {
            match_labels: Some(labels(&[("Bad Key", "x")])),
            ..Default::default()
        };
        assert!(LabelSelector::from_k8s(&bad_key).is_err());
    }

    #[test]
    fn from_labels_and_matches_object() {
        let s = LabelSelector::from_labels(&labels(&[("b", "2"), ("a", "1")]));
        assert_eq!(s.to_string(), "a=1,b=2");
        assert!(s.matches_object(&json!({"metadata": {"labels": {"a": "1", "b": "2", "c": "3"}}})));
        assert!(!s.matches_object(&json!({"metadata": {"labels": {"a": "1"}}})));
        assert!(!s.matches_object(&json!({"metadata": {}})));
        assert!(!s.matches_object(&json!("not an object")));
        // Non-string label values (never stored, but never trusted) count as absent.
        assert!(sel("!a").matches_object(&json!({"metadata": {"labels": {"a": 1}}})));
        assert!(sel("!a").matches_object(&json!({})));
    }

    #[test]
    fn clones_share_requirements() {
        let s = sel("app=web,tier in (a,b)");
        let c = s.clone();
        assert!(Arc::ptr_eq(&s.requirements, &c.requirements));
    }

    // --- field selectors ---

    fn rt(api_version: &str, kind: &str) -> &'static ResourceType {
        by_kind(api_version, kind).expect("registered kind")
    }

    fn fsel(s: &str, kind: &str) -> FieldSelector {
        let api_version = match kind {
            "ReplicaSet" | "Deployment" => "apps/v1",
            "Job" => "batch/v1",
            _ => "v1",
        };
        FieldSelector::parse(s, rt(api_version, kind))
            .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn ferr(s: &str, kind: &str) -> String {
        match FieldSelector::parse(s, rt("v1", kind)) {
            Ok(f) => panic!("{s:?} should not parse, got {f}"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn pod_fields_as_kubectl_describe_node_sends_them() {
        let f = fsel(
            "spec.nodeName=node1,status.phase!=Succeeded,status.phase!=Failed",
            "Pod",
        );
        let running = json!({"metadata": {"name": "a", "namespace": "default"},
            "spec": {"nodeName": "node1"}, "status": {"phase": "Running"}});
        let done = json!({"spec": {"nodeName": "node1"}, "status": {"phase": "Succeeded"}});
        let elsewhere = json!({"spec": {"nodeName": "node2"}, "status": {"phase": "Running"}});
        assert!(f.matches(&running));
        assert!(!f.matches(&done));
        assert!(!f.matches(&elsewhere));
        // Missing fields compare as "".
        assert!(fsel("spec.nodeName=", "Pod").matches(&json!({"spec": {}})));
        assert!(fsel("spec.nodeName!=node1", "Pod").matches(&json!({})));
        assert!(fsel("spec.hostNetwork=false", "Pod").matches(&json!({"spec": {}})));
        assert!(
            fsel("spec.hostNetwork=true", "Pod").matches(&json!({"spec": {"hostNetwork": true}}))
        );
        assert!(
            fsel("status.podIP=10.0.0.5", "Pod").matches(&json!({"status": {"podIP": "10.0.0.5"}}))
        );
    }

    #[test]
    fn metadata_fields_for_every_kind() {
        let obj = json!({"metadata": {"name": "web", "namespace": "prod"}});
        for kind in ["Pod", "ConfigMap", "Service", "Deployment"] {
            assert!(fsel("metadata.name=web,metadata.namespace=prod", kind).matches(&obj));
            assert!(!fsel("metadata.name==db", kind).matches(&obj));
        }
        assert!(fsel("metadata.namespace=", "Node").matches(&json!({"metadata": {"name": "n"}})));
    }

    #[test]
    fn event_fields() {
        let f = fsel(
            "involvedObject.name=web-1,involvedObject.namespace=default,involvedObject.uid=u1,involvedObject.kind=Pod",
            "Event",
        );
        let ev = json!({"involvedObject": {"kind": "Pod", "name": "web-1",
            "namespace": "default", "uid": "u1"}, "reason": "Pulled", "type": "Normal",
            "source": {"component": "kubelet"}});
        assert!(f.matches(&ev));
        assert!(fsel("reason=Pulled,type=Normal,source=kubelet", "Event").matches(&ev));
        // `source` falls back to reportingComponent.
        let new_style = json!({"reportingComponent": "berth-scheduler"});
        assert!(fsel("source=berth-scheduler", "Event").matches(&new_style));
        assert!(fsel("reportingComponent=berth-scheduler", "Event").matches(&new_style));
        for field in [
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
        ] {
            assert!(fsel(&format!("{field}="), "Event").matches(&ev));
        }
    }

    #[test]
    fn kind_specific_fields() {
        assert!(fsel("type=Opaque", "Secret").matches(&json!({"type": "Opaque"})));
        assert!(
            fsel("status.phase=Active", "Namespace")
                .matches(&json!({"status": {"phase": "Active"}}))
        );
        let node = json!({"metadata": {"name": "n"}, "spec": {}});
        assert!(fsel("spec.unschedulable=false", "Node").matches(&node));
        assert!(
            fsel("spec.unschedulable=true", "Node")
                .matches(&json!({"spec": {"unschedulable": true}}))
        );
        assert!(fsel("status.replicas=0", "ReplicaSet").matches(&json!({"status": {}})));
        assert!(
            fsel("status.replicas=3", "ReplicaSet").matches(&json!({"status": {"replicas": 3}}))
        );
        assert!(fsel("status.successful=1", "Job").matches(&json!({"status": {"succeeded": 1}})));
    }

    #[test]
    fn unsupported_fields_are_refused_with_kubernetes_wording() {
        assert_eq!(
            ferr("spec.foo=x", "Pod"),
            "field label not supported: spec.foo"
        );
        assert_eq!(
            ferr("type=Opaque", "ConfigMap"),
            "field label not supported: type"
        );
        assert_eq!(
            ferr("status.phase=Running", "Node"),
            "field label not supported: status.phase"
        );
        assert_eq!(ferr("=x", "Pod"), "field label not supported: ");
    }

    #[test]
    fn field_syntax_errors() {
        assert_eq!(
            ferr("metadata.name", "Pod"),
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
        assert!(ferr("metadata.name=a=b", "Pod").contains("unescaped character"));
        assert!(ferr("metadata.name=a\\", "Pod").contains("invalid escape sequence"));
        assert!(ferr("metadata.name=a\\x", "Pod").contains("invalid escape sequence: \\x"));
        for s in [
            "", ",", " , ", "\\", "=", "!=", "ü=ü", "a\\,b", "\\\\=", "===",
        ] {
            let _ = FieldSelector::parse(s, rt("v1", "Pod"));
        }
    }

    #[test]
    fn field_escapes_display_and_exact_match() {
        let f = fsel("metadata.name=a\\,b\\=c\\\\d,metadata.namespace==ns", "Pod");
        assert!(f.matches(&json!({"metadata": {"name": "a,b=c\\d", "namespace": "ns"}})));
        assert_eq!(f.exact_match("metadata.name"), Some("a,b=c\\d"));
        assert_eq!(f.exact_match("spec.nodeName"), None);
        assert_eq!(
            f.to_string(),
            "metadata.name=a\\,b\\=c\\\\d,metadata.namespace=ns"
        );
        let sorted = fsel("status.phase!=Failed,metadata.name=x", "Pod");
        assert_eq!(sorted.to_string(), "metadata.name=x,status.phase!=Failed");
        assert_eq!(
            fsel("status.phase!=x", "Pod").exact_match("status.phase"),
            None
        );
        // Whitespace and empty terms are tolerated.
        let spaced = fsel(" metadata.name = x ,, ", "Pod");
        assert_eq!(spaced.to_string(), "metadata.name=x");
    }

    #[test]
    fn empty_field_selector() {
        let f = fsel("", "Pod");
        assert!(f.is_empty());
        assert!(f.matches(&json!({})));
        assert!(FieldSelector::everything().is_empty());
        assert!(!fsel("metadata.name=x", "Pod").is_empty());
    }
}
