//! ResourceQuota and LimitRange admission, as Kubernetes' ResourceQuota and LimitRanger
//! plugins do it: pure functions over JSON objects (the store calls them inside its write
//! transaction, so counts are race-free), and the usage the quota controller reports.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::validation::parse_quantity;

/// Amounts in milli-units, by resource name.
pub type Amounts = BTreeMap<String, i128>;

fn milli(q: &Value) -> Option<i128> {
    q.as_str()
        .and_then(|s| parse_quantity(s).ok())
        .map(|v| v.milli())
        .or_else(|| q.as_i64().map(|n| i128::from(n) * 1000))
}

fn map_of(v: Option<&Value>) -> BTreeMap<String, i128> {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, q)| milli(q).map(|m| (k.clone(), m)))
        .collect()
}

/// A milli-amount as Kubernetes prints the quantity (`500m`, `2`, `1Gi`, `3`).
pub fn format(resource: &str, m: i128) -> String {
    let is_bytes = resource.contains("memory") || resource.contains("storage");
    if is_bytes && m % 1000 == 0 {
        let b = m / 1000;
        for (shift, suffix) in [(40, "Ti"), (30, "Gi"), (20, "Mi"), (10, "Ki")] {
            let unit = 1i128 << shift;
            if b != 0 && b % unit == 0 {
                return format!("{}{suffix}", b / unit);
            }
        }
        return b.to_string();
    }
    if m % 1000 == 0 {
        (m / 1000).to_string()
    } else {
        format!("{m}m")
    }
}

fn is_terminal_pod(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

/// A pod's compute requests and limits: the sum over app containers, or the largest init
/// container's when larger (Kubernetes' effective pod resources).
fn pod_compute(pod: &Value, which: &str) -> Amounts {
    let mut total = Amounts::new();
    for c in pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for (k, v) in map_of(c.pointer(&format!("/resources/{which}"))) {
            *total.entry(k).or_default() += v;
        }
    }
    for c in pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for (k, v) in map_of(c.pointer(&format!("/resources/{which}"))) {
            let e = total.entry(k).or_default();
            *e = (*e).max(v);
        }
    }
    total
}

/// What one object of `group_resource` counts against a quota.
pub fn contribution(group_resource: &str, obj: &Value) -> Amounts {
    let mut out = Amounts::new();
    if group_resource == "pods" && is_terminal_pod(obj) {
        return out;
    }
    out.insert(format!("count/{group_resource}"), 1000);
    match group_resource {
        "pods" => {
            out.insert("pods".into(), 1000);
            for (k, v) in pod_compute(obj, "requests") {
                if k == "cpu" || k == "memory" {
                    out.insert(k.clone(), v);
                }
                out.insert(format!("requests.{k}"), v);
            }
            for (k, v) in pod_compute(obj, "limits") {
                out.insert(format!("limits.{k}"), v);
            }
        }
        "services" => {
            out.insert("services".into(), 1000);
            let ty = obj.pointer("/spec/type").and_then(Value::as_str);
            if matches!(ty, Some("NodePort" | "LoadBalancer")) {
                let ports = obj
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                out.insert("services.nodeports".into(), ports as i128 * 1000);
            }
            if ty == Some("LoadBalancer") {
                out.insert("services.loadbalancers".into(), 1000);
            }
        }
        "configmaps"
        | "secrets"
        | "persistentvolumeclaims"
        | "replicationcontrollers"
        | "resourcequotas" => {
            out.insert(group_resource.into(), 1000);
            if group_resource == "persistentvolumeclaims"
                && let Some(s) = obj
                    .pointer("/spec/resources/requests/storage")
                    .and_then(milli)
            {
                out.insert("requests.storage".into(), s);
            }
        }
        _ => {}
    }
    out
}

/// The containers of `pod` lacking a request or limit a quota tracks:
/// `["requests.cpu for: main", …]`.
fn missing_compute(pod: &Value, hard: &Amounts) -> Vec<String> {
    let mut out = Vec::new();
    let tracked = [
        ("requests.cpu", "requests", "cpu"),
        ("cpu", "requests", "cpu"),
        ("requests.memory", "requests", "memory"),
        ("memory", "requests", "memory"),
        ("limits.cpu", "limits", "cpu"),
        ("limits.memory", "limits", "memory"),
    ];
    for (name, which, res) in tracked {
        if !hard.contains_key(name) {
            continue;
        }
        let lacking: Vec<&str> = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| c.pointer(&format!("/resources/{which}/{res}")).is_none())
            .filter_map(|c| c["name"].as_str())
            .collect();
        if !lacking.is_empty() {
            out.push(format!("{name} for: {}", lacking.join(",")));
        }
    }
    out.dedup();
    out
}

/// Checks creating `obj` against the namespace's quotas, given what the existing objects
/// of its kind use. The error is Kubernetes' message after `<kind> "<name>" is forbidden: `.
pub fn check(
    group_resource: &str,
    obj: &Value,
    quotas: &[Value],
    existing: &[Value],
) -> Result<(), String> {
    let add = contribution(group_resource, obj);
    for q in quotas {
        let name = q
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let hard = map_of(q.pointer("/spec/hard"));
        if group_resource == "pods" && !is_terminal_pod(obj) {
            let missing = missing_compute(obj, &hard);
            if !missing.is_empty() {
                return Err(format!(
                    "failed quota: {name}: must specify {}",
                    missing.join("; ")
                ));
            }
        }
        let mut used = Amounts::new();
        for o in existing {
            for (k, v) in contribution(group_resource, o) {
                *used.entry(k).or_default() += v;
            }
        }
        let mut requested = Vec::new();
        let mut used_s = Vec::new();
        let mut limited = Vec::new();
        for (res, limit) in &hard {
            let Some(want) = add.get(res).filter(|w| **w > 0) else {
                continue;
            };
            let u = used.get(res).copied().unwrap_or(0);
            if u + want > *limit {
                requested.push(format!("{res}={}", format(res, *want)));
                used_s.push(format!("{res}={}", format(res, u)));
                limited.push(format!("{res}={}", format(res, *limit)));
            }
        }
        if !requested.is_empty() {
            return Err(format!(
                "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
                requested.join(","),
                used_s.join(","),
                limited.join(",")
            ));
        }
    }
    Ok(())
}

/// A quota's `status`: `hard` and what `objects` (every object of the namespace, by group
/// resource) use of each resource it limits.
pub fn status(quota: &Value, objects: &BTreeMap<String, Vec<Value>>) -> Value {
    let hard = quota.pointer("/spec/hard").cloned().unwrap_or(json!({}));
    let limits = map_of(Some(&hard));
    let mut used = Amounts::new();
    for (gr, list) in objects {
        for o in list {
            for (k, v) in contribution(gr, o) {
                if limits.contains_key(&k) {
                    *used.entry(k).or_default() += v;
                }
            }
        }
    }
    let used: serde_json::Map<String, Value> = limits
        .keys()
        .map(|k| {
            (
                k.clone(),
                json!(format(k, used.get(k).copied().unwrap_or(0))),
            )
        })
        .collect();
    json!({"hard": hard, "used": used})
}

/// The group resources a quota's hard limits count (to know what to list).
pub fn counted_resources(quota: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for k in map_of(quota.pointer("/spec/hard")).keys() {
        let gr = match k.as_str() {
            "pods" | "cpu" | "memory" => "pods".to_string(),
            k if k.starts_with("requests.") || k.starts_with("limits.") => {
                if k.ends_with("storage") && !k.contains("ephemeral") {
                    "persistentvolumeclaims".to_string()
                } else {
                    "pods".to_string()
                }
            }
            "services" | "services.nodeports" | "services.loadbalancers" => "services".into(),
            "configmaps"
            | "secrets"
            | "persistentvolumeclaims"
            | "replicationcontrollers"
            | "resourcequotas" => k.to_string(),
            k => match k.strip_prefix("count/") {
                Some(gr) => gr.to_string(),
                None => continue,
            },
        };
        if !out.contains(&gr) {
            out.push(gr);
        }
    }
    out
}

/// Applies the namespace's LimitRanges to a new pod: default limits and requests for
/// containers that set none, then the min, max and ratio bounds. Errors are Kubernetes'
/// LimitRanger messages.
pub fn apply_limit_ranges(pod: &mut Value, ranges: &[Value]) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    for range in ranges {
        for item in range
            .pointer("/spec/limits")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let ty = item["type"].as_str().unwrap_or_default();
            let default = item.get("default").cloned().unwrap_or(json!({}));
            let default_request = item.get("defaultRequest").cloned().unwrap_or(json!({}));
            let min = map_of(item.get("min"));
            let max = map_of(item.get("max"));
            let ratio = map_of(item.get("maxLimitRequestRatio"));
            match ty {
                "Container" => {
                    for list in ["containers", "initContainers"] {
                        let Some(cs) = pod
                            .pointer_mut(&format!("/spec/{list}"))
                            .and_then(Value::as_array_mut)
                        else {
                            continue;
                        };
                        for c in cs {
                            default_into(c, "limits", &default);
                            default_into(c, "requests", &default_request);
                            let requests = map_of(c.pointer("/resources/requests"));
                            let limits = map_of(c.pointer("/resources/limits"));
                            bounds(
                                "Container",
                                &requests,
                                &limits,
                                &min,
                                &max,
                                &ratio,
                                &mut errors,
                            );
                        }
                    }
                }
                "Pod" => {
                    let requests = pod_compute(pod, "requests");
                    let limits = pod_compute(pod, "limits");
                    bounds("Pod", &requests, &limits, &min, &max, &ratio, &mut errors);
                }
                _ => {}
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn default_into(c: &mut Value, which: &str, defaults: &Value) {
    let Some(defaults) = defaults.as_object().filter(|d| !d.is_empty()) else {
        return;
    };
    if !c["resources"].is_object() {
        c["resources"] = json!({});
    }
    if !c["resources"][which].is_object() {
        c["resources"][which] = json!({});
    }
    if let Some(m) = c["resources"][which].as_object_mut() {
        for (k, v) in defaults {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

fn bounds(
    what: &str,
    requests: &Amounts,
    limits: &Amounts,
    min: &Amounts,
    max: &Amounts,
    ratio: &Amounts,
    errors: &mut Vec<String>,
) {
    for (res, m) in min {
        match requests.get(res) {
            None => errors.push(format!(
                "minimum {res} usage per {what} is {}.  No request is specified",
                format(res, *m)
            )),
            Some(r) if r < m => errors.push(format!(
                "minimum {res} usage per {what} is {}, but request is {}",
                format(res, *m),
                format(res, *r)
            )),
            _ => {}
        }
    }
    for (res, m) in max {
        match limits.get(res) {
            None => errors.push(format!(
                "maximum {res} usage per {what} is {}.  No limit is specified",
                format(res, *m)
            )),
            Some(l) if l > m => errors.push(format!(
                "maximum {res} usage per {what} is {}, but limit is {}",
                format(res, *m),
                format(res, *l)
            )),
            _ => {}
        }
    }
    for (res, m) in ratio {
        if let (Some(l), Some(r)) = (limits.get(res), requests.get(res))
            && *r > 0
        {
            let got = *l as f64 / *r as f64;
            if got > *m as f64 / 1000.0 {
                errors.push(format!(
                    "{res} max limit to request ratio per {what} is {}, but provided ratio is {got:.6}",
                    format(res, *m)
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, cpu: Option<&str>) -> Value {
        let mut c = json!({"name": "main"});
        if let Some(cpu) = cpu {
            c["resources"] = json!({"requests": {"cpu": cpu}, "limits": {"cpu": cpu}});
        }
        json!({"metadata": {"name": name}, "spec": {"containers": [c]}})
    }

    #[test]
    fn a_pod_quota_refuses_the_third_pod_with_kubernetes_message() {
        let q = json!({"metadata": {"name": "two-pods"}, "spec": {"hard": {"pods": "2"}}});
        let existing = vec![pod("a", None), pod("b", None)];
        assert_eq!(
            check("pods", &pod("c", None), std::slice::from_ref(&q), &existing).unwrap_err(),
            "exceeded quota: two-pods, requested: pods=1, used: pods=2, limited: pods=2"
        );
        // Finished pods do not count.
        let mut done = pod("b", None);
        done["status"] = json!({"phase": "Succeeded"});
        assert!(check("pods", &pod("c", None), &[q], &[pod("a", None), done]).is_ok());
    }

    #[test]
    fn compute_quotas_need_requests_and_sum_them() {
        let q = json!({"metadata": {"name": "cpu"}, "spec": {"hard": {"requests.cpu": "1"}}});
        assert_eq!(
            check("pods", &pod("x", None), std::slice::from_ref(&q), &[]).unwrap_err(),
            "failed quota: cpu: must specify requests.cpu for: main"
        );
        let e = check(
            "pods",
            &pod("x", Some("600m")),
            &[q],
            &[pod("a", Some("500m"))],
        );
        assert_eq!(
            e.unwrap_err(),
            "exceeded quota: cpu, requested: requests.cpu=600m, used: requests.cpu=500m, limited: requests.cpu=1"
        );
    }

    #[test]
    fn limit_ranges_default_and_bound() {
        let lr = json!({"spec": {"limits": [{"type": "Container",
            "default": {"cpu": "500m", "memory": "128Mi"}, "defaultRequest": {"cpu": "100m"},
            "max": {"cpu": "1"}}]}});
        let mut p = pod("p", None);
        apply_limit_ranges(&mut p, std::slice::from_ref(&lr)).expect("fits");
        assert_eq!(
            p["spec"]["containers"][0]["resources"]["limits"]["cpu"],
            "500m"
        );
        assert_eq!(
            p["spec"]["containers"][0]["resources"]["limits"]["memory"],
            "128Mi"
        );
        assert_eq!(
            p["spec"]["containers"][0]["resources"]["requests"]["cpu"],
            "100m"
        );
        let mut big = pod("big", Some("2"));
        assert_eq!(
            apply_limit_ranges(&mut big, &[lr]).unwrap_err(),
            vec!["maximum cpu usage per Container is 1, but limit is 2".to_string()]
        );
    }

    #[test]
    fn quantities_print_as_kubernetes_does() {
        assert_eq!(format("pods", 2000), "2");
        assert_eq!(format("requests.cpu", 500), "500m");
        assert_eq!(format("requests.memory", 1_073_741_824_000), "1Gi");
        assert_eq!(format("requests.memory", 1_000_000), "1000");
    }
}
