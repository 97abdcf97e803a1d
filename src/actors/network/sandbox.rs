//! Network sandboxes: the network namespaces of container starts, made ahead of them.
//!
//! A start used to get its network namespace from the monitor's `clone` and then have it
//! wired (veth pair, address, route: eight rtnetlink requests and a thread that entered
//! the namespace) while the init waited. Creating a namespace and every one of those
//! requests take the kernel's rtnl lock, which the teardown of the previous container's
//! namespace holds for milliseconds, so starts in a row mostly waited for each other.
//!
//! Now the network actor keeps a few sandboxes ready per kind ([`Pool`]): plain ones
//! (`lo` up, for `--network none`) and bridged ones (also `eth0`, the peer of a veth whose
//! host side is up on the bridge, with an address from the pool and the default route).
//! A start takes one, and its init joins the namespace (`setns`) instead of creating one;
//! the pool is refilled in the background. A take that finds none makes one on the spot,
//! as a start did before. berthd keeps no descriptor of a taken namespace, so it goes
//! with the container's last process, its veth pair with it; the ready ones go when
//! berthd drops them (shutdown, or exit of any kind).

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rtnetlink::Handle;

use super::bridge;
use super::error::NetworkError;
use super::ipam::Cidr;
use super::messages::Endpoint;

/// Sandboxes of each kind kept ready once that kind has been asked for.
pub const POOL_TARGET: usize = 2;

/// A network namespace for one container start.
#[derive(Debug)]
pub struct Sandbox {
    /// The namespace; it lives as long as this descriptor or a process in it.
    pub netns: OwnedFd,
    /// For a bridged one: the container's address, MAC and host veth, wired in `netns`.
    pub endpoint: Option<Endpoint>,
}

/// The two kinds of sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `lo` only (`--network none`).
    Plain,
    /// On the bridge (the default network).
    Bridged,
}

/// What a bridged sandbox is wired to.
#[derive(Debug, Clone)]
pub struct Wiring {
    pub bridge_index: u32,
    pub mtu: u32,
    pub endpoint: Endpoint,
    /// eth0's MAC.
    pub mac: [u8; 6],
    /// No default route (an `--internal` network's, as dockerd).
    pub no_route: bool,
}

/// Wires one more interface into the existing namespace `netns` (`docker network
/// connect`, or a start with more than one network): a veth whose peer is `ifname`
/// there, with the endpoint's address and no default route. On a thread of its own that
/// enters the namespace and ends (as [`make`]).
pub async fn attach(
    netns: std::sync::Arc<OwnedFd>,
    wiring: Wiring,
    ifname: String,
) -> Result<(), NetworkError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name("berth-sandbox".into())
        .spawn(move || {
            let _g = span.enter();
            let _ = tx.send(attach_on_this_thread(&netns, wiring, &ifname));
        })
        .map_err(sandbox_err)?;
    rx.await
        .map_err(|_| sandbox_err(io::Error::other("sandbox thread ended without a reply")))?
}

fn attach_on_this_thread(netns: &OwnedFd, w: Wiring, ifname: &str) -> Result<(), NetworkError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(sandbox_err)?;
    rt.block_on(async move {
        let host = connect()?;
        let ep = w.endpoint;
        bridge::create_veth(
            &host,
            &ep.host_veth,
            w.bridge_index,
            w.mtu,
            netns.as_fd(),
            w.mac,
            ifname,
        )
        .await?;
        // This thread is ours and ends after.
        crate::sys::namespaces::join_netns(netns).map_err(|e| sandbox_err(io::Error::other(e)))?;
        let inside = connect()?;
        bridge::address_link(&inside, ifname, Cidr::new(ep.ip, ep.prefix), None).await
    })
}

fn sandbox_err(source: io::Error) -> NetworkError {
    NetworkError::Sandbox { source }
}

/// Makes a sandbox on a thread of its own ("berth-sandbox"), which moves into the new
/// namespace and ends afterwards (a pool thread must never change namespace).
pub async fn make(wiring: Option<Wiring>) -> Result<Sandbox, NetworkError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name("berth-sandbox".into())
        .spawn(move || {
            let _g = span.enter();
            let _ = tx.send(make_on_this_thread(wiring));
        })
        .map_err(sandbox_err)?;
    rx.await
        .map_err(|_| sandbox_err(io::Error::other("sandbox thread ended without a reply")))?
}

/// An rtnetlink handle in the calling thread's network namespace, its connection a task
/// of the current runtime.
fn connect() -> Result<Handle, NetworkError> {
    let (conn, handle, _) =
        rtnetlink::new_connection().map_err(|source| NetworkError::Netlink { source })?;
    tokio::spawn(conn);
    Ok(handle)
}

fn make_on_this_thread(wiring: Option<Wiring>) -> Result<Sandbox, NetworkError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(sandbox_err)?;
    rt.block_on(async move {
        // Opened before the unshare: this socket stays in the host's namespace.
        let host = match &wiring {
            Some(_) => Some(connect()?),
            None => None,
        };
        let netns = crate::sys::namespaces::unshare_netns()
            .map_err(|e| sandbox_err(io::Error::other(e)))?;
        let (Some(w), Some(host)) = (wiring, host) else {
            return Ok(Sandbox {
                netns,
                endpoint: None,
            });
        };
        let ep = w.endpoint;
        let mac = w.mac;
        bridge::create_veth(
            &host,
            &ep.host_veth,
            w.bridge_index,
            w.mtu,
            netns.as_fd(),
            mac,
            "eth0",
        )
        .await?;
        // Opened after the unshare: this one acts inside the new namespace. (On an error
        // the veth pair goes with the namespace when `netns` is dropped.)
        let inside = connect()?;
        let gateway = (!w.no_route).then_some(ep.gateway);
        bridge::address_link(&inside, "eth0", Cidr::new(ep.ip, ep.prefix), gateway).await?;
        Ok(Sandbox {
            netns,
            endpoint: Some(ep),
        })
    })
}

/// The sandboxes kept ready, and the bookkeeping of the ones being made.
#[derive(Debug, Default)]
pub struct Pool {
    ready: [VecDeque<Sandbox>; 2],
    making: [usize; 2],
    /// A kind is made ahead only once it has been asked for, and not after a failure
    /// until it is asked for again.
    wanted: [bool; 2],
}

impl Pool {
    /// A ready sandbox of `kind`, if any; the kind is wanted from now on.
    pub fn take(&mut self, kind: Kind) -> Option<Sandbox> {
        self.want(kind);
        self.ready[kind as usize].pop_front()
    }

    pub fn want(&mut self, kind: Kind) {
        self.wanted[kind as usize] = true;
    }

    /// How many more of `kind` to start making now.
    pub fn missing(&self, kind: Kind) -> usize {
        let k = kind as usize;
        if !self.wanted[k] {
            return 0;
        }
        POOL_TARGET.saturating_sub(self.ready[k].len() + self.making[k])
    }

    pub fn making_started(&mut self, kind: Kind) {
        self.making[kind as usize] += 1;
    }

    /// One being made is done: ready, or failed (`None`; the kind is no longer wanted).
    pub fn made(&mut self, kind: Kind, sandbox: Option<Sandbox>) {
        let k = kind as usize;
        self.making[k] = self.making[k].saturating_sub(1);
        match sandbox {
            Some(s) => self.ready[k].push_back(s),
            None => self.wanted[k] = false,
        }
    }

    /// The ready ones, e.g. to hand back their addresses.
    pub fn drain(&mut self) -> Vec<Sandbox> {
        self.wanted = [false; 2];
        self.ready.iter_mut().flat_map(|q| q.drain(..)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Sandbox {
        // Any descriptor does for the bookkeeping.
        Sandbox {
            netns: OwnedFd::from(std::fs::File::open("/dev/null").unwrap()),
            endpoint: None,
        }
    }

    #[test]
    fn a_kind_is_made_ahead_once_asked_for_and_up_to_the_target() {
        let mut p = Pool::default();
        assert_eq!(p.missing(Kind::Plain), 0);
        assert!(p.take(Kind::Plain).is_none());
        assert_eq!(p.missing(Kind::Plain), POOL_TARGET);
        assert_eq!(p.missing(Kind::Bridged), 0);
        p.making_started(Kind::Plain);
        assert_eq!(p.missing(Kind::Plain), POOL_TARGET - 1);
        p.made(Kind::Plain, Some(plain()));
        assert_eq!(p.missing(Kind::Plain), POOL_TARGET - 1);
        assert!(p.take(Kind::Plain).is_some());
        assert!(p.take(Kind::Plain).is_none());
        assert_eq!(p.missing(Kind::Plain), POOL_TARGET);
    }

    #[test]
    fn a_failure_stops_making_ahead_until_asked_again() {
        let mut p = Pool::default();
        p.want(Kind::Bridged);
        p.making_started(Kind::Bridged);
        p.made(Kind::Bridged, None);
        assert_eq!(p.missing(Kind::Bridged), 0);
        assert!(p.take(Kind::Bridged).is_none());
        assert_eq!(p.missing(Kind::Bridged), POOL_TARGET);
    }

    #[test]
    fn drain_hands_back_the_ready_ones_and_stops() {
        let mut p = Pool::default();
        p.want(Kind::Plain);
        p.made(Kind::Plain, Some(plain()));
        p.made(Kind::Plain, Some(plain()));
        assert_eq!(p.drain().len(), 2);
        assert_eq!(p.missing(Kind::Plain), 0);
    }
}
