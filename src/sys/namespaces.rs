//! Namespaces: the container init's `clone`, its hostname and its loopback interface, the
//! network namespaces berthd makes ahead of starts, and the overlay probe's private mount
//! namespace.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::unistd::Pid;

use super::SysError;

/// Which namespaces the init gets besides mount: new ones where true (pid, uts and ipc
/// are shared with the host or joined only when a container asks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloneNamespaces {
    pub net: bool,
    pub pid: bool,
    pub uts: bool,
    pub ipc: bool,
}

/// What `clone_init` returned in each process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloneResult {
    Parent { child: Pid },
    Child,
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

/// Forks the calling process into a new mount namespace and the new namespaces `ns` asks
/// for at once,
/// like `fork` (the child gets a copy of the address space and continues from here as
/// pid 1 of its pid namespace). All namespaces exist as soon as the parent has the pid, so
/// the parent can hand the pid out for network wiring before the child has run.
///
/// With `cgroup` (a cgroup v2 directory), the child is born in that cgroup
/// (`CLONE_INTO_CGROUP`), which spares a migration; the second value says whether that
/// worked (kernels before 5.7, or a cgroup that refuses, fall back to plain `clone`).
///
/// Must be called from a single-threaded process (the monitor).
pub fn clone_init(
    ns: CloneNamespaces,
    cgroup: Option<BorrowedFd<'_>>,
) -> Result<(CloneResult, bool), SysError> {
    let mut flags = libc::CLONE_NEWNS;
    for (wanted, flag) in [
        (ns.net, libc::CLONE_NEWNET),
        (ns.pid, libc::CLONE_NEWPID),
        (ns.uts, libc::CLONE_NEWUTS),
        (ns.ipc, libc::CLONE_NEWIPC),
    ] {
        if wanted {
            flags |= flag;
        }
    }
    if let Some(cg) = cgroup {
        let args = CloneArgs {
            flags: u64::try_from(flags).unwrap_or(0) | CLONE_INTO_CGROUP,
            exit_signal: u64::try_from(libc::SIGCHLD).unwrap_or(17),
            cgroup: u64::try_from(cg.as_raw_fd()).unwrap_or(0),
            ..Default::default()
        };
        // SAFETY: clone3 without CLONE_VM and with a zero stack behaves as fork(2) (see
        // below). `args` is a valid clone_args of the size passed, read by the kernel
        // only during the call; the caller is single-threaded.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        if ret >= 0 {
            return to_result(ret).map(|r| (r, true));
        }
    }
    // SAFETY: raw clone without CLONE_VM and with a null stack behaves as fork(2): the
    // child gets a private copy-on-write copy of the address space and continues on a
    // copy of the current stack. The caller is single-threaded (the monitor), so no lock
    // can be held by another thread at the time of the copy. The remaining arguments
    // (parent_tid, child_tid, tls) are unused without the matching flags, and passing all
    // of them as zero makes the architecture-specific argument order irrelevant.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::c_long::from(flags | libc::SIGCHLD),
            0,
            0,
            0,
            0,
        )
    };
    to_result(ret).map(|r| (r, false))
}

fn to_result(ret: libc::c_long) -> Result<CloneResult, SysError> {
    if ret < 0 {
        return Err(SysError::Call {
            call: "clone",
            source: io::Error::last_os_error(),
        });
    }
    if ret == 0 {
        return Ok(CloneResult::Child);
    }
    let pid = i32::try_from(ret).map_err(|_| SysError::Call {
        call: "clone",
        source: io::Error::new(io::ErrorKind::InvalidData, "pid out of range"),
    })?;
    Ok(CloneResult::Parent {
        child: Pid::from_raw(pid),
    })
}

/// Sets the UTS host name (and NIS domain name when not empty).
pub fn set_hostname(hostname: &str, domainname: &str) -> Result<(), SysError> {
    if !hostname.is_empty() {
        nix::unistd::sethostname(hostname).map_err(|e| SysError::call("sethostname", e))?;
    }
    if !domainname.is_empty() {
        let bytes = domainname.as_bytes();
        // SAFETY: the pointer and length describe a live byte slice that the kernel only
        // reads.
        let r = unsafe { libc::setdomainname(bytes.as_ptr().cast(), bytes.len()) };
        if r != 0 {
            return Err(SysError::Call {
                call: "setdomainname",
                source: io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

/// Moves the calling thread into a new network namespace, brings its `lo` up, and returns
/// a descriptor that keeps the namespace alive.
///
/// Only the calling thread changes namespace (network namespaces are per thread), and it
/// stays there: call this on a thread that ends soon after, and never on a thread of a
/// pool.
pub fn unshare_netns() -> Result<OwnedFd, SysError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| SysError::call("unshare(CLONE_NEWNET)", e))?;
    let ns = std::fs::File::open("/proc/thread-self/ns/net").map_err(|source| SysError::Call {
        call: "open /proc/thread-self/ns/net",
        source,
    })?;
    loopback_up()?;
    Ok(OwnedFd::from(ns))
}

/// Moves the calling thread into a new mount namespace and makes every mount in it
/// private, so that nothing mounted there afterwards shows on the host (the overlay
/// probe's test mount). The namespace, and whatever is mounted in it, goes when the thread
/// exits, without an unmount to wait for.
///
/// Only the calling thread changes namespace, and it stays there: call this on a fresh
/// thread that ends soon after, and never on a thread of a pool.
pub fn unshare_private_mount_ns() -> Result<(), SysError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| SysError::call("unshare(CLONE_NEWNS)", e))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| SysError::call("mount(/, MS_REC|MS_PRIVATE)", e))
}

/// Moves the calling process (single-threaded: the container init) into network
/// namespace `ns`.
pub fn join_netns(ns: &OwnedFd) -> Result<(), SysError> {
    nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| SysError::call("setns(CLONE_NEWNET)", e))
}

/// Moves the calling thread (a short-lived one of berthd's: every socket it opens from
/// then on lives in `ns`) into network namespace `ns`.
pub fn enter_netns(ns: BorrowedFd<'_>) -> Result<(), SysError> {
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| SysError::call("setns(CLONE_NEWNET)", e))
}

/// Brings `lo` up in the calling thread's network namespace.
pub fn loopback_up() -> Result<(), SysError> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| SysError::call("socket", e))?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = libc::c_char::from_ne_bytes([*src]);
    }
    // SAFETY: SIOCGIFFLAGS reads the name from and writes the flags into `req`, which is
    // a valid, exclusively borrowed ifreq for the duration of the call.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) };
    if r != 0 {
        return Err(SysError::Call {
            call: "ioctl SIOCGIFFLAGS lo",
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: after SIOCGIFFLAGS the flags member of the union is the initialised one.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) };
    if r != 0 {
        return Err(SysError::Call {
            call: "ioctl SIOCSIFFLAGS lo",
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// A namespace of another process that the caller can join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsKind {
    Pid,
    Ipc,
    Mount,
}

impl NsKind {
    fn file(self) -> &'static str {
        match self {
            NsKind::Pid => "pid",
            NsKind::Ipc => "ipc",
            NsKind::Mount => "mnt",
        }
    }

    fn flag(self) -> nix::sched::CloneFlags {
        match self {
            NsKind::Pid => nix::sched::CloneFlags::CLONE_NEWPID,
            NsKind::Ipc => nix::sched::CloneFlags::CLONE_NEWIPC,
            NsKind::Mount => nix::sched::CloneFlags::CLONE_NEWNS,
        }
    }
}

/// Opens namespace `kind` of process `pid` (`/proc/<pid>/ns/...`).
pub fn open_ns_of(pid: i32, kind: NsKind) -> Result<OwnedFd, SysError> {
    let path = format!("/proc/{pid}/ns/{}", kind.file());
    std::fs::File::open(&path)
        .map(OwnedFd::from)
        .map_err(|source| SysError::Call {
            call: match kind {
                NsKind::Pid => "open /proc/<pid>/ns/pid",
                NsKind::Ipc => "open /proc/<pid>/ns/ipc",
                NsKind::Mount => "open /proc/<pid>/ns/mnt",
            },
            source,
        })
}

/// Moves the calling process (single-threaded: the monitor or the container init) into
/// namespace `ns` of kind `kind`. For a PID namespace only the children made afterwards
/// are in it.
pub fn join_ns(ns: &OwnedFd, kind: NsKind) -> Result<(), SysError> {
    nix::sched::setns(ns.as_fd(), kind.flag()).map_err(|e| {
        SysError::call(
            match kind {
                NsKind::Pid => "setns(CLONE_NEWPID)",
                NsKind::Ipc => "setns(CLONE_NEWIPC)",
                NsKind::Mount => "setns(CLONE_NEWNS)",
            },
            e,
        )
    })
}
