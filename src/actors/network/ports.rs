//! Published ports (`-p`, `-P`): the host ports each running container holds, and their
//! rules.
//!
//! A published port is a kernel DNAT in berth's nat chain (reached from PREROUTING and
//! OUTPUT for local destinations, loopback included) and an accept in its ports chain;
//! the host port is held by a bound socket ([`crate::sys::ports`]) so that neither
//! another container nor another process can take it, and so that a taken one is
//! refused with the words dockerd uses. No userland proxy: the host reaches a port at
//! 127.0.0.1 through the bridge's `route_localnet` and a MASQUERADE of local sources, a
//! container reaches one through a host address by the hairpin MASQUERADE (see
//! `Firewall::builtin_rules`).

use std::net::Ipv4Addr;

use actix::prelude::*;

use super::firewall::{Firewall, Rule};
use super::{
    Endpoint, NetworkActor, NetworkError, OpenLinks, PortMapping, PortRequest, PublishPorts,
};
use crate::sys::ports::{Reservation, reserve};

/// A published port and the socket that holds its host port.
#[derive(Debug)]
pub struct Held {
    pub mapping: PortMapping,
    _socket: Reservation,
}

/// One change of rules and who waits for its outcome.
type RuleJob = (
    Firewall,
    Vec<Rule>,
    bool,
    tokio::sync::oneshot::Sender<Result<(), NetworkError>>,
);

/// The published ports' rule changes, applied in the order they were queued: a stop's
/// delete and the next start's add of the same rule (the same address and port, given to
/// the next container) must not overtake each other, as two blocking tasks could. One
/// task on the actor's arbiter drains the queue, started with the first change; while
/// nothing is queued it waits on the channel and costs nothing.
#[derive(Debug, Default)]
pub struct RuleQueue(Option<tokio::sync::mpsc::UnboundedSender<RuleJob>>);

impl RuleQueue {
    /// Queues `rules` to be added (`add`) or deleted; the future gives the outcome.
    pub fn change(
        &mut self,
        fw: Firewall,
        rules: Vec<Rule>,
        add: bool,
    ) -> impl std::future::Future<Output = Result<(), NetworkError>> + use<> {
        let (done, outcome) = tokio::sync::oneshot::channel();
        let tx = self.0.get_or_insert_with(|| {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<RuleJob>();
            actix::spawn(async move {
                while let Some((fw, rules, add, done)) = rx.recv().await {
                    let res =
                        tokio::task::spawn_blocking(move || fw.change_rules(&rules, add)).await;
                    let _ = done.send(res.unwrap_or_else(|e| {
                        Err(NetworkError::IptablesSpawn {
                            source: std::io::Error::other(e),
                        })
                    }));
                }
            });
            tx
        });
        let queued = tx.send((fw, rules, add, done)).is_ok();
        async move {
            if !queued {
                return Err(NetworkError::IptablesSpawn {
                    source: std::io::Error::other("the rule queue has ended"),
                });
            }
            outcome.await.unwrap_or_else(|_| {
                Err(NetworkError::IptablesSpawn {
                    source: std::io::Error::other("the rule queue has ended"),
                })
            })
        }
    }
}

/// Whether a port held as `held` keeps `ip:port/proto` from being taken: the same port
/// and protocol on the same address, or either on every address.
fn overlaps(held: &PortMapping, proto: &str, ip: Ipv4Addr, port: u16) -> bool {
    held.proto == proto
        && held.host_port == port
        && (held.host_ip == ip || held.host_ip.is_unspecified() || ip.is_unspecified())
}

/// dockerd's error for a host port that `msg`'s container cannot have.
fn port_taken(msg: &PublishPorts, detail: String) -> NetworkError {
    NetworkError::PortTaken {
        name: msg.name.trim_start_matches('/').to_owned(),
        endpoint: msg.endpoint_id.clone(),
        detail: detail.into(),
    }
}

/// dockerd's error for a host port that berthd already holds.
fn allocated(msg: &PublishPorts, ip: Ipv4Addr, port: &str) -> NetworkError {
    port_taken(
        msg,
        format!("Bind for {ip}:{port} failed: port is already allocated"),
    )
}

/// Go's words for a bind's errno.
fn go_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => "address already in use".to_owned(),
        std::io::ErrorKind::AddrNotAvailable => "cannot assign requested address".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

impl NetworkActor {
    fn berth_holds(&self, proto: &str, ip: Ipv4Addr, port: u16) -> bool {
        self.published
            .values()
            .flatten()
            .any(|h| overlaps(&h.mapping, proto, ip, port))
    }

    /// Holds the host port of `req` (the first free one of its range, or one the kernel
    /// picks), as PublishPorts describes.
    fn hold(&self, msg: &PublishPorts, req: &PortRequest) -> Result<Held, NetworkError> {
        let proto = req.proto.as_str();
        let ip = req.host_ip;
        let port_text = |(a, b): (u16, u16)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        };
        let bind_error = |port: String, e: &std::io::Error| {
            port_taken(
                msg,
                format!(
                    "failed to bind port {ip}:{port}/{proto}: listen {proto}4 {ip}:{port}: bind: {}",
                    go_reason(e)
                ),
            )
        };
        let held = |socket, host_port| Held {
            mapping: PortMapping {
                container_port: req.container_port,
                proto: req.proto.clone(),
                host_ip: ip,
                host_port,
            },
            _socket: socket,
        };
        let Some((first, last)) = req.host_ports else {
            let (socket, port) = reserve(proto, ip, 0).map_err(|e| bind_error("0".into(), &e))?;
            return Ok(held(socket, port));
        };
        let mut last_error = None;
        for port in first..=last {
            if self.berth_holds(proto, ip, port) {
                continue;
            }
            match reserve(proto, ip, port) {
                Ok((socket, port)) => return Ok(held(socket, port)),
                Err(e) => last_error = Some(e),
            }
        }
        Err(match last_error {
            Some(e) => bind_error(port_text((first, last)), &e),
            None => allocated(msg, ip, &port_text((first, last))),
        })
    }

    /// Lets container `id`'s ports go: the sockets now, the rules on a blocking thread.
    pub(super) fn unpublish(&mut self, id: &str, ctx: &mut Context<Self>) {
        if let Some((fw, rules)) = self
            .link_rules
            .remove(id)
            .and_then(|r| Some((self.net.as_ref()?.firewall.clone()?, r)))
        {
            let change = self.rule_queue.change(fw, rules, false);
            let id = id.to_owned();
            ctx.spawn(
                async move {
                    if let Err(e) = change.await {
                        tracing::warn!(container_id = %id, error = %e, "link rules not removed");
                    }
                }
                .into_actor(self),
            );
        }
        let Some(held) = self.published.remove(id) else {
            return;
        };
        let Some((fw, ip)) = self
            .endpoints
            .get(id)
            .and_then(|e| Some((self.firewall_of(&e.network_id)?, e.ip)))
        else {
            return;
        };
        let rules: Vec<Rule> = held
            .iter()
            .flat_map(|h| fw.port_rules(ip, &h.mapping))
            .collect();
        drop(held);
        let id = id.to_owned();
        let change = self.rule_queue.change(fw, rules, false);
        ctx.spawn(
            async move {
                match change.await {
                    Ok(()) => tracing::debug!(container_id = %id, "published ports removed"),
                    Err(e) => {
                        tracing::warn!(container_id = %id, error = %e, "published port rules not removed")
                    }
                }
            }
            .into_actor(self),
        );
    }

    /// At Init, for a container still running: its ports held again and their rules
    /// added again (the set-up emptied berth's port chains).
    pub(super) fn republish(&mut self, id: &str, ep: &Endpoint, ctx: &mut Context<Self>) {
        let Some(fw) = self.firewall_of(&ep.network_id) else {
            return;
        };
        let mut held = Vec::new();
        for m in &ep.ports {
            match reserve(&m.proto, m.host_ip, m.host_port) {
                Ok((socket, _)) => held.push(Held {
                    mapping: m.clone(),
                    _socket: socket,
                }),
                Err(e) => {
                    // Its rule still sends the traffic to the container.
                    tracing::warn!(container_id = %id, port = m.host_port, error = %e, "host port of a running container is held by another process");
                }
            }
        }
        let rules: Vec<Rule> = ep
            .ports
            .iter()
            .flat_map(|m| fw.port_rules(ep.ip, m))
            .collect();
        self.published.insert(id.to_owned(), held);
        let id = id.to_owned();
        let change = self.rule_queue.change(fw, rules, true);
        ctx.spawn(
            async move {
                if let Err(e) = change.await {
                    tracing::warn!(container_id = %id, error = %e, "published port rules not restored");
                }
            }
            .into_actor(self),
        );
    }
}

impl Handler<OpenLinks> for NetworkActor {
    type Result = ResponseActFuture<Self, Result<(), NetworkError>>;
    fn handle(&mut self, msg: OpenLinks, _: &mut Self::Context) -> Self::Result {
        let Some(fw) = self.net.as_ref().and_then(|n| n.firewall.clone()) else {
            return Box::pin(actix::fut::ready(Ok(())));
        };
        if fw.icc || msg.ports.is_empty() {
            return Box::pin(actix::fut::ready(Ok(())));
        }
        let rules: Vec<Rule> = msg
            .ports
            .iter()
            .flat_map(|(child, proto, port)| fw.link_rules(msg.ip, *child, proto, *port))
            .collect();
        let work = self.rule_queue.change(fw, rules.clone(), true);
        let id = msg.id;
        Box::pin(work.into_actor(self).map(move |res, act, _| {
            res?;
            act.link_rules.entry(id).or_default().extend(rules);
            Ok(())
        }))
    }
}

impl Handler<PublishPorts> for NetworkActor {
    type Result = ResponseActFuture<Self, Result<Vec<PortMapping>, NetworkError>>;
    fn handle(&mut self, msg: PublishPorts, _: &mut Self::Context) -> Self::Result {
        // The rules of the network the container's endpoint is on (the default bridge's
        // or a user-defined one's).
        let Some(ep) = self.endpoints.get(&msg.id) else {
            return Box::pin(actix::fut::ready(Err(NetworkError::NoEndpoint {
                id: msg.id,
            })));
        };
        let fw = match self.firewall_of(&ep.network_id) {
            Some(fw) => fw,
            None if self.config.iptables => {
                return Box::pin(actix::fut::ready(Err(NetworkError::Disabled)));
            }
            None => return Box::pin(actix::fut::ready(Err(NetworkError::PortsNeedIptables))),
        };
        let mut held: Vec<Held> = Vec::new();
        for req in &msg.requests {
            // The ports this request already holds count as berth's too.
            let taken = req.host_ports.is_some_and(|(a, b)| {
                a == b
                    && held
                        .iter()
                        .any(|h| overlaps(&h.mapping, &req.proto, req.host_ip, a))
            });
            let one = if taken {
                let port = req.host_ports.map_or(0, |p| p.0).to_string();
                Err(allocated(&msg, req.host_ip, &port))
            } else {
                self.hold(&msg, req)
            };
            match one {
                Ok(h) => held.push(h),
                Err(e) => return Box::pin(actix::fut::ready(Err(e))),
            }
        }
        let rules: Vec<Rule> = held
            .iter()
            .flat_map(|h| fw.port_rules(msg.ip, &h.mapping))
            .collect();
        let id = msg.id;
        let work = self.rule_queue.change(fw, rules, true);
        Box::pin(work.into_actor(self).map(move |res, act, _| {
            res?;
            let mappings = held.iter().map(|h| h.mapping.clone()).collect();
            tracing::debug!(container_id = %id, ports = held.len(), "ports published");
            act.published.insert(id, held);
            Ok(mappings)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_on_every_address_overlaps_any_address() {
        let m = PortMapping {
            container_port: 80,
            proto: "tcp".into(),
            host_ip: Ipv4Addr::UNSPECIFIED,
            host_port: 8080,
        };
        assert!(overlaps(&m, "tcp", Ipv4Addr::LOCALHOST, 8080));
        assert!(!overlaps(&m, "udp", Ipv4Addr::LOCALHOST, 8080));
        assert!(!overlaps(&m, "tcp", Ipv4Addr::LOCALHOST, 8081));
        let lo = PortMapping {
            host_ip: Ipv4Addr::LOCALHOST,
            ..m
        };
        assert!(overlaps(&lo, "tcp", Ipv4Addr::UNSPECIFIED, 8080));
        assert!(!overlaps(&lo, "tcp", Ipv4Addr::new(10, 0, 0, 1), 8080));
    }
}
