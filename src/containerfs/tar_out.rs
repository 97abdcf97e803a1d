//! Tar streams of a container's files, as dockerd's `archive.TarWithOptions` writes
//! them: entries in `filepath.Walk` order (each directory before what it holds, names
//! sorted), directory names ending in `/`, the file type bits in the mode, times to the
//! second, a file seen again through another hard link written as a link to the first
//! name, sockets left out. Names that do not fit a ustar header get a PAX record, as Go's
//! writer does. Entries that vanish or cannot be read while the walk runs are skipped,
//! as dockerd skips them (the container may be changing its files).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;

use super::paths::{Source, Target};
use crate::sys::at::{self, Dir, Kind, Stat};

/// Writes the entries of one archive to `w`.
#[derive(Debug)]
pub struct TarOut<W: Write> {
    w: W,
    /// (dev, ino) → the name written first, for hard links.
    seen: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> TarOut<W> {
    pub fn new(w: W) -> Self {
        TarOut {
            w,
            seen: HashMap::new(),
        }
    }

    /// `GET …/archive`: the source, its names rebased on `source.rebase`
    /// (`TarResourceRebase`).
    pub fn source(&mut self, source: &Source) -> io::Result<()> {
        let base = &source.rebase;
        match &source.target {
            Target::Dir(d) => {
                let mut name = base.clone();
                name.push(b'/');
                self.entry(&name, &source.lstat, None, None)?;
                self.tree(d, Some(base))
            }
            Target::Entry { parent, name } => self.child(parent, name, base.clone()),
        }
    }

    /// `GET …/export`: everything under `root`, named from it without a leading `./`.
    pub fn export(&mut self, root: &Dir) -> io::Result<()> {
        self.tree(root, None)
    }

    /// Ends the archive (two zero blocks) and flushes.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.write_all(&[0u8; 1024])?;
        self.w.flush()?;
        Ok(self.w)
    }

    /// The entries below `dir`, named `prefix/<name>` (`<name>` without a prefix). A
    /// pseudo filesystem (a running container's /proc, /sys) is not gone into.
    fn tree(&mut self, dir: &Dir, prefix: Option<&Vec<u8>>) -> io::Result<()> {
        if at::is_pseudo_fs(dir) {
            return Ok(());
        }
        let Ok(names) = dir.entries() else {
            return Ok(());
        };
        for n in names {
            let name = match prefix {
                Some(p) => [p.as_slice(), b"/", n.as_bytes()].concat(),
                None => n.as_bytes().to_vec(),
            };
            self.child(dir, &n, name)?;
        }
        Ok(())
    }

    /// The entry `n` of `dir` (and what it holds) as `name`. Only a write error fails.
    fn child(&mut self, dir: &Dir, n: &OsStr, name: Vec<u8>) -> io::Result<()> {
        let Ok(st) = dir.stat(n) else {
            return Ok(());
        };
        match st.kind {
            Kind::Dir => {
                let Ok(sub) = dir.open_dir(n) else {
                    return Ok(());
                };
                let mut dname = name.clone();
                dname.push(b'/');
                self.entry(&dname, &st, None, None)?;
                self.tree(&sub, Some(&name))
            }
            Kind::Symlink => {
                let Ok(target) = dir.read_link(n) else {
                    return Ok(());
                };
                self.entry(&name, &st, Some(target.as_bytes()), None)
            }
            Kind::Socket => Ok(()),
            Kind::File => {
                if st.nlink > 1 {
                    if let Some(first) = self.seen.get(&(st.dev, st.ino)).cloned() {
                        return self.entry(&name, &st, Some(&first), None);
                    }
                }
                let Ok(mut f) = dir.open_file(n) else {
                    return Ok(());
                };
                if st.nlink > 1 {
                    self.seen.insert((st.dev, st.ino), name.clone());
                }
                self.entry(&name, &st, None, Some(&mut f))
            }
            Kind::CharDevice | Kind::BlockDevice | Kind::Fifo => self.entry(&name, &st, None, None),
        }
    }

    /// One header (with a PAX record first when a name needs it) and, for a file, its
    /// `st.size` bytes from `data` (zeros if it shrank meanwhile). `link` is a symlink's
    /// target, or for a regular file the name it is a hard link to.
    fn entry(
        &mut self,
        name: &[u8],
        st: &Stat,
        link: Option<&[u8]>,
        data: Option<&mut std::fs::File>,
    ) -> io::Result<()> {
        let mut h = tar::Header::new_ustar();
        let (typ, type_bits) = match st.kind {
            Kind::Dir => (tar::EntryType::Directory, libc::S_IFDIR),
            Kind::Symlink => (tar::EntryType::Symlink, libc::S_IFLNK),
            Kind::CharDevice => (tar::EntryType::Char, libc::S_IFCHR),
            Kind::BlockDevice => (tar::EntryType::Block, libc::S_IFBLK),
            Kind::Fifo => (tar::EntryType::Fifo, libc::S_IFIFO),
            Kind::File | Kind::Socket if link.is_some() => (tar::EntryType::Link, libc::S_IFREG),
            Kind::File | Kind::Socket => (tar::EntryType::Regular, libc::S_IFREG),
        };
        h.set_entry_type(typ);
        h.set_mode(st.perm | type_bits);
        h.set_uid(u64::from(st.uid));
        h.set_gid(u64::from(st.gid));
        h.set_mtime(u64::try_from(st.mtime.secs).unwrap_or(0));
        let size = if typ == tar::EntryType::Regular {
            st.size
        } else {
            0
        };
        h.set_size(size);
        if matches!(st.kind, Kind::CharDevice | Kind::BlockDevice) {
            let major = libc::major(st.rdev);
            let minor = libc::minor(st.rdev);
            h.set_device_major(major)?;
            h.set_device_minor(minor)?;
        }
        let mut pax: Vec<(&str, &[u8])> = Vec::new();
        {
            let ustar = h
                .as_ustar_mut()
                .ok_or_else(|| io::Error::other("not a ustar header"))?;
            match split_ustar(name) {
                Some((prefix, rest)) => {
                    ustar.prefix[..prefix.len()].copy_from_slice(prefix);
                    ustar.name[..rest.len()].copy_from_slice(rest);
                }
                None if fits(name, 100) => ustar.name[..name.len()].copy_from_slice(name),
                None => {
                    let cut = name.len().min(100);
                    ustar.name[..cut].copy_from_slice(&name[..cut]);
                    pax.push(("path", name));
                }
            }
            if let Some(l) = link {
                if fits(l, 100) {
                    ustar.linkname[..l.len()].copy_from_slice(l);
                } else {
                    let cut = l.len().min(100);
                    ustar.linkname[..cut].copy_from_slice(&l[..cut]);
                    pax.push(("linkpath", l));
                }
            }
        }
        h.set_cksum();
        if !pax.is_empty() {
            self.pax(&pax)?;
        }
        self.w.write_all(h.as_bytes())?;
        if let Some(f) = data {
            copy_exact(f, &mut self.w, size)?;
            pad(&mut self.w, size)?;
        }
        Ok(())
    }

    /// A PAX extended header (`x`) with `records`.
    fn pax(&mut self, records: &[(&str, &[u8])]) -> io::Result<()> {
        let mut body = Vec::new();
        for (k, v) in records {
            // "<len> <key>=<value>\n", where <len> counts itself.
            let rest = k.len() + v.len() + 3;
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            body.extend_from_slice(format!("{len} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_mode(0o644);
        h.set_size(body.len() as u64);
        if let Some(u) = h.as_ustar_mut() {
            let n = b"././@PaxHeader";
            u.name[..n.len()].copy_from_slice(n);
        }
        h.set_cksum();
        self.w.write_all(h.as_bytes())?;
        self.w.write_all(&body)?;
        pad(&mut self.w, body.len() as u64)
    }
}

fn fits(s: &[u8], n: usize) -> bool {
    s.len() <= n && s.is_ascii()
}

/// Go's `splitUSTARPath`: a long ASCII name split at a `/` into a prefix of at most 155
/// bytes and a name of at most 100.
fn split_ustar(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= 100 || !name.is_ascii() {
        return None;
    }
    let mut length = name.len();
    if length > 156 {
        length = 156;
    } else if name[length - 1] == b'/' {
        length -= 1;
    }
    let i = name[..length].iter().rposition(|b| *b == b'/')?;
    let nlen = name.len() - i - 1;
    if i == 0 || nlen > 100 || nlen == 0 || i > 155 {
        return None;
    }
    Some((&name[..i], &name[i + 1..]))
}

/// Copies exactly `size` bytes: what the file holds, then zeros if it shrank.
fn copy_exact(f: &mut std::fs::File, w: &mut impl Write, size: u64) -> io::Result<()> {
    let mut left = size;
    let mut buf = vec![0u8; 256 << 10];
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = match f.read(&mut buf[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        w.write_all(&buf[..n])?;
        left -= n as u64;
    }
    buf.fill(0);
    while left > 0 {
        let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        w.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

fn pad(w: &mut impl Write, size: u64) -> io::Result<()> {
    let rem = usize::try_from(size % 512).unwrap_or(0);
    if rem != 0 {
        w.write_all(&[0u8; 512][..512 - rem])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerfs::paths::stat_path;
    use std::os::unix::fs::symlink;

    fn names(tar: &[u8]) -> Vec<(String, tar::EntryType, String)> {
        let mut a = tar::Archive::new(tar);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let n = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                let l = e
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .unwrap_or_default();
                (n, e.header().entry_type(), l)
            })
            .collect()
    }

    fn archive(root: &Dir, path: &str) -> Vec<(String, tar::EntryType, String)> {
        let src = stat_path(root, path, "c").unwrap();
        let mut t = TarOut::new(Vec::new());
        t.source(&src).unwrap();
        names(&t.finish().unwrap())
    }

    #[test]
    fn names_rebased_as_dockerd() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("d/sub")).unwrap();
        std::fs::write(r.join("d/f"), "hello").unwrap();
        std::fs::hard_link(r.join("d/f"), r.join("d/g")).unwrap();
        symlink("/d", r.join("l")).unwrap();
        let long = "x".repeat(120);
        std::fs::write(r.join("d/sub").join(&long), "").unwrap();
        let root = Dir::open_host(r).unwrap();

        let d: Vec<String> = archive(&root, "/d").into_iter().map(|e| e.0).collect();
        assert_eq!(d, ["d/", "d/f", "d/g", "d/sub/", &format!("d/sub/{long}")]);
        let all = archive(&root, "/d");
        assert_eq!(all[2].1, tar::EntryType::Link);
        assert_eq!(all[2].2, "d/f");
        let dot: Vec<String> = archive(&root, "/d/.").into_iter().map(|e| e.0).collect();
        assert_eq!(dot[..3], ["./", "./f", "./g"]);
        let via: Vec<String> = archive(&root, "/l/").into_iter().map(|e| e.0).collect();
        assert_eq!(via[..2], ["l/", "l/f"]);
        let link = archive(&root, "/l");
        assert_eq!(link, [("l".into(), tar::EntryType::Symlink, "/d".into())]);
        let file = archive(&root, "/d/f");
        assert_eq!(file[0].0, "f");
        let top: Vec<String> = archive(&root, "/").into_iter().map(|e| e.0).collect();
        assert_eq!(top[..3], ["/", "/d/", "/d/f"]);

        let mut t = TarOut::new(Vec::new());
        t.export(&root).unwrap();
        let ex: Vec<String> = names(&t.finish().unwrap())
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(ex[..2], ["d/", "d/f"]);
        assert_eq!(ex.last().unwrap(), "l");
    }
}
