//! berth's iptables rules for one bridge, added idempotently and removed on shutdown.
//!
//! berth only ever touches its own chains and the jump and MASQUERADE rules it adds to the
//! built-in chains; Docker's chain names are never used, so berth and dockerd can share a
//! host. The chains are named per bridge (`BERTH` / `BERTH-FORWARD` for `berth0`,
//! `BERTH-<bridge>` / `BERTH-F-<bridge>` otherwise), so that daemons on different bridges
//! do not remove each other's rules.
//!
//! Every function here runs the `iptables` binary and blocks: call them from
//! `spawn_blocking`.

use std::process::Command;

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
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

impl Firewall {
    pub fn new(bridge: &str, subnet: Cidr, icc: bool) -> Self {
        let (nat_chain, filter_chain) = if bridge == DEFAULT_BRIDGE {
            ("BERTH".to_owned(), "BERTH-FORWARD".to_owned())
        } else {
            (format!("BERTH-{bridge}"), format!("BERTH-F-{bridge}"))
        };
        Firewall {
            bridge: bridge.to_owned(),
            subnet,
            icc,
            nat_chain,
            filter_chain,
        }
    }

    /// Our own chains, as (table, chain).
    pub fn chains(&self) -> [(&'static str, &str); 2] {
        [("nat", &self.nat_chain), ("filter", &self.filter_chain)]
    }

    /// The rules in built-in chains (jumps and MASQUERADE): removed one by one on teardown.
    pub fn builtin_rules(&self) -> Vec<Rule> {
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
            },
            Rule {
                table: "nat",
                chain: "POSTROUTING".into(),
                spec: strings(&["-s", &subnet, "!", "-o", br, "-j", "MASQUERADE"]),
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
        let icc = if self.icc { "ACCEPT" } else { "DROP" };
        vec![
            Rule {
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
            },
            Rule {
                table: "filter",
                chain: chain.clone(),
                spec: strings(&["-i", br, "!", "-o", br, "-j", "ACCEPT"]),
                insert: false,
            },
            Rule {
                table: "filter",
                chain,
                spec: strings(&["-i", br, "-o", br, "-j", icc]),
                insert: false,
            },
        ]
    }

    /// Creates the chains and adds every missing rule. Blocking.
    pub fn setup(&self) -> Result<(), NetworkError> {
        for (table, chain) in self.chains() {
            if !iptables_ok(&["-t", table, "-n", "-L", chain])? {
                iptables(&["-t", table, "-N", chain])?;
            }
        }
        // The icc rule may have the other verdict from an earlier run with another --icc.
        let other = Firewall {
            icc: !self.icc,
            ..self.clone()
        };
        for r in other.own_rules().into_iter().skip(2) {
            delete_all(&r)?;
        }
        for r in self.own_rules().iter().chain(self.builtin_rules().iter()) {
            add(r)?;
        }
        Ok(())
    }

    /// Removes every rule and chain of ours; carries on past failures and returns the first.
    /// Blocking.
    pub fn teardown(&self) -> Result<(), NetworkError> {
        let mut first = None;
        let mut note = |r: Result<(), NetworkError>| {
            if let Err(e) = r {
                tracing::warn!(error = %e, "iptables cleanup step failed");
                first.get_or_insert(e);
            }
        };
        for r in self.builtin_rules() {
            note(delete_all(&r));
        }
        for (table, chain) in self.chains() {
            match iptables_ok(&["-t", table, "-n", "-L", chain]) {
                Ok(true) => {
                    note(iptables(&["-t", table, "-F", chain]));
                    note(iptables(&["-t", table, "-X", chain]));
                }
                Ok(false) => {}
                Err(e) => note(Err(e)),
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn rule_args<'a>(op: &'a str, r: &'a Rule) -> Vec<&'a str> {
    let mut v = vec!["-t", r.table, op, r.chain.as_str()];
    if op == "-I" {
        v.push("1");
    }
    v.extend(r.spec.iter().map(String::as_str));
    v
}

fn add(r: &Rule) -> Result<(), NetworkError> {
    if iptables_ok(&rule_args("-C", r))? {
        return Ok(());
    }
    iptables(&rule_args(if r.insert { "-I" } else { "-A" }, r))
}

fn delete_all(r: &Rule) -> Result<(), NetworkError> {
    // A rule may be there more than once (added by hand, or by a crashed run's race).
    for _ in 0..16 {
        if !iptables_ok(&rule_args("-C", r))? {
            return Ok(());
        }
        iptables(&rule_args("-D", r))?;
    }
    Ok(())
}

fn run(args: &[&str]) -> Result<std::process::Output, NetworkError> {
    tracing::trace!(args = %args.join(" "), "iptables");
    Command::new("iptables")
        .arg("-w")
        .args(args)
        .output()
        .map_err(|source| NetworkError::IptablesSpawn { source })
}

/// Runs iptables; a non-zero exit is an error.
fn iptables(args: &[&str]) -> Result<(), NetworkError> {
    let out = run(args)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetworkError::Iptables {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Runs a check (`-C`, `-L`): exit 0 → true, 1 → false, anything else is an error.
fn iptables_ok(args: &[&str]) -> Result<bool, NetworkError> {
    let out = run(args)?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(NetworkError::Iptables {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        }),
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
        let masq = &f.builtin_rules()[2];
        assert_eq!(
            rule_args("-A", masq).join(" "),
            "-t nat -A POSTROUTING -s 10.199.3.0/24 ! -o bt1 -j MASQUERADE"
        );
        let jump = &f.builtin_rules()[3];
        assert_eq!(
            rule_args("-I", jump).join(" "),
            "-t filter -I FORWARD 1 -j BERTH-F-bt1"
        );
        assert_eq!(f.own_rules()[2].spec.join(" "), "-i bt1 -o bt1 -j DROP");
        assert_eq!(
            Firewall::new("bt1", s, true).own_rules()[2].spec.join(" "),
            "-i bt1 -o bt1 -j ACCEPT"
        );
    }
}
