//! `docker cp` and `docker export`: `HEAD`, `GET` and `PUT /containers/{id}/archive`, and
//! `GET /containers/{id}/export`, as dockerd 20.10 answers them
//! (`api/server/router/container/copy.go`, `daemon/archive.go`, `daemon/export.go`).
//!
//! The store says how to reach the container's files (`GetContainerFs`); the file work
//! runs on a thread of its own (`containerfs::spawn_in`), never on a worker: its first
//! answer (the stat, or the error that ends the request) comes back on a oneshot, then a
//! tar streams out through a [`ChannelWriter`](crate::util::ChannelWriter), or the
//! request body streams in through a [`ChannelReader`](crate::util::ChannelReader).

use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, HttpResponse, web};

use super::{ApiError, AppState, QueryParams};
use crate::actors::store::GetContainerFs;
use crate::containerfs::tar_out::TarOut;
use crate::containerfs::{self, ContainerFsError, PathStat, View, paths};
use crate::error::ErrorKind;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/containers/{id}/archive", web::head().to(stat))
        .route("/containers/{id}/archive", web::get().to(get))
        .route("/containers/{id}/archive", web::put().to(put))
        .route("/containers/{id}/export", web::get().to(export));
}

/// dockerd's `ArchiveFormValues`: the container as the client named it, and `path`.
fn archive_values(req: &HttpRequest, query: &QueryParams) -> Result<(String, String), ApiError> {
    let name = req.match_info().query("id").to_owned();
    let Some(path) = query.non_empty("path") else {
        return Err(ApiError::bad_request("bad parameter: path cannot be empty"));
    };
    Ok((name, path.to_owned()))
}

/// `X-Docker-Container-Path-Stat`: the stat's JSON in standard base64.
fn stat_header(stat: &PathStat) -> Result<(&'static str, HeaderValue), ApiError> {
    let json =
        serde_json::to_vec(stat).map_err(|e| ApiError::new(ErrorKind::System, e.to_string()))?;
    let v = base64(&json);
    let v =
        HeaderValue::from_str(&v).map_err(|e| ApiError::new(ErrorKind::System, e.to_string()))?;
    Ok(("X-Docker-Container-Path-Stat", v))
}

/// Standard base64 with padding (Go's `base64.StdEncoding`).
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What the container store says of container `id`'s files (`write`: for a PUT).
async fn container_fs(
    state: &AppState,
    id: String,
    write: bool,
) -> Result<containerfs::ContainerFs, ApiError> {
    let fs = state
        .actors
        .store
        .send(GetContainerFs { id, write })
        .await??;
    if fs.pid == 0 {
        // A set-up ahead the store just let go of must be gone before the layer is
        // mounted for the copy.
        state
            .actors
            .exec
            .send(crate::actors::exec::AwaitReleased { id: fs.id.clone() })
            .await?;
    }
    Ok(fs)
}

fn ended_early(_: tokio::sync::oneshot::error::RecvError) -> ApiError {
    ApiError::new(
        ErrorKind::System,
        "the copy's thread ended without an answer",
    )
}

/// `HEAD /containers/{id}/archive?path=` (`docker cp` checks its destination with it).
async fn stat(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let (name, path) = archive_values(&req, &query)?;
    let fs = container_fs(&state, name.clone(), false).await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    containerfs::spawn_in(fs, View::Container, move |root| {
        let res = root
            .and_then(|root| paths::stat_path(&root, &path, &name))
            .map(|s| s.stat);
        let _ = tx.send(res);
    })?;
    let stat = rx.await.map_err(ended_early)??;
    Ok(HttpResponse::Ok()
        .insert_header(stat_header(&stat)?)
        .finish())
}

/// `GET /containers/{id}/archive?path=`: the stat header and a tar of the path.
async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    let (name, path) = archive_values(&req, &query)?;
    let fs = container_fs(&state, name.clone(), false).await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (out, body) = crate::util::response_channel(8);
    containerfs::spawn_in(fs, View::Container, move |root| {
        let source = match root.and_then(|root| paths::stat_path(&root, &path, &name)) {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        if tx.send(Ok(source.stat.clone())).is_err() {
            return;
        }
        let mut t = TarOut::new(out);
        if let Err(e) = t.source(&source).and_then(|()| t.finish().map(drop)) {
            tracing::debug!(error = %e, path = %path, "archive ended early");
        }
    })?;
    let stat = rx.await.map_err(ended_early)??;
    Ok(HttpResponse::Ok()
        .insert_header(stat_header(&stat)?)
        .content_type("application/x-tar")
        .streaming(super::streamed(body)))
}

/// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`: the body, a
/// tar stream, unpacked into the directory `path`.
async fn put(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: QueryParams,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (name, path) = archive_values(&req, &query)?;
    let no_overwrite_dir_non_dir = query.flag("noOverwriteDirNonDir");
    let copy_uid_gid = query.flag("copyUIDGID");
    let fs = container_fs(&state, name.clone(), true).await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (feed, reader) = crate::util::body_channel(16);
    containerfs::spawn_in(fs.clone(), View::Container, move |root| {
        let res = root.and_then(|root| {
            containerfs::extract_to(
                &root,
                &fs,
                &path,
                &name,
                containerfs::ExtractOptions {
                    copy_uid_gid,
                    no_overwrite_dir_non_dir,
                },
                reader,
            )
        });
        let _ = tx.send(res);
    })?;
    let (res, ()) = futures_util::join!(rx, super::images::feed_body(payload, feed));
    res.map_err(ended_early)??;
    Ok(HttpResponse::Ok().finish())
}

/// `GET /containers/{id}/export` (`docker export`): a tar of the container's layers,
/// what is mounted on them left out.
async fn export(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let id = req.match_info().query("id").to_owned();
    let fs = container_fs(&state, id, false).await?;
    let (tx, rx) = tokio::sync::oneshot::channel::<Result<(), ContainerFsError>>();
    let (out, body) = crate::util::response_channel(8);
    containerfs::spawn_in(fs, View::Layers, move |root| {
        let root = match root {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        if tx.send(Ok(())).is_err() {
            return;
        }
        let mut t = TarOut::new(out);
        if let Err(e) = t.export(&root).and_then(|()| t.finish().map(drop)) {
            tracing::debug!(error = %e, "export ended early");
        }
    })?;
    rx.await.map_err(ended_early)??;
    Ok(HttpResponse::Ok()
        .content_type("application/x-tar")
        .streaming(super::streamed(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_as_go() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(
            base64(br#"{"name":"newfile","size":5}"#),
            "eyJuYW1lIjoibmV3ZmlsZSIsInNpemUiOjV9"
        );
    }
}
