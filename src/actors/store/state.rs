//! The container record and its state machine, as plain data and functions.

use super::error::StoreError;
use crate::model::api::{ContainerConfig, HostConfig};
use crate::monitor::spec::{NetworkSpec, RootfsSpec};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The lifecycle states Docker reports (`State.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

/// A health check's verdict (`State.Health.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One probe's result (`State.Health.Log[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthResult {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub exit_code: i64,
    pub output: String,
}

/// `State.Health` of a container with a health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: i64,
    /// The last five results, oldest first.
    pub log: Vec<HealthResult>,
}

/// A container's runtime state, persisted with its record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub oom_killed: bool,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Its health check's state, once it has run with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

impl State {
    pub fn new() -> Self {
        State {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            oom_killed: false,
            started_at: None,
            finished_at: None,
            health: None,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(
            self.status,
            Status::Running | Status::Paused | Status::Restarting
        )
    }

    /// Whether a start may proceed: `AlreadyRunning` (304) when running, `Paused` (409).
    pub fn can_start(&self, id: &str) -> Result<(), StoreError> {
        match self.status {
            Status::Running | Status::Restarting => {
                Err(StoreError::AlreadyRunning { id: id.into() })
            }
            Status::Paused => Err(StoreError::Paused { id: id.into() }),
            Status::Removing => Err(StoreError::RemovalInProgress { id: id.into() }),
            Status::Created | Status::Exited | Status::Dead => Ok(()),
        }
    }

    pub fn set_running(&mut self, pid: i32, at: DateTime<Utc>) {
        self.status = Status::Running;
        self.pid = pid;
        self.exit_code = 0;
        self.error.clear();
        self.oom_killed = false;
        self.started_at = Some(at);
    }

    pub fn set_exited(&mut self, code: i32, at: DateTime<Utc>, oom: bool) {
        self.status = Status::Exited;
        self.pid = 0;
        self.exit_code = code;
        self.oom_killed = oom;
        self.finished_at = Some(at);
    }

    /// `State` as `docker inspect` shows it (`status` overrides the record's, for a
    /// container being removed).
    pub fn to_model(&self, status: Status) -> crate::model::api::ContainerState {
        use crate::model::api::ContainerStateStatusEnum as S;
        let status_enum = match status {
            Status::Created => S::CREATED,
            Status::Running => S::RUNNING,
            Status::Paused => S::PAUSED,
            Status::Restarting => S::RESTARTING,
            Status::Removing => S::REMOVING,
            Status::Exited => S::EXITED,
            Status::Dead => S::DEAD,
        };
        crate::model::api::ContainerState {
            status: Some(status_enum),
            running: Some(self.is_running()),
            paused: Some(self.status == Status::Paused),
            restarting: Some(self.status == Status::Restarting),
            oom_killed: Some(self.oom_killed),
            dead: Some(self.status == Status::Dead),
            pid: Some(i64::from(self.pid)),
            exit_code: Some(i64::from(self.exit_code)),
            error: Some(self.error.clone()),
            started_at: Some(docker_time(self.started_at)),
            finished_at: Some(docker_time(self.finished_at)),
            health: self.health.as_ref().map(|h| crate::model::api::Health {
                status: Some(match h.status {
                    HealthStatus::Starting => crate::model::api::HealthStatusEnum::STARTING,
                    HealthStatus::Healthy => crate::model::api::HealthStatusEnum::HEALTHY,
                    HealthStatus::Unhealthy => crate::model::api::HealthStatusEnum::UNHEALTHY,
                }),
                failing_streak: Some(h.failing_streak),
                log: Some(
                    h.log
                        .iter()
                        .map(|r| crate::model::api::HealthcheckResult {
                            start: Some(r.start),
                            end: Some(r.end),
                            exit_code: Some(r.exit_code),
                            output: Some(r.output.clone()),
                        })
                        .collect(),
                ),
            }),
        }
    }

    /// The health filter's and the `Status` column's word: `none` without a check.
    pub fn health_str(&self) -> &'static str {
        self.health.as_ref().map_or("none", |h| h.status.as_str())
    }

    /// The `Status` column of `docker ps`: `Up 2 minutes`, `Exited (0) 31 seconds ago`, …
    pub fn status_text(&self, now: DateTime<Utc>) -> String {
        match self.status {
            Status::Created => "Created".to_owned(),
            Status::Running | Status::Paused | Status::Restarting => {
                let up = human_duration(since(self.started_at, now));
                match self.status {
                    Status::Paused => format!("Up {up} (Paused)"),
                    Status::Restarting => format!(
                        "Restarting ({}) {} ago",
                        self.exit_code,
                        human_duration(since(self.finished_at, now))
                    ),
                    _ => match self.health.as_ref().map(|h| h.status) {
                        Some(HealthStatus::Starting) => format!("Up {up} (health: starting)"),
                        Some(h) => format!("Up {up} ({})", h.as_str()),
                        None => format!("Up {up}"),
                    },
                }
            }
            Status::Removing => "Removal In Progress".to_owned(),
            Status::Exited => {
                if self.finished_at.is_none() {
                    return format!("Exited ({})", self.exit_code);
                }
                format!(
                    "Exited ({}) {} ago",
                    self.exit_code,
                    human_duration(since(self.finished_at, now))
                )
            }
            Status::Dead => "Dead".to_owned(),
        }
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

fn since(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> chrono::Duration {
    t.map(|t| now - t).unwrap_or_else(chrono::Duration::zero)
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs < 1 {
        return "Less than a second".to_owned();
    }
    if secs == 1 {
        return "1 second".to_owned();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let mins = d.num_minutes();
    if mins == 1 {
        return "About a minute".to_owned();
    }
    if mins < 60 {
        return format!("{mins} minutes");
    }
    let hours = d.num_hours();
    if hours == 1 {
        return "About an hour".to_owned();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", hours / 24 / 365)
}

/// RFC 3339 with nanoseconds, and Go's zero time for "never".
pub fn docker_time(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        None => "0001-01-01T00:00:00Z".to_owned(),
    }
}

/// One container, as persisted in `containers/<id>/config.v2.json` (and its HostConfig in
/// `hostconfig.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    /// With the leading `/`.
    pub name: String,
    pub created: DateTime<Utc>,
    pub path: String,
    pub args: Vec<String>,
    /// Docker's `Config`, with dockerd's zero values filled in (`model::create`).
    pub config: ContainerConfig,
    /// Docker's `HostConfig`, validated and with the daemon's defaults. Persisted in
    /// hostconfig.json.
    #[serde(skip)]
    pub host_config: HostConfig,
    /// `sha256:<id>`.
    pub image: String,
    pub state: State,
    pub rootfs: RootfsSpec,
    pub driver: String,
    pub network: NetworkSpec,
    pub restart_count: i64,
    /// Stopped or killed by a user since its last start (dockerd's
    /// `HasBeenManuallyStopped`): an `unless-stopped` container then stays stopped, also
    /// across a restart of berthd.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub has_been_manually_stopped: bool,
    /// Its binds, volumes and tmpfs mounts (`HostConfig.Tmpfs` aside), worked out at
    /// create (`mounts::plan`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_points: Vec<super::mounts::MountPoint>,
    /// The bridge endpoint while the container runs on the bridge network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<crate::actors::network::Endpoint>,
    /// The user-defined networks it is on, with what it asked of each (`--network NAME`
    /// and `docker network connect`), in the order joined; its `NetworkMode`'s first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<crate::actors::network::Attachment>,
    /// Its endpoints besides `endpoint` (eth1, ...), while it runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_endpoints: Vec<crate::actors::network::Endpoint>,
}

impl Container {
    /// Publishes a container event about it (`docker events`): its labels, `image` and
    /// `name` as attributes, then `extra`.
    pub fn event<'a>(&self, action: &str, extra: impl IntoIterator<Item = (&'a str, String)>) {
        crate::events::events().container(
            action,
            &self.id,
            &self.name,
            self.config.image.as_deref().unwrap_or(""),
            self.config.labels.as_ref(),
            extra,
        );
    }

    /// Its mount points; for a record from before they were kept, its host binds (then
    /// the only mounts a container could have).
    pub fn mounts(&self) -> std::borrow::Cow<'_, [super::mounts::MountPoint]> {
        if !self.mount_points.is_empty() {
            return std::borrow::Cow::Borrowed(&self.mount_points);
        }
        let binds = self.host_config.binds.as_deref().unwrap_or_default();
        match super::mounts::plan_binds_only(binds) {
            Some(points) => std::borrow::Cow::Owned(points),
            None => std::borrow::Cow::Borrowed(&[]),
        }
    }

    pub fn tty(&self) -> bool {
        self.config.tty.unwrap_or(false)
    }

    pub fn auto_remove(&self) -> bool {
        self.host_config.auto_remove.unwrap_or(false)
    }

    pub fn network_mode(&self) -> &str {
        self.host_config
            .network_mode
            .as_deref()
            .filter(|m| !m.is_empty())
            .unwrap_or("default")
    }

    /// The `Command` column: path and args joined by spaces.
    pub fn command_line(&self) -> String {
        let mut s = self.path.clone();
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    pub fn labels(&self) -> std::collections::HashMap<String, String> {
        self.config.labels.clone().unwrap_or_default()
    }

    /// The image as the create named it (`Config.Image`).
    pub fn image_ref(&self) -> &str {
        self.config.image.as_deref().unwrap_or("")
    }
}

/// Checks a requested name against Docker's rule `^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$` and
/// returns it with its leading `/`.
pub fn validate_name(name: &str) -> Result<String, StoreError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let mut chars = bare.chars();
    let ok = match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {
            let rest: Vec<char> = chars.collect();
            !rest.is_empty()
                && rest
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        }
        _ => false,
    };
    if ok {
        Ok(format!("/{bare}"))
    } else {
        Err(StoreError::InvalidName {
            name: name.to_owned(),
        })
    }
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fond", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nimble", "proud", "quiet", "rapid", "sharp", "steady", "tender", "vivid", "witty", "zealous",
    "bold", "clever", "daring", "earnest", "frosty", "glad", "humble", "idle", "jovial", "kind",
];

const NAMES: &[&str] = &[
    "noether",
    "hopper",
    "lovelace",
    "turing",
    "curie",
    "meitner",
    "ramanujan",
    "euler",
    "gauss",
    "hamilton",
    "kepler",
    "lamarr",
    "shannon",
    "dijkstra",
    "knuth",
    "liskov",
    "ritchie",
    "thompson",
    "torvalds",
    "babbage",
    "boole",
    "cerf",
    "darwin",
    "fermi",
    "galois",
    "hypatia",
    "johnson",
    "kowalevski",
    "leavitt",
    "mirzakhani",
];

/// A random `adjective_name`; the caller retries on a collision.
pub fn generate_name(attempt: u32) -> String {
    let a = ADJECTIVES[rand::random_range(0..ADJECTIVES.len())];
    let n = NAMES[rand::random_range(0..NAMES.len())];
    if attempt == 0 {
        format!("/{a}_{n}")
    } else {
        format!("/{a}_{n}{}", rand::random_range(0..100))
    }
}

/// The signal a request names, or `default` when it names none.
pub fn signal_or(requested: Option<&str>, default: i32) -> Result<i32, StoreError> {
    match requested.filter(|s| !s.is_empty()) {
        Some(s) => parse_signal(s),
        None => Ok(default),
    }
}

/// Parses a signal as Docker accepts it: `KILL`, `SIGKILL`, `9`.
pub fn parse_signal(s: &str) -> Result<i32, StoreError> {
    let invalid = || StoreError::InvalidSignal {
        signal: s.to_owned(),
    };
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(invalid())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let sig = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => return Err(invalid()),
    };
    Ok(sig)
}

/// `State.Error` of a container whose monitor died without reporting its exit (SIGKILL, a
/// crash): nothing supervises its processes any more, so the ones still running (the init
/// `pid`, which ends its PID namespace) are killed, as containerd's shim takes its task
/// with it, rather than left running behind a container shown as exited. The pid is only
/// signalled while /proc says it is still in the container's cgroup (not a reused pid).
pub fn monitor_lost_error(id: &str, pid: i32) -> String {
    let ours = pid > 0
        && std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains(id));
    let killed = ours && crate::sys::process::kill(pid, libc::SIGKILL).is_ok();
    if killed {
        tracing::warn!(container_id = %id, pid, "container's monitor is gone; its processes killed");
        "the container's monitor was killed or crashed, so its exit status is unknown; its processes were killed".to_owned()
    } else {
        "the container's monitor was killed or crashed, so its exit status is unknown".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn names() {
        assert_eq!(validate_name("t1").unwrap(), "/t1");
        assert_eq!(validate_name("/web.db-1_x").unwrap(), "/web.db-1_x");
        for bad in ["", "/", "a", "-x", "x y", "../x", "a/b", "é1"] {
            let e = validate_name(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{bad}");
        }
        let g = generate_name(0);
        assert!(validate_name(&g).is_ok());
    }

    #[test]
    fn start_rules() {
        let mut s = State::new();
        assert!(s.can_start("x").is_ok());
        s.set_running(42, Utc::now());
        assert_eq!(s.can_start("x").unwrap_err().kind(), ErrorKind::NotModified);
        s.status = Status::Paused;
        assert_eq!(s.can_start("x").unwrap_err().kind(), ErrorKind::Conflict);
        s.set_exited(3, Utc::now(), false);
        assert!(s.can_start("x").is_ok());
        assert_eq!(s.pid, 0);
    }

    #[test]
    fn status_texts() {
        let now = Utc::now();
        let mut s = State::new();
        assert_eq!(s.status_text(now), "Created");
        s.set_running(1, now);
        assert_eq!(s.status_text(now), "Up Less than a second");
        s.started_at = Some(now - chrono::Duration::seconds(150));
        assert_eq!(s.status_text(now), "Up 2 minutes");
        s.set_exited(0, now - chrono::Duration::seconds(31), false);
        assert_eq!(s.status_text(now), "Exited (0) 31 seconds ago");
        assert_eq!(
            human_duration(chrono::Duration::seconds(3600)),
            "About an hour"
        );
        assert_eq!(human_duration(chrono::Duration::hours(72)), "3 days");
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("2").unwrap(), 2);
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("NOPE").is_err());
    }

    #[test]
    fn docker_times() {
        assert_eq!(docker_time(None), "0001-01-01T00:00:00Z");
    }
}
