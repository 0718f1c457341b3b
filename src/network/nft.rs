//! berth's nftables table (family `ip`), applied through `nft -j -f -` (nftables' JSON
//! interface: structured, no shell quoting). The table is berth's alone: it is flushed and
//! rebuilt, never merged with anyone else's rules.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::{Ipv4Net, NetworkError};

/// Runs one JSON batch (atomic in the kernel: all of it applies or none).
pub(super) fn apply(batch: &Value) -> Result<(), NetworkError> {
    let mut child = Command::new("nft")
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            NetworkError::Nft(format!(
                "cannot run nft ({e}); install the nftables package"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(batch.to_string().as_bytes())
            .map_err(|e| NetworkError::Nft(format!("cannot write to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetworkError::Nft(format!("nft did not finish: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetworkError::Nft(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

fn prefix(net: Ipv4Net) -> Value {
    json!({"prefix": {"addr": net.network().to_string(), "len": net.prefix}})
}

/// A `hostPort`: traffic to a local address of the node on `host_port` goes to the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// `tcp` or `udp` (`sctp` is refused by the kubelet).
    pub protocol: String,
    pub host_port: u16,
    pub container_port: u16,
    /// Only this node address (Kubernetes' `hostIP`); `None`: every local address.
    pub host_ip: Option<std::net::Ipv4Addr>,
}

fn nat_chain(table: &str, name: &str, hook: &str, prio: i32) -> Value {
    json!({"add": {"chain": {
        "family": "ip", "table": table, "name": name,
        "type": "nat", "hook": hook, "prio": prio, "policy": "accept"
    }}})
}

fn rule(table: &str, chain: &str, expr: Vec<Value>) -> Value {
    json!({"add": {"rule": {"family": "ip", "table": table, "chain": chain, "expr": expr}}})
}

fn eq(left: Value, right: Value) -> Value {
    json!({"match": {"op": "==", "left": left, "right": right}})
}

fn field(protocol: &str, field: &str) -> Value {
    json!({"payload": {"protocol": protocol, "field": field}})
}

/// Rebuilds the whole table in one atomic batch: masquerade for pod egress (and for
/// loopback-sourced traffic DNATed to a pod), and one DNAT rule per hostPort in the
/// prerouting (traffic from elsewhere) and output (traffic from the node itself) chains.
pub fn apply_ruleset(
    table: &str,
    bridge: &str,
    pod_cidr: Ipv4Net,
    host_ports: &[(std::net::Ipv4Addr, HostPort)],
) -> Result<(), NetworkError> {
    let t = json!({"family": "ip", "name": table});
    let mut batch = vec![
        json!({"add": {"table": t}}),
        json!({"flush": {"table": t}}),
        nat_chain(table, "postrouting", "postrouting", 100),
        nat_chain(table, "prerouting", "prerouting", -100),
        nat_chain(table, "output", "output", -100),
        rule(
            table,
            "postrouting",
            vec![
                eq(field("ip", "saddr"), prefix(pod_cidr)),
                json!({"match": {"op": "!=", "left": field("ip", "daddr"), "right": prefix(pod_cidr)}}),
                json!({"masquerade": null}),
            ],
        ),
        // 127.0.0.1:hostPort from the node: the source must not stay a loopback address
        // on the bridge (the pod could not answer it).
        rule(
            table,
            "postrouting",
            vec![
                eq(
                    field("ip", "saddr"),
                    json!({"prefix": {"addr": "127.0.0.0", "len": 8}}),
                ),
                eq(json!({"meta": {"key": "oifname"}}), json!(bridge)),
                json!({"masquerade": null}),
            ],
        ),
    ];
    for (pod_ip, hp) in host_ports {
        let dest = match hp.host_ip {
            Some(ip) => eq(field("ip", "daddr"), json!(ip.to_string())),
            None => eq(
                json!({"fib": {"result": "type", "flags": ["daddr"]}}),
                json!("local"),
            ),
        };
        for chain in ["prerouting", "output"] {
            batch.push(rule(
                table,
                chain,
                vec![
                    dest.clone(),
                    eq(field(&hp.protocol, "dport"), json!(hp.host_port)),
                    json!({"dnat": {"addr": pod_ip.to_string(), "port": hp.container_port}}),
                ],
            ));
        }
    }
    apply(&json!({"nftables": batch}))
}

/// Deletes the table (nothing to do when it does not exist).
pub fn delete_table(table: &str) -> Result<(), NetworkError> {
    let t = json!({"family": "ip", "name": table});
    // `add` first makes the delete succeed on a missing table, in one atomic batch.
    apply(&json!({"nftables": [{"add": {"table": t}}, {"delete": {"table": t}}]}))
}
