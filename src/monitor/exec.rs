//! `docker exec` inside the monitor: a process forked into the running container.
//!
//! A client (berthd) sends `Exec(ExecSpec)` on `monitor.sock`. The monitor, which is
//! single-threaded, makes the exec's stdio (pipes, or a socket on which the child sends
//! back the master of a pty it opens in the container's devpts) and an error pipe, sets
//! its own `pid_for_children` to the container's pid namespace (once), and forks the
//! child straight into the container's v2 cgroup when there is one. The child
//! ([`child`]) moves itself into the container's v1 cgroups, joins its cgroup, ipc, uts,
//! net and mount namespaces, takes its stdio and then the init's own last steps
//! ([`init::exec_process`]: user, capabilities, seccomp filter, working directory, PATH
//! lookup, exec). The error pipe is close-on-exec: EOF without a word means the command
//! runs, and the monitor replies `ExecStarted`; a text means it failed (`ExecFailed`).
//!
//! Unless detached, the connection then carries the exec's stream as an attach does
//! (stdcopy frames, or raw bytes with `raw_stream`; client bytes go to its stdin, a
//! half-close ends it). The exec's output goes to its client only, never to the
//! container's log. When the exec has exited and its output is drained (or
//! [`super::run::DRAIN_GRACE`] has passed), the monitor sends `ExecExited` on the control
//! socket and to every watcher, then closes the stream: berthd hears the exit code before
//! the client sees the end of the stream. An exec whose exit no berthd heard (berthd was
//! away) is kept and listed to the next watcher. The exec is the monitor's child, so it
//! survives a berthd restart like the container, and dies with the container's init.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Instant;

use nix::fcntl::OFlag;
use nix::unistd::{Pid, dup2, pipe2};

use super::init::{self, Failure, Never, Process};
use super::proto::{
    CtlEvent, ExecSpec, ExecState, STDERR, STDOUT, SockReply, encode_line, stdcopy_frame,
};
use super::run::{DRAIN_GRACE, MAX_PENDING, Mode, Monitor, set_nonblocking};
use super::spec::ContainerSpec;
use crate::sys::enter::{self, Forked};
use crate::sys::{self, SysError};
use crate::util::error_chain;

/// How far an exec has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Forked; its error pipe has not told yet whether the command runs.
    Starting,
    Running,
    /// Its start failed (reported); waiting to reap the child.
    Failed,
    /// Exited and reported (or waiting to be listed to a watcher).
    Finished,
}

/// One exec the monitor runs.
#[derive(Debug)]
pub(super) struct ExecProc {
    /// The monitor's own key for the exec's connections ([`Mode::ExecStream`]).
    pub(super) key: u64,
    pub(super) spec: ExecSpec,
    pub(super) pid: Pid,
    pub(super) phase: Phase,
    /// Read end of the child's error pipe while [`Phase::Starting`].
    pub(super) errp: Option<OwnedFd>,
    errmsg: Vec<u8>,
    /// Where the child sends its pty's master (tty execs).
    pty_sock: Option<UnixStream>,
    /// stdout pipe, or the pty master.
    pub(super) out: Option<OwnedFd>,
    pub(super) err: Option<OwnedFd>,
    /// stdin pipe, or a duplicate of the pty master.
    pub(super) stdin: Option<OwnedFd>,
    pub(super) stdin_buf: Vec<u8>,
    stdin_close_pending: bool,
    pub(super) exit_code: Option<i32>,
    exited_at: Option<Instant>,
    /// A berthd heard of its exit (or of its failure): it can be forgotten.
    delivered: bool,
}

/// Which descriptor of an exec is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ExecFd {
    Errp,
    Out,
    Err,
    Stdin,
}

/// A forked exec, as the monitor keeps it: the child's pid, the read end of its error
/// pipe, the socket its pty comes on, and the monitor's ends of its stdio.
#[derive(Debug)]
struct Spawned {
    pid: Pid,
    errp: OwnedFd,
    pty_sock: Option<UnixStream>,
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
}

/// The child's side of an exec's descriptors.
#[derive(Debug)]
struct ChildFds {
    /// stdin, stdout, stderr; or the socket the pty's master goes back on.
    stdio: ChildStdio,
    err: OwnedFd,
}

#[derive(Debug)]
enum ChildStdio {
    Fds([OwnedFd; 3]),
    Pty(UnixStream),
}

impl Monitor {
    /// Starts `spec` in the container for the connection `conn`. `Some` is the reply now
    /// (a refusal); `None`: the reply comes once the child has exec'd or failed.
    pub(super) fn start_exec(&mut self, conn: usize, spec: ExecSpec) -> Option<SockReply> {
        if self.exit_code.is_some() || self.finished.is_some() {
            return Some(SockReply::Error {
                message: "container is not running".to_owned(),
            });
        }
        if self.execs.iter().any(|e| e.spec.id == spec.id) {
            return Some(SockReply::Error {
                message: format!("exec {} already exists", spec.id),
            });
        }
        let Some(cspec) = self.spec.clone() else {
            return Some(SockReply::Error {
                message: "container is not running".to_owned(),
            });
        };
        match self.fork_exec(&cspec, &spec) {
            Ok(Spawned {
                pid,
                errp,
                pty_sock,
                out,
                err,
                stdin,
            }) => {
                let key = self.next_exec;
                self.next_exec += 1;
                set_nonblocking(&errp);
                for fd in [&out, &err, &stdin].into_iter().flatten() {
                    set_nonblocking(fd);
                }
                self.execs.push(ExecProc {
                    key,
                    spec,
                    pid,
                    phase: Phase::Starting,
                    errp: Some(errp),
                    errmsg: Vec::new(),
                    pty_sock,
                    out,
                    err,
                    stdin,
                    stdin_buf: Vec::new(),
                    stdin_close_pending: false,
                    exit_code: None,
                    exited_at: None,
                    delivered: false,
                });
                self.conns[conn].mode = Mode::ExecStarting(key);
                None
            }
            Err(e) => Some(SockReply::Error {
                message: error_chain(&e),
            }),
        }
    }

    /// Makes the exec's descriptors and forks its child.
    fn fork_exec(&mut self, cspec: &ContainerSpec, spec: &ExecSpec) -> Result<Spawned, SysError> {
        if !self.pidns_set {
            enter::set_pid_ns_for_children(self.pid)?;
            self.pidns_set = true;
        }
        if self.v2_dir.is_none() {
            self.v2_dir = self.cgroup.v2_dir.as_ref().and_then(|d| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
                    .open(d)
                    .ok()
            });
        }
        let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| SysError::call("pipe2", e));
        let null = |write: bool| {
            std::fs::OpenOptions::new()
                .read(!write)
                .write(write)
                .open("/dev/null")
                .map(OwnedFd::from)
                .map_err(|source| SysError::Call {
                    call: "open /dev/null",
                    source,
                })
        };
        let (child_stdio, pty_sock, out, err, stdin) = if spec.tty {
            let (ours, theirs) = UnixStream::pair().map_err(|source| SysError::Call {
                call: "socketpair",
                source,
            })?;
            (ChildStdio::Pty(theirs), Some(ours), None, None, None)
        } else {
            let attached = !spec.detach;
            let (in_r, in_w) = if spec.stdin && attached {
                let (r, w) = pipe()?;
                (r, Some(w))
            } else {
                (null(false)?, None)
            };
            let (out_r, out_w) = if spec.stdout && attached {
                let (r, w) = pipe()?;
                (Some(r), w)
            } else {
                (None, null(true)?)
            };
            let (err_r, err_w) = if spec.stderr && attached {
                let (r, w) = pipe()?;
                (Some(r), w)
            } else {
                (None, null(true)?)
            };
            (
                ChildStdio::Fds([in_r, out_w, err_w]),
                None,
                out_r,
                err_r,
                in_w,
            )
        };
        let (errp_r, errp_w) = pipe()?;
        // The hierarchies without a controller the init is in (an OCI runtime's
        // `name=systemd`), joined as `runc exec` does; the init's cgroups do not change.
        let pid = self.pid;
        let named = self
            .named_procs
            .get_or_insert_with(|| {
                let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
                crate::sys::cgroups::named_procs_files(
                    &read("/proc/self/mountinfo"),
                    &read(&format!("/proc/{pid}/cgroup")),
                )
            })
            .clone();
        let forked = enter::fork_into_cgroup(self.v2_dir.as_ref().map(|f| f.as_fd()))?;
        match forked {
            Forked::Child { in_cgroup } => {
                // Born in the v2 cgroup: only the v1 ones are left to join.
                let v2 = self.cgroup.v2_dir.clone().filter(|_| in_cgroup);
                let mut procs: Vec<PathBuf> = self
                    .cgroup
                    .procs_files()
                    .into_iter()
                    .filter(|p| v2.as_ref().is_none_or(|d| !p.starts_with(d)))
                    .collect();
                for p in named {
                    if !procs.contains(&p) {
                        procs.push(p);
                    }
                }
                let fds = ChildFds {
                    stdio: child_stdio,
                    err: errp_w,
                };
                child(cspec, spec, self.pid, &procs, fds)
            }
            Forked::Parent { child } => Ok(Spawned {
                pid: child,
                errp: errp_r,
                pty_sock,
                out,
                err,
                stdin,
            }),
        }
    }

    /// The exec at `idx` has something on `which`.
    pub(super) fn exec_ready(&mut self, idx: usize, which: ExecFd) {
        match which {
            ExecFd::Errp => self.read_errp(idx),
            ExecFd::Out => self.read_exec_output(idx, STDOUT),
            ExecFd::Err => self.read_exec_output(idx, STDERR),
            ExecFd::Stdin => self.write_exec_stdin(idx),
        }
    }

    fn read_errp(&mut self, idx: usize) {
        let e = &mut self.execs[idx];
        let Some(fd) = &e.errp else { return };
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(0) => break,
                Ok(n) => e.errmsg.extend_from_slice(&buf[..n]),
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => break,
            }
        }
        // End of the pipe: the child exec'd (close-on-exec) or failed and exited.
        e.errp = None;
        let key = e.key;
        let reply = if e.errmsg.is_empty() {
            match self.exec_running(idx) {
                Ok(()) => SockReply::ExecStarted {
                    pid: self.execs[idx].pid.as_raw(),
                },
                Err(message) => {
                    let e = &mut self.execs[idx];
                    let _ = sys::process::kill(e.pid.as_raw(), libc::SIGKILL);
                    e.phase = Phase::Failed;
                    e.delivered = true;
                    SockReply::Error { message }
                }
            }
        } else {
            let e = &mut self.execs[idx];
            e.phase = Phase::Failed;
            e.delivered = true;
            e.out = None;
            e.err = None;
            e.stdin = None;
            SockReply::ExecFailed {
                message: String::from_utf8_lossy(&e.errmsg).into_owned(),
            }
        };
        let detach = self.execs[idx].spec.detach;
        let started = matches!(reply, SockReply::ExecStarted { .. });
        for c in &mut self.conns {
            if c.mode == Mode::ExecStarting(key) {
                if started && !detach {
                    c.mode = Mode::ExecStream(key);
                } else {
                    c.mode = Mode::Done;
                    c.close_after_flush = true;
                }
                c.queue(&encode_line(&reply));
                c.flush();
            }
        }
    }

    /// The child exec'd: takes its pty's master, if it has one.
    fn exec_running(&mut self, idx: usize) -> Result<(), String> {
        let e = &mut self.execs[idx];
        e.phase = Phase::Running;
        if let Some(sock) = e.pty_sock.take() {
            let mut b = [0u8; 1];
            let mut fds = Vec::new();
            // Sent before the exec, so it is there by now.
            let _ = sock.set_nonblocking(true);
            let _ = sys::process::recv_with_fds(sock.as_raw_fd(), &mut b, &mut fds);
            let Some(master) = fds.pop() else {
                return Err("the exec's pty did not arrive".to_owned());
            };
            set_nonblocking(&master);
            if e.spec.stdin && !e.spec.detach {
                e.stdin = master.try_clone().ok();
            }
            e.out = Some(master);
        }
        Ok(())
    }

    fn read_exec_output(&mut self, idx: usize, stream: u8) {
        let e = &mut self.execs[idx];
        let slot = if stream == STDOUT { &e.out } else { &e.err };
        let Some(fd) = slot else { return };
        let mut buf = vec![0u8; 32 * 1024];
        let n = match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(n) => n,
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => return,
            // EIO: the pty's slave side is closed.
            Err(_) => 0,
        };
        if n == 0 {
            if stream == STDOUT {
                e.out = None;
            } else {
                e.err = None;
            }
            return;
        }
        let data = &buf[..n];
        let key = e.key;
        let raw = e.spec.raw_stream;
        let mut framed: Option<Vec<u8>> = None;
        for c in &mut self.conns {
            if c.mode != Mode::ExecStream(key) || c.close_after_flush {
                continue;
            }
            if raw {
                c.queue(data);
            } else {
                let f = framed.get_or_insert_with(|| {
                    let mut f = Vec::with_capacity(n + 8);
                    stdcopy_frame(stream, data, &mut f);
                    f
                });
                c.queue(f);
            }
            c.flush();
        }
    }

    fn write_exec_stdin(&mut self, idx: usize) {
        let e = &mut self.execs[idx];
        let Some(fd) = &e.stdin else {
            e.stdin_buf.clear();
            return;
        };
        while !e.stdin_buf.is_empty() {
            match nix::unistd::write(fd, &e.stdin_buf) {
                Ok(n) => {
                    e.stdin_buf.drain(..n);
                }
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => {
                    // The process closed its stdin.
                    e.stdin_buf.clear();
                    e.stdin = None;
                    return;
                }
            }
        }
        if e.stdin_close_pending && !e.spec.tty {
            e.stdin = None;
        }
    }

    /// Bytes from the client of exec `key`, for its stdin.
    pub(super) fn exec_stdin_data(&mut self, key: u64, data: &[u8]) {
        let Some(idx) = self.execs.iter().position(|e| e.key == key) else {
            return;
        };
        let e = &mut self.execs[idx];
        if e.stdin.is_none() || e.stdin_close_pending {
            return;
        }
        e.stdin_buf.extend_from_slice(data);
        self.write_exec_stdin(idx);
    }

    /// The client of exec `key` closed its side: the exec's stdin ends (a tty gets
    /// end-of-file, a pty having no half-close).
    pub(super) fn exec_stdin_closed(&mut self, key: u64) {
        let Some(idx) = self.execs.iter().position(|e| e.key == key) else {
            return;
        };
        let e = &mut self.execs[idx];
        if e.stdin.is_none() || e.stdin_close_pending {
            return;
        }
        e.stdin_close_pending = true;
        if e.spec.tty {
            e.stdin_buf.push(0x04);
        }
        self.write_exec_stdin(idx);
    }

    /// Sets exec `id`'s tty window size.
    pub(super) fn resize_exec(&mut self, id: &str, height: u16, width: u16) -> SockReply {
        let Some(e) = self.execs.iter().find(|e| e.spec.id == id) else {
            return SockReply::Error {
                message: format!("no such exec {id}"),
            };
        };
        match (&e.out, e.spec.tty) {
            (Some(master), true) => match sys::pty::set_winsize(master.as_fd(), height, width) {
                Ok(()) => SockReply::Ok,
                Err(e) => SockReply::Error {
                    message: error_chain(&e),
                },
            },
            _ => SockReply::Ok,
        }
    }

    /// A reaped child: true when it was one of the execs.
    pub(super) fn exec_reaped(&mut self, pid: Pid, code: i32) -> bool {
        let Some(e) = self.execs.iter_mut().find(|e| e.pid == pid) else {
            return false;
        };
        if e.exit_code.is_none() {
            e.exit_code = Some(code);
            e.exited_at = Some(Instant::now());
        }
        true
    }

    /// Whether a child (an exec) is still to be reaped.
    pub(super) fn execs_unreaped(&self) -> bool {
        self.execs.iter().any(|e| e.exit_code.is_none())
    }

    /// Whether an exec has exited and waits for its output, so the poll must wake up to
    /// end it after the grace.
    pub(super) fn execs_draining(&self) -> bool {
        self.execs
            .iter()
            .any(|e| e.exit_code.is_some() && e.phase == Phase::Running)
    }

    /// Whether an exec's output must wait: one of its clients has too much unsent.
    pub(super) fn exec_backpressure(&self, key: u64) -> bool {
        self.conns
            .iter()
            .any(|c| c.mode == Mode::ExecStream(key) && c.pending() > MAX_PENDING)
    }

    /// Ends the execs that exited and whose output is drained (or whose grace is over),
    /// and forgets the ones that are done with.
    pub(super) fn finish_execs(&mut self) {
        for idx in 0..self.execs.len() {
            let e = &self.execs[idx];
            if e.phase != Phase::Running || e.exit_code.is_none() {
                continue;
            }
            let grace_over = e.exited_at.is_some_and(|t| t.elapsed() > DRAIN_GRACE);
            if (e.out.is_none() && e.err.is_none()) || grace_over {
                self.finish_exec(idx);
            }
        }
        // A finished exec's stream closes now, not after the next poll wakes up.
        self.conns.retain(|c| !c.dead);
        self.execs.retain(|e| {
            let done = match e.phase {
                Phase::Finished => e.delivered,
                Phase::Failed => e.exit_code.is_some(),
                Phase::Starting | Phase::Running => false,
            };
            !done
        });
    }

    /// Every exec ends with the container: those not reaped yet (in the host's pid
    /// namespace) are killed, and all are reported before the container's own exit.
    pub(super) fn finish_all_execs(&mut self) {
        for idx in 0..self.execs.len() {
            let e = &mut self.execs[idx];
            if e.exit_code.is_none() {
                let _ = sys::process::kill(e.pid.as_raw(), libc::SIGKILL);
                let code = match nix::sys::wait::waitpid(e.pid, None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => c,
                    Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => 128 + s as i32,
                    _ => 137,
                };
                e.exit_code = Some(code);
            }
            if e.phase == Phase::Running || e.phase == Phase::Starting {
                e.phase = Phase::Running;
                self.finish_exec(idx);
            }
        }
    }

    /// Exec `idx` is over: its exit goes to berthd and the watchers, then its stream
    /// closes once its last bytes are out.
    fn finish_exec(&mut self, idx: usize) {
        let e = &mut self.execs[idx];
        e.out = None;
        e.err = None;
        e.stdin = None;
        e.errp = None;
        e.phase = Phase::Finished;
        let id = e.spec.id.clone();
        let key = e.key;
        let exit_code = e.exit_code.unwrap_or(255);
        let mut delivered = false;
        if let Some(ctl) = &mut self.ctl {
            delivered = send_blocking(
                &ctl.sock,
                &CtlEvent::ExecExited {
                    id: id.clone(),
                    exit_code,
                },
            );
        }
        let note = encode_line(&SockReply::ExecExited { id, exit_code });
        for c in &mut self.conns {
            match c.mode {
                Mode::Watch => {
                    c.queue(&note);
                    c.flush();
                    delivered = true;
                }
                Mode::ExecStream(k) | Mode::ExecStarting(k) if k == key => {
                    c.close_after_flush = true;
                    c.flush();
                }
                _ => {}
            }
        }
        self.execs[idx].delivered = delivered;
    }

    /// The execs a new watcher is told of: all that run, and those that exited unheard
    /// (forgotten from now on).
    pub(super) fn list_execs(&mut self) -> Vec<ExecState> {
        let mut out = Vec::new();
        for e in &mut self.execs {
            match e.phase {
                Phase::Running | Phase::Starting => {
                    out.push(ExecState::of(&e.spec, e.pid.as_raw(), None));
                }
                Phase::Finished if !e.delivered => {
                    out.push(ExecState::of(&e.spec, e.pid.as_raw(), e.exit_code));
                    e.delivered = true;
                }
                _ => {}
            }
        }
        out
    }

    /// The descriptors of exec `idx` to poll, with what to wait for.
    pub(super) fn exec_poll_fds(&self, idx: usize) -> Vec<(ExecFd, BorrowedFd<'_>, bool)> {
        let e = &self.execs[idx];
        let mut v = Vec::new();
        if let Some(f) = &e.errp {
            v.push((ExecFd::Errp, f.as_fd(), false));
        }
        if !self.exec_backpressure(e.key) {
            if let Some(f) = &e.out {
                v.push((ExecFd::Out, f.as_fd(), false));
            }
            if let Some(f) = &e.err {
                v.push((ExecFd::Err, f.as_fd(), false));
            }
        }
        if let Some(f) = &e.stdin {
            if !e.stdin_buf.is_empty() {
                v.push((ExecFd::Stdin, f.as_fd(), true));
            }
        }
        v
    }
}

/// Writes one event on the control socket, waiting at most a second: true when it went.
fn send_blocking(sock: &UnixStream, ev: &CtlEvent) -> bool {
    use std::io::Write;
    let _ = sock.set_nonblocking(false);
    let _ = sock.set_write_timeout(Some(std::time::Duration::from_secs(1)));
    let ok = (&*sock).write_all(&encode_line(ev)).is_ok();
    let _ = sock.set_nonblocking(true);
    ok
}

/// The exec's child: never returns. Exec on success; on failure the text goes to the error
/// pipe and the child exits 1.
fn child(cspec: &ContainerSpec, spec: &ExecSpec, init: Pid, procs: &[PathBuf], fds: ChildFds) -> ! {
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        enter_and_exec(cspec, spec, init, procs, &fds)
    }));
    init::report_and_exit(&fds.err, res)
}

fn enter_and_exec(
    cspec: &ContainerSpec,
    spec: &ExecSpec,
    init: Pid,
    procs: &[PathBuf],
    fds: &ChildFds,
) -> Result<Never, Failure> {
    sys::process::reset_signals().map_err(init::sys_fail)?;
    nix::unistd::setsid().map_err(|e| init::sys_fail(SysError::call("setsid", e)))?;
    // The container's cgroups (host paths: before the mount namespace changes).
    crate::sys::cgroups::ContainerCgroup::join(procs, 0).map_err(init::sys_fail)?;
    enter::join_namespaces_of(init).map_err(init::sys_fail)?;
    match &fds.stdio {
        ChildStdio::Fds(stdio) => {
            for (i, fd) in stdio.iter().enumerate() {
                let target = RawFd::try_from(i).unwrap_or(0);
                dup2(fd.as_raw_fd(), target)
                    .map_err(|e| init::sys_fail(SysError::call("dup2", e)))?;
            }
        }
        ChildStdio::Pty(sock) => {
            let master = sys::pty::open_container_pty().map_err(init::sys_fail)?;
            let (rows, cols) = spec.console_size;
            if rows > 0 && cols > 0 {
                sys::pty::set_winsize(master.as_fd(), rows, cols).map_err(init::sys_fail)?;
            }
            sys::process::send_with_fds(sock.as_raw_fd(), b"p", &[master.as_raw_fd()])
                .map_err(|e| Failure::Msg(format!("sending the pty to the monitor: {e}")))?;
        }
    }
    // The container's settings (as runc's exec: its seccomp filter and no_new_privs even
    // with --privileged, which only widens the capabilities to berthd's bounding set).
    let mut security = super::security::prepare(&cspec.security).map_err(Failure::Msg)?;
    if spec.privileged {
        security.capabilities = crate::security::host().bounding;
    }
    let p = Process {
        args: &spec.args,
        env: &spec.env,
        cwd: &spec.cwd,
        user: &spec.user,
        reaper_err: None,
    };
    init::exec_process(cspec, &p, &security)
}
