//! Errors of the name graph.

use std::path::PathBuf;

use crate::error::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum GraphDbError {
    /// Docker's text, so that scripts matching on it keep working.
    #[error(
        "Conflict. The container name \"{name}\" is already in use by container \"{holder}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse { name: String, holder: String },
    #[error("link graph {path} could not be opened")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("link graph {path} could not be created")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("link graph {op} failed{}", disk_full(source))]
    Sqlite {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("link graph is closed")]
    Closed,
}

/// SQLite's "database or disk is full" is the data root's disk full (`ENOSPC`): say so in
/// the words every other write in berthd uses, so that the cause reads the same.
fn disk_full(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => ": no space left on device",
        _ => "",
    }
}

impl GraphDbError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            GraphDbError::NameInUse { .. } => ErrorKind::Conflict,
            GraphDbError::Open { .. }
            | GraphDbError::Create { .. }
            | GraphDbError::Sqlite { .. } => ErrorKind::System,
            GraphDbError::Closed => ErrorKind::Unavailable,
        }
    }
}
