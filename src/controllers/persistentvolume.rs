//! The PersistentVolume controller (Kubernetes' pv-controller, plus berth's `local-path`
//! provisioner):
//!
//! - A Pending claim binds to the PV it names (`spec.volumeName`), else to the smallest
//!   Available PV of its class that is big enough, has every access mode it asks for and
//!   matches its selector, else — when its class is `local-path` — to a new PV
//!   `pvc-<claim uid>` whose directory `<stateDir>/volumes/pvc-<uid>` is made for it.
//!   Binding writes the PV's `claimRef` first, then the claim's `volumeName`, status and
//!   annotations, as Kubernetes does.
//! - A PV whose claim is gone is Released; with reclaimPolicy Delete a provisioned one is
//!   deleted with its directory, Retain keeps both.
//! - A claim being deleted keeps its `kubernetes.io/pvc-protection` finalizer until no
//!   running pod uses it.
//! - The bytes each local-path volume holds are measured (every minute) (capacity is not enforced on this
//!   file system: a Warning event says so) and put on the claim as `berth.io/used-bytes`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Wake;
use crate::api::validation::parse_quantity;
use crate::api::{ApiError, meta, registry, selector};
use crate::events::{EventType, Recorder};
use crate::storage::{LOCAL_PATH_PROVISIONER, USED_BYTES_ANNOTATION};
use crate::store::{Change, DeleteOptions, PVC_PROTECTION, Store, StoreError, Subresource};

/// How often a bound local-path volume's usage is measured (a walk of its files, unless a
/// project quota counts them; the kubelet's volume stats are as fresh).
const MEASURE_EVERY: Duration = Duration::from_secs(60);

pub(super) fn relevant(c: &Change) -> bool {
    matches!(
        c.resource.kind,
        "PersistentVolumeClaim" | "PersistentVolume" | "StorageClass" | "Pod"
    ) && super::pod_change_matters(c)
}

/// The controller's state between passes.
pub(super) struct PvController {
    pub events: Recorder,
    /// `<stateDir>/volumes`.
    pub volumes: PathBuf,
    measured: Mutex<HashMap<String, Instant>>,
}

impl PvController {
    pub fn new(events: Recorder, volumes: PathBuf) -> PvController {
        PvController {
            events,
            volumes,
            measured: Mutex::new(HashMap::new()),
        }
    }
}

fn bytes(q: &Value) -> Option<i128> {
    q.as_str()
        .and_then(|s| parse_quantity(s).ok())
        .map(|v| v.milli() / 1000)
}

fn strings(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// The class a claim asks for ("" when none).
fn claim_class(c: &Value) -> String {
    c.pointer("/spec/storageClassName")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            meta::annotations(c)
                .get("volume.beta.kubernetes.io/storage-class")
                .cloned()
        })
        .unwrap_or_default()
}

/// Whether static PV `pv` can serve claim `c`.
fn fits(pv: &Value, c: &Value) -> bool {
    let class = pv
        .pointer("/spec/storageClassName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if class != claim_class(c) {
        return false;
    }
    let want = c
        .pointer("/spec/resources/requests/storage")
        .and_then(bytes)
        .unwrap_or(0);
    let have = pv
        .pointer("/spec/capacity/storage")
        .and_then(bytes)
        .unwrap_or(0);
    if have < want {
        return false;
    }
    let modes = strings(pv, "/spec/accessModes");
    if !strings(c, "/spec/accessModes")
        .iter()
        .all(|m| modes.contains(m))
    {
        return false;
    }
    if let Some(sel) = c.pointer("/spec/selector").filter(|s| !s.is_null()) {
        let labels = meta::labels(pv);
        match serde_json::from_value(sel.clone())
            .ok()
            .and_then(|k| selector::LabelSelector::from_k8s(&k).ok())
        {
            Some(s) => s.matches(&labels),
            None => false,
        }
    } else {
        true
    }
}

fn claim_ref(c: &Value) -> Value {
    json!({
        "kind": "PersistentVolumeClaim",
        "apiVersion": "v1",
        "namespace": meta::namespace(c),
        "name": meta::name(c),
        "uid": meta::uid(c),
        "resourceVersion": meta::resource_version(c),
    })
}

/// Claims in use by pods that are not finished, as (namespace, claim name).
fn claims_in_use(pods: &[Value]) -> std::collections::HashSet<(String, String)> {
    let mut out = std::collections::HashSet::new();
    for p in pods {
        if matches!(meta::str_at(p, "/status/phase"), "Succeeded" | "Failed") {
            continue;
        }
        for v in p
            .pointer("/spec/volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = v
                .pointer("/persistentVolumeClaim/claimName")
                .and_then(Value::as_str)
            {
                out.insert((meta::namespace(p).to_string(), n.to_string()));
            }
        }
    }
    out
}

pub(super) fn reconcile_all(store: &Store, ctl: &PvController) -> Wake {
    let kinds = [
        ("v1", "PersistentVolumeClaim"),
        ("v1", "PersistentVolume"),
        ("storage.k8s.io/v1", "StorageClass"),
        ("v1", "Pod"),
    ];
    let mut lists = Vec::new();
    for (gv, kind) in kinds {
        let Some(rt) = registry::by_kind(gv, kind) else {
            return Wake::RESYNC;
        };
        match store.list(rt, None) {
            Ok((items, _)) => lists.push(items),
            Err(e) => {
                tracing::warn!(error = %e, controller = "persistentvolume", "cannot list");
                return Wake::SOON;
            }
        }
    }
    let [claims, pvs, classes, pods]: [Vec<Value>; 4] = match lists.try_into() {
        Ok(l) => l,
        Err(_) => return Wake::SOON,
    };
    let classes: BTreeMap<&str, &Value> = classes.iter().map(|c| (meta::name(c), c)).collect();
    let in_use = claims_in_use(&pods);
    let mut pending = false;
    let mut pvs = pvs;

    for c in &claims {
        let key = (meta::namespace(c).to_string(), meta::name(c).to_string());
        if c.pointer("/metadata/deletionTimestamp").is_some() {
            if !in_use.contains(&key)
                && strings(c, "/metadata/finalizers")
                    .iter()
                    .any(|f| f == PVC_PROTECTION)
            {
                pending |= release_protection(store, c).is_err();
            }
            continue;
        }
        if meta::str_at(c, "/status/phase") == "Bound" {
            continue;
        }
        match bind_claim(store, ctl, c, &mut pvs, &classes) {
            Ok(()) => {}
            Err(e) => {
                tracing::info!(claim = %format!("{}/{}", key.0, key.1), error = %e, "cannot bind a claim yet");
                pending = true;
            }
        }
    }

    // Volumes: available, bound, released, reclaimed.
    let claims_by_key: BTreeMap<(String, String), &Value> = claims
        .iter()
        .map(|c| {
            (
                (meta::namespace(c).to_string(), meta::name(c).to_string()),
                c,
            )
        })
        .collect();
    let mut measure_soon = false;
    for pv in &pvs {
        let name = meta::name(pv).to_string();
        let phase = meta::str_at(pv, "/status/phase").to_string();
        let Some(cref) = pv.pointer("/spec/claimRef").filter(|r| !r.is_null()) else {
            if phase != "Available" {
                pending |= set_pv_phase(store, pv, "Available").is_err();
            }
            continue;
        };
        let ckey = (
            cref["namespace"].as_str().unwrap_or_default().to_string(),
            cref["name"].as_str().unwrap_or_default().to_string(),
        );
        let claim = claims_by_key.get(&ckey).filter(|c| {
            cref["uid"]
                .as_str()
                .is_none_or(|u| u.is_empty() || u == meta::uid(c))
        });
        match claim {
            Some(c) => {
                if phase != "Bound" && meta::str_at(c, "/spec/volumeName") == name {
                    pending |= set_pv_phase(store, pv, "Bound").is_err();
                }
                if provisioned(pv) && meta::str_at(c, "/status/phase") == "Bound" {
                    measure_soon = true;
                    measure(store, ctl, pv, c);
                }
            }
            None => {
                // The claim is gone: Released, then reclaimed by policy.
                if phase != "Released" && phase != "Failed" {
                    pending |= set_pv_phase(store, pv, "Released").is_err();
                }
                let policy = pv
                    .pointer("/spec/persistentVolumeReclaimPolicy")
                    .and_then(Value::as_str)
                    .unwrap_or("Retain");
                if policy == "Delete" {
                    pending |= reclaim_delete(store, ctl, pv).is_err();
                }
            }
        }
    }
    let wake = if pending { Wake::SOON } else { Wake::RESYNC };
    if measure_soon {
        wake.sooner(Wake::after(MEASURE_EVERY))
    } else {
        wake
    }
}

fn provisioned(pv: &Value) -> bool {
    meta::annotations(pv)
        .get("pv.kubernetes.io/provisioned-by")
        .is_some_and(|p| p == LOCAL_PATH_PROVISIONER)
}

fn pv_rt() -> Result<&'static crate::api::ResourceType, StoreError> {
    registry::by_kind("v1", "PersistentVolume")
        .ok_or_else(|| StoreError::Api(ApiError::internal("PersistentVolume is not registered")))
}

fn pvc_rt() -> Result<&'static crate::api::ResourceType, StoreError> {
    registry::by_kind("v1", "PersistentVolumeClaim").ok_or_else(|| {
        StoreError::Api(ApiError::internal(
            "PersistentVolumeClaim is not registered",
        ))
    })
}

fn set_pv_phase(store: &Store, pv: &Value, phase: &str) -> Result<(), StoreError> {
    let mut pv = pv.clone();
    let mut status = pv.get("status").cloned().unwrap_or_else(|| json!({}));
    status["phase"] = json!(phase);
    if phase == "Released" || phase == "Bound" {
        status["lastPhaseTransitionTime"] = json!(meta::now_rfc3339());
    }
    super::write_status(store, pv_rt()?, &mut pv, &status)
}

/// Changes claim `c` (the same claim: its uid must not have changed) with `change`.
fn update_claim(
    store: &Store,
    c: &Value,
    change: impl FnOnce(&Value, &mut Value) + Send,
) -> Result<Value, StoreError> {
    store.update_same(pvc_rt()?, c, Subresource::Main, move |cur| {
        let mut new = cur.clone();
        change(cur, &mut new);
        Ok(new)
    })
}

/// Removes the protection finalizer of a claim being deleted that no pod uses.
fn release_protection(store: &Store, c: &Value) -> Result<(), StoreError> {
    update_claim(store, c, |cur, new| {
        let kept: Vec<String> = strings(cur, "/metadata/finalizers")
            .into_iter()
            .filter(|f| f != PVC_PROTECTION)
            .collect();
        meta::set(new, "finalizers", Some(json!(kept)));
    })
    .map(drop)
    .or_else(ignore_gone)
}

fn ignore_gone(e: StoreError) -> Result<(), StoreError> {
    match e {
        StoreError::Api(ApiError::NotFound(_) | ApiError::BadRequest { .. }) => Ok(()),
        e => Err(e),
    }
}

/// Finds or makes the claim's volume and binds the two.
fn bind_claim(
    store: &Store,
    ctl: &PvController,
    c: &Value,
    pvs: &mut Vec<Value>,
    classes: &BTreeMap<&str, &Value>,
) -> Result<(), StoreError> {
    let uid = meta::uid(c);
    // A volume already pointing at this claim (a bind interrupted half-way).
    if let Some(pv) = pvs
        .iter()
        .find(|pv| pv.pointer("/spec/claimRef/uid").and_then(Value::as_str) == Some(uid))
    {
        return finish_bind(store, c, pv);
    }
    let wanted = meta::str_at(c, "/spec/volumeName").to_string();
    let available = |pv: &&Value| {
        pv.pointer("/spec/claimRef").is_none_or(Value::is_null)
            && pv.pointer("/metadata/deletionTimestamp").is_none()
    };
    let chosen = if !wanted.is_empty() {
        let Some(pv) = pvs.iter().find(|pv| meta::name(pv) == wanted) else {
            ctl.events.record(
                c,
                EventType::Warning,
                "FailedBinding",
                &format!("volume \"{wanted}\" not found"),
            );
            return Ok(());
        };
        if !available(&pv) || !fits(pv, c) {
            ctl.events.record(
                c,
                EventType::Warning,
                "VolumeMismatch",
                &format!("Cannot bind to requested volume \"{wanted}\": it is bound to another claim, or its class, size or access modes do not match"),
            );
            return Ok(());
        }
        Some(pv.clone())
    } else {
        pvs.iter()
            .filter(available)
            .filter(|pv| !provisioned(pv))
            .filter(|pv| fits(pv, c))
            .min_by_key(|pv| {
                pv.pointer("/spec/capacity/storage")
                    .and_then(bytes)
                    .unwrap_or(i128::MAX)
            })
            .cloned()
    };
    let pv = match chosen {
        Some(pv) => pv,
        None => {
            let class_name = claim_class(c);
            let Some(class) = classes.get(class_name.as_str()) else {
                let message = if class_name.is_empty() {
                    "no persistent volumes available for this claim and no storage class is set"
                        .to_string()
                } else {
                    format!("storageclass.storage.k8s.io \"{class_name}\" not found")
                };
                let reason = if class_name.is_empty() {
                    "FailedBinding"
                } else {
                    "ProvisioningFailed"
                };
                ctl.events.record(c, EventType::Warning, reason, &message);
                return Ok(());
            };
            let provisioner = class["provisioner"].as_str().unwrap_or_default();
            if provisioner != LOCAL_PATH_PROVISIONER {
                ctl.events.record(
                    c,
                    EventType::Warning,
                    "ProvisioningFailed",
                    &format!("storageclass \"{class_name}\": provisioner \"{provisioner}\" is not available on berth; use the class \"local-path\" or a static PersistentVolume"),
                );
                return Ok(());
            }
            let pv = provision(store, ctl, c, class)?;
            pvs.push(pv.clone());
            pv
        }
    };
    // The volume first (its claimRef reserves it), then the claim.
    let pv_name = meta::name(&pv).to_string();
    let cref = claim_ref(c);
    let bound = store.update_with(
        pv_rt()?,
        None,
        &pv_name,
        Subresource::Main,
        false,
        move |cur| {
            if cur
                .pointer("/spec/claimRef/uid")
                .and_then(Value::as_str)
                .is_some_and(|u| Some(u) != cref["uid"].as_str())
            {
                return Err(ApiError::Conflict {
                    object: crate::api::error::ObjectRef::new(
                        "",
                        "persistentvolumes",
                        meta::name(cur),
                    ),
                    reason: "the volume was bound to another claim meanwhile".into(),
                });
            }
            let mut new = cur.clone();
            new["spec"]["claimRef"] = cref.clone();
            let mut ann = meta::annotations(cur);
            ann.insert("pv.kubernetes.io/bound-by-controller".into(), "yes".into());
            meta::set(&mut new, "annotations", Some(json!(ann)));
            Ok(new)
        },
    )?;
    if let Some(slot) = pvs.iter_mut().find(|p| meta::name(p) == pv_name) {
        *slot = bound.clone();
    }
    set_pv_phase(store, &bound, "Bound")?;
    finish_bind(store, c, &bound)
}

/// The claim's side of a binding: `volumeName`, annotations, then status.
fn finish_bind(store: &Store, c: &Value, pv: &Value) -> Result<(), StoreError> {
    let rt = pvc_rt()?;
    let pv_name = meta::name(pv).to_string();
    let name = pv_name.clone();
    let updated = update_claim(store, c, move |cur, new| {
        new["spec"]["volumeName"] = json!(name);
        let mut ann = meta::annotations(cur);
        ann.insert("pv.kubernetes.io/bind-completed".into(), "yes".into());
        ann.insert("pv.kubernetes.io/bound-by-controller".into(), "yes".into());
        meta::set(new, "annotations", Some(json!(ann)));
    });
    let mut claim = match updated {
        Ok(v) => v,
        Err(e) => return ignore_gone(e),
    };
    let status = json!({
        "phase": "Bound",
        "accessModes": pv.pointer("/spec/accessModes").cloned().unwrap_or(json!([])),
        "capacity": pv.pointer("/spec/capacity").cloned().unwrap_or(json!({})),
    });
    tracing::info!(claim = %format!("{}/{}", meta::namespace(c), meta::name(c)), volume = %pv_name, "claim bound");
    super::write_status(store, rt, &mut claim, &status)
}

/// Makes a local-path volume for `c`: its directory, then its PV.
fn provision(
    store: &Store,
    ctl: &PvController,
    c: &Value,
    class: &Value,
) -> Result<Value, StoreError> {
    let name = format!("pvc-{}", meta::uid(c));
    let dir = crate::storage::volume_dir(&ctl.volumes, &name);
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| {
        use std::os::unix::fs::PermissionsExt;
        // As rancher's local-path: any user of the pod may write.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
    }) {
        ctl.events.record(
            c,
            EventType::Warning,
            "ProvisioningFailed",
            &format!("cannot create {}: {e}", dir.display()),
        );
        return Err(StoreError::Api(ApiError::internal(e.to_string())));
    }
    let capacity = c
        .pointer("/spec/resources/requests/storage")
        .cloned()
        .unwrap_or(json!("0"));
    let pv = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": name,
            "annotations": {"pv.kubernetes.io/provisioned-by": LOCAL_PATH_PROVISIONER},
            "labels": {"berth.io/storage": "local-path"},
        },
        "spec": {
            "capacity": {"storage": capacity},
            "accessModes": c.pointer("/spec/accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])),
            "persistentVolumeReclaimPolicy": class["reclaimPolicy"].as_str().unwrap_or("Delete"),
            "storageClassName": meta::name(class),
            "volumeMode": "Filesystem",
            "hostPath": {"path": dir.to_string_lossy(), "type": "DirectoryOrCreate"},
        },
    });
    let created = match store.create(pv_rt()?, None, pv, false) {
        Ok(v) => v,
        Err(StoreError::Api(ApiError::AlreadyExists(_))) => store.get(pv_rt()?, None, &name)?,
        Err(e) => return Err(e),
    };
    ctl.events.record(
        c,
        EventType::Normal,
        "ProvisioningSucceeded",
        &format!("Successfully provisioned volume {name} using {LOCAL_PATH_PROVISIONER}"),
    );
    // Project quotas enforce the capacity where the file system has them; anywhere else
    // the claim is told it is only measured, and why.
    let not_enforced =
        match crate::quota::enforce(&dir, bytes(&capacity).unwrap_or(0).max(0) as u64) {
            Ok(crate::quota::Capacity::Enforced { .. }) => None,
            Ok(crate::quota::Capacity::NotEnforced { reason }) => Some(reason),
            Err(e) => Some(e.to_string()),
        };
    if let Some(reason) = not_enforced {
        ctl.events.record(
            c,
            EventType::Warning,
            "CapacityNotEnforced",
            &format!(
                "the capacity {} is not enforced on {}: {reason}; berth measures the volume's usage instead (berth get pvc shows it)",
                capacity.as_str().unwrap_or_default(),
                dir.display()
            ),
        );
    }
    Ok(created)
}

/// Deletes a Released provisioned volume: its directory, then the PV. A static volume with
/// Delete is Failed: berth cannot delete what it did not make.
fn reclaim_delete(store: &Store, ctl: &PvController, pv: &Value) -> Result<(), StoreError> {
    let name = meta::name(pv).to_string();
    if !provisioned(pv) {
        if meta::str_at(pv, "/status/phase") != "Failed" {
            ctl.events.record(
                pv,
                EventType::Warning,
                "VolumeFailedDelete",
                "berth deletes only the volumes it provisioned; set persistentVolumeReclaimPolicy: Retain on static volumes, or delete this one yourself",
            );
            set_pv_phase(store, pv, "Failed")?;
        }
        return Ok(());
    }
    let dir = crate::storage::volume_dir(&ctl.volumes, &name);
    if !Path::new(&dir).starts_with(&ctl.volumes) {
        return Ok(());
    }
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        ctl.events.record(
            pv,
            EventType::Warning,
            "VolumeFailedDelete",
            &format!("cannot remove {}: {e}", dir.display()),
        );
        return Err(StoreError::Api(ApiError::internal(e.to_string())));
    }
    match store.delete(pv_rt()?, None, &name, &DeleteOptions::default()) {
        Ok(_) | Err(StoreError::Api(ApiError::NotFound(_))) => {
            tracing::info!(volume = %name, "deleted a released volume and its data");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Measures a local-path volume (at most every [`MEASURE_EVERY`]) and writes the bytes on
/// its claim when they changed.
fn measure(store: &Store, ctl: &PvController, pv: &Value, c: &Value) {
    let name = meta::name(pv).to_string();
    {
        let Ok(mut m) = ctl.measured.lock() else {
            return;
        };
        if m.get(&name).is_some_and(|t| t.elapsed() < MEASURE_EVERY) {
            return;
        }
        m.insert(name.clone(), Instant::now());
    }
    let dir = crate::storage::volume_dir(&ctl.volumes, &name);
    // A quota counts the bytes already; else walk the directory.
    let Some(used) = crate::quota::used(&dir).or_else(|| crate::storage::disk_usage(&dir).ok())
    else {
        return;
    };
    let used = used.to_string();
    if meta::annotations(c).get(USED_BYTES_ANNOTATION) == Some(&used) {
        return;
    }
    let r = update_claim(store, c, move |cur, new| {
        let mut ann = meta::annotations(cur);
        ann.insert(USED_BYTES_ANNOTATION.into(), used);
        meta::set(new, "annotations", Some(json!(ann)));
    });
    if let Err(e) = r.map(drop).or_else(ignore_gone) {
        tracing::warn!(volume = %name, error = %e, "cannot record a volume's usage");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(class: Option<&str>, size: &str, modes: &[&str]) -> Value {
        let mut c = json!({"metadata": {"name": "c", "namespace": "default", "uid": "u1"},
            "spec": {"accessModes": modes, "resources": {"requests": {"storage": size}}}});
        if let Some(cl) = class {
            c["spec"]["storageClassName"] = json!(cl);
        }
        c
    }

    fn pv(class: &str, size: &str, modes: &[&str]) -> Value {
        json!({"metadata": {"name": format!("pv-{size}"), "labels": {"tier": "fast"}},
            "spec": {"storageClassName": class, "capacity": {"storage": size}, "accessModes": modes}})
    }

    #[test]
    fn static_volumes_fit_by_class_size_modes_and_selector() {
        let c = claim(Some("manual"), "1Gi", &["ReadWriteOnce"]);
        assert!(fits(
            &pv("manual", "1Gi", &["ReadWriteOnce", "ReadOnlyMany"]),
            &c
        ));
        assert!(!fits(&pv("manual", "512Mi", &["ReadWriteOnce"]), &c));
        assert!(!fits(&pv("other", "2Gi", &["ReadWriteOnce"]), &c));
        assert!(!fits(&pv("manual", "2Gi", &["ReadOnlyMany"]), &c));
        // No class on the claim matches only volumes without a class.
        let none = claim(Some(""), "1Gi", &["ReadWriteOnce"]);
        assert!(fits(&pv("", "1Gi", &["ReadWriteOnce"]), &none));
        assert!(!fits(&pv("manual", "1Gi", &["ReadWriteOnce"]), &none));
        let mut sel = c.clone();
        sel["spec"]["selector"] = json!({"matchLabels": {"tier": "slow"}});
        assert!(!fits(&pv("manual", "1Gi", &["ReadWriteOnce"]), &sel));
        sel["spec"]["selector"] = json!({"matchLabels": {"tier": "fast"}});
        assert!(fits(&pv("manual", "1Gi", &["ReadWriteOnce"]), &sel));
    }

    #[test]
    fn claims_of_running_pods_are_in_use() {
        let pods = vec![
            json!({"metadata": {"namespace": "a"}, "status": {"phase": "Running"},
                "spec": {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]}}),
            json!({"metadata": {"namespace": "a"}, "status": {"phase": "Succeeded"},
                "spec": {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "old"}}]}}),
        ];
        let used = claims_in_use(&pods);
        assert!(used.contains(&("a".to_string(), "data".to_string())));
        assert!(!used.contains(&("a".to_string(), "old".to_string())));
    }
}
