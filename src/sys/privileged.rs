//! What `--privileged` opens in a container's filesystem, done by its init before
//! `pivot_root`: every device node of the host in the container's /dev (as runc's
//! `HostDevices`), and /sys writable. The oci driver's bundle lists the same nodes
//! ([`host_devices`]) for the runtime to make.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, SFlag, mknod};
use nix::unistd::{Gid, Uid, chown};

use super::SysError;

/// Directories of the host's /dev that are not device nodes to copy (runc's list).
const SKIPPED_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// Whether the entry `name` of the host's /dev stays out of a privileged container.
fn skipped(name: &std::ffi::OsStr, is_dir: bool) -> bool {
    if is_dir {
        SKIPPED_DIRS.iter().any(|d| name == *d)
    } else {
        name == "console"
    }
}

/// Every character and block device under `host_dev` (the host's /dev), as
/// [`copy_host_devices`] makes them, with its path under `in_container` (`/dev`) and
/// `rwm` access, sorted by path.
pub fn host_devices(host_dev: &Path, in_container: &str) -> Vec<super::devices::HostDevice> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(host_dev) else {
        return out;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name();
        let Ok(ft) = entry.file_type() else {
            continue;
        };
        if skipped(&name, ft.is_dir()) {
            continue;
        }
        let to = format!("{in_container}/{}", name.to_string_lossy());
        if ft.is_dir() {
            out.extend(host_devices(&entry.path(), &to));
        } else if let Ok(Some(d)) = super::devices::device_at(&entry.path(), to, "rwm") {
            out.push(d);
        }
    }
    out
}

/// Makes every character and block device under `host_dev` (the host's /dev) in `dev`
/// (the container's /dev), with the host's major, minor, mode and owner. Nodes the
/// container already has (null, zero, …, the ptmx link) are kept; `console` is left
/// out, as are the directories of [`SKIPPED_DIRS`] and everything that is not a device.
pub fn copy_host_devices(host_dev: &Path, dev: &Path) -> Result<(), SysError> {
    let entries = match fs::read_dir(host_dev) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(SysError::Create {
                path: host_dev.to_path_buf(),
                source,
            });
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let (from, to) = (entry.path(), dev.join(&name));
        let Ok(md) = fs::symlink_metadata(&from) else {
            continue;
        };
        let ft = md.file_type();
        if skipped(&name, ft.is_dir()) {
            continue;
        }
        if ft.is_dir() {
            match fs::create_dir(&to) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => return Err(SysError::Create { path: to, source }),
            }
            copy_host_devices(&from, &to)?;
            continue;
        }
        let kind = if ft.is_char_device() {
            SFlag::S_IFCHR
        } else if ft.is_block_device() {
            SFlag::S_IFBLK
        } else {
            continue;
        };
        let perm = Mode::from_bits_truncate(md.mode() & 0o7777);
        match mknod(&to, kind, perm, md.rdev()) {
            Ok(()) => {}
            Err(nix::errno::Errno::EEXIST) => continue,
            Err(e) => {
                return Err(SysError::Create {
                    path: to,
                    source: e.into(),
                });
            }
        }
        fs::set_permissions(&to, fs::Permissions::from_mode(md.mode() & 0o7777)).map_err(
            |source| SysError::Create {
                path: to.clone(),
                source,
            },
        )?;
        chown(
            &to,
            Some(Uid::from_raw(md.uid())),
            Some(Gid::from_raw(md.gid())),
        )
        .map_err(|e| SysError::Create {
            path: to.clone(),
            source: e.into(),
        })?;
    }
    Ok(())
}

/// Makes the container's /sys (at `sys`, mounted read-only) writable: a remount without
/// `MS_RDONLY` (a sysfs of its own network namespace), or of the bind of the host's /sys
/// (host networking).
pub fn make_sys_writable(sys: &Path) -> Result<(), SysError> {
    let nse = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    let remount = |extra: MsFlags| {
        mount(
            None::<&str>,
            sys,
            None::<&str>,
            MsFlags::MS_REMOUNT | nse | extra,
            None::<&str>,
        )
    };
    remount(MsFlags::empty())
        .or_else(|_| remount(MsFlags::MS_BIND))
        .map_err(|e| SysError::Mount {
            source_name: "sysfs".to_owned(),
            target: "/sys".into(),
            source: e.into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_devices_are_copied_and_skipped_dirs_stay_out() {
        if !crate::test_ledger::root_or_skip(module_path!(), "mknod needs root") {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let host = t.path().join("host");
        let ctr = t.path().join("ctr");
        for d in ["", "sub", "pts", "shm"] {
            fs::create_dir_all(host.join(d)).unwrap();
        }
        fs::create_dir_all(&ctr).unwrap();
        let null = nix::sys::stat::makedev(1, 3);
        let mode = Mode::from_bits_truncate(0o640);
        mknod(&host.join("null2"), SFlag::S_IFCHR, mode, null).unwrap();
        mknod(
            &host.join("sub/zero2"),
            SFlag::S_IFCHR,
            mode,
            nix::sys::stat::makedev(1, 5),
        )
        .unwrap();
        mknod(&host.join("pts/x"), SFlag::S_IFCHR, mode, null).unwrap();
        mknod(&host.join("console"), SFlag::S_IFCHR, mode, null).unwrap();
        fs::write(host.join("plain"), b"x").unwrap();
        std::os::unix::fs::symlink("null2", host.join("link")).unwrap();
        copy_host_devices(&host, &ctr).unwrap();
        let md = fs::metadata(ctr.join("null2")).unwrap();
        assert!(md.file_type().is_char_device());
        assert_eq!(md.rdev(), null);
        assert_eq!(md.mode() & 0o7777, 0o640);
        assert!(ctr.join("sub/zero2").exists());
        for absent in ["pts", "shm", "console", "plain", "link"] {
            assert!(fs::symlink_metadata(ctr.join(absent)).is_err(), "{absent}");
        }
        // Again: what exists is kept.
        copy_host_devices(&host, &ctr).unwrap();
        // The bundle's list: the same nodes.
        let listed: Vec<(String, char, u32, u32, u32)> = host_devices(&host, "/dev")
            .into_iter()
            .map(|d| (d.path, d.kind, d.major, d.minor, d.mode))
            .collect();
        assert_eq!(
            listed,
            [
                ("/dev/null2".to_owned(), 'c', 1, 3, 0o640),
                ("/dev/sub/zero2".to_owned(), 'c', 1, 5, 0o640)
            ]
        );
    }
}
