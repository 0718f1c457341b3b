//! `exec` over a WebSocket on the daemon's socket, with Kubernetes' `v5.channel.k8s.io`
//! framing (one channel byte per binary message; see the server's `exec` module).

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hyper::StatusCode;
use serde_json::{Value, json};
use tokio::net::UnixStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{Client, ClientError, decode, encode_segment};
use crate::api::ApiError;

const PROTOCOL: &str = "v5.channel.k8s.io";
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

/// What to run and which streams to connect.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub container: Option<String>,
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    /// Ignored with `tty` (a terminal has one output).
    pub stderr: bool,
    pub tty: bool,
}

/// What the remote side sent.
#[derive(Debug)]
pub enum ExecEvent {
    Stdout(Bytes),
    Stderr(Bytes),
    /// The process ended with this code (0 for success).
    Exit(i32),
    /// The exec failed (could not start, or the daemon reported an error).
    Failed(ApiError),
}

pub(super) type Ws = WebSocketStream<UnixStream>;

/// The sending half: stdin, its end, terminal sizes.
pub struct ExecWriter(SplitSink<Ws, Message>);

/// The receiving half: output and the final status.
pub struct ExecReader(SplitStream<Ws>);

impl Client {
    /// Starts `opts.command` in a container of pod `ns/pod`.
    pub async fn exec(
        &self,
        ns: &str,
        pod: &str,
        opts: &ExecOptions,
    ) -> Result<(ExecWriter, ExecReader), ClientError> {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for c in &opts.command {
            query.append_pair("command", c);
        }
        if let Some(c) = &opts.container {
            query.append_pair("container", c);
        }
        let flag = |b: bool| if b { "true" } else { "false" };
        query.append_pair("stdin", flag(opts.stdin));
        query.append_pair("stdout", flag(opts.stdout));
        query.append_pair("stderr", flag(opts.stderr && !opts.tty));
        query.append_pair("tty", flag(opts.tty));
        let uri = format!(
            "ws://berth/api/v1/namespaces/{}/pods/{}/exec?{}",
            encode_segment(ns),
            encode_segment(pod),
            query.finish()
        );
        let ws = self.websocket(uri, PROTOCOL, "exec").await?;
        let (sink, stream) = ws.split();
        Ok((ExecWriter(sink), ExecReader(stream)))
    }

    /// Opens a WebSocket on the daemon's socket (`uri` is `ws://berth/…`), asking for
    /// `protocol`; `what` names the request in errors. A refused upgrade becomes the
    /// daemon's Status error.
    pub(super) async fn websocket(
        &self,
        uri: String,
        protocol: &'static str,
        what: &str,
    ) -> Result<Ws, ClientError> {
        let decode_err = |message: String| ClientError::Decode { status: 0, message };
        let mut request = uri
            .into_client_request()
            .map_err(|e| decode_err(format!("bad {what} request: {e}")))?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
        let stream = self.connect_unix().await?;
        let (ws, response) = match tokio_tungstenite::client_async(request, stream).await {
            Ok(r) => r,
            Err(WsError::Http(resp)) => {
                let status = resp.status();
                let body = resp.body().clone().unwrap_or_default();
                return Err(
                    match decode(
                        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_REQUEST),
                        &body,
                    ) {
                        Err(e) => e,
                        Ok(_) => decode_err(format!("the {what} upgrade was refused ({status})")),
                    },
                );
            }
            Err(e) => return Err(decode_err(format!("the {what} connection failed: {e}"))),
        };
        let agreed = response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if agreed != protocol {
            return Err(decode_err(format!(
                "the daemon answered the {what} with subprotocol {agreed:?}, not {protocol}"
            )));
        }
        Ok(ws)
    }

    async fn connect_unix(&self) -> Result<UnixStream, ClientError> {
        UnixStream::connect(&self.socket)
            .await
            .map_err(|source| ClientError::Connect {
                socket: self.socket.clone(),
                hint: match source.kind() {
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                        "is the daemon running? start it with: systemctl start berth (or berth daemon)".to_string()
                    }
                    std::io::ErrorKind::PermissionDenied => {
                        "permission denied; add yourself to the berth group (sudo usermod -aG berth $USER, then log in again)".to_string()
                    }
                    _ => source.to_string(),
                },
                source,
            })
    }
}

fn frame(channel: u8, payload: &[u8]) -> Message {
    let mut data = Vec::with_capacity(payload.len() + 1);
    data.push(channel);
    data.extend_from_slice(payload);
    Message::Binary(Bytes::from(data))
}

fn lost(e: WsError) -> ClientError {
    ClientError::Decode {
        status: 0,
        message: format!("the exec connection broke: {e}"),
    }
}

impl ExecWriter {
    pub async fn stdin(&mut self, data: &[u8]) -> Result<(), ClientError> {
        self.0.send(frame(STDIN, data)).await.map_err(lost)
    }

    /// Tells the process its stdin has ended.
    pub async fn close_stdin(&mut self) -> Result<(), ClientError> {
        self.0.send(frame(CLOSE, &[STDIN])).await.map_err(lost)
    }

    pub async fn resize(&mut self, width: u16, height: u16) -> Result<(), ClientError> {
        let size = json!({"Width": width, "Height": height}).to_string();
        self.0
            .send(frame(RESIZE, size.as_bytes()))
            .await
            .map_err(lost)
    }
}

/// The exit code in a channel-3 Status, or the error it reports.
pub fn status_outcome(status: &Value) -> ExecEvent {
    if status["status"] == "Success" {
        return ExecEvent::Exit(0);
    }
    if status["reason"] == "NonZeroExitCode"
        && let Some(code) = status["details"]["causes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["reason"] == "ExitCode")
            .and_then(|c| c["message"].as_str())
            .and_then(|m| m.parse().ok())
    {
        return ExecEvent::Exit(code);
    }
    ExecEvent::Failed(ApiError::from_status(status))
}

impl ExecReader {
    /// The next event; `None` once the connection ended (after [`ExecEvent::Exit`] or
    /// [`ExecEvent::Failed`], or without either when the connection broke).
    pub async fn next(&mut self) -> Option<ExecEvent> {
        loop {
            let message = match self.0.next().await? {
                Ok(m) => m,
                Err(_) => return None,
            };
            match message {
                Message::Binary(data) => {
                    let Some((&channel, payload)) = data.split_first() else {
                        continue;
                    };
                    let payload = data.slice(1..).slice(..payload.len());
                    match channel {
                        STDOUT => return Some(ExecEvent::Stdout(payload)),
                        STDERR => return Some(ExecEvent::Stderr(payload)),
                        ERROR => {
                            let status: Value = serde_json::from_slice(&payload).unwrap_or_else(
                                |_| json!({"message": String::from_utf8_lossy(&payload)}),
                            );
                            return Some(status_outcome(&status));
                        }
                        _ => {}
                    }
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_become_exit_codes() {
        assert!(matches!(
            status_outcome(&json!({"status": "Success"})),
            ExecEvent::Exit(0)
        ));
        let failure = json!({"status": "Failure", "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "42"}]}});
        assert!(matches!(status_outcome(&failure), ExecEvent::Exit(42)));
        let error = json!({"kind": "Status", "status": "Failure", "reason": "BadRequest",
            "code": 400, "message": "container not found (\"x\")"});
        match status_outcome(&error) {
            ExecEvent::Failed(e) => assert_eq!(e.to_string(), "container not found (\"x\")"),
            other => panic!("{other:?}"),
        }
    }
}
