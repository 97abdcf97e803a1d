//! A container's changes: `docker diff` (what its read-write layer adds, changes and
//! deletes) and `docker commit` (those changes as a new layer over its image, and an image
//! config that records the step).
//!
//! overlay2: the changes are the container layer's upper dir, read against the layers
//! below it (the image's, and the init layer of mount points): a 0/0 character device is a
//! deletion, a path the layers below have is a change, anything else an addition. vfs: the
//! container's full copy compared with the image's top layer. A change's tar stream
//! (dockerd's `ExportChanges`) is written from the container layer in path order, with a
//! `.wh.<name>` entry for each deletion and `.wh..wh..opq` in an opaque directory, and
//! made into the new layer as a load makes one (so its stream is kept byte for byte).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::load::Pins;
use super::{GraphStore, host_arch};
use crate::actors::graph::error::GraphError;

/// dockerd's change kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    Modify = 0,
    Add = 1,
    Delete = 2,
}

/// One change, its path absolute inside the container (`/etc/passwd`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub kind: ChangeKind,
}

/// The sha256 of an empty tar stream (two zero blocks): a commit without changes.
const EMPTY_TAR: &str = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> GraphError + '_ {
    move |source| GraphError::Io {
        path: path.to_owned(),
        source,
    }
}

fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    matches!(xattr::get(path, "trusted.overlay.opaque"), Ok(Some(v)) if v == b"y")
}

/// `rel` in the layers below (top first), as overlayfs would show it: `None` when no
/// layer has it, or a higher one whites it out or makes a parent opaque.
fn lower_lookup(lowers: &[PathBuf], rel: &Path) -> Option<fs::Metadata> {
    for l in lowers {
        if let Ok(m) = fs::symlink_metadata(l.join(rel)) {
            return (!is_whiteout(&m)).then_some(m);
        }
        let mut cur = PathBuf::new();
        for c in rel.parent().into_iter().flat_map(Path::components) {
            cur.push(c);
            if is_opaque(&l.join(&cur)) {
                return None;
            }
        }
    }
    None
}

fn same_meta(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.mode() == b.mode()
        && a.uid() == b.uid()
        && a.gid() == b.gid()
        && a.mtime() == b.mtime()
        && a.mtime_nsec() == b.mtime_nsec()
        && (a.is_dir() || a.len() == b.len())
}

/// Every path under `root`, relative, parents before children, in name order.
fn walk(root: &Path) -> Result<Vec<(PathBuf, fs::Metadata)>, GraphError> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(dir) = stack.pop() {
        let abs = root.join(&dir);
        let mut names: Vec<_> = fs::read_dir(&abs)
            .map_err(io_err(&abs))?
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        names.sort();
        let mut subdirs = Vec::new();
        for n in names {
            let rel = dir.join(&n);
            let m = fs::symlink_metadata(root.join(&rel)).map_err(io_err(&root.join(&rel)))?;
            if m.is_dir() {
                subdirs.push(rel.clone());
            }
            out.push((rel, m));
        }
        // Depth first, in order: push in reverse.
        stack.extend(subdirs.into_iter().rev());
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn abs(rel: &Path) -> String {
    format!("/{}", rel.display())
}

/// Adds `change` and, for an addition or deletion, its parent as changed (dockerd's rule).
fn push_change(out: &mut BTreeMap<String, ChangeKind>, rel: &Path, kind: ChangeKind) {
    out.entry(abs(rel)).or_insert(kind);
    if kind != ChangeKind::Modify {
        if let Some(p) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            out.entry(abs(p)).or_insert(ChangeKind::Modify);
        }
    }
}

impl GraphStore {
    /// The container layer's dir and the dirs below it (top first), and whether it is an
    /// overlay upper dir.
    fn rw_dirs(&self, container_id: &str) -> Result<(PathBuf, Vec<PathBuf>, bool), GraphError> {
        let st = self.state.lock();
        let m = st
            .mounts
            .get(container_id)
            .ok_or_else(|| GraphError::Conflict {
                message: format!("container {container_id} has no read-write layer"),
            })?;
        let mut lowers = Vec::new();
        let overlay = self.driver.name() == "overlay2";
        if overlay {
            lowers.extend(m.init_id.iter().map(|i| self.driver.content_dir(i)));
        }
        let mut cur = Some(m.parent.clone());
        while let Some(c) = cur {
            let Some(l) = st.layers.get(&c) else { break };
            lowers.push(self.driver.content_dir(&l.cache_id));
            cur = l.parent.clone();
        }
        Ok((self.driver.content_dir(&m.mount_id), lowers, overlay))
    }

    /// `docker diff`: the container's changes, in path order.
    pub fn changes(&self, container_id: &str) -> Result<Vec<Change>, GraphError> {
        let (rw, lowers, overlay) = self.rw_dirs(container_id)?;
        let mut out: BTreeMap<String, ChangeKind> = BTreeMap::new();
        if overlay {
            for (rel, m) in walk(&rw)? {
                if is_whiteout(&m) {
                    if lower_lookup(&lowers, &rel).is_some() {
                        push_change(&mut out, &rel, ChangeKind::Delete);
                    }
                    continue;
                }
                match lower_lookup(&lowers, &rel) {
                    None => push_change(&mut out, &rel, ChangeKind::Add),
                    Some(old) if m.is_dir() && old.is_dir() && same_meta(&m, &old) => {}
                    Some(_) => push_change(&mut out, &rel, ChangeKind::Modify),
                }
            }
        } else {
            // vfs: the full copy against the image's top layer (mount points the copy
            // added are the init layer's under overlay2: not changes).
            let base = lowers.first().cloned();
            let old: HashMap<PathBuf, fs::Metadata> = match &base {
                Some(b) => walk(b)?.into_iter().collect(),
                None => HashMap::new(),
            };
            let mut seen = HashSet::new();
            for (rel, m) in walk(&rw)? {
                seen.insert(rel.clone());
                match old.get(&rel) {
                    None if super::super::driver::is_mountpoint_path(&rel) => {}
                    None => push_change(&mut out, &rel, ChangeKind::Add),
                    Some(o) if same_meta(&m, o) => {}
                    Some(_) => push_change(&mut out, &rel, ChangeKind::Modify),
                }
            }
            for rel in old.keys().filter(|r| !seen.contains(*r)) {
                push_change(&mut out, rel, ChangeKind::Delete);
            }
        }
        Ok(out
            .into_iter()
            .map(|(path, kind)| Change { path, kind })
            .collect())
    }

    /// Writes the tar stream of `changes` of the container (dockerd's `ExportChanges`).
    fn export_changes(
        &self,
        container_id: &str,
        changes: &[Change],
        out: impl Write,
    ) -> Result<(), GraphError> {
        let (rw, _, overlay) = self.rw_dirs(container_id)?;
        let mut b = tar::Builder::new(out);
        b.mode(tar::HeaderMode::Complete);
        b.follow_symlinks(false);
        let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
        let tar_err = |e: io::Error| GraphError::Io {
            path: rw.clone(),
            source: e,
        };
        for c in changes {
            let rel = PathBuf::from(c.path.trim_start_matches('/'));
            if c.kind == ChangeKind::Delete {
                let name = rel.file_name().map(|n| n.as_bytes()).unwrap_or_default();
                let mut wh = rel.parent().unwrap_or(Path::new("")).to_path_buf();
                wh.push(std::ffi::OsStr::from_bytes(&[b".wh.", name].concat()));
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(0);
                h.set_mode(0);
                h.set_mtime(0);
                b.append_data(&mut h, &wh, io::empty()).map_err(tar_err)?;
                continue;
            }
            let path = rw.join(&rel);
            let m = fs::symlink_metadata(&path).map_err(io_err(&path))?;
            let mut h = tar::Header::new_gnu();
            h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
            let xattrs: Vec<(String, Vec<u8>)> = xattr::list(&path)
                .into_iter()
                .flatten()
                .filter_map(|n| {
                    let name = n.to_string_lossy().into_owned();
                    if name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") {
                        return None;
                    }
                    xattr::get(&path, &n).ok().flatten().map(|v| (name, v))
                })
                .collect();
            if !xattrs.is_empty() {
                let exts: Vec<(String, Vec<u8>)> = xattrs
                    .into_iter()
                    .map(|(n, v)| (format!("SCHILY.xattr.{n}"), v))
                    .collect();
                b.append_pax_extensions(exts.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                    .map_err(tar_err)?;
            }
            let ft = m.file_type();
            if ft.is_dir() {
                b.append_data(&mut h, &rel, io::empty()).map_err(tar_err)?;
                if overlay && is_opaque(&path) {
                    let mut o = tar::Header::new_gnu();
                    o.set_entry_type(tar::EntryType::Regular);
                    o.set_size(0);
                    o.set_mode(0);
                    o.set_mtime(0);
                    b.append_data(&mut o, rel.join(".wh..wh..opq"), io::empty())
                        .map_err(tar_err)?;
                }
            } else if ft.is_symlink() {
                let target = fs::read_link(&path).map_err(io_err(&path))?;
                b.append_link(&mut h, &rel, &target).map_err(tar_err)?;
            } else if ft.is_file() {
                if m.nlink() > 1 {
                    if let Some(first) = links.get(&(m.dev(), m.ino())) {
                        h.set_entry_type(tar::EntryType::Link);
                        h.set_size(0);
                        b.append_link(&mut h, &rel, first).map_err(tar_err)?;
                        continue;
                    }
                    links.insert((m.dev(), m.ino()), rel.clone());
                }
                let f = fs::File::open(&path).map_err(io_err(&path))?;
                b.append_data(&mut h, &rel, f).map_err(tar_err)?;
            } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
                b.append_data(&mut h, &rel, io::empty()).map_err(tar_err)?;
            }
            // Sockets are left out, as dockerd leaves them.
        }
        b.finish().map_err(tar_err)
    }

    /// `docker commit`: the container's changes as a layer over `image_id` (skipped when
    /// there are none) and an image config: `config` (the new image's runtime config),
    /// the image's history with `step` added (`created_by`, `comment`, `author`), and
    /// `container` facts. Tags it with `tags`; records `image_id` as its parent. Replies
    /// `sha256:<id>`. Blocking.
    pub fn commit(
        &self,
        container_id: &str,
        image_id: &str,
        config: Value,
        step: CommitStep,
        tags: &[(String, String)],
    ) -> Result<String, GraphError> {
        let parent_hex = image_id.trim_start_matches("sha256:").to_owned();
        let (parent_raw, parent_chain) = {
            let st = self.state.lock();
            let img = st
                .images
                .get(&parent_hex)
                .ok_or_else(|| GraphError::ImageNotFound {
                    reference: image_id.to_owned(),
                })?;
            (img.raw.clone(), img.chain.last().cloned())
        };
        // The changes' stream, written on a thread into the layer's extraction; none
        // when nothing changed (dockerd's empty layer).
        let changes = self.changes(container_id)?;
        let mut pins = Pins::new(self);
        let diff_id = if changes.is_empty() {
            None
        } else {
            let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| io_err(Path::new("pipe"))(io::Error::from(e)))?;
            let (reader, writer) = (fs::File::from(reader), fs::File::from(writer));
            let made = std::thread::scope(|s| {
                let writing = s.spawn(|| self.export_changes(container_id, &changes, writer));
                let made = self.add_layer_any(reader, parent_chain.as_deref(), &mut pins);
                let wrote = writing.join().unwrap_or(Err(GraphError::TaskFailed {
                    operation: "container commit",
                }));
                wrote.and(made)
            })?;
            Some(made.0)
        };
        let empty = diff_id.is_none() || diff_id.as_deref() == Some(EMPTY_TAR);
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut history: Vec<Value> = parent_raw
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut entry = json!({"created": now, "created_by": step.created_by});
        if !step.author.is_empty() {
            entry["author"] = step.author.clone().into();
        }
        if !step.comment.is_empty() {
            entry["comment"] = step.comment.clone().into();
        }
        if empty {
            entry["empty_layer"] = true.into();
        }
        history.push(entry);
        let mut diff_ids: Vec<Value> = parent_raw
            .pointer("/rootfs/diff_ids")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(d) = diff_id.filter(|_| !empty) {
            diff_ids.push(d.into());
        }
        let mut doc = json!({
            "architecture": parent_raw.get("architecture").and_then(Value::as_str).unwrap_or(host_arch()),
            "config": config,
            "container": container_id,
            "container_config": step.container_config,
            "created": now,
            "docker_version": env!("CARGO_PKG_VERSION"),
            "history": history,
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        if !step.author.is_empty() {
            doc["author"] = step.author.into();
        }
        let bytes = serde_json::to_vec(&doc).map_err(|e| GraphError::Io {
            path: self.imagedb(),
            source: io::Error::other(e),
        })?;
        let id = self.commit_image(&bytes, tags)?;
        drop(pins);
        {
            let st = self.state.lock();
            let img = st.images.get(id.trim_start_matches("sha256:"));
            for (name, tag) in tags {
                super::image_event(img, &id, &format!("{name}:{tag}"), "tag");
            }
        }
        let hex = id.trim_start_matches("sha256:").to_owned();
        let dir = self.image_metadata_dir().join(&hex);
        fs::create_dir_all(&dir)
            .and_then(|()| crate::util::write_atomic(&dir.join("parent"), image_id.as_bytes()))
            .map_err(io_err(&dir))?;
        self.state.lock().parents.insert(hex, parent_hex);
        Ok(id)
    }
}

/// The history step a commit adds.
#[derive(Debug, Clone, Default)]
pub struct CommitStep {
    /// The container's command line (dockerd's `CreatedBy`).
    pub created_by: String,
    pub comment: String,
    pub author: String,
    /// The container's own config, recorded as `container_config`.
    pub container_config: Value,
}
