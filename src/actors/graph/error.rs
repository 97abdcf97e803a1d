//! Errors of the graph subsystem.

use std::path::PathBuf;

use crate::error::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("No such image: {reference}")]
    ImageNotFound { reference: String },
    #[error("storage driver {name} is not supported (use overlay2 or vfs)")]
    UnknownDriver { name: String },
    #[error("storage driver {name} cannot be used here: {reason}")]
    DriverUnusable { name: String, reason: String },
    #[error("no storage driver can be used in {root}")]
    NoDriver { root: PathBuf },
    #[error("{path} could not be accessed")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The tarball given to `docker import` is not a safe, readable tar archive.
    #[error("invalid archive: {reason}")]
    InvalidArchive { reason: String },
    /// A repository name or tag that Docker would refuse.
    #[error("invalid reference format: {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    /// A `docker import --change` instruction that cannot be applied.
    #[error("invalid change {change:?}: {reason}")]
    InvalidChange { change: String, reason: String },
    /// A container id that cannot name a layer directory.
    #[error("invalid container id {id:?}")]
    InvalidContainerId { id: String },
    /// The container already has a read-write layer.
    #[error("container {container_id} already has a read-write layer")]
    LayerExists { container_id: String },
    /// `docker rmi` of an image that a container or a tag still holds (dockerd's text).
    #[error("{message}")]
    Conflict { message: String },
    /// A volume name that no volume has (dockerd's text).
    #[error("get {name}: no such volume")]
    VolumeNotFound { name: String },
    /// A volume create that the local driver refuses (dockerd's text where it has one).
    #[error("{message}")]
    Invalid { message: String },
    /// A volume driver other than `local`.
    #[error(
        "create {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found"
    )]
    VolumeDriverNotFound { name: String, driver: String },
    /// A list filter dockerd would refuse.
    #[error(transparent)]
    Filter(#[from] crate::model::filters::FilterError),
    /// A pull, push or login failed.
    #[error(transparent)]
    Registry(#[from] crate::actors::graph::registry::RegistryError),
    /// A message arrived before `Init` finished (or after it failed).
    #[error("the graph subsystem is not initialised")]
    NotReady,
    /// A blocking task panicked or was cancelled.
    #[error("the {operation} task failed")]
    TaskFailed { operation: &'static str },
}

impl GraphError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            GraphError::ImageNotFound { .. }
            | GraphError::VolumeNotFound { .. }
            | GraphError::VolumeDriverNotFound { .. } => ErrorKind::NotFound,
            GraphError::Invalid { .. } => ErrorKind::InvalidParameter,
            GraphError::Filter(e) => e.kind(),
            GraphError::Registry(e) => e.kind(),
            GraphError::UnknownDriver { .. }
            | GraphError::InvalidArchive { .. }
            | GraphError::InvalidReference { .. }
            | GraphError::InvalidChange { .. }
            | GraphError::InvalidContainerId { .. } => ErrorKind::InvalidParameter,
            GraphError::LayerExists { .. } | GraphError::Conflict { .. } => ErrorKind::Conflict,
            GraphError::NotReady => ErrorKind::Unavailable,
            GraphError::DriverUnusable { .. }
            | GraphError::NoDriver { .. }
            | GraphError::Io { .. }
            | GraphError::TaskFailed { .. } => ErrorKind::System,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_text_is_dockers() {
        let e = GraphError::ImageNotFound {
            reference: "busybox:latest".into(),
        };
        assert_eq!(e.to_string(), "No such image: busybox:latest");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = GraphError::InvalidArchive { reason: "x".into() };
        assert_eq!(e.kind(), ErrorKind::InvalidParameter);
    }
}
