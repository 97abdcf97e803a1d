//! Registry routes: `docker pull` (`POST /images/create?fromImage=`, called from
//! `images::create`), `docker push` (`POST /images/{name}/push`), `docker login`
//! (`POST /auth`) and `docker search` (`GET /images/search`, refused).
//!
//! A pull or push replies dockerd's JSON message stream. An error before the first line
//! is the reply's status (so `docker pull` prints `Error response from daemon: …`); after
//! it, the stream's last line (`{"errorDetail":{"message":…},"error":…}`), as dockerd.

use std::collections::VecDeque;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::{ApiError, AppState, QueryParams, json_reply};
use crate::actors::graph::registry::{AuthConfig, Progress};
use crate::actors::graph::{CheckLogin, GraphError, PullImage, PushImage};
use crate::error::ErrorKind;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth", web::post().to(auth))
        .route("/images/search", web::get().to(search))
        .route("/images/{name:.*}/push", web::post().to(push));
}

/// The `X-Registry-Auth` header's credentials (anonymous without it).
fn registry_auth(req: &HttpRequest) -> Result<AuthConfig, ApiError> {
    match req.headers().get("X-Registry-Auth") {
        None => Ok(AuthConfig::default()),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| ApiError::bad_request("X-Registry-Auth is not ASCII"))?;
            AuthConfig::from_header(s).map_err(|e| ApiError::bad_request(e.to_string()))
        }
    }
}

type Outcome = Result<Result<(), GraphError>, actix::MailboxError>;

fn line(p: &Progress) -> Bytes {
    let mut v = serde_json::to_vec(p).unwrap_or_default();
    v.extend_from_slice(b"\r\n");
    Bytes::from(v)
}

fn error_line(e: ApiError) -> Bytes {
    let mut v = serde_json::to_vec(&json!({
        "errorDetail": {"message": e.message},
        "error": e.message,
    }))
    .unwrap_or_default();
    v.extend_from_slice(b"\r\n");
    Bytes::from(v)
}

fn outcome(r: Result<Outcome, oneshot::error::RecvError>) -> Result<(), ApiError> {
    match r {
        Ok(Ok(res)) => res.map_err(ApiError::from),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(ApiError::new(
            ErrorKind::System,
            "the pull or push was dropped",
        )),
    }
}

/// The reply of a pull or push whose lines arrive on `lines` and whose end on `end`.
async fn progress_reply(
    mut lines: mpsc::UnboundedReceiver<Progress>,
    mut end: oneshot::Receiver<Outcome>,
) -> Result<HttpResponse, ApiError> {
    let first = tokio::select! {
        biased;
        l = lines.recv() => match l {
            Some(p) => Some(p),
            None => {
                // Every sender is gone: the operation is over.
                outcome((&mut end).await)?;
                None
            }
        },
        r = &mut end => {
            // Done before any line: an error is the status.
            outcome(r)?;
            None
        }
    };
    struct State {
        pending: VecDeque<Bytes>,
        lines: mpsc::UnboundedReceiver<Progress>,
        end: Option<oneshot::Receiver<Outcome>>,
    }
    // No first line: the operation ended first.
    let done_already = first.is_none();
    let mut pending = VecDeque::new();
    if let Some(p) = first {
        pending.push_back(line(&p));
    }
    let mut state = State {
        pending,
        lines,
        end: if done_already { None } else { Some(end) },
    };
    if done_already {
        while let Ok(p) = state.lines.try_recv() {
            state.pending.push_back(line(&p));
        }
    }
    let body = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(b) = s.pending.pop_front() {
                return Some((Ok::<_, actix_web::Error>(b), s));
            }
            let end = s.end.as_mut()?;
            tokio::select! {
                biased;
                l = s.lines.recv() => match l {
                    Some(p) => s.pending.push_back(line(&p)),
                    None => {
                        let r = end.await;
                        s.end = None;
                        if let Err(e) = outcome(r) {
                            s.pending.push_back(error_line(e));
                        }
                    }
                },
                r = &mut *end => {
                    s.end = None;
                    while let Ok(p) = s.lines.try_recv() {
                        s.pending.push_back(line(&p));
                    }
                    if let Err(e) = outcome(r) {
                        s.pending.push_back(error_line(e));
                    }
                }
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .streaming(body))
}

/// `POST /images/create?fromImage=&tag=&platform=` (`docker pull`).
pub async fn pull(
    state: &AppState,
    req: &HttpRequest,
    query: &QueryParams,
    image: &str,
) -> Result<HttpResponse, ApiError> {
    let auth = registry_auth(req)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let (end_tx, end_rx) = oneshot::channel();
    let msg = PullImage {
        image: image.to_owned(),
        tag: query.non_empty("tag").map(str::to_owned),
        platform: query.non_empty("platform").map(str::to_owned),
        auth,
        progress: tx,
    };
    let graph = state.actors.graph.clone();
    actix_web::rt::spawn(async move {
        let _ = end_tx.send(graph.send(msg).await);
    });
    progress_reply(rx, end_rx).await
}

/// `POST /images/{name}/push?tag=` (`docker push`).
async fn push(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let name = req.match_info().query("name").to_owned();
    let auth = registry_auth(&req)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let (end_tx, end_rx) = oneshot::channel();
    let msg = PushImage {
        name,
        tag: query.non_empty("tag").map(str::to_owned),
        auth,
        progress: tx,
    };
    let graph = state.actors.graph.clone();
    actix_web::rt::spawn(async move {
        let _ = end_tx.send(graph.send(msg).await);
    });
    progress_reply(rx, end_rx).await
}

/// `POST /auth` (`docker login`): the credentials checked against the registry.
async fn auth(state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let auth: AuthConfig = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid auth configuration: {e}")))?;
    state.actors.graph.send(CheckLogin { auth }).await??;
    Ok(json_reply(
        StatusCode::OK,
        &json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    ))
}

/// `GET /images/search` (`docker search`): refused with a 400 naming it (berthd answers
/// what it does not do with a 4xx, never a 5xx that clients may retry).
async fn search() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorKind::InvalidParameter,
        "berthd does not search registries (GET /images/search); pull the image by its name",
    ))
}
