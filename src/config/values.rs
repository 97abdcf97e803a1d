//! The value parsers of the daemon options: one function per kind of value, each
//! returning the reason a value is refused as text that completes "invalid argument X
//! for --flag flag: ...". The options table in `options.rs` says which option uses which.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::{BridgeSetting, HostAddr, LogFormat};

/// Go's `strconv.ParseBool`.
pub(super) fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

pub(super) fn parse_path(v: &str) -> Result<PathBuf, String> {
    if v.is_empty() {
        Err("the path is empty".to_owned())
    } else {
        Ok(PathBuf::from(v))
    }
}

pub(super) fn parse_bridge(v: &str) -> BridgeSetting {
    match v {
        "" => BridgeSetting::Default,
        "none" => BridgeSetting::None,
        name => BridgeSetting::Existing(name.to_owned()),
    }
}

pub(super) fn parse_ip(v: &str) -> Result<IpAddr, String> {
    v.parse::<IpAddr>()
        .map_err(|_| "not an IP address".to_owned())
}

/// `base=10.199.60.0/22,size=24` (dockerd's `--default-address-pool`): an IPv4 base and
/// the prefix length of the subnets carved from it.
pub(super) fn parse_address_pool(v: &str) -> Result<(Ipv4Addr, u8, u8), String> {
    let (mut base, mut size) = (None, None);
    for part in v.split(',') {
        match part.split_once('=') {
            Some(("base", b)) => base = Some(b),
            Some(("size", n)) => size = Some(n),
            _ => return Err(format!("unexpected {part:?}: expected base=CIDR,size=N")),
        }
    }
    let base = base.ok_or("address pool base is missing")?;
    let (addr, prefix) = base
        .split_once('/')
        .ok_or_else(|| format!("base {base:?} is not an IPv4 CIDR"))?;
    let addr: Ipv4Addr = addr.parse().map_err(|_| {
        format!("base {base:?} is not an IPv4 CIDR (berthd has IPv4 networks only)")
    })?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| format!("base {base:?} is not an IPv4 CIDR"))?;
    let size: u8 = size
        .ok_or("address pool size is missing")?
        .parse()
        .ok()
        .filter(|s| *s <= 30)
        .ok_or("size is not a prefix length up to 30")?;
    if size < prefix {
        return Err(format!(
            "size {size} is shorter than the base's prefix length {prefix}"
        ));
    }
    Ok((addr, prefix, size))
}

/// An IPv4 address with a prefix length, such as `10.200.0.1/24`.
pub(super) fn parse_bip(v: &str) -> Result<String, String> {
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
pub(super) fn parse_socket_addr(v: &str) -> Result<SocketAddr, String> {
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

pub(super) fn parse_metrics_addr(v: &str) -> Result<SocketAddr, String> {
    parse_socket_addr(v)
}

/// `-H`: `unix:///path` (or a bare `/path`), `tcp://host:port` (port 2375 if left out),
/// `fd://` or `fd://N`.
pub(super) fn parse_host(v: &str) -> Result<HostAddr, String> {
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

pub(super) fn parse_exec_driver(v: &str) -> Result<String, String> {
    match v {
        "native" | "oci" => Ok(v.to_owned()),
        _ => Err("the exec driver must be native or oci".to_owned()),
    }
}

pub(super) fn parse_log_level(v: &str) -> Result<String, String> {
    match v {
        "debug" | "info" | "warn" | "error" | "fatal" => Ok(v.to_owned()),
        _ => Err("the log level must be debug, info, warn, error or fatal".to_owned()),
    }
}

pub(super) fn parse_log_format(v: &str) -> Result<LogFormat, String> {
    match v {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("the log format must be text or json".to_owned()),
    }
}
