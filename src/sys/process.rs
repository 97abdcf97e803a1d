//! Processes and descriptors: spawning the monitor, reaping its first process, daemonizing
//! it, resetting signals for the container's exec, and passing descriptors over unix
//! sockets.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

use super::SysError;

/// The descriptor number the monitor finds its control socket at.
pub const MONITOR_CTL_FD: RawFd = 3;

/// Starts `exe monitor` with `ctl` as its descriptor 3 and nothing else inherited
/// (stdin and stdout are /dev/null, stderr too unless `BERTH_MONITOR_STDERR` names a file).
/// The monitor daemonizes at once, so the returned process exits within milliseconds and
/// only needs reaping (`waitpid`).
///
/// `posix_spawn` (glibc: `clone(CLONE_VM|CLONE_VFORK)`) rather than `fork`: berthd's page
/// tables are neither copied for the child nor torn down again by its exec, which made up
/// about a millisecond of every container start.
pub fn spawn_monitor(exe: &Path, ctl: OwnedFd) -> io::Result<libc::pid_t> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    // dup2 onto itself would keep close-on-exec: move a descriptor 3 out of the way.
    let ctl = if ctl.as_raw_fd() == MONITOR_CTL_FD {
        ctl.try_clone()?
    } else {
        ctl
    };
    let cstr = |b: &[u8]| CString::new(b).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput));
    let exe_c = cstr(exe.as_os_str().as_bytes())?;
    let monitor = cstr(b"monitor")?;
    let argv = [exe_c.as_ptr(), monitor.as_ptr(), std::ptr::null()];
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    let dev_null = cstr(b"/dev/null")?;
    // BERTH_MONITOR_STDERR=<file> keeps the monitors' diagnostics (for debugging); a file
    // that cannot be opened means /dev/null, as without it.
    let stderr_file = std::env::var_os("BERTH_MONITOR_STDERR").and_then(|p| {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(p)
            .ok()
    });

    let check = |r: libc::c_int| {
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(r))
        }
    };
    // SAFETY: the file actions and attributes are initialised before use and destroyed
    // once; every pointer handed to posix_spawn (paths, argv, envp) outlives the call.
    unsafe {
        let mut fa: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        check(libc::posix_spawn_file_actions_init(&mut fa))?;
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        if let Err(e) = check(libc::posix_spawnattr_init(&mut attr)) {
            libc::posix_spawn_file_actions_destroy(&mut fa);
            return Err(e);
        }
        let res = (|| {
            check(libc::posix_spawn_file_actions_addopen(
                &mut fa,
                0,
                dev_null.as_ptr(),
                libc::O_RDONLY,
                0,
            ))?;
            check(libc::posix_spawn_file_actions_addopen(
                &mut fa,
                1,
                dev_null.as_ptr(),
                libc::O_WRONLY,
                0,
            ))?;
            match &stderr_file {
                Some(f) => check(libc::posix_spawn_file_actions_adddup2(
                    &mut fa,
                    f.as_raw_fd(),
                    2,
                ))?,
                None => check(libc::posix_spawn_file_actions_addopen(
                    &mut fa,
                    2,
                    dev_null.as_ptr(),
                    libc::O_WRONLY,
                    0,
                ))?,
            }
            check(libc::posix_spawn_file_actions_adddup2(
                &mut fa,
                ctl.as_raw_fd(),
                MONITOR_CTL_FD,
            ))?;
            // Default dispositions and an empty mask, whatever berthd's threads use
            // (Rust ignores SIGPIPE; an ignored signal would survive the exec).
            let mut all: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            check(libc::posix_spawnattr_setsigdefault(&mut attr, &all))?;
            check(libc::posix_spawnattr_setsigmask(&mut attr, &none))?;
            check(libc::posix_spawnattr_setflags(
                &mut attr,
                (libc::POSIX_SPAWN_SETSIGDEF | libc::POSIX_SPAWN_SETSIGMASK) as libc::c_short,
            ))?;
            let mut pid: libc::pid_t = 0;
            check(libc::posix_spawn(
                &mut pid,
                exe_c.as_ptr(),
                &fa,
                &attr,
                argv.as_ptr().cast(),
                envp.as_ptr().cast(),
            ))?;
            Ok(pid)
        })();
        libc::posix_spawnattr_destroy(&mut attr);
        libc::posix_spawn_file_actions_destroy(&mut fa);
        res
    }
}

/// Takes ownership of the monitor's control socket at [`MONITOR_CTL_FD`]; `None` when
/// that descriptor is not open.
pub fn take_monitor_ctl_fd() -> Option<OwnedFd> {
    // SAFETY: F_GETFD only inspects the descriptor table entry.
    let open = unsafe { libc::fcntl(MONITOR_CTL_FD, libc::F_GETFD) } >= 0;
    if !open {
        return None;
    }
    // SAFETY: descriptor 3 is open (checked above), was handed to this process by its
    // spawner for this purpose, and nothing else in the process owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(MONITOR_CTL_FD) };
    let _ = nix::fcntl::fcntl(
        fd.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    Some(fd)
}

/// Forks; the parent exits at once, the child becomes a session leader without a
/// controlling terminal. Afterwards the caller is re-parented to init (or the nearest
/// subreaper) and no longer dies with, or depends on, its spawner.
///
/// Must be called while the process is single-threaded (the monitor's start).
pub fn daemonize() -> Result<(), SysError> {
    // SAFETY: the monitor calls this first thing, before it starts any thread, so the
    // child is an exact copy of a single-threaded process.
    match unsafe { nix::unistd::fork() }.map_err(|e| SysError::call("fork", e))? {
        nix::unistd::ForkResult::Parent { .. } => exit_now(0),
        nix::unistd::ForkResult::Child => {}
    }
    nix::unistd::setsid().map_err(|e| SysError::call("setsid", e))?;
    Ok(())
}

/// Exits the process at once, without running destructors or atexit handlers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions; it never returns.
    unsafe { libc::_exit(code) }
}

/// Blocks SIGCHLD (for a signalfd) and returns the mask to restore in children.
pub fn block_sigchld() -> Result<SigSet, SysError> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    let mut old = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
        .map_err(|e| SysError::call("sigprocmask", e))?;
    Ok(set)
}

/// Gives the calling process default dispositions and an empty signal mask, as a fresh
/// container process expects (Rust ignores SIGPIPE; the monitor blocks SIGCHLD).
pub fn reset_signals() -> Result<(), SysError> {
    for sig in Signal::iterator() {
        if sig == Signal::SIGKILL || sig == Signal::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL involves no handler code at all.
        let _ = unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) };
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(|e| SysError::call("sigprocmask", e))?;
    Ok(())
}

/// Sends `data` with `fds` attached (SCM_RIGHTS) on a unix socket. Returns bytes sent.
pub fn send_with_fds(sock: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    let iov = [IoSlice::new(data)];
    let cmsgs = [ControlMessage::ScmRights(fds)];
    let cm: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsgs };
    sendmsg::<()>(sock, &iov, cm, MsgFlags::MSG_NOSIGNAL, None).map_err(io::Error::from)
}

/// Receives into `buf`; descriptors that came along are appended to `fds` (close on
/// exec). Returns bytes read (0 at end of stream).
pub fn recv_with_fds(sock: RawFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; 32]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(io::Error::from)?;
    let n = msg.bytes;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(raw) = c {
            for r in raw {
                // SAFETY: the kernel just installed `r` in our descriptor table for this
                // message; nothing else knows about it, so we are its only owner.
                fds.push(unsafe { OwnedFd::from_raw_fd(r) });
            }
        }
    }
    Ok(n)
}

/// Makes the calling process (the oci driver's monitor) the reaper of its orphaned
/// descendants: the container init that an OCI runtime's `create` leaves behind becomes
/// the monitor's child, whose exit status it collects as the native driver's.
pub fn set_child_subreaper() -> Result<(), SysError> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| SysError::call("prctl PR_SET_CHILD_SUBREAPER", e))
}

/// Sends signal number `signal` (any, real-time ones included) to `pid`.
pub fn kill(pid: i32, signal: i32) -> io::Result<()> {
    if pid <= 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "invalid pid"));
    }
    // SAFETY: kill(2) takes plain integers; a positive pid targets exactly one process.
    let r = unsafe { libc::kill(pid, signal) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits for the child `pid` to exit and reaps it (`waitpid`); its status is not wanted.
pub fn reap_child(pid: libc::pid_t) -> io::Result<()> {
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None)
        .map(drop)
        .map_err(io::Error::from)
}

/// Closes every descriptor numbered `first` or above (what a spawner leaked to us:
/// socket-activation fds, a build tool's jobserver pipe...).
pub fn close_fds_from(first: RawFd) {
    let Ok(first_u) = libc::c_uint::try_from(first) else {
        return;
    };
    // SAFETY: close_range only closes descriptors; the caller owns nothing at or above
    // `first` that it still needs (the monitor calls this first thing).
    let r = unsafe { libc::syscall(libc::SYS_close_range, first_u, libc::c_uint::MAX, 0) };
    if r == 0 {
        return;
    }
    // Old kernels: walk /proc/self/fd.
    let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .filter(|fd| *fd >= first)
        .collect();
    for fd in fds {
        let _ = nix::unistd::close(fd);
    }
}

/// What [`fork`] returned in each process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Parent { child: i32 },
    Child,
}

/// Forks the calling process (the container init, for `--init`: the parent stays as the
/// reaper, the child execs the command).
///
/// Must be called while the process is single-threaded (the container init is).
pub fn fork() -> Result<Forked, SysError> {
    // SAFETY: the container init is a clone of the single-threaded monitor and starts no
    // thread, so the child is an exact copy of a single-threaded process and may allocate.
    match unsafe { nix::unistd::fork() }.map_err(|e| SysError::call("fork", e))? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent {
            child: child.as_raw(),
        }),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// Blocks every signal (the reaper takes them with [`wait_signal`]).
pub fn block_all_signals() -> Result<(), SysError> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), None)
        .map_err(|e| SysError::call("sigprocmask", e))
}

/// Unblocks every signal (the command the reaper forked, before its exec).
pub fn unblock_all_signals() -> Result<(), SysError> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(|e| SysError::call("sigprocmask", e))
}

/// Waits for any signal, all of which the caller has blocked, and returns its number
/// (real-time signals included, which nix's `Signal` cannot name).
pub fn wait_signal() -> io::Result<i32> {
    let all = SigSet::all();
    loop {
        // SAFETY: `all` is a valid signal set the kernel only reads; a null siginfo
        // pointer is allowed and asks for no details.
        let r = unsafe { libc::sigwaitinfo(all.as_ref(), std::ptr::null_mut()) };
        if r >= 0 {
            return Ok(r);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Closes a descriptor that the process will never use again and whose owner is never
/// dropped (the container init exits with `_exit`): the reaper's copy of the error pipe.
pub fn close_inherited(fd: RawFd) {
    let _ = nix::unistd::close(fd);
}

/// Puts the calling process in a process group of its own and, when `tty` is its
/// controlling terminal's descriptor, makes that group the terminal's foreground group
/// (as docker-init does for its child, so that ^C reaches the command alone). SIGTTOU
/// must be blocked.
pub fn own_process_group(tty: Option<RawFd>) -> Result<(), SysError> {
    let me = nix::unistd::getpid();
    nix::unistd::setpgid(me, me).map_err(|e| SysError::call("setpgid", e))?;
    if let Some(fd) = tty {
        // SAFETY: `fd` is one of the process's standard descriptors, open for the
        // duration of the call; tcsetpgrp only reads it.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        if nix::unistd::isatty(fd).unwrap_or(false) {
            nix::unistd::tcsetpgrp(borrowed, me).map_err(|e| SysError::call("tcsetpgrp", e))?;
        }
    }
    Ok(())
}

/// Shows `title` as the calling process's command line (`/proc/self/cmdline`, what `ps`
/// prints), the way setproctitle(3) does: written over the argument strings and, past
/// them, the environment strings, through `/proc/self/mem`. The process must not read its
/// arguments or environment afterwards (the reaper does not). Best effort: a title that
/// does not fit is cut, and nothing changes when the areas cannot be found.
pub fn set_title(title: &str) {
    use std::os::unix::fs::FileExt;
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields 48-51 (1-based): arg_start, arg_end, env_start, env_end.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return;
    };
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(45)
        .take(4)
        .filter_map(|x| x.parse().ok())
        .collect();
    let [arg_start, arg_end, env_start, env_end] = f[..] else {
        return;
    };
    if arg_start == 0 || arg_end <= arg_start {
        return;
    }
    let end = if env_start == arg_end && env_end > env_start {
        env_end
    } else {
        arg_end
    };
    let Ok(room) = usize::try_from(end - arg_start) else {
        return;
    };
    let args_len = usize::try_from(arg_end - arg_start).unwrap_or(0);
    let mut buf = title.as_bytes().to_vec();
    buf.truncate(room.saturating_sub(1));
    // NUL-filled to the end of the argument area: a title shorter than it ends there; a
    // longer one leaves the area's last byte non-NUL, which tells the kernel to read on.
    let fill = args_len.max(buf.len() + 1).min(room);
    buf.resize(fill, 0);
    if let Ok(mem) = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/mem")
    {
        let _ = mem.write_all_at(&buf, arg_start);
    }
}
