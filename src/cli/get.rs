//! `berth get`, `berth describe` and `berth events`.

use serde_json::{Value, json};

use super::{
    CliError, DescribeArgs, EventsArgs, GetArgs, Output, namespace_or_default, resolve_kind,
};
use crate::api::registry::{self, ResourceType};
use crate::api::{ApiError, describe, meta, table};
use crate::client::{Client, ClientError, ListOptions};

fn now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

/// The kinds named by `pods`, `deploy,svc` or `all`.
fn kinds(spec: &str) -> Result<Vec<&'static ResourceType>, CliError> {
    let mut out = Vec::new();
    for part in spec.split(',').filter(|s| !s.is_empty()) {
        if part == "all" {
            out.extend(registry::in_category("all"));
        } else {
            out.push(resolve_kind(part)?);
        }
    }
    if out.is_empty() {
        return Err(CliError::Usage(
            "say which kind to get, e.g. berth get pods".into(),
        ));
    }
    Ok(out)
}

fn scope<'a>(rt: &ResourceType, all: bool, ns: &'a str) -> Option<&'a str> {
    if rt.namespaced && !all {
        Some(ns)
    } else {
        None
    }
}

fn print_docs(objs: &[Value], single: bool, output: Output) -> Result<(), CliError> {
    let value = if single && objs.len() == 1 {
        objs[0].clone()
    } else {
        json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": objs})
    };
    let text = match output {
        Output::Json => {
            serde_json::to_string_pretty(&value).map_err(|e| CliError::Failed(e.to_string()))?
                + "\n"
        }
        _ => serde_yaml::to_string(&value).map_err(|e| CliError::Failed(e.to_string()))?,
    };
    print!("{text}");
    Ok(())
}

fn render(rt: &ResourceType, objs: &[Value], wide: bool, all_ns: bool, headers: bool) -> String {
    render_prefixed(rt, objs, wide, all_ns, headers, None)
}

/// Like `render`, with `kind/` before each name (kubectl does this when several kinds are
/// shown together).
fn render_prefixed(
    rt: &ResourceType,
    objs: &[Value],
    wide: bool,
    all_ns: bool,
    headers: bool,
    prefix: Option<&str>,
) -> String {
    let columns = table::columns(rt);
    let mut rows: Vec<Vec<Value>> = objs.iter().map(|o| table::row(rt, o, now())).collect();
    if let Some(prefix) = prefix
        && columns.first().is_some_and(|c| c.format == "name")
    {
        for row in &mut rows {
            if let Some(Value::String(name)) = row.first_mut() {
                *name = format!("{prefix}/{name}");
            }
        }
    }
    let namespaces: Vec<String> = objs
        .iter()
        .map(|o| meta::namespace(o).to_string())
        .collect();
    let text = table::render_text(&columns, &rows, wide, all_ns && rt.namespaced, &namespaces);
    if headers {
        text
    } else {
        text.lines().skip(1).map(|l| format!("{l}\n")).collect()
    }
}

pub async fn get(client: &Client, args: GetArgs) -> Result<(), CliError> {
    let kinds = kinds(&args.kind)?;
    let ns = namespace_or_default(&args.namespace);
    let opts = ListOptions {
        label_selector: args.selector.clone(),
        field_selector: args.field_selector.clone(),
    };
    let multi = kinds.len() > 1;
    let mut printed_any = false;
    let mut all_docs = Vec::new();
    let mut last_list = None;
    for rt in &kinds {
        let objs: Vec<Value> = if args.names.is_empty() {
            let list = client
                .list(rt, scope(rt, args.all_namespaces, &ns), &opts)
                .await?;
            last_list = Some(list.resource_version.clone());
            list.items
        } else {
            let mut v = Vec::new();
            for name in &args.names {
                v.push(client.get(rt, scope(rt, false, &ns), name).await?);
            }
            v
        };
        match args.output {
            Some(Output::Yaml | Output::Json) => all_docs.extend(objs),
            Some(Output::Name) => {
                for o in &objs {
                    println!("{}/{}", rt.singular_group(), meta::name(o));
                }
            }
            _ => {
                if objs.is_empty() {
                    continue;
                }
                if multi && printed_any {
                    println!();
                }
                let prefix = rt.singular_group();
                let text = render_prefixed(
                    rt,
                    &objs,
                    args.output == Some(Output::Wide),
                    args.all_namespaces,
                    !args.no_headers,
                    multi.then_some(prefix.as_str()),
                );
                print!("{text}");
                printed_any = true;
            }
        }
    }
    if let Some(out @ (Output::Yaml | Output::Json)) = args.output {
        print_docs(&all_docs, !args.names.is_empty() && kinds.len() == 1, out)?;
    } else if !printed_any && args.output != Some(Output::Name) && !args.watch {
        if args.all_namespaces {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {ns} namespace.");
        }
    }
    if args.watch {
        let [rt] = kinds.as_slice() else {
            return Err(CliError::Usage(
                "watch one kind at a time: berth get pods -w".into(),
            ));
        };
        let rv = last_list.unwrap_or_default();
        let mut watch = client
            .watch(rt, scope(rt, args.all_namespaces, &ns), &opts, &rv)
            .await?;
        while let Some(ev) = watch.next().await {
            let ev = ev?;
            if !args.names.is_empty() && !args.names.iter().any(|n| n == meta::name(&ev.object)) {
                continue;
            }
            match args.output {
                Some(out @ (Output::Yaml | Output::Json)) => {
                    print_docs(std::slice::from_ref(&ev.object), true, out)?;
                    if out == Output::Yaml {
                        println!("---");
                    }
                }
                Some(Output::Name) => {
                    println!("{}/{}", rt.singular_group(), meta::name(&ev.object))
                }
                _ => {
                    let text = render(
                        rt,
                        std::slice::from_ref(&ev.object),
                        args.output == Some(Output::Wide),
                        args.all_namespaces,
                        !printed_any,
                    );
                    printed_any = true;
                    print!("{text}");
                }
            }
            use std::io::Write;
            let _ = std::io::stdout().flush();
        }
    }
    Ok(())
}

async fn events_for(client: &Client, obj: &Value) -> Vec<Value> {
    let Some(ev_rt) = registry::by_kind("v1", "Event") else {
        return Vec::new();
    };
    let ns = meta::namespace(obj);
    let mut fs = format!(
        "involvedObject.name={},involvedObject.uid={}",
        meta::name(obj),
        meta::uid(obj)
    );
    if !ns.is_empty() {
        fs.push_str(&format!(",involvedObject.namespace={ns}"));
    }
    let opts = ListOptions {
        label_selector: None,
        field_selector: Some(fs),
    };
    let scope = if ns.is_empty() { "default" } else { ns };
    client
        .list(ev_rt, Some(scope), &opts)
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

pub async fn describe(client: &Client, args: DescribeArgs) -> Result<(), CliError> {
    let rt = resolve_kind(&args.kind)?;
    let ns = namespace_or_default(&args.namespace);
    let objs = if args.names.is_empty() {
        let opts = ListOptions {
            label_selector: args.selector.clone(),
            field_selector: None,
        };
        client
            .list(rt, scope(rt, args.all_namespaces, &ns), &opts)
            .await?
            .items
    } else {
        let mut v = Vec::new();
        for name in &args.names {
            v.push(client.get(rt, scope(rt, false, &ns), name).await?);
        }
        v
    };
    if objs.is_empty() {
        eprintln!("No resources found in {ns} namespace.");
    }
    for (i, obj) in objs.iter().enumerate() {
        if i > 0 {
            println!("\n");
        }
        let events = events_for(client, obj).await;
        let ns = meta::namespace(obj);
        let replica_sets = match (rt.kind, registry::by_kind("apps/v1", "ReplicaSet")) {
            ("Deployment", Some(rs)) => client
                .list(rs, Some(ns), &ListOptions::default())
                .await
                .ok()
                .map(|l| l.items),
            _ => None,
        };
        let endpoints = match (rt.kind, registry::by_kind("v1", "Endpoints")) {
            ("Service", Some(ep)) => client.get(ep, Some(ns), meta::name(obj)).await.ok(),
            _ => None,
        };
        let related = describe::Related {
            replica_sets: replica_sets.as_deref(),
            endpoints: endpoints.as_ref(),
        };
        print!(
            "{}",
            describe::describe_with(rt, obj, &related, &events, now())
        );
    }
    Ok(())
}

pub async fn events(client: &Client, args: EventsArgs) -> Result<(), CliError> {
    let rt = registry::by_kind("v1", "Event")
        .ok_or_else(|| CliError::Failed("events are not served".into()))?;
    let ns = namespace_or_default(&args.namespace);
    let mut opts = ListOptions::default();
    if let Some(target) = &args.for_object {
        let (kind, name) = target
            .split_once('/')
            .ok_or_else(|| CliError::Usage(format!("--for takes KIND/NAME, got \"{target}\"")))?;
        let krt = resolve_kind(kind)?;
        opts.field_selector = Some(format!(
            "involvedObject.kind={},involvedObject.name={name}",
            krt.kind
        ));
    }
    let scope = scope(rt, args.all_namespaces, &ns);
    let list = match client.list(rt, scope, &opts).await {
        Ok(l) => l,
        Err(ClientError::Api(ApiError::NotFound(_))) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut items = list.items;
    items.sort_by_key(last_seen);
    let mut printed = false;
    if items.is_empty() && !args.watch {
        if args.all_namespaces {
            eprintln!("No events found.");
        } else {
            eprintln!("No events found in {ns} namespace.");
        }
    } else if !items.is_empty() {
        print!("{}", render(rt, &items, false, args.all_namespaces, true));
        printed = true;
    }
    if args.watch {
        let mut watch = client
            .watch(rt, scope, &opts, &list.resource_version)
            .await?;
        while let Some(ev) = watch.next().await {
            let ev = ev?;
            print!(
                "{}",
                render(
                    rt,
                    std::slice::from_ref(&ev.object),
                    false,
                    args.all_namespaces,
                    !printed
                )
            );
            printed = true;
            use std::io::Write;
            let _ = std::io::stdout().flush();
        }
    }
    Ok(())
}

fn last_seen(ev: &Value) -> String {
    for p in [
        "/lastTimestamp",
        "/eventTime",
        "/firstTimestamp",
        "/metadata/creationTimestamp",
    ] {
        let s = meta::str_at(ev, p);
        if !s.is_empty() {
            return s.to_string();
        }
    }
    String::new()
}
