//! berth's nftables table (family `ip`), applied through `nft -j -f -` (nftables' JSON
//! interface: structured, no shell quoting). The table is berth's alone: it is flushed and
//! rebuilt, never merged with anyone else's rules.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::{Ipv4Net, NetworkError};

/// Runs one JSON batch (atomic in the kernel: all of it applies or none).
fn apply(batch: &Value) -> Result<(), NetworkError> {
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

/// The table with one NAT chain: pod traffic leaving the pod CIDR is masqueraded.
pub fn ensure_masquerade(table: &str, pod_cidr: Ipv4Net) -> Result<(), NetworkError> {
    let t = json!({"family": "ip", "name": table});
    let batch = json!({"nftables": [
        {"add": {"table": t}},
        {"flush": {"table": t}},
        {"add": {"chain": {
            "family": "ip", "table": table, "name": "postrouting",
            "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"
        }}},
        {"add": {"rule": {
            "family": "ip", "table": table, "chain": "postrouting",
            "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": prefix(pod_cidr)}},
                {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": prefix(pod_cidr)}},
                {"masquerade": null}
            ]
        }}}
    ]});
    apply(&batch)
}

/// Deletes the table (nothing to do when it does not exist).
pub fn delete_table(table: &str) -> Result<(), NetworkError> {
    let t = json!({"family": "ip", "name": table});
    // `add` first makes the delete succeed on a missing table, in one atomic batch.
    apply(&json!({"nftables": [{"add": {"table": t}}, {"delete": {"table": t}}]}))
}
