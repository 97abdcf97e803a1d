//! `TestDaemon`: a real berthd on a temp data root, exec root, socket and pidfile, driven
//! through the real docker CLI; everything it made is removed on drop, also when a test
//! fails.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod ledger;

/// Skips the calling test unless it runs as root: prints why and records the skip in the
/// test ledger ([`ledger`]); as root it records the test as run.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::common::ledger::root_or_skip(
            module_path!(),
            "this test needs root (it starts a real berthd)",
        ) {
            return;
        }
    };
}

/// Skips the rest of the calling test (a tool or a host feature is missing): prints the
/// reason, records it in the test ledger and returns.
#[macro_export]
macro_rules! skip_test {
    ($($why:tt)+) => {
        return $crate::common::ledger::skip(module_path!(), &format!($($why)+))
    };
}

/// Records (and prints) that the calling test leaves a part out; the test goes on.
#[macro_export]
macro_rules! skip_part {
    ($($why:tt)+) => {
        $crate::common::ledger::skip_part(module_path!(), &format!($($why)+))
    };
}

/// `docker inspect -f FORMAT NAME`, trimmed.
pub fn inspect(d: &TestDaemon, name: &str, format: &str) -> String {
    d.docker_ok(&["inspect", "-f", format, name])
        .trim()
        .to_owned()
}

/// Polls `what` every 50 ms until it is true, for at most `secs` seconds.
pub fn wait_for(secs: u64, mut what: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if what() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

pub fn berthd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_berthd")
}

/// The busybox rootfs tarball, built once per machine by scripts/mkbusybox.sh (the build
/// is deterministic, so concurrent test binaries agree on its bytes).
pub fn busybox_tar() -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("busybox.tar");
        if !out.exists() {
            let tmp = out.with_extension(format!("tar.{}", std::process::id()));
            let st = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mkbusybox.sh"))
                .arg(&tmp)
                .status()
                .expect("run scripts/mkbusybox.sh");
            assert!(st.success(), "scripts/mkbusybox.sh failed");
            std::fs::rename(&tmp, &out).unwrap();
        }
        out
    })
    .clone()
}

/// A free loopback TCP port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[derive(Debug)]
pub struct TestDaemon {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub pidfile: PathBuf,
    pub log_path: PathBuf,
    pub metrics_port: u16,
    child: Option<Child>,
    docker_config: PathBuf,
    /// The metrics port was taken once and another was tried.
    retried: bool,
}

/// `--exec-driver oci` when `BERTH_TEST_EXEC_DRIVER=oci` is in the tests' environment and
/// the test names no driver itself: the runtime tests (root_containers, root_cgroups,
/// root_fields, ...) then run every container with runc, the same tests on both drivers
/// (`BERTH_TEST_EXEC_DRIVER=oci cargo test --test root_cgroups`).
pub fn exec_driver_args(given: &[String]) -> Vec<String> {
    match std::env::var("BERTH_TEST_EXEC_DRIVER").as_deref() {
        Ok("oci") if !given.iter().any(|a| a.starts_with("--exec-driver")) => {
            vec!["--exec-driver".into(), "oci".into()]
        }
        _ => Vec::new(),
    }
}

/// Options for [`TestDaemon::start_with`].
#[derive(Debug, Default, Clone)]
pub struct Opts {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl TestDaemon {
    /// A daemon with `-b none` (no bridge in this build) and JSON logs.
    pub fn start() -> TestDaemon {
        Self::start_with(Opts::default())
    }

    pub fn start_with(opts: Opts) -> TestDaemon {
        let dir = tempfile::Builder::new()
            .prefix("berth-test.")
            .tempdir()
            .unwrap();
        let mut d = TestDaemon {
            sock: dir.path().join("api.sock"),
            data_root: dir.path().join("data"),
            exec_root: dir.path().join("exec"),
            pidfile: dir.path().join("berthd.pid"),
            log_path: dir.path().join("berthd.log"),
            metrics_port: free_port(),
            docker_config: dir.path().join("docker-config"),
            child: None,
            retried: false,
            dir,
        };
        std::fs::create_dir_all(&d.docker_config).unwrap();
        d.spawn(&opts);
        d
    }

    /// The command line berthd gets (without extra args).
    pub fn base_args(&self) -> Vec<String> {
        vec![
            "--data-root".into(),
            self.data_root.display().to_string(),
            "--exec-root".into(),
            self.exec_root.display().to_string(),
            "--pidfile".into(),
            self.pidfile.display().to_string(),
            "-H".into(),
            format!("unix://{}", self.sock.display()),
            "--metrics-addr".into(),
            format!("127.0.0.1:{}", self.metrics_port),
            "--log-format".into(),
            "json".into(),
            "--config-file".into(),
            self.dir.path().join("no-daemon.json").display().to_string(),
        ]
    }

    fn spawn(&mut self, opts: &Opts) {
        // An explicit config file that does not exist is an error; give an empty one.
        std::fs::write(self.dir.path().join("no-daemon.json"), "{}").unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        let mut cmd = Command::new(berthd_bin());
        // No bridge unless the test asks for one (tests/root_network.rs): parallel daemons
        // must not share berth0 or its iptables rules.
        let wants_bridge = opts.args.iter().any(|a| {
            a == "-b" || a.starts_with("--bridge") || a.starts_with("--bip") || a.starts_with("-b=")
        });
        cmd.args(self.base_args())
            .args(if wants_bridge {
                &[][..]
            } else {
                &["-b", "none"][..]
            })
            .args(&opts.args)
            .args(exec_driver_args(&opts.args))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn berthd"));
        if let Err(log) = self.wait_ready() {
            // `free_port` releases its port: another test (or a container's connection)
            // can take it before berthd binds it. Take another one; any other early exit
            // is the test's failure.
            if log.contains("metrics endpoint") && log.contains("in use") && !self.retried {
                self.retried = true;
                self.metrics_port = free_port();
                return self.spawn(opts);
            }
            panic!("berthd exited early:\n{log}");
        }
    }

    /// Restarts the daemon on the same roots (after [`TestDaemon::stop`]).
    pub fn restart(&mut self, opts: &Opts) {
        assert!(self.child.is_none(), "stop the daemon first");
        self.spawn(opts);
    }

    /// Waits for `/_ping`; an early exit gives its status and the daemon's log.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!("({st}):\n{}", self.log()));
            }
            if self.ping() {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "berthd not ready in 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `HEAD /_ping` answered 200.
    pub fn ping(&self) -> bool {
        self.raw("HEAD /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .map(|r| r.starts_with("HTTP/1.1 200"))
            .unwrap_or(false)
    }

    /// Sends raw bytes on a fresh connection and reads the reply until the server closes.
    pub fn raw(&self, request: &str) -> std::io::Result<String> {
        let mut s = UnixStream::connect(&self.sock)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(request.as_bytes())?;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The daemon's JSON log records.
    pub fn log_records(&self) -> Vec<serde_json::Value> {
        let f = std::fs::File::open(&self.log_path).unwrap();
        std::io::BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect()
    }

    /// `docker` with DOCKER_HOST pointing at this daemon.
    pub fn docker_cmd(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT");
        c
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd().args(args).output().expect("run docker")
    }

    /// Runs docker and asserts success; returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed ({}):\nstdout: {}\nstderr: {}\ndaemon log tail:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 30)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `docker events` of everything so far (`--since 0`, `--until` a second ahead, so
    /// that the events of this very second are all in), with `filters` (`--filter`
    /// arguments given as `key=value`) and `format`.
    pub fn events_so_far(&self, filters: &[&str], format: &str) -> String {
        let until = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 1)
        .to_string();
        let mut args = vec!["events", "--since", "0", "--until", &until];
        for f in filters {
            args.extend(["--filter", f]);
        }
        args.extend(["--format", format]);
        self.docker_ok(&args)
    }

    /// Runs a Python docker SDK script with `c` already a `docker.DockerClient` on this
    /// daemon; asserts success and returns stdout.
    pub fn python_sdk_ok(&self, script: &str) -> String {
        let full = format!(
            "import docker\nc = docker.DockerClient(base_url='unix://{}')\n{script}",
            self.sock.display()
        );
        let out = Command::new("python3")
            .args(["-c", &full])
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "python docker SDK script failed ({}):\n{}\ndaemon log tail:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 30)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `docker import` of the busybox rootfs as busybox:latest with CMD sh.
    pub fn import_busybox(&self) -> String {
        let tar = busybox_tar();
        self.docker_ok(&[
            "import",
            "-c",
            "CMD [\"sh\"]",
            tar.to_str().unwrap(),
            "busybox:latest",
        ])
        .trim()
        .to_owned()
    }

    /// SIGKILL (a crash) and reap.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("daemon running");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// SIGTERM and wait (60 s, then SIGKILL). Returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("daemon running");
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Pids of this daemon's monitors: processes whose cwd is under its exec root (a
    /// monitor runs in its container's state dir); only ours, since the path is unique.
    pub fn monitor_pids(&self) -> Vec<i32> {
        pids_with_cwd_under(&self.exec_root)
    }
}

/// Pids whose current directory is under `dir`.
pub fn pids_with_cwd_under(dir: &Path) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) {
            if cwd.starts_with(dir) {
                out.push(pid);
            }
        }
    }
    out
}

/// Children of `pid` (from /proc/*/stat).
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) {
            // The ppid is the second field after the parenthesised command.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<i32>().ok());
            if ppid == Some(pid) {
                out.push(child);
            }
        }
    }
    out
}

pub fn signal(pid: u32, sig: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::try_from(sig).unwrap(),
    );
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        // Monitors this daemon started (live-restore tests leave some): kill their
        // containers' inits (which ends each pid namespace), then the monitors, by pid.
        let monitors = self.monitor_pids();
        for &m in &monitors {
            for child in children_of(m) {
                signal(child as u32, libc::SIGKILL);
            }
        }
        if !monitors.is_empty() {
            std::thread::sleep(Duration::from_millis(300));
        }
        for m in self.monitor_pids() {
            signal(m as u32, libc::SIGKILL);
        }
        // Anything still mounted under our temp dir.
        let root = self.dir.path().display().to_string();
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut points: Vec<&str> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|p| p.starts_with(&root))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

/// Starts a daemon with `--live-restore` and `extra` (the exec driver's flags: the same
/// case runs under each driver), runs a container, stops and restarts the daemon, and
/// sees the container still running with the same pid, then killed and removed.
pub fn live_restore_keeps_a_container_running(extra: &[&str]) {
    let live = Opts {
        args: std::iter::once("--live-restore")
            .chain(extra.iter().copied())
            .map(str::to_owned)
            .collect(),
        ..Opts::default()
    };
    let mut d = TestDaemon::start_with(live.clone());
    d.import_busybox();
    d.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "lr",
        "busybox",
        "sleep",
        "600",
    ]);
    let pid = d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", "lr"]);
    assert!(d.stop().success());
    assert!(
        std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "live-restore must leave the container running"
    );
    d.restart(&live);
    let ps = d.docker_ok(&["ps", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps.trim(), "lr running");
    assert_eq!(
        d.docker_ok(&["inspect", "-f", "{{.State.Pid}}", "lr"])
            .trim(),
        pid.trim()
    );
    d.docker_ok(&["kill", "lr"]);
    let out = d.docker_ok(&["wait", "lr"]);
    assert_eq!(out.trim(), "137");
    d.docker_ok(&["rm", "lr"]);
}
