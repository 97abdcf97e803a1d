//! The process settings of a create and a start: `--ulimit` (and the daemon's
//! `--default-ulimit`), `--sysctl`, `--group-add`, `--oom-score-adj`, `--init`, and the
//! PID, IPC and UTS modes. dockerd's checks at create in its words, the names of
//! `container:<name>` modes rewritten to ids as dockerd does, and the monitor's
//! `ProcessSpec` made at each start (where another container's namespaces are looked up).

use std::sync::OnceLock;

use super::error::StoreError;
use super::state::Container;
use crate::model::api::{ContainerConfig, HostConfig};
use crate::model::ulimit::{self, Ulimit};
use crate::monitor::spec::{IpcNs, PidNs, ProcessSpec};

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        message: message.into(),
    }
}

/// The sysctls of the IPC namespace that dockerd's whitelist names.
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The limits of `HostConfig.Ulimits`, as given.
pub fn ulimits_of(h: &HostConfig) -> Vec<Ulimit> {
    h.ulimits
        .iter()
        .flatten()
        .map(|u| {
            let soft = u.soft.unwrap_or(0);
            Ulimit {
                name: u.name.clone().unwrap_or_default(),
                soft,
                hard: u.hard.unwrap_or(soft),
            }
        })
        .collect()
}

/// dockerd's checks of the process settings at create (the CLI's for sysctls, runc's
/// for the namespaces a sysctl needs), in their words.
pub fn check(c: &ContainerConfig, h: &HostConfig) -> Result<(), StoreError> {
    for u in ulimits_of(h) {
        u.check().map_err(invalid)?;
    }
    let ipc = h.ipc_mode.as_deref().unwrap_or("");
    let net = h.network_mode.as_deref().unwrap_or("");
    let mut keys: Vec<(&String, &String)> = h.sysctls.iter().flatten().collect();
    keys.sort();
    for (key, value) in keys {
        if IPC_SYSCTLS.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            if ipc == "host" {
                return Err(invalid(format!(
                    "sysctl {key:?} is not allowed in the hosts ipc namespace"
                )));
            }
        } else if key.starts_with("net.") {
            if net == "host" {
                return Err(invalid(format!(
                    "sysctl {key:?} not allowed in host network namespace"
                )));
            }
        } else {
            return Err(invalid(format!(
                "sysctl '{key}={value}' is not whitelisted"
            )));
        }
    }
    if h.uts_mode.as_deref() == Some("host") && !c.hostname.as_deref().unwrap_or("").is_empty() {
        return Err(invalid("conflicting options: hostname and the UTS mode"));
    }
    Ok(())
}

/// Each limit's name and berthd's own hard limit (`None`: unlimited).
type OwnLimits = Vec<(String, Option<u64>)>;

/// berthd's own hard limits, and whether it may raise them (read once).
fn own_limits() -> &'static (bool, OwnLimits) {
    static OWN: OnceLock<(bool, OwnLimits)> = OnceLock::new();
    OWN.get_or_init(|| {
        let limits = ulimit::NAMES
            .iter()
            .filter_map(|(n, r)| {
                crate::sys::rlimit::hard(*r)
                    .ok()
                    .map(|h| ((*n).to_owned(), h))
            })
            .collect();
        (crate::sys::rlimit::may_raise_hard_limits(), limits)
    })
}

/// Refuses a hard limit above berthd's own when berthd may not raise hard limits (it
/// lacks `CAP_SYS_RESOURCE`): the container's init could not set it. `limits` are the
/// container's limits with the daemon's defaults merged in.
pub fn check_hard_limits(limits: &[Ulimit]) -> Result<(), StoreError> {
    if limits.is_empty() {
        return Ok(());
    }
    let (may_raise, own) = own_limits();
    check_hard_limits_against(limits, *may_raise, own)
}

fn check_hard_limits_against(
    limits: &[Ulimit],
    may_raise: bool,
    own: &[(String, Option<u64>)],
) -> Result<(), StoreError> {
    if may_raise {
        return Ok(());
    }
    for u in limits {
        let Some((_, Some(max))) = own.iter().find(|(n, _)| *n == u.name) else {
            continue;
        };
        let above = u64::try_from(u.hard).map_or(true, |h| h > *max);
        if above {
            let hard = if u.hard < 0 {
                "unlimited".to_owned()
            } else {
                u.hard.to_string()
            };
            return Err(invalid(format!(
                "ulimit {}: the hard limit {hard} is above berthd's own ({max}), and raising a \
                 hard limit needs CAP_SYS_RESOURCE, which berthd does not hold",
                u.name
            )));
        }
    }
    Ok(())
}

/// The container's limits with the daemon's defaults for the names it does not set
/// (dockerd's `mergeUlimits`).
pub fn merged_ulimits(h: &HostConfig, defaults: &[Ulimit]) -> Vec<Ulimit> {
    let mut out = ulimits_of(h);
    for d in defaults {
        if !out.iter().any(|u| u.name == d.name) {
            out.push(d.clone());
        }
    }
    out
}

/// Rewrites `container:<name>` PID and IPC modes to `container:<id>` (dockerd's
/// `adaptSharedNamespaceContainer`); a name `resolve` does not know is left as it is,
/// for the start to report.
pub fn adapt_shared_namespaces(h: &mut HostConfig, resolve: impl Fn(&str) -> Option<String>) {
    for mode in [&mut h.pid_mode, &mut h.ipc_mode, &mut h.network_mode] {
        let Some(m) = mode.as_deref() else { continue };
        if let Some(name) = m.strip_prefix("container:") {
            if let Some(id) = resolve(name) {
                *mode = Some(format!("container:{id}"));
            }
        }
    }
}

/// Whether the container joins another's namespaces (it cannot be set up ahead of its
/// start: the other one must be running then).
pub fn joins_another(h: &HostConfig) -> bool {
    [&h.pid_mode, &h.ipc_mode, &h.network_mode]
        .into_iter()
        .any(|m| m.as_deref().is_some_and(|m| m.starts_with("container:")))
}

/// The container whose network namespace `h` joins (`--network container:<id>`).
pub fn network_donor(h: &HostConfig) -> Option<&str> {
    h.network_mode.as_deref()?.strip_prefix("container:")
}

/// Another container, as a start that joins its namespaces sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    /// Its init's host pid, when it runs.
    pub pid: Option<i32>,
    pub ipc_mode: String,
}

/// The monitor's process settings for a start of `c`. `lookup` finds another container
/// by id or name (`None`: no such container); `defaults` are the daemon's ulimits.
pub fn process_spec(
    c: &Container,
    defaults: &[Ulimit],
    lookup: impl Fn(&str) -> Option<Target>,
) -> Result<ProcessSpec, StoreError> {
    let h = &c.host_config;
    let mut sysctls: Vec<(String, String)> = h
        .sysctls
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    sysctls.sort();
    let pid_mode = h.pid_mode.as_deref().unwrap_or("");
    let pid = match pid_mode {
        "host" => PidNs::Host,
        m => match m.strip_prefix("container:") {
            Some(name) => {
                let t = lookup(name).ok_or_else(|| {
                    invalid(format!(
                        "cannot join PID of a non running container: {name}: No such container: {name}"
                    ))
                })?;
                let pid = t.pid.ok_or_else(|| StoreError::JoinNotRunning {
                    what: String::new(),
                    id: t.id.clone(),
                })?;
                PidNs::Join(pid)
            }
            None => PidNs::Private,
        },
    };
    let ipc_mode = h.ipc_mode.as_deref().unwrap_or("");
    let ipc = match ipc_mode {
        "host" => IpcNs::Host,
        "none" => IpcNs::NoShm,
        m => match m.strip_prefix("container:") {
            Some(name) => {
                let what = format!("can't join IPC of container {name}: ");
                let t = lookup(name)
                    .ok_or_else(|| invalid(format!("{what}No such container: {name}")))?;
                let pid = t.pid.ok_or_else(|| StoreError::JoinNotRunning {
                    what: what.clone(),
                    id: t.id.clone(),
                })?;
                if !matches!(t.ipc_mode.as_str(), "shareable" | "host") {
                    return Err(invalid(format!(
                        "{what}non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
                    )));
                }
                if t.ipc_mode == "host" {
                    IpcNs::Host
                } else {
                    IpcNs::Join(pid)
                }
            }
            None => IpcNs::Private,
        },
    };
    Ok(ProcessSpec {
        group_add: h.group_add.clone().unwrap_or_default(),
        rlimits: merged_ulimits(h, defaults),
        sysctls,
        oom_score_adj: h.oom_score_adj.filter(|v| *v != 0),
        init: h.init == Some(true),
        pid,
        ipc,
        uts_host: h.uts_mode.as_deref() == Some("host"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn host(v: serde_json::Value) -> HostConfig {
        serde_json::from_value(v).unwrap()
    }

    fn refusal(c: serde_json::Value, h: serde_json::Value) -> String {
        let c: ContainerConfig = serde_json::from_value(c).unwrap();
        check(&c, &host(h)).unwrap_err().to_string()
    }

    #[test]
    fn dockerds_checks_in_its_words() {
        let none = json!({});
        assert_eq!(
            refusal(none.clone(), json!({"Sysctls": {"kernel.hostname": "x"}})),
            "sysctl 'kernel.hostname=x' is not whitelisted"
        );
        assert_eq!(
            refusal(
                none.clone(),
                json!({"Sysctls": {"net.ipv4.ip_forward": "1"}, "NetworkMode": "host"})
            ),
            "sysctl \"net.ipv4.ip_forward\" not allowed in host network namespace"
        );
        assert_eq!(
            refusal(
                none.clone(),
                json!({"Sysctls": {"kernel.shmmax": "1"}, "IpcMode": "host"})
            ),
            "sysctl \"kernel.shmmax\" is not allowed in the hosts ipc namespace"
        );
        assert_eq!(
            refusal(
                none.clone(),
                json!({"Ulimits": [{"Name": "nofiles", "Soft": 1, "Hard": 1}]})
            ),
            "invalid ulimit type: nofiles"
        );
        assert_eq!(
            refusal(
                none,
                json!({"Ulimits": [{"Name": "nofile", "Soft": 3, "Hard": 1}]})
            ),
            "ulimit soft limit must be less than or equal to hard limit: 3 > 1"
        );
        assert_eq!(
            refusal(json!({"Hostname": "h"}), json!({"UTSMode": "host"})),
            "conflicting options: hostname and the UTS mode"
        );
        let ok = host(
            json!({"Sysctls": {"net.core.somaxconn": "1024", "fs.mqueue.msg_max": "20",
            "kernel.sem": "1 2 3 4"}, "UTSMode": "host"}),
        );
        check(&ContainerConfig::default(), &ok).unwrap();
    }

    #[test]
    fn hard_limits_above_berthds_are_refused_without_cap_sys_resource() {
        let own = vec![("nofile".to_owned(), Some(1024)), ("core".to_owned(), None)];
        let l = |name: &str, hard: i64| {
            vec![Ulimit {
                name: name.into(),
                soft: 0,
                hard,
            }]
        };
        check_hard_limits_against(&l("nofile", 1024), false, &own).unwrap();
        check_hard_limits_against(&l("core", -1), false, &own).unwrap();
        check_hard_limits_against(&l("nofile", 4096), true, &own).unwrap();
        let e = check_hard_limits_against(&l("nofile", 4096), false, &own)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "ulimit nofile: the hard limit 4096 is above berthd's own (1024), and raising a hard \
             limit needs CAP_SYS_RESOURCE, which berthd does not hold"
        );
        let e = check_hard_limits_against(&l("nofile", -1), false, &own)
            .unwrap_err()
            .to_string();
        assert!(e.contains("the hard limit unlimited"), "{e}");
    }

    #[test]
    fn defaults_fill_the_names_the_container_leaves() {
        let h = host(json!({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 20}]}));
        let d = vec![
            Ulimit {
                name: "nofile".into(),
                soft: 1,
                hard: 1,
            },
            Ulimit {
                name: "nproc".into(),
                soft: 5,
                hard: 6,
            },
        ];
        let m = merged_ulimits(&h, &d);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].soft, m[0].hard), (10, 20));
        assert_eq!(m[1].name, "nproc");
    }

    #[test]
    fn names_become_ids_and_joins_need_a_running_shareable_target() {
        let mut h = host(json!({"PidMode": "container:web", "IpcMode": "container:nosuch"}));
        adapt_shared_namespaces(&mut h, |n| (n == "web").then(|| "abc123".to_owned()));
        assert_eq!(h.pid_mode.as_deref(), Some("container:abc123"));
        assert_eq!(h.ipc_mode.as_deref(), Some("container:nosuch"));
        assert!(joins_another(&h));

        let c = |h: serde_json::Value| Container {
            id: "me".into(),
            name: "/me".into(),
            created: chrono::Utc::now(),
            path: "true".into(),
            args: Vec::new(),
            config: ContainerConfig::default(),
            host_config: host(h),
            image: String::new(),
            state: Default::default(),
            rootfs: crate::model::spec::RootfsSpec {
                fstype: "bind".into(),
                source: "/".into(),
                options: String::new(),
                target: "/".into(),
            },
            driver: "vfs".into(),
            network: crate::monitor::spec::NetworkSpec::None,
            restart_count: 0,
            has_been_manually_stopped: false,
            mount_points: Vec::new(),
            endpoint: None,
            attachments: Vec::new(),
            extra_endpoints: Vec::new(),
        };
        let lookup = |pid: Option<i32>, ipc: &str| {
            let ipc = ipc.to_owned();
            move |n: &str| {
                (n == "abc").then(|| Target {
                    id: "abc".into(),
                    pid,
                    ipc_mode: ipc.clone(),
                })
            }
        };
        let p = process_spec(
            &c(
                json!({"PidMode": "container:abc", "IpcMode": "container:abc", "Init": true,
                "GroupAdd": ["10"], "OomScoreAdj": 5, "UTSMode": "host"}),
            ),
            &[],
            lookup(Some(42), "shareable"),
        )
        .unwrap();
        assert_eq!((p.pid, p.ipc), (PidNs::Join(42), IpcNs::Join(42)));
        assert!(p.init && p.uts_host);
        assert_eq!(p.oom_score_adj, Some(5));
        assert_eq!(p.group_add, vec!["10".to_owned()]);

        let e = process_spec(
            &c(json!({"IpcMode": "container:abc"})),
            &[],
            lookup(Some(42), "private"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "can't join IPC of container abc: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
        );
        let e = process_spec(
            &c(json!({"IpcMode": "container:abc"})),
            &[],
            lookup(None, "shareable"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "can't join IPC of container abc: container abc is not running"
        );
        assert_eq!(e.kind(), crate::error::ErrorKind::Conflict);
        let e = process_spec(
            &c(json!({"PidMode": "container:zzz"})),
            &[],
            lookup(None, "shareable"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot join PID of a non running container: zzz: No such container: zzz"
        );
        let e = process_spec(
            &c(json!({"PidMode": "container:abc"})),
            &[],
            lookup(None, ""),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "container abc is not running");
        let p = process_spec(
            &c(json!({"PidMode": "host", "IpcMode": "none"})),
            &[],
            lookup(None, ""),
        )
        .unwrap();
        assert_eq!((p.pid, p.ipc), (PidNs::Host, IpcNs::NoShm));
    }
}
