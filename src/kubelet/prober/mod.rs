//! Container probes as the kubelet runs them: one check ([`check`]) of an exec, httpGet,
//! tcpSocket or grpc handler, and the threshold logic ([`ProbeState`]) that turns a run of
//! results into a probe result that changes only when `successThreshold` or
//! `failureThreshold` is crossed.
//!
//! Network probes connect from inside the pod's network namespace (a short-lived thread
//! enters it, creates and connects the socket, and exits: a socket keeps the namespace it
//! was made in). So probes work before, and without, a pod-network IP: with no IP the
//! target is the pod's loopback.

mod grpc;
mod http;
pub mod netns;
pub mod worker;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use k8s_openapi::api::core::v1::Probe;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    /// As in event messages: `Liveness probe failed: …`.
    pub fn title(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }

    /// The result a probe has before it first ran (Kubernetes: readiness starts failed,
    /// liveness successful, startup unknown).
    pub fn initial(self) -> ProbeResult {
        match self {
            ProbeKind::Liveness => ProbeResult::Success,
            ProbeKind::Readiness => ProbeResult::Failure,
            ProbeKind::Startup => ProbeResult::Unknown,
        }
    }
}

/// The outcome of a probe (after thresholds) or of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    Success,
    Failure,
    Unknown,
}

/// One check's outcome with the text Kubernetes puts into the `Unhealthy` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub result: ProbeResult,
    pub message: String,
}

impl CheckOutcome {
    pub fn success(message: impl Into<String>) -> Self {
        CheckOutcome {
            result: ProbeResult::Success,
            message: message.into(),
        }
    }
    pub fn failure(message: impl Into<String>) -> Self {
        CheckOutcome {
            result: ProbeResult::Failure,
            message: message.into(),
        }
    }
    pub fn unknown(message: impl Into<String>) -> Self {
        CheckOutcome {
            result: ProbeResult::Unknown,
            message: message.into(),
        }
    }
}

/// An exec probe's run: the exit code and combined output, or why it could not run.
pub type ExecFuture = Pin<Box<dyn Future<Output = Result<(i32, String), String>> + Send + 'static>>;

/// Runs a command in a running container (the runtime's exec), for exec probes.
pub trait ExecRunner: Send + Sync {
    /// The command's exit code and its combined output, or why it could not run.
    fn run(&self, container_id: &str, command: Vec<String>, timeout: Duration) -> ExecFuture;
}

/// Where a container's probes go.
#[derive(Clone)]
pub struct Target {
    /// The pod's network namespace (its sandbox); `None` probes from the host's.
    pub netns: Option<PathBuf>,
    /// The pod's IP; `None` until the pod network gives it one (then loopback).
    pub pod_ip: Option<IpAddr>,
    /// The container's named ports (`ports[].name` → `containerPort`).
    pub named_ports: BTreeMap<String, u16>,
    /// The runtime id of the container (exec probes).
    pub container_id: String,
    pub exec: Option<std::sync::Arc<dyn ExecRunner>>,
}

impl Target {
    fn host(&self, host: Option<&str>) -> Result<IpAddr, String> {
        match host.filter(|h| !h.is_empty()) {
            Some(h) => h.parse::<IpAddr>().map_err(|_| {
                format!("probe host {h:?} is not an IP address; berth probes IP addresses only")
            }),
            None => Ok(self.pod_ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))),
        }
    }

    fn port(&self, port: &IntOrString) -> Result<u16, String> {
        match port {
            IntOrString::Int(p) => u16::try_from(*p)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("invalid port number: {p}")),
            IntOrString::String(name) => match name.parse::<u16>() {
                Ok(p) if p > 0 => Ok(p),
                _ => self
                    .named_ports
                    .get(name)
                    .copied()
                    .ok_or_else(|| format!("couldn't find port: {name} in the container")),
            },
        }
    }
}

/// `timeoutSeconds` (default 1).
pub fn timeout_of(probe: &Probe) -> Duration {
    Duration::from_secs(probe.timeout_seconds.filter(|t| *t > 0).unwrap_or(1) as u64)
}

/// Runs one check of `probe` against `target`, bounded by the probe's timeout.
pub async fn check(probe: &Probe, target: &Target) -> CheckOutcome {
    let timeout = timeout_of(probe);
    if let Some(exec) = &probe.exec {
        let Some(runner) = &target.exec else {
            return CheckOutcome::unknown("exec probes are not available on this node");
        };
        let command = exec.command.clone().unwrap_or_default();
        return match runner.run(&target.container_id, command, timeout).await {
            Ok((0, output)) => CheckOutcome::success(output),
            Ok((_, output)) => CheckOutcome::failure(output),
            Err(e) if e.contains("timed out") => {
                CheckOutcome::failure(format!("command timed out after {}s", timeout.as_secs()))
            }
            Err(e) => CheckOutcome::unknown(e),
        };
    }
    if let Some(h) = &probe.http_get {
        let (host, port) = match (target.host(h.host.as_deref()), target.port(&h.port)) {
            (Ok(h), Ok(p)) => (h, p),
            (Err(e), _) | (_, Err(e)) => return CheckOutcome::unknown(e),
        };
        return http::check(h, host, port, target.netns.clone(), timeout).await;
    }
    if let Some(t) = &probe.tcp_socket {
        let (host, port) = match (target.host(t.host.as_deref()), target.port(&t.port)) {
            (Ok(h), Ok(p)) => (h, p),
            (Err(e), _) | (_, Err(e)) => return CheckOutcome::unknown(e),
        };
        let addr = std::net::SocketAddr::new(host, port);
        return match netns::connect(target.netns.clone(), addr, timeout).await {
            Ok(_) => CheckOutcome::success(""),
            Err(e) => CheckOutcome::failure(format!("dial tcp {addr}: {}", netns::describe(&e))),
        };
    }
    if let Some(g) = &probe.grpc {
        let port = match u16::try_from(g.port).ok().filter(|p| *p > 0) {
            Some(p) => p,
            None => return CheckOutcome::unknown(format!("invalid port number: {}", g.port)),
        };
        let host = target.pod_ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        return grpc::check(
            std::net::SocketAddr::new(host, port),
            g.service.clone().unwrap_or_default(),
            target.netns.clone(),
            timeout,
        )
        .await;
    }
    CheckOutcome::unknown("the probe has no handler (exec, httpGet, tcpSocket or grpc)")
}

/// The threshold logic of one probe of one container.
#[derive(Debug, Clone)]
pub struct ProbeState {
    pub kind: ProbeKind,
    success_threshold: u32,
    failure_threshold: u32,
    /// The current result after thresholds.
    pub result: ProbeResult,
    successes: u32,
    failures: u32,
}

impl ProbeState {
    pub fn new(kind: ProbeKind, probe: &Probe) -> ProbeState {
        let positive = |v: Option<i32>, default: u32| {
            v.and_then(|v| u32::try_from(v).ok())
                .filter(|v| *v > 0)
                .unwrap_or(default)
        };
        ProbeState {
            kind,
            success_threshold: positive(probe.success_threshold, 1),
            failure_threshold: positive(probe.failure_threshold, 3),
            result: kind.initial(),
            successes: 0,
            failures: 0,
        }
    }

    /// Takes one check's result; returns the new probe result when it changed.
    pub fn observe(&mut self, check: ProbeResult) -> Option<ProbeResult> {
        match check {
            ProbeResult::Success => {
                self.failures = 0;
                self.successes = self.successes.saturating_add(1);
                if self.successes >= self.success_threshold && self.result != ProbeResult::Success {
                    self.result = ProbeResult::Success;
                    return Some(ProbeResult::Success);
                }
            }
            ProbeResult::Failure => {
                self.successes = 0;
                self.failures = self.failures.saturating_add(1);
                if self.failures >= self.failure_threshold && self.result != ProbeResult::Failure {
                    self.result = ProbeResult::Failure;
                    return Some(ProbeResult::Failure);
                }
            }
            // Kubernetes neither counts nor changes anything on an unknown result.
            ProbeResult::Unknown => {}
        }
        None
    }

    /// After a liveness/startup failure has restarted the container, counting starts over.
    pub fn reset(&mut self) {
        self.result = self.kind.initial();
        self.successes = 0;
        self.failures = 0;
    }
}

/// `initialDelaySeconds` and `periodSeconds` (default 10).
pub fn schedule_of(probe: &Probe) -> (Duration, Duration) {
    let initial = probe.initial_delay_seconds.filter(|d| *d > 0).unwrap_or(0) as u64;
    let period = probe.period_seconds.filter(|p| *p > 0).unwrap_or(10) as u64;
    (Duration::from_secs(initial), Duration::from_secs(period))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn probe(v: serde_json::Value) -> Probe {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn thresholds_change_the_result_only_when_crossed() {
        let p = probe(json!({"failureThreshold": 3, "successThreshold": 2}));
        let mut s = ProbeState::new(ProbeKind::Readiness, &p);
        assert_eq!(s.result, ProbeResult::Failure);
        assert_eq!(s.observe(ProbeResult::Success), None);
        assert_eq!(s.observe(ProbeResult::Success), Some(ProbeResult::Success));
        assert_eq!(s.observe(ProbeResult::Success), None);
        assert_eq!(s.observe(ProbeResult::Failure), None);
        assert_eq!(s.observe(ProbeResult::Unknown), None);
        assert_eq!(s.observe(ProbeResult::Failure), None);
        assert_eq!(s.observe(ProbeResult::Failure), Some(ProbeResult::Failure));
        assert_eq!(s.observe(ProbeResult::Failure), None);
    }

    #[test]
    fn liveness_starts_healthy_and_defaults_to_three_failures() {
        let mut s = ProbeState::new(ProbeKind::Liveness, &probe(json!({})));
        assert_eq!(s.result, ProbeResult::Success);
        assert_eq!(s.observe(ProbeResult::Failure), None);
        assert_eq!(s.observe(ProbeResult::Failure), None);
        assert_eq!(s.observe(ProbeResult::Failure), Some(ProbeResult::Failure));
        s.reset();
        assert_eq!(s.result, ProbeResult::Success);
        assert_eq!(
            ProbeState::new(ProbeKind::Startup, &probe(json!({}))).result,
            ProbeResult::Unknown
        );
    }

    #[test]
    fn defaults_of_timing() {
        assert_eq!(
            schedule_of(&probe(json!({}))),
            (Duration::ZERO, Duration::from_secs(10))
        );
        assert_eq!(timeout_of(&probe(json!({}))), Duration::from_secs(1));
        assert_eq!(
            schedule_of(&probe(
                json!({"initialDelaySeconds": 5, "periodSeconds": 2})
            )),
            (Duration::from_secs(5), Duration::from_secs(2))
        );
    }

    #[test]
    fn ports_by_name_and_number() {
        let t = Target {
            netns: None,
            pod_ip: None,
            named_ports: BTreeMap::from([("http".to_string(), 8080)]),
            container_id: String::new(),
            exec: None,
        };
        assert_eq!(t.port(&IntOrString::String("http".into())), Ok(8080));
        assert_eq!(t.port(&IntOrString::Int(80)), Ok(80));
        assert_eq!(t.port(&IntOrString::String("81".into())), Ok(81));
        assert!(t.port(&IntOrString::String("admin".into())).is_err());
        assert!(t.port(&IntOrString::Int(0)).is_err());
        assert_eq!(t.host(None), Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }

    /// Real sockets on loopback: tcp and http checks against a listener of this test.
    #[tokio::test]
    async fn tcp_and_http_checks_against_a_local_server() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]).to_string();
                    let status = if req.starts_with("GET /healthz ") {
                        assert!(req.contains("User-Agent: kube-probe/"), "{req}");
                        assert!(req.to_ascii_lowercase().contains("x-probe: yes"), "{req}");
                        "200 OK"
                    } else {
                        "500 Internal Server Error"
                    };
                    let _ = s
                        .write_all(
                            format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                                .as_bytes(),
                        )
                        .await;
                });
            }
        });
        let t = Target {
            netns: None,
            pod_ip: None,
            named_ports: BTreeMap::new(),
            container_id: String::new(),
            exec: None,
        };
        let ok = check(&probe(json!({"tcpSocket": {"port": port}})), &t).await;
        assert_eq!(ok.result, ProbeResult::Success, "{ok:?}");
        let good = check(
            &probe(json!({"httpGet": {"path": "/healthz", "port": port,
                "httpHeaders": [{"name": "X-Probe", "value": "yes"}]}})),
            &t,
        )
        .await;
        assert_eq!(good.result, ProbeResult::Success, "{good:?}");
        let bad = check(
            &probe(json!({"httpGet": {"path": "/broken", "port": port}})),
            &t,
        )
        .await;
        assert_eq!(bad.result, ProbeResult::Failure);
        assert_eq!(bad.message, "HTTP probe failed with statuscode: 500");
        // A closed port.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let refused = check(&probe(json!({"tcpSocket": {"port": closed}})), &t).await;
        assert_eq!(refused.result, ProbeResult::Failure);
        assert_eq!(
            refused.message,
            format!("dial tcp 127.0.0.1:{closed}: connect: connection refused")
        );
    }
}
