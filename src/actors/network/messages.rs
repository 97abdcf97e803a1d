//! Messages of the [`NetworkActor`](super::NetworkActor).

use actix::prelude::*;

use super::error::NetworkError;
use crate::monitor::spec::NetworkSpec;

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
    /// The MTU given to container interfaces.
    pub mtu: u32,
}

/// From `ContainerStoreActor` on create and start: what network namespace a container with
/// `HostConfig.NetworkMode = mode` gets.
#[derive(Debug, Message)]
#[rtype(result = "Result<NetworkSpec, NetworkError>")]
pub struct PlanNetwork {
    pub mode: String,
}
