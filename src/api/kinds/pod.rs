//! Pods and pod templates: defaulting (`SetDefaults_PodSpec`, `SetDefaults_Container`,
//! `SetDefaults_Pod`, …), validation (`ValidatePodSpec`), QoS class and the pod update rule.
//!
//! [`default_pod_spec`] and [`validate_pod_spec`] serve every pod template too (Deployment,
//! ReplicaSet, StatefulSet, Job, CronJob). What only Kubernetes' `SetDefaults_Pod` does —
//! requests copied from limits, `enableServiceLinks` — is applied to Pods alone, as there:
//! the Pods a controller creates from a template get it when they are admitted.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Container, EnvVar, HTTPGetAction, LifecycleHandler, ObjectFieldSelector, Pod, PodSpec,
    PodStatus, PodTemplateSpec, Probe, ResourceRequirements, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{default_nonzero, default_str};
use crate::api::error::FieldError;
use crate::api::registry::Admit;
use crate::api::validation::{
    self, NONNEGATIVE_MSG, PROTOCOLS, QuantityValue, config_key_errors, env_var_name_errors,
    invalid_raw, name_errors, not_found, parse_ip, parse_quantity, port_name_errors,
    qualified_name_errors, validate_labels, validate_nonnegative, validate_port_num,
    validate_port_num_or_name, validate_quantity, validate_supported,
};

impl Admit for Pod {
    fn prepare_for_create(&mut self) {
        // The QoS class is computed on the defaulted spec, as Kubernetes decodes (and so
        // defaults) before `PrepareForCreate`; defaulting is idempotent.
        let qos = self.spec.as_mut().map(|spec| {
            default_pod_spec(spec);
            default_pod_only(spec);
            pod_qos_class(spec)
        });
        self.status = Some(PodStatus {
            phase: Some("Pending".into()),
            qos_class: qos.map(str::to_string),
            ..Default::default()
        });
    }

    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(Default::default);
        default_pod_spec(spec);
        default_pod_only(spec);
    }

    fn validate(&self, errs: &mut Vec<FieldError>) {
        match &self.spec {
            Some(spec) => validate_pod_spec(spec, "spec", &[], errs),
            None => errs.push(FieldError::required("spec", "")),
        }
    }

    fn validate_update(&self, old: &Self, errs: &mut Vec<FieldError>) {
        let (Some(new), Some(old)) = (&self.spec, &old.spec) else {
            return;
        };
        // Kubernetes: copy the mutable fields from the old spec into the new one; anything
        // still different was an illegal change.
        let mut rest = new.clone();
        copy_images(&mut rest.containers, &old.containers);
        if let (Some(r), Some(o)) = (rest.init_containers.as_mut(), old.init_containers.as_ref()) {
            copy_images(r, o);
        }
        rest.active_deadline_seconds = old.active_deadline_seconds;
        let old_tolerations = old.tolerations.as_deref().unwrap_or_default();
        let new_tolerations = rest.tolerations.as_deref().unwrap_or_default();
        if old_tolerations.iter().all(|t| new_tolerations.contains(t)) {
            rest.tolerations = old.tolerations.clone();
        }
        if old.termination_grace_period_seconds.is_some_and(|s| s < 0)
            && rest.termination_grace_period_seconds == Some(1)
        {
            rest.termination_grace_period_seconds = old.termination_grace_period_seconds;
        }
        if rest != *old {
            errs.push(FieldError::forbidden(
                "spec",
                "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            ));
        }
    }
}

fn copy_images(new: &mut [Container], old: &[Container]) {
    if new.len() == old.len() {
        for (n, o) in new.iter_mut().zip(old) {
            n.image.clone_from(&o.image);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Defaulting
// ---------------------------------------------------------------------------------------------

/// Kubernetes' pod spec defaults (`SetDefaults_PodSpec` and everything it reaches).
pub fn default_pod_spec(spec: &mut PodSpec) {
    default_str(&mut spec.dns_policy, "ClusterFirst");
    default_str(&mut spec.restart_policy, "Always");
    spec.security_context.get_or_insert_with(Default::default);
    if spec.termination_grace_period_seconds.is_none() {
        spec.termination_grace_period_seconds = Some(30);
    }
    default_str(&mut spec.scheduler_name, "default-scheduler");
    let host_network = spec.host_network == Some(true);
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        default_container(c, host_network);
    }
    for v in spec.volumes.iter_mut().flatten() {
        default_volume(v);
    }
}

/// Defaults only a Pod gets, not a template (`SetDefaults_Pod`).
fn default_pod_only(spec: &mut PodSpec) {
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        if let Some(resources) = c.resources.as_mut() {
            requests_from_limits(resources);
        }
    }
    // Pod-level resources: a limit nobody requests anything for becomes the request.
    let requested_by_containers: BTreeSet<String> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .filter_map(|c| c.resources.as_ref()?.requests.as_ref())
        .flat_map(|r| r.keys().cloned())
        .collect();
    if let Some(resources) = spec.resources.as_mut()
        && let Some(limits) = resources.limits.as_ref().filter(|l| !l.is_empty())
    {
        let limits = limits.clone();
        let requests = resources.requests.get_or_insert_with(BTreeMap::new);
        for (name, q) in limits {
            if (name == "cpu" || name == "memory") && !requested_by_containers.contains(&name) {
                requests.entry(name).or_insert(q);
            }
        }
    }
    if spec.enable_service_links.is_none() {
        spec.enable_service_links = Some(true);
    }
}

/// A limit without a request makes the request equal to the limit.
fn requests_from_limits(resources: &mut ResourceRequirements) {
    if let Some(limits) = &resources.limits {
        let requests = resources.requests.get_or_insert_with(BTreeMap::new);
        for (name, q) in limits {
            requests.entry(name.clone()).or_insert_with(|| q.clone());
        }
    }
}

fn default_container(c: &mut Container, host_network: bool) {
    if c.image_pull_policy.as_deref().is_none_or(str::is_empty) {
        let policy = default_pull_policy(c.image.as_deref().unwrap_or_default());
        c.image_pull_policy = Some(policy.to_string());
    }
    default_str(&mut c.termination_message_path, "/dev/termination-log");
    default_str(&mut c.termination_message_policy, "File");
    for p in c.ports.iter_mut().flatten() {
        default_str(&mut p.protocol, "TCP");
        if host_network {
            default_nonzero(&mut p.host_port, p.container_port);
        }
    }
    for probe in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ]
    .into_iter()
    .flatten()
    {
        default_probe(probe);
    }
    if let Some(lifecycle) = c.lifecycle.as_mut() {
        for h in [&mut lifecycle.post_start, &mut lifecycle.pre_stop]
            .into_iter()
            .flatten()
        {
            if let Some(get) = h.http_get.as_mut() {
                default_http_get(get);
            }
        }
    }
    for e in c.env.iter_mut().flatten() {
        if let Some(f) = e.value_from.as_mut().and_then(|s| s.field_ref.as_mut()) {
            default_field_ref(f);
        }
    }
}

/// `Always` for `:latest` or an untagged, undigested image; `IfNotPresent` otherwise.
fn default_pull_policy(image: &str) -> &'static str {
    if image.is_empty() {
        return "IfNotPresent";
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match (last.split_once(':').map(|(_, tag)| tag), digest) {
        (Some("latest"), _) | (None, None) => "Always",
        _ => "IfNotPresent",
    }
}

fn default_probe(p: &mut Probe) {
    default_nonzero(&mut p.timeout_seconds, 1);
    default_nonzero(&mut p.period_seconds, 10);
    default_nonzero(&mut p.success_threshold, 1);
    default_nonzero(&mut p.failure_threshold, 3);
    if let Some(get) = p.http_get.as_mut() {
        default_http_get(get);
    }
    if let Some(grpc) = p.grpc.as_mut() {
        grpc.service.get_or_insert_with(String::new);
    }
}

fn default_http_get(get: &mut HTTPGetAction) {
    default_str(&mut get.path, "/");
    default_str(&mut get.scheme, "HTTP");
}

fn default_field_ref(f: &mut ObjectFieldSelector) {
    default_str(&mut f.api_version, "v1");
}

fn default_volume(v: &mut Volume) {
    if volume_source_count(v) == 0 {
        v.empty_dir = Some(Default::default());
    }
    if let Some(s) = v.secret.as_mut() {
        s.default_mode.get_or_insert(0o644);
    }
    if let Some(s) = v.config_map.as_mut() {
        s.default_mode.get_or_insert(0o644);
    }
    if let Some(s) = v.downward_api.as_mut() {
        s.default_mode.get_or_insert(0o644);
        for item in s.items.iter_mut().flatten() {
            if let Some(f) = item.field_ref.as_mut() {
                default_field_ref(f);
            }
        }
    }
    if let Some(s) = v.projected.as_mut() {
        s.default_mode.get_or_insert(0o644);
        for source in s.sources.iter_mut().flatten() {
            if let Some(t) = source.service_account_token.as_mut() {
                t.expiration_seconds.get_or_insert(3600);
            }
            let items = source.downward_api.as_mut().and_then(|d| d.items.as_mut());
            for item in items.into_iter().flatten() {
                if let Some(f) = item.field_ref.as_mut() {
                    default_field_ref(f);
                }
            }
        }
    }
    if let Some(s) = v.host_path.as_mut() {
        s.type_.get_or_insert_with(String::new);
    }
    if let Some(t) = v
        .ephemeral
        .as_mut()
        .and_then(|e| e.volume_claim_template.as_mut())
    {
        default_str(&mut t.spec.volume_mode, "Filesystem");
    }
}

/// How many volume sources a volume names (exactly one is valid).
fn volume_source_count(v: &Volume) -> usize {
    [
        v.aws_elastic_block_store.is_some(),
        v.azure_disk.is_some(),
        v.azure_file.is_some(),
        v.cephfs.is_some(),
        v.cinder.is_some(),
        v.config_map.is_some(),
        v.csi.is_some(),
        v.downward_api.is_some(),
        v.empty_dir.is_some(),
        v.ephemeral.is_some(),
        v.fc.is_some(),
        v.flex_volume.is_some(),
        v.flocker.is_some(),
        v.gce_persistent_disk.is_some(),
        v.git_repo.is_some(),
        v.glusterfs.is_some(),
        v.host_path.is_some(),
        v.image.is_some(),
        v.iscsi.is_some(),
        v.nfs.is_some(),
        v.persistent_volume_claim.is_some(),
        v.photon_persistent_disk.is_some(),
        v.portworx_volume.is_some(),
        v.projected.is_some(),
        v.quobyte.is_some(),
        v.rbd.is_some(),
        v.scale_io.is_some(),
        v.secret.is_some(),
        v.storageos.is_some(),
        v.vsphere_volume.is_some(),
    ]
    .into_iter()
    .filter(|&b| b)
    .count()
}

// ---------------------------------------------------------------------------------------------
// QoS
// ---------------------------------------------------------------------------------------------

/// The QoS class Kubernetes computes for a (defaulted) pod spec: `Guaranteed` when every
/// container limits cpu and memory and requests equal limits, `BestEffort` when nothing
/// requests or limits cpu or memory, `Burstable` otherwise.
pub fn pod_qos_class(spec: &PodSpec) -> &'static str {
    const QOS: [&str; 2] = ["cpu", "memory"];
    let positive = |map: Option<&BTreeMap<String, Quantity>>| -> BTreeMap<String, QuantityValue> {
        map.into_iter()
            .flatten()
            .filter(|(name, _)| QOS.contains(&name.as_str()))
            .filter_map(|(name, q)| Some((name.clone(), parse_quantity(&q.0).ok()?)))
            .filter(|(_, v)| *v > QuantityValue::ZERO)
            .collect()
    };
    let mut requests: BTreeMap<String, QuantityValue> = BTreeMap::new();
    let mut limits: BTreeMap<String, QuantityValue> = BTreeMap::new();
    let mut guaranteed = true;
    if let Some(pod) = spec.resources.as_ref().filter(|r| {
        r.requests.as_ref().is_some_and(|m| !m.is_empty())
            || r.limits.as_ref().is_some_and(|m| !m.is_empty())
    }) {
        // Pod-level resources decide alone when they are set.
        requests = positive(pod.requests.as_ref());
        limits = positive(pod.limits.as_ref());
        guaranteed = QOS.iter().all(|r| limits.contains_key(*r));
    } else {
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            let r = c.resources.as_ref();
            for (name, v) in positive(r.and_then(|r| r.requests.as_ref())) {
                let sum = requests.entry(name).or_insert(QuantityValue::ZERO);
                *sum = sum.saturating_add(v);
            }
            let found = positive(r.and_then(|r| r.limits.as_ref()));
            if !QOS.iter().all(|q| found.contains_key(*q)) {
                guaranteed = false;
            }
            for (name, v) in found {
                let sum = limits.entry(name).or_insert(QuantityValue::ZERO);
                *sum = sum.saturating_add(v);
            }
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests
            .iter()
            .all(|(name, req)| limits.get(name) == Some(req))
        && requests.len() == limits.len()
    {
        return "Guaranteed";
    }
    "Burstable"
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
/// Kubernetes' limits on a pod's `dnsConfig` (the resolver's own limits).
const MAX_DNS_NAMESERVERS: usize = 3;
const MAX_DNS_SEARCH_PATHS: usize = 32;
const MAX_DNS_SEARCH_CHARS: usize = 2048;

/// A string list as Kubernetes prints an invalid one: `[]string{"a", "b"}`.
fn go_strings(list: &[String]) -> String {
    let quoted: Vec<String> = list.iter().map(|s| format!("{s:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

fn validate_dns_config(
    config: &k8s_openapi::api::core::v1::PodDNSConfig,
    policy: Option<&str>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let servers = config.nameservers.as_deref().unwrap_or_default();
    if policy == Some("None") && servers.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.nameservers"),
            "must provide at least one DNS nameserver when `dnsPolicy` is None",
        ));
    }
    if servers.len() > MAX_DNS_NAMESERVERS {
        errs.push(invalid_raw(
            format!("{path}.nameservers"),
            go_strings(servers),
            &format!("must not have more than {MAX_DNS_NAMESERVERS} nameservers"),
        ));
    }
    let searches = config.searches.as_deref().unwrap_or_default();
    if searches.len() > MAX_DNS_SEARCH_PATHS {
        errs.push(invalid_raw(
            format!("{path}.searches"),
            go_strings(searches),
            &format!("must not have more than {MAX_DNS_SEARCH_PATHS} search paths"),
        ));
    }
    if searches.join(" ").len() > MAX_DNS_SEARCH_CHARS {
        errs.push(invalid_raw(
            format!("{path}.searches"),
            go_strings(searches),
            &format!(
                "must not have more than {MAX_DNS_SEARCH_CHARS} characters (including spaces) in the search list"
            ),
        ));
    }
    for (i, search) in searches.iter().enumerate() {
        // A trailing dot is fine.
        let s = search.strip_suffix('.').unwrap_or(search);
        for msg in name_errors(s, validation::NameRule::Subdomain) {
            errs.push(FieldError::invalid(
                format!("{path}.searches[{i}]"),
                s,
                &msg,
            ));
        }
    }
    for (i, option) in config.options.iter().flatten().enumerate() {
        if option.name.as_deref().unwrap_or_default().is_empty() {
            errs.push(FieldError::required(
                format!("{path}.options[{i}]"),
                "must not be empty",
            ));
        }
    }
}

const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];

/// Validates a pod template (`spec.template`): its labels and annotations, then its spec.
/// `extra_volumes` are names that count as declared volumes (a StatefulSet's
/// `volumeClaimTemplates`).
pub fn validate_pod_template(
    template: &PodTemplateSpec,
    path: &str,
    extra_volumes: &[String],
    errs: &mut Vec<FieldError>,
) {
    if let Some(meta) = &template.metadata {
        if let Some(labels) = &meta.labels {
            validate_labels(&format!("{path}.metadata.labels"), labels, errs);
        }
        if let Some(annotations) = &meta.annotations {
            validation::validate_annotations(
                &format!("{path}.metadata.annotations"),
                annotations,
                errs,
            );
        }
    }
    match &template.spec {
        Some(spec) => validate_pod_spec(spec, &format!("{path}.spec"), extra_volumes, errs),
        None => errs.push(FieldError::required(format!("{path}.spec"), "")),
    }
}

/// Validates a pod spec at `path` (`spec`, `spec.template.spec`).
pub fn validate_pod_spec(
    spec: &PodSpec,
    path: &str,
    extra_volumes: &[String],
    errs: &mut Vec<FieldError>,
) {
    let mut volumes: BTreeSet<&str> = extra_volumes.iter().map(String::as_str).collect();
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        let vpath = format!("{path}.volumes[{i}]");
        validate_volume(v, &vpath, errs);
        if !v.name.is_empty() && !volumes.insert(v.name.as_str()) {
            errs.push(FieldError::duplicate(format!("{vpath}.name"), &v.name));
        }
    }

    if spec.containers.is_empty() {
        errs.push(FieldError::required(format!("{path}.containers"), ""));
    }
    let mut names = BTreeSet::new();
    let host_network = spec.host_network == Some(true);
    let groups = [
        (
            "initContainers",
            true,
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
        ("containers", false, spec.containers.as_slice()),
    ];
    for (group, init, containers) in groups {
        for (i, c) in containers.iter().enumerate() {
            let cpath = format!("{path}.{group}[{i}]");
            if !c.name.is_empty() && !names.insert(c.name.as_str()) {
                errs.push(FieldError::duplicate(format!("{cpath}.name"), &c.name));
            }
            validate_container(c, &cpath, &volumes, init, host_network, errs);
        }
    }

    let restart = spec.restart_policy.as_deref().unwrap_or_default();
    if restart.is_empty() {
        errs.push(FieldError::required(format!("{path}.restartPolicy"), ""));
    }
    validate_supported(
        &format!("{path}.restartPolicy"),
        Some(restart).filter(|s| !s.is_empty()),
        RESTART_POLICIES,
        errs,
    );
    let dns = spec.dns_policy.as_deref();
    validate_supported(&format!("{path}.dnsPolicy"), dns, DNS_POLICIES, errs);
    if dns == Some("None") && spec.dns_config.is_none() {
        errs.push(FieldError::required(
            format!("{path}.dnsConfig"),
            "must provide `dnsConfig` when `dnsPolicy` is None",
        ));
    }
    if let Some(config) = &spec.dns_config {
        validate_dns_config(config, dns, &format!("{path}.dnsConfig"), errs);
    }
    for (i, ns) in spec
        .dns_config
        .iter()
        .flat_map(|c| c.nameservers.iter().flatten())
        .enumerate()
    {
        if parse_ip(ns).is_none() {
            errs.push(FieldError::invalid(
                format!("{path}.dnsConfig.nameservers[{i}]"),
                ns,
                validation::IP_MSG,
            ));
        }
    }
    if let Some(s) = spec.active_deadline_seconds
        && s < 1
    {
        errs.push(invalid_raw(
            format!("{path}.activeDeadlineSeconds"),
            s,
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    for (field, value) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            for msg in name_errors(v, validation::NameRule::Label) {
                errs.push(FieldError::invalid(format!("{path}.{field}"), v, &msg));
            }
        }
    }
    if let Some(selector) = &spec.node_selector {
        validate_labels(&format!("{path}.nodeSelector"), selector, errs);
    }
    for (i, t) in spec.tolerations.iter().flatten().enumerate() {
        validate_toleration(t, &format!("{path}.tolerations[{i}]"), errs);
    }
    if let Some(resources) = &spec.resources {
        validate_resources(resources, &format!("{path}.resources"), errs);
    }
    validate_nonnegative(
        &format!("{path}.terminationGracePeriodSeconds"),
        spec.termination_grace_period_seconds,
        errs,
    );
}

fn validate_volume(v: &Volume, path: &str, errs: &mut Vec<FieldError>) {
    if v.name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else {
        for msg in name_errors(&v.name, validation::NameRule::Label) {
            errs.push(FieldError::invalid(format!("{path}.name"), &v.name, &msg));
        }
    }
    match volume_source_count(v) {
        0 => errs.push(FieldError::required(path, "must specify a volume type")),
        1 => {}
        _ => errs.push(FieldError::forbidden(
            path,
            "may not specify more than 1 volume type",
        )),
    }
    let mode_check = |field: String, mode: Option<i32>, errs: &mut Vec<FieldError>| {
        if let Some(m) = mode
            && !(0..=0o777).contains(&m)
        {
            errs.push(invalid_raw(
                field,
                m,
                "must be a number between 0 and 0777 (octal), both inclusive",
            ));
        }
    };
    let items_check = |base: String,
                       items: &[k8s_openapi::api::core::v1::KeyToPath],
                       errs: &mut Vec<FieldError>| {
        for (i, item) in items.iter().enumerate() {
            let ipath = format!("{base}.items[{i}]");
            if item.key.is_empty() {
                errs.push(FieldError::required(format!("{ipath}.key"), ""));
            }
            validate_relative_path(&format!("{ipath}.path"), &item.path, true, errs);
            mode_check(format!("{ipath}.mode"), item.mode, errs);
        }
    };
    if let Some(s) = &v.host_path {
        if s.path.is_empty() {
            errs.push(FieldError::required(format!("{path}.hostPath.path"), ""));
        }
        validate_supported(
            &format!("{path}.hostPath.type"),
            s.type_.as_deref(),
            &[
                "",
                "DirectoryOrCreate",
                "Directory",
                "FileOrCreate",
                "File",
                "Socket",
                "CharDevice",
                "BlockDevice",
            ],
            errs,
        );
    }
    if let Some(s) = &v.config_map {
        if s.name.is_empty() {
            errs.push(FieldError::required(format!("{path}.configMap.name"), ""));
        }
        mode_check(
            format!("{path}.configMap.defaultMode"),
            s.default_mode,
            errs,
        );
        items_check(
            format!("{path}.configMap"),
            s.items.as_deref().unwrap_or_default(),
            errs,
        );
    }
    if let Some(s) = &v.secret {
        if s.secret_name.as_deref().is_none_or(str::is_empty) {
            errs.push(FieldError::required(
                format!("{path}.secret.secretName"),
                "",
            ));
        }
        mode_check(format!("{path}.secret.defaultMode"), s.default_mode, errs);
        items_check(
            format!("{path}.secret"),
            s.items.as_deref().unwrap_or_default(),
            errs,
        );
    }
    if let Some(s) = &v.persistent_volume_claim
        && s.claim_name.is_empty()
    {
        errs.push(FieldError::required(
            format!("{path}.persistentVolumeClaim.claimName"),
            "",
        ));
    }
    if let Some(s) = &v.nfs {
        if s.server.is_empty() {
            errs.push(FieldError::required(format!("{path}.nfs.server"), ""));
        }
        if !s.path.starts_with('/') {
            errs.push(FieldError::invalid(
                format!("{path}.nfs.path"),
                &s.path,
                "must be an absolute path",
            ));
        }
    }
    if let Some(s) = &v.empty_dir {
        validate_supported(
            &format!("{path}.emptyDir.medium"),
            s.medium.as_deref(),
            &["", "Memory", "HugePages"],
            errs,
        );
        if let Some(limit) = &s.size_limit
            && let Some(value) =
                validate_quantity(&format!("{path}.emptyDir.sizeLimit"), limit, errs)
            && value.is_negative()
        {
            errs.push(FieldError::invalid(
                format!("{path}.emptyDir.sizeLimit"),
                &limit.0,
                NONNEGATIVE_MSG,
            ));
        }
    }
    if let Some(s) = &v.downward_api {
        mode_check(
            format!("{path}.downwardAPI.defaultMode"),
            s.default_mode,
            errs,
        );
        for (i, item) in s.items.iter().flatten().enumerate() {
            let ipath = format!("{path}.downwardAPI.items[{i}]");
            validate_relative_path(&format!("{ipath}.path"), &item.path, true, errs);
            mode_check(format!("{ipath}.mode"), item.mode, errs);
            match (&item.field_ref, &item.resource_field_ref) {
                (Some(f), None) => validate_field_ref(f, &format!("{ipath}.fieldRef"), true, errs),
                (None, Some(_)) => {}
                (None, None) => errs.push(FieldError::required(
                    ipath,
                    "one of fieldRef and resourceFieldRef is required",
                )),
                (Some(_), Some(_)) => errs.push(FieldError::invalid(
                    ipath,
                    "",
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                )),
            }
        }
    }
    if let Some(s) = &v.projected {
        mode_check(
            format!("{path}.projected.defaultMode"),
            s.default_mode,
            errs,
        );
    }
    if let Some(s) = &v.image
        && s.reference.as_deref().is_none_or(str::is_empty)
    {
        errs.push(FieldError::required(format!("{path}.image.reference"), ""));
    }
}

/// A path inside a volume or container: relative, without `..` segments.
fn validate_relative_path(field: &str, p: &str, required: bool, errs: &mut Vec<FieldError>) {
    if p.is_empty() {
        if required {
            errs.push(FieldError::required(field, ""));
        }
        return;
    }
    if p.starts_with('/') {
        errs.push(FieldError::invalid(field, p, "must be a relative path"));
    }
    if p.split('/').any(|seg| seg == "..") {
        errs.push(FieldError::invalid(field, p, "must not contain '..'"));
    }
}

fn validate_container(
    c: &Container,
    path: &str,
    volumes: &BTreeSet<&str>,
    init: bool,
    host_network: bool,
    errs: &mut Vec<FieldError>,
) {
    if c.name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else {
        for msg in name_errors(&c.name, validation::NameRule::Label) {
            errs.push(FieldError::invalid(format!("{path}.name"), &c.name, &msg));
        }
    }
    match c.image.as_deref() {
        None | Some("") => errs.push(FieldError::required(format!("{path}.image"), "")),
        Some(image) if image.trim() != image => errs.push(FieldError::invalid(
            format!("{path}.image"),
            image,
            "must not have leading or trailing whitespace",
        )),
        Some(_) => {}
    }
    validate_supported(
        &format!("{path}.imagePullPolicy"),
        c.image_pull_policy.as_deref(),
        PULL_POLICIES,
        errs,
    );
    validate_supported(
        &format!("{path}.terminationMessagePolicy"),
        c.termination_message_policy.as_deref(),
        &["File", "FallbackToLogsOnError"],
        errs,
    );

    let mut port_names = BTreeSet::new();
    for (i, p) in c.ports.iter().flatten().enumerate() {
        let ppath = format!("{path}.ports[{i}]");
        if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = port_name_errors(name);
            for msg in &msgs {
                errs.push(FieldError::invalid(format!("{ppath}.name"), name, msg));
            }
            if msgs.is_empty() && !port_names.insert(name) {
                errs.push(FieldError::duplicate(format!("{ppath}.name"), name));
            }
        }
        if p.container_port == 0 {
            errs.push(FieldError::required(format!("{ppath}.containerPort"), ""));
        } else {
            validate_port_num(&format!("{ppath}.containerPort"), p.container_port, errs);
        }
        if let Some(hp) = p.host_port.filter(|hp| *hp != 0) {
            validate_port_num(&format!("{ppath}.hostPort"), hp, errs);
            if host_network && hp != p.container_port {
                errs.push(invalid_raw(
                    format!("{ppath}.hostPort"),
                    hp,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
        validate_supported(
            &format!("{ppath}.protocol"),
            p.protocol.as_deref(),
            PROTOCOLS,
            errs,
        );
        if let Some(ip) = p.host_ip.as_deref().filter(|s| !s.is_empty())
            && parse_ip(ip).is_none()
        {
            errs.push(FieldError::invalid(
                format!("{ppath}.hostIP"),
                ip,
                validation::IP_MSG,
            ));
        }
    }

    for (i, e) in c.env.iter().flatten().enumerate() {
        validate_env_var(e, &format!("{path}.env[{i}]"), errs);
    }
    for (i, e) in c.env_from.iter().flatten().enumerate() {
        let epath = format!("{path}.envFrom[{i}]");
        if let Some(prefix) = e.prefix.as_deref().filter(|p| !p.is_empty()) {
            for msg in env_var_name_errors(prefix) {
                errs.push(FieldError::invalid(format!("{epath}.prefix"), prefix, &msg));
            }
        }
        match (&e.config_map_ref, &e.secret_ref) {
            (Some(_), Some(_)) => errs.push(FieldError::invalid(
                epath,
                "",
                "may not have more than one field specified at a time",
            )),
            (None, None) => errs.push(FieldError::invalid(
                epath,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            )),
            (Some(r), None) => {
                validate_ref_name(&format!("{epath}.configMapRef.name"), &r.name, errs)
            }
            (None, Some(r)) => validate_ref_name(&format!("{epath}.secretRef.name"), &r.name, errs),
        }
    }

    let mut mount_paths = BTreeSet::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        validate_volume_mount(
            m,
            &format!("{path}.volumeMounts[{i}]"),
            volumes,
            &mut mount_paths,
            errs,
        );
    }

    if let Some(r) = &c.resources {
        validate_resources(r, &format!("{path}.resources"), errs);
    }

    let sidecar = init && c.restart_policy.as_deref() == Some("Always");
    if init {
        validate_supported(
            &format!("{path}.restartPolicy"),
            c.restart_policy.as_deref(),
            &["Always"],
            errs,
        );
    } else if c.restart_policy.is_some() {
        errs.push(FieldError::forbidden(
            format!("{path}.restartPolicy"),
            "may not be set for non-init containers",
        ));
    }
    let probes = [
        ("livenessProbe", &c.liveness_probe),
        ("readinessProbe", &c.readiness_probe),
        ("startupProbe", &c.startup_probe),
    ];
    for (name, probe) in probes {
        let Some(probe) = probe else { continue };
        let ppath = format!("{path}.{name}");
        if init && !sidecar {
            errs.push(FieldError::forbidden(
                ppath,
                "may not be set for init containers without restartPolicy=Always",
            ));
            continue;
        }
        validate_probe(probe, &ppath, name, errs);
    }
    if let Some(lifecycle) = &c.lifecycle {
        if init && !sidecar {
            errs.push(FieldError::forbidden(
                format!("{path}.lifecycle"),
                "may not be set for init containers without restartPolicy=Always",
            ));
        } else {
            for (name, h) in [
                ("postStart", &lifecycle.post_start),
                ("preStop", &lifecycle.pre_stop),
            ] {
                if let Some(h) = h {
                    validate_lifecycle_handler(h, &format!("{path}.lifecycle.{name}"), errs);
                }
            }
        }
    }
}

fn validate_ref_name(field: &str, name: &str, errs: &mut Vec<FieldError>) {
    if name.is_empty() {
        errs.push(FieldError::required(field, ""));
    } else {
        for msg in name_errors(name, validation::NameRule::Subdomain) {
            errs.push(FieldError::invalid(field, name, &msg));
        }
    }
}

fn validate_env_var(e: &EnvVar, path: &str, errs: &mut Vec<FieldError>) {
    if e.name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else {
        for msg in env_var_name_errors(&e.name) {
            errs.push(FieldError::invalid(format!("{path}.name"), &e.name, &msg));
        }
    }
    let Some(from) = &e.value_from else { return };
    let fpath = format!("{path}.valueFrom");
    let sources = [
        from.field_ref.is_some(),
        from.resource_field_ref.is_some(),
        from.config_map_key_ref.is_some(),
        from.secret_key_ref.is_some(),
        from.file_key_ref.is_some(),
    ]
    .into_iter()
    .filter(|&b| b)
    .count();
    if e.value.as_deref().is_some_and(|v| !v.is_empty()) {
        errs.push(FieldError::invalid(
            &fpath,
            "",
            "may not be specified when `value` is not empty",
        ));
    }
    match sources {
        0 => errs.push(FieldError::invalid(
            &fpath,
            "",
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`",
        )),
        1 => {}
        _ => errs.push(FieldError::invalid(
            &fpath,
            "",
            "may not have more than one field specified at a time",
        )),
    }
    if let Some(f) = &from.field_ref {
        validate_field_ref(f, &format!("{fpath}.fieldRef"), false, errs);
    }
    if let Some(r) = &from.resource_field_ref {
        let supported = [
            "limits.cpu",
            "limits.memory",
            "limits.ephemeral-storage",
            "requests.cpu",
            "requests.memory",
            "requests.ephemeral-storage",
        ];
        let hugepages = r.resource.starts_with("limits.hugepages-")
            || r.resource.starts_with("requests.hugepages-");
        if r.resource.is_empty() {
            errs.push(FieldError::required(
                format!("{fpath}.resourceFieldRef.resource"),
                "",
            ));
        } else if !hugepages {
            validate_supported(
                &format!("{fpath}.resourceFieldRef.resource"),
                Some(&r.resource),
                &supported,
                errs,
            );
        }
    }
    let key_refs = [
        (
            "configMapKeyRef",
            from.config_map_key_ref.as_ref().map(|r| (&r.name, &r.key)),
        ),
        (
            "secretKeyRef",
            from.secret_key_ref.as_ref().map(|r| (&r.name, &r.key)),
        ),
    ];
    for (field, r) in key_refs {
        let Some((name, key)) = r else { continue };
        validate_ref_name(&format!("{fpath}.{field}.name"), name, errs);
        if key.is_empty() {
            errs.push(FieldError::required(format!("{fpath}.{field}.key"), ""));
        } else {
            for msg in config_key_errors(key) {
                errs.push(FieldError::invalid(
                    format!("{fpath}.{field}.key"),
                    key,
                    &msg,
                ));
            }
        }
    }
}

/// A downward-API field reference; `volume` selects the set valid in volumes.
fn validate_field_ref(
    f: &ObjectFieldSelector,
    path: &str,
    volume: bool,
    errs: &mut Vec<FieldError>,
) {
    validate_supported(
        &format!("{path}.apiVersion"),
        f.api_version.as_deref(),
        &["v1"],
        errs,
    );
    let fp = f.field_path.as_str();
    if fp.is_empty() {
        errs.push(FieldError::required(format!("{path}.fieldPath"), ""));
        return;
    }
    let subscripted = ["metadata.labels", "metadata.annotations"]
        .iter()
        .find_map(|prefix| {
            let rest = fp.strip_prefix(prefix)?;
            let key = rest.strip_prefix("['")?.strip_suffix("']")?;
            Some((*prefix, key))
        });
    if let Some((_, key)) = subscripted {
        for msg in qualified_name_errors(key) {
            errs.push(FieldError::invalid(format!("{path}.fieldPath"), fp, &msg));
        }
        return;
    }
    let env_paths: &[&str] = &[
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.serviceAccountName",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
    ];
    let volume_paths: &[&str] = &[
        "metadata.annotations",
        "metadata.labels",
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
    ];
    validate_supported(
        &format!("{path}.fieldPath"),
        Some(fp),
        if volume { volume_paths } else { env_paths },
        errs,
    );
}

fn validate_volume_mount<'a>(
    m: &'a VolumeMount,
    path: &str,
    volumes: &BTreeSet<&str>,
    mount_paths: &mut BTreeSet<&'a str>,
    errs: &mut Vec<FieldError>,
) {
    if m.name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else if !volumes.contains(m.name.as_str()) {
        errs.push(not_found(format!("{path}.name"), &m.name));
    }
    if m.mount_path.is_empty() {
        errs.push(FieldError::required(format!("{path}.mountPath"), ""));
    } else if !mount_paths.insert(m.mount_path.as_str()) {
        errs.push(FieldError::invalid(
            format!("{path}.mountPath"),
            &m.mount_path,
            "must be unique",
        ));
    }
    if let Some(sub) = &m.sub_path {
        validate_relative_path(&format!("{path}.subPath"), sub, false, errs);
    }
    if m.sub_path.as_deref().is_some_and(|s| !s.is_empty())
        && m.sub_path_expr.as_deref().is_some_and(|s| !s.is_empty())
    {
        errs.push(FieldError::invalid(
            format!("{path}.subPathExpr"),
            m.sub_path_expr.as_deref().unwrap_or_default(),
            "subPathExpr and subPath are mutually exclusive",
        ));
    }
    validate_supported(
        &format!("{path}.mountPropagation"),
        m.mount_propagation.as_deref(),
        &["None", "HostToContainer", "Bidirectional"],
        errs,
    );
}

const STANDARD_CONTAINER_RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage"];

/// Resource names, quantities, and requests ≤ limits.
fn validate_resources(r: &ResourceRequirements, path: &str, errs: &mut Vec<FieldError>) {
    let limits = parse_resource_list(path, "limits", r.limits.as_ref(), errs);
    let requests = parse_resource_list(path, "requests", r.requests.as_ref(), errs);
    for (name, (req, req_str)) in &requests {
        if let Some((lim, lim_str)) = limits.get(name)
            && req > lim
        {
            errs.push(FieldError::invalid(
                format!("{path}.requests[{name}]"),
                req_str,
                &format!("must be less than or equal to {name} limit of {lim_str}"),
            ));
        }
    }
}

/// Checks names and quantities of a resource list, returning the values that parse.
fn parse_resource_list<'a>(
    path: &str,
    kind: &str,
    map: Option<&'a BTreeMap<String, Quantity>>,
    errs: &mut Vec<FieldError>,
) -> BTreeMap<&'a str, (QuantityValue, &'a str)> {
    let mut values = BTreeMap::new();
    for (name, q) in map.into_iter().flatten() {
        let field = format!("{path}.{kind}[{name}]");
        validate_resource_name(&field, name, errs);
        if let Some(v) = validate_quantity(&field, q, errs) {
            if v.is_negative() {
                errs.push(FieldError::invalid(&field, &q.0, NONNEGATIVE_MSG));
            }
            values.insert(name.as_str(), (v, q.0.as_str()));
        }
    }
    values
}

fn validate_resource_name(field: &str, name: &str, errs: &mut Vec<FieldError>) {
    for msg in qualified_name_errors(name) {
        errs.push(FieldError::invalid(field, name, &msg));
    }
    if !name.contains('/')
        && !STANDARD_CONTAINER_RESOURCES.contains(&name)
        && !name.starts_with("hugepages-")
    {
        errs.push(FieldError::invalid(
            field,
            name,
            "must be a standard resource for containers",
        ));
    }
}

fn validate_probe(p: &Probe, path: &str, kind: &str, errs: &mut Vec<FieldError>) {
    let handlers = [
        p.exec.is_some(),
        p.http_get.is_some(),
        p.tcp_socket.is_some(),
        p.grpc.is_some(),
    ]
    .into_iter()
    .filter(|&b| b)
    .count();
    match handlers {
        0 => errs.push(FieldError::required(path, "must specify a handler type")),
        1 => {}
        _ => errs.push(FieldError::forbidden(
            path,
            "may not specify more than 1 handler type",
        )),
    }
    for (field, value) in [
        ("initialDelaySeconds", p.initial_delay_seconds),
        ("timeoutSeconds", p.timeout_seconds),
        ("periodSeconds", p.period_seconds),
        ("successThreshold", p.success_threshold),
        ("failureThreshold", p.failure_threshold),
    ] {
        validate_nonnegative(&format!("{path}.{field}"), value.map(i64::from), errs);
    }
    if kind != "readinessProbe"
        && let Some(s) = p.success_threshold.filter(|s| *s != 1)
    {
        errs.push(invalid_raw(
            format!("{path}.successThreshold"),
            s,
            "must be 1",
        ));
    }
    if kind == "readinessProbe"
        && let Some(s) = p.termination_grace_period_seconds
    {
        errs.push(invalid_raw(
            format!("{path}.terminationGracePeriodSeconds"),
            s,
            "must not be set for readinessProbes",
        ));
    }
    if let Some(s) = p.termination_grace_period_seconds.filter(|s| *s <= 0) {
        errs.push(invalid_raw(
            format!("{path}.terminationGracePeriodSeconds"),
            s,
            "must be greater than 0",
        ));
    }
    if let Some(exec) = &p.exec
        && exec.command.as_ref().is_none_or(Vec::is_empty)
    {
        errs.push(FieldError::required(format!("{path}.exec.command"), ""));
    }
    if let Some(get) = &p.http_get {
        validate_http_get(get, &format!("{path}.httpGet"), errs);
    }
    if let Some(tcp) = &p.tcp_socket {
        validate_port_num_or_name(&format!("{path}.tcpSocket.port"), &tcp.port, errs);
    }
    if let Some(grpc) = &p.grpc {
        validate_port_num(&format!("{path}.grpc.port"), grpc.port, errs);
    }
}

fn validate_http_get(get: &HTTPGetAction, path: &str, errs: &mut Vec<FieldError>) {
    validate_port_num_or_name(&format!("{path}.port"), &get.port, errs);
    validate_supported(
        &format!("{path}.scheme"),
        get.scheme.as_deref(),
        &["HTTP", "HTTPS"],
        errs,
    );
    if let IntOrString::String(s) = &get.port
        && s.is_empty()
    {
        errs.push(FieldError::required(format!("{path}.port"), ""));
    }
}

fn validate_lifecycle_handler(h: &LifecycleHandler, path: &str, errs: &mut Vec<FieldError>) {
    let handlers = [
        h.exec.is_some(),
        h.http_get.is_some(),
        h.tcp_socket.is_some(),
        h.sleep.is_some(),
    ]
    .into_iter()
    .filter(|&b| b)
    .count();
    match handlers {
        0 => errs.push(FieldError::required(path, "must specify a handler type")),
        1 => {}
        _ => errs.push(FieldError::forbidden(
            path,
            "may not specify more than 1 handler type",
        )),
    }
    if let Some(get) = &h.http_get {
        validate_http_get(get, &format!("{path}.httpGet"), errs);
    }
    if let Some(exec) = &h.exec
        && exec.command.as_ref().is_none_or(Vec::is_empty)
    {
        errs.push(FieldError::required(format!("{path}.exec.command"), ""));
    }
    if let Some(sleep) = &h.sleep {
        validate_nonnegative(&format!("{path}.sleep.seconds"), Some(sleep.seconds), errs);
    }
}

/// The taint effects Kubernetes knows.
pub(super) const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

fn validate_toleration(t: &Toleration, path: &str, errs: &mut Vec<FieldError>) {
    let key = t.key.as_deref().unwrap_or_default();
    let op = t.operator.as_deref().unwrap_or_default();
    let effect = t.effect.as_deref().unwrap_or_default();
    let value = t.value.as_deref().unwrap_or_default();
    if !key.is_empty() {
        for msg in qualified_name_errors(key) {
            errs.push(FieldError::invalid(format!("{path}.key"), key, &msg));
        }
    } else if op != "Exists" {
        errs.push(FieldError::invalid(
            format!("{path}.operator"),
            op,
            "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        ));
    }
    if t.toleration_seconds.is_some() && effect != "NoExecute" {
        errs.push(FieldError::invalid(
            format!("{path}.effect"),
            effect,
            "effect must be 'NoExecute' when `tolerationSeconds` is set",
        ));
    }
    match op {
        "" | "Equal" => {
            for msg in validation::label_value_errors(value) {
                errs.push(FieldError::invalid(format!("{path}.operator"), value, &msg));
            }
        }
        "Exists" => {
            if !value.is_empty() {
                errs.push(FieldError::invalid(
                    format!("{path}.operator"),
                    value,
                    "value must be empty when `operator` is 'Exists'",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            format!("{path}.operator"),
            other,
            &["Equal", "Exists"],
        )),
    }
    if !effect.is_empty() {
        validate_supported(&format!("{path}.effect"), Some(effect), TAINT_EFFECTS, errs);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::test_support::{admit_update, ok, patched, rejects, rejects_update};
    use super::*;

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}
        })
    }

    /// Replaces the first container with `container` merged over it.
    fn with_container(container: Value) -> Value {
        let mut p = pod();
        let merged = patched(&p["spec"]["containers"][0], container);
        p["spec"]["containers"][0] = merged;
        p
    }

    #[test]
    fn pod_gets_kubernetes_defaults_and_pending_status() {
        let p = patched(
            &pod(),
            json!({"spec": {
                "containers": [{
                    "name": "web", "image": "nginx",
                    "ports": [{"containerPort": 80}],
                    "livenessProbe": {"httpGet": {"port": 80}},
                    "readinessProbe": {"tcpSocket": {"port": "http"}, "timeoutSeconds": 0},
                    "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                    "volumeMounts": [{"name": "conf", "mountPath": "/etc/conf"},
                                     {"name": "scratch", "mountPath": "/tmp"},
                                     {"name": "host", "mountPath": "/host"}]
                }],
                "volumes": [
                    {"name": "conf", "configMap": {"name": "web-conf"}},
                    {"name": "scratch"},
                    {"name": "host", "hostPath": {"path": "/srv"}}
                ]
            }}),
        );
        let out = ok(&p);
        let spec = &out["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["enableServiceLinks"], true);
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always", "untagged image");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        let live = &c["livenessProbe"];
        assert_eq!(
            (
                &live["timeoutSeconds"],
                &live["periodSeconds"],
                &live["successThreshold"],
                &live["failureThreshold"]
            ),
            (&json!(1), &json!(10), &json!(1), &json!(3))
        );
        assert_eq!(live["httpGet"]["scheme"], "HTTP");
        assert_eq!(live["httpGet"]["path"], "/");
        assert_eq!(
            c["readinessProbe"]["timeoutSeconds"], 1,
            "Go zero means unset"
        );
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert!(c.get("resources").is_none());
        assert_eq!(spec["volumes"][0]["configMap"]["defaultMode"], 420);
        assert_eq!(spec["volumes"][1]["emptyDir"], json!({}));
        assert_eq!(spec["volumes"][2]["hostPath"]["type"], "");
        assert_eq!(out["status"]["phase"], "Pending");
        assert_eq!(out["status"]["qosClass"], "BestEffort");
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        for (image, policy) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("registry.local:5000/team/nginx", "Always"),
            ("registry.local:5000/team/nginx:1.25", "IfNotPresent"),
            ("nginx@sha256:0123", "IfNotPresent"),
            ("nginx:latest@sha256:0123", "Always"),
        ] {
            assert_eq!(default_pull_policy(image), policy, "{image}");
        }
        let out = ok(&with_container(json!({"imagePullPolicy": "Never"})));
        assert_eq!(out["spec"]["containers"][0]["imagePullPolicy"], "Never");
    }

    #[test]
    fn limits_only_become_requests_and_guaranteed() {
        let out = ok(&with_container(
            json!({"resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}}),
        ));
        let r = &out["spec"]["containers"][0]["resources"];
        assert_eq!(r["requests"], json!({"cpu": "500m", "memory": "128Mi"}));
        assert_eq!(out["status"]["qosClass"], "Guaranteed");
    }

    #[test]
    fn qos_classes() {
        let qos = |resources: Value| {
            ok(&with_container(json!({ "resources": resources })))["status"]["qosClass"].clone()
        };
        assert_eq!(qos(json!({"requests": {"cpu": "100m"}})), "Burstable");
        assert_eq!(
            qos(json!({"limits": {"cpu": "1"}})),
            "Burstable",
            "memory unlimited"
        );
        assert_eq!(
            qos(json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m"}})),
            "Guaranteed",
            "equal quantities in different notation"
        );
        assert_eq!(
            qos(json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}})),
            "Burstable"
        );
        assert_eq!(
            qos(json!({"limits": {"ephemeral-storage": "1Gi"}})),
            "BestEffort"
        );
        // An init container without limits spoils Guaranteed.
        let mut p = with_container(json!({"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}));
        p["spec"]["initContainers"] = json!([{"name": "init", "image": "busybox:1"}]);
        assert_eq!(ok(&p)["status"]["qosClass"], "Burstable");
    }

    #[test]
    fn invalid_pods_name_the_field() {
        let c0 = "spec.containers[0]";
        let cases: Vec<(Value, String, &str)> = vec![
            (
                json!({"spec": {"containers": []}}),
                "spec.containers".into(),
                "Required value",
            ),
            (
                json!({"spec": {"containers": [{"name": "web"}]}}),
                format!("{c0}.image"),
                "Required value",
            ),
            (
                json!({"spec": {"containers": [{"name": "Web_1", "image": "x:1"}]}}),
                format!("{c0}.name"),
                "RFC 1123 label",
            ),
            (
                json!({"spec": {"initContainers": [{"name": "web", "image": "x:1"}]}}),
                "spec.containers[0].name".into(),
                "Duplicate value: \"web\"",
            ),
            (
                json!({"spec": {"restartPolicy": "Sometimes"}}),
                "spec.restartPolicy".into(),
                "Unsupported value: \"Sometimes\"",
            ),
            (
                json!({"spec": {"dnsPolicy": "Google"}}),
                "spec.dnsPolicy".into(),
                "Unsupported value",
            ),
            (
                json!({"spec": {"dnsPolicy": "None"}}),
                "spec.dnsConfig".into(),
                "must provide `dnsConfig`",
            ),
            (
                json!({"spec": {"dnsPolicy": "None", "dnsConfig": {"searches": ["a.example"]}}}),
                "spec.dnsConfig.nameservers".into(),
                "must provide at least one DNS nameserver",
            ),
            (
                json!({"spec": {"dnsConfig": {"nameservers": ["1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4"]}}}),
                "spec.dnsConfig.nameservers".into(),
                "must not have more than 3 nameservers",
            ),
            (
                json!({"spec": {"dnsConfig": {"searches": (0..33).map(|i| format!("d{i}.example")).collect::<Vec<_>>()}}}),
                "spec.dnsConfig.searches".into(),
                "must not have more than 32 search paths",
            ),
            (
                json!({"spec": {"dnsConfig": {"searches": ["Bad_Domain"]}}}),
                "spec.dnsConfig.searches[0]".into(),
                "RFC 1123",
            ),
            (
                json!({"spec": {"dnsConfig": {"options": [{"value": "2"}]}}}),
                "spec.dnsConfig.options[0]".into(),
                "must not be empty",
            ),
        ];
        for (patch, field, text) in cases {
            rejects(&patched(&pod(), patch), &field, text);
        }
        let container_cases: Vec<(Value, String, &str)> = vec![
            (
                json!({"ports": [{"containerPort": 70000}]}),
                format!("{c0}.ports[0].containerPort"),
                "must be between 1 and 65535, inclusive",
            ),
            (
                json!({"ports": [{"containerPort": 80, "protocol": "HTTP"}]}),
                format!("{c0}.ports[0].protocol"),
                "supported values: \"TCP\", \"UDP\", \"SCTP\"",
            ),
            (
                json!({"ports": [{"containerPort": 80, "name": "very-long-port-name"}]}),
                format!("{c0}.ports[0].name"),
                "no more than 15 characters",
            ),
            (
                json!({"ports": [{"containerPort": 80, "name": "8080"}]}),
                format!("{c0}.ports[0].name"),
                "at least one letter",
            ),
            (
                json!({"ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 81, "name": "http"}]}),
                format!("{c0}.ports[1].name"),
                "Duplicate value",
            ),
            (
                json!({"env": [{"name": "A=B", "value": "x"}]}),
                format!("{c0}.env[0].name"),
                "other than '='",
            ),
            (
                json!({"env": [{"name": "", "value": "x"}]}),
                format!("{c0}.env[0].name"),
                "Required value",
            ),
            (
                json!({"env": [{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}),
                format!("{c0}.env[0].valueFrom"),
                "may not be specified when `value` is not empty",
            ),
            (
                json!({"env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.foo"}}}]}),
                format!("{c0}.env[0].valueFrom.fieldRef.fieldPath"),
                "Unsupported value",
            ),
            (
                json!({"env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "a/b"}}}]}),
                format!("{c0}.env[0].valueFrom.configMapKeyRef.key"),
                "valid config key",
            ),
            (
                json!({"imagePullPolicy": "Sometimes"}),
                format!("{c0}.imagePullPolicy"),
                "Unsupported value",
            ),
            (
                json!({"volumeMounts": [{"name": "data", "mountPath": "/data"}]}),
                format!("{c0}.volumeMounts[0].name"),
                "Not found: \"data\"",
            ),
            (
                json!({"resources": {"limits": {"memory": "2Gb"}}}),
                format!("{c0}.resources.limits[memory]"),
                "quantities must match",
            ),
            (
                json!({"resources": {"requests": {"cpu": "-1"}}}),
                format!("{c0}.resources.requests[cpu]"),
                "greater than or equal to 0",
            ),
            (
                json!({"resources": {"requests": {"gpu": "1"}}}),
                format!("{c0}.resources.requests[gpu]"),
                "must be a standard resource",
            ),
            (
                json!({"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}),
                format!("{c0}.resources.requests[cpu]"),
                "must be less than or equal to cpu limit of 1",
            ),
            (
                json!({"livenessProbe": {"periodSeconds": 5}}),
                format!("{c0}.livenessProbe"),
                "must specify a handler type",
            ),
            (
                json!({"livenessProbe": {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}}),
                format!("{c0}.livenessProbe"),
                "may not specify more than 1 handler type",
            ),
            (
                json!({"livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2}}),
                format!("{c0}.livenessProbe.successThreshold"),
                "must be 1",
            ),
            (
                json!({"readinessProbe": {"httpGet": {"port": 0}}}),
                format!("{c0}.readinessProbe.httpGet.port"),
                "between 1 and 65535",
            ),
            (
                json!({"restartPolicy": "Always"}),
                format!("{c0}.restartPolicy"),
                "may not be set for non-init containers",
            ),
        ];
        for (patch, field, text) in container_cases {
            rejects(&with_container(patch), &field, text);
        }
    }

    #[test]
    fn invalid_volumes_name_the_field() {
        let with_volumes = |volumes: Value| patched(&pod(), json!({"spec": {"volumes": volumes}}));
        rejects(
            &with_volumes(json!([{"name": "a", "emptyDir": {}, "hostPath": {"path": "/x"}}])),
            "spec.volumes[0]",
            "may not specify more than 1 volume type",
        );
        rejects(
            &with_volumes(json!([{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}])),
            "spec.volumes[1].name",
            "Duplicate value",
        );
        rejects(
            &with_volumes(json!([{"name": "My.Vol", "emptyDir": {}}])),
            "spec.volumes[0].name",
            "RFC 1123 label",
        );
        rejects(
            &with_volumes(
                json!([{"name": "a", "secret": {"secretName": "s", "defaultMode": 1000}}]),
            ),
            "spec.volumes[0].secret.defaultMode",
            "0777",
        );
        rejects(
            &with_volumes(json!([{"name": "a", "persistentVolumeClaim": {"claimName": ""}}])),
            "spec.volumes[0].persistentVolumeClaim.claimName",
            "Required value",
        );
        rejects(
            &with_volumes(
                json!([{"name": "a", "configMap": {"name": "c", "items": [{"key": "k", "path": "../x"}]}}]),
            ),
            "spec.volumes[0].configMap.items[0].path",
            "must not contain '..'",
        );
    }

    #[test]
    fn init_containers_and_sidecars() {
        let mut p = pod();
        p["spec"]["initContainers"] =
            json!([{"name": "init", "image": "busybox:1", "restartPolicy": "OnFailure"}]);
        rejects(
            &p,
            "spec.initContainers[0].restartPolicy",
            "supported values: \"Always\"",
        );
        p["spec"]["initContainers"] = json!([{"name": "init", "image": "busybox:1",
            "readinessProbe": {"exec": {"command": ["true"]}}}]);
        rejects(
            &p,
            "spec.initContainers[0].readinessProbe",
            "without restartPolicy=Always",
        );
        p["spec"]["initContainers"][0]["restartPolicy"] = json!("Always");
        ok(&p);
    }

    #[test]
    fn only_images_and_a_few_fields_change_on_update() {
        let old = ok(&pod());
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("nginx:1.26");
        new["spec"]["activeDeadlineSeconds"] = json!(60);
        new["spec"]["tolerations"] = json!([{"key": "k", "operator": "Exists"}]);
        admit_update(&new, Some(&old)).expect("images, deadline and added tolerations may change");
        let mut bad = old.clone();
        bad["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80}]);
        rejects_update(
            &bad,
            &old,
            "spec",
            "pod updates may not change fields other than",
        );
    }

    #[test]
    fn tolerations_are_checked() {
        let p = patched(
            &pod(),
            json!({"spec": {"tolerations": [{"operator": "Equal", "value": "x"}]}}),
        );
        rejects(
            &p,
            "spec.tolerations[0].operator",
            "operator must be Exists when `key` is empty",
        );
        let p = patched(
            &pod(),
            json!({"spec": {"tolerations": [{"key": "k", "effect": "Sometimes"}]}}),
        );
        rejects(&p, "spec.tolerations[0].effect", "Unsupported value");
    }
}
