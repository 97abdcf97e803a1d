//! The embedded DNS server of user-defined networks (issue 15 part 4).
//!
//! INTERFACE ONLY (this file is being written): the network actor keeps one [`Names`]
//! table for the daemon and, for every container with an endpoint on a user-defined
//! network, one [`Server`] made with [`serve`] once its network namespace exists and before
//! its process starts. The container's resolv.conf then names `127.0.0.11` (dockerd's
//! address). A query for a name on one of the container's networks (a container's name,
//! its 12-hex short id, a `--network-alias`) is answered from the table; every other query
//! goes to the container's upstream resolvers (its `--dns`, else the host's), from the
//! host's network namespace.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::BorrowedFd;
use std::sync::Arc;

use super::error::NetworkError;

/// One container's names on one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub container_id: String,
    /// Its name (no leading `/`), its `--network-alias`es on this network; the short id
    /// (first 12 hex digits of the id) is answered too and need not be listed.
    pub names: Vec<String>,
    pub ip: Ipv4Addr,
}

/// The names of every container on every user-defined network, shared by the network
/// actor (which changes it on join and leave) and the servers (which read it).
#[derive(Debug, Default)]
pub struct Names {
    _private: (),
}

impl Names {
    pub fn new() -> Arc<Names> {
        Arc::new(Names::default())
    }

    /// Container `entry.container_id` is on network `network_id` with these names (again:
    /// replaces what it had there).
    pub fn join(&self, network_id: &str, entry: Entry) {
        let _ = (network_id, entry);
    }

    /// The container left the network (disconnect, stop, removal). Unknown pairs are fine.
    pub fn leave(&self, network_id: &str, container_id: &str) {
        let _ = (network_id, container_id);
    }

    /// The addresses `name` (case-insensitive, a trailing dot ignored) has on the networks
    /// `container_id` is on; empty when none.
    pub fn lookup(&self, container_id: &str, name: &str) -> Vec<Ipv4Addr> {
        let _ = (container_id, name);
        Vec::new()
    }
}

/// A running server for one container; dropping it stops it and closes its sockets.
#[derive(Debug)]
pub struct Server {
    _private: (),
}

/// Starts the DNS server of container `container_id`, whose network namespace is `netns`:
/// from then on `127.0.0.11:53` (UDP and TCP) inside that namespace answers. `upstreams`:
/// where other names go (port 53 unless given).
pub fn serve(
    netns: BorrowedFd<'_>,
    names: Arc<Names>,
    container_id: &str,
    upstreams: Vec<SocketAddr>,
) -> Result<Server, NetworkError> {
    let _ = (netns, names, container_id, upstreams);
    Err(NetworkError::Sandbox {
        source: std::io::Error::other("the embedded DNS server is not built yet"),
    })
}
