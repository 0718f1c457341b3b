//! `describe`: the human-readable report `kubectl describe` prints for an object.
//!
//! Pure text rendering shared by `berth describe` and the TUI: a common header (name,
//! namespace, labels, annotations, creation time), kind-specific sections for Pods,
//! Deployments, Services, ConfigMaps, Secrets, Namespaces and Nodes, a generic rendering of
//! every other kind's fields, and the object's events last.
//!
//! Invariants: never panics, whatever the input; never prints a Secret's values (only their
//! sizes) nor the `kubectl.kubernetes.io/last-applied-configuration` annotation, which may
//! hold them. Layout follows kubectl: `Key:` / value columns aligned over runs of
//! consecutive lines, as Go's tabwriter aligns them (see [`tabwrite`]).

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use k8s_openapi::jiff::tz::TimeZone;
use serde_json::Value;

use super::meta;
use super::registry::ResourceType;
use super::table::{
    bool_at, format_endpoints_for, format_labels, human_duration, int, label_selector_string, list,
    node_roles, object_at, opt_int, or, present, quantity_text, since, str_at, tabwrite, time,
    translate_since,
};

/// Objects that `describe` shows beside the described one, when the caller fetched them.
#[derive(Debug, Default, Clone, Copy)]
pub struct Related<'a> {
    /// ReplicaSets in the Deployment's namespace: those it controls (by owner UID) give the
    /// `OldReplicaSets` / `NewReplicaSet` lines. `None` leaves those lines out.
    pub replica_sets: Option<&'a [Value]>,
    /// The Endpoints of a Service, for its `Endpoints:` lines.
    pub endpoints: Option<&'a Value>,
}

/// Annotation kubectl keeps out of `describe`: it repeats the whole manifest, Secret data
/// included.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// Longer annotation values are cut, as kubectl cuts them.
const MAX_ANNOTATION_LEN: usize = 140;
/// Nesting deeper than this is not expanded by the generic rendering.
const MAX_DEPTH: usize = 24;

/// A `kubectl describe`-style report of `obj`, ending with `events` (Event objects about
/// it, in any order).
pub fn describe(rt: &ResourceType, obj: &Value, events: &[Value], now: Timestamp) -> String {
    describe_with(rt, obj, &Related::default(), events, now)
}

/// [`describe`] with related objects the caller fetched (see [`Related`]).
pub fn describe_with(
    rt: &ResourceType,
    obj: &Value,
    related: &Related<'_>,
    events: &[Value],
    now: Timestamp,
) -> String {
    let mut out = Out::default();
    out.kv(0, "Name", meta::name(obj));
    if rt.namespaced {
        out.kv(0, "Namespace", meta::namespace(obj));
    }
    out.list(0, "Labels", labels(obj.pointer("/metadata/labels")));
    out.list(0, "Annotations", annotations(obj));
    out.kv(
        0,
        "CreationTimestamp",
        date(time(obj, "/metadata/creationTimestamp")),
    );
    match (rt.group, rt.kind) {
        ("", "Pod") => pod(&mut out, obj, now),
        ("apps", "Deployment") => deployment(&mut out, obj, related),
        ("apps", "StatefulSet") => statefulset(&mut out, obj),
        ("", "Service") => service(&mut out, obj, related),
        ("", "ConfigMap") => config_map(&mut out, obj),
        ("", "Secret") => secret(&mut out, obj),
        ("", "Namespace") => out.kv(0, "Status", str_at(obj, "/status/phase")),
        ("", "Node") => node(&mut out, obj),
        _ => generic(&mut out, obj),
    }
    events_section(&mut out, events, now);
    out.finish()
}

/// Lines of cells, laid out at the end by [`tabwrite`]. Keeping cells apart (instead of
/// joining them with tabs) means text from the object can never shift the columns.
#[derive(Default)]
struct Out {
    lines: Vec<Vec<String>>,
}

impl Out {
    /// `Key:<tab>value`; further lines of a multi-line value continue in the value column.
    fn kv(&mut self, level: usize, key: &str, value: impl AsRef<str>) {
        let mut lines = value.as_ref().lines();
        let first = lines.next().unwrap_or_default();
        self.lines
            .push(vec![format!("{}{key}:", indent(level)), clean(first)]);
        for l in lines {
            self.lines.push(vec![indent(level), clean(l)]);
        }
    }

    /// `Key:<tab>first`, the other items below it in the value column; `<none>` when empty.
    fn list(&mut self, level: usize, key: &str, items: Vec<String>) {
        let mut items = items.into_iter();
        match items.next() {
            None => self.kv(level, key, "<none>"),
            Some(first) => {
                self.kv(level, key, first);
                for item in items {
                    self.lines.push(vec![indent(level), clean(&item)]);
                }
            }
        }
    }

    /// A line of its own (a section title, raw text): it ends the run of aligned lines.
    fn text(&mut self, level: usize, text: impl AsRef<str>) {
        self.lines
            .push(vec![format!("{}{}", indent(level), text.as_ref())]);
    }

    /// Table-like cells, aligned with the lines around them.
    fn row<S: AsRef<str>>(&mut self, level: usize, cells: &[S]) {
        let mut line: Vec<String> = cells.iter().map(|c| clean(c.as_ref())).collect();
        if let Some(first) = line.first_mut() {
            first.insert_str(0, &indent(level));
        }
        self.lines.push(line);
    }

    fn blank(&mut self) {
        self.lines.push(vec![String::new()]);
    }

    fn finish(self) -> String {
        tabwrite(&self.lines, 0, 2)
    }
}

fn indent(level: usize) -> String {
    "  ".repeat(level)
}

/// A cell on one line: line breaks and tabs become spaces.
fn clean(s: &str) -> String {
    if s.contains(['\n', '\r', '\t']) {
        s.replace(['\n', '\r', '\t'], " ")
    } else {
        s.to_string()
    }
}

/// A time as kubectl's describe prints it: `Mon, 23 Nov 2026 10:00:00 +0000` (UTC).
pub fn date(t: Option<Timestamp>) -> String {
    match t {
        Some(t) => t
            .to_zoned(TimeZone::UTC)
            .strftime("%a, %d %b %Y %H:%M:%S %z")
            .to_string(),
        None => "<unknown>".to_string(),
    }
}

fn labels(map: Option<&Value>) -> Vec<String> {
    string_map(map)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

fn annotations(obj: &Value) -> Vec<String> {
    string_map(obj.pointer("/metadata/annotations"))
        .into_iter()
        .filter(|(k, _)| k != LAST_APPLIED)
        .map(|(k, v)| {
            let first = v.lines().next().unwrap_or_default();
            if first.len() < v.len() || first.chars().count() > MAX_ANNOTATION_LEN {
                let cut: String = first.chars().take(MAX_ANNOTATION_LEN).collect();
                format!("{k}: {cut}...")
            } else {
                format!("{k}: {v}")
            }
        })
        .collect()
}

/// Any JSON object as sorted `key -> text` (values of any type shown as text).
fn string_map(map: Option<&Value>) -> BTreeMap<String, String> {
    map.and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), scalar(v))).collect())
        .unwrap_or_default()
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".to_string(),
        other => other.to_string(),
    }
}

fn true_false(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

// ---------------------------------------------------------------------------------------
// Pods

fn pod(out: &mut Out, pod: &Value, now: Timestamp) {
    if let Some(p) = opt_int(pod, "/spec/priority") {
        out.kv(0, "Priority", p.to_string());
    }
    for (key, ptr) in [
        ("Priority Class Name", "/spec/priorityClassName"),
        ("Runtime Class Name", "/spec/runtimeClassName"),
        ("Service Account", "/spec/serviceAccountName"),
    ] {
        let v = str_at(pod, ptr);
        if !v.is_empty() {
            out.kv(0, key, v);
        }
    }
    let node = str_at(pod, "/spec/nodeName");
    if node.is_empty() {
        out.kv(0, "Node", "<none>");
    } else {
        out.kv(
            0,
            "Node",
            format!("{node}/{}", str_at(pod, "/status/hostIP")),
        );
    }
    if let Some(t) = time(pod, "/status/startTime") {
        out.kv(0, "Start Time", date(Some(t)));
    }
    if present(pod, "/metadata/deletionTimestamp") {
        let lasts = match time(pod, "/metadata/deletionTimestamp") {
            Some(t) => human_duration(t.duration_since(now)),
            None => "<unknown>".to_string(),
        };
        out.kv(0, "Status", format!("Terminating (lasts {lasts})"));
        out.kv(
            0,
            "Termination Grace Period",
            format!("{}s", int(pod, "/metadata/deletionGracePeriodSeconds")),
        );
    } else {
        out.kv(0, "Status", str_at(pod, "/status/phase"));
    }
    for (key, ptr) in [("Reason", "/status/reason"), ("Message", "/status/message")] {
        let v = str_at(pod, ptr);
        if !v.is_empty() {
            out.kv(0, key, v);
        }
    }
    out.kv(0, "IP", str_at(pod, "/status/podIP"));
    let ips = list(pod, "/status/podIPs");
    if ips.is_empty() {
        out.kv(0, "IPs", "<none>");
    } else {
        out.text(0, "IPs:");
        for ip in ips {
            out.kv(1, "IP", str_at(ip, "/ip"));
        }
    }
    if let Some(owner) = controller_of(pod) {
        out.kv(0, "Controlled By", owner);
    }
    let nominated = str_at(pod, "/status/nominatedNodeName");
    if !nominated.is_empty() {
        out.kv(0, "NominatedNodeName", nominated);
    }
    let spec = pod.get("spec").unwrap_or(&Value::Null);
    containers(
        out,
        0,
        "Init Containers",
        list(spec, "/initContainers"),
        Some(list(pod, "/status/initContainerStatuses")),
        Some(pod),
    );
    containers(
        out,
        0,
        "Containers",
        list(spec, "/containers"),
        Some(list(pod, "/status/containerStatuses")),
        Some(pod),
    );
    let conditions = list(pod, "/status/conditions");
    let gates = list(spec, "/readinessGates");
    if !gates.is_empty() {
        out.text(0, "Readiness Gates:");
        out.row(1, &["Type", "Status"]);
        for g in gates {
            let t = str_at(g, "/conditionType");
            let status = conditions
                .iter()
                .find(|c| str_at(c, "/type") == t)
                .map(|c| str_at(c, "/status"))
                .unwrap_or("<none>");
            out.row(1, &[t, status]);
        }
    }
    if !conditions.is_empty() {
        out.text(0, "Conditions:");
        out.row(1, &["Type", "Status"]);
        for c in conditions {
            out.row(1, &[str_at(c, "/type"), str_at(c, "/status")]);
        }
    }
    volumes(out, 0, list(spec, "/volumes"));
    out.kv(
        0,
        "QoS Class",
        or(str_at(pod, "/status/qosClass"), qos_class(spec)),
    );
    out.list(0, "Node-Selectors", labels(spec.get("nodeSelector")));
    out.list(0, "Tolerations", tolerations(list(spec, "/tolerations")));
}

/// `Kind/name` of the controlling owner.
fn controller_of(obj: &Value) -> Option<String> {
    list(obj, "/metadata/ownerReferences")
        .iter()
        .find(|o| bool_at(o, "/controller"))
        .map(|o| format!("{}/{}", str_at(o, "/kind"), str_at(o, "/name")))
}

/// The pod's QoS class from its containers' requests and limits, as Kubernetes computes
/// it (used when the status does not carry one yet).
fn qos_class(spec: &Value) -> &'static str {
    let all: Vec<&Value> = list(spec, "/containers")
        .iter()
        .chain(list(spec, "/initContainers"))
        .collect();
    let res = |c: &Value, kind: &str, r: &str| {
        c.pointer(&format!("/resources/{kind}/{r}"))
            .map(quantity_text)
            .filter(|q| !q.is_empty())
    };
    let any = all.iter().any(|c| {
        ["requests", "limits"]
            .iter()
            .any(|k| object_at(c, &format!("/resources/{k}")).is_some_and(|m| !m.is_empty()))
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = all.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = res(c, "limits", r);
            // A request defaults to the limit.
            let request = res(c, "requests", r).or_else(|| limit.clone());
            limit.is_some() && request == limit
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The `Containers:` section; `statuses` is `None` for a pod template.
fn containers(
    out: &mut Out,
    level: usize,
    title: &str,
    specs: &[Value],
    statuses: Option<&[Value]>,
    pod: Option<&Value>,
) {
    if specs.is_empty() {
        if title == "Containers" {
            out.kv(level, title, "<none>");
        }
        return;
    }
    out.text(level, format!("{title}:"));
    // kubectl indents a template's containers by one space less than a pod's.
    let (l, name_indent) = match statuses {
        Some(_) => (level + 2, indent(level + 1)),
        None => (level + 1, format!("{} ", indent(level))),
    };
    for c in specs {
        let name = str_at(c, "/name");
        out.text(0, format!("{name_indent}{name}:"));
        let status = statuses.and_then(|s| s.iter().find(|s| str_at(s, "/name") == name));
        if let Some(s) = status {
            let id = str_at(s, "/containerID");
            if !id.is_empty() {
                out.kv(l, "Container ID", id);
            }
        }
        out.kv(l, "Image", str_at(c, "/image"));
        if let Some(s) = status {
            out.kv(l, "Image ID", str_at(s, "/imageID"));
        }
        let ports = list(c, "/ports");
        let port_text = |number: &str| -> String {
            if ports.is_empty() {
                return "<none>".to_string();
            }
            ports
                .iter()
                .map(|p| {
                    let proto = or(str_at(p, "/protocol"), "TCP");
                    let n = int(p, number);
                    match str_at(p, "/name") {
                        "" => format!("{n}/{proto}"),
                        name if number == "/containerPort" => format!("{n}/{proto} ({name})"),
                        _ => format!("{n}/{proto}"),
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let plural = if ports.len() > 1 { "s" } else { "" };
        out.kv(l, &format!("Port{plural}"), port_text("/containerPort"));
        out.kv(l, &format!("Host Port{plural}"), port_text("/hostPort"));
        for (key, ptr) in [("Command", "/command"), ("Args", "/args")] {
            let items = list(c, ptr);
            if !items.is_empty() {
                out.text(l, format!("{key}:"));
                for item in items {
                    for line in scalar(item).lines() {
                        out.text(l + 1, line);
                    }
                }
            }
        }
        if let Some(s) = status {
            container_state(out, l, "State", s.get("state").unwrap_or(&Value::Null));
            if object_at(s, "/lastState/terminated").is_some() {
                container_state(
                    out,
                    l,
                    "Last State",
                    s.pointer("/lastState").unwrap_or(&Value::Null),
                );
            }
            out.kv(l, "Ready", true_false(bool_at(s, "/ready")));
            out.kv(l, "Restart Count", int(s, "/restartCount").to_string());
        }
        for (key, kind) in [("Limits", "limits"), ("Requests", "requests")] {
            let res = string_map(c.pointer(&format!("/resources/{kind}")));
            if !res.is_empty() {
                out.text(l, format!("{key}:"));
                for (name, q) in res {
                    out.kv(l + 1, &name, q);
                }
            }
        }
        for (key, ptr) in [
            ("Liveness", "/livenessProbe"),
            ("Readiness", "/readinessProbe"),
            ("Startup", "/startupProbe"),
        ] {
            if let Some(p) = c.pointer(ptr).filter(|p| p.is_object()) {
                out.kv(l, key, probe(p));
            }
        }
        env_from(out, l, list(c, "/envFrom"));
        env(out, l, c, pod);
        mounts(out, l, list(c, "/volumeMounts"));
    }
}

fn container_state(out: &mut Out, level: usize, label: &str, state: &Value) {
    if let Some(r) = state.get("running").filter(|v| v.is_object()) {
        out.kv(level, label, "Running");
        out.kv(level + 1, "Started", date(time(r, "/startedAt")));
    } else if let Some(w) = state.get("waiting").filter(|v| v.is_object()) {
        out.kv(level, label, "Waiting");
        let reason = str_at(w, "/reason");
        if !reason.is_empty() {
            out.kv(level + 1, "Reason", reason);
        }
    } else if let Some(t) = state.get("terminated").filter(|v| v.is_object()) {
        out.kv(level, label, "Terminated");
        for (key, ptr) in [("Reason", "/reason"), ("Message", "/message")] {
            let v = str_at(t, ptr);
            if !v.is_empty() {
                out.kv(level + 1, key, v);
            }
        }
        out.kv(level + 1, "Exit Code", int(t, "/exitCode").to_string());
        let signal = int(t, "/signal");
        if signal > 0 {
            out.kv(level + 1, "Signal", signal.to_string());
        }
        out.kv(level + 1, "Started", date(time(t, "/startedAt")));
        out.kv(level + 1, "Finished", date(time(t, "/finishedAt")));
    } else {
        out.kv(level, label, "Waiting");
    }
}

/// `http-get http://:8080/healthz delay=3s timeout=1s period=10s #success=1 #failure=3`.
fn probe(p: &Value) -> String {
    let num = |ptr: &str, default: i64| opt_int(p, ptr).unwrap_or(default);
    let attrs = format!(
        "delay={}s timeout={}s period={}s #success={} #failure={}",
        num("/initialDelaySeconds", 0),
        num("/timeoutSeconds", 1),
        num("/periodSeconds", 10),
        num("/successThreshold", 1),
        num("/failureThreshold", 3),
    );
    let port = |v: &Value| v.get("port").map(quantity_text).unwrap_or_default();
    let action = if let Some(e) = p.get("exec").filter(|v| v.is_object()) {
        let cmd: Vec<String> = list(e, "/command").iter().map(scalar).collect();
        format!("exec [{}]", cmd.join(" "))
    } else if let Some(h) = p.get("httpGet").filter(|v| v.is_object()) {
        let scheme = or(str_at(h, "/scheme"), "HTTP").to_lowercase();
        let host = str_at(h, "/host");
        let port = port(h);
        let host_port = match (host.contains(':'), port.is_empty()) {
            (_, true) => host.to_string(),
            (true, false) => format!("[{host}]:{port}"),
            (false, false) => format!("{host}:{port}"),
        };
        format!("http-get {scheme}://{host_port}{}", str_at(h, "/path"))
    } else if let Some(t) = p.get("tcpSocket").filter(|v| v.is_object()) {
        format!("tcp-socket {}:{}", str_at(t, "/host"), port(t))
    } else if let Some(g) = p.get("grpc").filter(|v| v.is_object()) {
        format!("grpc <pod>:{} {}", port(g), str_at(g, "/service"))
    } else {
        "unknown".to_string()
    };
    format!("{action} {attrs}")
}

fn env_from(out: &mut Out, level: usize, sources: &[Value]) {
    if sources.is_empty() {
        return;
    }
    out.text(level, "Environment Variables from:");
    for s in sources {
        let (kind, reference) = if let Some(r) = s.get("configMapRef").filter(|v| v.is_object()) {
            ("ConfigMap", r)
        } else if let Some(r) = s.get("secretRef").filter(|v| v.is_object()) {
            ("Secret", r)
        } else {
            continue;
        };
        let prefix = str_at(s, "/prefix");
        let from = if prefix.is_empty() {
            kind.to_string()
        } else {
            format!("{kind} with prefix '{prefix}'")
        };
        let optional = format!("Optional: {}", bool_at(reference, "/optional"));
        out.row(level + 1, &[str_at(reference, "/name"), &from, &optional]);
    }
}

fn env(out: &mut Out, level: usize, container: &Value, pod: Option<&Value>) {
    let vars = list(container, "/env");
    if vars.is_empty() {
        out.kv(level, "Environment", "<none>");
        return;
    }
    out.text(level, "Environment:");
    let l = level + 1;
    for e in vars {
        let name = str_at(e, "/name");
        let Some(from) = e.get("valueFrom").filter(|v| v.is_object()) else {
            out.kv(l, name, str_at(e, "/value"));
            continue;
        };
        let key_ref = |kind: &str, r: &Value| {
            let optional = format!("Optional: {}", bool_at(r, "/optional"));
            let what = format!(
                "<set to the key '{}' {kind} '{}'>",
                str_at(r, "/key"),
                str_at(r, "/name")
            );
            (what, optional)
        };
        if let Some(f) = from.get("fieldRef").filter(|v| v.is_object()) {
            let path = str_at(f, "/fieldPath");
            let value = pod.map(|p| field_value(p, path)).unwrap_or_default();
            let api = or(str_at(f, "/apiVersion"), "v1");
            out.kv(l, name, format!("{value} ({api}:{path})"));
        } else if let Some(r) = from.get("resourceFieldRef").filter(|v| v.is_object()) {
            let resource = str_at(r, "/resource");
            let value = container
                .pointer(&format!("/resources/{}", resource.replacen('.', "/", 1)))
                .map(quantity_text)
                .unwrap_or_default();
            out.kv(l, name, format!("{value} ({resource})"));
        } else if let Some(r) = from.get("secretKeyRef").filter(|v| v.is_object()) {
            let (what, optional) = key_ref("in secret", r);
            out.row(l, &[format!("{name}:"), what, optional]);
        } else if let Some(r) = from.get("configMapKeyRef").filter(|v| v.is_object()) {
            let (what, optional) = key_ref("of config map", r);
            out.row(l, &[format!("{name}:"), what, optional]);
        } else {
            out.kv(l, name, "");
        }
    }
}

/// The value of a downward-API field of a pod, when it is known without the kubelet.
fn field_value(pod: &Value, path: &str) -> String {
    let ptr = match path {
        "metadata.name" => "/metadata/name",
        "metadata.namespace" => "/metadata/namespace",
        "metadata.uid" => "/metadata/uid",
        "spec.nodeName" => "/spec/nodeName",
        "spec.serviceAccountName" => "/spec/serviceAccountName",
        "status.hostIP" => "/status/hostIP",
        "status.podIP" => "/status/podIP",
        _ => return String::new(),
    };
    str_at(pod, ptr).to_string()
}

fn mounts(out: &mut Out, level: usize, mounts: &[Value]) {
    if mounts.is_empty() {
        out.kv(level, "Mounts", "<none>");
        return;
    }
    out.text(level, "Mounts:");
    let mut sorted: Vec<&Value> = mounts.iter().collect();
    sorted.sort_by_key(|m| str_at(m, "/mountPath"));
    for m in sorted {
        let mut flags = vec![if bool_at(m, "/readOnly") { "ro" } else { "rw" }.to_string()];
        for (key, ptr) in [("path", "/subPath"), ("path expr", "/subPathExpr")] {
            let v = str_at(m, ptr);
            if !v.is_empty() {
                flags.push(format!("{key}=\"{v}\""));
            }
        }
        out.text(
            level + 1,
            format!(
                "{} from {} ({})",
                str_at(m, "/mountPath"),
                str_at(m, "/name"),
                flags.join(",")
            ),
        );
    }
}

fn volumes(out: &mut Out, level: usize, vols: &[Value]) {
    if vols.is_empty() {
        out.kv(level, "Volumes", "<none>");
        return;
    }
    out.text(level, "Volumes:");
    let l = level + 2;
    for v in vols {
        out.text(level + 1, format!("{}:", str_at(v, "/name")));
        let source = |key: &str| v.get(key).filter(|s| s.is_object());
        if let Some(s) = source("emptyDir") {
            out.kv(
                l,
                "Type",
                "EmptyDir (a temporary directory that shares a pod's lifetime)",
            );
            out.kv(l, "Medium", str_at(s, "/medium"));
            let limit = s.get("sizeLimit").map(quantity_text).unwrap_or_default();
            out.kv(l, "SizeLimit", or(&limit, "<unset>"));
        } else if let Some(s) = source("hostPath") {
            out.kv(l, "Type", "HostPath (bare host directory volume)");
            out.kv(l, "Path", str_at(s, "/path"));
            out.kv(l, "HostPathType", str_at(s, "/type"));
        } else if let Some(s) = source("configMap") {
            out.kv(l, "Type", "ConfigMap (a volume populated by a ConfigMap)");
            out.kv(l, "Name", str_at(s, "/name"));
            out.kv(l, "Optional", bool_at(s, "/optional").to_string());
        } else if let Some(s) = source("secret") {
            out.kv(l, "Type", "Secret (a volume populated by a Secret)");
            out.kv(l, "SecretName", str_at(s, "/secretName"));
            out.kv(l, "Optional", bool_at(s, "/optional").to_string());
        } else if let Some(s) = source("persistentVolumeClaim") {
            out.kv(
                l,
                "Type",
                "PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)",
            );
            out.kv(l, "ClaimName", str_at(s, "/claimName"));
            out.kv(l, "ReadOnly", bool_at(s, "/readOnly").to_string());
        } else if let Some(s) = source("downwardAPI") {
            out.kv(
                l,
                "Type",
                "DownwardAPI (a volume populated by information about the pod)",
            );
            out.text(l, "Items:");
            for item in list(s, "/items") {
                let from = or(
                    str_at(item, "/fieldRef/fieldPath"),
                    str_at(item, "/resourceFieldRef/resource"),
                );
                out.text(l + 1, format!("{from} -> {}", str_at(item, "/path")));
            }
        } else if let Some(s) = source("projected") {
            out.kv(
                l,
                "Type",
                "Projected (a volume that contains injected data from multiple sources)",
            );
            for src in list(s, "/sources") {
                let Some((kind, body)) = src.as_object().and_then(|m| m.iter().next()) else {
                    continue;
                };
                let name = or(str_at(body, "/name"), str_at(body, "/audience"));
                out.kv(l, &smart_label(kind), name);
            }
        } else {
            let kind = v
                .as_object()
                .and_then(|m| m.keys().find(|k| k.as_str() != "name"))
                .map(|k| smart_label(k))
                .unwrap_or_else(|| "<unknown>".to_string());
            out.kv(l, "Type", kind);
        }
    }
}

/// `key=value:Effect op=Exists for 300s`, one per toleration.
fn tolerations(tols: &[Value]) -> Vec<String> {
    tols.iter()
        .map(|t| {
            let key = str_at(t, "/key");
            let value = str_at(t, "/value");
            let effect = str_at(t, "/effect");
            let mut s = key.to_string();
            if !value.is_empty() {
                s.push('=');
                s.push_str(value);
            }
            if !effect.is_empty() {
                s.push(':');
                s.push_str(effect);
            }
            if str_at(t, "/operator") == "Exists" && value.is_empty() {
                if !s.is_empty() {
                    s.push(' ');
                }
                s.push_str("op=Exists");
            }
            if let Some(secs) = opt_int(t, "/tolerationSeconds") {
                s.push_str(&format!(" for {secs}s"));
            }
            s
        })
        .collect()
}

/// The `Pod Template:` section of a pod template alone, as `kubectl rollout history
/// --revision` prints a revision.
pub fn pod_template_text(template: &Value) -> String {
    let mut out = Out::default();
    pod_template(&mut out, 0, template);
    out.finish()
}

fn pod_template(out: &mut Out, level: usize, template: &Value) {
    out.text(level, "Pod Template:");
    let l = level + 1;
    out.list(l, "Labels", labels(template.pointer("/metadata/labels")));
    // `key: value`, as kubectl prints a template's annotations (labels are `key=value`).
    let annotations = annotations(template);
    if !annotations.is_empty() {
        out.list(l, "Annotations", annotations);
    }
    let spec = template.get("spec").unwrap_or(&Value::Null);
    let account = str_at(spec, "/serviceAccountName");
    if !account.is_empty() {
        out.kv(l, "Service Account", account);
    }
    containers(
        out,
        l,
        "Init Containers",
        list(spec, "/initContainers"),
        None,
        None,
    );
    containers(out, l, "Containers", list(spec, "/containers"), None, None);
    volumes(out, l, list(spec, "/volumes"));
    out.list(l, "Node-Selectors", labels(spec.get("nodeSelector")));
    out.list(l, "Tolerations", tolerations(list(spec, "/tolerations")));
}

// ---------------------------------------------------------------------------------------
// Deployments, Services, ConfigMaps, Secrets, Nodes

/// A StatefulSet as `kubectl describe` shows it (the pod counts from its status).
fn statefulset(out: &mut Out, s: &Value) {
    out.kv(
        0,
        "Selector",
        label_selector_string(s.pointer("/spec/selector")),
    );
    out.kv(
        0,
        "Replicas",
        format!(
            "{} desired | {} total",
            opt_int(s, "/spec/replicas").unwrap_or(1),
            int(s, "/status/replicas"),
        ),
    );
    out.kv(0, "Update Strategy", str_at(s, "/spec/updateStrategy/type"));
    if let Some(p) = opt_int(s, "/spec/updateStrategy/rollingUpdate/partition") {
        out.kv(1, "Partition", p.to_string());
    }
    out.kv(
        0,
        "Pod Management Policy",
        str_at(s, "/spec/podManagementPolicy"),
    );
    let service = str_at(s, "/spec/serviceName");
    out.kv(
        0,
        "Service Name",
        if service.is_empty() {
            "<none>"
        } else {
            service
        },
    );
    out.kv(
        0,
        "Pods Status",
        format!(
            "{} Ready / {} Current / {} Updated",
            int(s, "/status/readyReplicas"),
            int(s, "/status/currentReplicas"),
            int(s, "/status/updatedReplicas"),
        ),
    );
    pod_template(out, 0, s.pointer("/spec/template").unwrap_or(&Value::Null));
    let claims = list(s, "/spec/volumeClaimTemplates");
    if claims.is_empty() {
        out.kv(0, "Volume Claims", "<none>");
    } else {
        out.text(0, "Volume Claims:");
        for c in claims {
            out.kv(1, "Name", str_at(c, "/metadata/name"));
            out.kv(1, "StorageClass", str_at(c, "/spec/storageClassName"));
            out.list(1, "Labels", labels(c.pointer("/metadata/labels")));
            out.kv(
                1,
                "Capacity",
                quantity_text(
                    c.pointer("/spec/resources/requests/storage")
                        .unwrap_or(&Value::Null),
                ),
            );
            let modes: Vec<&str> = list(c, "/spec/accessModes")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            out.kv(1, "Access Modes", format!("[{}]", modes.join(" ")));
        }
    }
}

fn deployment(out: &mut Out, d: &Value, related: &Related<'_>) {
    out.kv(
        0,
        "Selector",
        label_selector_string(d.pointer("/spec/selector")),
    );
    out.kv(
        0,
        "Replicas",
        format!(
            "{} desired | {} updated | {} total | {} available | {} unavailable",
            opt_int(d, "/spec/replicas").unwrap_or(1),
            int(d, "/status/updatedReplicas"),
            int(d, "/status/replicas"),
            int(d, "/status/availableReplicas"),
            int(d, "/status/unavailableReplicas"),
        ),
    );
    let strategy = str_at(d, "/spec/strategy/type");
    out.kv(0, "StrategyType", strategy);
    out.kv(
        0,
        "MinReadySeconds",
        int(d, "/spec/minReadySeconds").to_string(),
    );
    if let Some(ru) = object_at(d, "/spec/strategy/rollingUpdate") {
        let text = |k: &str| {
            ru.get(k)
                .map(quantity_text)
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "<unset>".to_string())
        };
        out.kv(
            0,
            "RollingUpdateStrategy",
            format!(
                "{} max unavailable, {} max surge",
                text("maxUnavailable"),
                text("maxSurge")
            ),
        );
    }
    pod_template(out, 0, d.pointer("/spec/template").unwrap_or(&Value::Null));
    let conditions = list(d, "/status/conditions");
    if !conditions.is_empty() {
        out.text(0, "Conditions:");
        out.row(1, &["Type", "Status", "Reason"]);
        out.row(1, &["----", "------", "------"]);
        for c in conditions {
            out.row(
                1,
                &[
                    str_at(c, "/type"),
                    str_at(c, "/status"),
                    str_at(c, "/reason"),
                ],
            );
        }
    }
    if let Some(all) = related.replica_sets {
        let uid = meta::uid(d);
        let owned: Vec<&Value> = all
            .iter()
            .filter(|rs| {
                !uid.is_empty()
                    && list(rs, "/metadata/ownerReferences")
                        .iter()
                        .any(|o| bool_at(o, "/controller") && str_at(o, "/uid") == uid)
            })
            .collect();
        let revision = |o: &Value| meta::annotations(o).get(REVISION).cloned();
        let current = revision(d);
        let is_new = |rs: &Value| current.is_some() && revision(rs) == current;
        let describe_rs = |rs: &Value| {
            format!(
                "{} ({}/{} replicas created)",
                meta::name(rs),
                int(rs, "/status/replicas"),
                opt_int(rs, "/spec/replicas").unwrap_or(1)
            )
        };
        let old: Vec<String> = owned
            .iter()
            .filter(|rs| !is_new(rs) && opt_int(rs, "/spec/replicas").unwrap_or(1) > 0)
            .map(|rs| describe_rs(rs))
            .collect();
        let new = owned.iter().find(|rs| is_new(rs)).map(|rs| describe_rs(rs));
        out.kv(0, "OldReplicaSets", or(&old.join(", "), "<none>"));
        out.kv(0, "NewReplicaSet", new.as_deref().unwrap_or("<none>"));
    }
}

/// The revision annotation the deployment controller keeps on a Deployment and its
/// ReplicaSets; equal values mark the current ReplicaSet.
const REVISION: &str = "deployment.kubernetes.io/revision";

fn service(out: &mut Out, svc: &Value, related: &Related<'_>) {
    out.kv(0, "Selector", format_labels(svc.pointer("/spec/selector")));
    let kind = str_at(svc, "/spec/type");
    out.kv(0, "Type", kind);
    let policy = str_at(svc, "/spec/ipFamilyPolicy");
    if !policy.is_empty() {
        out.kv(0, "IP Family Policy", policy);
    }
    let families = strings(svc, "/spec/ipFamilies");
    out.kv(0, "IP Families", or(&families.join(","), "<none>"));
    let ips = strings(svc, "/spec/clusterIPs");
    let ip = ips
        .first()
        .cloned()
        .unwrap_or_else(|| str_at(svc, "/spec/clusterIP").to_string());
    out.kv(0, "IP", or(&ip, "<none>"));
    out.kv(0, "IPs", or(&ips.join(","), "<none>"));
    let external = strings(svc, "/spec/externalIPs");
    if !external.is_empty() {
        out.kv(0, "External IPs", external.join(","));
    }
    let ingress: Vec<&str> = list(svc, "/status/loadBalancer/ingress")
        .iter()
        .map(|i| or(str_at(i, "/ip"), str_at(i, "/hostname")))
        .collect();
    if !ingress.is_empty() {
        out.kv(0, "LoadBalancer Ingress", ingress.join(", "));
    }
    if kind == "ExternalName" {
        out.kv(0, "External Name", str_at(svc, "/spec/externalName"));
    }
    let ports = list(svc, "/spec/ports");
    if ports.is_empty() {
        out.kv(0, "Port", "<none>");
    }
    for p in ports {
        let name = or(str_at(p, "/name"), "<unset>");
        let proto = or(str_at(p, "/protocol"), "TCP");
        out.row(
            0,
            &[
                "Port:".to_string(),
                name.to_string(),
                format!("{}/{proto}", int(p, "/port")),
            ],
        );
        let target = p
            .get("targetPort")
            .map(quantity_text)
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| int(p, "/port").to_string());
        out.kv(0, "TargetPort", format!("{target}/{proto}"));
        let node_port = int(p, "/nodePort");
        if node_port != 0 {
            out.row(
                0,
                &[
                    "NodePort:".to_string(),
                    name.to_string(),
                    format!("{node_port}/{proto}"),
                ],
            );
        }
        if let Some(ep) = related.endpoints {
            let text = format_endpoints_for(ep, Some(str_at(p, "/name")));
            out.kv(0, "Endpoints", text);
        }
    }
    out.kv(
        0,
        "Session Affinity",
        or(str_at(svc, "/spec/sessionAffinity"), "None"),
    );
    let external_policy = str_at(svc, "/spec/externalTrafficPolicy");
    if !external_policy.is_empty() {
        out.kv(0, "External Traffic Policy", external_policy);
    }
    let internal_policy = str_at(svc, "/spec/internalTrafficPolicy");
    if !internal_policy.is_empty() {
        out.kv(0, "Internal Traffic Policy", internal_policy);
    }
}

fn strings(obj: &Value, ptr: &str) -> Vec<String> {
    list(obj, ptr).iter().map(scalar).collect()
}

fn config_map(out: &mut Out, cm: &Value) {
    out.blank();
    out.text(0, "Data");
    out.text(0, "====");
    for (key, value) in string_map(cm.get("data")) {
        out.text(0, format!("{key}:"));
        out.text(0, "----");
        for line in value.lines() {
            out.text(0, line);
        }
        out.blank();
    }
    out.blank();
    out.text(0, "BinaryData");
    out.text(0, "====");
    for (key, value) in string_map(cm.get("binaryData")) {
        out.text(0, format!("{key}: {} bytes", base64_len(&value)));
    }
    out.blank();
}

/// Secrets show each key's size in bytes, never its value.
fn secret(out: &mut Out, s: &Value) {
    out.blank();
    out.kv(0, "Type", str_at(s, "/type"));
    out.blank();
    out.text(0, "Data");
    out.text(0, "====");
    let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
    for (key, value) in string_map(s.get("data")) {
        sizes.insert(key, base64_len(&value));
    }
    // Not stored by the server, but present in a manifest described before it is applied.
    for (key, value) in string_map(s.get("stringData")) {
        sizes.insert(key, value.len());
    }
    for (key, size) in sizes {
        out.kv(0, &key, format!("{size} bytes"));
    }
    out.blank();
}

/// The length of base64-encoded data once decoded (padding and line breaks allowed).
fn base64_len(encoded: &str) -> usize {
    let symbols = encoded
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .count();
    symbols * 3 / 4
}

fn node(out: &mut Out, n: &Value) {
    let roles = node_roles(n);
    out.kv(0, "Roles", or(&roles.join(","), "<none>"));
    let taints: Vec<String> = list(n, "/spec/taints")
        .iter()
        .map(|t| {
            let value = str_at(t, "/value");
            let key = str_at(t, "/key");
            let effect = str_at(t, "/effect");
            if value.is_empty() {
                format!("{key}:{effect}")
            } else {
                format!("{key}={value}:{effect}")
            }
        })
        .collect();
    out.list(0, "Taints", taints);
    out.kv(
        0,
        "Unschedulable",
        bool_at(n, "/spec/unschedulable").to_string(),
    );
    let conditions = list(n, "/status/conditions");
    if conditions.is_empty() {
        out.kv(0, "Conditions", "<none>");
    } else {
        out.text(0, "Conditions:");
        out.row(
            1,
            &[
                "Type",
                "Status",
                "LastHeartbeatTime",
                "LastTransitionTime",
                "Reason",
                "Message",
            ],
        );
        out.row(
            1,
            &[
                "----",
                "------",
                "-----------------",
                "------------------",
                "------",
                "-------",
            ],
        );
        for c in conditions {
            out.row(
                1,
                &[
                    str_at(c, "/type").to_string(),
                    str_at(c, "/status").to_string(),
                    date(time(c, "/lastHeartbeatTime")),
                    date(time(c, "/lastTransitionTime")),
                    str_at(c, "/reason").to_string(),
                    str_at(c, "/message").to_string(),
                ],
            );
        }
    }
    let addresses = list(n, "/status/addresses");
    if addresses.is_empty() {
        out.kv(0, "Addresses", "<none>");
    } else {
        out.text(0, "Addresses:");
        for a in addresses {
            out.kv(1, str_at(a, "/type"), str_at(a, "/address"));
        }
    }
    for (key, ptr) in [
        ("Capacity", "/status/capacity"),
        ("Allocatable", "/status/allocatable"),
    ] {
        let res = string_map(n.pointer(ptr));
        if !res.is_empty() {
            out.text(0, format!("{key}:"));
            for (name, q) in res {
                out.kv(1, &name, q);
            }
        }
    }
    if object_at(n, "/status/nodeInfo").is_some() {
        out.text(0, "System Info:");
        for (key, field) in [
            ("Machine ID", "machineID"),
            ("System UUID", "systemUUID"),
            ("Boot ID", "bootID"),
            ("Kernel Version", "kernelVersion"),
            ("OS Image", "osImage"),
            ("Operating System", "operatingSystem"),
            ("Architecture", "architecture"),
            ("Container Runtime Version", "containerRuntimeVersion"),
            ("Kubelet Version", "kubeletVersion"),
        ] {
            out.kv(1, key, str_at(n, &format!("/status/nodeInfo/{field}")));
        }
    }
    let cidr = str_at(n, "/spec/podCIDR");
    if !cidr.is_empty() {
        out.kv(0, "PodCIDR", cidr);
    }
    let cidrs = strings(n, "/spec/podCIDRs");
    if !cidrs.is_empty() {
        out.kv(0, "PodCIDRs", cidrs.join(","));
    }
}

// ---------------------------------------------------------------------------------------
// Everything else

/// Every top-level field but apiVersion, kind and metadata, as indented `Key: value` lines
/// (spec and status last), keys turned into words as kubectl does (`podIP` → `Pod IP`).
fn generic(out: &mut Out, obj: &Value) {
    let Some(map) = obj.as_object() else {
        return;
    };
    let skip = ["apiVersion", "kind", "metadata"];
    let rest = map.iter().filter(|(k, _)| {
        !skip.contains(&k.as_str()) && k.as_str() != "spec" && k.as_str() != "status"
    });
    let last = ["spec", "status"]
        .into_iter()
        .filter_map(|k| map.get_key_value(k));
    for (key, value) in rest.chain(last) {
        field(out, 0, key, value, 0);
    }
}

fn field(out: &mut Out, level: usize, key: &str, value: &Value, depth: usize) {
    let label = smart_label(key);
    if depth >= MAX_DEPTH {
        out.kv(level, &label, "...");
        return;
    }
    match value {
        Value::Object(m) if m.is_empty() => out.kv(level, &label, ""),
        Value::Object(m) => {
            out.text(level, format!("{label}:"));
            for (k, v) in m {
                field(out, level + 1, k, v, depth + 1);
            }
        }
        Value::Array(a) if a.is_empty() => out.kv(level, &label, ""),
        Value::Array(a) => {
            out.text(level, format!("{label}:"));
            for item in a {
                match item {
                    Value::Object(m) => {
                        for (k, v) in m {
                            field(out, level + 1, k, v, depth + 1);
                        }
                    }
                    Value::Array(_) => field(out, level + 1, "-", item, depth + 1),
                    other => {
                        for line in scalar(other).lines() {
                            out.text(level + 1, line);
                        }
                    }
                }
            }
        }
        other => out.kv(level, &label, scalar(other)),
    }
}

/// `podIP` → `Pod IP`, `matchLabels` → `Match Labels`, `clusterIPs` → `Cluster IPs`; keys
/// with anything but letters and dashes (`app.kubernetes.io/name`) are kept as they are.
fn smart_label(key: &str) -> String {
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphabetic() || c == '-') {
        return key.to_string();
    }
    let chars: Vec<char> = key.chars().collect();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        let boundary = c.is_ascii_uppercase()
            && prev.is_some_and(|p| {
                p.is_ascii_lowercase()
                    // The last capital of an acronym starts the next word ("HTTPGet"), unless
                    // only a plural "s" follows ("IPs").
                    || (p.is_ascii_uppercase()
                        && next.is_some_and(|n| n.is_ascii_lowercase())
                        && !(next == Some('s') && i + 2 == chars.len()))
            });
        if boundary && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    const ACRONYMS: [&str; 11] = [
        "API", "URL", "UID", "IP", "ID", "CIDR", "DNS", "TCP", "UDP", "TLS", "OS",
    ];
    words
        .iter()
        .map(|w| {
            let upper = w.to_ascii_uppercase();
            let singular = w.strip_suffix('s').map(str::to_ascii_uppercase);
            if ACRONYMS.contains(&upper.as_str()) {
                upper
            } else if let Some(one) = singular.filter(|s| ACRONYMS.contains(&s.as_str())) {
                format!("{one}s")
            } else {
                let mut c = w.chars();
                match c.next() {
                    Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                    None => String::new(),
                }
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------
// Events

fn events_section(out: &mut Out, events: &[Value], now: Timestamp) {
    if events.is_empty() {
        out.kv(0, "Events", "<none>");
        return;
    }
    out.text(0, "Events:");
    out.row(1, &["Type", "Reason", "Age", "From", "Message"]);
    out.row(1, &["----", "------", "----", "----", "-------"]);
    let mut sorted: Vec<&Value> = events.iter().collect();
    sorted.sort_by_key(|e| last_seen(e));
    for e in sorted {
        let first = match time(e, "/eventTime") {
            Some(t) => translate_since(Some(t), now),
            None => since(e, "/firstTimestamp", now),
        };
        let age = if object_at(e, "/series").is_some() {
            format!(
                "{} (x{} over {first})",
                since(e, "/series/lastObservedTime", now),
                int(e, "/series/count")
            )
        } else if int(e, "/count") > 1 {
            format!(
                "{} (x{} over {first})",
                since(e, "/lastTimestamp", now),
                int(e, "/count")
            )
        } else {
            first
        };
        let from = or(
            str_at(e, "/source/component"),
            str_at(e, "/reportingComponent"),
        )
        .to_string();
        out.row(
            1,
            &[
                str_at(e, "/type").to_string(),
                str_at(e, "/reason").to_string(),
                age,
                from,
                str_at(e, "/message").trim().to_string(),
            ],
        );
    }
}

/// When an event was last seen, for ordering (unknown times first).
fn last_seen(e: &Value) -> Option<Timestamp> {
    time(e, "/lastTimestamp")
        .or_else(|| time(e, "/series/lastObservedTime"))
        .or_else(|| time(e, "/eventTime"))
        .or_else(|| time(e, "/firstTimestamp"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::REGISTRY;
    use crate::api::registry::by_kind;
    use crate::api::table::tests::{fixture, now};
    use serde_json::json;

    fn rt(api_version: &str, kind: &str) -> &'static ResourceType {
        by_kind(api_version, kind).expect("registered")
    }

    fn event(reason: &str, count: i64, first: &str, last: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": format!("e.{reason}")},
               "type": "Normal", "reason": reason, "message": format!("{reason} happened\n"),
               "source": {"component": "kubelet"}, "count": count,
               "firstTimestamp": first, "lastTimestamp": last})
    }

    #[test]
    fn statefulset_reads_like_kubectl() {
        let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2026-11-23T09:57:00Z"},
            "spec": {"replicas": 3, "serviceName": "nginx", "podManagementPolicy": "OrderedReady",
                "selector": {"matchLabels": {"app": "web"}},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {"storageClassName": "local-path",
                    "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]},
            "status": {"replicas": 3, "readyReplicas": 2, "currentReplicas": 2, "updatedReplicas": 1}});
        let out = describe(rt("apps/v1", "StatefulSet"), &sts, &[], now());
        for want in [
            "Selector:               app=web\n",
            "Replicas:               3 desired | 3 total\n",
            "Update Strategy:        RollingUpdate\n  Partition:            2\n",
            "Service Name:           nginx\n",
            "Pods Status:            2 Ready / 2 Current / 1 Updated\n",
            "Pod Template:\n",
            "Volume Claims:\n  Name:          www\n  StorageClass:  local-path\n",
            "  Capacity:      1Gi\n  Access Modes:  [ReadWriteOnce]\n",
        ] {
            assert!(out.contains(want), "missing {want:?} in:\n{out}");
        }
    }

    #[test]
    fn pod_reads_like_kubectl() {
        let events = [
            event("Pulled", 1, "2026-11-23T09:57:05Z", "2026-11-23T09:57:05Z"),
            event(
                "Scheduled",
                1,
                "2026-11-23T09:57:00Z",
                "2026-11-23T09:57:00Z",
            ),
            event("BackOff", 3, "2026-11-23T09:50:00Z", "2026-11-23T09:58:00Z"),
        ];
        let out = describe(rt("v1", "Pod"), &fixture("Pod"), &events, now());
        for want in [
            "Name:               web-7d4b9c-x2k8p\n",
            "Namespace:          default\n",
            "Labels:             app=web\n                    pod-template-hash=7d4b9c\n",
            "Annotations:        note: hello\n",
            "CreationTimestamp:  Mon, 23 Nov 2026 09:57:00 +0000\n",
            "Service Account:    default\n",
            "Node:               node1/192.168.1.10\n",
            "Start Time:         Mon, 23 Nov 2026 09:57:01 +0000\n",
            "Status:             Running\n",
            "IP:                 10.88.0.5\n",
            "IPs:\n  IP:           10.88.0.5\nControlled By:  ReplicaSet/web-7d4b9c\n",
            "Containers:\n  web:\n",
            "    Container ID:  berth://c1\n",
            "    Image:         nginx:1.25\n",
            "    Port:          80/TCP (http)\n",
            "    Host Port:     0/TCP\n",
            "    Command:\n      nginx\n",
            "    Args:\n      -g\n      daemon off;\n",
            "    State:          Running\n      Started:      Mon, 23 Nov 2026 09:58:00 +0000\n",
            "    Last State:     Terminated\n      Reason:       Error\n      Exit Code:    1\n",
            "    Ready:          True\n    Restart Count:  2\n",
            "    Limits:\n      cpu:     500m\n      memory:  128Mi\n",
            "    Requests:\n      cpu:     250m\n      memory:  64Mi\n",
            "    Liveness:  http-get http://:80/healthz delay=3s timeout=1s period=10s #success=1 #failure=3\n",
            "    Environment:\n      MODE:      prod\n      PASSWORD:  <set to the key 'password' in secret 'db'>  Optional: false\n",
            "    Mounts:\n      /data from data (rw)\n      /etc/cfg from cfg (ro)\n",
            "Conditions:\n  Type             Status\n  Initialized      True\n",
            "Volumes:\n  data:\n    Type:       EmptyDir (a temporary directory that shares a pod's lifetime)\n",
            "  cfg:\n    Type:        ConfigMap (a volume populated by a ConfigMap)\n    Name:        web-config\n",
            "QoS Class:       Burstable\n",
            "Tolerations:     node.kubernetes.io/not-ready:NoExecute op=Exists for 300s\n",
            "Events:\n  Type    Reason     Age               From     Message\n",
            "  ----    ------     ----              ----     -------\n",
            "  Normal  Scheduled  3m                kubelet  Scheduled happened\n",
            "  Normal  Pulled     2m55s             kubelet  Pulled happened\n",
            "  Normal  BackOff    2m (x3 over 10m)  kubelet  BackOff happened\n",
        ] {
            assert!(out.contains(want), "missing {want:?} in:\n{out}");
        }
        assert!(
            !out.contains("hunter2"),
            "last-applied is never shown:\n{out}"
        );
        assert!(out.lines().all(|l| !l.ends_with(' ')), "{out}");

        let mut deleting = fixture("Pod");
        deleting["metadata"]["deletionTimestamp"] = json!("2026-11-23T10:00:30Z");
        deleting["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        let out = describe(rt("v1", "Pod"), &deleting, &[], now());
        assert!(
            out.contains("Status:                    Terminating (lasts 30s)\n"),
            "{out}"
        );
        assert!(out.contains("Termination Grace Period:  30s\n"), "{out}");
        assert!(out.ends_with("Events:          <none>\n"), "{out}");
    }

    #[test]
    fn deployment_reads_like_kubectl() {
        let d = fixture("Deployment");
        let owner = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "d-1", "controller": true}]);
        let rs = |name: &str, rev: &str, replicas: i64| {
            json!({"metadata": {"name": name, "ownerReferences": owner,
                                "annotations": {"deployment.kubernetes.io/revision": rev}},
                   "spec": {"replicas": replicas}, "status": {"replicas": replicas}})
        };
        let sets = [
            rs("web-old", "1", 1),
            rs("web-older", "0", 0),
            rs("web-new", "2", 3),
            json!({"metadata": {"name": "stranger"}}),
        ];
        let related = Related {
            replica_sets: Some(&sets),
            endpoints: None,
        };
        let out = describe_with(rt("apps/v1", "Deployment"), &d, &related, &[], now());
        for want in [
            "Name:                   web\n",
            "CreationTimestamp:      Mon, 23 Nov 2026 09:00:00 +0000\n",
            "Selector:               app=web\n",
            "Replicas:               3 desired | 3 updated | 3 total | 2 available | 1 unavailable\n",
            "StrategyType:           RollingUpdate\n",
            "MinReadySeconds:        0\n",
            "RollingUpdateStrategy:  25% max unavailable, 1 max surge\n",
            "Pod Template:\n  Labels:  app=web\n  Containers:\n   web:\n    Image:      nginx:1.25\n",
            "    Port:       80/TCP\n",
            "    Environment:  <none>\n",
            "   log:\n",
            "Conditions:\n  Type           Status  Reason\n  ----           ------  ------\n",
            "  Available      True    MinimumReplicasAvailable\n",
            "OldReplicaSets:  web-old (1/1 replicas created)\n",
            "NewReplicaSet:   web-new (3/3 replicas created)\n",
            "Events:          <none>\n",
        ] {
            assert!(out.contains(want), "missing {want:?} in:\n{out}");
        }
        let plain = describe(rt("apps/v1", "Deployment"), &d, &[], now());
        assert!(!plain.contains("NewReplicaSet:"), "{plain}");
    }

    #[test]
    fn secrets_show_sizes_never_values() {
        let mut s = fixture("Secret");
        s["metadata"]["annotations"] = json!({
            "kubectl.kubernetes.io/last-applied-configuration":
                "{\"data\":{\"password\":\"aHVudGVyMg==\"},\"stringData\":{\"token\":\"s3cr3t\"}}"});
        s["stringData"] = json!({"token": "s3cr3t"});
        let out = describe(rt("v1", "Secret"), &s, &[], now());
        assert_eq!(
            out,
            "Name:               db\n\
             Namespace:          default\n\
             Labels:             app=web\n\
             Annotations:        <none>\n\
             CreationTimestamp:  Mon, 23 Nov 2026 09:55:00 +0000\n\
             \n\
             Type:  Opaque\n\
             \n\
             Data\n\
             ====\n\
             password:  7 bytes\n\
             token:     6 bytes\n\
             username:  5 bytes\n\
             \n\
             Events:  <none>\n"
        );
        for secret in ["aHVudGVyMg", "hunter2", "s3cr3t", "YWRtaW4", "admin"] {
            assert!(!out.contains(secret), "{secret} leaked:\n{out}");
        }
        assert_eq!(base64_len(""), 0);
        assert_eq!(base64_len("YQ"), 1);
        assert_eq!(base64_len("YWJj\nZGVm"), 6);
    }

    #[test]
    fn config_maps_services_nodes_and_the_rest() {
        let out = describe(rt("v1", "ConfigMap"), &fixture("ConfigMap"), &[], now());
        assert!(
            out.contains(
                "Data\n====\nmode:\n----\nprod\n\nnginx.conf:\n----\nserver {\n  listen 80;\n}\n\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("BinaryData\n====\nlogo.png: 8 bytes\n"),
            "{out}"
        );

        let ep = fixture("Endpoints");
        let related = Related {
            replica_sets: None,
            endpoints: Some(&ep),
        };
        let out = describe_with(
            rt("v1", "Service"),
            &fixture("Service"),
            &related,
            &[],
            now(),
        );
        for want in [
            "Selector:           app=web,tier=front\n",
            "Type:               NodePort\n",
            "IP:                 10.96.0.20\n",
            "Port:               http  80/TCP\n",
            "TargetPort:         8080/TCP\n",
            "NodePort:           http  30080/TCP\n",
            "Endpoints:          10.88.0.5:8080,10.88.0.6:8080\n",
            "Port:               https  443/TCP\n",
            "TargetPort:         https/TCP\nEndpoints:\n",
            "Session Affinity:   None\n",
        ] {
            assert!(out.contains(want), "missing {want:?} in:\n{out}");
        }

        let out = describe(rt("v1", "Node"), &fixture("Node"), &[], now());
        for want in [
            "Roles:              control-plane\n",
            "Taints:             dedicated=db:NoSchedule\n",
            "Unschedulable:      false\n",
            "  Ready           True    Mon, 23 Nov 2026 09:59:50 +0000",
            "Addresses:\n  InternalIP:  192.168.1.10\n  Hostname:    node1\n",
            "Capacity:\n  cpu:     2\n",
            "  Kernel Version:             6.1.0-18-amd64\n",
            "  Kubelet Version:            v1.34.0-berth\nPodCIDR:                      10.88.0.0/16\n",
        ] {
            assert!(out.contains(want), "missing {want:?} in:\n{out}");
        }
        assert!(
            !out.contains("Namespace:"),
            "nodes are cluster-scoped:\n{out}"
        );

        let out = describe(rt("v1", "Namespace"), &fixture("Namespace"), &[], now());
        assert!(out.contains("Status:             Active\n"), "{out}");

        let out = describe(
            rt("v1", "PersistentVolume"),
            &fixture("PersistentVolume"),
            &[],
            now(),
        );
        for want in [
            "Spec:\n  Access Modes:\n    ReadWriteMany\n",
            "  Capacity:\n    Storage:  10Gi\n",
            "  Claim Ref:\n    Name:       data\n",
            "  Persistent Volume Reclaim Policy:  Retain\n",
            "Status:\n  Phase:  Bound\n",
        ] {
            assert!(out.contains(want), "missing {want:?} in:\n{out}");
        }
        let out = describe(rt("v1", "Endpoints"), &ep, &[], now());
        assert!(
            out.contains("Subsets:\n  Addresses:\n    IP:  10.88.0.5\n"),
            "{out}"
        );
    }

    #[test]
    fn labels_become_words_like_kubectl() {
        for (key, want) in [
            ("podIP", "Pod IP"),
            ("clusterIPs", "Cluster IPs"),
            ("matchLabels", "Match Labels"),
            ("httpGet", "Http Get"),
            ("HTTPGet", "HTTP Get"),
            ("uid", "UID"),
            ("tls", "TLS"),
            ("podCIDRs", "Pod CIDRs"),
            ("machineID", "Machine ID"),
            ("app.kubernetes.io/name", "app.kubernetes.io/name"),
            ("x", "X"),
            ("", ""),
        ] {
            assert_eq!(smart_label(key), want, "{key}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut deep = json!("bottom");
        for i in 0..200 {
            deep = if i % 2 == 0 {
                json!({"spec": deep})
            } else {
                json!([deep])
            };
        }
        let garbage = [
            json!({}),
            json!(null),
            json!("a string"),
            json!(42),
            json!([1, {"a": 2}]),
            json!({"metadata": "x", "spec": 3, "status": [null, [1, 2]], "data": [1], "type": {}}),
            json!({"metadata": {"name": 3, "labels": {"a": 1, "b": null}, "annotations": [1],
                    "creationTimestamp": "not a time", "deletionTimestamp": 5, "ownerReferences": [3]},
                   "spec": {"containers": [null, 3, {"name": 7, "ports": [null], "env": [{"valueFrom": 1}, {"valueFrom": {"fieldRef": 1}}],
                            "resources": {"limits": 3}, "livenessProbe": {"exec": {"command": "x"}}, "volumeMounts": [3]}],
                            "volumes": [null, {"name": "v", "projected": {"sources": [3, {}]}}, {"name": "w", "nfs": {}}],
                            "tolerations": [3], "strategy": {"rollingUpdate": {"maxSurge": null}}, "ports": [{}],
                            "selector": "x", "taints": [1]},
                   "status": {"containerStatuses": [{"state": 3, "lastState": {"terminated": 2}}],
                              "conditions": [1, null], "podIPs": [1], "addresses": [null], "nodeInfo": {},
                              "capacity": {"cpu": {"weird": true}}},
                   "data": {"k": 1}, "binaryData": {"b": "!!!"}, "stringData": {"s": null}}),
            deep,
        ];
        let events = [json!(1), json!({}), json!({"count": "x", "series": {}})];
        for rt in REGISTRY.iter() {
            for g in &garbage {
                let out = describe(rt, g, &events, now());
                assert!(out.starts_with("Name:"), "{}: {out}", rt.kind);
                let sets = [g.clone()];
                let related = Related {
                    replica_sets: Some(&sets),
                    endpoints: Some(g),
                };
                let _ = describe_with(rt, g, &related, &[], now());
            }
        }
    }

    #[test]
    fn dates_are_rfc1123z() {
        assert_eq!(date(Some(now())), "Mon, 23 Nov 2026 10:00:00 +0000");
        assert_eq!(date(None), "<unknown>");
    }
}
