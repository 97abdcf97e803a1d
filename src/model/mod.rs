//! Typed Engine API models and on-disk records, at the bottom of the house: imported by
//! `api`, `actors`, `monitor` and `sys`, importing none of them.
//!
//! The request and response bodies are the types that `bollard-stubs` 1.41.0 generates
//! from the Engine API's own swagger for API 1.41, the version berthd announces
//! (re-exported as [`api`]). berthd adds what the generated types cannot say: which keys
//! dockerd always prints (Go's zero values and nulls), the create request's parsing with
//! the path of a bad field, and the field table (what berthd does with each field).

pub mod complete;
pub mod spec;

pub use bollard_stubs::models as api;

pub mod create;
pub mod exec;
pub mod fields;
pub mod filters;
pub mod logconfig;
pub mod ulimit;
pub mod version;
