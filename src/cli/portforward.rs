//! `berth port-forward TARGET [LOCAL:]REMOTE…`: listens on local ports and forwards each
//! connection to a port of a pod, as `kubectl port-forward` does. TARGET is `pod/NAME` (or
//! just `NAME`), `svc/NAME` (a running pod behind the service; the port is the service's,
//! mapped to its `targetPort`) or a workload such as `deployment/NAME` (a running pod it
//! selects). Runs until interrupted.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use clap::Args;
use tokio::net::TcpListener;

use super::{CliError, namespace_or_default, resolve_kind};
use crate::client::{Client, ClientError, ForwardEvent, ForwardTarget, PortSpec, serve_local};

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

/// What the user typed as TARGET: `NAME` and `pod/NAME` are pods, `svc/NAME` a service,
/// `deployment/NAME` (and other workloads with a selector) a running pod of it.
pub fn parse_target(text: &str) -> Result<ForwardTarget, CliError> {
    let Some((kind, name)) = text.split_once('/') else {
        return Ok(ForwardTarget::Pod(text.to_string()));
    };
    if name.is_empty() {
        return Err(CliError::Usage(format!(
            "invalid target \"{text}\": name the object, e.g. pod/web or svc/web"
        )));
    }
    let rt = resolve_kind(kind)?;
    match (rt.group, rt.kind) {
        ("", "Pod") => Ok(ForwardTarget::Pod(name.to_string())),
        ("", "Service") => Ok(ForwardTarget::Service(name.to_string())),
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") | ("batch", "Job") => {
            Ok(ForwardTarget::Workload(rt, name.to_string()))
        }
        _ => Err(CliError::Usage(format!(
            "cannot port-forward to a {}; name a pod, service, deployment, replicaset, statefulset, daemonset or job",
            rt.singular
        ))),
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
    let target = parse_target(&args.target)?;
    let specs = args
        .ports
        .iter()
        .map(|p| PortSpec::parse(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ClientError::from)?;
    let addrs = addresses(&args.address)?;
    let remotes: Vec<String> = specs.iter().map(|s| s.remote.clone()).collect();
    let (pod, remotes) = client.resolve_forward(&ns, &target, &remotes).await?;
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
    fn targets_by_kind() {
        let t = |s: &str| parse_target(s).expect(s);
        assert_eq!(t("web"), ForwardTarget::Pod("web".into()));
        assert_eq!(t("po/web"), ForwardTarget::Pod("web".into()));
        assert_eq!(t("svc/web"), ForwardTarget::Service("web".into()));
        assert!(matches!(
            t("deploy/web"),
            ForwardTarget::Workload(rt, n) if rt.kind == "Deployment" && n == "web"
        ));
        assert!(parse_target("configmap/web").is_err());
        assert!(parse_target("pod/").is_err());
    }

    #[test]
    fn addresses_default_to_both_loopbacks() {
        let a = addresses(&["localhost".into()]).expect("localhost");
        assert_eq!(a.len(), 2);
        assert!(a[0].1 && !a[1].1, "IPv6 loopback is optional");
        assert!(addresses(&["0.0.0.0".into()]).is_ok());
        assert!(addresses(&["nowhere".into()]).is_err());
    }
}
