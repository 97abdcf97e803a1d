//! Live operations on a running container's cgroup, made by berthd: the freezer (pause and
//! unpause), the processes (top), the counters (stats) and new limits (update).
//!
//! The container's monitor creates the cgroup before the init runs and removes it after
//! the exit ([`super::cgroups::ContainerCgroup`]); these functions only read and write
//! files inside it. A file that is gone means that the container has exited meanwhile
//! (`io::ErrorKind::NotFound` in the error's source).
//!
//! Each resource is read or written where the host keeps its controller: the v1 hierarchy
//! when one is mounted for it (v1 and hybrid hosts), else the unified one (v2-only hosts).
//! The parsers of the kernel's files are plain functions, tested on recorded texts.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::SysError;
use super::cgroups::{CgroupLayout, Limits, limits, paths};

/// One container's cgroup in the hierarchies of this host.
#[derive(Debug, Clone)]
pub struct LiveCgroup {
    /// v1: controller → the container's directory in that controller's hierarchy.
    v1: Vec<(String, PathBuf)>,
    /// The container's directory in the unified hierarchy, if the host has one.
    v2: Option<PathBuf>,
    /// No v1 controller is mounted: every controller is in `v2`.
    unified_only: bool,
}

fn read(path: &Path) -> Result<String, SysError> {
    fs::read_to_string(path).map_err(|source| SysError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn write(path: &Path, data: &str) -> Result<(), SysError> {
    // Not `fs::write`: a cgroup file must exist; creating one is a mistake.
    use std::io::Write;
    let res = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(data.as_bytes()));
    res.map_err(|source| SysError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// True when `e` says that a file of the cgroup is gone (the container exited).
pub fn is_gone(e: &SysError) -> bool {
    let source = match e {
        SysError::Read { source, .. } | SysError::Write { source, .. } => source,
        _ => return false,
    };
    // ENODEV: a write to a cgroup being removed.
    source.kind() == io::ErrorKind::NotFound || source.raw_os_error() == Some(libc::ENODEV)
}

/// The value of a cgroup file that holds one number, or `max` (read as `None`).
pub fn parse_max(text: &str) -> Option<u64> {
    let t = text.trim();
    if t == "max" { None } else { t.parse().ok() }
}

/// `key value` lines (memory.stat, cpu.stat, cpuacct.stat, memory.events), in order.
pub fn parse_flat_keyed(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_owned(), v))
        })
        .collect()
}

fn keyed(pairs: &[(String, u64)], key: &str) -> u64 {
    pairs.iter().find(|(k, _)| k == key).map_or(0, |(_, v)| *v)
}

/// The processor time of a container, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuSample {
    pub total: u64,
    /// Per processor (v1 only: `cpuacct.usage_percpu`; empty on v2).
    pub percpu: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

/// The memory of a container, as its controller counts it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemorySample {
    pub usage: u64,
    /// v1's high-water mark (`memory.max_usage_in_bytes`); v2 has none.
    pub max_usage: Option<u64>,
    /// v1: `memory.failcnt`; v2: the `oom` count of `memory.events`.
    pub failcnt: u64,
    /// The limit; `u64::MAX` when there is none (v2's `max`).
    pub limit: u64,
    /// `memory.stat` as the kernel names its counters.
    pub stat: Vec<(String, u64)>,
}

/// One line of a blkio or io file: a device, an operation and a count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// The block I/O counters of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlkioSample {
    /// v1: each `blkio.*` file by the name dockerd gives its list
    /// (`io_service_bytes_recursive`, …).
    V1(Vec<(&'static str, Vec<BlkioEntry>)>),
    /// v2: `io.stat`, per device: read and written bytes.
    V2(Vec<BlkioEntry>),
}

/// Everything `docker stats` shows that the cgroup counts, read at one time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupSample {
    /// The counters are the unified hierarchy's (their names differ from v1's).
    pub v2: bool,
    pub cpu: Option<CpuSample>,
    pub memory: Option<MemorySample>,
    /// `pids.current` and `pids.max` (`None`: no limit).
    pub pids: Option<(u64, Option<u64>)>,
    pub blkio: Option<BlkioSample>,
}

/// The resources an update asks for, as the cgroup files take them; `None` leaves a file
/// alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveResources {
    pub memory: Option<i64>,
    /// Memory plus swap (-1: unlimited).
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// 0: no limit.
    pub pids: Option<i64>,
    pub blkio_weight: Option<u16>,
}

/// How long a freeze may take before it is given up (and undone).
pub const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

impl LiveCgroup {
    /// The cgroup `rel` (as the monitor made it, `sys::cgroups::paths`) in the
    /// hierarchies of `layout`.
    pub fn new(layout: &CgroupLayout, rel: &str) -> Result<LiveCgroup, SysError> {
        let mut v1 = Vec::new();
        let mut v2 = None;
        for h in paths::hierarchies(layout, rel, true)? {
            if h.is_v2() {
                v2 = Some(h.dir);
            } else {
                v1.extend(h.controllers.iter().map(|c| (c.clone(), h.dir.clone())));
            }
        }
        Ok(LiveCgroup {
            v1,
            v2,
            unified_only: layout.version() == 2,
        })
    }

    /// The container's directory of v1 controller `c`.
    fn v1_dir(&self, c: &str) -> Option<&Path> {
        self.v1
            .iter()
            .find(|(name, _)| name == c)
            .map(|(_, d)| d.as_path())
    }

    /// Where controller `c` keeps the container's files, and whether that is v2.
    fn dir_of(&self, c: &str) -> Option<(&Path, bool)> {
        if let Some(d) = self.v1_dir(c) {
            return Some((d, false));
        }
        if self.unified_only {
            return self.v2.as_deref().map(|d| (d, true));
        }
        None
    }

    /// Freezes (`true`) or thaws the container's processes: the v1 freezer where it is
    /// mounted, else cgroup v2's `cgroup.freeze`. Returns once the kernel reports the
    /// new state; a freeze that does not complete within [`FREEZE_TIMEOUT`] is undone.
    pub fn freeze(&self, frozen: bool) -> Result<(), SysError> {
        if let Some(dir) = self.v1_dir("freezer") {
            return freeze_v1(dir, frozen);
        }
        match &self.v2 {
            Some(dir) => freeze_v2(dir, frozen),
            None => Err(SysError::Read {
                path: PathBuf::from("freezer"),
                source: io::Error::new(io::ErrorKind::Unsupported, "no freezer on this host"),
            }),
        }
    }

    /// Whether the container's processes are frozen, as the kernel reports it.
    pub fn is_frozen(&self) -> Result<bool, SysError> {
        if let Some(dir) = self.v1_dir("freezer") {
            return Ok(read(&dir.join("freezer.state"))?.trim() == "FROZEN");
        }
        match &self.v2 {
            Some(dir) => Ok(v2_frozen(&read(&dir.join("cgroup.events"))?)),
            None => Ok(false),
        }
    }

    /// The pids (in the host's pid namespace) of every process in the cgroup and the
    /// cgroups below it: the unified hierarchy's when there is one (every container is
    /// there, on hybrid hosts too), else the first v1 hierarchy's.
    pub fn pids(&self) -> Result<Vec<u32>, SysError> {
        let dir = match &self.v2 {
            Some(d) => d.as_path(),
            None => self
                .v1_dir("pids")
                .or_else(|| self.v1.first().map(|(_, d)| d.as_path()))
                .ok_or_else(|| SysError::Read {
                    path: PathBuf::from("cgroup.procs"),
                    source: io::Error::new(io::ErrorKind::NotFound, "no cgroup hierarchy"),
                })?,
        };
        let mut pids = Vec::new();
        collect_pids(dir, &mut pids)?;
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// Reads the counters of `docker stats`. A controller the host lacks is `None`; a
    /// directory that is gone (the container exited) is an error.
    pub fn sample(&self) -> Result<CgroupSample, SysError> {
        let mut s = CgroupSample {
            v2: self.unified_only,
            ..CgroupSample::default()
        };
        if let Some((dir, v2)) = self.dir_of("memory") {
            s.memory = Some(if v2 { memory_v2(dir)? } else { memory_v1(dir)? });
        }
        if self.unified_only {
            if let Some(dir) = &self.v2 {
                s.cpu = Some(cpu_v2(&read(&dir.join("cpu.stat"))?));
                s.blkio = Some(BlkioSample::V2(
                    fs::read_to_string(dir.join("io.stat"))
                        .map(|t| parse_io_stat(&t))
                        .unwrap_or_default(),
                ));
            }
        } else {
            if let Some(dir) = self.v1_dir("cpuacct") {
                let mut cpu = cpuacct_v1(dir)?;
                if let Some(cpu_dir) = self.v1_dir("cpu") {
                    let stat = fs::read_to_string(cpu_dir.join("cpu.stat")).unwrap_or_default();
                    let stat = parse_flat_keyed(&stat);
                    cpu.periods = keyed(&stat, "nr_periods");
                    cpu.throttled_periods = keyed(&stat, "nr_throttled");
                    cpu.throttled_time = keyed(&stat, "throttled_time");
                }
                s.cpu = Some(cpu);
            }
            if let Some(dir) = self.v1_dir("blkio") {
                s.blkio = Some(BlkioSample::V1(blkio_v1(dir)?));
            }
        }
        if let Some((dir, _)) = self.dir_of("pids") {
            let current = read(&dir.join("pids.current"))?.trim().parse().unwrap_or(0);
            let max = parse_max(&read(&dir.join("pids.max"))?);
            s.pids = Some((current, max));
        }
        Ok(s)
    }

    /// Writes new limits into the live cgroup, in an order the kernel accepts (memory and
    /// memory+swap as runc orders them). The first failure stops it. The settings whose
    /// update means what their create means go through the create's writers
    /// ([`limits::apply_v1`], [`limits::apply_v2`]); memory and the CFS quota are written
    /// here, as an update may lower them, raise them past memory+swap or lift them (-1).
    pub fn apply(&self, r: &LiveResources) -> Result<(), SysError> {
        if let Some((dir, v2)) = self.dir_of("memory") {
            if v2 {
                apply_memory_v2(dir, r)?;
            } else {
                apply_memory_v1(dir, r)?;
            }
        }
        if let Some((dir, v2)) = self.dir_of("cpu") {
            apply_cfs(dir, v2, r)?;
        }
        let l = Limits {
            cpu_shares: r.cpu_shares.unwrap_or(0),
            pids: r.pids.filter(|p| *p > 0).unwrap_or(0),
            cpuset_cpus: r.cpuset_cpus.clone().unwrap_or_default(),
            cpuset_mems: r.cpuset_mems.clone().unwrap_or_default(),
            blkio_weight: r.blkio_weight.unwrap_or(0),
            ..Limits::default()
        };
        let io = if self.unified_only { "io" } else { "blkio" };
        let wanted = [
            ("cpu", l.cpu_shares > 0),
            ("pids", r.pids.is_some()),
            ("cpuset", l.wants_cpuset()),
            (io, l.blkio_weight > 0),
        ];
        for (controller, asked) in wanted {
            if !asked {
                continue;
            }
            let Some((dir, v2)) = self.dir_of(controller) else {
                return Err(missing(controller));
            };
            if !dir.exists() {
                // cpuset and blkio are joined at create only when asked for then.
                return Err(missing(controller));
            }
            if v2 {
                limits::apply_v2(dir, &[controller], &l)?;
            } else {
                limits::apply_v1(dir, &[controller.to_owned()], &l)?;
            }
            if controller == "pids" && l.pids == 0 {
                // The create's writer leaves "no limit" alone; an update lifts one.
                write(&dir.join("pids.max"), "max")?;
            }
        }
        Ok(())
    }
}

fn missing(controller: &str) -> SysError {
    SysError::Write {
        path: PathBuf::from(controller),
        source: io::Error::new(
            io::ErrorKind::Unsupported,
            format!("the container has no {controller} cgroup"),
        ),
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<u32>) -> Result<(), SysError> {
    let text = read(&dir.join("cgroup.procs"))?;
    out.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    // Cgroups made below the container's (by a process inside it); they may vanish.
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                match collect_pids(&e.path(), out) {
                    Ok(()) => {}
                    Err(e) if is_gone(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}

/// The v1 freezer, as runc drives it: the kernel may stay in FREEZING while processes
/// fork, so the write is repeated (with an occasional thaw and pause) until it reports
/// FROZEN; a freeze that never completes is undone.
fn freeze_v1(dir: &Path, frozen: bool) -> Result<(), SysError> {
    let state = dir.join("freezer.state");
    if !frozen {
        return write(&state, "THAWED");
    }
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    let mut round = 0u32;
    loop {
        round += 1;
        if round % 50 == 0 {
            // Let the processes that kept appearing settle, then try again.
            let _ = write(&state, "THAWED");
            std::thread::sleep(Duration::from_millis(10));
        }
        write(&state, "FROZEN")?;
        match read(&state)?.trim() {
            "FROZEN" => return Ok(()),
            _ if Instant::now() >= deadline => {
                let _ = write(&state, "THAWED");
                return Err(SysError::Write {
                    path: state,
                    source: io::Error::new(io::ErrorKind::TimedOut, "stuck in FREEZING"),
                });
            }
            _ => std::thread::sleep(Duration::from_micros(100)),
        }
    }
}

/// `frozen 1` in a cgroup.events text.
fn v2_frozen(events: &str) -> bool {
    parse_flat_keyed(events)
        .iter()
        .any(|(k, v)| k == "frozen" && *v == 1)
}

/// cgroup v2: `cgroup.freeze`, then `cgroup.events` until it says the new state.
fn freeze_v2(dir: &Path, frozen: bool) -> Result<(), SysError> {
    write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
    let events = dir.join("cgroup.events");
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    loop {
        if v2_frozen(&read(&events)?) == frozen {
            return Ok(());
        }
        if Instant::now() >= deadline {
            if frozen {
                let _ = write(&dir.join("cgroup.freeze"), "0");
            }
            return Err(SysError::Write {
                path: events,
                source: io::Error::new(io::ErrorKind::TimedOut, "the freezer did not settle"),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn memory_v1(dir: &Path) -> Result<MemorySample, SysError> {
    let num =
        |f: &str| -> Result<u64, SysError> { Ok(read(&dir.join(f))?.trim().parse().unwrap_or(0)) };
    Ok(MemorySample {
        usage: num("memory.usage_in_bytes")?,
        max_usage: Some(num("memory.max_usage_in_bytes")?),
        failcnt: num("memory.failcnt")?,
        limit: num("memory.limit_in_bytes")?,
        stat: parse_flat_keyed(&read(&dir.join("memory.stat"))?),
    })
}

fn memory_v2(dir: &Path) -> Result<MemorySample, SysError> {
    let events = fs::read_to_string(dir.join("memory.events")).unwrap_or_default();
    Ok(MemorySample {
        usage: read(&dir.join("memory.current"))?
            .trim()
            .parse()
            .unwrap_or(0),
        max_usage: None,
        failcnt: keyed(&parse_flat_keyed(&events), "oom"),
        limit: parse_max(&read(&dir.join("memory.max"))?).unwrap_or(u64::MAX),
        stat: parse_flat_keyed(&read(&dir.join("memory.stat"))?),
    })
}

/// The kernel's USER_HZ: `cpuacct.stat` counts in its ticks (dockerd and containerd take
/// it as the constant it is on Linux).
const CLOCK_TICKS: u64 = 100;

fn cpuacct_v1(dir: &Path) -> Result<CpuSample, SysError> {
    let total = read(&dir.join("cpuacct.usage"))?
        .trim()
        .parse()
        .unwrap_or(0);
    let percpu = read(&dir.join("cpuacct.usage_percpu"))?
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let stat = parse_flat_keyed(&read(&dir.join("cpuacct.stat"))?);
    let ns = |ticks: u64| ticks.saturating_mul(1_000_000_000) / CLOCK_TICKS;
    Ok(CpuSample {
        total,
        percpu,
        kernel: ns(keyed(&stat, "system")),
        user: ns(keyed(&stat, "user")),
        ..CpuSample::default()
    })
}

/// cgroup v2's `cpu.stat` (microseconds) in nanoseconds.
pub fn cpu_v2(text: &str) -> CpuSample {
    let stat = parse_flat_keyed(text);
    let us = |k: &str| keyed(&stat, k).saturating_mul(1000);
    CpuSample {
        total: us("usage_usec"),
        percpu: Vec::new(),
        kernel: us("system_usec"),
        user: us("user_usec"),
        periods: keyed(&stat, "nr_periods"),
        throttled_periods: keyed(&stat, "nr_throttled"),
        throttled_time: us("throttled_usec"),
    }
}

/// The v1 blkio lists as containerd reads them: the CFQ files (`blkio.io_*_recursive`)
/// when the kernel has them and they count anything, else the throttle files.
fn blkio_v1(dir: &Path) -> Result<Vec<(&'static str, Vec<BlkioEntry>)>, SysError> {
    const CFQ: &[(&str, &str)] = &[
        (
            "io_service_bytes_recursive",
            "blkio.io_service_bytes_recursive",
        ),
        ("io_serviced_recursive", "blkio.io_serviced_recursive"),
        ("io_queue_recursive", "blkio.io_queued_recursive"),
        (
            "io_service_time_recursive",
            "blkio.io_service_time_recursive",
        ),
        ("io_wait_time_recursive", "blkio.io_wait_time_recursive"),
        ("io_merged_recursive", "blkio.io_merged_recursive"),
        ("io_time_recursive", "blkio.time_recursive"),
        ("sectors_recursive", "blkio.sectors_recursive"),
    ];
    const THROTTLE: &[(&str, &str)] = &[
        (
            "io_service_bytes_recursive",
            "blkio.throttle.io_service_bytes",
        ),
        ("io_serviced_recursive", "blkio.throttle.io_serviced"),
    ];
    if dir.join("blkio.io_serviced_recursive").exists() {
        let mut lists = Vec::new();
        for (name, file) in CFQ {
            lists.push((*name, parse_blkio(&read(&dir.join(file))?)));
        }
        if lists.iter().any(|(_, l)| !l.is_empty()) {
            return Ok(lists);
        }
    }
    let mut lists = Vec::new();
    for (name, file) in THROTTLE {
        lists.push((*name, parse_blkio(&read(&dir.join(file))?)));
    }
    Ok(lists)
}

/// A v1 blkio file: `8:0 Read 4096` lines (a `Total N` line closes it).
pub fn parse_blkio(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (dev, op, value) = match f.as_slice() {
                [dev, op, value] => (*dev, *op, *value),
                [dev, value] if *dev != "Total" => (*dev, "", *value),
                _ => return None,
            };
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_owned(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// cgroup v2's `io.stat`: `8:0 rbytes=1 wbytes=2 rios=3 …` lines, as dockerd lists them
/// (a `read` and a `write` entry per device).
pub fn parse_io_stat(text: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((major, minor)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        let kv: Vec<(&str, u64)> = it
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                Some((k, v.parse().ok()?))
            })
            .collect();
        let get = |k: &str| kv.iter().find(|(n, _)| *n == k).map_or(0, |(_, v)| *v);
        for (op, key) in [("read", "rbytes"), ("write", "wbytes")] {
            out.push(BlkioEntry {
                major,
                minor,
                op: op.to_owned(),
                value: get(key),
            });
        }
    }
    out
}

/// v1 memory and memory+swap: raising a limit above the current memory limit writes
/// memsw first (the kernel keeps memory ≤ memory+swap), lowering writes memory first.
fn apply_memory_v1(dir: &Path, r: &LiveResources) -> Result<(), SysError> {
    let limit = dir.join("memory.limit_in_bytes");
    let memsw = dir.join("memory.memsw.limit_in_bytes");
    let swap = r.memory_swap.filter(|_| memsw.exists());
    match (r.memory, swap) {
        (Some(m), Some(s)) => {
            let current: u64 = read(&limit)?.trim().parse().unwrap_or(u64::MAX);
            let raise = s == -1 || u64::try_from(s).is_ok_and(|s| current < s);
            if raise {
                write(&memsw, &s.to_string())?;
                write(&limit, &m.to_string())?;
            } else {
                write(&limit, &m.to_string())?;
                write(&memsw, &s.to_string())?;
            }
        }
        (Some(m), None) => write(&limit, &m.to_string())?,
        (None, Some(s)) => write(&memsw, &s.to_string())?,
        (None, None) => {}
    }
    if let Some(res) = r.memory_reservation {
        write(&dir.join("memory.soft_limit_in_bytes"), &res.to_string())?;
    }
    Ok(())
}

/// v2 memory: `memory.max`, `memory.swap.max` (the swap part of memory+swap) and
/// `memory.low` (the reservation).
fn apply_memory_v2(dir: &Path, r: &LiveResources) -> Result<(), SysError> {
    if let Some(m) = r.memory {
        write(&dir.join("memory.max"), &m.to_string())?;
    }
    let swap_file = dir.join("memory.swap.max");
    if let Some(s) = r.memory_swap.filter(|_| swap_file.exists()) {
        let value = if s < 0 {
            "max".to_owned()
        } else {
            let memory = match r.memory {
                Some(m) => m,
                None => parse_max(&read(&dir.join("memory.max"))?)
                    .and_then(|m| i64::try_from(m).ok())
                    .unwrap_or(i64::MAX),
            };
            (s - memory).max(0).to_string()
        };
        write(&swap_file, &value)?;
    }
    if let Some(res) = r.memory_reservation {
        write(&dir.join("memory.low"), &res.to_string())?;
    }
    Ok(())
}

/// The CFS quota and period: v2's `cpu.max` holds both (the part an update does not
/// change is kept), v1 has a file each; a quota of -1 (or 0) lifts the limit.
fn apply_cfs(dir: &Path, v2: bool, r: &LiveResources) -> Result<(), SysError> {
    if r.cpu_quota.is_none() && r.cpu_period.is_none() {
        return Ok(());
    }
    if v2 {
        let current = read(&dir.join("cpu.max"))?;
        let mut it = current.split_whitespace();
        let old_quota = it.next().unwrap_or("max").to_owned();
        let old_period = it.next().unwrap_or("100000").to_owned();
        let quota = match r.cpu_quota {
            Some(q) if q > 0 => q.to_string(),
            Some(_) => "max".to_owned(),
            None => old_quota,
        };
        let period = r
            .cpu_period
            .filter(|p| *p > 0)
            .map_or(old_period, |p| p.to_string());
        return write(&dir.join("cpu.max"), &format!("{quota} {period}"));
    }
    if let Some(p) = r.cpu_period.filter(|p| *p > 0) {
        write(&dir.join("cpu.cfs_period_us"), &p.to_string())?;
    }
    if let Some(q) = r.cpu_quota {
        let q = if q > 0 { q } else { -1 };
        write(&dir.join("cpu.cfs_quota_us"), &q.to_string())?;
    }
    Ok(())
}

/// The host's processor time since boot in nanoseconds (`/proc/stat`'s `cpu` line, its
/// first seven fields), as dockerd computes `system_cpu_usage`.
pub fn system_cpu_usage() -> Result<u64, SysError> {
    let path = Path::new("/proc/stat");
    parse_proc_stat(&read(path)?).ok_or_else(|| SysError::Read {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidData, "no cpu line"),
    })
}

/// The `cpu` line of a /proc/stat text, in nanoseconds.
pub fn parse_proc_stat(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(7)
        .map(|v| v.parse().ok())
        .collect::<Option<Vec<u64>>>()?;
    if fields.len() < 7 {
        return None;
    }
    let ticks: u64 = fields.iter().sum();
    Some(ticks.saturating_mul(1_000_000_000) / CLOCK_TICKS)
}

/// The processors berthd may run on (`sched_getaffinity`), as dockerd counts
/// `online_cpus`.
pub fn online_cpus() -> u32 {
    let Ok(set) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) else {
        return 0;
    };
    let n = (0..nix::sched::CpuSet::count())
        .filter(|i| set.is_set(*i).unwrap_or(false))
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The counters of one network interface, as /proc/net/dev lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetCounters {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// The interfaces of the network namespace of process `pid` (its `/proc/<pid>/net/dev`),
/// but the loopback, which dockerd does not list.
pub fn net_counters(pid: i32) -> Result<Vec<(String, NetCounters)>, SysError> {
    let path = PathBuf::from(format!("/proc/{pid}/net/dev"));
    Ok(parse_net_dev(&read(&path)?)
        .into_iter()
        .filter(|(name, _)| name != "lo")
        .collect())
}

/// A /proc/net/dev text: two header lines, then `name: rx(8 fields) tx(8 fields)`.
pub fn parse_net_dev(text: &str) -> Vec<(String, NetCounters)> {
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let v: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().ok())
                .collect::<Option<Vec<u64>>>()?;
            if v.len() < 12 {
                return None;
            }
            Some((
                name.trim().to_owned(),
                NetCounters {
                    rx_bytes: v[0],
                    rx_packets: v[1],
                    rx_errors: v[2],
                    rx_dropped: v[3],
                    tx_bytes: v[8],
                    tx_packets: v[9],
                    tx_errors: v[10],
                    tx_dropped: v[11],
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout_in(root: &Path, v1: &[&str], unified: bool) -> CgroupLayout {
        CgroupLayout {
            v1: v1.iter().map(|c| ((*c).to_owned(), root.join(c))).collect(),
            unified: unified.then(|| root.join("unified")),
            ..CgroupLayout::default()
        }
    }

    fn put(dir: &Path, name: &str, text: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn max_and_flat_keyed_files() {
        assert_eq!(parse_max("max\n"), None);
        assert_eq!(parse_max("4096\n"), Some(4096));
        let kv = parse_flat_keyed("cache 0\nrss 57344\nbogus\n");
        assert_eq!(kv, vec![("cache".into(), 0), ("rss".into(), 57344)]);
    }

    #[test]
    fn proc_stat_sums_the_first_seven_fields() {
        let text = "cpu  100 2 30 4000 5 6 7 8 0 0\ncpu0 50 1 15 2000 2 3 3 4 0 0\nintr 1\n";
        // (100+2+30+4000+5+6+7) ticks of 10 ms.
        assert_eq!(parse_proc_stat(text), Some(41_500_000_000));
        assert_eq!(parse_proc_stat("cpu 1 2\n"), None);
        assert_eq!(parse_proc_stat(""), None);
    }

    #[test]
    fn net_dev_rows_skip_the_headers() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n  eth0:     896       8    1    2    0     0          0         0       42       3    4    5    0     0       0          0\n";
        let rows = parse_net_dev(text);
        assert_eq!(rows.len(), 2);
        let (name, c) = &rows[1];
        assert_eq!(name, "eth0");
        assert_eq!(
            (c.rx_bytes, c.rx_packets, c.rx_errors, c.rx_dropped),
            (896, 8, 1, 2)
        );
        assert_eq!(
            (c.tx_bytes, c.tx_packets, c.tx_errors, c.tx_dropped),
            (42, 3, 4, 5)
        );
    }

    #[test]
    fn blkio_files_v1_and_v2() {
        let v1 = "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n8:0 Total 4608\nTotal 4608\n";
        let e = parse_blkio(v1);
        assert_eq!(e.len(), 4);
        assert_eq!(
            e[0],
            BlkioEntry {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 4096
            }
        );
        let v2 = "254:0 rbytes=1024 wbytes=2048 rios=1 wios=2 dbytes=0 dios=0\n";
        let e = parse_io_stat(v2);
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].op.as_str(), e[0].value), ("read", 1024));
        assert_eq!((e[1].op.as_str(), e[1].value), ("write", 2048));
        assert_eq!((e[1].major, e[1].minor), (254, 0));
    }

    #[test]
    fn cpu_stat_v2_in_nanoseconds() {
        let c = cpu_v2(
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\nnr_throttled 2\nthrottled_usec 30\n",
        );
        assert_eq!((c.total, c.user, c.kernel), (1_500_000, 1_000_000, 500_000));
        assert_eq!(
            (c.periods, c.throttled_periods, c.throttled_time),
            (7, 2, 30_000)
        );
        assert!(c.percpu.is_empty());
    }

    #[test]
    fn a_v1_sample_reads_each_controllers_files() {
        let t = tempfile::tempdir().unwrap();
        let l = layout_in(
            t.path(),
            &["memory", "cpu", "cpuacct", "pids", "blkio", "freezer"],
            true,
        );
        let rel = "berth/c1";
        let d = |c: &str| t.path().join(c).join(rel);
        put(&d("memory"), "memory.usage_in_bytes", "331776\n");
        put(&d("memory"), "memory.max_usage_in_bytes", "3813376\n");
        put(&d("memory"), "memory.failcnt", "0\n");
        put(&d("memory"), "memory.limit_in_bytes", "67108864\n");
        put(
            &d("memory"),
            "memory.stat",
            "cache 0\ntotal_inactive_file 4096\n",
        );
        put(&d("cpuacct"), "cpuacct.usage", "52845877\n");
        put(
            &d("cpuacct"),
            "cpuacct.usage_percpu",
            "13681986 39163891 \n",
        );
        put(&d("cpuacct"), "cpuacct.stat", "user 3\nsystem 1\n");
        put(
            &d("cpu"),
            "cpu.stat",
            "nr_periods 5\nnr_throttled 1\nthrottled_time 99\n",
        );
        put(&d("pids"), "pids.current", "2\n");
        put(&d("pids"), "pids.max", "max\n");
        put(
            &d("blkio"),
            "blkio.throttle.io_service_bytes",
            "8:0 Read 4096\nTotal 4096\n",
        );
        put(
            &d("blkio"),
            "blkio.throttle.io_serviced",
            "8:0 Read 1\nTotal 1\n",
        );
        let s = LiveCgroup::new(&l, rel).unwrap().sample().unwrap();
        assert!(!s.v2);
        let m = s.memory.unwrap();
        assert_eq!(
            (m.usage, m.max_usage, m.limit),
            (331776, Some(3813376), 67108864)
        );
        let c = s.cpu.unwrap();
        assert_eq!(c.total, 52845877);
        assert_eq!(c.percpu, vec![13681986, 39163891]);
        assert_eq!((c.user, c.kernel), (30_000_000, 10_000_000));
        assert_eq!(
            (c.periods, c.throttled_periods, c.throttled_time),
            (5, 1, 99)
        );
        assert_eq!(s.pids, Some((2, None)));
        let Some(BlkioSample::V1(lists)) = s.blkio else {
            panic!("no v1 blkio");
        };
        assert_eq!(lists[0].0, "io_service_bytes_recursive");
        assert_eq!(lists[0].1[0].value, 4096);
        // The container gone: an error that says so.
        fs::remove_dir_all(d("memory")).unwrap();
        let e = LiveCgroup::new(&l, rel).unwrap().sample().unwrap_err();
        assert!(is_gone(&e), "{e}");
    }

    #[test]
    fn a_v2_sample_and_the_pids_below() {
        let t = tempfile::tempdir().unwrap();
        let l = layout_in(t.path(), &[], true);
        let rel = "berth/c2";
        let d = t.path().join("unified").join(rel);
        put(&d, "memory.current", "8192\n");
        put(&d, "memory.max", "max\n");
        put(&d, "memory.stat", "anon 4096\ninactive_file 0\n");
        put(
            &d,
            "memory.events",
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        );
        put(
            &d,
            "cpu.stat",
            "usage_usec 10\nuser_usec 6\nsystem_usec 4\n",
        );
        put(&d, "pids.current", "3\n");
        put(&d, "pids.max", "50\n");
        put(&d, "cgroup.procs", "10\n12\n");
        put(&d.join("sub"), "cgroup.procs", "11\n");
        let cg = LiveCgroup::new(&l, rel).unwrap();
        let s = cg.sample().unwrap();
        assert!(s.v2);
        let m = s.memory.unwrap();
        assert_eq!(
            (m.usage, m.limit, m.failcnt, m.max_usage),
            (8192, u64::MAX, 1, None)
        );
        assert_eq!(s.pids, Some((3, Some(50))));
        assert_eq!(s.blkio, Some(BlkioSample::V2(Vec::new())));
        assert_eq!(cg.pids().unwrap(), vec![10, 11, 12]);
    }

    #[test]
    fn v1_memory_updates_keep_memory_below_memsw() {
        let t = tempfile::tempdir().unwrap();
        let l = layout_in(t.path(), &["memory"], false);
        let d = t.path().join("memory/berth/c3");
        put(&d, "memory.limit_in_bytes", "67108864\n");
        put(&d, "memory.memsw.limit_in_bytes", "134217728\n");
        put(&d, "memory.soft_limit_in_bytes", "0\n");
        let cg = LiveCgroup::new(&l, "berth/c3").unwrap();
        cg.apply(&LiveResources {
            memory: Some(100 << 20),
            memory_swap: Some(200 << 20),
            memory_reservation: Some(50 << 20),
            ..LiveResources::default()
        })
        .unwrap();
        let r = |f: &str| fs::read_to_string(d.join(f)).unwrap().trim_end().to_owned();
        assert_eq!(r("memory.limit_in_bytes"), (100 << 20).to_string());
        assert_eq!(r("memory.memsw.limit_in_bytes"), (200 << 20).to_string());
        assert_eq!(r("memory.soft_limit_in_bytes"), (50 << 20).to_string());
        // A controller the container has no directory for is refused, not skipped.
        let e = cg
            .apply(&LiveResources {
                cpuset_cpus: Some("0".into()),
                ..LiveResources::default()
            })
            .unwrap_err();
        assert!(e.to_string().contains("cpuset"), "{e}");
    }

    #[test]
    fn v2_cpu_and_pids_updates() {
        let t = tempfile::tempdir().unwrap();
        let l = layout_in(t.path(), &[], true);
        let d = t.path().join("unified/berth/c4");
        put(&d, "cpu.max", "max 100000\n");
        put(&d, "cpu.weight", "");
        put(&d, "pids.max", "max\n");
        put(&d, "memory.max", "max\n");
        put(&d, "memory.swap.max", "max\n");
        let cg = LiveCgroup::new(&l, "berth/c4").unwrap();
        cg.apply(&LiveResources {
            cpu_quota: Some(50_000),
            cpu_shares: Some(1024),
            pids: Some(0),
            memory: Some(64 << 20),
            memory_swap: Some(128 << 20),
            ..LiveResources::default()
        })
        .unwrap();
        let r = |f: &str| fs::read_to_string(d.join(f)).unwrap().trim_end().to_owned();
        assert_eq!(r("cpu.max"), "50000 100000");
        assert_eq!(r("cpu.weight"), "39");
        assert_eq!(r("pids.max"), "max");
        assert_eq!(r("memory.max"), (64 << 20).to_string());
        assert_eq!(r("memory.swap.max"), (64 << 20).to_string());
    }

    #[test]
    fn the_v2_freezer_waits_for_the_events_file() {
        let t = tempfile::tempdir().unwrap();
        let l = layout_in(t.path(), &[], true);
        let d = t.path().join("unified/berth/c5");
        put(&d, "cgroup.freeze", "0\n");
        put(&d, "cgroup.events", "populated 1\nfrozen 1\n");
        let cg = LiveCgroup::new(&l, "berth/c5").unwrap();
        cg.freeze(true).unwrap();
        assert_eq!(
            fs::read_to_string(d.join("cgroup.freeze"))
                .unwrap()
                .trim_end(),
            "1"
        );
        assert!(cg.is_frozen().unwrap());
    }
}
