//! Daemon configuration: dockerd-compatible flags and daemon.json (seed step 4.1).
//!
//! [`load`] parses the command line, reads the config file, refuses a key given both
//! ways, applies defaults and checks the rules between options. Every error is one line
//! a person can act on; `berthd` prints it and exits 1.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind as ClapErrorKind};
use serde_json::{Map, Value};

use crate::error::ErrorKind;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The bridge setting (`-b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BridgeSetting {
    /// No `-b`: berth creates and manages its default bridge `berth0`.
    Default,
    /// `-b none`: networking is off; containers get only `--network none` or `host`.
    None,
    /// `-b NAME`: an existing bridge that the operator manages.
    Existing(String),
}

/// The resolved configuration: flags, then the config file, then defaults.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub hosts: Vec<HostAddr>,
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
    /// `--ip`: the default host address for published ports.
    pub ip: IpAddr,
    pub dns: Vec<IpAddr>,
    pub storage_driver: Option<String>,
    pub storage_opts: Vec<String>,
    /// `native` or `oci`.
    pub exec_driver: String,
    pub selinux_enabled: bool,
    pub live_restore: bool,
    pub metrics_addr: Option<SocketAddr>,
    /// `debug`, `info`, `warn`, `error` or `fatal`.
    pub log_level: String,
    pub log_format: LogFormat,
    /// The daemon.json that was read, if any.
    pub config_file: Option<PathBuf>,
    /// Seconds a container gets between its stop signal and SIGKILL at daemon shutdown.
    pub shutdown_timeout: u64,
}

impl DaemonConfig {
    /// The configuration that `berthd` with no flags and no config file would use.
    pub fn defaults() -> Self {
        DaemonConfig {
            hosts: vec![HostAddr::Unix(PathBuf::from("/run/berth.sock"))],
            data_root: PathBuf::from("/var/lib/berth"),
            exec_root: PathBuf::from("/run/berth"),
            pidfile: PathBuf::from("/run/berthd.pid"),
            bridge: BridgeSetting::Default,
            bip: None,
            mtu: 0,
            icc: true,
            iptables: true,
            ip_forward: true,
            ip: IpAddr::from([0, 0, 0, 0]),
            dns: Vec::new(),
            storage_driver: None,
            storage_opts: Vec::new(),
            exec_driver: "native".to_owned(),
            selinux_enabled: false,
            live_restore: false,
            metrics_addr: None,
            log_level: "info".to_owned(),
            log_format: LogFormat::Text,
            config_file: None,
            shutdown_timeout: 10,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------

/// Where `berthd` looks for daemon.json when `--config-file` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";

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
}

/// The command line. Every option is an `Option` (or an empty `Vec`) so that [`load`]
/// knows which ones were given and can refuse the same key in daemon.json; the defaults
/// live in [`DaemonConfig::defaults`] and are shown in the help text.
#[derive(Debug, Parser)]
#[command(
    name = "berthd",
    about = "A container engine daemon that speaks the Docker Engine API",
    disable_version_flag = true,
    disable_help_subcommand = true,
    max_term_width = 100,
    args_override_self = true
)]
struct Flags {
    /// Daemon socket(s) to listen on: unix:///path, tcp://host:port, fd:// or fd://N [default: unix:///run/berth.sock]
    #[arg(short = 'H', long = "host", value_name = "ADDR")]
    host: Vec<String>,
    /// Root directory of persistent berth state [default: /var/lib/berth]
    #[arg(long = "data-root", value_name = "PATH")]
    data_root: Option<String>,
    /// Root directory for execution state files [default: /run/berth]
    #[arg(long = "exec-root", value_name = "PATH")]
    exec_root: Option<String>,
    /// Path to use for the daemon PID file [default: /run/berthd.pid]
    #[arg(short = 'p', long = "pidfile", value_name = "PATH")]
    pidfile: Option<String>,
    /// Attach containers to an existing network bridge ("none" disables networking)
    #[arg(short = 'b', long = "bridge", value_name = "NAME")]
    bridge: Option<String>,
    /// Bridge IP and subnet of the default bridge, as a CIDR (e.g. 10.200.0.1/24)
    #[arg(long = "bip", value_name = "CIDR")]
    bip: Option<String>,
    /// Container network MTU; 0 uses the default route's interface [default: 0]
    #[arg(long = "mtu", value_name = "INT", allow_hyphen_values = true)]
    mtu: Option<String>,
    /// Enable inter-container communication [default: true]
    #[arg(long = "icc", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    icc: Option<String>,
    /// Enable iptables rules [default: true]
    #[arg(long = "iptables", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    iptables: Option<String>,
    /// Enable net.ipv4.ip_forward [default: true]
    #[arg(long = "ip-forward", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    ip_forward: Option<String>,
    /// Default IP when binding container ports [default: 0.0.0.0]
    #[arg(long = "ip", value_name = "IP")]
    ip: Option<String>,
    /// DNS server to use (repeatable)
    #[arg(long = "dns", value_name = "IP")]
    dns: Vec<String>,
    /// Storage driver to use (overlay2, vfs)
    #[arg(short = 's', long = "storage-driver", value_name = "NAME")]
    storage_driver: Option<String>,
    /// Storage driver option (repeatable)
    #[arg(long = "storage-opt", value_name = "OPT")]
    storage_opt: Vec<String>,
    /// Exec driver: native or oci [default: native]
    #[arg(long = "exec-driver", value_name = "NAME")]
    exec_driver: Option<String>,
    /// Enable SELinux support [default: false]
    #[arg(long = "selinux-enabled", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    selinux_enabled: Option<String>,
    /// Keep containers running while the daemon is down [default: false]
    #[arg(long = "live-restore", value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    live_restore: Option<String>,
    /// Address to serve Prometheus metrics on (host:port)
    #[arg(long = "metrics-addr", value_name = "ADDR")]
    metrics_addr: Option<String>,
    /// Logging level: debug, info, warn, error or fatal [default: info]
    #[arg(short = 'l', long = "log-level", value_name = "LEVEL")]
    log_level: Option<String>,
    /// Logging format: text or json [default: text]
    #[arg(long = "log-format", value_name = "FORMAT")]
    log_format: Option<String>,
    /// Daemon configuration file [default: /etc/berth/daemon.json]
    #[arg(long = "config-file", value_name = "PATH")]
    config_file: Option<String>,
    /// Seconds to wait for containers to stop at daemon shutdown [default: 10]
    #[arg(
        long = "shutdown-timeout",
        value_name = "SECONDS",
        allow_hyphen_values = true
    )]
    shutdown_timeout: Option<String>,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    version: bool,
}

/// The keys daemon.json accepts, sorted; each has a flag of the same meaning.
const FILE_KEYS: &[&str] = &[
    "bip",
    "bridge",
    "data-root",
    "dns",
    "exec-driver",
    "exec-root",
    "hosts",
    "icc",
    "ip",
    "ip-forward",
    "iptables",
    "live-restore",
    "log-format",
    "log-level",
    "metrics-addr",
    "mtu",
    "pidfile",
    "selinux-enabled",
    "shutdown-timeout",
    "storage-driver",
    "storage-opts",
];

/// Options given by one source (flags or the file), already checked one by one.
#[derive(Debug, Default)]
struct Partial {
    hosts: Option<Vec<HostAddr>>,
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    pidfile: Option<PathBuf>,
    bridge: Option<BridgeSetting>,
    bip: Option<String>,
    mtu: Option<u32>,
    icc: Option<bool>,
    iptables: Option<bool>,
    ip_forward: Option<bool>,
    ip: Option<IpAddr>,
    dns: Option<Vec<IpAddr>>,
    storage_driver: Option<String>,
    storage_opts: Option<Vec<String>>,
    exec_driver: Option<String>,
    selinux_enabled: Option<bool>,
    live_restore: Option<bool>,
    metrics_addr: Option<SocketAddr>,
    log_level: Option<String>,
    log_format: Option<LogFormat>,
    shutdown_timeout: Option<u64>,
}

impl Partial {
    /// Fills every option this source left out from `lower`.
    fn or(self, lower: Partial) -> Partial {
        Partial {
            hosts: self.hosts.or(lower.hosts),
            data_root: self.data_root.or(lower.data_root),
            exec_root: self.exec_root.or(lower.exec_root),
            pidfile: self.pidfile.or(lower.pidfile),
            bridge: self.bridge.or(lower.bridge),
            bip: self.bip.or(lower.bip),
            mtu: self.mtu.or(lower.mtu),
            icc: self.icc.or(lower.icc),
            iptables: self.iptables.or(lower.iptables),
            ip_forward: self.ip_forward.or(lower.ip_forward),
            ip: self.ip.or(lower.ip),
            dns: self.dns.or(lower.dns),
            storage_driver: self.storage_driver.or(lower.storage_driver),
            storage_opts: self.storage_opts.or(lower.storage_opts),
            exec_driver: self.exec_driver.or(lower.exec_driver),
            selinux_enabled: self.selinux_enabled.or(lower.selinux_enabled),
            live_restore: self.live_restore.or(lower.live_restore),
            metrics_addr: self.metrics_addr.or(lower.metrics_addr),
            log_level: self.log_level.or(lower.log_level),
            log_format: self.log_format.or(lower.log_format),
            shutdown_timeout: self.shutdown_timeout.or(lower.shutdown_timeout),
        }
    }

    /// The resolved configuration: this source, then the defaults.
    fn resolve(self, config_file: Option<PathBuf>) -> DaemonConfig {
        let d = DaemonConfig::defaults();
        DaemonConfig {
            hosts: self.hosts.unwrap_or(d.hosts),
            data_root: self.data_root.unwrap_or(d.data_root),
            exec_root: self.exec_root.unwrap_or(d.exec_root),
            pidfile: self.pidfile.unwrap_or(d.pidfile),
            bridge: self.bridge.unwrap_or(d.bridge),
            bip: self.bip.or(d.bip),
            mtu: self.mtu.unwrap_or(d.mtu),
            icc: self.icc.unwrap_or(d.icc),
            iptables: self.iptables.unwrap_or(d.iptables),
            ip_forward: self.ip_forward.unwrap_or(d.ip_forward),
            ip: self.ip.unwrap_or(d.ip),
            dns: self.dns.unwrap_or(d.dns),
            storage_driver: self.storage_driver.or(d.storage_driver),
            storage_opts: self.storage_opts.unwrap_or(d.storage_opts),
            exec_driver: self.exec_driver.unwrap_or(d.exec_driver),
            selinux_enabled: self.selinux_enabled.unwrap_or(d.selinux_enabled),
            live_restore: self.live_restore.unwrap_or(d.live_restore),
            metrics_addr: self.metrics_addr.or(d.metrics_addr),
            log_level: self.log_level.unwrap_or(d.log_level),
            log_format: self.log_format.unwrap_or(d.log_format),
            config_file,
            shutdown_timeout: self.shutdown_timeout.unwrap_or(d.shutdown_timeout),
        }
    }
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
    let flags = match Flags::try_parse_from(args) {
        Ok(flags) => flags,
        Err(e) => return clap_outcome(&e),
    };
    if flags.version {
        return Ok(Loaded::Exit(format!(
            "berthd version {}\n",
            env!("CARGO_PKG_VERSION")
        )));
    }
    let given = given_flags(&flags);
    let from_flags = partial_from_flags(&flags)?;

    let (file_path, explicit) = match &flags.config_file {
        Some(p) => (PathBuf::from(p), true),
        None => (default_file.to_path_buf(), false),
    };
    let file_error = |problem| ConfigError::File {
        path: file_path.clone(),
        problem,
    };
    let (from_file, config_file) = match read_file(&file_path, explicit).map_err(file_error)? {
        None => (Partial::default(), None),
        Some(map) => {
            check_keys(&map, &given).map_err(file_error)?;
            let partial = partial_from_file(&map).map_err(file_error)?;
            (partial, Some(file_path.clone()))
        }
    };

    let config = from_flags.or(from_file).resolve(config_file);
    check_rules(&config)?;
    Ok(Loaded::Run(config))
}

/// Turns a clap outcome that is not a parsed command line into help text or one-line error.
fn clap_outcome(e: &clap::Error) -> Result<Loaded, ConfigError> {
    match e.kind() {
        ClapErrorKind::DisplayHelp | ClapErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            Ok(Loaded::Exit(e.render().to_string()))
        }
        ClapErrorKind::DisplayVersion => Ok(Loaded::Exit(format!(
            "berthd version {}\n",
            env!("CARGO_PKG_VERSION")
        ))),
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

/// The file key and the value as given, for every flag that was on the command line.
fn given_flags(f: &Flags) -> BTreeMap<&'static str, String> {
    let mut given = BTreeMap::new();
    let list = |v: &[String]| format!("[{}]", v.join(" "));
    let mut one = |key: &'static str, v: &Option<String>| {
        if let Some(v) = v {
            given.insert(key, v.clone());
        }
    };
    one("data-root", &f.data_root);
    one("exec-root", &f.exec_root);
    one("pidfile", &f.pidfile);
    one("bridge", &f.bridge);
    one("bip", &f.bip);
    one("mtu", &f.mtu);
    one("icc", &f.icc);
    one("iptables", &f.iptables);
    one("ip-forward", &f.ip_forward);
    one("ip", &f.ip);
    one("storage-driver", &f.storage_driver);
    one("exec-driver", &f.exec_driver);
    one("selinux-enabled", &f.selinux_enabled);
    one("live-restore", &f.live_restore);
    one("metrics-addr", &f.metrics_addr);
    one("log-level", &f.log_level);
    one("log-format", &f.log_format);
    one("shutdown-timeout", &f.shutdown_timeout);
    if !f.host.is_empty() {
        given.insert("hosts", list(&f.host));
    }
    if !f.dns.is_empty() {
        given.insert("dns", list(&f.dns));
    }
    if !f.storage_opt.is_empty() {
        given.insert("storage-opts", list(&f.storage_opt));
    }
    given
}

/// Checks each flag's value on its own.
fn partial_from_flags(f: &Flags) -> Result<Partial, ConfigError> {
    fn check<T>(
        flag: &'static str,
        value: &Option<String>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        value
            .as_deref()
            .map(|v| {
                parse(v).map_err(|reason| ConfigError::InvalidFlag {
                    flag,
                    value: v.to_owned(),
                    reason,
                })
            })
            .transpose()
    }
    fn check_all<T>(
        flag: &'static str,
        values: &[String],
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<Vec<T>>, ConfigError> {
        if values.is_empty() {
            return Ok(None);
        }
        values
            .iter()
            .map(|v| check(flag, &Some(v.clone()), &parse).map(|o| o.expect("value was given")))
            .collect::<Result<Vec<T>, _>>()
            .map(Some)
    }
    let path = |v: &str| -> Result<PathBuf, String> { parse_path(v) };
    Ok(Partial {
        hosts: check_all("--host", &f.host, parse_host)?,
        data_root: check("--data-root", &f.data_root, path)?,
        exec_root: check("--exec-root", &f.exec_root, path)?,
        pidfile: check("--pidfile", &f.pidfile, path)?,
        bridge: check("--bridge", &f.bridge, |v| Ok(parse_bridge(v)))?,
        bip: check("--bip", &f.bip, parse_bip)?,
        mtu: check("--mtu", &f.mtu, |v| {
            v.parse::<u32>().map_err(|e| e.to_string())
        })?,
        icc: check("--icc", &f.icc, parse_bool)?,
        iptables: check("--iptables", &f.iptables, parse_bool)?,
        ip_forward: check("--ip-forward", &f.ip_forward, parse_bool)?,
        ip: check("--ip", &f.ip, parse_ip)?,
        dns: check_all("--dns", &f.dns, parse_ip)?,
        storage_driver: check("--storage-driver", &f.storage_driver, |v| Ok(v.to_owned()))?,
        storage_opts: (!f.storage_opt.is_empty()).then(|| f.storage_opt.clone()),
        exec_driver: check("--exec-driver", &f.exec_driver, parse_exec_driver)?,
        selinux_enabled: check("--selinux-enabled", &f.selinux_enabled, parse_bool)?,
        live_restore: check("--live-restore", &f.live_restore, parse_bool)?,
        metrics_addr: check("--metrics-addr", &f.metrics_addr, parse_metrics_addr)?,
        log_level: check("--log-level", &f.log_level, parse_log_level)?,
        log_format: check("--log-format", &f.log_format, parse_log_format)?,
        shutdown_timeout: check("--shutdown-timeout", &f.shutdown_timeout, |v| {
            v.parse::<u64>().map_err(|e| e.to_string())
        })?,
    })
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

/// Unknown keys first, then keys also given as flags (dockerd's order).
fn check_keys(
    map: &Map<String, Value>,
    given: &BTreeMap<&'static str, String>,
) -> Result<(), FileProblem> {
    let mut unknown: Vec<String> = map
        .keys()
        .filter(|k| !FILE_KEYS.contains(&k.as_str()))
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

/// Checks each key of daemon.json on its own.
fn partial_from_file(map: &Map<String, Value>) -> Result<Partial, FileProblem> {
    fn typed<T: serde::de::DeserializeOwned>(
        map: &Map<String, Value>,
        key: &'static str,
    ) -> Result<Option<T>, FileProblem> {
        map.get(key)
            .map(|v| {
                T::deserialize(v).map_err(|e| FileProblem::WrongType {
                    key,
                    reason: e.to_string(),
                })
            })
            .transpose()
    }
    fn checked<T>(
        map: &Map<String, Value>,
        key: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, FileProblem> {
        typed::<String>(map, key)?
            .map(|v| {
                parse(&v).map_err(|reason| FileProblem::InvalidValue {
                    key,
                    value: v,
                    reason,
                })
            })
            .transpose()
    }
    fn checked_all<T>(
        map: &Map<String, Value>,
        key: &'static str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<Vec<T>>, FileProblem> {
        typed::<Vec<String>>(map, key)?
            .map(|vs| {
                vs.into_iter()
                    .map(|v| {
                        parse(&v).map_err(|reason| FileProblem::InvalidValue {
                            key,
                            value: v,
                            reason,
                        })
                    })
                    .collect()
            })
            .transpose()
    }
    Ok(Partial {
        hosts: checked_all(map, "hosts", parse_host)?,
        data_root: checked(map, "data-root", parse_path)?,
        exec_root: checked(map, "exec-root", parse_path)?,
        pidfile: checked(map, "pidfile", parse_path)?,
        bridge: checked(map, "bridge", |v| Ok(parse_bridge(v)))?,
        bip: checked(map, "bip", parse_bip)?,
        mtu: typed(map, "mtu")?,
        icc: typed(map, "icc")?,
        iptables: typed(map, "iptables")?,
        ip_forward: typed(map, "ip-forward")?,
        ip: checked(map, "ip", parse_ip)?,
        dns: checked_all(map, "dns", parse_ip)?,
        storage_driver: typed(map, "storage-driver")?,
        storage_opts: typed(map, "storage-opts")?,
        exec_driver: checked(map, "exec-driver", parse_exec_driver)?,
        selinux_enabled: typed(map, "selinux-enabled")?,
        live_restore: typed(map, "live-restore")?,
        metrics_addr: checked(map, "metrics-addr", parse_metrics_addr)?,
        log_level: checked(map, "log-level", parse_log_level)?,
        log_format: checked(map, "log-format", parse_log_format)?,
        shutdown_timeout: typed(map, "shutdown-timeout")?,
    })
}

/// The rules between options, checked on the merged configuration.
fn check_rules(c: &DaemonConfig) -> Result<(), ConfigError> {
    if c.bridge != BridgeSetting::Default && c.bip.is_some() {
        return Err(ConfigError::BridgeAndBip);
    }
    if !c.iptables && !c.icc {
        return Err(ConfigError::IccWithoutIptables);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

fn parse_path(v: &str) -> Result<PathBuf, String> {
    if v.is_empty() {
        Err("the path is empty".to_owned())
    } else {
        Ok(PathBuf::from(v))
    }
}

fn parse_bridge(v: &str) -> BridgeSetting {
    match v {
        "" => BridgeSetting::Default,
        "none" => BridgeSetting::None,
        name => BridgeSetting::Existing(name.to_owned()),
    }
}

fn parse_ip(v: &str) -> Result<IpAddr, String> {
    v.parse::<IpAddr>()
        .map_err(|_| "not an IP address".to_owned())
}

/// An IPv4 address with a prefix length, such as `10.200.0.1/24`.
fn parse_bip(v: &str) -> Result<String, String> {
    let (addr, prefix) = v
        .split_once('/')
        .ok_or_else(|| "expected an IPv4 CIDR such as 10.200.0.1/24".to_owned())?;
    let addr: Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| (1..=30).contains(p))
        .ok_or_else(|| format!("prefix length {prefix:?} is not between 1 and 30"))?;
    let host_bits = u32::MAX >> prefix;
    let bits = u32::from(addr);
    if bits & host_bits == 0 || bits & host_bits == host_bits {
        return Err(format!(
            "{addr} is the network or broadcast address of its subnet; give the bridge's own address"
        ));
    }
    Ok(format!("{addr}/{prefix}"))
}

/// `host:port` where host is an IP address, `localhost` or empty (all addresses).
fn parse_socket_addr(v: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = v.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = v
        .rsplit_once(':')
        .ok_or_else(|| "expected host:port".to_owned())?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port number"))?;
    let ip = match host {
        "" => IpAddr::from([0, 0, 0, 0]),
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        other => other
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| format!("{other:?} is not an IP address or localhost"))?,
    };
    Ok(SocketAddr::new(ip, port))
}

fn parse_metrics_addr(v: &str) -> Result<SocketAddr, String> {
    parse_socket_addr(v)
}

/// `-H`: `unix:///path` (or a bare `/path`), `tcp://host:port` (port 2375 if left out),
/// `fd://` or `fd://N`.
fn parse_host(v: &str) -> Result<HostAddr, String> {
    let v = v.trim();
    if v.starts_with('/') {
        return Ok(HostAddr::Unix(PathBuf::from(v)));
    }
    let (scheme, rest) = match v.split_once("://") {
        Some(parts) => parts,
        None if v.is_empty() => return Err("the address is empty".to_owned()),
        None => ("tcp", v),
    };
    match scheme {
        "unix" => match rest {
            "" => Ok(HostAddr::Unix(PathBuf::from("/run/berth.sock"))),
            p if p.starts_with('/') => Ok(HostAddr::Unix(PathBuf::from(p))),
            _ => Err("a unix socket path must be absolute".to_owned()),
        },
        "fd" => match rest {
            "" => Ok(HostAddr::Fd(None)),
            n if n.contains('/') => Err(format!("{n:?} is not a socket number or name")),
            n => Ok(HostAddr::Fd(Some(n.to_owned()))),
        },
        "tcp" => {
            let rest = rest.trim_end_matches('/');
            if rest.contains('/') {
                return Err("a tcp address has no path".to_owned());
            }
            let with_port = if rest.is_empty() {
                ":2375".to_owned()
            } else if rest.ends_with(']') || !rest.contains(':') {
                format!("{rest}:2375")
            } else {
                rest.to_owned()
            };
            parse_socket_addr(&with_port).map(HostAddr::Tcp)
        }
        other => Err(format!(
            "unsupported protocol {other:?}: use unix://, tcp:// or fd://"
        )),
    }
}

fn parse_exec_driver(v: &str) -> Result<String, String> {
    match v {
        "native" | "oci" => Ok(v.to_owned()),
        _ => Err("the exec driver must be native or oci".to_owned()),
    }
}

fn parse_log_level(v: &str) -> Result<String, String> {
    match v {
        "debug" | "info" | "warn" | "error" | "fatal" => Ok(v.to_owned()),
        _ => Err("the log level must be debug, info, warn, error or fatal".to_owned()),
    }
}

fn parse_log_format(v: &str) -> Result<LogFormat, String> {
    match v {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("the log format must be text or json".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where no default daemon.json exists, so that tests never read the host's.
    fn no_default() -> PathBuf {
        PathBuf::from("/nonexistent/berth-test/daemon.json")
    }

    fn run(args: &[&str]) -> Result<Loaded, ConfigError> {
        let argv = std::iter::once("berthd")
            .chain(args.iter().copied())
            .map(OsString::from);
        load_with_default_file(argv, &no_default())
    }

    fn ok(args: &[&str]) -> DaemonConfig {
        match run(args) {
            Ok(Loaded::Run(c)) => c,
            Ok(Loaded::Exit(text)) => panic!("{args:?}: wanted a config, got exit text {text:?}"),
            Err(e) => panic!("{args:?}: wanted a config, got error {e}"),
        }
    }

    fn err(args: &[&str]) -> ConfigError {
        match run(args) {
            Ok(other) => panic!("{args:?}: wanted an error, got {other:?}"),
            Err(e) => {
                let text = e.to_string();
                assert!(!text.contains('\n'), "error is not one line: {text:?}");
                assert_eq!(e.kind(), ErrorKind::InvalidParameter);
                e
            }
        }
    }

    fn exit_text(args: &[&str]) -> String {
        match run(args) {
            Ok(Loaded::Exit(text)) => text,
            other => panic!("{args:?}: wanted exit text, got {other:?}"),
        }
    }

    /// A daemon.json in a temp dir; the dir lives as long as the returned guard.
    fn file(json: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        std::fs::write(&path, json).unwrap();
        let path = path.to_str().unwrap().to_owned();
        (dir, path)
    }

    #[test]
    fn no_flags_gives_defaults() {
        let c = ok(&[]);
        let d = DaemonConfig::defaults();
        assert_eq!(c.hosts, vec![HostAddr::Unix("/run/berth.sock".into())]);
        assert_eq!(c.hosts, d.hosts);
        assert_eq!(c.data_root, PathBuf::from("/var/lib/berth"));
        assert_eq!(c.exec_root, PathBuf::from("/run/berth"));
        assert_eq!(c.pidfile, PathBuf::from("/run/berthd.pid"));
        assert_eq!(c.bridge, BridgeSetting::Default);
        assert_eq!(c.bip, None);
        assert_eq!(c.mtu, 0);
        assert!(c.icc && c.iptables && c.ip_forward);
        assert!(!c.selinux_enabled && !c.live_restore);
        assert_eq!(c.ip, IpAddr::from([0, 0, 0, 0]));
        assert!(c.dns.is_empty() && c.storage_opts.is_empty());
        assert_eq!(c.storage_driver, None);
        assert_eq!(c.exec_driver, "native");
        assert_eq!(c.metrics_addr, None);
        assert_eq!(c.log_level, "info");
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.config_file, None);
        assert_eq!(c.shutdown_timeout, 10);
    }

    #[test]
    fn every_flag_is_read() {
        let c = ok(&[
            "-H",
            "unix:///tmp/b.sock",
            "--host=tcp://127.0.0.1:2376",
            "-H",
            "fd://",
            "--data-root",
            "/d",
            "--exec-root=/e",
            "-p",
            "/p.pid",
            "--bip",
            "10.200.0.1/24",
            "--mtu",
            "1400",
            "--icc=false",
            "--ip-forward=0",
            "--ip",
            "127.0.0.1",
            "--dns",
            "1.1.1.1",
            "--dns=8.8.8.8",
            "-s",
            "vfs",
            "--storage-opt",
            "a=1",
            "--storage-opt",
            "b=2",
            "--exec-driver",
            "oci",
            "--selinux-enabled",
            "--live-restore=true",
            "--metrics-addr",
            "127.0.0.1:9323",
            "-l",
            "debug",
            "--log-format",
            "json",
            "--shutdown-timeout",
            "30",
        ]);
        assert_eq!(
            c.hosts,
            vec![
                HostAddr::Unix("/tmp/b.sock".into()),
                HostAddr::Tcp("127.0.0.1:2376".parse().unwrap()),
                HostAddr::Fd(None),
            ]
        );
        assert_eq!(c.data_root, PathBuf::from("/d"));
        assert_eq!(c.exec_root, PathBuf::from("/e"));
        assert_eq!(c.pidfile, PathBuf::from("/p.pid"));
        assert_eq!(c.bip.as_deref(), Some("10.200.0.1/24"));
        assert_eq!(c.mtu, 1400);
        assert!(!c.icc && c.iptables && !c.ip_forward);
        assert_eq!(c.ip, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(
            c.dns,
            vec![IpAddr::from([1, 1, 1, 1]), IpAddr::from([8, 8, 8, 8])]
        );
        assert_eq!(c.storage_driver.as_deref(), Some("vfs"));
        assert_eq!(c.storage_opts, vec!["a=1", "b=2"]);
        assert_eq!(c.exec_driver, "oci");
        assert!(c.selinux_enabled && c.live_restore);
        assert_eq!(c.metrics_addr, Some("127.0.0.1:9323".parse().unwrap()));
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.shutdown_timeout, 30);
    }

    #[test]
    fn long_forms_of_short_flags() {
        let c = ok(&[
            "--pidfile=/x",
            "--storage-driver=overlay2",
            "--log-level=warn",
        ]);
        assert_eq!(c.pidfile, PathBuf::from("/x"));
        assert_eq!(c.storage_driver.as_deref(), Some("overlay2"));
        assert_eq!(c.log_level, "warn");
    }

    #[test]
    fn bool_flags_take_go_forms() {
        assert!(ok(&["--live-restore"]).live_restore);
        assert!(ok(&["--live-restore=true"]).live_restore);
        assert!(ok(&["--live-restore=1"]).live_restore);
        assert!(ok(&["--live-restore=T"]).live_restore);
        assert!(!ok(&["--live-restore=false"]).live_restore);
        assert!(!ok(&["--live-restore=FALSE"]).live_restore);
        assert!(!ok(&["--iptables=f", "--icc"]).iptables);
        assert!(!ok(&["--ip-forward=False"]).ip_forward);
        let e = err(&["--icc=maybe"]);
        assert!(
            matches!(&e, ConfigError::InvalidFlag { flag: "--icc", .. }),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "invalid argument \"maybe\" for \"--icc\" flag: expected true or false"
        );
    }

    #[test]
    fn bool_flag_does_not_swallow_next_arg() {
        // `--icc false` must not read as --icc=false: "false" is a stray argument.
        let e = err(&["--icc", "false"]);
        assert!(
            matches!(&e, ConfigError::UnexpectedArgument { arg } if arg == "false"),
            "{e:?}"
        );
        // A following flag stays a flag.
        let c = ok(&["--live-restore", "--data-root", "/x"]);
        assert!(c.live_restore);
        assert_eq!(c.data_root, PathBuf::from("/x"));
    }

    #[test]
    fn host_forms() {
        let hosts = |arg: &str| ok(&["-H", arg]).hosts;
        assert_eq!(
            hosts("/tmp/x.sock"),
            vec![HostAddr::Unix("/tmp/x.sock".into())]
        );
        assert_eq!(
            hosts("unix://"),
            vec![HostAddr::Unix("/run/berth.sock".into())]
        );
        assert_eq!(hosts("fd://3"), vec![HostAddr::Fd(Some("3".into()))]);
        assert_eq!(
            hosts("tcp://0.0.0.0:2375"),
            vec![HostAddr::Tcp("0.0.0.0:2375".parse().unwrap())]
        );
        assert_eq!(
            hosts("tcp://127.0.0.1"),
            vec![HostAddr::Tcp("127.0.0.1:2375".parse().unwrap())]
        );
        assert_eq!(
            hosts("tcp://localhost:4243"),
            vec![HostAddr::Tcp("127.0.0.1:4243".parse().unwrap())]
        );
        assert_eq!(
            hosts("tcp://[::1]:2375"),
            vec![HostAddr::Tcp("[::1]:2375".parse().unwrap())]
        );
        assert_eq!(
            hosts("tcp://:2375"),
            vec![HostAddr::Tcp("0.0.0.0:2375".parse().unwrap())]
        );
        for bad in [
            "http://x:1",
            "tcp://host.example:x",
            "unix://relative",
            "tcp://1.2.3.4:99999",
            "",
        ] {
            let e = err(&["-H", bad]);
            assert!(
                matches!(&e, ConfigError::InvalidFlag { flag: "--host", value, .. } if value == bad),
                "{bad}: {e:?}"
            );
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn bad_values_name_their_flag() {
        for (args, flag) in [
            (&["--bip", "10.0.0.1"][..], "--bip"),
            (&["--bip", "10.0.0.300/24"][..], "--bip"),
            (&["--bip", "10.0.0.1/33"][..], "--bip"),
            (&["--bip", "10.0.0.0/24"][..], "--bip"),
            (&["--mtu", "-1"][..], "--mtu"),
            (&["--mtu", "big"][..], "--mtu"),
            (&["--ip", "1.2.3"][..], "--ip"),
            (&["--dns", "1.1.1.1", "--dns", "nope"][..], "--dns"),
            (&["--exec-driver", "lxc"][..], "--exec-driver"),
            (&["--metrics-addr", "9323"][..], "--metrics-addr"),
            (
                &["--metrics-addr", "example.com:9323"][..],
                "--metrics-addr",
            ),
            (&["-l", "verbose"][..], "--log-level"),
            (&["--log-format", "xml"][..], "--log-format"),
            (&["--shutdown-timeout", "-5"][..], "--shutdown-timeout"),
            (&["--data-root="][..], "--data-root"),
        ] {
            let e = err(args);
            assert!(
                matches!(&e, ConfigError::InvalidFlag { flag: f, .. } if *f == flag),
                "{args:?}: {e:?}"
            );
        }
    }

    #[test]
    fn repeated_single_flags_take_the_last_value() {
        // pflag semantics: the last value wins; repeatable flags still collect every value.
        let c = ok(&[
            "--icc=false",
            "--icc",
            "--data-root=/a",
            "--data-root=/b",
            "-H",
            "/x",
            "-H",
            "/y",
        ]);
        assert!(c.icc);
        assert_eq!(c.data_root, PathBuf::from("/b"));
        assert_eq!(
            c.hosts,
            vec![HostAddr::Unix("/x".into()), HostAddr::Unix("/y".into())]
        );
    }

    #[test]
    fn bridge_none_and_existing() {
        assert_eq!(ok(&["-b", "none"]).bridge, BridgeSetting::None);
        assert_eq!(
            ok(&["--bridge=br-ops"]).bridge,
            BridgeSetting::Existing("br-ops".into())
        );
    }

    #[test]
    fn cross_rules() {
        let e = err(&["-b", "br0", "--bip", "10.1.0.1/24"]);
        assert!(matches!(e, ConfigError::BridgeAndBip));
        assert_eq!(
            e.to_string(),
            "You specified -b & --bip, mutually exclusive options. Please specify only one"
        );
        let e = err(&["--iptables=false", "--icc=false"]);
        assert!(matches!(e, ConfigError::IccWithoutIptables));
        assert_eq!(
            e.to_string(),
            "You specified --iptables=false with --icc=false. ICC=false uses iptables to function. Please set --icc or --iptables to true."
        );
        // One from the file and one from a flag still conflict: the rule is on the result.
        let (_dir, path) = file(r#"{"iptables": false}"#);
        assert!(matches!(
            err(&["--config-file", &path, "--icc=false"]),
            ConfigError::IccWithoutIptables
        ));
        let (_dir, path) = file(r#"{"bridge": "br0"}"#);
        assert!(matches!(
            err(&["--config-file", &path, "--bip=10.1.0.1/24"]),
            ConfigError::BridgeAndBip
        ));
        // Either one alone is fine.
        assert!(!ok(&["--iptables=false"]).iptables);
        assert!(!ok(&["--icc=false"]).icc);
    }

    #[test]
    fn unknown_flag_is_one_line() {
        let e = err(&["--foo"]);
        assert!(
            matches!(&e, ConfigError::UnknownFlag { flag } if flag == "--foo"),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "unknown flag: --foo");
        assert_eq!(err(&["--foo=bar"]).to_string(), "unknown flag: --foo");
        assert_eq!(err(&["-Z"]).to_string(), "unknown flag: -Z");
        // A flag missing its value is condensed to one line too.
        let e = err(&["--data-root"]);
        assert!(matches!(e, ConfigError::Usage { .. }), "{e:?}");
        assert!(e.to_string().contains("--data-root"), "{e}");
        assert!(!e.to_string().starts_with("error:"), "{e}");
    }

    #[test]
    fn help_and_version_exit() {
        let help = exit_text(&["--help"]);
        assert!(help.contains("--data-root"), "{help}");
        assert!(help.contains("--config-file"), "{help}");
        assert!(help.contains("Usage: berthd"), "{help}");
        assert_eq!(exit_text(&["-h"]), help);
        let version = format!("berthd version {}\n", env!("CARGO_PKG_VERSION"));
        assert_eq!(exit_text(&["--version"]), version);
        assert_eq!(exit_text(&["-v"]), version);
    }

    #[test]
    fn file_alone() {
        let (_dir, path) = file(
            r#"{
                "hosts": ["unix:///tmp/f.sock", "tcp://127.0.0.1:2375"],
                "data-root": "/fd",
                "exec-root": "/fe",
                "pidfile": "/fp.pid",
                "bip": "10.9.0.1/16",
                "mtu": 9000,
                "icc": false,
                "iptables": true,
                "ip-forward": false,
                "ip": "::1",
                "dns": ["9.9.9.9"],
                "storage-driver": "vfs",
                "storage-opts": ["size=1G"],
                "exec-driver": "oci",
                "selinux-enabled": true,
                "live-restore": true,
                "metrics-addr": "127.0.0.1:9323",
                "log-level": "error",
                "log-format": "json",
                "shutdown-timeout": 3
            }"#,
        );
        let c = ok(&["--config-file", &path]);
        assert_eq!(
            c.hosts,
            vec![
                HostAddr::Unix("/tmp/f.sock".into()),
                HostAddr::Tcp("127.0.0.1:2375".parse().unwrap())
            ]
        );
        assert_eq!(c.data_root, PathBuf::from("/fd"));
        assert_eq!(c.exec_root, PathBuf::from("/fe"));
        assert_eq!(c.pidfile, PathBuf::from("/fp.pid"));
        assert_eq!(c.bip.as_deref(), Some("10.9.0.1/16"));
        assert_eq!(c.mtu, 9000);
        assert!(!c.icc && c.iptables && !c.ip_forward);
        assert_eq!(c.ip, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(c.dns, vec![IpAddr::from([9, 9, 9, 9])]);
        assert_eq!(c.storage_driver.as_deref(), Some("vfs"));
        assert_eq!(c.storage_opts, vec!["size=1G"]);
        assert_eq!(c.exec_driver, "oci");
        assert!(c.selinux_enabled && c.live_restore);
        assert_eq!(c.metrics_addr, Some("127.0.0.1:9323".parse().unwrap()));
        assert_eq!(c.log_level, "error");
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.shutdown_timeout, 3);
        assert_eq!(c.config_file, Some(PathBuf::from(&path)));
    }

    #[test]
    fn flags_and_file_merge_when_keys_differ() {
        let (_dir, path) = file(r#"{"data-root": "/from-file", "bridge": "none"}"#);
        let c = ok(&[
            "--config-file",
            &path,
            "--exec-root",
            "/from-flag",
            "-l",
            "debug",
        ]);
        assert_eq!(c.data_root, PathBuf::from("/from-file"));
        assert_eq!(c.exec_root, PathBuf::from("/from-flag"));
        assert_eq!(c.bridge, BridgeSetting::None);
        assert_eq!(c.log_level, "debug");
        assert_eq!(c.pidfile, PathBuf::from("/run/berthd.pid"));
    }

    #[test]
    fn key_in_flag_and_file_is_refused() {
        let (_dir, path) = file(r#"{"data-root": "/b"}"#);
        let e = err(&["--config-file", &path, "--data-root", "/a"]);
        assert_eq!(
            e.to_string(),
            format!(
                "unable to configure the berth daemon with file {path}: the following directives are specified both as a flag and in the configuration file: data-root: (from flag: /a, from file: /b)"
            )
        );
        // Every conflict, sorted by key, with lists, bools and numbers as dockerd prints them.
        let (_dir, path) = file(
            r#"{"mtu": 1400, "hosts": ["unix:///b.sock"], "live-restore": true, "data-root": "/b"}"#,
        );
        let e = err(&[
            "--config-file",
            &path,
            "--mtu=1500",
            "--live-restore",
            "-H",
            "unix:///a.sock",
            "-H",
            "fd://",
            "--data-root=/a",
        ]);
        let ConfigError::File {
            problem: FileProblem::Conflicts { conflicts },
            ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(
            conflicts,
            &[
                "data-root: (from flag: /a, from file: /b)",
                "hosts: (from flag: [unix:///a.sock fd://], from file: [unix:///b.sock])",
                "live-restore: (from flag: true, from file: true)",
                "mtu: (from flag: 1500, from file: 1400)",
            ]
        );
        assert!(e.to_string().contains(
            "data-root: (from flag: /a, from file: /b), hosts: (from flag: [unix:///a.sock fd://], from file: [unix:///b.sock]), live-restore"
        ));
        // The repeatable flags use the file's plural key names.
        let (_dir, path) = file(r#"{"storage-opts": ["x=1"], "dns": ["1.1.1.1"]}"#);
        let e = err(&["--config-file", &path, "--storage-opt=y=2", "--dns=8.8.8.8"]);
        assert!(
            e.to_string().ends_with(
                "dns: (from flag: [8.8.8.8], from file: [1.1.1.1]), storage-opts: (from flag: [y=2], from file: [x=1])"
            ),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let (_dir, path) = file(r#"{"foo": 1, "data-root": "/x", "bar": true}"#);
        let e = err(&["--config-file", &path]);
        assert_eq!(
            e.to_string(),
            format!(
                "unable to configure the berth daemon with file {path}: the following directives don't match any configuration option: bar, foo"
            )
        );
        // The flag spelling of a plural key is not a file key.
        let (_dir, path) = file(r#"{"storage-opt": ["a"]}"#);
        assert!(matches!(
            err(&["--config-file", &path]),
            ConfigError::File {
                problem: FileProblem::UnknownKeys { .. },
                ..
            }
        ));
    }

    #[test]
    fn bad_json_names_file_and_position() {
        let (_dir, path) = file("{\n  \"data-root\": \"/x\",\n  oops\n}\n");
        let e = err(&["--config-file", &path]);
        let ConfigError::File {
            path: p,
            problem: FileProblem::Syntax { line, column, .. },
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(p, &PathBuf::from(&path));
        assert_eq!((*line, *column), (3, 3));
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "unable to configure the berth daemon with file {path}: invalid JSON at line 3 column 3: "
            )),
            "{text}"
        );
        let (_dir, path) = file("[1, 2]");
        assert!(matches!(
            err(&["--config-file", &path]),
            ConfigError::File {
                problem: FileProblem::NotObject,
                ..
            }
        ));
    }

    #[test]
    fn wrong_type_names_the_key() {
        for (json, key) in [
            (r#"{"mtu": "1500"}"#, "mtu"),
            (r#"{"mtu": -1}"#, "mtu"),
            (r#"{"icc": "false"}"#, "icc"),
            (r#"{"hosts": "unix:///x"}"#, "hosts"),
            (r#"{"data-root": 5}"#, "data-root"),
            (r#"{"shutdown-timeout": 1.5}"#, "shutdown-timeout"),
        ] {
            let (_dir, path) = file(json);
            let e = err(&["--config-file", &path]);
            assert!(
                matches!(&e, ConfigError::File { problem: FileProblem::WrongType { key: k, .. }, .. } if *k == key),
                "{json}: {e:?}"
            );
            assert!(
                e.to_string().contains(&format!("invalid type for {key}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn bad_file_values_name_the_key() {
        for (json, key) in [
            (r#"{"hosts": ["ftp://x"]}"#, "hosts"),
            (r#"{"bip": "10.0.0.1"}"#, "bip"),
            (r#"{"log-level": "loud"}"#, "log-level"),
            (r#"{"exec-driver": "lxc"}"#, "exec-driver"),
            (r#"{"metrics-addr": "nowhere"}"#, "metrics-addr"),
            (r#"{"dns": ["x"]}"#, "dns"),
        ] {
            let (_dir, path) = file(json);
            let e = err(&["--config-file", &path]);
            assert!(
                matches!(&e, ConfigError::File { problem: FileProblem::InvalidValue { key: k, .. }, .. } if *k == key),
                "{json}: {e:?}"
            );
        }
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.json");
        let path = path.to_str().unwrap();
        let e = err(&["--config-file", path]);
        assert_eq!(
            e.to_string(),
            format!(
                "unable to configure the berth daemon with file {path}: open {path}: no such file or directory"
            )
        );
    }

    #[test]
    fn default_file_is_read_when_present_and_skipped_when_absent() {
        // Absent: defaults, no config_file.
        assert_eq!(ok(&[]).config_file, None);
        // Present: read.
        let (_dir, path) = file(r#"{"log-level": "warn"}"#);
        let argv = ["berthd"].map(OsString::from);
        let Ok(Loaded::Run(c)) = load_with_default_file(argv, Path::new(&path)) else {
            panic!("default file not loaded")
        };
        assert_eq!(c.log_level, "warn");
        assert_eq!(c.config_file, Some(PathBuf::from(&path)));
        // Present but broken: an error even though it was not named.
        let (_dir, path) = file("{");
        let argv = ["berthd"].map(OsString::from);
        assert!(matches!(
            load_with_default_file(argv, Path::new(&path)),
            Err(ConfigError::File { .. })
        ));
    }

    #[test]
    fn empty_file_is_no_configuration() {
        let (_dir, path) = file("  \n");
        let c = ok(&["--config-file", &path]);
        assert_eq!(c.data_root, PathBuf::from("/var/lib/berth"));
        assert_eq!(c.config_file, None);
        let (_dir, path) = file("{}");
        assert_eq!(
            ok(&["--config-file", &path]).config_file,
            Some(PathBuf::from(&path))
        );
    }

    #[test]
    fn example_daemon_json_loads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/daemon.json");
        let c = ok(&["--config-file", path]);
        assert_eq!(c.metrics_addr, Some("127.0.0.1:9323".parse().unwrap()));
        assert!(!c.live_restore);
    }
}
