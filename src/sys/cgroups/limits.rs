//! Writing a container's limits into its cgroup directories: the v1 files of each
//! controller, and the v2 files of the unified hierarchy.

use std::fs;
use std::io;
use std::path::Path;

use super::{Limits, SysError, shares_to_weight, write_file};
use crate::sys::devices;

/// A value for one block device (`major:minor`): a weight or a throttle rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceValue {
    pub major: u64,
    pub minor: u64,
    pub value: u64,
}

impl DeviceValue {
    fn line(&self, value: u64) -> String {
        format!("{}:{} {value}", self.major, self.minor)
    }
}

fn exists(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

/// The first of `files` that `dir` has (the BFQ file before the generic one, as runc
/// chooses), or the last one when it has none (its write then fails and names it).
fn first_of<'a>(dir: &Path, files: &[&'a str]) -> &'a str {
    files
        .iter()
        .copied()
        .find(|f| exists(dir, f))
        .unwrap_or(files[files.len() - 1])
}

fn unsupported(dir: &Path, what: &str) -> SysError {
    SysError::Write {
        path: dir.to_path_buf(),
        source: io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{what} is not supported on cgroup v2"),
        ),
    }
}

/// `--blkio-weight` (10..1000) to cgroup v2 `io.weight` (1..10000), as runc converts.
pub fn blkio_to_io_weight(weight: u64) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (weight.clamp(10, 1000) - 10) * 9999 / 990
}

/// Writes `limits` into `dir`, a container's directory in the v1 hierarchy of
/// `controllers`.
pub fn apply_v1(dir: &Path, controllers: &[String], l: &Limits) -> Result<(), SysError> {
    let has = |c: &str| controllers.iter().any(|x| x == c);
    if has("memory") {
        if l.memory > 0 {
            write_file(&dir.join("memory.limit_in_bytes"), &l.memory.to_string())?;
            // After the memory limit: memsw may not be below it. Present only with swap
            // accounting, which the create's checks ask for.
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            if l.memory_swap != 0 && memsw.exists() {
                write_file(&memsw, &l.memory_swap.to_string())?;
            }
        }
        if l.memory_reservation > 0 {
            write_file(
                &dir.join("memory.soft_limit_in_bytes"),
                &l.memory_reservation.to_string(),
            )?;
        }
        if let Some(s) = l.swappiness {
            write_file(&dir.join("memory.swappiness"), &s.to_string())?;
        }
        if l.oom_kill_disable {
            write_file(&dir.join("memory.oom_control"), "1")?;
        }
    }
    if has("pids") && l.pids > 0 {
        write_file(&dir.join("pids.max"), &l.pids.to_string())?;
    }
    if has("cpu") {
        if l.cpu_quota > 0 {
            if l.cpu_period > 0 {
                write_file(&dir.join("cpu.cfs_period_us"), &l.cpu_period.to_string())?;
            }
            write_file(&dir.join("cpu.cfs_quota_us"), &l.cpu_quota.to_string())?;
        }
        if l.cpu_shares > 0 {
            write_file(&dir.join("cpu.shares"), &l.cpu_shares.to_string())?;
        }
    }
    if has("cpuset") {
        if !l.cpuset_cpus.is_empty() {
            write_file(&dir.join("cpuset.cpus"), &l.cpuset_cpus)?;
        }
        if !l.cpuset_mems.is_empty() {
            write_file(&dir.join("cpuset.mems"), &l.cpuset_mems)?;
        }
    }
    if has("blkio") {
        if l.blkio_weight > 0 {
            let f = first_of(dir, &["blkio.bfq.weight", "blkio.weight"]);
            write_file(&dir.join(f), &l.blkio_weight.to_string())?;
        }
        if !l.blkio_weight_device.is_empty() {
            let f = first_of(dir, &["blkio.bfq.weight_device", "blkio.weight_device"]);
            for d in &l.blkio_weight_device {
                write_file(&dir.join(f), &d.line(d.value))?;
            }
        }
        for (file, list) in [
            ("blkio.throttle.read_bps_device", &l.read_bps),
            ("blkio.throttle.write_bps_device", &l.write_bps),
            ("blkio.throttle.read_iops_device", &l.read_iops),
            ("blkio.throttle.write_iops_device", &l.write_iops),
        ] {
            for d in list {
                write_file(&dir.join(file), &d.line(d.value))?;
            }
        }
    }
    if has("devices") {
        write_file(&dir.join("devices.deny"), "a")?;
        for rule in devices::allow_list(&l.devices) {
            write_file(&dir.join("devices.allow"), &rule.to_v1())?;
        }
    }
    Ok(())
}

/// The v2 controllers `l` needs beyond memory, pids and cpu (which every container gets
/// where the host has them).
pub fn extra_v2_controllers(l: &Limits) -> Vec<&'static str> {
    let mut out = Vec::new();
    if !l.cpuset_cpus.is_empty() || !l.cpuset_mems.is_empty() {
        out.push("cpuset");
    }
    if l.wants_io() {
        out.push("io");
    }
    out
}

/// Writes `limits` into `dir`, a container's directory in the unified hierarchy, where
/// the controllers `enabled` are on.
pub fn apply_v2(dir: &Path, enabled: &[&str], l: &Limits) -> Result<(), SysError> {
    let has = |c: &str| enabled.contains(&c);
    if has("memory") {
        // The v1-only memory files (a hybrid host keeps memory in v1).
        if l.swappiness.is_some() {
            return Err(unsupported(dir, "memory swappiness"));
        }
        if l.oom_kill_disable {
            return Err(unsupported(dir, "disabling the OOM killer"));
        }
        if l.memory > 0 {
            write_file(&dir.join("memory.max"), &l.memory.to_string())?;
            // v2 counts swap apart from memory: the swap part of memory+swap.
            let swap = dir.join("memory.swap.max");
            if l.memory_swap != 0 && swap.exists() {
                let value = if l.memory_swap < 0 {
                    "max".to_owned()
                } else {
                    (l.memory_swap - l.memory).max(0).to_string()
                };
                write_file(&swap, &value)?;
            }
        }
        if l.memory_reservation > 0 {
            write_file(&dir.join("memory.low"), &l.memory_reservation.to_string())?;
        }
    }
    if has("pids") && l.pids > 0 {
        write_file(&dir.join("pids.max"), &l.pids.to_string())?;
    }
    if has("cpu") {
        if l.cpu_quota > 0 {
            let period = if l.cpu_period > 0 {
                l.cpu_period
            } else {
                100_000
            };
            write_file(&dir.join("cpu.max"), &format!("{} {period}", l.cpu_quota))?;
        }
        if l.cpu_shares > 0 {
            let w = shares_to_weight(l.cpu_shares);
            write_file(&dir.join("cpu.weight"), &w.to_string())?;
        }
    }
    if has("cpuset") {
        if !l.cpuset_cpus.is_empty() {
            write_file(&dir.join("cpuset.cpus"), &l.cpuset_cpus)?;
        }
        if !l.cpuset_mems.is_empty() {
            write_file(&dir.join("cpuset.mems"), &l.cpuset_mems)?;
        }
    }
    if has("io") {
        let bfq = exists(dir, "io.bfq.weight");
        if l.blkio_weight > 0 {
            let (file, w) = if bfq {
                ("io.bfq.weight", u64::from(l.blkio_weight))
            } else {
                ("io.weight", blkio_to_io_weight(u64::from(l.blkio_weight)))
            };
            write_file(&dir.join(file), &w.to_string())?;
        }
        for d in &l.blkio_weight_device {
            let (file, w) = if bfq {
                ("io.bfq.weight", d.value)
            } else {
                ("io.weight", blkio_to_io_weight(d.value))
            };
            write_file(&dir.join(file), &d.line(w))?;
        }
        for line in io_max_lines(l) {
            write_file(&dir.join("io.max"), &line)?;
        }
    }
    Ok(())
}

/// The `io.max` lines of the four throttles: one per device, its limits together.
fn io_max_lines(l: &Limits) -> Vec<String> {
    let mut devices: Vec<(u64, u64, String)> = Vec::new();
    for (key, list) in [
        ("rbps", &l.read_bps),
        ("wbps", &l.write_bps),
        ("riops", &l.read_iops),
        ("wiops", &l.write_iops),
    ] {
        for d in list {
            let entry = match devices
                .iter_mut()
                .find(|(ma, mi, _)| (*ma, *mi) == (d.major, d.minor))
            {
                Some(e) => e,
                None => {
                    devices.push((d.major, d.minor, format!("{}:{}", d.major, d.minor)));
                    let last = devices.len() - 1;
                    &mut devices[last]
                }
            };
            entry.2.push_str(&format!(" {key}={}", d.value));
        }
    }
    devices.into_iter().map(|(_, _, line)| line).collect()
}

/// A new v1 cpuset cgroup has no CPUs and no memory nodes, and takes no task until it
/// has some: fills `cpuset.cpus` and `cpuset.mems` of every directory from below `mount`
/// down to `dir` that has them empty with its parent's, as runc does.
pub fn fill_cpuset_ancestors(mount: &Path, dir: &Path) -> Result<(), SysError> {
    let Ok(rest) = dir.strip_prefix(mount) else {
        return Ok(());
    };
    let mut parent = mount.to_path_buf();
    for comp in rest.components() {
        let cur = parent.join(comp);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let mine = fs::read_to_string(cur.join(file)).unwrap_or_default();
            if mine.trim().is_empty() {
                let theirs = fs::read_to_string(parent.join(file)).unwrap_or_default();
                write_file(&cur.join(file), theirs.trim())?;
            }
        }
        parent = cur;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dv(major: u64, minor: u64, value: u64) -> DeviceValue {
        DeviceValue {
            major,
            minor,
            value,
        }
    }

    /// A fake cgroup directory: the files a kernel would offer, empty.
    fn fake(files: &[&str]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for f in files {
            fs::write(t.path().join(f), "").unwrap();
        }
        t
    }

    fn read(dir: &Path, f: &str) -> String {
        fs::read_to_string(dir.join(f)).unwrap()
    }

    #[test]
    fn v1_files_of_each_controller() {
        let d = fake(&[
            "memory.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.swappiness",
            "memory.oom_control",
            "cpuset.cpus",
            "cpuset.mems",
            "blkio.weight",
            "blkio.weight_device",
            "blkio.throttle.read_bps_device",
            "blkio.throttle.write_iops_device",
            "devices.allow",
            "devices.deny",
        ]);
        let l = Limits {
            memory: 64 << 20,
            memory_reservation: 32 << 20,
            swappiness: Some(10),
            oom_kill_disable: true,
            cpuset_cpus: "0".into(),
            cpuset_mems: "0".into(),
            blkio_weight: 300,
            blkio_weight_device: vec![dv(8, 0, 200)],
            read_bps: vec![dv(8, 0, 1 << 20)],
            write_iops: vec![dv(8, 0, 100)],
            devices: vec![devices::DeviceRule::parse("c 1:11 r").unwrap()],
            ..Default::default()
        };
        let ctrls: Vec<String> = ["memory", "cpuset", "blkio", "devices"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        apply_v1(d.path(), &ctrls, &l).unwrap();
        let p = d.path();
        assert_eq!(read(p, "memory.limit_in_bytes"), "67108864");
        assert_eq!(read(p, "memory.soft_limit_in_bytes"), "33554432");
        assert_eq!(read(p, "memory.swappiness"), "10");
        assert_eq!(read(p, "memory.oom_control"), "1");
        assert_eq!(read(p, "cpuset.cpus"), "0");
        assert_eq!(read(p, "blkio.weight"), "300");
        assert_eq!(read(p, "blkio.weight_device"), "8:0 200");
        assert_eq!(read(p, "blkio.throttle.read_bps_device"), "8:0 1048576");
        assert_eq!(read(p, "blkio.throttle.write_iops_device"), "8:0 100");
        assert_eq!(read(p, "devices.deny"), "a");
        // A plain file keeps the longest of the rules written at its start; the kernel's
        // file takes each write as one rule.
        assert!(read(p, "devices.allow").starts_with("c 1:11 r"));
    }

    #[test]
    fn v1_prefers_the_bfq_weight_and_names_a_missing_file() {
        let d = fake(&["blkio.bfq.weight"]);
        let ctrls = vec!["blkio".to_owned()];
        let l = Limits {
            blkio_weight: 500,
            ..Default::default()
        };
        apply_v1(d.path(), &ctrls, &l).unwrap();
        assert_eq!(read(d.path(), "blkio.bfq.weight"), "500");
        let none = tempfile::tempdir().unwrap();
        let e = apply_v1(none.path(), &ctrls, &l).unwrap_err();
        assert!(e.to_string().contains("blkio.weight"), "{e}");
    }

    #[test]
    fn v2_files_of_each_controller() {
        let d = fake(&[
            "memory.max",
            "memory.low",
            "cpuset.cpus",
            "cpuset.mems",
            "io.weight",
            "io.max",
            "pids.max",
            "cpu.max",
        ]);
        let l = Limits {
            memory: 64 << 20,
            memory_reservation: 32 << 20,
            pids: 50,
            cpu_quota: 50_000,
            cpu_period: 100_000,
            cpuset_cpus: "0-1".into(),
            cpuset_mems: "0".into(),
            blkio_weight: 1000,
            read_bps: vec![dv(8, 0, 1 << 20)],
            write_bps: vec![dv(8, 16, 2048)],
            read_iops: vec![dv(8, 0, 10)],
            ..Default::default()
        };
        let enabled = ["memory", "pids", "cpu", "cpuset", "io"];
        apply_v2(d.path(), &enabled, &l).unwrap();
        let p = d.path();
        assert_eq!(read(p, "memory.max"), "67108864");
        assert_eq!(read(p, "memory.low"), "33554432");
        assert_eq!(read(p, "pids.max"), "50");
        assert_eq!(read(p, "cpu.max"), "50000 100000");
        assert_eq!(read(p, "cpuset.cpus"), "0-1");
        assert_eq!(read(p, "io.weight"), "10000");
        assert!(read(p, "io.max").starts_with("8:16 wbps=2048"));
        assert_eq!(
            io_max_lines(&l),
            ["8:0 rbps=1048576 riops=10", "8:16 wbps=2048"]
        );
        assert_eq!(extra_v2_controllers(&l), ["cpuset", "io"]);
    }

    #[test]
    fn v2_takes_bfq_weights_raw_and_refuses_v1_only_settings() {
        let d = fake(&["io.bfq.weight"]);
        let l = Limits {
            blkio_weight: 300,
            ..Default::default()
        };
        apply_v2(d.path(), &["io"], &l).unwrap();
        assert_eq!(read(d.path(), "io.bfq.weight"), "300");
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        for l in [
            Limits {
                swappiness: Some(0),
                ..Default::default()
            },
            Limits {
                oom_kill_disable: true,
                ..Default::default()
            },
        ] {
            let e = apply_v2(d.path(), &["memory"], &l).unwrap_err();
            assert!(crate::util::error_chain(&e).contains("not supported on cgroup v2"));
        }
    }

    #[test]
    fn cpuset_ancestors_get_their_parents_cpus() {
        let root = fake(&["cpuset.cpus", "cpuset.mems"]);
        fs::write(root.path().join("cpuset.cpus"), "0-3\n").unwrap();
        fs::write(root.path().join("cpuset.mems"), "0\n").unwrap();
        let leaf = root.path().join("berth/x");
        fs::create_dir_all(&leaf).unwrap();
        for d in [root.path().join("berth"), leaf.clone()] {
            fs::write(d.join("cpuset.cpus"), "\n").unwrap();
            fs::write(d.join("cpuset.mems"), "").unwrap();
        }
        fs::write(leaf.join("cpuset.cpus"), "1").unwrap();
        fill_cpuset_ancestors(root.path(), &leaf).unwrap();
        assert_eq!(read(&root.path().join("berth"), "cpuset.cpus"), "0-3");
        assert_eq!(read(&root.path().join("berth"), "cpuset.mems"), "0");
        assert_eq!(read(&leaf, "cpuset.cpus"), "1", "kept");
        assert_eq!(read(&leaf, "cpuset.mems"), "0");
    }
}
