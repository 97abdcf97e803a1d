//! ContainerStoreActor: container records, their state machine, and restore at start-up
//! (seed steps 4.8 and 4.10).
//!
//! State: every container's record in memory (`containers`, with a name index), plus the
//! waiters and pending attaches of each. Records are persisted under
//! `<data-root>/containers/<id>/` by a [`persist::Persister`] (ordered per container, off
//! the arbiter). Threads: the actor runs on its own arbiter; every call to another actor is
//! a future inside a `ResponseActFuture`, so independent creates, starts and stops run
//! side by side and only the short state updates run on the actor.
//!
//! Durability: a create is fsynced before it is answered: its name, its layer and the
//! files that do not depend on the layer are made at once, then config.v2.json, the
//! commit point, staged while the graph makes the layer durable and renamed into place
//! after (a dir without it is an unfinished create, which Init deletes). The files made
//! from the config and the host (hostname, hosts, resolv.conf) are not fsynced; the first
//! start after a restart writes again those a crash left empty. Later
//! state changes (running, exited) are written atomically but not fsynced, since the
//! monitors' exit files let a restart reconcile them. A removal is
//! durable when answered: with the layer and the names, and at the same time, the
//! container's dir is renamed to a doomed name and `containers/` fsynced; its files are
//! deleted after the reply by the [`Deleter`] shared with the graph, and Init hands doomed
//! dirs a crash left to it (and removes the layers and names a crash left without a record).
//!
//! Architecture invariant: only ContainerStoreActor changes a container's state.

pub mod create;
mod creating;
pub mod error;
pub mod etc;
mod exec;
mod files;
pub mod health;
pub mod links;
mod live;
pub mod messages;
pub mod mounts;
mod netconnect;
pub mod persist;
pub mod ports;
pub mod process;
mod records;
pub mod restart;
pub mod state;
pub mod update;
pub mod validate;
mod validate_cgroups;
pub mod view;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use chrono::Utc;
use futures_util::future::join_all;
use serde_json::Value;
use tokio::sync::oneshot;

pub use error::StoreError;
pub use messages::*;

use self::creating::{drop_prestart, take_sandbox};
use self::etc::EtcFiles;
use self::persist::Persister;
use self::records::{Loaded, load_records, migrate_records, restore_derived_files};
use self::state::{Container, Status};
use super::exec::{
    AttachContainer, CleanupContainer, ContainerExited, DropPrestart, ExecActor, ExecError,
    PendingAttach, PrepareStart, Prestart as ExecPrestart, ReapOrphan, ResizeContainer,
    RestoreContainer, RestoreState, SignalContainer, StartContainer as ExecStart,
};
use super::graph::{GetDriverInfo, GraphActor, PruneRwLayers, RemoveRwLayer};
use super::graphdb::{
    GraphDbActor, ListLinks, ListNames, ReleaseEntity, RenameEntity, ReserveName,
};
use super::network::{
    Attachment, ConnectEndpoint, Endpoint, GetNetworkInfo, NetworkActor, NetworkError, NetworkInfo,
    OpenLinks, PublishPorts, ReleaseEndpoint, RestoreEndpoints,
};
use super::{ActorClient, Init, LifecycleError, Shutdown};
use crate::config::DaemonConfig;
use crate::deleter::{self, Deleter};
use crate::metrics::metrics;
use crate::monitor::spec::NetworkSpec;

/// The addresses the store talks to.
#[derive(Debug, Clone)]
pub struct Peers {
    pub graphdb: ActorClient<GraphDbActor>,
    pub graph: ActorClient<GraphActor>,
    pub network: ActorClient<NetworkActor>,
    pub exec: ActorClient<ExecActor>,
}

struct Waiter {
    condition: WaitCondition,
    tx: oneshot::Sender<WaitOutcome>,
}

/// A record and what is attached to it in memory only.
struct Entry {
    c: Container,
    starting: bool,
    /// An exit reported while the start's reply was still on its way (a very short-lived
    /// process); applied right after the start is recorded, so the order is kept.
    early_exit: Option<ContainerExited>,
    removing: bool,
    pending: Vec<PendingAttach>,
    waiters: Vec<Waiter>,
    /// The `ps` row, encoded; rebuilt when its key changes.
    row: Option<view::SummaryRow>,
    /// Set up ahead of its start by its create ([`ExecPrestart`]).
    prestart: Option<Prestarted>,
    /// Loaded from disk at Init and not started since: a crash may have left its derived
    /// files empty, which its next start writes again ([`restore_derived_files`]).
    files_unchecked: bool,
    /// The pending restart of a `restarting` container (its restart policy's timer).
    restart_timer: Option<SpawnHandle>,
    /// The restart policy's back-off (dockerd keeps it in memory too).
    backoff: restart::Backoff,
    /// A user's stop or kill is under way: its exit is not followed by a restart
    /// (dockerd's `ExitOnNext`). Cleared at each start.
    exit_on_next: bool,
    /// The next round of its health check, while it runs with one.
    health_timer: Option<SpawnHandle>,
    /// Which run of the container the health rounds belong to: bumped at each start and
    /// exit, so a probe that outlives its run is ignored.
    health_gen: u64,
}

/// A container that its create had set up ahead of the start, held by its monitor.
struct Prestarted {
    /// The address it was given then, on the bridge.
    endpoint: Option<Endpoint>,
    born: Instant,
}

/// At most this many containers are held set up ahead of their start: a burst of creates
/// with no starts (`docker create`, compose) sets up a few, not all.
const MAX_PRESTARTS: usize = 4;

/// How long a container set up by its create is held for its start: `docker run` starts
/// within milliseconds of the create.
const PRESTART_TTL: Duration = Duration::from_millis(500);

impl Entry {
    fn new(c: Container) -> Self {
        Entry {
            c,
            starting: false,
            early_exit: None,
            removing: false,
            pending: Vec::new(),
            waiters: Vec::new(),
            row: None,
            prestart: None,
            files_unchecked: false,
            restart_timer: None,
            backoff: restart::Backoff::default(),
            exit_on_next: false,
            health_timer: None,
            health_gen: 0,
        }
    }

    /// Answers the waiters whose condition an exit meets.
    fn notify_exit(&mut self) {
        let code = self.c.state.exit_code;
        let mut keep = Vec::new();
        for w in self.waiters.drain(..) {
            if w.condition == WaitCondition::Removed {
                keep.push(w);
            } else {
                let _ = w.tx.send(WaitOutcome {
                    status_code: code,
                    error: None,
                });
            }
        }
        self.waiters = keep;
    }
}

/// The container store. See the module docs.
pub struct ContainerStoreActor {
    config: Arc<DaemonConfig>,
    data_root: PathBuf,
    peers: Peers,
    persister: Option<Persister>,
    /// Deletes removed containers' dirs after their rename (shared with the graph, whose
    /// `Shutdown` drains it).
    deleter: Deleter,
    containers: HashMap<String, Entry>,
    /// `/name` → id.
    names: HashMap<String, String>,
    net: NetworkInfo,
    driver: String,
    shutting_down: bool,
    /// Our own address, for futures that must report back (a lost monitor).
    me: Option<Addr<ContainerStoreActor>>,
    /// Containers held set up ahead of their start, and creates setting one up.
    prestarts: usize,
    /// What the host can limit, for the create's checks.
    host: validate::HostCaps,
    /// The data root is in an older format: Init rewrites every record it loads.
    migrate: bool,
    /// Exec instances (`docker exec`), in memory only.
    execs: exec::ExecTable,
    /// The health probes running, by exec id: where their exit codes go.
    probe_exits: HashMap<String, oneshot::Sender<i32>>,
    /// Legacy links (`--link`), as the graph db holds them.
    links: Vec<links::Link>,
}

impl std::fmt::Debug for ContainerStoreActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerStoreActor")
            .field("containers", &self.containers.len())
            .finish_non_exhaustive()
    }
}

type Fut<T> = ResponseActFuture<ContainerStoreActor, T>;

fn ready<T: 'static>(v: T) -> Fut<T> {
    Box::pin(actix::fut::ready(v))
}

impl ContainerStoreActor {
    /// `data_root` is the resolved data root (symlinks followed); `deleter` deletes the
    /// dirs of removed containers.
    pub fn new(
        config: Arc<DaemonConfig>,
        data_root: PathBuf,
        peers: Peers,
        deleter: Deleter,
        host: validate::HostCaps,
        migrate: bool,
    ) -> Self {
        ContainerStoreActor {
            config,
            data_root,
            peers,
            persister: None,
            deleter,
            containers: HashMap::new(),
            names: HashMap::new(),
            net: NetworkInfo::default(),
            driver: String::new(),
            shutting_down: false,
            me: None,
            prestarts: 0,
            host,
            migrate,
            execs: exec::ExecTable::default(),
            probe_exits: HashMap::new(),
            links: Vec::new(),
        }
    }

    /// The daemon's settings a container's security depends on.
    fn security_defaults(&self) -> crate::security::DaemonDefaults {
        crate::security::DaemonDefaults {
            no_new_privileges: self.config.no_new_privileges,
        }
    }

    fn containers_dir(&self) -> PathBuf {
        self.data_root.join("containers")
    }

    fn persister(&self) -> Result<Persister, StoreError> {
        self.persister.clone().ok_or(StoreError::ShuttingDown)
    }

    /// Finds a container by full id, name, or unique id prefix.
    fn resolve(&self, key: &str) -> Result<String, StoreError> {
        if self.containers.contains_key(key) {
            return Ok(key.to_owned());
        }
        let name = if key.starts_with('/') {
            key.to_owned()
        } else {
            format!("/{key}")
        };
        if let Some(id) = self.names.get(&name) {
            return Ok(id.clone());
        }
        let not_found = || StoreError::NotFound { id: key.to_owned() };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        let mut found = self.containers.keys().filter(|id| id.starts_with(key));
        match (found.next(), found.next()) {
            (Some(id), None) => Ok(id.clone()),
            (Some(_), Some(_)) => Err(StoreError::Ambiguous {
                prefix: key.to_owned(),
            }),
            _ => Err(not_found()),
        }
    }

    /// The process settings of a start of `key` (`process::process_spec`), with the
    /// namespaces of the containers it joins looked up; the default for a container that
    /// cannot start (the start's own checks answer).
    fn process_spec(&self, key: &str) -> Result<crate::monitor::spec::ProcessSpec, StoreError> {
        let Some(entry) = self
            .resolve(key)
            .ok()
            .and_then(|id| self.containers.get(&id))
        else {
            return Ok(Default::default());
        };
        if entry.c.state.can_start(&entry.c.id).is_err() {
            return Ok(Default::default());
        }
        process::process_spec(&entry.c, &self.config.default_ulimits, |name| {
            let id = self.resolve(name).ok()?;
            let e = self.containers.get(&id)?;
            let running = e.c.state.is_running() && e.c.state.pid > 0;
            Some(process::Target {
                id,
                pid: running.then_some(e.c.state.pid),
                ipc_mode: e.c.host_config.ipc_mode.clone().unwrap_or_default(),
            })
        })
    }

    /// For a start of a container on another's network (`container:<id>`): that one,
    /// which must run; `None` for any other container.
    fn net_donor(&self, key: &str) -> Result<Option<NetDonor>, StoreError> {
        let Some(entry) = self
            .resolve(key)
            .ok()
            .and_then(|id| self.containers.get(&id))
        else {
            return Ok(None);
        };
        let Some(name) = process::network_donor(&entry.c.host_config) else {
            return Ok(None);
        };
        let id = self.resolve(name).map_err(|_| StoreError::NotFound {
            id: name.to_owned(),
        })?;
        if id == entry.c.id {
            return Err(StoreError::Invalid {
                message: "cannot join own network".to_owned(),
            });
        }
        let d = &self.containers[&id].c;
        if !d.state.is_running() || d.state.pid <= 0 {
            return Err(StoreError::JoinNetNotRunning {
                name: name.to_owned(),
            });
        }
        Ok(Some(NetDonor {
            pid: d.state.pid,
            dir: self.containers_dir().join(&id),
            hostname: d.config.hostname.clone().unwrap_or_default(),
            domainname: d.config.domainname.clone().unwrap_or_default(),
        }))
    }

    /// For a start of container `key`: each child it links to, which must run (dockerd's
    /// "Cannot link to a non running container"). A child removed since has no link left.
    fn link_children(&self, key: &str) -> Result<Vec<links::Child>, StoreError> {
        let Some(parent) = self
            .resolve(key)
            .ok()
            .and_then(|id| self.containers.get(&id))
        else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for l in self.links.iter().filter(|l| l.parent == parent.c.id) {
            let Some(child) = self.containers.get(&l.child) else {
                continue;
            };
            let link_name = format!("{}/{}", parent.c.name, l.alias);
            if !child.c.state.is_running() {
                return Err(StoreError::LinkNotRunning {
                    child: child.c.name.clone(),
                    link: link_name,
                });
            }
            let mut ports: Vec<(u16, String)> = child
                .c
                .config
                .exposed_ports
                .iter()
                .flat_map(|p| p.keys())
                .filter_map(|k| links::port_of(k))
                .collect();
            ports.sort();
            out.push(links::Child {
                link_name,
                alias: l.alias.clone(),
                name: child.c.name.trim_start_matches('/').to_owned(),
                hostname: child.c.config.hostname.clone().unwrap_or_default(),
                ip: child.c.endpoint.as_ref().map(|e| e.ip),
                ports,
                env: child.c.config.env.clone().unwrap_or_default(),
            });
        }
        Ok(out)
    }

    fn entry(&mut self, key: &str) -> Result<&mut Entry, StoreError> {
        let id = self.resolve(key)?;
        self.containers
            .get_mut(&id)
            .ok_or(StoreError::NotFound { id })
    }

    /// The entry of a running container; `not_running(id)` otherwise (stop answers 304,
    /// kill and resize 409).
    fn running_entry(
        &mut self,
        key: &str,
        not_running: fn(String) -> StoreError,
    ) -> Result<&mut Entry, StoreError> {
        let entry = self.entry(key)?;
        if entry.c.state.is_running() {
            Ok(entry)
        } else {
            Err(not_running(entry.c.id.clone()))
        }
    }

    /// Queues the record's state for writing (atomic, not fsynced).
    fn save_state(&self, c: &Container) {
        let Some(p) = &self.persister else { return };
        let path = self.containers_dir().join(&c.id).join("config.v2.json");
        match serde_json::to_vec(c) {
            Ok(bytes) => p.queue(&c.id, move || {
                if path.parent().is_some_and(Path::exists) {
                    crate::util::write_atomic_nosync(&path, &bytes)
                } else {
                    // Removed meanwhile: nothing to update.
                    Ok(())
                }
            }),
            Err(e) => tracing::error!(error = %e, "container record could not be encoded"),
        }
    }

    /// Removes a stopped container: its layer, its names, its runtime dir and its record.
    /// The caller has checked that it is not running and marked it `removing`.
    /// Removes a stopped container; `volumes`: its anonymous volumes too (`docker rm -v`,
    /// `--rm`), those that no other container uses.
    fn remove_stopped(&mut self, id: String, volumes: bool) -> Fut<Result<(), StoreError>> {
        // A set-up ahead goes with the cleanup below (and the address with the release).
        let _ = self.take_prestart(&id);
        let cgroup = self.containers.get(&id).map_or_else(
            || create::cgroup_path(&id),
            |e| create::container_cgroup_path(&id, &e.c.host_config),
        );
        let peers = self.peers.clone();
        let containers = self.containers_dir();
        let dir = containers.join(&id);
        let persister = self.persister.clone();
        let deleter = self.deleter.clone();
        let id2 = id.clone();
        let work = async move {
            // Usually released at the exit already; the veth deletion (which can wait for
            // the kernel's teardown of the old namespace) is not waited for.
            peers.network.do_send(ReleaseEndpoint { id: id2.clone() });
            // The layer, the names, the runtime dir and the record all go at once. The
            // record goes by one rename of its dir to a doomed name, made durable before
            // the reply; its files are deleted after it, by the deleter (a crash in between
            // leaves a doomed dir that Init deletes). A crash part way leaves either a
            // record without its layer, to remove again, or a layer, a name or both
            // without a record, which the next start-up removes (`PruneRwLayers`) and
            // releases. A failure keeps the container in memory, to remove again.
            let remove_dir = move || {
                let Some(doomed) = deleter::rename_doomed(&dir)? else {
                    return Ok(());
                };
                let synced = fs::File::open(&containers).and_then(|d| d.sync_all());
                deleter.delete(doomed);
                synced
            };
            let record = async {
                match persister {
                    Some(p) => p.run(&id2, remove_dir).await,
                    None => remove_dir(),
                }
            };
            let (layer, released, cleaned, record) = futures_util::join!(
                peers.graph.send(RemoveRwLayer {
                    container_id: id2.clone(),
                }),
                peers.graphdb.send(ReleaseEntity { id: id2.clone() }),
                peers.exec.send(CleanupContainer {
                    id: id2.clone(),
                    cgroup: Some(cgroup),
                }),
                record
            );
            if let Err(e) = cleaned {
                tracing::warn!(error = %e, container_id = %id2, "runtime dir not cleaned up");
            }
            layer.map_err(StoreError::mailbox("graph"))??;
            released.map_err(StoreError::mailbox("graphdb"))??;
            record.map_err(|source| StoreError::Persist {
                path: PathBuf::from(&id2),
                source,
            })
        };
        let graph = self.peers.graph.clone();
        Box::pin(
            actix::fut::wrap_future::<_, Self>(work)
                .map(move |res, act, _| {
                match res {
                    Ok(()) => {
                        act.execs_container_removed(&id);
                        let mut anonymous = Vec::new();
                        if let Some(mut e) = act.containers.remove(&id) {
                            if volumes {
                                anonymous = e
                                    .c
                                    .mounts()
                                    .iter()
                                    .filter(|m| m.typ == "volume" && !m.named)
                                    .map(|m| m.name.clone())
                                    .collect();
                            }
                            act.names.remove(&e.c.name);
                            // The graph db's purge took its links, both ways.
                            act.links.retain(|l| l.parent != id && l.child != id);
                            e.c.event("destroy", []);
                            let code = e.c.state.exit_code;
                            for w in e.waiters.drain(..) {
                                let _ = w.tx.send(WaitOutcome {
                                    status_code: code,
                                    error: None,
                                });
                            }
                            // Dropping pending attaches closes their hijacked streams.
                        }
                        tracing::info!(container_id = %id, "container removed");
                        let users = act.volume_users();
                        Ok((anonymous, users))
                    }
                    Err(e) => {
                        if let Some(entry) = act.containers.get_mut(&id) {
                            entry.removing = false;
                            entry.c.state.status = Status::Dead;
                            entry.c.state.error = e.to_string();
                        }
                        Err(e)
                    }
                }
            })
            .then(move |res, _, _| {
                actix::fut::wrap_future(async move {
                    let (anonymous, users) = res?;
                    // A volume another container uses stays, without an error (dockerd).
                    for name in anonymous {
                        let removed = graph
                            .send(crate::actors::graph::RemoveVolume {
                                name: name.clone(),
                                force: true,
                                users: users.clone(),
                            })
                            .await;
                        if let Ok(Err(e)) = removed {
                            tracing::debug!(volume = %name, error = %e, "anonymous volume kept");
                        }
                    }
                    Ok(())
                })
            }),
        )
    }

    /// Sends `signal`, waits `timeout` seconds for the exit, then SIGKILL (seed's stop).
    fn stop_future(
        &mut self,
        id: &str,
        signal: i32,
        timeout: Option<Duration>,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + use<> {
        let (tx, mut rx) = oneshot::channel();
        if let Some(e) = self.containers.get_mut(id) {
            e.waiters.push(Waiter {
                condition: WaitCondition::NextExit,
                tx,
            });
        }
        let thaw = self
            .containers
            .get(id)
            .and_then(|e| self.thaw_after(&e.c, signal));
        // For its `kill` events, as dockerd's stop logs each signal it sends.
        let c = self.containers.get(id).map(|e| e.c.clone());
        let exec = self.peers.exec.clone();
        let me = self.me.clone();
        let id = id.to_owned();
        async move {
            let sent = exec
                .send(SignalContainer {
                    id: id.clone(),
                    signal,
                })
                .await
                .map_err(StoreError::mailbox("exec"))?;
            if let (Ok(()), Some(c)) = (&sent, &c) {
                c.event("kill", [("signal", signal.to_string())]);
            }
            if let (Ok(()), Some(cg)) = (&sent, thaw) {
                // A paused container gets the signal once it is thawed, as under dockerd.
                live::thaw_and_report(cg, id.clone(), me.clone()).await;
            }
            if let Err(e) = sent {
                // Usually the container just exited and its exit is on its way; if none
                // comes, its monitor is gone and nothing ever will.
                tracing::debug!(error = %e, container_id = %id, "stop signal not delivered");
                if tokio::time::timeout(Duration::from_secs(2), &mut rx)
                    .await
                    .is_ok()
                {
                    return Ok(());
                }
                if let Some(me) = me {
                    me.do_send(MonitorLost { id: id.clone() });
                }
                return match tokio::time::timeout(Duration::from_secs(5), rx).await {
                    Ok(_) => Ok(()),
                    Err(_) => Err(StoreError::StopTimeout { id }),
                };
            }
            let waited = match timeout {
                Some(t) => tokio::time::timeout(t, &mut rx).await.ok(),
                None => Some((&mut rx).await),
            };
            if waited.is_some() {
                return Ok(());
            }
            tracing::info!(container_id = %id, "container did not stop in time; killing it");
            let killed = exec
                .send(SignalContainer {
                    id: id.clone(),
                    signal: libc::SIGKILL,
                })
                .await;
            if let (Ok(Ok(())), Some(c)) = (&killed, &c) {
                c.event("kill", [("signal", libc::SIGKILL.to_string())]);
            }
            match tokio::time::timeout(Duration::from_secs(30), rx).await {
                Ok(_) => Ok(()),
                Err(_) => Err(StoreError::StopTimeout { id }),
            }
        }
    }

    /// Gives container `id`'s address back and deletes its host veth. Sent at once (not
    /// from a spawned future), so it reaches the network actor before the allocation of a
    /// restart; the network actor logs a failure.
    /// Takes a container's set-up ahead, if it has one.
    fn take_prestart(&mut self, id: &str) -> Option<Prestarted> {
        let p = self.containers.get_mut(id)?.prestart.take()?;
        self.prestarts = self.prestarts.saturating_sub(1);
        Some(p)
    }

    /// Lets go of a container's set-up ahead made at `born` if no start has taken it.
    fn expire_prestart(&mut self, id: &str, born: Instant) {
        let due = self
            .containers
            .get(id)
            .is_some_and(|e| !e.starting && e.prestart.as_ref().is_some_and(|p| p.born == born));
        if due {
            if let Some(p) = self.take_prestart(id) {
                tracing::debug!(container_id = %id, "not started in time; set-up ahead undone");
                drop_prestart(&self.peers, id, &p);
            }
        }
    }

    fn release_endpoint(&self, id: &str) {
        self.peers
            .network
            .do_send(ReleaseEndpoint { id: id.to_owned() });
    }

    fn stop_signal_of(c: &Container) -> i32 {
        c.config
            .stop_signal
            .as_deref()
            .and_then(|s| state::parse_signal(s).ok())
            .unwrap_or(libc::SIGTERM)
    }
}

impl Actor for ContainerStoreActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.me = Some(ctx.address());
    }
}

/// From a stop whose container's monitor is gone (killed, or lost with the exec root): the
/// container is recorded as exited with 255, as nothing will ever report its exit.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct MonitorLost {
    id: String,
}

impl Handler<MonitorLost> for ContainerStoreActor {
    type Result = ();
    fn handle(&mut self, msg: MonitorLost, ctx: &mut Self::Context) {
        let running = self
            .containers
            .get(&msg.id)
            .is_some_and(|e| e.c.state.is_running());
        if running {
            tracing::warn!(container_id = %msg.id, "container's monitor is gone; marked exited");
            self.apply_exit(
                ContainerExited {
                    id: msg.id,
                    exit_code: 255,
                    finished_at: Utc::now(),
                    oom_killed: false,
                    monitor_lost: true,
                },
                ctx,
            );
        }
    }
}

impl Handler<Init> for ContainerStoreActor {
    type Result = Fut<Result<(), LifecycleError>>;
    fn handle(&mut self, _: Init, _: &mut Self::Context) -> Self::Result {
        let persister = match Persister::start() {
            Ok(p) => p,
            Err(e) => return ready(Err(LifecycleError::from_error(&e))),
        };
        self.persister = Some(persister);
        let dir = self.containers_dir();
        let peers = self.peers.clone();
        let deleter = self.deleter.clone();
        let data_root = self.data_root.clone();
        let migrate = self.migrate;
        let daemon_dns = self.config.dns.clone();
        let work = async move {
            let records = tokio::task::spawn_blocking({
                let dir = dir.clone();
                move || {
                    let mut loaded = load_records(&dir, &deleter)?;
                    migrate_records(&dir, &data_root, &mut loaded.records, migrate)?;
                    Ok::<_, std::io::Error>(loaded)
                }
            })
            .await
            .map_err(|e| LifecycleError(format!("loading container records: {e}")))?
            .map_err(|e| LifecycleError(format!("containers dir {}: {e}", dir.display())))?;
            let Loaded { records, ids } = records;
            // A crash between a create's layer and its record left a layer no container
            // has.
            peers
                .graph
                .send(PruneRwLayers { keep: ids })
                .await
                .map_err(|e| LifecycleError::from_error(&e))?
                .map_err(|e| LifecycleError::from_error(&e))?;
            let net = peers
                .network
                .send(GetNetworkInfo)
                .await
                .map_err(|e| LifecycleError::from_error(&e))?;
            let driver = peers
                .graph
                .send(GetDriverInfo)
                .await
                .map_err(|e| LifecycleError::from_error(&e))?
                .name;
            // Names: the database is the durable index; a record whose name it lost is
            // registered again, and a name whose record is gone is released.
            let db_names = peers
                .graphdb
                .send(ListNames)
                .await
                .map_err(|e| LifecycleError::from_error(&e))?
                .map_err(|e| LifecycleError::from_error(&e))?;
            for (name, id) in &db_names {
                if !records.iter().any(|c| &c.id == id) {
                    tracing::info!(name = %name, "releasing the name of a missing container");
                    let _ = peers.graphdb.send(ReleaseEntity { id: id.clone() }).await;
                }
            }
            let mut restored = Vec::with_capacity(records.len());
            for mut c in records {
                // A rename is committed by the database: a record written before it (a
                // crash in between) takes the database's name.
                if let Some((name, _)) = db_names.iter().find(|(_, id)| id == &c.id) {
                    let name = if name.starts_with('/') {
                        name.clone()
                    } else {
                        format!("/{name}")
                    };
                    if name != c.name {
                        tracing::info!(container_id = %c.id, from = %c.name, to = %name, "name taken from the database");
                        c.name = name;
                    }
                }
                if !db_names.iter().any(|(_, id)| id == &c.id) {
                    match peers
                        .graphdb
                        .send(ReserveName {
                            name: c.name.clone(),
                            id: c.id.clone(),
                        })
                        .await
                    {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, container_id = %c.id, "name not restored")
                        }
                        Err(e) => return Err(LifecycleError::from_error(&e)),
                    }
                }
                let was_restarting = c.state.status == Status::Restarting;
                if c.state.is_running() {
                    match peers.exec.send(RestoreContainer { id: c.id.clone() }).await {
                        Ok(Ok(RestoreState::Running { pid })) => {
                            c.state.pid = pid;
                            if was_restarting {
                                // Its restart's start was cut short after the monitor ran it.
                                c.state.status = Status::Running;
                            }
                            tracing::info!(container_id = %c.id, pid, "container still running; monitor re-attached");
                        }
                        Ok(Ok(RestoreState::Exited {
                            exit_code,
                            finished_at,
                        })) => {
                            c.state.set_exited(exit_code, finished_at, false);
                            tracing::info!(container_id = %c.id, exit_code, "container exited while the daemon was away");
                        }
                        Ok(Ok(RestoreState::Gone)) | Ok(Err(_)) if was_restarting => {
                            // Its restart was pending: exited, with its last exit code;
                            // its policy decides again below.
                            c.state.status = Status::Exited;
                            c.state.pid = 0;
                        }
                        Ok(Ok(RestoreState::Gone)) | Ok(Err(_)) => {
                            let pid = c.state.pid;
                            c.state.set_exited(255, Utc::now(), false);
                            c.state.error = state::monitor_lost_error(&c.id, pid);
                            tracing::warn!(container_id = %c.id, "container's monitor is gone; marked exited");
                        }
                        Err(e) => return Err(LifecycleError::from_error(&e)),
                    }
                }
                if !c.state.is_running() {
                    // A start that a crash cut short after the monitor ran the
                    // container, before the store recorded it: killed, so that the
                    // record holds (the start was never answered).
                    let _ = peers.exec.send(ReapOrphan { id: c.id.clone() }).await;
                    // Its namespace, and with it its veth, is gone.
                    c.endpoint = None;
                    c.extra_endpoints.clear();
                }
                restored.push(c);
            }
            // Addresses of the containers still running are taken again.
            let endpoints: Vec<_> = restored
                .iter()
                .flat_map(|c| {
                    c.endpoint
                        .iter()
                        .chain(&c.extra_endpoints)
                        .map(|ep| (c.id.clone(), ep.clone()))
                })
                .collect();
            let names = restored
                .iter()
                .map(|c| (c.id.clone(), c.name.trim_start_matches('/').to_owned()))
                .collect();
            let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            let dns = restored
                .iter()
                .filter(|c| {
                    c.state.pid > 0
                        && c.endpoint
                            .as_ref()
                            .is_some_and(|e| !e.network_name.is_empty())
                })
                .filter_map(|c| {
                    let etc =
                        EtcFiles::new(&c.config, &c.host_config, &c.network, &daemon_dns, None)
                            .ok()?;
                    Some((c.id.clone(), c.state.pid, etc.upstreams(&host_resolv)))
                })
                .collect();
            if !endpoints.is_empty() {
                peers
                    .network
                    .send(RestoreEndpoints {
                        endpoints,
                        names,
                        dns,
                    })
                    .await
                    .map_err(|e| LifecycleError::from_error(&e))?;
            }
            let db_links = peers
                .graphdb
                .send(ListLinks)
                .await
                .map_err(|e| LifecycleError::from_error(&e))?
                .map_err(|e| LifecycleError::from_error(&e))?;
            let db_links: Vec<links::Link> = db_links
                .into_iter()
                .map(|(parent, alias, child)| links::Link {
                    parent,
                    alias,
                    child,
                })
                .filter(|l| {
                    let known = |id: &str| restored.iter().any(|c| c.id == id);
                    known(&l.parent) && known(&l.child)
                })
                .collect();
            Ok((restored, net, driver, db_links))
        };
        Box::pin(
            actix::fut::wrap_future::<_, Self>(work)
                .map(|res, act, ctx| {
                    let (records, net, driver, db_links) = res?;
                    act.links = db_links;
                    act.net = net;
                    act.driver = driver;
                    let mut auto_remove = Vec::new();
                    for mut c in records {
                        if c.state.is_running() && c.state.status != Status::Restarting {
                            // Paused or not as the freezer says: a pause or unpause may have
                            // been cut short by the restart of berthd.
                            c.state.status = if act.frozen_now(&c) {
                                Status::Paused
                            } else {
                                Status::Running
                            };
                        }
                        act.names.insert(c.name.clone(), c.id.clone());
                        if !c.state.is_running() && c.auto_remove() && c.state.started_at.is_some()
                        {
                            auto_remove.push(c.id.clone());
                        }
                        act.save_state(&c);
                        let mut entry = Entry::new(c);
                        entry.files_unchecked = true;
                        act.containers.insert(entry.c.id.clone(), entry);
                    }
                    for id in auto_remove {
                        if let Some(e) = act.containers.get_mut(&id) {
                            e.removing = true;
                        }
                        ctx.spawn(act.remove_stopped(id, true).map(|_, _, _| ()));
                    }
                    let live: Vec<String> = act
                        .containers
                        .values()
                        .filter(|e| matches!(e.c.state.status, Status::Running | Status::Paused))
                        .map(|e| e.c.id.clone())
                        .collect();
                    for id in live {
                        // As dockerd's restore: a running container's check starts again.
                        act.start_health(&id, ctx);
                    }
                    tracing::info!(
                        containers = act.containers.len(),
                        "container records loaded"
                    );
                    Ok(act.restart_at_boot(ctx))
                })
                .then(|res: Result<_, LifecycleError>, _, _| {
                    actix::fut::wrap_future(async move {
                        res?.await;
                        Ok(())
                    })
                }),
        )
    }
}

impl Handler<Shutdown> for ContainerStoreActor {
    type Result = Fut<Result<(), LifecycleError>>;
    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        self.shutting_down = true;
        self.cancel_restarts(ctx);
        if self.config.live_restore {
            tracing::info!("live-restore: containers keep running");
            return ready(Ok(()));
        }
        // A container's own stop timeout (`--stop-timeout`, negative: no SIGKILL) as
        // dockerd's shutdownContainer; without one, the daemon's --shutdown-timeout.
        let default = Duration::from_secs(self.config.shutdown_timeout);
        let running: Vec<(String, i32, Option<Duration>)> = self
            .containers
            .values()
            .filter(|e| e.c.state.is_running())
            .map(|e| {
                let timeout = match e.c.config.stop_timeout {
                    Some(secs) => u64::try_from(secs).ok().map(Duration::from_secs),
                    None => Some(default),
                };
                (e.c.id.clone(), Self::stop_signal_of(&e.c), timeout)
            })
            .collect();
        let stops: Vec<_> = running
            .iter()
            .map(|(id, sig, timeout)| self.stop_future(id, *sig, *timeout))
            .collect();
        let n = stops.len();
        Box::pin(actix::fut::wrap_future(async move {
            let results = join_all(stops).await;
            let failed = results.iter().filter(|r| r.is_err()).count();
            tracing::info!(
                stopped = n - failed,
                failed,
                "containers stopped for shutdown"
            );
            if failed > 0 {
                return Err(LifecycleError(format!("{failed} containers did not stop")));
            }
            Ok(())
        }))
    }
}

/// dockerd's network event of container `c` joining (`connect`, at each start) or
/// leaving (`disconnect`, at each exit) its predefined network; none on another
/// container's network.
fn network_event(net: &NetworkInfo, c: &Container, action: &str) {
    if process::network_donor(&c.host_config).is_some() {
        return;
    }
    let name = view::network_name(c);
    let driver = match name {
        "none" => "null",
        "host" => "host",
        _ => "bridge",
    };
    let id = match c.endpoint.as_ref() {
        Some(ep) => ep.network_id.clone(),
        None => net.user.find(name).map_or_else(
            || crate::actors::network::predefined_network_id(name, net),
            |r| r.id,
        ),
    };
    crate::events::events().other(
        crate::events::Kind::Network,
        action,
        &id,
        [
            ("container", c.id.clone()),
            ("name", name.to_owned()),
            ("type", driver.to_owned()),
        ],
    );
}

/// dockerd's network event of a container joining or leaving a user-defined network it
/// was connected to (`ep`, eth1..), at its start and exit.
fn extra_network_event(ep: &Endpoint, container: &str, action: &str) {
    crate::events::events().other(
        crate::events::Kind::Network,
        action,
        &ep.network_id,
        [
            ("container", container.to_owned()),
            ("name", ep.network_name.clone()),
            ("type", "bridge".to_owned()),
        ],
    );
}

/// The user-defined networks a start of `c` joins: its `NetworkMode`'s (eth0), if that
/// is one, and the others it was connected to, whose networks still exist (eth1..).
fn user_attachments(
    net: &NetworkInfo,
    c: &Container,
) -> Result<(Option<Attachment>, Vec<Attachment>), StoreError> {
    let mode = c.network_mode();
    let primary = match (&c.network, mode) {
        (NetworkSpec::New, "default" | "bridge" | "") => None,
        (NetworkSpec::New, m) => {
            let rec = net.user.find(m).ok_or_else(|| StoreError::Invalid {
                message: format!("network {m} not found"),
            })?;
            Some(
                c.attachments
                    .iter()
                    .find(|a| a.network_id == rec.id)
                    .cloned()
                    .unwrap_or(Attachment {
                        network_id: rec.id,
                        name: rec.name,
                        ..Attachment::default()
                    }),
            )
        }
        _ => None,
    };
    let extras = c
        .attachments
        .iter()
        .filter(|a| {
            primary
                .as_ref()
                .is_none_or(|p| p.network_id != a.network_id)
        })
        .filter(|a| net.user.get(&a.network_id).is_some())
        .cloned()
        .collect();
    Ok((primary, extras))
}

/// The container whose network a start joins (`--network container:<id>`).
#[derive(Debug)]
struct NetDonor {
    /// Its init's host pid: the namespace is its `/proc/PID/ns/net`.
    pid: i32,
    /// Its dir, whose hosts, hostname and resolv.conf the joiner mounts.
    dir: std::path::PathBuf,
    hostname: String,
    domainname: String,
}

impl Handler<StartContainer> for ContainerStoreActor {
    type Result = Fut<Result<(), StoreError>>;
    fn handle(&mut self, msg: StartContainer, ctx: &mut Self::Context) -> Self::Result {
        self.start(&msg.id, false, ctx)
    }
}

impl ContainerStoreActor {
    /// Starts container `key`: a user's start (`by_policy` false: the restart count, the
    /// back-off and the manual stop are reset, as dockerd's `ResetRestartManager`), or
    /// its restart policy's (the container is `restarting`).
    fn start(
        &mut self,
        key: &str,
        by_policy: bool,
        ctx: &mut Context<Self>,
    ) -> Fut<Result<(), StoreError>> {
        if self.shutting_down {
            return ready(Err(StoreError::ShuttingDown));
        }
        let containers_dir = self.containers_dir();
        let exec_root = self.config.exec_root.clone();
        let process = match self.process_spec(key) {
            Ok(p) => p,
            Err(e) => {
                self.refuse_start(key, &e, ctx);
                return ready(Err(e));
            }
        };
        let donor = match self.net_donor(key) {
            Ok(d) => d,
            Err(e) => {
                self.refuse_start(key, &e, ctx);
                return ready(Err(e));
            }
        };
        let children = match self.link_children(key) {
            Ok(c) => c,
            Err(e) => {
                self.refuse_start(key, &e, ctx);
                return ready(Err(e));
            }
        };
        let security_defaults = self.security_defaults();
        let default_ip = self
            .config
            .default_bind_ip
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
        let (daemon_config, gateway) = (self.config.clone(), self.net.gateway);
        let net_info = self.net.clone();
        let entry = match self.entry(key) {
            Ok(e) => e,
            Err(e) => return ready(Err(e)),
        };
        let id = entry.c.id.clone();
        if entry.removing {
            return ready(Err(StoreError::RemovalInProgress { id }));
        }
        if by_policy {
            if entry.c.state.status != Status::Restarting {
                return ready(Err(StoreError::NotRunning { id }));
            }
        } else if let Err(e) = entry.c.state.can_start(&id) {
            return ready(Err(e));
        }
        if entry.starting {
            return ready(Err(StoreError::AlreadyRunning { id }));
        }
        // The compiled seccomp program comes from the cache the create filled.
        let security = match crate::security::for_container(&entry.c.host_config, security_defaults)
        {
            Ok(s) => s,
            Err(e) => {
                let e = StoreError::from(e);
                self.refuse_start(key, &e, ctx);
                return ready(Err(e));
            }
        };
        entry.starting = true;
        entry.exit_on_next = false;
        if !by_policy {
            entry.c.restart_count = 0;
            entry.c.has_been_manually_stopped = false;
            entry.backoff = restart::Backoff::default();
        }
        let mut spec = create::build_spec(&entry.c, &containers_dir.join(&id), &exec_root);
        spec.process = process;
        spec.security = security;
        // On another container's network: its namespace, its name and its files.
        let mut donor_netns = None;
        if let Some(d) = &donor {
            match std::fs::File::open(format!("/proc/{}/ns/net", d.pid)) {
                Ok(f) => donor_netns = Some(std::os::fd::OwnedFd::from(f)),
                Err(_) => {
                    entry.starting = false;
                    return ready(Err(StoreError::JoinNetNotRunning {
                        name: d
                            .dir
                            .file_name()
                            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                    }));
                }
            }
            spec.hostname = d.hostname.clone();
            spec.domainname = d.domainname.clone();
            for m in &mut spec.mounts {
                let file = match m.destination.as_str() {
                    "/etc/hosts" => "hosts",
                    "/etc/hostname" => "hostname",
                    "/etc/resolv.conf" => "resolv.conf",
                    _ => continue,
                };
                m.source = d.dir.join(file);
            }
            entry.c.config.hostname = Some(d.hostname.clone());
            entry.c.config.domainname = Some(d.domainname.clone());
        }
        let attaches = std::mem::take(&mut entry.pending);
        let network_label = match entry.c.network {
            NetworkSpec::None => "none",
            NetworkSpec::Host => "host",
            NetworkSpec::New => "bridge",
        };
        let bridged = entry.c.network == NetworkSpec::New;
        let own_netns = entry.c.network != NetworkSpec::Host && donor_netns.is_none();
        let port_requests = if bridged {
            match ports::requests(&entry.c.host_config, &entry.c.config, default_ip) {
                Ok(r) => r,
                Err(e) => {
                    entry.starting = false;
                    return ready(Err(e));
                }
            }
        } else {
            Vec::new()
        };
        let mut etc = match EtcFiles::new(
            &entry.c.config,
            &entry.c.host_config,
            &entry.c.network,
            &daemon_config.dns,
            gateway,
        ) {
            Ok(etc) => etc,
            Err(e) => {
                entry.starting = false;
                return ready(Err(e));
            }
        };
        // User-defined networks: its own (eth0), and the ones it was connected to (eth1..).
        let (primary, extras) = match user_attachments(&net_info, &entry.c) {
            Ok(x) => x,
            Err(e) => {
                entry.starting = false;
                return ready(Err(e));
            }
        };
        etc.embedded_dns = primary.is_some();
        let short_name = entry.c.name.trim_start_matches('/').to_owned();
        // Links: the children in /etc/hosts and their legacy environment.
        let mut link_ports = Vec::new();
        for ch in &children {
            if let Some(ip) = ch.ip {
                etc.extra_hosts
                    .push((ch.host_names(), std::net::IpAddr::V4(ip)));
                link_ports.extend(ch.ports.iter().map(|(p, proto)| (ip, proto.clone(), *p)));
            }
        }
        links::merge_env(
            &mut spec.env,
            children.iter().flat_map(links::Child::env).collect(),
        );
        let container_name = entry.c.name.clone();
        let mac = entry
            .c
            .config
            .mac_address
            .as_deref()
            .and_then(crate::actors::network::bridge::parse_mac);
        let mut prestart = entry.prestart.take();
        let check_files = std::mem::take(&mut entry.files_unchecked);
        if prestart.is_some() {
            self.prestarts = self.prestarts.saturating_sub(1);
        }
        if let (Some(p), false) = (&prestart, extras.is_empty()) {
            // Connected to more networks since its create: its namespace is made now, to
            // wire them too.
            drop_prestart(&self.peers, &id, p);
            prestart = None;
        }
        let exec = self.peers.exec.clone();
        let network = self.peers.network.clone();
        let persister = self.persister.clone();
        let dir = containers_dir.join(&id);
        let hosts = dir.join("hosts");
        let t0 = Instant::now();
        let id2 = id.clone();
        let work = async move {
            let mut start = ExecStart::new(spec, attaches);
            let mut endpoint = None;
            if let Some(p) = prestart {
                // Set up by the create, in the namespace taken then.
                start.prestarted = true;
                endpoint = p.endpoint;
            } else {
                if check_files {
                    let (dir2, etc2) = (dir.clone(), etc.clone());
                    let restore = move || restore_derived_files(&dir2, &etc2);
                    let restored = match &persister {
                        Some(p) => p.run(&id2, restore).await,
                        None => restore(),
                    };
                    if let Err(source) = restored {
                        return (
                            Err(StoreError::Persist { path: dir, source }),
                            None,
                            Vec::new(),
                        );
                    }
                }
                if let Some(ns) = donor_netns {
                    start.netns = Some(ns);
                } else if own_netns {
                    let user = primary.map(|a| (a, short_name.clone()));
                    let sb =
                        take_sandbox(&network, persister, &id2, bridged, hosts, &etc, mac, user);
                    match sb.await {
                        Ok(sb) => {
                            endpoint = sb.endpoint;
                            start.netns = Some(sb.netns);
                        }
                        Err(e) => return (Err(e), None, Vec::new()),
                    }
                }
            }
            // The other networks it is connected to, each one more interface.
            let mut more = Vec::new();
            if let (Some(ns), false) = (start.netns.as_ref(), extras.is_empty()) {
                let ns = match ns.try_clone() {
                    Ok(ns) => std::sync::Arc::new(ns),
                    Err(e) => {
                        return (
                            Err(StoreError::from(NetworkError::Sandbox { source: e })),
                            endpoint,
                            more,
                        );
                    }
                };
                for (i, attach) in extras.into_iter().enumerate() {
                    let connected = network
                        .send(ConnectEndpoint {
                            id: id2.clone(),
                            name: short_name.clone(),
                            netns: ns.clone(),
                            ifname: format!("eth{}", i + 1),
                            attach,
                        })
                        .await
                        .map_err(StoreError::mailbox("network"))
                        .and_then(|r| r.map_err(StoreError::from));
                    match connected {
                        Ok(ep) => more.push(ep),
                        Err(e) => return (Err(e), endpoint, more),
                    }
                }
            }
            if let (Some(ep), false, false) =
                (endpoint.as_ref(), link_ports.is_empty(), daemon_config.icc)
            {
                let opened = network
                    .send(OpenLinks {
                        id: id2.clone(),
                        ip: ep.ip,
                        ports: link_ports,
                    })
                    .await
                    .map_err(StoreError::mailbox("network"))
                    .and_then(|r| r.map_err(StoreError::from));
                if let Err(e) = opened {
                    return (Err(e), endpoint, more);
                }
            }
            if let (Some(ep), false) = (endpoint.as_mut(), port_requests.is_empty()) {
                let published = network
                    .send(PublishPorts {
                        id: id2.clone(),
                        name: container_name,
                        endpoint_id: ep.endpoint_id.clone(),
                        ip: ep.ip,
                        requests: port_requests,
                    })
                    .await
                    .map_err(StoreError::mailbox("network"))
                    .and_then(|r| r.map_err(StoreError::from));
                match published {
                    Ok(mapped) => ep.ports = mapped,
                    Err(e) => return (Err(e), endpoint, more),
                }
            }
            let res = exec
                .send(start)
                .await
                .map_err(StoreError::mailbox("exec"))
                .and_then(|r| r.map_err(StoreError::from));
            (res, endpoint, more)
        };
        Box::pin(actix::fut::wrap_future::<_, Self>(work).map(
            move |(res, endpoint, more), act, ctx| {
                if (endpoint.is_some() || !more.is_empty()) && res.is_err() {
                    act.release_endpoint(&id);
                }
                let Some(entry) = act.containers.get_mut(&id) else {
                    return Err(StoreError::NotFound { id });
                };
                entry.starting = false;
                match res {
                    Ok(started) => {
                        entry.c.state.set_running(started.pid, started.started_at);
                        entry.c.endpoint = endpoint;
                        entry.c.extra_endpoints = more;
                        act.start_health(&id, ctx);
                        let Some(entry) = act.containers.get_mut(&id) else {
                            return Err(StoreError::NotFound { id });
                        };
                        metrics()
                            .container_start
                            .with_label_values(&[network_label])
                            .observe(t0.elapsed().as_secs_f64());
                        tracing::info!(container_id = %id, pid = started.pid, "container started");
                        let c = entry.c.clone();
                        network_event(&act.net, &c, "connect");
                        for ep in &c.extra_endpoints {
                            extra_network_event(ep, &c.id, "connect");
                        }
                        c.event("start", []);
                        let early_exit = entry.early_exit.take();
                        if by_policy && entry.exit_on_next && early_exit.is_none() {
                            // A stop or kill cancelled this restart while it started.
                            act.peers.exec.do_send(SignalContainer {
                                id: id.clone(),
                                signal: libc::SIGKILL,
                            });
                        }
                        act.save_state(&c);
                        if let Some(exit) = early_exit {
                            act.apply_exit(exit, ctx);
                        }
                        Ok(())
                    }
                    Err(e) => {
                        entry.early_exit = None;
                        entry.files_unchecked |= check_files;
                        entry.c.state.error = e.to_string();
                        if let StoreError::Exec(ExecError::StartFailed { message, .. }) = &e {
                            entry.c.state.exit_code = if message.contains("permission denied") {
                                126
                            } else {
                                127
                            };
                        }
                        let c = entry.c.clone();
                        act.save_state(&c);
                        if c.auto_remove() {
                            if let Some(entry) = act.containers.get_mut(&id) {
                                entry.removing = true;
                            }
                            ctx.spawn(act.remove_stopped(id.clone(), true).map(|_, _, _| ()));
                        }
                        Err(e)
                    }
                }
            },
        ))
    }
}

impl Handler<ContainerExited> for ContainerStoreActor {
    type Result = ();
    fn handle(&mut self, msg: ContainerExited, ctx: &mut Self::Context) {
        match self.containers.get_mut(&msg.id) {
            Some(entry) if entry.starting => entry.early_exit = Some(msg),
            Some(_) => self.apply_exit(msg, ctx),
            None => {}
        }
    }
}

impl ContainerStoreActor {
    /// A start refused before anything ran (the namespaces it joins are not there): the
    /// error is recorded, the waiting attaches are let go, and a `--rm` container is
    /// removed, as after a failed start (the CLI's `docker run --rm` waits for that).
    fn refuse_start(&mut self, key: &str, e: &StoreError, ctx: &mut Context<Self>) {
        let Ok(entry) = self.entry(key) else {
            return;
        };
        if entry.starting || entry.removing || entry.c.state.is_running() {
            return;
        }
        entry.c.state.error = e.to_string();
        drop(std::mem::take(&mut entry.pending));
        let c = entry.c.clone();
        let remove = c.auto_remove();
        if remove {
            entry.removing = true;
        }
        self.save_state(&c);
        if remove {
            ctx.spawn(self.remove_stopped(c.id.clone(), true).map(|_, _, _| ()));
        }
    }

    /// Records an exit: state, waiters, the record, and `--rm`.
    fn apply_exit(&mut self, msg: ContainerExited, ctx: &mut Context<Self>) {
        self.stop_health(&msg.id, ctx);
        let Some(entry) = self.containers.get_mut(&msg.id) else {
            return;
        };
        let pid = entry.c.state.pid;
        entry
            .c
            .state
            .set_exited(msg.exit_code, msg.finished_at, msg.oom_killed);
        if msg.monitor_lost {
            entry.c.state.error = state::monitor_lost_error(&msg.id, pid);
        }
        entry.notify_exit();
        tracing::info!(container_id = %msg.id, exit_code = msg.exit_code, "container exited");
        // Its restart policy may make it `restarting` (dockerd sets that before the
        // `die` event, which every exit publishes; the restart publishes `start`).
        let restarting = self.plan_restart(&msg.id, ctx);
        let Some(entry) = self.containers.get_mut(&msg.id) else {
            return;
        };
        if msg.oom_killed {
            entry.c.event("oom", []);
        }
        entry
            .c
            .event("die", [("exitCode", msg.exit_code.to_string())]);
        let c = entry.c.clone();
        network_event(&self.net, &c, "disconnect");
        for ep in &c.extra_endpoints {
            extra_network_event(ep, &c.id, "disconnect");
        }
        self.execs.container_exited(&msg.id);
        let Some(entry) = self.containers.get_mut(&msg.id) else {
            return;
        };
        let had_endpoint = entry.c.endpoint.take().is_some()
            | !std::mem::take(&mut entry.c.extra_endpoints).is_empty();
        let c = entry.c.clone();
        let auto_remove = c.auto_remove() && !restarting && !entry.removing && !self.shutting_down;
        if auto_remove {
            entry.removing = true;
        }
        self.save_state(&c);
        if had_endpoint {
            self.release_endpoint(&msg.id);
        }
        if auto_remove {
            ctx.spawn(self.remove_stopped(msg.id, true).map(|_, _, _| ()));
        }
    }
}

impl Handler<StopContainer> for ContainerStoreActor {
    type Result = Fut<Result<(), StoreError>>;
    fn handle(&mut self, msg: StopContainer, ctx: &mut Self::Context) -> Self::Result {
        let entry = match self.running_entry(&msg.id, |id| StoreError::NotRunning { id }) {
            Ok(e) => e,
            Err(e) => return ready(Err(e)),
        };
        let id = entry.c.id.clone();
        let signal = match state::signal_or(msg.signal.as_deref(), Self::stop_signal_of(&entry.c)) {
            Ok(s) => s,
            Err(e) => return ready(Err(e)),
        };
        let secs = msg
            .timeout
            .unwrap_or_else(|| entry.c.config.stop_timeout.unwrap_or(10));
        let timeout = u64::try_from(secs).ok().map(Duration::from_secs);
        if entry.c.state.status == Status::Restarting {
            return self.stop_restarting(&id, ctx);
        }
        // A user's stop: no restart follows (the SIGKILL after the timeout is this stop's).
        self.manual_stop(&id, true, ctx);
        Box::pin(
            actix::fut::wrap_future::<_, Self>(self.stop_future(&id, signal, timeout)).map(
                move |res, act, _| {
                    if res.is_ok()
                        && let Some(e) = act.containers.get(&id)
                    {
                        e.c.event("stop", []);
                    }
                    res
                },
            ),
        )
    }
}

impl Handler<KillContainer> for ContainerStoreActor {
    type Result = Fut<Result<(), StoreError>>;
    fn handle(&mut self, msg: KillContainer, ctx: &mut Self::Context) -> Self::Result {
        let entry = match self.running_entry(&msg.id, |id| StoreError::KillNotRunning { id }) {
            Ok(e) => e,
            Err(e) => return ready(Err(e)),
        };
        let id = entry.c.id.clone();
        let signal = match state::signal_or(msg.signal.as_deref(), libc::SIGKILL) {
            Ok(s) => s,
            Err(e) => return ready(Err(e)),
        };
        // dockerd's `killWithSignal`: SIGKILL, the stop signal, or any signal when the
        // container names none, means no restart after the exit; every kill counts as a
        // manual stop; a restarting container needs no signal, its restart is cancelled.
        let own_stop_signal = entry
            .c
            .config
            .stop_signal
            .as_deref()
            .filter(|s| !s.is_empty());
        let exit_on_next = signal == libc::SIGKILL
            || own_stop_signal.is_none()
            || signal == Self::stop_signal_of(&entry.c);
        if self.manual_stop(&id, exit_on_next, ctx) {
            return ready(Ok(()));
        }
        let Some(entry) = self.containers.get(&id) else {
            return ready(Err(StoreError::NotFound { id }));
        };
        let c = entry.c.clone();
        let thaw = self.thaw_after(&c, signal);
        let exec = self.peers.exec.clone();
        let me = self.me.clone();
        Box::pin(actix::fut::wrap_future(async move {
            exec.send(SignalContainer {
                id: id.clone(),
                signal,
            })
            .await
            .map_err(StoreError::mailbox("exec"))?
            .map_err(StoreError::from)?;
            c.event("kill", [("signal", signal.to_string())]);
            if let Some(cg) = thaw {
                // A paused container gets the signal once it is thawed, as under dockerd.
                live::thaw_and_report(cg, id, me).await;
            }
            Ok(())
        }))
    }
}

impl Handler<RemoveContainer> for ContainerStoreActor {
    type Result = Fut<Result<(), StoreError>>;
    fn handle(&mut self, msg: RemoveContainer, ctx: &mut Self::Context) -> Self::Result {
        let entry = match self.entry(&msg.id) {
            Ok(e) => e,
            Err(e) => return ready(Err(e)),
        };
        let id = entry.c.id.clone();
        if entry.removing {
            return ready(Err(StoreError::RemovalInProgress { id }));
        }
        let running = entry.c.state.is_running() || entry.starting;
        if running && !msg.force {
            return ready(Err(StoreError::RemoveRunning { id }));
        }
        entry.removing = true;
        let volumes = msg.volumes;
        if entry.c.state.status == Status::Restarting && !entry.starting {
            // Nothing runs: the pending restart is cancelled.
            self.manual_stop(&id, true, ctx);
            return self.remove_stopped(id, msg.volumes);
        }
        if !running {
            return self.remove_stopped(id, msg.volumes);
        }
        let kill = self.stop_future(&id, libc::SIGKILL, Some(Duration::ZERO));
        Box::pin(actix::fut::wrap_future::<_, Self>(kill).then(
            move |res, act, _| -> Fut<Result<(), StoreError>> {
                match res {
                    Ok(()) => act.remove_stopped(id, volumes),
                    Err(e) => {
                        if let Some(entry) = act.containers.get_mut(&id) {
                            entry.removing = false;
                        }
                        ready(Err(e))
                    }
                }
            },
        ))
    }
}

impl Handler<ListContainers> for ContainerStoreActor {
    type Result = Result<bytes::Bytes, StoreError>;
    fn handle(&mut self, msg: ListContainers, _: &mut Self::Context) -> Self::Result {
        let now = Utc::now();
        let mut filter = msg.filter;
        if let Some(f) = &mut filter {
            view::resolve_filter(f, self.containers.values().map(|e| &e.c))?;
        }
        let limit = msg.limit.filter(|l| *l > 0);
        let all = msg.all || limit.is_some() || filter.as_ref().is_some_and(|f| f.lists_stopped());
        let mut rows: Vec<&mut Entry> = self
            .containers
            .values_mut()
            .filter(|e| all || e.c.state.is_running())
            .filter(|e| {
                filter
                    .as_ref()
                    .is_none_or(|f| f.matches(&view::filter_view(&e.c)))
            })
            .collect();
        rows.sort_by_key(|e| std::cmp::Reverse(e.c.created));
        if let Some(limit) = limit {
            rows.truncate(limit);
        }
        let mut out = Vec::with_capacity(64 + rows.len() * 768);
        out.push(b'[');
        for (i, e) in rows.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if e.row.as_ref().is_none_or(|r| !r.key.matches(&e.c)) {
                e.row = Some(view::SummaryRow::build(&e.c));
            }
            if let Some(row) = &e.row {
                row.write(&e.c, now, &mut out);
            }
        }
        out.push(b']');
        Ok(bytes::Bytes::from(out))
    }
}

impl Handler<RemoveLink> for ContainerStoreActor {
    type Result = Fut<Result<(), StoreError>>;
    fn handle(&mut self, msg: RemoveLink, _: &mut Self::Context) -> Self::Result {
        let full = format!("/{}/{}", msg.parent, msg.alias);
        let Some(parent) = self.resolve(&msg.parent).ok() else {
            return ready(Err(StoreError::NotFound { id: full }));
        };
        let before = self.links.len();
        self.links
            .retain(|l| !(l.parent == parent && l.alias == msg.alias));
        if self.links.len() == before {
            return ready(Err(StoreError::NotFound { id: full }));
        }
        let graphdb = self.peers.graphdb.clone();
        Box::pin(actix::fut::wrap_future(async move {
            graphdb
                .send(crate::actors::graphdb::RemoveLink {
                    parent,
                    alias: msg.alias,
                })
                .await
                .map_err(StoreError::mailbox("graphdb"))?
                .map_err(StoreError::from)?;
            Ok(())
        }))
    }
}

impl Handler<InspectContainer> for ContainerStoreActor {
    type Result = Result<Value, StoreError>;
    fn handle(&mut self, msg: InspectContainer, _: &mut Self::Context) -> Self::Result {
        let data_root = self.data_root.clone();
        let entry = self.entry(&msg.id)?;
        let status = if entry.removing {
            Status::Removing
        } else {
            entry.c.state.status
        };
        let mut doc = view::inspect(&entry.c, &data_root, status);
        let id = entry.c.id.clone();
        let parent_name = entry.c.name.clone();
        // Links as dockerd shows them: `/child:/parent/alias`, by today's names.
        let links: Vec<String> = self
            .links
            .iter()
            .filter(|l| l.parent == id)
            .filter_map(|l| {
                let child = self.containers.get(&l.child)?;
                Some(format!("{}:{}/{}", child.c.name, parent_name, l.alias))
            })
            .collect();
        // As dockerd's inspect: the link index, not the request (null without links).
        doc["HostConfig"]["Links"] = if links.is_empty() {
            Value::Null
        } else {
            Value::from(links)
        };
        if let (Some(ids), Some(obj)) = (self.exec_ids(&id), doc.as_object_mut()) {
            obj.insert("ExecIDs".to_owned(), Value::from(ids));
        }
        Ok(doc)
    }
}

impl Handler<WaitContainer> for ContainerStoreActor {
    type Result = Result<oneshot::Receiver<WaitOutcome>, StoreError>;
    fn handle(&mut self, msg: WaitContainer, _: &mut Self::Context) -> Self::Result {
        let entry = self.entry(&msg.id)?;
        let (tx, rx) = oneshot::channel();
        if msg.condition == WaitCondition::NotRunning
            && !entry.c.state.is_running()
            && !entry.starting
        {
            let _ = tx.send(WaitOutcome {
                status_code: entry.c.state.exit_code,
                error: None,
            });
        } else {
            entry.waiters.push(Waiter {
                condition: msg.condition,
                tx,
            });
        }
        Ok(rx)
    }
}

impl Handler<AttachToContainer> for ContainerStoreActor {
    type Result = Fut<Result<AttachStream, StoreError>>;
    fn handle(&mut self, msg: AttachToContainer, _: &mut Self::Context) -> Self::Result {
        let entry = match self.entry(&msg.id) {
            Ok(e) => e,
            Err(e) => return ready(Err(e)),
        };
        let id = entry.c.id.clone();
        if entry.c.state.status == Status::Paused {
            return ready(Err(StoreError::AttachPaused { id: msg.id }));
        }
        entry.c.event("attach", []);
        if entry.c.state.is_running() && !entry.starting {
            let exec = self.peers.exec.clone();
            return Box::pin(actix::fut::wrap_future(async move {
                let stream = exec
                    .send(AttachContainer {
                        id,
                        options: msg.options,
                    })
                    .await
                    .map_err(StoreError::mailbox("exec"))??;
                Ok(AttachStream::Ready(stream))
            }));
        }
        // Not started yet (docker run, docker start -a): the stream arrives at start.
        let (tx, rx) = oneshot::channel();
        entry.pending.push(PendingAttach {
            options: msg.options,
            reply: tx,
        });
        ready(Ok(AttachStream::Pending(rx)))
    }
}

impl Handler<ResizeTty> for ContainerStoreActor {
    type Result = Fut<Result<(), StoreError>>;
    fn handle(&mut self, msg: ResizeTty, _: &mut Self::Context) -> Self::Result {
        let entry = match self.running_entry(&msg.id, |id| StoreError::KillNotRunning { id }) {
            Ok(e) => e,
            Err(e) => return ready(Err(e)),
        };
        let id = entry.c.id.clone();
        entry.c.event(
            "resize",
            [
                ("height", msg.height.to_string()),
                ("width", msg.width.to_string()),
            ],
        );
        let exec = self.peers.exec.clone();
        Box::pin(actix::fut::wrap_future(async move {
            exec.send(ResizeContainer {
                id,
                height: msg.height,
                width: msg.width,
            })
            .await
            .map_err(StoreError::mailbox("exec"))?
            .map_err(StoreError::from)
        }))
    }
}

impl ContainerStoreActor {
    /// Container ids by the volumes they mount.
    fn volume_users(&self) -> crate::actors::graph::VolumeUsers {
        let mut users = crate::actors::graph::VolumeUsers::new();
        for e in self.containers.values() {
            for m in e.c.mounts().iter().filter(|m| m.typ == "volume") {
                users
                    .entry(m.name.clone())
                    .or_default()
                    .push(e.c.id.clone());
            }
        }
        users
    }
}

impl Handler<PruneCandidates> for ContainerStoreActor {
    type Result = Result<Vec<crate::actors::graph::ImageUser>, StoreError>;
    fn handle(&mut self, msg: PruneCandidates, _: &mut Self::Context) -> Self::Result {
        let f = &msg.filters;
        f.validate(&["until", "label", "label!"])?;
        let now = Utc::now();
        let until: Vec<chrono::DateTime<Utc>> = f
            .get("until")
            .map(|v| crate::actors::graph::store::parse_until(v, now))
            .collect::<Result<_, _>>()?;
        Ok(self
            .containers
            .values()
            .filter(|e| !e.c.state.is_running() && !e.starting && !e.removing)
            .filter(|e| until.iter().all(|u| e.c.created < *u))
            .filter(|e| {
                let labels = crate::model::filters::label_pairs(e.c.config.labels.iter().flatten());
                f.match_kv_list("label", &labels) && f.match_kv_none("label!", &labels)
            })
            .map(|e| crate::actors::graph::ImageUser {
                container_id: e.c.id.clone(),
                image_id: e.c.image.clone(),
                running: false,
            })
            .collect())
    }
}

impl Handler<RenameContainer> for ContainerStoreActor {
    type Result = Fut<Result<(), StoreError>>;
    /// The new name is held at once (a create or rename racing for it conflicts); the
    /// database's commit is the rename, then the record follows.
    fn handle(&mut self, msg: RenameContainer, _: &mut Self::Context) -> Self::Result {
        if msg.name.trim_start_matches('/').is_empty() {
            return ready(Err(StoreError::Invalid {
                message: "Neither old nor new names may be empty".to_owned(),
            }));
        }
        let new = match state::validate_name(&msg.name) {
            Ok(n) => n,
            Err(e) => return ready(Err(e)),
        };
        let (id, old) = match self.entry(&msg.id) {
            Ok(e) => (e.c.id.clone(), e.c.name.clone()),
            Err(e) => return ready(Err(e)),
        };
        if new == old {
            return ready(Err(StoreError::Invalid {
                message: "Renaming a container with the same name as its current name".to_owned(),
            }));
        }
        if let Some(holder) = self.names.get(&new) {
            return ready(Err(StoreError::GraphDb(
                crate::actors::graphdb::GraphDbError::NameInUse {
                    name: new,
                    holder: holder.clone(),
                },
            )));
        }
        self.names.insert(new.clone(), id.clone());
        let graphdb = self.peers.graphdb.clone();
        let (id2, old2, new2) = (id.clone(), old.clone(), new.clone());
        let work = async move {
            graphdb
                .send(RenameEntity {
                    id: id2,
                    old: old2,
                    new: new2,
                })
                .await
                .map_err(StoreError::mailbox("graphdb"))?
                .map_err(StoreError::from)
        };
        Box::pin(
            actix::fut::wrap_future::<_, Self>(work).map(move |res, act, _| {
                if res.is_err() {
                    if act.names.get(&new) == Some(&id) {
                        act.names.remove(&new);
                    }
                    return res;
                }
                if act.names.get(&old) == Some(&id) {
                    act.names.remove(&old);
                }
                if let Some(e) = act.containers.get_mut(&id) {
                    e.c.name = new.clone();
                    e.row = None;
                    let c = e.c.clone();
                    act.save_state(&c);
                    c.event("rename", [("oldName", old.clone())]);
                }
                tracing::info!(container_id = %id, from = %old, to = %new, "container renamed");
                Ok(())
            }),
        )
    }
}

impl Handler<PublishEvent> for ContainerStoreActor {
    type Result = ();
    fn handle(&mut self, msg: PublishEvent, _: &mut Self::Context) {
        if let Ok(e) = self.entry(&msg.id) {
            e.c.event(msg.action, msg.extra);
        }
    }
}

impl Handler<ListVolumeUsers> for ContainerStoreActor {
    type Result = MessageResult<ListVolumeUsers>;
    fn handle(&mut self, _: ListVolumeUsers, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.volume_users())
    }
}

impl Handler<ListNetworkUsers> for ContainerStoreActor {
    type Result = MessageResult<ListNetworkUsers>;
    fn handle(&mut self, _: ListNetworkUsers, _: &mut Self::Context) -> Self::Result {
        MessageResult(
            self.containers
                .values()
                .filter(|e| e.c.state.is_running())
                .filter(|e| process::network_donor(&e.c.host_config).is_none())
                .flat_map(|e| {
                    let name = e.c.name.trim_start_matches('/').to_owned();
                    let own = NetworkUser {
                        id: e.c.id.clone(),
                        name: name.clone(),
                        network: view::network_name(&e.c).to_owned(),
                        endpoint: e.c.endpoint.clone(),
                    };
                    let more = e.c.extra_endpoints.iter().map(move |ep| NetworkUser {
                        id: e.c.id.clone(),
                        name: name.clone(),
                        network: ep.network_name.clone(),
                        endpoint: Some(ep.clone()),
                    });
                    std::iter::once(own).chain(more)
                })
                .collect(),
        )
    }
}

impl Handler<ListImageUsers> for ContainerStoreActor {
    type Result = MessageResult<ListImageUsers>;
    fn handle(&mut self, _: ListImageUsers, _: &mut Self::Context) -> Self::Result {
        MessageResult(
            self.containers
                .values()
                .map(|e| crate::actors::graph::ImageUser {
                    container_id: e.c.id.clone(),
                    image_id: e.c.image.clone(),
                    // dockerd's `IsRunning`: running, paused or restarting.
                    running: e.c.state.is_running() || e.starting,
                })
                .collect(),
        )
    }
}

impl Handler<CountContainers> for ContainerStoreActor {
    type Result = MessageResult<CountContainers>;
    fn handle(&mut self, _: CountContainers, _: &mut Self::Context) -> Self::Result {
        let mut n = Counts::default();
        for e in self.containers.values() {
            n.total += 1;
            let status = if e.removing {
                Status::Removing
            } else {
                e.c.state.status
            };
            match status {
                Status::Created => n.created += 1,
                Status::Running => n.running += 1,
                Status::Paused => n.paused += 1,
                Status::Restarting => n.restarting += 1,
                Status::Exited => n.exited += 1,
                Status::Dead => n.dead += 1,
                Status::Removing => n.removing += 1,
            }
        }
        MessageResult(n)
    }
}

impl Handler<GetLogInfo> for ContainerStoreActor {
    type Result = Result<LogInfo, StoreError>;
    fn handle(&mut self, msg: GetLogInfo, _: &mut Self::Context) -> Self::Result {
        let dir = self.containers_dir();
        let entry = self.entry(&msg.id)?;
        let id = entry.c.id.clone();
        let log = entry.c.host_config.log_config.as_ref();
        let spec = log
            .and_then(|l| {
                crate::model::logconfig::parse_map(
                    l.typ.as_deref().unwrap_or(""),
                    l.config.as_ref(),
                )
                .ok()
            })
            .unwrap_or_default();
        Ok(LogInfo {
            path: dir.join(&id).join(format!("{id}-json.log")),
            tty: entry.c.tty(),
            running: entry.c.state.is_running() || entry.starting,
            driver: spec.driver,
            max_file: spec.max_file,
            id,
        })
    }
}
