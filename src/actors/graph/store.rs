//! The image and layer store: metadata under `data-root/image/<driver>/`, layer
//! contents through the [`Driver`].
//!
//! ```text
//! imagedb/content/sha256/<id>                  image config JSON; id = sha256 of the bytes
//! imagedb/metadata/sha256/<id>/lastUpdated      when a tag was last put on the image
//! layerdb/sha256/<chain-id>/{diff,size,cache-id,parent?}
//! layerdb/mounts/<container-id>/{mount-id,init-id?,parent}
//! repositories.json                            {"Repositories":{"busybox":{"busybox:latest":"sha256:…"}}}
//! ```
//!
//! Crash safety: layer contents are renamed into place when complete, then the layer
//! metadata dir is written under a temp name and renamed, then the image config and
//! the tag are written with `write_atomic`. Each step is durable before the next
//! starts, so a crash leaves a prefix of them; [`GraphStore::open`] removes what no
//! later step refers to (a layer dir without metadata, a layer without an image, an
//! image whose layer is gone), so that an image is either complete or absent.
//!
//! Locking: all in-memory state is behind one `parking_lot::Mutex`, held only for map
//! updates, never during extraction, copying or any fsync, so a long import does not
//! stall listing (which runs on the arbiter thread) or other imports. Tag writes are
//! serialised by a second mutex and versioned so that the newest snapshot wins.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::archive::{self, ArchiveError};
use super::changes::{ContainerConfig, apply_changes};
use super::driver::{self, Driver};
use super::error::GraphError;
use super::messages::{DriverInfo, ImageInfo, ImportImage};
use super::reference::{self, Reference};
use super::tarsplit;
use super::view::{self, ImageFacts};
use crate::config::DaemonConfig;
use crate::deleter::{self, Deleter};
use crate::model::api;
use crate::model::filters::{ImageFilter, ImageFilterView};
use crate::monitor::spec::RootfsSpec;
use crate::util::write_atomic;

/// One layer of an image (`layerdb/sha256/<chain-id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// `sha256:<hex>`.
    pub chain_id: String,
    /// `sha256:<hex>` of the uncompressed tar stream.
    pub diff_id: String,
    pub parent: Option<String>,
    /// The layer's directory name under the driver home.
    pub cache_id: String,
    pub size: i64,
}

/// A container's read-write layer (`layerdb/mounts/<container-id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRecord {
    pub mount_id: String,
    pub init_id: Option<String>,
    /// Chain id of the image's top layer.
    pub parent: String,
}

/// An image as loaded from its config.
#[derive(Debug, Clone)]
pub struct Image {
    /// 64 hex digits.
    pub id: String,
    pub raw: serde_json::Value,
    pub config: ContainerConfig,
    /// RFC 3339, as stored.
    pub created: String,
    /// Chain ids, bottom layer first.
    pub chain: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ImageDoc {
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    config: Option<ContainerConfig>,
    rootfs: RootFs,
}

#[derive(Debug, Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

impl Image {
    pub fn parse(id: &str, bytes: &[u8]) -> Result<Image, String> {
        let doc: ImageDoc = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let raw: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        Ok(Image {
            id: id.to_owned(),
            raw,
            config: doc.config.unwrap_or_default(),
            created: doc.created.unwrap_or_default(),
            chain: chain_ids(&doc.rootfs.diff_ids),
        })
    }

    fn created_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::parse_from_rfc3339(&self.created)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }

    pub fn created_unix(&self) -> i64 {
        chrono::DateTime::parse_from_rfc3339(&self.created).map_or(0, |t| t.timestamp())
    }
}

/// The chain id of the layer with diff id `diff_id` over the layer `parent` (a chain id):
/// the diff id for a base layer, else `sha256(parent + " " + diff_id)`.
pub fn chain_of(parent: Option<&str>, diff_id: &str) -> String {
    match parent {
        None => diff_id.to_owned(),
        Some(p) => format!(
            "sha256:{}",
            hex::encode(Sha256::digest(format!("{p} {diff_id}").as_bytes()))
        ),
    }
}

/// Chain ids from diff ids, bottom layer first ([`chain_of`] each over the one before).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = chain_of(out.last().map(String::as_str), d);
        out.push(next);
    }
    out
}

/// `repositories.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Repositories {
    #[serde(rename = "Repositories", default)]
    pub repositories: BTreeMap<String, BTreeMap<String, String>>,
}

impl Repositories {
    /// Points `name:tag` at `id` (`sha256:<hex>`), moving the tag if it existed.
    pub fn set(&mut self, name: &str, tag: &str, id: &str) {
        self.repositories
            .entry(name.to_owned())
            .or_default()
            .insert(format!("{name}:{tag}"), id.to_owned());
    }

    /// Removes `name:tag`; true when it was there.
    pub fn remove(&mut self, name: &str, tag: &str) -> bool {
        let Some(m) = self.repositories.get_mut(name) else {
            return false;
        };
        let removed = m.remove(&format!("{name}:{tag}")).is_some();
        if m.is_empty() {
            self.repositories.remove(name);
        }
        removed
    }

    pub fn get(&self, name: &str, tag: &str) -> Option<&str> {
        self.repositories
            .get(name)?
            .get(&format!("{name}:{tag}"))
            .map(String::as_str)
    }

    /// Every `name:tag` that points at `id`, sorted.
    pub fn tags_of(&self, id: &str) -> Vec<String> {
        self.names_of(id, false)
    }

    /// Every `name@sha256:<digest>` that points at `id` (a pull's or push's manifest
    /// digest, dockerd's `RepoDigests`), sorted.
    pub fn digests_of(&self, id: &str) -> Vec<String> {
        self.names_of(id, true)
    }

    fn names_of(&self, id: &str, digests: bool) -> Vec<String> {
        let mut out: Vec<String> = self
            .repositories
            .values()
            .flat_map(|m| m.iter())
            .filter(|(k, v)| v.as_str() == id && k.contains('@') == digests)
            .map(|(k, _)| k.clone())
            .collect();
        out.sort();
        out
    }

    /// Points `name@digest` at `id`, as dockerd's `repositories.json` keeps it.
    pub fn set_digest(&mut self, name: &str, digest: &str, id: &str) {
        self.repositories
            .entry(name.to_owned())
            .or_default()
            .insert(format!("{name}@{digest}"), id.to_owned());
    }

    pub fn get_digest(&self, name: &str, digest: &str) -> Option<&str> {
        self.repositories
            .get(name)?
            .get(&format!("{name}@{digest}"))
            .map(String::as_str)
    }

    /// Removes `name@digest`; true when it was there.
    pub fn remove_digest(&mut self, name: &str, digest: &str) -> bool {
        let Some(m) = self.repositories.get_mut(name) else {
            return false;
        };
        let removed = m.remove(&format!("{name}@{digest}")).is_some();
        if m.is_empty() {
            self.repositories.remove(name);
        }
        removed
    }

    /// Removes every digest reference to `id`.
    pub fn remove_digests_of(&mut self, id: &str) {
        for m in self.repositories.values_mut() {
            m.retain(|k, v| !(k.contains('@') && v == id));
        }
        self.repositories.retain(|_, m| !m.is_empty());
    }

    /// Drops tags whose image is not kept; true when anything changed.
    pub fn retain_images(&mut self, keep: impl Fn(&str) -> bool) -> bool {
        let mut changed = false;
        for m in self.repositories.values_mut() {
            let before = m.len();
            m.retain(|_, v| keep(v));
            changed |= m.len() != before;
        }
        self.repositories.retain(|_, m| !m.is_empty());
        changed
    }
}

#[derive(Debug, Default)]
struct State {
    /// By 64-hex id.
    images: BTreeMap<String, Image>,
    /// By chain id (`sha256:<hex>`).
    layers: HashMap<String, Layer>,
    /// By container id.
    mounts: HashMap<String, MountRecord>,
    /// Containers whose read-write layer is being made or removed.
    pending_mounts: HashSet<String>,
    /// The image's top layer (chain id) of each container layer being made: an image
    /// removal keeps these layers as it keeps those of `mounts`.
    creating_on: HashMap<String, String>,
    repos: Repositories,
    /// When a tag was last put on an image, by 64-hex id (dockerd's `LastTagTime`).
    last_tagged: HashMap<String, chrono::DateTime<chrono::Utc>>,
    /// Bumped on every tag change; see [`GraphStore::write_repos`].
    repos_version: u64,
    /// A committed image's parent image, by 64-hex id.
    parents: HashMap<String, String>,
    /// Layers a load or commit has made or found for an image it has not committed yet:
    /// kept as if an image used them (by chain id, with a count).
    pinned: HashMap<String, usize>,
    /// Layers being made by a load or commit (by chain id): another that needs the same
    /// layer waits for it instead of writing it too.
    making: HashSet<String>,
}

mod commit;
mod history;
mod load;
mod pull;
mod save;
mod tags;
mod usage;
pub use commit::{Change, ChangeKind, CommitStep};
pub use pull::{LayerStep, PullCommit, Pulled, PulledLayer, PushLayer, PushSource, StagedLayer};
pub use save::SavePlan;
pub use tags::{ImageUser, parse_until};
pub use usage::DiskUsage;

/// The graph: a driver, the metadata dir and the in-memory index of both.
#[derive(Debug)]
pub struct GraphStore {
    driver: Driver,
    meta: PathBuf,
    /// Flush layer contents (`syncfs`) before committing their metadata.
    sync_layers: bool,
    /// The index. Held for map updates only, never across disk writes, because the
    /// lookups that take it run on the actor's arbiter thread.
    state: Mutex<State>,
    /// Serialises `repositories.json` writes: the version last written.
    repos_written: Mutex<u64>,
    /// Held by an import from its check for an existing layer of the same content to
    /// its image's commit, and by an image removal throughout: a removal never takes a
    /// layer that an import has just found and counts on.
    layer_commits: Mutex<()>,
    /// Signalled when a layer in `making` is done.
    made: parking_lot::Condvar,
    /// Deletes what a removal has renamed away, off the reply path.
    deleter: Deleter,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> GraphError + '_ {
    move |source| GraphError::Io {
        path: path.to_owned(),
        source,
    }
}

fn fsync_dir(dir: &Path) -> Result<(), GraphError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_error(dir))
}

/// The image `architecture` for this host, in Go's naming.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    }
}

/// A container id that can name a directory: 1–128 of `[A-Za-z0-9_-]`.
fn valid_container_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn map_archive(e: ArchiveError) -> GraphError {
    match e {
        ArchiveError::Invalid(reason) => GraphError::InvalidArchive { reason },
        ArchiveError::Io { path, source } => GraphError::Io { path, source },
    }
}

/// Validates an import's `repo` and `tag` and returns the familiar name and the tag.
pub fn parse_repo_tag(repo: &str, tag: Option<&str>) -> Result<(String, String), GraphError> {
    let bad = |reason: String| GraphError::InvalidReference {
        reference: repo.to_owned(),
        reason,
    };
    // `repo` may still carry a tag when the caller did not split it.
    let (name, inline_tag) = reference::split_name_tag(repo);
    let tag = tag.filter(|t| !t.is_empty()).or(inline_tag);
    if crate::util::is_full_id(name) {
        return Err(bad(
            "a repository name cannot be a 64-byte hexadecimal string".into(),
        ));
    }
    let name = reference::normalize_name(name).map_err(bad)?;
    let tag = tag.unwrap_or(reference::DEFAULT_TAG);
    reference::validate_tag(tag).map_err(bad)?;
    Ok((name, tag.to_owned()))
}

impl GraphStore {
    /// Selects the driver from the configuration (flag, `$BERTH_DRIVER`, priority
    /// list) and opens the store. Removed layers are deleted on `deleter`.
    pub fn open(config: &DaemonConfig, deleter: Deleter) -> Result<GraphStore, GraphError> {
        Self::open_on(config, Self::select_driver(config)?, deleter)
    }

    /// The driver of `config` (the flag, `$BERTH_DRIVER`, prior state, the priority
    /// list), its prerequisites checked: the first half of [`GraphStore::open`].
    pub fn select_driver(config: &DaemonConfig) -> Result<Driver, GraphError> {
        let env = std::env::var(driver::DRIVER_ENV).ok();
        driver::select(
            &config.data_root,
            config.storage_driver.as_deref(),
            env.as_deref(),
        )
    }

    /// The second half of [`GraphStore::open`], with the driver selected.
    pub fn open_on(
        config: &DaemonConfig,
        drv: Driver,
        deleter: Deleter,
    ) -> Result<GraphStore, GraphError> {
        // Every storage option was checked at flag checking (`config`): none is unknown.
        let sync_layers = config.storage_opts.sync_layers;
        let store = Self::open_with(&config.data_root, drv, sync_layers, deleter)?;
        tracing::info!(
            driver = store.driver.name(),
            images = store.image_count(),
            "graph ready"
        );
        Ok(store)
    }

    /// Opens the store for `driver` under `data_root`, loading the metadata and removing
    /// what a crash left half-made.
    pub fn open_with(
        data_root: &Path,
        driver: Driver,
        sync_layers: bool,
        deleter: Deleter,
    ) -> Result<GraphStore, GraphError> {
        let meta = data_root.join("image").join(driver.name());
        let store = GraphStore {
            driver,
            meta,
            sync_layers,
            state: Mutex::new(State::default()),
            repos_written: Mutex::new(0),
            layer_commits: Mutex::new(()),
            made: parking_lot::Condvar::new(),
            deleter,
        };
        for d in [
            store.driver.home.clone(),
            store.imagedb(),
            store.layerdb(),
            store.mountsdb(),
        ] {
            fs::create_dir_all(&d).map_err(io_error(&d))?;
        }
        store.load()?;
        Ok(store)
    }

    /// Moves a corrupt image config to `<data-root>/quarantine/images/` (see
    /// [`crate::util::quarantine`]).
    fn quarantine(&self, path: &Path) -> std::io::Result<PathBuf> {
        let data_root = self
            .meta
            .parent()
            .and_then(Path::parent)
            .unwrap_or(&self.meta);
        crate::util::quarantine(data_root, "images", path)
    }

    fn imagedb(&self) -> PathBuf {
        self.meta.join("imagedb/content/sha256")
    }
    fn layerdb(&self) -> PathBuf {
        self.meta.join("layerdb/sha256")
    }
    fn mountsdb(&self) -> PathBuf {
        self.meta.join("layerdb/mounts")
    }
    /// Per-image metadata, in dockerd's layout.
    fn image_metadata_dir(&self) -> PathBuf {
        self.meta.join("imagedb/metadata/sha256")
    }
    fn repos_path(&self) -> PathBuf {
        self.meta.join("repositories.json")
    }

    /// Where pulls keep their blobs and pushes their compressed layers while they work
    /// (removed at the next open).
    pub fn work_dir(&self, what: &str) -> PathBuf {
        self.meta.join("tmp").join(what)
    }

    pub fn driver(&self) -> &Driver {
        &self.driver
    }

    pub fn image_count(&self) -> usize {
        self.state.lock().images.len()
    }

    fn load(&self) -> Result<(), GraphError> {
        let mut st = State::default();
        // Layers.
        let layerdb = self.layerdb();
        for (name, path) in list_dir(&layerdb)? {
            if name.starts_with('.') || !crate::util::is_full_id(&name) {
                remove_any(&path)?;
                continue;
            }
            match read_layer(&path, &name) {
                Ok(l) if self.driver.layer_exists(&l.cache_id) => {
                    st.layers.insert(l.chain_id.clone(), l);
                }
                Ok(l) => {
                    tracing::warn!(layer = %l.chain_id, "layer contents missing; removing its metadata");
                    remove_dir_atomic(&path)?;
                }
                Err(reason) => {
                    tracing::warn!(path = %path.display(), %reason, "unreadable layer metadata removed");
                    remove_dir_atomic(&path)?;
                }
            }
        }
        // Layers whose parent is gone are incomplete too.
        loop {
            let broken: Vec<String> = st
                .layers
                .values()
                .filter(|l| {
                    l.parent
                        .as_ref()
                        .is_some_and(|p| !st.layers.contains_key(p))
                })
                .map(|l| l.chain_id.clone())
                .collect();
            if broken.is_empty() {
                break;
            }
            for c in broken {
                st.layers.remove(&c);
                remove_dir_atomic(&layerdb.join(c.trim_start_matches("sha256:")))?;
            }
        }
        // Container layers.
        let mountsdb = self.mountsdb();
        for (name, path) in list_dir(&mountsdb)? {
            if name.starts_with('.') {
                remove_any(&path)?;
                continue;
            }
            match read_mount(&path) {
                Ok(m)
                    if self.driver.layer_exists(&m.mount_id)
                        && st.layers.contains_key(&m.parent) =>
                {
                    st.mounts.insert(name, m);
                }
                Ok(_) => {
                    tracing::warn!(container = %name, "container layer incomplete; removing it");
                    remove_dir_atomic(&path)?;
                }
                Err(reason) => {
                    tracing::warn!(path = %path.display(), %reason, "unreadable mount metadata removed");
                    remove_dir_atomic(&path)?;
                }
            }
        }
        // Images.
        let imagedb = self.imagedb();
        for (name, path) in list_dir(&imagedb)? {
            if name.starts_with('.') {
                remove_any(&path)?;
                continue;
            }
            let bytes = fs::read(&path).map_err(io_error(&path))?;
            let parsed = if !crate::util::is_full_id(&name) {
                Err("not named by an image id".to_owned())
            } else if hex::encode(Sha256::digest(&bytes)) != name {
                Err("its content does not match its id".to_owned())
            } else {
                Image::parse(&name, &bytes)
            };
            match parsed {
                Ok(img) if img.chain.iter().all(|c| st.layers.contains_key(c)) => {
                    st.images.insert(name, img);
                }
                Ok(_) => {
                    tracing::warn!(image = %name, "image layers missing; removing the image");
                    fs::remove_file(&path).map_err(io_error(&path))?;
                }
                // Corrupt (truncated, garbage): moved aside, never deleted, and the
                // image is gone from the store (its layers too, unless a container's
                // layer or another image uses them), as dockerd's store skips it.
                Err(reason) => match self.quarantine(&path) {
                    Ok(to) => tracing::error!(
                        path = %path.display(), moved_to = %to.display(), %reason,
                        "corrupt image config moved aside"
                    ),
                    Err(e) => tracing::error!(
                        path = %path.display(), %reason, error = %e,
                        "corrupt image config ignored; it could not be moved aside"
                    ),
                },
            }
        }
        // Tag times, of the images there are.
        let metadata = self.image_metadata_dir();
        if metadata.is_dir() {
            for (name, path) in list_dir(&metadata)? {
                if !st.images.contains_key(&name) {
                    remove_any(&path)?;
                    continue;
                }
                let time = read_small(&path, "lastUpdated")
                    .ok()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok());
                if let Some(t) = time {
                    st.last_tagged
                        .insert(name.clone(), t.with_timezone(&chrono::Utc));
                }
                // A committed image's parent (dockerd's `metadata/.../parent`).
                let parent = read_small(&path, "parent").ok().and_then(|p| {
                    p.trim()
                        .strip_prefix("sha256:")
                        .filter(|h| st.images.contains_key(*h))
                        .map(str::to_owned)
                });
                if let Some(p) = parent {
                    st.parents.insert(name, p);
                }
            }
        }
        // Layers no image or container uses (a crash between layer and image commit).
        let mut used: HashSet<String> = HashSet::new();
        for img in st.images.values() {
            used.extend(img.chain.iter().cloned());
        }
        for m in st.mounts.values() {
            let mut cur = Some(m.parent.clone());
            while let Some(c) = cur {
                cur = st.layers.get(&c).and_then(|l| l.parent.clone());
                used.insert(c);
            }
        }
        let unused: Vec<String> = st
            .layers
            .keys()
            .filter(|c| !used.contains(*c))
            .cloned()
            .collect();
        for c in unused {
            tracing::info!(layer = %c, "removing a layer no image uses");
            st.layers.remove(&c);
            remove_dir_atomic(&layerdb.join(c.trim_start_matches("sha256:")))?;
        }
        // What a load that a crash stopped had unpacked.
        let tmp = self.meta.join("tmp");
        if tmp.exists() {
            remove_any(&tmp)?;
        }
        // Tags.
        let repos_path = self.repos_path();
        for (name, path) in list_dir(&self.meta)? {
            if name.starts_with(".repositories.json.tmp") {
                remove_any(&path)?;
            }
        }
        if let Ok(bytes) = fs::read(&repos_path) {
            match serde_json::from_slice::<Repositories>(&bytes) {
                Ok(r) => st.repos = r,
                // Moved aside rather than overwritten by the next tag.
                Err(e) => match self.quarantine(&repos_path) {
                    Ok(to) => tracing::error!(
                        path = %repos_path.display(), moved_to = %to.display(), error = %e,
                        "corrupt repositories.json moved aside; tags lost"
                    ),
                    Err(q) => tracing::error!(
                        error = %e, quarantine_error = %q, "repositories.json unreadable; tags lost"
                    ),
                },
            }
        }
        let images = &st.images;
        let changed = st.repos.retain_images(|id| {
            id.strip_prefix("sha256:")
                .is_some_and(|h| images.contains_key(h))
        });
        if changed {
            write_json(&repos_path, &st.repos)?;
        }
        // Layer dirs nothing names.
        let mut keep: HashSet<String> = st.layers.values().map(|l| l.cache_id.clone()).collect();
        for m in st.mounts.values() {
            keep.insert(m.mount_id.clone());
            keep.extend(m.init_id.clone());
        }
        self.driver.cleanup(&keep)?;
        *self.state.lock() = st;
        Ok(())
    }

    /// `docker import`: extracts the tarball into a new layer, writes the image config
    /// and tags it. Blocking; run it on a blocking thread.
    pub fn import(&self, msg: ImportImage) -> Result<String, GraphError> {
        let target = match msg.repo.as_deref().filter(|r| !r.is_empty()) {
            Some(repo) => Some(parse_repo_tag(repo, msg.tag.as_deref())?),
            None => None,
        };
        let mut cfg = ContainerConfig::default();
        apply_changes(&mut cfg, &msg.changes)
            .map_err(|(change, reason)| GraphError::InvalidChange { change, reason })?;

        let (cache_id, content) = self.driver.new_layer()?;
        let opts = archive::Options {
            record: true,
            ..Default::default()
        };
        let extracted = match archive::extract_with(msg.source, &content, opts) {
            Ok(x) => x,
            Err(e) => {
                self.discard(&cache_id);
                return Err(map_archive(e));
            }
        };
        self.commit_import(&cache_id, &content, extracted, cfg, &msg.message, target)
    }

    fn discard(&self, cache_id: &str) {
        if let Err(e) = self.driver.remove(cache_id) {
            tracing::warn!(layer = %cache_id, error = %e, "removing a failed layer failed");
        }
    }

    /// Renames a layer dir away now and deletes it on the deleter (a crash in between
    /// leaves a `-removing-` dir that Init deletes).
    fn remove_layer_detached(&self, cache_id: &str) {
        let mut doomed = Vec::with_capacity(1);
        if let Err(e) = self.driver.doom(cache_id, &mut doomed) {
            tracing::warn!(layer = %cache_id, error = %e, "layer dir not removed");
        }
        self.deleter.delete_all(doomed);
    }

    fn commit_import(
        &self,
        cache_id: &str,
        content: &Path,
        extracted: archive::Extracted,
        cfg: ContainerConfig,
        message: &str,
        target: Option<(String, String)>,
    ) -> Result<String, GraphError> {
        let prepared = self.prepare_import(cache_id, content, &extracted, cfg, message);
        let (layer, id, bytes, image) = match prepared {
            Ok(x) => x,
            Err(e) => {
                self.discard(cache_id);
                return Err(e);
            }
        };
        // The fsyncs happen outside the state lock, so lookups never wait for the disk.
        let _commits = self.layer_commits.lock();
        let chain_hex = layer.chain_id.trim_start_matches("sha256:").to_owned();
        let mut duplicate = self.state.lock().layers.contains_key(&layer.chain_id);
        let mut registered = None;
        if !duplicate {
            match self.write_layer(&layer, extracted.split.as_deref()) {
                Ok(()) => registered = Some(layer.clone()),
                Err(e) => {
                    // Another import of the same content may have won the rename.
                    match read_layer(&self.layerdb().join(&chain_hex), &chain_hex) {
                        Ok(existing) => {
                            duplicate = true;
                            registered = Some(existing);
                        }
                        Err(_) => {
                            self.discard(cache_id);
                            return Err(e);
                        }
                    }
                }
            }
        }
        // From here on a failure leaves a layer no image uses; Init removes it.
        let path = self.imagedb().join(&id);
        write_atomic(&path, &bytes).map_err(io_error(&path))?;
        let full = format!("sha256:{id}");
        let tagged = target.as_ref().map(|_| self.record_tag_time(&id));
        let mut named = None;
        let repos = {
            let mut st = self.state.lock();
            if let Some(l) = registered {
                st.layers.entry(l.chain_id.clone()).or_insert(l);
            }
            st.images.insert(id.clone(), image);
            if let Some(t) = tagged {
                st.last_tagged.insert(id.clone(), t);
            }
            target.map(|(name, tag)| {
                st.repos.set(&name, &tag, &full);
                named = Some((name, tag));
                st.repos_version += 1;
                (st.repos_version, st.repos.clone())
            })
        };
        if let Some((version, repos)) = repos {
            self.write_repos(version, &repos)?;
        }
        {
            let st = self.state.lock();
            let img = st.images.get(&id);
            image_event(img, &full, &full, "import");
            if let Some((name, tag)) = &named {
                image_event(img, &full, &format!("{name}:{tag}"), "tag");
            }
        }
        if duplicate {
            // The same content is already a layer: keep that one, and delete the new
            // copy off the reply path.
            self.remove_layer_detached(cache_id);
        }
        Ok(full)
    }

    /// Takes the time of a tag being put on image `id` and writes it where dockerd keeps
    /// it. Not fsynced: after a power cut the image may show dockerd's "never tagged"
    /// time, which costs less than an fsync on every tagging import. A failed write is
    /// logged and leaves the same.
    fn record_tag_time(&self, id: &str) -> chrono::DateTime<chrono::Utc> {
        let now = chrono::Utc::now();
        let dir = self.image_metadata_dir().join(id);
        let text = now.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let written = fs::create_dir_all(&dir).and_then(|()| {
            crate::util::write_atomic_nosync(&dir.join("lastUpdated"), text.as_bytes())
        });
        if let Err(e) = written {
            tracing::warn!(image = %id, error = %e, "the tag time was not recorded");
        }
        now
    }

    /// Writes a snapshot of the tags unless a newer one is already on disk.
    fn write_repos(&self, version: u64, repos: &Repositories) -> Result<(), GraphError> {
        let mut written = self.repos_written.lock();
        if version <= *written {
            return Ok(());
        }
        write_json(&self.repos_path(), repos)?;
        *written = version;
        Ok(())
    }

    /// Flushes and commits the layer dir and builds the image config.
    fn prepare_import(
        &self,
        cache_id: &str,
        content: &Path,
        extracted: &archive::Extracted,
        cfg: ContainerConfig,
        message: &str,
    ) -> Result<(Layer, String, Vec<u8>, Image), GraphError> {
        if self.sync_layers {
            // One syncfs instead of an fsync per file: the layer's data is on disk
            // before any metadata names it.
            crate::sys::fs::sync_filesystem(content).map_err(io_error(content))?;
        }
        self.driver.commit(cache_id)?;
        let layer = Layer {
            chain_id: extracted.diff_id.clone(),
            diff_id: extracted.diff_id.clone(),
            parent: None,
            cache_id: cache_id.to_owned(),
            size: i64::try_from(extracted.size).unwrap_or(i64::MAX),
        };
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let comment = if message.is_empty() {
            "Imported from -".to_owned()
        } else {
            message.to_owned()
        };
        let doc = serde_json::json!({
            "architecture": host_arch(),
            "comment": comment,
            "config": cfg,
            "created": now,
            "history": [{"created": now, "comment": comment}],
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [&extracted.diff_id]},
        });
        let bytes = serde_json::to_vec(&doc).map_err(|e| GraphError::Io {
            path: self.imagedb(),
            source: io::Error::other(e),
        })?;
        let id = hex::encode(Sha256::digest(&bytes));
        let image = Image::parse(&id, &bytes).map_err(|e| GraphError::Io {
            path: self.imagedb().join(&id),
            source: io::Error::other(e),
        })?;
        Ok((layer, id, bytes, image))
    }

    /// The layer's metadata dir, with the record of its tar stream when there is one.
    fn write_layer(&self, l: &Layer, split: Option<&[u8]>) -> Result<(), GraphError> {
        let mut files: Vec<(&str, Vec<u8>)> = vec![
            ("diff", l.diff_id.clone().into_bytes()),
            ("size", l.size.to_string().into_bytes()),
            ("cache-id", l.cache_id.clone().into_bytes()),
        ];
        if let Some(p) = &l.parent {
            files.push(("parent", p.clone().into_bytes()));
        }
        if let Some(split) = split {
            files.push((tarsplit::FILE, split.to_vec()));
        }
        write_dir_atomic(
            &self.layerdb(),
            l.chain_id.trim_start_matches("sha256:"),
            &files,
            &[],
        )
    }

    /// Every `GET /images/json` row, newest first.
    pub fn list(&self) -> Vec<api::ImageSummary> {
        // The default filter names no image, so it cannot fail.
        self.list_filtered(&ImageFilter::default(), false)
            .unwrap_or_default()
    }

    /// The `GET /images/json` rows that pass `filter`, newest first, as dockerd lists
    /// them (an untagged image as `<none>:<none>`). `before` and `since` that name no
    /// image are `ImageNotFound`. `all` would add intermediate images: berth's have no
    /// parents.
    pub fn list_filtered(
        &self,
        filter: &ImageFilter,
        all: bool,
    ) -> Result<Vec<api::ImageSummary>, GraphError> {
        let st = self.state.lock();
        let mut filter = filter.clone();
        filter.resolve(|r| {
            resolve_in(&st, r).map(|hex| st.images.get(&hex).and_then(Image::created_at))
        })?;
        let mut rows: Vec<api::ImageSummary> =
            st.images
                .values()
                .filter_map(|img| {
                    let mut facts = facts_of(&st, img, false);
                    let view =
                        ImageFilterView {
                            created: img.created_at(),
                            labels: img.raw.get("config").is_some_and(|c| !c.is_null()).then(
                                || {
                                    img.config
                                        .labels
                                        .iter()
                                        .flatten()
                                        .map(|(k, v)| (k.as_str(), v.as_str()))
                                        .collect()
                                },
                            ),
                            refs: facts
                                .tags
                                .iter()
                                .map(|t| (t.as_str(), reference::split_name_tag(t).0))
                                .collect(),
                            has_children: false,
                        };
                    let shown = filter.select(&view, all)?;
                    facts.tags = shown;
                    Some(view::summary(&facts))
                })
                .collect();
        rows.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(rows)
    }

    /// Finds an image by `name[:tag]`, `sha256:<id>`, full id or unique id prefix.
    pub fn resolve(&self, reference: &str) -> Result<ImageInfo, GraphError> {
        let st = self.state.lock();
        let found = resolve_in(&st, reference)?;
        let img = &st.images[&found];
        let id = format!("sha256:{}", img.id);
        Ok(ImageInfo {
            repo_tags: st.repos.tags_of(&id),
            id,
            config: img.config.runtime(),
        })
    }

    /// The `GET /images/{name}/json` body of the image `reference` names (found as
    /// [`GraphStore::resolve`] finds it).
    pub fn inspect(&self, reference: &str) -> Result<api::Image, GraphError> {
        let st = self.state.lock();
        let found = resolve_in(&st, reference)?;
        Ok(view::inspect(
            &facts_of(&st, &st.images[&found], true),
            &self.driver,
        ))
    }

    /// Makes a container's read-write layer on the image and records it.
    pub fn create_rw(&self, container_id: &str, image_id: &str) -> Result<RootfsSpec, GraphError> {
        let mut made = None;
        self.create_rw_with(container_id, image_id, |spec| made = Some(spec))?;
        made.ok_or(GraphError::TaskFailed {
            operation: "container layer create",
        })
    }

    /// As [`GraphStore::create_rw`], handing the rootfs to `made` as soon as the layer's
    /// dirs exist, before they and the metadata are made durable (the layer is pending
    /// until this returns). `made` is not called when the dirs could not be made.
    pub fn create_rw_with(
        &self,
        container_id: &str,
        image_id: &str,
        made: impl FnOnce(RootfsSpec),
    ) -> Result<(), GraphError> {
        if !valid_container_id(container_id) {
            return Err(GraphError::InvalidContainerId {
                id: container_id.to_owned(),
            });
        }
        let not_found = || GraphError::ImageNotFound {
            reference: image_id.to_owned(),
        };
        let hex = image_id.strip_prefix("sha256:").unwrap_or(image_id);
        let (lowers, parent) = {
            let mut st = self.state.lock();
            if st.mounts.contains_key(container_id) || st.pending_mounts.contains(container_id) {
                return Err(GraphError::LayerExists {
                    container_id: container_id.to_owned(),
                });
            }
            let img = st.images.get(hex).ok_or_else(not_found)?;
            // Cache ids, top layer first.
            let lowers: Vec<String> = img
                .chain
                .iter()
                .rev()
                .filter_map(|c| st.layers.get(c).map(|l| l.cache_id.clone()))
                .collect();
            let parent = img.chain.last().cloned().ok_or_else(not_found)?;
            st.pending_mounts.insert(container_id.to_owned());
            st.creating_on
                .insert(container_id.to_owned(), parent.clone());
            (lowers, parent)
        };
        let res = self.create_rw_unlocked(container_id, &lowers, parent, made);
        let mut st = self.state.lock();
        st.pending_mounts.remove(container_id);
        st.creating_on.remove(container_id);
        res
    }

    fn create_rw_unlocked(
        &self,
        container_id: &str,
        lowers: &[String],
        parent: String,
        made: impl FnOnce(RootfsSpec),
    ) -> Result<(), GraphError> {
        let mount_id = crate::util::new_id();
        let (init_id, spec) = match self.driver.create_rw(&mount_id, lowers) {
            Ok(x) => x,
            Err(e) => {
                self.discard(&mount_id);
                return Err(e);
            }
        };
        made(spec);
        let record = MountRecord {
            mount_id: mount_id.clone(),
            init_id: init_id.clone(),
            parent,
        };
        let mut files = vec![
            ("mount-id", record.mount_id.clone()),
            ("parent", record.parent.clone()),
        ];
        if let Some(i) = &init_id {
            files.push(("init-id", i.clone()));
        }
        // The layer dirs' renames (not yet durable) are fsynced with the record's files:
        // one journal commit for both, then the record's rename and its parent's fsync.
        let home = &self.driver.home;
        let written = fs::File::open(home)
            .map_err(io_error(home))
            .and_then(|h| write_dir_atomic(&self.mountsdb(), container_id, &files, &[&h]));
        if let Err(e) = written {
            // The image's init layer stays for the next container.
            self.discard(&mount_id);
            return Err(e);
        }
        self.state
            .lock()
            .mounts
            .insert(container_id.to_owned(), record);
        Ok(())
    }

    /// Deletes a container's read-write layer; Ok when there is none.
    pub fn remove_rw(&self, container_id: &str) -> Result<(), GraphError> {
        if !valid_container_id(container_id) {
            return Err(GraphError::InvalidContainerId {
                id: container_id.to_owned(),
            });
        }
        let record = {
            let mut st = self.state.lock();
            if st.pending_mounts.contains(container_id) {
                // Being removed (or made) by another request.
                return Ok(());
            }
            let Some(record) = st.mounts.remove(container_id) else {
                return Ok(());
            };
            st.pending_mounts.insert(container_id.to_owned());
            record
        };
        let res = self.remove_rw_unlocked(container_id, &record);
        let mut st = self.state.lock();
        st.pending_mounts.remove(container_id);
        if res.is_err() && self.mountsdb().join(container_id).is_dir() {
            // The metadata is still there: so is the layer.
            st.mounts.insert(container_id.to_owned(), record);
        }
        res
    }

    /// Removes the read-write layers of containers not in `keep` and returns their ids.
    pub fn prune_rw(&self, keep: &HashSet<String>) -> Result<Vec<String>, GraphError> {
        let orphans: Vec<String> = {
            let st = self.state.lock();
            st.mounts
                .keys()
                .filter(|id| !keep.contains(*id))
                .cloned()
                .collect()
        };
        for id in &orphans {
            tracing::info!(container_id = %id, "removing the layer of a container with no record");
            self.remove_rw(id)?;
        }
        Ok(orphans)
    }

    /// The metadata first: once its rename to a doomed name is durable (the mounts dir
    /// fsynced), the container has no layer, and a crash after that leaves only dirs that
    /// Init removes. Then the layer dirs are renamed away (no fsync: a layer dir that no
    /// metadata names is removed at Init whatever its name). What was renamed is deleted
    /// on the deleter, after the reply.
    fn remove_rw_unlocked(
        &self,
        container_id: &str,
        record: &MountRecord,
    ) -> Result<(), GraphError> {
        let mountsdb = self.mountsdb();
        let meta = mountsdb.join(container_id);
        let mut doomed = Vec::with_capacity(3);
        doomed.extend(deleter::rename_doomed(&meta).map_err(io_error(&meta))?);
        let res = fsync_dir(&mountsdb).and_then(|()| {
            self.driver.doom(&record.mount_id, &mut doomed)?;
            // An init layer of its own (made before init layers were the image's); the
            // image's stays for its other containers.
            match &record.init_id {
                Some(i) if *i == format!("{}-init", record.mount_id) => {
                    self.driver.doom(i, &mut doomed)
                }
                _ => Ok(()),
            }
        });
        self.deleter.delete_all(doomed);
        res
    }

    pub fn driver_info(&self) -> DriverInfo {
        DriverInfo {
            name: self.driver.name().to_owned(),
            status: self.driver.status.clone(),
            images: self.image_count(),
        }
    }

    /// Waits for the deleter to finish what is queued (so that a clean stop leaves no
    /// doomed dirs), unmounts what the driver may have mounted and flushes the layer
    /// contents.
    pub fn shutdown(&self) -> Result<(), GraphError> {
        self.deleter.drain();
        let mounts: Vec<String> = self
            .state
            .lock()
            .mounts
            .values()
            .map(|m| m.mount_id.clone())
            .collect();
        self.driver.unmount_all(&mounts);
        let home = &self.driver.home;
        crate::sys::fs::sync_filesystem(home).map_err(io_error(home))
    }
}

/// What the views of `img` need; its layers' cache ids only `with_layers`.
fn facts_of<'a>(st: &State, img: &'a Image, with_layers: bool) -> ImageFacts<'a> {
    let cache_ids = if with_layers {
        img.chain
            .iter()
            .rev()
            .filter_map(|c| st.layers.get(c).map(|l| l.cache_id.clone()))
            .collect()
    } else {
        Vec::new()
    };
    ImageFacts {
        image: img,
        tags: st.repos.tags_of(&format!("sha256:{}", img.id)),
        digests: st.repos.digests_of(&format!("sha256:{}", img.id)),
        size: image_size(st, img),
        cache_ids,
        last_tagged: st.last_tagged.get(&img.id).copied(),
        parent: st.parents.get(&img.id).map(|p| format!("sha256:{p}")),
    }
}

fn image_size(st: &State, img: &Image) -> i64 {
    img.chain
        .iter()
        .filter_map(|c| st.layers.get(c))
        .map(|l| l.size)
        .sum()
}

/// Publishes an image event as dockerd's `LogImageEvent(id, name, action)`: the image's
/// labels (when `img` is known) and `name` as attributes.
pub(super) fn image_event(img: Option<&Image>, full_id: &str, name: &str, action: &str) {
    let mut a: BTreeMap<String, String> = img
        .and_then(|i| i.config.labels.clone())
        .into_iter()
        .flatten()
        .collect();
    a.insert("name".into(), name.to_owned());
    crate::events::events().publish(crate::events::Event::new(
        crate::events::Kind::Image,
        action,
        full_id,
        a,
    ));
}

/// Resolves `reference` to an image id (hex) like Docker's `GetImage`: an id, else a
/// name (and tag), else a unique id prefix. An ambiguous prefix is not found.
fn resolve_in(st: &State, reference: &str) -> Result<String, GraphError> {
    let by_prefix = |prefix: &str| -> Option<String> {
        let mut it = st
            .images
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone());
        let first = it.next()?;
        if it.next().is_some() {
            tracing::debug!(%prefix, "ambiguous image id prefix");
            return None;
        }
        Some(first)
    };
    let found = match reference::parse_reference(reference) {
        Ok(Reference::Id(hex)) => st.images.contains_key(&hex).then_some(hex),
        Ok(Reference::Prefix(hex)) => by_prefix(&hex),
        Ok(Reference::Digested { name, digest }) => {
            let found = st
                .repos
                .get_digest(&name, &digest)
                .and_then(|id| id.strip_prefix("sha256:"))
                .filter(|h| st.images.contains_key(*h))
                .map(str::to_owned);
            if found.is_none() {
                return Err(GraphError::ImageNotFound {
                    reference: format!("{name}@{digest}"),
                });
            }
            found
        }
        Ok(Reference::Tagged { name, tag }) => {
            let by_name = st
                .repos
                .get(&name, &tag)
                .and_then(|id| id.strip_prefix("sha256:"))
                .filter(|h| st.images.contains_key(*h))
                .map(str::to_owned);
            match by_name {
                Some(h) => Some(h),
                None => {
                    let found = reference::as_id_prefix(reference).and_then(by_prefix);
                    if found.is_none() {
                        return Err(GraphError::ImageNotFound {
                            reference: format!("{name}:{tag}"),
                        });
                    }
                    found
                }
            }
        }
        Err(_) => reference::as_id_prefix(reference).and_then(by_prefix),
    };
    found.ok_or_else(|| GraphError::ImageNotFound {
        reference: reference.to_owned(),
    })
}

fn list_dir(dir: &Path) -> Result<Vec<(String, PathBuf)>, GraphError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    Ok(out)
}

fn remove_any(path: &Path) -> Result<(), GraphError> {
    let res = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(_) => Ok(()),
    };
    res.map_err(io_error(path))
}

fn read_small(dir: &Path, name: &str) -> Result<String, String> {
    fs::read_to_string(dir.join(name))
        .map(|s| s.trim().to_owned())
        .map_err(|e| format!("{name}: {e}"))
}

fn read_layer(dir: &Path, hex: &str) -> Result<Layer, String> {
    let diff_id = read_small(dir, "diff")?;
    let size = read_small(dir, "size")?
        .parse::<i64>()
        .map_err(|e| format!("size: {e}"))?;
    let cache_id = read_small(dir, "cache-id")?;
    if !crate::util::is_full_id(&cache_id) {
        return Err("cache-id is not an id".into());
    }
    let parent = read_small(dir, "parent").ok().filter(|p| !p.is_empty());
    Ok(Layer {
        chain_id: format!("sha256:{hex}"),
        diff_id,
        parent,
        cache_id,
        size,
    })
}

fn read_mount(dir: &Path) -> Result<MountRecord, String> {
    let mount_id = read_small(dir, "mount-id")?;
    if !crate::util::is_full_id(&mount_id) {
        return Err("mount-id is not an id".into());
    }
    // `<mount-id>-init` (a layer of its own, as Docker makes) or the image's shared one,
    // `<cache-id of the image's top layer>-init`.
    let init_id = read_small(dir, "init-id").ok().filter(|s| !s.is_empty());
    if init_id
        .as_deref()
        .is_some_and(|i| !i.strip_suffix("-init").is_some_and(crate::util::is_full_id))
    {
        return Err("init-id is not an init layer".into());
    }
    Ok(MountRecord {
        mount_id,
        init_id,
        parent: read_small(dir, "parent")?,
    })
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), GraphError> {
    let bytes = serde_json::to_vec(v).map_err(|e| GraphError::Io {
        path: path.to_owned(),
        source: io::Error::other(e),
    })?;
    write_atomic(path, &bytes).map_err(io_error(path))
}

/// Writes a metadata dir atomically: files in `.<name>.tmp-…`, then a rename to `name`.
/// `also` are fsynced together with the files, before the rename: what the record names
/// and must be durable first.
fn write_dir_atomic<B: AsRef<[u8]>>(
    parent: &Path,
    name: &str,
    files: &[(&str, B)],
    also: &[&fs::File],
) -> Result<(), GraphError> {
    let tmp = parent.join(format!(
        ".{name}.tmp-{}",
        hex::encode(rand::random::<[u8; 4]>())
    ));
    let res = (|| {
        fs::create_dir(&tmp).map_err(io_error(&tmp))?;
        // The directory is the unit that appears atomically (by the rename below), so
        // its files need no rename of their own: written, then they and the dir's
        // entries fsynced together (one journal commit rather than one each).
        let mut handles = Vec::with_capacity(files.len() + 1);
        for (file, content) in files {
            let p = tmp.join(file);
            let mut f = fs::File::create(&p).map_err(io_error(&p))?;
            std::io::Write::write_all(&mut f, content.as_ref()).map_err(io_error(&p))?;
            handles.push(f);
        }
        handles.push(fs::File::open(&tmp).map_err(io_error(&tmp))?);
        let mut all: Vec<&fs::File> = handles.iter().collect();
        all.extend_from_slice(also);
        crate::util::sync_all_concurrently(&all).map_err(io_error(&tmp))?;
        let to = parent.join(name);
        fs::rename(&tmp, &to).map_err(io_error(&to))?;
        fsync_dir(parent)
    })();
    if res.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    res
}

/// Removes a metadata dir here and now: a rename to `.<name>.removing-…` (durable), then
/// the delete.
fn remove_dir_atomic(path: &Path) -> Result<(), GraphError> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    let Some(doomed) = deleter::rename_doomed(path).map_err(io_error(path))? else {
        return Ok(());
    };
    fsync_dir(parent)?;
    fs::remove_dir_all(&doomed).map_err(io_error(&doomed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use std::sync::Arc;

    pub(super) fn vfs_store(root: &Path) -> GraphStore {
        let drv = driver::probe(driver::DriverKind::Vfs, root).unwrap();
        GraphStore::open_with(root, drv, false, Deleter::new()).unwrap()
    }

    pub(super) fn tarball(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_mtime(1_700_000_000);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    pub(super) fn import(
        s: &GraphStore,
        tar: Vec<u8>,
        repo: Option<&str>,
        tag: Option<&str>,
        changes: &[&str],
    ) -> Result<String, GraphError> {
        s.import(ImportImage {
            source: Box::new(io::Cursor::new(tar)),
            repo: repo.map(Into::into),
            tag: tag.map(Into::into),
            message: String::new(),
            changes: changes.iter().map(|c| c.to_string()).collect(),
        })
    }

    use crate::util::sorted_names as names;

    /// `--storage-opt berth.sync_layers=false` reaches the store (it skips the syncfs of
    /// each imported layer); without it layers are synced.
    #[test]
    fn open_on_takes_sync_layers_from_the_storage_opts() {
        for sync in [true, false] {
            let tmp = tempfile::tempdir().unwrap();
            let mut c = DaemonConfig::defaults();
            c.data_root = tmp.path().to_path_buf();
            c.storage_opts.sync_layers = sync;
            let drv = driver::probe(driver::DriverKind::Vfs, tmp.path()).unwrap();
            let s = GraphStore::open_on(&c, drv, Deleter::new()).unwrap();
            assert_eq!(s.sync_layers, sync);
            import(&s, tarball(&[("bin/sh", b"1")]), Some("x"), None, &[]).unwrap();
        }
    }

    #[test]
    fn import_list_resolve_and_retag() {
        let tmp = tempfile::tempdir().unwrap();
        let s = vfs_store(tmp.path());
        let id = import(
            &s,
            tarball(&[("bin/sh", b"12345")]),
            Some("busybox"),
            None,
            &[r#"CMD ["sh"]"#, "ENV A=b"],
        )
        .unwrap();
        assert!(id.starts_with("sha256:") && crate::util::is_full_id(&id[7..]));
        // The stored config's id is the sha256 of its bytes.
        let bytes = fs::read(s.imagedb().join(&id[7..])).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), id[7..]);
        let raw: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(raw["os"], "linux");
        assert_eq!(raw["architecture"], host_arch());
        assert_eq!(raw["rootfs"]["type"], "layers");
        assert_eq!(raw["history"][0]["comment"], "Imported from -");
        assert_eq!(raw["config"]["Cmd"], serde_json::json!(["sh"]));

        let rows = s.list();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].id, id);
        assert_eq!(rows[0].repo_tags, vec!["busybox:latest"]);
        assert_eq!(rows[0].size, 5);
        assert_eq!(rows[0].containers, -1);

        for r in [
            "busybox",
            "busybox:latest",
            "library/busybox",
            "docker.io/library/busybox:latest",
            &id,
            &id[7..],
            &id[7..12],
        ] {
            let info = s.resolve(r).unwrap_or_else(|e| panic!("{r}: {e}"));
            assert_eq!(info.id, id);
            assert_eq!(info.config.cmd, Some(vec!["sh".to_owned()]));
            assert_eq!(info.config.env, Some(vec!["A=b".to_owned()]));
        }
        let e = s.resolve("busybox:other").unwrap_err();
        assert_eq!(e.to_string(), "No such image: busybox:other");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(
            s.resolve("nope").unwrap_err().to_string(),
            "No such image: nope:latest"
        );

        // Re-tagging moves the tag; the same content shares the layer.
        let id2 = import(
            &s,
            tarball(&[("bin/sh", b"12345")]),
            Some("busybox:latest"),
            None,
            &[],
        )
        .unwrap();
        assert_ne!(id, id2);
        assert_eq!(s.resolve("busybox").unwrap().id, id2);
        assert!(s.resolve(&id).unwrap().repo_tags.is_empty());
        let live = |s: &GraphStore| {
            names(&s.driver.home)
                .into_iter()
                .filter(|n| !n.contains("-removing-"))
                .count()
        };
        assert_eq!(live(&s), 1, "duplicate layer kept");
        let rows = s.list();
        assert_eq!(rows.len(), 2);

        // A restart sees the same.
        drop(s);
        let s = vfs_store(tmp.path());
        assert_eq!(s.list().len(), 2);
        assert_eq!(s.resolve("busybox:latest").unwrap().id, id2);
    }

    #[test]
    fn bad_input_leaves_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let s = vfs_store(tmp.path());
        let mut evil = tarball(&[("ok", b"x")]);
        // Corrupt the checksum of the first header.
        evil[148] = b'9';
        let e = import(&s, evil, Some("evil"), None, &[]).unwrap_err();
        assert!(matches!(e, GraphError::InvalidArchive { .. }), "{e:?}");
        assert_eq!(e.kind(), ErrorKind::InvalidParameter);
        let e = import(&s, tarball(&[("a", b"x")]), Some("Bad Name"), None, &[]).unwrap_err();
        assert!(matches!(e, GraphError::InvalidReference { .. }), "{e:?}");
        let e = import(&s, tarball(&[("a", b"x")]), Some("a"), Some("bad tag"), &[]).unwrap_err();
        assert!(matches!(e, GraphError::InvalidReference { .. }), "{e:?}");
        let e = import(&s, tarball(&[("a", b"x")]), None, None, &["FROM x"]).unwrap_err();
        assert!(matches!(e, GraphError::InvalidChange { .. }), "{e:?}");
        assert!(names(&s.driver.home).is_empty());
        assert!(names(&s.layerdb()).is_empty());
        assert!(names(&s.imagedb()).is_empty());
        assert!(s.list().is_empty());
    }

    #[test]
    fn repositories_json_round_trip() {
        let mut r = Repositories::default();
        r.set("busybox", "latest", "sha256:aa");
        r.set("busybox", "1", "sha256:bb");
        r.set("busybox", "latest", "sha256:cc");
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"Repositories":{"busybox":{"busybox:1":"sha256:bb","busybox:latest":"sha256:cc"}}}"#
        );
        let back: Repositories = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.get("busybox", "latest"), Some("sha256:cc"));
        assert_eq!(back.tags_of("sha256:bb"), vec!["busybox:1"]);
        let mut back = back;
        assert!(back.retain_images(|id| id == "sha256:cc"));
        assert_eq!(back.tags_of("sha256:bb"), Vec::<String>::new());
        assert!(!back.retain_images(|_| true));
    }

    fn fake_image(id: &str) -> Image {
        Image {
            id: id.to_owned(),
            raw: serde_json::json!({}),
            config: ContainerConfig::default(),
            created: String::new(),
            chain: Vec::new(),
        }
    }

    #[test]
    fn id_prefixes_must_be_unique() {
        let mut st = State::default();
        let a = format!("abc1{}", "0".repeat(60));
        let b = format!("abc2{}", "0".repeat(60));
        let c = format!("ffff{}", "0".repeat(60));
        for id in [&a, &b, &c] {
            st.images.insert(id.clone(), fake_image(id));
        }
        assert_eq!(resolve_in(&st, "abc1").unwrap(), a);
        assert_eq!(resolve_in(&st, "sha256:abc2").unwrap(), b);
        assert_eq!(resolve_in(&st, "f").unwrap(), c);
        assert_eq!(resolve_in(&st, &a).unwrap(), a);
        let e = resolve_in(&st, "abc").unwrap_err();
        assert_eq!(e.to_string(), "No such image: abc:latest");
        let e = resolve_in(&st, "sha256:abc").unwrap_err();
        assert_eq!(e.to_string(), "No such image: sha256:abc");
        assert!(resolve_in(&st, "abd").is_err());
        // A tag wins over an id prefix.
        st.repos.set("abc1", "latest", &format!("sha256:{c}"));
        assert_eq!(resolve_in(&st, "abc1").unwrap(), c);
    }

    #[test]
    fn crash_leftovers_are_cleaned_on_open() {
        let tmp = tempfile::tempdir().unwrap();
        let s = vfs_store(tmp.path());
        let id = import(&s, tarball(&[("f", b"x")]), Some("keep"), None, &[]).unwrap();
        let home = s.driver.home.clone();
        let layerdb = s.layerdb();
        let imagedb = s.imagedb();
        let kept_layers = names(&home);
        drop(s);

        let fresh = || crate::util::new_id();
        // A half-extracted layer and a half-removed one.
        fs::create_dir_all(home.join(format!("{}-tmp/dir/etc", fresh()))).unwrap();
        fs::create_dir_all(home.join(format!("{}-removing-1234/dir", fresh()))).unwrap();
        // Layer contents committed but no metadata yet.
        fs::create_dir_all(home.join(fresh()).join("dir")).unwrap();
        // Layer metadata whose contents are gone.
        let missing = fresh();
        write_dir_atomic(
            &layerdb,
            &missing,
            &[
                ("diff", format!("sha256:{missing}")),
                ("size", "1".into()),
                ("cache-id", fresh()),
            ],
            &[],
        )
        .unwrap();
        // A complete layer no image uses (crash before the image config).
        let unused_cache = fresh();
        fs::create_dir_all(home.join(&unused_cache).join("dir")).unwrap();
        let unused = fresh();
        write_dir_atomic(
            &layerdb,
            &unused,
            &[
                ("diff", format!("sha256:{unused}")),
                ("size", "1".into()),
                ("cache-id", unused_cache),
            ],
            &[],
        )
        .unwrap();
        // A half-written metadata dir and a write_atomic temp file.
        fs::create_dir_all(layerdb.join(format!(".{}.tmp-abcd", fresh()))).unwrap();
        fs::write(imagedb.join(".x.tmp-1-2"), b"{").unwrap();
        // An image whose layer is gone, tagged.
        let doc = serde_json::to_vec(&serde_json::json!({"rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", fresh())]}})).unwrap();
        let orphan_id = hex::encode(Sha256::digest(&doc));
        fs::write(imagedb.join(&orphan_id), &doc).unwrap();
        let repos_path = tmp.path().join("image/vfs/repositories.json");
        let mut repos: Repositories =
            serde_json::from_slice(&fs::read(&repos_path).unwrap()).unwrap();
        repos.set("orphan", "latest", &format!("sha256:{orphan_id}"));
        fs::write(&repos_path, serde_json::to_vec(&repos).unwrap()).unwrap();

        let s = vfs_store(tmp.path());
        assert_eq!(names(&home), kept_layers);
        assert_eq!(names(&layerdb).len(), 1);
        assert_eq!(names(&imagedb), vec![id[7..].to_owned()]);
        assert_eq!(s.list().len(), 1);
        assert_eq!(s.resolve("keep").unwrap().id, id);
        assert!(s.resolve("orphan").is_err());
        let repos: Repositories = serde_json::from_slice(&fs::read(&repos_path).unwrap()).unwrap();
        assert!(repos.get("orphan", "latest").is_none());
    }

    #[test]
    fn layers_of_containers_without_records_are_pruned() {
        let tmp = tempfile::tempdir().unwrap();
        let s = vfs_store(tmp.path());
        let id = import(&s, tarball(&[("bin/sh", b"sh")]), Some("img"), None, &[]).unwrap();
        let (kept, orphan) = (crate::util::new_id(), crate::util::new_id());
        s.create_rw(&kept, &id).unwrap();
        // A crash after the layer, before the container's record.
        let orphan_spec = s.create_rw(&orphan, &id).unwrap();
        drop(s);
        let s = vfs_store(tmp.path());
        let keep: HashSet<String> = [kept.clone()].into();
        assert_eq!(s.prune_rw(&keep).unwrap(), vec![orphan.clone()]);
        assert!(s.prune_rw(&keep).unwrap().is_empty());
        s.shutdown().unwrap();
        assert_eq!(names(&s.mountsdb()), vec![kept]);
        assert!(!orphan_spec.target.exists());
    }

    #[test]
    fn a_layer_is_handed_out_before_it_is_recorded() {
        let tmp = tempfile::tempdir().unwrap();
        let s = vfs_store(tmp.path());
        let id = import(&s, tarball(&[("bin/sh", b"sh")]), Some("img"), None, &[]).unwrap();
        let cid = crate::util::new_id();
        let record = s.mountsdb().join(&cid);
        let mut seen = None;
        s.create_rw_with(&cid, &id, |spec| {
            assert!(spec.target.join("bin/sh").is_file());
            assert!(!record.exists());
            // Pending: a removal does nothing until the layer is recorded.
            s.remove_rw(&cid).unwrap();
            seen = Some(spec);
        })
        .unwrap();
        assert!(seen.is_some());
        assert!(record.join("mount-id").is_file());
        // A failure before the dirs are made hands nothing out.
        let mut called = false;
        let e = s
            .create_rw_with(&crate::util::new_id(), "sha256:0000", |_| called = true)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(!called);
    }

    #[test]
    fn container_layers_on_vfs() {
        let tmp = tempfile::tempdir().unwrap();
        let s = vfs_store(tmp.path());
        let id = import(&s, tarball(&[("bin/sh", b"sh")]), Some("img"), None, &[]).unwrap();
        let cid = crate::util::new_id();
        let spec = s.create_rw(&cid, &id).unwrap();
        assert_eq!(spec.fstype, "bind");
        assert_eq!(fs::read(spec.target.join("bin/sh")).unwrap(), b"sh");
        let e = s.create_rw(&cid, &id).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        let e = s.create_rw("../x", &id).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidParameter);
        let e = s.create_rw("other", "sha256:0000").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(s.mountsdb().join(&cid).join("mount-id").is_file());
        // Survives a restart; the image layer is in use.
        drop(s);
        let s = vfs_store(tmp.path());
        assert!(spec.target.is_dir());
        s.remove_rw(&cid).unwrap();
        s.remove_rw(&cid).unwrap();
        // Renamed away at once; the deleter deletes the contents.
        assert!(!spec.target.exists());
        assert!(!s.mountsdb().join(&cid).exists());
        s.deleter.drain();
        assert!(names(&s.mountsdb()).is_empty());
        assert_eq!(names(&s.driver.home).len(), 1);
    }

    /// A store with the overlay2 layout; its container layers are made (never mounted),
    /// so it needs no overlay support.
    fn overlay_layout_store(root: &Path) -> GraphStore {
        let home = root.join("overlay2");
        fs::create_dir_all(&home).unwrap();
        let drv = driver::Driver {
            kind: driver::DriverKind::Overlay2,
            home,
            status: Vec::new(),
        };
        GraphStore::open_with(root, drv, false, Deleter::new()).unwrap()
    }

    #[test]
    fn the_containers_of_an_image_share_its_init_layer() {
        let tmp = tempfile::tempdir().unwrap();
        let s = overlay_layout_store(tmp.path());
        let id = import(&s, tarball(&[("bin/sh", b"sh")]), Some("img"), None, &[]).unwrap();
        let (a, b) = (crate::util::new_id(), crate::util::new_id());
        let spec_a = s.create_rw(&a, &id).unwrap();
        let spec_b = s.create_rw(&b, &id).unwrap();
        let init_of =
            |cid: &str| fs::read_to_string(s.mountsdb().join(cid).join("init-id")).unwrap();
        let init = init_of(&a);
        assert_eq!(init_of(&b), init);
        let lower = |spec: &RootfsSpec| spec.options.split(',').next().unwrap().to_owned();
        assert_eq!(lower(&spec_a), lower(&spec_b));
        let home = s.driver.home.clone();
        assert!(home.join(&init).join("diff/etc/hosts").is_file());
        // A restart keeps both records and the layer they share.
        drop(s);
        let s = overlay_layout_store(tmp.path());
        s.remove_rw(&a).unwrap();
        s.deleter.drain();
        assert!(
            home.join(&init).is_dir(),
            "removed with the first container"
        );
        assert!(s.mountsdb().join(&b).join("mount-id").is_file());
        s.remove_rw(&b).unwrap();
        s.deleter.drain();
        // Kept for the image's next container; a start-up with none removes it.
        assert!(home.join(&init).is_dir());
        drop(s);
        let s = overlay_layout_store(tmp.path());
        assert!(!home.join(&init).exists());
        assert_eq!(names(&home).len(), 1, "{:?}", names(&home));
        // And the next container makes it again.
        let c = crate::util::new_id();
        s.create_rw(&c, &id).unwrap();
        assert!(home.join(&init).join("diff/etc/hosts").is_file());
    }

    #[test]
    fn a_removal_renames_at_once_and_shutdown_drains_the_deleter() {
        let tmp = tempfile::tempdir().unwrap();
        let s = vfs_store(tmp.path());
        let id = import(&s, tarball(&[("bin/sh", b"sh")]), Some("img"), None, &[]).unwrap();
        let image_layers = names(&s.driver.home);
        let cids: Vec<String> = (0..5).map(|_| crate::util::new_id()).collect();
        for cid in &cids {
            s.create_rw(cid, &id).unwrap();
        }
        for cid in &cids {
            s.remove_rw(cid).unwrap();
            // Renamed away before remove_rw returns, whatever the deleter has done.
            assert!(!s.mountsdb().join(cid).exists());
        }
        let live = |dir: &Path| -> Vec<String> {
            names(dir)
                .into_iter()
                .filter(|n| !n.contains("removing-"))
                .collect()
        };
        assert!(live(&s.mountsdb()).is_empty());
        assert_eq!(live(&s.driver.home), image_layers);
        s.shutdown().unwrap();
        assert!(names(&s.mountsdb()).is_empty(), "doomed metadata left");
        assert_eq!(names(&s.driver.home), image_layers, "doomed layers left");
    }

    #[test]
    fn doomed_dirs_are_swept_on_open() {
        let tmp = tempfile::tempdir().unwrap();
        let s = vfs_store(tmp.path());
        let id = import(&s, tarball(&[("f", b"x")]), Some("keep"), None, &[]).unwrap();
        let cid = crate::util::new_id();
        s.create_rw(&cid, &id).unwrap();
        let (home, mountsdb, layerdb) = (s.driver.home.clone(), s.mountsdb(), s.layerdb());
        let kept = (names(&home), names(&mountsdb), names(&layerdb));
        drop(s);
        // What a crash right after a removal's renames leaves: doomed metadata of a
        // container layer and of an image layer, and doomed layer dirs.
        let gone = crate::util::new_id();
        for dir in [
            deleter::doomed_path(&mountsdb.join(&gone)).unwrap(),
            deleter::doomed_path(&layerdb.join(crate::util::new_id())).unwrap(),
        ] {
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("mount-id"), crate::util::new_id()).unwrap();
        }
        for name in [
            format!("{gone}-removing-0a1b2c3d"),
            format!("{gone}-init-removing-0a1b2c3d"),
        ] {
            fs::create_dir_all(home.join(name).join("dir/etc")).unwrap();
        }
        let s = vfs_store(tmp.path());
        assert_eq!((names(&home), names(&mountsdb), names(&layerdb)), kept);
        assert_eq!(s.list().len(), 1);
    }

    #[test]
    fn concurrent_imports_of_the_same_content_share_one_layer() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Arc::new(vfs_store(tmp.path()));
        let tar = tarball(&[("a", b"same"), ("b/c", b"content")]);
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let s = s.clone();
                let tar = tar.clone();
                std::thread::spawn(move || {
                    import(&s, tar, Some("same"), Some(&format!("t{i}")), &[]).unwrap()
                })
            })
            .collect();
        let ids: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(s.list().len(), 4);
        assert_eq!(names(&s.layerdb()).len(), 1);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(&s.resolve(&format!("same:t{i}")).unwrap().id, id);
        }
        let repos: Repositories =
            serde_json::from_slice(&fs::read(s.repos_path()).unwrap()).unwrap();
        assert_eq!(
            repos.repositories["same"].len(),
            4,
            "the newest tag snapshot is on disk"
        );
        drop(s);
        let s = vfs_store(tmp.path());
        assert_eq!(s.list().len(), 4);
        let live = names(&s.driver.home)
            .into_iter()
            .filter(|n| !n.contains("-removing-"))
            .count();
        assert_eq!(live, 1);
    }

    #[test]
    fn chain_ids_follow_docker() {
        let d = vec!["sha256:a".to_owned(), "sha256:b".to_owned()];
        let c = chain_ids(&d);
        assert_eq!(c[0], "sha256:a");
        assert_eq!(
            c[1],
            format!(
                "sha256:{}",
                hex::encode(Sha256::digest(b"sha256:a sha256:b"))
            )
        );
    }
}
