//! `/volumes` routes: create, list, inspect, remove, prune (`docker volume ...`), with the
//! keys and texts of dockerd 20.10. Which containers use a volume comes from the container
//! store (`ListVolumeUsers`); the volumes are the graph's.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState, QueryParams, json_reply};
use crate::actors::graph::volumes::VolumeRequest;
use crate::actors::graph::{CreateVolumes, InspectVolume, ListVolumes, PruneVolumes, RemoveVolume};
use crate::actors::store::ListVolumeUsers;
use crate::model::filters::Filters;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/volumes", web::get().to(list))
        .route("/volumes/create", web::post().to(create))
        .route("/volumes/prune", web::post().to(prune))
        .route("/volumes/{name}", web::get().to(inspect))
        .route("/volumes/{name}", web::delete().to(remove));
}

/// The body of `POST /volumes/create` (dockerd's `VolumeCreateBody`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: Option<String>,
    driver: Option<String>,
    driver_opts: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

async fn create(state: web::Data<AppState>, body: Bytes) -> Result<HttpResponse, ApiError> {
    let body: CreateBody = if body.is_empty() {
        CreateBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(e.to_string()))?
    };
    let request = VolumeRequest {
        name: body.name.unwrap_or_default(),
        driver: body.driver.unwrap_or_default(),
        options: body.driver_opts.unwrap_or_default(),
        labels: body.labels.unwrap_or_default(),
    };
    let mut made = state
        .actors
        .graph
        .send(CreateVolumes {
            requests: vec![request],
        })
        .await??;
    let v = made
        .pop()
        .ok_or_else(|| ApiError::bad_request("no volume made"))?;
    Ok(json_reply(StatusCode::CREATED, &v.to_json()))
}

async fn list(state: web::Data<AppState>, query: QueryParams) -> Result<HttpResponse, ApiError> {
    let filters = Filters::parse(query.get("filters"))?;
    let users = state.actors.store.send(ListVolumeUsers).await?;
    let vols = state
        .actors
        .graph
        .send(ListVolumes { filters, users })
        .await??;
    let list: Vec<Value> = vols.iter().map(|v| v.to_json()).collect();
    Ok(json_reply(
        StatusCode::OK,
        &json!({"Volumes": list, "Warnings": null}),
    ))
}

async fn inspect(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let name = req.match_info().query("name").to_owned();
    let v = state.actors.graph.send(InspectVolume { name }).await??;
    Ok(json_reply(StatusCode::OK, &v.to_json()))
}

async fn remove(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let name = req.match_info().query("name").to_owned();
    let users = state.actors.store.send(ListVolumeUsers).await?;
    state
        .actors
        .graph
        .send(RemoveVolume {
            name,
            force: query.flag("force"),
            users,
        })
        .await??;
    Ok(HttpResponse::NoContent().finish())
}

async fn prune(state: web::Data<AppState>, query: QueryParams) -> Result<HttpResponse, ApiError> {
    let filters = Filters::parse(query.get("filters"))?;
    let users = state.actors.store.send(ListVolumeUsers).await?;
    let (names, freed) = state
        .actors
        .graph
        .send(PruneVolumes { filters, users })
        .await??;
    let deleted = if names.is_empty() {
        Value::Null
    } else {
        json!(names)
    };
    Ok(json_reply(
        StatusCode::OK,
        &json!({"VolumesDeleted": deleted, "SpaceReclaimed": freed}),
    ))
}
