//! Tables: the columns and cells `kubectl get` prints for each kind.
//!
//! One pure header + row renderer per kind ([`columns`], [`row`]), shared by the server
//! (kubectl's `as=Table` answers, via [`table_object`]), the CLI (`berth get`, via
//! [`render_text`]) and the TUI. Cells are computed as kubectl's printers compute them, from
//! objects held as Kubernetes JSON.
//!
//! Invariants: `row(rt, obj, now).len() == columns(rt).len()` for every kind and every value
//! of `obj` (even `{}` or a string); nothing here panics or does I/O. Rows always carry the
//! wide (priority 1) cells, as the API server's tables do; the client hides them unless
//! asked for `-o wide`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use super::meta;
use super::registry::ResourceType;

/// One column of a table: a `metav1.TableColumnDefinition`.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Name as the API writes it ("Nominated Node"); kubectl prints it upper-cased.
    pub name: &'static str,
    /// OpenAPI type of the cells: `string`, `integer`, `boolean`, `date`.
    pub kind: &'static str,
    /// OpenAPI format: `name` for the object's name column, otherwise empty.
    pub format: &'static str,
    pub description: &'static str,
    /// 0 for the default view, 1 for columns only `-o wide` shows.
    pub priority: i32,
}

impl Column {
    /// The header kubectl prints: the name upper-cased, spaces kept.
    pub fn header(&self) -> String {
        self.name.to_uppercase()
    }

    /// The column as a `metav1.TableColumnDefinition`.
    pub fn definition(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

const fn col(name: &'static str, kind: &'static str, description: &'static str) -> Column {
    Column {
        name,
        kind,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(c: Column) -> Column {
    Column { priority: 1, ..c }
}

const NAME: Column = Column {
    name: "Name",
    kind: "string",
    format: "name",
    description: "Name of the object, unique within its namespace (or the cluster).",
    priority: 0,
};
const AGE: Column = col(
    "Age",
    "string",
    "Time since the object was created (metadata.creationTimestamp).",
);
const CONTAINERS: Column = wide(col(
    "Containers",
    "string",
    "Names of each container in the pod template.",
));
const IMAGES: Column = wide(col(
    "Images",
    "string",
    "Images of each container in the pod template.",
));
const SELECTOR: Column = wide(col(
    "Selector",
    "string",
    "Label selector of the pods this object manages.",
));

/// The renderer for a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Printer {
    Pod,
    Service,
    Deployment,
    ReplicaSet,
    StatefulSet,
    ControllerRevision,
    Job,
    CronJob,
    Namespace,
    Node,
    Endpoints,
    ConfigMap,
    Secret,
    PersistentVolume,
    PersistentVolumeClaim,
    StorageClass,
    Ingress,
    IngressClass,
    NetworkPolicy,
    ResourceQuota,
    LimitRange,
    Event,
    /// Kinds without a dedicated printer: Name and Age.
    EndpointSlice,
    Generic,
}

fn printer(rt: &ResourceType) -> Printer {
    match (rt.group, rt.kind) {
        ("", "Pod") => Printer::Pod,
        ("", "Service") => Printer::Service,
        ("apps", "Deployment") => Printer::Deployment,
        ("apps", "ReplicaSet") => Printer::ReplicaSet,
        ("apps", "StatefulSet") => Printer::StatefulSet,
        ("apps", "ControllerRevision") => Printer::ControllerRevision,
        ("batch", "Job") => Printer::Job,
        ("batch", "CronJob") => Printer::CronJob,
        ("", "Namespace") => Printer::Namespace,
        ("", "Node") => Printer::Node,
        ("", "Endpoints") => Printer::Endpoints,
        ("discovery.k8s.io", "EndpointSlice") => Printer::EndpointSlice,
        ("", "ConfigMap") => Printer::ConfigMap,
        ("", "Secret") => Printer::Secret,
        ("", "PersistentVolume") => Printer::PersistentVolume,
        ("", "PersistentVolumeClaim") => Printer::PersistentVolumeClaim,
        ("storage.k8s.io", "StorageClass") => Printer::StorageClass,
        ("networking.k8s.io", "Ingress") => Printer::Ingress,
        ("networking.k8s.io", "IngressClass") => Printer::IngressClass,
        ("networking.k8s.io", "NetworkPolicy") => Printer::NetworkPolicy,
        ("", "ResourceQuota") => Printer::ResourceQuota,
        ("", "LimitRange") => Printer::LimitRange,
        ("", "Event") => Printer::Event,
        _ => Printer::Generic,
    }
}

/// kubectl's columns for a kind, wide-only ones with `priority: 1`.
pub fn columns(rt: &ResourceType) -> Vec<Column> {
    match printer(rt) {
        Printer::Pod => vec![
            NAME,
            col(
                "Ready",
                "string",
                "Ready containers out of all containers in the pod.",
            ),
            col(
                "Status",
                "string",
                "The aggregate status of the pod's containers.",
            ),
            col(
                "Restarts",
                "string",
                "Container restarts in the pod, and how long ago the last one was.",
            ),
            AGE,
            wide(col("IP", "string", "The pod's IP address.")),
            wide(col("Node", "string", "The node the pod is bound to.")),
            wide(col(
                "Nominated Node",
                "string",
                "The node the scheduler nominated after preemption.",
            )),
            wide(col(
                "Readiness Gates",
                "string",
                "Readiness gates whose condition is true, out of all.",
            )),
        ],
        Printer::Service => vec![
            NAME,
            col("Type", "string", "How the service is exposed."),
            col("Cluster-IP", "string", "The service's cluster IP."),
            col(
                "External-IP",
                "string",
                "External IPs and load balancer addresses of the service.",
            ),
            col("Port(s)", "string", "The ports the service exposes."),
            AGE,
            wide(col(
                "Selector",
                "string",
                "Labels of the pods the service routes to.",
            )),
        ],
        Printer::Deployment => vec![
            NAME,
            col("Ready", "string", "Ready replicas out of desired replicas."),
            col(
                "Up-to-date",
                "integer",
                "Replicas updated to the current pod template.",
            ),
            col(
                "Available",
                "integer",
                "Replicas available to serve for at least minReadySeconds.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        Printer::ReplicaSet => vec![
            NAME,
            col("Desired", "integer", "Number of desired replicas."),
            col("Current", "integer", "Number of replicas that exist."),
            col("Ready", "integer", "Number of ready replicas."),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        Printer::StatefulSet => vec![
            NAME,
            col("Ready", "string", "Ready replicas out of desired replicas."),
            AGE,
            CONTAINERS,
            IMAGES,
        ],
        Printer::ControllerRevision => vec![
            NAME,
            col(
                "Controller",
                "string",
                "The workload that owns the revision.",
            ),
            col("Revision", "integer", "The revision's number."),
            AGE,
        ],
        Printer::Job => vec![
            NAME,
            col("Status", "string", "The job's state, from its conditions."),
            col(
                "Completions",
                "string",
                "Succeeded pods out of the completions wanted.",
            ),
            col("Duration", "string", "How long the job ran (or has run)."),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        Printer::CronJob => vec![
            NAME,
            col("Schedule", "string", "The cron schedule."),
            col(
                "Timezone",
                "string",
                "Time zone of the schedule (the controller's when unset).",
            ),
            col("Suspend", "boolean", "Whether new runs are suspended."),
            col("Active", "integer", "Number of running jobs."),
            col(
                "Last Schedule",
                "string",
                "How long ago a job was last scheduled.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        Printer::Namespace => vec![NAME, col("Status", "string", "The namespace's phase."), AGE],
        Printer::Node => vec![
            NAME,
            col(
                "Status",
                "string",
                "Readiness and schedulability of the node.",
            ),
            col("Roles", "string", "The node's roles, from its labels."),
            AGE,
            col("Version", "string", "The kubelet version the node reports."),
            wide(col("Internal-IP", "string", "The node's internal IP.")),
            wide(col("External-IP", "string", "The node's external IP.")),
            wide(col(
                "OS-Image",
                "string",
                "The node's operating system image.",
            )),
            wide(col(
                "Kernel-Version",
                "string",
                "The node's kernel version.",
            )),
            wide(col(
                "Container-Runtime",
                "string",
                "The node's container runtime and version.",
            )),
        ],
        Printer::Endpoints => vec![
            NAME,
            col("Endpoints", "string", "Ready addresses and ports."),
            AGE,
        ],
        Printer::EndpointSlice => vec![
            NAME,
            col(
                "AddressType",
                "string",
                "The type of address carried by the slice.",
            ),
            col("Ports", "string", "The ports of the slice."),
            col(
                "Endpoints",
                "string",
                "The addresses of the slice's endpoints.",
            ),
            AGE,
        ],
        Printer::ConfigMap => vec![
            NAME,
            col("Data", "integer", "Number of keys in data and binaryData."),
            AGE,
        ],
        Printer::Secret => vec![
            NAME,
            col("Type", "string", "The secret's type."),
            col("Data", "integer", "Number of keys in data."),
            AGE,
        ],
        Printer::PersistentVolume => vec![
            NAME,
            col("Capacity", "string", "The volume's storage capacity."),
            col("Access Modes", "string", "How the volume can be mounted."),
            col(
                "Reclaim Policy",
                "string",
                "What happens to the volume when its claim is released.",
            ),
            col("Status", "string", "The volume's phase."),
            col("Claim", "string", "The claim bound to the volume."),
            col("StorageClass", "string", "The volume's storage class."),
            col(
                "VolumeAttributesClass",
                "string",
                "The volume's attributes class.",
            ),
            col("Reason", "string", "Why the volume is in its phase."),
            AGE,
            wide(col("VolumeMode", "string", "Filesystem or Block.")),
        ],
        Printer::PersistentVolumeClaim => vec![
            NAME,
            col("Status", "string", "The claim's phase."),
            col("Volume", "string", "The volume bound to the claim."),
            col(
                "Capacity",
                "string",
                "Storage capacity of the bound volume.",
            ),
            col(
                "Used",
                "string",
                "Bytes the volume holds, as berth last measured them.",
            ),
            col(
                "Access Modes",
                "string",
                "How the bound volume can be mounted.",
            ),
            col("StorageClass", "string", "The claim's storage class."),
            col(
                "VolumeAttributesClass",
                "string",
                "The claim's volume attributes class.",
            ),
            AGE,
            wide(col("VolumeMode", "string", "Filesystem or Block.")),
        ],
        Printer::StorageClass => vec![
            NAME,
            col(
                "Provisioner",
                "string",
                "The volume plugin that provisions volumes.",
            ),
            col(
                "ReclaimPolicy",
                "string",
                "Reclaim policy of the volumes it provisions.",
            ),
            col(
                "VolumeBindingMode",
                "string",
                "When claims are bound and provisioned.",
            ),
            col(
                "AllowVolumeExpansion",
                "string",
                "Whether claims of this class can grow.",
            ),
            AGE,
        ],
        Printer::Ingress => vec![
            NAME,
            col("Class", "string", "The ingress class."),
            col("Hosts", "string", "Hosts the rules match."),
            col("Address", "string", "Load balancer addresses."),
            col("Ports", "string", "Ports the ingress listens on."),
            AGE,
        ],
        Printer::IngressClass => vec![
            NAME,
            col(
                "Controller",
                "string",
                "The controller implementing the class.",
            ),
            col(
                "Parameters",
                "string",
                "The controller's parameters object.",
            ),
            AGE,
        ],
        Printer::NetworkPolicy => vec![
            NAME,
            col(
                "Pod-Selector",
                "string",
                "Labels of the pods the policy applies to.",
            ),
            AGE,
        ],
        Printer::ResourceQuota => vec![
            NAME,
            AGE,
            col("Request", "string", "Used out of hard limits for requests."),
            col("Limit", "string", "Used out of hard limits for limits."),
        ],
        Printer::LimitRange => vec![
            NAME,
            col(
                "Created At",
                "date",
                "When the object was created (metadata.creationTimestamp).",
            ),
        ],
        Printer::Event => vec![
            col(
                "Last Seen",
                "string",
                "How long ago the event was last seen.",
            ),
            col("Type", "string", "Normal or Warning."),
            col("Reason", "string", "Short, machine-readable reason."),
            col("Object", "string", "The object the event is about."),
            wide(col(
                "Subobject",
                "string",
                "The part of the object the event is about.",
            )),
            wide(col(
                "Source",
                "string",
                "The component that reported the event.",
            )),
            col("Message", "string", "What happened, for humans."),
            wide(col(
                "First Seen",
                "string",
                "How long ago the event was first seen.",
            )),
            wide(col(
                "Count",
                "integer",
                "How many times the event happened.",
            )),
            wide(col("Name", "string", "The event's name.")),
        ],
        Printer::Generic => vec![NAME, AGE],
    }
}

/// The cells of one object, one per column of [`columns`] (wide cells included).
pub fn row(rt: &ResourceType, obj: &Value, now: Timestamp) -> Vec<Value> {
    let name = || json!(meta::name(obj));
    let age = || json!(since(obj, "/metadata/creationTimestamp", now));
    match printer(rt) {
        Printer::Pod => pod_row(obj, now),
        Printer::Service => service_row(obj, now),
        Printer::Deployment => {
            let (names, images) = container_cells(list(obj, "/spec/template/spec/containers"));
            vec![
                name(),
                json!(format!(
                    "{}/{}",
                    int(obj, "/status/readyReplicas"),
                    replicas(obj)
                )),
                json!(int(obj, "/status/updatedReplicas")),
                json!(int(obj, "/status/availableReplicas")),
                age(),
                json!(names),
                json!(images),
                json!(label_selector_string(obj.pointer("/spec/selector"))),
            ]
        }
        Printer::ReplicaSet => {
            let (names, images) = container_cells(list(obj, "/spec/template/spec/containers"));
            vec![
                name(),
                json!(replicas(obj)),
                json!(int(obj, "/status/replicas")),
                json!(int(obj, "/status/readyReplicas")),
                age(),
                json!(names),
                json!(images),
                json!(label_selector_string(obj.pointer("/spec/selector"))),
            ]
        }
        Printer::StatefulSet => {
            let (names, images) = container_cells(list(obj, "/spec/template/spec/containers"));
            vec![
                name(),
                json!(format!(
                    "{}/{}",
                    int(obj, "/status/readyReplicas"),
                    replicas(obj)
                )),
                age(),
                json!(names),
                json!(images),
            ]
        }
        Printer::ControllerRevision => {
            let owner = list(obj, "/metadata/ownerReferences")
                .iter()
                .find(|r| r["controller"] == true)
                .map(|r| {
                    let group = str_at(r, "/apiVersion")
                        .split('/')
                        .next()
                        .unwrap_or_default();
                    format!(
                        "{}.{group}/{}",
                        str_at(r, "/kind").to_ascii_lowercase(),
                        str_at(r, "/name")
                    )
                })
                .unwrap_or_else(|| "<none>".to_string());
            vec![name(), json!(owner), json!(int(obj, "/revision")), age()]
        }
        Printer::Job => job_row(obj, now),
        Printer::CronJob => {
            let (names, images) =
                container_cells(list(obj, "/spec/jobTemplate/spec/template/spec/containers"));
            let suspend = match obj.pointer("/spec/suspend").and_then(Value::as_bool) {
                Some(true) => "True",
                Some(false) => "False",
                None => "<unset>",
            };
            let last = match time(obj, "/status/lastScheduleTime") {
                Some(t) => translate_since(Some(t), now),
                None => "<none>".to_string(),
            };
            vec![
                name(),
                json!(str_at(obj, "/spec/schedule")),
                json!(or_none(str_at(obj, "/spec/timeZone"))),
                json!(suspend),
                json!(list(obj, "/status/active").len()),
                json!(last),
                age(),
                json!(names),
                json!(images),
                json!(label_selector_string(
                    obj.pointer("/spec/jobTemplate/spec/selector")
                )),
            ]
        }
        Printer::Namespace => vec![name(), json!(str_at(obj, "/status/phase")), age()],
        Printer::Node => node_row(obj, now),
        Printer::Endpoints => vec![name(), json!(format_endpoints(obj)), age()],
        Printer::EndpointSlice => vec![
            name(),
            json!(str_at(obj, "/addressType")),
            json!(format_slice_ports(obj)),
            json!(format_slice_endpoints(obj)),
            age(),
        ],
        Printer::ConfigMap => {
            let n = map_len(obj, "/data") + map_len(obj, "/binaryData");
            vec![name(), json!(n), age()]
        }
        Printer::Secret => vec![
            name(),
            json!(str_at(obj, "/type")),
            json!(map_len(obj, "/data")),
            age(),
        ],
        Printer::PersistentVolume => {
            let claim = match obj.pointer("/spec/claimRef").and_then(Value::as_object) {
                Some(_) => format!(
                    "{}/{}",
                    str_at(obj, "/spec/claimRef/namespace"),
                    str_at(obj, "/spec/claimRef/name")
                ),
                None => String::new(),
            };
            let class = annotation(obj, "volume.beta.kubernetes.io/storage-class")
                .unwrap_or_else(|| str_at(obj, "/spec/storageClassName"));
            vec![
                name(),
                json!(quantity(obj, "/spec/capacity/storage")),
                json!(access_modes(list(obj, "/spec/accessModes"))),
                json!(str_at(obj, "/spec/persistentVolumeReclaimPolicy")),
                json!(terminating_or(obj, str_at(obj, "/status/phase"))),
                json!(claim),
                json!(class),
                json!(or_unset(str_at(obj, "/spec/volumeAttributesClassName"))),
                json!(str_at(obj, "/status/reason")),
                age(),
                json!(or_unset(str_at(obj, "/spec/volumeMode"))),
            ]
        }
        Printer::PersistentVolumeClaim => {
            let volume = str_at(obj, "/spec/volumeName");
            let (capacity, modes) = if volume.is_empty() {
                (String::new(), String::new())
            } else {
                (
                    quantity(obj, "/status/capacity/storage"),
                    access_modes(list(obj, "/status/accessModes")),
                )
            };
            let class = annotation(obj, "volume.beta.kubernetes.io/storage-class")
                .unwrap_or_else(|| str_at(obj, "/spec/storageClassName"));
            vec![
                name(),
                json!(terminating_or(obj, str_at(obj, "/status/phase"))),
                json!(volume),
                json!(capacity),
                json!(
                    annotation(obj, "berth.io/used-bytes")
                        .and_then(|b| b.parse::<u64>().ok())
                        .map(binary_bytes)
                        .unwrap_or_default()
                ),
                json!(modes),
                json!(class),
                json!(or_unset(str_at(obj, "/spec/volumeAttributesClassName"))),
                age(),
                json!(or_unset(str_at(obj, "/spec/volumeMode"))),
            ]
        }
        Printer::StorageClass => {
            let mut n = meta::name(obj).to_string();
            if is_default_class(obj) {
                n.push_str(" (default)");
            }
            vec![
                json!(n),
                json!(str_at(obj, "/provisioner")),
                json!(or(str_at(obj, "/reclaimPolicy"), "Delete")),
                json!(or(str_at(obj, "/volumeBindingMode"), "Immediate")),
                json!(
                    obj.pointer("/allowVolumeExpansion")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                ),
                age(),
            ]
        }
        Printer::Ingress => {
            let ports = if list(obj, "/spec/tls").is_empty() {
                "80"
            } else {
                "80, 443"
            };
            vec![
                name(),
                json!(or_none(str_at(obj, "/spec/ingressClassName"))),
                json!(ingress_hosts(list(obj, "/spec/rules"))),
                json!(load_balancer_addresses(obj)),
                json!(ports),
                age(),
            ]
        }
        Printer::IngressClass => {
            let parameters = match obj.pointer("/spec/parameters").and_then(Value::as_object) {
                Some(_) => {
                    let mut p = str_at(obj, "/spec/parameters/kind").to_string();
                    if let Some(g) = obj
                        .pointer("/spec/parameters/apiGroup")
                        .and_then(Value::as_str)
                    {
                        p.push('.');
                        p.push_str(g);
                    }
                    format!("{p}/{}", str_at(obj, "/spec/parameters/name"))
                }
                None => "<none>".to_string(),
            };
            vec![
                name(),
                json!(str_at(obj, "/spec/controller")),
                json!(parameters),
                age(),
            ]
        }
        Printer::NetworkPolicy => {
            let sel = label_selector_string(obj.pointer("/spec/podSelector"));
            vec![name(), json!(or_none(&sel)), age()]
        }
        Printer::ResourceQuota => {
            let (requests, limits) = quota_cells(obj);
            vec![name(), age(), json!(requests), json!(limits)]
        }
        Printer::LimitRange => {
            let created = time(obj, "/metadata/creationTimestamp")
                .map(|t| json!(meta::format_time(t)))
                .unwrap_or(Value::Null);
            vec![name(), created]
        }
        Printer::Event => event_row(obj, now),
        Printer::Generic => vec![name(), age()],
    }
}

/// The summary of a pod kubectl prints in its READY, STATUS and RESTARTS columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSummary {
    /// Ready containers (restartable init containers, "sidecars", included).
    pub ready: i64,
    /// Containers plus sidecars.
    pub total: i64,
    /// kubectl's STATUS: `Running`, `CrashLoopBackOff`, `Init:0/1`, `Terminating`, …
    pub status: String,
    pub restarts: i64,
    /// When a container last terminated before restarting.
    pub last_restart: Option<Timestamp>,
}

/// Computes READY, STATUS and RESTARTS of a pod as kubectl does.
///
/// STATUS starts from `status.reason` or the phase; a failing or waiting init container
/// gives `Init:…`; otherwise the first container (in spec order) that is waiting or
/// terminated with a reason gives it; a pod being deleted is `Terminating`.
pub fn pod_summary(pod: &Value) -> PodSummary {
    let phase = str_at(pod, "/status/phase");
    let mut reason = or(str_at(pod, "/status/reason"), phase).to_string();
    let conditions = list(pod, "/status/conditions");
    if conditions
        .iter()
        .any(|c| str_at(c, "/type") == "PodScheduled" && str_at(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".to_string();
    }

    let init_specs = list(pod, "/spec/initContainers");
    let sidecars: BTreeSet<&str> = init_specs
        .iter()
        .filter(|c| str_at(c, "/restartPolicy") == "Always")
        .map(|c| str_at(c, "/name"))
        .collect();
    let total = list(pod, "/spec/containers").len() as i64
        + init_specs
            .iter()
            .filter(|c| str_at(c, "/restartPolicy") == "Always")
            .count() as i64;
    let mut ready = 0i64;
    let mut restarts = 0i64;
    let mut last_restart: Option<Timestamp> = None;
    let mut sidecar_restarts = 0i64;
    let mut sidecar_last: Option<Timestamp> = None;

    let mut initializing = false;
    for (i, cs) in list(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        let count = int(cs, "/restartCount");
        let finished = finished_before(cs);
        restarts += count;
        last_restart = later(last_restart, finished);
        let sidecar = sidecars.contains(str_at(cs, "/name"));
        if sidecar {
            sidecar_restarts += count;
            sidecar_last = later(sidecar_last, finished);
        }
        let terminated = object_at(cs, "/state/terminated");
        if terminated.is_some() && int(cs, "/state/terminated/exitCode") == 0 {
            continue;
        }
        if sidecar && bool_at(cs, "/started") {
            if bool_at(cs, "/ready") {
                ready += 1;
            }
            continue;
        }
        let waiting_reason = str_at(cs, "/state/waiting/reason");
        reason = if terminated.is_some() {
            let r = str_at(cs, "/state/terminated/reason");
            let signal = int(cs, "/state/terminated/signal");
            if !r.is_empty() {
                format!("Init:{r}")
            } else if signal != 0 {
                format!("Init:Signal:{signal}")
            } else {
                format!("Init:ExitCode:{}", int(cs, "/state/terminated/exitCode"))
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    let initialized = conditions
        .iter()
        .any(|c| str_at(c, "/type") == "Initialized" && str_at(c, "/status") == "True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        last_restart = sidecar_last;
        let mut has_running = false;
        // Backwards, so that the first container with a reason has the last word.
        for cs in list(pod, "/status/containerStatuses").iter().rev() {
            restarts += int(cs, "/restartCount");
            last_restart = later(last_restart, finished_before(cs));
            let waiting = str_at(cs, "/state/waiting/reason");
            let terminated = str_at(cs, "/state/terminated/reason");
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if !terminated.is_empty() {
                reason = terminated.to_string();
            } else if object_at(cs, "/state/terminated").is_some() {
                let signal = int(cs, "/state/terminated/signal");
                reason = if signal != 0 {
                    format!("Signal:{signal}")
                } else {
                    format!("ExitCode:{}", int(cs, "/state/terminated/exitCode"))
                };
            } else if bool_at(cs, "/ready") && object_at(cs, "/state/running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose other containers still run is not "Completed".
        if reason == "Completed" && has_running {
            let pod_ready = conditions
                .iter()
                .any(|c| str_at(c, "/type") == "Ready" && str_at(c, "/status") == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    if present(pod, "/metadata/deletionTimestamp") {
        if str_at(pod, "/status/reason") == "NodeLost" {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }
    PodSummary {
        ready,
        total,
        status: reason,
        restarts,
        last_restart,
    }
}

fn pod_row(pod: &Value, now: Timestamp) -> Vec<Value> {
    let s = pod_summary(pod);
    let restarts = match s.last_restart {
        Some(t) if s.restarts != 0 => {
            format!("{} ({} ago)", s.restarts, translate_since(Some(t), now))
        }
        _ => s.restarts.to_string(),
    };
    let ip = list(pod, "/status/podIPs")
        .first()
        .map(|i| str_at(i, "/ip"))
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| str_at(pod, "/status/podIP"));
    let gates = list(pod, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = list(pod, "/status/conditions");
        let true_count = gates
            .iter()
            .filter(|g| {
                let t = str_at(g, "/conditionType");
                conditions
                    .iter()
                    .find(|c| str_at(c, "/type") == t)
                    .is_some_and(|c| str_at(c, "/status") == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };
    vec![
        json!(meta::name(pod)),
        json!(format!("{}/{}", s.ready, s.total)),
        json!(s.status),
        json!(restarts),
        json!(since(pod, "/metadata/creationTimestamp", now)),
        json!(or_none(ip)),
        json!(or_none(str_at(pod, "/spec/nodeName"))),
        json!(or_none(str_at(pod, "/status/nominatedNodeName"))),
        json!(readiness_gates),
    ]
}

fn service_row(svc: &Value, now: Timestamp) -> Vec<Value> {
    let cluster_ip = list(svc, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| str_at(svc, "/spec/clusterIP"));
    let ports: Vec<String> = list(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let port = int(p, "/port");
            let proto = or(str_at(p, "/protocol"), "TCP");
            match int(p, "/nodePort") {
                n if n > 0 => format!("{port}:{n}/{proto}"),
                _ => format!("{port}/{proto}"),
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        json!(meta::name(svc)),
        json!(str_at(svc, "/spec/type")),
        json!(or_none(cluster_ip)),
        json!(service_external_ip(svc)),
        json!(ports),
        json!(since(svc, "/metadata/creationTimestamp", now)),
        json!(format_labels(svc.pointer("/spec/selector"))),
    ]
}

fn service_external_ip(svc: &Value) -> String {
    let external: Vec<&str> = list(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match str_at(svc, "/spec/type") {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".to_string()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_addresses(svc);
            let mut all: Vec<&str> = lb.split(',').filter(|s| !s.is_empty()).collect();
            all.extend(external);
            if all.is_empty() {
                "<pending>".to_string()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => str_at(svc, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    }
}

/// `status.loadBalancer.ingress` IPs (or hostnames), sorted and de-duplicated.
fn load_balancer_addresses(obj: &Value) -> String {
    let set: BTreeSet<&str> = list(obj, "/status/loadBalancer/ingress")
        .iter()
        .map(|i| or(str_at(i, "/ip"), str_at(i, "/hostname")))
        .filter(|s| !s.is_empty())
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

fn job_row(job: &Value, now: Timestamp) -> Vec<Value> {
    let succeeded = int(job, "/status/succeeded");
    let completions = match opt_int(job, "/spec/completions") {
        Some(c) => format!("{succeeded}/{c}"),
        None => match opt_int(job, "/spec/parallelism").unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (
        time(job, "/status/startTime"),
        time(job, "/status/completionTime"),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now.duration_since(start)),
        (Some(start), Some(end)) => human_duration(end.duration_since(start)),
    };
    let has = |t: &str| {
        list(job, "/status/conditions")
            .iter()
            .any(|c| str_at(c, "/type") == t && str_at(c, "/status") == "True")
    };
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if present(job, "/metadata/deletionTimestamp") {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else if has("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let (names, images) = container_cells(list(job, "/spec/template/spec/containers"));
    vec![
        json!(meta::name(job)),
        json!(status),
        json!(completions),
        json!(duration),
        json!(since(job, "/metadata/creationTimestamp", now)),
        json!(names),
        json!(images),
        json!(label_selector_string(job.pointer("/spec/selector"))),
    ]
}

fn node_row(node: &Value, now: Timestamp) -> Vec<Value> {
    let mut status: Vec<&str> = Vec::new();
    // Only Ready is summarised, as kubectl does; the last Ready condition wins.
    if let Some(c) = list(node, "/status/conditions")
        .iter()
        .rev()
        .find(|c| str_at(c, "/type") == "Ready")
    {
        status.push(if str_at(c, "/status") == "True" {
            "Ready"
        } else {
            "NotReady"
        });
    }
    if status.is_empty() {
        status.push("Unknown");
    }
    if bool_at(node, "/spec/unschedulable") {
        status.push("SchedulingDisabled");
    }
    let roles = node_roles(node);
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let address = |t: &str| {
        list(node, "/status/addresses")
            .iter()
            .find(|a| str_at(a, "/type") == t)
            .map(|a| str_at(a, "/address"))
            .unwrap_or("<none>")
    };
    let info = |f: &str| or(str_at(node, &format!("/status/nodeInfo/{f}")), "<unknown>");
    vec![
        json!(meta::name(node)),
        json!(status.join(",")),
        json!(roles),
        json!(since(node, "/metadata/creationTimestamp", now)),
        json!(str_at(node, "/status/nodeInfo/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

/// Roles of a node from its `node-role.kubernetes.io/<role>` and `kubernetes.io/role`
/// labels, sorted.
pub fn node_roles(node: &Value) -> Vec<String> {
    let mut roles = BTreeSet::new();
    for (k, v) in meta::labels(node) {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if k == "kubernetes.io/role" && !v.is_empty() {
            roles.insert(v);
        }
    }
    roles.into_iter().collect()
}

/// kubectl's ENDPOINTS cell: up to three `ip:port`, then `+ N more...`.
/// An EndpointSlice's ports as kubectl prints them: the numbers, or `<unset>`.
fn format_slice_ports(slice: &Value) -> String {
    let ports = list(slice, "/ports");
    if ports.is_empty() {
        return "<unset>".to_string();
    }
    ports
        .iter()
        .map(|p| match p.get("port").and_then(Value::as_i64) {
            Some(n) => n.to_string(),
            None => "<unset>".to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// An EndpointSlice's addresses as kubectl prints them: three, then `+ N more...`.
fn format_slice_endpoints(slice: &Value) -> String {
    const MAX: usize = 3;
    let all: Vec<&str> = list(slice, "/endpoints")
        .iter()
        .flat_map(|e| list(e, "/addresses"))
        .filter_map(Value::as_str)
        .collect();
    if all.is_empty() {
        return "<unset>".to_string();
    }
    let shown = all[..all.len().min(MAX)].join(",");
    if all.len() > MAX {
        format!("{shown} + {} more...", all.len() - MAX)
    } else {
        shown
    }
}

pub fn format_endpoints(ep: &Value) -> String {
    format_endpoints_for(ep, None)
}

/// [`format_endpoints`] limited to the ports named `port_name` (a Service port's name), as
/// `describe service` prints them.
pub fn format_endpoints_for(ep: &Value, port_name: Option<&str>) -> String {
    let subsets = list(ep, "/subsets");
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut shown: Vec<String> = Vec::new();
    let mut count = 0usize;
    let mut more = false;
    for ss in subsets {
        let addresses = list(ss, "/addresses");
        let ports = list(ss, "/ports");
        // A headless service may have no ports: bare addresses then.
        let port_numbers: Vec<Option<i64>> = if ports.is_empty() {
            vec![None]
        } else {
            ports
                .iter()
                .filter(|p| port_name.is_none_or(|n| str_at(p, "/name") == n))
                .map(|p| Some(int(p, "/port")))
                .collect()
        };
        for port in port_numbers {
            count += addresses.len();
            for a in addresses {
                if shown.len() == MAX {
                    more = true;
                    break;
                }
                let ip = str_at(a, "/ip");
                shown.push(match port {
                    Some(p) => join_host_port(ip, p),
                    None => ip.to_string(),
                });
            }
        }
    }
    let joined = shown.join(",");
    if more {
        format!("{joined} + {} more...", count.saturating_sub(MAX))
    } else {
        joined
    }
}

fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// PV access modes as kubectl abbreviates them (`RWO,ROX`), in a fixed order.
pub fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(long, _)| has(long))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

fn is_default_class(obj: &Value) -> bool {
    annotation(obj, "storageclass.kubernetes.io/is-default-class") == Some("true")
        || annotation(obj, "storageclass.beta.kubernetes.io/is-default-class") == Some("true")
}

fn ingress_hosts(rules: &[Value]) -> String {
    const MAX: usize = 4;
    let mut hosts: Vec<&str> = Vec::new();
    let mut more = false;
    for r in rules {
        if hosts.len() == MAX {
            more = true;
        }
        let h = str_at(r, "/host");
        if !more && !h.is_empty() {
            hosts.push(h);
        }
    }
    if hosts.is_empty() {
        return "*".to_string();
    }
    let joined = hosts.join(",");
    if more {
        format!("{joined} + {} more...", rules.len().saturating_sub(MAX))
    } else {
        joined
    }
}

fn quota_cells(obj: &Value) -> (String, String) {
    let hard = obj.pointer("/status/hard").and_then(Value::as_object);
    let mut requests: Vec<String> = Vec::new();
    let mut limits: Vec<String> = Vec::new();
    // BTreeMap order: resource names sorted, as kubectl sorts them.
    let hard: BTreeMap<&String, &Value> = hard.map(|m| m.iter().collect()).unwrap_or_default();
    for (resource, h) in hard {
        let used = obj
            .pointer("/status/used")
            .and_then(|u| u.get(resource.as_str()))
            .map(quantity_text)
            .unwrap_or_else(|| "0".to_string());
        let entry = format!("{resource}: {used}/{}", quantity_text(h));
        if resource.split('.').next() == Some("limits") && resource.contains('.') {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    (requests.join(", "), limits.join(", "))
}

fn event_row(ev: &Value, now: Timestamp) -> Vec<Value> {
    let first = match time(ev, "/firstTimestamp") {
        Some(t) => translate_since(Some(t), now),
        None => since(ev, "/eventTime", now),
    };
    let mut last = match time(ev, "/lastTimestamp") {
        Some(t) => translate_since(Some(t), now),
        None => first.clone(),
    };
    let mut count = int(ev, "/count");
    if object_at(ev, "/series").is_some() {
        last = since(ev, "/series/lastObservedTime", now);
        count = int(ev, "/series/count");
    } else if count == 0 {
        // Events written through the new API are singletons without a count.
        count = 1;
    }
    let kind = str_at(ev, "/involvedObject/kind").to_lowercase();
    let involved = str_at(ev, "/involvedObject/name");
    let target = if involved.is_empty() {
        kind
    } else {
        format!("{kind}/{involved}")
    };
    vec![
        json!(last),
        json!(str_at(ev, "/type")),
        json!(str_at(ev, "/reason")),
        json!(target),
        json!(str_at(ev, "/involvedObject/fieldPath")),
        json!(event_source(ev)),
        json!(str_at(ev, "/message").trim()),
        json!(first),
        json!(count),
        json!(meta::name(ev)),
    ]
}

/// `component, host` of an event, falling back to the reporting controller and instance.
pub fn event_source(ev: &Value) -> String {
    let component = or(
        str_at(ev, "/source/component"),
        str_at(ev, "/reportingComponent"),
    );
    let host = or(str_at(ev, "/source/host"), str_at(ev, "/reportingInstance"));
    if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    }
}

/// A `metav1.Table` (meta.k8s.io/v1) of `objs`, as the API server answers kubectl's
/// `Accept: application/json;as=Table;…`.
///
/// Each row's `object` is the object's metadata as a `PartialObjectMetadata` (kubectl takes
/// the NAMESPACE column and `--show-labels` from it), or the whole object when
/// `include_object` (`?includeObject=Object`, used by `--sort-by`). The caller sets
/// `metadata.resourceVersion` (and `continue`) of the list.
pub fn table_object(
    rt: &ResourceType,
    objs: &[Value],
    now: Timestamp,
    include_object: bool,
) -> Value {
    let definitions: Vec<Value> = columns(rt).iter().map(Column::definition).collect();
    let is_pod = printer(rt) == Printer::Pod;
    let rows: Vec<Value> = objs
        .iter()
        .map(|obj| {
            let object = if include_object {
                obj.clone()
            } else {
                partial_object_metadata(obj)
            };
            let mut r = Map::new();
            r.insert("cells".into(), Value::Array(row(rt, obj, now)));
            if is_pod {
                // Finished pods carry the Completed row condition, as the API server's do.
                let message = match str_at(obj, "/status/phase") {
                    "Succeeded" => Some(("Succeeded", "The pod has completed successfully.")),
                    "Failed" => Some(("Failed", "The pod failed.")),
                    _ => None,
                };
                if let Some((reason, message)) = message {
                    r.insert(
                        "conditions".into(),
                        json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]),
                    );
                }
            }
            r.insert("object".into(), object);
            Value::Object(r)
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {},
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

/// An object's metadata as `meta.k8s.io/v1` `PartialObjectMetadata` (managed fields
/// dropped).
pub fn partial_object_metadata(obj: &Value) -> Value {
    let mut metadata = obj
        .get("metadata")
        .filter(|m| m.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(m) = metadata.as_object_mut() {
        m.remove("managedFields");
    }
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
    })
}

/// A kubectl-style plain-text table: upper-cased headers, left-aligned columns separated
/// by (at least) three spaces, no trailing spaces, one line per row ending in `\n`.
///
/// Wide (priority 1) columns are printed only when `wide`. With `with_namespace` a leading
/// NAMESPACE column is added, `namespaces[i]` being row `i`'s (as for `-A`). The header is
/// printed even when `rows` is empty; printing "No resources found" instead is the caller's
/// choice. Cells are printed as kubectl prints them: strings up to their first line break
/// (then `...`), numbers and booleans as written, null as `<none>`; control characters are
/// escaped so that a cell can neither break the layout nor drive the terminal.
pub fn render_text(
    columns: &[Column],
    rows: &[Vec<Value>],
    wide: bool,
    with_namespace: bool,
    namespaces: &[String],
) -> String {
    let shown: Vec<usize> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| wide || c.priority == 0)
        .map(|(i, _)| i)
        .collect();
    let mut lines: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
    let mut header: Vec<String> = Vec::new();
    if with_namespace {
        header.push("NAMESPACE".to_string());
    }
    header.extend(shown.iter().map(|&i| columns[i].header()));
    lines.push(header);
    for (n, r) in rows.iter().enumerate() {
        let mut line: Vec<String> = Vec::new();
        if with_namespace {
            line.push(escape_cell(
                namespaces.get(n).map(String::as_str).unwrap_or_default(),
            ));
        }
        line.extend(
            shown
                .iter()
                .map(|&i| r.get(i).map(cell_text).unwrap_or_default()),
        );
        lines.push(line);
    }
    tabwrite(&lines, 6, 3)
}

/// The text kubectl prints for one cell.
pub fn cell_text(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let (text, cut) = match s.find(['\n', '\r', '\x0c']) {
                Some(i) => (&s[..i], true),
                None => (s.as_str(), false),
            };
            let mut out = escape_cell(text);
            if cut {
                out.push_str("...");
            }
            out
        }
        Value::Null => "<none>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => escape_cell(&other.to_string()),
    }
}

fn escape_cell(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Lays out lines of cells with elastic tabstops, as Go's `text/tabwriter` (which kubectl
/// uses for `get` and `describe`) does.
///
/// Every cell but the last of a line ends a column; a column's width is that of its widest
/// cell plus `padding` (at least `minwidth`), taken over the run of consecutive lines that
/// have a cell in that column. The last cell of a line is not padded, and trailing spaces
/// are removed. Widths count characters.
pub fn tabwrite(lines: &[Vec<String>], minwidth: usize, padding: usize) -> String {
    let mut out = String::new();
    let mut widths = Vec::new();
    tab_block(
        lines,
        0,
        lines.len(),
        &mut widths,
        minwidth,
        padding,
        &mut out,
    );
    out
}

fn tab_block(
    lines: &[Vec<String>],
    mut line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    minwidth: usize,
    padding: usize,
    out: &mut String,
) {
    let column = widths.len();
    let has_column = |l: &Vec<String>| l.len() > column + 1;
    let mut this = line0;
    while this < line1 {
        if !has_column(&lines[this]) {
            this += 1;
            continue;
        }
        // A block of consecutive lines with a cell in this column starts here.
        tab_lines(lines, line0, this, widths, out);
        line0 = this;
        let mut width = minwidth;
        while this < line1 && has_column(&lines[this]) {
            width = width.max(lines[this][column].chars().count() + padding);
            this += 1;
        }
        widths.push(width);
        tab_block(lines, line0, this, widths, minwidth, padding, out);
        widths.pop();
        line0 = this;
    }
    tab_lines(lines, line0, line1, widths, out);
}

fn tab_lines(lines: &[Vec<String>], from: usize, to: usize, widths: &[usize], out: &mut String) {
    for line in &lines[from..to] {
        let start = out.len();
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < line.len()
                && let Some(w) = widths.get(j)
            {
                let n = w.saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', n));
            }
        }
        let trimmed = out[start..].trim_end_matches(' ').len();
        out.truncate(start + trimmed);
        out.push('\n');
    }
}

/// apimachinery's `duration.HumanDuration`: `45s`, `3m20s`, `25m`, `5h7m`, `30h`, `3d4h`,
/// `200d`, `3y12d`, `9y`; `0s` for up to a second in the future, `<invalid>` beyond.
pub fn human_duration(d: SignedDuration) -> String {
    let secs = d.as_secs();
    if secs < -1 {
        return "<invalid>".to_string();
    }
    if secs < 0 {
        return "0s".to_string();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        return match secs % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 3 * 60 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return match (hours / 24) % 365 {
            0 => format!("{}y", hours / 24 / 365),
            d => format!("{}y{d}d", hours / 24 / 365),
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// How long ago `t` was, as kubectl prints ages; `<unknown>` without a time.
pub fn translate_since(t: Option<Timestamp>, now: Timestamp) -> String {
    match t {
        Some(t) => human_duration(now.duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

/// The age of the timestamp at `pointer` in `obj` (see [`translate_since`]).
pub fn since(obj: &Value, pointer: &str, now: Timestamp) -> String {
    translate_since(time(obj, pointer), now)
}

/// A `metav1.LabelSelector` as kubectl prints it (`app=web,tier in (a,b),!legacy`),
/// requirements sorted by key; "" for an empty or absent selector.
pub fn label_selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel else {
        return String::new();
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or_default())));
        }
    }
    for e in list(sel, "/matchExpressions") {
        let key = str_at(e, "/key");
        let mut values: Vec<&str> = list(e, "/values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        values.dedup();
        let text = match str_at(e, "/operator") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    reqs.into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

/// A string map (labels, a Service selector) as `a=b,c=d`, sorted; `<none>` when empty.
pub fn format_labels(map: Option<&Value>) -> String {
    let pairs: BTreeMap<&str, &str> = map
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A resource quantity or int-or-string as written (`500m`, `1Gi`, `25%`, `3`).
/// Bytes in binary units as Kubernetes writes quantities (`512`, `12Ki`, `1.5Mi`).
fn binary_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["Ki", "Mi", "Gi", "Ti", "Pi"];
    if b < 1024 {
        return b.to_string();
    }
    let mut v = b as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if v >= 10.0 || v.fract() < 0.05 {
        format!("{v:.0}{}", UNITS[unit])
    } else {
        format!("{v:.1}{}", UNITS[unit])
    }
}

pub fn quantity_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn quantity(obj: &Value, pointer: &str) -> String {
    match obj.pointer(pointer) {
        Some(v) if !v.is_null() => quantity_text(v),
        _ => "0".to_string(),
    }
}

fn container_cells(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// `spec.replicas`, Kubernetes' default of 1 when unset.
fn replicas(obj: &Value) -> i64 {
    opt_int(obj, "/spec/replicas").unwrap_or(1)
}

fn terminating_or<'a>(obj: &Value, phase: &'a str) -> &'a str {
    if present(obj, "/metadata/deletionTimestamp") {
        "Terminating"
    } else {
        phase
    }
}

/// When the container last terminated before its current run.
fn finished_before(cs: &Value) -> Option<Timestamp> {
    object_at(cs, "/lastState/terminated")?;
    time(cs, "/lastState/terminated/finishedAt")
}

fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

fn map_len(obj: &Value, pointer: &str) -> usize {
    obj.pointer(pointer)
        .and_then(Value::as_object)
        .map_or(0, Map::len)
}

// Small accessors: absent or mistyped fields read as empty, zero or false, never panic.

pub(crate) fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    meta::str_at(v, pointer)
}

pub(crate) fn opt_int(v: &Value, pointer: &str) -> Option<i64> {
    let n = v.pointer(pointer)?;
    n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))
}

pub(crate) fn int(v: &Value, pointer: &str) -> i64 {
    opt_int(v, pointer).unwrap_or(0)
}

pub(crate) fn bool_at(v: &Value, pointer: &str) -> bool {
    v.pointer(pointer).and_then(Value::as_bool).unwrap_or(false)
}

pub(crate) fn list<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub(crate) fn object_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Map<String, Value>> {
    v.pointer(pointer).and_then(Value::as_object)
}

/// The field exists and is not null.
pub(crate) fn present(v: &Value, pointer: &str) -> bool {
    v.pointer(pointer).is_some_and(|x| !x.is_null())
}

pub(crate) fn time(v: &Value, pointer: &str) -> Option<Timestamp> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .and_then(meta::parse_time)
}

pub(crate) fn or<'a>(s: &'a str, fallback: &'a str) -> &'a str {
    if s.is_empty() { fallback } else { s }
}

pub(crate) fn or_none(s: &str) -> &str {
    or(s, "<none>")
}

fn or_unset(s: &str) -> &str {
    or(s, "<unset>")
}

/// Headers of `berth image ls` and the TUI's images view.
pub const IMAGE_HEADERS: [&str; 5] = ["IMAGE", "TAG", "IMAGE ID", "CREATED", "SIZE"];

/// The cells of one image of `/apis/images.berth.dev/v1/images`.
pub fn image_row(img: &Value, now: Timestamp, full_id: bool) -> Vec<String> {
    let familiar = meta::str_at(img, "/spec/familiarName");
    let (repo, tag) = if let Some((repo, digest)) = familiar.split_once('@') {
        (repo.to_string(), digest.to_string())
    } else {
        match familiar.rfind(':') {
            Some(i) if !familiar[i..].contains('/') => {
                (familiar[..i].to_string(), familiar[i + 1..].to_string())
            }
            _ => (familiar.to_string(), "<none>".to_string()),
        }
    };
    let id = meta::str_at(img, "/spec/id");
    let short: String = if full_id {
        id.to_string()
    } else {
        id.strip_prefix("sha256:")
            .unwrap_or(id)
            .chars()
            .take(12)
            .collect()
    };
    let created = meta::parse_time(meta::str_at(img, "/metadata/creationTimestamp"))
        .map(|t| format!("{} ago", human_duration(now.duration_since(t))))
        .unwrap_or_default();
    let size = img
        .pointer("/spec/size")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    vec![repo, tag, short, created, human_size(size)]
}

/// Bytes in decimal units with four significant digits, as docker prints them.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    let decimals = match v {
        v if v >= 100.0 => 1,
        v if v >= 10.0 => 2,
        _ => 3,
    };
    let text = format!("{v:.decimals$}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::api::REGISTRY;
    use crate::api::registry::by_kind;

    pub(crate) const NOW: &str = "2026-11-23T10:00:00Z";

    pub(crate) fn now() -> Timestamp {
        meta::parse_time(NOW).expect("valid")
    }

    fn rt(api_version: &str, kind: &str) -> &'static ResourceType {
        by_kind(api_version, kind).expect("registered")
    }

    fn cells(api_version: &str, kind: &str, obj: &Value) -> Vec<Value> {
        row(rt(api_version, kind), obj, now())
    }

    fn text(cells: &[Value]) -> Vec<String> {
        cells.iter().map(cell_text).collect()
    }

    /// A realistic object of every registered kind, as the API server stores it.
    pub(crate) fn fixture(kind: &str) -> Value {
        let md = |name: &str| {
            json!({"name": name, "namespace": "default", "uid": "0b7c3e5e-1",
                   "resourceVersion": "42", "creationTimestamp": "2026-11-23T09:55:00Z",
                   "labels": {"app": "web"}})
        };
        let template = json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [
                {"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                 "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}}},
                {"name": "log", "image": "busybox"}
            ]}
        });
        match kind {
            "Pod" => json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "web-7d4b9c-x2k8p", "namespace": "default", "uid": "u-1",
                    "creationTimestamp": "2026-11-23T09:57:00Z", "labels": {"app": "web", "pod-template-hash": "7d4b9c"},
                    "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"secret\":\"hunter2\"}", "note": "hello"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c", "uid": "rs-1", "controller": true}]},
                "spec": {
                    "nodeName": "node1", "serviceAccountName": "default", "priority": 0,
                    "containers": [{
                        "name": "web", "image": "nginx:1.25",
                        "command": ["nginx"], "args": ["-g", "daemon off;"],
                        "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}],
                        "env": [{"name": "MODE", "value": "prod"},
                                {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
                        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m", "memory": "64Mi"}},
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 80, "scheme": "HTTP"},
                            "initialDelaySeconds": 3, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "cfg", "mountPath": "/etc/cfg", "readOnly": true}]
                    }],
                    "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "web-config"}}],
                    "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
                },
                "status": {
                    "phase": "Running", "podIP": "10.88.0.5", "podIPs": [{"ip": "10.88.0.5"}], "hostIP": "192.168.1.10",
                    "startTime": "2026-11-23T09:57:01Z", "qosClass": "Burstable",
                    "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"},
                                   {"type": "ContainersReady", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
                    "containerStatuses": [{
                        "name": "web", "ready": true, "started": true, "restartCount": 2, "image": "nginx:1.25",
                        "imageID": "sha256:abc", "containerID": "berth://c1",
                        "state": {"running": {"startedAt": "2026-11-23T09:58:00Z"}},
                        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": "2026-11-23T09:57:02Z", "finishedAt": "2026-11-23T09:55:00Z"}}
                    }]
                }
            }),
            "Service" => json!({
                "apiVersion": "v1", "kind": "Service", "metadata": md("web"),
                "spec": {"type": "NodePort", "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
                    "selector": {"app": "web", "tier": "front"},
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080, "protocol": "TCP"},
                              {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}],
                    "sessionAffinity": "None", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"},
                "status": {"loadBalancer": {}}
            }),
            "Deployment" => json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "default", "uid": "d-1", "creationTimestamp": "2026-11-23T09:00:00Z",
                    "labels": {"app": "web"}, "annotations": {"deployment.kubernetes.io/revision": "2"}, "generation": 2},
                "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template,
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}},
                    "minReadySeconds": 0},
                "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2, "unavailableReplicas": 1,
                    "observedGeneration": 2,
                    "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                                   {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}
            }),
            "ReplicaSet" => json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": md("web-7d4b9c"),
                "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d4b9c"}}, "template": template},
                "status": {"replicas": 3, "readyReplicas": 2}
            }),
            "StatefulSet" => json!({
                "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": md("db"),
                "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "web"}}, "template": template},
                "status": {"replicas": 2, "readyReplicas": 1}
            }),
            "Job" => json!({
                "apiVersion": "batch/v1", "kind": "Job", "metadata": md("migrate"),
                "spec": {"completions": 1, "parallelism": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "j-1"}},
                    "template": template},
                "status": {"succeeded": 1, "startTime": "2026-11-23T09:55:00Z", "completionTime": "2026-11-23T09:55:42Z",
                    "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}
            }),
            "CronJob" => json!({
                "apiVersion": "batch/v1", "kind": "CronJob", "metadata": md("backup"),
                "spec": {"schedule": "*/5 * * * *", "suspend": false,
                    "jobTemplate": {"spec": {"template": template}}},
                "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": "2026-11-23T09:59:00Z"}
            }),
            "Namespace" => json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "prod", "creationTimestamp": "2026-11-20T10:00:00Z", "labels": {"kubernetes.io/metadata.name": "prod"}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}
            }),
            "Node" => json!({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "node1", "creationTimestamp": "2026-11-01T10:00:00Z",
                    "labels": {"kubernetes.io/hostname": "node1", "node-role.kubernetes.io/control-plane": ""}},
                "spec": {"podCIDR": "10.88.0.0/16", "taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]},
                "status": {
                    "conditions": [{"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory"},
                                   {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "berth is ready",
                                    "lastHeartbeatTime": "2026-11-23T09:59:50Z", "lastTransitionTime": "2026-11-01T10:00:05Z"}],
                    "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": "node1"}],
                    "capacity": {"cpu": "2", "memory": "4026532Ki", "pods": "110"},
                    "allocatable": {"cpu": "2", "memory": "3924132Ki", "pods": "110"},
                    "nodeInfo": {"kubeletVersion": "v1.34.0-berth", "osImage": "Debian GNU/Linux 12 (bookworm)",
                        "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "berth://0.1.0",
                        "operatingSystem": "linux", "architecture": "amd64", "machineID": "m", "systemUUID": "s", "bootID": "b",
                        "kubeProxyVersion": ""}
                }
            }),
            "Endpoints" => json!({
                "apiVersion": "v1", "kind": "Endpoints", "metadata": md("web"),
                "subsets": [{"addresses": [{"ip": "10.88.0.5"}, {"ip": "10.88.0.6"}],
                             "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]
            }),
            "ControllerRevision" => json!({
                "apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {
                    "name": "db-5d8f", "namespace": "default", "creationTimestamp": "2026-11-23T09:55:00Z",
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "u", "controller": true}]},
                "data": {"spec": {"template": {}}}, "revision": 2
            }),
            "EndpointSlice" => json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": md("web-abcde"),
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.88.0.5"]}, {"addresses": ["10.88.0.6"]},
                    {"addresses": ["10.88.0.7"]}, {"addresses": ["10.88.0.8"]}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "m", "port": 9090}]
            }),
            "ConfigMap" => json!({
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": md("web-config"),
                "data": {"nginx.conf": "server {\n  listen 80;\n}\n", "mode": "prod"},
                "binaryData": {"logo.png": "iVBORw0KGgo="}
            }),
            "Secret" => json!({
                "apiVersion": "v1", "kind": "Secret", "metadata": md("db"), "type": "Opaque",
                "data": {"password": "aHVudGVyMg==", "username": "YWRtaW4="}
            }),
            "PersistentVolume" => json!({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": "pv-data", "creationTimestamp": "2026-11-22T10:00:00Z"},
                "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "local",
                    "claimRef": {"namespace": "default", "name": "data"}, "hostPath": {"path": "/srv/data"}, "volumeMode": "Filesystem"},
                "status": {"phase": "Bound"}
            }),
            "PersistentVolumeClaim" => json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": md("data"),
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}},
                    "storageClassName": "local", "volumeName": "pv-data", "volumeMode": "Filesystem"},
                "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"}}
            }),
            "StorageClass" => json!({
                "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": "local", "creationTimestamp": "2026-11-01T10:00:00Z",
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                "provisioner": "berth.io/hostpath", "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer"
            }),
            "Ingress" => json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": md("web"),
                "spec": {"ingressClassName": "berth",
                    "tls": [{"hosts": ["web.example.test"], "secretName": "web-tls"}],
                    "rules": [{"host": "web.example.test", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                        "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}},
                        {"host": "api.example.test"}]},
                "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.10"}]}}
            }),
            "IngressClass" => json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                "metadata": {"name": "berth", "creationTimestamp": "2026-11-01T10:00:00Z"},
                "spec": {"controller": "berth.io/ingress",
                    "parameters": {"apiGroup": "berth.io", "kind": "IngressParameters", "name": "default"}}
            }),
            "NetworkPolicy" => json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": md("deny-all"),
                "spec": {"podSelector": {"matchLabels": {"app": "web"},
                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]}]},
                    "policyTypes": ["Ingress"]}
            }),
            "ResourceQuota" => json!({
                "apiVersion": "v1", "kind": "ResourceQuota", "metadata": md("compute"),
                "spec": {"hard": {"pods": "10", "requests.cpu": "1", "limits.cpu": "2", "limits.memory": "2Gi"}},
                "status": {"hard": {"pods": "10", "requests.cpu": "1", "limits.cpu": "2", "limits.memory": "2Gi"},
                           "used": {"pods": "3", "requests.cpu": "250m", "limits.cpu": "500m"}}
            }),
            "LimitRange" => json!({
                "apiVersion": "v1", "kind": "LimitRange", "metadata": md("limits"),
                "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}}]}
            }),
            "Event" => json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": "web-7d4b9c-x2k8p.17a", "namespace": "default", "creationTimestamp": "2026-11-23T09:50:00Z"},
                "involvedObject": {"kind": "Pod", "name": "web-7d4b9c-x2k8p", "namespace": "default",
                    "fieldPath": "spec.containers{web}"},
                "reason": "BackOff", "message": "Back-off restarting failed container\n", "type": "Warning",
                "source": {"component": "kubelet", "host": "node1"},
                "firstTimestamp": "2026-11-23T09:50:00Z", "lastTimestamp": "2026-11-23T09:58:00Z", "count": 3
            }),
            _ => json!({}),
        }
    }

    #[test]
    fn every_kind_renders_fixtures_and_garbage_with_one_cell_per_column() {
        for rt in REGISTRY.iter() {
            let cols = columns(rt);
            assert!(!cols.is_empty(), "{}", rt.kind);
            if rt.kind == "Event" {
                assert_eq!(cols[0].name, "Last Seen");
            } else {
                assert_eq!(
                    (cols[0].name, cols[0].format),
                    ("Name", "name"),
                    "{}",
                    rt.kind
                );
            }
            let sample = fixture(rt.kind);
            assert_eq!(sample["kind"], rt.kind, "fixture for {}", rt.kind);
            for obj in [
                sample,
                json!({}),
                json!("garbage"),
                json!(null),
                json!([1, 2]),
                json!({"metadata": 7, "spec": "x", "status": [], "data": 3}),
                json!({"metadata": {"name": 5, "creationTimestamp": "yesterday",
                        "deletionTimestamp": "2026-11-23T09:00:00Z"},
                       "spec": {"containers": "x", "replicas": "three", "ports": [null, 3]},
                       "status": {"conditions": [null, "x"], "containerStatuses": [{"state": {"terminated": {}}}],
                                  "initContainerStatuses": [7]}}),
            ] {
                let r = row(rt, &obj, now());
                assert_eq!(r.len(), cols.len(), "{} {obj}", rt.kind);
                let _ = render_text(&cols, &[r], true, true, &[]);
            }
            let t = table_object(rt, &[fixture(rt.kind), json!(3)], now(), false);
            assert_eq!(t["rows"].as_array().map(Vec::len), Some(2));
        }
    }

    #[test]
    fn fixture_rows_match_kubectl() {
        let expect = |api: &str, kind: &str, want: &[&str]| {
            assert_eq!(text(&cells(api, kind, &fixture(kind))), want, "{kind}");
        };
        expect(
            "v1",
            "Pod",
            &[
                "web-7d4b9c-x2k8p",
                "1/1",
                "Running",
                "2 (5m ago)",
                "3m",
                "10.88.0.5",
                "node1",
                "<none>",
                "<none>",
            ],
        );
        expect(
            "v1",
            "Service",
            &[
                "web",
                "NodePort",
                "10.96.0.20",
                "<none>",
                "80:30080/TCP,443/TCP",
                "5m",
                "app=web,tier=front",
            ],
        );
        expect(
            "apps/v1",
            "Deployment",
            &[
                "web",
                "2/3",
                "3",
                "2",
                "60m",
                "web,log",
                "nginx:1.25,busybox",
                "app=web",
            ],
        );
        expect(
            "apps/v1",
            "ReplicaSet",
            &[
                "web-7d4b9c",
                "3",
                "3",
                "2",
                "5m",
                "web,log",
                "nginx:1.25,busybox",
                "app=web,pod-template-hash=7d4b9c",
            ],
        );
        expect(
            "apps/v1",
            "StatefulSet",
            &["db", "1/2", "5m", "web,log", "nginx:1.25,busybox"],
        );
        expect(
            "batch/v1",
            "Job",
            &[
                "migrate",
                "Complete",
                "1/1",
                "42s",
                "5m",
                "web,log",
                "nginx:1.25,busybox",
                "batch.kubernetes.io/controller-uid=j-1",
            ],
        );
        expect(
            "batch/v1",
            "CronJob",
            &[
                "backup",
                "*/5 * * * *",
                "<none>",
                "False",
                "1",
                "60s",
                "5m",
                "web,log",
                "nginx:1.25,busybox",
                "",
            ],
        );
        expect("v1", "Namespace", &["prod", "Active", "3d"]);
        expect(
            "v1",
            "Node",
            &[
                "node1",
                "Ready",
                "control-plane",
                "22d",
                "v1.34.0-berth",
                "192.168.1.10",
                "<none>",
                "Debian GNU/Linux 12 (bookworm)",
                "6.1.0-18-amd64",
                "berth://0.1.0",
            ],
        );
        expect(
            "v1",
            "Endpoints",
            &["web", "10.88.0.5:8080,10.88.0.6:8080", "5m"],
        );
        expect(
            "discovery.k8s.io/v1",
            "EndpointSlice",
            &[
                "web-abcde",
                "IPv4",
                "8080,9090",
                "10.88.0.5,10.88.0.6,10.88.0.7 + 1 more...",
                "5m",
            ],
        );
        expect(
            "apps/v1",
            "ControllerRevision",
            &["db-5d8f", "statefulset.apps/db", "2", "5m"],
        );
        expect("v1", "ConfigMap", &["web-config", "3", "5m"]);
        expect("v1", "Secret", &["db", "Opaque", "2", "5m"]);
        expect(
            "v1",
            "PersistentVolume",
            &[
                "pv-data",
                "10Gi",
                "RWO,RWX",
                "Retain",
                "Bound",
                "default/data",
                "local",
                "<unset>",
                "",
                "24h",
                "Filesystem",
            ],
        );
        expect(
            "v1",
            "PersistentVolumeClaim",
            &[
                "data",
                "Bound",
                "pv-data",
                "10Gi",
                // berth's own column (USED, the measured bytes): none measured here.
                "",
                "RWO",
                "local",
                "<unset>",
                "5m",
                "Filesystem",
            ],
        );
        expect(
            "storage.k8s.io/v1",
            "StorageClass",
            &[
                "local (default)",
                "berth.io/hostpath",
                "Delete",
                "WaitForFirstConsumer",
                "false",
                "22d",
            ],
        );
        expect(
            "networking.k8s.io/v1",
            "Ingress",
            &[
                "web",
                "berth",
                "web.example.test,api.example.test",
                "192.168.1.10",
                "80, 443",
                "5m",
            ],
        );
        expect(
            "networking.k8s.io/v1",
            "IngressClass",
            &[
                "berth",
                "berth.io/ingress",
                "IngressParameters.berth.io/default",
                "22d",
            ],
        );
        expect(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            &["deny-all", "app=web,tier in (back,front)", "5m"],
        );
        expect(
            "v1",
            "ResourceQuota",
            &[
                "compute",
                "5m",
                "pods: 3/10, requests.cpu: 250m/1",
                "limits.cpu: 500m/2, limits.memory: 0/2Gi",
            ],
        );
        expect("v1", "LimitRange", &["limits", "2026-11-23T09:55:00Z"]);
        expect(
            "v1",
            "Event",
            &[
                "2m",
                "Warning",
                "BackOff",
                "pod/web-7d4b9c-x2k8p",
                "spec.containers{web}",
                "kubelet, node1",
                "Back-off restarting failed container",
                "10m",
                "3",
                "web-7d4b9c-x2k8p.17a",
            ],
        );
    }

    fn pod(spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "p", "creationTimestamp": "2026-11-23T09:59:00Z"}, "spec": spec, "status": status})
    }

    fn summary(p: &Value) -> (String, String) {
        let s = pod_summary(p);
        (format!("{}/{}", s.ready, s.total), s.status)
    }

    #[test]
    fn pod_status_follows_kubectl() {
        let one = json!({"containers": [{"name": "a"}]});
        let two = json!({"containers": [{"name": "a"}, {"name": "b"}]});
        let running = |name: &str, ready: bool| {
            json!({"name": name, "ready": ready, "restartCount": 0,
                   "state": {"running": {"startedAt": "2026-11-23T09:59:10Z"}}})
        };
        let cases: Vec<(&str, Value, (&str, &str))> = vec![
            (
                "running ready",
                pod(
                    two.clone(),
                    json!({"phase": "Running", "containerStatuses": [running("a", true), running("b", true)]}),
                ),
                ("2/2", "Running"),
            ),
            (
                "running, one not ready",
                pod(
                    two.clone(),
                    json!({"phase": "Running", "containerStatuses": [running("a", true), running("b", false)]}),
                ),
                ("1/2", "Running"),
            ),
            (
                "crashloop",
                pod(
                    one.clone(),
                    json!({"phase": "Running", "containerStatuses": [{"name": "a", "ready": false, "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2026-11-23T09:59:30Z"}}}]}),
                ),
                ("0/1", "CrashLoopBackOff"),
            ),
            (
                "completed",
                pod(
                    one.clone(),
                    json!({"phase": "Succeeded", "containerStatuses": [{"name": "a", "ready": false,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
                ),
                ("0/1", "Completed"),
            ),
            (
                "error",
                pod(
                    one.clone(),
                    json!({"phase": "Failed", "containerStatuses": [{"name": "a",
                    "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}]}),
                ),
                ("0/1", "Error"),
            ),
            (
                "oom",
                pod(
                    one.clone(),
                    json!({"phase": "Running", "containerStatuses": [{"name": "a",
                    "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
                ),
                ("0/1", "OOMKilled"),
            ),
            (
                "terminated without reason",
                pod(
                    one.clone(),
                    json!({"phase": "Running", "containerStatuses": [{"name": "a",
                    "state": {"terminated": {"exitCode": 3}}}]}),
                ),
                ("0/1", "ExitCode:3"),
            ),
            (
                "killed by a signal",
                pod(
                    one.clone(),
                    json!({"phase": "Running", "containerStatuses": [{"name": "a",
                    "state": {"terminated": {"exitCode": 0, "signal": 9}}}]}),
                ),
                ("0/1", "Signal:9"),
            ),
            (
                "one completed, one running, pod ready",
                pod(
                    two.clone(),
                    json!({"phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                                          running("b", true)]}),
                ),
                ("1/2", "Running"),
            ),
            (
                "one completed, one running, pod not ready",
                pod(
                    two.clone(),
                    json!({"phase": "Running",
                    "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                                          running("b", true)]}),
                ),
                ("1/2", "NotReady"),
            ),
            (
                "init waiting",
                pod(
                    json!({"initContainers": [{"name": "i"}], "containers": [{"name": "a"}]}),
                    json!({"phase": "Pending",
                        "initContainerStatuses": [{"name": "i", "state": {"running": {}}}],
                        "containerStatuses": [{"name": "a", "state": {"waiting": {"reason": "PodInitializing"}}}]}),
                ),
                ("0/1", "Init:0/1"),
            ),
            (
                "second init container running",
                pod(
                    json!({"initContainers": [{"name": "i"}, {"name": "j"}], "containers": [{"name": "a"}]}),
                    json!({"phase": "Pending",
                        "initContainerStatuses": [{"name": "i", "state": {"terminated": {"exitCode": 0}}},
                                                  {"name": "j", "state": {"waiting": {"reason": "PodInitializing"}}}]}),
                ),
                ("0/1", "Init:1/2"),
            ),
            (
                "init crashloop",
                pod(
                    json!({"initContainers": [{"name": "i"}], "containers": [{"name": "a"}]}),
                    json!({"phase": "Pending",
                        "initContainerStatuses": [{"name": "i", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
                ),
                ("0/1", "Init:CrashLoopBackOff"),
            ),
            (
                "init failed",
                pod(
                    json!({"initContainers": [{"name": "i"}], "containers": [{"name": "a"}]}),
                    json!({"phase": "Failed",
                        "initContainerStatuses": [{"name": "i", "state": {"terminated": {"exitCode": 1}}}]}),
                ),
                ("0/1", "Init:ExitCode:1"),
            ),
            (
                "sidecar started and ready",
                pod(
                    json!({"initContainers": [{"name": "s", "restartPolicy": "Always"}], "containers": [{"name": "a"}]}),
                    json!({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                        "initContainerStatuses": [{"name": "s", "started": true, "ready": true, "state": {"running": {}}}],
                        "containerStatuses": [running("a", true)]}),
                ),
                ("2/2", "Running"),
            ),
            (
                "container creating",
                pod(
                    one.clone(),
                    json!({"phase": "Pending", "containerStatuses": [{"name": "a",
                    "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
                ),
                ("0/1", "ContainerCreating"),
            ),
            (
                "pending unscheduled",
                pod(
                    one.clone(),
                    json!({"phase": "Pending",
                    "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}),
                ),
                ("0/1", "Pending"),
            ),
            (
                "scheduling gated",
                pod(
                    one.clone(),
                    json!({"phase": "Pending",
                    "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
                ),
                ("0/1", "SchedulingGated"),
            ),
            (
                "evicted",
                pod(one.clone(), json!({"phase": "Failed", "reason": "Evicted"})),
                ("0/1", "Evicted"),
            ),
        ];
        for (what, p, (ready, status)) in cases {
            assert_eq!(
                summary(&p),
                (ready.to_string(), status.to_string()),
                "{what}"
            );
        }

        let mut terminating = pod(
            one.clone(),
            json!({"phase": "Running", "containerStatuses": [running("a", true)]}),
        );
        terminating["metadata"]["deletionTimestamp"] = json!("2026-11-23T10:00:30Z");
        assert_eq!(summary(&terminating).1, "Terminating");
        let mut finished = pod(
            one,
            json!({"phase": "Succeeded", "containerStatuses": [{"name": "a",
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
        );
        finished["metadata"]["deletionTimestamp"] = json!("2026-11-23T10:00:30Z");
        assert_eq!(
            summary(&finished).1,
            "Completed",
            "finished pods are not Terminating"
        );
    }

    #[test]
    fn pod_restarts_say_how_long_ago() {
        let p = pod(
            json!({"containers": [{"name": "a"}, {"name": "b"}]}),
            json!({"phase": "Running", "containerStatuses": [
                {"name": "a", "restartCount": 1, "lastState": {"terminated": {"finishedAt": "2026-11-23T09:50:00Z"}}},
                {"name": "b", "restartCount": 2, "lastState": {"terminated": {"finishedAt": "2026-11-23T09:55:00Z"}}}]}),
        );
        let r = cells("v1", "Pod", &p);
        assert_eq!(r[3], json!("3 (5m ago)"));
        let fresh = pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Pending"}),
        );
        assert_eq!(cells("v1", "Pod", &fresh)[3], json!("0"));
        assert_eq!(cells("v1", "Pod", &fresh)[4], json!("60s"));
    }

    #[test]
    fn human_duration_matches_apimachinery() {
        let s = SignedDuration::from_secs;
        for (d, want) in [
            (s(-5), "<invalid>"),
            (s(-1), "0s"),
            (SignedDuration::from_millis(-1500), "0s"),
            (s(0), "0s"),
            (s(5), "5s"),
            (s(119), "119s"),
            (s(120), "2m"),
            (s(200), "3m20s"),
            (s(599), "9m59s"),
            (s(600), "10m"),
            (s(179 * 60 + 59), "179m"),
            (s(3 * 3600), "3h"),
            (s(5 * 3600 + 7 * 60), "5h7m"),
            (s(8 * 3600), "8h"),
            (s(47 * 3600 + 59 * 60), "47h"),
            (s(48 * 3600), "2d"),
            (s(3 * 86400 + 4 * 3600), "3d4h"),
            (s(8 * 86400), "8d"),
            (s(729 * 86400), "729d"),
            (s(730 * 86400), "2y"),
            (s(3 * 365 * 86400 + 12 * 86400), "3y12d"),
            (s(9 * 365 * 86400), "9y"),
        ] {
            assert_eq!(human_duration(d), want, "{d:?}");
        }
        assert_eq!(translate_since(None, now()), "<unknown>");
    }

    #[test]
    fn services_show_pending_and_load_balancer_addresses() {
        let mut svc = fixture("Service");
        svc["spec"]["type"] = json!("LoadBalancer");
        assert_eq!(cells("v1", "Service", &svc)[3], json!("<pending>"));
        svc["status"]["loadBalancer"]["ingress"] =
            json!([{"ip": "192.168.1.20"}, {"hostname": "lb.test"}]);
        svc["spec"]["externalIPs"] = json!(["1.2.3.4"]);
        assert_eq!(
            cells("v1", "Service", &svc)[3],
            json!("192.168.1.20,lb.test,1.2.3.4")
        );
        svc["spec"]["type"] = json!("ExternalName");
        svc["spec"]["externalName"] = json!("db.example.test");
        assert_eq!(cells("v1", "Service", &svc)[3], json!("db.example.test"));
        let headless =
            json!({"metadata": {"name": "h"}, "spec": {"type": "ClusterIP", "clusterIP": "None"}});
        assert_eq!(
            text(&cells("v1", "Service", &headless)),
            [
                "h",
                "ClusterIP",
                "None",
                "<none>",
                "<none>",
                "<unknown>",
                "<none>"
            ]
        );
    }

    #[test]
    fn endpoints_and_nodes_edge_cases() {
        let ep = json!({"subsets": [{"addresses": [{"ip": "a"}, {"ip": "b"}, {"ip": "fd00::1"}, {"ip": "d"}],
                                     "ports": [{"port": 80}]}]});
        assert_eq!(format_endpoints(&ep), "a:80,b:80,[fd00::1]:80 + 1 more...");
        assert_eq!(format_endpoints(&json!({"subsets": []})), "<none>");
        let mut node = fixture("Node");
        node["spec"]["unschedulable"] = json!(true);
        node["status"]["conditions"][1]["status"] = json!("Unknown");
        assert_eq!(
            cells("v1", "Node", &node)[1],
            json!("NotReady,SchedulingDisabled")
        );
        assert_eq!(cells("v1", "Node", &json!({}))[1], json!("Unknown"));
    }

    #[test]
    fn jobs_report_status_and_duration() {
        let job = json!({"metadata": {"name": "j"}, "spec": {"parallelism": 3},
            "status": {"succeeded": 1, "startTime": "2026-11-23T09:57:00Z"}});
        let r = text(&cells("batch/v1", "Job", &job));
        assert_eq!(&r[1..4], ["Running", "1/1 of 3", "3m"]);
        let failed = json!({"status": {"conditions": [{"type": "Failed", "status": "True"}]}});
        assert_eq!(cells("batch/v1", "Job", &failed)[1], json!("Failed"));
    }

    #[test]
    fn render_text_aligns_like_kubectl() {
        let rt = rt("v1", "Pod");
        let cols = columns(rt);
        let rows = vec![
            vec![
                json!("web-1"),
                json!("1/1"),
                json!("Running"),
                json!("0"),
                json!("5m"),
                json!("10.88.0.5"),
                json!("node1"),
                json!("<none>"),
                json!("<none>"),
            ],
            vec![
                json!("a-much-longer-name"),
                json!("0/1"),
                json!("CrashLoopBackOff"),
                json!("4 (10s ago)"),
                json!("2d"),
                json!("10.88.0.6"),
                json!("node1"),
                json!("<none>"),
                json!("<none>"),
            ],
        ];
        let out = render_text(&cols, &rows, false, false, &[]);
        assert_eq!(
            out,
            "NAME                 READY   STATUS             RESTARTS      AGE\n\
             web-1                1/1     Running            0             5m\n\
             a-much-longer-name   0/1     CrashLoopBackOff   4 (10s ago)   2d\n"
        );
        let out = render_text(&cols, &rows[..1], true, true, &["default".to_string()]);
        assert_eq!(
            out,
            "NAMESPACE   NAME    READY   STATUS    RESTARTS   AGE   IP          NODE    NOMINATED NODE   READINESS GATES\n\
             default     web-1   1/1     Running   0          5m    10.88.0.5   node1   <none>           <none>\n"
        );
        // Short columns keep kubectl's minimum width; empty last cells leave no trailing space.
        let cols = vec![col("A", "string", ""), col("B", "string", "")];
        let out = render_text(
            &cols,
            &[vec![json!("x"), json!("")], vec![json!(1), Value::Null]],
            false,
            false,
            &[],
        );
        assert_eq!(out, "A     B\nx\n1     <none>\n");
        // Line breaks and escapes cannot break the layout.
        let out = render_text(
            &cols,
            &[vec![json!("two\nlines"), json!("\u{1b}[2J")]],
            false,
            false,
            &[],
        );
        assert_eq!(out, "A        B\ntwo...   \\u{1b}[2J\n");
    }

    #[test]
    fn table_object_is_a_meta_v1_table() {
        let rt = rt("v1", "Pod");
        let mut done = fixture("Pod");
        done["status"]["phase"] = json!("Succeeded");
        done["metadata"]["managedFields"] = json!([{"manager": "kubectl"}]);
        let t = table_object(rt, &[fixture("Pod"), done.clone()], now(), false);
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(
            t["columnDefinitions"][0],
            json!({"name": "Name", "type": "string", "format": "name",
                   "description": NAME.description, "priority": 0})
        );
        assert_eq!(t["columnDefinitions"][7]["name"], "Nominated Node");
        assert_eq!(t["columnDefinitions"][7]["priority"], 1);
        let row0 = &t["rows"][0];
        assert_eq!(row0["cells"].as_array().map(Vec::len), Some(9));
        assert_eq!(row0["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(row0["object"]["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(row0["object"]["metadata"]["namespace"], "default");
        assert!(row0.get("conditions").is_none());
        assert_eq!(t["rows"][1]["conditions"][0]["type"], "Completed");
        assert!(
            t["rows"][1]["object"]["metadata"]
                .get("managedFields")
                .is_none()
        );
        let full = table_object(rt, &[done.clone()], now(), true);
        assert_eq!(full["rows"][0]["object"], done);
    }

    #[test]
    fn selectors_print_like_kubectl() {
        assert_eq!(label_selector_string(None), "");
        assert_eq!(label_selector_string(Some(&json!({}))), "");
        let sel = json!({"matchLabels": {"b": "2"}, "matchExpressions": [
            {"key": "a", "operator": "Exists"}, {"key": "c", "operator": "DoesNotExist"},
            {"key": "d", "operator": "NotIn", "values": ["y", "x"]}]});
        assert_eq!(label_selector_string(Some(&sel)), "a,b=2,!c,d notin (x,y)");
        assert_eq!(format_labels(Some(&json!({}))), "<none>");
        let np = json!({"metadata": {"name": "all"}, "spec": {"podSelector": {}}});
        assert_eq!(
            cells("networking.k8s.io/v1", "NetworkPolicy", &np)[1],
            json!("<none>")
        );
    }
}
