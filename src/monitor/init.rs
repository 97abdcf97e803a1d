//! The container init: what the monitor's cloned child does between `clone` and `exec`.
//!
//! The monitor is single-threaded, so the child may allocate freely. Every failure is
//! written as text to the error pipe (close-on-exec: a successful exec closes it empty)
//! and the child exits.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::unistd::dup2;

use super::cgroup_setup;
use super::lookup;
use super::spec::{ContainerSpec, NetworkSpec};
use super::{reaper, settings, user};
use crate::sys;
use crate::util::error_chain;

/// The child's side of the descriptors the monitor prepared.
#[derive(Debug)]
pub struct InitFds {
    pub stdio: InitStdio,
    /// Read end of the "go" pipe: one byte lets the init exec.
    pub sync: OwnedFd,
    /// Write end of the error pipe (close-on-exec).
    pub err: OwnedFd,
    /// The network namespace to join (see `ContainerSpec::join_netns`), already wired.
    pub netns: Option<OwnedFd>,
    /// Its device nodes, cgroupfs and cgroup namespace.
    pub cgroup: cgroup_setup::InitCgroup,
}

/// The init's stdio.
#[derive(Debug)]
pub enum InitStdio {
    /// stdin, stdout and stderr.
    Fds([OwnedFd; 3]),
    /// A tty: the init opens a pty in the container's devpts and sends the master to the
    /// monitor over this socket.
    Pty(OwnedFd),
}

/// Runs the init and never returns: exec on success, exit 1 after reporting a failure.
pub fn run(spec: &ContainerSpec, fds: InitFds) -> ! {
    // A panic must never unwind back into the monitor's code in this child process.
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| setup_and_exec(spec, &fds)));
    report_and_exit(&fds.err, res)
}

/// Ends a child of the monitor whose way to `execve` failed: the text goes to the error
/// pipe `err`, and the process exits 1 (at once, without unwinding into the monitor's
/// code). `res` is what `catch_unwind` made of the child's set-up.
pub(super) fn report_and_exit(
    err: &OwnedFd,
    res: std::thread::Result<Result<Never, Failure>>,
) -> ! {
    let msg = match res {
        Ok(Ok(never)) => match never {},
        Ok(Err(Failure::Quiet)) => sys::process::exit_now(1),
        Ok(Err(Failure::Msg(m))) => m,
        Err(_) => "container init failed unexpectedly".to_owned(),
    };
    let mut rest = msg.as_bytes();
    while !rest.is_empty() {
        match nix::unistd::write(err, rest) {
            Ok(0) | Err(_) => break,
            Ok(n) => rest = &rest[n..],
        }
    }
    sys::process::exit_now(1)
}

pub(super) enum Failure {
    /// The monitor went away before "go": exit without a word.
    Quiet,
    Msg(String),
}

pub(super) enum Never {}

pub(super) fn sys_fail(e: sys::SysError) -> Failure {
    Failure::Msg(error_chain(&e))
}

/// `--privileged`: the host's devices in the container's /dev, and /sys writable (the
/// devices cgroup is opened by the monitor).
fn privileged_rootfs(spec: &ContainerSpec) -> Result<(), sys::SysError> {
    let root = &spec.rootfs.target;
    sys::privileged::copy_host_devices(Path::new("/dev"), &root.join("dev"))?;
    sys::privileged::make_sys_writable(&root.join("sys"))
}

fn setup_and_exec(spec: &ContainerSpec, fds: &InitFds) -> Result<Never, Failure> {
    // The monitor moves us into the container's cgroup meanwhile (before "go").
    sys::process::reset_signals().map_err(sys_fail)?;
    nix::unistd::setsid().map_err(|e| sys_fail(sys::SysError::call("setsid", e)))?;
    if let InitStdio::Fds(stdio) = &fds.stdio {
        for (i, fd) in stdio.iter().enumerate() {
            let target = RawFd::try_from(i).unwrap_or(0);
            dup2(fd.as_raw_fd(), target).map_err(|e| sys_fail(sys::SysError::call("dup2", e)))?;
        }
    }
    if !spec.process.uts_host {
        sys::namespaces::set_hostname(&spec.hostname, &spec.domainname).map_err(sys_fail)?;
    }
    let new_netns = spec.network != NetworkSpec::Host;
    match &fds.netns {
        // Made by berthd with `lo` up (and `eth0` wired); the descriptor is close-on-exec.
        Some(ns) => sys::namespaces::join_netns(ns).map_err(sys_fail)?,
        None if new_netns => sys::namespaces::loopback_up().map_err(sys_fail)?,
        None => {}
    }
    sys::mounts::prepare_rootfs(&spec.rootfs, &spec.mounts, new_netns, spec.shm_size)
        .map_err(sys_fail)?;
    settings::apply_ipc_shm(&spec.process, &spec.rootfs.target).map_err(sys_fail)?;
    if spec.security.privileged {
        privileged_rootfs(spec).map_err(sys_fail)?;
    }
    cgroup_setup::before_pivot(&spec.rootfs.target, &fds.cgroup).map_err(sys_fail)?;
    // Decoded before "go": after it, only the system calls are left.
    let security = super::security::prepare(&spec.security).map_err(Failure::Msg)?;
    sys::mounts::pivot_root(&spec.rootfs.target).map_err(sys_fail)?;
    settings::apply_sysctls(&spec.process).map_err(Failure::Msg)?;
    let cwd = if spec.cwd.is_empty() {
        "/"
    } else {
        spec.cwd.as_str()
    };
    if !Path::new(cwd).exists() {
        // Docker creates a missing working directory (as root, before switching user, and
        // before the rootfs may become read-only).
        let _ = std::fs::create_dir_all(cwd);
    }
    sys::mounts::finish_rootfs(
        spec.readonly_rootfs,
        &spec.security.masked_paths,
        &spec.security.readonly_paths,
    )
    .map_err(sys_fail)?;
    if let InitStdio::Pty(sock) = &fds.stdio {
        let master = sys::pty::open_container_pty().map_err(sys_fail)?;
        sys::process::send_with_fds(sock.as_raw_fd(), b"p", &[master.as_raw_fd()])
            .map_err(|e| Failure::Msg(format!("sending the pty to the monitor: {e}")))?;
    }

    if !cgroup_setup::after_pivot(&fds.sync, &fds.cgroup).map_err(sys_fail)? {
        return Err(Failure::Quiet);
    }

    // Wait for "go" (the monitor has handed out the attaches, berthd wired the network).
    if !cgroup_setup::wait_for(&fds.sync, cgroup_setup::GO) {
        return Err(Failure::Quiet);
    }

    let mut p = Process::of_container(spec);
    if spec.process.init {
        p.reaper_err = Some(fds.err.as_raw_fd());
    }
    exec_process(spec, &p, &security)
}

/// What runs in the container: its command, or an exec's (`docker exec`).
#[derive(Debug, Clone, Copy)]
pub struct Process<'a> {
    /// argv; `args[0]` is looked up in the process's `PATH` when it has no `/`.
    pub args: &'a [String],
    /// `KEY=value` entries; `PATH` and `HOME` are added when missing.
    pub env: &'a [String],
    /// The working directory ("" means `/`).
    pub cwd: &'a str,
    /// `uid[:gid]` or `name[:group]` ("" means root).
    pub user: &'a str,
    /// `--init`: the error pipe of the reaper that stays pid 1 while a child runs the
    /// command (the container's own command only).
    pub reaper_err: Option<RawFd>,
}

impl<'a> Process<'a> {
    /// The container's own command.
    pub fn of_container(spec: &'a ContainerSpec) -> Self {
        Process {
            args: &spec.args,
            env: &spec.env,
            cwd: &spec.cwd,
            user: &spec.user,
            reaper_err: None,
        }
    }
}

/// The last steps before `execve`, shared by the container's init and every exec in the
/// container (see `monitor::exec`), so that both get the container's security settings:
/// the user looked up in the container's /etc/passwd and /etc/group, the environment's
/// defaults, the seccomp filter, the capabilities and the user switch, the working
/// directory, and Docker's lookup and exec error texts. Runs inside the container (after
/// `pivot_root`, or after joining its mount namespace). Anything more the container's
/// processes must get belongs here.
pub(super) fn exec_process(
    spec: &ContainerSpec,
    p: &Process<'_>,
    security: &super::security::Prepared,
) -> Result<Never, Failure> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok();
    let group = std::fs::read_to_string("/etc/group").ok();
    let mut u = user::resolve(p.user, passwd.as_deref(), group.as_deref()).map_err(Failure::Msg)?;
    if !spec.process.group_add.is_empty() {
        for g in user::additional_groups(&spec.process.group_add, group.as_deref())
            .map_err(Failure::Msg)?
        {
            if !u.groups.contains(&g) {
                u.groups.push(g);
            }
        }
    }

    let mut env: Vec<String> = p.env.to_vec();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={}", lookup::DEFAULT_PATH));
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", u.home));
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) && !spec.hostname.is_empty() {
        env.push(format!("HOSTNAME={}", spec.hostname));
    }

    let cwd = if p.cwd.is_empty() { "/" } else { p.cwd };
    // Limits and the OOM score while still privileged (an exec gets the container's, as
    // runc's exec does).
    settings::apply_rlimits(&spec.process).map_err(Failure::Msg)?;
    settings::apply_oom_score_adj(&spec.process).map_err(Failure::Msg)?;
    // Last privileged step: no_new_privs, the seccomp filter, the capabilities and the
    // user; the calls left until exec (chdir, execve) are allowed by any filter that
    // lets the container run at all.
    super::security::enter(security, u.uid, u.gid, &u.groups).map_err(sys_fail)?;
    nix::unistd::chdir(cwd).map_err(|e| {
        Failure::Msg(format!(
            "chdir to cwd ({}) set in config.json failed: {}",
            lookup::quote(cwd),
            lookup::errno_text(e)
        ))
    })?;

    let Some(arg0) = p.args.first() else {
        return Err(Failure::Msg("no command specified".to_owned()));
    };
    let path_env = lookup::path_of(&env);
    let exe = lookup::look_path(arg0, path_env).map_err(Failure::Msg)?;
    let c = |s: &str| CString::new(s).map_err(|_| Failure::Msg(format!("invalid string {s:?}")));
    let exe_c = c(&exe.to_string_lossy())?;
    let argv = p.args.iter().map(|a| c(a)).collect::<Result<Vec<_>, _>>()?;
    let envp = env.iter().map(|e| c(e)).collect::<Result<Vec<_>, _>>()?;
    if let Some(err_fd) = p.reaper_err {
        // pid 1 stays here as the reaper; only its child goes on to the exec.
        reaper::fork_reaper(err_fd, &reaper::title(&argv), spec.tty).map_err(Failure::Msg)?;
    }
    let e = match nix::unistd::execve(&exe_c, &argv, &envp) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    Err(Failure::Msg(format!(
        "exec {}: {}",
        exe.display(),
        lookup::errno_text(e)
    )))
}
