//! The oci exec driver's start: the monitor has an OCI runtime (runc) make the container
//! from a bundle, instead of cloning the init itself, and keeps every other duty: stdio,
//! the log, attach, signals, the exit status.
//!
//! 1. The monitor becomes a child subreaper and moves into a mount namespace of its own,
//!    where it mounts the rootfs (nothing shows on the host; it goes with the monitor),
//!    and with `--ipc container:<id>` attaches a copy of that container's /dev/shm.
//! 2. It resolves the user in the rootfs's /etc/passwd and /etc/group, and writes the
//!    bundle's `config.json` (`monitor::bundle`) in the state dir.
//! 3. `runtime create` (stdio: the container's pipes, or `--console-socket` for a tty)
//!    leaves the init waiting to exec; `create` exits, and the init, orphaned, becomes the
//!    monitor's child: the monitor reaps it and reads its exit status as for the native
//!    driver's init, signals it by pid, and reads an OOM kill from its cgroup.
//! 4. After "go" (the attaches are connected), `runtime start` lets it exec.
//! 5. After the exit (or an abort), `runtime delete --force` removes the runtime's state
//!    and the cgroup, and the rootfs is unmounted.
//!
//! A failure before "go" (the runtime refused the bundle, the command is missing) is kept
//! and reported at "go", after everything made was undone, as the native driver reports
//! its exec failures; each runtime call has a deadline (`monitor::runtime`).

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{Pid, pipe2};

use super::{Conn, Ctl, Mode, Monitor, StartError, io_setup, setup_err};
use crate::monitor::bundle::{self, Resolved};
use crate::monitor::proto::{CtlEvent, CtlRequest, EXIT_FILE, LogSplitter, SOCKET_NAME};
use crate::monitor::runtime::{
    CONFIG_FILE, CONSOLE_SOCKET, CreateStdio, LOG_FILE, PID_FILE, Runtime, RuntimeError,
    STDERR_FILE, is_exec_failure,
};
use crate::monitor::spec::IpcNs;
use crate::monitor::spec::{ContainerSpec, OciRuntimeSpec};
use crate::monitor::{cgroup_setup, lookup, user};
use crate::sys::cgroups::{CgroupLayout, ContainerCgroup};
use crate::sys::{self, SysError};
use crate::util::error_chain;

/// What the monitor undoes after the container's exit.
#[derive(Debug)]
pub(super) struct OciState {
    runtime: OciRuntimeSpec,
    id: String,
    dir: PathBuf,
    /// The rootfs mounted in the monitor's own namespace.
    rootfs: Option<PathBuf>,
    /// `--ipc container:<id>`: that container's /dev/shm, attached in the monitor's own
    /// namespace at `<state dir>/shm` for the runtime to bind.
    shm: Option<PathBuf>,
    timeout: Duration,
}

impl OciState {
    fn runtime(&self) -> Runtime<'_> {
        Runtime {
            spec: &self.runtime,
            id: &self.id,
            dir: &self.dir,
            timeout: self.timeout,
        }
    }

    /// `runtime delete --force` (the runtime's state and the container's cgroup; a
    /// container still running is killed), then the rootfs is unmounted.
    pub(super) fn teardown(&self, sig: &SignalFd) {
        if let Err(e) = self.runtime().delete(true, sig) {
            eprintln!("berthd monitor: {}", error_chain(&e));
        }
        for m in self.rootfs.iter().chain(&self.shm) {
            let _ = sys::mounts::detach(m);
        }
    }
}

/// A failure of the start, kept until "go".
struct Failure {
    message: String,
    exec: bool,
}

impl Failure {
    fn setup(message: String) -> Self {
        Failure {
            message,
            exec: false,
        }
    }
}

fn runtime_failure(e: &RuntimeError, cmd: &str) -> Failure {
    let message = error_chain(e);
    let exec = matches!(e, RuntimeError::Failed { message, .. } if is_exec_failure(message, cmd));
    Failure { message, exec }
}

/// Reports `f` once berthd says "go" (a container set up ahead hears of it at its start;
/// a start sent "go" with the spec hears at once), or quietly when berthd goes away.
fn report_at_go(ctl: &mut Ctl, f: Failure) -> StartError {
    loop {
        match ctl.recv() {
            Ok(Some(CtlRequest::Go)) => break,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return StartError::Quiet,
        }
    }
    let _ = ctl.send(&CtlEvent::Failed {
        message: f.message,
        exec: f.exec,
    });
    StartError::Quiet
}

/// The environment the native init gives the process: the spec's, with `PATH`, `HOME` (the
/// user's) and `HOSTNAME` when missing.
fn process_env(spec: &ContainerSpec, home: &str) -> Vec<String> {
    let mut env = spec.env.clone();
    let has = |env: &[String], k: &str| env.iter().any(|e| e.starts_with(k));
    if !has(&env, "PATH=") {
        env.push(format!("PATH={}", lookup::DEFAULT_PATH));
    }
    if !has(&env, "HOME=") {
        env.push(format!("HOME={home}"));
    }
    if !has(&env, "HOSTNAME=") && !spec.hostname.is_empty() {
        env.push(format!("HOSTNAME={}", spec.hostname));
    }
    env
}

/// The container's user, from the rootfs's /etc/passwd and /etc/group (symlinks resolved
/// inside the rootfs), with the groups of `--group-add`.
fn resolve_user(spec: &ContainerSpec) -> Result<user::ExecUser, String> {
    let root = &spec.rootfs.target;
    let read = |p: &str| fs::read_to_string(sys::mounts::secure_join(root, p)).ok();
    let (passwd, group) = (read("/etc/passwd"), read("/etc/group"));
    let mut u = user::resolve(&spec.user, passwd.as_deref(), group.as_deref())?;
    if !spec.process.group_add.is_empty() {
        for g in user::additional_groups(&spec.process.group_add, group.as_deref())? {
            if !u.groups.contains(&g) {
                u.groups.push(g);
            }
        }
    }
    Ok(u)
}

/// Accepts the runtime's connection on the console socket and takes the pty's master
/// from it (waiting up to `within`).
fn receive_console(listener: &UnixListener, within: Duration) -> Result<OwnedFd, String> {
    let deadline = Instant::now() + within;
    let _ = listener.set_nonblocking(true);
    let conn: UnixStream = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err("the OCI runtime sent no console".to_owned());
                }
                let ms = u16::try_from(left.as_millis().clamp(1, 1000)).unwrap_or(1000);
                let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(ms));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("accept on {CONSOLE_SOCKET}: {e}")),
        }
    };
    let _ = conn.set_read_timeout(Some(within));
    let mut buf = [0u8; 4096];
    let mut fds = Vec::new();
    sys::process::recv_with_fds(conn.as_raw_fd(), &mut buf, &mut fds)
        .map_err(|e| format!("receiving the console: {e}"))?;
    fds.pop()
        .ok_or_else(|| "the OCI runtime's console message had no descriptor".to_owned())
}

impl Monitor {
    /// The oci driver's counterpart of [`Monitor::start`]: see the module docs.
    pub(super) fn start_oci(
        spec: &ContainerSpec,
        rt: &OciRuntimeSpec,
        ctl: &mut Ctl,
    ) -> Result<Monitor, StartError> {
        let state_dir = spec.state_dir.clone();
        fs::create_dir_all(&state_dir).map_err(|e| io_setup("create", &state_dir, e))?;
        nix::unistd::chdir(&state_dir).map_err(|e| io_setup("chdir", &state_dir, e.into()))?;
        for f in [
            EXIT_FILE,
            SOCKET_NAME,
            PID_FILE,
            CONSOLE_SOCKET,
            LOG_FILE,
            STDERR_FILE,
        ] {
            let _ = fs::remove_file(f);
        }
        let layout = spec
            .cgroup
            .layout
            .clone()
            .unwrap_or_else(CgroupLayout::detect);
        let netns = if spec.join_netns {
            let fd = ctl.fds.pop_front().ok_or_else(|| {
                StartError::Setup("no network namespace came with the spec".to_owned())
            })?;
            Some(fd)
        } else {
            None
        };
        let mask = sys::process::block_sigchld().map_err(|e| setup_err(&e))?;
        let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| setup_err(&SysError::call("signalfd", e)))?;
        sys::process::set_child_subreaper().map_err(|e| setup_err(&e))?;
        let mounted = sys::mounts::mount_rootfs_apart(&spec.rootfs).map_err(|e| setup_err(&e))?;
        // New volumes get the image's files before the runtime binds them.
        for m in spec.mounts.iter().filter(|m| m.copy_up) {
            sys::mounts::copy_up(&spec.rootfs.target, m).map_err(|e| setup_err(&e))?;
        }
        let mut oci = OciState {
            runtime: rt.clone(),
            id: spec.id.clone(),
            dir: state_dir.clone(),
            rootfs: mounted.then(|| spec.rootfs.target.clone()),
            shm: None,
            timeout: crate::monitor::runtime::timeout(),
        };
        let made = attach_shm_of(spec, &mut oci)
            .and_then(|()| Self::oci_create(spec, &layout, &oci, netns.as_ref(), &sigfd));
        let made = match made {
            Ok(made) => made,
            Err(f) => {
                oci.teardown(&sigfd);
                return Err(report_at_go(ctl, f));
            }
        };
        drop(netns);
        let cgroup = ContainerCgroup::existing(&layout, &spec.cgroup.path).unwrap_or_default();
        let mut m = Monitor {
            mnt_ns: None,
            pid: made.pid,
            tty: spec.tty,
            stdin_once: spec.stdin_once,
            state_dir,
            listener: None,
            ctl: None,
            out: made.out,
            err: made.err,
            stdin: made.stdin,
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
            oci: Some(oci),
        };
        if ctl
            .send(&CtlEvent::Ready {
                pid: made.pid.as_raw(),
            })
            .is_err()
        {
            m.abort();
            return Err(StartError::Quiet);
        }
        if let Err(message) = m.open_socket_and_log(spec) {
            m.abort();
            return Err(report_at_go(ctl, Failure::setup(message)));
        }
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
        let started = match &m.oci {
            Some(o) => o.runtime().start(&m.sigfd),
            None => Ok(()),
        };
        if let Err(e) = started {
            return Err(m.fail(ctl, error_chain(&e)));
        }
        if ctl
            .send(&CtlEvent::Started {
                pid: made.pid.as_raw(),
            })
            .is_err()
        {
            // berthd is gone: the container runs on, unwatched until it is restored.
        }
        // The runtime calls' SIGCHLDs were read while waiting for them: one of them may
        // have been the init's, which the event loop would otherwise not hear of.
        m.reap();
        Ok(m)
    }

    /// Steps 2 and 3 of the module docs: the bundle, then `runtime create`.
    #[allow(clippy::too_many_lines)]
    fn oci_create(
        spec: &ContainerSpec,
        layout: &CgroupLayout,
        oci: &OciState,
        netns: Option<&OwnedFd>,
        sigfd: &SignalFd,
    ) -> Result<Made, Failure> {
        let user = resolve_user(spec).map_err(|message| Failure {
            message,
            exec: true,
        })?;
        let netns_path = netns.map(|fd| {
            PathBuf::from(format!(
                "/proc/{}/fd/{}",
                nix::unistd::getpid(),
                fd.as_raw_fd()
            ))
        });
        // The same limits and device nodes as the native init's, looked up on the host.
        let prepared = cgroup_setup::prepare(&spec.cgroup, layout)
            .map_err(|e| Failure::setup(error_chain(&e)))?;
        let (mut limits, mut devices) = (prepared.limits, prepared.init.devices);
        if spec.security.privileged {
            // As the native driver: every device allowed, and every node of the host's
            // /dev made in the container's (`sys::privileged::copy_host_devices`), those of
            // `--device` kept.
            cgroup_setup::allow_every_device(&mut limits);
            for d in sys::privileged::host_devices(Path::new("/dev"), "/dev") {
                if !devices.iter().any(|n| n.path == d.path) {
                    devices.push(d);
                }
            }
        }
        let resolved = Resolved {
            user: &user,
            limits: &limits,
            devices: &devices,
            env: process_env(spec, &user.home),
            netns_path,
            shm: oci.shm.clone(),
        };
        crate::monitor::settings::check_oom_score_adj(&spec.process).map_err(Failure::setup)?;
        let config = bundle::build(spec, &resolved).map_err(Failure::setup)?;
        let json = serde_json::to_vec(&config).map_err(|e| Failure::setup(e.to_string()))?;
        let path = oci.dir.join(CONFIG_FILE);
        fs::write(&path, json)
            .map_err(|e| Failure::setup(format!("write {}: {e}", path.display())))?;

        let pipe = || {
            pipe2(OFlag::O_CLOEXEC)
                .map_err(|e| Failure::setup(error_chain(&SysError::call("pipe2", e))))
        };
        let cmd = spec.args.first().map_or("", String::as_str);
        let runtime = oci.runtime();
        if spec.tty {
            let console = UnixListener::bind(CONSOLE_SOCKET).map_err(|e| {
                Failure::setup(format!(
                    "listen on {}: {e}",
                    Path::new(CONSOLE_SOCKET).display()
                ))
            })?;
            runtime
                .create(None, true, sigfd)
                .map_err(|e| runtime_failure(&e, cmd))?;
            let _ = fs::remove_file(CONSOLE_SOCKET);
            let pid = init_pid(&runtime)?;
            let master =
                receive_console(&console, Duration::from_secs(1)).map_err(Failure::setup)?;
            let (rows, cols) = spec.console_size;
            if rows > 0 && cols > 0 {
                sys::pty::set_winsize(master.as_fd(), rows, cols)
                    .map_err(|e| Failure::setup(error_chain(&e)))?;
            }
            let stdin = if spec.open_stdin {
                master.try_clone().ok()
            } else {
                None
            };
            return Ok(Made {
                pid,
                out: Some(master),
                err: None,
                stdin,
            });
        }
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (in_r, in_w) = if spec.open_stdin {
            let (r, w) = pipe()?;
            (Stdio::from(r), Some(w))
        } else {
            (Stdio::null(), None)
        };
        let stdio = CreateStdio {
            stdin: in_r,
            stdout: Stdio::from(out_w),
            stderr: Stdio::from(err_w),
        };
        runtime
            .create(Some(stdio), false, sigfd)
            .map_err(|e| runtime_failure(&e, cmd))?;
        let pid = init_pid(&runtime)?;
        Ok(Made {
            pid,
            out: Some(out_r),
            err: Some(err_r),
            stdin: in_w,
        })
    }
}

/// `--ipc container:<id>`: a copy of that container's /dev/shm (a tmpfs in its own mount
/// namespace, which no bind reaches) attached at `<state dir>/shm` in the monitor's mount
/// namespace, which the runtime's is a copy of, so that the bundle can bind it.
fn attach_shm_of(spec: &ContainerSpec, oci: &mut OciState) -> Result<(), Failure> {
    let IpcNs::Join(pid) = spec.process.ipc else {
        return Ok(());
    };
    let tree = sys::ipc::clone_shm_of(pid).map_err(|e| Failure::setup(error_chain(&e)))?;
    let at = oci.dir.join("shm");
    fs::create_dir_all(&at).map_err(|e| Failure::setup(format!("create {}: {e}", at.display())))?;
    sys::ipc::attach_tree(&tree, &at).map_err(|e| {
        Failure::setup(format!(
            "attaching the /dev/shm of pid {pid} at {}: {e}",
            at.display()
        ))
    })?;
    oci.shm = Some(at);
    Ok(())
}

/// What `create` made: the init and the monitor's ends of its stdio.
struct Made {
    pid: Pid,
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
}

fn init_pid(runtime: &Runtime<'_>) -> Result<Pid, Failure> {
    runtime
        .init_pid()
        .map(Pid::from_raw)
        .ok_or_else(|| Failure::setup(format!("the OCI runtime wrote no {PID_FILE}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::spec::{CgroupSpec, NetworkSpec, RootfsSpec};

    #[test]
    fn the_process_gets_the_native_inits_environment() {
        let spec = ContainerSpec {
            id: "x".into(),
            rootfs: RootfsSpec {
                fstype: "bind".into(),
                source: "/".into(),
                options: String::new(),
                target: "/".into(),
            },
            hostname: "h1".into(),
            domainname: String::new(),
            args: vec!["true".into()],
            env: vec!["A=1".into()],
            cwd: String::new(),
            user: String::new(),
            tty: false,
            open_stdin: false,
            stdin_once: false,
            log_path: PathBuf::new(),
            log: Default::default(),
            log_attrs: None,
            state_dir: PathBuf::new(),
            cgroup: CgroupSpec::default(),
            mounts: Vec::new(),
            network: NetworkSpec::None,
            join_netns: false,
            readonly_rootfs: false,
            shm_size: 0,
            console_size: (0, 0),
            process: Default::default(),
            security: Default::default(),
            runtime: String::new(),
            oci: None,
        };
        assert_eq!(
            process_env(&spec, "/root"),
            [
                "A=1".to_owned(),
                format!("PATH={}", lookup::DEFAULT_PATH),
                "HOME=/root".to_owned(),
                "HOSTNAME=h1".to_owned()
            ]
        );
        let mut s = spec.clone();
        s.env = vec!["PATH=/x".into(), "HOME=/h".into(), "HOSTNAME=n".into()];
        assert_eq!(process_env(&s, "/root"), s.env);
    }
}
