//! GraphActor: graph drivers, layers, images and tags (seed step 4.4).
//!
//! State: an `Arc<GraphStore>` made by `Init` ([`store::GraphStore`]): the selected
//! [`driver::Driver`] (overlay2 or vfs) and the in-memory index of images, layers,
//! container layers and tags, behind one `parking_lot::Mutex` inside the store.
//!
//! Threads and blocking: the actor runs on an arbiter and never blocks it. Work that
//! touches the disk (the driver probe, started as the actor starts and awaited by
//! Init, Init's load, imports, making and removing
//! container layers, Shutdown's flush) runs in `tokio::task::spawn_blocking` with a
//! clone of the `Arc`; the store locks its mutex only for short commits, so a long
//! import does not hold up `ListImages`, `ResolveImage` or another import. Lookups
//! (`ListImages`, `ResolveImage`, `InspectImage`, `GetDriverInfo`) read the in-memory
//! index directly.
//! `CreateRwLayer` answers once the layer's dirs exist, and its blocking work goes on
//! to make them durable, reported on the reply's `durable` channel. A removal answers
//! once its renames are durable; the renamed dirs are deleted by the
//! [`Deleter`](crate::deleter::Deleter) given at construction (one thread, shared with
//! the container store), which `Shutdown` drains before its flush.
//!
//! Registries ([`registry::Registries`]): `PullImage`, `PushImage` and `CheckLogin` run
//! their network work as async tasks on this arbiter, sharing downloads and pushes in the
//! pulling and pushing pools; pulled layers are made on a blocking thread as a load makes
//! them.
//!
//! Architecture invariant: the graph never mounts a container's rootfs; it replies with
//! a [`RootfsSpec`](crate::monitor::spec::RootfsSpec) that the container's init mounts
//! in its own mount namespace.

pub mod archive;
pub mod changes;
pub(crate) mod copy;
mod direct;
pub mod driver;
pub mod error;
pub mod messages;
pub mod reference;
pub mod registry;
pub mod store;
pub mod tarsplit;
pub mod view;
pub mod volumes;

use std::sync::Arc;

use actix::prelude::*;

pub use error::GraphError;
pub use messages::*;
pub use store::{GraphStore, ImageUser};

use super::{Init, LifecycleError, Shutdown};
use crate::config::DaemonConfig;
use crate::deleter::Deleter;

/// The graph subsystem. See the module docs.
#[derive(Debug)]
pub struct GraphActor {
    config: Arc<DaemonConfig>,
    /// Deletes removed layers off the reply path; handed to the store at `Init`.
    deleter: Deleter,
    /// Set by `Init`; shared with blocking tasks.
    store: Option<Arc<GraphStore>>,
    /// The volumes (`data-root/volumes`), opened by `Init`.
    volumes: Option<Arc<volumes::VolumeStore>>,
    /// The driver selection (its probe: a test mount for overlay2), started when the
    /// actor starts so that it runs while the actors before this one initialise;
    /// `Init` waits for it.
    selecting: Option<tokio::task::JoinHandle<Result<driver::Driver, GraphError>>>,
    /// The registries: clients, the pulling and pushing pools. Their network work runs
    /// as tasks on this actor's arbiter.
    registries: Arc<registry::Registries>,
}

impl GraphActor {
    /// `deleter` deletes the dirs that removals rename away; `Shutdown` drains it.
    pub fn new(config: Arc<DaemonConfig>, deleter: Deleter) -> Self {
        let registries = Arc::new(registry::Registries::new(
            &config.insecure_registries,
            &config.registry_mirrors,
        ));
        GraphActor {
            config,
            deleter,
            store: None,
            volumes: None,
            selecting: None,
            registries,
        }
    }

    fn store(&self) -> Result<Arc<GraphStore>, GraphError> {
        self.store.clone().ok_or(GraphError::NotReady)
    }

    fn volumes(&self) -> Result<Arc<volumes::VolumeStore>, GraphError> {
        self.volumes.clone().ok_or(GraphError::NotReady)
    }
}

/// Runs `f` on a blocking thread.
async fn blocking<T, F>(operation: &'static str, f: F) -> Result<T, GraphError>
where
    F: FnOnce() -> Result<T, GraphError> + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|_| GraphError::TaskFailed { operation })?
}

/// Runs `f` on a blocking thread with the store, or fails with `NotReady`.
fn with_store<T, F>(
    actor: &GraphActor,
    operation: &'static str,
    f: F,
) -> ResponseFuture<Result<T, GraphError>>
where
    F: FnOnce(&GraphStore) -> Result<T, GraphError> + Send + 'static,
    T: Send + 'static,
{
    match actor.store() {
        Ok(store) => Box::pin(blocking(operation, move || f(&store))),
        Err(e) => Box::pin(async move { Err(e) }),
    }
}

impl Actor for GraphActor {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Self::Context) {
        let config = self.config.clone();
        self.selecting = Some(tokio::task::spawn_blocking(move || {
            GraphStore::select_driver(&config)
        }));
    }
}

impl Handler<Init> for GraphActor {
    type Result = ResponseActFuture<Self, Result<(), LifecycleError>>;
    fn handle(&mut self, _: Init, _: &mut Self::Context) -> Self::Result {
        let config = self.config.clone();
        let deleter = self.deleter.clone();
        let selecting = self.selecting.take();
        let fut = async move {
            let drv = match selecting {
                Some(task) => task.await.map_err(|_| GraphError::TaskFailed {
                    operation: "storage driver selection",
                })??,
                None => {
                    let config = config.clone();
                    blocking("storage driver selection", move || {
                        GraphStore::select_driver(&config)
                    })
                    .await?
                }
            };
            blocking("graph init", move || {
                let vols = volumes::VolumeStore::open(&config.data_root, deleter.clone())?;
                Ok((GraphStore::open_on(&config, drv, deleter)?, vols))
            })
            .await
        };
        Box::pin(
            actix::fut::wrap_future::<_, Self>(fut).map(|res, act, _| match res {
                Ok((store, vols)) => {
                    act.store = Some(Arc::new(store));
                    act.volumes = Some(Arc::new(vols));
                    Ok(())
                }
                Err(e) => Err(LifecycleError::from_error(&e)),
            }),
        )
    }
}

impl Handler<Shutdown> for GraphActor {
    type Result = ResponseFuture<Result<(), LifecycleError>>;
    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> Self::Result {
        let Some(store) = self.store.clone() else {
            return Box::pin(async { Ok(()) });
        };
        Box::pin(async move {
            blocking("graph shutdown", move || store.shutdown())
                .await
                .map_err(|e| LifecycleError::from_error(&e))
        })
    }
}

impl Handler<ImportImage> for GraphActor {
    type Result = ResponseFuture<Result<String, GraphError>>;
    fn handle(&mut self, msg: ImportImage, _: &mut Self::Context) -> Self::Result {
        with_store(self, "image import", move |s| s.import(msg))
    }
}

impl Handler<ListImages> for GraphActor {
    type Result = Result<Vec<crate::model::api::ImageSummary>, GraphError>;
    fn handle(&mut self, msg: ListImages, _: &mut Self::Context) -> Self::Result {
        match self.store.as_ref() {
            Some(s) => s.list_filtered(&msg.filter, msg.all),
            None => Ok(Vec::new()),
        }
    }
}

impl Handler<ResolveImage> for GraphActor {
    type Result = Result<ImageInfo, GraphError>;
    fn handle(&mut self, msg: ResolveImage, _: &mut Self::Context) -> Self::Result {
        self.store()?.resolve(&msg.reference)
    }
}

impl Handler<InspectImage> for GraphActor {
    type Result = Result<crate::model::api::Image, GraphError>;
    fn handle(&mut self, msg: InspectImage, _: &mut Self::Context) -> Self::Result {
        self.store()?.inspect(&msg.reference)
    }
}

impl Handler<TagImage> for GraphActor {
    type Result = ResponseFuture<Result<(), GraphError>>;
    fn handle(&mut self, msg: TagImage, _: &mut Self::Context) -> Self::Result {
        with_store(self, "image tag", move |s| {
            s.tag(&msg.reference, &msg.repo, msg.tag.as_deref())
        })
    }
}

impl Handler<DeleteImage> for GraphActor {
    type Result =
        ResponseFuture<Result<Vec<crate::model::api::ImageDeleteResponseItem>, GraphError>>;
    fn handle(&mut self, msg: DeleteImage, _: &mut Self::Context) -> Self::Result {
        with_store(self, "image removal", move |s| {
            s.delete(&msg.reference, msg.force, &msg.users)
        })
    }
}

impl Handler<CreateRwLayer> for GraphActor {
    type Result = ResponseFuture<Result<RwLayer, GraphError>>;
    /// Replies when the dirs exist; the blocking work goes on to make them durable and
    /// reports on [`RwLayer::durable`].
    fn handle(&mut self, msg: CreateRwLayer, _: &mut Self::Context) -> Self::Result {
        let store = match self.store() {
            Ok(s) => s,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let (made_tx, made_rx) = tokio::sync::oneshot::channel();
        let (durable_tx, durable) = tokio::sync::oneshot::channel();
        let work = blocking("container layer create", move || {
            store.create_rw_with(&msg.container_id, &msg.image_id, move |spec| {
                let _ = made_tx.send(spec);
            })
        });
        actix::spawn(async move {
            let _ = durable_tx.send(work.await);
        });
        Box::pin(async move {
            match made_rx.await {
                Ok(rootfs) => Ok(RwLayer { rootfs, durable }),
                // It failed before the dirs were made: the error comes on `durable`.
                Err(_) => Err(match durable.await {
                    Ok(Err(e)) => e,
                    _ => GraphError::TaskFailed {
                        operation: "container layer create",
                    },
                }),
            }
        })
    }
}

impl Handler<PruneRwLayers> for GraphActor {
    type Result = ResponseFuture<Result<Vec<String>, GraphError>>;
    fn handle(&mut self, msg: PruneRwLayers, _: &mut Self::Context) -> Self::Result {
        with_store(self, "container layer prune", move |s| {
            s.prune_rw(&msg.keep)
        })
    }
}

impl Handler<RemoveRwLayer> for GraphActor {
    type Result = ResponseFuture<Result<(), GraphError>>;
    fn handle(&mut self, msg: RemoveRwLayer, _: &mut Self::Context) -> Self::Result {
        with_store(self, "container layer remove", move |s| {
            s.remove_rw(&msg.container_id)
        })
    }
}

impl Handler<GetDriverInfo> for GraphActor {
    type Result = MessageResult<GetDriverInfo>;
    fn handle(&mut self, _: GetDriverInfo, _: &mut Self::Context) -> Self::Result {
        MessageResult(match &self.store {
            Some(s) => s.driver_info(),
            None => DriverInfo {
                name: String::new(),
                status: Vec::new(),
                images: 0,
            },
        })
    }
}

/// Runs `f` on a blocking thread with the volume store, or fails with `NotReady`.
fn with_volumes<T, F>(
    actor: &GraphActor,
    operation: &'static str,
    f: F,
) -> ResponseFuture<Result<T, GraphError>>
where
    F: FnOnce(&volumes::VolumeStore) -> Result<T, GraphError> + Send + 'static,
    T: Send + 'static,
{
    match actor.volumes() {
        Ok(v) => Box::pin(blocking(operation, move || f(&v))),
        Err(e) => Box::pin(async move { Err(e) }),
    }
}

impl Handler<CreateVolumes> for GraphActor {
    type Result = ResponseFuture<Result<Vec<volumes::Volume>, GraphError>>;
    fn handle(&mut self, msg: CreateVolumes, _: &mut Self::Context) -> Self::Result {
        with_volumes(self, "volume create", move |v| {
            msg.requests.iter().map(|r| v.create(r)).collect()
        })
    }
}

impl Handler<InspectVolume> for GraphActor {
    type Result = Result<volumes::Volume, GraphError>;
    fn handle(&mut self, msg: InspectVolume, _: &mut Self::Context) -> Self::Result {
        self.volumes()?.get(&msg.name)
    }
}

impl Handler<ListVolumes> for GraphActor {
    type Result = Result<Vec<volumes::Volume>, GraphError>;
    fn handle(&mut self, msg: ListVolumes, _: &mut Self::Context) -> Self::Result {
        self.volumes()?.list(&msg.filters, &msg.users)
    }
}

impl Handler<RemoveVolume> for GraphActor {
    type Result = ResponseFuture<Result<(), GraphError>>;
    fn handle(&mut self, msg: RemoveVolume, _: &mut Self::Context) -> Self::Result {
        with_volumes(self, "volume removal", move |v| {
            v.remove(&msg.name, msg.force, &msg.users)
        })
    }
}

impl Handler<PruneVolumes> for GraphActor {
    type Result = ResponseFuture<Result<(Vec<String>, u64), GraphError>>;
    fn handle(&mut self, msg: PruneVolumes, _: &mut Self::Context) -> Self::Result {
        with_volumes(self, "volume prune", move |v| {
            v.prune(&msg.filters, &msg.users)
        })
    }
}

impl Handler<SaveImages> for GraphActor {
    type Result = ResponseFuture<Result<(), GraphError>>;
    /// Replies once the images are found; the archive is written after, on the same
    /// blocking thread.
    fn handle(&mut self, msg: SaveImages, _: &mut Self::Context) -> Self::Result {
        let store = match self.store() {
            Ok(s) => s,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                let SaveImages { names, out } = msg;
                match store.save_plan(&names) {
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                    Ok(plan) => {
                        let _ = ready_tx.send(Ok(()));
                        if let Err(e) = store.save(&plan, out) {
                            tracing::warn!(error = %crate::util::error_chain(&e), "docker save stopped");
                        }
                    }
                }
            });
        });
        Box::pin(async move {
            ready_rx.await.unwrap_or(Err(GraphError::TaskFailed {
                operation: "image save",
            }))
        })
    }
}

impl Handler<LoadImages> for GraphActor {
    type Result = ResponseFuture<Result<Vec<String>, GraphError>>;
    fn handle(&mut self, msg: LoadImages, _: &mut Self::Context) -> Self::Result {
        with_store(self, "image load", move |s| s.load_archive(msg.source))
    }
}

impl Handler<ImageHistory> for GraphActor {
    type Result = Result<Vec<crate::model::api::HistoryResponseItem>, GraphError>;
    fn handle(&mut self, msg: ImageHistory, _: &mut Self::Context) -> Self::Result {
        self.store()?.history(&msg.reference)
    }
}

impl Handler<ContainerChanges> for GraphActor {
    type Result = ResponseFuture<Result<Vec<store::Change>, GraphError>>;
    fn handle(&mut self, msg: ContainerChanges, _: &mut Self::Context) -> Self::Result {
        with_store(self, "container diff", move |s| {
            s.changes(&msg.container_id)
        })
    }
}

impl Handler<CommitContainer> for GraphActor {
    type Result = ResponseFuture<Result<String, GraphError>>;
    fn handle(&mut self, msg: CommitContainer, _: &mut Self::Context) -> Self::Result {
        with_store(self, "container commit", move |s| {
            s.commit(
                &msg.container_id,
                &msg.image_id,
                msg.config,
                msg.step,
                &msg.tags,
            )
        })
    }
}

impl Handler<PruneImages> for GraphActor {
    type Result =
        ResponseFuture<Result<(Vec<crate::model::api::ImageDeleteResponseItem>, u64), GraphError>>;
    fn handle(&mut self, msg: PruneImages, _: &mut Self::Context) -> Self::Result {
        with_store(self, "image prune", move |s| {
            s.prune_images(&msg.filters, &msg.users)
        })
    }
}

impl Handler<GetDiskUsage> for GraphActor {
    type Result = ResponseFuture<Result<store::DiskUsage, GraphError>>;
    fn handle(&mut self, msg: GetDiskUsage, _: &mut Self::Context) -> Self::Result {
        with_store(self, "disk usage", move |s| {
            Ok(s.disk_usage(&msg.users, msg.with_images))
        })
    }
}

impl Handler<PullImage> for GraphActor {
    type Result = ResponseFuture<Result<(), GraphError>>;
    fn handle(&mut self, msg: PullImage, _: &mut Self::Context) -> Self::Result {
        let store = match self.store() {
            Ok(s) => s,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        Box::pin(registry::pull(
            self.registries.clone(),
            store,
            msg.image,
            msg.tag,
            msg.platform,
            msg.auth,
            msg.progress,
        ))
    }
}

impl Handler<PushImage> for GraphActor {
    type Result = ResponseFuture<Result<(), GraphError>>;
    fn handle(&mut self, msg: PushImage, _: &mut Self::Context) -> Self::Result {
        let store = match self.store() {
            Ok(s) => s,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        Box::pin(registry::push(
            self.registries.clone(),
            store,
            msg.name,
            msg.tag,
            msg.auth,
            msg.progress,
        ))
    }
}

impl Handler<CheckLogin> for GraphActor {
    type Result = ResponseFuture<Result<String, GraphError>>;
    fn handle(&mut self, msg: CheckLogin, _: &mut Self::Context) -> Self::Result {
        let registries = self.registries.clone();
        Box::pin(async move { Ok(registries.login(&msg.auth).await?) })
    }
}
