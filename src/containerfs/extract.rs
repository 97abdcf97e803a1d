//! `PUT …/archive`: a client's tar stream (plain or gzip) unpacked into a directory of the
//! container, as dockerd's `archive.Unpack` does, with the stream taken as hostile.
//!
//! Everything happens at descriptors (`sys::at`) below the destination's, opened one
//! component at a time without following symlinks, so nothing is ever written outside
//! it. Refused with a 400, before anything of the entry is written: a name that is
//! absolute or climbs out with `..` (dockerd strips a leading `/`; berthd refuses it), an
//! entry whose parent is a symlink (one in the container, or one this archive made: dockerd
//! follows it inside the container's root; berthd writes below the destination only), a
//! symlink whose target climbs out of the destination and a hard link to outside it (as
//! dockerd), a device node (dockerd makes them as root; berthd will not put a device
//! into a container behind its device rules), and an entry type dockerd does not know.
//! `noOverwriteDirNonDir` refuses to replace a directory with a non-directory and the
//! other way round. Entries before a refused one stay, as with dockerd; a file is written
//! under a temporary name and renamed into place, so none is left half-written.
//! Extended attributes in the stream are not applied.

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;

use super::ContainerFsError;
use super::paths::clean;
use crate::sys::at::{self, Dir, Kind};
use crate::sys::fs::FileTime;

/// How an extraction treats what it finds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// dockerd's `NoOverwriteDirNonDir`.
    pub no_overwrite_dir_non_dir: bool,
    /// Owner of every entry (`copyUIDGID` with a `Config.User`), else the tar's.
    pub chown: Option<(u32, u32)>,
}

fn refused(reason: impl Into<String>) -> ContainerFsError {
    ContainerFsError::refused(reason)
}

fn quoted(b: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(b))
}

/// Unpacks `source` into `dest` (a directory of the container, shown to the client as
/// `dest_shown`).
pub fn extract(
    source: impl Read,
    dest: &Dir,
    dest_shown: &str,
    opts: Options,
) -> Result<(), ContainerFsError> {
    let mut source = BufReader::with_capacity(256 << 10, source);
    let head = source
        .fill_buf()
        .map_err(|e| refused(format!("reading the archive failed: {e}")))?;
    let reader: Box<dyn Read> = match head {
        [0x1f, 0x8b, ..] => Box::new(flate2::bufread::MultiGzDecoder::new(source)),
        [b'B', b'Z', b'h', ..] => {
            return Err(refused("bzip2-compressed archives are not supported"));
        }
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => {
            return Err(refused("xz-compressed archives are not supported"));
        }
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            return Err(refused("zstd-compressed archives are not supported"));
        }
        _ => Box::new(source),
    };
    let mut archive = tar::Archive::new(reader);
    let mut x = Extractor {
        dest,
        dest_shown,
        opts,
        dirs: Vec::new(),
    };
    let entries = archive
        .entries()
        .map_err(|e| refused(format!("reading the archive failed: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| refused(format!("reading the archive failed: {e}")))?;
        x.entry(&mut entry)?;
    }
    // Directory times last, so the entries made in them do not change them again.
    for (path, mtime) in std::mem::take(&mut x.dirs) {
        let Some((parent, name)) = x.parent(&path, false)? else {
            continue;
        };
        let _ = parent.set_times(&name, mtime, mtime);
    }
    Ok(())
}

struct Extractor<'a> {
    dest: &'a Dir,
    dest_shown: &'a str,
    opts: Options,
    /// The directories made or merged, with their times, set at the end.
    dirs: Vec<(Vec<u8>, FileTime)>,
}

impl Extractor<'_> {
    fn shown(&self, rel: &[u8]) -> String {
        let d = self.dest_shown.trim_end_matches('/');
        format!("{d}/{}", String::from_utf8_lossy(rel))
    }

    fn io(&self, op: &'static str, rel: &[u8]) -> impl FnOnce(io::Error) -> ContainerFsError {
        let path = self.shown(rel);
        move |source| ContainerFsError::Io { op, path, source }
    }

    /// A name of the archive made relative to the destination, or refused.
    fn relative(&self, raw: &[u8], what: &str) -> Result<Vec<u8>, ContainerFsError> {
        if raw.contains(&0) {
            return Err(refused(format!("{what} {} holds a NUL byte", quoted(raw))));
        }
        let c = clean(raw);
        if c.starts_with(b"/") {
            return Err(refused(format!(
                "{what} {} is absolute: the names of the archive must be relative to {:?}",
                quoted(raw),
                self.dest_shown
            )));
        }
        if c == b".." || c.starts_with(b"../") {
            return Err(refused(format!(
                "{what} {} is outside of {:?}",
                quoted(raw),
                self.dest_shown
            )));
        }
        Ok(c)
    }

    /// The directory that holds `rel` (opened component by component from the
    /// destination, never through a symlink; missing ones made when `create`) and the
    /// last component. `None` for the destination itself (`.`), or a missing parent
    /// when not `create`.
    fn parent(
        &self,
        rel: &[u8],
        create: bool,
    ) -> Result<Option<(Dir, OsString)>, ContainerFsError> {
        if rel == b"." {
            return Ok(None);
        }
        let mut parts: Vec<&[u8]> = rel.split(|b| *b == b'/').collect();
        let Some(last) = parts.pop() else {
            return Ok(None);
        };
        let mut cur = self.dest.try_clone().map_err(self.io("open", b"."))?;
        let mut walked: Vec<u8> = Vec::new();
        for p in parts {
            if !walked.is_empty() {
                walked.push(b'/');
            }
            walked.extend_from_slice(p);
            let name = OsStr::from_bytes(p);
            match cur.stat(name) {
                Ok(st) if st.kind == Kind::Dir => {}
                Ok(st) if st.kind == Kind::Symlink => {
                    return Err(refused(format!(
                        "{} is under a symlink ({}): berthd does not write through symlinks",
                        quoted(rel),
                        quoted(&walked)
                    )));
                }
                Ok(_) => {
                    return Err(refused(format!(
                        "{} is under {}, which is not a directory",
                        quoted(rel),
                        quoted(&walked)
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    cur.mkdir(name, 0o755).map_err(self.io("mkdir", &walked))?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(self.io("lstat", &walked)(e)),
            }
            cur = cur.open_dir(name).map_err(self.io("open", &walked))?;
        }
        Ok(Some((cur, OsStr::from_bytes(last).to_os_string())))
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ContainerFsError> {
        let typ = entry.header().entry_type();
        if matches!(typ, tar::EntryType::XGlobalHeader) {
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let rel = self.relative(&raw, "entry")?;
        let is_dir = typ.is_dir();
        match typ {
            tar::EntryType::Regular
            | tar::EntryType::Continuous
            | tar::EntryType::Directory
            | tar::EntryType::Symlink
            | tar::EntryType::Link
            | tar::EntryType::Fifo => {}
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(refused(format!(
                    "{}: berthd does not make device nodes in a container",
                    quoted(&raw)
                )));
            }
            other => {
                return Err(refused(format!(
                    "unhandled tar header type {} ({})",
                    other.as_byte(),
                    quoted(&raw)
                )));
            }
        }
        let h = entry.header();
        let mode = h.mode().map_err(|e| refused(format!("bad mode: {e}")))? & 0o7777;
        let (uid, gid) = match self.opts.chown {
            Some(ids) => ids,
            None => (
                u32::try_from(h.uid().unwrap_or(0)).unwrap_or(0),
                u32::try_from(h.gid().unwrap_or(0)).unwrap_or(0),
            ),
        };
        let mtime = FileTime {
            secs: i64::try_from(h.mtime().unwrap_or(0)).unwrap_or(0),
            nsecs: 0,
        };
        let link = entry.link_name_bytes().map(|l| l.into_owned());

        if rel == b"." {
            // The destination itself: only a directory merges with it.
            if is_dir {
                return Ok(());
            }
            return Err(refused(format!(
                "cannot overwrite directory {:?} with non-directory {:?}",
                self.dest_shown, self.dest_shown
            )));
        }
        // Checks on the link before anything of the entry is written.
        let link_rel = match (typ, &link) {
            (tar::EntryType::Link, Some(l)) => Some(self.relative(l, "hard link target")?),
            (tar::EntryType::Link, None) => return Err(refused("a hard link without a target")),
            (tar::EntryType::Symlink, Some(l)) => {
                // dockerd: the target joined to the link's dir must stay below the
                // destination (an absolute target is joined too, so it stays).
                let dir = match rel.iter().rposition(|b| *b == b'/') {
                    Some(i) => &rel[..i],
                    None => &b""[..],
                };
                let target = trim_leading_slashes(l);
                let joined = if dir.is_empty() {
                    clean(target)
                } else {
                    clean(&[dir, b"/", target].concat())
                };
                if joined == b".." || joined.starts_with(b"../") {
                    return Err(refused(format!(
                        "invalid symlink {} -> {}",
                        quoted(self.shown(&rel).as_bytes()),
                        quoted(l)
                    )));
                }
                None
            }
            (tar::EntryType::Symlink, None) => return Err(refused("a symlink without a target")),
            _ => None,
        };

        let Some((parent, name)) = self.parent(&rel, true)? else {
            return Ok(());
        };
        match parent.stat(&name) {
            Ok(st) => {
                let exists_dir = st.kind == Kind::Dir;
                if self.opts.no_overwrite_dir_non_dir && exists_dir && !is_dir {
                    return Err(refused(format!(
                        "cannot overwrite directory {:?} with non-directory {:?}",
                        self.shown(&rel),
                        self.dest_shown
                    )));
                }
                if self.opts.no_overwrite_dir_non_dir && !exists_dir && is_dir {
                    return Err(refused(format!(
                        "cannot overwrite non-directory {:?} with directory {:?}",
                        self.shown(&rel),
                        self.dest_shown
                    )));
                }
                // A file is renamed over what is there; anything else replaces it.
                let file_over_file = typ.is_file() && !exists_dir;
                if !(file_over_file || exists_dir && is_dir) {
                    at::remove_all(&parent, &name).map_err(self.io("remove", &rel))?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io("lstat", &rel)(e)),
        }

        match typ {
            tar::EntryType::Directory => {
                match parent.mkdir(&name, mode & 0o777) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(self.io("mkdir", &rel)(e)),
                }
                parent
                    .chown(&name, uid, gid)
                    .map_err(self.io("lchown", &rel))?;
                parent.chmod(&name, mode).map_err(self.io("chmod", &rel))?;
                self.dirs.push((rel, mtime));
            }
            tar::EntryType::Symlink => {
                let target = link.unwrap_or_default();
                parent
                    .symlink(OsStr::from_bytes(&target), &name)
                    .map_err(self.io("symlink", &rel))?;
                parent
                    .chown(&name, uid, gid)
                    .map_err(self.io("lchown", &rel))?;
                let _ = parent.set_times(&name, mtime, mtime);
            }
            tar::EntryType::Link => {
                let Some(target) = link_rel else {
                    return Ok(());
                };
                let Some((tdir, tname)) = self.parent(&target, false)? else {
                    return Err(refused(format!(
                        "invalid hardlink {}: {} is not in the archive's destination",
                        quoted(&raw),
                        quoted(&target)
                    )));
                };
                match tdir.stat(&tname) {
                    Ok(st) if st.kind != Kind::Dir => {}
                    _ => {
                        return Err(refused(format!(
                            "invalid hardlink {} -> {}",
                            quoted(&raw),
                            quoted(&target)
                        )));
                    }
                }
                parent
                    .hard_link(&tdir, &tname, &name)
                    .map_err(self.io("link", &rel))?;
            }
            tar::EntryType::Fifo => {
                parent
                    .make_fifo(&name, mode)
                    .map_err(self.io("mkfifo", &rel))?;
                parent
                    .chown(&name, uid, gid)
                    .map_err(self.io("lchown", &rel))?;
                parent.chmod(&name, mode).map_err(self.io("chmod", &rel))?;
                let _ = parent.set_times(&name, mtime, mtime);
            }
            _ => self.file(entry, &parent, &name, &rel, mode, (uid, gid), mtime)?,
        }
        Ok(())
    }

    /// A regular file: written under a temporary name, owned, moded and timed, then
    /// renamed into place.
    #[allow(clippy::too_many_arguments)]
    fn file<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        parent: &Dir,
        name: &OsStr,
        rel: &[u8],
        mode: u32,
        (uid, gid): (u32, u32),
        mtime: FileTime,
    ) -> Result<(), ContainerFsError> {
        let tmp = OsString::from(format!(
            ".berth-cp-{}",
            hex::encode(rand::random::<[u8; 6]>())
        ));
        let mut f = parent
            .create_file(&tmp, 0o600)
            .map_err(self.io("create", rel))?;
        let res = (|| {
            io::copy(entry, &mut f).map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof
                    || e.kind() == io::ErrorKind::InvalidData
                {
                    refused(format!("reading the archive failed: {e}"))
                } else {
                    self.io("write", rel)(e)
                }
            })?;
            at::chown_file(&f, uid, gid).map_err(self.io("lchown", rel))?;
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
                .map_err(self.io("chmod", rel))?;
            drop(f);
            let _ = parent.set_times(&tmp, mtime, mtime);
            parent.rename(&tmp, name).map_err(self.io("rename", rel))
        })();
        if res.is_err() {
            let _ = parent.remove(&tmp, false);
        }
        res
    }
}

/// Go's `filepath.Join(dir, target)` takes an absolute target as relative to `dir`.
fn trim_leading_slashes(mut s: &[u8]) -> &[u8] {
    while let [b'/', rest @ ..] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A tar entry with `name` written raw (the tar crate's builder refuses `..`).
    fn raw_entry(out: &mut Vec<u8>, name: &[u8], typ: tar::EntryType, link: &[u8], data: &[u8]) {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(typ);
        h.set_mode(if typ.is_dir() { 0o755 } else { 0o644 });
        h.set_size(data.len() as u64);
        h.set_mtime(1_600_000_000);
        let u = h.as_ustar_mut().unwrap();
        u.name[..name.len()].copy_from_slice(name);
        u.linkname[..link.len()].copy_from_slice(link);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        let rem = data.len() % 512;
        if rem != 0 {
            out.extend(std::iter::repeat_n(0u8, 512 - rem));
        }
    }

    fn tar_of(entries: &[(&str, tar::EntryType, &str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, t, l, d) in entries {
            raw_entry(&mut out, n.as_bytes(), *t, l.as_bytes(), d.as_bytes());
        }
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    fn run(dest: &Path, tar: &[u8], opts: Options) -> Result<(), ContainerFsError> {
        let d = Dir::open_host(dest).unwrap();
        extract(tar, &d, "/dest", opts)
    }

    use tar::EntryType as T;

    #[test]
    fn unpacks_files_dirs_links() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("old"), "old").unwrap();
        let tar = tar_of(&[
            ("./", T::Directory, "", ""),
            ("d/", T::Directory, "", ""),
            ("d/f", T::Regular, "", "hello"),
            ("d/h", T::Link, "d/f", ""),
            ("d/s", T::Symlink, "/etc/passwd", ""),
            ("deep/er/f", T::Regular, "", "x"),
            ("old", T::Regular, "", "new"),
        ]);
        run(&dest, &tar, Options::default()).unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("d/f")).unwrap(), "hello");
        assert_eq!(std::fs::read_to_string(dest.join("d/h")).unwrap(), "hello");
        assert_eq!(
            std::fs::read_link(dest.join("d/s")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(std::fs::read_to_string(dest.join("old")).unwrap(), "new");
        assert_eq!(
            std::fs::read_to_string(dest.join("deep/er/f")).unwrap(),
            "x"
        );
        let names = crate::util::sorted_names(&dest.join("d"));
        assert!(
            !names.iter().any(|n| n.starts_with(".berth-cp")),
            "{names:?}"
        );
    }

    #[test]
    fn hostile_archives_are_refused_and_write_nothing_outside() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        std::fs::create_dir(t.path().join("outside")).unwrap();
        std::os::unix::fs::symlink(t.path().join("outside"), dest.join("esc")).unwrap();
        let cases: &[&[(&str, tar::EntryType, &str, &str)]] = &[
            &[("../outside/f", T::Regular, "", "x")],
            &[("a/../../outside/f", T::Regular, "", "x")],
            &[("/outside/f", T::Regular, "", "x")],
            &[("esc/f", T::Regular, "", "x")],
            &[("l", T::Symlink, "../outside", "")],
            &[
                ("l2", T::Symlink, "/", ""),
                ("l2/outside/f", T::Regular, "", "x"),
            ],
            &[("h", T::Link, "../outside/g", "")],
            &[("dev", T::Char, "", "")],
        ];
        for c in cases {
            let e = run(&dest, &tar_of(c), Options::default()).unwrap_err();
            assert_eq!(
                e.kind(),
                crate::error::ErrorKind::InvalidParameter,
                "{c:?}: {e}"
            );
        }
        assert!(crate::util::sorted_names(&t.path().join("outside")).is_empty());
        assert!(!dest.join("dev").exists());
    }

    #[test]
    fn no_overwrite_dir_non_dir() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path();
        std::fs::create_dir(dest.join("d")).unwrap();
        std::fs::write(dest.join("f"), "").unwrap();
        let opts = Options {
            no_overwrite_dir_non_dir: true,
            chown: None,
        };
        let e = run(dest, &tar_of(&[("d", T::Regular, "", "x")]), opts).unwrap_err();
        assert!(e.to_string().contains("cannot overwrite directory"), "{e}");
        let e = run(dest, &tar_of(&[("f/", T::Directory, "", "")]), opts).unwrap_err();
        assert!(
            e.to_string().contains("cannot overwrite non-directory"),
            "{e}"
        );
        run(
            dest,
            &tar_of(&[("d", T::Regular, "", "x")]),
            Options::default(),
        )
        .unwrap();
        assert!(dest.join("d").is_file());
    }
}
