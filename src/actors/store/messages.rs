//! Messages of the [`ContainerStoreActor`](super::ContainerStoreActor).

use std::os::unix::net::UnixStream;

use actix::prelude::*;
use serde_json::Value;
use tokio::sync::oneshot;

use super::error::StoreError;
use crate::actors::exec::{AttachOptions, ExecError};

/// From `api::containers::create`. Resolves the image, reserves the name, makes the
/// read-write layer and persists the record.
#[derive(Debug, Message)]
#[rtype(result = "Result<Created, StoreError>")]
pub struct CreateContainer {
    pub name: Option<String>,
    /// The request body, parsed (`model::create::parse_create`); validated by the store.
    pub request: crate::model::create::CreateRequest,
}

#[derive(Debug, Clone)]
pub struct Created {
    pub id: String,
    pub warnings: Vec<String>,
}

/// From `api::containers::start`. Running → `AlreadyRunning` (304).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct StartContainer {
    pub id: String,
}

/// From `api::containers::stop` and `restart`. Not running → `NotRunning` (304).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct StopContainer {
    pub id: String,
    /// Seconds before SIGKILL; `None`: the container's StopTimeout, else 10.
    pub timeout: Option<i64>,
    pub signal: Option<String>,
}

/// From `api::containers::kill`. Not running → 409.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct KillContainer {
    pub id: String,
    pub signal: Option<String>,
}

/// From `api::containers::remove`. Running without `force` → 409.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct RemoveContainer {
    pub id: String,
    pub force: bool,
    /// `v`: its anonymous volumes too.
    pub volumes: bool,
}

/// From `api::containers::prune` (`docker container prune`): the stopped containers that
/// `filters` (`until`, `label`, `label!`) select, by id.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<crate::actors::graph::ImageUser>, StoreError>")]
pub struct PruneCandidates {
    pub filters: crate::model::filters::Filters,
}

/// From `api::containers::rename` (`docker rename`).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct RenameContainer {
    pub id: String,
    /// The new name, with or without the leading `/`.
    pub name: String,
}

/// From the API, for an event that an API handler completes rather than one message
/// (`restart` after its stop and start, `commit`): published with the container's
/// attributes and `extra`. A container gone meanwhile has no event.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct PublishEvent {
    pub id: String,
    pub action: &'static str,
    pub extra: Vec<(&'static str, String)>,
}

/// From `api::containers::list`: the body of `GET /containers/json`, encoded.
#[derive(Debug, Message)]
#[rtype(result = "Result<bytes::Bytes, StoreError>")]
pub struct ListContainers {
    pub all: bool,
    /// `None` or 0: no limit. A limit lists stopped containers too, as in dockerd.
    pub limit: Option<usize>,
    /// The compiled `filters` query (its `ancestor` images already resolved); `None`
    /// without one, which keeps the list path free of the filter's work.
    pub filter: Option<crate::model::filters::ContainerFilter>,
}

/// From `api::containers::inspect`: the whole `docker inspect` document.
#[derive(Debug, Message)]
#[rtype(result = "Result<Value, StoreError>")]
pub struct InspectContainer {
    pub id: String,
}

/// From `api::containers::wait`. The reply arrives at once (so the API can send its
/// headers); the receiver fires when the condition is met.
#[derive(Debug, Message)]
#[rtype(result = "Result<oneshot::Receiver<WaitOutcome>, StoreError>")]
pub struct WaitContainer {
    pub id: String,
    pub condition: WaitCondition,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: &str) -> Result<WaitCondition, StoreError> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(StoreError::InvalidCondition {
                condition: other.to_owned(),
            }),
        }
    }
}

/// What a waiter gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitOutcome {
    pub status_code: i32,
    pub error: Option<String>,
}

/// From the hijacked `POST /containers/{id}/attach`.
#[derive(Debug, Message)]
#[rtype(result = "Result<AttachStream, StoreError>")]
pub struct AttachToContainer {
    pub id: String,
    pub options: AttachOptions,
}

/// A stream to the container's monitor, now or once the container starts.
#[derive(Debug)]
pub enum AttachStream {
    Ready(UnixStream),
    /// The container has not started yet: the stream arrives just before its process runs.
    Pending(oneshot::Receiver<Result<UnixStream, ExecError>>),
}

/// From `api::containers::resize`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct ResizeTty {
    pub id: String,
    pub height: u16,
    pub width: u16,
}

/// From `api::images::delete` (`docker rmi`): every container and its image, to be
/// weighed by the graph's rules for removing an image.
#[derive(Debug, Message)]
#[rtype(result = "Vec<crate::actors::graph::ImageUser>")]
pub struct ListImageUsers;

/// From `api::volumes` (rm, ls's `dangling`, prune): container ids by the volumes they
/// mount.
#[derive(Debug, Message)]
#[rtype(result = "crate::actors::graph::VolumeUsers")]
pub struct ListVolumeUsers;

/// From `DELETE /containers/{parent}/{alias}?link=1` (`docker rm --link /web/db`): drops
/// the link `alias` of container `parent` (its name or id), in memory and in the graph db;
/// the containers stay. `NotFound` when there is no such link.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct RemoveLink {
    pub parent: String,
    pub alias: String,
}

/// From `GET /networks/{id}`: the running containers on each network.
#[derive(Debug, Message)]
#[rtype(result = "Vec<NetworkUser>")]
pub struct ListNetworkUsers;

/// A running container on a network (`bridge`, `host`, `none` or a user-defined one, by
/// name), with its endpoint there; one per endpoint.
#[derive(Debug, Clone)]
pub struct NetworkUser {
    pub id: String,
    pub name: String,
    pub network: String,
    pub endpoint: Option<crate::actors::network::Endpoint>,
}

/// From `/info` and `/metrics`: containers by state.
#[derive(Debug, Message)]
#[rtype(result = "Counts")]
pub struct CountContainers;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: usize,
    pub created: usize,
    pub running: usize,
    pub paused: usize,
    pub restarting: usize,
    pub exited: usize,
    pub dead: usize,
    pub removing: usize,
}

impl Counts {
    /// Docker's `ContainersStopped`: everything not running or paused.
    pub fn stopped(&self) -> usize {
        self.total - self.running - self.paused
    }
}

/// From `api::logs`: where a container's json-file log is and how to frame it.
#[derive(Debug, Message)]
#[rtype(result = "Result<LogInfo, StoreError>")]
pub struct GetLogInfo {
    pub id: String,
}

#[derive(Debug, Clone)]
pub struct LogInfo {
    pub id: String,
    pub path: std::path::PathBuf,
    pub tty: bool,
    pub running: bool,
    /// The log driver: `none` keeps nothing to read.
    pub driver: crate::model::logconfig::LogDriver,
    /// `max-file`: how many rotated files (`<path>.1`, …) there may be, plus one.
    pub max_file: u32,
}

/// From `api::live::pause`: freezes a running container's processes.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct PauseContainer {
    pub id: String,
}

/// From `api::live::unpause`: thaws a paused container's processes.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct UnpauseContainer {
    pub id: String,
}

/// From `api::containers::commit`: what a commit of the container starts from.
#[derive(Debug, Message)]
#[rtype(result = "Result<CommitSource, StoreError>")]
pub struct GetCommitSource {
    pub id: String,
}

#[derive(Debug, Clone)]
pub struct CommitSource {
    pub id: String,
    /// `sha256:<id>`.
    pub image: String,
    /// Its `Config`, as inspect shows it.
    pub config: serde_json::Value,
    /// Its command line (`Path` and `Args`, joined by spaces).
    pub command: String,
    pub running: bool,
    pub paused: bool,
}

/// From `api::live` (top, stats): where a container's processes and counters are.
#[derive(Debug, Message)]
#[rtype(result = "Result<LiveTarget, StoreError>")]
pub struct GetLiveTarget {
    pub id: String,
}

/// A container as top and stats read it.
#[derive(Debug, Clone)]
pub struct LiveTarget {
    pub id: String,
    /// With the leading `/`.
    pub name: String,
    /// The init's pid on the host (0 when not running).
    pub pid: i32,
    pub status: super::state::Status,
    pub cgroup: crate::sys::cgroup_live::LiveCgroup,
}

/// From `api::archive` (`docker cp`, `docker export`): how to reach a container's files
/// (`crate::containerfs` does the work, off the actor). With `write` (`PUT …/archive`) a
/// stopped container that its create set up ahead is let go first, so that the copy's
/// mount of its layer is the only one.
#[derive(Debug, Message)]
#[rtype(result = "Result<crate::containerfs::ContainerFs, StoreError>")]
pub struct GetContainerFs {
    pub id: String,
    pub write: bool,
}

/// From `api::live::update`: new resource limits (and restart policy) for a container,
/// written into its cgroup when it runs and into its record. Only the fields
/// [`crate::actors::store::update::HONOURED`] names are set; the API refused the rest.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<String>, StoreError>")]
pub struct UpdateContainer {
    pub id: String,
    pub update: crate::model::api::HostConfig,
}

/// From `api::exec::create` (`POST /containers/{id}/exec`): a new exec instance in a
/// running container; replies its id. The body was parsed and checked by
/// `model::exec::parse_exec_create`.
#[derive(Debug, Message)]
#[rtype(result = "Result<String, StoreError>")]
pub struct CreateExec {
    pub container: String,
    pub request: crate::model::exec::ExecCreate,
}

/// From the hijacked `POST /exec/{id}/start`: runs the exec. Errors before the process
/// exists (no such exec, its container not running or paused) are the request's; the
/// others dockerd writes into the stream.
#[derive(Debug, Message)]
#[rtype(result = "Result<ExecStarted, StoreError>")]
pub struct StartExec {
    pub id: String,
    pub detach: bool,
    /// The stream carries raw bytes (the start's `Tty`), else stdcopy frames.
    pub raw_stream: bool,
    /// The start's `ConsoleSize` (API 1.42), over the create's.
    pub console_size: Option<(u16, u16)>,
}

/// The reply to [`StartExec`].
#[derive(Debug)]
pub struct ExecStarted {
    /// Unless detached: the exec's stream to its monitor.
    pub stream: Option<UnixStream>,
    /// Fires (or is dropped) once the exec's exit is recorded: a client that saw its
    /// stream end reads the exit code next.
    pub exited: oneshot::Receiver<()>,
}

/// From `api::exec::inspect` (`GET /exec/{id}/json`).
#[derive(Debug, Message)]
#[rtype(result = "Result<crate::model::api::ExecInspectResponse, StoreError>")]
pub struct InspectExec {
    pub id: String,
}

/// From `api::exec::resize` (`POST /exec/{id}/resize`).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct ResizeExec {
    pub id: String,
    pub height: u16,
    pub width: u16,
}

/// From `POST /networks/{id}/connect`: container `container` (name, id or prefix) joins
/// user-defined network `attach.network_id` (`docker network connect`): a running one
/// gets one more interface at once (`ConnectEndpoint`), a stopped one at its next start.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct ConnectNetwork {
    pub container: String,
    pub attach: crate::actors::network::Attachment,
}

/// From `POST /networks/{id}/disconnect`: container `container` leaves user-defined
/// network `network_id` (a running one loses that interface at once,
/// `DisconnectEndpoint`).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct DisconnectNetwork {
    pub container: String,
    pub network_id: String,
    pub network_name: String,
    /// `-f`: also when the container is not connected (nothing to do then).
    pub force: bool,
}
