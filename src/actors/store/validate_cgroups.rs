//! The cgroup checks of a create that depend on what the host's hierarchies offer:
//! cpusets (dockerd's availability checks, in its words), the block I/O device settings,
//! the devices and device rules, and the cgroup namespace. Where dockerd drops a value the
//! host cannot honour with a warning, berthd refuses it, naming the field, with dockerd's
//! warning as the reason.

use super::error::StoreError;
use super::validate::{HostCaps, cannot, invalid};
use crate::model::api::{HostConfig, HostConfigCgroupnsModeEnum, ThrottleDevice};
use crate::sys::devices::DeviceRule;

/// Checks `h` against `host`, after dockerd's resource checks.
pub fn check(h: &HostConfig, host: &HostCaps) -> Result<(), StoreError> {
    check_cpuset(h, host)?;
    check_blkio_devices(h, host)?;
    check_devices(h)?;
    if h.cgroupns_mode == Some(HostConfigCgroupnsModeEnum::PRIVATE) && !host.cgroups.cgroupns {
        return Err(cannot(
            "HostConfig.CgroupnsMode",
            "Your kernel does not support cgroup namespaces",
        ));
    }
    Ok(())
}

/// A cpuset list (`0-3,5`) as dockerd's `parsers.ParseUintList` reads it; `maximum` (when
/// not 0) bounds its numbers.
pub fn parse_list(val: &str, maximum: u64) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    if val.is_empty() {
        return Ok(out);
    }
    let invalid_format = || format!("invalid format: {val}");
    let number = |s: &str| -> Result<u64, String> {
        // Go's Atoi takes a sign; a negative number is never a CPU.
        s.strip_prefix('+')
            .unwrap_or(s)
            .parse::<u64>()
            .map_err(|_| invalid_format())
    };
    let bounded = |v: u64| -> Result<u64, String> {
        if maximum != 0 && v > maximum {
            Err(format!("value of out range, maximum is {maximum}"))
        } else {
            Ok(v)
        }
    };
    for r in val.split(',') {
        match r.split_once('-') {
            None => out.push(bounded(number(r)?)?),
            Some((a, b)) => {
                let (a, b) = (number(a)?, number(b)?);
                if b < a {
                    return Err(invalid_format());
                }
                bounded(b)?;
                out.extend(a..=b);
            }
        }
    }
    Ok(out)
}

/// dockerd's `isCpusetListAvailable`: `Ok(false)` when `provided` names one that
/// `available` does not.
fn list_available(provided: &str, available: &str) -> Result<bool, String> {
    let have = parse_list(available, 0)?;
    let max = have.iter().copied().max().unwrap_or(0).max(8192);
    let want = parse_list(provided, max)?;
    Ok(want.iter().all(|w| have.contains(w)))
}

fn check_cpuset(h: &HostConfig, host: &HostCaps) -> Result<(), StoreError> {
    let cpus = h.cpuset_cpus.as_deref().unwrap_or("");
    let mems = h.cpuset_mems.as_deref().unwrap_or("");
    if (!cpus.is_empty() || !mems.is_empty()) && !host.cgroups.cpuset {
        let field = if cpus.is_empty() {
            "HostConfig.CpusetMems"
        } else {
            "HostConfig.CpusetCpus"
        };
        return Err(cannot(
            field,
            "Your kernel does not support cpuset or the cgroup is not mounted",
        ));
    }
    match list_available(cpus, &host.cgroups.cpus) {
        Err(e) => {
            return Err(invalid(format!(
                "Invalid value {cpus} for cpuset cpus: {e}"
            )));
        }
        Ok(false) => {
            return Err(invalid(format!(
                "Requested CPUs are not available - requested {cpus}, available: {}",
                host.cgroups.cpus
            )));
        }
        Ok(true) => {}
    }
    match list_available(mems, &host.cgroups.mems) {
        Err(e) => Err(invalid(format!(
            "Invalid value {mems} for cpuset mems: {e}"
        ))),
        Ok(false) => Err(invalid(format!(
            "Requested memory nodes are not available - requested {mems}, available: {}",
            host.cgroups.mems
        ))),
        Ok(true) => Ok(()),
    }
}

/// The per-device block I/O settings: the host must offer them (dockerd's warnings as
/// the reasons), and each entry must name a device under /dev with a value the kernel
/// takes (the CLI's checks, in its words).
fn check_blkio_devices(h: &HostConfig, host: &HostCaps) -> Result<(), StoreError> {
    let c = &host.cgroups;
    let weights = h.blkio_weight_device.as_deref().unwrap_or(&[]);
    if !weights.is_empty() && !c.blkio_weight_device {
        return Err(cannot(
            "HostConfig.BlkioWeightDevice",
            "Your kernel does not support Block I/O weight_device or the cgroup is not mounted",
        ));
    }
    for d in weights {
        let path = d.path.as_deref().unwrap_or("");
        let weight = d.weight.unwrap_or(0);
        check_device_path(path)?;
        if !(10..=1000).contains(&weight) {
            return Err(invalid(format!(
                "invalid weight for device: {path}:{weight}"
            )));
        }
    }
    let throttles: [(&str, &Option<Vec<ThrottleDevice>>, &str); 4] = [
        (
            "HostConfig.BlkioDeviceReadBps",
            &h.blkio_device_read_bps,
            "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted",
        ),
        (
            "HostConfig.BlkioDeviceWriteBps",
            &h.blkio_device_write_bps,
            "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted",
        ),
        (
            "HostConfig.BlkioDeviceReadIOps",
            &h.blkio_device_read_iops,
            "Your kernel does not support IOPS Block read limit or the cgroup is not mounted",
        ),
        (
            "HostConfig.BlkioDeviceWriteIOps",
            &h.blkio_device_write_iops,
            "Your kernel does not support IOPS Block write limit or the cgroup is not mounted",
        ),
    ];
    for (field, list, reason) in throttles {
        let list = list.as_deref().unwrap_or(&[]);
        if !list.is_empty() && !c.blkio_throttle {
            return Err(cannot(field, reason));
        }
        for d in list {
            let path = d.path.as_deref().unwrap_or("");
            check_device_path(path)?;
            let rate = d.rate.unwrap_or(0);
            if rate < 0 {
                return Err(invalid(format!(
                    "invalid rate for device: {path}:{rate}. Number must be a positive integer"
                )));
            }
        }
    }
    Ok(())
}

fn check_device_path(path: &str) -> Result<(), StoreError> {
    if path.starts_with("/dev/") {
        Ok(())
    } else {
        Err(invalid(format!("bad format for device path: {path}")))
    }
}

/// `--device` and `--device-cgroup-rule`: the CLI's and dockerd's format checks.
fn check_devices(h: &HostConfig) -> Result<(), StoreError> {
    for d in h.devices.iter().flatten() {
        let host = d.path_on_host.as_deref().unwrap_or("");
        let ctr = d.path_in_container.as_deref().unwrap_or("");
        let perms = d.cgroup_permissions.as_deref().unwrap_or("");
        let spec = format!("{host}:{ctr}:{perms}");
        let perms_ok = perms.is_empty()
            || (perms.len() <= 3
                && perms.bytes().all(|b| matches!(b, b'r' | b'w' | b'm'))
                && !perms
                    .bytes()
                    .enumerate()
                    .any(|(i, b)| perms.as_bytes()[..i].contains(&b)));
        if host.is_empty() || !perms_ok {
            return Err(invalid(format!("invalid device specification: {spec}")));
        }
        for p in [host, ctr] {
            if !p.is_empty() && !p.starts_with('/') {
                return Err(invalid(format!("{p} is not an absolute path")));
            }
        }
    }
    for rule in h.device_cgroup_rules.iter().flatten() {
        if DeviceRule::parse(rule).is_none() {
            return Err(invalid(format!("invalid device cgroup format '{rule}'")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_as_dockerd_parses_them() {
        assert_eq!(parse_list("0-2,5", 0).unwrap(), [0, 1, 2, 5]);
        assert_eq!(parse_list("", 0).unwrap(), Vec::<u64>::new());
        assert_eq!(parse_list("1-x", 0).unwrap_err(), "invalid format: 1-x");
        assert_eq!(parse_list("3-1", 0).unwrap_err(), "invalid format: 3-1");
        assert_eq!(
            parse_list("9000", 8192).unwrap_err(),
            "value of out range, maximum is 8192"
        );
        assert!(list_available("0", "0-1").unwrap());
        assert!(!list_available("0-2", "0-1").unwrap());
        assert!(list_available("", "0-1").unwrap());
    }
}
