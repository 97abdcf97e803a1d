//! berth's iptables rules for one bridge, added idempotently and removed on shutdown.
//!
//! berth only ever touches its own chains and the jump and MASQUERADE rules it adds to the
//! built-in chains; Docker's chain names are never used, so berth and dockerd can share a
//! host. The chains are named per bridge (`BERTH` / `BERTH-FORWARD` for `berth0`,
//! `BERTH-<bridge>` / `BERTH-F-<bridge>` otherwise), so that daemons on different bridges
//! do not remove each other's rules.
//!
//! Set-up and teardown each read the rules once (`iptables-save`) and apply what is
//! missing or ours in one transaction (`iptables-restore --noflush`): two execs, not one
//! per rule. Both block: call them from `spawn_blocking`.

use std::io::Write as _;
use std::process::{Command, Stdio};

use super::error::NetworkError;
use super::ipam::Cidr;

/// The name of the default bridge, whose chains get the short names.
pub const DEFAULT_BRIDGE: &str = "berth0";

/// One rule in a table and chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub table: &'static str,
    pub chain: String,
    pub spec: Vec<String>,
    /// Inserted at the top of the chain rather than appended.
    pub insert: bool,
}

/// The rules of one bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firewall {
    pub bridge: String,
    pub subnet: Cidr,
    pub icc: bool,
    /// nat chain for published ports (DNAT), jumped to for local destinations.
    pub nat_chain: String,
    /// filter chain jumped to from FORWARD.
    pub filter_chain: String,
    /// filter chain of the published ports' accepts, jumped to from `filter_chain`.
    pub ports_chain: String,
    /// A user-defined network made with `--internal`: nothing leaves or enters the
    /// bridge but between its containers (and the host).
    pub internal: bool,
    /// Traffic leaving the host from the subnet is masqueraded (dockerd's
    /// `enable_ip_masquerade`, on unless `--internal`).
    pub masquerade: bool,
    /// The daemon's other bridges: nothing is forwarded from this one to them (dockerd's
    /// DOCKER-ISOLATION, as rules in this bridge's own chain).
    pub isolate: Vec<String>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

impl Firewall {
    pub fn new(bridge: &str, subnet: Cidr, icc: bool) -> Self {
        let (nat_chain, filter_chain, ports_chain) = if bridge == DEFAULT_BRIDGE {
            (
                "BERTH".to_owned(),
                "BERTH-FORWARD".to_owned(),
                "BERTH-PORTS".to_owned(),
            )
        } else {
            (
                format!("BERTH-{bridge}"),
                format!("BERTH-F-{bridge}"),
                format!("BERTH-P-{bridge}"),
            )
        };
        Firewall {
            bridge: bridge.to_owned(),
            subnet,
            icc,
            nat_chain,
            filter_chain,
            ports_chain,
            internal: false,
            masquerade: true,
            isolate: Vec::new(),
        }
    }

    /// The rule that keeps this bridge's containers from reaching bridge `other`'s.
    pub fn isolation_rule(&self, other: &str) -> Rule {
        Rule {
            table: "filter",
            chain: self.filter_chain.clone(),
            spec: strings(&["-i", &self.bridge, "-o", other, "-j", "DROP"]),
            insert: true,
        }
    }

    /// The icc rule: traffic between the bridge's containers.
    fn icc_rule(&self) -> Rule {
        let br = self.bridge.as_str();
        Rule {
            table: "filter",
            chain: self.filter_chain.clone(),
            spec: strings(&[
                "-i",
                br,
                "-o",
                br,
                "-j",
                if self.icc { "ACCEPT" } else { "DROP" },
            ]),
            insert: false,
        }
    }

    /// Our own chains, as (table, chain).
    pub fn chains(&self) -> [(&'static str, &str); 3] {
        [
            ("nat", &self.nat_chain),
            ("filter", &self.filter_chain),
            ("filter", &self.ports_chain),
        ]
    }

    /// The chains that hold only published ports' rules: emptied at set-up, since the
    /// ports of containers still running are published again (`RestoreEndpoints`).
    fn port_chains(&self) -> [(&'static str, &str); 2] {
        [("nat", &self.nat_chain), ("filter", &self.ports_chain)]
    }

    /// A link's rules under `--icc=false` (dockerd's): `parent` may open connections to
    /// `child`'s `proto` `port`, and the child may answer from it; inserted ahead of the
    /// icc DROP of the filter chain.
    pub fn link_rules(
        &self,
        parent: std::net::Ipv4Addr,
        child: std::net::Ipv4Addr,
        proto: &str,
        port: u16,
    ) -> [Rule; 2] {
        let br = self.bridge.as_str();
        let one = |src: std::net::Ipv4Addr, dst: std::net::Ipv4Addr, dir: &str| Rule {
            table: "filter",
            chain: self.filter_chain.clone(),
            spec: strings(&[
                "-i",
                br,
                "-o",
                br,
                "-s",
                &format!("{src}/32"),
                "-d",
                &format!("{dst}/32"),
                "-p",
                proto,
                "-m",
                proto,
                dir,
                &port.to_string(),
                "-j",
                "ACCEPT",
            ]),
            insert: true,
        };
        [one(parent, child, "--dport"), one(child, parent, "--sport")]
    }

    /// A published port's rules: the DNAT of `host_ip:host_port` (any local address for
    /// `0.0.0.0`) to `ip:container_port`, and the forward accept of new connections to it
    /// from outside the bridge.
    pub fn port_rules(&self, ip: std::net::Ipv4Addr, m: &super::PortMapping) -> [Rule; 2] {
        let proto = m.proto.as_str();
        let mut nat = Vec::new();
        if !m.host_ip.is_unspecified() {
            nat.extend(["-d".to_owned(), format!("{}/32", m.host_ip)]);
        }
        nat.extend(strings(&[
            "-p",
            proto,
            "-m",
            proto,
            "--dport",
            &m.host_port.to_string(),
            "-j",
            "DNAT",
            "--to-destination",
            &format!("{ip}:{}", m.container_port),
        ]));
        let accept = strings(&[
            "-d",
            &format!("{ip}/32"),
            "!",
            "-i",
            &self.bridge,
            "-o",
            &self.bridge,
            "-p",
            proto,
            "-m",
            proto,
            "--dport",
            &m.container_port.to_string(),
            "-j",
            "ACCEPT",
        ]);
        [
            Rule {
                table: "nat",
                chain: self.nat_chain.clone(),
                spec: nat,
                insert: false,
            },
            Rule {
                table: "filter",
                chain: self.ports_chain.clone(),
                spec: accept,
                insert: false,
            },
        ]
    }

    /// Adds (`add`) or deletes `rules` in one `iptables-restore --noflush`. Blocking.
    pub fn change_rules(&self, rules: &[Rule], add: bool) -> Result<(), NetworkError> {
        let mut out = String::new();
        for table in TABLES {
            let lines: Vec<String> = rules
                .iter()
                .filter(|r| r.table == table)
                .map(|r| {
                    let op = match (add, r.insert) {
                        (false, _) => "-D",
                        (true, true) => "-I",
                        (true, false) => "-A",
                    };
                    rule_line(op, r)
                })
                .collect();
            push_table(&mut out, table, &lines);
        }
        if out.is_empty() {
            return Ok(());
        }
        iptables_restore(&out)
    }

    /// The rules in built-in chains (jumps and MASQUERADE): removed one by one on teardown.
    pub fn builtin_rules(&self) -> Vec<Rule> {
        let mut rules = self.all_builtin_rules();
        if self.internal || !self.masquerade {
            rules.remove(2);
        }
        rules
    }

    fn all_builtin_rules(&self) -> Vec<Rule> {
        let br = self.bridge.as_str();
        let subnet = self.subnet.to_string();
        vec![
            Rule {
                table: "nat",
                chain: "PREROUTING".into(),
                spec: strings(&[
                    "-m",
                    "addrtype",
                    "--dst-type",
                    "LOCAL",
                    "-j",
                    &self.nat_chain,
                ]),
                insert: false,
            },
            Rule {
                table: "nat",
                chain: "OUTPUT".into(),
                spec: strings(&[
                    "-m",
                    "addrtype",
                    "--dst-type",
                    "LOCAL",
                    "-j",
                    &self.nat_chain,
                ]),
                insert: false,
            },
            Rule {
                table: "nat",
                chain: "POSTROUTING".into(),
                spec: strings(&["-s", &subnet, "!", "-o", br, "-j", "MASQUERADE"]),
                insert: false,
            },
            // (Left out below for an internal network or without masquerade.)
            // A published port reached from the host itself (127.0.0.1 included, with
            // the bridge's route_localnet): the container answers the bridge's address.
            Rule {
                table: "nat",
                chain: "POSTROUTING".into(),
                spec: strings(&[
                    "-o",
                    br,
                    "-m",
                    "addrtype",
                    "--src-type",
                    "LOCAL",
                    "-j",
                    "MASQUERADE",
                ]),
                insert: false,
            },
            // Hairpin: a container reaching a published port (its own or another's on the
            // same bridge) through a host address: the answer must come back through the
            // host to be un-DNATed.
            Rule {
                table: "nat",
                chain: "POSTROUTING".into(),
                spec: strings(&[
                    "-s",
                    &subnet,
                    "-o",
                    br,
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "DNAT",
                    "-j",
                    "MASQUERADE",
                ]),
                insert: false,
            },
            Rule {
                table: "filter",
                chain: "FORWARD".into(),
                spec: strings(&["-j", &self.filter_chain]),
                insert: true,
            },
        ]
    }

    /// The rules inside our filter chain (flushed with it on teardown).
    pub fn own_rules(&self) -> Vec<Rule> {
        let br = self.bridge.as_str();
        let chain = self.filter_chain.clone();
        let mut rules = vec![Rule {
            table: "filter",
            chain: chain.clone(),
            spec: strings(&[
                "-o",
                br,
                "-m",
                "conntrack",
                "--ctstate",
                "RELATED,ESTABLISHED",
                "-j",
                "ACCEPT",
            ]),
            insert: false,
        }];
        rules.extend(self.isolate.iter().map(|o| self.isolation_rule(o)));
        if self.internal {
            rules.push(Rule {
                table: "filter",
                chain: chain.clone(),
                spec: strings(&["-i", br, "!", "-o", br, "-j", "DROP"]),
                insert: false,
            });
            rules.push(Rule {
                table: "filter",
                chain: chain.clone(),
                spec: strings(&["!", "-i", br, "-o", br, "-j", "DROP"]),
                insert: false,
            });
        } else {
            rules.push(Rule {
                table: "filter",
                chain: chain.clone(),
                spec: strings(&["-i", br, "!", "-o", br, "-j", "ACCEPT"]),
                insert: false,
            });
        }
        rules.push(self.icc_rule());
        rules.push(Rule {
            table: "filter",
            chain,
            spec: strings(&["-o", br, "-j", &self.ports_chain]),
            insert: false,
        });
        rules
    }

    /// Rules of earlier berthd versions that this one no longer wants: the OUTPUT jump
    /// that left loopback destinations out (before published ports).
    fn retired_rules(&self) -> Vec<Rule> {
        vec![Rule {
            table: "nat",
            chain: "OUTPUT".into(),
            spec: strings(&[
                "!",
                "-d",
                "127.0.0.0/8",
                "-m",
                "addrtype",
                "--dst-type",
                "LOCAL",
                "-j",
                &self.nat_chain,
            ]),
            insert: false,
        }]
    }

    /// Creates the chains and adds every missing rule, given the rules as they were read
    /// (`snapshot`, which may run while the bridge is set up): at most one
    /// `iptables-restore --noflush`. Blocking.
    pub fn setup(&self, rules: Snapshot) -> Result<(), NetworkError> {
        self.apply(Firewall::setup_script, Some(rules.0))
    }

    /// Removes every rule and chain of ours: one `iptables-save`, one `iptables-restore`.
    /// Blocking.
    pub fn teardown(&self) -> Result<(), NetworkError> {
        self.apply(Firewall::teardown_script, None)
    }

    /// Builds a script from the rules and applies it. iptables-restore applies a script as
    /// one transaction; if it fails because the rules changed meanwhile (a rule to delete
    /// is gone), the rules are read again once.
    fn apply(
        &self,
        script: fn(&Firewall, &Saved) -> String,
        mut saved: Option<Saved>,
    ) -> Result<(), NetworkError> {
        let mut tries = 0;
        loop {
            let rules = match saved.take() {
                Some(s) => s,
                None => Saved::parse(&iptables_save()?),
            };
            let s = script(self, &rules);
            if s.is_empty() {
                return Ok(());
            }
            tries += 1;
            match iptables_restore(&s) {
                Err(_) if tries < 2 => continue,
                r => return r,
            }
        }
    }

    /// The `iptables-restore --noflush` input that brings `saved` up to our rules; empty
    /// when nothing is missing. Chains are only declared when missing (declaring one that
    /// exists would flush it). The icc rule of the other verdict (an earlier run with the
    /// other --icc) is deleted.
    fn setup_script(&self, saved: &Saved) -> String {
        let other = Firewall {
            icc: !self.icc,
            ..self.clone()
        };
        let stale: Vec<Rule> = std::iter::once(other.icc_rule())
            .chain(self.retired_rules())
            .collect();
        let wanted: Vec<Rule> = self
            .own_rules()
            .into_iter()
            .chain(self.builtin_rules())
            .collect();
        let mut out = String::new();
        for table in TABLES {
            let mut lines = Vec::new();
            for (t, chain) in self.chains() {
                if t == table && !saved.has_chain(table, chain) {
                    lines.push(format!(":{chain} - [0:0]"));
                }
            }
            for (t, chain) in self.port_chains() {
                if t == table && saved.rules(table).any(|(c, _)| c == chain) {
                    lines.push(format!("-F {chain}"));
                }
            }
            for r in stale.iter().filter(|r| r.table == table) {
                for _ in 0..saved.count(r) {
                    lines.push(rule_line("-D", r));
                }
            }
            for r in wanted.iter().filter(|r| r.table == table) {
                if saved.count(r) == 0 {
                    lines.push(rule_line(if r.insert { "-I" } else { "-A" }, r));
                }
            }
            push_table(&mut out, table, &lines);
        }
        out
    }

    /// The input that removes our rules from the built-in chains (every copy, and any
    /// other rule that jumps to our chains) and flushes and deletes our chains.
    fn teardown_script(&self, saved: &Saved) -> String {
        let ours = self.builtin_rules();
        let mut out = String::new();
        for table in TABLES {
            let targets: Vec<String> = self
                .chains()
                .iter()
                .filter(|(t, _)| *t == table)
                .map(|(_, c)| format!("-j {c}"))
                .collect();
            let mut lines = Vec::new();
            for (chain, spec) in saved.rules(table) {
                if !BUILTIN_CHAINS.contains(&chain) {
                    continue;
                }
                let mine = ours
                    .iter()
                    .any(|r| r.table == table && r.chain == chain && r.spec.join(" ") == spec)
                    || targets
                        .iter()
                        .any(|t| spec == t || spec.ends_with(&format!(" {t}")));
                if mine {
                    lines.push(format!("-D {chain} {spec}"));
                }
            }
            for (t, chain) in self.chains() {
                if t == table && saved.has_chain(table, chain) {
                    lines.push(format!("-F {chain}"));
                    lines.push(format!("-X {chain}"));
                }
            }
            push_table(&mut out, table, &lines);
        }
        out
    }
}

/// The tables berth writes to, in the order of its scripts.
const TABLES: [&str; 2] = ["nat", "filter"];

/// The built-in chains of the nat and filter tables.
const BUILTIN_CHAINS: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

fn push_table(out: &mut String, table: &str, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    out.push('*');
    out.push_str(table);
    out.push('\n');
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str("COMMIT\n");
}

/// One rule as an iptables-restore line. The specs are written in the form iptables-save
/// prints them, so that a saved rule and ours compare as text.
fn rule_line(op: &str, r: &Rule) -> String {
    let mut v = vec![op, r.chain.as_str()];
    if op == "-I" {
        v.push("1");
    }
    v.extend(r.spec.iter().map(String::as_str));
    v.join(" ")
}

/// One table as `iptables-save` printed it.
#[derive(Debug, Default)]
struct SavedTable {
    name: String,
    chains: Vec<String>,
    /// (chain, spec) in the printed order.
    rules: Vec<(String, String)>,
}

/// The rules as `iptables-save` printed them, read by [`snapshot`].
#[derive(Debug)]
pub struct Snapshot(Saved);

/// Reads the rules (one `iptables-save`). Blocking.
pub fn snapshot() -> Result<Snapshot, NetworkError> {
    Ok(Snapshot(Saved::parse(&iptables_save()?)))
}

/// What `iptables-save` printed.
#[derive(Debug, Default)]
struct Saved {
    tables: Vec<SavedTable>,
}

impl Saved {
    fn parse(text: &str) -> Saved {
        let mut tables: Vec<SavedTable> = Vec::new();
        for line in text.lines() {
            let line = line.trim_end();
            if let Some(t) = line.strip_prefix('*') {
                tables.push(SavedTable {
                    name: t.to_owned(),
                    ..SavedTable::default()
                });
            } else if let Some(table) = tables.last_mut() {
                if let Some(rest) = line.strip_prefix(':') {
                    if let Some(name) = rest.split_whitespace().next() {
                        table.chains.push(name.to_owned());
                    }
                } else if let Some(rest) = line.strip_prefix("-A ") {
                    if let Some((chain, spec)) = rest.split_once(' ') {
                        table.rules.push((chain.to_owned(), spec.to_owned()));
                    }
                }
            }
        }
        Saved { tables }
    }

    fn table(&self, name: &str) -> Option<&SavedTable> {
        self.tables.iter().find(|t| t.name == name)
    }

    fn has_chain(&self, table: &str, chain: &str) -> bool {
        self.table(table)
            .is_some_and(|t| t.chains.iter().any(|c| c == chain))
    }

    fn rules<'a>(&'a self, table: &str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.table(table)
            .into_iter()
            .flat_map(|t| t.rules.iter().map(|(c, s)| (c.as_str(), s.as_str())))
    }

    /// How many copies of `r` there are.
    fn count(&self, r: &Rule) -> usize {
        let spec = r.spec.join(" ");
        self.rules(r.table)
            .filter(|(c, s)| *c == r.chain && *s == spec)
            .count()
    }
}

fn iptables_save() -> Result<String, NetworkError> {
    tracing::trace!("iptables-save");
    let out = Command::new("iptables-save")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| NetworkError::IptablesSpawn { source })?;
    if !out.status.success() {
        return Err(NetworkError::Iptables {
            args: "iptables-save".into(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn iptables_restore(script: &str) -> Result<(), NetworkError> {
    tracing::trace!(script, "iptables-restore");
    let mut child = Command::new("iptables-restore")
        .args(["-w", "--noflush"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| NetworkError::IptablesSpawn { source })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|source| NetworkError::IptablesSpawn { source })?;
    }
    let out = child
        .wait_with_output()
        .map_err(|source| NetworkError::IptablesSpawn { source })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetworkError::Iptables {
            args: format!("iptables-restore --noflush <<<'{}'", script.trim_end()),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_names_are_per_bridge_and_never_dockers() {
        let s = Cidr::parse("10.199.3.1/24").unwrap();
        let d = Firewall::new("berth0", s, true);
        assert_eq!(
            (d.nat_chain.as_str(), d.filter_chain.as_str()),
            ("BERTH", "BERTH-FORWARD")
        );
        let o = Firewall::new("bt0123abcd", s, true);
        assert_eq!(o.nat_chain, "BERTH-bt0123abcd");
        assert_eq!(o.filter_chain, "BERTH-F-bt0123abcd");
        // iptables allows 28 characters; a bridge name has at most 15.
        assert!(Firewall::new("abcdefghijklmno", s, true).filter_chain.len() <= 28);
        for r in d.builtin_rules().iter().chain(d.own_rules().iter()) {
            assert!(!r.chain.starts_with("DOCKER"));
            assert!(!r.spec.iter().any(|a| a.starts_with("DOCKER")));
        }
    }

    #[test]
    fn rules_follow_subnet_bridge_and_icc() {
        let s = Cidr::parse("10.199.3.1/24").unwrap();
        let f = Firewall::new("bt1", s, false);
        let lines: Vec<String> = f
            .builtin_rules()
            .iter()
            .map(|r| rule_line(if r.insert { "-I" } else { "-A" }, r))
            .collect();
        assert_eq!(
            lines,
            [
                "-A PREROUTING -m addrtype --dst-type LOCAL -j BERTH-bt1",
                "-A OUTPUT -m addrtype --dst-type LOCAL -j BERTH-bt1",
                "-A POSTROUTING -s 10.199.3.0/24 ! -o bt1 -j MASQUERADE",
                "-A POSTROUTING -o bt1 -m addrtype --src-type LOCAL -j MASQUERADE",
                "-A POSTROUTING -s 10.199.3.0/24 -o bt1 -m conntrack --ctstate DNAT -j MASQUERADE",
                "-I FORWARD 1 -j BERTH-F-bt1",
            ]
        );
        assert_eq!(f.own_rules()[2].spec.join(" "), "-i bt1 -o bt1 -j DROP");
        let mut user = Firewall::new("br-1", s, true);
        user.internal = true;
        user.isolate = vec!["berth0".into()];
        assert!(
            !user
                .builtin_rules()
                .iter()
                .any(|r| r.spec.join(" ").contains("! -o br-1 -j MASQUERADE"))
        );
        let own: Vec<String> = user
            .own_rules()
            .iter()
            .map(|r| rule_line(if r.insert { "-I" } else { "-A" }, r))
            .collect();
        assert_eq!(
            own[1..4],
            [
                "-I BERTH-F-br-1 1 -i br-1 -o berth0 -j DROP",
                "-A BERTH-F-br-1 -i br-1 ! -o br-1 -j DROP",
                "-A BERTH-F-br-1 ! -i br-1 -o br-1 -j DROP",
            ]
        );
        assert_eq!(f.own_rules()[3].spec.join(" "), "-o bt1 -j BERTH-P-bt1");
        assert_eq!(
            Firewall::new("bt1", s, true).own_rules()[2].spec.join(" "),
            "-i bt1 -o bt1 -j ACCEPT"
        );
    }

    #[test]
    fn published_ports_are_a_dnat_and_an_accept() {
        let f = Firewall::new("bt1", Cidr::parse("10.199.3.1/24").unwrap(), true);
        let ip = std::net::Ipv4Addr::new(10, 199, 3, 2);
        let m = super::super::PortMapping {
            container_port: 80,
            proto: "tcp".into(),
            host_ip: std::net::Ipv4Addr::UNSPECIFIED,
            host_port: 8080,
        };
        let [nat, accept] = f.port_rules(ip, &m);
        assert_eq!(
            rule_line("-A", &nat),
            "-A BERTH-bt1 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.199.3.2:80"
        );
        assert_eq!(
            rule_line("-A", &accept),
            "-A BERTH-P-bt1 -d 10.199.3.2/32 ! -i bt1 -o bt1 -p tcp -m tcp --dport 80 -j ACCEPT"
        );
        let lo = super::super::PortMapping {
            host_ip: std::net::Ipv4Addr::LOCALHOST,
            proto: "udp".into(),
            ..m
        };
        assert_eq!(
            rule_line("-A", &f.port_rules(ip, &lo)[0]),
            "-A BERTH-bt1 -d 127.0.0.1/32 -p udp -m udp --dport 8080 -j DNAT --to-destination 10.199.3.2:80"
        );
    }

    /// What iptables-save (1.8, nf_tables) prints after our set-up, with someone else's
    /// rules around ours, the icc rule of an earlier `--icc=false` run, a published port
    /// and the OUTPUT jump of a berthd from before published ports.
    const SAVED: &str = "# Generated by iptables-save v1.8.9 (nf_tables)
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:BERTH-FORWARD - [0:0]
:BERTH-PORTS - [0:0]
:OTHER - [0:0]
-A FORWARD -j BERTH-FORWARD
-A FORWARD -j OTHER
-A BERTH-FORWARD -o berth0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A BERTH-FORWARD -i berth0 ! -o berth0 -j ACCEPT
-A BERTH-FORWARD -i berth0 -o berth0 -j DROP
-A BERTH-FORWARD -o berth0 -j BERTH-PORTS
-A BERTH-PORTS -d 172.28.0.2/32 ! -i berth0 -o berth0 -p tcp -m tcp --dport 80 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:BERTH - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j BERTH
-A OUTPUT -m addrtype --dst-type LOCAL -j BERTH
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j BERTH
-A POSTROUTING -s 172.28.0.0/16 ! -o berth0 -j MASQUERADE
-A POSTROUTING -s 172.28.0.0/16 ! -o berth0 -j MASQUERADE
-A POSTROUTING -o berth0 -m addrtype --src-type LOCAL -j MASQUERADE
-A POSTROUTING -s 172.28.0.0/16 -o berth0 -m conntrack --ctstate DNAT -j MASQUERADE
-A POSTROUTING -s 10.9.0.0/16 -j MASQUERADE
-A BERTH -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.28.0.2:80
COMMIT
";

    fn fw(icc: bool) -> Firewall {
        Firewall::new("berth0", Cidr::parse("172.28.0.1/16").unwrap(), icc)
    }

    #[test]
    fn setup_on_empty_tables_declares_chains_then_adds_every_rule() {
        let s = fw(true).setup_script(&Saved::parse("*nat\nCOMMIT\n*filter\nCOMMIT\n"));
        assert_eq!(
            s,
            "*nat
:BERTH - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j BERTH
-A OUTPUT -m addrtype --dst-type LOCAL -j BERTH
-A POSTROUTING -s 172.28.0.0/16 ! -o berth0 -j MASQUERADE
-A POSTROUTING -o berth0 -m addrtype --src-type LOCAL -j MASQUERADE
-A POSTROUTING -s 172.28.0.0/16 -o berth0 -m conntrack --ctstate DNAT -j MASQUERADE
COMMIT
*filter
:BERTH-FORWARD - [0:0]
:BERTH-PORTS - [0:0]
-A BERTH-FORWARD -o berth0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A BERTH-FORWARD -i berth0 ! -o berth0 -j ACCEPT
-A BERTH-FORWARD -i berth0 -o berth0 -j ACCEPT
-A BERTH-FORWARD -o berth0 -j BERTH-PORTS
-I FORWARD 1 -j BERTH-FORWARD
COMMIT
"
        );
    }

    #[test]
    fn setup_adds_only_what_is_missing_and_swaps_the_icc_verdict() {
        let saved = Saved::parse(SAVED);
        // The published ports of the last run go (those still running are published
        // again), and so does the retired OUTPUT jump.
        assert_eq!(
            fw(false).setup_script(&saved),
            "*nat
-F BERTH
-D OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j BERTH
COMMIT
*filter
-F BERTH-PORTS
COMMIT
"
        );
        assert_eq!(
            fw(true).setup_script(&saved),
            "*nat
-F BERTH
-D OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j BERTH
COMMIT
*filter
-F BERTH-PORTS
-D BERTH-FORWARD -i berth0 -o berth0 -j DROP
-A BERTH-FORWARD -i berth0 -o berth0 -j ACCEPT
COMMIT
"
        );
    }

    #[test]
    fn teardown_removes_every_copy_of_ours_and_nothing_else() {
        let s = fw(true).teardown_script(&Saved::parse(SAVED));
        assert_eq!(
            s,
            "*nat
-D PREROUTING -m addrtype --dst-type LOCAL -j BERTH
-D OUTPUT -m addrtype --dst-type LOCAL -j BERTH
-D OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j BERTH
-D POSTROUTING -s 172.28.0.0/16 ! -o berth0 -j MASQUERADE
-D POSTROUTING -s 172.28.0.0/16 ! -o berth0 -j MASQUERADE
-D POSTROUTING -o berth0 -m addrtype --src-type LOCAL -j MASQUERADE
-D POSTROUTING -s 172.28.0.0/16 -o berth0 -m conntrack --ctstate DNAT -j MASQUERADE
-F BERTH
-X BERTH
COMMIT
*filter
-D FORWARD -j BERTH-FORWARD
-F BERTH-FORWARD
-X BERTH-FORWARD
-F BERTH-PORTS
-X BERTH-PORTS
COMMIT
"
        );
        let other = Firewall::new("bt1", Cidr::parse("10.9.0.1/16").unwrap(), true);
        assert_eq!(
            other.teardown_script(&Saved::parse(SAVED)),
            "",
            "another bridge's teardown leaves berth0's rules alone"
        );
        assert_eq!(fw(true).teardown_script(&Saved::parse("")), "");
    }
}
