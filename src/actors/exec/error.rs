//! Errors of the exec subsystem.

use std::path::PathBuf;

use crate::error::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("container {id} is not running")]
    NotRunning { id: String },
    #[error("container {id} is already running")]
    AlreadyRunning { id: String },
    #[error("exec root {path} could not be prepared")]
    ExecRoot {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("monitor for container {id} could not be started")]
    SpawnMonitor {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("monitor for container {id} failed")]
    Monitor {
        id: String,
        #[source]
        source: std::io::Error,
    },
    /// The container's process could not be started; the text is shown to the client as
    /// is (`exec: "foo": executable file not found in $PATH`), since the CLI reads it to
    /// choose exit status 127 or 126.
    #[error("{message}")]
    StartFailed { id: String, message: String },
    /// The container names a runtime the daemon does not have (any longer): dockerd's
    /// words at the start.
    #[error("runtime not found in config: {name}")]
    UnknownRuntime { name: String },
}

impl ExecError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ExecError::NotRunning { .. } | ExecError::AlreadyRunning { .. } => ErrorKind::Conflict,
            ExecError::ExecRoot { .. }
            | ExecError::SpawnMonitor { .. }
            | ExecError::Monitor { .. } => ErrorKind::System,
            ExecError::StartFailed { .. } | ExecError::UnknownRuntime { .. } => {
                ErrorKind::InvalidParameter
            }
        }
    }
}
