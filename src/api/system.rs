//! `/_ping`, `/version`, `/info`, and `/metrics` (served on `--metrics-addr`).

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::{API_VERSION, AppState, MIN_API_VERSION};
use crate::actors::graph::GetDriverInfo;
use crate::actors::network::GetNetworkInfo;
use crate::actors::store::{CountContainers, Counts};
use crate::metrics::metrics;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/_ping", web::get().to(ping))
        .route("/_ping", web::head().to(ping))
        .route("/version", web::get().to(version))
        .route("/info", web::get().to(info));
}

/// `GET` answers `OK`; `HEAD` the same headers with no body (the CLI pings with HEAD
/// before every command).
async fn ping(req: HttpRequest) -> HttpResponse {
    let mut b = HttpResponse::Ok();
    b.insert_header(("Cache-Control", "no-cache, no-store, must-revalidate"))
        .insert_header(("Pragma", "no-cache"))
        .insert_header(("Builder-Version", "1"))
        .insert_header(("Swarm", "inactive"))
        .content_type("text/plain; charset=utf-8");
    if req.method() == Method::HEAD {
        b.insert_header(("Content-Length", "0")).finish()
    } else {
        b.body("OK")
    }
}

fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

async fn version(state: web::Data<AppState>) -> HttpResponse {
    let f = &state.facts;
    let v = env!("CARGO_PKG_VERSION");
    let details = json!({
        "ApiVersion": API_VERSION, "Arch": go_arch(&f.arch), "BuildTime": "",
        "Experimental": "false", "GitCommit": "", "GoVersion": "", "KernelVersion": f.kernel_version,
        "MinAPIVersion": MIN_API_VERSION, "Os": "linux"
    });
    HttpResponse::Ok().json(json!({
        "Platform": {"Name": "berth"},
        "Components": [{"Name": "Engine", "Version": v, "Details": details}],
        "Version": v,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": go_arch(&f.arch),
        "KernelVersion": f.kernel_version,
        "BuildTime": "",
    }))
}

async fn info(state: web::Data<AppState>) -> Result<HttpResponse, super::ApiError> {
    let a = &state.actors;
    let counts: Counts = a.store.send(CountContainers).await?;
    let driver = a.graph.send(GetDriverInfo).await?;
    let net = a.network.send(GetNetworkInfo).await?;
    let f = &state.facts;
    let cg = &f.cgroups;
    let cg_version = cg.version();
    let ip_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    let bridge_nf = std::path::Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists();
    let mut warnings = Vec::new();
    if !cg.swap_limit {
        warnings.push("WARNING: No swap limit support".to_owned());
    }
    if !net.enabled {
        warnings.push("WARNING: networking is disabled (-b none)".to_owned());
    }
    let c = &state.config;
    Ok(HttpResponse::Ok().json(json!({
        "ID": format!("berth-{}", f.hostname),
        "Containers": counts.total,
        "ContainersRunning": counts.running,
        "ContainersPaused": counts.paused,
        "ContainersStopped": counts.stopped(),
        "Images": driver.images,
        "Driver": driver.name,
        "DriverStatus": driver.status.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": null, "Log": ["json-file"]},
        "MemoryLimit": cg.memory_limit,
        "SwapLimit": cg.swap_limit,
        "KernelMemory": false,
        "KernelMemoryTCP": false,
        "CpuCfsPeriod": cg.cpu_cfs_quota,
        "CpuCfsQuota": cg.cpu_cfs_quota,
        "CPUShares": cg.cpu_shares,
        "CPUSet": cg.cpuset,
        "PidsLimit": cg.pids_limit,
        "IPv4Forwarding": ip_forward,
        "BridgeNfIptables": bridge_nf,
        "BridgeNfIp6tables": bridge_nf,
        "Debug": c.log_level == "debug",
        "NFd": std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0),
        "OomKillDisable": cg_version == 1,
        "NGoroutines": 0,
        "SystemTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cg_version.to_string(),
        "NEventsListener": 0,
        "KernelVersion": f.kernel_version,
        "OperatingSystem": f.operating_system,
        "OSVersion": f.os_version,
        "OSType": "linux",
        "Architecture": f.arch,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": [], "IndexConfigs": {}, "Mirrors": []},
        "NCPU": f.ncpu,
        "MemTotal": f.mem_total,
        "GenericResources": null,
        "DockerRootDir": state.data_root,
        "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
        "Name": f.hostname,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": {"native": {"path": "berthd"}},
        "DefaultRuntime": c.exec_driver,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false,
            "Error": "", "RemoteManagers": null},
        "LiveRestoreEnabled": c.live_restore,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": [],
        "Warnings": warnings,
    })))
}

/// `GET /metrics` on `--metrics-addr`: the registry, with the container gauge refreshed.
pub async fn metrics_handler(state: web::Data<AppState>) -> HttpResponse {
    if let Ok(n) = state.actors.store.send(CountContainers).await {
        let g = &metrics().containers;
        for (s, v) in [
            ("created", n.created),
            ("running", n.running),
            ("paused", n.paused),
            ("restarting", n.restarting),
            ("exited", n.exited),
            ("dead", n.dead),
            ("removing", n.removing),
        ] {
            g.with_label_values(&[s])
                .set(i64::try_from(v).unwrap_or(i64::MAX));
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render())
}
