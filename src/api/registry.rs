//! The resource registry: one entry per kind berth serves.
//!
//! Everything that varies by kind — its REST names, scope, subresources and admission — is
//! looked up here, so adding a kind is adding one line to [`REGISTRY`]. Objects travel through
//! the store and the server as JSON (`serde_json::Value`); the typed `k8s-openapi` structs are
//! used at admission, where a manifest is parsed exactly as Kubernetes parses it, unknown
//! fields are refused, defaults applied and the result validated.

use std::sync::LazyLock;

use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, LimitRange, Namespace, Node, PersistentVolume,
    PersistentVolumeClaim, Pod, ResourceQuota, Secret, Service,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{ApiError, FieldError, ObjectRef};
use super::validation;

/// Kind-specific admission: defaulting and validation, as Kubernetes' registry strategies do.
///
/// Implemented for every registered kind in `kinds/`.
pub trait Admit: Sized {
    /// What a new object gets before defaulting (Kubernetes' `PrepareForCreate`), e.g. a
    /// Pod's `status.phase: Pending`. The incoming status has already been removed for kinds
    /// with a status subresource.
    fn prepare_for_create(&mut self) {}
    /// Fills in defaults as Kubernetes' defaulting functions do.
    fn apply_defaults(&mut self) {}
    /// Validates the whole object (metadata name/labels/annotations are checked generically
    /// before this runs).
    fn validate(&self, _errs: &mut Vec<FieldError>) {}
    /// Validates an update against the stored object (immutable fields).
    fn validate_update(&self, _old: &Self, _errs: &mut Vec<FieldError>) {}
    /// How names of this kind are checked.
    fn name_rule() -> validation::NameRule {
        validation::NameRule::Subdomain
    }
}

/// Scope of a kind, derived from `k8s-openapi`'s scope marker types.
pub trait ScopeInfo {
    const NAMESPACED: bool;
}
impl ScopeInfo for k8s_openapi::NamespaceResourceScope {
    const NAMESPACED: bool = true;
}
impl ScopeInfo for k8s_openapi::ClusterResourceScope {
    const NAMESPACED: bool = false;
}

/// Admission entry point of one kind: parse strictly, default, validate, re-encode.
pub type AdmitFn = fn(&ResourceType, &Value, Option<&Value>) -> Result<Value, ApiError>;

/// Everything berth knows about one kind.
#[derive(Debug)]
pub struct ResourceType {
    /// API group, "" for the core group.
    pub group: &'static str,
    pub version: &'static str,
    /// `apiVersion` as written in manifests: `v1`, `apps/v1`.
    pub api_version: &'static str,
    pub kind: &'static str,
    pub list_kind: &'static str,
    /// REST name: `deployments`.
    pub plural: &'static str,
    /// Lowercase singular: `deployment`.
    pub singular: String,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub namespaced: bool,
    /// Has a `/status` subresource: the main resource ignores status changes.
    pub status_subresource: bool,
    /// Has a `/scale` subresource (`spec.replicas`).
    pub scale_subresource: bool,
    /// `metadata.generation` is kept and bumped when `spec` changes.
    pub generation: bool,
    pub admit: AdmitFn,
}

impl PartialEq for ResourceType {
    fn eq(&self, other: &Self) -> bool {
        self.api_version == other.api_version && self.kind == other.kind
    }
}

impl ResourceType {
    /// `deployments.apps`, or `pods` for the core group.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
    /// `deployment.apps`, as kubectl prints before `/name`.
    pub fn singular_group(&self) -> String {
        if self.group.is_empty() {
            self.singular.clone()
        } else {
            format!("{}.{}", self.singular, self.group)
        }
    }
    /// Reference used in NotFound / AlreadyExists messages (plural resource, like Kubernetes).
    pub fn resource_ref(&self, name: &str) -> ObjectRef {
        ObjectRef::new(self.group, self.plural, name)
    }
    /// Reference used in Invalid / Conflict messages (kind, like Kubernetes).
    pub fn kind_ref(&self, name: &str) -> ObjectRef {
        ObjectRef::new(self.group, self.kind, name)
    }
    /// The collection path, e.g. `/apis/apps/v1/namespaces/default/deployments`.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let prefix = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) if self.namespaced => format!("{prefix}/namespaces/{ns}/{}", self.plural),
            _ => format!("{prefix}/{}", self.plural),
        }
    }
    /// The object path.
    pub fn object_path(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}/{}", self.collection_path(namespace), name)
    }
    /// Runs admission (see [`Admit`]).
    pub fn admit(&self, new: &Value, old: Option<&Value>) -> Result<Value, ApiError> {
        (self.admit)(self, new, old)
    }
}

trait Entry:
    Admit
    + k8s_openapi::ListableResource
    + k8s_openapi::Metadata<Ty = ObjectMeta>
    + Serialize
    + DeserializeOwned
where
    Self::Scope: ScopeInfo,
{
}
impl<K> Entry for K
where
    K: Admit
        + k8s_openapi::ListableResource
        + k8s_openapi::Metadata<Ty = ObjectMeta>
        + Serialize
        + DeserializeOwned,
    K::Scope: ScopeInfo,
{
}

#[derive(Clone, Copy, Default)]
struct Flags {
    status: bool,
    scale: bool,
    generation: bool,
    all: bool,
}
const SPEC: Flags = Flags {
    status: false,
    scale: false,
    generation: true,
    all: false,
};
const SPEC_STATUS: Flags = Flags {
    status: true,
    scale: false,
    generation: true,
    all: false,
};
const DATA: Flags = Flags {
    status: false,
    scale: false,
    generation: false,
    all: false,
};

fn entry<K: Entry>(short_names: &'static [&'static str], flags: Flags) -> ResourceType
where
    K::Scope: ScopeInfo,
{
    ResourceType {
        group: K::GROUP,
        version: K::VERSION,
        api_version: K::API_VERSION,
        kind: K::KIND,
        list_kind: K::LIST_KIND,
        plural: K::URL_PATH_SEGMENT,
        singular: K::KIND.to_ascii_lowercase(),
        short_names,
        categories: if flags.all { &["all"] } else { &[] },
        namespaced: <K::Scope as ScopeInfo>::NAMESPACED,
        status_subresource: flags.status,
        scale_subresource: flags.scale,
        generation: flags.generation,
        admit: admit::<K>,
    }
}

/// Every kind berth serves, in the order `berth get all` and discovery list them.
pub static REGISTRY: LazyLock<Vec<ResourceType>> = LazyLock::new(|| {
    let all = |f: Flags| Flags { all: true, ..f };
    let scale = |f: Flags| Flags { scale: true, ..f };
    vec![
        entry::<Pod>(&["po"], all(SPEC_STATUS)),
        entry::<Service>(&["svc"], all(SPEC_STATUS)),
        entry::<Deployment>(&["deploy"], all(scale(SPEC_STATUS))),
        entry::<ReplicaSet>(&["rs"], all(scale(SPEC_STATUS))),
        entry::<StatefulSet>(&["sts"], all(scale(SPEC_STATUS))),
        entry::<ControllerRevision>(&[], DATA),
        entry::<Job>(&[], all(SPEC_STATUS)),
        entry::<CronJob>(&["cj"], all(SPEC_STATUS)),
        entry::<Namespace>(&["ns"], SPEC_STATUS),
        entry::<Node>(&["no"], SPEC_STATUS),
        entry::<Endpoints>(&["ep"], DATA),
        entry::<EndpointSlice>(&[], DATA),
        entry::<ConfigMap>(&["cm"], DATA),
        entry::<Secret>(&[], DATA),
        entry::<PersistentVolume>(&["pv"], SPEC_STATUS),
        entry::<PersistentVolumeClaim>(&["pvc"], SPEC_STATUS),
        entry::<StorageClass>(&["sc"], DATA),
        entry::<Ingress>(&["ing"], SPEC_STATUS),
        entry::<IngressClass>(&[], SPEC),
        entry::<NetworkPolicy>(&["netpol"], SPEC),
        entry::<ResourceQuota>(&["quota"], SPEC_STATUS),
        entry::<LimitRange>(&["limits"], SPEC),
        entry::<Event>(&["ev"], DATA),
    ]
});

/// Looks a kind up by `apiVersion` and `kind`, as written in a manifest.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceType> {
    REGISTRY
        .iter()
        .find(|r| r.api_version == api_version && r.kind == kind)
}

/// Looks a kind up by its REST coordinates.
pub fn by_plural(group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
    REGISTRY
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Looks a kind up by `plural.group` (`deployments.apps`, `pods`), as the store keys it.
pub fn by_group_resource(group_resource: &str) -> Option<&'static ResourceType> {
    REGISTRY
        .iter()
        .find(|r| r.group_resource() == group_resource)
}

/// Resolves what a user types (`po`, `pod`, `pods`, `Pod`, `deployments.apps`) to a kind.
pub fn resolve(name: &str) -> Option<&'static ResourceType> {
    let lower = name.to_ascii_lowercase();
    let (base, group) = match lower.split_once('.') {
        Some((b, g)) => (b.to_string(), Some(g.to_string())),
        None => (lower.clone(), None),
    };
    REGISTRY.iter().find(|r| {
        let names_match = r.plural == base
            || r.singular == base
            || r.short_names.contains(&base.as_str())
            || r.kind.eq_ignore_ascii_case(&base);
        let group_match = match &group {
            None => true,
            Some(g) => r.group == g || (r.group.is_empty() && g == "core"),
        };
        names_match && group_match
    })
}

/// Kinds in a category (`all`).
pub fn in_category(category: &str) -> Vec<&'static ResourceType> {
    REGISTRY
        .iter()
        .filter(|r| r.categories.contains(&category))
        .collect()
}

/// Parses `value` as `K` exactly as Kubernetes' strict decoding does: a field the type does
/// not have is an error naming its path, a value of the wrong type is an error naming its
/// path.
pub fn decode_strict<K: DeserializeOwned>(
    rt: &ResourceType,
    name: &str,
    value: &Value,
) -> Result<K, ApiError> {
    let mut unknown: Vec<String> = Vec::new();
    let result = {
        let mut record = |path: serde_ignored::Path<'_>| unknown.push(format_ignored_path(&path));
        let de = serde_ignored::Deserializer::new(value, &mut record);
        serde_path_to_error::deserialize::<_, K>(de)
    };
    let obj = match result {
        Ok(obj) => obj,
        Err(e) => {
            let path = e.path().to_string();
            let field = kube_path(&path);
            let inner = e.into_inner().to_string();
            return Err(ApiError::Invalid {
                object: rt.kind_ref(name),
                causes: vec![FieldError {
                    kind: super::error::CauseType::FieldValueTypeInvalid,
                    field,
                    detail: inner,
                }],
            });
        }
    };
    if !unknown.is_empty() {
        return Err(ApiError::Invalid {
            object: rt.kind_ref(name),
            causes: unknown.into_iter().map(FieldError::unknown).collect(),
        });
    }
    Ok(obj)
}

/// `spec.template.spec.containers[0].image` from serde_ignored's path.
fn format_ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", format_ignored_path(parent)),
        Path::Map { parent, key } => {
            let p = format_ignored_path(parent);
            if p.is_empty() {
                key.clone()
            } else {
                format!("{p}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => format_ignored_path(parent),
    }
}

/// serde_path_to_error writes `a.b[0].c` already, except `.` for the root.
fn kube_path(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        path.replace("?", "")
    }
}

/// Generic admission for kind `K` (see [`Admit`]).
fn admit<K: Entry>(rt: &ResourceType, new: &Value, old: Option<&Value>) -> Result<Value, ApiError>
where
    K::Scope: ScopeInfo,
{
    let name = new
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut obj: K = decode_strict(rt, &name, new)?;
    if old.is_none() {
        obj.prepare_for_create();
    }
    obj.apply_defaults();
    let mut errs = Vec::new();
    validation::validate_object_meta(obj.metadata(), rt.namespaced, K::name_rule(), &mut errs);
    obj.validate(&mut errs);
    if let Some(old) = old {
        // The stored object passed admission when it was written; if it no longer parses
        // (an older schema), only the checks against it are skipped.
        if let Ok(old) = serde_json::from_value::<K>(old.clone()) {
            validation::validate_object_meta_update(obj.metadata(), old.metadata(), &mut errs);
            obj.validate_update(&old, &mut errs);
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::Invalid {
            object: rt.kind_ref(&name),
            causes: errs,
        });
    }
    serde_json::to_value(&obj)
        .map_err(|e| ApiError::internal(format!("encoding {} {name}: {e}", rt.kind)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolves_what_users_type() {
        for (typed, plural) in [
            ("po", "pods"),
            ("pod", "pods"),
            ("Pods", "pods"),
            ("deploy", "deployments"),
            ("deployments.apps", "deployments"),
            ("svc", "services"),
            ("ns", "namespaces"),
            ("cm", "configmaps"),
            ("pvc", "persistentvolumeclaims"),
            ("ing", "ingresses"),
            ("ev", "events"),
            ("no", "nodes"),
            ("rs", "replicasets"),
        ] {
            assert_eq!(resolve(typed).map(|r| r.plural), Some(plural), "{typed}");
        }
        assert!(resolve("deployments.batch").is_none());
        assert!(resolve("widgets").is_none());
    }

    #[test]
    fn registry_covers_the_required_kinds() {
        assert_eq!(REGISTRY.len(), 23);
        let d = by_kind("apps/v1", "Deployment").expect("deployment registered");
        assert!(d.namespaced && d.scale_subresource && d.status_subresource);
        assert_eq!(
            d.collection_path(Some("default")),
            "/apis/apps/v1/namespaces/default/deployments"
        );
        let n = by_kind("v1", "Namespace").expect("namespace registered");
        assert!(!n.namespaced);
        assert!(by_kind("v1", "Deployment").is_none());
    }

    #[test]
    fn unknown_fields_are_named_with_their_path() {
        let rt = by_kind("apps/v1", "Deployment").expect("registered");
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replica": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx", "imagePullPolcy": "Always"}]}
                }
            }
        });
        let err = rt.admit(&obj, None).expect_err("typos must be refused");
        let msg = err.to_string();
        assert!(msg.contains("unknown field \"spec.replica\""), "{msg}");
        assert!(
            msg.contains("unknown field \"spec.template.spec.containers[0].imagePullPolcy\""),
            "{msg}"
        );
        assert_eq!(err.code(), 422);
    }

    #[test]
    fn wrong_types_name_the_field() {
        let rt = by_kind("apps/v1", "Deployment").expect("registered");
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": "three", "selector": {}, "template": {}}});
        let msg = rt.admit(&obj, None).expect_err("bad type").to_string();
        assert!(msg.contains("spec.replicas"), "{msg}");
    }
}
