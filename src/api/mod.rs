//! The Engine API.
