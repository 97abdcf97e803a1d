//! The body of `POST /containers/create`, parsed once into typed Config, HostConfig and
//! NetworkingConfig, with dockerd's defaults filled in.
//!
//! Parsing goes through a JSON value first, for three things serde cannot do on the typed
//! structs alone: Docker's `StrSlice` fields (`Cmd`, `Entrypoint`, `Shell`) also take a
//! plain string; a `null` leaves a field at its zero value (as Go's `encoding/json` does);
//! and every field a client left out gets dockerd's zero value, so that the stored record
//! and `docker inspect` show every key dockerd shows. A field of the wrong type is refused
//! with its path (`HostConfig.Memory`). Unknown fields are ignored, as dockerd ignores them.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::api::{ContainerConfig, HostConfig, NetworkingConfig};
use super::complete::Template;
pub use super::spec::{DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS};
use super::version::ApiVersion;

/// Why a request body was refused (always the client's to fix: 400).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// No body at all.
    #[error("config cannot be empty in order to create a container")]
    Empty,
    /// Not JSON, or not an object.
    #[error("invalid JSON: {reason}")]
    Syntax { reason: String },
    /// A field of the wrong type.
    #[error("invalid {path}: {reason}")]
    Field { path: String, reason: String },
}

impl ModelError {
    pub fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::InvalidParameter
    }
}

/// A create request, typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateRequest {
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub networking_config: NetworkingConfig,
}

/// Docker's default `/dev/shm` size (64 MiB).
pub const DEFAULT_SHM_SIZE: usize = 64 << 20;

/// The name of berthd's one runtime (its own monitor), as `HostConfig.Runtime` names it.
pub const RUNTIME: &str = "native";

fn template(t: Template) -> Map<String, Value> {
    match t.value() {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    }
}

/// dockerd's `Config` for a request that set nothing (its labels an empty map, as the CLI
/// sends them).
pub fn config_template() -> Map<String, Value> {
    let mut m = template(Template::ContainerConfig);
    m.insert("Labels".to_owned(), Value::Object(Map::new()));
    m
}

/// dockerd 20.10's `HostConfig` for a request that set nothing, before the daemon's own
/// defaults (`ShmSize`, `IpcMode`, `CgroupnsMode`, `Runtime`, `LogConfig.Type`, the masked
/// and read-only paths), which [`apply_defaults`] fills in.
pub fn host_config_template() -> Map<String, Value> {
    template(Template::HostConfig)
}

/// Parses a create body. `version` is the request's API version (defaults differ by
/// version, as in dockerd).
pub fn parse_create(body: &[u8], version: ApiVersion) -> Result<CreateRequest, ModelError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ModelError::Empty);
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| ModelError::Syntax {
        reason: e.to_string(),
    })?;
    let Value::Object(mut top) = value else {
        return Err(ModelError::Syntax {
            reason: "the body must be a JSON object".to_owned(),
        });
    };
    let host = take_object(&mut top, "HostConfig")?;
    let networking = take_object(&mut top, "NetworkingConfig")?;
    for key in ["Cmd", "Entrypoint", "Shell"] {
        str_slice_in_place(&mut top, key);
    }
    let config: ContainerConfig = typed(overlay(config_template(), top), "")?;
    let mut host_config: HostConfig = typed(overlay(host_config_template(), host), "HostConfig.")?;
    let networking_config: NetworkingConfig =
        typed(Value::Object(networking), "NetworkingConfig.")?;
    apply_version_defaults(&mut host_config, version);
    Ok(CreateRequest {
        config,
        host_config,
        networking_config,
    })
}

/// Removes `key` from `top`: an object, or `{}` when absent or null.
fn take_object(top: &mut Map<String, Value>, key: &str) -> Result<Map<String, Value>, ModelError> {
    match top.remove(key) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(ModelError::Field {
            path: key.to_owned(),
            reason: format!("expected an object, got {}", json_type(&other)),
        }),
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Docker's `StrSlice`: a plain string is a list of one.
fn str_slice_in_place(m: &mut Map<String, Value>, key: &str) {
    if let Some(v) = m.get_mut(key) {
        if let Value::String(s) = v {
            *v = Value::Array(vec![Value::String(std::mem::take(s))]);
        }
    }
}

/// `template` with `given` laid over it. A `null` in `given` leaves the template's value
/// (Go's decoder leaves a field alone on `null`); nested objects of the template are laid
/// over key by key (`LogConfig`, `RestartPolicy`).
pub fn overlay(mut template: Map<String, Value>, given: Map<String, Value>) -> Value {
    for (k, v) in given {
        match (template.get_mut(&k), v) {
            (Some(_), Value::Null) => {}
            (Some(Value::Object(t)), Value::Object(g)) => {
                let merged = overlay(std::mem::take(t), g);
                template.insert(k, merged);
            }
            (_, v) => {
                template.insert(k, v);
            }
        }
    }
    Value::Object(template)
}

/// Deserialises `v` into `T`, naming the path of a field of the wrong type.
pub(super) fn typed<T: DeserializeOwned>(v: Value, prefix: &str) -> Result<T, ModelError> {
    serde_path_to_error::deserialize(&v).map_err(|e| {
        let path = e.path().to_string();
        ModelError::Field {
            path: if path == "." {
                prefix.trim_end_matches('.').to_owned()
            } else {
                format!("{prefix}{path}")
            },
            reason: e.into_inner().to_string(),
        }
    })
}

/// The defaults dockerd gives by API version (its `postContainersCreate`): before 1.25 the
/// client removes its containers itself (`AutoRemove` off), before 1.40 `KernelMemoryTCP`
/// did not exist.
fn apply_version_defaults(h: &mut HostConfig, version: ApiVersion) {
    if version < ApiVersion::new(1, 25) {
        h.auto_remove = Some(false);
    }
    if version < ApiVersion::new(1, 40) {
        h.kernel_memory_tcp = Some(0);
    }
}

/// dockerd's default cgroup namespace mode for what the request left empty: `private` on
/// a host with only cgroup v2 (`unified_only`), `host` on v1 and hybrid hosts.
pub fn default_cgroupns_mode(h: &mut HostConfig, unified_only: bool) {
    use super::api::HostConfigCgroupnsModeEnum as Cgns;
    if matches!(h.cgroupns_mode, None | Some(Cgns::EMPTY)) {
        h.cgroupns_mode = Some(if unified_only {
            Cgns::PRIVATE
        } else {
            Cgns::HOST
        });
    }
}

/// dockerd's daemon defaults for what the request left empty: `ShmSize` 64 MiB, the IPC
/// mode `private`, the cgroup namespace mode (`host` unless [`default_cgroupns_mode`]
/// chose first), the runtime, the log driver `json-file`, the restart policy `no`, the
/// network mode `default`, and Docker's masked and read-only paths (not for a privileged
/// container).
pub fn apply_defaults(h: &mut HostConfig) {
    fn empty(s: &Option<String>) -> bool {
        s.as_deref().is_none_or(str::is_empty)
    }
    if h.shm_size.unwrap_or(0) == 0 {
        h.shm_size = Some(DEFAULT_SHM_SIZE);
    }
    if empty(&h.ipc_mode) {
        h.ipc_mode = Some("private".to_owned());
    }
    use super::api::HostConfigCgroupnsModeEnum as Cgns;
    if matches!(h.cgroupns_mode, None | Some(Cgns::EMPTY)) {
        h.cgroupns_mode = Some(Cgns::HOST);
    }
    if empty(&h.runtime) {
        h.runtime = Some(RUNTIME.to_owned());
    }
    if empty(&h.network_mode) {
        h.network_mode = Some("default".to_owned());
    }
    let log = h.log_config.get_or_insert_with(Default::default);
    if empty(&log.typ) {
        log.typ = Some("json-file".to_owned());
    }
    log.config.get_or_insert_with(Default::default);
    use super::api::{RestartPolicy, RestartPolicyNameEnum as Rp};
    let rp = h.restart_policy.get_or_insert_with(RestartPolicy::default);
    if matches!(rp.name, None | Some(Rp::EMPTY)) {
        rp.name = Some(Rp::NO);
    }
    rp.maximum_retry_count.get_or_insert(0);
    // A privileged container gets none (dockerd leaves them unset: null in inspect).
    if h.privileged != Some(true) {
        let owned = |paths: &[&str]| paths.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
        h.masked_paths
            .get_or_insert_with(|| owned(DEFAULT_MASKED_PATHS));
        h.readonly_paths
            .get_or_insert_with(|| owned(DEFAULT_READONLY_PATHS));
    }
    h.oom_kill_disable.get_or_insert(false);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<CreateRequest, ModelError> {
        parse_create(v.to_string().as_bytes(), ApiVersion::CURRENT)
    }

    #[test]
    fn docker_py_minimal_body() {
        let r = parse(json!({
            "Tty": false, "Cmd": ["echo", "hi"], "Image": "busybox",
            "NetworkDisabled": false, "HostConfig": {"NetworkMode": "default"}
        }))
        .unwrap();
        assert_eq!(r.config.hostname.as_deref(), Some(""));
        assert_eq!(r.config.cmd, Some(vec!["echo".to_owned(), "hi".to_owned()]));
        assert_eq!(r.host_config.memory, Some(0));
        assert_eq!(r.host_config.network_mode.as_deref(), Some("default"));
        assert_eq!(r.host_config.binds, None);
    }

    #[test]
    fn cmd_as_a_string_is_a_list_of_one() {
        let r = parse(json!({"Image": "busybox", "Cmd": "ls -l", "Entrypoint": "sh"})).unwrap();
        assert_eq!(r.config.cmd, Some(vec!["ls -l".to_owned()]));
        assert_eq!(r.config.entrypoint, Some(vec!["sh".to_owned()]));
    }

    #[test]
    fn null_leaves_the_zero_value() {
        let r = parse(json!({"Hostname": null, "HostConfig": {"Memory": null,
            "LogConfig": {"Type": null}}}))
        .unwrap();
        assert_eq!(r.config.hostname.as_deref(), Some(""));
        assert_eq!(r.host_config.memory, Some(0));
        assert_eq!(
            r.host_config.log_config.and_then(|l| l.typ).as_deref(),
            Some("")
        );
    }

    #[test]
    fn wrong_types_name_their_field() {
        for (body, path) in [
            (json!({"Cmd": 3}), "Cmd"),
            (json!({"Cmd": {}}), "Cmd"),
            (json!({"HostConfig": 5}), "HostConfig"),
            (
                json!({"HostConfig": {"Memory": "lots"}}),
                "HostConfig.Memory",
            ),
            (json!({"HostConfig": {"ShmSize": -1}}), "HostConfig.ShmSize"),
            (
                json!({"HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}),
                "HostConfig.RestartPolicy.Name",
            ),
            (json!({"Labels": {"a": 1}}), "Labels.a"),
            (
                json!({"NetworkingConfig": {"EndpointsConfig": {"x": {"Aliases": "a"}}}}),
                "NetworkingConfig.EndpointsConfig.x.Aliases",
            ),
        ] {
            let e = parse(body.clone()).unwrap_err();
            match &e {
                ModelError::Field { path: p, .. } => assert_eq!(p, path, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
            assert!(e.to_string().contains(path), "{e}");
        }
        assert!(matches!(
            parse_create(b"", ApiVersion::CURRENT),
            Err(ModelError::Empty)
        ));
        assert!(matches!(
            parse_create(b"[]", ApiVersion::CURRENT),
            Err(ModelError::Syntax { .. })
        ));
        assert!(matches!(
            parse_create(b"{\"Cmd\":", ApiVersion::CURRENT),
            Err(ModelError::Syntax { .. })
        ));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let r = parse(
            json!({"Image": "b", "Bogus": 1, "HostConfig": {"Annotations": {"a": "b"}},
            "NetworkingConfig": {"EndpointsConfig": {"default": {"GwPriority": 0}}}}),
        )
        .unwrap();
        assert_eq!(r.config.image.as_deref(), Some("b"));
    }

    #[test]
    fn old_versions_get_dockerds_defaults() {
        let body = json!({"HostConfig": {"AutoRemove": true, "KernelMemoryTCP": 5}}).to_string();
        let old = parse_create(body.as_bytes(), ApiVersion::new(1, 24)).unwrap();
        assert_eq!(old.host_config.auto_remove, Some(false));
        assert_eq!(old.host_config.kernel_memory_tcp, Some(0));
        let new = parse_create(body.as_bytes(), ApiVersion::CURRENT).unwrap();
        assert_eq!(new.host_config.auto_remove, Some(true));
        assert_eq!(new.host_config.kernel_memory_tcp, Some(5));
    }

    #[test]
    fn defaults_then_every_dockerd_key() {
        let mut r = parse(json!({"Image": "busybox"})).unwrap();
        apply_defaults(&mut r.host_config);
        let mut doc = serde_json::to_value(&r.host_config).unwrap();
        Template::HostConfig.complete(&mut doc);
        assert_eq!(doc["ShmSize"], 67108864);
        assert_eq!(doc["IpcMode"], "private");
        assert_eq!(doc["CgroupnsMode"], "host");
        let mut v2 = parse(json!({"Image": "busybox"})).unwrap();
        default_cgroupns_mode(&mut v2.host_config, true);
        apply_defaults(&mut v2.host_config);
        assert_eq!(
            serde_json::to_value(&v2.host_config).unwrap()["CgroupnsMode"],
            "private"
        );
        assert_eq!(doc["LogConfig"], json!({"Type": "json-file", "Config": {}}));
        assert_eq!(
            doc["RestartPolicy"],
            json!({"Name": "no", "MaximumRetryCount": 0})
        );
        assert_eq!(doc["PidsLimit"], Value::Null);
        assert_eq!(doc["MaskedPaths"].as_array().map(Vec::len), Some(11));
        for k in host_config_template().keys() {
            assert!(doc.get(k).is_some(), "{k}");
        }
    }
}
