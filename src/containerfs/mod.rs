//! A container's files as `docker cp` and `docker export` reach them, from berthd.
//!
//! The way in ([`spawn_in`]) runs on a short-lived thread of its own (`berth-cp`), never on
//! an arbiter or a pool thread:
//! - a running container (the store's record has its init's pid): `/proc/<pid>/root`,
//!   which is the container's root as its own mount namespace shows it, volumes, binds
//!   and tmpfs mounts included;
//! - a stopped one: the thread enters a private mount namespace, mounts the container's
//!   rootfs and its binds and volumes there (`sys::mounts::mount_container_fs`, as
//!   dockerd mounts them for a copy), works, and ends; the namespace goes with it, and
//!   the host never sees a mount;
//! - `docker export`: the container's layers alone, read-only, in a private namespace
//!   (`sys::mounts::mount_layers_readonly`), running or not: dockerd exports the rootfs
//!   layers, not what is mounted on them.
//!
//! Inside, no path string reaches the kernel: [`paths::walk`] resolves a client's path
//! component by component from the root's descriptor (`sys::at`), symlinks read and
//! followed within the root, `..` never above it, as dockerd's `FollowSymlinkInScope`;
//! [`tar_out`] archives from descriptors; [`extract`] unpacks a client's tar, refusing
//! anything that would land outside the destination.

pub mod extract;
pub mod paths;
pub mod tar_out;

use std::io;

use crate::error::ErrorKind;
use crate::model::spec::{MountSpec, RootfsSpec};
use crate::sys::SysError;
use crate::sys::at::Dir;

pub use paths::PathStat;

/// Why a copy or an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerFsError {
    /// dockerd's `containerFileNotFound`: `container` is the name or id as the client gave it.
    #[error("Could not find the file {path} in container {container}")]
    NotFound { path: String, container: String },
    /// `PUT …/archive` to a path that is not a directory.
    #[error("extraction point is not a directory")]
    NotADirectory,
    #[error("container rootfs is marked read-only")]
    RootfsReadOnly,
    #[error("mounted volume is marked read-only")]
    VolumeReadOnly,
    /// The client's tar stream, refused (a path leading out, a device node, a bad header).
    #[error("Error processing tar file: {reason}")]
    Refused { reason: String },
    /// `copyUIDGID` with a `Config.User` the container's /etc/passwd or /etc/group lacks.
    #[error("{reason}")]
    CopyUser { reason: String },
    /// A filesystem call inside the container failed: `op` and the container's path.
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("the container's filesystem could not be mounted")]
    Mount {
        #[source]
        source: SysError,
    },
    #[error("the copy's thread could not be started")]
    Thread {
        #[source]
        source: io::Error,
    },
}

impl ContainerFsError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ContainerFsError::NotFound { .. } => ErrorKind::NotFound,
            ContainerFsError::NotADirectory
            | ContainerFsError::RootfsReadOnly
            | ContainerFsError::VolumeReadOnly
            | ContainerFsError::Refused { .. }
            | ContainerFsError::CopyUser { .. } => ErrorKind::InvalidParameter,
            ContainerFsError::Io { .. }
            | ContainerFsError::Mount { .. }
            | ContainerFsError::Thread { .. } => ErrorKind::System,
        }
    }

    pub(crate) fn io(op: &'static str, path: &[u8]) -> impl FnOnce(io::Error) -> Self {
        let path = String::from_utf8_lossy(path).into_owned();
        move |source| ContainerFsError::Io { op, path, source }
    }

    pub(crate) fn refused(reason: impl Into<String>) -> Self {
        ContainerFsError::Refused {
            reason: reason.into(),
        }
    }
}

/// What the store tells of a container for a copy or an export (`GetContainerFs`).
#[derive(Debug, Clone)]
pub struct ContainerFs {
    pub id: String,
    /// The init's pid on the host while it runs (running, paused, restarting), else 0.
    pub pid: i32,
    pub rootfs: RootfsSpec,
    /// Its binds and volumes (and tmpfs mounts, which a stopped container's copy skips).
    pub mounts: Vec<MountSpec>,
    /// Each bind's and volume's destination and whether it is writable.
    pub volumes: Vec<(String, bool)>,
    pub readonly_rootfs: bool,
    /// `Config.User`, for `copyUIDGID`.
    pub user: String,
}

/// Which view of the container's files a thread gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// What its processes see (`docker cp`).
    Container,
    /// Its layers alone, read-only (`docker export`).
    Layers,
}

/// Runs `work` with the container's root on a new thread (`berth-cp`), see the module's
/// doc. `work` gets the error when the root could not be reached.
pub fn spawn_in<F>(fs: ContainerFs, view: View, work: F) -> Result<(), ContainerFsError>
where
    F: FnOnce(Result<Dir, ContainerFsError>) + Send + 'static,
{
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name("berth-cp".into())
        .spawn(move || {
            let _enter = span.enter();
            work(open_root(&fs, view));
        })
        .map(drop)
        .map_err(|source| ContainerFsError::Thread { source })
}

/// Reaches the root (on the calling thread, which it may move into a mount namespace of
/// its own: only a thread of [`spawn_in`]).
fn open_root(fs: &ContainerFs, view: View) -> Result<Dir, ContainerFsError> {
    if view == View::Container && fs.pid > 0 {
        let proc_root = std::path::PathBuf::from(format!("/proc/{}/root", fs.pid));
        match Dir::open_host(&proc_root) {
            Ok(d) => return Ok(d),
            // It exited since the store answered: as a stopped one.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) => {}
            Err(source) => {
                return Err(ContainerFsError::Io {
                    op: "open",
                    path: proc_root.display().to_string(),
                    source,
                });
            }
        }
    }
    let mount = |source| ContainerFsError::Mount { source };
    crate::sys::namespaces::unshare_private_mount_ns().map_err(mount)?;
    let root = match view {
        View::Container => crate::sys::mounts::mount_container_fs(&fs.rootfs, &fs.mounts),
        View::Layers => crate::sys::mounts::mount_layers_readonly(&fs.rootfs),
    }
    .map_err(mount)?;
    Dir::open_host(&root).map_err(|source| ContainerFsError::Io {
        op: "open",
        path: "/".into(),
        source,
    })
}

/// The flags of `PUT …/archive`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    pub copy_uid_gid: bool,
    pub no_overwrite_dir_non_dir: bool,
}

/// `PUT …/archive`, dockerd's `containerExtractToDir`: `path` resolved in the root with
/// its last symlink followed too, which must be a directory the container may write
/// (not on a read-only rootfs or volume), then the tar stream unpacked into it. With
/// `copyUIDGID` and a `Config.User`, every entry is owned by that user and its group,
/// looked up in the container's /etc/passwd and /etc/group (dockerd looks the name up on
/// the host, which only agrees with the container for ids); without a user, the tar's
/// owners are kept, which is also what it does without the flag (berthd has no user
/// namespace to map them into).
pub fn extract_to(
    root: &Dir,
    fs: &ContainerFs,
    path: &str,
    container: &str,
    opts: ExtractOptions,
    source: impl io::Read,
) -> Result<(), ContainerFsError> {
    let abs = paths::absolute(path);
    let w = paths::walk(root, &abs).map_err(ContainerFsError::io("lstat", &abs))?;
    let resolved = w.path();
    let dest = match w.end {
        paths::End::Dir(d) => d,
        paths::End::Missing => {
            return Err(ContainerFsError::NotFound {
                path: path.to_owned(),
                container: container.to_owned(),
            });
        }
        paths::End::Other | paths::End::NotDir => return Err(ContainerFsError::NotADirectory),
    };
    check_writable(fs, &resolved)?;
    let chown = if opts.copy_uid_gid && !fs.user.is_empty() {
        let passwd = paths::read_small_file(root, b"/etc/passwd");
        let group = paths::read_small_file(root, b"/etc/group");
        let u = crate::monitor::user::resolve(&fs.user, passwd.as_deref(), group.as_deref())
            .map_err(|reason| ContainerFsError::CopyUser { reason })?;
        Some((u.uid, u.gid))
    } else {
        None
    };
    extract::extract(
        source,
        &dest,
        &resolved,
        extract::Options {
            no_overwrite_dir_non_dir: opts.no_overwrite_dir_non_dir,
            chown,
        },
    )
}

/// dockerd's `checkIfPathIsInAVolume` and read-only rootfs check for an extraction to
/// `abs` (the destination with every symlink resolved).
pub fn check_writable(fs: &ContainerFs, abs: &str) -> Result<(), ContainerFsError> {
    let mut to_volume = false;
    for (dest, rw) in &fs.volumes {
        let dest = paths::clean(format!("/{dest}").as_bytes());
        let inside = match abs.as_bytes().strip_prefix(dest.as_slice()) {
            Some(rest) => rest.is_empty() || rest.starts_with(b"/") || dest == b"/",
            None => false,
        };
        if inside {
            if !rw {
                return Err(ContainerFsError::VolumeReadOnly);
            }
            to_volume = true;
            break;
        }
    }
    if !to_volume && fs.readonly_rootfs {
        return Err(ContainerFsError::RootfsReadOnly);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(volumes: &[(&str, bool)], ro: bool) -> ContainerFs {
        ContainerFs {
            id: "x".into(),
            pid: 0,
            rootfs: RootfsSpec {
                fstype: "bind".into(),
                source: "/nonexistent".into(),
                options: String::new(),
                target: "/nonexistent".into(),
            },
            mounts: Vec::new(),
            volumes: volumes.iter().map(|(d, rw)| (d.to_string(), *rw)).collect(),
            readonly_rootfs: ro,
            user: String::new(),
        }
    }

    #[test]
    fn writable_as_dockerd_decides() {
        let f = fs(&[("/data", true), ("/ro", false)], true);
        assert!(check_writable(&f, "/data").is_ok());
        assert!(check_writable(&f, "/data/sub").is_ok());
        assert!(matches!(
            check_writable(&f, "/ro/x"),
            Err(ContainerFsError::VolumeReadOnly)
        ));
        assert!(matches!(
            check_writable(&f, "/database"),
            Err(ContainerFsError::RootfsReadOnly)
        ));
        assert!(check_writable(&fs(&[], false), "/etc").is_ok());
    }

    #[test]
    fn error_kinds() {
        let e = ContainerFsError::NotFound {
            path: "/nope".into(),
            container: "c".into(),
        };
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(
            e.to_string(),
            "Could not find the file /nope in container c"
        );
        assert_eq!(
            ContainerFsError::refused("x").kind(),
            ErrorKind::InvalidParameter
        );
    }
}
