//! The only home of raw syscalls and `unsafe`.
pub mod env;
pub mod systemd;
