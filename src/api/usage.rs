//! `GET /system/df` (`docker system df [-v]`): the images with their shared bytes and
//! users, the containers with the bytes of their layers, the volumes with theirs, as
//! dockerd 20.10's `DiskUsage` shapes them. berthd has no builder cache: `BuildCache` is
//! empty.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use super::{ApiError, AppState, json_reply};
use crate::actors::graph::{GetDiskUsage, ListVolumes};
use crate::actors::store::{ListContainers, ListImageUsers, ListVolumeUsers};
use crate::model::complete::Template;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/system/df", web::get().to(df))
        .route("/build/prune", web::post().to(build_prune));
}

/// `POST /build/prune` (`docker builder prune`, and the last step of `docker system
/// prune`): berthd has no build cache, so nothing is deleted, whatever `all`,
/// `keep-storage` and the filters (dockerd's keys, checked) ask for.
async fn build_prune(query: super::QueryParams) -> Result<HttpResponse, ApiError> {
    let filters = crate::model::filters::Filters::parse(query.get("filters"))?;
    filters.validate(&[
        "description",
        "id",
        "inuse",
        "parent",
        "private",
        "shared",
        "type",
        "until",
        "unused-for",
    ])?;
    query.int("keep-storage")?;
    Ok(json_reply(
        StatusCode::OK,
        &json!({"CachesDeleted": null, "SpaceReclaimed": 0}),
    ))
}

async fn df(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let users = state.actors.store.send(ListImageUsers).await?;
    let usage = state
        .actors
        .graph
        .send(GetDiskUsage {
            users,
            with_images: true,
        })
        .await??;
    let list = state
        .actors
        .store
        .send(ListContainers {
            all: true,
            limit: None,
            filter: None,
        })
        .await??;
    let mut containers: Value = serde_json::from_slice(&list).unwrap_or_else(|_| json!([]));
    for c in containers.as_array_mut().into_iter().flatten() {
        let id = c["Id"].as_str().unwrap_or_default().to_owned();
        let (rw, root) = usage.containers.get(&id).copied().unwrap_or((0, 0));
        if rw > 0 {
            c["SizeRw"] = rw.into();
        }
        c["SizeRootFs"] = root.into();
    }
    let volume_users = state.actors.store.send(ListVolumeUsers).await?;
    let vols = state
        .actors
        .graph
        .send(ListVolumes {
            filters: Default::default(),
            users: volume_users.clone(),
        })
        .await??;
    let volumes = tokio::task::spawn_blocking(move || {
        vols.iter()
            .map(|v| {
                let mut doc = v.to_json();
                let size = if v.source == v.mountpoint {
                    crate::actors::graph::volumes::disk_usage(&v.mountpoint)
                } else {
                    // A bind-type volume's data is the user's dir: dockerd reports -1.
                    u64::MAX
                };
                doc["UsageData"] = json!({
                    "Size": if size == u64::MAX { -1 } else { i64::try_from(size).unwrap_or(i64::MAX) },
                    "RefCount": volume_users.get(&v.name).map_or(0, Vec::len),
                });
                doc
            })
            .collect::<Vec<Value>>()
    })
    .await
    .unwrap_or_default();
    let mut images: Vec<Value> = usage
        .images
        .iter()
        .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
        .collect();
    for img in &mut images {
        Template::ImageSummary.complete(img);
    }
    Ok(json_reply(
        StatusCode::OK,
        &json!({
            "LayersSize": usage.layers_size,
            "Images": images,
            "Containers": containers,
            "Volumes": volumes,
            "BuildCache": [],
            "BuilderSize": 0,
        }),
    ))
}
