//! The daemon's options, each declared once in [`OPTIONS`].
//!
//! A row names the flag (and its short form), the daemon.json key, how the value is
//! written, its default, the help text, the status that docs/api-fields.md shows, and a
//! setter that parses and checks the value and stores it in [`DaemonConfig`]. The loader
//! in `mod.rs` builds clap's command, the list of daemon.json keys, the flag-vs-file
//! conflict check and the defaults from these rows; nothing else lists the options.
//!
//! Why a table of plain values rather than one struct that both clap and serde derive
//! from: the two derives would each need the option's name again, the conflict check and
//! the default still want a list of options to walk (derives give no way to iterate the
//! fields), the errors must keep pflag's and dockerd's wording (clap's and serde's
//! errors do not), and the declaration must carry a status that neither derive has a
//! place for. A row is also plain data that a test can compare with the documentation.
//! A setter is one closure that receives the value from either source through
//! [`Given`], so a flag and its key can never be parsed differently.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::values::{
    parse_address_pool, parse_bip, parse_bool, parse_bridge, parse_exec_driver, parse_host,
    parse_ip, parse_log_format, parse_log_level, parse_metrics_addr, parse_path,
};
use super::{DaemonConfig, StorageOpts};
use crate::actors::graph::driver::DriverKind;
use crate::model::ulimit::{self, Ulimit};

/// What berthd does with an option: the `status` column of docs/api-fields.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every value accepted has its effect.
    Honoured,
    /// Only the default is accepted; any other value is refused at start.
    Refused,
    /// Some values are honoured and the others refused (the notes say which).
    Partial,
}

impl Status {
    /// The word docs/api-fields.md uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Honoured => "honoured",
            Status::Refused => "refused",
            Status::Partial => "partial",
        }
    }
}

/// How an option's value is written on the command line and in daemon.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `--flag VALUE` or `--flag=VALUE`; the last one given wins.
    Value,
    /// A number: as `Value`, and a leading `-` is part of the value, so that `--mtu -1`
    /// gets the value's error rather than "unknown flag".
    Number,
    /// `--flag` (true) or `--flag=BOOL`, never `--flag BOOL` (as pflag); a JSON bool.
    Bool,
    /// Repeatable; every value is kept. The daemon.json key holds a list of strings.
    List,
}

/// One daemon option. See the module docs.
#[derive(Debug)]
pub struct DaemonOption {
    /// The long flag, with its dashes: `--data-root`.
    pub flag: &'static str,
    pub short: Option<char>,
    /// The daemon.json key; `None` when the option is a flag only.
    pub key: Option<&'static str>,
    pub form: Form,
    /// The value used when neither a flag nor the file gives one, written as on the
    /// command line (and shown so in `--help`); `None`: the setter is not called and the
    /// field keeps its empty value.
    pub default: Option<&'static str>,
    pub status: Status,
    pub value_name: &'static str,
    pub help: &'static str,
    /// Parses and checks the value, then stores it. Called at most once per load.
    pub set: fn(&mut DaemonConfig, &Given<'_>) -> Result<(), Bad>,
}

impl DaemonOption {
    /// The clap id and long name: the flag without its dashes.
    pub fn long(&self) -> &'static str {
        self.flag.trim_start_matches('-')
    }
}

/// An option's value from one source, not yet checked.
#[derive(Debug, Clone, Copy)]
pub enum Given<'a> {
    /// The flag's values as written (or the declared default). Only a [`Form::List`]
    /// option reads more than the last one.
    Text(&'a [String]),
    /// The daemon.json value.
    Json(&'a Value),
}

/// Why a value was refused; the loader adds the flag or key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bad {
    /// The daemon.json value has the wrong JSON type.
    Type(String),
    /// The value (as written) is not valid.
    Invalid { value: String, reason: String },
    /// The value is valid but asks for something berthd does not do.
    Unsupported { value: String, reason: String },
}

impl Bad {
    pub fn invalid(value: impl ToString, reason: impl ToString) -> Bad {
        Bad::Invalid {
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }

    pub fn unsupported(value: impl ToString, reason: impl ToString) -> Bad {
        Bad::Unsupported {
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl Given<'_> {
    /// The value as one string: the last flag value, or a JSON string.
    pub fn string(&self) -> Result<String, Bad> {
        match self {
            Given::Text(values) => Ok(values.last().cloned().unwrap_or_default()),
            Given::Json(v) => typed(v),
        }
    }

    /// The value as one string, parsed by `parse`.
    pub fn text<T>(&self, parse: impl Fn(&str) -> Result<T, String>) -> Result<T, Bad> {
        let s = self.string()?;
        parse(&s).map_err(|reason| Bad::invalid(&s, reason))
    }

    /// Every value: all flag values, or a JSON list of strings.
    pub fn strings(&self) -> Result<Vec<String>, Bad> {
        match self {
            Given::Text(values) => Ok(values.to_vec()),
            Given::Json(v) => typed(v),
        }
    }

    /// Every value, each parsed by `parse`.
    pub fn list<T>(&self, parse: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, Bad> {
        self.strings()?
            .into_iter()
            .map(|s| parse(&s).map_err(|reason| Bad::invalid(&s, reason)))
            .collect()
    }

    /// Go's `strconv.ParseBool` forms on the command line; a JSON bool in the file.
    pub fn boolean(&self) -> Result<bool, Bad> {
        match self {
            Given::Text(_) => self.text(parse_bool),
            Given::Json(v) => typed(v),
        }
    }

    /// A decimal number on the command line; a JSON number in the file.
    pub fn number<T>(&self) -> Result<T, Bad>
    where
        T: std::str::FromStr + DeserializeOwned,
        T::Err: std::fmt::Display,
    {
        match self {
            Given::Text(_) => self.text(|s| s.parse::<T>().map_err(|e| e.to_string())),
            Given::Json(v) => typed(v),
        }
    }
}

/// A JSON value as `T`, with serde's reason when its type is wrong.
fn typed<T: DeserializeOwned>(v: &Value) -> Result<T, Bad> {
    T::deserialize(v).map_err(|e| Bad::Type(e.to_string()))
}

/// The daemon's options, in the order `--help` lists them.
pub static OPTIONS: &[DaemonOption] = &[
    DaemonOption {
        flag: "--host",
        short: Some('H'),
        key: Some("hosts"),
        form: Form::List,
        default: Some("unix:///run/berth.sock"),
        status: Status::Honoured,
        value_name: "ADDR",
        help: "Daemon socket(s) to listen on: unix:///path, tcp://host:port, fd:// or fd://N",
        set: |c, v| {
            c.hosts = v.list(parse_host)?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--tls",
        short: None,
        key: Some("tls"),
        form: Form::Bool,
        default: None,
        status: Status::Honoured,
        value_name: "BOOL",
        help: "Serve TCP addresses over TLS (implied by --tlsverify); --tls=false is the explicit opt-out that allows a non-loopback TCP address without TLS",
        set: |c, v| {
            c.tls = Some(v.boolean()?);
            Ok(())
        },
    },
    DaemonOption {
        flag: "--tlsverify",
        short: None,
        key: Some("tlsverify"),
        form: Form::Bool,
        default: None,
        status: Status::Honoured,
        value_name: "BOOL",
        help: "Use TLS and require client certificates signed by --tlscacert (given at all, even false, it turns TLS on, as dockerd)",
        set: |c, v| {
            c.tls_verify = Some(v.boolean()?);
            Ok(())
        },
    },
    DaemonOption {
        flag: "--tlscacert",
        short: None,
        key: Some("tlscacert"),
        form: Form::Value,
        default: None,
        status: Status::Honoured,
        value_name: "PATH",
        help: "Trust client certificates signed by this CA only (default $DOCKER_CERT_PATH/ca.pem or ~/.docker/ca.pem)",
        set: |c, v| {
            c.tls_ca = Some(v.text(parse_path)?);
            Ok(())
        },
    },
    DaemonOption {
        flag: "--tlscert",
        short: None,
        key: Some("tlscert"),
        form: Form::Value,
        default: None,
        status: Status::Honoured,
        value_name: "PATH",
        help: "The server's TLS certificate (default $DOCKER_CERT_PATH/cert.pem or ~/.docker/cert.pem)",
        set: |c, v| {
            c.tls_cert = Some(v.text(parse_path)?);
            Ok(())
        },
    },
    DaemonOption {
        flag: "--tlskey",
        short: None,
        key: Some("tlskey"),
        form: Form::Value,
        default: None,
        status: Status::Honoured,
        value_name: "PATH",
        help: "The server's TLS key (default $DOCKER_CERT_PATH/key.pem or ~/.docker/key.pem)",
        set: |c, v| {
            c.tls_key = Some(v.text(parse_path)?);
            Ok(())
        },
    },
    DaemonOption {
        flag: "--group",
        short: Some('G'),
        key: Some("group"),
        form: Form::Value,
        default: Some("docker"),
        status: Status::Honoured,
        value_name: "GROUP",
        help: "The group of the unix sockets (mode 0660); a missing default group only warns",
        set: |c, v| {
            c.group = v.string()?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--data-root",
        short: None,
        key: Some("data-root"),
        form: Form::Value,
        default: Some("/var/lib/berth"),
        status: Status::Honoured,
        value_name: "PATH",
        help: "Root directory of persistent berth state",
        set: |c, v| {
            c.data_root = v.text(parse_path)?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--exec-root",
        short: None,
        key: Some("exec-root"),
        form: Form::Value,
        default: Some("/run/berth"),
        status: Status::Honoured,
        value_name: "PATH",
        help: "Root directory for execution state files",
        set: |c, v| {
            c.exec_root = v.text(parse_path)?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--pidfile",
        short: Some('p'),
        key: Some("pidfile"),
        form: Form::Value,
        default: Some("/run/berthd.pid"),
        status: Status::Honoured,
        value_name: "PATH",
        help: "Path to use for the daemon PID file",
        set: |c, v| {
            c.pidfile = v.text(parse_path)?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--bridge",
        short: Some('b'),
        key: Some("bridge"),
        form: Form::Value,
        default: None,
        status: Status::Honoured,
        value_name: "NAME",
        help: "Attach containers to an existing network bridge (\"none\" disables networking)",
        set: |c, v| {
            c.bridge = parse_bridge(&v.string()?);
            Ok(())
        },
    },
    DaemonOption {
        flag: "--bip",
        short: None,
        key: Some("bip"),
        form: Form::Value,
        default: None,
        status: Status::Honoured,
        value_name: "CIDR",
        help: "Bridge IP and subnet of the default bridge, as a CIDR (e.g. 10.200.0.1/24)",
        set: |c, v| {
            c.bip = Some(v.text(parse_bip)?);
            Ok(())
        },
    },
    DaemonOption {
        flag: "--mtu",
        short: None,
        key: Some("mtu"),
        form: Form::Number,
        default: Some("0"),
        status: Status::Honoured,
        value_name: "INT",
        help: "Container network MTU; 0 uses the default route's interface",
        set: |c, v| {
            c.mtu = v.number()?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--icc",
        short: None,
        key: Some("icc"),
        form: Form::Bool,
        default: Some("true"),
        status: Status::Honoured,
        value_name: "BOOL",
        help: "Enable inter-container communication",
        set: |c, v| {
            c.icc = v.boolean()?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--iptables",
        short: None,
        key: Some("iptables"),
        form: Form::Bool,
        default: Some("true"),
        status: Status::Honoured,
        value_name: "BOOL",
        help: "Enable iptables rules",
        set: |c, v| {
            c.iptables = v.boolean()?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--ip-forward",
        short: None,
        key: Some("ip-forward"),
        form: Form::Bool,
        default: Some("true"),
        status: Status::Honoured,
        value_name: "BOOL",
        help: "Enable net.ipv4.ip_forward",
        set: |c, v| {
            c.ip_forward = v.boolean()?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--ip",
        short: None,
        key: Some("ip"),
        form: Form::Value,
        default: Some("0.0.0.0"),
        status: Status::Honoured,
        value_name: "IP",
        help: "Default IP when binding container ports",
        set: |c, v| match v.text(parse_ip)? {
            std::net::IpAddr::V4(ip) => {
                c.default_bind_ip = Some(ip);
                Ok(())
            }
            ip => Err(Bad::unsupported(
                ip,
                "berthd publishes ports on IPv4 addresses only",
            )),
        },
    },
    DaemonOption {
        flag: "--dns",
        short: None,
        key: Some("dns"),
        form: Form::List,
        default: None,
        status: Status::Honoured,
        value_name: "IP",
        help: "DNS server for containers' /etc/resolv.conf (repeatable)",
        set: |c, v| {
            c.dns = v.list(parse_ip)?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--default-address-pool",
        short: None,
        key: Some("default-address-pools"),
        form: Form::List,
        default: None,
        status: Status::Honoured,
        value_name: "base=CIDR,size=N",
        help: "Default address pool of user-defined networks (repeatable): subnets of size N carved from base",
        set: |c, v| {
            c.default_address_pools = match v {
                Given::Text(values) => values
                    .iter()
                    .map(|s| parse_address_pool(s).map_err(|r| Bad::invalid(s, r)))
                    .collect::<Result<_, _>>()?,
                Given::Json(j) => {
                    let pools: Vec<serde_json::Map<String, Value>> = typed(j)?;
                    pools
                        .iter()
                        .map(|m| {
                            let base = m.get("base").and_then(Value::as_str).unwrap_or("");
                            let size = m.get("size").map_or(String::new(), |s| match s {
                                Value::Number(n) => n.to_string(),
                                Value::String(s) => s.clone(),
                                _ => String::new(),
                            });
                            let text = format!("base={base},size={size}");
                            parse_address_pool(&text).map_err(|r| Bad::invalid(&text, r))
                        })
                        .collect::<Result<_, _>>()?
                }
            };
            Ok(())
        },
    },
    DaemonOption {
        flag: "--insecure-registry",
        short: None,
        key: Some("insecure-registries"),
        form: Form::List,
        default: None,
        status: Status::Honoured,
        value_name: "REGISTRY",
        help: "Registry (host[:port] or CIDR) reached over plain HTTP (repeatable; loopback registries always are)",
        set: |c, v| {
            c.insecure_registries =
                v.list(crate::actors::graph::registry::check_insecure_registry)?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--registry-mirror",
        short: None,
        key: Some("registry-mirrors"),
        form: Form::List,
        default: None,
        status: Status::Honoured,
        value_name: "URL",
        help: "Mirror (http:// or https:// URL) tried before Docker Hub for its images (repeatable)",
        set: |c, v| {
            c.registry_mirrors = v.list(crate::actors::graph::registry::check_mirror)?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--storage-driver",
        short: Some('s'),
        key: Some("storage-driver"),
        form: Form::Value,
        default: None,
        status: Status::Honoured,
        value_name: "NAME",
        help: "Storage driver to use (overlay2, vfs)",
        set: |c, v| {
            let name = v.string()?;
            if name.is_empty() {
                c.storage_driver = None;
            } else if DriverKind::from_name(&name).is_some() {
                c.storage_driver = Some(name);
            } else {
                return Err(Bad::invalid(
                    name,
                    "unknown storage driver: berthd has overlay2 and vfs",
                ));
            }
            Ok(())
        },
    },
    DaemonOption {
        flag: "--storage-opt",
        short: None,
        key: Some("storage-opts"),
        form: Form::List,
        default: None,
        status: Status::Partial,
        value_name: "OPT",
        help: "Storage driver option (repeatable); berthd knows berth.sync_layers=BOOL",
        set: |c, v| {
            for opt in v.strings()? {
                storage_opt(&opt, &mut c.storage_opts)?;
            }
            Ok(())
        },
    },
    DaemonOption {
        flag: "--exec-driver",
        short: None,
        key: Some("exec-driver"),
        form: Form::Value,
        default: Some("native"),
        status: Status::Honoured,
        value_name: "NAME",
        help: "Exec driver: native (berthd's own monitor) or oci (every container through an OCI runtime, runc unless --default-runtime names another)",
        set: |c, v| {
            c.exec_driver = v.text(parse_exec_driver)?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--add-runtime",
        short: None,
        key: Some("runtimes"),
        form: Form::List,
        default: None,
        status: Status::Honoured,
        value_name: "NAME=PATH",
        help: "Register an OCI runtime binary (runc, crun, youki) as NAME, for --default-runtime and docker run --runtime (repeatable)",
        set: |c, v| {
            c.runtimes = super::runtimes::parse(v)?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--default-runtime",
        short: None,
        key: Some("default-runtime"),
        form: Form::Value,
        default: None,
        status: Status::Honoured,
        value_name: "NAME",
        help: "Runtime of containers that name none: native, or one of --add-runtime [default: native, or runc with --exec-driver oci]",
        set: |c, v| {
            c.default_runtime = v.string()?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--selinux-enabled",
        short: None,
        key: Some("selinux-enabled"),
        form: Form::Bool,
        default: Some("false"),
        status: Status::Refused,
        value_name: "BOOL",
        help: "Enable SELinux support (berthd has none yet: only false is accepted)",
        set: |_, v| {
            if v.boolean()? {
                Err(Bad::unsupported(true, "berthd applies no SELinux labels"))
            } else {
                Ok(())
            }
        },
    },
    DaemonOption {
        flag: "--no-new-privileges",
        short: None,
        key: Some("no-new-privileges"),
        form: Form::Bool,
        default: Some("false"),
        status: Status::Honoured,
        value_name: "BOOL",
        help: "Set no-new-privileges by default for new containers",
        set: |c, v| {
            c.no_new_privileges = v.boolean()?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--live-restore",
        short: None,
        key: Some("live-restore"),
        form: Form::Bool,
        default: Some("false"),
        status: Status::Honoured,
        value_name: "BOOL",
        help: "Keep containers running while the daemon is down",
        set: |c, v| {
            c.live_restore = v.boolean()?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--metrics-addr",
        short: None,
        key: Some("metrics-addr"),
        form: Form::Value,
        default: None,
        status: Status::Honoured,
        value_name: "ADDR",
        help: "Address to serve Prometheus metrics on (host:port)",
        set: |c, v| {
            c.metrics_addr = Some(v.text(parse_metrics_addr)?);
            Ok(())
        },
    },
    DaemonOption {
        flag: "--log-level",
        short: Some('l'),
        key: Some("log-level"),
        form: Form::Value,
        default: Some("info"),
        status: Status::Honoured,
        value_name: "LEVEL",
        help: "Logging level: debug, info, warn, error or fatal",
        set: |c, v| {
            c.log_level = v.text(parse_log_level)?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--log-format",
        short: None,
        key: Some("log-format"),
        form: Form::Value,
        default: Some("text"),
        status: Status::Honoured,
        value_name: "FORMAT",
        help: "Logging format: text or json",
        set: |c, v| {
            c.log_format = v.text(parse_log_format)?;
            Ok(())
        },
    },
    DaemonOption {
        // The loader reads this flag itself, before any other option, to find the file;
        // `config_file` is set only when a file was read. The setter checks the path.
        flag: "--config-file",
        short: None,
        key: None,
        form: Form::Value,
        default: None,
        status: Status::Honoured,
        value_name: "PATH",
        help: "Daemon configuration file [default: /etc/berth/daemon.json]",
        set: |_, v| v.text(parse_path).map(drop),
    },
    DaemonOption {
        flag: "--shutdown-timeout",
        short: None,
        key: Some("shutdown-timeout"),
        form: Form::Number,
        default: Some("10"),
        status: Status::Honoured,
        value_name: "SECONDS",
        help: "Seconds to wait for containers to stop at daemon shutdown",
        set: |c, v| {
            c.shutdown_timeout = v.number()?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--default-ulimit",
        short: None,
        key: Some("default-ulimits"),
        form: Form::List,
        default: None,
        status: Status::Honoured,
        value_name: "NAME=SOFT[:HARD]",
        help: "Default ulimits for containers (repeatable); daemon.json: {\"nofile\": {\"Name\": \"nofile\", \"Soft\": 1024, \"Hard\": 2048}}",
        set: |c, v| {
            c.default_ulimits = default_ulimits(v)?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--log-driver",
        short: None,
        key: Some("log-driver"),
        form: Form::Value,
        default: Some("json-file"),
        status: Status::Partial,
        value_name: "NAME",
        help: "Default log driver of containers: json-file or none (dockerd's others are refused)",
        set: |c, v| {
            c.log_driver = v.string()?;
            Ok(())
        },
    },
    DaemonOption {
        flag: "--log-opt",
        short: None,
        key: Some("log-opts"),
        form: Form::List,
        default: None,
        status: Status::Partial,
        value_name: "KEY=VALUE",
        help: "Default log driver options (repeatable): json-file's max-size, max-file and compress; daemon.json: {\"max-size\": \"10m\"}",
        set: |c, v| {
            c.log_opts = log_opts(v)?;
            Ok(())
        },
    },
];

/// `--log-opt key=value` values, or daemon.json's `log-opts` object of strings. A later
/// value of a key replaces an earlier one, as in dockerd's map.
fn log_opts(v: &Given<'_>) -> Result<Vec<(String, String)>, Bad> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |k: String, val: String| {
        out.retain(|(o, _)| *o != k);
        out.push((k, val));
    };
    match v {
        Given::Text(_) => {
            for opt in v.strings()? {
                let (k, val) = opt.split_once('=').ok_or_else(|| {
                    Bad::invalid(&opt, "invalid key value pair format in driver options")
                })?;
                put(k.to_owned(), val.to_owned());
            }
        }
        Given::Json(value) => {
            let map: std::collections::BTreeMap<String, String> = typed(value)?;
            for (k, val) in map {
                put(k, val);
            }
        }
    }
    Ok(out)
}

/// `--default-ulimit name=soft[:hard]` values, or daemon.json's `default-ulimits` in
/// dockerd's shape: an object of `{"Name", "Soft", "Hard"}` by name. A later value of a
/// name replaces an earlier one, as in dockerd's map.
fn default_ulimits(v: &Given<'_>) -> Result<Vec<Ulimit>, Bad> {
    let mut out: Vec<Ulimit> = Vec::new();
    let mut put = |u: Ulimit| {
        out.retain(|o| o.name != u.name);
        out.push(u);
    };
    match v {
        Given::Text(_) => {
            for u in v.list(ulimit::parse)? {
                put(u);
            }
        }
        Given::Json(value) => {
            #[derive(serde::Deserialize)]
            struct Entry {
                #[serde(rename = "Name", default)]
                name: String,
                #[serde(rename = "Soft", default)]
                soft: i64,
                #[serde(rename = "Hard", default)]
                hard: i64,
            }
            let map: std::collections::BTreeMap<String, Entry> = typed(value)?;
            for (key, e) in map {
                let u = Ulimit {
                    name: if e.name.is_empty() { key } else { e.name },
                    soft: e.soft,
                    hard: e.hard,
                };
                u.check().map_err(|reason| Bad::invalid(&u.name, reason))?;
                put(u);
            }
        }
    }
    Ok(out)
}

/// One `--storage-opt` value, `key=value` (the key case-insensitive, as dockerd's
/// drivers read it), stored in `into`.
fn storage_opt(opt: &str, into: &mut StorageOpts) -> Result<(), Bad> {
    let (key, value) = opt
        .split_once('=')
        .ok_or_else(|| Bad::invalid(opt, format!("Unable to parse key/value option: {opt}")))?;
    let key = key.trim().to_lowercase();
    let value = value.trim();
    match key.as_str() {
        "berth.sync_layers" => {
            into.sync_layers = parse_bool(value)
                .map_err(|reason| Bad::invalid(opt, format!("{key}: {reason}")))?;
            Ok(())
        }
        // dockerd's own options of the overlay2 and vfs drivers.
        "overlay2.size" | "overlay2.override_kernel_check" | "size" => Err(Bad::unsupported(
            opt,
            "the only storage option is berth.sync_layers",
        )),
        _ => Err(Bad::invalid(opt, format!("unknown option {key}"))),
    }
}
