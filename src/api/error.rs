//! API errors and their `metav1.Status` form.
//!
//! Every error a client can see is an [`ApiError`]. The server turns one into a Status body
//! exactly once ([`ApiError::to_status`]); reasons and codes are Kubernetes' own so that
//! kubectl and client libraries print the messages users know.

use serde_json::{Value, json};

/// The `reason` of a Status cause, as Kubernetes names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CauseType {
    FieldValueRequired,
    FieldValueInvalid,
    FieldValueNotSupported,
    FieldValueDuplicate,
    FieldValueForbidden,
    FieldValueTooLong,
    FieldValueTooMany,
    FieldValueTypeInvalid,
    FieldValueUnknown,
}

impl CauseType {
    pub fn as_str(self) -> &'static str {
        match self {
            CauseType::FieldValueRequired => "FieldValueRequired",
            CauseType::FieldValueInvalid => "FieldValueInvalid",
            CauseType::FieldValueNotSupported => "FieldValueNotSupported",
            CauseType::FieldValueDuplicate => "FieldValueDuplicate",
            CauseType::FieldValueForbidden => "FieldValueForbidden",
            CauseType::FieldValueTooLong => "FieldValueTooLong",
            CauseType::FieldValueTooMany => "FieldValueTooMany",
            CauseType::FieldValueTypeInvalid => "FieldValueTypeInvalid",
            CauseType::FieldValueUnknown => "FieldValueUnknown",
        }
    }
}

/// One problem with one field, as in Kubernetes' `field.Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub kind: CauseType,
    /// Field path in Kubernetes' notation, e.g. `spec.template.spec.containers[0].image`.
    pub field: String,
    /// The human part, already formatted (`Invalid value: "x": must be ...`).
    pub detail: String,
}

impl FieldError {
    pub fn required(field: impl Into<String>, why: &str) -> Self {
        let detail = if why.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {why}")
        };
        FieldError {
            kind: CauseType::FieldValueRequired,
            field: field.into(),
            detail,
        }
    }
    pub fn invalid(field: impl Into<String>, value: impl std::fmt::Display, why: &str) -> Self {
        FieldError {
            kind: CauseType::FieldValueInvalid,
            field: field.into(),
            detail: format!("Invalid value: \"{value}\": {why}"),
        }
    }
    pub fn not_supported(
        field: impl Into<String>,
        value: impl std::fmt::Display,
        supported: &[&str],
    ) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        FieldError {
            kind: CauseType::FieldValueNotSupported,
            field: field.into(),
            detail: format!(
                "Unsupported value: \"{value}\": supported values: {}",
                list.join(", ")
            ),
        }
    }
    pub fn duplicate(field: impl Into<String>, value: impl std::fmt::Display) -> Self {
        FieldError {
            kind: CauseType::FieldValueDuplicate,
            field: field.into(),
            detail: format!("Duplicate value: \"{value}\""),
        }
    }
    pub fn forbidden(field: impl Into<String>, why: &str) -> Self {
        FieldError {
            kind: CauseType::FieldValueForbidden,
            field: field.into(),
            detail: format!("Forbidden: {why}"),
        }
    }
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        FieldError {
            kind: CauseType::FieldValueTooLong,
            field: field.into(),
            detail: format!("Too long: may not be more than {max} bytes"),
        }
    }
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        FieldError {
            kind: CauseType::FieldValueTooMany,
            field: field.into(),
            detail: format!("Too many: {actual}: must have at most {max} items"),
        }
    }
    pub fn immutable(field: impl Into<String>) -> Self {
        FieldError {
            kind: CauseType::FieldValueInvalid,
            field: field.into(),
            detail: "field is immutable".to_string(),
        }
    }
    pub fn unknown(field: impl Into<String>) -> Self {
        let field = field.into();
        FieldError {
            kind: CauseType::FieldValueUnknown,
            detail: format!("unknown field \"{field}\""),
            field,
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.detail)
        } else {
            write!(f, "{}: {}", self.field, self.detail)
        }
    }
}

/// Names an object in error messages: `Deployment.apps "web"`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectRef {
    pub group: String,
    /// Kind for Invalid ("Deployment"), plural resource for NotFound ("deployments").
    pub kind: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(group: &str, kind: &str, name: &str) -> Self {
        ObjectRef {
            group: group.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
        }
    }
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

/// An error the API reports to a client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("{} \"{}\" not found", .0.qualified(), .0.name)]
    NotFound(ObjectRef),
    #[error("{} \"{}\" already exists", .0.qualified(), .0.name)]
    AlreadyExists(ObjectRef),
    #[error(
        "Operation cannot be fulfilled on {} \"{}\": {reason}", .object.qualified(), .object.name
    )]
    Conflict { object: ObjectRef, reason: String },
    #[error("{} \"{}\" is invalid: {}", .object.qualified(), .object.name, join_causes(.causes))]
    Invalid {
        object: ObjectRef,
        causes: Vec<FieldError>,
    },
    /// A path that names nothing (no object to name in the message).
    #[error("{message}")]
    NotFoundPath { message: String },
    #[error("{message}")]
    BadRequest { message: String },
    #[error("{message}")]
    Forbidden { message: String },
    #[error("{message}")]
    Unauthorized { message: String },
    #[error("{message}")]
    Gone { message: String },
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    #[error("{message}")]
    UnsupportedMediaType { message: String },
    #[error("{message}")]
    NotAcceptable { message: String },
    #[error("request entity too large: limit is {limit} bytes")]
    RequestEntityTooLarge { limit: usize },
    #[error("{message}")]
    ServiceUnavailable { message: String },
    /// The client took too long to send its request.
    #[error("{message}")]
    Timeout { message: String },
    /// The state disk is full: nothing was written.
    #[error("{message}")]
    InsufficientStorage { message: String },
    #[error("Internal error occurred: {message}")]
    Internal { message: String },
}

fn join_causes(causes: &[FieldError]) -> String {
    match causes {
        [one] => one.to_string(),
        many => format!(
            "[{}]",
            many.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::Internal {
            message: message.into(),
        }
    }

    /// HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound(_) | ApiError::NotFoundPath { .. } => 404,
            ApiError::AlreadyExists(_) | ApiError::Conflict { .. } => 409,
            ApiError::Invalid { .. } => 422,
            ApiError::BadRequest { .. } => 400,
            ApiError::Forbidden { .. } => 403,
            ApiError::Unauthorized { .. } => 401,
            ApiError::Gone { .. } => 410,
            ApiError::MethodNotAllowed => 405,
            ApiError::UnsupportedMediaType { .. } => 415,
            ApiError::NotAcceptable { .. } => 406,
            ApiError::RequestEntityTooLarge { .. } => 413,
            ApiError::ServiceUnavailable { .. } => 503,
            ApiError::Timeout { .. } => 408,
            ApiError::InsufficientStorage { .. } => 507,
            ApiError::Internal { .. } => 500,
        }
    }

    /// The Status `reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) | ApiError::NotFoundPath { .. } => "NotFound",
            ApiError::AlreadyExists(_) => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest { .. } => "BadRequest",
            ApiError::Forbidden { .. } => "Forbidden",
            ApiError::Unauthorized { .. } => "Unauthorized",
            ApiError::Gone { .. } => "Expired",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::UnsupportedMediaType { .. } => "UnsupportedMediaType",
            ApiError::NotAcceptable { .. } => "NotAcceptable",
            ApiError::RequestEntityTooLarge { .. } => "RequestEntityTooLarge",
            ApiError::ServiceUnavailable { .. } => "ServiceUnavailable",
            ApiError::Timeout { .. } => "Timeout",
            ApiError::InsufficientStorage { .. } => "InsufficientStorage",
            ApiError::Internal { .. } => "InternalError",
        }
    }

    /// The `metav1.Status` body for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let object = match self {
            ApiError::NotFound(o) | ApiError::AlreadyExists(o) => Some(o),
            ApiError::Conflict { object, .. } | ApiError::Invalid { object, .. } => Some(object),
            _ => None,
        };
        if let Some(o) = object {
            let mut details = json!({ "name": o.name, "kind": o.kind });
            if !o.group.is_empty() {
                details["group"] = json!(o.group);
            }
            if let ApiError::Invalid { causes, .. } = self {
                details["causes"] = causes
                    .iter()
                    .map(|c| json!({"reason": c.kind.as_str(), "message": c.detail, "field": c.field}))
                    .collect();
            }
            status["details"] = details;
        }
        status
    }

    /// Rebuilds an error from a Status body received by a client.
    pub fn from_status(status: &Value) -> Self {
        let message = status["message"]
            .as_str()
            .unwrap_or("unknown error")
            .to_string();
        let details = &status["details"];
        let object = ObjectRef {
            group: details["group"].as_str().unwrap_or_default().to_string(),
            kind: details["kind"].as_str().unwrap_or_default().to_string(),
            name: details["name"].as_str().unwrap_or_default().to_string(),
        };
        match status["reason"].as_str().unwrap_or_default() {
            "NotFound" if object.name.is_empty() => ApiError::NotFoundPath { message },
            "NotFound" => ApiError::NotFound(object),
            "AlreadyExists" => ApiError::AlreadyExists(object),
            "Conflict" => {
                let reason = message
                    .rsplit_once(": ")
                    .map(|(_, r)| r.to_string())
                    .unwrap_or(message);
                ApiError::Conflict { object, reason }
            }
            "Invalid" => {
                let causes = details["causes"]
                    .as_array()
                    .map(|cs| {
                        cs.iter()
                            .map(|c| FieldError {
                                kind: cause_from_str(c["reason"].as_str().unwrap_or_default()),
                                field: c["field"].as_str().unwrap_or_default().to_string(),
                                detail: c["message"].as_str().unwrap_or_default().to_string(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                ApiError::Invalid { object, causes }
            }
            "Forbidden" => ApiError::Forbidden { message },
            "Unauthorized" => ApiError::Unauthorized { message },
            "Expired" | "Gone" => ApiError::Gone { message },
            "MethodNotAllowed" => ApiError::MethodNotAllowed,
            "UnsupportedMediaType" => ApiError::UnsupportedMediaType { message },
            "NotAcceptable" => ApiError::NotAcceptable { message },
            "RequestEntityTooLarge" => ApiError::RequestEntityTooLarge {
                limit: crate::api::MAX_REQUEST_BODY_BYTES,
            },
            "ServiceUnavailable" => ApiError::ServiceUnavailable { message },
            "Timeout" => ApiError::Timeout { message },
            "InsufficientStorage" => ApiError::InsufficientStorage { message },
            "BadRequest" => ApiError::BadRequest { message },
            _ => ApiError::Internal { message },
        }
    }
}

fn cause_from_str(s: &str) -> CauseType {
    match s {
        "FieldValueRequired" => CauseType::FieldValueRequired,
        "FieldValueNotSupported" => CauseType::FieldValueNotSupported,
        "FieldValueDuplicate" => CauseType::FieldValueDuplicate,
        "FieldValueForbidden" => CauseType::FieldValueForbidden,
        "FieldValueTooLong" => CauseType::FieldValueTooLong,
        "FieldValueTooMany" => CauseType::FieldValueTooMany,
        "FieldValueTypeInvalid" => CauseType::FieldValueTypeInvalid,
        "FieldValueUnknown" => CauseType::FieldValueUnknown,
        _ => CauseType::FieldValueInvalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_status_names_fields_and_round_trips() {
        let e = ApiError::Invalid {
            object: ObjectRef::new("apps", "Deployment", "My_App"),
            causes: vec![FieldError::invalid("metadata.name", "My_App", "bad name")],
        };
        let s = e.to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["reason"], "Invalid");
        assert_eq!(
            s["message"],
            "Deployment.apps \"My_App\" is invalid: metadata.name: Invalid value: \"My_App\": bad name"
        );
        assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");
        assert_eq!(ApiError::from_status(&s), e);
    }

    #[test]
    fn not_found_message_matches_kubernetes() {
        let e = ApiError::NotFound(ObjectRef::new("", "pods", "web"));
        assert_eq!(e.to_string(), "pods \"web\" not found");
        assert_eq!(e.code(), 404);
    }
}
