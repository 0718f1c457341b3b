//! A pod's container as the runtime needs it: Kubernetes' pod spec (command/args against
//! the image, env with `$(VAR)` expansion and fieldRef/configMapKeyRef/secretKeyRef/envFrom,
//! securityContext, resources and QoS) turned into a [`ContainerConfig`]. Pure apart from
//! the lookups passed in, so every rule is unit-tested.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::core::v1::{Container, Pod, SecurityContext};
use serde_json::Value;

use crate::api::validation::parse_quantity;
use crate::image::{ImageConfig, command_for, expand_env_refs, merge_env};
use crate::runtime::spec::{DEFAULT_CPU_PERIOD, milli_cpu_to_quota, milli_cpu_to_shares};
use crate::runtime::{ContainerConfig, Resources, SeccompProfile, Security, User};

/// Why a container's configuration cannot be built: Kubernetes shows it as the waiting
/// reason `CreateContainerConfigError` with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Kubernetes' QoS classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl Qos {
    pub fn as_str(self) -> &'static str {
        match self {
            Qos::Guaranteed => "Guaranteed",
            Qos::Burstable => "Burstable",
            Qos::BestEffort => "BestEffort",
        }
    }
}

fn quantity(
    map: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    key: &str,
) -> Option<i128> {
    map.and_then(|m| m.get(key))
        .and_then(|q| parse_quantity(&q.0).ok())
        .map(|v| v.milli())
}

/// The pod's QoS class (Kubernetes' `GetPodQOS`).
pub fn qos_class(pod: &Pod) -> Qos {
    let Some(spec) = &pod.spec else {
        return Qos::BestEffort;
    };
    let mut any = false;
    let mut guaranteed = true;
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let r = c.resources.as_ref();
        let requests = r.and_then(|r| r.requests.as_ref());
        let limits = r.and_then(|r| r.limits.as_ref());
        for res in ["cpu", "memory"] {
            let req = quantity(requests, res);
            let lim = quantity(limits, res);
            if req.is_some_and(|v| v > 0) || lim.is_some_and(|v| v > 0) {
                any = true;
            }
            // A missing request defaults to the limit.
            match (req.or(lim), lim) {
                (Some(q), Some(l)) if q == l && l > 0 => {}
                _ => guaranteed = false,
            }
        }
    }
    if !any {
        Qos::BestEffort
    } else if guaranteed {
        Qos::Guaranteed
    } else {
        Qos::Burstable
    }
}

/// cgroup values of one container: shares from the cpu request (or limit), quota from the
/// cpu limit, memory limit.
pub fn container_resources(c: &Container) -> Resources {
    let r = c.resources.as_ref();
    let requests = r.and_then(|r| r.requests.as_ref());
    let limits = r.and_then(|r| r.limits.as_ref());
    let cpu_request = quantity(requests, "cpu").or(quantity(limits, "cpu"));
    let cpu_limit = quantity(limits, "cpu");
    let to_i64 = |v: i128| i64::try_from(v).unwrap_or(i64::MAX);
    Resources {
        cpu_shares: Some(milli_cpu_to_shares(cpu_request.map(to_i64).unwrap_or(0))),
        cpu_quota: cpu_limit.and_then(|l| milli_cpu_to_quota(to_i64(l), DEFAULT_CPU_PERIOD)),
        cpu_period: cpu_limit.map(|_| DEFAULT_CPU_PERIOD),
        memory_limit: quantity(limits, "memory").map(|m| to_i64(m / 1000)),
        pids_limit: None,
    }
}

/// The pod cgroup's limits: the sums of the app containers' limits (the largest init
/// container's when larger) when every container has one, else none.
pub fn pod_resources(pod: &Pod) -> Resources {
    let Some(spec) = &pod.spec else {
        return Resources::default();
    };
    let sum = |key: &str| -> Option<i128> {
        let mut total = 0i128;
        for c in &spec.containers {
            total += quantity(c.resources.as_ref().and_then(|r| r.limits.as_ref()), key)?;
        }
        for c in spec.init_containers.iter().flatten() {
            let v = quantity(c.resources.as_ref().and_then(|r| r.limits.as_ref()), key)?;
            total = total.max(v);
        }
        Some(total)
    };
    let to_i64 = |v: i128| i64::try_from(v).unwrap_or(i64::MAX);
    let cpu = sum("cpu");
    let cpu_requests: i128 = spec
        .containers
        .iter()
        .map(|c| {
            let r = c.resources.as_ref();
            quantity(r.and_then(|r| r.requests.as_ref()), "cpu")
                .or(quantity(r.and_then(|r| r.limits.as_ref()), "cpu"))
                .unwrap_or(0)
        })
        .sum();
    Resources {
        cpu_shares: Some(milli_cpu_to_shares(to_i64(cpu_requests))),
        cpu_quota: cpu.and_then(|l| milli_cpu_to_quota(to_i64(l), DEFAULT_CPU_PERIOD)),
        cpu_period: cpu.map(|_| DEFAULT_CPU_PERIOD),
        memory_limit: sum("memory").map(|m| to_i64(m / 1000)),
        pids_limit: None,
    }
}

/// `oom_score_adj` by QoS, as the kubelet sets it.
pub fn oom_score_adj(qos: Qos, c: &Container, memory_capacity: u64) -> i32 {
    match qos {
        Qos::Guaranteed => -997,
        Qos::BestEffort => 1000,
        Qos::Burstable => {
            let request = quantity(
                c.resources.as_ref().and_then(|r| r.requests.as_ref()),
                "memory",
            )
            .map(|m| m / 1000)
            .unwrap_or(0);
            if memory_capacity == 0 {
                return 999;
            }
            let adj = 1000 - (1000 * request / i128::from(memory_capacity));
            adj.clamp(2, 999) as i32
        }
    }
}

/// What the config builder may look up in the store.
pub trait Lookup {
    /// A ConfigMap's data (and binaryData is not env-usable); `None` when absent.
    fn config_map(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, String>>;
    /// A Secret's decoded data; `None` when absent.
    fn secret(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, String>>;
}

/// The pod fields `fieldRef` can name.
pub(crate) fn field_ref(pod: &Pod, path: &str, host_ip: &str) -> Result<String, ConfigError> {
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let label = |prefix: &str, map: Option<&BTreeMap<String, String>>| {
        path.strip_prefix(prefix)
            .and_then(|k| k.strip_suffix("']"))
            .map(|k| map.and_then(|m| m.get(k)).cloned().unwrap_or_default())
    };
    if let Some(v) = label("metadata.labels['", m.labels.as_ref()) {
        return Ok(v);
    }
    if let Some(v) = label("metadata.annotations['", m.annotations.as_ref()) {
        return Ok(v);
    }
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into()),
        "status.podIP" | "status.podIPs" => {
            status.and_then(|s| s.pod_ip.clone()).unwrap_or_default()
        }
        "status.hostIP" | "status.hostIPs" => host_ip.to_string(),
        other => {
            return Err(ConfigError(format!(
                "unsupported fieldRef path {other:?}: use metadata.name, metadata.namespace, metadata.uid, metadata.labels['k'], metadata.annotations['k'], spec.nodeName, spec.serviceAccountName, status.podIP or status.hostIP"
            )));
        }
    })
}

pub(crate) fn resource_field(
    c: &Container,
    resource: &str,
    divisor: Option<&str>,
) -> Result<String, ConfigError> {
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| ConfigError(format!("unsupported resourceFieldRef {resource:?}")))?;
    let r = c.resources.as_ref();
    let map = match kind {
        "limits" => r.and_then(|r| r.limits.as_ref()),
        "requests" => r.and_then(|r| r.requests.as_ref()),
        _ => {
            return Err(ConfigError(format!(
                "unsupported resourceFieldRef {resource:?}"
            )));
        }
    };
    let milli = quantity(map, name).unwrap_or(0);
    let div = divisor
        .and_then(|d| parse_quantity(d).ok())
        .map(|d| d.milli())
        .filter(|d| *d > 0)
        .unwrap_or(1000);
    // Kubernetes rounds up.
    Ok(((milli + div - 1) / div).to_string())
}

/// The container's environment: `envFrom` then `env`, `$(VAR)` expanded against what came
/// before, as Kubernetes builds it.
pub fn container_env(
    pod: &Pod,
    c: &Container,
    host_ip: &str,
    lookup: &dyn Lookup,
) -> Result<Vec<(String, String)>, ConfigError> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    let set = |out: &mut Vec<(String, String)>, k: String, v: String| match out
        .iter_mut()
        .find(|(n, _)| *n == k)
    {
        Some(slot) => slot.1 = v,
        None => out.push((k, v)),
    };
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (data, optional, what, name) = if let Some(cm) = &from.config_map_ref {
            (
                lookup.config_map(&ns, &cm.name),
                cm.optional.unwrap_or(false),
                "configmap",
                cm.name.clone(),
            )
        } else if let Some(s) = &from.secret_ref {
            (
                lookup.secret(&ns, &s.name),
                s.optional.unwrap_or(false),
                "secret",
                s.name.clone(),
            )
        } else {
            continue;
        };
        match data {
            Some(d) => {
                for (k, v) in d {
                    set(&mut out, format!("{prefix}{k}"), v);
                }
            }
            None if optional => {}
            None => return Err(ConfigError(format!("{what} \"{name}\" not found"))),
        }
    }
    for e in c.env.iter().flatten() {
        let value = if let Some(src) = &e.value_from {
            if let Some(f) = &src.field_ref {
                Some(field_ref(pod, &f.field_path, host_ip)?)
            } else if let Some(r) = &src.resource_field_ref {
                Some(resource_field(
                    c,
                    &r.resource,
                    r.divisor.as_ref().map(|d| d.0.as_str()),
                )?)
            } else if let Some(k) = &src.config_map_key_ref {
                match lookup.config_map(&ns, &k.name) {
                    Some(d) => match d.get(&k.key) {
                        Some(v) => Some(v.clone()),
                        None if k.optional.unwrap_or(false) => None,
                        None => {
                            return Err(ConfigError(format!(
                                "couldn't find key {} in ConfigMap {ns}/{}",
                                k.key, k.name
                            )));
                        }
                    },
                    None if k.optional.unwrap_or(false) => None,
                    None => return Err(ConfigError(format!("configmap \"{}\" not found", k.name))),
                }
            } else if let Some(k) = &src.secret_key_ref {
                match lookup.secret(&ns, &k.name) {
                    Some(d) => match d.get(&k.key) {
                        Some(v) => Some(v.clone()),
                        None if k.optional.unwrap_or(false) => None,
                        None => {
                            return Err(ConfigError(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                k.key, k.name
                            )));
                        }
                    },
                    None if k.optional.unwrap_or(false) => None,
                    None => return Err(ConfigError(format!("secret \"{}\" not found", k.name))),
                }
            } else {
                None
            }
        } else {
            let raw = e.value.clone().unwrap_or_default();
            let known = out.clone();
            Some(expand_env_refs(&raw, |name| {
                known
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
            }))
        };
        if let Some(v) = value {
            set(&mut out, e.name.clone(), v);
        }
    }
    Ok(out)
}

/// Resolves an image `User` (`uid`, `uid:gid`, `name`, `name:group`) against the rootfs's
/// `/etc/passwd` and `/etc/group`.
pub fn image_user(user: &str, rootfs: &Path) -> Result<(u32, Option<u32>), ConfigError> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let lookup = |file: &str, name: &str| -> Option<(u32, Option<u32>)> {
        let text = std::fs::read_to_string(rootfs.join(file)).ok()?;
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name)).then(|| {
                (
                    f.get(2).and_then(|v| v.parse().ok()).unwrap_or(0),
                    f.get(3).and_then(|v| v.parse().ok()),
                )
            })
        })
    };
    let (uid, passwd_gid) = if u.is_empty() {
        (0, Some(0))
    } else if let Ok(uid) = u.parse::<u32>() {
        (uid, None)
    } else {
        lookup("etc/passwd", u).ok_or_else(|| {
            ConfigError(format!(
                "unable to find user {u}: no matching entries in passwd file"
            ))
        })?
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => Some(gid),
            Err(_) => Some(lookup("etc/group", g).map(|(gid, _)| gid).ok_or_else(|| {
                ConfigError(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?),
        },
        None => passwd_gid,
    };
    Ok((uid, gid))
}

fn merged_security(pod: &Pod, c: &Container) -> SecurityContext {
    let mut sc = c.security_context.clone().unwrap_or_default();
    if let Some(psc) = pod.spec.as_ref().and_then(|s| s.security_context.as_ref()) {
        sc.run_as_user = sc.run_as_user.or(psc.run_as_user);
        sc.run_as_group = sc.run_as_group.or(psc.run_as_group);
        sc.run_as_non_root = sc.run_as_non_root.or(psc.run_as_non_root);
        if sc.seccomp_profile.is_none() {
            sc.seccomp_profile = psc.seccomp_profile.clone();
        }
    }
    sc
}

/// Everything about one run of a container except its id, paths and sandbox.
#[derive(Debug, Clone)]
pub struct BuildInput<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub image: &'a ImageConfig,
    pub rootfs: &'a Path,
    pub host_ip: &'a str,
    pub memory_capacity: u64,
}

/// Builds the runtime config (id, rootfs path, cgroup, log, sandbox set by the caller).
pub fn build(input: &BuildInput<'_>, lookup: &dyn Lookup) -> Result<ContainerConfig, ConfigError> {
    let (pod, c) = (input.pod, input.container);
    let env = container_env(pod, c, input.host_ip, lookup)?;
    let expand = |s: &String| {
        expand_env_refs(s, |name| {
            env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
        })
    };
    let command: Vec<String> = c.command.iter().flatten().map(expand).collect();
    let args: Vec<String> = c.args.iter().flatten().map(expand).collect();
    let argv = command_for(&command, &args, input.image).map_err(|e| ConfigError(e.to_string()))?;
    let mut config = ContainerConfig::new(String::new(), input.rootfs.to_path_buf(), argv);
    config.env = merge_env(&input.image.env, &env);
    let cwd = c
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| input.image.working_dir.clone());
    if !cwd.is_empty() {
        config.cwd = cwd.into();
    }

    let sc = merged_security(pod, c);
    let (image_uid, image_gid) = image_user(&input.image.user, input.rootfs)?;
    let uid = sc.run_as_user.map(|u| u as u32).unwrap_or(image_uid);
    let gid = sc
        .run_as_group
        .map(|g| g as u32)
        .or(if sc.run_as_user.is_some() {
            None
        } else {
            image_gid
        })
        .unwrap_or(0);
    if sc.run_as_non_root == Some(true) && uid == 0 {
        let (ns, name, puid) = (
            pod.metadata.namespace.clone().unwrap_or_default(),
            pod.metadata.name.clone().unwrap_or_default(),
            pod.metadata.uid.clone().unwrap_or_default(),
        );
        return Err(ConfigError(format!(
            "container has runAsNonRoot and image will run as root (pod: \"{name}_{ns}({puid})\", container: {})",
            c.name
        )));
    }
    let mut additional: Vec<u32> = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .and_then(|p| p.supplemental_groups.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|g| g as u32)
        .collect();
    additional.sort_unstable();
    additional.dedup();
    config.user = User {
        uid,
        gid,
        additional_gids: additional,
    };
    let privileged = sc.privileged.unwrap_or(false);
    let caps = sc.capabilities.clone().unwrap_or_default();
    let seccomp = match sc.seccomp_profile.as_ref().map(|p| p.type_.as_str()) {
        None | Some("RuntimeDefault") => SeccompProfile::RuntimeDefault,
        Some("Unconfined") => SeccompProfile::Unconfined,
        Some(other) => {
            return Err(ConfigError(format!(
                "seccomp profile type {other:?} is not supported: use RuntimeDefault or Unconfined"
            )));
        }
    };
    config.security = Security {
        privileged,
        add_capabilities: caps.add.unwrap_or_default(),
        drop_capabilities: caps.drop.unwrap_or_default(),
        // berth's default is no_new_privs on; allowPrivilegeEscalation: true (or a
        // privileged container) turns it off.
        no_new_privileges: !privileged && sc.allow_privilege_escalation != Some(true),
        read_only_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
        seccomp,
    };
    config.resources = container_resources(c);
    config.oom_score_adj = Some(oom_score_adj(qos_class(pod), c, input.memory_capacity));
    Ok(config)
}

/// A Secret's `data` (base64) and `stringData`, decoded.
pub fn secret_data(secret: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(d) = secret.get("data").and_then(Value::as_object) {
        for (k, v) in d {
            if let Some(bytes) = v.as_str().and_then(base64_decode) {
                out.insert(k.clone(), String::from_utf8_lossy(&bytes).into_owned());
            }
        }
    }
    if let Some(d) = secret.get("stringData").and_then(Value::as_object) {
        for (k, v) in d {
            out.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
        }
    }
    out
}

/// A ConfigMap's `data`.
pub fn config_map_data(cm: &Value) -> BTreeMap<String, String> {
    cm.get("data")
        .and_then(Value::as_object)
        .map(|d| {
            d.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Standard base64 (what Secrets hold); `None` when malformed.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0;
    for ch in s.bytes().filter(|b| !b.is_ascii_whitespace()) {
        let v = match ch {
            b'A'..=b'Z' => ch - b'A',
            b'a'..=b'z' => ch - b'a' + 26,
            b'0'..=b'9' => ch - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct NoLookup;
    impl Lookup for NoLookup {
        fn config_map(&self, _: &str, name: &str) -> Option<BTreeMap<String, String>> {
            (name == "cfg").then(|| BTreeMap::from([("mode".to_string(), "fast".to_string())]))
        }
        fn secret(&self, _: &str, name: &str) -> Option<BTreeMap<String, String>> {
            (name == "pw")
                .then(|| BTreeMap::from([("password".to_string(), "hunter2".to_string())]))
        }
    }

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn image() -> ImageConfig {
        serde_json::from_value(json!({"entrypoint": ["/bin/sh"], "cmd": ["-c", "echo hi"],
            "env": ["PATH=/bin", "A=image"], "workingDir": "/srv", "user": ""}))
        .unwrap()
    }

    fn build_one(p: &Pod) -> Result<ContainerConfig, ConfigError> {
        let c = &p.spec.as_ref().unwrap().containers[0];
        let img = image();
        build(
            &BuildInput {
                pod: p,
                container: c,
                image: &img,
                rootfs: Path::new("/nonexistent"),
                host_ip: "10.0.0.1",
                memory_capacity: 8 << 30,
            },
            &NoLookup,
        )
    }

    #[test]
    fn env_sources_and_expansion() {
        let p = pod(
            json!({"metadata": {"name": "web", "namespace": "prod", "uid": "u1",
            "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i",
              "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
              "env": [
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "pw", "key": "password"}}},
                {"name": "WHERE", "value": "$(POD).$(NS) $(MISSING) $$(POD)"},
                {"name": "A", "value": "container"}],
              "command": ["echo", "$(WHERE)"]}]}}),
        );
        let cfg = build_one(&p).unwrap();
        for want in [
            "CFG_mode=fast",
            "POD=web",
            "NS=prod",
            "NODE=n1",
            "APP=web",
            "HOST=10.0.0.1",
            "PW=hunter2",
            "WHERE=web.prod $(MISSING) $(POD)",
            "A=container",
            "PATH=/bin",
        ] {
            assert!(cfg.env.contains(&want.to_string()), "{want}: {:?}", cfg.env);
        }
        assert_eq!(cfg.args, vec!["echo", "web.prod $(MISSING) $(POD)"]);
        assert_eq!(cfg.cwd, Path::new("/srv"));
    }

    #[test]
    fn missing_references_are_config_errors() {
        let p = pod(
            json!({"metadata": {"name": "x", "namespace": "d"}, "spec": {"containers": [
            {"name": "c", "image": "i", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}]}]}}),
        );
        assert_eq!(build_one(&p).unwrap_err().0, "configmap \"nope\" not found");
        let p = pod(
            json!({"metadata": {"name": "x", "namespace": "d"}, "spec": {"containers": [
            {"name": "c", "image": "i", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "pw", "key": "user"}}}]}]}}),
        );
        assert_eq!(
            build_one(&p).unwrap_err().0,
            "couldn't find key user in Secret d/pw"
        );
        let p = pod(
            json!({"metadata": {"name": "x", "namespace": "d"}, "spec": {"containers": [
            {"name": "c", "image": "i", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "no", "key": "k", "optional": true}}}]}]}}),
        );
        assert!(build_one(&p).is_ok());
    }

    #[test]
    fn security_context_maps_to_the_runtime() {
        let p = pod(
            json!({"metadata": {"name": "x", "namespace": "d", "uid": "u"}, "spec": {
            "securityContext": {"runAsUser": 1000, "supplementalGroups": [5, 6]},
            "containers": [{"name": "c", "image": "i", "securityContext": {
                "runAsGroup": 2000, "readOnlyRootFilesystem": true,
                "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                "seccompProfile": {"type": "Unconfined"}}}]}}),
        );
        let cfg = build_one(&p).unwrap();
        assert_eq!(cfg.user.uid, 1000);
        assert_eq!(cfg.user.gid, 2000);
        assert_eq!(cfg.user.additional_gids, vec![5, 6]);
        assert!(cfg.security.read_only_rootfs);
        assert!(cfg.security.no_new_privileges);
        assert_eq!(cfg.security.add_capabilities, vec!["NET_ADMIN"]);
        assert_eq!(cfg.security.drop_capabilities, vec!["ALL"]);
        assert_eq!(cfg.security.seccomp, SeccompProfile::Unconfined);

        let root = pod(
            json!({"metadata": {"name": "x", "namespace": "d", "uid": "u"}, "spec": {
            "securityContext": {"runAsNonRoot": true}, "containers": [{"name": "c", "image": "i"}]}}),
        );
        assert_eq!(
            build_one(&root).unwrap_err().0,
            "container has runAsNonRoot and image will run as root (pod: \"x_d(u)\", container: c)"
        );
        let esc = pod(
            json!({"metadata": {"name": "x"}, "spec": {"containers": [{"name": "c", "image": "i",
            "securityContext": {"allowPrivilegeEscalation": true}}]}}),
        );
        assert!(!build_one(&esc).unwrap().security.no_new_privileges);
    }

    #[test]
    fn qos_classes_and_cgroup_values() {
        let g = pod(
            json!({"spec": {"containers": [{"name": "c", "image": "i", "resources": {
            "limits": {"cpu": "500m", "memory": "64Mi"}}}]}}),
        );
        assert_eq!(qos_class(&g), Qos::Guaranteed);
        let b = pod(
            json!({"spec": {"containers": [{"name": "c", "image": "i", "resources": {
            "requests": {"memory": "32Mi"}, "limits": {"memory": "64Mi"}}}]}}),
        );
        assert_eq!(qos_class(&b), Qos::Burstable);
        let e = pod(json!({"spec": {"containers": [{"name": "c", "image": "i"}]}}));
        assert_eq!(qos_class(&e), Qos::BestEffort);

        let c = &g.spec.as_ref().unwrap().containers[0];
        let r = container_resources(c);
        assert_eq!(r.cpu_shares, Some(512));
        assert_eq!(r.cpu_quota, Some(50_000));
        assert_eq!(r.memory_limit, Some(64 << 20));
        assert_eq!(oom_score_adj(Qos::Guaranteed, c, 1 << 30), -997);
        let bc = &b.spec.as_ref().unwrap().containers[0];
        assert_eq!(oom_score_adj(Qos::Burstable, bc, 1 << 30), 969);
        assert_eq!(pod_resources(&g).memory_limit, Some(64 << 20));
        assert_eq!(pod_resources(&b).memory_limit, Some(64 << 20));
        assert_eq!(pod_resources(&e).memory_limit, None);
    }

    #[test]
    fn image_users_resolve_against_the_rootfs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nwww:x:33:34::/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(image_user("", dir.path()), Ok((0, Some(0))));
        assert_eq!(image_user("www", dir.path()), Ok((33, Some(34))));
        assert_eq!(image_user("www:staff", dir.path()), Ok((33, Some(50))));
        assert_eq!(image_user("1000:1000", dir.path()), Ok((1000, Some(1000))));
        assert!(image_user("ghost", dir.path()).is_err());
    }

    #[test]
    fn secrets_decode() {
        let s = json!({"data": {"a": "aHVudGVyMg=="}, "stringData": {"b": "plain"}});
        let d = secret_data(&s);
        assert_eq!(d["a"], "hunter2");
        assert_eq!(d["b"], "plain");
    }
}
