//! The only home of raw syscalls and `unsafe`.
//!
//! - [`at`]: calls relative to an open directory that never follow a symlink: reading and
//!   writing inside a container's root (`docker cp`, `docker export`).
//! - [`cgroups`]: cgroup v1/v2 layout detection, container cgroups and their limits.
//! - [`cgroup_live`]: a running container's cgroup as berthd reads and changes it: the
//!   freezer (pause), its pids (top), its counters (stats) and new limits (update).
//! - [`devices`]: the device allow-list (v1 rules, the v2 eBPF program) and the nodes of
//!   `--device`.
//! - [`cgroupfs`]: the read-only cgroupfs a container sees at /sys/fs/cgroup, and its
//!   cgroup namespace.
//! - [`namespaces`]: the container init's `clone`, hostname, loopback; the daemon's network
//!   sandboxes and the overlay probe's private mount namespace.
//! - [`enter`]: entering a running container (`docker exec`): the fork into its cgroup and
//!   pid namespace, the move into its other namespaces.
//! - [`mounts`]: the container's root filesystem: rootfs, /proc, /sys, /dev, pivot_root,
//!   masked and read-only paths; the mounts `docker cp` and `docker export` make of a
//!   container in a private mount namespace.
//! - [`ipc`]: the container's /dev/shm with `--ipc none` and `--ipc host`.
//! - [`caps`]: capability sets and the switch to the container's user.
//! - [`seccomp`]: system call filters compiled with libseccomp, installed by the init.
//! - [`privileged`]: what `--privileged` opens: the host's devices, a writable /sys.
//! - [`pty`]: pseudo terminals and window sizes.
//! - [`rlimit`]: resource limits (`--ulimit`) and berthd's own hard limits.
//! - [`ports`]: the host ports that published container ports hold.
//! - [`process`]: spawning the monitor, reaping its first process, daemonizing, signals, fd
//!   passing.
//! - [`fs`]: the graph's file system calls on the data root: device nodes, times, `syncfs`,
//!   the backing filesystem and `d_type`, the overlay probe's test mount, unmounts,
//!   `O_DIRECT`.
//! - [`host`]: the effective user and `uname`.
//! - [`env`](mod@env): environment changes before threads start.
//! - [`systemd`]: sockets passed by systemd.
//!
//! Every error names the path or the call that failed and keeps the errno; the `fs` calls
//! return the bare `io::Error`, and their callers' errors name the path.

pub mod at;
pub mod caps;
pub mod cgroup_live;
pub mod cgroupfs;
pub mod cgroups;
pub mod devices;
pub mod enter;
pub mod env;
pub mod fs;
pub mod host;
pub mod ipc;
pub mod mounts;
pub mod namespaces;
pub mod ports;
pub mod privileged;
pub mod process;
pub mod pty;
pub mod rlimit;
pub mod seccomp;
pub mod systemd;

use std::io;
use std::path::PathBuf;

/// A failed system call, naming what it was applied to.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("error mounting {source_name:?} to rootfs at {target:?}")]
    Mount {
        source_name: String,
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("error unmounting {target:?}")]
    Unmount {
        target: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("error creating {path:?}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("error writing {path:?}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("pivot_root to {path:?} failed")]
    PivotRoot {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A `--device` that names no device node (dockerd's words).
    #[error("error gathering device information while adding custom device {path:?}")]
    Device {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A device of a blkio setting that could not be found (dockerd's `stat <path>`).
    #[error("stat {}", path.display())]
    Stat {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("error reading {path:?}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{call} failed")]
    Call {
        call: &'static str,
        #[source]
        source: io::Error,
    },
}

impl SysError {
    pub(crate) fn call(call: &'static str, e: nix::Error) -> Self {
        SysError::Call {
            call,
            source: io::Error::from(e),
        }
    }
}
