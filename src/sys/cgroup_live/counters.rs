//! The counters of a container's cgroup as `docker stats` reports them, the host's
//! processor time and the interfaces of a network namespace: readers of the kernel's
//! files, and their parsers as plain functions tested on recorded texts.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::read;
use crate::sys::SysError;

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

pub(super) fn keyed(pairs: &[(String, u64)], key: &str) -> u64 {
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

pub(super) fn memory_v1(dir: &Path) -> Result<MemorySample, SysError> {
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

pub(super) fn memory_v2(dir: &Path) -> Result<MemorySample, SysError> {
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

pub(super) fn cpuacct_v1(dir: &Path) -> Result<CpuSample, SysError> {
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
pub(super) fn blkio_v1(dir: &Path) -> Result<Vec<(&'static str, Vec<BlkioEntry>)>, SysError> {
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
}
