//! `berth top pods|node`: CPU and memory usage with kubectl's columns (those of kubectl
//! 1.32: the node's percentages are `CPU(%)` and `MEMORY(%)`), from the `metrics.k8s.io`
//! API.

use serde_json::Value;

use super::{CliError, TopArgs, TopKind, namespace_or_default};
use crate::api::validation::parse_quantity;
use crate::client::Client;

/// CPU in millicores, as kubectl prints it (`12m`).
fn cpu_milli(q: &Value) -> i128 {
    q.as_str()
        .and_then(|s| parse_quantity(s).ok())
        .map(|v| v.milli())
        .unwrap_or(0)
}

/// Memory in bytes.
fn bytes(q: &Value) -> i128 {
    q.as_str()
        .and_then(|s| parse_quantity(s).ok())
        .map(|v| v.milli() / 1000)
        .unwrap_or(0)
}

fn mi(b: i128) -> String {
    format!("{}Mi", b / (1024 * 1024))
}

/// Left-aligned columns separated by three spaces, as kubectl's tables.
fn print_table(header: &[&str], rows: &[Vec<String>], no_headers: bool) {
    let mut all: Vec<Vec<String>> = Vec::new();
    if !no_headers {
        all.push(header.iter().map(|h| h.to_string()).collect());
    }
    all.extend(rows.iter().cloned());
    let widths: Vec<usize> = (0..header.len())
        .map(|i| all.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for r in &all {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        println!("{}", line.trim_end());
    }
}

/// The rows of `berth top pods` (pure, for tests).
pub fn pod_rows(items: &[Value], all_namespaces: bool, containers: bool) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut items: Vec<&Value> = items.iter().collect();
    items.sort_by_key(|i| {
        (
            i["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            i["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    });
    for item in items {
        let ns = item["metadata"]["namespace"].as_str().unwrap_or_default();
        let pod = item["metadata"]["name"].as_str().unwrap_or_default();
        let cs = item["containers"].as_array().cloned().unwrap_or_default();
        let mut prefix = Vec::new();
        if all_namespaces {
            prefix.push(ns.to_string());
        }
        if containers {
            for c in &cs {
                let mut row = prefix.clone();
                row.push(pod.to_string());
                row.push(c["name"].as_str().unwrap_or_default().to_string());
                row.push(format!("{}m", cpu_milli(&c["usage"]["cpu"])));
                row.push(mi(bytes(&c["usage"]["memory"])));
                rows.push(row);
            }
        } else {
            // Summed first, rounded up to millicores once (as kubectl sums quantities).
            let cpu = cs
                .iter()
                .filter_map(|c| parse_quantity(c["usage"]["cpu"].as_str()?).ok())
                .reduce(|a, b| a.saturating_add(b))
                .map(|v| v.milli())
                .unwrap_or(0);
            let mem: i128 = cs.iter().map(|c| bytes(&c["usage"]["memory"])).sum();
            let mut row = prefix;
            row.push(pod.to_string());
            row.push(format!("{cpu}m"));
            row.push(mi(mem));
            rows.push(row);
        }
    }
    rows
}

/// One row of `berth top node` (pure, for tests): usage against the node's allocatable.
pub fn node_row(metrics: &Value, node: Option<&Value>) -> Vec<String> {
    let cpu = cpu_milli(&metrics["usage"]["cpu"]);
    let mem = bytes(&metrics["usage"]["memory"]);
    let percent = |used: i128, total: i128| {
        if total > 0 {
            format!("{}%", used * 100 / total)
        } else {
            "<unknown>".to_string()
        }
    };
    let alloc = node.map(|n| &n["status"]["allocatable"]);
    let cpu_total = alloc.map(|a| cpu_milli(&a["cpu"])).unwrap_or(0);
    let mem_total = alloc.map(|a| bytes(&a["memory"])).unwrap_or(0);
    vec![
        metrics["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        format!("{cpu}m"),
        percent(cpu, cpu_total),
        mi(mem),
        percent(mem, mem_total),
    ]
}

pub async fn top(client: &Client, args: TopArgs) -> Result<(), CliError> {
    match args.kind {
        TopKind::Pods => {
            let ns = (!args.all_namespaces).then(|| namespace_or_default(&args.namespace));
            let value = client
                .pod_metrics(ns.as_deref(), args.name.as_deref(), None)
                .await?;
            let items = if args.name.is_some() {
                vec![value]
            } else {
                value["items"].as_array().cloned().unwrap_or_default()
            };
            if items.is_empty() {
                match ns {
                    Some(ns) => eprintln!("No resources found in {ns} namespace."),
                    None => eprintln!("No resources found"),
                }
                return Ok(());
            }
            let mut header = Vec::new();
            if args.all_namespaces {
                header.push("NAMESPACE");
            }
            if args.containers {
                header.extend(["POD", "NAME"]);
            } else {
                header.push("NAME");
            }
            header.extend(["CPU(cores)", "MEMORY(bytes)"]);
            let rows = pod_rows(&items, args.all_namespaces, args.containers);
            print_table(&header, &rows, args.no_headers);
        }
        TopKind::Node => {
            let value = client.node_metrics(args.name.as_deref()).await?;
            let items = if args.name.is_some() {
                vec![value]
            } else {
                value["items"].as_array().cloned().unwrap_or_default()
            };
            let node_type = super::resolve_kind("nodes")?;
            let mut rows = Vec::new();
            for m in &items {
                let name = m["metadata"]["name"].as_str().unwrap_or_default();
                let node = client.get(node_type, None, name).await.ok();
                rows.push(node_row(m, node.as_ref()));
            }
            print_table(
                &["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"],
                &rows,
                args.no_headers,
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_rows_sum_containers_in_kubectl_units() {
        let items = vec![json!({
            "metadata": {"name": "web", "namespace": "default"},
            "containers": [
                {"name": "a", "usage": {"cpu": "1500000n", "memory": "2048Ki"}},
                {"name": "b", "usage": {"cpu": "2000000n", "memory": "1024Ki"}},
            ],
        })];
        assert_eq!(
            pod_rows(&items, false, false),
            vec![vec!["web", "4m", "3Mi"]]
        );
        assert_eq!(
            pod_rows(&items, true, true),
            vec![
                vec!["default", "web", "a", "2m", "2Mi"],
                vec!["default", "web", "b", "2m", "1Mi"],
            ]
        );
    }

    #[test]
    fn node_row_has_percentages_of_allocatable() {
        let m = json!({"metadata": {"name": "n1"},
            "usage": {"cpu": "500000000n", "memory": "1048576Ki"}});
        let node = json!({"status": {"allocatable": {"cpu": "2", "memory": "4194304Ki"}}});
        assert_eq!(
            node_row(&m, Some(&node)),
            vec!["n1", "500m", "25%", "1024Mi", "25%"]
        );
        assert_eq!(node_row(&m, None)[2], "<unknown>");
    }
}
