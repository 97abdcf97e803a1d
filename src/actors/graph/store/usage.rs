//! What the graph holds on disk, for `docker system df` (and `size` of ps and inspect):
//! the layers' sizes (recorded when each layer was made, never walked again), the images
//! with the bytes they share, and each container layer's own bytes (walked per request,
//! as dockerd walks them).

use std::collections::HashMap;

use super::{GraphStore, facts_of};
use crate::actors::graph::store::ImageUser;
use crate::actors::graph::{view, volumes};
use crate::model::api;

/// The graph's part of `GET /system/df`.
#[derive(Debug, Default)]
pub struct DiskUsage {
    /// Every layer's bytes, each once.
    pub layers_size: i64,
    /// Image rows with `SharedSize` (the bytes of layers another image has too) and
    /// `Containers` (how many use it).
    pub images: Vec<api::ImageSummary>,
    /// By container id: the bytes of its read-write layer, and with its image's.
    pub containers: HashMap<String, (i64, i64)>,
}

impl GraphStore {
    /// The sizes of `users`' containers' layers, and the images. Blocking (walks each
    /// container layer).
    pub fn disk_usage(&self, users: &[ImageUser], with_images: bool) -> DiskUsage {
        let (mut out, rw) = {
            let st = self.state.lock();
            let mut uses: HashMap<&str, usize> = HashMap::new();
            for img in st.images.values() {
                for c in &img.chain {
                    *uses.entry(c.as_str()).or_default() += 1;
                }
            }
            let layers_size = st.layers.values().map(|l| l.size).sum();
            let images = if with_images {
                st.images
                    .values()
                    .map(|img| {
                        let facts = facts_of(&st, img, false);
                        let mut row = view::summary(&facts);
                        row.shared_size = img
                            .chain
                            .iter()
                            .filter(|c| uses.get(c.as_str()).is_some_and(|n| *n > 1))
                            .filter_map(|c| st.layers.get(c))
                            .map(|l| l.size)
                            .sum();
                        let id = format!("sha256:{}", img.id);
                        row.containers = users.iter().filter(|u| u.image_id == id).count() as i64;
                        row
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let rw: Vec<(String, std::path::PathBuf, i64)> = users
                .iter()
                .filter_map(|u| {
                    let m = st.mounts.get(&u.container_id)?;
                    let image = st
                        .images
                        .get(u.image_id.trim_start_matches("sha256:"))
                        .map_or(0, |img| super::image_size(&st, img));
                    Some((
                        u.container_id.clone(),
                        self.driver.content_dir(&m.mount_id),
                        image,
                    ))
                })
                .collect();
            (
                DiskUsage {
                    layers_size,
                    images,
                    containers: HashMap::new(),
                },
                rw,
            )
        };
        for (id, dir, image) in rw {
            let size = i64::try_from(volumes::disk_usage(&dir)).unwrap_or(i64::MAX);
            out.containers.insert(id, (size, image + size));
        }
        out.images.sort_by_key(|r| std::cmp::Reverse(r.created));
        out
    }
}
