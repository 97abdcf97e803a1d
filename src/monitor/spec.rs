//! What berthd hands a monitor: everything needed to create one container's init.
//!
//! The spec travels as one JSON document over the monitor's control socket, so that the
//! start path writes no file for it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The rootfs and mount types live in the model, so that `sys` can take them without
/// importing the monitor.
pub use crate::model::spec::{MountSpec, RootfsSpec, SecuritySpec};

/// One container, as the monitor creates it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The full 64-hex-digit container id.
    pub id: String,
    /// The root filesystem mount, made by the init inside its new mount namespace.
    pub rootfs: RootfsSpec,
    /// The UTS hostname (Docker: the short id, unless `--hostname`).
    pub hostname: String,
    pub domainname: String,
    /// argv; `args[0]` is looked up in the container's `PATH` when it has no `/`.
    pub args: Vec<String>,
    /// `KEY=value` entries, already merged from the image and the create request.
    pub env: Vec<String>,
    /// Working directory inside the container ("" means `/`).
    pub cwd: String,
    /// `uid[:gid]` or `name[:group]`, resolved against the container's /etc/passwd and
    /// /etc/group ("" means root).
    pub user: String,
    /// Allocate a pty for stdio (`docker run -t`).
    pub tty: bool,
    /// Keep stdin open (`-i`); without it the container's stdin is /dev/null.
    pub open_stdin: bool,
    /// Close the container's stdin when the first attached client closes its stdin.
    pub stdin_once: bool,
    /// The json-file log the monitor appends to (`containers/<id>/<id>-json.log`).
    pub log_path: PathBuf,
    /// The log driver and the json-file rotation (`HostConfig.LogConfig`).
    #[serde(default)]
    pub log: crate::model::logconfig::LogSpec,
    /// The `attrs` of each json-file entry (`--log-opt labels`, `env`, …).
    #[serde(default)]
    pub log_attrs: Option<super::proto::LogAttrs>,
    /// The container's runtime dir under the exec root: the monitor's socket, its pid file
    /// and the exit status live here.
    pub state_dir: PathBuf,
    /// The container's cgroup and limits.
    pub cgroup: CgroupSpec,
    /// Extra mounts made after the rootfs, in order (hosts, hostname, resolv.conf, volumes).
    pub mounts: Vec<MountSpec>,
    /// The network namespace the container joins.
    pub network: NetworkSpec,
    /// The init joins the network namespace whose descriptor is the first one sent with
    /// the spec (made and wired by berthd ahead of the start) instead of creating one.
    #[serde(default)]
    pub join_netns: bool,
    /// Mount the rootfs read-only (`--read-only`).
    pub readonly_rootfs: bool,
    /// The size of `/dev/shm` in bytes (0: Docker's 64 MiB).
    #[serde(default)]
    pub shm_size: u64,
    /// The pty's rows and columns before the first resize (0: the kernel's default).
    #[serde(default)]
    pub console_size: (u16, u16),
    /// The process settings: groups, limits, sysctls, OOM score, the init, and the
    /// namespaces shared with the host or another container (`monitor::settings`).
    #[serde(default)]
    pub process: ProcessSpec,
    /// Capabilities, seccomp, no_new_privs, masked and read-only paths, privileged
    /// (`crate::security::for_container`).
    #[serde(default)]
    pub security: SecuritySpec,
    /// `HostConfig.Runtime`: `native`, or the name of an OCI runtime of the daemon's
    /// ("": the daemon's default).
    #[serde(default)]
    pub runtime: String,
    /// The OCI runtime that runs the container (the oci exec driver), filled in by the
    /// exec actor from the daemon's runtimes; `None`: the monitor clones the init itself.
    #[serde(default)]
    pub oci: Option<OciRuntimeSpec>,
}

/// The process settings of a container (`--group-add`, `--ulimit`, `--sysctl`,
/// `--oom-score-adj`, `--init`, `--pid`, `--ipc`, `--uts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// Supplementary groups by name or gid, looked up in the container's /etc/group.
    #[serde(default)]
    pub group_add: Vec<String>,
    /// Resource limits, the daemon's defaults merged in.
    #[serde(default)]
    pub rlimits: Vec<crate::model::ulimit::Ulimit>,
    /// `key`, `value`, in key order.
    #[serde(default)]
    pub sysctls: Vec<(String, String)>,
    #[serde(default)]
    pub oom_score_adj: Option<i64>,
    /// Run the command under a reaper that stays pid 1 (`--init`).
    #[serde(default)]
    pub init: bool,
    #[serde(default)]
    pub pid: PidNs,
    #[serde(default)]
    pub ipc: IpcNs,
    /// Share the host's UTS namespace (`--uts host`): no hostname is set.
    #[serde(default)]
    pub uts_host: bool,
}

/// Which PID namespace the container gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PidNs {
    /// Its own (the default).
    #[default]
    Private,
    /// The host's (`--pid host`).
    Host,
    /// That of the process with this host pid, another container's init
    /// (`--pid container:<id>`).
    Join(i32),
}

/// Which IPC namespace, and which /dev/shm, the container gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum IpcNs {
    /// Its own with its own /dev/shm (`private`, `shareable`, the default).
    #[default]
    Private,
    /// Its own, without /dev/shm (`none`).
    NoShm,
    /// The host's, with the host's /dev/shm (`host`).
    Host,
    /// That of the process with this host pid, another container's init, with its
    /// /dev/shm (`container:<id>`).
    Join(i32),
}

/// An OCI runtime binary and where it keeps its state: the monitor runs
/// `<binary> <args…> --root <root> create|start|delete …` on a bundle it writes in the
/// container's state dir (see `monitor::oci`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OciRuntimeSpec {
    /// The runtime's name, as `HostConfig.Runtime` gives it.
    pub name: String,
    pub binary: PathBuf,
    /// Put before the command (daemon.json `runtimeArgs`).
    #[serde(default)]
    pub args: Vec<String>,
    /// The runtime's state root: `<exec-root>/runtime-<name>`.
    pub root: PathBuf,
    /// The static init bound at `/sbin/docker-init` for `--init` (the daemon's
    /// `init_binary`: docker-init or tini-static); `None`: the daemon found none.
    #[serde(default)]
    pub init: Option<PathBuf>,
}

/// The container's cgroup: `<parent>/<id>` in every hierarchy in use.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct CgroupSpec {
    /// Relative to each hierarchy's root, e.g. `berth/<id>`, or with a leading `./` to
    /// the monitor's own cgroup (a relative `--cgroup-parent`; see
    /// `sys::cgroups::paths`).
    pub path: String,
    /// Memory limit in bytes (0: none).
    pub memory: i64,
    /// Memory plus swap in bytes (0: none, -1: unlimited).
    #[serde(default)]
    pub memory_swap: i64,
    /// Maximum number of pids (0: none).
    pub pids: i64,
    /// CFS quota in microseconds per `cpu_period` (0: none).
    pub cpu_quota: i64,
    pub cpu_period: u64,
    /// Relative CPU weight as Docker's `--cpu-shares` (0: default).
    pub cpu_shares: u64,
    /// The host's hierarchies as the system checks found them (filled in by
    /// `StartContainer`); the monitor reads them itself when absent.
    #[serde(default)]
    pub layout: Option<crate::sys::cgroups::CgroupLayout>,
    /// The soft memory limit in bytes (`--memory-reservation`; 0: none).
    #[serde(default)]
    pub memory_reservation: i64,
    /// `--memory-swappiness` (0..100; v1 only).
    #[serde(default)]
    pub memory_swappiness: Option<i64>,
    /// `--oom-kill-disable` (v1 only).
    #[serde(default)]
    pub oom_kill_disable: bool,
    /// `--cpuset-cpus` and `--cpuset-mems` ("": not set).
    #[serde(default)]
    pub cpuset_cpus: String,
    #[serde(default)]
    pub cpuset_mems: String,
    /// `--blkio-weight` (10..1000; 0: none).
    #[serde(default)]
    pub blkio_weight: u16,
    /// `--blkio-weight-device`, `--device-read-bps`, `--device-write-bps`,
    /// `--device-read-iops`, `--device-write-iops`: a device path and its value.
    #[serde(default)]
    pub blkio_weight_device: Vec<(String, u64)>,
    #[serde(default)]
    pub blkio_read_bps: Vec<(String, u64)>,
    #[serde(default)]
    pub blkio_write_bps: Vec<(String, u64)>,
    #[serde(default)]
    pub blkio_read_iops: Vec<(String, u64)>,
    #[serde(default)]
    pub blkio_write_iops: Vec<(String, u64)>,
    /// `--device`: host devices made in the container and allowed in its cgroup.
    #[serde(default)]
    pub devices: Vec<DeviceSpec>,
    /// `--device-cgroup-rule`: rules allowed besides Docker's defaults (`c 1:5 rwm`).
    #[serde(default)]
    pub device_cgroup_rules: Vec<String>,
    /// A cgroup namespace of its own (`--cgroupns private`) rather than the host's.
    #[serde(default)]
    pub private_ns: bool,
}

/// One `--device`: `path_on_host[:path_in_container[:permissions]]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceSpec {
    pub path_on_host: String,
    pub path_in_container: String,
    /// The cgroup access: `rwm` or a part of it.
    pub permissions: String,
}

/// Which network namespace the container gets.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum NetworkSpec {
    /// Its own network namespace with only `lo`, up (`--network none`).
    None,
    /// Its own network namespace with `lo` and `eth0`, one end of a veth pair whose other
    /// end is on the bridge, with an address and a default route (the default network;
    /// berthd makes it and the init joins it, see `ContainerSpec::join_netns`).
    New,
    /// The host's network namespace (`--network host`).
    Host,
}
