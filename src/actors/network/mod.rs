//! NetworkActor: the bridge, iptables, IP allocation and veth pairs (seed step 4.5).
//!
//! State: the network settings resolved at `Init` (networking on or off, the bridge and its
//! subnet, the MTU), the address pool ([`ipam::Ipam`]), one [`Endpoint`] per connected
//! container, the iptables rules in force ([`firewall::Firewall`]), an rtnetlink handle,
//! and the network namespaces made ahead of starts ([`sandbox::Pool`]).
//!
//! Threads: the actor runs on its own arbiter; rtnetlink's connection runs on a thread of
//! its own (`berth-netlink`), so link queries are futures and never block the actor.
//! iptables runs in `spawn_blocking`; each network namespace is made on a fresh thread
//! that moves into it and ends (`berth-sandbox`, [`sandbox::make`]).
//!
//! Modes: `-b none` turns networking off (`--network none|host` only). Without `-b`, berth
//! creates bridge `berth0` with `--bip` or the first candidate subnet that overlaps no host
//! route; `-b NAME` uses an existing bridge and its IPv4 address. Containers on the bridge
//! get a veth pair and an address from the pool. With `--iptables` (default) the subnet is
//! masqueraded and forwarding follows `--icc`; every rule is removed on `Shutdown` (unless
//! `--live-restore`, where running containers still need them). The bridge stays, as
//! Docker leaves docker0. Published ports (`-p`, `-P`): [`ports`].

pub mod bridge;
pub mod dns;
pub mod error;
pub mod firewall;
pub mod ipam;
mod manage;
pub mod messages;
pub mod ports;
pub mod sandbox;
pub mod user;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use actix::prelude::*;
use futures_util::TryStreamExt;
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use netlink_packet_route::route::RouteAttribute;
use rtnetlink::{Handle, RouteMessageBuilder};
use sha2::Digest;

pub use error::NetworkError;
pub use messages::*;

use self::bridge::link_by_name;
use self::firewall::{DEFAULT_BRIDGE, Firewall};
use self::ipam::{Cidr, Ipam};
use self::sandbox::{Kind, Pool, Wiring};
use super::{Init, LifecycleError, Shutdown};
use crate::config::{BridgeSetting, DaemonConfig};
use crate::monitor::spec::NetworkSpec;
use std::os::fd::AsFd;

/// The MTU when neither `--mtu` nor the default route's interface gives one.
pub const DEFAULT_MTU: u32 = 1500;

/// Subnets tried, in order, for the default bridge without `--bip`. (10.199.0.0/16 is
/// left to the tests.)
pub const CANDIDATE_SUBNETS: &[&str] = &[
    "172.28.0.1/16",
    "172.29.0.1/16",
    "172.30.0.1/16",
    "172.31.0.1/16",
    "192.168.215.1/24",
    "192.168.216.1/24",
    "192.168.217.1/24",
    "10.210.0.1/16",
];

/// The network subsystem. See the module docs.
#[derive(Debug)]
pub struct NetworkActor {
    config: Arc<DaemonConfig>,
    info: NetworkInfo,
    /// The bridge network when networking is on.
    net: Option<BridgeNet>,
    /// Container id → its endpoint, for every container with an address.
    endpoints: HashMap<String, Endpoint>,
    /// Container id → its published ports and the sockets that hold them.
    published: HashMap<String, Vec<ports::Held>>,
    /// The published ports' rule changes, applied one after another in the order this
    /// actor made them (see `ports::RuleQueue`).
    rule_queue: ports::RuleQueue,
    /// Container id → the rules that open its links' ports (`--icc=false`).
    link_rules: HashMap<String, Vec<firewall::Rule>>,
    /// Network namespaces made ahead of starts.
    pool: Pool,
    /// After `Shutdown`: nothing more is made ahead.
    closing: bool,
    /// The rules as read when the actor started, for `Init`.
    snapshot: Option<tokio::task::JoinHandle<Result<firewall::Snapshot, NetworkError>>>,
    /// The user-defined networks' records (shared with the store and the API through
    /// [`NetworkInfo::user`]).
    user: user::UserNetworks,
    /// Network id → the bridge, pool and rules of each user-defined network.
    user_nets: HashMap<String, UserNet>,
    /// Networks being created: their names, subnets and bridges are taken.
    creating: Vec<(String, Cidr, String)>,
    /// The host's IPv4 routes as read at `Init`, which a subnet from the pools avoids.
    host_routes: Vec<Cidr>,
    /// Container id → its endpoints besides eth0 (`docker network connect`).
    extra: HashMap<String, Vec<Endpoint>>,
    /// The names on user-defined networks, which the embedded DNS servers answer.
    names: Arc<dns::Names>,
    /// Container id → its embedded DNS server, while it runs on a user-defined network.
    dns_servers: HashMap<String, dns::Server>,
    /// An rtnetlink handle for the user-defined networks' links.
    nl: Option<Handle>,
}

/// An address taken for a sandbox being made, with its network's id.
type Taken = Option<(String, Ipv4Addr)>;

/// A user-defined network in force.
#[derive(Debug)]
struct UserNet {
    bridge: String,
    bridge_index: u32,
    ipam: Ipam,
    firewall: Option<Firewall>,
    mtu: u32,
    internal: bool,
}

/// The bridge network in force.
#[derive(Debug)]
struct BridgeNet {
    handle: Handle,
    bridge_index: u32,
    network_id: String,
    ipam: Ipam,
    firewall: Option<Firewall>,
}

impl NetworkActor {
    pub fn new(config: Arc<DaemonConfig>) -> Self {
        NetworkActor {
            config,
            info: NetworkInfo::default(),
            net: None,
            endpoints: HashMap::new(),
            published: HashMap::new(),
            rule_queue: ports::RuleQueue::default(),
            link_rules: HashMap::new(),
            pool: Pool::default(),
            closing: false,
            snapshot: None,
            user: user::UserNetworks::default(),
            user_nets: HashMap::new(),
            creating: Vec::new(),
            host_routes: Vec::new(),
            extra: HashMap::new(),
            names: dns::Names::new(),
            dns_servers: HashMap::new(),
            nl: None,
        }
    }
}

impl Actor for NetworkActor {
    type Context = Context<Self>;

    /// The rules are read (an `iptables-save` run, 2-5 ms) as soon as the actor starts,
    /// while the actors before this one initialise; `Init` uses what was read.
    fn started(&mut self, _: &mut Self::Context) {
        if self.config.iptables && self.config.bridge != BridgeSetting::None {
            self.snapshot = Some(tokio::task::spawn_blocking(firewall::snapshot));
        }
    }
}

/// An rtnetlink handle whose connection runs on a thread of its own ("berth-netlink").
///
/// The kernel serves a netlink request inside `sendmsg`, under the rtnl lock, which the
/// teardown of an exited container's network namespace holds for tens of milliseconds
/// (several RCU grace periods). On the actor's thread that wait would stall every message
/// behind it; here only the netlink requests wait. The thread ends when the last handle
/// is dropped.
fn netlink() -> Result<Handle, NetworkError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("berth-netlink".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            {
                Ok(rt) => rt,
                Err(source) => {
                    let _ = tx.send(Err(NetworkError::Netlink { source }));
                    return;
                }
            };
            rt.block_on(async move {
                match rtnetlink::new_connection() {
                    Ok((conn, handle, _)) => {
                        let _ = tx.send(Ok(handle));
                        conn.await;
                    }
                    Err(source) => {
                        let _ = tx.send(Err(NetworkError::Netlink { source }));
                    }
                }
            });
        });
    if let Err(source) = spawned {
        return Err(NetworkError::Netlink { source });
    }
    rx.recv().unwrap_or_else(|_| {
        Err(NetworkError::Netlink {
            source: std::io::Error::other("netlink thread ended before its connection"),
        })
    })
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

/// The first candidate that overlaps none of `routes`.
pub fn pick_subnet(candidates: &[&str], routes: &[Cidr]) -> Option<Cidr> {
    candidates
        .iter()
        .filter_map(|c| Cidr::parse(c))
        .find(|c| !routes.iter().any(|r| r.overlaps(c)))
}

/// A stable id for the bridge network: the same bridge and subnet give the same id.
fn network_id(bridge: &str, subnet: &Cidr) -> String {
    hex::encode(sha2::Sha256::digest(format!(
        "berth-bridge/{bridge}/{subnet}"
    )))
}

/// What the bridge of the config will be, decided before anything changes.
#[derive(Debug)]
struct BridgePlan {
    name: String,
    /// `-b NAME`: the operator's bridge (only brought up).
    existing: bool,
    /// The bridge's address (and so the subnet).
    addr: Cidr,
    /// The address is not on the bridge yet.
    add_addr: bool,
}

/// The bridge network of the config: `None` with `-b none`.
async fn plan_bridge(
    config: &DaemonConfig,
    handle: &Handle,
) -> Result<Option<BridgePlan>, NetworkError> {
    match &config.bridge {
        BridgeSetting::None => Ok(None),
        BridgeSetting::Existing(name) => {
            let link = link_by_name(handle, name)
                .await?
                .ok_or_else(|| NetworkError::BridgeNotFound { name: name.clone() })?;
            if !is_bridge(&link) {
                return Err(NetworkError::NotABridge { name: name.clone() });
            }
            let addr = bridge::ipv4_addrs(handle, link.header.index)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| NetworkError::NoBridgeAddress { name: name.clone() })?;
            Ok(Some(BridgePlan {
                name: name.clone(),
                existing: true,
                addr,
                add_addr: false,
            }))
        }
        BridgeSetting::Default => {
            let name = DEFAULT_BRIDGE;
            let existing = link_by_name(handle, name).await?;
            if let Some(l) = &existing {
                if !is_bridge(l) {
                    return Err(NetworkError::NotABridge { name: name.into() });
                }
            }
            let present = match &existing {
                Some(l) => bridge::ipv4_addrs(handle, l.header.index).await?,
                None => Vec::new(),
            };
            let addr = match (config.bip.as_deref().and_then(Cidr::parse), present.first()) {
                (Some(bip), _) => bip,
                (None, Some(a)) => *a,
                (None, None) => {
                    let routes = bridge::route_destinations(
                        handle,
                        existing.as_ref().map(|l| l.header.index),
                    )
                    .await?;
                    pick_subnet(CANDIDATE_SUBNETS, &routes).ok_or(NetworkError::NoFreeSubnet)?
                }
            };
            Ok(Some(BridgePlan {
                name: name.to_owned(),
                existing: false,
                add_addr: !present.contains(&addr),
                addr,
            }))
        }
    }
}

/// Makes the planned bridge (or brings the operator's up); returns its index.
async fn make_bridge(plan: &BridgePlan, handle: &Handle, mtu: u32) -> Result<u32, NetworkError> {
    if plan.existing {
        let link = link_by_name(handle, &plan.name).await?.ok_or_else(|| {
            NetworkError::BridgeNotFound {
                name: plan.name.clone(),
            }
        })?;
        bridge::set_up(handle, link.header.index, &plan.name).await?;
        return Ok(link.header.index);
    }
    let index = bridge::ensure_bridge(handle, &plan.name, mtu).await?;
    if plan.add_addr {
        bridge::add_addr(handle, index, plan.addr).await?;
    }
    Ok(index)
}

fn enable_ip_forward() -> Result<(), NetworkError> {
    let path = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(path).is_ok_and(|s| s.trim() == "1") {
        return Ok(());
    }
    std::fs::write(path, "1").map_err(|source| NetworkError::Sysctl {
        path: path.into(),
        source,
    })
}

/// The network settings of `config`, the bridge made and the rules set. `snapshot`: the
/// rules as read earlier (else they are read now).
async fn resolve(
    config: Arc<DaemonConfig>,
    snapshot: Option<tokio::task::JoinHandle<Result<firewall::Snapshot, NetworkError>>>,
) -> Result<(NetworkInfo, Option<BridgeNet>), NetworkError> {
    let handle = netlink()?;
    let mtu = if config.mtu != 0 {
        config.mtu
    } else {
        default_route_mtu(&handle).await?.unwrap_or(DEFAULT_MTU)
    };
    let Some(plan) = plan_bridge(&config, &handle).await? else {
        return Ok((
            NetworkInfo {
                enabled: false,
                mtu,
                created: Some(chrono::Utc::now()),
                ..NetworkInfo::default()
            },
            None,
        ));
    };
    let addr = plan.addr;
    let subnet = Cidr::new(addr.network(), addr.prefix);
    let firewall = config
        .iptables
        .then(|| Firewall::new(&plan.name, subnet, config.icc));
    let ip_forward = config.ip_forward;
    let fw = firewall.clone();
    let join_err = |e: tokio::task::JoinError| NetworkError::IptablesSpawn {
        source: std::io::Error::other(e),
    };
    // The rules name the bridge and its subnet, not its index: they are set while the
    // bridge is made (two iptables runs and a few rtnetlink requests, side by side).
    let rules = async move {
        let snapshot = match snapshot {
            Some(task) => Some(task.await.map_err(join_err)??),
            None => None,
        };
        tokio::task::spawn_blocking(move || {
            if ip_forward {
                enable_ip_forward()?;
            }
            match (fw, snapshot) {
                (Some(fw), Some(rules)) => fw.setup(rules),
                (Some(fw), None) => fw.setup(firewall::snapshot()?),
                (None, _) => Ok(()),
            }
        })
        .await
        .map_err(join_err)?
    };
    let (made, ruled) = futures_util::join!(make_bridge(&plan, &handle, mtu), rules);
    let index = match (made, ruled) {
        (Ok(index), Ok(())) => index,
        (Ok(_), Err(e)) => return Err(e),
        (Err(e), ruled) => {
            // Init failed: no Shutdown will come to remove what was set.
            if let (Ok(()), Some(fw)) = (ruled, firewall.clone()) {
                let _ = tokio::task::spawn_blocking(move || fw.teardown()).await;
            }
            return Err(e);
        }
    };
    let name = plan.name;
    if firewall.is_some() {
        // Published ports answer at 127.0.0.1: the DNAT of a loopback destination must
        // be routed out of the bridge (on this bridge only).
        let path = format!("/proc/sys/net/ipv4/conf/{name}/route_localnet");
        std::fs::write(&path, "1").map_err(|source| NetworkError::Sysctl { path, source })?;
    }
    let info = NetworkInfo {
        enabled: true,
        bridge: match &config.bridge {
            BridgeSetting::Existing(n) => Some(n.clone()),
            _ => None,
        },
        bridge_name: name.clone(),
        subnet: addr.to_string(),
        gateway: Some(addr.addr),
        mtu,
        network_id: network_id(&name, &addr),
        created: Some(chrono::Utc::now()),
        user: user::UserNetworks::default(),
    };
    Ok((
        info,
        Some(BridgeNet {
            handle,
            bridge_index: index,
            network_id: network_id(&name, &addr),
            ipam: Ipam::new(addr, addr.addr),
            firewall,
        }),
    ))
}

impl Handler<Init> for NetworkActor {
    type Result = ResponseActFuture<Self, Result<(), LifecycleError>>;
    fn handle(&mut self, _: Init, _: &mut Self::Context) -> Self::Result {
        let config = self.config.clone();
        let snapshot = self.snapshot.take();
        let path = user::records_path(&config.data_root);
        let work = async move {
            let (info, net) = resolve(config.clone(), snapshot).await?;
            let records = user::load(&path)?;
            let handle = netlink()?;
            let (nets, routes) =
                setup_users(&config, &info, net.as_ref(), &records, &handle).await?;
            Ok::<_, NetworkError>((info, net, records, nets, routes, handle))
        };
        Box::pin(
            actix::fut::wrap_future(work).map(|res, act: &mut Self, _| match res {
                Ok((mut info, net, records, nets, routes, handle)) => {
                    tracing::info!(
                        enabled = info.enabled,
                        bridge = %info.bridge_name,
                        subnet = %info.subnet,
                        iptables = net.as_ref().is_some_and(|n| n.firewall.is_some()),
                        mtu = info.mtu,
                        user_networks = records.len(),
                        "network settings resolved"
                    );
                    for r in &records {
                        act.names.name_network(&r.id, &r.name);
                    }
                    act.user.replace(records);
                    info.user = act.user.clone();
                    act.info = info;
                    act.net = net;
                    act.user_nets = nets;
                    act.host_routes = routes;
                    act.nl = Some(handle);
                    Ok(())
                }
                Err(e) => Err(LifecycleError::from_error(&e)),
            }),
        )
    }
}

/// The firewall of a user-defined network (`None` with `--iptables=false`).
fn user_firewall(
    config: &DaemonConfig,
    rec: &user::NetworkRecord,
    isolate: Vec<String>,
) -> Option<Firewall> {
    config.iptables.then(|| {
        let mut fw = Firewall::new(&rec.bridge, rec.cidr(), rec.icc);
        fw.internal = rec.internal;
        fw.masquerade = rec.masquerade;
        fw.isolate = isolate;
        fw
    })
}

/// Makes the bridge of user-defined network `rec` (if missing), with its address, and
/// sets its rules. Returns the network in force.
async fn make_user(
    handle: &Handle,
    rec: &user::NetworkRecord,
    mtu: u32,
    fw: Option<Firewall>,
) -> Result<UserNet, NetworkError> {
    if let Some(l) = link_by_name(handle, &rec.bridge).await? {
        if !is_bridge(&l) {
            return Err(NetworkError::NotABridge {
                name: rec.bridge.clone(),
            });
        }
    }
    let index = bridge::ensure_bridge(handle, &rec.bridge, mtu).await?;
    bridge::add_addr(handle, index, rec.bridge_addr()).await?;
    if let Some(fw) = fw.clone() {
        tokio::task::spawn_blocking(move || fw.setup(firewall::snapshot()?))
            .await
            .map_err(|e| NetworkError::IptablesSpawn {
                source: std::io::Error::other(e),
            })??;
        // Published ports answer at 127.0.0.1 (as on the default bridge).
        let path = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", rec.bridge);
        std::fs::write(&path, "1").map_err(|source| NetworkError::Sysctl { path, source })?;
    }
    Ok(UserNet {
        bridge: rec.bridge.clone(),
        bridge_index: index,
        ipam: Ipam::new(rec.cidr(), rec.gateway).with_range(rec.range()),
        firewall: fw,
        mtu,
        internal: rec.internal,
    })
}

/// Sets every recorded user-defined network up again at `Init`, and the default bridge's
/// isolation from them; also reads the host's routes (for subnets from the pools).
async fn setup_users(
    config: &DaemonConfig,
    info: &NetworkInfo,
    net: Option<&BridgeNet>,
    records: &[user::NetworkRecord],
    handle: &Handle,
) -> Result<(HashMap<String, UserNet>, Vec<Cidr>), NetworkError> {
    let mut nets = HashMap::new();
    let bridges: Vec<String> = records
        .iter()
        .map(|r| r.bridge.clone())
        .chain(info.enabled.then(|| info.bridge_name.clone()))
        .collect();
    for rec in records {
        let isolate = bridges
            .iter()
            .filter(|b| **b != rec.bridge)
            .cloned()
            .collect();
        let mtu = if rec.mtu != 0 { rec.mtu } else { info.mtu };
        let fw = user_firewall(config, rec, isolate);
        let made = make_user(handle, rec, mtu, fw).await?;
        tracing::info!(network = %rec.name, bridge = %rec.bridge, subnet = %rec.subnet, "user-defined network set up");
        nets.insert(rec.id.clone(), made);
    }
    if let Some(mut fw) = net.and_then(|n| n.firewall.clone()) {
        if !records.is_empty() {
            fw.isolate = records.iter().map(|r| r.bridge.clone()).collect();
            tokio::task::spawn_blocking(move || fw.setup(firewall::snapshot()?))
                .await
                .map_err(|e| NetworkError::IptablesSpawn {
                    source: std::io::Error::other(e),
                })??;
        }
    }
    let routes = bridge::route_destinations(handle, None).await?;
    Ok((nets, routes))
}

impl Handler<Shutdown> for NetworkActor {
    type Result = ResponseFuture<Result<(), LifecycleError>>;
    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> Self::Result {
        // The ready namespaces go, and their veth pairs with them.
        self.closing = true;
        drop(self.pool.drain());
        self.dns_servers.clear();
        let fws: Vec<Firewall> = self
            .net
            .as_ref()
            .and_then(|n| n.firewall.clone())
            .into_iter()
            .chain(self.user_nets.values().filter_map(|n| n.firewall.clone()))
            .collect();
        let keep = self.config.live_restore;
        Box::pin(async move {
            if fws.is_empty() {
                return Ok(());
            }
            if keep {
                tracing::info!("live-restore: iptables rules kept for running containers");
                return Ok(());
            }
            let res =
                tokio::task::spawn_blocking(move || fws.iter().try_for_each(Firewall::teardown))
                    .await
                    .map_err(|e| LifecycleError(format!("iptables cleanup: {e}")))?;
            match res {
                Ok(()) => {
                    tracing::info!("iptables rules removed");
                    Ok(())
                }
                Err(e) => Err(LifecycleError::from_error(&e)),
            }
        })
    }
}

impl Handler<GetNetworkInfo> for NetworkActor {
    type Result = MessageResult<GetNetworkInfo>;
    fn handle(&mut self, _: GetNetworkInfo, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.info.clone())
    }
}

/// The id of predefined network `name` (`bridge`, `host`, `none`): the bridge's from
/// `info`; the other two stable ids of their own (dockerd keeps random ones in its store,
/// berthd has no store for two fixed networks).
pub fn predefined_network_id(name: &str, info: &NetworkInfo) -> String {
    if name == "bridge" {
        return info.network_id.clone();
    }
    hex::encode(sha2::Sha256::digest(format!("berth-network/{name}")))
}

/// Maps a container's `HostConfig.NetworkMode` to what its monitor should create. The
/// store calls it on its copy of the [`NetworkInfo`] (no message: it needs no state of the
/// actor).
pub fn plan_network(info: &NetworkInfo, mode: &str) -> Result<NetworkSpec, NetworkError> {
    match mode {
        "none" => Ok(NetworkSpec::None),
        "host" => Ok(NetworkSpec::Host),
        // dockerd under `-b none`: the default mode is a namespace without a network, and
        // there is no network "bridge".
        "" | "default" if !info.enabled => Ok(NetworkSpec::None),
        "bridge" if !info.enabled => Err(NetworkError::NoSuchNetwork {
            name: "bridge".into(),
        }),
        "" | "default" | "bridge" => Ok(NetworkSpec::New),
        // Another container's namespace, joined at the start (the store finds it).
        m if m.starts_with("container:") => Ok(NetworkSpec::None),
        // A user-defined network: a namespace of its own, wired to that network's bridge.
        m if info.user.find(m).is_some() => Ok(NetworkSpec::New),
        m => Err(NetworkError::NoSuchNetwork { name: m.into() }),
    }
}

/// The host side of a veth pair: `veth` and 8 hex digits of the endpoint's id (new for
/// each start, so that a late cleanup of the last run never meets this run's veth).
pub fn host_veth_name(id: &str) -> String {
    let hex: String = id.chars().filter(char::is_ascii_hexdigit).take(8).collect();
    format!("veth{hex:0<8}")
}

impl NetworkActor {
    /// Starts making a sandbox of `kind`; a bridged one takes its address now (on
    /// user-defined network `attach`, else on the default bridge). Also returns that
    /// address and its network, to hand back if the making fails.
    fn start_make(
        &mut self,
        kind: Kind,
        mac: Option<[u8; 6]>,
        attach: Option<&Attachment>,
    ) -> Result<
        (
            Taken,
            impl Future<Output = Result<Sandbox, NetworkError>> + 'static,
        ),
        NetworkError,
    > {
        let wiring = match (kind, attach) {
            (Kind::Plain, _) => None,
            (Kind::Bridged, Some(a)) => Some(self.user_wiring(a, mac, "eth0")?),
            (Kind::Bridged, None) => {
                let net = self.net.as_mut().ok_or(NetworkError::Disabled)?;
                let ip = net.ipam.allocate()?;
                let endpoint_id = crate::util::new_id();
                let mac = mac.unwrap_or_else(|| bridge::mac_for(ip));
                Some(Wiring {
                    mac,
                    bridge_index: net.bridge_index,
                    mtu: self.info.mtu,
                    no_route: false,
                    endpoint: Endpoint {
                        network_id: net.network_id.clone(),
                        host_veth: host_veth_name(&endpoint_id),
                        endpoint_id,
                        bridge: self.info.bridge_name.clone(),
                        ip,
                        prefix: net.ipam.subnet().prefix,
                        gateway: net.ipam.gateway(),
                        mac: bridge::mac_string(&mac),
                        ports: Vec::new(),
                        ifname: String::new(),
                        aliases: Vec::new(),
                        ipam_ip: None,
                        network_name: String::new(),
                    },
                })
            }
        };
        let ip = wiring
            .as_ref()
            .map(|w| (w.endpoint.network_id.clone(), w.endpoint.ip));
        Ok((ip, sandbox::make(wiring)))
    }

    /// The wiring of an endpoint on user-defined network `a.network_id`: its address
    /// (`a.ip` if given) taken now.
    fn user_wiring(
        &mut self,
        a: &Attachment,
        mac: Option<[u8; 6]>,
        ifname: &str,
    ) -> Result<Wiring, NetworkError> {
        let un =
            self.user_nets
                .get_mut(&a.network_id)
                .ok_or_else(|| NetworkError::NoSuchNetwork {
                    name: a.network_id.clone(),
                })?;
        let ip = match a.ip {
            Some(ip) => {
                if !un.ipam.subnet().contains(ip) {
                    return Err(NetworkError::InvalidNetwork {
                        message: format!(
                            "no configured subnet or ip-range contain the IP address {ip}"
                        ),
                    });
                }
                if !un.ipam.reserve(ip) {
                    return Err(NetworkError::InvalidNetwork {
                        message: format!("Address already in use: {ip}"),
                    });
                }
                ip
            }
            None => un.ipam.allocate()?,
        };
        let endpoint_id = crate::util::new_id();
        let mac = mac.unwrap_or_else(|| bridge::mac_for(ip));
        Ok(Wiring {
            mac,
            bridge_index: un.bridge_index,
            mtu: un.mtu,
            no_route: un.internal,
            endpoint: Endpoint {
                network_id: a.network_id.clone(),
                host_veth: host_veth_name(&endpoint_id),
                endpoint_id,
                bridge: un.bridge.clone(),
                ip,
                prefix: un.ipam.subnet().prefix,
                gateway: un.ipam.gateway(),
                mac: bridge::mac_string(&mac),
                ports: Vec::new(),
                ifname: ifname.to_owned(),
                aliases: a.aliases.clone(),
                ipam_ip: a.ip,
                network_name: a.name.clone(),
            },
        })
    }

    /// The end of a making: a failed one's address goes back to the pool.
    fn made(
        &mut self,
        ip: Option<(String, Ipv4Addr)>,
        res: Result<Sandbox, NetworkError>,
    ) -> Result<Sandbox, NetworkError> {
        if res.is_err() {
            self.release_address(ip);
        }
        res
    }

    /// The rules of network `network_id` (the default bridge's or a user one's), if it
    /// has any (`--iptables`).
    fn firewall_of(&self, network_id: &str) -> Option<Firewall> {
        if let Some(net) = self.net.as_ref().filter(|n| n.network_id == network_id) {
            return net.firewall.clone();
        }
        self.user_nets.get(network_id)?.firewall.clone()
    }

    /// The address pool of network `network_id` (the default bridge's or a user one's).
    fn ipam_of(&mut self, network_id: &str) -> Option<&mut Ipam> {
        if let Some(net) = self.net.as_mut().filter(|n| n.network_id == network_id) {
            return Some(&mut net.ipam);
        }
        self.user_nets.get_mut(network_id).map(|n| &mut n.ipam)
    }

    fn release_address(&mut self, ip: Option<(String, Ipv4Addr)>) {
        if let Some((net, ip)) = ip {
            if let Some(ipam) = self.ipam_of(&net) {
                ipam.release(ip);
            }
        }
    }

    /// Registers container `id`'s names on the user-defined network of `ep` (none for the
    /// default bridge).
    fn join_names(&self, id: &str, name: &str, ep: &Endpoint) {
        if !self.user_nets.contains_key(&ep.network_id) {
            return;
        }
        let mut names = vec![name.trim_start_matches('/').to_owned()];
        names.extend(ep.aliases.iter().cloned());
        self.names.join(
            &ep.network_id,
            dns::Entry {
                container_id: id.to_owned(),
                names,
                ip: ep.ip,
            },
        );
    }

    /// Starts making what the pool lacks, each on its own thread.
    fn refill(&mut self, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        for kind in [Kind::Plain, Kind::Bridged] {
            for _ in 0..self.pool.missing(kind) {
                let (ip, making) = match self.start_make(kind, None, None) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::debug!(error = %crate::util::error_chain(&e), ?kind, "no network namespace made ahead");
                        self.pool.made(kind, None);
                        break;
                    }
                };
                self.pool.making_started(kind);
                ctx.spawn(making.into_actor(self).map(move |res, act, _| {
                    match act.made(ip.clone(), res) {
                        Ok(sb) if act.closing => {
                            act.release_address(ip.clone());
                            drop(sb);
                            act.pool.made(kind, None);
                        }
                        Ok(sb) => act.pool.made(kind, Some(sb)),
                        Err(e) => {
                            tracing::warn!(error = %crate::util::error_chain(&e), ?kind, "network namespace not made ahead");
                            act.pool.made(kind, None);
                        }
                    }
                }));
            }
        }
    }
}

impl Handler<TakeSandbox> for NetworkActor {
    type Result = ResponseActFuture<Self, Result<Sandbox, NetworkError>>;
    fn handle(&mut self, msg: TakeSandbox, ctx: &mut Self::Context) -> Self::Result {
        let kind = if msg.bridged {
            Kind::Bridged
        } else {
            Kind::Plain
        };
        // A container being started again: the addresses of its last run go back.
        self.unpublish(&msg.id, ctx);
        self.forget(&msg.id);
        // A given MAC or a user-defined network: made now (the ones made ahead are on
        // the default bridge, with their address's MAC).
        let ready = if (msg.mac.is_some() || msg.attach.is_some()) && msg.bridged {
            None
        } else {
            self.pool.take(kind)
        };
        let taking: futures_util::future::BoxFuture<'static, _> = match ready {
            Some(sb) => Box::pin(async { (None, Ok(sb)) }),
            None => match self.start_make(kind, msg.mac, msg.attach.as_ref()) {
                Ok((ip, making)) => Box::pin(async move { (ip, making.await) }),
                Err(e) => return Box::pin(actix::fut::ready(Err(e))),
            },
        };
        let (id, name, upstreams) = (msg.id, msg.name, msg.upstreams);
        let user = msg.attach.is_some();
        Box::pin(taking.into_actor(self).map(move |(ip, res), act, ctx| {
            let res = act.made(ip.clone(), res);
            // After this start's own: a making ahead would compete with it.
            act.refill(ctx);
            let sb = res?;
            if let Some(ep) = &sb.endpoint {
                tracing::debug!(container_id = %id, ip = %ep.ip, veth = %ep.host_veth, "address allocated");
                act.endpoints.insert(id.clone(), ep.clone());
                act.join_names(&id, &name, ep);
            }
            if user {
                // The embedded DNS: on a user-defined network the container's resolv.conf
                // names 127.0.0.11, so the start fails without it.
                match dns::serve(sb.netns.as_fd(), act.names.clone(), &id, upstreams) {
                    Ok(server) => {
                        act.dns_servers.insert(id, server);
                    }
                    Err(e) => {
                        act.forget(&id);
                        return Err(NetworkError::DnsStart {
                            source: Box::new(e),
                        });
                    }
                }
            }
            Ok(sb)
        }))
    }
}

impl NetworkActor {
    /// Container `id`'s endpoints, names and DNS server are dropped from the books and
    /// their addresses released (their veths are the caller's); returns the endpoints.
    fn forget(&mut self, id: &str) -> Vec<Endpoint> {
        self.dns_servers.remove(id);
        let eps: Vec<Endpoint> = self
            .endpoints
            .remove(id)
            .into_iter()
            .chain(self.extra.remove(id).unwrap_or_default())
            .collect();
        for ep in &eps {
            self.release_address(Some((ep.network_id.clone(), ep.ip)));
            self.names.leave(&ep.network_id, id);
        }
        eps
    }
}

impl Handler<Prewarm> for NetworkActor {
    type Result = ();
    fn handle(&mut self, msg: Prewarm, ctx: &mut Self::Context) {
        self.pool.want(if msg.bridged {
            Kind::Bridged
        } else {
            Kind::Plain
        });
        self.refill(ctx);
    }
}

impl Handler<ReleaseEndpoint> for NetworkActor {
    type Result = ResponseFuture<Result<(), NetworkError>>;
    fn handle(&mut self, msg: ReleaseEndpoint, ctx: &mut Self::Context) -> Self::Result {
        self.unpublish(&msg.id, ctx);
        let eps = self.forget(&msg.id);
        let Some(handle) = self
            .nl
            .clone()
            .or_else(|| self.net.as_ref().map(|n| n.handle.clone()))
        else {
            return Box::pin(async { Ok(()) });
        };
        Box::pin(async move {
            for ep in eps {
                // The veth usually vanished with the namespace already.
                match bridge::delete_link(&handle, &ep.host_veth).await {
                    Ok(true) => {
                        tracing::debug!(container_id = %msg.id, veth = %ep.host_veth, "veth deleted")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, container_id = %msg.id, veth = %ep.host_veth, "veth not deleted");
                        return Err(e);
                    }
                }
                tracing::debug!(container_id = %msg.id, ip = %ep.ip, "address released");
            }
            Ok(())
        })
    }
}

impl Handler<RestoreEndpoints> for NetworkActor {
    type Result = MessageResult<RestoreEndpoints>;
    fn handle(&mut self, msg: RestoreEndpoints, ctx: &mut Self::Context) -> Self::Result {
        let mut refused = Vec::new();
        for (id, ep) in msg.endpoints {
            let ok = self
                .ipam_of(&ep.network_id)
                .is_some_and(|ipam| ipam.reserve(ep.ip));
            if ok {
                if !ep.ports.is_empty() {
                    self.republish(&id, &ep, ctx);
                }
                let name = msg.names.get(&id).cloned().unwrap_or_default();
                self.join_names(&id, &name, &ep);
                if ep.ifname.is_empty() || ep.ifname == "eth0" {
                    self.endpoints.insert(id, ep);
                } else {
                    self.extra.entry(id).or_default().push(ep);
                }
            } else {
                tracing::warn!(container_id = %id, ip = %ep.ip, "address of a running container not restored");
                refused.push(id);
            }
        }
        for (id, pid, upstreams) in msg.dns {
            if refused.contains(&id) {
                continue;
            }
            let served = std::fs::File::open(format!("/proc/{pid}/ns/net"))
                .map_err(|source| NetworkError::Sandbox { source })
                .and_then(|ns| dns::serve(ns.as_fd(), self.names.clone(), &id, upstreams));
            match served {
                Ok(server) => {
                    self.dns_servers.insert(id, server);
                }
                Err(e) => {
                    tracing::warn!(container_id = %id, error = %crate::util::error_chain(&e), "embedded DNS server not started again");
                }
            }
        }
        MessageResult(refused)
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
            mtu: 1500,
            ..NetworkInfo::default()
        };
        let off = NetworkInfo {
            enabled: false,
            ..on.clone()
        };
        assert_eq!(plan_network(&on, "none").unwrap(), NetworkSpec::None);
        assert_eq!(plan_network(&on, "host").unwrap(), NetworkSpec::Host);
        assert_eq!(plan_network(&on, "default").unwrap(), NetworkSpec::New);
        assert_eq!(plan_network(&on, "bridge").unwrap(), NetworkSpec::New);
        assert_eq!(plan_network(&off, "default").unwrap(), NetworkSpec::None);
        assert_eq!(
            plan_network(&off, "bridge").unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            plan_network(&on, "nosuchnet").unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn subnet_pick_skips_host_routes() {
        let routes = [
            Cidr::parse("172.16.0.0/12").unwrap(),
            Cidr::parse("192.168.215.0/24").unwrap(),
        ];
        assert_eq!(
            pick_subnet(CANDIDATE_SUBNETS, &routes).unwrap().to_string(),
            "192.168.216.0/24"
        );
        assert_eq!(
            pick_subnet(CANDIDATE_SUBNETS, &[])
                .unwrap()
                .addr
                .to_string(),
            "172.28.0.1"
        );
        let all = [
            Cidr::parse("0.0.0.0/1").unwrap(),
            Cidr::parse("128.0.0.0/1").unwrap(),
        ];
        assert!(pick_subnet(CANDIDATE_SUBNETS, &all).is_none());
        for c in CANDIDATE_SUBNETS {
            assert!(
                !Cidr::parse(c)
                    .unwrap()
                    .overlaps(&Cidr::parse("10.199.0.0/16").unwrap())
            );
        }
    }

    #[test]
    fn veth_names_fit_ifnamsiz() {
        let n = host_veth_name(&"ab".repeat(32));
        assert_eq!(n, "vethabababab");
        assert!(n.len() <= 15);
        assert_eq!(host_veth_name("x"), "veth00000000");
    }
}
