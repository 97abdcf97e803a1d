//! Fixtures for tests/root_exec.rs: a busybox rootfs, container specs, an ExecActor with
#![allow(clippy::unwrap_used)]
//! its own exec root, and guards that remove what a test made even when it fails.

#![allow(dead_code)]

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use berth::actors::exec::ExecError;
use berth::actors::exec::{
    AttachOptions, ContainerExited, ExecActor, PendingAttach, StartContainer, Started,
    SubscribeExits,
};
use berth::config::DaemonConfig;
use berth::monitor::spec::{CgroupSpec, ContainerSpec, NetworkSpec, RootfsSpec};
use berth::sys::cgroups::CgroupLayout;
use tokio::sync::{mpsc, oneshot};

#[path = "ledger.rs"]
pub mod ledger;

pub fn is_root() -> bool {
    ledger::is_root()
}

/// Skips the test (returns early, recording the skip in the test ledger) unless running
/// as root; as root it records the test as run.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::exec_support::ledger::root_or_skip(
            module_path!(),
            "needs root (euid 0) for namespaces, mounts and cgroups",
        ) {
            return;
        }
    };
}

/// Skips the rest of the calling test: prints the reason, records it in the test ledger
/// and returns.
#[macro_export]
macro_rules! skip_test {
    ($($why:tt)+) => {
        return $crate::exec_support::ledger::skip(module_path!(), &format!($($why)+))
    };
}

/// Which kind of rootfs mount a test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bind,
    Overlay,
}

/// A temp dir with a busybox root filesystem, an exec root and a log dir. Drop checks
/// that nothing stayed mounted below it and removes the test's cgroup parent.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub lower: PathBuf,
    pub exec_root: PathBuf,
    /// Per-test cgroup parent, e.g. `berthtest-1a2b3c/`.
    pub cgroup_parent: String,
}

impl Fixture {
    pub fn new() -> Fixture {
        let tmp = tempfile::Builder::new()
            .prefix("berth-exec-")
            .tempdir()
            .unwrap();
        let lower = tmp.path().join("rootfs");
        build_busybox_rootfs(&lower);
        let exec_root = tmp.path().join("exec");
        fs::create_dir_all(&exec_root).unwrap();
        let cgroup_parent = format!("berthtest-{}", &berth::util::new_id()[..12]);
        Fixture {
            tmp,
            lower,
            exec_root,
            cgroup_parent,
        }
    }

    pub fn rootfs(&self, kind: Kind, id: &str) -> RootfsSpec {
        match kind {
            Kind::Bind => RootfsSpec {
                fstype: "bind".into(),
                source: self.lower.to_string_lossy().into_owned(),
                options: String::new(),
                target: self.lower.clone(),
            },
            Kind::Overlay => {
                let base = self.tmp.path().join("ov").join(&id[..12]);
                let (upper, work, merged) =
                    (base.join("upper"), base.join("work"), base.join("merged"));
                for d in [&upper, &work, &merged] {
                    fs::create_dir_all(d).unwrap();
                }
                RootfsSpec {
                    fstype: "overlay".into(),
                    source: "overlay".into(),
                    options: format!(
                        "lowerdir={},upperdir={},workdir={}",
                        self.lower.display(),
                        upper.display(),
                        work.display()
                    ),
                    target: merged,
                }
            }
        }
    }

    pub fn spec(&self, kind: Kind, args: &[&str]) -> ContainerSpec {
        let id = berth::util::new_id();
        ContainerSpec {
            rootfs: self.rootfs(kind, &id),
            hostname: id[..12].to_owned(),
            domainname: String::new(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cwd: String::new(),
            user: String::new(),
            tty: false,
            open_stdin: false,
            stdin_once: false,
            log_path: self.tmp.path().join("logs").join(format!("{id}-json.log")),
            log: Default::default(),
            log_attrs: None,
            state_dir: berth::actors::exec::state_dir(&self.exec_root, &id),
            cgroup: CgroupSpec {
                path: format!("{}/{}", self.cgroup_parent, id),
                ..Default::default()
            },
            mounts: Vec::new(),
            network: NetworkSpec::None,
            join_netns: false,
            readonly_rootfs: false,
            shm_size: 0,
            console_size: (0, 0),
            process: Default::default(),
            // What berthd gives a container that asks for nothing: Docker's default
            // capabilities and seccomp profile.
            security: berth::security::for_container(
                &berth::model::api::HostConfig::default(),
                berth::security::DaemonDefaults::default(),
            )
            .unwrap(),
            runtime: String::new(),
            oci: None,
            id,
        }
    }

    pub fn config(&self) -> Arc<DaemonConfig> {
        let mut c = DaemonConfig::defaults();
        c.exec_root = self.exec_root.clone();
        c.data_root = self.tmp.path().join("data");
        Arc::new(c)
    }

    /// The container's cgroup dirs on this host.
    pub fn cgroup_dirs(&self, spec: &ContainerSpec) -> Vec<PathBuf> {
        cgroup_roots()
            .into_iter()
            .map(|r| r.join(&spec.cgroup.path))
            .collect()
    }
}

/// Every hierarchy root a container cgroup is made in.
pub fn cgroup_roots() -> Vec<PathBuf> {
    let l = CgroupLayout::detect();
    let mut roots: Vec<PathBuf> = Vec::new();
    for c in berth::sys::cgroups::V1_CONTROLLERS {
        if let Some(m) = l.v1_mount(c) {
            if !roots.iter().any(|r| r == m) {
                roots.push(m.to_path_buf());
            }
        }
    }
    if let Some(u) = l.unified {
        roots.push(u);
    }
    roots
}

/// Mount points below `dir` in our mount namespace.
pub fn mounts_below(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|m| m.starts_with(&d))
        .collect()
}

/// Processes whose cwd or root is below `dir` (monitors, containers).
pub fn processes_below(dir: &Path) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        for link in ["cwd", "root"] {
            if let Ok(t) = fs::read_link(e.path().join(link)) {
                if t.starts_with(dir) {
                    out.push(pid);
                    break;
                }
            }
        }
    }
    out
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Kill leftovers first (a failed test): containers by cgroup, then monitors.
        for root in cgroup_roots() {
            let parent = root.join(&self.cgroup_parent);
            for e in fs::read_dir(&parent).into_iter().flatten().flatten() {
                let procs = fs::read_to_string(e.path().join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        for pid in processes_below(self.tmp.path()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        for root in cgroup_roots() {
            let parent = root.join(&self.cgroup_parent);
            if let Ok(rd) = fs::read_dir(&parent) {
                for e in rd.flatten() {
                    if e.path().is_dir() {
                        for _ in 0..100 {
                            if fs::remove_dir(e.path()).is_ok() {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                }
            }
            let _ = fs::remove_dir(&parent);
        }
        let left = mounts_below(self.tmp.path());
        for m in left.iter().rev() {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
        if !std::thread::panicking() {
            assert!(left.is_empty(), "mounts leaked to the host: {left:?}");
        }
    }
}

pub fn build_busybox_rootfs(root: &Path) {
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    let out = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    let mut seen = HashSet::new();
    for name in String::from_utf8_lossy(&out.stdout).lines() {
        let name = name.trim();
        if name.is_empty() || name == "busybox" || !seen.insert(name.to_owned()) {
            continue;
        }
        let _ = symlink("busybox", root.join("bin").join(name));
    }
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
}

/// Receives the exits an ExecActor reports.
pub struct ExitSink(pub mpsc::UnboundedSender<ContainerExited>);

impl Actor for ExitSink {
    type Context = Context<Self>;
}

impl Handler<ContainerExited> for ExitSink {
    type Result = ();
    fn handle(&mut self, msg: ContainerExited, _: &mut Self::Context) {
        let _ = self.0.send(msg);
    }
}

/// An ExecActor with an exit subscription.
pub struct Exec {
    pub addr: Addr<ExecActor>,
    pub exits: mpsc::UnboundedReceiver<ContainerExited>,
    /// Exits received while waiting for another container's.
    pub early: Vec<ContainerExited>,
}

impl Exec {
    pub async fn start(fx: &Fixture) -> Exec {
        let addr = ExecActor::new(
            fx.config(),
            PathBuf::from(env!("CARGO_BIN_EXE_berthd")),
            CgroupLayout::detect(),
        )
        .start();
        addr.send(berth::actors::Init).await.unwrap().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = ExitSink(tx).start();
        addr.send(SubscribeExits(sink.recipient())).await.unwrap();
        Exec {
            addr,
            exits: rx,
            early: Vec::new(),
        }
    }

    /// Waits for the exit of `id` (other containers' exits are kept for later).
    pub async fn wait_exit(&mut self, id: &str) -> ContainerExited {
        if let Some(i) = self.early.iter().position(|e| e.id == id) {
            return self.early.remove(i);
        }
        let fut = async {
            loop {
                let e = self.exits.recv().await.expect("exit channel closed");
                if e.id == id {
                    return e;
                }
                self.early.push(e);
            }
        };
        tokio::time::timeout(Duration::from_secs(30), fut)
            .await
            .expect("no exit within 30 s")
    }

    /// `CleanupContainer` for `id` (its runtime dir; no cgroup named), which must succeed.
    pub async fn cleanup(&self, id: &str) {
        self.addr
            .send(berth::actors::exec::CleanupContainer {
                id: id.to_owned(),
                cgroup: None,
            })
            .await
            .unwrap()
            .unwrap();
    }

    /// Starts `spec` with one pending attach per entry of `attach`; returns the streams.
    pub async fn start_with(
        &self,
        spec: ContainerSpec,
        attach: &[AttachOptions],
    ) -> (Result<Started, ExecError>, Vec<UnixStream>) {
        let mut pend = Vec::new();
        let mut rxs = Vec::new();
        for o in attach {
            let (tx, rx) = oneshot::channel();
            pend.push(PendingAttach {
                options: *o,
                reply: tx,
            });
            rxs.push(rx);
        }
        let res = self
            .addr
            .send(StartContainer::new(spec, pend))
            .await
            .unwrap();
        let mut streams = Vec::new();
        for rx in rxs {
            if let Ok(Ok(s)) = rx.await {
                streams.push(s);
            }
        }
        (res, streams)
    }

    /// Runs a container to completion with stdout+stderr attached: (stdout, stderr, exit).
    pub async fn run(&mut self, spec: ContainerSpec) -> (String, String, i32) {
        let id = spec.id.clone();
        let tty = spec.tty;
        let (res, mut streams) = self.start_with(spec, &[OUT_ERR]).await;
        res.expect("start failed");
        let s = streams.pop().unwrap();
        let raw = tokio::task::spawn_blocking(move || read_all(s))
            .await
            .unwrap();
        let exit = self.wait_exit(&id).await;
        let (o, e) = if tty { (raw, Vec::new()) } else { demux(&raw) };
        (
            String::from_utf8_lossy(&o).into_owned(),
            String::from_utf8_lossy(&e).into_owned(),
            exit.exit_code,
        )
    }
}

pub const OUT_ERR: AttachOptions = AttachOptions {
    stdin: false,
    stdout: true,
    stderr: true,
};

pub fn read_all(mut s: UnixStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut v = Vec::new();
    s.read_to_end(&mut v).unwrap();
    v
}

/// Splits a stdcopy stream into stdout and stderr.
pub fn demux(mut b: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (mut o, mut e) = (Vec::new(), Vec::new());
    while b.len() >= 8 {
        let len = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        let payload = &b[8..8 + len];
        match b[0] {
            1 => o.extend_from_slice(payload),
            2 => e.extend_from_slice(payload),
            s => panic!("bad stream id {s}"),
        }
        b = &b[8 + len..];
    }
    assert!(b.is_empty(), "trailing bytes in stdcopy stream");
    (o, e)
}
