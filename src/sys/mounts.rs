//! The container's filesystem, made by its init inside its own mount namespace: the
//! rootfs, /proc, /sys, /dev and friends, the extra mounts, `pivot_root`, then Docker's
//! masked and read-only paths. Nothing here is visible on the host, and nothing needs to
//! be unmounted after the container exits: the namespace goes away with its last process.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};

use super::SysError;
use crate::model::spec::{MountSpec, RootfsSpec};

/// The device nodes of a container's /dev: name, major, minor.
const DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

fn mnt(
    source: Option<&str>,
    target: &Path,
    shown: &str,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), SysError> {
    mount(source, target, fstype, flags, data).map_err(|e| SysError::Mount {
        source_name: source.or(fstype).unwrap_or("").to_owned(),
        target: PathBuf::from(shown),
        source: io::Error::from(e),
    })
}

fn mkdir_all(path: &Path) -> Result<(), SysError> {
    fs::create_dir_all(path).map_err(|source| SysError::Create {
        path: path.to_path_buf(),
        source,
    })
}

/// Joins `unsafe_path` to `root`, resolving `..` and symlinks as if `root` were `/`, so
/// the result never leaves `root` (a container's /etc/resolv.conf may be a symlink).
pub fn secure_join(root: &Path, unsafe_path: &str) -> PathBuf {
    let mut parts: Vec<OsString> = Vec::new();
    let mut pending: VecDeque<OsString> = comps(Path::new(unsafe_path));
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            parts.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&parts);
        candidate.push(&c);
        match fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() && links < 255 => {
                links += 1;
                let Ok(target) = fs::read_link(&candidate) else {
                    parts.push(c);
                    continue;
                };
                if target.is_absolute() {
                    parts.clear();
                }
                let mut rest = comps(&target);
                rest.extend(pending);
                pending = rest;
            }
            _ => parts.push(c),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(parts);
    out
}

fn comps(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// Splits OCI-style mount options into flags, propagation flags and fs data.
pub fn parse_mount_options(options: &[String]) -> (MsFlags, MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut prop = MsFlags::empty();
    let mut data: Vec<&str> = Vec::new();
    for o in options {
        match o.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" | "defaults" => {}
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "nodiratime" => flags |= MsFlags::MS_NODIRATIME,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "dirsync" => flags |= MsFlags::MS_DIRSYNC,
            // The kernel's defaults (a tmpfs option merge removed their opposites).
            "exec" | "suid" | "dev" | "async" | "atime" | "diratime" => {}
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "private" => prop |= MsFlags::MS_PRIVATE,
            "rprivate" => prop |= MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            "slave" => prop |= MsFlags::MS_SLAVE,
            "rslave" => prop |= MsFlags::MS_SLAVE | MsFlags::MS_REC,
            "shared" => prop |= MsFlags::MS_SHARED,
            "rshared" => prop |= MsFlags::MS_SHARED | MsFlags::MS_REC,
            other => data.push(other),
        }
    }
    (flags, prop, data.join(","))
}

/// The mount options of `/dev/shm`: `shm_size` bytes (Docker's 64 MiB when 0).
fn shm_options(shm_size: u64) -> String {
    if shm_size == 0 {
        "mode=1777,size=65536k".to_owned()
    } else {
        format!("mode=1777,size={shm_size}")
    }
}

/// Before `pivot_root`: makes the namespace's mounts private, mounts the rootfs at its
/// target and everything the container sees below it (`/dev/shm` of `shm_size` bytes).
pub fn prepare_rootfs(
    rootfs: &RootfsSpec,
    mounts: &[MountSpec],
    new_netns: bool,
    shm_size: u64,
) -> Result<(), SysError> {
    mnt(
        None,
        Path::new("/"),
        "/",
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )?;
    let root = rootfs.target.as_path();
    mount_rootfs_at_target(rootfs)?;

    let nse = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    let proc_dir = root.join("proc");
    mkdir_all(&proc_dir)?;
    mnt(Some("proc"), &proc_dir, "/proc", Some("proc"), nse, None)?;

    let sys_dir = root.join("sys");
    mkdir_all(&sys_dir)?;
    let sys = mnt(
        Some("sysfs"),
        &sys_dir,
        "/sys",
        Some("sysfs"),
        nse | MsFlags::MS_RDONLY,
        None,
    );
    if sys.is_err() && !new_netns {
        // Sharing the host's network namespace: bind the host's /sys read-only instead.
        mnt(
            Some("/sys"),
            &sys_dir,
            "/sys",
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        mnt(
            None,
            &sys_dir,
            "/sys",
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | nse,
            None,
        )?;
    } else {
        sys?;
    }

    let dev = root.join("dev");
    mkdir_all(&dev)?;
    mnt(
        Some("tmpfs"),
        &dev,
        "/dev",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    for (name, major, minor) in DEVICES {
        make_device(&dev, name, *major, *minor)?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
        ("core", "/proc/kcore"),
    ] {
        let p = dev.join(link);
        symlink(to, &p).map_err(|source| SysError::Create { path: p, source })?;
    }
    let pts = dev.join("pts");
    mkdir_all(&pts)?;
    mnt(
        Some("devpts"),
        &pts,
        "/dev/pts",
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )?;
    let shm = dev.join("shm");
    mkdir_all(&shm)?;
    mnt(
        Some("shm"),
        &shm,
        "/dev/shm",
        Some("tmpfs"),
        nse,
        Some(&shm_options(shm_size)),
    )?;
    let mq = dev.join("mqueue");
    mkdir_all(&mq)?;
    mnt(
        Some("mqueue"),
        &mq,
        "/dev/mqueue",
        Some("mqueue"),
        nse,
        None,
    )?;

    for m in mounts {
        extra_mount(root, m)?;
    }
    Ok(())
}

fn make_device(dev: &Path, name: &str, major: u64, minor: u64) -> Result<(), SysError> {
    let p = dev.join(name);
    let mode = Mode::from_bits_truncate(0o666);
    match mknod(&p, SFlag::S_IFCHR, mode, makedev(major, minor)) {
        Ok(()) => fs::set_permissions(&p, fs::Permissions::from_mode(0o666))
            .map_err(|source| SysError::Create { path: p, source }),
        Err(_) => {
            // No mknod (e.g. a user namespace): bind the host's node on an empty file.
            fs::File::create(&p).map_err(|source| SysError::Create {
                path: p.clone(),
                source,
            })?;
            let host = format!("/dev/{name}");
            let shown = format!("/dev/{name}");
            mnt(Some(&host), &p, &shown, None, MsFlags::MS_BIND, None)
        }
    }
}

/// A volume's first use: when its dir is empty, it gets what the image has at the mount's
/// path (owners, modes and all), as dockerd fills a new volume from the image. Symlinks are
/// copied as links, never followed. Nothing at that path, or no directory: nothing to do.
pub fn copy_up(root: &Path, m: &MountSpec) -> Result<(), SysError> {
    let src = secure_join(root, &m.destination);
    if !fs::symlink_metadata(&src).is_ok_and(|md| md.is_dir()) {
        return Ok(());
    }
    let empty = fs::read_dir(&m.source).is_ok_and(|mut d| d.next().is_none());
    if !empty {
        return Ok(());
    }
    crate::actors::graph::copy::copy_contents(&src, &m.source).map_err(|e| SysError::Write {
        path: m.source.clone(),
        source: io::Error::other(crate::util::error_chain(&e)),
    })
}

fn extra_mount(root: &Path, m: &MountSpec) -> Result<(), SysError> {
    if m.copy_up {
        copy_up(root, m)?;
    }
    let dest = secure_join(root, &m.destination);
    let (mut flags, prop, data) = parse_mount_options(&m.options);
    let is_bind = m.fstype == "bind" || flags.contains(MsFlags::MS_BIND);
    let src_is_dir = !is_bind
        || fs::metadata(&m.source)
            .map(|md| md.is_dir())
            .unwrap_or(true);
    if src_is_dir {
        mkdir_all(&dest)?;
    } else if fs::symlink_metadata(&dest).is_err() {
        if let Some(parent) = dest.parent() {
            mkdir_all(parent)?;
        }
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&dest)
            .map_err(|source| SysError::Create {
                path: PathBuf::from(&m.destination),
                source,
            })?;
    }
    let src = m.source.to_string_lossy();
    if is_bind {
        flags |= MsFlags::MS_BIND;
        let rec = flags & MsFlags::MS_REC;
        mnt(
            Some(&src),
            &dest,
            &m.destination,
            None,
            MsFlags::MS_BIND | rec,
            None,
        )?;
        let extra = flags
            & (MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
        if !extra.is_empty() {
            mnt(
                None,
                &dest,
                &m.destination,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | rec | extra,
                None,
            )?;
        }
    } else {
        let data = (!data.is_empty()).then_some(data.as_str());
        mnt(
            Some(&src),
            &dest,
            &m.destination,
            Some(&m.fstype),
            flags,
            data,
        )?;
    }
    if !prop.is_empty() {
        mnt(None, &dest, &m.destination, None, prop, None)?;
    }
    Ok(())
}

/// For the oci exec driver: moves the calling process (the single-threaded monitor) into
/// a mount namespace of its own, a slave of the host's (the host's mounts and unmounts
/// reach it, nothing mounted in it reaches the host), and mounts the rootfs at its target
/// there, for the OCI runtime the monitor runs to find. Returns whether it mounted
/// anything (a vfs rootfs is a plain directory: the runtime bind-mounts it itself).
pub fn mount_rootfs_apart(rootfs: &RootfsSpec) -> Result<bool, SysError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| SysError::call("unshare(CLONE_NEWNS)", e))?;
    mnt(
        None,
        Path::new("/"),
        "/",
        None,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None,
    )?;
    if rootfs.fstype == "bind" {
        return Ok(false);
    }
    let data = (!rootfs.options.is_empty()).then_some(rootfs.options.as_str());
    let target = rootfs.target.display().to_string();
    mnt(
        Some(&rootfs.source),
        &rootfs.target,
        &target,
        Some(&rootfs.fstype),
        MsFlags::empty(),
        data,
    )?;
    Ok(true)
}

/// Mounts a container's rootfs (its overlay, or a bind of a vfs dir) at its target.
fn mount_rootfs_at_target(rootfs: &RootfsSpec) -> Result<(), SysError> {
    let root = rootfs.target.as_path();
    if rootfs.fstype == "bind" {
        mnt(
            Some(&rootfs.source),
            root,
            "/",
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
    } else {
        let data = (!rootfs.options.is_empty()).then_some(rootfs.options.as_str());
        mnt(
            Some(&rootfs.source),
            root,
            "/",
            Some(&rootfs.fstype),
            MsFlags::empty(),
            data,
        )?;
    }
    Ok(())
}

/// For `docker cp` on a container that does not run, on a thread that has just entered a
/// private mount namespace of its own ([`super::namespaces::unshare_private_mount_ns`]):
/// mounts the container's rootfs at its target and, below it, its binds and volumes (an
/// empty volume filled from the image first, as its first start would), as dockerd mounts
/// them for a copy. Tmpfs mounts are left out: they hold nothing while the container is
/// stopped. Returns the rootfs's directory. Nothing of it shows on the host, and all of
/// it goes with the namespace when the thread ends.
pub fn mount_container_fs(rootfs: &RootfsSpec, mounts: &[MountSpec]) -> Result<PathBuf, SysError> {
    let root = rootfs.target.as_path();
    mount_rootfs_at_target(rootfs)?;
    for m in mounts.iter().filter(|m| m.fstype != "tmpfs") {
        extra_mount(root, m)?;
    }
    Ok(root.to_path_buf())
}

/// The overlay options that show a container's layers read-only: its upper dir becomes
/// the top lower dir and there is no upper or work dir. Such a mount takes no lock on
/// the layer's dirs, so it can sit beside the container's own mount, running or not.
/// `None` when `options` has no `upperdir`.
pub fn readonly_overlay_options(options: &str) -> Option<String> {
    let mut lower = None;
    let mut upper = None;
    let mut rest = Vec::new();
    for o in options.split(',') {
        if let Some(v) = o.strip_prefix("lowerdir=") {
            lower = Some(v);
        } else if let Some(v) = o.strip_prefix("upperdir=") {
            upper = Some(v);
        } else if o.starts_with("workdir=") || o.is_empty() {
        } else {
            rest.push(o);
        }
    }
    let upper = upper?;
    let mut out = match lower {
        Some(l) if !l.is_empty() => format!("lowerdir={upper}:{l}"),
        _ => format!("lowerdir={upper}"),
    };
    for o in rest {
        out.push(',');
        out.push_str(o);
    }
    Some(out)
}

/// For `docker export`, on a thread in a private mount namespace: the container's layers
/// alone, read-only, without its mounts (see [`readonly_overlay_options`]); a vfs rootfs
/// is bound read-only. Returns the directory to read.
pub fn mount_layers_readonly(rootfs: &RootfsSpec) -> Result<PathBuf, SysError> {
    let root = rootfs.target.as_path();
    if rootfs.fstype == "bind" {
        mnt(
            Some(&rootfs.source),
            root,
            "/",
            None,
            MsFlags::MS_BIND,
            None,
        )?;
        mnt(
            None,
            root,
            "/",
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )?;
        return Ok(root.to_path_buf());
    }
    let opts = readonly_overlay_options(&rootfs.options).ok_or_else(|| SysError::Mount {
        source_name: rootfs.source.clone(),
        target: root.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "no upperdir in the options"),
    })?;
    mnt(
        Some(&rootfs.source),
        root,
        "/",
        Some(&rootfs.fstype),
        MsFlags::MS_RDONLY,
        Some(&opts),
    )?;
    Ok(root.to_path_buf())
}

/// Detaches the mount at `target` (lazily: it goes once nothing uses it).
pub fn detach(target: &Path) -> Result<(), SysError> {
    umount2(target, MntFlags::MNT_DETACH).map_err(|e| SysError::Unmount {
        target: target.to_path_buf(),
        source: e.into(),
    })
}

/// Makes `new_root` the process's `/` and detaches the old root.
pub fn pivot_root(new_root: &Path) -> Result<(), SysError> {
    let err = |source: io::Error| SysError::PivotRoot {
        path: new_root.to_path_buf(),
        source,
    };
    nix::unistd::chdir(new_root).map_err(|e| err(e.into()))?;
    // pivot_root(".", "."): the old root ends up stacked on top of the new one, where it
    // can be detached without needing a directory for it.
    nix::unistd::pivot_root(".", ".").map_err(|e| err(e.into()))?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| err(e.into()))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| SysError::Unmount {
        target: PathBuf::from("/"),
        source: e.into(),
    })?;
    nix::unistd::chdir("/").map_err(|e| err(e.into()))?;
    Ok(())
}

/// After `pivot_root`: the `masked` paths hidden (an empty read-only tmpfs on a
/// directory, /dev/null on anything else), the `readonly` paths made read-only
/// (`HostConfig.MaskedPaths` and `ReadonlyPaths`; paths that do not exist are skipped),
/// then the read-only root if asked.
pub fn finish_rootfs(
    readonly_rootfs: bool,
    masked: &[String],
    readonly: &[String],
) -> Result<(), SysError> {
    for p in masked {
        let path = Path::new(p);
        let Ok(md) = fs::metadata(path) else { continue };
        if md.is_dir() {
            mnt(
                Some("tmpfs"),
                path,
                p,
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                None,
            )?;
        } else {
            mnt(Some("/dev/null"), path, p, None, MsFlags::MS_BIND, None)?;
        }
    }
    for p in readonly {
        let path = Path::new(p);
        if fs::symlink_metadata(path).is_err() {
            continue;
        }
        mnt(
            Some(p.as_str()),
            path,
            p,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )?;
        mnt(
            None,
            path,
            p,
            None,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC
                | MsFlags::MS_REC,
            None,
        )?;
    }
    if readonly_rootfs {
        mnt(
            None,
            Path::new("/"),
            "/",
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_join_stays_in_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("run/x")).unwrap();
        symlink("/run/x/resolv.conf", root.join("etc/resolv.conf")).unwrap();
        symlink("../../../../..", root.join("etc/up")).unwrap();
        assert_eq!(secure_join(root, "/etc/hosts"), root.join("etc/hosts"));
        assert_eq!(
            secure_join(root, "/etc/resolv.conf"),
            root.join("run/x/resolv.conf")
        );
        assert_eq!(
            secure_join(root, "/../../etc/passwd"),
            root.join("etc/passwd")
        );
        assert_eq!(secure_join(root, "/etc/up/tmp"), root.join("tmp"));
    }

    #[test]
    fn readonly_overlay_has_no_upper() {
        assert_eq!(
            readonly_overlay_options("lowerdir=/a:/b,upperdir=/u,workdir=/w").as_deref(),
            Some("lowerdir=/u:/a:/b")
        );
        assert_eq!(
            readonly_overlay_options("upperdir=/u,workdir=/w,index=off").as_deref(),
            Some("lowerdir=/u,index=off")
        );
        assert_eq!(readonly_overlay_options("lowerdir=/a"), None);
    }

    #[test]
    fn mount_options_split() {
        let o: Vec<String> = ["rbind", "ro", "rprivate", "mode=755"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (f, p, d) = parse_mount_options(&o);
        assert!(f.contains(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY));
        assert_eq!(p, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(d, "mode=755");
    }
}
