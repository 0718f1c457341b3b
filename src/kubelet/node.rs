//! Node registration: the kubelet describes this host as a `Node` object.
//!
//! Capacity comes from the host (CPUs, memory, the state disk, 110 pods); labels and
//! `nodeInfo` as Kubernetes sets them. The status is written when the node first registers
//! and afterwards only when it changes: heartbeat times are not rewritten every few seconds
//! (an idle node must not wear its flash storage), so `lastHeartbeatTime` is the time of
//! the last change.

use std::path::Path;

use serde_json::{Value, json};

use crate::api::registry::{self, ResourceType};
use crate::api::{ApiError, meta};
use crate::store::{Store, StoreError, Subresource};

/// What the kubelet knows about its host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostInfo {
    pub name: String,
    pub cpus: usize,
    pub memory_kib: u64,
    pub storage_bytes: u64,
    pub kernel: String,
    pub os_image: String,
    pub arch: String,
    /// The node's pod capacity.
    pub max_pods: u32,
    /// The node's first non-loopback IPv4 address (its `InternalIP`), if any.
    pub internal_ip: Option<String>,
}

impl HostInfo {
    /// Reads the host; `state_dir` is where pods' data will live (its filesystem's size is
    /// the node's ephemeral storage).
    pub fn read(name: Option<&str>, state_dir: &Path) -> HostInfo {
        let uname = nix::sys::utsname::uname().ok();
        let hostname = uname
            .as_ref()
            .map(|u| u.nodename().to_string_lossy().to_ascii_lowercase())
            .unwrap_or_else(|| "localhost".into());
        let memory_kib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
            })
            .unwrap_or(0);
        // The field types differ between architectures; u64 holds them all.
        #[allow(clippy::unnecessary_cast)]
        let storage_bytes = nix::sys::statvfs::statvfs(state_dir)
            .map(|s| (s.blocks() as u64).saturating_mul(s.fragment_size() as u64))
            .unwrap_or(0);
        let os_image = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| "Linux".into());
        HostInfo {
            name: name.map(str::to_string).unwrap_or(hostname),
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            memory_kib,
            storage_bytes,
            kernel: uname
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            os_image,
            arch: match std::env::consts::ARCH {
                "x86_64" => "amd64".into(),
                "aarch64" => "arm64".into(),
                other => other.into(),
            },
            max_pods: MAX_PODS,
            internal_ip: super::first_host_ipv4(),
        }
    }
}

/// The number of pods a node takes by default, as Kubernetes' (config `maxPods`).
pub const MAX_PODS: u32 = 110;

/// The Node object for `host` (status included).
pub fn node_object(host: &HostInfo, now: &str) -> Value {
    let capacity = json!({
        "cpu": host.cpus.to_string(),
        "memory": format!("{}Ki", host.memory_kib),
        "ephemeral-storage": host.storage_bytes.to_string(),
        "pods": host.max_pods.to_string(),
    });
    let condition = |t: &str, status: &str, reason: &str, message: &str| {
        json!({"type": t, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": host.name,
            "labels": {
                "kubernetes.io/hostname": host.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": host.arch,
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": host.arch,
                "node-role.kubernetes.io/control-plane": "",
            },
        },
        "spec": {},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": host
                .internal_ip
                .iter()
                .map(|ip| json!({"type": "InternalIP", "address": ip}))
                .chain([json!({"type": "Hostname", "address": host.name})])
                .collect::<Vec<_>>(),
            "nodeInfo": {
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
                "kernelVersion": host.kernel,
                "osImage": host.os_image,
                "containerRuntimeVersion": format!("berth://{}", env!("CARGO_PKG_VERSION")),
                "kubeletVersion": format!("v1.34.0-berth.{}", env!("CARGO_PKG_VERSION")),
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": host.arch,
            },
        },
    })
}

/// Status without the times that change on every write, to compare two statuses.
fn comparable(status: &Value) -> Value {
    let mut s = status.clone();
    if let Some(conds) = s.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in conds {
            if let Some(m) = c.as_object_mut() {
                m.remove("lastHeartbeatTime");
                m.remove("lastTransitionTime");
            }
        }
    }
    s
}

fn node_type() -> Result<&'static ResourceType, StoreError> {
    registry::by_kind("v1", "Node")
        .ok_or_else(|| ApiError::internal("the Node kind is not registered").into())
}

/// Creates the Node, or brings an existing one's status up to date; writes nothing when
/// nothing changed. Returns the stored Node.
pub fn register(store: &Store, host: &HostInfo) -> Result<Value, StoreError> {
    let rt = node_type()?;
    let now = meta::now_rfc3339();
    let wanted = node_object(host, &now);
    let current = match store.get(rt, None, &host.name) {
        Ok(n) => n,
        Err(StoreError::Api(ApiError::NotFound(_))) => {
            let created = store.create(rt, None, wanted.clone(), false)?;
            // Status is a subresource: the create dropped it.
            return store.update(
                rt,
                None,
                &host.name,
                wanted_with_meta(&created, &wanted),
                Subresource::Status,
                false,
            );
        }
        Err(e) => return Err(e),
    };
    if comparable(&current["status"]) == comparable(&wanted["status"]) {
        return Ok(current);
    }
    tracing::info!(node = %host.name, "node status changed; updating");
    store.update(
        rt,
        None,
        &host.name,
        wanted_with_meta(&current, &wanted),
        Subresource::Status,
        false,
    )
}

fn wanted_with_meta(stored: &Value, wanted: &Value) -> Value {
    let mut obj = stored.clone();
    obj["status"] = wanted["status"].clone();
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    fn host() -> HostInfo {
        HostInfo {
            name: "node1".into(),
            cpus: 2,
            memory_kib: 24 * 1024 * 1024,
            storage_bytes: 100 << 30,
            kernel: "6.1.0".into(),
            os_image: "Debian GNU/Linux 12 (bookworm)".into(),
            arch: "amd64".into(),
            max_pods: MAX_PODS,
            internal_ip: Some("192.168.1.10".into()),
        }
    }

    #[test]
    fn registers_once_and_writes_only_on_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(
            dir.path(),
            StoreOptions {
                history_limit: 100,
                map_size: 32 << 20,
                ..Default::default()
            },
        )
        .expect("store");
        let node = register(&store, &host()).expect("register");
        assert_eq!(node["status"]["capacity"]["cpu"], "2");
        assert_eq!(node["status"]["capacity"]["pods"], "110");
        assert_eq!(node["status"]["allocatable"]["memory"], "25165824Ki");
        assert_eq!(
            node["metadata"]["labels"]["kubernetes.io/hostname"],
            "node1"
        );
        let ready = node["status"]["conditions"]
            .as_array()
            .expect("conds")
            .iter()
            .find(|c| c["type"] == "Ready")
            .cloned();
        assert_eq!(ready.expect("ready")["status"], "True");
        let rev = store.revision().expect("rev");
        register(&store, &host()).expect("again");
        assert_eq!(
            store.revision().expect("rev"),
            rev,
            "an unchanged node writes nothing"
        );
        let mut bigger = host();
        bigger.cpus = 4;
        let node = register(&store, &bigger).expect("changed");
        assert_eq!(node["status"]["capacity"]["cpu"], "4");
        assert!(store.revision().expect("rev") > rev);
    }

    #[test]
    fn reads_this_host() {
        let h = HostInfo::read(None, Path::new("/"));
        assert!(h.cpus >= 1);
        assert!(h.memory_kib > 0);
        assert!(!h.name.is_empty());
    }
}
