//! The file system calls the graph makes on the data root that `std::fs` has no word for:
//! device nodes, the times of a path that may be a symlink, `syncfs`, the backing
//! filesystem and its `d_type`, the overlay probe's test mount, detached unmounts, and
//! turning `O_DIRECT` off on an open file.
//!
//! Each call returns the `io::Error` of its errno; the caller names the path (its own
//! error enum already carries it), so the messages stay those of the caller.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev, mknod, utimensat};
use nix::sys::statfs::{self, FsType, statfs};
use nix::sys::time::TimeSpec;

/// The kind of a special file made by [`make_node`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    CharDevice,
    BlockDevice,
    Fifo,
}

/// The device number of `major:minor`, as `st_rdev` holds it.
pub fn device_number(major: u64, minor: u64) -> u64 {
    makedev(major, minor)
}

/// Makes the special file `path` (`mknod`) with the permission bits of `mode` (the file
/// type bits are ignored) and, for a device, the device number `rdev`. The umask applies,
/// as it does to `mknod`.
pub fn make_node(path: &Path, kind: NodeKind, mode: u32, rdev: u64) -> io::Result<()> {
    let kind = match kind {
        NodeKind::CharDevice => SFlag::S_IFCHR,
        NodeKind::BlockDevice => SFlag::S_IFBLK,
        NodeKind::Fifo => SFlag::S_IFIFO,
    };
    mknod(path, kind, Mode::from_bits_truncate(mode & 0o777), rdev).map_err(io::Error::from)
}

/// A point in time as `stat` reports it: seconds and nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileTime {
    pub secs: i64,
    pub nsecs: i64,
}

/// Sets the access and modification times of `path` without following it if it is a
/// symlink (`utimensat` with `AT_SYMLINK_NOFOLLOW`).
pub fn set_times_nofollow(path: &Path, atime: FileTime, mtime: FileTime) -> io::Result<()> {
    let atime = TimeSpec::new(atime.secs, atime.nsecs);
    let mtime = TimeSpec::new(mtime.secs, mtime.nsecs);
    utimensat(None, path, &atime, &mtime, UtimensatFlags::NoFollowSymlink).map_err(io::Error::from)
}

/// Writes out every dirty page and inode of the filesystem that holds `path` (`syncfs` on
/// a descriptor of `path`): one call instead of an fsync per file.
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    let f = File::open(path)?;
    nix::unistd::syncfs(f.as_raw_fd()).map_err(io::Error::from)
}

/// The filesystem that holds a path, as `statfs` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackingFs {
    /// The name dockerd shows for it (`extfs`, `xfs`, `btrfs`, `tmpfs`, `overlayfs`), or
    /// `<unknown 0x…>` with its magic number.
    pub name: String,
    /// It is overlayfs, which cannot hold overlay upper layers.
    pub is_overlay: bool,
}

/// The filesystem that holds `path` (`statfs`).
pub fn backing_fs(path: &Path) -> io::Result<BackingFs> {
    let magic = statfs(path).map_err(io::Error::from)?.filesystem_type();
    Ok(BackingFs {
        name: fs_name(magic),
        is_overlay: magic == statfs::OVERLAYFS_SUPER_MAGIC,
    })
}

/// The name dockerd shows for a backing filesystem magic number.
fn fs_name(magic: FsType) -> String {
    let known = [
        (statfs::EXT4_SUPER_MAGIC, "extfs"),
        (statfs::XFS_SUPER_MAGIC, "xfs"),
        (statfs::BTRFS_SUPER_MAGIC, "btrfs"),
        (statfs::TMPFS_MAGIC, "tmpfs"),
        (statfs::OVERLAYFS_SUPER_MAGIC, "overlayfs"),
    ];
    known.iter().find(|(m, _)| *m == magic).map_or_else(
        || format!("<unknown {:#x}>", magic.0),
        |(_, n)| (*n).to_owned(),
    )
}

/// Whether the directory `dir` lists the entry `name` with its type (`d_type` filled in
/// by the filesystem, which overlay needs); `false` when `name` is not listed.
pub fn lists_d_type(dir: &Path, name: &[u8]) -> io::Result<bool> {
    let mut d = nix::dir::Dir::open(dir, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty())?;
    for entry in d.iter() {
        let entry = entry?;
        if entry.file_name().to_bytes() == name {
            return Ok(entry.file_type().is_some());
        }
    }
    Ok(false)
}

/// Mounts a new filesystem of type `fstype` (its source named as the type) at `target`
/// with the mount data `data`: the overlay probe's test overlay
/// (`lowerdir=…,upperdir=…,workdir=…`), made inside a mount namespace of its own (see
/// [`super::namespaces::unshare_private_mount_ns`]), or a test's ramfs.
pub fn mount_filesystem(fstype: &str, target: &Path, data: Option<&str>) -> io::Result<()> {
    mount(Some(fstype), target, Some(fstype), MsFlags::empty(), data).map_err(io::Error::from)
}

/// Detaches the mount at `target` (`umount2` with `MNT_DETACH`): it goes from the
/// namespace now, and the filesystem once nothing uses it.
pub fn unmount_detached(target: &Path) -> io::Result<()> {
    umount2(target, MntFlags::MNT_DETACH).map_err(io::Error::from)
}

/// Turns `O_DIRECT` off for the writes that follow on `file` (`F_SETFL`).
pub fn clear_o_direct(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags - OFlag::O_DIRECT))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    #[test]
    fn make_node_makes_a_fifo_with_the_permission_bits() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("fifo");
        make_node(&p, NodeKind::Fifo, 0o10644, 0).unwrap();
        let m = std::fs::symlink_metadata(&p).unwrap();
        assert!(m.file_type().is_fifo());
        // The umask may take bits away, never add any.
        assert_eq!(m.permissions().mode() & 0o7777 & !0o644, 0);
        assert_eq!(m.permissions().mode() & 0o600, 0o600);
        let e = make_node(&p, NodeKind::Fifo, 0o644, 0).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn set_times_nofollow_sets_the_times_of_the_link_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        std::fs::write(&target, b"x").unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let before = std::fs::metadata(&target).unwrap().mtime();
        let t = FileTime {
            secs: 1_000_000,
            nsecs: 5,
        };
        set_times_nofollow(&link, t, t).unwrap();
        let m = std::fs::symlink_metadata(&link).unwrap();
        assert_eq!((m.mtime(), m.mtime_nsec()), (1_000_000, 5));
        assert_eq!(std::fs::metadata(&target).unwrap().mtime(), before);
    }

    #[test]
    fn device_number_matches_what_stat_reports() {
        let m = std::fs::metadata("/dev/null").unwrap();
        assert_eq!(m.rdev(), device_number(1, 3));
    }

    #[test]
    fn lists_d_type_finds_the_named_entry_only() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("marker"), b"x").unwrap();
        let fs = backing_fs(tmp.path()).unwrap();
        assert!(!fs.name.is_empty());
        assert!(!lists_d_type(tmp.path(), b"absent").unwrap());
        // Every filesystem a test's temp dir sits on fills in d_type.
        assert!(lists_d_type(tmp.path(), b"marker").unwrap());
        assert!(lists_d_type(&tmp.path().join("absent"), b"marker").is_err());
    }

    #[test]
    fn sync_filesystem_needs_the_path_to_exist() {
        let tmp = tempfile::tempdir().unwrap();
        sync_filesystem(tmp.path()).unwrap();
        let e = sync_filesystem(&tmp.path().join("absent")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
