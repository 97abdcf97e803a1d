//! `berthd`: flags, tracing, the actix System and the supervisor; nothing else.
//!
//! `berthd monitor ...` is the per-container monitor (see `berth::monitor`), dispatched
//! before anything else starts so that it stays a small single-threaded process.

use std::process::ExitCode;
use std::sync::Arc;

use berth::actors::supervisor::{Actors, Boot, DaemonSupervisor, StopAll};
use berth::api::AppState;
use berth::config::{self, DaemonConfig, Loaded, LogFormat};
use berth::daemon::{self, Pidfile};
use berth::server;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "monitor") {
        let code = berth::monitor::main(args[2..].to_vec());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let config = match config::load(args) {
        Ok(Loaded::Run(c)) => c,
        Ok(Loaded::Exit(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(&e),
    };
    init_tracing(&config);
    berth::sys::env::limit_malloc_arenas();
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(line) => {
            eprintln!("berthd: {line}");
            ExitCode::FAILURE
        }
    }
}

fn fail(e: &(dyn std::error::Error + 'static)) -> ExitCode {
    eprintln!("berthd: {}", berth::util::error_chain(e));
    ExitCode::FAILURE
}

fn init_tracing(config: &DaemonConfig) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let level = match config.log_level.as_str() {
        "fatal" => "error",
        l => l,
    };
    // BERTH_LOG overrides with `level` or `target=level,...` directives (no span or field
    // filters: a plain target filter keeps the regex engine out of the binary).
    let filter: Targets = std::env::var("BERTH_LOG")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            // actix-http logs every malformed request at error level ("stream error:
            // request parse error"): the client's fault, answered with 400, nothing for
            // the operator to act on. Those lines show at debug and trace only.
            let quiet = if matches!(level, "debug" | "trace") {
                ""
            } else {
                ",actix_http::h1::dispatcher=off"
            };
            format!("{level},actix_server=warn{quiet}")
                .parse()
                .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO))
        });
    // The fmt builder filters at INFO unless told otherwise; `filter` decides instead.
    let builder = tracing_subscriber::fmt()
        .with_max_level(tracing::level_filters::LevelFilter::TRACE)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().finish().with(filter).init(),
        LogFormat::Text => builder.finish().with(filter).init(),
    }
}

/// Everything after the flags. An error is one line for the operator.
fn run(config: DaemonConfig) -> Result<(), String> {
    let err = |e: &(dyn std::error::Error + 'static)| berth::util::error_chain(e);
    // Seed 4.2 and 4.1's pidfile, then 4.3; all before any thread starts (TMPDIR).
    let facts = daemon::system_checks().map_err(|e| err(&e))?;
    tracing::info!(
        kernel = %facts.kernel_version,
        arch = %facts.arch,
        cgroup_version = facts.cgroups.version(),
        "system checks passed"
    );
    server::precheck(&config.hosts, &config.group).map_err(|e| err(&e))?;
    let tls_files = config.tls_files();
    let tls = match &tls_files {
        Some(files) => Some(server::tls::server_config(files).map_err(|e| err(&e))?),
        None => None,
    };
    // dockerd's warnings for a TCP API that does not check its clients.
    for h in &config.hosts {
        if let berth::config::HostAddr::Tcp(addr) = h {
            let host = format!("tcp://{addr}");
            if !tls_files.as_ref().is_some_and(|f| f.verify) {
                tracing::warn!(%host, "Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network.");
            }
            if tls_files.is_none() {
                tracing::warn!(%host, "Binding to an IP address, even on localhost, can also give access to scripts run in a browser. Be safe out there!");
            }
        }
    }
    let pidfile = Pidfile::create(&config.pidfile).map_err(|e| err(&e))?;
    let data_root =
        daemon::prepare_work_dirs(&config.data_root, &config.exec_root).map_err(|e| err(&e))?;
    let format = daemon::data_root_format(&data_root).map_err(|e| err(&e))?;
    if format.migrates() {
        tracing::info!(
            from = format.found,
            to = daemon::DATA_ROOT_FORMAT,
            "the data root is in an older format: its records are rewritten"
        );
    }
    let engine_id = daemon::engine_id(&data_root).map_err(|e| err(&e))?;
    let monitor_exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let config = Arc::new(config);
    let system = actix_rt::System::new();
    let result = system.block_on(serve(
        config,
        facts,
        data_root,
        engine_id,
        monitor_exe,
        format,
        tls,
    ));
    drop(pidfile);
    result
}

async fn serve(
    config: Arc<DaemonConfig>,
    facts: daemon::SystemFacts,
    data_root: std::path::PathBuf,
    engine_id: daemon::EngineId,
    monitor_exe: std::path::PathBuf,
    format: daemon::DataRootFormat,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<(), String> {
    use actix::Actor;
    let actors = Actors::create(
        config.clone(),
        data_root.clone(),
        monitor_exe.clone(),
        facts.cgroups.clone(),
        facts.ncpu,
        format.migrates(),
    );
    let supervisor = DaemonSupervisor::default().start();
    supervisor
        .send(Boot {
            steps: actors.in_order(),
        })
        .await
        .map_err(|e| format!("supervisor: {e}"))?
        .map_err(|e| format!("failed to start: {e}"))?;
    let state = AppState {
        actors,
        config: config.clone(),
        facts: Arc::new(facts),
        data_root: data_root.clone(),
        engine_id: engine_id.id.clone(),
        monitor_exe,
    };
    let listeners = match server::bind_all(&config.hosts, &config.group) {
        Ok(l) => l,
        Err(e) => {
            let _ = supervisor.send(StopAll).await;
            return Err(berth::util::error_chain(&e));
        }
    };
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(2);
    let (api, socket_paths) = match server::start(listeners, state.clone(), workers, tls) {
        Ok(v) => v,
        Err(e) => {
            let _ = supervisor.send(StopAll).await;
            return Err(format!("API server: {e}"));
        }
    };
    let metrics = match config.metrics_addr {
        Some(addr) => match server::start_metrics(addr, state) {
            Ok(h) => Some(h),
            Err(e) => {
                api.stop(false).await;
                let _ = supervisor.send(StopAll).await;
                return Err(format!("metrics endpoint {addr}: {e}"));
            }
        },
        None => None,
    };
    tracing::info!(actor = "api", hosts = ?config.hosts, "actor initialised");
    tracing::info!("berthd is ready");
    daemon::sd_notify("READY=1");
    // Once every actor has started (a migration is done), and off the cold start's path;
    // neither is fsynced (see each), and a failure only makes the next start do it again.
    if !format.recorded || format.migrates() {
        if let Err(e) = daemon::write_data_root_format(&data_root) {
            tracing::warn!(error = %berth::util::error_chain(&e), "data root format not recorded");
        }
    }
    if let Err(e) = daemon::write_engine_id(&data_root, &engine_id) {
        tracing::warn!(error = %berth::util::error_chain(&e), "engine ID not kept");
    }

    wait_for_signal().await;

    daemon::sd_notify("STOPPING=1");
    tracing::info!(actor = "api", "actor shutting down");
    api.pause().await;
    tracing::info!(actor = "api", "actor shut down");
    if let Some(m) = metrics {
        m.stop(false).await;
    }
    let _ = supervisor.send(StopAll).await;
    api.stop(false).await;
    for p in socket_paths {
        let _ = std::fs::remove_file(p);
    }
    tracing::info!("berthd stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("signal handlers could not be installed; stopping");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutting down"),
        _ = int.recv() => tracing::info!(signal = "SIGINT", "shutting down"),
    }
}
