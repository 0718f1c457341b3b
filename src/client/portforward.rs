//! Port-forward over a WebSocket on the daemon's socket, with Kubernetes' WebSocket
//! port-forward framing (`v4.channel.k8s.io`; see the server's `portforward` module): one
//! WebSocket per forwarded TCP connection, data on channel 0, errors on channel 1, the first
//! message of each channel being the port.
//!
//! [`Client::port_forward`] opens one such connection; [`PortForwardConn::pump`] copies
//! bytes between it and a local stream; [`serve_local`] accepts local connections and
//! forwards each, as `berth port-forward` and the TUI do. [`Client::resolve_forward`] finds
//! the pod and pod ports behind what the user named (a pod, a service, a workload), as
//! kubectl does.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use super::exec::Ws;
use super::{Client, ClientError, ListOptions, encode_segment};
use crate::api::registry::{self, ResourceType};
use crate::api::table::label_selector_string;

const PROTOCOL: &str = "v4.channel.k8s.io";
const DATA: u8 = 0;
const ERROR: u8 = 1;
/// `[CLOSE, DATA]`: the local side stopped sending (berth's half-close message).
const CLOSE: u8 = 255;

/// Bytes read from the local connection at a time.
const READ_CHUNK: usize = 32 * 1024;

/// One forwarded connection to a port of a pod, not yet pumping.
pub struct PortForwardConn {
    ws: Ws,
    port: u16,
}

impl Client {
    /// Opens a connection to `port` of pod `ns/pod` (which must be running). Whether the
    /// pod accepts on that port is known only once [`PortForwardConn::pump`] runs.
    pub async fn port_forward(
        &self,
        ns: &str,
        pod: &str,
        port: u16,
    ) -> Result<PortForwardConn, ClientError> {
        let uri = format!(
            "ws://berth/api/v1/namespaces/{}/pods/{}/portforward?ports={port}",
            encode_segment(ns),
            encode_segment(pod),
        );
        let ws = self.websocket(uri, PROTOCOL, "port-forward").await?;
        Ok(PortForwardConn { ws, port })
    }
}

fn frame(channel: u8, payload: &[u8]) -> Message {
    let mut data = Vec::with_capacity(payload.len() + 1);
    data.push(channel);
    data.extend_from_slice(payload);
    Message::Binary(Bytes::from(data))
}

impl PortForwardConn {
    /// Copies bytes both ways between `local` and the pod's port until the pod's side
    /// ends (or the local side goes away). An error the daemon reported (port refused,
    /// connection broken) is returned after the copy ends.
    pub async fn pump<S>(self, local: S) -> Result<(), ClientError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let port = self.port;
        let broke = |e: String| ClientError::PortForward {
            port,
            message: format!("the port-forward connection broke: {e}"),
        };
        let (mut sink, mut incoming) = self.ws.split();
        let (mut reader, mut writer) = tokio::io::split(local);
        let mut greeted = [false; 2];
        let mut error = String::new();
        let mut local_open = true;
        let mut local_writable = true;
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            tokio::select! {
                n = reader.read(&mut buf), if local_open => match n {
                    Err(_) => break, // The local peer is gone.
                    Ok(0) => {
                        local_open = false;
                        if sink.send(frame(CLOSE, &[DATA])).await.is_err() {
                            break;
                        }
                    }
                    Ok(n) => sink
                        .send(frame(DATA, &buf[..n]))
                        .await
                        .map_err(|e| broke(e.to_string()))?,
                },
                message = incoming.next() => match message {
                    Some(Ok(Message::Binary(data))) => {
                        let Some((&channel, payload)) = data.split_first() else { continue };
                        let index = usize::from(channel);
                        if index < greeted.len() && !greeted[index] {
                            greeted[index] = true; // The port number.
                            continue;
                        }
                        if channel == ERROR {
                            error.push_str(&String::from_utf8_lossy(payload));
                        } else if channel == DATA && writer.write_all(payload).await.is_err() {
                            // The local peer is gone; nobody wants the rest.
                            local_writable = false;
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(e)) => {
                        if error.is_empty() {
                            error = format!("the port-forward connection broke: {e}");
                        }
                        break;
                    }
                    Some(Ok(_)) => {}
                },
            }
        }
        if local_writable {
            let _ = writer.flush().await;
            let _ = writer.shutdown().await;
        }
        let _ = sink.close().await;
        if error.is_empty() {
            Ok(())
        } else {
            Err(ClientError::PortForward {
                port,
                message: error,
            })
        }
    }
}

/// What a local forwarder reports.
#[derive(Debug)]
pub enum ForwardEvent {
    /// A local connection was accepted (on this local port).
    Connection(u16),
    /// A forwarded connection failed; the forwarder goes on.
    Error(ClientError),
}

/// Accepts connections on `listener` for ever, forwarding each to `remote` of pod
/// `ns/pod` on a task of its own and telling `report` about each connection and failure.
pub async fn serve_local<F>(
    client: Client,
    listener: TcpListener,
    ns: String,
    pod: String,
    remote: u16,
    report: F,
) where
    F: Fn(ForwardEvent) + Send + Sync + 'static,
{
    let report = Arc::new(report);
    let local_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                report(ForwardEvent::Error(ClientError::PortForward {
                    port: remote,
                    message: format!("accepting a connection on port {local_port} failed: {e}"),
                }));
                // Out of file descriptors and the like: give it a moment, do not spin.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        report(ForwardEvent::Connection(local_port));
        let (client, ns, pod, report) = (client.clone(), ns.clone(), pod.clone(), report.clone());
        tokio::spawn(async move {
            let result = match client.port_forward(&ns, &pod, remote).await {
                Ok(conn) => conn.pump(tcp).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                report(ForwardEvent::Error(e));
            }
        });
    }
}

/// Why a port-forward target or port cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    #[error("invalid port \"{spec}\": give the remote port, as REMOTE or LOCAL:REMOTE")]
    MissingRemote { spec: String },
    #[error("invalid port \"{spec}\": the remote port {remote} is not from 1 to 65535")]
    RemoteOutOfRange { spec: String, remote: String },
    #[error(
        "invalid port \"{spec}\": the local port must be a number; with a named remote port write LOCAL:{remote}"
    )]
    NamedRemoteNeedsLocal { spec: String, remote: String },
    #[error("invalid port \"{spec}\": the local port \"{local}\" is not a number from 0 to 65535")]
    BadLocal { spec: String, local: String },
    #[error("unable to forward port because pod {pod} is not running. Current status={phase}")]
    PodNotRunning { pod: String, phase: String },
    #[error("port \"{port}\" is not a number, and pod {pod} has no container port named {port}")]
    NoNamedPort { pod: String, port: String },
    #[error("service {service} does not have a service port {port}")]
    NoServicePort { service: String, port: String },
    #[error("service {service} targets port \"{name}\", which pod {pod} does not name")]
    NamedTargetPortMissing {
        service: String,
        pod: String,
        name: String,
    },
    #[error("service {service} has a port without a usable number")]
    BadTargetPort { service: String },
    #[error("{what} has no selector, so it has no pods to forward to")]
    NoSelector { what: String },
    #[error("{what} has no running pod to forward to")]
    NoRunningPod { what: String },
}

/// One `[LOCAL:]REMOTE` as typed: the local port (0: any free one) and the remote port,
/// a number or a port name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub local: u16,
    pub remote: String,
}

impl PortSpec {
    /// `8080` (the same port locally), `9000:80`, `:80` or `0:80` (any free local port),
    /// `9000:http` (a named port).
    pub fn parse(spec: &str) -> Result<PortSpec, ForwardError> {
        let spec = spec.trim();
        let (local, remote) = match spec.split_once(':') {
            Some((l, r)) => (Some(l), r),
            None => (None, spec),
        };
        if remote.is_empty() {
            return Err(ForwardError::MissingRemote { spec: spec.into() });
        }
        if remote.chars().all(|c| c.is_ascii_digit()) && !matches!(remote.parse::<u16>(), Ok(1..)) {
            return Err(ForwardError::RemoteOutOfRange {
                spec: spec.into(),
                remote: remote.into(),
            });
        }
        let local = match local {
            None => remote
                .parse::<u16>()
                .map_err(|_| ForwardError::NamedRemoteNeedsLocal {
                    spec: spec.into(),
                    remote: remote.into(),
                })?,
            Some("") => 0,
            Some(l) => l.parse::<u16>().map_err(|_| ForwardError::BadLocal {
                spec: spec.into(),
                local: l.into(),
            })?,
        };
        Ok(PortSpec {
            local,
            remote: remote.to_string(),
        })
    }
}

/// What the user names to forward to.
#[derive(Debug, Clone, PartialEq)]
pub enum ForwardTarget {
    Pod(String),
    /// Its port is the service's; the pod is a running one it selects.
    Service(String),
    /// A workload with `spec.selector` (deployment, replicaset, …): a running pod of it.
    Workload(&'static ResourceType, String),
}

/// A pod that can take connections: Running and not being deleted.
pub fn is_running(pod: &Value) -> bool {
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
pub fn pod_port(pod: &Value, remote: &str) -> Result<u16, ForwardError> {
    if let Ok(n) = remote.parse::<u16>() {
        return Ok(n);
    }
    named_container_port(pod, remote).ok_or_else(|| ForwardError::NoNamedPort {
        pod: pod["metadata"]["name"].as_str().unwrap_or_default().into(),
        port: remote.into(),
    })
}

/// The pod port for `remote` as typed against a service (a service port number or name),
/// through its `targetPort` (a number, or a container port name looked up in `pod`).
pub fn service_target_port(svc: &Value, pod: &Value, remote: &str) -> Result<u16, ForwardError> {
    let service = svc["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let number = remote.parse::<u64>().ok();
    let port = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| match number {
            Some(n) => p["port"].as_u64() == Some(n),
            None => p["name"] == remote,
        })
        .ok_or_else(|| ForwardError::NoServicePort {
            service: service.clone(),
            port: remote.into(),
        })?;
    let target = &port["targetPort"];
    let bad = || ForwardError::BadTargetPort {
        service: service.clone(),
    };
    if let Some(n) = target.as_u64() {
        return u16::try_from(n).map_err(|_| bad());
    }
    if let Some(name) = target.as_str() {
        if let Ok(n) = name.parse::<u16>() {
            return Ok(n);
        }
        return named_container_port(pod, name).ok_or_else(|| {
            ForwardError::NamedTargetPortMissing {
                service: service.clone(),
                pod: pod["metadata"]["name"].as_str().unwrap_or_default().into(),
                name: name.into(),
            }
        });
    }
    port["port"]
        .as_u64()
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(bad)
}

fn pods_type() -> Result<&'static ResourceType, ClientError> {
    registry::resolve("pods")
        .ok_or_else(|| ClientError::Api(crate::api::ApiError::internal("no pods kind")))
}

impl Client {
    /// The pod to forward to for `target` in namespace `ns`, and the pod port for each of
    /// `remotes` (as typed: numbers or port names; a service's ports are service ports).
    pub async fn resolve_forward(
        &self,
        ns: &str,
        target: &ForwardTarget,
        remotes: &[String],
    ) -> Result<(Value, Vec<u16>), ClientError> {
        let pods_rt = pods_type()?;
        let (pod, svc) = match target {
            ForwardTarget::Pod(name) => {
                let pod = self.get(pods_rt, Some(ns), name).await?;
                if !is_running(&pod) {
                    return Err(ForwardError::PodNotRunning {
                        pod: name.clone(),
                        phase: pod["status"]["phase"].as_str().unwrap_or("Pending").into(),
                    }
                    .into());
                }
                (pod, None)
            }
            ForwardTarget::Service(name) => {
                let services = registry::resolve("services").ok_or_else(|| {
                    ClientError::Api(crate::api::ApiError::internal("no services kind"))
                })?;
                let svc = self.get(services, Some(ns), name).await?;
                let what = format!("service {name}");
                let selector = svc["spec"]["selector"]
                    .as_object()
                    .filter(|m| !m.is_empty())
                    .ok_or_else(|| ForwardError::NoSelector { what: what.clone() })?;
                let selector = label_selector_string(Some(&json!({ "matchLabels": selector })));
                (self.running_pod(ns, selector, what).await?, Some(svc))
            }
            ForwardTarget::Workload(rt, name) => {
                let obj = self.get(rt, Some(ns), name).await?;
                let what = format!("{} {name}", rt.singular);
                let selector = label_selector_string(obj.pointer("/spec/selector"));
                if selector.is_empty() {
                    return Err(ForwardError::NoSelector { what }.into());
                }
                (self.running_pod(ns, selector, what).await?, None)
            }
        };
        let ports = remotes
            .iter()
            .map(|r| match &svc {
                Some(svc) => service_target_port(svc, &pod, r),
                None => pod_port(&pod, r),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((pod, ports))
    }

    /// A running pod matching a label selector; `what` names who selects (for the error).
    async fn running_pod(
        &self,
        ns: &str,
        selector: String,
        what: String,
    ) -> Result<Value, ClientError> {
        let list = self
            .list(
                pods_type()?,
                Some(ns),
                &ListOptions {
                    label_selector: Some(selector),
                    field_selector: None,
                },
            )
            .await?;
        pick_pod(&list.items)
            .cloned()
            .ok_or_else(|| ForwardError::NoRunningPod { what }.into())
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
            {"name": "gone", "port": 83, "targetPort": "grpc"},
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
        assert!(matches!(
            service_target_port(&svc, &p, "83"),
            Err(ForwardError::NamedTargetPortMissing { .. })
        ));
        assert_eq!(pod_port(&p, "http").expect("named"), 8080);
        assert_eq!(
            pod_port(&p, "grpc").expect_err("unnamed").to_string(),
            "port \"grpc\" is not a number, and pod a has no container port named grpc"
        );
    }
}
