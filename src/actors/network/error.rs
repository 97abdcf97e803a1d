//! Errors of the network subsystem.

use crate::error::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("netlink socket could not be opened")]
    Netlink {
        #[source]
        source: std::io::Error,
    },
    #[error("netlink query for {what} failed")]
    Query {
        what: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("bridge {name} not found: create it first or leave out -b")]
    BridgeNotFound { name: String },
    #[error("{name} is not a bridge")]
    NotABridge { name: String },
    #[error("networking is disabled (-b none): use --network none or --network host")]
    Disabled,
    #[error(
        "the default bridge network is not supported by this berthd yet: use --network none or --network host"
    )]
    BridgeUnsupported,
    #[error("network mode {mode} is not supported yet")]
    ModeUnsupported { mode: String },
    #[error("network {name} not found")]
    NoSuchNetwork { name: String },
}

impl NetworkError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            NetworkError::Netlink { .. } | NetworkError::Query { .. } => ErrorKind::System,
            NetworkError::BridgeNotFound { .. } | NetworkError::NotABridge { .. } => {
                ErrorKind::InvalidParameter
            }
            NetworkError::Disabled => ErrorKind::InvalidParameter,
            NetworkError::BridgeUnsupported | NetworkError::ModeUnsupported { .. } => {
                ErrorKind::NotImplemented
            }
            NetworkError::NoSuchNetwork { .. } => ErrorKind::NotFound,
        }
    }
}
