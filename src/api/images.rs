//! `/images/...` routes: import, list, inspect, tag, remove.
//!
//! The list and inspect bodies are built by the graph as the typed models, and completed
//! here with the keys dockerd always prints (`model::complete`).

use std::io;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::{Value, json};

use super::{ApiError, AppState, QueryParams, check_platform, json_reply};
use crate::actors::graph::{
    DeleteImage, ImageHistory, ImportImage, InspectImage, ListImages, LoadImages, PruneImages,
    SaveImages, TagImage,
};
use crate::actors::store::ListImageUsers;
use crate::model::api;
use crate::model::complete::{Template, null_if_empty};
use crate::model::filters::{Filters, ImageFilter};

type Query = QueryParams;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/images/create", web::post().to(create))
        .route("/images/json", web::get().to(list))
        .route("/images/get", web::get().to(save))
        .route("/images/load", web::post().to(load))
        .route("/images/prune", web::post().to(prune))
        .route("/images/{name:.*}/get", web::get().to(save_one))
        .route("/images/{name:.*}/json", web::get().to(inspect))
        .route("/images/{name:.*}/history", web::get().to(history))
        .route("/images/{name:.*}/tag", web::post().to(tag))
        .route("/images/{name:.*}", web::delete().to(delete));
}

/// Feeds a request body to the blocking reader at the other end of `tx` until either
/// side ends.
pub(super) async fn feed_body(
    mut payload: web::Payload,
    tx: tokio::sync::mpsc::Sender<io::Result<actix_web::web::Bytes>>,
) {
    while let Some(chunk) = payload.next().await {
        let item = chunk.map_err(|e| io::Error::new(io::ErrorKind::UnexpectedEof, e.to_string()));
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            break;
        }
    }
}

/// `POST /images/prune?filters=` (`docker image prune [-a]`).
async fn prune(state: web::Data<AppState>, query: Query) -> Result<HttpResponse, ApiError> {
    let filters = Filters::parse(query.get("filters"))?;
    let users = state.actors.store.send(ListImageUsers).await?;
    let (records, reclaimed) = state
        .actors
        .graph
        .send(PruneImages { filters, users })
        .await??;
    let deleted = if records.is_empty() {
        Value::Null
    } else {
        serde_json::to_value(&records).unwrap_or(Value::Null)
    };
    crate::events::events().other(
        crate::events::Kind::Image,
        "prune",
        "",
        [("reclaimed", reclaimed.to_string())],
    );
    Ok(json_reply(
        StatusCode::OK,
        &json!({"ImagesDeleted": deleted, "SpaceReclaimed": reclaimed}),
    ))
}

/// `GET /images/get?names=A&names=B` (`docker save A B`): the archive, streamed.
async fn save(state: web::Data<AppState>, query: Query) -> Result<HttpResponse, ApiError> {
    check_platform(query.get("platform"), "GET /images/get")?;
    let names: Vec<String> = query.all("names").map(str::to_owned).collect();
    save_names(&state, names).await
}

/// `GET /images/{name}/get`: one image's archive.
async fn save_one(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    check_platform(query.get("platform"), "GET /images/{name}/get")?;
    let name = req.match_info().query("name").to_owned();
    save_names(&state, vec![name]).await
}

async fn save_names(state: &AppState, names: Vec<String>) -> Result<HttpResponse, ApiError> {
    if names.is_empty() {
        return Err(ApiError::bad_request("no images named"));
    }
    let (out, rx) = crate::util::response_channel(8);
    state.actors.graph.send(SaveImages { names, out }).await??;
    Ok(HttpResponse::Ok()
        .content_type("application/x-tar")
        .streaming(super::streamed(rx)))
}

/// `POST /images/load?quiet=` (`docker load`): the archive in the body; the reply is
/// dockerd's message stream (`{"stream":"Loaded image: busybox:latest\n"}`), with or
/// without `quiet` (berthd sends no progress bars).
async fn load(
    state: web::Data<AppState>,
    query: Query,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_platform(query.get("platform"), "POST /images/load")?;
    let (tx, reader) = crate::util::body_channel(16);
    let load = state.actors.graph.send(LoadImages {
        source: Box::new(reader),
    });
    let feed = feed_body(payload, tx);
    let (res, ()) = futures_util::join!(load, feed);
    let lines = res??;
    let mut body = String::new();
    for l in lines {
        body.push_str(&json!({"stream": format!("{l}\n")}).to_string());
        body.push('\n');
    }
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// `GET /images/{name}/history`: newest first; `Tags` null where none, as dockerd.
async fn history(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let reference = req.match_info().query("name").to_owned();
    let items = state
        .actors
        .graph
        .send(ImageHistory { reference })
        .await??;
    let mut doc = serde_json::to_value(&items).unwrap_or_else(|_| json!([]));
    for item in doc.as_array_mut().into_iter().flatten() {
        if item["Tags"].as_array().is_some_and(Vec::is_empty) {
            item["Tags"] = Value::Null;
        }
    }
    Ok(json_reply(StatusCode::OK, &doc))
}

/// `POST /images/{name}/tag?repo=R&tag=T` (`docker tag`): 201 without a body, as dockerd.
async fn tag(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let reference = req.match_info().query("name").to_owned();
    let Some(repo) = query.non_empty("repo") else {
        return Err(ApiError::bad_request(
            "repository name must have at least one component",
        ));
    };
    state
        .actors
        .graph
        .send(TagImage {
            reference,
            repo: repo.to_owned(),
            tag: query.non_empty("tag").map(str::to_owned),
        })
        .await??;
    Ok(HttpResponse::Created().finish())
}

/// `DELETE /images/{name}?force=&noprune=` (`docker rmi`): the untag and delete records.
/// `noprune` is honoured by having nothing to do: berth's images have no parent images
/// to prune.
async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let reference = req.match_info().query("name").to_owned();
    let users = state.actors.store.send(ListImageUsers).await?;
    let records = state
        .actors
        .graph
        .send(DeleteImage {
            reference,
            force: query.flag("force"),
            users,
        })
        .await??;
    let body = serde_json::to_value(&records).unwrap_or_else(|_| json!([]));
    Ok(json_reply(StatusCode::OK, &body))
}

/// Splits `repo[:tag]` where the repo may hold a registry port (`host:5000/x:1`).
pub fn split_repo_tag(s: &str) -> (String, Option<String>) {
    match s.rfind(':') {
        Some(i) if !s[i + 1..].contains('/') => (s[..i].to_owned(), Some(s[i + 1..].to_owned())),
        _ => (s.to_owned(), None),
    }
}

/// `POST /images/create`: `fromImage` pulls (`docker pull`, [`super::registry::pull`]);
/// `fromSrc=-` imports the request body (`docker import`) with `repo`, `tag`, `message`
/// and every `changes` parameter in order, and its `platform` must be this host's.
async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: Query,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    if let Some(image) = query.non_empty("fromImage") {
        return super::registry::pull(&state, &req, &query, image).await;
    }
    check_platform(query.get("platform"), "POST /images/create")?;
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
    let changes = query.changes();
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
    let feed = feed_body(payload, tx);
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
    Ok(json_reply(StatusCode::OK, &list_doc(&rows)))
}

/// The `GET /images/json` body. dockerd prints an image's missing labels and digests as
/// `null` (nil in Go), which the typed row's map and list cannot say.
pub fn list_doc(rows: &[api::ImageSummary]) -> Value {
    let mut doc = serde_json::to_value(rows).unwrap_or_else(|_| Value::Array(Vec::new()));
    if let Value::Array(rows) = &mut doc {
        for row in rows {
            null_if_empty(row, &["/Labels", "/RepoDigests", "/RepoTags"]);
            Template::ImageSummary.complete(row);
        }
    }
    doc
}

async fn inspect(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let reference = req.match_info().query("name").to_owned();
    let image = state
        .actors
        .graph
        .send(InspectImage { reference })
        .await??;
    Ok(json_reply(StatusCode::OK, &inspect_doc(&image)))
}

/// The `GET /images/{name}/json` body: every key dockerd prints, `GraphDriver.Data`
/// `null` where the driver has nothing to say (vfs), as dockerd's.
pub fn inspect_doc(image: &api::Image) -> Value {
    let mut doc = serde_json::to_value(image).unwrap_or_else(|_| json!({}));
    null_if_empty(&mut doc, &["/GraphDriver/Data"]);
    Template::ImageInspect.complete(&mut doc);
    doc
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::actors::graph::driver::{Driver, DriverKind};
    use crate::actors::graph::store::Image;
    use crate::actors::graph::view::{self, ImageFacts};
    use crate::model::complete::missing_keys;

    use crate::model::complete::dockerd_fixture as fixture;

    /// An image config as berthd's import writes it.
    fn imported(labels: Option<Value>) -> Image {
        let mut config = json!({
            "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
            "AttachStdout": false, "AttachStderr": false, "Tty": false, "OpenStdin": false,
            "StdinOnce": false, "Env": ["A=1"], "Cmd": ["sh"], "Image": "", "Volumes": null,
            "WorkingDir": "", "Entrypoint": null, "OnBuild": null, "Labels": null
        });
        if let Some(l) = labels {
            config["Labels"] = l;
        }
        let doc = json!({
            "architecture": "amd64",
            "comment": "Imported from -",
            "config": config,
            "created": "2026-12-04T01:02:03.123456789Z",
            "history": [{"created": "2026-12-04T01:02:03.123456789Z", "comment": "Imported from -"}],
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ["sha256:aa", "sha256:bb"]},
        });
        Image::parse(&"ab".repeat(32), doc.to_string().as_bytes()).unwrap()
    }

    fn driver(kind: DriverKind) -> Driver {
        Driver {
            kind,
            home: PathBuf::from(format!("/var/lib/berth/{}", kind.name())),
            status: Vec::new(),
        }
    }

    fn facts(image: &Image, tags: Vec<String>) -> ImageFacts<'_> {
        ImageFacts {
            image,
            tags,
            digests: Vec::new(),
            size: 1_982_424,
            cache_ids: vec!["top".into(), "base".into()],
            last_tagged: None,
            parent: None,
        }
    }

    #[test]
    fn inspect_has_every_key_dockerd_prints() {
        let image = imported(None);
        let doc = inspect_doc(&view::inspect(
            &facts(&image, vec!["busybox:latest".into()]),
            &driver(DriverKind::Overlay2),
        ));
        let reference = fixture("image-inspect.json");
        // The driver's data names the dirs berth's image layers have: the upper and lower
        // dirs, with no work or merged dir (nothing mounts an image layer).
        assert_eq!(
            missing_keys(&doc, &reference),
            ["GraphDriver.Data.MergedDir", "GraphDriver.Data.WorkDir"]
        );
        // And nothing but dockerd's keys.
        assert_eq!(missing_keys(&reference, &doc), Vec::<String>::new());
    }

    #[test]
    fn inspect_values_come_from_the_image() {
        let image = imported(None);
        let doc = inspect_doc(&view::inspect(
            &facts(&image, vec!["busybox:latest".into()]),
            &driver(DriverKind::Overlay2),
        ));
        assert_eq!(doc["Id"], format!("sha256:{}", "ab".repeat(32)));
        assert_eq!(doc["RepoTags"], json!(["busybox:latest"]));
        assert_eq!(doc["RepoDigests"], json!([]));
        assert_eq!(doc["Parent"], "");
        assert_eq!(doc["Comment"], "Imported from -");
        assert_eq!(doc["Created"], "2026-12-04T01:02:03.123456789Z");
        assert_eq!(doc["Container"], "");
        assert_eq!(doc["DockerVersion"], "");
        assert_eq!(
            doc["ContainerConfig"]["Cmd"],
            Value::Null,
            "the zero config"
        );
        assert_eq!(doc["ContainerConfig"]["Hostname"], "");
        assert_eq!(doc["Config"]["Cmd"], json!(["sh"]));
        assert_eq!(doc["Config"]["Env"], json!(["A=1"]));
        assert_eq!(doc["Config"]["Labels"], Value::Null);
        assert_eq!(doc["Architecture"], "amd64");
        assert_eq!(
            (doc["Size"].clone(), doc["VirtualSize"].clone()),
            (json!(1_982_424), json!(1_982_424))
        );
        assert_eq!(
            doc["GraphDriver"],
            json!({"Name": "overlay2", "Data": {
                "UpperDir": "/var/lib/berth/overlay2/top/diff",
                "LowerDir": "/var/lib/berth/overlay2/base/diff",
            }})
        );
        assert_eq!(
            doc["RootFS"],
            json!({"Type": "layers", "Layers": ["sha256:aa", "sha256:bb"]})
        );
        assert_eq!(
            doc["Metadata"],
            json!({"LastTagTime": "0001-01-01T00:00:00Z"})
        );
    }

    #[test]
    fn inspect_on_vfs_has_no_driver_data_and_keeps_the_tag_time() {
        let image = imported(None);
        let mut f = facts(&image, Vec::new());
        f.last_tagged = Some("2026-12-04T05:06:07.000000001Z".parse().unwrap());
        let doc = inspect_doc(&view::inspect(&f, &driver(DriverKind::Vfs)));
        assert_eq!(doc["GraphDriver"], json!({"Name": "vfs", "Data": null}));
        assert_eq!(doc["RepoTags"], json!([]));
        assert_eq!(
            doc["Metadata"]["LastTagTime"],
            "2026-12-04T05:06:07.000000001Z"
        );
    }

    #[test]
    fn list_rows_have_every_key_dockerd_prints() {
        let plain = imported(None);
        let labelled = imported(Some(json!({"a": "b"})));
        let rows = [
            view::summary(&facts(&plain, vec!["busybox:latest".into()])),
            view::summary(&facts(&labelled, Vec::new())),
        ];
        let doc = list_doc(&rows);
        let reference = fixture("images.json");
        assert_eq!(missing_keys(&doc, &reference), Vec::<String>::new());
        assert_eq!(missing_keys(&reference[0], &doc[0]), Vec::<String>::new());
        let (tagged, dangling) = (&doc[0], &doc[1]);
        assert_eq!(tagged["RepoTags"], json!(["busybox:latest"]));
        assert_eq!(tagged["RepoDigests"], Value::Null);
        assert_eq!(tagged["Labels"], Value::Null);
        assert_eq!(tagged["ParentId"], "");
        assert_eq!(tagged["Created"], 1_796_346_123);
        assert_eq!(
            (tagged["Containers"].clone(), tagged["SharedSize"].clone()),
            (json!(-1), json!(-1))
        );
        assert_eq!(dangling["RepoTags"], json!(["<none>:<none>"]));
        assert_eq!(dangling["RepoDigests"], json!(["<none>@<none>"]));
        assert_eq!(dangling["Labels"], json!({"a": "b"}));
    }

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
