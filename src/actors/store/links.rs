//! Legacy links (`--link child:alias`), as dockerd keeps them: an edge `/parent/alias` →
//! child in the graph db (seed 4.6), made at the create and gone with either container
//! or with `docker rm --link /parent/alias`; at each start of the parent, the child must
//! run, and the parent gets the child's address in /etc/hosts (under the alias, the
//! child's hostname and name), the legacy environment (`ALIAS_PORT_80_TCP=...`,
//! `ALIAS_NAME`, `ALIAS_ENV_*`), and, with `--icc=false`, exactly the child's exposed
//! ports opened to it (the NetworkActor's `OpenLinks`).

use std::net::Ipv4Addr;

use super::error::StoreError;

/// One link: container `parent` reaches `child` as `alias`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub parent: String,
    pub alias: String,
    pub child: String,
}

/// A `HostConfig.Links` entry as the CLI (`db:alias`, `db`) or an inspect round trip
/// (`/db:/web/alias`) sends it: (the child's name, the alias). dockerd's `ParseLink`.
pub fn parse_link(entry: &str) -> Result<(String, String), StoreError> {
    let bad = || StoreError::Invalid {
        message: format!("bad format for links: {entry}"),
    };
    let mut parts = entry.split(':');
    let name = parts.next().unwrap_or("").trim_start_matches('/');
    let alias = parts.next();
    if parts.next().is_some() || name.is_empty() {
        return Err(bad());
    }
    let alias = match alias {
        None => name,
        Some(a) => a.rsplit('/').next().unwrap_or(""),
    };
    if alias.is_empty() {
        return Err(bad());
    }
    Ok((name.to_owned(), alias.to_owned()))
}

/// What a start of the parent needs of a running child.
#[derive(Debug, Clone)]
pub struct Child {
    /// The parent's link name, `/parent/alias`.
    pub link_name: String,
    pub alias: String,
    pub name: String,
    pub hostname: String,
    pub ip: Option<Ipv4Addr>,
    /// Its exposed ports, `(port, proto)`.
    pub ports: Vec<(u16, String)>,
    pub env: Vec<String>,
}

impl Child {
    /// The /etc/hosts names of the child: the alias, its hostname, and its name when the
    /// alias is not its name (dockerd's order).
    pub fn host_names(&self) -> String {
        let mut names = format!("{} {}", self.alias, self.hostname);
        if self.alias != self.name {
            names.push(' ');
            names.push_str(&self.name);
        }
        names
    }

    /// The legacy environment of the link, as dockerd's `links.Link.ToEnv`.
    pub fn env(&self) -> Vec<String> {
        let alias = self.alias.to_uppercase().replace('-', "_");
        let ip = self.ip.map(|i| i.to_string()).unwrap_or_default();
        let mut out = Vec::new();
        let mut ports = self.ports.clone();
        // dockerd's `nat.Sort`: by number, tcp before udp.
        ports.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        ports.dedup();
        if let Some((port, proto)) = ports.first() {
            out.push(format!("{alias}_PORT={proto}://{ip}:{port}"));
        }
        // Runs of consecutive ports of one protocol also get the range variables.
        let mut i = 0;
        while i < ports.len() {
            let mut j = i;
            while j + 1 < ports.len()
                && ports[j + 1].1 == ports[i].1
                && ports[j + 1].0 == ports[j].0 + 1
            {
                j += 1;
            }
            if j > i {
                let (start, proto) = &ports[i];
                let end = ports[j].0;
                let up = proto.to_uppercase();
                out.push(format!(
                    "{alias}_PORT_{start}_{up}_START={proto}://{ip}:{start}"
                ));
                out.push(format!("{alias}_PORT_{start}_{up}_ADDR={ip}"));
                out.push(format!("{alias}_PORT_{start}_{up}_PROTO={proto}"));
                out.push(format!("{alias}_PORT_{start}_{up}_PORT_START={start}"));
                out.push(format!("{alias}_PORT_{start}_{up}_PORT_END={end}"));
            }
            i = j + 1;
        }
        for (port, proto) in &ports {
            let up = proto.to_uppercase();
            out.push(format!("{alias}_PORT_{port}_{up}={proto}://{ip}:{port}"));
            out.push(format!("{alias}_PORT_{port}_{up}_ADDR={ip}"));
            out.push(format!("{alias}_PORT_{port}_{up}_PORT={port}"));
            out.push(format!("{alias}_PORT_{port}_{up}_PROTO={proto}"));
        }
        out.push(format!("{alias}_NAME={}", self.link_name));
        for e in &self.env {
            let Some((k, v)) = e.split_once('=') else {
                continue;
            };
            // Variables of the image's build, of no use to the parent (dockerd's).
            if k == "HOME" || k == "PATH" {
                continue;
            }
            out.push(format!("{alias}_ENV_{k}={v}"));
        }
        out
    }
}

/// `80/tcp` → `(80, "tcp")`; a range or a bad key is left out.
pub fn port_of(key: &str) -> Option<(u16, String)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    Some((port.parse().ok()?, proto.to_owned()))
}

/// Puts the link variables in front of `env`, less those `env` sets itself (the
/// container's own win, as dockerd's `ReplaceOrAppendEnvValues`).
pub fn merge_env(env: &mut Vec<String>, links: Vec<String>) {
    let key = |e: &str| e.split('=').next().unwrap_or("").to_owned();
    let own: std::collections::HashSet<String> = env.iter().map(|e| key(e)).collect();
    let mut kept: Vec<String> = links
        .into_iter()
        .filter(|e| !own.contains(&key(e)))
        .collect();
    kept.append(env);
    *env = kept;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_parse_as_dockerd_parses_them() {
        assert_eq!(
            parse_link("db:alias").unwrap(),
            ("db".into(), "alias".into())
        );
        assert_eq!(parse_link("db").unwrap(), ("db".into(), "db".into()));
        assert_eq!(
            parse_link("/db:/web/al").unwrap(),
            ("db".into(), "al".into())
        );
        assert!(parse_link("a:b:c").is_err());
        assert!(parse_link(":x").is_err());
    }

    #[test]
    fn env_as_dockerd_writes_it() {
        let c = Child {
            link_name: "/web/db".into(),
            alias: "db-1".into(),
            name: "db".into(),
            hostname: "h".into(),
            ip: Some(Ipv4Addr::new(10, 0, 0, 2)),
            ports: vec![
                (6380, "tcp".into()),
                (6379, "tcp".into()),
                (53, "udp".into()),
            ],
            env: vec!["PATH=/bin".into(), "PASSWORD=x".into()],
        };
        let env = c.env();
        assert_eq!(env[0], "DB_1_PORT=udp://10.0.0.2:53");
        for want in [
            "DB_1_PORT_6379_TCP_START=tcp://10.0.0.2:6379",
            "DB_1_PORT_6379_TCP_PORT_END=6380",
            "DB_1_PORT_6379_TCP=tcp://10.0.0.2:6379",
            "DB_1_PORT_6380_TCP_ADDR=10.0.0.2",
            "DB_1_PORT_53_UDP_PROTO=udp",
            "DB_1_NAME=/web/db",
            "DB_1_ENV_PASSWORD=x",
        ] {
            assert!(env.iter().any(|e| e == want), "{want} in {env:?}");
        }
        assert!(!env.iter().any(|e| e.starts_with("DB_1_ENV_PATH")));
        assert_eq!(c.host_names(), "db-1 h db");
        let mut own = vec!["DB_1_NAME=mine".to_owned(), "A=1".to_owned()];
        merge_env(&mut own, env);
        assert!(own.contains(&"DB_1_NAME=mine".to_owned()));
        assert!(!own.contains(&"DB_1_NAME=/web/db".to_owned()));
        assert_eq!(own.last().map(String::as_str), Some("A=1"));
    }
}
