//! `berth cordon | uncordon | drain NODE`, as kubectl does them: cordon sets
//! `spec.unschedulable`; drain cordons, refuses what it must not remove (pods without a
//! controller unless `--force`, DaemonSet pods unless `--ignore-daemonsets`), then deletes
//! the rest gracefully and waits until they are gone.

use std::time::{Duration, Instant};

use clap::Args;
use hyper::Method;
use serde_json::{Value, json};

use super::CliError;
use crate::api::meta;
use crate::api::patch::PatchType;
use crate::client::{Client, ListOptions};

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node's name.
    pub node: String,
}

#[derive(Debug, Args)]
pub struct DrainArgs {
    /// The node's name.
    pub node: String,
    /// Also delete pods that no controller manages (they are gone for good).
    #[arg(long)]
    pub force: bool,
    /// Leave DaemonSet-managed pods in place instead of refusing.
    #[arg(long)]
    pub ignore_daemonsets: bool,
    /// Grace period for each pod in seconds (default: the pod's own).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// How long to wait for the pods to go, in seconds (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub timeout: u64,
}

fn node_rt() -> Result<&'static crate::api::ResourceType, CliError> {
    super::resolve_kind("nodes")
}

fn pod_rt() -> Result<&'static crate::api::ResourceType, CliError> {
    super::resolve_kind("pods")
}

/// Sets `spec.unschedulable`; prints kubectl's line.
pub async fn set_unschedulable(client: &Client, node: &str, on: bool) -> Result<(), CliError> {
    let current = client.get(node_rt()?, None, node).await?;
    let is_on = current
        .pointer("/spec/unschedulable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let verb = if on { "cordoned" } else { "uncordoned" };
    if is_on == on {
        println!("node/{node} already {verb}");
        return Ok(());
    }
    let patch = json!({"spec": {"unschedulable": if on { json!(true) } else { Value::Null }}});
    client
        .patch(node_rt()?, None, node, PatchType::Merge, &patch)
        .await?;
    println!("node/{node} {verb}");
    Ok(())
}

fn controller(pod: &Value) -> Option<&Value> {
    pod.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|refs| refs.iter().find(|r| r["controller"] == true))
}

fn terminal(pod: &Value) -> bool {
    matches!(meta::str_at(pod, "/status/phase"), "Succeeded" | "Failed")
}

/// Sorts the node's pods into those to delete and the refusals (kubectl's messages).
pub fn plan(pods: &[Value], force: bool, ignore_daemonsets: bool) -> (Vec<Value>, Vec<String>) {
    let mut delete = Vec::new();
    let mut unmanaged = Vec::new();
    let mut daemonset = Vec::new();
    for p in pods {
        let id = format!("{}/{}", meta::namespace(p), meta::name(p));
        match controller(p) {
            Some(c) if c["kind"] == "DaemonSet" => {
                if !ignore_daemonsets {
                    daemonset.push(id);
                }
            }
            Some(_) => delete.push(p.clone()),
            None if force || terminal(p) => delete.push(p.clone()),
            None => unmanaged.push(id),
        }
    }
    let mut errors = Vec::new();
    if !unmanaged.is_empty() {
        errors.push(format!(
            "cannot delete Pods that declare no controller (use --force to override): {}",
            unmanaged.join(", ")
        ));
    }
    if !daemonset.is_empty() {
        errors.push(format!(
            "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): {}",
            daemonset.join(", ")
        ));
    }
    (delete, errors)
}

pub async fn drain(client: &Client, args: DrainArgs) -> Result<(), CliError> {
    set_unschedulable(client, &args.node, true).await?;
    let opts = ListOptions {
        field_selector: Some(format!("spec.nodeName={}", args.node)),
        ..Default::default()
    };
    let pods = client.list(pod_rt()?, None, &opts).await?.items;
    let (delete, errors) = plan(&pods, args.force, args.ignore_daemonsets);
    if !errors.is_empty() {
        return Err(CliError::Failed(format!(
            "unable to drain node \"{}\" due to error: {}; node/{} stays cordoned",
            args.node,
            errors.join(", "),
            args.node
        )));
    }
    if args.force {
        for p in delete.iter().filter(|p| controller(p).is_none()) {
            eprintln!(
                "Warning: deleting Pods that declare no controller: {}/{}",
                meta::namespace(p),
                meta::name(p)
            );
        }
    }
    let body = (args.grace_period >= 0).then(|| {
        serde_json::to_vec(&json!({"kind": "DeleteOptions", "apiVersion": "v1",
            "gracePeriodSeconds": args.grace_period}))
        .unwrap_or_default()
    });
    for p in &delete {
        println!("evicting pod {}/{}", meta::namespace(p), meta::name(p));
        let path = format!(
            "{}/{}",
            pod_rt()?.collection_path(Some(meta::namespace(p))),
            meta::name(p)
        );
        match client
            .request(
                Method::DELETE,
                &path,
                Some("application/json"),
                body.clone(),
            )
            .await
        {
            Ok(_) => {}
            Err(crate::client::ClientError::Api(crate::api::ApiError::NotFound(_))) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let started = Instant::now();
    let mut remaining: Vec<&Value> = delete.iter().collect();
    while !remaining.is_empty() {
        let mut still = Vec::new();
        for p in remaining {
            match client
                .get(pod_rt()?, Some(meta::namespace(p)), meta::name(p))
                .await
            {
                Ok(current) if meta::uid(&current) == meta::uid(p) => still.push(p),
                Ok(_) | Err(crate::client::ClientError::Api(crate::api::ApiError::NotFound(_))) => {
                    println!("pod/{} evicted", meta::name(p));
                }
                Err(e) => return Err(e.into()),
            }
        }
        remaining = still;
        if remaining.is_empty() {
            break;
        }
        if args.timeout > 0 && started.elapsed() >= Duration::from_secs(args.timeout) {
            return Err(CliError::Failed(format!(
                "drain did not complete within {}s; still terminating: {}",
                args.timeout,
                remaining
                    .iter()
                    .map(|p| format!("{}/{}", meta::namespace(p), meta::name(p)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!("node/{} drained", args.node);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_refuses_unmanaged_and_daemonset_pods_unless_told() {
        let pods = vec![
            json!({"metadata": {"name": "rs-1", "namespace": "default",
                "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "controller": true}]}}),
            json!({"metadata": {"name": "bare", "namespace": "default"}}),
            json!({"metadata": {"name": "done", "namespace": "default"}, "status": {"phase": "Succeeded"}}),
            json!({"metadata": {"name": "ds-1", "namespace": "kube-system",
                "ownerReferences": [{"kind": "DaemonSet", "name": "ds", "controller": true}]}}),
        ];
        let (delete, errors) = plan(&pods, false, false);
        let names: Vec<&str> = delete.iter().map(meta::name).collect();
        assert_eq!(names, vec!["rs-1", "done"]);
        assert_eq!(
            errors,
            vec![
                "cannot delete Pods that declare no controller (use --force to override): default/bare",
                "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): kube-system/ds-1"
            ]
        );
        let (delete, errors) = plan(&pods, true, true);
        let names: Vec<&str> = delete.iter().map(meta::name).collect();
        assert_eq!(names, vec!["rs-1", "bare", "done"]);
        assert!(errors.is_empty());
    }
}
