//! Errors of the network subsystem.

use crate::error::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("netlink socket could not be opened")]
    Netlink {
        #[source]
        source: std::io::Error,
    },
    #[error("netlink query for {what} failed")]
    Query {
        what: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("{what} failed")]
    Link {
        what: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("bridge {name} not found: create it first or leave out -b")]
    BridgeNotFound { name: String },
    #[error("{name} is not a bridge")]
    NotABridge { name: String },
    #[error("bridge {name} has no IPv4 address: give it one (ip addr add CIDR dev {name})")]
    NoBridgeAddress { name: String },
    #[error(
        "no free subnet for the default bridge: every candidate overlaps a host route; use --bip"
    )]
    NoFreeSubnet,
    #[error("no free IP address left in {subnet}")]
    PoolExhausted { subnet: String },
    #[error("networking is disabled (-b none): use --network none or --network host")]
    Disabled,
    #[error("berthd publishes ports with iptables rules, which --iptables=false turns off")]
    PortsNeedIptables,
    #[error("network {name} not found")]
    NoSuchNetwork { name: String },
    #[error("container {id} has no network endpoint")]
    NoEndpoint { id: String },
    #[error("iptables {args} failed: {stderr}")]
    Iptables { args: String, stderr: String },
    #[error("iptables could not be run")]
    IptablesSpawn {
        #[source]
        source: std::io::Error,
    },
    #[error("{path} could not be written")]
    Sysctl {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A host port that berthd (`Bind for IP:PORT failed: port is already allocated`) or
    /// another process (`…: bind: address already in use`) holds, in dockerd's words
    /// (`ports::allocated`, `ports::bind_failed`).
    #[error(
        "driver failed programming external connectivity on endpoint {name} ({endpoint}): {detail}"
    )]
    PortTaken {
        name: String,
        endpoint: String,
        detail: Box<str>,
    },
    #[error("network records {path} could not be read or written")]
    Records {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// dockerd's words for a network name in use.
    #[error("network with name {name} already exists")]
    NetworkExists { name: String },
    /// A network create or connect that cannot be done as asked (dockerd's words where it
    /// has some).
    #[error("{message}")]
    InvalidNetwork { message: String },
    /// A subnet that overlaps another network's (dockerd's 403).
    #[error("Pool overlaps with other one on this address space")]
    PoolOverlaps,
    /// No subnet left in the default address pools.
    #[error(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
    )]
    NoPoolLeft,
    /// dockerd's 403 for the removal of a network with running containers on it.
    #[error("error while removing network: network {name} id {id} has active endpoints")]
    ActiveEndpoints { name: String, id: String },
    /// A request berthd refuses as dockerd does (403): a pre-defined network's removal, a
    /// disconnect from a network the container is not on.
    #[error("{message}")]
    Forbidden { message: String },
    /// The embedded DNS server of a container on a user-defined network did not start.
    #[error("the embedded DNS server (127.0.0.11) of the container could not be started")]
    DnsStart {
        #[source]
        source: Box<NetworkError>,
    },
    /// The embedded DNS server of a container (`dns::serve`).
    #[error("embedded DNS server: {what} failed")]
    Dns {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("network namespace for a container could not be made")]
    Sandbox {
        #[source]
        source: std::io::Error,
    },
}

impl NetworkError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            NetworkError::Netlink { .. }
            | NetworkError::Query { .. }
            | NetworkError::Link { .. }
            | NetworkError::NoFreeSubnet
            | NetworkError::PoolExhausted { .. }
            | NetworkError::Iptables { .. }
            | NetworkError::IptablesSpawn { .. }
            | NetworkError::Sysctl { .. }
            | NetworkError::Sandbox { .. }
            | NetworkError::Records { .. }
            | NetworkError::NoPoolLeft
            | NetworkError::DnsStart { .. }
            | NetworkError::Dns { .. } => ErrorKind::System,
            NetworkError::NetworkExists { .. } => ErrorKind::Conflict,
            NetworkError::InvalidNetwork { .. } => ErrorKind::InvalidParameter,
            NetworkError::PoolOverlaps
            | NetworkError::ActiveEndpoints { .. }
            | NetworkError::Forbidden { .. } => ErrorKind::Forbidden,
            NetworkError::PortTaken { .. } => ErrorKind::Conflict,
            NetworkError::BridgeNotFound { .. }
            | NetworkError::NotABridge { .. }
            | NetworkError::NoBridgeAddress { .. } => ErrorKind::InvalidParameter,
            NetworkError::Disabled | NetworkError::PortsNeedIptables => ErrorKind::InvalidParameter,
            NetworkError::NoSuchNetwork { .. } | NetworkError::NoEndpoint { .. } => {
                ErrorKind::NotFound
            }
        }
    }
}
