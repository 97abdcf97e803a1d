//! berthd's side of the monitor protocols (see [`crate::monitor`]): starting a monitor
//! over its control socket, and one-shot requests on its `monitor.sock`.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::error::ExecError;
use super::messages::{AttachOptions, PendingAttach, Started};
use crate::monitor::proto::{
    AttachFlags, CtlEvent, CtlRequest, EXIT_FILE, ExecState, ExitStatus, LineBuf, SOCKET_NAME,
    SockReply, SockRequest, connect_unix, encode_line,
};
use crate::monitor::spec::ContainerSpec;
use crate::sys;

/// How long a one-shot socket request may take.
const SOCK_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn flags(o: AttachOptions) -> AttachFlags {
    AttachFlags {
        stdin: o.stdin,
        stdout: o.stdout,
        stderr: o.stderr,
    }
}

/// The control connection to a monitor this berthd started.
#[derive(Debug)]
pub(crate) struct MonitorConn {
    sock: tokio::net::UnixStream,
    lines: LineBuf,
}

impl MonitorConn {
    fn new(sock: UnixStream) -> io::Result<Self> {
        sock.set_nonblocking(true)?;
        Ok(MonitorConn {
            sock: tokio::net::UnixStream::from_std(sock)?,
            lines: LineBuf::default(),
        })
    }

    /// The next event; `None` when the monitor closed the connection.
    async fn next_event(&mut self) -> io::Result<Option<CtlEvent>> {
        loop {
            if let Some(line) = self.lines.next_line() {
                let ev = serde_json::from_slice(&line)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                return Ok(Some(ev));
            }
            let mut buf = [0u8; 4096];
            let n = self.sock.read(&mut buf).await?;
            if n == 0 {
                return Ok(None);
            }
            self.lines.push(&buf[..n]);
        }
    }

    /// Waits for the container's exit. `None` when the monitor vanished without one and
    /// left no exit.json either. The exit comes before the monitor has removed the
    /// container's cgroup: the second part ends once it has (and closed the connection).
    pub(crate) async fn wait_exit(
        mut self,
        state_dir: PathBuf,
        execs: ExecEvents,
    ) -> (Option<ExitStatus>, Option<Teardown>) {
        loop {
            match self.next_event().await {
                Ok(Some(CtlEvent::Exited(st))) => {
                    return (Some(st), Some(Box::pin(self.closed(TEARDOWN_TIMEOUT))));
                }
                Ok(Some(CtlEvent::ExecExited { id, exit_code })) => {
                    execs.exited(id, exit_code);
                }
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
        let st = tokio::task::spawn_blocking(move || read_exit_file(&state_dir))
            .await
            .ok()
            .flatten();
        (st, None)
    }

    /// Resolves once the monitor has closed the connection, or after `timeout`.
    async fn closed(mut self, timeout: Duration) {
        let drained = async { while let Ok(Some(_)) = self.next_event().await {} };
        let _ = tokio::time::timeout(timeout, drained).await;
    }
}

/// What a monitor still does after it reported the exit, or after it was let go of (see
/// [`Held::release`]): it removes the container's cgroup, then closes its connection.
pub(crate) type Teardown = futures_util::future::LocalBoxFuture<'static, ()>;

/// How long a start or cleanup of the same container waits for a monitor's [`Teardown`]
/// before it goes on anyway.
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// A watch connection on `monitor.sock` (after a restore); the same exit semantics.
#[derive(Debug)]
pub(crate) struct WatchConn {
    sock: tokio::net::UnixStream,
    lines: LineBuf,
}

impl WatchConn {
    /// Wraps a watch connection; must run inside the runtime that will poll it.
    pub(crate) fn new(sock: UnixStream) -> io::Result<Self> {
        sock.set_nonblocking(true)?;
        Ok(WatchConn {
            sock: tokio::net::UnixStream::from_std(sock)?,
            lines: LineBuf::default(),
        })
    }

    pub(crate) async fn wait_exit(
        mut self,
        state_dir: PathBuf,
        execs: ExecEvents,
    ) -> (Option<ExitStatus>, Option<Teardown>) {
        let mut buf = [0u8; 1024];
        loop {
            if let Some(line) = self.lines.next_line() {
                match serde_json::from_slice(&line) {
                    // A watcher hears of the exit once the cgroup is gone.
                    Ok(SockReply::Exited(st)) => return (Some(st), None),
                    Ok(SockReply::ExecExited { id, exit_code }) => execs.exited(id, exit_code),
                    _ => {}
                }
                continue;
            }
            match self.sock.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => self.lines.push(&buf[..n]),
            }
        }
        let st = tokio::task::spawn_blocking(move || read_exit_file(&state_dir))
            .await
            .ok()
            .flatten();
        (st, None)
    }
}

/// Where a watched monitor's exec exits go: the container and the subscriber.
#[derive(Debug, Clone)]
pub(crate) struct ExecEvents {
    pub(crate) container_id: String,
    pub(crate) to: Option<actix::Recipient<super::messages::ExecEvent>>,
}

impl ExecEvents {
    fn exited(&self, exec_id: String, exit_code: i32) {
        if let Some(r) = &self.to {
            r.do_send(super::messages::ExecEvent::Exited {
                container_id: self.container_id.clone(),
                exec_id,
                exit_code,
            });
        }
    }
}

/// Reads `<state_dir>/exit.json`.
pub(crate) fn read_exit_file(state_dir: &Path) -> Option<ExitStatus> {
    let data = std::fs::read(state_dir.join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&data).ok()
}

fn monitor_err(id: &str, source: io::Error) -> ExecError {
    ExecError::Monitor {
        id: id.to_owned(),
        source,
    }
}

/// Waits for a monitor's parent, which exits as soon as it has forked the monitor: one
/// thread ("berth-reaper") for all of them, so a burst of starts does not hold a blocking
/// thread per start.
fn reap(pid: libc::pid_t) {
    static REAPER: std::sync::OnceLock<Option<std::sync::mpsc::Sender<libc::pid_t>>> =
        std::sync::OnceLock::new();
    let wait = |pid| {
        let _ = crate::sys::process::reap_child(pid);
    };
    let tx = REAPER.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel::<libc::pid_t>();
        std::thread::Builder::new()
            .name("berth-reaper".into())
            .spawn(move || {
                for pid in rx {
                    wait(pid);
                }
            })
            .ok()
            .map(|_| tx)
    });
    let unreaped = match tx {
        Some(tx) => tx.send(pid).err().map(|e| e.0),
        None => Some(pid),
    };
    if let Some(pid) = unreaped {
        // No reaper thread: wait here (the parent exits right after its fork).
        wait(pid);
    }
}

/// A monitor spawned ahead of the start that will use it, waiting for its spec (see
/// [`crate::monitor`]). It stays berthd's child until it has its spec; dropped unused, it
/// reads EOF and exits. Either way its first process is reaped.
#[derive(Debug)]
pub(crate) struct Spare {
    sock: Option<UnixStream>,
    pid: libc::pid_t,
    pub(crate) born: std::time::Instant,
}

impl Spare {
    /// Spawns `<exe> monitor`; it waits for its spec on the returned spare's socket.
    pub(crate) fn spawn(exe: &Path) -> io::Result<Spare> {
        let (ours, theirs) = UnixStream::pair()?;
        let pid = sys::process::spawn_monitor(exe, OwnedFd::from(theirs))?;
        Ok(Spare {
            sock: Some(ours),
            pid,
            born: std::time::Instant::now(),
        })
    }

    /// Sends the first batch (with `fds`) and returns the control socket. Once it has its
    /// spec the monitor daemonizes: its first process is reaped when `self` drops.
    fn send(
        mut self,
        spec: &ContainerSpec,
        batch: &[u8],
        fds: &[OwnedFd],
    ) -> Result<UnixStream, ExecError> {
        // The monitor makes its state dir itself (the exec root's `containers/` exists
        // since Init).
        let id = &spec.id;
        let ours = self
            .sock
            .take()
            .ok_or_else(|| monitor_err(id, io::Error::from(io::ErrorKind::NotConnected)))?;
        send_batch(&ours, batch, fds).map_err(|e| monitor_err(id, e))?;
        Ok(ours)
    }
}

impl Drop for Spare {
    fn drop(&mut self) {
        drop(self.sock.take());
        reap(self.pid);
    }
}

/// Spawns a monitor and sends the first batch; runs on a blocking thread.
fn spawn_and_send(
    exe: &Path,
    spec: &ContainerSpec,
    batch: &[u8],
    fds: &[OwnedFd],
) -> Result<UnixStream, ExecError> {
    let spare = Spare::spawn(exe).map_err(|source| ExecError::SpawnMonitor {
        id: spec.id.clone(),
        source,
    })?;
    spare.send(spec, batch, fds)
}

/// One socketpair per attach: the client's end goes out now, before the process can
/// write anything; the monitor's ends are returned, to travel with the batch.
fn attach_pairs(id: &str, attaches: Vec<PendingAttach>) -> (Vec<OwnedFd>, Vec<AttachFlags>) {
    let mut fds = Vec::new();
    let mut flags_of = Vec::new();
    for a in attaches {
        match UnixStream::pair() {
            Ok((client, mon)) => {
                if a.reply.send(Ok(client)).is_ok() {
                    fds.push(OwnedFd::from(mon));
                    flags_of.push(flags(a.options));
                }
            }
            Err(e) => {
                let _ = a.reply.send(Err(monitor_err(id, e)));
            }
        }
    }
    (fds, flags_of)
}

/// Hands `spare` (or a monitor spawned now) the first batch, with `fds`; returns the
/// control socket.
async fn hand_over(
    exe: PathBuf,
    spec: ContainerSpec,
    batch: Vec<u8>,
    fds: Vec<OwnedFd>,
    spare: Option<Spare>,
) -> Result<UnixStream, ExecError> {
    // A few KiB to a process waiting for them: the write does not block.
    match spare.map(|s| s.send(&spec, &batch, &fds)) {
        Some(Ok(sock)) => Ok(sock),
        res => {
            if let Some(Err(e)) = res {
                tracing::debug!(container_id = %spec.id, error = %crate::util::error_chain(&e), "spare monitor unusable; spawning one");
            }
            let id = spec.id.clone();
            let span = tracing::Span::current();
            tokio::task::spawn_blocking(move || {
                let _g = span.enter();
                spawn_and_send(&exe, &spec, &batch, &fds)
            })
            .await
            .map_err(|e| monitor_err(&id, io::Error::other(e)))?
        }
    }
}

/// Starts the container: hands `spare` (or a monitor spawned now) its spec with `netns`,
/// if any, before the attaches' descriptors, hands each pending attach a connected
/// stream, then lets the process run.
pub(crate) async fn start(
    exe: PathBuf,
    spec: ContainerSpec,
    attaches: Vec<PendingAttach>,
    netns: Option<OwnedFd>,
    spare: Option<Spare>,
) -> Result<(Started, MonitorConn), ExecError> {
    let id = spec.id.clone();
    let (attach_fds, attach_flags) = attach_pairs(&id, attaches);
    let mut fds: Vec<OwnedFd> = netns.into_iter().collect();
    fds.extend(attach_fds);
    let mut batch = encode_line(&CtlRequest::Spec(Box::new(spec.clone())));
    if !attach_flags.is_empty() {
        batch.extend(encode_line(&CtlRequest::Attach(attach_flags)));
    }
    batch.extend(encode_line(&CtlRequest::Go));
    let sock = hand_over(exe, spec, batch, fds, spare).await?;
    await_started(&id, sock).await
}

/// Reads the monitor's events up to `Started` (or the failure).
async fn await_started(id: &str, sock: UnixStream) -> Result<(Started, MonitorConn), ExecError> {
    let mut conn = MonitorConn::new(sock).map_err(|e| monitor_err(id, e))?;
    loop {
        match conn.next_event().await.map_err(|e| monitor_err(id, e))? {
            Some(CtlEvent::Started { pid }) => {
                let started = Started {
                    pid,
                    started_at: chrono::Utc::now(),
                };
                return Ok((started, conn));
            }
            Some(CtlEvent::Failed { message, exec }) => {
                // The monitor removes what it had set up, then exits: a failed start
                // answers after that, so a new start of the container finds it gone.
                conn.closed(TEARDOWN_TIMEOUT).await;
                return Err(failed(id, message, exec));
            }
            // Ready comes first; the monitor reads "go" from the batch right after it.
            Some(_) => {}
            None => {
                return Err(monitor_err(
                    id,
                    io::Error::new(io::ErrorKind::UnexpectedEof, "monitor exited"),
                ));
            }
        }
    }
}

/// A monitor holding a container that it has set up ahead of the start (see
/// [`super::Prestart`]): its process waits for "go".
#[derive(Debug)]
pub(crate) struct Held {
    sock: UnixStream,
    /// The spec it was given (`state_dir` and the cgroup layout filled in).
    pub(crate) spec: ContainerSpec,
    /// A copy of the network namespace it was given, for a set-up made again.
    pub(crate) netns: Option<OwnedFd>,
}

/// Hands `spare` (or a monitor spawned now) `spec` alone: the monitor sets the container
/// up and waits.
pub(crate) async fn prestart(
    exe: PathBuf,
    spec: ContainerSpec,
    netns: Option<OwnedFd>,
    spare: Option<Spare>,
) -> Result<Held, ExecError> {
    let copy = match &netns {
        Some(fd) => Some(fd.try_clone().map_err(|e| monitor_err(&spec.id, e))?),
        None => None,
    };
    let batch = encode_line(&CtlRequest::Spec(Box::new(spec.clone())));
    let fds: Vec<OwnedFd> = netns.into_iter().collect();
    let sock = hand_over(exe, spec.clone(), batch, fds, spare).await?;
    Ok(Held {
        sock,
        spec,
        netns: copy,
    })
}

impl Held {
    /// True when `spec` is the one the container was set up with.
    pub(crate) fn matches(&self, spec: &ContainerSpec) -> bool {
        *spec == self.spec
    }

    /// Lets the container's process run: each pending attach gets a connected stream,
    /// then "go".
    pub(crate) async fn go(
        self,
        attaches: Vec<PendingAttach>,
    ) -> Result<(Started, MonitorConn), ExecError> {
        let id = self.spec.id.clone();
        let (fds, attach_flags) = attach_pairs(&id, attaches);
        let mut batch = Vec::new();
        if !attach_flags.is_empty() {
            batch.extend(encode_line(&CtlRequest::Attach(attach_flags)));
        }
        batch.extend(encode_line(&CtlRequest::Go));
        if let Err(e) = send_batch(&self.sock, &batch, &fds) {
            // A monitor whose set-up failed has said why before it went: its word, not
            // the broken pipe, is the answer.
            return match await_started(&id, self.sock).await {
                Err(failed) => Err(failed),
                Ok(_) => Err(monitor_err(&id, e)),
            };
        }
        await_started(&id, self.sock).await
    }

    /// Closes the connection: the monitor undoes the set-up (kills the waiting process,
    /// removes the cgroup) and exits. Resolves once it has.
    pub(crate) async fn release(self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Write);
        if let Ok(conn) = MonitorConn::new(self.sock) {
            conn.closed(TEARDOWN_TIMEOUT).await;
        }
    }
}

/// Writes `batch`, with `fds` on its first bytes, to a monitor's control socket.
fn send_batch(sock: &UnixStream, batch: &[u8], fds: &[OwnedFd]) -> io::Result<()> {
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let sent = sys::process::send_with_fds(sock.as_raw_fd(), batch, &raw)?;
    if sent < batch.len() {
        let mut w = sock;
        w.write_all(&batch[sent..])?;
    }
    Ok(())
}

fn failed(id: &str, message: String, exec: bool) -> ExecError {
    if exec {
        ExecError::StartFailed {
            id: id.to_owned(),
            message,
        }
    } else {
        monitor_err(id, io::Error::other(message))
    }
}

/// Connects to `monitor.sock`, sends `req` and reads the one-line reply. Blocking.
/// The stream is returned positioned just after the reply line.
pub(crate) fn sock_request(
    state_dir: &Path,
    req: &SockRequest,
) -> io::Result<(UnixStream, SockReply)> {
    // A signal that reaches this thread (EINTR) is retried, as `write_all` does for the
    // request; the soak of berth-bench case s saw it fail `docker exec` under load.
    let mut s = loop {
        match connect_unix(&state_dir.join(SOCKET_NAME)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => break other?,
        }
    };
    s.set_read_timeout(Some(SOCK_TIMEOUT))?;
    s.set_write_timeout(Some(SOCK_TIMEOUT))?;
    s.write_all(&encode_line(req))?;
    // Byte by byte, so that nothing after the reply line is consumed.
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        let n = match s.read(&mut b) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => other?,
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "monitor closed the connection",
            ));
        }
        if b[0] == b'\n' {
            break;
        }
        line.push(b[0]);
        // A watch's reply lists the container's execs.
        if line.len() > 4 << 20 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "reply too long"));
        }
    }
    let reply =
        serde_json::from_slice(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    s.set_read_timeout(None)?;
    s.set_write_timeout(None)?;
    Ok((s, reply))
}

/// True for the errors that mean "no monitor listens there".
pub(crate) fn is_absent(e: &io::Error) -> bool {
    // A monitor that exits while we talk to it resets the connection.
    matches!(
        e.kind(),
        io::ErrorKind::NotFound
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// What a watch request found.
#[derive(Debug)]
pub(crate) enum WatchReply {
    Running {
        pid: i32,
        sock: UnixStream,
        execs: Vec<ExecState>,
    },
    Exited(ExitStatus),
}

/// A watch on a running monitor (restore). Blocking.
pub(crate) fn watch(state_dir: &Path) -> io::Result<WatchReply> {
    let (s, reply) = sock_request(state_dir, &SockRequest::Watch)?;
    match reply {
        SockReply::Running { pid, execs } => Ok(WatchReply::Running {
            pid,
            sock: s,
            execs,
        }),
        SockReply::Exited(st) => Ok(WatchReply::Exited(st)),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected reply {other:?}"),
        )),
    }
}
