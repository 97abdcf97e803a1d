//! The create handler: the request validated, then the name, the layer and the record's
//! other files made at once, the record committed (`records`), and the container set up
//! ahead of its start meanwhile ([`prestart`], [`take_sandbox`]).

use std::path::PathBuf;
use std::time::Instant;

use actix::prelude::*;
use chrono::Utc;

use super::etc::EtcFiles;
use super::records::{CreateUndo, commit_record, settle, stage_record, write_container_files};
use super::state::{self, Container, State};
use super::*;
use crate::actors::graph::{
    CreateRwLayer, CreateVolumes, GraphError, RemoveVolume, ResolveImage, RwLayer,
};
use crate::actors::graphdb::{GraphDbError, ReserveName};
use crate::actors::network::bridge::parse_mac;
use crate::actors::network::{
    Attachment, NetworkError, NetworkInfo, Prewarm, ReleaseEndpoint, Sandbox, TakeSandbox,
    plan_network,
};
use crate::model::create::CreateRequest;
use crate::monitor::spec::{ContainerSpec, NetworkSpec};

impl Handler<CreateContainer> for ContainerStoreActor {
    type Result = Fut<Result<Created, StoreError>>;
    fn handle(&mut self, msg: CreateContainer, _: &mut Self::Context) -> Self::Result {
        if self.shutting_down {
            return ready(Err(StoreError::ShuttingDown));
        }
        let mut request = msg.request;
        let warnings = match validate::validate(&mut request, &self.host) {
            Ok(w) => w,
            Err(e) => return ready(Err(e)),
        };
        let limits = process::merged_ulimits(&request.host_config, &self.config.default_ulimits);
        if let Err(e) = process::check_hard_limits(&limits) {
            return ready(Err(e));
        }
        process::adapt_shared_namespaces(&mut request.host_config, |n| self.resolve(n).ok());
        let CreateRequest {
            mut config,
            mut host_config,
            networking_config,
            ..
        } = request;
        // `--volumes-from`: the other containers' mounts, as they are now.
        let mut from = Vec::new();
        for v in host_config.volumes_from.iter().flatten() {
            let looked_up = mounts::parse_volumes_from(v).and_then(|(name, mode)| {
                let id = self.resolve(name)?;
                Ok((
                    self.containers[&id].c.mounts().into_owned(),
                    mode.to_owned(),
                ))
            });
            match looked_up {
                Ok(x) => from.push(x),
                Err(e) => return ready(Err(e)),
            }
        }
        let image_ref = config.image.clone().unwrap_or_default();
        if image_ref.is_empty() {
            return ready(Err(StoreError::InvalidConfig {
                reason: "no image specified".to_owned(),
            }));
        }
        let name = match msg.name.filter(|n| !n.is_empty()) {
            Some(n) => match state::validate_name(&n) {
                Ok(n) => n,
                Err(e) => return ready(Err(e)),
            },
            None => {
                let mut attempt = 0;
                loop {
                    let n = state::generate_name(attempt);
                    if !self.names.contains_key(&n) {
                        break n;
                    }
                    attempt += 1;
                }
            }
        };
        if let Some(holder) = self.names.get(&name) {
            return ready(Err(StoreError::GraphDb(GraphDbError::NameInUse {
                name,
                holder: holder.clone(),
            })));
        }
        let mode = host_config
            .network_mode
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        let network = match plan_network(&self.net, &mode) {
            Ok(n) => create::effective_network(n, &config),
            // Not a 404: the CLI takes a 404 from a create for a missing image and pulls.
            Err(e @ NetworkError::NoSuchNetwork { .. }) => {
                return ready(Err(StoreError::Invalid {
                    message: e.to_string(),
                }));
            }
            Err(e) => return ready(Err(e.into())),
        };
        if let Err(e) =
            super::ports::check(&host_config, &config, &network, &mode, self.config.iptables)
        {
            return ready(Err(e));
        }
        if let Err(e) = check_mac(&config, &network) {
            return ready(Err(e));
        }
        let attachment = match attachment_of(&self.net, &mode, &networking_config) {
            Ok(a) => a,
            Err(e) => return ready(Err(e)),
        };
        if let Some(a) = &attachment {
            // The network by its name, also when given by id (the key of its Networks).
            host_config.network_mode = Some(a.name.clone());
        }
        let new_links = match self.links_of_create(&host_config, &network) {
            Ok(l) => l,
            Err(e) => return ready(Err(e)),
        };
        let id = crate::util::new_id();
        let donor = process::network_donor(&host_config).is_some();
        if config.hostname.as_deref().unwrap_or("").is_empty() && !donor {
            // dockerd: the host's name on the host's network, else the short id (with
            // another container's network: that one's, set at the start).
            config.hostname = Some(if network == NetworkSpec::Host {
                super::etc::host_hostname()
            } else {
                id[..12].to_owned()
            });
        }
        let mut etc = match EtcFiles::new(
            &config,
            &host_config,
            &network,
            &self.config.dns,
            self.net.gateway,
        ) {
            Ok(etc) => etc,
            Err(e) => return ready(Err(e)),
        };
        etc.embedded_dns = attachment.is_some();
        // Hold the name now so that a concurrent create of the same name conflicts.
        self.names.insert(name.clone(), id.clone());
        let persister = match self.persister() {
            Ok(p) => p,
            Err(e) => return ready(Err(e)),
        };
        // Not with bind mounts: their sources are mounted as they are at the start (a file
        // replaced between create and start is the new one).
        let binds = host_config.binds.as_ref().is_some_and(|b| !b.is_empty())
            || host_config.mounts.as_ref().is_some_and(|m| !m.is_empty());
        // Nor when it joins another container's namespaces, which must be running at the
        // start.
        let joins = process::joins_another(&host_config);
        // Nor with links: its hosts and environment come from the children at the start.
        // Nor on a user-defined network: its sandbox is made at the start, with its DNS.
        let may_prestart = self.prestarts < MAX_PRESTARTS
            && !binds
            && !joins
            && new_links.is_empty()
            && attachment.is_none();
        if may_prestart {
            self.prestarts += 1;
        }
        let exec_root = self.config.exec_root.clone();
        let default_ulimits = self.config.default_ulimits.clone();
        let security_defaults = self.security_defaults();
        let peers = self.peers.clone();
        peers.exec.do_send(PrepareStart);
        // (A user-defined network's namespace is made at the start, none ahead.)
        if network != NetworkSpec::Host && attachment.is_none() {
            peers.network.do_send(Prewarm {
                bridged: network == NetworkSpec::New,
            });
        }
        let dir = self.containers_dir().join(&id);
        let driver = self.driver.clone();
        let (id2, name2) = (id.clone(), name.clone());
        let work = async move {
            let image = peers
                .graph
                .send(ResolveImage {
                    reference: image_ref,
                })
                .await
                .map_err(StoreError::mailbox("graph"))??;
            let (path, args) = create::merge_image(&mut config, &image.config)?;
            let mut config_volumes: Vec<String> = config
                .volumes
                .iter()
                .flat_map(|v| v.keys().cloned())
                .collect();
            config_volumes.sort();
            let plan = mounts::plan(&host_config, &config_volumes, &from)?;
            let mount_points = if plan.volumes.is_empty() {
                plan.points
            } else {
                let requests = plan.volumes.iter().map(|(_, r)| r.clone()).collect();
                let made = peers
                    .graph
                    .send(CreateVolumes { requests })
                    .await
                    .map_err(StoreError::mailbox("graph"))??;
                plan.resolve(&made)
            };
            // The anonymous volumes made for it go again if the create fails.
            let anonymous: Vec<String> = mount_points
                .iter()
                .filter(|m| m.typ == "volume" && !m.named)
                .map(|m| m.name.clone())
                .collect();
            let peers2 = peers.clone();
            let made = async move {
                let host =
                    serde_json::to_vec(&host_config).map_err(|e| StoreError::InvalidConfig {
                        reason: e.to_string(),
                    })?;
                // Three independent parts at once: the name, the layer, and the files of the
                // container's dir that do not depend on the layer. Only the record, which
                // holds the layer's rootfs, waits for the layer.
                let (dir2, etc2) = (dir.clone(), etc.clone());
                let files = persister.run(&id2, move || write_container_files(&dir2, &etc2, &host));
                let reserve = async {
                    peers
                        .graphdb
                        .send(ReserveName {
                            name: name2.clone(),
                            id: id2.clone(),
                        })
                        .await
                        .map_err(StoreError::mailbox("graphdb"))
                        .and_then(|r| r.map_err(StoreError::from))
                };
                let layer = async {
                    peers
                        .graph
                        .send(CreateRwLayer {
                            container_id: id2.clone(),
                            image_id: image.id.clone(),
                        })
                        .await
                        .map_err(StoreError::mailbox("graph"))
                        .and_then(|r| r.map_err(StoreError::from))
                };
                let (files, reserved, layer) = futures_util::join!(files, reserve, layer);
                let files = files.map_err(|source| StoreError::Persist {
                    path: dir.clone(),
                    source,
                });
                let undo = CreateUndo {
                    peers: &peers,
                    persister: &persister,
                    id: &id2,
                    dir: &dir,
                };
                // The name's error first (a taken name is what the user can fix). A layer
                // being made is undone only once it is durable (`settle`).
                let layer = match (reserved, layer, files) {
                    (Ok(()), Ok(layer), Ok(())) => layer,
                    (Err(e), layer, _) => {
                        let made = settle(layer).await;
                        return Err(undo.run(e, false, made).await);
                    }
                    (Ok(()), Err(e), _) => return Err(undo.run(e, true, false).await),
                    (Ok(()), Ok(layer), Err(e)) => {
                        let made = settle(Ok(layer)).await;
                        return Err(undo.run(e, true, made).await);
                    }
                };
                let RwLayer { rootfs, durable } = layer;
                let c = Container {
                    id: id2.clone(),
                    name: name2,
                    created: Utc::now(),
                    path,
                    args,
                    config,
                    host_config,
                    image: image.id,
                    state: State::new(),
                    rootfs,
                    driver,
                    network,
                    restart_count: 0,
                    has_been_manually_stopped: false,
                    mount_points,
                    endpoint: None,
                    attachments: attachment.into_iter().collect(),
                    extra_endpoints: Vec::new(),
                };
                let record = match serde_json::to_vec(&c) {
                    Ok(r) => r,
                    Err(e) => {
                        let err = StoreError::InvalidConfig {
                            reason: e.to_string(),
                        };
                        let made = matches!(durable.await, Ok(Ok(())));
                        return Err(undo.run(err, true, made).await);
                    }
                };
                // The record's temp file is written and fsynced while the layer is made
                // durable; it is renamed into place only after. Meanwhile the container is
                // set up for its start.
                let commit = async {
                    let dir2 = dir.clone();
                    let staged = persister.run(&id2, move || stage_record(&dir2, &record));
                    let (staged, durable) = futures_util::join!(staged, durable);
                    let durable = match durable {
                        Ok(res) => res.map_err(StoreError::from),
                        Err(_) => Err(StoreError::from(GraphError::TaskFailed {
                            operation: "container layer create",
                        })),
                    };
                    let persist_error = |source| StoreError::Persist {
                        path: dir.clone(),
                        source,
                    };
                    match (durable, staged) {
                        (Ok(()), Ok(())) => {}
                        (Err(e), _) => return Err(undo.run(e, true, false).await),
                        (Ok(()), Err(source)) => {
                            return Err(undo.run(persist_error(source), true, true).await);
                        }
                    }
                    let dir2 = dir.clone();
                    let committed = persister.run(&id2, move || commit_record(&dir2)).await;
                    if let Err(source) = committed {
                        return Err(undo.run(persist_error(source), true, true).await);
                    }
                    Ok(())
                };
                // Not set up ahead if its security settings fail now: the start says why.
                // Nothing to look up: a container that joins another's is not set up ahead.
                let ahead = may_prestart
                    .then(|| crate::security::for_container(&c.host_config, security_defaults).ok())
                    .flatten()
                    .map(|security| {
                        let mut spec = create::build_spec(&c, &dir, &exec_root);
                        spec.process = process::process_spec(&c, &default_ulimits, |_| None)
                            .unwrap_or_default();
                        spec.security = security;
                        let mac = c.config.mac_address.as_deref().and_then(parse_mac);
                        (spec, c.network.clone(), dir.join("hosts"), mac)
                    });
                let set_up = async {
                    let (spec, network, hosts, mac) = ahead?;
                    prestart(&peers, spec, network, hosts, &etc, mac).await
                };
                let (committed, pre) = futures_util::join!(commit, set_up);
                if let Err(e) = committed {
                    if let Some(p) = pre {
                        drop_prestart(&peers, &id2, &p);
                    }
                    return Err(e);
                }
                Ok((c, pre))
            }
            .await;
            if made.is_err() {
                for name in anonymous {
                    peers2.graph.do_send(RemoveVolume {
                        name,
                        force: true,
                        users: Default::default(),
                    });
                }
            }
            made
        };
        Box::pin(
            actix::fut::wrap_future::<_, Self>(work).map(move |res, act, ctx| {
                let held = matches!(&res, Ok((_, Some(_))));
                if may_prestart && !held {
                    act.prestarts -= 1;
                }
                match res {
                    Ok((c, pre)) => {
                        tracing::info!(container_id = %c.id, name = %c.name, "container created");
                        c.event("create", []);
                        let id = c.id.clone();
                        let mut entry = Entry::new(c);
                        if let Some(p) = pre {
                            let born = p.born;
                            entry.prestart = Some(p);
                            let id2 = id.clone();
                            ctx.run_later(PRESTART_TTL, move |act, _| {
                                act.expire_prestart(&id2, born);
                            });
                        }
                        act.containers.insert(id.clone(), entry);
                        act.add_links(&id, new_links, ctx);
                        Ok(Created { id, warnings })
                    }
                    Err(e) => {
                        if act.names.get(&name) == Some(&id) {
                            act.names.remove(&name);
                        }
                        Err(e)
                    }
                }
            }),
        )
    }
}

/// The user-defined network a create joins (`--network NAME`), with what its
/// `NetworkingConfig.EndpointsConfig` entry asks (`--ip`, `--network-alias`); dockerd's
/// refusals of those on the other networks.
pub(super) fn attachment_of(
    net: &NetworkInfo,
    mode: &str,
    nc: &crate::model::api::NetworkingConfig,
) -> Result<Option<Attachment>, StoreError> {
    let ep = nc.endpoints_config.as_ref().and_then(|m| {
        m.get(mode)
            .or_else(|| (m.len() == 1).then(|| m.values().next()).flatten())
    });
    let ip = ep
        .and_then(|e| e.ipam_config.as_ref())
        .and_then(|c| c.ipv4_address.as_deref())
        .filter(|s| !s.is_empty());
    let aliases: Vec<String> = ep
        .and_then(|e| e.aliases.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|a| !a.is_empty())
        .collect();
    let invalid = |message: &str| StoreError::Invalid {
        message: message.to_owned(),
    };
    let user = match mode {
        "" | "default" | "bridge" | "host" | "none" => None,
        m if m.starts_with("container:") => None,
        m => net.user.find(m),
    };
    let Some(rec) = user else {
        if ip.is_some() {
            return Err(invalid(
                "user specified IP address is supported on user defined networks only",
            ));
        }
        if !aliases.is_empty() {
            return Err(invalid(
                "network-scoped alias is supported only for containers in user defined networks",
            ));
        }
        return Ok(None);
    };
    let ip = match ip {
        Some(_) if !rec.user_subnet => {
            return Err(invalid(
                "user specified IP address is supported only when connecting to networks with user configured subnets",
            ));
        }
        Some(text) => Some(
            text.parse::<std::net::Ipv4Addr>()
                .map_err(|_| invalid(&format!("invalid IPv4 address: {text}")))?,
        ),
        None => None,
    };
    if let Some(ip) = ip {
        let subnet = rec.cidr();
        if !subnet.contains(ip)
            || ip == subnet.network()
            || ip == subnet.broadcast()
            || ip == rec.gateway
        {
            return Err(invalid(&format!(
                "no configured subnet or ip-range contain the IP address {ip}"
            )));
        }
    }
    Ok(Some(Attachment {
        network_id: rec.id,
        name: rec.name,
        ip,
        aliases,
    }))
}

/// Takes a network namespace for container `id` (`bridged`: on the bridge, with an
/// address) and, for a bridged one, writes the address into its /etc/hosts: behind the
/// container's other writes on `persister`, or else on a blocking thread.
#[allow(clippy::too_many_arguments)]
pub(super) async fn take_sandbox(
    network: &ActorClient<NetworkActor>,
    persister: Option<Persister>,
    id: &str,
    bridged: bool,
    hosts: PathBuf,
    etc: &EtcFiles,
    mac: Option<[u8; 6]>,
    user: Option<(Attachment, String)>,
) -> Result<Sandbox, StoreError> {
    let (attach, name) = user.unzip();
    let upstreams = if attach.is_some() {
        // The host's resolvers only matter without `--dns` (daemon or container).
        let host = if etc.dns.is_empty() {
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
        } else {
            String::new()
        };
        etc.upstreams(&host)
    } else {
        Vec::new()
    };
    let sb = network
        .send(TakeSandbox {
            id: id.to_owned(),
            bridged,
            mac,
            attach,
            name: name.unwrap_or_default(),
            upstreams,
        })
        .await
        .map_err(StoreError::mailbox("network"))??;
    let Some(ep) = &sb.endpoint else {
        return Ok(sb);
    };
    let content = etc.hosts_file("", Some(ep.ip));
    let path = hosts.clone();
    let write = move || fs::write(&path, content);
    let written = match persister {
        Some(p) => p.run(id, write).await,
        None => tokio::task::spawn_blocking(write)
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e))),
    };
    if let Err(source) = written {
        let _ = network.send(ReleaseEndpoint { id: id.to_owned() }).await;
        return Err(StoreError::Persist {
            path: hosts,
            source,
        });
    }
    Ok(sb)
}

/// Sets a new container up ahead of its start (see [`ExecPrestart`]), in a network
/// namespace taken now; `Some` (with the address on the bridge) when its monitor holds it.
async fn prestart(
    peers: &Peers,
    spec: ContainerSpec,
    network: NetworkSpec,
    hosts: PathBuf,
    etc: &EtcFiles,
    mac: Option<[u8; 6]>,
) -> Option<Prestarted> {
    let id = spec.id.clone();
    let mut netns = None;
    let mut endpoint = None;
    if network != NetworkSpec::Host {
        let bridged = network == NetworkSpec::New;
        // `hosts` is written beside the create's other writes, not behind them: none of
        // them touches it, and behind them it would wait for the record's fsyncs.
        let sb = take_sandbox(&peers.network, None, &id, bridged, hosts, etc, mac, None).await;
        match sb {
            Ok(sb) => {
                endpoint = sb.endpoint;
                netns = Some(sb.netns);
            }
            Err(e) => {
                tracing::debug!(container_id = %id, error = %e, "not set up ahead");
                return None;
            }
        }
    }
    let sent = peers.exec.send(ExecPrestart { spec, netns }).await;
    match sent {
        Ok(Ok(())) => Some(Prestarted {
            endpoint,
            born: Instant::now(),
        }),
        other => {
            if let Ok(Err(e)) = other {
                tracing::debug!(container_id = %id, error = %e, "not set up ahead");
            }
            if endpoint.is_some() {
                peers.network.do_send(ReleaseEndpoint { id });
            }
            None
        }
    }
}

/// Lets a container's set-up ahead go: its monitor undoes it, its address is released.
pub(super) fn drop_prestart(peers: &Peers, id: &str, p: &Prestarted) {
    peers.exec.do_send(DropPrestart { id: id.to_owned() });
    if p.endpoint.is_some() {
        peers.network.do_send(ReleaseEndpoint { id: id.to_owned() });
    }
}

impl ContainerStoreActor {
    /// The links a create asks for (`HostConfig.Links`), as `(alias, child id)`, checked as
    /// dockerd's `registerLinks` checks them.
    fn links_of_create(
        &self,
        h: &crate::model::api::HostConfig,
        network: &NetworkSpec,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let host_conflict = || {
            StoreError::Invalid {
            message: "conflicting options: host type networking can't be used with links. This would result in undefined behavior".to_owned(),
        }
        };
        let mut out: Vec<(String, String)> = Vec::new();
        for entry in h.links.iter().flatten() {
            let (name, alias) = super::links::parse_link(entry)?;
            if *network == NetworkSpec::Host {
                return Err(host_conflict());
            }
            let child = self.resolve(&name).map_err(|_| StoreError::Invalid {
                message: format!("could not get container for {name}: No such container: {name}"),
            })?;
            if self.containers[&child].c.network == NetworkSpec::Host {
                return Err(host_conflict());
            }
            if out.iter().any(|(a, _)| *a == alias) {
                return Err(StoreError::Invalid {
                    message: format!("a link named {alias} is given twice"),
                });
            }
            out.push((alias, child));
        }
        Ok(out)
    }

    /// Records the links of a new container `parent`: in memory now, in the graph db
    /// behind (a failed write is logged; the next start-up reads the database).
    fn add_links(&mut self, parent: &str, links: Vec<(String, String)>, ctx: &mut Context<Self>) {
        if links.is_empty() {
            return;
        }
        for (alias, child) in &links {
            self.links.push(super::links::Link {
                parent: parent.to_owned(),
                alias: alias.clone(),
                child: child.clone(),
            });
        }
        let graphdb = self.peers.graphdb.clone();
        let parent = parent.to_owned();
        ctx.spawn(
            async move {
                let sent = graphdb
                    .send(crate::actors::graphdb::AddLinks {
                        parent: parent.clone(),
                        links,
                    })
                    .await;
                if !matches!(sent, Ok(Ok(()))) {
                    tracing::warn!(container_id = %parent, "links not written to the graph db");
                }
            }
            .into_actor(self),
        );
    }
}

/// `--mac-address` (`Config.MacAddress`): a unicast MAC for eth0 on the bridge; dockerd's
/// words for a bad one and for the host's network; refused where there is no eth0 for it.
fn check_mac(
    config: &crate::model::api::ContainerConfig,
    network: &NetworkSpec,
) -> Result<(), StoreError> {
    let Some(text) = config.mac_address.as_deref().filter(|m| !m.is_empty()) else {
        return Ok(());
    };
    let invalid = |message: String| StoreError::Invalid { message };
    let mac =
        parse_mac(text).ok_or_else(|| invalid(format!("{text} is not a valid mac address")))?;
    if mac[0] & 1 == 1 {
        return Err(invalid(format!(
            "{text} is a multicast mac address: a container's interface needs a unicast one"
        )));
    }
    match network {
        NetworkSpec::New => Ok(()),
        NetworkSpec::Host => Err(invalid(
            "conflicting options: mac-address and the network mode".to_owned(),
        )),
        NetworkSpec::None => Err(StoreError::Refused {
            field: "Config.MacAddress (--mac-address)".to_owned(),
            reason: "the container has no network interface to give it (--network none)".to_owned(),
        }),
    }
}
