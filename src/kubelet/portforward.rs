//! The port-forward service of the API ([`PortForwardService`]): a TCP connection to a
//! port on a pod's loopback, made from inside the pod's network namespace (the sandbox's)
//! with the prober's [`netns::connect`]. Pods have no address of their own yet, so the
//! target is `127.0.0.1:PORT` (then `[::1]:PORT`) as the pod itself sees it.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::api::ApiError;
use crate::kubelet::prober::netns;
use crate::runtime::Runtime;
use crate::server::node::{BoxFuture, PortForwardService, PortStream};

/// How long a connection to a pod's port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// [`PortForwardService`] over the kubelet's pod sandboxes.
pub struct PortForward(pub Arc<Runtime>);

impl PortForwardService for PortForward {
    fn connect(
        &self,
        pod_uid: String,
        port: u16,
    ) -> BoxFuture<Result<Box<dyn PortStream>, ApiError>> {
        let net = self.0.sandbox_paths(&pod_uid).net;
        Box::pin(async move {
            let exists = {
                let net = net.clone();
                tokio::task::spawn_blocking(move || net.exists())
                    .await
                    .unwrap_or(false)
            };
            if !exists {
                return Err(ApiError::bad_request(format!(
                    "the pod (uid {pod_uid}) has no network namespace on this node; is it running?"
                )));
            }
            let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let first = match netns::connect(Some(net.clone()), v4, CONNECT_TIMEOUT).await {
                Ok(s) => return Ok(Box::new(s) as Box<dyn PortStream>),
                Err(e) => e,
            };
            // A server that listens on IPv6 only is still reachable on ::1.
            let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
            if first.kind() == std::io::ErrorKind::ConnectionRefused
                && let Ok(s) = netns::connect(Some(net), v6, CONNECT_TIMEOUT).await
            {
                return Ok(Box::new(s) as Box<dyn PortStream>);
            }
            Err(ApiError::bad_request(format!(
                "failed to connect to localhost:{port} inside the pod's network namespace: dial tcp4 {v4}: {}",
                netns::describe(&first)
            )))
        })
    }
}
