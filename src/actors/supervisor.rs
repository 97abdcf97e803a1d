//! DaemonSupervisor: creates the actors, sends `Init` to each in start-up order, starts
//! the API, and on shutdown walks the same list in reverse.
//!
//! Order (DESIGN.md): GraphDb → Graph → Network → Exec → ContainerStore → API. Each `Init`
//! is awaited before the next; the first failure shuts down, in reverse, the steps already
//! started and is returned. Shutdown sends `Shutdown` to every started step in reverse,
//! each awaited; a failure is logged and the next still runs (seed 4.11, moby's
//! `daemon.Shutdown`). `actix::Supervisor` only restarts actors; it does not order them,
//! hence this actor.
//!
//! Every step logs `actor initialised` / `actor shut down` with an `actor` field, so the
//! order can be checked from outside (tests/root_daemon.rs reads the JSON log).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::prelude::*;
use futures_util::future::LocalBoxFuture;

use super::exec::{ExecActor, SubscribeExecEvents, SubscribeExits};
use super::graph::GraphActor;
use super::graphdb::GraphDbActor;
use super::network::NetworkActor;
use super::store::validate::HostCaps;
use super::store::{ContainerStoreActor, Peers};
use super::{ActorClient, Init, LifecycleError, Shutdown};
use crate::config::DaemonConfig;
use crate::deleter::Deleter;
use crate::metrics::metrics;
use crate::sys::cgroups::CgroupLayout;

/// Something the supervisor starts and stops in order.
pub trait Managed: Send {
    fn name(&self) -> &'static str;
    fn init(&self) -> LocalBoxFuture<'static, Result<(), LifecycleError>>;
    fn shutdown(&self) -> LocalBoxFuture<'static, Result<(), LifecycleError>>;
}

/// How long an actor's `Init` or `Shutdown` may take (the store's shutdown waits for
/// containers to stop, so it gets the stop timeout on top).
const LIFECYCLE_TIMEOUT: Duration = Duration::from_secs(300);

impl<A> Managed for ActorClient<A>
where
    A: Actor + Handler<Init> + Handler<Shutdown>,
    A::Context: ToEnvelope<A, Init> + ToEnvelope<A, Shutdown>,
{
    fn name(&self) -> &'static str {
        ActorClient::name(self)
    }

    fn init(&self) -> LocalBoxFuture<'static, Result<(), LifecycleError>> {
        let me = self.clone();
        Box::pin(async move {
            me.send_timeout(Init, LIFECYCLE_TIMEOUT)
                .await
                .map_err(|e| LifecycleError(format!("{} did not answer Init: {e}", me.name())))?
        })
    }

    fn shutdown(&self) -> LocalBoxFuture<'static, Result<(), LifecycleError>> {
        let me = self.clone();
        Box::pin(async move {
            me.send_timeout(Shutdown, LIFECYCLE_TIMEOUT)
                .await
                .map_err(|e| {
                    LifecycleError(format!("{} did not answer Shutdown: {e}", me.name()))
                })?
        })
    }
}

/// The actors' addresses, for the API.
#[derive(Debug, Clone)]
pub struct Actors {
    pub graphdb: ActorClient<GraphDbActor>,
    pub graph: ActorClient<GraphActor>,
    pub network: ActorClient<NetworkActor>,
    pub exec: ActorClient<ExecActor>,
    pub store: ActorClient<ContainerStoreActor>,
}

/// An arbiter (a thread with a current-thread Tokio runtime) for one actor. Its blocking
/// pool (`spawn_blocking`: monitor spawns, layer work, iptables) is capped at 8 threads
/// and lets idle ones go after 2 s, so a burst of starts does not leave dozens of threads
/// (and their stacks) behind for Tokio's default 10 s.
fn arbiter() -> Arbiter {
    Arbiter::with_tokio_rt(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(8)
            .thread_keep_alive(Duration::from_secs(2))
            .build()
            .expect("a Tokio runtime for an arbiter")
    })
}

impl Actors {
    /// Creates every actor (nothing is opened until `Init`): GraphDb on a one-thread
    /// SyncArbiter, the others each on an arbiter of its own, so that one busy subsystem
    /// does not delay another's messages.
    pub fn create(
        config: Arc<DaemonConfig>,
        data_root: PathBuf,
        monitor_exe: PathBuf,
        cgroups: CgroupLayout,
        ncpu: usize,
        migrate: bool,
    ) -> Actors {
        let host = HostCaps {
            runtimes: config.runtime_names(),
            default_runtime: config.default_runtime_name().to_owned(),
            oci_init: config.init_binary.is_some(),
            log_driver: config.log_driver.clone(),
            log_opts: config.log_opts.clone(),
            ..HostCaps::new(&cgroups, ncpu)
        };
        let db_path = data_root.join("linkgraph.db");
        let graphdb = ActorClient::new(
            "graphdb",
            SyncArbiter::start(1, move || GraphDbActor::new(db_path.clone())),
        );
        // One background deleter for every removal (see `crate::deleter`); the graph's
        // Shutdown drains it.
        let deleter = Deleter::new();
        let graph = {
            let (c, d) = (config.clone(), deleter.clone());
            ActorClient::new(
                "graph",
                GraphActor::start_in_arbiter(&arbiter().handle(), move |_| GraphActor::new(c, d)),
            )
        };
        let network = {
            let c = config.clone();
            ActorClient::new(
                "network",
                NetworkActor::start_in_arbiter(&arbiter().handle(), move |_| NetworkActor::new(c)),
            )
        };
        let exec = {
            let c = config.clone();
            ActorClient::new(
                "exec",
                ExecActor::start_in_arbiter(&arbiter().handle(), move |_| {
                    ExecActor::new(c, monitor_exe, cgroups)
                }),
            )
        };
        let peers = Peers {
            graphdb: graphdb.clone(),
            graph: graph.clone(),
            network: network.clone(),
            exec: exec.clone(),
        };
        let store = {
            let c = config.clone();
            ActorClient::new(
                "store",
                ContainerStoreActor::start_in_arbiter(&arbiter().handle(), move |_| {
                    ContainerStoreActor::new(c, data_root, peers, deleter, host, migrate)
                }),
            )
        };
        exec.do_send(SubscribeExits(store.addr().clone().recipient()));
        exec.do_send(SubscribeExecEvents(store.addr().clone().recipient()));
        Actors {
            graphdb,
            graph,
            network,
            exec,
            store,
        }
    }

    /// The actors in start-up order.
    pub fn in_order(&self) -> Vec<Box<dyn Managed>> {
        vec![
            Box::new(self.graphdb.clone()),
            Box::new(self.graph.clone()),
            Box::new(self.network.clone()),
            Box::new(self.exec.clone()),
            Box::new(self.store.clone()),
        ]
    }
}

/// A start-up step that failed.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
pub struct StartError {
    pub step: &'static str,
    #[source]
    pub source: LifecycleError,
}

/// From `bin/berthd.rs`: run every step's `Init` in order.
#[derive(Message)]
#[rtype(result = "Result<(), StartError>")]
pub struct Boot {
    pub steps: Vec<Box<dyn Managed>>,
}

impl std::fmt::Debug for Boot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.steps.iter().map(|s| s.name()).collect();
        f.debug_struct("Boot").field("steps", &names).finish()
    }
}

/// From `bin/berthd.rs` on SIGTERM or SIGINT: shut down every started step in reverse.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct StopAll;

/// The supervisor. See the module docs.
#[derive(Default)]
pub struct DaemonSupervisor {
    /// The steps whose `Init` succeeded, in start-up order.
    started: Vec<Box<dyn Managed>>,
}

impl std::fmt::Debug for DaemonSupervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.started.iter().map(|s| s.name()).collect();
        f.debug_struct("DaemonSupervisor")
            .field("started", &names)
            .finish()
    }
}

impl Actor for DaemonSupervisor {
    type Context = Context<Self>;
}

/// Shuts down `steps` in reverse order, logging each; never stops at a failure.
async fn shutdown_reverse(steps: Vec<Box<dyn Managed>>) {
    for step in steps.into_iter().rev() {
        let name = step.name();
        tracing::info!(actor = name, "actor shutting down");
        match step.shutdown().await {
            Ok(()) => tracing::info!(actor = name, "actor shut down"),
            Err(e) => tracing::error!(actor = name, error = %e, "actor shutdown failed"),
        }
        metrics().actor_up.with_label_values(&[name]).set(0);
    }
}

impl Handler<Boot> for DaemonSupervisor {
    type Result = ResponseActFuture<Self, Result<(), StartError>>;
    fn handle(&mut self, msg: Boot, _: &mut Self::Context) -> Self::Result {
        let work = async move {
            let mut started: Vec<Box<dyn Managed>> = Vec::new();
            for step in msg.steps {
                let name = step.name();
                tracing::info!(actor = name, "actor initialising");
                match step.init().await {
                    Ok(()) => {
                        tracing::info!(actor = name, "actor initialised");
                        metrics().actor_up.with_label_values(&[name]).set(1);
                        started.push(step);
                    }
                    Err(source) => {
                        tracing::error!(actor = name, error = %source, "actor failed to initialise");
                        shutdown_reverse(started).await;
                        return Err(StartError { step: name, source });
                    }
                }
            }
            Ok(started)
        };
        Box::pin(actix::fut::wrap_future::<_, Self>(work).map(|res, act, _| {
            act.started = res?;
            Ok(())
        }))
    }
}

impl Handler<StopAll> for DaemonSupervisor {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, _: StopAll, _: &mut Self::Context) -> Self::Result {
        let steps = std::mem::take(&mut self.started);
        Box::pin(shutdown_reverse(steps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A step that records its calls and can be told to fail.
    struct Probe {
        name: &'static str,
        fail_init: bool,
        fail_shutdown: bool,
        log: Arc<Mutex<Vec<String>>>,
    }

    impl Managed for Probe {
        fn name(&self) -> &'static str {
            self.name
        }
        fn init(&self) -> LocalBoxFuture<'static, Result<(), LifecycleError>> {
            self.log.lock().unwrap().push(format!("init {}", self.name));
            let fail = self.fail_init;
            Box::pin(async move {
                if fail {
                    Err(LifecycleError("boom".into()))
                } else {
                    Ok(())
                }
            })
        }
        fn shutdown(&self) -> LocalBoxFuture<'static, Result<(), LifecycleError>> {
            self.log
                .lock()
                .unwrap()
                .push(format!("shutdown {}", self.name));
            let fail = self.fail_shutdown;
            Box::pin(async move {
                if fail {
                    Err(LifecycleError("stuck".into()))
                } else {
                    Ok(())
                }
            })
        }
    }

    fn probes(
        log: &Arc<Mutex<Vec<String>>>,
        fail_init: &str,
        fail_shutdown: &str,
    ) -> Vec<Box<dyn Managed>> {
        ["graphdb", "graph", "network", "exec", "store"]
            .into_iter()
            .map(|name| {
                Box::new(Probe {
                    name,
                    fail_init: name == fail_init,
                    fail_shutdown: name == fail_shutdown,
                    log: log.clone(),
                }) as Box<dyn Managed>
            })
            .collect()
    }

    #[actix_rt::test]
    async fn init_in_order_and_shutdown_in_reverse_past_a_failure() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sup = DaemonSupervisor::default().start();
        sup.send(Boot {
            steps: probes(&log, "", "network"),
        })
        .await
        .unwrap()
        .unwrap();
        sup.send(StopAll).await.unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            [
                "init graphdb",
                "init graph",
                "init network",
                "init exec",
                "init store",
                "shutdown store",
                "shutdown exec",
                "shutdown network",
                "shutdown graph",
                "shutdown graphdb"
            ]
        );
    }

    #[actix_rt::test]
    async fn a_failed_init_shuts_down_the_started_ones_in_reverse() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sup = DaemonSupervisor::default().start();
        let err = sup
            .send(Boot {
                steps: probes(&log, "exec", ""),
            })
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.step, "exec");
        assert_eq!(
            *log.lock().unwrap(),
            [
                "init graphdb",
                "init graph",
                "init network",
                "init exec",
                "shutdown network",
                "shutdown graph",
                "shutdown graphdb"
            ]
        );
        // Nothing is left to stop.
        sup.send(StopAll).await.unwrap();
        assert_eq!(log.lock().unwrap().len(), 7);
    }
}
