//! Filesystem calls relative to an open directory, that never follow a symlink: how
//! berthd reads and writes inside a container's root (`docker cp`, `docker export`, see
//! `crate::containerfs`) without ever handing the kernel a path that could lead out of it.
//!
//! Every name given to a [`Dir`] method is one path component (no `/`, never `..`: the
//! caller's resolver walks `..` itself); the final component is never followed
//! (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`), so a symlink the container swaps in meanwhile
//! makes the call fail instead of reaching the host. Each call returns the `io::Error`
//! of its errno; the caller names the path.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{OFlag, openat, readlinkat, renameat};
use nix::sys::stat::{
    FileStat, Mode, SFlag, UtimensatFlags, fchmodat, fstat, fstatat, mkdirat, mknodat, utimensat,
};
use nix::sys::statfs::fstatfs;
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchownat, linkat, symlinkat, unlinkat};

use super::fs::FileTime;

/// The type of a directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

/// What `lstat` says of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub kind: Kind,
    /// The permission bits with setuid, setgid and sticky (`st_mode & 0o7777`).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: FileTime,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub rdev: u64,
}

impl Stat {
    fn of(st: &FileStat) -> Stat {
        let fmt = st.st_mode & libc::S_IFMT;
        let kind = match fmt {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFCHR => Kind::CharDevice,
            libc::S_IFBLK => Kind::BlockDevice,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            _ => Kind::File,
        };
        Stat {
            kind,
            perm: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime: FileTime {
                secs: st.st_mtime,
                nsecs: st.st_mtime_nsec,
            },
            dev: st.st_dev,
            ino: st.st_ino,
            nlink: st.st_nlink,
            rdev: st.st_rdev,
        }
    }
}

/// A pseudo filesystem (proc, sysfs, cgroup, …): a walk of a running container's root
/// shows such a directory but does not go into it, as dockerd's view of the rootfs has
/// nothing there.
pub fn is_pseudo_fs(dir: &Dir) -> bool {
    use nix::sys::statfs::{
        CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, DEBUGFS_MAGIC, DEVPTS_SUPER_MAGIC,
        PROC_SUPER_MAGIC, SECURITYFS_MAGIC, SYSFS_MAGIC,
    };
    let Ok(st) = fstatfs(dir.fd.as_fd()) else {
        return false;
    };
    let t = st.filesystem_type();
    [
        PROC_SUPER_MAGIC,
        SYSFS_MAGIC,
        CGROUP_SUPER_MAGIC,
        CGROUP2_SUPER_MAGIC,
        DEVPTS_SUPER_MAGIC,
        SECURITYFS_MAGIC,
        DEBUGFS_MAGIC,
    ]
    .contains(&t)
}

fn io(e: nix::Error) -> io::Error {
    io::Error::from(e)
}

/// Only a single, plain path component may be handed to the kernel.
fn check_name(name: &OsStr) -> io::Result<()> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a single path component"),
        ));
    }
    Ok(())
}

/// An open directory (`O_DIRECTORY`) that names are resolved against.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful `openat` and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

impl Dir {
    /// Opens the host directory `path` (a container's `/proc/<pid>/root`, a mount
    /// target). The path is followed as the host sees it: callers pass only paths of
    /// their own making.
    pub fn open_host(path: &Path) -> io::Result<Dir> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = openat(None, path, flags, Mode::empty()).map_err(io)?;
        Ok(Dir { fd: owned(fd) })
    }

    fn raw(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Another descriptor of the same directory.
    pub fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
        })
    }

    /// The entry `name`, not followed.
    pub fn open_dir(&self, name: &OsStr) -> io::Result<Dir> {
        check_name(name)?;
        let fd = openat(self.raw(), name, DIR_FLAGS, Mode::empty()).map_err(io)?;
        Ok(Dir { fd: owned(fd) })
    }

    /// `lstat` of `name`.
    pub fn stat(&self, name: &OsStr) -> io::Result<Stat> {
        check_name(name)?;
        let st = fstatat(self.raw(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).map_err(io)?;
        Ok(Stat::of(&st))
    }

    /// `fstat` of the directory itself.
    pub fn stat_self(&self) -> io::Result<Stat> {
        Ok(Stat::of(&fstat(self.fd.as_raw_fd()).map_err(io)?))
    }

    pub fn read_link(&self, name: &OsStr) -> io::Result<OsString> {
        check_name(name)?;
        readlinkat(self.raw(), name).map_err(io)
    }

    /// Opens the regular file `name` for reading; anything else (a fifo that would block,
    /// a symlink) is refused.
    pub fn open_file(&self, name: &OsStr) -> io::Result<File> {
        check_name(name)?;
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let fd = owned(openat(self.raw(), name, flags, Mode::empty()).map_err(io)?);
        let f = File::from(fd);
        if !f.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok(f)
    }

    /// Creates the regular file `name`, which must not exist, for writing.
    pub fn create_file(&self, name: &OsStr, mode: u32) -> io::Result<File> {
        check_name(name)?;
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(self.raw(), name, flags, Mode::from_bits_truncate(mode)).map_err(io)?;
        Ok(File::from(owned(fd)))
    }

    pub fn mkdir(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        check_name(name)?;
        mkdirat(self.raw(), name, Mode::from_bits_truncate(mode)).map_err(io)
    }

    /// Makes the symlink `name` holding `target` (never followed here).
    pub fn symlink(&self, target: &OsStr, name: &OsStr) -> io::Result<()> {
        check_name(name)?;
        symlinkat(target, self.raw(), name).map_err(io)
    }

    /// Hard-links `from` in `from_dir` (not followed) as `name` here.
    pub fn hard_link(&self, from_dir: &Dir, from: &OsStr, name: &OsStr) -> io::Result<()> {
        check_name(from)?;
        check_name(name)?;
        linkat(
            from_dir.raw(),
            from,
            self.raw(),
            name,
            nix::fcntl::AtFlags::empty(),
        )
        .map_err(io)
    }

    pub fn make_fifo(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        check_name(name)?;
        mknodat(
            self.raw(),
            name,
            SFlag::S_IFIFO,
            Mode::from_bits_truncate(mode & 0o777),
            0,
        )
        .map_err(io)
    }

    /// Removes `name`: a directory with `dir`, anything else without.
    pub fn remove(&self, name: &OsStr, dir: bool) -> io::Result<()> {
        check_name(name)?;
        let flag = if dir {
            UnlinkatFlags::RemoveDir
        } else {
            UnlinkatFlags::NoRemoveDir
        };
        unlinkat(self.raw(), name, flag).map_err(io)
    }

    /// Renames `from` to `to` in this directory, replacing a non-directory `to`.
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        check_name(from)?;
        check_name(to)?;
        renameat(self.raw(), from, self.raw(), to).map_err(io)
    }

    /// `lchown`.
    pub fn chown(&self, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
        check_name(name)?;
        fchownat(
            self.raw(),
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(io)
    }

    /// `chmod` of `name`, which must not be a symlink (Linux has no `lchmod`): it is
    /// opened with `O_PATH | O_NOFOLLOW` and changed through its descriptor, so a
    /// symlink put in its place is never followed.
    pub fn chmod(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        check_name(name)?;
        let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = owned(openat(self.raw(), name, flags, Mode::empty()).map_err(io)?);
        let st = fstat(fd.as_raw_fd()).map_err(io)?;
        if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
            return Err(io::Error::from_raw_os_error(libc::ELOOP));
        }
        let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        fchmodat(
            None,
            proc_path.as_str(),
            Mode::from_bits_truncate(mode & 0o7777),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(io)
    }

    /// Sets the times of `name` without following it.
    pub fn set_times(&self, name: &OsStr, atime: FileTime, mtime: FileTime) -> io::Result<()> {
        check_name(name)?;
        utimensat(
            self.raw(),
            name,
            &TimeSpec::new(atime.secs, atime.nsecs),
            &TimeSpec::new(mtime.secs, mtime.nsecs),
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(io)
    }

    /// The names in the directory (without `.` and `..`), sorted bytewise as Go's
    /// `filepath.Walk` visits them.
    pub fn entries(&self) -> io::Result<Vec<OsString>> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let mut d = nix::dir::Dir::openat(self.raw(), ".", flags, Mode::empty()).map_err(io)?;
        let mut names = Vec::new();
        for e in d.iter() {
            let e = e.map_err(io)?;
            let n = e.file_name().to_bytes();
            if n == b"." || n == b".." {
                continue;
            }
            names.push(OsStr::from_bytes(n).to_os_string());
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        Ok(names)
    }
}

/// `fchown` of an open file.
pub fn chown_file(f: &File, uid: u32, gid: u32) -> io::Result<()> {
    nix::unistd::fchown(
        f.as_raw_fd(),
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
    )
    .map_err(io)
}

/// Removes `name` in `dir` and, when it is a directory, everything in it, never
/// following a symlink (Go's `os.RemoveAll`, at descriptors).
pub fn remove_all(dir: &Dir, name: &OsStr) -> io::Result<()> {
    let st = match dir.stat(name) {
        Ok(st) => st,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if st.kind != Kind::Dir {
        return dir.remove(name, false);
    }
    let sub = dir.open_dir(name)?;
    for child in sub.entries()? {
        remove_all(&sub, &child)?;
    }
    dir.remove(name, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn calls_stay_at_the_descriptor_and_never_follow() {
        let t = tempfile::tempdir().unwrap();
        let root = Dir::open_host(t.path()).unwrap();
        root.mkdir(OsStr::new("d"), 0o755).unwrap();
        let d = root.open_dir(OsStr::new("d")).unwrap();
        let mut f = d.create_file(OsStr::new("f"), 0o600).unwrap();
        f.write_all(b"hi").unwrap();
        drop(f);
        let mut s = String::new();
        d.open_file(OsStr::new("f"))
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "hi");
        d.chmod(OsStr::new("f"), 0o4755).unwrap();
        assert_eq!(d.stat(OsStr::new("f")).unwrap().perm, 0o4755);

        // A symlink is neither opened, chmod'ed nor followed.
        root.symlink(OsStr::new("/etc"), OsStr::new("l")).unwrap();
        assert_eq!(
            root.stat(OsStr::new("l")).unwrap().kind,
            Kind::Symlink,
            "lstat"
        );
        assert!(root.open_dir(OsStr::new("l")).is_err());
        assert!(root.open_file(OsStr::new("l")).is_err());
        assert!(root.chmod(OsStr::new("l"), 0o777).is_err());
        assert!(root.stat(OsStr::new("..")).is_err(), "no `..` given");
        assert!(root.stat(OsStr::new("a/b")).is_err(), "one component");

        assert_eq!(root.entries().unwrap(), [OsString::from("d"), "l".into()]);
        remove_all(&root, OsStr::new("d")).unwrap();
        assert_eq!(root.entries().unwrap(), [OsString::from("l")]);
    }
}
