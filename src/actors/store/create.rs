//! Turning a validated create request into a container's Config, and a record into the
//! spec its monitor gets. Plain functions, tested without the actor.

use std::collections::HashMap;
use std::path::Path;

use super::error::StoreError;
use super::state::Container;
use crate::actors::graph::ImageRuntimeConfig;
use crate::model::api::{ContainerConfig, HostConfig, HostConfigCgroupnsModeEnum, ThrottleDevice};
use crate::monitor::spec::{CgroupSpec, ContainerSpec, DeviceSpec, MountSpec, NetworkSpec};

/// The PATH a container gets when neither the image nor the request sets one.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Applies the image's defaults to Config (Docker's merge rules) and returns the
/// container's path and args.
pub fn merge_image(
    config: &mut ContainerConfig,
    image: &ImageRuntimeConfig,
) -> Result<(String, Vec<String>), StoreError> {
    let req_entry = config.entrypoint.take();
    let req_cmd = config.cmd.take();
    // An entrypoint in the request resets the image's Cmd, as in Docker.
    let (entry, cmd) = match (req_entry, req_cmd) {
        (Some(e), c) => (Some(e), c),
        (None, Some(c)) if !c.is_empty() => (image.entrypoint.clone(), Some(c)),
        (None, _) => (image.entrypoint.clone(), image.cmd.clone()),
    };
    let mut argv: Vec<String> = entry.clone().unwrap_or_default();
    argv.extend(cmd.clone().unwrap_or_default());
    config.entrypoint = entry;
    config.cmd = cmd;
    if argv.is_empty() {
        return Err(StoreError::NoCommand);
    }
    // Env: the image's, then the request's, a later key replacing an earlier one. A bare
    // NAME (unset on the client) is kept, as dockerd keeps it.
    let mut env: Vec<String> = image.env.clone().unwrap_or_default();
    for e in config.env.take().unwrap_or_default() {
        let key = e.split('=').next().unwrap_or("").to_owned();
        env.retain(|x| x.split('=').next() != Some(key.as_str()));
        env.push(e);
    }
    config.env = (!env.is_empty()).then_some(env);
    if config.working_dir.as_deref().unwrap_or("").is_empty() && !image.working_dir.is_empty() {
        config.working_dir = Some(image.working_dir.clone());
    }
    if config.user.as_deref().unwrap_or("").is_empty() && !image.user.is_empty() {
        config.user = Some(image.user.clone());
    }
    if let Some(labels) = &image.labels {
        let mut merged: HashMap<String, String> = labels.clone().into_iter().collect();
        merged.extend(config.labels.take().unwrap_or_default());
        config.labels = Some(merged);
    }
    if config.stop_signal.as_deref().unwrap_or("").is_empty() {
        if let Some(sig) = &image.stop_signal {
            config.stop_signal = Some(sig.clone());
        }
    }
    // dockerd's merge: the request's check, its unset parts from the image's.
    if let Some(img) = &image.healthcheck {
        match config.healthcheck.as_mut() {
            None => config.healthcheck = Some(img.clone()),
            Some(own) => {
                if own.test.as_ref().is_none_or(Vec::is_empty) {
                    own.test.clone_from(&img.test);
                }
                let inherit = |v: &mut Option<i64>, from: Option<i64>| {
                    if v.unwrap_or(0) == 0 {
                        *v = from;
                    }
                };
                inherit(&mut own.interval, img.interval);
                inherit(&mut own.timeout, img.timeout);
                inherit(&mut own.start_period, img.start_period);
                inherit(&mut own.retries, img.retries);
            }
        }
    }
    if let Some(vols) = &image.volumes {
        let all = config.volumes.get_or_insert_with(HashMap::new);
        for v in vols.keys() {
            all.entry(v.clone()).or_default();
        }
    }
    if let Some(ports) = &image.exposed_ports {
        let all = config.exposed_ports.get_or_insert_with(HashMap::new);
        for p in ports.keys() {
            all.entry(p.clone()).or_default();
        }
    }
    let path = argv.remove(0);
    Ok((path, argv))
}

/// A container's cgroup, relative to each hierarchy's root.
pub fn cgroup_path(id: &str) -> String {
    format!("berth/{id}")
}

/// A container's cgroup under its `--cgroup-parent` (see `sys::cgroups::paths`).
pub fn container_cgroup_path(id: &str, h: &HostConfig) -> String {
    crate::sys::cgroups::paths::container_path(id, h.cgroup_parent.as_deref().unwrap_or(""))
}

/// The cgroup settings of `h` beyond the basic limits (which `build_spec` sets).
fn cgroup_extras(h: &HostConfig, spec: &mut CgroupSpec) {
    let pairs = |list: &Option<Vec<ThrottleDevice>>| -> Vec<(String, u64)> {
        list.iter()
            .flatten()
            .map(|d| {
                let rate = u64::try_from(d.rate.unwrap_or(0)).unwrap_or(0);
                (d.path.clone().unwrap_or_default(), rate)
            })
            .collect()
    };
    spec.memory_reservation = h.memory_reservation.unwrap_or(0).max(0);
    spec.memory_swappiness = h.memory_swappiness.filter(|s| *s >= 0);
    spec.oom_kill_disable = h.oom_kill_disable.unwrap_or(false);
    spec.cpuset_cpus = h.cpuset_cpus.clone().unwrap_or_default();
    spec.cpuset_mems = h.cpuset_mems.clone().unwrap_or_default();
    spec.blkio_weight = h.blkio_weight.unwrap_or(0);
    spec.blkio_weight_device = h
        .blkio_weight_device
        .iter()
        .flatten()
        .map(|d| {
            let w = u64::try_from(d.weight.unwrap_or(0)).unwrap_or(0);
            (d.path.clone().unwrap_or_default(), w)
        })
        .collect();
    spec.blkio_read_bps = pairs(&h.blkio_device_read_bps);
    spec.blkio_write_bps = pairs(&h.blkio_device_write_bps);
    spec.blkio_read_iops = pairs(&h.blkio_device_read_iops);
    spec.blkio_write_iops = pairs(&h.blkio_device_write_iops);
    spec.devices = h
        .devices
        .iter()
        .flatten()
        .map(|d| DeviceSpec {
            path_on_host: d.path_on_host.clone().unwrap_or_default(),
            path_in_container: d.path_in_container.clone().unwrap_or_default(),
            permissions: d.cgroup_permissions.clone().unwrap_or_default(),
        })
        .collect();
    spec.device_cgroup_rules = h.device_cgroup_rules.clone().unwrap_or_default();
    spec.private_ns = h.cgroupns_mode == Some(HostConfigCgroupnsModeEnum::PRIVATE);
}

/// What the monitor needs to create the container's init.
pub fn build_spec(c: &Container, container_dir: &Path, exec_root: &Path) -> ContainerSpec {
    let cfg = &c.config;
    let h = &c.host_config;
    let text = |s: &Option<String>| s.clone().unwrap_or_default();
    let mut env = cfg.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_owned());
    }
    let hostname = text(&cfg.hostname);
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!("HOSTNAME={hostname}"));
    }
    let tty = cfg.tty.unwrap_or(false);
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_owned());
    }
    let mut args = vec![c.path.clone()];
    args.extend(c.args.iter().cloned());
    let mut mounts = vec![
        file_bind(container_dir.join("resolv.conf"), "/etc/resolv.conf"),
        file_bind(container_dir.join("hostname"), "/etc/hostname"),
        file_bind(container_dir.join("hosts"), "/etc/hosts"),
    ];
    mounts.extend(c.mounts().iter().map(super::mounts::MountPoint::spec));
    let mut tmpfs: Vec<(&String, &String)> = h.tmpfs.iter().flatten().collect();
    tmpfs.sort();
    for (dest, opts) in tmpfs {
        mounts.push(super::mounts::tmpfs_spec(dest, opts, false));
    }
    // Parents first, as dockerd sorts them: a volume at /etc goes under /etc/hosts.
    mounts.sort_by_key(|m| m.destination.trim_end_matches('/').matches('/').count());
    let nano = h.nano_cpus.unwrap_or(0);
    let (cpu_quota, cpu_period) = if nano > 0 {
        (nano / 10_000, 100_000u64)
    } else {
        (
            h.cpu_quota.unwrap_or(0),
            u64::try_from(h.cpu_period.unwrap_or(0)).unwrap_or(0),
        )
    };
    let console = h.console_size.as_deref().unwrap_or(&[]);
    let dim = |i: usize| {
        console
            .get(i)
            .and_then(|d| u16::try_from(*d).ok())
            .unwrap_or(0)
    };
    let mut cgroup = CgroupSpec {
        path: container_cgroup_path(&c.id, h),
        memory: h.memory.unwrap_or(0),
        memory_swap: h.memory_swap.unwrap_or(0),
        pids: h.pids_limit.unwrap_or(0).max(0),
        cpu_quota,
        cpu_period,
        cpu_shares: u64::try_from(h.cpu_shares.unwrap_or(0)).unwrap_or(0),
        ..CgroupSpec::default()
    };
    cgroup_extras(h, &mut cgroup);
    ContainerSpec {
        id: c.id.clone(),
        rootfs: c.rootfs.clone(),
        hostname,
        domainname: text(&cfg.domainname),
        args,
        env,
        cwd: text(&cfg.working_dir),
        user: text(&cfg.user),
        tty,
        open_stdin: cfg.open_stdin.unwrap_or(false),
        stdin_once: cfg.stdin_once.unwrap_or(false),
        log_path: container_dir.join(format!("{}-json.log", c.id)),
        // Checked at create; a record that no longer parses keeps an unbounded json-file.
        log: h
            .log_config
            .as_ref()
            .and_then(|l| {
                crate::model::logconfig::parse_map(
                    l.typ.as_deref().unwrap_or(""),
                    l.config.as_ref(),
                )
                .ok()
            })
            .unwrap_or_default(),
        log_attrs: crate::model::logconfig::extra_attributes(
            h.log_config.as_ref().and_then(|l| l.config.as_ref()),
            cfg.labels.as_ref(),
            cfg.env.as_deref().unwrap_or(&[]),
            || crate::model::logconfig::TagInfo {
                id: c.id.clone(),
                name: c.name.clone(),
                image_id: c.image.clone(),
                image_name: text(&cfg.image),
                command: std::iter::once(c.path.clone())
                    .chain(c.args.iter().cloned())
                    .collect(),
            },
        ),
        state_dir: crate::actors::exec::state_dir(exec_root, &c.id),
        cgroup,
        mounts,
        network: c.network.clone(),
        join_netns: false,
        readonly_rootfs: h.readonly_rootfs.unwrap_or(false),
        shm_size: u64::try_from(h.shm_size.unwrap_or(0)).unwrap_or(0),
        console_size: (dim(0), dim(1)),
        process: Default::default(),
        // Set by the caller: `crate::security::for_container`, which can fail.
        security: Default::default(),
        runtime: text(&h.runtime),
        oci: None,
    }
}

/// The network a container's init gets: the plan for its network mode, or none at all
/// with `NetworkDisabled`.
pub fn effective_network(planned: NetworkSpec, config: &ContainerConfig) -> NetworkSpec {
    if config.network_disabled == Some(true) && planned != NetworkSpec::Host {
        NetworkSpec::None
    } else {
        planned
    }
}

fn file_bind(source: std::path::PathBuf, dest: &str) -> MountSpec {
    MountSpec {
        source,
        destination: dest.to_owned(),
        fstype: "bind".to_owned(),
        options: vec!["rbind".to_owned(), "rprivate".to_owned()],
        copy_up: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn config(cmd: Option<&[&str]>, entry: Option<&[&str]>, env: &[&str]) -> ContainerConfig {
        let list = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        ContainerConfig {
            cmd: cmd.map(list),
            entrypoint: entry.map(list),
            env: (!env.is_empty()).then(|| list(env)),
            ..Default::default()
        }
    }

    #[test]
    fn image_defaults_follow_docker_rules() {
        let image = ImageRuntimeConfig {
            cmd: Some(vec!["sh".into()]),
            entrypoint: None,
            env: Some(vec!["PATH=/bin".into(), "A=1".into()]),
            working_dir: "/w".into(),
            ..Default::default()
        };
        let mut c = config(None, None, &["A=2", "UNSET"]);
        let (path, args) = merge_image(&mut c, &image).unwrap();
        assert_eq!((path.as_str(), args.len()), ("sh", 0));
        assert_eq!(
            c.env,
            Some(vec!["PATH=/bin".into(), "A=2".into(), "UNSET".into()])
        );
        assert_eq!(c.working_dir.as_deref(), Some("/w"));

        let mut c = config(Some(&["echo", "hi"]), None, &[]);
        let (path, args) = merge_image(&mut c, &image).unwrap();
        assert_eq!((path.as_str(), args), ("echo", vec!["hi".to_owned()]));

        let mut c = config(None, Some(&["top"]), &[]);
        let (path, args) = merge_image(&mut c, &image).unwrap();
        assert_eq!((path.as_str(), args.len()), ("top", 0));
        assert_eq!(c.cmd, None);

        let mut c = config(None, None, &[]);
        let e = merge_image(&mut c, &ImageRuntimeConfig::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParameter);
    }

    #[test]
    fn binds() {
        let m = &crate::actors::store::mounts::plan_binds_only(&["/a:/b:ro".into()]).unwrap()[0];
        assert!(m.spec().options.contains(&"ro".to_owned()));
    }
}
