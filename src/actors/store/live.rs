//! The container store's live operations on a running container's cgroup: pause and
//! unpause (the freezer), the thaw that follows a stop or kill of a paused container, and
//! the targets of top and stats.
//!
//! The freezer is written off the actor (`spawn_blocking`: a v1 freeze may retry for a
//! while); the state changes once the kernel reports the new state.

use actix::prelude::*;

use super::state::{Container, Status};
use super::{
    CommitSource, ContainerStoreActor, Fut, GetCommitSource, GetLiveTarget, LiveTarget,
    PauseContainer, StoreError, UnpauseContainer, create, ready, state,
};
use crate::sys::cgroup_live::LiveCgroup;

/// After a thaw that followed a signal (a stop or kill of a paused container): the
/// container runs again unless it has exited meanwhile.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(super) struct Thawed {
    pub id: String,
}

impl ContainerStoreActor {
    /// The container's cgroup in this host's hierarchies.
    pub(super) fn live_cgroup(&self, c: &Container) -> Result<LiveCgroup, StoreError> {
        let rel = create::container_cgroup_path(&c.id, &c.host_config);
        LiveCgroup::new(&self.host.cgroups, &rel)
            .map_err(|e| StoreError::cgroup("the container's cgroup", &e))
    }

    /// The cgroup to thaw after `signal` reaches container `c`, as dockerd decides: a
    /// paused container is thawed (so the signal is delivered) for SIGKILL and for its
    /// stop signal, or for any signal when it has none set.
    pub(super) fn thaw_after(&self, c: &Container, signal: i32) -> Option<LiveCgroup> {
        if c.state.status != Status::Paused {
            return None;
        }
        let own = c.config.stop_signal.as_deref().filter(|s| !s.is_empty());
        let thaws = match own {
            None => true,
            Some(s) => signal == libc::SIGKILL || state::parse_signal(s).ok() == Some(signal),
        };
        if !thaws {
            return None;
        }
        self.live_cgroup(c).ok()
    }

    /// Whether container `c`, recorded as running or paused, is frozen, as its cgroup
    /// says (read at a restart of berthd; an unreadable freezer counts as not frozen).
    pub(super) fn frozen_now(&self, c: &Container) -> bool {
        self.live_cgroup(c)
            .ok()
            .and_then(|cg| cg.is_frozen().ok())
            .unwrap_or(false)
    }
}

/// Thaws `cg` (off the caller's thread) and tells the store, after a signal was sent.
pub(super) async fn thaw_and_report(
    cg: LiveCgroup,
    id: String,
    me: Option<Addr<ContainerStoreActor>>,
) {
    let res = tokio::task::spawn_blocking(move || cg.freeze(false)).await;
    match res {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, container_id = %id, "cannot unpause container"),
        Err(e) => tracing::warn!(error = %e, container_id = %id, "cannot unpause container"),
    }
    if let Some(me) = me {
        me.do_send(Thawed { id });
    }
}

impl Handler<Thawed> for ContainerStoreActor {
    type Result = ();
    fn handle(&mut self, msg: Thawed, _: &mut Self::Context) {
        let Some(e) = self.containers.get_mut(&msg.id) else {
            return;
        };
        if e.c.state.status == Status::Paused {
            e.c.state.status = Status::Running;
            let c = e.c.clone();
            self.save_state(&c);
        }
    }
}

/// Freezes or thaws container `key`: the checks of dockerd, then the freezer off the
/// actor, then the new state (persisted).
fn set_frozen(
    act: &mut ContainerStoreActor,
    key: &str,
    frozen: bool,
) -> Fut<Result<(), StoreError>> {
    let entry = match act.entry(key) {
        Ok(e) => e,
        Err(e) => return ready(Err(e)),
    };
    let id = entry.c.id.clone();
    let status = entry.c.state.status;
    let checked = match (status, frozen) {
        (Status::Running, true) | (Status::Paused, false) => Ok(()),
        (Status::Paused, true) => Err(StoreError::AlreadyPaused { id: id.clone() }),
        (Status::Restarting, _) => Err(StoreError::Restarting { id: id.clone() }),
        (Status::Running, false) => Err(StoreError::NotPaused { id: id.clone() }),
        _ => Err(StoreError::KillNotRunning { id: id.clone() }),
    };
    if let Err(e) = checked {
        return ready(Err(e));
    }
    if entry.removing {
        return ready(Err(StoreError::RemovalInProgress { id }));
    }
    let c = entry.c.clone();
    let cg = match act.live_cgroup(&c) {
        Ok(cg) => cg,
        Err(e) => return ready(Err(e)),
    };
    let work = tokio::task::spawn_blocking(move || cg.freeze(frozen));
    Box::pin(
        actix::fut::wrap_future::<_, ContainerStoreActor>(work).map(move |res, act, _| {
            let what = if frozen { "pause" } else { "unpause" };
            match res {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(StoreError::cgroup(what, &e)),
                Err(e) => {
                    return Err(StoreError::Cgroup {
                        what,
                        detail: e.to_string(),
                    });
                }
            }
            let Some(e) = act.containers.get_mut(&id) else {
                return Ok(());
            };
            // An exit meanwhile wins.
            let expected = if frozen {
                Status::Running
            } else {
                Status::Paused
            };
            if e.c.state.status == expected {
                e.c.state.status = if frozen {
                    Status::Paused
                } else {
                    Status::Running
                };
                let c = e.c.clone();
                act.save_state(&c);
                c.event(what, []);
                tracing::info!(container_id = %id, "container {what}d");
            }
            Ok(())
        }),
    )
}

impl Handler<PauseContainer> for ContainerStoreActor {
    type Result = Fut<Result<(), StoreError>>;
    fn handle(&mut self, msg: PauseContainer, _: &mut Self::Context) -> Self::Result {
        set_frozen(self, &msg.id, true)
    }
}

impl Handler<UnpauseContainer> for ContainerStoreActor {
    type Result = Fut<Result<(), StoreError>>;
    fn handle(&mut self, msg: UnpauseContainer, _: &mut Self::Context) -> Self::Result {
        set_frozen(self, &msg.id, false)
    }
}

impl Handler<GetCommitSource> for ContainerStoreActor {
    type Result = Result<CommitSource, StoreError>;
    fn handle(&mut self, msg: GetCommitSource, _: &mut Self::Context) -> Self::Result {
        let c = &self.entry(&msg.id)?.c;
        let mut command = vec![c.path.clone()];
        command.extend(c.args.iter().cloned());
        Ok(CommitSource {
            id: c.id.clone(),
            image: c.image.clone(),
            config: serde_json::to_value(&c.config).unwrap_or_default(),
            command: command.join(" "),
            running: c.state.is_running(),
            paused: c.state.status == super::state::Status::Paused,
        })
    }
}

impl Handler<GetLiveTarget> for ContainerStoreActor {
    type Result = Result<LiveTarget, StoreError>;
    fn handle(&mut self, msg: GetLiveTarget, _: &mut Self::Context) -> Self::Result {
        let c = self.entry(&msg.id)?.c.clone();
        Ok(LiveTarget {
            cgroup: self.live_cgroup(&c)?,
            id: c.id,
            name: c.name,
            pid: c.state.pid,
            status: c.state.status,
        })
    }
}
