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
pub mod error;
pub mod messages;
pub mod persist;
pub mod state;
pub mod validate;
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

use self::persist::Persister;
use self::state::{Container, State, Status};
use super::exec::{
    AttachContainer, CleanupContainer, ContainerExited, DropPrestart, ExecActor, ExecError,
    PendingAttach, PrepareStart, Prestart as ExecPrestart, ResizeContainer, RestoreContainer,
    RestoreState, SignalContainer, StartContainer as ExecStart,
};
use super::graph::{
    CreateRwLayer, GetDriverInfo, GraphActor, GraphError, PruneRwLayers, RemoveRwLayer,
    ResolveImage, RwLayer,
};
use super::graphdb::{GraphDbActor, GraphDbError, ListNames, ReleaseEntity, ReserveName};
use super::network::{
    Endpoint, GetNetworkInfo, NetworkActor, NetworkInfo, Prewarm, ReleaseEndpoint,
    RestoreEndpoints, Sandbox, TakeSandbox, plan_network,
};
use super::{ActorClient, Init, LifecycleError, Shutdown};
use crate::config::DaemonConfig;
use crate::deleter::{self, Deleter};
use crate::metrics::metrics;
use crate::model::create::CreateRequest;
use crate::monitor::spec::{ContainerSpec, NetworkSpec};

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
    fn remove_stopped(&mut self, id: String) -> Fut<Result<(), StoreError>> {
        // A set-up ahead goes with the cleanup below (and the address with the release).
        let _ = self.take_prestart(&id);
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
                    cgroup: Some(create::cgroup_path(&id2)),
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
        Box::pin(
            actix::fut::wrap_future::<_, Self>(work).map(move |res, act, _| {
                match res {
                    Ok(()) => {
                        if let Some(mut e) = act.containers.remove(&id) {
                            act.names.remove(&e.c.name);
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
                        Ok(())
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
            let _ = exec
                .send(SignalContainer {
                    id: id.clone(),
                    signal: libc::SIGKILL,
                })
                .await;
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
            if let Some(e) = self.containers.get_mut(&msg.id) {
                e.c.state.error = "the container's monitor was lost".to_owned();
            }
            self.apply_exit(
                ContainerExited {
                    id: msg.id,
                    exit_code: 255,
                    finished_at: Utc::now(),
                    oom_killed: false,
                },
                ctx,
            );
        }
    }
}

/// What [`load_records`] found.
#[derive(Debug, Default)]
struct Loaded {
    records: Vec<Container>,
    /// Every container dir with a record, readable or not: their layers are kept.
    ids: std::collections::HashSet<String>,
}

/// Brings loaded records to the current data root and format: a record whose rootfs
/// names another data root (the data root was moved, or restored from a copy) has its
/// paths re-rooted at `data_root`, and is written again, as is every record when
/// `migrate` (an older format: the typed models read it, and write it in the current
/// form). Each rewrite is atomic and durable.
fn migrate_records(
    dir: &Path,
    data_root: &Path,
    records: &mut [Container],
    migrate: bool,
) -> std::io::Result<()> {
    for c in records.iter_mut() {
        let moved = relocate_rootfs(&mut c.rootfs, data_root, &c.driver);
        if !(moved || migrate) {
            continue;
        }
        let cdir = dir.join(&c.id);
        let record = serde_json::to_vec(c).map_err(std::io::Error::other)?;
        let host = serde_json::to_vec(&c.host_config).map_err(std::io::Error::other)?;
        crate::util::write_atomic(&cdir.join("hostconfig.json"), &host)?;
        crate::util::write_atomic(&cdir.join("config.v2.json"), &record)?;
        tracing::info!(container_id = %c.id, moved, "container record rewritten");
    }
    Ok(())
}

/// Re-roots the paths of a layer mount made under another data root at `data_root`; true
/// if it changed. The old root is what precedes `/<driver>/` in the mount's target.
fn relocate_rootfs(
    rootfs: &mut crate::monitor::spec::RootfsSpec,
    data_root: &Path,
    driver: &str,
) -> bool {
    let target = rootfs.target.to_string_lossy().into_owned();
    let marker = format!("/{driver}/");
    let Some(at) = target.find(&marker) else {
        return false;
    };
    let old = format!("{}{marker}", &target[..at]);
    let new = format!("{}{marker}", data_root.display());
    if old == new {
        return false;
    }
    rootfs.target = target.replacen(&old, &new, 1).into();
    rootfs.options = rootfs.options.replace(&old, &new);
    rootfs.source = rootfs.source.replace(&old, &new);
    true
}

/// Reads every record under `containers/`. A record that cannot be read is logged and
/// skipped (left on disk for the operator), so one bad file cannot stop the daemon. The
/// dir of a container whose removal a crash cut short (renamed to a doomed name), and that
/// of a create a crash cut short (no config.v2.json), are handed to `deleter`.
fn load_records(dir: &Path, deleter: &Deleter) -> std::io::Result<Loaded> {
    fs::create_dir_all(dir)?;
    let mut out = Loaded::default();
    for ent in fs::read_dir(dir)? {
        let ent = ent?;
        let path = ent.path();
        let name = ent.file_name();
        let name = name.to_string_lossy();
        if deleter::is_doomed_name(&name) {
            tracing::info!(path = %path.display(), "deleting the dir of a removed container");
            deleter.delete(path);
            continue;
        }
        if !path.is_dir() || !crate::util::is_full_id(&name) {
            continue;
        }
        let record = path.join("config.v2.json");
        if matches!(fs::symlink_metadata(&record), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
        {
            // A create writes the record last: this one did not finish, and was not
            // answered. Its name in the graph database is released below, its layer by
            // the graph.
            tracing::info!(path = %path.display(), "deleting the dir of an unfinished create");
            match deleter::rename_doomed(&path) {
                Ok(Some(doomed)) => deleter.delete(doomed),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unfinished create left")
                }
            }
            continue;
        }
        out.ids.insert(name.clone().into_owned());
        let parsed = fs::read(&record)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Container>(&b).map_err(|e| e.to_string()))
            .and_then(|mut c| {
                let host = fs::read(path.join("hostconfig.json")).map_err(|e| e.to_string())?;
                c.host_config = serde_json::from_slice(&host).map_err(|e| e.to_string())?;
                Ok(c)
            });
        match parsed {
            Ok(c) => out.records.push(c),
            Err(e) => {
                tracing::warn!(path = %record.display(), error = %e, "container record skipped")
            }
        }
    }
    Ok(out)
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
                if c.state.is_running() {
                    match peers.exec.send(RestoreContainer { id: c.id.clone() }).await {
                        Ok(Ok(RestoreState::Running { pid })) => {
                            c.state.pid = pid;
                            tracing::info!(container_id = %c.id, pid, "container still running; monitor re-attached");
                        }
                        Ok(Ok(RestoreState::Exited {
                            exit_code,
                            finished_at,
                        })) => {
                            c.state.set_exited(exit_code, finished_at, false);
                            tracing::info!(container_id = %c.id, exit_code, "container exited while the daemon was away");
                        }
                        Ok(Ok(RestoreState::Gone)) | Ok(Err(_)) => {
                            c.state.set_exited(255, Utc::now(), false);
                            c.state.error = "the container's monitor was lost".to_owned();
                            tracing::warn!(container_id = %c.id, "container's monitor is gone; marked exited");
                        }
                        Err(e) => return Err(LifecycleError::from_error(&e)),
                    }
                }
                if !c.state.is_running() {
                    // Its namespace, and with it its veth, is gone.
                    c.endpoint = None;
                }
                restored.push(c);
            }
            // Addresses of the containers still running are taken again.
            let endpoints: Vec<_> = restored
                .iter()
                .filter_map(|c| c.endpoint.clone().map(|ep| (c.id.clone(), ep)))
                .collect();
            if !endpoints.is_empty() {
                peers
                    .network
                    .send(RestoreEndpoints { endpoints })
                    .await
                    .map_err(|e| LifecycleError::from_error(&e))?;
            }
            Ok((restored, net, driver))
        };
        Box::pin(
            actix::fut::wrap_future::<_, Self>(work).map(|res, act, ctx| {
                let (records, net, driver) = res?;
                act.net = net;
                act.driver = driver;
                let mut auto_remove = Vec::new();
                for c in records {
                    act.names.insert(c.name.clone(), c.id.clone());
                    if !c.state.is_running() && c.auto_remove() && c.state.started_at.is_some() {
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
                    ctx.spawn(act.remove_stopped(id).map(|_, _, _| ()));
                }
                tracing::info!(
                    containers = act.containers.len(),
                    "container records loaded"
                );
                Ok(())
            }),
        )
    }
}

impl Handler<Shutdown> for ContainerStoreActor {
    type Result = Fut<Result<(), LifecycleError>>;
    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> Self::Result {
        self.shutting_down = true;
        if self.config.live_restore {
            tracing::info!("live-restore: containers keep running");
            return ready(Ok(()));
        }
        let timeout = Duration::from_secs(self.config.shutdown_timeout);
        let running: Vec<(String, i32)> = self
            .containers
            .values()
            .filter(|e| e.c.state.is_running())
            .map(|e| (e.c.id.clone(), Self::stop_signal_of(&e.c)))
            .collect();
        let stops: Vec<_> = running
            .iter()
            .map(|(id, sig)| self.stop_future(id, *sig, Some(timeout)))
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
        let CreateRequest {
            mut config,
            host_config,
            ..
        } = request;
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
            Err(e) => return ready(Err(e.into())),
        };
        let id = crate::util::new_id();
        if config.hostname.as_deref().unwrap_or("").is_empty() {
            config.hostname = Some(id[..12].to_owned());
        }
        // Hold the name now so that a concurrent create of the same name conflicts.
        self.names.insert(name.clone(), id.clone());
        let persister = match self.persister() {
            Ok(p) => p,
            Err(e) => return ready(Err(e)),
        };
        // Not with bind mounts: their sources are mounted as they are at the start (a file
        // replaced between create and start is the new one).
        let binds = host_config.binds.as_ref().is_some_and(|b| !b.is_empty());
        let may_prestart = self.prestarts < MAX_PRESTARTS && !binds;
        if may_prestart {
            self.prestarts += 1;
        }
        let exec_root = self.config.exec_root.clone();
        let peers = self.peers.clone();
        peers.exec.do_send(PrepareStart);
        if network != NetworkSpec::Host {
            peers.network.do_send(Prewarm {
                bridged: network == NetworkSpec::New,
            });
        }
        let dir = self.containers_dir().join(&id);
        let driver = self.driver.clone();
        let dns = self.config.dns.clone();
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
            let hostname = config.hostname.clone().unwrap_or_default();
            let host = serde_json::to_vec(&host_config).map_err(|e| StoreError::InvalidConfig {
                reason: e.to_string(),
            })?;
            // Three independent parts at once: the name, the layer, and the files of the
            // container's dir that do not depend on the layer. Only the record, which
            // holds the layer's rootfs, waits for the layer.
            let dir2 = dir.clone();
            let files = persister.run(&id2, move || {
                write_container_files(&dir2, &hostname, &dns, &host)
            });
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
                endpoint: None,
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
            let ahead = may_prestart.then(|| {
                let spec = create::build_spec(&c, &dir, &exec_root);
                (spec, c.network.clone(), dir.join("hosts"))
            });
            let set_up = async {
                let (spec, network, hosts) = ahead?;
                prestart(&peers, spec, network, hosts).await
            };
            let (committed, pre) = futures_util::join!(commit, set_up);
            if let Err(e) = committed {
                if let Some(p) = pre {
                    drop_prestart(&peers, &id2, &p);
                }
                return Err(e);
            }
            Ok((c, pre))
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

/// Takes a network namespace for container `id` (`bridged`: on the bridge, with an
/// address) and, for a bridged one, writes the address into its /etc/hosts: behind the
/// container's other writes on `persister`, or else on a blocking thread.
async fn take_sandbox(
    network: &ActorClient<NetworkActor>,
    persister: Option<Persister>,
    id: &str,
    bridged: bool,
    hosts: PathBuf,
    hostname: &str,
) -> Result<Sandbox, StoreError> {
    let sb = network
        .send(TakeSandbox {
            id: id.to_owned(),
            bridged,
        })
        .await
        .map_err(StoreError::mailbox("network"))??;
    let Some(ep) = &sb.endpoint else {
        return Ok(sb);
    };
    let content = create::hosts_file(hostname, Some(ep.ip));
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
) -> Option<Prestarted> {
    let id = spec.id.clone();
    let mut netns = None;
    let mut endpoint = None;
    if network != NetworkSpec::Host {
        let bridged = network == NetworkSpec::New;
        let hostname = spec.hostname.clone();
        // `hosts` is written beside the create's other writes, not behind them: none of
        // them touches it, and behind them it would wait for the record's fsyncs.
        let sb = take_sandbox(&peers.network, None, &id, bridged, hosts, &hostname).await;
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
fn drop_prestart(peers: &Peers, id: &str, p: &Prestarted) {
    peers.exec.do_send(DropPrestart { id: id.to_owned() });
    if p.endpoint.is_some() {
        peers.network.do_send(ReleaseEndpoint { id: id.to_owned() });
    }
}

/// Undoes what a create that failed had made: its dir, its layer and its name. The dir
/// is deleted on the record writer (behind the create's writes), the layer and the name
/// through their actors.
struct CreateUndo<'a> {
    peers: &'a Peers,
    persister: &'a Persister,
    id: &'a str,
    dir: &'a Path,
}

impl CreateUndo<'_> {
    /// Deletes the dir, releases the name when `name_held` and removes the layer when
    /// `layer_made`, and returns `cause`.
    async fn run(&self, cause: StoreError, name_held: bool, layer_made: bool) -> StoreError {
        let dir = self.dir.to_owned();
        let remove_dir = self
            .persister
            .run(self.id, move || match fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            });
        let remove_layer = async {
            if layer_made {
                let _ = self
                    .peers
                    .graph
                    .send(RemoveRwLayer {
                        container_id: self.id.to_owned(),
                    })
                    .await;
            }
        };
        let release_name = async {
            if name_held {
                let _ = self
                    .peers
                    .graphdb
                    .send(ReleaseEntity {
                        id: self.id.to_owned(),
                    })
                    .await;
            }
        };
        let (removed, (), ()) = futures_util::join!(remove_dir, remove_layer, release_name);
        if let Err(e) = removed {
            // Init removes a dir without a record.
            tracing::warn!(error = %e, container_id = %self.id, "the dir of a failed create was left");
        }
        cause
    }
}

/// The files of a container's dir made from its hostname and the host's resolv.conf:
/// written at the create and not fsynced (see [`restore_derived_files`]).
fn derived_files(hostname: &str, dns: &[std::net::IpAddr]) -> [(&'static str, Vec<u8>); 3] {
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    [
        ("hostname", format!("{hostname}\n").into_bytes()),
        ("hosts", create::hosts_file(hostname, None).into_bytes()),
        (
            "resolv.conf",
            create::resolv_conf(&host_resolv, dns).into_bytes(),
        ),
    ]
}

/// Writes the files of a new container's dir that do not depend on its layer (hostname,
/// hosts, resolv.conf, hostconfig.json), without fsyncs: hostconfig.json is fsynced with
/// the record ([`stage_record`]) and the dir and its parent at the commit
/// ([`commit_record`]); the others are derived, and the first start after a restart writes
/// again any that a crash left empty ([`restore_derived_files`]). They need no temp names: until
/// [`commit_record`] adds config.v2.json the dir is a create that did not finish, which
/// Init removes (`load_records`).
fn write_container_files(
    dir: &Path,
    hostname: &str,
    dns: &[std::net::IpAddr],
    host_config: &[u8],
) -> std::io::Result<()> {
    fs::create_dir(dir)?;
    let [a, b, c] = derived_files(hostname, dns);
    for (name, data) in [a, b, c, ("hostconfig.json", host_config.to_vec())] {
        let mut f = fs::File::create_new(dir.join(name))?;
        std::io::Write::write_all(&mut f, &data)?;
    }
    Ok(())
}

/// Writes again the derived files of a container's dir (see [`derived_files`]) that are
/// missing or empty, as a crash soon after the create can leave them. Before the first
/// start of a container loaded at Init (one created since has them as written).
fn restore_derived_files(
    dir: &Path,
    hostname: &str,
    dns: &[std::net::IpAddr],
) -> std::io::Result<()> {
    for (name, data) in derived_files(hostname, dns) {
        let path = dir.join(name);
        if fs::metadata(&path).map_or(true, |m| m.len() == 0) {
            tracing::info!(path = %path.display(), "writing a lost file again");
            fs::write(&path, data)?;
        }
    }
    Ok(())
}

/// Waits until a layer the graph was making is durable or undone; true when it was made
/// (and so must be removed).
async fn settle(layer: Result<RwLayer, StoreError>) -> bool {
    match layer {
        Ok(l) => matches!(l.durable.await, Ok(Ok(()))),
        Err(_) => false,
    }
}

/// The temp name of a new container's record until [`commit_record`].
const STAGED_RECORD: &str = ".config.v2.json.tmp-create";

/// Writes a new container's record under a temp name in a dir that
/// [`write_container_files`] made, and fsyncs it with hostconfig.json.
fn stage_record(dir: &Path, record: &[u8]) -> std::io::Result<()> {
    let mut f = fs::File::create_new(dir.join(STAGED_RECORD))?;
    std::io::Write::write_all(&mut f, record)?;
    let host_config = fs::File::open(dir.join("hostconfig.json"))?;
    crate::util::sync_all_concurrently(&[&f, &host_config])
}

/// The commit point of a create: the staged record renamed to config.v2.json, the dir
/// (its files' names) and its parent (the dir's name) fsynced.
fn commit_record(dir: &Path) -> std::io::Result<()> {
    fs::rename(dir.join(STAGED_RECORD), dir.join("config.v2.json"))?;
    let d = fs::File::open(dir)?;
    match dir.parent() {
        Some(parent) => crate::util::sync_all_concurrently(&[&d, &fs::File::open(parent)?]),
        None => d.sync_all(),
    }
}

impl Handler<StartContainer> for ContainerStoreActor {
    type Result = Fut<Result<(), StoreError>>;
    fn handle(&mut self, msg: StartContainer, _: &mut Self::Context) -> Self::Result {
        if self.shutting_down {
            return ready(Err(StoreError::ShuttingDown));
        }
        let containers_dir = self.containers_dir();
        let exec_root = self.config.exec_root.clone();
        let entry = match self.entry(&msg.id) {
            Ok(e) => e,
            Err(e) => return ready(Err(e)),
        };
        let id = entry.c.id.clone();
        if entry.removing {
            return ready(Err(StoreError::RemovalInProgress { id }));
        }
        if let Err(e) = entry.c.state.can_start(&id) {
            return ready(Err(e));
        }
        if entry.starting {
            return ready(Err(StoreError::AlreadyRunning { id }));
        }
        entry.starting = true;
        let spec = create::build_spec(&entry.c, &containers_dir.join(&id), &exec_root);
        let attaches = std::mem::take(&mut entry.pending);
        let network_label = match entry.c.network {
            NetworkSpec::None => "none",
            NetworkSpec::Host => "host",
            NetworkSpec::New => "bridge",
        };
        let bridged = entry.c.network == NetworkSpec::New;
        let own_netns = entry.c.network != NetworkSpec::Host;
        let prestart = entry.prestart.take();
        let check_files = std::mem::take(&mut entry.files_unchecked);
        if prestart.is_some() {
            self.prestarts = self.prestarts.saturating_sub(1);
        }
        let exec = self.peers.exec.clone();
        let network = self.peers.network.clone();
        let persister = self.persister.clone();
        let dir = containers_dir.join(&id);
        let hosts = dir.join("hosts");
        let dns = self.config.dns.clone();
        let t0 = Instant::now();
        let id2 = id.clone();
        let work = async move {
            let hostname = spec.hostname.clone();
            let mut start = ExecStart::new(spec, attaches);
            let mut endpoint = None;
            if let Some(p) = prestart {
                // Set up by the create, in the namespace taken then.
                start.prestarted = true;
                endpoint = p.endpoint;
            } else {
                if check_files {
                    let (dir2, name) = (dir.clone(), hostname.clone());
                    let restore = move || restore_derived_files(&dir2, &name, &dns);
                    let restored = match &persister {
                        Some(p) => p.run(&id2, restore).await,
                        None => restore(),
                    };
                    if let Err(source) = restored {
                        return (Err(StoreError::Persist { path: dir, source }), None);
                    }
                }
                if own_netns {
                    let sb = take_sandbox(&network, persister, &id2, bridged, hosts, &hostname);
                    match sb.await {
                        Ok(sb) => {
                            endpoint = sb.endpoint;
                            start.netns = Some(sb.netns);
                        }
                        Err(e) => return (Err(e), None),
                    }
                }
            }
            let res = exec
                .send(start)
                .await
                .map_err(StoreError::mailbox("exec"))
                .and_then(|r| r.map_err(StoreError::from));
            (res, endpoint)
        };
        Box::pin(
            actix::fut::wrap_future::<_, Self>(work).map(move |(res, endpoint), act, ctx| {
                if endpoint.is_some() && res.is_err() {
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
                        metrics()
                            .container_start
                            .with_label_values(&[network_label])
                            .observe(t0.elapsed().as_secs_f64());
                        tracing::info!(container_id = %id, pid = started.pid, "container started");
                        let c = entry.c.clone();
                        let early_exit = entry.early_exit.take();
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
                            ctx.spawn(act.remove_stopped(id.clone()).map(|_, _, _| ()));
                        }
                        Err(e)
                    }
                }
            }),
        )
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
    /// Records an exit: state, waiters, the record, and `--rm`.
    fn apply_exit(&mut self, msg: ContainerExited, ctx: &mut Context<Self>) {
        let Some(entry) = self.containers.get_mut(&msg.id) else {
            return;
        };
        entry
            .c
            .state
            .set_exited(msg.exit_code, msg.finished_at, msg.oom_killed);
        entry.notify_exit();
        tracing::info!(container_id = %msg.id, exit_code = msg.exit_code, "container exited");
        let had_endpoint = entry.c.endpoint.take().is_some();
        let c = entry.c.clone();
        let auto_remove = c.auto_remove() && !entry.removing && !self.shutting_down;
        if auto_remove {
            entry.removing = true;
        }
        self.save_state(&c);
        if had_endpoint {
            self.release_endpoint(&msg.id);
        }
        if auto_remove {
            ctx.spawn(self.remove_stopped(msg.id).map(|_, _, _| ()));
        }
    }
}

impl Handler<StopContainer> for ContainerStoreActor {
    type Result = Fut<Result<(), StoreError>>;
    fn handle(&mut self, msg: StopContainer, _: &mut Self::Context) -> Self::Result {
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
        Box::pin(actix::fut::wrap_future(
            self.stop_future(&id, signal, timeout),
        ))
    }
}

impl Handler<KillContainer> for ContainerStoreActor {
    type Result = Fut<Result<(), StoreError>>;
    fn handle(&mut self, msg: KillContainer, _: &mut Self::Context) -> Self::Result {
        let entry = match self.running_entry(&msg.id, |id| StoreError::KillNotRunning { id }) {
            Ok(e) => e,
            Err(e) => return ready(Err(e)),
        };
        let id = entry.c.id.clone();
        let signal = match state::signal_or(msg.signal.as_deref(), libc::SIGKILL) {
            Ok(s) => s,
            Err(e) => return ready(Err(e)),
        };
        let exec = self.peers.exec.clone();
        Box::pin(actix::fut::wrap_future(async move {
            exec.send(SignalContainer { id, signal })
                .await
                .map_err(StoreError::mailbox("exec"))?
                .map_err(StoreError::from)
        }))
    }
}

impl Handler<RemoveContainer> for ContainerStoreActor {
    type Result = Fut<Result<(), StoreError>>;
    fn handle(&mut self, msg: RemoveContainer, _: &mut Self::Context) -> Self::Result {
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
        if !running {
            return self.remove_stopped(id);
        }
        let kill = self.stop_future(&id, libc::SIGKILL, Some(Duration::ZERO));
        Box::pin(actix::fut::wrap_future::<_, Self>(kill).then(
            move |res, act, _| -> Fut<Result<(), StoreError>> {
                match res {
                    Ok(()) => act.remove_stopped(id),
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
        Ok(view::inspect(&entry.c, &data_root, status))
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
            return ready(Err(StoreError::Paused { id }));
        }
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
        Ok(LogInfo {
            path: dir.join(&id).join(format!("{id}-json.log")),
            tty: entry.c.tty(),
            running: entry.c.state.is_running() || entry.starting,
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::spec::{NetworkSpec, RootfsSpec};

    fn record(id: &str) -> Container {
        Container {
            id: id.to_owned(),
            name: "/kept".to_owned(),
            created: Utc::now(),
            path: "true".to_owned(),
            args: Vec::new(),
            config: Default::default(),
            host_config: Default::default(),
            image: format!("sha256:{}", crate::util::new_id()),
            state: State::new(),
            rootfs: RootfsSpec {
                fstype: "bind".into(),
                source: "/x".into(),
                options: String::new(),
                target: "/x".into(),
            },
            driver: "vfs".to_owned(),
            network: NetworkSpec::None,
            restart_count: 0,
            endpoint: None,
        }
    }

    use crate::util::sorted_names as names;

    /// A container's dir as a create leaves it.
    fn write_dir(dir: &Path, c: &Container) {
        let host = serde_json::to_vec(&c.host_config).unwrap();
        write_container_files(dir, &c.id[..12], &[], &host).unwrap();
        stage_record(dir, &serde_json::to_vec(c).unwrap()).unwrap();
        commit_record(dir).unwrap();
    }

    #[test]
    fn load_records_deletes_the_dirs_of_creates_a_crash_cut_short() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("containers");
        fs::create_dir_all(&dir).unwrap();
        let kept = crate::util::new_id();
        write_dir(&dir.join(&kept), &record(&kept));
        // The files made beside the layer, and the daemon died before the record.
        let early = crate::util::new_id();
        write_container_files(&dir.join(&early), "early", &[], b"{}").unwrap();
        // The record's temp file written but not renamed.
        let late = crate::util::new_id();
        let late_dir = dir.join(&late);
        write_container_files(&late_dir, "late", &[], b"{}").unwrap();
        stage_record(&late_dir, b"{}").unwrap();
        // The dir made, nothing in it yet.
        let empty = crate::util::new_id();
        fs::create_dir(dir.join(&empty)).unwrap();
        // A record that cannot be read is left for the operator, and so is its layer.
        let bad = crate::util::new_id();
        write_container_files(&dir.join(&bad), "bad", &[], b"{}").unwrap();
        fs::write(dir.join(&bad).join("config.v2.json"), b"{").unwrap();

        let deleter = Deleter::new();
        let loaded = load_records(&dir, &deleter).unwrap();
        assert_eq!(loaded.records.len(), 1);
        assert_eq!(loaded.records[0].id, kept);
        assert_eq!(loaded.ids, [kept.clone(), bad.clone()].into());
        deleter.drain();
        let mut want = vec![kept, bad];
        want.sort();
        assert_eq!(names(&dir), want);
    }

    #[test]
    fn a_start_writes_again_the_derived_files_a_crash_left_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("c");
        let dns: Vec<std::net::IpAddr> = vec!["192.0.2.53".parse().unwrap()];
        write_container_files(&dir, "box", &dns, b"{\"a\":1}").unwrap();
        let read = |n: &str| fs::read_to_string(dir.join(n)).unwrap();
        let (hosts, resolv) = (read("hosts"), read("resolv.conf"));
        assert!(resolv.contains("nameserver 192.0.2.53"), "{resolv}");
        // What delayed allocation can leave of files not fsynced: empty, or gone.
        fs::write(dir.join("hostname"), "").unwrap();
        fs::remove_file(dir.join("resolv.conf")).unwrap();
        fs::write(dir.join("hosts"), "kept as it is\n").unwrap();
        restore_derived_files(&dir, "box", &dns).unwrap();
        assert_eq!(read("hostname"), "box\n");
        assert_eq!(read("resolv.conf"), resolv);
        assert_eq!(read("hosts"), "kept as it is\n");
        assert_ne!(read("hosts"), hosts);
        assert_eq!(read("hostconfig.json"), "{\"a\":1}");
    }

    #[test]
    fn a_moved_data_root_re_roots_the_layer_paths() {
        let mut rootfs = RootfsSpec {
            fstype: "overlay".into(),
            source: "overlay".into(),
            options: "lowerdir=/old/r/overlay2/a-init/diff:/old/r/overlay2/a/diff,upperdir=/old/r/overlay2/b/diff,workdir=/old/r/overlay2/b/work".into(),
            target: "/old/r/overlay2/b/merged".into(),
        };
        assert!(relocate_rootfs(&mut rootfs, Path::new("/new"), "overlay2"));
        assert_eq!(rootfs.target, PathBuf::from("/new/overlay2/b/merged"));
        assert_eq!(
            rootfs.options,
            "lowerdir=/new/overlay2/a-init/diff:/new/overlay2/a/diff,upperdir=/new/overlay2/b/diff,workdir=/new/overlay2/b/work"
        );
        assert!(!relocate_rootfs(&mut rootfs, Path::new("/new"), "overlay2"));
        let mut vfs = RootfsSpec {
            fstype: "bind".into(),
            source: "/old/vfs/dir/c".into(),
            options: String::new(),
            target: "/old/vfs/dir/c".into(),
        };
        assert!(relocate_rootfs(&mut vfs, Path::new("/srv/b"), "vfs"));
        assert_eq!(vfs.source, "/srv/b/vfs/dir/c");
    }

    #[test]
    fn load_records_deletes_the_dirs_of_removals_a_crash_cut_short() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("containers");
        let kept = crate::util::new_id();
        let c = record(&kept);
        fs::create_dir_all(&dir).unwrap();
        write_dir(&dir.join(&kept), &c);
        // A removal renamed this one away (its record intact) and the daemon died.
        let gone = crate::util::new_id();
        let gone_dir = dir.join(&gone);
        write_dir(&gone_dir, &record(&gone));
        fs::write(gone_dir.join(format!("{gone}-json.log")), b"{}\n").unwrap();
        let doomed = deleter::rename_doomed(&gone_dir).unwrap().unwrap();
        // Not ours: left alone.
        fs::create_dir(dir.join("lost+found")).unwrap();

        let deleter = Deleter::new();
        let loaded = load_records(&dir, &deleter).unwrap();
        assert_eq!(loaded.records.len(), 1);
        assert_eq!(loaded.records[0].id, kept);
        deleter.drain();
        assert!(!doomed.exists());
        let mut want = vec![kept, "lost+found".to_owned()];
        want.sort();
        assert_eq!(names(&dir), want);
    }
}
