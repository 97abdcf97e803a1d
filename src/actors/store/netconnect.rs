//! `docker network connect` and `disconnect` (`ConnectNetwork`, `DisconnectNetwork`):
//! the container's attachments to user-defined networks, and for a running one its
//! extra interfaces (eth1, ...), made and deleted by the NetworkActor.

use actix::prelude::*;

use super::*;
use crate::actors::network::{DisconnectEndpoint, NetworkError};

fn forbidden(message: String) -> StoreError {
    StoreError::Network(NetworkError::Forbidden { message })
}

/// dockerd's network event for container `c` on user network `id` / `name`.
fn event(action: &str, id: &str, name: &str, container: &str) {
    crate::events::events().other(
        crate::events::Kind::Network,
        action,
        id,
        [
            ("container", container.to_owned()),
            ("name", name.to_owned()),
            ("type", "bridge".to_owned()),
        ],
    );
}

impl Handler<ConnectNetwork> for ContainerStoreActor {
    type Result = Fut<Result<(), StoreError>>;
    fn handle(&mut self, msg: ConnectNetwork, _: &mut Self::Context) -> Self::Result {
        let rec = self.net.user.get(&msg.attach.network_id);
        let entry = match self.entry(&msg.container) {
            Ok(e) => e,
            Err(e) => return ready(Err(e)),
        };
        let Some(rec) = rec else {
            return ready(Err(StoreError::Network(NetworkError::NoSuchNetwork {
                name: msg.attach.name,
            })));
        };
        let c = &entry.c;
        if c.network == NetworkSpec::Host {
            return ready(Err(forbidden(
                "container cannot be disconnected from host network or connected to host network"
                    .to_owned(),
            )));
        }
        if process::network_donor(&c.host_config).is_some() {
            return ready(Err(forbidden(
                "container sharing network namespace with another container or host cannot be connected to any other network".to_owned(),
            )));
        }
        if c.network == NetworkSpec::None || c.config.network_disabled == Some(true) {
            return ready(Err(forbidden(
                "container cannot be connected to multiple networks with one of the networks in private (none) mode".to_owned(),
            )));
        }
        let on_it = view::network_name(c) == rec.name
            || c.attachments.iter().any(|a| a.network_id == rec.id);
        if on_it {
            return ready(Err(forbidden(format!(
                "endpoint with name {} already exists in network {}",
                c.name.trim_start_matches('/'),
                rec.name
            ))));
        }
        if let Some(ip) = msg.attach.ip {
            let s = rec.cidr();
            if !s.contains(ip) || ip == s.network() || ip == s.broadcast() || ip == rec.gateway {
                return ready(Err(StoreError::Invalid {
                    message: format!(
                        "no configured subnet or ip-range contain the IP address {ip}"
                    ),
                }));
            }
        }
        let id = c.id.clone();
        let attach = msg.attach;
        if entry.starting || entry.removing {
            return ready(Err(StoreError::Invalid {
                message: format!(
                    "container {id} is being started or removed: connect it again afterwards"
                ),
            }));
        }
        if !(c.state.is_running() && c.state.pid > 0) {
            entry.c.attachments.push(attach);
            let c = entry.c.clone();
            self.save_state(&c);
            event("connect", &rec.id, &rec.name, &id);
            return ready(Ok(()));
        }
        let netns = match std::fs::File::open(format!("/proc/{}/ns/net", c.state.pid)) {
            Ok(f) => std::sync::Arc::new(std::os::fd::OwnedFd::from(f)),
            Err(e) => {
                return ready(Err(StoreError::Network(NetworkError::Sandbox {
                    source: e,
                })));
            }
        };
        let used: Vec<&str> = c
            .endpoint
            .iter()
            .chain(&c.extra_endpoints)
            .map(|e| {
                if e.ifname.is_empty() {
                    "eth0"
                } else {
                    e.ifname.as_str()
                }
            })
            .collect();
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !used.contains(&n.as_str()))
            .unwrap_or_else(|| "eth9".to_owned());
        let name = c.name.trim_start_matches('/').to_owned();
        let network = self.peers.network.clone();
        let send = ConnectEndpoint {
            id: id.clone(),
            name,
            netns,
            ifname,
            attach: attach.clone(),
        };
        Box::pin(
            actix::fut::wrap_future::<_, Self>(async move {
                network
                    .send(send)
                    .await
                    .map_err(StoreError::mailbox("network"))
                    .and_then(|r| r.map_err(StoreError::from))
            })
            .map(move |res, act, _| {
                let ep = res?;
                let Some(entry) = act.containers.get_mut(&id) else {
                    return Err(StoreError::NotFound { id });
                };
                entry.c.attachments.push(attach);
                entry.c.extra_endpoints.push(ep);
                let c = entry.c.clone();
                act.save_state(&c);
                event("connect", &rec.id, &rec.name, &id);
                Ok(())
            }),
        )
    }
}

impl Handler<DisconnectNetwork> for ContainerStoreActor {
    type Result = Fut<Result<(), StoreError>>;
    fn handle(&mut self, msg: DisconnectNetwork, _: &mut Self::Context) -> Self::Result {
        let entry = match self.entry(&msg.container) {
            Ok(e) => e,
            Err(e) => return ready(Err(e)),
        };
        let c = &mut entry.c;
        let id = c.id.clone();
        let own = view::network_name(c) == msg.network_name;
        let attached = own || c.attachments.iter().any(|a| a.network_id == msg.network_id);
        if !attached {
            if msg.force {
                return ready(Ok(()));
            }
            return ready(Err(forbidden(format!(
                "container {id} is not connected to network {}",
                msg.network_name
            ))));
        }
        if own && !c.state.is_running() {
            // Its NetworkMode's network: the next start joins it again, so say so rather
            // than pretend.
            return ready(Err(StoreError::Invalid {
                message: format!(
                    "berthd does not disconnect a stopped container from its own network {} (its --network); remove it or run it on another network",
                    msg.network_name
                ),
            }));
        }
        c.attachments.retain(|a| a.network_id != msg.network_id);
        let was_running = c.state.is_running();
        if was_running {
            c.extra_endpoints.retain(|e| e.network_id != msg.network_id);
            if c.endpoint
                .as_ref()
                .is_some_and(|e| e.network_id == msg.network_id)
            {
                c.endpoint = None;
            }
        }
        let snapshot = c.clone();
        self.save_state(&snapshot);
        event("disconnect", &msg.network_id, &msg.network_name, &id);
        if !was_running {
            return ready(Ok(()));
        }
        let network = self.peers.network.clone();
        let send = DisconnectEndpoint {
            id,
            network_id: msg.network_id,
        };
        Box::pin(actix::fut::wrap_future::<_, Self>(async move {
            network
                .send(send)
                .await
                .map_err(StoreError::mailbox("network"))
                .and_then(|r| r.map_err(StoreError::from))
        }))
    }
}
