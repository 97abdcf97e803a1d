//! The process settings the container init applies (`ContainerSpec::process`), each in
//! its own step so that `init.rs` calls them in order:
//!
//! - in the monitor, before the clone: [`join_namespaces`] (another container's PID and
//!   IPC namespaces: the init is born in them);
//! - before `pivot_root`: [`apply_ipc_shm`] (`/dev/shm` for `--ipc none` and `host`);
//! - after `pivot_root`, while `/proc/sys` is still writable: [`apply_sysctls`];
//! - after "go", while privileged and before the capabilities are dropped:
//!   [`apply_rlimits`], [`apply_oom_score_adj`].
//!
//! The supplementary groups (`--group-add`) are resolved with the user (`user.rs`), and
//! `--init` runs the command under `reaper.rs`.

use std::path::Path;

use super::lookup;
use super::spec::{IpcNs, PidNs, ProcessSpec};
use crate::model::ulimit;
use crate::sys::namespaces::{self, NsKind};
use crate::sys::{self, SysError};

/// Joins the PID and IPC namespaces of another container's init, in the monitor before it
/// clones the init without new ones of those kinds.
pub fn join_namespaces(p: &ProcessSpec) -> Result<(), String> {
    let join = |pid: i32, kind: NsKind, what: &str| -> Result<(), String> {
        let fd = namespaces::open_ns_of(pid, kind)
            .map_err(|e| format!("joining the {what} namespace of pid {pid}: {}", chain(&e)))?;
        namespaces::join_ns(&fd, kind)
            .map_err(|e| format!("joining the {what} namespace of pid {pid}: {}", chain(&e)))
    };
    if let PidNs::Join(pid) = p.pid {
        join(pid, NsKind::Pid, "PID")?;
    }
    if let IpcNs::Join(pid) = p.ipc {
        join(pid, NsKind::Ipc, "IPC")?;
    }
    Ok(())
}

fn chain(e: &SysError) -> String {
    crate::util::error_chain(e)
}

/// `/dev/shm` under the rootfs at `root` (before `pivot_root`): none with `--ipc none`,
/// the host's with `--ipc host`, the other container's with `--ipc container:<id>`; the
/// container's own tmpfs otherwise.
pub fn apply_ipc_shm(p: &ProcessSpec, root: &Path) -> Result<(), SysError> {
    match p.ipc {
        IpcNs::NoShm => sys::ipc::remove_shm(root),
        IpcNs::Host => sys::ipc::bind_host_shm(root),
        IpcNs::Join(pid) => sys::ipc::bind_shm_of(pid, root),
        IpcNs::Private => Ok(()),
    }
}

/// Writes the sysctls in the container's namespaces (after `pivot_root`, through the
/// container's /proc, before /proc/sys is made read-only).
pub fn apply_sysctls(p: &ProcessSpec) -> Result<(), String> {
    for (key, value) in &p.sysctls {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value).map_err(|e| {
            format!(
                "write sysctl key {key}: open {path}: {}",
                e.raw_os_error()
                    .map(|n| lookup::errno_text(nix::errno::Errno::from_raw(n)))
                    .unwrap_or_else(|| e.to_string())
            )
        })?;
    }
    Ok(())
}

/// Sets the resource limits (while privileged, before the capabilities are dropped).
pub fn apply_rlimits(p: &ProcessSpec) -> Result<(), String> {
    for u in &p.rlimits {
        let Some(resource) = ulimit::resource_of(&u.name) else {
            return Err(format!("invalid ulimit type: {}", u.name));
        };
        sys::rlimit::set(resource, u.soft, u.hard).map_err(|e| {
            let why = if e.raw_os_error() == Some(libc::EPERM) {
                ": the hard limit is above berthd's own, and raising a hard limit needs \
                 CAP_SYS_RESOURCE, which berthd does not hold"
            } else {
                ""
            };
            format!(
                "setrlimit {}={}:{} failed ({}){why}",
                u.name,
                u.soft,
                u.hard,
                errno_of(&e)
            )
        })?;
    }
    Ok(())
}

/// Writes `/proc/self/oom_score_adj` (while privileged).
pub fn apply_oom_score_adj(p: &ProcessSpec) -> Result<(), String> {
    let Some(v) = p.oom_score_adj else {
        return Ok(());
    };
    let path = "/proc/self/oom_score_adj";
    let own = std::fs::read_to_string(path).unwrap_or_default();
    std::fs::write(path, v.to_string())
        .map_err(|e| oom_score_adj_error(v, own.trim(), e.raw_os_error()))
}

/// For a runtime that writes the score itself (the oci driver's): the same refusal as
/// [`apply_oom_score_adj`] before anything is made, where the kernel would refuse it,
/// rather than the runtime's own words for a failed write.
pub fn check_oom_score_adj(p: &ProcessSpec) -> Result<(), String> {
    let Some(v) = p.oom_score_adj else {
        return Ok(());
    };
    let own = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
    let lowered = own.trim().parse::<i64>().is_ok_and(|o| v < o);
    let may = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false);
    if lowered && !may {
        return Err(oom_score_adj_error(v, own.trim(), Some(libc::EACCES)));
    }
    Ok(())
}

fn oom_score_adj_error(v: i64, own: &str, errno: Option<i32>) -> String {
    let text = errno
        .map(|n| lookup::errno_text(nix::errno::Errno::from_raw(n)))
        .unwrap_or_default();
    let why = if errno == Some(libc::EACCES) {
        format!(
            ": lowering it below berthd's own ({own}) needs CAP_SYS_RESOURCE, which berthd \
             does not hold"
        )
    } else {
        String::new()
    };
    format!("oom_score_adj {v} could not be set ({text}){why}")
}

fn errno_of(e: &std::io::Error) -> String {
    e.raw_os_error()
        .map(|n| lookup::errno_text(nix::errno::Errno::from_raw(n)))
        .unwrap_or_else(|| e.to_string())
}
