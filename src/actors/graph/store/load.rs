//! `docker load`, and the layer-by-layer commit it shares with `docker commit`: layers
//! over others ([`GraphStore::add_layer`]), checked against the image config's diff ids,
//! each made once even when two loads want it at the same time.
//!
//! A load unpacks the archive into a temp dir under the graph's metadata dir first (the
//! archive's `manifest.json` comes last), with the same safe extraction as a layer, and
//! reads every path the archive names through [`secure_join`] (an old archive's layers
//! may be symlinks to each other; none may lead out of the temp dir). Both layouts load:
//! dockerd's `manifest.json`, and an OCI image layout's `index.json` alone.
//!
//! Crash safety: layers are committed as imports commit them, the image config after its
//! layers, its tags last; a crash leaves layers no image uses, which the next start
//! removes, and never an image without its layers.

use std::fs;
use std::io::Read;
use std::path::PathBuf;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{GraphStore, Image, Layer, chain_of, io_error, parse_repo_tag};
use crate::actors::graph::archive::{self, Options, Whiteouts};
use crate::actors::graph::error::GraphError;
use crate::sys::mounts::secure_join;
use crate::util::write_atomic;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<OciDescriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OciDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    annotations: std::collections::HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct OciManifest {
    config: OciDescriptor,
    layers: Vec<OciDescriptor>,
}

#[derive(Debug, Deserialize)]
struct ConfigRootfs {
    rootfs: RootfsDoc,
}

#[derive(Debug, Deserialize)]
struct RootfsDoc {
    #[serde(default)]
    diff_ids: Vec<String>,
}

fn bad(reason: impl Into<String>) -> GraphError {
    GraphError::InvalidArchive {
        reason: reason.into(),
    }
}

/// Removes the load's temp dir however the load ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Layers pinned for an image being loaded or committed: unpinned when dropped.
pub(super) struct Pins<'a> {
    store: &'a GraphStore,
    chains: Vec<String>,
}

impl<'a> Pins<'a> {
    pub(super) fn new(store: &'a GraphStore) -> Pins<'a> {
        Pins {
            store,
            chains: Vec::new(),
        }
    }
}

impl Drop for Pins<'_> {
    fn drop(&mut self) {
        let mut st = self.store.state.lock();
        for c in &self.chains {
            if let Some(n) = st.pinned.get_mut(c) {
                *n -= 1;
                if *n == 0 {
                    st.pinned.remove(c);
                }
            }
        }
    }
}

/// A layer extracted and checked, not yet committed. Dropped unfinished, its dir is
/// removed; either way its chain is no longer being made.
pub(super) struct PendingLayer<'a> {
    store: &'a GraphStore,
    chain: String,
    parent: Option<String>,
    /// Empty once committed (or before its dir exists).
    cache_id: String,
    content: PathBuf,
    extracted: Option<archive::Extracted>,
    /// Its contents are on disk already (one `syncfs` for a pull's layers).
    synced: bool,
}

impl PendingLayer<'_> {
    /// Its contents were flushed with others' (one `syncfs` for all of a pull's).
    pub(super) fn set_synced(&mut self) {
        self.synced = true;
    }

    /// Its content dir (empty before it exists).
    pub(super) fn content(&self) -> &std::path::Path {
        &self.content
    }
}

impl Drop for PendingLayer<'_> {
    fn drop(&mut self) {
        if !self.cache_id.is_empty() {
            self.store.discard(&self.cache_id);
        }
        self.store.state.lock().making.remove(&self.chain);
        self.store.made.notify_all();
    }
}

/// `docker.io/library/busybox:latest` → `busybox:latest`, as `RepoTags` has it.
fn familiar(name: &str) -> String {
    let (n, tag) = crate::actors::graph::reference::split_name_tag(name);
    match parse_repo_tag(n, tag) {
        Ok((n, t)) => format!("{n}:{t}"),
        Err(_) => name.to_owned(),
    }
}

impl GraphStore {
    /// The first half of making the layer with diff id `diff_id` over `parent` (a chain
    /// id) from the tar stream `source`: its chain id, and the layer extracted and checked
    /// but not committed — or `None` when it exists already (then pinned in `pins`).
    /// While it is pending no other load makes the same layer: it waits, then finds it.
    /// A stream whose digest is not `diff_id` is refused and leaves nothing.
    pub(super) fn begin_layer<'s>(
        &'s self,
        source: impl Read + Send + 'static,
        parent: Option<&str>,
        diff_id: &str,
        pins: &mut Pins<'_>,
    ) -> Result<(String, Option<PendingLayer<'s>>), GraphError> {
        let chain = chain_of(parent, diff_id);
        if !self.claim_layer(&chain, pins) {
            return Ok((chain, None));
        }
        let mut pending = PendingLayer {
            store: self,
            chain: chain.clone(),
            parent: parent.map(str::to_owned),
            cache_id: String::new(),
            content: PathBuf::new(),
            extracted: None,
            synced: false,
        };
        let (cache_id, content, extracted) = self.extract_layer(source, parent)?;
        pending.cache_id = cache_id;
        pending.content = content;
        if extracted.diff_id != diff_id {
            return Err(bad(format!(
                "a layer's content is {}, not the {diff_id} its image config names",
                extracted.diff_id
            )));
        }
        pending.extracted = Some(extracted);
        Ok((chain, Some(pending)))
    }

    /// [`GraphStore::begin_layer`] for a layer extracted already (a pull's, while its
    /// blob downloaded): its chain id, and the layer checked against `diff_id` and
    /// pending — or `None` when the store has it (pinned in `pins`; the staged copy is
    /// dropped). Another pull that shares the staged layer and took it first has made the
    /// layer by the time the claim returns, or failed: then this one fails too.
    pub(super) fn adopt_layer<'s>(
        &'s self,
        staged: &super::pull::StagedLayer,
        parent: Option<&str>,
        diff_id: &str,
        pins: &mut Pins<'_>,
    ) -> Result<(String, Option<PendingLayer<'s>>), GraphError> {
        let chain = chain_of(parent, diff_id);
        if let Some(found) = staged.diff_id().filter(|d| d != diff_id) {
            return Err(bad(format!(
                "a layer's content is {found}, not the {diff_id} its image config names"
            )));
        }
        if !self.claim_layer(&chain, pins) {
            return Ok((chain, None));
        }
        let mut pending = PendingLayer {
            store: self,
            chain: chain.clone(),
            parent: parent.map(str::to_owned),
            cache_id: String::new(),
            content: PathBuf::new(),
            extracted: None,
            synced: false,
        };
        let Some((cache_id, content, extracted)) = staged.take() else {
            return Err(GraphError::Conflict {
                message: format!(
                    "layer {diff_id} was being made by another pull of it, which failed; pull again"
                ),
            });
        };
        pending.cache_id = cache_id;
        pending.content = content;
        pending.extracted = Some(extracted);
        Ok((chain, Some(pending)))
    }

    /// The second half: commits a pending layer and pins it.
    pub(super) fn finish_pending(
        &self,
        mut p: PendingLayer<'_>,
        pins: &mut Pins<'_>,
    ) -> Result<(), GraphError> {
        let Some(extracted) = p.extracted.take() else {
            return Err(bad("a layer was not extracted"));
        };
        let cache_id = std::mem::take(&mut p.cache_id);
        self.finish_layer(
            &cache_id,
            &p.content,
            &extracted,
            p.parent.as_deref(),
            &p.chain,
            !p.synced,
        )?;
        let mut st = self.state.lock();
        *st.pinned.entry(p.chain.clone()).or_default() += 1;
        pins.chains.push(p.chain.clone());
        Ok(())
    }

    /// A new layer dir with `source` extracted into it (over `parent`: with overlay
    /// whiteouts), not yet committed.
    fn extract_layer(
        &self,
        source: impl Read + Send + 'static,
        parent: Option<&str>,
    ) -> Result<(String, PathBuf, archive::Extracted), GraphError> {
        self.extract_into(source, parent.is_some(), false)
    }

    /// [`GraphStore::extract_layer`] for a layer `over` others or not (only whiteouts
    /// differ), `lean` when several run at once. Replies the layer's id, its content dir
    /// and what the extraction found.
    pub(super) fn extract_into(
        &self,
        source: impl Read + Send + 'static,
        over: bool,
        lean: bool,
    ) -> Result<(String, PathBuf, archive::Extracted), GraphError> {
        if over && self.driver.name() == "vfs" {
            return Err(GraphError::Conflict {
                message: "berthd's vfs storage driver does not make layers over others yet (use overlay2)".to_owned(),
            });
        }
        let (cache_id, content) = self.driver.new_layer()?;
        let opts = Options {
            record: true,
            whiteouts: if over {
                Whiteouts::Overlay
            } else {
                Whiteouts::Ignore
            },
            no_direct: false,
            no_digest: false,
            lean,
        };
        match archive::extract_with(source, &content, opts) {
            Ok(x) => Ok((cache_id, content, x)),
            Err(e) => {
                self.discard(&cache_id);
                Err(super::map_archive(e))
            }
        }
    }

    /// As [`GraphStore::add_layer`] for a stream whose diff id is known only once it is
    /// read (a commit's): the layer is kept unless one with its chain id exists already.
    /// Replies its diff id and chain id.
    pub(super) fn add_layer_any(
        &self,
        source: impl Read + Send + 'static,
        parent: Option<&str>,
        pins: &mut Pins<'_>,
    ) -> Result<(String, String), GraphError> {
        let (cache_id, content, extracted) = self.extract_layer(source, parent)?;
        let diff_id = extracted.diff_id.clone();
        let chain = chain_of(parent, &diff_id);
        if !self.claim_layer(&chain, pins) {
            self.discard(&cache_id);
            return Ok((diff_id, chain));
        }
        let pending = PendingLayer {
            store: self,
            chain: chain.clone(),
            parent: parent.map(str::to_owned),
            cache_id,
            content,
            extracted: Some(extracted),
            synced: false,
        };
        self.finish_pending(pending, pins)?;
        Ok((diff_id, chain))
    }

    /// Waits while another load or commit makes layer `chain`; then either finds it made
    /// (pinned in `pins`: false) or marks it as being made here (true: the caller makes
    /// it, and a [`PendingLayer`] clears the mark).
    fn claim_layer(&self, chain: &str, pins: &mut Pins<'_>) -> bool {
        let mut st = self.state.lock();
        while st.making.contains(chain) {
            self.made.wait(&mut st);
        }
        if st.layers.contains_key(chain) {
            *st.pinned.entry(chain.to_owned()).or_default() += 1;
            pins.chains.push(chain.to_owned());
            return false;
        }
        st.making.insert(chain.to_owned());
        true
    }

    /// Commits an extracted layer dir and its metadata, and indexes it as `chain`;
    /// flushes the layer's contents first unless `sync` is false (flushed already).
    fn finish_layer(
        &self,
        cache_id: &str,
        content: &std::path::Path,
        extracted: &archive::Extracted,
        parent: Option<&str>,
        chain: &str,
        sync: bool,
    ) -> Result<(), GraphError> {
        let diff_id = extracted.diff_id.as_str();
        let cache_id = cache_id.to_owned();
        let committed = (|| {
            if sync && self.sync_layers {
                crate::sys::fs::sync_filesystem(content).map_err(io_error(content))?;
            }
            self.driver.commit(&cache_id)?;
            let layer = Layer {
                chain_id: chain.to_owned(),
                diff_id: diff_id.to_owned(),
                parent: parent.map(str::to_owned),
                cache_id: cache_id.clone(),
                size: i64::try_from(extracted.size).unwrap_or(i64::MAX),
            };
            let _commits = self.layer_commits.lock();
            self.write_layer(&layer, extracted.split.as_deref())?;
            self.state.lock().layers.insert(chain.to_owned(), layer);
            Ok(())
        })();
        if committed.is_err() {
            self.discard(&cache_id);
        }
        committed
    }

    /// Writes image config `bytes` (its layers made and pinned) and indexes it; tags it
    /// with `tags` (`name:tag`, already checked). Replies `sha256:<id>`.
    pub(super) fn commit_image(
        &self,
        bytes: &[u8],
        tags: &[(String, String)],
    ) -> Result<String, GraphError> {
        let id = hex::encode(Sha256::digest(bytes));
        let image = Image::parse(&id, bytes).map_err(bad)?;
        {
            let st = self.state.lock();
            if let Some(missing) = image.chain.iter().find(|c| !st.layers.contains_key(*c)) {
                return Err(bad(format!("the image's layer {missing} is missing")));
            }
        }
        let path = self.imagedb().join(&id);
        if !path.exists() {
            write_atomic(&path, bytes).map_err(io_error(&path))?;
        }
        let full = format!("sha256:{id}");
        let tagged = (!tags.is_empty()).then(|| self.record_tag_time(&id));
        let repos = {
            let mut st = self.state.lock();
            st.images.insert(id.clone(), image);
            if let Some(t) = tagged {
                st.last_tagged.insert(id.clone(), t);
            }
            for (name, tag) in tags {
                st.repos.set(name, tag, &full);
            }
            (!tags.is_empty()).then(|| {
                st.repos_version += 1;
                (st.repos_version, st.repos.clone())
            })
        };
        if let Some((version, repos)) = repos {
            self.write_repos(version, &repos)?;
        }
        Ok(full)
    }

    /// `docker load`: every image of the archive `source`. Replies dockerd's lines
    /// (`Loaded image: busybox:latest`, `Loaded image ID: sha256:…`). Blocking.
    pub fn load_archive(
        &self,
        source: impl Read + Send + 'static,
    ) -> Result<Vec<String>, GraphError> {
        let tmp_root = self.meta.join("tmp");
        fs::create_dir_all(&tmp_root).map_err(io_error(&tmp_root))?;
        let tmp =
            TempDir(tmp_root.join(format!("load-{}", hex::encode(rand::random::<[u8; 8]>()))));
        fs::create_dir(&tmp.0).map_err(io_error(&tmp.0))?;
        // Unpacked through the page cache: the layers are read back at once.
        let unpack = Options {
            no_direct: true,
            no_digest: true,
            ..Default::default()
        };
        archive::extract_with(source, &tmp.0, unpack).map_err(super::map_archive)?;
        let read = |rel: &str| -> Result<Vec<u8>, GraphError> {
            let p = secure_join(&tmp.0, rel);
            fs::read(&p).map_err(|_| bad(format!("the archive has no readable {rel:?}")))
        };
        let entries: Vec<ManifestEntry> = match read("manifest.json") {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| bad(format!("manifest.json: {e}")))?,
            Err(_) => self.oci_entries(&read)?,
        };
        if entries.is_empty() {
            return Err(bad("the archive holds no image"));
        }
        // How many images still need each layer file: one no later image needs is
        // deleted before its layer is flushed, so that the flush does not write it too.
        let mut wanted: std::collections::HashMap<PathBuf, usize> =
            std::collections::HashMap::new();
        for e in &entries {
            for l in &e.layers {
                *wanted.entry(secure_join(&tmp.0, l)).or_default() += 1;
            }
        }
        let mut lines = Vec::new();
        for e in entries {
            let config = read(&e.config)?;
            let doc: ConfigRootfs =
                serde_json::from_slice(&config).map_err(|e| bad(format!("image config: {e}")))?;
            if doc.rootfs.diff_ids.len() != e.layers.len() {
                return Err(bad(format!(
                    "the image config names {} layers, the manifest {}",
                    doc.rootfs.diff_ids.len(),
                    e.layers.len()
                )));
            }
            let mut tags = Vec::new();
            for t in e.repo_tags.iter().flatten() {
                let (n, tag) = crate::actors::graph::reference::split_name_tag(t);
                tags.push(parse_repo_tag(n, tag)?);
            }
            let mut pins = Pins {
                store: self,
                chains: Vec::new(),
            };
            let mut parent: Option<String> = None;
            let mut pending = Vec::new();
            for (layer, diff_id) in e.layers.iter().zip(&doc.rootfs.diff_ids) {
                let path = secure_join(&tmp.0, layer);
                let f = fs::File::open(&path)
                    .map_err(|_| bad(format!("the archive has no layer {layer:?}")))?;
                let (chain, p) = self.begin_layer(f, parent.as_deref(), diff_id, &mut pins)?;
                pending.extend(p);
                if let Some(n) = wanted.get_mut(&path) {
                    *n -= 1;
                    if *n == 0 {
                        let _ = fs::remove_file(&path);
                    }
                }
                parent = Some(chain);
            }
            // One flush for the image's new layers (the first layer's `syncfs`).
            for p in pending {
                self.finish_pending(p, &mut pins)?;
            }
            let id = self.commit_image(&config, &tags)?;
            drop(pins);
            {
                let st = self.state.lock();
                let img = st.images.get(id.trim_start_matches("sha256:"));
                super::image_event(img, &id, &id, "load");
            }
            if tags.is_empty() {
                lines.push(format!("Loaded image ID: {id}"));
            }
            for (n, t) in &tags {
                lines.push(format!("Loaded image: {n}:{t}"));
            }
        }
        Ok(lines)
    }

    /// The images of an OCI image layout without `manifest.json`: each manifest of
    /// `index.json` (an index of indexes is not followed), tagged by its annotations.
    fn oci_entries(
        &self,
        read: &dyn Fn(&str) -> Result<Vec<u8>, GraphError>,
    ) -> Result<Vec<ManifestEntry>, GraphError> {
        let index: OciIndex = serde_json::from_slice(&read("index.json")?)
            .map_err(|e| bad(format!("index.json: {e}")))?;
        let blob = |digest: &str| -> Result<String, GraphError> {
            let hex = digest
                .strip_prefix("sha256:")
                .filter(|h| crate::util::is_full_id(h))
                .ok_or_else(|| bad(format!("unsupported digest {digest:?}")))?;
            Ok(format!("blobs/sha256/{hex}"))
        };
        let mut out = Vec::new();
        for d in index.manifests {
            if d.media_type.contains("index") || d.media_type.contains("manifest.list") {
                return Err(GraphError::Conflict {
                    message: "berthd does not load multi-platform archives yet".to_owned(),
                });
            }
            let m: OciManifest = serde_json::from_slice(&read(&blob(&d.digest)?)?)
                .map_err(|e| bad(format!("OCI manifest: {e}")))?;
            let tag = d
                .annotations
                .get("io.containerd.image.name")
                .map(|n| familiar(n));
            out.push(ManifestEntry {
                config: blob(&m.config.digest)?,
                repo_tags: tag.map(|t| vec![t]),
                layers: m
                    .layers
                    .iter()
                    .map(|l| blob(&l.digest))
                    .collect::<Result<_, _>>()?,
            });
        }
        Ok(out)
    }
}
