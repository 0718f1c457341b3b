//! The cluster DNS server, embedded in the daemon: hickory-server listening on UDP and TCP
//! port 53 of the bridge address (the pods' gateway and their `nameserver`).
//!
//! Names of the cluster zone ([`zone`]), and reverse names of the addresses it names, are
//! answered from memory: the Services and
//! EndpointSlices of the store, loaded once and then kept current from the store's change
//! feed (re-listed only when the feed lagged). Every other query is relayed as it came to
//! the upstream resolvers in order (the host's `/etc/resolv.conf` nameservers unless the
//! `dnsUpstreams` setting names others), over the protocol the pod used; the first
//! answer is passed back. Invariant: stopping the daemon stops the listeners and the
//! update task before the kubelet's task ends (nothing keeps port 53 afterwards).

pub mod zone;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Edns, Message, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::Record;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api::watch::EventType;
use crate::store::Store;

pub use zone::Zone;

/// Default cluster domain.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";
/// How long one upstream gets to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a TCP client may stay idle between queries.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);

/// The DNS settings of the daemon's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsSettings {
    /// The cluster zone (`clusterDomain`).
    pub cluster_domain: String,
    /// Where other names go (`dnsUpstreams`); `None`: the host's resolv.conf nameservers.
    pub upstreams: Option<Vec<SocketAddr>>,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            cluster_domain: DEFAULT_CLUSTER_DOMAIN.to_string(),
            upstreams: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error(
        "cannot serve cluster DNS on {addr} ({protocol}): {source}; stop the other DNS server that holds port 53 on all addresses, or make it listen only on its own addresses"
    )]
    Bind {
        addr: SocketAddr,
        protocol: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Parses `upstream` as `ip` or `ip:port` (port 53 by default).
pub fn parse_upstream(upstream: &str) -> Result<SocketAddr, String> {
    let s = upstream.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    s.parse::<SocketAddr>().map_err(|_| {
        format!("dnsUpstreams: {s:?} is not an address like 192.168.1.1 or 127.0.0.1:5353")
    })
}

/// The `nameserver` lines of a resolv.conf text, as they are listed.
pub fn resolv_conf_nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
                .and_then(|ip| ip.split('%').next())
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .collect()
}

/// The listeners, bound at start (so that a port conflict stops the start with a clear
/// error) and served by [`DnsServer::run`].
#[derive(Debug)]
pub struct DnsServer {
    addr: SocketAddr,
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    zone: Arc<RwLock<Zone>>,
    upstreams: Arc<[SocketAddr]>,
}

impl DnsServer {
    /// Binds UDP and TCP `listen:port`.
    pub fn bind(
        listen: Ipv4Addr,
        port: u16,
        settings: &DnsSettings,
    ) -> Result<DnsServer, DnsError> {
        let addr = SocketAddr::new(IpAddr::V4(listen), port);
        let err = |protocol| {
            move |source| DnsError::Bind {
                addr,
                protocol,
                source,
            }
        };
        let udp = std::net::UdpSocket::bind(addr).map_err(err("udp"))?;
        udp.set_nonblocking(true).map_err(err("udp"))?;
        let tcp = std::net::TcpListener::bind(addr).map_err(err("tcp"))?;
        tcp.set_nonblocking(true).map_err(err("tcp"))?;
        let mut upstreams = match &settings.upstreams {
            Some(u) => u.clone(),
            None => resolv_conf_nameservers(
                &std::fs::read_to_string(Path::new("/etc/resolv.conf")).unwrap_or_default(),
            ),
        };
        // A host that already asks berth's DNS must not make it ask itself.
        upstreams.retain(|u| *u != addr);
        if upstreams.is_empty() {
            tracing::warn!(%addr, "cluster DNS has no upstream: names outside the cluster fail; set dnsUpstreams in /etc/berth/config.yaml");
        }
        tracing::info!(%addr, domain = %settings.cluster_domain, upstreams = ?upstreams, "cluster DNS listening");
        Ok(DnsServer {
            addr,
            udp,
            tcp,
            zone: Arc::new(RwLock::new(Zone::new(&settings.cluster_domain))),
            upstreams: upstreams.into(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown`, keeping the zone current from the store.
    pub async fn run(self, store: Arc<Store>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let handler = Handler {
            zone: self.zone.clone(),
            upstreams: self.upstreams.clone(),
        };
        let mut server = Server::new(handler);
        match tokio::net::UdpSocket::from_std(self.udp) {
            Ok(s) => server.register_socket(s),
            Err(e) => tracing::error!(error = %e, "cluster DNS: cannot use the UDP socket"),
        }
        match tokio::net::TcpListener::from_std(self.tcp) {
            Ok(l) => server.register_listener(l, TCP_TIMEOUT, 64 * 1024),
            Err(e) => tracing::error!(error = %e, "cluster DNS: cannot use the TCP listener"),
        }
        // Should the updates end early (they log why), the server keeps answering from
        // what it has until the daemon stops.
        tokio::select! {
            _ = sync_zone(store, self.zone.clone(), shutdown.clone()) => {
                let _ = shutdown.changed().await;
            }
            _ = shutdown.changed() => {}
        }
        if let Err(e) = server.shutdown_gracefully().await {
            tracing::warn!(error = %e, "cluster DNS stopped with an error");
        }
        tracing::info!(addr = %self.addr, "cluster DNS stopped");
    }
}

/// Loads Services and EndpointSlices into the zone and applies the store's changes.
async fn sync_zone(
    store: Arc<Store>,
    zone: Arc<RwLock<Zone>>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let (Some(svc_rt), Some(slice_rt)) = (
        crate::api::registry::by_kind("v1", "Service"),
        crate::api::registry::by_kind("discovery.k8s.io/v1", "EndpointSlice"),
    ) else {
        tracing::error!("cluster DNS: Service or EndpointSlice is not registered");
        return;
    };
    let mut changes = store.subscribe();
    loop {
        // Subscribed before listing: nothing written in between is missed.
        let s = store.clone();
        let listed = tokio::task::spawn_blocking(move || {
            let (services, rev) = s.list(svc_rt, None)?;
            let (slices, rev2) = s.list(slice_rt, None)?;
            Ok::<_, crate::store::StoreError>((services, slices, rev.max(rev2)))
        })
        .await;
        match listed {
            Ok(Ok((services, slices, rev))) => {
                if let Ok(mut z) = zone.write() {
                    z.reset(&services, &slices);
                    z.serial = rev as u32;
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cluster DNS: cannot list services"),
            Err(e) => tracing::warn!(error = %e, "cluster DNS: listing failed"),
        }
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                got = changes.recv() => match got {
                    Ok(c) => {
                        let kind = c.resource.kind;
                        if kind != "Service" && kind != "EndpointSlice" {
                            continue;
                        }
                        let Ok(mut z) = zone.write() else { return };
                        match (kind, c.kind) {
                            ("Service", EventType::Deleted) => z.remove_service(&c.object),
                            ("Service", _) => z.set_service(&c.object),
                            (_, EventType::Deleted) => z.remove_slice(&c.object),
                            _ => z.set_slice(&c.object),
                        }
                        z.serial = c.revision as u32;
                    }
                    Err(RecvError::Lagged(n)) => {
                        tracing::debug!(missed = n, "cluster DNS: change feed lagged; reloading");
                        break;
                    }
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }
}

struct Handler {
    zone: Arc<RwLock<Zone>>,
    upstreams: Arc<[SocketAddr]>,
}

impl Handler {
    /// The zone's answer to a query of the zone, as a message.
    fn authoritative(&self, request: &Request) -> Option<Message> {
        let info = request.request_info().ok()?;
        let qname = info.query.name().to_string();
        let qtype = info.query.query_type();
        let answer = {
            let zone = self.zone.read().ok()?;
            zone.answer(&qname, qtype)
                .or_else(|| zone.reverse(&qname, qtype))?
        };
        let mut msg = Message::response(request.metadata.id, OpCode::Query);
        msg.metadata = Metadata::response_from_request(&request.metadata);
        msg.metadata.authoritative = true;
        msg.metadata.recursion_available = true;
        msg.metadata.response_code = if answer.nxdomain {
            ResponseCode::NXDomain
        } else {
            ResponseCode::NoError
        };
        msg.answers = answer.answers;
        msg.additionals = answer.additionals;
        msg.authorities.extend(answer.soa);
        Some(msg)
    }

    /// Relays the request to the upstreams; the first answer wins.
    async fn forward(&self, request: &Request) -> Option<Message> {
        let tcp = request.protocol() == Protocol::Tcp;
        for upstream in self.upstreams.iter() {
            let got = tokio::time::timeout(UPSTREAM_TIMEOUT, async {
                if tcp {
                    relay_tcp(*upstream, request.as_slice()).await
                } else {
                    relay_udp(*upstream, request.as_slice(), request.metadata.id).await
                }
            })
            .await;
            match got {
                Ok(Ok(bytes)) => match Message::from_vec(&bytes) {
                    Ok(m) if m.metadata.id == request.metadata.id => return Some(m),
                    Ok(_) => tracing::debug!(%upstream, "upstream answered another query"),
                    Err(e) => tracing::debug!(%upstream, error = %e, "upstream answer unreadable"),
                },
                Ok(Err(e)) => tracing::debug!(%upstream, error = %e, "upstream failed"),
                Err(_) => tracing::debug!(%upstream, "upstream timed out"),
            }
        }
        None
    }
}

async fn relay_udp(upstream: SocketAddr, query: &[u8], id: u16) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = if upstream.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = tokio::net::UdpSocket::bind(local).await?;
    sock.connect(upstream).await?;
    sock.send(query).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        // A stray datagram (not our id) is skipped, not taken as the answer.
        if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn relay_tcp(upstream: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = tokio::net::TcpStream::connect(upstream).await?;
    let len = u16::try_from(query.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "query too long"))?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let n = stream.read_u16().await?;
    let mut buf = vec![0u8; usize::from(n)];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: hickory_server::net::runtime::Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut edns = None;
        if let Some(req) = request.edns.as_ref() {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().max(512));
            edns = Some(e);
        }
        let in_zone = request.metadata.op_code == OpCode::Query
            && request.request_info().is_ok_and(|i| {
                let name = i.query.name().to_string();
                self.zone.read().is_ok_and(|z| {
                    z.contains(&name) || z.reverse(&name, i.query.query_type()).is_some()
                })
            });
        let reply = if in_zone {
            self.authoritative(request)
        } else if request.metadata.op_code == OpCode::Query {
            self.forward(request).await
        } else {
            None
        };
        let builder = MessageResponseBuilder::new(&request.queries, None);
        let result = match reply {
            Some(mut msg) => {
                let limit = usize::from(edns.as_ref().map_or(512, |e: &Edns| e.max_payload()));
                if in_zone
                    && request.protocol() == Protocol::Udp
                    && msg.to_vec().map_or(0, |v| v.len()) > limit
                {
                    // Too big for the datagram: the client asks again over TCP.
                    msg.metadata.truncation = true;
                    msg.answers.clear();
                    msg.additionals.clear();
                }
                let edns_out = if in_zone {
                    edns.as_ref()
                } else {
                    msg.edns.as_ref()
                };
                let mut builder = MessageResponseBuilder::new(&request.queries, None);
                if let Some(e) = edns_out {
                    builder.edns(e);
                }
                let mut metadata = msg.metadata;
                metadata.id = request.metadata.id;
                let none: [&Record; 0] = [];
                response_handle
                    .send_response(builder.build(
                        metadata,
                        msg.answers.iter(),
                        msg.authorities.iter(),
                        none,
                        msg.additionals.iter(),
                    ))
                    .await
            }
            None => {
                let code = if request.metadata.op_code == OpCode::Query {
                    ResponseCode::ServFail
                } else {
                    ResponseCode::NotImp
                };
                response_handle
                    .send_response(builder.error_msg(&request.metadata, code))
                    .await
            }
        };
        match result {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "cluster DNS: cannot send the response");
                let mut m = Metadata::response_from_request(&request.metadata);
                m.response_code = ResponseCode::ServFail;
                ResponseInfo::from(hickory_server::proto::op::Header {
                    metadata: m,
                    counts: Default::default(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_parse() {
        assert_eq!(
            parse_upstream("10.0.0.2"),
            Ok("10.0.0.2:53".parse().expect("addr"))
        );
        assert_eq!(
            parse_upstream("127.0.0.1:5353"),
            Ok("127.0.0.1:5353".parse().expect("addr"))
        );
        assert!(parse_upstream("dns.example").is_err());
        assert_eq!(
            resolv_conf_nameservers("# x\nnameserver 1.2.3.4\nsearch a\nnameserver fe80::1%eth0\n"),
            vec![
                "1.2.3.4:53".parse().expect("addr"),
                "[fe80::1]:53".parse().expect("addr")
            ]
        );
    }
}
