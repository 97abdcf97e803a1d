//! Turning a create request into a container's Config and HostConfig, and a record into
//! the spec its monitor gets. Plain functions, tested without the actor.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::error::StoreError;
use super::state::Container;
use crate::actors::graph::ImageRuntimeConfig;
use crate::monitor::spec::{CgroupSpec, ContainerSpec, MountSpec};

/// The PATH a container gets when neither the image nor the request sets one.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default /dev/shm size (64 MiB).
const DEFAULT_SHM: i64 = 64 * 1024 * 1024;

fn config_template() -> Map<String, Value> {
    let v = json!({
        "Hostname": "", "Domainname": "", "User": "",
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
        "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": null, "Cmd": null, "Image": "", "Volumes": null, "WorkingDir": "",
        "Entrypoint": null, "OnBuild": null, "Labels": {}
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

const HOST_CONFIG_TEMPLATE: &str = r#"{
    "Binds": null, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
    "NetworkMode": "default", "PortBindings": {},
    "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": false,
    "VolumeDriver": "", "VolumesFrom": null, "CapAdd": null, "CapDrop": null,
    "CgroupnsMode": "host", "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": null,
    "GroupAdd": null, "IpcMode": "private", "Cgroup": "", "Links": null, "OomScoreAdj": 0,
    "PidMode": "", "Privileged": false, "PublishAllPorts": false, "ReadonlyRootfs": false,
    "SecurityOpt": null, "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864,
    "Runtime": "native", "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": 0, "Memory": 0,
    "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
    "BlkioDeviceReadBps": [], "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [],
    "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0,
    "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
    "DeviceCgroupRules": null, "DeviceRequests": null, "KernelMemory": 0,
    "KernelMemoryTCP": 0, "MemoryReservation": 0, "MemorySwap": 0,
    "MemorySwappiness": null, "OomKillDisable": false, "PidsLimit": null, "Ulimits": [],
    "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
    "MaskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
        "/proc/scsi", "/sys/firmware"],
    "ReadonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
}"#;

fn host_config_template() -> Map<String, Value> {
    serde_json::from_str(HOST_CONFIG_TEMPLATE).unwrap_or_default()
}

fn invalid(reason: impl Into<String>) -> StoreError {
    StoreError::InvalidConfig {
        reason: reason.into(),
    }
}

/// A JSON value that must be null, a string (split on nothing: one item) or an array of
/// strings, as Docker's `StrSlice`.
pub fn str_slice(v: Option<&Value>, key: &str) -> Result<Option<Vec<String>>, StoreError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(format!("{key} must be a list of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid(format!("{key} must be a list of strings"))),
    }
}

fn check_types(config: &Map<String, Value>, host: &Map<String, Value>) -> Result<(), StoreError> {
    for key in [
        "Tty",
        "OpenStdin",
        "StdinOnce",
        "AttachStdin",
        "AttachStdout",
        "AttachStderr",
    ] {
        if !matches!(
            config.get(key),
            None | Some(Value::Bool(_)) | Some(Value::Null)
        ) {
            return Err(invalid(format!("{key} must be a boolean")));
        }
    }
    for key in ["Hostname", "Domainname", "User", "WorkingDir", "Image"] {
        if !matches!(
            config.get(key),
            None | Some(Value::String(_)) | Some(Value::Null)
        ) {
            return Err(invalid(format!("{key} must be a string")));
        }
    }
    for key in ["Cmd", "Entrypoint", "Env"] {
        str_slice(config.get(key), key)?;
    }
    if !matches!(
        config.get("Labels"),
        None | Some(Value::Null) | Some(Value::Object(_))
    ) {
        return Err(invalid("Labels must be an object"));
    }
    for key in [
        "Memory",
        "NanoCpus",
        "CpuShares",
        "CpuQuota",
        "CpuPeriod",
        "PidsLimit",
    ] {
        if !matches!(
            host.get(key),
            None | Some(Value::Null) | Some(Value::Number(_))
        ) {
            return Err(invalid(format!("HostConfig.{key} must be a number")));
        }
    }
    for key in ["AutoRemove", "Privileged", "ReadonlyRootfs"] {
        if !matches!(
            host.get(key),
            None | Some(Value::Bool(_)) | Some(Value::Null)
        ) {
            return Err(invalid(format!("HostConfig.{key} must be a boolean")));
        }
    }
    if !matches!(
        host.get("NetworkMode"),
        None | Some(Value::String(_)) | Some(Value::Null)
    ) {
        return Err(invalid("HostConfig.NetworkMode must be a string"));
    }
    Ok(())
}

fn nonempty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(n)) => n.as_i64() != Some(0),
    }
}

fn refuse_unsupported(host: &Map<String, Value>) -> Result<(), StoreError> {
    let unsupported = |feature: &str| StoreError::Unsupported {
        feature: feature.to_owned(),
    };
    if nonempty(host.get("Privileged")) {
        return Err(unsupported("--privileged"));
    }
    if nonempty(host.get("PortBindings")) || nonempty(host.get("PublishAllPorts")) {
        return Err(unsupported("publishing ports (-p)"));
    }
    if nonempty(host.get("Links")) {
        return Err(unsupported("--link"));
    }
    if nonempty(host.get("VolumesFrom")) {
        return Err(unsupported("--volumes-from"));
    }
    if nonempty(host.get("Mounts")) || nonempty(host.get("Tmpfs")) {
        return Err(unsupported("--mount and --tmpfs"));
    }
    if nonempty(host.get("Devices")) {
        return Err(unsupported("--device"));
    }
    if let Some(binds) = str_slice(host.get("Binds"), "HostConfig.Binds")? {
        for b in &binds {
            if !b.starts_with('/') {
                return Err(unsupported("named volumes (-v NAME:/path)"));
            }
        }
    }
    Ok(())
}

/// The request body split into Config and HostConfig, each over Docker's full key set.
/// A container's Config and HostConfig, each a JSON object.
pub type ConfigPair = (Map<String, Value>, Map<String, Value>);

pub fn split_body(mut body: Map<String, Value>) -> Result<ConfigPair, StoreError> {
    let host_in = match body.remove("HostConfig") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(invalid("HostConfig must be an object")),
    };
    body.remove("NetworkingConfig");
    // docker-py sends this one; it has no place in Config.
    body.remove("NetworkDisabled");
    let mut config = config_template();
    for (k, v) in body {
        config.insert(k, v);
    }
    let mut host = host_config_template();
    for (k, v) in host_in {
        host.insert(k, v);
    }
    check_types(&config, &host)?;
    refuse_unsupported(&host)?;
    // Defaults that dockerd fills in when the client leaves them empty.
    if host
        .get("NetworkMode")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        host.insert("NetworkMode".into(), json!("default"));
    }
    if host
        .get("LogConfig")
        .and_then(|l| l.get("Type"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        host.insert(
            "LogConfig".into(),
            json!({"Type": "json-file", "Config": {}}),
        );
    }
    if host.get("ShmSize").and_then(Value::as_i64).unwrap_or(0) == 0 {
        host.insert("ShmSize".into(), json!(DEFAULT_SHM));
    }
    for (k, d) in [("IpcMode", "private"), ("CgroupnsMode", "host")] {
        if host.get(k).and_then(Value::as_str).unwrap_or("").is_empty() {
            host.insert(k.into(), json!(d));
        }
    }
    if config.get("Labels").is_none_or(Value::is_null) {
        config.insert("Labels".into(), json!({}));
    }
    Ok((config, host))
}

/// Applies the image's defaults to Config (Docker's merge rules) and returns the
/// container's path and args.
pub fn merge_image(
    config: &mut Map<String, Value>,
    image: &ImageRuntimeConfig,
) -> Result<(String, Vec<String>), StoreError> {
    let req_entry = str_slice(config.get("Entrypoint"), "Entrypoint")?;
    let req_cmd = str_slice(config.get("Cmd"), "Cmd")?;
    // An entrypoint in the request resets the image's Cmd, as in Docker.
    let (entry, cmd) = match (req_entry, req_cmd) {
        (Some(e), c) => (Some(e), c),
        (None, Some(c)) if !c.is_empty() => (image.entrypoint.clone(), Some(c)),
        (None, _) => (image.entrypoint.clone(), image.cmd.clone()),
    };
    config.insert("Entrypoint".into(), json!(entry));
    config.insert("Cmd".into(), json!(cmd));
    let mut argv: Vec<String> = entry.unwrap_or_default();
    argv.extend(cmd.unwrap_or_default());
    if argv.is_empty() {
        return Err(StoreError::NoCommand);
    }
    // Env: the image's, then the request's, a later key replacing an earlier one.
    let req_env = str_slice(config.get("Env"), "Env")?.unwrap_or_default();
    let mut env: Vec<String> = image.env.clone().unwrap_or_default();
    for e in req_env {
        // A bare NAME (unset on the client) is dropped, as the CLI means "take it from my
        // environment" and it had none.
        if !e.contains('=') {
            continue;
        }
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e);
    }
    config.insert(
        "Env".into(),
        if env.is_empty() {
            Value::Null
        } else {
            json!(env)
        },
    );
    for (key, val) in [("WorkingDir", &image.working_dir), ("User", &image.user)] {
        if config
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
            && !val.is_empty()
        {
            config.insert(key.into(), json!(val));
        }
    }
    if let Some(labels) = &image.labels {
        let mut merged: Map<String, Value> =
            labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        if let Some(Value::Object(req)) = config.get("Labels") {
            for (k, v) in req {
                merged.insert(k.clone(), v.clone());
            }
        }
        config.insert("Labels".into(), Value::Object(merged));
    }
    if let Some(sig) = &image.stop_signal {
        config.entry("StopSignal").or_insert_with(|| json!(sig));
    }
    if let Some(ports) = &image.exposed_ports {
        config.entry("ExposedPorts").or_insert_with(|| json!(ports));
    }
    let path = argv.remove(0);
    Ok((path, argv))
}

/// The files a container's dir holds besides its record.
pub fn hostname_path(dir: &Path) -> std::path::PathBuf {
    dir.join("hostname")
}

/// `/etc/hosts` for a container: its hostname on its bridge address `ip`, or on 127.0.0.1
/// without a bridge network.
pub fn hosts_file(hostname: &str, ip: Option<std::net::Ipv4Addr>) -> String {
    let own = ip.map_or_else(|| "127.0.0.1".to_owned(), |ip| ip.to_string());
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n{own}\t{hostname}\n"
    )
}

/// `/etc/resolv.conf` for a container: `--dns` servers, else the host's file without
/// loopback nameservers (they mean nothing inside a network namespace).
pub fn resolv_conf(host_file: &str, dns: &[std::net::IpAddr]) -> String {
    if !dns.is_empty() {
        return dns.iter().map(|d| format!("nameserver {d}\n")).collect();
    }
    let mut out = String::new();
    for line in host_file.lines() {
        let t = line.trim();
        if let Some(ns) = t.strip_prefix("nameserver") {
            let ns = ns.trim();
            if ns.starts_with("127.") || ns == "::1" {
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A container's cgroup, relative to each hierarchy's root.
pub fn cgroup_path(id: &str) -> String {
    format!("berth/{id}")
}

/// What the monitor needs to create the container's init.
pub fn build_spec(c: &Container, container_dir: &Path, exec_root: &Path) -> ContainerSpec {
    let str_of = |k: &str| {
        c.config
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let mut env = str_slice(c.config.get("Env"), "Env")
        .ok()
        .flatten()
        .unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_owned());
    }
    let hostname = str_of("Hostname");
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!("HOSTNAME={hostname}"));
    }
    if c.config_bool("Tty") && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_owned());
    }
    let mut args = vec![c.path.clone()];
    args.extend(c.args.iter().cloned());
    let mut mounts = vec![
        file_bind(container_dir.join("resolv.conf"), "/etc/resolv.conf"),
        file_bind(container_dir.join("hostname"), "/etc/hostname"),
        file_bind(container_dir.join("hosts"), "/etc/hosts"),
    ];
    if let Ok(Some(binds)) = str_slice(c.host_config.get("Binds"), "Binds") {
        for b in binds {
            if let Some(m) = parse_bind(&b) {
                mounts.push(m);
            }
        }
    }
    let nano = c.host_i64("NanoCpus");
    let (cpu_quota, cpu_period) = if nano > 0 {
        (nano / 10_000, 100_000u64)
    } else {
        (
            c.host_i64("CpuQuota"),
            u64::try_from(c.host_i64("CpuPeriod")).unwrap_or(0),
        )
    };
    ContainerSpec {
        id: c.id.clone(),
        rootfs: c.rootfs.clone(),
        hostname,
        domainname: str_of("Domainname"),
        args,
        env,
        cwd: str_of("WorkingDir"),
        user: str_of("User"),
        tty: c.config_bool("Tty"),
        open_stdin: c.config_bool("OpenStdin"),
        stdin_once: c.config_bool("StdinOnce"),
        log_path: container_dir.join(format!("{}-json.log", c.id)),
        state_dir: crate::actors::exec::state_dir(exec_root, &c.id),
        cgroup: CgroupSpec {
            path: cgroup_path(&c.id),
            memory: c.host_i64("Memory"),
            pids: c.host_i64("PidsLimit").max(0),
            cpu_quota,
            cpu_period,
            cpu_shares: u64::try_from(c.host_i64("CpuShares")).unwrap_or(0),
            layout: None,
        },
        mounts,
        network: c.network.clone(),
        join_netns: false,
        readonly_rootfs: c.host_bool("ReadonlyRootfs"),
    }
}

fn file_bind(source: std::path::PathBuf, dest: &str) -> MountSpec {
    MountSpec {
        source,
        destination: dest.to_owned(),
        fstype: "bind".to_owned(),
        options: vec!["rbind".to_owned(), "rprivate".to_owned()],
    }
}

/// `/host:/ctr[:ro|rw]` → a bind mount.
pub fn parse_bind(b: &str) -> Option<MountSpec> {
    let mut parts = b.splitn(3, ':');
    let src = parts.next()?;
    let dst = parts.next()?;
    let mode = parts.next().unwrap_or("rw");
    if !src.starts_with('/') || !dst.starts_with('/') {
        return None;
    }
    let mut options = vec!["rbind".to_owned(), "rprivate".to_owned()];
    if mode.split(',').any(|m| m == "ro") {
        options.push("ro".to_owned());
    }
    Some(MountSpec {
        source: src.into(),
        destination: dst.to_owned(),
        fstype: "bind".to_owned(),
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn docker_py_minimal_body_gets_every_key() {
        let (c, h) = split_body(body(json!({
            "Tty": false, "Cmd": ["echo", "hi"], "Image": "busybox",
            "NetworkDisabled": false, "HostConfig": {"NetworkMode": "default"}
        })))
        .unwrap();
        for k in ["Hostname", "Env", "Entrypoint", "Labels", "OnBuild"] {
            assert!(c.contains_key(k), "{k}");
        }
        assert!(!c.contains_key("NetworkDisabled"));
        assert_eq!(h["LogConfig"]["Type"], "json-file");
        assert_eq!(h["ShmSize"], DEFAULT_SHM);
        assert!(h.contains_key("MaskedPaths"));
    }

    #[test]
    fn wrong_types_are_400() {
        let e = split_body(body(json!({"Cmd": 3}))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParameter);
        assert!(e.to_string().contains("Cmd"));
        let e = split_body(body(json!({"HostConfig": "x"}))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParameter);
        let e = split_body(body(json!({"HostConfig": {"Memory": "lots"}}))).unwrap_err();
        assert!(e.to_string().contains("Memory"));
    }

    #[test]
    fn unsupported_features_are_501() {
        let e = split_body(body(json!({"HostConfig": {"Privileged": true}}))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotImplemented);
        let e = split_body(body(
            json!({"HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}}),
        ))
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotImplemented);
        assert!(split_body(body(json!({"HostConfig": {"Binds": ["/tmp:/x:ro"]}}))).is_ok());
        assert!(split_body(body(json!({"HostConfig": {"Binds": ["vol:/x"]}}))).is_err());
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
        let (mut c, _) = split_body(body(json!({"Env": ["A=2", "UNSET"]}))).unwrap();
        let (path, args) = merge_image(&mut c, &image).unwrap();
        assert_eq!((path.as_str(), args.len()), ("sh", 0));
        assert_eq!(c["Env"], json!(["PATH=/bin", "A=2"]));
        assert_eq!(c["WorkingDir"], "/w");

        let (mut c, _) = split_body(body(json!({"Cmd": ["echo", "hi"]}))).unwrap();
        let (path, args) = merge_image(&mut c, &image).unwrap();
        assert_eq!((path.as_str(), args), ("echo", vec!["hi".to_owned()]));

        let (mut c, _) = split_body(body(json!({"Entrypoint": ["top"]}))).unwrap();
        let (path, args) = merge_image(&mut c, &image).unwrap();
        assert_eq!((path.as_str(), args.len()), ("top", 0));
        assert_eq!(c["Cmd"], Value::Null);

        let (mut c, _) = split_body(body(json!({}))).unwrap();
        let e = merge_image(&mut c, &ImageRuntimeConfig::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParameter);
    }

    #[test]
    fn resolv_conf_drops_loopback() {
        let host = "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.org\n";
        assert_eq!(
            resolv_conf(host, &[]),
            "nameserver 10.0.0.2\nsearch example.org\n"
        );
        assert_eq!(
            resolv_conf(host, &["1.1.1.1".parse().unwrap()]),
            "nameserver 1.1.1.1\n"
        );
    }

    #[test]
    fn binds() {
        let m = parse_bind("/a:/b:ro").unwrap();
        assert!(m.options.contains(&"ro".to_owned()));
        assert!(parse_bind("a:/b").is_none());
    }
}
