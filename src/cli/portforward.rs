//! `berth port-forward TARGET [LOCAL:]REMOTE…`: listens on local ports and forwards each
//! connection to a port of a pod, as `kubectl port-forward` does. TARGET is `pod/NAME` (or
//! just `NAME`), `svc/NAME` (a running pod behind the service; the port is the service's,
//! mapped to its `targetPort`) or a workload such as `deployment/NAME` (a running pod it
//! selects). Runs until interrupted.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use clap::Args;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::{CliError, namespace_or_default, resolve_kind};
use crate::api::registry::ResourceType;
use crate::api::table::label_selector_string;
use crate::client::{Client, ForwardEvent, ListOptions, serve_local};

#[derive(Debug, Args)]
pub struct PortForwardArgs {
    /// pod/NAME (or NAME), svc/NAME, deployment/NAME, …
    pub target: String,
    /// Ports to forward: REMOTE, LOCAL:REMOTE, or :REMOTE (0:REMOTE) for a free local port.
    #[arg(required = true, value_name = "[LOCAL:]REMOTE")]
    pub ports: Vec<String>,
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Addresses to listen on, comma-separated (localhost = 127.0.0.1 and ::1).
    #[arg(long, value_delimiter = ',', default_value = "localhost")]
    pub address: Vec<String>,
}

/// One `[LOCAL:]REMOTE` as typed: the local port (0: any free one) and the remote port,
/// a number or a port name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub local: u16,
    pub remote: String,
}

impl PortSpec {
    pub fn parse(spec: &str) -> Result<PortSpec, CliError> {
        let (local, remote) = match spec.split_once(':') {
            Some((l, r)) => (Some(l), r),
            None => (None, spec),
        };
        if remote.is_empty() {
            return Err(CliError::Usage(format!(
                "invalid port \"{spec}\": give the remote port, as REMOTE or LOCAL:REMOTE"
            )));
        }
        if remote.chars().all(|c| c.is_ascii_digit()) && !matches!(remote.parse::<u16>(), Ok(1..)) {
            return Err(CliError::Usage(format!(
                "invalid port \"{spec}\": the remote port {remote} is not from 1 to 65535"
            )));
        }
        let local = match local {
            None => remote.parse::<u16>().map_err(|_| {
                CliError::Usage(format!(
                    "invalid port \"{spec}\": the local port must be a number; with a named remote port write LOCAL:{remote}"
                ))
            })?,
            Some("") => 0,
            Some(l) => l.parse::<u16>().map_err(|_| {
                CliError::Usage(format!(
                    "invalid port \"{spec}\": the local port \"{l}\" is not a number from 0 to 65535"
                ))
            })?,
        };
        Ok(PortSpec {
            local,
            remote: remote.to_string(),
        })
    }
}

/// What the user named: a pod, a service, or a workload that selects pods.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Pod(String),
    Service(String),
    Workload(&'static ResourceType, String),
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, CliError> {
        let Some((kind, name)) = text.split_once('/') else {
            return Ok(Target::Pod(text.to_string()));
        };
        if name.is_empty() {
            return Err(CliError::Usage(format!(
                "invalid target \"{text}\": name the object, e.g. pod/web or svc/web"
            )));
        }
        let rt = resolve_kind(kind)?;
        match (rt.group, rt.kind) {
            ("", "Pod") => Ok(Target::Pod(name.to_string())),
            ("", "Service") => Ok(Target::Service(name.to_string())),
            ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
            | ("batch", "Job") => Ok(Target::Workload(rt, name.to_string())),
            _ => Err(CliError::Usage(format!(
                "cannot port-forward to a {}; name a pod, service, deployment, replicaset, statefulset, daemonset or job",
                rt.singular
            ))),
        }
    }
}

/// A pod that can take connections: Running and not being deleted.
fn is_running(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running" && pod["metadata"]["deletionTimestamp"].is_null()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The pod to forward to among `pods`: running ones only, ready before unready, then the
/// oldest (as kubectl prefers).
pub fn pick_pod(pods: &[Value]) -> Option<&Value> {
    let mut running: Vec<&Value> = pods.iter().filter(|p| is_running(p)).collect();
    running.sort_by_key(|p| {
        (
            !is_ready(p),
            p["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    });
    running.first().copied()
}

/// The number of the container port named `name` in the pod.
pub fn named_container_port(pod: &Value, name: &str) -> Option<u16> {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["ports"].as_array())
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|n| u16::try_from(n).ok())
}

/// The pod port for `remote` as typed against a pod: a number, or a container port name.
pub fn pod_port(pod: &Value, remote: &str) -> Result<u16, CliError> {
    if let Ok(n) = remote.parse::<u16>() {
        return Ok(n);
    }
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    named_container_port(pod, remote).ok_or_else(|| {
        CliError::Usage(format!(
            "port \"{remote}\" is not a number, and pod {name} has no container port named {remote}"
        ))
    })
}

/// The pod port for `remote` as typed against a service (a service port number or name),
/// through its `targetPort` (a number, or a container port name looked up in `pod`).
pub fn service_target_port(svc: &Value, pod: &Value, remote: &str) -> Result<u16, CliError> {
    let svc_name = svc["metadata"]["name"].as_str().unwrap_or_default();
    let number = remote.parse::<u64>().ok();
    let port = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| match number {
            Some(n) => p["port"].as_u64() == Some(n),
            None => p["name"] == remote,
        })
        .ok_or_else(|| {
            CliError::Usage(format!(
                "service {svc_name} does not have a service port {remote}"
            ))
        })?;
    let target = &port["targetPort"];
    if let Some(n) = target.as_u64() {
        return u16::try_from(n)
            .map_err(|_| CliError::Failed(format!("service {svc_name} has a bad targetPort {n}")));
    }
    if let Some(s) = target.as_str() {
        if let Ok(n) = s.parse::<u16>() {
            return Ok(n);
        }
        let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
        return named_container_port(pod, s).ok_or_else(|| {
            CliError::Failed(format!(
                "service {svc_name} targets port \"{s}\", which pod {pod_name} does not name"
            ))
        });
    }
    port["port"]
        .as_u64()
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| CliError::Failed(format!("service {svc_name} has a port without a number")))
}

/// A running pod matching a label selector, or an error naming `what` selects it.
async fn pod_for_selector(
    client: &Client,
    ns: &str,
    selector: String,
    what: &str,
) -> Result<Value, CliError> {
    let pods_rt = resolve_kind("pods")?;
    let list = client
        .list(
            pods_rt,
            Some(ns),
            &ListOptions {
                label_selector: Some(selector),
                field_selector: None,
            },
        )
        .await?;
    pick_pod(&list.items)
        .cloned()
        .ok_or_else(|| CliError::Failed(format!("{what} has no running pod to forward to")))
}

/// The pod to forward to and the pod port of each spec.
async fn resolve(
    client: &Client,
    ns: &str,
    target: &Target,
    specs: &[PortSpec],
) -> Result<(Value, Vec<u16>), CliError> {
    let pods_rt = resolve_kind("pods")?;
    match target {
        Target::Pod(name) => {
            let pod = client.get(pods_rt, Some(ns), name).await?;
            if !is_running(&pod) {
                let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
                return Err(CliError::Failed(format!(
                    "unable to forward port because pod {name} is not running. Current status={phase}"
                )));
            }
            let ports = specs
                .iter()
                .map(|s| pod_port(&pod, &s.remote))
                .collect::<Result<_, _>>()?;
            Ok((pod, ports))
        }
        Target::Service(name) => {
            let svc = client
                .get(resolve_kind("services")?, Some(ns), name)
                .await?;
            let selector = svc["spec"]["selector"]
                .as_object()
                .filter(|m| !m.is_empty())
                .ok_or_else(|| {
                    CliError::Failed(format!(
                        "service {name} has no selector, so it has no pods to forward to"
                    ))
                })?;
            let selector = label_selector_string(Some(&json!({ "matchLabels": selector })));
            let pod = pod_for_selector(client, ns, selector, &format!("service {name}")).await?;
            let ports = specs
                .iter()
                .map(|s| service_target_port(&svc, &pod, &s.remote))
                .collect::<Result<_, _>>()?;
            Ok((pod, ports))
        }
        Target::Workload(rt, name) => {
            let obj = client.get(rt, Some(ns), name).await?;
            let selector = label_selector_string(obj.pointer("/spec/selector"));
            if selector.is_empty() {
                return Err(CliError::Failed(format!(
                    "{} {name} has no selector, so it has no pods to forward to",
                    rt.singular
                )));
            }
            let pod =
                pod_for_selector(client, ns, selector, &format!("{} {name}", rt.singular)).await?;
            let ports = specs
                .iter()
                .map(|s| pod_port(&pod, &s.remote))
                .collect::<Result<_, _>>()?;
            Ok((pod, ports))
        }
    }
}

/// The addresses to listen on; `localhost` is IPv4 and IPv6 loopback (the latter optional).
fn addresses(flags: &[String]) -> Result<Vec<(IpAddr, bool)>, CliError> {
    let mut out = Vec::new();
    for a in flags.iter().map(|a| a.trim()).filter(|a| !a.is_empty()) {
        if a == "localhost" {
            out.push((IpAddr::V4(Ipv4Addr::LOCALHOST), true));
            out.push((IpAddr::V6(Ipv6Addr::LOCALHOST), false));
            continue;
        }
        let ip = a.parse::<IpAddr>().map_err(|_| {
            CliError::Usage(format!(
                "invalid address \"{a}\": give localhost or an IP address such as 127.0.0.1"
            ))
        })?;
        out.push((ip, true));
    }
    if out.is_empty() {
        return Err(CliError::Usage(
            "--address needs at least one address".into(),
        ));
    }
    Ok(out)
}

pub async fn port_forward(client: &Client, args: PortForwardArgs) -> Result<(), CliError> {
    let ns = namespace_or_default(&args.namespace);
    let target = Target::parse(&args.target)?;
    let specs = args
        .ports
        .iter()
        .map(|p| PortSpec::parse(p))
        .collect::<Result<Vec<_>, _>>()?;
    let addrs = addresses(&args.address)?;
    let (pod, remotes) = resolve(client, &ns, &target, &specs).await?;
    let pod_name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let mut servers = tokio::task::JoinSet::new();
    for (spec, remote) in specs.iter().zip(remotes) {
        let mut local = spec.local;
        for (ip, required) in &addrs {
            let listener = match TcpListener::bind(SocketAddr::new(*ip, local)).await {
                Ok(l) => l,
                Err(_) if !required => continue,
                Err(e) => {
                    return Err(CliError::Failed(format!(
                        "unable to listen on port {local} of {ip}: {e}"
                    )));
                }
            };
            let addr = listener
                .local_addr()
                .map_err(|e| CliError::Failed(format!("unable to listen on {ip}: {e}")))?;
            local = addr.port();
            println!("Forwarding from {addr} -> {remote}");
            let local_port = local;
            servers.spawn(serve_local(
                client.clone(),
                listener,
                ns.clone(),
                pod_name.clone(),
                remote,
                move |event| match event {
                    ForwardEvent::Connection(port) => println!("Handling connection for {port}"),
                    ForwardEvent::Error(e) => eprintln!(
                        "error: an error occurred forwarding {local_port} -> {remote}: {e}"
                    ),
                },
            ));
        }
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = servers.join_next() => Err(CliError::Failed("the forwarder stopped".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs_as_kubectl() {
        let p = |s: &str| PortSpec::parse(s).expect(s);
        assert_eq!(
            p("8080"),
            PortSpec {
                local: 8080,
                remote: "8080".into()
            }
        );
        assert_eq!(p("9000:80").local, 9000);
        assert_eq!(p(":80").local, 0);
        assert_eq!(p("0:80").local, 0);
        assert_eq!(p("5000:http").remote, "http");
        for bad in [
            "",
            "80:",
            "x:80",
            "http",
            "70000:80",
            "8080:0",
            "8080:99999",
        ] {
            assert!(PortSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn targets_by_kind() {
        assert_eq!(
            Target::parse("web").expect("pod"),
            Target::Pod("web".into())
        );
        assert_eq!(
            Target::parse("po/web").expect("pod"),
            Target::Pod("web".into())
        );
        assert_eq!(
            Target::parse("svc/web").expect("svc"),
            Target::Service("web".into())
        );
        assert!(matches!(
            Target::parse("deploy/web").expect("deploy"),
            Target::Workload(rt, n) if rt.kind == "Deployment" && n == "web"
        ));
        assert!(Target::parse("configmap/web").is_err());
        assert!(Target::parse("pod/").is_err());
    }

    fn pod(name: &str, phase: &str, ready: bool, created: &str) -> Value {
        json!({
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
        })
    }

    #[test]
    fn running_ready_pods_first() {
        let pods = vec![
            pod("a", "Pending", false, "2024-01-01T00:00:00Z"),
            pod("b", "Running", false, "2024-01-01T00:00:00Z"),
            pod("c", "Running", true, "2024-01-02T00:00:00Z"),
            pod("d", "Running", true, "2024-01-01T00:00:00Z"),
        ];
        assert_eq!(pick_pod(&pods).expect("one")["metadata"]["name"], "d");
        assert!(pick_pod(&pods[..1]).is_none());
    }

    #[test]
    fn service_ports_map_to_target_ports() {
        let p = pod("a", "Running", true, "");
        let svc = json!({"metadata": {"name": "web"}, "spec": {"ports": [
            {"name": "web", "port": 80, "targetPort": "http"},
            {"name": "raw", "port": 81, "targetPort": 9000},
            {"name": "same", "port": 82},
        ]}});
        assert_eq!(service_target_port(&svc, &p, "80").expect("named"), 8080);
        assert_eq!(service_target_port(&svc, &p, "web").expect("by name"), 8080);
        assert_eq!(service_target_port(&svc, &p, "81").expect("number"), 9000);
        assert_eq!(service_target_port(&svc, &p, "82").expect("same"), 82);
        assert_eq!(
            service_target_port(&svc, &p, "8080")
                .expect_err("no such port")
                .to_string(),
            "service web does not have a service port 8080"
        );
        assert_eq!(pod_port(&p, "http").expect("named"), 8080);
        assert!(pod_port(&p, "grpc").is_err());
    }
}
