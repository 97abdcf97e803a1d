//! Health checks (`HEALTHCHECK`, `--health-*`), as dockerd's `daemon/health.go` runs them.
//!
//! A running container with a check (`Config.Healthcheck`, merged with its image's at
//! create; `["NONE"]` is none) has one actix timer (`run_later`, its handle in the entry)
//! and nothing else: no thread or loop runs for health while no container has a check.
//! Each round: the probe runs as an exec through the container's monitor (the `docker
//! exec` path: ExecActor's `RunExec`, raw stdout and stderr on one stream), `CMD` as
//! given, `CMD-SHELL` through `/bin/sh -c` (or `Config.Shell`); its output (the first
//! 4096 bytes, then `...`) is read on a blocking thread until the stream ends or the
//! timeout passes, when the probe is killed (SIGKILL) and counts as a failure with exit
//! -1 and "Health check exceeded timeout (Xs)". The exit code comes back from the monitor
//! as for any exec ([`crate::actors::exec::ExecEvent::Exited`], matched by the probe's
//! exec id). The result is applied as dockerd's `handleProbeResult`: the last five results
//! kept, 0 is healthy, anything else a failure that counts (after the start period) toward
//! `retries`, a change of status published as `health_status: <status>`. Then the next
//! round is timed, an interval after this one ended.
//!
//! The check starts (status `starting`) at each start of the container and at Init for a
//! container still running; it stops at the exit (status `unhealthy`, as dockerd's
//! `CloseMonitorChannel`), and a generation number drops the result of a probe that
//! outlived its round's container run.

use std::io::Read;
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use tokio::sync::oneshot;

use super::state::{Container, Health, HealthResult, HealthStatus, Status};
use super::{ContainerStoreActor, StoreError};
use crate::actors::exec::RunExec;
use crate::monitor::proto::ExecSpec;

/// dockerd's defaults (`defaultProbeInterval`, `defaultProbeTimeout`,
/// `defaultProbeRetries`, `defaultStartPeriod`).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: i64 = 3;
/// dockerd's `maxOutputLen` and `maxLogEntries`.
const MAX_OUTPUT: usize = 4096;
const MAX_LOG: usize = 5;

/// A container's check, with dockerd's defaults for what it leaves unset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub argv: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: i64,
    pub start_period: Duration,
}

fn nanos_or(v: Option<i64>, default: Duration) -> Duration {
    match v.and_then(|v| u64::try_from(v).ok()).filter(|v| *v > 0) {
        Some(ns) => Duration::from_nanos(ns),
        None => default,
    }
}

/// The check of `c` (dockerd's `getProbe`): none without one, for `NONE`, or for a test
/// of another kind.
pub fn probe_of(c: &Container) -> Option<Probe> {
    let hc = c.config.healthcheck.as_ref()?;
    let test = hc.test.as_deref().unwrap_or_default();
    let (kind, rest) = test.split_first()?;
    let argv: Vec<String> = match kind.as_str() {
        "CMD" => rest.to_vec(),
        "CMD-SHELL" => {
            let mut shell = c
                .config
                .shell
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            shell.extend(rest.iter().cloned());
            shell
        }
        _ => return None,
    };
    if argv.is_empty() {
        return None;
    }
    Some(Probe {
        argv,
        interval: nanos_or(hc.interval, DEFAULT_INTERVAL),
        timeout: nanos_or(hc.timeout, DEFAULT_TIMEOUT),
        retries: hc.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES),
        start_period: nanos_or(hc.start_period, Duration::ZERO),
    })
}

/// dockerd's `handleProbeResult` on `health`: returns whether the status changed.
pub fn apply_result(
    health: &mut Health,
    result: HealthResult,
    probe: &Probe,
    started_at: Option<chrono::DateTime<Utc>>,
) -> bool {
    let old = health.status;
    let healthy = result.exit_code == 0;
    let since_start = started_at
        .and_then(|s| (result.start - s).to_std().ok())
        .unwrap_or_default();
    if health.log.len() >= MAX_LOG {
        health.log.drain(..=health.log.len() - MAX_LOG);
    }
    health.log.push(result);
    if healthy {
        health.failing_streak = 0;
        health.status = HealthStatus::Healthy;
    } else if !(health.status == HealthStatus::Starting && since_start < probe.start_period) {
        health.failing_streak += 1;
        if health.failing_streak >= probe.retries {
            health.status = HealthStatus::Unhealthy;
        }
    }
    health.status != old
}

/// What a probe's exec gave: its exit code and output, or the error that kept it from
/// running.
struct Outcome {
    exit_code: i64,
    output: String,
}

/// Reads a probe's stream to its end, or until `deadline`: the output (at most
/// [`MAX_OUTPUT`] bytes, then `...`) and whether it ended in time.
fn read_output(
    mut stream: std::os::unix::net::UnixStream,
    deadline: std::time::Instant,
) -> (String, bool) {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return (String::new(), false);
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (String::new(), false);
            }
            Err(_) => break,
        }
    }
    let mut out = String::from_utf8_lossy(&kept).into_owned();
    if truncated {
        out.push_str("...");
    }
    (out, true)
}

impl ContainerStoreActor {
    /// At a start of `id` (or at Init for one still running): `starting`, and the first
    /// round timed an interval from now. Nothing for a container without a check.
    pub(super) fn start_health(&mut self, id: &str, ctx: &mut Context<Self>) {
        let Some(entry) = self.containers.get_mut(id) else {
            return;
        };
        if let Some(h) = entry.health_timer.take() {
            ctx.cancel_future(h);
        }
        entry.health_gen += 1;
        let Some(probe) = probe_of(&entry.c) else {
            return;
        };
        match entry.c.state.health.as_mut() {
            Some(h) => {
                h.status = HealthStatus::Starting;
                h.failing_streak = 0;
            }
            None => {
                entry.c.state.health = Some(Health {
                    status: HealthStatus::Starting,
                    failing_streak: 0,
                    log: Vec::new(),
                });
            }
        }
        let run = entry.health_gen;
        let id = id.to_owned();
        entry.health_timer = Some(ctx.run_later(probe.interval, move |act, ctx| {
            act.run_probe(id, run, ctx);
        }));
    }

    /// At the exit of `id`: no more rounds, and `unhealthy` (dockerd's
    /// `CloseMonitorChannel`, without an event).
    pub(super) fn stop_health(&mut self, id: &str, ctx: &mut Context<Self>) {
        let Some(entry) = self.containers.get_mut(id) else {
            return;
        };
        if let Some(h) = entry.health_timer.take() {
            ctx.cancel_future(h);
        }
        entry.health_gen += 1;
        if let Some(h) = entry.c.state.health.as_mut() {
            h.status = HealthStatus::Unhealthy;
        }
    }

    /// One round of `id`'s check, if the container's run `run` is still the current one.
    fn run_probe(&mut self, id: String, run: u64, ctx: &mut Context<Self>) {
        let Some(entry) = self.containers.get_mut(&id) else {
            return;
        };
        if entry.health_gen != run {
            return;
        }
        entry.health_timer = None;
        let Some(probe) = probe_of(&entry.c) else {
            return;
        };
        if entry.c.state.status != Status::Running {
            // Paused: no exec can run; the next round will tell.
            self.next_round(&id, run, probe.interval, ctx);
            return;
        }
        let c = &entry.c;
        let exec_id = crate::util::new_id();
        let spec = ExecSpec {
            id: exec_id.clone(),
            args: probe.argv.clone(),
            env: super::exec::exec_env(c, false, &[]),
            cwd: c.config.working_dir.clone().unwrap_or_default(),
            user: c.config.user.clone().unwrap_or_default(),
            privileged: false,
            tty: false,
            stdin: false,
            stdout: true,
            stderr: true,
            detach: false,
            raw_stream: true,
            console_size: (0, 0),
        };
        // dockerd logs each probe as an exec.
        let line = probe.argv.join(" ");
        c.event(
            &format!("exec_create: {line}"),
            [("execID", exec_id.clone())],
        );
        c.event(
            &format!("exec_start: {line}"),
            [("execID", exec_id.clone())],
        );
        let (tx, rx) = oneshot::channel();
        self.probe_exits.insert(exec_id.clone(), tx);
        let exec = self.peers.exec.clone();
        let timeout = probe.timeout;
        let container_id = id.clone();
        let work = async move {
            let start = Utc::now();
            let deadline = std::time::Instant::now() + timeout;
            let running = exec
                .send(RunExec { container_id, spec })
                .await
                .map_err(StoreError::mailbox("exec"))
                .and_then(|r| r.map_err(StoreError::from));
            let outcome = match running {
                Err(e) => Outcome {
                    exit_code: -1,
                    output: e.to_string(),
                },
                Ok(running) => {
                    let pid = running.pid;
                    let (output, in_time) = match running.stream {
                        Some(s) => tokio::task::spawn_blocking(move || read_output(s, deadline))
                            .await
                            .unwrap_or((String::new(), false)),
                        None => (String::new(), true),
                    };
                    if in_time {
                        let code = tokio::time::timeout(Duration::from_secs(10), rx)
                            .await
                            .ok()
                            .and_then(Result::ok)
                            .unwrap_or(-1);
                        Outcome {
                            exit_code: i64::from(code),
                            output,
                        }
                    } else {
                        // dockerd cancels the probe: killed, and a failure.
                        let _ = crate::sys::process::kill(pid, libc::SIGKILL);
                        let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
                        Outcome {
                            exit_code: -1,
                            output: format!(
                                "Health check exceeded timeout ({})",
                                crate::util::go_duration(timeout)
                            ),
                        }
                    }
                }
            };
            HealthResult {
                start,
                end: Utc::now(),
                exit_code: outcome.exit_code,
                output: outcome.output,
            }
        };
        ctx.spawn(
            actix::fut::wrap_future::<_, Self>(work).map(move |result, act, ctx| {
                act.probe_exits.remove(&exec_id);
                act.probe_done(&id, run, &exec_id, result, ctx);
            }),
        );
    }

    /// A round's result: applied if the container's run is still `run`; the next round
    /// timed.
    fn probe_done(
        &mut self,
        id: &str,
        run: u64,
        exec_id: &str,
        result: HealthResult,
        ctx: &mut Context<Self>,
    ) {
        let Some(entry) = self.containers.get_mut(id) else {
            return;
        };
        if entry.health_gen != run || !entry.c.state.is_running() {
            return;
        }
        let Some(probe) = probe_of(&entry.c) else {
            return;
        };
        let started_at = entry.c.state.started_at;
        let Some(health) = entry.c.state.health.as_mut() else {
            return;
        };
        let exit_code = result.exit_code;
        if apply_result(health, result, &probe, started_at) {
            let status = health.status.as_str();
            tracing::info!(container_id = %id, status, "health status changed");
            entry.c.event(&format!("health_status: {status}"), []);
        }
        let c = &entry.c;
        c.event(
            "exec_die",
            [
                ("execID", exec_id.to_owned()),
                ("exitCode", exit_code.to_string()),
            ],
        );
        let c = c.clone();
        self.save_state(&c);
        self.next_round(id, run, probe.interval, ctx);
    }

    fn next_round(&mut self, id: &str, run: u64, interval: Duration, ctx: &mut Context<Self>) {
        let Some(entry) = self.containers.get_mut(id) else {
            return;
        };
        let id = id.to_owned();
        let handle = ctx.run_later(interval, move |act, ctx| act.run_probe(id, run, ctx));
        if let Some(old) = entry.health_timer.replace(handle) {
            ctx.cancel_future(old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(retries: i64, start_period: Duration) -> Probe {
        Probe {
            argv: vec!["true".into()],
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            retries,
            start_period,
        }
    }

    fn result(code: i64) -> HealthResult {
        HealthResult {
            start: Utc::now(),
            end: Utc::now(),
            exit_code: code,
            output: String::new(),
        }
    }

    fn starting() -> Health {
        Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: Vec::new(),
        }
    }

    #[test]
    fn results_move_the_status_as_dockerd() {
        let p = probe(2, Duration::ZERO);
        let mut h = starting();
        assert!(!apply_result(&mut h, result(1), &p, Some(Utc::now())));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 1));
        assert!(apply_result(&mut h, result(1), &p, Some(Utc::now())));
        assert_eq!(h.status, HealthStatus::Unhealthy);
        assert!(apply_result(&mut h, result(0), &p, Some(Utc::now())));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
        for _ in 0..10 {
            apply_result(&mut h, result(0), &p, Some(Utc::now()));
        }
        assert_eq!(h.log.len(), MAX_LOG);
        // Within the start period a failure does not count.
        let p = probe(1, Duration::from_secs(60));
        let mut h = starting();
        assert!(!apply_result(&mut h, result(1), &p, Some(Utc::now())));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
    }

    #[test]
    fn probes_and_defaults() {
        let json = serde_json::json!({
            "id": "c".repeat(64), "name": "/c", "created": "2026-01-01T00:00:00Z",
            "path": "sleep", "args": ["100"], "config": {
                "Healthcheck": {"Test": ["CMD-SHELL", "exit 1"], "Interval": 200_000_000}
            }, "image": "sha256:x",
            "state": {"status": "running", "pid": 1, "exit_code": 0, "error": "",
                "oom_killed": false, "started_at": null, "finished_at": null},
            "rootfs": {"fstype": "bind", "source": "/", "options": "", "target": "/"},
            "driver": "vfs", "network": "None", "restart_count": 0
        });
        let mut c: Container = serde_json::from_value(json).unwrap();
        let p = probe_of(&c).unwrap();
        assert_eq!(p.argv, vec!["/bin/sh", "-c", "exit 1"]);
        assert_eq!(p.interval, Duration::from_millis(200));
        assert_eq!((p.timeout, p.retries), (DEFAULT_TIMEOUT, 3));
        c.config.healthcheck.as_mut().unwrap().test = Some(vec!["NONE".into()]);
        assert!(probe_of(&c).is_none());
    }
}
