//! The JSON that `docker ps` and `docker inspect` read, rendered from a record.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::state::{Container, Status, docker_time};
use crate::model::filters::{
    ContainerFilter, ContainerFilterView, FilterError, MountView, PortView,
};
use crate::monitor::spec::NetworkSpec;

fn network_name(c: &Container) -> &'static str {
    match c.network {
        NetworkSpec::None => "none",
        NetworkSpec::Host => "host",
        NetworkSpec::New => "bridge",
    }
}

/// The bridge endpoint of a running container, as strings: (network id, endpoint id,
/// gateway, address, prefix, MAC).
fn endpoint_fields(c: &Container) -> (String, String, String, String, u8, String) {
    match &c.endpoint {
        Some(ep) => (
            ep.network_id.clone(),
            ep.endpoint_id.clone(),
            ep.gateway.to_string(),
            ep.ip.to_string(),
            ep.prefix,
            ep.mac.clone(),
        ),
        None => Default::default(),
    }
}

fn endpoint(c: &Container) -> Value {
    let (network_id, endpoint_id, gateway, ip, prefix, mac) = endpoint_fields(c);
    json!({
        "IPAMConfig": null, "Links": null, "Aliases": null, "NetworkID": network_id,
        "EndpointID": endpoint_id, "Gateway": gateway, "IPAddress": ip, "IPPrefixLen": prefix,
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "MacAddress": mac, "DriverOpts": null
    })
}

/// One row of `GET /containers/json`.
pub fn summary(c: &Container, now: DateTime<Utc>) -> Value {
    json!({
        "Id": c.id,
        "Names": [c.name],
        "Image": c.config.get("Image").cloned().unwrap_or(Value::Null),
        "ImageID": c.image,
        "Command": c.command_line(),
        "Created": c.created.timestamp(),
        "Ports": [],
        "Labels": c.labels(),
        "State": c.state.status.as_str(),
        "Status": c.state.status_text(now),
        "HostConfig": {"NetworkMode": c.network_mode()},
        "NetworkSettings": {"Networks": {network_name(c): endpoint(c)}},
        "Mounts": mounts(c),
    })
}

fn mounts(c: &Container) -> Value {
    let binds = super::create::str_slice(c.host_config.get("Binds"), "Binds")
        .ok()
        .flatten()
        .unwrap_or_default();
    Value::Array(
        binds
            .iter()
            .filter_map(|b| super::create::parse_bind(b))
            .map(|m| {
                let rw = !m.options.iter().any(|o| o == "ro");
                json!({
                    "Type": "bind", "Source": m.source, "Destination": m.destination,
                    "Mode": if rw { "" } else { "ro" }, "RW": rw, "Propagation": "rprivate"
                })
            })
            .collect(),
    )
}

/// The `docker inspect` document.
pub fn inspect(c: &Container, data_root: &Path, driver_data: Value) -> Value {
    let dir = data_root.join("containers").join(&c.id);
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let mut host_config = Value::Object(c.host_config.clone());
    if let Some(h) = host_config.as_object_mut() {
        h.remove("Mounts");
    }
    json!({
        "Id": c.id,
        "Created": docker_time(Some(c.created)),
        "Path": c.path,
        "Args": c.args,
        "State": c.state.to_json(),
        "Image": c.image,
        "ResolvConfPath": p("resolv.conf"),
        "HostnamePath": p("hostname"),
        "HostsPath": p("hosts"),
        "LogPath": p(&format!("{}-json.log", c.id)),
        "Name": c.name,
        "RestartCount": c.restart_count,
        "Driver": c.driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": host_config,
        "GraphDriver": {"Data": driver_data, "Name": c.driver},
        "Mounts": mounts(c),
        "Config": Value::Object(c.config.clone()),
        "NetworkSettings": network_settings(c),
    })
}

/// `NetworkSettings` of `docker inspect`.
fn network_settings(c: &Container) -> Value {
    let (_, endpoint_id, gateway, ip, prefix, mac) = endpoint_fields(c);
    let bridge = c
        .endpoint
        .as_ref()
        .map(|e| e.bridge.clone())
        .unwrap_or_default();
    json!({
        "Bridge": bridge, "SandboxID": "", "HairpinMode": false, "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0, "Ports": {},
        "SandboxKey": if c.state.pid > 0 { format!("/proc/{}/ns/net", c.state.pid) } else { String::new() },
        "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null, "EndpointID": endpoint_id,
        "Gateway": gateway, "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": ip,
        "IPPrefixLen": prefix, "IPv6Gateway": "", "MacAddress": mac,
        "Networks": {network_name(c): endpoint(c)}
    })
}

/// The GraphDriver.Data of `docker inspect`, from the rootfs mount options.
pub fn driver_data(c: &Container) -> Value {
    if c.rootfs.fstype == "overlay" {
        let opt = |k: &str| {
            c.rootfs
                .options
                .split(',')
                .find_map(|o| o.strip_prefix(k))
                .unwrap_or("")
                .to_owned()
        };
        json!({
            "LowerDir": opt("lowerdir="),
            "MergedDir": c.rootfs.target,
            "UpperDir": opt("upperdir="),
            "WorkDir": opt("workdir="),
        })
    } else {
        json!({"Dir": c.rootfs.source})
    }
}

/// The one place the list filters read a record: what `docker ps --filter` can ask
/// about `c`, in dockerd's terms.
pub fn filter_view(c: &Container) -> ContainerFilterView<'_> {
    let labels = c
        .config
        .get("Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    let network_id = c.endpoint.as_ref().map_or("", |e| e.network_id.as_str());
    // dockerd lists a container's ports from its port map, which exists only while it
    // runs with a network of its own; berth publishes no ports yet, so the map holds the
    // exposed ones.
    let ports = if c.state.is_running() && matches!(c.network, NetworkSpec::New) {
        c.config
            .get("ExposedPorts")
            .and_then(Value::as_object)
            .map(|m| m.keys().filter_map(|k| exposed_port(k)).collect())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mounts = super::create::str_slice(c.host_config.get("Binds"), "Binds")
        .ok()
        .flatten()
        .unwrap_or_default()
        .iter()
        .filter_map(|b| super::create::parse_bind(b))
        .map(|m| MountView {
            name: String::new(),
            source: m.source.to_string_lossy().into_owned(),
            destination: m.destination,
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
        networks: vec![(network_name(c), network_id)],
        ports,
        mounts,
        health: "none",
        isolation: "default",
        is_task: false,
    }
}

/// `80/tcp` (or `80`) as a port row with no public port.
fn exposed_port(key: &str) -> Option<PortView<'_>> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    Some(PortView {
        private: port.parse().ok()?,
        public: None,
        proto,
    })
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
    }

    pub fn of(c: &Container) -> Self {
        SummaryKey {
            status: c.state.status,
            exit_code: c.state.exit_code,
            started_at: c.state.started_at,
            finished_at: c.state.finished_at,
            endpoint: c.endpoint.as_ref().map(|e| e.endpoint_id.clone()),
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

    #[test]
    fn a_cached_row_is_the_rendered_row() {
        let mut c: Container = serde_json::from_value(json!({
            "id": "a".repeat(64), "name": "/t1", "created": "2026-11-28T00:00:00Z",
            "path": "sleep", "args": ["1"], "config": {"Image": "busybox", "Labels": {"k": "v"}},
            "image": "sha256:x", "state": {"status": "running", "pid": 3, "exit_code": 0,
                "error": "", "oom_killed": false, "started_at": "2026-11-28T00:00:00Z",
                "finished_at": null},
            "rootfs": {"fstype": "bind", "source": "/x", "options": "", "target": "/x"},
            "driver": "vfs", "network": "None", "restart_count": 0
        }))
        .unwrap();
        let now = Utc::now();
        let row = SummaryRow::build(&c);
        let mut out = Vec::new();
        row.write(&c, now, &mut out);
        let cached: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(cached, summary(&c, now));
        c.state.set_exited(3, now, false);
        assert_ne!(row.key, SummaryKey::of(&c));
        assert!(!row.key.matches(&c));
        assert!(SummaryKey::of(&c).matches(&c));
    }

    #[test]
    fn the_filter_view_reads_the_record_as_dockerd_lists_it() {
        let mut c: Container = serde_json::from_value(json!({
            "id": "b".repeat(64), "name": "/web", "created": "2026-11-28T00:00:00Z",
            "path": "sleep", "args": ["1"],
            "config": {"Image": "busybox", "Labels": {"k": "v", "n": 1},
                "ExposedPorts": {"80/tcp": {}, "53/udp": {}}},
            "image": "sha256:x", "state": {"status": "running", "pid": 3, "exit_code": 0,
                "error": "", "oom_killed": false, "started_at": "2026-11-28T00:00:00Z",
                "finished_at": null},
            "rootfs": {"fstype": "bind", "source": "/x", "options": "", "target": "/x"},
            "driver": "vfs", "network": "New", "restart_count": 0
        }))
        .unwrap();
        c.host_config = json!({"Binds": ["/srv:/data:ro"], "NetworkMode": "default"})
            .as_object()
            .cloned()
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
