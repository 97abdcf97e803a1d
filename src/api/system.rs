//! `/_ping`, `/version`, `/info`, and `/metrics` (served on `--metrics-addr`).

use std::path::Path;

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::{API_VERSION, AppState, MIN_API_VERSION, json_reply};
use crate::actors::graph::{DriverInfo, GetDriverInfo};
use crate::actors::network::{GetNetworkInfo, NetworkInfo};
use crate::actors::store::{CountContainers, Counts};
use crate::config::DaemonConfig;
use crate::daemon::SystemFacts;
use crate::metrics::metrics;
use crate::model::api;
use crate::model::complete::Template;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/_ping", web::get().to(ping))
        .route("/_ping", web::head().to(ping))
        .route("/version", web::get().to(version))
        .route("/info", web::get().to(info))
        .route("/swarm", web::get().to(swarm));
}

/// `GET /swarm`: berthd is never part of a swarm, and answers as dockerd does on a node
/// that is not (503 and its words), which clients (the Python SDK's `client.swarm`, the
/// CLI) take as "no swarm". Every other swarm endpoint is a 404.
async fn swarm() -> Result<HttpResponse, super::ApiError> {
    Err(super::ApiError::new(
        crate::error::ErrorKind::Unavailable,
        "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.",
    ))
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

/// The commit berthd was built from (`git rev-parse --short=7 HEAD`), or empty when the
/// build was not made from a git checkout (see build.rs).
pub const GIT_COMMIT: &str = env!("BERTH_GIT_COMMIT");
/// `SOURCE_DATE_EPOCH` of the build in dockerd's format, or empty (see build.rs).
pub const BUILD_TIME: &str = env!("BERTH_BUILD_TIME");
/// The name of berthd's own runtime: its `native` exec driver, which runs each container
/// under a monitor (`berthd monitor`) that clones the init itself. The OCI runtimes of
/// `--add-runtime` (and `runc` with `--exec-driver oci`) are listed beside it.
pub const NATIVE_RUNTIME: &str = crate::config::NATIVE;

async fn version(state: web::Data<AppState>) -> HttpResponse {
    json_reply(StatusCode::OK, &version_doc(&state.facts))
}

/// The `/version` body: `types.Version` with the Engine component only (berthd uses no
/// containerd, runc or docker-init whose versions dockerd adds).
pub fn version_doc(f: &SystemFacts) -> Value {
    let v = env!("CARGO_PKG_VERSION");
    let arch = go_arch(&f.arch);
    let body = api::SystemVersion {
        platform: Some(api::SystemVersionPlatform {
            name: "berth".to_owned(),
        }),
        components: Some(vec![api::SystemVersionComponents {
            name: "Engine".to_owned(),
            version: v.to_owned(),
            // Set below: the generated type of `Details` cannot hold a map of strings.
            details: None,
        }]),
        version: Some(v.to_owned()),
        api_version: Some(API_VERSION.to_owned()),
        min_api_version: Some(MIN_API_VERSION.to_owned()),
        git_commit: Some(GIT_COMMIT.to_owned()),
        // berthd is written in Rust: it has no Go version, and a Rust compiler's version
        // here would be read as a Go toolchain's. Empty is dockerd's value for "unknown".
        go_version: Some(String::new()),
        os: Some("linux".to_owned()),
        arch: Some(arch.to_owned()),
        kernel_version: Some(f.kernel_version.clone()),
        // `omitempty` in dockerd: berthd has no experimental mode, so it is never true.
        experimental: None,
        // `omitempty` in dockerd.
        build_time: (!BUILD_TIME.is_empty()).then(|| BUILD_TIME.to_owned()),
    };
    let mut doc = serde_json::to_value(body).unwrap_or_else(|_| json!({}));
    if let Some(engine) = doc.pointer_mut("/Components/0") {
        engine["Details"] = json!({
            "ApiVersion": API_VERSION,
            "Arch": arch,
            "BuildTime": BUILD_TIME,
            "Experimental": "false",
            "GitCommit": GIT_COMMIT,
            "GoVersion": "",
            "KernelVersion": f.kernel_version,
            "MinAPIVersion": MIN_API_VERSION,
            "Os": "linux",
        });
    }
    Template::SystemVersion.complete(&mut doc);
    doc
}

async fn info(state: web::Data<AppState>) -> Result<HttpResponse, super::ApiError> {
    let a = &state.actors;
    let counts: Counts = a.store.send(CountContainers).await?;
    let driver = a.graph.send(GetDriverInfo).await?;
    let net = a.network.send(GetNetworkInfo).await?;
    let doc = info_doc(&InfoSources {
        counts,
        driver,
        net,
        facts: &state.facts,
        config: &state.config,
        data_root: &state.data_root,
        engine_id: &state.engine_id,
        monitor_exe: &state.monitor_exe,
        host: HostReadings::read(),
    });
    Ok(json_reply(StatusCode::OK, &doc))
}

/// What the host says at the time of the request (read from /proc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostReadings {
    /// `/proc/sys/net/ipv4/ip_forward` is 1.
    pub ip_forward: bool,
    /// `/proc/sys/net/bridge/bridge-nf-call-iptables` is 1 (absent: br_netfilter is not
    /// loaded, so bridged traffic does not pass iptables).
    pub bridge_nf_iptables: bool,
    /// The same for `bridge-nf-call-ip6tables`.
    pub bridge_nf_ip6tables: bool,
    /// berthd's open file descriptors.
    pub fds: usize,
    /// berthd's threads.
    pub threads: usize,
    /// RFC 3339 with nanoseconds.
    pub system_time: String,
}

impl HostReadings {
    pub fn read() -> HostReadings {
        // `/proc/sys` booleans as dockerd's sysinfo reads them: the value, not the file's
        // existence.
        let on = |path: &str| std::fs::read_to_string(path).is_ok_and(|s| s.trim() == "1");
        let threads = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Threads:"))
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0);
        HostReadings {
            ip_forward: on("/proc/sys/net/ipv4/ip_forward"),
            bridge_nf_iptables: on("/proc/sys/net/bridge/bridge-nf-call-iptables"),
            bridge_nf_ip6tables: on("/proc/sys/net/bridge/bridge-nf-call-ip6tables"),
            fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()),
            threads,
            system_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        }
    }
}

/// Everything `/info` is built from.
#[derive(Debug)]
pub struct InfoSources<'a> {
    pub counts: Counts,
    pub driver: DriverInfo,
    pub net: NetworkInfo,
    pub facts: &'a SystemFacts,
    pub config: &'a DaemonConfig,
    pub data_root: &'a Path,
    pub engine_id: &'a str,
    pub monitor_exe: &'a Path,
    pub host: HostReadings,
}

fn count(n: usize) -> Option<i64> {
    Some(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The `/info` body (`types.Info`). Every value is measured (counts, the host's
/// capabilities, /proc) or configured (flags), or is dockerd's empty value where berthd
/// has nothing of the kind; the comments say which. The limit flags say what berthd can
/// enforce: the host must support the limit and berthd must apply it (see
/// [`ContainerCgroup`](crate::sys::cgroups::ContainerCgroup)), since a client reads them to
/// know which `docker run` options take effect.
pub fn info_doc(s: &InfoSources<'_>) -> Value {
    let f = s.facts;
    let c = s.config;
    let cg = &f.cgroups;
    let cg_version = match cg.version() {
        2 => api::SystemInfoCgroupVersionEnum::_2,
        _ => api::SystemInfoCgroupVersionEnum::_1,
    };
    let mut network_drivers = Vec::new();
    if s.net.enabled {
        network_drivers.push("bridge".to_owned());
    }
    network_drivers.extend(["host".to_owned(), "null".to_owned()]);
    let mut runtimes = std::collections::HashMap::new();
    if c.native_available() {
        runtimes.insert(
            NATIVE_RUNTIME.to_owned(),
            api::Runtime {
                path: Some(s.monitor_exe.display().to_string()),
                runtime_args: Some(vec!["monitor".to_owned()]),
            },
        );
    }
    for (name, rt) in &c.runtimes {
        runtimes.insert(
            name.clone(),
            api::Runtime {
                path: Some(rt.path.clone()),
                runtime_args: (!rt.args.is_empty()).then(|| rt.args.clone()),
            },
        );
    }
    let body = api::SystemInfo {
        id: Some(s.engine_id.to_owned()),
        containers: count(s.counts.total),
        containers_running: count(s.counts.running),
        containers_paused: count(s.counts.paused),
        containers_stopped: count(s.counts.stopped()),
        images: count(s.driver.images),
        driver: Some(s.driver.name.clone()),
        driver_status: Some(
            s.driver
                .status
                .iter()
                .map(|(k, v)| vec![k.clone(), v.clone()])
                .collect(),
        ),
        docker_root_dir: Some(s.data_root.display().to_string()),
        plugins: Some(api::PluginsInfo {
            // No volume driver: named volumes are refused (only bind mounts exist).
            volume: Some(Vec::new()),
            network: Some(network_drivers),
            // berthd has no authorization plugins: dockerd's nil list.
            authorization: None,
            // The drivers a container may name: json-file (dockerd lists no `none`).
            log: Some(vec!["json-file".to_owned()]),
        }),
        // The container cgroup writes memory.limit_in_bytes / memory.max.
        memory_limit: Some(cg.memory_limit),
        // memory.memsw.limit_in_bytes / memory.swap.max, where the host accounts swap.
        swap_limit: Some(cg.swap_limit),
        // berthd sets no kernel memory limit (KernelMemoryTCP, which the 1.41 type lacks,
        // is set below for the same reason).
        kernel_memory: Some(false),
        // Written as cpu.cfs_period_us / the second field of cpu.max.
        cpu_cfs_period: Some(cg.cpu_cfs_period),
        cpu_cfs_quota: Some(cg.cpu_cfs_quota),
        cpu_shares: Some(cg.cpu_shares),
        // cpuset.cpus / cpuset.mems (a v1 container joins the cpuset hierarchy when it
        // asks for one).
        cpu_set: Some(cg.cpuset),
        pids_limit: Some(cg.pids_limit),
        // v1 memory.oom_control; v2 has none.
        oom_kill_disable: Some(cg.oom_kill_disable),
        ipv4_forwarding: Some(s.host.ip_forward),
        bridge_nf_iptables: Some(s.host.bridge_nf_iptables),
        bridge_nf_ip6tables: Some(s.host.bridge_nf_ip6tables),
        debug: Some(c.log_level == "debug"),
        n_fd: count(s.host.fds),
        // berthd has no goroutines; its OS threads are the nearest measure of the same
        // thing (dockerd's CLI shows it only in debug mode, as "Goroutines").
        n_goroutines: count(s.host.threads),
        system_time: Some(s.host.system_time.clone()),
        // `--log-driver`: the driver of containers that name none.
        logging_driver: Some(if c.log_driver.is_empty() {
            crate::model::logconfig::DEFAULT_DRIVER.to_owned()
        } else {
            c.log_driver.clone()
        }),
        // berthd writes the cgroup files itself; it does not ask systemd.
        cgroup_driver: Some(api::SystemInfoCgroupDriverEnum::CGROUPFS),
        cgroup_version: Some(cg_version),
        // berthd serves no event stream (`/events`), so it has no listeners.
        n_events_listener: Some(0),
        kernel_version: Some(f.kernel_version.clone()),
        operating_system: Some(f.operating_system.clone()),
        os_version: Some(f.os_version.clone()),
        os_type: Some("linux".to_owned()),
        architecture: Some(f.arch.clone()),
        ncpu: count(f.ncpu),
        mem_total: Some(i64::try_from(f.mem_total).unwrap_or(i64::MAX)),
        // Docker Hub's index, as dockerd names it; the registries' configuration:
        // loopback and `--insecure-registry` CIDRs are insecure, `--registry-mirror`s
        // serve Docker Hub's names.
        index_server_address: Some("https://index.docker.io/v1/".to_owned()),
        registry_config: Some(registry_config(c)),
        // A swarm concept: null, as dockerd without swarm resources.
        generic_resources: None,
        // The registry client (reqwest) takes its proxies from the environment.
        http_proxy: Some(env_either("HTTP_PROXY")),
        https_proxy: Some(env_either("HTTPS_PROXY")),
        no_proxy: Some(env_either("NO_PROXY")),
        name: Some(f.hostname.clone()),
        // berthd has no daemon labels (`--label`).
        labels: Some(Vec::new()),
        // berthd has no experimental features.
        experimental_build: Some(false),
        server_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        cluster_store: None,
        cluster_advertise: None,
        runtimes: Some(runtimes),
        default_runtime: Some(c.default_runtime_name().to_owned()),
        swarm: Some(api::SwarmInfo {
            node_id: Some(String::new()),
            node_addr: Some(String::new()),
            local_node_state: Some(api::LocalNodeState::INACTIVE),
            control_available: Some(false),
            error: Some(String::new()),
            remote_managers: None,
            nodes: None,
            managers: None,
            cluster: None,
        }),
        live_restore_enabled: Some(c.live_restore),
        // Isolation modes are a Windows thing; dockerd on Linux reports "".
        isolation: Some(api::SystemInfoIsolationEnum::EMPTY),
        // berthd has no init binary (`--init`).
        init_binary: Some(String::new()),
        // berthd uses no containerd, no runc and no docker-init.
        containerd_commit: Some(empty_commit()),
        runc_commit: Some(empty_commit()),
        init_commit: Some(empty_commit()),
        security_options: Some(crate::security::info_options(
            crate::security::DaemonDefaults {
                no_new_privileges: c.no_new_privileges,
            },
        )),
        product_license: None,
        default_address_pools: None,
        warnings: None,
    };
    let mut doc = serde_json::to_value(body).unwrap_or_else(|_| json!({}));
    doc["KernelMemoryTCP"] = Value::Bool(false);
    let warnings = info_warnings(&doc, s);
    if !warnings.is_empty() {
        doc["Warnings"] = json!(warnings);
    }
    Template::SystemInfo.complete(&mut doc);
    doc
}

fn empty_commit() -> api::Commit {
    api::Commit {
        id: Some(String::new()),
        expected: Some(String::new()),
    }
}

/// dockerd's warnings for what the reply says is missing, in dockerd's order and words,
/// and berthd's own for networking turned off.
fn info_warnings(doc: &Value, s: &InfoSources<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for host in &s.config.hosts {
        if let crate::config::HostAddr::Tcp(addr) = host {
            // berthd serves TCP without TLS.
            out.push(format!(
                "WARNING: API is accessible on http://{addr} without encryption.\n         Access to the remote API is equivalent to root access on the host. Refer\n         to the 'Docker daemon attack surface' section in the documentation for\n         more information: https://docs.docker.com/go/attack-surface/"
            ));
        }
    }
    for (key, text) in [
        ("MemoryLimit", "WARNING: No memory limit support"),
        ("SwapLimit", "WARNING: No swap limit support"),
        ("KernelMemory", "WARNING: No kernel memory limit support"),
        (
            "KernelMemoryTCP",
            "WARNING: No kernel memory TCP limit support",
        ),
        ("OomKillDisable", "WARNING: No oom kill disable support"),
        ("CpuCfsQuota", "WARNING: No cpu cfs quota support"),
        ("CpuCfsPeriod", "WARNING: No cpu cfs period support"),
        ("CPUShares", "WARNING: No cpu shares support"),
        ("CPUSet", "WARNING: No cpuset support"),
        ("IPv4Forwarding", "WARNING: IPv4 forwarding is disabled"),
        (
            "BridgeNfIptables",
            "WARNING: bridge-nf-call-iptables is disabled",
        ),
        (
            "BridgeNfIp6tables",
            "WARNING: bridge-nf-call-ip6tables is disabled",
        ),
    ] {
        // Nothing a user of cgroup v2 can do about these: dockerd says them on v1 only.
        let v1_only = matches!(key, "KernelMemoryTCP" | "OomKillDisable");
        if v1_only && doc["CgroupVersion"] == "2" {
            continue;
        }
        if key == "IPv4Forwarding" {
            out.extend(blkio_warnings(&s.facts.cgroups));
        }
        if doc[key] == Value::Bool(false) {
            out.push(text.to_owned());
        }
    }
    if !s.net.enabled {
        out.push("WARNING: networking is disabled (-b none)".to_owned());
    }
    out
}

/// dockerd's block I/O warnings, as the host's cgroups measure them: the weights on v2
/// only (v1 kernels since 5.0 have none, and nothing can be done about it), the throttles
/// on both.
fn blkio_warnings(cg: &crate::sys::cgroups::CgroupLayout) -> Vec<String> {
    let mut out = Vec::new();
    let v2 = cg.version() == 2;
    if v2 && !cg.blkio_weight {
        out.push("WARNING: No io.weight support".to_owned());
    }
    if v2 && !cg.blkio_weight_device {
        out.push("WARNING: No io.weight (per device) support".to_owned());
    }
    if !cg.blkio_throttle {
        for (v2_name, v1_name) in [
            ("rbps", "read_bps_device"),
            ("wbps", "write_bps_device"),
            ("riops", "read_iops_device"),
            ("wiops", "write_iops_device"),
        ] {
            out.push(if v2 {
                format!("WARNING: No io.max ({v2_name}) support")
            } else {
                format!("WARNING: No blkio throttle.{v1_name} support")
            });
        }
    }
    out
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

/// `NAME` or `name` from the environment, empty when neither is set.
fn env_either(name: &str) -> String {
    std::env::var(name)
        .or_else(|_| std::env::var(name.to_ascii_lowercase()))
        .unwrap_or_default()
}

/// `/info`'s `RegistryConfig` as dockerd reports it.
fn registry_config(config: &DaemonConfig) -> api::RegistryServiceConfig {
    let mut cidrs = vec!["127.0.0.0/8".to_owned()];
    let mut index = std::collections::HashMap::new();
    for r in &config.insecure_registries {
        if r.contains('/') {
            cidrs.push(r.clone());
        } else {
            index.insert(
                r.clone(),
                api::IndexInfo {
                    name: Some(r.clone()),
                    mirrors: Some(Vec::new()),
                    secure: Some(false),
                    official: Some(false),
                },
            );
        }
    }
    let mirrors: Vec<String> = config
        .registry_mirrors
        .iter()
        .map(|m| format!("{m}/"))
        .collect();
    index.insert(
        "docker.io".to_owned(),
        api::IndexInfo {
            name: Some("docker.io".to_owned()),
            mirrors: Some(mirrors.clone()),
            secure: Some(true),
            official: Some(true),
        },
    );
    api::RegistryServiceConfig {
        allow_nondistributable_artifacts_cid_rs: Some(Vec::new()),
        allow_nondistributable_artifacts_hostnames: Some(Vec::new()),
        insecure_registry_cid_rs: Some(cidrs),
        index_configs: Some(index),
        mirrors: Some(mirrors),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::model::complete::missing_keys;
    use crate::sys::cgroups::CgroupLayout;

    use crate::model::complete::dockerd_fixture as fixture;

    fn facts(cgroups: CgroupLayout) -> SystemFacts {
        SystemFacts {
            kernel_version: "6.1.0-test".into(),
            arch: "x86_64".into(),
            operating_system: "Debian GNU/Linux 12 (bookworm)".into(),
            os_version: "12".into(),
            ncpu: 2,
            mem_total: 1 << 30,
            hostname: "vm".into(),
            cgroups,
        }
    }

    fn v2_host() -> CgroupLayout {
        CgroupLayout {
            unified: Some(PathBuf::from("/sys/fs/cgroup")),
            memory_limit: true,
            swap_limit: true,
            pids_limit: true,
            cpu_cfs_quota: true,
            cpu_cfs_period: false,
            cpu_shares: true,
            cpuset: true,
            ..CgroupLayout::default()
        }
    }

    fn info_with(net_enabled: bool, host: HostReadings, config: &DaemonConfig) -> Value {
        let f = facts(v2_host());
        info_doc(&InfoSources {
            counts: Counts {
                total: 3,
                running: 1,
                paused: 1,
                exited: 1,
                ..Counts::default()
            },
            driver: DriverInfo {
                name: "overlay2".into(),
                status: vec![("Backing Filesystem".into(), "extfs".into())],
                images: 2,
            },
            net: NetworkInfo {
                enabled: net_enabled,
                ..NetworkInfo::default()
            },
            facts: &f,
            config,
            data_root: Path::new("/var/lib/berth"),
            engine_id: "0b7c2a52-0000-4000-8000-000000000001",
            monitor_exe: Path::new("/usr/bin/berthd"),
            host,
        })
    }

    fn info() -> Value {
        info_with(
            true,
            HostReadings {
                ip_forward: true,
                bridge_nf_iptables: true,
                bridge_nf_ip6tables: false,
                fds: 12,
                threads: 7,
                system_time: "2026-12-04T00:00:00.000000000Z".into(),
            },
            &DaemonConfig::defaults(),
        )
    }

    #[test]
    fn info_has_every_key_dockerd_prints() {
        let doc = info();
        // The members of maps are dockerd's own runtimes and registries.
        let data = |k: &String| {
            !k.starts_with("Runtimes.") && !k.starts_with("RegistryConfig.IndexConfigs.")
        };
        let mut missing = missing_keys(&doc, &fixture("info.json"));
        missing.retain(data);
        assert_eq!(missing, Vec::<String>::new());
        // And nothing but dockerd's keys.
        let mut extra = missing_keys(&fixture("info.json"), &doc);
        extra.retain(data);
        assert_eq!(extra, Vec::<String>::new());
    }

    #[test]
    fn info_values_are_measured_or_configured() {
        let doc = info();
        assert_eq!(doc["ID"], "0b7c2a52-0000-4000-8000-000000000001");
        assert_eq!(
            (doc["Containers"].clone(), doc["ContainersStopped"].clone()),
            (json!(3), json!(1))
        );
        assert_eq!(doc["Images"], 2);
        assert_eq!(
            doc["DriverStatus"],
            json!([["Backing Filesystem", "extfs"]])
        );
        assert_eq!(
            doc["SecurityOptions"],
            json!(["name=seccomp,profile=default"])
        );
        assert_eq!(doc["DefaultRuntime"], "native");
        assert_eq!(
            doc["Runtimes"],
            json!({"native": {"path": "/usr/bin/berthd", "runtimeArgs": ["monitor"]}})
        );
        assert_eq!(doc["CgroupVersion"], "2");
        assert_eq!(doc["CgroupDriver"], "cgroupfs");
        // Each limit flag: what the host supports and berthd applies.
        assert_eq!(doc["MemoryLimit"], true);
        assert_eq!(doc["CpuCfsQuota"], true);
        assert_eq!(
            doc["CpuCfsPeriod"], false,
            "from its own probe, not the quota's"
        );
        assert_eq!(doc["SwapLimit"], true, "the host's swap accounting");
        assert_eq!(doc["CPUSet"], true);
        assert_eq!(doc["OomKillDisable"], false, "no memory.oom_control on v2");
        assert_eq!(doc["KernelMemory"], false);
        assert_eq!(doc["KernelMemoryTCP"], false);
        assert_eq!(doc["BridgeNfIptables"], true);
        assert_eq!(doc["BridgeNfIp6tables"], false);
        assert_eq!(
            (doc["NFd"].clone(), doc["NGoroutines"].clone()),
            (json!(12), json!(7))
        );
        assert_eq!(doc["Plugins"]["Network"], json!(["bridge", "host", "null"]));
        assert_eq!(doc["Plugins"]["Authorization"], Value::Null);
        assert_eq!(doc["Swarm"]["LocalNodeState"], "inactive");
        assert_eq!(doc["Swarm"]["RemoteManagers"], Value::Null);
        assert_eq!(doc["GenericResources"], Value::Null);
        assert_eq!(doc["IndexServerAddress"], "https://index.docker.io/v1/");
        assert_eq!(
            doc["RegistryConfig"]["InsecureRegistryCIDRs"],
            json!(["127.0.0.0/8"])
        );
        assert_eq!(
            doc["RegistryConfig"]["IndexConfigs"]["docker.io"]["Official"],
            true
        );
        assert_eq!(doc["InitBinary"], "");
        assert_eq!(doc["RuncCommit"], json!({"ID": "", "Expected": ""}));
        let warnings = doc["Warnings"].as_array().unwrap();
        for w in [
            "WARNING: No cpu cfs period support",
            "WARNING: No io.weight support",
            "WARNING: No io.max (rbps) support",
            "WARNING: bridge-nf-call-ip6tables is disabled",
        ] {
            assert!(warnings.contains(&json!(w)), "{w} not in {warnings:?}");
        }
        for w in [
            "WARNING: No memory limit support",
            "WARNING: No swap limit support",
            "WARNING: No cpuset support",
            "WARNING: No oom kill disable support",
            "WARNING: No kernel memory TCP limit support",
            "WARNING: IPv4 forwarding is disabled",
        ] {
            assert!(!warnings.contains(&json!(w)), "{w} in {warnings:?}");
        }
    }

    #[test]
    fn info_follows_networking_and_tcp_hosts() {
        let mut config = DaemonConfig::defaults();
        config.hosts.push(crate::config::HostAddr::Tcp(
            "127.0.0.1:2375".parse().unwrap(),
        ));
        let doc = info_with(false, HostReadings::default(), &config);
        assert_eq!(doc["Plugins"]["Network"], json!(["host", "null"]));
        let warnings = doc["Warnings"].as_array().unwrap();
        assert!(warnings.contains(&json!("WARNING: networking is disabled (-b none)")));
        assert!(warnings[0].as_str().unwrap().starts_with(
            "WARNING: API is accessible on http://127.0.0.1:2375 without encryption."
        ));
        assert!(warnings.contains(&json!("WARNING: IPv4 forwarding is disabled")));
    }

    #[test]
    fn version_has_every_key_dockerd_prints() {
        let doc = version_doc(&facts(CgroupLayout::default()));
        let mut missing = missing_keys(&doc, &fixture("version.json"));
        // `omitempty` in dockerd: absent when the build has no time.
        if BUILD_TIME.is_empty() {
            missing.retain(|k| k != "BuildTime");
        }
        assert_eq!(missing, Vec::<String>::new());
        assert_eq!(doc["GitCommit"], GIT_COMMIT);
        assert_eq!(doc["Components"][0]["Details"]["GitCommit"], GIT_COMMIT);
        assert_eq!(doc["Arch"], "amd64");
        assert_eq!(doc["GoVersion"], "");
        assert_eq!(doc["MinAPIVersion"], MIN_API_VERSION);
        assert!(doc.get("Experimental").is_none(), "omitempty when false");
    }

    #[test]
    fn the_git_commit_is_the_checkouts() {
        // Not the environment's BERTH_GIT_COMMIT: cargo test sets it to the built value.
        if env!("BERTH_GIT_COMMIT_FROM") == "env" {
            return crate::test_ledger::skip(
                module_path!(),
                "BERTH_GIT_COMMIT overrides the checkout's commit",
            );
        }
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--short=7", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let head = String::from_utf8_lossy(&o.stdout).trim().to_owned();
                assert_eq!(GIT_COMMIT, head, "rebuild after a commit updates it");
            }
            _ => crate::test_ledger::skip(module_path!(), "not a git checkout, or no git"),
        }
    }
}
