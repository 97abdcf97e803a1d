//! `/containers/...` routes (attach is hijacked and lives in `server`).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde_json::Value;

use super::{ApiError, AppState, json_reply, parse_bool};
use crate::actors::store::{
    CreateContainer, InspectContainer, KillContainer, ListContainers, RemoveContainer, ResizeTty,
    StartContainer, StopContainer, WaitCondition, WaitContainer,
};
use crate::model::api::{
    ContainerCreateResponse, ContainerWaitResponse, ContainerWaitResponseError,
};
use crate::model::create::parse_create;
use crate::model::version::ApiVersion;

type Query = web::Query<HashMap<String, String>>;

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
        .route("/containers/{id}", web::delete().to(remove));
}

fn q<'a>(query: &'a Query, key: &str) -> Option<&'a str> {
    query.get(key).map(String::as_str)
}

async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
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

/// Docker's `filters` query: `{"name":{"t1":true}}` (CLI) or `{"name":["t1"]}` (SDKs).
pub fn parse_filters(raw: Option<&str>) -> Result<Vec<(String, Vec<String>)>, ApiError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(Vec::new());
    };
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))?;
    let Value::Object(m) = v else {
        return Err(ApiError::bad_request("invalid filters: not an object"));
    };
    let mut out = Vec::new();
    for (k, v) in m {
        let values = match v {
            Value::Object(set) => set.into_iter().map(|(x, _)| x).collect(),
            Value::Array(items) => items
                .into_iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
            Value::String(s) => vec![s],
            _ => return Err(ApiError::bad_request(format!("invalid filter {k}"))),
        };
        out.push((k, values));
    }
    Ok(out)
}

async fn list(state: web::Data<AppState>, query: Query) -> Result<HttpResponse, ApiError> {
    let all = parse_bool(q(&query, "all"), false)?;
    let limit = match q(&query, "limit") {
        Some(l) if !l.is_empty() => Some(
            l.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {l}")))?,
        ),
        _ => None,
    };
    let body = state
        .actors
        .store
        .send(ListContainers {
            all,
            limit: limit.and_then(|l| usize::try_from(l).ok()),
            filters: parse_filters(q(&query, "filters"))?,
        })
        .await??;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

async fn inspect(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let id = id_of(&req);
    let doc = state.actors.store.send(InspectContainer { id }).await??;
    Ok(json_reply(StatusCode::OK, &doc))
}

fn id_of(req: &HttpRequest) -> String {
    req.match_info().query("id").to_owned()
}

async fn start(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    state
        .actors
        .store
        .send(StartContainer { id: id_of(&req) })
        .await??;
    Ok(HttpResponse::NoContent().finish())
}

fn timeout_of(query: &Query) -> Result<Option<i64>, ApiError> {
    match q(query, "t").or_else(|| q(query, "timeout")) {
        Some(t) if !t.is_empty() => t
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid timeout {t}"))),
        _ => Ok(None),
    }
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

/// `stop` and `restart` share their parameters (`t`, `signal`).
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
    state.actors.store.send(StartContainer { id }).await??;
    Ok(HttpResponse::NoContent().finish())
}

async fn kill(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    state
        .actors
        .store
        .send(KillContainer {
            id: id_of(&req),
            signal: q(&query, "signal").map(str::to_owned),
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
    let dim = |k: &str| -> Result<u16, ApiError> {
        q(&query, k)
            .unwrap_or("0")
            .parse::<u16>()
            .map_err(|_| ApiError::bad_request(format!("invalid {k}")))
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

async fn remove(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let force = parse_bool(q(&query, "force"), false)?;
    if parse_bool(q(&query, "link"), false)? {
        return Err(ApiError::new(
            crate::error::ErrorKind::NotImplemented,
            "removing links is not supported by this berthd yet",
        ));
    }
    // `v` (anonymous volumes) is accepted: containers have none yet.
    parse_bool(q(&query, "v"), false)?;
    state
        .actors
        .store
        .send(RemoveContainer {
            id: id_of(&req),
            force,
        })
        .await??;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_in_both_shapes() {
        assert_eq!(
            parse_filters(Some(r#"{"name":{"t1":true}}"#)).unwrap(),
            vec![("name".to_owned(), vec!["t1".to_owned()])]
        );
        assert_eq!(
            parse_filters(Some(r#"{"status":["exited"]}"#)).unwrap(),
            vec![("status".to_owned(), vec!["exited".to_owned()])]
        );
        assert!(parse_filters(Some("nope")).is_err());
        assert!(parse_filters(None).unwrap().is_empty());
    }
}
