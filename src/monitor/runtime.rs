//! Running an OCI runtime (runc, crun, youki) from the monitor: `create`, `start` and
//! `delete` of one container, each bounded by a deadline, and the runtime's own error
//! text from its JSON log.
//!
//! The monitor stays single-threaded: a call is a child process that the monitor waits
//! for on its SIGCHLD signalfd, with a timeout, so a runtime that hangs is killed and
//! reported rather than waited on forever. Every call runs in the container's state dir,
//! which is also the bundle (`config.json`), so that the paths handed to the runtime
//! (pid file, console socket, log) stay short.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::SignalFd;

use super::spec::OciRuntimeSpec;

/// The runtime's log (`--log`, JSON lines), in the state dir.
pub const LOG_FILE: &str = "runtime.log";
/// What the runtime writes on its stderr when the monitor keeps it (everything but a
/// `create` without a tty, whose stderr is the container's).
pub const STDERR_FILE: &str = "runtime.err";
/// Where `create` writes the container init's pid.
pub const PID_FILE: &str = "init.pid";
/// The socket `create --console-socket` sends the pty's master to.
pub const CONSOLE_SOCKET: &str = "console.sock";
/// The bundle's spec, beside the rest of the state dir.
pub const CONFIG_FILE: &str = "config.json";

/// How long one runtime call may take before it is killed and the start fails
/// (`BERTH_RUNTIME_TIMEOUT`, in seconds, in berthd's environment overrides it).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The deadline of each runtime call.
pub fn timeout() -> Duration {
    std::env::var("BERTH_RUNTIME_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64)
}

/// Why a runtime call failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("OCI runtime {name} ({}) could not be run", binary.display())]
    Spawn {
        name: String,
        binary: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "OCI runtime {name} did not finish {command} within {}s; it was killed",
        after.as_secs_f64()
    )]
    Timeout {
        name: String,
        command: &'static str,
        after: Duration,
    },
    /// The runtime said no: its own text (from its log, else its stderr), as dockerd
    /// shows it (`OCI runtime create failed: runc create failed: …`).
    #[error("OCI runtime {command} failed: {message}")]
    Failed {
        command: &'static str,
        message: String,
    },
}

/// The container's stdio for `create`, or `None` for the monitor's own choice (with a
/// tty, the runtime's stdio are not the container's).
#[derive(Debug)]
pub struct CreateStdio {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

/// One container's runtime calls.
#[derive(Debug)]
pub struct Runtime<'a> {
    pub spec: &'a OciRuntimeSpec,
    pub id: &'a str,
    /// The state dir: the bundle and the calls' working directory.
    pub dir: &'a Path,
    pub timeout: Duration,
}

impl Runtime<'_> {
    fn command(&self, sub: &[&str]) -> Command {
        let mut c = Command::new(&self.spec.binary);
        c.args(&self.spec.args)
            .arg("--root")
            .arg(&self.spec.root)
            .arg("--log")
            .arg(self.dir.join(LOG_FILE))
            .arg("--log-format")
            .arg("json")
            .args(sub)
            .current_dir(self.dir);
        c
    }

    /// `create`: the runtime sets the container up (namespaces, mounts, cgroup, the
    /// process waiting to exec) and writes the init's pid to [`PID_FILE`]; with
    /// `console`, it sends the pty's master to [`CONSOLE_SOCKET`]. `stdio`: the
    /// container's (the runtime hands its own to the process), or `None` with a tty.
    pub fn create(
        &self,
        stdio: Option<CreateStdio>,
        console: bool,
        sig: &SignalFd,
    ) -> Result<(), RuntimeError> {
        let bundle = self.dir.display().to_string();
        let mut sub = vec!["create", "--bundle", &bundle, "--pid-file", PID_FILE];
        if console {
            sub.extend(["--console-socket", CONSOLE_SOCKET]);
        }
        sub.push(self.id);
        let mut cmd = self.command(&sub);
        let keep_stderr = stdio.is_none();
        match stdio {
            Some(s) => {
                cmd.stdin(s.stdin).stdout(s.stdout).stderr(s.stderr);
            }
            None => {
                cmd.stdin(Stdio::null()).stdout(Stdio::null());
                cmd.stderr(self.stderr_file());
            }
        }
        self.run("create", cmd, keep_stderr, sig)
    }

    /// `start`: the process execs the container's command.
    pub fn start(&self, sig: &SignalFd) -> Result<(), RuntimeError> {
        let mut cmd = self.command(&["start", self.id]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(self.stderr_file());
        self.run("start", cmd, true, sig)
    }

    /// `delete [--force]`: the runtime removes its state and the container's cgroup
    /// (`--force` kills the container's processes first).
    pub fn delete(&self, force: bool, sig: &SignalFd) -> Result<(), RuntimeError> {
        let mut sub = vec!["delete"];
        if force {
            sub.push("--force");
        }
        sub.push(self.id);
        let mut cmd = self.command(&sub);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(self.stderr_file());
        self.run("delete", cmd, true, sig)
    }

    /// The init's pid, from [`PID_FILE`] after a `create`.
    pub fn init_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join(PID_FILE))
            .ok()?
            .trim()
            .parse()
            .ok()
            .filter(|p| *p > 0)
    }

    fn stderr_file(&self) -> Stdio {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.dir.join(STDERR_FILE))
            .map_or_else(|_| Stdio::null(), Stdio::from)
    }

    fn run(
        &self,
        command: &'static str,
        mut cmd: Command,
        stderr_kept: bool,
        sig: &SignalFd,
    ) -> Result<(), RuntimeError> {
        let log_path = self.dir.join(LOG_FILE);
        let log_start = std::fs::metadata(&log_path).map_or(0, |m| m.len());
        // An exec made the monitor's children be born in the container's pid namespace.
        if let Err(e) = crate::sys::enter::reset_pid_ns_for_children() {
            eprintln!("berthd monitor: {e}");
        }
        let mut child = cmd.spawn().map_err(|source| RuntimeError::Spawn {
            name: self.spec.name.clone(),
            binary: self.spec.binary.clone(),
            source,
        })?;
        // Our copies of the container's stdio go now: the runtime's process has them.
        drop(cmd);
        let status = wait_for(&mut child, sig, self.timeout).ok().flatten();
        let Some(status) = status else {
            return Err(RuntimeError::Timeout {
                name: self.spec.name.clone(),
                command,
                after: self.timeout,
            });
        };
        if status.success() {
            return Ok(());
        }
        let from_stderr = || {
            stderr_kept
                .then(|| std::fs::read_to_string(self.dir.join(STDERR_FILE)).ok())
                .flatten()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let message = last_error(&log_path, log_start)
            .or_else(from_stderr)
            .unwrap_or_else(|| exit_text(status));
        Err(RuntimeError::Failed { command, message })
    }
}

/// `delete --force` of container `id` in `spec`'s state root, if the runtime still has it
/// there: what a monitor that died before its container's exit did not do (the runtime's
/// state, and the cgroups it made, `name=systemd` included). Run by berthd at the
/// container's removal, off the actors' threads; bounded by [`timeout`] (polled: berthd
/// has no SIGCHLD signalfd).
pub fn delete_leftover(spec: &OciRuntimeSpec, id: &str) -> Result<bool, RuntimeError> {
    if !spec.root.join(id).exists() {
        return Ok(false);
    }
    let spawn_err = |source| RuntimeError::Spawn {
        name: spec.name.clone(),
        binary: spec.binary.clone(),
        source,
    };
    let mut child = Command::new(&spec.binary)
        .args(&spec.args)
        .arg("--root")
        .arg(&spec.root)
        .args(["delete", "--force", id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    let deadline = Instant::now() + timeout();
    let status = loop {
        if let Some(st) = child.try_wait().map_err(spawn_err)? {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RuntimeError::Timeout {
                name: spec.name.clone(),
                command: "delete",
                after: timeout(),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if status.success() {
        return Ok(true);
    }
    let mut text = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    Err(RuntimeError::Failed {
        command: "delete",
        message: text.trim().to_owned(),
    })
}

/// Waits for `child` on the SIGCHLD signalfd (SIGCHLD blocked), at most `timeout`; a child
/// still running then is killed and reaped, and `None` returned.
fn wait_for(
    child: &mut Child,
    sig: &SignalFd,
    timeout: Duration,
) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait()? {
            return Ok(Some(st));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        let ms = u16::try_from(left.as_millis().clamp(1, 1000)).unwrap_or(1000);
        let mut fds = [PollFd::new(sig.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(ms));
        while let Ok(Some(_)) = sig.read_signal() {}
    }
}

fn exit_text(st: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("signal: {s}"),
        _ => st.to_string(),
    }
}

/// The last `"level":"error"` message the runtime logged after byte `from` of its JSON log.
pub fn last_error(log: &Path, from: u64) -> Option<String> {
    let mut f = File::open(log).ok()?;
    f.seek(SeekFrom::Start(from)).ok()?;
    let mut text = String::new();
    f.take(1 << 20).read_to_string(&mut text).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| matches!(v["level"].as_str(), Some("error" | "fatal")))
        .filter_map(|v| v["msg"].as_str().map(str::to_owned))
        .next_back()
}

/// Whether a failed `create` means the container's command could not be run (a missing or
/// non-executable command, dockerd's 127 and 126, a 400), rather than the runtime or the
/// host failing (a 500). `cmd` is the command as the container gives it. dockerd's rules
/// (`translateContainerdStartErr`).
pub fn is_exec_failure(message: &str, cmd: &str) -> bool {
    let m = message.to_lowercase();
    let not_found =
        m.contains("executable file not found") || m.contains("no such file or directory");
    (m.contains(&cmd.to_lowercase()) && not_found) || m.contains("permission denied")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_error_after_the_offset_is_the_runtimes_text() {
        let t = tempfile::tempdir().unwrap();
        let log = t.path().join("log");
        let old = "{\"level\":\"error\",\"msg\":\"old\",\"time\":\"t\"}\n";
        std::fs::write(
            &log,
            format!(
                "{old}{}\n{}\nnot json\n{}\n",
                r#"{"level":"warning","msg":"a warning","time":"t"}"#,
                r#"{"level":"error","msg":"runc create failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH","time":"t"}"#,
                r#"{"level":"info","msg":"later","time":"t"}"#,
            ),
        )
        .unwrap();
        let m = last_error(&log, old.len() as u64).unwrap();
        assert!(m.starts_with("runc create failed: "), "{m}");
        assert!(is_exec_failure(&m, "nosuch"));
        assert_eq!(last_error(&log, 0).as_deref(), Some(m.as_str()));
        assert_eq!(
            last_error(&log, std::fs::metadata(&log).unwrap().len()),
            None
        );
        assert!(is_exec_failure(
            "exec: \"/etc/passwd\": permission denied",
            "/etc/passwd"
        ));
        assert!(!is_exec_failure(
            "runc create failed: cgroup: no such file or directory",
            "sh"
        ));
    }

    #[test]
    fn a_hanging_runtime_is_killed_at_the_deadline() {
        let mask = crate::sys::process::block_sigchld().unwrap();
        let sig = SignalFd::with_flags(
            &mask,
            nix::sys::signalfd::SfdFlags::SFD_NONBLOCK | nix::sys::signalfd::SfdFlags::SFD_CLOEXEC,
        )
        .unwrap();
        let t = tempfile::tempdir().unwrap();
        let script = t.path().join("rt");
        std::fs::write(
            &script,
            "#!/bin/sh\nfor a; do case $a in start) sleep 30;; delete) echo '{\"level\":\"error\",\"msg\":\"no such container\"}' >> runtime.log; exit 1;; esac; done\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let spec = OciRuntimeSpec {
            name: "fake".into(),
            binary: script,
            args: Vec::new(),
            root: t.path().join("root"),
            init: None,
        };
        let rt = Runtime {
            spec: &spec,
            id: "x",
            dir: t.path(),
            timeout: Duration::from_millis(300),
        };
        let began = Instant::now();
        let e = rt.start(&sig).unwrap_err();
        assert!(began.elapsed() < Duration::from_secs(5));
        assert_eq!(
            e.to_string(),
            "OCI runtime fake did not finish start within 0.3s; it was killed"
        );
        let e = rt.delete(false, &sig).unwrap_err();
        assert_eq!(
            e.to_string(),
            "OCI runtime delete failed: no such container"
        );
    }
}
