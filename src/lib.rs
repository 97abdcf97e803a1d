//! berth: a container engine daemon that speaks the Docker Engine API.
//!
//! Map of the crate:
//! - [`config`]: dockerd-compatible flags and daemon.json, merged and validated.
//! - [`daemon`]: system checks, work dirs, pidfile and sd_notify (seed steps 4.1 to 4.3, 4.12).
//! - [`actors`]: one actix actor per subsystem, started and stopped in order by
//!   [`actors::supervisor::DaemonSupervisor`].
//! - [`api`]: the Engine API routes (actix-web), errors and per-request tracing.
//! - [`server`]: listeners, and the hijacked attach and exec streams served below
//!   actix-http's HTTP/1 codec.
//! - [`containerfs`]: a container's files for `docker cp` and `docker export`, reached
//!   from berthd (`/proc/<pid>/root`, or a private mount namespace) and walked by descriptor.
//! - [`monitor`]: the per-container monitor process (berthd re-executed).
//! - [`security`]: capabilities, seccomp profiles, no_new_privs and masked paths, as
//!   dockerd computes them for a container.
//! - [`deleter`]: the background deletion of doomed directories after a removal's rename.
//! - [`sys`]: the only home of raw syscalls and `unsafe`.
//! - [`metrics`]: the Prometheus registry behind `/metrics`.
//! - [`events`]: the event log behind `/events` (`docker events`).
//! - [`model`]: typed Engine API bodies and on-disk records (bollard-stubs, API 1.41).

#![recursion_limit = "256"]

pub mod actors;
pub mod api;
pub mod config;
pub mod containerfs;
pub mod daemon;
pub mod deleter;
pub mod error;
pub mod events;
pub mod metrics;
pub mod model;
pub mod monitor;
pub mod security;
pub mod server;
pub mod sys;
pub mod util;

/// The test ledger (tests/common/ledger.rs): the unit tests that skip record it there.
#[cfg(test)]
#[path = "../tests/common/ledger.rs"]
pub(crate) mod test_ledger;
