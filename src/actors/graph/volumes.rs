//! Volumes of the `local` driver, as dockerd keeps them: `data-root/volumes/<name>/_data`,
//! with berth's own record of the volume beside it (`berth.json`: when it was made, its
//! labels and options, whether it is anonymous).
//!
//! A volume appears by one rename of a temp dir holding `_data` and the record, fsynced
//! first, and goes by a rename to a doomed name, fsynced, then the deleter: a crash leaves
//! a whole volume or none, and `open` removes temp and doomed dirs. A volume's data is
//! never removed except by `remove` or `prune`, which only the user asks for.
//!
//! The local driver's `type=none,o=bind,device=<dir>` is a volume whose data is `<dir>`:
//! containers bind that dir directly (nothing is mounted on the host), and removing the
//! volume leaves the dir alone. Other mount types (tmpfs, nfs, …) are refused by name.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::GraphError;
use crate::deleter::{self, Deleter};
use crate::model::filters::{FilterError, Filters, label_pairs};

/// The only driver berthd has.
pub const LOCAL: &str = "local";
const RECORD: &str = "berth.json";
const DATA: &str = "_data";
/// The volume filters dockerd 20.10 accepts on `GET /volumes`.
pub const VOLUME_FILTERS: &[&str] = &["dangling", "driver", "label", "name"];

/// berth's record of a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Record {
    created_at: DateTime<Utc>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    options: Option<BTreeMap<String, String>>,
    #[serde(default)]
    anonymous: bool,
}

/// A volume as the rest of the daemon sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub name: String,
    /// `data-root/volumes/<name>/_data`: what `Mountpoint` shows.
    pub mountpoint: PathBuf,
    /// What a container binds: the mountpoint, or the device of a bind-type volume.
    pub source: PathBuf,
    pub created_at: DateTime<Utc>,
    pub labels: Option<BTreeMap<String, String>>,
    pub options: Option<BTreeMap<String, String>>,
    /// Made for a container without a name (`-v /path`, an image's `VOLUME`).
    pub anonymous: bool,
}

impl Volume {
    /// The Engine API's `Volume` object, keys as dockerd prints them.
    pub fn to_json(&self) -> Value {
        json!({
            "CreatedAt": self.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "Driver": LOCAL,
            "Labels": self.labels,
            "Mountpoint": self.mountpoint.display().to_string(),
            "Name": self.name,
            "Options": self.options,
            "Scope": "local",
        })
    }
}

/// What a create asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeRequest {
    /// Empty: a new anonymous volume with a random 64-hex name.
    pub name: String,
    /// Empty is `local`.
    pub driver: String,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// The volume store: the volumes dir and its index.
#[derive(Debug)]
pub struct VolumeStore {
    dir: PathBuf,
    volumes: Mutex<BTreeMap<String, Volume>>,
    /// One create or removal at a time (they are rare; a concurrent create of the same
    /// name must find the first one made).
    changing: Mutex<()>,
    deleter: Deleter,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> GraphError + '_ {
    move |source| GraphError::Io {
        path: path.to_owned(),
        source,
    }
}

fn invalid(message: String) -> GraphError {
    GraphError::Invalid { message }
}

/// dockerd's rule for a local volume's name: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Checks the local driver's options; returns the device of a bind-type volume.
fn check_options(
    name: &str,
    opts: &BTreeMap<String, String>,
) -> Result<Option<PathBuf>, GraphError> {
    for k in opts.keys() {
        if !matches!(k.as_str(), "type" | "o" | "device" | "size") {
            return Err(invalid(format!("create {name}: invalid option key: {k:?}")));
        }
    }
    if opts.is_empty() {
        return Ok(None);
    }
    let typ = opts.get("type").map_or("", String::as_str);
    let o = opts.get("o").map_or("", String::as_str);
    let bind = o.split(',').any(|x| x == "bind" || x == "rbind");
    if typ == "none" && bind && !opts.contains_key("size") {
        if let Some(x) = o
            .split(',')
            .find(|x| !matches!(*x, "bind" | "rbind" | "ro" | "rw" | ""))
        {
            return Err(GraphError::Invalid {
                message: format!(
                    "create {name}: berthd does not support the mount option {x:?} of a bind-type local volume yet"
                ),
            });
        }
        let device = opts.get("device").map_or("", String::as_str);
        if !device.starts_with('/') {
            return Err(invalid(format!(
                "create {name}: a bind-type local volume needs an absolute device path, got {device:?}"
            )));
        }
        return Ok(Some(PathBuf::from(device)));
    }
    Err(invalid(format!(
        "create {name}: berthd does not support the local volume driver's options type={typ:?} o={o:?} yet (only type=none o=bind device=<dir>)"
    )))
}

impl VolumeStore {
    /// Opens `data_root/volumes`, removing what a crash left half-made or half-removed.
    pub fn open(data_root: &Path, deleter: Deleter) -> Result<VolumeStore, GraphError> {
        let dir = data_root.join("volumes");
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let mut volumes = BTreeMap::new();
        for entry in fs::read_dir(&dir).map_err(io_error(&dir))? {
            let entry = entry.map_err(io_error(&dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with('.') {
                tracing::info!(path = %path.display(), "removing a half-made or half-removed volume dir");
                deleter.delete_all(vec![path]);
                continue;
            }
            if !path.join(DATA).is_dir() || !valid_name(&name) {
                // Not a volume (dockerd's metadata.db, say): left alone.
                continue;
            }
            let record = match fs::read(path.join(RECORD)) {
                Ok(bytes) => match serde_json::from_slice::<Record>(&bytes) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(volume = %name, error = %e, "unreadable volume record: the volume is kept without its labels and options");
                        record_of_dir(&path)
                    }
                },
                Err(_) => record_of_dir(&path),
            };
            let v = volume_of(&dir, &name, record);
            volumes.insert(name, v);
        }
        Ok(VolumeStore {
            dir,
            volumes: Mutex::new(volumes),
            changing: Mutex::new(()),
            deleter,
        })
    }

    pub fn get(&self, name: &str) -> Result<Volume, GraphError> {
        self.volumes
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| GraphError::VolumeNotFound {
                name: name.to_owned(),
            })
    }

    pub fn count(&self) -> usize {
        self.volumes.lock().len()
    }

    /// Makes a volume, or returns the one of that name (dockerd's create is idempotent).
    /// Blocking.
    pub fn create(&self, req: &VolumeRequest) -> Result<Volume, GraphError> {
        let anonymous = req.name.is_empty();
        let name = if anonymous {
            crate::util::new_id()
        } else {
            req.name.clone()
        };
        if !req.driver.is_empty() && req.driver != LOCAL {
            return Err(GraphError::VolumeDriverNotFound {
                name,
                driver: req.driver.clone(),
            });
        }
        if !valid_name(&name) {
            return Err(invalid(format!(
                "create {name}: {name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            )));
        }
        let _changing = self.changing.lock();
        if let Some(v) = self.volumes.lock().get(&name) {
            return Ok(v.clone());
        }
        check_options(&name, &req.options)?;
        let record = Record {
            created_at: Utc::now(),
            labels: (!req.labels.is_empty()).then(|| req.labels.clone()),
            options: (!req.options.is_empty()).then(|| req.options.clone()),
            anonymous,
        };
        let tmp = self.dir.join(format!(
            ".{name}.tmp-{}",
            hex::encode(rand::random::<[u8; 4]>())
        ));
        let made = (|| {
            let data = tmp.join(DATA);
            fs::create_dir_all(&data).map_err(io_error(&data))?;
            let bytes = serde_json::to_vec(&record).map_err(|e| GraphError::Io {
                path: tmp.join(RECORD),
                source: io::Error::other(e),
            })?;
            let rec = tmp.join(RECORD);
            let mut f = fs::File::create(&rec).map_err(io_error(&rec))?;
            io::Write::write_all(&mut f, &bytes).map_err(io_error(&rec))?;
            let d = fs::File::open(&tmp).map_err(io_error(&tmp))?;
            crate::util::sync_all_concurrently(&[&f, &d]).map_err(io_error(&tmp))?;
            let to = self.dir.join(&name);
            fs::rename(&tmp, &to).map_err(io_error(&to))?;
            fs::File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io_error(&self.dir))
        })();
        if let Err(e) = made {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let v = volume_of(&self.dir, &name, record);
        self.volumes.lock().insert(name.clone(), v.clone());
        volume_event("create", &name);
        Ok(v)
    }

    /// Removes volume `name` unless a container uses it (`users`: container ids by
    /// volume name). `force`: a missing volume is no error. Blocking.
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        users: &HashMap<String, Vec<String>>,
    ) -> Result<(), GraphError> {
        let _changing = self.changing.lock();
        if !self.volumes.lock().contains_key(name) {
            if force {
                return Ok(());
            }
            return Err(GraphError::VolumeNotFound {
                name: name.to_owned(),
            });
        }
        if let Some(ids) = users.get(name).filter(|ids| !ids.is_empty()) {
            return Err(GraphError::Conflict {
                message: format!("remove {name}: volume is in use - [{}]", ids.join(", ")),
            });
        }
        self.remove_unlocked(name)
    }

    fn remove_unlocked(&self, name: &str) -> Result<(), GraphError> {
        let path = self.dir.join(name);
        let doomed = deleter::rename_doomed(&path).map_err(io_error(&path))?;
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_error(&self.dir))?;
        self.volumes.lock().remove(name);
        self.deleter
            .delete_all(doomed.into_iter().collect::<Vec<_>>());
        volume_event("destroy", name);
        Ok(())
    }

    /// The volumes `filters` selects (dockerd's keys: `name` a substring, `driver`,
    /// `label`, `dangling` by `users`).
    pub fn list(
        &self,
        filters: &Filters,
        users: &HashMap<String, Vec<String>>,
    ) -> Result<Vec<Volume>, GraphError> {
        filters.validate(VOLUME_FILTERS)?;
        let dangling = dangling_filter(filters)?;
        let vols = self.volumes.lock();
        Ok(vols
            .values()
            .filter(|v| {
                let names: Vec<&str> = filters.get("name").collect();
                let drivers: Vec<&str> = filters.get("driver").collect();
                let labels = label_pairs(v.labels.iter().flatten());
                let used = users.get(&v.name).is_some_and(|u| !u.is_empty());
                (names.is_empty() || names.iter().any(|n| v.name.contains(n)))
                    && (drivers.is_empty() || drivers.contains(&LOCAL))
                    && filters.match_kv_list("label", &labels)
                    && dangling.is_none_or(|d| d != used)
            })
            .cloned()
            .collect())
    }

    /// `docker volume prune`: removes every volume no container uses that `filters`
    /// (`label`, `label!`) selects. Returns the names and the bytes freed. Blocking.
    pub fn prune(
        &self,
        filters: &Filters,
        users: &HashMap<String, Vec<String>>,
    ) -> Result<(Vec<String>, u64), GraphError> {
        filters.validate(&["label", "label!"])?;
        let _changing = self.changing.lock();
        let doomed: Vec<Volume> = self
            .volumes
            .lock()
            .values()
            .filter(|v| users.get(&v.name).is_none_or(Vec::is_empty))
            .filter(|v| {
                let labels = label_pairs(v.labels.iter().flatten());
                filters.match_kv_list("label", &labels) && filters.match_kv_none("label!", &labels)
            })
            .cloned()
            .collect();
        let mut names = Vec::new();
        let mut freed = 0;
        for v in doomed {
            // A bind-type volume's data is the user's dir: it stays, and frees nothing.
            if v.source == v.mountpoint {
                freed += disk_usage(&v.mountpoint);
            }
            self.remove_unlocked(&v.name)?;
            names.push(v.name);
        }
        crate::events::events().other(
            crate::events::Kind::Volume,
            "prune",
            "",
            [("reclaimed", freed.to_string())],
        );
        Ok((names, freed))
    }
}

/// dockerd's volume events: the volume's name as the actor, its driver as attribute.
fn volume_event(action: &str, name: &str) {
    crate::events::events().other(
        crate::events::Kind::Volume,
        action,
        name,
        [("driver", LOCAL.to_owned())],
    );
}

/// The bytes of the regular files under `dir` (not following symlinks; hard links counted
/// once per link, as `du --apparent-size` would not, which is close enough for a report).
pub fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map_or(0, |m| m.len()),
                _ => {}
            }
        }
    }
    total
}

fn dangling_filter(filters: &Filters) -> Result<Option<bool>, GraphError> {
    let mut out = None;
    for v in filters.get("dangling") {
        out = Some(match v {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                return Err(GraphError::Filter(FilterError::InvalidValue {
                    key: "dangling",
                    value: v.to_owned(),
                }));
            }
        });
    }
    Ok(out)
}

/// A record for a volume dir without one (made by another daemon, or an unreadable
/// record): created when the dir was.
fn record_of_dir(path: &Path) -> Record {
    let created_at = fs::metadata(path)
        .and_then(|m| m.modified())
        .map_or_else(|_| Utc::now(), DateTime::<Utc>::from);
    Record {
        created_at,
        labels: None,
        options: None,
        anonymous: false,
    }
}

fn volume_of(dir: &Path, name: &str, r: Record) -> Volume {
    let mountpoint = dir.join(name).join(DATA);
    let device = r
        .options
        .as_ref()
        .and_then(|o| check_options(name, o).ok().flatten());
    Volume {
        name: name.to_owned(),
        source: device.unwrap_or_else(|| mountpoint.clone()),
        mountpoint,
        created_at: r.created_at,
        labels: r.labels,
        options: r.options,
        anonymous: r.anonymous,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn req(name: &str) -> VolumeRequest {
        VolumeRequest {
            name: name.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn create_list_remove_and_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let s = VolumeStore::open(tmp.path(), Deleter::new()).unwrap();
        let mut r = req("data");
        r.labels.insert("team".into(), "a".into());
        let v = s.create(&r).unwrap();
        assert_eq!(v.mountpoint, tmp.path().join("volumes/data/_data"));
        assert!(v.mountpoint.is_dir());
        fs::write(v.mountpoint.join("f"), "x").unwrap();
        // Idempotent: the same volume, its data kept.
        assert_eq!(s.create(&req("data")).unwrap(), v);
        let anon = s.create(&req("")).unwrap();
        assert!(anon.anonymous && crate::util::is_full_id(&anon.name));
        let doc = v.to_json();
        assert_eq!(doc["Labels"], json!({"team": "a"}));
        assert_eq!(doc["Options"], Value::Null);
        assert_eq!(doc["Scope"], "local");

        let none = HashMap::new();
        let f = Filters::from_pairs([("label", "team=a")]);
        assert_eq!(s.list(&f, &none).unwrap(), vec![v.clone()]);
        let f = Filters::from_pairs([("name", "at")]);
        assert_eq!(s.list(&f, &none).unwrap().len(), 1);
        let used: HashMap<String, Vec<String>> =
            [("data".to_owned(), vec!["c1".to_owned()])].into();
        let f = Filters::from_pairs([("dangling", "true")]);
        assert_eq!(s.list(&f, &used).unwrap(), vec![anon.clone()]);
        let e = s
            .list(&Filters::from_pairs([("bogus", "1")]), &none)
            .unwrap_err();
        assert_eq!(e.to_string(), "Invalid filter 'bogus'");

        let e = s.remove("data", false, &used).unwrap_err();
        assert_eq!(e.to_string(), "remove data: volume is in use - [c1]");
        assert_eq!(e.kind(), ErrorKind::Conflict);
        drop(s);
        let s = VolumeStore::open(tmp.path(), Deleter::new()).unwrap();
        assert_eq!(s.get("data").unwrap(), v);
        assert_eq!(s.count(), 2);
        s.remove("data", false, &none).unwrap();
        let e = s.remove("data", false, &none).unwrap_err();
        assert_eq!(e.to_string(), "get data: no such volume");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        s.remove("data", true, &none).unwrap();
        let (gone, _) = s.prune(&Filters::default(), &none).unwrap();
        assert_eq!(gone, vec![anon.name]);
        s.deleter.drain();
        assert!(crate::util::sorted_names(&tmp.path().join("volumes")).is_empty());
    }

    #[test]
    fn bad_names_options_and_drivers_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let s = VolumeStore::open(tmp.path(), Deleter::new()).unwrap();
        for name in ["a", "a/b", "-x", "../x", "x y"] {
            let e = s.create(&req(name)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidParameter, "{name}");
        }
        let mut r = req("v1");
        r.driver = "nfs-plugin".into();
        let e = s.create(&r).unwrap_err();
        assert_eq!(
            e.to_string(),
            "create v1: error looking up volume plugin nfs-plugin: plugin \"nfs-plugin\" not found"
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let mut r = req("v1");
        r.options.insert("foo".into(), "1".into());
        assert_eq!(
            s.create(&r).unwrap_err().to_string(),
            "create v1: invalid option key: \"foo\""
        );
        let mut r = req("v1");
        r.options.insert("type".into(), "tmpfs".into());
        assert!(
            s.create(&r)
                .unwrap_err()
                .to_string()
                .contains("berthd does not support")
        );
        assert_eq!(s.count(), 0);

        // A bind-type volume: its data is the device dir, which removal leaves alone.
        let dev = tmp.path().join("dev");
        fs::create_dir(&dev).unwrap();
        fs::write(dev.join("keep"), "1").unwrap();
        let mut r = req("bound");
        r.options.insert("type".into(), "none".into());
        r.options.insert("o".into(), "bind".into());
        r.options.insert("device".into(), dev.display().to_string());
        let v = s.create(&r).unwrap();
        assert_eq!(v.source, dev);
        s.remove("bound", false, &HashMap::new()).unwrap();
        s.deleter.drain();
        assert!(dev.join("keep").is_file());
    }
}
