//! PersistentVolumes, PersistentVolumeClaims and StorageClasses.

use k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeSpec,
};
use k8s_openapi::api::storage::v1::StorageClass;

use super::{default_str, immutable};
use crate::api::error::FieldError;
use crate::api::registry::Admit;
use crate::api::validation::{
    NameRule, name_errors, parse_quantity, qualified_name_errors, validate_label_selector,
    validate_quantity, validate_supported,
};

const ACCESS_MODES: &[&str] = &[
    "ReadWriteOnce",
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOncePod",
];
const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];

fn validate_access_modes(path: &str, modes: Option<&Vec<String>>, errs: &mut Vec<FieldError>) {
    let modes = modes.map(Vec::as_slice).unwrap_or_default();
    if modes.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.accessModes"),
            "at least 1 access mode is required",
        ));
    }
    for mode in modes {
        validate_supported(
            &format!("{path}.accessModes"),
            Some(mode),
            ACCESS_MODES,
            errs,
        );
    }
    if modes.len() > 1 && modes.iter().any(|m| m == "ReadWriteOncePod") {
        errs.push(FieldError::forbidden(
            format!("{path}.accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

fn validate_storage_class_name(path: &str, name: Option<&str>, errs: &mut Vec<FieldError>) {
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        for msg in name_errors(name, NameRule::Subdomain) {
            errs.push(FieldError::invalid(
                format!("{path}.storageClassName"),
                name,
                &msg,
            ));
        }
    }
}

/// Defaults of a claim, also applied to a StatefulSet's `volumeClaimTemplates`.
pub(super) fn default_pvc(claim: &mut PersistentVolumeClaim) {
    let spec = claim.spec.get_or_insert_with(Default::default);
    default_str(&mut spec.volume_mode, "Filesystem");
    let status = claim.status.get_or_insert_with(Default::default);
    default_str(&mut status.phase, "Pending");
}

/// `ValidatePersistentVolumeClaimSpec` at `path`.
pub(super) fn validate_pvc_spec(
    spec: &PersistentVolumeClaimSpec,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    validate_access_modes(path, spec.access_modes.as_ref(), errs);
    if let Some(selector) = &spec.selector {
        validate_label_selector(&format!("{path}.selector"), selector, errs);
    }
    let storage_field = format!("{path}.resources[storage]");
    match spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
    {
        None => errs.push(FieldError::required(storage_field, "")),
        Some(q) => {
            if let Some(v) = validate_quantity(&storage_field, q, errs)
                && v <= crate::api::validation::QuantityValue::ZERO
            {
                errs.push(FieldError::invalid(
                    storage_field,
                    &q.0,
                    "must be greater than zero",
                ));
            }
        }
    }
    validate_storage_class_name(path, spec.storage_class_name.as_deref(), errs);
    validate_supported(
        &format!("{path}.volumeMode"),
        spec.volume_mode.as_deref(),
        VOLUME_MODES,
        errs,
    );
}

impl Admit for PersistentVolumeClaim {
    fn apply_defaults(&mut self) {
        default_pvc(self);
    }

    fn validate(&self, errs: &mut Vec<FieldError>) {
        match &self.spec {
            Some(spec) => validate_pvc_spec(spec, "spec", errs),
            None => errs.push(FieldError::required("spec", "")),
        }
    }

    fn validate_update(&self, old: &Self, errs: &mut Vec<FieldError>) {
        let (Some(new), Some(old)) = (&self.spec, &old.spec) else {
            return;
        };
        let mut rest = new.clone();
        rest.resources = old.resources.clone();
        rest.volume_attributes_class_name = old.volume_attributes_class_name.clone();
        // The binder fills volumeName once; a claim that had none may get one.
        if old.volume_name.as_deref().is_none_or(str::is_empty) {
            rest.volume_name = old.volume_name.clone();
        }
        if rest != *old {
            errs.push(FieldError::forbidden(
                "spec",
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
            ));
        }
        let storage = |s: &PersistentVolumeClaimSpec| {
            s.resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get("storage"))
                .and_then(|q| parse_quantity(&q.0).ok())
        };
        if let (Some(n), Some(o)) = (storage(new), storage(old))
            && n < o
        {
            errs.push(FieldError::forbidden(
                "spec.resources.requests.storage",
                "field can not be less than previous value",
            ));
        }
    }
}

/// The volume-source fields of a PersistentVolumeSpec, as (JSON name, present).
fn pv_sources(spec: &PersistentVolumeSpec) -> Vec<(&'static str, bool)> {
    vec![
        (
            "awsElasticBlockStore",
            spec.aws_elastic_block_store.is_some(),
        ),
        ("azureDisk", spec.azure_disk.is_some()),
        ("azureFile", spec.azure_file.is_some()),
        ("cephfs", spec.cephfs.is_some()),
        ("cinder", spec.cinder.is_some()),
        ("csi", spec.csi.is_some()),
        ("fc", spec.fc.is_some()),
        ("flexVolume", spec.flex_volume.is_some()),
        ("flocker", spec.flocker.is_some()),
        ("gcePersistentDisk", spec.gce_persistent_disk.is_some()),
        ("glusterfs", spec.glusterfs.is_some()),
        ("hostPath", spec.host_path.is_some()),
        ("iscsi", spec.iscsi.is_some()),
        ("local", spec.local.is_some()),
        ("nfs", spec.nfs.is_some()),
        (
            "photonPersistentDisk",
            spec.photon_persistent_disk.is_some(),
        ),
        ("portworxVolume", spec.portworx_volume.is_some()),
        ("quobyte", spec.quobyte.is_some()),
        ("rbd", spec.rbd.is_some()),
        ("scaleIO", spec.scale_io.is_some()),
        ("storageos", spec.storageos.is_some()),
        ("vsphereVolume", spec.vsphere_volume.is_some()),
    ]
}

impl Admit for PersistentVolume {
    fn apply_defaults(&mut self) {
        let status = self.status.get_or_insert_with(Default::default);
        default_str(&mut status.phase, "Pending");
        let spec = self.spec.get_or_insert_with(Default::default);
        default_str(&mut spec.persistent_volume_reclaim_policy, "Retain");
        spec.volume_mode.get_or_insert_with(|| "Filesystem".into());
    }

    fn validate(&self, errs: &mut Vec<FieldError>) {
        let Some(spec) = &self.spec else {
            errs.push(FieldError::required("spec", ""));
            return;
        };
        validate_access_modes("spec", spec.access_modes.as_ref(), errs);
        match spec.capacity.as_ref().filter(|c| !c.is_empty()) {
            None => errs.push(FieldError::required("spec.capacity", "")),
            Some(capacity) => {
                if !capacity.contains_key("storage") || capacity.len() > 1 {
                    let names: Vec<&str> = capacity.keys().map(String::as_str).collect();
                    errs.push(FieldError::not_supported(
                        "spec.capacity",
                        names.join(","),
                        &["storage"],
                    ));
                }
                for (name, q) in capacity {
                    let field = format!("spec.capacity[{name}]");
                    if let Some(v) = validate_quantity(&field, q, errs)
                        && v <= crate::api::validation::QuantityValue::ZERO
                    {
                        errs.push(FieldError::invalid(
                            field,
                            &q.0,
                            "must be greater than zero",
                        ));
                    }
                }
            }
        }
        validate_supported(
            "spec.persistentVolumeReclaimPolicy",
            spec.persistent_volume_reclaim_policy.as_deref(),
            &["Delete", "Recycle", "Retain"],
            errs,
        );
        validate_supported(
            "spec.volumeMode",
            spec.volume_mode.as_deref(),
            VOLUME_MODES,
            errs,
        );
        validate_storage_class_name("spec", spec.storage_class_name.as_deref(), errs);
        match pv_sources(spec).iter().filter(|(_, set)| *set).count() {
            0 => errs.push(FieldError::required("spec", "must specify a volume type")),
            1 => {}
            _ => errs.push(FieldError::forbidden(
                "spec",
                "may not specify more than 1 volume type",
            )),
        }
        if let Some(h) = &spec.host_path {
            if h.path.is_empty() {
                errs.push(FieldError::required("spec.hostPath.path", ""));
            }
            if h.path.split('/').any(|s| s == "..") {
                errs.push(FieldError::invalid(
                    "spec.hostPath.path",
                    &h.path,
                    "must not contain '..'",
                ));
            }
        }
        if let Some(l) = &spec.local {
            if l.path.is_empty() {
                errs.push(FieldError::required("spec.local.path", ""));
            }
            if spec.node_affinity.is_none() {
                errs.push(FieldError::required(
                    "spec.nodeAffinity",
                    "Local volumes require node affinity",
                ));
            }
        }
        if let Some(n) = &spec.nfs {
            if n.server.is_empty() {
                errs.push(FieldError::required("spec.nfs.server", ""));
            }
            if !n.path.starts_with('/') {
                errs.push(FieldError::invalid(
                    "spec.nfs.path",
                    &n.path,
                    "must be an absolute path",
                ));
            }
        }
    }

    fn validate_update(&self, old: &Self, errs: &mut Vec<FieldError>) {
        let (Some(new), Some(old)) = (&self.spec, &old.spec) else {
            return;
        };
        // The volume source is everything but these fields.
        let source = |s: &PersistentVolumeSpec| {
            let mut s = s.clone();
            s.access_modes = None;
            s.capacity = None;
            s.claim_ref = None;
            s.mount_options = None;
            s.node_affinity = None;
            s.persistent_volume_reclaim_policy = None;
            s.storage_class_name = None;
            s.volume_attributes_class_name = None;
            s.volume_mode = None;
            s
        };
        if source(new) != source(old) {
            errs.push(FieldError::forbidden(
                "spec.persistentvolumesource",
                "spec.persistentvolumesource is immutable after creation",
            ));
        }
        immutable("spec.volumeMode", &new.volume_mode, &old.volume_mode, errs);
        if old.node_affinity.is_some() {
            immutable(
                "spec.nodeAffinity",
                &new.node_affinity,
                &old.node_affinity,
                errs,
            );
        }
    }
}

impl Admit for StorageClass {
    fn apply_defaults(&mut self) {
        self.reclaim_policy.get_or_insert_with(|| "Delete".into());
        self.volume_binding_mode
            .get_or_insert_with(|| "Immediate".into());
    }

    fn validate(&self, errs: &mut Vec<FieldError>) {
        if self.provisioner.is_empty() {
            errs.push(FieldError::required("provisioner", ""));
        } else {
            for msg in qualified_name_errors(&self.provisioner.to_ascii_lowercase()) {
                errs.push(FieldError::invalid("provisioner", &self.provisioner, &msg));
            }
        }
        let parameters = self.parameters.as_ref();
        if parameters.is_some_and(|p| p.len() > 512) {
            errs.push(FieldError::too_long("parameters", 512));
        }
        for key in parameters.into_iter().flat_map(|p| p.keys()) {
            if key.is_empty() {
                errs.push(FieldError::invalid(
                    "parameters",
                    key,
                    "field can not be empty.",
                ));
            }
        }
        validate_supported(
            "reclaimPolicy",
            self.reclaim_policy.as_deref(),
            &["Delete", "Retain"],
            errs,
        );
        validate_supported(
            "volumeBindingMode",
            self.volume_binding_mode.as_deref(),
            &["Immediate", "WaitForFirstConsumer"],
            errs,
        );
    }

    fn validate_update(&self, old: &Self, errs: &mut Vec<FieldError>) {
        if self.parameters != old.parameters {
            errs.push(FieldError::forbidden(
                "parameters",
                "updates to parameters are forbidden.",
            ));
        }
        if self.provisioner != old.provisioner {
            errs.push(FieldError::forbidden(
                "provisioner",
                "updates to provisioner are forbidden.",
            ));
        }
        if self.reclaim_policy != old.reclaim_policy {
            errs.push(FieldError::forbidden(
                "reclaimPolicy",
                "updates to reclaimPolicy are forbidden.",
            ));
        }
        immutable(
            "volumeBindingMode",
            &self.volume_binding_mode,
            &old.volume_binding_mode,
            errs,
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::test_support::{admit_update, ok, patched, rejects, rejects_update};

    fn pvc() -> Value {
        json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "default"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
        })
    }

    fn pv() -> Value {
        json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "pv1"},
            "spec": {
                "capacity": {"storage": "10Gi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": "/srv/pv1"}
            }
        })
    }

    #[test]
    fn claims() {
        let out = ok(&pvc());
        assert_eq!(out["spec"]["volumeMode"], "Filesystem");
        assert_eq!(out["status"]["phase"], "Pending");
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                json!({"spec": {"accessModes": null}}),
                "spec.accessModes",
                "at least 1 access mode is required",
            ),
            (
                json!({"spec": {"accessModes": ["ReadWriteSometimes"]}}),
                "spec.accessModes",
                "Unsupported value",
            ),
            (
                json!({"spec": {"accessModes": ["ReadWriteOncePod", "ReadOnlyMany"]}}),
                "spec.accessModes",
                "may not use ReadWriteOncePod with other access modes",
            ),
            (
                json!({"spec": {"resources": null}}),
                "spec.resources[storage]",
                "Required value",
            ),
            (
                json!({"spec": {"resources": {"requests": {"storage": "0"}}}}),
                "spec.resources[storage]",
                "must be greater than zero",
            ),
            (
                json!({"spec": {"resources": {"requests": {"storage": "2Gb"}}}}),
                "spec.resources[storage]",
                "quantities must match",
            ),
            (
                json!({"spec": {"volumeMode": "Raw"}}),
                "spec.volumeMode",
                "Unsupported value",
            ),
            (
                json!({"spec": {"storageClassName": "Fast_SSD"}}),
                "spec.storageClassName",
                "RFC 1123 subdomain",
            ),
        ];
        for (patch, field, text) in cases {
            rejects(&patched(&pvc(), patch), field, text);
        }
    }

    #[test]
    fn claims_may_only_grow() {
        let old = ok(&pvc());
        let grown = patched(
            &old,
            json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}}),
        );
        admit_update(&grown, Some(&old)).expect("growing is allowed");
        let shrunk = patched(
            &old,
            json!({"spec": {"resources": {"requests": {"storage": "512Mi"}}}}),
        );
        rejects_update(
            &shrunk,
            &old,
            "spec.resources.requests.storage",
            "can not be less than",
        );
        let remoded = patched(&old, json!({"spec": {"accessModes": ["ReadWriteMany"]}}));
        rejects_update(&remoded, &old, "spec", "spec is immutable after creation");
    }

    #[test]
    fn volumes() {
        let out = ok(&pv());
        assert_eq!(out["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(out["spec"]["volumeMode"], "Filesystem");
        assert_eq!(out["status"]["phase"], "Pending");
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                json!({"spec": {"capacity": null}}),
                "spec.capacity",
                "Required value",
            ),
            (
                json!({"spec": {"capacity": {"storage": "10Gi", "cpu": "1"}}}),
                "spec.capacity",
                "supported values: \"storage\"",
            ),
            (
                json!({"spec": {"accessModes": null}}),
                "spec.accessModes",
                "at least 1 access mode",
            ),
            (
                json!({"spec": {"hostPath": null}}),
                "spec",
                "must specify a volume type",
            ),
            (
                json!({"spec": {"nfs": {"server": "nas", "path": "/export"}}}),
                "spec",
                "may not specify more than 1 volume type",
            ),
            (
                json!({"spec": {"persistentVolumeReclaimPolicy": "Keep"}}),
                "spec.persistentVolumeReclaimPolicy",
                "Unsupported value",
            ),
            (
                json!({"spec": {"hostPath": null, "local": {"path": "/mnt/disk"}}}),
                "spec.nodeAffinity",
                "Local volumes require node affinity",
            ),
        ];
        for (patch, field, text) in cases {
            rejects(&patched(&pv(), patch), field, text);
        }
        let old = out;
        let moved = patched(&old, json!({"spec": {"hostPath": {"path": "/srv/other"}}}));
        rejects_update(
            &moved,
            &old,
            "spec.persistentvolumesource",
            "immutable after creation",
        );
        let resized = patched(&old, json!({"spec": {"capacity": {"storage": "20Gi"}}}));
        admit_update(&resized, Some(&old)).expect("capacity may change");
    }

    #[test]
    fn storage_classes() {
        let sc = json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "local"},
            "provisioner": "berth.io/hostpath",
            "parameters": {"root": "/var/lib/berth/volumes"}
        });
        let out = ok(&sc);
        assert_eq!(out["reclaimPolicy"], "Delete");
        assert_eq!(out["volumeBindingMode"], "Immediate");
        rejects(
            &patched(&sc, json!({"provisioner": ""})),
            "provisioner",
            "Required value",
        );
        rejects(
            &patched(&sc, json!({"volumeBindingMode": "Later"})),
            "volumeBindingMode",
            "Unsupported value",
        );
        let changed = patched(&out, json!({"parameters": {"root": "/srv"}}));
        rejects_update(
            &changed,
            &out,
            "parameters",
            "updates to parameters are forbidden.",
        );
        let reprovisioned = patched(&out, json!({"provisioner": "other.io/x"}));
        rejects_update(
            &reprovisioned,
            &out,
            "provisioner",
            "updates to provisioner are forbidden.",
        );
    }
}
