//! Links over rtnetlink: the bridge, its address, host routes, veth pairs, and the
//! configuration inside a container's network namespace.
//!
//! Everything here is a future on an rtnetlink `Handle`; which network namespace a request
//! acts in is the one the handle's socket was opened in.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use futures_util::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{InfoData, InfoVeth, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use super::error::NetworkError;
use super::ipam::Cidr;

fn link_err(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetworkError {
    let what = what.into();
    move |source| NetworkError::Link { what, source }
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -errno)
}

/// The link called `name`, if there is one.
pub async fn link_by_name(
    handle: &Handle,
    name: &str,
) -> Result<Option<LinkMessage>, NetworkError> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
        Err(source) => Err(NetworkError::Query {
            what: format!("link {name}"),
            source,
        }),
    }
}

/// Creates bridge `name` with `mtu` (if missing) and brings it up. Returns its index.
pub async fn ensure_bridge(handle: &Handle, name: &str, mtu: u32) -> Result<u32, NetworkError> {
    if link_by_name(handle, name).await?.is_none() {
        let res = handle
            .link()
            .add(LinkBridge::new(name).mtu(mtu).build())
            .execute()
            .await;
        match res {
            Ok(()) => tracing::info!(bridge = %name, mtu, "bridge created"),
            // Created meanwhile by someone else: fine.
            Err(e) if is_errno(&e, libc::EEXIST) => {}
            Err(e) => return Err(link_err(format!("creating bridge {name}"))(e)),
        }
    }
    let link = link_by_name(handle, name)
        .await?
        .ok_or_else(|| NetworkError::BridgeNotFound { name: name.into() })?;
    let index = link.header.index;
    set_up(handle, index, name).await?;
    Ok(index)
}

/// Brings link `index` up.
pub async fn set_up(handle: &Handle, index: u32, name: &str) -> Result<(), NetworkError> {
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(link_err(format!("bringing {name} up")))
}

/// The IPv4 addresses on link `index`.
pub async fn ipv4_addrs(handle: &Handle, index: u32) -> Result<Vec<Cidr>, NetworkError> {
    let mut out = Vec::new();
    let mut addrs = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute();
    while let Some(msg) = addrs
        .try_next()
        .await
        .map_err(|source| NetworkError::Query {
            what: format!("addresses of link {index}"),
            source,
        })?
    {
        if msg.header.family != AddressFamily::Inet {
            continue;
        }
        let prefix = msg.header.prefix_len;
        for a in &msg.attributes {
            if let AddressAttribute::Local(IpAddr::V4(ip))
            | AddressAttribute::Address(IpAddr::V4(ip)) = a
            {
                let c = Cidr::new(*ip, prefix);
                if !out.contains(&c) {
                    out.push(c);
                }
                break;
            }
        }
    }
    Ok(out)
}

/// Adds `addr` to link `index` (an address there already is fine).
pub async fn add_addr(handle: &Handle, index: u32, addr: Cidr) -> Result<(), NetworkError> {
    match handle
        .address()
        .add(index, IpAddr::V4(addr.addr), addr.prefix)
        .execute()
        .await
    {
        Err(e) if !is_errno(&e, libc::EEXIST) => Err(link_err(format!(
            "adding {}/{} to link {index}",
            addr.addr, addr.prefix
        ))(e)),
        _ => Ok(()),
    }
}

/// The destinations of the host's IPv4 routes (main and other tables), without default
/// routes and without routes through `except` (our own bridge).
pub async fn route_destinations(
    handle: &Handle,
    except: Option<u32>,
) -> Result<Vec<Cidr>, NetworkError> {
    let mut out = Vec::new();
    let mut routes = handle
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    while let Some(r) = routes
        .try_next()
        .await
        .map_err(|source| NetworkError::Query {
            what: "routes".to_owned(),
            source,
        })?
    {
        let prefix = r.header.destination_prefix_length;
        if prefix == 0 {
            continue;
        }
        let oif = r.attributes.iter().find_map(|a| match a {
            RouteAttribute::Oif(i) => Some(*i),
            _ => None,
        });
        if except.is_some() && oif == except {
            continue;
        }
        if let Some(dst) = r.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
            _ => None,
        }) {
            // Local and broadcast routes (table local) are /32s of addresses on links;
            // they are covered by the links' subnet routes.
            if prefix < 32 {
                out.push(Cidr::new(dst, prefix));
            }
        }
    }
    Ok(out)
}

/// Docker's MAC for an address: 02:42 and the four address bytes.
/// A MAC as `--mac-address` gives it (`02:42:ac:11:00:09`, or with `-`); `None` when it
/// is not one.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    Some(mac)
}

pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Creates veth pair `host` ↔ `peer` (`eth0`, `eth1`, ...), the host side attached to
/// `bridge` and up, the peer directly in network namespace `netns`, with `mac`. (The peer cannot be created up: a
/// veth refuses to open before its other end exists.)
pub async fn create_veth(
    handle: &Handle,
    host: &str,
    bridge: u32,
    mtu: u32,
    netns: BorrowedFd<'_>,
    mac: [u8; 6],
    peer_name: &str,
) -> Result<(), NetworkError> {
    let peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(peer_name)
        .mtu(mtu)
        .address(mac.to_vec())
        .setns_by_fd(netns.as_raw_fd())
        .build();
    // Created up, on the bridge: one request under the rtnl lock, not three.
    let msg = LinkVeth::new(host, peer_name)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .mtu(mtu)
        .controller(bridge)
        .up()
        .build();
    handle
        .link()
        .add(msg)
        .execute()
        .await
        .map_err(link_err(format!("creating veth {host}")))
}

/// Deletes link `name`; true if it was there.
pub async fn delete_link(handle: &Handle, name: &str) -> Result<bool, NetworkError> {
    let Some(link) = link_by_name(handle, name).await? else {
        return Ok(false);
    };
    match handle.link().del(link.header.index).execute().await {
        Ok(()) => Ok(true),
        Err(e) if is_errno(&e, libc::ENODEV) => Ok(false),
        Err(e) => Err(link_err(format!("deleting {name}"))(e)),
    }
}

/// On a handle opened inside a container's network namespace: `addr` on `ifname`,
/// `ifname` up, and (with `gateway`) the default route via `gateway`.
pub async fn address_link(
    handle: &Handle,
    ifname: &str,
    addr: Cidr,
    gateway: Option<Ipv4Addr>,
) -> Result<(), NetworkError> {
    let eth0 = link_by_name(handle, ifname)
        .await?
        .ok_or_else(|| NetworkError::Sandbox {
            source: std::io::Error::other(format!("{ifname} is missing right after its creation")),
        })?;
    let index = eth0.header.index;
    add_addr(handle, index, addr).await?;
    set_up(handle, index, ifname).await?;
    let Some(gateway) = gateway else {
        return Ok(());
    };
    handle
        .route()
        .add(
            RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gateway)
                .output_interface(index)
                .build(),
        )
        .execute()
        .await
        .map_err(link_err(format!("default route via {gateway}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_follows_the_address() {
        let ip: Ipv4Addr = "10.199.3.2".parse().unwrap();
        assert_eq!(mac_string(&mac_for(ip)), "02:42:0a:c7:03:02");
    }
}
