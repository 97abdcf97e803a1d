//! Entering a running container (`docker exec`): the monitor's fork into the container's
//! cgroup and pid namespace, and the child's move into the container's other namespaces.
//!
//! The monitor is single-threaded, so it may fork, and `setns` changes the whole process.
//! The pid namespace is special: `setns` on it only changes where the caller's *children*
//! are born (`pid_for_children`), so the monitor sets it on itself once and every process
//! it forks afterwards is born in the container's pid namespace as the monitor's own child
//! (which it reaps, and which the kernel kills with the container's init). The other
//! namespaces are joined by the child after the fork.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;

use nix::sched::CloneFlags;
use nix::unistd::Pid;

use super::SysError;

/// The namespaces an exec joins after the fork, in order: the mount namespace last, since
/// the others are found through the host's `/proc`.
const JOINED: [(&str, CloneFlags); 5] = [
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// True when `/proc/<pid>/ns/<kind>` and the caller's `own` entry (`/proc/self/ns/<own>`)
/// name the same namespace. A kind the kernel lacks counts as the same.
fn same_ns(pid: i32, kind: &str, own: &str) -> Result<bool, SysError> {
    let theirs = match std::fs::metadata(format!("/proc/{pid}/ns/{kind}")) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound && kind == "cgroup" => return Ok(true),
        Err(source) => {
            return Err(SysError::Call {
                call: "stat /proc/<pid>/ns",
                source,
            });
        }
    };
    let ours =
        std::fs::metadata(format!("/proc/self/ns/{own}")).map_err(|source| SysError::Call {
            call: "stat /proc/self/ns",
            source,
        })?;
    Ok(theirs.dev() == ours.dev() && theirs.ino() == ours.ino())
}

/// Makes the caller's future children be born in the pid namespace of process `pid`
/// (the container's init), unless they already would be. The caller (the monitor) keeps
/// its own pid namespace. Returns whether anything changed.
pub fn set_pid_ns_for_children(pid: Pid) -> Result<bool, SysError> {
    let pid = pid.as_raw();
    if same_ns(pid, "pid", "pid_for_children")? {
        return Ok(false);
    }
    let ns = File::open(format!("/proc/{pid}/ns/pid")).map_err(|source| SysError::Call {
        call: "open /proc/<pid>/ns/pid",
        source,
    })?;
    nix::sched::setns(&ns, CloneFlags::CLONE_NEWPID)
        .map_err(|e| SysError::call("setns(CLONE_NEWPID)", e))?;
    Ok(true)
}

/// Makes the caller's future children be born in the caller's own pid namespace again
/// (after [`set_pid_ns_for_children`]): the OCI runtime's commands must not be born in a
/// container's pid namespace — nor in a dead one's, where every fork fails with `ENOMEM`.
pub fn reset_pid_ns_for_children() -> Result<(), SysError> {
    if same_ns(std::process::id() as i32, "pid", "pid_for_children")? {
        return Ok(());
    }
    let ns = File::open("/proc/self/ns/pid").map_err(|source| SysError::Call {
        call: "open /proc/self/ns/pid",
        source,
    })?;
    nix::sched::setns(&ns, CloneFlags::CLONE_NEWPID)
        .map_err(|e| SysError::call("setns(CLONE_NEWPID)", e))
}

/// Moves the calling process (single-threaded: an exec's child of the monitor) into the
/// cgroup, ipc, uts, net and mount namespaces of process `pid`, each one that differs
/// from its own (a container on the host's network stays there). Joining the mount
/// namespace makes the container's root the caller's root and working directory.
pub fn join_namespaces_of(pid: Pid) -> Result<(), SysError> {
    let pid = pid.as_raw();
    // Every descriptor is opened before the first move: /proc is the host's until then.
    let mut todo = Vec::new();
    for (kind, flag) in JOINED {
        if same_ns(pid, kind, kind)? {
            continue;
        }
        let f = File::open(format!("/proc/{pid}/ns/{kind}")).map_err(|source| SysError::Call {
            call: "open /proc/<pid>/ns",
            source,
        })?;
        todo.push((f, flag));
    }
    for (f, flag) in todo {
        nix::sched::setns(&f, flag).map_err(|e| SysError::call(setns_name(flag), e))?;
    }
    Ok(())
}

fn setns_name(flag: CloneFlags) -> &'static str {
    match flag {
        CloneFlags::CLONE_NEWCGROUP => "setns(CLONE_NEWCGROUP)",
        CloneFlags::CLONE_NEWIPC => "setns(CLONE_NEWIPC)",
        CloneFlags::CLONE_NEWUTS => "setns(CLONE_NEWUTS)",
        CloneFlags::CLONE_NEWNET => "setns(CLONE_NEWNET)",
        _ => "setns(CLONE_NEWNS)",
    }
}

/// The kernel's `struct clone_args` (version 2, with `cgroup`).
#[repr(C)]
#[derive(Debug, Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What [`fork_into_cgroup`] returned in each process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// In the parent: the child's pid.
    Parent { child: Pid },
    /// In the child: whether it was born in the cgroup asked for.
    Child { in_cgroup: bool },
}

/// Forks the calling process. With `cgroup` (a cgroup v2 directory), the child is born in
/// that cgroup (`clone3` with `CLONE_INTO_CGROUP`), which spares it a migration; kernels
/// before 5.7, or a cgroup that refuses, fall back to a plain fork (the child's
/// `in_cgroup` false).
///
/// Must be called from a single-threaded process (the monitor).
pub fn fork_into_cgroup(cgroup: Option<BorrowedFd<'_>>) -> Result<Forked, SysError> {
    if let Some(cg) = cgroup {
        let args = CloneArgs {
            flags: CLONE_INTO_CGROUP,
            exit_signal: u64::try_from(libc::SIGCHLD).unwrap_or(17),
            cgroup: u64::try_from(cg.as_raw_fd()).unwrap_or(0),
            ..Default::default()
        };
        // SAFETY: clone3 without CLONE_VM and with a zero stack behaves as fork(2): the
        // child gets a copy-on-write copy of the address space and continues here. `args`
        // is a valid clone_args of the size passed, read by the kernel only during the
        // call; the caller is single-threaded, so no other thread holds a lock.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        if ret >= 0 {
            return forked(ret);
        }
    }
    // SAFETY: fork in a single-threaded process (the caller's contract): the child is a
    // full copy and may go on running Rust code.
    match unsafe { nix::unistd::fork() }.map_err(|e| SysError::call("fork", e))? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent { child }),
        nix::unistd::ForkResult::Child => Ok(Forked::Child { in_cgroup: false }),
    }
}

fn forked(ret: libc::c_long) -> Result<Forked, SysError> {
    if ret == 0 {
        return Ok(Forked::Child { in_cgroup: true });
    }
    let pid = i32::try_from(ret).map_err(|_| SysError::Call {
        call: "clone3",
        source: io::Error::new(io::ErrorKind::InvalidData, "pid out of range"),
    })?;
    Ok(Forked::Parent {
        child: Pid::from_raw(pid),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_namespaces_are_the_same() {
        let me = std::process::id() as i32;
        for (kind, _) in JOINED {
            assert!(same_ns(me, kind, kind).unwrap(), "{kind}");
        }
        assert!(same_ns(me, "pid", "pid").unwrap());
    }

    #[test]
    fn joining_ones_own_namespaces_changes_nothing() {
        // Every namespace is the caller's own: nothing to join, nothing opened.
        join_namespaces_of(Pid::this()).unwrap();
        assert!(!set_pid_ns_for_children(Pid::this()).unwrap());
    }
}
