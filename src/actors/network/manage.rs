//! The handlers of user-defined networks: create and remove one (`CreateNetwork`,
//! `RemoveNetwork`), and connect a running container to one or disconnect it
//! (`ConnectEndpoint`, `DisconnectEndpoint`). See [`super::user`] for the records.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use actix::prelude::*;

use super::firewall::Firewall;
use super::ipam::Cidr;
use super::user::{self, NetworkRecord};
use super::{
    ConnectEndpoint, CreateNetwork, DisconnectEndpoint, Endpoint, NetworkActor, NetworkError,
    RemoveNetwork, bridge, sandbox,
};

fn invalid(message: impl Into<String>) -> NetworkError {
    NetworkError::InvalidNetwork {
        message: message.into(),
    }
}

/// A boolean `--opt` as dockerd parses it (Go's `strconv.ParseBool`).
fn bool_opt(key: &str, v: &str) -> Result<bool, NetworkError> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(invalid(format!(
            "failed to parse {key} value: invalid syntax ({v:?})"
        ))),
    }
}

/// The resolved options of a create: bridge name, icc, masquerade, MTU.
struct Opts {
    bridge: Option<String>,
    icc: bool,
    masquerade: bool,
    mtu: u32,
}

fn parse_opts(options: &BTreeMap<String, String>) -> Result<Opts, NetworkError> {
    let mut o = Opts {
        bridge: None,
        icc: true,
        masquerade: true,
        mtu: 0,
    };
    for (k, v) in options {
        match k.as_str() {
            user::BRIDGE_NAME_OPT => {
                if v.is_empty() || v.len() > 15 || v.contains(['/', ' ']) {
                    return Err(invalid(format!(
                        "invalid bridge name {v:?}: 1 to 15 characters, no '/' or space"
                    )));
                }
                o.bridge = Some(v.clone());
            }
            user::ICC_OPT => o.icc = bool_opt(k, v)?,
            user::MASQUERADE_OPT => o.masquerade = bool_opt(k, v)?,
            user::MTU_OPT => {
                o.mtu = v
                    .parse()
                    .ok()
                    .filter(|m| (68..=65535).contains(m))
                    .ok_or_else(|| invalid(format!("invalid MTU {v:?}: 68 to 65535")))?
            }
            other => {
                return Err(invalid(format!(
                    "berthd does not support the network option {other} (its bridge networks take {}, {}, {} and {})",
                    user::BRIDGE_NAME_OPT,
                    user::ICC_OPT,
                    user::MASQUERADE_OPT,
                    user::MTU_OPT
                )));
            }
        }
    }
    Ok(o)
}

fn parse_cidr(what: &str, s: &str) -> Result<Cidr, NetworkError> {
    let c = Cidr::parse(s).ok_or_else(|| {
        if s.contains(':') {
            invalid(format!(
                "berthd has IPv4 networks only: {what} {s} is not an IPv4 CIDR"
            ))
        } else {
            invalid(format!("invalid CIDR address: {s}"))
        }
    })?;
    if c.prefix > 30 && what == "subnet" {
        return Err(invalid(format!(
            "invalid subnet {s}: a prefix length up to 30 leaves room for a gateway and a container"
        )));
    }
    Ok(Cidr::new(c.network(), c.prefix))
}

impl NetworkActor {
    /// Every subnet and bridge in use: the default bridge's and the user networks'
    /// (made or being made).
    fn used(&self) -> (Vec<Cidr>, Vec<String>) {
        let mut subnets: Vec<Cidr> = self.user.all().iter().map(|r| r.cidr()).collect();
        let mut bridges: Vec<String> = self.user.all().into_iter().map(|r| r.bridge).collect();
        if self.info.enabled {
            if let Some(c) = Cidr::parse(&self.info.subnet) {
                subnets.push(c);
            }
            bridges.push(self.info.bridge_name.clone());
        }
        for (_, c, b) in &self.creating {
            subnets.push(*c);
            bridges.push(b.clone());
        }
        (subnets, bridges)
    }

    /// Checks a create and resolves it into a record (no change yet).
    fn plan_create(&self, msg: &CreateNetwork) -> Result<NetworkRecord, NetworkError> {
        let name = msg.name.as_str();
        if name.is_empty() {
            return Err(invalid("network name is required"));
        }
        let taken = matches!(name, "bridge" | "host" | "none")
            || self.user.all().iter().any(|r| r.name == name)
            || self.creating.iter().any(|(n, _, _)| n == name);
        if taken {
            return Err(NetworkError::NetworkExists { name: name.into() });
        }
        let opts = parse_opts(&msg.options)?;
        let (used, bridges) = self.used();
        let subnet = match msg.subnet.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => {
                let c = parse_cidr("subnet", s)?;
                if used.iter().any(|u| u.overlaps(&c)) {
                    return Err(NetworkError::PoolOverlaps);
                }
                Some(c)
            }
            None => None,
        };
        if subnet.is_none() && (msg.gateway.is_some() || msg.ip_range.is_some()) {
            return Err(invalid(
                "a gateway or an ip-range needs a subnet (--subnet)",
            ));
        }
        let user_subnet = subnet.is_some();
        let pools: Vec<(Ipv4Addr, u8, u8)> = if self.config.default_address_pools.is_empty() {
            user::default_pools()
        } else {
            self.config.default_address_pools.clone()
        };
        let subnet = match subnet {
            Some(c) => c,
            None => {
                let avoid: Vec<Cidr> = used.iter().chain(&self.host_routes).copied().collect();
                user::pick_from_pools(&pools, &avoid).ok_or(NetworkError::NoPoolLeft)?
            }
        };
        let gateway = match msg.gateway.as_deref().filter(|s| !s.is_empty()) {
            Some(g) => {
                let ip: Ipv4Addr = g
                    .parse()
                    .map_err(|_| invalid(format!("invalid gateway address {g}")))?;
                if !subnet.contains(ip) || ip == subnet.network() || ip == subnet.broadcast() {
                    return Err(invalid(format!("no matching subnet for gateway {g}")));
                }
                ip
            }
            None => Ipv4Addr::from(u32::from(subnet.network()) + 1),
        };
        let ip_range = match msg.ip_range.as_deref().filter(|s| !s.is_empty()) {
            Some(r) => {
                let c = parse_cidr("ip-range", r)?;
                if !subnet.contains(c.network()) || c.prefix < subnet.prefix {
                    return Err(invalid(format!("no matching subnet for range {r}")));
                }
                Some(c.to_string())
            }
            None => None,
        };
        let id = crate::util::new_id();
        let bridge = opts
            .bridge
            .clone()
            .unwrap_or_else(|| user::bridge_name(&id));
        if bridges.contains(&bridge) {
            return Err(invalid(format!(
                "bridge {bridge} is in use by another network"
            )));
        }
        Ok(NetworkRecord {
            id,
            name: name.to_owned(),
            created: chrono::Utc::now(),
            subnet: subnet.to_string(),
            gateway,
            ip_range,
            user_subnet,
            user_gateway: msg.gateway.as_deref().is_some_and(|g| !g.is_empty()),
            internal: msg.internal,
            attachable: msg.attachable,
            bridge,
            icc: opts.icc,
            masquerade: opts.masquerade,
            mtu: opts.mtu,
            options: msg.options.clone(),
            labels: msg.labels.clone(),
        })
    }

    /// The firewalls of the daemon's other bridges: the default one and every user
    /// network's but `except`.
    fn other_firewalls(&self, except: &str) -> Vec<Firewall> {
        self.net
            .as_ref()
            .and_then(|n| n.firewall.clone())
            .into_iter()
            .chain(
                self.user_nets
                    .iter()
                    .filter(|(id, _)| id.as_str() != except)
                    .filter_map(|(_, n)| n.firewall.clone()),
            )
            .collect()
    }

    fn save_records(&self, records: &[NetworkRecord]) -> Result<(), NetworkError> {
        user::save(&user::records_path(&self.config.data_root), records)
    }
}

impl Handler<CreateNetwork> for NetworkActor {
    type Result = ResponseActFuture<Self, Result<NetworkRecord, NetworkError>>;
    fn handle(&mut self, msg: CreateNetwork, _: &mut Self::Context) -> Self::Result {
        let rec = match self.plan_create(&msg) {
            Ok(r) => r,
            Err(e) => return Box::pin(actix::fut::ready(Err(e))),
        };
        let Some(handle) = self.nl.clone() else {
            return Box::pin(actix::fut::ready(Err(NetworkError::Disabled)));
        };
        self.creating
            .push((rec.name.clone(), rec.cidr(), rec.bridge.clone()));
        let (_, bridges) = self.used();
        let isolate: Vec<String> = bridges.into_iter().filter(|b| *b != rec.bridge).collect();
        let fw = super::user_firewall(&self.config, &rec, isolate);
        let mtu = if rec.mtu != 0 { rec.mtu } else { self.info.mtu };
        // The other bridges' rules that keep their containers from this one's.
        let others: Vec<(Firewall, Vec<super::firewall::Rule>)> = if fw.is_some() {
            self.other_firewalls(&rec.id)
                .into_iter()
                .map(|f| {
                    let r = f.isolation_rule(&rec.bridge);
                    (f, vec![r])
                })
                .collect()
        } else {
            Vec::new()
        };
        let rec2 = rec.clone();
        let work = async move {
            // A link of that name made by someone else is never deleted on a failure.
            let existed = matches!(
                bridge::link_by_name(&handle, &rec2.bridge).await,
                Ok(Some(_))
            );
            let made = super::make_user(&handle, &rec2, mtu, fw).await;
            if made.is_ok() {
                let others = others.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    for (f, rules) in others {
                        if let Err(e) = f.change_rules(&rules, true) {
                            tracing::warn!(error = %e, bridge = %f.bridge, "isolation rule not added");
                        }
                    }
                })
                .await;
            }
            (made, handle, existed)
        };
        Box::pin(actix::fut::wrap_future(work).map(move |(made, handle, existed), act: &mut Self, _| {
            act.creating.retain(|(n, _, _)| *n != rec.name);
            let un = match made {
                Ok(un) => un,
                Err(e) => {
                    // Nothing of it is left: the bridge it made goes.
                    if !existed {
                        let bridge = rec.bridge.clone();
                        actix::spawn(async move {
                            let _ = bridge::delete_link(&handle, &bridge).await;
                        });
                    }
                    return Err(e);
                }
            };
            let mut all = act.user.all();
            all.push(rec.clone());
            if let Err(e) = act.save_records(&all) {
                let fw = un.firewall.clone();
                let bridge = rec.bridge.clone();
                actix::spawn(async move {
                    if let Some(fw) = fw {
                        let _ = tokio::task::spawn_blocking(move || fw.teardown()).await;
                    }
                    let _ = bridge::delete_link(&handle, &bridge).await;
                });
                return Err(e);
            }
            for f in act.user_nets.values_mut().filter_map(|n| n.firewall.as_mut()) {
                f.isolate.push(rec.bridge.clone());
            }
            if let Some(f) = act.net.as_mut().and_then(|n| n.firewall.as_mut()) {
                f.isolate.push(rec.bridge.clone());
            }
            act.user.replace(all);
            act.names.name_network(&rec.id, &rec.name);
            act.user_nets.insert(rec.id.clone(), un);
            tracing::info!(network = %rec.name, id = %rec.id, bridge = %rec.bridge, subnet = %rec.subnet, "network created");
            Ok(rec)
        }))
    }
}

impl Handler<RemoveNetwork> for NetworkActor {
    type Result = ResponseFuture<Result<(), NetworkError>>;
    fn handle(&mut self, msg: RemoveNetwork, _: &mut Self::Context) -> Self::Result {
        let Some(rec) = self.user.get(&msg.id) else {
            return Box::pin(async move { Err(NetworkError::NoSuchNetwork { name: msg.id }) });
        };
        let active = self
            .endpoints
            .values()
            .chain(self.extra.values().flatten())
            .any(|ep| ep.network_id == rec.id);
        if active {
            return Box::pin(async move {
                Err(NetworkError::ActiveEndpoints {
                    name: rec.name,
                    id: rec.id,
                })
            });
        }
        let all: Vec<NetworkRecord> = self
            .user
            .all()
            .into_iter()
            .filter(|r| r.id != rec.id)
            .collect();
        if let Err(e) = self.save_records(&all) {
            return Box::pin(async move { Err(e) });
        }
        self.user.replace(all);
        self.names.forget_network(&rec.id);
        let un = self.user_nets.remove(&rec.id);
        let subnet = rec.cidr();
        self.host_routes.retain(|r| *r != subnet);
        for f in self
            .user_nets
            .values_mut()
            .filter_map(|n| n.firewall.as_mut())
        {
            f.isolate.retain(|b| *b != rec.bridge);
        }
        if let Some(f) = self.net.as_mut().and_then(|n| n.firewall.as_mut()) {
            f.isolate.retain(|b| *b != rec.bridge);
        }
        let others: Vec<Firewall> = self.other_firewalls(&rec.id);
        let handle = self.nl.clone();
        Box::pin(async move {
            if let Some(fw) = un.and_then(|u| u.firewall) {
                let bridge = rec.bridge.clone();
                let res = tokio::task::spawn_blocking(move || {
                    for f in others {
                        let r = f.isolation_rule(&bridge);
                        let _ = f.change_rules(&[r], false);
                    }
                    fw.teardown()
                })
                .await;
                if let Ok(Err(e)) = res {
                    tracing::warn!(error = %e, network = %rec.name, "rules of a removed network not all removed");
                }
            }
            if let Some(h) = handle {
                bridge::delete_link(&h, &rec.bridge).await?;
            }
            tracing::info!(network = %rec.name, id = %rec.id, "network removed");
            Ok(())
        })
    }
}

impl Handler<ConnectEndpoint> for NetworkActor {
    type Result = ResponseActFuture<Self, Result<Endpoint, NetworkError>>;
    fn handle(&mut self, msg: ConnectEndpoint, _: &mut Self::Context) -> Self::Result {
        let on_it = self
            .endpoints
            .get(&msg.id)
            .into_iter()
            .chain(self.extra.get(&msg.id).into_iter().flatten())
            .any(|ep| ep.network_id == msg.attach.network_id);
        if on_it {
            return Box::pin(actix::fut::ready(Err(NetworkError::Forbidden {
                message: "endpoint with name already exists in network".to_owned(),
            })));
        }
        let wiring = match self.user_wiring(&msg.attach, None, &msg.ifname) {
            Ok(w) => w,
            Err(e) => return Box::pin(actix::fut::ready(Err(e))),
        };
        let ep = wiring.endpoint.clone();
        let making = sandbox::attach(msg.netns.clone(), wiring, msg.ifname.clone());
        let (id, name) = (msg.id, msg.name);
        Box::pin(making.into_actor(self).map(move |res, act, _| {
            if let Err(e) = res {
                act.release_address(Some((ep.network_id.clone(), ep.ip)));
                return Err(e);
            }
            act.join_names(&id, &name, &ep);
            act.extra.entry(id).or_default().push(ep.clone());
            Ok(ep)
        }))
    }
}

impl Handler<DisconnectEndpoint> for NetworkActor {
    type Result = ResponseFuture<Result<(), NetworkError>>;
    fn handle(&mut self, msg: DisconnectEndpoint, _: &mut Self::Context) -> Self::Result {
        let mut gone = Vec::new();
        if self
            .endpoints
            .get(&msg.id)
            .is_some_and(|ep| ep.network_id == msg.network_id)
        {
            gone.extend(self.endpoints.remove(&msg.id));
        }
        if let Some(list) = self.extra.get_mut(&msg.id) {
            let (out, keep): (Vec<Endpoint>, Vec<Endpoint>) = std::mem::take(list)
                .into_iter()
                .partition(|ep| ep.network_id == msg.network_id);
            *list = keep;
            gone.extend(out);
        }
        for ep in &gone {
            self.release_address(Some((ep.network_id.clone(), ep.ip)));
            self.names.leave(&ep.network_id, &msg.id);
        }
        let handle = self.nl.clone();
        Box::pin(async move {
            let Some(h) = handle else { return Ok(()) };
            for ep in gone {
                bridge::delete_link(&h, &ep.host_veth).await?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_parsed_or_refused_by_name() {
        let o = parse_opts(&BTreeMap::from([
            (user::BRIDGE_NAME_OPT.to_owned(), "bt-x".to_owned()),
            (user::ICC_OPT.to_owned(), "false".to_owned()),
            (user::MTU_OPT.to_owned(), "1400".to_owned()),
        ]))
        .unwrap();
        assert_eq!(o.bridge.as_deref(), Some("bt-x"));
        assert!(!o.icc && o.masquerade);
        assert_eq!(o.mtu, 1400);
        let e = parse_opts(&BTreeMap::from([("foo".to_owned(), "1".to_owned())]))
            .err()
            .unwrap();
        assert!(e.to_string().contains("foo"), "{e}");
        assert!(
            parse_cidr("subnet", "fd00::/64")
                .unwrap_err()
                .to_string()
                .contains("IPv4")
        );
        assert_eq!(
            parse_cidr("subnet", "10.199.60.7/24").unwrap().to_string(),
            "10.199.60.0/24"
        );
    }
}
