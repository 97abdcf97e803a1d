//! A container's cgroup settings as the monitor prepares them before the clone (the
//! limits, with the devices of `--device` and of the blkio settings looked up on the
//! host), and the init's share of them: the device nodes, its cgroupfs and its cgroup
//! namespace.
//!
//! The monitor creates the v1 cgroups and moves the init into them while the init makes
//! its mounts; then it writes [`CGROUPS_READY`] on the init's sync pipe, and later
//! [`GO`]. With the host's cgroup namespace the init never waits for the first: it binds
//! its cgroup directories (making them if the monitor has not yet) before `pivot_root`.
//! With a namespace of its own it must be in its cgroups before `unshare`, so it waits,
//! as late as it can: after `pivot_root` and its other mounts, just before "go". On a
//! v2-only host an init born in its cgroup does not wait at all.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::spec::CgroupSpec;
use crate::sys::SysError;
use crate::sys::cgroupfs::{self, CgroupfsPlan};
use crate::sys::cgroups::{CgroupLayout, DeviceValue, Limits};
use crate::sys::devices::{self, DeviceRule, HostDevice};

/// Written by the monitor once the init is in all its cgroups.
pub const CGROUPS_READY: u8 = 2;
/// Written by the monitor when the init may exec.
pub const GO: u8 = 1;

/// What the monitor prepared for one container.
#[derive(Debug)]
pub struct Prepared {
    pub limits: Limits,
    pub init: InitCgroup,
    /// The container's v1 cgroup directories, which the init may make before the monitor
    /// does (removed with the others if the start fails).
    pub v1_dirs: Vec<PathBuf>,
}

/// The init's share.
#[derive(Debug, Default)]
pub struct InitCgroup {
    /// The nodes of `--device`.
    pub devices: Vec<HostDevice>,
    pub cgroupfs: CgroupfsPlan,
    /// Born in its only cgroup (v2-only host, `CLONE_INTO_CGROUP`): nothing to wait for.
    pub in_place: bool,
}

fn device_values(list: &[(String, u64)]) -> Result<Vec<DeviceValue>, SysError> {
    list.iter()
        .map(|(path, value)| {
            let (major, minor) =
                devices::device_numbers(Path::new(path)).map_err(|source| SysError::Stat {
                    path: PathBuf::from(path),
                    source,
                })?;
            Ok(DeviceValue {
                major,
                minor,
                value: *value,
            })
        })
        .collect()
}

/// The limits of `spec` and the init's share, for a host of `layout`.
pub fn prepare(spec: &CgroupSpec, layout: &CgroupLayout) -> Result<Prepared, SysError> {
    let mut nodes = Vec::new();
    for d in &spec.devices {
        let access = if d.permissions.is_empty() {
            "rwm"
        } else {
            d.permissions.as_str()
        };
        let target = if d.path_in_container.is_empty() {
            d.path_on_host.as_str()
        } else {
            d.path_in_container.as_str()
        };
        nodes.extend(devices::devices_from_path(&d.path_on_host, target, access)?);
    }
    let mut rules: Vec<DeviceRule> = nodes.iter().map(HostDevice::rule).collect();
    for text in &spec.device_cgroup_rules {
        let rule = DeviceRule::parse(text).ok_or_else(|| SysError::Write {
            path: PathBuf::from("devices.allow"),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid device cgroup format '{text}'"),
            ),
        })?;
        rules.push(rule);
    }
    let limits = Limits {
        memory: spec.memory,
        memory_swap: spec.memory_swap,
        pids: spec.pids,
        cpu_quota: spec.cpu_quota,
        cpu_period: spec.cpu_period,
        cpu_shares: spec.cpu_shares,
        memory_reservation: spec.memory_reservation,
        swappiness: spec.memory_swappiness.and_then(|s| u64::try_from(s).ok()),
        oom_kill_disable: spec.oom_kill_disable,
        cpuset_cpus: spec.cpuset_cpus.clone(),
        cpuset_mems: spec.cpuset_mems.clone(),
        blkio_weight: spec.blkio_weight,
        blkio_weight_device: device_values(&spec.blkio_weight_device)?,
        read_bps: device_values(&spec.blkio_read_bps)?,
        write_bps: device_values(&spec.blkio_write_bps)?,
        read_iops: device_values(&spec.blkio_read_iops)?,
        write_iops: device_values(&spec.blkio_write_iops)?,
        devices: rules,
    };
    let cgroupfs = CgroupfsPlan::new(layout, &spec.path, limits.wants_cpuset(), spec.private_ns)?;
    let v1_dirs = cgroupfs
        .mounts
        .iter()
        .filter(|m| !m.controllers.is_empty())
        .map(|m| m.host_dir.clone())
        .collect();
    Ok(Prepared {
        limits,
        init: InitCgroup {
            devices: nodes,
            cgroupfs,
            in_place: false,
        },
        v1_dirs,
    })
}

/// `--privileged`: every device allowed in the devices cgroup (`a *:* rwm`, as runc's
/// privileged rule), after the rules of `limits`.
pub fn allow_every_device(limits: &mut Limits) {
    limits.devices.push(DeviceRule {
        kind: 'a',
        major: None,
        minor: None,
        access: "rwm".to_owned(),
    });
}

/// In the init, before `pivot_root` (the rootfs at `root`): the device nodes, and the
/// cgroupfs when the container shares the host's cgroup namespace.
pub fn before_pivot(root: &Path, c: &InitCgroup) -> Result<(), SysError> {
    devices::create_nodes(root, &c.devices)?;
    if !c.cgroupfs.private_ns {
        cgroupfs::mount_host_view(root, &c.cgroupfs)?;
    }
    Ok(())
}

/// In the init, after `pivot_root`: with a cgroup namespace of its own, waits until it is
/// in its cgroups, then makes the namespace and mounts its cgroupfs. `Ok(false)`: the
/// monitor went away.
pub fn after_pivot(sync: &OwnedFd, c: &InitCgroup) -> Result<bool, SysError> {
    if !c.cgroupfs.private_ns {
        return Ok(true);
    }
    if !c.in_place && !wait_for(sync, CGROUPS_READY) {
        return Ok(false);
    }
    cgroupfs::mount_private_view(&c.cgroupfs)?;
    Ok(true)
}

/// Reads the sync pipe until `byte` comes (skipping the others); false at its end.
pub fn wait_for(sync: &OwnedFd, byte: u8) -> bool {
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(sync.as_raw_fd(), &mut b) {
            Ok(1) if b[0] == byte => return true,
            Ok(1) => {}
            Err(nix::errno::Errno::EINTR) => {}
            _ => return false,
        }
    }
}
