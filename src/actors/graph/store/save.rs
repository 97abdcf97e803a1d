//! `docker save`: images as one tar stream in the layout both kinds of client load — the
//! OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`) that docker 25 and
//! later write, with dockerd's `manifest.json` and `repositories` beside it, which older
//! clients and `docker load` read. Every blob is written once: a layer's blob is its tar
//! stream given back byte for byte ([`tarsplit`](super::tarsplit)), so its digest is its
//! diff id, and the config blob is the image config as stored, so its digest is the id.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::{GraphStore, resolve_in, tarsplit};
use crate::actors::graph::error::GraphError;
use crate::actors::graph::reference::{self, Reference};

/// One image to save: what the stream needs, taken under the lock.
#[derive(Debug)]
struct SavedImage {
    hex: String,
    config: Vec<u8>,
    tags: Vec<String>,
    /// (diff id hex, layer content dir, its stream record), bottom first.
    layers: Vec<(String, PathBuf, Vec<u8>)>,
}

/// What a save will write, checked before the first byte goes out.
#[derive(Debug)]
pub struct SavePlan {
    images: Vec<SavedImage>,
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> GraphError + '_ {
    move |source| GraphError::Io {
        path: PathBuf::from(what),
        source,
    }
}

impl SavePlan {
    /// The plan's first image as a push reads it.
    pub(super) fn into_push_source(self) -> Option<super::pull::PushSource> {
        let img = self.images.into_iter().next()?;
        Some(super::pull::PushSource {
            id: format!("sha256:{}", img.hex),
            config: img.config,
            layers: img
                .layers
                .into_iter()
                .map(|(d, content, record)| super::pull::PushLayer {
                    diff_id: format!("sha256:{d}"),
                    content,
                    record,
                })
                .collect(),
        })
    }
}

impl GraphStore {
    /// Resolves `names` as dockerd's exporter does: `name:tag` and ids save one image (an
    /// id without its tags), a bare name every tag of that repository.
    pub fn save_plan(&self, names: &[String]) -> Result<SavePlan, GraphError> {
        // Image hex -> the tags to write for it.
        let mut wanted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        {
            let st = self.state.lock();
            for n in names {
                let bare_name =
                    matches!(reference::parse_reference(n), Ok(Reference::Tagged { .. }))
                        && reference::split_name_tag(n).1.is_none();
                let mut found: Vec<(String, Option<String>)> = Vec::new();
                if bare_name {
                    if let Ok(name) = reference::normalize_name(n) {
                        for (tag, id) in st.repos.repositories.get(&name).into_iter().flatten() {
                            if let Some(h) = id.strip_prefix("sha256:") {
                                found.push((h.to_owned(), Some(tag.clone())));
                            }
                        }
                    }
                }
                if found.is_empty() {
                    let hex = resolve_in(&st, n)?;
                    let tag = match reference::parse_reference(n) {
                        Ok(Reference::Tagged { name, tag }) => st
                            .repos
                            .get(&name, &tag)
                            .is_some_and(|id| id.ends_with(&hex))
                            .then(|| format!("{name}:{tag}")),
                        _ => None,
                    };
                    found.push((hex, tag));
                }
                for (hex, tag) in found {
                    if !wanted.contains_key(&hex) {
                        order.push(hex.clone());
                    }
                    let tags = wanted.entry(hex).or_default();
                    if let Some(t) = tag {
                        if !tags.contains(&t) {
                            tags.push(t);
                        }
                    }
                }
            }
        }
        let mut images = Vec::new();
        for hex in order {
            let (chain, tags) = {
                let st = self.state.lock();
                let img = st
                    .images
                    .get(&hex)
                    .ok_or_else(|| GraphError::ImageNotFound {
                        reference: hex.clone(),
                    })?;
                // (chain id hex, diff id, cache id), bottom first.
                let layers: Vec<(String, String, String)> = img
                    .chain
                    .iter()
                    .filter_map(|c| {
                        st.layers.get(c).map(|l| {
                            (
                                c.trim_start_matches("sha256:").to_owned(),
                                l.diff_id.clone(),
                                l.cache_id.clone(),
                            )
                        })
                    })
                    .collect();
                (layers, wanted.remove(&hex).unwrap_or_default())
            };
            let config_path = self.imagedb().join(&hex);
            let config = fs::read(&config_path).map_err(|source| GraphError::Io {
                path: config_path.clone(),
                source,
            })?;
            let mut layers = Vec::new();
            for (chain_hex, diff_id, cache_id) in &chain {
                let record_path = self.layerdb().join(chain_hex).join(tarsplit::FILE);
                let record = fs::read(&record_path).map_err(|_| GraphError::Conflict {
                    message: format!(
                        "berthd cannot save image sha256:{hex}: its layer {diff_id} has no record of its tar stream (it was imported by an older berthd, or its tarball replaced its own files); import it again"
                    ),
                })?;
                let dh = diff_id.trim_start_matches("sha256:").to_owned();
                layers.push((dh, self.driver.content_dir(cache_id), record));
            }
            images.push(SavedImage {
                hex,
                config,
                tags,
                layers,
            });
        }
        Ok(SavePlan { images })
    }

    /// Writes the archive of `plan` to `out`. Blocking.
    pub fn save(&self, plan: &SavePlan, out: impl Write) -> Result<(), GraphError> {
        let mut w = TarWriter { out, written: 0 };
        let mut done: HashSet<String> = HashSet::new();
        let mut manifest = Vec::new();
        let mut index = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        w.dir("blobs/")?;
        w.dir("blobs/sha256/")?;
        for img in &plan.images {
            let mut layer_descs = Vec::new();
            for (diff_hex, content, record) in &img.layers {
                let size = tarsplit::stream_size(record).map_err(io_err("layer record"))?;
                if done.insert(diff_hex.clone()) {
                    w.header(&format!("blobs/sha256/{diff_hex}"), size, 0o444)?;
                    let wrote = tarsplit::write_tar(record, content, &mut w.out)
                        .map_err(io_err("layer"))?;
                    if wrote != size {
                        return Err(io_err("layer")(io::Error::other("layer size changed")));
                    }
                    w.pad(size)?;
                }
                layer_descs.push(json!({
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": format!("sha256:{diff_hex}"),
                    "size": size,
                }));
            }
            if done.insert(img.hex.clone()) {
                w.file(&format!("blobs/sha256/{}", img.hex), &img.config)?;
            }
            let oci_manifest = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": format!("sha256:{}", img.hex),
                    "size": img.config.len(),
                },
                "layers": layer_descs,
            }))
            .unwrap_or_default();
            let mhex = hex::encode(Sha256::digest(&oci_manifest));
            if done.insert(mhex.clone()) {
                w.file(&format!("blobs/sha256/{mhex}"), &oci_manifest)?;
            }
            let layer_paths: Vec<String> = img
                .layers
                .iter()
                .map(|(d, _, _)| format!("blobs/sha256/{d}"))
                .collect();
            manifest.push(json!({
                "Config": format!("blobs/sha256/{}", img.hex),
                "RepoTags": if img.tags.is_empty() { serde_json::Value::Null } else { json!(img.tags) },
                "Layers": layer_paths,
            }));
            let mut desc = |name: Option<&String>| {
                let mut d = json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": format!("sha256:{mhex}"),
                    "size": oci_manifest.len(),
                });
                if let Some(t) = name {
                    let (n, tag) = reference::split_name_tag(t);
                    d["annotations"] = json!({
                        "io.containerd.image.name": full_name(t),
                        "org.opencontainers.image.ref.name": tag.unwrap_or("latest"),
                    });
                    if let Some(top) = img.layers.last().map(|(d, _, _)| d) {
                        repositories
                            .entry(n.to_owned())
                            .or_default()
                            .insert(tag.unwrap_or("latest").to_owned(), top.clone());
                    }
                }
                d
            };
            if img.tags.is_empty() {
                index.push(desc(None));
            } else {
                for t in &img.tags {
                    index.push(desc(Some(t)));
                }
            }
        }
        w.file(
            "index.json",
            &serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": index,
            }))
            .unwrap_or_default(),
        )?;
        w.file(
            "manifest.json",
            &serde_json::to_vec(&manifest).unwrap_or_default(),
        )?;
        w.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        if !repositories.is_empty() {
            w.file(
                "repositories",
                &serde_json::to_vec(&repositories).unwrap_or_default(),
            )?;
        }
        w.finish()?;
        let st = self.state.lock();
        for img in &plan.images {
            let full = format!("sha256:{}", img.hex);
            super::image_event(st.images.get(&img.hex), &full, &full, "save");
        }
        Ok(())
    }
}

/// `busybox:latest` as the fully qualified name containerd records.
fn full_name(tag: &str) -> String {
    let first = tag.split('/').next().unwrap_or("");
    let has_domain =
        tag.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_domain {
        tag.to_owned()
    } else if tag.contains('/') {
        format!("docker.io/{tag}")
    } else {
        format!("docker.io/library/{tag}")
    }
}

/// The outer archive, written header by header so that a layer streams straight from
/// its files.
struct TarWriter<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> TarWriter<W> {
    fn header(&mut self, path: &str, size: u64, mode: u32) -> Result<(), GraphError> {
        let mut h = tar::Header::new_ustar();
        h.set_path(path).map_err(io_err(path))?;
        h.set_size(size);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_entry_type(if path.ends_with('/') {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        h.set_cksum();
        self.out.write_all(h.as_bytes()).map_err(io_err(path))?;
        self.written += 512;
        Ok(())
    }

    fn pad(&mut self, size: u64) -> Result<(), GraphError> {
        let rem = usize::try_from(size % 512).unwrap_or(0);
        if rem != 0 {
            self.out
                .write_all(&[0u8; 512][..512 - rem])
                .map_err(io_err("archive"))?;
        }
        self.written += size.div_ceil(512) * 512;
        Ok(())
    }

    fn dir(&mut self, path: &str) -> Result<(), GraphError> {
        self.header(path, 0, 0o755)
    }

    fn file(&mut self, path: &str, data: &[u8]) -> Result<(), GraphError> {
        self.header(path, data.len() as u64, 0o444)?;
        self.out.write_all(data).map_err(io_err(path))?;
        self.pad(data.len() as u64)
    }

    fn finish(mut self) -> Result<(), GraphError> {
        self.out
            .write_all(&[0u8; 1024])
            .map_err(io_err("archive"))?;
        self.out.flush().map_err(io_err("archive"))
    }
}
