//! `…/pods/{name}/portforward?ports=P[&ports=Q…]`: TCP connections to ports of a pod over a
//! WebSocket, with Kubernetes' WebSocket port-forward framing (`v4.channel.k8s.io`, also
//! offered as `portforward.k8s.io`).
//!
//! The i-th port of the query gets data channel 2i and error channel 2i+1. Every binary
//! message is one channel byte and a payload; the first message the server sends on each
//! channel carries the port number, 2 bytes little-endian. One WebSocket carries one TCP
//! connection per port (kubectl opens one WebSocket per local connection). Client bytes on a
//! data channel go to the pod; the pod's bytes come back on it. When the connection to the
//! pod fails or breaks, the reason goes as text on the error channel. The socket closes
//! once every port's connection has ended.
//!
//! berth's client also sends `[255, data channel]` when its local peer stops sending (a
//! half-close, as exec's v5 "close channel" message): the server then shuts down the
//! writing side of that port's connection. Other clients never send it.
//!
//! Errors found before the upgrade (no such pod, pod not running, bad ports) are ordinary
//! Status answers.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, frame::coding::CloseCode};

use super::node::{PortForwardService, unavailable};
use super::routes::ResourceRoute;
use super::websocket;
use super::{ApiServer, Body};
use crate::api::ApiError;
use crate::store::StoreError;

/// The subprotocols served, preferred first (the same framing under both names).
pub const PROTOCOLS: [&str; 2] = ["v4.channel.k8s.io", "portforward.k8s.io"];

/// `[CLOSE, data channel]` from the client: its side of that connection stopped sending.
pub const CLOSE: u8 = 255;

/// Most ports one request may forward (two channels each, below [`CLOSE`]).
pub const MAX_PORTS: usize = 64;

/// Messages queued from the ports to the socket.
const OUTGOING_BUFFER: usize = 32;

/// Chunks queued from the socket to one port.
const INCOMING_BUFFER: usize = 16;

/// Bytes read from a pod's port at a time.
const READ_CHUNK: usize = 32 * 1024;

/// The `ports` of a request: repeated and/or comma-separated numbers 1-65535.
pub fn parse_ports(raw: &str) -> Result<Vec<u16>, ApiError> {
    let mut ports = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        if k != "ports" {
            continue;
        }
        for p in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => ports.push(n),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "invalid port \"{p}\": a port is a number from 1 to 65535"
                    )));
                }
            }
        }
    }
    if ports.is_empty() {
        return Err(ApiError::bad_request(
            "query parameter \"ports\" is required: the pod ports to forward",
        ));
    }
    if ports.len() > MAX_PORTS {
        return Err(ApiError::bad_request(format!(
            "too many ports ({}); one request forwards at most {MAX_PORTS}",
            ports.len()
        )));
    }
    Ok(ports)
}

/// The uid of a stored pod that can take connections (phase Running), as kubectl checks.
pub fn running_pod_uid(pod: &Value) -> Result<String, ApiError> {
    let phase = pod["status"]["phase"].as_str().unwrap_or("Pending");
    if phase != "Running" {
        return Err(ApiError::bad_request(format!(
            "unable to forward port because pod is not running. Current status={phase}"
        )));
    }
    pod["metadata"]["uid"]
        .as_str()
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .ok_or_else(|| ApiError::internal("the stored pod has no uid"))
}

/// Whether a request on `route` is a port-forward (pods only).
pub fn is_portforward(route: &ResourceRoute) -> bool {
    route.rt.plural == "pods"
        && route.rt.group.is_empty()
        && route.subresource.as_deref() == Some("portforward")
        && route.name.is_some()
}

/// The port-forward endpoint. `route` names a pod with the `portforward` subresource.
pub async fn serve(
    server: &Arc<ApiServer>,
    route: ResourceRoute,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let ports = parse_ports(req.uri().query().unwrap_or_default())?;
    let (Some(ns), Some(name)) = (route.namespace.clone(), route.name.clone()) else {
        return Err(ApiError::MethodNotAllowed);
    };
    let store = server.store.clone();
    let rt = route.rt;
    let (ns2, name2) = (ns.clone(), name.clone());
    let pod = tokio::task::spawn_blocking(move || store.get(rt, Some(&ns2), &name2))
        .await
        .map_err(|e| ApiError::internal(format!("store task failed: {e}")))?
        .map_err(StoreError::into_api)?;
    let uid = running_pod_uid(&pod)?;
    let service = server
        .node
        .port_forward
        .clone()
        .ok_or_else(|| unavailable("port-forward"))?;

    let target = format!("{ns}/{name}");
    websocket::accept(
        req,
        &PROTOCOLS,
        "port-forward",
        " (SPDY-tunnelled port-forward is not supported)",
        move |ws, _| run(ws, service, uid, target, ports),
    )
}

fn frame(channel: u8, payload: &[u8]) -> Message {
    let mut data = Vec::with_capacity(payload.len() + 1);
    data.push(channel);
    data.extend_from_slice(payload);
    Message::Binary(Bytes::from(data))
}

/// What the socket hands to one port's connection.
enum Input {
    Data(Bytes),
    /// The client stopped sending: shut down the writing side.
    Shutdown,
}

/// Runs the forward over an upgraded connection until every port's connection ended or
/// the client went away.
async fn run<S>(
    ws: WebSocketStream<S>,
    service: Arc<dyn PortForwardService>,
    pod_uid: String,
    target: String,
    ports: Vec<u16>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut incoming) = ws.split();
    // The protocol's greeting: each channel's first message is its port.
    for (i, port) in ports.iter().enumerate() {
        let data = (2 * i) as u8;
        for channel in [data, data + 1] {
            if sink
                .send(frame(channel, &port.to_le_bytes()))
                .await
                .is_err()
            {
                return;
            }
        }
    }
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(OUTGOING_BUFFER);
    let mut inputs: Vec<mpsc::Sender<Input>> = Vec::with_capacity(ports.len());
    for (i, port) in ports.iter().enumerate() {
        let (in_tx, in_rx) = mpsc::channel::<Input>(INCOMING_BUFFER);
        inputs.push(in_tx);
        tokio::spawn(forward_port(
            service.clone(),
            pod_uid.clone(),
            target.clone(),
            *port,
            (2 * i) as u8,
            out_tx.clone(),
            in_rx,
        ));
    }
    drop(out_tx);
    loop {
        tokio::select! {
            message = out_rx.recv() => match message {
                Some(m) => {
                    if sink.send(m).await.is_err() {
                        return; // The client is gone: dropping `inputs` ends the ports.
                    }
                }
                None => break, // Every port's connection ended.
            },
            message = incoming.next() => match message {
                Some(Ok(Message::Binary(data))) => {
                    let Some((&channel, payload)) = data.split_first() else { continue };
                    let (index, input) = if channel == CLOSE {
                        match payload.first() {
                            Some(&c) => (usize::from(c / 2), Input::Shutdown),
                            None => continue,
                        }
                    } else if channel % 2 == 0 {
                        (usize::from(channel / 2), Input::Data(data.slice(1..)))
                    } else {
                        continue; // Nothing is read from error channels.
                    };
                    if let Some(tx) = inputs.get(index) {
                        // A port whose connection ended drops what is sent to it.
                        let _ = tx.send(input).await;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await;
    let _ = sink.close().await;
}

/// One port's connection: connects, then copies both ways until the pod closes its side,
/// the connection breaks, or the client goes away (`input` closes).
async fn forward_port(
    service: Arc<dyn PortForwardService>,
    pod_uid: String,
    target: String,
    port: u16,
    data_channel: u8,
    out: mpsc::Sender<Message>,
    mut input: mpsc::Receiver<Input>,
) {
    let error_channel = data_channel + 1;
    let report = |e: String| {
        let out = out.clone();
        let text = format!("error forwarding port {port} to pod {target}: {e}");
        async move {
            let _ = out.send(frame(error_channel, text.as_bytes())).await;
        }
    };
    let stream = match service.connect(pod_uid, port).await {
        Ok(s) => s,
        Err(e) => {
            report(e.to_string()).await;
            return;
        }
    };
    let (mut reader, mut writer) = tokio::io::split(stream);
    let to_pod = async {
        let mut writable = true;
        while let Some(message) = input.recv().await {
            match message {
                Input::Data(data) if writable => {
                    if writer.write_all(&data).await.is_err() {
                        // The pod stopped reading; what it still sends comes back.
                        writable = false;
                    }
                }
                Input::Data(_) => {}
                Input::Shutdown => {
                    if writable {
                        let _ = writer.shutdown().await;
                    }
                    writable = false;
                }
            }
        }
    };
    let from_pod = async {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => return,
                Ok(n) => {
                    if out.send(frame(data_channel, &buf[..n])).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    report(format!("read: {e}")).await;
                    return;
                }
            }
        }
    };
    tokio::select! {
        () = to_pod => {}
        () = from_pod => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::node::{BoxFuture, PortStream};
    use serde_json::json;
    use tokio_tungstenite::tungstenite::protocol::Role;

    #[test]
    fn ports_are_numbers_repeated_or_comma_separated() {
        assert_eq!(parse_ports("ports=8080").expect("one"), vec![8080]);
        assert_eq!(
            parse_ports("ports=80,443&ports=8080").expect("three"),
            vec![80, 443, 8080]
        );
        assert!(parse_ports("").is_err());
        assert!(parse_ports("ports=0").is_err());
        assert!(parse_ports("ports=70000").is_err());
        let e = parse_ports("ports=http").expect_err("a name");
        assert_eq!(
            e.to_string(),
            "invalid port \"http\": a port is a number from 1 to 65535"
        );
        let many = (1..=65).map(|p| format!("ports={p}")).collect::<Vec<_>>();
        assert!(parse_ports(&many.join("&")).is_err());
    }

    #[test]
    fn protocols_and_phase() {
        assert_eq!(
            websocket::choose_protocol(
                "SPDY/3.1+portforward.k8s.io, v4.channel.k8s.io",
                &PROTOCOLS
            ),
            Some("v4.channel.k8s.io")
        );
        assert_eq!(
            websocket::choose_protocol("portforward.k8s.io", &PROTOCOLS),
            Some("portforward.k8s.io")
        );
        assert_eq!(
            websocket::choose_protocol("SPDY/3.1+portforward.k8s.io", &PROTOCOLS),
            None
        );
        let pending = json!({"metadata": {"uid": "u1"}, "status": {"phase": "Pending"}});
        assert_eq!(
            running_pod_uid(&pending).expect_err("pending").to_string(),
            "unable to forward port because pod is not running. Current status=Pending"
        );
        let running = json!({"metadata": {"uid": "u1"}, "status": {"phase": "Running"}});
        assert_eq!(running_pod_uid(&running).expect("running"), "u1");
    }

    /// Port 7 echoes (through an in-memory pipe), anything else is refused.
    struct Echo;

    impl PortForwardService for Echo {
        fn connect(
            &self,
            _pod_uid: String,
            port: u16,
        ) -> BoxFuture<Result<Box<dyn PortStream>, ApiError>> {
            Box::pin(async move {
                if port != 7 {
                    return Err(ApiError::bad_request("connect: connection refused"));
                }
                let (near, mut far) = tokio::io::duplex(1024);
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = far.read(&mut buf).await {
                        if n == 0 || far.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                Ok(Box::new(near) as Box<dyn PortStream>)
            })
        }
    }

    async fn pair() -> (
        WebSocketStream<tokio::io::DuplexStream>,
        WebSocketStream<tokio::io::DuplexStream>,
    ) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let server = WebSocketStream::from_raw_socket(a, Role::Server, None).await;
        let client = WebSocketStream::from_raw_socket(b, Role::Client, None).await;
        (server, client)
    }

    async fn next_binary(ws: &mut WebSocketStream<tokio::io::DuplexStream>) -> Option<Vec<u8>> {
        loop {
            match ws.next().await? {
                Ok(Message::Binary(b)) => return Some(b.to_vec()),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    #[tokio::test]
    async fn ports_greet_echo_and_report_refusals() {
        let (server, mut client) = pair().await;
        let task = tokio::spawn(run(
            server,
            Arc::new(Echo),
            "uid".into(),
            "default/web".into(),
            vec![7, 9],
        ));
        // Each channel first carries its port, little-endian.
        let mut greetings = Vec::new();
        for _ in 0..4 {
            greetings.push(next_binary(&mut client).await.expect("greeting"));
        }
        assert_eq!(
            greetings,
            vec![vec![0, 7, 0], vec![1, 7, 0], vec![2, 9, 0], vec![3, 9, 0]]
        );
        let refused = next_binary(&mut client).await.expect("error");
        assert_eq!(refused[0], 3);
        assert_eq!(
            String::from_utf8_lossy(&refused[1..]),
            "error forwarding port 9 to pod default/web: connect: connection refused"
        );
        client
            .send(Message::Binary(Bytes::from_static(b"\x00hello")))
            .await
            .expect("send");
        let mut echoed = Vec::new();
        while echoed.len() < 5 {
            let m = next_binary(&mut client).await.expect("echo");
            assert_eq!(m[0], 0);
            echoed.extend_from_slice(&m[1..]);
        }
        assert_eq!(echoed, b"hello");
        // The client half-closes: the echo ends its side, and the socket closes.
        client
            .send(Message::Binary(Bytes::from_static(&[CLOSE, 0])))
            .await
            .expect("close");
        assert!(next_binary(&mut client).await.is_none());
        task.await.expect("run ends");
    }
}
