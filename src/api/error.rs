//! `ApiError`: every subsystem error, mapped to Docker's status codes and
//! `{"message": "..."}` bodies.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::actors::exec::ExecError;
use crate::actors::graph::GraphError;
use crate::actors::graphdb::GraphDbError;
use crate::actors::network::NetworkError;
use crate::actors::store::StoreError;
use crate::containerfs::ContainerFsError;
use crate::error::ErrorKind;
use crate::model::create::ModelError;
use crate::model::exec::ExecRequestError;
use crate::model::filters::FilterError;

/// An error a client sees.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::InvalidParameter, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Docker's mapping (moby `httpstatus`).
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidParameter => StatusCode::BAD_REQUEST,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::System => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(self.kind)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status == StatusCode::NOT_MODIFIED {
            // 304 carries no body.
            return HttpResponse::build(status).finish();
        }
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %self.message, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), error = %self.message, "request refused");
        }
        HttpResponse::build(status).json(serde_json::json!({ "message": self.message }))
    }
}

fn from_error<E: std::error::Error + 'static>(kind: ErrorKind, e: &E) -> ApiError {
    // Client-facing texts are the outer message; a system error gets its causes too, so
    // the operator sees why.
    let message = if kind == ErrorKind::System {
        crate::util::error_chain(e)
    } else {
        e.to_string()
    };
    ApiError::new(kind, message)
}

macro_rules! from_subsystem {
    ($($t:ty),*) => {$(
        impl From<$t> for ApiError {
            fn from(e: $t) -> Self {
                from_error(e.kind(), &e)
            }
        }
    )*};
}

from_subsystem!(
    FilterError,
    StoreError,
    GraphError,
    GraphDbError,
    NetworkError,
    ExecError,
    ModelError,
    ExecRequestError,
    ContainerFsError
);

/// API handlers wait for their actors without a deadline, so this is an actor that has
/// stopped: the daemon is shutting down.
impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        ApiError::new(
            ErrorKind::Unavailable,
            format!("the daemon is shutting down: {e}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_docker_statuses() {
        let table = [
            (ErrorKind::NotFound, 404),
            (ErrorKind::InvalidParameter, 400),
            (ErrorKind::Conflict, 409),
            (ErrorKind::NotModified, 304),
            (ErrorKind::NotImplemented, 501),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::System, 500),
        ];
        for (kind, code) in table {
            assert_eq!(status_of(kind).as_u16(), code);
        }
    }

    #[test]
    fn store_errors_keep_docker_texts() {
        let e: ApiError = StoreError::NotFound { id: "x".into() }.into();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(e.message, "No such container: x");
    }
}
