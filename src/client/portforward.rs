//! Port-forward over a WebSocket on the daemon's socket, with Kubernetes' WebSocket
//! port-forward framing (`v4.channel.k8s.io`; see the server's `portforward` module): one
//! WebSocket per forwarded TCP connection, data on channel 0, errors on channel 1, the first
//! message of each channel being the port.
//!
//! [`Client::port_forward`] opens one such connection; [`PortForwardConn::pump`] copies
//! bytes between it and a local stream; [`serve_local`] accepts local connections and
//! forwards each, as `berth port-forward` and the TUI do.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use super::exec::Ws;
use super::{Client, ClientError, encode_segment};

const PROTOCOL: &str = "v4.channel.k8s.io";
const DATA: u8 = 0;
const ERROR: u8 = 1;
/// `[CLOSE, DATA]`: the local side stopped sending (berth's half-close message).
const CLOSE: u8 = 255;

/// Bytes read from the local connection at a time.
const READ_CHUNK: usize = 32 * 1024;

/// One forwarded connection to a port of a pod, not yet pumping.
pub struct PortForwardConn {
    ws: Ws,
    port: u16,
}

impl Client {
    /// Opens a connection to `port` of pod `ns/pod` (which must be running). Whether the
    /// pod accepts on that port is known only once [`PortForwardConn::pump`] runs.
    pub async fn port_forward(
        &self,
        ns: &str,
        pod: &str,
        port: u16,
    ) -> Result<PortForwardConn, ClientError> {
        let uri = format!(
            "ws://berth/api/v1/namespaces/{}/pods/{}/portforward?ports={port}",
            encode_segment(ns),
            encode_segment(pod),
        );
        let ws = self.websocket(uri, PROTOCOL, "port-forward").await?;
        Ok(PortForwardConn { ws, port })
    }
}

fn frame(channel: u8, payload: &[u8]) -> Message {
    let mut data = Vec::with_capacity(payload.len() + 1);
    data.push(channel);
    data.extend_from_slice(payload);
    Message::Binary(Bytes::from(data))
}

impl PortForwardConn {
    /// Copies bytes both ways between `local` and the pod's port until the pod's side
    /// ends (or the local side goes away). An error the daemon reported (port refused,
    /// connection broken) is returned after the copy ends.
    pub async fn pump<S>(self, local: S) -> Result<(), ClientError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let port = self.port;
        let broke = |e: String| ClientError::PortForward {
            port,
            message: format!("the port-forward connection broke: {e}"),
        };
        let (mut sink, mut incoming) = self.ws.split();
        let (mut reader, mut writer) = tokio::io::split(local);
        let mut greeted = [false; 2];
        let mut error = String::new();
        let mut local_open = true;
        let mut local_writable = true;
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            tokio::select! {
                n = reader.read(&mut buf), if local_open => match n {
                    Err(_) => break, // The local peer is gone.
                    Ok(0) => {
                        local_open = false;
                        if sink.send(frame(CLOSE, &[DATA])).await.is_err() {
                            break;
                        }
                    }
                    Ok(n) => sink
                        .send(frame(DATA, &buf[..n]))
                        .await
                        .map_err(|e| broke(e.to_string()))?,
                },
                message = incoming.next() => match message {
                    Some(Ok(Message::Binary(data))) => {
                        let Some((&channel, payload)) = data.split_first() else { continue };
                        let index = usize::from(channel);
                        if index < greeted.len() && !greeted[index] {
                            greeted[index] = true; // The port number.
                            continue;
                        }
                        if channel == ERROR {
                            error.push_str(&String::from_utf8_lossy(payload));
                        } else if channel == DATA && writer.write_all(payload).await.is_err() {
                            // The local peer is gone; nobody wants the rest.
                            local_writable = false;
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(e)) => {
                        if error.is_empty() {
                            error = format!("the port-forward connection broke: {e}");
                        }
                        break;
                    }
                    Some(Ok(_)) => {}
                },
            }
        }
        if local_writable {
            let _ = writer.flush().await;
            let _ = writer.shutdown().await;
        }
        let _ = sink.close().await;
        if error.is_empty() {
            Ok(())
        } else {
            Err(ClientError::PortForward {
                port,
                message: error,
            })
        }
    }
}

/// What a local forwarder reports.
#[derive(Debug)]
pub enum ForwardEvent {
    /// A local connection was accepted (on this local port).
    Connection(u16),
    /// A forwarded connection failed; the forwarder goes on.
    Error(ClientError),
}

/// Accepts connections on `listener` for ever, forwarding each to `remote` of pod
/// `ns/pod` on a task of its own and telling `report` about each connection and failure.
pub async fn serve_local<F>(
    client: Client,
    listener: TcpListener,
    ns: String,
    pod: String,
    remote: u16,
    report: F,
) where
    F: Fn(ForwardEvent) + Send + Sync + 'static,
{
    let report = Arc::new(report);
    let local_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                report(ForwardEvent::Error(ClientError::PortForward {
                    port: remote,
                    message: format!("accepting a connection on port {local_port} failed: {e}"),
                }));
                // Out of file descriptors and the like: give it a moment, do not spin.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        report(ForwardEvent::Connection(local_port));
        let (client, ns, pod, report) = (client.clone(), ns.clone(), pod.clone(), report.clone());
        tokio::spawn(async move {
            let result = match client.port_forward(&ns, &pod, remote).await {
                Ok(conn) => conn.pump(tcp).await,
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                report(ForwardEvent::Error(e));
            }
        });
    }
}
