//! The pod network: a Linux bridge (default `berth0`) whose address is the gateway (the
//! first address of the pod CIDR), one veth pair per pod (host side on the bridge, pod side
//! `eth0` in the pod's network namespace with its address and a default route via the
//! gateway), persisted IPAM ([`ipam`]), `net.ipv4.ip_forward=1` and masquerading of pod
//! egress in berth's own nftables table ([`nft`]), and NetworkPolicy enforcement in
//! `<table>_pol` ([`policy`]; it sets the bridge's `nf_call_iptables` option).
//!
//! Links, addresses and routes go through netlink (`rtnetlink`); nftables through the `nft`
//! binary's JSON interface. Used only by the kubelet. Invariants: every operation is
//! idempotent (a restarted daemon re-runs them over what exists), a pod keeps its address
//! for its whole life, and nothing here touches links or tables that are not berth's.

pub mod dns;
pub mod ipam;
mod link;
pub mod nft;
pub mod policy;
pub mod services;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use tokio::sync::Mutex;

pub use ipam::Ipam;

/// Default pod CIDR.
pub const DEFAULT_POD_CIDR: &str = "10.244.0.0/16";
/// Default Service CIDR.
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/16";
/// Default bridge.
pub const DEFAULT_BRIDGE: &str = "berth0";
/// Default nftables table (family `ip`).
pub const DEFAULT_NFT_TABLE: &str = "berth";
/// The pod side of every veth pair.
pub const POD_INTERFACE: &str = "eth0";

/// An IPv4 network in CIDR notation (`10.244.0.0/16`); the address is kept as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Net {
    fn mask(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix.min(32)))
        }
    }

    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & Self::mask(self.prefix))
    }

    /// The broadcast address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) | !Self::mask(self.prefix))
    }

    /// The gateway: the first address after the network address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()).saturating_add(1))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask(self.prefix) == u32::from(self.network())
    }

    /// Whether the two networks share any address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        let p = self.prefix.min(other.prefix);
        u32::from(self.addr) & Self::mask(p) == u32::from(other.addr) & Self::mask(p)
    }
}

impl std::fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an IPv4 CIDR like 10.244.0.0/16");
        let (a, p) = s.trim().split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(format!("{s:?}: the prefix length must be between 8 and 30"));
        }
        Ok(Ipv4Net { addr, prefix })
    }
}

/// What the network needs from the daemon's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    pub bridge: String,
    pub pod_cidr: Ipv4Net,
    pub service_cidr: Ipv4Net,
    pub nft_table: String,
    /// `<stateDir>/network/ipam.json` holds the allocations.
    pub state_dir: PathBuf,
}

impl NetworkConfig {
    /// Checks names and ranges that need no kernel.
    pub fn validate(&self) -> Result<(), NetworkError> {
        let name_ok = |n: &str, max: usize| {
            !n.is_empty()
                && n.len() <= max
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !name_ok(&self.bridge, 15) {
            return Err(NetworkError::Config(format!(
                "bridgeName {:?}: use 1 to 15 letters, digits, '-' and '_'",
                self.bridge
            )));
        }
        if !name_ok(&self.nft_table, 64) {
            return Err(NetworkError::Config(format!(
                "nftablesTable {:?}: use 1 to 64 letters, digits, '-' and '_'",
                self.nft_table
            )));
        }
        if self.pod_cidr.overlaps(&self.service_cidr) {
            return Err(NetworkError::Config(format!(
                "podCIDR {} overlaps serviceCIDR {}; choose ranges that do not overlap",
                self.pod_cidr, self.service_cidr
            )));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network configuration: {0}")]
    Config(String),
    #[error(
        "{which} {cidr} overlaps the host route {route} (dev {device}); set {which} in /etc/berth/config.yaml to a range the host does not use"
    )]
    Overlap {
        which: &'static str,
        cidr: String,
        route: String,
        device: String,
    },
    #[error("cannot open a netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("netlink: cannot {action}: {source}")]
    Netlink {
        action: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("cannot enter the network namespace {}: {source}", .path.display())]
    Netns {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the pod IP allocations in the store cannot be read: {message}; restore the state directory from a backup"
    )]
    IpamCorrupt { message: String },
    #[error("cannot keep the pod IP allocations in the store: {0}")]
    Ipam(#[source] crate::store::StoreError),
    #[error(
        "no free address left in the pod CIDR {cidr}; delete pods or configure a larger podCIDR"
    )]
    Exhausted { cidr: String },
    #[error("nftables: {0}")]
    Nft(String),
    #[error(
        "the kernel's br_netfilter is not available, so NetworkPolicies cannot see traffic between pods; load it (modprobe br_netfilter) and restart berth"
    )]
    NoBridgeNetfilter,
}

/// The node's pod network, set up once at start.
#[derive(Debug)]
pub struct Network {
    config: NetworkConfig,
    handle: rtnetlink::Handle,
    bridge_index: u32,
    ipam: Mutex<Ipam>,
    /// Pod uid → (its address, its hostPorts): the nftables table is rebuilt from this.
    host_ports: Mutex<std::collections::BTreeMap<String, (Ipv4Addr, Vec<nft::HostPort>)>>,
}

impl Network {
    /// Checks the CIDRs against the host's routes, then ensures the bridge with the
    /// gateway address, IP forwarding and the masquerade rule. Needs a Tokio runtime.
    pub async fn start(
        config: NetworkConfig,
        store: std::sync::Arc<crate::store::Store>,
    ) -> Result<Network, NetworkError> {
        config.validate()?;
        let handle = link::connect()?;
        let existing = link::index_of(&handle, &config.bridge).await?;
        for (which, cidr) in [
            ("podCIDR", config.pod_cidr),
            ("serviceCIDR", config.service_cidr),
        ] {
            if let Some((route, device)) = link::overlapping_route(&handle, cidr, existing).await? {
                return Err(NetworkError::Overlap {
                    which,
                    cidr: cidr.to_string(),
                    route,
                    device,
                });
            }
        }
        let ipam = Ipam::open(store, config.pod_cidr)?;
        let bridge_index = link::ensure_bridge(&handle, &config.bridge, config.pod_cidr).await?;
        write_sysctl("/proc/sys/net/ipv4/ip_forward")?;
        // hostPort on 127.0.0.1: DNAT to a pod needs loopback-sourced packets routable
        // out of the bridge (they are masqueraded there).
        write_sysctl(&format!(
            "/proc/sys/net/ipv4/conf/{}/route_localnet",
            config.bridge
        ))?;
        nft::apply_ruleset(&config.nft_table, &config.bridge, config.pod_cidr, &[])?;
        // NetworkPolicy must see bridged pod-to-pod traffic (see `policy`).
        if let Err(e) = policy::enable_bridge_netfilter(&config.bridge) {
            tracing::warn!(bridge = %config.bridge, error = %e, "NetworkPolicies will not apply to traffic between pods on the bridge");
        }
        tracing::info!(bridge = %config.bridge, pod_cidr = %config.pod_cidr, service_cidr = %config.service_cidr, "pod network ready");
        Ok(Network {
            config,
            handle,
            bridge_index,
            ipam: Mutex::new(ipam),
            host_ports: Mutex::new(Default::default()),
        })
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// Gives the pod `uid` (network namespace at `netns`) its address and `eth0`; returns
    /// the address. Idempotent: a pod that already has them keeps them.
    pub async fn attach(
        &self,
        uid: &str,
        netns: &Path,
        host_ports: Vec<nft::HostPort>,
    ) -> Result<Ipv4Addr, NetworkError> {
        let ip = self.ipam.lock().await.allocate(uid)?;
        self.set_host_ports(uid, ip, host_ports).await?;
        let host = host_veth_name(uid);
        if link::index_of(&self.handle, &host).await?.is_some() {
            // Adopted after a restart: the pair exists; make sure it is on the bridge.
            link::enslave(&self.handle, &host, self.bridge_index).await?;
            return Ok(ip);
        }
        let result = link::create_pod_link(
            &self.handle,
            &host,
            &peer_temp_name(uid),
            self.bridge_index,
            netns,
            ip,
            self.config.pod_cidr,
        )
        .await;
        if let Err(e) = result {
            // Leave nothing half made: the next attempt starts over.
            let _ = link::delete(&self.handle, &host).await;
            let _ = link::delete(&self.handle, &peer_temp_name(uid)).await;
            return Err(e);
        }
        Ok(ip)
    }

    /// Records the pod's hostPorts and rebuilds the table when they changed.
    async fn set_host_ports(
        &self,
        uid: &str,
        ip: Ipv4Addr,
        ports: Vec<nft::HostPort>,
    ) -> Result<(), NetworkError> {
        let mut all = self.host_ports.lock().await;
        let before = all.get(uid).cloned();
        if ports.is_empty() {
            all.remove(uid);
        } else {
            all.insert(uid.to_string(), (ip, ports));
        }
        if all.get(uid) == before.as_ref() {
            return Ok(());
        }
        let flat: Vec<(Ipv4Addr, nft::HostPort)> = all
            .values()
            .flat_map(|(ip, ports)| ports.iter().map(|p| (*ip, p.clone())))
            .collect();
        let result = nft::apply_ruleset(
            &self.config.nft_table,
            &self.config.bridge,
            self.config.pod_cidr,
            &flat,
        );
        if result.is_err() {
            // Keep the record equal to what the kernel has.
            match before {
                Some(b) => all.insert(uid.to_string(), b),
                None => all.remove(uid),
            };
        }
        result
    }

    /// The address `uid` holds, if any.
    pub async fn pod_ip(&self, uid: &str) -> Option<Ipv4Addr> {
        self.ipam.lock().await.get(uid)
    }

    /// Removes the pod's veth pair and frees its address (idempotent).
    pub async fn detach(&self, uid: &str) -> Result<(), NetworkError> {
        if self.host_ports.lock().await.contains_key(uid) {
            self.set_host_ports(uid, Ipv4Addr::UNSPECIFIED, Vec::new())
                .await?;
        }
        link::delete(&self.handle, &host_veth_name(uid)).await?;
        link::delete(&self.handle, &peer_temp_name(uid)).await?;
        self.ipam.lock().await.release(uid)
    }

    /// Pod uids holding an address (for the orphan cleanup at start).
    pub async fn allocated(&self) -> Vec<String> {
        self.ipam.lock().await.uids()
    }

    /// Removes the bridge and the nftables tables (NAT, Services and policies): for a node that stops being one (and
    /// test daemons). Pods must be gone first.
    pub async fn remove_node_network(config: &NetworkConfig) -> Result<(), NetworkError> {
        let handle = link::connect()?;
        link::delete(&handle, &config.bridge).await?;
        let policies = policy::delete_table(&config.nft_table);
        let services = nft::delete_table(&services::table_name(&config.nft_table));
        nft::delete_table(&config.nft_table)?;
        services?;
        policies
    }
}

/// The host side of a pod's veth pair: `bv` and 12 hex digits of the uid's hash (unique per
/// pod, at most 15 characters, and recognisable as berth's).
pub fn host_veth_name(uid: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(uid.as_bytes());
    format!("bv{}", &hex::encode(h)[..12])
}

/// The pod side's name while it is still in the host namespace.
fn peer_temp_name(uid: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(uid.as_bytes());
    format!("bp{}", &hex::encode(h)[..12])
}

fn write_sysctl(path: &str) -> Result<(), NetworkError> {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    if current.trim() == "1" {
        return Ok(());
    }
    std::fs::write(path, "1").map_err(|source| NetworkError::Io {
        action: "enable IP forwarding in",
        path: PathBuf::from(path),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_arithmetic() {
        let n: Ipv4Net = "10.244.3.7/16".parse().unwrap();
        assert_eq!(n.to_string(), "10.244.0.0/16");
        assert_eq!(n.gateway(), Ipv4Addr::new(10, 244, 0, 1));
        assert_eq!(n.broadcast(), Ipv4Addr::new(10, 244, 255, 255));
        assert!(n.contains(Ipv4Addr::new(10, 244, 9, 9)));
        assert!(!n.contains(Ipv4Addr::new(10, 245, 0, 1)));
        let s: Ipv4Net = "10.96.0.0/16".parse().unwrap();
        assert!(!n.overlaps(&s));
        assert!(n.overlaps(&"10.0.0.0/8".parse().unwrap()));
        assert!(n.overlaps(&"10.244.7.0/24".parse().unwrap()));
        assert!("10.0.0.0".parse::<Ipv4Net>().is_err());
        assert!("10.0.0.0/31".parse::<Ipv4Net>().is_err());
        assert!("300.0.0.0/16".parse::<Ipv4Net>().is_err());
    }

    #[test]
    fn veth_names_fit_and_differ() {
        let a = host_veth_name("0f6c1f6e-1111-2222-3333-444455556666");
        let b = host_veth_name("0f6c1f6e-1111-2222-3333-444455556667");
        assert_eq!(a.len(), 14);
        assert!(a.starts_with("bv"));
        assert_ne!(a, b);
    }

    #[test]
    fn overlapping_pod_and_service_cidrs_are_refused() {
        let c = NetworkConfig {
            bridge: "berth0".into(),
            pod_cidr: "10.0.0.0/8".parse().unwrap(),
            service_cidr: "10.96.0.0/16".parse().unwrap(),
            nft_table: "berth".into(),
            state_dir: PathBuf::from("/nonexistent"),
        };
        assert!(matches!(c.validate(), Err(NetworkError::Config(m)) if m.contains("overlaps")));
        let long = NetworkConfig {
            bridge: "a-very-long-bridge".into(),
            pod_cidr: "10.244.0.0/16".parse().unwrap(),
            ..c
        };
        assert!(long.validate().is_err());
    }
}
