//! IPv4 subnets and the address pool of the bridge network, as plain data.
//!
//! Allocations live in memory; on a daemon restart the store hands back the addresses of
//! the containers still running ([`super::RestoreEndpoints`]), which are reserved again.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;

use super::error::NetworkError;

/// An IPv4 subnet with one address in it (the bridge's, for `--bip 10.0.0.1/24`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Self {
        Cidr {
            addr,
            prefix: prefix.min(32),
        }
    }

    /// Parses `a.b.c.d/n`.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = s.split_once('/')?;
        let addr: Ipv4Addr = a.parse().ok()?;
        let prefix: u8 = p.parse().ok()?;
        (prefix <= 32).then_some(Cidr { addr, prefix })
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    /// Whether the two subnets share an address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }
}

impl fmt::Display for Cidr {
    /// The subnet, `10.0.0.0/24`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

/// The addresses of one subnet handed to containers: never the network address, the
/// gateway or the broadcast address.
#[derive(Debug, Clone)]
pub struct Ipam {
    subnet: Cidr,
    gateway: Ipv4Addr,
    taken: BTreeSet<u32>,
    /// Where the next search starts, so that a released address is not reused at once.
    next: u32,
    /// `--ip-range`: where `allocate` looks (an address asked for may be anywhere in
    /// the subnet).
    range: Option<Cidr>,
}

impl Ipam {
    pub fn new(subnet: Cidr, gateway: Ipv4Addr) -> Self {
        let first = u32::from(subnet.network()).saturating_add(1);
        Ipam {
            subnet,
            gateway,
            taken: BTreeSet::new(),
            next: first,
            range: None,
        }
    }

    /// Addresses handed out by `allocate` come from `range` only.
    pub fn with_range(mut self, range: Option<Cidr>) -> Self {
        if let Some(r) = range {
            self.next = u32::from(r.network());
            self.range = Some(r);
        }
        self
    }

    pub fn subnet(&self) -> Cidr {
        self.subnet
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    fn usable(&self, ip: u32) -> bool {
        let net = u32::from(self.subnet.network());
        let bcast = u32::from(self.subnet.broadcast());
        // A /31 or /32 has no host addresses in this scheme.
        ip > net && ip < bcast && ip != u32::from(self.gateway)
    }

    /// The next free address, round-robin from the last one handed out.
    pub fn allocate(&mut self) -> Result<Ipv4Addr, NetworkError> {
        let (lo, hi) = match self.range {
            Some(r) => (u32::from(r.network()), u32::from(r.broadcast())),
            None => (
                u32::from(self.subnet.network()).saturating_add(1),
                u32::from(self.subnet.broadcast()).saturating_sub(1),
            ),
        };
        let size = hi.saturating_sub(lo).saturating_add(1);
        let mut ip = self.next;
        for _ in 0..size {
            if ip < lo || ip > hi {
                ip = lo;
            }
            if self.usable(ip) && !self.taken.contains(&ip) {
                self.taken.insert(ip);
                self.next = ip.saturating_add(1);
                return Ok(Ipv4Addr::from(ip));
            }
            ip = ip.saturating_add(1);
        }
        Err(NetworkError::PoolExhausted {
            subnet: self.subnet.to_string(),
        })
    }

    /// Marks `ip` taken (a running container found at start-up). False when it is not a
    /// usable address of this subnet or is taken already.
    pub fn reserve(&mut self, ip: Ipv4Addr) -> bool {
        let v = u32::from(ip);
        self.subnet.contains(ip) && self.usable(v) && self.taken.insert(v)
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.taken.remove(&u32::from(ip));
    }

    pub fn in_use(&self) -> usize {
        self.taken.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_arithmetic() {
        let c = Cidr::parse("10.199.3.1/24").unwrap();
        assert_eq!(c.network(), ip("10.199.3.0"));
        assert_eq!(c.broadcast(), ip("10.199.3.255"));
        assert_eq!(c.to_string(), "10.199.3.0/24");
        assert!(c.contains(ip("10.199.3.77")));
        assert!(!c.contains(ip("10.199.4.1")));
        let wide = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(wide.overlaps(&c) && c.overlaps(&wide));
        assert!(!c.overlaps(&Cidr::parse("172.28.0.0/16").unwrap()));
        assert!(Cidr::parse("default").is_none());
        assert!(Cidr::parse("1.2.3.4/33").is_none());
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().network(), ip("0.0.0.0"));
    }

    #[test]
    fn allocates_skipping_network_gateway_and_broadcast() {
        let mut p = Ipam::new(Cidr::parse("10.199.3.1/29").unwrap(), ip("10.199.3.1"));
        // .0 network, .1 gateway, .7 broadcast: .2 to .6 are left.
        let got: Vec<_> = (0..5).map(|_| p.allocate().unwrap()).collect();
        assert_eq!(
            got,
            [
                "10.199.3.2",
                "10.199.3.3",
                "10.199.3.4",
                "10.199.3.5",
                "10.199.3.6"
            ]
            .map(ip)
            .to_vec()
        );
        let e = p.allocate().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::System);
        assert!(e.to_string().contains("10.199.3.0/29"), "{e}");
        p.release(ip("10.199.3.4"));
        assert_eq!(p.allocate().unwrap(), ip("10.199.3.4"));
        assert_eq!(p.in_use(), 5);
    }

    #[test]
    fn released_addresses_are_not_reused_at_once() {
        let mut p = Ipam::new(Cidr::parse("10.199.3.1/24").unwrap(), ip("10.199.3.1"));
        let a = p.allocate().unwrap();
        p.release(a);
        assert_ne!(p.allocate().unwrap(), a);
    }

    #[test]
    fn reserve_restores_and_refuses_foreign_addresses() {
        let mut p = Ipam::new(Cidr::parse("10.199.3.1/24").unwrap(), ip("10.199.3.1"));
        assert!(p.reserve(ip("10.199.3.2")));
        assert!(!p.reserve(ip("10.199.3.2")));
        assert!(!p.reserve(ip("10.199.3.1")));
        assert!(!p.reserve(ip("10.199.3.255")));
        assert!(!p.reserve(ip("10.1.1.1")));
        assert_eq!(p.allocate().unwrap(), ip("10.199.3.3"));
    }

    #[test]
    fn gateway_need_not_be_dot_one() {
        let mut p = Ipam::new(Cidr::parse("10.199.3.2/30").unwrap(), ip("10.199.3.2"));
        assert_eq!(p.allocate().unwrap(), ip("10.199.3.1"));
        assert!(p.allocate().is_err());
    }
}
