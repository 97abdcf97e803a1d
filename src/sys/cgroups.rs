//! cgroups: which hierarchies the host has (v1, hybrid or v2-only), and one container's
//! cgroup in each of them.
//!
//! On v1 and hybrid hosts a container gets `<mount>/<path>` in each v1 hierarchy of
//! `memory cpu cpuacct pids blkio freezer devices` that is mounted (and `cpuset` when it
//! asks for CPUs or memory nodes), plus the unified hierarchy when there is one (hybrid:
//! /sys/fs/cgroup/unified, for tracking only). On a v2-only host it gets one directory,
//! with the controllers it needs enabled in each ancestor's `cgroup.subtree_control`.
//! `paths` resolves where (`--cgroup-parent`), `limits` writes the files.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::SysError;

pub mod limits;
pub mod paths;

pub use limits::DeviceValue;
pub use paths::Hierarchy;

/// The v1 controllers a container joins (cpuset is left out: a new v1 cpuset group has
/// no cpus until they are copied in, and Docker's default leaves it unset too).
pub const V1_CONTROLLERS: &[&str] = &[
    "memory", "cpu", "cpuacct", "pids", "blkio", "freezer", "devices",
];

/// The cgroup hierarchies of this host, and which limits it supports (for `/info`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CgroupLayout {
    /// v1 hierarchies: controller → mount point. Co-mounted controllers (`cpu,cpuacct`)
    /// appear once per controller with the same mount point.
    pub v1: Vec<(String, PathBuf)>,
    /// The cgroup2 mount, if any (v2-only: /sys/fs/cgroup; hybrid: /sys/fs/cgroup/unified).
    pub unified: Option<PathBuf>,
    pub memory_limit: bool,
    pub swap_limit: bool,
    pub pids_limit: bool,
    pub cpu_cfs_quota: bool,
    /// v1: `cpu.cfs_period_us` exists; v2: the `cpu` controller (`cpu.max` holds both).
    #[serde(default)]
    pub cpu_cfs_period: bool,
    pub cpu_shares: bool,
    pub cpuset: bool,
    /// v1: `memory.soft_limit_in_bytes`; v2: the memory controller (`memory.low`).
    #[serde(default)]
    pub memory_reservation: bool,
    /// v1 only: `memory.swappiness` (v2 has none).
    #[serde(default)]
    pub memory_swappiness: bool,
    /// v1 only: `memory.oom_control` (v2 has none).
    #[serde(default)]
    pub oom_kill_disable: bool,
    /// A block I/O weight file: v1 `blkio.weight` or `blkio.bfq.weight`, v2 `io.weight`
    /// or `io.bfq.weight` (neither without CFQ/BFQ or io.cost in the kernel).
    #[serde(default)]
    pub blkio_weight: bool,
    /// Per-device weights: v1 `blkio.weight_device` or `blkio.bfq.weight_device`, v2 as
    /// `blkio_weight`.
    #[serde(default)]
    pub blkio_weight_device: bool,
    /// Read and write throttles: v1 `blkio.throttle.*_device`, v2 `io.max`.
    #[serde(default)]
    pub blkio_throttle: bool,
    /// The kernel has cgroup namespaces (`/proc/self/ns/cgroup`).
    #[serde(default)]
    pub cgroupns: bool,
    /// The CPUs containers may ask for (v1: the root cpuset's `cpuset.cpus`; v2: the
    /// root's `cpuset.cpus.effective`), as dockerd reads them.
    #[serde(default)]
    pub cpus: String,
    /// The memory nodes, likewise.
    #[serde(default)]
    pub mems: String,
}

impl CgroupLayout {
    /// Reads /proc/self/mountinfo and probes the controllers' files.
    pub fn detect() -> CgroupLayout {
        let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut layout = CgroupLayout::from_mountinfo(&text);
        layout.drop_hidden();
        layout.probe();
        layout
    }

    /// Forgets the hierarchies whose mount point does not reach them: mountinfo still
    /// lists a cgroup mount that another mount covers (an empty tmpfs over
    /// /sys/fs/cgroup, a /sys mounted again), where berthd could not make a cgroup.
    fn drop_hidden(&mut self) {
        use nix::sys::statfs::{CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, statfs};
        let is = |p: &Path, magic| statfs(p).is_ok_and(|st| st.filesystem_type() == magic);
        self.v1.retain(|(_, p)| is(p, CGROUP_SUPER_MAGIC));
        if self
            .unified
            .as_deref()
            .is_some_and(|p| !is(p, CGROUP2_SUPER_MAGIC))
        {
            self.unified = None;
        }
    }

    /// The hierarchies named in a mountinfo text; the capability flags stay false.
    pub fn from_mountinfo(text: &str) -> CgroupLayout {
        let mut layout = CgroupLayout::default();
        for line in text.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            if left.len() < 5 || right.len() < 3 {
                continue;
            }
            let (root, mount_point) = (left[3], unescape_mountinfo(left[4]));
            if root != "/" {
                continue;
            }
            match right[0] {
                "cgroup2" if layout.unified.is_none() => {
                    layout.unified = Some(PathBuf::from(mount_point));
                }
                "cgroup" => {
                    for opt in right[2].split(',') {
                        let known = V1_CONTROLLERS.contains(&opt) || opt == "cpuset";
                        if known && !layout.v1.iter().any(|(c, _)| c == opt) {
                            layout
                                .v1
                                .push((opt.to_owned(), PathBuf::from(&mount_point)));
                        }
                    }
                }
                _ => {}
            }
        }
        layout
    }

    /// 2 only when there is no v1 controller hierarchy (a unified/v2-only host), as dockerd
    /// reports `CgroupVersion`.
    pub fn version(&self) -> u8 {
        if self.v1.is_empty() && self.unified.is_some() {
            2
        } else {
            1
        }
    }

    /// The mount point of a v1 controller.
    pub fn v1_mount(&self, controller: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(c, _)| c == controller)
            .map(|(_, p)| p.as_path())
    }

    /// Controllers the unified hierarchy offers (empty on hybrid hosts).
    pub fn v2_controllers(&self) -> Vec<String> {
        let Some(root) = &self.unified else {
            return Vec::new();
        };
        fs::read_to_string(root.join("cgroup.controllers"))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    fn probe(&mut self) {
        if self.version() == 2 {
            let ctrls = self.v2_controllers();
            let has = |c: &str| ctrls.iter().any(|x| x == c);
            self.memory_limit = has("memory");
            self.pids_limit = has("pids");
            self.cpu_cfs_quota = has("cpu");
            self.cpu_cfs_period = has("cpu");
            self.cpu_shares = has("cpu");
            self.cpuset = has("cpuset");
            self.swap_limit = self.memory_limit && v2_has_swap(self.unified.as_deref());
            self.memory_reservation = self.memory_limit;
            // The io controller's files show only below the root, in a cgroup that has it;
            // with none such to look at, dockerd's view: it works.
            let io = has("io");
            let seen = self.unified.as_deref().and_then(v2_io_weight);
            self.blkio_weight = io && seen.unwrap_or(true);
            self.blkio_weight_device = self.blkio_weight;
            self.blkio_throttle = io;
            if let Some(root) = self.unified.clone() {
                self.cpus = read_trimmed(&root.join("cpuset.cpus.effective"));
                self.mems = read_trimmed(&root.join("cpuset.mems.effective"));
            }
        } else {
            let file = |c: &str, f: &str| self.v1_mount(c).is_some_and(|m| m.join(f).exists());
            let flags = [
                file("memory", "memory.limit_in_bytes"),
                file("memory", "memory.memsw.limit_in_bytes"),
                self.v1_mount("pids").is_some(),
                file("cpu", "cpu.cfs_quota_us"),
                file("cpu", "cpu.cfs_period_us"),
                file("cpu", "cpu.shares"),
                self.v1_mount("cpuset").is_some(),
                file("memory", "memory.soft_limit_in_bytes"),
                file("memory", "memory.swappiness"),
                file("memory", "memory.oom_control"),
                file("blkio", "blkio.weight") || file("blkio", "blkio.bfq.weight"),
                file("blkio", "blkio.weight_device") || file("blkio", "blkio.bfq.weight_device"),
                file("blkio", "blkio.throttle.read_bps_device"),
            ];
            let cpuset = self.v1_mount("cpuset").map(Path::to_path_buf);
            [
                self.memory_limit,
                self.swap_limit,
                self.pids_limit,
                self.cpu_cfs_quota,
                self.cpu_cfs_period,
                self.cpu_shares,
                self.cpuset,
                self.memory_reservation,
                self.memory_swappiness,
                self.oom_kill_disable,
                self.blkio_weight,
                self.blkio_weight_device,
                self.blkio_throttle,
            ] = flags;
            if let Some(m) = cpuset {
                self.cpus = read_trimmed(&m.join("cpuset.cpus"));
                self.mems = read_trimmed(&m.join("cpuset.mems"));
            }
        }
        self.cgroupns = Path::new("/proc/self/ns/cgroup").exists();
    }
}

fn read_trimmed(path: &Path) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Whether the v2 io controller offers a weight file, from the first cgroup below `root`
/// that has the controller; `None` when no such cgroup can be found.
fn v2_io_weight(root: &Path) -> Option<bool> {
    let mut queue = vec![root.to_path_buf()];
    let mut looked = 0;
    while let Some(dir) = queue.pop() {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if !p.is_dir() {
                continue;
            }
            looked += 1;
            if looked > 64 {
                return None;
            }
            let ctrls = fs::read_to_string(p.join("cgroup.controllers")).unwrap_or_default();
            if ctrls.split_whitespace().any(|c| c == "io") {
                return Some(p.join("io.weight").exists() || p.join("io.bfq.weight").exists());
            }
            queue.push(p);
        }
    }
    None
}

/// `memory.swap.max` exists only below the root; look in our own cgroup or a child of root.
fn v2_has_swap(root: Option<&Path>) -> bool {
    let Some(root) = root else { return false };
    let own = fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_owned));
    if let Some(own) = own {
        let p = root.join(own.trim_start_matches('/'));
        if p != root && p.join("memory.swap.max").exists() {
            return true;
        }
    }
    fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().join("memory.swap.max").exists())
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            out.push(u8::try_from(v).unwrap_or(b'?'));
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Limits for a container's cgroup, as the monitor takes them from the container's spec
/// (the devices of blkio settings resolved to their numbers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory: i64,
    /// Memory plus swap (0: not limited here, -1: unlimited swap).
    pub memory_swap: i64,
    pub pids: i64,
    pub cpu_quota: i64,
    pub cpu_period: u64,
    pub cpu_shares: u64,
    /// The soft limit (v1 `memory.soft_limit_in_bytes`, v2 `memory.low`; 0: none).
    pub memory_reservation: i64,
    /// v1 `memory.swappiness` (0..100; `None`: the kernel's).
    pub swappiness: Option<u64>,
    /// v1 `memory.oom_control`.
    pub oom_kill_disable: bool,
    /// `cpuset.cpus` and `cpuset.mems` ("": not set; either joins the cpuset controller).
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    /// The block I/O weight (10..1000; 0: none).
    pub blkio_weight: u16,
    pub blkio_weight_device: Vec<DeviceValue>,
    pub read_bps: Vec<DeviceValue>,
    pub write_bps: Vec<DeviceValue>,
    pub read_iops: Vec<DeviceValue>,
    pub write_iops: Vec<DeviceValue>,
    /// Device rules allowed besides Docker's defaults (`--device`,
    /// `--device-cgroup-rule`).
    pub devices: Vec<super::devices::DeviceRule>,
}

impl Limits {
    /// Whether the container joins the cpuset controller.
    pub fn wants_cpuset(&self) -> bool {
        !self.cpuset_cpus.is_empty() || !self.cpuset_mems.is_empty()
    }

    /// Whether any block I/O setting is asked for.
    pub fn wants_io(&self) -> bool {
        self.blkio_weight > 0
            || !self.blkio_weight_device.is_empty()
            || !self.read_bps.is_empty()
            || !self.write_bps.is_empty()
            || !self.read_iops.is_empty()
            || !self.write_iops.is_empty()
    }
}

/// Checks that a cgroup path is relative and stays inside the hierarchy (a leading `./`
/// puts it below the caller's own cgroup, see [`paths`]).
pub fn check_rel_path(rel: &str) -> Result<PathBuf, SysError> {
    paths::parse_rel(rel).map(|r| r.rel)
}

/// `--cpu-shares` (2..262144) to cgroup v2 `cpu.weight` (1..10000), as runc converts.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// One container's cgroup directories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerCgroup {
    /// Every directory made, deepest path per hierarchy (removed in reverse at exit).
    pub dirs: Vec<PathBuf>,
    /// Where the memory controller lives for this container, and whether it is v2.
    pub memory: Option<(PathBuf, bool)>,
    /// The directory in the unified (v2) hierarchy, if any.
    pub v2_dir: Option<PathBuf>,
}

pub(crate) fn write_file(path: &Path, data: &str) -> Result<(), SysError> {
    let res = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(data.as_bytes()));
    res.map_err(|source| SysError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn mkdir(path: &Path) -> Result<(), SysError> {
    match fs::create_dir_all(path) {
        Ok(()) => Ok(()),
        Err(source) => Err(SysError::Create {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl ContainerCgroup {
    /// Creates `rel` in every hierarchy in use and applies `limits`.
    pub fn create(layout: &CgroupLayout, rel: &str, limits: &Limits) -> Result<Self, SysError> {
        let mut cg = Self::create_unified(layout, rel, limits)?;
        cg.add_v1(layout, rel, limits)?;
        Ok(cg)
    }

    /// Creates `rel` in the unified (v2) hierarchy only, if there is one: where the init
    /// can be born (`CLONE_INTO_CGROUP`). [`ContainerCgroup::add_v1`] does the rest.
    pub fn create_unified(
        layout: &CgroupLayout,
        rel: &str,
        limits: &Limits,
    ) -> Result<Self, SysError> {
        let mut cg = ContainerCgroup::default();
        let res = paths::hierarchies(layout, rel, false).and_then(|hs| {
            match hs.into_iter().find(Hierarchy::is_v2) {
                Some(h) => cg.create_v2(layout, &h, limits),
                None => Ok(()),
            }
        });
        if let Err(e) = res {
            cg.remove(Duration::from_millis(0));
            return Err(e);
        }
        Ok(cg)
    }

    /// Creates `rel` in every v1 hierarchy in use and applies `limits` there (the memory
    /// controller of the unified hierarchy, when it has one, stays the one reported). On
    /// an error every directory made so far, v2 included, is removed.
    pub fn add_v1(
        &mut self,
        layout: &CgroupLayout,
        rel: &str,
        limits: &Limits,
    ) -> Result<(), SysError> {
        let res = paths::hierarchies(layout, rel, limits.wants_cpuset())
            .and_then(|hs| self.create_v1(&hs, limits));
        if res.is_err() {
            self.remove(Duration::from_millis(0));
        }
        res
    }

    fn create_v1(&mut self, hierarchies: &[Hierarchy], limits: &Limits) -> Result<(), SysError> {
        for h in hierarchies.iter().filter(|h| !h.is_v2()) {
            mkdir(&h.dir)?;
            if !self.dirs.contains(&h.dir) {
                self.dirs.push(h.dir.clone());
            }
            if h.has("memory") && self.memory.is_none() {
                self.memory = Some((h.dir.clone(), false));
            }
            if h.has("cpuset") {
                limits::fill_cpuset_ancestors(&h.mount, &h.dir)?;
            }
            limits::apply_v1(&h.dir, &h.controllers, limits)?;
        }
        Ok(())
    }

    fn create_v2(
        &mut self,
        layout: &CgroupLayout,
        h: &Hierarchy,
        limits: &Limits,
    ) -> Result<(), SysError> {
        let available = layout.v2_controllers();
        let mut wanted: Vec<&str> = Vec::new();
        let extra = limits::extra_v2_controllers(limits);
        // The extra controllers only where the v1 hierarchy does not do the job.
        let extra = extra.into_iter().filter(|c| match *c {
            "cpuset" => layout.v1_mount("cpuset").is_none(),
            "io" => layout.v1_mount("blkio").is_none(),
            _ => true,
        });
        for c in ["memory", "pids", "cpu"].into_iter().chain(extra) {
            if available.iter().any(|a| a == c) {
                wanted.push(c);
            }
        }
        let root = &h.mount;
        // Enable the controllers in every ancestor, so that the leaf gets their files.
        if !wanted.is_empty() {
            let rel = h.dir.strip_prefix(root).unwrap_or(&h.dir);
            let mut cur = root.clone();
            let comps: Vec<_> = rel.components().collect();
            for (i, comp) in comps.iter().enumerate() {
                let enabled =
                    fs::read_to_string(cur.join("cgroup.subtree_control")).unwrap_or_default();
                let missing: Vec<String> = wanted
                    .iter()
                    .filter(|w| !enabled.split_whitespace().any(|e| e == **w))
                    .map(|w| format!("+{w}"))
                    .collect();
                if !missing.is_empty() {
                    write_file(&cur.join("cgroup.subtree_control"), &missing.join(" "))?;
                }
                cur.push(comp.as_os_str());
                if i + 1 < comps.len() {
                    match fs::create_dir(&cur) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(source) => {
                            return Err(SysError::Create { path: cur, source });
                        }
                    }
                }
            }
        }
        let dir = h.dir.clone();
        mkdir(&dir)?;
        self.dirs.push(dir.clone());
        self.v2_dir = Some(dir.clone());
        if layout.v1_mount("devices").is_none() {
            // No v1 devices controller: the allow-list is an eBPF program on v2.
            let d = fs::File::open(&dir).map_err(|source| SysError::Create {
                path: dir.clone(),
                source,
            })?;
            let rules = super::devices::allow_list(&limits.devices);
            super::devices::attach_device_filter(std::os::fd::AsFd::as_fd(&d), &rules)?;
        }
        if wanted.contains(&"memory") {
            self.memory = Some((dir.clone(), true));
        }
        limits::apply_v2(&dir, &wanted, limits)
    }

    /// The `cgroup.procs` files the init writes itself into.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// Moves process `pid` (0: the caller) into every directory via `cgroup.procs`.
    pub fn join(procs_files: &[PathBuf], pid: i32) -> Result<(), SysError> {
        let pid = pid.to_string();
        for f in procs_files {
            write_file(f, &pid)?;
        }
        Ok(())
    }

    /// True when the memory controller counted an OOM kill in this cgroup.
    pub fn oom_killed(&self) -> bool {
        let Some((dir, v2)) = &self.memory else {
            return false;
        };
        let (file, key) = if *v2 {
            ("memory.events", "oom_kill")
        } else {
            ("memory.oom_control", "oom_kill")
        };
        let text = fs::read_to_string(dir.join(file)).unwrap_or_default();
        text.lines().any(|l| {
            let mut it = l.split_whitespace();
            it.next() == Some(key) && it.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) > 0
        })
    }

    /// The directories of `rel` that exist in the hierarchies of `layout`: what a monitor
    /// that died before its container's exit left behind, for removal, or the cgroup an
    /// OCI runtime made (the oci driver's monitor reads an OOM kill from it).
    pub fn existing(layout: &CgroupLayout, rel: &str) -> Result<Self, SysError> {
        let mut hs = paths::hierarchies(layout, rel, true)?;
        // v1 first, the unified one last, as `remove` takes them in reverse.
        let v2_first = usize::from(hs.first().is_some_and(Hierarchy::is_v2));
        hs.rotate_left(v2_first);
        let v2_dir = hs
            .iter()
            .find(|h| h.is_v2())
            .map(|h| h.dir.clone())
            .filter(|d| d.is_dir());
        // Where an OOM kill is counted: the unified hierarchy when it has the memory
        // controller, else the v1 one (as `create` picks it).
        let v2_memory = layout.v2_controllers().iter().any(|c| c == "memory");
        let memory = match (&v2_dir, v2_memory) {
            (Some(d), true) => Some((d.clone(), true)),
            _ => hs
                .iter()
                .find(|h| h.has("memory"))
                .map(|h| (h.dir.clone(), false))
                .filter(|(d, _)| d.is_dir()),
        };
        Ok(ContainerCgroup {
            dirs: hs
                .into_iter()
                .map(|h| h.dir)
                .filter(|d| d.is_dir())
                .collect(),
            memory,
            v2_dir,
        })
    }

    /// Removes the directories, retrying while exiting processes still hold them (EBUSY)
    /// until `patience` has passed. Returns the directories that could not be removed.
    pub fn remove(&self, patience: Duration) -> Vec<PathBuf> {
        let deadline = Instant::now() + patience;
        let mut left = Vec::new();
        for dir in self.dirs.iter().rev() {
            loop {
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => {
                        left.push(dir.clone());
                        break;
                    }
                }
            }
        }
        left
    }
}

/// Keeps the next v1 cgroup moves off the RCU grace period while containers are made.
///
/// Moving a task into a v1 cgroup (a write to `cgroup.procs`) takes the kernel's
/// `cgroup_threadgroup_rwsem` for writing, whose `rcu_sync` waits for a full RCU grace
/// period (6-15 ms on the VMs of BENCHMARKS.md) unless another writer held it within
/// roughly the last grace period (moves 10 ms apart: 0.1 ms; 20 ms apart: 8 ms). A
/// monitor moving a new container's init into its v1 cgroups pays that wait on the start
/// path (v2 hosts do not: the init is cloned straight into its cgroup).
///
/// `poke` has a thread write `0` (the writer's own process) to the `cgroup.procs` of the
/// cgroup berthd already is in, in one v1 hierarchy: the kernel takes the lock and
/// migrates nothing. Poked when a container is created and when its start begins, the
/// first grace period runs while the create's disk work goes on; the thread then writes
/// again every [`WARM_EVERY`] until [`WARM_FOR`] after the last poke, so that the moves of
/// the containers that follow (a script's `docker run`s, a burst) find the lock warm. An
/// idle daemon does not write. While the lock is warm the kernel's fork and exit take a
/// slower, shared path (what the `favordynmods` mount option makes permanent); the writes
/// themselves cost about 30 µs each.
#[derive(Debug, Clone)]
pub struct V1Warmup {
    tx: std::sync::mpsc::SyncSender<()>,
}

/// How often the warm-up writes while it keeps the lock warm: well within a grace period.
pub const WARM_EVERY: Duration = Duration::from_millis(4);
/// How long after the last poke it keeps writing.
pub const WARM_FOR: Duration = Duration::from_secs(1);

impl V1Warmup {
    /// A warm-up thread ("berth-cgwarm"), or `None` on a host without v1 hierarchies or
    /// when berthd's own v1 cgroup cannot be found.
    pub fn start(layout: &CgroupLayout) -> Option<V1Warmup> {
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        let procs = layout.v1.iter().find_map(|(controller, mount)| {
            let path = own_v1_path(&own, controller)?;
            Some(
                mount
                    .join(path.trim_start_matches('/'))
                    .join("cgroup.procs"),
            )
        })?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("berth-cgwarm".into())
            .spawn(move || warm(&procs, &rx))
            .ok()?;
        Some(V1Warmup { tx })
    }

    /// Starts or prolongs a warm-up; never blocks.
    pub fn poke(&self) {
        let _ = self.tx.try_send(());
    }
}

/// The warm-up thread: idle until poked, then writes every [`WARM_EVERY`] until
/// [`WARM_FOR`] has passed without a poke. A poke while it writes only prolongs it: the
/// lock is warm, and a write at once would hold up the forks of the create or start that
/// poked. Ends when the daemon drops its `V1Warmup`.
fn warm(procs: &Path, rx: &std::sync::mpsc::Receiver<()>) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut warned = false;
    while rx.recv().is_ok() {
        let mut until = Instant::now() + WARM_FOR;
        loop {
            if let Err(e) = fs::write(procs, "0") {
                if !warned {
                    tracing::debug!(path = %procs.display(), error = %e, "cgroup warm-up write failed");
                    warned = true;
                }
                // Nothing to keep warm: wait for the next poke.
                break;
            }
            let next = Instant::now() + WARM_EVERY;
            loop {
                match rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
                    Ok(()) => until = Instant::now() + WARM_FOR,
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            if Instant::now() >= until {
                break;
            }
        }
    }
}

/// The path of the calling process's cgroup in the v1 hierarchy of `controller`, from a
/// /proc/<pid>/cgroup text (`id:controllers:path` lines).
/// The `cgroup.procs` files of the v1 hierarchies without a controller (`name=systemd`)
/// that process `pid` is in, from a mountinfo text and `/proc/<pid>/cgroup`: an OCI
/// runtime puts a container there too, and an exec joins what its container's init is in.
pub fn named_procs_files(mountinfo: &str, proc_cgroup: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 5 || right.len() < 3 || right[0] != "cgroup" || left[3] != "/" {
            continue;
        }
        let Some(name) = right[2].split(',').find(|o| o.starts_with("name=")) else {
            continue;
        };
        let Some(path) = own_v1_path(proc_cgroup, name) else {
            continue;
        };
        let dir = Path::new(&unescape_mountinfo(left[4])).join(path.trim_start_matches('/'));
        let procs = dir.join("cgroup.procs");
        if !out.contains(&procs) {
            out.push(procs);
        }
    }
    out
}

fn own_v1_path<'a>(proc_cgroup: &'a str, controller: &str) -> Option<&'a str> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == controller)
            .then_some(path)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 31 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
27 26 0:25 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
28 26 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
29 26 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
30 26 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
31 26 0:29 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
";

    const V2: &str = "\
26 25 0:24 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn named_hierarchies_are_found_with_the_process_path() {
        let cg = "9:name=systemd:/berth/abc\n4:memory:/berth/abc\n0::/berth/abc\n";
        assert_eq!(
            named_procs_files(HYBRID, cg),
            [PathBuf::from(
                "/sys/fs/cgroup/systemd/berth/abc/cgroup.procs"
            )]
        );
        assert!(named_procs_files(V2, "0::/berth/abc\n").is_empty());
    }

    #[test]
    fn hybrid_is_version_1_with_unified() {
        let l = CgroupLayout::from_mountinfo(HYBRID);
        assert_eq!(l.version(), 1);
        assert_eq!(
            l.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            l.v1_mount("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(l.v1_mount("cpu"), l.v1_mount("cpuacct"));
        assert_eq!(
            l.v1_mount("memory"),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        assert!(l.v1_mount("freezer").is_none());
        assert!(l.v1.iter().all(|(c, _)| !c.contains("systemd")));
    }

    #[test]
    fn unified_only_is_version_2() {
        let l = CgroupLayout::from_mountinfo(V2);
        assert_eq!(l.version(), 2);
        assert_eq!(l.unified.as_deref(), Some(Path::new("/sys/fs/cgroup")));
    }

    #[test]
    fn rel_paths_stay_inside() {
        assert!(check_rel_path("berth/abc").is_ok());
        assert!(check_rel_path("/berth").is_err());
        assert!(check_rel_path("berth/../..").is_err());
        assert!(check_rel_path("").is_err());
    }

    #[test]
    fn shares_convert_like_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn mountinfo_octal_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn create_in_fake_hierarchy() {
        let t = tempfile::tempdir().unwrap();
        let mem = t.path().join("memory");
        fs::create_dir_all(&mem).unwrap();
        let layout = CgroupLayout {
            v1: vec![("memory".into(), mem.clone())],
            ..Default::default()
        };
        // A plain directory accepts the limit file as a new file.
        let cg = ContainerCgroup::create(
            &layout,
            "berth/x",
            &Limits {
                memory: 1 << 20,
                ..Default::default()
            },
        );
        // Plain dirs don't have memory.limit_in_bytes, so opening it for write fails.
        assert!(cg.is_err());
        assert!(!mem.join("berth/x").exists());
        let cg = ContainerCgroup::create(&layout, "berth/y", &Limits::default()).unwrap();
        assert_eq!(cg.dirs, vec![mem.join("berth/y")]);
        assert_eq!(cg.procs_files(), vec![mem.join("berth/y/cgroup.procs")]);
        assert!(cg.remove(Duration::from_millis(10)).is_empty());
        assert!(!mem.join("berth/y").exists());
    }

    /// The v2 path on a fake unified hierarchy: the controllers a container needs
    /// (cpuset and io only when asked) enabled in each ancestor, its files written, and
    /// its dir found and removed after.
    #[test]
    fn create_in_fake_v2_hierarchy() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("unified");
        let leaf = root.join("berth/x");
        fs::create_dir_all(&leaf).unwrap();
        fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        for d in [root.clone(), root.join("berth")] {
            fs::write(d.join("cgroup.subtree_control"), "").unwrap();
        }
        for f in [
            "memory.max",
            "memory.low",
            "pids.max",
            "cpu.max",
            "cpuset.cpus",
            "cpuset.mems",
            "io.weight",
            "io.max",
        ] {
            fs::write(leaf.join(f), "").unwrap();
        }
        // A v1 devices hierarchy keeps the eBPF program (which needs a real cgroup) away.
        let devices = t.path().join("devices");
        fs::create_dir_all(&devices).unwrap();
        let layout = CgroupLayout {
            unified: Some(root.clone()),
            v1: vec![("devices".into(), devices.clone())],
            ..Default::default()
        };
        let limits = Limits {
            memory: 64 << 20,
            memory_reservation: 32 << 20,
            pids: 50,
            cpu_quota: 50_000,
            cpuset_cpus: "0".into(),
            blkio_weight: 500,
            read_bps: vec![DeviceValue {
                major: 8,
                minor: 0,
                value: 1 << 20,
            }],
            ..Default::default()
        };
        let cg = ContainerCgroup::create_unified(&layout, "berth/x", &limits).unwrap();
        assert_eq!(cg.v2_dir.as_deref(), Some(leaf.as_path()));
        assert_eq!(cg.memory, Some((leaf.clone(), true)));
        let read = |p: PathBuf| fs::read_to_string(p).unwrap();
        assert_eq!(
            read(root.join("cgroup.subtree_control")),
            "+memory +pids +cpu +cpuset +io"
        );
        assert_eq!(
            read(root.join("berth/cgroup.subtree_control")),
            "+memory +pids +cpu +cpuset +io"
        );
        assert_eq!(read(leaf.join("memory.max")), "67108864");
        assert_eq!(read(leaf.join("memory.low")), "33554432");
        assert_eq!(read(leaf.join("cpu.max")), "50000 100000");
        assert_eq!(read(leaf.join("cpuset.cpus")), "0");
        assert_eq!(read(leaf.join("io.weight")), "4950");
        assert_eq!(read(leaf.join("io.max")), "8:0 rbps=1048576");
        // Without cpuset or io settings those controllers stay off.
        fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        let plain = ContainerCgroup::create_unified(&layout, "berth/x", &Limits::default());
        assert!(plain.is_ok());
        assert_eq!(
            read(root.join("cgroup.subtree_control")),
            "+memory +pids +cpu"
        );
        let found = ContainerCgroup::existing(&layout, "berth/x").unwrap();
        assert_eq!(found.dirs, vec![leaf.clone()]);
    }

    #[test]
    fn own_v1_path_reads_proc_cgroup() {
        let text = "12:pids:/system.slice/berthd.service\n4:cpu,cpuacct:/\n0::/system.slice/berthd.service\n";
        assert_eq!(
            own_v1_path(text, "pids"),
            Some("/system.slice/berthd.service")
        );
        assert_eq!(own_v1_path(text, "cpuacct"), Some("/"));
        assert_eq!(own_v1_path(text, "memory"), None);
        assert_eq!(
            own_v1_path("0::/init.scope\n", "pids"),
            None,
            "v2 line only"
        );
    }

    /// The warm-up writes `0` once poked, keeps writing while poked, and its thread ends
    /// when the daemon drops its handle (here: a plain file stands in for cgroup.procs).
    #[test]
    fn the_warm_up_writes_when_poked_and_ends_with_its_handle() {
        let tmp = tempfile::tempdir().unwrap();
        let procs = tmp.path().join("cgroup.procs");
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let p = procs.clone();
        let thread = std::thread::spawn(move || warm(&p, &rx));
        let warmup = V1Warmup { tx };
        warmup.poke();
        let deadline = Instant::now() + Duration::from_secs(10);
        while fs::read_to_string(&procs).unwrap_or_default() != "0" {
            assert!(Instant::now() < deadline, "no write after a poke");
            std::thread::sleep(Duration::from_millis(1));
        }
        // Writes go on while it is warm: a removed file comes back.
        fs::remove_file(&procs).unwrap();
        warmup.poke();
        while !procs.exists() {
            assert!(Instant::now() < deadline, "no write while warm");
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(warmup);
        thread.join().unwrap();
    }
}
