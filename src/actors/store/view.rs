//! The documents that `docker ps` and `docker inspect` read, rendered from a record through
//! the Engine API's types (`model::api`), with every key dockerd prints.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::state::{Container, Status, docker_time};
use crate::model::api::{
    ContainerInspectResponse, ContainerSummaryInner, ContainerSummaryInnerHostConfig,
    ContainerSummaryInnerNetworkSettings, EndpointSettings, GraphDriverData, MountPoint,
    NetworkSettings,
};
use crate::model::complete::Template;
use crate::model::filters::{
    ContainerFilter, ContainerFilterView, FilterError, MountView, PortView,
};
use crate::monitor::spec::NetworkSpec;

/// The name of the container's own network: `bridge`, `host`, `none`, or the
/// user-defined network its `NetworkMode` names.
pub fn network_name(c: &Container) -> &str {
    match c.network {
        NetworkSpec::None => "none",
        NetworkSpec::Host => "host",
        NetworkSpec::New => match c.network_mode() {
            "default" | "bridge" | "" => "bridge",
            m => m,
        },
    }
}

/// The container's endpoint on its network, as inspect and ps show it.
fn endpoint(c: &Container) -> EndpointSettings {
    let own = c.attachments.iter().find(|a| a.name == network_name(c));
    endpoint_settings(c, c.endpoint.as_ref(), own)
}

/// An endpoint `ep` (while it runs) on a network, with what the container asked of it
/// there (`attach`, on a user-defined network): dockerd's `EndpointSettings`.
fn endpoint_settings(
    c: &Container,
    ep: Option<&crate::actors::network::Endpoint>,
    attach: Option<&crate::actors::network::Attachment>,
) -> EndpointSettings {
    let text =
        |f: fn(&crate::actors::network::Endpoint) -> String| Some(ep.map(f).unwrap_or_default());
    EndpointSettings {
        ipam_config: attach
            .and_then(|a| a.ip)
            .map(|ip| crate::model::api::EndpointIpamConfig {
                ipv4_address: Some(ip.to_string()),
                ..Default::default()
            }),
        links: None,
        // dockerd 20.10: the given aliases and the short id, on a user-defined network.
        aliases: attach.map(|a| {
            let mut v = a.aliases.clone();
            v.push(c.id[..12.min(c.id.len())].to_owned());
            v
        }),
        network_id: Some(
            ep.map(|e| e.network_id.clone())
                .or_else(|| attach.map(|a| a.network_id.clone()))
                .unwrap_or_default(),
        ),
        endpoint_id: text(|e| e.endpoint_id.clone()),
        gateway: text(|e| e.gateway.to_string()),
        ip_address: text(|e| e.ip.to_string()),
        ip_prefix_len: Some(ep.map_or(0, |e| i64::from(e.prefix))),
        ipv6_gateway: Some(String::new()),
        global_ipv6_address: Some(String::new()),
        global_ipv6_prefix_len: Some(0),
        mac_address: text(|e| e.mac.clone()),
        driver_opts: None,
    }
}

/// `{name: endpoint}` (completed with the rest of the reply).
/// `{}` on another container's network, as dockerd shows it.
fn networks_value(c: &Container) -> Value {
    if super::process::network_donor(&c.host_config).is_some() {
        return json!({});
    }
    let mut v = json!({ network_name(c): endpoint(c) });
    for a in c.attachments.iter().filter(|a| a.name != network_name(c)) {
        let ep = c
            .extra_endpoints
            .iter()
            .find(|e| e.network_id == a.network_id);
        v[a.name.as_str()] = json!(endpoint_settings(c, ep, Some(a)));
    }
    v
}

/// The mount points, as `Mounts` of ps and inspect (dockerd leaves `Name` and `Driver`
/// out of a bind's and a tmpfs's).
fn mount_points(c: &Container) -> Vec<MountPoint> {
    c.mounts()
        .iter()
        .map(|m| {
            let volume = m.typ == "volume";
            MountPoint {
                typ: Some(m.typ.clone()),
                name: volume.then(|| m.name.clone()),
                source: Some(m.source.clone()),
                destination: Some(m.destination.clone()),
                driver: volume.then(|| m.driver.clone()),
                mode: Some(m.mode.clone()),
                rw: Some(m.rw),
                propagation: Some(m.propagation.clone()),
            }
        })
        .collect()
}

/// The port map of a container (dockerd's `NetworkSettings.Ports`): only while it runs
/// with a network of its own on the bridge; its exposed ports, and what it publishes.
fn port_map(c: &Container) -> HashMap<String, Option<Vec<crate::model::api::PortBinding>>> {
    let running_bridged = c.state.is_running() && matches!(c.network, NetworkSpec::New);
    let mapped = c
        .endpoint
        .as_ref()
        .filter(|_| running_bridged)
        .map(|e| e.ports.as_slice())
        .or(running_bridged.then_some(&[][..]));
    super::ports::inspect_ports(&c.config, &c.host_config, mapped)
}

/// The `Ports` rows of `docker ps`, as dockerd lists the port map: one per binding, one
/// without a public port for an exposed port that has none; sorted.
struct PortRow {
    private: u16,
    public: Option<u16>,
    proto: String,
    ip: Option<String>,
}

fn port_rows(c: &Container) -> Vec<PortRow> {
    let mut rows = Vec::new();
    for (key, bindings) in port_map(c) {
        let (port, proto) = key.split_once('/').unwrap_or((&key, "tcp"));
        let Ok(private) = port.parse::<u16>() else {
            continue;
        };
        match bindings {
            None => rows.push(PortRow {
                private,
                public: None,
                proto: proto.to_owned(),
                ip: None,
            }),
            Some(list) => {
                for b in list {
                    rows.push(PortRow {
                        private,
                        public: b.host_port.as_deref().and_then(|p| p.parse().ok()),
                        proto: proto.to_owned(),
                        ip: b.host_ip,
                    });
                }
            }
        }
    }
    rows.sort_by(|a, b| {
        (a.private, &a.proto, a.public, &a.ip).cmp(&(b.private, &b.proto, b.public, &b.ip))
    });
    rows
}

/// One row of `GET /containers/json`.
pub fn summary(c: &Container, now: DateTime<Utc>) -> Value {
    let row = ContainerSummaryInner {
        id: Some(c.id.clone()),
        names: Some(vec![c.name.clone()]),
        image: Some(c.image_ref().to_owned()),
        image_id: Some(c.image.clone()),
        command: Some(c.command_line()),
        created: Some(c.created.timestamp()),
        ports: Some(
            port_rows(c)
                .into_iter()
                .map(|r| crate::model::api::Port {
                    ip: r.ip,
                    private_port: i64::from(r.private),
                    public_port: r.public.map(i64::from),
                    typ: r.proto.parse().ok(),
                })
                .collect(),
        ),
        size_rw: None,
        size_root_fs: None,
        labels: Some(c.labels()),
        state: Some(c.state.status.as_str().to_owned()),
        status: Some(c.state.status_text(now)),
        host_config: Some(ContainerSummaryInnerHostConfig {
            network_mode: Some(c.network_mode().to_owned()),
        }),
        network_settings: Some(ContainerSummaryInnerNetworkSettings { networks: None }),
        // The 1.41 swagger gives `Mounts` the type of a mount request; dockerd sends mount
        // points, as inspect does: set below.
        mounts: None,
    };
    let mut v = serde_json::to_value(row).unwrap_or(Value::Null);
    v["NetworkSettings"]["Networks"] = networks_value(c);
    v["Mounts"] = serde_json::to_value(mount_points(c)).unwrap_or(Value::Null);
    Template::ContainerSummary.complete(&mut v);
    v
}

/// The `docker inspect` document; `status` is the record's, or `removing` while a removal
/// runs.
pub fn inspect(c: &Container, data_root: &Path, status: Status) -> Value {
    let dir = data_root.join("containers").join(&c.id);
    let p = |f: &str| Some(dir.join(f).to_string_lossy().into_owned());
    let mut host_config = c.host_config.clone();
    // dockerd leaves out an empty mount list (`omitempty`).
    if host_config.mounts.as_ref().is_some_and(Vec::is_empty) {
        host_config.mounts = None;
    }
    let doc = ContainerInspectResponse {
        id: Some(c.id.clone()),
        created: Some(docker_time(Some(c.created))),
        path: Some(c.path.clone()),
        args: Some(c.args.clone()),
        state: Some(c.state.to_model(status)),
        image: Some(c.image.clone()),
        resolv_conf_path: p("resolv.conf"),
        hostname_path: p("hostname"),
        hosts_path: p("hosts"),
        // dockerd names a file only for the json-file driver.
        log_path: if c
            .host_config
            .log_config
            .as_ref()
            .and_then(|l| l.typ.as_deref())
            == Some("none")
        {
            Some(String::new())
        } else {
            p(&format!("{}-json.log", c.id))
        },
        name: Some(c.name.clone()),
        restart_count: Some(c.restart_count),
        driver: Some(c.driver.clone()),
        platform: Some("linux".to_owned()),
        mount_label: Some(String::new()),
        process_label: Some(String::new()),
        // berthd applies no AppArmor profile: only what `apparmor=unconfined` asked for.
        app_armor_profile: Some(crate::security::apparmor_profile(&c.host_config)),
        exec_ids: None,
        host_config: Some(host_config),
        graph_driver: Some(GraphDriverData {
            name: c.driver.clone(),
            data: driver_data(c),
        }),
        size_rw: None,
        size_root_fs: None,
        mounts: Some(mount_points(c)),
        config: Some(c.config.clone()),
        network_settings: Some(network_settings(c)),
    };
    let mut v = serde_json::to_value(doc).unwrap_or(Value::Null);
    v["NetworkSettings"]["Networks"] = networks_value(c);
    Template::ContainerInspect.complete(&mut v);
    v
}

/// `NetworkSettings` of `docker inspect`.
fn network_settings(c: &Container) -> NetworkSettings {
    let ep = endpoint(c);
    NetworkSettings {
        bridge: Some(
            c.endpoint
                .as_ref()
                .map(|e| e.bridge.clone())
                .unwrap_or_default(),
        ),
        sandbox_id: Some(String::new()),
        hairpin_mode: Some(false),
        link_local_ipv6_address: Some(String::new()),
        link_local_ipv6_prefix_len: Some(0),
        ports: Some(port_map(c)),
        sandbox_key: Some(if c.state.pid > 0 {
            format!("/proc/{}/ns/net", c.state.pid)
        } else {
            String::new()
        }),
        secondary_ip_addresses: None,
        secondary_ipv6_addresses: None,
        endpoint_id: ep.endpoint_id,
        gateway: ep.gateway,
        global_ipv6_address: Some(String::new()),
        global_ipv6_prefix_len: Some(0),
        ip_address: ep.ip_address,
        ip_prefix_len: ep.ip_prefix_len,
        ipv6_gateway: Some(String::new()),
        mac_address: ep.mac_address,
        networks: None,
    }
}

/// The GraphDriver.Data of `docker inspect`, from the rootfs mount options.
pub fn driver_data(c: &Container) -> HashMap<String, String> {
    let mut m = HashMap::new();
    if c.rootfs.fstype == "overlay" {
        let opt = |k: &str| {
            c.rootfs
                .options
                .split(',')
                .find_map(|o| o.strip_prefix(k))
                .unwrap_or("")
                .to_owned()
        };
        m.insert("LowerDir".to_owned(), opt("lowerdir="));
        m.insert(
            "MergedDir".to_owned(),
            c.rootfs.target.to_string_lossy().into_owned(),
        );
        m.insert("UpperDir".to_owned(), opt("upperdir="));
        m.insert("WorkDir".to_owned(), opt("workdir="));
    } else {
        m.insert("Dir".to_owned(), c.rootfs.source.clone());
    }
    m
}

/// The one place the list filters read a record: what `docker ps --filter` can ask
/// about `c`, in dockerd's terms.
pub fn filter_view(c: &Container) -> ContainerFilterView<'_> {
    let labels = crate::model::filters::label_pairs(c.config.labels.iter().flatten());
    let network_id = c.endpoint.as_ref().map_or("", |e| e.network_id.as_str());
    // dockerd lists a container's ports from its port map, which exists only while it
    // runs with a network of its own.
    let ports = port_rows(c)
        .into_iter()
        .map(|r| PortView {
            private: r.private,
            public: r.public,
            proto: match r.proto.as_str() {
                "udp" => "udp",
                "sctp" => "sctp",
                _ => "tcp",
            },
        })
        .collect();
    let mounts = mount_points(c)
        .into_iter()
        .map(|m| MountView {
            name: m.name.unwrap_or_default(),
            source: m.source.unwrap_or_default(),
            destination: m.destination.unwrap_or_default(),
        })
        .collect();
    ContainerFilterView {
        id: &c.id,
        name: &c.name,
        image_id: &c.image,
        labels,
        state: c.state.status.as_str(),
        running: c.state.is_running(),
        started: c.state.started_at.is_some(),
        exit_code: c.state.exit_code,
        created: c.created,
        networks: if super::process::network_donor(&c.host_config).is_some() {
            Vec::new()
        } else {
            // Its own network, then the user-defined ones it was connected to.
            std::iter::once((network_name(c), network_id))
                .chain(
                    c.attachments
                        .iter()
                        .filter(|a| a.name != network_name(c))
                        .map(|a| (a.name.as_str(), a.network_id.as_str())),
                )
                .collect()
        },
        ports,
        mounts,
        health: c.state.health_str(),
        isolation: "default",
        is_task: false,
    }
}

/// Resolves the parts of `filter` that name containers (`id`, `before`, `since`).
pub fn resolve_filter<'a>(
    filter: &mut ContainerFilter,
    all: impl Iterator<Item = &'a Container>,
) -> Result<(), FilterError> {
    if filter.needs_resolution() {
        filter.resolve(all.map(filter_view))?;
    }
    Ok(())
}

/// What a `ps` row depends on besides the record's fixed parts; a change rebuilds the row.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryKey {
    status: Status,
    exit_code: i32,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    endpoint: Option<String>,
    health: &'static str,
}

impl SummaryKey {
    /// Whether `c` still has this key; compares in place, without building a key (the
    /// list path asks for every row on every request).
    pub fn matches(&self, c: &Container) -> bool {
        self.status == c.state.status
            && self.exit_code == c.state.exit_code
            && self.started_at == c.state.started_at
            && self.finished_at == c.state.finished_at
            && self.endpoint.as_deref() == c.endpoint.as_ref().map(|e| e.endpoint_id.as_str())
            && self.health == c.state.health_str()
    }

    pub fn of(c: &Container) -> Self {
        SummaryKey {
            status: c.state.status,
            exit_code: c.state.exit_code,
            started_at: c.state.started_at,
            finished_at: c.state.finished_at,
            endpoint: c.endpoint.as_ref().map(|e| e.endpoint_id.clone()),
            health: c.state.health_str(),
        }
    }
}

/// A `ps` row encoded once, around its `Status` text: the only part that changes with the
/// clock. The list path then copies bytes instead of building and encoding JSON per row.
#[derive(Debug, Clone)]
pub struct SummaryRow {
    pub key: SummaryKey,
    prefix: Vec<u8>,
    suffix: Vec<u8>,
}

const STATUS_SENTINEL: &str = "\u{1}berth-status\u{1}";

impl SummaryRow {
    pub fn build(c: &Container) -> Self {
        let mut v = summary(c, Utc::now());
        v["Status"] = Value::String(STATUS_SENTINEL.to_owned());
        let bytes = serde_json::to_vec(&v).unwrap_or_default();
        let needle =
            serde_json::to_vec(&Value::String(STATUS_SENTINEL.to_owned())).unwrap_or_default();
        let pos = bytes
            .windows(needle.len())
            .position(|w| w == needle.as_slice())
            .unwrap_or(bytes.len());
        SummaryRow {
            key: SummaryKey::of(c),
            prefix: bytes[..pos].to_vec(),
            suffix: bytes[(pos + needle.len()).min(bytes.len())..].to_vec(),
        }
    }

    /// Appends the row with the status text as of `now`.
    pub fn write(&self, c: &Container, now: DateTime<Utc>, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.prefix);
        let _ = serde_json::to_writer(&mut *out, &c.state.status_text(now));
        out.extend_from_slice(&self.suffix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Container {
        serde_json::from_value(json!({
            "id": "a".repeat(64), "name": "/t1", "created": "2026-11-28T00:00:00Z",
            "path": "sleep", "args": ["1"], "config": {"Image": "busybox", "Labels": {"k": "v"}},
            "image": "sha256:x", "state": {"status": "running", "pid": 3, "exit_code": 0,
                "error": "", "oom_killed": false, "started_at": "2026-11-28T00:00:00Z",
                "finished_at": null},
            "rootfs": {"fstype": "bind", "source": "/x", "options": "", "target": "/x"},
            "driver": "vfs", "network": "None", "restart_count": 0
        }))
        .unwrap()
    }

    #[test]
    fn a_cached_row_is_the_rendered_row() {
        let mut c = record();
        let now = Utc::now();
        let row = SummaryRow::build(&c);
        let mut out = Vec::new();
        row.write(&c, now, &mut out);
        let cached: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(cached, summary(&c, now));
        assert_eq!(cached["Labels"], json!({"k": "v"}));
        assert_eq!(cached["Created"], json!(1795824000));
        c.state.set_exited(3, now, false);
        assert_ne!(row.key, SummaryKey::of(&c));
        assert!(!row.key.matches(&c));
        assert!(SummaryKey::of(&c).matches(&c));
    }

    /// Every key of dockerd 20.10's inspect document (api-traces/inspect.txt), at every
    /// level the CLI's templates reach.
    #[test]
    fn inspect_has_every_key_dockerd_prints() {
        let c = record();
        let doc = inspect(&c, Path::new("/d"), c.state.status);
        for k in [
            "Id",
            "Created",
            "Path",
            "Args",
            "State",
            "Image",
            "ResolvConfPath",
            "HostnamePath",
            "HostsPath",
            "LogPath",
            "Name",
            "RestartCount",
            "Driver",
            "Platform",
            "MountLabel",
            "ProcessLabel",
            "AppArmorProfile",
            "ExecIDs",
            "HostConfig",
            "GraphDriver",
            "Mounts",
            "Config",
            "NetworkSettings",
        ] {
            assert!(doc.get(k).is_some(), "{k}");
        }
        for k in [
            "Status",
            "Running",
            "Paused",
            "Restarting",
            "OOMKilled",
            "Dead",
            "Pid",
            "ExitCode",
            "Error",
            "StartedAt",
            "FinishedAt",
        ] {
            assert!(doc["State"].get(k).is_some(), "State.{k}");
        }
        for (part, t) in [
            ("HostConfig", Template::HostConfig),
            ("Config", Template::ContainerConfig),
        ] {
            for k in t.value().as_object().unwrap().keys() {
                assert!(doc[part].get(k).is_some(), "{part}.{k}");
            }
        }
        for k in [
            "Bridge",
            "SandboxID",
            "HairpinMode",
            "LinkLocalIPv6Address",
            "LinkLocalIPv6PrefixLen",
            "Ports",
            "SandboxKey",
            "SecondaryIPAddresses",
            "SecondaryIPv6Addresses",
            "EndpointID",
            "Gateway",
            "GlobalIPv6Address",
            "GlobalIPv6PrefixLen",
            "IPAddress",
            "IPPrefixLen",
            "IPv6Gateway",
            "MacAddress",
            "Networks",
        ] {
            assert!(
                doc["NetworkSettings"].get(k).is_some(),
                "NetworkSettings.{k}"
            );
        }
        let ep = &doc["NetworkSettings"]["Networks"]["none"];
        for k in [
            "IPAMConfig",
            "Links",
            "Aliases",
            "NetworkID",
            "EndpointID",
            "Gateway",
            "IPAddress",
            "IPPrefixLen",
            "IPv6Gateway",
            "GlobalIPv6Address",
            "GlobalIPv6PrefixLen",
            "MacAddress",
            "DriverOpts",
        ] {
            assert!(ep.get(k).is_some(), "Networks.none.{k}");
        }
        assert_eq!(doc["State"]["Status"], "running");
        assert_eq!(
            doc["GraphDriver"],
            json!({"Data": {"Dir": "/x"}, "Name": "vfs"})
        );
        let removing = inspect(&c, Path::new("/d"), Status::Removing);
        assert_eq!(removing["State"]["Status"], "removing");
    }

    #[test]
    fn the_filter_view_reads_the_record_as_dockerd_lists_it() {
        let mut c: Container = serde_json::from_value(json!({
            "id": "b".repeat(64), "name": "/web", "created": "2026-11-28T00:00:00Z",
            "path": "sleep", "args": ["1"],
            "config": {"Image": "busybox", "Labels": {"k": "v"},
                "ExposedPorts": {"80/tcp": {}, "53/udp": {}}},
            "image": "sha256:x", "state": {"status": "running", "pid": 3, "exit_code": 0,
                "error": "", "oom_killed": false, "started_at": "2026-11-28T00:00:00Z",
                "finished_at": null},
            "rootfs": {"fstype": "bind", "source": "/x", "options": "", "target": "/x"},
            "driver": "vfs", "network": "New", "restart_count": 0
        }))
        .unwrap();
        c.host_config =
            serde_json::from_value(json!({"Binds": ["/srv:/data:ro"], "NetworkMode": "default"}))
                .unwrap();
        let v = filter_view(&c);
        assert_eq!(v.name, "/web");
        assert_eq!(v.labels, vec![("k", "v")]);
        assert_eq!(v.state, "running");
        assert!(v.running && v.started);
        assert_eq!(v.networks, vec![("bridge", "")]);
        let mut ports: Vec<(u16, &str)> = v.ports.iter().map(|p| (p.private, p.proto)).collect();
        ports.sort();
        assert_eq!(ports, vec![(53, "udp"), (80, "tcp")]);
        assert_eq!(v.mounts.len(), 1);
        assert_eq!(
            (
                v.mounts[0].source.as_str(),
                v.mounts[0].destination.as_str()
            ),
            ("/srv", "/data")
        );
        assert_eq!(
            (v.health, v.isolation, v.is_task),
            ("none", "default", false)
        );
        // A stopped container has no port map, as in dockerd.
        c.state.set_exited(0, Utc::now(), false);
        let v = filter_view(&c);
        assert!(v.ports.is_empty());
        assert_eq!(v.state, "exited");
        assert!(!v.running && v.started);
    }
}
