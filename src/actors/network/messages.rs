//! Messages of the [`NetworkActor`](super::NetworkActor).

use std::net::Ipv4Addr;

use actix::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::NetworkError;
pub use super::sandbox::Sandbox;

/// From `api::system::info` and the store: the settings resolved at `Init`.
#[derive(Debug, Message)]
#[rtype(result = "NetworkInfo")]
pub struct GetNetworkInfo;

/// The network settings in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkInfo {
    /// False with `-b none`.
    pub enabled: bool,
    /// The operator's bridge (`-b NAME`), or `None` for berth's own default bridge.
    pub bridge: Option<String>,
    /// The bridge containers are attached to (`berth0` or the `-b` one); empty when off.
    pub bridge_name: String,
    /// The bridge's subnet (`172.28.0.0/16`); empty when off.
    pub subnet: String,
    /// The bridge's address, the containers' gateway.
    pub gateway: Option<Ipv4Addr>,
    /// The MTU given to container interfaces.
    pub mtu: u32,
    /// The bridge network's id (see `Endpoint::network_id`); empty when off.
    pub network_id: String,
    /// When the bridge network was set up (this daemon's start, as dockerd makes its
    /// predefined bridge network again at each start).
    pub created: Option<chrono::DateTime<chrono::Utc>>,
}

/// A container's place on the bridge network. Kept in the container's record while it
/// runs (`NetworkSettings` of inspect) and handed back at a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The bridge network's id (stable for a bridge and subnet).
    pub network_id: String,
    pub endpoint_id: String,
    /// The bridge the host side is attached to.
    pub bridge: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// `02:42:..`, from the address.
    pub mac: String,
    /// The host side of the veth pair, `veth<8 hex>`.
    pub host_veth: String,
    /// The ports published for this run (`-p`, `-P`), as allocated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
}

/// A container port to publish: `HostConfig.PortBindings` (and `-P`'s exposed ports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub proto: String,
    /// The address to publish on; `0.0.0.0` for every one.
    pub host_ip: Ipv4Addr,
    /// The first and last host port to try; `None`: one the kernel picks from its
    /// ephemeral range.
    pub host_ports: Option<(u16, u16)>,
}

/// A published port: `host_ip:host_port` → the container's `container_port/proto`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub container_port: u16,
    pub proto: String,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
}

/// From `ContainerStoreActor` on the start of a bridged container with published ports,
/// once its endpoint is known: holds each host port (a bound socket, so that no one else
/// takes it) and adds the DNAT and forward rules, in one iptables run. Replies the
/// mappings; a port held by another container is dockerd's `port is already allocated`,
/// one another process holds `address already in use`. The ports go with the endpoint
/// (`ReleaseEndpoint`).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<PortMapping>, NetworkError>")]
pub struct PublishPorts {
    pub id: String,
    /// The container's name, for the error texts.
    pub name: String,
    pub endpoint_id: String,
    pub ip: Ipv4Addr,
    pub requests: Vec<PortRequest>,
}

/// From `ContainerStoreActor` on the start of a container with links under `--icc=false`,
/// after its endpoint is taken: opens container `id` (at `ip`) to each child's exposed
/// ports, `(child ip, proto, port)`, and nothing else. The rules go with the endpoint
/// (`ReleaseEndpoint`). Nothing to do with `--icc=true`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), NetworkError>")]
pub struct OpenLinks {
    pub id: String,
    pub ip: Ipv4Addr,
    pub ports: Vec<(Ipv4Addr, String, u16)>,
}

/// From `ContainerStoreActor` on the start of a container with its own network namespace
/// (`--network none`, or `bridged` for the default network): a namespace to join, ready
/// (see [`super::sandbox`]). A bridged one's endpoint is container `id`'s from now on.
/// `PoolExhausted` when no address is left.
#[derive(Debug, Message)]
#[rtype(result = "Result<Sandbox, NetworkError>")]
pub struct TakeSandbox {
    pub id: String,
    pub bridged: bool,
    /// `--mac-address`: a bridged sandbox made now with this MAC (not one made ahead,
    /// whose MAC comes from its address).
    pub mac: Option<[u8; 6]>,
}

/// From `ContainerStoreActor` on create (`do_send`): a start of this kind is coming, so
/// have sandboxes of it ready.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Prewarm {
    pub bridged: bool,
}

/// From `ContainerStoreActor` when a container exited, failed to start or is removed:
/// deletes the host veth if it is still there and releases the address. Unknown ids are
/// fine. The store sends it with `do_send` on exit, so that it is in the mailbox before
/// the `TakeSandbox` of a restart.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), NetworkError>")]
pub struct ReleaseEndpoint {
    pub id: String,
}

/// From `ContainerStoreActor::Init`: the endpoints of containers still running after a
/// daemon restart, whose addresses are reserved again. Replies the ids whose endpoint
/// does not fit the current network (another subnet or a clash).
#[derive(Debug, Message)]
#[rtype(result = "Vec<String>")]
pub struct RestoreEndpoints {
    pub endpoints: Vec<(String, Endpoint)>,
}
