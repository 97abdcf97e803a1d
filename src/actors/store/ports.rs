//! A container's published ports as the store reads them from its record: the requests
//! its start sends the network (`PublishPorts`), the checks of its create, and the views
//! of `docker inspect` (`NetworkSettings.Ports`) and `docker ps` (`Ports`).

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use crate::actors::network::{PortMapping, PortRequest};
use crate::model::api::{ContainerConfig, HostConfig, PortBinding};
use crate::monitor::spec::NetworkSpec;

use super::StoreError;

fn invalid(message: String) -> StoreError {
    StoreError::Invalid { message }
}

/// `80/tcp` (or `80`) as (port, protocol); a range or a bad number is refused.
fn port_key(key: &str) -> Result<(u16, &str), StoreError> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let bad = || invalid(format!("invalid port specification: {port:?}"));
    if !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(bad());
    }
    let n: u16 = port.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(bad());
    }
    Ok((n, proto))
}

fn host_ip(b: &PortBinding, default: Ipv4Addr) -> Result<Ipv4Addr, StoreError> {
    match b.host_ip.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => match s.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => Ok(ip),
            Ok(std::net::IpAddr::V6(_)) => Err(invalid(format!(
                "berthd publishes ports on IPv4 addresses only, not {s}"
            ))),
            Err(_) => Err(invalid(format!("invalid IP address: {s}"))),
        },
    }
}

/// `""` or `0`: any; `8080`; `8000-8010`.
fn host_ports(b: &PortBinding) -> Result<Option<(u16, u16)>, StoreError> {
    let Some(s) = b.host_port.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let bad = || invalid(format!("invalid hostPort: {s}"));
    let (a, z) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.parse().map_err(|_| bad())?;
    let z: u16 = z.parse().map_err(|_| bad())?;
    if z < a {
        return Err(bad());
    }
    Ok(if a == 0 && z == 0 { None } else { Some((a, z)) })
}

/// What a start publishes: each binding of `PortBindings`, then (`PublishAllPorts`) each
/// exposed port without one, on a port the kernel picks. `default_ip`: `--ip`.
pub fn requests(
    h: &HostConfig,
    c: &ContainerConfig,
    default_ip: Ipv4Addr,
) -> Result<Vec<PortRequest>, StoreError> {
    let mut out = Vec::new();
    let bindings: BTreeMap<&String, &Option<Vec<PortBinding>>> =
        h.port_bindings.iter().flatten().collect();
    for (key, list) in &bindings {
        let (port, proto) = port_key(key)?;
        let list: &[PortBinding] = list.as_deref().unwrap_or_default();
        // A port named with no binding at all is published on a port the kernel picks,
        // as dockerd does.
        let one = [PortBinding::default()];
        let list = if list.is_empty() { &one[..] } else { list };
        for b in list {
            out.push(PortRequest {
                container_port: port,
                proto: proto.to_owned(),
                host_ip: host_ip(b, default_ip)?,
                host_ports: host_ports(b)?,
            });
        }
    }
    if h.publish_all_ports == Some(true) {
        let mut exposed: Vec<(u16, &str)> = c
            .exposed_ports
            .iter()
            .flat_map(|m| m.keys())
            .filter(|k| !bindings.contains_key(k))
            .map(|k| port_key(k))
            .collect::<Result<_, _>>()?;
        exposed.sort_unstable();
        for (port, proto) in exposed {
            out.push(PortRequest {
                container_port: port,
                proto: proto.to_owned(),
                host_ip: default_ip,
                host_ports: None,
            });
        }
    }
    Ok(out)
}

/// The create's checks: the bindings parse, and the container has a network of its own on
/// the bridge to publish from (dockerd refuses `container:` and discards the ports of
/// `host` with a warning; berthd refuses both, and `none`), with iptables on.
pub fn check(
    h: &HostConfig,
    c: &ContainerConfig,
    network: &NetworkSpec,
    mode: &str,
    iptables: bool,
) -> Result<(), StoreError> {
    let reqs = requests(h, c, Ipv4Addr::UNSPECIFIED)?;
    let asked = h.port_bindings.as_ref().is_some_and(|p| !p.is_empty())
        || (h.publish_all_ports == Some(true) && !reqs.is_empty());
    if !asked {
        return Ok(());
    }
    if mode.starts_with("container:") {
        return Err(invalid(
            "conflicting options: port publishing and the container type network mode".to_owned(),
        ));
    }
    match network {
        NetworkSpec::New if !iptables => Err(invalid(
            "berthd publishes ports with iptables rules, which --iptables=false turns off"
                .to_owned(),
        )),
        NetworkSpec::New => Ok(()),
        NetworkSpec::Host => Err(invalid(
            "berthd does not publish ports of a container on the host network (--network host): its ports are the host's already (dockerd discards them with a warning)".to_owned(),
        )),
        NetworkSpec::None => Err(invalid(
            "berthd cannot publish ports of a container without a network (--network none)"
                .to_owned(),
        )),
    }
}

/// `NetworkSettings.Ports` of inspect while the container runs on the bridge: each
/// exposed or published port, with its bindings or null (dockerd's port map); `{}`
/// otherwise.
pub fn inspect_ports(
    c: &ContainerConfig,
    h: &HostConfig,
    mapped: Option<&[PortMapping]>,
) -> HashMap<String, Option<Vec<PortBinding>>> {
    let mut out: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    let Some(mapped) = mapped else {
        return out;
    };
    let norm = |k: &str| match k.split_once('/') {
        Some(_) => k.to_owned(),
        None => format!("{k}/tcp"),
    };
    for k in c.exposed_ports.iter().flat_map(|m| m.keys()) {
        out.entry(norm(k)).or_insert(None);
    }
    for k in h.port_bindings.iter().flat_map(|m| m.keys()) {
        out.entry(norm(k)).or_insert(None);
    }
    for m in mapped {
        let list = out
            .entry(format!("{}/{}", m.container_port, m.proto))
            .or_insert(None)
            .get_or_insert_with(Vec::new);
        list.push(PortBinding {
            host_ip: Some(m.host_ip.to_string()),
            host_port: Some(m.host_port.to_string()),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hc(v: serde_json::Value) -> HostConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn bindings_and_publish_all_become_requests() {
        let h = hc(json!({
            "PortBindings": {
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "8000-8010"}],
                "53/udp": [{"HostIp": "", "HostPort": ""}]
            },
            "PublishAllPorts": true
        }));
        let c: ContainerConfig =
            serde_json::from_value(json!({"ExposedPorts": {"80/tcp": {}, "443/tcp": {}}})).unwrap();
        let r = requests(&h, &c, Ipv4Addr::UNSPECIFIED).unwrap();
        let brief: Vec<_> = r
            .iter()
            .map(|r| {
                (
                    r.container_port,
                    r.proto.as_str(),
                    r.host_ip.to_string(),
                    r.host_ports,
                )
            })
            .collect();
        assert_eq!(
            brief,
            [
                (53, "udp", "0.0.0.0".to_owned(), None),
                (80, "tcp", "0.0.0.0".to_owned(), Some((8080, 8080))),
                (80, "tcp", "127.0.0.1".to_owned(), Some((8000, 8010))),
                (443, "tcp", "0.0.0.0".to_owned(), None),
            ]
        );
        let bad = hc(json!({"PortBindings": {"80/tcp": [{"HostIp": "::1", "HostPort": "1"}]}}));
        assert!(requests(&bad, &c, Ipv4Addr::UNSPECIFIED).is_err());
        let bad = hc(json!({"PortBindings": {"80/tcp": [{"HostPort": "x"}]}}));
        assert!(requests(&bad, &c, Ipv4Addr::UNSPECIFIED).is_err());
    }

    #[test]
    fn ports_need_a_bridged_network() {
        let h = hc(json!({"PortBindings": {"80/tcp": [{"HostPort": "8080"}]}}));
        let c = ContainerConfig::default();
        assert!(check(&h, &c, &NetworkSpec::New, "bridge", true).is_ok());
        assert!(check(&h, &c, &NetworkSpec::New, "bridge", false).is_err());
        assert!(check(&h, &c, &NetworkSpec::Host, "host", true).is_err());
        assert!(check(&h, &c, &NetworkSpec::None, "none", true).is_err());
        let e = check(&h, &c, &NetworkSpec::None, "container:x", true).unwrap_err();
        assert!(e.to_string().contains("conflicting options"), "{e}");
        // -P with nothing exposed asks for nothing.
        let all = hc(json!({"PublishAllPorts": true}));
        assert!(check(&all, &c, &NetworkSpec::Host, "host", true).is_ok());
    }
}
