//! grpc probes: the standard health service (`grpc.health.v1.Health/Check`) over HTTP/2
//! without TLS, as the kubelet calls it. The request and answer are one-field protobuf
//! messages, encoded here by hand.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::{CheckOutcome, netns};

const PATH: &str = "/grpc.health.v1.Health/Check";

pub(super) async fn check(
    addr: SocketAddr,
    service: String,
    netns_path: Option<PathBuf>,
    timeout: Duration,
) -> CheckOutcome {
    match tokio::time::timeout(timeout, call(addr, &service, netns_path, timeout)).await {
        Err(_) => CheckOutcome::failure(format!(
            "timeout: health rpc did not complete within {}",
            go_duration(timeout)
        )),
        Ok(Err(e)) => CheckOutcome::failure(e),
        Ok(Ok(status)) => match status {
            1 => CheckOutcome::success(""),
            other => CheckOutcome::failure(format!(
                "service unhealthy (responded with \"{}\")",
                status_name(other)
            )),
        },
    }
}

fn go_duration(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

fn status_name(s: u64) -> &'static str {
    match s {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNKNOWN",
    }
}

/// `HealthCheckRequest { string service = 1; }` in a gRPC length-prefixed frame.
fn request_frame(service: &str) -> Bytes {
    let mut msg = BytesMut::new();
    if !service.is_empty() {
        msg.put_u8(0x0a);
        put_varint(&mut msg, service.len() as u64);
        msg.put_slice(service.as_bytes());
    }
    let mut frame = BytesMut::with_capacity(5 + msg.len());
    frame.put_u8(0);
    frame.put_u32(msg.len() as u32);
    frame.put_slice(&msg);
    frame.freeze()
}

fn put_varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn read_varint(data: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, b) in data.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// The `status` of `HealthCheckResponse { ServingStatus status = 1; }` (0 when absent).
fn response_status(frame: &[u8]) -> Result<u64, String> {
    if frame.len() < 5 {
        return Err("health rpc answered without a message".into());
    }
    if frame[0] != 0 {
        return Err("health rpc answered with a compressed message".into());
    }
    let len = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
    let msg = frame
        .get(5..5 + len)
        .ok_or("health rpc answer is truncated")?;
    let mut i = 0;
    let mut status = 0;
    while i < msg.len() {
        let (key, n) = read_varint(&msg[i..]).ok_or("bad protobuf in the health answer")?;
        i += n;
        match key & 7 {
            0 => {
                let (v, n) = read_varint(&msg[i..]).ok_or("bad protobuf in the health answer")?;
                i += n;
                if key >> 3 == 1 {
                    status = v;
                }
            }
            2 => {
                let (l, n) = read_varint(&msg[i..]).ok_or("bad protobuf in the health answer")?;
                i += n + l as usize;
            }
            _ => return Err("unexpected protobuf wire type in the health answer".into()),
        }
    }
    Ok(status)
}

async fn call(
    addr: SocketAddr,
    service: &str,
    netns_path: Option<PathBuf>,
    timeout: Duration,
) -> Result<u64, String> {
    let tcp = netns::connect(netns_path, addr, timeout)
        .await
        .map_err(|e| {
            format!(
                "failed to connect service \"{addr}\" within {}: dial tcp {addr}: {}",
                go_duration(timeout),
                netns::describe(&e)
            )
        })?;
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .map_err(|e| format!("health rpc failed: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{PATH}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("user-agent", "kube-probe/1.34")
        .body(Full::new(request_frame(service)))
        .map_err(|e| format!("health rpc failed: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("health rpc failed: {e}"))?;
    let header_status = grpc_status(resp.headers());
    let collected = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("health rpc failed: {e}"))?;
    let trailer_status = collected.trailers().and_then(grpc_status);
    match trailer_status.or(header_status) {
        Some((0, _)) | None => {}
        Some((code, message)) => {
            return Err(format!(
                "rpc error: code = {} desc = {message}",
                code_name(code)
            ));
        }
    }
    response_status(&collected.to_bytes())
}

fn grpc_status(headers: &hyper::HeaderMap) -> Option<(u32, String)> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Some((code, message))
}

fn code_name(code: u32) -> &'static str {
    match code {
        1 => "Canceled",
        2 => "Unknown",
        3 => "InvalidArgument",
        4 => "DeadlineExceeded",
        5 => "NotFound",
        7 => "PermissionDenied",
        12 => "Unimplemented",
        13 => "Internal",
        14 => "Unavailable",
        16 => "Unauthenticated",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_answer_encoding() {
        assert_eq!(&request_frame("")[..], &[0, 0, 0, 0, 0]);
        assert_eq!(
            &request_frame("db")[..],
            &[0, 0, 0, 0, 4, 0x0a, 2, b'd', b'b']
        );
        assert_eq!(response_status(&[0, 0, 0, 0, 2, 0x08, 1]), Ok(1));
        assert_eq!(response_status(&[0, 0, 0, 0, 2, 0x08, 2]), Ok(2));
        assert_eq!(response_status(&[0, 0, 0, 0, 0]), Ok(0));
        assert!(response_status(&[0, 0, 0, 0, 9, 0x08]).is_err());
    }
}
