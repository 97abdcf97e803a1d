//! A container's `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`, made as dockerd
//! makes them: from its hostname and domain name, `--add-host`, `--dns`, `--dns-search`,
//! `--dns-option` (the daemon's `--dns` when it names none), its address on the bridge,
//! and the host's own files.

use std::net::{IpAddr, Ipv4Addr};

use super::error::StoreError;
use crate::model::api::{ContainerConfig, HostConfig};
use crate::monitor::spec::NetworkSpec;

/// The nameservers dockerd puts in when the host's file names none a container can use.
const FALLBACK_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// The lines every container's /etc/hosts starts with (dockerd's).
const DEFAULT_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// What a container's files in /etc are made of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcFiles {
    pub hostname: String,
    pub domainname: String,
    /// `--add-host` entries in order: (name, address), `host-gateway` resolved.
    pub extra_hosts: Vec<(String, IpAddr)>,
    /// `--dns`, else the daemon's `--dns`.
    pub dns: Vec<IpAddr>,
    /// `--dns-search` (`.` alone: no search list).
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    pub dns_options: Vec<String>,
    /// `--network host`: the host's own hosts and resolv.conf, as dockerd gives them.
    pub host_network: bool,
    /// On a user-defined network: resolv.conf names the embedded DNS server
    /// (`127.0.0.11`), which sends other names to [`EtcFiles::upstreams`].
    pub embedded_dns: bool,
}

fn invalid(message: String) -> StoreError {
    StoreError::Invalid { message }
}

/// One `--add-host` entry as the CLI sends it: `name:ip` or `name=ip` (an IPv6 address may
/// be in brackets), dockerd's words for a bad one.
fn extra_host(entry: &str, gateway: Option<Ipv4Addr>) -> Result<(String, IpAddr), StoreError> {
    let (name, ip) = entry
        .split_once('=')
        .or_else(|| entry.split_once(':'))
        .filter(|(name, _)| !name.is_empty())
        .ok_or_else(|| invalid(format!("bad format for add-host: {entry:?}")))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip == "host-gateway" {
        let gw = gateway
            .ok_or_else(|| invalid("unable to derive the IP value for host-gateway".to_owned()))?;
        return Ok((name.to_owned(), IpAddr::V4(gw)));
    }
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| invalid(format!("invalid IP address in add-host: {ip:?}")))?;
    Ok((name.to_owned(), ip))
}

impl EtcFiles {
    /// The files of a container with `config` and `host_config` on `network`; `dns` is the
    /// daemon's `--dns`, `gateway` the bridge's address (what `host-gateway` means).
    pub fn new(
        config: &ContainerConfig,
        host_config: &HostConfig,
        network: &NetworkSpec,
        dns: &[IpAddr],
        gateway: Option<Ipv4Addr>,
    ) -> Result<EtcFiles, StoreError> {
        let extra_hosts = host_config
            .extra_hosts
            .iter()
            .flatten()
            .map(|e| extra_host(e, gateway))
            .collect::<Result<_, _>>()?;
        let own_dns = host_config
            .dns
            .iter()
            .flatten()
            .map(|d| {
                d.parse::<IpAddr>()
                    .map_err(|_| invalid(format!("{d} is not an ip address")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let dns = if own_dns.is_empty() {
            dns.to_vec()
        } else {
            own_dns
        };
        for s in host_config.dns_search.iter().flatten() {
            if s.is_empty() || s.len() > 255 || s.contains(char::is_whitespace) {
                return Err(invalid(format!("{s} is not a valid domain")));
            }
        }
        for o in host_config.dns_options.iter().flatten() {
            if o.is_empty() || o.contains(char::is_whitespace) {
                return Err(invalid(format!("invalid DNS option {o:?}")));
            }
        }
        Ok(EtcFiles {
            hostname: config.hostname.clone().unwrap_or_default(),
            domainname: config.domainname.clone().unwrap_or_default(),
            extra_hosts,
            dns,
            dns_search: host_config.dns_search.clone().unwrap_or_default(),
            dns_options: host_config.dns_options.clone().unwrap_or_default(),
            host_network: *network == NetworkSpec::Host,
            embedded_dns: false,
        })
    }

    /// Where the embedded DNS server sends the names it does not know: `--dns` (or the
    /// daemon's), else the host's nameservers, loopback ones included (the server asks
    /// them from the host's namespace), else dockerd's fallback; port 53.
    pub fn upstreams(&self, host_file: &str) -> Vec<std::net::SocketAddr> {
        let mut ips: Vec<IpAddr> = self.dns.clone();
        if ips.is_empty() {
            ips = host_file
                .lines()
                .filter_map(nameserver)
                .filter_map(|ns| ns.parse().ok())
                .collect();
        }
        if ips.is_empty() {
            ips = FALLBACK_NAMESERVERS
                .iter()
                .filter_map(|ns| ns.parse().ok())
                .collect();
        }
        ips.into_iter()
            .map(|ip| std::net::SocketAddr::new(ip, 53))
            .collect()
    }

    /// `/etc/resolv.conf` on a user-defined network (dockerd's): the embedded server, the
    /// search list and options (given, else the host's), and `ndots:0` unless an ndots
    /// option is given.
    fn embedded_resolv_conf(&self, host_file: &str) -> String {
        let search: Vec<String> = if self.dns_search.is_empty() {
            last_list(host_file, "search")
        } else if self.dns_search == ["."] {
            Vec::new()
        } else {
            self.dns_search.clone()
        };
        let mut options = if self.dns_options.is_empty() {
            last_list(host_file, "options")
        } else {
            self.dns_options.clone()
        };
        if !options.iter().any(|o| o.starts_with("ndots:")) {
            options.push("ndots:0".to_owned());
        }
        let mut out = "nameserver 127.0.0.11\n".to_owned();
        if !search.is_empty() {
            out.push_str(&format!("search {}\n", search.join(" ")));
        }
        out.push_str(&format!("options {}\n", options.join(" ")));
        out
    }

    /// `/etc/hostname`.
    pub fn hostname_file(&self) -> String {
        format!("{}\n", self.hostname)
    }

    /// `/etc/hosts`: dockerd's default lines, the `--add-host` entries, then the
    /// container's own name on its bridge address `ip` (127.0.0.1 without one). On the
    /// host's network: the host's file (`host_file`) and the `--add-host` entries.
    pub fn hosts_file(&self, host_file: &str, ip: Option<Ipv4Addr>) -> String {
        let mut out = if self.host_network {
            let mut s = host_file.to_owned();
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
            s
        } else {
            DEFAULT_HOSTS.to_owned()
        };
        for (name, addr) in &self.extra_hosts {
            out.push_str(&format!("{addr}\t{name}\n"));
        }
        if self.host_network {
            return out;
        }
        let own = ip.map_or(Ipv4Addr::LOCALHOST, |ip| ip);
        if self.domainname.is_empty() {
            out.push_str(&format!("{own}\t{}\n", self.hostname));
        } else {
            out.push_str(&format!(
                "{own}\t{}.{} {}\n",
                self.hostname, self.domainname, self.hostname
            ));
        }
        out
    }

    /// `/etc/resolv.conf` from the host's (`host_file`), by dockerd's rules: without
    /// `--dns`, `--dns-search` and `--dns-option`, the host's file without the loopback
    /// nameservers (they mean nothing inside a network namespace), and 8.8.8.8 and
    /// 8.8.4.4 when none is left; with any of them, the nameservers, search list and
    /// options given, each taken from the host's file when not given. On the host's
    /// network the host's file as it is, unless one of them is given.
    pub fn resolv_conf(&self, host_file: &str) -> String {
        if self.embedded_dns {
            return self.embedded_resolv_conf(host_file);
        }
        let given =
            !self.dns.is_empty() || !self.dns_search.is_empty() || !self.dns_options.is_empty();
        if self.host_network && !given {
            return host_file.to_owned();
        }
        let loopback = |ns: &str| ns.starts_with("127.") || ns == "::1";
        if !given {
            let mut out = String::new();
            let mut any = false;
            for line in host_file.lines() {
                if let Some(ns) = nameserver(line) {
                    if loopback(ns) && !self.host_network {
                        continue;
                    }
                    any = true;
                }
                out.push_str(line);
                out.push('\n');
            }
            if !any {
                for ns in FALLBACK_NAMESERVERS {
                    out.push_str(&format!("nameserver {ns}\n"));
                }
            }
            return out;
        }
        let mut servers: Vec<String> = self.dns.iter().map(ToString::to_string).collect();
        if servers.is_empty() {
            servers = host_file
                .lines()
                .filter_map(nameserver)
                .filter(|ns| self.host_network || !loopback(ns))
                .map(str::to_owned)
                .collect();
            if servers.is_empty() {
                servers = FALLBACK_NAMESERVERS.map(str::to_owned).to_vec();
            }
        }
        let search: Vec<String> = if self.dns_search.is_empty() {
            last_list(host_file, "search")
        } else if self.dns_search == ["."] {
            Vec::new()
        } else {
            self.dns_search.clone()
        };
        let options = if self.dns_options.is_empty() {
            last_list(host_file, "options")
        } else {
            self.dns_options.clone()
        };
        let mut out: String = servers
            .iter()
            .map(|s| format!("nameserver {s}\n"))
            .collect();
        if !search.is_empty() {
            out.push_str(&format!("search {}\n", search.join(" ")));
        }
        if !options.is_empty() {
            out.push_str(&format!("options {}\n", options.join(" ")));
        }
        out
    }
}

/// The address of a `nameserver` line.
fn nameserver(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    (words.next() == Some("nameserver"))
        .then(|| words.next())
        .flatten()
}

/// The words of the last `key` line of a resolv.conf (the one the resolver uses).
fn last_list(file: &str, key: &str) -> Vec<String> {
    file.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(key)).then(|| w.map(str::to_owned).collect::<Vec<_>>())
        })
        .next_back()
        .unwrap_or_default()
}

/// The host's hostname, a `--network host` container's default (as dockerd).
pub fn host_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn files(host_config: serde_json::Value, network: NetworkSpec) -> Result<EtcFiles, StoreError> {
        let config: ContainerConfig =
            serde_json::from_value(json!({"Hostname": "box", "Domainname": ""})).unwrap();
        let hc: HostConfig = serde_json::from_value(host_config).unwrap();
        EtcFiles::new(
            &config,
            &hc,
            &network,
            &[],
            Some(Ipv4Addr::new(10, 1, 0, 1)),
        )
    }

    const HOST: &str =
        "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.org\noptions edns0\n";

    #[test]
    fn user_networks_name_the_embedded_server() {
        let mut f = files(json!({"Dns": ["10.199.60.53"]}), NetworkSpec::New).unwrap();
        f.embedded_dns = true;
        let host = "nameserver 127.0.0.53\nsearch example.org\n";
        assert_eq!(
            f.resolv_conf(host),
            "nameserver 127.0.0.11\nsearch example.org\noptions ndots:0\n"
        );
        assert_eq!(f.upstreams(host), ["10.199.60.53:53".parse().unwrap()]);
        f.dns.clear();
        assert_eq!(f.upstreams(host), ["127.0.0.53:53".parse().unwrap()]);
    }

    #[test]
    fn resolv_conf_as_dockerd_makes_it() {
        let f = files(json!({}), NetworkSpec::New).unwrap();
        assert_eq!(
            f.resolv_conf(HOST),
            "nameserver 10.0.0.2\nsearch example.org\noptions edns0\n"
        );
        // Nothing left: Google's.
        assert_eq!(
            f.resolv_conf("nameserver 127.0.0.53\n"),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        let f = files(json!({"Dns": ["1.1.1.1"]}), NetworkSpec::New).unwrap();
        assert_eq!(
            f.resolv_conf(HOST),
            "nameserver 1.1.1.1\nsearch example.org\noptions edns0\n"
        );
        let f = files(
            json!({"DnsSearch": ["a.test", "b.test"], "DnsOptions": ["ndots:2"]}),
            NetworkSpec::New,
        )
        .unwrap();
        assert_eq!(
            f.resolv_conf(HOST),
            "nameserver 10.0.0.2\nsearch a.test b.test\noptions ndots:2\n"
        );
        let f = files(json!({"DnsSearch": ["."]}), NetworkSpec::New).unwrap();
        assert_eq!(f.resolv_conf(HOST), "nameserver 10.0.0.2\noptions edns0\n");
        // The host's network: the host's file.
        let f = files(json!({}), NetworkSpec::Host).unwrap();
        assert_eq!(f.resolv_conf(HOST), HOST);
    }

    #[test]
    fn hosts_file_has_extra_hosts_then_the_own_name() {
        let f = files(
            json!({"ExtraHosts": ["db:10.0.0.9", "gw=host-gateway", "v6:[::1]"]}),
            NetworkSpec::New,
        )
        .unwrap();
        let hosts = f.hosts_file("", Some(Ipv4Addr::new(10, 1, 0, 5)));
        assert!(hosts.starts_with(DEFAULT_HOSTS), "{hosts}");
        assert!(
            hosts.ends_with("10.0.0.9\tdb\n10.1.0.1\tgw\n::1\tv6\n10.1.0.5\tbox\n"),
            "{hosts}"
        );
        let f = files(json!({"ExtraHosts": ["db:10.0.0.9"]}), NetworkSpec::Host).unwrap();
        assert_eq!(
            f.hosts_file("127.0.0.1 localhost\n", None),
            "127.0.0.1 localhost\n10.0.0.9\tdb\n"
        );
    }

    #[test]
    fn bad_entries_are_refused_in_dockerds_words() {
        let e = files(json!({"ExtraHosts": ["db:nope"]}), NetworkSpec::New).unwrap_err();
        assert_eq!(e.to_string(), "invalid IP address in add-host: \"nope\"");
        let e = files(json!({"ExtraHosts": ["db"]}), NetworkSpec::New).unwrap_err();
        assert_eq!(e.to_string(), "bad format for add-host: \"db\"");
        assert!(files(json!({"Dns": ["x"]}), NetworkSpec::New).is_err());
        let config = ContainerConfig::default();
        let hc: HostConfig =
            serde_json::from_value(json!({"ExtraHosts": ["g:host-gateway"]})).unwrap();
        let e = EtcFiles::new(&config, &hc, &NetworkSpec::None, &[], None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to derive the IP value for host-gateway"
        );
    }
}
