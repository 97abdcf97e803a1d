//! `docker history`: an image's history entries, newest first, as dockerd's
//! `ImageHistory` builds them — each entry's size is its layer's (none for an empty-layer
//! step), and the ids and tags go to the image and then, entry by entry, to its parent
//! images (a committed image's parent); the rest are `<missing>`.

use serde::Deserialize;

use super::{GraphStore, resolve_in};
use crate::actors::graph::error::GraphError;
use crate::model::api;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Step {
    created: Option<String>,
    created_by: String,
    comment: String,
    empty_layer: bool,
}

impl GraphStore {
    pub fn history(&self, reference: &str) -> Result<Vec<api::HistoryResponseItem>, GraphError> {
        let st = self.state.lock();
        let hex = resolve_in(&st, reference)?;
        let img = &st.images[&hex];
        let steps: Vec<Step> = img
            .raw
            .get("history")
            .and_then(|h| serde_json::from_value(h.clone()).ok())
            .unwrap_or_default();
        let sizes: Vec<i64> = img
            .chain
            .iter()
            .map(|c| st.layers.get(c).map_or(0, |l| l.size))
            .collect();
        let mut layer = 0;
        let mut out = Vec::with_capacity(steps.len());
        for s in steps {
            let size = if s.empty_layer {
                0
            } else {
                layer += 1;
                sizes.get(layer - 1).copied().unwrap_or(0)
            };
            let created = s
                .created
                .as_deref()
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
                .map_or(0, |t| t.timestamp());
            out.push(api::HistoryResponseItem {
                id: "<missing>".to_owned(),
                created,
                created_by: s.created_by,
                tags: Vec::new(),
                size,
                comment: s.comment,
            });
        }
        out.reverse();
        let mut cur = Some(hex);
        for item in &mut out {
            let Some(h) = cur else { break };
            let id = format!("sha256:{h}");
            item.tags = st.repos.tags_of(&id);
            item.id = id;
            cur = st.parents.get(&h).cloned();
        }
        Ok(out)
    }
}
