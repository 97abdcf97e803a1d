//! Daemon configuration: dockerd-compatible flags and daemon.json (seed step 4.1).
//!
//! [`load`] parses the command line, reads the config file, refuses a key given both
//! ways, applies defaults and checks the rules between options. Every error is one line
//! a person can act on; `berthd` prints it and exits 1.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

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
