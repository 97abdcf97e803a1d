//! The runtimes a container can name in `HostConfig.Runtime`: berthd's own `native` exec
//! driver and the OCI runtimes of `--add-runtime NAME=PATH` / daemon.json `runtimes`, with
//! the default from `--default-runtime` and `--exec-driver` (see [`resolve`]).
//!
//! As dockerd: a runtime's name is lower-cased on the command line, the stock runtime's
//! name (here `native`) is reserved, a name given twice is refused, and the default must
//! name a runtime that exists. Unlike dockerd, the binary is looked up at flag checking,
//! so that a missing one is one line and exit 1 rather than a failed start later.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::options::{Bad, Given};
use super::{ConfigError, DaemonConfig};

/// berthd's own exec driver, as `HostConfig.Runtime` and `/info` name it.
pub const NATIVE: &str = "native";

/// The runtime `--exec-driver oci` runs containers with unless `--default-runtime` names
/// another one: `runc` from `PATH`, unless `--add-runtime runc=PATH` says where.
pub const OCI_DEFAULT: &str = "runc";

/// An OCI runtime berthd can run containers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRuntime {
    /// The path as configured (`/info` shows it).
    pub path: String,
    /// daemon.json `runtimeArgs`: put before the runtime's command on every call.
    pub args: Vec<String>,
    /// The binary found at flag checking (`path` looked up in `PATH` when it has no `/`).
    pub binary: PathBuf,
}

/// Go's `exec.LookPath`: a name with a `/` is checked as is, others in each directory of
/// `path_env`. The error is Go's text.
pub fn look_path(name: &str, path_env: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| !m.is_dir() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if name.contains('/') {
        return match std::fs::metadata(name) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                "exec: {name:?}: stat {name}: no such file or directory"
            )),
            _ if executable(Path::new(name)) => Ok(PathBuf::from(name)),
            _ => Err(format!("exec: {name:?}: permission denied")),
        };
    }
    path_env
        .split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(name))
        .find(|p| !name.is_empty() && executable(p))
        .ok_or_else(|| format!("exec: {name:?}: executable file not found in $PATH"))
}

fn path_env() -> String {
    std::env::var("PATH").unwrap_or_default()
}

/// A runtime named `name` (lower case already) at `path`, checked as dockerd does and
/// looked up; `shown` is the value the error names.
fn runtime(name: &str, path: &str, args: Vec<String>, shown: &str) -> Result<OciRuntime, Bad> {
    if name == NATIVE {
        return Err(Bad::invalid(
            shown,
            format!("runtime name '{NATIVE}' is reserved"),
        ));
    }
    let binary = look_path(path, &path_env())
        .map_err(|reason| Bad::invalid(shown, format!("runtime {name}: {reason}")))?;
    Ok(OciRuntime {
        path: path.to_owned(),
        args,
        binary,
    })
}

/// `--add-runtime NAME=PATH` (repeatable) or daemon.json `runtimes`
/// (`{"NAME": {"path": PATH, "runtimeArgs": [..]}}`).
pub(super) fn parse(given: &Given<'_>) -> Result<BTreeMap<String, OciRuntime>, Bad> {
    let mut out = BTreeMap::new();
    match given {
        Given::Text(values) => {
            for val in values.iter() {
                let bad = || Bad::invalid(val, format!("invalid runtime argument: {val}"));
                let (k, v) = val.split_once('=').ok_or_else(bad)?;
                let (k, v) = (k.trim().to_lowercase(), v.trim());
                if k.is_empty() || v.is_empty() {
                    return Err(bad());
                }
                if out.contains_key(&k) {
                    return Err(Bad::invalid(
                        val,
                        format!("runtime '{k}' was already defined"),
                    ));
                }
                let rt = runtime(&k, v, Vec::new(), val)?;
                out.insert(k, rt);
            }
        }
        Given::Json(value) => {
            let Value::Object(map) = value else {
                return Err(Bad::Type(format!(
                    "expected an object of runtimes, got {value}"
                )));
            };
            for (name, body) in map {
                let Value::Object(body) = body else {
                    return Err(Bad::Type(format!("runtime {name}: expected an object")));
                };
                if body.contains_key("runtimeType") || body.contains_key("options") {
                    return Err(Bad::unsupported(
                        name,
                        "berthd runs an OCI runtime binary by its path, not a containerd shim (runtimeType, options)",
                    ));
                }
                let path = match body.get("path") {
                    Some(Value::String(p)) if !p.is_empty() => p.clone(),
                    Some(Value::String(_)) | None => {
                        return Err(Bad::invalid(
                            name,
                            format!(
                                "runtime {name}: either a runtimeType or a path must be configured"
                            ),
                        ));
                    }
                    Some(other) => {
                        return Err(Bad::Type(format!(
                            "runtime {name}: path must be a string, got {other}"
                        )));
                    }
                };
                let args = match body.get("runtimeArgs") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(v) => serde_json::from_value::<Vec<String>>(v.clone())
                        .map_err(|e| Bad::Type(format!("runtime {name}: runtimeArgs: {e}")))?,
                };
                let rt = runtime(name, &path, args, name)?;
                out.insert(name.clone(), rt);
            }
        }
    }
    Ok(out)
}

/// Checks the default runtime and, for `--exec-driver oci` without one, adds `runc`
/// from `path_env` (dockerd's rule: the default must exist). Called by the loader's
/// checks between options.
pub(super) fn resolve(c: &mut DaemonConfig, path_env: &str) -> Result<(), ConfigError> {
    let oci = c.exec_driver == "oci";
    let default = c.default_runtime_name().to_owned();
    if oci && default == NATIVE {
        return Err(ConfigError::NativeWithOciDriver);
    }
    if oci && default == OCI_DEFAULT && !c.runtimes.contains_key(OCI_DEFAULT) {
        let binary = look_path(OCI_DEFAULT, path_env)
            .map_err(|reason| ConfigError::NoOciRuntime { reason })?;
        c.runtimes.insert(
            OCI_DEFAULT.to_owned(),
            OciRuntime {
                path: OCI_DEFAULT.to_owned(),
                args: Vec::new(),
                binary,
            },
        );
    }
    if default != NATIVE && !c.runtimes.contains_key(&default) {
        return Err(ConfigError::NoSuchDefaultRuntime { name: default });
    }
    if !c.runtimes.is_empty() {
        c.init_binary = find_init(path_env);
    }
    Ok(())
}

/// dockerd's other places for docker-init, after `PATH`.
const INIT_DIRS: &[&str] = &[
    "/usr/local/libexec/docker",
    "/usr/libexec/docker",
    "/usr/local/lib/docker",
    "/usr/lib/docker",
];

/// The init that `--init` runs as pid 1 of a container an OCI runtime runs (which execs
/// only what the container's root holds, so berthd's own reaper cannot be it; the bundle
/// binds it at `/sbin/docker-init`, `monitor::bundle::INIT_IN_CONTAINER`):
/// `docker-init` from `path_env` or dockerd's libexec dirs (Debian's docker.io links it
/// to tini-static), else `tini-static` from `path_env` (Debian's tini package). Only a
/// statically linked one counts: a container's root has neither the host's loader nor
/// its libraries. `None`: `--init` is refused for OCI runtimes (see `validate`).
pub fn find_init(path_env: &str) -> Option<PathBuf> {
    let docker_init = look_path("docker-init", path_env).into_iter().chain(
        INIT_DIRS
            .iter()
            .map(|d| Path::new(d).join("docker-init"))
            .filter(|p| p.is_file()),
    );
    docker_init
        .chain(look_path("tini-static", path_env))
        .find(|p| is_static_elf(p))
}

/// Whether the file at `p` is a 64-bit little-endian ELF executable without a program
/// interpreter (`PT_INTERP`): one that runs in any root.
fn is_static_elf(p: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    let read = std::fs::File::open(p).and_then(|f| f.take(4096).read_to_end(&mut head));
    if read.is_err() || head.len() < 64 || &head[..4] != b"\x7fELF" || head[4] != 2 || head[5] != 1
    {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([head[o], head[o + 1]]);
    let Ok(phoff) = usize::try_from(u64::from_le_bytes(
        head[0x20..0x28].try_into().unwrap_or([0xff; 8]),
    )) else {
        return false;
    };
    let (size, count) = (usize::from(u16_at(0x36)), usize::from(u16_at(0x38)));
    (0..count).all(|i| {
        let at = phoff + i * size;
        head.get(at..at + 4)
            .is_some_and(|t| t != 3u32.to_le_bytes().as_slice())
    })
}

/// [`resolve`] with berthd's own `PATH`.
pub(super) fn resolve_from_env(c: &mut DaemonConfig) -> Result<(), ConfigError> {
    resolve(c, &path_env())
}

impl DaemonConfig {
    /// Whether containers may use berthd's own driver: not under `--exec-driver oci`,
    /// which runs every container with an OCI runtime.
    pub fn native_available(&self) -> bool {
        self.exec_driver != "oci"
    }

    /// The runtime a container gets when its `HostConfig.Runtime` is empty.
    pub fn default_runtime_name(&self) -> &str {
        match self.default_runtime.as_str() {
            "" if self.exec_driver == "oci" => OCI_DEFAULT,
            "" => NATIVE,
            name => name,
        }
    }

    /// Every runtime a container may name, `native` first when it is available.
    pub fn runtime_names(&self) -> Vec<String> {
        let native = self.native_available().then(|| NATIVE.to_owned());
        native
            .into_iter()
            .chain(self.runtimes.keys().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// An executable file named `name` in a temp dir.
    fn exe(dir: &Path, name: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    }

    /// An executable 64-bit ELF header named `name` in `dir` with one program header of
    /// type `ptype` (3: `PT_INTERP`, a dynamically linked binary; 1: `PT_LOAD`).
    fn elf(dir: &Path, name: &str, ptype: u32) {
        let mut b = vec![0u8; 64 + 56];
        b[..6].copy_from_slice(b"\x7fELF\x02\x01");
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        b[64..68].copy_from_slice(&ptype.to_le_bytes());
        let p = dir.join(name);
        std::fs::write(&p, b).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn the_init_is_a_static_docker_init_or_tini_static() {
        if INIT_DIRS
            .iter()
            .any(|d| Path::new(d).join("docker-init").exists())
        {
            return crate::test_ledger::skip(
                module_path!(),
                "this host has a docker-init in dockerd's libexec dirs",
            );
        }
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().display().to_string();
        assert_eq!(find_init(&dir), None);
        // A dynamically linked docker-init is passed over for tini-static.
        elf(t.path(), "docker-init", 3);
        assert_eq!(find_init(&dir), None);
        exe(t.path(), "tini-static");
        assert_eq!(find_init(&dir), None, "a script is no ELF binary");
        elf(t.path(), "tini-static", 1);
        assert_eq!(find_init(&dir), Some(t.path().join("tini-static")));
        elf(t.path(), "docker-init", 1);
        assert_eq!(find_init(&dir), Some(t.path().join("docker-init")));
        // Looked up with the runtimes only.
        exe(t.path(), "runc");
        let mut c = DaemonConfig::defaults();
        resolve(&mut c, &dir).unwrap();
        assert_eq!(c.init_binary, None);
        c.exec_driver = "oci".into();
        resolve(&mut c, &dir).unwrap();
        assert_eq!(c.init_binary, Some(t.path().join("docker-init")));
    }

    fn text(values: &[&str]) -> Result<BTreeMap<String, OciRuntime>, Bad> {
        let v: Vec<String> = values.iter().map(|s| (*s).to_owned()).collect();
        parse(&Given::Text(&v))
    }

    fn reason(b: Bad) -> String {
        match b {
            Bad::Invalid { reason, .. } | Bad::Unsupported { reason, .. } => reason,
            Bad::Type(r) => r,
        }
    }

    #[test]
    fn add_runtime_takes_name_equals_path_as_dockerd() {
        let t = tempfile::tempdir().unwrap();
        let runc = exe(t.path(), "runc");
        let m = text(&[&format!(" RunC = {runc}")]).unwrap();
        assert_eq!(m["runc"].path, runc);
        assert_eq!(m["runc"].binary, PathBuf::from(&runc));
        for (bad, want) in [
            ("runc", "invalid runtime argument: runc"),
            ("=x", "invalid runtime argument: =x"),
            ("x= ", "invalid runtime argument: x= "),
            ("native=/bin/true", "runtime name 'native' is reserved"),
        ] {
            assert_eq!(reason(text(&[bad]).unwrap_err()), want, "{bad}");
        }
        let twice = format!("runc={runc}");
        assert_eq!(
            reason(text(&[&twice, &twice]).unwrap_err()),
            "runtime 'runc' was already defined"
        );
        // The binary must be there, and executable.
        assert_eq!(
            reason(text(&["x=/nonexistent/runc"]).unwrap_err()),
            "runtime x: exec: \"/nonexistent/runc\": stat /nonexistent/runc: no such file or directory"
        );
        let plain = t.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        assert!(
            reason(text(&[&format!("x={}", plain.display())]).unwrap_err())
                .ends_with("permission denied")
        );
        assert_eq!(
            reason(text(&["x=no-such-runtime-here"]).unwrap_err()),
            "runtime x: exec: \"no-such-runtime-here\": executable file not found in $PATH"
        );
    }

    #[test]
    fn daemon_json_runtimes_take_path_and_runtime_args() {
        let t = tempfile::tempdir().unwrap();
        let runc = exe(t.path(), "runc");
        let v = serde_json::json!({"fast": {"path": runc, "runtimeArgs": ["--debug"]}});
        let m = parse(&Given::Json(&v)).unwrap();
        assert_eq!(m["fast"].args, ["--debug"]);
        let v = serde_json::json!({"shim": {"runtimeType": "io.containerd.runsc.v1"}});
        assert!(matches!(
            parse(&Given::Json(&v)).unwrap_err(),
            Bad::Unsupported { .. }
        ));
        let v = serde_json::json!({"nopath": {}});
        assert_eq!(
            reason(parse(&Given::Json(&v)).unwrap_err()),
            "runtime nopath: either a runtimeType or a path must be configured"
        );
        let v = serde_json::json!(["runc"]);
        assert!(matches!(parse(&Given::Json(&v)).unwrap_err(), Bad::Type(_)));
        let v = serde_json::json!({"native": {"path": runc}});
        assert_eq!(
            reason(parse(&Given::Json(&v)).unwrap_err()),
            "runtime name 'native' is reserved"
        );
    }

    #[test]
    fn the_default_runtime_follows_the_exec_driver() {
        let t = tempfile::tempdir().unwrap();
        let runc = exe(t.path(), "runc");
        let dir = t.path().display().to_string();

        let mut c = DaemonConfig::defaults();
        resolve(&mut c, &dir).unwrap();
        assert_eq!(c.default_runtime_name(), "native");
        assert_eq!(c.runtime_names(), ["native"]);

        // --exec-driver oci: runc from PATH, and native is not offered.
        let mut c = DaemonConfig::defaults();
        c.exec_driver = "oci".into();
        resolve(&mut c, &dir).unwrap();
        assert_eq!(c.default_runtime_name(), "runc");
        assert_eq!(c.runtimes["runc"].binary, PathBuf::from(&runc));
        assert_eq!(c.runtime_names(), ["runc"]);
        assert!(!c.native_available());

        let mut c = DaemonConfig::defaults();
        c.exec_driver = "oci".into();
        let e = resolve(&mut c, "/nonexistent").unwrap_err();
        assert_eq!(
            e.to_string(),
            "--exec-driver=oci needs an OCI runtime: exec: \"runc\": executable file not found in $PATH (install runc, or name one with --add-runtime NAME=PATH and --default-runtime NAME)"
        );

        let mut c = DaemonConfig::defaults();
        c.exec_driver = "oci".into();
        c.default_runtime = "native".into();
        assert!(matches!(
            resolve(&mut c, &dir).unwrap_err(),
            ConfigError::NativeWithOciDriver
        ));

        let mut c = DaemonConfig::defaults();
        c.default_runtime = "crun".into();
        let e = resolve(&mut c, &dir).unwrap_err();
        assert_eq!(
            e.to_string(),
            "specified default runtime 'crun' does not exist"
        );
        c.runtimes = text(&[&format!("crun={runc}")]).unwrap();
        resolve(&mut c, &dir).unwrap();
        assert_eq!(c.runtime_names(), ["native", "crun"]);
        assert_eq!(c.default_runtime_name(), "crun");
    }
}
