//! `/networks`: the predefined networks as dockerd shows them (`docker network ls`,
//! `docker network inspect`), and the prune that `docker system prune` calls.
//!
//! berthd's networks are the predefined `bridge` (absent under `-b none`), `host` and
//! `none`. User-defined networks (create, connect, disconnect) are not done yet (issue
//! 15): those routes answer 501 naming what is missing, never a silent success. The
//! bridge's facts come from the NetworkActor (`GetNetworkInfo`), the containers on each
//! network from the store (`ListNetworkUsers`).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::{ApiError, AppState, QueryParams, json_reply};
use crate::actors::graph::store::parse_until;
use crate::actors::network::{GetNetworkInfo, NetworkInfo};
use crate::actors::store::{ListNetworkUsers, NetworkUser};
use crate::error::ErrorKind;
use crate::model::api::{Ipam, Network, NetworkContainer};
use crate::model::filters::{Filters, Patterns};

fn to_json(v: &impl serde::Serialize) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::new(ErrorKind::System, e.to_string()))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/networks", web::get().to(list))
        .route("/networks/create", web::post().to(not_yet))
        .route("/networks/prune", web::post().to(prune))
        .route("/networks/{id}", web::get().to(inspect))
        .route("/networks/{id}", web::delete().to(remove))
        .route("/networks/{id}/connect", web::post().to(not_yet))
        .route("/networks/{id}/disconnect", web::post().to(not_yet));
}

/// The keys `GET /networks` takes (dockerd's `acceptedNetworkFilters`).
const LIST_FILTERS: &[&str] = &["dangling", "driver", "id", "label", "name", "scope", "type"];

/// A predefined network's stable id (the bridge's is set below from the info).
fn fixed_id(name: &str) -> String {
    crate::actors::network::predefined_network_id(name, &NetworkInfo::default())
}

/// The predefined networks, in dockerd's order of `docker network ls` (by name); `icc`
/// and `host_ip` are the daemon's `--icc` and `--ip`.
fn predefined(info: &NetworkInfo, icc: bool, host_ip: std::net::Ipv4Addr) -> Vec<Network> {
    let created = info.created;
    let base = |name: &str, driver: &str| Network {
        name: Some(name.to_owned()),
        id: Some(fixed_id(name)),
        created,
        scope: Some("local".to_owned()),
        driver: Some(driver.to_owned()),
        enable_ipv6: Some(false),
        ipam: Some(Ipam {
            driver: Some("default".to_owned()),
            config: Some(Vec::new()),
            options: None,
        }),
        internal: Some(false),
        attachable: Some(false),
        ingress: Some(false),
        containers: Some(HashMap::new()),
        options: Some(HashMap::new()),
        labels: Some(HashMap::new()),
    };
    let mut out = Vec::new();
    if info.enabled {
        let mut bridge = base("bridge", "bridge");
        bridge.id = Some(info.network_id.clone());
        let mut ipam = HashMap::from([("Subnet".to_owned(), subnet_of(&info.subnet))]);
        if let Some(gw) = info.gateway {
            ipam.insert("Gateway".to_owned(), gw.to_string());
        }
        bridge.ipam = Some(Ipam {
            driver: Some("default".to_owned()),
            config: Some(vec![ipam]),
            options: None,
        });
        bridge.options = Some(HashMap::from(
            [
                ("com.docker.network.bridge.default_bridge", "true"),
                ("com.docker.network.bridge.enable_icc", bool_text(icc)),
                ("com.docker.network.bridge.enable_ip_masquerade", "true"),
                (
                    "com.docker.network.bridge.host_binding_ipv4",
                    &host_ip.to_string(),
                ),
                ("com.docker.network.bridge.name", info.bridge_name.as_str()),
                ("com.docker.network.driver.mtu", &info.mtu.to_string()),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        ));
        out.push(bridge);
    }
    out.push(base("host", "host"));
    out.push(base("none", "null"));
    out
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// `172.28.0.1/16` (the gateway with its prefix) as the network `172.28.0.0/16`.
fn subnet_of(cidr: &str) -> String {
    crate::actors::network::ipam::Cidr::parse(cidr).map_or_else(
        || cidr.to_owned(),
        |c| format!("{}/{}", c.network(), c.prefix),
    )
}

async fn networks(state: &AppState) -> Result<Vec<Network>, ApiError> {
    let info = state.actors.network.send(GetNetworkInfo).await?;
    let host_ip = state
        .config
        .default_bind_ip
        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
    Ok(predefined(&info, state.config.icc, host_ip))
}

/// `GET /networks`: dockerd's filters; a predefined network is `builtin`, never dangling.
async fn list(state: web::Data<AppState>, query: QueryParams) -> Result<HttpResponse, ApiError> {
    let filters = Filters::parse(query.get("filters"))?;
    filters.validate(LIST_FILTERS)?;
    for t in filters.get("type") {
        if t != "custom" && t != "builtin" {
            return Err(ApiError::bad_request(format!(
                "invalid filter: 'type'='{t}'"
            )));
        }
    }
    let mut dangling = None;
    for d in filters.get("dangling") {
        dangling = Some(match d {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "invalid filter 'dangling={d}'"
                )));
            }
        });
    }
    let names = Patterns::of(&filters, "name");
    let ids = Patterns::of(&filters, "id");
    let kept: Vec<Network> = networks(&state)
        .await?
        .into_iter()
        .filter(|n| {
            names
                .as_ref()
                .is_none_or(|p| p.matches(n.name.as_deref().unwrap_or("")))
        })
        .filter(|n| {
            ids.as_ref()
                .is_none_or(|p| p.matches(n.id.as_deref().unwrap_or("")))
        })
        .filter(|n| filters.exact_match("driver", n.driver.as_deref().unwrap_or("")))
        .filter(|_| filters.exact_match("scope", "local"))
        .filter(|_| !filters.contains("type") || filters.get("type").any(|t| t == "builtin"))
        // Labels: the predefined networks have none.
        .filter(|_| filters.match_kv_list("label", &[]))
        // Dangling: a network no container uses, other than a predefined one.
        .filter(|_| dangling != Some(true))
        .collect();
    Ok(json_reply(StatusCode::OK, &to_json(&kept)?))
}

/// A network by full name, full id, or id prefix (dockerd's `FindNetwork` order).
fn find(nets: Vec<Network>, key: &str) -> Result<Network, ApiError> {
    let mut nets = nets;
    let exact = nets
        .iter()
        .position(|n| n.name.as_deref() == Some(key) || n.id.as_deref() == Some(key));
    if let Some(i) = exact {
        return Ok(nets.swap_remove(i));
    }
    let by_prefix: Vec<usize> = (0..nets.len())
        .filter(|&i| !key.is_empty() && nets[i].id.as_deref().is_some_and(|id| id.starts_with(key)))
        .collect();
    match by_prefix.as_slice() {
        [i] => Ok(nets.swap_remove(*i)),
        [] => Err(ApiError::new(
            ErrorKind::NotFound,
            format!("network {key} not found"),
        )),
        _ => Err(ApiError::bad_request(format!(
            "network {key} is ambiguous ({} matches found based on ID prefix)",
            by_prefix.len()
        ))),
    }
}

/// `GET /networks/{id}`: with the running containers on it, as dockerd shows them.
async fn inspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: QueryParams,
) -> Result<HttpResponse, ApiError> {
    if let Some(scope) = query.non_empty("scope") {
        if !matches!(scope, "local" | "swarm" | "global") {
            return Err(ApiError::bad_request(format!("invalid scope: {scope}")));
        }
    }
    let key = req.match_info().query("id").to_owned();
    let mut net = find(networks(&state).await?, &key)?;
    if query.non_empty("scope").is_some_and(|s| s != "local") {
        return Err(ApiError::new(
            ErrorKind::NotFound,
            format!("network {key} not found"),
        ));
    }
    let users = state.actors.store.send(ListNetworkUsers).await?;
    let name = net.name.clone().unwrap_or_default();
    net.containers = Some(
        users
            .into_iter()
            .filter(|u| u.network == name)
            .map(|u: NetworkUser| {
                let ep = u.endpoint.as_ref();
                (
                    u.id,
                    NetworkContainer {
                        name: Some(u.name),
                        endpoint_id: Some(ep.map(|e| e.endpoint_id.clone()).unwrap_or_default()),
                        mac_address: Some(ep.map(|e| e.mac.clone()).unwrap_or_default()),
                        ipv4_address: Some(
                            ep.map(|e| format!("{}/{}", e.ip, e.prefix))
                                .unwrap_or_default(),
                        ),
                        ipv6_address: Some(String::new()),
                    },
                )
            })
            .collect(),
    );
    Ok(json_reply(StatusCode::OK, &to_json(&net)?))
}

/// `DELETE /networks/{id}`: a predefined network cannot be removed (dockerd's 403).
async fn remove(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let key = req.match_info().query("id").to_owned();
    let net = find(networks(&state).await?, &key)?;
    Err(ApiError::new(
        ErrorKind::Forbidden,
        format!(
            "{} is a pre-defined network and cannot be removed",
            net.name.unwrap_or_default()
        ),
    ))
}

/// `POST /networks/create`, `/connect`, `/disconnect`: not done yet, said so.
/// The body is read first: a reply before it would break the client's write.
async fn not_yet(_body: web::Bytes) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorKind::NotImplemented,
        "berthd does not support user-defined networks yet (docker network create, connect and disconnect); its networks are bridge, host and none",
    ))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> NetworkInfo {
        NetworkInfo {
            enabled: true,
            bridge_name: "berth0".into(),
            subnet: "172.28.0.1/16".into(),
            gateway: Some("172.28.0.1".parse().unwrap()),
            mtu: 1400,
            network_id: "ab".repeat(32),
            ..NetworkInfo::default()
        }
    }

    #[test]
    fn the_predefined_networks_as_dockerd_lists_them() {
        let nets = predefined(&info(), true, std::net::Ipv4Addr::UNSPECIFIED);
        let names: Vec<_> = nets.iter().map(|n| n.name.clone().unwrap()).collect();
        assert_eq!(names, ["bridge", "host", "none"]);
        assert_eq!(nets[2].driver.as_deref(), Some("null"));
        let v = serde_json::to_value(&nets[0]).unwrap();
        assert_eq!(v["IPAM"]["Config"][0]["Subnet"], "172.28.0.0/16");
        assert_eq!(v["IPAM"]["Config"][0]["Gateway"], "172.28.0.1");
        assert_eq!(v["Options"]["com.docker.network.driver.mtu"], "1400");
        let off = NetworkInfo {
            enabled: false,
            ..info()
        };
        assert_eq!(
            predefined(&off, true, std::net::Ipv4Addr::UNSPECIFIED).len(),
            2
        );
    }

    #[test]
    fn find_takes_names_ids_and_unique_prefixes() {
        let nets = predefined(&info(), true, std::net::Ipv4Addr::UNSPECIFIED);
        assert_eq!(
            find(nets.clone(), "host").unwrap().name.as_deref(),
            Some("host")
        );
        assert_eq!(
            find(nets.clone(), "abab").unwrap().name.as_deref(),
            Some("bridge")
        );
        assert!(find(nets, "nosuch").is_err());
    }
}
