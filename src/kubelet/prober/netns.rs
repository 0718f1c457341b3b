//! TCP connections made from inside a pod's network namespace.
//!
//! `setns(CLONE_NEWNET)` changes the namespace of the calling thread only, and a socket
//! belongs to the namespace it was created in for its whole life. So a fresh thread enters
//! the namespace, connects, hands the socket back and ends; no thread of the daemon's pools
//! ever changes namespace.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Connects to `addr` from inside the network namespace at `netns` (an nsfs file such as
/// the pod sandbox's), or from the host's namespace when `None`, within `timeout`.
pub async fn connect(
    netns: Option<PathBuf>,
    addr: SocketAddr,
    timeout: Duration,
) -> io::Result<tokio::net::TcpStream> {
    let Some(path) = netns else {
        return match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "i/o timeout")),
        };
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("berth-probe-netns".into())
        .spawn(move || {
            let result = (|| -> io::Result<std::net::TcpStream> {
                let ns = std::fs::File::open(&path)?;
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(io::Error::from)?;
                let stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
                stream.set_nonblocking(true)?;
                Ok(stream)
            })();
            let _ = tx.send(result);
        })?;
    let stream = rx
        .await
        .map_err(|_| io::Error::other("the probe thread ended without an answer"))??;
    tokio::net::TcpStream::from_std(stream)
}

/// The error as Go's dialer words it (Kubernetes' probe messages quote it).
pub fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "i/o timeout".to_string(),
        io::ErrorKind::HostUnreachable => "connect: no route to host".to_string(),
        io::ErrorKind::NetworkUnreachable => "connect: network is unreachable".to_string(),
        _ => format!("connect: {e}"),
    }
}
