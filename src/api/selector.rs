//! Label and field selectors (STUB: being written).

use serde_json::Value;

use super::registry::ResourceType;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{message}")]
pub struct SelectorError {
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {}

impl LabelSelector {
    pub fn parse(_s: &str) -> Result<Self, SelectorError> {
        Ok(LabelSelector {})
    }
    pub fn from_k8s(
        _sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    ) -> Result<Self, SelectorError> {
        Ok(LabelSelector {})
    }
    pub fn is_empty(&self) -> bool {
        true
    }
    pub fn matches_object(&self, _obj: &Value) -> bool {
        true
    }
}

impl std::fmt::Display for LabelSelector {
    fn fmt(&self, _f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {}

impl FieldSelector {
    pub fn parse(_s: &str, _rt: &ResourceType) -> Result<Self, SelectorError> {
        Ok(FieldSelector {})
    }
    pub fn is_empty(&self) -> bool {
        true
    }
    pub fn matches(&self, _obj: &Value) -> bool {
        true
    }
}
