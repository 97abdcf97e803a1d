//! Daemon configuration: dockerd-compatible flags and daemon.json (seed step 4.1).
//!
//! [`load`] parses the command line, reads the config file, refuses a key given both
//! ways, applies defaults and checks the rules between options. Every error is one line
//! a person can act on; `berthd` prints it and exits 1.
//!
//! Each option is declared once, as a row of [`options::OPTIONS`] (see that module for
//! why a table): its flag, daemon.json key, value form, default, status and a setter
//! that parses, checks and stores the value. clap's command, the set of daemon.json
//! keys, the conflict check, the defaults and docs/api-fields.md's table (checked by a
//! unit test) all follow from the rows. Adding an option is one row, plus a
//! [`DaemonConfig`] field when the rest of the daemon reads it. An option berthd cannot
//! honour refuses every value but its default in its setter, so it fails at flag
//! checking, before anything is made on disk.

mod options;
mod runtimes;
#[cfg(test)]
mod tests;
mod values;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind as ClapErrorKind};
use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::{Map, Value};

use crate::error::ErrorKind;
use options::{Bad, Given};
pub use options::{DaemonOption, Form, OPTIONS, Status};
pub use runtimes::{NATIVE, OCI_DEFAULT, OciRuntime, find_init, look_path};

/// Where the API listens (`-H`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAddr {
    /// `unix:///run/berth.sock`: a socket file, mode 0660.
    Unix(PathBuf),
    /// `tcp://127.0.0.1:2375`.
    Tcp(SocketAddr),
    /// `fd://` (every socket systemd passed) or `fd://N`.
    Fd(Option<String>),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The bridge setting (`-b`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BridgeSetting {
    /// No `-b`: berth creates and manages its default bridge `berth0`.
    #[default]
    Default,
    /// `-b none`: networking is off; containers get only `--network none` or `host`.
    None,
    /// `-b NAME`: an existing bridge that the operator manages.
    Existing(String),
}

/// The `--storage-opt` options berthd knows, read by the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageOpts {
    /// `berth.sync_layers` (default true): make each layer durable before its image is
    /// recorded. `false` trades crash safety for import speed (benchmarks, throwaway roots).
    pub sync_layers: bool,
}

impl Default for StorageOpts {
    fn default() -> Self {
        StorageOpts { sync_layers: true }
    }
}

/// The resolved configuration: flags, then the config file, then defaults.
///
/// `DaemonConfig::default()` is only the empty value that the options' defaults are
/// applied to, not a configuration to run; use [`DaemonConfig::defaults`].
#[derive(Debug, Clone, Default)]
pub struct DaemonConfig {
    pub hosts: Vec<HostAddr>,
    /// `--tls` as given (`None`: not given). `Some(false)` is dockerd's explicit opt-out
    /// that allows a non-loopback TCP address without TLS. Read through
    /// [`DaemonConfig::tls_files`].
    pub tls: Option<bool>,
    /// `--tlsverify` as given; given at all, it turns TLS on (dockerd's rule).
    pub tls_verify: Option<bool>,
    /// `--tlscacert`, `--tlscert`, `--tlskey` as given.
    pub tls_ca: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `--group`: the unix sockets' group (empty: root's).
    pub group: String,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub pidfile: PathBuf,
    pub bridge: BridgeSetting,
    /// `--bip`, a CIDR such as `10.200.0.1/24` (the bridge's address and subnet).
    pub bip: Option<String>,
    /// `--mtu`; 0 means the MTU of the default route's interface, else 1500.
    pub mtu: u32,
    pub icc: bool,
    pub iptables: bool,
    pub ip_forward: bool,
    /// `--ip`: the host address of a published port that names none (`None`: every
    /// address, `0.0.0.0`).
    pub default_bind_ip: Option<std::net::Ipv4Addr>,
    /// `--insecure-registry`: registries (`host[:port]` or CIDR) reached over plain HTTP
    /// (loopback ones always are).
    pub insecure_registries: Vec<String>,
    /// `--registry-mirror`: URLs tried before Docker Hub for its images.
    pub registry_mirrors: Vec<String>,
    /// `--dns`: the nameservers of containers' resolv.conf (empty: the host's).
    pub dns: Vec<std::net::IpAddr>,
    /// `--default-address-pool base=CIDR,size=N` (daemon.json `default-address-pools`):
    /// where the subnets of user-defined networks created without `--subnet` come from,
    /// `(base, base prefix, size)`. Empty: dockerd's defaults
    /// ([`crate::actors::network::user::default_pools`]).
    pub default_address_pools: Vec<(std::net::Ipv4Addr, u8, u8)>,
    /// `-s`: `overlay2` or `vfs`; `None` picks one as dockerd does.
    pub storage_driver: Option<String>,
    pub storage_opts: StorageOpts,
    /// `native` (berthd's own monitor clones each container's init) or `oci` (every
    /// container runs with an OCI runtime, `runc` unless `--default-runtime` says which).
    pub exec_driver: String,
    pub live_restore: bool,
    pub metrics_addr: Option<SocketAddr>,
    /// `debug`, `info`, `warn`, `error` or `fatal`.
    pub log_level: String,
    pub log_format: LogFormat,
    /// The daemon.json that was read, if any.
    pub config_file: Option<PathBuf>,
    /// Seconds a container gets between its stop signal and SIGKILL at daemon shutdown.
    pub shutdown_timeout: u64,
    /// `--default-ulimit`: the limits a container gets for the names its own
    /// `--ulimit` does not set (merged at each start, as dockerd does).
    pub default_ulimits: Vec<crate::model::ulimit::Ulimit>,
    /// `--no-new-privileges`: no_new_privs for containers whose `SecurityOpt` does not
    /// say.
    pub no_new_privileges: bool,
    /// The OCI runtimes by name (`--add-runtime`, daemon.json `runtimes`, and `runc` for
    /// `--exec-driver oci`); see `runtimes.rs`.
    pub runtimes: BTreeMap<String, OciRuntime>,
    /// `--default-runtime` as given ("" when not: `native`, or `runc` with
    /// `--exec-driver oci`); read it through [`DaemonConfig::default_runtime_name`].
    pub default_runtime: String,
    /// The static init that `--init` runs under an OCI runtime (docker-init or
    /// tini-static, `runtimes::find_init`), looked up with the runtimes; not an option.
    pub init_binary: Option<PathBuf>,
    /// `--log-driver`: the log driver of containers that name none (`json-file`).
    pub log_driver: String,
    /// `--log-opt`: the options of the default driver, `key`, `value` in the order given
    /// (a later key replaces an earlier one); checked with the driver once both are read.
    pub log_opts: Vec<(String, String)>,
}

impl DaemonConfig {
    /// The TLS of the TCP listeners: `None` without TLS. TLS is on with `--tls` or any
    /// `--tlsverify` (dockerd's rule); the files default to `$DOCKER_CERT_PATH` or
    /// `~/.docker` (`ca.pem`, `cert.pem`, `key.pem`), as dockerd's flags do.
    pub fn tls_files(&self) -> Option<TlsFiles> {
        if self.tls != Some(true) && self.tls_verify.is_none() {
            return None;
        }
        let dir = std::env::var_os("DOCKER_CERT_PATH")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("/root"))
                    .join(".docker")
            });
        let pick = |given: &Option<PathBuf>, name: &str| given.clone().unwrap_or(dir.join(name));
        Some(TlsFiles {
            verify: self.tls_verify == Some(true),
            ca: pick(&self.tls_ca, "ca.pem"),
            cert: pick(&self.tls_cert, "cert.pem"),
            key: pick(&self.tls_key, "key.pem"),
        })
    }
    /// The configuration that `berthd` with no flags and no config file would use.
    pub fn defaults() -> Self {
        let mut c = DaemonConfig::default();
        for o in OPTIONS {
            // A declared default always parses (`tests::every_default_is_valid`).
            let _ = apply_default(o, &mut c);
        }
        c
    }
}

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------

/// Where `berthd` looks for daemon.json when `--config-file` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";

/// The files of the API's TLS ([`DaemonConfig::tls_files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--tlsverify`: clients must present a certificate signed by `ca`.
    pub verify: bool,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What [`load`] decided.
// A `DaemonConfig` is built once per process; boxing it would only make callers unwrap a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Loaded {
    /// Run the daemon with this configuration.
    Run(DaemonConfig),
    /// `--help` or `--version`: print this text to stdout and exit 0.
    Exit(String),
}

/// Why the configuration was refused. Every message is one line; `berthd` prints it and
/// exits 1.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag berthd does not know (`--foo`).
    #[error("unknown flag: {flag}")]
    UnknownFlag { flag: String },
    /// berthd takes no positional arguments; the usual cause is `--icc false` for `--icc=false`.
    #[error(
        "unexpected argument {arg:?}: berthd takes no arguments (a boolean flag takes its value only as --flag=VALUE)"
    )]
    UnexpectedArgument { arg: String },
    /// Any other command-line syntax error, condensed from clap to one line.
    #[error("{message}")]
    Usage { message: String },
    /// A flag's value is not valid (pflag's wording).
    #[error("invalid argument {value:?} for \"{flag}\" flag: {reason}")]
    InvalidFlag {
        flag: &'static str,
        value: String,
        reason: String,
    },
    /// A flag's value is valid but asks for something berthd does not do.
    #[error("{flag}={value} is not supported by this berthd yet: {reason}")]
    UnsupportedFlag {
        flag: &'static str,
        value: String,
        reason: String,
    },
    /// The config file could not be used.
    #[error("unable to configure the berth daemon with file {}: {problem}", path.display())]
    File { path: PathBuf, problem: FileProblem },
    /// `-b` and `--bip` together.
    #[error("You specified -b & --bip, mutually exclusive options. Please specify only one")]
    BridgeAndBip,
    /// `--icc=false` needs iptables.
    #[error(
        "You specified --iptables=false with --icc=false. ICC=false uses iptables to function. Please set --icc or --iptables to true."
    )]
    IccWithoutIptables,
    /// `--default-runtime` names no runtime (dockerd's text).
    #[error("specified default runtime '{name}' does not exist")]
    NoSuchDefaultRuntime { name: String },
    /// `--exec-driver oci` and no OCI runtime to run containers with.
    #[error(
        "--exec-driver=oci needs an OCI runtime: {reason} (install runc, or name one with --add-runtime NAME=PATH and --default-runtime NAME)"
    )]
    NoOciRuntime { reason: String },
    /// `--exec-driver oci` with `--default-runtime native`.
    #[error(
        "--default-runtime=native contradicts --exec-driver=oci, which runs every container with an OCI runtime"
    )]
    NativeWithOciDriver,
    /// A non-loopback `-H tcp://` without TLS and without the explicit opt-out.
    #[error(
        "listening on tcp://{addr} without TLS gives root access on this machine to everyone who can reach that address: use --tlsverify (with --tlscacert, --tlscert and --tlskey), or pass --tls=false to run without authentication anyway"
    )]
    TcpWithoutTls { addr: SocketAddr },
    /// `--log-driver` and `--log-opt` checked together (dockerd's prefix; the rest is
    /// dockerd's words, or names what berthd does not do yet).
    #[error("failed to set log opts: {message}")]
    LogConfig { message: String },
}

impl ConfigError {
    /// Every configuration error is the operator's to fix.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidParameter
    }
}

/// What is wrong with daemon.json (the part after dockerd's prefix).
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    /// The file cannot be read (missing, a directory, no permission).
    #[error("open {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    /// The file is not JSON.
    #[error("invalid JSON at line {line} column {column}: {reason}")]
    Syntax {
        line: usize,
        column: usize,
        reason: String,
    },
    /// The file is JSON but not an object.
    #[error("the configuration must be a JSON object")]
    NotObject,
    /// Keys that are not berthd options.
    #[error(
        "the following directives don't match any configuration option: {}",
        keys.join(", ")
    )]
    UnknownKeys { keys: Vec<String> },
    /// Keys also given as flags, each as `key: (from flag: F, from file: V)`.
    #[error(
        "the following directives are specified both as a flag and in the configuration file: {}",
        conflicts.join(", ")
    )]
    Conflicts { conflicts: Vec<String> },
    /// A key whose JSON type is wrong (a string where a bool is expected, …).
    #[error("invalid type for {key}: {reason}")]
    WrongType { key: &'static str, reason: String },
    /// A key whose value has the right type but is not valid.
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        key: &'static str,
        value: String,
        reason: String,
    },
    /// A key whose value is valid but asks for something berthd does not do.
    #[error("{key}: {value} is not supported by this berthd yet: {reason}")]
    Unsupported {
        key: &'static str,
        value: String,
        reason: String,
    },
}

/// The clap id of `-v/--version`, the one flag that is not a daemon option.
const VERSION: &str = "version";

/// The command line, built from [`OPTIONS`]. clap knows no defaults (they are shown in
/// the help text only), so that [`load`] can tell which options were given.
fn command() -> Command {
    let mut cmd = Command::new("berthd")
        .about("A container engine daemon that speaks the Docker Engine API")
        .disable_version_flag(true)
        .disable_help_subcommand(true)
        .max_term_width(100)
        .args_override_self(true);
    for o in OPTIONS {
        let help = match o.default {
            Some(d) => format!("{} [default: {d}]", o.help),
            None => o.help.to_owned(),
        };
        let mut arg = Arg::new(o.long())
            .long(o.long())
            .value_name(o.value_name)
            .help(help);
        if let Some(c) = o.short {
            arg = arg.short(c);
        }
        arg = match o.form {
            Form::Value => arg.action(ArgAction::Set),
            Form::Number => arg.action(ArgAction::Set).allow_hyphen_values(true),
            Form::Bool => arg
                .action(ArgAction::Set)
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true"),
            Form::List => arg.action(ArgAction::Append),
        };
        cmd = cmd.arg(arg);
    }
    cmd.arg(
        Arg::new(VERSION)
            .short('v')
            .long("version")
            .action(ArgAction::SetTrue)
            .help("Print version information and quit"),
    )
}

/// Parses the command line (`args` starts with argv\[0\]), reads daemon.json (the
/// `--config-file`, else [`DEFAULT_CONFIG_FILE`] if it exists), refuses a key given both
/// ways, applies defaults and checks the rules between options.
pub fn load(args: impl IntoIterator<Item = OsString>) -> Result<Loaded, ConfigError> {
    load_with_default_file(args, Path::new(DEFAULT_CONFIG_FILE))
}

/// [`load`] with another default config file, so that tests do not read the host's.
fn load_with_default_file(
    args: impl IntoIterator<Item = OsString>,
    default_file: &Path,
) -> Result<Loaded, ConfigError> {
    let matches = match command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => return clap_outcome(&e),
    };
    if matches.get_flag(VERSION) {
        return Ok(Loaded::Exit(version_text()));
    }
    let mut config = DaemonConfig::default();
    let mut done = vec![false; OPTIONS.len()];

    // The flags, each checked on its own, and their file keys for the conflict check.
    let mut given: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut config_flag = None;
    for (i, o) in OPTIONS.iter().enumerate() {
        let Some(values) = flag_values(&matches, o) else {
            continue;
        };
        (o.set)(&mut config, &Given::Text(&values)).map_err(|bad| flag_error(o, &values, bad))?;
        if let Some(key) = o.key {
            given.insert(key, shown(o, &values));
        }
        if o.flag == "--config-file" {
            config_flag = values.last().cloned();
        }
        done[i] = true;
    }

    // daemon.json.
    let (file_path, explicit) = match config_flag {
        Some(p) => (PathBuf::from(p), true),
        None => (default_file.to_path_buf(), false),
    };
    let file_error = |problem| ConfigError::File {
        path: file_path.clone(),
        problem,
    };
    if let Some(map) = read_file(&file_path, explicit).map_err(file_error)? {
        check_keys(&map, &given).map_err(file_error)?;
        for (i, o) in OPTIONS.iter().enumerate() {
            let (Some(key), false) = (o.key, done[i]) else {
                continue;
            };
            let Some(value) = map.get(key) else { continue };
            (o.set)(&mut config, &Given::Json(value))
                .map_err(|bad| file_error(file_problem(key, bad)))?;
            done[i] = true;
        }
        config.config_file = Some(file_path.clone());
    }

    // The defaults of the rest.
    for (i, o) in OPTIONS.iter().enumerate() {
        if !done[i] {
            apply_default(o, &mut config)?;
        }
    }
    check_rules(&config)?;
    runtimes::resolve_from_env(&mut config)?;
    Ok(Loaded::Run(config))
}

fn version_text() -> String {
    format!("berthd version {}\n", env!("CARGO_PKG_VERSION"))
}

/// The values given on the command line for `o`, or `None` if it was not given.
fn flag_values(matches: &ArgMatches, o: &DaemonOption) -> Option<Vec<String>> {
    matches
        .get_many::<String>(o.long())
        .map(|values| values.cloned().collect())
}

/// Sets `o` to its declared default, if it has one.
fn apply_default(o: &DaemonOption, config: &mut DaemonConfig) -> Result<(), ConfigError> {
    let Some(d) = o.default else { return Ok(()) };
    let values = [d.to_owned()];
    (o.set)(config, &Given::Text(&values)).map_err(|bad| flag_error(o, &values, bad))
}

/// A flag's value as the conflict message shows it: a list as `[a b]`, else the last.
fn shown(o: &DaemonOption, values: &[String]) -> String {
    match o.form {
        Form::List => format!("[{}]", values.join(" ")),
        _ => values.last().cloned().unwrap_or_default(),
    }
}

fn flag_error(o: &DaemonOption, values: &[String], bad: Bad) -> ConfigError {
    match bad {
        Bad::Type(reason) => ConfigError::InvalidFlag {
            flag: o.flag,
            value: shown(o, values),
            reason,
        },
        Bad::Invalid { value, reason } => ConfigError::InvalidFlag {
            flag: o.flag,
            value,
            reason,
        },
        Bad::Unsupported { value, reason } => ConfigError::UnsupportedFlag {
            flag: o.flag,
            value,
            reason,
        },
    }
}

fn file_problem(key: &'static str, bad: Bad) -> FileProblem {
    match bad {
        Bad::Type(reason) => FileProblem::WrongType { key, reason },
        Bad::Invalid { value, reason } => FileProblem::InvalidValue { key, value, reason },
        Bad::Unsupported { value, reason } => FileProblem::Unsupported { key, value, reason },
    }
}

/// Unknown keys first, then keys also given as flags (dockerd's order).
fn check_keys(
    map: &Map<String, Value>,
    given: &BTreeMap<&'static str, String>,
) -> Result<(), FileProblem> {
    let mut unknown: Vec<String> = map
        .keys()
        .filter(|k| !OPTIONS.iter().any(|o| o.key == Some(k.as_str())))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        unknown.sort();
        return Err(FileProblem::UnknownKeys { keys: unknown });
    }
    let conflicts: Vec<String> = given
        .iter()
        .filter_map(|(key, flag_value)| {
            map.get(*key).map(|file_value| {
                format!(
                    "{key}: (from flag: {flag_value}, from file: {})",
                    go_format(file_value)
                )
            })
        })
        .collect();
    if conflicts.is_empty() {
        Ok(())
    } else {
        Err(FileProblem::Conflicts { conflicts })
    }
}

/// The rules between options, checked on the merged configuration.
fn check_rules(c: &DaemonConfig) -> Result<(), ConfigError> {
    if c.bridge != BridgeSetting::Default && c.bip.is_some() {
        return Err(ConfigError::BridgeAndBip);
    }
    if !c.iptables && !c.icc {
        return Err(ConfigError::IccWithoutIptables);
    }
    // A root API open to the network needs TLS, or the operator's explicit `--tls=false`
    // (dockerd 27 refuses to start likewise; loopback is fine).
    if c.tls_files().is_none() && c.tls != Some(false) {
        if let Some(addr) = c.hosts.iter().find_map(|h| match h {
            HostAddr::Tcp(a) if !a.ip().is_loopback() => Some(*a),
            _ => None,
        }) {
            return Err(ConfigError::TcpWithoutTls { addr });
        }
    }
    let opts = c.log_opts.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    crate::model::logconfig::parse(&c.log_driver, opts).map_err(|e| ConfigError::LogConfig {
        message: e.to_string(),
    })?;
    Ok(())
}

/// Turns a clap outcome that is not a parsed command line into help text or one-line error.
fn clap_outcome(e: &clap::Error) -> Result<Loaded, ConfigError> {
    match e.kind() {
        ClapErrorKind::DisplayHelp | ClapErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            Ok(Loaded::Exit(e.render().to_string()))
        }
        ClapErrorKind::DisplayVersion => Ok(Loaded::Exit(version_text())),
        ClapErrorKind::UnknownArgument => {
            let arg = match e.get(ContextKind::InvalidArg) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => return Err(condensed(e)),
            };
            if arg.starts_with('-') {
                let flag = arg.split('=').next().unwrap_or(&arg).to_owned();
                Err(ConfigError::UnknownFlag { flag })
            } else {
                Err(ConfigError::UnexpectedArgument { arg })
            }
        }
        _ => Err(condensed(e)),
    }
}

/// The first line of clap's message, without its `error: ` prefix and usage dump.
fn condensed(e: &clap::Error) -> ConfigError {
    let text = e.render().to_string();
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let message = line
        .strip_prefix("error: ")
        .unwrap_or(line)
        .trim()
        .to_owned();
    ConfigError::Usage { message }
}

/// Reads daemon.json. `Ok(None)`: the default file does not exist (that is fine), or the
/// file is empty.
fn read_file(path: &Path, explicit: bool) -> Result<Option<Map<String, Value>>, FileProblem> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => return Ok(None),
        Err(e) => {
            return Err(FileProblem::Read {
                path: path.to_path_buf(),
                reason: io_reason(&e),
            });
        }
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(FileProblem::NotObject),
        Err(e) => {
            // serde_json's Display already ends in "at line L column C"; keep only the reason.
            let full = e.to_string();
            let reason = match full.rfind(" at line ") {
                Some(i) => full[..i].to_owned(),
                None => full,
            };
            Err(FileProblem::Syntax {
                line: e.line(),
                column: e.column(),
                reason,
            })
        }
    }
}

/// The reason of an I/O error without the "(os error N)" tail, lower case like Go's.
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A JSON value printed as Go's `%v` prints it after `json.Unmarshal` into `interface{}`.
fn go_format(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_format).collect::<Vec<_>>().join(" ")
        ),
        Value::Null => "<nil>".to_owned(),
        other => other.to_string(),
    }
}
