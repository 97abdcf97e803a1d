//! The Engine API's views of an image: a `GET /images/json` row and the `GET
//! /images/{name}/json` body, built from what the store knows of it.
//!
//! Every value comes from the image's config as stored, the layer store or the tag store;
//! what berth does not record is dockerd's empty value, and the comments say why.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::driver::Driver;
use super::store::Image;
use crate::model::api;

/// What the store knows of one image, taken under its lock.
#[derive(Debug)]
pub struct ImageFacts<'a> {
    pub image: &'a Image,
    /// `name:tag`, sorted.
    pub tags: Vec<String>,
    /// `name@sha256:<manifest digest>` (pulled or pushed), sorted.
    pub digests: Vec<String>,
    /// The layers' sizes added up (dockerd's `Size` of the top layer's chain).
    pub size: i64,
    /// The layers' cache ids (their dirs under the driver home), top layer first.
    pub cache_ids: Vec<String>,
    /// When a tag was last put on the image (`imagedb/metadata/.../lastUpdated`).
    pub last_tagged: Option<DateTime<Utc>>,
    /// A committed image's parent, `sha256:<id>`.
    pub parent: Option<String>,
}

/// A `GET /images/json` row.
pub fn summary(f: &ImageFacts<'_>) -> api::ImageSummary {
    let id = format!("sha256:{}", f.image.id);
    // dockerd's row for an image with neither tag nor digest.
    let (repo_tags, repo_digests) = if f.tags.is_empty() && f.digests.is_empty() {
        (
            vec!["<none>:<none>".to_owned()],
            vec!["<none>@<none>".to_owned()],
        )
    } else if f.tags.is_empty() {
        // Pulled by digest only: dockerd lists the digest and no tag (`null`).
        (Vec::new(), f.digests.clone())
    } else {
        (f.tags.clone(), f.digests.clone())
    };
    api::ImageSummary {
        id,
        // A committed image's parent; imported and loaded images have none.
        parent_id: f.parent.clone().unwrap_or_default(),
        repo_tags,
        repo_digests,
        created: f.image.created_unix(),
        size: f.size,
        // -1: not computed, as dockerd answers outside `system df`.
        shared_size: -1,
        virtual_size: f.size,
        labels: f
            .image
            .config
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect::<HashMap<_, _>>(),
        // -1: not computed, as dockerd answers outside `system df`.
        containers: -1,
    }
}

/// The `GET /images/{name}/json` body.
pub fn inspect(f: &ImageFacts<'_>, driver: &Driver) -> api::Image {
    let raw = &f.image.raw;
    let text = |key: &str| raw.get(key).and_then(Value::as_str).map(str::to_owned);
    let layers: Vec<String> = raw
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    api::Image {
        id: format!("sha256:{}", f.image.id),
        repo_tags: Some(f.tags.clone()),
        // berthd pulls from no registry, so no image has a digest.
        repo_digests: Some(f.digests.clone()),
        // A committed image's parent; imported and loaded images have none.
        parent: f.parent.clone().unwrap_or_default(),
        // The config's own fields, as dockerd reads them; absent ones are dockerd's
        // empty values (an imported image has no container, and berthd, not being
        // Docker, records no Docker version).
        comment: text("comment").unwrap_or_default(),
        created: f.image.created.clone(),
        container: text("container").unwrap_or_default(),
        // A struct in dockerd's image: its zero value when the image has none.
        container_config: Some(container_config(raw.get("container_config")).unwrap_or_default()),
        docker_version: text("docker_version").unwrap_or_default(),
        author: text("author").unwrap_or_default(),
        config: container_config(raw.get("config")),
        architecture: text("architecture").unwrap_or_default(),
        // dockerd's default for an image that names no OS.
        os: text("os")
            .filter(|o| !o.is_empty())
            .unwrap_or_else(|| "linux".to_owned()),
        os_version: text("os.version"),
        size: f.size,
        virtual_size: f.size,
        graph_driver: api::GraphDriverData {
            name: driver.name().to_owned(),
            data: driver.image_metadata(&f.cache_ids),
        },
        root_fs: api::ImageRootFs {
            typ: raw
                .pointer("/rootfs/type")
                .and_then(Value::as_str)
                .unwrap_or("layers")
                .to_owned(),
            layers: Some(layers),
            base_layer: None,
        },
        metadata: Some(api::ImageMetadata {
            // Never tagged: dockerd's zero time.
            last_tag_time: Some(f.last_tagged.unwrap_or_else(zero_time)),
        }),
    }
}

/// Go's zero `time.Time` (`0001-01-01T00:00:00Z`), which dockerd prints for an image
/// never tagged.
fn zero_time() -> DateTime<Utc> {
    chrono::NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(DateTime::<Utc>::MIN_UTC, |t| t.and_utc())
}

/// A `container.Config` of the image config, typed; `None` when absent or `null`. One
/// that does not parse is logged and left out (`null`), rather than failing the inspect.
fn container_config(v: Option<&Value>) -> Option<api::ContainerConfig> {
    let v = v.filter(|v| !v.is_null())?;
    match serde_json::from_value(v.clone()) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "an image's container config does not parse");
            None
        }
    }
}
