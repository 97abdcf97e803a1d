//! Errors of the container store.

use std::path::PathBuf;

use crate::actors::exec::ExecError;
use crate::actors::graph::GraphError;
use crate::actors::graphdb::GraphDbError;
use crate::actors::network::NetworkError;
use crate::error::ErrorKind;
use crate::model::filters::FilterError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("No such container: {id}")]
    NotFound { id: String },
    #[error("multiple containers match the prefix {prefix}: use more characters")]
    Ambiguous { prefix: String },
    #[error("Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName { name: String },
    #[error("invalid container config: {reason}")]
    InvalidConfig { reason: String },
    /// A value dockerd refuses too, in dockerd's words.
    #[error("{message}")]
    Invalid { message: String },
    /// A field berthd does not do yet (see docs/api-fields.md).
    #[error("berthd does not support {field} yet")]
    NotSupported { field: String },
    /// A field berthd will not do (see docs/api-fields.md).
    #[error("berthd does not support {field}: {reason}")]
    Refused { field: String, reason: String },
    #[error("no command specified")]
    NoCommand,
    #[error("container {id} is already running")]
    AlreadyRunning { id: String },
    #[error("container {id} is not running")]
    NotRunning { id: String },
    #[error("Container {id} is not running")]
    KillNotRunning { id: String },
    /// A start that joins the namespaces of container `id`, which is not running
    /// (`what` is dockerd's prefix, as `can't join IPC of container x: `).
    #[error("{what}container {id} is not running")]
    JoinNotRunning { what: String, id: String },
    /// `--network container:<name>` with `name` not running (dockerd's words).
    #[error("cannot join network of a non running container: {name}")]
    JoinNetNotRunning { name: String },
    /// A start whose linked container does not run (dockerd's words).
    #[error("Cannot link to a non running container: {child} AS {link}")]
    LinkNotRunning { child: String, link: String },
    #[error(
        "You cannot remove a running container {id}. Stop the container before attempting removal or force remove"
    )]
    RemoveRunning { id: String },
    #[error("removal of container {id} is already in progress")]
    RemovalInProgress { id: String },
    #[error("You cannot attach to a stopped container, start it first")]
    AttachStopped { id: String },
    /// A start of a paused container (dockerd's words).
    #[error("cannot start a paused container, try unpause instead")]
    Paused { id: String },
    /// An attach to a paused container, named as the client named it (dockerd's words).
    #[error("container {id} is paused, unpause the container before attach")]
    AttachPaused { id: String },
    #[error("Container {id} is already paused")]
    AlreadyPaused { id: String },
    #[error("Container {id} is not paused")]
    NotPaused { id: String },
    #[error("Container {id} is restarting, wait until the container is running")]
    Restarting { id: String },
    /// A live cgroup operation (pause, top, stats, update) failed.
    #[error("{what}: {detail}")]
    Cgroup { what: &'static str, detail: String },
    /// dockerd's `errCannotUpdate`: a conflict with the container's settings (409) or a
    /// failure to write its cgroup (500).
    #[error("Cannot update container {id}: {reason}")]
    CannotUpdate {
        id: String,
        reason: String,
        conflict: bool,
    },
    #[error("Invalid signal: {signal}")]
    InvalidSignal { signal: String },
    #[error("invalid condition: {condition:?}")]
    InvalidCondition { condition: String },
    #[error("container {id} did not stop")]
    StopTimeout { id: String },
    #[error("container record {path} could not be written")]
    Persist {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// A list filter the container list refuses (`before`/`since` naming nothing).
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    GraphDb(#[from] GraphDbError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    Security(#[from] crate::security::SecurityError),
    #[error("No such exec instance: {id}")]
    ExecNotFound { id: String },
    /// An exec into a container that is not running (dockerd's `errNotRunning`).
    #[error("Container {id} is not running")]
    ExecContainerNotRunning { id: String },
    #[error("Container {id} is paused, unpause the container before exec")]
    ExecPaused { id: String },
    #[error("Container {id} is restarting, wait until the container is running")]
    ExecRestarting { id: String },
    #[error("Error: Exec command {id} is already running")]
    ExecRunning { id: String },
    #[error("Error: Exec command {id} has already run")]
    ExecRan { id: String },
    #[error("exec {id} is not running")]
    ExecNotRunning { id: String },
    #[error("{actor} did not answer")]
    Mailbox {
        actor: &'static str,
        #[source]
        source: actix::MailboxError,
    },
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::NotFound { .. } | StoreError::ExecNotFound { .. } => ErrorKind::NotFound,
            StoreError::Ambiguous { .. }
            | StoreError::InvalidName { .. }
            | StoreError::InvalidConfig { .. }
            | StoreError::Invalid { .. }
            | StoreError::NotSupported { .. }
            | StoreError::Refused { .. }
            | StoreError::NoCommand
            | StoreError::InvalidSignal { .. }
            | StoreError::InvalidCondition { .. } => ErrorKind::InvalidParameter,
            StoreError::AlreadyRunning { .. } => ErrorKind::NotModified,
            StoreError::NotRunning { .. } => ErrorKind::NotModified,
            StoreError::KillNotRunning { .. }
            | StoreError::JoinNotRunning { .. }
            | StoreError::JoinNetNotRunning { .. }
            | StoreError::LinkNotRunning { .. }
            | StoreError::RemoveRunning { .. }
            | StoreError::RemovalInProgress { .. }
            | StoreError::AttachStopped { .. }
            | StoreError::Paused { .. }
            | StoreError::AttachPaused { .. }
            | StoreError::AlreadyPaused { .. }
            | StoreError::NotPaused { .. }
            | StoreError::Restarting { .. } => ErrorKind::Conflict,
            StoreError::Cgroup { .. } => ErrorKind::System,
            StoreError::CannotUpdate { conflict, .. } => {
                if *conflict {
                    ErrorKind::Conflict
                } else {
                    ErrorKind::System
                }
            }
            StoreError::ExecContainerNotRunning { .. }
            | StoreError::ExecPaused { .. }
            | StoreError::ExecRestarting { .. }
            | StoreError::ExecRunning { .. }
            | StoreError::ExecRan { .. }
            | StoreError::ExecNotRunning { .. } => ErrorKind::Conflict,
            StoreError::StopTimeout { .. } | StoreError::Persist { .. } => ErrorKind::System,
            StoreError::ShuttingDown => ErrorKind::Unavailable,
            StoreError::Filter(e) => e.kind(),
            StoreError::Graph(e) => e.kind(),
            StoreError::GraphDb(e) => e.kind(),
            StoreError::Network(e) => e.kind(),
            StoreError::Exec(e) => e.kind(),
            StoreError::Security(e) => e.kind(),
            StoreError::Mailbox { .. } => ErrorKind::Unavailable,
        }
    }

    /// A failed cgroup operation, with its cause in the message.
    pub fn cgroup(what: &'static str, e: &crate::sys::SysError) -> StoreError {
        let detail = match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        };
        StoreError::Cgroup { what, detail }
    }

    pub fn mailbox(actor: &'static str) -> impl FnOnce(actix::MailboxError) -> StoreError {
        move |source| StoreError::Mailbox { actor, source }
    }
}
