//! `/networks`: so far only `POST /networks/prune`, which `docker system prune` calls.
//! berthd's networks are the predefined `bridge`, `host` and `none`, which dockerd never
//! prunes, so a prune deletes nothing (user-defined networks are issue 15).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::{ApiError, QueryParams, json_reply};
use crate::actors::graph::store::parse_until;
use crate::model::filters::Filters;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/networks/prune", web::post().to(prune));
}

/// dockerd's keys (`until`, `label`, `label!`) are checked as dockerd checks them, then
/// nothing matches: no network berthd has can be pruned.
async fn prune(query: QueryParams) -> Result<HttpResponse, ApiError> {
    let filters = Filters::parse(query.get("filters"))?;
    filters.validate(&["until", "label", "label!"])?;
    let now = chrono::Utc::now();
    for v in filters.get("until") {
        parse_until(v, now)?;
    }
    crate::events::events().other(
        crate::events::Kind::Network,
        "prune",
        "",
        [("reclaimed", "0".to_owned())],
    );
    Ok(json_reply(
        StatusCode::OK,
        &json!({"NetworksDeleted": null}),
    ))
}
