//! A container's mounts as dockerd works them out at create (`registerMountPoints` and
//! the `Config.Volumes` step): `--volumes-from` first, then `HostConfig.Binds`, then
//! `HostConfig.Mounts`, then an anonymous volume for each `Config.Volumes` path (the
//! image's `VOLUME`s included) that nothing else mounts. `HostConfig.Tmpfs` is kept apart,
//! as dockerd keeps it (it is not in `Mounts`).
//!
//! The result is the record's `MountPoints`: what `docker inspect` shows as `Mounts`, what
//! the start mounts, and what holds a volume against its removal.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::validate::{invalid, parse_bind};
use crate::actors::graph::volumes::{LOCAL, Volume, VolumeRequest};
use crate::model::api::{HostConfig, Mount, MountTypeEnum};
use crate::model::spec::MountSpec;

/// One mount of a container (dockerd's `MountPoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub typ: String,
    /// The volume's name.
    #[serde(default)]
    pub name: String,
    /// The host path: a bind's source, a volume's `_data` (empty for tmpfs).
    #[serde(default)]
    pub source: String,
    /// What is bound: the source, or a bind-type volume's device dir.
    #[serde(default)]
    pub bind_source: String,
    pub destination: String,
    #[serde(default)]
    pub driver: String,
    /// The mode as given (`ro`, `rw,nocopy`, …); `z` for a local volume without one.
    #[serde(default)]
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    #[serde(default)]
    pub propagation: String,
    /// Fill an empty volume from the image's files at its path on the first start.
    #[serde(default)]
    pub copy_data: bool,
    /// A volume the user named (`-v name:/p`, `--mount source=name`): `docker rm -v`
    /// keeps it; an anonymous one goes.
    #[serde(default)]
    pub named: bool,
    #[serde(default)]
    pub non_recursive: bool,
    /// tmpfs: its options (`size=64m,mode=1777`).
    #[serde(default)]
    pub data: String,
}

impl MountPoint {
    /// The `Mounts` entry of `docker inspect` and `docker ps`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "Type": self.typ,
            "Source": self.source,
            "Destination": self.destination,
            "Mode": self.mode,
            "RW": self.rw,
            "Propagation": self.propagation,
        });
        if self.typ == "volume" {
            v["Name"] = self.name.clone().into();
            v["Driver"] = self.driver.clone().into();
        }
        v
    }

    /// The mount the container's init (or the OCI runtime) makes.
    pub fn spec(&self) -> MountSpec {
        if self.typ == "tmpfs" {
            return tmpfs_spec(&self.destination, &self.data, !self.rw);
        }
        let mut options = vec![
            if self.non_recursive { "bind" } else { "rbind" }.to_owned(),
            if self.propagation.is_empty() {
                "rprivate".to_owned()
            } else {
                self.propagation.clone()
            },
        ];
        if !self.rw {
            options.push("ro".to_owned());
        }
        MountSpec {
            source: self.bind_source.clone().into(),
            destination: self.destination.clone(),
            fstype: "bind".to_owned(),
            options,
            copy_up: self.typ == "volume" && self.copy_data,
        }
    }
}

/// A tmpfs at `dest`: dockerd's `noexec,nosuid,nodev` unless the options say otherwise.
pub fn tmpfs_spec(dest: &str, data: &str, read_only: bool) -> MountSpec {
    let mut opts: Vec<String> = vec!["noexec".into(), "nosuid".into(), "nodev".into()];
    if read_only {
        opts.push("ro".into());
    }
    for o in data.split(',').filter(|o| !o.is_empty()) {
        let opposite = match o {
            "exec" => Some("noexec"),
            "noexec" => Some("exec"),
            "suid" => Some("nosuid"),
            "nosuid" => Some("suid"),
            "dev" => Some("nodev"),
            "nodev" => Some("dev"),
            "ro" => Some("rw"),
            "rw" => Some("ro"),
            _ => None,
        };
        if let Some(op) = opposite {
            opts.retain(|x| x != op && x != o);
        }
        let key = o.split_once('=').map(|(k, _)| k);
        if let Some(k) = key {
            opts.retain(|x| x.split_once('=').map(|(xk, _)| xk) != Some(k));
        }
        if !matches!(o, "exec" | "suid" | "dev" | "rw") {
            opts.push(o.to_owned());
        }
    }
    MountSpec {
        source: "tmpfs".into(),
        destination: dest.to_owned(),
        fstype: "tmpfs".to_owned(),
        options: opts,
        copy_up: false,
    }
}

/// Checks a `--tmpfs` option string as the kernel's tmpfs and the mount flags read it.
pub fn check_tmpfs_options(dest: &str, data: &str) -> Result<(), StoreError> {
    for o in data.split(',').filter(|o| !o.is_empty()) {
        let (k, v) = match o.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (o, None),
        };
        let ok = match v {
            None => matches!(
                k,
                "ro" | "rw"
                    | "exec"
                    | "noexec"
                    | "suid"
                    | "nosuid"
                    | "dev"
                    | "nodev"
                    | "sync"
                    | "async"
                    | "dirsync"
                    | "atime"
                    | "noatime"
                    | "diratime"
                    | "nodiratime"
                    | "relatime"
                    | "strictatime"
            ),
            Some(v) => {
                matches!(
                    k,
                    "size" | "mode" | "uid" | "gid" | "nr_inodes" | "nr_blocks" | "mpol" | "huge"
                ) && !v.is_empty()
            }
        };
        if !ok {
            return Err(invalid(format!("invalid tmpfs option {o:?} for {dest}")));
        }
    }
    Ok(())
}

/// The mounts of a container being created, before its volumes exist.
#[derive(Debug, Default)]
pub struct Plan {
    pub points: Vec<MountPoint>,
    /// For each volume mount (the index in `points`): the volume to make or find.
    pub volumes: Vec<(usize, VolumeRequest)>,
}

impl Plan {
    /// Fills in the volumes, in the order of `volumes`.
    pub fn resolve(mut self, made: &[Volume]) -> Vec<MountPoint> {
        for ((i, _), v) in self.volumes.iter().zip(made) {
            let p = &mut self.points[*i];
            p.name = v.name.clone();
            p.source = v.mountpoint.display().to_string();
            p.bind_source = v.source.display().to_string();
        }
        self.points
    }
}

/// Go's `path.Clean`, as dockerd cleans mount paths.
fn clean(path: &str) -> String {
    String::from_utf8_lossy(&crate::containerfs::paths::clean(path.as_bytes())).into_owned()
}

fn mount_error(typ: &str, reason: impl std::fmt::Display) -> StoreError {
    invalid(format!("invalid mount config for type \"{typ}\": {reason}"))
}

fn duplicate(dest: &str) -> StoreError {
    invalid(format!("Duplicate mount point: {dest}"))
}

/// Works out the mounts: `from` are the mount points of the `--volumes-from` containers
/// (already looked up, with their modes), `image_volumes` the image's `VOLUME`s.
pub fn plan(
    h: &HostConfig,
    config_volumes: &[String],
    from: &[(Vec<MountPoint>, String)],
) -> Result<Plan, StoreError> {
    let mut by_dest: BTreeMap<String, (MountPoint, Option<VolumeRequest>)> = BTreeMap::new();
    let tmpfs: HashMap<String, &String> = h
        .tmpfs
        .iter()
        .flatten()
        .map(|(d, o)| (clean(d), o))
        .collect();
    for (d, o) in &tmpfs {
        if !d.starts_with('/') {
            return Err(invalid(format!(
                "invalid mount path: '{d}' mount path must be absolute"
            )));
        }
        if d == "/" {
            return Err(invalid("invalid specification: destination can't be '/'"));
        }
        check_tmpfs_options(d, o)?;
    }
    // 1. --volumes-from: their mounts, read-only with `ro`.
    for (points, mode) in from {
        for p in points {
            let mut p = p.clone();
            p.rw = p.rw && !mode.split(',').any(|m| m == "ro");
            p.copy_data = false;
            by_dest.insert(p.destination.clone(), (p, None));
        }
    }
    // 2. Binds.
    let mut bound: Vec<String> = Vec::new();
    for b in h.binds.iter().flatten() {
        let bind = parse_bind(b)?;
        let dest = clean(&bind.destination);
        if bound.contains(&dest) || tmpfs.contains_key(&dest) {
            return Err(duplicate(&dest));
        }
        bound.push(dest.clone());
        let point = if bind.named {
            let request = VolumeRequest {
                name: bind.source.clone(),
                driver: h.volume_driver.clone().unwrap_or_default(),
                ..Default::default()
            };
            let point = MountPoint {
                typ: "volume".into(),
                name: bind.source.clone(),
                source: String::new(),
                bind_source: String::new(),
                destination: dest.clone(),
                driver: LOCAL.into(),
                mode: if bind.mode.is_empty() {
                    "z".into()
                } else {
                    bind.mode.clone()
                },
                rw: !bind.read_only,
                propagation: String::new(),
                copy_data: !bind.no_copy,
                named: true,
                non_recursive: false,
                data: String::new(),
            };
            by_dest.insert(dest, (point, Some(request)));
            continue;
        } else {
            MountPoint {
                typ: "bind".into(),
                name: String::new(),
                source: clean(&bind.source),
                bind_source: clean(&bind.source),
                destination: dest.clone(),
                driver: String::new(),
                mode: bind.mode.clone(),
                rw: !bind.read_only,
                propagation: bind
                    .propagation
                    .clone()
                    .unwrap_or_else(|| "rprivate".into()),
                copy_data: false,
                named: false,
                non_recursive: false,
                data: String::new(),
            }
        };
        by_dest.insert(dest, (point, None));
    }
    // 3. Mounts.
    for m in h.mounts.iter().flatten() {
        let (point, request) = mount_point(m)?;
        if bound.contains(&point.destination) {
            return Err(duplicate(m.target.as_deref().unwrap_or("")));
        }
        bound.push(point.destination.clone());
        by_dest.insert(point.destination.clone(), (point, request));
    }
    // 4. Config.Volumes (with the image's): an anonymous volume where nothing is mounted.
    for v in config_volumes {
        if !v.starts_with('/') {
            return Err(mount_error(
                "volume",
                format!("invalid mount path: '{v}' mount path must be absolute"),
            ));
        }
        let dest = clean(v);
        if dest == "/" {
            return Err(invalid("invalid specification: destination can't be '/'"));
        }
        if by_dest.contains_key(&dest) || tmpfs.contains_key(&dest) {
            continue;
        }
        let point = MountPoint {
            typ: "volume".into(),
            name: String::new(),
            source: String::new(),
            bind_source: String::new(),
            destination: dest.clone(),
            driver: LOCAL.into(),
            mode: String::new(),
            rw: true,
            propagation: String::new(),
            copy_data: true,
            named: false,
            non_recursive: false,
            data: String::new(),
        };
        let request = VolumeRequest {
            driver: h.volume_driver.clone().unwrap_or_default(),
            ..Default::default()
        };
        by_dest.insert(dest, (point, Some(request)));
    }
    // Parents before children, as dockerd sorts them (by the number of components).
    let mut all: Vec<(MountPoint, Option<VolumeRequest>)> = by_dest.into_values().collect();
    all.sort_by_key(|(p, _)| p.destination.matches('/').count());
    let mut plan = Plan::default();
    for (i, (p, r)) in all.into_iter().enumerate() {
        if let Some(r) = r {
            plan.volumes.push((i, r));
        }
        plan.points.push(p);
    }
    Ok(plan)
}

/// The bind mounts of a record made before mount points were kept: its host binds (named
/// volumes were refused then). `None` when there are none.
pub fn plan_binds_only(binds: &[String]) -> Option<Vec<MountPoint>> {
    if binds.is_empty() {
        return None;
    }
    let h = HostConfig {
        binds: Some(
            binds
                .iter()
                .filter(|b| b.starts_with('/'))
                .cloned()
                .collect(),
        ),
        ..Default::default()
    };
    plan(&h, &[], &[]).ok().map(|p| p.points)
}

/// One `HostConfig.Mounts` entry, checked as dockerd's linux parser checks it.
fn mount_point(m: &Mount) -> Result<(MountPoint, Option<VolumeRequest>), StoreError> {
    let typ = m.typ.unwrap_or(MountTypeEnum::EMPTY);
    let tname = typ.to_string();
    let target = m.target.as_deref().unwrap_or("");
    let source = m.source.as_deref().unwrap_or("");
    if target.is_empty() {
        return Err(mount_error(&tname, "field Target must not be empty"));
    }
    if clean(target) == "/" {
        return Err(mount_error(
            &tname,
            "invalid specification: destination can't be '/'",
        ));
    }
    if !target.starts_with('/') {
        return Err(mount_error(
            &tname,
            format!("invalid mount path: '{target}' mount path must be absolute"),
        ));
    }
    let dest = clean(target);
    let read_only = m.read_only.unwrap_or(false);
    let mut point = MountPoint {
        typ: tname.clone(),
        name: String::new(),
        source: String::new(),
        bind_source: String::new(),
        destination: dest,
        driver: String::new(),
        mode: String::new(),
        rw: !read_only,
        propagation: String::new(),
        copy_data: false,
        named: false,
        non_recursive: false,
        data: String::new(),
    };
    let extra = |f: &str| mount_error(&tname, format!("field {f} must not be specified"));
    match typ {
        MountTypeEnum::BIND => {
            if source.is_empty() {
                return Err(mount_error(&tname, "field Source must not be empty"));
            }
            if m.volume_options.is_some() {
                return Err(extra("VolumeOptions"));
            }
            if m.tmpfs_options.is_some() {
                return Err(extra("TmpfsOptions"));
            }
            if !source.starts_with('/') {
                return Err(mount_error(
                    &tname,
                    format!("invalid mount path: '{source}' mount path must be absolute"),
                ));
            }
            if std::fs::symlink_metadata(source).is_err() {
                return Err(mount_error(
                    &tname,
                    format!("bind source path does not exist: {source}"),
                ));
            }
            let opts = m.bind_options.as_ref();
            point.source = clean(source);
            point.bind_source = point.source.clone();
            point.propagation = opts
                .and_then(|o| o.propagation)
                .map(|p| p.to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "rprivate".into());
            point.non_recursive = opts.and_then(|o| o.non_recursive).unwrap_or(false);
            Ok((point, None))
        }
        MountTypeEnum::VOLUME => {
            if m.bind_options.is_some() {
                return Err(extra("BindOptions"));
            }
            if m.tmpfs_options.is_some() {
                return Err(extra("TmpfsOptions"));
            }
            if source.is_empty() && read_only {
                return Err(mount_error(
                    &tname,
                    "must not set ReadOnly mode when using anonymous volumes",
                ));
            }
            let vo = m.volume_options.as_ref();
            let driver = vo
                .and_then(|o| o.driver_config.as_ref())
                .and_then(|d| d.name.clone())
                .unwrap_or_default();
            let request = VolumeRequest {
                name: source.to_owned(),
                driver,
                options: vo
                    .and_then(|o| o.driver_config.as_ref())
                    .and_then(|d| d.options.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                labels: vo
                    .and_then(|o| o.labels.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            };
            point.name = source.to_owned();
            point.driver = LOCAL.into();
            point.mode = "z".into();
            point.copy_data = !vo.and_then(|o| o.no_copy).unwrap_or(false);
            point.named = !source.is_empty();
            Ok((point, Some(request)))
        }
        MountTypeEnum::TMPFS => {
            if m.bind_options.is_some() {
                return Err(extra("BindOptions"));
            }
            if m.volume_options.is_some() {
                return Err(extra("VolumeOptions"));
            }
            if !source.is_empty() {
                return Err(extra("Source"));
            }
            let mut data = Vec::new();
            if let Some(t) = &m.tmpfs_options {
                if let Some(mode) = t.mode.filter(|m| *m != 0) {
                    data.push(format!("mode={mode:o}"));
                }
                match t.size_bytes {
                    Some(s) if s < 0 => {
                        return Err(mount_error(&tname, "invalid tmpfs size: negative"));
                    }
                    Some(s) if s > 0 => data.push(format!("size={}", size_text(s))),
                    _ => {}
                }
            }
            point.data = data.join(",");
            Ok((point, None))
        }
        _ => Err(mount_error(&tname, "mount type unknown")),
    }
}

/// dockerd's size text: the largest of g, m, k that divides it, else bytes.
fn size_text(size: i64) -> String {
    for (suffix, div) in [("g", 1i64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
        if size % div == 0 {
            return format!("{}{suffix}", size / div);
        }
    }
    size.to_string()
}

/// `--volumes-from name[:ro|rw]`: the container and the mode.
pub fn parse_volumes_from(spec: &str) -> Result<(&str, &str), StoreError> {
    if spec.is_empty() {
        return Err(invalid(
            "volumes-from specification cannot be an empty string",
        ));
    }
    let (id, mode) = spec.split_once(':').unwrap_or((spec, "rw"));
    if !matches!(
        mode,
        "ro" | "rw"
            | "z"
            | "Z"
            | "ro,z"
            | "rw,z"
            | "ro,Z"
            | "rw,Z"
            | "z,ro"
            | "z,rw"
            | "Z,ro"
            | "Z,rw"
    ) {
        return Err(invalid(format!("invalid mode: {mode}")));
    }
    Ok((id, mode))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn host(v: serde_json::Value) -> HostConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn binds_mounts_and_config_volumes_in_dockerds_order() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().display().to_string();
        let h = host(json!({
            "Binds": [format!("{src}:/host:ro"), "data:/data", "keep:/keep:nocopy"],
            "Mounts": [
                {"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 67108864, "Mode": 0o1777}},
                {"Type": "volume", "Target": "/anon"},
                {"Type": "bind", "Source": src, "Target": "/b2", "BindOptions": {"Propagation": "rslave"}},
            ],
            "Tmpfs": {"/run": "size=1m"},
        }));
        let plan = plan(
            &h,
            &["/data".into(), "/var/lib/x/".into(), "/run".into()],
            &[],
        )
        .unwrap();
        let dests: Vec<&str> = plan.points.iter().map(|p| p.destination.as_str()).collect();
        assert_eq!(
            dests,
            [
                "/anon",
                "/b2",
                "/data",
                "/host",
                "/keep",
                "/scratch",
                "/var/lib/x"
            ]
        );
        let by = |d: &str| plan.points.iter().find(|p| p.destination == d).unwrap();
        assert_eq!(
            (
                by("/data").mode.as_str(),
                by("/data").named,
                by("/data").copy_data
            ),
            ("z", true, true)
        );
        assert!(!by("/keep").copy_data);
        assert_eq!((by("/host").typ.as_str(), by("/host").rw), ("bind", false));
        assert_eq!(by("/host").propagation, "rprivate");
        assert_eq!(by("/b2").propagation, "rslave");
        assert_eq!(by("/scratch").data, "mode=1777,size=64m");
        assert!(!by("/anon").named && !by("/var/lib/x").named);
        // Four volumes to make: data, keep, the anonymous mount and the config volume.
        assert_eq!(plan.volumes.len(), 4);
        let spec = by("/scratch").spec();
        assert_eq!(
            spec.options,
            ["noexec", "nosuid", "nodev", "mode=1777", "size=64m"]
        );
        assert_eq!(
            tmpfs_spec("/t", "exec,size=1m", true).options,
            ["nosuid", "nodev", "ro", "size=1m"]
        );
    }

    #[test]
    fn dockerds_refusals() {
        let cases = [
            (
                json!({"Binds": ["/a:/x", "v:/x"]}),
                "Duplicate mount point: /x",
            ),
            (
                json!({"Binds": ["v:/x"], "Tmpfs": {"/x": ""}}),
                "Duplicate mount point: /x",
            ),
            (
                json!({"Binds": ["v:/x"], "Mounts": [{"Type": "volume", "Target": "/x"}]}),
                "Duplicate mount point: /x",
            ),
            (
                json!({"Mounts": [{"Type": "bind", "Target": "/x"}]}),
                "invalid mount config for type \"bind\": field Source must not be empty",
            ),
            (
                json!({"Mounts": [{"Type": "bind", "Source": "/nonexistent-berth", "Target": "/x"}]}),
                "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-berth",
            ),
            (
                json!({"Mounts": [{"Type": "tmpfs", "Source": "x", "Target": "/x"}]}),
                "invalid mount config for type \"tmpfs\": field Source must not be specified",
            ),
            (
                json!({"Mounts": [{"Type": "volume", "Target": "/x", "ReadOnly": true}]}),
                "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes",
            ),
            (
                json!({"Mounts": [{"Type": "volume", "Target": "x"}]}),
                "invalid mount config for type \"volume\": invalid mount path: 'x' mount path must be absolute",
            ),
            (
                json!({"Mounts": [{"Type": "npipe", "Source": "x", "Target": "/x"}]}),
                "invalid mount config for type \"npipe\": mount type unknown",
            ),
            (
                json!({"Tmpfs": {"/x": "bogus"}}),
                "invalid tmpfs option \"bogus\" for /x",
            ),
        ];
        for (h, want) in cases {
            let e = plan(&host(h.clone()), &[], &[]).unwrap_err();
            assert_eq!(e.to_string(), want, "{h}");
        }
        assert!(parse_volumes_from("c:rshared").is_err());
        assert_eq!(parse_volumes_from("c").unwrap(), ("c", "rw"));
    }
}
