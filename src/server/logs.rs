//! `GET /api/v1/namespaces/{ns}/pods/{name}/log`: a container's log as `text/plain`,
//! streamed (chunked) while it is read, as kube-apiserver serves it.
//!
//! The server picks the container and the run from the stored pod (its spec, the
//! `kubectl.kubernetes.io/default-container` annotation and its container statuses) with
//! Kubernetes' rules and messages; the node's [`LogService`](super::node::LogService)
//! reads the log.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::CONTENT_TYPE;
use hyper::{Response, StatusCode};
use serde_json::Value;

use super::node::{self, LogRequest, NodeServices};
use super::{Body, routes::ResourceRoute};
use crate::api::{ApiError, FieldError, ObjectRef, registry};
use crate::store::{Store, StoreError};

/// The annotation naming the container `kubectl logs` and `exec` use by default.
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

/// `PodLogOptions` from the query string.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub tail_lines: Option<u64>,
    pub since_seconds: Option<u64>,
    pub since_time: Option<jiff::Timestamp>,
    pub timestamps: bool,
    pub limit_bytes: Option<u64>,
}

/// Go's `strconv.ParseBool`, which Kubernetes uses for query flags.
fn parse_bool(key: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" | "" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "{key} must be true or false, not \"{v}\""
        ))),
    }
}

impl LogOptions {
    /// Parses and validates the options (`pod` names the pod in error messages).
    pub fn parse(raw: &str, pod: &str) -> Result<LogOptions, ApiError> {
        let mut o = LogOptions::default();
        let mut causes = Vec::new();
        let int = |key: &str, v: &str, causes: &mut Vec<FieldError>| -> Option<i64> {
            match v.parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    causes.push(FieldError::invalid(key, v, "must be a whole number"));
                    None
                }
            }
        };
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            match k.as_ref() {
                "container" => o.container = Some(v.into_owned()).filter(|c| !c.is_empty()),
                "follow" => o.follow = parse_bool("follow", &v)?,
                "previous" => o.previous = parse_bool("previous", &v)?,
                "timestamps" => o.timestamps = parse_bool("timestamps", &v)?,
                "tailLines" => match int("tailLines", &v, &mut causes) {
                    Some(n) if n < 0 => causes.push(FieldError::invalid(
                        "tailLines",
                        n,
                        "must be greater than or equal to 0",
                    )),
                    Some(n) => o.tail_lines = Some(n as u64),
                    None => {}
                },
                "sinceSeconds" => match int("sinceSeconds", &v, &mut causes) {
                    Some(n) if n < 1 => causes.push(FieldError::invalid(
                        "sinceSeconds",
                        n,
                        "must be greater than 0",
                    )),
                    Some(n) => o.since_seconds = Some(n as u64),
                    None => {}
                },
                "limitBytes" => match int("limitBytes", &v, &mut causes) {
                    Some(n) if n < 1 => causes.push(FieldError::invalid(
                        "limitBytes",
                        n,
                        "must be greater than 0",
                    )),
                    Some(n) => o.limit_bytes = Some(n as u64),
                    None => {}
                },
                "sinceTime" => match v.parse::<jiff::Timestamp>() {
                    Ok(t) => o.since_time = Some(t),
                    Err(_) => causes.push(FieldError::invalid(
                        "sinceTime",
                        &v,
                        "must be an RFC 3339 time, e.g. 2024-01-02T15:04:05Z",
                    )),
                },
                _ => {}
            }
        }
        if o.since_seconds.is_some() && o.since_time.is_some() {
            causes.push(FieldError::forbidden(
                "",
                "at most one of `sinceTime` or `sinceSeconds` may be specified",
            ));
        }
        if causes.is_empty() {
            Ok(o)
        } else {
            Err(ApiError::Invalid {
                object: ObjectRef::new("", "PodLogOptions", pod),
                causes,
            })
        }
    }
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The container a log request is about, with Kubernetes' rules and messages.
pub fn resolve_container(pod: &Value, wanted: Option<&str>) -> Result<String, ApiError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let containers = names(&pod["spec"]["containers"]);
    let init = names(&pod["spec"]["initContainers"]);
    let ephemeral = names(&pod["spec"]["ephemeralContainers"]);
    if let Some(c) = wanted {
        if containers
            .iter()
            .chain(&init)
            .chain(&ephemeral)
            .any(|n| n == c)
        {
            return Ok(c.to_string());
        }
        return Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {pod_name}"
        )));
    }
    if let Some(d) = pod["metadata"]["annotations"][DEFAULT_CONTAINER_ANNOTATION].as_str()
        && containers.iter().chain(&init).any(|n| n == d)
    {
        return Ok(d.to_string());
    }
    match containers.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {pod_name}"
        ))),
        many => {
            let mut message = format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                many.join(" ")
            );
            if !init.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(ApiError::bad_request(message))
        }
    }
}

/// Which run of the container: its restart count and, while it may still run, its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub restart_count: u32,
    pub container_id: Option<String>,
}

/// Picks the run whose log is wanted from the container's status, as the kubelet does.
pub fn resolve_run(pod: &Value, container: &str, previous: bool) -> Result<Run, ApiError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let status = [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .filter_map(|k| pod["status"][k].as_array())
    .flatten()
    .find(|s| s["name"] == container);
    let waiting = |reason: &str| {
        let why = match reason {
            "ErrImagePull" => "image can't be pulled".to_string(),
            "ImagePullBackOff" => "trying and failing to pull image".to_string(),
            other => other.to_string(),
        };
        ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{pod_name}\" is waiting to start: {why}"
        ))
    };
    let Some(status) = status else {
        return Err(waiting("ContainerCreating"));
    };
    let restarts = status["restartCount"]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0);
    let id_of = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let last_terminated = id_of(&status["lastState"]["terminated"]["containerID"]);
    let state = &status["state"];
    // Kubernetes' `restartCount` is the attempt number of the newest container, and run N
    // logs to `N.log`. While a container waits to run again (CrashLoopBackOff), the newest
    // container is the one that ended: `lastState.terminated` is run N itself. Otherwise
    // (running, or terminated and not restarted yet) `lastState` is run N - 1.
    let waiting_again = !state["running"].is_object() && !state["terminated"].is_object();
    let last_run = || Run {
        restart_count: if waiting_again {
            restarts
        } else {
            restarts.saturating_sub(1)
        },
        container_id: None,
    };
    let terminated = || {
        ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{pod_name}\" is terminated"
        ))
    };
    if previous {
        return match last_terminated {
            Some(_) => Ok(last_run()),
            None => Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{pod_name}\" not found"
            ))),
        };
    }
    if state["running"].is_object() {
        return Ok(Run {
            restart_count: restarts,
            container_id: id_of(&status["containerID"]),
        });
    }
    if state["terminated"].is_object() {
        let id =
            id_of(&state["terminated"]["containerID"]).or_else(|| id_of(&status["containerID"]));
        return match (id, last_terminated) {
            (Some(id), _) => Ok(Run {
                restart_count: restarts,
                container_id: Some(id),
            }),
            (None, Some(_)) => Ok(last_run()),
            (None, None) => Err(terminated()),
        };
    }
    if last_terminated.is_some() {
        // Waiting to run again (CrashLoopBackOff): the log of the run that ended.
        return Ok(last_run());
    }
    let reason = state["waiting"]["reason"]
        .as_str()
        .filter(|r| !r.is_empty())
        .unwrap_or("ContainerCreating");
    Err(waiting(reason))
}

fn pod_type() -> Result<&'static registry::ResourceType, ApiError> {
    registry::by_kind("v1", "Pod")
        .ok_or_else(|| ApiError::internal("the Pod kind is not registered"))
}

/// Serves one log request.
pub async fn serve(
    store: Arc<Store>,
    services: &NodeServices,
    route: ResourceRoute,
    raw_query: &str,
) -> Result<Response<Body>, ApiError> {
    let pod_name = route.name.clone().unwrap_or_default();
    let options = LogOptions::parse(raw_query, &pod_name)?;
    let namespace = route.namespace.clone().ok_or_else(|| ApiError::NotFoundPath {
        message: "the server could not find the requested resource: a pod's log is at /api/v1/namespaces/{namespace}/pods/{name}/log".into(),
    })?;
    let (ns, name) = (namespace.clone(), pod_name.clone());
    let rt = pod_type()?;
    let pod = tokio::task::spawn_blocking(move || store.get(rt, Some(&ns), &name))
        .await
        .map_err(|e| ApiError::internal(format!("store task failed: {e}")))?
        .map_err(StoreError::into_api)?;
    let container = resolve_container(&pod, options.container.as_deref())?;
    let run = resolve_run(&pod, &container, options.previous)?;
    let service = services
        .logs
        .clone()
        .ok_or_else(|| node::unavailable("the log service"))?;
    let request = LogRequest {
        namespace,
        pod_name,
        pod_uid: pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        container,
        container_id: run.container_id,
        restart_count: run.restart_count,
        follow: options.follow,
        tail_lines: options.tail_lines,
        since_seconds: options.since_seconds,
        since_time: options.since_time,
        timestamps: options.timestamps,
        limit_bytes: options.limit_bytes,
    };
    let rx = service.logs(request).await?;
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Some(Ok(chunk)) => Some((Ok::<_, Infallible>(Frame::data(chunk)), rx)),
            Some(Err(e)) => {
                // The status line is sent already: the stream just ends.
                tracing::warn!(error = %e, "reading a container log failed");
                None
            }
            None => None,
        }
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed());
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: &[&str], init: &[&str], status: Value) -> Value {
        let c = |names: &[&str]| -> Value {
            names
                .iter()
                .map(|n| json!({"name": n, "image": "x"}))
                .collect()
        };
        json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {"containers": c(containers), "initContainers": c(init)},
            "status": status,
        })
    }

    #[test]
    fn options_parse_and_validate() {
        let o = LogOptions::parse(
            "container=app&follow=true&previous=1&tailLines=10&timestamps=true&limitBytes=5",
            "web",
        )
        .expect("ok");
        assert_eq!(o.container.as_deref(), Some("app"));
        assert!(o.follow && o.previous && o.timestamps);
        assert_eq!((o.tail_lines, o.limit_bytes), (Some(10), Some(5)));
        let o = LogOptions::parse("sinceTime=2026-11-23T10:00:00Z", "web").expect("ok");
        assert!(o.since_time.is_some());
        for bad in [
            "tailLines=-1",
            "sinceSeconds=0",
            "limitBytes=0",
            "tailLines=x",
            "sinceTime=yesterday",
            "sinceSeconds=5&sinceTime=2026-11-23T10:00:00Z",
        ] {
            let e = LogOptions::parse(bad, "web").expect_err(bad);
            assert_eq!(e.code(), 422, "{bad}: {e}");
            assert!(
                e.to_string()
                    .starts_with("PodLogOptions \"web\" is invalid"),
                "{e}"
            );
        }
        assert_eq!(
            LogOptions::parse("follow=maybe", "web")
                .expect_err("bool")
                .code(),
            400
        );
    }

    #[test]
    fn container_resolution() {
        let one = pod(&["app"], &[], json!({}));
        assert_eq!(resolve_container(&one, None).expect("only"), "app");
        let two = pod(&["a", "b"], &["setup"], json!({}));
        assert_eq!(
            resolve_container(&two, None)
                .expect_err("which")
                .to_string(),
            "a container name must be specified for pod web, choose one of: [a b] or one of the init containers: [setup]"
        );
        assert_eq!(
            resolve_container(&two, Some("setup")).expect("init"),
            "setup"
        );
        let e = resolve_container(&two, Some("nope")).expect_err("unknown");
        assert_eq!(e.to_string(), "container nope is not valid for pod web");
        assert_eq!(e.code(), 400);
        let mut annotated = pod(&["a", "b"], &[], json!({}));
        annotated["metadata"]["annotations"] = json!({DEFAULT_CONTAINER_ANNOTATION: "b"});
        assert_eq!(resolve_container(&annotated, None).expect("default"), "b");
        let none = pod(&[], &[], json!({}));
        assert_eq!(
            resolve_container(&none, None)
                .expect_err("none")
                .to_string(),
            "a container name must be specified for pod web"
        );
    }

    #[test]
    fn run_resolution() {
        let status = |s: Value| pod(&["app"], &[], json!({"containerStatuses": [s]}));
        let e = resolve_run(&pod(&["app"], &[], json!({})), "app", false).expect_err("no status");
        assert_eq!(
            e.to_string(),
            "container \"app\" in pod \"web\" is waiting to start: ContainerCreating"
        );
        let creating = status(json!({"name": "app", "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}}));
        assert_eq!(
            resolve_run(&creating, "app", false)
                .expect_err("creating")
                .to_string(),
            "container \"app\" in pod \"web\" is waiting to start: ContainerCreating"
        );
        let pulling = status(json!({"name": "app", "restartCount": 0,
            "state": {"waiting": {"reason": "ImagePullBackOff"}}}));
        assert_eq!(
            resolve_run(&pulling, "app", false)
                .expect_err("pull")
                .to_string(),
            "container \"app\" in pod \"web\" is waiting to start: trying and failing to pull image"
        );
        let running = status(
            json!({"name": "app", "restartCount": 2, "containerID": "berth://c3",
            "state": {"running": {}}, "lastState": {"terminated": {"containerID": "berth://c2", "exitCode": 1}}}),
        );
        assert_eq!(
            resolve_run(&running, "app", false).expect("current"),
            Run {
                restart_count: 2,
                container_id: Some("berth://c3".into())
            }
        );
        assert_eq!(
            resolve_run(&running, "app", true).expect("previous"),
            Run {
                restart_count: 1,
                container_id: None
            }
        );
        let first = status(
            json!({"name": "app", "restartCount": 0, "containerID": "berth://c1",
            "state": {"running": {}}}),
        );
        assert_eq!(
            resolve_run(&first, "app", true)
                .expect_err("no previous")
                .to_string(),
            "previous terminated container \"app\" in pod \"web\" not found"
        );
        let backoff = status(json!({"name": "app", "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"containerID": "berth://c3", "exitCode": 1}}}));
        // Waiting to run again: the newest container (run 3) is the one that ended, for
        // both the current log and --previous, as the kubelet answers.
        assert_eq!(
            resolve_run(&backoff, "app", true)
                .expect("previous")
                .restart_count,
            3
        );
        assert_eq!(
            resolve_run(&backoff, "app", false)
                .expect("last")
                .restart_count,
            3
        );
        let done = status(
            json!({"name": "app", "restartCount": 0, "containerID": "berth://c1",
            "state": {"terminated": {"containerID": "berth://c1", "exitCode": 0}}}),
        );
        assert_eq!(
            resolve_run(&done, "app", false).expect("done"),
            Run {
                restart_count: 0,
                container_id: Some("berth://c1".into())
            }
        );
    }
}
