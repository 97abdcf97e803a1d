//! Where a container's cgroup is in each hierarchy: its path (`berth/<id>`, or under a
//! `--cgroup-parent`) resolved against the host's hierarchies.
//!
//! A path is relative to each hierarchy's root (`berth/<id>`, `mine/<id>` for an absolute
//! parent `/mine`), or, written with a leading `./`, relative to the cgroup the calling
//! process (berthd, or the monitor it started) is in, in each hierarchy: a relative
//! `--cgroup-parent`, as runc's cgroupfs driver places it under its own cgroup.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::{CgroupLayout, SysError, V1_CONTROLLERS, own_v1_path};

/// One hierarchy a container has a directory in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Its mount point on the host.
    pub mount: PathBuf,
    /// Its v1 controllers (co-mounted ones together, `cpu` and `cpuacct`); empty for the
    /// unified (v2) hierarchy.
    pub controllers: Vec<String>,
    /// The container's directory in it.
    pub dir: PathBuf,
}

impl Hierarchy {
    /// The unified (cgroup v2) hierarchy.
    pub fn is_v2(&self) -> bool {
        self.controllers.is_empty()
    }

    /// Whether it holds the v1 controller `c`.
    pub fn has(&self, c: &str) -> bool {
        self.controllers.iter().any(|x| x == c)
    }
}

/// A container's cgroup path, checked: relative, inside its hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelPath {
    pub rel: PathBuf,
    /// Below the caller's own cgroup rather than the hierarchy's root.
    pub under_own: bool,
}

/// Checks a container's cgroup path (see the module docs).
pub fn parse_rel(rel: &str) -> Result<RelPath, SysError> {
    let (rest, under_own) = match rel.strip_prefix("./") {
        Some(rest) => (rest, true),
        None => (rel, false),
    };
    let p = Path::new(rest);
    let ok = !rest.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(RelPath {
            rel: p.to_path_buf(),
            under_own,
        })
    } else {
        Err(SysError::Create {
            path: PathBuf::from(rel),
            source: io::Error::new(io::ErrorKind::InvalidInput, "cgroup path must be relative"),
        })
    }
}

/// A container's cgroup path for its `--cgroup-parent` (`""`: berthd's `berth`), as
/// runc's cgroupfs driver cleans it: `..` never climbs above the parent's start, an
/// absolute parent is taken from each hierarchy's root and a relative one from the
/// caller's own cgroup (written `./<parent>/<id>`).
pub fn container_path(id: &str, parent: &str) -> String {
    if parent.is_empty() {
        return format!("berth/{id}");
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in parent.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.push(id);
    let joined = parts.join("/");
    if parent.starts_with('/') {
        joined
    } else {
        format!("./{joined}")
    }
}

/// The hierarchies a container with cgroup path `rel` has a directory in: the unified
/// one first (when mounted), then the mounted v1 hierarchies of [`V1_CONTROLLERS`] and,
/// with `cpuset`, the cpuset one, each once however many controllers it holds.
pub fn hierarchies(
    layout: &CgroupLayout,
    rel: &str,
    cpuset: bool,
) -> Result<Vec<Hierarchy>, SysError> {
    let rel = parse_rel(rel)?;
    let own = if rel.under_own {
        fs::read_to_string("/proc/self/cgroup").map_err(|source| SysError::Call {
            call: "read /proc/self/cgroup",
            source,
        })?
    } else {
        String::new()
    };
    Ok(hierarchies_with(layout, &rel, cpuset, &own))
}

/// [`hierarchies`] with the caller's `/proc/self/cgroup` text given.
pub fn hierarchies_with(
    layout: &CgroupLayout,
    rel: &RelPath,
    cpuset: bool,
    own: &str,
) -> Vec<Hierarchy> {
    let base = |own_path: Option<&str>| -> PathBuf {
        if rel.under_own {
            PathBuf::from(own_path.unwrap_or("/").trim_start_matches('/'))
        } else {
            PathBuf::new()
        }
    };
    let mut out = Vec::new();
    if let Some(root) = &layout.unified {
        let own_path = own.lines().find_map(|l| l.strip_prefix("0::"));
        out.push(Hierarchy {
            mount: root.clone(),
            controllers: Vec::new(),
            dir: root.join(base(own_path)).join(&rel.rel),
        });
    }
    let wanted = V1_CONTROLLERS
        .iter()
        .copied()
        .chain(cpuset.then_some("cpuset"));
    for ctrl in wanted {
        let Some(mount) = layout.v1_mount(ctrl) else {
            continue;
        };
        if out.iter().any(|h| h.mount == mount) {
            continue;
        }
        let controllers: Vec<String> = layout
            .v1
            .iter()
            .filter(|(_, m)| m == mount)
            .map(|(c, _)| c.clone())
            .collect();
        out.push(Hierarchy {
            mount: mount.to_path_buf(),
            dir: mount.join(base(own_v1_path(own, ctrl))).join(&rel.rel),
            controllers,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hybrid() -> CgroupLayout {
        CgroupLayout {
            v1: vec![
                ("cpu".into(), "/cg/cpu,cpuacct".into()),
                ("cpuacct".into(), "/cg/cpu,cpuacct".into()),
                ("memory".into(), "/cg/memory".into()),
                ("cpuset".into(), "/cg/cpuset".into()),
            ],
            unified: Some("/cg/unified".into()),
            ..Default::default()
        }
    }

    #[test]
    fn parents_are_cleaned_as_runc_cleans_them() {
        assert_eq!(container_path("abc", ""), "berth/abc");
        assert_eq!(container_path("abc", "/mine"), "mine/abc");
        assert_eq!(container_path("abc", "/a/b/"), "a/b/abc");
        assert_eq!(container_path("abc", "/../../etc"), "etc/abc");
        assert_eq!(container_path("abc", "/"), "abc");
        assert_eq!(container_path("abc", "mine"), "./mine/abc");
        assert_eq!(container_path("abc", "../../x"), "./x/abc");
        for p in [
            "berth/abc",
            "mine/abc",
            "etc/abc",
            "abc",
            "./mine/abc",
            "./x/abc",
        ] {
            assert!(parse_rel(p).is_ok(), "{p}");
        }
        assert!(parse_rel("/abs").is_err());
        assert!(parse_rel("a/../..").is_err());
        assert!(parse_rel("./").is_err());
        assert!(parse_rel("").is_err());
    }

    #[test]
    fn each_hierarchy_once_and_cpuset_when_asked() {
        let l = hybrid();
        let rel = parse_rel("berth/x").unwrap();
        let hs = hierarchies_with(&l, &rel, false, "");
        let dirs: Vec<&Path> = hs.iter().map(|h| h.dir.as_path()).collect();
        assert_eq!(
            dirs,
            [
                Path::new("/cg/unified/berth/x"),
                Path::new("/cg/memory/berth/x"),
                Path::new("/cg/cpu,cpuacct/berth/x"),
            ]
        );
        assert!(hs[0].is_v2());
        assert_eq!(hs[2].controllers, ["cpu", "cpuacct"]);
        let hs = hierarchies_with(&l, &rel, true, "");
        assert_eq!(hs.last().unwrap().dir, Path::new("/cg/cpuset/berth/x"));
    }

    #[test]
    fn a_relative_parent_is_below_the_callers_own_cgroup() {
        let own = "4:memory:/user.slice/me\n2:cpu,cpuacct:/\n0::/user.slice/me\n";
        let rel = parse_rel("./mine/x").unwrap();
        let hs = hierarchies_with(&hybrid(), &rel, false, own);
        assert_eq!(hs[0].dir, Path::new("/cg/unified/user.slice/me/mine/x"));
        assert_eq!(hs[1].dir, Path::new("/cg/memory/user.slice/me/mine/x"));
        assert_eq!(hs[2].dir, Path::new("/cg/cpu,cpuacct/mine/x"));
    }
}
