//! `POST /containers/{id}/update`: new resource limits for a container, as dockerd's
//! `ContainerUpdate` takes them: the update's own checks (the create's, in dockerd's
//! words), its merge into the container's HostConfig (with dockerd's conflicts), the
//! running container's cgroup written (`sys::cgroup_live`), then the record, so the new
//! limits also hold at the next start and after a restart of berthd.

use std::path::Path;

use actix::prelude::*;
use serde_json::Value;

use super::state::{Container, Status};
use super::{
    ContainerStoreActor, Fut, StoreError, UpdateContainer, drop_prestart, ready, validate,
    validate_cgroups,
};
use crate::model::api::{HostConfig, RestartPolicyNameEnum};
use crate::sys::cgroup_live::LiveResources;

/// The fields of an update berthd applies.
pub const HONOURED: &[&str] = &[
    "Memory",
    "MemorySwap",
    "MemoryReservation",
    "NanoCpus",
    "CpuShares",
    "CpuPeriod",
    "CpuQuota",
    "CpusetCpus",
    "CpusetMems",
    "PidsLimit",
    "BlkioWeight",
    "RestartPolicy",
];

/// The other fields of an update body (Docker's `Resources`): refused by name when set.
pub const REFUSED: &[&str] = &[
    "CgroupParent",
    "BlkioWeightDevice",
    "BlkioDeviceReadBps",
    "BlkioDeviceWriteBps",
    "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps",
    "CpuRealtimePeriod",
    "CpuRealtimeRuntime",
    "Devices",
    "DeviceCgroupRules",
    "DeviceRequests",
    "KernelMemory",
    "KernelMemoryTCP",
    "MemorySwappiness",
    "OomKillDisable",
    "Init",
    "Ulimits",
    "CpuCount",
    "CpuPercent",
    "IOMaximumIOps",
    "IOMaximumBandwidth",
];

/// A value that asks for nothing (dockerd's zero value; -1 is the CLI's "unset"
/// swappiness).
fn is_zero(key: &str, v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => {
            n.as_f64() == Some(0.0) || (key == "MemorySwappiness" && n.as_i64() == Some(-1))
        }
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// The first field of an update body that berthd cannot apply, as its refusal (400).
pub fn refuse(body: &Value) -> Result<(), StoreError> {
    let Some(m) = body.as_object() else {
        return Ok(());
    };
    for key in REFUSED {
        if m.get(*key).is_some_and(|v| !is_zero(key, v)) {
            return Err(StoreError::NotSupported {
                field: format!("{key} in an update (POST /containers/{{id}}/update)"),
            });
        }
    }
    Ok(())
}

/// dockerd's `UpdateContainer`: `upd` merged into `current`, or the conflict.
pub fn merge(current: &HostConfig, upd: &HostConfig) -> Result<HostConfig, String> {
    let pos = |v: Option<i64>| v.unwrap_or(0) > 0;
    if pos(upd.nano_cpus) && pos(current.cpu_period) {
        return Err(
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set"
                .into(),
        );
    }
    if pos(upd.nano_cpus) && pos(current.cpu_quota) {
        return Err(
            "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set"
                .into(),
        );
    }
    if pos(upd.cpu_period) && pos(current.nano_cpus) {
        return Err(
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"
                .into(),
        );
    }
    if pos(upd.cpu_quota) && pos(current.nano_cpus) {
        return Err(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
                .into(),
        );
    }
    let mut h = current.clone();
    let set = |dst: &mut Option<i64>, v: Option<i64>| {
        if let Some(v) = v.filter(|v| *v != 0) {
            *dst = Some(v);
        }
    };
    if let Some(w) = upd.blkio_weight.filter(|w| *w != 0) {
        h.blkio_weight = Some(w);
    }
    set(&mut h.cpu_shares, upd.cpu_shares);
    set(&mut h.nano_cpus, upd.nano_cpus);
    set(&mut h.cpu_period, upd.cpu_period);
    set(&mut h.cpu_quota, upd.cpu_quota);
    if let Some(c) = upd.cpuset_cpus.as_ref().filter(|c| !c.is_empty()) {
        h.cpuset_cpus = Some(c.clone());
    }
    if let Some(m) = upd.cpuset_mems.as_ref().filter(|m| !m.is_empty()) {
        h.cpuset_mems = Some(m.clone());
    }
    let memory = upd.memory.unwrap_or(0);
    if memory != 0 {
        if memory > current.memory_swap.unwrap_or(0) && upd.memory_swap.unwrap_or(0) == 0 {
            return Err("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into());
        }
        h.memory = Some(memory);
    }
    set(&mut h.memory_swap, upd.memory_swap);
    set(&mut h.memory_reservation, upd.memory_reservation);
    if upd.pids_limit.is_some() {
        h.pids_limit = upd.pids_limit;
    }
    if let Some(rp) = upd.restart_policy.as_ref() {
        let name = rp.name.unwrap_or(RestartPolicyNameEnum::EMPTY);
        if name != RestartPolicyNameEnum::EMPTY {
            if current.auto_remove == Some(true) && name != RestartPolicyNameEnum::NO {
                return Err("Restart policy cannot be updated because AutoRemove is enabled for the container".into());
            }
            h.restart_policy = Some(rp.clone());
        }
    }
    Ok(h)
}

/// What the update writes into a running container's cgroup: only what it sets.
pub fn live_resources(upd: &HostConfig) -> LiveResources {
    let nz = |v: Option<i64>| v.filter(|v| *v != 0);
    let nano = nz(upd.nano_cpus);
    let (cpu_period, cpu_quota) = match nano {
        Some(n) => (Some(100_000), Some(n / 10_000)),
        None => (
            nz(upd.cpu_period).and_then(|p| u64::try_from(p).ok()),
            nz(upd.cpu_quota),
        ),
    };
    LiveResources {
        memory: nz(upd.memory),
        memory_swap: nz(upd.memory_swap),
        memory_reservation: nz(upd.memory_reservation),
        cpu_shares: nz(upd.cpu_shares).and_then(|s| u64::try_from(s).ok()),
        cpu_period,
        cpu_quota,
        cpuset_cpus: upd.cpuset_cpus.clone().filter(|c| !c.is_empty()),
        cpuset_mems: upd.cpuset_mems.clone().filter(|m| !m.is_empty()),
        pids: upd.pids_limit.map(|p| p.max(0)),
        blkio_weight: upd.blkio_weight.filter(|w| *w != 0),
    }
}

impl ContainerStoreActor {
    /// Queues the record's HostConfig for writing (atomic).
    fn save_host_config(&self, c: &Container) {
        let Some(p) = &self.persister else { return };
        let path = self.containers_dir().join(&c.id).join("hostconfig.json");
        match serde_json::to_vec(&c.host_config) {
            Ok(bytes) => p.queue(&c.id, move || {
                if path.parent().is_some_and(Path::exists) {
                    crate::util::write_atomic(&path, &bytes)
                } else {
                    Ok(())
                }
            }),
            Err(e) => tracing::error!(error = %e, container_id = %c.id, "host config not saved"),
        }
    }

    /// Records `h` as container `id`'s HostConfig.
    fn set_host_config(&mut self, id: &str, h: HostConfig) {
        let Some(e) = self.containers.get_mut(id) else {
            return;
        };
        e.c.host_config = h;
        let c = e.c.clone();
        self.save_host_config(&c);
        tracing::info!(container_id = %id, "container updated");
    }
}

impl Handler<UpdateContainer> for ContainerStoreActor {
    type Result = Fut<Result<Vec<String>, StoreError>>;
    fn handle(&mut self, msg: UpdateContainer, _: &mut Self::Context) -> Self::Result {
        // The update's own values, checked as a create's (on a copy: the create's
        // defaults are not an update's).
        let mut probe = msg.update.clone();
        let mut warnings = Vec::new();
        let checked = validate::check_resources(&mut probe, &self.host, &mut warnings)
            .and_then(|()| validate_cgroups::check(&probe, &self.host))
            .and_then(|()| validate::check_restart_policy(&probe));
        if let Err(e) = checked {
            return ready(Err(e));
        }
        let mut upd = msg.update;
        if probe.memory_swap == Some(-1) && upd.memory_swap.unwrap_or(0) == 0 {
            // No swap accounting: memory limited without swap, as dockerd sets it.
            upd.memory_swap = Some(-1);
        }
        let entry = match self.entry(&msg.id) {
            Ok(e) => e,
            Err(e) => return ready(Err(e)),
        };
        let id = entry.c.id.clone();
        if entry.removing || entry.c.state.status == Status::Dead {
            return ready(Err(StoreError::CannotUpdate {
                id,
                reason: "container is marked for removal and cannot be \"update\"".into(),
                conflict: false,
            }));
        }
        let merged = match merge(&entry.c.host_config, &upd) {
            Ok(h) => h,
            Err(reason) => {
                return ready(Err(StoreError::CannotUpdate {
                    id,
                    reason,
                    conflict: true,
                }));
            }
        };
        let running = matches!(entry.c.state.status, Status::Running | Status::Paused);
        let c = entry.c.clone();
        if let Some(p) = self.take_prestart(&id) {
            // Set up with the old limits: set up again at the start.
            drop_prestart(&self.peers, &id, &p);
        }
        if !running {
            // The limits are written at the next start.
            self.set_host_config(&id, merged);
            return ready(Ok(warnings));
        }
        let cg = match self.live_cgroup(&c) {
            Ok(cg) => cg,
            Err(e) => return ready(Err(e)),
        };
        let res = live_resources(&upd);
        let work = tokio::task::spawn_blocking(move || cg.apply(&res));
        Box::pin(
            actix::fut::wrap_future::<_, Self>(work).map(move |res, act, _| {
                let failed = match res {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(match StoreError::cgroup("cgroup", &e) {
                        StoreError::Cgroup { detail, .. } => detail,
                        other => other.to_string(),
                    }),
                    Err(e) => Some(e.to_string()),
                };
                if let Some(reason) = failed {
                    return Err(StoreError::CannotUpdate {
                        id,
                        reason,
                        conflict: false,
                    });
                }
                act.set_host_config(&id, merged);
                Ok(warnings)
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(v: Value) -> HostConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn dockerds_update_conflicts() {
        let cur = hc(
            serde_json::json!({"Memory": 64 << 20, "MemorySwap": 128 << 20, "NanoCpus": 500_000_000}),
        );
        let e = merge(&cur, &hc(serde_json::json!({"Memory": 256 << 20}))).unwrap_err();
        assert!(e.starts_with("Memory limit should be smaller"), "{e}");
        let e = merge(&cur, &hc(serde_json::json!({"CpuQuota": 50_000}))).unwrap_err();
        assert!(e.contains("CPU Quota cannot be updated as NanoCPUs"), "{e}");
        let h = merge(
            &cur,
            &hc(serde_json::json!({"Memory": 100 << 20, "PidsLimit": 20})),
        )
        .unwrap();
        assert_eq!(
            (h.memory, h.memory_swap, h.pids_limit),
            (Some(100 << 20), Some(128 << 20), Some(20))
        );
        let h = merge(
            &cur,
            &hc(serde_json::json!({"Memory": 256 << 20, "MemorySwap": -1})),
        )
        .unwrap();
        assert_eq!((h.memory, h.memory_swap), (Some(256 << 20), Some(-1)));
    }

    #[test]
    fn fields_an_update_cannot_apply_are_refused_by_name() {
        assert!(refuse(&serde_json::json!({"Memory": 1, "Ulimits": [], "KernelMemory": 0, "MemorySwappiness": -1})).is_ok());
        let e = refuse(&serde_json::json!({"Ulimits": [{"Name": "nofile"}]})).unwrap_err();
        assert!(e.to_string().contains("Ulimits"), "{e}");
        assert!(refuse(&serde_json::json!({"RestartPolicy": {"Name": "always"}})).is_ok());
        assert!(refuse(&serde_json::json!({"RestartPolicy": {"Name": "no"}})).is_ok());
    }

    #[test]
    fn nano_cpus_become_a_quota_per_100ms() {
        let r = live_resources(&hc(
            serde_json::json!({"NanoCpus": 500_000_000, "PidsLimit": -1}),
        ));
        assert_eq!(
            (r.cpu_period, r.cpu_quota, r.pids),
            (Some(100_000), Some(50_000), Some(0))
        );
        assert_eq!(r.memory, None);
    }
}
