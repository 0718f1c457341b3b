//! Get, list, create, update, patch and delete of objects and their `status` and `scale`
//! subresources.

use std::sync::Arc;

use bytes::Bytes;
use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};

use super::routes::ResourceRoute;
use super::{Body, Query, json_response};
use crate::api::patch::{self, PatchType};
use crate::api::selector::{FieldSelector, LabelSelector};
use crate::api::{ApiError, meta, table};
use crate::store::{DeleteOptions, Deleted, Propagation, Store, StoreError, Subresource};

/// One resource request, parsed.
pub struct Ctx {
    pub route: ResourceRoute,
    pub query: Query,
    pub wants_table: bool,
    pub content_type: String,
    pub body: Bytes,
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(StoreError::into_api),
        Err(e) => Err(ApiError::internal(format!("store task failed: {e}"))),
    }
}

pub async fn handle(
    store: &Arc<Store>,
    method: Method,
    ctx: Ctx,
) -> Result<Response<Body>, ApiError> {
    let sub = ctx.route.subresource.clone();
    match (method, ctx.route.name.is_some(), sub.as_deref()) {
        (Method::GET, false, None) => list(store, ctx).await,
        (Method::GET, true, None | Some("status")) => get(store, ctx).await,
        (Method::GET, true, Some("scale")) if ctx.route.rt.scale_subresource => {
            get_scale(store, ctx).await
        }
        (Method::POST, false, None) => create(store, ctx).await,
        (Method::PUT, true, None) => update(store, ctx, Subresource::Main).await,
        (Method::PUT, true, Some("status")) if ctx.route.rt.status_subresource => {
            update(store, ctx, Subresource::Status).await
        }
        (Method::PUT, true, Some("scale")) if ctx.route.rt.scale_subresource => {
            put_scale(store, ctx).await
        }
        (Method::PATCH, true, None) => patch(store, ctx, Subresource::Main).await,
        (Method::PATCH, true, Some("status")) if ctx.route.rt.status_subresource => {
            patch(store, ctx, Subresource::Status).await
        }
        (Method::PATCH, true, Some("scale")) if ctx.route.rt.scale_subresource => {
            patch_scale(store, ctx).await
        }
        (Method::DELETE, true, None) => delete(store, ctx).await,
        (Method::POST, true, Some("binding")) if ctx.route.rt.kind == "Pod" => {
            bind(store, ctx).await
        }
        (_, _, Some(other)) if !matches!(other, "status" | "scale" | "binding") => {
            Err(ApiError::NotFoundPath {
                message: format!(
                    "the server could not find the requested resource: {} has no subresource \"{other}\"",
                    ctx.route.rt.plural
                ),
            })
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

fn ns(ctx: &Ctx) -> Option<String> {
    ctx.route.namespace.clone()
}

fn name(ctx: &Ctx) -> String {
    ctx.route.name.clone().unwrap_or_default()
}

fn respond(ctx: &Ctx, status: StatusCode, obj: Value) -> Response<Body> {
    if ctx.wants_table {
        let now = k8s_openapi::jiff::Timestamp::now();
        let mut t = table::table_object(
            ctx.route.rt,
            std::slice::from_ref(&obj),
            now,
            ctx.query.include_object,
        );
        t["metadata"] = json!({"resourceVersion": meta::resource_version(&obj)});
        return json_response(status, &t);
    }
    json_response(status, &obj)
}

async fn get(store: &Arc<Store>, ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let (s, rt, ns, name) = (store.clone(), ctx.route.rt, ns(&ctx), name(&ctx));
    let obj = blocking(move || s.get(rt, ns.as_deref(), &name)).await?;
    Ok(respond(&ctx, StatusCode::OK, obj))
}

/// Selectors of a list or watch request.
pub fn selectors(
    ctx_route: &ResourceRoute,
    q: &Query,
) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(&q.label_selector)
        .map_err(|e| ApiError::bad_request(format!("unable to parse labelSelector: {e}")))?;
    let fields = FieldSelector::parse(&q.field_selector, ctx_route.rt)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((labels, fields))
}

async fn list(store: &Arc<Store>, ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let (labels, fields) = selectors(&ctx.route, &ctx.query)?;
    let (s, rt, ns) = (store.clone(), ctx.route.rt, ns(&ctx));
    let (raw, revision) = blocking(move || s.list_raw(rt, ns.as_deref())).await?;
    let filtering = !labels.is_empty() || !fields.is_empty();
    // Objects are parsed one at a time, only when a selector or a Table needs them.
    let parse = |bytes: &[u8]| -> Result<Value, ApiError> {
        serde_json::from_slice(bytes)
            .map_err(|e| ApiError::internal(format!("a stored {} is not valid JSON: {e}", rt.kind)))
    };
    if ctx.wants_table {
        let mut items = Vec::new();
        for bytes in &raw {
            let o = parse(bytes)?;
            if labels.matches_object(&o) && fields.matches(&o) {
                items.push(o);
            }
        }
        let now = k8s_openapi::jiff::Timestamp::now();
        let mut t = table::table_object(rt, &items, now, ctx.query.include_object);
        t["metadata"] = json!({"resourceVersion": revision.to_string()});
        return Ok(json_response(StatusCode::OK, &t));
    }
    let mut body = Vec::with_capacity(raw.iter().map(Vec::len).sum::<usize>() + raw.len() + 160);
    body.extend_from_slice(
        format!(
            "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":{{\"resourceVersion\":\"{revision}\"}},\"items\":[",
            rt.list_kind, rt.api_version
        )
        .as_bytes(),
    );
    let mut first = true;
    for bytes in &raw {
        if filtering {
            let o = parse(bytes)?;
            if !(labels.matches_object(&o) && fields.matches(&o)) {
                continue;
            }
        }
        if !first {
            body.push(b',');
        }
        first = false;
        body.extend_from_slice(bytes);
    }
    body.extend_from_slice(b"]}");
    Ok(super::json_bytes_response(StatusCode::OK, body))
}

/// Decodes a request body: JSON, or YAML when the client says so.
fn decode_body(ctx: &Ctx) -> Result<Value, ApiError> {
    let ct = ctx
        .content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    if ctx.body.is_empty() {
        return Err(ApiError::bad_request(
            "the request body is empty; send the object as JSON",
        ));
    }
    match ct {
        "application/yaml" | "application/apply-patch+yaml" => serde_yaml::from_slice(&ctx.body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid YAML: {e}"))),
        "application/vnd.kubernetes.protobuf" => Err(ApiError::UnsupportedMediaType {
            message: "protobuf request bodies are not supported; send JSON (with kubectl: kubectl create … --dry-run=client -o yaml | kubectl apply -f -)".to_string(),
        }),
        _ => serde_json::from_slice(&ctx.body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}"))),
    }
}

async fn create(store: &Arc<Store>, ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let body = decode_body(&ctx)?;
    let (s, rt, ns, dry) = (store.clone(), ctx.route.rt, ns(&ctx), ctx.query.dry_run);
    let obj = blocking(move || s.create(rt, ns.as_deref(), body, dry)).await?;
    Ok(respond(&ctx, StatusCode::CREATED, obj))
}

async fn update(
    store: &Arc<Store>,
    ctx: Ctx,
    sub: Subresource,
) -> Result<Response<Body>, ApiError> {
    let body = decode_body(&ctx)?;
    let (s, rt, ns, name, dry) = (
        store.clone(),
        ctx.route.rt,
        ns(&ctx),
        name(&ctx),
        ctx.query.dry_run,
    );
    let obj = blocking(move || s.update(rt, ns.as_deref(), &name, body, sub, dry)).await?;
    Ok(respond(&ctx, StatusCode::OK, obj))
}

fn patch_type(ctx: &Ctx) -> Result<PatchType, ApiError> {
    match PatchType::from_content_type(&ctx.content_type) {
        Some(PatchType::Apply) => Err(ApiError::UnsupportedMediaType {
            message: "server-side apply is not supported yet; use client-side apply (berth apply, or kubectl apply without --server-side)".to_string(),
        }),
        Some(p) => Ok(p),
        None => Err(ApiError::UnsupportedMediaType {
            message: format!(
                "the body of a PATCH must be application/json-patch+json, application/merge-patch+json or application/strategic-merge-patch+json, not \"{}\"",
                ctx.content_type
            ),
        }),
    }
}

fn patch_body(ctx: &Ctx) -> Result<Value, ApiError> {
    serde_json::from_slice(&ctx.body)
        .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))
}

async fn patch(store: &Arc<Store>, ctx: Ctx, sub: Subresource) -> Result<Response<Body>, ApiError> {
    let pt = patch_type(&ctx)?;
    let p = patch_body(&ctx)?;
    let (s, rt, ns, name, dry) = (
        store.clone(),
        ctx.route.rt,
        ns(&ctx),
        name(&ctx),
        ctx.query.dry_run,
    );
    let obj = blocking(move || {
        s.update_with(rt, ns.as_deref(), &name, sub, dry, |current| {
            patch::apply_patch(pt, current, &p)
                .map_err(|e| ApiError::bad_request(format!("the patch could not be applied: {e}")))
        })
    })
    .await?;
    Ok(respond(&ctx, StatusCode::OK, obj))
}

/// The `autoscaling/v1` Scale of an object with `spec.replicas`.
fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector")
        .and_then(|s| {
            serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>(
                s.clone(),
            )
            .ok()
        })
        .and_then(|s| LabelSelector::from_k8s(&s).ok())
        .map(|s| s.to_string())
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta::name(obj),
            "namespace": meta::namespace(obj),
            "uid": meta::uid(obj),
            "resourceVersion": meta::resource_version(obj),
            "creationTimestamp": obj.pointer("/metadata/creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    })
}

/// Applies a Scale's `spec.replicas` to the object (with the Scale's resourceVersion as a
/// precondition when it carries one).
fn apply_scale(current: &Value, scale: &Value) -> Result<Value, ApiError> {
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            ApiError::bad_request("the Scale must set spec.replicas to a whole number")
        })?;
    let mut obj = current.clone();
    match obj.get_mut("spec") {
        Some(Value::Object(spec)) => {
            spec.insert("replicas".into(), json!(replicas));
        }
        _ => {
            if let Some(map) = obj.as_object_mut() {
                map.insert("spec".into(), json!({ "replicas": replicas }));
            }
        }
    }
    let rv = meta::resource_version(scale);
    if !rv.is_empty() {
        meta::set(
            &mut obj,
            "resourceVersion",
            Some(Value::String(rv.to_string())),
        );
    }
    Ok(obj)
}

async fn get_scale(store: &Arc<Store>, ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let (s, rt, ns, name) = (store.clone(), ctx.route.rt, ns(&ctx), name(&ctx));
    let obj = blocking(move || s.get(rt, ns.as_deref(), &name)).await?;
    Ok(json_response(StatusCode::OK, &scale_of(&obj)))
}

/// Writes a new Scale, computed from the current one by `new_scale`, to `spec.replicas`.
async fn write_scale(
    store: &Arc<Store>,
    ctx: &Ctx,
    new_scale: impl FnOnce(&Value) -> Result<Value, ApiError> + Send + 'static,
) -> Result<Response<Body>, ApiError> {
    let (s, rt, ns, name, dry) = (
        store.clone(),
        ctx.route.rt,
        ns(ctx),
        name(ctx),
        ctx.query.dry_run,
    );
    let obj = blocking(move || {
        s.update_with(
            rt,
            ns.as_deref(),
            &name,
            Subresource::Main,
            dry,
            |current| apply_scale(current, &new_scale(&scale_of(current))?),
        )
    })
    .await?;
    Ok(json_response(StatusCode::OK, &scale_of(&obj)))
}

async fn put_scale(store: &Arc<Store>, ctx: Ctx) -> Result<Response<Body>, ApiError> {
    // kubectl sends this PUT without a Content-Type: the body is JSON.
    let scale = patch_body(&ctx)?;
    write_scale(store, &ctx, move |_| Ok(scale)).await
}

async fn patch_scale(store: &Arc<Store>, ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let pt = patch_type(&ctx)?;
    let p = patch_body(&ctx)?;
    write_scale(store, &ctx, move |current| {
        patch::apply_patch(pt, current, &p)
            .map_err(|e| ApiError::bad_request(format!("the patch could not be applied: {e}")))
    })
    .await
}

/// `POST …/pods/{name}/binding` with a `Binding` (`target: {kind: Node, name}`).
async fn bind(store: &Arc<Store>, ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let body = decode_body(&ctx)?;
    if body
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k != "Binding")
    {
        return Err(ApiError::bad_request(
            "the body of a binding request must be a Binding",
        ));
    }
    let node = meta::str_at(&body, "/target/name").to_string();
    if node.is_empty() {
        return Err(ApiError::bad_request(
            "a Binding needs target.name: the node to bind the pod to",
        ));
    }
    let uid = Some(meta::uid(&body).to_string()).filter(|u| !u.is_empty());
    let (s, ns, name) = (store.clone(), ns(&ctx).unwrap_or_default(), name(&ctx));
    blocking(move || s.bind_pod(&ns, &name, &node, uid.as_deref())).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

async fn delete(store: &Arc<Store>, ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let mut opts = DeleteOptions {
        dry_run: ctx.query.dry_run,
        ..Default::default()
    };
    if !ctx.body.is_empty() {
        let body: Value = serde_json::from_slice(&ctx.body).map_err(|e| {
            ApiError::bad_request(format!("the DeleteOptions body is not valid JSON: {e}"))
        })?;
        if let Some(p) = body.get("propagationPolicy").and_then(Value::as_str) {
            opts.propagation = Some(Propagation::parse(p)?);
        }
        if body.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
            opts.propagation = Some(Propagation::Orphan);
        }
        opts.precondition_uid = body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string);
        opts.precondition_resource_version = body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(dry) = body.get("dryRun").and_then(Value::as_array) {
            opts.dry_run |= dry.iter().any(|d| d == "All");
        }
        if let Some(g) = body.get("gracePeriodSeconds").filter(|g| !g.is_null()) {
            opts.grace_period_seconds = Some(g.as_i64().ok_or_else(|| {
                ApiError::bad_request(format!(
                    "gracePeriodSeconds must be a whole number of seconds, not {g}"
                ))
            })?);
        }
    }
    if let Some(p) = &ctx.query.propagation_policy {
        opts.propagation = Some(Propagation::parse(p)?);
    }
    if let Some(g) = ctx.query.grace_period_seconds {
        opts.grace_period_seconds = Some(g);
    }
    let (s, rt, ns, name) = (store.clone(), ctx.route.rt, ns(&ctx), name(&ctx));
    let out = blocking(move || s.delete(rt, ns.as_deref(), &name, &opts)).await?;
    match out {
        Deleted::Pending(obj) => Ok(respond(&ctx, StatusCode::OK, obj)),
        Deleted::Gone(obj) => {
            let mut details =
                json!({"name": meta::name(&obj), "kind": rt.plural, "uid": meta::uid(&obj)});
            if !rt.group.is_empty() {
                details["group"] = json!(rt.group);
            }
            Ok(json_response(
                StatusCode::OK,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
            ))
        }
    }
}
