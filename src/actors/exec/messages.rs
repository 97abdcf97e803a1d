//! Messages of the [`ExecActor`](super::ExecActor).

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::error::ExecError;
use crate::monitor::spec::ContainerSpec;

/// Which of a container's streams an attached client gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// An attach that arrived before the container started (`docker run` attaches first).
/// The stream is delivered before the container's process runs, so no output is lost.
#[derive(Debug)]
pub struct PendingAttach {
    pub options: AttachOptions,
    pub reply: oneshot::Sender<Result<UnixStream, ExecError>>,
}

/// From `ContainerStoreActor` on start. Spawns the container's monitor, connects each
/// pending attach, then lets the container's process run. Independent starts run
/// concurrently.
///
/// `spec.state_dir` should be [`super::state_dir`]`(exec_root, id)` (an empty path is
/// filled in): `RestoreContainer` finds the monitor there by id alone.
#[derive(Debug, Message)]
#[rtype(result = "Result<Started, ExecError>")]
pub struct StartContainer {
    pub spec: ContainerSpec,
    pub attaches: Vec<PendingAttach>,
    /// A network namespace, made and wired by the network actor, that the container joins
    /// instead of getting a new one (`spec.join_netns` is set from it). berthd keeps no
    /// copy: the namespace lives as long as the container's processes.
    pub netns: Option<OwnedFd>,
    /// The container was set up ahead by a [`Prestart`]: its monitor is let go (after a
    /// new set-up, with the same network namespace, if `spec` no longer matches).
    pub prestarted: bool,
}

impl StartContainer {
    /// A start in a network namespace of its own making (or the host's).
    pub fn new(spec: ContainerSpec, attaches: Vec<PendingAttach>) -> Self {
        StartContainer {
            spec,
            attaches,
            netns: None,
            prestarted: false,
        }
    }
}

/// From `ContainerStoreActor` during a create, once the container's layer exists: a
/// monitor gets `spec` now and sets the container up (cgroup, namespaces, mounts) while
/// the create is made durable, and holds it, its process not yet run, for the start
/// ([`StartContainer::prestarted`]) or until a [`DropPrestart`] (or a removal). Replies
/// once the monitor has the spec.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ExecError>")]
pub struct Prestart {
    pub spec: ContainerSpec,
    /// As [`StartContainer::netns`]; kept (a copy) for a set-up made again at the start.
    pub netns: Option<OwnedFd>,
}

/// From `ContainerStoreActor` when a container set up ahead was not started in time (or
/// its create failed): its monitor undoes the set-up and exits. No reply; a later start
/// or cleanup of the container waits for that.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct DropPrestart {
    pub id: String,
}

/// From `api::archive` (`docker cp`, `docker export` of a container that does not run):
/// resolves once the teardown of the container's last monitor (a set-up ahead just let go
/// of) is over, so that nothing else has the container's layer mounted.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct AwaitReleased {
    pub id: String,
}

/// The reply to [`StartContainer`].
#[derive(Debug, Clone)]
pub struct Started {
    /// The container init's pid in the host's pid namespace.
    pub pid: i32,
    pub started_at: DateTime<Utc>,
}

/// From the supervisor, once, before `Init`: where exits are reported.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SubscribeExits(pub Recipient<ContainerExited>);

/// To the subscriber (`ContainerStoreActor`) when a container's process has exited and its
/// output has been written out.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ContainerExited {
    pub id: String,
    pub exit_code: i32,
    pub finished_at: DateTime<Utc>,
    pub oom_killed: bool,
    /// Set when the monitor died without an exit status (killed, or crashed): the store
    /// shows it as `State.Error` and ends the container's processes left running.
    pub monitor_lost: bool,
}

/// From `ContainerStoreActor` (stop, kill, shutdown): sends `signal` to the container's
/// init. `NotRunning` when there is no live monitor for `id`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ExecError>")]
pub struct SignalContainer {
    pub id: String,
    pub signal: i32,
}

/// From `ContainerStoreActor` for an attach to a running container. The stream carries
/// Docker's stdcopy frames (or raw bytes with a TTY) out, and raw stdin in; shutting down
/// its write side ends the container's stdin (with `StdinOnce`).
#[derive(Debug, Message)]
#[rtype(result = "Result<UnixStream, ExecError>")]
pub struct AttachContainer {
    pub id: String,
    pub options: AttachOptions,
}

/// From `ContainerStoreActor` for `POST /containers/{id}/resize` (TTY only).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ExecError>")]
pub struct ResizeContainer {
    pub id: String,
    pub height: u16,
    pub width: u16,
}

/// From `ContainerStoreActor::Init` for each container its records say was running:
/// re-attaches to a monitor that is still alive, or reads the exit status it left.
#[derive(Debug, Message)]
#[rtype(result = "Result<RestoreState, ExecError>")]
pub struct RestoreContainer {
    pub id: String,
}

/// From `ContainerStoreActor::Init` for each container its records say is not running:
/// a monitor still alive there ran a start that a crash of berthd cut short before the
/// store recorded it (the start was never answered). The container is killed (SIGKILL
/// through its monitor, whose exit is awaited, 10 s at most) so that the record, created
/// or exited, is true again and nothing of it is left running or mounted. Replies
/// whether a monitor was found.
#[derive(Debug, Message)]
#[rtype(result = "bool")]
pub struct ReapOrphan {
    pub id: String,
}

/// The reply to [`RestoreContainer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreState {
    /// The monitor is alive and watched again; its exit will be reported as usual.
    Running { pid: i32 },
    /// The container exited while berthd was away.
    Exited {
        exit_code: i32,
        finished_at: DateTime<Utc>,
    },
    /// Neither a monitor nor an exit status: the host rebooted, or the exec root was lost.
    Gone,
}

/// From `ContainerStoreActor` after removal: deletes the container's state dir under the
/// exec root, and its cgroup `cgroup` (relative to each hierarchy) if it is still there
/// (a monitor that died before the container's exit leaves it).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ExecError>")]
pub struct CleanupContainer {
    pub id: String,
    pub cgroup: Option<String>,
}

/// From `ContainerStoreActor` when a create begins: a start is likely to follow, so the
/// exec actor gets ready for it: a spare monitor spawned (see [`super::SPARE_TTL`]) and,
/// on v1 cgroup hosts, the grace period of the init's cgroup move started (see
/// [`crate::sys::cgroups::V1Warmup`]). No reply.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct PrepareStart;

/// From `ContainerStoreActor` for `POST /exec/{id}/start`: runs `spec` in container
/// `container_id` through its monitor (see [`crate::monitor::exec`]). Replies once the
/// command runs; `NotRunning` without a live monitor, `StartFailed` (Docker's text) when
/// the command could not be started.
#[derive(Debug, Message)]
#[rtype(result = "Result<ExecRunning, ExecError>")]
pub struct RunExec {
    pub container_id: String,
    pub spec: crate::monitor::proto::ExecSpec,
}

/// The reply to [`RunExec`].
#[derive(Debug)]
pub struct ExecRunning {
    /// The exec's pid in the host's pid namespace.
    pub pid: i32,
    /// Unless detached: the exec's stream (stdcopy frames, or raw bytes with
    /// `raw_stream`, out; its stdin in; a half-close ends its stdin). It ends after the
    /// exec's exit was reported as an [`ExecEvent::Exited`].
    pub stream: Option<UnixStream>,
}

/// From `ContainerStoreActor` for `POST /exec/{id}/resize` (tty execs only).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ExecError>")]
pub struct ResizeExecTty {
    pub container_id: String,
    pub exec_id: String,
    pub height: u16,
    pub width: u16,
}

/// From `ContainerStoreActor` when an exec is created: its start is likely to follow, so
/// on v1 cgroup hosts the grace period of its cgroup move starts now (see
/// [`crate::sys::cgroups::V1Warmup`]). No reply.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct PrepareExec;

/// From the supervisor, once, before `Init`: where [`ExecEvent`]s are reported.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SubscribeExecEvents(pub Recipient<ExecEvent>);

/// To the subscriber (`ContainerStoreActor`): what the monitors report of execs.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub enum ExecEvent {
    /// An exec exited and its output went out; its stream ends after this was sent.
    Exited {
        container_id: String,
        exec_id: String,
        exit_code: i32,
    },
    /// A container watched again after a restart runs these execs (or ran them, with an
    /// exit code, while berthd was away).
    Restored {
        container_id: String,
        execs: Vec<crate::monitor::proto::ExecState>,
    },
}
