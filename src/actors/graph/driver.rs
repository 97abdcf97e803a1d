//! Graph drivers: overlay2 and vfs. Selection, prerequisite checks and the layout of
//! layer contents under `data-root/<driver>/`.
//!
//! Layer directories are made under a temporary name (`<id>-tmp`) and renamed into
//! place when complete; deletions rename to `<id>-removing-<hex>` first ([`Driver::doom`]),
//! and the contents go then or on the background deleter. A crash therefore leaves only
//! names that [`Driver::cleanup`] recognises and removes.
//!
//! The driver never mounts a container's rootfs: it describes the mount
//! ([`RootfsSpec`]) and the container's init makes it in its own mount namespace. The
//! only mount made here is the short-lived test mount of [`probe_overlay2`].

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::error::GraphError;
use crate::monitor::spec::RootfsSpec;

/// The drivers berth knows, in the order auto-selection tries them.
pub const PRIORITY: [DriverKind; 2] = [DriverKind::Overlay2, DriverKind::Vfs];

/// The environment variable that names a driver when the flag does not.
pub const DRIVER_ENV: &str = "BERTH_DRIVER";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverKind {
    Overlay2,
    Vfs,
}

impl DriverKind {
    pub fn name(self) -> &'static str {
        match self {
            DriverKind::Overlay2 => "overlay2",
            DriverKind::Vfs => "vfs",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "overlay2" => Some(DriverKind::Overlay2),
            "vfs" => Some(DriverKind::Vfs),
            _ => None,
        }
    }
}

/// A usable driver rooted at `data-root/<name>`.
#[derive(Debug, Clone)]
pub struct Driver {
    pub kind: DriverKind,
    pub home: PathBuf,
    /// `DriverStatus` pairs for `/info`.
    pub status: Vec<(String, String)>,
}

/// Picks the driver like Docker's `graphdriver.New`: the flag, else `$BERTH_DRIVER`,
/// else a driver that already holds images in this data root, else the priority list,
/// skipping drivers whose prerequisites fail.
pub fn select(
    data_root: &Path,
    flag: Option<&str>,
    env: Option<&str>,
) -> Result<Driver, GraphError> {
    let named = flag
        .filter(|s| !s.is_empty())
        .or(env.filter(|s| !s.is_empty()));
    if let Some(name) = named {
        let kind = DriverKind::from_name(name).ok_or_else(|| GraphError::UnknownDriver {
            name: name.to_owned(),
        })?;
        return probe(kind, data_root).map_err(|reason| GraphError::DriverUnusable {
            name: name.to_owned(),
            reason,
        });
    }
    let mut order: Vec<DriverKind> = PRIORITY
        .iter()
        .copied()
        .filter(|k| has_prior_state(data_root, *k))
        .collect();
    for k in PRIORITY {
        if !order.contains(&k) {
            order.push(k);
        }
    }
    for kind in order {
        match probe(kind, data_root) {
            Ok(driver) => return Ok(driver),
            Err(reason) => {
                tracing::info!(driver = kind.name(), %reason, "storage driver skipped");
            }
        }
    }
    Err(GraphError::NoDriver {
        root: data_root.to_owned(),
    })
}

fn has_prior_state(data_root: &Path, kind: DriverKind) -> bool {
    let layers = data_root
        .join("image")
        .join(kind.name())
        .join("layerdb/sha256");
    fs::read_dir(layers).is_ok_and(|mut d| d.next().is_some())
}

/// Checks the driver's prerequisites; `Err` is the reason it cannot be used.
pub fn probe(kind: DriverKind, data_root: &Path) -> Result<Driver, String> {
    let home = data_root.join(kind.name());
    match kind {
        DriverKind::Vfs => {
            fs::create_dir_all(&home).map_err(|e| format!("{}: {e}", home.display()))?;
            Ok(Driver {
                kind,
                home,
                status: Vec::new(),
            })
        }
        DriverKind::Overlay2 => {
            let existed = home.exists();
            let res = probe_overlay2(&home);
            if res.is_err() && !existed {
                // Leave no empty driver dir behind for a driver that is not used.
                let _ = fs::remove_dir(&home);
            }
            res.map(|status| Driver { kind, home, status })
        }
    }
}

fn kernel_has_overlay() -> bool {
    fs::read_to_string("/proc/filesystems").is_ok_and(|s| {
        s.lines()
            .any(|l| l.split_whitespace().last() == Some("overlay"))
    })
}

/// overlay2's checks: kernel support, a backing filesystem that is not overlayfs and
/// has d_type, and a real test mount.
pub fn probe_overlay2(home: &Path) -> Result<Vec<(String, String)>, String> {
    if !kernel_has_overlay() {
        let _ = std::process::Command::new("modprobe")
            .arg("overlay")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if !kernel_has_overlay() {
            return Err("the kernel does not support overlay (not in /proc/filesystems)".into());
        }
    }
    fs::create_dir_all(home).map_err(|e| format!("{}: {e}", home.display()))?;
    let fs =
        crate::sys::fs::backing_fs(home).map_err(|e| format!("statfs {}: {e}", home.display()))?;
    let backing = fs.name;
    if fs.is_overlay {
        return Err(format!(
            "{} is on overlayfs, which cannot hold overlay upper layers",
            home.display()
        ));
    }
    let probe = home.join(format!("probe-{}", hex::encode(rand::random::<[u8; 6]>())));
    let res = probe_in(&probe, &backing);
    let _ = crate::sys::fs::unmount_detached(&probe.join("merged"));
    let _ = fs::remove_dir_all(&probe);
    res?;
    Ok(vec![
        ("Backing Filesystem".into(), backing),
        ("Supports d_type".into(), "true".into()),
        ("Native Overlay Diff".into(), "true".into()),
        ("userxattr".into(), "false".into()),
    ])
}

fn probe_in(probe: &Path, backing: &str) -> Result<(), String> {
    let ioe = |p: &Path, e: io::Error| format!("{}: {e}", p.display());
    for d in ["lower", "upper", "work", "merged"] {
        let p = probe.join(d);
        fs::create_dir_all(&p).map_err(|e| ioe(&p, e))?;
    }
    let marker = probe.join("lower/marker");
    fs::write(&marker, b"x").map_err(|e| ioe(&marker, e))?;
    if !supports_d_type(&probe.join("lower"))? {
        return Err(format!(
            "the backing filesystem ({backing}) does not support d_type"
        ));
    }
    if !crate::sys::host::is_root() {
        return Err("a test overlay mount needs root".into());
    }
    let merged = probe.join("merged");
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        probe.join("lower").display(),
        probe.join("upper").display(),
        probe.join("work").display()
    );
    test_mount_in_private_namespace(merged, opts)
}

/// Mounts the test overlay on a fresh thread inside a mount namespace of its own and
/// reports whether the lower layer shows through. The host never sees the mount, and the
/// namespace (with the mount) is torn down when the thread exits: an unmount waits for an
/// RCU grace period (hundreds of milliseconds on a busy host), which start-up then does
/// not wait for.
fn test_mount_in_private_namespace(merged: PathBuf, opts: String) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("overlay-probe".into())
        .spawn(move || {
            let res = (|| {
                crate::sys::namespaces::unshare_private_mount_ns().map_err(|e| {
                    format!(
                        "a private mount namespace for the test mount: {}",
                        crate::util::error_chain(&e)
                    )
                })?;
                crate::sys::fs::mount_filesystem("overlay", &merged, Some(opts.as_str()))
                    .map_err(|e| format!("a test overlay mount failed: {e}"))?;
                if merged.join("marker").exists() {
                    Ok(())
                } else {
                    Err("a test overlay mount did not show its lower layer".to_owned())
                }
            })();
            let _ = tx.send(res);
        })
        .map_err(|e| format!("the overlay probe thread: {e}"))?;
    drop(spawned);
    rx.recv()
        .unwrap_or_else(|_| Err("the overlay probe thread died".to_owned()))
}

fn supports_d_type(dir: &Path) -> Result<bool, String> {
    crate::sys::fs::lists_d_type(dir, b"marker").map_err(|e| format!("{}: {e}", dir.display()))
}

/// Paths every container rootfs needs as mount points; made in the init layer when the
/// image lacks them (`true`: a directory).
const MOUNTPOINTS: &[(&str, bool)] = &[
    ("dev", true),
    ("dev/pts", true),
    ("dev/shm", true),
    ("proc", true),
    ("sys", true),
    ("etc", true),
    ("etc/hosts", false),
    ("etc/hostname", false),
    ("etc/resolv.conf", false),
    (".dockerenv", false),
];

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> GraphError + '_ {
    move |source| GraphError::Io {
        path: path.to_owned(),
        source,
    }
}

fn fsync_dir(dir: &Path) -> Result<(), GraphError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_error(dir))
}

/// True for names the driver makes: a 64-hex id, optionally with `-init`.
fn is_layer_name(name: &str) -> bool {
    let base = name.strip_suffix("-init").unwrap_or(name);
    crate::util::is_full_id(base)
}

impl Driver {
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// The directory that holds a layer's files (`<id>/diff` or `<id>/dir`).
    pub fn content_dir(&self, cache_id: &str) -> PathBuf {
        self.content_in(&self.home.join(cache_id))
    }

    fn content_in(&self, layer_dir: &Path) -> PathBuf {
        match self.kind {
            DriverKind::Overlay2 => layer_dir.join("diff"),
            DriverKind::Vfs => layer_dir.join("dir"),
        }
    }

    /// `GraphDriver.Data` of an image whose layers are `cache_ids` (top first), as dockerd's
    /// drivers describe a layer. overlay2: `UpperDir` (the top layer's files) and, with
    /// more than one layer, `LowerDir` (the others', top first, `:`-separated). dockerd
    /// also names the top layer's `work` and `merged` dirs, which berth's image layers do
    /// not have: nothing mounts an image layer, so they are left out rather than named
    /// where nothing is. vfs: nothing, as dockerd's vfs.
    pub fn image_metadata(&self, cache_ids: &[String]) -> HashMap<String, String> {
        let mut data = HashMap::new();
        if self.kind == DriverKind::Overlay2 {
            if let Some((top, lower)) = cache_ids.split_first() {
                data.insert(
                    "UpperDir".to_owned(),
                    self.content_dir(top).display().to_string(),
                );
                if !lower.is_empty() {
                    let dirs: Vec<String> = lower
                        .iter()
                        .map(|c| self.content_dir(c).display().to_string())
                        .collect();
                    data.insert("LowerDir".to_owned(), dirs.join(":"));
                }
            }
        }
        data
    }

    pub fn layer_exists(&self, cache_id: &str) -> bool {
        self.home.join(cache_id).is_dir()
    }

    /// Makes `<id>-tmp/<content>` for a new image layer. Returns the id and the content
    /// dir to fill; [`Driver::commit`] renames it into place.
    pub fn new_layer(&self) -> Result<(String, PathBuf), GraphError> {
        let id = crate::util::new_id();
        let tmp = self.tmp_dir(&id);
        let content = self.content_in(&tmp);
        fs::create_dir_all(&content).map_err(io_error(&content))?;
        fs::set_permissions(&content, fs::Permissions::from_mode(0o755))
            .map_err(io_error(&content))?;
        Ok((id, content))
    }

    fn tmp_dir(&self, id: &str) -> PathBuf {
        self.home.join(format!("{id}-tmp"))
    }

    /// Renames a finished `<id>-tmp` to `<id>` and makes the rename durable.
    pub fn commit(&self, id: &str) -> Result<(), GraphError> {
        self.rename_into_place(id)?;
        fsync_dir(&self.home)
    }

    /// Renames a finished `<id>-tmp` to `<id>`, not yet durably: until `home` is
    /// fsynced a crash may leave either name, and [`Driver::cleanup`] removes both when
    /// no metadata names the layer.
    fn rename_into_place(&self, id: &str) -> Result<(), GraphError> {
        let to = self.home.join(id);
        fs::rename(self.tmp_dir(id), &to).map_err(io_error(&to))
    }

    /// Removes a layer dir, or its unfinished temp dir, here and now. Ok when already
    /// gone.
    pub fn remove(&self, id: &str) -> Result<(), GraphError> {
        let mut doomed = Vec::with_capacity(2);
        let renamed = self.doom(id, &mut doomed);
        for dir in &doomed {
            fs::remove_dir_all(dir).map_err(io_error(dir))?;
        }
        renamed
    }

    /// Renames a layer dir, and its unfinished temp dir, to `<id>-removing-<hex>` and
    /// pushes the new names on `doomed` for the caller to delete (or to hand to the
    /// deleter). Ok when already gone. The home is not fsynced: a layer dir that no
    /// metadata names is removed by [`Driver::cleanup`] whatever its name.
    pub fn doom(&self, id: &str, doomed: &mut Vec<PathBuf>) -> Result<(), GraphError> {
        for dir in [self.home.join(id), self.tmp_dir(id)] {
            if fs::symlink_metadata(&dir).is_err() {
                continue;
            }
            if self.kind == DriverKind::Overlay2 {
                // In case something mounted it in our namespace.
                let _ = crate::sys::fs::unmount_detached(&dir.join("merged"));
            }
            let to = self.home.join(format!(
                "{id}-removing-{}",
                hex::encode(rand::random::<[u8; 4]>())
            ));
            fs::rename(&dir, &to).map_err(io_error(&dir))?;
            doomed.push(to);
        }
        Ok(())
    }

    /// Makes a container's layers on top of `lowers` (image layer cache ids, top first)
    /// and describes its rootfs mount. overlay2: `<id>` with diff/, work/, merged/, on
    /// the image's init layer `<top cache id>-init` (the mount points the image lacks),
    /// which the containers of an image share and the first of them makes. vfs: a copy
    /// of the top image layer with the mount points added.
    ///
    /// The layer dirs are renamed into place but `home` is not fsynced: the caller makes
    /// the renames durable (with the layer's metadata, in one wave of fsyncs) before it
    /// records the layer, and a crash before that leaves dirs that no metadata names,
    /// which [`Driver::cleanup`] removes.
    pub fn create_rw(
        &self,
        mount_id: &str,
        lowers: &[String],
    ) -> Result<(Option<String>, RootfsSpec), GraphError> {
        let lower_dirs: Vec<PathBuf> = lowers.iter().map(|c| self.content_dir(c)).collect();
        match self.kind {
            DriverKind::Overlay2 => {
                let init_id = match lowers.first() {
                    Some(top) => format!("{top}-init"),
                    None => format!("{mount_id}-init"),
                };
                self.ensure_init(&init_id, &lower_dirs)?;
                let tmp = self.tmp_dir(mount_id);
                for d in ["diff", "work", "merged"] {
                    mkdir(&tmp.join(d), 0o755)?;
                }
                self.rename_into_place(mount_id)?;
                let layer = self.home.join(mount_id);
                let mut lowerdir = vec![self.content_dir(&init_id)];
                lowerdir.extend(lower_dirs);
                let lowerdir: Vec<String> =
                    lowerdir.iter().map(|p| p.display().to_string()).collect();
                let spec = RootfsSpec {
                    fstype: "overlay".into(),
                    source: "overlay".into(),
                    options: format!(
                        "lowerdir={},upperdir={},workdir={}",
                        lowerdir.join(":"),
                        layer.join("diff").display(),
                        layer.join("work").display()
                    ),
                    target: layer.join("merged"),
                };
                Ok((Some(init_id), spec))
            }
            DriverKind::Vfs => {
                let tmp = self.tmp_dir(mount_id);
                let dir = tmp.join("dir");
                fs::create_dir_all(&tmp).map_err(io_error(&tmp))?;
                match lower_dirs.first() {
                    Some(top) => super::copy::copy_tree(top, &dir)?,
                    None => mkdir(&dir, 0o755)?,
                }
                add_mountpoints(&dir, std::slice::from_ref(&dir))?;
                self.rename_into_place(mount_id)?;
                let dir = self.content_dir(mount_id);
                Ok((
                    None,
                    RootfsSpec {
                        fstype: "bind".into(),
                        source: dir.display().to_string(),
                        options: String::new(),
                        target: dir,
                    },
                ))
            }
        }
    }

    /// Makes the init layer `init_id` on `lower_dirs` unless it is there: its dir renamed
    /// into place, `home` not fsynced (see [`Driver::create_rw`]; a container that finds
    /// it made by another still fsyncs `home` before its own record). Its contents never
    /// change once made, and only the containers' records name it: it stays while one
    /// does, and [`Driver::cleanup`] removes it at start-up once none does.
    fn ensure_init(&self, init_id: &str, lower_dirs: &[PathBuf]) -> Result<(), GraphError> {
        // One maker at a time; the others find it made.
        static MAKING: parking_lot::Mutex<()> = parking_lot::Mutex::new(());
        let _making = MAKING.lock();
        if self.home.join(init_id).is_dir() {
            return Ok(());
        }
        let tmp = self.tmp_dir(init_id);
        if tmp.exists() {
            // Left by a maker that failed.
            fs::remove_dir_all(&tmp).map_err(io_error(&tmp))?;
        }
        let diff = tmp.join("diff");
        let made = mkdir(&diff, 0o755)
            .and_then(|()| add_mountpoints(&diff, lower_dirs))
            .and_then(|()| self.rename_into_place(init_id));
        if made.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        made
    }

    /// Removes what a crash left behind: temp and half-removed dirs, test mounts, and
    /// layer dirs that no metadata names (`keep`).
    pub fn cleanup(&self, keep: &HashSet<String>) -> Result<(), GraphError> {
        let entries = fs::read_dir(&self.home).map_err(io_error(&self.home))?;
        for entry in entries {
            let entry = entry.map_err(io_error(&self.home))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let leftover = name.ends_with("-tmp")
                || name.contains("-removing-")
                || name.starts_with("probe-")
                || (is_layer_name(&name) && !keep.contains(&name));
            if !leftover {
                continue;
            }
            tracing::info!(path = %path.display(), "removing a leftover layer dir");
            let _ = crate::sys::fs::unmount_detached(&path.join("merged"));
            match fs::remove_dir_all(&path) {
                // A background removal of this process may be at it too.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                res => res.map_err(io_error(&path))?,
            }
        }
        Ok(())
    }

    /// Unmounts container rootfs mounts that are visible in our namespace (none in
    /// normal operation: containers mount inside their own namespace).
    pub fn unmount_all(&self, mount_ids: &[String]) {
        if self.kind != DriverKind::Overlay2 {
            return;
        }
        for id in mount_ids {
            let merged = self.home.join(id).join("merged");
            if is_mountpoint(&merged) {
                if let Err(e) = crate::sys::fs::unmount_detached(&merged) {
                    tracing::warn!(path = %merged.display(), error = %e, "unmount failed");
                }
            }
        }
    }
}

fn is_mountpoint(p: &Path) -> bool {
    let (Ok(me), Some(parent)) = (fs::symlink_metadata(p), p.parent()) else {
        return false;
    };
    fs::symlink_metadata(parent).is_ok_and(|pm| pm.dev() != me.dev() || pm.ino() == me.ino())
}

fn mkdir(p: &Path, mode: u32) -> Result<(), GraphError> {
    fs::create_dir_all(p).map_err(io_error(p))?;
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(io_error(p))
}

/// Whether `rel` is one of the mount points a container layer gets (or a parent of
/// one): what overlay2 keeps in the init layer, not among a container's changes.
pub fn is_mountpoint_path(rel: &Path) -> bool {
    MOUNTPOINTS
        .iter()
        .any(|(p, _)| Path::new(p).starts_with(rel))
}

/// Creates in `dir` each mount point that none of `lowers` has. A directory made as a
/// parent copies the mode and owner of the same directory in the top lower that has
/// it, so that it does not change how the merged directory looks.
fn add_mountpoints(dir: &Path, lowers: &[PathBuf]) -> Result<(), GraphError> {
    'next: for (rel, is_dir) in MOUNTPOINTS {
        // Skip when any lower has the path, or has a parent that is not a directory.
        let rel = Path::new(rel);
        for lower in lowers {
            let mut cur = PathBuf::new();
            for comp in rel.components() {
                cur.push(comp);
                match fs::symlink_metadata(lower.join(&cur)) {
                    Ok(_) if cur == rel => continue 'next,
                    Ok(m) if !m.is_dir() => continue 'next,
                    _ => {}
                }
            }
        }
        let target = dir.join(rel);
        if let Some(parent) = rel.parent() {
            let mut cur = PathBuf::new();
            for comp in parent.components() {
                cur.push(comp);
                let p = dir.join(&cur);
                if p.is_dir() {
                    continue;
                }
                let like = lowers.iter().find_map(|l| {
                    fs::symlink_metadata(l.join(&cur))
                        .ok()
                        .filter(|m| m.is_dir())
                });
                fs::create_dir(&p).map_err(io_error(&p))?;
                if let Some(m) = like {
                    fs::set_permissions(&p, fs::Permissions::from_mode(m.mode() & 0o7777))
                        .map_err(io_error(&p))?;
                    std::os::unix::fs::lchown(&p, Some(m.uid()), Some(m.gid()))
                        .map_err(io_error(&p))?;
                }
            }
        }
        if *is_dir {
            mkdir(&target, 0o755)?;
        } else {
            fs::write(&target, b"").map_err(io_error(&target))?;
            fs::set_permissions(&target, fs::Permissions::from_mode(0o644))
                .map_err(io_error(&target))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_drivers() {
        let tmp = tempfile::tempdir().unwrap();
        let err = select(tmp.path(), Some("aufs"), None).unwrap_err();
        assert!(matches!(err, GraphError::UnknownDriver { .. }));
        assert_eq!(err.kind(), crate::error::ErrorKind::InvalidParameter);
        let d = select(tmp.path(), None, Some("vfs")).unwrap();
        assert_eq!(d.kind, DriverKind::Vfs);
        assert!(tmp.path().join("vfs").is_dir());
        // The flag wins over the environment.
        let err = select(tmp.path(), Some("nope"), Some("vfs")).unwrap_err();
        assert!(matches!(err, GraphError::UnknownDriver { .. }));
    }

    #[test]
    fn prior_state_is_preferred() {
        let tmp = tempfile::tempdir().unwrap();
        let layers = tmp.path().join("image/vfs/layerdb/sha256/abc");
        fs::create_dir_all(&layers).unwrap();
        let d = select(tmp.path(), None, None).unwrap();
        assert_eq!(d.kind, DriverKind::Vfs);
        assert!(!tmp.path().join("overlay2").exists());
    }

    #[test]
    fn vfs_rw_layer_copies_and_adds_mountpoints() {
        let tmp = tempfile::tempdir().unwrap();
        let d = probe(DriverKind::Vfs, tmp.path()).unwrap();
        let (id, content) = d.new_layer().unwrap();
        fs::create_dir_all(content.join("etc")).unwrap();
        fs::write(content.join("etc/hosts"), b"image hosts").unwrap();
        fs::create_dir(content.join("bin")).unwrap();
        fs::write(content.join("bin/sh"), b"sh").unwrap();
        std::os::unix::fs::symlink("sh", content.join("bin/ash")).unwrap();
        d.commit(&id).unwrap();
        let mount_id = crate::util::new_id();
        let (init, spec) = d.create_rw(&mount_id, std::slice::from_ref(&id)).unwrap();
        assert!(init.is_none());
        assert_eq!(spec.fstype, "bind");
        let dir = d.content_dir(&mount_id);
        assert_eq!(spec.target, dir);
        assert_eq!(fs::read(dir.join("bin/sh")).unwrap(), b"sh");
        assert_eq!(fs::read_link(dir.join("bin/ash")).unwrap(), Path::new("sh"));
        assert_eq!(fs::read(dir.join("etc/hosts")).unwrap(), b"image hosts");
        assert!(dir.join("proc").is_dir());
        assert!(dir.join("dev/pts").is_dir());
        assert!(dir.join("etc/resolv.conf").is_file());
        // The image layer is untouched.
        assert!(!d.content_dir(&id).join("proc").exists());
        d.remove(&mount_id).unwrap();
        d.remove(&mount_id).unwrap();
        assert!(!d.home.join(&mount_id).exists());
    }

    #[test]
    fn overlay_rw_layer_layout_without_mounting() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("overlay2");
        fs::create_dir_all(&home).unwrap();
        let d = Driver {
            kind: DriverKind::Overlay2,
            home: home.clone(),
            status: Vec::new(),
        };
        let (id, content) = d.new_layer().unwrap();
        fs::create_dir_all(content.join("etc")).unwrap();
        std::os::unix::fs::symlink("/run/x", content.join("etc/resolv.conf")).unwrap();
        d.commit(&id).unwrap();
        let mount_id = crate::util::new_id();
        let (init, spec) = d.create_rw(&mount_id, std::slice::from_ref(&id)).unwrap();
        let init = init.unwrap();
        assert_eq!(init, format!("{id}-init"), "the image's init layer");
        assert_eq!(spec.fstype, "overlay");
        let want = format!(
            "lowerdir={}:{},upperdir={}/diff,workdir={}/work",
            home.join(&init).join("diff").display(),
            home.join(&id).join("diff").display(),
            home.join(&mount_id).display(),
            home.join(&mount_id).display()
        );
        assert_eq!(spec.options, want);
        assert_eq!(spec.target, home.join(&mount_id).join("merged"));
        let init_diff = home.join(&init).join("diff");
        assert!(init_diff.join("proc").is_dir());
        assert!(init_diff.join("etc/hosts").is_file());
        // The image's own resolv.conf (a symlink) is not shadowed.
        assert!(!init_diff.join("etc/resolv.conf").exists());

        // A second container of the image shares the init layer, as it is.
        fs::write(init_diff.join(".mark"), "").unwrap();
        let other = crate::util::new_id();
        let (init2, spec2) = d.create_rw(&other, std::slice::from_ref(&id)).unwrap();
        assert_eq!(init2.as_deref(), Some(init.as_str()));
        assert!(
            init_diff.join(".mark").exists(),
            "the init layer was made again"
        );
        assert!(
            spec2
                .options
                .starts_with(&format!("lowerdir={}:", init_diff.display()))
        );
        assert_eq!(spec2.target, home.join(&other).join("merged"));
        let mut names: Vec<String> = fs::read_dir(&home)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut want = vec![id.clone(), init, mount_id, other];
        want.sort();
        assert_eq!(names, want);
    }

    #[test]
    fn image_metadata_names_the_layer_dirs() {
        let overlay = Driver {
            kind: DriverKind::Overlay2,
            home: PathBuf::from("/r/overlay2"),
            status: Vec::new(),
        };
        let one = overlay.image_metadata(&["a".into()]);
        assert_eq!(one.len(), 1);
        assert_eq!(one["UpperDir"], "/r/overlay2/a/diff");
        let three = overlay.image_metadata(&["c".into(), "b".into(), "a".into()]);
        assert_eq!(three["UpperDir"], "/r/overlay2/c/diff");
        assert_eq!(three["LowerDir"], "/r/overlay2/b/diff:/r/overlay2/a/diff");
        let vfs = Driver {
            kind: DriverKind::Vfs,
            home: PathBuf::from("/r/vfs"),
            status: Vec::new(),
        };
        assert!(vfs.image_metadata(&["a".into()]).is_empty());
    }

    #[test]
    fn doom_renames_the_layer_and_its_temp_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let d = probe(DriverKind::Vfs, tmp.path()).unwrap();
        let id = crate::util::new_id();
        for name in [id.clone(), format!("{id}-tmp")] {
            fs::create_dir_all(d.home.join(name).join("dir/etc")).unwrap();
        }
        let mut doomed = Vec::new();
        d.doom(&id, &mut doomed).unwrap();
        assert_eq!(doomed.len(), 2);
        for p in &doomed {
            assert!(p.join("dir/etc").is_dir());
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.starts_with(&format!("{id}-removing-")), "{name}");
        }
        assert!(!d.layer_exists(&id));
        assert!(!d.tmp_dir(&id).exists());
        d.doom(&id, &mut doomed).unwrap();
        assert_eq!(doomed.len(), 2, "nothing more to rename");
        // What a crash leaves before the deletion, cleanup removes.
        d.cleanup(&HashSet::new()).unwrap();
        assert_eq!(fs::read_dir(&d.home).unwrap().count(), 0);
    }

    #[test]
    fn cleanup_removes_leftovers_only() {
        let tmp = tempfile::tempdir().unwrap();
        let d = probe(DriverKind::Vfs, tmp.path()).unwrap();
        let keep_id = crate::util::new_id();
        let orphan = crate::util::new_id();
        for name in [
            keep_id.clone(),
            orphan.clone(),
            // A container layer renamed into place whose metadata a crash cut short.
            format!("{orphan}-init"),
            format!("{}-tmp", crate::util::new_id()),
            format!("{}-removing-abcd", crate::util::new_id()),
            "unrelated".to_owned(),
        ] {
            fs::create_dir_all(d.home.join(name).join("dir")).unwrap();
        }
        let keep: HashSet<String> = [keep_id.clone()].into();
        d.cleanup(&keep).unwrap();
        let mut left: Vec<String> = fs::read_dir(&d.home)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want = vec![keep_id, "unrelated".to_owned()];
        want.sort();
        assert_eq!(left, want);
    }
}
