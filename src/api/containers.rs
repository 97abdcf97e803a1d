//! `/containers/...` routes (attach is hijacked and lives in `server`).

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde_json::Value;

use super::{ApiError, AppState, QueryParams, check_platform, json_reply};
use crate::actors::graph::GetDiskUsage;
use crate::actors::graph::ResolveImage;
use crate::actors::store::{
    CreateContainer, InspectContainer, KillContainer, ListContainers, ListImageUsers,
    PruneCandidates, PublishEvent, RemoveContainer, RemoveLink, RenameContainer, ResizeTty,
    StartContainer, StopContainer, WaitCondition, WaitContainer,
};
use crate::model::api::{
    ContainerCreateResponse, ContainerWaitResponse, ContainerWaitResponseError,
};
use crate::model::create::parse_create;
use crate::model::filters::{ContainerFilter, Filters};
use crate::model::version::ApiVersion;

type Query = QueryParams;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/containers/create", web::post().to(create))
        .route("/containers/json", web::get().to(list))
        .route("/containers/{id}/json", web::get().to(inspect))
        .route("/containers/{id}/start", web::post().to(start))
        .route("/containers/{id}/stop", web::post().to(stop))
        .route("/containers/{id}/restart", web::post().to(restart))
        .route("/containers/{id}/kill", web::post().to(kill))
        .route("/containers/{id}/wait", web::post().to(wait))
        .route("/containers/{id}/resize", web::post().to(resize))
        .route("/containers/{id}/rename", web::post().to(rename))
        .route("/containers/prune", web::post().to(prune))
        .route("/containers/{id}", web::delete().to(remove))
        .route(
            "/containers/{parent}/{alias}",
            web::delete().to(remove_link),
        );
}

fn q<'a>(query: &'a Query, key: &str) -> Option<&'a str> {
    query.get(key)
}

async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    check_platform(q(&query, "platform"), "POST /containers/create")?;
    let version = ApiVersion::of_path(req.path());
    let request = parse_create(&body, version)?;
    let created = state
        .actors
        .store
        .send(CreateContainer {
            name: q(&query, "name").map(str::to_owned),
            request,
        })
        .await??;
    let reply = ContainerCreateResponse {
        id: created.id,
        warnings: created.warnings,
    };
    Ok(json_reply(
        StatusCode::CREATED,
        &serde_json::to_value(reply).unwrap_or(Value::Null),
    ))
}

/// `GET /containers/json`: `all`, `limit` (which lists stopped containers too, as in
/// dockerd), `filters`, `size` (`SizeRw` and `SizeRootFs` of each row, its layer walked
/// as dockerd walks it).
async fn list(state: web::Data<AppState>, query: Query) -> Result<HttpResponse, ApiError> {
    let size = query.flag("size");
    let limit = query.int("limit")?;
    let filters = Filters::parse(q(&query, "filters"))?;
    let filter = if filters.is_empty() {
        None
    } else {
        let mut f = ContainerFilter::compile(filters)?;
        if let Some(references) = f.ancestor_references() {
            // An ancestor that names no image is left out, as dockerd does.
            let mut ids = BTreeSet::new();
            for reference in references {
                if let Ok(image) = state.actors.graph.send(ResolveImage { reference }).await? {
                    ids.insert(image.id);
                }
            }
            f.set_ancestor_images(ids);
        }
        Some(f)
    };
    let body = state
        .actors
        .store
        .send(ListContainers {
            all: query.flag("all"),
            limit: limit.and_then(|l| usize::try_from(l).ok()),
            filter,
        })
        .await??;
    if !size {
        return Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(body));
    }
    let mut rows: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(crate::error::ErrorKind::System, e.to_string()))?;
    let ids: Vec<String> = rows
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["Id"].as_str().map(str::to_owned))
        .collect();
    let sizes = layer_sizes(&state, &ids).await?;
    for row in rows.as_array_mut().into_iter().flatten() {
        let id = row["Id"].as_str().unwrap_or("").to_owned();
        let (rw, root) = sizes.get(&id).copied().unwrap_or((0, 0));
        row["SizeRw"] = Value::from(rw);
        row["SizeRootFs"] = Value::from(root);
    }
    Ok(json_reply(StatusCode::OK, &rows))
}

/// The bytes of each container's read-write layer, and with its image's (`SizeRw`,
/// `SizeRootFs`), as `docker system df` counts them.
async fn layer_sizes(
    state: &AppState,
    ids: &[String],
) -> Result<std::collections::HashMap<String, (i64, i64)>, ApiError> {
    let users: Vec<_> = state
        .actors
        .store
        .send(ListImageUsers)
        .await?
        .into_iter()
        .filter(|u| ids.contains(&u.container_id))
        .collect();
    let usage = state
        .actors
        .graph
        .send(GetDiskUsage {
            users,
            with_images: false,
        })
        .await??;
    Ok(usage.containers)
}

/// `GET /containers/{id}/json`; `size` adds `SizeRw` and `SizeRootFs`.
async fn inspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let id = id_of(&req);
    let mut doc = state.actors.store.send(InspectContainer { id }).await??;
    if query.flag("size") {
        let id = doc["Id"].as_str().unwrap_or("").to_owned();
        let sizes = layer_sizes(&state, std::slice::from_ref(&id)).await?;
        let (rw, root) = sizes.get(&id).copied().unwrap_or((0, 0));
        doc["SizeRw"] = Value::from(rw);
        doc["SizeRootFs"] = Value::from(root);
    }
    Ok(json_reply(StatusCode::OK, &doc))
}

fn id_of(req: &HttpRequest) -> String {
    req.match_info().query("id").to_owned()
}

/// `POST /containers/{id}/start`. dockerd reads `checkpoint` and `checkpoint-dir` (and
/// ignores the `detachKeys` of the spec); without experimental mode it refuses both, as
/// berthd does.
async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    if query.non_empty("checkpoint").is_some() {
        return Err(ApiError::bad_request(
            "checkpoint is only supported in experimental mode",
        ));
    }
    if query.non_empty("checkpoint-dir").is_some() {
        return Err(ApiError::bad_request(
            "custom checkpointdir is not supported",
        ));
    }
    state
        .actors
        .store
        .send(StartContainer { id: id_of(&req) })
        .await??;
    Ok(HttpResponse::NoContent().finish())
}

fn timeout_of(query: &Query) -> Result<Option<i64>, ApiError> {
    query.int("t")
}

async fn stop(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    state
        .actors
        .store
        .send(stop_request(&req, &query)?)
        .await??;
    Ok(HttpResponse::NoContent().finish())
}

/// `stop` and `restart` share their parameters: `t`, and `signal` (API 1.42's, honoured).
fn stop_request(req: &HttpRequest, query: &Query) -> Result<StopContainer, ApiError> {
    Ok(StopContainer {
        id: id_of(req),
        timeout: timeout_of(query)?,
        signal: q(query, "signal").map(str::to_owned),
    })
}

async fn restart(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let id = id_of(&req);
    let stopped = state.actors.store.send(stop_request(&req, &query)?).await?;
    match stopped {
        Ok(()) => {}
        // Restarting a stopped container just starts it.
        Err(e) if e.kind() == crate::error::ErrorKind::NotModified => {}
        Err(e) => return Err(e.into()),
    }
    state
        .actors
        .store
        .send(StartContainer { id: id.clone() })
        .await??;
    state.actors.store.do_send(PublishEvent {
        id,
        action: "restart",
        extra: Vec::new(),
    });
    Ok(HttpResponse::NoContent().finish())
}

async fn kill(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    // Checked before the container, as dockerd's router does.
    let signal = query.non_empty("signal");
    if let Some(s) = signal {
        crate::actors::store::state::parse_signal(s)?;
    }
    state
        .actors
        .store
        .send(KillContainer {
            id: id_of(&req),
            signal: signal.map(str::to_owned),
        })
        .await??;
    Ok(HttpResponse::NoContent().finish())
}

/// Sends the 200 head at once and the body at the exit, as dockerd does: `docker run`
/// arms its wait before it starts the container.
async fn wait(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let condition =
        WaitCondition::parse(q(&query, "condition").unwrap_or("")).map_err(ApiError::from)?;
    let rx = state
        .actors
        .store
        .send(WaitContainer {
            id: id_of(&req),
            condition,
        })
        .await??;
    let body = futures_util::stream::once(async move {
        let reply = match rx.await {
            Ok(out) => ContainerWaitResponse {
                status_code: i64::from(out.status_code),
                error: out
                    .error
                    .map(|m| ContainerWaitResponseError { message: Some(m) }),
            },
            Err(_) => ContainerWaitResponse {
                status_code: -1,
                error: Some(ContainerWaitResponseError {
                    message: Some("the daemon stopped waiting (shutting down)".to_owned()),
                }),
            },
        };
        // dockerd prints `"Error": null` when there is none.
        let mut doc = serde_json::to_value(reply).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut doc {
            m.entry("Error").or_insert(Value::Null);
        }
        Ok::<_, actix_web::Error>(Bytes::from(format!("{doc}\n")))
    });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .streaming(body))
}

async fn resize(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    // Both are required, as in dockerd (Go's `strconv.Atoi` of an empty string fails).
    let dim = |k: &str| -> Result<u16, ApiError> {
        let v = q(&query, k).unwrap_or("");
        let n = v.parse::<i64>().map_err(|_| super::atoi_error(v))?;
        u16::try_from(n)
            .map_err(|_| ApiError::bad_request(format!("the terminal {k} {n} is out of range")))
    };
    state
        .actors
        .store
        .send(ResizeTty {
            id: id_of(&req),
            height: dim("h")?,
            width: dim("w")?,
        })
        .await??;
    Ok(HttpResponse::Ok().finish())
}

/// `POST /containers/prune?filters=` (`docker container prune`): every stopped container
/// the filters select goes (not its volumes, as dockerd); the bytes are their layers'.
async fn prune(state: web::Data<AppState>, query: Query) -> Result<HttpResponse, ApiError> {
    let filters = Filters::parse(q(&query, "filters"))?;
    let candidates = state
        .actors
        .store
        .send(PruneCandidates { filters })
        .await??;
    let sizes = state
        .actors
        .graph
        .send(crate::actors::graph::GetDiskUsage {
            users: candidates.clone(),
            with_images: false,
        })
        .await??;
    let mut deleted = Vec::new();
    let mut reclaimed = 0i64;
    for c in candidates {
        let removed = state
            .actors
            .store
            .send(RemoveContainer {
                id: c.container_id.clone(),
                force: false,
                volumes: false,
            })
            .await?;
        // One started or removed meanwhile is left to its own fate, as dockerd does.
        if removed.is_ok() {
            reclaimed += sizes.containers.get(&c.container_id).map_or(0, |s| s.0);
            deleted.push(c.container_id);
        }
    }
    let deleted = if deleted.is_empty() {
        Value::Null
    } else {
        serde_json::json!(deleted)
    };
    crate::events::events().other(
        crate::events::Kind::Container,
        "prune",
        "",
        [("reclaimed", reclaimed.to_string())],
    );
    Ok(json_reply(
        StatusCode::OK,
        &serde_json::json!({"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed}),
    ))
}

/// `POST /containers/{id}/rename?name=` (`docker rename`): 204, as dockerd.
async fn rename(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    state
        .actors
        .store
        .send(RenameContainer {
            id: id_of(&req),
            name: query.get("name").unwrap_or_default().to_owned(),
        })
        .await??;
    Ok(HttpResponse::NoContent().finish())
}

/// `docker rm --link /web/db`: the link goes, the containers stay.
async fn remove_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let (parent, alias) = (
        req.match_info().query("parent").to_owned(),
        req.match_info().query("alias").to_owned(),
    );
    if !query.flag("link") {
        return Err(ApiError::new(
            crate::error::ErrorKind::NotFound,
            format!("No such container: {parent}/{alias}"),
        ));
    }
    state
        .actors
        .store
        .send(RemoveLink { parent, alias })
        .await??;
    Ok(HttpResponse::NoContent().finish())
}

async fn remove(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let force = query.flag("force");
    // `link` removes a link `/parent/alias` (the route below); a bare name is the
    // container's own name, which is no link (dockerd's words).
    if query.flag("link") {
        return Err(ApiError::new(
            crate::error::ErrorKind::Conflict,
            "Conflict, cannot remove the default link name of the container",
        ));
    }
    state
        .actors
        .store
        .send(RemoveContainer {
            id: id_of(&req),
            force,
            volumes: query.flag("v"),
        })
        .await??;
    Ok(HttpResponse::NoContent().finish())
}
