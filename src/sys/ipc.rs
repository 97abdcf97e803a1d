//! The container's `/dev/shm` in the IPC modes other than its own: none at all
//! (`--ipc none`), the host's (`--ipc host`) or another container's (`--ipc
//! container:<id>`). Made by the init after its mounts and before `pivot_root`, in its
//! own mount namespace. Under the oci driver the monitor takes the other container's copy
//! ([`clone_shm_of`]) and attaches it in its own mount namespace, for the runtime to bind.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::SysError;

/// Removes the container's `/dev/shm` (the tmpfs `mounts::prepare_rootfs` made at
/// `<root>/dev/shm`, then the directory), as dockerd gives none with `--ipc none`.
pub fn remove_shm(root: &Path) -> Result<(), SysError> {
    let shm = root.join("dev/shm");
    umount2(&shm, MntFlags::MNT_DETACH).map_err(|e| SysError::Unmount {
        target: PathBuf::from("/dev/shm"),
        source: io::Error::from(e),
    })?;
    std::fs::remove_dir(&shm).map_err(|source| SysError::Write {
        path: PathBuf::from("/dev/shm"),
        source,
    })
}

/// Binds the host's `/dev/shm` (as the init still sees it before `pivot_root`) over the
/// container's, as dockerd does with `--ipc host`.
pub fn bind_host_shm(root: &Path) -> Result<(), SysError> {
    let shm = root.join("dev/shm");
    let host = Path::new("/dev/shm");
    if !host.is_dir() {
        return Err(SysError::Mount {
            source_name: "/dev/shm".to_owned(),
            target: PathBuf::from("/dev/shm"),
            source: io::Error::new(
                io::ErrorKind::NotFound,
                "/dev/shm is not mounted, but must be for --ipc=host",
            ),
        });
    }
    let _ = umount2(&shm, MntFlags::MNT_DETACH);
    mount(
        Some(host),
        &shm,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| SysError::Mount {
        source_name: "/dev/shm".to_owned(),
        target: PathBuf::from("/dev/shm"),
        source: io::Error::from(e),
    })
}

/// `OPEN_TREE_CLONE` of open_tree(2): a detached copy of the mount.
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `MOVE_MOUNT_F_EMPTY_PATH` of move_mount(2): the source is the descriptor itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// Puts the `/dev/shm` of the container whose init has host pid `pid` at the
/// container's `/dev/shm` (`--ipc container:<id>`), before `pivot_root`: a detached copy
/// ([`clone_shm_of`]) attached at `<root>/dev/shm` ([`attach_tree`]). Must be called from
/// the single-threaded container init.
pub fn bind_shm_of(pid: i32, root: &Path) -> Result<(), SysError> {
    let tree = clone_shm_of(pid)?;
    let shm = root.join("dev/shm");
    let _ = umount2(&shm, MntFlags::MNT_DETACH);
    attach_tree(&tree, &shm).map_err(|source| SysError::Mount {
        source_name: "/dev/shm".to_owned(),
        target: PathBuf::from("/dev/shm"),
        source,
    })
}

/// A detached copy of the `/dev/shm` mount of the container whose init has host pid
/// `pid` (`--ipc container:<id>`), as a descriptor for [`attach_tree`].
///
/// That `/dev/shm` is a tmpfs mounted inside the other container's own mount namespace,
/// which a bind mount cannot reach across. A short-lived child joins that namespace,
/// takes a detached copy of the mount (`open_tree(OPEN_TREE_CLONE)`) and hands its
/// descriptor back over a socket pair. Forks: the caller must be single-threaded (the
/// container init, or the oci driver's monitor).
pub fn clone_shm_of(pid: i32) -> Result<std::os::fd::OwnedFd, SysError> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::net::UnixStream;

    let fail = |what: &'static str, source: io::Error| SysError::Call { call: what, source };
    let mnt_ns = super::namespaces::open_ns_of(pid, super::namespaces::NsKind::Mount)?;
    let (ours, theirs) = UnixStream::pair().map_err(|e| fail("socketpair", e))?;
    match super::process::fork()? {
        super::process::Forked::Child => {
            drop(ours);
            let sent = (|| -> Option<()> {
                super::namespaces::join_ns(&mnt_ns, super::namespaces::NsKind::Mount).ok()?;
                let path = c"/dev/shm";
                // SAFETY: open_tree reads the NUL-terminated path during the call and
                // returns a new descriptor (or -1); no memory is handed over.
                let fd = unsafe {
                    libc::syscall(
                        libc::SYS_open_tree,
                        libc::AT_FDCWD,
                        path.as_ptr(),
                        OPEN_TREE_CLONE
                            | libc::O_CLOEXEC as libc::c_uint
                            | libc::AT_RECURSIVE as libc::c_uint,
                    )
                };
                let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
                // SAFETY: open_tree just returned this descriptor; nothing else owns it.
                let tree = unsafe { OwnedFd::from_raw_fd(fd) };
                super::process::send_with_fds(theirs.as_raw_fd(), b"t", &[tree.as_raw_fd()])
                    .ok()?;
                Some(())
            })();
            super::process::exit_now(if sent.is_some() { 0 } else { 1 })
        }
        super::process::Forked::Parent { child } => {
            drop(theirs);
            let mut buf = [0u8; 1];
            let mut fds = Vec::new();
            let got = super::process::recv_with_fds(ours.as_raw_fd(), &mut buf, &mut fds);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
            match (got, fds.pop()) {
                (Ok(_), Some(tree)) => Ok(tree),
                (Err(e), _) => Err(fail("receiving the other container's /dev/shm", e)),
                (Ok(_), None) => Err(fail(
                    "open_tree of the other container's /dev/shm",
                    io::Error::other("it could not be copied"),
                )),
            }
        }
    }
}

/// Attaches the detached mount `tree` (from [`clone_shm_of`]) at `target`
/// (`move_mount`).
pub fn attach_tree(tree: &std::os::fd::OwnedFd, target: &Path) -> Result<(), io::Error> {
    use std::os::fd::AsRawFd;
    let target = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: both paths are NUL-terminated strings that live across the call, and
    // `tree` is an open descriptor of a detached mount; move_mount only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
