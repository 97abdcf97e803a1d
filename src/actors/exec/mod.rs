//! ExecActor: runs container processes through per-container monitors (seed step 4.7).
//!
//! State: one entry per live monitor this actor watches (its state dir, the init's pid,
//! the handle of the future that waits for its exit). Threads: the actor runs on its own
//! arbiter; spawning a monitor (fork + exec) and the short socket requests run in
//! `spawn_blocking`. A start is a `ResponseActFuture` whose work runs outside the actor's
//! state, so independent starts proceed concurrently; only the final bookkeeping touches
//! the state.
//!
//! Each container's state dir is [`state_dir`]`(exec_root, id)`: the monitor's socket
//! (`monitor.sock`) and, after the exit, `exit.json`. See [`crate::monitor`] for the
//! protocols.
//!
//! Architecture invariant: only ExecActor starts monitors, and only monitors fork
//! container processes. Shutdown drops the watches and leaves containers running (the
//! store decides whether to stop them first).

mod client;
mod docker_exec;
pub mod error;
pub mod messages;

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use tracing::{debug, info, warn};

pub use error::ExecError;
pub use messages::*;

use super::{Init, LifecycleError, Shutdown};
use crate::config::DaemonConfig;
use crate::monitor::proto::{ExitStatus, SockReply, SockRequest};
use crate::monitor::spec::ContainerSpec;
use crate::sys::cgroups::{CgroupLayout, V1Warmup};

/// Where a container's monitor keeps its socket and exit status.
pub fn state_dir(exec_root: &Path, id: &str) -> PathBuf {
    exec_root.join("containers").join(id)
}

/// A monitor this actor watches.
#[derive(Debug)]
struct Watched {
    state_dir: PathBuf,
    watch: SpawnHandle,
}

/// The exec subsystem. See the module docs.
#[derive(Debug)]
pub struct ExecActor {
    config: Arc<DaemonConfig>,
    /// The binary re-executed as `<exe> monitor`.
    monitor_exe: PathBuf,
    exits: Option<Recipient<ContainerExited>>,
    /// Where exec exits (`docker exec`) go.
    exec_events: Option<Recipient<ExecEvent>>,
    /// Live monitors by container id.
    watched: HashMap<String, Watched>,
    /// Containers whose start is under way (a second start is refused).
    starting: HashSet<String>,
    /// On hosts with v1 cgroup hierarchies: starts the init's cgroup move's grace period
    /// ahead of it (set at `Init`).
    warmup: Option<V1Warmup>,
    /// The host's cgroup hierarchies (found once, by the system checks), handed to each
    /// monitor.
    layout: CgroupLayout,
    /// A monitor spawned when a container was created, for the next start (see
    /// [`SPARE_TTL`]); `spare_spawning` while one is on its way.
    spare: Option<client::Spare>,
    spare_spawning: bool,
    /// Containers set up ahead of their start ([`Prestart`]), by id.
    held: HashMap<String, client::Held>,
    /// Monitors that reported their container's exit, or were let go of while holding a
    /// container, until they have removed its cgroup and closed their connection: a new
    /// start or a cleanup of the same container waits for that.
    finishing: HashMap<String, Finishing>,
    /// After `Shutdown`: no more spares.
    closing: bool,
}

/// A monitor's [`client::Teardown`] under way, awaitable by more than one.
type Finishing = futures_util::future::Shared<client::Teardown>;

/// How long a spare monitor waits for a start before it is let go: a create is followed
/// by its start within milliseconds (`docker run`), and an idle daemon keeps no spare.
pub const SPARE_TTL: Duration = Duration::from_millis(500);

impl ExecActor {
    /// `layout`: the host's cgroup hierarchies, as the system checks found them.
    pub fn new(config: Arc<DaemonConfig>, monitor_exe: PathBuf, layout: CgroupLayout) -> Self {
        ExecActor {
            config,
            monitor_exe,
            exits: None,
            exec_events: None,
            watched: HashMap::new(),
            starting: HashSet::new(),
            warmup: None,
            layout,
            spare: None,
            spare_spawning: false,
            held: HashMap::new(),
            finishing: HashMap::new(),
            closing: false,
        }
    }

    /// Fills in what every spec gets from this actor: the state dir, the cgroup layout and
    /// the OCI runtime its `runtime` names ([`oci_runtime`]).
    fn complete_spec(&self, spec: &mut ContainerSpec) -> Result<(), ExecError> {
        if spec.state_dir.as_os_str().is_empty() {
            spec.state_dir = state_dir(&self.config.exec_root, &spec.id);
        }
        if spec.cgroup.layout.is_none() {
            spec.cgroup.layout = Some(self.layout.clone());
        }
        spec.oci = oci_runtime(&self.config, &spec.runtime)?;
        Ok(())
    }

    /// Lets go of a held monitor: it undoes the container's set-up and exits.
    fn release(&mut self, ctx: &mut Context<Self>, id: String, held: client::Held) {
        self.track_teardown(ctx, id, Box::pin(held.release()));
    }

    /// Keeps `teardown` of `id`'s monitor in `finishing` until it is over.
    fn track_teardown(&mut self, ctx: &mut Context<Self>, id: String, teardown: client::Teardown) {
        use futures_util::FutureExt;
        let fut = teardown.shared();
        self.finishing.insert(id.clone(), fut.clone());
        ctx.spawn(fut.clone().into_actor(self).map(move |(), act, _| {
            if act.finishing.get(&id).is_some_and(|f| f.ptr_eq(&fut)) {
                act.finishing.remove(&id);
            }
        }));
    }

    /// Resolves once the teardown of `id`'s last monitor, if under way, is over.
    fn released(&self, id: &str) -> impl std::future::Future<Output = ()> + 'static {
        let pending = self.finishing.get(id).cloned();
        async move {
            if let Some(p) = pending {
                p.await;
            }
        }
    }

    /// Spawns a spare monitor, unless there is one or one is on its way. Its spawn and
    /// exec (about 2 ms) then happen during the create rather than on the start's path.
    fn ensure_spare(&mut self, ctx: &mut Context<Self>) {
        if self.spare.is_some() || self.spare_spawning || self.closing {
            return;
        }
        self.spare_spawning = true;
        let exe = self.monitor_exe.clone();
        let spawning =
            async move { tokio::task::spawn_blocking(move || client::Spare::spawn(&exe)).await };
        ctx.spawn(spawning.into_actor(self).map(|res, act, ctx| {
            act.spare_spawning = false;
            match res {
                Ok(Ok(spare)) if !act.closing && act.spare.is_none() => {
                    let born = spare.born;
                    act.spare = Some(spare);
                    ctx.run_later(SPARE_TTL, move |act, _| {
                        if act.spare.as_ref().is_some_and(|s| s.born == born) {
                            act.spare = None;
                        }
                    });
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => debug!(error = %e, "no spare monitor"),
                Err(e) => debug!(error = %e, "no spare monitor"),
            }
        }));
    }

    fn dir_of(&self, id: &str) -> PathBuf {
        match self.watched.get(id) {
            Some(w) => w.state_dir.clone(),
            None => state_dir(&self.config.exec_root, id),
        }
    }

    /// Watches a running monitor until its container exits, then reports the exit.
    fn watch<F>(&mut self, ctx: &mut Context<Self>, id: String, dir: PathBuf, exit: F)
    where
        F: std::future::Future<Output = (Option<ExitStatus>, Option<client::Teardown>)> + 'static,
    {
        let id2 = id.clone();
        let handle = ctx.spawn(
            exit.into_actor(self)
                .map(move |(status, teardown), act, ctx| {
                    act.watched.remove(&id2);
                    if let Some(t) = teardown {
                        act.track_teardown(ctx, id2.clone(), t);
                    }
                    let monitor_lost = status.is_none();
                    let (exit_code, finished_at, oom_killed) = match status {
                        Some(st) => (st.exit_code, parse_time(&st.finished_at), st.oom_killed),
                        None => {
                            warn!(container_id = %id2, "monitor vanished without an exit status");
                            (255, Utc::now(), false)
                        }
                    };
                    debug!(container_id = %id2, exit_code, "container exited");
                    if let Some(r) = &act.exits {
                        r.do_send(ContainerExited {
                            id: id2,
                            exit_code,
                            finished_at,
                            oom_killed,
                            monitor_lost,
                        });
                    }
                }),
        );
        if let Some(old) = self.watched.insert(
            id,
            Watched {
                state_dir: dir,
                watch: handle,
            },
        ) {
            ctx.cancel_future(old.watch);
        }
    }
}

/// The OCI runtime `name` stands for (`None` for berthd's own `native` driver); "" is the
/// daemon's default. A name the daemon does not have (a record made under another
/// configuration) is dockerd's "runtime not found in config".
pub fn oci_runtime(
    config: &DaemonConfig,
    name: &str,
) -> Result<Option<crate::monitor::spec::OciRuntimeSpec>, ExecError> {
    let name = if name.is_empty() {
        config.default_runtime_name()
    } else {
        name
    };
    if name == crate::config::NATIVE && config.native_available() {
        return Ok(None);
    }
    let rt = config
        .runtimes
        .get(name)
        .ok_or_else(|| ExecError::UnknownRuntime {
            name: name.to_owned(),
        })?;
    Ok(Some(crate::monitor::spec::OciRuntimeSpec {
        name: name.to_owned(),
        binary: rt.binary.clone(),
        args: rt.args.clone(),
        root: runtime_root(&config.exec_root, name),
        init: config.init_binary.clone(),
    }))
}

/// Where OCI runtime `name` keeps the state of berthd's containers.
pub fn runtime_root(exec_root: &Path, name: &str) -> PathBuf {
    exec_root.join(format!("runtime-{name}"))
}

fn parse_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|_| Utc::now())
}

fn join_err(id: &str, e: tokio::task::JoinError) -> ExecError {
    ExecError::Monitor {
        id: id.to_owned(),
        source: io::Error::other(e),
    }
}

/// One request on a monitor's socket, on a blocking thread. A missing monitor is
/// `NotRunning`.
async fn request(
    id: String,
    dir: PathBuf,
    req: SockRequest,
) -> Result<(std::os::unix::net::UnixStream, SockReply), ExecError> {
    let id2 = id.clone();
    let res = tokio::task::spawn_blocking(move || client::sock_request(&dir, &req))
        .await
        .map_err(|e| join_err(&id2, e))?;
    match res {
        Ok(r) => Ok(r),
        Err(e) if client::is_absent(&e) => Err(ExecError::NotRunning { id }),
        Err(source) => Err(ExecError::Monitor { id, source }),
    }
}

fn expect_ok(id: String, reply: SockReply) -> Result<(), ExecError> {
    match reply {
        SockReply::Ok => Ok(()),
        SockReply::Error { message } if message.contains("not running") => {
            Err(ExecError::NotRunning { id })
        }
        SockReply::Error { message } => Err(ExecError::Monitor {
            id,
            source: io::Error::other(message),
        }),
        other => Err(ExecError::Monitor {
            id,
            source: io::Error::other(format!("unexpected reply {other:?}")),
        }),
    }
}

impl Actor for ExecActor {
    type Context = Context<Self>;
}

impl Handler<Init> for ExecActor {
    type Result = Result<(), LifecycleError>;
    fn handle(&mut self, _: Init, _: &mut Self::Context) -> Self::Result {
        let dir = self.config.exec_root.join("containers");
        if let Err(source) = std::fs::create_dir_all(&dir) {
            let e = ExecError::ExecRoot { path: dir, source };
            return Err(LifecycleError::from_error(&e));
        }
        self.warmup = V1Warmup::start(&self.layout);
        debug!(v1_warmup = self.warmup.is_some(), "exec ready");
        Ok(())
    }
}

impl Handler<PrepareStart> for ExecActor {
    type Result = ();
    fn handle(&mut self, _: PrepareStart, ctx: &mut Self::Context) {
        if let Some(w) = &self.warmup {
            w.poke();
        }
        self.ensure_spare(ctx);
    }
}

impl Handler<Shutdown> for ExecActor {
    type Result = Result<(), LifecycleError>;
    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        // Containers keep running; their monitors carry on without us. A spare exits, and
        // so does a monitor holding a container set up ahead (undoing the set-up).
        self.closing = true;
        self.spare = None;
        self.held.clear();
        for (_, w) in self.watched.drain() {
            ctx.cancel_future(w.watch);
        }
        info!("exec: watches dropped, containers left to their monitors");
        Ok(())
    }
}

impl Handler<SubscribeExits> for ExecActor {
    type Result = ();
    fn handle(&mut self, msg: SubscribeExits, _: &mut Self::Context) {
        self.exits = Some(msg.0);
    }
}

impl Handler<StartContainer> for ExecActor {
    type Result = ResponseActFuture<Self, Result<Started, ExecError>>;
    fn handle(&mut self, msg: StartContainer, ctx: &mut Self::Context) -> Self::Result {
        let StartContainer {
            mut spec,
            attaches,
            mut netns,
            prestarted,
        } = msg;
        let held = self.held.remove(&spec.id);
        if self.watched.contains_key(&spec.id) || !self.starting.insert(spec.id.clone()) {
            if let Some(h) = held {
                self.held.insert(spec.id.clone(), h);
            }
            let id = spec.id;
            return Box::pin(actix::fut::ready(Err(ExecError::AlreadyRunning { id })));
        }
        let mut held = match held {
            Some(h) if prestarted && netns.is_none() => {
                // The namespace it holds serves a set-up made again too.
                spec.join_netns = h.netns.is_some();
                Some(h)
            }
            Some(h) => {
                self.release(ctx, spec.id.clone(), h);
                None
            }
            None if prestarted => {
                // Not to happen (only the store lets one go); without its namespace the
                // container would start cut off from its network.
                self.starting.remove(&spec.id);
                let id = spec.id;
                let source = io::Error::other("its set-up made at the create is gone");
                return Box::pin(actix::fut::ready(Err(ExecError::Monitor { id, source })));
            }
            None => None,
        };
        if held.is_none() {
            spec.join_netns = netns.is_some();
        }
        if let Err(e) = self.complete_spec(&mut spec) {
            self.starting.remove(&spec.id);
            if let Some(h) = held {
                self.release(ctx, spec.id.clone(), h);
            }
            return Box::pin(actix::fut::ready(Err(e)));
        }
        if let Some(w) = &self.warmup {
            w.poke();
        }
        if let Some(h) = held.take_if(|h| !h.matches(&spec)) {
            // Changed since the create: set up again, in the same namespace.
            debug!(container_id = %spec.id, "spec changed since the prestart; setting up again");
            netns = h.netns.as_ref().and_then(|f| f.try_clone().ok());
            self.release(ctx, spec.id.clone(), h);
        }
        let id = spec.id.clone();
        let dir = spec.state_dir.clone();
        let span = tracing::debug_span!("start_container", container_id = %id);
        let fut: futures_util::future::LocalBoxFuture<'static, _> = match held {
            Some(h) => Box::pin(h.go(attaches)),
            None => {
                let exe = self.monitor_exe.clone();
                let spare = self.spare.take();
                let released = self.released(&id);
                Box::pin(async move {
                    released.await;
                    client::start(exe, spec, attaches, netns, spare).await
                })
            }
        };
        let fut = tracing::Instrument::instrument(fut, span);
        Box::pin(fut.into_actor(self).map(move |res, act, ctx| {
            act.starting.remove(&id);
            let (started, conn) = res?;
            let execs = act.exec_events(&id);
            act.watch(ctx, id, dir.clone(), conn.wait_exit(dir, execs));
            Ok(started)
        }))
    }
}

impl Handler<Prestart> for ExecActor {
    type Result = ResponseActFuture<Self, Result<(), ExecError>>;
    fn handle(&mut self, msg: Prestart, _: &mut Self::Context) -> Self::Result {
        let Prestart { mut spec, netns } = msg;
        let id = spec.id.clone();
        if self.closing
            || self.watched.contains_key(&id)
            || self.starting.contains(&id)
            || self.held.contains_key(&id)
            || self.finishing.contains_key(&id)
        {
            return Box::pin(actix::fut::ready(Err(ExecError::AlreadyRunning { id })));
        }
        spec.join_netns = netns.is_some();
        if let Err(e) = self.complete_spec(&mut spec) {
            return Box::pin(actix::fut::ready(Err(e)));
        }
        if let Some(w) = &self.warmup {
            w.poke();
        }
        self.starting.insert(id.clone());
        let fut = client::prestart(self.monitor_exe.clone(), spec, netns, self.spare.take());
        Box::pin(fut.into_actor(self).map(move |res, act, ctx| {
            act.starting.remove(&id);
            let held = res?;
            if act.closing {
                // Dropped: the monitor undoes the set-up.
                return Err(ExecError::NotRunning { id });
            }
            if let Some(old) = act.held.insert(id.clone(), held) {
                act.release(ctx, id, old);
            }
            Ok(())
        }))
    }
}

impl Handler<DropPrestart> for ExecActor {
    type Result = ();
    fn handle(&mut self, msg: DropPrestart, ctx: &mut Self::Context) {
        if let Some(h) = self.held.remove(&msg.id) {
            self.release(ctx, msg.id, h);
        }
    }
}

impl Handler<AwaitReleased> for ExecActor {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, msg: AwaitReleased, _: &mut Self::Context) -> Self::Result {
        Box::pin(self.released(&msg.id))
    }
}

impl Handler<SignalContainer> for ExecActor {
    type Result = ResponseFuture<Result<(), ExecError>>;
    fn handle(&mut self, msg: SignalContainer, _: &mut Self::Context) -> Self::Result {
        let dir = self.dir_of(&msg.id);
        Box::pin(async move {
            let req = SockRequest::Signal { signal: msg.signal };
            let (_s, reply) = request(msg.id.clone(), dir, req).await?;
            expect_ok(msg.id, reply)
        })
    }
}

impl Handler<AttachContainer> for ExecActor {
    type Result = ResponseFuture<Result<std::os::unix::net::UnixStream, ExecError>>;
    fn handle(&mut self, msg: AttachContainer, _: &mut Self::Context) -> Self::Result {
        let dir = self.dir_of(&msg.id);
        Box::pin(async move {
            let req = SockRequest::Attach(client::flags(msg.options));
            let (s, reply) = request(msg.id.clone(), dir, req).await?;
            expect_ok(msg.id, reply)?;
            Ok(s)
        })
    }
}

impl Handler<ResizeContainer> for ExecActor {
    type Result = ResponseFuture<Result<(), ExecError>>;
    fn handle(&mut self, msg: ResizeContainer, _: &mut Self::Context) -> Self::Result {
        let dir = self.dir_of(&msg.id);
        Box::pin(async move {
            let req = SockRequest::Resize {
                height: msg.height,
                width: msg.width,
            };
            let (_s, reply) = request(msg.id.clone(), dir, req).await?;
            expect_ok(msg.id, reply)
        })
    }
}

impl Handler<RestoreContainer> for ExecActor {
    type Result = ResponseActFuture<Self, Result<RestoreState, ExecError>>;
    fn handle(&mut self, msg: RestoreContainer, _: &mut Self::Context) -> Self::Result {
        let id = msg.id;
        let dir = self.dir_of(&id);
        let dir2 = dir.clone();
        let id2 = id.clone();
        let id3 = id.clone();
        let fut = async move {
            tokio::task::spawn_blocking(move || {
                match client::watch(&dir2) {
                    Ok(r) => Ok(Some(r)),
                    // No live monitor: did it leave an exit status?
                    Err(e) if client::is_absent(&e) => {
                        Ok(client::read_exit_file(&dir2).map(client::WatchReply::Exited))
                    }
                    Err(source) => Err(ExecError::Monitor { id: id2, source }),
                }
            })
            .await
            .map_err(|e| join_err(&id, e))?
        };
        Box::pin(fut.into_actor(self).map(move |res, act, ctx| {
            let id = id3;
            match res? {
                Some(client::WatchReply::Running { pid, sock, execs }) => {
                    let conn =
                        client::WatchConn::new(sock).map_err(|source| ExecError::Monitor {
                            id: id.clone(),
                            source,
                        })?;
                    act.restored_execs(&id, execs);
                    let events = act.exec_events(&id);
                    act.watch(ctx, id, dir.clone(), conn.wait_exit(dir, events));
                    Ok(RestoreState::Running { pid })
                }
                Some(client::WatchReply::Exited(st)) => Ok(RestoreState::Exited {
                    exit_code: st.exit_code,
                    finished_at: parse_time(&st.finished_at),
                }),
                None => Ok(RestoreState::Gone),
            }
        }))
    }
}

impl Handler<ReapOrphan> for ExecActor {
    type Result = ResponseFuture<bool>;
    fn handle(&mut self, msg: ReapOrphan, _: &mut Self::Context) -> Self::Result {
        let dir = self.dir_of(&msg.id);
        let id = msg.id;
        Box::pin(async move {
            // Most records have no monitor socket left at all: nothing to ask.
            if !dir.join(crate::monitor::proto::SOCKET_NAME).exists() {
                return false;
            }
            tokio::task::spawn_blocking(move || reap_orphan(&dir, &id))
                .await
                .unwrap_or(false)
        })
    }
}

/// [`ReapOrphan`]'s blocking part: a watch (is a container running there?), SIGKILL, and
/// the watch read until the monitor reports the exit or closes.
fn reap_orphan(dir: &Path, id: &str) -> bool {
    use std::io::Read;
    let Ok(client::WatchReply::Running { pid, mut sock, .. }) = client::watch(dir) else {
        return false;
    };
    warn!(container_id = %id, pid, "a container runs that its record says is not running (a start cut short by a crash); killing it");
    if let Err(e) = client::sock_request(
        dir,
        &SockRequest::Signal {
            signal: libc::SIGKILL,
        },
    ) {
        warn!(container_id = %id, error = %e, "orphaned container not signalled");
        return true;
    }
    // The monitor sends `Exited` once the cgroup is gone, then closes.
    let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = [0u8; 1024];
    let mut lines = crate::monitor::proto::LineBuf::default();
    'read: loop {
        while let Some(line) = lines.next_line() {
            if let Ok(SockReply::Exited(_)) = serde_json::from_slice(&line) {
                break 'read;
            }
        }
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => lines.push(&buf[..n]),
        }
    }
    // Its exit status belongs to no run the record knows of.
    let _ = std::fs::remove_file(dir.join(crate::monitor::proto::EXIT_FILE));
    true
}

impl Handler<CleanupContainer> for ExecActor {
    type Result = ResponseActFuture<Self, Result<(), ExecError>>;
    fn handle(&mut self, msg: CleanupContainer, ctx: &mut Self::Context) -> Self::Result {
        let dir = self.dir_of(&msg.id);
        if let Some(w) = self.watched.remove(&msg.id) {
            ctx.cancel_future(w.watch);
        }
        if let Some(h) = self.held.remove(&msg.id) {
            self.release(ctx, msg.id.clone(), h);
        }
        let released = self.released(&msg.id);
        let id = msg.id;
        let layout = self.layout.clone();
        let cgroup = msg.cgroup;
        let runtimes: Vec<_> = self
            .config
            .runtimes
            .keys()
            .filter_map(|name| oci_runtime(&self.config, name).ok().flatten())
            .collect();
        let fut = async move {
            released.await;
            let id2 = id.clone();
            tokio::task::spawn_blocking(move || {
                // An OCI runtime's state and cgroups, if the container's monitor died first.
                for rt in &runtimes {
                    match crate::monitor::runtime::delete_leftover(rt, &id2) {
                        Ok(true) => info!(container_id = %id2, runtime = %rt.name, "runtime state left by a lost monitor removed"),
                        Ok(false) => {}
                        Err(e) => warn!(container_id = %id2, error = %crate::util::error_chain(&e), "runtime state of a removed container not removed"),
                    }
                }
                if let Some(rel) = cgroup {
                    remove_leftover_cgroup(&layout, &rel, &id2);
                }
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    Err(source) => Err(ExecError::ExecRoot { path: dir, source }),
                }
            })
            .await
            .map_err(|e| join_err(&id, e))?
        };
        Box::pin(fut.into_actor(self))
    }
}

/// Removes what is left of a container's cgroup (nothing, unless its monitor died before
/// the container's exit); a cgroup that still has processes stays, with a warning.
fn remove_leftover_cgroup(layout: &CgroupLayout, rel: &str, id: &str) {
    let cg = match crate::sys::cgroups::ContainerCgroup::existing(layout, rel) {
        Ok(cg) => cg,
        Err(e) => {
            warn!(container_id = %id, error = %e, "cgroup of a removed container not checked");
            return;
        }
    };
    if cg.dirs.is_empty() {
        return;
    }
    // An orphaned process just killed may still be exiting.
    let left = cg.remove(Duration::from_millis(500));
    if left.is_empty() {
        info!(container_id = %id, "cgroup left by a lost monitor removed");
    } else {
        warn!(container_id = %id, dirs = ?left, "cgroup of a removed container still in use");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dir_is_under_exec_root() {
        assert_eq!(
            state_dir(Path::new("/run/berth"), "abc"),
            PathBuf::from("/run/berth/containers/abc")
        );
    }

    #[test]
    fn init_makes_the_state_dir_and_absent_monitor_is_not_running() {
        let t = tempfile::tempdir().unwrap();
        actix_rt::System::new().block_on(async {
            let mut c = DaemonConfig::defaults();
            c.exec_root = t.path().to_path_buf();
            let a = ExecActor::new(
                Arc::new(c),
                PathBuf::from("/nonexistent"),
                CgroupLayout::default(),
            )
            .start();
            a.send(Init).await.unwrap().unwrap();
            assert!(t.path().join("containers").is_dir());
            let r = a
                .send(SignalContainer {
                    id: "x".into(),
                    signal: 9,
                })
                .await
                .unwrap();
            assert!(matches!(r, Err(ExecError::NotRunning { .. })), "{r:?}");
            let r = a.send(RestoreContainer { id: "x".into() }).await.unwrap();
            assert_eq!(r.unwrap(), RestoreState::Gone);
            a.send(CleanupContainer {
                id: "x".into(),
                cgroup: None,
            })
            .await
            .unwrap()
            .unwrap();

            let spec = crate::monitor::spec::ContainerSpec {
                id: "y".into(),
                rootfs: crate::monitor::spec::RootfsSpec {
                    fstype: "bind".into(),
                    source: "/".into(),
                    options: String::new(),
                    target: "/".into(),
                },
                hostname: "y".into(),
                domainname: String::new(),
                args: vec!["true".into()],
                env: Vec::new(),
                cwd: String::new(),
                user: String::new(),
                tty: false,
                open_stdin: false,
                stdin_once: false,
                log_path: t.path().join("y.log"),
                log: Default::default(),
                log_attrs: None,
                state_dir: PathBuf::new(),
                cgroup: Default::default(),
                mounts: Vec::new(),
                network: crate::monitor::spec::NetworkSpec::None,
                join_netns: false,
                readonly_rootfs: false,
                shm_size: 0,
                console_size: (0, 0),
                process: Default::default(),
                security: Default::default(),
                runtime: String::new(),
                oci: None,
            };
            let r = a.send(StartContainer::new(spec, Vec::new())).await.unwrap();
            assert!(matches!(r, Err(ExecError::SpawnMonitor { .. })), "{r:?}");
        });
    }

    #[test]
    fn exit_time_parses_or_falls_back() {
        let t = parse_time("2026-01-02T03:04:05.123456789Z");
        assert_eq!(t.to_rfc3339(), "2026-01-02T03:04:05.123456789+00:00");
    }
}
