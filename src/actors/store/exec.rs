//! Exec instances (`docker exec`): their records, dockerd's checks in its words, and their
//! lifetime.
//!
//! The records live in memory only, in the store beside the containers (an exec is part
//! of its container's state: `ExecIDs` in `docker inspect`). The processes are the
//! monitors' (see `crate::monitor::exec`), so an exec outlives berthd like its container;
//! a berthd that restores a running container gets its execs listed by the monitor
//! ([`ExecEvent::Restored`]) and records them again, so `GET /exec/{id}/json` answers
//! across a restart (dockerd forgets them).
//!
//! As in dockerd: an exec is made in a running container and started once; its exit
//! comes from the monitor ([`ExecEvent::Exited`]) before its stream ends. When its
//! container stops, the execs not yet exited are dropped (they died with it); the exited
//! ones stay until the collector has seen them exited twice, five minutes apart
//! (dockerd's `execCommandGC`), or until their container is removed.

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::messages::{CreateExec, ExecStarted, InspectExec, ResizeExec, StartExec};
use super::state::{Container, Status};
use super::{ContainerStoreActor, Fut, StoreError, ready};
use crate::actors::exec::{ExecError, ExecEvent, PrepareExec, ResizeExecTty, RunExec};
use crate::model::api::{ExecInspectResponse, ProcessConfig};
use crate::model::exec::ExecCreate;
use crate::monitor::proto::{ExecSpec, ExecState};

/// How often the collector looks at the exited execs (dockerd's five minutes).
pub const EXEC_GC_EVERY: Duration = Duration::from_secs(300);

/// Where an exec is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecRun {
    Created,
    /// Its start is under way.
    Starting,
    Running {
        pid: i32,
    },
    Exited {
        pid: i32,
        code: i32,
    },
}

/// One exec instance.
#[derive(Debug)]
pub struct ExecRecord {
    pub id: String,
    pub container_id: String,
    /// The command: `Cmd[0]`, and the rest.
    pub entrypoint: String,
    pub arguments: Vec<String>,
    /// The whole environment: dockerd's defaults, the container's, then the exec's.
    pub env: Vec<String>,
    /// The exec's `WorkingDir`, else the container's.
    pub cwd: String,
    /// The exec's `User`, else the container's.
    pub user: String,
    pub privileged: bool,
    pub tty: bool,
    pub open_stdin: bool,
    pub open_stdout: bool,
    pub open_stderr: bool,
    pub console_size: Option<(u16, u16)>,
    pub run: ExecRun,
    /// The collector saw it exited once; it goes at its next round.
    pub can_remove: bool,
    /// Hijacks waiting for the exit to be recorded (dropped at the exit).
    waiters: Vec<oneshot::Sender<()>>,
}

impl ExecRecord {
    /// The command as dockerd writes it after `exec_create: ` and `exec_start: `.
    fn command_line(&self) -> String {
        let mut s = self.entrypoint.clone();
        for a in &self.arguments {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    /// The record of a new exec `id` in `c`, from the create request (dockerd's
    /// `ContainerExecCreate`).
    pub fn new(id: String, c: &Container, req: &ExecCreate) -> Self {
        let cfg = &req.config;
        let mut cmd = cfg.cmd.clone().unwrap_or_default().into_iter();
        let entrypoint = cmd.next().unwrap_or_default();
        let tty = cfg.tty.unwrap_or(false);
        let or_container = |own: &Option<String>, theirs: &Option<String>| {
            own.clone()
                .filter(|s| !s.is_empty())
                .or_else(|| theirs.clone())
                .unwrap_or_default()
        };
        ExecRecord {
            id,
            container_id: c.id.clone(),
            entrypoint,
            arguments: cmd.collect(),
            env: exec_env(c, tty, cfg.env.as_deref().unwrap_or(&[])),
            cwd: or_container(&cfg.working_dir, &c.config.working_dir),
            user: or_container(&cfg.user, &c.config.user),
            privileged: cfg.privileged.unwrap_or(false),
            tty,
            open_stdin: cfg.attach_stdin.unwrap_or(false),
            open_stdout: cfg.attach_stdout.unwrap_or(false),
            open_stderr: cfg.attach_stderr.unwrap_or(false),
            console_size: req.console_size,
            run: ExecRun::Created,
            can_remove: false,
            waiters: Vec::new(),
        }
    }

    /// A record again, from a monitor's listing after a restart.
    fn restored(container_id: &str, st: ExecState) -> Self {
        let mut args = st.args.into_iter();
        ExecRecord {
            id: st.id,
            container_id: container_id.to_owned(),
            entrypoint: args.next().unwrap_or_default(),
            arguments: args.collect(),
            env: Vec::new(),
            cwd: String::new(),
            user: st.user,
            privileged: st.privileged,
            tty: st.tty,
            open_stdin: st.stdin,
            open_stdout: st.stdout,
            open_stderr: st.stderr,
            console_size: None,
            run: match st.exit_code {
                Some(code) => ExecRun::Exited { pid: st.pid, code },
                None => ExecRun::Running { pid: st.pid },
            },
            can_remove: false,
            waiters: Vec::new(),
        }
    }

    /// Listed in its container's `ExecIDs` (dockerd's `container.ExecCommands`): made,
    /// and not exited yet.
    pub fn live(&self) -> bool {
        !matches!(self.run, ExecRun::Exited { .. })
    }

    /// What the monitor runs.
    fn spec(&self, detach: bool, raw_stream: bool, console: Option<(u16, u16)>) -> ExecSpec {
        let mut args = vec![self.entrypoint.clone()];
        args.extend(self.arguments.iter().cloned());
        ExecSpec {
            id: self.id.clone(),
            args,
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            user: self.user.clone(),
            privileged: self.privileged,
            tty: self.tty,
            stdin: self.open_stdin,
            stdout: self.open_stdout,
            stderr: self.open_stderr,
            detach,
            raw_stream,
            console_size: console.or(self.console_size).unwrap_or((0, 0)),
        }
    }

    fn set_exited(&mut self, code: i32) {
        let pid = match self.run {
            ExecRun::Running { pid } | ExecRun::Exited { pid, .. } => pid,
            ExecRun::Created | ExecRun::Starting => 0,
        };
        self.run = ExecRun::Exited { pid, code };
        for w in self.waiters.drain(..) {
            let _ = w.send(());
        }
    }

    /// `GET /exec/{id}/json`, as dockerd's `ContainerExecInspect` shows it.
    pub fn inspect(&self) -> ExecInspectResponse {
        let (running, pid, exit_code) = match self.run {
            ExecRun::Created => (false, 0, None),
            ExecRun::Starting => (true, 0, None),
            ExecRun::Running { pid } => (true, pid, None),
            ExecRun::Exited { pid, code } => (false, pid, Some(i64::from(code))),
        };
        ExecInspectResponse {
            can_remove: Some(self.can_remove),
            // dockerd keeps the keys as bytes: none is "".
            detach_keys: Some(String::new()),
            id: Some(self.id.clone()),
            running: Some(running),
            exit_code,
            process_config: Some(ProcessConfig {
                privileged: Some(self.privileged),
                user: Some(self.user.clone()).filter(|u| !u.is_empty()),
                tty: Some(self.tty),
                entrypoint: Some(self.entrypoint.clone()),
                arguments: Some(self.arguments.clone()),
            }),
            open_stdin: Some(self.open_stdin),
            open_stderr: Some(self.open_stderr),
            open_stdout: Some(self.open_stdout),
            container_id: Some(self.container_id.clone()),
            pid: Some(i64::from(pid)),
        }
    }
}

/// The exec records of every container.
#[derive(Debug, Default)]
pub struct ExecTable {
    records: HashMap<String, ExecRecord>,
    /// The collector's timer runs (from the first exec on).
    gc_armed: bool,
}

impl ExecTable {
    /// The `ExecIDs` of container `id` (`None`, shown as null, when it has none).
    pub fn ids_of(&self, id: &str) -> Option<Vec<String>> {
        let ids: Vec<String> = self
            .records
            .values()
            .filter(|r| r.container_id == id && r.live())
            .map(|r| r.id.clone())
            .collect();
        (!ids.is_empty()).then_some(ids)
    }

    /// Container `id` stopped: its execs that had not exited died with it, and are
    /// forgotten (their waiters are let go).
    pub fn container_exited(&mut self, id: &str) {
        self.records
            .retain(|_, r| r.container_id != id || !r.live());
    }

    /// Container `id` is gone: so are all its execs.
    pub fn container_removed(&mut self, id: &str) {
        self.records.retain(|_, r| r.container_id != id);
    }

    /// One round of the collector: the exited execs it had seen go; the others exited
    /// are marked to go at the next round.
    pub fn collect(&mut self) -> usize {
        let before = self.records.len();
        self.records.retain(|_, r| !r.can_remove);
        for r in self.records.values_mut() {
            if !r.live() {
                r.can_remove = true;
            }
        }
        before - self.records.len()
    }

    fn get_mut(&mut self, id: &str) -> Result<&mut ExecRecord, StoreError> {
        self.records
            .get_mut(id)
            .ok_or_else(|| StoreError::ExecNotFound { id: id.to_owned() })
    }
}

/// The environment of an exec (dockerd's `CreateDaemonEnvironment` with the exec's own
/// over it): `PATH`, `HOSTNAME` and, with a tty, `TERM=xterm`; then the container's
/// `Env`; then the exec's. A later value replaces an earlier one in place; a bare `NAME`
/// removes it.
pub fn exec_env(c: &Container, tty: bool, own: &[String]) -> Vec<String> {
    let mut env = vec![
        super::create::DEFAULT_PATH.to_owned(),
        format!("HOSTNAME={}", c.config.hostname.as_deref().unwrap_or("")),
    ];
    if tty {
        env.push("TERM=xterm".to_owned());
    }
    let env = replace_or_append(env, c.config.env.as_deref().unwrap_or(&[]));
    replace_or_append(env, own)
}

/// dockerd's `ReplaceOrAppendEnvValues`.
pub fn replace_or_append(mut defaults: Vec<String>, overrides: &[String]) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or("").to_owned();
    let mut unset = Vec::new();
    for o in overrides {
        if !o.contains('=') {
            unset.push(o.clone());
            continue;
        }
        let k = key(o);
        match defaults.iter_mut().find(|d| key(d) == k) {
            Some(d) => *d = o.clone(),
            None => defaults.push(o.clone()),
        }
    }
    defaults.retain(|d| !unset.iter().any(|u| *u == key(d)));
    defaults
}

/// The exit code of an exec whose start failed: dockerd's rule (its
/// `translateContainerdStartErr`, and 126 for any other start error): 127 for a command
/// not found, 126 for one that cannot be run (permission denied).
pub fn start_failure_code(message: &str) -> i32 {
    let m = message.to_lowercase();
    let mut code = 126;
    if m.contains("executable file not found")
        || m.contains("no such file or directory")
        || m.contains("not a directory")
    {
        code = 127;
    }
    if m.contains("permission denied") {
        code = 126;
    }
    code
}

impl ContainerStoreActor {
    /// The container of an exec must be running, and neither paused nor restarting
    /// (dockerd's `getActiveContainer`; `name` is how the request named it).
    fn check_active(c: &Container, name: &str) -> Result<(), StoreError> {
        let id = c.id.clone();
        match c.state.status {
            Status::Paused => Err(StoreError::ExecPaused {
                id: name.to_owned(),
            }),
            Status::Restarting => Err(StoreError::ExecRestarting { id }),
            Status::Running => Ok(()),
            _ => Err(StoreError::ExecContainerNotRunning { id }),
        }
    }

    /// Starts the collector's rounds, once.
    fn arm_exec_gc(&mut self, ctx: &mut Context<Self>) {
        if self.execs.gc_armed {
            return;
        }
        self.execs.gc_armed = true;
        ctx.run_interval(EXEC_GC_EVERY, |act, _| {
            let n = act.execs.collect();
            if n > 0 {
                tracing::debug!(cleaned = n, "exec records collected");
            }
        });
    }

    /// The records of a container removed: see [`ExecTable::container_removed`].
    pub(super) fn execs_container_removed(&mut self, id: &str) {
        self.execs.container_removed(id);
    }

    /// `ExecIDs` for `docker inspect`.
    pub(super) fn exec_ids(&self, id: &str) -> Option<Vec<String>> {
        self.execs.ids_of(id)
    }
}

impl Handler<CreateExec> for ContainerStoreActor {
    type Result = Result<String, StoreError>;
    fn handle(&mut self, msg: CreateExec, ctx: &mut Self::Context) -> Self::Result {
        let entry = self.entry(&msg.container)?;
        if entry.removing {
            return Err(StoreError::ExecContainerNotRunning {
                id: entry.c.id.clone(),
            });
        }
        Self::check_active(&entry.c, &msg.container)?;
        let id = crate::util::new_id();
        let record = ExecRecord::new(id.clone(), &entry.c, &msg.request);
        tracing::debug!(container_id = %record.container_id, exec_id = %id, "exec created");
        entry.c.event(
            &format!("exec_create: {}", record.command_line()),
            [("execID", id.clone())],
        );
        self.execs.records.insert(id.clone(), record);
        self.arm_exec_gc(ctx);
        // Its start follows within milliseconds (docker exec).
        self.peers.exec.do_send(PrepareExec);
        Ok(id)
    }
}

impl Handler<StartExec> for ContainerStoreActor {
    type Result = Fut<Result<ExecStarted, StoreError>>;
    fn handle(&mut self, msg: StartExec, _: &mut Self::Context) -> Self::Result {
        let checked = (|| {
            let r = self
                .execs
                .records
                .get(&msg.id)
                .ok_or_else(|| StoreError::ExecNotFound { id: msg.id.clone() })?;
            let c = self
                .containers
                .get(&r.container_id)
                .ok_or_else(|| StoreError::ExecNotFound { id: msg.id.clone() })?;
            Self::check_active(&c.c, &c.c.id)?;
            match r.run {
                ExecRun::Created => Ok(()),
                ExecRun::Exited { .. } => Err(StoreError::ExecRan { id: msg.id.clone() }),
                ExecRun::Starting | ExecRun::Running { .. } => {
                    Err(StoreError::ExecRunning { id: msg.id.clone() })
                }
            }
        })();
        if let Err(e) = checked {
            return ready(Err(e));
        }
        let record = match self.execs.get_mut(&msg.id) {
            Ok(r) => r,
            Err(e) => return ready(Err(e)),
        };
        record.run = ExecRun::Starting;
        let action = format!("exec_start: {}", record.command_line());
        if let Some(e) = self.containers.get(&record.container_id) {
            e.c.event(&action, [("execID", msg.id.clone())]);
        }
        let Ok(record) = self.execs.get_mut(&msg.id) else {
            return ready(Err(StoreError::ExecNotFound { id: msg.id }));
        };
        let (tx, exited) = oneshot::channel();
        record.waiters.push(tx);
        let spec = record.spec(msg.detach, msg.raw_stream, msg.console_size);
        let container_id = record.container_id.clone();
        let exec = self.peers.exec.clone();
        let id = msg.id;
        let work = async move {
            exec.send(RunExec { container_id, spec })
                .await
                .map_err(StoreError::mailbox("exec"))?
                .map_err(StoreError::from)
        };
        Box::pin(
            actix::fut::wrap_future::<_, Self>(work).map(move |res, act, _| {
                let record = act.execs.records.get_mut(&id);
                match res {
                    Ok(running) => {
                        if let Some(r) = record {
                            // An exit reported before this reply was applied already.
                            if r.run == ExecRun::Starting {
                                r.run = ExecRun::Running { pid: running.pid };
                            } else if let ExecRun::Exited { code, .. } = r.run {
                                r.run = ExecRun::Exited {
                                    pid: running.pid,
                                    code,
                                };
                            }
                        }
                        tracing::debug!(exec_id = %id, pid = running.pid, "exec started");
                        Ok(ExecStarted {
                            stream: running.stream,
                            exited,
                        })
                    }
                    Err(e) => {
                        let code = match &e {
                            StoreError::Exec(ExecError::StartFailed { message, .. }) => {
                                start_failure_code(message)
                            }
                            _ => 126,
                        };
                        if let Some(r) = record {
                            r.set_exited(code);
                        }
                        Err(e)
                    }
                }
            }),
        )
    }
}

impl Handler<InspectExec> for ContainerStoreActor {
    type Result = Result<ExecInspectResponse, StoreError>;
    fn handle(&mut self, msg: InspectExec, _: &mut Self::Context) -> Self::Result {
        let r = self
            .execs
            .records
            .get(&msg.id)
            .ok_or(StoreError::ExecNotFound { id: msg.id })?;
        Ok(r.inspect())
    }
}

impl Handler<ResizeExec> for ContainerStoreActor {
    type Result = Fut<Result<(), StoreError>>;
    fn handle(&mut self, msg: ResizeExec, _: &mut Self::Context) -> Self::Result {
        let checked = (|| {
            let r = self
                .execs
                .records
                .get(&msg.id)
                .ok_or_else(|| StoreError::ExecNotFound { id: msg.id.clone() })?;
            let c = self
                .containers
                .get(&r.container_id)
                .ok_or_else(|| StoreError::ExecNotFound { id: msg.id.clone() })?;
            Self::check_active(&c.c, &c.c.id)?;
            match r.run {
                ExecRun::Running { .. } => Ok(r.container_id.clone()),
                _ => Err(StoreError::ExecNotRunning { id: msg.id.clone() }),
            }
        })();
        let container_id = match checked {
            Ok(c) => c,
            Err(e) => return ready(Err(e)),
        };
        let exec = self.peers.exec.clone();
        Box::pin(actix::fut::wrap_future(async move {
            exec.send(ResizeExecTty {
                container_id,
                exec_id: msg.id,
                height: msg.height,
                width: msg.width,
            })
            .await
            .map_err(StoreError::mailbox("exec"))?
            .map_err(StoreError::from)
        }))
    }
}

impl Handler<ExecEvent> for ContainerStoreActor {
    type Result = ();
    fn handle(&mut self, msg: ExecEvent, ctx: &mut Self::Context) {
        match msg {
            ExecEvent::Exited {
                container_id,
                exec_id,
                exit_code,
            } => {
                if let Some(tx) = self.probe_exits.remove(&exec_id) {
                    // A health probe's: its round takes it from here.
                    let _ = tx.send(exit_code);
                    return;
                }
                if let Some(r) = self.execs.records.get_mut(&exec_id) {
                    if r.container_id == container_id {
                        tracing::debug!(exec_id = %exec_id, exit_code, "exec exited");
                        r.set_exited(exit_code);
                        if let Some(e) = self.containers.get(&container_id) {
                            e.c.event(
                                "exec_die",
                                [
                                    ("execID", exec_id.clone()),
                                    ("exitCode", exit_code.to_string()),
                                ],
                            );
                        }
                    }
                }
            }
            ExecEvent::Restored {
                container_id,
                execs,
            } => {
                for st in execs {
                    tracing::info!(container_id = %container_id, exec_id = %st.id, running = st.exit_code.is_none(), "exec restored");
                    self.execs
                        .records
                        .entry(st.id.clone())
                        .or_insert_with(|| ExecRecord::restored(&container_id, st));
                }
                self.arm_exec_gc(ctx);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::api::{ContainerConfig, ExecConfig};

    fn list(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| (*s).to_owned()).collect()
    }

    fn container(env: &[&str], user: &str, wd: &str) -> Container {
        let json = serde_json::json!({
            "id": "c".repeat(64), "name": "/c", "created": "2026-01-01T00:00:00Z",
            "path": "sleep", "args": ["100"], "config": {}, "image": "sha256:x",
            "state": {"status": "running", "pid": 1, "exit_code": 0, "error": "",
                "oom_killed": false, "started_at": null, "finished_at": null},
            "rootfs": {"fstype": "bind", "source": "/", "options": "", "target": "/"},
            "driver": "vfs", "network": "None", "restart_count": 0
        });
        let mut c: Container = serde_json::from_value(json).unwrap();
        c.config = ContainerConfig {
            hostname: Some("abc".into()),
            env: Some(list(env)),
            user: Some(user.into()),
            working_dir: Some(wd.into()),
            ..Default::default()
        };
        c
    }

    #[test]
    fn env_is_dockerds_merge() {
        let c = container(&["PATH=/bin", "A=1", "B=2"], "", "");
        assert_eq!(
            exec_env(&c, false, &list(&["A=3", "C=4", "B"])),
            list(&["PATH=/bin", "HOSTNAME=abc", "A=3", "C=4"])
        );
        assert_eq!(
            exec_env(&c, true, &[]),
            list(&["PATH=/bin", "HOSTNAME=abc", "TERM=xterm", "A=1", "B=2"])
        );
        let bare = container(&[], "", "");
        assert_eq!(
            exec_env(&bare, false, &[]),
            list(&[super::super::create::DEFAULT_PATH, "HOSTNAME=abc"])
        );
    }

    #[test]
    fn user_and_workdir_default_to_the_containers() {
        let c = container(&[], "nobody", "/srv");
        let req = |user: &str, wd: &str| ExecCreate {
            config: ExecConfig {
                cmd: Some(list(&["ls", "-l"])),
                user: Some(user.into()),
                working_dir: Some(wd.into()),
                ..Default::default()
            },
            console_size: None,
        };
        let r = ExecRecord::new("e".into(), &c, &req("", ""));
        assert_eq!((r.user.as_str(), r.cwd.as_str()), ("nobody", "/srv"));
        assert_eq!(r.entrypoint, "ls");
        assert_eq!(r.arguments, list(&["-l"]));
        let r = ExecRecord::new("e".into(), &c, &req("1000:1000", "/tmp"));
        assert_eq!((r.user.as_str(), r.cwd.as_str()), ("1000:1000", "/tmp"));
        let s = r.spec(false, true, Some((24, 80)));
        assert_eq!(s.args, list(&["ls", "-l"]));
        assert_eq!(s.console_size, (24, 80));
        assert!(s.raw_stream);
    }

    #[test]
    fn inspect_is_dockerds_shape() {
        let c = container(&[], "", "");
        let req = ExecCreate {
            config: ExecConfig {
                cmd: Some(list(&["echo", "hi"])),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
            console_size: None,
        };
        let mut r = ExecRecord::new("e1".into(), &c, &req);
        let v = serde_json::to_value(r.inspect()).unwrap();
        assert_eq!(v["Running"], false);
        assert!(v.get("ExitCode").is_none());
        assert_eq!(
            v["ProcessConfig"],
            serde_json::json!({"tty": false, "entrypoint": "echo", "arguments": ["hi"],
                "privileged": false})
        );
        r.run = ExecRun::Running { pid: 42 };
        r.set_exited(3);
        let v = serde_json::to_value(r.inspect()).unwrap();
        assert_eq!(
            (v["ExitCode"].clone(), v["Pid"].clone()),
            (3.into(), 42.into())
        );
        assert_eq!(v["OpenStdout"], true);
        assert_eq!(v["OpenStdin"], false);
        assert_eq!(v["DetachKeys"], "");
    }

    #[test]
    fn records_live_and_go_as_dockerds() {
        let c = container(&[], "", "");
        let req = ExecCreate {
            config: ExecConfig {
                cmd: Some(list(&["true"])),
                ..Default::default()
            },
            console_size: None,
        };
        let mut t = ExecTable::default();
        for id in ["a", "b", "c"] {
            t.records
                .insert(id.into(), ExecRecord::new(id.into(), &c, &req));
        }
        let (tx, mut rx) = oneshot::channel();
        t.records.get_mut("a").unwrap().waiters.push(tx);
        t.records.get_mut("a").unwrap().set_exited(0);
        assert!(rx.try_recv().is_ok());
        let mut ids = t.ids_of(&c.id).unwrap();
        ids.sort();
        assert_eq!(ids, list(&["b", "c"]));
        // The collector: marked at one round, gone at the next.
        assert_eq!(t.collect(), 0);
        assert!(t.records["a"].can_remove);
        assert_eq!(t.collect(), 1);
        // The container stops: the execs not exited go with it.
        let (tx, mut rx) = oneshot::channel();
        t.records.get_mut("b").unwrap().waiters.push(tx);
        t.container_exited(&c.id);
        assert!(t.records.is_empty());
        assert!(rx.try_recv().is_err());
        assert_eq!(t.ids_of(&c.id), None);
    }

    #[test]
    fn failure_codes_are_dockerds() {
        assert_eq!(
            start_failure_code("exec: \"nosuch\": executable file not found in $PATH"),
            127
        );
        assert_eq!(
            start_failure_code("exec: \"/x\": stat /x: no such file or directory"),
            127
        );
        assert_eq!(
            start_failure_code("exec: \"/etc/passwd\": permission denied"),
            126
        );
        assert_eq!(
            start_failure_code("unable to find user nobody2: no matching entries in passwd file"),
            126
        );
    }

    #[test]
    fn replace_or_append_keeps_order() {
        assert_eq!(
            replace_or_append(list(&["A=1", "B=2", "C=3"]), &list(&["B=x", "A", "D=4"])),
            list(&["B=x", "C=3", "D=4"])
        );
    }
}
