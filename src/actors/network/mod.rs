//! NetworkActor: bridge, iptables, IP and port allocation, links (seed step 4.5).
//!
//! State: the network settings resolved at `Init` (networking on or off, the bridge, the
//! MTU) and an rtnetlink handle. Threads: the actor runs on its own arbiter; rtnetlink's
//! connection is a task on that arbiter, so queries are futures and never block it.
//!
//! This scope: containers get `--network none` (a new network namespace with only
//! `lo`) or `--network host`. `-b NAME` is checked to name an existing bridge, `-b none`
//! turns networking off, and the MTU rule of the seed is applied. The default bridge with
//! NAT and published ports is refused with a clear error until it lands.

pub mod error;
pub mod messages;

use std::net::Ipv4Addr;
use std::sync::Arc;

use actix::prelude::*;
use futures_util::TryStreamExt;
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use netlink_packet_route::route::RouteAttribute;
use rtnetlink::{Handle, RouteMessageBuilder};

pub use error::NetworkError;
pub use messages::*;

use super::{Init, LifecycleError, Shutdown};
use crate::config::{BridgeSetting, DaemonConfig};
use crate::monitor::spec::NetworkSpec;

/// The MTU when neither `--mtu` nor the default route's interface gives one.
pub const DEFAULT_MTU: u32 = 1500;

/// The network subsystem. See the module docs.
#[derive(Debug)]
pub struct NetworkActor {
    config: Arc<DaemonConfig>,
    info: NetworkInfo,
}

impl NetworkActor {
    pub fn new(config: Arc<DaemonConfig>) -> Self {
        NetworkActor {
            config,
            info: NetworkInfo::default(),
        }
    }
}

impl Actor for NetworkActor {
    type Context = Context<Self>;
}

fn netlink() -> Result<Handle, NetworkError> {
    let (conn, handle, _) =
        rtnetlink::new_connection().map_err(|source| NetworkError::Netlink { source })?;
    actix_rt::spawn(conn);
    Ok(handle)
}

async fn link_by_name(handle: &Handle, name: &str) -> Result<Option<LinkMessage>, NetworkError> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link),
        // ENODEV: no such link.
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(source) => Err(NetworkError::Query {
            what: format!("link {name}"),
            source,
        }),
    }
}

fn is_bridge(link: &LinkMessage) -> bool {
    link.attributes.iter().any(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos
            .iter()
            .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge))),
        _ => false,
    })
}

fn mtu_of(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(m) => Some(*m),
        _ => None,
    })
}

/// The MTU of the IPv4 default route's interface, if there is a default route.
async fn default_route_mtu(handle: &Handle) -> Result<Option<u32>, NetworkError> {
    let query = |source| NetworkError::Query {
        what: "routes".to_owned(),
        source,
    };
    let mut routes = handle
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    let mut oif = None;
    while let Some(route) = routes.try_next().await.map_err(query)? {
        if route.header.destination_prefix_length != 0 {
            continue;
        }
        if let Some(i) = route.attributes.iter().find_map(|a| match a {
            RouteAttribute::Oif(i) => Some(*i),
            _ => None,
        }) {
            oif = Some(i);
            break;
        }
    }
    let Some(index) = oif else { return Ok(None) };
    let mut links = handle.link().get().match_index(index).execute();
    let link = links
        .try_next()
        .await
        .map_err(|source| NetworkError::Query {
            what: format!("link {index}"),
            source,
        })?;
    Ok(link.as_ref().and_then(mtu_of))
}

async fn resolve(config: Arc<DaemonConfig>) -> Result<NetworkInfo, NetworkError> {
    let handle = netlink()?;
    let mtu = if config.mtu != 0 {
        config.mtu
    } else {
        default_route_mtu(&handle).await?.unwrap_or(DEFAULT_MTU)
    };
    let (enabled, bridge) = match &config.bridge {
        BridgeSetting::None => (false, None),
        BridgeSetting::Default => (true, None),
        BridgeSetting::Existing(name) => {
            let link = link_by_name(&handle, name)
                .await?
                .ok_or_else(|| NetworkError::BridgeNotFound { name: name.clone() })?;
            if !is_bridge(&link) {
                return Err(NetworkError::NotABridge { name: name.clone() });
            }
            (true, Some(name.clone()))
        }
    };
    Ok(NetworkInfo {
        enabled,
        bridge,
        mtu,
    })
}

impl Handler<Init> for NetworkActor {
    type Result = ResponseActFuture<Self, Result<(), LifecycleError>>;
    fn handle(&mut self, _: Init, _: &mut Self::Context) -> Self::Result {
        let config = self.config.clone();
        Box::pin(
            actix::fut::wrap_future(resolve(config)).map(|res, act: &mut Self, _| match res {
                Ok(info) => {
                    tracing::info!(
                        enabled = info.enabled,
                        bridge = info.bridge.as_deref().unwrap_or(""),
                        mtu = info.mtu,
                        "network settings resolved"
                    );
                    act.info = info;
                    Ok(())
                }
                Err(e) => Err(LifecycleError::from_error(&e)),
            }),
        )
    }
}

impl Handler<Shutdown> for NetworkActor {
    type Result = Result<(), LifecycleError>;
    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> Self::Result {
        // Nothing is allocated yet: no published ports, no NAT rules.
        Ok(())
    }
}

impl Handler<GetNetworkInfo> for NetworkActor {
    type Result = MessageResult<GetNetworkInfo>;
    fn handle(&mut self, _: GetNetworkInfo, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.info.clone())
    }
}

/// Maps a container's `HostConfig.NetworkMode` to what its monitor should create.
pub fn plan_network(info: &NetworkInfo, mode: &str) -> Result<NetworkSpec, NetworkError> {
    match mode {
        "none" => Ok(NetworkSpec::None),
        "host" => Ok(NetworkSpec::Host),
        "" | "default" | "bridge" if !info.enabled => Err(NetworkError::Disabled),
        "" | "default" | "bridge" => Err(NetworkError::BridgeUnsupported),
        m if m.starts_with("container:") => Err(NetworkError::ModeUnsupported { mode: m.into() }),
        m => Err(NetworkError::NoSuchNetwork { name: m.into() }),
    }
}

impl Handler<PlanNetwork> for NetworkActor {
    type Result = Result<NetworkSpec, NetworkError>;
    fn handle(&mut self, msg: PlanNetwork, _: &mut Self::Context) -> Self::Result {
        plan_network(&self.info, &msg.mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn network_modes() {
        let on = NetworkInfo {
            enabled: true,
            bridge: None,
            mtu: 1500,
        };
        let off = NetworkInfo {
            enabled: false,
            ..on.clone()
        };
        assert_eq!(plan_network(&on, "none").unwrap(), NetworkSpec::None);
        assert_eq!(plan_network(&on, "host").unwrap(), NetworkSpec::Host);
        assert_eq!(
            plan_network(&on, "default").unwrap_err().kind(),
            ErrorKind::NotImplemented
        );
        assert_eq!(
            plan_network(&off, "bridge").unwrap_err().kind(),
            ErrorKind::InvalidParameter
        );
        assert_eq!(
            plan_network(&on, "nosuchnet").unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}
