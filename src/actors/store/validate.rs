//! The one validation pass of a create request: every field honoured, or refused with a
//! 400 that names it (see `model::fields` for the table and docs/api-fields.md).
//!
//! First dockerd's own checks, in dockerd's words (a bad value gets the message a dockerd
//! user knows, whether or not berthd supports the field yet); then every field berthd
//! does not do yet, or never will, refused when it holds anything but its default; then
//! the daemon's defaults are filled in. Plain functions over typed values, tested without
//! the actor.

use serde_json::Value;

use super::error::StoreError;
use crate::model::api::{
    ContainerConfig, HostConfig, HostConfigIsolationEnum, HostConfigLogConfig,
    RestartPolicyNameEnum,
};
use crate::model::create::{self, CreateRequest};
use crate::model::fields::{self, Field, Status};
use crate::model::logconfig::{self, LogConfigError, LogSpec};
use crate::sys::cgroups::CgroupLayout;

/// dockerd's smallest memory limit (6 MiB), for the overhead of a container's start.
const MIN_MEMORY: i64 = 6 << 20;

/// What the host can limit, for dockerd's checks that depend on it.
#[derive(Debug, Clone, Default)]
pub struct HostCaps {
    pub ncpu: usize,
    pub memory: bool,
    pub swap: bool,
    pub cpu_cfs: bool,
    pub cpu_shares: bool,
    pub pids: bool,
    /// The host's cgroup hierarchies and what they offer (cpuset, blkio, the v1-only
    /// memory files, cgroup namespaces).
    pub cgroups: CgroupLayout,
    /// The runtimes a container may name (`HostConfig.Runtime`); empty: `native` only.
    pub runtimes: Vec<String>,
    /// The runtime of a container that names none; empty: `native`.
    pub default_runtime: String,
    /// The daemon has a static init for `--init` under an OCI runtime
    /// (`DaemonConfig::init_binary`).
    pub oci_init: bool,
    /// The daemon's `--log-driver` ("": json-file) and `--log-opt`s, merged into a
    /// container's `LogConfig` as dockerd merges them.
    pub log_driver: String,
    pub log_opts: Vec<(String, String)>,
}

impl HostCaps {
    pub fn new(layout: &CgroupLayout, ncpu: usize) -> Self {
        HostCaps {
            ncpu,
            memory: layout.memory_limit,
            swap: layout.swap_limit,
            cpu_cfs: layout.cpu_cfs_quota,
            cpu_shares: layout.cpu_shares,
            pids: layout.pids_limit,
            cgroups: layout.clone(),
            runtimes: Vec::new(),
            default_runtime: String::new(),
            oci_init: false,
            log_driver: String::new(),
            log_opts: Vec::new(),
        }
    }
}

pub(super) fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        message: message.into(),
    }
}

/// A field this host cannot honour: dockerd's warning (it drops the value) as the reason
/// berthd refuses it.
pub(super) fn cannot(path: &str, reason: &str) -> StoreError {
    let name = fields::get(path).map_or_else(|| path.to_owned(), fields::display_name);
    StoreError::Refused {
        field: name,
        reason: reason.to_owned(),
    }
}

fn not_yet(path: &str) -> StoreError {
    let name = fields::get(path).map_or_else(|| path.to_owned(), fields::display_name);
    StoreError::NotSupported { field: name }
}

/// Checks `req` and fills in the daemon's defaults. Returns dockerd's warnings (shown by
/// the CLI), or the first refusal.
pub fn validate(req: &mut CreateRequest, host: &HostCaps) -> Result<Vec<String>, StoreError> {
    let mut warnings = Vec::new();
    check_config(&req.config)?;
    check_resources(&mut req.host_config, host, &mut warnings)?;
    super::validate_cgroups::check(&req.host_config, host)?;
    check_host_config(&req.host_config)?;
    super::process::check(&req.config, &req.host_config)?;
    check_runtime(&mut req.host_config, host)?;
    check_networking(req)?;
    merge_log_config(&mut req.host_config, host);
    refuse_unsupported(req)?;
    create::default_cgroupns_mode(&mut req.host_config, host.cgroups.version() == 2);
    // The capabilities berthd can grant, and the seccomp profile compiled ahead.
    crate::security::check(&req.host_config)?;
    create::apply_defaults(&mut req.host_config);
    Ok(warnings)
}

fn check_config(c: &ContainerConfig) -> Result<(), StoreError> {
    if let Some(wd) = c.working_dir.as_deref().filter(|w| !w.is_empty()) {
        if !wd.starts_with('/') {
            return Err(invalid(format!(
                "the working directory '{wd}' is invalid, it needs to be an absolute path"
            )));
        }
    }
    if let Some(sig) = c.stop_signal.as_deref().filter(|s| !s.is_empty()) {
        if super::state::parse_signal(sig).is_err() {
            return Err(invalid(format!("Invalid signal: {sig}")));
        }
    }
    if let Some(t) = c.stop_timeout {
        if t < -1 {
            return Err(invalid(format!("invalid stop timeout {t}")));
        }
    }
    for e in c.env.iter().flatten() {
        if e.is_empty() || e.starts_with('=') {
            return Err(invalid(format!("invalid environment variable: {e}")));
        }
    }
    if let Some(h) = &c.healthcheck {
        let min = 1_000_000; // 1 ms, dockerd's MinimumDuration.
        for (name, v) in [
            ("Interval", h.interval),
            ("Timeout", h.timeout),
            ("StartPeriod", h.start_period),
        ] {
            if let Some(v) = v.filter(|v| *v != 0) {
                if v < min {
                    return Err(invalid(format!(
                        "{name} in Healthcheck cannot be less than 1ms"
                    )));
                }
            }
        }
        if h.retries.is_some_and(|r| r < 0) {
            return Err(invalid("Retries in Healthcheck cannot be negative"));
        }
    }
    Ok(())
}

/// dockerd's `verifyPlatformContainerResources`, in its order and words.
pub(super) fn check_resources(
    h: &mut HostConfig,
    host: &HostCaps,
    warnings: &mut Vec<String>,
) -> Result<(), StoreError> {
    let memory = h.memory.unwrap_or(0);
    if memory != 0 && memory < MIN_MEMORY {
        return Err(invalid("Minimum memory limit allowed is 6MB"));
    }
    if memory > 0 && !host.memory {
        return Err(invalid(
            "Your kernel does not support memory limit capabilities or the cgroup is not mounted",
        ));
    }
    let swap = h.memory_swap.unwrap_or(0);
    if memory > 0 && swap != -1 && !host.swap {
        if swap > 0 {
            return Err(invalid(
                "Your kernel does not support swap limit capabilities or the cgroup is not mounted",
            ));
        }
        warnings.push(
            "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap."
                .to_owned(),
        );
        h.memory_swap = Some(-1);
    }
    let swap = h.memory_swap.unwrap_or(0);
    if memory > 0 && swap > 0 && swap < memory {
        return Err(invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if memory == 0 && swap > 0 {
        return Err(invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if memory > 0 && swap == 0 {
        // dockerd's default: swap as large as the memory limit.
        h.memory_swap = Some(memory.saturating_mul(2));
    }
    // The CLI sends -1 for "not set"; dockerd reads it as unset.
    if h.memory_swappiness == Some(-1) {
        h.memory_swappiness = None;
    }
    if h.memory_swappiness.is_some() && !host.cgroups.memory_swappiness {
        return Err(cannot(
            "HostConfig.MemorySwappiness",
            "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted",
        ));
    }
    if let Some(s) = h.memory_swappiness {
        if !(0..=100).contains(&s) {
            return Err(invalid(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100"
            )));
        }
    }
    let reservation = h.memory_reservation.unwrap_or(0);
    if reservation > 0 && !host.cgroups.memory_reservation {
        return Err(cannot(
            "HostConfig.MemoryReservation",
            "Your kernel does not support memory soft limit capabilities or the cgroup is not mounted",
        ));
    }
    if reservation > 0 && reservation < MIN_MEMORY {
        return Err(invalid("Minimum memory reservation allowed is 6MB"));
    }
    if memory > 0 && reservation > 0 && memory < reservation {
        return Err(invalid(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    if h.kernel_memory.unwrap_or(0) > 0 && h.kernel_memory.unwrap_or(0) < MIN_MEMORY {
        return Err(invalid("Minimum kernel memory limit allowed is 6MB"));
    }
    if h.oom_kill_disable == Some(true) {
        if !host.cgroups.oom_kill_disable {
            return Err(cannot(
                "HostConfig.OomKillDisable",
                "Your kernel does not support OomKillDisable",
            ));
        }
        if memory == 0 {
            warnings.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".to_owned());
        }
    }
    if h.pids_limit.is_some_and(|p| p > 0) && !host.pids {
        return Err(invalid(
            "Your kernel does not support PIDs limit capabilities or the cgroup is not mounted",
        ));
    }
    let nano = h.nano_cpus.unwrap_or(0);
    let period = h.cpu_period.unwrap_or(0);
    let quota = h.cpu_quota.unwrap_or(0);
    if nano > 0 && period > 0 {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if nano > 0 && quota > 0 {
        return Err(invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    if nano > 0 && !host.cpu_cfs {
        return Err(invalid(
            "NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted",
        ));
    }
    let ncpu = i64::try_from(host.ncpu).unwrap_or(i64::MAX);
    if nano < 0 || nano > ncpu.saturating_mul(1_000_000_000) {
        return Err(invalid(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    let shares = h.cpu_shares.unwrap_or(0);
    if shares < 0 {
        return Err(invalid("shares: invalid argument"));
    }
    if shares > 0 && !host.cpu_shares {
        return Err(invalid(
            "Your kernel does not support CPU shares or the cgroup is not mounted",
        ));
    }
    if (period != 0 || quota != 0) && !host.cpu_cfs {
        return Err(invalid(
            "Your kernel does not support CPU CFS scheduler or the cgroup is not mounted",
        ));
    }
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return Err(invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if quota > 0 && quota < 1000 {
        return Err(invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    let weight = h.blkio_weight.unwrap_or(0);
    if weight > 0 && !host.cgroups.blkio_weight {
        return Err(cannot(
            "HostConfig.BlkioWeight",
            "Your kernel does not support Block I/O weight or the cgroup is not mounted",
        ));
    }
    if weight > 0 && !(10..=1000).contains(&weight) {
        return Err(invalid("Range of blkio weight is from 10 to 1000"));
    }
    if h.io_maximum_bandwidth.unwrap_or(0) != 0 || h.io_maximum_iops.unwrap_or(0) != 0 {
        return Err(invalid(
            "Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps",
        ));
    }
    Ok(())
}

/// A namespace mode: `""`, one of `words`, or `container:<name>` when `container` holds.
fn mode_ok(mode: &str, words: &[&str], container: bool) -> bool {
    mode.is_empty()
        || words.contains(&mode)
        || (container
            && mode
                .strip_prefix("container:")
                .is_some_and(|c| !c.is_empty()))
}

/// dockerd's checks of HostConfig that are not resources (`verifyPlatformContainerSettings`,
/// `verifyContainerSettings`).
/// `HostConfig.Runtime`: one of the daemon's runtimes (dockerd's words otherwise), or the
/// daemon's default when empty.
fn check_runtime(h: &mut HostConfig, host: &HostCaps) -> Result<(), StoreError> {
    let known = |rt: &str| {
        if host.runtimes.is_empty() {
            rt == create::RUNTIME
        } else {
            host.runtimes.iter().any(|r| r == rt)
        }
    };
    match h.runtime.as_deref().filter(|r| !r.is_empty()) {
        Some(rt) if !known(rt) => return Err(invalid(format!("Unknown runtime specified {rt}"))),
        Some(_) => {}
        None => {
            if !host.default_runtime.is_empty() {
                h.runtime = Some(host.default_runtime.clone());
            }
        }
    }
    check_oci_runtime(h, host)
}

/// `--init` under an OCI runtime runs the daemon's static init (docker-init or
/// tini-static, `config::find_init`) as pid 1: refused by name when the daemon found none.
fn check_oci_runtime(h: &HostConfig, host: &HostCaps) -> Result<(), StoreError> {
    let rt = h.runtime.as_deref().unwrap_or("");
    if rt.is_empty() || rt == create::RUNTIME || host.oci_init {
        return Ok(());
    }
    if h.init == Some(true) {
        return Err(cannot(
            "HostConfig.Init",
            &format!(
                "not with an OCI runtime ({rt}) without docker-init or tini-static, and berthd \
                 found neither in PATH (install the tini package)"
            ),
        ));
    }
    Ok(())
}

fn check_host_config(h: &HostConfig) -> Result<(), StoreError> {
    let ipc = h.ipc_mode.as_deref().unwrap_or("");
    if !mode_ok(ipc, &["none", "private", "shareable", "host"], true) {
        return Err(invalid(format!("invalid IPC mode: {ipc}")));
    }
    let pid = h.pid_mode.as_deref().unwrap_or("");
    if !mode_ok(pid, &["host"], true) {
        return Err(invalid(format!("invalid PID mode: {pid}")));
    }
    let uts = h.uts_mode.as_deref().unwrap_or("");
    if !mode_ok(uts, &["host"], false) {
        return Err(invalid(format!("invalid UTS mode: {uts}")));
    }
    let userns = h.userns_mode.as_deref().unwrap_or("");
    if !mode_ok(userns, &["host"], false) {
        return Err(invalid(format!("invalid USER mode: {userns}")));
    }
    let oom = h.oom_score_adj.unwrap_or(0);
    if !(-1000..=1000).contains(&oom) {
        return Err(invalid(format!(
            "Invalid value {oom}, range for oom score adj is [-1000, 1000]"
        )));
    }
    if let Some(iso) = h.isolation {
        if !matches!(
            iso,
            HostConfigIsolationEnum::EMPTY | HostConfigIsolationEnum::DEFAULT
        ) {
            return Err(invalid(format!("invalid isolation '{iso}' on linux")));
        }
    }
    if let Some(cs) = &h.console_size {
        if cs.len() != 2 || cs.iter().any(|d| *d < 0 || *d > i32::from(u16::MAX)) {
            return Err(invalid(format!("invalid ConsoleSize {cs:?}")));
        }
    }
    check_restart_policy(h)?;
    for cap in h.cap_add.iter().flatten() {
        check_capability(cap).map_err(|e| invalid(format!("invalid CapAdd: {e}")))?;
    }
    for cap in h.cap_drop.iter().flatten() {
        check_capability(cap).map_err(|e| invalid(format!("invalid CapDrop: {e}")))?;
    }
    crate::security::parse_opts(h.security_opt.as_deref().unwrap_or(&[]))?;
    for host in h.extra_hosts.iter().flatten() {
        check_extra_host(host)?;
    }
    for (port, bindings) in h.port_bindings.iter().flatten() {
        check_port(port)?;
        for b in bindings.iter().flatten() {
            if let Some(hp) = b.host_port.as_deref().filter(|p| !p.is_empty()) {
                check_port(hp)?;
            }
        }
    }
    for b in h.binds.iter().flatten() {
        parse_bind(b)?;
    }
    Ok(())
}

pub(super) fn check_restart_policy(h: &HostConfig) -> Result<(), StoreError> {
    let Some(rp) = &h.restart_policy else {
        return Ok(());
    };
    let count = rp.maximum_retry_count.unwrap_or(0);
    let name = rp.name.unwrap_or(RestartPolicyNameEnum::EMPTY);
    match name {
        RestartPolicyNameEnum::ALWAYS
        | RestartPolicyNameEnum::UNLESS_STOPPED
        | RestartPolicyNameEnum::NO => {
            if count != 0 {
                return Err(invalid(format!(
                    "maximum retry count cannot be used with restart policy '{name}'"
                )));
            }
        }
        RestartPolicyNameEnum::ON_FAILURE => {
            if count < 0 {
                return Err(invalid("maximum retry count cannot be negative"));
            }
        }
        RestartPolicyNameEnum::EMPTY => {}
    }
    let restarts = !matches!(
        name,
        RestartPolicyNameEnum::EMPTY | RestartPolicyNameEnum::NO
    );
    if h.auto_remove == Some(true) && restarts {
        return Err(invalid(
            "can't create 'AutoRemove' container with restart policy",
        ));
    }
    Ok(())
}

/// dockerd's `NormalizeLegacyCapabilities` check: `ALL`, or a capability the kernel
/// headers name, with or without `CAP_`, in any case.
fn check_capability(cap: &str) -> Result<(), String> {
    crate::security::capabilities::parse(cap)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// dockerd's `ValidateExtraHost`: `name:ip` (the IP may be IPv6, or `host-gateway`).
fn check_extra_host(entry: &str) -> Result<(), StoreError> {
    let Some((name, ip)) = entry.split_once(':') else {
        return Err(invalid(format!("bad format for add-host: {entry:?}")));
    };
    if name.is_empty() {
        return Err(invalid(format!("bad format for add-host: {entry:?}")));
    }
    if ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(invalid(format!("invalid IP address in add-host: {ip:?}")));
    }
    Ok(())
}

/// A port or range, with an optional `/proto`, as `nat.ParsePort` takes it.
fn check_port(spec: &str) -> Result<(), StoreError> {
    let (port, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let bad = || invalid(format!("invalid port specification: {port:?}"));
    if !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(bad());
    }
    let (a, b) = port.split_once('-').unwrap_or((port, port));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let b: u16 = b.parse().map_err(|_| bad())?;
    if b < a {
        return Err(bad());
    }
    Ok(())
}

/// A bind of `HostConfig.Binds`: `/host:/ctr[:opts]` (a named volume has no leading `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    /// The source is a volume name, not a host path.
    pub named: bool,
    /// The mode as given (what `Mounts` shows).
    pub mode: String,
    /// `private`, `rslave`, … when the mode names one.
    pub propagation: Option<String>,
    /// `nocopy`: a new volume is not filled from the image.
    pub no_copy: bool,
}

/// Parses a bind as dockerd's linux parser does: the modes it knows (one of each kind:
/// ro/rw, z/Z, a propagation, copy/nocopy, a consistency).
pub fn parse_bind(spec: &str) -> Result<Bind, StoreError> {
    let bad = || invalid(format!("invalid volume specification: '{spec}'"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(bad()),
    };
    if source.is_empty() || destination.is_empty() {
        return Err(bad());
    }
    if !destination.starts_with('/') {
        return Err(invalid(format!(
            "invalid mount config for type \"bind\": invalid mount path: '{destination}' mount path must be absolute"
        )));
    }
    if destination.split('/').all(|c| c.is_empty() || c == ".") {
        return Err(invalid("invalid specification: destination can't be '/'"));
    }
    let mut read_only = false;
    let mut propagation = None;
    let mut no_copy = false;
    let mut counts = [0u8; 5];
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        let kind = match m {
            "ro" | "rw" => 0,
            "z" | "Z" => 1,
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => 2,
            "copy" | "nocopy" => 3,
            "consistent" | "cached" | "delegated" => 4,
            _ => return Err(invalid(format!("invalid mode: {mode}"))),
        };
        counts[kind] += 1;
        if counts[kind] > 1 {
            return Err(invalid(format!("invalid mode: {mode}")));
        }
        match m {
            "ro" => read_only = true,
            "nocopy" => no_copy = true,
            p if kind == 2 => propagation = Some(p.to_owned()),
            _ => {}
        }
    }
    Ok(Bind {
        source: source.to_owned(),
        destination: destination.to_owned(),
        read_only,
        named: !source.starts_with('/'),
        mode: mode.to_owned(),
        propagation,
        no_copy,
    })
}

/// NetworkingConfig: at most one endpoint, for the container's own network.
fn check_networking(req: &CreateRequest) -> Result<(), StoreError> {
    check_container_network(req)?;
    let Some(eps) = &req.networking_config.endpoints_config else {
        return Ok(());
    };
    if eps.len() > 1 {
        return Err(not_yet("NetworkingConfig.EndpointsConfig"));
    }
    for ep in eps.values() {
        let Some(ipam) = &ep.ipam_config else {
            continue;
        };
        let v6 = ipam.ipv6_address.as_deref().is_some_and(|a| !a.is_empty())
            || ipam.link_local_i_ps.as_ref().is_some_and(|l| !l.is_empty());
        if v6 {
            return Err(not_yet("NetworkingConfig.EndpointsConfig.*.IPAMConfig"));
        }
    }
    Ok(())
}

/// dockerd's refusals for `--network container:<x>` (`validateNetContainerMode`): what
/// the other container's namespace and files decide cannot be asked for.
fn check_container_network(req: &CreateRequest) -> Result<(), StoreError> {
    let (c, h) = (&req.config, &req.host_config);
    let Some(name) = h
        .network_mode
        .as_deref()
        .and_then(|m| m.strip_prefix("container:"))
    else {
        return Ok(());
    };
    let some = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    let conflict = |what: &str| Err(invalid(format!("conflicting options: {what}")));
    if name.is_empty() {
        return Err(invalid(
            "Invalid network mode: invalid container format container:<name|id>",
        ));
    }
    if c.hostname.as_deref().is_some_and(|s| !s.is_empty()) {
        return conflict("hostname and the network mode");
    }
    if some(&h.links) {
        return conflict(
            "container type network can't be used with links. This would result in undefined behavior",
        );
    }
    if some(&h.dns) {
        return conflict("dns and the network mode");
    }
    if some(&h.extra_hosts) {
        return conflict("custom host-to-IP mapping and the network mode");
    }
    if c.mac_address.as_deref().is_some_and(|s| !s.is_empty()) {
        return conflict("mac-address and the network mode");
    }
    if h.port_bindings.as_ref().is_some_and(|p| !p.is_empty()) || h.publish_all_ports == Some(true)
    {
        return conflict("port publishing and the container type network mode");
    }
    if c.exposed_ports.as_ref().is_some_and(|p| !p.is_empty()) {
        return conflict("port exposing and the container type network mode");
    }
    Ok(())
}

/// The value at `path` (after its section) in a serialised section.
fn value_at<'a>(doc: &'a Value, key: &str) -> Option<&'a Value> {
    doc.get(key)
}

/// A JSON value that is some type's zero: null, false, 0, "", [] or {}.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Values of not-yet fields that still ask for nothing (the CLI sends them).
fn is_default(field: &str, v: &Value) -> bool {
    if is_zero(v) {
        return true;
    }
    match field {
        // The CLI's "not set".
        "HostConfig.MemorySwappiness" => v.as_i64() == Some(-1),
        "HostConfig.OomKillDisable" => v == &Value::Bool(false),
        "HostConfig.PidsLimit" => v.as_i64().is_some_and(|p| p <= 0),
        _ => false,
    }
}

/// dockerd's `mergeAndVerifyLogConfig`: the daemon's driver for a container that names
/// none, and the daemon's options for one of the daemon's driver (shown so by inspect).
fn merge_log_config(h: &mut HostConfig, host: &HostCaps) {
    let log = h.log_config.get_or_insert_with(Default::default);
    let driver = if host.log_driver.is_empty() {
        logconfig::DEFAULT_DRIVER
    } else {
        host.log_driver.as_str()
    };
    logconfig::merge_daemon_default(&mut log.typ, &mut log.config, driver, &host.log_opts);
}

/// The log driver and its options, in dockerd's words; what berthd does not do yet is
/// refused naming the driver or option.
pub(super) fn check_log_config(log: &HostConfigLogConfig) -> Result<LogSpec, StoreError> {
    logconfig::parse_map(log.typ.as_deref().unwrap_or(""), log.config.as_ref()).map_err(|e| match e
    {
        LogConfigError::Invalid(message) => invalid(message),
        LogConfigError::NotYet(what) => StoreError::NotSupported {
            field: format!("HostConfig.LogConfig ({what})"),
        },
    })
}

/// Refuses every field the table marks not yet or refused that holds anything but its
/// default, and the values of partial fields berthd does not do yet.
fn refuse_unsupported(req: &CreateRequest) -> Result<(), StoreError> {
    let h = &req.host_config;
    // Partial fields: their own rules.
    for b in h.binds.iter().flatten() {
        parse_bind(b)?;
    }
    if let Some(log) = &h.log_config {
        check_log_config(log)?;
    }
    // Every other field: by the table.
    let config = serde_json::to_value(&req.config).unwrap_or(Value::Null);
    let host = serde_json::to_value(&req.host_config).unwrap_or(Value::Null);
    let check = |f: &Field, doc: &Value, key: &str| -> Result<(), StoreError> {
        if !matches!(f.status, Status::NotYet | Status::Refused) {
            return Ok(());
        }
        match value_at(doc, key) {
            Some(v) if !is_default(f.path, v) => Err(match f.status {
                Status::Refused => StoreError::Refused {
                    field: fields::display_name(f),
                    reason: f.note.to_owned(),
                },
                _ => not_yet(f.path),
            }),
            _ => Ok(()),
        }
    };
    for f in fields::CONFIG {
        check(f, &config, f.path.trim_start_matches("Config."))?;
    }
    for f in fields::HOST_CONFIG {
        check(f, &host, f.path.trim_start_matches("HostConfig."))?;
    }
    for ep in req
        .networking_config
        .endpoints_config
        .iter()
        .flat_map(|m| m.values())
    {
        let doc = serde_json::to_value(ep).unwrap_or(Value::Null);
        for f in fields::NETWORKING_CONFIG {
            if let Some(key) = f.path.strip_prefix("NetworkingConfig.EndpointsConfig.*.") {
                check(f, &doc, key)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::version::ApiVersion;
    use serde_json::json;

    fn host() -> HostCaps {
        HostCaps {
            ncpu: 2,
            memory: true,
            swap: true,
            cpu_cfs: true,
            cpu_shares: true,
            pids: true,
            cgroups: CgroupLayout {
                cpuset: true,
                memory_reservation: true,
                memory_swappiness: true,
                oom_kill_disable: true,
                blkio_weight: true,
                blkio_weight_device: true,
                blkio_throttle: true,
                cgroupns: true,
                cpus: "0-1".to_owned(),
                mems: "0".to_owned(),
                ..CgroupLayout::default()
            },
            runtimes: Vec::new(),
            default_runtime: String::new(),
            oci_init: false,
            log_driver: String::new(),
            log_opts: Vec::new(),
        }
    }

    fn check(body: Value) -> Result<CreateRequest, StoreError> {
        let mut req = create::parse_create(body.to_string().as_bytes(), ApiVersion::CURRENT)
            .map_err(|e| invalid(e.to_string()))?;
        validate(&mut req, &host())?;
        Ok(req)
    }

    fn refusal(body: Value) -> String {
        match check(body.clone()) {
            Ok(_) => panic!("{body} was accepted"),
            Err(e) => {
                assert_eq!(e.kind(), crate::error::ErrorKind::InvalidParameter, "{e}");
                e.to_string()
            }
        }
    }

    #[test]
    fn the_cli_body_of_a_plain_run_is_accepted_and_completed() {
        let req = check(json!({
            "Image": "busybox", "Cmd": ["true"], "Env": ["A=1", "B"],
            "HostConfig": {"LogConfig": {"Type": "", "Config": {}}, "NetworkMode": "default",
                "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "ConsoleSize": [0, 0],
                "CgroupnsMode": "", "IpcMode": "", "ShmSize": 0, "MemorySwappiness": -1,
                "OomKillDisable": false, "MaskedPaths": null, "PidsLimit": 0},
            "NetworkingConfig": {"EndpointsConfig": {"default": {"IPAMConfig": null,
                "MacAddress": "", "NetworkID": ""}}}
        }))
        .unwrap();
        let h = req.host_config;
        assert_eq!(h.shm_size, Some(create::DEFAULT_SHM_SIZE));
        assert_eq!(h.ipc_mode.as_deref(), Some("private"));
        assert_eq!(h.runtime.as_deref(), Some("native"));
        assert_eq!(h.memory_swappiness, None);
    }

    #[test]
    fn dockerds_messages_for_bad_values() {
        for (body, msg) in [
            (
                json!({"HostConfig": {"Memory": 1024}}),
                "Minimum memory limit allowed is 6MB",
            ),
            (
                json!({"HostConfig": {"Memory": 67108864, "MemorySwap": 1}}),
                "Minimum memoryswap limit should be larger than memory limit, see usage",
            ),
            (
                json!({"HostConfig": {"MemorySwap": 67108864}}),
                "You should always set the Memory limit when using Memoryswap limit, see usage",
            ),
            (
                json!({"HostConfig": {"NanoCpus": 5_000_000_000i64}}),
                "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available",
            ),
            (
                json!({"HostConfig": {"NanoCpus": 500_000_000, "CpuPeriod": 100000}}),
                "Conflicting options: Nano CPUs and CPU Period cannot both be set",
            ),
            (
                json!({"HostConfig": {"CpuPeriod": 10}}),
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
            ),
            (
                json!({"HostConfig": {"CapAdd": ["FOO"]}}),
                "invalid CapAdd: unknown capability: \"CAP_FOO\"",
            ),
            (
                json!({"HostConfig": {"CapDrop": ["cap_bogus"]}}),
                "invalid CapDrop: unknown capability: \"CAP_BOGUS\"",
            ),
            (
                json!({"HostConfig": {"SecurityOpt": ["bogus"]}}),
                "invalid --security-opt 1: \"bogus\"",
            ),
            (
                json!({"HostConfig": {"SecurityOpt": ["systempaths=unconfined"]}}),
                "invalid --security-opt 2: \"systempaths=unconfined\"",
            ),
            (
                json!({"HostConfig": {"SecurityOpt": ["seccomp={\"defaultAction\":\"SCMP_ACT_NOPE\"}"]}}),
                "invalid seccomp action \"SCMP_ACT_NOPE\"",
            ),
            (
                json!({"HostConfig": {"SecurityOpt": ["seccomp={nope"]}}),
                "Decoding seccomp profile failed: ",
            ),
            (
                json!({"HostConfig": {"OomScoreAdj": 1001}}),
                "Invalid value 1001, range for oom score adj is [-1000, 1000]",
            ),
            (
                json!({"HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -1}}}),
                "maximum retry count cannot be negative",
            ),
            (
                json!({"HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 2}}}),
                "maximum retry count cannot be used with restart policy 'always'",
            ),
            (
                json!({"HostConfig": {"AutoRemove": true, "RestartPolicy": {"Name": "always"}}}),
                "can't create 'AutoRemove' container with restart policy",
            ),
            (
                json!({"HostConfig": {"IpcMode": "bogus"}}),
                "invalid IPC mode: bogus",
            ),
            (
                json!({"HostConfig": {"Runtime": "runc"}}),
                "Unknown runtime specified runc",
            ),
            (
                json!({"HostConfig": {"Isolation": "hyperv"}}),
                "invalid isolation 'hyperv' on linux",
            ),
            (
                json!({"WorkingDir": "tmp"}),
                "the working directory 'tmp' is invalid, it needs to be an absolute path",
            ),
            (json!({"StopSignal": "SIGNOPE"}), "Invalid signal: SIGNOPE"),
            (
                json!({"HostConfig": {"Binds": ["/a:b"]}}),
                "invalid mount config for type \"bind\": invalid mount path: 'b' mount path must be absolute",
            ),
            (
                json!({"HostConfig": {"Binds": ["/a:/b:xx"]}}),
                "invalid mode: xx",
            ),
            (
                json!({"HostConfig": {"ExtraHosts": ["nocolon"]}}),
                "bad format for add-host: \"nocolon\"",
            ),
            (
                json!({"HostConfig": {"PortBindings": {"http/tcp": []}}}),
                "invalid port specification: \"http\"",
            ),
            (
                json!({"HostConfig": {"IOMaximumIOps": 5}}),
                "Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps",
            ),
        ] {
            let got = refusal(body.clone());
            assert!(got.contains(msg), "{body}: {got}");
        }
    }

    #[test]
    fn every_not_yet_and_refused_field_is_refused_by_name() {
        for f in fields::all() {
            let (sample, refused) = match f.status {
                Status::NotYet | Status::Refused => (f.sample, true),
                Status::Partial if !f.not_yet_sample.is_empty() => (f.not_yet_sample, true),
                _ => (f.sample, false),
            };
            if sample.is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(sample).unwrap();
            let body = fields::sample_body(f.path, value);
            if refused {
                let got = refusal(body.clone());
                let name = f.path.replace(".*", "");
                // dockerd's own refusals name the field in their words.
                let dockerds = got.starts_with("Invalid QoS settings")
                    || (f.status == Status::Partial && !got.contains("berthd"));
                let named = got.contains(f.path) || got.contains(&name) || dockerds;
                assert!(named, "{}: {got}", f.path);
            } else if let Err(e) = check(body.clone()) {
                panic!("{}: {body}: {e}", f.path);
            }
        }
    }

    #[test]
    fn memory_swap_defaults_as_dockerd() {
        let r = check(json!({"HostConfig": {"Memory": 67108864}})).unwrap();
        assert_eq!(r.host_config.memory_swap, Some(134217728));
        let r = check(json!({"HostConfig": {"Memory": 67108864, "MemorySwap": -1}})).unwrap();
        assert_eq!(r.host_config.memory_swap, Some(-1));
        let mut no_swap = host();
        no_swap.swap = false;
        let mut req = create::parse_create(
            json!({"HostConfig": {"Memory": 67108864}})
                .to_string()
                .as_bytes(),
            ApiVersion::CURRENT,
        )
        .unwrap();
        let warnings = validate(&mut req, &no_swap).unwrap();
        assert_eq!(req.host_config.memory_swap, Some(-1));
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn masked_paths_default_unless_privileged_or_given() {
        let r = check(json!({})).unwrap();
        assert_eq!(
            r.host_config.masked_paths.map(|m| m.len()),
            Some(create::DEFAULT_MASKED_PATHS.len())
        );
        let r = check(json!({"HostConfig": {"Privileged": true}})).unwrap();
        assert_eq!(r.host_config.masked_paths, None);
        assert_eq!(r.host_config.readonly_paths, None);
        let r = check(json!({"HostConfig": {"MaskedPaths": [], "ReadonlyPaths": ["/x"]}})).unwrap();
        assert_eq!(r.host_config.masked_paths, Some(vec![]));
        assert_eq!(r.host_config.readonly_paths, Some(vec!["/x".to_owned()]));
    }

    #[test]
    fn binds() {
        let b = parse_bind("/a:/b:ro").unwrap();
        assert!(b.read_only && !b.named);
        assert!(parse_bind("vol:/b").unwrap().named);
        assert!(parse_bind("/a").is_err());
        assert!(parse_bind("/a:/").is_err());
    }

    #[test]
    fn the_runtime_is_one_the_daemon_has_or_its_default() {
        let body = |rt: &str| {
            let b = if rt.is_empty() {
                json!({})
            } else {
                json!({"HostConfig": {"Runtime": rt}})
            };
            create::parse_create(b.to_string().as_bytes(), ApiVersion::CURRENT).unwrap()
        };
        let mut oci = host();
        oci.runtimes = vec!["runc".into(), "crun".into()];
        oci.default_runtime = "runc".into();
        for (rt, want) in [("", "runc"), ("crun", "crun"), ("runc", "runc")] {
            let mut req = body(rt);
            validate(&mut req, &oci).unwrap();
            assert_eq!(req.host_config.runtime.as_deref(), Some(want), "{rt}");
        }
        let mut req = body("native");
        let e = validate(&mut req, &oci).unwrap_err();
        assert_eq!(e.to_string(), "Unknown runtime specified native");
        // A daemon that says nothing of its runtimes has native alone.
        let mut req = body("");
        validate(&mut req, &host()).unwrap();
        assert_eq!(req.host_config.runtime.as_deref(), Some("native"));
    }

    #[test]
    fn an_oci_runtime_takes_privileged_init_and_ipc_container_like_native() {
        let mut oci = host();
        oci.runtimes = vec!["native".into(), "runc".into()];
        oci.default_runtime = "runc".into();
        oci.oci_init = true;
        let run = |hc: Value, h: &HostCaps| {
            let b = json!({"HostConfig": hc});
            let mut req =
                create::parse_create(b.to_string().as_bytes(), ApiVersion::CURRENT).unwrap();
            validate(&mut req, h).map(|_| ()).map_err(|e| e.to_string())
        };
        for hc in [
            json!({"Privileged": true}),
            json!({"Init": true}),
            json!({"IpcMode": "container:web"}),
        ] {
            assert_eq!(run(hc.clone(), &oci), Ok(()), "{hc}");
            let mut native = hc.clone();
            native["Runtime"] = json!("native");
            assert_eq!(run(native, &oci), Ok(()), "{hc}");
        }
        // Without a static init, --init is refused for an OCI runtime, by name; native
        // needs none.
        oci.oci_init = false;
        assert_eq!(
            run(json!({"Init": true}), &oci).unwrap_err(),
            "berthd does not support HostConfig.Init (--init): not with an OCI runtime (runc) \
             without docker-init or tini-static, and berthd found neither in PATH (install the \
             tini package)"
        );
        assert_eq!(
            run(json!({"Init": true, "Runtime": "native"}), &oci),
            Ok(())
        );
        assert_eq!(run(json!({"Privileged": true}), &oci), Ok(()));
    }

    #[test]
    fn cgroup_settings_the_host_lacks_are_refused_by_name_with_dockerds_warning() {
        let mut v2 = host();
        v2.cgroups.unified = Some("/sys/fs/cgroup".into());
        v2.cgroups.memory_swappiness = false;
        v2.cgroups.oom_kill_disable = false;
        v2.cgroups.blkio_weight = false;
        v2.cgroups.blkio_weight_device = false;
        let run = |body: Value| {
            let mut req =
                create::parse_create(body.to_string().as_bytes(), ApiVersion::CURRENT).unwrap();
            validate(&mut req, &v2).map(|_| req)
        };
        for (body, msg) in [
            (
                json!({"HostConfig": {"MemorySwappiness": 10}}),
                "berthd does not support HostConfig.MemorySwappiness (--memory-swappiness): Your kernel does not support memory swappiness capabilities or the cgroup is not mounted",
            ),
            (
                json!({"HostConfig": {"OomKillDisable": true, "Memory": 67108864}}),
                "HostConfig.OomKillDisable (--oom-kill-disable): Your kernel does not support OomKillDisable",
            ),
            (
                json!({"HostConfig": {"BlkioWeight": 500}}),
                "HostConfig.BlkioWeight (--blkio-weight): Your kernel does not support Block I/O weight or the cgroup is not mounted",
            ),
            (
                json!({"HostConfig": {"BlkioWeightDevice": [{"Path": "/dev/sda", "Weight": 100}]}}),
                "HostConfig.BlkioWeightDevice (--blkio-weight-device): Your kernel does not support Block I/O weight_device",
            ),
        ] {
            let e = run(body.clone()).map(|_| ()).unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::InvalidParameter);
            assert!(e.to_string().contains(msg), "{body}: {e}");
        }
        // The CLI's "not set" is no request, and dockerd's default mode on v2 is private.
        let req =
            run(json!({"HostConfig": {"MemorySwappiness": -1, "OomKillDisable": false}})).unwrap();
        assert_eq!(
            req.host_config.cgroupns_mode,
            Some(crate::model::api::HostConfigCgroupnsModeEnum::PRIVATE)
        );
        let req = check(json!({})).unwrap();
        assert_eq!(
            req.host_config.cgroupns_mode,
            Some(crate::model::api::HostConfigCgroupnsModeEnum::HOST)
        );
        let mut old = host();
        old.cgroups.cgroupns = false;
        let mut req = create::parse_create(
            json!({"HostConfig": {"CgroupnsMode": "private"}})
                .to_string()
                .as_bytes(),
            ApiVersion::CURRENT,
        )
        .unwrap();
        let e = validate(&mut req, &old).unwrap_err();
        assert!(
            e.to_string()
                .contains("Your kernel does not support cgroup namespaces"),
            "{e}"
        );
    }

    #[test]
    fn cgroup_values_get_dockerds_and_the_clis_words() {
        for (body, msg) in [
            (
                json!({"HostConfig": {"CpusetCpus": "0-3"}}),
                "Requested CPUs are not available - requested 0-3, available: 0-1",
            ),
            (
                json!({"HostConfig": {"CpusetCpus": "1-x"}}),
                "Invalid value 1-x for cpuset cpus: invalid format: 1-x",
            ),
            (
                json!({"HostConfig": {"CpusetMems": "1"}}),
                "Requested memory nodes are not available - requested 1, available: 0",
            ),
            (
                json!({"HostConfig": {"DeviceCgroupRules": ["c 1:3 rwx"]}}),
                "invalid device cgroup format 'c 1:3 rwx'",
            ),
            (
                json!({"HostConfig": {"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n", "CgroupPermissions": "rx"}]}}),
                "invalid device specification: /dev/null:/dev/n:rx",
            ),
            (
                json!({"HostConfig": {"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "dev/n"}]}}),
                "dev/n is not an absolute path",
            ),
            (
                json!({"HostConfig": {"BlkioDeviceReadBps": [{"Path": "sda", "Rate": 1}]}}),
                "bad format for device path: sda",
            ),
            (
                json!({"HostConfig": {"BlkioWeightDevice": [{"Path": "/dev/sda", "Weight": 5}]}}),
                "invalid weight for device: /dev/sda:5",
            ),
            (
                json!({"HostConfig": {"MemoryReservation": 1024}}),
                "Minimum memory reservation allowed is 6MB",
            ),
        ] {
            let got = refusal(body.clone());
            assert!(got.contains(msg), "{body}: {got}");
        }
        let r = check(
            json!({"HostConfig": {"CpusetCpus": "0,1", "CgroupParent": "/mine",
            "DeviceCgroupRules": ["b 8:* rw"], "MemoryReservation": 33554432}}),
        )
        .unwrap();
        assert_eq!(r.host_config.cpuset_cpus.as_deref(), Some("0,1"));
    }
}
