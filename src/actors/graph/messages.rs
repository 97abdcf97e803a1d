//! Messages of the [`GraphActor`](super::GraphActor).

use std::collections::{BTreeMap, HashSet};
use std::io::Read;

use actix::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::GraphError;
use crate::model::api;
use crate::monitor::spec::RootfsSpec;

/// A rootfs tarball being received (plain, or gzip-compressed). Read on a blocking thread.
pub type TarSource = Box<dyn Read + Send>;

/// From `api::images::create` (`docker import`): makes a one-layer image from a rootfs
/// tarball and tags it `repo:tag` when a repo is given. Replies with `sha256:<id>`.
#[derive(Message)]
#[rtype(result = "Result<String, GraphError>")]
pub struct ImportImage {
    pub source: TarSource,
    /// Already split from the `repo` query parameter (`imptest:1` → `imptest`, `1`).
    pub repo: Option<String>,
    pub tag: Option<String>,
    /// The history comment (`docker import -m`).
    pub message: String,
    /// Dockerfile-style changes (`docker import -c 'CMD ["sh"]'`).
    pub changes: Vec<String>,
}

impl std::fmt::Debug for ImportImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportImage")
            .field("repo", &self.repo)
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

/// From `api::images::list`: the rows that pass `filter` (compiled by the API; its
/// `before` and `since` are resolved here, `ImageNotFound` when they name no image).
#[derive(Debug, Default, Message)]
#[rtype(result = "Result<Vec<api::ImageSummary>, GraphError>")]
pub struct ListImages {
    pub filter: crate::model::filters::ImageFilter,
    /// `all`: intermediate images too (berth's images have no parents, so none).
    pub all: bool,
}

/// From `ContainerStoreActor` (create) and `api::images::inspect`: finds an image by
/// `name[:tag]`, `sha256:<id>`, full id or unique id prefix. `NotFound` otherwise, with
/// Docker's text (`No such image: busybox:latest`).
#[derive(Debug, Message)]
#[rtype(result = "Result<ImageInfo, GraphError>")]
pub struct ResolveImage {
    pub reference: String,
}

/// An image as the rest of the daemon needs it.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// `sha256:<64 hex>`.
    pub id: String,
    pub repo_tags: Vec<String>,
    /// The runtime defaults from the image config.
    pub config: ImageRuntimeConfig,
}

/// From `api::images::inspect`: the `GET /images/{name}/json` body of the image that
/// `reference` names (found as [`ResolveImage`] finds it).
#[derive(Debug, Message)]
#[rtype(result = "Result<api::Image, GraphError>")]
pub struct InspectImage {
    pub reference: String,
}

/// From `api::images::tag` (`docker tag SOURCE REPO[:TAG]`).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), GraphError>")]
pub struct TagImage {
    pub reference: String,
    pub repo: String,
    pub tag: Option<String>,
}

/// From `api::images::delete` (`docker rmi`): untags and deletes as dockerd does, weighing
/// `users` (from the container store) for its conflicts.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<api::ImageDeleteResponseItem>, GraphError>")]
pub struct DeleteImage {
    pub reference: String,
    pub force: bool,
    pub users: Vec<super::store::ImageUser>,
}

/// The `config` section of an image config, with Docker's field names.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImageRuntimeConfig {
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
    pub working_dir: String,
    pub user: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub stop_signal: Option<String>,
    /// `VOLUME`s: a container gets an anonymous volume at each.
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    /// `HEALTHCHECK`.
    pub healthcheck: Option<crate::model::api::HealthConfig>,
}

/// From `ContainerStoreActor` on create: makes the container's read-write layer on top
/// of the image. Answered as soon as the layer's dirs exist, with the mount that the
/// container's init makes, so that the sender can prepare what names the layer while
/// the layer is made durable; [`RwLayer::durable`] tells when it is.
#[derive(Debug, Message)]
#[rtype(result = "Result<RwLayer, GraphError>")]
pub struct CreateRwLayer {
    pub container_id: String,
    /// `sha256:<id>`.
    pub image_id: String,
}

/// A container layer being made durable.
#[derive(Debug)]
pub struct RwLayer {
    pub rootfs: RootfsSpec,
    /// Fires once the layer and its metadata are durable (`Ok`), or with the error that
    /// undid the layer. Until then the layer is pending: a `RemoveRwLayer` for it does
    /// nothing, so a sender that gives up must await this first. Nothing may name the
    /// layer durably before it fires `Ok`.
    pub durable: tokio::sync::oneshot::Receiver<Result<(), GraphError>>,
}

/// From `ContainerStoreActor` on remove: removes the container's read-write layer. Answered
/// once its metadata and dirs are renamed away (the metadata durably); the contents are
/// deleted afterwards by the deleter.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), GraphError>")]
pub struct RemoveRwLayer {
    pub container_id: String,
}

/// From `ContainerStoreActor` (Init): removes the read-write layers of containers not in
/// `keep` (every container dir with a record), which a crash between a create's layer and
/// its record left. Replies the container ids whose layers went.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<String>, GraphError>")]
pub struct PruneRwLayers {
    pub keep: HashSet<String>,
}

/// From `api::system::info`.
#[derive(Debug, Message)]
#[rtype(result = "DriverInfo")]
pub struct GetDriverInfo;

/// What `/info` shows of the storage driver.
#[derive(Debug, Clone)]
pub struct DriverInfo {
    /// `overlay2` or `vfs`.
    pub name: String,
    /// `DriverStatus` pairs (`["Backing Filesystem", "extfs"]`, …).
    pub status: Vec<(String, String)>,
    pub images: usize,
}

/// Container ids by the name of the volume they mount (from the container store's
/// `ListVolumeUsers`): what a volume removal must not take from under them.
pub type VolumeUsers = std::collections::HashMap<String, Vec<String>>;

/// From `api::volumes::create` (one) and the container store's create (the volumes of
/// its mounts): makes each volume, or finds the one of that name. All or the first error.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<super::volumes::Volume>, GraphError>")]
pub struct CreateVolumes {
    pub requests: Vec<super::volumes::VolumeRequest>,
}

/// From `api::volumes::inspect`: `get x: no such volume` (404) when there is none.
#[derive(Debug, Message)]
#[rtype(result = "Result<super::volumes::Volume, GraphError>")]
pub struct InspectVolume {
    pub name: String,
}

/// From `api::volumes::list`: the volumes `filters` selects (`dangling` by `users`).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<super::volumes::Volume>, GraphError>")]
pub struct ListVolumes {
    pub filters: crate::model::filters::Filters,
    pub users: VolumeUsers,
}

/// From `api::volumes::remove` and the container store (`docker rm -v`): removes a volume
/// that no container in `users` mounts; `force`: a missing one is no error.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), GraphError>")]
pub struct RemoveVolume {
    pub name: String,
    pub force: bool,
    pub users: VolumeUsers,
}

/// From `api::volumes::prune`: removes the volumes no container mounts that `filters`
/// selects; replies their names and the bytes freed.
#[derive(Debug, Message)]
#[rtype(result = "Result<(Vec<String>, u64), GraphError>")]
pub struct PruneVolumes {
    pub filters: crate::model::filters::Filters,
    pub users: VolumeUsers,
}

/// From `api::images::save` (`docker save`): checks `names` and replies once every image
/// is found, then writes the archive to `out` on a blocking thread.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), GraphError>")]
pub struct SaveImages {
    pub names: Vec<String>,
    pub out: crate::util::ChannelWriter,
}

/// From `api::images::load` (`docker load`): the images of the archive. Replies dockerd's
/// `Loaded image: …` lines.
#[derive(Message)]
#[rtype(result = "Result<Vec<String>, GraphError>")]
pub struct LoadImages {
    pub source: TarSource,
}

impl std::fmt::Debug for LoadImages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadImages").finish_non_exhaustive()
    }
}

/// From `api::images::history` (`docker history`).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<api::HistoryResponseItem>, GraphError>")]
pub struct ImageHistory {
    pub reference: String,
}

/// From `api::containers::changes` (`docker diff`).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<super::store::Change>, GraphError>")]
pub struct ContainerChanges {
    pub container_id: String,
}

/// From `api::containers::commit` (`docker commit`): the container's changes as a new
/// image over `image_id` with `config`, tagged `tags`. Replies `sha256:<id>`.
#[derive(Debug, Message)]
#[rtype(result = "Result<String, GraphError>")]
pub struct CommitContainer {
    pub container_id: String,
    pub image_id: String,
    pub config: serde_json::Value,
    pub step: super::store::CommitStep,
    pub tags: Vec<(String, String)>,
}

/// From `api::images::prune` (`docker image prune`).
#[derive(Debug, Message)]
#[rtype(result = "Result<(Vec<api::ImageDeleteResponseItem>, u64), GraphError>")]
pub struct PruneImages {
    pub filters: crate::model::filters::Filters,
    pub users: Vec<super::store::ImageUser>,
}

/// From `api::usage` (`docker system df`): layer, image and container layer sizes.
#[derive(Debug, Message)]
#[rtype(result = "Result<super::store::DiskUsage, GraphError>")]
pub struct GetDiskUsage {
    pub users: Vec<super::store::ImageUser>,
    pub with_images: bool,
}

/// From `api::images::create` with `fromImage` (`docker pull`): pulls `image` (with
/// `tag`: a tag or `sha256:` digest) for `platform` (this host's when `None`) with
/// `auth` (the `X-Registry-Auth` header). Progress lines go to `progress` as they
/// happen; the reply comes when the image is made.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), GraphError>")]
pub struct PullImage {
    pub image: String,
    pub tag: Option<String>,
    pub platform: Option<String>,
    pub auth: super::registry::AuthConfig,
    pub progress: super::registry::ProgressTx,
}

/// From `api::images::push` (`docker push`): pushes `name:tag` (every tag of `name`
/// when `tag` is `None`) with `auth`; progress lines go to `progress`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), GraphError>")]
pub struct PushImage {
    pub name: String,
    pub tag: Option<String>,
    pub auth: super::registry::AuthConfig,
    pub progress: super::registry::ProgressTx,
}

/// From `api::system::auth` (`docker login`): checks `auth` against its registry.
/// Replies the registry's name.
#[derive(Debug, Message)]
#[rtype(result = "Result<String, GraphError>")]
pub struct CheckLogin {
    pub auth: super::registry::AuthConfig,
}
