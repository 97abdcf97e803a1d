//! Errors of a pull, push or login.
//!
//! The variants keep the registry's own words as text rather than the client's error
//! value: a shared download's result goes to every pull that waits for it, so it must be
//! `Clone`, which the client's error is not.

use crate::error::ErrorKind;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// A reference that is not a valid image name, tag or digest.
    #[error("invalid reference format: {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    /// The registry has no manifest of that name and tag or digest (dockerd's text).
    #[error("manifest for {reference} not found: manifest unknown: manifest unknown")]
    ManifestUnknown { reference: String },
    /// A pull the registry refused for want of credentials (dockerd's text).
    #[error(
        "pull access denied for {name}, repository does not exist or may require 'docker login': {reason}"
    )]
    PullDenied { name: String, reason: String },
    /// A push of a name no local image has (dockerd's text).
    #[error("An image does not exist locally with the tag: {name}")]
    NotLocal { name: String },
    /// A push the registry refused for want of credentials.
    #[error("unauthorized: authentication required: {reason}")]
    PushDenied { reason: String },
    /// `docker login` with credentials the registry refuses.
    #[error("login attempt to {registry} failed with status: {status}")]
    LoginFailed { registry: String, status: String },
    /// A manifest list or index with nothing for the platform wanted (dockerd's text).
    #[error("no matching manifest for {platform} in the manifest list entries")]
    NoMatchingPlatform { platform: String },
    /// A blob or manifest whose bytes are not the digest that named them.
    #[error("filesystem layer verification failed for digest {digest}")]
    DigestMismatch { digest: String },
    /// A manifest or config that cannot be read.
    #[error("invalid {what} from {reference}: {reason}")]
    BadDocument {
        what: &'static str,
        reference: String,
        reason: String,
    },
    /// Something berthd does not pull yet (zstd layers, schema 1 manifests, ...).
    #[error("{what}")]
    Unsupported { what: String },
    /// An HTTPS registry where only plain HTTP is configured, or the reverse.
    #[error("registry {registry}: {reason}")]
    Transport { registry: String, reason: String },
    /// Any other failure the registry or the network reported.
    #[error("error from registry {registry}: {message}")]
    Remote { registry: String, message: String },
    /// A local file of the pull or push failed.
    #[error("{path}: {message}")]
    Local { path: String, message: String },
    /// A pull or push task panicked or was dropped.
    #[error("the {operation} task failed")]
    TaskFailed { operation: &'static str },
}

impl RegistryError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            RegistryError::InvalidReference { .. } | RegistryError::BadDocument { .. } => {
                ErrorKind::InvalidParameter
            }
            RegistryError::ManifestUnknown { .. }
            | RegistryError::PullDenied { .. }
            | RegistryError::NotLocal { .. }
            | RegistryError::NoMatchingPlatform { .. } => ErrorKind::NotFound,
            RegistryError::PushDenied { .. } | RegistryError::LoginFailed { .. } => {
                ErrorKind::Unauthorized
            }
            RegistryError::Unsupported { .. } => ErrorKind::NotImplemented,
            RegistryError::DigestMismatch { .. }
            | RegistryError::Transport { .. }
            | RegistryError::Remote { .. }
            | RegistryError::Local { .. }
            | RegistryError::TaskFailed { .. } => ErrorKind::System,
        }
    }

    pub(super) fn local(path: &std::path::Path, e: &std::io::Error) -> RegistryError {
        RegistryError::Local {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}
