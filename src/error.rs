//! The kinds of failure every subsystem error maps to.
//!
//! Each subsystem has its own `thiserror` enum (`GraphError`, `ExecError`, …) with a
//! `kind()` method; the API turns the kind into a status code (see `api::error`).

/// What went wrong, as far as a client is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The object named in the request does not exist (404).
    NotFound,
    /// The request is malformed or names something impossible (400).
    InvalidParameter,
    /// The request conflicts with the object's state or another object (409).
    Conflict,
    /// The registry refused the credentials (401).
    Unauthorized,
    /// The request asks for the state the object is already in (304).
    NotModified,
    /// The request is understood and refused for good (403: a predefined network's
    /// removal).
    Forbidden,
    /// The daemon does not support this (501).
    NotImplemented,
    /// The daemon is shutting down or a subsystem is unavailable (503).
    Unavailable,
    /// Anything else: the daemon or the system failed (500).
    System,
}
