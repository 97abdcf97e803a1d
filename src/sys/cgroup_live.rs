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

mod counters;

pub use counters::{
    BlkioEntry, BlkioSample, CgroupSample, CpuSample, MemorySample, NetCounters, cpu_v2,
    net_counters, online_cpus, parse_blkio, parse_flat_keyed, parse_io_stat, parse_max,
    parse_net_dev, parse_proc_stat, system_cpu_usage,
};
use counters::{blkio_v1, cpuacct_v1, keyed, memory_v1, memory_v2};

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
