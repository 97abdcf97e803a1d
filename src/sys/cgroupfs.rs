//! The cgroupfs a container sees at /sys/fs/cgroup: its own cgroup in each hierarchy,
//! read-only, as runc mounts it; and its cgroup namespace.
//!
//! On a v2-only host /sys/fs/cgroup is one cgroup2 mount whose root is the container's
//! cgroup. On v1 and hybrid hosts it is a tmpfs holding, for each hierarchy the container
//! has a directory in, a mount named as on the host (`memory`, `cpu,cpuacct`, `unified`)
//! whose root is that directory (and a symlink per co-mounted controller, `cpu` →
//! `cpu,cpuacct`). With the host's cgroup namespace (`--cgroupns host`) each is a bind
//! of the container's directory, made before `pivot_root` (the host's hierarchies are
//! still in view then); with its own (`private`), each is a fresh `cgroup`/`cgroup2`
//! mount made inside the new namespace, whose root is the container's cgroup.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};

use super::SysError;
use super::cgroups::{CgroupLayout, paths};

/// One mount below /sys/fs/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Its name under /sys/fs/cgroup (`memory`, `cpu,cpuacct`, `unified`); empty on a
    /// v2-only host, where the mount is /sys/fs/cgroup itself.
    pub name: String,
    /// The container's directory on the host.
    pub host_dir: PathBuf,
    /// Its v1 controllers; empty for cgroup2.
    pub controllers: Vec<String>,
}

/// How the container's init mounts its cgroupfs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupfsPlan {
    /// The container has a cgroup namespace of its own.
    pub private_ns: bool,
    pub mounts: Vec<CgroupMount>,
}

impl CgroupfsPlan {
    /// The plan for a container with cgroup path `rel` (joining the cpuset hierarchy with
    /// `cpuset`).
    pub fn new(
        layout: &CgroupLayout,
        rel: &str,
        cpuset: bool,
        private_ns: bool,
    ) -> Result<CgroupfsPlan, SysError> {
        let unified_only = layout.version() == 2;
        let mounts = paths::hierarchies(layout, rel, cpuset)?
            .into_iter()
            .map(|h| CgroupMount {
                name: if unified_only {
                    String::new()
                } else {
                    h.mount
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                },
                host_dir: h.dir,
                controllers: h.controllers,
            })
            .collect();
        Ok(CgroupfsPlan { private_ns, mounts })
    }

    fn unified_only(&self) -> bool {
        self.mounts.len() == 1 && self.mounts[0].name.is_empty()
    }
}

fn mnt(
    source: &str,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), SysError> {
    mount(Some(source), target, fstype, flags, data).map_err(|e| SysError::Mount {
        source_name: source.to_owned(),
        target: target.to_path_buf(),
        source: io::Error::from(e),
    })
}

fn mkdir(path: &Path) -> Result<(), SysError> {
    fs::create_dir_all(path).map_err(|source| SysError::Create {
        path: path.to_path_buf(),
        source,
    })
}

const NSE: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// The tmpfs that holds the v1 hierarchies' mounts.
fn mount_tmpfs(target: &Path) -> Result<(), SysError> {
    mnt(
        "tmpfs",
        target,
        Some("tmpfs"),
        NSE,
        Some("mode=755,size=65536k"),
    )
}

/// A symlink for each co-mounted controller (`cpu` → `cpu,cpuacct`), as runc makes them.
fn controller_links(target: &Path, plan: &CgroupfsPlan) -> Result<(), SysError> {
    for m in &plan.mounts {
        if m.controllers.len() < 2 {
            continue;
        }
        for c in &m.controllers {
            if *c == m.name || plan.mounts.iter().any(|o| o.name == *c) {
                continue;
            }
            let link = target.join(c);
            symlink(&m.name, &link).map_err(|source| SysError::Create { path: link, source })?;
        }
    }
    Ok(())
}

/// With the host's cgroup namespace, before `pivot_root`: binds the container's
/// directories into `root`/sys/fs/cgroup, read-only. The v1 directories may not exist yet
/// (the monitor makes them meanwhile): they are made here if need be.
pub fn mount_host_view(root: &Path, plan: &CgroupfsPlan) -> Result<(), SysError> {
    if plan.mounts.is_empty() {
        return Ok(());
    }
    let target = root.join("sys/fs/cgroup");
    mkdir(&target)?;
    let bind = |from: &Path, to: &Path| -> Result<(), SysError> {
        mkdir(from)?;
        mnt(
            &from.display().to_string(),
            to,
            None,
            MsFlags::MS_BIND,
            None,
        )
    };
    if plan.unified_only() {
        bind(&plan.mounts[0].host_dir, &target)?;
        return read_only(&target, std::slice::from_ref(&target), false);
    }
    mount_tmpfs(&target)?;
    let mut binds = Vec::new();
    for m in &plan.mounts {
        let dir = target.join(&m.name);
        mkdir(&dir)?;
        bind(&m.host_dir, &dir)?;
        binds.push(dir);
    }
    controller_links(&target, plan)?;
    read_only(&target, &binds, true)
}

/// With a cgroup namespace of its own, after `pivot_root`, once the monitor has moved
/// the init into its cgroups: the namespace, then /sys/fs/cgroup mounted in it.
pub fn mount_private_view(plan: &CgroupfsPlan) -> Result<(), SysError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
        .map_err(|e| SysError::call("unshare(CLONE_NEWCGROUP)", e))?;
    if plan.mounts.is_empty() {
        return Ok(());
    }
    let target = Path::new("/sys/fs/cgroup");
    let ro = MsFlags::MS_RDONLY | NSE;
    if plan.unified_only() {
        return mnt("cgroup2", target, Some("cgroup2"), ro, None);
    }
    mount_tmpfs(target)?;
    for m in &plan.mounts {
        let dir = target.join(&m.name);
        mkdir(&dir)?;
        if m.controllers.is_empty() {
            mnt("cgroup2", &dir, Some("cgroup2"), ro, None)?;
        } else {
            let data = m.controllers.join(",");
            mnt("cgroup", &dir, Some("cgroup"), ro, Some(&data))?;
        }
    }
    controller_links(target, plan)?;
    read_only(target, &[], true)
}

/// Makes `top` and the mounts `below` it read-only (with nosuid, nodev, noexec): in one
/// `mount_setattr` over the tree where the kernel has it (5.12), else mount by mount.
fn read_only(top: &Path, below: &[PathBuf], top_is_tmpfs: bool) -> Result<(), SysError> {
    if setattr_read_only(top).is_ok() {
        return Ok(());
    }
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | NSE;
    for m in below {
        remount(m, flags, None)?;
    }
    if top_is_tmpfs {
        remount(
            top,
            MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | NSE,
            Some("mode=755,size=65536k"),
        )?;
    }
    Ok(())
}

fn remount(target: &Path, flags: MsFlags, data: Option<&str>) -> Result<(), SysError> {
    mount(None::<&str>, target, None::<&str>, flags, data).map_err(|e| SysError::Mount {
        source_name: String::new(),
        target: target.to_path_buf(),
        source: io::Error::from(e),
    })
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
#[derive(Debug, Default)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const AT_RECURSIVE: libc::c_uint = 0x8000;

fn setattr_read_only(top: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(top.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        ..Default::default()
    };
    // SAFETY: `path` is a NUL-terminated string and `attr` a valid `struct mount_attr` of
    // the size passed; the kernel only reads both during the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hybrid() -> CgroupLayout {
        CgroupLayout {
            v1: vec![
                ("cpu".into(), "/sys/fs/cgroup/cpu,cpuacct".into()),
                ("cpuacct".into(), "/sys/fs/cgroup/cpu,cpuacct".into()),
                ("memory".into(), "/sys/fs/cgroup/memory".into()),
                ("pids".into(), "/sys/fs/cgroup/pids".into()),
            ],
            unified: Some("/sys/fs/cgroup/unified".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_hybrid_host_gets_one_mount_per_hierarchy() {
        let p = CgroupfsPlan::new(&hybrid(), "berth/x", false, false).unwrap();
        let names: Vec<&str> = p.mounts.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["unified", "memory", "cpu,cpuacct", "pids"]);
        assert_eq!(
            p.mounts[1].host_dir,
            Path::new("/sys/fs/cgroup/memory/berth/x")
        );
        assert!(p.mounts[0].controllers.is_empty());
        assert!(!p.unified_only());
    }

    #[test]
    fn a_v2_only_host_gets_its_cgroup_as_the_whole_mount() {
        let layout = CgroupLayout {
            unified: Some("/sys/fs/cgroup".into()),
            ..Default::default()
        };
        let p = CgroupfsPlan::new(&layout, "berth/x", false, true).unwrap();
        assert!(p.unified_only() && p.private_ns);
        assert_eq!(p.mounts[0].host_dir, Path::new("/sys/fs/cgroup/berth/x"));
    }

    /// The host view in a private mount namespace of a child process: binds of fake
    /// cgroup dirs below a tmpfs, read-only, with the co-mount links.
    #[test]
    fn the_host_view_binds_each_dir_read_only() {
        if !crate::test_ledger::root_or_skip(module_path!(), "needs root for mounts") {
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let host = t.path().join("host");
        let root = t.path().join("root");
        fs::create_dir_all(root.join("sys/fs/cgroup")).unwrap();
        let plan = CgroupfsPlan {
            private_ns: false,
            mounts: vec![
                CgroupMount {
                    name: "memory".into(),
                    host_dir: host.join("memory/berth/x"),
                    controllers: vec!["memory".into()],
                },
                CgroupMount {
                    name: "cpu,cpuacct".into(),
                    host_dir: host.join("cpu,cpuacct/berth/x"),
                    controllers: vec!["cpu".into(), "cpuacct".into()],
                },
            ],
        };
        fs::create_dir_all(host.join("memory/berth/x")).unwrap();
        fs::write(host.join("memory/berth/x/memory.max"), "64").unwrap();
        let out = std::thread::spawn(move || -> Result<Vec<String>, String> {
            crate::sys::namespaces::unshare_private_mount_ns().map_err(|e| e.to_string())?;
            mount_host_view(&root, &plan).map_err(|e| crate::util::error_chain(&e))?;
            let cg = root.join("sys/fs/cgroup");
            let mut seen = vec![
                fs::read_to_string(cg.join("memory/memory.max")).map_err(|e| e.to_string())?,
                fs::read_link(cg.join("cpu"))
                    .map_err(|e| e.to_string())?
                    .display()
                    .to_string(),
            ];
            seen.push(match fs::write(cg.join("memory/x"), "") {
                Ok(()) => "writable".into(),
                Err(e) => format!("{:?}", e.kind()),
            });
            seen.push(match fs::create_dir(cg.join("new")) {
                Ok(()) => "writable".into(),
                Err(e) => format!("{:?}", e.kind()),
            });
            Ok(seen)
        })
        .join()
        .unwrap()
        .unwrap();
        assert_eq!(out[0], "64");
        assert_eq!(out[1], "cpu,cpuacct");
        assert_eq!(out[2], "ReadOnlyFilesystem");
        assert_eq!(out[3], "ReadOnlyFilesystem");
        // The init made the missing dir on the host.
        assert!(host.join("cpu,cpuacct/berth/x").is_dir());
    }
}
