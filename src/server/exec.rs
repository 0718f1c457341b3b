//! `…/pods/{name}/exec`: a command in a running container over a WebSocket, with
//! Kubernetes' channel framing (`v5.channel.k8s.io`, and `v4.channel.k8s.io`).
//!
//! Every binary message is one channel byte and a payload: 0 stdin, 1 stdout, 2 stderr,
//! 3 the final `metav1.Status` (Success, or Failure with reason `NonZeroExitCode` and the
//! code as a cause), 4 terminal size (`{"Width":w,"Height":h}`), 255 (v5 only) "close
//! channel N" from the client, which it sends when its stdin ends.
//!
//! Errors found before the upgrade (pod, container, parameters) are ordinary Status
//! answers; once upgraded, an error goes to channel 3 and the socket closes. The process
//! is killed when the client goes away before it ends.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, frame::coding::CloseCode};

use super::node::{CONTAINER_ID_SCHEME, ExecProcess, ExecRequest, ExecService, unavailable};
use super::routes::ResourceRoute;
use super::{ApiServer, Body, websocket};
use crate::api::ApiError;
use crate::store::StoreError;

/// The subprotocols served, preferred first.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
pub const CLOSE: u8 = 255;

/// How long output is still forwarded after the process exited (a background child may
/// keep the streams open for ever).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// The annotation naming the container `kubectl exec` and `logs` pick by default.
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

/// The query of an exec request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecQuery {
    pub command: Vec<String>,
    pub container: Option<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl ExecQuery {
    pub fn parse(raw: &str) -> Result<ExecQuery, ApiError> {
        let mut q = ExecQuery::default();
        let flag = |k: &str, v: &str| -> Result<bool, ApiError> {
            match v {
                "true" | "1" | "True" => Ok(true),
                "false" | "0" | "False" | "" => Ok(false),
                _ => Err(ApiError::bad_request(format!(
                    "{k} must be true or false, not \"{v}\""
                ))),
            }
        };
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            match k.as_ref() {
                "command" => q.command.push(v.into_owned()),
                "container" => q.container = Some(v.into_owned()).filter(|c| !c.is_empty()),
                "stdin" => q.stdin = flag(&k, &v)?,
                "stdout" => q.stdout = flag(&k, &v)?,
                "stderr" => q.stderr = flag(&k, &v)?,
                "tty" => q.tty = flag(&k, &v)?,
                _ => {}
            }
        }
        if q.command.is_empty() {
            return Err(ApiError::bad_request(
                "you must specify at least one command for the container",
            ));
        }
        if !(q.stdin || q.stdout || q.stderr) {
            return Err(ApiError::bad_request(
                "you must specify at least 1 of stdin, stdout, stderr",
            ));
        }
        // A terminal has one output stream.
        if q.tty {
            q.stderr = false;
        }
        Ok(q)
    }
}

/// The runtime id of the named (or default) container of a stored pod, which must be
/// running.
pub fn resolve_container(pod: &Value, container: Option<&str>) -> Result<String, ApiError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let names = |key: &str| -> Vec<String> {
        pod["spec"][key]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let app = names("containers");
    let init = names("initContainers");
    let name = match container {
        Some(c) => c.to_string(),
        None => pod["metadata"]["annotations"][DEFAULT_CONTAINER_ANNOTATION]
            .as_str()
            .filter(|c| app.iter().any(|a| a == c))
            .map(str::to_string)
            .or_else(|| app.first().cloned())
            .ok_or_else(|| {
                ApiError::bad_request(format!("pod {pod_name} has no containers to exec in"))
            })?,
    };
    if !app.contains(&name) && !init.contains(&name) {
        return Err(ApiError::bad_request(format!(
            "container {name} is not valid for pod {pod_name}"
        )));
    }
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        return Err(ApiError::bad_request(format!(
            "cannot exec into a container in a completed pod; current phase is {phase}"
        )));
    }
    let statuses = ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|k| pod["status"][k].as_array())
        .flatten();
    for s in statuses {
        if s["name"].as_str() != Some(name.as_str()) || s["state"]["running"].is_null() {
            continue;
        }
        if let Some(id) = s["containerID"]
            .as_str()
            .and_then(|id| id.strip_prefix(CONTAINER_ID_SCHEME))
            .filter(|id| !id.is_empty())
        {
            return Ok(id.to_string());
        }
    }
    Err(ApiError::bad_request(format!(
        "container not found (\"{name}\")"
    )))
}

/// The Status sent on channel 3 when the process ends.
pub fn exit_status(code: i32) -> Value {
    if code == 0 {
        json!({"metadata": {}, "status": "Success"})
    } else {
        json!({
            "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: error executing command, exit code {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        })
    }
}

/// The exec endpoint. `route` names a pod with the `exec` subresource.
pub async fn serve(
    server: &Arc<ApiServer>,
    route: ResourceRoute,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let query = ExecQuery::parse(req.uri().query().unwrap_or_default())?;
    let (Some(ns), Some(name)) = (route.namespace.clone(), route.name.clone()) else {
        return Err(ApiError::MethodNotAllowed);
    };
    let store = server.store.clone();
    let rt = route.rt;
    let pod = tokio::task::spawn_blocking(move || store.get(rt, Some(&ns), &name))
        .await
        .map_err(|e| ApiError::internal(format!("store task failed: {e}")))?
        .map_err(StoreError::into_api)?;
    let container_id = resolve_container(&pod, query.container.as_deref())?;
    let service = server
        .node
        .exec
        .clone()
        .ok_or_else(|| unavailable("exec"))?;

    let request = ExecRequest {
        container_id,
        command: query.command.clone(),
        stdin: query.stdin,
        stdout: query.stdout,
        stderr: query.stderr,
        tty: query.tty,
    };
    websocket::accept(
        req,
        &PROTOCOLS,
        "exec",
        ", use kubectl 1.30 or later",
        move |ws, protocol| run(ws, service, request, protocol == PROTOCOLS[0]),
    )
}

fn frame(channel: u8, payload: &[u8]) -> Message {
    let mut data = Vec::with_capacity(payload.len() + 1);
    data.push(channel);
    data.extend_from_slice(payload);
    Message::Binary(Bytes::from(data))
}

/// Runs the exec over an upgraded connection until the process ends or the client goes.
async fn run<S>(
    ws: WebSocketStream<S>,
    service: Arc<dyn ExecService>,
    request: ExecRequest,
    v5: bool,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut incoming) = ws.split();
    let process = match service.exec(request).await {
        Ok(p) => p,
        Err(e) => {
            let status = serde_json::to_vec(&e.to_status()).unwrap_or_default();
            let _ = sink.send(frame(ERROR, &status)).await;
            let _ = sink.close().await;
            return;
        }
    };
    let ExecProcess {
        mut stdin,
        stdout,
        stderr,
        resize,
        exit,
    } = process;
    // Both outputs into one queue, tagged with their channel.
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(16);
    for (channel, rx) in [(STDOUT, stdout), (STDERR, stderr)] {
        if let Some(mut rx) = rx {
            let tx = out_tx.clone();
            tokio::spawn(async move {
                while let Some(chunk) = rx.recv().await {
                    if tx.send((channel, chunk)).await.is_err() {
                        return;
                    }
                }
            });
        }
    }
    drop(out_tx);

    tokio::pin!(exit);
    let mut code: Option<Result<i32, ApiError>> = None;
    let mut outputs_open = true;
    let drain = tokio::time::sleep(Duration::from_secs(0));
    tokio::pin!(drain);
    loop {
        if code.is_some() && !outputs_open {
            break;
        }
        tokio::select! {
            result = &mut exit, if code.is_none() => {
                code = Some(result);
                drain.as_mut().reset(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
            }
            () = &mut drain, if code.is_some() => break,
            chunk = out_rx.recv(), if outputs_open => match chunk {
                Some((channel, data)) => {
                    if sink.send(frame(channel, &data)).await.is_err() {
                        return; // The client is gone: dropping the process kills it.
                    }
                }
                None => outputs_open = false,
            },
            message = incoming.next() => match message {
                Some(Ok(Message::Binary(data))) => {
                    let Some((&channel, payload)) = data.split_first() else { continue };
                    match channel {
                        STDIN => {
                            if let Some(tx) = &stdin
                                && tx.send(Bytes::copy_from_slice(payload)).await.is_err()
                            {
                                stdin = None;
                            }
                        }
                        RESIZE => {
                            if let (Some(tx), Ok(size)) =
                                (&resize, serde_json::from_slice::<Value>(payload))
                            {
                                let w = size["Width"].as_u64().unwrap_or(0);
                                let h = size["Height"].as_u64().unwrap_or(0);
                                if let (Ok(w), Ok(h)) = (u16::try_from(w), u16::try_from(h))
                                    && w > 0 && h > 0
                                {
                                    let _ = tx.send((w, h)).await;
                                }
                            }
                        }
                        CLOSE if v5 && payload.first() == Some(&STDIN) => stdin = None,
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    if code.is_none() {
                        return; // The client is gone before the end: kill.
                    }
                    break;
                }
                Some(Ok(_)) => {}
            },
        }
    }
    let status = match code {
        Some(Ok(c)) => exit_status(c),
        Some(Err(e)) => e.to_status(),
        None => return,
    };
    let _ = sink
        .send(frame(
            ERROR,
            &serde_json::to_vec(&status).unwrap_or_default(),
        ))
        .await;
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await;
    let _ = sink.close().await;
    drop(stdin);
}

/// Whether a request on `route` is an exec (pods only).
pub fn is_exec(route: &ResourceRoute) -> bool {
    route.rt.plural == "pods"
        && route.rt.group.is_empty()
        && route.subresource.as_deref() == Some("exec")
        && route.name.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_needs_a_command_and_a_stream() {
        let q = ExecQuery::parse("command=sh&command=-c&command=echo%20hi&stdout=true&container=c")
            .expect("valid");
        assert_eq!(q.command, vec!["sh", "-c", "echo hi"]);
        assert_eq!(q.container.as_deref(), Some("c"));
        assert!(q.stdout && !q.stdin && !q.tty);
        assert!(ExecQuery::parse("stdout=true").is_err());
        assert!(ExecQuery::parse("command=ls").is_err());
        assert!(ExecQuery::parse("command=ls&stdout=maybe").is_err());
        let t = ExecQuery::parse("command=sh&stdin=true&stdout=true&stderr=true&tty=true")
            .expect("tty");
        assert!(t.tty && !t.stderr, "a terminal has no separate stderr");
    }

    fn pod(phase: &str, statuses: Value) -> Value {
        json!({
            "metadata": {"name": "web", "annotations": {DEFAULT_CONTAINER_ANNOTATION: "b"}},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "init"}]},
            "status": {"phase": phase, "containerStatuses": statuses},
        })
    }

    #[test]
    fn the_container_is_named_defaulted_and_must_run() {
        let running = json!([
            {"name": "a", "containerID": "berth://a-1", "state": {"running": {}}},
            {"name": "b", "containerID": "berth://b-1", "state": {"running": {}}},
        ]);
        let p = pod("Running", running.clone());
        assert_eq!(resolve_container(&p, Some("a")).expect("a"), "a-1");
        assert_eq!(
            resolve_container(&p, None).expect("annotated default"),
            "b-1"
        );
        let mut plain = p.clone();
        plain["metadata"]["annotations"] = json!({});
        assert_eq!(
            resolve_container(&plain, None).expect("first container"),
            "a-1"
        );
        let e = resolve_container(&p, Some("x")).expect_err("unknown");
        assert_eq!(e.to_string(), "container x is not valid for pod web");
        let stopped = pod(
            "Running",
            json!([{"name": "a", "containerID": "berth://a-1", "state": {"terminated": {}}}]),
        );
        let e = resolve_container(&stopped, Some("a")).expect_err("not running");
        assert_eq!(e.code(), 400);
        assert_eq!(e.to_string(), "container not found (\"a\")");
        let done = pod("Succeeded", running);
        assert!(
            resolve_container(&done, Some("a"))
                .expect_err("completed")
                .to_string()
                .contains("completed pod")
        );
    }

    #[test]
    fn exit_codes_become_statuses() {
        assert_eq!(exit_status(0)["status"], "Success");
        let s = exit_status(3);
        assert_eq!(s["status"], "Failure");
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
    }
}
