//! A client's path inside the container: Go's path rules as dockerd applies them
//! (`filepath.Clean`, `Split`, `Base`, `archive.PreserveTrailingDotOrSeparator`), the
//! walk that resolves it in the container's root, and the stat that `HEAD …/archive`
//! sends (`types.ContainerPathStat`).

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use serde::Serialize;

use super::ContainerFsError;
use crate::sys::at::{Dir, Kind, Stat};

/// Go's `filepath.Clean` on bytes.
pub fn clean(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let rooted = path[0] == b'/';
    let mut parts: Vec<&[u8]> = Vec::new();
    for c in path.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|p| *p != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(c);
                }
            }
            _ => parts.push(c),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    if rooted {
        out.push(b'/');
    }
    out.extend_from_slice(&parts.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// Go's `filepath.Base`.
pub fn base(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let trimmed = {
        let mut end = path.len();
        while end > 0 && path[end - 1] == b'/' {
            end -= 1;
        }
        &path[..end]
    };
    if trimmed.is_empty() {
        return b"/".to_vec();
    }
    match trimmed.iter().rposition(|b| *b == b'/') {
        Some(i) => trimmed[i + 1..].to_vec(),
        None => trimmed.to_vec(),
    }
}

/// Go's `filepath.Split`: everything up to and including the last `/`, and the rest.
pub fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// dockerd's `absPath` of a client's path: cleaned and made absolute, with a trailing `/`
/// or `/.` kept (`PreserveTrailingDotOrSeparator`), which decide what a copy means.
pub fn absolute(path: &str) -> Vec<u8> {
    let original = path.as_bytes();
    let mut p = clean(&[b"/", original].concat());
    let cur_dir = |s: &[u8]| base(s) == b".";
    if !cur_dir(&p) && cur_dir(original) {
        if !p.ends_with(b"/") {
            p.push(b'/');
        }
        p.push(b'.');
    }
    if !p.ends_with(b"/") && original.ends_with(b"/") {
        p.push(b'/');
    }
    p
}

fn components(path: &[u8]) -> VecDeque<OsString> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(|c| OsString::from_vec(c.to_vec()))
        .collect()
}

/// Where a [`walk`] ended.
#[derive(Debug)]
pub enum End {
    /// Every component was found, the last a directory (opened).
    Dir(Dir),
    /// The last component exists and is not a directory.
    Other,
    /// A component before the last is not a directory.
    NotDir,
    /// A component is missing.
    Missing,
}

/// A path resolved in the container's root.
#[derive(Debug)]
pub struct Walked {
    /// The resolved path's components (the part past a missing component kept as given,
    /// cleaned lexically), as dockerd's `FollowSymlinkInScope` returns it.
    pub names: Vec<OsString>,
    pub end: End,
}

impl Walked {
    /// The resolved path as the container sees it, absolute.
    pub fn path(&self) -> String {
        let mut s = String::new();
        for n in &self.names {
            s.push('/');
            s.push_str(&n.to_string_lossy());
        }
        if s.is_empty() {
            s.push('/');
        }
        s
    }
}

/// Resolves `path` in the container's root: every symlink followed (the last one too),
/// an absolute target from the root, `..` never above the root; each directory opened
/// from its parent's descriptor without following (`sys::at`), so nothing leaves the
/// root even while the container changes its files.
pub fn walk(root: &Dir, path: &[u8]) -> io::Result<Walked> {
    let mut stack: Vec<Dir> = vec![root.try_clone()?];
    let mut names: Vec<OsString> = Vec::new();
    // The index in `names` of a component that exists and is not a directory.
    let mut file_at: Option<usize> = None;
    let mut pending = components(path);
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            if names.pop().is_some() {
                if stack.len() > names.len() + 1 {
                    stack.pop();
                }
                if file_at.is_some_and(|i| i >= names.len()) {
                    file_at = None;
                }
            }
            continue;
        }
        if stack.len() != names.len() + 1 {
            // Past a missing component or a file: lexical from here.
            names.push(c);
            continue;
        }
        let Some(cur) = stack.last() else {
            break;
        };
        match cur.stat(&c) {
            Ok(st) if st.kind == Kind::Symlink => {
                links += 1;
                if links > 255 {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = cur.read_link(&c)?;
                if target.as_bytes().starts_with(b"/") {
                    names.clear();
                    stack.truncate(1);
                    file_at = None;
                }
                let mut next = components(target.as_bytes());
                next.extend(pending);
                pending = next;
            }
            Ok(st) if st.kind == Kind::Dir => {
                let d = cur.open_dir(&c)?;
                stack.push(d);
                names.push(c);
            }
            Ok(_) => {
                file_at = Some(names.len());
                names.push(c);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => names.push(c),
            Err(e) => return Err(e),
        }
    }
    let end = if stack.len() == names.len() + 1 {
        match stack.pop() {
            Some(d) => End::Dir(d),
            None => End::Missing,
        }
    } else if file_at == Some(names.len() - 1) && stack.len() == names.len() {
        End::Other
    } else if file_at.is_some() {
        End::NotDir
    } else {
        End::Missing
    };
    Ok(Walked { names, end })
}

/// The text of a small file of the container (its /etc/passwd), symlinks followed in
/// the root; `None` when it is missing, not a file, or over 1 MiB.
pub fn read_small_file(root: &Dir, path: &[u8]) -> Option<String> {
    use std::io::Read;
    let w = walk(root, path).ok()?;
    if !matches!(w.end, End::Other) {
        return None;
    }
    let (last, dirs) = w.names.split_last()?;
    let mut parent = root.try_clone().ok()?;
    for d in dirs {
        parent = parent.open_dir(d).ok()?;
    }
    let f = parent.open_file(last).ok()?;
    let mut s = String::new();
    f.take(1 << 20).read_to_string(&mut s).ok()?;
    Some(s)
}

/// `types.ContainerPathStat`, as the `X-Docker-Container-Path-Stat` header carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits.
    pub mode: u32,
    /// RFC 3339 with Go's trimmed nanoseconds.
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Go's `os.FileMode` of an `lstat`.
pub fn go_file_mode(st: &Stat) -> u32 {
    let mut m = st.perm & 0o777;
    m |= match st.kind {
        Kind::Dir => 1 << 31,
        Kind::Symlink => 1 << 27,
        Kind::BlockDevice => 1 << 26,
        Kind::CharDevice => (1 << 26) | (1 << 21),
        Kind::Fifo => 1 << 25,
        Kind::Socket => 1 << 24,
        Kind::File => 0,
    };
    if st.perm & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if st.perm & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if st.perm & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m
}

/// Go's `time.RFC3339Nano` in UTC: the fraction without its trailing zeros.
pub fn go_time(secs: i64, nsecs: i64) -> String {
    let t = chrono::DateTime::from_timestamp(secs, u32::try_from(nsecs).unwrap_or(0))
        .unwrap_or_default();
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    if nsecs > 0 {
        let frac = format!("{nsecs:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// What a path names, for the archive.
#[derive(Debug)]
pub enum Target {
    /// A directory (opened).
    Dir(Dir),
    /// Anything else: the entry `name` in `parent`.
    Entry { parent: Dir, name: OsString },
}

/// A resolved source of `GET …/archive`.
#[derive(Debug)]
pub struct Source {
    pub stat: PathStat,
    pub lstat: Stat,
    pub target: Target,
    /// The first component of every name in the archive (`TarResourceRebase`): the
    /// path's base (`.` for a trailing `/.`), empty for the root.
    pub rebase: Vec<u8>,
}

/// dockerd's `ResolvePath` and `StatPath`: the path's parent resolved in the root, the
/// last component not followed (unless the path ends in `/` or `/.`).
pub fn stat_path(root: &Dir, path: &str, container: &str) -> Result<Source, ContainerFsError> {
    let abs = absolute(path);
    let not_found = || ContainerFsError::NotFound {
        path: path.to_owned(),
        container: container.to_owned(),
    };
    let (dir, last) = split(&abs);
    let w = walk(root, dir).map_err(ContainerFsError::io("lstat", &abs))?;
    let parent = match w.end {
        End::Dir(d) => d,
        End::Missing => return Err(not_found()),
        End::Other | End::NotDir => {
            return Err(ContainerFsError::Io {
                op: "lstat",
                path: String::from_utf8_lossy(&abs).into_owned(),
                source: io::Error::from_raw_os_error(libc::ENOTDIR),
            });
        }
    };
    let lstat_err = |e: io::Error| {
        if e.kind() == io::ErrorKind::NotFound {
            not_found()
        } else {
            ContainerFsError::Io {
                op: "lstat",
                path: String::from_utf8_lossy(&abs).into_owned(),
                source: e,
            }
        }
    };
    let (lstat, target) = if last.is_empty() || last == b"." {
        (parent.stat_self().map_err(lstat_err)?, Target::Dir(parent))
    } else {
        let name = OsStr::from_bytes(last).to_os_string();
        let st = parent.stat(&name).map_err(lstat_err)?;
        if st.kind == Kind::Dir {
            let d = parent.open_dir(&name).map_err(lstat_err)?;
            (st, Target::Dir(d))
        } else {
            (st, Target::Entry { parent, name })
        }
    };
    let link_target = if lstat.kind == Kind::Symlink {
        walk(root, &abs)
            .map_err(ContainerFsError::io("lstat", &abs))?
            .path()
    } else {
        String::new()
    };
    let name = base(&abs);
    let rebase = if name == b"/" {
        Vec::new()
    } else {
        name.clone()
    };
    Ok(Source {
        stat: PathStat {
            name: String::from_utf8_lossy(&name).into_owned(),
            size: i64::try_from(lstat.size).unwrap_or(i64::MAX),
            mode: go_file_mode(&lstat),
            mtime: go_time(lstat.mtime.secs, lstat.mtime.nsecs),
            link_target,
        },
        lstat,
        target,
        rebase,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn s(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn go_path_rules() {
        for (i, o) in [
            ("", "."),
            ("/", "/"),
            ("a/../..", ".."),
            ("/../x/./y//", "/x/y"),
            ("a/b/..", "a"),
        ] {
            assert_eq!(s(clean(i.as_bytes())), o, "clean {i}");
        }
        for (i, o) in [("/", "/"), ("/a/b/", "b"), ("/a/.", "."), ("", ".")] {
            assert_eq!(s(base(i.as_bytes())), o, "base {i}");
        }
        for (i, o) in [
            ("/etc/passwd", "/etc/passwd"),
            ("etc/", "/etc/"),
            ("/etc/.", "/etc/."),
            ("/", "/"),
            ("/.", "/."),
            ("../../x/", "/x/"),
        ] {
            assert_eq!(s(absolute(i)), o, "absolute {i}");
        }
        assert_eq!(split(b"/a/b"), (&b"/a/"[..], &b"b"[..]));
        assert_eq!(split(b"/a/"), (&b"/a/"[..], &b""[..]));
    }

    #[test]
    fn modes_and_times_as_go() {
        let mut st = Stat {
            kind: Kind::Dir,
            perm: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: crate::sys::fs::FileTime { secs: 0, nsecs: 0 },
            dev: 0,
            ino: 0,
            nlink: 1,
            rdev: 0,
        };
        assert_eq!(go_file_mode(&st), (1 << 31) | 0o755);
        st.kind = Kind::Symlink;
        st.perm = 0o777;
        assert_eq!(go_file_mode(&st), (1 << 27) | 0o777);
        st.kind = Kind::File;
        st.perm = 0o4755;
        assert_eq!(go_file_mode(&st), (1 << 23) | 0o755);
        assert_eq!(
            go_time(1_795_829_289, 540_396_290),
            "2026-11-28T01:28:09.54039629Z"
        );
        assert_eq!(go_time(0, 0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn walk_stays_in_the_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::create_dir_all(r.join("data/sub")).unwrap();
        std::fs::write(r.join("etc/passwd"), "x").unwrap();
        symlink("/etc", r.join("abs")).unwrap();
        symlink("../../../../..", r.join("data/up")).unwrap();
        symlink("sub", r.join("data/rel")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        let root = Dir::open_host(r).unwrap();
        let p = |path: &str| walk(&root, path.as_bytes()).unwrap();

        let w = p("/abs/passwd");
        assert_eq!(w.path(), "/etc/passwd");
        assert!(matches!(w.end, End::Other));
        let w = p("/data/up/etc");
        assert_eq!(w.path(), "/etc");
        assert!(matches!(w.end, End::Dir(_)));
        let w = p("/data/rel/../rel/");
        assert_eq!(w.path(), "/data/sub");
        let w = p("/nope/../etc");
        assert!(matches!(w.end, End::Dir(_)), "a missing part undone by ..");
        let w = p("/nope/x");
        assert_eq!(w.path(), "/nope/x");
        assert!(matches!(w.end, End::Missing));
        let w = p("/etc/passwd/x");
        assert!(matches!(w.end, End::NotDir));
        assert!(walk(&root, b"/loop").is_err(), "a symlink loop ends");

        let src = stat_path(&root, "/abs", "c").unwrap();
        assert_eq!(src.stat.name, "abs");
        assert_eq!(src.stat.link_target, "/etc");
        assert!(matches!(src.target, Target::Entry { .. }));
        let src = stat_path(&root, "/abs/", "c").unwrap();
        assert_eq!(src.stat.link_target, "");
        assert!(matches!(src.target, Target::Dir(_)));
        assert_eq!(src.rebase, b"abs");
        let src = stat_path(&root, "/", "c").unwrap();
        assert_eq!(src.stat.name, "/");
        assert!(src.rebase.is_empty());
        let e = stat_path(&root, "/nope", "c").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Could not find the file /nope in container c"
        );
    }
}
