//! `/networks`: the predefined networks and the user-defined bridge networks as dockerd
//! shows them (`docker network ls`, `inspect`), and their create, removal, prune,
//! connect and disconnect.
//!
//! berthd's predefined networks are `bridge` (absent under `-b none`), `host` and `none`;
//! user-defined ones are bridge networks that the NetworkActor makes (`CreateNetwork`,
//! `RemoveNetwork`) and lists (`NetworkInfo::user`). Every field of a create is honoured
//! or refused with a 400 naming it. The containers on each network come from the store
//! (`ListNetworkUsers`), which also connects and disconnects them (`ConnectNetwork`,
//! `DisconnectNetwork`).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::{ApiError, AppState, QueryParams, json_reply};
use crate::actors::graph::store::parse_until;
use crate::actors::network::user::NetworkRecord;
use crate::actors::network::{
    Attachment, CreateNetwork, GetNetworkInfo, NetworkInfo, RemoveNetwork,
};
use crate::actors::store::{ConnectNetwork, DisconnectNetwork, ListNetworkUsers, NetworkUser};
use crate::error::ErrorKind;
use crate::model::api::{Ipam, Network, NetworkContainer};
use crate::model::filters::{Filters, Patterns};

fn to_json(v: &impl serde::Serialize) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::new(ErrorKind::System, e.to_string()))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/networks", web::get().to(list))
        .route("/networks/create", web::post().to(create))
        .route("/networks/prune", web::post().to(prune))
        .route("/networks/{id}", web::get().to(inspect))
        .route("/networks/{id}", web::delete().to(remove))
        .route("/networks/{id}/connect", web::post().to(connect))
        .route("/networks/{id}/disconnect", web::post().to(disconnect));
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

/// A user-defined network as dockerd shows it.
fn user_network(r: &NetworkRecord) -> Network {
    let mut cfg = HashMap::from([
        ("Subnet".to_owned(), r.subnet.clone()),
        ("Gateway".to_owned(), r.gateway.to_string()),
    ]);
    if let Some(range) = &r.ip_range {
        cfg.insert("IPRange".to_owned(), range.clone());
    }
    Network {
        name: Some(r.name.clone()),
        id: Some(r.id.clone()),
        created: Some(r.created),
        scope: Some("local".to_owned()),
        driver: Some("bridge".to_owned()),
        enable_ipv6: Some(false),
        ipam: Some(Ipam {
            driver: Some("default".to_owned()),
            config: Some(vec![cfg]),
            options: Some(HashMap::new()),
        }),
        internal: Some(r.internal),
        attachable: Some(r.attachable),
        ingress: Some(false),
        containers: Some(HashMap::new()),
        options: Some(r.options.clone().into_iter().collect()),
        labels: Some(r.labels.clone().into_iter().collect()),
    }
}

/// Every network: the predefined ones, then the user-defined ones in creation order.
async fn networks(state: &AppState) -> Result<Vec<Network>, ApiError> {
    let info = state.actors.network.send(GetNetworkInfo).await?;
    let host_ip = state
        .config
        .default_bind_ip
        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
    let mut all = predefined(&info, state.config.icc, host_ip);
    all.extend(info.user.all().iter().map(user_network));
    Ok(all)
}

fn is_predefined(n: &Network) -> bool {
    matches!(n.name.as_deref(), Some("bridge" | "host" | "none"))
}

/// The names of the networks a running container is on.
async fn used_networks(state: &AppState) -> Result<Vec<String>, ApiError> {
    let users = state.actors.store.send(ListNetworkUsers).await?;
    Ok(users.into_iter().map(|u| u.network).collect())
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
    let used = if dangling.is_some() {
        used_networks(&state).await?
    } else {
        Vec::new()
    };
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
        .filter(|n| {
            let t = if is_predefined(n) {
                "builtin"
            } else {
                "custom"
            };
            !filters.contains("type") || filters.get("type").any(|x| x == t)
        })
        .filter(|n| {
            let labels = n
                .labels
                .as_ref()
                .map(|l| crate::model::filters::label_pairs(l.iter()));
            filters.match_kv_list("label", labels.as_deref().unwrap_or(&[]))
        })
        // Dangling: a network no running container is on, other than a predefined one.
        .filter(|n| match dangling {
            None => true,
            Some(d) => {
                let name = n.name.as_deref().unwrap_or("");
                let is_dangling = !is_predefined(n) && !used.iter().any(|u| u == name);
                is_dangling == d
            }
        })
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

/// `DELETE /networks/{id}`: a user-defined network without running containers goes;
/// a predefined one cannot (dockerd's 403).
async fn remove(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let key = req.match_info().query("id").to_owned();
    let net = find(networks(&state).await?, &key)?;
    if is_predefined(&net) {
        return Err(ApiError::new(
            ErrorKind::Forbidden,
            format!(
                "{} is a pre-defined network and cannot be removed",
                net.name.unwrap_or_default()
            ),
        ));
    }
    let id = net.id.clone().unwrap_or_default();
    state
        .actors
        .network
        .send(RemoveNetwork { id: id.clone() })
        .await??;
    network_event("destroy", &id, net.name.as_deref().unwrap_or(""));
    Ok(HttpResponse::NoContent().finish())
}

fn network_event(action: &str, id: &str, name: &str) {
    crate::events::events().other(
        crate::events::Kind::Network,
        action,
        id,
        [("name", name.to_owned()), ("type", "bridge".to_owned())],
    );
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// A JSON object of strings (`Options`, `Labels`); null is empty.
fn string_map(
    v: Option<&serde_json::Value>,
    what: &str,
) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
    match v {
        None | Some(serde_json::Value::Null) => Ok(Default::default()),
        Some(serde_json::Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(bad(format!("{what}.{k} must be a string"))),
            })
            .collect(),
        Some(_) => Err(bad(format!("{what} must be an object of strings"))),
    }
}

fn is_zero(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Bool(b) => !b,
        serde_json::Value::String(s) => s.is_empty(),
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::Object(o) => o.values().all(is_zero),
        serde_json::Value::Number(n) => n.as_f64() == Some(0.0),
    }
}

/// The `POST /networks/create` body as a [`CreateNetwork`]: every field honoured or
/// refused (400) by name.
fn create_request(body: &[u8]) -> Result<CreateNetwork, ApiError> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("the request body must be a JSON object"))?;
    let text = |k: &str| obj.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    let flag = |k: &str| {
        obj.get(k)
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    };
    for (k, v) in obj {
        match k.as_str() {
            "Name" | "CheckDuplicate" | "Internal" | "Attachable" | "Options" | "Labels"
            | "IPAM" => {}
            "Driver" => {
                let d = v.as_str().unwrap_or("");
                if !matches!(d, "" | "bridge") {
                    return Err(bad(format!(
                        "berthd does not support network driver {d:?} (Driver): its user-defined networks are bridge networks"
                    )));
                }
            }
            "Scope" => {
                let s = v.as_str().unwrap_or("");
                if !matches!(s, "" | "local") {
                    return Err(bad(format!(
                        "berthd does not support network scope {s:?} (Scope): its networks are local"
                    )));
                }
            }
            "EnableIPv6" | "Ingress" | "ConfigOnly" | "ConfigFrom" if !is_zero(v) => {
                return Err(bad(format!(
                    "berthd does not support {k} in a network create: its networks are local IPv4 bridge networks"
                )));
            }
            "EnableIPv6" | "Ingress" | "ConfigOnly" | "ConfigFrom" => {}
            // Newer clients say so explicitly: berthd's networks are IPv4 ones.
            "EnableIPv4" if v.as_bool() != Some(false) => {}
            "EnableIPv4" => {
                return Err(bad(
                    "berthd does not support EnableIPv4=false: its networks are IPv4 networks",
                ));
            }
            other if is_zero(v) => {
                tracing::debug!(field = other, "empty network create field ignored");
            }
            other => {
                return Err(bad(format!(
                    "berthd does not support the network create field {other}"
                )));
            }
        }
    }
    let mut req = CreateNetwork {
        name: text("Name"),
        internal: flag("Internal"),
        attachable: flag("Attachable"),
        options: string_map(obj.get("Options"), "Options")?,
        labels: string_map(obj.get("Labels"), "Labels")?,
        ..CreateNetwork::default()
    };
    if let Some(ipam) = obj.get("IPAM").filter(|v| !v.is_null()) {
        let ipam = ipam
            .as_object()
            .ok_or_else(|| bad("IPAM must be an object"))?;
        for (k, v) in ipam {
            match k.as_str() {
                "Driver" if !matches!(v.as_str().unwrap_or(""), "" | "default") => {
                    return Err(bad(format!(
                        "berthd does not support IPAM driver {v} (IPAM.Driver): it has the default one"
                    )));
                }
                "Options" if !is_zero(v) => {
                    return Err(bad("berthd does not support IPAM.Options (--ipam-opt)"));
                }
                "Driver" | "Options" | "Config" => {}
                other => return Err(bad(format!("berthd does not support IPAM.{other}"))),
            }
        }
        let configs = ipam
            .get("Config")
            .and_then(|c| c.as_array())
            .cloned()
            .unwrap_or_default();
        if configs.len() > 1 {
            return Err(bad(
                "berthd does not support more than one IPAM.Config (one IPv4 subnet per network)",
            ));
        }
        if let Some(c) = configs.first() {
            let c = c
                .as_object()
                .ok_or_else(|| bad("IPAM.Config entries must be objects"))?;
            for (k, v) in c {
                let s = v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
                match k.as_str() {
                    "Subnet" => req.subnet = s,
                    "Gateway" => req.gateway = s,
                    "IPRange" => req.ip_range = s,
                    "AuxiliaryAddresses" | "AuxAddress" if !is_zero(v) => {
                        return Err(bad(
                            "berthd does not support IPAM.Config.AuxiliaryAddresses (--aux-address)",
                        ));
                    }
                    "AuxiliaryAddresses" | "AuxAddress" => {}
                    other => {
                        return Err(bad(format!("berthd does not support IPAM.Config.{other}")));
                    }
                }
            }
        }
    }
    Ok(req)
}

/// `POST /networks/create`: dockerd's 201 `{"Id", "Warning"}`.
async fn create(state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let req = create_request(&body)?;
    let rec = state.actors.network.send(req).await??;
    network_event("create", &rec.id, &rec.name);
    Ok(json_reply(
        StatusCode::CREATED,
        &json!({"Id": rec.id, "Warning": ""}),
    ))
}

/// The user-defined network `key` names, for connect and disconnect; the predefined
/// ones are refused as berthd cannot (dis)connect them.
async fn user_target(state: &AppState, key: &str) -> Result<NetworkRecord, ApiError> {
    let info = state.actors.network.send(GetNetworkInfo).await?;
    if let Some(r) = info.user.find(key) {
        return Ok(r);
    }
    let net = find(networks(state).await?, key)?;
    Err(ApiError::new(
        ErrorKind::Forbidden,
        format!(
            "berthd connects and disconnects containers on user-defined networks only, not on the pre-defined network {}",
            net.name.unwrap_or_default()
        ),
    ))
}

/// `POST /networks/{id}/connect`: `{"Container", "EndpointConfig"}`; `--ip` and
/// `--alias` honoured, the other endpoint fields refused when set.
async fn connect(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let key = req.match_info().query("id").to_owned();
    let rec = user_target(&state, &key).await?;
    let container = v["Container"].as_str().unwrap_or("").to_owned();
    if container.is_empty() {
        return Err(bad("no container given (Container)"));
    }
    let ep = &v["EndpointConfig"];
    let mut attach = Attachment {
        network_id: rec.id.clone(),
        name: rec.name.clone(),
        ..Attachment::default()
    };
    if let Some(o) = ep.as_object() {
        for (k, val) in o {
            match k.as_str() {
                "Aliases" => {
                    attach.aliases = val
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str())
                        .filter(|a| !a.is_empty())
                        .map(str::to_owned)
                        .collect();
                }
                "IPAMConfig" => {
                    for (ik, iv) in val.as_object().into_iter().flatten() {
                        match ik.as_str() {
                            "IPv4Address" => {
                                if let Some(ip) = iv.as_str().filter(|s| !s.is_empty()) {
                                    if !rec.user_subnet {
                                        return Err(bad(
                                            "user specified IP address is supported only when connecting to networks with user configured subnets",
                                        ));
                                    }
                                    attach.ip =
                                        Some(ip.parse().map_err(|_| {
                                            bad(format!("invalid IPv4 address: {ip}"))
                                        })?);
                                }
                            }
                            other if is_zero(iv) => {
                                tracing::debug!(field = other, "empty IPAMConfig field ignored");
                            }
                            other => {
                                return Err(bad(format!(
                                    "berthd does not support EndpointConfig.IPAMConfig.{other}: its networks are IPv4"
                                )));
                            }
                        }
                    }
                }
                // Set by the daemon; ignored in a request, as dockerd ignores them.
                "NetworkID"
                | "EndpointID"
                | "Gateway"
                | "IPAddress"
                | "IPPrefixLen"
                | "IPv6Gateway"
                | "GlobalIPv6Address"
                | "GlobalIPv6PrefixLen"
                | "DNSNames"
                | "GwPriority" => {}
                other if is_zero(val) => {
                    tracing::debug!(field = other, "empty EndpointConfig field ignored");
                }
                other => {
                    return Err(bad(format!(
                        "berthd does not support EndpointConfig.{other} in a network connect"
                    )));
                }
            }
        }
    }
    state
        .actors
        .store
        .send(ConnectNetwork { container, attach })
        .await??;
    Ok(HttpResponse::Ok().finish())
}

/// `POST /networks/{id}/disconnect`: `{"Container", "Force"}`.
async fn disconnect(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let key = req.match_info().query("id").to_owned();
    let rec = user_target(&state, &key).await?;
    let container = v["Container"].as_str().unwrap_or("").to_owned();
    if container.is_empty() {
        return Err(bad("no container given (Container)"));
    }
    state
        .actors
        .store
        .send(DisconnectNetwork {
            container,
            network_id: rec.id,
            network_name: rec.name,
            force: v["Force"].as_bool().unwrap_or(false),
        })
        .await??;
    Ok(HttpResponse::Ok().finish())
}

/// `POST /networks/prune`: the user-defined networks no running container is on, with
/// dockerd's `until`, `label` and `label!` filters.
async fn prune(state: web::Data<AppState>, query: QueryParams) -> Result<HttpResponse, ApiError> {
    let filters = Filters::parse(query.get("filters"))?;
    filters.validate(&["until", "label", "label!"])?;
    let now = chrono::Utc::now();
    let mut until = None;
    for v in filters.get("until") {
        until = Some(parse_until(v, now)?);
    }
    let used = used_networks(&state).await?;
    let mut deleted = Vec::new();
    for n in networks(&state).await? {
        if is_predefined(&n) {
            continue;
        }
        let name = n.name.clone().unwrap_or_default();
        if used.contains(&name) {
            continue;
        }
        if until.is_some_and(|u| n.created.is_some_and(|c| c >= u)) {
            continue;
        }
        let labels = n.labels.clone().unwrap_or_default();
        let pairs = crate::model::filters::label_pairs(labels.iter());
        if !filters.match_kv_list("label", &pairs) {
            continue;
        }
        if filters.contains("label!") && filters.match_kv_list("label!", &pairs) {
            continue;
        }
        let id = n.id.clone().unwrap_or_default();
        match state
            .actors
            .network
            .send(RemoveNetwork { id: id.clone() })
            .await?
        {
            Ok(()) => {
                network_event("destroy", &id, &name);
                deleted.push(name);
            }
            Err(e) => tracing::info!(network = %name, error = %e, "network not pruned"),
        }
    }
    crate::events::events().other(
        crate::events::Kind::Network,
        "prune",
        "",
        [("reclaimed", "0".to_owned())],
    );
    Ok(json_reply(
        StatusCode::OK,
        &json!({"NetworksDeleted": if deleted.is_empty() { serde_json::Value::Null } else { json!(deleted) }}),
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
    fn create_bodies_are_honoured_or_refused_by_field() {
        // What the docker CLI 28 sends for `docker network create --subnet ... tnet`.
        let r = create_request(br#"{"Driver":"bridge","Scope":"","IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"10.199.60.0/24","IPRange":"","Gateway":""}]},"Internal":true,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{"com.docker.network.bridge.name":"b1"},"Labels":{"a":"b"},"Name":"tnet","CheckDuplicate":true}"#).unwrap();
        assert_eq!(r.name, "tnet");
        assert_eq!(r.subnet.as_deref(), Some("10.199.60.0/24"));
        assert_eq!(r.gateway, None);
        assert!(r.internal && !r.attachable);
        assert_eq!(r.labels["a"], "b");
        for (body, field) in [
            (r#"{"Name":"x","Driver":"overlay"}"#, "overlay"),
            (r#"{"Name":"x","EnableIPv6":true}"#, "EnableIPv6"),
            (r#"{"Name":"x","EnableIPv4":false}"#, "EnableIPv4"),
            (r#"{"Name":"x","Ingress":true}"#, "Ingress"),
            (r#"{"Name":"x","Bogus":1}"#, "Bogus"),
            (r#"{"Name":"x","IPAM":{"Driver":"other"}}"#, "IPAM.Driver"),
            (
                r#"{"Name":"x","IPAM":{"Options":{"a":"b"}}}"#,
                "IPAM.Options",
            ),
            (
                r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"10.1.0.0/24"},{"Subnet":"10.2.0.0/24"}]}}"#,
                "IPAM.Config",
            ),
            (
                r#"{"Name":"x","IPAM":{"Config":[{"AuxiliaryAddresses":{"a":"10.1.0.9"}}]}}"#,
                "AuxiliaryAddresses",
            ),
        ] {
            let e = create_request(body.as_bytes()).err().unwrap();
            assert!(e.to_string().contains(field), "{body}: {e}");
        }
        assert!(create_request(br#"{"Name":"x","EnableIPv4":true}"#).is_ok());
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
