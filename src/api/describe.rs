//! `describe` text, as `kubectl describe` lays it out: metadata, a kind-specific body, then
//! the object's events. Pure; never prints Secret values.

use std::fmt::Write;

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::meta;
use super::registry::ResourceType;
use super::table::{age, pod_status};

fn s(v: &Value, p: &str) -> String {
    meta::str_at(v, p).to_string()
}

fn or_none(x: String) -> String {
    if x.is_empty() {
        "<none>".to_string()
    } else {
        x
    }
}

/// `Mon, 23 Nov 2026 10:00:00 +0000`, as kubectl prints times.
fn kube_time(ts: &str) -> String {
    match meta::parse_time(ts) {
        Some(t) => t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string(),
        None => "<unknown>".to_string(),
    }
}

/// `key=value` lines, the first after the label, the rest indented under it.
fn map_lines(
    out: &mut String,
    label: &str,
    map: &std::collections::BTreeMap<String, String>,
    width: usize,
) {
    if map.is_empty() {
        let _ = writeln!(out, "{label:<width$}<none>");
        return;
    }
    for (i, (k, v)) in map.iter().enumerate() {
        let head = if i == 0 { label } else { "" };
        let _ = writeln!(out, "{head:<width$}{k}={v}");
    }
}

/// The describe text of `obj`, with `events` (Event objects about it).
pub fn describe(rt: &ResourceType, obj: &Value, events: &[Value], now: Timestamp) -> String {
    let mut out = String::new();
    let w = 20;
    let _ = writeln!(out, "{:<w$}{}", "Name:", meta::name(obj));
    if rt.namespaced {
        let _ = writeln!(out, "{:<w$}{}", "Namespace:", meta::namespace(obj));
    }
    map_lines(&mut out, "Labels:", &meta::labels(obj), w);
    let mut annotations = meta::annotations(obj);
    annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    map_lines(&mut out, "Annotations:", &annotations, w);
    let _ = writeln!(
        out,
        "{:<w$}{}",
        "CreationTimestamp:",
        kube_time(meta::str_at(obj, "/metadata/creationTimestamp"))
    );
    if let Some(ts) = obj
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
    {
        let _ = writeln!(out, "{:<w$}{}", "Terminating:", kube_time(ts));
    }
    match rt.kind {
        "Pod" => pod(&mut out, obj),
        "Deployment" => deployment(&mut out, obj),
        "Secret" => secret(&mut out, obj),
        "ConfigMap" => config_map(&mut out, obj),
        _ => {
            for section in ["spec", "status"] {
                if let Some(v) = obj.get(section).filter(|v| !v.is_null()) {
                    let _ = writeln!(out, "{}:", capitalise(section));
                    generic(&mut out, v, 1);
                }
            }
            for (k, v) in obj.as_object().into_iter().flatten() {
                if !matches!(
                    k.as_str(),
                    "apiVersion" | "kind" | "metadata" | "spec" | "status"
                ) {
                    let _ = writeln!(out, "{}:", capitalise(k));
                    generic(&mut out, v, 1);
                }
            }
        }
    }
    events_section(&mut out, events, now);
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn generic(out: &mut String, v: &Value, depth: usize) {
    let pad = "  ".repeat(depth);
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match v {
                    Value::Object(_) | Value::Array(_) => {
                        let _ = writeln!(out, "{pad}{k}:");
                        generic(out, v, depth + 1);
                    }
                    other => {
                        let _ = writeln!(out, "{pad}{k}:  {}", scalar(other));
                    }
                }
            }
        }
        Value::Array(a) if a.is_empty() => {
            let _ = writeln!(out, "{pad}<none>");
        }
        Value::Array(a) => {
            for item in a {
                match item {
                    Value::Object(_) | Value::Array(_) => {
                        let _ = writeln!(out, "{pad}-");
                        generic(out, item, depth + 1);
                    }
                    other => {
                        let _ = writeln!(out, "{pad}{}", scalar(other));
                    }
                }
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{}", scalar(other));
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".into(),
        other => other.to_string(),
    }
}

fn containers(out: &mut String, title: &str, list: &[Value], statuses: &[Value]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title}:");
    for c in list {
        let name = c["name"].as_str().unwrap_or_default();
        let st = statuses.iter().find(|s| s["name"] == name);
        let _ = writeln!(out, "  {name}:");
        let _ = writeln!(
            out,
            "    Image:          {}",
            c["image"].as_str().unwrap_or_default()
        );
        let ports: Vec<String> = c["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}/{}",
                    p["containerPort"].as_i64().unwrap_or(0),
                    p["protocol"].as_str().unwrap_or("TCP")
                )
            })
            .collect();
        let _ = writeln!(out, "    Port:           {}", or_none(ports.join(", ")));
        if let Some(cmd) = c["command"].as_array() {
            let _ = writeln!(out, "    Command:");
            for a in cmd {
                let _ = writeln!(out, "      {}", scalar(a));
            }
        }
        if let Some(args) = c["args"].as_array() {
            let _ = writeln!(out, "    Args:");
            for a in args {
                let _ = writeln!(out, "      {}", scalar(a));
            }
        }
        if let Some(st) = st {
            state(out, "State:", &st["state"]);
            if st["lastState"].as_object().is_some_and(|m| !m.is_empty()) {
                state(out, "Last State:", &st["lastState"]);
            }
            let _ = writeln!(
                out,
                "    Ready:          {}",
                if st["ready"].as_bool() == Some(true) {
                    "True"
                } else {
                    "False"
                }
            );
            let _ = writeln!(
                out,
                "    Restart Count:  {}",
                st["restartCount"].as_i64().unwrap_or(0)
            );
        }
        for kind in ["limits", "requests"] {
            if let Some(m) = c["resources"][kind].as_object().filter(|m| !m.is_empty()) {
                let _ = writeln!(out, "    {}:", capitalise(kind));
                for (k, v) in m {
                    let _ = writeln!(out, "      {k}:  {}", scalar(v));
                }
            }
        }
        let env = c["env"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if env.is_empty() {
            let _ = writeln!(out, "    Environment:    <none>");
        } else {
            let _ = writeln!(out, "    Environment:");
            for e in env {
                let value = match e.get("value") {
                    Some(v) => scalar(v),
                    None if e.get("valueFrom").is_some() => {
                        let vf = &e["valueFrom"];
                        if let Some(f) = vf["fieldRef"]["fieldPath"].as_str() {
                            format!(
                                " ({}:{f})",
                                vf["fieldRef"]["apiVersion"].as_str().unwrap_or("v1")
                            )
                        } else if let Some(k) = vf["secretKeyRef"]["key"].as_str() {
                            format!(
                                "<set to the key '{k}' in secret '{}'>",
                                vf["secretKeyRef"]["name"].as_str().unwrap_or_default()
                            )
                        } else if let Some(k) = vf["configMapKeyRef"]["key"].as_str() {
                            format!(
                                "<set to the key '{k}' of config map '{}'>",
                                vf["configMapKeyRef"]["name"].as_str().unwrap_or_default()
                            )
                        } else {
                            "<set>".into()
                        }
                    }
                    None => String::new(),
                };
                let _ = writeln!(
                    out,
                    "      {}:  {value}",
                    e["name"].as_str().unwrap_or_default()
                );
            }
        }
        let mounts: Vec<String> = c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                format!(
                    "{} from {} ({})",
                    m["mountPath"].as_str().unwrap_or_default(),
                    m["name"].as_str().unwrap_or_default(),
                    if m["readOnly"].as_bool() == Some(true) {
                        "ro"
                    } else {
                        "rw"
                    }
                )
            })
            .collect();
        if mounts.is_empty() {
            let _ = writeln!(out, "    Mounts:         <none>");
        } else {
            let _ = writeln!(out, "    Mounts:");
            for m in mounts {
                let _ = writeln!(out, "      {m}");
            }
        }
    }
}

fn state(out: &mut String, label: &str, st: &Value) {
    if let Some(r) = st.get("running") {
        let _ = writeln!(out, "    {label:<16}Running");
        let _ = writeln!(
            out,
            "      Started:      {}",
            kube_time(r["startedAt"].as_str().unwrap_or_default())
        );
    } else if let Some(w) = st.get("waiting") {
        let _ = writeln!(out, "    {label:<16}Waiting");
        let _ = writeln!(
            out,
            "      Reason:       {}",
            w["reason"].as_str().unwrap_or_default()
        );
        if let Some(m) = w["message"].as_str() {
            let _ = writeln!(out, "      Message:      {m}");
        }
    } else if let Some(t) = st.get("terminated") {
        let _ = writeln!(out, "    {label:<16}Terminated");
        let _ = writeln!(
            out,
            "      Reason:       {}",
            t["reason"].as_str().unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "      Exit Code:    {}",
            t["exitCode"].as_i64().unwrap_or(0)
        );
        if let Some(sig) = t["signal"].as_i64() {
            let _ = writeln!(out, "      Signal:       {sig}");
        }
        let _ = writeln!(
            out,
            "      Started:      {}",
            kube_time(t["startedAt"].as_str().unwrap_or_default())
        );
        let _ = writeln!(
            out,
            "      Finished:     {}",
            kube_time(t["finishedAt"].as_str().unwrap_or_default())
        );
    } else {
        let _ = writeln!(out, "    {label:<16}<none>");
    }
}

fn pod(out: &mut String, p: &Value) {
    let w = 20;
    let node = s(p, "/spec/nodeName");
    let _ = writeln!(out, "{:<w$}{}", "Node:", or_none(node));
    let _ = writeln!(out, "{:<w$}{}", "Status:", pod_status(p));
    let _ = writeln!(out, "{:<w$}{}", "IP:", s(p, "/status/podIP"));
    let arr = |ptr: &str| {
        p.pointer(ptr)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    containers(
        out,
        "Init Containers",
        &arr("/spec/initContainers"),
        &arr("/status/initContainerStatuses"),
    );
    containers(
        out,
        "Containers",
        &arr("/spec/containers"),
        &arr("/status/containerStatuses"),
    );
    let conds = arr("/status/conditions");
    if !conds.is_empty() {
        let _ = writeln!(out, "Conditions:\n  Type              Status");
        for c in conds {
            let _ = writeln!(
                out,
                "  {:<18}{}",
                c["type"].as_str().unwrap_or_default(),
                c["status"].as_str().unwrap_or_default()
            );
        }
    }
    let vols = arr("/spec/volumes");
    if vols.is_empty() {
        let _ = writeln!(out, "Volumes:          <none>");
    } else {
        let _ = writeln!(out, "Volumes:");
        for v in vols {
            let _ = writeln!(out, "  {}:", v["name"].as_str().unwrap_or_default());
            let source: Vec<(&String, &Value)> = v
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| k.as_str() != "name")
                .collect();
            for (k, val) in source {
                let _ = writeln!(out, "    Type:  {k}");
                generic(out, val, 2);
            }
        }
    }
    let _ = writeln!(out, "{:<w$}{}", "QoS Class:", s(p, "/status/qosClass"));
    let selectors = meta::labels(
        &serde_json::json!({"metadata": {"labels": p.pointer("/spec/nodeSelector").cloned().unwrap_or(Value::Null)}}),
    );
    let _ = writeln!(
        out,
        "{:<w$}{}",
        "Node-Selectors:",
        or_none(
            selectors
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        )
    );
}

fn deployment(out: &mut String, d: &Value) {
    let n = |p: &str| d.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let w = 24;
    let selector = d
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", scalar(v)))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let _ = writeln!(out, "{:<w$}{}", "Selector:", or_none(selector));
    let _ = writeln!(
        out,
        "{:<w$}{} desired | {} updated | {} total | {} available | {} unavailable",
        "Replicas:",
        n("/spec/replicas"),
        n("/status/updatedReplicas"),
        n("/status/replicas"),
        n("/status/availableReplicas"),
        n("/status/unavailableReplicas")
    );
    let strategy = s(d, "/spec/strategy/type");
    let _ = writeln!(out, "{:<w$}{}", "StrategyType:", strategy);
    let _ = writeln!(
        out,
        "{:<w$}{}",
        "MinReadySeconds:",
        n("/spec/minReadySeconds")
    );
    if strategy == "RollingUpdate" {
        let ru = &d["spec"]["strategy"]["rollingUpdate"];
        let _ = writeln!(
            out,
            "{:<w$}{} max unavailable, {} max surge",
            "RollingUpdateStrategy:",
            scalar(&ru["maxUnavailable"]),
            scalar(&ru["maxSurge"])
        );
    }
    let _ = writeln!(out, "Pod Template:");
    map_lines(
        out,
        "  Labels:",
        &meta::labels(
            &serde_json::json!({"metadata": d.pointer("/spec/template/metadata").cloned().unwrap_or(Value::Null)}),
        ),
        w,
    );
    let list = d
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut body = String::new();
    containers(&mut body, "Containers", &list, &[]);
    for line in body.lines() {
        let _ = writeln!(out, "  {line}");
    }
    if let Some(conds) = d.pointer("/status/conditions").and_then(Value::as_array) {
        let _ = writeln!(
            out,
            "Conditions:\n  Type           Status  Reason\n  ----           ------  ------"
        );
        for c in conds {
            let _ = writeln!(
                out,
                "  {:<15}{:<8}{}",
                c["type"].as_str().unwrap_or_default(),
                c["status"].as_str().unwrap_or_default(),
                c["reason"].as_str().unwrap_or_default()
            );
        }
    }
}

fn secret(out: &mut String, sec: &Value) {
    let _ = writeln!(out, "\nType:  {}\n\nData\n====", s(sec, "/type"));
    for (k, v) in sec
        .get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        // `data` is base64; report the decoded length, never the value.
        let encoded = v.as_str().unwrap_or_default().trim_end_matches('=').len();
        let _ = writeln!(out, "{k}:  {} bytes", encoded * 3 / 4);
    }
}

fn config_map(out: &mut String, cm: &Value) {
    let _ = writeln!(out, "\nData\n====");
    for (k, v) in cm
        .get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(out, "{k}:\n----\n{}\n", scalar(v));
    }
    let _ = writeln!(out, "\nBinaryData\n====");
    for (k, v) in cm
        .get("binaryData")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let _ = writeln!(
            out,
            "{k}: {} bytes",
            v.as_str().unwrap_or_default().len() * 3 / 4
        );
    }
}

fn events_section(out: &mut String, events: &[Value], now: Timestamp) {
    if events.is_empty() {
        let _ = writeln!(out, "Events:           <none>");
        return;
    }
    let mut rows: Vec<[String; 5]> = vec![
        [
            "Type".into(),
            "Reason".into(),
            "Age".into(),
            "From".into(),
            "Message".into(),
        ],
        [
            "----".into(),
            "------".into(),
            "----".into(),
            "----".into(),
            "-------".into(),
        ],
    ];
    let mut sorted: Vec<&Value> = events.iter().collect();
    sorted.sort_by_key(|e| s(e, "/lastTimestamp"));
    for e in sorted {
        let last = age(meta::str_at(e, "/lastTimestamp"), now);
        let count = e["count"].as_i64().unwrap_or(1);
        let age_text = if count > 1 {
            format!(
                "{last} (x{count} over {})",
                age(meta::str_at(e, "/firstTimestamp"), now)
            )
        } else {
            last
        };
        rows.push([
            s(e, "/type"),
            s(e, "/reason"),
            age_text,
            s(e, "/source/component"),
            s(e, "/message"),
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let _ = writeln!(out, "Events:");
    for r in rows {
        let _ = writeln!(
            out,
            "  {:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::registry::{REGISTRY, by_kind};
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-11-23T12:00:00Z".parse().expect("time")
    }

    #[test]
    fn pods_show_containers_state_and_events() {
        let pod = json!({"metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"},
                "creationTimestamp": "2026-11-23T10:00:00Z"},
            "spec": {"nodeName": "node1", "containers": [{"name": "web", "image": "nginx:1.25",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "A", "value": "1"}, {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]},
            "status": {"phase": "Running", "podIP": "10.244.0.5", "qosClass": "BestEffort",
                "containerStatuses": [{"name": "web", "ready": true, "restartCount": 1,
                    "state": {"running": {"startedAt": "2026-11-23T11:00:00Z"}}}]}});
        let ev = json!({"type": "Normal", "reason": "Started", "message": "Started container web", "count": 3,
            "firstTimestamp": "2026-11-23T11:00:00Z", "lastTimestamp": "2026-11-23T11:58:00Z", "source": {"component": "kubelet"}});
        let text = describe(by_kind("v1", "Pod").expect("pod"), &pod, &[ev], now());
        assert!(text.contains("Name:               web-1"), "{text}");
        assert!(
            text.contains("CreationTimestamp:Mon, 23 Nov 2026 10:00:00 +0000")
                || text.contains("Mon, 23 Nov 2026 10:00:00 +0000")
        );
        assert!(text.contains("Image:          nginx:1.25"), "{text}");
        assert!(text.contains("Restart Count:  1"), "{text}");
        assert!(
            text.contains("S:  <set to the key 'k' in secret 's'>"),
            "{text}"
        );
        assert!(
            text.contains("Started  2m (x3 over 60m)") || text.contains("(x3 over"),
            "{text}"
        );
        assert!(text.contains("QoS Class:          BestEffort"), "{text}");
    }

    #[test]
    fn deployments_show_replicas_and_strategy() {
        let d = json!({"metadata": {"name": "d", "namespace": "default"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "d"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}},
            "status": {"replicas": 3, "updatedReplicas": 3, "availableReplicas": 2, "unavailableReplicas": 1}});
        let text = describe(by_kind("apps/v1", "Deployment").expect("d"), &d, &[], now());
        assert!(
            text.contains("3 desired | 3 updated | 3 total | 2 available | 1 unavailable"),
            "{text}"
        );
        assert!(
            text.contains("25% max unavailable, 25% max surge"),
            "{text}"
        );
        assert!(text.contains("Events:           <none>"), "{text}");
    }

    #[test]
    fn secrets_never_show_values() {
        let sec = json!({"metadata": {"name": "s", "namespace": "default"}, "type": "Opaque",
            "data": {"password": "aHVudGVyMg=="}});
        let text = describe(by_kind("v1", "Secret").expect("s"), &sec, &[], now());
        assert!(text.contains("password:  7 bytes"), "{text}");
        assert!(!text.contains("aHVudGVyMg"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn garbage_renders_without_panicking() {
        for rt in REGISTRY.iter() {
            for v in [
                json!({}),
                json!(null),
                json!("x"),
                json!({"spec": "x", "status": [1, {"a": null}], "metadata": []}),
            ] {
                let _ = describe(rt, &v, &[json!("not an event"), json!({})], now());
            }
        }
    }
}
