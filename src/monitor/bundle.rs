//! The oci exec driver's bundle: one container's [`ContainerSpec`] as an OCI runtime-spec
//! `config.json` (the `oci-spec` crate's types), for runc or another OCI runtime.
//!
//! It describes the container the native driver's init makes (`monitor::init`,
//! `sys::mounts`): the same namespaces, mounts, device rules, cgroup and limits, masked and
//! read-only paths, capabilities and seccomp filter, so that a container behaves the same
//! under either driver. The monitor has already mounted the rootfs, resolved the user and
//! the environment, listed the host's devices for `--privileged` and attached another
//! container's /dev/shm for `--ipc container:<id>`; [`build`] only translates. The one
//! difference is `--init`: pid 1 is the daemon's static docker-init (tini), bound at
//! [`INIT_IN_CONTAINER`], since the runtime can only exec what the container's root holds.

use std::path::{Path, PathBuf};

use oci_spec::OciSpecError;
use oci_spec::runtime::{
    Arch, Capability, LinuxBlockIoBuilder, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder,
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscallBuilder, LinuxThrottleDevice, LinuxThrottleDeviceBuilder,
    LinuxWeightDeviceBuilder, Mount, MountBuilder, PosixRlimit, PosixRlimitBuilder,
    PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use super::spec::{ContainerSpec, IpcNs, NetworkSpec, PidNs};
use super::user::ExecUser;
use crate::sys::cgroups::{DeviceValue, Limits};
use crate::sys::devices::HostDevice;
use crate::sys::seccomp::{Action, Filter, Op};

/// Where `--init`'s init is bound in the container, and run as pid 1 (dockerd's place
/// for docker-init).
pub const INIT_IN_CONTAINER: &str = "/sbin/docker-init";

/// The OCI runtime-spec version the bundle is written for (runc 1.1 reads 1.0.2).
const OCI_VERSION: &str = "1.0.2";

/// What the monitor worked out for the bundle besides the spec.
#[derive(Debug)]
pub struct Resolved<'a> {
    /// The container's user, from its /etc/passwd and /etc/group.
    pub user: &'a ExecUser,
    /// The final environment (PATH, HOME and HOSTNAME filled in as the native init does).
    pub env: Vec<String>,
    /// The cgroup limits with the devices of the blkio settings looked up, and the nodes
    /// of `--device` (`monitor::cgroup_setup::prepare`, as for the native init).
    pub limits: &'a Limits,
    pub devices: &'a [HostDevice],
    /// The network namespace to join, as a path the runtime can open
    /// (`/proc/<monitor>/fd/<n>`); `None`: a new one (`--network none` without berthd's)
    /// or the host's.
    pub netns_path: Option<PathBuf>,
    /// `--ipc container:<id>`: where the monitor attached that container's /dev/shm in
    /// its own mount namespace (the runtime's namespace is a copy of it).
    pub shm: Option<PathBuf>,
}

fn err(e: OciSpecError) -> String {
    format!("OCI bundle: {e}")
}

/// The container's `config.json`.
pub fn build(spec: &ContainerSpec, r: &Resolved<'_>) -> Result<Spec, String> {
    let init = init_binary(spec)?;
    let user = UserBuilder::default()
        .uid(r.user.uid)
        .gid(r.user.gid)
        .additional_gids(r.user.groups.clone())
        .build()
        .map_err(err)?;
    let caps = caps_of(spec.security.capabilities)?;
    let cwd = if spec.cwd.is_empty() { "/" } else { &spec.cwd };
    // runc refuses an entry without `=`; such a name (unset on the client) has no value
    // for the process to read anyway.
    let env: Vec<String> = r.env.iter().filter(|e| e.contains('=')).cloned().collect();
    // `--init`: dockerd's docker-init as pid 1, the command its child.
    let args = match init {
        Some(_) => [INIT_IN_CONTAINER, "--"]
            .into_iter()
            .map(str::to_owned)
            .chain(spec.args.iter().cloned())
            .collect(),
        None => spec.args.clone(),
    };
    let mut process = ProcessBuilder::default()
        .terminal(spec.tty)
        .user(user)
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(capabilities(caps)?)
        .build()
        .map_err(err)?;
    // oci-spec's defaults are not the native init's (no_new_privs, an RLIMIT_NOFILE of
    // 1024): only what the container asked for. Limits left out are the monitor's, as
    // under the native driver.
    process.set_no_new_privileges(spec.security.no_new_privs.then_some(true));
    let rlimits = rlimits(&spec.process.rlimits)?;
    process.set_rlimits((!rlimits.is_empty()).then_some(rlimits));
    if let Some(adj) = spec.process.oom_score_adj {
        process.set_oom_score_adj(Some(
            i32::try_from(adj)
                .map_err(|_| format!("OCI bundle: oom_score_adj {adj} out of range"))?,
        ));
    }

    let mut builder = SpecBuilder::default()
        .version(OCI_VERSION)
        .root(
            RootBuilder::default()
                .path(spec.rootfs.target.clone())
                .readonly(spec.readonly_rootfs)
                .build()
                .map_err(err)?,
        )
        .mounts(mounts(spec, r, init)?)
        .process(process)
        .linux(linux(spec, r)?);
    if !spec.hostname.is_empty() && !spec.process.uts_host {
        builder = builder.hostname(spec.hostname.clone());
    }
    if !spec.domainname.is_empty() && !spec.process.uts_host {
        builder = builder.domainname(spec.domainname.clone());
    }
    let mut out = builder.build().map_err(err)?;
    if spec.hostname.is_empty() || spec.process.uts_host {
        // Not oci-spec's default ("youki"): runc refuses any hostname in the host's UTS
        // namespace (`--uts host`).
        out.set_hostname(None);
    }
    Ok(out)
}

/// `--init`: the static init the daemon found (`config::find_init`), bound at
/// [`INIT_IN_CONTAINER`]; an error when the daemon found none (a record from a daemon
/// that had one, or made for the native driver).
fn init_binary(spec: &ContainerSpec) -> Result<Option<&Path>, String> {
    if !spec.process.init {
        return Ok(None);
    }
    spec.oci
        .as_ref()
        .and_then(|o| o.init.as_deref())
        .map(Some)
        .ok_or_else(|| {
            "HostConfig.Init (--init) with an OCI runtime needs docker-init or tini-static \
             (a static init; Debian's tini package), and berthd found none in PATH"
                .to_owned()
        })
}

/// `--ulimit` (with the daemon's defaults) as OCI rlimits; -1 is unlimited.
fn rlimits(limits: &[crate::model::ulimit::Ulimit]) -> Result<Vec<PosixRlimit>, String> {
    let value = |v: i64| u64::try_from(v).unwrap_or(u64::MAX);
    limits
        .iter()
        .map(|u| {
            let name = format!("RLIMIT_{}", u.name.to_ascii_uppercase());
            let typ: PosixRlimitType =
                serde_json::from_value(serde_json::Value::String(name.clone()))
                    .map_err(|_| format!("OCI bundle: invalid ulimit type: {}", u.name))?;
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(value(u.soft))
                .hard(value(u.hard))
                .build()
                .map_err(err)
        })
        .collect()
}

/// The bounding, effective and permitted sets; no inheritable or ambient ones (oci-spec's
/// defaults have three), as the native init and Docker.
fn capabilities(
    caps: std::collections::HashSet<Capability>,
) -> Result<oci_spec::runtime::LinuxCapabilities, String> {
    let mut c = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()
        .map_err(err)?;
    c.set_inheritable(None);
    c.set_ambient(None);
    Ok(c)
}

/// The capabilities of a mask (bit `n` is capability `n`) as OCI names.
fn caps_of(mask: u64) -> Result<std::collections::HashSet<Capability>, String> {
    caps::all()
        .into_iter()
        .filter(|c| mask & c.bitmask() != 0)
        .map(|c| {
            serde_json::from_value::<Capability>(serde_json::Value::String(c.to_string()))
                .map_err(|e| format!("OCI bundle: capability {c}: {e}"))
        })
        .collect()
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, String> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| (*o).to_owned()).collect::<Vec<_>>())
        .build()
        .map_err(err)
}

/// The mounts of `sys::mounts::prepare_rootfs`, in Docker's order, then the spec's own
/// (resolv.conf, hostname, hosts, binds), then the init of `--init` (read-only, as
/// dockerd binds docker-init).
fn mounts(
    spec: &ContainerSpec,
    r: &Resolved<'_>,
    init: Option<&Path>,
) -> Result<Vec<Mount>, String> {
    // `--privileged`: /sys writable (`sys::privileged::make_sys_writable`); the cgroupfs
    // stays read-only, as the native init mounts it.
    let sys: &[&str] = if spec.security.privileged {
        &["nosuid", "noexec", "nodev"]
    } else {
        &["nosuid", "noexec", "nodev", "ro"]
    };
    let shm = if spec.shm_size == 0 {
        "size=65536k".to_owned()
    } else {
        format!("size={}", spec.shm_size)
    };
    let mut out = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount("/sys", "sysfs", "sysfs", sys)?,
        // The container's read-only cgroupfs (its own cgroups, or all of its namespace's).
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["ro", "nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
    ];
    match spec.process.ipc {
        IpcNs::Private => out.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm],
        )?),
        // dockerd's: the host's /dev/shm bound in.
        IpcNs::Host => out.push(mount(
            "/dev/shm",
            "bind",
            "/dev/shm",
            &["rbind", "rprivate"],
        )?),
        // Another container's: its tmpfs, which the monitor attached in its own mount
        // namespace (`sys::ipc::clone_shm_of`, as the native init's `bind_shm_of`).
        IpcNs::Join(_) => {
            let shm = r.shm.as_ref().ok_or_else(|| {
                "OCI bundle: the other container's /dev/shm was not attached".to_owned()
            })?;
            out.push(
                MountBuilder::default()
                    .destination("/dev/shm")
                    .typ("bind")
                    .source(shm.clone())
                    .options(vec!["rbind".to_owned(), "rprivate".to_owned()])
                    .build()
                    .map_err(err)?,
            );
        }
        IpcNs::NoShm => {}
    }
    for m in &spec.mounts {
        let mut b = MountBuilder::default()
            .destination(m.destination.as_str())
            .typ(m.fstype.as_str())
            .source(m.source.clone())
            .options(m.options.clone());
        if m.fstype == "bind" && !m.options.iter().any(|o| o == "bind" || o == "rbind") {
            b = b.options([m.options.clone(), vec!["rbind".to_owned()]].concat());
        }
        out.push(b.build().map_err(err)?);
    }
    if let Some(init) = init {
        out.push(
            MountBuilder::default()
                .destination(INIT_IN_CONTAINER)
                .typ("bind")
                .source(init)
                .options(vec!["bind".to_owned(), "ro".to_owned()])
                .build()
                .map_err(err)?,
        );
    }
    Ok(out)
}

/// The container's cgroup path as runc takes it: `berth/<id>` (an absolute
/// `--cgroup-parent`) from each hierarchy's root, written absolute; `./<parent>/<id>` (a
/// relative one) below the caller's own cgroup, which runc's cgroupfs driver does with a
/// relative path, runc being in the monitor's cgroup.
fn cgroups_path(rel: &str) -> PathBuf {
    match rel.strip_prefix("./") {
        Some(below_own) => PathBuf::from(below_own),
        None => PathBuf::from("/").join(rel),
    }
}

fn linux(spec: &ContainerSpec, r: &Resolved<'_>) -> Result<oci_spec::runtime::Linux, String> {
    let ns = |typ| {
        LinuxNamespaceBuilder::default()
            .typ(typ)
            .build()
            .map_err(err)
    };
    let joined = |typ, pid: i32, name: &str| {
        LinuxNamespaceBuilder::default()
            .typ(typ)
            .path(PathBuf::from(format!("/proc/{pid}/ns/{name}")))
            .build()
            .map_err(err)
    };
    // Left out: the host's (`--pid host`, `--ipc host`, `--uts host`).
    let mut namespaces = Vec::new();
    match spec.process.pid {
        PidNs::Private => namespaces.push(ns(LinuxNamespaceType::Pid)?),
        PidNs::Join(pid) => namespaces.push(joined(LinuxNamespaceType::Pid, pid, "pid")?),
        PidNs::Host => {}
    }
    match spec.process.ipc {
        IpcNs::Private | IpcNs::NoShm => namespaces.push(ns(LinuxNamespaceType::Ipc)?),
        IpcNs::Join(pid) => namespaces.push(joined(LinuxNamespaceType::Ipc, pid, "ipc")?),
        IpcNs::Host => {}
    }
    if !spec.process.uts_host {
        namespaces.push(ns(LinuxNamespaceType::Uts)?);
    }
    namespaces.push(ns(LinuxNamespaceType::Mount)?);
    if spec.cgroup.private_ns {
        namespaces.push(ns(LinuxNamespaceType::Cgroup)?);
    }
    if spec.network != NetworkSpec::Host {
        let mut b = LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network);
        if let Some(p) = &r.netns_path {
            b = b.path(p.clone());
        }
        namespaces.push(b.build().map_err(err)?);
    }
    let mut sysctl: std::collections::HashMap<String, String> =
        spec.process.sysctls.iter().cloned().collect();
    if !spec.domainname.is_empty() && !spec.process.uts_host {
        // runc 1.1 ignores the spec's `domainname`: set it in the container's UTS
        // namespace as a sysctl, which every runtime applies.
        sysctl.insert("kernel.domainname".to_owned(), spec.domainname.clone());
    }
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(cgroups_path(&spec.cgroup.path))
        .resources(resources(r.limits)?)
        .devices(devices(r.devices)?)
        .masked_paths(spec.security.masked_paths.clone())
        .readonly_paths(spec.security.readonly_paths.clone());
    if !sysctl.is_empty() {
        linux = linux.sysctl(sysctl);
    }
    let filter = crate::security::filter_for(&spec.security)
        .map_err(|e| format!("OCI bundle: seccomp: {e}"))?;
    if let Some(f) = filter {
        linux = linux.seccomp(seccomp(&f)?);
    }
    linux.build().map_err(err)
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn device_type(kind: char) -> LinuxDeviceType {
    match kind {
        'b' => LinuxDeviceType::B,
        'c' => LinuxDeviceType::C,
        _ => LinuxDeviceType::A,
    }
}

/// The nodes of `--device`, made in the container by the runtime.
fn devices(nodes: &[HostDevice]) -> Result<Vec<LinuxDevice>, String> {
    nodes
        .iter()
        .map(|d| {
            LinuxDeviceBuilder::default()
                .path(d.path.as_str())
                .typ(device_type(d.kind))
                .major(i64::from(d.major))
                .minor(i64::from(d.minor))
                .file_mode(d.mode)
                .uid(d.uid)
                .gid(d.gid)
                .build()
                .map_err(err)
        })
        .collect()
}

/// The device rules of `sys::devices` (deny all, then Docker's default allow-list and the
/// rules of `--device` and `--device-cgroup-rule`) and every limit of `sys::cgroups`.
fn resources(l: &Limits) -> Result<oci_spec::runtime::LinuxResources, String> {
    let mut devices = vec![
        LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .typ(LinuxDeviceType::A)
            .access("rwm")
            .build()
            .map_err(err)?,
    ];
    for r in crate::sys::devices::allow_list(&l.devices) {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(device_type(r.kind))
            .access(r.access.as_str());
        if let Some(m) = r.major {
            b = b.major(i64::from(m));
        }
        if let Some(m) = r.minor {
            b = b.minor(i64::from(m));
        }
        devices.push(b.build().map_err(err)?);
    }

    let mut b = LinuxResourcesBuilder::default().devices(devices);
    let wants_memory =
        l.memory > 0 || l.memory_reservation > 0 || l.swappiness.is_some() || l.oom_kill_disable;
    if wants_memory {
        let mut m = LinuxMemoryBuilder::default();
        if l.memory > 0 {
            m = m.limit(l.memory);
        }
        if l.memory_swap != 0 {
            m = m.swap(l.memory_swap);
        }
        if l.memory_reservation > 0 {
            m = m.reservation(l.memory_reservation);
        }
        if let Some(s) = l.swappiness {
            m = m.swappiness(s);
        }
        if l.oom_kill_disable {
            m = m.disable_oom_killer(true);
        }
        b = b.memory(m.build().map_err(err)?);
    }
    if l.cpu_quota > 0 || l.cpu_shares > 0 || l.wants_cpuset() {
        let mut c = LinuxCpuBuilder::default();
        if l.cpu_quota > 0 {
            c = c.quota(l.cpu_quota);
            if l.cpu_period > 0 {
                c = c.period(l.cpu_period);
            }
        }
        if l.cpu_shares > 0 {
            c = c.shares(l.cpu_shares);
        }
        if !l.cpuset_cpus.is_empty() {
            c = c.cpus(l.cpuset_cpus.clone());
        }
        if !l.cpuset_mems.is_empty() {
            c = c.mems(l.cpuset_mems.clone());
        }
        b = b.cpu(c.build().map_err(err)?);
    }
    if l.pids > 0 {
        b = b.pids(
            LinuxPidsBuilder::default()
                .limit(l.pids)
                .build()
                .map_err(err)?,
        );
    }
    if l.wants_io() {
        let throttle = |list: &[DeviceValue]| -> Result<Vec<LinuxThrottleDevice>, String> {
            list.iter()
                .map(|d| {
                    LinuxThrottleDeviceBuilder::default()
                        .major(int(d.major))
                        .minor(int(d.minor))
                        .rate(d.value)
                        .build()
                        .map_err(err)
                })
                .collect()
        };
        let mut io = LinuxBlockIoBuilder::default();
        if l.blkio_weight > 0 {
            io = io.weight(l.blkio_weight);
        }
        if !l.blkio_weight_device.is_empty() {
            let weights = l
                .blkio_weight_device
                .iter()
                .map(|d| {
                    LinuxWeightDeviceBuilder::default()
                        .major(int(d.major))
                        .minor(int(d.minor))
                        .weight(u16::try_from(d.value).unwrap_or(u16::MAX))
                        .build()
                        .map_err(err)
                })
                .collect::<Result<Vec<_>, String>>()?;
            io = io.weight_device(weights);
        }
        if !l.read_bps.is_empty() {
            io = io.throttle_read_bps_device(throttle(&l.read_bps)?);
        }
        if !l.write_bps.is_empty() {
            io = io.throttle_write_bps_device(throttle(&l.write_bps)?);
        }
        if !l.read_iops.is_empty() {
            io = io.throttle_read_iops_device(throttle(&l.read_iops)?);
        }
        if !l.write_iops.is_empty() {
            io = io.throttle_write_iops_device(throttle(&l.write_iops)?);
        }
        b = b.block_io(io.build().map_err(err)?);
    }
    b.build().map_err(err)
}

/// An action in OCI form, with its errno (or trace value).
fn action(a: Action) -> (LinuxSeccompAction, Option<u32>) {
    match a {
        Action::Allow => (LinuxSeccompAction::ScmpActAllow, None),
        Action::Errno(e) => (LinuxSeccompAction::ScmpActErrno, Some(u32::from(e))),
        Action::KillThread => (LinuxSeccompAction::ScmpActKillThread, None),
        Action::KillProcess => (LinuxSeccompAction::ScmpActKillProcess, None),
        Action::Trap => (LinuxSeccompAction::ScmpActTrap, None),
        Action::Trace(v) => (LinuxSeccompAction::ScmpActTrace, Some(u32::from(v))),
        Action::Log => (LinuxSeccompAction::ScmpActLog, None),
    }
}

/// The container's resolved seccomp filter (Docker's default profile or its own, for its
/// capabilities, as `security` compiles it for the native init) as OCI rules, which the
/// runtime compiles with libseccomp as dockerd's runc does.
fn seccomp(f: &Filter) -> Result<LinuxSeccomp, String> {
    let arches = f
        .arches
        .iter()
        .map(|a| {
            serde_json::from_value::<Arch>(serde_json::Value::String(a.clone()))
                .map_err(|_| format!("OCI bundle: seccomp architecture {a}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut syscalls = Vec::with_capacity(f.rules.len());
    for rule in &f.rules {
        let (act, errno) = action(rule.action);
        let mut b = LinuxSyscallBuilder::default()
            .names(rule.names.clone())
            .action(act);
        if let Some(e) = errno {
            b = b.errno_ret(e);
        }
        if !rule.args.is_empty() {
            let args = rule
                .args
                .iter()
                .map(|c| {
                    // runc's reading of MASKED_EQ: `value` is the mask, `valueTwo` what
                    // the masked argument equals.
                    let (op, value, two) = match c.op {
                        Op::NotEqual => (LinuxSeccompOperator::ScmpCmpNe, c.value, 0),
                        Op::Less => (LinuxSeccompOperator::ScmpCmpLt, c.value, 0),
                        Op::LessOrEqual => (LinuxSeccompOperator::ScmpCmpLe, c.value, 0),
                        Op::Equal => (LinuxSeccompOperator::ScmpCmpEq, c.value, 0),
                        Op::GreaterEqual => (LinuxSeccompOperator::ScmpCmpGe, c.value, 0),
                        Op::Greater => (LinuxSeccompOperator::ScmpCmpGt, c.value, 0),
                        Op::MaskedEqual { mask } => {
                            (LinuxSeccompOperator::ScmpCmpMaskedEq, mask, c.value)
                        }
                    };
                    LinuxSeccompArgBuilder::default()
                        .index(usize::try_from(c.index).unwrap_or(0))
                        .value(value)
                        .value_two(two)
                        .op(op)
                        .build()
                        .map_err(err)
                })
                .collect::<Result<Vec<_>, _>>()?;
            b = b.args(args);
        }
        syscalls.push(b.build().map_err(err)?);
    }
    let (default_action, default_errno) = action(f.default_action);
    let mut b = LinuxSeccompBuilder::default()
        .default_action(default_action)
        .architectures(arches)
        .syscalls(syscalls);
    if let Some(e) = default_errno {
        b = b.default_errno_ret(e);
    }
    b.build().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::spec::{CgroupSpec, MountSpec, RootfsSpec};
    use serde_json::{Value, json};

    fn spec() -> ContainerSpec {
        ContainerSpec {
            id: "abc".into(),
            rootfs: RootfsSpec {
                fstype: "overlay".into(),
                source: "overlay".into(),
                options: "lowerdir=/l,upperdir=/u,workdir=/w".into(),
                target: "/data/overlay2/x/merged".into(),
            },
            hostname: "abc".into(),
            domainname: String::new(),
            args: vec!["sh".into(), "-c".into(), "true".into()],
            env: Vec::new(),
            cwd: String::new(),
            user: String::new(),
            tty: true,
            open_stdin: true,
            stdin_once: false,
            log_path: "/l.log".into(),
            log: Default::default(),
            log_attrs: None,
            state_dir: "/run/berth/containers/abc".into(),
            cgroup: CgroupSpec {
                path: "berth/abc".into(),
                memory: 64 << 20,
                memory_swap: 128 << 20,
                pids: 50,
                cpu_quota: 50_000,
                cpu_period: 100_000,
                cpu_shares: 512,
                layout: None,
                ..CgroupSpec::default()
            },
            mounts: vec![MountSpec {
                source: "/host/dir".into(),
                destination: "/data".into(),
                fstype: "bind".into(),
                options: vec!["rbind".into(), "rprivate".into(), "ro".into()],
                copy_up: false,
            }],
            network: NetworkSpec::None,
            join_netns: true,
            readonly_rootfs: true,
            shm_size: 1 << 20,
            console_size: (0, 0),
            process: Default::default(),
            // What berthd gives a container that asks for nothing.
            security: crate::security::for_container(
                &crate::model::api::HostConfig::default(),
                crate::security::DaemonDefaults::default(),
            )
            .unwrap(),
            runtime: "runc".into(),
            oci: None,
        }
    }

    fn json_of(spec: &ContainerSpec, netns: Option<&str>) -> Value {
        let user = ExecUser {
            uid: 1000,
            gid: 100,
            groups: vec![10, 20],
            home: "/home/u".into(),
        };
        let cg = &spec.cgroup;
        let limits = Limits {
            memory: cg.memory,
            memory_swap: cg.memory_swap,
            pids: cg.pids,
            cpu_quota: cg.cpu_quota,
            cpu_period: cg.cpu_period,
            cpu_shares: cg.cpu_shares,
            ..Limits::default()
        };
        let r = Resolved {
            user: &user,
            limits: &limits,
            devices: &[],
            env: vec!["PATH=/bin".into(), "BARE".into()],
            netns_path: netns.map(PathBuf::from),
            shm: None,
        };
        serde_json::to_value(build(spec, &r).unwrap()).unwrap()
    }

    #[test]
    fn the_bundle_says_what_the_native_init_does() {
        let v = json_of(&spec(), Some("/proc/7/fd/5"));
        assert_eq!(v["ociVersion"], "1.0.2");
        assert_eq!(
            v["root"],
            json!({"path": "/data/overlay2/x/merged", "readonly": true})
        );
        assert_eq!(v["hostname"], "abc");
        assert!(v.get("domainname").is_none());
        let p = &v["process"];
        assert_eq!(p["terminal"], true);
        assert_eq!(
            p["user"],
            json!({"uid": 1000, "gid": 100, "additionalGids": [10, 20]})
        );
        assert_eq!(p["args"], json!(["sh", "-c", "true"]));
        assert_eq!(p["env"], json!(["PATH=/bin"]), "a bare name is left out");
        assert_eq!(p["cwd"], "/");
        let mut eff: Vec<String> =
            serde_json::from_value(p["capabilities"]["effective"].clone()).unwrap();
        eff.sort();
        assert_eq!(eff.len(), crate::sys::caps::DEFAULT_CAPS.len());
        assert!(eff.contains(&"CAP_NET_BIND_SERVICE".to_owned()), "{eff:?}");
        assert!(p["capabilities"].get("inheritable").is_none());
        assert!(p["capabilities"].get("ambient").is_none());
        assert!(
            p.get("rlimits").is_none(),
            "the monitor's limits are inherited"
        );
        assert!(p.get("noNewPrivileges").is_none());

        let l = &v["linux"];
        assert_eq!(l["cgroupsPath"], "/berth/abc");
        assert_eq!(
            l["namespaces"],
            json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                   {"type": "network", "path": "/proc/7/fd/5"}])
        );
        let res = &l["resources"];
        assert_eq!(res["memory"], json!({"limit": 67108864, "swap": 134217728}));
        assert_eq!(
            res["cpu"],
            json!({"shares": 512, "quota": 50000, "period": 100000})
        );
        assert_eq!(res["pids"], json!({"limit": 50}));
        assert_eq!(
            res["devices"][0],
            json!({"allow": false, "access": "rwm", "type": "a"})
        );
        assert_eq!(
            l["maskedPaths"].as_array().unwrap().len(),
            crate::model::spec::DEFAULT_MASKED_PATHS.len()
        );
        // Docker's default profile: an allow-list, the rest refused with EPERM.
        assert_eq!(l["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(l["seccomp"]["defaultErrnoRet"], 1);
        let allowed = |name: &str| {
            l["seccomp"]["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| {
                    r["action"] == "SCMP_ACT_ALLOW"
                        && r.get("args").is_none()
                        && r["names"].as_array().unwrap().contains(&json!(name))
                })
        };
        assert!(allowed("read"));
        assert!(!allowed("unshare"), "CAP_SYS_ADMIN is not a default");
        assert!(!allowed("mount"));
        // clone is allowed only without namespace flags: a masked-equal rule as runc
        // reads it (value the mask, valueTwo the datum).
        let clone = l["seccomp"]["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["names"].as_array().unwrap().contains(&json!("clone")))
            .unwrap();
        assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(clone["args"][0]["valueTwo"], 0);
        assert_ne!(clone["args"][0]["value"], 0);

        let mounts = v["mounts"].as_array().unwrap();
        let dests: Vec<&str> = mounts
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/dev/shm",
                "/data"
            ]
        );
        assert!(
            mounts[6]["options"]
                .as_array()
                .unwrap()
                .contains(&json!("size=1048576"))
        );
        assert_eq!(mounts[7]["options"], json!(["rbind", "rprivate", "ro"]));
    }

    #[test]
    fn host_network_and_no_limits_leave_things_out() {
        let mut s = spec();
        s.network = NetworkSpec::Host;
        s.cgroup = CgroupSpec {
            path: "berth/abc".into(),
            ..CgroupSpec::default()
        };
        s.domainname = "example.org".into();
        s.cwd = "/work".into();
        let v = json_of(&s, None);
        let l = &v["linux"];
        assert!(
            !l["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "network")
        );
        assert_eq!(v["hostname"], "abc");
        // --uts host: no hostname at all (runc refuses one without a UTS namespace).
        let mut uts = s.clone();
        uts.process.uts_host = true;
        let u = json_of(&uts, None);
        assert!(u.get("hostname").is_none(), "{}", u["hostname"]);
        assert!(
            !u["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "uts")
        );
        for key in ["memory", "cpu", "pids"] {
            assert!(l["resources"].get(key).is_none(), "{key}");
        }
        assert_eq!(v["domainname"], "example.org");
        assert_eq!(v["linux"]["sysctl"]["kernel.domainname"], "example.org");
        assert_eq!(v["process"]["cwd"], "/work");
        // A new network namespace when berthd made none (the runtime brings up lo).
        s.network = NetworkSpec::None;
        let v = json_of(&s, None);
        assert!(
            v["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .contains(&json!({"type": "network"}))
        );
    }

    #[test]
    fn the_cgroup_settings_devices_and_cgroupns_are_in_the_bundle() {
        use crate::sys::devices::DeviceRule;
        let mut s = spec();
        s.cgroup.private_ns = true;
        s.cgroup.path = "./mine/abc".into();
        let user = ExecUser {
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            home: "/root".into(),
        };
        let limits = Limits {
            memory: 64 << 20,
            memory_swap: 128 << 20,
            memory_reservation: 32 << 20,
            swappiness: Some(10),
            oom_kill_disable: true,
            cpuset_cpus: "0".into(),
            cpuset_mems: "0".into(),
            blkio_weight: 300,
            blkio_weight_device: vec![DeviceValue {
                major: 8,
                minor: 0,
                value: 200,
            }],
            read_bps: vec![DeviceValue {
                major: 8,
                minor: 0,
                value: 1 << 20,
            }],
            devices: vec![DeviceRule::parse("c 1:3 rw").unwrap()],
            ..Limits::default()
        };
        let nodes = [HostDevice {
            host_path: "/dev/null".into(),
            path: "/dev/mynull".into(),
            kind: 'c',
            major: 1,
            minor: 3,
            mode: 0o666,
            uid: 0,
            gid: 0,
            access: "rw".into(),
        }];
        let r = Resolved {
            user: &user,
            limits: &limits,
            devices: &nodes,
            env: Vec::new(),
            netns_path: None,
            shm: None,
        };
        let v = serde_json::to_value(build(&s, &r).unwrap()).unwrap();
        let l = &v["linux"];
        assert_eq!(
            l["cgroupsPath"], "mine/abc",
            "relative: below runc's own cgroup"
        );
        assert!(
            l["namespaces"]
                .as_array()
                .unwrap()
                .contains(&json!({"type": "cgroup"}))
        );
        let res = &l["resources"];
        assert_eq!(
            res["memory"],
            json!({"limit": 67108864, "swap": 134217728, "reservation": 33554432,
                   "swappiness": 10, "disableOOMKiller": true})
        );
        assert_eq!(res["cpu"]["cpus"], "0");
        assert_eq!(res["cpu"]["mems"], "0");
        assert_eq!(res["blockIO"]["weight"], 300);
        assert_eq!(
            res["blockIO"]["weightDevice"],
            json!([{"major": 8, "minor": 0, "weight": 200}])
        );
        assert_eq!(
            res["blockIO"]["throttleReadBpsDevice"],
            json!([{"major": 8, "minor": 0, "rate": 1048576}])
        );
        let devices = res["devices"].as_array().unwrap();
        assert_eq!(
            devices.last().unwrap(),
            &json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"})
        );
        assert_eq!(
            l["devices"],
            json!([{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
                    "fileMode": 438, "uid": 0, "gid": 0}])
        );
    }

    fn resolved<'a>(
        user: &'a ExecUser,
        limits: &'a Limits,
        devices: &'a [HostDevice],
    ) -> Resolved<'a> {
        Resolved {
            user,
            limits,
            devices,
            env: Vec::new(),
            netns_path: None,
            shm: None,
        }
    }

    fn root_user() -> ExecUser {
        ExecUser {
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            home: "/root".into(),
        }
    }

    fn mount_at<'v>(v: &'v Value, dest: &str) -> Option<&'v Value> {
        v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == dest)
    }

    #[test]
    fn privileged_is_every_capability_device_and_no_filter_or_masks() {
        let mut s = spec();
        let h = crate::model::api::HostConfig {
            privileged: Some(true),
            ..Default::default()
        };
        s.security =
            crate::security::for_container(&h, crate::security::DaemonDefaults::default()).unwrap();
        // What the monitor hands the bundle for a privileged container.
        let mut limits = Limits::default();
        crate::monitor::cgroup_setup::allow_every_device(&mut limits);
        let nodes = [HostDevice {
            host_path: "/dev/sda".into(),
            path: "/dev/sda".into(),
            kind: 'b',
            major: 8,
            minor: 0,
            mode: 0o660,
            uid: 0,
            gid: 6,
            access: "rwm".into(),
        }];
        let user = root_user();
        let v =
            serde_json::to_value(build(&s, &resolved(&user, &limits, &nodes)).unwrap()).unwrap();
        let p = &v["process"];
        let eff = p["capabilities"]["effective"].as_array().unwrap();
        assert_eq!(
            eff.len(),
            usize::try_from(crate::security::host().bounding.count_ones()).unwrap(),
            "berthd's bounding set"
        );
        assert_eq!(
            p["capabilities"]["bounding"],
            p["capabilities"]["effective"]
        );
        let l = &v["linux"];
        assert!(l.get("seccomp").is_none(), "no filter");
        assert!(l.get("maskedPaths").is_none_or(|m| m == &json!([])), "{l}");
        assert!(
            l.get("readonlyPaths").is_none_or(|m| m == &json!([])),
            "{l}"
        );
        assert_eq!(
            l["resources"]["devices"]
                .as_array()
                .unwrap()
                .last()
                .unwrap(),
            &json!({"allow": true, "type": "a", "access": "rwm"})
        );
        assert_eq!(l["devices"][0]["path"], "/dev/sda");
        assert_eq!(l["devices"][0]["type"], "b");
        // /sys writable; the cgroupfs read-only, as the native init mounts it.
        let sys = mount_at(&v, "/sys").unwrap();
        assert!(!sys["options"].as_array().unwrap().contains(&json!("ro")));
        let cg = mount_at(&v, "/sys/fs/cgroup").unwrap();
        assert!(cg["options"].as_array().unwrap().contains(&json!("ro")));
        // Not privileged: /sys read-only.
        let v = json_of(&spec(), None);
        let sys = mount_at(&v, "/sys").unwrap();
        assert!(sys["options"].as_array().unwrap().contains(&json!("ro")));
    }

    #[test]
    fn init_runs_the_daemons_docker_init_as_pid_1() {
        let mut s = spec();
        s.process.init = true;
        let (user, limits) = (root_user(), Limits::default());
        // The daemon found no static init: a start refuses by name.
        let e = build(&s, &resolved(&user, &limits, &[])).unwrap_err();
        assert!(e.contains("HostConfig.Init (--init)"), "{e}");
        s.oci = Some(crate::monitor::spec::OciRuntimeSpec {
            name: "runc".into(),
            binary: "/usr/sbin/runc".into(),
            args: Vec::new(),
            root: "/run/berth/runtime-runc".into(),
            init: Some("/usr/bin/tini-static".into()),
        });
        let v = serde_json::to_value(build(&s, &resolved(&user, &limits, &[])).unwrap()).unwrap();
        assert_eq!(
            v["process"]["args"],
            json!(["/sbin/docker-init", "--", "sh", "-c", "true"])
        );
        assert_eq!(
            mount_at(&v, "/sbin/docker-init").unwrap(),
            &json!({"destination": "/sbin/docker-init", "type": "bind",
                    "source": "/usr/bin/tini-static", "options": ["bind", "ro"]})
        );
        // Without --init, the command alone and no mount.
        s.process.init = false;
        let v = serde_json::to_value(build(&s, &resolved(&user, &limits, &[])).unwrap()).unwrap();
        assert_eq!(v["process"]["args"], json!(["sh", "-c", "true"]));
        assert!(mount_at(&v, "/sbin/docker-init").is_none());
    }

    #[test]
    fn ipc_container_joins_its_namespace_and_binds_its_shm() {
        let mut s = spec();
        s.process.ipc = IpcNs::Join(42);
        let (user, limits) = (root_user(), Limits::default());
        let e = build(&s, &resolved(&user, &limits, &[])).unwrap_err();
        assert!(e.contains("/dev/shm"), "{e}");
        let mut r = resolved(&user, &limits, &[]);
        r.shm = Some("/run/berth/containers/abc/shm".into());
        let v = serde_json::to_value(build(&s, &r).unwrap()).unwrap();
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        assert!(
            ns.contains(&json!({"type": "ipc", "path": "/proc/42/ns/ipc"})),
            "{ns:?}"
        );
        assert_eq!(
            mount_at(&v, "/dev/shm").unwrap(),
            &json!({"destination": "/dev/shm", "type": "bind",
                    "source": "/run/berth/containers/abc/shm", "options": ["rbind", "rprivate"]})
        );
        // --ipc none: a namespace of its own, no /dev/shm; host: neither.
        s.process.ipc = IpcNs::NoShm;
        let v = serde_json::to_value(build(&s, &resolved(&user, &limits, &[])).unwrap()).unwrap();
        assert!(
            v["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .contains(&json!({"type": "ipc"}))
        );
        assert!(mount_at(&v, "/dev/shm").is_none());
        s.process.ipc = IpcNs::Host;
        let v = serde_json::to_value(build(&s, &resolved(&user, &limits, &[])).unwrap()).unwrap();
        assert!(
            !v["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "ipc")
        );
    }
}
