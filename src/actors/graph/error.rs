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
}

impl GraphError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            GraphError::ImageNotFound { .. } => ErrorKind::NotFound,
            GraphError::UnknownDriver { .. } => ErrorKind::InvalidParameter,
            GraphError::DriverUnusable { .. }
            | GraphError::NoDriver { .. }
            | GraphError::Io { .. } => ErrorKind::System,
        }
    }
}
