//! The WebSocket upgrade the streaming subresources share (`exec`, `portforward`): the
//! checks before it, the subprotocol choice, the `101 Switching Protocols` answer, and the
//! hand-over of the upgraded connection to the endpoint's own loop.

use std::future::Future;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{
    CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    UPGRADE,
};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::Body;
use crate::api::ApiError;

/// An upgraded connection, server side.
pub type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// The first of `served` (preferred first) that the client offered (a comma-separated list).
pub fn choose_protocol(offered: &str, served: &[&'static str]) -> Option<&'static str> {
    let offered: Vec<&str> = offered.split(',').map(str::trim).collect();
    served.iter().copied().find(|p| offered.contains(p))
}

/// Accepts `req` as a WebSocket upgrade with one of `served` (preferred first) and, once
/// answered, runs `serve` on the socket with the chosen subprotocol. `what` names the
/// endpoint and `note` ends the refusal of a request that cannot be served (as SPDY).
pub fn accept<F, Fut>(
    req: Request<Incoming>,
    served: &[&'static str],
    what: &'static str,
    note: &str,
    serve: F,
) -> Result<Response<Body>, ApiError>
where
    F: FnOnce(Socket, &'static str) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let headers = req.headers();
    let is_websocket = headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = headers
        .get(SEC_WEBSOCKET_KEY)
        .map(|k| k.as_bytes().to_vec());
    let (true, Some(key)) = (is_websocket, key) else {
        return Err(ApiError::bad_request(format!(
            "{what} needs a WebSocket upgrade (Upgrade: websocket, Sec-WebSocket-Protocol: {}); SPDY is not supported{note}",
            served.first().copied().unwrap_or_default()
        )));
    };
    let offered = headers
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let protocol = choose_protocol(offered, served).ok_or_else(|| {
        ApiError::bad_request(format!(
            "none of the offered WebSocket subprotocols ({offered:?}) is supported; offer {}{note}",
            served.join(" or ")
        ))
    })?;
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(upgraded) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None)
                        .await;
                serve(ws, protocol).await;
            }
            Err(e) => tracing::debug!(error = %e, endpoint = what, "the WebSocket upgrade failed"),
        }
    });
    let mut resp = Response::new(Full::new(Bytes::new()).boxed());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(&key)) {
        h.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    h.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(protocol));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_served_protocol_offered_wins() {
        let served = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
        assert_eq!(
            choose_protocol("v4.channel.k8s.io, v5.channel.k8s.io", &served),
            Some("v5.channel.k8s.io")
        );
        assert_eq!(
            choose_protocol("v4.channel.k8s.io", &served),
            Some("v4.channel.k8s.io")
        );
        assert_eq!(choose_protocol("channel.k8s.io", &served), None);
        assert_eq!(choose_protocol("", &served), None);
    }
}
