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
    /// The user-defined networks (shared with the actor, which changes them).
    pub user: super::user::UserNetworks,
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
    /// The interface inside the container (`eth0` when empty: the records before user
    /// networks).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ifname: String,
    /// On a user-defined network: its `--network-alias`es.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The address asked for (`--ip`), shown as `IPAMConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam_ip: Option<Ipv4Addr>,
    /// A user-defined network's name (empty: the default bridge).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network_name: String,
}

/// What a container asks of a user-defined network it joins (`--network NAME` with
/// `--ip`, `--network-alias`; `docker network connect`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Attachment {
    pub network_id: String,
    /// The network's name (a network is never renamed), the key of
    /// `NetworkSettings.Networks`.
    #[serde(default)]
    pub name: String,
    /// `--ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
    /// `--network-alias`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// From `POST /networks/create`: makes a user-defined bridge network (its bridge, its
/// rules, its record) and replies its record. The request is checked first: a name in use
/// is dockerd's 409, a subnet that overlaps another network's its 403.
#[derive(Debug, Clone, Default, Message)]
#[rtype(result = "Result<super::user::NetworkRecord, NetworkError>")]
pub struct CreateNetwork {
    pub name: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    pub internal: bool,
    pub attachable: bool,
    /// `--opt`: the bridge name, icc, masquerade, MTU.
    pub options: std::collections::BTreeMap<String, String>,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// From `DELETE /networks/{id}` and `POST /networks/prune`: removes user-defined network
/// `id` (its rules, its bridge, its record). Refused (403) while a container has an
/// endpoint on it.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), NetworkError>")]
pub struct RemoveNetwork {
    pub id: String,
}

/// From `ContainerStoreActor` (`docker network connect` of a running container, and the
/// start of a container connected to more networks than its own): a veth on network
/// `attach.network_id` whose peer is `ifname` in the container's namespace `netns`, with
/// an address; the endpoint is container `id`'s from now on. No default route (eth0 has
/// it).
#[derive(Debug, Message)]
#[rtype(result = "Result<Endpoint, NetworkError>")]
pub struct ConnectEndpoint {
    pub id: String,
    /// The container's name (without `/`), for the embedded DNS.
    pub name: String,
    pub netns: std::sync::Arc<std::os::fd::OwnedFd>,
    pub ifname: String,
    pub attach: Attachment,
}

/// From `ContainerStoreActor` (`docker network disconnect` of a running container): the
/// endpoint of container `id` on network `network_id` goes (its veth deleted, its address
/// released). Unknown pairs are fine.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), NetworkError>")]
pub struct DisconnectEndpoint {
    pub id: String,
    pub network_id: String,
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
    /// A bridged sandbox on this user-defined network rather than the default bridge
    /// (made now, not ahead), with the container's names registered for the embedded DNS.
    pub attach: Option<Attachment>,
    /// The container's name (without `/`), for the embedded DNS.
    pub name: String,
    /// Where the embedded DNS sends other names (the container's `--dns`, else the
    /// host's nameservers); used with `attach`.
    pub upstreams: Vec<std::net::SocketAddr>,
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
    /// Container id → its name, for the embedded DNS's names.
    pub names: std::collections::HashMap<String, String>,
    /// The containers on a user-defined network whose embedded DNS server is started
    /// again (it went with the last berthd): id, init pid (its namespace is
    /// `/proc/PID/ns/net`), upstreams.
    pub dns: Vec<(String, i32, Vec<std::net::SocketAddr>)>,
}
