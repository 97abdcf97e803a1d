//! `/containers/{id}/exec` and `/exec/{id}/...` routes (the start is hijacked and lives in
//! `server`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;

use super::{ApiError, AppState, QueryParams, json_reply};
use crate::actors::store::{CreateExec, InspectExec, ResizeExec};
use crate::model::exec::parse_exec_create;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/containers/{id}/exec", web::post().to(create))
        .route("/exec/{id}/json", web::get().to(inspect))
        .route("/exec/{id}/resize", web::post().to(resize));
}

fn id_of(req: &HttpRequest) -> String {
    req.match_info().query("id").to_owned()
}

/// `POST /containers/{id}/exec`: 201 `{"Id": ...}`.
async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let request = parse_exec_create(&body)?;
    let id = state
        .actors
        .store
        .send(CreateExec {
            container: id_of(&req),
            request,
        })
        .await??;
    Ok(json_reply(
        StatusCode::CREATED,
        &serde_json::json!({ "Id": id }),
    ))
}

/// `GET /exec/{id}/json`.
async fn inspect(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let doc = state
        .actors
        .store
        .send(InspectExec { id: id_of(&req) })
        .await??;
    let mut v = serde_json::to_value(doc)
        .map_err(|e| ApiError::new(crate::error::ErrorKind::System, e.to_string()))?;
    // dockerd's `ExitCode` is a `*int`: null until the exec has exited.
    if let Some(obj) = v.as_object_mut() {
        obj.entry("ExitCode").or_insert(serde_json::Value::Null);
    }
    Ok(json_reply(StatusCode::OK, &v))
}

/// `POST /exec/{id}/resize?h=&w=`: both required, as in dockerd.
async fn resize(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let dim = |k: &str| -> Result<u16, ApiError> {
        let v = query.get(k).unwrap_or("");
        let n = v.parse::<i64>().map_err(|_| super::atoi_error(v))?;
        u16::try_from(n)
            .map_err(|_| ApiError::bad_request(format!("the terminal {k} {n} is out of range")))
    };
    state
        .actors
        .store
        .send(ResizeExec {
            id: id_of(&req),
            height: dim("h")?,
            width: dim("w")?,
        })
        .await??;
    Ok(HttpResponse::Ok().finish())
}
