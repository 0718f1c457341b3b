//! Links, addresses and routes through rtnetlink. A pod's namespace is reached by a
//! netlink socket opened inside it (a socket stays bound to the namespace it was created
//! in): a short-lived OS thread enters the namespace, opens the socket and ends, so no
//! thread of the daemon's pools ever changes namespace.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::{Ipv4Net, NetworkError, POD_INTERFACE};

const ENODEV: i32 = 19;
const EEXIST: i32 = 17;
const RT_TABLE_MAIN: u8 = 254;

fn nl(action: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetworkError {
    let action = action.into();
    move |source| NetworkError::Netlink { action, source }
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code().abs() == errno)
}

/// A netlink connection in the daemon's own namespace.
pub(super) fn connect() -> Result<Handle, NetworkError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(NetworkError::Socket)?;
    tokio::spawn(conn);
    Ok(handle)
}

/// A netlink connection inside the namespace at `netns`; abort the task when done.
fn connect_in(netns: &Path) -> Result<(Handle, tokio::task::JoinHandle<()>), NetworkError> {
    let ns_err = |source| NetworkError::Netns {
        path: netns.to_path_buf(),
        source,
    };
    let file = File::open(netns).map_err(ns_err)?;
    let rt = tokio::runtime::Handle::current();
    let opened = std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)?;
        let _entered = rt.enter();
        rtnetlink::new_connection()
    })
    .join()
    .map_err(|_| ns_err(std::io::Error::other("the namespace thread panicked")))?;
    let (conn, handle, _) = opened.map_err(ns_err)?;
    Ok((handle, tokio::spawn(conn)))
}

/// The index of the link `name`, if it exists.
pub(super) async fn index_of(handle: &Handle, name: &str) -> Result<Option<u32>, NetworkError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        Err(e) if is_errno(&e, ENODEV) => Ok(None),
        Err(e) => Err(nl(format!("look up link {name}"))(e)),
    }
}

async fn name_of(handle: &Handle, index: u32) -> String {
    let mut links = handle.link().get().match_index(index).execute();
    if let Ok(Some(link)) = links.try_next().await {
        for a in link.attributes {
            if let LinkAttribute::IfName(n) = a {
                return n;
            }
        }
    }
    format!("#{index}")
}

/// The first IPv4 route of the main table (not the default route, not through `skip`)
/// whose destination overlaps `cidr`: (route, device).
pub(super) async fn overlapping_route(
    handle: &Handle,
    cidr: Ipv4Net,
    skip: Option<u32>,
) -> Result<Option<(String, String)>, NetworkError> {
    let mut routes = handle
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    while let Some(route) = routes
        .try_next()
        .await
        .map_err(nl("list the host's routes"))?
    {
        let prefix = route.header.destination_prefix_length;
        if route.header.table != RT_TABLE_MAIN || prefix == 0 {
            continue;
        }
        let mut dest = None;
        let mut oif = None;
        for a in &route.attributes {
            match a {
                RouteAttribute::Destination(RouteAddress::Inet(d)) => dest = Some(*d),
                RouteAttribute::Oif(i) => oif = Some(*i),
                _ => {}
            }
        }
        let Some(dest) = dest else { continue };
        if oif.is_some() && oif == skip {
            continue;
        }
        let net = Ipv4Net { addr: dest, prefix };
        if net.overlaps(&cidr) {
            let device = match oif {
                Some(i) => name_of(handle, i).await,
                None => "-".to_string(),
            };
            return Ok(Some((net.to_string(), device)));
        }
    }
    Ok(None)
}

/// Creates the bridge when missing, gives it the gateway address and brings it up.
pub(super) async fn ensure_bridge(
    handle: &Handle,
    name: &str,
    cidr: Ipv4Net,
) -> Result<u32, NetworkError> {
    if index_of(handle, name).await?.is_none() {
        match handle
            .link()
            .add(LinkBridge::new(name).build())
            .execute()
            .await
        {
            Ok(()) => {}
            Err(e) if is_errno(&e, EEXIST) => {}
            Err(e) => return Err(nl(format!("create the bridge {name}"))(e)),
        }
    }
    let index = index_of(handle, name).await?.ok_or_else(|| {
        NetworkError::Config(format!("the bridge {name} vanished as it was made"))
    })?;
    handle
        .address()
        .add(index, IpAddr::V4(cidr.gateway()), cidr.prefix)
        .replace()
        .execute()
        .await
        .map_err(nl(format!(
            "add {}/{} to {name}",
            cidr.gateway(),
            cidr.prefix
        )))?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(nl(format!("bring up {name}")))?;
    Ok(index)
}

/// Puts the link `name` on the bridge in hairpin mode and brings it up.
pub(super) async fn enslave(handle: &Handle, name: &str, bridge: u32) -> Result<(), NetworkError> {
    let index = index_of(handle, name)
        .await?
        .ok_or_else(|| NetworkError::Config(format!("link {name} vanished")))?;
    handle
        .link()
        .set(
            LinkUnspec::new_with_index(index)
                .controller(bridge)
                .up()
                .build(),
        )
        .execute()
        .await
        .map_err(nl(format!("attach {name} to the bridge")))?;
    // With br_netfilter loaded, a pod's packet to a Service is DNATed while it is being
    // bridged; when the chosen endpoint is the pod itself the frame must go back out of
    // the port it came in on, which a bridge only does for a hairpin port (kubelet's
    // hairpin-veth mode).
    let path = std::path::PathBuf::from(format!("/sys/class/net/{name}/brport/hairpin_mode"));
    if std::fs::read_to_string(&path)
        .map(|v| v.trim() == "1")
        .unwrap_or(false)
    {
        return Ok(());
    }
    std::fs::write(&path, "1").map_err(|source| NetworkError::Io {
        action: "set hairpin mode in",
        path,
        source,
    })
}

/// Deletes the link `name` if it exists (a veth takes its peer with it).
pub(super) async fn delete(handle: &Handle, name: &str) -> Result<(), NetworkError> {
    let Some(index) = index_of(handle, name).await? else {
        return Ok(());
    };
    match handle.link().del(index).execute().await {
        Ok(()) => Ok(()),
        Err(e) if is_errno(&e, ENODEV) => Ok(()),
        Err(e) => Err(nl(format!("delete link {name}"))(e)),
    }
}

/// Makes the veth pair `host`/`peer`, moves `peer` into `netns` as `eth0` with `ip` and a
/// default route via the gateway, and puts `host` on the bridge.
pub(super) async fn create_pod_link(
    handle: &Handle,
    host: &str,
    peer: &str,
    bridge: u32,
    netns: &Path,
    ip: Ipv4Addr,
    cidr: Ipv4Net,
) -> Result<(), NetworkError> {
    // A leftover peer from an interrupted attempt would make the names clash.
    delete(handle, peer).await?;
    handle
        .link()
        .add(LinkVeth::new(host, peer).build())
        .execute()
        .await
        .map_err(nl(format!("create the veth pair {host}")))?;
    let peer_index = index_of(handle, peer)
        .await?
        .ok_or_else(|| NetworkError::Config(format!("veth peer {peer} vanished")))?;
    let ns = File::open(netns).map_err(|source| NetworkError::Netns {
        path: netns.to_path_buf(),
        source,
    })?;
    handle
        .link()
        .set(
            LinkUnspec::new_with_index(peer_index)
                .setns_by_fd(ns.as_raw_fd())
                .build(),
        )
        .execute()
        .await
        .map_err(nl(format!("move {peer} into the pod's namespace")))?;
    enslave(handle, host, bridge).await?;
    let (inside, task) = connect_in(netns)?;
    let result = configure_inside(&inside, peer, ip, cidr).await;
    task.abort();
    result
}

async fn configure_inside(
    handle: &Handle,
    peer: &str,
    ip: Ipv4Addr,
    cidr: Ipv4Net,
) -> Result<(), NetworkError> {
    let index = index_of(handle, peer)
        .await?
        .ok_or_else(|| NetworkError::Config(format!("{peer} is not in the pod's namespace")))?;
    handle
        .link()
        .set(
            LinkUnspec::new_with_index(index)
                .name(POD_INTERFACE.to_string())
                .build(),
        )
        .execute()
        .await
        .map_err(nl(format!("rename {peer} to {POD_INTERFACE}")))?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(nl(format!("bring up the pod's {POD_INTERFACE}")))?;
    handle
        .address()
        .add(index, IpAddr::V4(ip), cidr.prefix)
        .replace()
        .execute()
        .await
        .map_err(nl(format!(
            "add {ip}/{} to the pod's {POD_INTERFACE}",
            cidr.prefix
        )))?;
    handle
        .route()
        .add(
            RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(cidr.gateway())
                .output_interface(index)
                .build(),
        )
        .replace()
        .execute()
        .await
        .map_err(nl(format!(
            "add the pod's default route via {}",
            cidr.gateway()
        )))
}
