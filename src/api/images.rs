//! `/images/...` routes: import, list, inspect.

use std::io;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::{ApiError, AppState, QueryParams, check_platform, json_reply};
use crate::actors::graph::{ImportImage, ListImages, ResolveImage};
use crate::error::ErrorKind;
use crate::model::filters::{Filters, ImageFilter};

type Query = QueryParams;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/images/create", web::post().to(create))
        .route("/images/json", web::get().to(list))
        .route("/images/{name:.*}/json", web::get().to(inspect));
}

/// Splits `repo[:tag]` where the repo may hold a registry port (`host:5000/x:1`).
pub fn split_repo_tag(s: &str) -> (String, Option<String>) {
    match s.rfind(':') {
        Some(i) if !s[i + 1..].contains('/') => (s[..i].to_owned(), Some(s[i + 1..].to_owned())),
        _ => (s.to_owned(), None),
    }
}

/// `POST /images/create`: `fromSrc=-` imports the request body (`docker import`) with
/// `repo`, `tag`, `message` and every `changes` parameter in order; `fromImage` would
/// pull, and no registry is reachable from berthd. `platform` must be this host's.
async fn create(
    state: web::Data<AppState>,
    query: Query,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_platform(query.get("platform"), "POST /images/create")?;
    if let Some(image) = query.non_empty("fromImage") {
        let tag = query.non_empty("tag").unwrap_or("latest");
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!(
                "pull access denied for {image}:{tag}: berthd does not pull from registries; bring the image in with docker load or docker import"
            ),
        ));
    }
    match query.get("fromSrc") {
        Some("-") => {}
        Some(other) if !other.is_empty() => {
            return Err(ApiError::bad_request(format!(
                "berthd does not support the fromSrc query parameter of POST /images/create with a URL yet ({other}): send the tarball in the request body (fromSrc=-)"
            )));
        }
        _ => return Err(ApiError::bad_request("fromSrc or fromImage is required")),
    }
    let (repo, mut tag) = match query.non_empty("repo") {
        Some(r) => {
            let (repo, tag) = split_repo_tag(r);
            (Some(repo).filter(|r| !r.is_empty()), tag)
        }
        None => (None, None),
    };
    if let Some(t) = query.non_empty("tag") {
        tag = Some(t.to_owned());
    }
    // dockerd joins every `changes` value with newlines and reads them as a Dockerfile.
    let changes: Vec<String> = query
        .all("changes")
        .flat_map(str::lines)
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    let (tx, reader) = crate::util::body_channel(16);
    let graph = state.actors.graph.clone();
    let import = graph.send(ImportImage {
        source: Box::new(reader),
        repo,
        tag,
        message: query.get("message").unwrap_or_default().to_owned(),
        changes,
    });
    // Feed the body to the importer while it runs.
    let feed = async move {
        while let Some(chunk) = payload.next().await {
            let item =
                chunk.map_err(|e| io::Error::new(io::ErrorKind::UnexpectedEof, e.to_string()));
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    };
    let (res, ()) = futures_util::join!(import, feed);
    let id = res??;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(format!("{}\n", json!({"status": id}))))
}

/// `GET /images/json`: `filters` (dockerd's keys), `all` (berth's images have no
/// intermediate parents, so it lists the same), `digests` (dockerd 20.10 always lists
/// digests; berthd keeps none).
async fn list(state: web::Data<AppState>, query: Query) -> Result<HttpResponse, ApiError> {
    let filter = ImageFilter::compile(Filters::parse(query.get("filters"))?)?;
    let rows = state
        .actors
        .graph
        .send(ListImages {
            filter,
            all: query.flag("all"),
        })
        .await??;
    let v = serde_json::to_value(rows).unwrap_or(Value::Array(Vec::new()));
    Ok(json_reply(StatusCode::OK, &v))
}

async fn inspect(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let reference = req.match_info().query("name").to_owned();
    let image = state
        .actors
        .graph
        .send(ResolveImage { reference })
        .await??;
    let raw = &image.raw_config;
    let doc = json!({
        "Id": image.id,
        "RepoTags": image.repo_tags,
        "RepoDigests": [],
        "Parent": "",
        "Comment": raw.get("history").and_then(|h| h.get(0)).and_then(|h| h.get("comment")).cloned().unwrap_or(json!("")),
        "Created": image.created,
        "Container": "",
        "ContainerConfig": raw.get("container_config").cloned().unwrap_or(Value::Null),
        "DockerVersion": raw.get("docker_version").cloned().unwrap_or(json!("")),
        "Author": raw.get("author").cloned().unwrap_or(json!("")),
        "Config": raw.get("config").cloned().unwrap_or(Value::Null),
        "Architecture": raw.get("architecture").cloned().unwrap_or(json!("")),
        "Os": raw.get("os").cloned().unwrap_or(json!("linux")),
        "Size": image.size,
        "VirtualSize": image.size,
        "GraphDriver": {"Data": null, "Name": ""},
        "RootFS": raw.get("rootfs").cloned().unwrap_or(Value::Null),
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    });
    Ok(json_reply(StatusCode::OK, &doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_tags() {
        assert_eq!(
            split_repo_tag("imptest:1"),
            ("imptest".into(), Some("1".into()))
        );
        assert_eq!(split_repo_tag("busybox"), ("busybox".into(), None));
        assert_eq!(split_repo_tag("host:5000/x"), ("host:5000/x".into(), None));
        assert_eq!(
            split_repo_tag("host:5000/x:2"),
            ("host:5000/x".into(), Some("2".into()))
        );
    }
}
