//! The monitor process: the start handshake, then one poll(2) loop until the container
//! has exited and its output is written out.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, pipe2};

use super::cgroup_setup;
use super::exec::{ExecFd, ExecProc};
use super::init::{self, InitFds, InitStdio};
use super::proto::{
    AttachFlags, CtlEvent, CtlRequest, EXIT_FILE, ExitStatus, LineBuf, LogSplitter, SOCKET_NAME,
    STDERR, STDOUT, SockReply, SockRequest, encode_line, now_rfc3339, stdcopy_frame,
};
use super::settings;
use super::spec::{ContainerSpec, IpcNs, NetworkSpec, PidNs};
use crate::model::logconfig::LogDriver;
use crate::sys::cgroups::{CgroupLayout, ContainerCgroup};

mod oci;
use crate::sys::namespaces::{CloneNamespaces, CloneResult, clone_init};
use crate::sys::{self, SysError};
use crate::util::error_chain;

/// Stop reading the container's output while an attached client has this much unsent.
pub(super) const MAX_PENDING: usize = 4 << 20;
/// How long output may keep flowing after the init died, and attach clients get to take
/// what is left, before the monitor gives up on them.
pub(super) const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// The control connection to berthd: JSON lines in both directions, descriptors in.
pub(super) struct Ctl {
    pub(super) sock: UnixStream,
    lines: LineBuf,
    fds: VecDeque<OwnedFd>,
}

impl Ctl {
    fn send(&mut self, ev: &CtlEvent) -> io::Result<()> {
        self.sock.write_all(&encode_line(ev))
    }

    /// Blocks until one request has arrived; `None` at end of stream.
    fn recv(&mut self) -> io::Result<Option<CtlRequest>> {
        loop {
            if let Some(line) = self.lines.next_line() {
                let req = serde_json::from_slice(&line)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                return Ok(Some(req));
            }
            let mut buf = [0u8; 16384];
            let mut fds = Vec::new();
            let n = sys::process::recv_with_fds(self.sock.as_raw_fd(), &mut buf, &mut fds)?;
            self.fds.extend(fds);
            if n == 0 {
                return Ok(None);
            }
            self.lines.push(&buf[..n]);
        }
    }
}

thread_local! {
    /// `BERTH_MONITOR_TIMING=1`: the start phases' timings go to the monitor's stderr
    /// (see `BERTH_MONITOR_STDERR`).
    static TIMING: Option<Instant> =
        std::env::var_os("BERTH_MONITOR_TIMING").map(|_| Instant::now());
}
macro_rules! tm {
    ($l:expr) => {
        TIMING.with(|t| {
            if let Some(t) = t {
                eprintln!("{:>8.3}ms {}", t.elapsed().as_secs_f64() * 1000.0, $l);
            }
        })
    };
}

/// The monitor's entry point after daemonizing: returns the process exit code.
pub fn run(ctl: OwnedFd) -> i32 {
    let mut ctl = Ctl {
        sock: UnixStream::from(ctl),
        lines: LineBuf::default(),
        fds: VecDeque::new(),
    };
    tm!("start");
    let spec = match ctl.recv() {
        Ok(Some(CtlRequest::Spec(spec))) => spec,
        _ => return 2,
    };
    tm!("spec read");
    // Only now: berthd may have spawned us ahead of the start (a child of its own until
    // then, which it reaps once we fork here).
    let started = sys::process::daemonize()
        .map_err(|e| setup_err(&e))
        .and_then(|()| {
            tm!("daemonized");
            match &spec.oci {
                Some(rt) => Monitor::start_oci(&spec, rt, &mut ctl),
                None => Monitor::start(&spec, &mut ctl),
            }
        });
    let mut m = match started {
        Ok(m) => m,
        Err(StartError::Setup(message)) => {
            let _ = ctl.send(&CtlEvent::Failed {
                message,
                exec: false,
            });
            return 1;
        }
        Err(StartError::Quiet) => return 1,
    };
    m.ctl = Some(ctl);
    m.spec = Some(spec);
    m.event_loop();
    0
}

enum StartError {
    /// A failure in the monitor itself (cgroups, pipes, clone), reported to berthd.
    Setup(String),
    /// berthd went away, or the init failed and that was already reported.
    Quiet,
}

fn setup_err(e: &SysError) -> StartError {
    StartError::Setup(error_chain(e))
}

fn io_setup(what: &str, path: &Path, e: io::Error) -> StartError {
    StartError::Setup(format!("{what} {}: {e}", path.display()))
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// Waiting for the request line.
    Handshake,
    Attach(AttachFlags),
    Watch,
    /// An exec's start (`monitor::exec`): its reply comes once the child exec'd or failed.
    ExecStarting(u64),
    /// An exec's stream.
    ExecStream(u64),
    /// Reply queued; close once written.
    Done,
}

#[derive(Debug)]
pub(super) struct Conn {
    sock: UnixStream,
    inbuf: LineBuf,
    pub(super) mode: Mode,
    out: Vec<u8>,
    out_pos: usize,
    read_closed: bool,
    pub(super) close_after_flush: bool,
    pub(super) dead: bool,
}

impl Conn {
    fn new(sock: UnixStream, mode: Mode) -> Conn {
        let _ = sock.set_nonblocking(true);
        Conn {
            sock,
            inbuf: LineBuf::default(),
            mode,
            out: Vec::new(),
            out_pos: 0,
            read_closed: false,
            close_after_flush: false,
            dead: false,
        }
    }

    pub(super) fn pending(&self) -> usize {
        self.out.len() - self.out_pos
    }

    pub(super) fn queue(&mut self, data: &[u8]) {
        if self.out_pos > 0 && self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        self.out.extend_from_slice(data);
    }

    pub(super) fn flush(&mut self) {
        while self.out_pos < self.out.len() {
            match self.sock.write(&self.out[self.out_pos..]) {
                Ok(0) => {
                    self.dead = true;
                    return;
                }
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
        self.out.clear();
        self.out_pos = 0;
        if self.close_after_flush {
            self.dead = true;
        }
    }
}

pub(super) struct Monitor {
    /// The container's mount namespace, released after the exit was reported.
    mnt_ns: Option<File>,
    pub(super) pid: Pid,
    tty: bool,
    stdin_once: bool,
    state_dir: PathBuf,
    listener: Option<UnixListener>,
    pub(super) ctl: Option<Ctl>,
    /// stdout pipe, or the pty master.
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    /// stdin pipe, or a duplicate of the pty master.
    stdin: Option<OwnedFd>,
    stdin_buf: Vec<u8>,
    stdin_close_pending: bool,
    sigfd: SignalFd,
    pub(super) conns: Vec<Conn>,
    /// `None` with the `none` driver, and once the container's output is done.
    log: Option<super::logfile::LogFile>,
    splitter: LogSplitter,
    pub(super) cgroup: ContainerCgroup,
    pub(super) exit_code: Option<i32>,
    exited_at: Option<Instant>,
    pub(super) finished: Option<ExitStatus>,
    /// The container's spec, for its execs' last steps (user, capabilities, filter).
    pub(super) spec: Option<Box<ContainerSpec>>,
    /// The execs (`docker exec`) running in the container, or not yet reported.
    pub(super) execs: Vec<ExecProc>,
    /// The key of the next exec.
    pub(super) next_exec: u64,
    /// The monitor's children are born in the container's pid namespace (set by the
    /// first exec).
    pub(super) pidns_set: bool,
    /// The container's v2 cgroup (`O_PATH`), which execs are forked into (opened by the
    /// first exec).
    pub(super) v2_dir: Option<File>,
    /// The `cgroup.procs` files of the init's controller-less v1 hierarchies (runc's
    /// `name=systemd`), which execs join too (read by the first exec).
    pub(super) named_procs: Option<Vec<PathBuf>>,
    /// The oci driver's runtime and rootfs, torn down after the exit (`run/oci.rs`).
    oci: Option<oci::OciState>,
}

impl Monitor {
    fn start(spec: &ContainerSpec, ctl: &mut Ctl) -> Result<Monitor, StartError> {
        let state_dir = spec.state_dir.clone();
        fs::create_dir_all(&state_dir).map_err(|e| io_setup("create", &state_dir, e))?;
        // Our cwd is the state dir, so that the socket path stays short.
        nix::unistd::chdir(&state_dir).map_err(|e| io_setup("chdir", &state_dir, e.into()))?;
        let _ = fs::remove_file(EXIT_FILE);
        let _ = fs::remove_file(SOCKET_NAME);
        let layout = spec
            .cgroup
            .layout
            .clone()
            .unwrap_or_else(CgroupLayout::detect);
        tm!("layout detected");
        // Sent first, before any attach's descriptor.
        let netns = if spec.join_netns {
            let fd = ctl.fds.pop_front().ok_or_else(|| {
                StartError::Setup("no network namespace came with the spec".to_owned())
            })?;
            Some(fd)
        } else {
            None
        };
        let prepared = cgroup_setup::prepare(&spec.cgroup, &layout).map_err(|e| setup_err(&e))?;
        let mut limits = prepared.limits;
        if spec.security.privileged {
            cgroup_setup::allow_every_device(&mut limits);
        }
        tm!("limits prepared");
        // The unified part only: the init is born in it. The v1 part is made while the
        // init sets up its mounts (below).
        let cgroup = ContainerCgroup::create_unified(&layout, &spec.cgroup.path, &limits)
            .map_err(|e| setup_err(&e))?;
        tm!("v2 cgroup created");
        let cleanup_cg = |e: StartError| {
            cgroup.remove(Duration::from_millis(200));
            e
        };

        let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| setup_err(&SysError::call("pipe2", e)));
        // With a tty the master arrives from the init later (see `InitStdio::Pty`).
        let mut pty_sock: Option<UnixStream> = None;
        let (stdio, out, err, stdin) = if spec.tty {
            let (ours, theirs) = UnixStream::pair()
                .map_err(|e| cleanup_cg(io_setup("socketpair", Path::new("pty"), e)))?;
            pty_sock = Some(ours);
            (InitStdio::Pty(OwnedFd::from(theirs)), None, None, None)
        } else {
            let (out_r, out_w) = pipe().map_err(cleanup_cg)?;
            let (err_r, err_w) = pipe().map_err(cleanup_cg)?;
            let (in_r, in_w) = if spec.open_stdin {
                let (r, w) = pipe().map_err(cleanup_cg)?;
                (r, Some(w))
            } else {
                let null = File::open("/dev/null")
                    .map_err(|e| cleanup_cg(io_setup("open", Path::new("/dev/null"), e)))?;
                (OwnedFd::from(null), None)
            };
            (
                InitStdio::Fds([in_r, out_w, err_w]),
                Some(out_r),
                Some(err_r),
                in_w,
            )
        };
        let (sync_r, sync_w) = pipe().map_err(cleanup_cg)?;
        let (errp_r, errp_w) = pipe().map_err(cleanup_cg)?;

        tm!("pipes");
        let mask = sys::process::block_sigchld().map_err(|e| cleanup_cg(setup_err(&e)))?;
        let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| cleanup_cg(setup_err(&SysError::call("signalfd", e))))?;

        let mut fds = InitFds {
            stdio,
            sync: sync_r,
            err: errp_w,
            netns,
            cgroup: prepared.init,
        };
        // Another container's PID and IPC namespaces are joined here, so that the init is
        // born in them; the host's are kept by not making new ones.
        settings::join_namespaces(&spec.process).map_err(|m| cleanup_cg(StartError::Setup(m)))?;
        let ns = CloneNamespaces {
            net: spec.network != NetworkSpec::Host && fds.netns.is_none(),
            pid: spec.process.pid == PidNs::Private,
            uts: !spec.process.uts_host,
            ipc: matches!(spec.process.ipc, IpcNs::Private | IpcNs::NoShm),
        };
        let v2_dir = cgroup.v2_dir.as_ref().and_then(|d| {
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
                .open(d)
                .ok()
        });
        let (res, born_in_v2) = clone_init(ns, v2_dir.as_ref().map(|f| f.as_fd()))
            .map_err(|e| cleanup_cg(setup_err(&e)))?;
        let pid = match res {
            CloneResult::Child => {
                fds.cgroup.in_place = born_in_v2 && layout.v1.is_empty();
                init::run(spec, fds)
            }
            CloneResult::Parent { child } => child,
        };
        drop(v2_dir);
        tm!(if born_in_v2 {
            "cloned into the v2 cgroup"
        } else {
            "cloned"
        });
        drop(fds);
        // Holding the init's mount namespace moves its teardown (unmounting the rootfs,
        // which waits for an RCU grace period) out of the init's exit path: the exit
        // status is ready sooner, and the monitor pays the wait after reporting it.
        let mnt_ns = File::open(format!("/proc/{pid}/ns/mnt")).ok();
        tm!("mnt ns opened");

        let mut m = Monitor {
            mnt_ns,
            pid,
            tty: spec.tty,
            stdin_once: spec.stdin_once,
            state_dir,
            listener: None,
            ctl: None,
            out,
            err,
            stdin,
            stdin_buf: Vec::new(),
            stdin_close_pending: false,
            sigfd,
            conns: Vec::new(),
            log: None,
            splitter: LogSplitter::default(),
            cgroup,
            exit_code: None,
            exited_at: None,
            finished: None,
            spec: None,
            execs: Vec::new(),
            next_exec: 0,
            pidns_set: false,
            v2_dir: None,
            named_procs: None,
            oci: None,
        };

        // The init may make its v1 directories before `add_v1` does: a failed start
        // removes them too.
        for d in prepared.v1_dirs {
            if !m.cgroup.dirs.contains(&d) {
                m.cgroup.dirs.push(d);
            }
        }
        // Ready → (attaches) → go → started or failed.
        if ctl.send(&CtlEvent::Ready { pid: pid.as_raw() }).is_err() {
            m.abort();
            return Err(StartError::Quiet);
        }
        tm!("ready sent");
        // The socket and the log are not needed before "go": set them up while the init
        // makes its mounts.
        if let Err(message) = m.open_socket_and_log(spec) {
            return Err(m.fail(ctl, message));
        }
        tm!("socket and log ready");
        // Made now, while the init makes its mounts (on another CPU, if there is one).
        if let Err(e) = m.cgroup.add_v1(&layout, &spec.cgroup.path, &limits) {
            return Err(m.fail(ctl, error_chain(&e)));
        }
        tm!("v1 cgroups created");
        // The cgroups the init still has to be moved into. Moving a process between
        // cgroups waits for an RCU grace period (milliseconds) on v1: done here, while the
        // init makes its mounts, rather than by the init itself.
        let mut to_join = m.cgroup.procs_files();
        if born_in_v2 {
            if let Some(d) = &m.cgroup.v2_dir {
                to_join.retain(|p| !p.starts_with(d));
            }
        }
        if let Err(e) = ContainerCgroup::join(&to_join, pid.as_raw()) {
            return Err(m.fail(ctl, error_chain(&e)));
        }
        // An init with a cgroup namespace of its own may now make it.
        let _ = nix::unistd::write(&sync_w, &[cgroup_setup::CGROUPS_READY]);
        tm!("cgroup joined");
        loop {
            match ctl.recv() {
                Ok(Some(CtlRequest::Attach(list))) => {
                    for flags in list {
                        let Some(fd) = ctl.fds.pop_front() else { break };
                        m.conns
                            .push(Conn::new(UnixStream::from(fd), Mode::Attach(flags)));
                    }
                }
                Ok(Some(CtlRequest::Go)) => break,
                Ok(Some(CtlRequest::Spec(_))) => {}
                Ok(None) | Err(_) => {
                    m.abort();
                    return Err(StartError::Quiet);
                }
            }
        }
        tm!("go received");
        // The init sent its pty's master before it waited for "go": the terminal gets its
        // size before the command runs (`stty size` at once sees it).
        let expects_pty = pty_sock.is_some();
        let mut master = None;
        if let Some(sock) = pty_sock {
            let mut b = [0u8; 1];
            let mut fds = Vec::new();
            let _ = sys::process::recv_with_fds(sock.as_raw_fd(), &mut b, &mut fds);
            master = fds.pop();
            let (rows, cols) = spec.console_size;
            if let Some(master) = master.as_ref().filter(|_| rows > 0 && cols > 0) {
                if let Err(e) = sys::pty::set_winsize(master.as_fd(), rows, cols) {
                    return Err(m.fail(ctl, error_chain(&e)));
                }
            }
        }
        let _ = nix::unistd::write(&sync_w, &[cgroup_setup::GO]);
        drop(sync_w);
        let mut msg = Vec::new();
        let _ = File::from(errp_r).read_to_end(&mut msg);
        tm!("err pipe eof");
        if !msg.is_empty() {
            let message = String::from_utf8_lossy(&msg).into_owned();
            let _ = ctl.send(&CtlEvent::Failed {
                message,
                exec: true,
            });
            m.abort();
            return Err(StartError::Quiet);
        }
        if expects_pty {
            let Some(master) = master else {
                return Err(m.fail(ctl, "the container's pty did not arrive".to_owned()));
            };
            if spec.open_stdin {
                m.stdin = master.try_clone().ok();
            }
            m.out = Some(master);
        }
        if ctl.send(&CtlEvent::Started { pid: pid.as_raw() }).is_err() {
            // berthd is gone: the container runs on, unwatched until it is restored.
        }
        Ok(m)
    }

    fn open_socket_and_log(&mut self, spec: &ContainerSpec) -> Result<(), String> {
        let listener = UnixListener::bind(SOCKET_NAME).map_err(|e| {
            format!(
                "listen on {}: {e}",
                self.state_dir.join(SOCKET_NAME).display()
            )
        })?;
        self.listener = Some(listener);
        if spec.log.driver == LogDriver::None {
            return Ok(());
        }
        self.splitter.attrs.clone_from(&spec.log_attrs);
        if let Some(parent) = spec.log_path.parent() {
            let _ = fs::create_dir_all(parent);
        }
        let log = super::logfile::LogFile::open(&spec.log_path, &spec.log)
            .map_err(|e| format!("open log {}: {e}", spec.log_path.display()))?;
        self.log = Some(log);
        Ok(())
    }

    /// Kills and reaps the init, removes the cgroup and the socket.
    /// A set-up failure after the clone: berthd is told, the init killed, the cgroup
    /// removed.
    fn fail(&mut self, ctl: &mut Ctl, message: String) -> StartError {
        let _ = ctl.send(&CtlEvent::Failed {
            message,
            exec: false,
        });
        self.abort();
        StartError::Quiet
    }

    fn abort(&mut self) {
        let _ = sys::process::kill(self.pid.as_raw(), libc::SIGKILL);
        let _ = waitpid(self.pid, None);
        if let Some(o) = self.oci.take() {
            o.teardown(&self.sigfd);
        }
        self.cgroup.remove(Duration::from_secs(1));
        let _ = fs::remove_file(self.state_dir.join(SOCKET_NAME));
    }

    fn event_loop(&mut self) {
        for fd in [&self.out, &self.err, &self.stdin].into_iter().flatten() {
            set_nonblocking(fd);
        }
        if let Some(l) = &self.listener {
            let _ = l.set_nonblocking(true);
        }
        if let Some(c) = &self.ctl {
            let _ = c.sock.set_nonblocking(true);
        }
        let mut drain_deadline: Option<Instant> = None;
        loop {
            self.finish_execs();
            // The init has been reaped: once its output is drained, record the exit.
            if self.exit_code.is_some() && self.finished.is_none() {
                let grace_over = self.exited_at.is_some_and(|t| t.elapsed() > DRAIN_GRACE);
                if (self.out.is_none() && self.err.is_none()) || grace_over {
                    self.finish();
                    drain_deadline = Some(Instant::now() + DRAIN_GRACE);
                }
            }
            if let Some(d) = drain_deadline {
                self.conns.retain(|c| !c.dead);
                let flushed = self
                    .conns
                    .iter()
                    .all(|c| c.pending() == 0 && c.mode != Mode::Handshake);
                if flushed || Instant::now() > d {
                    break;
                }
            }
            self.poll_once();
        }
        let _ = fs::remove_file(self.state_dir.join(SOCKET_NAME));
        self.conns.clear();
        self.mnt_ns = None;
    }

    /// The container is gone and its output read: exit status to disk, to berthd and
    /// watchers; attach connections close once their last bytes are out.
    fn finish(&mut self) {
        // The execs died with the init; their exits go out before the container's.
        self.finish_all_execs();
        self.out = None;
        self.err = None;
        self.stdin = None;
        let now = now_rfc3339();
        let mut tail = Vec::new();
        self.splitter.flush(&now, &mut tail);
        self.write_log(&tail);
        self.log = None;
        tm!("exit: log flushed");
        let oom_killed = self.cgroup.oom_killed();
        let status = ExitStatus {
            exit_code: self.exit_code.unwrap_or(255),
            finished_at: now,
            oom_killed,
        };
        let _ = crate::util::write_atomic_nosync(
            &self.state_dir.join(EXIT_FILE),
            &serde_json::to_vec(&status).unwrap_or_default(),
        );
        // berthd hears of the exit first; it waits for the connection to close before it
        // starts the container again or cleans it up, so the cgroup is gone by then.
        let mut ctl = self.ctl.take();
        if let Some(ctl) = &mut ctl {
            let _ = ctl.sock.set_nonblocking(false);
            let _ = ctl.sock.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = ctl.send(&CtlEvent::Exited(status.clone()));
        }
        tm!("exit: reported");
        if let Some(o) = self.oci.take() {
            o.teardown(&self.sigfd);
        }
        self.cgroup.remove(Duration::from_secs(2));
        tm!("exit: cgroup removed");
        drop(ctl);
        // A watcher (a berthd restored since) hears of it only now.
        let reply = encode_line(&SockReply::Exited(status.clone()));
        for c in &mut self.conns {
            match c.mode {
                Mode::Watch => {
                    c.queue(&reply);
                    c.close_after_flush = true;
                }
                _ => c.close_after_flush = true,
            }
            c.flush();
        }
        self.finished = Some(status);
    }

    fn write_log(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if let Some(f) = &mut self.log {
            let _ = f.write(data);
        }
    }

    fn poll_once(&mut self) {
        #[derive(Clone, Copy)]
        enum Tok {
            Listener,
            Ctl,
            Out,
            Err,
            Stdin,
            Sig,
            Conn(usize),
            Exec(usize, ExecFd),
        }
        let backpressure = self.conns.iter().any(|c| c.pending() > MAX_PENDING);
        let mut toks: Vec<Tok> = Vec::new();
        let mut pfds: Vec<PollFd<'_>> = Vec::new();
        let r = PollFlags::POLLIN;
        let w = PollFlags::POLLOUT;
        // Still served while draining: a late watch gets the exit status at once.
        if let Some(l) = &self.listener {
            toks.push(Tok::Listener);
            pfds.push(PollFd::new(l.as_fd(), r));
        }
        if let Some(c) = &self.ctl {
            toks.push(Tok::Ctl);
            pfds.push(PollFd::new(c.sock.as_fd(), r));
        }
        if !backpressure {
            if let Some(f) = &self.out {
                toks.push(Tok::Out);
                pfds.push(PollFd::new(f.as_fd(), r));
            }
            if let Some(f) = &self.err {
                toks.push(Tok::Err);
                pfds.push(PollFd::new(f.as_fd(), r));
            }
        }
        if let Some(f) = &self.stdin {
            if !self.stdin_buf.is_empty() {
                toks.push(Tok::Stdin);
                pfds.push(PollFd::new(f.as_fd(), w));
            }
        }
        if self.exit_code.is_none() || self.execs_unreaped() {
            toks.push(Tok::Sig);
            pfds.push(PollFd::new(self.sigfd.as_fd(), r));
        }
        for idx in 0..self.execs.len() {
            for (which, fd, write) in self.exec_poll_fds(idx) {
                toks.push(Tok::Exec(idx, which));
                pfds.push(PollFd::new(fd, if write { w } else { r }));
            }
        }
        for (i, c) in self.conns.iter().enumerate() {
            let mut ev = PollFlags::empty();
            if !c.read_closed && !c.close_after_flush {
                ev |= r;
            }
            if c.pending() > 0 {
                ev |= w;
            }
            toks.push(Tok::Conn(i));
            pfds.push(PollFd::new(c.sock.as_fd(), ev));
        }
        let timeout = if self.exit_code.is_some() || self.execs_draining() {
            PollTimeout::from(100u16)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut pfds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(10));
                return;
            }
        }
        let ready: Vec<(Tok, PollFlags)> = toks
            .iter()
            .zip(pfds.iter())
            .filter_map(|(t, p)| p.revents().filter(|e| !e.is_empty()).map(|e| (*t, e)))
            .collect();
        drop(pfds);
        for (tok, ev) in ready {
            match tok {
                Tok::Listener => self.accept(),
                Tok::Ctl => self.read_ctl(),
                Tok::Out => self.read_output(STDOUT),
                Tok::Err => self.read_output(STDERR),
                Tok::Stdin => self.write_stdin(),
                Tok::Sig => self.reap(),
                Tok::Conn(i) => self.conn_event(i, ev),
                Tok::Exec(idx, which) => self.exec_ready(idx, which),
            }
        }
        self.conns.retain(|c| !c.dead);
        if self.stdin_close_pending && self.stdin_buf.is_empty() && !self.tty {
            self.stdin = None;
        }
    }

    fn accept(&mut self) {
        let Some(l) = &self.listener else { return };
        loop {
            match l.accept() {
                Ok((s, _)) => self.conns.push(Conn::new(s, Mode::Handshake)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn read_ctl(&mut self) {
        let Some(ctl) = &mut self.ctl else { return };
        let mut buf = [0u8; 4096];
        loop {
            let mut fds = Vec::new();
            match sys::process::recv_with_fds(ctl.sock.as_raw_fd(), &mut buf, &mut fds) {
                Ok(0) => {
                    // berthd went away; carry on unwatched.
                    self.ctl = None;
                    return;
                }
                Ok(_) => {} // Nothing is expected after "go".
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.ctl = None;
                    return;
                }
            }
        }
    }

    fn read_output(&mut self, stream: u8) {
        let slot = if stream == STDOUT {
            &self.out
        } else {
            &self.err
        };
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
                self.out = None;
            } else {
                self.err = None;
            }
            return;
        }
        let data = &buf[..n];
        let mut logbuf = Vec::with_capacity(n + 96);
        self.splitter
            .push(stream, data, &now_rfc3339(), &mut logbuf);
        self.write_log(&logbuf);
        let tty = self.tty;
        let mut framed: Option<Vec<u8>> = None;
        for c in &mut self.conns {
            let Mode::Attach(flags) = c.mode else {
                continue;
            };
            let wanted = if stream == STDOUT {
                flags.stdout
            } else {
                flags.stderr
            };
            if !wanted || c.close_after_flush {
                continue;
            }
            if tty {
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

    fn write_stdin(&mut self) {
        let Some(fd) = &self.stdin else {
            self.stdin_buf.clear();
            return;
        };
        while !self.stdin_buf.is_empty() {
            match nix::unistd::write(fd, &self.stdin_buf) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => {
                    // The container closed its stdin.
                    self.stdin_buf.clear();
                    self.stdin = None;
                    return;
                }
            }
        }
    }

    fn reap(&mut self) {
        while let Ok(Some(_)) = self.sigfd.read_signal() {}
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == self.pid => {
                    self.set_exit(code);
                }
                Ok(WaitStatus::Signaled(p, sig, _)) if p == self.pid => {
                    self.set_exit(128 + sig as i32);
                }
                Ok(WaitStatus::Exited(p, code)) => {
                    self.exec_reaped(p, code);
                }
                Ok(WaitStatus::Signaled(p, sig, _)) => {
                    self.exec_reaped(p, 128 + sig as i32);
                }
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    fn set_exit(&mut self, code: i32) {
        tm!("exit: reaped");
        self.exit_code = Some(code);
        self.exited_at = Some(Instant::now());
    }

    fn conn_event(&mut self, i: usize, ev: PollFlags) {
        if ev.contains(PollFlags::POLLOUT) {
            self.conns[i].flush();
        }
        if ev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
            self.conn_read(i);
        }
        if ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) && self.conns[i].pending() == 0 {
            let c = &mut self.conns[i];
            if c.read_closed || ev.contains(PollFlags::POLLERR) {
                c.dead = true;
            }
        }
    }

    fn conn_read(&mut self, i: usize) {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let c = &mut self.conns[i];
            if c.read_closed || c.dead {
                return;
            }
            let n = match c.sock.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    c.dead = true;
                    return;
                }
            };
            if n == 0 {
                c.read_closed = true;
                match c.mode {
                    Mode::Attach(flags) if flags.stdin && self.stdin_once => {
                        self.stdin_close_pending = true;
                        if self.tty {
                            // A pty has no half-close: send end-of-file instead.
                            self.stdin_buf.push(0x04);
                        }
                    }
                    Mode::Handshake | Mode::Done => c.dead = c.pending() == 0,
                    Mode::ExecStarting(key) | Mode::ExecStream(key) => {
                        self.exec_stdin_closed(key);
                    }
                    _ => {}
                }
                return;
            }
            match c.mode {
                Mode::Handshake => {
                    c.inbuf.push(&buf[..n]);
                    if let Some(line) = c.inbuf.next_line() {
                        let rest = c.inbuf.take_rest();
                        self.handle_request(i, &line);
                        if !rest.is_empty() {
                            self.stdin_data(i, &rest);
                        }
                    } else if c.inbuf.len() > 64 * 1024 {
                        c.dead = true;
                        return;
                    }
                }
                Mode::Attach(_) => {
                    let data = buf[..n].to_vec();
                    self.stdin_data(i, &data);
                }
                Mode::ExecStarting(key) | Mode::ExecStream(key) => {
                    let data = buf[..n].to_vec();
                    self.exec_stdin_data(key, &data);
                }
                Mode::Watch | Mode::Done => {}
            }
        }
    }

    fn stdin_data(&mut self, i: usize, data: &[u8]) {
        let flags = match self.conns[i].mode {
            Mode::Attach(flags) => flags,
            Mode::ExecStarting(key) | Mode::ExecStream(key) => {
                return self.exec_stdin_data(key, data);
            }
            _ => return,
        };
        if !flags.stdin || self.stdin.is_none() || self.stdin_close_pending {
            return;
        }
        self.stdin_buf.extend_from_slice(data);
        self.write_stdin();
    }

    fn handle_request(&mut self, i: usize, line: &[u8]) {
        let reply = match serde_json::from_slice::<SockRequest>(line) {
            Err(e) => {
                self.conns[i].mode = Mode::Done;
                SockReply::Error {
                    message: format!("bad request: {e}"),
                }
            }
            Ok(SockRequest::Attach(flags)) => {
                self.conns[i].mode = Mode::Attach(flags);
                if self.finished.is_some() {
                    self.conns[i].close_after_flush = true;
                }
                SockReply::Ok
            }
            Ok(SockRequest::Signal { signal }) => {
                self.conns[i].mode = Mode::Done;
                if self.exit_code.is_some() {
                    SockReply::Error {
                        message: "container is not running".to_owned(),
                    }
                } else {
                    match sys::process::kill(self.pid.as_raw(), signal) {
                        Ok(()) => SockReply::Ok,
                        Err(e) => SockReply::Error {
                            message: format!("kill {} with signal {signal}: {e}", self.pid),
                        },
                    }
                }
            }
            Ok(SockRequest::Resize { height, width }) => {
                self.conns[i].mode = Mode::Done;
                match (&self.out, self.tty) {
                    (Some(master), true) => {
                        match sys::pty::set_winsize(master.as_fd(), height, width) {
                            Ok(()) => SockReply::Ok,
                            Err(e) => SockReply::Error {
                                message: error_chain(&e),
                            },
                        }
                    }
                    _ => SockReply::Ok,
                }
            }
            Ok(SockRequest::Watch) => match &self.finished {
                Some(st) => {
                    self.conns[i].mode = Mode::Done;
                    SockReply::Exited(st.clone())
                }
                None => {
                    self.conns[i].mode = Mode::Watch;
                    SockReply::Running {
                        pid: self.pid.as_raw(),
                        execs: self.list_execs(),
                    }
                }
            },
            Ok(SockRequest::Exec(spec)) => match self.start_exec(i, *spec) {
                // The reply comes once the child has exec'd or failed.
                None => return,
                Some(refusal) => {
                    self.conns[i].mode = Mode::Done;
                    refusal
                }
            },
            Ok(SockRequest::ResizeExec { id, height, width }) => {
                self.conns[i].mode = Mode::Done;
                self.resize_exec(&id, height, width)
            }
        };
        let c = &mut self.conns[i];
        if c.mode == Mode::Done {
            c.close_after_flush = true;
        }
        c.queue(&encode_line(&reply));
        c.flush();
    }
}

pub(super) fn set_nonblocking(fd: &OwnedFd) {
    use nix::fcntl::{FcntlArg, fcntl};
    if let Ok(flags) = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL) {
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags));
    }
}
