//! `berth apply` and `berth delete`.
//!
//! Apply is client-side apply as kubectl does it: the manifest as given is kept in the
//! `kubectl.kubernetes.io/last-applied-configuration` annotation; an existing object is
//! patched with a JSON merge patch made of the new manifest plus `null` for every field the
//! previous manifest had and this one dropped. Before anything changes, every object is sent
//! once with `dryRun=All`, so a manifest with one bad object changes nothing.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::manifest::{self, Doc};
use super::{ApplyArgs, Cascade, CliError, DeleteArgs, namespace_or_default, resolve_kind};
use crate::api::patch::PatchType;
use crate::api::registry::{self, ResourceType};
use crate::api::{ApiError, meta};
use crate::client::{Client, ClientError};

/// The annotation kubectl keeps the applied manifest in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

struct Planned {
    rt: &'static ResourceType,
    ns: Option<String>,
    name: String,
    object: Value,
    source: String,
}

fn plan(docs: Vec<Doc>, ns_flag: &Option<String>) -> Result<Vec<Planned>, CliError> {
    let mut out = Vec::new();
    for doc in docs {
        let api_version = meta::str_at(&doc.object, "/apiVersion");
        let kind = meta::str_at(&doc.object, "/kind");
        let rt = registry::by_kind(api_version, kind).ok_or_else(|| {
            CliError::Failed(format!(
                "{}: no matches for kind \"{kind}\" in version \"{api_version}\"{}",
                doc.source,
                registry::REGISTRY
                    .iter()
                    .find(|r| r.kind == kind)
                    .map(|r| format!(" (did you mean apiVersion: {}?)", r.api_version))
                    .unwrap_or_default()
            ))
        })?;
        let name = meta::name(&doc.object).to_string();
        if name.is_empty() {
            return Err(CliError::Failed(format!(
                "{}: metadata.name is required",
                doc.source
            )));
        }
        let body_ns = meta::namespace(&doc.object).to_string();
        let ns = if rt.namespaced {
            match (&body_ns, ns_flag) {
                (b, Some(f)) if !b.is_empty() && b != f => {
                    return Err(CliError::Failed(format!(
                        "{}: the namespace from the provided object \"{b}\" does not match the namespace \"{f}\"; pass --namespace={b} or remove it from the manifest",
                        doc.source
                    )));
                }
                (b, _) if !b.is_empty() => Some(b.clone()),
                _ => Some(namespace_or_default(ns_flag)),
            }
        } else {
            None
        };
        out.push(Planned {
            rt,
            ns,
            name,
            object: doc.object,
            source: doc.source,
        });
    }
    Ok(out)
}

/// The manifest as stored in the last-applied annotation (without that annotation).
fn applied_config(obj: &Value) -> Value {
    let mut config = obj.clone();
    if let Some(ann) = config
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        ann.remove(LAST_APPLIED);
        if ann.is_empty()
            && let Some(m) = config
                .pointer_mut("/metadata")
                .and_then(Value::as_object_mut)
        {
            m.remove("annotations");
        }
    }
    meta::set(&mut config, "resourceVersion", None);
    config
}

fn with_annotation(obj: &Value, config: &Value) -> Value {
    let mut out = obj.clone();
    meta::set(&mut out, "resourceVersion", None);
    let meta_map = meta::metadata_mut(&mut out);
    let ann = meta_map
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !ann.is_object() {
        *ann = Value::Object(Map::new());
    }
    if let Some(a) = ann.as_object_mut() {
        a.insert(
            LAST_APPLIED.to_string(),
            Value::String(format!("{}\n", config)),
        );
    }
    out
}

/// Merge patch from the previous manifest to the new one: the new manifest, plus `null` for
/// each field the previous one set and the new one does not.
pub fn merge_patch(previous: Option<&Value>, new: &Value) -> Value {
    match (previous, new) {
        (Some(Value::Object(old)), Value::Object(new_map)) => {
            let mut out = Map::new();
            for (k, v) in new_map {
                out.insert(k.clone(), merge_patch(old.get(k), v));
            }
            for k in old.keys() {
                if !new_map.contains_key(k) {
                    out.insert(k.clone(), Value::Null);
                }
            }
            Value::Object(out)
        }
        (_, v) => v.clone(),
    }
}

async fn apply_one(client: &Client, p: &Planned) -> Result<&'static str, ClientError> {
    let config = applied_config(&p.object);
    let desired = with_annotation(&p.object, &config);
    match client.get(p.rt, p.ns.as_deref(), &p.name).await {
        Err(ClientError::Api(ApiError::NotFound(_))) => {
            client.create(p.rt, p.ns.as_deref(), &desired).await?;
            Ok("created")
        }
        Err(e) => Err(e),
        Ok(live) => {
            let previous = meta::annotations(&live)
                .get(LAST_APPLIED)
                .and_then(|s| serde_json::from_str::<Value>(s).ok());
            let patch = merge_patch(previous.as_ref(), &desired);
            let after = client
                .patch(p.rt, p.ns.as_deref(), &p.name, PatchType::Merge, &patch)
                .await?;
            // Controllers write status and their own annotations at any time: what counts
            // is whether this apply changed what the manifest says.
            let ours = |o: &Value| {
                let mut o = o.clone();
                if let Some(m) = o.as_object_mut() {
                    m.remove("status");
                }
                if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                    for k in ["resourceVersion", "managedFields", "generation"] {
                        m.remove(k);
                    }
                    if let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut) {
                        a.retain(|k, _| !k.starts_with("deployment.kubernetes.io/"));
                    }
                }
                o
            };
            if client.is_dry_run() || ours(&after) != ours(&live) {
                Ok("configured")
            } else {
                Ok("unchanged")
            }
        }
    }
}

fn label(p: &Planned) -> String {
    format!("{}/{}", p.rt.singular_group(), p.name)
}

pub async fn apply(client: &Client, args: ApplyArgs) -> Result<(), CliError> {
    let docs = manifest::read_all(&args.files)?;
    let planned = plan(docs, &args.namespace)?;
    // Pass 1: the server checks every object and changes nothing.
    let checker = client.clone().with_dry_run(true);
    let mut problems = Vec::new();
    let new_namespaces: Vec<&str> = planned
        .iter()
        .filter(|p| p.rt.plural == "namespaces")
        .map(|p| p.name.as_str())
        .collect();
    for p in &planned {
        if let Err(e) = apply_one(&checker, p).await {
            if matches!(e, ClientError::Connect { .. }) {
                return Err(e.into());
            }
            // A namespace this same apply creates cannot exist during the dry run.
            if let ClientError::Api(ApiError::NotFound(o)) = &e
                && o.kind == "namespaces"
                && new_namespaces.contains(&o.name.as_str())
            {
                continue;
            }
            problems.push(format!("{} ({}): {e}", label(p), p.source));
        }
    }
    if !problems.is_empty() {
        return Err(CliError::Failed(format!(
            "nothing was applied:\n{}",
            problems.join("\n")
        )));
    }
    if args.dry_run {
        for p in &planned {
            println!("{} checked (server dry run)", label(p));
        }
        return Ok(());
    }
    // Pass 2: for real.
    let mut failed = 0;
    for p in &planned {
        match apply_one(client, p).await {
            Ok(what) => println!("{} {what}", label(p)),
            Err(e) => {
                failed += 1;
                eprintln!("error: {} ({}): {e}", label(p), p.source);
            }
        }
    }
    if failed > 0 {
        Err(CliError::Failed(format!(
            "{failed} object(s) failed to apply"
        )))
    } else {
        Ok(())
    }
}

pub async fn delete(client: &Client, args: DeleteArgs) -> Result<(), CliError> {
    let targets: Vec<(&'static ResourceType, Option<String>, String)> = if !args.files.is_empty() {
        if !args.args.is_empty() {
            return Err(CliError::Usage(
                "give either -f FILE or KIND NAME…, not both".into(),
            ));
        }
        plan(manifest::read_all(&args.files)?, &args.namespace)?
            .into_iter()
            .map(|p| (p.rt, p.ns, p.name))
            .collect()
    } else {
        let Some((kind, names)) = args.args.split_first() else {
            return Err(CliError::Usage(
                "say what to delete: berth delete KIND NAME… or berth delete -f FILE".into(),
            ));
        };
        let mut out = Vec::new();
        let by_selection = args.selector.is_some() || args.all;
        for (kind, names) in split_kind_names(kind, names)? {
            let rt = resolve_kind(&kind)?;
            if by_selection {
                if !names.is_empty() {
                    return Err(CliError::Usage(
                        "give either names or -l/--all, not both".into(),
                    ));
                }
                let ns = rt.namespaced.then(|| namespace_or_default(&args.namespace));
                let opts = crate::client::ListOptions {
                    label_selector: args.selector.clone().filter(|_| !args.all),
                    field_selector: None,
                };
                let list = client.list(rt, ns.as_deref(), &opts).await?;
                for item in list.items {
                    out.push((rt, ns.clone(), meta::name(&item).to_string()));
                }
                continue;
            }
            if names.is_empty() {
                return Err(CliError::Usage(format!(
                    "name the {} to delete: berth delete {kind} NAME",
                    rt.plural
                )));
            }
            for name in names {
                let ns = rt.namespaced.then(|| namespace_or_default(&args.namespace));
                out.push((rt, ns, name));
            }
        }
        out
    };
    if targets.is_empty() && (args.selector.is_some() || args.all) {
        // kubectl's answer when a selection matches nothing (not an error).
        eprintln!("No resources found");
        return Ok(());
    }
    let policy = match args.cascade {
        Cascade::Background => "Background",
        Cascade::Foreground => "Foreground",
        Cascade::Orphan => "Orphan",
    };
    // kubectl: --force is --grace-period=0 and says what it means; a grace period of 0
    // without --force becomes 1 s (a graceful deletion as short as it gets).
    let grace = match (args.force, args.grace_period) {
        (true, g) => {
            eprintln!(
                "Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely."
            );
            Some(g.max(0))
        }
        (false, g) if g < 0 => None,
        (false, 0) => Some(1),
        (false, g) => Some(g),
    };
    let mut failed = 0;
    let mut waiting = Vec::new();
    for (rt, ns, name) in targets {
        match client
            .delete(rt, ns.as_deref(), &name, Some(policy), grace)
            .await
        {
            Ok(_) => {
                if args.force {
                    println!("{} \"{name}\" force deleted", rt.singular_group());
                } else {
                    println!("{} \"{name}\" deleted", rt.singular_group());
                }
                waiting.push((rt, ns, name));
            }
            Err(ClientError::Api(ApiError::NotFound(_))) if args.ignore_not_found => {}
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    if args.wait {
        let deadline = Instant::now() + Duration::from_secs(args.timeout);
        for (rt, ns, name) in waiting {
            loop {
                match client.get(rt, ns.as_deref(), &name).await {
                    Err(ClientError::Api(ApiError::NotFound(_))) => break,
                    Err(e) => return Err(e.into()),
                    Ok(_) if Instant::now() >= deadline => {
                        return Err(CliError::Failed(format!(
                            "timed out after {}s waiting for {} \"{name}\" to be deleted (finalizers still hold it)",
                            args.timeout,
                            rt.singular_group()
                        )));
                    }
                    Ok(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        }
    }
    if failed > 0 {
        Err(CliError::Failed(format!(
            "{failed} object(s) could not be deleted"
        )))
    } else {
        Ok(())
    }
}

/// `deploy web` or `deploy/web svc/api` into kind → names.
fn split_kind_names(first: &str, rest: &[String]) -> Result<Vec<(String, Vec<String>)>, CliError> {
    if first.contains('/') {
        let mut out = Vec::new();
        for item in std::iter::once(first.to_string()).chain(rest.iter().cloned()) {
            let (k, n) = item
                .split_once('/')
                .ok_or_else(|| CliError::Usage(format!("expected KIND/NAME, got \"{item}\"")))?;
            out.push((k.to_string(), vec![n.to_string()]));
        }
        return Ok(out);
    }
    Ok(vec![(first.to_string(), rest.to_vec())])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_nulls_dropped_fields_only() {
        let old =
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {"x": "1", "y": "2"}});
        let new = json!({"metadata": {"labels": {"a": "1"}}, "data": {"x": "3"}});
        let p = merge_patch(Some(&old), &new);
        assert_eq!(
            p,
            json!({"metadata": {"labels": {"a": "1", "b": null}}, "data": {"x": "3", "y": null}})
        );
        assert_eq!(merge_patch(None, &new), new);
    }

    #[test]
    fn the_annotation_holds_the_manifest_without_itself() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        let config = applied_config(&obj);
        let desired = with_annotation(&obj, &config);
        let stored = meta::annotations(&desired)[LAST_APPLIED].clone();
        let back: Value = serde_json::from_str(&stored).expect("json");
        assert_eq!(back, obj);
        assert_eq!(applied_config(&desired), obj);
    }
}
