//! The per-container monitor: berthd re-executed as `berthd monitor`, one small
//! single-threaded process per container (like conmon or containerd-shim).
//!
//! It creates the container init (namespaces, mounts, pivot_root, cgroup, capabilities),
//! holds the container's stdio, writes its log, serves attach and signal requests on a
//! unix socket in the exec root, and records the exit status. It outlives berthd.

pub mod spec;

/// The monitor's entry point (`berthd monitor ...`); `args` follow the word `monitor`.
pub fn main(args: Vec<std::ffi::OsString>) -> i32 {
    let _ = args;
    eprintln!("berthd monitor: not built yet");
    1
}
