//! User-defined bridge networks (`docker network create`): their records, the subnet
//! picked from the default address pools, and the file they are kept in.
//!
//! A record is what `docker network create` asked for, resolved (the subnet, gateway and
//! bridge name filled in). The records live in `<data-root>/network/networks.json`,
//! written whole to a temp file, fsynced and renamed over the old one, so that a crash
//! leaves either the old list or the new one. At `Init` the network actor makes each
//! record's bridge and rules again (dockerd keeps its bridges across restarts too).
//!
//! The list is shared ([`UserNetworks`]) between the network actor, which alone changes
//! it, and its readers: the store, which resolves `--network NAME` at create without a
//! message, and the API, which lists and inspects the networks.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::error::NetworkError;
use super::ipam::Cidr;

/// dockerd's default address pools (`172.17.0.0/16` to `172.31.0.0/16`, then /20s of
/// `192.168.0.0/16`), as `(base, prefix, size)`.
pub fn default_pools() -> Vec<(Ipv4Addr, u8, u8)> {
    (17..=31)
        .map(|b| (Ipv4Addr::new(172, b, 0, 0), 16, 16))
        .chain([(Ipv4Addr::new(192, 168, 0, 0), 16, 20)])
        .collect()
}

/// The `--opt`s a bridge network takes (the others are refused).
pub const BRIDGE_NAME_OPT: &str = "com.docker.network.bridge.name";
pub const ICC_OPT: &str = "com.docker.network.bridge.enable_icc";
pub const MASQUERADE_OPT: &str = "com.docker.network.bridge.enable_ip_masquerade";
pub const MTU_OPT: &str = "com.docker.network.driver.mtu";

/// One user-defined network, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub created: chrono::DateTime<chrono::Utc>,
    /// The subnet, `10.199.60.0/24`.
    pub subnet: String,
    /// The bridge's address, the containers' gateway.
    pub gateway: Ipv4Addr,
    /// `--ip-range`: where containers' addresses come from (within the subnet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    /// The subnet was given (`--subnet`): only then may a container ask for an address
    /// (`--ip`), as dockerd.
    pub user_subnet: bool,
    /// The gateway was given (`--gateway`): shown in IPAM.Config as given.
    #[serde(default)]
    pub user_gateway: bool,
    pub internal: bool,
    pub attachable: bool,
    /// The bridge (`br-<12 hex of the id>` unless `--opt com.docker.network.bridge.name`).
    pub bridge: String,
    pub icc: bool,
    pub masquerade: bool,
    /// The containers' MTU (0: the daemon's).
    pub mtu: u32,
    /// The `--opt`s as given.
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

impl NetworkRecord {
    pub fn cidr(&self) -> Cidr {
        Cidr::parse(&self.subnet).unwrap_or(Cidr::new(self.gateway, 32))
    }

    /// The bridge's address with the subnet's prefix.
    pub fn bridge_addr(&self) -> Cidr {
        Cidr::new(self.gateway, self.cidr().prefix)
    }

    pub fn range(&self) -> Option<Cidr> {
        self.ip_range.as_deref().and_then(Cidr::parse)
    }
}

/// The user-defined networks, shared (see the module docs). Equal when they are the same
/// list.
#[derive(Debug, Clone, Default)]
pub struct UserNetworks(Arc<RwLock<Vec<NetworkRecord>>>);

impl PartialEq for UserNetworks {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for UserNetworks {}

impl UserNetworks {
    /// A copy of every record, in creation order.
    pub fn all(&self) -> Vec<NetworkRecord> {
        self.0.read().map(|v| v.clone()).unwrap_or_default()
    }

    /// The network `key` names: its full id, its name, or a unique id prefix (dockerd's
    /// order).
    pub fn find(&self, key: &str) -> Option<NetworkRecord> {
        let all = self.0.read().ok()?;
        if let Some(n) = all.iter().find(|n| n.id == key) {
            return Some(n.clone());
        }
        if let Some(n) = all.iter().find(|n| n.name == key) {
            return Some(n.clone());
        }
        let mut by_prefix = all
            .iter()
            .filter(|n| !key.is_empty() && n.id.starts_with(key));
        match (by_prefix.next(), by_prefix.next()) {
            (Some(n), None) => Some(n.clone()),
            _ => None,
        }
    }

    pub fn get(&self, id: &str) -> Option<NetworkRecord> {
        self.0.read().ok()?.iter().find(|n| n.id == id).cloned()
    }

    pub(super) fn replace(&self, records: Vec<NetworkRecord>) {
        if let Ok(mut v) = self.0.write() {
            *v = records;
        }
    }
}

/// Where the records are kept.
pub fn records_path(data_root: &Path) -> PathBuf {
    data_root.join("network").join("networks.json")
}

/// The records kept at `path` (none when there is no file yet).
pub fn load(path: &Path) -> Result<Vec<NetworkRecord>, NetworkError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(NetworkError::Records {
                path: path.into(),
                source,
            });
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| NetworkError::Records {
        path: path.into(),
        source: std::io::Error::other(e),
    })
}

/// Writes `records` to `path` atomically (temp file, fsync, rename, fsync of the dir).
/// Blocking.
pub fn save(path: &Path, records: &[NetworkRecord]) -> Result<(), NetworkError> {
    let err = |source| NetworkError::Records {
        path: path.into(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_vec_pretty(records).map_err(|e| err(std::io::Error::other(e)))?;
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(&json).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err)
}

/// The first subnet of `pools` that overlaps none of `used` (other networks' subnets and
/// the host's routes).
pub fn pick_from_pools(pools: &[(Ipv4Addr, u8, u8)], used: &[Cidr]) -> Option<Cidr> {
    for &(base, prefix, size) in pools {
        let base = Cidr::new(base, prefix);
        let start = u32::from(base.network());
        let step = 1u64 << (32 - u32::from(size));
        let count = 1u64 << (u32::from(size) - u32::from(prefix));
        for i in 0..count {
            let Ok(net) = u32::try_from(u64::from(start) + i * step) else {
                break;
            };
            let c = Cidr::new(Ipv4Addr::from(net), size);
            if !used.iter().any(|u| u.overlaps(&c)) {
                return Some(c);
            }
        }
    }
    None
}

/// The default bridge name of a network: dockerd's `br-` and 12 hex digits of its id.
pub fn bridge_name(id: &str) -> String {
    format!("br-{}", &id[..12.min(id.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_skip_used_subnets() {
        let pools = [(Ipv4Addr::new(10, 199, 60, 0), 22, 24)];
        let used = [
            Cidr::parse("10.199.60.0/24").unwrap(),
            Cidr::parse("10.199.61.7/32").unwrap(),
        ];
        assert_eq!(
            pick_from_pools(&pools, &used).unwrap().to_string(),
            "10.199.62.0/24"
        );
        let all = [Cidr::parse("10.199.60.0/22").unwrap()];
        assert!(pick_from_pools(&pools, &all).is_none());
        assert_eq!(
            pick_from_pools(&default_pools(), &[]).unwrap().to_string(),
            "172.17.0.0/16"
        );
    }

    #[test]
    fn records_are_saved_and_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = records_path(dir.path());
        assert!(load(&path).unwrap().is_empty());
        let r = NetworkRecord {
            id: "ab".repeat(32),
            name: "n".into(),
            created: chrono::Utc::now(),
            subnet: "10.199.60.0/24".into(),
            gateway: Ipv4Addr::new(10, 199, 60, 1),
            ip_range: None,
            user_subnet: true,
            user_gateway: false,
            internal: false,
            attachable: false,
            bridge: bridge_name(&"ab".repeat(32)),
            icc: true,
            masquerade: true,
            mtu: 0,
            options: BTreeMap::new(),
            labels: BTreeMap::new(),
        };
        save(&path, std::slice::from_ref(&r)).unwrap();
        assert_eq!(load(&path).unwrap(), vec![r.clone()]);
        assert_eq!(r.bridge, "br-abababababab");
        let nets = UserNetworks::default();
        nets.replace(vec![r]);
        assert!(nets.find("n").is_some() && nets.find("abab").is_some());
        assert!(nets.find("x").is_none());
    }
}
