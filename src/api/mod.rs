//! The Docker Engine API on actix-web.
//!
//! Every route is served with and without the `/v1.NN` prefix. Every reply carries the
//! headers the CLI reads (`Api-Version`, `Ostype`, `Server`, `Docker-Experimental`). A
//! middleware opens a tracing span per request and records the request metrics. The
//! hijacked routes (attach, exec start) never reach actix-web: `server` serves them below
//! actix-http's codec.

pub mod archive;
pub mod commit;
pub mod containers;
pub mod error;
pub mod events;
pub mod exec;
pub mod images;
pub mod live;
pub mod logs;
pub mod networks;
pub mod registry;
pub mod stats;
pub mod system;
pub mod usage;
pub mod volumes;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next, from_fn};
use actix_web::{HttpResponse, web};
use tracing::Instrument;

pub use error::ApiError;

use crate::actors::supervisor::Actors;
use crate::config::DaemonConfig;
use crate::daemon::SystemFacts;
use crate::metrics::metrics;
use crate::model::version::ApiVersion;

/// [`ApiVersion::CURRENT`] as the headers and bodies spell it.
pub const API_VERSION: &str = "1.41";
/// [`ApiVersion::MIN`] as the bodies spell it.
pub const MIN_API_VERSION: &str = "1.12";

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub actors: Actors,
    pub config: Arc<DaemonConfig>,
    pub facts: Arc<SystemFacts>,
    /// The resolved data root.
    pub data_root: PathBuf,
    /// `/info`'s `ID`, kept in the data root ([`crate::daemon::engine_id`]).
    pub engine_id: String,
    /// The binary that every container's monitor runs (`berthd monitor`): the `native`
    /// runtime of `/info`.
    pub monitor_exe: PathBuf,
}

/// Registers every route, once at the root and once under `/v{version}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope(r"/v{version:[0-9]+\.[0-9]+}").configure(routes))
        .configure(routes);
}

fn routes(cfg: &mut web::ServiceConfig) {
    system::routes(cfg);
    containers::routes(cfg);
    archive::routes(cfg);
    live::routes(cfg);
    exec::routes(cfg);
    registry::routes(cfg);
    images::routes(cfg);
    logs::routes(cfg);
    volumes::routes(cfg);
    commit::routes(cfg);
    usage::routes(cfg);
    events::routes(cfg);
    networks::routes(cfg);
}

/// The headers dockerd puts on every reply.
pub fn default_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Api-Version", API_VERSION))
        .add(("Ostype", "linux"))
        .add(("Docker-Experimental", "false"))
        .add((
            "Server",
            concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)"),
        ))
}

/// Parses `1.41` (see [`ApiVersion::parse`]).
pub fn parse_version(v: &str) -> Option<ApiVersion> {
    ApiVersion::parse(v)
}

/// Checks the `/v1.NN` prefix of `path`, as dockerd does: a version above ours or below
/// the minimum is refused with 400, a prefix that is no version gets 404.
pub fn version_error(path: &str) -> Option<ApiError> {
    let rest = path.strip_prefix("/v")?;
    if !rest.starts_with(|c: char| c.is_ascii_digit()) {
        // `/version`, not a version prefix.
        return None;
    }
    let ver = rest.split('/').next()?;
    let Some(v) = parse_version(ver) else {
        return Some(ApiError::new(
            crate::error::ErrorKind::NotFound,
            format!("page not found: {path}"),
        ));
    };
    if v > ApiVersion::CURRENT {
        return Some(ApiError::bad_request(format!(
            "client version {ver} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if v < ApiVersion::MIN {
        return Some(ApiError::bad_request(format!(
            "client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    None
}

/// [`version_error`] as the reply dockerd gives (its "too old" is plain text).
pub fn check_version(path: &str) -> Option<HttpResponse> {
    let err = version_error(path)?;
    if err.message.contains("is too old") {
        return Some(
            HttpResponse::BadRequest()
                .content_type("text/plain; charset=utf-8")
                .body(format!("{}\n", err.message)),
        );
    }
    let status = actix_web::ResponseError::status_code(&err);
    Some(HttpResponse::build(status).json(serde_json::json!({"message": err.message})))
}

/// The route label for metrics: the matched pattern without the version scope.
fn route_label(pattern: Option<String>) -> String {
    match pattern {
        Some(p) => p
            .strip_prefix(r"/v{version:[0-9]+\.[0-9]+}")
            .map(str::to_owned)
            .unwrap_or(p),
        None => "unmatched".to_owned(),
    }
}

/// Span per request, the version check, and the request metrics.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::EitherBody<impl MessageBody>>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let span = tracing::debug_span!(
        "request",
        method = %method,
        path = %req.path(),
        request_id = %format!("{:08x}", rand::random::<u32>()),
    );
    if let Some(resp) = check_version(req.path()) {
        let (http_req, _) = req.into_parts();
        let res = ServiceResponse::new(http_req, resp).map_into_right_body();
        record(&method, "version_check".to_owned(), res.status(), started);
        return Ok(res);
    }
    let res = next.call(req).instrument(span.clone()).await?;
    let route = route_label(res.request().match_pattern());
    let _enter = span.enter();
    tracing::debug!(status = res.status().as_u16(), route = %route, "request served");
    record(&method, route, res.status(), started);
    Ok(res.map_into_left_body())
}

fn record(method: &actix_web::http::Method, route: String, status: StatusCode, started: Instant) {
    crate::sys::env::note_heap_activity();
    let m = metrics();
    m.api_requests
        .with_label_values(&[method.as_str(), &route, status.as_str()])
        .inc();
    m.api_latency
        .with_label_values(&[method.as_str(), &route])
        .observe(started.elapsed().as_secs_f64());
}

/// The JSON error body for routes that do not exist, as dockerd answers them.
pub async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    HttpResponse::NotFound()
        .json(serde_json::json!({"message": format!("page not found: {}", req.path())}))
}

/// Builds the whole App for one worker.
pub fn app(
    state: AppState,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    actix_web::App::new()
        .app_data(web::Data::new(state))
        .app_data(
            web::JsonConfig::default()
                .limit(4 << 20)
                .error_handler(|err, _| {
                    ApiError::bad_request(format!("invalid JSON body: {err}")).into()
                }),
        )
        .app_data(
            web::QueryConfig::default().error_handler(|err, _| {
                ApiError::bad_request(format!("invalid query: {err}")).into()
            }),
        )
        .wrap(from_fn(observe))
        .wrap(default_headers())
        .configure(configure)
        .default_service(web::to(not_found))
}

/// The query string as dockerd's `r.Form` holds it: every value of a repeated parameter,
/// in order. [`QueryParams::get`] is Go's `Form.Get` (the first value);
/// [`QueryParams::all`] is `Form[key]` (import's repeated `changes`). A query that is
/// not `application/x-www-form-urlencoded` is a 400.
#[derive(Debug, Clone, Default)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn parse(query: &str) -> Result<QueryParams, ApiError> {
        web::Query::<Vec<(String, String)>>::from_query(query)
            .map(|q| QueryParams(q.into_inner()))
            .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `key` when it is not empty.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every `changes` value read as Dockerfile lines, as dockerd reads them (import and
    /// commit): the values joined by newlines, blank lines dropped.
    pub fn changes(&self) -> Vec<String> {
        self.all("changes")
            .flat_map(str::lines)
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// dockerd's `httputils.BoolValue`: absent, empty, `0`, `no`, `false` and `none`
    /// (any case, spaces trimmed) are false; anything else is true.
    pub fn flag(&self, key: &str) -> bool {
        let v = self.get(key).unwrap_or("").trim().to_ascii_lowercase();
        !matches!(v.as_str(), "" | "0" | "no" | "false" | "none")
    }

    /// Refuses `key` when it is set to true: a parameter berthd has nothing behind yet.
    pub fn refuse_flag(&self, key: &str, route: &str) -> Result<(), ApiError> {
        if self.flag(key) {
            return Err(unsupported_param(key, route));
        }
        Ok(())
    }

    /// Go's `strconv.Atoi` of a non-empty value; `None` when absent or empty.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.non_empty(key) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| atoi_error(v)),
        }
    }
}

impl actix_web::FromRequest for QueryParams {
    type Error = ApiError;
    type Future = std::future::Ready<Result<QueryParams, ApiError>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(QueryParams::parse(req.query_string()))
    }
}

/// A response body of the chunks a blocking writer sends (`util::response_channel`).
pub fn streamed(
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, actix_web::Error>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, actix_web::Error>(chunk), rx))
    })
}

/// The 400 for a query parameter that berthd does not honour yet.
pub fn unsupported_param(key: &str, route: &str) -> ApiError {
    ApiError::bad_request(format!(
        "berthd does not support the {key} query parameter of {route} yet"
    ))
}

/// dockerd's answer to a number that is not one (Go's `strconv.Atoi` error).
pub fn atoi_error(value: &str) -> ApiError {
    ApiError::bad_request(format!("strconv.Atoi: parsing {value:?}: invalid syntax"))
}

/// Checks a `platform` query parameter (`linux`, `linux/amd64`, `amd64`, …) against the
/// one platform berthd runs: this host's. Empty is no request.
pub fn check_platform(value: Option<&str>, route: &str) -> Result<(), ApiError> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    let host = crate::actors::graph::store::host_arch();
    let lower = value.to_ascii_lowercase();
    let mut parts = lower.split('/');
    let first = parts.next().unwrap_or("");
    let (os, arch) = if first == "linux" {
        (first, parts.next())
    } else {
        ("linux", Some(first))
    };
    let arch = arch.map(|a| match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    });
    if os == "linux" && arch.is_none_or(|a| a == host) {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "berthd does not support the platform query parameter of {route} yet: it runs linux/{host} only, not {value}"
    )))
}

/// Go's `strconv.ParseBool`, which dockerd uses for query flags (docker-py sends
/// `True`/`False`). Empty means `default`.
pub fn parse_bool(v: Option<&str>, default: bool) -> Result<bool, ApiError> {
    match v {
        None | Some("") => Ok(default),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid boolean value {other:?}"
        ))),
    }
}

/// A JSON reply with `Content-Type: application/json`.
pub fn json_reply(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .body(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(check_version("/_ping").is_none());
        assert!(check_version("/v1.41/info").is_none());
        assert!(check_version("/v1.24/info").is_none());
        assert_eq!(
            check_version("/v1.45/info").unwrap().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            check_version("/v1.11/info").unwrap().status(),
            StatusCode::BAD_REQUEST
        );
        assert!(check_version("/version").is_none());
        assert_eq!(
            check_version("/v1.x/info").unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn huge_versions_are_too_new_and_odd_ones_not_found() {
        for path in [
            "/v1.99999999999999999999/info",
            "/v99999999999999999999.1/info",
        ] {
            let e = version_error(path).unwrap();
            assert_eq!(e.kind, crate::error::ErrorKind::InvalidParameter, "{path}");
            assert!(e.message.contains("is too new"), "{}", e.message);
        }
        for path in ["/v1.+41/info", "/v1./info", "/v1.4x/info"] {
            let e = version_error(path).unwrap();
            assert_eq!(e.kind, crate::error::ErrorKind::NotFound, "{path}");
        }
        assert_eq!(parse_version("1.41"), Some(ApiVersion::CURRENT));
        assert_eq!(parse_version("1.-1"), None);
    }

    proptest::proptest! {
        #[test]
        fn version_checks_never_panic(path in "\\PC{0,40}", raw in "/v[0-9.]{0,30}(/[a-z]{0,5})?") {
            for p in [&path, &raw] {
                let refused = check_version(p);
                if let Some(r) = &refused {
                    proptest::prop_assert!(r.status().is_client_error());
                }
                proptest::prop_assert_eq!(refused.is_some(), version_error(p).is_some());
            }
        }

        #[test]
        fn bools_are_go_bools_or_refused(v in "\\PC{0,8}") {
            match parse_bool(Some(&v), false) {
                Ok(b) => proptest::prop_assert!(
                    v.is_empty() || ["1", "t", "T", "true", "TRUE", "True"].contains(&v.as_str()) == b
                ),
                Err(e) => proptest::prop_assert_eq!(e.kind, crate::error::ErrorKind::InvalidParameter),
            }
        }

        #[test]
        fn any_query_string_parses_or_is_refused(q in "([a-z%+=&;#]|%[0-9a-fA-F]{2}|\\PC){0,40}") {
            // What actix's `web::Query` does with a query string: no panic either way.
            let _ = web::Query::<std::collections::HashMap<String, String>>::from_query(&q);
        }
    }

    #[test]
    fn query_params_keep_every_value() {
        let q = QueryParams::parse("changes=ENV+A%3D1&changes=CMD+%5B%22%2Fx%22%5D&t=&all=yes")
            .unwrap();
        assert_eq!(
            q.all("changes").collect::<Vec<_>>(),
            vec!["ENV A=1", "CMD [\"/x\"]"]
        );
        assert_eq!(q.get("changes"), Some("ENV A=1"));
        assert_eq!(q.get("t"), Some(""));
        assert_eq!(q.non_empty("t"), None);
        assert_eq!(q.int("t").unwrap(), None);
        assert!(q.flag("all"));
        assert!(!q.flag("missing"));
        for off in ["0", "no", "FALSE", " none ", ""] {
            let q = QueryParams::parse(&format!("v={off}")).unwrap();
            assert!(!q.flag("v"), "{off}");
        }
        let q = QueryParams::parse("t=x&size=1").unwrap();
        assert_eq!(
            q.int("t").unwrap_err().message,
            "strconv.Atoi: parsing \"x\": invalid syntax"
        );
        let e = q.refuse_flag("size", "GET /containers/json").unwrap_err();
        assert_eq!(
            e.message,
            "berthd does not support the size query parameter of GET /containers/json yet"
        );
        assert_eq!(e.kind, crate::error::ErrorKind::InvalidParameter);
    }

    #[test]
    fn platforms_are_this_hosts() {
        let host = crate::actors::graph::store::host_arch();
        for ok in [
            None,
            Some(""),
            Some("linux"),
            Some(&*format!("linux/{host}")),
            Some(host),
        ] {
            assert!(check_platform(ok, "X").is_ok(), "{ok:?}");
        }
        for bad in ["windows", "linux/s390x", "windows/amd64"] {
            let e = check_platform(Some(bad), "POST /images/create").unwrap_err();
            assert!(
                e.message.contains("platform query parameter"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn version_strings_are_the_model_versions() {
        assert_eq!(parse_version(API_VERSION), Some(ApiVersion::CURRENT));
        assert_eq!(parse_version(MIN_API_VERSION), Some(ApiVersion::MIN));
    }

    #[test]
    fn go_bools() {
        assert!(parse_bool(Some("True"), false).unwrap());
        assert!(!parse_bool(Some("0"), true).unwrap());
        assert!(parse_bool(None, true).unwrap());
        assert!(parse_bool(Some("yes"), false).is_err());
    }

    #[test]
    fn route_labels_drop_the_version_scope() {
        assert_eq!(
            route_label(Some(
                r"/v{version:[0-9]+\.[0-9]+}/containers/{id}/json".into()
            )),
            "/containers/{id}/json"
        );
        assert_eq!(route_label(None), "unmatched");
    }
}
