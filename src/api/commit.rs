//! `GET /containers/{id}/changes` (`docker diff`) and `POST /commit` (`docker commit`).
//!
//! A commit: the container store says what the container is (its image, config, command),
//! pauses it while the graph reads its layer when it runs (unless `pause=0`), and the graph
//! makes the layer and the image; the new image's config is the container's, with the
//! request body's non-empty fields over it and the `changes` instructions applied.

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::{ApiError, AppState, QueryParams, json_reply};
use crate::actors::graph::changes::{ContainerConfig, apply_changes};
use crate::actors::graph::store::{CommitStep, parse_repo_tag};
use crate::actors::graph::{CommitContainer, ContainerChanges, GraphError};
use crate::actors::store::{
    GetCommitSource, GetLiveTarget, PauseContainer, PublishEvent, UnpauseContainer,
};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/containers/{id}/changes", web::get().to(changes))
        .route("/commit", web::post().to(commit));
}

async fn changes(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let id = req.match_info().query("id").to_owned();
    let target = state.actors.store.send(GetLiveTarget { id }).await??;
    let list = state
        .actors
        .graph
        .send(ContainerChanges {
            container_id: target.id,
        })
        .await??;
    let doc: Vec<Value> = list
        .iter()
        .map(|c| json!({"Path": c.path, "Kind": c.kind as u8}))
        .collect();
    Ok(json_reply(StatusCode::OK, &json!(doc)))
}

/// Every non-empty field of `over` replaces the field of `base` (dockerd's `merge` of a
/// commit's config with the container's).
fn merge(base: &mut Value, over: &Value) {
    let (Some(b), Some(o)) = (base.as_object_mut(), over.as_object()) else {
        return;
    };
    for (k, v) in o {
        let empty = match v {
            Value::Null => true,
            Value::Bool(x) => !x,
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(m) => m.is_empty(),
        };
        if !empty {
            b.insert(k.clone(), v.clone());
        }
    }
}

async fn commit(
    state: web::Data<AppState>,
    query: QueryParams,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let Some(container) = query.non_empty("container") else {
        return Err(ApiError::bad_request("No container specified"));
    };
    let tags = match query.non_empty("repo") {
        Some(repo) => vec![parse_repo_tag(repo, query.non_empty("tag"))?],
        None => Vec::new(),
    };
    let over: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(e.to_string()))?
    };
    let src = state
        .actors
        .store
        .send(GetCommitSource {
            id: container.to_owned(),
        })
        .await??;
    let mut config = src.config.clone();
    merge(&mut config, &over);
    let mut image_config: ContainerConfig = serde_json::from_value(config)
        .map_err(|e| ApiError::bad_request(format!("invalid config: {e}")))?;
    let changes = query.changes();
    apply_changes(&mut image_config, &changes)
        .map_err(|(change, reason)| GraphError::InvalidChange { change, reason })?;
    // `pause` is true unless given as false (API 1.13 on).
    let pause = query.get("pause").is_none_or(|_| query.flag("pause"));
    let paused_here = pause && src.running && !src.paused;
    if paused_here {
        state
            .actors
            .store
            .send(PauseContainer { id: src.id.clone() })
            .await??;
    }
    let image_ref = tags
        .first()
        .map(|(n, t)| format!("{n}:{t}"))
        .unwrap_or_default();
    let made = state
        .actors
        .graph
        .send(CommitContainer {
            container_id: src.id.clone(),
            image_id: src.image.clone(),
            config: serde_json::to_value(&image_config).unwrap_or_default(),
            step: CommitStep {
                created_by: src.command.clone(),
                comment: query.get("comment").unwrap_or_default().to_owned(),
                author: query.get("author").unwrap_or_default().to_owned(),
                container_config: src.config.clone(),
            },
            tags,
        })
        .await;
    if paused_here {
        let thawed = state
            .actors
            .store
            .send(UnpauseContainer { id: src.id.clone() })
            .await;
        if let Ok(Err(e)) = thawed {
            tracing::warn!(container_id = %src.id, error = %e, "unpause after commit failed");
        }
    }
    let id = made??;
    state.actors.store.do_send(PublishEvent {
        id: src.id.clone(),
        action: "commit",
        extra: vec![
            (
                "comment",
                query.get("comment").unwrap_or_default().to_owned(),
            ),
            ("imageID", id.clone()),
            ("imageRef", image_ref),
        ],
    });
    Ok(json_reply(StatusCode::CREATED, &json!({"Id": id})))
}
