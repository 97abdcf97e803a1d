//! Restart policies (`--restart no|always|unless-stopped|on-failure[:N]`), as dockerd's
//! restart manager (`restartmanager.RestartManager`) and `handleContainerExit` apply them.
//!
//! At an exit the store asks [`should_restart`]; yes: `RestartCount` goes up, the
//! container is `restarting` (State.Restarting, `docker ps` "Restarting (N) …"), its `die`
//! event is published as for any exit, and one actix timer (`run_later`, its handle kept in
//! the entry) starts it again after the back-off ([`Backoff`]: 100 ms, doubled at each
//! restart up to a minute, back to 100 ms after a run of 10 s or more). The start is the
//! store's own start path, so it publishes `start`. Nothing runs between exits: no timer
//! exists unless a restart is pending.
//!
//! A user's stop or kill cancels a pending restart (the container becomes `exited` with
//! its last exit code) and marks the container manually stopped (dockerd's
//! `HasBeenManuallyStopped`, persisted): its exit is not followed by a restart, and an
//! `unless-stopped` container stays stopped across a restart of berthd. At Init, every
//! container that has run and that the policy would restart (an `always` one even after a
//! manual stop, as dockerd) is started again.

use std::time::Duration;

use actix::prelude::*;

use super::state::{Container, Status};
use super::{ContainerStoreActor, Fut, StoreError, ready};
use crate::model::api::RestartPolicyNameEnum as Rp;

/// dockerd's `defaultTimeout`: the first restart's delay.
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// dockerd's `maxRestartTimeout`.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long resets the back-off.
const RESET_AFTER: Duration = Duration::from_secs(10);

/// The restart back-off of one container (in memory, as dockerd's restart manager).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    delay: Duration,
}

impl Backoff {
    /// The delay before the next restart, after a run of `ran`.
    pub fn next(&mut self, ran: Duration) -> Duration {
        if ran >= RESET_AFTER {
            self.delay = Duration::ZERO;
        }
        self.delay = if self.delay.is_zero() {
            FIRST_DELAY
        } else {
            (self.delay * 2).min(MAX_DELAY)
        };
        self.delay
    }
}

/// The container's policy and maximum retry count (`no` when unset).
pub fn policy(c: &Container) -> (Rp, i64) {
    let rp = c.host_config.restart_policy.as_ref();
    let name = rp.and_then(|r| r.name).unwrap_or(Rp::EMPTY);
    (name, rp.and_then(|r| r.maximum_retry_count).unwrap_or(0))
}

/// dockerd's `ShouldRestart` (its cancelled case aside, which the caller checks): whether
/// an exit with `exit_code` of a container restarted `count` times is followed by a
/// restart.
pub fn should_restart(
    policy: Rp,
    max: i64,
    count: i64,
    exit_code: i32,
    manually_stopped: bool,
) -> bool {
    match policy {
        Rp::ALWAYS => true,
        Rp::UNLESS_STOPPED => !manually_stopped,
        Rp::ON_FAILURE => (max == 0 || count < max) && exit_code != 0,
        Rp::NO | Rp::EMPTY => false,
    }
}

/// Whether berthd's start-up starts `c` again (dockerd's restore: `ShouldRestart` on the
/// last exit, for a container that has run). As dockerd's, it ignores a manual stop for
/// `on-failure`: a container whose stop signal made it exit non-zero starts again.
pub fn restart_at_boot(c: &Container) -> bool {
    let (name, max) = policy(c);
    c.state.started_at.is_some()
        && !c.state.is_running()
        && should_restart(
            name,
            max,
            c.restart_count,
            c.state.exit_code,
            c.has_been_manually_stopped,
        )
}

impl ContainerStoreActor {
    /// After an exit recorded in the entry of `id`: decides the restart and, when there is
    /// one, makes the container `restarting` and sets its timer. Returns whether it will
    /// restart.
    pub(super) fn plan_restart(&mut self, id: &str, ctx: &mut Context<Self>) -> bool {
        let shutting_down = self.shutting_down;
        let Some(entry) = self.containers.get_mut(id) else {
            return false;
        };
        let (name, max) = policy(&entry.c);
        if matches!(name, Rp::NO | Rp::EMPTY) {
            return false;
        }
        let ran = match (entry.c.state.started_at, entry.c.state.finished_at) {
            (Some(s), Some(f)) => (f - s).to_std().unwrap_or_default(),
            _ => Duration::ZERO,
        };
        let delay = entry.backoff.next(ran);
        if shutting_down
            || entry.removing
            || entry.exit_on_next
            || !should_restart(
                name,
                max,
                entry.c.restart_count,
                entry.c.state.exit_code,
                entry.c.has_been_manually_stopped,
            )
        {
            return false;
        }
        entry.c.restart_count += 1;
        entry.c.state.status = Status::Restarting;
        tracing::info!(container_id = %id, delay_ms = delay.as_millis(), restart_count = entry.c.restart_count, "container will be restarted");
        let id2 = id.to_owned();
        let handle = ctx.run_later(delay, move |act, ctx| act.fire_restart(id2, ctx));
        if let Some(old) = entry.restart_timer.replace(handle) {
            ctx.cancel_future(old);
        }
        true
    }

    /// The back-off has passed: the container starts again, unless a stop or kill
    /// cancelled it meanwhile. A start that fails leaves it exited, as dockerd.
    fn fire_restart(&mut self, id: String, ctx: &mut Context<Self>) {
        let Some(entry) = self.containers.get_mut(&id) else {
            return;
        };
        entry.restart_timer = None;
        if entry.c.state.status != Status::Restarting || self.shutting_down {
            return;
        }
        let start = self.start(&id, true, ctx);
        ctx.spawn(start.map(move |res, act, _| {
            if let Err(e) = res {
                tracing::warn!(container_id = %id, error = %e, "restart failed");
                act.settle_restarting(&id, Some(e.to_string()));
            }
        }));
    }

    /// A restarting container becomes exited (its last exit code kept): a cancelled or
    /// failed restart. Its waiters are answered and its record written.
    pub(super) fn settle_restarting(&mut self, id: &str, error: Option<String>) {
        let Some(entry) = self.containers.get_mut(id) else {
            return;
        };
        if entry.c.state.status != Status::Restarting {
            return;
        }
        entry.c.state.status = Status::Exited;
        if let Some(e) = error {
            entry.c.state.error = e;
        }
        entry.notify_exit();
        let c = entry.c.clone();
        self.save_state(&c);
    }

    /// A user's stop or kill of `id`: no restart follows its exit (`exit_on_next`, when the
    /// signal is one that stops it), it counts as manually stopped, and a pending restart
    /// is cancelled; returns whether one was (the container is then exited already).
    pub(super) fn manual_stop(
        &mut self,
        id: &str,
        exit_on_next: bool,
        ctx: &mut Context<Self>,
    ) -> bool {
        let shutting_down = self.shutting_down;
        let Some(entry) = self.containers.get_mut(id) else {
            return false;
        };
        if !shutting_down {
            entry.c.has_been_manually_stopped = true;
        }
        entry.exit_on_next |= exit_on_next;
        if let Some(h) = entry.restart_timer.take() {
            ctx.cancel_future(h);
        }
        if entry.c.state.status == Status::Restarting {
            entry.exit_on_next = true;
            self.settle_restarting(id, None);
            return true;
        }
        false
    }

    /// Start-up: the containers the policy restarts are started (as dockerd's restore
    /// does, a start that resets the restart count). Init awaits the returned future, so
    /// the API serves once they have started (or failed to), as dockerd's restore.
    pub(super) fn restart_at_boot(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> impl std::future::Future<Output = ()> + use<> {
        let ids: Vec<String> = self
            .containers
            .values()
            .filter(|e| !e.removing && restart_at_boot(&e.c))
            .map(|e| e.c.id.clone())
            .collect();
        let mut done = Vec::with_capacity(ids.len());
        for id in ids {
            tracing::info!(container_id = %id, "restart policy: starting the container again");
            let start = self.start(&id, false, ctx);
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            done.push(rx);
            ctx.spawn(start.map(move |res, _, _| {
                if let Err(e) = res {
                    tracing::warn!(container_id = %id, error = %e, "restart at start-up failed");
                }
                let _ = tx.send(());
            }));
        }
        async move {
            futures_util::future::join_all(done).await;
        }
    }

    /// Shutdown: pending restarts are cancelled; the containers stay exited, and the next
    /// start-up's restore decides again.
    pub(super) fn cancel_restarts(&mut self, ctx: &mut Context<Self>) {
        let ids: Vec<String> = self
            .containers
            .values()
            .filter(|e| e.c.state.status == Status::Restarting)
            .map(|e| e.c.id.clone())
            .collect();
        for id in ids {
            if let Some(h) = self
                .containers
                .get_mut(&id)
                .and_then(|e| e.restart_timer.take())
            {
                ctx.cancel_future(h);
            }
            self.settle_restarting(&id, None);
        }
    }

    /// `docker stop` of a restarting container: the restart is cancelled, nothing to
    /// signal.
    pub(super) fn stop_restarting(
        &mut self,
        id: &str,
        ctx: &mut Context<Self>,
    ) -> Fut<Result<(), StoreError>> {
        self.manual_stop(id, true, ctx);
        if let Some(e) = self.containers.get(id) {
            e.c.event("stop", []);
        }
        ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_100ms_and_resets_after_10s() {
        let mut b = Backoff::default();
        let short = Duration::from_millis(5);
        assert_eq!(b.next(short), Duration::from_millis(100));
        assert_eq!(b.next(short), Duration::from_millis(200));
        assert_eq!(b.next(short), Duration::from_millis(400));
        for _ in 0..20 {
            b.next(short);
        }
        assert_eq!(b.next(short), MAX_DELAY);
        assert_eq!(b.next(Duration::from_secs(10)), Duration::from_millis(100));
    }

    #[test]
    fn policies_as_dockerd() {
        assert!(should_restart(Rp::ALWAYS, 0, 5, 0, true));
        assert!(should_restart(Rp::UNLESS_STOPPED, 0, 5, 0, false));
        assert!(!should_restart(Rp::UNLESS_STOPPED, 0, 5, 1, true));
        assert!(should_restart(Rp::ON_FAILURE, 0, 50, 3, false));
        assert!(!should_restart(Rp::ON_FAILURE, 0, 0, 0, false));
        assert!(should_restart(Rp::ON_FAILURE, 2, 1, 3, false));
        assert!(!should_restart(Rp::ON_FAILURE, 2, 2, 3, false));
        assert!(!should_restart(Rp::NO, 0, 0, 1, false));
        assert!(!should_restart(Rp::EMPTY, 0, 0, 1, false));
    }
}
