//! The store's half of `docker pull` and `docker push`: a pulled image's layers made from
//! their blobs (verified by the registry client before they get here) as a load makes
//! them, its config and names committed; and what a push reads of an image.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Receiver;

use super::load::Pins;
use super::{GraphStore, parse_repo_tag, resolve_in};
use crate::actors::graph::archive;
use crate::actors::graph::error::GraphError;

/// One layer of a pull, in the image's order: its layer extracted while its blob
/// downloaded (and verified), or `None` when the layer was found in the store before
/// the download.
pub type PulledLayer = Result<Option<Arc<StagedLayer>>, GraphError>;

/// A layer extracted into a layer dir of its own (the driver's `<id>-tmp`, which the
/// next start removes when a crash leaves it), not yet a layer of the store: a pull's
/// commit adopts it, in the image's order, once its blob's digest is verified. Dropped
/// unadopted, its dir is removed. Pulls that share its download share it; the first
/// to commit it takes it.
#[derive(Debug)]
pub struct StagedLayer {
    store: Arc<GraphStore>,
    made: parking_lot::Mutex<Option<(String, PathBuf, archive::Extracted)>>,
}

impl StagedLayer {
    /// `sha256:` of its tar stream; `None` once taken.
    pub fn diff_id(&self) -> Option<String> {
        self.made.lock().as_ref().map(|m| m.2.diff_id.clone())
    }

    /// The layer's id, content dir and extraction, for the commit that adopts it.
    pub(super) fn take(&self) -> Option<(String, PathBuf, archive::Extracted)> {
        self.made.lock().take()
    }
}

impl Drop for StagedLayer {
    fn drop(&mut self) {
        // Renamed away here, deleted on the deleter: the last holder may be an async
        // task.
        if let Some((cache_id, _, _)) = self.made.get_mut().take() {
            self.store.remove_layer_detached(&cache_id);
        }
    }
}

/// What happened to a pulled layer, for the progress stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerStep {
    Extracting,
    Done,
}

/// A pulled image to commit.
#[derive(Debug)]
pub struct PullCommit<'a> {
    /// The image config, verified against its digest.
    pub config: &'a [u8],
    /// The familiar repository name (`busybox`, `localhost:5000/app`).
    pub name: &'a str,
    /// The tag pulled, if pulled by tag.
    pub tag: Option<&'a str>,
    /// The manifest's digest (`sha256:<hex>`): the image's `RepoDigests` entry.
    pub digest: &'a str,
}

/// The result of committing a pull.
#[derive(Debug)]
pub struct Pulled {
    /// `sha256:<id>`.
    pub id: String,
    /// False when the image was there already under the same name.
    pub newer: bool,
}

/// One layer of an image to push.
#[derive(Debug)]
pub struct PushLayer {
    /// `sha256:<hex>` of the uncompressed tar stream.
    pub diff_id: String,
    /// The layer's content dir.
    pub content: PathBuf,
    /// Its tar stream record ([`tarsplit`](super::tarsplit)).
    pub record: Vec<u8>,
}

/// An image to push: its config and layers, bottom first.
#[derive(Debug)]
pub struct PushSource {
    pub id: String,
    pub config: Vec<u8>,
    pub layers: Vec<PushLayer>,
}

impl GraphStore {
    /// Extracts the tar stream `source` (plain or gzip) into a new layer dir, a layer
    /// `over` others or a base layer: a [`StagedLayer`]. Blocking; several run at once
    /// (lean buffers). A failure leaves nothing.
    pub fn stage_layer(
        self: &Arc<Self>,
        source: impl Read + Send + 'static,
        over: bool,
    ) -> Result<StagedLayer, GraphError> {
        let made = self.extract_into(source, over, true)?;
        Ok(StagedLayer {
            store: self.clone(),
            made: parking_lot::Mutex::new(Some(made)),
        })
    }

    /// The image config's diff ids, and which of their layers the store has: the layers
    /// a pull need not download.
    pub fn present_layers(&self, diff_ids: &[String]) -> Vec<bool> {
        let chains = super::chain_ids(diff_ids);
        let st = self.state.lock();
        chains.iter().map(|c| st.layers.contains_key(c)).collect()
    }

    /// Whether the image with config `config` is there, named `name:tag` (or
    /// `name@digest`): a pull that finds it says "Image is up to date".
    pub fn has_pulled(&self, c: &PullCommit<'_>) -> bool {
        let id = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(c.config))
        );
        let st = self.state.lock();
        let named = match c.tag {
            Some(t) => st.repos.get(c.name, t),
            None => st.repos.get_digest(c.name, c.digest),
        };
        named == Some(id.as_str())
    }

    /// Makes a pulled image: each layer from `layers` (in order, `count` of them, each
    /// checked against the config's diff id), then the config, its tag and its digest.
    /// `step` is told of each layer's extraction. Blocking: it waits on `layers`.
    pub fn commit_pull(
        &self,
        c: &PullCommit<'_>,
        layers: Receiver<PulledLayer>,
        step: &dyn Fn(usize, LayerStep),
    ) -> Result<Pulled, GraphError> {
        #[derive(serde::Deserialize)]
        struct Doc {
            rootfs: RootFs,
        }
        #[derive(serde::Deserialize)]
        struct RootFs {
            #[serde(default)]
            diff_ids: Vec<String>,
        }
        let doc: Doc =
            serde_json::from_slice(c.config).map_err(|e| GraphError::InvalidArchive {
                reason: format!("the image config: {e}"),
            })?;
        let newer = !self.has_pulled(c);
        let tags = match c.tag {
            Some(t) => vec![parse_repo_tag(c.name, Some(t))?],
            None => Vec::new(),
        };
        let mut pins = Pins::new(self);
        let mut parent: Option<String> = None;
        let mut pending = Vec::new();
        for (i, diff_id) in doc.rootfs.diff_ids.iter().enumerate() {
            let layer = layers.recv().map_err(|_| GraphError::TaskFailed {
                operation: "image pull",
            })??;
            let (chain, p) = match layer {
                Some(staged) => {
                    step(i, LayerStep::Extracting);
                    let made = self.adopt_layer(&staged, parent.as_deref(), diff_id, &mut pins)?;
                    step(i, LayerStep::Done);
                    made
                }
                None => {
                    self.begin_layer(std::io::empty(), parent.as_deref(), diff_id, &mut pins)?
                }
            };
            pending.extend(p);
            parent = Some(chain);
        }
        // One syncfs for all the layers (one filesystem), then each committed in order.
        if self.sync_layers {
            if let Some(first) = pending.first() {
                let dir = first.content().to_owned();
                let t0 = std::time::Instant::now();
                crate::sys::fs::sync_filesystem(&dir).map_err(super::io_error(&dir))?;
                tracing::debug!(ms = t0.elapsed().as_millis(), "pull: layers flushed");
            }
        }
        for mut p in pending {
            p.set_synced();
            self.finish_pending(p, &mut pins)?;
        }
        let id = self.commit_image(c.config, &tags)?;
        let repos = {
            let mut st = self.state.lock();
            st.repos.set_digest(c.name, c.digest, &id);
            st.repos_version += 1;
            (st.repos_version, st.repos.clone())
        };
        self.write_repos(repos.0, &repos.1)?;
        drop(pins);
        Ok(Pulled { id, newer })
    }

    /// Records `name@digest` for the image `id` after a push.
    pub fn record_digest(&self, name: &str, digest: &str, id: &str) -> Result<(), GraphError> {
        let repos = {
            let mut st = self.state.lock();
            if !st.images.contains_key(id.trim_start_matches("sha256:")) {
                return Ok(());
            }
            st.repos.set_digest(name, digest, id);
            st.repos_version += 1;
            (st.repos_version, st.repos.clone())
        };
        self.write_repos(repos.0, &repos.1)
    }

    /// Publishes a pull's or push's event as dockerd does: the reference as the id,
    /// the repository as `name`.
    pub fn registry_event(&self, id: &str, reference: &str, name: &str, action: &str) {
        let st = self.state.lock();
        let img = st.images.get(id.trim_start_matches("sha256:"));
        super::image_event(img, reference, name, action);
    }

    /// The image `reference` names, as a push reads it. Blocking.
    pub fn push_source(&self, reference: &str) -> Result<PushSource, GraphError> {
        let hex = {
            let st = self.state.lock();
            resolve_in(&st, reference)?
        };
        let plan = self.save_plan(&[format!("sha256:{hex}")])?;
        plan.into_push_source().ok_or(GraphError::ImageNotFound {
            reference: reference.to_owned(),
        })
    }

    /// Every tag of repository `name` (`docker push --all-tags`).
    pub fn tags_of_repo(&self, name: &str) -> Vec<String> {
        let st = self.state.lock();
        st.repos
            .repositories
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|(k, _)| k.strip_prefix(&format!("{name}:")).map(str::to_owned))
            .collect()
    }
}
