//! `cp -a` for the vfs driver: copies a tree with modes, owners, times, xattrs, symlinks,
//! hard links (kept as links), device nodes and fifos. Never follows a symlink.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use super::error::GraphError;
use crate::sys::fs::{FileTime, NodeKind};

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> GraphError + '_ {
    move |source| GraphError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Copies the directory `src` to `dst` (which must not exist).
pub fn copy_tree(src: &Path, dst: &Path) -> Result<(), GraphError> {
    let mut links = HashMap::new();
    copy_dir(src, dst, &mut links)
}

/// Copies what the directory `src` holds into the existing directory `dst`, and gives
/// `dst` the owner, mode, xattrs and times of `src` (a new volume filled from the image).
pub fn copy_contents(src: &Path, dst: &Path) -> Result<(), GraphError> {
    let mut links = HashMap::new();
    let meta = fs::symlink_metadata(src).map_err(io_error(src))?;
    copy_entries(src, dst, &mut links)?;
    copy_meta(src, dst, &meta, false)
}

fn copy_dir(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> Result<(), GraphError> {
    let meta = fs::symlink_metadata(src).map_err(io_error(src))?;
    fs::create_dir(dst).map_err(io_error(dst))?;
    copy_entries(src, dst, links)?;
    copy_meta(src, dst, &meta, false)
}

fn copy_entries(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> Result<(), GraphError> {
    for entry in fs::read_dir(src).map_err(io_error(src))? {
        let entry = entry.map_err(io_error(src))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let m = fs::symlink_metadata(&from).map_err(io_error(&from))?;
        let ft = m.file_type();
        if ft.is_dir() {
            copy_dir(&from, &to, links)?;
            continue;
        }
        if m.nlink() > 1 {
            if let Some(first) = links.get(&(m.dev(), m.ino())) {
                fs::hard_link(first, &to).map_err(io_error(&to))?;
                continue;
            }
            links.insert((m.dev(), m.ino()), to.clone());
        }
        if ft.is_symlink() {
            let target = fs::read_link(&from).map_err(io_error(&from))?;
            std::os::unix::fs::symlink(&target, &to).map_err(io_error(&to))?;
        } else if ft.is_file() {
            fs::copy(&from, &to).map_err(io_error(&to))?;
        } else {
            let kind = if ft.is_char_device() {
                NodeKind::CharDevice
            } else if ft.is_block_device() {
                NodeKind::BlockDevice
            } else if ft.is_fifo() {
                NodeKind::Fifo
            } else {
                // Sockets are not worth copying (Docker skips them too).
                continue;
            };
            crate::sys::fs::make_node(&to, kind, m.mode(), m.rdev()).map_err(io_error(&to))?;
        }
        copy_meta(&from, &to, &m, ft.is_symlink())?;
    }
    Ok(())
}

fn copy_meta(from: &Path, to: &Path, m: &fs::Metadata, symlink: bool) -> Result<(), GraphError> {
    if crate::sys::host::is_root() {
        std::os::unix::fs::lchown(to, Some(m.uid()), Some(m.gid())).map_err(io_error(to))?;
    }
    if !symlink {
        fs::set_permissions(to, fs::Permissions::from_mode(m.mode() & 0o7777))
            .map_err(io_error(to))?;
    }
    if let Ok(names) = xattr::list(from) {
        for name in names {
            if let Ok(Some(value)) = xattr::get(from, &name) {
                let _ = xattr::set(to, &name, &value);
            }
        }
    }
    let atime = FileTime {
        secs: m.atime(),
        nsecs: m.atime_nsec(),
    };
    let mtime = FileTime {
        secs: m.mtime(),
        nsecs: m.mtime_nsec(),
    };
    crate::sys::fs::set_times_nofollow(to, atime, mtime).map_err(io_error(to))
}
