//! The mounts of a container as its init makes them: the rootfs and the extra mounts.
//!
//! They are part of the spec berthd hands a monitor (its `ContainerSpec`), and
//! `sys::mounts` makes them; they live here, at the bottom of the house, so that `sys`
//! imports nothing above it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The mount that becomes the container's `/`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RootfsSpec {
    /// `overlay`, or `bind` for the vfs driver.
    pub fstype: String,
    /// Mount source (`overlay`, or the vfs directory for a bind mount).
    pub source: String,
    /// Mount data (`lowerdir=…,upperdir=…,workdir=…`), empty for a bind mount.
    pub options: String,
    /// Where the rootfs is mounted before `pivot_root` (a directory that exists).
    pub target: PathBuf,
}

/// A mount inside the container, as in an OCI spec.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MountSpec {
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub destination: String,
    /// `bind`, `tmpfs`, …
    pub fstype: String,
    /// `ro`, `rw`, `rbind`, `nosuid`, `nodev`, `noexec`, `rprivate`, `mode=755`, …
    pub options: Vec<String>,
    /// A volume: when its source dir is empty, fill it first with what the image has at
    /// the destination (dockerd's copy of image content into a new volume).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub copy_up: bool,
}

/// The paths Docker masks in every container (`HostConfig.MaskedPaths` by default; the
/// mounts in `sys::mounts` hide them): dockerd 20.10's list and the powercap files that
/// later dockerd versions hide too.
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The paths Docker makes read-only in every container (`HostConfig.ReadonlyPaths`).
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's default capability set as a mask (bit `n`: `CAP_*` number `n`): CHOWN,
/// DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE,
/// NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP (`CapEff: 00000000a80425fb`).
pub const DEFAULT_CAP_MASK: u64 = 0xa804_25fb;

/// A container's security settings, as berthd computed them (`crate::security`) and its
/// init applies them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecuritySpec {
    /// The capabilities (bounding, permitted and effective set of root), as a mask.
    pub capabilities: u64,
    /// The seccomp program in hex (`struct sock_filter` entries in the machine's byte
    /// order, compiled by berthd); empty: no filter.
    pub seccomp: String,
    /// Set no_new_privs before the exec.
    pub no_new_privs: bool,
    /// Paths hidden (`HostConfig.MaskedPaths`).
    pub masked_paths: Vec<String>,
    /// Paths made read-only (`HostConfig.ReadonlyPaths`).
    pub readonly_paths: Vec<String>,
    /// `--privileged`: /sys writable, every host device in /dev and the devices cgroup
    /// open.
    pub privileged: bool,
    /// The profile of `seccomp` when it is not Docker's default: the JSON of
    /// `--security-opt seccomp=<file>` ("" for the default profile). An OCI runtime takes
    /// the filter as rules, not BPF: the oci driver resolves the profile again
    /// (`crate::security::filter_for`).
    pub seccomp_profile: String,
}

impl Default for SecuritySpec {
    /// Docker's defaults, without a seccomp filter (berthd always sends its own).
    fn default() -> Self {
        let owned = |l: &[&str]| l.iter().map(|p| (*p).to_owned()).collect();
        SecuritySpec {
            capabilities: DEFAULT_CAP_MASK,
            seccomp: String::new(),
            no_new_privs: false,
            masked_paths: owned(DEFAULT_MASKED_PATHS),
            readonly_paths: owned(DEFAULT_READONLY_PATHS),
            privileged: false,
            seccomp_profile: String::new(),
        }
    }
}
