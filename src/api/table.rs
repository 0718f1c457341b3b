//! Table rendering: one pure header + row function per kind, as `kubectl get` prints them.
//!
//! The same functions feed `berth get`, the server's `meta.k8s.io/v1` Table answers for
//! kubectl, and the TUI. Any JSON renders without panicking: a missing field prints as
//! kubectl prints it (`<none>`, `<unknown>`, `0`).

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use super::meta;
use super::registry::ResourceType;

/// One column, in the Table form kubectl reads (`columnDefinitions`).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: &'static str,
    /// OpenAPI type: "string" or "integer".
    pub kind: &'static str,
    /// "name" for the name column, "date" for ages, else "".
    pub format: &'static str,
    pub description: &'static str,
    /// 0: always shown; 1: only with `-o wide`.
    pub priority: i32,
}

const fn col(name: &'static str) -> Column {
    Column {
        name,
        kind: "string",
        format: "",
        description: "",
        priority: 0,
    }
}
const fn wide(name: &'static str) -> Column {
    Column {
        name,
        kind: "string",
        format: "",
        description: "",
        priority: 1,
    }
}
const fn int(name: &'static str) -> Column {
    Column {
        name,
        kind: "integer",
        format: "",
        description: "",
        priority: 0,
    }
}
const NAME: Column = Column {
    name: "Name",
    kind: "string",
    format: "name",
    description: "Name of the object",
    priority: 0,
};
const AGE: Column = Column {
    name: "Age",
    kind: "string",
    format: "date",
    description: "Time since creation",
    priority: 0,
};

/// The columns of a kind.
pub fn columns(rt: &ResourceType) -> Vec<Column> {
    match rt.kind {
        "Pod" => vec![
            NAME,
            col("Ready"),
            col("Status"),
            col("Restarts"),
            AGE,
            wide("IP"),
            wide("Node"),
            wide("Nominated Node"),
            wide("Readiness Gates"),
        ],
        "Deployment" => vec![
            NAME,
            col("Ready"),
            int("Up-to-date"),
            int("Available"),
            AGE,
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        "ReplicaSet" => vec![
            NAME,
            int("Desired"),
            int("Current"),
            int("Ready"),
            AGE,
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        "StatefulSet" => vec![NAME, col("Ready"), AGE, wide("Containers"), wide("Images")],
        "Job" => vec![
            NAME,
            col("Status"),
            col("Completions"),
            col("Duration"),
            AGE,
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        "CronJob" => vec![
            NAME,
            col("Schedule"),
            col("Timezone"),
            col("Suspend"),
            int("Active"),
            col("Last Schedule"),
            AGE,
            wide("Containers"),
            wide("Images"),
            wide("Selector"),
        ],
        "Service" => vec![
            NAME,
            col("Type"),
            col("Cluster-IP"),
            col("External-IP"),
            col("Port(s)"),
            AGE,
            wide("Selector"),
        ],
        "Namespace" => vec![NAME, col("Status"), AGE],
        "Node" => vec![
            NAME,
            col("Status"),
            col("Roles"),
            AGE,
            col("Version"),
            wide("Internal-IP"),
            wide("External-IP"),
            wide("OS-Image"),
            wide("Kernel-Version"),
            wide("Container-Runtime"),
        ],
        "Endpoints" => vec![NAME, col("Endpoints"), AGE],
        "ConfigMap" => vec![NAME, int("Data"), AGE],
        "Secret" => vec![NAME, col("Type"), int("Data"), AGE],
        "PersistentVolume" => vec![
            NAME,
            col("Capacity"),
            col("Access Modes"),
            col("Reclaim Policy"),
            col("Status"),
            col("Claim"),
            col("StorageClass"),
            col("VolumeAttributesClass"),
            col("Reason"),
            AGE,
            wide("VolumeMode"),
        ],
        "PersistentVolumeClaim" => vec![
            NAME,
            col("Status"),
            col("Volume"),
            col("Capacity"),
            col("Access Modes"),
            col("StorageClass"),
            col("VolumeAttributesClass"),
            AGE,
            wide("VolumeMode"),
        ],
        "StorageClass" => vec![
            NAME,
            col("Provisioner"),
            col("ReclaimPolicy"),
            col("VolumeBindingMode"),
            col("AllowVolumeExpansion"),
            AGE,
        ],
        "Ingress" => vec![
            NAME,
            col("Class"),
            col("Hosts"),
            col("Address"),
            col("Ports"),
            AGE,
        ],
        "IngressClass" => vec![NAME, col("Controller"), col("Parameters"), AGE],
        "NetworkPolicy" => vec![NAME, col("Pod-Selector"), AGE],
        "ResourceQuota" => vec![NAME, AGE, col("Request"), col("Limit")],
        "LimitRange" => vec![
            NAME,
            Column {
                name: "Created At",
                kind: "string",
                format: "date",
                description: "",
                priority: 0,
            },
        ],
        "Event" => vec![
            Column {
                name: "Last Seen",
                kind: "string",
                format: "",
                description: "",
                priority: 0,
            },
            col("Type"),
            col("Reason"),
            col("Object"),
            wide("Subobject"),
            wide("Source"),
            col("Message"),
            wide("First Seen"),
            wide("Count"),
            wide("Name"),
        ],
        _ => vec![NAME, AGE],
    }
}

fn s(v: &Value, p: &str) -> String {
    meta::str_at(v, p).to_string()
}
fn i(v: &Value, p: &str) -> i64 {
    v.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}
fn arr<'a>(v: &'a Value, p: &str) -> &'a [Value] {
    v.pointer(p)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}
fn or_none(x: String) -> String {
    if x.is_empty() {
        "<none>".to_string()
    } else {
        x
    }
}

/// kubectl's HumanDuration (apimachinery `duration.HumanDuration`).
pub fn human_duration(d: SignedDuration) -> String {
    let secs = d.as_secs();
    if secs < -1 {
        return "<invalid>".to_string();
    }
    let secs = secs.max(0);
    let (m, h, day) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        let rem = secs % 60;
        if rem == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{rem}s")
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        let rem = m % 60;
        if rem == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{rem}m")
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        let rem = h % 24;
        if rem == 0 {
            format!("{day}d")
        } else {
            format!("{day}d{rem}h")
        }
    } else if h < 24 * 365 * 2 {
        format!("{day}d")
    } else if h < 24 * 365 * 8 {
        let y = day / 365;
        let rem = day % 365;
        if rem == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{rem}d")
        }
    } else {
        format!("{}y", day / 365)
    }
}

/// Age of a timestamp field, or `<unknown>`.
pub fn age(ts: &str, now: Timestamp) -> String {
    match meta::parse_time(ts) {
        Some(t) => human_duration(now.duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

fn created(v: &Value, now: Timestamp) -> String {
    age(meta::str_at(v, "/metadata/creationTimestamp"), now)
}

fn containers_images(v: &Value, spec: &str) -> (String, String) {
    let cs = arr(v, &format!("{spec}/containers"));
    let names: Vec<&str> = cs.iter().filter_map(|c| c["name"].as_str()).collect();
    let images: Vec<&str> = cs.iter().filter_map(|c| c["image"].as_str()).collect();
    (or_none(names.join(",")), or_none(images.join(",")))
}

fn selector_string(v: &Value, p: &str) -> String {
    let Some(sel) = v.pointer(p) else {
        return "<none>".into();
    };
    let structured = sel.get("matchLabels").is_some() || sel.get("matchExpressions").is_some();
    if structured
        && let Ok(k) = serde_json::from_value::<
            k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
        >(sel.clone())
        && let Ok(ls) = super::selector::LabelSelector::from_k8s(&k)
    {
        return or_none(ls.to_string());
    }
    // A Service selector is a plain map.
    if let Some(m) = sel.as_object() {
        let parts: Vec<String> = m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        return or_none(parts.join(","));
    }
    "<none>".into()
}

/// Pod STATUS as kubectl computes it.
pub fn pod_status(pod: &Value) -> String {
    let mut reason = s(pod, "/status/phase");
    let status_reason = s(pod, "/status/reason");
    if !status_reason.is_empty() {
        reason = status_reason;
    }
    let init_statuses = arr(pod, "/status/initContainerStatuses");
    let init_total = arr(pod, "/spec/initContainers").len();
    let mut initializing = false;
    for (idx, c) in init_statuses.iter().enumerate() {
        let term = &c["state"]["terminated"];
        if term.is_object() && term["exitCode"].as_i64() == Some(0) {
            continue;
        }
        if term.is_object() {
            let r = term["reason"].as_str().unwrap_or_default();
            reason = if !r.is_empty() {
                format!("Init:{r}")
            } else if let Some(sig) = term["signal"].as_i64().filter(|s| *s != 0) {
                format!("Init:Signal:{sig}")
            } else {
                format!("Init:ExitCode:{}", term["exitCode"].as_i64().unwrap_or(0))
            };
        } else if let Some(r) = c["state"]["waiting"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{idx}/{init_total}");
        }
        initializing = true;
        break;
    }
    if !initializing {
        let mut has_running = false;
        for c in arr(pod, "/status/containerStatuses").iter().rev() {
            let st = &c["state"];
            if let Some(r) = st["waiting"]["reason"].as_str().filter(|r| !r.is_empty()) {
                reason = r.to_string();
            } else if st["terminated"].is_object() {
                let t = &st["terminated"];
                reason = match t["reason"].as_str().filter(|r| !r.is_empty()) {
                    Some(r) => r.to_string(),
                    None => match t["signal"].as_i64().filter(|s| *s != 0) {
                        Some(sig) => format!("Signal:{sig}"),
                        None => format!("ExitCode:{}", t["exitCode"].as_i64().unwrap_or(0)),
                    },
                };
            } else if st["running"].is_object() && c["ready"].as_bool() == Some(true) {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            reason = "Running".to_string();
        }
    }
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        reason = if s(pod, "/status/reason") == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    if reason.is_empty() {
        "Unknown".into()
    } else {
        reason
    }
}

fn pod_restarts(pod: &Value, now: Timestamp) -> String {
    let mut restarts = 0;
    let mut last: Option<Timestamp> = None;
    for c in arr(pod, "/status/containerStatuses")
        .iter()
        .chain(arr(pod, "/status/initContainerStatuses"))
    {
        restarts += c["restartCount"].as_i64().unwrap_or(0);
        if let Some(t) = c["lastState"]["terminated"]["finishedAt"]
            .as_str()
            .and_then(meta::parse_time)
            && last.is_none_or(|l| t > l)
        {
            last = Some(t);
        }
    }
    match last {
        Some(t) if restarts > 0 => {
            format!("{restarts} ({} ago)", human_duration(now.duration_since(t)))
        }
        _ => restarts.to_string(),
    }
}

fn service_ports(svc: &Value) -> String {
    let ports: Vec<String> = arr(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            match p["nodePort"].as_i64() {
                Some(np) => format!("{}:{np}/{proto}", p["port"].as_i64().unwrap_or(0)),
                None => format!("{}/{proto}", p["port"].as_i64().unwrap_or(0)),
            }
        })
        .collect();
    or_none(ports.join(","))
}

fn external_ip(svc: &Value) -> String {
    let ty = s(svc, "/spec/type");
    let mut ips: Vec<String> = arr(svc, "/spec/externalIPs")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    match ty.as_str() {
        "ExternalName" => s(svc, "/spec/externalName"),
        "LoadBalancer" => {
            for ing in arr(svc, "/status/loadBalancer/ingress") {
                if let Some(ip) = ing["ip"].as_str().or(ing["hostname"].as_str()) {
                    ips.push(ip.to_string());
                }
            }
            if ips.is_empty() {
                "<pending>".into()
            } else {
                ips.join(",")
            }
        }
        _ => or_none(ips.join(",")),
    }
}

fn access_modes(v: &Value, p: &str) -> String {
    let modes: Vec<&str> = arr(v, p)
        .iter()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect();
    modes.join(",")
}

fn event_object(ev: &Value) -> String {
    format!(
        "{}/{}",
        s(ev, "/involvedObject/kind").to_ascii_lowercase(),
        s(ev, "/involvedObject/name")
    )
}

fn event_last_seen(ev: &Value, now: Timestamp) -> String {
    for p in [
        "/lastTimestamp",
        "/eventTime",
        "/firstTimestamp",
        "/metadata/creationTimestamp",
    ] {
        let t = meta::str_at(ev, p);
        if !t.is_empty() {
            return age(t, now);
        }
    }
    "<unknown>".into()
}

fn job_status(job: &Value) -> String {
    for c in arr(job, "/status/conditions") {
        if c["status"] == "True" {
            match c["type"].as_str() {
                Some("Complete") => return "Complete".into(),
                Some("Failed") => return "Failed".into(),
                Some("Suspended") => return "Suspended".into(),
                Some("FailureTarget") => return "FailureTarget".into(),
                _ => {}
            }
        }
    }
    if job.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating".into()
    } else {
        "Running".into()
    }
}

fn job_duration(job: &Value, now: Timestamp) -> String {
    let Some(start) = meta::parse_time(meta::str_at(job, "/status/startTime")) else {
        return String::new();
    };
    let end = meta::parse_time(meta::str_at(job, "/status/completionTime")).unwrap_or(now);
    human_duration(end.duration_since(start))
}

/// One row of cells for an object (strings and integers, as the columns say).
pub fn row(rt: &ResourceType, o: &Value, now: Timestamp) -> Vec<Value> {
    let name = json!(meta::name(o));
    let age = json!(created(o, now));
    match rt.kind {
        "Pod" => {
            let statuses = arr(o, "/status/containerStatuses");
            let total = arr(o, "/spec/containers").len();
            let ready = statuses
                .iter()
                .filter(|c| c["ready"].as_bool() == Some(true))
                .count();
            let gates = arr(o, "/spec/readinessGates");
            let gates = if gates.is_empty() {
                "<none>".to_string()
            } else {
                let conds = arr(o, "/status/conditions");
                let ok = gates
                    .iter()
                    .filter(|g| {
                        conds
                            .iter()
                            .any(|c| c["type"] == g["conditionType"] && c["status"] == "True")
                    })
                    .count();
                format!("{ok}/{}", gates.len())
            };
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(o)),
                json!(pod_restarts(o, now)),
                age,
                json!(or_none(s(o, "/status/podIP"))),
                json!(or_none(s(o, "/spec/nodeName"))),
                json!(or_none(s(o, "/status/nominatedNodeName"))),
                json!(gates),
            ]
        }
        "Deployment" => {
            let (c, im) = containers_images(o, "/spec/template/spec");
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    i(o, "/status/readyReplicas"),
                    i(o, "/spec/replicas")
                )),
                json!(i(o, "/status/updatedReplicas")),
                json!(i(o, "/status/availableReplicas")),
                age,
                json!(c),
                json!(im),
                json!(selector_string(o, "/spec/selector")),
            ]
        }
        "ReplicaSet" => {
            let (c, im) = containers_images(o, "/spec/template/spec");
            vec![
                name,
                json!(i(o, "/spec/replicas")),
                json!(i(o, "/status/replicas")),
                json!(i(o, "/status/readyReplicas")),
                age,
                json!(c),
                json!(im),
                json!(selector_string(o, "/spec/selector")),
            ]
        }
        "StatefulSet" => {
            let (c, im) = containers_images(o, "/spec/template/spec");
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    i(o, "/status/readyReplicas"),
                    i(o, "/spec/replicas")
                )),
                age,
                json!(c),
                json!(im),
            ]
        }
        "Job" => {
            let (c, im) = containers_images(o, "/spec/template/spec");
            let completions = match o.pointer("/spec/completions").and_then(Value::as_i64) {
                Some(n) => format!("{}/{n}", i(o, "/status/succeeded")),
                None => format!(
                    "{}/1 of {}",
                    i(o, "/status/succeeded"),
                    i(o, "/spec/parallelism").max(1)
                ),
            };
            vec![
                name,
                json!(job_status(o)),
                json!(completions),
                json!(job_duration(o, now)),
                age,
                json!(c),
                json!(im),
                json!(selector_string(o, "/spec/selector")),
            ]
        }
        "CronJob" => {
            let (c, im) = containers_images(o, "/spec/jobTemplate/spec/template/spec");
            let last = meta::str_at(o, "/status/lastScheduleTime");
            vec![
                name,
                json!(s(o, "/spec/schedule")),
                json!(or_none(s(o, "/spec/timeZone"))),
                json!(
                    o.pointer("/spec/suspend")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                        .to_string()
                        .replace("false", "False")
                        .replace("true", "True")
                ),
                json!(arr(o, "/status/active").len()),
                json!(if last.is_empty() {
                    "<none>".to_string()
                } else {
                    self::age(last, now)
                }),
                age,
                json!(c),
                json!(im),
                json!(selector_string(o, "/spec/jobTemplate/spec/selector")),
            ]
        }
        "Service" => vec![
            name,
            json!(s(o, "/spec/type")),
            json!(or_none(s(o, "/spec/clusterIP"))),
            json!(external_ip(o)),
            json!(service_ports(o)),
            age,
            json!(selector_string(o, "/spec/selector")),
        ],
        "Namespace" => vec![name, json!(or_none(s(o, "/status/phase"))), age],
        "Node" => {
            let ready = arr(o, "/status/conditions")
                .iter()
                .find(|c| c["type"] == "Ready");
            let mut status = match ready.and_then(|c| c["status"].as_str()) {
                Some("True") => "Ready".to_string(),
                Some(_) => "NotReady".to_string(),
                None => "Unknown".to_string(),
            };
            if o.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
                status.push_str(",SchedulingDisabled");
            }
            let roles: Vec<String> = meta::labels(o)
                .keys()
                .filter_map(|k| {
                    k.strip_prefix("node-role.kubernetes.io/")
                        .map(str::to_string)
                })
                .collect();
            let addr = |t: &str| {
                arr(o, "/status/addresses")
                    .iter()
                    .find(|a| a["type"] == t)
                    .and_then(|a| a["address"].as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| "<none>".into())
            };
            vec![
                name,
                json!(status),
                json!(or_none(roles.join(","))),
                age,
                json!(s(o, "/status/nodeInfo/kubeletVersion")),
                json!(addr("InternalIP")),
                json!(addr("ExternalIP")),
                json!(s(o, "/status/nodeInfo/osImage")),
                json!(s(o, "/status/nodeInfo/kernelVersion")),
                json!(s(o, "/status/nodeInfo/containerRuntimeVersion")),
            ]
        }
        "Endpoints" => {
            let mut eps = Vec::new();
            for subset in arr(o, "/subsets") {
                for a in subset["addresses"].as_array().into_iter().flatten() {
                    for p in subset["ports"].as_array().into_iter().flatten() {
                        eps.push(format!(
                            "{}:{}",
                            a["ip"].as_str().unwrap_or_default(),
                            p["port"].as_i64().unwrap_or(0)
                        ));
                    }
                }
            }
            let shown = if eps.len() > 3 {
                format!("{} + {} more...", eps[..3].join(","), eps.len() - 3)
            } else {
                eps.join(",")
            };
            vec![name, json!(or_none(shown)), age]
        }
        "ConfigMap" => {
            let n = o
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
                + o.get("binaryData")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
            vec![name, json!(n), age]
        }
        "Secret" => {
            let n = o
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len());
            vec![name, json!(s(o, "/type")), json!(n), age]
        }
        "PersistentVolume" => {
            let claim = match (
                s(o, "/spec/claimRef/namespace"),
                s(o, "/spec/claimRef/name"),
            ) {
                (_, n) if n.is_empty() => String::new(),
                (ns, n) => format!("{ns}/{n}"),
            };
            vec![
                name,
                json!(s(o, "/spec/capacity/storage")),
                json!(access_modes(o, "/spec/accessModes")),
                json!(s(o, "/spec/persistentVolumeReclaimPolicy")),
                json!(s(o, "/status/phase")),
                json!(claim),
                json!(s(o, "/spec/storageClassName")),
                json!(or_unset(s(o, "/spec/volumeAttributesClassName"))),
                json!(s(o, "/status/reason")),
                age,
                json!(s(o, "/spec/volumeMode")),
            ]
        }
        "PersistentVolumeClaim" => vec![
            name,
            json!(s(o, "/status/phase")),
            json!(s(o, "/spec/volumeName")),
            json!(s(o, "/status/capacity/storage")),
            json!(access_modes(o, "/status/accessModes")),
            json!(s(o, "/spec/storageClassName")),
            json!(or_unset(s(o, "/spec/volumeAttributesClassName"))),
            age,
            json!(s(o, "/spec/volumeMode")),
        ],
        "StorageClass" => {
            let mut n = meta::name(o).to_string();
            if meta::annotations(o)
                .get("storageclass.kubernetes.io/is-default-class")
                .map(String::as_str)
                == Some("true")
            {
                n.push_str(" (default)");
            }
            vec![
                json!(n),
                json!(s(o, "/provisioner")),
                json!(s(o, "/reclaimPolicy")),
                json!(s(o, "/volumeBindingMode")),
                json!(
                    o.get("allowVolumeExpansion")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                ),
                age,
            ]
        }
        "Ingress" => {
            let hosts: Vec<&str> = arr(o, "/spec/rules")
                .iter()
                .filter_map(|r| r["host"].as_str())
                .collect();
            let hosts = if hosts.is_empty() {
                "*".to_string()
            } else {
                hosts.join(",")
            };
            let addrs: Vec<&str> = arr(o, "/status/loadBalancer/ingress")
                .iter()
                .filter_map(|a| a["ip"].as_str().or(a["hostname"].as_str()))
                .collect();
            let ports = if arr(o, "/spec/tls").is_empty() {
                "80"
            } else {
                "80, 443"
            };
            vec![
                name,
                json!(or_none(s(o, "/spec/ingressClassName"))),
                json!(hosts),
                json!(addrs.join(",")),
                json!(ports),
                age,
            ]
        }
        "IngressClass" => {
            let params = match s(o, "/spec/parameters/name") {
                n if n.is_empty() => "<none>".to_string(),
                n => format!("{}/{n}", s(o, "/spec/parameters/kind")),
            };
            vec![name, json!(s(o, "/spec/controller")), json!(params), age]
        }
        "NetworkPolicy" => {
            let sel = selector_string(o, "/spec/podSelector");
            vec![
                name,
                json!(if sel == "<none>" {
                    "<none>".to_string()
                } else {
                    sel
                }),
                age,
            ]
        }
        "ResourceQuota" => {
            let used = |k: &str| s(o, &format!("/status/used/{}", k.replace('/', "~1")));
            let mut req = Vec::new();
            let mut lim = Vec::new();
            if let Some(hard) = o.pointer("/spec/hard").and_then(Value::as_object) {
                for (k, v) in hard {
                    let entry = format!(
                        "{k}: {}/{}",
                        or_zero(used(k)),
                        v.as_str().unwrap_or_default()
                    );
                    if k.starts_with("limits.") {
                        lim.push(entry)
                    } else {
                        req.push(entry)
                    }
                }
            }
            vec![name, age, json!(req.join(", ")), json!(lim.join(", "))]
        }
        "LimitRange" => vec![name, json!(s(o, "/metadata/creationTimestamp"))],
        "Event" => {
            let sub = s(o, "/involvedObject/fieldPath");
            let source = match (s(o, "/source/component"), s(o, "/source/host")) {
                (c, h) if h.is_empty() => c,
                (c, h) => format!("{c}, {h}"),
            };
            let first = match meta::str_at(o, "/firstTimestamp") {
                "" => "<unknown>".to_string(),
                t => self::age(t, now),
            };
            vec![
                json!(event_last_seen(o, now)),
                json!(s(o, "/type")),
                json!(s(o, "/reason")),
                json!(event_object(o)),
                json!(sub),
                json!(source),
                json!(s(o, "/message").trim().to_string()),
                json!(first),
                json!(i(o, "/count").max(1)),
                name,
            ]
        }
        _ => vec![name, age],
    }
}

fn or_unset(x: String) -> String {
    if x.is_empty() {
        "<unset>".to_string()
    } else {
        x
    }
}
fn or_zero(x: String) -> String {
    if x.is_empty() { "0".to_string() } else { x }
}

/// The Table (`meta.k8s.io/v1`) kubectl asks for with `Accept: …;as=Table`.
pub fn table_object(
    rt: &ResourceType,
    objs: &[Value],
    now: Timestamp,
    include_object: bool,
) -> Value {
    let defs: Vec<Value> = columns(rt)
        .iter()
        .map(|c| json!({"name": c.name, "type": c.kind, "format": c.format, "description": c.description, "priority": c.priority}))
        .collect();
    let rows: Vec<Value> = objs
        .iter()
        .map(|o| {
            let object = if include_object {
                o.clone()
            } else {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o.get("metadata").cloned().unwrap_or(json!({}))})
            };
            json!({"cells": row(rt, o, now), "object": object})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": defs, "rows": rows})
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Plain-text table as kubectl prints it: upper-case headers, columns three spaces apart,
/// wide-only columns with `wide`, a leading NAMESPACE column with `with_namespace`.
pub fn render_text(
    columns: &[Column],
    rows: &[Vec<Value>],
    wide: bool,
    with_namespace: bool,
    namespaces: &[String],
) -> String {
    let shown: Vec<usize> = (0..columns.len())
        .filter(|i| wide || columns[*i].priority == 0)
        .collect();
    let mut table: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
    let mut header: Vec<String> = shown
        .iter()
        .map(|i| columns[*i].name.to_uppercase())
        .collect();
    if with_namespace {
        header.insert(0, "NAMESPACE".into());
    }
    table.push(header);
    for (r, cells) in rows.iter().enumerate() {
        let mut line: Vec<String> = shown
            .iter()
            .map(|i| cells.get(*i).map(cell_text).unwrap_or_default())
            .collect();
        if with_namespace {
            line.insert(0, namespaces.get(r).cloned().unwrap_or_default());
        }
        table.push(line);
    }
    let ncols = table.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..ncols)
        .map(|c| {
            table
                .iter()
                .map(|l| l.get(c).map_or(0, |x| x.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in &table {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            text.push_str(cell);
            if c + 1 < line.len() {
                let pad = widths[c] - cell.chars().count() + 3;
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry::{REGISTRY, by_kind};

    fn now() -> Timestamp {
        "2026-11-23T12:00:00Z".parse().expect("time")
    }

    #[test]
    fn human_durations_match_kubectl() {
        for (secs, want) in [
            (5, "5s"),
            (119, "119s"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (10 * 3600, "10h"),
            (3 * 86400 + 3600, "3d1h"),
            (30 * 86400, "30d"),
            (3 * 365 * 86400 + 86400, "3y1d"),
        ] {
            assert_eq!(
                human_duration(SignedDuration::from_secs(secs)),
                want,
                "{secs}"
            );
        }
    }

    #[test]
    fn every_kind_renders_anything_without_panicking() {
        for rt in REGISTRY.iter() {
            for v in [
                json!({}),
                json!("str"),
                json!(null),
                json!({"metadata": 5, "spec": [], "status": "x"}),
            ] {
                let cells = row(rt, &v, now());
                assert_eq!(cells.len(), columns(rt).len(), "{}", rt.kind);
            }
        }
    }

    fn pod(status: Value) -> Value {
        json!({"metadata": {"name": "p", "creationTimestamp": "2026-11-23T11:55:00Z"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": []},
            "status": status})
    }

    #[test]
    fn pod_status_reasons() {
        let running = pod(json!({"phase": "Running", "containerStatuses": [
            {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
            {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}}]}));
        let rt = by_kind("v1", "Pod").expect("pod");
        let cells = row(rt, &running, now());
        assert_eq!(cells[1], "2/2");
        assert_eq!(cells[2], "Running");
        assert_eq!(cells[4], "5m");
        let crash = pod(json!({"phase": "Running", "containerStatuses": [
            {"name": "a", "ready": false, "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-11-23T11:59:00Z"}}}]}));
        assert_eq!(pod_status(&crash), "CrashLoopBackOff");
        assert_eq!(row(rt, &crash, now())[3], "4 (60s ago)");
        let done = pod(json!({"phase": "Succeeded", "containerStatuses": [
            {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}));
        assert_eq!(pod_status(&done), "Completed");
        let mut init = pod(json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "i", "state": {"waiting": {"reason": "PodInitializing"}}}]}));
        init["spec"]["initContainers"] = json!([{"name": "i"}]);
        assert_eq!(pod_status(&init), "Init:0/1");
        let mut term = running.clone();
        term["metadata"]["deletionTimestamp"] = json!("2026-11-23T11:59:00Z");
        assert_eq!(pod_status(&term), "Terminating");
        assert_eq!(pod_status(&pod(json!({"phase": "Pending"}))), "Pending");
        let oom = pod(json!({"phase": "Running", "containerStatuses": [
            {"name": "a", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}));
        assert_eq!(pod_status(&oom), "OOMKilled");
    }

    #[test]
    fn services_and_deployments() {
        let svc = json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort", "clusterIP": "10.96.0.10",
            "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}],
            "selector": {"app": "web"}}});
        let cells = row(by_kind("v1", "Service").expect("svc"), &svc, now());
        assert_eq!(cells[3], "<none>");
        assert_eq!(cells[4], "80:30080/TCP,443/TCP");
        assert_eq!(cells[6], "app=web");
        let lb = json!({"spec": {"type": "LoadBalancer"}});
        assert_eq!(external_ip(&lb), "<pending>");
        let d = json!({"metadata": {"name": "d"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "d"}},
            "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let cells = row(by_kind("apps/v1", "Deployment").expect("d"), &d, now());
        assert_eq!(cells[1], "2/3");
        assert_eq!(cells[2], 3);
        assert_eq!(cells[7], "app=d");
    }

    #[test]
    fn text_tables_align_like_kubectl() {
        let rt = by_kind("v1", "ConfigMap").expect("cm");
        let cols = columns(rt);
        let rows = vec![
            vec![json!("a"), json!(1), json!("5m")],
            vec![json!("longer-name"), json!(12), json!("3d")],
        ];
        let text = render_text(
            &cols,
            &rows,
            false,
            true,
            &["default".into(), "kube-system".into()],
        );
        assert_eq!(
            text,
            "NAMESPACE     NAME          DATA   AGE\ndefault       a             1      5m\nkube-system   longer-name   12     3d\n"
        );
        let pod_cols = columns(by_kind("v1", "Pod").expect("pod"));
        let header = render_text(&pod_cols, &[], true, false, &[]);
        assert_eq!(
            header,
            "NAME   READY   STATUS   RESTARTS   AGE   IP   NODE   NOMINATED NODE   READINESS GATES\n"
        );
    }

    #[test]
    fn table_objects_carry_partial_metadata() {
        let rt = by_kind("v1", "ConfigMap").expect("cm");
        let t = table_object(
            rt,
            &[json!({"metadata": {"name": "a", "namespace": "x"}, "data": {"k": "v"}})],
            now(),
            false,
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["columnDefinitions"][0]["name"], "Name");
        assert_eq!(t["rows"][0]["cells"][1], 1);
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["metadata"]["namespace"], "x");
    }
}
